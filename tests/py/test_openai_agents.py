"""The OpenAI Agents SDK (`openai-agents`), whose models speak the Responses
API, running an agent with function tools to completion through the gateway:
each model turn is a `POST /v1/responses`, translated for the provider, here
an OpenAI-compatible chat server played by the replay upstream. The agent's
prompt and tools are those of the recorded exchanges, so its turns replay
them."""

from __future__ import annotations

import json

import openai
import pytest
from agents import Agent, ModelSettings, OpenAIResponsesModel, Runner, StopAtTools, function_tool, set_tracing_disabled


@pytest.fixture(autouse=True)
def no_tracing():
    # The SDK would otherwise send traces to OpenAI's own servers.
    set_tracing_disabled(True)


def upstream_log(replay_control) -> list[dict]:
    url, control = replay_control
    return control.get(url + "/_replay/requests").json()


def test_an_agent_with_function_tools_runs_to_completion(routed_gateway, replay_control, master_key):
    ran = []

    @function_tool
    def get_user_country() -> str:
        ran.append("get_user_country")
        return "Mexico"

    @function_tool
    def final_result(city: str, country: str) -> str:
        """The final response which ends this conversation"""
        ran.append("final_result")
        return json.dumps({"city": city, "country": country})

    client = openai.AsyncOpenAI(base_url=routed_gateway + "/v1", api_key=master_key, max_retries=0, timeout=30)
    agent = Agent(
        name="geographer",
        model=OpenAIResponsesModel(model="openai/gpt-4o", openai_client=client),
        tools=[get_user_country, final_result],
        model_settings=ModelSettings(tool_choice="required"),
        tool_use_behavior=StopAtTools(stop_at_tool_names=["final_result"]),
    )
    result = Runner.run_sync(agent, "What is the largest city in the user country?")
    assert ran == ["get_user_country", "final_result"]
    assert json.loads(result.final_output) == {"city": "Mexico City", "country": "Mexico"}
    log = upstream_log(replay_control)
    assert [r["transcript"] for r in log] == [
        "openai/chat_tool_call_nonstream_call.json",
        "openai/chat_tool_call_nonstream_followup.json",
    ]
    assert all(r["path"] == "/v1/chat/completions" for r in log)

"""The official `openai` SDK streaming the Responses API through the gateway
(`client.responses.stream` and `create(stream=True)`), to every provider kind
played by the replay upstream: the typed event sequence the SDK accumulates
into its final `response`."""

from __future__ import annotations

import json

import openai
import pytest

import transcripts


@pytest.fixture()
def client(routed_gateway, replay_control, master_key):
    return openai.OpenAI(base_url=routed_gateway + "/v1", api_key=master_key, max_retries=0, timeout=30)


def upstream_log(replay_control) -> list[dict]:
    url, control = replay_control
    return control.get(url + "/_replay/requests").json()


def check_sequence(events):
    """What every stream owes the SDK: numbered events, opened and closed."""
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert [e.type for e in events[:2]] == ["response.created", "response.in_progress"]
    assert events[-1].type in ("response.completed", "response.incomplete")
    added = [e.output_index for e in events if e.type == "response.output_item.added"]
    done = [e.output_index for e in events if e.type == "response.output_item.done"]
    assert sorted(added) == sorted(done) == added


def test_anthropic_stream_text(client, replay_control):
    t = transcripts.load("anthropic/stream_text_basic.json")
    want = "".join(
        json.loads(d)["delta"].get("text", "")
        for d in transcripts.sse_data(t["response"]["sse"])
        if json.loads(d)["type"] == "content_block_delta"
    )
    with client.responses.stream(
        model="anthropic/claude-sonnet-4-5",
        max_output_tokens=32000,
        input=[{"role": "user", "content": [{"type": "input_text", "text": "What is 1+1? Answer with just the number."}]}],
    ) as stream:
        events = list(stream)
        final = stream.get_final_response()
    check_sequence(events)
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert deltas == want == final.output_text
    assert final.status == "completed"
    assert final.usage.input_tokens > 0 and final.usage.output_tokens > 0
    assert upstream_log(replay_control)[0]["body"]["stream"] is True


def test_anthropic_thinking_stream_is_a_reasoning_item(client):
    with client.responses.stream(
        model="anthropic/claude-sonnet-4-0",
        max_output_tokens=4096,
        reasoning={"effort": "low"},
        input="How do I cross the street?",
    ) as stream:
        events = list(stream)
        final = stream.get_final_response()
    check_sequence(events)
    reasoning = [i for i in final.output if i.type == "reasoning"]
    assert len(reasoning) == 1
    summary = "".join(e.delta for e in events if e.type == "response.reasoning_summary_text.delta")
    assert summary and reasoning[0].summary[0].text == summary
    # The signature rides in `encrypted_content`, to go back with the item.
    assert reasoning[0].encrypted_content.startswith("arouter.sig:")
    assert final.output_text


def test_gemini_streamed_tool_call(client, replay_control):
    get_capital = {"type": "function", "name": "get_capital", "description": "Get the capital of a country.", "parameters": {"additionalProperties": False, "properties": {"country": {"description": "The country name.", "type": "string"}}, "required": ["country"], "type": "object"}}
    get_temperature = {"type": "function", "name": "get_temperature", "description": "Get the temperature in a city.", "parameters": {"properties": {"city": {"description": "The city name.", "type": "string"}}, "required": ["city"], "type": "object"}}
    events = list(
        client.responses.create(
            model="gemini/gemini-2.0-flash",
            instructions="You are a helpful chatbot.",
            input="What is the temperature of the capital of France?",
            tools=[get_capital, get_temperature],
            stream=True,
        )
    )
    check_sequence(events)
    calls = [e.item for e in events if e.type == "response.output_item.done" and e.item.type == "function_call"]
    assert calls[0].name == "get_capital" and json.loads(calls[0].arguments) == {"country": "France"}
    args = "".join(e.delta for e in events if e.type == "response.function_call_arguments.delta")
    assert json.loads(args) == {"country": "France"}
    assert upstream_log(replay_control)[0]["path"].endswith(":streamGenerateContent?alt=sse")


def test_openai_chat_provider_streamed_call_then_answer(client, replay_control):
    tool = {"type": "function", "name": "get_capital", "description": "", "parameters": {"additionalProperties": False, "properties": {"country": {"type": "string"}}, "required": ["country"], "type": "object"}, "strict": True}
    question = "What is the capital of the UK? Use the tool, then answer."
    with client.responses.stream(model="openai/gpt-4o-mini", input=question, tools=[tool], tool_choice="auto") as stream:
        events = list(stream)
        first = stream.get_final_response()
    check_sequence(events)
    (call,) = [i for i in first.output if i.type == "function_call"]
    assert json.loads(call.arguments) == {"country": "UK"}
    assert upstream_log(replay_control)[0]["body"]["stream_options"] == {"include_usage": True}
    with client.responses.stream(
        model="openai/gpt-4o-mini",
        input=[
            {"role": "user", "content": question},
            {"type": "function_call", "call_id": call.call_id, "name": call.name, "arguments": call.arguments},
            {"type": "function_call_output", "call_id": call.call_id, "output": "London"},
        ],
        tools=[tool],
        tool_choice="auto",
    ) as stream:
        events = list(stream)
        final = stream.get_final_response()
    check_sequence(events)
    assert "London" in final.output_text
    assert final.usage.total_tokens > 0


def test_a_stream_cut_short_ends_with_an_error_event(client, replay_control):
    url, control = replay_control
    control.post(url + "/_replay/faults", json={"match": {"path": "/v1/messages"}, "fault": {"cut_after_events": 4}, "times": 1}).raise_for_status()
    events = list(
        client.responses.create(
            model="anthropic/claude-sonnet-4-5",
            max_output_tokens=32000,
            input="What is 1+1? Answer with just the number.",
            stream=True,
        )
    )
    assert events[0].type == "response.created"
    assert events[-1].type == "error"
    assert events[-1].message
    assert [e.sequence_number for e in events] == list(range(len(events)))


def test_raw_events_match_the_spec(routed_gateway, master_key):
    """The bytes on the wire: `event:` names equal each payload's `type`,
    and every payload validates against spec/openapi.yaml."""
    import contract
    import requests

    r = requests.post(
        routed_gateway + "/v1/responses",
        headers={"Authorization": f"Bearer {master_key}"},
        json={"model": "gemini/gemini-2.0-flash-exp", "instructions": "You are a helpful chatbot.", "input": "What is the capital of France?", "temperature": 0, "stream": True},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/event-stream")
    events = contract.parse_sse(r.text)
    assert len(events) > 4
    for i, e in enumerate(events):
        data = json.loads(e["data"])
        assert e["event"] == data["type"] and data["sequence_number"] == i
        contract.validate_sse_data("POST", "/v1/responses", 200, data)
    assert json.loads(events[-1]["data"])["type"] == "response.completed"

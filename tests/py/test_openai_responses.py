"""The official `openai` SDK's Responses API (`client.responses.create`)
through the gateway, to every provider kind: an OpenAI-compatible chat
server, Anthropic and Gemini, all played by the replay upstream. Each
request here is the Responses form of a recorded native one."""

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


def calls_of(out):
    return [item for item in out.output if item.type == "function_call"]


# ------------------------------------------------------- OpenAI-compatible


def test_openai_chat_provider_plain(client, replay_control):
    rec = transcripts.load("openai/chat_nonstream_instructions.json")["response"]["body"]
    out = client.responses.create(model="openai/gpt-4o", instructions="You are a helpful assistant.", input="What is the capital of France?")
    assert out.object == "response" and out.id.startswith("resp_")
    assert out.status == "completed" and out.incomplete_details is None
    assert out.output_text == rec["choices"][0]["message"]["content"]
    assert out.output[0].type == "message" and out.output[0].role == "assistant"
    assert out.model.startswith("openai/")
    assert out.instructions == "You are a helpful assistant."
    u = rec["usage"]
    assert out.usage.input_tokens == u["prompt_tokens"]
    assert out.usage.output_tokens == u["completion_tokens"]
    assert out.usage.total_tokens == u["total_tokens"]
    assert out.usage.input_tokens_details.cached_tokens == u["prompt_tokens_details"]["cached_tokens"]
    assert out.usage.output_tokens_details.reasoning_tokens == 0
    sent = upstream_log(replay_control)[0]
    assert sent["path"] == "/v1/chat/completions", "translated to chat completions"
    assert sent["headers"]["authorization"] == "Bearer sk-provider-openai"


TOOLS = [
    {"type": "function", "name": "get_user_country", "description": "", "parameters": {"additionalProperties": False, "properties": {}, "type": "object"}},
    {"type": "function", "name": "final_result", "description": "The final response which ends this conversation", "parameters": {"properties": {"city": {"type": "string"}, "country": {"type": "string"}}, "required": ["city", "country"], "type": "object"}},
]


def test_openai_chat_provider_tool_loop(client, replay_control):
    out = client.responses.create(model="openai/gpt-4o", input="What is the largest city in the user country?", tools=TOOLS, tool_choice="required")
    (call,) = calls_of(out)
    assert (call.name, json.loads(call.arguments)) == ("get_user_country", {})
    assert call.call_id == "call_iXFttys57ap0o16JSlC8yhYo"
    sent = upstream_log(replay_control)[0]["body"]
    assert sent["tool_choice"] == "required"
    assert sent["tools"][0] == {"type": "function", "function": {"name": "get_user_country", "description": "", "parameters": TOOLS[0]["parameters"]}}
    # The loop's next turn: the call and its output, handed back as items.
    follow = client.responses.create(
        model="openai/gpt-4o",
        input=[
            {"role": "user", "content": "What is the largest city in the user country?"},
            {"type": "function_call", "call_id": call.call_id, "name": call.name, "arguments": call.arguments},
            {"type": "function_call_output", "call_id": call.call_id, "output": "Mexico"},
        ],
        tools=TOOLS,
        tool_choice="required",
    )
    (final,) = calls_of(follow)
    assert json.loads(final.arguments) == {"city": "Mexico City", "country": "Mexico"}
    assert upstream_log(replay_control)[1]["transcript"] == "openai/chat_tool_call_nonstream_followup.json"


# ------------------------------------------------------------------ Anthropic


def test_anthropic_plain(client, replay_control):
    rec = transcripts.load("anthropic/messages_nonstream_instructions.json")["response"]["body"]
    out = client.responses.create(
        model="anthropic/claude-3-opus-latest",
        max_output_tokens=4096,
        instructions="You are a helpful assistant.\n\n",
        input=[{"role": "user", "content": [{"type": "input_text", "text": "What is the capital of France?"}]}],
        metadata={"run": "7"},
    )
    assert out.output_text == rec["content"][0]["text"]
    assert out.status == "completed"
    assert out.metadata == {"run": "7"} and out.max_output_tokens == 4096
    u = rec["usage"]
    assert out.usage.input_tokens == u["input_tokens"] + u["cache_read_input_tokens"] + u["cache_creation_input_tokens"]
    assert out.usage.output_tokens == u["output_tokens"]
    sent = upstream_log(replay_control)[0]
    assert sent["path"] == "/v1/messages"
    assert sent["body"]["max_tokens"] == 4096
    assert "metadata" not in sent["body"], "Responses metadata is the client's own, not Anthropic's"


def test_anthropic_tool_call_and_follow_up(client, replay_control):
    out = client.responses.create(model="anthropic/claude-sonnet-4-5", input="What is the largest city in the user country?", tools=TOOLS, tool_choice="required")
    (call,) = calls_of(out)
    assert (call.name, json.loads(call.arguments)) == ("get_user_country", {})
    assert upstream_log(replay_control)[0]["body"]["tool_choice"]["type"] == "any"
    rec = transcripts.load("anthropic/tool_use_nonstream_followup.json")["response"]["body"]
    follow = client.responses.create(
        model="anthropic/claude-sonnet-4-5",
        max_output_tokens=4096,
        tools=TOOLS,
        tool_choice="required",
        input=[
            {"role": "user", "content": "What is the largest city in the user country?"},
            {"type": "function_call", "call_id": "toolu_01X9wcHKKAZD9tBC711xipPa", "name": "get_user_country", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "toolu_01X9wcHKKAZD9tBC711xipPa", "output": "Mexico"},
        ],
    )
    want = [b for b in rec["content"] if b["type"] == "tool_use"][0]
    (final,) = calls_of(follow)
    assert final.name == want["name"] and json.loads(final.arguments) == want["input"]


def test_anthropic_error_in_openai_shape(client):
    rec = transcripts.load("anthropic/error_404_model_not_found.json")["response"]["body"]
    with pytest.raises(openai.NotFoundError) as err:
        client.responses.create(model="anthropic/claude-sonet-4-5", max_output_tokens=4096, input="hello")
    assert err.value.body["message"] == rec["error"]["message"]


# --------------------------------------------------------------------- Gemini


def test_gemini_plain(client, replay_control):
    rec = transcripts.load("gemini/generate_content_basic.json")["response"]["body"]
    out = client.responses.create(model="gemini/gemini-2.5-flash", instructions="You are a chatbot.", input="Hello!")
    assert out.output_text == rec["candidates"][0]["content"]["parts"][0]["text"]
    assert out.usage.input_tokens == rec["usageMetadata"]["promptTokenCount"]
    sent = upstream_log(replay_control)[0]
    assert sent["path"] == "/v1beta/models/gemini-2.5-flash:generateContent"
    assert sent["body"]["systemInstruction"]["parts"][0]["text"] == "You are a chatbot."


def test_gemini_json_schema_text_format(client, replay_control):
    schema = {"description": "A city and its country.", "properties": {"city": {"type": "string"}, "country": {"type": "string"}}, "required": ["city", "country"], "title": "CityLocation", "type": "object"}
    out = client.responses.create(
        model="gemini/gemini-2.0-flash",
        input="What is the largest city in Mexico?",
        text={"format": {"type": "json_schema", "name": "CityLocation", "schema": schema}},
    )
    assert json.loads(out.output_text) == {"city": "Mexico City", "country": "Mexico"}
    assert upstream_log(replay_control)[0]["body"]["generationConfig"]["responseMimeType"] == "application/json"


def test_gemini_signed_call_loop(client, replay_control):
    """Gemini's `thoughtSignature` rides in the `call_id`, which Responses
    clients hand back with the call and its output."""
    GET_CAPITAL = {"type": "function", "name": "get_capital", "description": "Get the capital of a country.", "parameters": {"additionalProperties": False, "properties": {"country": {"description": "The country name.", "type": "string"}}, "required": ["country"], "type": "object"}}
    out = client.responses.create(model="gemini/gemini-2.5-pro", instructions="You are a helpful chatbot.", input="What is the capital of France?", tools=[GET_CAPITAL], temperature=0)
    (call,) = calls_of(out)
    assert "__sig__" in call.call_id
    follow = transcripts.load("gemini/function_call_nonstream_followup.json")
    recorded = follow["request"]["body"]["contents"][1]["parts"][0]
    call_id = recorded["functionCall"]["id"] + "__sig__" + recorded["thoughtSignature"]
    answer = json.dumps(follow["request"]["body"]["contents"][2]["parts"][0]["functionResponse"]["response"])
    client.responses.create(
        model="gemini/gemini-2.5-pro",
        instructions="You are a helpful chatbot.",
        input=[
            {"role": "user", "content": "What is the capital of France?"},
            {"type": "function_call", "call_id": call_id, "name": "get_capital", "arguments": json.dumps(recorded["functionCall"]["args"])},
            {"type": "function_call_output", "call_id": call_id, "output": answer},
        ],
        tools=[GET_CAPITAL],
        temperature=0,
    )
    sent = upstream_log(replay_control)[-1]
    assert sent["transcript"] == "gemini/function_call_nonstream_followup.json"
    assert sent["body"]["contents"][1]["parts"][0]["thoughtSignature"] == recorded["thoughtSignature"]


# ------------------------------------------------------------------ refusals


def test_built_in_tool_is_a_400_naming_it(client, replay_control):
    with pytest.raises(openai.BadRequestError) as err:
        client.responses.create(model="anthropic/claude-sonnet-4-5", input="news?", tools=[{"type": "web_search"}])
    assert "web_search" in err.value.body["message"]
    assert upstream_log(replay_control) == []


def test_api_v1_alias_and_unknown_provider(routed_gateway, master_key):
    aliased = openai.OpenAI(base_url=routed_gateway + "/api/v1", api_key=master_key, max_retries=0, timeout=30)
    out = aliased.responses.create(model="gemini/gemini-2.5-flash", instructions="You are a chatbot.", input="Hello!")
    assert out.status == "completed"
    with pytest.raises(openai.NotFoundError):
        aliased.responses.create(model="nowhere/model", input="hi")
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=routed_gateway + "/v1", api_key="sk-wrong", max_retries=0).responses.create(model="gemini/gemini-2.5-flash", input="Hello!")


# ------------------------------------------------------------ accounting


def test_billed_and_recorded_like_chat(routed_gateway, master_key):
    """The call is billed at the served model's price: the `response` id
    fetches its generation, with the tokens and cost the answer showed."""
    from openrouter import OpenRouter
    import time

    master = OpenRouter(api_key=master_key, server_url=routed_gateway + "/api/v1")
    secret = master.api_keys.create(name="responses").key
    client = openai.OpenAI(base_url=routed_gateway + "/v1", api_key=secret, max_retries=0, timeout=30)
    out = client.responses.create(model="openai/gpt-4o", instructions="You are a helpful assistant.", input="What is the capital of France?")
    cost = out.usage.model_extra["cost"]
    assert cost > 0
    sdk = OpenRouter(api_key=secret, server_url=routed_gateway + "/api/v1")
    deadline = time.monotonic() + 5
    while True:
        try:
            gen = sdk.generations.get_generation(id=out.id).data
            break
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    assert gen.tokens_prompt == out.usage.input_tokens
    assert gen.tokens_completion == out.usage.output_tokens
    assert gen.total_cost == pytest.approx(cost, abs=1e-12)


def test_a_starved_key_gets_a_402_before_any_upstream_call(routed_gateway, replay_control, master_key):
    import requests

    r = requests.post(routed_gateway + "/api/v1/keys", headers={"Authorization": f"Bearer {master_key}"}, json={"name": "starved", "limit": 0.000001}, timeout=10)
    assert r.status_code == 201, r.text
    client = openai.OpenAI(base_url=routed_gateway + "/v1", api_key=r.json()["key"], max_retries=0)
    with pytest.raises(openai.APIStatusError) as raised:
        client.responses.create(model="openai/gpt-4o", input="hi", max_output_tokens=5)
    assert raised.value.status_code == 402
    assert raised.value.code == "insufficient_credits"
    assert upstream_log(replay_control) == []

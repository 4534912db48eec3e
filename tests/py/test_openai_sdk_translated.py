"""The official `openai` SDK talking to Anthropic and Gemini models through
the gateway: `model: "anthropic/…"` or `"gemini/…"` works like an OpenAI
model, streaming and tools included. Providers are played by the replay
upstream; each request here is the OpenAI form of a recorded native one."""

from __future__ import annotations

import json
import time

import openai
import pytest

import transcripts

FINISH = {"stop", "length", "tool_calls", "content_filter", "error"}


@pytest.fixture()
def client(routed_gateway, replay_control, master_key):
    return openai.OpenAI(base_url=routed_gateway + "/v1", api_key=master_key, max_retries=0, timeout=30)


def upstream_log(replay_control) -> list[dict]:
    url, control = replay_control
    return control.get(url + "/_replay/requests").json()


def collect(stream):
    text, usage, finishes, calls = "", [], [], {}
    for chunk in stream:
        if chunk.usage:
            usage.append(chunk.usage)
        for choice in chunk.choices:
            text += choice.delta.content or ""
            if choice.finish_reason:
                finishes.append((choice.finish_reason, choice.model_extra.get("native_finish_reason")))
            for tc in choice.delta.tool_calls or []:
                slot = calls.setdefault(tc.index, {"id": None, "name": None, "args": ""})
                if tc.id:
                    assert slot["id"] is None, "tool call id sent twice"
                    slot["id"] = tc.id
                if tc.function and tc.function.name:
                    assert slot["name"] is None, "tool call name sent twice"
                    slot["name"] = tc.function.name
                if tc.function and tc.function.arguments:
                    slot["args"] += tc.function.arguments
    return text, usage, finishes, calls


# ------------------------------------------------------------------ Anthropic


def test_anthropic_plain_chat(client, replay_control):
    rec = transcripts.load("anthropic/messages_nonstream_instructions.json")["response"]["body"]
    out = client.chat.completions.create(
        model="anthropic/claude-3-opus-latest",
        max_tokens=4096,
        messages=[
            {"role": "system", "content": "You are a helpful assistant.\n\n"},
            {"role": "user", "content": "What is the capital of France?"},
        ],
    )
    assert out.choices[0].message.content == rec["content"][0]["text"]
    # Anthropic's answer has no timestamp; the gateway's clock supplies one.
    assert abs(out.created - time.time()) < 300
    assert out.choices[0].finish_reason == "stop"
    assert out.choices[0].model_extra["native_finish_reason"] == "end_turn"
    assert out.model.startswith("anthropic/")
    u = rec["usage"]
    assert out.usage.prompt_tokens == u["input_tokens"] + u["cache_read_input_tokens"] + u["cache_creation_input_tokens"]
    assert out.usage.completion_tokens == u["output_tokens"]
    sent = upstream_log(replay_control)[0]
    assert sent["path"] == "/v1/messages"
    assert sent["headers"]["x-api-key"] == "sk-provider-anthropic"
    assert sent["headers"]["anthropic-version"]
    assert sent["body"]["system"] in ("You are a helpful assistant.\n\n", [{"type": "text", "text": "You are a helpful assistant.\n\n"}])


def test_anthropic_stream_with_usage(client):
    t = transcripts.load("anthropic/stream_text_basic.json")
    text, usage, finishes, _ = collect(
        client.chat.completions.create(
            model="anthropic/claude-sonnet-4-5",
            max_tokens=32000,
            messages=[{"role": "user", "content": "What is 1+1? Answer with just the number."}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    want = "".join(
        json.loads(d)["delta"].get("text", "")
        for d in transcripts.sse_data(t["response"]["sse"])
        if json.loads(d)["type"] == "content_block_delta"
    )
    assert text == want
    assert finishes == [("stop", "end_turn")]
    assert len(usage) == 1 and usage[0].completion_tokens > 0 and usage[0].prompt_tokens > 0


def test_anthropic_default_max_tokens_and_tool_call(client, replay_control):
    tools = [
        {"type": "function", "function": {"name": "get_user_country", "description": "", "parameters": {"additionalProperties": False, "properties": {}, "type": "object"}}},
        {"type": "function", "function": {"name": "final_result", "description": "The final response which ends this conversation", "parameters": {"properties": {"city": {"type": "string"}, "country": {"type": "string"}}, "required": ["city", "country"], "title": "CityLocation", "type": "object"}}},
    ]
    out = client.chat.completions.create(
        model="anthropic/claude-sonnet-4-5",
        messages=[{"role": "user", "content": "What is the largest city in the user country?"}],
        tools=tools,
        tool_choice="required",
    )
    call = out.choices[0].message.tool_calls[0]
    assert (call.function.name, json.loads(call.function.arguments)) == ("get_user_country", {})
    assert out.choices[0].finish_reason == "tool_calls"
    sent = upstream_log(replay_control)[0]["body"]
    assert sent["tool_choice"]["type"] == "any"
    assert sent["max_tokens"] > 0, "Anthropic requires max_tokens; the gateway supplies a default"
    assert sent["tools"][1]["input_schema"]["required"] == ["city", "country"]


def test_anthropic_tool_loop_follow_up(client):
    rec = transcripts.load("anthropic/tool_use_nonstream_followup.json")["response"]["body"]
    tools = [
        {"type": "function", "function": {"name": "get_user_country", "description": "", "parameters": {"additionalProperties": False, "properties": {}, "type": "object"}}},
        {"type": "function", "function": {"name": "final_result", "description": "The final response which ends this conversation", "parameters": {"properties": {"city": {"type": "string"}, "country": {"type": "string"}}, "required": ["city", "country"], "title": "CityLocation", "type": "object"}}},
    ]
    out = client.chat.completions.create(
        model="anthropic/claude-sonnet-4-5",
        max_tokens=4096,
        tools=tools,
        tool_choice="required",
        messages=[
            {"role": "user", "content": "What is the largest city in the user country?"},
            {"role": "assistant", "content": None, "tool_calls": [{"id": "toolu_01X9wcHKKAZD9tBC711xipPa", "type": "function", "function": {"name": "get_user_country", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "toolu_01X9wcHKKAZD9tBC711xipPa", "content": "Mexico"},
        ],
    )
    want = [b for b in rec["content"] if b["type"] == "tool_use"][0]
    call = out.choices[0].message.tool_calls[0]
    assert call.function.name == want["name"]
    assert json.loads(call.function.arguments) == want["input"]


def test_anthropic_streamed_tool_calls(client):
    _, usage, finishes, calls = collect(
        client.chat.completions.create(
            model="anthropic/claude-haiku-4-5-20251001",
            max_tokens=8192,
            messages=[{"role": "user", "content": "Two names for a pet pelican"}],
            tools=[{"type": "function", "function": {"name": "pelican_name_generator", "description": "", "parameters": {"properties": {}, "type": "object"}}}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert finishes == [("tool_calls", "tool_use")]
    assert len(calls) >= 1
    for c in calls.values():
        assert c["name"] == "pelican_name_generator" and c["id"].startswith("toolu_")
        # The recorded tool_use blocks have empty input and no input_json_delta:
        # the arguments must still be JSON the SDK can parse.
        assert json.loads(c["args"]) == {}
    assert len(usage) == 1


def test_anthropic_json_schema(client, replay_control):
    schema = {"type": "object", "title": "Dog", "properties": {"name": {"type": "string", "title": "Name"}, "age": {"type": "integer", "title": "Age"}, "bio": {"type": "string", "title": "Bio"}}, "additionalProperties": False, "required": ["name", "age", "bio"]}
    text, _, finishes, _ = collect(
        client.chat.completions.create(
            model="anthropic/claude-sonnet-4-5",
            max_tokens=8192,
            messages=[{"role": "user", "content": "Invent a good dog"}],
            response_format={"type": "json_schema", "json_schema": {"name": "Dog", "schema": schema}},
            stream=True,
        )
    )
    dog = json.loads(text)
    assert set(dog) == {"name", "age", "bio"}
    assert finishes[0][0] == "stop"
    sent = json.dumps(upstream_log(replay_control)[0]["body"])
    assert '"title": "Dog"' in sent, "the schema went upstream"


def test_anthropic_prefill_is_a_trailing_assistant_message(client, replay_control):
    # No recording continues a prefill, so the replay answers 404; what
    # matters is the request: the assistant turn goes last, as Anthropic's
    # prefill.
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(
            model="anthropic/claude-sonnet-4-5",
            messages=[{"role": "user", "content": "Say a JSON object"}, {"role": "assistant", "content": "{"}],
        )
    sent = upstream_log(replay_control)[0]["body"]["messages"]
    assert sent[-1]["role"] == "assistant"
    last = sent[-1]["content"]
    assert last == "{" or last == [{"type": "text", "text": "{"}]


def test_anthropic_error_in_openai_shape(client):
    rec = transcripts.load("anthropic/error_404_model_not_found.json")["response"]["body"]
    with pytest.raises(openai.NotFoundError) as err:
        client.chat.completions.create(model="anthropic/claude-sonet-4-5", max_tokens=4096, messages=[{"role": "user", "content": "hello"}])
    assert err.value.status_code == 404
    assert err.value.body["message"] == rec["error"]["message"]


def test_anthropic_error_status_mid_call_is_an_openai_error(client, replay_control):
    url, control = replay_control
    control.post(url + "/_replay/faults", json={"match": {"path": "/v1/messages"}, "fault": {"status": 529}, "times": 1}).raise_for_status()
    with pytest.raises(openai.APIStatusError) as err:
        client.chat.completions.create(model="anthropic/claude-3-opus-latest", max_tokens=4096, messages=[{"role": "user", "content": "What is the capital of France?"}])
    assert err.value.status_code >= 500
    assert isinstance(err.value.body, dict) and err.value.body.get("message")


# --------------------------------------------------------------------- Gemini


def test_gemini_plain_chat(client, replay_control):
    rec = transcripts.load("gemini/generate_content_basic.json")["response"]["body"]
    out = client.chat.completions.create(
        model="gemini/gemini-2.5-flash",
        messages=[{"role": "system", "content": "You are a chatbot."}, {"role": "user", "content": "Hello!"}],
    )
    assert out.choices[0].message.content == rec["candidates"][0]["content"]["parts"][0]["text"]
    assert out.choices[0].finish_reason == "stop"
    assert out.choices[0].model_extra["native_finish_reason"] == "STOP"
    assert out.usage.prompt_tokens == rec["usageMetadata"]["promptTokenCount"]
    sent = upstream_log(replay_control)[0]
    assert sent["path"] == "/v1beta/models/gemini-2.5-flash:generateContent"
    assert sent["headers"]["x-goog-api-key"] == "sk-provider-gemini"
    assert sent["body"]["systemInstruction"]["parts"][0]["text"] == "You are a chatbot."


def test_gemini_stream_with_usage(client, replay_control):
    t = transcripts.load("gemini/stream_text_basic.json")
    text, usage, finishes, _ = collect(
        client.chat.completions.create(
            model="gemini/gemini-2.0-flash-exp",
            messages=[{"role": "system", "content": "You are a helpful chatbot."}, {"role": "user", "content": "What is the capital of France?"}],
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    want = "".join(
        p.get("text", "")
        for d in transcripts.sse_data(t["response"]["sse"])
        for c in json.loads(d).get("candidates", [])
        for p in c.get("content", {}).get("parts", [])
    )
    assert text == want
    assert finishes == [("stop", "STOP")]
    assert len(usage) == 1 and usage[0].total_tokens > 0
    assert upstream_log(replay_control)[0]["path"].endswith(":streamGenerateContent?alt=sse")


GET_CAPITAL = {"type": "function", "function": {"name": "get_capital", "description": "Get the capital of a country.", "parameters": {"additionalProperties": False, "properties": {"country": {"description": "The country name.", "type": "string"}}, "required": ["country"], "type": "object"}}}
GET_TEMPERATURE = {"type": "function", "function": {"name": "get_temperature", "description": "Get the temperature in a city.", "parameters": {"properties": {"city": {"description": "The city name.", "type": "string"}}, "required": ["city"], "type": "object"}}}


def test_gemini_tool_call(client):
    out = client.chat.completions.create(
        model="gemini/gemini-2.5-pro",
        messages=[{"role": "system", "content": "You are a helpful chatbot."}, {"role": "user", "content": "What is the capital of France?"}],
        tools=[GET_CAPITAL],
        temperature=0,
    )
    call = out.choices[0].message.tool_calls[0]
    assert call.function.name == "get_capital"
    assert json.loads(call.function.arguments) == {"country": "France"}
    assert out.choices[0].finish_reason == "tool_calls"


def test_gemini_streamed_tool_call_and_loop(client):
    _, _, finishes, calls = collect(
        client.chat.completions.create(
            model="gemini/gemini-2.0-flash",
            messages=[{"role": "system", "content": "You are a helpful chatbot."}, {"role": "user", "content": "What is the temperature of the capital of France?"}],
            tools=[GET_CAPITAL, GET_TEMPERATURE],
            stream=True,
        )
    )
    assert finishes and finishes[0][0] == "tool_calls"
    assert calls[0]["name"] == "get_capital" and json.loads(calls[0]["args"]) == {"country": "France"}
    # The follow-up turn, as a client would send it after running the tool.
    _, _, finishes, calls = collect(
        client.chat.completions.create(
            model="gemini/gemini-2.0-flash",
            messages=[
                {"role": "system", "content": "You are a helpful chatbot."},
                {"role": "user", "content": "What is the temperature of the capital of France?"},
                {"role": "assistant", "content": None, "tool_calls": [{"id": "pyd_ai_0e1a07b3c2b64d2ab3ad2efbe18e1b97", "type": "function", "function": {"name": "get_capital", "arguments": "{\"country\": \"France\"}"}}]},
                {"role": "tool", "tool_call_id": "pyd_ai_0e1a07b3c2b64d2ab3ad2efbe18e1b97", "content": "{\"return_value\": \"Paris\"}"},
            ],
            tools=[GET_CAPITAL, GET_TEMPERATURE],
            stream=True,
        )
    )
    assert calls[0]["name"] == "get_temperature" and json.loads(calls[0]["args"]) == {"city": "Paris"}


def test_gemini_json_schema(client, replay_control):
    schema = {"description": "A city and its country.", "properties": {"city": {"type": "string"}, "country": {"type": "string"}}, "required": ["city", "country"], "title": "CityLocation", "type": "object"}
    out = client.chat.completions.create(
        model="gemini/gemini-2.0-flash",
        messages=[{"role": "user", "content": "What is the largest city in Mexico?"}],
        response_format={"type": "json_schema", "json_schema": {"name": "CityLocation", "schema": schema}},
    )
    assert json.loads(out.choices[0].message.content) == {"city": "Mexico City", "country": "Mexico"}
    gen = upstream_log(replay_control)[0]["body"]["generationConfig"]
    assert gen["responseMimeType"] == "application/json"


def test_gemini_error_in_openai_shape(client):
    rec = transcripts.load("gemini/error_404_model_not_found.json")["response"]["body"]
    with pytest.raises(openai.NotFoundError) as err:
        client.chat.completions.create(model="gemini/gemini-3.6-flahs", messages=[{"role": "user", "content": "hello"}])
    assert err.value.body["message"] == rec["error"]["message"]


def test_gemini_thought_signature_survives_an_openai_client(client, replay_control):
    """Gemini wants each function call's `thoughtSignature` back on the next
    turn; an OpenAI client has no field for it, so it rides in the tool call
    id, which every OpenAI client echoes verbatim."""
    call_rec = transcripts.load("gemini/function_call_nonstream_call.json")
    out = client.chat.completions.create(
        model="gemini/gemini-2.5-pro",
        messages=[{"role": "system", "content": "You are a helpful chatbot."}, {"role": "user", "content": "What is the capital of France?"}],
        tools=[GET_CAPITAL],
        temperature=0,
    )
    signature = call_rec["response"]["body"]["candidates"][0]["content"]["parts"][0]["thoughtSignature"]
    # Carried URL-safe and unpadded, so the id stays [A-Za-z0-9_-]; Gemini
    # accepts that alphabet (the recorded follow-up below uses it).
    urlsafe = signature.replace("+", "-").replace("/", "_").rstrip("=")
    assert out.choices[0].message.tool_calls[0].id.endswith("__sig__" + urlsafe)

    follow = transcripts.load("gemini/function_call_nonstream_followup.json")
    recorded_call = follow["request"]["body"]["contents"][1]["parts"][0]
    call_id = recorded_call["functionCall"]["id"] + "__sig__" + recorded_call["thoughtSignature"]
    answer = json.dumps(follow["request"]["body"]["contents"][2]["parts"][0]["functionResponse"]["response"])
    out = client.chat.completions.create(
        model="gemini/gemini-2.5-pro",
        messages=[
            {"role": "system", "content": "You are a helpful chatbot."},
            {"role": "user", "content": "What is the capital of France?"},
            {"role": "assistant", "content": None, "tool_calls": [{"id": call_id, "type": "function", "function": {"name": "get_capital", "arguments": json.dumps(recorded_call["functionCall"]["args"])}}]},
            {"role": "tool", "tool_call_id": call_id, "content": answer},
        ],
        tools=[GET_CAPITAL],
        temperature=0,
    )
    sent = upstream_log(replay_control)[-1]
    assert sent["transcript"] == "gemini/function_call_nonstream_followup.json"
    part = sent["body"]["contents"][1]["parts"][0]
    assert part["thoughtSignature"] == recorded_call["thoughtSignature"]
    assert part["functionCall"]["id"] == recorded_call["functionCall"]["id"]
    want = follow["response"]["body"]["candidates"][0]["content"]["parts"][0]
    call = out.choices[0].message.tool_calls[0]
    assert json.loads(call.function.arguments) == want["functionCall"]["args"]
    assert call.id.endswith(want["thoughtSignature"].replace("+", "-").replace("/", "_").rstrip("="))

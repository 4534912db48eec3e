"""The official `anthropic` SDK against the gateway: change the base URL and
the key, nothing else, whichever provider serves the model.

Providers are played by the replay upstream from recorded transcripts.
Each request here is the Anthropic form of a recorded native request of
the serving provider, so that after the gateway's translation (or pass-
through, for Claude models) it is the recorded request again; the answers
asserted are the recorded ones, translated.

Matrix (upstream x case -> transcript):
  anthropic  non-stream   anthropic/messages_nonstream_instructions
             stream       anthropic/stream_text_basic (raw events)
             helper       anthropic/llm_stream_text_prompt, anthropic/llm_stream_tool_use_call
             tool call    anthropic/tool_use_nonstream_call
             tool loop    anthropic/tool_use_nonstream_followup, anthropic/llm_stream_tool_use_followup
  openai     non-stream   openai/chat_nonstream_instructions
             stream       openai/chat_stream_text_after_tool_include_usage (raw events)
             helper       openai/chat_tool_call_stream_include_usage, openai/chat_stream_text_after_tool_include_usage
             tool call    openai/chat_tool_call_nonstream_call
             tool loop    openai/chat_tool_call_nonstream_followup, openai/chat_stream_text_after_tool_include_usage
  gemini     non-stream   gemini/generate_content_instructions
             stream       gemini/stream_text_basic (raw events)
             helper       gemini/stream_text_basic, gemini/stream_function_call
             tool call    gemini/function_call_nonstream_call
             tool loop    gemini/stream_function_call_followup
"""

from __future__ import annotations

import json

import anthropic
import pytest

import sdk_cases as cases
from sdk_cases import upstream_log

# The recordings name models the SDK now calls deprecated; that is expected.
pytestmark = pytest.mark.filterwarnings("ignore:The model .* is deprecated:DeprecationWarning")


@pytest.fixture()
def client(routed_gateway, replay_control, master_key):
    return anthropic.Anthropic(base_url=routed_gateway, api_key=master_key, max_retries=0, timeout=30)


def raw_stream(stream) -> dict:
    """Reads a `stream=True` event iterator the way a client without the
    helper would, checking the event grammar on the way."""
    events = list(stream)
    kinds = [e.type for e in events]
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop", kinds
    assert kinds.count("message_start") == 1 and kinds.count("message_stop") == 1
    open_blocks: set[int] = set()
    text, tools, deltas = "", {}, []
    for e in events:
        if e.type == "content_block_start":
            assert e.index not in open_blocks
            open_blocks.add(e.index)
            if e.content_block.type == "tool_use":
                tools[e.index] = {"id": e.content_block.id, "name": e.content_block.name, "json": ""}
        elif e.type == "content_block_delta":
            assert e.index in open_blocks, "delta outside its block"
            if e.delta.type == "text_delta":
                text += e.delta.text
            elif e.delta.type == "input_json_delta":
                tools[e.index]["json"] += e.delta.partial_json
        elif e.type == "content_block_stop":
            open_blocks.remove(e.index)
        elif e.type == "message_delta":
            deltas.append(e)
    assert not open_blocks, "a content block was never closed"
    assert len(deltas) == 1, "exactly one message_delta"
    start_usage = events[0].message.usage
    end_usage = deltas[0].usage
    return {
        "text": text,
        "tools": tools,
        "stop_reason": deltas[0].delta.stop_reason,
        "input_tokens": end_usage.input_tokens if end_usage.input_tokens is not None else start_usage.input_tokens,
        "output_tokens": end_usage.output_tokens,
        "model": events[0].message.model,
    }


def tool_uses(message) -> list[tuple[str, str, dict]]:
    return [(b.id, b.name, b.input) for b in message.content if b.type == "tool_use"]


def text_of(message) -> str:
    return "".join(b.text for b in message.content if b.type == "text")


# ======================================================= Anthropic upstream


def test_anthropic_non_stream(client, replay_control):
    rec = cases.response("anthropic/messages_nonstream_instructions.json")["body"]
    out = client.messages.create(
        model="anthropic/claude-3-opus-latest",
        max_tokens=4096,
        system="You are a helpful assistant.\n\n",
        messages=[{"role": "user", "content": "What is the capital of France?"}],
    )
    assert text_of(out) == rec["content"][0]["text"]
    assert out.stop_reason == "end_turn"
    assert (out.usage.input_tokens, out.usage.output_tokens) == (rec["usage"]["input_tokens"], rec["usage"]["output_tokens"])
    assert out.id == rec["id"]
    sent = upstream_log(replay_control)[0]
    assert sent["path"].startswith("/v1/messages") and sent["body"]["model"] == "claude-3-opus-latest"
    assert sent["headers"]["x-api-key"] == "sk-provider-anthropic"


def test_anthropic_stream_raw_events(client):
    name = "anthropic/stream_text_basic.json"
    got = raw_stream(
        client.messages.create(
            model="claude-sonnet-4-5",  # bare: the catalog routes it to the anthropic provider
            max_tokens=32000,
            messages=[{"role": "user", "content": "What is 1+1? Answer with just the number."}],
            stream=True,
        )
    )
    assert got["text"] == cases.anthropic_stream_text(name) == "2"
    assert got["stop_reason"] == "end_turn"
    assert (got["input_tokens"], got["output_tokens"]) == cases.anthropic_stream_usage(name)


def test_anthropic_stream_helper_text(client):
    name = "anthropic/llm_stream_text_prompt.json"
    with client.messages.stream(
        model="claude-sonnet-4-5",
        max_tokens=8192,
        messages=[{"role": "user", "content": "Two names for a pet pelican, be brief"}],
    ) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    assert "".join(pieces) == text_of(final) == cases.anthropic_stream_text(name)
    assert final.stop_reason == "end_turn"
    assert (final.usage.input_tokens, final.usage.output_tokens) == cases.anthropic_stream_usage(name)


def test_anthropic_tool_call_and_loop(client):
    call = cases.response("anthropic/tool_use_nonstream_call.json")["body"]
    follow = cases.response("anthropic/tool_use_nonstream_followup.json")["body"]
    tools = cases.anthropic_tools(cases.CITY_TOOLS)
    messages = [{"role": "user", "content": "What is the largest city in the user country?"}]
    out = client.messages.create(model="claude-sonnet-4-5", max_tokens=4096, messages=messages, tools=tools, tool_choice={"type": "any"})
    want = call["content"][0]
    assert tool_uses(out) == [(want["id"], "get_user_country", {})]
    assert out.stop_reason == "tool_use"
    assert (out.usage.input_tokens, out.usage.output_tokens) == (call["usage"]["input_tokens"], call["usage"]["output_tokens"])
    # The loop: the SDK's own response content goes back, then the result.
    messages += [
        {"role": "assistant", "content": out.content},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": out.content[0].id, "content": "Mexico"}]},
    ]
    out = client.messages.create(model="claude-sonnet-4-5", max_tokens=4096, messages=messages, tools=tools, tool_choice={"type": "any"})
    assert tool_uses(out) == [(follow["content"][0]["id"], "final_result", {"city": "Mexico City", "country": "Mexico"})]
    assert out.stop_reason == "tool_use"
    assert out.usage.output_tokens == follow["usage"]["output_tokens"]


def test_anthropic_stream_helper_tool_calls_and_loop(client):
    call, follow = "anthropic/llm_stream_tool_use_call.json", "anthropic/llm_stream_tool_use_followup.json"
    tools = cases.anthropic_tools(cases.PELICAN_TOOLS)
    messages = [{"role": "user", "content": "Two names for a pet pelican"}]
    with client.messages.stream(model="anthropic/claude-haiku-4-5-20251001", max_tokens=8192, tools=tools, messages=messages) as stream:
        final = stream.get_final_message()
    assert tool_uses(final) == cases.anthropic_stream_tool_uses(call)
    assert final.stop_reason == "tool_use"
    assert (final.usage.input_tokens, final.usage.output_tokens) == cases.anthropic_stream_usage(call)
    # The recorded follow-up is llm's: its (blank) text block ahead of the
    # two calls, each written as id/name/input (the SDK's own blocks would
    # also echo the `caller` field this recording's response has).
    echoed = [{"type": "tool_use", "id": b.id, "name": b.name, "input": b.input} for b in final.content]
    messages += [
        {"role": "assistant", "content": [{"type": "text", "text": " "}, *echoed]},
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": final.content[0].id, "content": "Charles"},
                {"type": "tool_result", "tool_use_id": final.content[1].id, "content": "Sammy"},
            ],
        },
    ]
    got = raw_stream(client.messages.create(model="anthropic/claude-haiku-4-5-20251001", max_tokens=8192, tools=tools, messages=messages, stream=True))
    assert got["text"] == cases.anthropic_stream_text(follow)
    assert got["stop_reason"] == "end_turn"
    assert (got["input_tokens"], got["output_tokens"]) == cases.anthropic_stream_usage(follow)


@pytest.mark.parametrize("version", [None, "2023-06-01"])
def test_anthropic_version_and_beta_headers_are_forwarded(client, replay_control, version):
    headers = {"anthropic-beta": "token-efficient-tools-2025-02-19"}
    if version:
        headers["anthropic-version"] = version
    client.messages.create(
        model="anthropic/claude-3-opus-latest",
        max_tokens=4096,
        system="You are a helpful assistant.\n\n",
        messages=[{"role": "user", "content": "What is the capital of France?"}],
        extra_headers=headers,
    )
    sent = upstream_log(replay_control)[0]["headers"]
    # The SDK's own version (its default header) or the one the caller set.
    assert sent["anthropic-version"] == (version or client.default_headers["anthropic-version"])
    assert sent["anthropic-beta"] == "token-efficient-tools-2025-02-19"
    assert sent["x-api-key"] == "sk-provider-anthropic"
    assert "sk-test-master" not in str(sent), "the client's key never goes upstream"


def test_anthropic_beta_namespace(client, replay_control):
    """`client.beta.messages` (`?beta=true`, `anthropic-beta` from `betas=`)."""
    rec = cases.response("anthropic/messages_nonstream_instructions.json")["body"]
    out = client.beta.messages.create(
        model="anthropic/claude-3-opus-latest",
        max_tokens=4096,
        system="You are a helpful assistant.\n\n",
        messages=[{"role": "user", "content": "What is the capital of France?"}],
        betas=["token-efficient-tools-2025-02-19"],
    )
    assert text_of(out) == rec["content"][0]["text"]
    assert upstream_log(replay_control)[0]["headers"]["anthropic-beta"] == "token-efficient-tools-2025-02-19"


# ========================================================== OpenAI upstream


def test_openai_non_stream(client, replay_control):
    name = "openai/chat_nonstream_instructions.json"
    out = client.messages.create(
        model="openai/gpt-4o",
        max_tokens=1024,
        system="You are a helpful assistant.",
        messages=[{"role": "user", "content": "What is the capital of France?"}],
    )
    usage = cases.openai_usage(name)
    assert text_of(out) == cases.openai_message(name)["content"]
    assert out.stop_reason == "end_turn"
    assert out.type == "message" and out.role == "assistant"
    assert (out.usage.input_tokens, out.usage.output_tokens) == (usage["prompt_tokens"], usage["completion_tokens"])
    sent = upstream_log(replay_control)[0]
    assert sent["path"] == "/v1/chat/completions"
    assert sent["headers"]["authorization"] == "Bearer sk-provider-openai"


TOOL_TURNS_UK = [
    {"role": "user", "content": "What is the capital of the UK? Use the tool, then answer."},
    {"role": "assistant", "content": [{"type": "tool_use", "id": "call_ZR5UUuTt3pf61kjwAJIYdVMj", "name": "get_capital", "input": {"country": "UK"}}]},
    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_ZR5UUuTt3pf61kjwAJIYdVMj", "content": "London"}]},
]


def test_openai_stream_raw_events_after_tool_result(client):
    name = "openai/chat_stream_text_after_tool_include_usage.json"
    got = raw_stream(
        client.messages.create(
            model="openai/gpt-4o-mini",
            max_tokens=1024,
            tools=cases.anthropic_tools(cases.UK_CAPITAL_TOOLS),
            tool_choice={"type": "auto"},
            messages=TOOL_TURNS_UK,
            stream=True,
        )
    )
    usage = cases.openai_usage(name)
    assert got["text"] == cases.openai_stream_text(name) == "The capital of the UK is London."
    assert got["stop_reason"] == "end_turn"
    assert (got["input_tokens"], got["output_tokens"]) == (usage["prompt_tokens"], usage["completion_tokens"])


def test_openai_stream_helper_tool_call_and_loop(client):
    call, follow = "openai/chat_tool_call_stream_include_usage.json", "openai/chat_stream_text_after_tool_include_usage.json"
    tools = cases.anthropic_tools(cases.UK_CAPITAL_TOOLS)
    messages = [TOOL_TURNS_UK[0]]
    with client.messages.stream(model="openai/gpt-4o-mini", max_tokens=1024, tools=tools, tool_choice={"type": "auto"}, messages=messages) as stream:
        final = stream.get_final_message()
    assert tool_uses(final) == cases.openai_stream_calls(call)
    assert final.stop_reason == "tool_use"
    usage = cases.openai_usage(call)
    assert (final.usage.input_tokens, final.usage.output_tokens) == (usage["prompt_tokens"], usage["completion_tokens"])
    # The loop, from the helper's own final message.
    messages += [
        {"role": "assistant", "content": final.content},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": final.content[0].id, "content": "London"}]},
    ]
    with client.messages.stream(model="openai/gpt-4o-mini", max_tokens=1024, tools=tools, tool_choice={"type": "auto"}, messages=messages) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    assert "".join(pieces) == text_of(final) == cases.openai_stream_text(follow)
    assert final.stop_reason == "end_turn"
    usage = cases.openai_usage(follow)
    assert (final.usage.input_tokens, final.usage.output_tokens) == (usage["prompt_tokens"], usage["completion_tokens"])


def test_openai_tool_call_and_loop(client, replay_control):
    call, follow = "openai/chat_tool_call_nonstream_call.json", "openai/chat_tool_call_nonstream_followup.json"
    tools = cases.anthropic_tools(cases.CITY_TOOLS)
    messages = [{"role": "user", "content": "What is the largest city in the user country?"}]
    out = client.messages.create(model="openai/gpt-4o", max_tokens=1024, messages=messages, tools=tools, tool_choice={"type": "any"})
    want = cases.openai_message(call)["tool_calls"][0]
    assert tool_uses(out) == [(want["id"], "get_user_country", {})]
    assert out.stop_reason == "tool_use"
    usage = cases.openai_usage(call)
    assert (out.usage.input_tokens, out.usage.output_tokens) == (usage["prompt_tokens"], usage["completion_tokens"])
    assert upstream_log(replay_control)[0]["body"]["tool_choice"] == "required"
    messages += [
        {"role": "assistant", "content": out.content},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": out.content[0].id, "content": "Mexico"}]},
    ]
    out = client.messages.create(model="openai/gpt-4o", max_tokens=1024, messages=messages, tools=tools, tool_choice={"type": "any"})
    want = cases.openai_message(follow)["tool_calls"][0]
    assert tool_uses(out) == [(want["id"], "final_result", {"city": "Mexico City", "country": "Mexico"})]
    assert out.stop_reason == "tool_use"


# ========================================================== Gemini upstream


def test_gemini_non_stream(client, replay_control):
    rec = cases.response("gemini/generate_content_instructions.json")["body"]
    out = client.messages.create(
        model="gemini/gemini-2.0-flash",
        max_tokens=1024,
        system="You are a helpful assistant.",
        messages=[{"role": "user", "content": "What is the capital of France?"}],
    )
    assert text_of(out) == rec["candidates"][0]["content"]["parts"][0]["text"]
    assert out.stop_reason == "end_turn"
    meta = rec["usageMetadata"]
    assert (out.usage.input_tokens, out.usage.output_tokens) == (meta["promptTokenCount"], cases.gemini_output_tokens(meta))
    sent = upstream_log(replay_control)[0]
    assert sent["path"] == "/v1beta/models/gemini-2.0-flash:generateContent"
    assert sent["headers"]["x-goog-api-key"] == "sk-provider-gemini"
    assert sent["body"]["systemInstruction"]["parts"] == [{"text": "You are a helpful assistant."}]


def gemini_stream_request(**kw):
    return dict(
        model="gemini/gemini-2.0-flash-exp",
        max_tokens=1024,
        system="You are a helpful chatbot.",
        messages=[{"role": "user", "content": "What is the capital of France?"}],
        **kw,
    )


def test_gemini_stream_raw_events(client):
    name = "gemini/stream_text_basic.json"
    got = raw_stream(client.messages.create(**gemini_stream_request(stream=True)))
    meta = cases.gemini_stream_usage(name)
    assert got["text"] == cases.gemini_stream_text(name)
    assert got["stop_reason"] == "end_turn"
    assert (got["input_tokens"], got["output_tokens"]) == (meta["promptTokenCount"], cases.gemini_output_tokens(meta))


def test_gemini_stream_helper_text(client):
    name = "gemini/stream_text_basic.json"
    with client.messages.stream(**gemini_stream_request()) as stream:
        text = stream.get_final_text()
        final = stream.get_final_message()
    meta = cases.gemini_stream_usage(name)
    assert text == text_of(final) == cases.gemini_stream_text(name)
    assert final.stop_reason == "end_turn"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (meta["promptTokenCount"], cases.gemini_output_tokens(meta))


def test_gemini_tool_call(client):
    rec = cases.response("gemini/function_call_nonstream_call.json")["body"]
    out = client.messages.create(
        model="gemini/gemini-2.5-pro",
        max_tokens=1024,
        system="You are a helpful chatbot.",
        messages=[{"role": "user", "content": "What is the capital of France?"}],
        tools=cases.anthropic_tools(cases.GET_CAPITAL_STRICT),
    )
    [(call_id, name, args)] = tool_uses(out)
    assert (name, args) == ("get_capital", {"country": "France"})
    assert call_id, "a tool_use needs an id the client can answer"
    assert out.stop_reason == "tool_use"
    meta = rec["usageMetadata"]
    assert (out.usage.input_tokens, out.usage.output_tokens) == (meta["promptTokenCount"], cases.gemini_output_tokens(meta))


def test_gemini_tool_loop_keeps_the_thought_signature(client, replay_control):
    """gemini-2.5-pro signs its function calls (`thoughtSignature`) and Gemini
    wants the signature back with the call in the next turn (Gemini 3
    rejects an unsigned call). The OpenAI dialect carries it inside the
    tool call id; an Anthropic client must get it back to Gemini too."""
    signature = cases.response("gemini/function_call_nonstream_call.json")["body"]["candidates"][0]["content"]["parts"][0]["thoughtSignature"]
    kw = dict(
        model="gemini/gemini-2.5-pro",
        max_tokens=1024,
        system="You are a helpful chatbot.",
        tools=cases.anthropic_tools(cases.GET_CAPITAL_STRICT),
    )
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    out = client.messages.create(messages=messages, **kw)
    messages += [
        {"role": "assistant", "content": out.content},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": out.content[0].id, "content": "Paris"}]},
    ]
    # The recorded follow-up carries pydantic-ai's own call id, so the replay
    # has no answer for this one (404); what matters is what went upstream.
    with pytest.raises(anthropic.NotFoundError):
        client.messages.create(messages=messages, **kw)
    contents = upstream_log(replay_control)[1]["body"]["contents"]
    [call_part] = [p for c in contents for p in c["parts"] if "functionCall" in p]
    # The signature rides in the tool id in URL-safe base64 (Anthropic ids
    # allow only [A-Za-z0-9_-]); Gemini accepts that alphabet, as the
    # recorded pydantic-ai follow-up shows.
    assert call_part.get("thoughtSignature") == signature.replace("+", "-").replace("/", "_")


def test_gemini_stream_helper_tool_call_and_loop(client):
    call, follow = "gemini/stream_function_call.json", "gemini/stream_function_call_followup.json"
    tools = cases.anthropic_tools(cases.CAPITAL_AND_TEMPERATURE)
    messages = [{"role": "user", "content": "What is the temperature of the capital of France?"}]
    kw = dict(model="gemini/gemini-2.0-flash", max_tokens=1024, system="You are a helpful chatbot.", tools=tools)
    with client.messages.stream(messages=messages, **kw) as stream:
        final = stream.get_final_message()
    assert [(n, a) for _, n, a in tool_uses(final)] == cases.gemini_stream_calls(call)
    assert final.stop_reason == "tool_use"
    meta = cases.gemini_stream_usage(call)
    assert (final.usage.input_tokens, final.usage.output_tokens) == (meta["promptTokenCount"], cases.gemini_output_tokens(meta))
    # The recorded follow-up carries the call id pydantic-ai gave the call
    # (Gemini 2.0 sends none); the result is the tool's JSON object.
    call_id = "pyd_ai_0e1a07b3c2b64d2ab3ad2efbe18e1b97"
    messages += [
        {"role": "assistant", "content": [{"type": "tool_use", "id": call_id, "name": final.content[0].name, "input": final.content[0].input}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call_id, "content": '{"return_value": "Paris"}'}]},
    ]
    got = raw_stream(client.messages.create(messages=messages, stream=True, **kw))
    assert got["stop_reason"] == "tool_use"
    assert [(t["name"], json.loads(t["json"])) for t in got["tools"].values()] == cases.gemini_stream_calls(follow)


# ====================================================== stop reasons, errors


@pytest.mark.parametrize(
    "model, path, body",
    [
        ("anthropic/claude-3-opus-latest", "/v1/messages", {**cases.response("anthropic/messages_nonstream_instructions.json")["body"], "stop_reason": "max_tokens"}),
        ("openai/gpt-4o", "/v1/chat/completions", cases.openai_length_body("openai/chat_nonstream_instructions.json")),
        (
            "gemini/gemini-2.0-flash",
            "/v1beta/models/gemini-2.0-flash:generateContent",
            {**cases.response("gemini/generate_content_instructions.json")["body"], "candidates": [{**cases.response("gemini/generate_content_instructions.json")["body"]["candidates"][0], "finishReason": "MAX_TOKENS"}]},
        ),
    ],
    ids=["anthropic", "openai", "gemini"],
)
def test_output_cap_is_max_tokens(client, replay_control, model, path, body):
    # No recording stops on the output cap: the recorded answer is replayed
    # with its finish word changed to each provider's "cut at the cap".
    cases.fault(replay_control, {"path": path}, {"status": 200, "body": body})
    out = client.messages.create(model=model, max_tokens=8, messages=[{"role": "user", "content": "What is the capital of France?"}])
    assert out.stop_reason == "max_tokens"
    assert text_of(out).startswith("The capital of France is Paris")


def test_missing_max_tokens_is_a_400_from_the_gateway(client, replay_control):
    # The typed `create` refuses to send this; the SDK's raw `post` does.
    with pytest.raises(anthropic.BadRequestError) as err:
        client.post(
            "/v1/messages",
            cast_to=anthropic.types.Message,
            body={"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": "hello"}]},
        )
    assert err.value.status_code == 400
    assert err.value.body["type"] == "error"
    assert err.value.body["error"]["type"] == "invalid_request_error"
    assert "max_tokens" in err.value.body["error"]["message"]
    assert upstream_log(replay_control) == [], "refused before any upstream call"


def test_provider_404_is_not_found_error(client):
    rec = cases.response("anthropic/error_404_model_not_found.json")["body"]
    with pytest.raises(anthropic.NotFoundError) as err:
        client.messages.create(model="anthropic/claude-sonet-4-5", max_tokens=4096, messages=[{"role": "user", "content": "hello"}])
    assert err.value.status_code == 404
    assert err.value.body["error"] == rec["error"]


@pytest.mark.parametrize("model", ["openai/gpt-5.2-proo", "gemini/gemini-3.6-flahs"])
def test_translated_provider_404_is_not_found_error_in_anthropic_shape(client, model):
    with pytest.raises(anthropic.NotFoundError) as err:
        client.messages.create(model=model, max_tokens=4096, messages=[{"role": "user", "content": "hello"}])
    assert err.value.status_code == 404
    assert err.value.body["type"] == "error"
    assert err.value.body["error"]["type"] == "not_found_error"
    assert model.split("/")[1] in err.value.body["error"]["message"]


def test_count_tokens_anthropic_404(client, replay_control):
    rec = cases.response("anthropic/error_404_count_tokens.json")["body"]
    with pytest.raises(anthropic.NotFoundError) as err:
        client.messages.count_tokens(model="anthropic/claude-does-not-exist", messages=[{"role": "user", "content": "hello"}])
    assert err.value.status_code == 404
    assert err.value.body["error"] == rec["error"]
    sent = upstream_log(replay_control)[0]
    assert sent["path"].startswith("/v1/messages/count_tokens")
    assert sent["body"]["model"] == "claude-does-not-exist"


def test_count_tokens_openai_is_counted_locally(client, replay_control):
    short = client.messages.count_tokens(model="openai/gpt-4o", messages=[{"role": "user", "content": "hello"}])
    longer = client.messages.count_tokens(
        model="openai/gpt-4o",
        system="You are a helpful assistant.",
        messages=[{"role": "user", "content": "hello, and tell me the capital of France, Germany and Italy please"}],
    )
    assert isinstance(short.input_tokens, int) and short.input_tokens > 0
    assert longer.input_tokens > short.input_tokens
    assert upstream_log(replay_control) == [], "OpenAI has no counting endpoint: counted by the gateway"

"""The official Google GenAI SDK (`google-genai`) against the gateway: change
the base URL and the key, nothing else, whichever provider serves the model.

The SDK puts the model in the URL path (`/v1/models/{model}:generateContent`,
its default API version being `v1`), so `openai/gpt-4o` arrives as
`models/openai/gpt-4o:generateContent`; its key goes in `x-goog-api-key`.

Providers are played by the replay upstream from recorded transcripts. Each
request here is the Gemini form of a recorded native request of the serving
provider, so that after the gateway's translation (or pass-through, for
Gemini models) it is the recorded request again; the answers asserted are
the recorded ones, translated.

Matrix (upstream x case -> transcript):
  gemini     non-stream   gemini/generate_content_instructions
             stream       gemini/stream_text_basic
             helper       gemini/stream_text_basic (chats.send_message_stream)
             tool call    gemini/function_call_nonstream_call, gemini/stream_function_call
             tool loop    gemini/function_call_nonstream_followup, gemini/stream_function_call_followup
  openai     non-stream   openai/chat_nonstream_instructions
             stream       openai/chat_stream_text_moderation_include_usage
             helper       openai/chat_stream_text_moderation_include_usage (chats.send_message_stream)
             tool call    openai/chat_tool_call_nonstream_call, openai/chat_tool_call_stream_include_usage
             tool loop    openai/chat_tool_call_nonstream_followup, openai/chat_stream_text_after_tool_include_usage
  anthropic  non-stream   anthropic/messages_nonstream_instructions
             stream       anthropic/stream_text_basic
             helper       anthropic/llm_stream_text_prompt (chats.send_message_stream)
             tool call    anthropic/tool_use_nonstream_call, anthropic/llm_stream_tool_use_call
             tool loop    anthropic/tool_use_nonstream_followup, anthropic/llm_stream_tool_use_followup
"""

from __future__ import annotations

import pytest
from google import genai
from google.genai import errors, types

import sdk_cases as cases
from sdk_cases import upstream_log

# Gemini's documented convention for a function's result: `{"output": ...}`
# (and `{"error": ...}` for a failure); see `types.FunctionResponse.response`.


@pytest.fixture()
def client(routed_gateway, replay_control, master_key):
    return genai.Client(api_key=master_key, http_options=types.HttpOptions(base_url=routed_gateway, timeout=30_000))


def declarations(tools: list[dict]) -> list[types.Tool]:
    return [
        types.Tool(
            function_declarations=[
                types.FunctionDeclaration(name=t["name"], description=t["description"] or None, parameters_json_schema=t["schema"]) for t in tools
            ]
        )
    ]


def config(system: str | None = None, tools: list[dict] | None = None, mode: str | None = None, **kw) -> types.GenerateContentConfig:
    return types.GenerateContentConfig(
        system_instruction=system,
        tools=declarations(tools) if tools else None,
        tool_config=types.ToolConfig(function_calling_config=types.FunctionCallingConfig(mode=mode)) if mode else None,
        automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
        **kw,
    )


def collect(stream) -> dict:
    """Accumulates a `generate_content_stream`: text, function calls, the
    last usage_metadata and finish reasons."""
    text, calls, usage, finishes, chunks = "", [], None, [], 0
    for chunk in stream:
        chunks += 1
        for cand in chunk.candidates or []:
            for part in (cand.content.parts if cand.content else None) or []:
                if part.text and not part.thought:
                    text += part.text
                if part.function_call:
                    calls.append(part.function_call)
            if cand.finish_reason:
                finishes.append(cand.finish_reason)
        if chunk.usage_metadata:
            usage = chunk.usage_metadata
    assert chunks > 0
    return {"text": text, "calls": calls, "usage": usage, "finishes": finishes}


def usage_of(u) -> tuple:
    return (u.prompt_token_count, u.candidates_token_count, u.total_token_count)


def openai_usage(name: str) -> tuple:
    u = cases.openai_usage(name)
    return (u["prompt_tokens"], u["completion_tokens"], u["total_tokens"])


def anthropic_usage(usage: dict) -> tuple:
    prompt = cases.anthropic_prompt_tokens(usage)
    return (prompt, usage["output_tokens"], prompt + usage["output_tokens"])


def gemini_usage(meta: dict) -> tuple:
    return (meta["promptTokenCount"], meta["candidatesTokenCount"], meta["totalTokenCount"])


def calls_of(calls) -> list[tuple[str, dict]]:
    return [(c.name, c.args) for c in calls]


# ========================================================== Gemini upstream


def test_gemini_non_stream(client, replay_control):
    rec = cases.response("gemini/generate_content_instructions.json")["body"]
    out = client.models.generate_content(
        model="gemini-2.0-flash",  # bare: the catalog routes it to the gemini provider
        contents="What is the capital of France?",
        config=config(system="You are a helpful assistant."),
    )
    assert out.text == rec["candidates"][0]["content"]["parts"][0]["text"]
    assert out.candidates[0].finish_reason == types.FinishReason.STOP
    assert usage_of(out.usage_metadata) == gemini_usage(rec["usageMetadata"])
    assert out.response_id == rec["responseId"]
    sent = upstream_log(replay_control)[0]
    assert sent["path"] == "/v1beta/models/gemini-2.0-flash:generateContent"
    assert sent["headers"]["x-goog-api-key"] == "sk-provider-gemini"


def test_gemini_stream(client, replay_control):
    name = "gemini/stream_text_basic.json"
    got = collect(
        client.models.generate_content_stream(
            model="gemini/gemini-2.0-flash-exp",
            contents="What is the capital of France?",
            config=config(system="You are a helpful chatbot.", temperature=0.0),
        )
    )
    assert got["text"] == cases.gemini_stream_text(name)
    assert got["finishes"] == [types.FinishReason.STOP]
    assert usage_of(got["usage"]) == gemini_usage(cases.gemini_stream_usage(name))
    assert upstream_log(replay_control)[0]["path"] == "/v1beta/models/gemini-2.0-flash-exp:streamGenerateContent?alt=sse"


def test_gemini_chat_stream_helper(client):
    name = "gemini/stream_text_basic.json"
    chat = client.chats.create(model="gemini/gemini-2.0-flash-exp", config=config(system="You are a helpful chatbot.", temperature=0.0))
    pieces = [chunk.text or "" for chunk in chat.send_message_stream("What is the capital of France?")]
    assert "".join(pieces) == cases.gemini_stream_text(name)
    history = chat.get_history()
    assert history[0].role == "user" and history[-1].role == "model"
    assert "".join(p.text or "" for c in history[1:] for p in c.parts or []) == cases.gemini_stream_text(name)


def test_gemini_tool_call_and_loop(client):
    call = cases.response("gemini/function_call_nonstream_call.json")["body"]
    follow = cases.response("gemini/function_call_nonstream_followup.json")["body"]
    cfg = config(system="You are a helpful chatbot.", tools=cases.GET_CAPITAL_STRICT, temperature=0.0, response_modalities=["TEXT"])
    user = types.UserContent(parts=[types.Part.from_text(text="What is the capital of France?")])
    out = client.models.generate_content(model="gemini-2.5-pro", contents=[user], config=cfg)
    assert calls_of(out.function_calls) == [("get_capital", {"country": "France"})]
    assert out.candidates[0].finish_reason == types.FinishReason.STOP
    meta = call["usageMetadata"]
    assert (out.usage_metadata.prompt_token_count, out.usage_metadata.thoughts_token_count) == (meta["promptTokenCount"], meta["thoughtsTokenCount"])
    # The model's own turn goes back, signed; pydantic-ai (the recording's
    # client) gave the call an id, which the answer names.
    model_turn = out.candidates[0].content
    assert model_turn.parts[0].thought_signature, "the call's thoughtSignature reached the client"
    model_turn.parts[0].function_call.id = "pyd_ai_1f2bdea4ea804905a3f05dfe5b96a7fb"
    result = types.Part(
        function_response=types.FunctionResponse(
            id="pyd_ai_1f2bdea4ea804905a3f05dfe5b96a7fb",
            name="get_capital",
            response={"error": 'The country is not supported. Use "La France" instead.\n\nFix the errors and try again.'},
        )
    )
    out = client.models.generate_content(model="gemini-2.5-pro", contents=[user, model_turn, types.UserContent(parts=[result])], config=cfg)
    assert calls_of(out.function_calls) == [("get_capital", {"country": "La France"})]
    assert out.usage_metadata.total_token_count == follow["usageMetadata"]["totalTokenCount"]


def test_gemini_stream_tool_call_and_loop(client):
    call, follow = "gemini/stream_function_call.json", "gemini/stream_function_call_followup.json"
    cfg = config(system="You are a helpful chatbot.", tools=cases.CAPITAL_AND_TEMPERATURE)
    user = types.UserContent(parts=[types.Part.from_text(text="What is the temperature of the capital of France?")])
    got = collect(client.models.generate_content_stream(model="gemini-2.0-flash", contents=[user], config=cfg))
    assert calls_of(got["calls"]) == cases.gemini_stream_calls(call)
    assert usage_of(got["usage"]) == gemini_usage(cases.gemini_stream_usage(call))
    # The recorded follow-up carries the id pydantic-ai gave the call.
    call_id = "pyd_ai_0e1a07b3c2b64d2ab3ad2efbe18e1b97"
    fc = got["calls"][0]
    contents = [
        user,
        types.ModelContent(parts=[types.Part(function_call=types.FunctionCall(id=call_id, name=fc.name, args=fc.args))]),
        types.UserContent(parts=[types.Part(function_response=types.FunctionResponse(id=call_id, name=fc.name, response={"return_value": "Paris"}))]),
    ]
    got = collect(client.models.generate_content_stream(model="gemini-2.0-flash", contents=contents, config=cfg))
    assert calls_of(got["calls"]) == cases.gemini_stream_calls(follow) == [("get_temperature", {"city": "Paris"})]
    assert usage_of(got["usage"]) == gemini_usage(cases.gemini_stream_usage(follow))


# ========================================================== OpenAI upstream


@pytest.mark.parametrize("api_version", [None, "v1beta"])
def test_sdk_wire_form(routed_gateway, replay_control, master_key, api_version):
    """What the SDK actually sends: its default API version, the model with
    a raw `/` in the path, the key in `x-goog-api-key`; the gateway serves
    `/v1` and `/v1beta` alike."""
    import httpx2  # the SDK's HTTP client

    seen = []
    http = httpx2.Client(event_hooks={"request": [lambda r: seen.append((r.url.path, r.headers.get("x-goog-api-key")))]})
    options = types.HttpOptions(base_url=routed_gateway, api_version=api_version, httpx_client=http, timeout=30_000)
    client = genai.Client(api_key=master_key, http_options=options)
    out = client.models.generate_content(model="openai/gpt-4o", contents="What is the capital of France?", config=config(system="You are a helpful assistant."))
    assert out.text == cases.openai_message("openai/chat_nonstream_instructions.json")["content"]
    assert seen == [(f"/{api_version or 'v1'}/models/openai/gpt-4o:generateContent", master_key)]




def test_openai_non_stream(client, replay_control):
    name = "openai/chat_nonstream_instructions.json"
    out = client.models.generate_content(model="openai/gpt-4o", contents="What is the capital of France?", config=config(system="You are a helpful assistant."))
    assert out.text == cases.openai_message(name)["content"]
    assert out.candidates[0].finish_reason == types.FinishReason.STOP
    assert usage_of(out.usage_metadata) == openai_usage(name)
    sent = upstream_log(replay_control)[0]
    assert sent["path"] == "/v1/chat/completions"
    assert sent["headers"]["authorization"] == "Bearer sk-provider-openai"


def test_openai_stream(client):
    name = "openai/chat_stream_text_moderation_include_usage.json"
    got = collect(client.models.generate_content_stream(model="openai/gpt-5", contents="What is the capital of France?"))
    assert got["text"] == cases.openai_stream_text(name) == "Paris."
    assert got["finishes"] == [types.FinishReason.STOP]
    assert usage_of(got["usage"]) == openai_usage(name)


def test_openai_chat_stream_helper(client):
    name = "openai/chat_stream_text_moderation_include_usage.json"
    chat = client.chats.create(model="openai/gpt-5")
    chunks = list(chat.send_message_stream("What is the capital of France?"))
    assert "".join(c.text or "" for c in chunks) == cases.openai_stream_text(name)
    assert usage_of([c.usage_metadata for c in chunks if c.usage_metadata][-1]) == openai_usage(name)
    assert chat.get_history()[-1].role == "model"


def test_openai_tool_call(client, replay_control):
    name = "openai/chat_tool_call_nonstream_call.json"
    out = client.models.generate_content(
        model="openai/gpt-4o",
        contents="What is the largest city in the user country?",
        config=config(tools=cases.CITY_TOOLS, mode="ANY"),
    )
    want = cases.openai_message(name)["tool_calls"][0]
    [fc] = out.function_calls
    assert (fc.id, fc.name, fc.args) == (want["id"], "get_user_country", {})
    assert out.candidates[0].finish_reason == types.FinishReason.STOP
    assert usage_of(out.usage_metadata) == openai_usage(name)
    assert upstream_log(replay_control)[0]["body"]["tool_choice"] == "required"


def test_openai_chat_tool_loop(client):
    """The SDK's chat keeps the model's function call (with the id the
    gateway gave it) in its history and sends it back with the result."""
    follow = "openai/chat_tool_call_nonstream_followup.json"
    chat = client.chats.create(model="openai/gpt-4o", config=config(tools=cases.CITY_TOOLS, mode="ANY"))
    out = chat.send_message("What is the largest city in the user country?")
    assert out.function_calls[0].name == "get_user_country"
    out = chat.send_message(types.Part.from_function_response(name="get_user_country", response={"output": "Mexico"}))
    want = cases.openai_message(follow)["tool_calls"][0]
    [fc] = out.function_calls
    assert (fc.id, fc.name, fc.args) == (want["id"], "final_result", {"city": "Mexico City", "country": "Mexico"})


def test_openai_stream_tool_call(client):
    name = "openai/chat_tool_call_stream_include_usage.json"
    got = collect(
        client.models.generate_content_stream(
            model="openai/gpt-4o-mini",
            contents="What is the capital of the UK? Use the tool, then answer.",
            config=config(tools=cases.UK_CAPITAL_TOOLS, mode="AUTO"),
        )
    )
    assert [(c.id, c.name, c.args) for c in got["calls"]] == cases.openai_stream_calls(name)
    assert got["finishes"] == [types.FinishReason.STOP]
    assert usage_of(got["usage"]) == openai_usage(name)


def test_openai_stream_tool_loop(client):
    call, follow = "openai/chat_tool_call_stream_include_usage.json", "openai/chat_stream_text_after_tool_include_usage.json"
    cfg = config(tools=cases.UK_CAPITAL_TOOLS, mode="AUTO")
    user = types.UserContent(parts=[types.Part.from_text(text="What is the capital of the UK? Use the tool, then answer.")])
    got = collect(client.models.generate_content_stream(model="openai/gpt-4o-mini", contents=[user], config=cfg))
    [fc] = got["calls"]
    contents = [
        user,
        types.ModelContent(parts=[types.Part(function_call=fc)]),
        types.UserContent(parts=[types.Part(function_response=types.FunctionResponse(id=fc.id, name=fc.name, response={"output": "London"}))]),
    ]
    got = collect(client.models.generate_content_stream(model="openai/gpt-4o-mini", contents=contents, config=cfg))
    assert got["text"] == cases.openai_stream_text(follow)
    assert usage_of(got["usage"]) == openai_usage(follow)


# ======================================================= Anthropic upstream


def test_anthropic_non_stream(client, replay_control):
    rec = cases.response("anthropic/messages_nonstream_instructions.json")["body"]
    out = client.models.generate_content(
        model="anthropic/claude-3-opus-latest",
        contents="What is the capital of France?",
        config=config(system="You are a helpful assistant.\n\n"),
    )
    assert out.text == rec["content"][0]["text"]
    assert out.candidates[0].finish_reason == types.FinishReason.STOP
    assert usage_of(out.usage_metadata) == anthropic_usage(rec["usage"])
    sent = upstream_log(replay_control)[0]
    assert sent["path"] == "/v1/messages"
    assert sent["headers"]["x-api-key"] == "sk-provider-anthropic"
    assert sent["body"]["max_tokens"] > 0, "Anthropic requires max_tokens; the gateway supplies one"


def test_anthropic_stream(client):
    name = "anthropic/stream_text_basic.json"
    got = collect(
        client.models.generate_content_stream(
            model="anthropic/claude-sonnet-4-5",
            contents="What is 1+1? Answer with just the number.",
            config=config(max_output_tokens=32000),
        )
    )
    assert got["text"] == cases.anthropic_stream_text(name) == "2"
    assert got["finishes"] == [types.FinishReason.STOP]
    inp, outp = cases.anthropic_stream_usage(name)
    assert usage_of(got["usage"]) == (inp, outp, inp + outp)


def test_anthropic_chat_stream_helper(client):
    name = "anthropic/llm_stream_text_prompt.json"
    chat = client.chats.create(model="anthropic/claude-sonnet-4-5", config=config(max_output_tokens=8192, temperature=1.0))
    chunks = list(chat.send_message_stream("Two names for a pet pelican, be brief"))
    assert "".join(c.text or "" for c in chunks) == cases.anthropic_stream_text(name)
    inp, outp = cases.anthropic_stream_usage(name)
    assert usage_of([c.usage_metadata for c in chunks if c.usage_metadata][-1]) == (inp, outp, inp + outp)


def test_anthropic_tool_call(client, replay_control):
    rec = cases.response("anthropic/tool_use_nonstream_call.json")["body"]
    out = client.models.generate_content(
        model="anthropic/claude-sonnet-4-5",
        contents="What is the largest city in the user country?",
        config=config(tools=cases.CITY_TOOLS, mode="ANY", max_output_tokens=4096),
    )
    [fc] = out.function_calls
    assert (fc.id, fc.name, fc.args) == (rec["content"][0]["id"], "get_user_country", {})
    assert out.candidates[0].finish_reason == types.FinishReason.STOP
    assert usage_of(out.usage_metadata) == anthropic_usage(rec["usage"])
    assert upstream_log(replay_control)[0]["body"]["tool_choice"] == {"type": "any"}


def test_anthropic_chat_tool_loop(client):
    follow = cases.response("anthropic/tool_use_nonstream_followup.json")["body"]
    chat = client.chats.create(model="anthropic/claude-sonnet-4-5", config=config(tools=cases.CITY_TOOLS, mode="ANY", max_output_tokens=4096))
    chat.send_message("What is the largest city in the user country?")
    out = chat.send_message(types.Part.from_function_response(name="get_user_country", response={"output": "Mexico"}))
    [fc] = out.function_calls
    assert (fc.id, fc.name, fc.args) == (follow["content"][0]["id"], "final_result", {"city": "Mexico City", "country": "Mexico"})


def test_anthropic_function_error_is_a_tool_error(client, replay_control):
    """`{"error": X}` is Gemini's failed call: Anthropic's `is_error` result."""
    chat = client.chats.create(model="anthropic/claude-sonnet-4-5", config=config(tools=cases.CITY_TOOLS, mode="ANY", max_output_tokens=4096))
    chat.send_message("What is the largest city in the user country?")
    with pytest.raises(errors.ClientError):  # no recording answers this turn
        chat.send_message(types.Part.from_function_response(name="get_user_country", response={"error": "no such user"}))
    [result] = upstream_log(replay_control)[-1]["body"]["messages"][-1]["content"]
    assert result == {"type": "tool_result", "tool_use_id": "toolu_01X9wcHKKAZD9tBC711xipPa", "content": "no such user", "is_error": True}


def test_anthropic_stream_tool_calls(client):
    name = "anthropic/llm_stream_tool_use_call.json"
    got = collect(
        client.models.generate_content_stream(
            model="anthropic/claude-haiku-4-5-20251001",
            contents="Two names for a pet pelican",
            config=config(tools=cases.PELICAN_TOOLS, max_output_tokens=8192, temperature=1.0),
        )
    )
    assert [(c.id, c.name, c.args) for c in got["calls"]] == cases.anthropic_stream_tool_uses(name)
    assert got["finishes"] == [types.FinishReason.STOP]
    inp, outp = cases.anthropic_stream_usage(name)
    assert usage_of(got["usage"]) == (inp, outp, inp + outp)


def test_anthropic_stream_tool_loop(client):
    call, follow = "anthropic/llm_stream_tool_use_call.json", "anthropic/llm_stream_tool_use_followup.json"
    cfg = config(tools=cases.PELICAN_TOOLS, max_output_tokens=8192, temperature=1.0)
    user = types.UserContent(parts=[types.Part.from_text(text="Two names for a pet pelican")])
    got = collect(client.models.generate_content_stream(model="anthropic/claude-haiku-4-5-20251001", contents=[user], config=cfg))
    # The recorded follow-up is llm's: a blank text part ahead of the calls.
    model_turn = types.ModelContent(parts=[types.Part.from_text(text=" "), *(types.Part(function_call=c) for c in got["calls"])])
    results = types.UserContent(
        parts=[types.Part(function_response=types.FunctionResponse(id=c.id, name=c.name, response={"output": out})) for c, out in zip(got["calls"], ["Charles", "Sammy"])]
    )
    got = collect(client.models.generate_content_stream(model="anthropic/claude-haiku-4-5-20251001", contents=[user, model_turn, results], config=cfg))
    assert got["text"] == cases.anthropic_stream_text(follow)
    inp, outp = cases.anthropic_stream_usage(follow)
    assert usage_of(got["usage"]) == (inp, outp, inp + outp)


# ==================================================== finish reasons, errors


@pytest.mark.parametrize(
    "model, path, body",
    [
        ("anthropic/claude-3-opus-latest", "/v1/messages", {**cases.response("anthropic/messages_nonstream_instructions.json")["body"], "stop_reason": "max_tokens"}),
        ("openai/gpt-4o", "/v1/chat/completions", cases.openai_length_body("openai/chat_nonstream_instructions.json")),
        (
            "gemini-2.0-flash",
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
    out = client.models.generate_content(model=model, contents="What is the capital of France?", config=config(max_output_tokens=8))
    assert out.candidates[0].finish_reason == types.FinishReason.MAX_TOKENS
    assert out.text.startswith("The capital of France is Paris")


@pytest.mark.parametrize("model", ["openai/gpt-4o", "anthropic/claude-sonnet-4-5", "gemini-2.0-flash"])
def test_malformed_contents_is_a_google_400(client, replay_control, model):
    with pytest.raises(errors.ClientError) as err:
        client.models.generate_content(model=model, contents=[types.Content(role="system", parts=[types.Part.from_text(text="hi")])])
    assert err.value.code == 400
    assert err.value.status == "INVALID_ARGUMENT"
    assert err.value.details["error"]["code"] == 400
    assert err.value.message
    assert upstream_log(replay_control) == [], "refused by the gateway, before any upstream call"


def test_gemini_provider_404(client):
    rec = cases.response("gemini/error_404_model_not_found.json")["body"]["error"]
    with pytest.raises(errors.ClientError) as err:
        client.models.generate_content(model="gemini/gemini-3.6-flahs", contents="hello", config=config(response_modalities=["TEXT"]))
    assert (err.value.code, err.value.status, err.value.message) == (404, "NOT_FOUND", rec["message"])


@pytest.mark.parametrize("model, transcript", [("openai/gpt-5.2-proo", "openai/error_404_model_not_found.json"), ("anthropic/claude-sonet-4-5", "anthropic/error_404_model_not_found.json")])
def test_translated_provider_404_in_google_shape(client, model, transcript):
    rec = cases.response(transcript)["body"]["error"]
    with pytest.raises(errors.ClientError) as err:
        client.models.generate_content(model=model, contents="hello", config=config(max_output_tokens=4096))
    assert (err.value.code, err.value.status) == (404, "NOT_FOUND")
    assert err.value.message == rec["message"]


def test_count_tokens_openai_is_counted_locally(client, replay_control):
    short = client.models.count_tokens(model="openai/gpt-4o", contents="hello")
    longer = client.models.count_tokens(model="openai/gpt-4o", contents="hello, and tell me the capital of France, Germany and Italy please")
    assert isinstance(short.total_tokens, int) and short.total_tokens > 0
    assert longer.total_tokens > short.total_tokens
    assert upstream_log(replay_control) == [], "OpenAI has no counting endpoint: counted by the gateway"


def test_count_tokens_anthropic_404(client, replay_control):
    rec = cases.response("anthropic/error_404_count_tokens.json")["body"]["error"]
    with pytest.raises(errors.ClientError) as err:
        client.models.count_tokens(model="anthropic/claude-does-not-exist", contents="hello")
    assert (err.value.code, err.value.status, err.value.message) == (404, "NOT_FOUND", rec["message"])
    sent = upstream_log(replay_control)[0]
    assert sent["path"].startswith("/v1/messages/count_tokens")
    assert sent["body"]["model"] == "claude-does-not-exist"
    assert sent["body"]["messages"] in ([{"role": "user", "content": "hello"}], [{"role": "user", "content": [{"type": "text", "text": "hello"}]}])


@pytest.mark.parametrize(
    "model, path, answer",
    [
        ("gemini-2.0-flash", "/v1beta/models/gemini-2.0-flash:countTokens", {"totalTokens": 7}),
        ("anthropic/claude-sonnet-4-5", "/v1/messages/count_tokens", {"input_tokens": 7}),
    ],
)
def test_count_tokens_asks_the_provider(client, replay_control, model, path, answer):
    # No counting exchange was recorded: the provider's answer is injected.
    cases.fault(replay_control, {"path": path}, {"status": 200, "body": answer})
    out = client.models.count_tokens(model=model, contents="What is the capital of France?")
    assert out.total_tokens == 7
    assert upstream_log(replay_control)[0]["path"] == path

"""The provider proxy, `/{provider}/{path}`, with the official SDKs pointed at it
(`/openai/v1`, `/anthropic`, `/gemini` as base URL): native calls of each
provider, streamed and not, go through with the provider's own key in its own
scheme (the client's ARouter key never reaches the upstream: checked in the
replay server's request log), the answers come back as the provider sent them,
and each call is billed from the usage read on the side (the transactions list
shows its tokens and its cost at the shipped price). A key without credit gets
402 on the proxy too, a rate-limited one 429, and path escapes 400.

Matrix (provider x case -> transcript):
  openai     non-stream  openai/chat_nonstream_instructions (gpt-4o)
             stream      openai/chat_stream_text_moderation_include_usage (gpt-5)
  anthropic  non-stream  anthropic/messages_nonstream_opus46_basic (claude-opus-4-6)
             stream      anthropic/stream_text_basic (claude-sonnet-4-5)
  gemini     non-stream  gemini/generate_content_instructions (gemini-2.0-flash)
             stream      gemini/stream_text_basic (gemini-2.0-flash-exp, unpriced: cost 0)
"""

from __future__ import annotations

import http.client
import json
import math
import pathlib
import time
import tomllib
import urllib.parse

import anthropic
import openai
import pytest
import requests
from google import genai
from google.genai import types

import sdk_cases as cases
import servers
import transcripts
from sdk_cases import upstream_log

PRICES = tomllib.loads(
    (pathlib.Path(__file__).resolve().parents[2] / "frontends/host/data/prices.toml").read_text()
)["models"]


def new_key(base: str, master_key: str, **fields) -> tuple[str, str]:
    created = cases.create_key(base, master_key, name="proxy", **fields)
    return created["key"], created["data"]["hash"]


@pytest.fixture()
def key(routed_gateway, replay_control, master_key):
    return new_key(routed_gateway, master_key)


def transactions(base: str, master_key: str, key_hash: str, count: int = 1) -> list[dict]:
    """The key's transactions, once the background recorder has stored them."""
    deadline = time.monotonic() + 5
    while True:
        rows = requests.get(
            base + "/api/v1/transactions",
            params={"key_id": key_hash},
            headers={"Authorization": f"Bearer {master_key}"},
            timeout=10,
        ).json()["data"]
        if len(rows) >= count or time.monotonic() > deadline:
            return rows
        time.sleep(0.1)


def shipped_cost(model: str, prompt: int, completion: int, cached: int = 0, written: int = 0) -> float:
    """USD at the shipped price of `model` (`kind/model`), rounded up to a micro-dollar as the
    gateway rounds it; 0 for an unpriced model."""
    price = PRICES.get(model)
    if price is None:
        return 0.0
    micro = lambda usd: round(usd * 1e6)  # noqa: E731 (pico-USD per token)
    pico = (
        (prompt - cached - written) * micro(price["input"])
        + cached * micro(price["cached_input"])
        + written * micro(price["cache_write"])
        + completion * micro(price["output"])
    )
    return math.ceil(pico / 1e6) / 1e6


def billed(base: str, master_key: str, key_hash: str, model: str, prompt: int, completion: int, stream: bool, **cache):
    rows = transactions(base, master_key, key_hash)
    assert len(rows) == 1, rows
    row = rows[0]
    assert row["model"] == model
    assert (row["prompt_tokens"], row["completion_tokens"]) == (prompt, completion)
    assert row["cost"] == pytest.approx(shipped_cost(model, prompt, completion, **cache), abs=1e-12)
    assert row["status"] == "complete"
    assert row["stream"] is stream
    return row


def only_the_providers_key(replay_control, header: str, value: str, client_key: str) -> dict:
    """The one upstream request: the provider's key in its scheme, nothing of the client's."""
    sent = upstream_log(replay_control)
    assert len(sent) == 1, sent
    headers = sent[0]["headers"]
    assert headers[header] == value
    for name, got in headers.items():
        assert client_key not in got, f"the client's key went upstream in {name}"
    assert client_key not in sent[0]["path"]
    return sent[0]


# ================================================================ OpenAI


def openai_client(base: str, secret: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=base + "/openai/v1", api_key=secret, max_retries=0, timeout=30)


def test_openai_sdk_non_stream(routed_gateway, replay_control, master_key, key):
    secret, key_hash = key
    t = transcripts.load("openai/chat_nonstream_instructions.json")
    rec = t["response"]["body"]
    out = openai_client(routed_gateway, secret).chat.completions.create(**t["request"]["body"])
    # The provider's own answer, unchanged: its id and model, no gateway prefix.
    assert out.id == rec["id"]
    assert out.model == rec["model"]
    assert out.choices[0].message.content == rec["choices"][0]["message"]["content"]
    sent = only_the_providers_key(replay_control, "authorization", "Bearer sk-provider-openai", secret)
    assert sent["path"] == "/v1/chat/completions"
    assert sent["body"] == t["request"]["body"]
    u = rec["usage"]
    cached = u.get("prompt_tokens_details", {}).get("cached_tokens", 0)
    row = billed(
        routed_gateway, master_key, key_hash, "openai/gpt-4o", u["prompt_tokens"], u["completion_tokens"], False, cached=cached
    )
    assert row["id"] == rec["id"]
    assert row["cost"] > 0


def test_openai_sdk_stream(routed_gateway, replay_control, master_key, key):
    secret, key_hash = key
    name = "openai/chat_stream_text_moderation_include_usage.json"
    body = transcripts.load(name)["request"]["body"]
    stream = openai_client(routed_gateway, secret).chat.completions.create(**body)
    text, usage = "", None
    for chunk in stream:
        for choice in chunk.choices:
            text += choice.delta.content or ""
        if chunk.usage:
            usage = chunk.usage
    assert text == cases.openai_stream_text(name)
    recorded = cases.openai_usage(name)
    assert (usage.prompt_tokens, usage.completion_tokens) == (recorded["prompt_tokens"], recorded["completion_tokens"])
    only_the_providers_key(replay_control, "authorization", "Bearer sk-provider-openai", secret)
    cached = (recorded.get("prompt_tokens_details") or {}).get("cached_tokens", 0)
    billed(
        routed_gateway,
        master_key,
        key_hash,
        "openai/gpt-5",
        recorded["prompt_tokens"],
        recorded["completion_tokens"],
        True,
        cached=cached,
    )


# ============================================================= Anthropic


def anthropic_client(base: str, secret: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=base + "/anthropic", api_key=secret, max_retries=0, timeout=30)


def anthropic_tokens(usage: dict) -> tuple[int, int, dict]:
    cached = usage.get("cache_read_input_tokens") or 0
    written = usage.get("cache_creation_input_tokens") or 0
    return cases.anthropic_prompt_tokens(usage), usage["output_tokens"], {"cached": cached, "written": written}


def test_anthropic_sdk_non_stream(routed_gateway, replay_control, master_key, key):
    secret, key_hash = key
    t = transcripts.load("anthropic/messages_nonstream_opus46_basic.json")
    rec = t["response"]["body"]
    out = anthropic_client(routed_gateway, secret).messages.create(**t["request"]["body"])
    assert out.id == rec["id"]
    assert out.content[0].text == rec["content"][0]["text"]
    sent = only_the_providers_key(replay_control, "x-api-key", "sk-provider-anthropic", secret)
    assert "authorization" not in sent["headers"]
    assert sent["path"].startswith("/v1/messages")
    prompt, completion, cache = anthropic_tokens(rec["usage"])
    billed(routed_gateway, master_key, key_hash, "anthropic/claude-opus-4-6", prompt, completion, False, **cache)


def test_anthropic_sdk_stream(routed_gateway, replay_control, master_key, key):
    secret, key_hash = key
    name = "anthropic/stream_text_basic.json"
    body = dict(transcripts.load(name)["request"]["body"])
    body.pop("stream")
    with anthropic_client(routed_gateway, secret).messages.stream(**body) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == cases.anthropic_stream_text(name)
    assert (final.usage.input_tokens, final.usage.output_tokens) == cases.anthropic_stream_usage(name)
    only_the_providers_key(replay_control, "x-api-key", "sk-provider-anthropic", secret)
    # Anthropic reports in two parts: message_start's counters, overridden
    # by those message_delta carries.
    events = cases.anthropic_events(name)
    usage = dict(next(e for e in events if e["type"] == "message_start")["message"]["usage"])
    delta = [e for e in events if e["type"] == "message_delta"][-1]["usage"]
    usage.update({k: v for k, v in delta.items() if v is not None})
    prompt, completion, cache = anthropic_tokens(usage)
    billed(routed_gateway, master_key, key_hash, "anthropic/claude-sonnet-4-5", prompt, completion, True, **cache)


# ================================================================ Gemini


def genai_client(base: str, secret: str) -> genai.Client:
    # The SDK's default API version is `v1`; the recordings are `v1beta`'s.
    options = types.HttpOptions(base_url=base + "/gemini", api_version="v1beta", timeout=30_000)
    return genai.Client(api_key=secret, http_options=options)


def test_genai_sdk_non_stream(routed_gateway, replay_control, master_key, key):
    secret, key_hash = key
    rec = cases.response("gemini/generate_content_instructions.json")["body"]
    client = genai_client(routed_gateway, secret)  # kept: a dropped client closes its connection
    out = client.models.generate_content(
        model="gemini-2.0-flash",
        contents="What is the capital of France?",
        config=types.GenerateContentConfig(system_instruction="You are a helpful assistant."),
    )
    assert out.text == rec["candidates"][0]["content"]["parts"][0]["text"]
    assert out.response_id == rec["responseId"]
    sent = only_the_providers_key(replay_control, "x-goog-api-key", "sk-provider-gemini", secret)
    assert sent["path"] == "/v1beta/models/gemini-2.0-flash:generateContent"
    meta = rec["usageMetadata"]
    completion = meta["candidatesTokenCount"] + meta.get("thoughtsTokenCount", 0)
    billed(routed_gateway, master_key, key_hash, "gemini/gemini-2.0-flash", meta["promptTokenCount"], completion, False)


def test_genai_sdk_stream(routed_gateway, replay_control, master_key, key):
    secret, key_hash = key
    name = "gemini/stream_text_basic.json"
    text = ""
    client = genai_client(routed_gateway, secret)
    for chunk in client.models.generate_content_stream(
        model="gemini-2.0-flash-exp",
        contents="What is the capital of France?",
        config=types.GenerateContentConfig(system_instruction="You are a helpful chatbot.", temperature=0.0),
    ):
        text += chunk.text or ""
    assert text == cases.gemini_stream_text(name)
    sent = only_the_providers_key(replay_control, "x-goog-api-key", "sk-provider-gemini", secret)
    assert sent["path"] == "/v1beta/models/gemini-2.0-flash-exp:streamGenerateContent?alt=sse"
    meta = cases.gemini_stream_usage(name)
    billed(
        routed_gateway,
        master_key,
        key_hash,
        "gemini/gemini-2.0-flash-exp",
        meta["promptTokenCount"],
        cases.gemini_output_tokens(meta),
        True,
    )


# ================================================== credit, limits, escapes


def test_a_key_without_credit_gets_402_on_the_proxy(routed_gateway, replay_control, master_key):
    secret, _ = new_key(routed_gateway, master_key, limit=0.000001)
    t = transcripts.load("openai/chat_nonstream_instructions.json")
    with pytest.raises(openai.APIStatusError) as raised:
        openai_client(routed_gateway, secret).chat.completions.create(**t["request"]["body"])
    assert raised.value.status_code == 402
    assert raised.value.code == "insufficient_credits"
    with pytest.raises(anthropic.APIStatusError) as raised:
        anthropic_client(routed_gateway, secret).messages.create(
            **transcripts.load("anthropic/messages_nonstream_opus46_basic.json")["request"]["body"]
        )
    assert raised.value.status_code == 402
    assert raised.value.body["error"]["type"] == "billing_error"
    assert upstream_log(replay_control) == []


def test_a_metered_key_may_not_send_a_body_naming_no_model(routed_gateway, replay_control, master_key):
    secret, _ = new_key(routed_gateway, master_key, limit=5)
    r = requests.post(
        routed_gateway + "/openai/v1/audio/speech", headers={"Authorization": f"Bearer {secret}"}, json={"input": "hi"}, timeout=10
    )
    assert r.status_code == 403, r.text
    assert r.json()["error"]["code"] == "unpriced_proxy_call"
    assert upstream_log(replay_control) == []


def raw_get(base: str, target: str, secret: str) -> tuple[int, dict]:
    """A request with its target sent exactly as written (no client-side normalization)."""
    url = urllib.parse.urlsplit(base)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    try:
        conn.putrequest("GET", target, skip_accept_encoding=True)
        conn.putheader("Authorization", f"Bearer {secret}")
        conn.endheaders()
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read() or b"null")
    finally:
        conn.close()


@pytest.mark.parametrize(
    "target",
    [
        "/openai/../api/v1/keys",
        "/openai/v1/../../_replay/requests",
        "/openai/v1/%2e%2e/%2E%2E/_replay/requests",
        "/openai//127.0.0.1:9/v1/models",
        "/openai/http:%2F%2F127.0.0.1:9/v1/models",
        "/openai/v1%5c..%5c_replay",
        "/openai/user@127.0.0.1:9/v1/models",
    ],
)
def test_path_escapes_are_refused(routed_gateway, replay_control, key, target):
    secret, _ = key
    status, body = raw_get(routed_gateway, target, secret)
    assert status == 400, body
    assert body["error"]["code"] == "invalid_proxy_path"
    assert upstream_log(replay_control) == []


def test_an_unknown_provider_is_a_404_in_openai_shape(routed_gateway, replay_control, key):
    secret, _ = key
    status, body = raw_get(routed_gateway, "/nosuch/v1/models", secret)
    assert status == 404
    assert isinstance(body["error"]["message"], str)
    assert upstream_log(replay_control) == []


def test_the_client_key_in_the_query_does_not_reach_the_provider(routed_gateway, replay_control, key):
    secret, _ = key
    status, _ = raw_get(routed_gateway, f"/gemini/v1beta/models?key={secret}&pageSize=2", secret)
    sent = upstream_log(replay_control)
    assert len(sent) == 1, (status, sent)
    assert sent[0]["path"] == "/v1beta/models?pageSize=2"
    assert secret not in json.dumps(sent[0])


LIMIT = 3


@pytest.fixture(scope="module")
def limited_gateway(tmp_path_factory, replay_upstream, master_key):
    url, _ = replay_upstream
    env = {
        "OPENAI_API_KEY": "sk-provider-openai",
        "OPENAI_BASE_URL": f"{url}/v1",
        "AROUTER_RATE_LIMIT": f"{LIMIT}/60s",
    }
    with servers.gateway(tmp_path_factory.mktemp("proxy-limited"), env, None, master_key) as base:
        yield base


def test_a_rate_limited_key_gets_429_on_the_proxy(limited_gateway, replay_control, master_key):
    secret, _ = new_key(limited_gateway, master_key)
    client = openai_client(limited_gateway, secret)
    body = transcripts.load("openai/chat_nonstream_instructions.json")["request"]["body"]
    for _ in range(LIMIT):
        client.chat.completions.create(**body)
    with pytest.raises(openai.RateLimitError) as raised:
        client.chat.completions.create(**body)
    assert raised.value.status_code == 429
    assert raised.value.response.headers.get("Retry-After")
    assert len(upstream_log(replay_control)) == LIMIT


# ======================================================= no usage report


QUIRK = "openai_compat/crlf_line_endings.json"  # an OpenAI-compatible stream that reports no usage


@pytest.mark.parametrize("route", ["proxy", "chat"])
def test_a_stream_reporting_no_usage_is_billed_an_estimate_not_nothing(routed_gateway, replay_control, master_key, key, route):
    """Regression: an OpenAI-shaped stream without a usage report (the client did not ask for
    one through the proxy, or a compatible server ignores `include_usage`) was billed zero
    tokens, a way around every budget. It is billed the gateway's estimate instead: the prompt
    counted with the tokenizer, the output one token per chunk; the transaction says so."""
    secret, key_hash = key
    body = transcripts.load(QUIRK)["request"]["body"]
    if route == "proxy":
        client = openai.OpenAI(base_url=routed_gateway + "/backup/v1", api_key=secret, max_retries=0, timeout=30)
        model = body["model"]
    else:
        client = openai.OpenAI(base_url=routed_gateway + "/v1", api_key=secret, max_retries=0, timeout=30)
        model = "backup/" + body["model"]
    chunks = list(client.chat.completions.create(model=model, messages=body["messages"], stream=True))
    assert chunks and all(c.usage is None for c in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    [row] = transactions(routed_gateway, master_key, key_hash)
    assert row["status"] == "estimated"
    assert row["prompt_tokens"] > 0
    if route == "proxy":
        sse = transcripts.load(QUIRK)["response"]["sse"]
        events = [line for line in sse.replace("\r\n", "\n").split("\n") if line.startswith("data:")]
        assert row["completion_tokens"] == len([e for e in events if e[5:].strip() != "[DONE]"])
    else:
        assert row["completion_tokens"] > 0


# ======================================================= allowed models


def test_a_keys_allowed_models_hold_on_the_proxy(routed_gateway, replay_control, master_key):
    """A model the key may not use is refused (403, nothing sent upstream), whether named in
    the body or in a Gemini path; an allowed one goes through; a read naming no model (listing
    the provider's models) uses none, so the list does not stop it."""
    secret, _ = new_key(routed_gateway, master_key, allowed_models=["openai/gpt-4o", "gemini/gemini-2.0-flash"])
    t = transcripts.load("openai/chat_nonstream_instructions.json")
    client = openai_client(routed_gateway, secret)
    with pytest.raises(openai.PermissionDeniedError) as refused:
        client.chat.completions.create(**{**t["request"]["body"], "model": "gpt-4o-mini"})
    assert refused.value.body["code"] == "model_not_allowed"
    headers = {"Authorization": f"Bearer {secret}"}
    gemini = requests.post(
        routed_gateway + "/gemini/v1beta/models/gemini-2.5-pro:generateContent",
        headers=headers,
        json={"contents": [{"parts": [{"text": "hi"}]}]},
        timeout=10,
    )
    assert gemini.status_code == 403 and gemini.json()["error"]["status"] == "PERMISSION_DENIED"
    nameless = requests.post(routed_gateway + "/openai/v1/files", headers=headers, json={"purpose": "x"}, timeout=10)
    assert nameless.status_code == 403, "a body naming no model cannot be held to the list"
    assert upstream_log(replay_control) == []

    assert client.chat.completions.create(**t["request"]["body"]).id == t["response"]["body"]["id"]
    listed = requests.get(routed_gateway + "/openai/v1/models", headers=headers, timeout=10)
    assert listed.status_code != 403, listed.text
    sent = upstream_log(replay_control)
    assert [(r["method"], r["path"]) for r in sent] == [("POST", "/v1/chat/completions"), ("GET", "/v1/models")]


# ======================================================= connections


def test_a_body_is_sent_whole_again_when_a_pooled_connection_was_stale(routed_gateway, replay_control, master_key, key):
    """A pooled connection that the provider closed without answering is replaced once, and the
    request goes again on a fresh one with its whole body (it once went again with none)."""
    secret, _ = key
    t = transcripts.load("openai/chat_nonstream_instructions.json")
    client = openai_client(routed_gateway, secret)  # one client connection: one gateway core and pool
    client.chat.completions.create(**t["request"]["body"])  # leaves the upstream connection pooled
    url, control = replay_control
    control.post(
        url + "/_replay/faults",
        json={"match": {"path": "/v1/chat/completions"}, "fault": {"close_without_response": True}, "times": 1},
    ).raise_for_status()
    out = client.chat.completions.create(**t["request"]["body"])
    assert out.id == t["response"]["body"]["id"]
    sent = upstream_log(replay_control)
    assert [r["body"] for r in sent] == [t["request"]["body"]] * 3


# ============================================= bodies streamed, not held


def padded(body: dict, pad: int = 200_000) -> bytes:
    """`body` as JSON with `pad` spaces before `model` (JSON allows them): longer than the
    gateway holds (`proxy_buffer_bytes`, 64 KiB), with the model after the cut, as the OpenAI
    SDK writes it after the messages."""
    rest = {k: v for k, v in body.items() if k != "model"}
    head = json.dumps(rest)[:-1]
    return (head + "," + " " * pad + '"model": ' + json.dumps(body["model"]) + "}").encode()


def post_in_two_parts(base: str, target: str, secret: str, body: bytes, pause: float) -> tuple[int, dict]:
    """POSTs `body` with a Content-Length, its first half, a pause, then the rest."""
    url = urllib.parse.urlsplit(base)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    try:
        conn.putrequest("POST", target)
        conn.putheader("Authorization", f"Bearer {secret}")
        conn.putheader("Content-Type", "application/json")
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders()
        half = len(body) // 2
        conn.send(body[:half])
        time.sleep(pause)
        conn.send(body[half:])
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())
    finally:
        conn.close()


def test_a_long_body_streams_to_the_provider_and_is_billed(routed_gateway, replay_control, master_key, key):
    """A body longer than the gateway holds reaches the provider while the client is still
    sending it (the provider had its first bytes before the client sent the second half), all
    of it, and is billed at the model read from it on the side."""
    secret, key_hash = key
    t = transcripts.load("openai/chat_nonstream_instructions.json")
    body = padded(t["request"]["body"])
    status, out = post_in_two_parts(routed_gateway, "/openai/v1/chat/completions", secret, body, pause=0.8)
    assert status == 200, out
    assert out["id"] == t["response"]["body"]["id"]
    sent = only_the_providers_key(replay_control, "authorization", "Bearer sk-provider-openai", secret)
    assert sent["body"] == t["request"]["body"]
    assert sent["body_started_ms"] is not None
    assert sent["started_ms"] - sent["body_started_ms"] >= 600, "the body was held, not streamed"
    u = t["response"]["body"]["usage"]
    cached = u.get("prompt_tokens_details", {}).get("cached_tokens", 0)
    billed(routed_gateway, master_key, key_hash, "openai/gpt-4o", u["prompt_tokens"], u["completion_tokens"], False, cached=cached)


def test_a_streamed_body_is_still_held_to_credit_and_allowed_models(routed_gateway, replay_control, master_key):
    """Credit and a key's allowed models decide at the body's end, before its last byte goes:
    the provider never gets a complete request to answer (the replay logs none)."""
    t = transcripts.load("openai/chat_nonstream_instructions.json")
    body = padded(t["request"]["body"])
    poor, _ = new_key(routed_gateway, master_key, limit=0.000001)
    status, out = post_in_two_parts(routed_gateway, "/openai/v1/chat/completions", poor, body, pause=0.1)
    assert status == 402 and out["error"]["code"] == "insufficient_credits", out
    narrow, _ = new_key(routed_gateway, master_key, allowed_models=["openai/gpt-4o-mini"])
    status, out = post_in_two_parts(routed_gateway, "/openai/v1/chat/completions", narrow, body, pause=0.1)
    assert status == 403 and out["error"]["code"] == "model_not_allowed", out
    assert "openai/gpt-4o" in out["error"]["message"]
    assert upstream_log(replay_control) == []

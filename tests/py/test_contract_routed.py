"""Contract checks that need a provider: the gateway's providers are played by the replay
upstream (`routed_gateway`), so every answer here went through a real upstream exchange.

- A provider's own error body is answered in the shape the route's dialect documents, with
  the provider's message, even on a same-dialect route (where it used to be relayed as sent).
- `google/` names the Gemini provider on every dialect's route.
"""

from __future__ import annotations

import json

import pytest

from contract import validate_response
from transcripts import load as load_transcript

TIMEOUT = 10


def _auth(master_key):
    return {"Authorization": f"Bearer {master_key}"}


def _post(http, url, master_key, body):
    return http.post(url, headers=_auth(master_key), json=body, timeout=TIMEOUT)


def _checked(resp, template):
    assert resp.headers.get("Content-Type", "").startswith("application/json"), resp.headers
    body = resp.json()
    validate_response("POST", template, resp.status_code, resp.headers["Content-Type"], body)
    return body


# ------------------------------------------------------- provider errors, same dialect


# A request no transcript matches: the replay upstream answers 404 with its own body,
# `{"error":{"message","type":"replay_no_match","hint"}}`, which is neither an Anthropic
# nor a Google error.
UNMATCHED = "no transcript will ever match this sentence 7f3a"


def test_gemini_route_normalizes_a_provider_404_without_code(routed_gateway, http, master_key, replay_control):
    r = _post(
        http,
        f"{routed_gateway}/v1beta/models/gemini-2.5-flash:generateContent",
        master_key,
        {"contents": [{"role": "user", "parts": [{"text": UNMATCHED}]}]},
    )
    assert r.status_code == 404, r.text
    err = _checked(r, "/v1beta/models/{model}:generateContent")["error"]
    assert err["code"] == 404 and err["status"] == "NOT_FOUND", err
    assert err["message"].startswith("replay: no transcript matches"), err


def test_anthropic_route_normalizes_a_provider_error_of_another_shape(
    routed_gateway, http, master_key, replay_control
):
    r = _post(
        http,
        f"{routed_gateway}/v1/messages",
        master_key,
        {"model": "anthropic/claude-sonnet-4-5", "max_tokens": 8, "messages": [{"role": "user", "content": UNMATCHED}]},
    )
    assert r.status_code == 404, r.text
    body = _checked(r, "/v1/messages")
    assert body["type"] == "error" and body["error"]["type"] == "not_found_error", body
    assert body["error"]["message"].startswith("replay: no transcript matches"), body


def test_normalized_google_error_keeps_the_providers_status_name(routed_gateway, http, master_key, replay_control):
    url, control = replay_control
    fault = {"status": 429, "body": {"error": {"message": "quota gone", "status": "RESOURCE_EXHAUSTED"}}}
    control.post(f"{url}/_replay/faults", json={"match": {"model": "gemini-2.5-flash"}, "fault": fault}).raise_for_status()
    r = _post(
        http,
        f"{routed_gateway}/v1beta/models/gemini-2.5-flash:generateContent",
        master_key,
        {"contents": [{"role": "user", "parts": [{"text": "Hello!"}]}]},
    )
    assert r.status_code == 429, r.text
    assert r.headers.get("Retry-After") == "1"
    err = _checked(r, "/v1beta/models/{model}:generateContent")["error"]
    assert err == {"code": 429, "message": "quota gone", "status": "RESOURCE_EXHAUSTED"}, err


def test_openai_route_normalizes_a_flat_provider_error(routed_gateway, http, master_key, replay_control):
    url, control = replay_control
    fault = {"status": 400, "body": {"error": "context too long", "param": 7}}
    control.post(f"{url}/_replay/faults", json={"match": {"model": "gpt-4o"}, "fault": fault}).raise_for_status()
    r = _post(
        http,
        f"{routed_gateway}/v1/chat/completions",
        master_key,
        {"model": "openai/gpt-4o", "messages": [{"role": "user", "content": "hello"}]},
    )
    assert r.status_code == 400, r.text
    err = _checked(r, "/v1/chat/completions")["error"]
    assert err["message"] == "context too long" and err["type"] == "invalid_request_error", err


@pytest.mark.parametrize(
    "name,path,template",
    [
        ("gemini/error_404_model_not_found.json", None, "/v1beta/models/{model}:generateContent"),
        ("anthropic/error_404_model_not_found.json", "/v1/messages", "/v1/messages"),
    ],
)
def test_a_well_formed_provider_error_is_relayed_byte_for_byte(
    routed_gateway, http, master_key, replay_control, name, path, template
):
    t = load_transcript(name)
    path = path or t["request"]["path"]
    body = dict(t["request"]["body"])
    if "model" in body:
        body["model"] = "anthropic/" + body["model"]
    r = _post(http, f"{routed_gateway}{path}", master_key, body)
    assert r.status_code == t["response"]["status"], r.text
    _checked(r, template)
    # The transcript's body, compact, in its recorded key order.
    assert r.content == json.dumps(t["response"]["body"], separators=(",", ":")).encode(), r.text


# ------------------------------------------------------------------ google/ alias

GEMINI_BASIC = "gemini/generate_content_basic.json"


def _hello():
    return load_transcript(GEMINI_BASIC)["request"]["body"]["contents"][0]["parts"][0]["text"]


def test_google_prefix_on_the_openai_route(routed_gateway, http, master_key, replay_control):
    r = _post(
        http,
        f"{routed_gateway}/v1/chat/completions",
        master_key,
        {"model": "google/gemini-2.5-flash", "messages": [{"role": "user", "content": _hello()}]},
    )
    assert r.status_code == 200, r.text
    body = _checked(r, "/v1/chat/completions")
    assert body["choices"][0]["message"]["content"] == "Hello! How can I help you today?"
    assert body["model"] == "gemini/gemini-2.5-flash", body["model"]


def test_google_prefix_on_the_anthropic_route(routed_gateway, http, master_key, replay_control):
    r = _post(
        http,
        f"{routed_gateway}/v1/messages",
        master_key,
        {"model": "google/gemini-2.5-flash", "max_tokens": 64, "messages": [{"role": "user", "content": _hello()}]},
    )
    assert r.status_code == 200, r.text
    body = _checked(r, "/v1/messages")
    assert body["content"][0]["text"] == "Hello! How can I help you today?"
    assert body["model"] == "gemini/gemini-2.5-flash", body["model"]


@pytest.mark.parametrize("model", ["google%2Fgemini-2.5-flash", "google/gemini-2.5-flash"])
def test_google_prefix_on_the_gemini_route(routed_gateway, http, master_key, replay_control, model):
    t = load_transcript(GEMINI_BASIC)
    r = _post(http, f"{routed_gateway}/v1beta/models/{model}:generateContent", master_key, t["request"]["body"])
    assert r.status_code == 200, r.text
    body = _checked(r, "/v1beta/models/{model}:generateContent")
    assert body["candidates"][0]["content"]["parts"][0]["text"] == "Hello! How can I help you today?"
    log = control_log(replay_control)
    assert [e["path"] for e in log] == ["/v1beta/models/gemini-2.5-flash:generateContent"], log


def control_log(replay_control):
    url, control = replay_control
    r = control.get(f"{url}/_replay/requests")
    r.raise_for_status()
    return r.json()

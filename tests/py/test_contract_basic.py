"""Basic contract checks against the running gateway: health, auth forms, error dialects.

Nothing here reaches a provider: the only configured upstream (openai) points at a closed
port, and these requests are all answered by the gateway itself.
"""

from __future__ import annotations

import re

import pytest

import contract
from contract import validate_response

MODEL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/\S+$")
TIMEOUT = 10

CHAT_BODY = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
ANTHROPIC_BODY = {
    "model": "anthropic/claude-sonnet-4-5",
    "max_tokens": 16,
    "messages": [{"role": "user", "content": "hi"}],
}
GEMINI_BODY = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}


def checked(resp, method, template):
    """Validate `resp` against the spec and return its JSON body."""
    ctype = resp.headers.get("Content-Type", "")
    assert ctype.split(";")[0].strip() == "application/json", (
        f"{method} {template}: expected application/json, got {ctype!r}; body={resp.text[:300]!r}"
    )
    body = resp.json()
    validate_response(method, template, resp.status_code, ctype, body)
    return body


def credential_forms(key):
    """(name, headers, params) for each way a client can present a key."""
    return [
        ("bearer", {"Authorization": f"Bearer {key}"}, {}),
        ("x-api-key", {"X-Api-Key": key}, {}),
        ("x-goog-api-key", {"x-goog-api-key": key}, {}),
        ("query-key", {}, {"key": key}),
    ]


FORM_NAMES = ["bearer", "x-api-key", "x-goog-api-key", "query-key"]


# ---------------------------------------------------------------------------- health


def test_healthz_needs_no_key_and_matches_spec(gateway, http):
    r = http.get(f"{gateway}/healthz", timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    body = checked(r, "GET", "/healthz")
    assert body["status"] == "ok"


def test_healthz_ignores_a_bad_key(gateway, http):
    r = http.get(f"{gateway}/healthz", headers={"Authorization": "Bearer sk-wrong"}, timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    checked(r, "GET", "/healthz")


# ---------------------------------------------------------------------------- the spec


def test_openapi_yaml_is_served_without_a_key(gateway, http):
    r = http.get(f"{gateway}/openapi.yaml", timeout=TIMEOUT)
    assert r.status_code == 200, r.text[:300]
    assert r.headers["Content-Type"] == "application/yaml", r.headers
    # Swagger UI and Postman on another origin fetch it from the browser.
    assert r.headers.get("Access-Control-Allow-Origin") == "*", r.headers
    assert r.content == contract.SPEC_PATH.read_bytes(), "served spec differs from spec/openapi.yaml"


def test_openapi_yaml_head_and_wrong_method(gateway, http, master_key):
    r = http.head(f"{gateway}/openapi.yaml", timeout=TIMEOUT)
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/yaml" and not r.content
    r = http.post(
        f"{gateway}/openapi.yaml", data=b"x", headers={"Authorization": f"Bearer {master_key}"}, timeout=TIMEOUT
    )
    assert r.status_code == 405, r.text
    assert r.headers["Allow"] == "GET, HEAD"


# ---------------------------------------------------------------------------- models


@pytest.mark.parametrize("form", FORM_NAMES)
def test_models_with_each_credential_form(gateway, http, master_key, form):
    _, headers, params = next(f for f in credential_forms(master_key) if f[0] == form)
    r = http.get(f"{gateway}/v1/models", headers=headers, params=params, timeout=TIMEOUT)
    assert r.status_code == 200, f"{form}: {r.status_code} {r.text[:300]}"
    body = checked(r, "GET", "/v1/models")
    ids = [m["id"] for m in body["data"]]
    assert ids, "no models listed although OPENAI_API_KEY is set"
    bad = [i for i in ids if not MODEL_ID.match(i)]
    assert not bad, f"model ids not in provider/model form: {bad[:10]}"
    assert any(i.startswith("openai/") for i in ids), f"no openai/ model in {ids[:20]}"


def test_models_lists_only_configured_providers(gateway, http, master_key):
    r = http.get(f"{gateway}/v1/models", headers={"Authorization": f"Bearer {master_key}"}, timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    providers = {m["id"].split("/", 1)[0] for m in checked(r, "GET", "/v1/models")["data"]}
    # Only OPENAI_API_KEY is configured for the test server.
    assert providers == {"openai"}, providers


# ---------------------------------------------------------------------------- auth (OpenAI)


def test_models_without_key_is_401_openai_shape(gateway, http):
    r = http.get(f"{gateway}/v1/models", timeout=TIMEOUT)
    assert r.status_code == 401, r.text
    body = checked(r, "GET", "/v1/models")
    assert body["error"]["message"]


@pytest.mark.parametrize("form", FORM_NAMES)
def test_models_with_wrong_key_is_401(gateway, http, form):
    _, headers, params = next(f for f in credential_forms("sk-wrong-key") if f[0] == form)
    r = http.get(f"{gateway}/v1/models", headers=headers, params=params, timeout=TIMEOUT)
    assert r.status_code == 401, f"{form}: {r.status_code} {r.text[:300]}"
    checked(r, "GET", "/v1/models")


def test_malformed_authorization_header_is_401(gateway, http, master_key):
    r = http.get(f"{gateway}/v1/models", headers={"Authorization": f"Basic {master_key}"}, timeout=TIMEOUT)
    assert r.status_code == 401, r.text
    checked(r, "GET", "/v1/models")


def test_chat_without_key_is_401_openai_shape(gateway, http):
    r = http.post(f"{gateway}/v1/chat/completions", json=CHAT_BODY, timeout=TIMEOUT)
    assert r.status_code == 401, r.text
    checked(r, "POST", "/v1/chat/completions")


def test_unknown_route_is_404_openai_shape(gateway, http, master_key):
    r = http.get(f"{gateway}/v1/nope", headers={"Authorization": f"Bearer {master_key}"}, timeout=TIMEOUT)
    assert r.status_code == 404, r.text
    body = checked(r, None, None)
    assert body["error"]["message"]


# ---------------------------------------------------------------------------- auth (Anthropic)


def test_messages_without_key_is_401_anthropic_shape(gateway, http):
    r = http.post(
        f"{gateway}/v1/messages",
        json=ANTHROPIC_BODY,
        headers={"anthropic-version": "2023-06-01"},
        timeout=TIMEOUT,
    )
    assert r.status_code == 401, r.text
    body = checked(r, "POST", "/v1/messages")
    assert body["type"] == "error"
    assert body["error"]["type"] == "authentication_error"


def test_messages_with_wrong_key_is_401_anthropic_shape(gateway, http):
    r = http.post(
        f"{gateway}/v1/messages",
        json=ANTHROPIC_BODY,
        headers={"x-api-key": "sk-wrong-key", "anthropic-version": "2023-06-01"},
        timeout=TIMEOUT,
    )
    assert r.status_code == 401, r.text
    body = checked(r, "POST", "/v1/messages")
    assert body["error"]["type"] == "authentication_error"


# ---------------------------------------------------------------------------- auth (Gemini)


@pytest.mark.parametrize("version", ["v1beta", "v1"])
def test_generate_content_without_key_is_401_google_shape(gateway, http, version):
    r = http.post(f"{gateway}/{version}/models/gemini-2.5-flash:generateContent", json=GEMINI_BODY, timeout=TIMEOUT)
    assert r.status_code == 401, r.text
    body = checked(r, "POST", f"/{version}/models/{{model}}:generateContent")
    assert body["error"]["code"] == 401
    assert body["error"]["status"] == "UNAUTHENTICATED"


def test_generate_content_with_wrong_query_key_is_401_google_shape(gateway, http):
    r = http.post(
        f"{gateway}/v1beta/models/gemini-2.5-flash:generateContent",
        params={"key": "sk-wrong-key"},
        json=GEMINI_BODY,
        timeout=TIMEOUT,
    )
    assert r.status_code == 401, r.text
    body = checked(r, "POST", "/v1beta/models/{model}:generateContent")
    assert body["error"]["status"] == "UNAUTHENTICATED"


# ---------------------------------------------------------------------------- wrong method


@pytest.mark.parametrize(
    "method,url,template,allowed",
    [
        ("GET", "/v1/chat/completions", "/v1/chat/completions", "POST"),
        ("POST", "/v1/models", "/v1/models", "GET"),
        ("GET", "/v1/messages", "/v1/messages", "POST"),
        ("GET", "/v1beta/models/gemini-2.5-flash:generateContent", "/v1beta/models/{model}:generateContent", "POST"),
    ],
)
def test_wrong_method_is_405_with_allow(gateway, http, master_key, method, url, template, allowed):
    r = http.request(method, f"{gateway}{url}", headers={"Authorization": f"Bearer {master_key}"}, timeout=TIMEOUT)
    assert r.status_code == 405, r.text
    allow = {m.strip() for m in r.headers.get("Allow", "").split(",")}
    assert allowed in allow, r.headers
    checked(r, method, template)

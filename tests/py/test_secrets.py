"""No secret ever leaves the gateway: the master key, every key it creates
and the providers' API keys appear in none of the server's output (stdout
and stderr, at debug level), its answers (bodies and headers, errors
included), its health and spec answers, or its data directory (keys are
stored as SHA-256 only). The gateway is driven through successes, every
kind of refusal (401, 403, 404, 429, 400, a provider's 402 and 401, a
provider's 500) and management errors first."""

from __future__ import annotations

import secrets as rnd

import pytest
import requests

import sdk_cases
import servers
import transcripts


def secret(prefix: str) -> str:
    return prefix + rnd.token_hex(16)


MASTER = secret("sk-orwire-master-")
PROVIDER_KEYS = {
    "OPENAI_API_KEY": secret("sk-prov-openai-"),
    "ANTHROPIC_API_KEY": secret("sk-prov-anthropic-"),
    "GEMINI_API_KEY": secret("sk-prov-gemini-"),
}


def leaked(haystack: bytes, needles: list[str]) -> list[str]:
    """The needles found in `haystack`, each also looked for by its random
    tail alone (20 hex characters), as a label or a cut-off log line would
    show part of it."""
    found = []
    for needle in needles:
        tail = needle[-20:]
        if needle.encode() in haystack or tail.encode() in haystack:
            found.append(needle)
    return found


def chat(model: str = "openai/gpt-4o") -> dict:
    body = dict(transcripts.load("openai/chat_nonstream_instructions.json")["request"]["body"])
    body["model"] = model
    return body


def test_no_secret_appears_in_output_answers_or_the_data_dir(tmp_path, replay_control):
    url, _ = replay_control
    env = {
        **PROVIDER_KEYS,
        "OPENAI_BASE_URL": f"{url}/v1",
        "ANTHROPIC_BASE_URL": url,
        "GEMINI_BASE_URL": url,
        "RUST_LOG": "debug",
    }
    answers: list[requests.Response] = []
    created: list[str] = []
    with servers.gateway(tmp_path, env, None, MASTER) as base:
        drive(base, replay_control, answers, created)
    # The gateway has stopped (SIGTERM, flushing its output) before it is read.
    secrets_all = [MASTER, *PROVIDER_KEYS.values(), *created]
    assert len(created) == 5
    for r in answers:
        seen = r.content + b"".join(f"{k}: {v}\n".encode() for k, v in r.headers.items())
        # A create's answer shows its own secret, once; no other.
        allowed = [r.json()["key"]] if r.request.method == "POST" and r.status_code == 201 else []
        found = [s for s in leaked(seen, secrets_all) if s not in allowed]
        assert not found, f"{r.request.method} {r.request.path_url} {r.status_code} shows a secret: {r.text[:300]}"
    log = (tmp_path / "gateway.log").read_bytes()
    assert b"DEBUG" in log or b"debug" in log, "the gateway logged nothing at debug level"
    assert not leaked(log, secrets_all), "a secret is in the gateway's output"
    data = b"".join(p.read_bytes() for p in (tmp_path / "data").rglob("*") if p.is_file())
    assert data, "no store files"
    assert not leaked(data, secrets_all), "a secret is stored in plain text"


def drive(base: str, replay_control, answers: list[requests.Response], created: list[str]) -> None:
    """Successes, then every kind of refusal; each answer is kept."""

    def call(method: str, path: str, key: str | None = None, how: str = "bearer", **kw) -> requests.Response:
        headers = dict(kw.pop("headers", {}))
        params = dict(kw.pop("params", {}))
        if key is not None:
            if how == "bearer":
                headers["Authorization"] = f"Bearer {key}"
            elif how == "x-api-key":
                headers["x-api-key"] = key
                headers["anthropic-version"] = "2023-06-01"
            elif how == "goog":
                headers["x-goog-api-key"] = key
            elif how == "query":
                params["key"] = key
        r = requests.request(method, base + path, headers=headers, params=params, timeout=30, **kw)
        answers.append(r)
        return r

    def create(**fields) -> tuple[str, str]:
        r = call("POST", "/api/v1/keys", MASTER, json={"name": "scan", **fields})
        assert r.status_code == 201, r.text
        return r.json()["key"], r.json()["data"]["hash"]

    user, user_hash = create()
    admin, _ = create(management=True)
    limited, _ = create(rate_limit={"requests": 1, "interval": "1h"})
    narrow, _ = create(allowed_models=["anthropic/*"])
    doomed, doomed_hash = create()
    created.extend([user, admin, limited, narrow, doomed])

    # Successes, every dialect's way of sending a key.
    assert call("POST", "/v1/chat/completions", user, json=chat()).status_code == 200
    assert call("POST", "/api/v1/chat/completions", user, json=chat()).status_code == 200
    assert call("GET", "/v1/models", user).status_code == 200
    assert call("GET", "/v1beta/models", user, how="goog").status_code == 200
    assert call("GET", "/v1beta/models", user, how="query").status_code == 200
    assert call("GET", "/api/v1/key", user).status_code == 200
    assert call("GET", "/api/v1/keys", admin).status_code == 200
    assert call("GET", "/healthz").status_code == 200
    assert call("GET", "/openapi.yaml").status_code == 200

    # Refusals.
    forged = "sk-ar-v1-" + rnd.token_hex(32)
    for how in ("bearer", "x-api-key", "goog", "query"):
        assert call("GET", "/v1/models", forged, how=how).status_code == 401
    assert call("POST", "/v1/chat/completions", MASTER[:-1], json=chat()).status_code == 401
    assert call("POST", "/v1/chat/completions", admin, json=chat()).status_code == 403
    assert call("GET", "/api/v1/keys", user).status_code == 403
    assert call("POST", "/v1/chat/completions", narrow, json=chat()).status_code == 403
    assert call("POST", "/v1/chat/completions", user, json=chat("nowhere/model")).status_code == 404
    assert call("GET", "/v1/models", limited).status_code == 200
    assert call("GET", "/v1/models", limited).status_code == 429
    assert call("POST", "/v1/chat/completions", user, data=b"{not json", headers={"content-type": "application/json"}).status_code == 400
    # A provider refusing the gateway's own key, asking for payment, failing.
    for status in (401, 402, 500):
        sdk_cases.fault(replay_control, {"model": "gpt-4o"}, {"status": status}, times=3)
        r = call("POST", "/api/v1/chat/completions", user, json=chat())
        assert r.status_code >= 400, r.text
        replay_control[1].post(replay_control[0] + "/_replay/reset").raise_for_status()
    # Management errors.
    assert call("GET", "/api/v1/keys/" + "0" * 64, MASTER).status_code == 404
    assert call("POST", "/api/v1/keys", MASTER, json={"name": 5}).status_code == 400
    assert call("PATCH", "/api/v1/keys/" + user_hash, MASTER, json={"limit": "lots"}).status_code == 400
    assert call("DELETE", "/api/v1/keys/" + doomed_hash, MASTER).status_code == 200
    assert call("GET", "/v1/models", doomed).status_code == 401
    assert call("PATCH", "/api/v1/keys/" + user_hash, MASTER, json={"disabled": True}).status_code == 200
    assert call("GET", "/v1/models", user).status_code == 401

    statuses = {r.status_code for r in answers}
    assert {200, 201, 400, 401, 403, 404, 429} <= statuses, statuses

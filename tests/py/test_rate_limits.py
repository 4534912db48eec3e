"""Per-key rate limits seen from a client: the default limit from the
gateway's config (`AROUTER_RATE_LIMIT`), a key's own `rate_limit` over it,
the `X-RateLimit-*` headers on every answer to a key (success and error,
inference and management, each dialect, stream and not), a 429 in the
route's dialect with `Retry-After` at the limit, and the next request
passing once `Retry-After` has gone by.

The limit is 5 per 60 s: one request's worth comes back every 12 s, far
longer than the few requests of a countdown take, so the counts are exact."""

from __future__ import annotations

import time

import pytest
import requests
from openrouter import OpenRouter, errors

import sdk_cases
import servers
import transcripts

LIMIT, INTERVAL_S = 5, 60


@pytest.fixture(scope="module")
def limited_gateway(tmp_path_factory, replay_upstream, master_key):
    url, _ = replay_upstream
    env = {
        "OPENAI_API_KEY": "sk-provider-openai",
        "OPENAI_BASE_URL": f"{url}/v1",
        "ANTHROPIC_API_KEY": "sk-provider-anthropic",
        "ANTHROPIC_BASE_URL": url,
        "GEMINI_API_KEY": "sk-provider-gemini",
        "GEMINI_BASE_URL": url,
        "AROUTER_RATE_LIMIT": f"{LIMIT}/{INTERVAL_S}s",
    }
    with servers.gateway(tmp_path_factory.mktemp("limited"), env, None, master_key) as base:
        yield base


def new_key(base: str, master_key: str, **fields) -> str:
    return sdk_cases.create_key(base, master_key, name="limited", **fields)["key"]


def chat_body(name: str) -> dict:
    body = dict(transcripts.load(name)["request"]["body"])
    body["model"] = "openai/" + body["model"]
    return body


def remaining(r: requests.Response) -> int:
    assert r.headers.get("X-RateLimit-Limit"), (r.status_code, dict(r.headers))
    return int(r.headers["X-RateLimit-Remaining"])


def test_the_headers_count_down_and_a_429_comes_until_retry_after(limited_gateway, replay_control, master_key):
    base = limited_gateway
    key = new_key(base, master_key)
    bearer = {"Authorization": f"Bearer {key}"}
    seen = []

    r = requests.get(base + "/api/v1/key", headers=bearer, timeout=10)
    assert r.status_code == 200
    assert r.headers["X-RateLimit-Limit"] == str(LIMIT)
    assert int(r.headers["X-RateLimit-Reset"]) >= int(time.time())
    assert r.json()["data"]["rate_limit"]["requests"] == LIMIT
    seen.append(remaining(r))

    # Inference on OpenRouter's alias, not streamed.
    r = requests.post(
        base + "/api/v1/chat/completions",
        headers=bearer,
        json=chat_body("openai/chat_nonstream_instructions.json"),
        timeout=30,
    )
    assert r.status_code == 200, r.text
    seen.append(remaining(r))

    # Streamed: the headers come with the stream's head.
    with requests.post(
        base + "/v1/chat/completions",
        headers=bearer,
        json=chat_body("openai/chat_stream_text_after_tool_include_usage.json"),
        stream=True,
        timeout=30,
    ) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        seen.append(remaining(r))
        assert b"[DONE]" in r.content

    # An error answer (Anthropic's dialect) counts and says so.
    r = requests.post(
        base + "/v1/messages",
        headers={"x-api-key": key, "anthropic-version": "2023-06-01"},
        json={"model": "nowhere/model", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]},
        timeout=10,
    )
    assert r.status_code == 404 and r.json()["type"] == "error"
    seen.append(remaining(r))

    # Gemini's dialect.
    r = requests.get(base + "/v1beta/models", headers={"x-goog-api-key": key}, timeout=10)
    assert r.status_code == 200
    seen.append(remaining(r))
    assert seen == [4, 3, 2, 1, 0]

    # At the limit: a 429 in each route's dialect, with Retry-After.
    over = {
        "openai": requests.post(
            base + "/v1/chat/completions",
            headers=bearer,
            json=chat_body("openai/chat_nonstream_instructions.json"),
            timeout=10,
        ),
        "anthropic": requests.post(
            base + "/v1/messages",
            headers={"x-api-key": key, "anthropic-version": "2023-06-01"},
            json={"model": "anthropic/x", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]},
            timeout=10,
        ),
        "google": requests.get(base + "/v1beta/models", headers={"x-goog-api-key": key}, timeout=10),
        "openrouter": requests.get(base + "/api/v1/key", headers=bearer, timeout=10),
    }
    for dialect, r in over.items():
        assert r.status_code == 429, (dialect, r.text)
        assert remaining(r) == 0
        assert 1 <= int(r.headers["Retry-After"]) <= INTERVAL_S // LIMIT, dialect
    assert over["openai"].json()["error"]["type"] == "rate_limit_error"
    assert over["anthropic"].json()["error"]["type"] == "rate_limit_error"
    assert over["google"].json()["error"]["status"] == "RESOURCE_EXHAUSTED"
    assert over["openrouter"].json()["error"]["code"] == 429

    time.sleep(int(over["openrouter"].headers["Retry-After"]))
    r = requests.get(base + "/api/v1/key", headers=bearer, timeout=10)
    assert r.status_code == 200, r.text
    assert remaining(r) == 0


def test_a_keys_own_limit_beats_the_default(limited_gateway, master_key):
    base = limited_gateway
    key = new_key(base, master_key, rate_limit={"requests": 2, "interval": "1h"})
    sdk = OpenRouter(api_key=key, server_url=base + "/api/v1")
    me = sdk.api_keys.get_current_key_metadata().data
    assert me.rate_limit.requests == 2 and me.rate_limit.interval == "3600s"
    r = requests.get(base + "/v1/models", headers={"Authorization": f"Bearer {key}"}, timeout=10)
    assert r.headers["X-RateLimit-Limit"] == "2" and remaining(r) == 0
    # The SDK's typed error for a 429.
    with pytest.raises(errors.TooManyRequestsResponseError) as e:
        sdk.chat.send(messages=[{"role": "user", "content": "hi"}], model="openai/gpt-4o")
    assert e.value.data.error.code == 429
    assert int(e.value.raw_response.headers["Retry-After"]) >= 1
    # Each key has its own bucket: a fresh key under the default is untouched.
    other = new_key(base, master_key)
    r = requests.get(base + "/v1/models", headers={"Authorization": f"Bearer {other}"}, timeout=10)
    assert r.headers["X-RateLimit-Limit"] == str(LIMIT) and remaining(r) == LIMIT - 1


def test_the_master_key_is_not_limited(limited_gateway, master_key):
    for _ in range(LIMIT + 3):
        r = requests.get(limited_gateway + "/api/v1/keys", headers={"Authorization": f"Bearer {master_key}"}, timeout=10)
        assert r.status_code == 200
        assert "X-RateLimit-Limit" not in r.headers
    me = requests.get(
        limited_gateway + "/api/v1/key", headers={"Authorization": f"Bearer {master_key}"}, timeout=10
    ).json()["data"]
    assert me["rate_limit"]["requests"] == -1

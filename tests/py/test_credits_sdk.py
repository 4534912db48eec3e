"""Credit through the real SDKs: a call the key's limit cannot cover is
refused with 402 before anything goes upstream, and each SDK raises its
own typed error for it (openai and anthropic: `APIStatusError` with status
402, as neither has a class of its own for 402; google-genai:
`errors.ClientError` with code 402 and `FAILED_PRECONDITION`). OpenRouter's
SDK reads the account's credits (`credits.get_credits`), its pydantic
model validating the answer."""

from __future__ import annotations

import anthropic
import openai
import pytest
import requests
from google import genai
from google.genai import errors, types
from openrouter import OpenRouter
from openrouter import errors as or_errors
from sdk_cases import upstream_log


# Every test here runs twice: on the SQLite store and on PostgreSQL (`--store`).


@pytest.fixture()
def gateway(store_gateway):
    return store_gateway


@pytest.fixture()
def routed_gateway(routed_store_gateway):
    return routed_store_gateway


@pytest.fixture()
def starved_key(routed_gateway, replay_control, master_key):
    """A key whose limit (one micro-dollar) covers no priced call."""
    r = requests.post(
        routed_gateway + "/api/v1/keys",
        headers={"Authorization": f"Bearer {master_key}"},
        json={"name": "starved", "limit": 0.000001},
        timeout=10,
    )
    assert r.status_code == 201, r.text
    return r.json()["key"]


def nothing_went_upstream(replay_control):
    assert upstream_log(replay_control) == []


def test_openai_sdk_raises_a_402_status_error(routed_gateway, replay_control, starved_key):
    client = openai.OpenAI(base_url=routed_gateway + "/v1", api_key=starved_key, max_retries=0)
    with pytest.raises(openai.APIStatusError) as raised:
        client.chat.completions.create(
            model="openai/gpt-4o", messages=[{"role": "user", "content": "hi"}], max_tokens=5
        )
    err = raised.value
    assert err.status_code == 402
    assert err.code == "insufficient_credits"
    assert err.type == "insufficient_quota"
    assert "credit limit" in err.message
    nothing_went_upstream(replay_control)


def test_anthropic_sdk_raises_a_402_status_error(routed_gateway, replay_control, starved_key):
    client = anthropic.Anthropic(base_url=routed_gateway, api_key=starved_key, max_retries=0, timeout=30)
    with pytest.raises(anthropic.APIStatusError) as raised:
        client.messages.create(
            model="claude-haiku-4-5", max_tokens=5, messages=[{"role": "user", "content": "hi"}]
        )
    err = raised.value
    assert err.status_code == 402
    assert err.body["type"] == "error"
    assert err.body["error"]["type"] == "billing_error"
    nothing_went_upstream(replay_control)


def test_genai_sdk_raises_a_402_client_error(routed_gateway, replay_control, starved_key):
    client = genai.Client(api_key=starved_key, http_options=types.HttpOptions(base_url=routed_gateway, timeout=30_000))
    with pytest.raises(errors.ClientError) as raised:
        client.models.generate_content(
            model="gemini-2.5-flash",
            contents="hi",
            config=types.GenerateContentConfig(max_output_tokens=5),
        )
    err = raised.value
    assert err.code == 402
    assert err.status == "FAILED_PRECONDITION"
    assert "insufficient credits" in err.message
    nothing_went_upstream(replay_control)


def test_openrouter_sdk_reads_the_credits(routed_gateway, master_key, starved_key):
    master = OpenRouter(api_key=master_key, server_url=routed_gateway + "/api/v1")
    before = master.credits.get_credits().data
    added = requests.post(
        routed_gateway + "/api/v1/balance",
        headers={"Authorization": f"Bearer {master_key}"},
        json={"amount": 2.5, "note": "sdk test"},
        timeout=10,
    )
    assert added.status_code == 200, added.text
    after = master.credits.get_credits().data
    assert after.total_credits == pytest.approx(before.total_credits + 2.5)
    assert after.total_usage >= before.total_usage
    balance = requests.get(
        routed_gateway + "/api/v1/balance", headers={"Authorization": f"Bearer {master_key}"}, timeout=10
    ).json()["data"]
    assert balance["currency"] == "USD"
    assert balance["total_credits"] == pytest.approx(after.total_credits)
    # An inference key may not read the account's credits.
    with pytest.raises(or_errors.OpenRouterError) as refused:
        OpenRouter(api_key=starved_key, server_url=routed_gateway + "/api/v1").credits.get_credits()
    assert refused.value.status_code == 403

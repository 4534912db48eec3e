"""Generations through OpenRouter's official SDK: the id a completion returns
(to the `openrouter` SDK's `chat.send` or the `openai` SDK, stream and not)
fetches its record with `generations.get_generation`, whose pydantic model
validates the answer; its tokens and cost are the ones the completion showed.
Providers are played by the replay upstream."""

from __future__ import annotations

import time

import openai
import pytest
import requests
from openrouter import OpenRouter, errors

import transcripts

WHOLE = "openai/chat_nonstream_instructions.json"
STREAMED = "openai/chat_stream_text_after_tool_include_usage.json"


def recorded(name: str) -> dict:
    body = dict(transcripts.load(name)["request"]["body"])
    body["model"] = "openai/" + body["model"]
    return body


@pytest.fixture()
def routed_gateway(routed_store_gateway):
    """Every test here runs on the SQLite store and on PostgreSQL."""
    return routed_store_gateway


@pytest.fixture()
def master(routed_gateway, master_key):
    return OpenRouter(api_key=master_key, server_url=routed_gateway + "/api/v1")


def fetch(client: OpenRouter, generation_id: str):
    """The generation, once the background recorder has stored it."""
    deadline = time.monotonic() + 5
    while True:
        try:
            return client.generations.get_generation(id=generation_id).data
        except errors.OpenRouterError as e:
            if e.status_code != 404 or time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_chat_send_id_fetches_its_generation(master, routed_gateway, master_key):
    secret = master.api_keys.create(name="generations").key
    body = recorded(WHOLE)
    # One client, OpenRouter's base URL: `chat.send` and the generation alike.
    sdk = OpenRouter(
        api_key=secret,
        server_url=routed_gateway + "/api/v1",
        http_referer="https://sdk.example/",
        x_open_router_title="SDK App",
    )
    out = sdk.chat.send(model=body["model"], messages=body["messages"], stream=False)
    assert out.id.startswith("chatcmpl-")
    gen = fetch(sdk, out.id)
    assert gen.id == out.id
    assert gen.tokens_prompt == out.usage.prompt_tokens
    assert gen.tokens_completion == out.usage.completion_tokens
    assert gen.total_cost == pytest.approx(out.usage.cost, abs=1e-12)
    assert gen.usage == gen.total_cost
    assert gen.total_cost > 0
    assert gen.model.startswith("openai/")
    assert gen.provider_name == "openai"
    assert gen.streamed is False and gen.cancelled is False
    assert gen.http_referer == "https://sdk.example/"
    assert gen.origin == "https://sdk.example/"
    assert gen.is_byok is False
    assert gen.latency is not None and gen.latency >= 0
    # The SDK's X-OpenRouter-Title is recorded as the app's title (not a field of OpenRouter's
    # generation model: read from the transactions list).
    rows = requests.get(
        routed_gateway + "/api/v1/transactions",
        params={"app": "SDK App"},
        headers={"Authorization": f"Bearer {master_key}"},
        timeout=10,
    ).json()["data"]
    assert [(r["id"], r["app_title"], r["app_referer"]) for r in rows] == [
        (out.id, "SDK App", "https://sdk.example/")
    ]


def test_openai_sdk_stream_id_fetches_its_generation(master, routed_gateway, master_key):
    secret = master.api_keys.create(name="generations-stream").key
    client = openai.OpenAI(base_url=routed_gateway + "/v1", api_key=secret, max_retries=0, timeout=30)
    body = recorded(STREAMED)
    chunks = list(client.chat.completions.create(**body))
    ids = {c.id for c in chunks}
    assert len(ids) == 1, ids
    usage = [c.usage for c in chunks if c.usage][-1]
    gen = fetch(OpenRouter(api_key=secret, server_url=routed_gateway + "/api/v1"), ids.pop())
    assert gen.streamed is True
    assert gen.tokens_prompt == usage.prompt_tokens
    assert gen.tokens_completion == usage.completion_tokens
    assert gen.total_cost == pytest.approx(usage.cost, abs=1e-12)


def test_another_keys_generation_is_a_404(master, routed_gateway):
    maker = master.api_keys.create(name="maker").key
    other = master.api_keys.create(name="other").key
    client = openai.OpenAI(base_url=routed_gateway + "/v1", api_key=maker, max_retries=0, timeout=30)
    out = client.chat.completions.create(**recorded(WHOLE))
    fetch(OpenRouter(api_key=maker, server_url=routed_gateway + "/api/v1"), out.id)
    stranger = OpenRouter(api_key=other, server_url=routed_gateway + "/api/v1")
    with pytest.raises(errors.OpenRouterError) as refused:
        stranger.generations.get_generation(id=out.id)
    assert refused.value.status_code == 404

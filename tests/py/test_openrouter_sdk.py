"""OpenRouter's official Python SDK (`openrouter`) against the gateway's keys
API and its `/api/v1` inference aliases (providers played by the replay
upstream), with only `server_url` changed: every call below is the SDK's
own, and its pydantic models validate every response, errors included
(OpenRouter's typed errors need an integer `error.code`)."""

from __future__ import annotations

import datetime as dt

import pytest
import requests
from openrouter import OpenRouter, errors

import sdk_cases
import transcripts


# Every test here runs twice: on the SQLite store and on PostgreSQL (`--store`).


@pytest.fixture()
def gateway(store_gateway):
    return store_gateway


@pytest.fixture()
def routed_gateway(routed_store_gateway):
    return routed_store_gateway


@pytest.fixture()
def master(gateway, master_key):
    return OpenRouter(api_key=master_key, server_url=gateway + "/api/v1")


def test_create_get_update_list_delete(master, gateway):
    expires = dt.datetime(2031, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
    created = master.api_keys.create(
        name="sdk key", limit=12.5, limit_reset="monthly", include_byok_in_limit=True, expires_at=expires
    )
    secret, data = created.key, created.data
    assert secret.startswith("sk-ar-v1-")
    assert data.name == "sdk key"
    assert data.limit == 12.5 and data.limit_remaining == 12.5
    assert data.limit_reset == "monthly"
    assert data.include_byok_in_limit is True
    assert data.expires_at == expires
    assert data.usage == 0 and data.usage_daily == 0 and data.usage_weekly == 0 and data.usage_monthly == 0
    assert data.disabled is False
    assert data.last_used_at is None
    assert "..." in data.label and secret not in data.label
    dt.datetime.fromisoformat(data.created_at)

    got = master.api_keys.get(hash=data.hash).data
    assert (got.hash, got.name, got.limit) == (data.hash, "sdk key", 12.5)

    updated = master.api_keys.update(hash=data.hash, name="renamed", limit=None, disabled=True).data
    assert updated.name == "renamed" and updated.limit is None and updated.limit_remaining is None
    assert updated.disabled is True
    assert updated.updated_at is not None

    listed = master.api_keys.list().data
    assert data.hash not in [k.hash for k in listed], "disabled keys are listed only when asked for"
    listed = master.api_keys.list(include_disabled=True).data
    assert data.hash in [k.hash for k in listed]
    for k in listed:
        assert secret not in k.label

    assert master.api_keys.delete(hash=data.hash).DELETED is True
    with pytest.raises(errors.OpenRouterError) as gone:
        master.api_keys.get(hash=data.hash)
    assert gone.value.status_code == 404


def test_current_key_metadata_for_a_key_and_the_master(master, gateway):
    created = master.api_keys.create(name="me", limit=3.0, limit_reset="daily")
    own = OpenRouter(api_key=created.key, server_url=gateway + "/api/v1")
    me = own.api_keys.get_current_key_metadata().data
    assert me.label == created.data.label
    assert me.limit == 3.0 and me.limit_remaining == 3.0 and me.limit_reset == "daily"
    assert me.usage == 0
    assert me.is_management_key is False
    assert me.rate_limit.requests == -1 and me.rate_limit.note
    assert [b.scope for b in me.budgets] == ["key_limit"]

    boss = master.api_keys.get_current_key_metadata().data
    assert boss.is_management_key is True
    assert boss.limit is None


def test_arouter_fields_round_trip(master, gateway, master_key):
    """ARouter's additions (rate_limit, management, allowed_models) are not in
    the SDK's parameters: set them with plain HTTP, read them back through the SDK."""
    r = requests.post(
        gateway + "/api/v1/keys",
        headers={"Authorization": f"Bearer {master_key}"},
        json={"name": "extras", "rate_limit": {"requests": 30, "interval": "1m"}, "allowed_models": ["openai/*"]},
        timeout=10,
    )
    assert r.status_code == 201, r.text
    hash_ = r.json()["data"]["hash"]
    raw = requests.get(
        gateway + f"/api/v1/keys/{hash_}", headers={"Authorization": f"Bearer {master_key}"}, timeout=10
    ).json()["data"]
    assert raw["rate_limit"] == {"requests": 30, "interval": "60s"}
    assert raw["allowed_models"] == ["openai/*"]
    assert raw["management"] is False
    # The SDK still validates the record with the extra fields in it.
    assert master.api_keys.get(hash=hash_).data.name == "extras"
    master.api_keys.delete(hash=hash_)


def test_who_may_manage(master, gateway):
    user = master.api_keys.create(name="inference only")
    as_user = OpenRouter(api_key=user.key, server_url=gateway + "/api/v1")
    with pytest.raises(errors.OpenRouterError) as refused:
        as_user.api_keys.list()
    assert refused.value.status_code == 403
    with pytest.raises(errors.OpenRouterError) as refused:
        as_user.api_keys.create(name="nope")
    assert refused.value.status_code == 403
    # Any key may read its own record.
    assert as_user.api_keys.get_current_key_metadata().data.is_management_key is False
    bad = OpenRouter(api_key="sk-ar-v1-not-a-key", server_url=gateway + "/api/v1")
    with pytest.raises(errors.OpenRouterError) as unknown:
        bad.api_keys.get_current_key_metadata()
    assert unknown.value.status_code == 401
    master.api_keys.delete(hash=user.data.hash)


# ------------------------------------------------------------ inference


def recorded(name: str) -> tuple[dict, dict]:
    t = transcripts.load(name)
    body = dict(t["request"]["body"])
    body["model"] = "openai/" + body["model"]
    return body, t["response"].get("body")


@pytest.fixture()
def routed(routed_gateway, replay_control, master_key):
    """The SDK with only its base URL changed, providers played by the replay upstream."""
    return OpenRouter(api_key=master_key, server_url=routed_gateway + "/api/v1")


def test_chat_send(routed, replay_control):
    body, answer = recorded("openai/chat_nonstream_instructions.json")
    out = routed.chat.send(
        messages=body["messages"], model=body["model"], http_referer="https://app.example", x_open_router_title="SDK test"
    )
    assert out.choices[0].message.content == answer["choices"][0]["message"]["content"]
    assert out.choices[0].finish_reason == "stop"
    assert out.model.startswith("openai/")
    assert out.usage.total_tokens == answer["usage"]["total_tokens"]
    sent = sdk_cases.upstream_log(replay_control)[-1]
    assert sent["path"].startswith("/v1/chat/completions")


def test_chat_send_stream(routed):
    body, _ = recorded("openai/chat_stream_text_after_tool_include_usage.json")
    recording = transcripts.load("openai/chat_stream_text_after_tool_include_usage.json")
    text = transcripts.stream_content(transcripts.sse_data(recording["response"]["sse"]))
    chunks = list(
        routed.chat.send(
            messages=body["messages"],
            model=body["model"],
            tools=body["tools"],
            tool_choice=body["tool_choice"],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks, "no chunks"
    got = "".join((c.choices[0].delta.content or "") for c in chunks if c.choices)
    assert got == text and text
    assert any(c.choices and c.choices[0].finish_reason == "stop" for c in chunks)
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0


def test_embeddings_generate(routed):
    body, answer = recorded("openai/embeddings_query.json")
    out = routed.embeddings.generate(input=body["input"], model=body["model"], encoding_format="base64")
    assert len(out.data) == len(answer["data"])
    assert out.data[0].embedding == answer["data"][0]["embedding"]
    assert out.usage.prompt_tokens == answer["usage"]["prompt_tokens"]


# --------------------------------------------------------------- errors


def test_typed_errors_on_the_management_api(master, gateway):
    bad = OpenRouter(api_key="sk-ar-v1-not-a-key", server_url=gateway + "/api/v1")
    with pytest.raises(errors.UnauthorizedResponseError) as e:
        bad.api_keys.list()
    assert e.value.status_code == 401 and e.value.data.error.code == 401
    assert e.value.data.error.message
    user = master.api_keys.create(name="typed errors")
    as_user = OpenRouter(api_key=user.key, server_url=gateway + "/api/v1")
    # `api_keys.list` declares no 403 model: the SDK's generic error, not
    # a failed validation; `chat.send` declares one (below).
    with pytest.raises(errors.OpenRouterDefaultError) as e:
        as_user.api_keys.list()
    assert e.value.status_code == 403
    with pytest.raises(errors.NotFoundResponseError) as e:
        master.api_keys.get(hash="0" * 64)
    assert e.value.data.error.code == 404
    with pytest.raises(errors.BadRequestResponseError) as e:
        master.api_keys.create(name="x", limit=-5)
    assert e.value.data.error.code == 400
    master.api_keys.delete(hash=user.data.hash)


def test_typed_errors_on_inference(routed, replay_control, routed_gateway, master_key):
    body, _ = recorded("openai/chat_nonstream_instructions.json")
    bad = OpenRouter(api_key="sk-ar-v1-not-a-key", server_url=routed_gateway + "/api/v1")
    with pytest.raises(errors.UnauthorizedResponseError):
        bad.chat.send(messages=body["messages"], model=body["model"])
    with pytest.raises(errors.NotFoundResponseError) as e:
        routed.chat.send(messages=body["messages"], model="nowhere/model")
    assert e.value.data.error.code == 404
    r = requests.post(
        routed_gateway + "/api/v1/keys",
        headers={"Authorization": f"Bearer {master_key}"},
        json={"name": "manages only", "management": True},
        timeout=10,
    )
    assert r.status_code == 201, r.text
    as_admin = OpenRouter(api_key=r.json()["key"], server_url=routed_gateway + "/api/v1")
    with pytest.raises(errors.ForbiddenResponseError) as e:
        as_admin.chat.send(messages=body["messages"], model=body["model"])
    assert e.value.data.error.code == 403 and e.value.data.error.metadata["code"] == "management_key"
    # A provider's own errors come in OpenRouter's shape too.
    for status, typed in [
        (402, errors.PaymentRequiredResponseError),
        (429, errors.TooManyRequestsResponseError),
        (400, errors.BadRequestResponseError),
    ]:
        sdk_cases.fault(replay_control, {"model": "gpt-4o"}, {"status": status}, times=3)
        with pytest.raises(typed) as e:
            routed.chat.send(messages=body["messages"], model=body["model"])
        assert e.value.data.error.code == status and e.value.data.error.message
        replay_control[1].post(replay_control[0] + "/_replay/reset").raise_for_status()


def test_the_openai_sdk_still_reads_api_v1_errors(routed_gateway, replay_control):
    """An OpenAI client pointed at /api/v1 gets its typed errors and the message."""
    import openai

    client = openai.OpenAI(base_url=routed_gateway + "/api/v1", api_key="sk-ar-v1-not-a-key", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as e:
        client.chat.completions.create(model="openai/gpt-4o", messages=[{"role": "user", "content": "hi"}])
    assert e.value.status_code == 401
    assert "invalid API key" in e.value.message


def test_chat_send_stream_cut_by_the_provider(routed, replay_control):
    """A provider failing mid-stream: the SDK still parses every event, and
    the last choice says `error`."""
    body, _ = recorded("openai/chat_stream_text_after_tool_include_usage.json")
    sdk_cases.fault(replay_control, {"model": "gpt-4o-mini"}, {"cut_after_events": 2})
    chunks = list(
        routed.chat.send(
            messages=body["messages"],
            model=body["model"],
            tools=body["tools"],
            tool_choice=body["tool_choice"],
            stream=True,
        )
    )
    assert any(c.choices and c.choices[0].finish_reason == "error" for c in chunks), chunks


def test_chat_send_stream_translated_and_cut_by_the_provider(routed, replay_control):
    """The same for an Anthropic provider, whose stream the gateway translates."""
    sdk_cases.fault(replay_control, {"model": "claude-sonnet-4-5"}, {"cut_after_events": 4})
    chunks = list(
        routed.chat.send(
            messages=[{"role": "user", "content": "What is 1+1? Answer with just the number."}],
            model="anthropic/claude-sonnet-4-5",
            max_tokens=32000,
            stream=True,
        )
    )
    assert any(c.choices and c.choices[0].finish_reason == "error" for c in chunks), chunks
    assert any(c.error is not None and c.error.code == 502 for c in chunks), chunks


# --------------------------------------------------------------- models


def test_models_list_and_count_in_openrouter_shape(routed, routed_gateway, master_key):
    """`models.list` / `models.count`: the SDK's pydantic `Model` validates
    every entry; the catalog is the one `/v1/models` lists; paging by
    offset/limit, `links.next` and `total_count` as OpenRouter pages."""
    catalog = requests.get(
        routed_gateway + "/v1/models", headers={"Authorization": f"Bearer {master_key}"}, timeout=10
    ).json()["data"]
    every = routed.models.list(output_modalities="all", limit=1000).result
    assert [m.id for m in every.data] == [m["id"] for m in catalog]
    assert every.total_count == len(catalog) and every.links.next is None
    assert routed.models.count(output_modalities="all").data.count == len(catalog)

    # OpenRouter's default lists text models only: embedding models need asking for.
    text = routed.models.list().result
    assert text.data and all(m.architecture.output_modalities == ["text"] for m in text.data)
    embeddings = routed.models.list(output_modalities="embeddings").result.data
    assert embeddings and all(m.architecture.output_modalities == ["embeddings"] for m in embeddings)
    assert routed.models.count().data.count == len(text.data) == text.total_count
    assert len(text.data) + len(embeddings) == len(catalog)

    # Pages of two, walked by the SDK's own pager, cover the list once;
    # `links.next` says where each next page starts.
    seen, offset = [], 0
    page = routed.models.list(offset=0, limit=2)
    while page is not None:
        assert page.result.total_count == len(text.data)
        seen += [m.id for m in page.result.data]
        offset += len(page.result.data)
        if offset < len(text.data):
            assert f"offset={offset}&limit=2" in page.result.links.next
        else:
            assert page.result.links.next is None
        page = page.next()
    assert seen == [m.id for m in text.data]

    # Filters: a search, a provider, a parameter only some providers get.
    assert {m.id.split("/")[0] for m in routed.models.list(providers="anthropic").result.data} == {"anthropic"}
    gpt = routed.models.list(q="GPT-4O").result.data
    assert gpt and all("gpt-4o" in m.id for m in gpt)
    every_text = routed.models.list(limit=1000).result.data
    with_top_k = [m.id for m in routed.models.list(supported_parameters="top_k,tools").result.data]
    assert with_top_k == [m.id for m in every_text if {"top_k", "tools"} <= set(m.supported_parameters)]
    assert {i.split("/")[0] for i in with_top_k} >= {"anthropic", "gemini"}

    claude = next(m for m in text.data if m.id.startswith("anthropic/"))
    assert claude.canonical_slug == claude.id and claude.name
    assert "tools" in claude.supported_parameters and "max_tokens" in claude.supported_parameters
    assert claude.architecture.tokenizer == "Claude"
    assert float(claude.pricing.prompt) > 0 and float(claude.pricing.completion) > 0


def test_listed_prices_are_what_a_call_costs(routed):
    """The per-token prices `models.list` shows are the ones billed: a call's
    `usage.cost` is its tokens at those prices (rounded up to a micro-USD)."""
    body, _ = recorded("openai/chat_nonstream_instructions.json")
    out = routed.chat.send(messages=body["messages"], model=body["model"])
    listed = {m.id: m for m in routed.models.list(output_modalities="all", limit=1000).result.data}
    price = listed[body["model"]].pricing
    usage = out.usage
    cached = (usage.prompt_tokens_details.cached_tokens or 0) if usage.prompt_tokens_details else 0
    expected = (usage.prompt_tokens - cached) * float(price.prompt) + usage.completion_tokens * float(
        price.completion
    )
    if cached:
        expected += cached * float(price.input_cache_read)
    assert expected > 0
    assert usage.cost == pytest.approx(expected, abs=1.01e-6)

"""The official `openai` SDK against the gateway, providers played by the
replay upstream from recorded transcripts: change the base URL and key,
nothing else."""

from __future__ import annotations

import json
import math
import pathlib
import tomllib

import openai
import pytest

import transcripts

PRICES = tomllib.loads(
    (pathlib.Path(__file__).resolve().parents[2] / "frontends/host/data/prices.toml").read_text()
)["models"]


def shipped_cost(model: str, usage) -> float:
    """USD at the shipped price of `model`, worked out here from the table: plain and cached
    input, output, rounded up to a micro-dollar as the gateway rounds it."""
    price = PRICES[model]
    cached = (usage.prompt_tokens_details.cached_tokens or 0) if usage.prompt_tokens_details else 0
    pico = (
        (usage.prompt_tokens - cached) * round(price["input"] * 1e6)
        + cached * round(price["cached_input"] * 1e6)
        + usage.completion_tokens * round(price["output"] * 1e6)
    )
    return math.ceil(pico / 1e6) / 1e6


@pytest.fixture()
def client(routed_gateway, replay_control, master_key):
    return openai.OpenAI(base_url=routed_gateway + "/v1", api_key=master_key, max_retries=0, timeout=30)


def recorded(name: str) -> tuple[dict, dict]:
    t = transcripts.load(name)
    body = dict(t["request"]["body"])
    body["model"] = "openai/" + body["model"]
    return body, t["response"]


def test_chat_non_stream(client):
    body, resp = recorded("openai/chat_nonstream_instructions.json")
    out = client.chat.completions.create(**body)
    assert out.choices[0].message.content == resp["body"]["choices"][0]["message"]["content"]
    assert out.choices[0].finish_reason == "stop"
    assert out.model.startswith("openai/")
    assert out.usage.total_tokens == resp["body"]["usage"]["total_tokens"]
    # OpenRouter's `usage.cost` (USD), kept by the SDK's model as an extra field.
    assert out.usage.cost == pytest.approx(shipped_cost(body["model"], out.usage), abs=1e-12)
    assert out.usage.cost > 0


@pytest.mark.parametrize("include_usage", [True, False])
def test_chat_stream(client, include_usage):
    body, resp = recorded("openai/chat_stream_text_after_tool_include_usage.json")
    if include_usage:
        body["stream_options"] = {"include_usage": True}
    else:
        body.pop("stream_options", None)
    chunks = list(client.chat.completions.create(**body))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == transcripts.stream_content(transcripts.sse_data(resp["sse"]))
    usage = [c.usage for c in chunks if c.usage]
    if include_usage:
        assert len(usage) == 1 and chunks[-1].usage is not None and chunks[-1].choices == []
        assert usage[0].total_tokens > 0
        assert usage[0].cost == pytest.approx(shipped_cost(body["model"], usage[0]), abs=1e-12)
    else:
        assert usage == []
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"]


def test_tool_call_non_stream(client):
    body, resp = recorded("openai/chat_tool_call_nonstream_call.json")
    out = client.chat.completions.create(**body)
    call = out.choices[0].message.tool_calls[0]
    want = resp["body"]["choices"][0]["message"]["tool_calls"][0]
    assert (call.id, call.function.name, call.function.arguments) == (
        want["id"],
        want["function"]["name"],
        want["function"]["arguments"],
    )
    assert out.choices[0].finish_reason == "tool_calls"


def test_tool_call_stream(client):
    body, resp = recorded("openai/chat_tool_call_stream_include_usage.json")
    calls: dict[int, dict] = {}
    finish = None
    for chunk in client.chat.completions.create(**body):
        for choice in chunk.choices:
            for tc in choice.delta.tool_calls or []:
                slot = calls.setdefault(tc.index, {"name": "", "args": "", "ids": 0})
                if tc.function and tc.function.name:
                    slot["name"] += tc.function.name
                if tc.id:
                    slot["ids"] += 1
                slot["args"] += (tc.function.arguments or "") if tc.function else ""
            finish = choice.finish_reason or finish
    assert finish == "tool_calls"
    assert calls and all(c["ids"] == 1 for c in calls.values())
    want = transcripts.stream_tool_args(transcripts.sse_data(resp["sse"]))
    assert {i: c["args"] for i, c in calls.items()} == want
    for c in calls.values():
        json.loads(c["args"])
        assert c["name"] == "get_capital"


def test_tool_loop_follow_up(client):
    body, resp = recorded("openai/chat_tool_call_nonstream_followup.json")
    out = client.chat.completions.create(**body)
    assert out.choices[0].message.content == resp["body"]["choices"][0]["message"]["content"]


@pytest.mark.parametrize(
    "name, kind",
    [
        ("openai/chat_json_object_nonstream.json", "json_object"),
        ("openai/chat_json_schema_nonstream_1.json", "json_schema"),
        ("openai/chat_json_schema_nonstream_2.json", "json_schema"),
    ],
)
def test_response_format(client, replay_control, name, kind):
    body, resp = recorded(name)
    assert body["response_format"]["type"] == kind
    out = client.chat.completions.create(**body)
    url, control = replay_control
    assert control.get(url + "/_replay/requests").json()[0]["body"]["response_format"] == body["response_format"]
    # These recordings answer either with JSON text or with a tool call whose
    # arguments are JSON; both must come through intact and parse.
    message = out.choices[0].message
    want = resp["body"]["choices"][0]["message"]
    if want.get("content"):
        assert message.content == want["content"]
        json.loads(message.content)
    else:
        assert message.tool_calls[0].function.arguments == want["tool_calls"][0]["function"]["arguments"]
        json.loads(message.tool_calls[0].function.arguments)


def test_embeddings(client):
    body, resp = recorded("openai/embeddings_documents.json")
    out = client.embeddings.create(**body)
    assert len(out.data) == len(resp["body"]["data"])
    assert out.usage.prompt_tokens == resp["body"]["usage"]["prompt_tokens"]


def test_models_list(client):
    ids = [m.id for m in client.models.list()]
    assert "openai/gpt-4o-mini" in ids
    assert all("/" in i for i in ids)


def test_upstream_404_is_an_api_status_error(client):
    body, resp = recorded("openai/error_404_model_not_found.json")
    with pytest.raises(openai.NotFoundError) as err:
        client.chat.completions.create(**body)
    assert err.value.status_code == 404
    assert err.value.body == resp["body"]["error"]


def test_upstream_429_surfaces_as_rate_limit_error(client, replay_control):
    url, control = replay_control
    control.post(url + "/_replay/faults", json={"match": {"path": "/v1/chat/completions"}, "fault": {"status": 429}, "times": 1}).raise_for_status()
    body, _ = recorded("openai/chat_nonstream_instructions.json")
    with pytest.raises(openai.RateLimitError) as err:
        client.chat.completions.create(**body)
    assert err.value.status_code == 429
    assert err.value.response.headers.get("retry-after") == "1"


def test_fallback_with_models_served_by_backup(client, replay_control):
    url, control = replay_control
    control.post(url + "/_replay/faults", json={"match": {"path": "/v1/chat/completions"}, "fault": {"status": 503}, "times": 1}).raise_for_status()
    body, resp = recorded("openai/chat_nonstream_instructions.json")
    model = body["model"].removeprefix("openai/")
    out = client.chat.completions.create(**body, extra_body={"models": [f"backup/{model}"], "route": "fallback"})
    assert out.model.startswith("backup/")
    assert out.choices[0].message.content == resp["body"]["choices"][0]["message"]["content"]
    upstream = control.get(url + "/_replay/requests").json()
    assert [r["headers"]["authorization"] for r in upstream] == ["Bearer sk-provider-openai", "Bearer sk-provider-backup"]


def test_mid_stream_cut_raises_in_the_sdk(client, replay_control):
    url, control = replay_control
    control.post(url + "/_replay/faults", json={"match": {"path": "/v1/chat/completions"}, "fault": {"cut_after_events": 3}, "times": 1}).raise_for_status()
    body, _ = recorded("openai/chat_stream_text_after_tool_include_usage.json")
    with pytest.raises(openai.APIError):
        for _ in client.chat.completions.create(**body):
            pass


@pytest.mark.parametrize(
    "message",
    [
        "quirk: repeated tool call name",
        "quirk: no finish reason",
        "quirk: usage in content chunk",
        "quirk: data without space",
        "quirk: crlf line endings",
        "quirk: no done terminator",
    ],
)
def test_openai_compatible_stream_quirks(client, message):
    """Whatever a compatible server does, the SDK sees a well-formed stream."""
    chunks = list(
        client.chat.completions.create(
            model="backup/quirk-model",
            messages=[{"role": "user", "content": message}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert len(finishes) == 1 and finishes[0] in {"stop", "tool_calls", "length"}
    assert sum(1 for c in chunks if c.usage) <= 1
    names = [
        tc.function.name
        for c in chunks
        for ch in c.choices
        for tc in ch.delta.tool_calls or []
        if tc.function and tc.function.name
    ]
    assert len(names) == len(set(names)), f"tool call name repeated: {names}"
    assert all(c.model.startswith("backup/") for c in chunks)


def test_openai_compatible_non_stream_eos_is_normalized(client):
    out = client.chat.completions.create(
        model="backup/quirk-model", messages=[{"role": "user", "content": "quirk: finish reason eos"}]
    )
    assert out.choices[0].finish_reason == "stop"
    assert out.choices[0].model_extra.get("native_finish_reason") == "eos"

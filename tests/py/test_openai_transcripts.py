"""Every recorded OpenAI exchange replayed through the gateway: the client
sees the same content, in the normalized schema, valid against the spec."""

from __future__ import annotations

import json

import pytest

import contract
import transcripts

NAMES = transcripts.names("openai")
PATHS = {"/v1/chat/completions": "/v1/chat/completions", "/v1/embeddings": "/v1/embeddings"}


@pytest.mark.parametrize("name", NAMES)
def test_transcript_through_gateway(name, routed_gateway, replay_control, http, master_key):
    t = transcripts.load(name)
    body = dict(t["request"]["body"])
    body["model"] = "openai/" + body["model"]
    path = t["request"]["path"]
    r = http.post(
        routed_gateway + path,
        json=body,
        headers={"Authorization": f"Bearer {master_key}"},
        timeout=30,
    )
    recorded = t["response"]
    assert r.status_code == recorded["status"], r.text
    url, control = replay_control
    upstream = control.get(url + "/_replay/requests").json()
    assert len(upstream) == 1 and upstream[0]["transcript"] == name
    assert upstream[0]["headers"]["authorization"] == "Bearer sk-provider-openai"
    assert upstream[0]["body"]["model"] == t["request"]["body"]["model"]

    if r.status_code >= 400:
        # Provider errors are relayed as sent.
        assert r.json() == recorded["body"]
        return
    if "sse" in recorded:
        assert r.headers["content-type"].startswith("text/event-stream")
        datas = transcripts.sse_data(r.text)
        assert datas[-1] == "[DONE]" and datas.count("[DONE]") == 1
        for d in datas[:-1]:
            contract.validate_sse_data("post", path, 200, json.loads(d))
        want = transcripts.sse_data(recorded["sse"])
        assert transcripts.stream_content(datas) == transcripts.stream_content(want)
        assert transcripts.stream_tool_args(datas) == transcripts.stream_tool_args(want)
        finishes = [
            c for d in datas[:-1] for c in json.loads(d).get("choices") or [] if c.get("finish_reason")
        ]
        assert len(finishes) == 1
        assert finishes[0]["finish_reason"] in {"stop", "length", "tool_calls", "content_filter", "error"}
        assert "native_finish_reason" in finishes[0]
        return
    got = r.json()
    contract.validate_response("post", PATHS[path], 200, r.headers["content-type"], got)
    want = recorded["body"]
    assert got["model"].startswith("openai/")
    if path == "/v1/embeddings":
        assert [d["embedding"] for d in got["data"]] == [d["embedding"] for d in want["data"]]
        assert without_cost(got["usage"]) == want["usage"]
        return
    for g, w in zip(got["choices"], want["choices"], strict=True):
        assert g["message"].get("content") == w["message"].get("content")
        assert g["message"].get("tool_calls") == w["message"].get("tool_calls")
        assert g["native_finish_reason"] == w["finish_reason"]
    assert without_cost(got["usage"]) == want["usage"]


def without_cost(usage: dict) -> dict:
    """The provider's usage as relayed, once the gateway's `cost` (USD, OpenRouter's field,
    always present) is checked and taken off."""
    usage = dict(usage)
    cost = usage.pop("cost")
    assert isinstance(cost, (int, float)) and cost >= 0, cost
    return usage

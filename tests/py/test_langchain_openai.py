"""LangChain's `ChatOpenAI` (langchain-openai) streaming through the gateway.

Pointed at a custom base URL, ChatOpenAI sends no `stream_options` (its
`stream_usage` defaults to on only for OpenAI's own API), so a stream shows
no usage unless the gateway runs with `--always-include-usage`
(`AROUTER_ALWAYS_INCLUDE_USAGE`, `always_include_usage` in the config file):
then the final chunk carries `usage_metadata`. The provider is played by
the replay upstream (openai/chat_stream_text_moderation_include_usage, gpt-5).
"""

from __future__ import annotations

import json

import pytest
from langchain_openai import ChatOpenAI

import servers
import transcripts
from conftest import routed_setup

NAME = "openai/chat_stream_text_moderation_include_usage.json"
PROMPT = "What is the capital of France?"


def recorded_usage() -> dict:
    datas = [d for d in transcripts.sse_data(transcripts.load(NAME)["response"]["sse"]) if d != "[DONE]"]
    return next(json.loads(d)["usage"] for d in datas if json.loads(d).get("usage"))


@pytest.fixture(scope="module")
def always_usage_gateway(tmp_path_factory, replay_upstream, master_key):
    """The routed gateway with the usage chunk always sent (set by its variable)."""
    env, config = routed_setup(replay_upstream[0])
    env["AROUTER_ALWAYS_INCLUDE_USAGE"] = "1"
    with servers.gateway(tmp_path_factory.mktemp("always-usage"), env, config, master_key) as base:
        yield base


def stream(base: str, master_key: str) -> tuple[str, list, dict]:
    """The text and chunks of one `ChatOpenAI.stream`, and the body it sends."""
    llm = ChatOpenAI(model="openai/gpt-5", base_url=base + "/v1", api_key=master_key, max_retries=0, timeout=30)
    payload = llm._get_request_payload([("user", PROMPT)], stream=True)
    chunks = list(llm.stream(PROMPT))
    return "".join(c.content for c in chunks), chunks, payload


def test_with_always_include_usage_the_final_chunk_has_usage_metadata(
    always_usage_gateway, replay_control, master_key
):
    text, chunks, payload = stream(always_usage_gateway, master_key)
    assert "stream_options" not in payload, payload
    assert text == transcripts.stream_content(transcripts.sse_data(transcripts.load(NAME)["response"]["sse"]))
    # One chunk has usage: the last the gateway sent (LangChain then adds
    # an empty chunk of its own marking the end).
    at = [i for i, c in enumerate(chunks) if c.usage_metadata]
    assert len(at) == 1, [c.usage_metadata for c in chunks]
    assert all(not c.content and not c.usage_metadata for c in chunks[at[0] + 1 :])
    assert chunks[-1].chunk_position == "last"
    u = recorded_usage()
    meta = chunks[at[0]].usage_metadata
    assert (meta["input_tokens"], meta["output_tokens"], meta["total_tokens"]) == (
        u["prompt_tokens"],
        u["completion_tokens"],
        u["total_tokens"],
    )
    # The chunks summed, as LangChain does for a whole message.
    total = chunks[0]
    for c in chunks[1:]:
        total += c
    assert total.usage_metadata["total_tokens"] == u["total_tokens"]


def test_without_it_the_stream_has_no_usage(routed_gateway, replay_control, master_key):
    text, chunks, payload = stream(routed_gateway, master_key)
    assert "stream_options" not in payload, payload
    assert text
    assert [c.usage_metadata for c in chunks if c.usage_metadata] == []

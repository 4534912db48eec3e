"""Shared pieces of the Anthropic and Google GenAI SDK tests: what the
recorded transcripts say the answer is, and the replay's request log.

Each SDK test sends the client-dialect form of a recorded native request;
these helpers read the expected text, tool calls and usage straight from
the recording, so the assertions are the provider's real answer."""

from __future__ import annotations

import copy
import json

import requests

import transcripts


def upstream_log(replay_control) -> list[dict]:
    """Every request the gateway sent upstream since the test began."""
    url, control = replay_control
    return control.get(url + "/_replay/requests").json()


def create_key(base: str, master_key: str, **fields) -> dict:
    """A new key (`POST /api/v1/keys` as the master key): the answer, secret included."""
    r = requests.post(
        base + "/api/v1/keys",
        headers={"Authorization": f"Bearer {master_key}"},
        json={"name": "test", **fields},
        timeout=10,
    )
    assert r.status_code == 201, r.text
    return r.json()


def fault(replay_control, match: dict, fault: dict, times: int = 1) -> None:
    url, control = replay_control
    control.post(url + "/_replay/faults", json={"match": match, "fault": fault, "times": times}).raise_for_status()


def response(name: str) -> dict:
    return transcripts.load(name)["response"]


def request_body(name: str) -> dict:
    return transcripts.load(name)["request"]["body"]


# ------------------------------------------------------------------ OpenAI


def openai_message(name: str) -> dict:
    return response(name)["body"]["choices"][0]["message"]


def openai_usage(name: str) -> dict:
    """The usage of a recorded OpenAI answer (non-stream body or the
    stream's final usage chunk)."""
    r = response(name)
    if r.get("body"):
        return r["body"]["usage"]
    for d in transcripts.sse_data(r["sse"]):
        if d != "[DONE]" and json.loads(d).get("usage"):
            return json.loads(d)["usage"]
    raise AssertionError(f"{name}: no usage")


def openai_stream_text(name: str) -> str:
    return transcripts.stream_content(transcripts.sse_data(response(name)["sse"]))


def openai_stream_calls(name: str) -> list[tuple[str, str, dict]]:
    """(id, name, parsed arguments) of each streamed tool call."""
    calls: dict[int, dict] = {}
    for d in transcripts.sse_data(response(name)["sse"]):
        if d == "[DONE]":
            continue
        for choice in json.loads(d).get("choices") or []:
            for tc in (choice.get("delta") or {}).get("tool_calls") or []:
                slot = calls.setdefault(tc["index"], {"id": "", "name": "", "args": ""})
                slot["id"] += tc.get("id") or ""
                fn = tc.get("function") or {}
                slot["name"] += fn.get("name") or ""
                slot["args"] += fn.get("arguments") or ""
    return [(c["id"], c["name"], json.loads(c["args"])) for _, c in sorted(calls.items())]


def openai_length_body(name: str) -> dict:
    """A recorded answer cut by the output cap: the same body with
    `finish_reason: "length"` (no recording stops on the cap)."""
    body = copy.deepcopy(response(name)["body"])
    body["choices"][0]["finish_reason"] = "length"
    return body


# --------------------------------------------------------------- Anthropic


def anthropic_events(name: str) -> list[dict]:
    return [json.loads(d) for d in transcripts.sse_data(response(name)["sse"])]


def anthropic_stream_text(name: str) -> str:
    return "".join(
        e["delta"].get("text", "")
        for e in anthropic_events(name)
        if e["type"] == "content_block_delta" and e["delta"]["type"] == "text_delta"
    )


def anthropic_stream_usage(name: str) -> tuple[int, int]:
    """(input_tokens, output_tokens) of a recorded stream: message_start's
    input, message_delta's final output."""
    events = anthropic_events(name)
    start = next(e for e in events if e["type"] == "message_start")["message"]["usage"]
    delta = [e for e in events if e["type"] == "message_delta"][-1]["usage"]
    return delta.get("input_tokens", start["input_tokens"]), delta["output_tokens"]


def anthropic_stream_tool_uses(name: str) -> list[tuple[str, str, dict]]:
    """(id, name, parsed input) of each streamed tool_use block."""
    blocks: dict[int, dict] = {}
    for e in anthropic_events(name):
        if e["type"] == "content_block_start" and e["content_block"]["type"] == "tool_use":
            b = e["content_block"]
            blocks[e["index"]] = {"id": b["id"], "name": b["name"], "json": ""}
        elif e["type"] == "content_block_delta" and e["delta"]["type"] == "input_json_delta":
            blocks[e["index"]]["json"] += e["delta"]["partial_json"]
    return [(b["id"], b["name"], json.loads(b["json"] or "{}")) for _, b in sorted(blocks.items())]


def anthropic_prompt_tokens(usage: dict) -> int:
    """Anthropic's input_tokens leave the cache counters out; the other
    dialects' prompt counts include them."""
    return usage["input_tokens"] + usage.get("cache_read_input_tokens", 0) + usage.get("cache_creation_input_tokens", 0)


# ------------------------------------------------------------------ Gemini


def gemini_chunks(name: str) -> list[dict]:
    return [json.loads(d) for d in transcripts.sse_data(response(name)["sse"])]


def gemini_parts(body: dict) -> list[dict]:
    return [p for c in body.get("candidates", []) for p in c.get("content", {}).get("parts", [])]


def gemini_stream_text(name: str) -> str:
    return "".join(p.get("text", "") for ch in gemini_chunks(name) for p in gemini_parts(ch) if not p.get("thought"))


def gemini_stream_calls(name: str) -> list[tuple[str, dict]]:
    return [(p["functionCall"]["name"], p["functionCall"].get("args", {})) for ch in gemini_chunks(name) for p in gemini_parts(ch) if "functionCall" in p]


def gemini_stream_usage(name: str) -> dict:
    return [ch["usageMetadata"] for ch in gemini_chunks(name) if ch.get("usageMetadata")][-1]


def gemini_output_tokens(meta: dict) -> int:
    """Gemini bills thoughts as output but reports them apart."""
    return meta.get("candidatesTokenCount", 0) + meta.get("thoughtsTokenCount", 0)


# ------------------------------------------------------------------ tools
# The tool definitions of the recordings, per upstream transcript family.

# openai/chat_tool_call_nonstream_{call,followup}, anthropic/tool_use_nonstream_{call,followup}
CITY_TOOLS = [
    {"name": "get_user_country", "description": "", "schema": {"additionalProperties": False, "properties": {}, "type": "object"}},
    {
        "name": "final_result",
        "description": "The final response which ends this conversation",
        "schema": {"properties": {"city": {"type": "string"}, "country": {"type": "string"}}, "required": ["city", "country"], "title": "CityLocation", "type": "object"},
    },
]
# openai/chat_tool_call_stream_include_usage, openai/chat_stream_text_after_tool_include_usage
UK_CAPITAL_TOOLS = [
    {"name": "get_capital", "description": "", "schema": {"additionalProperties": False, "properties": {"country": {"type": "string"}}, "required": ["country"], "type": "object"}},
]
# anthropic/llm_stream_tool_use_{call,followup}
PELICAN_TOOLS = [{"name": "pelican_name_generator", "description": "", "schema": {"properties": {}, "type": "object"}}]
# gemini/function_call_nonstream_{call,followup}
GET_CAPITAL_STRICT = [
    {
        "name": "get_capital",
        "description": "Get the capital of a country.",
        "schema": {"additionalProperties": False, "properties": {"country": {"description": "The country name.", "type": "string"}}, "required": ["country"], "type": "object"},
    }
]
# gemini/stream_function_call{,_followup}
CAPITAL_AND_TEMPERATURE = [
    {"name": "get_capital", "description": "Get the capital of a country.", "schema": {"properties": {"country": {"description": "The country name.", "type": "string"}}, "required": ["country"], "type": "object"}},
    {"name": "get_temperature", "description": "Get the temperature in a city.", "schema": {"properties": {"city": {"description": "The city name.", "type": "string"}}, "required": ["city"], "type": "object"}},
]


def anthropic_tools(tools: list[dict]) -> list[dict]:
    return [{"name": t["name"], "description": t["description"], "input_schema": t["schema"]} for t in tools]

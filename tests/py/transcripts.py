"""The recorded provider transcripts kept in the repository (conformance/transcripts)."""

from __future__ import annotations

import json
import pathlib

import contract

DIR = contract.REPO_ROOT / "conformance" / "transcripts"


def load(name: str) -> dict:
    return json.loads((DIR / name).read_text())


def names(provider: str) -> list[str]:
    return sorted(f"{provider}/{p.name}" for p in (DIR / provider).glob("*.json"))


def sse_data(text: str) -> list[str]:
    """The `data:` payloads of an SSE text, in order."""
    out = []
    for event in text.replace("\r\n", "\n").split("\n\n"):
        lines = [l[5:].removeprefix(" ") for l in event.split("\n") if l.startswith("data:")]
        if lines:
            out.append("\n".join(lines))
    return out


def stream_content(datas: list[str]) -> str:
    text = ""
    for d in datas:
        if d == "[DONE]":
            continue
        for choice in json.loads(d).get("choices") or []:
            text += (choice.get("delta") or {}).get("content") or ""
    return text


def stream_tool_args(datas: list[str]) -> dict[int, str]:
    args: dict[int, str] = {}
    for d in datas:
        if d == "[DONE]":
            continue
        for choice in json.loads(d).get("choices") or []:
            for call in (choice.get("delta") or {}).get("tool_calls") or []:
                fn = call.get("function") or {}
                args[call["index"]] = args.get(call["index"], "") + (fn.get("arguments") or "")
    return args

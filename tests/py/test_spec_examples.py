"""Every operation in spec/openapi.yaml carries examples, and every example is valid.

- Request: each request body media type has an example, and each parameter has one (an
  operation with neither takes no input, so its request is just its method and path).
- Response: at least one response of the operation has an example.
- Each example validates against the schema it stands next to (for a `text/event-stream`
  example, each `data:` payload against the media type's `x-sse-data-schema`; for a JSON Lines
  example, each line against its `x-jsonl-line-schema`).

The examples are what tools show first (Swagger UI, Postman) and what schemathesis sends in its
examples phase, so an invalid one misleads people and tools alike. The bodies are recorded
exchanges from conformance/transcripts (model ids in ARouter's `provider/model` form).
"""

from __future__ import annotations

import json

import pytest

import contract
from contract import follow_ref, iter_operations, pointer, resolve_pointer

OPERATIONS = sorted((path, method) for path, method, _ in iter_operations())


def _examples(ptr: str) -> list[tuple[str, object]]:
    """(name, value) of the `example` / `examples` of the object at `ptr`, following $refs."""
    node = resolve_pointer(ptr)
    found = []
    if "example" in node:
        found.append(("example", node["example"]))
    for name, ex in (node.get("examples") or {}).items():
        ex_ptr = follow_ref(ptr + pointer("examples", name))
        ex = resolve_pointer(ex_ptr)
        assert "value" in ex, f"{ex_ptr}: an example needs a `value` (externalValue is not used here)"
        found.append((name, ex["value"]))
    return found


def _parameters(path: str, method: str) -> list[str]:
    """Pointers to the (dereferenced) parameters of an operation, path-level ones included."""
    out = []
    for base in (pointer("paths", path), pointer("paths", path, method)):
        for i, _ in enumerate(resolve_pointer(base).get("parameters", [])):
            out.append(follow_ref(base + pointer("parameters", str(i))))
    return out


def _sse_payloads(text: str) -> list[object]:
    return [json.loads(e["data"]) for e in contract.parse_sse(text)]


def _check_media_examples(media_ptr: str, what: str) -> int:
    media = resolve_pointer(media_ptr)
    examples = _examples(media_ptr)
    for name, value in examples:
        label = f"{what} example {name!r}"
        if "schema" in media:
            contract.validate_at(media_ptr + "/schema", value, label)
        if "x-sse-data-schema" in media:
            payloads = _sse_payloads(value)
            assert payloads, f"{label}: no data: events"
            for payload in payloads:
                contract.validate_at(media_ptr + "/x-sse-data-schema", payload, label + " event")
        if "x-jsonl-line-schema" in media:
            lines = [json.loads(line) for line in value.splitlines() if line.strip()]
            assert lines, f"{label}: no JSON lines"
            for line in lines:
                contract.validate_at(media_ptr + "/x-jsonl-line-schema", line, label + " line")
    return len(examples)


@pytest.mark.parametrize("path,method", OPERATIONS, ids=[f"{m.upper()} {p}" for p, m in OPERATIONS])
def test_request_examples(path, method):
    op_ptr = pointer("paths", path, method)
    op = resolve_pointer(op_ptr)
    inputs = 0
    if "requestBody" in op:
        body_ptr = follow_ref(op_ptr + "/requestBody")
        for media_type in resolve_pointer(body_ptr)["content"]:
            media_ptr = follow_ref(body_ptr + pointer("content", media_type))
            n = _check_media_examples(media_ptr, f"{method.upper()} {path} request {media_type}")
            assert n, f"{method.upper()} {path}: the {media_type} request body has no example"
            inputs += 1
    for param_ptr in _parameters(path, method):
        param = resolve_pointer(param_ptr)
        examples = _examples(param_ptr)
        assert examples, f"{method.upper()} {path}: parameter {param['name']!r} has no example"
        for name, value in examples:
            contract.validate_at(param_ptr + "/schema", value, f"{method.upper()} {path} {param['name']} {name}")
        inputs += 1
    if not inputs:
        # Nothing to give: no body, no parameter. Only bodiless GETs are like that.
        assert method == "get", f"{method.upper()} {path} takes no input at all?"


@pytest.mark.parametrize("path,method", OPERATIONS, ids=[f"{m.upper()} {p}" for p, m in OPERATIONS])
def test_response_examples(path, method):
    responses_ptr = pointer("paths", path, method, "responses")
    total = 0
    for code in resolve_pointer(responses_ptr):
        resp_ptr = follow_ref(responses_ptr + pointer(code))
        for media_type in resolve_pointer(resp_ptr).get("content", {}):
            media_ptr = follow_ref(resp_ptr + pointer("content", media_type))
            total += _check_media_examples(media_ptr, f"{method.upper()} {path} {code} {media_type}")
    assert total, f"{method.upper()} {path}: no response has an example"


def test_a_broken_example_is_caught():
    """The checks above can fail: a chat completion without `choices` is refused."""
    media_ptr = follow_ref(pointer("paths", "/v1/chat/completions", "post", "responses", "200"))
    media_ptr += pointer("content", "application/json")
    name, good = _examples(media_ptr)[0]
    contract.validate_at(media_ptr + "/schema", good, name)
    bad = {k: v for k, v in good.items() if k != "choices"}
    with pytest.raises(contract.ContractError):
        contract.validate_at(media_ptr + "/schema", bad, "broken")

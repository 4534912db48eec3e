"""Static checks of spec/openapi.yaml (no server needed)."""

from __future__ import annotations

import re

import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate as validate_openapi
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError

import contract
from contract import iter_operations, load_spec, resolve_pointer

# Every (method, path) the gateway serves. Adding an endpoint to the server means adding it
# here and to the spec.
SERVED = [
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/openapi.yaml"),
    ("get", "/dashboard"),
    ("get", "/dashboard/{asset}"),
    # OpenAI
    ("post", "/v1/chat/completions"),
    ("post", "/v1/embeddings"),
    ("post", "/v1/responses"),
    ("get", "/v1/responses/{response_id}"),
    ("delete", "/v1/responses/{response_id}"),
    ("get", "/v1/responses/{response_id}/input_items"),
    ("get", "/v1/models"),
    ("get", "/v1/models/{model}"),
    # Anthropic
    ("post", "/v1/messages"),
    ("post", "/v1/messages/count_tokens"),
    ("post", "/v1/messages/batches"),
    ("get", "/v1/messages/batches"),
    ("get", "/v1/messages/batches/{batch_id}"),
    ("delete", "/v1/messages/batches/{batch_id}"),
    ("post", "/v1/messages/batches/{batch_id}/cancel"),
    ("get", "/v1/messages/batches/{batch_id}/results"),
    # Gemini
    ("post", "/v1beta/models/{model}:generateContent"),
    ("post", "/v1beta/models/{model}:streamGenerateContent"),
    ("post", "/v1beta/models/{model}:countTokens"),
    ("post", "/v1/models/{model}:generateContent"),
    ("post", "/v1/models/{model}:streamGenerateContent"),
    ("post", "/v1/models/{model}:countTokens"),
    ("get", "/v1beta/models"),
    ("get", "/v1beta/models/{model}"),
    ("post", "/v1beta/models/{model}:embedContent"),
    ("post", "/v1beta/models/{model}:batchEmbedContents"),
    ("post", "/v1/models/{model}:embedContent"),
    ("post", "/v1/models/{model}:batchEmbedContents"),
    # Management
    ("get", "/api/v1/keys"),
    ("post", "/api/v1/keys"),
    ("get", "/api/v1/keys/{hash}"),
    ("patch", "/api/v1/keys/{hash}"),
    ("delete", "/api/v1/keys/{hash}"),
    ("get", "/api/v1/key"),
    ("get", "/api/v1/balance"),
    ("post", "/api/v1/balance"),
    ("get", "/api/v1/credits"),
    ("get", "/api/v1/transactions"),
    ("get", "/api/v1/generation"),
    ("get", "/metrics"),
    # OpenRouter's paths for the OpenAI routes
    ("post", "/api/v1/chat/completions"),
    ("post", "/api/v1/embeddings"),
    ("post", "/api/v1/responses"),
    ("get", "/api/v1/responses/{response_id}"),
    ("delete", "/api/v1/responses/{response_id}"),
    ("get", "/api/v1/responses/{response_id}/input_items"),
    ("get", "/api/v1/models"),
    ("get", "/api/v1/models/count"),
    # Provider proxy
    ("get", "/{provider}/{path}"),
    ("post", "/{provider}/{path}"),
    ("put", "/{provider}/{path}"),
    ("patch", "/{provider}/{path}"),
    ("delete", "/{provider}/{path}"),
]

OPENAI_ERROR_STATUSES = {"400", "401", "402", "404", "413", "429", "431", "500", "502", "503", "504"}


def _walk(node, path=""):
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _walk(v, f"{path}/{contract.escape_pointer_token(str(k))}")
        yield path, node
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _walk(v, f"{path}/{i}")


def _operation_params(path: str, method: str) -> list[dict]:
    item = load_spec()["paths"][path]
    params = list(item.get("parameters", [])) + list(item[method].get("parameters", []))
    out = []
    for p in params:
        if "$ref" in p:
            p = resolve_pointer(p["$ref"][1:])
        out.append(p)
    return out


def test_is_valid_openapi_31():
    spec = load_spec()
    assert spec["openapi"].startswith("3.1."), spec["openapi"]
    try:
        validate_openapi(spec)
    except OpenAPIValidationError as e:  # pragma: no cover - message is the point
        pytest.fail(f"spec/openapi.yaml is not a valid OpenAPI 3.1 document: {e}")


def test_every_ref_resolves():
    bad = []
    for where, node in _walk(load_spec()):
        ref = node.get("$ref")
        if not isinstance(ref, str):
            continue
        if not ref.startswith("#/"):
            bad.append(f"{where}: non-local $ref {ref}")
            continue
        try:
            resolve_pointer(ref[1:])
        except (KeyError, IndexError, ValueError):
            bad.append(f"{where}: unresolved $ref {ref}")
    assert not bad, "\n".join(bad)


def test_every_component_schema_is_valid_draft_2020_12():
    for name, schema in load_spec()["components"]["schemas"].items():
        Draft202012Validator.check_schema(schema)


def test_every_operation_has_a_unique_operation_id():
    seen = {}
    for path, method, op in iter_operations():
        op_id = op.get("operationId")
        assert op_id, f"{method.upper()} {path} has no operationId"
        assert re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", op_id), op_id
        assert op_id not in seen, f"operationId {op_id} used by {seen[op_id]} and {method.upper()} {path}"
        seen[op_id] = f"{method.upper()} {path}"


def test_every_operation_documents_an_error_response():
    for path, method, op in iter_operations():
        codes = [c for c in op["responses"] if c[0] in "45"]
        assert codes, f"{method.upper()} {path} documents no 4xx/5xx response"


def test_every_operation_has_a_tag_and_success_response():
    for path, method, op in iter_operations():
        assert op.get("tags"), f"{method.upper()} {path} has no tag"
        assert any(c.startswith("2") or c == "default" for c in op["responses"]), f"{method.upper()} {path}"


@pytest.mark.parametrize("method,path", SERVED, ids=[f"{m.upper()} {p}" for m, p in SERVED])
def test_served_path_is_documented(method, path):
    paths = load_spec()["paths"]
    assert path in paths, f"{path} missing from spec"
    assert method in paths[path], f"{method.upper()} {path} missing from spec"


def test_spec_has_no_undocumented_extra_operations():
    served = set(SERVED)
    extra = [(m, p) for p, m, _ in iter_operations() if (m, p) not in served]
    assert not extra, f"operations in the spec but not in SERVED (update the list): {extra}"


def test_path_parameters_are_declared():
    for path, method, _ in iter_operations():
        names = set(re.findall(r"{([^}]+)}", path))
        declared = {p["name"] for p in _operation_params(path, method) if p["in"] == "path"}
        assert names == declared, f"{method.upper()} {path}: template {names} vs declared {declared}"


def test_security_schemes():
    spec = load_spec()
    schemes = spec["components"]["securitySchemes"]
    assert schemes["bearerAuth"] == {**schemes["bearerAuth"], "type": "http", "scheme": "bearer"}
    assert (schemes["apiKeyHeader"]["in"], schemes["apiKeyHeader"]["name"]) == ("header", "X-Api-Key")
    assert (schemes["googApiKey"]["in"], schemes["googApiKey"]["name"]) == ("header", "x-goog-api-key")
    assert (schemes["apiKeyQuery"]["in"], schemes["apiKeyQuery"]["name"]) == ("query", "key")
    # Global security: any one of the four.
    assert sorted(next(iter(r)) for r in spec["security"]) == sorted(schemes)
    assert all(len(r) == 1 for r in spec["security"])
    assert spec["paths"]["/healthz"]["get"]["security"] == []
    assert spec["paths"]["/readyz"]["get"]["security"] == []
    assert spec["paths"]["/openapi.yaml"]["get"]["security"] == []
    # The dashboard's files hold no data: the page asks for a key itself.
    assert spec["paths"]["/dashboard"]["get"]["security"] == []
    assert spec["paths"]["/dashboard/{asset}"]["get"]["security"] == []
    # Nothing else opts out of authentication.
    for path, method, op in iter_operations():
        if path not in ("/healthz", "/readyz", "/openapi.yaml", "/dashboard", "/dashboard/{asset}"):
            assert op.get("security") != [], f"{method.upper()} {path} must require a credential"


def _error_schema_of(response: dict) -> str:
    if "$ref" in response:
        response = resolve_pointer(response["$ref"][1:])
    ref = response["content"]["application/json"]["schema"]["$ref"]
    return ref.rsplit("/", 1)[-1]


@pytest.mark.parametrize(
    "prefix,schema",
    [
        ("/v1/chat/", "OpenAIError"),
        ("/v1/embeddings", "OpenAIError"),
        ("/v1/responses", "OpenAIError"),
        ("/api/", "OpenRouterError"),
        ("/v1/messages", "AnthropicError"),
        ("/v1beta/", "GoogleError"),
        ("/v1/models/{model}:", "GoogleError"),
    ],
)
def test_errors_use_the_dialect_of_the_endpoint(prefix, schema):
    matched = 0
    for path, method, op in iter_operations():
        if not path.startswith(prefix):
            continue
        for code, resp in op["responses"].items():
            if code[0] in "45":
                matched += 1
                assert _error_schema_of(resp) == schema, f"{method.upper()} {path} {code}"
    assert matched


def test_openai_endpoints_document_all_gateway_errors():
    spec = load_spec()
    for path in ("/v1/chat/completions", "/v1/embeddings", "/v1/responses", "/api/v1/chat/completions", "/api/v1/embeddings", "/api/v1/responses"):
        codes = set(spec["paths"][path]["post"]["responses"])
        assert OPENAI_ERROR_STATUSES <= codes, f"{path} lacks {OPENAI_ERROR_STATUSES - codes}"


def test_openai_endpoints_take_attribution_headers():
    for path, method in (("/v1/chat/completions", "post"), ("/v1/embeddings", "post"), ("/v1/responses", "post"), ("/v1/models", "get")):
        names = {p["name"] for p in _operation_params(path, method) if p["in"] == "header"}
        assert {"HTTP-Referer", "X-Title"} <= names, path


def test_anthropic_endpoints_take_version_headers():
    for path, method, op in iter_operations():
        if path.startswith("/v1/messages"):
            names = {p["name"] for p in _operation_params(path, method) if p["in"] == "header"}
            assert {"anthropic-version", "anthropic-beta"} <= names, f"{method.upper()} {path}"


def test_429_responses_carry_retry_after():
    for path, method, op in iter_operations():
        resp = op["responses"].get("429")
        if resp is None:
            continue
        if "$ref" in resp:
            resp = resolve_pointer(resp["$ref"][1:])
        assert "Retry-After" in resp.get("headers", {}), f"{method.upper()} {path} 429"


def test_streaming_responses_name_their_event_schema():
    for path, method, op in iter_operations():
        for code, resp in op["responses"].items():
            if "$ref" in resp:
                resp = resolve_pointer(resp["$ref"][1:])
            media = resp.get("content", {}).get("text/event-stream")
            if media is not None:
                ref = media.get("x-sse-data-schema", {}).get("$ref", "")
                assert ref.startswith("#/components/schemas/"), f"{method.upper()} {path} {code}"
                resolve_pointer(ref[1:])
    chat = load_spec()["paths"]["/v1/chat/completions"]["post"]["responses"]["200"]["content"]
    assert chat["text/event-stream"]["x-sse-data-schema"]["$ref"] == "#/components/schemas/ChatCompletionChunk"
    assert chat["text/event-stream"]["x-sse-terminator"] == "[DONE]"


# -- the schemas accept what the contract says and reject what it forbids --------------------


def test_schema_examples_accept_and_reject():
    v = contract.validate_schema
    v("Health", {"status": "ok"})
    with pytest.raises(contract.ContractError):
        v("Health", {})
    v("OpenAIError", {"error": {"message": "m", "type": "invalid_request_error", "code": None, "param": None}})
    v("OpenAIError", {"error": {"message": "m", "type": "x", "code": 401}})
    with pytest.raises(contract.ContractError):
        v("OpenAIError", {"error": {"message": "m"}})
    v("AnthropicError", {"type": "error", "error": {"type": "authentication_error", "message": "m"}})
    with pytest.raises(contract.ContractError):
        v("AnthropicError", {"type": "error", "error": {"type": "teapot_error", "message": "m"}})
    v("GoogleError", {"error": {"code": 401, "message": "m", "status": "UNAUTHENTICATED"}})
    with pytest.raises(contract.ContractError):
        v("GoogleError", {"error": {"code": "401", "message": "m", "status": "UNAUTHENTICATED"}})
    v("ModelList", {"object": "list", "data": [{"id": "openai/gpt-4o", "object": "model", "created": 0, "owned_by": "openai"}]})
    with pytest.raises(contract.ContractError):
        v("ModelList", {"object": "list", "data": [{"id": "gpt-4o", "object": "model", "created": 0, "owned_by": "openai"}]})
    chunk = {
        "id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "openai/gpt-4o",
        "choices": [{"index": 0, "delta": {"role": "assistant", "content": "hi", "reasoning": "r"},
                     "finish_reason": None, "native_finish_reason": None}],
        "usage": None,
    }
    v("ChatCompletionChunk", chunk)
    with pytest.raises(contract.ContractError):
        v("ChatCompletionChunk", {**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": "done"}]})
    completion = {
        "id": "c1", "object": "chat.completion", "created": 1, "model": "openai/gpt-4o",
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": "hi", "reasoning": "because"}}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2,
                  "prompt_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
                  "completion_tokens_details": {"reasoning_tokens": 0}},
    }
    v("ChatCompletion", completion)
    with pytest.raises(contract.ContractError):
        v("ChatCompletion", {**completion, "choices": [{**completion["choices"][0], "finish_reason": None}]})
    v("ChatCompletionRequest", {"messages": [{"role": "user", "content": "hi"}]})
    v("ChatCompletionRequest", {
        "model": "openai/gpt-4o", "models": ["anthropic/claude-sonnet-4-5"], "route": "fallback",
        "messages": [
            {"role": "system", "content": "s"},
            {"role": "developer", "content": [{"type": "text", "text": "d"}]},
            {"role": "user", "content": [{"type": "text", "text": "u"},
                                         {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA=="}}]},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "t1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "t1", "content": "42"},
        ],
        "stream": True, "stream_options": {"include_usage": True}, "stop": ["x"], "top_k": 3,
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
        "tool_choice": {"type": "function", "function": {"name": "f"}},
        "response_format": {"type": "json_schema", "json_schema": {"name": "n", "schema": {"type": "object"}, "strict": True}},
    })
    with pytest.raises(contract.ContractError):
        v("ChatCompletionRequest", {"messages": [{"role": "tool", "content": "no id"}]})
    with pytest.raises(contract.ContractError):
        v("ChatCompletionRequest", {"messages": [{"role": "user", "content": "x"}], "tool_choice": "sometimes"})
    v("EmbeddingRequest", {"model": "openai/text-embedding-3-small", "input": [[1, 2], [3]]})
    with pytest.raises(contract.ContractError):
        v("AnthropicMessagesRequest", {"model": "m", "messages": []})  # max_tokens required
    v("GeminiCountTokensResponse", {"totalTokens": 3})
    v("AnthropicCountTokensResponse", {"input_tokens": 3})

"""Validate gateway responses against spec/openapi.yaml.

Used by conftest.py (fixtures) and importable by tests:

    from contract import validate_response, validate_schema, validate_sse_data

Schemas are validated with jsonschema Draft 2020-12. `$ref`s are resolved against the
whole OpenAPI document, registered in a `referencing` registry under SPEC_URI, so a
schema is always addressed as SPEC_URI + "#<json pointer into the document>".
"""

from __future__ import annotations

import functools
import pathlib
from typing import Any
from urllib.parse import quote

import yaml
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
SPEC_PATH = REPO_ROOT / "spec" / "openapi.yaml"
SPEC_URI = "urn:arouter:openapi"

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


class ContractError(AssertionError):
    """A response that the spec does not allow (or does not document)."""


@functools.lru_cache(maxsize=1)
def load_spec() -> dict:
    with open(SPEC_PATH, encoding="utf-8") as f:
        return yaml.safe_load(f)


@functools.lru_cache(maxsize=1)
def registry() -> Registry:
    resource = Resource.from_contents(load_spec(), default_specification=DRAFT202012)
    return Registry().with_resource(SPEC_URI, resource)


def escape_pointer_token(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def pointer(*tokens: str) -> str:
    return "".join("/" + escape_pointer_token(t) for t in tokens)


def resolve_pointer(ptr: str) -> Any:
    """Follow a JSON pointer ("/a/b~1c") in the spec document."""
    node: Any = load_spec()
    if ptr in ("", "/"):
        return node
    for raw in ptr.lstrip("/").split("/"):
        token = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, list):
            node = node[int(token)]
        else:
            node = node[token]
    return node


def follow_ref(ptr: str) -> str:
    """If the object at `ptr` is a `$ref`, return the pointer it refers to (repeatedly)."""
    seen = set()
    while True:
        obj = resolve_pointer(ptr)
        if not (isinstance(obj, dict) and "$ref" in obj):
            return ptr
        ref = obj["$ref"]
        if not ref.startswith("#"):
            raise ContractError(f"external $ref not supported: {ref}")
        if ref in seen:
            raise ContractError(f"$ref cycle at {ref}")
        seen.add(ref)
        ptr = ref[1:]


def _validator_for_pointer(ptr: str) -> Draft202012Validator:
    schema = {"$ref": SPEC_URI + "#" + quote(ptr, safe="/~:@!$&'()*+,;=-._")}
    return Draft202012Validator(
        schema,
        registry=registry(),
        format_checker=Draft202012Validator.FORMAT_CHECKER,
    )


def _check(ptr: str, instance: Any, what: str) -> None:
    errors = sorted(_validator_for_pointer(ptr).iter_errors(instance), key=lambda e: list(e.absolute_path))
    if errors:
        lines = [f"{what} does not match {ptr}:"]
        for e in errors[:10]:
            loc = "/".join(str(p) for p in e.absolute_path) or "<root>"
            lines.append(f"  at {loc}: {e.message[:400]}")
        lines.append(f"  instance: {str(instance)[:1500]}")
        raise ContractError("\n".join(lines))


def validate_at(ptr: str, instance: Any, what: str) -> None:
    """Validate `instance` against the schema at JSON pointer `ptr` in the spec."""
    _check(ptr, instance, what)


def validate_schema(name: str, instance: Any) -> None:
    """Validate `instance` against components/schemas/<name>."""
    if name not in load_spec()["components"]["schemas"]:
        raise ContractError(f"no schema named {name!r} in the spec")
    _check(pointer("components", "schemas", name), instance, f"value for schema {name}")


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def response_pointer(method: str | None, path_template: str | None, status: int) -> str:
    """Pointer to the (dereferenced) response object documented for method/path/status.

    `path_template=None` means "a path that matches no operation": the response is then
    `#/components/responses/NotFoundRoute` (only for 404). A method the path does not define
    may only answer 405 (`#/components/responses/MethodNotAllowed`).
    """
    spec = load_spec()
    if path_template is None:
        if status != 404:
            raise ContractError(f"unmatched route answered {status}; the spec only allows 404")
        return follow_ref(pointer("components", "responses", "NotFoundRoute"))
    paths = spec["paths"]
    if path_template not in paths:
        raise ContractError(f"path {path_template!r} is not in the spec")
    m = method.lower()
    item_ptr = follow_ref(pointer("paths", path_template))
    if m not in resolve_pointer(item_ptr):
        if status == 405:
            return follow_ref(pointer("components", "responses", "MethodNotAllowed"))
        raise ContractError(f"{method.upper()} {path_template} is not in the spec")
    responses_ptr = item_ptr + pointer(m, "responses")
    responses = resolve_pointer(responses_ptr)
    for key in (str(status), f"{str(status)[0]}XX", "default"):
        if key in responses:
            return follow_ref(responses_ptr + pointer(key))
    raise ContractError(
        f"{method.upper()} {path_template} answered {status}, which the spec does not document "
        f"(documented: {sorted(responses)})"
    )


def validate_response(
    method: str | None,
    path_template: str | None,
    status: int,
    content_type: str | None,
    body_json: Any,
) -> None:
    """Validate a decoded JSON body against the spec's response schema.

    method/path_template name the operation (e.g. "GET", "/v1/models"); status is the HTTP
    status; content_type is the response's Content-Type header (parameters ignored).
    """
    resp_ptr = response_pointer(method, path_template, status)
    response = resolve_pointer(resp_ptr)
    content = response.get("content") or {}
    mt = _media_type(content_type)
    if mt not in content:
        if "*/*" in content:
            mt = "*/*"
        else:
            raise ContractError(
                f"{method} {path_template} {status}: content type {content_type!r} not documented "
                f"(documented: {sorted(content)})"
            )
    media_ptr = follow_ref(resp_ptr + pointer("content", mt))
    media = resolve_pointer(media_ptr)
    if "schema" not in media:
        return
    _check(media_ptr + "/schema", body_json, f"{method} {path_template} {status} {mt} body")


def validate_sse_data(method: str, path_template: str, status: int, data_json: Any) -> None:
    """Validate one parsed `data:` payload of a text/event-stream response (x-sse-data-schema)."""
    resp_ptr = response_pointer(method, path_template, status)
    media_ptr = resp_ptr + pointer("content", "text/event-stream")
    media = resolve_pointer(media_ptr)
    if "x-sse-data-schema" not in media:
        raise ContractError(f"{method} {path_template} {status}: no x-sse-data-schema for text/event-stream")
    _check(media_ptr + "/x-sse-data-schema", data_json, f"{method} {path_template} SSE data")


def sse_terminator(method: str, path_template: str, status: int = 200) -> str | None:
    media = resolve_pointer(response_pointer(method, path_template, status) + pointer("content", "text/event-stream"))
    return media.get("x-sse-terminator")


def parse_sse(text: str) -> list[dict]:
    """Split an SSE body into events: [{"event": name|None, "data": str}], comments dropped."""
    events = []
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    for block in text.split("\n\n"):
        name, data = None, []
        for line in block.split("\n"):
            if not line or line.startswith(":"):
                continue
            field, _, value = line.partition(":")
            if value.startswith(" "):
                value = value[1:]
            if field == "event":
                name = value
            elif field == "data":
                data.append(value)
        if data:
            events.append({"event": name, "data": "\n".join(data)})
    return events


def iter_operations():
    """Yield (path, method, operation) for every operation in the spec."""
    for path, item in load_spec()["paths"].items():
        for method in HTTP_METHODS:
            if method in item:
                yield path, method, item[method]

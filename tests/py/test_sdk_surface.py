"""Model listings and embeddings through the official Python SDKs: each
SDK's own `models` calls and Gemini's `embed_content`, against the gateway
with every provider played by the replay upstream.

Expected values come from the shipped catalog (frontends/host/catalog) and
from the recorded embeddings transcripts:
  gemini/embeddings_batch              Gemini batchEmbedContents, 2 texts, 768 dims
  gemini/error_404_embed_model_not_found
  openai/embeddings_documents          OpenAI /embeddings, 2 texts, base64 vectors
"""

from __future__ import annotations

import base64
import json
import struct

import anthropic
import openai
import pytest
from google import genai
from google.genai import errors, types

import contract
import sdk_cases as cases
from sdk_cases import upstream_log

CATALOG = json.loads((contract.REPO_ROOT / "frontends" / "host" / "catalog" / "models.json").read_text())


def catalog_ids() -> list[str]:
    """Every model the routed gateway lists: the shipped catalog of its
    `openai`, `anthropic` and `gemini` providers (`backup` lists none)."""
    return [f"{kind}/{m['id']}" for kind in ("openai", "anthropic", "gemini") for m in CATALOG[kind]]


def catalog_row(model_id: str) -> dict:
    kind, bare = model_id.split("/", 1)
    return next(m for m in CATALOG[kind] if m["id"] == bare)


@pytest.fixture()
def oai(routed_gateway, replay_control, master_key):
    return openai.OpenAI(base_url=routed_gateway + "/v1", api_key=master_key, max_retries=0, timeout=30)


@pytest.fixture()
def claude(routed_gateway, replay_control, master_key):
    return anthropic.Anthropic(base_url=routed_gateway, api_key=master_key, max_retries=0, timeout=30)


@pytest.fixture()
def gem(routed_gateway, replay_control, master_key):
    return genai.Client(api_key=master_key, http_options=types.HttpOptions(base_url=routed_gateway, timeout=30_000))


def floats_of_base64(text: str) -> list[float]:
    raw = base64.b64decode(text)
    return list(struct.unpack(f"<{len(raw) // 4}f", raw))


def f32(values: list[float]) -> list[float]:
    """Values as float32 (what travels), for exact comparison."""
    return list(struct.unpack(f"<{len(values)}f", struct.pack(f"<{len(values)}f", *values)))


# ------------------------------------------------------------------ models


def test_openai_models_retrieve(oai):
    assert [m.id for m in oai.models.list()] == catalog_ids()
    got = oai.models.retrieve("openai/gpt-4o")
    row = catalog_row("openai/gpt-4o")
    assert (got.id, got.object, got.created, got.owned_by) == ("openai/gpt-4o", "model", row["created"], "openai")
    with pytest.raises(openai.NotFoundError) as e:
        oai.models.retrieve("openai/no-such-model")
    assert e.value.body["code"] == "model_not_found"


def test_anthropic_models_list_and_retrieve(claude):
    # Two at a time: the SDK's auto-pagination follows `has_more`/`last_id`.
    page = claude.models.list(limit=2)
    assert [m.id for m in page.data] == catalog_ids()[:2]
    assert page.has_more and page.first_id == catalog_ids()[0] and page.last_id == catalog_ids()[1]
    assert [m.id for m in claude.models.list(limit=2)] == catalog_ids()
    info = claude.models.retrieve("anthropic/claude-sonnet-4-5")
    row = catalog_row("anthropic/claude-sonnet-4-5")
    assert (info.type, info.id, info.display_name) == ("model", "anthropic/claude-sonnet-4-5", row["display_name"])
    assert int(info.created_at.timestamp()) == row["created"]
    # A bare name resolves as routing does.
    assert claude.models.retrieve("claude-sonnet-4-5").id == "anthropic/claude-sonnet-4-5"
    with pytest.raises(anthropic.NotFoundError):
        claude.models.retrieve("anthropic/no-such-model")


def test_genai_models_list_and_get(gem):
    listed = list(gem.models.list(config={"page_size": 5}))
    assert [m.name for m in listed] == [f"models/{i}" for i in catalog_ids()]
    got = gem.models.get(model="gemini-2.5-flash")
    row = catalog_row("gemini/gemini-2.5-flash")
    assert (got.name, got.display_name) == ("models/gemini/gemini-2.5-flash", row["display_name"])
    assert (got.input_token_limit, got.output_token_limit) == (row["input_tokens"], row["output_tokens"])
    assert "generateContent" in got.supported_actions
    embedder = gem.models.get(model="openai/text-embedding-3-small")
    assert embedder.supported_actions == ["embedContent", "batchEmbedContents"]
    with pytest.raises(errors.ClientError) as e:
        gem.models.get(model="gemini/no-such-model")
    assert e.value.code == 404


# -------------------------------------------------------------- embeddings


def test_genai_embed_content_gemini_native(gem, replay_control):
    rec = cases.response("gemini/embeddings_batch.json")["body"]
    out = gem.models.embed_content(
        model="gemini-embedding-2",
        # One content per text (a list of strings would be one content of
        # two parts to this SDK, embedded as one).
        contents=[types.Content(parts=[types.Part(text=t)]) for t in ("First text", "Second text")],
        config=types.EmbedContentConfig(output_dimensionality=768),
    )
    assert [e.values for e in out.embeddings] == [e["values"] for e in rec["embeddings"]]
    sent = upstream_log(replay_control)[0]
    assert sent["path"] == "/v1beta/models/gemini-embedding-2:batchEmbedContents"
    assert sent["headers"]["x-goog-api-key"] == "sk-provider-gemini"


def test_genai_embed_content_translated_to_openai(gem, replay_control):
    rec = cases.response("openai/embeddings_documents.json")["body"]
    out = gem.models.embed_content(model="openai/text-embedding-3-small", contents=["hello", "world"])
    want = [floats_of_base64(d["embedding"]) for d in rec["data"]]
    assert [f32(e.values) for e in out.embeddings] == want
    sent = upstream_log(replay_control)[0]
    assert sent["path"] == "/v1/embeddings"
    assert sent["body"]["input"] == ["hello", "world"]


def test_openai_embeddings_translated_to_gemini(oai, replay_control):
    rec = cases.response("gemini/embeddings_batch.json")["body"]
    out = oai.embeddings.create(model="gemini/gemini-embedding-2", input=["First text", "Second text"], dimensions=768)
    # The SDK asked for base64 and decoded it itself.
    assert [f32(d.embedding) for d in out.data] == [f32(e["values"]) for e in rec["embeddings"]]
    assert out.usage.prompt_tokens == rec["usageMetadata"]["promptTokenCount"]
    assert out.model == "gemini/gemini-embedding-2"


def test_genai_embed_error_is_relayed(gem):
    rec = cases.response("gemini/error_404_embed_model_not_found.json")["body"]
    with pytest.raises(errors.ClientError) as e:
        gem.models.embed_content(
            model="nonexistent-model",
            contents="Hello, world!",
            config=types.EmbedContentConfig(task_type="RETRIEVAL_QUERY"),
        )
    assert (e.value.code, e.value.message) == (404, rec["error"]["message"])


def test_embeddings_on_an_anthropic_provider_are_refused_in_each_dialect(gem, oai):
    with pytest.raises(errors.ClientError) as e:
        gem.models.embed_content(model="anthropic/claude-sonnet-4-5", contents="hi")
    assert e.value.code == 404 and "no embeddings" in e.value.message
    with pytest.raises(openai.NotFoundError) as e:
        oai.embeddings.create(model="anthropic/claude-sonnet-4-5", input="hi")
    assert e.value.body["code"] == "unsupported_provider"


# ---------------------------------------------------------------- contract

ANTHROPIC = {"anthropic-version": "2023-06-01"}


@pytest.mark.parametrize(
    "method,path,template,dialect,status,body",
    [
        ("GET", "/v1/models", "/v1/models", "openai", 200, None),
        ("GET", "/v1/models?limit=2&after_id=openai%2Fgpt-4o", "/v1/models", "anthropic", 200, None),
        ("GET", "/v1/models?limit=0", "/v1/models", "anthropic", 400, None),
        ("GET", "/v1/models?pageSize=3", "/v1/models", "google", 200, None),
        ("GET", "/v1/models/openai%2Fgpt-4o", "/v1/models/{model}", "openai", 200, None),
        ("GET", "/v1/models/anthropic/claude-haiku-4-5", "/v1/models/{model}", "anthropic", 200, None),
        ("GET", "/v1/models/gemini-2.5-pro", "/v1/models/{model}", "google", 200, None),
        ("GET", "/v1/models/openai%2Fnope", "/v1/models/{model}", "anthropic", 404, None),
        ("GET", "/v1beta/models?pageSize=2&pageToken=2", "/v1beta/models", "google", 200, None),
        ("GET", "/v1beta/models/openai%2Ftext-embedding-3-large", "/v1beta/models/{model}", "google", 200, None),
        ("GET", "/v1beta/models/nope", "/v1beta/models/{model}", "google", 404, None),
        (
            "POST",
            "/v1beta/models/anthropic%2Fclaude-haiku-4-5:embedContent",
            "/v1beta/models/{model}:embedContent",
            "google",
            404,
            {"content": {"parts": [{"text": "hi"}]}},
        ),
        (
            "POST",
            "/v1/models/gemini-embedding-2:batchEmbedContents",
            "/v1/models/{model}:batchEmbedContents",
            "google",
            200,
            cases.request_body("gemini/embeddings_batch.json"),
        ),
    ],
)
def test_new_routes_answer_as_the_spec_says(routed_gateway, http, master_key, method, path, template, dialect, status, body):
    headers = {"Authorization": f"Bearer {master_key}"}
    if dialect == "anthropic":
        headers = {"x-api-key": master_key, **ANTHROPIC}
    elif dialect == "google":
        # google-genai names itself so; the shape of /v1/models follows it.
        headers = {"x-goog-api-key": master_key, "x-goog-api-client": "google-genai-sdk/test"}
    r = http.request(method, routed_gateway + path, headers=headers, json=body, timeout=30)
    assert r.status_code == status, r.text
    contract.validate_response(method, template, status, r.headers["content-type"], r.json())
    if status >= 400:
        shape = {"openai": "OpenAIError", "anthropic": "AnthropicError", "google": "GoogleError"}[dialect]
        contract.validate_schema(shape, r.json())

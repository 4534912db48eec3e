// Model listings and embeddings through the official JavaScript SDKs:
// openai's `models.retrieve`, anthropic's `models.list`/`retrieve`, and
// genai's `models.list`/`get`/`embedContent`, which an outside run of these
// SDKs found missing. Expected values come from the shipped catalog and the
// recorded embeddings transcripts.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';

import Anthropic from '@anthropic-ai/sdk';
import { GoogleGenAI } from '@google/genai';
import OpenAI from 'openai';

import * as cases from './cases.mjs';
import { MASTER_KEY, REPO, startStack } from './harness.mjs';

const CATALOG = JSON.parse(readFileSync(path.join(REPO, 'frontends', 'host', 'catalog', 'models.json'), 'utf8'));
/** Every model the test gateway lists: the shipped catalog of its three vendor providers. */
const catalogIds = ['openai', 'anthropic', 'gemini'].flatMap((kind) => CATALOG[kind].map((m) => `${kind}/${m.id}`));
const row = (id) => {
  const [kind, bare] = id.split(/\/(.*)/s);
  return CATALOG[kind].find((m) => m.id === bare);
};

/** float32 values from OpenAI's base64 embedding. */
const floatsOfBase64 = (b64) => {
  const bytes = Buffer.from(b64, 'base64');
  return Array.from(new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4));
};
const f32 = (values) => Array.from(Float32Array.from(values));

let stack;
let openai;
let anthropic;
let ai;

before(async () => {
  stack = await startStack();
  openai = new OpenAI({ baseURL: `${stack.base}/v1`, apiKey: MASTER_KEY, maxRetries: 0, timeout: 30_000 });
  anthropic = new Anthropic({ baseURL: stack.base, apiKey: MASTER_KEY, maxRetries: 0, timeout: 30_000 });
  ai = new GoogleGenAI({ apiKey: MASTER_KEY, httpOptions: { baseUrl: stack.base, timeout: 30_000 } });
});
after(() => stack?.stop());
beforeEach(() => stack.reset());

describe('models', () => {
  it('openai models.list and models.retrieve', async () => {
    const listed = [];
    for await (const m of openai.models.list()) listed.push(m.id);
    assert.deepEqual(listed, catalogIds);
    // The SDK sends the id percent-encoded: /v1/models/openai%2Fgpt-4o.
    const got = await openai.models.retrieve('openai/gpt-4o');
    assert.deepEqual(got, { id: 'openai/gpt-4o', object: 'model', created: row('openai/gpt-4o').created, owned_by: 'openai' });
    await assert.rejects(openai.models.retrieve('openai/no-such-model'), (e) => e instanceof OpenAI.NotFoundError && e.code === 'model_not_found');
  });

  it('anthropic models.list (paged) and models.retrieve', async () => {
    const page = await anthropic.models.list({ limit: 2 });
    assert.deepEqual(page.data.map((m) => m.id), catalogIds.slice(0, 2));
    assert.equal(page.has_more, true);
    const all = [];
    for await (const m of anthropic.models.list({ limit: 2 })) all.push(m);
    assert.deepEqual(all.map((m) => m.id), catalogIds);
    assert.ok(all.every((m) => m.type === 'model' && !Number.isNaN(Date.parse(m.created_at))));
    const info = await anthropic.models.retrieve('anthropic/claude-sonnet-4-5');
    const want = row('anthropic/claude-sonnet-4-5');
    assert.deepEqual([info.type, info.id, info.display_name], ['model', 'anthropic/claude-sonnet-4-5', want.display_name]);
    assert.equal(Date.parse(info.created_at) / 1000, want.created);
    await assert.rejects(anthropic.models.retrieve('anthropic/no-such-model'), Anthropic.NotFoundError);
  });

  it('genai models.list (paged) and models.get', async () => {
    const names = [];
    for await (const m of await ai.models.list({ config: { pageSize: 5 } })) names.push(m.name);
    assert.deepEqual(names, catalogIds.map((id) => `models/${id}`));
    const flash = await ai.models.get({ model: 'gemini-2.5-flash' });
    const want = row('gemini/gemini-2.5-flash');
    assert.equal(flash.name, 'models/gemini/gemini-2.5-flash');
    assert.equal(flash.displayName, want.display_name);
    assert.deepEqual([flash.inputTokenLimit, flash.outputTokenLimit], [want.input_tokens, want.output_tokens]);
    assert.ok(flash.supportedActions.includes('generateContent'));
    const embedder = await ai.models.get({ model: 'openai/text-embedding-3-small' });
    assert.deepEqual(embedder.supportedActions, ['embedContent', 'batchEmbedContents']);
    await assert.rejects(ai.models.get({ model: 'gemini/no-such-model' }), (e) => e.status === 404);
  });

  it("genai with api version v1: /v1/models in Gemini's shape", async () => {
    // The path is OpenAI's too; the SDK's `x-goog-api-client` header picks the shape.
    const v1 = new GoogleGenAI({ apiKey: MASTER_KEY, httpOptions: { baseUrl: stack.base, apiVersion: 'v1', timeout: 30_000 } });
    const names = [];
    for await (const m of await v1.models.list({ config: { pageSize: 50 } })) names.push(m.name);
    assert.deepEqual(names, catalogIds.map((id) => `models/${id}`));
    const got = await v1.models.get({ model: 'openai/gpt-4o' });
    assert.equal(got.name, 'models/openai/gpt-4o');
  });
});

describe('embeddings', () => {
  it('genai embedContent, gemini upstream (native)', async () => {
    const rec = cases.response('gemini/embeddings_batch.json').body;
    const out = await ai.models.embedContent({
      model: 'gemini-embedding-2',
      contents: ['First text', 'Second text'].map((text) => ({ parts: [{ text }] })),
      config: { outputDimensionality: 768 },
    });
    assert.deepEqual(out.embeddings.map((e) => e.values), rec.embeddings.map((e) => e.values));
    const [sent] = await stack.upstreamLog();
    assert.equal(sent.path, '/v1beta/models/gemini-embedding-2:batchEmbedContents');
    assert.equal(sent.headers['x-goog-api-key'], 'sk-provider-gemini');
  });

  it('genai embedContent, openai upstream (translated)', async () => {
    const rec = cases.response('openai/embeddings_documents.json').body;
    const out = await ai.models.embedContent({
      model: 'openai/text-embedding-3-small',
      contents: ['hello', 'world'].map((text) => ({ parts: [{ text }] })),
    });
    assert.deepEqual(out.embeddings.map((e) => f32(e.values)), rec.data.map((d) => floatsOfBase64(d.embedding)));
    const [sent] = await stack.upstreamLog();
    assert.equal(sent.path, '/v1/embeddings');
    assert.deepEqual(sent.body.input, ['hello', 'world']);
  });

  it('openai embeddings.create, gemini upstream (translated)', async () => {
    const rec = cases.response('gemini/embeddings_batch.json').body;
    // The SDK asks for base64 and decodes it itself.
    const out = await openai.embeddings.create({ model: 'gemini/gemini-embedding-2', input: ['First text', 'Second text'], dimensions: 768 });
    assert.deepEqual(out.data.map((d) => f32(d.embedding)), rec.embeddings.map((e) => f32(e.values)));
    assert.equal(out.usage.prompt_tokens, rec.usageMetadata.promptTokenCount);
    assert.equal(out.model, 'gemini/gemini-embedding-2');
  });

  it("a provider's 404 is relayed to genai", async () => {
    const rec = cases.response('gemini/error_404_embed_model_not_found.json').body;
    await assert.rejects(
      ai.models.embedContent({ model: 'nonexistent-model', contents: 'Hello, world!', config: { taskType: 'RETRIEVAL_QUERY' } }),
      (e) => e.status === 404 && e.message.includes(rec.error.message),
    );
  });

  it('an anthropic provider has no embeddings: a clear error in each dialect', async () => {
    await assert.rejects(
      ai.models.embedContent({ model: 'anthropic/claude-sonnet-4-5', contents: 'hi' }),
      (e) => e.status === 404 && e.message.includes('no embeddings'),
    );
    await assert.rejects(
      openai.embeddings.create({ model: 'anthropic/claude-sonnet-4-5', input: 'hi' }),
      (e) => e instanceof OpenAI.NotFoundError && e.code === 'unsupported_provider',
    );
  });
});

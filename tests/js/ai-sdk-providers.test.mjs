// Two more AI SDK providers against the gateway (AI SDK 6), each upstream
// played by the replay from recorded transcripts:
// - `@ai-sdk/google` with a `provider/model` id: the SDK takes an id with a
//   `/` for a resource path, so `google('openai/gpt-4o')` calls
//   `/v1beta/openai/gpt-4o:generateContent` (not `models/…`).
// - `@openrouter/ai-sdk-provider` with `usage: { include: true }`: it sends
//   OpenRouter's `usage` field and no `stream_options`, and reads usage and
//   `usage.cost` from the stream's final chunk.

import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';

import { createGoogleGenerativeAI } from '@ai-sdk/google';
import { createOpenRouter } from '@openrouter/ai-sdk-provider';
import { generateText, streamText } from 'ai';

import * as cases from './cases.mjs';
import { MASTER_KEY, startStack } from './harness.mjs';

let stack;

before(async () => {
  stack = await startStack();
});
after(() => stack?.stop());
beforeEach(() => stack.reset());

/** A provider factory that also records the URLs the SDK called. */
function recorder() {
  const urls = [];
  const fetchAndLog = (url, init) => {
    urls.push(new URL(url).pathname);
    return fetch(url, init);
  };
  return { urls, fetch: fetchAndLog };
}

describe("AI SDK google('provider/model') through /v1beta/{provider}/{model}:{method}", () => {
  it('generateText, served by OpenAI', async () => {
    const name = 'openai/chat_nonstream_instructions.json';
    const seen = recorder();
    const google = createGoogleGenerativeAI({ baseURL: `${stack.base}/v1beta`, apiKey: MASTER_KEY, fetch: seen.fetch });
    const out = await generateText({
      model: google('openai/gpt-4o'),
      system: 'You are a helpful assistant.',
      prompt: 'What is the capital of France?',
      maxRetries: 0,
    });
    assert.deepEqual(seen.urls, ['/v1beta/openai/gpt-4o:generateContent']);
    assert.equal(out.text, cases.openaiMessage(name).content);
    assert.equal(out.finishReason, 'stop');
    const u = cases.openaiUsage(name);
    assert.equal(out.usage.inputTokens, u.prompt_tokens);
    assert.equal(out.usage.outputTokens, u.completion_tokens);
    const [sent] = await stack.upstreamLog();
    assert.equal(sent.path, '/v1/chat/completions');
    assert.equal(sent.transcript, name);
  });

  it('streamText, served by OpenAI, base URL under /v1', async () => {
    const name = 'openai/chat_stream_text_moderation_include_usage.json';
    const seen = recorder();
    const google = createGoogleGenerativeAI({ baseURL: `${stack.base}/v1`, apiKey: MASTER_KEY, fetch: seen.fetch });
    const result = streamText({ model: google('openai/gpt-5'), prompt: 'What is the capital of France?', maxRetries: 0 });
    let text = '';
    for await (const delta of result.textStream) text += delta;
    assert.deepEqual(seen.urls, ['/v1/openai/gpt-5:streamGenerateContent']);
    assert.equal(text, cases.openaiStreamText(name));
    assert.equal(await result.finishReason, 'stop');
    const u = cases.openaiUsage(name);
    const usage = await result.usage;
    assert.equal(usage.inputTokens, u.prompt_tokens);
    assert.equal(usage.outputTokens, u.completion_tokens);
  });

  it('streamText, served by Gemini', async () => {
    const name = 'gemini/stream_text_basic.json';
    const seen = recorder();
    const google = createGoogleGenerativeAI({ baseURL: `${stack.base}/v1beta`, apiKey: MASTER_KEY, fetch: seen.fetch });
    const result = streamText({
      model: google('gemini/gemini-2.0-flash-exp'),
      system: 'You are a helpful chatbot.',
      prompt: 'What is the capital of France?',
      temperature: 0,
      maxRetries: 0,
    });
    let text = '';
    for await (const delta of result.textStream) text += delta;
    assert.deepEqual(seen.urls, ['/v1beta/gemini/gemini-2.0-flash-exp:streamGenerateContent']);
    assert.equal(text, cases.geminiStreamText(name));
    const m = cases.geminiStreamUsage(name);
    assert.equal((await result.usage).inputTokens, m.promptTokenCount);
    const [sent] = await stack.upstreamLog();
    assert.equal(sent.path, '/v1beta/models/gemini-2.0-flash-exp:streamGenerateContent?alt=sse');
  });
});

describe("AI SDK google('google/…'): the alias of the gemini provider", () => {
  it('generateText, served by Gemini', async () => {
    const rec = cases.response('gemini/generate_content_instructions.json').body;
    const seen = recorder();
    const google = createGoogleGenerativeAI({ baseURL: `${stack.base}/v1beta`, apiKey: MASTER_KEY, fetch: seen.fetch });
    const out = await generateText({
      model: google('google/gemini-2.0-flash'),
      system: 'You are a helpful assistant.',
      prompt: 'What is the capital of France?',
      maxRetries: 0,
    });
    assert.deepEqual(seen.urls, ['/v1beta/google/gemini-2.0-flash:generateContent']);
    assert.equal(out.text, rec.candidates[0].content.parts[0].text);
    assert.equal(out.usage.inputTokens, rec.usageMetadata.promptTokenCount);
    const [sent] = await stack.upstreamLog();
    assert.equal(sent.path, '/v1beta/models/gemini-2.0-flash:generateContent');
  });
});

describe("OpenRouter's AI SDK provider with usage: { include: true }", () => {
  const name = 'openai/chat_stream_text_moderation_include_usage.json';

  /** The gateway's record of a call: the cost it billed. */
  async function billed(id) {
    const deadline = Date.now() + 5_000;
    for (;;) {
      const r = await fetch(`${stack.base}/api/v1/generation?id=${encodeURIComponent(id)}`, {
        headers: { authorization: `Bearer ${MASTER_KEY}` },
      });
      if (r.ok) return (await r.json()).data;
      if (r.status !== 404 || Date.now() > deadline) throw new Error(`generation ${id}: ${r.status}`);
      await new Promise((done) => setTimeout(done, 100));
    }
  }

  async function run(settings) {
    const bodies = [];
    const openrouter = createOpenRouter({
      baseURL: `${stack.base}/api/v1`,
      apiKey: MASTER_KEY,
      fetch: (url, init) => {
        bodies.push(JSON.parse(init.body));
        return fetch(url, init);
      },
    });
    const result = streamText({ model: openrouter.chat('openai/gpt-5', settings), prompt: 'What is the capital of France?', maxRetries: 0 });
    let text = '';
    for await (const delta of result.textStream) text += delta;
    return { result, text, body: bodies[0] };
  }

  it('streamText shows the usage and the cost', async () => {
    const { result, text, body } = await run({ usage: { include: true } });
    assert.deepEqual(body.usage, { include: true });
    assert.equal(body.stream_options, undefined, 'the provider asks through `usage` alone');
    assert.equal(text, cases.openaiStreamText(name));
    const u = cases.openaiUsage(name);
    const usage = await result.usage;
    assert.equal(usage.inputTokens, u.prompt_tokens);
    assert.equal(usage.outputTokens, u.completion_tokens);
    const meta = (await result.providerMetadata).openrouter.usage;
    assert.equal(meta.promptTokens, u.prompt_tokens);
    assert.equal(meta.completionTokens, u.completion_tokens);
    assert.ok(meta.cost > 0, `usage.cost: ${JSON.stringify(meta)}`);
    const record = await billed((await result.response).id);
    assert.equal(meta.cost, record.total_cost, 'the cost shown is the cost billed');
    const [sent] = await stack.upstreamLog();
    assert.equal(sent.body.usage, undefined, 'never sent upstream');
  });

  it('without it, the stream shows no usage (the provider sent no stream_options)', async () => {
    const { result, text, body } = await run({});
    assert.equal(body.usage, undefined);
    assert.equal(text, cases.openaiStreamText(name));
    const usage = await result.usage;
    assert.ok(!(usage.inputTokens > 0), `no usage: ${JSON.stringify(usage)}`);
  });
});

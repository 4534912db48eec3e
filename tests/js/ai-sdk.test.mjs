// The Vercel AI SDK's default OpenAI provider, `openai(model)` (AI SDK 6),
// which speaks the Responses API (`POST /v1/responses`), against the
// gateway: `generateText`, `streamText` and a tool loop, each upstream
// provider played by the replay from recorded transcripts. The prompts are
// the recorded ones, so the answers asserted are the providers' own. The
// SDK's default `store: true` is kept: on later turns it refers to its
// earlier answers by `item_reference`, which the gateway resolves.

import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';

import { createOpenAI } from '@ai-sdk/openai';
import { generateText, stepCountIs, streamText, tool } from 'ai';
import { z } from 'zod';

import * as cases from './cases.mjs';
import { MASTER_KEY, startStack } from './harness.mjs';

let stack;
let openai;

before(async () => {
  stack = await startStack();
  openai = createOpenAI({ baseURL: `${stack.base}/v1`, apiKey: MASTER_KEY });
});
after(() => stack?.stop());
beforeEach(() => stack.reset());

describe('AI SDK openai(model) through /v1/responses', () => {
  it('generateText, served by Anthropic', async () => {
    const rec = cases.response('anthropic/messages_nonstream_instructions.json').body;
    const out = await generateText({
      model: openai('anthropic/claude-3-opus-latest'),
      system: 'You are a helpful assistant.\n\n',
      prompt: 'What is the capital of France?',
      maxOutputTokens: 4096,
      maxRetries: 0,
    });
    assert.equal(out.text, rec.content[0].text);
    assert.equal(out.finishReason, 'stop');
    assert.equal(out.usage.outputTokens, rec.usage.output_tokens);
    const [sent] = await stack.upstreamLog();
    assert.equal(sent.path, '/v1/messages');
  });

  it('streamText, served by Gemini', async () => {
    const name = 'gemini/stream_text_basic.json';
    const want = cases
      .sseData(cases.response(name).sse)
      .flatMap((d) => JSON.parse(d).candidates ?? [])
      .flatMap((c) => c.content?.parts ?? [])
      .map((p) => p.text ?? '')
      .join('');
    const result = streamText({
      model: openai('gemini/gemini-2.0-flash-exp'),
      system: 'You are a helpful chatbot.',
      prompt: 'What is the capital of France?',
      temperature: 0,
      maxRetries: 0,
    });
    let text = '';
    for await (const delta of result.textStream) text += delta;
    assert.equal(text, want);
    assert.equal(await result.finishReason, 'stop');
    assert.ok((await result.usage).totalTokens > 0);
  });

  it('a tool loop, served by an OpenAI-compatible chat server', async () => {
    const ran = [];
    const result = streamText({
      model: openai('openai/gpt-4o-mini'),
      prompt: 'What is the capital of the UK? Use the tool, then answer.',
      tools: {
        get_capital: tool({
          description: '',
          inputSchema: z.object({ country: z.string() }),
          execute: async ({ country }) => {
            ran.push(country);
            return 'London';
          },
        }),
      },
      stopWhen: stepCountIs(3),
      maxRetries: 0,
    });
    let text = '';
    for await (const delta of result.textStream) text += delta;
    assert.deepEqual(ran, ['UK']);
    assert.equal(text, cases.openaiStreamText('openai/chat_stream_text_after_tool_include_usage.json'));
    const log = await stack.upstreamLog();
    assert.deepEqual(
      log.map((r) => r.transcript),
      ['openai/chat_tool_call_stream_include_usage.json', 'openai/chat_stream_text_after_tool_include_usage.json'],
    );
  });

  it('a second turn refers to the first by item_reference, resolved from the store (Anthropic)', async () => {
    // The SDK's default `store: true`: its earlier answer goes back as an
    // `item_reference`, which the gateway replaces with the stored item.
    // (No recording continues this conversation: the replay's miss on the
    // second turn is expected; what Anthropic was sent is checked.)
    const rec = cases.response('anthropic/messages_nonstream_instructions.json').body;
    const seen = [];
    const recording = createOpenAI({
      baseURL: `${stack.base}/v1`,
      apiKey: MASTER_KEY,
      fetch: async (url, init) => {
        seen.push(JSON.parse(init.body));
        return fetch(url, init);
      },
    });
    const tools = {
      get_capital: tool({ description: '', inputSchema: z.object({ country: z.string() }), execute: async () => 'Berlin' }),
    };
    const settings = { model: recording('anthropic/claude-3-opus-latest'), system: 'You are a helpful assistant.\n\n', tools, maxOutputTokens: 4096, maxRetries: 0 };
    const question = { role: 'user', content: [{ type: 'text', text: 'What is the capital of France?' }] };
    const first = await generateText({ ...settings, messages: [question] });
    assert.equal(first.text, rec.content[0].text);
    const messages = [question, ...first.response.messages, { role: 'user', content: [{ type: 'text', text: 'And of Germany?' }] }];
    await assert.rejects(generateText({ ...settings, messages }), /replay: no transcript matches/);
    assert.notEqual(seen[1].store, false);
    assert.ok(
      seen[1].input.some((item) => item.type === 'item_reference'),
      'the SDK referred to its earlier answer',
    );
    const sent = (await stack.upstreamLog()).at(-1).body.messages;
    assert.deepEqual(
      sent.map((m) => m.role),
      ['user', 'assistant', 'user'],
    );
    assert.equal(sent[1].content[0].text, rec.content[0].text, 'the stored answer, in place of its reference');
  });
});

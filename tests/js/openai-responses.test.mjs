// The official `openai` JavaScript SDK's Responses API (`responses.create`
// and the `responses.stream` helper) against the gateway, each upstream
// provider played by the replay from recorded transcripts.

import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';

import OpenAI from 'openai';

import * as cases from './cases.mjs';
import { MASTER_KEY, startStack } from './harness.mjs';

let stack;
let client;

before(async () => {
  stack = await startStack();
  client = new OpenAI({ baseURL: `${stack.base}/v1`, apiKey: MASTER_KEY, maxRetries: 0, timeout: 30_000 });
});
after(() => stack?.stop());
beforeEach(() => stack.reset());

describe('openai SDK responses', () => {
  it('create, served by an OpenAI-compatible chat server', async () => {
    const name = 'openai/chat_nonstream_instructions.json';
    const out = await client.responses.create({
      model: 'openai/gpt-4o',
      instructions: 'You are a helpful assistant.',
      input: 'What is the capital of France?',
    });
    assert.equal(out.output_text, cases.openaiMessage(name).content);
    assert.equal(out.status, 'completed');
    assert.equal(out.usage.total_tokens, cases.openaiUsage(name).total_tokens);
    const [sent] = await stack.upstreamLog();
    assert.equal(sent.path, '/v1/chat/completions');
  });

  it('stream helper, served by Anthropic', async () => {
    const stream = client.responses.stream({
      model: 'anthropic/claude-sonnet-4-5',
      max_output_tokens: 32000,
      input: 'What is 1+1? Answer with just the number.',
    });
    let text = '';
    stream.on('response.output_text.delta', (event) => {
      text += event.delta;
    });
    const final = await stream.finalResponse();
    assert.equal(text, cases.anthropicStreamText('anthropic/stream_text_basic.json'));
    // The helper's final response is the `response.completed` one (the SDK
    // adds no `output_text` to it): its message holds the same text.
    const message = final.output.find((item) => item.type === 'message');
    assert.equal(message.content[0].text, text);
    assert.ok(final.usage.output_tokens > 0);
  });

  it('a streamed call, served by Gemini', async () => {
    const tools = [
      { type: 'function', name: 'get_capital', description: 'Get the capital of a country.', parameters: { additionalProperties: false, properties: { country: { description: 'The country name.', type: 'string' } }, required: ['country'], type: 'object' }, strict: null },
      { type: 'function', name: 'get_temperature', description: 'Get the temperature in a city.', parameters: { properties: { city: { description: 'The city name.', type: 'string' } }, required: ['city'], type: 'object' }, strict: null },
    ];
    const events = [];
    const stream = await client.responses.create({
      model: 'gemini/gemini-2.0-flash',
      instructions: 'You are a helpful chatbot.',
      input: 'What is the temperature of the capital of France?',
      tools,
      stream: true,
    });
    for await (const event of stream) events.push(event);
    assert.deepEqual(
      events.map((e) => e.sequence_number),
      events.map((_, i) => i),
    );
    const done = events.find((e) => e.type === 'response.output_item.done' && e.item.type === 'function_call');
    assert.equal(done.item.name, 'get_capital');
    assert.deepEqual(JSON.parse(done.item.arguments), { country: 'France' });
    assert.equal(events.at(-1).type, 'response.completed');
  });

  it('a built-in tool is a 400 naming it', async () => {
    await assert.rejects(
      client.responses.create({ model: 'anthropic/claude-sonnet-4-5', input: 'news?', tools: [{ type: 'web_search' }] }),
      (err) => err instanceof OpenAI.BadRequestError && /web_search/.test(err.message),
    );
  });
});

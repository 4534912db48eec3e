// Message batches through the official `@anthropic-ai/sdk`: a batch that mixes
// providers is created, polled to its end and read back with `results()`,
// each answer the recorded one; then listed, canceled and deleted.

import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';

import Anthropic from '@anthropic-ai/sdk';

import * as cases from './cases.mjs';
import { MASTER_KEY, startStack } from './harness.mjs';

let stack;
let client;

before(async () => {
  stack = await startStack();
  client = new Anthropic({ baseURL: stack.base, apiKey: MASTER_KEY, maxRetries: 0, timeout: 30_000 });
});
after(() => stack?.stop());
beforeEach(() => stack.reset());

const QUESTION = [{ role: 'user', content: 'What is the capital of France?' }];
const params = (model) => ({ model, max_tokens: 1024, system: 'You are a helpful assistant.', messages: QUESTION });
const textOf = (message) => message.content.filter((b) => b.type === 'text').map((b) => b.text).join('');

async function ended(id) {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const batch = await client.messages.batches.retrieve(id);
    if (batch.processing_status === 'ended') return batch;
    assert.ok(Date.now() < deadline, `batch still ${batch.processing_status}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe('message batches', () => {
  it('run requests on their providers and give the recorded answers as results', async () => {
    const batch = await client.messages.batches.create({
      requests: [
        { custom_id: 'openai', params: params('openai/gpt-4o') },
        { custom_id: 'gemini', params: params('gemini/gemini-2.0-flash') },
      ],
    });
    assert.match(batch.id, /^msgbatch_/);
    assert.equal(batch.processing_status, 'in_progress');
    const done = await ended(batch.id);
    assert.equal(done.request_counts.succeeded, 2);
    assert.ok(done.results_url.endsWith(`/v1/messages/batches/${batch.id}/results`));

    const results = [];
    for await (const line of await client.messages.batches.results(batch.id)) results.push(line);
    assert.deepEqual(results.map((r) => r.custom_id), ['openai', 'gemini']);
    assert.equal(textOf(results[0].result.message), cases.openaiMessage('openai/chat_nonstream_instructions.json').content);
    const gemini = cases.response('gemini/generate_content_instructions.json').body;
    assert.equal(textOf(results[1].result.message), gemini.candidates[0].content.parts[0].text);
    const paths = (await stack.upstreamLog()).map((r) => r.path).sort();
    assert.deepEqual(paths, ['/v1/chat/completions', '/v1beta/models/gemini-2.0-flash:generateContent']);

    const listed = [];
    for await (const b of client.messages.batches.list({ limit: 1 })) listed.push(b.id);
    assert.ok(listed.includes(batch.id));
    const deleted = await client.messages.batches.delete(batch.id);
    assert.equal(deleted.type, 'message_batch_deleted');
    await assert.rejects(client.messages.batches.retrieve(batch.id), Anthropic.NotFoundError);
  });

  it('cancel ends what has not run', async () => {
    await fetch(`${stack.upstream}/_replay/faults`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ match: { model: 'gpt-4o' }, fault: { delay_ms: 1000 }, times: 20 }),
    });
    const requests = Array.from({ length: 8 }, (_, i) => ({ custom_id: `r${i}`, params: params('openai/gpt-4o') }));
    const batch = await client.messages.batches.create({ requests });
    const canceling = await client.messages.batches.cancel(batch.id);
    assert.ok(['canceling', 'ended'].includes(canceling.processing_status));
    const done = await ended(batch.id);
    assert.ok(done.request_counts.canceled >= 1);
    assert.equal(done.request_counts.canceled + done.request_counts.succeeded, 8);
    assert.equal((await stack.upstreamLog()).length, done.request_counts.succeeded);
  });
});

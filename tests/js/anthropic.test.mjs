// The official `@anthropic-ai/sdk` against the gateway, each upstream
// provider played by the replay from recorded transcripts. Every request is
// the Anthropic form of a recorded native request of the serving provider;
// the answers asserted are the recorded ones, as the SDK parses them
// (`messages.create`, and the `messages.stream()` helper's events and
// `finalMessage()`).

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

const textOf = (message) => message.content.filter((b) => b.type === 'text').map((b) => b.text).join('');
const toolUses = (message) => message.content.filter((b) => b.type === 'tool_use').map((b) => [b.id, b.name, b.input]);

/** Runs the `messages.stream()` helper: its text events and final message. */
async function streamed(params) {
  const stream = client.messages.stream(params);
  let text = '';
  stream.on('text', (delta) => {
    text += delta;
  });
  const final = await stream.finalMessage();
  return { text, final };
}

const usageOf = (message) => [message.usage.input_tokens, message.usage.output_tokens];

describe('anthropic upstream', () => {
  it('non-stream', async () => {
    const rec = cases.response('anthropic/messages_nonstream_instructions.json').body;
    const out = await client.messages.create({
      model: 'anthropic/claude-3-opus-latest',
      max_tokens: 4096,
      system: 'You are a helpful assistant.\n\n',
      messages: [{ role: 'user', content: 'What is the capital of France?' }],
    });
    assert.equal(textOf(out), rec.content[0].text);
    assert.equal(out.stop_reason, 'end_turn');
    assert.equal(out.id, rec.id);
    assert.deepEqual(usageOf(out), [rec.usage.input_tokens, rec.usage.output_tokens]);
    const [sent] = await stack.upstreamLog();
    assert.equal(sent.body.model, 'claude-3-opus-latest');
    assert.equal(sent.headers['x-api-key'], 'sk-provider-anthropic');
  });

  it('stream helper', async () => {
    const name = 'anthropic/llm_stream_text_prompt.json';
    const { text, final } = await streamed({
      model: 'claude-sonnet-4-5', // bare: the catalog routes it to the anthropic provider
      max_tokens: 8192,
      messages: [{ role: 'user', content: 'Two names for a pet pelican, be brief' }],
    });
    assert.equal(text, cases.anthropicStreamText(name));
    assert.equal(textOf(final), text);
    assert.equal(final.stop_reason, 'end_turn');
    assert.deepEqual(usageOf(final), cases.anthropicStreamUsage(name));
  });

  it('tool call and follow-up turn', async () => {
    const call = cases.response('anthropic/tool_use_nonstream_call.json').body;
    const follow = cases.response('anthropic/tool_use_nonstream_followup.json').body;
    const params = {
      model: 'claude-sonnet-4-5',
      max_tokens: 4096,
      tools: cases.anthropicTools(cases.CITY_TOOLS),
      tool_choice: { type: 'any' },
      messages: [{ role: 'user', content: 'What is the largest city in the user country?' }],
    };
    const out = await client.messages.create(params);
    assert.deepEqual(toolUses(out), [[call.content[0].id, 'get_user_country', {}]]);
    assert.equal(out.stop_reason, 'tool_use');
    params.messages.push(
      { role: 'assistant', content: out.content },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: out.content[0].id, content: 'Mexico' }] },
    );
    const next = await client.messages.create(params);
    assert.deepEqual(toolUses(next), [[follow.content[0].id, 'final_result', follow.content[0].input]]);
  });

  it('streamed tool calls and follow-up turn', async () => {
    const call = 'anthropic/llm_stream_tool_use_call.json';
    const follow = 'anthropic/llm_stream_tool_use_followup.json';
    const params = {
      model: 'anthropic/claude-haiku-4-5-20251001',
      max_tokens: 8192,
      tools: cases.anthropicTools(cases.PELICAN_TOOLS),
      messages: [{ role: 'user', content: 'Two names for a pet pelican' }],
    };
    const { final } = await streamed(params);
    assert.deepEqual(toolUses(final), cases.anthropicStreamToolUses(call));
    assert.equal(final.stop_reason, 'tool_use');
    // The recorded follow-up is llm's: a blank text block ahead of the calls.
    const echoed = final.content.map((b) => ({ type: 'tool_use', id: b.id, name: b.name, input: b.input }));
    params.messages.push(
      { role: 'assistant', content: [{ type: 'text', text: ' ' }, ...echoed] },
      {
        role: 'user',
        content: [
          { type: 'tool_result', tool_use_id: final.content[0].id, content: 'Charles' },
          { type: 'tool_result', tool_use_id: final.content[1].id, content: 'Sammy' },
        ],
      },
    );
    const next = await streamed(params);
    assert.equal(next.text, cases.anthropicStreamText(follow));
    assert.deepEqual(usageOf(next.final), cases.anthropicStreamUsage(follow));
  });
});

describe('openai upstream', () => {
  it('non-stream', async () => {
    const name = 'openai/chat_nonstream_instructions.json';
    const out = await client.messages.create({
      model: 'openai/gpt-4o',
      max_tokens: 1024,
      system: 'You are a helpful assistant.',
      messages: [{ role: 'user', content: 'What is the capital of France?' }],
    });
    const usage = cases.openaiUsage(name);
    assert.equal(textOf(out), cases.openaiMessage(name).content);
    assert.equal(out.stop_reason, 'end_turn');
    assert.deepEqual(usageOf(out), [usage.prompt_tokens, usage.completion_tokens]);
    const [sent] = await stack.upstreamLog();
    assert.equal(sent.path, '/v1/chat/completions');
    assert.equal(sent.headers.authorization, 'Bearer sk-provider-openai');
  });

  it('raw stream events', async () => {
    const name = 'openai/chat_stream_text_moderation_include_usage.json';
    const stream = await client.messages.create({
      model: 'openai/gpt-5',
      max_tokens: 1024,
      messages: [{ role: 'user', content: 'What is the capital of France?' }],
      stream: true,
    });
    const kinds = [];
    let text = '';
    for await (const event of stream) {
      kinds.push(event.type);
      if (event.type === 'content_block_delta' && event.delta.type === 'text_delta') text += event.delta.text;
    }
    assert.equal(kinds[0], 'message_start');
    assert.equal(kinds.at(-1), 'message_stop');
    assert.equal(text, cases.openaiStreamText(name));
  });

  it('streamed tool call and follow-up turn', async () => {
    const call = 'openai/chat_tool_call_stream_include_usage.json';
    const follow = 'openai/chat_stream_text_after_tool_include_usage.json';
    const params = {
      model: 'openai/gpt-4o-mini',
      max_tokens: 1024,
      tools: cases.anthropicTools(cases.UK_CAPITAL_TOOLS),
      tool_choice: { type: 'auto' },
      messages: [{ role: 'user', content: 'What is the capital of the UK? Use the tool, then answer.' }],
    };
    const { final } = await streamed(params);
    assert.deepEqual(toolUses(final), cases.openaiStreamCalls(call));
    assert.equal(final.stop_reason, 'tool_use');
    params.messages.push(
      { role: 'assistant', content: final.content },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: final.content[0].id, content: 'London' }] },
    );
    const next = await streamed(params);
    assert.equal(next.text, cases.openaiStreamText(follow));
    assert.equal(next.final.stop_reason, 'end_turn');
    const usage = cases.openaiUsage(follow);
    assert.deepEqual(usageOf(next.final), [usage.prompt_tokens, usage.completion_tokens]);
  });

  it('tool call and follow-up turn', async () => {
    const call = 'openai/chat_tool_call_nonstream_call.json';
    const follow = 'openai/chat_tool_call_nonstream_followup.json';
    const params = {
      model: 'openai/gpt-4o',
      max_tokens: 1024,
      tools: cases.anthropicTools(cases.CITY_TOOLS),
      tool_choice: { type: 'any' },
      messages: [{ role: 'user', content: 'What is the largest city in the user country?' }],
    };
    const out = await client.messages.create(params);
    assert.deepEqual(toolUses(out), [[cases.openaiMessage(call).tool_calls[0].id, 'get_user_country', {}]]);
    params.messages.push(
      { role: 'assistant', content: out.content },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: out.content[0].id, content: 'Mexico' }] },
    );
    const next = await client.messages.create(params);
    const want = cases.openaiMessage(follow).tool_calls[0];
    assert.deepEqual(toolUses(next), [[want.id, 'final_result', JSON.parse(want.function.arguments)]]);
  });
});

describe('gemini upstream', () => {
  const kw = { model: 'gemini/gemini-2.0-flash', max_tokens: 1024 };

  it('non-stream', async () => {
    const rec = cases.response('gemini/generate_content_instructions.json').body;
    const out = await client.messages.create({
      ...kw,
      system: 'You are a helpful assistant.',
      messages: [{ role: 'user', content: 'What is the capital of France?' }],
    });
    assert.equal(textOf(out), rec.candidates[0].content.parts[0].text);
    assert.equal(out.stop_reason, 'end_turn');
    const meta = rec.usageMetadata;
    assert.deepEqual(usageOf(out), [meta.promptTokenCount, cases.geminiOutputTokens(meta)]);
    const [sent] = await stack.upstreamLog();
    assert.equal(sent.path, '/v1beta/models/gemini-2.0-flash:generateContent');
  });

  it('stream helper', async () => {
    const name = 'gemini/stream_text_basic.json';
    const { text, final } = await streamed({
      ...kw,
      model: 'gemini/gemini-2.0-flash-exp',
      system: 'You are a helpful chatbot.',
      messages: [{ role: 'user', content: 'What is the capital of France?' }],
    });
    assert.equal(text, cases.geminiStreamText(name));
    assert.equal(final.stop_reason, 'end_turn');
    const meta = cases.geminiStreamUsage(name);
    assert.deepEqual(usageOf(final), [meta.promptTokenCount, cases.geminiOutputTokens(meta)]);
  });

  it('tool call', async () => {
    const out = await client.messages.create({
      ...kw,
      model: 'gemini/gemini-2.5-pro',
      system: 'You are a helpful chatbot.',
      messages: [{ role: 'user', content: 'What is the capital of France?' }],
      tools: cases.anthropicTools(cases.GET_CAPITAL_STRICT),
    });
    const want = cases.response('gemini/function_call_nonstream_call.json').body.candidates[0].content.parts[0].functionCall;
    const [[id, name, input]] = toolUses(out);
    assert.ok(id, 'a tool_use needs an id the client can answer');
    assert.deepEqual([name, input], [want.name, want.args]);
    assert.equal(out.stop_reason, 'tool_use');
  });

  it('streamed tool call and follow-up turn', async () => {
    const call = 'gemini/stream_function_call.json';
    const follow = 'gemini/stream_function_call_followup.json';
    const params = {
      ...kw,
      system: 'You are a helpful chatbot.',
      tools: cases.anthropicTools(cases.CAPITAL_AND_TEMPERATURE),
      messages: [{ role: 'user', content: 'What is the temperature of the capital of France?' }],
    };
    const { final } = await streamed(params);
    assert.deepEqual(toolUses(final).map(([, n, a]) => [n, a]), cases.geminiStreamCalls(call));
    assert.equal(final.stop_reason, 'tool_use');
    // The recorded follow-up carries the call id pydantic-ai gave the call.
    const id = 'pyd_ai_0e1a07b3c2b64d2ab3ad2efbe18e1b97';
    params.messages.push(
      { role: 'assistant', content: [{ type: 'tool_use', id, name: final.content[0].name, input: final.content[0].input }] },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: id, content: '{"return_value": "Paris"}' }] },
    );
    const next = await streamed(params);
    assert.deepEqual(toolUses(next.final).map(([, n, a]) => [n, a]), cases.geminiStreamCalls(follow));
  });
});

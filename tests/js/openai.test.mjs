// The official `openai` SDK against the gateway, each upstream provider
// played by the replay from recorded transcripts: change the base URL and
// the key, nothing else. Every request is the OpenAI form of a recorded
// native request of the serving provider; the answers asserted are the
// recorded ones, as the SDK (and its `stream` helper) parses them.

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

/** Runs the SDK's `chat.completions.stream` helper to its end. */
async function streamed(params) {
  const stream = client.chat.completions.stream(params);
  let text = '';
  const argumentsDone = [];
  stream.on('content.delta', ({ delta }) => {
    text += delta;
  });
  stream.on('tool_calls.function.arguments.done', (event) => argumentsDone.push(event));
  const final = await stream.finalChatCompletion();
  return { text, final, argumentsDone, choice: final.choices[0] };
}

const calls = (message) => (message.tool_calls ?? []).map((c) => [c.id, c.function.name, JSON.parse(c.function.arguments)]);

describe('openai upstream', () => {
  const recorded = (name) => {
    const body = structuredClone(cases.requestBody(name));
    body.model = `openai/${body.model}`;
    return body;
  };

  it('non-stream', async () => {
    const name = 'openai/chat_nonstream_instructions.json';
    const out = await client.chat.completions.create(recorded(name));
    assert.equal(out.choices[0].message.content, cases.openaiMessage(name).content);
    assert.equal(out.choices[0].finish_reason, 'stop');
    assert.equal(out.usage.total_tokens, cases.openaiUsage(name).total_tokens);
    // OpenRouter's `usage.cost`, in USD: a priced model costs something.
    assert.ok(out.usage.cost > 0, JSON.stringify(out.usage));
    const [sent] = await stack.upstreamLog();
    assert.equal(sent.headers.authorization, 'Bearer sk-provider-openai');
  });

  it('stream helper', async () => {
    const name = 'openai/chat_stream_text_after_tool_include_usage.json';
    const { text, final, choice } = await streamed(recorded(name));
    assert.equal(text, cases.openaiStreamText(name));
    assert.equal(choice.message.content, text);
    assert.equal(choice.finish_reason, 'stop');
    assert.deepEqual(final.usage.total_tokens, cases.openaiUsage(name).total_tokens);
    assert.ok(final.usage.cost > 0, JSON.stringify(final.usage));
  });

  it('tool call and follow-up turn', async () => {
    const call = 'openai/chat_tool_call_nonstream_call.json';
    const out = await client.chat.completions.create(recorded(call));
    const want = cases.openaiMessage(call).tool_calls[0];
    assert.deepEqual(calls(out.choices[0].message), [[want.id, want.function.name, JSON.parse(want.function.arguments)]]);
    assert.equal(out.choices[0].finish_reason, 'tool_calls');
    const follow = 'openai/chat_tool_call_nonstream_followup.json';
    const next = await client.chat.completions.create(recorded(follow));
    assert.deepEqual(calls(next.choices[0].message), calls(cases.openaiMessage(follow)));
  });

  it('streamed tool call', async () => {
    const name = 'openai/chat_tool_call_stream_include_usage.json';
    const { choice, argumentsDone } = await streamed(recorded(name));
    assert.deepEqual(calls(choice.message), cases.openaiStreamCalls(name));
    assert.equal(choice.finish_reason, 'tool_calls');
    assert.deepEqual(
      argumentsDone.map((e) => [e.name, JSON.parse(e.arguments)]),
      cases.openaiStreamCalls(name).map(([, n, a]) => [n, a]),
    );
  });
});

describe('anthropic upstream', () => {
  it('non-stream', async () => {
    const rec = cases.response('anthropic/messages_nonstream_instructions.json').body;
    const out = await client.chat.completions.create({
      model: 'anthropic/claude-3-opus-latest',
      max_tokens: 4096,
      messages: [
        { role: 'system', content: 'You are a helpful assistant.\n\n' },
        { role: 'user', content: 'What is the capital of France?' },
      ],
    });
    assert.equal(out.choices[0].message.content, rec.content[0].text);
    assert.equal(out.choices[0].finish_reason, 'stop');
    assert.equal(out.usage.prompt_tokens, cases.anthropicPromptTokens(rec.usage));
    assert.equal(out.usage.completion_tokens, rec.usage.output_tokens);
    const [sent] = await stack.upstreamLog();
    assert.equal(sent.path, '/v1/messages');
    assert.equal(sent.headers['x-api-key'], 'sk-provider-anthropic');
  });

  it('stream helper', async () => {
    const name = 'anthropic/stream_text_basic.json';
    const { text, final, choice } = await streamed({
      model: 'anthropic/claude-sonnet-4-5',
      max_tokens: 32000,
      messages: [{ role: 'user', content: 'What is 1+1? Answer with just the number.' }],
      stream_options: { include_usage: true },
    });
    assert.equal(text, cases.anthropicStreamText(name));
    assert.equal(choice.finish_reason, 'stop');
    assert.deepEqual([final.usage.prompt_tokens, final.usage.completion_tokens], cases.anthropicStreamUsage(name));
    assert.ok(final.usage.cost > 0, JSON.stringify(final.usage));
  });

  it('tool call and follow-up turn', async () => {
    const call = cases.response('anthropic/tool_use_nonstream_call.json').body;
    const follow = cases.response('anthropic/tool_use_nonstream_followup.json').body;
    const params = {
      model: 'anthropic/claude-sonnet-4-5',
      max_tokens: 4096,
      tools: cases.openaiTools(cases.CITY_TOOLS),
      tool_choice: 'required',
      messages: [{ role: 'user', content: 'What is the largest city in the user country?' }],
    };
    const out = await client.chat.completions.create(params);
    assert.deepEqual(calls(out.choices[0].message), [[call.content[0].id, 'get_user_country', {}]]);
    // The loop: the SDK's own assistant message goes back, then the result.
    params.messages.push(out.choices[0].message, { role: 'tool', tool_call_id: call.content[0].id, content: 'Mexico' });
    const next = await client.chat.completions.create(params);
    const want = follow.content.find((b) => b.type === 'tool_use');
    assert.deepEqual(calls(next.choices[0].message), [[want.id, want.name, want.input]]);
  });

  it('streamed tool calls without arguments parse as {}', async () => {
    // The recorded tool_use blocks have empty input and no input_json_delta;
    // with `strict`, the helper JSON.parses each call's arguments itself.
    const name = 'anthropic/llm_stream_tool_use_call.json';
    const { choice, argumentsDone } = await streamed({
      model: 'anthropic/claude-haiku-4-5-20251001',
      max_tokens: 8192,
      messages: [{ role: 'user', content: 'Two names for a pet pelican' }],
      tools: cases.openaiTools(cases.PELICAN_TOOLS, true),
    });
    assert.deepEqual(calls(choice.message), cases.anthropicStreamToolUses(name));
    assert.deepEqual(
      argumentsDone.map((e) => [e.name, e.arguments, e.parsed_arguments]),
      cases.anthropicStreamToolUses(name).map(([, n]) => [n, '{}', {}]),
    );
    assert.equal(choice.finish_reason, 'tool_calls');
  });
});

describe('gemini upstream', () => {
  it('non-stream', async () => {
    const rec = cases.response('gemini/generate_content_basic.json').body;
    const out = await client.chat.completions.create({
      model: 'gemini/gemini-2.5-flash',
      messages: [
        { role: 'system', content: 'You are a chatbot.' },
        { role: 'user', content: 'Hello!' },
      ],
    });
    assert.equal(out.choices[0].message.content, rec.candidates[0].content.parts[0].text);
    assert.equal(out.choices[0].finish_reason, 'stop');
    assert.equal(out.usage.prompt_tokens, rec.usageMetadata.promptTokenCount);
    const [sent] = await stack.upstreamLog();
    assert.equal(sent.path, '/v1beta/models/gemini-2.5-flash:generateContent');
    assert.equal(sent.headers['x-goog-api-key'], 'sk-provider-gemini');
  });

  it('stream helper', async () => {
    const name = 'gemini/stream_text_basic.json';
    const { text, final, choice } = await streamed({
      model: 'gemini/gemini-2.0-flash-exp',
      messages: [
        { role: 'system', content: 'You are a helpful chatbot.' },
        { role: 'user', content: 'What is the capital of France?' },
      ],
      temperature: 0,
      stream_options: { include_usage: true },
    });
    assert.equal(text, cases.geminiStreamText(name));
    assert.equal(choice.finish_reason, 'stop');
    assert.equal(final.usage.prompt_tokens, cases.geminiStreamUsage(name).promptTokenCount);
  });

  it('tool call', async () => {
    const out = await client.chat.completions.create({
      model: 'gemini/gemini-2.5-pro',
      messages: [
        { role: 'system', content: 'You are a helpful chatbot.' },
        { role: 'user', content: 'What is the capital of France?' },
      ],
      tools: cases.openaiTools(cases.GET_CAPITAL_STRICT),
      temperature: 0,
    });
    const rec = cases.response('gemini/function_call_nonstream_call.json').body;
    const want = rec.candidates[0].content.parts[0].functionCall;
    assert.deepEqual(calls(out.choices[0].message).map(([, n, a]) => [n, a]), [[want.name, want.args]]);
    assert.equal(out.choices[0].finish_reason, 'tool_calls');
  });

  it('streamed tool call and follow-up turn', async () => {
    const call = 'gemini/stream_function_call.json';
    const follow = 'gemini/stream_function_call_followup.json';
    const params = {
      model: 'gemini/gemini-2.0-flash',
      messages: [
        { role: 'system', content: 'You are a helpful chatbot.' },
        { role: 'user', content: 'What is the temperature of the capital of France?' },
      ],
      tools: cases.openaiTools(cases.CAPITAL_AND_TEMPERATURE, true),
    };
    const first = await streamed(params);
    assert.deepEqual(calls(first.choice.message).map(([, n, a]) => [n, a]), cases.geminiStreamCalls(call));
    assert.deepEqual(first.argumentsDone.map((e) => [e.name, e.parsed_arguments]), cases.geminiStreamCalls(call));
    // The recorded follow-up carries the call id pydantic-ai gave the call.
    const id = 'pyd_ai_0e1a07b3c2b64d2ab3ad2efbe18e1b97';
    const [fc] = first.choice.message.tool_calls;
    params.messages.push(
      { role: 'assistant', content: null, tool_calls: [{ id, type: 'function', function: fc.function }] },
      { role: 'tool', tool_call_id: id, content: '{"return_value": "Paris"}' },
    );
    const next = await streamed(params);
    assert.deepEqual(calls(next.choice.message).map(([, n, a]) => [n, a]), cases.geminiStreamCalls(follow));
  });
});

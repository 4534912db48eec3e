// The official `@google/genai` SDK against the gateway, each upstream
// provider played by the replay from recorded transcripts. The SDK puts the
// model in the path (`/v1beta/models/openai/gpt-4o:generateContent`) and
// its key in `x-goog-api-key`. Every request is the Gemini form of a
// recorded native request of the serving provider; the answers asserted are
// the recorded ones, as the SDK parses them (`generateContent`,
// `generateContentStream`, and `chats`).

import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';

import { GoogleGenAI } from '@google/genai';

import * as cases from './cases.mjs';
import { MASTER_KEY, startStack } from './harness.mjs';

let stack;
let ai;

before(async () => {
  stack = await startStack();
  ai = new GoogleGenAI({ apiKey: MASTER_KEY, httpOptions: { baseUrl: stack.base, timeout: 30_000 } });
});
after(() => stack?.stop());
beforeEach(() => stack.reset());

const config = ({ system, tools, mode, ...rest } = {}) => ({
  ...(system ? { systemInstruction: system } : {}),
  ...(tools ? { tools: cases.geminiTools(tools) } : {}),
  ...(mode ? { toolConfig: { functionCallingConfig: { mode } } } : {}),
  ...rest,
});

/** Reads a `generateContentStream` to its end. */
async function collect(stream) {
  let text = '';
  const calls = [];
  const finishes = [];
  let usage;
  let chunks = 0;
  for await (const chunk of await stream) {
    chunks += 1;
    for (const cand of chunk.candidates ?? []) {
      for (const part of cand.content?.parts ?? []) {
        if (part.text && !part.thought) text += part.text;
        if (part.functionCall) calls.push(part.functionCall);
      }
      if (cand.finishReason) finishes.push(cand.finishReason);
    }
    if (chunk.usageMetadata) usage = chunk.usageMetadata;
  }
  assert.ok(chunks > 0);
  return { text, calls, finishes, usage };
}

const usageOf = (u) => [u.promptTokenCount, u.candidatesTokenCount, u.totalTokenCount];
const openaiUsage = (name) => {
  const u = cases.openaiUsage(name);
  return [u.prompt_tokens, u.completion_tokens, u.total_tokens];
};
const anthropicUsage = ([input, output]) => [input, output, input + output];
const callsOf = (calls) => calls.map((c) => [c.name, c.args]);

describe('gemini upstream', () => {
  it('non-stream', async () => {
    const rec = cases.response('gemini/generate_content_instructions.json').body;
    const out = await ai.models.generateContent({
      model: 'gemini-2.0-flash', // bare: the catalog routes it to the gemini provider
      contents: 'What is the capital of France?',
      config: config({ system: 'You are a helpful assistant.' }),
    });
    assert.equal(out.text, rec.candidates[0].content.parts[0].text);
    assert.equal(out.candidates[0].finishReason, 'STOP');
    assert.equal(out.responseId, rec.responseId);
    const m = rec.usageMetadata;
    assert.deepEqual(usageOf(out.usageMetadata), [m.promptTokenCount, m.candidatesTokenCount, m.totalTokenCount]);
    const [sent] = await stack.upstreamLog();
    assert.equal(sent.path, '/v1beta/models/gemini-2.0-flash:generateContent');
    assert.equal(sent.headers['x-goog-api-key'], 'sk-provider-gemini');
  });

  it('stream', async () => {
    const name = 'gemini/stream_text_basic.json';
    const got = await collect(
      ai.models.generateContentStream({
        model: 'gemini/gemini-2.0-flash-exp',
        contents: 'What is the capital of France?',
        config: config({ system: 'You are a helpful chatbot.', temperature: 0.0 }),
      }),
    );
    assert.equal(got.text, cases.geminiStreamText(name));
    assert.deepEqual(got.finishes, ['STOP']);
    const m = cases.geminiStreamUsage(name);
    assert.deepEqual(usageOf(got.usage), [m.promptTokenCount, m.candidatesTokenCount, m.totalTokenCount]);
  });

  it('tool call and follow-up turn', async () => {
    const follow = cases.response('gemini/function_call_nonstream_followup.json').body;
    const cfg = config({ system: 'You are a helpful chatbot.', tools: cases.GET_CAPITAL_STRICT, temperature: 0.0, responseModalities: ['TEXT'] });
    const user = { role: 'user', parts: [{ text: 'What is the capital of France?' }] };
    const out = await ai.models.generateContent({ model: 'gemini-2.5-pro', contents: [user], config: cfg });
    assert.deepEqual(callsOf(out.functionCalls), [['get_capital', { country: 'France' }]]);
    const modelTurn = out.candidates[0].content;
    assert.ok(modelTurn.parts[0].thoughtSignature, "the call's thoughtSignature reached the client");
    // pydantic-ai (the recording's client) gave the call an id, which the
    // answer names, and sent the signature back in URL-safe base64 (as the
    // Python SDK does; Gemini takes either alphabet).
    const id = 'pyd_ai_1f2bdea4ea804905a3f05dfe5b96a7fb';
    modelTurn.parts[0].functionCall.id = id;
    modelTurn.parts[0].thoughtSignature = modelTurn.parts[0].thoughtSignature.replaceAll('+', '-').replaceAll('/', '_');
    const result = {
      role: 'user',
      parts: [
        {
          functionResponse: {
            id,
            name: 'get_capital',
            response: { error: 'The country is not supported. Use "La France" instead.\n\nFix the errors and try again.' },
          },
        },
      ],
    };
    const next = await ai.models.generateContent({ model: 'gemini-2.5-pro', contents: [user, modelTurn, result], config: cfg });
    assert.deepEqual(callsOf(next.functionCalls), [['get_capital', { country: 'La France' }]]);
    assert.equal(next.usageMetadata.totalTokenCount, follow.usageMetadata.totalTokenCount);
  });

  it('streamed tool call and follow-up turn', async () => {
    const call = 'gemini/stream_function_call.json';
    const follow = 'gemini/stream_function_call_followup.json';
    const cfg = config({ system: 'You are a helpful chatbot.', tools: cases.CAPITAL_AND_TEMPERATURE });
    const user = { role: 'user', parts: [{ text: 'What is the temperature of the capital of France?' }] };
    const got = await collect(ai.models.generateContentStream({ model: 'gemini-2.0-flash', contents: [user], config: cfg }));
    assert.deepEqual(callsOf(got.calls), cases.geminiStreamCalls(call));
    const id = 'pyd_ai_0e1a07b3c2b64d2ab3ad2efbe18e1b97';
    const [fc] = got.calls;
    const contents = [
      user,
      { role: 'model', parts: [{ functionCall: { id, name: fc.name, args: fc.args } }] },
      { role: 'user', parts: [{ functionResponse: { id, name: fc.name, response: { return_value: 'Paris' } } }] },
    ];
    const next = await collect(ai.models.generateContentStream({ model: 'gemini-2.0-flash', contents, config: cfg }));
    assert.deepEqual(callsOf(next.calls), cases.geminiStreamCalls(follow));
  });
});

describe('openai upstream', () => {
  it('non-stream', async () => {
    const name = 'openai/chat_nonstream_instructions.json';
    const out = await ai.models.generateContent({
      model: 'openai/gpt-4o',
      contents: 'What is the capital of France?',
      config: config({ system: 'You are a helpful assistant.' }),
    });
    assert.equal(out.text, cases.openaiMessage(name).content);
    assert.equal(out.candidates[0].finishReason, 'STOP');
    assert.deepEqual(usageOf(out.usageMetadata), openaiUsage(name));
    const [sent] = await stack.upstreamLog();
    assert.equal(sent.path, '/v1/chat/completions');
    assert.equal(sent.headers.authorization, 'Bearer sk-provider-openai');
  });

  it('stream, through a chat', async () => {
    const name = 'openai/chat_stream_text_moderation_include_usage.json';
    const chat = ai.chats.create({ model: 'openai/gpt-5' });
    const got = await collect(chat.sendMessageStream({ message: 'What is the capital of France?' }));
    assert.equal(got.text, cases.openaiStreamText(name));
    assert.deepEqual(usageOf(got.usage), openaiUsage(name));
    assert.equal(chat.getHistory().at(-1).role, 'model');
  });

  it('tool call and follow-up turn, through a chat', async () => {
    const call = cases.openaiMessage('openai/chat_tool_call_nonstream_call.json').tool_calls[0];
    const follow = cases.openaiMessage('openai/chat_tool_call_nonstream_followup.json').tool_calls[0];
    const chat = ai.chats.create({ model: 'openai/gpt-4o', config: config({ tools: cases.CITY_TOOLS, mode: 'ANY' }) });
    const out = await chat.sendMessage({ message: 'What is the largest city in the user country?' });
    assert.deepEqual(out.functionCalls.map((c) => [c.id, c.name, c.args]), [[call.id, 'get_user_country', {}]]);
    const next = await chat.sendMessage({
      message: { functionResponse: { name: 'get_user_country', response: { output: 'Mexico' } } },
    });
    assert.deepEqual(next.functionCalls.map((c) => [c.id, c.name, c.args]), [[follow.id, 'final_result', JSON.parse(follow.function.arguments)]]);
  });

  it('streamed tool call and follow-up turn', async () => {
    const call = 'openai/chat_tool_call_stream_include_usage.json';
    const follow = 'openai/chat_stream_text_after_tool_include_usage.json';
    const cfg = config({ tools: cases.UK_CAPITAL_TOOLS, mode: 'AUTO' });
    const user = { role: 'user', parts: [{ text: 'What is the capital of the UK? Use the tool, then answer.' }] };
    const got = await collect(ai.models.generateContentStream({ model: 'openai/gpt-4o-mini', contents: [user], config: cfg }));
    assert.deepEqual(got.calls.map((c) => [c.id, c.name, c.args]), cases.openaiStreamCalls(call));
    assert.deepEqual(usageOf(got.usage), openaiUsage(call));
    const [fc] = got.calls;
    const contents = [
      user,
      { role: 'model', parts: [{ functionCall: fc }] },
      { role: 'user', parts: [{ functionResponse: { id: fc.id, name: fc.name, response: { output: 'London' } } }] },
    ];
    const next = await collect(ai.models.generateContentStream({ model: 'openai/gpt-4o-mini', contents, config: cfg }));
    assert.equal(next.text, cases.openaiStreamText(follow));
    assert.deepEqual(usageOf(next.usage), openaiUsage(follow));
  });
});

describe('anthropic upstream', () => {
  it('non-stream', async () => {
    const rec = cases.response('anthropic/messages_nonstream_instructions.json').body;
    const out = await ai.models.generateContent({
      model: 'anthropic/claude-3-opus-latest',
      contents: 'What is the capital of France?',
      config: config({ system: 'You are a helpful assistant.\n\n' }),
    });
    assert.equal(out.text, rec.content[0].text);
    assert.equal(out.candidates[0].finishReason, 'STOP');
    const prompt = cases.anthropicPromptTokens(rec.usage);
    assert.deepEqual(usageOf(out.usageMetadata), [prompt, rec.usage.output_tokens, prompt + rec.usage.output_tokens]);
    const [sent] = await stack.upstreamLog();
    assert.equal(sent.path, '/v1/messages');
    assert.equal(sent.headers['x-api-key'], 'sk-provider-anthropic');
  });

  it('stream', async () => {
    const name = 'anthropic/stream_text_basic.json';
    const got = await collect(
      ai.models.generateContentStream({
        model: 'anthropic/claude-sonnet-4-5',
        contents: 'What is 1+1? Answer with just the number.',
        config: config({ maxOutputTokens: 32000 }),
      }),
    );
    assert.equal(got.text, cases.anthropicStreamText(name));
    assert.deepEqual(got.finishes, ['STOP']);
    assert.deepEqual(usageOf(got.usage), anthropicUsage(cases.anthropicStreamUsage(name)));
  });

  it('tool call and follow-up turn, through a chat', async () => {
    const call = cases.response('anthropic/tool_use_nonstream_call.json').body;
    const follow = cases.response('anthropic/tool_use_nonstream_followup.json').body;
    const chat = ai.chats.create({
      model: 'anthropic/claude-sonnet-4-5',
      config: config({ tools: cases.CITY_TOOLS, mode: 'ANY', maxOutputTokens: 4096 }),
    });
    const out = await chat.sendMessage({ message: 'What is the largest city in the user country?' });
    assert.deepEqual(out.functionCalls.map((c) => [c.id, c.name, c.args]), [[call.content[0].id, 'get_user_country', {}]]);
    const next = await chat.sendMessage({
      message: { functionResponse: { name: 'get_user_country', response: { output: 'Mexico' } } },
    });
    assert.deepEqual(next.functionCalls.map((c) => [c.id, c.name, c.args]), [[follow.content[0].id, 'final_result', follow.content[0].input]]);
  });

  it('streamed tool calls without arguments and follow-up turn', async () => {
    const call = 'anthropic/llm_stream_tool_use_call.json';
    const follow = 'anthropic/llm_stream_tool_use_followup.json';
    const cfg = config({ tools: cases.PELICAN_TOOLS, maxOutputTokens: 8192, temperature: 1.0 });
    const user = { role: 'user', parts: [{ text: 'Two names for a pet pelican' }] };
    const got = await collect(ai.models.generateContentStream({ model: 'anthropic/claude-haiku-4-5-20251001', contents: [user], config: cfg }));
    assert.deepEqual(got.calls.map((c) => [c.id, c.name, c.args]), cases.anthropicStreamToolUses(call));
    // The recorded follow-up is llm's: a blank text part ahead of the calls.
    const modelTurn = { role: 'model', parts: [{ text: ' ' }, ...got.calls.map((c) => ({ functionCall: c }))] };
    const results = {
      role: 'user',
      parts: got.calls.map((c, i) => ({ functionResponse: { id: c.id, name: c.name, response: { output: ['Charles', 'Sammy'][i] } } })),
    };
    const next = await collect(
      ai.models.generateContentStream({ model: 'anthropic/claude-haiku-4-5-20251001', contents: [user, modelTurn, results], config: cfg }),
    );
    assert.equal(next.text, cases.anthropicStreamText(follow));
    assert.deepEqual(usageOf(next.usage), anthropicUsage(cases.anthropicStreamUsage(follow)));
  });
});

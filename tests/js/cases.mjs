// What the recorded transcripts say the answers are (the JavaScript twin of
// tests/py/sdk_cases.py): tests assert the provider's real answer, read
// straight from the recording, as each SDK parses it.

import { readFileSync } from 'node:fs';
import path from 'node:path';

import { REPO } from './harness.mjs';

const DIR = path.join(REPO, 'conformance', 'transcripts');

export function load(name) {
  return JSON.parse(readFileSync(path.join(DIR, name), 'utf8'));
}

export const response = (name) => load(name).response;
export const requestBody = (name) => load(name).request.body;

/** The `data:` payloads of an SSE text, in order. */
export function sseData(text) {
  const out = [];
  for (const event of text.replaceAll('\r\n', '\n').split('\n\n')) {
    const lines = event
      .split('\n')
      .filter((l) => l.startsWith('data:'))
      .map((l) => l.slice(5).replace(/^ /, ''));
    if (lines.length) out.push(lines.join('\n'));
  }
  return out;
}

const chunks = (name) => sseData(response(name).sse).filter((d) => d !== '[DONE]').map((d) => JSON.parse(d));

// ------------------------------------------------------------------ OpenAI

export const openaiMessage = (name) => response(name).body.choices[0].message;

export function openaiUsage(name) {
  const r = response(name);
  if (r.body) return r.body.usage;
  return chunks(name).findLast((c) => c.usage).usage;
}

export const openaiStreamText = (name) =>
  chunks(name)
    .flatMap((c) => c.choices ?? [])
    .map((c) => c.delta?.content ?? '')
    .join('');

/** [id, name, parsed arguments] of each streamed tool call. */
export function openaiStreamCalls(name) {
  const calls = new Map();
  for (const c of chunks(name)) {
    for (const choice of c.choices ?? []) {
      for (const tc of choice.delta?.tool_calls ?? []) {
        const slot = calls.get(tc.index) ?? { id: '', name: '', args: '' };
        slot.id += tc.id ?? '';
        slot.name += tc.function?.name ?? '';
        slot.args += tc.function?.arguments ?? '';
        calls.set(tc.index, slot);
      }
    }
  }
  return [...calls.entries()].sort(([a], [b]) => a - b).map(([, c]) => [c.id, c.name, JSON.parse(c.args)]);
}

// --------------------------------------------------------------- Anthropic

const events = (name) => sseData(response(name).sse).map((d) => JSON.parse(d));

export const anthropicStreamText = (name) =>
  events(name)
    .filter((e) => e.type === 'content_block_delta' && e.delta.type === 'text_delta')
    .map((e) => e.delta.text)
    .join('');

/** [input_tokens, output_tokens]: message_start's input, the last message_delta's output. */
export function anthropicStreamUsage(name) {
  const all = events(name);
  const start = all.find((e) => e.type === 'message_start').message.usage;
  const delta = all.filter((e) => e.type === 'message_delta').at(-1).usage;
  return [delta.input_tokens ?? start.input_tokens, delta.output_tokens];
}

/** [id, name, parsed input] of each streamed tool_use block. */
export function anthropicStreamToolUses(name) {
  const blocks = new Map();
  for (const e of events(name)) {
    if (e.type === 'content_block_start' && e.content_block.type === 'tool_use') {
      blocks.set(e.index, { id: e.content_block.id, name: e.content_block.name, json: '' });
    } else if (e.type === 'content_block_delta' && e.delta.type === 'input_json_delta') {
      blocks.get(e.index).json += e.delta.partial_json;
    }
  }
  return [...blocks.entries()].sort(([a], [b]) => a - b).map(([, b]) => [b.id, b.name, JSON.parse(b.json || '{}')]);
}

/** Anthropic's input_tokens leave the cache counters out; the other dialects' prompt counts include them. */
export const anthropicPromptTokens = (u) =>
  u.input_tokens + (u.cache_read_input_tokens ?? 0) + (u.cache_creation_input_tokens ?? 0);

// ------------------------------------------------------------------ Gemini

const parts = (body) => (body.candidates ?? []).flatMap((c) => c.content?.parts ?? []);

export const geminiStreamText = (name) =>
  chunks(name)
    .flatMap(parts)
    .filter((p) => !p.thought)
    .map((p) => p.text ?? '')
    .join('');

export const geminiStreamCalls = (name) =>
  chunks(name)
    .flatMap(parts)
    .filter((p) => p.functionCall)
    .map((p) => [p.functionCall.name, p.functionCall.args ?? {}]);

export const geminiStreamUsage = (name) => chunks(name).findLast((c) => c.usageMetadata).usageMetadata;

/** Gemini bills thoughts as output but reports them apart. */
export const geminiOutputTokens = (m) => (m.candidatesTokenCount ?? 0) + (m.thoughtsTokenCount ?? 0);

// ------------------------------------------------------------------- tools
// The tool definitions of the recordings (name, description, JSON schema).

// openai/chat_tool_call_nonstream_{call,followup}, anthropic/tool_use_nonstream_{call,followup}
export const CITY_TOOLS = [
  { name: 'get_user_country', description: '', schema: { additionalProperties: false, properties: {}, type: 'object' } },
  {
    name: 'final_result',
    description: 'The final response which ends this conversation',
    schema: {
      properties: { city: { type: 'string' }, country: { type: 'string' } },
      required: ['city', 'country'],
      title: 'CityLocation',
      type: 'object',
    },
  },
];
// openai/chat_tool_call_stream_include_usage, openai/chat_stream_text_after_tool_include_usage
export const UK_CAPITAL_TOOLS = [
  {
    name: 'get_capital',
    description: '',
    schema: { additionalProperties: false, properties: { country: { type: 'string' } }, required: ['country'], type: 'object' },
  },
];
// anthropic/llm_stream_tool_use_{call,followup}: a tool without parameters
export const PELICAN_TOOLS = [{ name: 'pelican_name_generator', description: '', schema: { properties: {}, type: 'object' } }];
// gemini/function_call_nonstream_{call,followup}
export const GET_CAPITAL_STRICT = [
  {
    name: 'get_capital',
    description: 'Get the capital of a country.',
    schema: {
      additionalProperties: false,
      properties: { country: { description: 'The country name.', type: 'string' } },
      required: ['country'],
      type: 'object',
    },
  },
];
// gemini/stream_function_call{,_followup}
export const CAPITAL_AND_TEMPERATURE = [
  {
    name: 'get_capital',
    description: 'Get the capital of a country.',
    schema: { properties: { country: { description: 'The country name.', type: 'string' } }, required: ['country'], type: 'object' },
  },
  {
    name: 'get_temperature',
    description: 'Get the temperature in a city.',
    schema: { properties: { city: { description: 'The city name.', type: 'string' } }, required: ['city'], type: 'object' },
  },
];

export const openaiTools = (tools, strict) =>
  tools.map((t) => ({
    type: 'function',
    function: { name: t.name, description: t.description, parameters: t.schema, ...(strict ? { strict: true } : {}) },
  }));
export const anthropicTools = (tools) => tools.map((t) => ({ name: t.name, description: t.description, input_schema: t.schema }));
export const geminiTools = (tools) => [
  {
    functionDeclarations: tools.map((t) => ({
      name: t.name,
      ...(t.description ? { description: t.description } : {}),
      parametersJsonSchema: t.schema,
    })),
  },
];

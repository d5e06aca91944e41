// The official `ollama` npm client through the gate: only host and headers change.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { Stack, responseError } from './harness.mjs';

const TEXT = 'Hello from the mock';
const CHUNKS = 4;
const PROMPT_TOKENS = 26;
const LOCAL_MODELS = ['llama3.2:latest', 'llava:7b', 'nomic-embed-text:latest', 'qwen3:8b', 'secret-model:latest'];
const MESSAGES = [{ role: 'user', content: 'Say hello.' }];
const WEATHER_TOOL = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'Current weather in a city',
    parameters: {
      type: 'object',
      properties: { city: { type: 'string' }, days: { type: 'integer' } },
      required: ['city'],
    },
  },
};
const embedding = (seed) => Array.from({ length: 8 }, (_, i) => ((seed * 31 + i * 7) % 100) / 100 - 0.5);
const near = (a, b) => a.length === b.length && a.every((x, i) => Math.abs(x - b[i]) < 1e-6);

const T = { timeout: 30_000 };

describe('ollama-js through corral', () => {
  let stack;
  let ollama;

  before(async () => {
    stack = await Stack.start();
    ollama = stack.client(await stack.newKey('node-user'));
  });

  after(async () => {
    if (!stack) return;
    const status = await stack.stop();
    stack.cleanup();
    assert.equal(status.code, 0, 'corral serve exits 0 on SIGTERM');
  });

  test('chat, whole answer', T, async () => {
    const r = await ollama.chat({ model: 'llama3.2', messages: MESSAGES, stream: false });
    assert.equal(r.message.role, 'assistant');
    assert.equal(r.message.content, TEXT);
    assert.equal(r.done, true);
    assert.equal(r.prompt_eval_count, PROMPT_TOKENS);
    assert.equal(r.eval_count, CHUNKS);
  });

  test('chat, streamed chunk by chunk', T, async () => {
    const parts = [];
    for await (const p of await ollama.chat({ model: 'llama3.2', messages: MESSAGES, stream: true })) parts.push(p);
    assert.equal(parts.length, CHUNKS + 1);
    assert.deepEqual(parts.map((p) => p.done), [...Array(CHUNKS).fill(false), true]);
    assert.equal(parts.map((p) => p.message.content).join(''), TEXT);
    assert.equal(parts.at(-1).eval_count, CHUNKS);
  });

  test('a slow stream reaches the client before upstream finishes', T, async () => {
    const t0 = Date.now();
    const at = [];
    for await (const _ of await ollama.generate({ model: 'slow', prompt: 'count', stream: true })) at.push(Date.now() - t0);
    assert.equal(at.length, 11);
    const upstreamMs = 9 * 150;
    assert.ok(at.at(-1) >= upstreamMs * 0.9, `ended after ${at.at(-1)} ms, faster than upstream`);
    assert.ok(at[0] < upstreamMs / 2, `first chunk after ${at[0]} ms: the gate buffered the stream`);
  });

  test('generate, whole and streamed', T, async () => {
    const whole = await ollama.generate({ model: 'llama3.2', prompt: 'Say hello.' });
    assert.equal(whole.response, TEXT);
    assert.equal(whole.prompt_eval_count, PROMPT_TOKENS);
    let text = '';
    let last;
    for await (const p of await ollama.generate({ model: 'llama3.2', prompt: 'Say hello.', stream: true })) {
      text += p.response;
      last = p;
    }
    assert.equal(text, TEXT);
    assert.equal(last.done, true);
  });

  test('embed and legacy embeddings', T, async () => {
    const r = await ollama.embed({ model: 'nomic-embed-text', input: ['a', 'b'] });
    assert.equal(r.embeddings.length, 2);
    r.embeddings.forEach((e, i) => assert.ok(near(e, embedding(i)), `embedding ${i}: ${e}`));
    const legacy = await ollama.embeddings({ model: 'nomic-embed-text', prompt: 'a' });
    assert.ok(near(legacy.embedding, embedding(0)));
  });

  test('tool calls, whole and streamed', T, async () => {
    const r = await ollama.chat({ model: 'llama3.2', messages: MESSAGES, tools: [WEATHER_TOOL] });
    assert.equal(r.message.tool_calls.length, 1);
    assert.equal(r.message.tool_calls[0].function.name, 'get_weather');
    assert.deepEqual(r.message.tool_calls[0].function.arguments, { city: 'Paris', days: 1 });

    const calls = [];
    for await (const p of await ollama.chat({ model: 'llama3.2', messages: MESSAGES, tools: [WEATHER_TOOL], stream: true })) {
      calls.push(...(p.message.tool_calls ?? []));
    }
    assert.deepEqual(calls.map((c) => c.function.name), ['get_weather']);
  });

  test('list shows local models only (cloud ones filtered)', T, async () => {
    const r = await ollama.list();
    assert.deepEqual(r.models.map((m) => m.model).sort(), LOCAL_MODELS);
  });

  test('show is discovery, allowed', T, async () => {
    const r = await ollama.show({ model: 'llama3.2' });
    assert.ok(r.capabilities.includes('tools'));
  });

  test('text cut inside an emoji (a lone surrogate) is served, as Ollama serves it', T, async () => {
    // slice() counts UTF-16 units: this cuts the emoji in half, and JSON.stringify sends "\ud83d".
    const cut = 'I like \u{1F600} a lot'.slice(0, 8);
    assert.equal(cut.length, 8);
    const r = await ollama.chat({ model: 'llama3.2', messages: [{ role: 'user', content: cut }] });
    assert.equal(r.message.content, TEXT);
    const g = await ollama.generate({ model: 'llama3.2', prompt: cut });
    assert.equal(g.response, TEXT);
  });

  test('an upstream error keeps its status', T, async () => {
    const e = await responseError(() => ollama.chat({ model: 'error503', messages: MESSAGES }));
    assert.equal(e.status_code, 503);
  });
});

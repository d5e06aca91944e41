// A client that aborts a stream cancels the upstream generation at once: ollama-js's abort()
// mid-stream closes the connection to the gate, and the mock upstream sees its own connection
// closed promptly. The audit record says the client went away.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';

import { Stack, pollUntil, sleep } from './harness.mjs';

const MESSAGES = [{ role: 'user', content: 'Tell me a long story.' }];
// Generous for a loaded CI machine; the gate itself takes milliseconds.
const CANCEL_WITHIN_MS = 1000;
const T = { timeout: 30_000 };

describe('aborting a stream through corral with ollama-js', () => {
  let stack;
  let ollama;

  before(async () => {
    stack = await Stack.start();
    ollama = stack.client(await stack.newKey('node-cancel'));
  });

  after(async () => {
    if (!stack) return;
    await stack.stop().catch(() => {});
    stack.cleanup();
  });

  /** Waits for the mock to report the upstream end of the next response on `path`. */
  async function upstreamEnd(path, seen) {
    let found;
    await pollUntil(
      () => {
        found = stack.upstreamEnds().filter((e) => e.path === path)[seen];
        return found !== undefined;
      },
      5000,
      `the mock seeing the end of ${path}`,
    );
    return found;
  }

  for (const [name, path, start] of [
    ['chat', '/api/chat', (o) => o.chat({ model: 'endless', messages: MESSAGES, stream: true })],
    ['generate', '/api/generate', (o) => o.generate({ model: 'endless', prompt: 'count', stream: true })],
  ]) {
    test(`abort() in the middle of a ${name} stream cancels the upstream request`, T, async () => {
      const seen = stack.upstreamEnds().filter((e) => e.path === path).length;
      const stream = await start(ollama);
      let parts = 0;
      let abortedAt;
      await assert.rejects(
        async () => {
          for await (const _ of stream) {
            parts += 1;
            if (parts === 3) {
              abortedAt = Date.now();
              stream.abort();
            }
          }
        },
        { name: 'AbortError' },
      );
      assert.equal(parts, 3);
      const end = await upstreamEnd(path, seen);
      assert.equal(end.end, 'disconnected', 'the upstream saw its client leave');
      const lag = end.unix_ms - abortedAt;
      assert.ok(lag < CANCEL_WITHIN_MS, `upstream noticed ${lag} ms after abort()`);
    });
  }

  test('Ollama.abort() cancels every stream of the client', T, async () => {
    const seen = stack.upstreamEnds().filter((e) => e.path === '/api/chat').length;
    const a = await ollama.chat({ model: 'endless', messages: MESSAGES, stream: true });
    const b = await ollama.chat({ model: 'endless', messages: MESSAGES, stream: true });
    const drain = async (s) => {
      try {
        for await (const _ of s);
      } catch (e) {
        return e.name;
      }
      return 'finished';
    };
    const results = Promise.all([drain(a), drain(b)]);
    await sleep(100);
    const abortedAt = Date.now();
    ollama.abort();
    assert.deepEqual(await results, ['AbortError', 'AbortError']);
    for (const i of [seen, seen + 1]) {
      const end = await upstreamEnd('/api/chat', i);
      assert.equal(end.end, 'disconnected');
      assert.ok(end.unix_ms - abortedAt < CANCEL_WITHIN_MS, `upstream noticed ${end.unix_ms - abortedAt} ms after abort()`);
    }
  });

  test('the audit log records the aborted streams as client_disconnected', T, async () => {
    const records = () =>
      readFileSync(stack.auditLog, 'utf8')
        .trim()
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l))
        .filter((r) => r.corral?.model?.startsWith('endless'));
    await pollUntil(() => records().length >= 4, 2000, 'four audit records of aborted streams');
    for (const r of records()) {
      assert.equal(r.corral.reason, 'client_disconnected', JSON.stringify(r));
      assert.equal(r.corral.streamed, true);
    }
  });
});

// Refusals seen by the official `ollama` npm client: admin calls, model allow-lists, missing,
// unknown, revoked and rotated keys; then the audit log of it all verifies after SIGTERM.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { after, before, describe, test } from 'node:test';

import { Stack, TAKES_EFFECT_MS, pollUntil, responseError } from './harness.mjs';

const MESSAGES = [{ role: 'user', content: 'Say hello.' }];
const CONFIG = `
[policies.llama-only]
models = ["llama3.2"]

[policies.limited]
max_requests_per_minute = 2
`;
const T = { timeout: 30_000 };

/** Whether the key is accepted (a refusal must be a 401). */
async function accepted(stack, key) {
  try {
    await stack.client(key).list();
    return true;
  } catch (e) {
    if (e.name !== 'ResponseError') throw e;
    assert.equal(e.status_code, 401, `a refused key gets 401, got ${e.status_code}`);
    return false;
  }
}

/** Polls until the key is refused; no request started later than TAKES_EFFECT_MS may succeed. */
async function refusedWithin(stack, key, since) {
  for (;;) {
    const started = Date.now();
    if (!(await accepted(stack, key))) return started - since;
    assert.ok(started - since <= TAKES_EFFECT_MS, `key still accepted ${started - since} ms after the CLI changed it`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('refusals through corral with ollama-js', () => {
  let stack;
  let user;
  let admin;

  before(async () => {
    stack = await Stack.start({ config: CONFIG });
    user = stack.client(await stack.newKey('node-user'));
    admin = stack.client(await stack.newKey('node-admin', 'admin'));
  });

  after(async () => {
    if (!stack) return;
    await stack.stop().catch(() => {});
    stack.cleanup();
  });

  test('pull with a user key is refused with 403', T, async () => {
    const e = await responseError(() => user.pull({ model: 'attacker.example:8443/ns/leak_model_0' }));
    assert.equal(e.status_code, 403);
    assert.ok(e.error && !e.error.includes('crl_'), e.error);
    const streamed = await responseError(() => user.pull({ model: 'llama3.2', stream: true }));
    assert.equal(streamed.status_code, 403);
  });

  test('other admin and ops calls are refused for a user key', T, async () => {
    for (const [name, call] of [
      ['delete', () => user.delete({ model: 'llama3.2' })],
      ['copy', () => user.copy({ source: 'llama3.2', destination: 'x' })],
      ['push', () => user.push({ model: 'me/llama3.2' })],
      ['create', () => user.create({ model: 'evil', from: 'llama3.2' })],
      ['ps', () => user.ps()],
    ]) {
      const e = await responseError(call);
      assert.equal(e.status_code, 403, name);
    }
  });

  test('pull with an admin key goes through', T, async () => {
    assert.equal((await admin.pull({ model: 'llama3.2' })).status, 'success');
    const statuses = [];
    for await (const p of await admin.pull({ model: 'llama3.2', stream: true })) statuses.push(p.status);
    assert.equal(statuses.at(-1), 'success');
  });

  test('a cloud model is refused for a user key', T, async () => {
    const e = await responseError(() => user.chat({ model: 'gpt-oss:120b-cloud', messages: MESSAGES }));
    assert.equal(e.status_code, 403);
  });

  test('a model allow-list limits chat and listing', T, async () => {
    const c = stack.client(await stack.newKey('node-llama-only', 'llama-only'));
    assert.equal((await c.chat({ model: 'llama3.2', messages: MESSAGES })).message.content, 'Hello from the mock');
    const e = await responseError(() => c.chat({ model: 'secret-model', messages: MESSAGES, stream: true }));
    assert.equal(e.status_code, 403);
    assert.deepEqual((await c.list()).models.map((m) => m.model), ['llama3.2:latest']);
  });

  test('no key, or an unknown key, gets 401', T, async () => {
    const none = await responseError(() => stack.client(null).chat({ model: 'llama3.2', messages: MESSAGES }));
    assert.equal(none.status_code, 401);
    const unknown = await responseError(() =>
      stack.client(`crl_AAAAAAAAAAAA_${'B'.repeat(43)}`).generate({ model: 'llama3.2', prompt: 'hi' }),
    );
    assert.equal(unknown.status_code, 401);
  });

  test('a key revoked while the gate runs is refused within a second', T, async () => {
    const key = stack.createKey('node-revoke');
    await pollUntil(() => accepted(stack, key), TAKES_EFFECT_MS, 'new key accepted');
    stack.cli('keys', 'revoke', 'node-revoke');
    await refusedWithin(stack, key, Date.now());
    const e = await responseError(() => stack.client(key).chat({ model: 'llama3.2', messages: MESSAGES, stream: true }));
    assert.equal(e.status_code, 401);
  });

  test('a rotated key: old secret refused, new one accepted', T, async () => {
    const old = stack.createKey('node-rotate');
    await pollUntil(() => accepted(stack, old), TAKES_EFFECT_MS, 'new key accepted');
    const fresh = stack.cli('keys', 'rotate', 'node-rotate').trim();
    const t = Date.now();
    await refusedWithin(stack, old, t);
    await pollUntil(() => accepted(stack, fresh), TAKES_EFFECT_MS, 'rotated key accepted');
  });

  test('a key past its request rate gets 429 with the reason', T, async () => {
    // `newKey` spends one of the two a minute when it checks the key works.
    const c = stack.client(await stack.newKey('node-limited', 'limited'));
    const r = await c.chat({ model: 'llama3.2', messages: MESSAGES, stream: false });
    assert.ok(r.message.content);
    const e = await responseError(() => c.chat({ model: 'llama3.2', messages: MESSAGES, stream: false }));
    assert.equal(e.status_code, 429);
    assert.match(e.error, /2 requests per minute; retry in \d+ s/);
    const streamed = await responseError(() => c.chat({ model: 'llama3.2', messages: MESSAGES, stream: true }));
    assert.equal(streamed.status_code, 429);
    // Another key of the same policy has its own allowance.
    const other = stack.client(await stack.newKey('node-limited-2', 'limited'));
    assert.ok((await other.chat({ model: 'llama3.2', messages: MESSAGES, stream: false })).message.content);
  });

  test('after SIGTERM the audit log is complete and verifies', T, async () => {
    const status = await stack.stop();
    assert.equal(status.code, 0, `corral serve exit on SIGTERM\n${stack.gate.stderr()}`);
    const out = execFileSync(stack.corralBin, ['audit', 'verify', stack.auditLog], { encoding: 'utf8' });
    assert.ok(out.length > 0);
    const records = (await import('node:fs')).readFileSync(stack.auditLog, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    const get = (r, path) => (path in r ? r[path] : path.split('.').reduce((o, k) => (o == null ? undefined : o[k]), r));
    const pulls = records.filter((r) => get(r, 'url.path') === '/api/pull');
    assert.deepEqual(
      pulls.map((r) => get(r, 'http.response.status_code')),
      [403, 403, 200, 200],
      'two refused user pulls, two admin pulls',
    );
  });
});

// Processes under test: the real `corral` binary in front of `mock-ollama`, both on 127.0.0.1
// port 0 (the port is read from each one's first stdout line). Every wait has a deadline.

import { spawn, execFileSync } from 'node:child_process';
import { accessSync, constants, mkdtempSync, openSync, closeSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

import { Ollama } from 'ollama';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const STARTUP_MS = 20_000;
const SHUTDOWN_MS = 15_000;
export const KEY_RE = /^crl_[0-9A-Za-z]{12}_[0-9A-Za-z]{43}$/;
// The brief: a key created, revoked or rotated while `serve` runs takes effect within 1 second.
export const TAKES_EFFECT_MS = 1000;

// Client libraries read these; the developer's shell must not change what the tests send.
for (const v of ['OLLAMA_API_KEY', 'OLLAMA_HOST', 'HTTP_PROXY', 'HTTPS_PROXY', 'http_proxy', 'https_proxy']) {
  delete process.env[v];
}

function binary(envVar, name) {
  const target = process.env.CARGO_TARGET_DIR || join(REPO, 'target');
  const path = process.env[envVar] || join(target, 'debug', name);
  try {
    accessSync(path, constants.X_OK);
  } catch {
    throw new Error(`${path} is missing: build it first (cargo build --workspace --bins) or set ${envVar}`);
  }
  return path;
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A child process; stdout is read line by line (so its pipe never fills), stderr goes to a file. */
class Proc {
  constructor(argv, logPath) {
    this.argv = argv;
    this.logPath = logPath;
    const fd = openSync(logPath, 'w');
    this.child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', fd] });
    closeSync(fd);
    this.exited = new Promise((res) => this.child.on('exit', (code, signal) => res({ code, signal })));
    this.lines = [];
    this.waiters = [];
    createInterface({ input: this.child.stdout }).on('line', (l) => {
      this.lines.push(l);
      this.waiters.splice(0).forEach((w) => w());
    });
  }

  stderr() {
    try {
      return readFileSync(this.logPath, 'utf8').slice(-4000);
    } catch {
      return '';
    }
  }

  async firstLine() {
    const deadline = Date.now() + STARTUP_MS;
    let exited = false;
    this.exited.then(() => {
      exited = true;
    });
    while (this.lines.length === 0) {
      if (exited) throw new Error(`${this.argv[0]} exited before announcing its port\n${this.stderr()}`);
      if (Date.now() > deadline) {
        this.child.kill('SIGKILL');
        throw new Error(`${this.argv[0]} printed nothing within ${STARTUP_MS} ms\n${this.stderr()}`);
      }
      await Promise.race([new Promise((r) => this.waiters.push(r)), sleep(100)]);
    }
    return this.lines[0];
  }

  /** SIGTERM and wait with a deadline; SIGKILL past it. Resolves to { code, signal }. */
  async stop() {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGTERM');
    let timer;
    const timeout = new Promise((r) => {
      timer = setTimeout(() => r(null), SHUTDOWN_MS);
    });
    const result = await Promise.race([this.exited, timeout]);
    clearTimeout(timer);
    if (result === null) {
      this.child.kill('SIGKILL');
      throw new Error(`${this.argv[0]} ignored SIGTERM for ${SHUTDOWN_MS} ms\n${this.stderr()}`);
    }
    return result;
  }
}

function port(line, re) {
  const m = re.exec(line.trim());
  if (!m) throw new Error(`unexpected first stdout line ${JSON.stringify(line)} (wanted ${re})`);
  return Number(m[1]);
}

/** A mock upstream and a gate in front of it, with their own data dir and optional config. */
export class Stack {
  static async start({ config } = {}) {
    const s = new Stack();
    s.dir = mkdtempSync(join(tmpdir(), 'corral-e2e-node-'));
    s.dataDir = join(s.dir, 'data');
    s.auditLog = join(s.dir, 'audit.ndjson');
    s.corralBin = binary('CORRAL_BIN', 'corral');
    if (config) {
      s.configPath = join(s.dir, 'corral.toml');
      writeFileSync(s.configPath, config);
    }
    // --report-ends: the mock prints a line when each response is over, so a test can see
    // when the upstream noticed a cancelled stream.
    s.mock = new Proc(
      [binary('MOCK_OLLAMA_BIN', 'mock-ollama'), '--listen', '127.0.0.1:0', '--report-ends'],
      join(s.dir, 'mock.stderr'),
    );
    try {
      const mockPort = port(await s.mock.firstLine(), /^listening on (?:http:\/\/)?127\.0\.0\.1:(\d+)$/);
      s.gate = new Proc(
        [...s.baseArgv(), 'serve', '--listen', '127.0.0.1:0', '--upstream', `http://127.0.0.1:${mockPort}`, '--audit-log', s.auditLog],
        join(s.dir, 'corral.stderr'),
      );
      s.url = `http://127.0.0.1:${port(await s.gate.firstLine(), /^listening on http:\/\/127\.0\.0\.1:(\d+)$/)}`;
    } catch (e) {
      await s.stop().catch(() => {});
      throw e;
    }
    return s;
  }

  baseArgv() {
    const argv = [this.corralBin, '--data-dir', this.dataDir];
    if (this.configPath) argv.push('--config', this.configPath);
    return argv;
  }

  /** Runs the corral CLI; returns stdout. Throws with stderr on a non-zero exit. */
  cli(...args) {
    const env = { ...process.env };
    delete env.CORRAL_DATA_DIR;
    delete env.CORRAL_CONFIG;
    const argv = this.baseArgv();
    return execFileSync(argv[0], [...argv.slice(1), ...args], {
      env,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 30_000,
    });
  }

  createKey(name, policy = 'user') {
    const secret = this.cli('keys', 'create', name, '--policy', policy).trim();
    if (!KEY_RE.test(secret)) throw new Error(`keys create printed ${JSON.stringify(secret)}, not a key alone`);
    return secret;
  }

  /** Creates a key with the CLI and waits (bounded: the gate promises 1 s) until the running
   *  gate accepts it. */
  async newKey(name, policy = 'user') {
    const key = this.createKey(name, policy);
    await pollUntil(
      async () => {
        const r = await fetch(`${this.url}/api/version`, { headers: { Authorization: `Bearer ${key}` } });
        await r.arrayBuffer();
        return r.status !== 401;
      },
      TAKES_EFFECT_MS,
      `key ${name} accepted by the running gate`,
    );
    return key;
  }

  /** Responses the mock saw end, in order: { end, method, path, unix_ms }. */
  upstreamEnds() {
    return this.mock.lines.slice(1).map((l) => JSON.parse(l));
  }

  client(key) {
    return new Ollama({ host: this.url, headers: key ? { Authorization: `Bearer ${key}` } : {} });
  }

  /** Stops the gate gracefully (SIGTERM) and the mock; returns the gate's exit status. */
  async stop() {
    let gate = null;
    try {
      if (this.gate) gate = await this.gate.stop();
    } finally {
      if (this.mock) await this.mock.stop().catch(() => this.mock.child.kill('SIGKILL'));
    }
    return gate;
  }

  cleanup() {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Calls `fn`; returns the ollama ResponseError it throws (or fails if it does not throw one). */
export async function responseError(fn) {
  try {
    const r = await fn();
    if (r && typeof r[Symbol.asyncIterator] === 'function') {
      for await (const _ of r) {
        // drain: a streamed request may only fail once read
      }
    }
  } catch (e) {
    if (e && e.name === 'ResponseError') return e;
    throw e;
  }
  throw new Error('expected an ollama ResponseError, got success');
}

/** Polls `check` every 50 ms until it returns true; fails past `ms`. */
export async function pollUntil(check, ms, what) {
  const deadline = Date.now() + ms;
  for (;;) {
    const started = Date.now();
    if (await check()) return started;
    if (started > deadline) throw new Error(`${what} not reached within ${ms} ms`);
    await sleep(50);
  }
}

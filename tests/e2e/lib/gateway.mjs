// Helpers to run the real `prism` binary in the end-to-end tests.
//
//   PRISM_BIN        absolute path of the binary (default: <repo>/build/prism)
//   PRISM_SANITIZED  "1" under AddressSanitizer: every time bound is multiplied by 3
//   PRISM_WRAPPER    a command that prefixes `prism serve` (split on spaces), e.g.
//                    "valgrind --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite";
//                    when it runs valgrind every time bound is multiplied by 10

import { spawn } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import fs from 'node:fs';
import os from 'node:os';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const PRISM_BIN = process.env.PRISM_BIN
  ? path.resolve(process.env.PRISM_BIN)
  : path.join(REPO_ROOT, 'build', 'prism');
export const REPO_CONFIG = path.join(REPO_ROOT, 'config.yml');
export const SANITIZED = process.env.PRISM_SANITIZED === '1';
/** The words of PRISM_WRAPPER (empty: prism runs directly). */
export const WRAPPER = (process.env.PRISM_WRAPPER ?? '').trim().split(/\s+/).filter(Boolean);
export const UNDER_VALGRIND = WRAPPER.some((w) => /valgrind/.test(path.basename(w)));
/** How much slower than a plain build the gateway runs: every time bound is multiplied by it. */
export const TIME_FACTOR = UNDER_VALGRIND ? 10 : SANITIZED ? 3 : 1;

export const UPSTREAM_KEY = 'sk-upstream-secret-123';

/** A time bound, stretched under sanitizers. */
export function T(ms) {
  return ms * TIME_FACTOR;
}

export function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

/** A free TCP port on 127.0.0.1 (listen on 0, read it, close). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

// Variables never passed through from the caller's environment: the gateway only
// sees what a test sets, so a developer's real OPENAI_API_KEY can never leak in.
const DROPPED_ENV = /^(OPENAI_|ANTHROPIC_|PRISM_|CLAUDE_)|^(https?_proxy|all_proxy|no_proxy)$/i;

/** The environment for a prism process: a clean base plus `extra`. */
export function prismEnv(extra = {}) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!DROPPED_ENV.test(k)) env[k] = v;
  }
  env.NO_PROXY = '127.0.0.1,localhost';
  env.no_proxy = '127.0.0.1,localhost';
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined) delete env[k];
    else env[k] = String(v);
  }
  return env;
}

/** The usual env for serving against a fake upstream. */
export function gatewayEnv(fake, extra = {}) {
  return {
    OPENAI_BASE_URL: fake ? fake.baseURL : undefined,
    OPENAI_API_KEY: UPSTREAM_KEY,
    PRISM_API_KEYS: '',
    ...extra,
  };
}

/**
 * Runs a prism sub-command to completion (install, check, list, ...).
 * Resolves {code, signal, stdout, stderr}; never rejects on a non-zero exit.
 */
export function runPrism(args, { cwd = REPO_ROOT, env = {}, input = null, timeout = T(20000) } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(PRISM_BIN, args, { cwd, env: prismEnv(env), stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
    child.stdin.on('error', () => {}); // the process may exit without reading
    if (input !== null) child.stdin.end(input);
    else child.stdin.end();
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`prism ${args.join(' ')} did not finish within ${timeout} ms\nstdout:\n${stdout}\nstderr:\n${stderr}`));
    }, timeout);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** A readable summary of a finished prism command, for assertion messages. */
export function describeRun(r) {
  return `exit=${r.code} signal=${r.signal}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`;
}

/**
 * Starts `prism serve` and waits until GET /health answers 200 {"status":"ok"}.
 * Returns {port, origin, baseURL, url(p), stderr(), stdout(), logs(), stop(), exited}.
 */
export async function startGateway({
  env = {},
  cwd = REPO_ROOT,
  config = REPO_CONFIG,
  readyTimeout = T(10000),
  extraArgs = [],
  listenHost = '127.0.0.1', // what --listen binds; the readiness check always uses 127.0.0.1
  launcher = [], // command words that exec the rest (e.g. prlimit), before PRISM_WRAPPER's
} = {}) {
  if (!fs.existsSync(PRISM_BIN)) {
    throw new Error(`PRISM_BIN not found: ${PRISM_BIN} (build with: cmake -S . -B build && cmake --build build)`);
  }
  const port = await freePort();
  const args = ['serve', '--config', config, '--listen', `${listenHost}:${port}`, ...extraArgs];
  // Under PRISM_WRAPPER (valgrind, ...) the wrapper execs prism in the same process, so child.pid is
  // still the gateway's pid (what signals and /proc/<pid> refer to).
  const [command, ...commandArgs] = [...launcher, ...WRAPPER, PRISM_BIN, ...args];
  const child = spawn(command, commandArgs, { cwd, env: prismEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
  let exitInfo = null;
  const exited = new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      exitInfo = { code, signal };
    });
    // 'close' waits for stdio to be drained, so the captured logs are complete.
    child.on('close', (code, signal) => resolve(exitInfo ?? { code, signal }));
    child.on('error', (err) => {
      exitInfo = { code: null, signal: null, error: err };
      resolve(exitInfo);
    });
  });
  async function doStop(timeout) {
    // 'close' also waits for stdio, so the captured logs are complete afterwards.
    if (exitInfo) return { ...(await exited), ms: 0, alreadyExited: true };
    const t0 = Date.now();
    child.kill('SIGTERM');
    let timer;
    const res = await Promise.race([exited, new Promise((r) => (timer = setTimeout(() => r(null), timeout)))]);
    clearTimeout(timer);
    if (res === null) {
      child.kill('SIGKILL');
      await exited;
      return { code: null, signal: 'SIGKILL', ms: Date.now() - t0, timedOut: true };
    }
    return { ...res, ms: Date.now() - t0 };
  }
  const origin = `http://127.0.0.1:${port}`;
  const gw = {
    port,
    pid: child.pid,
    origin,
    baseURL: `${origin}/v1`,
    child,
    url: (p) => origin + p,
    stdout: () => stdout,
    stderr: () => stderr,
    logs: () => stdout + stderr,
    exited,
    stopping: null,
    /** SIGTERM, then wait (bounded) for the exit; resolves {code, signal, ms}. Idempotent. */
    stop(timeout = T(10000)) {
      if (!gw.stopping) gw.stopping = doStop(timeout);
      return gw.stopping;
    },
    /** For after-hooks: make sure nothing is left running. */
    async kill() {
      if (!exitInfo) {
        child.kill('SIGKILL');
        await exited;
      }
    },
  };

  const deadline = Date.now() + readyTimeout;
  let lastErr = null;
  while (Date.now() < deadline) {
    if (exitInfo) {
      await exited;
      throw new Error(
        `prism serve exited before it was ready (code=${exitInfo.code} signal=${exitInfo.signal})\n--- stderr ---\n${stderr}\n--- stdout ---\n${stdout}`,
      );
    }
    try {
      const r = await fetch(`${origin}/health`, { signal: AbortSignal.timeout(1000) });
      const text = await r.text();
      if (r.status === 200) {
        let body = null;
        try {
          body = JSON.parse(text);
        } catch {
          /* not yet */
        }
        if (body && body.status === 'ok') return gw;
        lastErr = new Error(`/health answered 200 with ${text}`);
      } else {
        lastErr = new Error(`/health answered ${r.status}: ${text}`);
      }
    } catch (e) {
      lastErr = e;
    }
    await sleep(50);
  }
  await gw.kill();
  throw new Error(
    `prism serve not ready within ${readyTimeout} ms (last: ${lastErr?.message})\n--- stderr ---\n${stderr}\n--- stdout ---\n${stdout}`,
  );
}

/** Stops the gateway and asserts a graceful shutdown: exit code 0 within 10 s (x TIME_FACTOR). */
export async function stopAndAssertClean(gw) {
  const r = await gw.stop(T(10000));
  assert.ok(
    !r.alreadyExited,
    `prism had already exited before SIGTERM (code=${r.code} signal=${r.signal})\n--- stderr (tail) ---\n${gw.stderr().slice(-4000)}`,
  );
  assert.ok(!r.timedOut, `prism did not exit within ${T(10000)} ms of SIGTERM\n--- stderr ---\n${gw.stderr()}`);
  assert.equal(
    r.code,
    0,
    `prism should exit 0 on SIGTERM, got code=${r.code} signal=${r.signal}\n--- stderr (tail) ---\n${gw.stderr().slice(-4000)}`,
  );
  return r;
}

/** Asserts that none of `secrets` appears in the gateway's captured output. */
export function assertNoSecretsInLogs(gw, secrets) {
  const logs = gw.logs();
  for (const s of secrets) {
    assert.ok(!logs.includes(s), `the gateway's logs contain the secret ${JSON.stringify(s.slice(0, 6) + '...')}`);
  }
}

/** A scratch folder under the OS temp dir. */
export async function scratchDir(prefix = 'prism-e2e-') {
  return fs.promises.mkdtemp(path.join(os.tmpdir(), prefix));
}

/** Parses an error response and checks the OpenAI error envelope; returns body.error. */
export async function expectErrorResponse(res, status, { code, param, type } = {}, what = '') {
  const text = await res.text();
  const ctx = `${what ? what + ': ' : ''}${res.status} ${text.slice(0, 500)}`;
  assert.equal(res.status, status, `status (${ctx})`);
  const ct = res.headers.get('content-type') || '';
  assert.match(ct, /^application\/json\b/i, `content-type of an error must be application/json (${ctx})`);
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    assert.fail(`error body is not JSON (${ctx})`);
  }
  assertErrorEnvelope(body, ctx);
  if (code !== undefined) assert.equal(body.error.code, code, `error.code (${ctx})`);
  if (param !== undefined) assert.equal(body.error.param, param, `error.param (${ctx})`);
  if (type !== undefined) assert.equal(body.error.type, type, `error.type (${ctx})`);
  return { error: body.error, text, headers: res.headers };
}

export function assertErrorEnvelope(body, ctx = '') {
  assert.ok(body && typeof body === 'object' && body.error && typeof body.error === 'object', `no "error" object (${ctx})`);
  for (const k of ['message', 'type', 'param', 'code']) {
    assert.ok(Object.hasOwn(body.error, k), `error.${k} must be present (${ctx})`);
  }
  assert.equal(typeof body.error.message, 'string', `error.message is a string (${ctx})`);
  assert.ok(body.error.message.length > 0, `error.message is not empty (${ctx})`);
  assert.equal(typeof body.error.type, 'string', `error.type is a string (${ctx})`);
  assert.ok(body.error.param === null || typeof body.error.param === 'string', `error.param string|null (${ctx})`);
  assert.ok(body.error.code === null || typeof body.error.code === 'string', `error.code string|null (${ctx})`);
}

/** Runs `fn` (a promise-returning function given an AbortSignal) bounded in time. */
export async function withDeadline(ms, what, fn) {
  const ac = new AbortController();
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => {
      ac.abort();
      reject(new Error(`${what}: no result within ${ms} ms`));
    }, ms);
  });
  try {
    return await Promise.race([fn(ac.signal), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** An official OpenAI SDK client pointed at the gateway (no retries, bounded). */
export async function sdkClient(gw, apiKey = 'sk-client-side-not-a-gateway-key', opts = {}) {
  const { default: OpenAI } = await import('openai');
  return new OpenAI({
    apiKey,
    baseURL: gw.baseURL,
    maxRetries: 0,
    timeout: T(10000),
    ...opts,
  });
}

/** A minimal, valid chat request body. */
export function chatBody(model = 'gpt-4o-mini', extra = {}) {
  return {
    model,
    messages: [
      { role: 'system', content: 'You are a test.' },
      { role: 'user', content: 'Say hello.' },
    ],
    ...extra,
  };
}

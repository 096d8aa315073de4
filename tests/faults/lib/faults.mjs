// Shared helpers of the fault-injection suite (tests/faults): scratch configs, a gateway in front of
// both fakes, bounded raw requests, SSE parsing, error-envelope and error-frame checks, raw sockets.
//
// Every gateway here requires a gateway key (GATEWAY_KEY), so that "no secret in the logs" covers the
// gateway key as well as the upstream keys.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { startFakeOpenAI } from '../../e2e/lib/fake-openai.mjs';
import { startFakeAnthropic, ANTHROPIC_KEY } from '../../e2e/lib/fake-anthropic.mjs';
import {
  T,
  UPSTREAM_KEY,
  startGateway,
  stopAndAssertClean,
  assertNoSecretsInLogs,
  assertErrorEnvelope,
  sdkClient,
  scratchDir,
} from '../../e2e/lib/gateway.mjs';

export { ANTHROPIC_KEY, UPSTREAM_KEY };
export const GATEWAY_KEY = 'sk-prism-faults-gateway-key-5f1c9a';
export const OPENAI_MODEL = 'gpt-4o-mini';
export const CLAUDE_MODEL = 'claude-sonnet-4-5';
export const SECRETS = [UPSTREAM_KEY, ANTHROPIC_KEY, GATEWAY_KEY];

// ---- configuration ------------------------------------------------------------------------------------------------

/** The repository's config.yml as an object (the scratch configs start from it). */
export function baseConfig() {
  return {
    server: {
      listen: '127.0.0.1:8080',
      workers: 1,
      api_prefix: '/v1',
      api_keys: '${PRISM_API_KEYS:-}',
      limits: { max_body_bytes: 10485760, max_header_bytes: 8192 },
      timeouts: { read_ms: 30000, upstream_connect_ms: 10000, upstream_ms: 600000, shutdown_ms: 10000 },
    },
    plugins: { enabled: ['ai_gateway'] },
    routes: { '/chat/completions': { chain: ['ai_gateway:chat'] } },
  };
}

function isPlainObject(v) {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

export function deepMerge(a, b) {
  const out = { ...a };
  for (const [k, v] of Object.entries(b ?? {})) {
    out[k] = isPlainObject(v) && isPlainObject(a?.[k]) ? deepMerge(a[k], v) : v;
  }
  return out;
}

/**
 * Writes a scratch config (the repository's, deep-merged with `overrides`) into `dir` and returns its
 * path. JSON is YAML, and keeps "429" a string and 1000 a number.
 */
export async function writeConfig(dir, overrides = {}, name = 'config.yml') {
  const file = path.join(dir, name);
  const cfg = deepMerge(baseConfig(), overrides);
  await fs.promises.writeFile(file, '# scratch config of tests/faults\n' + JSON.stringify(cfg, null, 2) + '\n');
  return file;
}

// ---- a gateway in front of both fakes -----------------------------------------------------------------------------

export function faultEnv({ openai, anthropic, extra = {} } = {}) {
  return {
    OPENAI_BASE_URL: openai ? openai.baseURL : undefined,
    OPENAI_API_KEY: UPSTREAM_KEY,
    ANTHROPIC_BASE_URL: anthropic ? anthropic.baseURL : undefined,
    ANTHROPIC_API_KEY: ANTHROPIC_KEY,
    PRISM_API_KEYS: GATEWAY_KEY,
    ...extra,
  };
}

/**
 * Starts the two fakes (unless given) and a gateway on a scratch config with `overrides`.
 * Returns {openai, anthropic, gw, client, dir, close()}.
 */
export async function startStack({ overrides = {}, openai = null, anthropic = null, env = {}, prefix = 'prism-faults-' } = {}) {
  const dir = await scratchDir(prefix);
  const ownOpenAI = !openai;
  const ownAnthropic = !anthropic;
  const s = { dir, gw: null, client: null, openai, anthropic };
  try {
    if (!s.openai) s.openai = await startFakeOpenAI();
    if (!s.anthropic) s.anthropic = await startFakeAnthropic({ apiKey: ANTHROPIC_KEY });
    const config = await writeConfig(dir, overrides);
    s.config = config;
    s.gw = await startGateway({ env: faultEnv({ openai: s.openai, anthropic: s.anthropic, extra: env }), config });
    s.client = await sdkClient(s.gw, GATEWAY_KEY);
  } catch (e) {
    await closeStack(s, { ownOpenAI, ownAnthropic });
    throw e;
  }
  s.close = () => closeStack(s, { ownOpenAI, ownAnthropic });
  return s;
}

async function closeStack(s, { ownOpenAI = true, ownAnthropic = true } = {}) {
  if (s.gw) await s.gw.kill();
  if (ownOpenAI && s.openai) await s.openai.close();
  if (ownAnthropic && s.anthropic) await s.anthropic.close();
  if (s.dir) await fs.promises.rm(s.dir, { recursive: true, force: true });
}

/** SIGTERM: exit 0 in time, and no secret anywhere in the logs. */
export async function assertCleanExit(gw, secrets = SECRETS) {
  await stopAndAssertClean(gw);
  assertNoSecretsInLogs(gw, secrets);
}

// ---- requests -----------------------------------------------------------------------------------------------------

export function chat(model = OPENAI_MODEL, extra = {}) {
  return { model, messages: [{ role: 'user', content: 'Say hello.' }], ...extra };
}

export function authHeaders(extra = {}) {
  return { authorization: `Bearer ${GATEWAY_KEY}`, 'content-type': 'application/json', ...extra };
}

/** POST /v1/chat/completions with fetch, bounded; resolves {status, headers, text, json, ms}. */
export async function post(gw, body, { ms = T(10000), headers = {}, path: p = '/v1/chat/completions' } = {}) {
  const t0 = Date.now();
  const res = await fetch(gw.url(p), {
    method: 'POST',
    headers: authHeaders(headers),
    body: typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body),
    signal: AbortSignal.timeout(ms),
  });
  const text = await res.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {
    /* not JSON */
  }
  return { status: res.status, headers: res.headers, text, json, ms: Date.now() - t0 };
}

/** Asserts an OpenAI error response with exactly this status, type and code. */
export function assertError(r, status, { type, code, param, message } = {}, what = '') {
  const ctx = `${what ? what + ': ' : ''}${r.status} ${r.text.slice(0, 600)}`;
  assert.equal(r.status, status, `status (${ctx})`);
  assert.match(r.headers.get('content-type') || '', /^application\/json\b/i, `content-type (${ctx})`);
  assert.ok(r.json, `the body is JSON (${ctx})`);
  assertErrorEnvelope(r.json, ctx);
  if (type !== undefined) assert.equal(r.json.error.type, type, `error.type (${ctx})`);
  if (code !== undefined) assert.equal(r.json.error.code, code, `error.code (${ctx})`);
  if (param !== undefined) assert.equal(r.json.error.param, param, `error.param (${ctx})`);
  if (message !== undefined) assert.match(r.json.error.message, message, `error.message (${ctx})`);
  return r.json.error;
}

/** The data: payloads of an SSE text, in order. */
export function sseData(text) {
  return text
    .split(/\r?\n\r?\n/)
    .filter((e) => e.trim() !== '')
    .flatMap((e) => e.split(/\r?\n/))
    .filter((l) => l.startsWith('data:'))
    .map((l) => l.slice(5).trim());
}

/**
 * A streamed POST read to its end with fetch; never hangs: rejects when the stream has not ended
 * within `ms`. Resolves {status, headers, text, data, ms}.
 */
export async function postStream(gw, body, { ms = T(10000), headers = {} } = {}) {
  const t0 = Date.now();
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), ms);
  const parts = [];
  const text = () => Buffer.concat(parts).toString('utf8');
  let res;
  const result = (extra = {}) => {
    const bytes = Buffer.concat(parts);
    const t = bytes.toString('utf8');
    return { status: res.status, headers: res.headers, bytes, text: t, data: sseData(t), ms: Date.now() - t0, ...extra };
  };
  try {
    res = await fetch(gw.url('/v1/chat/completions'), {
      method: 'POST',
      headers: authHeaders(headers),
      body: JSON.stringify({ ...body, stream: true }),
      signal: ac.signal,
    });
    try {
      for await (const piece of res.body) parts.push(Buffer.from(piece));
    } catch (e) {
      if (ac.signal.aborted) throw new Error(`the stream did not end within ${ms} ms; got so far:\n${text().slice(-2000)}`);
      // The connection broke: the stream ended (what the client sees is in `text`).
      return result({ broken: e });
    }
  } catch (e) {
    if (ac.signal.aborted) throw new Error(`the stream did not end within ${ms} ms; got so far:\n${text().slice(-2000)}`);
    throw e;
  } finally {
    clearTimeout(timer);
  }
  return result();
}

/** Asserts that a streamed answer ended with an error frame of this code and no [DONE]. */
export function assertErrorFrame(s, { code, type = 'api_error' } = {}, what = '') {
  const ctx = `${what ? what + ': ' : ''}stream:\n${s.text.slice(-1500)}`;
  assert.equal(s.status, 200, `the stream had started (status 200) (${ctx})`);
  assert.ok(!s.data.includes('[DONE]'), `no [DONE] after a failure (${ctx})`);
  assert.ok(s.data.length > 0, `at least one data frame (${ctx})`);
  const last = s.data.at(-1);
  let j;
  try {
    j = JSON.parse(last);
  } catch {
    assert.fail(`the last data frame is not JSON: ${last.slice(0, 200)} (${ctx})`);
  }
  assertErrorEnvelope(j, ctx);
  if (code !== undefined) assert.equal(j.error.code, code, `error frame code (${ctx})`);
  if (type !== undefined) assert.equal(j.error.type, type, `error frame type (${ctx})`);
  assert.ok(!s.broken, `the gateway ended the response cleanly after the error frame (${s.broken?.message}) (${ctx})`);
  return j.error;
}

/** Iterates an SDK stream; resolves {chunks, error}: the APIError it threw (or null). Bounded. */
export async function sdkStream(client, body, ms = T(10000)) {
  const chunks = [];
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), ms);
  try {
    const stream = await client.chat.completions.create({ ...body, stream: true }, { signal: ac.signal });
    for await (const c of stream) chunks.push(c);
    return { chunks, error: null };
  } catch (e) {
    if (ac.signal.aborted) throw new Error(`the SDK stream did not end within ${ms} ms (${chunks.length} chunks)`);
    return { chunks, error: e };
  } finally {
    clearTimeout(timer);
  }
}

/** A normal request on every path still succeeds (non-streamed and streamed, OpenAI and Claude). */
export async function assertStillServes(stack, what) {
  const { client, openai, anthropic } = stack;
  const saved = [openai.pending(), anthropic.pending()];
  assert.deepEqual(saved, [0, 0], `after ${what}: no behaviour is left queued on the fakes`);
  const r = await client.chat.completions.create(chat(OPENAI_MODEL));
  assert.equal(r.object, 'chat.completion', `after ${what}: an OpenAI request succeeds`);
  assert.deepEqual(r, openai.responses.at(-1).body, `after ${what}: the OpenAI answer is relayed as is`);
  const s = await sdkStream(client, chat(OPENAI_MODEL));
  assert.equal(s.error, null, `after ${what}: an OpenAI stream succeeds (${s.error?.message})`);
  assert.deepEqual(s.chunks, openai.responses.at(-1).chunks, `after ${what}: the OpenAI stream is relayed as is`);
  const c = await client.chat.completions.create(chat(CLAUDE_MODEL));
  assert.equal(c.object, 'chat.completion', `after ${what}: a Claude request succeeds`);
  assert.equal(c.choices[0].message.content, 'Hello from fake Claude.');
  const cs = await sdkStream(client, chat(CLAUDE_MODEL));
  assert.equal(cs.error, null, `after ${what}: a Claude stream succeeds (${cs.error?.message})`);
  assert.equal(cs.chunks.map((x) => x.choices[0]?.delta?.content ?? '').join(''), 'Hello from fake Claude.');
}

// ---- the process --------------------------------------------------------------------------------------------------

/** The gateway's resident set size in bytes (VmRSS), or null when /proc is not readable. */
export function rssBytes(pid) {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

export function assertAlive(gw, what) {
  assert.equal(gw.child.exitCode, null, `${what}: the gateway is still running\n${gw.stderr().slice(-3000)}`);
  assert.equal(gw.child.signalCode, null, `${what}: the gateway was not killed by a signal\n${gw.stderr().slice(-3000)}`);
}

// ---- raw sockets --------------------------------------------------------------------------------------------------

/**
 * Opens a connection, writes `data` (a Buffer/string, or an array written `gapMs` apart), and collects
 * what comes back until the server closes or `ms` passes. Resolves {data: Buffer, closed, closedAfter,
 * error, timedOut}.
 */
export function rawExchange(port, data, { ms = T(5000), gapMs = 0, endAfterWrite = false } = {}) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    const parts = [];
    const out = { closed: false, error: null, timedOut: false, writesDone: 0 };
    const t0 = Date.now();
    let stopWriting = false;
    const timer = setTimeout(() => {
      out.timedOut = true;
      stopWriting = true;
      s.destroy();
    }, ms);
    s.on('connect', async () => {
      const pieces = Array.isArray(data) ? data : [data];
      for (const p of pieces) {
        if (stopWriting || s.destroyed) break;
        s.write(p);
        out.writesDone++;
        if (gapMs) await new Promise((r) => setTimeout(r, gapMs));
      }
      if (endAfterWrite && !s.destroyed) s.end();
    });
    s.on('data', (d) => parts.push(d));
    s.on('error', (e) => (out.error = e.code || e.message));
    s.on('close', () => {
      clearTimeout(timer);
      stopWriting = true;
      out.closed = !out.timedOut;
      out.closedAfter = Date.now() - t0;
      out.data = Buffer.concat(parts);
      resolve(out);
    });
  });
}

/**
 * Parses consecutive HTTP/1.1 responses out of `buf` (Content-Length or chunked bodies).
 * Returns [{status, headers, body}], stopping at the first incomplete one.
 */
export function parseResponses(buf) {
  const out = [];
  let at = 0;
  while (at < buf.length) {
    const headEnd = buf.indexOf('\r\n\r\n', at);
    if (headEnd < 0) break;
    const head = buf.subarray(at, headEnd).toString('latin1').split('\r\n');
    const m = /^HTTP\/1\.[01] (\d{3})/.exec(head[0]);
    if (!m) break;
    const headers = {};
    for (const line of head.slice(1)) {
      const i = line.indexOf(':');
      if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
    }
    let p = headEnd + 4;
    let body;
    if (/chunked/i.test(headers['transfer-encoding'] ?? '')) {
      const parts = [];
      for (;;) {
        const le = buf.indexOf('\r\n', p);
        if (le < 0) return out;
        const size = parseInt(buf.subarray(p, le).toString('latin1'), 16);
        p = le + 2;
        if (size === 0) {
          const te = buf.indexOf('\r\n', p);
          if (te < 0) return out;
          p = te + 2;
          break;
        }
        if (p + size + 2 > buf.length) return out;
        parts.push(buf.subarray(p, p + size));
        p += size + 2;
      }
      body = Buffer.concat(parts);
    } else {
      const len = Number(headers['content-length'] ?? 0);
      if (p + len > buf.length) break;
      body = buf.subarray(p, p + len);
      p += len;
    }
    out.push({ status: Number(m[1]), headers, body: body.toString('utf8') });
    at = p;
  }
  return out;
}

/** A deterministic PRNG (mulberry32), so that "random" garbage is reproducible. */
export function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function randomBytesFrom(rand, n) {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(rand() * 256);
  return b;
}

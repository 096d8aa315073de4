// Provider-level timeouts, retries and key rotation, configured per provider through plugins.config
// overrides in scratch configs:
//   timeouts: {connect_ms, first_byte_ms, idle_ms, total_ms}
//   retry: {attempts, base_delay_ms, max_delay_ms, on: [connect, timeout, "429", "5xx"]}
//   keys: [{key, weight}], key_cooldown_ms
// A response after retries carries x-prism-retries: <n>.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { makeCompletion, openaiError } from '../e2e/lib/fake-openai.mjs';
import { anthropicError } from '../e2e/lib/fake-anthropic.mjs';
import { T } from '../e2e/lib/gateway.mjs';
import {
  GATEWAY_KEY,
  OPENAI_MODEL,
  CLAUDE_MODEL,
  SECRETS,
  startStack,
  chat,
  post,
  postStream,
  assertError,
  assertErrorFrame,
  assertStillServes,
  assertCleanExit,
} from './lib/faults.mjs';

const PATHS = [
  ['OpenAI', OPENAI_MODEL, 'openai'],
  ['Claude', CLAUDE_MODEL, 'anthropic'],
];

function bothProviders(cfg) {
  return { plugins: { config: { openai_provider: cfg, claude_provider: cfg } } };
}

function noRetriesHeader(r, what = '') {
  const h = r.headers.get('x-prism-retries');
  assert.ok(h === null || h === '0', `${what}: no x-prism-retries header without retries (got ${h})`);
}

/** An upstream error in the right dialect for the fake. */
function upstreamError(fake, status, extra = {}) {
  const body =
    fake === 'openai'
      ? openaiError(`fake ${status}`, status >= 500 ? 'server_error' : 'invalid_request_error')
      : anthropicError(status === 429 ? 'rate_limit_error' : status >= 500 ? 'api_error' : 'invalid_request_error', `fake ${status}`);
  return { status, body, ...extra };
}

describe('provider timeouts (first_byte_ms, idle_ms, total_ms)', { timeout: T(180000) }, () => {
  const FIRST_BYTE = T(1000);
  const IDLE = T(1000);
  const TOTAL = T(6000);
  let stack;

  before(async () => {
    stack = await startStack({
      prefix: 'prism-faults-ptimeouts-',
      overrides: bothProviders({ timeouts: { connect_ms: T(2000), first_byte_ms: FIRST_BYTE, idle_ms: IDLE, total_ms: TOTAL } }),
    });
  });

  after(async () => {
    if (stack) await stack.close();
  });

  function reset() {
    stack.openai.reset();
    stack.anthropic.reset();
  }

  for (const [label, model, fake] of PATHS) {
    it(`${label}: no response headers within first_byte_ms: 504 upstream_timeout`, { timeout: T(20000) }, async () => {
      reset();
      stack[fake].next({ hold: true });
      const r = await post(stack.gw, chat(model), { ms: T(8000) });
      assertError(r, 504, { type: 'api_error', code: 'upstream_timeout' });
      assert.ok(r.ms >= FIRST_BYTE - 100 && r.ms <= FIRST_BYTE + T(2000), `answered after ${r.ms} ms (first_byte_ms ${FIRST_BYTE})`);
      assert.equal(stack[fake].requests.length, 1, 'no retry configured');
      await assertStillServes(stack, `a ${label} upstream silent before its headers`);
    });

    it(`${label}: a stream silent longer than idle_ms ends with an error frame upstream_timeout`, { timeout: T(20000) }, async () => {
      reset();
      if (fake === 'openai') stack.openai.next({ gate: new Promise(() => {}), gateAfter: 1 });
      else stack.anthropic.next({ stallAfter: 1 });
      const s = await postStream(stack.gw, chat(model), { ms: T(8000) });
      assertErrorFrame(s, { code: 'upstream_timeout' });
      assert.ok(s.ms >= IDLE - 100 && s.ms <= IDLE + T(2000), `ended after ${s.ms} ms (idle_ms ${IDLE})`);
      await assertStillServes(stack, `a ${label} stream silent past idle_ms`);
    });

    it(`${label}: a slow stream whose gaps stay under idle_ms completes (idle_ms is not a total)`, { timeout: T(20000) }, async () => {
      reset();
      const gap = Math.round(IDLE * 0.4);
      if (fake === 'openai') stack.openai.next({ streamChunks: ['a', 'b', 'c', 'd', 'e', 'f'], intervalMs: gap });
      else stack.anthropic.next({ content: [{ type: 'text', text: 'abcdef', pieces: ['a', 'b', 'c', 'd', 'e', 'f'] }], intervalMs: Math.round(gap / 2) });
      const s = await postStream(stack.gw, chat(model), { ms: T(10000) });
      assert.equal(s.status, 200);
      assert.equal(s.data.at(-1), '[DONE]', `completed:\n${s.text.slice(-500)}`);
      assert.ok(s.ms > IDLE + FIRST_BYTE, `the stream took ${s.ms} ms, longer than first_byte_ms + idle_ms`);
    });
  }

  it('OpenAI: headers a little late but within first_byte_ms: 200', { timeout: T(20000) }, async () => {
    reset();
    stack.openai.next({ content: 'late but fine', delayMs: Math.round(FIRST_BYTE / 2) });
    const r = await post(stack.gw, chat(OPENAI_MODEL));
    assert.equal(r.status, 200, r.text.slice(0, 300));
    assert.equal(r.json.choices[0].message.content, 'late but fine');
  });

  it('OpenAI: a stream still going at total_ms ends with an error frame upstream_timeout', { timeout: T(30000) }, async () => {
    reset();
    const pieces = Array.from({ length: 40 }, (_, i) => `p${i} `);
    stack.openai.next({ streamChunks: pieces, intervalMs: Math.round(IDLE * 0.4) }); // ~16 s if not cut
    const s = await postStream(stack.gw, chat(OPENAI_MODEL), { ms: T(15000) });
    assertErrorFrame(s, { code: 'upstream_timeout' });
    assert.ok(s.ms >= TOTAL - 100 && s.ms <= TOTAL + T(2000), `ended after ${s.ms} ms (total_ms ${TOTAL})`);
    await assertStillServes(stack, 'a stream cut at total_ms');
  });

  it('exits 0 on SIGTERM and never logs a secret', { timeout: T(20000) }, async () => {
    await assertCleanExit(stack.gw);
  });
});

describe('provider retries', { timeout: T(240000) }, () => {
  const FIRST_BYTE = T(1000);
  let stack;

  before(async () => {
    stack = await startStack({
      prefix: 'prism-faults-retry-',
      overrides: bothProviders({
        timeouts: { first_byte_ms: FIRST_BYTE },
        retry: { attempts: 3, base_delay_ms: 50, max_delay_ms: 2000, on: ['connect', 'timeout', '429', '5xx'] },
      }),
    });
  });

  after(async () => {
    if (stack) await stack.close();
  });

  function reset() {
    stack.openai.reset();
    stack.anthropic.reset();
  }

  for (const [label, model, fake] of PATHS) {
    it(`${label}: 503, 503, then 200: the client gets the 200, the upstream saw 3 requests, x-prism-retries: 2`, { timeout: T(20000) }, async () => {
      reset();
      stack[fake].next(upstreamError(fake, 503));
      stack[fake].next(upstreamError(fake, 503));
      const r = await post(stack.gw, chat(model));
      assert.equal(r.status, 200, r.text.slice(0, 300));
      assert.equal(r.json.object, 'chat.completion');
      assert.equal(stack[fake].requests.length, 3);
      assert.equal(r.headers.get('x-prism-retries'), '2');
      if (fake === 'openai') assert.deepEqual(r.json, stack.openai.responses[2].body, 'the last answer is relayed as is');
      await assertStillServes(stack, `${label} retries`);
    });

    it(`${label}: a streamed request is retried the same way before its stream begins`, { timeout: T(20000) }, async () => {
      reset();
      stack[fake].next(upstreamError(fake, 502));
      stack[fake].next(upstreamError(fake, 500));
      const s = await postStream(stack.gw, chat(model));
      assert.equal(s.status, 200, s.text.slice(0, 300));
      assert.equal(s.data.at(-1), '[DONE]');
      assert.equal(stack[fake].requests.length, 3);
      assert.equal(s.headers.get('x-prism-retries'), '2');
    });
  }

  it('OpenAI: a 429 with retry-after: 1 is retried after >= ~1 s', { timeout: T(20000) }, async () => {
    reset();
    stack.openai.next(upstreamError('openai', 429, { headers: { 'retry-after': '1' } }));
    const r = await post(stack.gw, chat(OPENAI_MODEL));
    assert.equal(r.status, 200, r.text.slice(0, 300));
    assert.equal(stack.openai.requests.length, 2);
    const gap = stack.openai.requests[1].at - stack.openai.requests[0].at;
    assert.ok(gap >= 900, `the retry came ${gap} ms after the 429 (retry-after: 1)`);
    assert.ok(gap <= T(4000), `the retry came ${gap} ms after the 429, not much later than retry-after`);
    assert.equal(r.headers.get('x-prism-retries'), '1');
  });

  it('OpenAI: a 429 whose retry-after is beyond 60 s is not retried; the client sees the 429 and its retry-after', { timeout: T(20000) }, async () => {
    reset();
    stack.openai.next(upstreamError('openai', 429, { headers: { 'retry-after': '3600' } }));
    const r = await post(stack.gw, chat(OPENAI_MODEL));
    assertError(r, 429, {});
    assert.ok(r.ms < T(2000), `answered after ${r.ms} ms`);
    assert.equal(r.headers.get('retry-after'), '3600');
    await new Promise((res) => setTimeout(res, 300));
    assert.equal(stack.openai.requests.length, 1);
  });

  it('OpenAI: a client that hangs up during the retry delay cancels the retry', { timeout: T(20000) }, async () => {
    reset();
    stack.openai.next(upstreamError('openai', 429, { headers: { 'retry-after': '2' } }));
    const ac = new AbortController();
    const p = fetch(stack.gw.url('/v1/chat/completions'), {
      method: 'POST',
      headers: { authorization: `Bearer ${GATEWAY_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify(chat(OPENAI_MODEL)),
      signal: ac.signal,
    });
    p.catch(() => {});
    await stack.openai.waitForRequests(1, T(5000));
    await new Promise((res) => setTimeout(res, 300));
    ac.abort();
    await new Promise((res) => setTimeout(res, 2500));
    assert.equal(stack.openai.requests.length, 1, 'no retry was sent for a client that is gone');
    await assertStillServes(stack, 'a hang-up during a retry delay');
  });

  for (const [label, model, fake] of PATHS) {
    it(`${label}: a 400 is never retried`, { timeout: T(20000) }, async () => {
      reset();
      stack[fake].next(upstreamError(fake, 400));
      const r = await post(stack.gw, chat(model));
      assertError(r, 400, { type: 'invalid_request_error' });
      await new Promise((res) => setTimeout(res, 300));
      assert.equal(stack[fake].requests.length, 1);
      noRetriesHeader(r, '400');
    });

    it(`${label}: no retry once a stream has started (200 + one event, then a reset)`, { timeout: T(20000) }, async () => {
      reset();
      stack[fake].next({ resetAfterEvents: 1 });
      const s = await postStream(stack.gw, chat(model));
      assertErrorFrame(s, { code: 'upstream_disconnected' });
      await new Promise((res) => setTimeout(res, 300));
      assert.equal(stack[fake].requests.length, 1, 'exactly 1 upstream request');
      noRetriesHeader(s, 'a started stream');
    });

    it(`${label}: a reset before any response byte (connect) is retried`, { timeout: T(20000) }, async () => {
      reset();
      stack[fake].next({ reset: true });
      const r = await post(stack.gw, chat(model));
      assert.equal(r.status, 200, r.text.slice(0, 300));
      assert.equal(stack[fake].requests.length, 2);
      assert.equal(r.headers.get('x-prism-retries'), '1');
    });
  }

  it('OpenAI: a first try that times out (first_byte_ms) is retried', { timeout: T(20000) }, async () => {
    reset();
    stack.openai.next({ hold: true });
    const r = await post(stack.gw, chat(OPENAI_MODEL));
    assert.equal(r.status, 200, r.text.slice(0, 300));
    assert.equal(stack.openai.requests.length, 2);
    assert.equal(stack.openai.requests[0].clientAborted, true, 'the timed-out try was closed');
    assert.equal(r.headers.get('x-prism-retries'), '1');
  });

  it('OpenAI: when every try fails the last upstream error is returned after attempts retries', { timeout: T(30000) }, async () => {
    reset();
    stack.openai.always(upstreamError('openai', 503));
    const r = await post(stack.gw, chat(OPENAI_MODEL), { ms: T(20000) });
    stack.openai.always(null);
    assertError(r, 503, { type: 'server_error' });
    assert.equal(stack.openai.requests.length, 4, '1 try + 3 retries');
    assert.equal(r.headers.get('x-prism-retries'), '3');
    await assertStillServes(stack, 'exhausted retries');
  });

  it('exits 0 on SIGTERM and never logs a secret', { timeout: T(20000) }, async () => {
    await assertCleanExit(stack.gw);
  });
});

describe('provider retries with attempts: 0', { timeout: T(60000) }, () => {
  let stack;

  before(async () => {
    stack = await startStack({
      prefix: 'prism-faults-retry0-',
      overrides: bothProviders({ retry: { attempts: 0, base_delay_ms: 50, max_delay_ms: 2000, on: ['connect', 'timeout', '429', '5xx'] } }),
    });
  });

  after(async () => {
    if (stack) await stack.close();
  });

  for (const [label, model, fake] of PATHS) {
    it(`${label}: a 503 is answered after a single request`, { timeout: T(20000) }, async () => {
      stack.openai.reset();
      stack.anthropic.reset();
      // Anthropic's "overloaded" is its 529 (the gateway maps it to 503).
      stack[fake].next(fake === 'openai' ? upstreamError(fake, 503) : { status: 529, body: anthropicError('overloaded_error', 'Overloaded') });
      const r = await post(stack.gw, chat(model));
      assert.equal(r.status, 503, r.text.slice(0, 300));
      await new Promise((res) => setTimeout(res, 300));
      assert.equal(stack[fake].requests.length, 1);
      noRetriesHeader(r, 'attempts: 0');
    });
  }

  it('exits 0 on SIGTERM and never logs a secret', { timeout: T(20000) }, async () => {
    await assertCleanExit(stack.gw);
  });
});

describe('provider keys: weighted rotation and cooldown after a 429', { timeout: T(120000) }, () => {
  const K1 = 'sk-faults-key-one-7d2e41';
  const K2 = 'sk-faults-key-two-93ab0c';
  let stack;
  let rejectK1 = false;
  const rejected = [];

  function sendJson(res, status, obj, headers = {}) {
    const text = JSON.stringify(obj);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
    res.end(text);
  }

  // Every request: a normal completion, or a 429 for K1 while rejectK1 is on.
  function upstream(req, res, record) {
    if (rejectK1 && record.headers.authorization === `Bearer ${K1}`) {
      rejectK1 = false;
      rejected.push(record);
      return sendJson(res, 429, openaiError('Rate limit reached for requests', 'requests', null, 'rate_limit_exceeded'));
    }
    return sendJson(res, 200, makeCompletion(record.body));
  }

  before(async () => {
    stack = await startStack({
      prefix: 'prism-faults-keys-',
      overrides: {
        plugins: {
          config: {
            openai_provider: {
              keys: [
                { key: K1, weight: 1 },
                { key: K2, weight: 1 },
              ],
              key_cooldown_ms: 60000,
              retry: { attempts: 1, base_delay_ms: 10, max_delay_ms: 100, on: ['429'] },
            },
          },
        },
      },
    });
  });

  after(async () => {
    if (stack) await stack.close();
  });

  const keyOf = (r) => (r.headers.authorization || '').replace(/^Bearer /, '');

  it('over 20 requests both keys are used, and only they', { timeout: T(30000) }, async () => {
    stack.openai.reset();
    stack.openai.always(upstream);
    for (let i = 0; i < 20; i++) {
      const r = await post(stack.gw, chat(OPENAI_MODEL));
      assert.equal(r.status, 200, r.text.slice(0, 300));
    }
    const used = stack.openai.requests.map(keyOf);
    assert.ok(used.every((k) => k === K1 || k === K2), `only the configured keys are sent: ${[...new Set(used)].map((k) => k.slice(0, 12))}`);
    assert.ok(used.includes(K1) && used.includes(K2), `both keys are used (K1 ${used.filter((k) => k === K1).length}, K2 ${used.filter((k) => k === K2).length})`);
  });

  it('a 429 on K1 is retried with K2, and K2 alone is used during the cooldown', { timeout: T(60000) }, async () => {
    stack.openai.reset();
    stack.openai.always(upstream);
    rejectK1 = true;
    let hit = null;
    for (let i = 0; i < 40 && !hit; i++) {
      const n = stack.openai.requests.length;
      const r = await post(stack.gw, chat(OPENAI_MODEL));
      assert.equal(r.status, 200, `the client never sees the 429: ${r.text.slice(0, 300)}`);
      if (rejected.length) hit = { r, n };
    }
    assert.ok(hit, 'K1 was picked within 40 requests');
    const after429 = stack.openai.requests.slice(hit.n);
    assert.equal(after429.length, 2, 'the 429 and one retry');
    assert.equal(keyOf(after429[0]), K1);
    assert.equal(keyOf(after429[1]), K2, 'the retry uses the other key');
    assert.equal(hit.r.headers.get('x-prism-retries'), '1');

    const before = stack.openai.requests.length;
    for (let i = 0; i < 12; i++) {
      const r = await post(stack.gw, chat(OPENAI_MODEL));
      assert.equal(r.status, 200);
    }
    const later = stack.openai.requests.slice(before).map(keyOf);
    assert.deepEqual([...new Set(later)].map((k) => (k === K1 ? 'K1' : k === K2 ? 'K2' : k)), ['K2'], 'K1 cools down for key_cooldown_ms');
    stack.openai.always(null);
  });

  it('exits 0 on SIGTERM and never logs a secret', { timeout: T(20000) }, async () => {
    await assertCleanExit(stack.gw, [...SECRETS, K1, K2]);
  });
});

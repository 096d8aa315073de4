// A client that hangs up cancels its upstream request at once: streamed (SDK abort while the
// upstream keeps sending; raw socket destroyed while the upstream holds the stream open) and
// non-streamed (raw socket destroyed while the upstream has not answered). The gateway keeps serving.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startFakeOpenAI } from './lib/fake-openai.mjs';
import {
  T,
  UPSTREAM_KEY,
  sleep,
  startGateway,
  gatewayEnv,
  stopAndAssertClean,
  assertNoSecretsInLogs,
  sdkClient,
  chatBody,
} from './lib/gateway.mjs';

// How soon after the client hangs up the upstream must see its request closed.
const CANCEL_MS = T(1000);

describe('client disconnect cancels the upstream request', { timeout: T(90000) }, () => {
  let fake;
  let gw;
  let client;

  before(async () => {
    fake = await startFakeOpenAI();
    gw = await startGateway({ env: gatewayEnv(fake) });
    client = await sdkClient(gw);
  });

  after(async () => {
    if (gw) await gw.kill();
    if (fake) await fake.close();
  });

  async function assertStillServes(what) {
    const n = fake.requests.length;
    const r = await client.chat.completions.create(chatBody('gpt-4o-mini'));
    assert.equal(r.object, 'chat.completion', `after ${what}: a normal request should succeed`);
    assert.deepEqual(r, fake.responses.at(-1).body);
    assert.equal(fake.requests.length, n + 1);
    const s = await client.chat.completions.create(chatBody('gpt-4o-mini', { stream: true }));
    const chunks = [];
    for await (const c of s) chunks.push(c);
    assert.deepEqual(chunks, fake.responses.at(-1).chunks, `after ${what}: a normal stream should succeed`);
  }

  async function assertUpstreamClosedSoon(record, hungUpAt, what) {
    let closedAt;
    try {
      closedAt = await fake.waitClosed(record, CANCEL_MS + T(2000));
    } catch {
      assert.fail(`${what}: the upstream request was still open ${CANCEL_MS + T(2000)} ms after the client hung up`);
    }
    const ms = closedAt - hungUpAt;
    assert.ok(ms <= CANCEL_MS, `${what}: the upstream request closed ${ms} ms after the client hung up (want <= ${CANCEL_MS})`);
    assert.equal(record.clientAborted, true, `${what}: the upstream response was cut short, not completed`);
  }

  /** A raw POST /v1/chat/completions on its own connection; resolves once the status line is in. */
  function rawPost(body) {
    const req = http.request(gw.url('/v1/chat/completions'), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      agent: false,
    });
    const response = new Promise((resolve, reject) => {
      req.on('response', resolve);
      req.on('error', reject);
    });
    response.catch(() => {}); // the tests destroy the request: its error is expected
    req.end(JSON.stringify(body));
    return { req, response };
  }

  it('streaming, SDK abort after the first chunk while the upstream keeps sending', { timeout: T(20000) }, async () => {
    fake.reset();
    const pieces = Array.from({ length: 40 }, (_, i) => ` piece${i}`);
    fake.next({ streamChunks: pieces, intervalMs: 150 }); // ~6 s if nobody hangs up
    const ac = new AbortController();
    const stream = await client.chat.completions.create(chatBody('gpt-4o-mini', { stream: true }), { signal: ac.signal });
    const it = stream[Symbol.asyncIterator]();
    const first = await it.next();
    assert.equal(first.done, false);
    assert.equal(first.value.object, 'chat.completion.chunk');
    const hungUpAt = Date.now();
    ac.abort();
    await it.next().then(
      () => {},
      () => {},
    ); // the SDK reports the abort; either way the stream is over

    assert.equal(fake.requests.length, 1);
    await assertUpstreamClosedSoon(fake.requests[0], hungUpAt, 'SDK abort');
    const up = fake.responses[0];
    assert.notEqual(up.done, true, 'the upstream did not get to finish its stream');
    await assertStillServes('an aborted stream');
  });

  it('streaming, raw socket destroyed while the upstream holds the stream open', { timeout: T(20000) }, async () => {
    fake.reset();
    fake.next({ gate: new Promise(() => {}), gateAfter: 1 }); // role + one piece, then silence
    const { req, response } = rawPost(chatBody('gpt-4o-mini', { stream: true }));
    let hungUpAt;
    try {
      const res = await response;
      assert.equal(res.statusCode, 200);
      // Wait for the two events sent before the gate, then hang up while the upstream is idle.
      await new Promise((resolve, reject) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d) => {
          text += d;
          if (text.split('\n\n').length > 2) resolve();
        });
        res.on('error', reject);
      });
      for (let i = 0; i < 100 && !fake.responses[0].gatedAt; i++) await sleep(10);
      assert.ok(fake.responses[0].gatedAt, 'the upstream is holding the stream open');
    } finally {
      hungUpAt = Date.now();
      req.destroy();
    }

    await assertUpstreamClosedSoon(fake.requests[0], hungUpAt, 'raw stream hang-up');
    assert.equal(fake.responses[0].aborted, true, 'the upstream stream was aborted, not completed');
    await assertStillServes('a hung-up stream');
  });

  it('non-streaming, raw socket destroyed while the upstream has not answered', { timeout: T(20000) }, async (t) => {
    fake.reset();
    fake.next({ hold: true });
    const { req, response } = rawPost(chatBody('gpt-4o-mini'));
    t.after(() => req.destroy()); // also when an assertion fails before the hang-up
    let answered = false;
    response.then(
      () => (answered = true),
      () => {},
    );
    await fake.waitForRequests(1, T(5000));
    await sleep(200);
    assert.equal(answered, false, 'no response while the upstream holds the request');
    assert.equal(fake.requests[0].closedAt, undefined, 'the upstream request is still open before the hang-up');
    const hungUpAt = Date.now();
    req.destroy();

    await assertUpstreamClosedSoon(fake.requests[0], hungUpAt, 'non-streaming hang-up');
    await assertStillServes('a hung-up request');
  });

  it('non-streaming, raw socket destroyed the moment the upstream has the request (before the watch starts)', { timeout: T(20000) }, async (t) => {
    // Prism starts watching a waiting request's connection 10 ms after it went upstream (most
    // answers come sooner); a hang-up before that must still cancel the upstream request.
    fake.reset();
    fake.next({ hold: true });
    const { req } = rawPost(chatBody('gpt-4o-mini'));
    t.after(() => req.destroy());
    await fake.waitForRequests(1, T(5000));
    const hungUpAt = Date.now();
    req.destroy();
    await assertUpstreamClosedSoon(fake.requests[0], hungUpAt, 'an immediate hang-up');
    await assertStillServes('an immediate hang-up');
  });

  it('shuts down gracefully after the cancellations', { timeout: T(15000) }, async () => {
    await stopAndAssertClean(gw);
  });

  it('never logs the upstream key', { timeout: T(15000) }, async () => {
    await gw.stop();
    assertNoSecretsInLogs(gw, [UPSTREAM_KEY]);
  });
});

// Upstreams that cannot be reached or never answer: a name that does not resolve (.invalid), a closed
// port, an upstream that accepts and stays silent (server.timeouts.upstream_ms), a stream that stalls.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { makeEvents, sseFrame, startFakeAnthropic } from '../e2e/lib/fake-anthropic.mjs';
import { T, freePort, scratchDir, startGateway } from '../e2e/lib/gateway.mjs';
import {
  ANTHROPIC_KEY,
  OPENAI_MODEL,
  CLAUDE_MODEL,
  faultEnv,
  writeConfig,
  startStack,
  chat,
  post,
  postStream,
  assertError,
  assertErrorFrame,
  assertStillServes,
  assertCleanExit,
} from './lib/faults.mjs';

describe('unreachable upstreams', { timeout: T(90000) }, () => {
  let dir;
  let anthropic;
  const gateways = [];

  before(async () => {
    dir = await scratchDir('prism-faults-dns-');
    anthropic = await startFakeAnthropic({ apiKey: ANTHROPIC_KEY });
  });

  after(async () => {
    for (const gw of gateways) await gw.kill();
    if (anthropic) await anthropic.close();
    if (dir) await fs.promises.rm(dir, { recursive: true, force: true });
  });

  async function gatewayTo(openaiBaseURL, name) {
    const config = await writeConfig(dir, { server: { timeouts: { upstream_connect_ms: T(2000) } } }, name);
    const env = faultEnv({ anthropic, extra: { OPENAI_BASE_URL: openaiBaseURL } });
    const gw = await startGateway({ env, config });
    gateways.push(gw);
    return gw;
  }

  it('a name that never resolves (prism-test.invalid): 502 upstream_unreachable within a few seconds', { timeout: T(15000) }, async () => {
    const gw = await gatewayTo('http://prism-test.invalid/v1', 'dns.yml');
    const r = await post(gw, chat(OPENAI_MODEL), { ms: T(12000) });
    assertError(r, 502, { type: 'api_error', code: 'upstream_unreachable' });
    assert.ok(r.ms <= T(5000), `answered after ${r.ms} ms`);
    const s = await post(gw, chat(OPENAI_MODEL, { stream: true }), { ms: T(12000) });
    assertError(s, 502, { type: 'api_error', code: 'upstream_unreachable' }, 'streamed');
    const ok = await post(gw, chat(CLAUDE_MODEL));
    assert.equal(ok.status, 200, `a normal request still succeeds: ${ok.text.slice(0, 300)}`);
    await assertCleanExit(gw);
  });

  it('a closed port: 502 upstream_unreachable at once', { timeout: T(15000) }, async () => {
    const port = await freePort();
    const gw = await gatewayTo(`http://127.0.0.1:${port}/v1`, 'refused.yml');
    const r = await post(gw, chat(OPENAI_MODEL));
    assertError(r, 502, { type: 'api_error', code: 'upstream_unreachable' });
    assert.ok(r.ms <= T(2000), `answered after ${r.ms} ms`);
    const ok = await post(gw, chat(CLAUDE_MODEL));
    assert.equal(ok.status, 200, `a normal request still succeeds: ${ok.text.slice(0, 300)}`);
    await assertCleanExit(gw);
  });
});

describe('stalled upstreams (server.timeouts.upstream_ms: 1000)', { timeout: T(120000) }, () => {
  const UPSTREAM_MS = T(1000);
  let stack;

  before(async () => {
    stack = await startStack({ prefix: 'prism-faults-stall-', overrides: { server: { timeouts: { upstream_ms: UPSTREAM_MS } } } });
  });

  after(async () => {
    if (stack) await stack.close();
  });

  function reset() {
    stack.openai.reset();
    stack.anthropic.reset();
  }

  for (const [label, model, fake] of [
    ['OpenAI', OPENAI_MODEL, 'openai'],
    ['Claude', CLAUDE_MODEL, 'anthropic'],
  ]) {
    it(`${label}: an upstream that accepts and never answers: 504 upstream_timeout in ~1-3 s`, { timeout: T(20000) }, async () => {
      reset();
      stack[fake].next({ hold: true });
      const r = await post(stack.gw, chat(model), { ms: T(8000) });
      assertError(r, 504, { type: 'api_error', code: 'upstream_timeout' });
      assert.ok(r.ms >= UPSTREAM_MS - 100 && r.ms <= UPSTREAM_MS + T(2000), `answered after ${r.ms} ms (upstream_ms ${UPSTREAM_MS})`);
      await stack[fake].waitClosed(stack[fake].requests[0], T(3000));
      assert.equal(stack[fake].requests[0].clientAborted, true, 'the upstream request was closed');
      await assertStillServes(stack, `a ${label} upstream that never answers`);
    });
  }

  it('OpenAI: a stream that stalls after the first event ends with an error frame upstream_timeout', { timeout: T(20000) }, async () => {
    reset();
    stack.openai.next({ gate: new Promise(() => {}), gateAfter: 0 });
    const s = await postStream(stack.gw, chat(OPENAI_MODEL), { ms: T(8000) });
    assertErrorFrame(s, { code: 'upstream_timeout' });
    assert.equal(s.data.length, 2, `the first event, then the error frame:\n${s.text}`);
    assert.ok(s.ms <= UPSTREAM_MS + T(2000), `ended after ${s.ms} ms`);
    await assertStillServes(stack, 'a stalled OpenAI stream');
  });

  it('Claude: a stream that stalls after the first event ends with an error frame upstream_timeout', { timeout: T(20000) }, async () => {
    reset();
    const { events } = makeEvents(chat(CLAUDE_MODEL));
    // message_start and the first content_block_start: the role chunk goes out with the first block.
    stack.anthropic.next({ raw: [sseFrame(events[0]), sseFrame(events[1])], end: 'stall' });
    const s = await postStream(stack.gw, chat(CLAUDE_MODEL), { ms: T(8000) });
    assertErrorFrame(s, { code: 'upstream_timeout' });
    assert.equal(JSON.parse(s.data[0]).choices[0].delta.role, 'assistant');
    assert.ok(s.ms <= UPSTREAM_MS + T(2000), `ended after ${s.ms} ms`);
    await assertStillServes(stack, 'a stalled Claude stream');
  });

  it('exits 0 on SIGTERM and never logs a secret', { timeout: T(20000) }, async () => {
    await assertCleanExit(stack.gw);
  });
});

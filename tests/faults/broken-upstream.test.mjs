// Broken upstreams on both paths (OpenAI pass-through and Claude translation): a connection reset
// mid-stream and before any byte, garbage and truncated SSE, non-JSON bodies. For each: the exact
// client-visible outcome, no hang, and the gateway keeps serving. Default configuration (no retries).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { makeStreamChunks } from '../e2e/lib/fake-openai.mjs';
import { makeEvents, sseFrame } from '../e2e/lib/fake-anthropic.mjs';
import { T } from '../e2e/lib/gateway.mjs';
import {
  OPENAI_MODEL,
  CLAUDE_MODEL,
  startStack,
  chat,
  post,
  postStream,
  sdkStream,
  assertError,
  assertErrorFrame,
  assertStillServes,
  assertCleanExit,
  prng,
  randomBytesFrom,
} from './lib/faults.mjs';

const HTML_500 = '<html><head><title>500 Internal Server Error</title></head><body><h1>Internal Server Error</h1></body></html>';

describe('broken upstreams', { timeout: T(180000) }, () => {
  let stack;

  before(async () => {
    stack = await startStack({ prefix: 'prism-faults-broken-' });
  });

  after(async () => {
    if (stack) await stack.close();
  });

  function reset() {
    stack.openai.reset();
    stack.anthropic.reset();
  }

  // ---- 1. connection reset mid-stream ----

  it('OpenAI: a reset after 2 events ends the SDK stream with an APIError upstream_disconnected', { timeout: T(30000) }, async () => {
    reset();
    stack.openai.next({ resetAfterEvents: 2 });
    const s = await sdkStream(stack.client, chat(OPENAI_MODEL));
    assert.ok(s.error, 'the SDK iteration throws');
    assert.equal(s.error.constructor.name, 'APIError', `an APIError (${s.error})`);
    assert.equal(s.error.code, 'upstream_disconnected', String(s.error));
    assert.equal(s.error.type, 'api_error');
    assert.deepEqual(s.chunks, stack.openai.responses[0].chunks.slice(0, 2), 'the 2 events before the reset were relayed');
    assert.equal(stack.openai.requests.length, 1, 'no retry by default');
    await assertStillServes(stack, 'an OpenAI reset mid-stream');
  });

  it('OpenAI: a reset after 2 events ends the raw SSE with an error frame', { timeout: T(30000) }, async () => {
    reset();
    stack.openai.next({ resetAfterEvents: 2 });
    const s = await postStream(stack.gw, chat(OPENAI_MODEL));
    assertErrorFrame(s, { code: 'upstream_disconnected' });
    assert.equal(s.data.length, 3, `2 relayed events and the error frame:\n${s.text}`);
    await assertStillServes(stack, 'an OpenAI reset mid-stream (raw)');
  });

  it('Claude: a reset after 2 events ends the SDK stream with an APIError upstream_disconnected', { timeout: T(30000) }, async () => {
    reset();
    stack.anthropic.next({ resetAfterEvents: 2 });
    const s = await sdkStream(stack.client, chat(CLAUDE_MODEL));
    assert.ok(s.error, 'the SDK iteration throws');
    assert.equal(s.error.constructor.name, 'APIError', `an APIError (${s.error})`);
    assert.equal(s.error.code, 'upstream_disconnected', String(s.error));
    assert.equal(s.error.type, 'api_error');
    assert.equal(s.chunks.length, 1, 'the role chunk (from message_start) came before the error');
    assert.equal(s.chunks[0].choices[0].delta.role, 'assistant');

    reset();
    stack.anthropic.next({ resetAfterEvents: 2 });
    const raw = await postStream(stack.gw, chat(CLAUDE_MODEL));
    assertErrorFrame(raw, { code: 'upstream_disconnected' });
    assert.equal(stack.anthropic.requests.length, 1, 'no retry by default');
    await assertStillServes(stack, 'a Claude reset mid-stream');
  });

  // ---- 2. connection reset before any response byte ----
  // The request goes out on a kept-alive (reused) upstream connection, as it does in production: the
  // warm-up request just before leaves one in the gateway's pool.

  for (const [label, model, fake] of [
    ['OpenAI', OPENAI_MODEL, 'openai'],
    ['Claude', CLAUDE_MODEL, 'anthropic'],
  ]) {
    for (const [how, behaviour] of [
      ['reset (RST)', { reset: true }],
      ['closed (socket destroyed, FIN)', { destroy: true }],
    ]) {
      it(`${label}: a connection ${how} on the request, before any response byte: 502 upstream_unreachable, one upstream request`, { timeout: T(30000) }, async () => {
        for (const stream of [false, true]) {
          reset();
          const warm = await post(stack.gw, chat(model));
          assert.equal(warm.status, 200, 'warm-up');
          stack[fake].reset();
          stack[fake].next(behaviour);
          const r = await post(stack.gw, chat(model, { stream }));
          assertError(r, 502, { type: 'api_error', code: 'upstream_unreachable' }, stream ? 'streamed' : 'non-streamed');
          await new Promise((res) => setTimeout(res, 200));
          assert.equal(
            stack[fake].requests.length,
            1,
            `${stream ? 'streamed' : 'non-streamed'}: exactly one upstream request (no retries are configured); the upstream saw ${stack[fake].requests.length}`,
          );
        }
        await assertStillServes(stack, `a ${label} connection ${how} before any byte`);
      });
    }
  }

  // ---- 3. garbage SSE ----

  it('Claude: invalid JSON in a data line is an error frame upstream_protocol_error', { timeout: T(30000) }, async () => {
    reset();
    const { events } = makeEvents(chat(CLAUDE_MODEL));
    stack.anthropic.next({
      raw: [sseFrame(events[0]), sseFrame(events[1]), Buffer.from('event: content_block_delta\ndata: {"type":"content_block_delta",\x00\xff\xfe garbage }}}\n\n', 'latin1')],
    });
    const s = await postStream(stack.gw, chat(CLAUDE_MODEL));
    assertErrorFrame(s, { code: 'upstream_protocol_error' });
    assert.equal(JSON.parse(s.data[0]).choices[0].delta.role, 'assistant', 'the role chunk came first');

    // The SDK sees the same as an APIError.
    reset();
    stack.anthropic.next({ raw: ['event: message_start\ndata: not json at all\n\n'] });
    const e = await sdkStream(stack.client, chat(CLAUDE_MODEL));
    assert.equal(e.error?.constructor.name, 'APIError', `an APIError (${e.error})`);
    assert.equal(e.error.code, 'upstream_protocol_error');
    await assertStillServes(stack, 'garbage SSE on the Claude path');
  });

  it('Claude: random bytes as the stream end it with an error frame, never a hang', { timeout: T(30000) }, async () => {
    const rand = prng(0xc1a0de);
    for (let i = 0; i < 5; i++) {
      reset();
      stack.anthropic.next({ raw: [randomBytesFrom(rand, 2048), randomBytesFrom(rand, 2048)] });
      const s = await postStream(stack.gw, chat(CLAUDE_MODEL));
      // Random bytes hold no complete event (or an invalid one): either way the message never completes.
      const err = assertErrorFrame(s, {}, `random stream #${i}`);
      assert.ok(['upstream_protocol_error', 'upstream_disconnected'].includes(err.code), `code ${err.code}`);
    }
    await assertStillServes(stack, 'random bytes on the Claude path');
  });

  /** What Prism appends to an OpenAI stream that ends without data: [DONE]. */
  function assertNoDoneFrame(rest, what) {
    assert.match(rest, /^\n\ndata: \{"error":\{.*"code":"upstream_disconnected"\}\}\n\n$/, `${what}: ${JSON.stringify(rest)}`);
  }

  it('OpenAI: garbage SSE is relayed byte for byte (pass-through), then an error frame for the missing [DONE], no crash', { timeout: T(30000) }, async () => {
    reset();
    const rand = prng(0x0bad5eed);
    const pieces = [
      Buffer.from('data: {"id":"x","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"ok"}}]}\n\n'),
      Buffer.from('data: {this is not json\n\n'),
      randomBytesFrom(rand, 4096),
      Buffer.from('\n\ndata: \x00\x01\x02\xff\n\n', 'latin1'),
      randomBytesFrom(rand, 1024),
    ];
    stack.openai.next({ raw: pieces });
    const s = await postStream(stack.gw, chat(OPENAI_MODEL));
    assert.equal(s.status, 200);
    assert.ok(!s.broken, `the response ended cleanly (${s.broken?.message})`);
    const all = Buffer.concat(pieces);
    assert.ok(s.bytes.subarray(0, all.length).equals(all), `the bytes are relayed as is (${s.bytes.length} vs ${all.length})`);
    assertNoDoneFrame(s.bytes.subarray(all.length).toString('latin1'), 'garbage');

    // The SDK: whatever it makes of the garbage, the iteration ends.
    reset();
    stack.openai.next({ raw: pieces });
    await sdkStream(stack.client, chat(OPENAI_MODEL));
    await assertStillServes(stack, 'garbage SSE on the OpenAI path');
  });

  // ---- 4. truncated SSE ----

  it('Claude: half an event then a clean close is an error frame upstream_disconnected, no [DONE]', { timeout: T(30000) }, async () => {
    reset();
    const { events } = makeEvents(chat(CLAUDE_MODEL));
    const whole = events.slice(0, 4).map(sseFrame).join(''); // message_start, block start, ping, first delta
    const half = sseFrame(events[4]).slice(0, 30);
    stack.anthropic.next({ raw: [whole, half], end: 'end' });
    const s = await postStream(stack.gw, chat(CLAUDE_MODEL));
    assertErrorFrame(s, { code: 'upstream_disconnected' });
    const chunks = s.data.slice(0, -1).map((d) => JSON.parse(d));
    assert.equal(chunks[0].choices[0].delta.role, 'assistant');
    assert.equal(chunks.map((c) => c.choices[0]?.delta?.content ?? '').join(''), events[3].data.delta.text, 'the complete delta was relayed');

    // A clean close right after a complete event but before message_stop: the same.
    reset();
    stack.anthropic.next({ raw: [whole], end: 'end' });
    const s2 = await postStream(stack.gw, chat(CLAUDE_MODEL));
    assertErrorFrame(s2, { code: 'upstream_disconnected' }, 'no message_stop');
    await assertStillServes(stack, 'a truncated Claude stream');
  });

  it('OpenAI: half an event then a clean close: relayed as is, then an error frame upstream_disconnected', { timeout: T(30000) }, async () => {
    reset();
    const chunks = makeStreamChunks(chat(OPENAI_MODEL));
    const raw = [`data: ${JSON.stringify(chunks[0])}\n\n`, `data: ${JSON.stringify(chunks[1])}`.slice(0, 40)];
    stack.openai.next({ raw, end: 'end' });
    const s = await postStream(stack.gw, chat(OPENAI_MODEL));
    assert.equal(s.status, 200);
    assert.ok(s.text.startsWith(raw.join('')), 'relayed as is');
    assertNoDoneFrame(s.text.slice(raw.join('').length), 'half an event');

    // [DONE] split across two upstream writes is seen: no error frame.
    reset();
    const whole = [`data: ${JSON.stringify(chunks[0])}\n\ndata: [DO`, 'NE]\n\n'];
    stack.openai.next({ raw: whole, intervalMs: 50, end: 'end' });
    const s2 = await postStream(stack.gw, chat(OPENAI_MODEL));
    assert.equal(s2.text, whole.join(''));

    // A stream that ends with its finish_reason but without [DONE] (some compatible servers do) is
    // complete: no error frame, also when the marker is split across writes.
    reset();
    const last = chunks.find((c) => c.choices[0]?.finish_reason);
    const text = `data: ${JSON.stringify(chunks[0])}\n\ndata: ${JSON.stringify(last)}\n\n`;
    const at = text.indexOf('"finish_reason":"') + 5;
    const noDone = [text.slice(0, at), text.slice(at)];
    stack.openai.next({ raw: noDone, intervalMs: 50, end: 'end' });
    const s3 = await postStream(stack.gw, chat(OPENAI_MODEL));
    assert.equal(s3.text, text, 'relayed as is, nothing appended');
    await assertStillServes(stack, 'a truncated OpenAI stream');
  });

  // ---- 6. non-JSON bodies ----

  it('Claude: a 200 with a non-JSON body is a 502 upstream_protocol_error', { timeout: T(30000) }, async () => {
    reset();
    stack.anthropic.next({ status: 200, rawBody: '<html><body>Welcome to nginx!</body></html>', contentType: 'text/html' });
    assertError(await post(stack.gw, chat(CLAUDE_MODEL)), 502, { type: 'api_error', code: 'upstream_protocol_error' });
    reset();
    stack.anthropic.next({ status: 200, rawBody: '{"truncated": ', contentType: 'application/json' });
    assertError(await post(stack.gw, chat(CLAUDE_MODEL)), 502, { type: 'api_error', code: 'upstream_protocol_error' });
    await assertStillServes(stack, 'a non-JSON 200 from Anthropic');
  });

  it('OpenAI: a 200 that is not a JSON object (HTML, truncated, empty), or a redirect, is a 502, streamed or not', { timeout: T(30000) }, async () => {
    const bodies = [
      ['<html><body>Welcome to nginx!</body></html>', 'text/html'],
      ['{"truncated": ', 'application/json'],
      ['', 'application/json'],
    ];
    for (const stream of [false, true]) {
      for (const [rawBody, contentType] of bodies) {
        reset();
        stack.openai.next({ status: 200, rawBody, contentType });
        assertError(await post(stack.gw, chat(OPENAI_MODEL, { stream })), 502, { type: 'api_error', code: 'upstream_protocol_error' }, `${rawBody} stream=${stream}`);
      }
      reset();
      stack.openai.next({ status: 302, rawBody: '', contentType: 'text/html', headers: { location: 'http://127.0.0.1:9/elsewhere' } });
      assertError(await post(stack.gw, chat(OPENAI_MODEL, { stream })), 502, { type: 'api_error', code: 'upstream_error' }, `302 stream=${stream}`);
    }
    await assertStillServes(stack, 'a non-JSON 200 from OpenAI');
  });

  for (const [label, model, fake] of [
    ['OpenAI', OPENAI_MODEL, 'openai'],
    ['Claude', CLAUDE_MODEL, 'anthropic'],
  ]) {
    it(`${label}: a 500 text/html keeps the status, with an OpenAI JSON error upstream_error`, { timeout: T(30000) }, async () => {
      reset();
      stack[fake].next({ status: 500, rawBody: HTML_500, contentType: 'text/html' });
      const r = await post(stack.gw, chat(model));
      assertError(r, 500, { type: 'api_error', code: 'upstream_error' });

      reset();
      stack[fake].next({ status: 500, rawBody: HTML_500, contentType: 'text/html' });
      const s = await post(stack.gw, chat(model, { stream: true }));
      assertError(s, 500, { type: 'api_error', code: 'upstream_error' }, 'streamed');
      await assertStillServes(stack, `a ${label} 500 text/html`);
    });
  }

  it('exits 0 on SIGTERM and never logs a secret', { timeout: T(20000) }, async () => {
    await assertCleanExit(stack.gw);
  });
});

// Hostile clients against a gateway with server.timeouts.read_ms: 1500: absurd JSON (deep nesting,
// invalid UTF-8, 200,000 messages), slow-loris headers and bodies, garbage bytes, and 50 pipelined
// requests in one write; clients that reset (RST) their connection mid-request. The gateway answers
// each with the right 4xx (or closes), never crashes, frees what each connection held, and keeps
// serving everyone else meanwhile.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { makeCompletion } from '../e2e/lib/fake-openai.mjs';
import { T, UNDER_VALGRIND, sleep } from '../e2e/lib/gateway.mjs';
import {
  GATEWAY_KEY,
  OPENAI_MODEL,
  CLAUDE_MODEL,
  startStack,
  chat,
  post,
  assertError,
  assertAlive,
  assertStillServes,
  assertCleanExit,
  rawExchange,
  parseResponses,
  prng,
  randomBytesFrom,
} from './lib/faults.mjs';

const READ_MS = T(1500);

function hasStrace() {
  return spawnSync('strace', ['-V'], { stdio: 'ignore' }).status === 0;
}
// How long after the read deadline a slow client must be gone at the latest.
const SLACK_MS = T(2500);

function rawPost(body, extraHeaders = '') {
  const b = Buffer.isBuffer(body) ? body : Buffer.from(body);
  return Buffer.concat([
    Buffer.from(
      `POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${GATEWAY_KEY}\r\n` +
        `Content-Type: application/json\r\nContent-Length: ${b.length}\r\n${extraHeaders}\r\n`,
    ),
    b,
  ]);
}

describe('hostile clients', { timeout: T(300000) }, () => {
  let stack;

  before(async () => {
    stack = await startStack({ prefix: 'prism-faults-hostile-', overrides: { server: { timeouts: { read_ms: READ_MS } } } });
  });

  after(async () => {
    if (stack) await stack.close();
  });

  function reset() {
    stack.openai.reset();
    stack.anthropic.reset();
  }

  // ---- absurd JSON ----

  it('JSON nested 10,000 deep: 400 invalid_json, no crash', { timeout: T(30000) }, async () => {
    reset();
    const bodies = [
      '['.repeat(10000) + ']'.repeat(10000),
      '{"a":'.repeat(10000) + '1' + '}'.repeat(10000),
      `{"model":"${OPENAI_MODEL}","messages":[{"role":"user","content":"hi"}],"metadata":` + '['.repeat(10000) + ']'.repeat(10000) + '}',
      `{"model":"${CLAUDE_MODEL}","messages":[{"role":"user","content":` + '{"x":'.repeat(10000) + '1' + '}'.repeat(10000) + '}]}',
      '['.repeat(100000), // unterminated, 100,000 deep
    ];
    for (const b of bodies) {
      const r = await post(stack.gw, b);
      assertError(r, 400, { type: 'invalid_request_error', code: 'invalid_json' }, b.slice(0, 40));
    }
    assert.equal(stack.openai.requests.length + stack.anthropic.requests.length, 0, 'nothing went upstream');
    assertAlive(stack.gw, 'deep JSON');
    await assertStillServes(stack, 'deeply nested JSON');
  });

  it('invalid UTF-8 inside a JSON string: 400 invalid_utf8', { timeout: T(30000) }, async () => {
    reset();
    const bad = [
      Buffer.from([0xff, 0xfe]), // never valid
      Buffer.from([0xc0, 0xaf]), // overlong "/"
      Buffer.from([0xed, 0xa0, 0x80]), // a UTF-16 surrogate
      Buffer.from([0xe2, 0x82]), // truncated sequence
      Buffer.from([0xf4, 0x90, 0x80, 0x80]), // above U+10FFFF
    ];
    for (const model of [OPENAI_MODEL, CLAUDE_MODEL]) {
      for (const seq of bad) {
        const body = Buffer.concat([Buffer.from(`{"model":"${model}","messages":[{"role":"user","content":"bad `), seq, Buffer.from(' here"}]}')]);
        const r = await post(stack.gw, body);
        assertError(r, 400, { type: 'invalid_request_error', code: 'invalid_utf8' }, `${model} ${seq.toString('hex')}`);
      }
    }
    assert.equal(stack.openai.requests.length + stack.anthropic.requests.length, 0, 'nothing went upstream');
    // Valid multi-byte UTF-8 still passes.
    const ok = await post(stack.gw, chat(OPENAI_MODEL, { messages: [{ role: 'user', content: 'héllo ✓ 𝄞' }] }));
    assert.equal(ok.status, 200, ok.text.slice(0, 300));
    assert.equal(stack.openai.last().body.messages[0].content, 'héllo ✓ 𝄞');
    await assertStillServes(stack, 'invalid UTF-8');
  });

  it('200,000 messages (under 10 MB): 400 too_many_messages', { timeout: T(60000) }, async () => {
    reset();
    for (const model of [OPENAI_MODEL, CLAUDE_MODEL]) {
      const one = '{"role":"user","content":"x"}';
      const body = `{"model":"${model}","messages":[` + Array(200000).fill(one).join(',') + ']}';
      assert.ok(body.length < 10 * 1024 * 1024, 'the body fits under max_body_bytes');
      const r = await post(stack.gw, body, { ms: T(20000) });
      assertError(r, 400, { type: 'invalid_request_error', code: 'too_many_messages' }, model);
    }
    assert.equal(stack.openai.requests.length + stack.anthropic.requests.length, 0, 'nothing went upstream');
    await assertStillServes(stack, '200,000 messages');
  });

  it('the message limit is 10,000: 10,000 pass, 10,001 are refused', { timeout: T(30000) }, async () => {
    reset();
    const many = (n) => Array.from({ length: n }, (_, i) => ({ role: i % 2 ? 'assistant' : 'user', content: 'x' }));
    const ok = await post(stack.gw, chat(OPENAI_MODEL, { messages: many(10000) }));
    assert.equal(ok.status, 200, ok.text.slice(0, 300));
    const r = await post(stack.gw, chat(OPENAI_MODEL, { messages: many(10001) }));
    assertError(r, 400, { type: 'invalid_request_error', code: 'too_many_messages' });
  });

  // ---- slow clients ----

  /** Meanwhile-probe: a normal request answered while a slow client hangs on. */
  async function probeMeanwhile(what) {
    const t0 = Date.now();
    const r = await post(stack.gw, chat(OPENAI_MODEL), { ms: T(3000) });
    assert.equal(r.status, 200, `${what}: others are served meanwhile (${r.text.slice(0, 200)})`);
    return Date.now() - t0;
  }

  it('slow-loris headers (1 byte per 500 ms): closed by the read timeout; others are served meanwhile', { timeout: T(40000) }, async () => {
    reset();
    const head = `POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${GATEWAY_KEY}\r\nContent-Type: application/json\r\nX-Slow: ${'s'.repeat(40)}\r\n\r\n`;
    const bytes = [...Buffer.from(head)].map((b) => Buffer.from([b]));
    const loris = rawExchange(stack.gw.port, bytes, { gapMs: 500, ms: READ_MS + SLACK_MS + T(5000) });
    await sleep(Math.min(700, READ_MS / 2));
    const ms = await probeMeanwhile('slow-loris headers');
    assert.ok(ms < T(1500), `a normal request took ${ms} ms while the slow client was connected`);
    const out = await loris;
    assert.ok(out.closed, `the server closed the connection (${out.writesDone}/${bytes.length} bytes sent, timed out: ${out.timedOut})`);
    assert.ok(out.closedAfter <= READ_MS + SLACK_MS, `closed after ${out.closedAfter} ms (read_ms ${READ_MS})`);
    assert.ok(out.writesDone < bytes.length, 'closed before the headers were complete');
    const txt = out.data.toString('latin1');
    assert.ok(txt === '' || /^HTTP\/1\.[01] 4\d\d /.test(txt), `a 4xx or nothing: ${txt.slice(0, 200)}`);
    assert.equal(stack.openai.requests.length, 1, 'only the probe went upstream');
    await assertStillServes(stack, 'slow-loris headers');
  });

  it('a body trickled slowly past read_ms: the connection is closed, nothing goes upstream', { timeout: T(40000) }, async () => {
    reset();
    const body = Buffer.from(JSON.stringify(chat(OPENAI_MODEL)));
    const req = rawPost(body);
    const headLen = req.indexOf('\r\n\r\n') + 4;
    const pieces = [req.subarray(0, headLen), ...[...req.subarray(headLen)].map((b) => Buffer.from([b]))];
    const slow = rawExchange(stack.gw.port, pieces, { gapMs: 300, ms: READ_MS + SLACK_MS + T(5000) });
    await sleep(Math.min(700, READ_MS / 2));
    await probeMeanwhile('slow body');
    const out = await slow;
    assert.ok(out.closed, `the server closed the connection (${out.writesDone}/${pieces.length} writes, timed out: ${out.timedOut})`);
    assert.ok(out.closedAfter <= READ_MS + SLACK_MS, `closed after ${out.closedAfter} ms (read_ms ${READ_MS})`);
    assert.ok(out.writesDone < pieces.length, 'closed before the body was complete');
    const txt = out.data.toString('latin1');
    assert.ok(txt === '' || /^HTTP\/1\.[01] 4\d\d /.test(txt), `a 4xx or nothing: ${txt.slice(0, 200)}`);
    assert.equal(stack.openai.requests.length, 1, 'only the probe went upstream');
    await assertStillServes(stack, 'a slow body');
  });

  // ---- garbage ----

  function garbageInputs() {
    const rand = prng(0x5eed1234);
    const pick = (arr) => arr[Math.floor(rand() * arr.length)];
    const out = [];
    for (let i = 0; i < 40; i++) out.push(randomBytesFrom(rand, 1 + Math.floor(rand() * 3000)));
    for (let i = 0; i < 20; i++) out.push(Buffer.concat([randomBytesFrom(rand, 1 + Math.floor(rand() * 500)), Buffer.from('\r\n\r\n')]));
    for (let i = 0; i < 10; i++) {
      const line = Buffer.from(`${pick(['GET', 'POST', 'PUT'])} /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nX-A: a\r\n\r\n`);
      const at = Math.floor(rand() * (line.length - 4));
      line[at] = 0; // a NUL somewhere in the request line or a header
      out.push(line);
    }
    for (let i = 0; i < 5; i++) out.push(Buffer.from(`GET /${'a'.repeat(100000 + i * 1000)} HTTP/1.1\r\nHost: x\r\n\r\n`));
    for (let i = 0; i < 5; i++) out.push(Buffer.from(`GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ${'b'.repeat(100000)}\r\n\r\n`));
    const weird = [
      'GET\r\n\r\n',
      ' / HTTP/1.1\r\n\r\n',
      'GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n',
      'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n',
      'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n',
      'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\nabcde',
      'GET / HTTP/1.1\r\nHost: x\r\n: empty-name\r\n\r\n',
      'GET / HTTP/1.1\r\nHost: x\r\nBad Header: spaces\r\n\r\n',
      'GET / HTTP/1.1\nHost: x\n\n\x00\x00\x00',
      '\r\n\r\n\r\n\r\n',
      'GET / HTTP/1.1\r\n' + 'X: y\r\n'.repeat(2000) + '\r\n',
      'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00garbage',
      'GET /%00%ff%fe HTTP/1.1\r\nHost: x\r\n\r\n',
      'GET / HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \x01\x02\x03\r\n\r\n',
      'OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n',
      'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\nabc\r\n',
      'GET / HTTP/1.1\r\nHost: x\r\n\tfolded: header\r\n\r\n',
      'GET / HTTP/9.9\r\nHost: x\r\n\r\n',
      '\xff\xfe\xfd HTTP/1.1\r\n\r\n',
      'GET /v1/models HTTP/1.1\r\nHost: x\r\nAuthorization: ' + 'Bearer '.repeat(1000) + '\r\n\r\n',
    ];
    for (const w of weird) out.push(Buffer.from(w, 'latin1'));
    return out;
  }

  it('100 garbage byte strings: each gets a 4xx or a close, never a crash', { timeout: T(120000) }, async () => {
    reset();
    const inputs = garbageInputs();
    assert.equal(inputs.length, 100);
    const bad = [];
    for (let i = 0; i < inputs.length; i += 20) {
      const batch = inputs.slice(i, i + 20);
      const outs = await Promise.all(batch.map((b) => rawExchange(stack.gw.port, b, { ms: READ_MS + SLACK_MS })));
      outs.forEach((o, j) => {
        const txt = o.data.toString('latin1');
        const m = /^HTTP\/1\.[01] (\d{3}) /.exec(txt);
        const status = m ? Number(m[1]) : null;
        // The HTTP/2 preface is answered in HTTP/2 (SETTINGS ... GOAWAY), then closed.
        const h2 = batch[j].subarray(0, 14).toString('latin1') === 'PRI * HTTP/2.0' && o.data.length >= 9 && o.data[3] === 4 && o.closed;
        const fine = h2 || (txt === '' && (o.closed || o.timedOut)) || (status !== null && status >= 400 && status < 500);
        if (!fine || o.timedOut) bad.push({ i: i + j, input: batch[j].subarray(0, 60).toString('latin1'), got: txt.slice(0, 120), closed: o.closed, timedOut: o.timedOut });
      });
      assertAlive(stack.gw, `after garbage batch ${i / 20}`);
      const h = await fetch(stack.gw.url('/health'), { signal: AbortSignal.timeout(T(3000)) });
      assert.equal(h.status, 200, 'GET /health between batches');
    }
    assert.deepEqual(bad, [], 'every garbage input got a 4xx or a close within read_ms');
    assert.equal(stack.openai.requests.length + stack.anthropic.requests.length, 0, 'nothing went upstream');
    await assertStillServes(stack, 'garbage');
  });

  // ---- pipelining ----

  it('50 pipelined requests in one write: 50 answers, in order', { timeout: T(30000) }, async () => {
    reset();
    // The fake echoes the user message, so every chat answer says which request it belongs to.
    stack.openai.always((req, res, record) => {
      const text = JSON.stringify(makeCompletion(record.body, { content: `echo:${record.body.messages[0].content}` }));
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    });
    const models = ['gpt-4o', 'gpt-4o-mini', 'gpt-4.1', CLAUDE_MODEL, 'o3-mini'];
    const expected = [];
    const parts = [];
    for (let i = 0; i < 50; i++) {
      const last = i === 49 ? 'Connection: close\r\n' : '';
      if (i % 3 === 0) {
        parts.push(rawPost(JSON.stringify(chat(OPENAI_MODEL, { messages: [{ role: 'user', content: `req-${i}` }] })), last));
        expected.push((r) => JSON.parse(r.body).choices[0].message.content === `echo:req-${i}`);
      } else if (i % 3 === 1) {
        const id = models[i % models.length];
        parts.push(Buffer.from(`GET /v1/models/${id} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${GATEWAY_KEY}\r\n${last}\r\n`));
        expected.push((r) => JSON.parse(r.body).id === id);
      } else {
        parts.push(Buffer.from(`GET /health?n=${i} HTTP/1.1\r\nHost: 127.0.0.1\r\n${last}\r\n`));
        expected.push((r) => JSON.parse(r.body).status === 'ok');
      }
    }
    const out = await rawExchange(stack.gw.port, Buffer.concat(parts), { ms: T(15000) });
    stack.openai.always(null);
    assert.ok(out.closed, 'the server closed after the last request (Connection: close)');
    const responses = parseResponses(out.data);
    assert.equal(responses.length, 50, `50 answers (got ${responses.length})`);
    responses.forEach((r, i) => {
      assert.equal(r.status, 200, `answer ${i}: ${r.body.slice(0, 200)}`);
      assert.ok(expected[i](r), `answer ${i} belongs to request ${i}: ${r.body.slice(0, 200)}`);
    });
    assert.deepEqual(
      stack.openai.requests.map((r) => r.body.messages[0].content),
      Array.from({ length: 17 }, (_, k) => `req-${k * 3}`),
      'the chat requests reached the upstream in order',
    );
  });

  // ---- connections reset by the client ----

  /** Socket descriptors the gateway holds whose TCP connection is gone (closed sockets the kernel no
   * longer lists in /proc/net/tcp*): a connection h2o never closed. */
  function orphanSockets(pid) {
    const listed = new Set();
    for (const f of ['/proc/net/tcp', '/proc/net/tcp6', '/proc/net/unix']) {
      for (const line of fs.readFileSync(f, 'utf8').split('\n').slice(1)) {
        const cols = line.trim().split(/\s+/);
        if (cols.length > 9) listed.add(f.endsWith('unix') ? cols[6] : cols[9]);
      }
    }
    let n = 0;
    for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
      let target;
      try {
        target = fs.readlinkSync(`/proc/${pid}/fd/${fd}`);
      } catch {
        continue;
      }
      const m = /^socket:\[(\d+)\]$/.exec(target);
      if (m && !listed.has(m[1])) n++;
    }
    return n;
  }

  async function inFlight() {
    const text = await (await fetch(stack.gw.url('/metrics'), { headers: { authorization: `Bearer ${GATEWAY_KEY}` } })).text();
    return Number(/^prism_requests_in_flight (\d+)/m.exec(text)[1]);
  }

  /** Sends `body` on a fresh connection, waits for `until` (first response byte, or a delay), then resets.
   * Its x-request-id is `id`, so its access line can be told from any other. */
  async function resetAfter(body, until, id) {
    const s = net.connect(stack.gw.port, '127.0.0.1');
    s.on('error', () => {});
    await new Promise((r) => s.on('connect', r));
    const firstByte = new Promise((r) => s.once('data', r));
    s.write(rawPost(JSON.stringify(body), `X-Request-Id: ${id}\r\n`));
    await Promise.race([until === 'first-byte' ? firstByte : sleep(until), sleep(T(5000))]);
    s.resetAndDestroy();
  }

  it('clients that reset (RST) mid-stream or while the upstream thinks: every request ends, no socket is left', { timeout: T(60000) }, async () => {
    reset();
    const orphansBefore = orphanSockets(stack.gw.pid);
    const resetLines = () => stack.gw.stderr().split('\n').filter((l) => l.includes('"source":"access"') && l.includes('"request_id":"rst-')).length;
    stack.openai.always({ streamChunks: Array.from({ length: 200 }, (_, i) => `p${i} `), intervalMs: 10 });
    const N = 20;
    await Promise.all(Array.from({ length: N }, (_, i) => resetAfter(chat(OPENAI_MODEL, { stream: true }), 'first-byte', `rst-a${i}`)));
    stack.openai.always({ content: 'late', delayMs: T(1500) });
    await Promise.all(Array.from({ length: N }, (_, i) => resetAfter(chat(OPENAI_MODEL), T(200), `rst-b${i}`)));
    stack.anthropic.always({ gate: new Promise(() => {}), gateAfter: 1 });
    await Promise.all(Array.from({ length: N }, (_, i) => resetAfter(chat(CLAUDE_MODEL, { stream: true }), 'first-byte', `rst-c${i}`)));
    stack.openai.always(null);
    stack.anthropic.always(null);
    let flight;
    for (let i = 0; i < 50 && (flight = await inFlight()) > 1; i++) await sleep(100);
    assert.equal(flight, 1, 'only the /metrics request itself is in flight');
    let lines;
    for (let i = 0; i < 50 && (lines = resetLines()) < 3 * N; i++) await sleep(100);
    assert.equal(lines, 3 * N, 'one access line per reset request');
    assert.equal(orphanSockets(stack.gw.pid), orphansBefore, 'every reset connection was closed');
    await assertStillServes(stack, 'resets');
  });

  it('a client that half-closes (FIN) while a write to it is in flight, then reads on: the stream ends, nothing is left', { timeout: T(60000) }, async () => {
    reset();
    const orphansBefore = orphanSockets(stack.gw.pid);
    // A stream big enough (13 MB) to fill the socket buffers of a paused reader, so that a write to
    // it is in flight when its FIN arrives; that write then completes once it reads on.
    stack.openai.always({ streamChunks: Array.from({ length: 200 }, (_, i) => `${i}:${'x'.repeat(65536)}`), intervalMs: 2 });
    const N = 3;
    const outcomes = await Promise.all(
      Array.from({ length: N }, (_, i) =>
        new Promise((resolve) => {
          const s = net.connect({ port: stack.gw.port, host: '127.0.0.1', allowHalfOpen: true });
          let bytes = 0;
          const timer = setTimeout(() => {
            s.destroy();
            resolve({ closed: false, bytes });
          }, T(15000));
          s.on('error', () => {});
          s.on('connect', () => s.write(rawPost(JSON.stringify(chat(OPENAI_MODEL, { stream: true })), `X-Request-Id: fin-${i}\r\n`)));
          s.once('data', () => {
            s.pause(); // let the gateway's writes back up
            setTimeout(() => {
              s.end(); // FIN, and keep reading what is in flight
              s.resume();
            }, T(500));
          });
          s.on('data', (d) => (bytes += d.length));
          s.on('close', () => {
            clearTimeout(timer);
            resolve({ closed: true, bytes });
          });
        }),
      ),
    );
    stack.openai.always(null);
    for (const o of outcomes) assert.ok(o.closed, `the gateway closed the half-closed connection (read ${o.bytes} bytes)`);
    let flight;
    for (let i = 0; i < 50 && (flight = await inFlight()) > 1; i++) await sleep(100);
    assert.equal(flight, 1, 'nothing left in flight');
    assert.equal(orphanSockets(stack.gw.pid), orphansBefore, 'no socket left');
    await assertStillServes(stack, 'half-closed clients');
  });

  // ---- bytes and closes while a request is answered ----

  /** CPU time (user + system, in clock ticks of 1/100 s) the gateway process has used. */
  function cpuTicks(pid) {
    const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return Number(f[11]) + Number(f[12]); // utime, stime (fields 14 and 15)
  }

  it('a request sent while the previous one is answered waits for it; a FIN meanwhile ends the request; no busy loop', { timeout: T(30000) }, async () => {
    reset();
    const delay = T(1000);
    // The fake takes `delay` to answer and echoes the user message.
    stack.openai.always((req, res, record) => {
      setTimeout(() => {
        const text = JSON.stringify(makeCompletion(record.body, { content: `echo:${record.body.messages[0].content}` }));
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
        res.end(text);
      }, delay);
    });
    const body = (content) => JSON.stringify(chat(OPENAI_MODEL, { messages: [{ role: 'user', content }] }));
    const ticks0 = cpuTicks(stack.gw.pid);
    // One client sends each of three requests in a write of its own, 300 ms apart, while the first is
    // upstream: the second is read by the watch for a gone client, the third arrives once reading has
    // stopped again and must wait, unread, until the second is answered. Another client half-closes
    // (FIN) right after its request.
    const reqs = [rawPost(body('first')), rawPost(body('second')), rawPost(body('third'), 'Connection: close\r\n')];
    const [three, fin] = await Promise.all([
      rawExchange(stack.gw.port, reqs, { gapMs: T(300), ms: T(15000) }),
      rawExchange(stack.gw.port, rawPost(body('half-closed')), { endAfterWrite: true, ms: T(15000) }),
    ]);
    const ticks = cpuTicks(stack.gw.pid) - ticks0;
    stack.openai.always(null);
    const answers = parseResponses(three.data);
    assert.ok(three.closed, 'closed after the third answer (Connection: close)');
    assert.deepEqual(
      answers.map((r) => [r.status, JSON.parse(r.body).choices[0].message.content]),
      [
        [200, 'echo:first'],
        [200, 'echo:second'],
        [200, 'echo:third'],
      ],
    );
    // A FIN while the upstream thinks is a client that left (as for nginx, 499): it is seen once the
    // gateway watches the connection, whether it came before or after the watch began.
    const finAnswers = parseResponses(fin.data);
    assert.ok(fin.closed, 'the half-closed connection was closed');
    assert.equal(finAnswers.length, 1, fin.data.toString());
    assert.equal(finAnswers[0].status, 499);
    assert.equal(JSON.parse(finAnswers[0].body).error.code, 'client_closed_request');
    // Waiting on a socket with bytes (or a FIN) pending must not spin: the third request waited
    // unread for most of a delay, which a loop polling its bytes would have burnt; answering the
    // four requests takes a few milliseconds.
    assert.ok(ticks * 10 < delay / (UNDER_VALGRIND ? 4 : 10), `the gateway used ${ticks * 10} ms of CPU over ${3 * delay} ms of waiting`);
    await assertStillServes(stack, 'requests sent during an answer');
  });

  it('a keep-alive connection costs no epoll_ctl per request', { timeout: T(60000), skip: UNDER_VALGRIND || !hasStrace() }, async () => {
    reset();
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const one = () =>
      new Promise((resolve, reject) => {
        const data = JSON.stringify(chat(OPENAI_MODEL));
        const req = http.request(
          { host: '127.0.0.1', port: stack.gw.port, path: '/v1/chat/completions', method: 'POST', agent, headers: { 'content-type': 'application/json', authorization: `Bearer ${GATEWAY_KEY}`, 'content-length': Buffer.byteLength(data) } },
          (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode));
          },
        );
        req.on('error', reject);
        req.end(data);
      });
    for (let i = 0; i < 5; i++) assert.equal(await one(), 200); // the connections are open and warm
    const out = path.join(os.tmpdir(), `prism-epoll-${process.pid}.txt`);
    const strace = spawn('strace', ['-f', '-c', '-e', 'trace=epoll_ctl', '-o', out, '-p', String(stack.gw.pid)], { stdio: ['ignore', 'ignore', 'pipe'] });
    let attached = '';
    strace.stderr.on('data', (d) => (attached += d));
    for (let i = 0; i < 100 && !/attached/.test(attached); i++) await sleep(50);
    assert.match(attached, /attached/, 'strace attached');
    const N = 200;
    for (let i = 0; i < N; i++) assert.equal(await one(), 200);
    agent.destroy();
    const exited = new Promise((r) => strace.on('exit', r));
    strace.kill('SIGINT');
    await exited;
    // strace -c: "% time  seconds  usecs/call  calls  [errors]  syscall"
    const row = fs.readFileSync(out, 'utf8').split('\n').find((l) => / epoll_ctl$/.test(l));
    fs.rmSync(out, { force: true });
    const cols = row ? row.trim().split(/\s+/) : [];
    const calls = row ? Number(cols[3]) : 0;
    const failed = cols.length === 6 ? Number(cols[4]) : 0;
    // Stopping and restarting the client's reads around each request used to re-register the socket
    // (an EPOLL_CTL_ADD failing with EEXIST, then an EPOLL_CTL_MOD), and each response's write callback
    // to modify it once more: three calls per request, for a registration that never changed.
    assert.ok(calls <= N * 0.1, `${calls} epoll_ctl calls for ${N} requests`);
    assert.ok(failed <= N * 0.05, `${failed} of them failed`);
  });

  it('exits 0 on SIGTERM and never logs a secret', { timeout: T(20000) }, async () => {
    await assertCleanExit(stack.gw);
  });
});

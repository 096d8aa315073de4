// Back-pressure end to end: the upstream pushes 30 MB of SSE as fast as it can while the client reads
// nothing for a while. The gateway must pause the upstream (the fake's res.write() returns false and
// its 'drain' waits) instead of buffering: its RSS stays under 60 MB above idle. Then the client
// resumes and receives every byte, in order.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { T, TIME_FACTOR, sleep } from '../e2e/lib/gateway.mjs';
import {
  GATEWAY_KEY,
  OPENAI_MODEL,
  startStack,
  chat,
  sseData,
  rssBytes,
  assertStillServes,
  assertCleanExit,
} from './lib/faults.mjs';

const TOTAL_BYTES = 30 * 1024 * 1024;
const RSS_BUDGET = 60 * 1024 * 1024;
const PAUSE_MS = 3000 * Math.min(TIME_FACTOR, 2);

function eventFor(seq) {
  const pad = 'p'.repeat(900);
  const chunk = {
    id: 'chatcmpl-bp',
    object: 'chat.completion.chunk',
    created: 0,
    model: OPENAI_MODEL,
    choices: [{ index: 0, delta: { content: `${seq}:${pad}|` }, logprobs: null, finish_reason: null }],
  };
  return `data: ${JSON.stringify(chunk)}\n\n`;
}

describe('back-pressure: a slow reader of a 30 MB stream', { timeout: T(240000) }, () => {
  let stack;

  before(async () => {
    stack = await startStack({ prefix: 'prism-faults-bp-' });
  });

  after(async () => {
    if (stack) await stack.close();
  });

  it('the gateway pauses the upstream instead of buffering, then delivers everything in order', { timeout: T(180000) }, async (t) => {
    // Warm up (connection pools, first allocations), then take the idle RSS.
    await assertStillServes(stack, 'the warm-up');
    await sleep(200);
    const idle = rssBytes(stack.gw.pid);
    assert.ok(idle, 'VmRSS of the gateway is readable');

    const fakeStats = { bytes: 0, events: 0, writesFalse: 0, maxDrainWaitMs: 0, done: false, doneAt: null };
    stack.openai.reset();
    stack.openai.next(async (req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' });
      res.flushHeaders();
      let gone = false;
      const closed = new Promise((r) => res.on('close', () => r((gone = true))));
      let seq = 0;
      while (fakeStats.bytes < TOTAL_BYTES && !gone) {
        let batch = '';
        while (batch.length < 64 * 1024) batch += eventFor(seq++);
        fakeStats.bytes += batch.length;
        fakeStats.events = seq;
        if (!res.write(batch)) {
          fakeStats.writesFalse++;
          const t0 = Date.now();
          await Promise.race([new Promise((r) => res.once('drain', r)), closed]);
          fakeStats.maxDrainWaitMs = Math.max(fakeStats.maxDrainWaitMs, Date.now() - t0);
        }
      }
      if (!gone) {
        res.end('data: [DONE]\n\n');
        fakeStats.done = true;
        fakeStats.doneAt = Date.now();
      }
    });

    const body = JSON.stringify(chat(OPENAI_MODEL, { stream: true }));
    const req = http.request(stack.gw.url('/v1/chat/completions'), {
      method: 'POST',
      agent: false,
      headers: { authorization: `Bearer ${GATEWAY_KEY}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
    });
    t.after(() => req.destroy());
    const res = await new Promise((resolve, reject) => {
      req.on('response', resolve);
      req.on('error', reject);
      req.end(body);
    });
    assert.equal(res.statusCode, 200);

    // Read nothing (beyond what is already in flight) for PAUSE_MS, watching the gateway's RSS.
    res.pause();
    const parts = [];
    res.on('data', (d) => parts.push(d));
    res.pause();
    let maxRss = idle;
    const pauseEnd = Date.now() + PAUSE_MS;
    let writtenHalfway = null;
    while (Date.now() < pauseEnd) {
      maxRss = Math.max(maxRss, rssBytes(stack.gw.pid) ?? 0);
      if (writtenHalfway === null && Date.now() >= pauseEnd - PAUSE_MS / 2) writtenHalfway = fakeStats.bytes;
      await sleep(50);
    }
    const sentDuringPause = fakeStats.bytes;
    const growth = maxRss - idle;
    t.diagnostic(
      `idle RSS ${(idle / 1048576).toFixed(1)} MB, max while paused ${(maxRss / 1048576).toFixed(1)} MB; ` +
        `the fake had written ${(sentDuringPause / 1048576).toFixed(1)} MB (write() false ${fakeStats.writesFalse} times)`,
    );
    assert.ok(growth < RSS_BUDGET, `the gateway's RSS grew by ${(growth / 1048576).toFixed(1)} MB while the client was paused`);
    assert.equal(fakeStats.done, false, 'the upstream could not push all 30 MB while the client read nothing');
    assert.ok(fakeStats.writesFalse > 0, "the fake's res.write() returned false (back-pressure reached the upstream)");
    assert.equal(sentDuringPause, writtenHalfway, 'the upstream wrote nothing during the second half of the pause (it waits on drain)');

    // The drain the fake is waiting on has lasted most of the pause.
    const ended = new Promise((resolve, reject) => {
      res.on('end', resolve);
      res.on('error', reject);
      res.on('aborted', () => reject(new Error('the response was aborted')));
    });
    const resumedAt = Date.now();
    res.resume();
    let timer;
    const limit = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`the stream did not end within ${T(60000)} ms of resuming`)), T(60000));
    });
    try {
      await Promise.race([ended, limit]);
    } finally {
      clearTimeout(timer);
    }
    assert.equal(fakeStats.done, true, 'the upstream finished once the client read again');
    assert.ok(
      fakeStats.maxDrainWaitMs >= Math.min(1000, PAUSE_MS / 3),
      `the fake waited on 'drain' for ${fakeStats.maxDrainWaitMs} ms at most (the client paused ${PAUSE_MS} ms)`,
    );
    t.diagnostic(`resumed -> end: ${Date.now() - resumedAt} ms; longest drain wait of the fake ${fakeStats.maxDrainWaitMs} ms`);

    const text = Buffer.concat(parts).toString('utf8');
    assert.equal(Buffer.byteLength(text), fakeStats.bytes + 'data: [DONE]\n\n'.length, 'every byte arrived');
    const data = sseData(text);
    assert.equal(data.at(-1), '[DONE]');
    assert.equal(data.length - 1, fakeStats.events, 'every event arrived');
    for (let i = 0; i < data.length - 1; i++) {
      const c = JSON.parse(data[i]).choices[0].delta.content;
      if (!c.startsWith(`${i}:`)) assert.fail(`event ${i} is out of order: ${c.slice(0, 20)}`);
    }
    await assertStillServes(stack, 'a 30 MB stream read slowly');
  });

  it('exits 0 on SIGTERM and never logs a secret', { timeout: T(20000) }, async () => {
    await assertCleanExit(stack.gw);
  });
});

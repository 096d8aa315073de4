// A log sink that stops taking writes: the gateway's stderr is a pipe whose reader stops reading (a
// journal or a container runtime that stalled). Serving must not wait on the log: every request is
// still answered while the pipe is full, the lines that did not fit the log writer's bounded buffer
// are dropped and counted, and once the pipe is read again the gateway says how many it dropped and
// logs the next requests as before.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { T, sleep } from '../e2e/lib/gateway.mjs';
import { GATEWAY_KEY, startStack, assertStillServes, assertCleanExit } from './lib/faults.mjs';

// Each answer leaves an access line of ~420 bytes (the path is cut at 256 characters): 8,000 of them
// are ~3.4 MB, more than the pipe (64 KB), Node's read buffer and the writer's two 2 MB buffers hold.
const FLOOD = 8000;
const CONCURRENCY = 32;
const MARK = 'flood-' + 'f'.repeat(300);

async function waitFor(cond, ms, what) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (cond()) return;
    await sleep(20);
  }
  assert.fail(`timed out after ${ms} ms waiting for ${what}`);
}

async function flood(gw, n) {
  const statuses = new Map();
  let next = 0;
  async function lane() {
    while (next < n) {
      next++;
      const r = await fetch(gw.url(`/v1/${MARK}`), {
        method: 'POST',
        headers: { authorization: `Bearer ${GATEWAY_KEY}`, 'content-type': 'application/json' },
        body: '{}',
        signal: AbortSignal.timeout(T(5000)),
      });
      await r.arrayBuffer();
      statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
    }
  }
  await Promise.all(Array.from({ length: CONCURRENCY }, lane));
  return statuses;
}

describe('a log sink that stops taking writes', { timeout: T(180000) }, () => {
  let stack;

  before(async () => {
    stack = await startStack({ prefix: 'prism-faults-logsink-' });
  });

  after(async () => {
    if (stack) await stack.close();
  });

  it('requests are answered while stderr is full; dropped lines are counted and said', { timeout: T(150000) }, async () => {
    const { gw } = stack;
    await assertStillServes(stack, 'before the stall');
    // Stop reading the gateway's stderr: once Node's buffer and the pipe are full, its writes block.
    gw.child.stderr.pause();
    const before = gw.stderr().length;

    const t0 = Date.now();
    const statuses = await flood(gw, FLOOD);
    assert.deepEqual([...statuses.entries()], [[404, FLOOD]], 'every request answered, each with a 404');
    const floodMs = Date.now() - t0;

    // Read again: what was queued comes out, then the notice of what was dropped.
    gw.child.stderr.resume();
    await waitFor(() => /"(\d+) log lines dropped/.test(gw.stderr().slice(before)), T(20000), 'the dropped-lines notice');

    // Only the flood ran during the stall, so every line dropped was one of its lines: each of its
    // requests is accounted for, logged or counted as dropped.
    const id = 'after-the-stall-1';
    const r = await fetch(gw.url('/v1/models'), { headers: { authorization: `Bearer ${GATEWAY_KEY}`, 'x-request-id': id } });
    assert.equal(r.status, 200);
    await r.arrayBuffer();
    await waitFor(() => gw.stderr().includes(`"request_id":"${id}"`), T(5000), 'the access line of a request after the stall');
    const lines = gw.stderr().slice(before).split('\n').filter(Boolean);
    for (const l of lines) JSON.parse(l); // whole lines only, no torn writes
    // The drops may be said in more than one notice (the writer may get a write through meanwhile).
    const notices = lines.filter((l) => / log lines dropped/.test(l));
    const dropped = notices.reduce((sum, l) => sum + Number(/"(\d+) log lines dropped/.exec(l)[1]), 0);
    assert.ok(dropped > 0 && dropped < FLOOD, `dropped ${dropped} of ${FLOOD} lines (flood took ${floodMs} ms): ${notices}`);
    const logged = lines.filter((l) => l.includes(MARK.slice(0, 40))).length;
    assert.equal(logged + dropped, FLOOD, `${logged} flood lines logged + ${dropped} dropped`);

    // /metrics has the same count, for alerts that do not read the log.
    const m = await fetch(gw.url('/metrics'), { headers: { authorization: `Bearer ${GATEWAY_KEY}` } });
    assert.equal(m.status, 200);
    const counter = /^prism_log_lines_dropped_total (\d+)$/m.exec(await m.text());
    assert.ok(counter, 'prism_log_lines_dropped_total is on /metrics');
    assert.equal(Number(counter[1]), dropped, 'the counter equals the notices\' sum');

    await assertStillServes(stack, 'after the stall');
    await assertCleanExit(gw);
  });
});

describe('a log sink that never takes writes again', { timeout: T(120000) }, () => {
  let stack;

  before(async () => {
    stack = await startStack({ prefix: 'prism-faults-logsink-stop-' });
  });

  after(async () => {
    if (stack) await stack.close();
  });

  it('does not hold up the stop: SIGTERM still ends the gateway, with exit code 0', { timeout: T(100000) }, async () => {
    const { gw } = stack;
    gw.child.stderr.pause();
    const statuses = await flood(gw, FLOOD);
    assert.deepEqual([...statuses.entries()], [[404, FLOOD]], 'every request answered, each with a 404');

    // The process's exit, not the pipes' close: nobody reads stderr until the gateway has gone.
    const exited = new Promise((resolve) => gw.child.once('exit', (code, signal) => resolve({ code, signal })));
    const t0 = Date.now();
    gw.child.kill('SIGTERM');
    let timer;
    const res = await Promise.race([exited, new Promise((r) => (timer = setTimeout(() => r(null), T(15000))))]);
    clearTimeout(timer);
    const ms = Date.now() - t0;
    gw.child.stderr.resume();
    assert.ok(res !== null, `the gateway did not exit within ${T(15000)} ms of SIGTERM while its log was stuck`);
    assert.deepEqual(res, { code: 0, signal: null }, `exit after ${ms} ms`);
    await gw.exited;
    // What the log got before the stall is whole, JSON lines.
    for (const l of gw.stderr().split('\n').filter(Boolean)) JSON.parse(l);
  });
});

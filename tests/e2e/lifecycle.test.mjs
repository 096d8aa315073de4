// Process lifecycle: SIGTERM lets requests in flight finish (plain and streamed) while the listener
// closes at once; server.timeouts.shutdown_ms bounds that wait; a non-loopback listen address
// without gateway keys is refused at start-up; and the default worker count follows the CPUs.
import { describe, it, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import fs from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import { spawn } from 'node:child_process';
import { startFakeOpenAI } from './lib/fake-openai.mjs';
import {
  T,
  REPO_CONFIG,
  PRISM_BIN,
  prismEnv,
  UPSTREAM_KEY,
  sleep,
  freePort,
  runPrism,
  describeRun,
  startGateway,
  gatewayEnv,
  stopAndAssertClean,
  sdkClient,
  chatBody,
  scratchDir,
  withDeadline,
} from './lib/gateway.mjs';

/**
 * Opens a fresh TCP connection to 127.0.0.1:port and sends GET /health on it.
 * Resolves {connected, error, data}: what a new client experiences.
 */
function probeNewConnection(port, ms = T(2000)) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    const out = { connected: false, error: null, data: '' };
    const timer = setTimeout(() => {
      out.timedOut = true;
      s.destroy();
    }, ms);
    s.setEncoding('latin1');
    s.on('connect', () => {
      out.connected = true;
      s.write('GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n');
    });
    s.on('data', (d) => (out.data += d));
    s.on('error', (e) => (out.error = e.code || e.message));
    s.on('close', () => {
      clearTimeout(timer);
      resolve(out);
    });
  });
}

function assertRefused(probe, what) {
  assert.ok(
    probe.error !== null || (probe.connected && probe.data === ''),
    `${what}: a new connection after SIGTERM must be refused or fail, got ${JSON.stringify(probe)}`,
  );
  assert.ok(!/^HTTP\//.test(probe.data), `${what}: no HTTP response on a new connection after SIGTERM`);
}

function assertExit0(r, gw, what) {
  assert.ok(!r.alreadyExited, `${what}: prism exited before SIGTERM (code=${r.code})\n${gw.stderr().slice(-3000)}`);
  assert.ok(!r.timedOut, `${what}: prism did not exit after SIGTERM\n${gw.stderr().slice(-3000)}`);
  assert.equal(r.code, 0, `${what}: exit code after SIGTERM (signal=${r.signal})\n${gw.stderr().slice(-3000)}`);
}

/** Splits a raw SSE text into its data: payloads. */
function sseData(text) {
  return text
    .split(/\r?\n\r?\n/)
    .filter((e) => e.trim() !== '')
    .flatMap((e) => e.split(/\r?\n/))
    .filter((l) => l.startsWith('data:'))
    .map((l) => l.slice(5).trim());
}

describe('graceful shutdown on SIGTERM', { timeout: T(90000) }, () => {
  let fake;
  let gw;

  before(async () => {
    fake = await startFakeOpenAI();
  });

  afterEach(async () => {
    if (gw) await gw.kill();
    gw = null;
  });

  after(async () => {
    if (fake) await fake.close();
  });

  it('a non-streaming request in flight completes with 200; new connections are refused; exit 0', { timeout: T(20000) }, async () => {
    fake.reset();
    gw = await startGateway({ env: gatewayEnv(fake) });
    const client = await sdkClient(gw);
    // The upstream answers only after the signal has been sent and the probe has run.
    fake.next({ content: 'The slow answer survives SIGTERM.', delayMs: T(600) });
    const inFlight = client.chat.completions.create(chatBody('gpt-4o-mini')).withResponse();
    inFlight.catch(() => {}); // awaited below
    await fake.waitForRequests(1, T(5000));

    const stopping = gw.stop(T(10000)); // SIGTERM
    await sleep(100);
    assert.equal(fake.responses.length, 0, 'the upstream has not answered yet: the request is still in flight');
    const probe = await probeNewConnection(gw.port);
    assertRefused(probe, 'non-streaming');

    const { data, response } = await inFlight;
    assert.equal(response.status, 200);
    assert.equal(data.choices[0].message.content, 'The slow answer survives SIGTERM.');
    assert.deepEqual(data, fake.responses[0].body, 'the in-flight request gets exactly the upstream answer');

    assertExit0(await stopping, gw, 'non-streaming');
  });

  it('a stream in flight receives every chunk and [DONE]; new connections are refused; exit 0', { timeout: T(20000) }, async () => {
    fake.reset();
    gw = await startGateway({ env: gatewayEnv(fake) });
    // role + 6 pieces + finish: 8 chunks, 100 ms apart (~700 ms).
    fake.next({ intervalMs: 100 });
    const res = await fetch(gw.url('/v1/chat/completions'), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(chatBody('gpt-4o-mini', { stream: true })),
      signal: AbortSignal.timeout(T(10000)),
    });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') || '', /^text\/event-stream\b/i);

    const reader = res.body.getReader();
    const dec = new TextDecoder();
    let text = '';
    let stopping = null;
    let probing = null;
    let sentBeforeSignal = null;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      text += dec.decode(value, { stream: true });
      if (!stopping && text.includes('\n\n')) {
        // The first event is here: signal mid-stream.
        sentBeforeSignal = fake.responses[0]?.done;
        stopping = gw.stop(T(10000));
        probing = sleep(100).then(() => probeNewConnection(gw.port));
      }
    }
    text += dec.decode();
    assert.ok(stopping, 'the stream delivered at least one event');
    assert.equal(sentBeforeSignal, false, 'SIGTERM was sent while the upstream was still streaming');

    const up = fake.responses[0];
    assert.equal(up.done, true, 'the upstream stream was not cut off');
    const data = sseData(text);
    assert.equal(data.at(-1), '[DONE]', 'the stream ends with data: [DONE]');
    assert.deepEqual(
      data.slice(0, -1).map((d) => JSON.parse(d)),
      up.chunks,
      'every upstream chunk reaches the client, in order',
    );

    assertRefused(await probing, 'streaming');
    assertExit0(await stopping, gw, 'streaming');
  });
});

describe('server.timeouts.shutdown_ms bounds the wait for requests in flight', { timeout: T(60000) }, () => {
  let fake;
  let gw;
  let scratch;
  let config;

  before(async () => {
    fake = await startFakeOpenAI();
    scratch = await scratchDir('prism-e2e-shutdown-');
    const text = await fs.promises.readFile(REPO_CONFIG, 'utf8');
    assert.match(text, /^\s*shutdown_ms: 10000\s*$/m, 'config.yml has the literal shutdown_ms this test rewrites');
    config = path.join(scratch, 'config.yml');
    await fs.promises.writeFile(config, text.replace(/^(\s*shutdown_ms:) 10000\s*$/m, '$1 300'));
  });

  after(async () => {
    if (gw) await gw.kill();
    if (fake) await fake.close();
    if (scratch) await fs.promises.rm(scratch, { recursive: true, force: true });
  });

  it('an upstream that never answers: SIGTERM still exits 0 within ~2 s', { timeout: T(20000) }, async () => {
    gw = await startGateway({ env: gatewayEnv(fake), config });
    fake.next({ hold: true });
    const inFlight = fetch(gw.url('/v1/chat/completions'), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(chatBody('gpt-4o-mini')),
      signal: AbortSignal.timeout(T(15000)),
    }).then(
      async (res) => ({ status: res.status, text: await res.text().catch((e) => `<body error: ${e.message}>`) }),
      (err) => ({ error: err.cause?.code || err.message }),
    );
    await fake.waitForRequests(1, T(5000));
    await sleep(50);

    const r = await gw.stop(T(2000));
    assertExit0(r, gw, 'shutdown_ms: 300');
    assert.ok(r.ms >= 250, `SIGTERM waits up to shutdown_ms (300) for the request in flight, exited after ${r.ms} ms`);

    // The held client is not left hanging, and the upstream connection is gone with the process.
    const outcome = await withDeadline(T(2000), 'the in-flight request settles after the exit', () => inFlight);
    assert.ok(outcome.status !== 200, `the unanswered request cannot succeed: ${JSON.stringify(outcome)}`);
    await fake.waitClosed(fake.requests[0], T(2000));
  });
});

describe('listening beyond loopback requires gateway keys', { timeout: T(60000) }, () => {
  let fake;
  let gw;

  before(async () => {
    fake = await startFakeOpenAI();
  });

  after(async () => {
    if (gw) await gw.kill();
    if (fake) await fake.close();
  });

  for (const [what, keys] of [
    ['PRISM_API_KEYS empty', ''],
    ['PRISM_API_KEYS unset', undefined],
  ]) {
    it(`--listen 0.0.0.0:PORT with ${what}: exit 1 at once, naming api_keys / PRISM_API_KEYS`, { timeout: T(15000) }, async () => {
      const port = await freePort();
      const t0 = Date.now();
      const r = await runPrism(['serve', '--config', REPO_CONFIG, '--listen', `0.0.0.0:${port}`], {
        env: gatewayEnv(fake, { PRISM_API_KEYS: keys }),
        timeout: T(5000),
      });
      const ms = Date.now() - t0;
      assert.equal(r.code, 1, `exit code\n${describeRun(r)}`);
      assert.ok(ms < T(3000), `refused quickly (took ${ms} ms)`);
      assert.match(r.stderr, /api_keys/, `stderr names server.api_keys\n${describeRun(r)}`);
      assert.match(r.stderr, /PRISM_API_KEYS/, `stderr names PRISM_API_KEYS\n${describeRun(r)}`);
      assert.ok(!r.stderr.includes(UPSTREAM_KEY), 'the upstream key is not printed');
    });
  }

  it('--listen 0.0.0.0:PORT with PRISM_API_KEYS=k1: serves (health 200 on 127.0.0.1), requires the key, exits 0', { timeout: T(20000) }, async () => {
    fake.reset();
    gw = await startGateway({ env: gatewayEnv(fake, { PRISM_API_KEYS: 'k1' }), listenHost: '0.0.0.0' });
    const h = await fetch(gw.url('/health'));
    assert.equal(h.status, 200);
    assert.deepEqual(await h.json(), { status: 'ok' });

    await assert.rejects((await sdkClient(gw, 'not-k1')).chat.completions.create(chatBody('gpt-4o-mini')), (err) => {
      assert.equal(err.status, 401, `status (${err.message})`);
      return true;
    });
    assert.equal(fake.requests.length, 0, 'an unauthenticated request does not reach the upstream');
    const r = await (await sdkClient(gw, 'k1')).chat.completions.create(chatBody('gpt-4o-mini'));
    assert.deepEqual(r, fake.responses[0].body);
    await stopAndAssertClean(gw);
  });
});

describe('server.workers: 0, the default, runs one worker per CPU Prism may use', { timeout: T(60000) }, () => {
  const workersIn = (log) => {
    const m = /listening on \S+ \((\d+) workers?,/.exec(log);
    return m ? Number(m[1]) : null;
  };

  it('the repository config starts os.availableParallelism() workers', { timeout: T(20000) }, async () => {
    const gw = await startGateway({ env: gatewayEnv(null, { PRISM_WORKERS: undefined }) });
    try {
      // The workers serve /health as soon as they start; the main thread logs the line after
      // starting them, so on a slow run (valgrind) it can come a moment after the first answer.
      await withDeadline(T(10000), 'the listening line', async (signal) => {
        while (workersIn(gw.stderr()) === null && !signal.aborted) await sleep(20);
      });
      assert.equal(workersIn(gw.stderr()), Math.min(os.availableParallelism(), 64), gw.stderr());
    } finally {
      await stopAndAssertClean(gw);
    }
  });

  it('under `taskset -c 0` (an affinity of one CPU) it starts one worker', { timeout: T(20000) }, async (t) => {
    if (os.availableParallelism() < 2 || !fs.existsSync('/usr/bin/taskset')) {
      t.skip('needs two CPUs and taskset');
      return;
    }
    const port = await freePort();
    const child = spawn('/usr/bin/taskset', ['-c', '0', PRISM_BIN, 'serve', '--config', REPO_CONFIG, '--listen', `127.0.0.1:${port}`], {
      env: prismEnv(gatewayEnv(null)),
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let log = '';
    child.stderr.setEncoding('utf8').on('data', (d) => (log += d));
    const closed = new Promise((r) => child.on('close', r));
    try {
      await withDeadline(T(10000), 'the listening line', async (signal) => {
        while (workersIn(log) === null && child.exitCode === null && !signal.aborted) await sleep(20);
      });
      assert.equal(workersIn(log), 1, log);
    } finally {
      child.kill('SIGTERM');
      await closed;
    }
  });
});

// Streaming measurements for bench/run.sh, against bench/stream-fake.mjs directly or
// through a gateway. Prints one JSON object on stdout.
//
// Latency: sequential streams over one keep-alive connection.
//   node bench/stream-client.mjs latency --url http://127.0.0.1:PORT/v1/chat/completions
//        [--format openai|anthropic] [--model gpt-4o-mini] [--requests 100] [--warmup 10]
//   ttft_us   request written -> first content event received
//   delay_us  each content event's one-way delay: received (CLOCK_MONOTONIC here) minus the
//             "t<ns>" stamp the fake put in the event's text when it wrote it (the same clock)
//   gap_us    time between consecutive content events as received
//   --format anthropic sends an Anthropic Messages body and reads Anthropic events (the fake
//   hit directly on /v1/messages); openai is what a gateway speaks, whatever the provider.
//
// Hold: many concurrent open streams, to read a process's resident memory meanwhile.
//   node bench/stream-client.mjs hold --base http://127.0.0.1:PORT --streams 10000 --pid PID
//        [--proto h2|h1] [--per-conn 100] [--hold-ms 5000] [--model gpt-4o-mini]
//        [--open-timeout-ms 90000] [--key GATEWAY_KEY]
//   Opens the streams (h2: cleartext HTTP/2 prior knowledge, --per-conn streams per
//   connection; h1: one connection each), waits until every stream has received its first
//   content event, keeps them all open --hold-ms while sampling VmRSS of --pid, then closes
//   them. Reports VmRSS before, the largest sample while held, and 3 s after closing.

import http from 'node:http';
import http2 from 'node:http2';
import fs from 'node:fs';

const argv = process.argv.slice(2);
const mode = argv[0];
function opt(name, def) {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : def;
}
const now = () => process.hrtime.bigint();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function pct(values, p) {
  if (values.length === 0) return null;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}
const summary = (v) => ({ n: v.length, p50: pct(v, 50), p90: pct(v, 90), p99: pct(v, 99), max: v.length ? Math.max(...v) : null });

function chatBody(format, model) {
  const messages = [
    { role: 'user', content: 'Count from one to twenty, one number per line, and nothing else.' },
  ];
  if (format === 'anthropic') return JSON.stringify({ model, max_tokens: 256, messages, stream: true });
  return JSON.stringify({ model, messages: [{ role: 'system', content: 'You are terse.' }, ...messages], max_tokens: 256, stream: true });
}

// SSE parsing: calls onText(text) for each content event's text, from either format.
function sseParser(onText) {
  let buf = '';
  return (chunk) => {
    buf += chunk;
    let i;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const ev = buf.slice(0, i);
      buf = buf.slice(i + 2);
      for (const line of ev.split('\n')) {
        if (!line.startsWith('data:')) continue;
        const data = line.slice(5).trim();
        if (data === '[DONE]') continue;
        let obj;
        try {
          obj = JSON.parse(data);
        } catch {
          continue;
        }
        const t = obj?.choices?.[0]?.delta?.content ?? (obj?.type === 'content_block_delta' ? obj.delta?.text : undefined);
        if (typeof t === 'string' && t.length > 0) onText(t);
      }
    }
  };
}

function stamps(text) {
  const out = [];
  for (const m of text.matchAll(/t(\d+) /g)) out.push(BigInt(m[1]));
  return out;
}

async function latency() {
  const url = new URL(opt('url'));
  const format = opt('format', 'openai');
  const key = opt('key', 'sk-bench-gateway-key');
  const model = opt('model', format === 'anthropic' ? 'claude-sonnet-4-5' : 'gpt-4o-mini');
  const requests = Number(opt('requests', '100'));
  const warmup = Number(opt('warmup', '10'));
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const body = chatBody(format, model);
  const headers = { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), authorization: `Bearer ${key}` };
  if (format === 'anthropic') Object.assign(headers, { 'x-api-key': 'sk-bench', 'anthropic-version': '2023-06-01' });
  const ttft = [];
  const delay = [];
  const gap = [];
  let events = 0;
  for (let r = 0; r < warmup + requests; r++) {
    const measured = r >= warmup;
    await new Promise((resolve, reject) => {
      let first = null;
      let last = null;
      const t0 = now();
      const req = http.request({ host: url.hostname, port: url.port, path: url.pathname, method: 'POST', headers, agent }, (res) => {
        if (res.statusCode !== 200) {
          res.resume();
          return reject(new Error(`HTTP ${res.statusCode} from ${url}`));
        }
        res.setEncoding('utf8');
        let recv = 0n;
        const parse = sseParser((text) => {
          for (const s of stamps(text)) {
            if (!measured) continue;
            events++;
            delay.push(Number(recv - s) / 1000);
            if (first === null) {
              first = recv;
              ttft.push(Number(recv - t0) / 1000);
            } else gap.push(Number(recv - last) / 1000);
            last = recv;
          }
        });
        res.on('data', (c) => {
          recv = now();
          parse(c);
        });
        res.on('end', resolve);
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(body);
    });
  }
  agent.destroy();
  const round = (s) => Object.fromEntries(Object.entries(s).map(([k, v]) => [k, typeof v === 'number' ? Math.round(v) : v]));
  console.log(JSON.stringify({ mode: 'latency', url: url.href, format, requests, events, ttft_us: round(summary(ttft)), delay_us: round(summary(delay)), gap_us: round(summary(gap)) }));
}

function rssKiB(pid) {
  const s = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const get = (k) => Number((s.match(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm')) || [])[1]);
  return { rss: get('VmRSS'), hwm: get('VmHWM') };
}

async function hold() {
  const base = new URL(opt('base'));
  const streams = Number(opt('streams', '10000'));
  const pid = Number(opt('pid'));
  const proto = opt('proto', 'h2');
  const perConn = Number(opt('per-conn', '100'));
  const holdMs = Number(opt('hold-ms', '5000'));
  const model = opt('model', 'gpt-4o-mini');
  const openTimeout = Number(opt('open-timeout-ms', '90000'));
  const auth = `Bearer ${opt('key', 'sk-bench-gateway-key')}`;
  const body = chatBody('openai', model);
  const before = rssKiB(pid);

  let ready = 0;
  let failed = 0;
  const errors = new Map();
  const fail = (e) => {
    failed++;
    const k = String(e?.code ?? e?.message ?? e);
    errors.set(k, (errors.get(k) ?? 0) + 1);
  };
  const closers = [];
  const t0 = Date.now();

  // One stream: resolves when its first content event arrives (or it fails).
  function watch(res, done) {
    let seen = false;
    res.setEncoding('utf8');
    const parse = sseParser(() => {
      if (!seen) {
        seen = true;
        ready++;
        done();
      }
    });
    res.on('data', parse);
    res.on('error', () => {});
  }

  if (proto === 'h2') {
    const conns = Math.ceil(streams / perConn);
    for (let c = 0; c < conns; c++) {
      const session = http2.connect(base.origin);
      session.on('error', fail);
      closers.push(() => session.destroy());
      const n = Math.min(perConn, streams - c * perConn);
      const waits = [];
      for (let i = 0; i < n; i++) {
        waits.push(
          new Promise((resolve) => {
            const req = session.request({ ':method': 'POST', ':path': base.pathname.replace(/\/$/, '') + '/v1/chat/completions', 'content-type': 'application/json', authorization: auth });
            req.on('response', (h) => {
              if (h[':status'] !== 200) {
                fail(new Error(`HTTP ${h[':status']}`));
                resolve();
              }
            });
            req.on('error', (e) => {
              fail(e);
              resolve();
            });
            watch(req, resolve);
            req.end(body);
          }),
        );
      }
      // A connection's streams must be answered before the next connection opens,
      // so that the gateway never sees more than one burst of perConn at a time.
      await Promise.race([Promise.all(waits), sleep(openTimeout)]);
      if (Date.now() - t0 > openTimeout) break;
    }
  } else {
    const agent = new http.Agent({ keepAlive: false, maxSockets: Infinity });
    const burst = 200;
    for (let off = 0; off < streams && Date.now() - t0 < openTimeout; off += burst) {
      const waits = [];
      for (let i = off; i < Math.min(streams, off + burst); i++) {
        waits.push(
          new Promise((resolve) => {
            const req = http.request(
              { host: base.hostname, port: base.port, path: '/v1/chat/completions', method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), authorization: auth } },
              (res) => {
                if (res.statusCode !== 200) {
                  fail(new Error(`HTTP ${res.statusCode}`));
                  res.resume();
                  return resolve();
                }
                watch(res, resolve);
              },
            );
            req.on('error', (e) => {
              fail(e);
              resolve();
            });
            closers.push(() => req.destroy());
            req.end(body);
          }),
        );
      }
      await Promise.race([Promise.all(waits), sleep(openTimeout)]);
    }
  }
  const openedMs = Date.now() - t0;
  let held = rssKiB(pid);
  const holdStart = Date.now();
  while (Date.now() - holdStart < holdMs) {
    await sleep(250);
    const s = rssKiB(pid);
    if (s.rss > held.rss) held = s;
  }
  const readyAtEnd = ready;
  for (const c of closers) c();
  await sleep(3000);
  const after = rssKiB(pid);
  console.log(
    JSON.stringify({
      mode: 'hold', proto, streams, ready: readyAtEnd, failed, errors: Object.fromEntries(errors), open_ms: openedMs, hold_ms: holdMs,
      rss_before_kib: before.rss, rss_held_kib: held.rss, hwm_kib: held.hwm, rss_after_close_kib: after.rss,
    }),
  );
  process.exit(0);
}

if (mode === 'latency') await latency();
else if (mode === 'hold') await hold();
else {
  console.error('usage: stream-client.mjs latency|hold [options] (see the header of this file)');
  process.exit(2);
}

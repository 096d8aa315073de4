// Plain http:// upstreams, served by the gateway's own HTTP/1.1 client: connection reuse, an idle
// connection the upstream closed, every way an HTTP/1.1 response can be framed, responses that must
// be refused, host names with several addresses, and the cases that stay on libcurl (a proxy
// variable, server.upstream_client: libcurl). The upstream here is a raw TCP server, so each test
// controls the exact bytes on the wire.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import { T, UNDER_VALGRIND, scratchDir, startGateway } from '../e2e/lib/gateway.mjs';
import { UPSTREAM_KEY, GATEWAY_KEY, OPENAI_MODEL, faultEnv, writeConfig, chat, post, assertError, assertCleanExit } from './lib/faults.mjs';

const COMPLETION = JSON.stringify({
  id: 'chatcmpl-plain-1',
  object: 'chat.completion',
  created: 1700000000,
  model: OPENAI_MODEL,
  choices: [{ index: 0, message: { role: 'assistant', content: 'plain hello' }, finish_reason: 'stop' }],
  usage: { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 },
});

function okHead(extra = '') {
  return `HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n${extra}`;
}

/**
 * A raw HTTP/1.1 upstream: parses each request (head + Content-Length body) and hands it to
 * `respond(req, sock)`, which writes whatever bytes the test wants. Keeps connections open unless
 * the test closes them.
 */
async function startRawUpstream(listenHost = '127.0.0.1') {
  const up = { requests: [], connections: 0, sockets: new Set(), respond: null };
  const server = net.createServer((sock) => {
    const id = ++up.connections;
    up.sockets.add(sock);
    sock.on('close', () => up.sockets.delete(sock));
    sock.on('error', () => {});
    let buf = Buffer.alloc(0);
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buf.subarray(0, end).toString('latin1');
        const m = /\r\ncontent-length: *(\d+)/i.exec(head);
        const len = m ? Number(m[1]) : 0;
        if (buf.length < end + 4 + len) return;
        const body = buf.subarray(end + 4, end + 4 + len).toString('utf8');
        buf = buf.subarray(end + 4 + len);
        const [requestLine, ...lines] = head.split('\r\n');
        const headers = {};
        for (const l of lines) {
          const i = l.indexOf(':');
          headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
        }
        const req = { connection: id, requestLine, headers, body, head };
        up.requests.push(req);
        up.respond(req, sock);
      }
    });
  });
  await new Promise((res) => server.listen(0, listenHost, res));
  up.port = server.address().port;
  up.reset = () => {
    up.requests = [];
    up.respond = (req, sock) => sock.write(`${okHead()}Content-Length: ${Buffer.byteLength(COMPLETION)}\r\n\r\n${COMPLETION}`);
  };
  up.dropConnections = () => {
    for (const s of up.sockets) s.destroy();
  };
  up.close = () =>
    new Promise((res) => {
      up.dropConnections();
      server.close(res);
    });
  up.reset();
  return up;
}

function assertCompletion(r, what) {
  assert.equal(r.status, 200, `${what}: ${r.text}`);
  const body = JSON.parse(r.text);
  assert.equal(body.choices[0].message.content, 'plain hello', what);
  assert.equal(body.usage.total_tokens, 5, what);
}

/** prism_upstream_connections_open from /metrics. */
async function openConnections(g) {
  const text = await (await fetch(g.url('/metrics'), { headers: { authorization: `Bearer ${GATEWAY_KEY}` } })).text();
  const m = /^prism_upstream_connections_open (\d+)$/m.exec(text);
  assert.ok(m, 'the gauge is exported');
  return Number(m[1]);
}

const sleep = (ms) => new Promise((res) => setTimeout(res, ms));

describe('plain http:// upstreams (built-in HTTP/1.1 client)', { timeout: T(120000) }, () => {
  let dir;
  let up;
  let gw;
  const extraGateways = [];

  // No proxy variable from the environment running the tests: with one set, plain http:// is
  // libcurl's (tested below).
  const NO_PROXY_VARS = { http_proxy: undefined, HTTP_PROXY: undefined, all_proxy: undefined, ALL_PROXY: undefined };

  async function gateway(name, { baseURL = `http://127.0.0.1:${up.port}/v1`, overrides = {}, env = {}, launcher = [] } = {}) {
    const config = await writeConfig(dir, overrides, name);
    const g = await startGateway({ env: faultEnv({ extra: { ...NO_PROXY_VARS, OPENAI_BASE_URL: baseURL, ...env } }), config, launcher });
    extraGateways.push(g);
    return g;
  }

  before(async () => {
    dir = await scratchDir('prism-faults-plain-');
    up = await startRawUpstream();
    const config = await writeConfig(dir, { server: { timeouts: { upstream_ms: T(3000) } } }, 'plain.yml');
    gw = await startGateway({
      env: faultEnv({ extra: { ...NO_PROXY_VARS, OPENAI_BASE_URL: `http://127.0.0.1:${up.port}/v1` } }),
      config,
    });
  });

  after(async () => {
    for (const g of extraGateways) await g.kill();
    if (gw) await gw.kill();
    if (up) await up.close();
    if (dir) await fs.promises.rm(dir, { recursive: true, force: true });
  });

  it('sends one well-formed request and reuses one connection for sequential requests', { timeout: T(20000) }, async () => {
    up.reset();
    up.dropConnections();
    const before = up.connections;
    for (let i = 0; i < 6; i++) assertCompletion(await post(gw, chat(OPENAI_MODEL)), `request ${i}`);
    assert.equal(up.requests.length, 6);
    assert.equal(up.connections - before, 1, 'six requests, one after the other, share one upstream connection');
    const r = up.requests[0];
    assert.equal(r.requestLine, 'POST /v1/chat/completions HTTP/1.1');
    assert.equal(r.headers.host, `127.0.0.1:${up.port}`);
    assert.equal(r.headers.authorization, `Bearer ${UPSTREAM_KEY}`);
    assert.equal(Number(r.headers['content-length']), Buffer.byteLength(r.body));
    assert.equal(JSON.parse(r.body).model, OPENAI_MODEL);
    assert.ok(!r.head.includes(GATEWAY_KEY), 'the gateway key is not forwarded');
    assert.equal(r.headers.expect, undefined, 'no Expect: 100-continue round trip');
  });

  it('concurrent requests open more connections, which are kept and reused afterwards', { timeout: T(20000) }, async () => {
    up.reset();
    up.dropConnections();
    await sleep(100);
    // The upstream answers only once all four are in, so the gateway must hold four connections.
    const held = [];
    up.respond = (req, sock) => {
      held.push(sock);
      if (held.length === 4) for (const s of held) s.write(`${okHead()}Content-Length: ${Buffer.byteLength(COMPLETION)}\r\n\r\n${COMPLETION}`);
    };
    const before = up.connections;
    const rs = await Promise.all([0, 1, 2, 3].map(() => post(gw, chat(OPENAI_MODEL))));
    rs.forEach((r, i) => assertCompletion(r, `concurrent ${i}`));
    assert.equal(up.connections - before, 4);
    up.reset();
    for (let i = 0; i < 4; i++) assertCompletion(await post(gw, chat(OPENAI_MODEL)), `after ${i}`);
    assert.equal(up.connections - before, 4, 'the kept connections served the next requests');
  });

  // Started with a soft limit of 256 open files (the hard one left as it is), the gateway raises it
  // to the hard limit: 400 requests in flight at once take 800 descriptors. Every upstream
  // connection they opened is kept, so the next 400 open none: a busy worker that closed
  // connections past a fixed idle cap would open them again on the next burst.
  it('raises a low open-files limit, and keeps every connection a burst of 400 needed', { timeout: T(60000), skip: UNDER_VALGRIND && 'valgrind keeps RLIMIT_NOFILE to itself' }, async () => {
    const N = 400;
    up.reset();
    up.dropConnections();
    const g = await gateway('fd-limit.yml', { launcher: ['prlimit', '--nofile=256:'] });
    const m = /open files limit (\d+); up to (\d+) idle upstream connections kept per worker/.exec(g.logs());
    assert.ok(m, `the limit is logged at the start:\n${g.logs()}`);
    assert.ok(Number(m[1]) > 2 * N, `the soft limit was raised above 256 (to the hard limit): ${m[0]}`);
    assert.ok(Number(m[2]) >= N, `a worker may keep a burst's connections: ${m[0]}`);
    const burst = async (what) => {
      const held = [];
      up.respond = (req, sock) => {
        held.push(sock);
        if (held.length === N) for (const s of held) s.write(`${okHead()}Content-Length: ${Buffer.byteLength(COMPLETION)}\r\n\r\n${COMPLETION}`);
      };
      const rs = await Promise.all(Array.from({ length: N }, () => post(g, chat(OPENAI_MODEL), { ms: T(30000) })));
      rs.forEach((r, i) => assertCompletion(r, `${what} ${i}`));
    };
    const before = up.connections;
    await burst('first burst');
    assert.equal(up.connections - before, N, 'each request in flight had its own upstream connection');
    assert.equal(await openConnections(g), N, 'all of them are kept');
    await burst('second burst');
    assert.equal(up.connections - before, N, 'the second burst opened no connection');
    await assertCleanExit(g);
  });

  it('the Connection header is read token by token: close in any case or position ends the connection, look-alikes do not', { timeout: T(20000) }, async () => {
    const cases = [
      ['close', 2],
      ['Keep-Alive, Close', 2],
      ['upgrade ,CLOSE;x=1', 2],
      ['keep-alive', 1],
      ['closed', 1],
      ['xclose, keep-alive', 1],
      ['close-ish;close', 1],
    ];
    for (const [value, want] of cases) {
      up.reset();
      up.dropConnections();
      await new Promise((r) => setTimeout(r, 50)); // the gateway sees the drop before the next request
      up.respond = (req, sock) =>
        sock.write(`${okHead(`Connection: ${value}\r\n`)}Content-Length: ${Buffer.byteLength(COMPLETION)}\r\n\r\n${COMPLETION}`);
      const before = up.connections;
      for (let i = 0; i < 2; i++) assertCompletion(await post(gw, chat(OPENAI_MODEL)), `Connection: ${value}, request ${i}`);
      assert.equal(up.connections - before, want, `Connection: ${value}: upstream connections for two requests`);
    }
  });

  it('an idle connection the upstream closed is not used again: the next request opens a new one', { timeout: T(20000) }, async () => {
    up.reset();
    assertCompletion(await post(gw, chat(OPENAI_MODEL)), 'first');
    const before = up.connections;
    up.dropConnections(); // what a server's keep-alive timeout does
    await sleep(150);
    assertCompletion(await post(gw, chat(OPENAI_MODEL)), 'after the upstream closed its idle connections');
    assert.equal(up.connections - before, 1);
    // A graceful close (FIN) after the response, announced or not, is the same.
    up.respond = (req, sock) => sock.end(`${okHead()}Content-Length: ${Buffer.byteLength(COMPLETION)}\r\n\r\n${COMPLETION}`);
    assertCompletion(await post(gw, chat(OPENAI_MODEL)), 'closed right after the response');
    up.reset();
    await sleep(100);
    assertCompletion(await post(gw, chat(OPENAI_MODEL)), 'the request after that');
  });

  const framings = {
    'chunked, with chunk extensions and trailers': (sock) => {
      const half = Math.floor(COMPLETION.length / 2);
      const parts = [COMPLETION.slice(0, half), COMPLETION.slice(half)];
      sock.write(`${okHead()}Transfer-Encoding: chunked\r\n\r\n`);
      sock.write(`${parts[0].length.toString(16)};ext=1\r\n${parts[0]}\r\n`);
      sock.write(`${parts[1].length.toString(16).toUpperCase()}\r\n${parts[1]}\r\n0\r\nX-Trailer: t\r\n\r\n`);
    },
    'a body delimited by closing the connection (HTTP/1.0)': (sock) =>
      sock.end(`HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n${COMPLETION}`),
    'a status line without a reason phrase': (sock) =>
      sock.write(`HTTP/1.1 200\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(COMPLETION)}\r\n\r\n${COMPLETION}`),
    'an interim 100 Continue before the final response': (sock) =>
      sock.write(`HTTP/1.1 100 Continue\r\n\r\n${okHead()}Content-Length: ${Buffer.byteLength(COMPLETION)}\r\n\r\n${COMPLETION}`),
    'the head and body a few bytes at a time': (sock) => {
      const all = Buffer.from(`${okHead()}Content-Length: ${Buffer.byteLength(COMPLETION)}\r\n\r\n${COMPLETION}`);
      let at = 0;
      const step = () => {
        if (at >= all.length || sock.destroyed) return;
        sock.write(all.subarray(at, at + 7));
        at += 7;
        setTimeout(step, 1);
      };
      step();
    },
  };
  for (const [label, respond] of Object.entries(framings)) {
    it(`framing: ${label}`, { timeout: T(20000) }, async () => {
      up.reset();
      up.respond = (req, sock) => respond(sock);
      assertCompletion(await post(gw, chat(OPENAI_MODEL)), label);
      up.reset();
      assertCompletion(await post(gw, chat(OPENAI_MODEL)), `${label}: the next request`);
    });
  }

  const refused = {
    'response headers over 64 KiB': (sock) => sock.write(`${okHead()}X-Big: ${'a'.repeat(70 * 1024)}\r\nContent-Length: 2\r\n\r\n{}`),
    'a transfer coding that is not chunked': (sock) => sock.write(`${okHead()}Transfer-Encoding: gzip\r\n\r\n${COMPLETION}`),
    'two different Content-Length values': (sock) =>
      sock.write(`${okHead()}Content-Length: 5\r\nContent-Length: ${Buffer.byteLength(COMPLETION)}\r\n\r\n${COMPLETION}`),
    'a body shorter than its Content-Length, then a close': (sock) =>
      sock.end(`${okHead()}Content-Length: ${Buffer.byteLength(COMPLETION) + 10}\r\n\r\n${COMPLETION}`),
    'a malformed chunk size': (sock) => sock.write(`${okHead()}Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n`),
    'not HTTP at all': (sock) => sock.end('SSH-2.0-OpenSSH_9.2\r\n\r\n'),
  };
  for (const [label, respond] of Object.entries(refused)) {
    it(`refused: ${label} is a 502, and the gateway serves the next request`, { timeout: T(20000) }, async () => {
      up.reset();
      up.respond = (req, sock) => respond(sock);
      const r = await post(gw, chat(OPENAI_MODEL));
      assert.equal(r.status, 502, `${label}: ${r.status} ${r.text}`);
      assertError(r, 502, { type: 'api_error' }, label);
      up.reset();
      assertCompletion(await post(gw, chat(OPENAI_MODEL)), `after ${label}`);
    });
  }

  it('a total deadline (server.timeouts.upstream_ms) ends an upstream that never finishes its body', { timeout: T(20000) }, async () => {
    up.reset();
    up.respond = (req, sock) => sock.write(`${okHead()}Content-Length: 100000\r\n\r\n{"partial":`);
    const t0 = Date.now();
    const r = await post(gw, chat(OPENAI_MODEL), { ms: T(15000) });
    assert.ok(r.status === 504 || r.status === 502, `${r.status} ${r.text}`);
    assert.ok(Date.now() - t0 >= 2500, 'not before the deadline');
    up.reset();
    assertCompletion(await post(gw, chat(OPENAI_MODEL)), 'after the deadline');
  });

  it('a host name with several addresses: the one that answers is used (localhost, IPv4 only)', { timeout: T(20000) }, async () => {
    up.reset();
    const g = await gateway('localhost.yml', { baseURL: `http://localhost:${up.port}/v1` });
    assertCompletion(await post(g, chat(OPENAI_MODEL)), 'via localhost');
    assert.equal(up.requests.at(-1).headers.host, `localhost:${up.port}`);
  });

  it('with http_proxy set, plain http:// goes through the proxy (libcurl)', { timeout: T(20000) }, async () => {
    up.reset();
    // The raw upstream plays the proxy: it receives the absolute URL in the request line.
    const g = await gateway('proxied.yml', {
      baseURL: 'http://upstream.example.test/v1',
      env: { http_proxy: `http://127.0.0.1:${up.port}`, no_proxy: '', NO_PROXY: '' },
    });
    assertCompletion(await post(g, chat(OPENAI_MODEL)), 'through the proxy');
    assert.equal(up.requests.at(-1).requestLine, 'POST http://upstream.example.test/v1/chat/completions HTTP/1.1');
  });

  it('with http_proxy set, a host that no_proxy exempts is still called directly (built-in client)', { timeout: T(20000) }, async () => {
    up.reset();
    // The proxy is a closed port: a request that went to it would fail.
    const g = await gateway('exempt.yml', {
      env: { http_proxy: 'http://127.0.0.1:9', no_proxy: 'example.test, 127.0.0.1', NO_PROXY: undefined },
    });
    assertCompletion(await post(g, chat(OPENAI_MODEL)), 'exempt from the proxy');
    assert.equal(up.requests.at(-1).requestLine, 'POST /v1/chat/completions HTTP/1.1');
    assert.ok((await openConnections(g)) >= 1, 'the built-in client carried it');
  });

  it('server.upstream_client: libcurl sends plain http:// through libcurl', { timeout: T(20000) }, async () => {
    up.reset();
    const g = await gateway('libcurl.yml', { overrides: { server: { upstream_client: 'libcurl' } } });
    assertCompletion(await post(g, chat(OPENAI_MODEL)), 'libcurl');
    assert.equal(await openConnections(g), 0, 'the built-in client holds no connection');
    up.reset();
    assertCompletion(await post(gw, chat(OPENAI_MODEL)), 'built-in');
    assert.ok((await openConnections(gw)) >= 1, 'the built-in client keeps its connection');
  });

  it('exits 0 on SIGTERM and never logs a secret', { timeout: T(20000) }, async () => {
    await assertCleanExit(gw);
    gw = null;
  });
});

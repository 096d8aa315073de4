// HTTP/1.1 details on raw sockets: the header-size limit (431 with an OpenAI error), pipelined
// requests answered in order, and which client x-request-id values are echoed or replaced.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startFakeOpenAI } from './lib/fake-openai.mjs';
import {
  T,
  UPSTREAM_KEY,
  startGateway,
  gatewayEnv,
  stopAndAssertClean,
  assertNoSecretsInLogs,
  assertErrorEnvelope,
  sdkClient,
  chatBody,
} from './lib/gateway.mjs';

const GENERATED_ID = /^req_[0-9a-f]{32}$/;
const HEADER_LIMIT = 8192; // server.limits.max_header_bytes in config.yml

/** Parses as many complete HTTP/1.1 responses as `buf` holds: [{status, reason, headers, body}], rest. */
function parseResponses(buf) {
  const out = [];
  let off = 0;
  for (;;) {
    const end = buf.indexOf('\r\n\r\n', off, 'latin1');
    if (end < 0) break;
    const lines = buf.subarray(off, end).toString('latin1').split('\r\n');
    const m = /^HTTP\/1\.[01] (\d{3}) ?(.*)$/.exec(lines[0]);
    if (!m) throw new Error(`not an HTTP response: ${JSON.stringify(lines[0])}`);
    const headers = {};
    for (const l of lines.slice(1)) {
      const i = l.indexOf(':');
      headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
    }
    let p = end + 4;
    let body;
    if (/chunked/i.test(headers['transfer-encoding'] || '')) {
      const parts = [];
      for (;;) {
        const le = buf.indexOf('\r\n', p, 'latin1');
        if (le < 0) return { responses: out, complete: false };
        const size = parseInt(buf.subarray(p, le).toString('latin1'), 16);
        if (buf.length < le + 2 + size + 2) return { responses: out, complete: false };
        parts.push(buf.subarray(le + 2, le + 2 + size));
        p = le + 2 + size + 2;
        if (size === 0) break;
      }
      body = Buffer.concat(parts);
    } else {
      const len = Number(headers['content-length'] ?? 0);
      if (buf.length < p + len) break;
      body = buf.subarray(p, p + len);
      p += len;
    }
    out.push({ status: Number(m[1]), reason: m[2], headers, body: body.toString('utf8') });
    off = p;
  }
  return { responses: out };
}

/**
 * Writes `data` (string or Buffer, in one write) on a fresh connection and reads until `want`
 * responses are complete, the server closes, or `ms` passes. Resolves {responses, closed, error}.
 */
function rawExchange(port, data, { want = 1, ms = T(5000) } = {}) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    let buf = Buffer.alloc(0);
    let error = null;
    let closed = false;
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      s.destroy();
      resolve({ ...parseResponses(buf), closed, error, raw: buf.toString('latin1') });
    };
    const timer = setTimeout(finish, ms);
    s.on('connect', () => s.write(data));
    s.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      if (parseResponses(buf).responses.length >= want) finish();
    });
    s.on('error', (e) => (error = e.code || e.message));
    s.on('close', () => {
      closed = true;
      finish();
    });
  });
}

function get(path, headers = {}) {
  const extra = Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('');
  return `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n${extra}\r\n`;
}

function post(path, body, headers = {}) {
  const extra = Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('');
  return `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${extra}\r\n${body}`;
}

function assertHeaderTooLarge(r, what) {
  const got = `${r.status} ${r.reason}, content-type ${r.headers['content-type']}, body ${JSON.stringify(r.body.slice(0, 300))}`;
  assert.equal(r.status, 431, `${what}: status (got ${got})`);
  assert.match(r.headers['content-type'] || '', /^application\/json\b/i, `${what}: content-type`);
  const body = JSON.parse(r.body);
  assertErrorEnvelope(body, what);
  assert.deepEqual(
    body,
    {
      error: {
        message: `The request's headers exceed the ${HEADER_LIMIT} bytes this server accepts.`,
        type: 'invalid_request_error',
        param: null,
        code: 'request_header_fields_too_large',
      },
    },
    `${what}: the 431 error body`,
  );
  assert.match(r.headers['x-request-id'] || '', GENERATED_ID, `${what}: x-request-id on the 431`);
}

describe('HTTP/1.1 protocol details', { timeout: T(120000) }, () => {
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
  }

  it(`headers over ${HEADER_LIMIT} bytes (x-big: 8300 x 'a'): 431 request_header_fields_too_large`, { timeout: T(15000) }, async () => {
    fake.reset();
    const big = 'a'.repeat(8300);
    const chat = JSON.stringify(chatBody('gpt-4o-mini'));

    // Through fetch, as a client library would send it.
    const res = await fetch(gw.url('/v1/chat/completions'), {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-big': big },
      body: chat,
      signal: AbortSignal.timeout(T(10000)),
    });
    const text = await res.text();
    assertHeaderTooLarge(
      { status: res.status, headers: Object.fromEntries(res.headers), body: text },
      'fetch POST /v1/chat/completions',
    );

    // On raw sockets, for the chat route and for /health (the limit comes before routing).
    for (const req of [post('/v1/chat/completions', chat, { 'x-big': big }), get('/health', { 'x-big': big })]) {
      const what = `raw ${req.split(' ', 2).join(' ')}`;
      const r = await rawExchange(gw.port, req);
      assert.equal(r.responses.length, 1, `${what}: one response (got ${JSON.stringify(r.raw.slice(0, 300))}, error ${r.error})`);
      assertHeaderTooLarge(r.responses[0], what);
    }
    assert.equal(fake.requests.length, 0, 'a request with oversized headers never reaches the upstream');

    // Just under the limit is fine.
    const ok = await fetch(gw.url('/v1/chat/completions'), {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-big': 'b'.repeat(HEADER_LIMIT - 1024) },
      body: chat,
      signal: AbortSignal.timeout(T(10000)),
    });
    assert.equal(ok.status, 200, 'headers under the limit are accepted');
    assert.deepEqual(await ok.json(), fake.responses.at(-1).body);
    await assertStillServes('431');
  });

  // h2o's HTTP/1 parser refuses a request head it cannot parse (over its own buffer, more than 100
  // header lines, or control characters in a field) by writing a fixed plain-text 400 and closing,
  // before any Prism code runs (docs/decisions/0001-h2o-2.2-gaps.md); Prism swaps that answer for the
  // same one as a JSON error on its way to the socket. What must hold: a JSON 400, the connection
  // closed, nothing reaches the upstream, and the server keeps serving.
  function assertParserRejection(r, label) {
    assert.equal(r.responses.length, 1, `${label}: one response (${JSON.stringify(r.raw.slice(0, 300))})`);
    const res = r.responses[0];
    assert.equal(res.status, 400, `${label}: status`);
    assert.equal((res.headers.connection || '').toLowerCase(), 'close', `${label}: the connection is closed`);
    assert.equal(res.headers['content-type'], 'application/json', `${label}: content-type`);
    assert.equal(res.headers.server, 'prism', `${label}: server`);
    const body = JSON.parse(res.body);
    assert.equal(body.error.type, 'invalid_request_error', `${label}: ${res.body}`);
    assert.equal(body.error.code, 'invalid_request', `${label}: ${res.body}`);
    assert.equal(body.error.param, null);
    assert.match(body.error.message, /could not be parsed/);
  }

  it('more than 100 header lines: the parser 400, as JSON, connection closed, server fine', { timeout: T(15000) }, async () => {
    fake.reset();
    const many = {};
    for (let i = 0; i < 120; i++) many[`x-h${i}`] = 'v';
    const r = await rawExchange(gw.port, post('/v1/chat/completions', JSON.stringify(chatBody('gpt-4o-mini')), many));
    assertParserRejection(r, '120 header lines');
    assert.equal(fake.requests.length, 0);
    await assertStillServes('120 header lines');
  });

  it('a header section far over the limit (~420 KB): the parser 400, connection closed, server fine', { timeout: T(15000) }, async () => {
    fake.reset();
    const r = await rawExchange(gw.port, get('/health', { 'x-big': 'c'.repeat(420000) }));
    assertParserRejection(r, '~420 KB of headers');
    assert.equal(fake.requests.length, 0);
    await assertStillServes('a huge header section');
  });

  it('Content-Length with Transfer-Encoding, or two different Content-Lengths: 400, connection closed, nothing smuggled', { timeout: T(15000) }, async () => {
    fake.reset();
    const inner = get('/health', { 'x-request-id': 'smuggled' });
    const chunked = `0\r\n\r\n${inner}`;
    const cases = [
      ['CL + TE', `POST /health HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: ${chunked.length}\r\nTransfer-Encoding: chunked\r\n\r\n${chunked}`],
      ['TE + CL', `POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\ntransfer-encoding: chunked\r\ncontent-length: 5\r\n\r\n${chunked}`],
      ['two Content-Lengths', `POST /health HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 3\r\nContent-Length: ${inner.length + 3}\r\n\r\nabc${inner}`],
    ];
    for (const [what, req] of cases) {
      const r = await rawExchange(gw.port, req, { want: 2, ms: T(3000) });
      assert.equal(r.responses.length, 1, `${what}: one answer only (got ${JSON.stringify(r.raw.slice(0, 600))})`);
      assert.equal(r.responses[0].status, 400, `${what}: ${r.responses[0].body}`);
      assert.equal(JSON.parse(r.responses[0].body).error.code, 'invalid_request');
      assert.ok(r.closed, `${what}: the connection is closed`);
    }
    // The same length twice is not ambiguous.
    const same = await rawExchange(gw.port, `POST /health HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n{}`);
    assert.equal(same.responses[0]?.status, 405, same.raw);
    assert.equal(fake.requests.length, 0);
    await assertStillServes('smuggling attempts');
  });

  it('two pipelined GET /health in one write: both answered, in order', { timeout: T(15000) }, async () => {
    const r = await rawExchange(gw.port, get('/health', { 'x-request-id': 'pipe-1' }) + get('/health', { 'x-request-id': 'pipe-2' }), {
      want: 2,
    });
    assert.equal(r.responses.length, 2, `two responses (got ${JSON.stringify(r.raw)}, error ${r.error})`);
    r.responses.forEach((res, i) => {
      assert.equal(res.status, 200, `response ${i + 1}`);
      assert.deepEqual(JSON.parse(res.body), { status: 'ok' }, `response ${i + 1} body`);
      assert.equal(res.headers['x-request-id'], `pipe-${i + 1}`, `response ${i + 1} answers request ${i + 1}`);
    });
    assert.equal(r.closed && r.responses.length < 2, false, 'the connection stays open for both');
  });

  it('pipelined slow chat POST then GET /health: the /health answer waits for the chat answer', { timeout: T(15000) }, async () => {
    fake.reset();
    fake.next({ content: 'first in line', delayMs: 300 });
    const chat = JSON.stringify(chatBody('gpt-4o-mini'));
    const r = await rawExchange(
      gw.port,
      post('/v1/chat/completions', chat, { 'x-request-id': 'pipe-chat' }) + get('/health', { 'x-request-id': 'pipe-health' }),
      { want: 2, ms: T(10000) },
    );
    assert.equal(r.responses.length, 2, `two responses (got ${JSON.stringify(r.raw.slice(0, 500))}, error ${r.error})`);
    const [a, b] = r.responses;
    assert.equal(a.status, 200);
    assert.equal(a.headers['x-request-id'], 'pipe-chat');
    assert.deepEqual(JSON.parse(a.body), fake.responses[0].body);
    assert.equal(JSON.parse(a.body).choices[0].message.content, 'first in line');
    assert.equal(b.status, 200);
    assert.equal(b.headers['x-request-id'], 'pipe-health');
    assert.deepEqual(JSON.parse(b.body), { status: 'ok' });
    assert.equal(fake.requests.length, 1);
  });

  it('every response carries one "server: prism": answers, streams, errors and the parser\'s own 400', { timeout: T(15000) }, async () => {
    fake.reset();
    const chat = JSON.stringify(chatBody('gpt-4o-mini'));
    const stream = JSON.stringify(chatBody('gpt-4o-mini', { stream: true }));
    const cases = [
      ['GET /health', get('/health'), 200],
      ['chat answer', post('/v1/chat/completions', chat), 200],
      ['streamed chat', post('/v1/chat/completions', stream), 200],
      ['unknown path', get('/v1/nothing-here'), 404],
      ['invalid JSON', post('/v1/chat/completions', '{"model":'), 400],
      ['two Content-Lengths (h2o\'s own 400)', 'POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab', 400],
    ];
    for (const [what, req, status] of cases) {
      const r = await rawExchange(gw.port, req);
      assert.equal(r.responses[0]?.status, status, `${what}: ${r.raw.slice(0, 300)}`);
      const head = r.raw.slice(0, r.raw.indexOf('\r\n\r\n'));
      const lines = head.split('\r\n').filter((l) => /^server:/i.test(l));
      assert.deepEqual(lines.map((l) => l.toLowerCase()), ['server: prism'], `${what}: the server header lines`);
    }
  });

  it('x-request-id: a generated id (req_ + 32 hex) replaces one that is too long or not printable ASCII', { timeout: T(15000) }, async () => {
    const cases = [
      ['37 characters', 'a'.repeat(37)],
      ['100 characters', 'r'.repeat(100)],
      ['an inner tab', 'abc\tdef'],
      ['an inner space', 'abc def'],
      ['non-ASCII bytes', Buffer.from('abc\u00e9def', 'utf8').toString('latin1')],
    ];
    for (const [what, id] of cases) {
      for (const req of [get('/health', { 'x-request-id': id }), post('/v1/chat/completions', JSON.stringify(chatBody('gpt-4o-mini')), { 'x-request-id': id })]) {
        const label = `${what} on ${req.split(' ', 2).join(' ')}`;
        const r = await rawExchange(gw.port, Buffer.from(req, 'latin1'));
        assert.equal(r.responses.length, 1, `${label}: one response (${JSON.stringify(r.raw.slice(0, 300))})`);
        const res = r.responses[0];
        assert.equal(res.status, 200, `${label}: status`);
        const got = res.headers['x-request-id'];
        assert.notEqual(got, id.trim(), `${label}: the client's id is not echoed`);
        assert.match(got || '', GENERATED_ID, `${label}: a generated id instead (got ${JSON.stringify(got)})`);
      }
    }
    // The generated ids are distinct, and the format is the same when the client sends none.
    const ids = new Set();
    for (let i = 0; i < 5; i++) {
      const res = await fetch(gw.url('/health'));
      await res.arrayBuffer();
      assert.match(res.headers.get('x-request-id') || '', GENERATED_ID);
      ids.add(res.headers.get('x-request-id'));
    }
    assert.equal(ids.size, 5, 'every generated id is new');
  });

  it('x-request-id: a valid id of exactly 36 characters (a UUID) is echoed', { timeout: T(15000) }, async () => {
    for (const id of ['123e4567-e89b-12d3-a456-426614174000', 'Z'.repeat(36), 'x', 'a.b_c-d~e!f@g#h$i%j^k&l*m(n)o+p=q']) {
      assert.ok(id.length <= 36);
      const res = await fetch(gw.url('/health'), { headers: { 'x-request-id': id } });
      await res.arrayBuffer();
      assert.equal(res.headers.get('x-request-id'), id, `echoes ${JSON.stringify(id)}`);
    }
  });

  it('x-request-id with a control character: refused by the parser, never echoed, server fine', { timeout: T(15000) }, async () => {
    for (const ctl of ['\x01', '\x1b', '\x7f']) {
      const id = `abc${ctl}def`;
      const label = `x-request-id ${JSON.stringify(id)}`;
      const r = await rawExchange(gw.port, Buffer.from(get('/health', { 'x-request-id': id }), 'latin1'));
      assert.ok(!r.raw.includes(id), `${label}: the control character is never echoed`);
      assertParserRejection(r, label);
    }
    await assertStillServes('control characters in x-request-id');
  });

  it('shuts down gracefully', { timeout: T(15000) }, async () => {
    await stopAndAssertClean(gw);
  });

  it('never logs the upstream key', { timeout: T(15000) }, async () => {
    await gw.stop();
    assertNoSecretsInLogs(gw, [UPSTREAM_KEY]);
  });
});

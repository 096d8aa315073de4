// HTTP/2 (cleartext, prior knowledge) on the same listener, checked with curl when it is installed.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { spawnSync, spawn } from 'node:child_process';
import { startFakeOpenAI } from './lib/fake-openai.mjs';
import { T, UPSTREAM_KEY, startGateway, gatewayEnv, stopAndAssertClean, chatBody } from './lib/gateway.mjs';

function curlSupportsHttp2() {
  const r = spawnSync('curl', ['--version'], { encoding: 'utf8' });
  if (r.error || r.status !== 0) return { ok: false, why: 'curl is not installed' };
  if (!/\bHTTP2\b/.test(r.stdout)) return { ok: false, why: 'this curl has no HTTP/2 support' };
  return { ok: true };
}

function curl(args, timeout) {
  return new Promise((resolve, reject) => {
    const child = spawn('curl', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`curl timed out: ${stderr}`));
    }, timeout);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

const support = curlSupportsHttp2();

describe('HTTP/2', { skip: support.ok ? false : support.why, timeout: T(60000) }, () => {
  let fake;
  let gw;

  before(async () => {
    fake = await startFakeOpenAI();
    gw = await startGateway({ env: gatewayEnv(fake) });
  });

  after(async () => {
    if (gw) await gw.kill();
    if (fake) await fake.close();
  });

  it('GET /health over h2c prior knowledge', { timeout: T(15000) }, async () => {
    const r = await curl(
      ['-s', '--http2-prior-knowledge', '--max-time', String(T(10000) / 1000), '-w', '\n%{http_version} %{http_code}', gw.url('/health')],
      T(12000),
    );
    assert.equal(r.code, 0, `curl exit ${r.code}: ${r.stderr}`);
    const nl = r.stdout.lastIndexOf('\n');
    const body = r.stdout.slice(0, nl);
    const [version, status] = r.stdout.slice(nl + 1).split(' ');
    assert.equal(version, '2', 'answered over HTTP/2');
    assert.equal(status, '200');
    assert.deepEqual(JSON.parse(body), { status: 'ok' });
  });

  it('a chat completion over h2c', { timeout: T(15000) }, async () => {
    fake.reset();
    const params = chatBody('gpt-4o-mini');
    const r = await curl(
      [
        '-s',
        '--http2-prior-knowledge',
        '--max-time',
        String(T(10000) / 1000),
        '-H',
        'content-type: application/json',
        '--data-binary',
        JSON.stringify(params),
        '-w',
        '\n%{http_version} %{http_code}',
        gw.url('/v1/chat/completions'),
      ],
      T(12000),
    );
    assert.equal(r.code, 0, `curl exit ${r.code}: ${r.stderr}`);
    const nl = r.stdout.lastIndexOf('\n');
    const [version, status] = r.stdout.slice(nl + 1).split(' ');
    assert.equal(version, '2');
    assert.equal(status, '200', r.stdout);
    assert.deepEqual(JSON.parse(r.stdout.slice(0, nl)), fake.responses[0].body);
    assert.deepEqual(fake.requests[0].body, params);
    assert.equal(fake.requests[0].headers.authorization, `Bearer ${UPSTREAM_KEY}`);
  });

  it('over HTTP/2 too, one "server: prism" per response (h2o is given no server name)', { timeout: T(15000) }, async () => {
    const session = http2.connect(gw.url('/'));
    try {
      for (const [path, body] of [
        ['/health', null],
        ['/v1/chat/completions', JSON.stringify(chatBody('gpt-4o-mini'))],
      ]) {
        const lines = await new Promise((resolve, reject) => {
          const headers = { ':path': path, ':method': body ? 'POST' : 'GET' };
          if (body) headers['content-type'] = 'application/json';
          const req = session.request(headers);
          req.on('response', (_h, _flags, raw) => {
            const out = [];
            for (let i = 0; i < raw.length; i += 2) if (/^server$/i.test(raw[i])) out.push(`${raw[i]}: ${raw[i + 1]}`);
            resolve(out);
            req.resume();
          });
          req.on('error', reject);
          req.end(body ?? undefined);
        });
        assert.deepEqual(lines, ['server: prism'], `${path}: the server header lines`);
      }
    } finally {
      session.close();
    }
  });

  /** POSTs a streamed chat request over one HTTP/2 session; resolves with its status, headers and body. */
  function h2Stream(session, params) {
    return new Promise((resolve, reject) => {
      const req = session.request({ ':path': '/v1/chat/completions', ':method': 'POST', 'content-type': 'application/json' });
      let headers;
      let body = '';
      req.setEncoding('utf8');
      req.on('response', (h) => (headers = h));
      req.on('data', (d) => (body += d));
      req.on('end', () => resolve({ status: headers?.[':status'], headers, body }));
      req.on('error', reject);
      req.end(JSON.stringify({ ...params, stream: true }));
    });
  }

  it('streamed answers over h2c, relayed byte for byte: all at once (events and end in one read) and event by event', { timeout: T(20000) }, async () => {
    const events = ['Hel', 'lo', ' over', ' h2', '.'].map(
      (t, i) => `data: ${JSON.stringify({ id: 'chatcmpl-h2', object: 'chat.completion.chunk', created: 1, model: 'gpt-4o-mini', choices: [{ index: 0, delta: { content: t }, logprobs: null, finish_reason: i === 4 ? 'stop' : null }] })}\n\n`,
    );
    const sse = events.join('') + 'data: [DONE]\n\n';
    const session = http2.connect(gw.url('/'));
    try {
      for (const [how, behaviour] of [
        ['one piece', { raw: [sse] }],
        ['event by event, 30 ms apart', { raw: [...events, 'data: [DONE]\n\n'], intervalMs: 30 }],
      ]) {
        fake.reset();
        fake.next(behaviour);
        const r = await h2Stream(session, chatBody('gpt-4o-mini'));
        assert.equal(r.status, 200, `${how}: ${r.body}`);
        assert.match(r.headers['content-type'], /^text\/event-stream/, how);
        assert.equal(r.body, sse, `${how}: the stream as the upstream sent it, ending with [DONE]`);
      }
    } finally {
      session.close();
    }
  });

  it('shuts down gracefully', { timeout: T(15000) }, async () => {
    await stopAndAssertClean(gw);
  });
});

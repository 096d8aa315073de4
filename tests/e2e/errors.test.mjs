// Error responses: each an OpenAI-style {"error":{"message","type","param","code"}} with
// content-type application/json, and the gateway keeps serving after every one of them.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startFakeOpenAI } from './lib/fake-openai.mjs';
import {
  T,
  UPSTREAM_KEY,
  startGateway,
  gatewayEnv,
  stopAndAssertClean,
  assertNoSecretsInLogs,
  sdkClient,
  chatBody,
  expectErrorResponse,
  freePort,
} from './lib/gateway.mjs';

const MAX_BODY = 4096;

describe('request errors', { timeout: T(120000) }, () => {
  let fake;
  let gw;
  let client;

  before(async () => {
    fake = await startFakeOpenAI();
    gw = await startGateway({ env: gatewayEnv(fake, { PRISM_MAX_BODY_BYTES: String(MAX_BODY) }) });
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

  function raw(method, path, body, headers = { 'content-type': 'application/json' }) {
    return fetch(gw.url(path), { method, headers, body, signal: AbortSignal.timeout(T(10000)) });
  }

  it('invalid JSON body: 400 invalid_json', { timeout: T(15000) }, async () => {
    fake.reset();
    for (const body of ['{"model": "gpt-4o", "messages": [', 'this is not json', '{"model":"gpt-4o",}']) {
      const res = await raw('POST', '/v1/chat/completions', body);
      assert.ok(res.headers.get('x-request-id'), 'x-request-id on errors too');
      await expectErrorResponse(res, 400, { code: 'invalid_json' }, `body ${JSON.stringify(body)}`);
      await assertStillServes('invalid JSON');
    }
    assert.equal(fake.requests.length, 3, 'invalid JSON never reaches the upstream (only the 3 normal requests did)');
  });

  it('not one clean JSON object: trailing data, a second object, raw control characters, a duplicated model -> 400 invalid_json', { timeout: T(20000) }, async () => {
    fake.reset();
    const ok = '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}';
    const cases = [
      [`${ok} xyz`, null],
      [`${ok}{"model":"gpt-4o"}`, null],
      [ok.replace('"hi"', '"h\u0001i"'), null],
      [ok.replace('"hi"', '"h\u0000i"'), null],
      ['{"model":"gpt-4o-mini","model":"claude-sonnet-4-5","messages":[{"role":"user","content":"hi"}]}', 'model'],
      ['{"model":"gpt-4o-mini","stream":false,"stream":true,"messages":[{"role":"user","content":"hi"}]}', 'stream'],
    ];
    for (const [body, param] of cases) {
      const res = await raw('POST', '/v1/chat/completions', body);
      const { error } = await expectErrorResponse(res, 400, { code: 'invalid_json', type: 'invalid_request_error' }, JSON.stringify(body));
      if (param) assert.equal(error.param, param);
    }
    assert.equal(fake.requests.length, 0, 'none of them reaches the upstream');
    // Whitespace after the object, and escaped control characters, are fine.
    const res = await raw('POST', '/v1/chat/completions', `${ok.replace('"hi"', '"h\\u0001i"')} \r\n\t `);
    assert.equal(res.status, 200, await res.text());
    assert.equal(fake.requests.length, 1);
  });

  it('JSON edge cases: a byte order mark and a 30-digit integer pass through unchanged; a broken \\u escape is 400 invalid_json', { timeout: T(20000) }, async () => {
    fake.reset();
    const ok = '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}';
    // Kept as they were: the body reader leaves these to the same verdict as before.
    // (The byte order mark reaches the upstream, which answers for it: the fake, like OpenAI, with a 400.)
    const passing = [`\ufeff${ok}`, ok.replace('}]}', '}],"seed":123456789012345678901234567890}'), ok.replace('}]}', '}],"temperature":1.0e+0}')];
    for (const body of passing) {
      const res = await raw('POST', '/v1/chat/completions', body);
      const text = await res.text();
      assert.ok(res.status === 200 || body.startsWith('\ufeff'), `${JSON.stringify(body)}: ${text}`);
      assert.equal(fake.requests.at(-1).rawBody, body, 'forwarded byte for byte');
    }
    assert.equal(fake.requests.length, passing.length);
    // "\u00e?" is not an escape: refused, never forwarded changed.
    const res = await raw('POST', '/v1/chat/completions', ok.replace('"hi"', '"h\\u00e?i"'));
    await expectErrorResponse(res, 400, { code: 'invalid_json', type: 'invalid_request_error' }, 'broken \\u escape');
    assert.equal(fake.requests.length, passing.length);
    await assertStillServes('JSON edge cases');
  });

  it('error messages that quote client bytes are well-formed UTF-8 (a path with %FF, a long non-ASCII model name)', { timeout: T(15000) }, async () => {
    fake.reset();
    const strict = new TextDecoder('utf-8', { fatal: true });
    const res1 = await fetch(gw.url('/v1/%ff%fe'), { signal: AbortSignal.timeout(T(5000)) });
    const res2 = await raw('POST', '/v1/chat/completions', JSON.stringify(chatBody(`z${'\u00e9'.repeat(300)}`)));
    for (const [what, res] of [['path', res1], ['model', res2]]) {
      assert.equal(res.status, 404, what);
      const bytes = Buffer.from(await res.arrayBuffer());
      let text;
      assert.doesNotThrow(() => (text = strict.decode(bytes)), `${what}: the body is valid UTF-8: ${bytes.toString('hex').slice(0, 400)}`);
      assert.ok(JSON.parse(text).error.message.length > 0);
    }
  });

  it('missing model: 400 missing_required_parameter, param "model"', { timeout: T(15000) }, async () => {
    fake.reset();
    const res = await raw('POST', '/v1/chat/completions', JSON.stringify({ messages: [{ role: 'user', content: 'hi' }] }));
    await expectErrorResponse(res, 400, { code: 'missing_required_parameter', param: 'model' }, 'missing model');
    assert.equal(fake.requests.length, 0);
    await assert.rejects(client.chat.completions.create({ messages: [{ role: 'user', content: 'hi' }] }), (err) => {
      assert.equal(err.status, 400);
      assert.equal(err.code, 'missing_required_parameter');
      assert.equal(err.param, 'model');
      return true;
    });
    await assertStillServes('missing model');
  });

  it('a model that is not a string: 400 invalid_type; an empty one: missing_required_parameter', { timeout: T(15000) }, async () => {
    fake.reset();
    for (const [model, type] of [[123, 'a number'], [null, 'null'], [['gpt-4o-mini'], 'an array'], [{ id: 'x' }, 'an object'], [true, 'a boolean']]) {
      const res = await raw('POST', '/v1/chat/completions', JSON.stringify({ model, messages: [{ role: 'user', content: 'hi' }] }));
      const body = await expectErrorResponse(res, 400, { code: 'invalid_type', param: 'model' }, `model ${JSON.stringify(model)}`);
      assert.equal(body.error.message, `Invalid type for 'model': expected a string, but got ${type} instead.`);
    }
    const empty = await raw('POST', '/v1/chat/completions', JSON.stringify({ model: '', messages: [{ role: 'user', content: 'hi' }] }));
    await expectErrorResponse(empty, 400, { code: 'missing_required_parameter', param: 'model' }, 'empty model');
    assert.equal(fake.requests.length, 0);
    await assertStillServes('model types');
  });

  it('missing messages: 400 missing_required_parameter, param "messages"', { timeout: T(15000) }, async () => {
    fake.reset();
    const res = await raw('POST', '/v1/chat/completions', JSON.stringify({ model: 'gpt-4o-mini' }));
    await expectErrorResponse(res, 400, { code: 'missing_required_parameter', param: 'messages' }, 'missing messages');
    assert.equal(fake.requests.length, 0, 'not forwarded upstream');
    await assertStillServes('missing messages');
  });

  it('GET /v1/chat/completions: 405 method_not_allowed', { timeout: T(15000) }, async () => {
    const res = await fetch(gw.url('/v1/chat/completions'));
    await expectErrorResponse(res, 405, { code: 'method_not_allowed' }, 'GET chat');
    await assertStillServes('405');
  });

  it('HEAD on the GET endpoints: 200 with their headers and no body; POST on them: 405 allowing GET, HEAD', { timeout: T(15000) }, async () => {
    for (const p of ['/health', '/v1/models', '/v1/models/gpt-4o-mini', '/metrics']) {
      const get = await fetch(gw.url(p));
      const head = await fetch(gw.url(p), { method: 'HEAD' });
      assert.equal(head.status, 200, `HEAD ${p}`);
      assert.equal(head.headers.get('content-type'), get.headers.get('content-type'), `HEAD ${p}: content-type`);
      assert.equal(await head.text(), '', `HEAD ${p}: no body`);
      assert.ok((await get.text()).length > 0);
      const post = await fetch(gw.url(p), { method: 'POST', body: '{}' });
      await expectErrorResponse(post, 405, { code: 'method_not_allowed' }, `POST ${p}`);
      assert.equal(post.headers.get('allow'), 'GET, HEAD');
    }
    await assertStillServes('HEAD');
  });

  it('unknown path: 404 unknown_url', { timeout: T(15000) }, async () => {
    for (const [method, path] of [
      ['POST', '/v1/nope'],
      ['GET', '/v1/nope'],
      ['POST', '/v1/chat/completions/extra'],
    ]) {
      const res = await raw(method, path, method === 'POST' ? '{}' : undefined);
      await expectErrorResponse(res, 404, { code: 'unknown_url' }, `${method} ${path}`);
    }
    await assertStillServes('404');
  });

  it(`body larger than PRISM_MAX_BODY_BYTES (${MAX_BODY}): 413 request_too_large`, { timeout: T(15000) }, async () => {
    fake.reset();
    const big = JSON.stringify(chatBody('gpt-4o-mini', { messages: [{ role: 'user', content: 'x'.repeat(10 * 1024) }] }));
    assert.ok(big.length > 10 * 1024);
    const res = await raw('POST', '/v1/chat/completions', big);
    await expectErrorResponse(res, 413, { code: 'request_too_large' }, '10 KB body');
    assert.equal(fake.requests.length, 0, 'an oversized body is not forwarded');
    await assertStillServes('413');
  });

  it('body larger than the limit sent chunked (no content-length): 413 request_too_large', { timeout: T(15000) }, async () => {
    fake.reset();
    const big = JSON.stringify(chatBody('gpt-4o-mini', { messages: [{ role: 'user', content: 'y'.repeat(10 * 1024) }] }));
    const { status, headers, text } = await new Promise((resolve, reject) => {
      const req = http.request(
        gw.url('/v1/chat/completions'),
        { method: 'POST', headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked' }, agent: false },
        (res) => {
          let data = '';
          res.setEncoding('utf8');
          res.on('data', (d) => (data += d));
          res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, text: data }));
          res.on('error', reject);
        },
      );
      req.setTimeout(T(10000), () => req.destroy(new Error('timeout')));
      req.on('error', reject);
      for (let i = 0; i < big.length; i += 1024) req.write(big.slice(i, i + 1024));
      req.end();
    });
    assert.equal(status, 413, `status (${text})`);
    assert.match(headers['content-type'] || '', /^application\/json\b/i);
    const body = JSON.parse(text);
    assert.equal(body.error.code, 'request_too_large');
    assert.equal(fake.requests.length, 0);
    await assertStillServes('chunked 413');
  });

  it('a body just under the limit is accepted', { timeout: T(15000) }, async () => {
    fake.reset();
    const base = JSON.stringify(chatBody('gpt-4o-mini', { messages: [{ role: 'user', content: '' }] }));
    const pad = MAX_BODY - base.length - 64;
    const params = chatBody('gpt-4o-mini', { messages: [{ role: 'user', content: 'z'.repeat(pad) }] });
    assert.ok(JSON.stringify(params).length < MAX_BODY);
    const r = await client.chat.completions.create(params);
    assert.deepEqual(r, fake.responses[0].body);
    assert.deepEqual(fake.requests[0].body, params);
  });

  it('shuts down gracefully after all the errors', { timeout: T(15000) }, async () => {
    await stopAndAssertClean(gw);
  });

  it('never logs the upstream key', { timeout: T(15000) }, async () => {
    await gw.stop();
    assertNoSecretsInLogs(gw, [UPSTREAM_KEY]);
  });
});

describe('upstream unreachable', { timeout: T(60000) }, () => {
  let gw;
  let port;
  let fake;

  before(async () => {
    port = await freePort(); // closed: nothing listens there
    gw = await startGateway({
      env: gatewayEnv(null, { OPENAI_BASE_URL: `http://127.0.0.1:${port}/v1` }),
    });
  });

  after(async () => {
    if (gw) await gw.kill();
    if (fake) await fake.close();
  });

  it('502 upstream_unreachable', { timeout: T(20000) }, async () => {
    const client = await sdkClient(gw);
    await assert.rejects(client.chat.completions.create(chatBody('gpt-4o-mini')), (err) => {
      assert.equal(err.status, 502, `status (${err.message})`);
      assert.equal(err.code, 'upstream_unreachable');
      return true;
    });
    const res = await fetch(gw.url('/v1/chat/completions'), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(chatBody('gpt-4o')),
    });
    const { text } = await expectErrorResponse(res, 502, { code: 'upstream_unreachable' }, 'closed upstream port');
    assert.ok(!text.includes(UPSTREAM_KEY), 'the error does not reveal the upstream key');
  });

  it('still serves, and recovers once the upstream is back', { timeout: T(20000) }, async () => {
    const h = await fetch(gw.url('/health'));
    assert.equal(h.status, 200);
    await h.arrayBuffer();
    fake = await startFakeOpenAI({ port });
    const client = await sdkClient(gw);
    const r = await client.chat.completions.create(chatBody('gpt-4o-mini'));
    assert.deepEqual(r, fake.responses[0].body);
    assert.equal(fake.requests[0].headers.authorization, `Bearer ${UPSTREAM_KEY}`);
  });

  it('shuts down gracefully', { timeout: T(15000) }, async () => {
    await stopAndAssertClean(gw);
  });

  it('never logs the upstream key', { timeout: T(15000) }, async () => {
    await gw.stop();
    assertNoSecretsInLogs(gw, [UPSTREAM_KEY]);
  });
});

// Claude through the gateway: Anthropic errors -> OpenAI errors, an unreachable upstream, the models list,
// and the keys (the upstream key goes only to Anthropic; the client's gateway key never does).
// Rules: docs/translation.md.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startFakeAnthropic, claudeEnv, assertAnthropicRequest, anthropicError, ANTHROPIC_KEY } from './lib/fake-anthropic.mjs';
import {
  T,
  startGateway,
  sdkClient,
  freePort,
  expectErrorResponse,
  assertNoSecretsInLogs,
  stopAndAssertClean,
  withDeadline,
} from './lib/gateway.mjs';

const CLIENT_KEY = 'sk-client-side-not-a-gateway-key';
const MODEL = 'claude-sonnet-4-5';
const params = (extra = {}) => ({ model: MODEL, messages: [{ role: 'user', content: 'hi' }], ...extra });

async function rejection(promise) {
  let caught;
  await assert.rejects(promise, (e) => {
    caught = e;
    return true;
  });
  return caught;
}

describe('Claude via the OpenAI SDK: errors', { timeout: T(120000) }, () => {
  let fake;
  let gw;
  let client;

  before(async () => {
    fake = await startFakeAnthropic({ apiKey: ANTHROPIC_KEY });
    gw = await startGateway({ env: claudeEnv(fake) });
    client = await sdkClient(gw, CLIENT_KEY, { maxRetries: 0 });
  });

  after(async () => {
    if (gw) await gw.kill();
    if (fake) await fake.close();
  });

  async function assertStillServes(what) {
    fake.reset();
    const r = await client.chat.completions.create(params());
    assert.equal(r.choices[0].message.content, 'Hello from fake Claude.', `after ${what}: a normal request works`);
  }

  const TABLE = [
    // [anthropic type, upstream status, client status, OpenAI type, code]
    ['invalid_request_error', 400, 400, 'invalid_request_error', 'invalid_request_error'],
    ['authentication_error', 401, 401, 'invalid_request_error', 'invalid_api_key'],
    ['permission_error', 403, 403, 'permission_error', 'permission_error'],
    ['not_found_error', 404, 404, 'invalid_request_error', 'not_found'],
    ['request_too_large', 413, 413, 'request_too_large', 'request_too_large'],
    ['rate_limit_error', 429, 429, 'rate_limit_error', 'rate_limit_exceeded'],
    ['api_error', 500, 500, 'api_error', 'api_error'],
    ['overloaded_error', 529, 503, 'api_error', 'overloaded'],
  ];
  for (const [atype, upStatus, status, type, code] of TABLE) {
    it(`Anthropic ${upStatus} ${atype} -> ${status} type ${type} code ${code}`, { timeout: T(15000) }, async () => {
      fake.reset();
      const message = `fake ${atype}: something about the request`;
      fake.next({ status: upStatus, body: anthropicError(atype, message) });
      const err = await rejection(client.chat.completions.create(params()));
      assert.ok(err instanceof OpenAI.APIError, `${err?.constructor?.name}: ${err?.message}`);
      assert.equal(err.status, status, err.message);
      assert.deepEqual(err.error, { message, type, param: null, code });
      assert.equal(fake.requests.length, 1, 'one upstream attempt (no retries from the gateway)');
      assertAnthropicRequest(fake.requests[0], { forbidden: [CLIENT_KEY] });
      // The raw body is the OpenAI envelope, as JSON.
      fake.next({ status: upStatus, body: anthropicError(atype, message) });
      const res = await fetch(gw.url('/v1/chat/completions'), {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(params()),
        signal: AbortSignal.timeout(T(5000)),
      });
      const { text } = await expectErrorResponse(res, status, { code, type, param: null }, atype);
      assert.ok(!text.includes(ANTHROPIC_KEY));
    });
  }

  it('an unknown Claude model (Anthropic 404 "model: ...") -> 404 model_not_found, as OpenAI names it', { timeout: T(15000) }, async () => {
    fake.reset();
    fake.next({ status: 404, body: anthropicError('not_found_error', 'model: claude-nonexistent-9') });
    const err = await rejection(client.chat.completions.create(params({ model: 'claude-nonexistent-9' })));
    assert.equal(err.constructor.name, 'NotFoundError');
    assert.deepEqual(err.error, { message: 'model: claude-nonexistent-9', type: 'invalid_request_error', param: null, code: 'model_not_found' });
    await assertStillServes('404 model');
  });

  it('an upstream that echoes the provider key in an error: the client sees it masked', { timeout: T(15000) }, async () => {
    fake.reset();
    fake.next({ status: 400, body: anthropicError('invalid_request_error', `bad header x-api-key: ${ANTHROPIC_KEY}`) });
    const err = await rejection(client.chat.completions.create(params()));
    assert.equal(err.status, 400);
    assert.equal(err.error.message, `bad header x-api-key: ${'*'.repeat(ANTHROPIC_KEY.length)}`);
  });

  it('429 keeps retry-after and the anthropic-ratelimit-* headers', { timeout: T(15000) }, async () => {
    fake.reset();
    fake.next({
      status: 429,
      body: anthropicError('rate_limit_error', 'Number of request tokens has exceeded your per-minute rate limit'),
      headers: {
        'retry-after': '17',
        'anthropic-ratelimit-requests-limit': '50',
        'anthropic-ratelimit-requests-remaining': '0',
        'anthropic-ratelimit-requests-reset': '2030-01-01T00:00:17Z',
      },
    });
    const err = await rejection(client.chat.completions.create(params()));
    assert.equal(err.status, 429);
    assert.equal(err.constructor.name, 'RateLimitError');
    assert.equal(err.code, 'rate_limit_exceeded');
    assert.equal(err.headers.get('retry-after'), '17');
    assert.equal(err.headers.get('anthropic-ratelimit-requests-limit'), '50');
    assert.equal(err.headers.get('anthropic-ratelimit-requests-remaining'), '0');
    assert.equal(err.headers.get('anthropic-ratelimit-requests-reset'), '2030-01-01T00:00:17Z');
    await assertStillServes('429');
  });

  it('x-should-retry, retry-after-ms and the upstream request-id reach the client; the SDK obeys x-should-retry: false', { timeout: T(20000) }, async () => {
    fake.reset();
    const retrying = await sdkClient(gw, CLIENT_KEY, { maxRetries: 2 });
    fake.next({
      status: 500,
      body: anthropicError('api_error', 'Internal server error'),
      headers: { 'x-should-retry': 'false', 'retry-after-ms': '1500', 'request-id': 'req_011CUpstreamId' },
    });
    const err = await rejection(retrying.chat.completions.create(params()));
    assert.equal(err.status, 500, err.message);
    assert.equal(fake.requests.length, 1, 'x-should-retry: false: the SDK does not retry');
    assert.equal(err.headers.get('x-should-retry'), 'false');
    assert.equal(err.headers.get('retry-after-ms'), '1500');
    assert.equal(err.headers.get('x-prism-upstream-request-id'), 'req_011CUpstreamId');
    assert.notEqual(err.headers.get('x-request-id'), 'req_011CUpstreamId', "x-request-id stays Prism's own");

    fake.next({ headers: { 'request-id': 'req_011COkId' } });
    const { response } = await client.chat.completions.create(params()).withResponse();
    assert.equal(response.headers.get('x-prism-upstream-request-id'), 'req_011COkId');
    await assertStillServes('x-should-retry');
  });

  it('HTTP 529 with an odd error type still -> 503', { timeout: T(15000) }, async () => {
    fake.reset();
    fake.next({ status: 529, body: anthropicError('something_else', 'busy') });
    const err = await rejection(client.chat.completions.create(params()));
    assert.equal(err.status, 503, err.message);
  });

  it('an unknown error type keeps the upstream status', { timeout: T(15000) }, async () => {
    fake.reset();
    fake.next({ status: 418, body: anthropicError('teapot_error', 'I am a teapot') });
    const err = await rejection(client.chat.completions.create(params()));
    assert.equal(err.status, 418, err.message);
    assert.deepEqual(err.error, { message: 'I am a teapot', type: 'teapot_error', param: null, code: 'teapot_error' });
  });

  it('a non-JSON error body -> code upstream_error, "Anthropic answered HTTP <status>." and at most 200 chars of it', { timeout: T(20000) }, async () => {
    fake.reset();
    const html = '<html><body>Bad gateway ' + 'x'.repeat(400) + '</body></html>';
    fake.next({ status: 502, rawBody: html, contentType: 'text/html' });
    let err = await rejection(client.chat.completions.create(params()));
    assert.equal(err.status, 502, err.message);
    assert.equal(err.type, 'api_error');
    assert.equal(err.code, 'upstream_error');
    assert.ok(err.error.message.startsWith('Anthropic answered HTTP 502.'), err.error.message);
    assert.ok(err.error.message.length <= 'Anthropic answered HTTP 502.'.length + 1 + 200 + 8, `bounded: ${err.error.message.length}`);

    fake.reset();
    fake.next({ status: 400, rawBody: 'bad request, plain text', contentType: 'text/plain' });
    err = await rejection(client.chat.completions.create(params()));
    assert.equal(err.status, 400, err.message);
    assert.equal(err.type, 'invalid_request_error');
    assert.equal(err.code, 'upstream_error');
    assert.ok(err.error.message.startsWith('Anthropic answered HTTP 400.'), err.error.message);

    fake.reset();
    fake.next({ status: 500, rawBody: '{"unexpected":"shape"}', contentType: 'application/json' });
    err = await rejection(client.chat.completions.create(params()));
    assert.equal(err.status, 500, err.message);
    assert.equal(err.type, 'api_error');
    assert.equal(err.code, 'upstream_error');
    await assertStillServes('non-JSON errors');
  });

  it('a 200 that is not a Message -> 502', { timeout: T(15000) }, async () => {
    fake.reset();
    fake.next({ status: 200, rawBody: '{"hello":"world"}', contentType: 'application/json' });
    const err = await rejection(client.chat.completions.create(params()));
    assert.equal(err.status, 502, err.message);
    await assertStillServes('a bad 200');
  });

  it('GET /v1/models lists claude models from the provider config', { timeout: T(10000) }, async () => {
    const page = await client.models.list();
    const ids = page.data.map((m) => m.id);
    const claude = page.data.filter((m) => m.id.startsWith('claude'));
    assert.ok(claude.length >= 1, `at least one claude model listed (got ${ids.join(', ')})`);
    for (const m of claude) {
      assert.equal(m.object, 'model');
      assert.equal(typeof m.created, 'number');
      assert.equal(typeof m.owned_by, 'string');
    }
    // Each listed claude model is routed to the provider.
    fake.reset();
    const r = await client.chat.completions.create({ model: claude[0].id, messages: [{ role: 'user', content: 'hi' }] });
    assert.equal(fake.requests.length, 1);
    assert.equal(fake.requests[0].body.model, claude[0].id);
    assert.equal(r.object, 'chat.completion');
  });

  it('shuts down cleanly and never logs the Anthropic key', { timeout: T(15000) }, async () => {
    await stopAndAssertClean(gw);
    assertNoSecretsInLogs(gw, [ANTHROPIC_KEY]);
  });
});

describe('Claude: an unreachable upstream', { timeout: T(60000) }, () => {
  let gw;
  let client;

  before(async () => {
    const port = await freePort(); // nothing listens there
    gw = await startGateway({ env: claudeEnv({ baseURL: `http://127.0.0.1:${port}` }) });
    client = await sdkClient(gw, CLIENT_KEY);
  });

  after(async () => {
    if (gw) await gw.kill();
  });

  it('non-streamed: 502 upstream_unreachable', { timeout: T(15000) }, async () => {
    const err = await rejection(client.chat.completions.create(params()));
    assert.equal(err.status, 502, err.message);
    assert.equal(err.code, 'upstream_unreachable');
    assert.ok(!JSON.stringify(err.error).includes(ANTHROPIC_KEY));
  });

  it('streamed: 502 upstream_unreachable (before any chunk)', { timeout: T(15000) }, async () => {
    const err = await rejection(
      withDeadline(T(8000), 'unreachable stream', async (signal) => {
        const s = await client.chat.completions.create(params({ stream: true }), { signal });
        for await (const c of s) void c;
      }),
    );
    assert.equal(err.status, 502, err.message);
    assert.equal(err.code, 'upstream_unreachable');
  });

  it('never logs the Anthropic key', { timeout: T(15000) }, async () => {
    await stopAndAssertClean(gw);
    assertNoSecretsInLogs(gw, [ANTHROPIC_KEY]);
  });
});

describe('Claude behind gateway keys: the client key authenticates to Prism only', { timeout: T(60000) }, () => {
  const GATEWAY_KEY = 'sk-prism-gateway-key-e2e-7f3a';
  let fake;
  let gw;

  before(async () => {
    fake = await startFakeAnthropic({ apiKey: ANTHROPIC_KEY });
    gw = await startGateway({ env: claudeEnv(fake, { PRISM_API_KEYS: GATEWAY_KEY }) });
  });

  after(async () => {
    if (gw) await gw.kill();
    if (fake) await fake.close();
  });

  it('x-api-key upstream is the Anthropic key, never the gateway key; a wrong gateway key never reaches Anthropic', { timeout: T(20000) }, async () => {
    const good = await sdkClient(gw, GATEWAY_KEY);
    fake.reset();
    const r = await good.chat.completions.create(params());
    assert.equal(r.object, 'chat.completion');
    assertAnthropicRequest(fake.requests[0], { forbidden: [GATEWAY_KEY] });

    fake.reset();
    const chunks = [];
    await withDeadline(T(8000), 'stream', async (signal) => {
      const s = await good.chat.completions.create(params({ stream: true }), { signal });
      for await (const c of s) chunks.push(c);
    });
    assert.ok(chunks.length > 1);
    assertAnthropicRequest(fake.requests[0], { forbidden: [GATEWAY_KEY] });

    fake.reset();
    const bad = await sdkClient(gw, 'sk-wrong-key');
    const err = await rejection(bad.chat.completions.create(params()));
    assert.equal(err.status, 401, err.message);
    assert.equal(fake.requests.length, 0, 'an unauthenticated request never reaches Anthropic');
  });

  it('never logs either key', { timeout: T(15000) }, async () => {
    await stopAndAssertClean(gw);
    assertNoSecretsInLogs(gw, [ANTHROPIC_KEY, GATEWAY_KEY]);
  });
});

// Browsers (CORS): a request with an Origin header is answered only for the origins in
// server.cors_origins (PRISM_CORS_ORIGINS in the default config); the preflight is answered before
// authentication; any other origin gets 403 before a provider is reached.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startFakeOpenAI } from './lib/fake-openai.mjs';
import { T, startGateway, gatewayEnv, chatBody, expectErrorResponse, stopAndAssertClean } from './lib/gateway.mjs';

const APP = 'https://app.example.com';
const KEY = 'gw-cors-key-1';

describe('CORS: listed origins, the preflight, and everyone else', { timeout: T(60000) }, () => {
  let fake;
  let listed; // PRISM_CORS_ORIGINS=APP
  let any; // PRISM_CORS_ORIGINS=*
  let none; // the default: no origin allowed

  before(async () => {
    fake = await startFakeOpenAI();
    listed = await startGateway({ env: gatewayEnv(fake, { PRISM_API_KEYS: KEY, PRISM_CORS_ORIGINS: `${APP}, http://localhost:5173` }) });
    any = await startGateway({ env: gatewayEnv(fake, { PRISM_API_KEYS: KEY, PRISM_CORS_ORIGINS: '*' }) });
    none = await startGateway({ env: gatewayEnv(fake) });
  });

  after(async () => {
    for (const gw of [listed, any, none]) if (gw) await gw.kill();
    if (fake) await fake.close();
  });

  const chat = (gw, origin, headers = {}) =>
    fetch(gw.url('/v1/chat/completions'), {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}`, ...(origin ? { origin } : {}), ...headers },
      body: JSON.stringify(chatBody('gpt-4o-mini')),
      signal: AbortSignal.timeout(T(5000)),
    });

  it('the preflight from a listed origin: 204 with the methods, the asked headers and a max-age, no key needed', { timeout: T(10000) }, async () => {
    const res = await fetch(listed.url('/v1/chat/completions'), {
      method: 'OPTIONS',
      headers: { origin: APP, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type, x-stainless-os' },
    });
    assert.equal(res.status, 204);
    assert.equal(res.headers.get('access-control-allow-origin'), APP);
    assert.match(res.headers.get('access-control-allow-methods'), /\bPOST\b/);
    assert.equal(res.headers.get('access-control-allow-headers'), 'authorization, content-type, x-stainless-os');
    assert.equal(res.headers.get('access-control-max-age'), '600');
    assert.equal(await res.text(), '');
  });

  it('a request from a listed origin: answered, with allow-origin, vary and the exposed headers', { timeout: T(10000) }, async () => {
    fake.reset();
    const res = await chat(listed, APP);
    assert.equal(res.status, 200, await res.clone().text());
    assert.equal((await res.json()).object, 'chat.completion');
    assert.equal(res.headers.get('access-control-allow-origin'), APP);
    assert.match(res.headers.get('vary') ?? '', /origin/i);
    assert.match(res.headers.get('access-control-expose-headers'), /\bx-request-id\b/);
    const local = await chat(listed, 'http://localhost:5173');
    assert.equal(local.status, 200);
    assert.equal(local.headers.get('access-control-allow-origin'), 'http://localhost:5173');
  });

  it('an origin not listed, or any origin when none is configured: 403 origin_not_allowed, nothing upstream', { timeout: T(10000) }, async () => {
    fake.reset();
    for (const [gw, origin] of [
      [listed, 'https://evil.example'],
      [listed, 'https://app.example.com.evil.example'],
      [listed, 'null'],
      [none, APP],
    ]) {
      const res = await chat(gw, origin, gw === none ? { authorization: '' } : {});
      const { error } = await expectErrorResponse(res, 403, { code: 'origin_not_allowed' }, origin);
      assert.match(error.message, /server\.cors_origins/);
      assert.equal(res.headers.get('access-control-allow-origin'), null);
      const pre = await fetch(gw.url('/v1/chat/completions'), { method: 'OPTIONS', headers: { origin, 'access-control-request-method': 'POST' } });
      assert.equal(pre.status, 403, `preflight from ${origin}`);
    }
    assert.equal(fake.requests.length, 0, 'no provider call for a refused origin');
  });

  it('"*": any origin, answered with allow-origin *', { timeout: T(10000) }, async () => {
    const res = await chat(any, 'https://whatever.example');
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('access-control-allow-origin'), '*');
  });

  it('requests without an Origin (SDKs, curl) are unaffected, and the gateways stop cleanly', { timeout: T(20000) }, async () => {
    assert.equal((await chat(listed, null)).status, 200);
    const res = await fetch(none.url('/v1/chat/completions'), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(chatBody('gpt-4o-mini')) });
    assert.equal(res.status, 200);
    for (const gw of [listed, any, none]) await stopAndAssertClean(gw);
    listed = any = none = null;
  });
});

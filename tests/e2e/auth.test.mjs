// Gateway keys (PRISM_API_KEYS): who may call, and that the keys never travel upstream or into the logs.
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
  sdkClient,
  chatBody,
  expectErrorResponse,
} from './lib/gateway.mjs';

const GW_KEYS = ['gw-key-1', 'gw-key-2'];
// Wrong keys that do not contain a real key as a substring (the log check below looks for the real ones).
const WRONG_KEYS = ['wrong-key-e2e-777', 'gw-key-', 'GW-KEY-1', 'gw-key-3'];

describe('gateway API keys', { timeout: T(120000) }, () => {
  let fake;
  let gw;

  before(async () => {
    fake = await startFakeOpenAI();
    gw = await startGateway({ env: gatewayEnv(fake, { PRISM_API_KEYS: GW_KEYS.join(',') }) });
  });

  after(async () => {
    if (gw) await gw.kill();
    if (fake) await fake.close();
  });

  function post(headers = {}, body = chatBody('gpt-4o-mini')) {
    return fetch(gw.url('/v1/chat/completions'), {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify(body),
    });
  }

  it('/health needs no key', { timeout: T(10000) }, async () => {
    const res = await fetch(gw.url('/health'));
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { status: 'ok' });
  });

  it('no Authorization header: 401 with an OpenAI error body, nothing sent upstream', { timeout: T(10000) }, async () => {
    fake.reset();
    await expectErrorResponse(await post(), 401, {}, 'no Authorization');
    assert.equal(fake.requests.length, 0);
  });

  it('a wrong key: 401 invalid_api_key, and the key is not echoed', { timeout: T(15000) }, async () => {
    fake.reset();
    for (const key of WRONG_KEYS) {
      const res = await post({ authorization: `Bearer ${key}` });
      const { text } = await expectErrorResponse(res, 401, { code: 'invalid_api_key' }, `wrong key ${key}`);
      assert.ok(!text.includes(key), `the error body must not echo the key ${key}: ${text}`);
    }
    // Malformed Authorization headers are refused too.
    for (const value of ['Bearer', 'Token wrong-key-e2e-777']) {
      const res = await post({ authorization: value });
      await expectErrorResponse(res, 401, {}, `Authorization: ${value}`);
    }
    assert.equal(fake.requests.length, 0, 'refused requests never reach the upstream');

    const client = await sdkClient(gw, 'wrong-key-e2e-sdk');
    await assert.rejects(client.chat.completions.create(chatBody('gpt-4o-mini')), (err) => {
      assert.equal(err.status, 401);
      assert.equal(err.code, 'invalid_api_key');
      assert.ok(!String(err.message).includes('wrong-key-e2e-sdk'), 'message does not echo the key');
      return true;
    });
  });

  for (const key of GW_KEYS) {
    it(`key ${key} is accepted; the upstream sees only the upstream key`, { timeout: T(15000) }, async () => {
      fake.reset();
      const client = await sdkClient(gw, key);
      const r = await client.chat.completions.create(chatBody('gpt-4o-mini'));
      assert.deepEqual(r, fake.responses[0].body);
      assert.equal(fake.requests.length, 1);
      const up = fake.requests[0];
      assert.equal(up.headers.authorization, `Bearer ${UPSTREAM_KEY}`);
      for (let i = 0; i < up.rawHeaders.length; i += 2) {
        for (const k of GW_KEYS) {
          assert.ok(!up.rawHeaders[i + 1].includes(k), `gateway key leaked upstream in header ${up.rawHeaders[i]}`);
        }
      }
      assert.ok(!up.rawBody.includes(key), 'gateway key not in the upstream body');
    });
  }

  it('two Authorization headers (a right key and a wrong one, in either order): 401, nothing upstream', { timeout: T(10000) }, async () => {
    fake.reset();
    const body = JSON.stringify(chatBody('gpt-4o-mini'));
    for (const [a, b] of [
      [GW_KEYS[0], WRONG_KEYS[0]],
      [WRONG_KEYS[0], GW_KEYS[0]],
    ]) {
      const answer = await new Promise((resolve, reject) => {
        const s = net.connect(gw.port, '127.0.0.1');
        let data = '';
        s.setEncoding('latin1');
        s.on('data', (d) => (data += d));
        s.on('error', reject);
        s.on('end', () => resolve(data));
        s.write(
          `POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${a}\r\nAuthorization: Bearer ${b}\r\n` +
            `Content-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`,
        );
      });
      assert.match(answer, /^HTTP\/1\.1 401 /, answer.slice(0, 200));
      assert.match(answer, /"code":"invalid_api_key"/);
    }
    assert.equal(fake.requests.length, 0);
  });

  it('a streaming request with a right key works and is authenticated upstream with the upstream key', { timeout: T(15000) }, async () => {
    fake.reset();
    const client = await sdkClient(gw, 'gw-key-2');
    const stream = await client.chat.completions.create(chatBody('gpt-4o', { stream: true }));
    let text = '';
    for await (const c of stream) text += c.choices[0]?.delta?.content ?? '';
    assert.equal(text, 'Hello from the fake stream.');
    assert.equal(fake.requests[0].headers.authorization, `Bearer ${UPSTREAM_KEY}`);
  });

  it('GET /v1/models needs a key too', { timeout: T(10000) }, async () => {
    await expectErrorResponse(await fetch(gw.url('/v1/models')), 401, {}, 'models without key');
    await expectErrorResponse(
      await fetch(gw.url('/v1/models'), { headers: { authorization: 'Bearer wrong-key-e2e-777' } }),
      401,
      { code: 'invalid_api_key' },
      'models with a wrong key',
    );
    const client = await sdkClient(gw, 'gw-key-1');
    const page = await client.models.list();
    assert.ok(page.data.some((m) => m.id === 'gpt-4o'));
  });

  it('model-level errors still come after authentication (unauthenticated claude-* request: 401)', { timeout: T(10000) }, async () => {
    await expectErrorResponse(await post({}, chatBody('claude-3-5-sonnet-latest')), 401, {}, 'claude without key');
  });

  it('shuts down gracefully on SIGTERM (exit 0)', { timeout: T(15000) }, async () => {
    await stopAndAssertClean(gw);
  });

  it('neither the upstream key nor the gateway keys are logged', { timeout: T(15000) }, async () => {
    await gw.stop(); // idempotent: the logs are complete once it has exited
    assertNoSecretsInLogs(gw, [UPSTREAM_KEY, ...GW_KEYS]);
  });
});

// Chat completions through the gateway with the official OpenAI SDK: routing to openai_provider,
// pass-through of bodies and statuses, streaming without buffering, models list, trace, request ids.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startFakeOpenAI, openaiError, makeCompletion } from './lib/fake-openai.mjs';
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
  withDeadline,
  REPO_ROOT,
} from './lib/gateway.mjs';

const CLIENT_KEY = 'sk-client-side-not-a-gateway-key';

describe('chat completions via the OpenAI SDK', { timeout: T(120000) }, () => {
  let fake;
  let gw;
  let client;

  before(async () => {
    fake = await startFakeOpenAI();
    gw = await startGateway({ env: gatewayEnv(fake) });
    client = await sdkClient(gw, CLIENT_KEY);
  });

  after(async () => {
    if (gw) await gw.kill();
    if (fake) await fake.close();
  });

  // A normal request still works (used after every error case).
  async function assertStillServes(what) {
    const before = fake.requests.length;
    const r = await client.chat.completions.create(chatBody('gpt-4o-mini'));
    assert.equal(r.object, 'chat.completion', `after ${what}: a normal request should succeed`);
    assert.equal(r.choices[0].message.content, fake.responses.at(-1).body.choices[0].message.content);
    assert.equal(fake.requests.length, before + 1);
  }

  function assertUpstreamAuth(req) {
    assert.equal(req.headers.authorization, `Bearer ${UPSTREAM_KEY}`, 'upstream must get the upstream key');
    for (const [name, value] of Object.entries(req.headers)) {
      assert.ok(!String(value).includes(CLIENT_KEY), `the client's key must not be forwarded upstream (header ${name})`);
    }
  }

  it('GET /health answers 200 {"status":"ok"}', { timeout: T(10000) }, async () => {
    const res = await fetch(gw.url('/health'));
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { status: 'ok' });
    assert.ok(res.headers.get('x-request-id'), 'x-request-id on /health');
  });

  it('non-streaming: body forwarded unchanged to $OPENAI_BASE_URL/chat/completions, response returned unchanged', { timeout: T(15000) }, async () => {
    fake.reset();
    const params = {
      model: 'gpt-4o-mini',
      messages: [
        { role: 'system', content: 'You are terse.' },
        { role: 'user', content: 'Unicode survives: héllo ✓ 日本語 🚀 "quotes" \\ backslash\nnewline' },
      ],
      temperature: 0.25,
      top_p: 0.9,
      max_completion_tokens: 64,
      seed: 42,
      n: 1,
      user: 'e2e-user',
      stop: ['\n\n'],
      metadata: { suite: 'e2e', nested: 'yes' },
      response_format: { type: 'text' },
      logit_bias: { 50256: -100 },
    };
    const { data, response } = await client.chat.completions.create(params).withResponse();
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type') || '', /^application\/json\b/i);
    assert.ok(response.headers.get('x-request-id'), 'x-request-id on a chat response');

    assert.equal(fake.requests.length, 1, 'exactly one upstream request');
    const up = fake.requests[0];
    assert.equal(up.method, 'POST');
    assert.equal(up.url, '/v1/chat/completions');
    assert.deepEqual(up.body, params, 'the client JSON body reaches the upstream unchanged');
    assertUpstreamAuth(up);

    assert.deepEqual(data, fake.responses[0].body, 'the SDK parses exactly what the upstream sent');
  });

  for (const model of ['gpt-4o', 'o1-mini', 'o3-mini', 'o4-mini']) {
    it(`routes model ${model} to openai_provider`, { timeout: T(15000) }, async () => {
      fake.reset();
      const r = await client.chat.completions.create(chatBody(model));
      assert.equal(fake.requests.length, 1, `${model} should reach the OpenAI upstream`);
      assert.equal(fake.requests[0].body.model, model);
      assertUpstreamAuth(fake.requests[0]);
      assert.deepEqual(r, fake.responses[0].body);
    });
  }

  it('a model routed to a provider that is not installed: 501 provider_not_installed', { timeout: T(30000) }, async () => {
    // The router may name providers nobody installed (here: mistral-* -> mistral_provider).
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'prism-501-'));
    const cfg = path.join(dir, 'config.yml');
    const base = fs.readFileSync(path.join(REPO_ROOT, 'config.yml'), 'utf8');
    fs.writeFileSync(
      cfg,
      base.replace(
        'plugins:\n  enabled: [ai_gateway]\n',
        'plugins:\n  enabled: [ai_gateway]\n  config:\n    model_router:\n' +
          '      prefix_map: { gpt: openai_provider, mistral: mistral_provider }\n',
      ),
    );
    assert.notEqual(fs.readFileSync(cfg, 'utf8'), base, 'the override was written');
    const gw2 = await startGateway({ env: gatewayEnv(fake), config: cfg });
    try {
      fake.reset();
      const client2 = await sdkClient(gw2, CLIENT_KEY);
      await assert.rejects(client2.chat.completions.create(chatBody('mistral-large-latest')), (err) => {
        assert.equal(err.status, 501, `status (${err.message})`);
        assert.equal(err.code, 'provider_not_installed');
        assert.match(err.message, /mistral_provider/);
        return true;
      });
      const res = await fetch(gw2.url('/v1/chat/completions'), {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(chatBody('mistral-small')),
      });
      await expectErrorResponse(res, 501, { code: 'provider_not_installed' }, 'uninstalled provider');
      assert.equal(fake.requests.length, 0, 'nothing may reach an upstream');
    } finally {
      await stopAndAssertClean(gw2);
      fs.rmSync(dir, { recursive: true, force: true });
    }
    await assertStillServes('501');
  });

  it('a model matching no provider: 404 model_not_found, param "model"', { timeout: T(15000) }, async () => {
    fake.reset();
    await assert.rejects(client.chat.completions.create(chatBody('nosuchmodel-e2e-1')), (err) => {
      assert.equal(err.status, 404, `status (${err.message})`);
      assert.equal(err.code, 'model_not_found');
      assert.equal(err.param, 'model');
      return true;
    });
    const res = await fetch(gw.url('/v1/chat/completions'), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(chatBody('nosuchmodel-e2e-2')),
    });
    await expectErrorResponse(res, 404, { code: 'model_not_found', param: 'model' }, 'unknown model');
    assert.equal(fake.requests.length, 0, 'nothing may reach the upstream');
    await assertStillServes('404 model_not_found');
  });

  it('upstream 429 comes back with the same status and error body', { timeout: T(15000) }, async () => {
    fake.reset();
    const body = openaiError(
      'Rate limit reached for gpt-4o-mini in organization org-e2e on requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in 20s.',
      'requests',
      null,
      'rate_limit_exceeded',
    );
    fake.next({ status: 429, body, headers: { 'retry-after': '20', 'x-ratelimit-remaining-requests': '0' } });
    let caught;
    await assert.rejects(client.chat.completions.create(chatBody('gpt-4o-mini')), (err) => {
      caught = err;
      return true;
    });
    assert.equal(caught.status, 429, `status (${caught.message})`);
    assert.equal(caught.constructor.name, 'RateLimitError');
    assert.equal(caught.code, 'rate_limit_exceeded');
    assert.equal(caught.type, 'requests');
    assert.equal(caught.param, null);
    assert.deepEqual(caught.error, body.error, 'the upstream error body comes back unchanged');
    assert.equal(fake.requests.length, 1, 'one upstream attempt (no retries from the gateway)');
    assert.equal(caught.headers.get('retry-after'), '20');
    assert.equal(caught.headers.get('x-ratelimit-remaining-requests'), '0');
    await assertStillServes('upstream 429');
  });

  it('rate-limit headers reach the client whatever their case, the first of a repeated one; others stay behind', { timeout: T(15000) }, async () => {
    fake.reset();
    fake.next((req, res, record) => {
      const body = makeCompletion(record.body);
      res.setHeader('Content-Type', 'application/json');
      res.setHeader('X-RateLimit-Limit-Requests', '10000');
      res.setHeader('x-ratelimit-remaining-tokens', '149984');
      res.setHeader('OpenAI-Processing-Ms', '203');
      res.setHeader('x-ratelimit-reset-requests', ['6ms', '99s']);
      res.setHeader('x-upstream-secret-thing', 'not for clients');
      res.end(JSON.stringify(body));
    });
    const { data, response } = await client.chat.completions.create(chatBody('gpt-4o-mini')).withResponse();
    assert.equal(data.object, 'chat.completion');
    assert.equal(response.headers.get('x-ratelimit-limit-requests'), '10000');
    assert.equal(response.headers.get('x-ratelimit-remaining-tokens'), '149984');
    assert.equal(response.headers.get('openai-processing-ms'), '203');
    assert.equal(response.headers.get('x-ratelimit-reset-requests'), '6ms', 'one value: the first line');
    assert.equal(response.headers.get('x-upstream-secret-thing'), null, 'only the documented headers are relayed');
    assert.equal(response.headers.get('x-ratelimit-limit-tokens'), null, 'absent upstream, absent here');
    await assertStillServes('relayed headers');
  });

  it('x-should-retry, retry-after-ms and the upstream x-request-id reach the client; the SDK obeys x-should-retry: false', { timeout: T(20000) }, async () => {
    fake.reset();
    const retrying = await sdkClient(gw, CLIENT_KEY, { maxRetries: 2 });
    const body = openaiError('The server had an error while processing your request.', 'server_error', null, null);
    fake.next({ status: 500, body, headers: { 'x-should-retry': 'false', 'retry-after-ms': '1500', 'x-request-id': 'req_upstream123' } });
    let caught;
    await assert.rejects(retrying.chat.completions.create(chatBody('gpt-4o-mini')), (err) => {
      caught = err;
      return true;
    });
    assert.equal(caught.status, 500, caught.message);
    assert.equal(fake.requests.length, 1, 'x-should-retry: false: the SDK does not retry');
    assert.equal(caught.headers.get('x-should-retry'), 'false');
    assert.equal(caught.headers.get('retry-after-ms'), '1500');
    assert.equal(caught.headers.get('x-prism-upstream-request-id'), 'req_upstream123');
    assert.notEqual(caught.headers.get('x-request-id'), 'req_upstream123', "x-request-id stays Prism's own");
    await assertStillServes('x-should-retry');
  });

  it('an upstream that echoes the provider key (error body, answer, stream): the client sees it masked', { timeout: T(20000) }, async () => {
    fake.reset();
    const masked = '*'.repeat(UPSTREAM_KEY.length);
    fake.next({ status: 401, body: openaiError(`Incorrect API key provided: ${UPSTREAM_KEY}.`, 'invalid_request_error', null, 'invalid_api_key') });
    const res = await fetch(gw.url('/v1/chat/completions'), {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${CLIENT_KEY}` },
      body: JSON.stringify(chatBody('gpt-4o-mini')),
      signal: AbortSignal.timeout(T(5000)),
    });
    const text = await res.text();
    assert.equal(res.status, 401);
    assert.ok(!text.includes(UPSTREAM_KEY), text);
    assert.equal(JSON.parse(text).error.message, `Incorrect API key provided: ${masked}.`);

    fake.next({ content: `your key is ${UPSTREAM_KEY}` });
    const r = await client.chat.completions.create(chatBody('gpt-4o-mini'));
    assert.equal(r.choices[0].message.content, `your key is ${masked}`);

    fake.next({ streamChunks: ['key: ', UPSTREAM_KEY, ' end'] });
    const stream = await client.chat.completions.create(chatBody('gpt-4o-mini', { stream: true }));
    let streamed = '';
    for await (const c of stream) streamed += c.choices[0]?.delta?.content ?? '';
    assert.equal(streamed, `key: ${masked} end`);
  });

  it('upstream 400 invalid_request_error comes back with the same status and error body', { timeout: T(15000) }, async () => {
    fake.reset();
    const body = openaiError(
      "Invalid value for 'temperature': expected a number between 0 and 2.",
      'invalid_request_error',
      'temperature',
      'invalid_value',
    );
    fake.next({ status: 400, body });
    const params = chatBody('gpt-4o', { temperature: 7 });
    await assert.rejects(client.chat.completions.create(params), (err) => {
      assert.equal(err.status, 400, `status (${err.message})`);
      assert.equal(err.code, 'invalid_value');
      assert.equal(err.param, 'temperature');
      assert.equal(err.type, 'invalid_request_error');
      assert.deepEqual(err.error, body.error);
      assert.match(err.message, /Invalid value for 'temperature'/);
      return true;
    });
    assert.deepEqual(fake.requests[0].body, params);
    await assertStillServes('upstream 400');
  });

  it('streaming is forwarded chunk by chunk, never buffered (upstream holds the rest until the client has the first chunk)', { timeout: T(20000) }, async () => {
    fake.reset();
    let release;
    const gate = new Promise((r) => (release = r));
    fake.next({ gate, gateAfter: 1 });
    const params = chatBody('gpt-4o-mini', { stream: true, stream_options: { include_usage: true } });
    const received = [];
    let contentType = null;
    let requestId = null;
    let firstChunkAt = null;
    try {
      await withDeadline(
        T(5000),
        'the stream did not complete: the first chunk never reached the client while the upstream held back the rest (is the gateway buffering the stream?)',
        async (signal) => {
          const { data: stream, response } = await client.chat.completions.create(params, { signal }).withResponse();
          contentType = response.headers.get('content-type');
          requestId = response.headers.get('x-request-id');
          for await (const chunk of stream) {
            received.push(chunk);
            if (received.length === 1) {
              firstChunkAt = Date.now();
              release();
            }
          }
        },
      );
    } finally {
      release(); // never leave the fake waiting
    }
    const sent = fake.responses[0];
    // The upstream sent the rest only after the client had its first chunk (release() is called there).
    assert.ok(sent.gatedAt && sent.releasedAt, 'the fake upstream did hold the stream back, then released it');
    assert.ok(firstChunkAt !== null && firstChunkAt <= sent.releasedAt, 'the first chunk arrived before the upstream sent the rest');
    assert.ok(sent.done, 'the upstream finished the stream');
    assert.match(contentType || '', /^text\/event-stream\b/i, 'streaming content-type');
    assert.ok(requestId, 'x-request-id on a streaming response');

    assert.deepEqual(fake.requests[0].body, params, 'the streaming request body reaches the upstream unchanged');
    assertUpstreamAuth(fake.requests[0]);

    assert.deepEqual(received, sent.chunks, 'every chunk arrives, unchanged and in order');
    const text = received.map((c) => c.choices[0]?.delta?.content ?? '').join('');
    assert.equal(text, 'Hello from the fake stream.');
    assert.equal(received[0].choices[0].delta.role, 'assistant');
    const finishes = received.filter((c) => c.choices[0]?.finish_reason);
    assert.equal(finishes.length, 1);
    assert.equal(finishes[0].choices[0].finish_reason, 'stop');
    const usage = received.at(-1);
    assert.deepEqual(usage.choices, [], 'the usage chunk has no choices');
    assert.ok(usage.usage && usage.usage.total_tokens === usage.usage.prompt_tokens + usage.usage.completion_tokens);
    assert.equal(usage.usage.completion_tokens, 6);
    await assertStillServes('a stream');
  });

  it('streaming without include_usage: no usage chunk; raw SSE ends with data: [DONE]', { timeout: T(15000) }, async () => {
    fake.reset();
    fake.next({ streamChunks: ['One', ' two', ' three'] });
    const params = chatBody('gpt-4o', { stream: true });
    const res = await fetch(gw.url('/v1/chat/completions'), {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
      body: JSON.stringify(params),
      signal: AbortSignal.timeout(T(10000)),
    });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') || '', /^text\/event-stream\b/i);
    assert.ok(res.headers.get('x-request-id'));
    const raw = await res.text();
    const events = raw
      .split(/\r?\n\r?\n/)
      .map((e) => e.trim())
      .filter(Boolean);
    const datas = events
      .flatMap((e) => e.split(/\r?\n/))
      .filter((l) => l.startsWith('data:'))
      .map((l) => l.slice(5).trim());
    assert.equal(datas.at(-1), '[DONE]', 'the stream ends with data: [DONE]');
    const chunks = datas.slice(0, -1).map((d) => JSON.parse(d));
    assert.deepEqual(chunks, fake.responses[0].chunks);
    assert.ok(chunks.every((c) => c.choices.length === 1 && !('usage' in c)), 'no usage chunk without include_usage');
    assert.equal(chunks.map((c) => c.choices[0].delta.content ?? '').join(''), 'One two three');
    assert.equal(chunks.at(-1).choices[0].finish_reason, 'stop');
    assert.deepEqual(fake.requests[0].body, params);
  });

  it('parallel requests each get their own response', { timeout: T(20000) }, async () => {
    fake.reset();
    const models = ['gpt-4o', 'gpt-4o-mini', 'o1-mini', 'o3-mini', 'o4-mini', 'gpt-4.1', 'gpt-4.1-mini', 'gpt-4o-2024-08-06'];
    const results = await Promise.all(
      models.map((m, i) =>
        client.chat.completions.create({ model: m, messages: [{ role: 'user', content: `request number ${i}` }] }),
      ),
    );
    assert.equal(fake.requests.length, models.length);
    for (let i = 0; i < models.length; i++) {
      assert.equal(results[i].model, models[i]);
      const sent = fake.responses.find((r) => r.body?.id === results[i].id);
      assert.ok(sent, `response ${i} is one the upstream sent`);
      assert.deepEqual(results[i], sent.body);
      const req = fake.requests.find((r) => r.body.messages[0].content === `request number ${i}`);
      assert.equal(req.body.model, models[i]);
    }
  });

  it('GET /v1/models lists the configured models in the OpenAI list format', { timeout: T(10000) }, async () => {
    const ids = [];
    const page = await client.models.list();
    for (const m of page.data) {
      assert.equal(typeof m.id, 'string');
      assert.equal(m.object, 'model');
      assert.equal(typeof m.created, 'number');
      assert.equal(typeof m.owned_by, 'string');
      ids.push(m.id);
    }
    assert.ok(ids.includes('gpt-4o'), `gpt-4o listed (got ${ids.join(', ')})`);
    assert.ok(ids.includes('gpt-4o-mini'), `gpt-4o-mini listed (got ${ids.join(', ')})`);

    const res = await fetch(gw.url('/v1/models'));
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') || '', /^application\/json\b/i);
    const body = await res.json();
    assert.equal(body.object, 'list');
    assert.ok(Array.isArray(body.data));
    assert.deepEqual(body.data.map((m) => m.id).sort(), [...ids].sort());
  });

  it('X-Prism-Trace: true returns x-prism-trace with the steps and their durations, and server-timing', { timeout: T(15000) }, async () => {
    fake.reset();
    fake.next({ content: 'slow', delayMs: 150 });
    const sent = performance.now();
    const res = await fetch(gw.url('/v1/chat/completions'), {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-prism-trace': 'true' },
      body: JSON.stringify(chatBody('gpt-4o-mini')),
    });
    const elapsed = performance.now() - sent;
    assert.equal(res.status, 200);
    await res.json();
    const trace = res.headers.get('x-prism-trace');
    assert.ok(trace, 'x-prism-trace present');
    assert.match(trace, /\bmodel_router;dur=\d+(\.\d+)?/, `model_router with a duration in: ${trace}`);
    assert.match(trace, /\bopenai_provider;dur=\d+(\.\d+)?/, `openai_provider with a duration in: ${trace}`);
    assert.ok(trace.indexOf('model_router') < trace.indexOf('openai_provider'), `steps in order: ${trace}`);
    // The upstream's time and the gateway's own, in milliseconds: the fake took 150 ms.
    const timing = res.headers.get('server-timing');
    const m = /^upstream;dur=(\d+\.\d{3}), overhead;dur=(\d+\.\d{3})$/.exec(timing ?? '');
    assert.ok(m, `server-timing: ${timing}`);
    const [upstream, overhead] = [Number(m[1]), Number(m[2])];
    assert.ok(upstream >= 145 && upstream <= elapsed, `upstream ${upstream} ms: at least the fake's delay, at most ${elapsed}`);
    assert.ok(overhead >= 0 && upstream + overhead <= elapsed, `overhead ${overhead} ms within ${elapsed}`);

    const plain = await fetch(gw.url('/v1/chat/completions'), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(chatBody('gpt-4o-mini')),
    });
    assert.equal(plain.status, 200);
    await plain.json();
    assert.equal(plain.headers.get('x-prism-trace'), null, 'no x-prism-trace without the request header');
    assert.equal(plain.headers.get('server-timing'), null, 'no server-timing without the request header');
  });

  it('x-request-id: echoed when the client sends one, generated otherwise, on every response', { timeout: T(15000) }, async () => {
    const cases = [
      ['GET', '/health', undefined],
      ['GET', '/v1/models', undefined],
      ['POST', '/v1/chat/completions', JSON.stringify(chatBody('gpt-4o-mini'))],
      ['POST', '/v1/chat/completions', JSON.stringify(chatBody('nosuchmodel-e2e'))],
      ['POST', '/v1/nope', '{}'],
    ];
    let n = 0;
    for (const [method, path, body] of cases) {
      const mine = `e2e-req-${++n}-abcDEF0123`;
      const a = await fetch(gw.url(path), {
        method,
        body,
        headers: { 'content-type': 'application/json', 'x-request-id': mine },
      });
      await a.arrayBuffer();
      assert.equal(a.headers.get('x-request-id'), mine, `${method} ${path} (${a.status}) echoes x-request-id`);
      const b = await fetch(gw.url(path), { method, body, headers: { 'content-type': 'application/json' } });
      await b.arrayBuffer();
      const gen = b.headers.get('x-request-id');
      assert.ok(gen && gen.trim().length > 0, `${method} ${path} (${b.status}) carries a generated x-request-id`);
    }
  });

  it('shuts down gracefully on SIGTERM (exit 0)', { timeout: T(15000) }, async () => {
    await stopAndAssertClean(gw);
  });

  it('never logs the upstream key', { timeout: T(15000) }, async () => {
    await gw.stop(); // idempotent: the logs are complete once it has exited
    assertNoSecretsInLogs(gw, [UPSTREAM_KEY]);
  });
});

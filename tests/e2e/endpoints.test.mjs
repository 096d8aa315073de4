// The Responses API and embeddings, relayed to OpenAI-routed models through the same chain as chat:
// the official SDK's responses.create (plain and streamed) and embeddings.create (its default base64
// encoding and floats) get the upstream's answers; usage is counted; Claude models refuse these
// endpoints with a clear 400.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startFakeOpenAI, DEFAULT_CONTENT, DEFAULT_STREAM_PIECES } from './lib/fake-openai.mjs';
import { startFakeAnthropic, claudeEnv, ANTHROPIC_KEY } from './lib/fake-anthropic.mjs';
import { T, startGateway, gatewayEnv, sdkClient, stopAndAssertClean, UPSTREAM_KEY } from './lib/gateway.mjs';

describe('Responses API and embeddings', { timeout: T(90000) }, () => {
  let fake;
  let anthropic;
  let gw;
  let client;

  before(async () => {
    fake = await startFakeOpenAI();
    anthropic = await startFakeAnthropic({ apiKey: ANTHROPIC_KEY });
    gw = await startGateway({ env: claudeEnv(anthropic, { OPENAI_BASE_URL: fake.baseURL }) });
    client = await sdkClient(gw);
  });

  after(async () => {
    if (gw) await gw.kill();
    if (fake) await fake.close();
    if (anthropic) await anthropic.close();
  });

  it('responses.create: relayed to the upstream /v1/responses with the upstream key; output_text as the upstream said', { timeout: T(15000) }, async () => {
    fake.reset();
    const r = await client.responses.create({ model: 'gpt-4.1-mini', input: 'Say hello.', instructions: 'Be brief.' });
    assert.equal(r.object, 'response');
    assert.equal(r.output_text, DEFAULT_CONTENT);
    const { output_text: _added, ...asSent } = r; // the SDK adds output_text
    assert.deepEqual(asSent, fake.responses[0].body, 'the body comes back as the upstream sent it');
    assert.equal(fake.requests.length, 1);
    assert.equal(fake.requests[0].url, '/v1/responses');
    assert.equal(fake.requests[0].headers.authorization, `Bearer ${UPSTREAM_KEY}`);
    assert.deepEqual(fake.requests[0].body, { model: 'gpt-4.1-mini', input: 'Say hello.', instructions: 'Be brief.' });
  });

  it('responses.create streamed: every event in order, ending with response.completed, and no error appended', { timeout: T(15000) }, async () => {
    fake.reset();
    const stream = await client.responses.create({ model: 'gpt-4.1-mini', input: 'Say hello.', stream: true });
    const types = [];
    let text = '';
    for await (const e of stream) {
      types.push(e.type);
      if (e.type === 'response.output_text.delta') text += e.delta;
    }
    assert.deepEqual(types, fake.responses[0].events.map((e) => e.event));
    assert.equal(types.at(-1), 'response.completed');
    assert.equal(text, DEFAULT_STREAM_PIECES.join(''));
  });

  it('embeddings.create: the SDK default (base64) and floats both decode to the upstream vectors', { timeout: T(15000) }, async () => {
    fake.reset();
    const a = await client.embeddings.create({ model: 'text-embedding-3-small', input: ['one', 'three'] });
    assert.equal(a.object, 'list');
    assert.equal(a.data.length, 2);
    assert.equal(a.data[1].index, 1);
    assert.equal(a.data[0].embedding.length, 8);
    assert.equal(fake.requests[0].url, '/v1/embeddings');
    const b = await client.embeddings.create({ model: 'text-embedding-3-small', input: ['one', 'three'], encoding_format: 'float' });
    assert.deepEqual(b.data.map((d) => d.embedding), a.data.map((d) => d.embedding), 'base64 and floats agree');
    assert.equal(b.usage.prompt_tokens, a.usage.prompt_tokens);
  });

  it('usage of both endpoints reaches the access log and the token counters', { timeout: T(15000) }, async () => {
    const text = await (await fetch(gw.url('/metrics'))).text();
    const tokens = (model, direction) =>
      Number(new RegExp(`^prism_tokens_total\\{model="${model}",direction="${direction}"\\} (\\d+)`, 'm').exec(text)?.[1] ?? 0);
    assert.ok(tokens('gpt-4.1-mini', 'prompt') > 0, text.split('\n').filter((l) => l.startsWith('prism_tokens')).join('\n'));
    assert.ok(tokens('gpt-4.1-mini', 'completion') > 0);
    assert.ok(tokens('text-embedding-3-small', 'prompt') > 0);
  });

  it('a Claude model on /embeddings: 400 unsupported_endpoint naming the endpoints it has, nothing sent to Anthropic', { timeout: T(15000) }, async () => {
    anthropic.reset();
    await assert.rejects(client.embeddings.create({ model: 'claude-sonnet-4-5', input: 'hi' }), (err) => {
      assert.equal(err.status, 400);
      assert.equal(err.code, 'unsupported_endpoint');
      assert.match(err.message, /\/chat\/completions and \/responses/);
      return true;
    });
    assert.equal(anthropic.requests.length, 0);
  });

  it('an upstream error on /responses keeps its status and body', { timeout: T(15000) }, async () => {
    fake.reset();
    const body = { error: { message: "Invalid type for 'input'.", type: 'invalid_request_error', param: 'input', code: 'invalid_type' } };
    fake.next({ status: 400, body });
    await assert.rejects(client.responses.create({ model: 'gpt-4.1-mini', input: 'x' }), (err) => {
      assert.equal(err.status, 400);
      assert.deepEqual(err.error, body.error);
      return true;
    });
    await stopAndAssertClean(gw);
    gw = null;
  });
});

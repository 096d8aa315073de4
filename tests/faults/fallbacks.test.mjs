// Model fallbacks (model_router: fallbacks: {gpt-4o-mini: [claude-sonnet-4-5], claude-opus-4-1:
// [claude-sonnet-4-5]}, fallback_on: ["5xx", "429"]):
// when OpenAI fails with a listed status the request is answered by Claude, with x-prism-provider and
// x-prism-fallback-from; a 400 does not fall back; a stream falls back when the first provider fails
// before any byte.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { openaiError } from '../e2e/lib/fake-openai.mjs';
import { assertAnthropicRequest, anthropicError } from '../e2e/lib/fake-anthropic.mjs';
import { T } from '../e2e/lib/gateway.mjs';
import {
  OPENAI_MODEL,
  CLAUDE_MODEL,
  startStack,
  chat,
  post,
  postStream,
  sdkStream,
  assertError,
  assertErrorFrame,
  assertStillServes,
  assertCleanExit,
} from './lib/faults.mjs';

const DATED = 'claude-sonnet-4-5-20250929';
const CLAUDE_FIRST = 'claude-opus-4-1';

describe('model fallbacks', { timeout: T(120000) }, () => {
  let stack;

  before(async () => {
    stack = await startStack({
      prefix: 'prism-faults-fallback-',
      overrides: {
        plugins: {
          config: {
            model_router: {
              fallbacks: { [OPENAI_MODEL]: [CLAUDE_MODEL], [CLAUDE_FIRST]: [CLAUDE_MODEL] },
              fallback_on: ['5xx', '429'],
            },
          },
        },
      },
    });
  });

  after(async () => {
    if (stack) await stack.close();
  });

  function reset() {
    stack.openai.reset();
    stack.anthropic.reset();
  }

  it('without a failure the first model answers (x-prism-provider: openai_provider, no x-prism-fallback-from)', { timeout: T(20000) }, async () => {
    reset();
    const r = await post(stack.gw, chat(OPENAI_MODEL));
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('x-prism-provider'), 'openai_provider');
    assert.equal(r.headers.get('x-prism-fallback-from'), null);
    assert.equal(stack.anthropic.requests.length, 0);
  });

  for (const status of [503, 429]) {
    it(`OpenAI answers ${status}: the client gets Claude's chat.completion with the fallback headers`, { timeout: T(20000) }, async () => {
      reset();
      stack.openai.next({ status, body: openaiError(`fake ${status}`, status === 429 ? 'requests' : 'server_error') });
      stack.anthropic.next({ model: DATED, content: [{ type: 'text', text: 'Claude stands in.' }] });
      const r = await post(stack.gw, chat(OPENAI_MODEL));
      assert.equal(r.status, 200, r.text.slice(0, 400));
      assert.equal(r.json.object, 'chat.completion');
      assert.equal(r.json.model, DATED, 'the model field as the Anthropic upstream returned it');
      assert.equal(r.json.choices[0].message.content, 'Claude stands in.');
      assert.equal(r.headers.get('x-prism-provider'), 'claude_provider');
      assert.equal(r.headers.get('x-prism-fallback-from'), OPENAI_MODEL);
      assert.equal(stack.openai.requests.length, 1);
      assert.equal(stack.anthropic.requests.length, 1);
      assertAnthropicRequest(stack.anthropic.requests[0]);
      assert.equal(stack.anthropic.requests[0].body.model, CLAUDE_MODEL, 'the fallback model is sent to Anthropic');
      await assertStillServes(stack, `a fallback after ${status}`);
    });
  }

  // The first Claude call reads the body's tree without changing it; the fallback edits the model
  // in the request's tree, and the second call must see the edit.
  it('Claude answers 529: the fallback Claude model gets the same translated request with its own model', { timeout: T(20000) }, async () => {
    reset();
    stack.anthropic.next({ status: 529, body: anthropicError('overloaded_error', 'Overloaded') });
    stack.anthropic.next({ model: DATED, content: [{ type: 'text', text: 'The second Claude.' }] });
    const r = await post(stack.gw, chat(CLAUDE_FIRST));
    assert.equal(r.status, 200, r.text.slice(0, 400));
    assert.equal(r.json.choices[0].message.content, 'The second Claude.');
    assert.equal(r.headers.get('x-prism-fallback-from'), CLAUDE_FIRST);
    assert.equal(stack.anthropic.requests.length, 2);
    const [first, second] = stack.anthropic.requests.map((q) => q.body);
    assert.equal(first.model, CLAUDE_FIRST);
    assert.equal(second.model, CLAUDE_MODEL, 'the fallback model is sent to Anthropic');
    assert.deepEqual({ ...second, model: CLAUDE_FIRST }, first, 'otherwise the same request');
    await assertStillServes(stack, 'a Claude to Claude fallback');
  });

  it('OpenAI answers 400: no fallback, the 400 reaches the client', { timeout: T(20000) }, async () => {
    reset();
    const body = openaiError("Invalid value for 'temperature'.", 'invalid_request_error', 'temperature', 'invalid_value');
    stack.openai.next({ status: 400, body });
    const r = await post(stack.gw, chat(OPENAI_MODEL));
    assertError(r, 400, { type: 'invalid_request_error', code: 'invalid_value', param: 'temperature' });
    assert.deepEqual(r.json, body, 'the upstream error is passed through');
    assert.equal(r.headers.get('x-prism-fallback-from'), null);
    await new Promise((res) => setTimeout(res, 200));
    assert.equal(stack.anthropic.requests.length, 0, 'Claude was not asked');
  });

  it('a stream falls back when OpenAI fails before any byte', { timeout: T(20000) }, async () => {
    reset();
    stack.openai.next({ status: 503, body: openaiError('fake 503', 'server_error') });
    stack.anthropic.next({ model: DATED, content: [{ type: 'text', text: 'Streamed by Claude.', pieces: ['Streamed ', 'by ', 'Claude.'] }] });
    const s = await postStream(stack.gw, chat(OPENAI_MODEL));
    assert.equal(s.status, 200, s.text.slice(0, 400));
    assert.equal(s.headers.get('x-prism-provider'), 'claude_provider');
    assert.equal(s.headers.get('x-prism-fallback-from'), OPENAI_MODEL);
    assert.equal(s.data.at(-1), '[DONE]');
    const chunks = s.data.slice(0, -1).map((d) => JSON.parse(d));
    assert.equal(chunks.map((c) => c.choices[0]?.delta?.content ?? '').join(''), 'Streamed by Claude.');
    assert.ok(chunks.every((c) => c.model === DATED), 'chunks carry the model Anthropic returned');

    // The same with the SDK.
    reset();
    stack.openai.next({ status: 503, body: openaiError('fake 503', 'server_error') });
    const e = await sdkStream(stack.client, chat(OPENAI_MODEL));
    assert.equal(e.error, null, String(e.error));
    assert.equal(e.chunks.map((c) => c.choices[0]?.delta?.content ?? '').join(''), 'Hello from fake Claude.');
  });

  it('a stream that fails after it has begun does not fall back: error frame, Claude not asked', { timeout: T(20000) }, async () => {
    reset();
    stack.openai.next({ resetAfterEvents: 2 });
    const s = await postStream(stack.gw, chat(OPENAI_MODEL));
    assertErrorFrame(s, { code: 'upstream_disconnected' });
    assert.equal(s.headers.get('x-prism-provider'), 'openai_provider');
    await new Promise((res) => setTimeout(res, 200));
    assert.equal(stack.anthropic.requests.length, 0);
  });

  it('when the fallback fails too the client gets an OpenAI error', { timeout: T(20000) }, async () => {
    reset();
    stack.openai.next({ status: 503, body: openaiError('fake 503', 'server_error') });
    stack.anthropic.next({ status: 500 });
    const r = await post(stack.gw, chat(OPENAI_MODEL));
    assert.ok(r.status >= 500 && r.status <= 599, `a 5xx (${r.status} ${r.text.slice(0, 300)})`);
    assertError(r, r.status, {});
    await assertStillServes(stack, 'a failed fallback');
  });

  it('exits 0 on SIGTERM and never logs a secret', { timeout: T(20000) }, async () => {
    await assertCleanExit(stack.gw);
  });
});

// An upstream body larger than the provider's max_response_bytes (set through plugins.config overrides in
// a scratch config): 502 upstream_response_too_large on both paths, never a crash; a body under the
// limit and a large *stream* (streams are relayed, not buffered) still pass.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { T } from '../e2e/lib/gateway.mjs';
import {
  OPENAI_MODEL,
  CLAUDE_MODEL,
  startStack,
  chat,
  post,
  postStream,
  assertError,
  assertStillServes,
  assertCleanExit,
} from './lib/faults.mjs';

const LIMIT = 65536;
const ONE_MB = 1 << 20;

describe('max_response_bytes', { timeout: T(120000) }, () => {
  let stack;

  before(async () => {
    stack = await startStack({
      prefix: 'prism-faults-limits-',
      overrides: {
        plugins: {
          config: {
            openai_provider: { max_response_bytes: LIMIT },
            claude_provider: { max_response_bytes: LIMIT },
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

  it('OpenAI: a 1 MB non-streamed body is a 502 upstream_response_too_large', { timeout: T(30000) }, async () => {
    reset();
    stack.openai.next({ content: 'x'.repeat(ONE_MB) });
    const r = await post(stack.gw, chat(OPENAI_MODEL));
    assertError(r, 502, { type: 'api_error', code: 'upstream_response_too_large' });
    assert.ok(r.text.length < 4096, 'none of the oversized body reaches the client');
    await assertStillServes(stack, 'an oversized OpenAI body');
  });

  it('Claude: a 1 MB non-streamed body is a 502 upstream_response_too_large', { timeout: T(30000) }, async () => {
    reset();
    stack.anthropic.next({ content: [{ type: 'text', text: 'y'.repeat(ONE_MB) }] });
    const r = await post(stack.gw, chat(CLAUDE_MODEL));
    assertError(r, 502, { type: 'api_error', code: 'upstream_response_too_large' });
    await assertStillServes(stack, 'an oversized Claude body');
  });

  it('a 1 MB error body (500 text/html) is refused the same way', { timeout: T(30000) }, async () => {
    for (const [fake, model] of [
      ['openai', OPENAI_MODEL],
      ['anthropic', CLAUDE_MODEL],
    ]) {
      reset();
      stack[fake].next({ status: 500, rawBody: '<p>' + 'z'.repeat(ONE_MB) + '</p>', contentType: 'text/html' });
      assertError(await post(stack.gw, chat(model)), 502, { type: 'api_error', code: 'upstream_response_too_large' }, model);
    }
    await assertStillServes(stack, 'an oversized error body');
  });

  it('a body just under the limit passes', { timeout: T(30000) }, async () => {
    reset();
    const content = 'w'.repeat(LIMIT - 2048);
    stack.openai.next({ content });
    const r = await post(stack.gw, chat(OPENAI_MODEL));
    assert.equal(r.status, 200, r.text.slice(0, 300));
    assert.equal(r.json.choices[0].message.content, content);
  });

  it('OpenAI: a 1 MB stream is not limited by max_response_bytes (relayed, not buffered)', { timeout: T(30000) }, async () => {
    reset();
    const pieces = Array.from({ length: 256 }, (_, i) => `${String(i).padStart(4, '0')}` + 'v'.repeat(4092));
    stack.openai.next({ streamChunks: pieces });
    const s = await postStream(stack.gw, chat(OPENAI_MODEL));
    assert.equal(s.status, 200);
    assert.equal(s.data.at(-1), '[DONE]');
    const text = s.data
      .slice(0, -1)
      .map((d) => JSON.parse(d).choices[0]?.delta?.content ?? '')
      .join('');
    assert.equal(text, pieces.join(''));
  });

  it('exits 0 on SIGTERM and never logs a secret', { timeout: T(20000) }, async () => {
    await assertCleanExit(stack.gw);
  });
});

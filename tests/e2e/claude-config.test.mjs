// Claude with a non-default configuration: plugins.config.claude_provider (anthropic-beta, default_max_tokens,
// thinking budgets) and a short server.timeouts.upstream_ms (upstream timeout -> 504 / an error frame).
// Rules: docs/translation.md.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import OpenAI from 'openai';
import { startFakeAnthropic, claudeEnv, assertAnthropicRequest, ANTHROPIC_KEY } from './lib/fake-anthropic.mjs';
import {
  T,
  REPO_CONFIG,
  startGateway,
  sdkClient,
  scratchDir,
  withDeadline,
  assertNoSecretsInLogs,
  stopAndAssertClean,
} from './lib/gateway.mjs';

const MODEL = 'claude-sonnet-4-5';
const BETA = 'prompt-caching-2024-07-31,output-128k-2025-02-19';
const UPSTREAM_MS = 1500;

/** The repository config with a short upstream timeout and claude_provider overrides. */
function configText() {
  let text = fs.readFileSync(REPO_CONFIG, 'utf8');
  assert.match(text, /upstream_ms: \d+/, 'the repository config sets server.timeouts.upstream_ms');
  text = text.replace(/upstream_ms: \d+/, `upstream_ms: ${T(UPSTREAM_MS)}`);
  assert.match(text, /^plugins:\n  enabled: \[ai_gateway\]\n/m, 'the repository config enables ai_gateway');
  return text.replace(
    /^plugins:\n  enabled: \[ai_gateway\]\n/m,
    [
      'plugins:',
      '  enabled: [ai_gateway]',
      '  config:',
      '    claude_provider:',
      `      anthropic_beta: "${BETA}"`,
      '      default_max_tokens: 1000',
      '      thinking_budget:',
      '        low: 2000',
      '        medium: 3000',
      '        high: 5000',
      '',
    ].join('\n'),
  );
}

describe('Claude with plugins.config overrides and a short upstream timeout', { timeout: T(90000) }, () => {
  let fake;
  let gw;
  let client;
  let dir;

  before(async () => {
    dir = await scratchDir('prism-e2e-claude-');
    const config = path.join(dir, 'config.yml');
    await fs.promises.writeFile(config, configText());
    fake = await startFakeAnthropic({ apiKey: ANTHROPIC_KEY });
    gw = await startGateway({ env: claudeEnv(fake), config });
    client = await sdkClient(gw);
  });

  after(async () => {
    if (gw) await gw.kill();
    if (fake) await fake.close();
    if (dir) await fs.promises.rm(dir, { recursive: true, force: true });
  });

  it('anthropic_beta is sent as anthropic-beta; default_max_tokens from the config', { timeout: T(15000) }, async () => {
    fake.reset();
    await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'hi' }] });
    const rec = fake.requests[0];
    assertAnthropicRequest(rec);
    assert.equal(rec.headers['anthropic-beta'], BETA);
    assert.equal(rec.body.max_tokens, 1000);
  });

  it('thinking budgets from the config', { timeout: T(15000) }, async () => {
    for (const [effort, budget, maxTokens] of [
      ['low', 2000, 3000],
      ['medium', 3000, 4000],
      ['high', 5000, 6000],
    ]) {
      fake.reset();
      await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'hi' }], reasoning_effort: effort });
      const rec = fake.requests[0];
      assertAnthropicRequest(rec);
      assert.deepEqual(rec.body.thinking, { type: 'enabled', budget_tokens: budget }, effort);
      assert.equal(rec.body.max_tokens, maxTokens, effort);
    }
  });

  it('an upstream that never answers: 504 upstream_timeout', { timeout: T(20000) }, async () => {
    fake.reset();
    fake.next({ hold: true });
    const t0 = Date.now();
    let caught;
    await assert.rejects(client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'hi' }] }), (e) => {
      caught = e;
      return true;
    });
    assert.ok(caught instanceof OpenAI.APIError, `${caught?.constructor?.name}: ${caught?.message}`);
    assert.equal(caught.status, 504, caught.message);
    assert.equal(caught.code, 'upstream_timeout');
    assert.ok(Date.now() - t0 < T(UPSTREAM_MS) + T(5000), 'within the configured bound');
  });

  it('a stream that stalls past the upstream timeout: the iteration ends with an error, no hang', { timeout: T(20000) }, async () => {
    fake.reset();
    fake.next({ content: [{ type: 'text', text: 'a b', pieces: ['a', ' b'] }], stallAfter: 1 });
    const chunks = [];
    let error = null;
    await withDeadline(T(UPSTREAM_MS) + T(8000), 'a stalled stream never ended (hang)', async (signal) => {
      try {
        const s = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'hi' }], stream: true }, { signal });
        for await (const c of s) chunks.push(c);
      } catch (e) {
        error = e;
      }
    });
    assert.equal(chunks.map((c) => c.choices[0]?.delta?.content ?? '').join(''), 'a');
    assert.ok(error instanceof OpenAI.APIError, `an APIError (got ${error?.constructor?.name}: ${error?.message})`);
    assert.equal(error.code, 'upstream_timeout');
    await fake.waitClosed(fake.requests[0], T(5000));
  });

  it('shuts down cleanly and never logs the Anthropic key', { timeout: T(15000) }, async () => {
    await stopAndAssertClean(gw);
    assertNoSecretsInLogs(gw, [ANTHROPIC_KEY]);
  });
});

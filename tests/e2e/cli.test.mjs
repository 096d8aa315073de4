// The `prism` command: install (with its permission prompt), list, info, serve from the installed copy,
// uninstall, and check (good and broken configs).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startFakeOpenAI } from './lib/fake-openai.mjs';
import {
  T,
  REPO_ROOT,
  REPO_CONFIG,
  UPSTREAM_KEY,
  runPrism,
  describeRun,
  startGateway,
  gatewayEnv,
  stopAndAssertClean,
  assertNoSecretsInLogs,
  sdkClient,
  chatBody,
  scratchDir,
} from './lib/gateway.mjs';

const PLUGIN_SRC = path.join(REPO_ROOT, 'plugins', 'ai_gateway');

describe('prism install / list / info / serve / uninstall', { timeout: T(180000) }, () => {
  let scratch;
  let config;
  let pluginsDir;
  let fake;
  let gw;

  before(async () => {
    scratch = await scratchDir('prism-e2e-install-');
    config = path.join(scratch, 'config.yml');
    await fs.promises.copyFile(REPO_CONFIG, config);
    pluginsDir = path.join(scratch, '.prism', 'plugins');
    fake = await startFakeOpenAI();
  });

  after(async () => {
    if (gw) await gw.kill();
    if (fake) await fake.close();
    if (scratch) await fs.promises.rm(scratch, { recursive: true, force: true });
  });

  function readLock() {
    const p = path.join(pluginsDir, 'plugins.lock');
    if (!fs.existsSync(p)) return null;
    return JSON.parse(fs.readFileSync(p, 'utf8'));
  }

  it('install without --yes, answering "n": exit 3, nothing installed', { timeout: T(30000) }, async () => {
    const r = await runPrism(['install', PLUGIN_SRC, '--config', config], { cwd: scratch, input: 'n\n' });
    assert.equal(r.code, 3, `prism install answered "n" should exit 3\n${describeRun(r)}`);
    assert.ok(!fs.existsSync(path.join(pluginsDir, 'ai_gateway')), 'no plugin folder after a refusal');
    const lock = readLock();
    assert.ok(!lock || !lock.plugins || !lock.plugins.ai_gateway, 'no lock entry after a refusal');
  });

  it('install --yes: exit 0, shows the permissions, writes the plugin and the lock', { timeout: T(30000) }, async () => {
    const r = await runPrism(['install', PLUGIN_SRC, '--config', config, '--yes'], { cwd: scratch });
    assert.equal(r.code, 0, `prism install --yes\n${describeRun(r)}`);
    assert.match(r.stdout, /api\.openai\.com/, `the permissions shown include api.openai.com\n${describeRun(r)}`);
    assert.ok(fs.existsSync(path.join(pluginsDir, 'ai_gateway', 'group.yml')), 'group.yml installed');
    const lock = readLock();
    assert.ok(lock, 'plugins.lock written');
    assert.ok(lock.plugins && typeof lock.plugins === 'object', `lock has "plugins": ${JSON.stringify(lock)}`);
    assert.ok(lock.plugins.ai_gateway, `lock has plugins.ai_gateway: ${JSON.stringify(lock)}`);
  });

  it('list shows ai_gateway', { timeout: T(20000) }, async () => {
    const r = await runPrism(['list', '--config', config], { cwd: scratch });
    assert.equal(r.code, 0, describeRun(r));
    assert.match(r.stdout, /\bai_gateway\b/, describeRun(r));
  });

  it('info ai_gateway mentions model_router', { timeout: T(20000) }, async () => {
    const r = await runPrism(['info', 'ai_gateway', '--config', config], { cwd: scratch });
    assert.equal(r.code, 0, describeRun(r));
    assert.match(r.stdout, /model_router/, describeRun(r));
  });

  it('serve from the scratch folder with no bundled plugins: the installed copy serves a chat completion', { timeout: T(40000) }, async () => {
    gw = await startGateway({
      cwd: scratch,
      config,
      env: gatewayEnv(fake, { PRISM_BUNDLED_PLUGIN_DIR: '' }),
    });
    const client = await sdkClient(gw);
    const params = chatBody('gpt-4o-mini');
    const r = await client.chat.completions.create(params);
    assert.deepEqual(r, fake.responses.at(-1).body);
    assert.equal(fake.requests.length, 1);
    assert.deepEqual(fake.requests[0].body, params);
    assert.equal(fake.requests[0].headers.authorization, `Bearer ${UPSTREAM_KEY}`);
    await gw.stop();
    assertNoSecretsInLogs(gw, [UPSTREAM_KEY]);
    await stopAndAssertClean(gw); // the exit status of that stop: 0

  });

  it('uninstall ai_gateway: exit 0, the folder is gone', { timeout: T(20000) }, async (t) => {
    const r = await runPrism(['uninstall', 'ai_gateway', '--config', config], { cwd: scratch });
    assert.equal(r.code, 0, describeRun(r));
    assert.ok(!fs.existsSync(path.join(pluginsDir, 'ai_gateway')), 'plugin folder removed');
    const lock = readLock();
    t.diagnostic(`lock after uninstall: ${JSON.stringify(lock)}`);
  });
});

describe('prism check', { timeout: T(60000) }, () => {
  const dirs = [];

  after(async () => {
    for (const d of dirs) await fs.promises.rm(d, { recursive: true, force: true });
  });

  async function writeConfig(text) {
    const d = await scratchDir('prism-e2e-check-');
    dirs.push(d);
    const p = path.join(d, 'config.yml');
    await fs.promises.writeFile(p, text);
    return { dir: d, file: p };
  }

  it('the repository config is valid: exit 0', { timeout: T(20000) }, async () => {
    const r = await runPrism(['check', '--config', REPO_CONFIG], { cwd: REPO_ROOT });
    assert.equal(r.code, 0, describeRun(r));
  });

  it('a route chain naming an unknown chain: exit 1, "config.yml:LINE: message" on stderr', { timeout: T(20000) }, async (t) => {
    const text = [
      'plugins:',
      '  enabled: [ai_gateway]',
      'routes:',
      '  /chat/completions:',
      '    chain: [nosuch:chain]',
      '',
    ].join('\n');
    const { dir, file } = await writeConfig(text);
    const r = await runPrism(['check', '--config', file], { cwd: dir });
    assert.equal(r.code, 1, describeRun(r));
    const m = r.stderr.match(/config\.yml:(\d+): /);
    assert.ok(m, `stderr has file:line: message\n${describeRun(r)}`);
    const line = Number(m[1]);
    assert.ok(line === 4 || line === 5, `the line points at the route (4 or 5), got ${line}\n${describeRun(r)}`);
    t.diagnostic(r.stderr.trim());
  });

  it('the repository config with its chain renamed to nosuch:chain: exit 1 with file:line', { timeout: T(20000) }, async () => {
    const orig = await fs.promises.readFile(REPO_CONFIG, 'utf8');
    assert.match(orig, /ai_gateway:chat/, 'the repository config routes through ai_gateway:chat');
    const { dir, file } = await writeConfig(orig.replace(/ai_gateway:chat/g, 'nosuch:chain'));
    const r = await runPrism(['check', '--config', file], { cwd: dir });
    assert.equal(r.code, 1, describeRun(r));
    assert.match(r.stderr, /config\.yml:\d+: /, describeRun(r));
  });

  for (const [name, text] of [
    ['an unclosed flow sequence', 'plugins:\n  enabled: [ai_gateway\nroutes:\n  /chat/completions:\n    chain: [ai_gateway:chat]\n'],
    ['a bad indentation', 'plugins:\n  enabled: [ai_gateway]\n routes: {}\nroutes:\n  /chat/completions:\n    chain: [ai_gateway:chat]\n'],
  ]) {
    it(`invalid YAML (${name}): exit 1, "config.yml:LINE: message" on stderr`, { timeout: T(20000) }, async () => {
      const { dir, file } = await writeConfig(text);
      const r = await runPrism(['check', '--config', file], { cwd: dir });
      assert.equal(r.code, 1, describeRun(r));
      assert.match(r.stderr, /config\.yml:\d+: /, describeRun(r));
    });
  }
});

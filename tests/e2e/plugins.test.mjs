// Writing plugins, end to end, as docs/plugins.md tells it: the real `prism` binary builds, installs and
// serves the examples from scratch folders.
//   1. examples/hello_header, a top-level chain step in front of ai_gateway:chat;
//   2. the guide's recipe: a scratch copy of plugins/ai_gateway with examples/echo_gateway/echo_provider
//      added as a provider (group.yml + one prefix_map line), installed and served alone;
//   3. examples/echo_gateway, the meta-plugin, on its own.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import http from 'node:http';
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

const EXAMPLES = path.join(REPO_ROOT, 'examples');
const HELLO_SRC = path.join(EXAMPLES, 'hello_header');
const ECHO_GATEWAY_SRC = path.join(EXAMPLES, 'echo_gateway');
const ECHO_PROVIDER_SRC = path.join(ECHO_GATEWAY_SRC, 'echo_provider');
const AI_GATEWAY_SRC = path.join(REPO_ROOT, 'plugins', 'ai_gateway');

/** The plugin names of an x-prism-trace header ("a;dur=0.1, b;dur=2.0" -> ["a", "b"]). */
function traceNames(header) {
  assert.ok(header, 'the response has an x-prism-trace header');
  return header.split(',').map((s) => s.trim().split(';')[0]);
}

/** The messages a plugin logged (`source` is its name), from JSON log lines or "TIME LEVEL source: message" ones. */
function logMessages(stderr, source) {
  const out = [];
  for (const line of stderr.split('\n')) {
    let entry = null;
    try {
      entry = JSON.parse(line);
    } catch {
      const m = line.match(/^\S+ +\w+ +([\w.]+): (.*)$/);
      if (m) entry = { source: m[1], msg: m[2] };
    }
    if (entry && entry.source === source && typeof entry.msg === 'string') out.push(entry.msg);
  }
  return out;
}

function readLock(pluginsDir) {
  const p = path.join(pluginsDir, 'plugins.lock');
  return fs.existsSync(p) ? JSON.parse(fs.readFileSync(p, 'utf8')) : null;
}

/** Runs an async iterable (an SDK stream) to its end and returns every chunk. */
async function collect(stream) {
  const chunks = [];
  for await (const c of stream) chunks.push(c);
  return chunks;
}

function streamedText(chunks) {
  return chunks.map((c) => c.choices[0]?.delta?.content ?? '').join('');
}

describe('a top-level plugin: examples/hello_header in front of ai_gateway:chat', { timeout: T(180000) }, () => {
  const HELLO_VALUE = 'hi from the plugins e2e test';
  let scratch;
  let config;
  let pluginsDir;
  let fake;
  let gw;

  before(async () => {
    scratch = await scratchDir('prism-e2e-plugins-hello-');
    config = path.join(scratch, 'config.yml');
    pluginsDir = path.join(scratch, '.prism', 'plugins');
    await fs.promises.writeFile(
      config,
      [
        'server:',
        '  api_prefix: /v1',
        'plugins:',
        '  enabled: [hello_header, ai_gateway]',
        'routes:',
        '  /chat/completions:',
        '    chain: [hello_header, ai_gateway:chat]',
        '',
      ].join('\n'),
    );
    fake = await startFakeOpenAI();
  });

  after(async () => {
    if (gw) await gw.kill();
    if (fake) await fake.close();
    if (scratch) await fs.promises.rm(scratch, { recursive: true, force: true });
  });

  it('prism install examples/hello_header --yes: builds it, shows its permissions, locks it', { timeout: T(60000) }, async () => {
    const r = await runPrism(['install', HELLO_SRC, '--yes', '--config', config], { cwd: scratch });
    assert.equal(r.code, 0, `prism install\n${describeRun(r)}`);
    assert.match(r.stdout, /building hello_header/, describeRun(r));
    assert.match(r.stdout, /network:\s+none/, `the permissions say it calls no one\n${describeRun(r)}`);
    assert.match(r.stdout, /env:\s+HELLO_HEADER_VALUE/, `the permissions name the variable it reads\n${describeRun(r)}`);
    assert.ok(fs.existsSync(path.join(pluginsDir, 'hello_header', 'hello_header.so')), 'the library was built in place');
    assert.ok(fs.existsSync(path.join(pluginsDir, 'hello_header', 'config.yml')), 'its config.yml was installed');
    const lock = readLock(pluginsDir);
    assert.ok(lock?.plugins?.hello_header, `plugins.lock records hello_header: ${JSON.stringify(lock)}`);
  });

  it('serves: the header from its config.yml (${VAR} expanded) on plain and streamed answers, and the trace', { timeout: T(60000) }, async () => {
    gw = await startGateway({
      cwd: scratch,
      config,
      env: gatewayEnv(fake, { HELLO_HEADER_VALUE: HELLO_VALUE, PRISM_LOG_LEVEL: 'debug' }),
    });
    const client = await sdkClient(gw);
    const params = chatBody('gpt-4o-mini');
    const { data, response } = await client.chat.completions
      .create(params, { headers: { 'X-Prism-Trace': 'true' } })
      .withResponse();
    assert.equal(response.status, 200);
    assert.deepEqual(data, fake.responses.at(-1).body, 'the answer is the upstream one, untouched');
    assert.equal(response.headers.get('x-hello'), HELLO_VALUE, 'hello_header added its header');
    assert.deepEqual(traceNames(response.headers.get('x-prism-trace')), ['hello_header', 'model_router', 'openai_provider']);
    assert.equal(fake.requests.length, 1);
    assert.deepEqual(fake.requests[0].body, params, 'the request went upstream as the client sent it');
    assert.equal(fake.requests[0].headers['x-hello'], undefined, 'a response header is not a request header');

    const streamed = await client.chat.completions.create({ ...params, stream: true }).withResponse();
    assert.equal(streamed.response.headers.get('x-hello'), HELLO_VALUE, 'the header is on a stream too');
    const chunks = await collect(streamed.data);
    assert.ok(streamedText(chunks).length > 0, 'the stream carried content');

    await gw.stop();
    // on_finish ran after each response and read what model_router left in the context.
    const said = logMessages(gw.stderr(), 'hello_header').filter((m) => /^request \S+: said /.test(m));
    assert.deepEqual(
      said.map((m) => m.replace(/^request \S+: /, '')),
      Array(2).fill(`said "${HELLO_VALUE}", answered by openai_provider`),
      `hello_header's on_finish log lines\n${gw.stderr().slice(-3000)}`,
    );
    assertNoSecretsInLogs(gw, [UPSTREAM_KEY]);
    await stopAndAssertClean(gw);
  });

  it('a plugin that sets its own server header keeps it: one server header, the plugin\'s', { timeout: T(60000) }, async () => {
    const config2 = path.join(scratch, 'config-server.yml');
    const base = await fs.promises.readFile(config, 'utf8');
    await fs.promises.writeFile(config2, base.replace('plugins:\n', 'plugins:\n  config:\n    hello_header: { header: Server }\n'));
    const g = await startGateway({ cwd: scratch, config: config2, env: gatewayEnv(fake, { HELLO_HEADER_VALUE: HELLO_VALUE }) });
    try {
      const res = await fetch(g.url('/v1/chat/completions'), {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(chatBody('gpt-4o-mini')),
      });
      assert.equal(res.status, 200, await res.clone().text());
      // fetch joins repeated headers with ", ": one value means one header.
      assert.equal(res.headers.get('server'), HELLO_VALUE);
      const health = await fetch(g.url('/health'));
      assert.equal(health.headers.get('server'), 'prism', 'routes without the plugin keep Prism\'s own');
    } finally {
      await g.kill();
    }
  });

  it('a plugin\'s header name goes out lowered, every byte of it', { timeout: T(60000) }, async () => {
    const config3 = path.join(scratch, 'config-name.yml');
    const base = await fs.promises.readFile(config, 'utf8');
    const name = 'X-Hello-Mixed-CASE-Name-0123-ZZ';
    await fs.promises.writeFile(config3, base.replace('plugins:\n', `plugins:\n  config:\n    hello_header: { header: ${name} }\n`));
    const g = await startGateway({ cwd: scratch, config: config3, env: gatewayEnv(fake, { HELLO_HEADER_VALUE: HELLO_VALUE }) });
    try {
      const raw = await new Promise((resolve, reject) => {
        const req = http.request(g.url('/v1/chat/completions'), { method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.rawHeaders));
        });
        req.on('error', reject);
        req.end(JSON.stringify(chatBody('gpt-4o-mini')));
      });
      const at = raw.indexOf(name.toLowerCase());
      assert.ok(at >= 0 && at % 2 === 0, `the lowered name among ${JSON.stringify(raw)}`);
      assert.equal(raw[at + 1], HELLO_VALUE);
      assert.ok(!raw.includes(name), 'not as configured');
    } finally {
      await g.kill();
    }
  });

  it('prism list and prism info hello_header show it installed, enabled and locked', { timeout: T(30000) }, async () => {
    const list = await runPrism(['list', '--config', config], { cwd: scratch });
    assert.equal(list.code, 0, describeRun(list));
    assert.match(list.stdout, /^hello_header\s+0\.1\.0\s+plugin\s+installed\s+enabled/m, describeRun(list));
    const info = await runPrism(['info', 'hello_header', '--config', config], { cwd: scratch });
    assert.equal(info.code, 0, describeRun(info));
    assert.match(info.stdout, /opens: hello_header 0\.1\.0/, describeRun(info));
    assert.match(info.stdout, /sha256 matches plugins\.lock/, describeRun(info));
    assert.match(info.stdout, /HELLO_HEADER_VALUE/, describeRun(info));
  });

  it('prism uninstall hello_header removes it; a config that still enables it no longer checks', { timeout: T(30000) }, async () => {
    const r = await runPrism(['uninstall', 'hello_header', '--config', config], { cwd: scratch });
    assert.equal(r.code, 0, describeRun(r));
    assert.ok(!fs.existsSync(path.join(pluginsDir, 'hello_header')), 'the plugin folder is gone');
    assert.ok(!readLock(pluginsDir)?.plugins?.hello_header, 'the lock no longer lists it');
    const list = await runPrism(['list', '--config', config], { cwd: scratch });
    assert.doesNotMatch(list.stdout, /^hello_header\b/m, describeRun(list));
    const check = await runPrism(['check', '--config', config], { cwd: scratch });
    assert.equal(check.code, 1, describeRun(check));
    assert.match(check.stderr, /hello_header/, describeRun(check));
  });
});

describe("the guide's recipe: echo_provider added to a copy of ai_gateway", { timeout: T(240000) }, () => {
  const MESSAGE = 'Echo this back, please: héllo wörld ✓';
  let scratch;
  let src;
  let config;
  let pluginsDir;
  let fake;
  let gw;

  before(async () => {
    scratch = await scratchDir('prism-e2e-plugins-recipe-');
    src = path.join(scratch, 'src', 'ai_gateway');
    config = path.join(scratch, 'config.yml');
    pluginsDir = path.join(scratch, '.prism', 'plugins');
    await fs.promises.copyFile(REPO_CONFIG, config);
    fake = await startFakeOpenAI();
  });

  after(async () => {
    if (gw) await gw.kill();
    if (fake) await fake.close();
    if (scratch) await fs.promises.rm(scratch, { recursive: true, force: true });
  });

  it('steps 1-3: copy the gateway and the provider, list it in group.yml, route "echo" to it', { timeout: T(20000) }, async () => {
    await fs.promises.cp(AI_GATEWAY_SRC, src, { recursive: true });
    await fs.promises.cp(ECHO_PROVIDER_SRC, path.join(src, 'echo_provider'), { recursive: true });

    const groupFile = path.join(src, 'group.yml');
    const group = await fs.promises.readFile(groupFile, 'utf8');
    const listed = /^plugins:\s*\[([^\]]*)\]/m;
    assert.match(group, listed, 'group.yml lists its plugins in one flow sequence');
    await fs.promises.writeFile(groupFile, group.replace(listed, (_, items) => `plugins: [${items.trim()}, echo_provider]`));

    const routerFile = path.join(src, 'model_router', 'config.yml');
    const router = await fs.promises.readFile(routerFile, 'utf8');
    assert.match(router, /^prefix_map:\s*$/m, 'model_router/config.yml has a block prefix_map');
    await fs.promises.writeFile(routerFile, router.replace(/^prefix_map:\s*$/m, 'prefix_map:\n  echo: echo_provider'));

    assert.match(await fs.promises.readFile(groupFile, 'utf8'), /^plugins: \[model_router, openai_provider, claude_provider, echo_provider\]/m);
    assert.match(await fs.promises.readFile(routerFile, 'utf8'), /^prefix_map:\n  echo: echo_provider\n  gpt: openai_provider/m);
  });

  it('step 4: prism install the copy --yes builds all four sub-plugins', { timeout: T(120000) }, async () => {
    const r = await runPrism(['install', src, '--yes', '--config', config], { cwd: scratch, timeout: T(110000) });
    assert.equal(r.code, 0, `prism install\n${describeRun(r)}`);
    assert.match(r.stdout, /sub-plugin echo_provider 0\.1\.0/, describeRun(r));
    assert.ok(fs.existsSync(path.join(pluginsDir, 'ai_gateway', 'echo_provider', 'echo_provider.so')), 'echo_provider.so built');
    assert.ok(readLock(pluginsDir)?.plugins?.ai_gateway, 'plugins.lock records ai_gateway');
    const info = await runPrism(['info', 'ai_gateway', '--config', config], { cwd: scratch, env: { PRISM_BUNDLED_PLUGIN_DIR: '' } });
    assert.equal(info.code, 0, describeRun(info));
    assert.match(info.stdout, /^  echo_provider 0\.1\.0$/m, `the installed group has the provider\n${describeRun(info)}`);
  });

  it('step 5: served alone (no bundled plugins), "echo-1" is echoed, plain and streamed; gpt-* still reaches OpenAI', { timeout: T(90000) }, async () => {
    gw = await startGateway({ cwd: scratch, config, env: gatewayEnv(fake, { PRISM_BUNDLED_PLUGIN_DIR: '' }) });
    const client = await sdkClient(gw);
    const params = { model: 'echo-1', messages: [{ role: 'system', content: 'ignored' }, { role: 'user', content: MESSAGE }] };

    // Plain.
    const { data, response } = await client.chat.completions
      .create(params, { headers: { 'X-Prism-Trace': 'true' } })
      .withResponse();
    assert.equal(response.status, 200);
    assert.equal(data.object, 'chat.completion');
    assert.equal(data.model, 'echo-1');
    assert.equal(data.choices[0].message.role, 'assistant');
    assert.equal(data.choices[0].message.content, MESSAGE);
    assert.equal(data.choices[0].finish_reason, 'stop');
    assert.equal(data.usage.completion_tokens, MESSAGE.split(/\s+/).length);
    assert.equal(data.usage.total_tokens, data.usage.prompt_tokens + data.usage.completion_tokens);
    assert.equal(response.headers.get('x-prism-provider'), 'echo_provider');
    assert.deepEqual(traceNames(response.headers.get('x-prism-trace')), ['model_router', 'echo_provider']);

    // Content parts, and the last user message wins.
    const parts = await client.chat.completions.create({
      model: 'echo-1',
      messages: [
        { role: 'user', content: 'first' },
        { role: 'assistant', content: 'ok' },
        { role: 'user', content: [{ type: 'text', text: 'second' }, { type: 'text', text: 'third' }] },
      ],
    });
    assert.equal(parts.choices[0].message.content, 'second\nthird');

    // Streamed, with usage: the SDK reads chunks until [DONE].
    const chunks = await collect(
      await client.chat.completions.create({ ...params, stream: true, stream_options: { include_usage: true } }),
    );
    assert.equal(streamedText(chunks), MESSAGE);
    assert.equal(chunks[0].choices[0].delta.role, 'assistant');
    assert.ok(chunks.every((c) => c.object === 'chat.completion.chunk' && c.model === 'echo-1'));
    assert.ok(chunks.every((c) => c.id === chunks[0].id), 'one id for the whole stream');
    assert.equal(chunks.at(-2).choices[0].finish_reason, 'stop');
    assert.deepEqual(chunks.at(-1).choices, []);
    assert.equal(chunks.at(-1).usage.completion_tokens, MESSAGE.split(/\s+/).length);

    // The raw stream ends with the literal [DONE] event.
    const raw = await fetch(gw.url('/v1/chat/completions'), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ...params, stream: true }),
      signal: AbortSignal.timeout(T(10000)),
    });
    assert.equal(raw.status, 200);
    assert.match(raw.headers.get('content-type'), /^text\/event-stream/);
    const rawText = await raw.text();
    assert.ok(rawText.endsWith('data: [DONE]\n\n'), `the stream ends with [DONE]: ${JSON.stringify(rawText.slice(-80))}`);

    // A reply far above the provider's 64 KiB high-water mark: written in rounds, resumed from the
    // drain callback (PRISM_PENDING, then prism_ctx_resume), and still whole and in order.
    const long = Array.from({ length: 20000 }, (_, i) => `w${i}`).join(' ');
    const longChunks = await collect(
      await client.chat.completions.create({ model: 'echo-1', messages: [{ role: 'user', content: long }], stream: true }),
    );
    assert.equal(streamedText(longChunks), long);

    assert.equal(fake.requests.length, 0, 'the echo provider called no one');

    // The other providers are untouched.
    const gpt = await client.chat.completions.create(chatBody('gpt-4o-mini'));
    assert.deepEqual(gpt, fake.responses.at(-1).body);
    assert.equal(fake.requests.length, 1);

    // GET /v1/models lists the new provider's models next to OpenAI's.
    const models = await client.models.list();
    const ids = models.data.map((m) => m.id);
    assert.ok(ids.includes('echo-1'), `echo-1 is listed: ${ids.join(', ')}`);
    assert.ok(ids.includes('gpt-4o-mini'), `gpt-4o-mini is still listed: ${ids.join(', ')}`);
    assert.equal(models.data.find((m) => m.id === 'echo-1').owned_by, 'prism-examples');

    await stopAndAssertClean(gw);
    assertNoSecretsInLogs(gw, [UPSTREAM_KEY]);
  });
});

describe('a meta-plugin: examples/echo_gateway on its own', { timeout: T(120000) }, () => {
  let scratch;
  let config;
  let gw;

  before(async () => {
    scratch = await scratchDir('prism-e2e-plugins-echo-');
    config = path.join(scratch, 'config.yml');
    await fs.promises.writeFile(
      config,
      [
        'plugins:',
        '  enabled: [echo_gateway]',
        'routes:',
        '  /chat/completions:',
        '    chain: [echo_gateway:chat]          # a preset chain of the group',
        '  /echo/chat/completions:',
        '    chain: [echo_gateway.echo_provider] # one sub-plugin of the group',
        '',
      ].join('\n'),
    );
  });

  after(async () => {
    if (gw) await gw.kill();
    if (scratch) await fs.promises.rm(scratch, { recursive: true, force: true });
  });

  it('installs, and answers through both kinds of route step', { timeout: T(90000) }, async () => {
    const r = await runPrism(['install', ECHO_GATEWAY_SRC, '--yes', '--config', config], { cwd: scratch });
    assert.equal(r.code, 0, describeRun(r));
    assert.match(r.stdout, /kind: group/, describeRun(r));
    const routes = await runPrism(['routes', '--config', config], { cwd: scratch, env: { PRISM_BUNDLED_PLUGIN_DIR: '' } });
    assert.equal(routes.code, 0, describeRun(routes));
    assert.match(routes.stdout, /echo_gateway:chat -> echo_provider/, describeRun(routes));

    gw = await startGateway({ cwd: scratch, config, env: { PRISM_BUNDLED_PLUGIN_DIR: '', PRISM_API_KEYS: '' } });
    const client = await sdkClient(gw);
    const a = await client.chat.completions.create({ model: 'anything', messages: [{ role: 'user', content: 'one' }] });
    assert.equal(a.choices[0].message.content, 'one');
    assert.equal(a.model, 'anything', 'without model_router in front, every model reaches the provider');

    const b = await fetch(gw.url('/v1/echo/chat/completions'), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'echo-1', messages: [{ role: 'user', content: 'two' }] }),
      signal: AbortSignal.timeout(T(10000)),
    });
    assert.equal(b.status, 200);
    assert.equal((await b.json()).choices[0].message.content, 'two');

    // Standalone, the provider checks the body itself: OpenAI's error shape.
    const bad = await fetch(gw.url('/v1/chat/completions'), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'echo-1' }),
      signal: AbortSignal.timeout(T(10000)),
    });
    assert.equal(bad.status, 400);
    assert.equal((await bad.json()).error.param, 'messages');
    await stopAndAssertClean(gw);
  });
});

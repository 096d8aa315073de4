// Operating the gateway, end to end: GET /metrics (parsed as Prometheus text), the access log (every
// stderr line is JSON; no secret and no message content in it), server.log (text format, file), hot
// reload under load (`prism reload` and plain SIGHUP, broken configs refused), and plugin network
// permissions (a base_url the plugin's author hard-coded to an undeclared host is refused; the
// operator's own base_url is approved).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startFakeOpenAI, makeCompletion } from './lib/fake-openai.mjs';
import { startFakeAnthropic, claudeEnv, ANTHROPIC_KEY, DEFAULT_USAGE } from './lib/fake-anthropic.mjs';
import {
  T,
  REPO_ROOT,
  REPO_CONFIG,
  UPSTREAM_KEY,
  WRAPPER,
  runPrism,
  describeRun,
  startGateway,
  gatewayEnv,
  stopAndAssertClean,
  chatBody,
  scratchDir,
  freePort,
  sleep,
  expectErrorResponse,
} from './lib/gateway.mjs';

const CHAT = '/v1/chat/completions';
// `prism reload` finds servers by their command line (argv[0] named prism): under PRISM_WRAPPER it is the wrapper's.
const RELOAD_SKIP = WRAPPER.length ? 'prism reload cannot find a server started under PRISM_WRAPPER' : false;
const GATEWAY_KEY = 'gw-ops-key-5f1c2a9e7d';
const WRONG_KEY = 'gw-ops-wrong-key-0b3e8d';
// Looks like a secret, sits in the user's message: must never reach a log line.
const CANARY = 'sk-proj-CANARY-do-not-log-7Q2xV9';

// ---- small helpers --------------------------------------------------------------------------------------------

async function waitFor(cond, ms, what) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await cond();
    if (v) return v;
    if (Date.now() >= deadline) throw new Error(`${what}: not within ${ms} ms`);
    await sleep(20);
  }
}

function postChat(gw, body, headers = {}, signal = AbortSignal.timeout(T(10000))) {
  return fetch(gw.url(CHAT), {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
    signal,
  });
}

/** Every line of a log text as JSON; fails (naming the line) on the first that is not a JSON object. */
function parseJsonLines(text, what = 'stderr') {
  const out = [];
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  for (const [i, line] of lines.entries()) {
    let v;
    try {
      v = JSON.parse(line);
    } catch (e) {
      assert.fail(`${what} line ${i + 1} is not JSON (${e.message}): ${JSON.stringify(line.slice(0, 400))}`);
    }
    assert.ok(v && typeof v === 'object' && !Array.isArray(v), `${what} line ${i + 1} is a JSON object: ${line}`);
    out.push(v);
  }
  return out;
}

const accessLines = (entries) => entries.filter((e) => e.source === 'access');
// Other lines may name the request id before its access line is written (the gateway writes access
// lines once per event-loop turn), so wait for the access line itself.
const hasAccessLine = (gw, id) => gw.stderr().split('\n').some((l) => l.includes('"source":"access"') && l.includes(`"request_id":"${id}"`));

/** The gateway's models list (ids). */
async function modelIds(gw, headers = {}) {
  const r = await fetch(gw.url('/v1/models'), { headers, signal: AbortSignal.timeout(T(5000)) });
  assert.equal(r.status, 200, 'GET /v1/models');
  const body = await r.json();
  return body.data.map((m) => m.id);
}

// ---- a Prometheus text-format (0.0.4) parser ------------------------------------------------------------------

const NAME_RE = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;

function parseLabels(s, where) {
  // s: the text between { and }, e.g.  a="x",b="y\"z"
  const labels = {};
  let i = 0;
  while (i < s.length) {
    const m = /^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"/.exec(s.slice(i));
    assert.ok(m, `bad label syntax at ${JSON.stringify(s.slice(i))} (${where})`);
    const name = m[1];
    i += m[0].length;
    let v = '';
    for (;;) {
      assert.ok(i < s.length, `unterminated label value (${where})`);
      const c = s[i++];
      if (c === '"') break;
      if (c === '\\') {
        const n = s[i++];
        if (n === 'n') v += '\n';
        else if (n === '\\' || n === '"') v += n;
        else assert.fail(`bad escape \\${n} in a label value (${where})`);
      } else v += c;
    }
    assert.ok(!(name in labels), `label ${name} repeated (${where})`);
    labels[name] = v;
    const rest = s.slice(i);
    const sep = /^\s*,?\s*/.exec(rest)[0];
    i += sep.length;
  }
  return labels;
}

function parseValue(s, where) {
  if (s === '+Inf') return Infinity;
  if (s === '-Inf') return -Infinity;
  if (s === 'NaN') return NaN;
  assert.match(s, /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/, `bad sample value ${JSON.stringify(s)} (${where})`);
  return Number(s);
}

/**
 * Parses the exposition text. Returns {families: Map(name -> {help, type, helpCount, typeCount, samples}),
 * samples: [{name, family, labels, value}]}. Asserts the syntax as it goes: every line is a comment or a
 * sample; a sample's family was declared by a # TYPE line before it; histogram samples are _bucket (with le),
 * _sum or _count.
 */
function parseMetrics(text) {
  assert.ok(text.endsWith('\n'), 'the exposition ends with a newline');
  const families = new Map();
  const samples = [];
  const fam = (name) => {
    if (!families.has(name)) families.set(name, { name, help: null, type: null, helpCount: 0, typeCount: 0, samples: [], firstSampleLine: null });
    return families.get(name);
  };
  const lines = text.split('\n');
  lines.pop();
  for (const [idx, line] of lines.entries()) {
    const where = `line ${idx + 1}: ${line}`;
    if (line.trim() === '') continue;
    if (line.startsWith('#')) {
      const m = /^# (HELP|TYPE) (\S+)(?: (.*))?$/.exec(line);
      if (!m) continue; // a plain comment
      assert.match(m[2], NAME_RE, `metric name (${where})`);
      const f = fam(m[2]);
      if (m[1] === 'HELP') {
        f.helpCount++;
        f.help = m[3] ?? '';
      } else {
        f.typeCount++;
        f.type = m[3];
        assert.ok(['counter', 'gauge', 'histogram', 'summary', 'untyped'].includes(f.type), `type (${where})`);
        assert.equal(f.samples.length, 0, `# TYPE comes before the family's samples (${where})`);
      }
      continue;
    }
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+(-?\d+))?$/.exec(line);
    assert.ok(m, `not a sample line (${where})`);
    const [, name, labelText, valueText] = m;
    const labels = labelText ? parseLabels(labelText, where) : {};
    const value = parseValue(valueText, where);
    let family = name;
    const hm = /^(.*)_(bucket|sum|count)$/.exec(name);
    if (hm && families.get(hm[1])?.type === 'histogram') family = hm[1];
    const f = families.get(family);
    assert.ok(f && f.typeCount > 0, `sample of a family without # TYPE (${where})`);
    if (f.type === 'histogram') {
      assert.ok(hm && hm[1] === family, `a histogram's samples are _bucket/_sum/_count (${where})`);
      if (hm[2] === 'bucket') assert.ok('le' in labels, `a bucket has le (${where})`);
    }
    const s = { name, family, labels, value, line: idx + 1 };
    f.samples.push(s);
    samples.push(s);
  }
  return { families, samples, text };
}

const labelKey = (labels, omit = []) =>
  JSON.stringify(
    Object.keys(labels)
      .filter((k) => !omit.includes(k))
      .sort()
      .map((k) => [k, labels[k]]),
  );

/** The value of the sample `name` whose labels are exactly `labels` (undefined when absent). */
function sampleValue(m, name, labels = {}) {
  const want = labelKey(labels);
  const hits = m.samples.filter((s) => s.name === name && labelKey(s.labels) === want);
  assert.ok(hits.length <= 1, `sample ${name}${want} appears ${hits.length} times`);
  return hits[0]?.value;
}

/** Sum over the samples `name` whose labels include `match`. */
function sumWhere(m, name, match = {}) {
  return m.samples
    .filter((s) => s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v))
    .reduce((a, s) => a + s.value, 0);
}

/** The structural rules of the format, and of histograms in particular. */
function assertWellFormed(m) {
  for (const f of m.families.values()) {
    assert.equal(f.helpCount, 1, `${f.name}: exactly one # HELP (got ${f.helpCount})`);
    assert.equal(f.typeCount, 1, `${f.name}: exactly one # TYPE (got ${f.typeCount})`);
    assert.ok(f.help && f.help.length > 0, `${f.name}: HELP text not empty`);
    if (f.type === 'counter') {
      assert.match(f.name, /_total$/, `counter ${f.name} is named *_total`);
      for (const s of f.samples) assert.ok(s.value >= 0 && Number.isFinite(s.value), `${s.name} counter value >= 0 (line ${s.line})`);
    }
    // No two samples with the same name and labels.
    const seen = new Set();
    for (const s of f.samples) {
      const k = s.name + labelKey(s.labels);
      assert.ok(!seen.has(k), `${f.name}: duplicate sample ${k} (line ${s.line})`);
      seen.add(k);
    }
    if (f.type !== 'histogram') continue;
    const series = new Map();
    for (const s of f.samples) {
      const k = labelKey(s.labels, ['le']);
      if (!series.has(k)) series.set(k, { buckets: [], sum: undefined, count: undefined });
      const e = series.get(k);
      if (s.name.endsWith('_bucket')) e.buckets.push({ le: parseValue(s.labels.le, `${f.name} le`), value: s.value, line: s.line });
      else if (s.name.endsWith('_sum')) e.sum = s.value;
      else e.count = s.value;
    }
    for (const [k, e] of series) {
      const what = `${f.name}${k}`;
      assert.ok(e.count !== undefined, `${what}: has _count`);
      assert.ok(e.sum !== undefined, `${what}: has _sum`);
      assert.ok(e.buckets.length >= 2, `${what}: has buckets`);
      for (let i = 1; i < e.buckets.length; i++) {
        assert.ok(e.buckets[i].le > e.buckets[i - 1].le, `${what}: le increasing (line ${e.buckets[i].line})`);
        assert.ok(e.buckets[i].value >= e.buckets[i - 1].value, `${what}: buckets cumulative (line ${e.buckets[i].line})`);
      }
      assert.equal(e.buckets.at(-1).le, Infinity, `${what}: the last bucket is le="+Inf"`);
      assert.equal(e.buckets.at(-1).value, e.count, `${what}: the +Inf bucket equals _count`);
      assert.ok(e.sum >= 0, `${what}: _sum >= 0`);
      if (e.count === 0) assert.equal(e.sum, 0, `${what}: _sum is 0 when _count is 0`);
    }
  }
}

/** _count of a histogram series (labels without le). */
const histCount = (m, family, labels = {}) => sampleValue(m, `${family}_count`, labels);

const FAMILIES = {
  prism_requests_total: 'counter',
  prism_request_duration_seconds: 'histogram',
  prism_upstream_duration_seconds: 'histogram',
  prism_time_to_first_token_seconds: 'histogram',
  prism_gateway_overhead_seconds: 'histogram',
  prism_tokens_total: 'counter',
  prism_upstream_errors_total: 'counter',
  prism_upstream_retries_total: 'counter',
  prism_fallbacks_total: 'counter',
  prism_plugin_step_duration_seconds: 'histogram',
  prism_requests_in_flight: 'gauge',
  prism_streams_open: 'gauge',
  prism_upstream_connections_open: 'gauge',
  prism_log_lines_dropped_total: 'counter',
};

async function scrape(gw, key = GATEWAY_KEY) {
  const r = await fetch(gw.url('/metrics'), {
    headers: key ? { authorization: `Bearer ${key}` } : {},
    signal: AbortSignal.timeout(T(5000)),
  });
  const text = await r.text();
  assert.equal(r.status, 200, `GET /metrics: ${r.status} ${text.slice(0, 300)}`);
  assert.match(r.headers.get('content-type') || '', /^text\/plain; *version=0\.0\.4/, 'Prometheus text content-type');
  return parseMetrics(text);
}

// ---- 1 + 2: metrics and access logs on one gateway (with gateway keys) ---------------------------------------

describe('GET /metrics and the access log', { timeout: T(90000) }, () => {
  let fakeOpenAI;
  let fakeAnthropic;
  let gw;
  const auth = { authorization: `Bearer ${GATEWAY_KEY}` };
  // What the requests below did, for the log assertions: {id, status, model, provider, stream, tokens}.
  const made = [];
  let metrics; // the first full scrape

  before(async () => {
    fakeOpenAI = await startFakeOpenAI();
    fakeAnthropic = await startFakeAnthropic({ apiKey: ANTHROPIC_KEY });
    gw = await startGateway({
      env: claudeEnv(fakeAnthropic, {
        OPENAI_BASE_URL: fakeOpenAI.baseURL,
        OPENAI_API_KEY: UPSTREAM_KEY,
        PRISM_API_KEYS: GATEWAY_KEY,
      }),
    });
  });

  after(async () => {
    if (gw) await gw.kill();
    if (fakeOpenAI) await fakeOpenAI.close();
    if (fakeAnthropic) await fakeAnthropic.close();
  });

  it('/metrics needs the gateway key (401 without one or with a wrong one); it is not under /v1', { timeout: T(10000) }, async () => {
    await expectErrorResponse(await fetch(gw.url('/metrics')), 401, { code: 'invalid_api_key' }, 'no key');
    await expectErrorResponse(
      await fetch(gw.url('/metrics'), { headers: { authorization: `Bearer ${WRONG_KEY}` } }),
      401,
      { code: 'invalid_api_key' },
      'wrong key',
    );
    const r = await fetch(gw.url('/v1/metrics'), { headers: auth });
    const text = await r.text();
    assert.notEqual(r.status, 200, `/v1/metrics is not the metrics endpoint: ${r.status} ${text.slice(0, 200)}`);
    assert.ok(!text.includes('# TYPE'), '/v1/metrics does not serve the exposition');
  });

  it('requests: non-stream OpenAI, streamed Claude with usage, 404 unknown model, 502 upstream reset', { timeout: T(20000) }, async () => {
    // 1. non-streamed, gpt-4o-mini, the client's own request id; the canary sits in the message content.
    const body1 = chatBody('gpt-4o-mini', { messages: [{ role: 'user', content: `remember ${CANARY} please` }] });
    let r = await postChat(gw, body1, { ...auth, 'x-request-id': 'ops-client-id-0001' });
    const j1 = await r.json();
    assert.equal(r.status, 200, JSON.stringify(j1));
    assert.equal(r.headers.get('x-request-id'), 'ops-client-id-0001', 'the client request id is returned');
    assert.ok(j1.usage && j1.usage.prompt_tokens > 0, 'the fake returned usage');
    made.push({ id: 'ops-client-id-0001', status: 200, model: 'gpt-4o-mini', provider: 'openai_provider', stream: false, usage: j1.usage });

    // 2. streamed Claude with include_usage, no client id: one is generated.
    const body2 = chatBody('claude-sonnet-4-5', {
      stream: true,
      stream_options: { include_usage: true },
      messages: [{ role: 'user', content: `Claude, the code is ${CANARY}` }],
    });
    r = await postChat(gw, body2, auth);
    const sse = await r.text();
    assert.equal(r.status, 200, sse);
    assert.match(sse, /data: \[DONE\]/);
    const id2 = r.headers.get('x-request-id');
    assert.ok(id2 && /^[\x21-\x7e]{8,}$/.test(id2), `a generated x-request-id: ${id2}`);
    const usageChunk = sse
      .split('\n')
      .filter((l) => l.startsWith('data: {'))
      .map((l) => JSON.parse(l.slice(6)))
      .find((c) => c.usage);
    assert.ok(usageChunk, 'the stream carries a usage chunk');
    assert.equal(usageChunk.usage.prompt_tokens, DEFAULT_USAGE.input_tokens);
    assert.equal(usageChunk.usage.completion_tokens, DEFAULT_USAGE.output_tokens);
    made.push({ id: id2, status: 200, model: 'claude-sonnet-4-5', provider: 'claude_provider', stream: true, usage: usageChunk.usage });

    // 3. an unknown model: 404 model_not_found, never reaches an upstream.
    r = await postChat(gw, chatBody('nosuch-model-ops'), { ...auth, 'x-request-id': 'ops-client-id-0003' });
    await expectErrorResponse(r, 404, { code: 'model_not_found' });
    assert.equal(r.headers.get('x-request-id'), 'ops-client-id-0003');
    made.push({ id: 'ops-client-id-0003', status: 404, model: null, provider: null, stream: false });

    // 4. the upstream resets the connection before answering: 502.
    fakeOpenAI.next({ reset: true });
    r = await postChat(gw, chatBody('gpt-4o'), auth);
    const e4 = await expectErrorResponse(r, 502);
    made.push({ id: r.headers.get('x-request-id'), status: 502, model: 'gpt-4o', provider: 'openai_provider', stream: false, code: e4.error.code });
    assert.ok(made.at(-1).id, 'x-request-id on a 502');

    // A client id with JSON-special characters is kept (printable ASCII) and must not break the log line.
    r = await postChat(gw, chatBody('gpt-4o-mini'), { ...auth, 'x-request-id': 'ops"quote\\back{1}' });
    const j5 = await r.json();
    assert.equal(r.status, 200);
    const id5 = r.headers.get('x-request-id');
    made.push({ id: id5, status: 200, model: 'gpt-4o-mini', provider: 'openai_provider', stream: false, usage: j5.usage });

    // A client id that is not short printable ASCII is replaced by a generated one.
    const longId = 'x'.repeat(1000);
    r = await postChat(gw, chatBody('nosuch-model-ops'), { ...auth, 'x-request-id': longId });
    await r.text();
    const id6 = r.headers.get('x-request-id');
    assert.ok(id6 && id6 !== longId && id6.length <= 128, `a 1000-byte client id is replaced (got ${id6?.length} bytes)`);
    made.push({ id: id6, status: 404, model: null, provider: null, stream: false });

    assert.equal(fakeOpenAI.requests.length, 3, 'the fake OpenAI saw the two gpt-4o-mini calls and the reset one');
    assert.equal(fakeAnthropic.requests.length, 1);
  });

  it('the exposition parses; every family has one HELP and one TYPE; histograms are consistent', { timeout: T(10000) }, async (t) => {
    // The access line is written when the request's memory is released, right after the response: the
    // metrics are recorded at the same moment, so wait until the last request's line is out.
    await waitFor(() => gw.stderr().includes(made.at(-1).id), T(3000), 'the last access line');
    metrics = await scrape(gw);
    t.diagnostic(`${metrics.samples.length} samples in ${metrics.families.size} families`);
    assertWellFormed(metrics);
    for (const [name, type] of Object.entries(FAMILIES)) {
      const f = metrics.families.get(name);
      assert.ok(f, `family ${name} is exposed (even before it has samples)`);
      assert.equal(f.type, type, `${name} is a ${type}`);
    }
    assert.equal(sampleValue(metrics, 'prism_log_lines_dropped_total'), 0, 'a log that keeps up drops nothing');
  });

  it('requests_total counts each label set; the 404 has no provider', { timeout: T(10000) }, async () => {
    const route = CHAT;
    const v = (model, provider, status) => sampleValue(metrics, 'prism_requests_total', { route, model, provider, status: String(status) });
    assert.equal(v('gpt-4o-mini', 'openai_provider', 200), 2, metrics.text);
    assert.equal(v('claude-sonnet-4-5', 'claude_provider', 200), 1);
    assert.equal(v('gpt-4o', 'openai_provider', 502), 1);
    assert.equal(sumWhere(metrics, 'prism_requests_total', { route, status: '404' }), 2, 'two 404s');
    for (const s of metrics.samples.filter((x) => x.name === 'prism_requests_total' && x.labels.status === '404')) {
      assert.notEqual(s.labels.provider, 'openai_provider', 'a 404 model_not_found has no provider');
      assert.notEqual(s.labels.provider, 'claude_provider', 'a 404 model_not_found has no provider');
    }
    assert.equal(sumWhere(metrics, 'prism_requests_total', { route }), 6, 'six chat requests in all');
    // The two 401s on /metrics are counted too (under the built-in route "").
    assert.equal(sumWhere(metrics, 'prism_requests_total', { status: '401' }), 2, 'two 401s');
    for (const s of metrics.samples.filter((x) => x.name === 'prism_requests_total')) {
      assert.deepEqual(Object.keys(s.labels).sort(), ['model', 'provider', 'route', 'status'], `labels of line ${s.line}`);
    }
  });

  it('tokens_total equals the upstreams\' usage', { timeout: T(10000) }, async () => {
    const gptPrompt = made.filter((x) => x.model === 'gpt-4o-mini').reduce((a, x) => a + x.usage.prompt_tokens, 0);
    const gptCompletion = made.filter((x) => x.model === 'gpt-4o-mini').reduce((a, x) => a + x.usage.completion_tokens, 0);
    const tok = (model, direction) => sampleValue(metrics, 'prism_tokens_total', { model, direction });
    assert.equal(tok('gpt-4o-mini', 'prompt'), gptPrompt);
    assert.equal(tok('gpt-4o-mini', 'completion'), gptCompletion);
    assert.equal(tok('claude-sonnet-4-5', 'prompt'), DEFAULT_USAGE.input_tokens);
    assert.equal(tok('claude-sonnet-4-5', 'completion'), DEFAULT_USAGE.output_tokens);
    assert.equal(sumWhere(metrics, 'prism_tokens_total', { model: 'gpt-4o' }), 0, 'no tokens for the failed gpt-4o call');
  });

  it('histograms: TTFT for the stream only, upstream time per provider, overhead for every request', { timeout: T(10000) }, async () => {
    assert.equal(histCount(metrics, 'prism_time_to_first_token_seconds', { provider: 'claude_provider' }), 1, 'TTFT of the Claude stream');
    assert.equal(sumWhere(metrics, 'prism_time_to_first_token_seconds_count'), 1, 'no TTFT for non-streamed calls');
    assert.equal(histCount(metrics, 'prism_upstream_duration_seconds', { provider: 'claude_provider' }), 1);
    assert.equal(histCount(metrics, 'prism_upstream_duration_seconds', { provider: 'openai_provider' }), 3, 'two answers and the reset call');
    const all = sumWhere(metrics, 'prism_requests_total');
    assert.equal(histCount(metrics, 'prism_gateway_overhead_seconds'), all, 'one overhead observation per finished request');
    assert.equal(sumWhere(metrics, 'prism_request_duration_seconds_count'), all, 'one duration observation per finished request');
    assert.equal(histCount(metrics, 'prism_request_duration_seconds', { route: CHAT }), 6);
    // Chain steps: the router ran for every chat request; each provider for the requests it served.
    assert.equal(histCount(metrics, 'prism_plugin_step_duration_seconds', { plugin: 'model_router' }), 6);
    assert.equal(histCount(metrics, 'prism_plugin_step_duration_seconds', { plugin: 'openai_provider' }), 3);
    assert.equal(histCount(metrics, 'prism_plugin_step_duration_seconds', { plugin: 'claude_provider' }), 1);
  });

  it('upstream errors, retries, fallbacks and the gauges', { timeout: T(10000) }, async () => {
    assert.equal(sumWhere(metrics, 'prism_upstream_errors_total', { provider: 'openai_provider' }), 1, 'the reset call is one upstream error');
    assert.equal(sumWhere(metrics, 'prism_upstream_errors_total', { provider: 'claude_provider' }), 0);
    assert.equal(sumWhere(metrics, 'prism_upstream_retries_total'), 0, 'retries are off by default');
    assert.equal(sumWhere(metrics, 'prism_fallbacks_total'), 0, 'no fallbacks configured');
    // The scrape itself is the only request in flight (an implementation may leave itself out).
    const inflight = sampleValue(metrics, 'prism_requests_in_flight');
    assert.ok(inflight === 0 || inflight === 1, `requests_in_flight is 0 or 1 (the scrape itself), got ${inflight}`);
    assert.equal(sampleValue(metrics, 'prism_streams_open'), 0, 'no stream left open');
    // A second scrape: exactly the first scrape was added, and still nothing leaked in flight.
    const again = await scrape(gw);
    assertWellFormed(again);
    assert.equal(sumWhere(again, 'prism_requests_total'), sumWhere(metrics, 'prism_requests_total') + 1, 'the first scrape is counted once');
    assert.equal(sampleValue(again, 'prism_requests_in_flight'), inflight);
    assert.equal(sampleValue(again, 'prism_streams_open'), 0);
  });

  it('a second gateway whose OpenAI base is a closed port: 502, upstream_errors_total{kind="connect"}', { timeout: T(30000) }, async () => {
    const dir = await scratchDir('prism-e2e-ops-502-');
    let gw2;
    try {
      const closed = await freePort(); // nothing listens there
      const config = path.join(dir, 'config.yml');
      const orig = await fs.promises.readFile(REPO_CONFIG, 'utf8');
      await fs.promises.writeFile(
        config,
        orig.replace(
          'plugins:\n  enabled: [ai_gateway]\n',
          `plugins:\n  enabled: [ai_gateway]\n  config:\n    openai_provider:\n      base_url: http://127.0.0.1:${closed}/v1\n`,
        ),
      );
      gw2 = await startGateway({ cwd: dir, config, env: gatewayEnv(null, { PRISM_API_KEYS: GATEWAY_KEY }) });
      const r = await postChat(gw2, chatBody('gpt-4o-mini'), auth);
      const { error } = await expectErrorResponse(r, 502, {}, 'closed upstream port');
      assert.equal(error.code, 'upstream_unreachable', JSON.stringify(error));
      const id = r.headers.get('x-request-id');
      await waitFor(() => hasAccessLine(gw2, id), T(3000), 'the access line of the 502');
      const m = await scrape(gw2);
      assertWellFormed(m);
      assert.equal(sampleValue(m, 'prism_requests_total', { route: CHAT, model: 'gpt-4o-mini', provider: 'openai_provider', status: '502' }), 1, m.text);
      assert.equal(sampleValue(m, 'prism_upstream_errors_total', { provider: 'openai_provider', kind: 'connect' }), 1, m.text);
      assert.equal(sumWhere(m, 'prism_tokens_total'), 0);
      const line = accessLines(parseJsonLines(gw2.stderr())).find((e) => e.request_id === id);
      assert.ok(line, 'an access line for the 502');
      assert.equal(line.status, 502);
      assert.equal(line.upstream_error, 'connect');
      await stopAndAssertClean(gw2);
    } finally {
      if (gw2) await gw2.kill();
      await fs.promises.rm(dir, { recursive: true, force: true });
    }
  });

  it('logs: every stderr line is JSON; one access line per request, matching it', { timeout: T(10000) }, async () => {
    const entries = parseJsonLines(gw.stderr());
    for (const e of entries) {
      assert.match(String(e.ts), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/, `ts is ISO 8601 UTC: ${JSON.stringify(e)}`);
      assert.ok(['debug', 'info', 'warn', 'error'].includes(e.level), `level: ${JSON.stringify(e)}`);
      assert.equal(typeof e.source, 'string', `source: ${JSON.stringify(e)}`);
      if (e.source !== 'access') assert.equal(typeof e.msg, 'string', `msg on a non-access line: ${JSON.stringify(e)}`);
    }
    const access = accessLines(entries);
    const chatLines = access.filter((e) => e.path === CHAT);
    assert.equal(chatLines.length, made.length, `one access line per chat request\n${gw.stderr()}`);
    for (const req of made) {
      const hits = access.filter((e) => e.request_id === req.id);
      assert.equal(hits.length, 1, `exactly one access line with request_id ${JSON.stringify(req.id)}`);
      const e = hits[0];
      const ctx = JSON.stringify(e);
      assert.equal(e.method, 'POST', ctx);
      assert.equal(e.path, CHAT, ctx);
      assert.equal(e.route, CHAT, ctx);
      assert.equal(e.status, req.status, ctx);
      assert.equal(e.stream, req.stream, ctx);
      assert.equal(e.retries, 0, ctx);
      assert.ok(Array.isArray(e.chain) && e.chain.includes('model_router'), `chain has model_router: ${ctx}`);
      assert.equal(typeof e.duration_ms, 'number', ctx);
      assert.ok(e.duration_ms >= 0, ctx);
      if (req.provider) {
        assert.equal(e.model, req.model, ctx);
        assert.equal(e.provider, req.provider, ctx);
        assert.deepEqual(e.chain, ['model_router', req.provider], ctx);
        assert.equal(typeof e.upstream_ms, 'number', `upstream_ms: ${ctx}`);
        assert.ok(e.duration_ms >= e.upstream_ms && e.upstream_ms >= 0, `duration_ms >= upstream_ms >= 0: ${ctx}`);
        assert.ok(e.overhead_ms >= 0 && Math.abs(e.duration_ms - e.upstream_ms - e.overhead_ms) < 0.01, `overhead = duration - upstream: ${ctx}`);
      } else {
        assert.equal(e.provider, undefined, `no provider on a 404: ${ctx}`);
        assert.equal(e.upstream_ms, undefined, `no upstream time on a 404: ${ctx}`);
      }
      if (req.status === 200) {
        assert.equal(e.prompt_tokens, req.usage.prompt_tokens, `prompt_tokens: ${ctx}`);
        assert.equal(e.completion_tokens, req.usage.completion_tokens, `completion_tokens: ${ctx}`);
        // first_byte_ms counts from the request's start (like duration_ms), not from the upstream call's.
        assert.ok(e.first_byte_ms >= 0 && e.first_byte_ms <= e.duration_ms, `0 <= first_byte_ms <= duration_ms: ${ctx}`);
        assert.equal(e.upstream_error, undefined, ctx);
      }
      if (req.status === 502) {
        assert.ok(e.upstream_error, `upstream_error on the 502: ${ctx}`);
        assert.equal(e.prompt_tokens, undefined, ctx);
      }
    }
    // Times are written as milliseconds with exactly three decimals, the timestamp to the millisecond.
    const times = [...gw.stderr().matchAll(/"(duration|upstream|overhead|first_byte)_ms":([^,}]*)/g)];
    assert.ok(times.length >= made.length, 'a time on every access line');
    for (const m of times) assert.match(m[2], /^\d+\.\d{3}$/, `three decimals: ${m[0]}`);
    for (const e of access) assert.match(e.ts, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, `access ts: ${e.ts}`);
    // The /metrics requests are logged as well (401s included), with their own ids.
    const metricsLines = access.filter((e) => e.path === '/metrics');
    assert.ok(metricsLines.filter((e) => e.status === 401).length === 2, 'the two 401s on /metrics are logged');
  });

  it('logs: no key and no message content appear anywhere', { timeout: T(10000) }, async () => {
    const logs = gw.logs();
    for (const [what, s] of [
      ['the upstream OpenAI key', UPSTREAM_KEY],
      ['the upstream Anthropic key', ANTHROPIC_KEY],
      ['the gateway key', GATEWAY_KEY],
      ['the wrong gateway key a client sent', WRONG_KEY],
      ['the message content (a secret-looking canary)', CANARY],
      ['the system prompt', 'You are a test.'],
    ]) {
      assert.ok(!logs.includes(s), `the logs contain ${what}`);
    }
  });
});

// ---- 2a: client-controlled values in the log line and the metric labels ----------------------------------

describe('access log and metrics with client-controlled values (long, quoted, non-ASCII model names)', { timeout: T(60000) }, () => {
  let fake;
  let gw;

  before(async () => {
    fake = await startFakeOpenAI();
    gw = await startGateway({ env: gatewayEnv(fake) });
  });

  after(async () => {
    if (gw) await gw.kill();
    if (fake) await fake.close();
  });

  // All routed to openai_provider by the "gpt" prefix, so the fake answers them and the model is logged.
  const MODELS = {
    quoted: 'gpt-"quoted"\\back\\slash',
    controls: 'gpt-ctl\n\t\u001b[31m-end',
    unicode: 'gpt-héllo-日本語-🚀',
    long: 'gpt-' + 'x'.repeat(5000),
  };

  for (const [what, model] of Object.entries(MODELS)) {
    it(`${what} model name: 200, and the access line is still one JSON object naming it`, { timeout: T(10000) }, async () => {
      const id = `ops-odd-model-${what}`;
      const r = await postChat(gw, chatBody(model), { 'x-request-id': id });
      const text = await r.text();
      assert.equal(r.status, 200, text.slice(0, 300));
      await waitFor(() => hasAccessLine(gw, id), T(3000), 'the access line');
      const raw = gw.stderr().split('\n').find((l) => l.includes(`"request_id":"${id}"`));
      assert.ok(raw, `an access line for ${id}`);
      let e;
      try {
        e = JSON.parse(raw);
      } catch (err) {
        assert.fail(`the access line of a request whose model is ${model.length} chars is not JSON (${err.message}); ` +
          `it is ${raw.length} bytes and ends with ${JSON.stringify(raw.slice(-60))}`);
      }
      assert.equal(e.status, 200);
      assert.equal(e.provider, 'openai_provider');
      assert.ok(typeof e.model === 'string' && model.startsWith(e.model.replace(/\uFFFD.*$/, '').replace(/\.\.\.$/, '')), `model ${JSON.stringify(e.model?.slice(0, 80))}`);
      if (what !== 'long') assert.equal(e.model, model, 'a short model name is logged as sent');
    });
  }

  it('an upstream reporting absurd token counts: not counted, not logged (the counters cannot be wrapped)', { timeout: T(10000) }, async () => {
    const model = 'gpt-absurd-usage';
    fake.next((req, res, record) => {
      const body = makeCompletion(record.body, { content: 'x' });
      body.usage = { prompt_tokens: 900000000000000000, completion_tokens: 5, total_tokens: 900000000000000005 };
      const text = JSON.stringify(body);
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    });
    const id = 'ops-absurd-usage';
    const r = await postChat(gw, chatBody(model), { 'x-request-id': id });
    assert.equal(r.status, 200, await r.text());
    await waitFor(() => hasAccessLine(gw, id), T(3000), 'the access line');
    const line = JSON.parse(gw.stderr().split('\n').find((l) => l.includes(`"request_id":"${id}"`)));
    assert.equal(line.prompt_tokens, undefined, JSON.stringify(line));
    const m = await scrape(gw, null);
    assert.equal(sumWhere(m, 'prism_tokens_total', { model }), 0);
  });

  it('metrics: label values are escaped and bounded; the exposition still parses', { timeout: T(10000) }, async () => {
    const m = await scrape(gw, null);
    assertWellFormed(m);
    const models = new Set(m.samples.filter((s) => s.name === 'prism_requests_total').map((s) => s.labels.model));
    assert.ok(models.has(MODELS.quoted), `the quoted model round-trips through the label escaping: ${[...models].map((x) => JSON.stringify(x)).join(', ')}`);
    assert.ok(models.has(MODELS.controls), 'the model with a newline round-trips (\\n escape)');
    assert.ok(models.has(MODELS.unicode), 'the UTF-8 model round-trips');
    for (const v of models) assert.ok(Buffer.byteLength(v) <= 64, `label values are at most 64 bytes: ${v.length}`);
    assert.ok([...models].some((v) => v.startsWith('gpt-xxxx')), 'the long model, truncated');
  });

  it('every stderr line is JSON', { timeout: T(10000) }, async () => {
    await stopAndAssertClean(gw);
    parseJsonLines(gw.stderr());
  });
});

// ---- 1b: the gauges after clients hang up -------------------------------------------------------------------

describe('metrics gauges after clients hang up mid-stream and mid-request', { timeout: T(60000) }, () => {
  let fake;
  let gw;

  before(async () => {
    fake = await startFakeOpenAI();
    gw = await startGateway({ env: gatewayEnv(fake) });
  });

  after(async () => {
    if (gw) await gw.kill();
    if (fake) await fake.close();
  });

  it('while a stream is open: streams_open 1, in flight 2 (with the scrape); after the client hangs up: 0 and 0', { timeout: T(20000) }, async () => {
    let release;
    const gate = new Promise((r) => (release = r));
    try {
      // A stream that stops after its first piece, and a non-streamed call that never answers.
      fake.next({ streamChunks: ['one', 'two'], gate, gateAfter: 1 });
      const ac1 = new AbortController();
      const r1 = await postChat(gw, chatBody('gpt-4o-mini', { stream: true }), { 'x-request-id': 'ops-gone-stream' }, ac1.signal);
      assert.equal(r1.status, 200);
      const reader = r1.body.getReader();
      await reader.read(); // the first bytes arrived: the stream is open
      fake.next({ hold: true });
      const ac2 = new AbortController();
      const p2 = postChat(gw, chatBody('gpt-4o-mini'), { 'x-request-id': 'ops-gone-held' }, ac2.signal).catch((e) => e);
      await fake.waitForRequests(2, T(3000));
      let m = await scrape(gw, null);
      assert.equal(sampleValue(m, 'prism_streams_open'), 1, 'one stream open');
      const inflight = sampleValue(m, 'prism_requests_in_flight');
      assert.ok(inflight === 2 || inflight === 3, `two requests in flight (+ the scrape), got ${inflight}`);
      ac1.abort();
      ac2.abort();
      await p2;
      await waitFor(() => gw.stderr().includes('ops-gone-stream') && gw.stderr().includes('ops-gone-held'), T(5000), 'the access lines of both');
      m = await scrape(gw, null);
      assertWellFormed(m);
      assert.equal(sampleValue(m, 'prism_streams_open'), 0, 'the stream is closed');
      assert.equal(sampleValue(m, 'prism_requests_in_flight'), inflight - 2, 'nothing left in flight but the scrape');
      const lines = accessLines(parseJsonLines(gw.stderr()));
      const s = lines.find((e) => e.request_id === 'ops-gone-stream');
      const h = lines.find((e) => e.request_id === 'ops-gone-held');
      assert.equal(s.client, 'gone', JSON.stringify(s));
      assert.equal(s.stream, true, JSON.stringify(s));
      assert.equal(h.client, 'gone', JSON.stringify(h));
    } finally {
      release();
    }
  });
});

// ---- 2b: server.log: text format into a file, access off, level ------------------------------------------------

describe('server.log: format text, file, access, level', { timeout: T(60000) }, () => {
  let fake;
  let dir;
  const gws = [];

  before(async () => {
    fake = await startFakeOpenAI();
    dir = await scratchDir('prism-e2e-ops-log-');
  });

  after(async () => {
    for (const g of gws) await g.kill();
    if (fake) await fake.close();
    if (dir) await fs.promises.rm(dir, { recursive: true, force: true });
  });

  async function configWithLog(name, logYaml) {
    const orig = await fs.promises.readFile(REPO_CONFIG, 'utf8');
    assert.match(orig, /^server:\n/m);
    const p = path.join(dir, name);
    await fs.promises.writeFile(p, orig.replace(/^server:\n/m, `server:\n  log:\n${logYaml}`));
    return p;
  }

  it('format: text, file: the file gets the lines (text), stderr gets no access line', { timeout: T(20000) }, async () => {
    const file = path.join(dir, 'prism.log');
    const config = await configWithLog('text.yml', `    format: text\n    access: true\n    file: ${file}\n`);
    const gw = await startGateway({ cwd: dir, config, env: gatewayEnv(fake) });
    gws.push(gw);
    const r = await postChat(gw, chatBody('gpt-4o-mini', { messages: [{ role: 'user', content: CANARY }] }), { 'x-request-id': 'ops-text-log-1' });
    assert.equal(r.status, 200);
    await r.text();
    await waitFor(() => fs.existsSync(file) && fs.readFileSync(file, 'utf8').includes('ops-text-log-1'), T(3000), 'the access line in the log file');
    await stopAndAssertClean(gw);
    const text = fs.readFileSync(file, 'utf8');
    const lines = text.split('\n').filter(Boolean);
    assert.ok(lines.length >= 3, `startup, access and stop lines in the file:\n${text}`);
    for (const l of lines) {
      assert.ok(!l.startsWith('{'), `text format, not JSON: ${l}`);
      assert.match(l, /^\d{4}-\d\d-\d\dT\S+ +(debug|info|warn|error) +[\w.]+: /, `"TS LEVEL source: message": ${l}`);
    }
    const access = lines.find((l) => l.includes('ops-text-log-1'));
    assert.match(access, / access: /, access);
    assert.match(access, /\b200\b/, access);
    assert.match(access, /model=gpt-4o-mini/, access);
    assert.match(access, /provider=openai_provider/, access);
    assert.ok(!gw.stderr().includes('ops-text-log-1'), `no access line on stderr:\n${gw.stderr()}`);
    assert.ok(!/\baccess\b/.test(gw.stderr()), `nothing from the access log on stderr:\n${gw.stderr()}`);
    assert.ok(!text.includes(CANARY) && !text.includes(UPSTREAM_KEY), 'no content and no key in the log file');
  });

  it('access: false: no access lines, the server lines still come (JSON)', { timeout: T(20000) }, async () => {
    const config = await configWithLog('noaccess.yml', '    access: false\n');
    const gw = await startGateway({ cwd: dir, config, env: gatewayEnv(fake) });
    gws.push(gw);
    const r = await postChat(gw, chatBody('gpt-4o-mini'), { 'x-request-id': 'ops-noaccess-1' });
    assert.equal(r.status, 200);
    await r.text();
    assert.equal(r.headers.get('x-request-id'), 'ops-noaccess-1');
    await stopAndAssertClean(gw);
    const entries = parseJsonLines(gw.stderr());
    assert.equal(accessLines(entries).length, 0, gw.stderr());
    assert.ok(entries.some((e) => e.source === 'server' && /listening/.test(e.msg)), 'the "listening" line');
  });

  it('level: warn: no info lines (no access lines), warnings still come', { timeout: T(20000) }, async () => {
    const config = await configWithLog('warn.yml', '    level: warn\n');
    const gw = await startGateway({ cwd: dir, config, env: gatewayEnv(fake) });
    gws.push(gw);
    const r = await postChat(gw, chatBody('gpt-4o-mini'));
    assert.equal(r.status, 200);
    await r.text();
    await stopAndAssertClean(gw);
    const entries = parseJsonLines(gw.stderr());
    assert.equal(entries.filter((e) => e.level === 'info' || e.level === 'debug').length, 0, gw.stderr());
    assert.ok(entries.some((e) => e.level === 'warn'), `the no-keys warning is a warn line:\n${gw.stderr()}`);
  });
});

// ---- 3: hot reload under load --------------------------------------------------------------------------------

describe('hot reload', { timeout: T(120000), skip: RELOAD_SKIP }, () => {
  let fake;
  let dir;
  let config;
  let gw;

  /** The scratch config: the repository's, with plugins.config overriding openai_provider's models list. */
  function configText(models, extra = '') {
    const list = models.map((m) => `        - ${m}`).join('\n');
    return [
      'server:',
      '  listen: ${PRISM_LISTEN:-127.0.0.1:8080}',
      '  workers: ${PRISM_WORKERS:-2}',
      '  api_prefix: /v1',
      '  api_keys: ${PRISM_API_KEYS:-}',
      'plugins:',
      '  enabled: [ai_gateway]',
      '  config:',
      '    openai_provider:',
      '      models:',
      list,
      extra,
      'routes:',
      '  /chat/completions:',
      '    chain: [ai_gateway:chat]',
      '',
    ].join('\n');
  }
  const BROKEN = 'server:\n  api_prefix: /v1\nplugins:\n  enabled: [ai_gateway\nroutes:\n  /chat/completions:\n    chain: [ai_gateway:chat]\n';

  before(async () => {
    fake = await startFakeOpenAI();
    dir = await scratchDir('prism-e2e-ops-reload-');
    config = path.join(dir, 'config.yml');
    await fs.promises.writeFile(config, configText(['ops-model-a1', 'ops-model-a2']));
    gw = await startGateway({ cwd: dir, config, env: gatewayEnv(fake) });
  });

  after(async () => {
    if (gw) await gw.kill();
    if (fake) await fake.close();
    if (dir) await fs.promises.rm(dir, { recursive: true, force: true });
  });

  const count = (re) => gw.stderr().split('\n').filter((l) => re.test(l)).length;

  async function reloadCli(file = config) {
    return runPrism(['reload', '--config', file], { cwd: dir, timeout: T(20000) });
  }

  it('the plugins.config models list shows in /v1/models', { timeout: T(10000) }, async () => {
    const ids = await modelIds(gw);
    assert.ok(ids.includes('ops-model-a1') && ids.includes('ops-model-a2'), JSON.stringify(ids));
    assert.ok(!ids.includes('gpt-4o'), `the override replaces the plugin's own list: ${JSON.stringify(ids)}`);
  });

  it('`prism reload` of a broken config: exit 1 with config.yml:LINE:, the server is not signalled', { timeout: T(20000) }, async () => {
    const brokenDir = path.join(dir, 'broken');
    await fs.promises.mkdir(brokenDir, { recursive: true });
    // Broken, but the very file the server serves: the CLI must refuse before signalling.
    const good = await fs.promises.readFile(config, 'utf8');
    const before = count(/reload/);
    await fs.promises.writeFile(config, BROKEN);
    try {
      const r = await reloadCli();
      assert.equal(r.code, 1, describeRun(r));
      assert.match(r.stderr, /config\.yml:\d+:/, describeRun(r));
      assert.doesNotMatch(r.stdout, /SIGHUP/, describeRun(r));
    } finally {
      await fs.promises.writeFile(config, good);
    }
    await sleep(T(300));
    assert.equal(count(/reload/), before, `no reload happened in the server:\n${gw.stderr()}`);
    // Another broken file, never served: also exit 1 with file:line.
    const other = path.join(brokenDir, 'config.yml');
    await fs.promises.writeFile(other, BROKEN);
    const r2 = await reloadCli(other);
    assert.equal(r2.code, 1, describeRun(r2));
    assert.match(r2.stderr, /config\.yml:\d+:/, describeRun(r2));
  });

  it('8 clients for ~4 s while reloading twice (prism reload) and a broken SIGHUP: zero failures', { timeout: T(60000) }, async (t) => {
    fake.reset();
    // Slow enough that requests are in flight during every reload.
    fake.always({ delayMs: 15, intervalMs: 10 });
    const results = { ok: 0, failed: [], streamed: 0 };
    let stop = false;
    async function client(n) {
      for (let i = 0; !stop; i++) {
        const stream = (i + n) % 2 === 0;
        try {
          const r = await postChat(gw, chatBody('gpt-4o-mini', stream ? { stream: true } : {}));
          const text = await r.text();
          if (r.status !== 200) throw new Error(`status ${r.status}: ${text.slice(0, 200)}`);
          if (stream) {
            if (!/data: \[DONE\]\n\n$/.test(text)) throw new Error(`stream did not end with [DONE]: ${text.slice(-200)}`);
            results.streamed++;
          } else if (JSON.parse(text).object !== 'chat.completion') throw new Error(`not a completion: ${text.slice(0, 200)}`);
          results.ok++;
        } catch (e) {
          results.failed.push(`client ${n} #${i} (${stream ? 'stream' : 'plain'}): ${e.message}`);
        }
      }
    }
    const clients = Array.from({ length: 8 }, (_, n) => client(n));
    const steps = [];
    try {
      await sleep(500);
      // Reload 1: models B.
      await fs.promises.writeFile(config, configText(['ops-model-b1']));
      let r = await reloadCli();
      assert.equal(r.code, 0, describeRun(r));
      assert.match(r.stdout, /SIGHUP/, describeRun(r));
      assert.match(r.stdout, new RegExp(`pid ${gw.pid}\\b`), `the right server was signalled: ${describeRun(r)}`);
      await waitFor(() => count(/reloaded/) >= 1, T(3000), 'the "reloaded" log line');
      await waitFor(async () => (await modelIds(gw)).includes('ops-model-b1'), T(3000), '/v1/models after reload 1');
      assert.ok(!(await modelIds(gw)).includes('ops-model-a1'));
      steps.push('reload 1');
      await sleep(700);
      // A broken config by plain SIGHUP: refused, the old keeps serving.
      await fs.promises.writeFile(config, BROKEN);
      process.kill(gw.pid, 'SIGHUP');
      await waitFor(() => count(/reload refused/) >= 1, T(3000), 'the "reload refused" log line');
      const refused = parseJsonLines(gw.stderr()).find((e) => /reload refused/.test(e.msg ?? ''));
      assert.equal(refused.level, 'error', JSON.stringify(refused));
      assert.match(refused.msg, /config\.yml:\d+/, `the refusal says where: ${refused.msg}`);
      assert.ok((await modelIds(gw)).includes('ops-model-b1'), 'still serving reload 1 after the refused one');
      steps.push('refused');
      await sleep(700);
      // Reload 2: models C.
      await fs.promises.writeFile(config, configText(['ops-model-c1', 'ops-model-c2', 'ops-model-c3']));
      r = await reloadCli();
      assert.equal(r.code, 0, describeRun(r));
      assert.match(r.stdout, /SIGHUP/, describeRun(r));
      await waitFor(() => count(/reloaded/) >= 2, T(3000), 'the second "reloaded" log line');
      steps.push('reload 2');
      await sleep(1500);
    } finally {
      stop = true;
      await Promise.all(clients);
      fake.always(null);
    }
    t.diagnostic(`steps: ${steps.join(', ')}; ${results.ok} requests ok (${results.streamed} streamed), ${results.failed.length} failed`);
    assert.deepEqual(results.failed, [], 'no request failed during the reloads');
    assert.ok(results.ok >= 40, `the load loop ran (${results.ok} requests)`);
    const ids = await modelIds(gw);
    for (const m of ['ops-model-c1', 'ops-model-c2', 'ops-model-c3']) assert.ok(ids.includes(m), `${m} in ${JSON.stringify(ids)}`);
    for (const m of ['ops-model-a1', 'ops-model-b1']) assert.ok(!ids.includes(m), `${m} gone: ${JSON.stringify(ids)}`);
    // Every line is still JSON, and every access line of the load is a 200.
    const entries = parseJsonLines(gw.stderr());
    const bad = accessLines(entries).filter((e) => e.path === CHAT && e.status !== 200);
    assert.deepEqual(bad, [], 'no failed request in the access log');
  });

  it('a request in flight finishes on the old setup; new ones use the new one (base_url moved by reload)', { timeout: T(30000) }, async () => {
    const fake2 = await startFakeOpenAI();
    let release;
    const gate = new Promise((r) => (release = r));
    try {
      await fs.promises.writeFile(config, configText(['ops-model-d1'], `      base_url: ${fake.baseURL}`));
      let r = await reloadCli();
      assert.equal(r.code, 0, describeRun(r));
      const reloads = count(/reloaded/);
      await waitFor(async () => (await modelIds(gw)).includes('ops-model-d1'), T(3000), 'reload to fake 1');
      fake.reset();
      fake.next({ streamChunks: ['old', '-', 'setup'], gate, gateAfter: 1 });
      const inflight = postChat(gw, chatBody('gpt-4o-mini', { stream: true }));
      await fake.waitForRequests(1, T(3000));
      // Move the provider to fake 2 while the first stream waits on fake 1.
      await fs.promises.writeFile(config, configText(['ops-model-d2'], `      base_url: ${fake2.baseURL}`));
      r = await reloadCli();
      assert.equal(r.code, 0, describeRun(r));
      await waitFor(() => count(/reloaded/) > reloads, T(3000), 'the reload to fake 2');
      await waitFor(async () => (await modelIds(gw)).includes('ops-model-d2'), T(3000), 'reload to fake 2 in /v1/models');
      const r2 = await postChat(gw, chatBody('gpt-4o-mini'));
      assert.equal(r2.status, 200, await r2.clone().text());
      await r2.text();
      assert.equal(fake2.requests.length, 1, 'the new request went to the new base_url');
      assert.equal(fake.requests.length, 1, 'the old fake saw only the in-flight request');
      release();
      const res = await inflight;
      const text = await res.text();
      assert.equal(res.status, 200);
      const content = text
        .split('\n')
        .filter((l) => l.startsWith('data: {'))
        .map((l) => JSON.parse(l.slice(6)).choices[0]?.delta?.content ?? '')
        .join('');
      assert.equal(content, 'old-setup', 'the in-flight stream completed on the old setup');
      assert.match(text, /data: \[DONE\]\n\n$/);
    } finally {
      release();
      await fake2.close();
    }
  });

  it('gateway keys change on reload: a key added by reload is required at once', { timeout: T(20000) }, async () => {
    await fs.promises.writeFile(config, configText(['ops-model-e1']).replace('${PRISM_API_KEYS:-}', GATEWAY_KEY));
    const reloads = count(/reloaded/);
    const r = await reloadCli();
    assert.equal(r.code, 0, describeRun(r));
    await waitFor(() => count(/reloaded/) > reloads, T(3000), 'the reload');
    await expectErrorResponse(await postChat(gw, chatBody('gpt-4o-mini')), 401, { code: 'invalid_api_key' }, 'no key after the reload');
    const ok = await postChat(gw, chatBody('gpt-4o-mini'), { authorization: `Bearer ${GATEWAY_KEY}` });
    assert.equal(ok.status, 200);
    await ok.text();
    assert.ok(!gw.logs().includes(GATEWAY_KEY), 'the new key is not logged');
  });

  it('a plugin config its plugin refuses (model_router prefix_map: 5): prism reload exits 1; by SIGHUP "reload refused", old keeps serving', { timeout: T(20000) }, async () => {
    const good = await fs.promises.readFile(config, 'utf8');
    const auth = { authorization: `Bearer ${GATEWAY_KEY}` }; // keys from the previous test are still on
    const bad = good.replace('  config:\n', '  config:\n    model_router:\n      prefix_map: 5\n');
    assert.notEqual(bad, good);
    await fs.promises.writeFile(config, bad);
    try {
      const r = await reloadCli();
      assert.equal(r.code, 1, describeRun(r));
      assert.match(r.stderr, /model_router/, describeRun(r));
      assert.doesNotMatch(r.stdout, /SIGHUP/, describeRun(r));
      const refusedBefore = count(/reload refused/);
      process.kill(gw.pid, 'SIGHUP');
      await waitFor(() => count(/reload refused/) > refusedBefore, T(3000), 'the "reload refused" line');
      const refusal = parseJsonLines(gw.stderr()).filter((e) => /reload refused/.test(e.msg ?? '')).at(-1);
      assert.equal(refusal.level, 'error');
      assert.match(refusal.msg, /prefix_map/, refusal.msg);
      const ok = await postChat(gw, chatBody('gpt-4o-mini'), auth);
      assert.equal(ok.status, 200, 'the old setup keeps serving');
      await ok.text();
      assert.ok((await modelIds(gw, auth)).includes('ops-model-e1'), 'the old models list');
    } finally {
      await fs.promises.writeFile(config, good);
    }
  });

  it('`prism reload --config ABS` finds a server started with a relative --config from its folder', { timeout: T(30000) }, async () => {
    const dir2 = await scratchDir('prism-e2e-ops-reload-rel-');
    let gw3;
    try {
      const file = path.join(dir2, 'config.yml');
      await fs.promises.writeFile(file, configText(['ops-rel-1']));
      gw3 = await startGateway({ cwd: dir2, config: 'config.yml', env: gatewayEnv(fake) });
      assert.ok((await modelIds(gw3)).includes('ops-rel-1'));
      await fs.promises.writeFile(file, configText(['ops-rel-2']));
      const r = await runPrism(['reload', '--config', file], { cwd: REPO_ROOT });
      assert.equal(r.code, 0, describeRun(r));
      assert.match(r.stdout, new RegExp(`pid ${gw3.pid}\\b`), describeRun(r));
      assert.doesNotMatch(r.stdout, new RegExp(`pid ${gw.pid}\\b`), `the other server (another config) is left alone: ${describeRun(r)}`);
      await waitFor(async () => (await modelIds(gw3)).includes('ops-rel-2'), T(3000), 'the reload of the relative config');
      await stopAndAssertClean(gw3);
    } finally {
      if (gw3) await gw3.kill();
      await fs.promises.rm(dir2, { recursive: true, force: true });
    }
  });

  it('the server still stops cleanly after the reloads, and every line it wrote is JSON', { timeout: T(20000) }, async () => {
    await stopAndAssertClean(gw);
    parseJsonLines(gw.stderr());
    assert.ok(!gw.logs().includes(UPSTREAM_KEY));
  });
});

// ---- 4: plugin network permissions ---------------------------------------------------------------------------

describe('plugin permissions: a base_url the plugin hard-codes to an undeclared host', { timeout: T(180000), skip: RELOAD_SKIP }, () => {
  let fake;
  let dir;
  let config;
  let gw;
  let baseConfig;

  before(async () => {
    fake = await startFakeOpenAI();
    dir = await scratchDir('prism-e2e-ops-perm-');
    // A copy of the gateway whose openai_provider's own config.yml points at the fake: the author's choice.
    const src = path.join(dir, 'src', 'ai_gateway');
    await fs.promises.cp(path.join(REPO_ROOT, 'plugins', 'ai_gateway'), src, {
      recursive: true,
      filter: (p) => !/\.(so|o)$/.test(p),
    });
    const pc = path.join(src, 'openai_provider', 'config.yml');
    const orig = await fs.promises.readFile(pc, 'utf8');
    const edited = orig.replace(/^base_url: .*$/m, `base_url: ${fake.baseURL}`);
    assert.notEqual(edited, orig, 'the base_url line was replaced');
    await fs.promises.writeFile(pc, edited);
    config = path.join(dir, 'config.yml');
    baseConfig = await fs.promises.readFile(REPO_CONFIG, 'utf8');
    await fs.promises.writeFile(config, baseConfig);
    const r = await runPrism(['install', src, '--yes', '--config', config], { cwd: dir, timeout: T(120000) });
    assert.equal(r.code, 0, `prism install\n${describeRun(r)}`);
    assert.match(r.stdout, /api\.openai\.com/, describeRun(r));
  });

  after(async () => {
    if (gw) await gw.kill();
    if (fake) await fake.close();
    if (dir) await fs.promises.rm(dir, { recursive: true, force: true });
  });

  const env = () => ({ ...gatewayEnv(null), PRISM_BUNDLED_PLUGIN_DIR: '' }); // no OPENAI_BASE_URL

  it('refused: 502 upstream_not_permitted, nothing reaches the host, an error line names the plugin and host', { timeout: T(20000) }, async () => {
    gw = await startGateway({ cwd: dir, config, env: env() });
    const r = await postChat(gw, chatBody('gpt-4o-mini'));
    const id = r.headers.get('x-request-id');
    const { error } = await expectErrorResponse(r, 502, { code: 'upstream_not_permitted' }, 'hard-coded base_url');
    assert.match(error.message, /openai_provider/, error.message);
    assert.match(error.message, /127\.0\.0\.1/, error.message);
    await waitFor(() => hasAccessLine(gw, id), T(3000), 'the log lines of the refused request');
    assert.equal(fake.requests.length, 0, 'the undeclared host got no request');
    const entries = parseJsonLines(gw.stderr());
    const refusal = entries.find((e) => e.level === 'error' && e.source !== 'access' && /127\.0\.0\.1/.test(e.msg ?? ''));
    assert.ok(refusal, `an error line about 127.0.0.1:\n${gw.stderr()}`);
    assert.match(`${refusal.source} ${refusal.msg}`, /openai_provider/, JSON.stringify(refusal));
    const access = accessLines(entries).find((e) => e.request_id === id);
    assert.equal(access?.status, 502, JSON.stringify(access));
    assert.ok(!gw.logs().includes(UPSTREAM_KEY), 'no key in the logs');
  });

  it('OPENAI_BASE_URL does not rescue it: the plugin\'s own config.yml does not read the variable', { timeout: T(20000) }, async () => {
    // Sanity of the setup: the hard-coded value wins over the environment, so it is still refused.
    const gw2 = await startGateway({ cwd: dir, config, env: { ...env(), OPENAI_BASE_URL: fake.baseURL } });
    try {
      const r = await postChat(gw2, chatBody('gpt-4o-mini'));
      await expectErrorResponse(r, 502, { code: 'upstream_not_permitted' });
      assert.equal(fake.requests.length, 0);
    } finally {
      await gw2.kill();
    }
  });

  async function setOperatorBaseUrl(url) {
    const text = baseConfig.replace(
      'plugins:\n  enabled: [ai_gateway]\n',
      `plugins:\n  enabled: [ai_gateway]\n  config:\n    openai_provider:\n      base_url: ${url}\n`,
    );
    assert.notEqual(text, baseConfig);
    await fs.promises.writeFile(config, text);
    const reloads = gw.stderr().split('\n').filter((l) => /reloaded/.test(l)).length;
    const r = await runPrism(['reload', '--config', config], { cwd: dir });
    assert.equal(r.code, 0, describeRun(r));
    await waitFor(() => gw.stderr().split('\n').filter((l) => /reloaded/.test(l)).length > reloads, T(3000), 'the reload');
  }

  it('the operator sets a base_url on the same host (plugins.config, different spelling) and reloads: 200', { timeout: T(20000) }, async () => {
    fake.reset();
    await setOperatorBaseUrl(`${fake.baseURL}/`);
    const r = await postChat(gw, chatBody('gpt-4o-mini'));
    const text = await r.text();
    assert.equal(r.status, 200, text);
    assert.equal(fake.requests.length, 1);
  });

  it('the operator sets plugins.config.openai_provider.base_url to exactly the hard-coded URL and reloads: 200', { timeout: T(20000) }, async () => {
    // The operator approved this URL by writing it in the server's own config.yml: it must count as
    // theirs even when it happens to equal what the plugin's author wrote.
    await setOperatorBaseUrl(`${fake.baseURL}`);
    fake.reset();
    const r = await postChat(gw, chatBody('gpt-4o-mini'));
    const text = await r.text();
    assert.equal(r.status, 200, `the operator's base_url is approved: ${r.status} ${text}`);
    assert.equal(fake.requests.length, 1);
  });

  it('without the override again (reload): refused again', { timeout: T(20000) }, async () => {
    await fs.promises.writeFile(config, baseConfig);
    const reloads = gw.stderr().split('\n').filter((l) => /reloaded/.test(l)).length;
    const r = await runPrism(['reload', '--config', config], { cwd: dir });
    assert.equal(r.code, 0, describeRun(r));
    await waitFor(() => gw.stderr().split('\n').filter((l) => /reloaded/.test(l)).length > reloads, T(3000), 'the reload');
    fake.reset();
    await expectErrorResponse(await postChat(gw, chatBody('gpt-4o-mini')), 502, { code: 'upstream_not_permitted' });
    assert.equal(fake.requests.length, 0);
    await stopAndAssertClean(gw);
  });
});

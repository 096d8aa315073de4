// Claude through the gateway with the official OpenAI SDK, streamed: Anthropic's SSE events become
// chat.completion.chunk frames, as they arrive. Rules: docs/translation.md.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startFakeAnthropic, claudeEnv, assertAnthropicRequest, ANTHROPIC_KEY, toolUseId, messageId } from './lib/fake-anthropic.mjs';
import { T, startGateway, sdkClient, withDeadline, assertNoSecretsInLogs, stopAndAssertClean } from './lib/gateway.mjs';

const CLIENT_KEY = 'sk-client-side-not-a-gateway-key';
const MODEL = 'claude-sonnet-4-5';
const user = (content) => ({ role: 'user', content });
const text = (t, pieces) => (pieces ? { type: 'text', text: t, pieces } : { type: 'text', text: t });
const TOOLS = [
  { type: 'function', function: { name: 'get_weather', description: 'Weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } },
  { type: 'function', function: { name: 'get_time', parameters: { type: 'object', properties: { tz: { type: 'string' } } } } },
];

/** Splits a raw OpenAI SSE body into its data payloads (strings). */
function sseData(raw) {
  return raw
    .split(/\r?\n\r?\n/)
    .map((e) => e.trim())
    .filter(Boolean)
    .flatMap((e) => e.split(/\r?\n/))
    .filter((l) => l.startsWith('data:'))
    .map((l) => l.slice(5).trim());
}

describe('Claude via the OpenAI SDK: streaming', { timeout: T(180000) }, () => {
  let fake;
  let gw;
  let client;

  before(async () => {
    fake = await startFakeAnthropic({ apiKey: ANTHROPIC_KEY });
    gw = await startGateway({ env: claudeEnv(fake) });
    client = await sdkClient(gw, CLIENT_KEY);
  });

  after(async () => {
    if (gw) await gw.kill();
    if (fake) await fake.close();
  });

  /** Streams one request with the SDK (bounded); returns the chunks and the upstream request. */
  async function stream(params, behaviour, ms = T(8000)) {
    fake.reset();
    if (behaviour) fake.next(behaviour);
    const chunks = [];
    await withDeadline(ms, 'the stream did not end', async (signal) => {
      const s = await client.chat.completions.create({ ...params, stream: true }, { signal });
      for await (const c of s) chunks.push(c);
    });
    assert.equal(fake.requests.length, 1, 'exactly one upstream request');
    const rec = fake.requests[0];
    assertAnthropicRequest(rec, { forbidden: [CLIENT_KEY] });
    assert.equal(rec.body.stream, true, 'stream: true reaches the upstream');
    assert.ok(!('stream_options' in rec.body), 'stream_options is not an Anthropic field');
    return { chunks, up: rec.body, sent: fake.responses[0] };
  }

  /** Streams expecting the iteration to throw; returns {chunks, error}. */
  async function streamExpectingError(params, behaviour, ms = T(8000)) {
    fake.reset();
    if (behaviour) fake.next(behaviour);
    const chunks = [];
    let error = null;
    await withDeadline(ms, 'the failing stream neither ended nor threw (hang)', async (signal) => {
      try {
        const s = await client.chat.completions.create({ ...params, stream: true }, { signal });
        for await (const c of s) chunks.push(c);
      } catch (e) {
        error = e;
      }
    });
    return { chunks, error };
  }

  /** Every chunk is a well-formed chat.completion.chunk of the same message. */
  function assertChunkShapes(chunks, { id, model }) {
    assert.ok(chunks.length > 0, 'at least one chunk');
    for (const c of chunks) {
      assert.equal(c.object, 'chat.completion.chunk');
      assert.equal(c.id, id, 'every chunk carries the message id from message_start');
      assert.equal(c.model, model, 'every chunk carries the model from message_start');
      assert.equal(typeof c.created, 'number');
      if (c.choices.length) {
        assert.equal(c.choices.length, 1);
        assert.equal(c.choices[0].index, 0);
        assert.ok(c.choices[0].delta && typeof c.choices[0].delta === 'object');
      }
    }
    const created = new Set(chunks.map((c) => c.created));
    assert.equal(created.size, 1, 'one created time for the whole stream');
  }

  function choiceChunks(chunks) {
    return chunks.filter((c) => c.choices.length > 0);
  }

  function assertFinish(chunks, finish) {
    const cc = choiceChunks(chunks);
    const withFinish = cc.filter((c) => c.choices[0].finish_reason !== null && c.choices[0].finish_reason !== undefined);
    assert.equal(withFinish.length, 1, 'exactly one chunk has a finish_reason');
    assert.equal(withFinish[0], cc.at(-1), 'the finish_reason is in the last choice chunk');
    assert.equal(withFinish[0].choices[0].finish_reason, finish);
  }

  const contentOf = (chunks) => choiceChunks(chunks).map((c) => c.choices[0].delta.content ?? '').join('');

  it('text: role first, text in order, finish_reason last, no usage chunk without include_usage', { timeout: T(15000) }, async () => {
    const id = messageId();
    const pieces = ['Hel', 'lo, ', 'wörld', ' 🚀', ' "quoted"\n', 'done.'];
    const { chunks, up } = await stream(
      { model: MODEL, messages: [user('Say hello.')] },
      { id, model: 'claude-sonnet-4-5-20250929', content: [text(pieces.join(''), pieces)] },
    );
    assert.deepEqual(up.messages, [{ role: 'user', content: [{ type: 'text', text: 'Say hello.' }] }]);
    assert.equal(up.max_tokens, 4096);
    assertChunkShapes(chunks, { id, model: 'claude-sonnet-4-5-20250929' });
    assert.deepEqual(chunks[0].choices[0].delta, { role: 'assistant', content: '' }, 'the first chunk carries the role');
    assert.equal(chunks[0].choices[0].finish_reason, null);
    const texts = choiceChunks(chunks)
      .map((c) => c.choices[0].delta.content)
      .filter((t) => t);
    assert.deepEqual(texts, pieces, 'one content delta per text_delta, in order');
    assertFinish(chunks, 'stop');
    assert.ok(chunks.every((c) => c.choices.length === 1), 'no usage chunk (choices: []) without include_usage');
    assert.ok(chunks.every((c) => !c.usage), 'no usage without include_usage');
    for (const c of choiceChunks(chunks)) assert.equal(c.choices[0].logprobs, null);
  });

  it('a long stream: 3,000 deltas of every size (some past 4 KB), each read in the memory of the one before, all exact', { timeout: T(30000) }, async () => {
    const pieces = [];
    for (let i = 0; i < 3000; i++) {
      const size = i % 500 === 7 ? 5000 + i : 1 + ((i * 37) % 90);
      const unit = ['a', 'é', '"', '\\', '\n', '🚀', ' x'][i % 7];
      pieces.push(`${i}:` + unit.repeat(Math.ceil(size / unit.length)));
    }
    const { chunks } = await stream(
      { model: MODEL, messages: [user('Go on.')] },
      { content: [text(pieces.join(''), pieces)] },
      T(20000),
    );
    const texts = choiceChunks(chunks)
      .map((c) => c.choices[0].delta.content)
      .filter((t) => t);
    assert.equal(texts.length, pieces.length, 'one content delta per text_delta');
    for (let i = 0; i < pieces.length; i++) assert.equal(texts[i], pieces[i], `delta ${i} as sent`);
    assertFinish(chunks, 'stop');
  });

  it('the raw SSE: text/event-stream, data-only frames of JSON, ending with data: [DONE]', { timeout: T(15000) }, async () => {
    fake.reset();
    fake.next({ content: [text('One two three', ['One', ' two', ' three'])] });
    const res = await fetch(gw.url('/v1/chat/completions'), {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
      body: JSON.stringify({ model: MODEL, messages: [user('count')], stream: true }),
      signal: AbortSignal.timeout(T(10000)),
    });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') || '', /^text\/event-stream\b/i);
    const raw = await res.text();
    assert.ok(!/^event:/m.test(raw), 'OpenAI frames carry no event: lines');
    const datas = sseData(raw);
    assert.equal(datas.at(-1), '[DONE]', 'the stream ends with data: [DONE]');
    assert.equal(datas.filter((d) => d === '[DONE]').length, 1);
    const chunks = datas.slice(0, -1).map((d) => JSON.parse(d));
    assert.equal(contentOf(chunks), 'One two three');
    assertFinish(chunks, 'stop');
    assert.ok(raw.endsWith('data: [DONE]\n\n'), 'the last frame is "data: [DONE]\\n\\n"');
  });

  it('include_usage: a last chunk with choices [] and the usage (cache tokens included)', { timeout: T(15000) }, async () => {
    const id = messageId();
    const { chunks } = await stream(
      { model: MODEL, messages: [user('x')], stream_options: { include_usage: true } },
      { id, content: [text('Hi there')], usage: { input_tokens: 50, cache_creation_input_tokens: 10, cache_read_input_tokens: 40, output_tokens: 9 } },
    );
    assertChunkShapes(chunks, { id, model: MODEL });
    const last = chunks.at(-1);
    assert.deepEqual(last.choices, [], 'the usage chunk has no choices');
    assert.equal(last.usage.prompt_tokens, 100);
    assert.equal(last.usage.completion_tokens, 9);
    assert.equal(last.usage.total_tokens, 109);
    assert.equal(last.usage.prompt_tokens_details.cached_tokens, 40);
    assert.equal(last.usage.cache_creation_input_tokens, 10);
    assert.equal(chunks.filter((c) => c.choices.length === 0).length, 1, 'one usage chunk');
    assertFinish(chunks, 'stop');
    assert.equal(contentOf(chunks), 'Hi there');
  });

  it('two parallel tool calls: indexes 0 and 1, id/name first, argument fragments concatenate to the exact JSON', { timeout: T(15000) }, async () => {
    const id1 = toolUseId();
    const id2 = toolUseId();
    const json1 = '{"city": "Paris"}';
    const json2 = '{"tz":"Europe/Oslo"}';
    const { chunks, up } = await stream(
      { model: MODEL, messages: [user('weather and time')], tools: TOOLS, parallel_tool_calls: true },
      {
        content: [
          text('Checking both.', ['Checking', ' both.']),
          { type: 'tool_use', id: id1, name: 'get_weather', input: JSON.parse(json1), partials: ['', '{"ci', 'ty": "Par', '', 'is"}'] },
          { type: 'tool_use', id: id2, name: 'get_time', input: JSON.parse(json2), partials: ['', '{"tz":', '"Europe/Oslo"}'] },
        ],
        stopReason: 'tool_use',
      },
    );
    assert.equal(up.tools.length, 2);
    assert.equal(contentOf(chunks), 'Checking both.');
    const tcDeltas = choiceChunks(chunks).flatMap((c) => c.choices[0].delta.tool_calls ?? []);
    const byIndex = new Map();
    for (const d of tcDeltas) {
      assert.ok(d.index === 0 || d.index === 1, `tool call index is 0 or 1 (counts tool_use blocks, not Anthropic block indexes): ${JSON.stringify(d)}`);
      if (!byIndex.has(d.index)) {
        // The first delta of a tool call names it.
        assert.equal(typeof d.id, 'string', `the first delta of tool call ${d.index} has its id`);
        assert.equal(d.type, 'function');
        assert.equal(typeof d.function?.name, 'string');
        byIndex.set(d.index, { id: d.id, name: d.function.name, args: d.function.arguments ?? '', fragments: [] });
      } else {
        const e = byIndex.get(d.index);
        assert.ok(!d.id || d.id === e.id, 'later deltas do not change the id');
        assert.ok(!d.function?.name, 'later deltas carry no name');
        assert.equal(typeof d.function?.arguments, 'string');
        assert.notEqual(d.function.arguments, '', 'no empty argument fragments (empty partial_json emits nothing)');
        e.args += d.function.arguments;
        e.fragments.push(d.function.arguments);
      }
    }
    assert.deepEqual([...byIndex.keys()], [0, 1]);
    assert.deepEqual(byIndex.get(0), { id: id1, name: 'get_weather', args: json1, fragments: ['{"ci', 'ty": "Par', 'is"}'] });
    assert.deepEqual(byIndex.get(1), { id: id2, name: 'get_time', args: json2, fragments: ['{"tz":', '"Europe/Oslo"}'] });
    // Tool call 1 only starts after tool call 0 is complete.
    const firstOf1 = tcDeltas.findIndex((d) => d.index === 1);
    assert.ok(tcDeltas.slice(firstOf1).every((d) => d.index === 1));
    assertFinish(chunks, 'tool_calls');
  });

  it('the SDK stream helper rebuilds the tool calls (finalChatCompletion)', { timeout: T(15000) }, async () => {
    fake.reset();
    const id = toolUseId();
    fake.next({ content: [{ type: 'tool_use', id, name: 'get_weather', input: { city: 'Rome' } }], stopReason: 'tool_use' });
    const final = await withDeadline(T(8000), 'stream helper', async (signal) => {
      const runner = client.chat.completions.stream({ model: MODEL, messages: [user('w')], tools: TOOLS }, { signal });
      return runner.finalChatCompletion();
    });
    const m = final.choices[0].message;
    assert.equal(m.content ?? null, null);
    assert.equal(m.tool_calls.length, 1);
    assert.equal(m.tool_calls[0].id, id);
    assert.equal(m.tool_calls[0].function.name, 'get_weather');
    assert.deepEqual(JSON.parse(m.tool_calls[0].function.arguments), { city: 'Rome' });
    assert.equal(final.choices[0].finish_reason, 'tool_calls');
  });

  it('a tool without parameters (Anthropic streams no input): arguments "{}", the role chunk says content null', { timeout: T(15000) }, async () => {
    fake.reset();
    const id = toolUseId();
    fake.next({ content: [{ type: 'tool_use', id, name: 'get_time', input: {} }], stopReason: 'tool_use' });
    const chunks = await withDeadline(T(8000), 'stream', async (signal) => {
      const out = [];
      const stream = await client.chat.completions.create({ model: MODEL, messages: [user('time?')], tools: TOOLS, stream: true }, { signal });
      for await (const c of stream) out.push(c);
      return out;
    });
    const first = chunks[0].choices[0].delta;
    assert.equal(first.role, 'assistant');
    assert.equal(first.content, null, `no empty text before a tool call: ${JSON.stringify(first)}`);
    const args = chunks
      .flatMap((c) => c.choices[0]?.delta?.tool_calls ?? [])
      .map((t) => t.function?.arguments ?? '')
      .join('');
    assert.equal(args, '{}');
    assert.deepEqual(JSON.parse(args), {});
    assert.ok(!chunks.some((c) => typeof c.choices[0]?.delta?.content === 'string' && c.choices[0].delta.content !== ''), 'no text content');
    assert.equal(chunks.at(-1).choices[0].finish_reason, 'tool_calls');
  });

  it('thinking: reasoning_content deltas, signature and redacted blocks as thinking_blocks, then the text', { timeout: T(15000) }, async () => {
    const { chunks, up } = await stream(
      { model: MODEL, messages: [user('think')], reasoning_effort: 'medium' },
      {
        content: [
          { type: 'thinking', thinking: 'First, 2+2. It is 4.', pieces: ['First, ', '2+2. ', 'It is 4.'], signature: 'EqQBCgIYAhIM1gbcDa9GJwZA2b3h==' },
          { type: 'redacted_thinking', data: 'EmwKAhgBEgy3va3pzix/LafPsn4aDFIT' },
          text('The answer is 4.', ['The answer', ' is 4.']),
        ],
      },
    );
    assert.deepEqual(up.thinking, { type: 'enabled', budget_tokens: 4096 });
    assert.equal(up.max_tokens, 8192);
    const cc = choiceChunks(chunks);
    const reasoning = cc.map((c) => c.choices[0].delta.reasoning_content).filter((x) => x !== undefined && x !== null && x !== '');
    assert.deepEqual(reasoning, ['First, ', '2+2. ', 'It is 4.']);
    const tb = cc.flatMap((c) => c.choices[0].delta.thinking_blocks ?? []);
    assert.deepEqual(tb, [
      { type: 'thinking', thinking: '', signature: 'EqQBCgIYAhIM1gbcDa9GJwZA2b3h==' },
      { type: 'redacted_thinking', data: 'EmwKAhgBEgy3va3pzix/LafPsn4aDFIT' },
    ]);
    assert.equal(contentOf(chunks), 'The answer is 4.');
    // Reasoning comes before the answer.
    const lastReasoning = cc.findLastIndex((c) => c.choices[0].delta.reasoning_content);
    const firstText = cc.findIndex((c) => c.choices[0].delta.content);
    assert.ok(lastReasoning < firstText, 'reasoning before text');
    assertFinish(chunks, 'stop');
  });

  it('response_format json_schema streamed: the forced tool input arrives as content deltas, no tool_calls, finish stop', { timeout: T(15000) }, async () => {
    const partials = ['', '{"city"', ': "Paris",', ' "temp": 18}'];
    const { chunks, up } = await stream(
      {
        model: MODEL,
        messages: [user('json')],
        stream_options: { include_usage: true },
        response_format: { type: 'json_schema', json_schema: { name: 'weather', schema: { type: 'object', properties: { city: { type: 'string' }, temp: { type: 'number' } } } } },
      },
      { content: [{ type: 'tool_use', id: toolUseId(), name: 'weather', input: { city: 'Paris', temp: 18 }, partials }], stopReason: 'tool_use' },
    );
    assert.deepEqual(up.tool_choice, { type: 'tool', name: 'weather' });
    const cc = choiceChunks(chunks);
    assert.ok(cc.every((c) => !c.choices[0].delta.tool_calls), 'no tool_calls deltas for the forced JSON tool');
    const texts = cc.map((c) => c.choices[0].delta.content).filter((t) => t);
    assert.deepEqual(texts, partials.filter((p) => p));
    assert.deepEqual(JSON.parse(texts.join('')), { city: 'Paris', temp: 18 });
    assertFinish(chunks, 'stop');
    assert.deepEqual(chunks.at(-1).choices, []);
  });

  it('stop_reason -> finish_reason for every documented value (streamed)', { timeout: T(40000) }, async () => {
    const cases = [
      ['end_turn', 'stop'],
      ['stop_sequence', 'stop'],
      ['pause_turn', 'stop'],
      ['max_tokens', 'length'],
      ['model_context_window_exceeded', 'length'],
      ['tool_use', 'tool_calls'],
      ['refusal', 'content_filter'],
      [null, 'stop'],
      ['some_future_reason', 'stop'],
    ];
    for (const [stopReason, finish] of cases) {
      const content = stopReason === 'tool_use' ? [{ type: 'tool_use', id: toolUseId(), name: 'get_weather', input: {} }] : [text('partial')];
      const { chunks } = await stream({ model: MODEL, messages: [user('x')], tools: TOOLS }, { content, stopReason });
      const cc = choiceChunks(chunks);
      assert.equal(cc.at(-1).choices[0].finish_reason, finish, `stop_reason ${stopReason}`);
    }
  });

  it('chunks reach the client before the upstream finishes (the upstream waits for the client after the first delta)', { timeout: T(20000) }, async () => {
    fake.reset();
    let release;
    const gate = new Promise((r) => (release = r));
    fake.next({ gate, gateAfter: 1, content: [text('first second third', ['first', ' second', ' third'])] });
    const received = [];
    let firstTextAt = null;
    try {
      await withDeadline(
        T(6000),
        'deadlock: the first text delta never reached the client while the upstream held back the rest (is the gateway buffering?)',
        async (signal) => {
          const s = await client.chat.completions.create({ model: MODEL, messages: [user('x')], stream: true }, { signal });
          for await (const c of s) {
            received.push(c);
            if (firstTextAt === null && c.choices[0]?.delta?.content) {
              firstTextAt = Date.now();
              assert.equal(c.choices[0].delta.content, 'first');
              release();
            }
          }
        },
      );
    } finally {
      release();
    }
    const sent = fake.responses[0];
    assert.ok(sent.gatedAt && sent.releasedAt, 'the fake held the stream, then released it');
    assert.ok(firstTextAt !== null && firstTextAt <= sent.releasedAt, 'the first delta arrived before the upstream sent the rest');
    assert.ok(sent.done, 'the upstream finished');
    assert.equal(contentOf(received), 'first second third');
    assertFinish(received, 'stop');
  });

  async function assertStillServes(what) {
    const { chunks } = await stream({ model: MODEL, messages: [user('again')] }, { content: [text('still here')] });
    assert.equal(contentOf(chunks), 'still here', `after ${what}: a new stream works`);
    fake.reset();
    const r = await client.chat.completions.create({ model: MODEL, messages: [user('again')] });
    assert.equal(r.choices[0].message.content, 'Hello from fake Claude.', `after ${what}: a new request works`);
  }

  const ERROR_EVENTS = [
    [{ type: 'overloaded_error', message: 'Overloaded' }, { type: 'api_error', code: 'overloaded' }],
    [{ type: 'api_error', message: 'Internal server error' }, { type: 'api_error', code: 'api_error' }],
    [{ type: 'rate_limit_error', message: 'Slow down' }, { type: 'rate_limit_error', code: 'rate_limit_exceeded' }],
  ];
  for (const [upstreamErr, expected] of ERROR_EVENTS) {
    it(`an error event (${upstreamErr.type}) mid-stream: the SDK iteration throws an APIError; the gateway keeps serving`, { timeout: T(25000) }, async () => {
      const { chunks, error } = await streamExpectingError(
        { model: MODEL, messages: [user('x')] },
        { content: [text('partial answer', ['partial', ' answer'])], errorAfter: 1, error: upstreamErr },
      );
      assert.ok(error, 'the iteration threw');
      assert.ok(error instanceof OpenAI.APIError, `an APIError (got ${error?.constructor?.name}: ${error?.message})`);
      assert.equal(error.type, expected.type);
      assert.equal(error.code, expected.code);
      assert.equal(error.param ?? null, null);
      assert.equal(error.error?.message, upstreamErr.message);
      assert.equal(contentOf(chunks), 'partial', 'the text before the error reached the client');
      assert.ok(choiceChunks(chunks).every((c) => !c.choices[0].finish_reason), 'no finish_reason before the error');
      await assertStillServes('an error event');
    });
  }

  it('an error event mid-stream, raw: an error frame last, no [DONE]', { timeout: T(15000) }, async () => {
    fake.reset();
    fake.next({ content: [text('partial answer', ['partial', ' answer'])], errorAfter: 1, error: { type: 'overloaded_error', message: 'Overloaded' } });
    const res = await fetch(gw.url('/v1/chat/completions'), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: MODEL, messages: [user('x')], stream: true }),
      signal: AbortSignal.timeout(T(10000)),
    });
    assert.equal(res.status, 200);
    const datas = sseData(await res.text());
    assert.ok(!datas.includes('[DONE]'), 'no [DONE] after an error');
    const last = JSON.parse(datas.at(-1));
    assert.deepEqual(last, { error: { message: 'Overloaded', type: 'api_error', param: null, code: 'overloaded' } });
  });

  it('the upstream connection drops mid-stream: the iteration ends with an error (no hang); the gateway keeps serving', { timeout: T(25000) }, async () => {
    const { chunks, error } = await streamExpectingError(
      { model: MODEL, messages: [user('x')] },
      { content: [text('partial answer that never ends', ['partial', ' answer', ' that never ends'])], dropAfter: 1 },
    );
    assert.ok(fake.responses[0]?.dropped, 'the fake dropped the connection');
    assert.ok(error, 'the iteration threw instead of ending as if complete');
    assert.ok(error instanceof OpenAI.APIError, `an APIError from the error frame (got ${error?.constructor?.name}: ${error?.message})`);
    assert.equal(error.type, 'api_error');
    assert.equal(typeof error.code, 'string');
    assert.equal(contentOf(chunks), 'partial');
    await assertStillServes('a dropped upstream');
  });

  it('a stalled upstream: the client gives up, the gateway closes the upstream connection and keeps serving', { timeout: T(25000) }, async () => {
    fake.reset();
    fake.next({ content: [text('a b c', ['a', ' b', ' c'])], stallAfter: 1 });
    const ac = new AbortController();
    const got = [];
    await withDeadline(T(8000), 'the client could not stop a stalled stream', async () => {
      const s = await client.chat.completions.create({ model: MODEL, messages: [user('x')], stream: true }, { signal: ac.signal });
      for await (const c of s) {
        got.push(c);
        if (c.choices[0]?.delta?.content === 'a') ac.abort();
      }
    });
    assert.equal(contentOf(got), 'a');
    const rec = fake.requests[0];
    await fake.waitClosed(rec, T(5000));
    assert.ok(rec.clientAborted, 'the gateway hung up on the stalled upstream');
    await assertStillServes('a stalled upstream');
  });

  it('unknown event types and pings are ignored; a content_block_start with text is emitted', { timeout: T(15000) }, async () => {
    const id = messageId();
    const ev = (event, data) => ({ event, data: { type: event, ...data } });
    const events = [
      ev('message_start', { message: { id, type: 'message', role: 'assistant', model: MODEL, content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: 3, output_tokens: 1 } } }),
      ev('ping', {}),
      ev('some_future_event', { foo: 'bar' }),
      ev('content_block_start', { index: 0, content_block: { type: 'text', text: 'Pre' } }),
      ev('content_block_delta', { index: 0, delta: { type: 'text_delta', text: 'fix' } }),
      ev('ping', {}),
      ev('content_block_stop', { index: 0 }),
      ev('message_delta', { delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: 2 } }),
      ev('message_stop', {}),
    ];
    const { chunks } = await stream({ model: MODEL, messages: [user('x')], stream_options: { include_usage: true } }, { events });
    assertChunkShapes(chunks, { id, model: MODEL });
    assert.equal(contentOf(chunks), 'Prefix');
    assertFinish(chunks, 'stop');
    assert.equal(chunks.at(-1).usage.prompt_tokens, 3);
    assert.equal(chunks.at(-1).usage.completion_tokens, 2);
  });

  it('data that is not JSON, or content before message_start -> an error frame upstream_protocol_error', { timeout: T(20000) }, async () => {
    const ev = (event, data) => ({ event, data: typeof data === 'string' ? data : { type: event, ...data } });
    const cases = [
      [
        'not JSON',
        [
          ev('message_start', { message: { id: messageId(), type: 'message', role: 'assistant', model: MODEL, content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: 3, output_tokens: 1 } } }),
          ev('content_block_start', { index: 0, content_block: { type: 'text', text: '' } }),
          ev('content_block_delta', '{"type":"content_block_delta","index":0,"delta":{"type":"text_del'),
          ev('message_stop', {}),
        ],
      ],
      [
        'content before message_start',
        [
          ev('content_block_start', { index: 0, content_block: { type: 'text', text: '' } }),
          ev('content_block_delta', { index: 0, delta: { type: 'text_delta', text: 'orphan' } }),
          ev('message_stop', {}),
        ],
      ],
    ];
    for (const [what, events] of cases) {
      const { error } = await streamExpectingError({ model: MODEL, messages: [user('x')] }, { events });
      assert.ok(error instanceof OpenAI.APIError, `${what}: an APIError (got ${error?.constructor?.name}: ${error?.message})`);
      assert.equal(error.code, 'upstream_protocol_error', what);
    }
    await assertStillServes('protocol errors');
  });

  it('an HTTP error before the stream starts: create() rejects with the mapped status', { timeout: T(15000) }, async () => {
    fake.reset();
    fake.next({ status: 429, body: { type: 'error', error: { type: 'rate_limit_error', message: 'Too many' } }, headers: { 'retry-after': '3' } });
    let caught;
    await assert.rejects(
      withDeadline(T(8000), 'stream error', async (signal) => {
        const s = await client.chat.completions.create({ model: MODEL, messages: [user('x')], stream: true }, { signal });
        for await (const c of s) void c;
      }),
      (e) => {
        caught = e;
        return true;
      },
    );
    assert.equal(caught.status, 429, caught.message);
    assert.equal(caught.code, 'rate_limit_exceeded');
    assert.equal(caught.headers?.get('retry-after'), '3');
  });

  it('shuts down cleanly and never logs the Anthropic key', { timeout: T(15000) }, async () => {
    await stopAndAssertClean(gw);
    assertNoSecretsInLogs(gw, [ANTHROPIC_KEY]);
  });
});

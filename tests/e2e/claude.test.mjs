// Claude through the gateway with the official OpenAI SDK, non-streamed: what the Anthropic upstream receives
// (the translated Messages request) and what the client gets back (a chat.completion).
// The translation rules: docs/translation.md.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startFakeAnthropic, claudeEnv, assertAnthropicRequest, ANTHROPIC_KEY, toolUseId } from './lib/fake-anthropic.mjs';
import { T, startGateway, sdkClient, expectErrorResponse, assertNoSecretsInLogs, stopAndAssertClean } from './lib/gateway.mjs';

const CLIENT_KEY = 'sk-client-side-not-a-gateway-key';
const MODEL = 'claude-sonnet-4-5';
const PNG_B64 = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==';
const PDF_B64 = 'JVBERi0xLjQKJcfsj6IKMSAwIG9iago8PD4+CmVuZG9iagp0cmFpbGVyCjw8Pj4KJSVFT0YK';

const user = (content, extra = {}) => ({ role: 'user', content, ...extra });
const assistant = (content, extra = {}) => ({ role: 'assistant', content, ...extra });
const text = (t) => ({ type: 'text', text: t });
const call = (id, name, args) => ({ id, type: 'function', function: args === undefined ? { name } : { name, arguments: args } });

describe('Claude via the OpenAI SDK: request and response translation (non-streamed)', { timeout: T(180000) }, () => {
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

  /** One request through the gateway; returns the client's result and the Anthropic body the upstream received. */
  async function roundTrip(params, behaviour) {
    fake.reset();
    if (behaviour) fake.next(behaviour);
    const data = await client.chat.completions.create(params);
    assert.equal(fake.requests.length, 1, 'exactly one upstream request');
    const rec = fake.requests[0];
    assertAnthropicRequest(rec, { forbidden: [CLIENT_KEY] });
    return { data, up: rec.body, sent: fake.responses[0]?.body };
  }

  /** The Anthropic body without a harmless "stream": false. */
  function core(up) {
    const b = { ...up };
    if (b.stream === false) delete b.stream;
    return b;
  }

  /** The request must be refused by the gateway itself (nothing reaches the upstream). */
  async function expectRefused(params, status, { code, param, type } = {}, what = '') {
    fake.reset();
    let caught;
    await assert.rejects(client.chat.completions.create(params), (e) => {
      caught = e;
      return true;
    });
    const ctx = `${what}: ${caught?.message}`;
    assert.ok(caught instanceof OpenAI.APIError, `an APIError (${ctx})`);
    assert.equal(caught.status, status, `status (${ctx})`);
    if (code !== undefined) assert.equal(caught.code, code, `code (${ctx})`);
    if (param !== undefined) assert.equal(caught.param, param, `param (${ctx})`);
    if (type !== undefined) assert.equal(caught.type, type, `type (${ctx})`);
    assert.equal(fake.requests.length, 0, `nothing may reach the upstream (${what})`);
    assert.ok(!JSON.stringify(caught.error ?? {}).includes(ANTHROPIC_KEY), 'the key never appears in an error');
    return caught;
  }

  // ---- basics ----------------------------------------------------------------------------------------------------

  it('a plain request: model unchanged, string content -> text block, max_tokens 4096, no system; Message -> chat.completion', { timeout: T(15000) }, async () => {
    const t0 = Math.floor(Date.now() / 1000);
    const { data, up, sent } = await roundTrip(
      { model: MODEL, messages: [user('Say hello.')] },
      {
        model: 'claude-sonnet-4-5-20250929',
        content: [text('Hello!')],
        usage: { input_tokens: 9, output_tokens: 3 },
      },
    );
    assert.deepEqual(core(up), { model: MODEL, messages: [{ role: 'user', content: [text('Say hello.')] }], max_tokens: 4096 });

    assert.match(sent.id, /^msg_/);
    assert.equal(data.id, sent.id, 'the Anthropic id is kept');
    assert.equal(data.object, 'chat.completion');
    assert.equal(typeof data.created, 'number');
    assert.ok(Math.abs(data.created - t0) <= 60, `created is the gateway's time (${data.created} vs ${t0})`);
    assert.equal(data.model, 'claude-sonnet-4-5-20250929', 'the model as Anthropic returned it');
    assert.equal(data.choices.length, 1);
    const c = data.choices[0];
    assert.equal(c.index, 0);
    assert.equal(c.logprobs, null);
    assert.equal(c.finish_reason, 'stop');
    assert.equal(c.message.role, 'assistant');
    assert.equal(c.message.content, 'Hello!');
    assert.equal(c.message.refusal, null);
    assert.ok(!('tool_calls' in c.message), 'no tool_calls without tool_use blocks');
    assert.ok(!('reasoning_content' in c.message), 'no reasoning_content without thinking blocks');
    assert.ok(!('thinking_blocks' in c.message), 'no thinking_blocks without thinking blocks');
    assert.equal(data.usage.prompt_tokens, 9);
    assert.equal(data.usage.completion_tokens, 3);
    assert.equal(data.usage.total_tokens, 12);
    assert.equal(data.usage.prompt_tokens_details?.cached_tokens, 0);
    assert.ok(!('cache_creation_input_tokens' in data.usage), 'no cache_creation_input_tokens when it is 0');
  });

  it('usage: cache tokens count in prompt_tokens, cache reads in prompt_tokens_details.cached_tokens', { timeout: T(15000) }, async () => {
    const { data } = await roundTrip(
      { model: MODEL, messages: [user('Long cached prompt')] },
      { usage: { input_tokens: 100, cache_creation_input_tokens: 20, cache_read_input_tokens: 30, output_tokens: 7 } },
    );
    assert.equal(data.usage.prompt_tokens, 150);
    assert.equal(data.usage.completion_tokens, 7);
    assert.equal(data.usage.total_tokens, 157);
    assert.equal(data.usage.prompt_tokens_details.cached_tokens, 30);
    assert.equal(data.usage.cache_creation_input_tokens, 20);
  });

  it('usage without the cache fields: cached_tokens 0', { timeout: T(15000) }, async () => {
    fake.reset();
    fake.next((req, res) => {
      const body = JSON.stringify({
        id: 'msg_01NoCacheFields000000000',
        type: 'message',
        role: 'assistant',
        model: MODEL,
        content: [text('ok')],
        stop_reason: 'end_turn',
        stop_sequence: null,
        usage: { input_tokens: 5, output_tokens: 2 },
      });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
    const data = await client.chat.completions.create({ model: MODEL, messages: [user('hi')] });
    assert.equal(data.id, 'msg_01NoCacheFields000000000');
    assert.equal(data.usage.prompt_tokens, 5);
    assert.equal(data.usage.completion_tokens, 2);
    assert.equal(data.usage.total_tokens, 7);
    assert.equal(data.usage.prompt_tokens_details?.cached_tokens, 0);
    assert.ok(!('cache_creation_input_tokens' in data.usage));
  });

  // ---- system / developer ------------------------------------------------------------------------------------------

  it('system and developer messages (anywhere) -> top-level system text blocks, cache_control kept, blank ones dropped', { timeout: T(15000) }, async () => {
    const { up } = await roundTrip({
      model: MODEL,
      messages: [
        { role: 'system', content: 'You are terse.' },
        user('Hi'),
        {
          role: 'developer',
          content: [
            { type: 'text', text: 'Be nice.', cache_control: { type: 'ephemeral' } },
            { type: 'text', text: '   ' },
            { type: 'text', text: '' },
          ],
        },
        assistant('Hello'),
        { role: 'system', content: '  \n ' },
        { role: 'system', content: '' },
        user('Bye'),
      ],
    });
    assert.deepEqual(up.system, [text('You are terse.'), { type: 'text', text: 'Be nice.', cache_control: { type: 'ephemeral' } }]);
    assert.deepEqual(up.messages, [
      { role: 'user', content: [text('Hi')] },
      { role: 'assistant', content: [text('Hello')] },
      { role: 'user', content: [text('Bye')] },
    ]);
  });

  it('only blank system messages: no "system" key', { timeout: T(15000) }, async () => {
    const { up } = await roundTrip({ model: MODEL, messages: [{ role: 'system', content: ' ' }, user('Hi')] });
    assert.ok(!('system' in up), `no system key (got ${JSON.stringify(up.system)})`);
  });

  it('"name" on messages is dropped', { timeout: T(15000) }, async () => {
    const { up } = await roundTrip({
      model: MODEL,
      messages: [{ role: 'system', content: 'S', name: 'sys' }, user('Hi', { name: 'alice' }), assistant('Yo', { name: 'bot' }), user('Again', { name: 'alice' })],
    });
    assert.deepEqual(up.messages, [
      { role: 'user', content: [text('Hi')] },
      { role: 'assistant', content: [text('Yo')] },
      { role: 'user', content: [text('Again')] },
    ]);
  });

  // ---- merging, tool calls and tool results ------------------------------------------------------------------------

  it('roles alternate: consecutive turns merged, tool_result blocks lead the user turn, empty text and empty messages dropped', { timeout: T(15000) }, async () => {
    const { up } = await roundTrip({
      model: MODEL,
      messages: [
        user('a'),
        user([text('b'), text('')]),
        assistant('c'),
        assistant(null, { tool_calls: [call('call_1', 'get_weather', '{"city":"Paris","days":[1,2]}'), call('call_2', 'get_time', '')] }),
        user('note first'),
        { role: 'tool', tool_call_id: 'call_1', content: '18C' },
        { role: 'tool', tool_call_id: 'call_2', content: [text('noon')] },
        assistant(''),
        user('e'),
      ],
    });
    assert.equal(up.messages.length, 3, `three alternating turns, got ${JSON.stringify(up.messages)}`);
    const [u1, a1, u2] = up.messages;
    assert.deepEqual(u1, { role: 'user', content: [text('a'), text('b')] });
    assert.deepEqual(a1, {
      role: 'assistant',
      content: [
        text('c'),
        { type: 'tool_use', id: 'call_1', name: 'get_weather', input: { city: 'Paris', days: [1, 2] } },
        { type: 'tool_use', id: 'call_2', name: 'get_time', input: {} },
      ],
    });
    assert.equal(u2.role, 'user');
    assert.equal(u2.content.length, 4, JSON.stringify(u2.content));
    const [r1, r2, t1, t2] = u2.content;
    assert.equal(r1.type, 'tool_result');
    assert.equal(r1.tool_use_id, 'call_1');
    assert.ok(r1.content === '18C' || JSON.stringify(r1.content) === JSON.stringify([text('18C')]), `tool content: ${JSON.stringify(r1.content)}`);
    assert.equal(r2.type, 'tool_result');
    assert.equal(r2.tool_use_id, 'call_2');
    assert.ok(r2.content === 'noon' || JSON.stringify(r2.content) === JSON.stringify([text('noon')]), `tool content: ${JSON.stringify(r2.content)}`);
    assert.deepEqual([t1, t2], [text('note first'), text('e')]);
  });

  it('tool_calls without "arguments" -> input {}', { timeout: T(15000) }, async () => {
    const { up } = await roundTrip({
      model: MODEL,
      messages: [user('q'), assistant(null, { tool_calls: [call('call_x', 'ping')] }), { role: 'tool', tool_call_id: 'call_x', content: 'pong' }],
    });
    assert.deepEqual(up.messages[1].content, [{ type: 'tool_use', id: 'call_x', name: 'ping', input: {} }]);
    assert.equal(up.messages[2].content[0].tool_use_id, 'call_x');
  });

  it('tool_calls arguments that are not a JSON object -> 400 invalid_tool_arguments with the param path', { timeout: T(20000) }, async () => {
    const sys = { role: 'system', content: 'S' };
    await expectRefused(
      { model: MODEL, messages: [sys, user('q'), assistant(null, { tool_calls: [call('c1', 'f', '{"city":')] }), { role: 'tool', tool_call_id: 'c1', content: 'x' }] },
      400,
      { code: 'invalid_tool_arguments', param: 'messages[2].tool_calls[0].function.arguments' },
      'truncated JSON',
    );
    await expectRefused(
      {
        model: MODEL,
        messages: [user('q'), assistant(null, { tool_calls: [call('c1', 'f', '{}'), call('c2', 'g', '[1,2]')] }), { role: 'tool', tool_call_id: 'c1', content: 'x' }, { role: 'tool', tool_call_id: 'c2', content: 'y' }],
      },
      400,
      { code: 'invalid_tool_arguments', param: 'messages[1].tool_calls[1].function.arguments' },
      'a JSON array',
    );
    await expectRefused(
      { model: MODEL, messages: [user('q'), assistant(null, { tool_calls: [call('c1', 'f', '42')] }), { role: 'tool', tool_call_id: 'c1', content: 'x' }] },
      400,
      { code: 'invalid_tool_arguments', param: 'messages[1].tool_calls[0].function.arguments' },
      'a JSON number',
    );
  });

  it('a tool message without tool_call_id -> 400', { timeout: T(15000) }, async () => {
    await expectRefused(
      { model: MODEL, messages: [user('q'), assistant(null, { tool_calls: [call('c1', 'f', '{}')] }), { role: 'tool', content: 'x' }] },
      400,
      {},
      'missing tool_call_id',
    );
  });

  it('assistant thinking_blocks go back first and unchanged; an assistant refusal is sent as text', { timeout: T(15000) }, async () => {
    const thinking = [
      { type: 'thinking', thinking: 'I reason about it.', signature: 'EqQBCkgIARABGAIiQL==' },
      { type: 'redacted_thinking', data: 'EmwKAhgBEgy3va3pzix/LafPsn4aDFIT' },
    ];
    const { up } = await roundTrip({
      model: MODEL,
      messages: [
        user('q1'),
        assistant('Answer', { thinking_blocks: thinking }),
        user('q2'),
        { role: 'assistant', content: null, refusal: "I can't help with that." },
        user('q3'),
      ],
    });
    assert.deepEqual(up.messages, [
      { role: 'user', content: [text('q1')] },
      { role: 'assistant', content: [...thinking, text('Answer')] },
      { role: 'user', content: [text('q2')] },
      { role: 'assistant', content: [text("I can't help with that.")] },
      { role: 'user', content: [text('q3')] },
    ]);
  });

  // ---- content parts -----------------------------------------------------------------------------------------------

  it('image_url parts: data: URL -> base64 image with media_type, http(s) URL -> url image', { timeout: T(15000) }, async () => {
    const { up } = await roundTrip({
      model: MODEL,
      messages: [
        user([
          text('What is in these?'),
          { type: 'image_url', image_url: { url: `data:image/png;base64,${PNG_B64}` } },
          { type: 'image_url', image_url: { url: 'https://example.com/cat.jpg', detail: 'high' } },
          { type: 'image_url', image_url: { url: 'http://example.com/dog.webp' } },
        ]),
      ],
    });
    assert.deepEqual(up.messages, [
      {
        role: 'user',
        content: [
          text('What is in these?'),
          { type: 'image', source: { type: 'base64', media_type: 'image/png', data: PNG_B64 } },
          { type: 'image', source: { type: 'url', url: 'https://example.com/cat.jpg' } },
          { type: 'image', source: { type: 'url', url: 'http://example.com/dog.webp' } },
        ],
      },
    ]);
  });

  it('image_url with another scheme or a malformed data: URL -> 400 param messages[i].content[j].image_url', { timeout: T(20000) }, async () => {
    for (const url of ['ftp://example.com/a.png', 'file:///etc/passwd', 'data:image/png,notbase64', 'data:;base64', 'not a url']) {
      await expectRefused(
        { model: MODEL, messages: [{ role: 'system', content: 'S' }, user([text('look'), { type: 'image_url', image_url: { url } }])] },
        400,
        { param: 'messages[1].content[1].image_url' },
        url,
      );
    }
  });

  it('file part with a PDF data URL -> document block; input_audio -> 400 unsupported_content; unknown part types -> 400', { timeout: T(20000) }, async () => {
    const { up } = await roundTrip({
      model: MODEL,
      messages: [user([{ type: 'file', file: { filename: 'a.pdf', file_data: `data:application/pdf;base64,${PDF_B64}` } }, text('Summarise.')])],
    });
    assert.deepEqual(up.messages[0].content, [
      { type: 'document', source: { type: 'base64', media_type: 'application/pdf', data: PDF_B64 } },
      text('Summarise.'),
    ]);
    await expectRefused(
      { model: MODEL, messages: [user([{ type: 'input_audio', input_audio: { data: 'UklGRg==', format: 'wav' } }])] },
      400,
      { code: 'unsupported_content' },
      'input_audio',
    );
    await expectRefused({ model: MODEL, messages: [user([{ type: 'video_url', video_url: { url: 'https://x/y.mp4' } }])] }, 400, {}, 'unknown part');
  });

  // ---- parameters --------------------------------------------------------------------------------------------------

  it('max_tokens / max_completion_tokens (the latter wins); non-positive -> 400 param max_tokens', { timeout: T(20000) }, async () => {
    const base = { model: MODEL, messages: [user('hi')] };
    assert.equal((await roundTrip({ ...base, max_tokens: 100 })).up.max_tokens, 100);
    assert.equal((await roundTrip({ ...base, max_completion_tokens: 200 })).up.max_tokens, 200);
    assert.equal((await roundTrip({ ...base, max_tokens: 100, max_completion_tokens: 300 })).up.max_tokens, 300);
    const up = (await roundTrip({ ...base, max_tokens: 100, max_completion_tokens: 300 })).up;
    assert.ok(!('max_completion_tokens' in up), 'max_completion_tokens is not an Anthropic field');
    await expectRefused({ ...base, max_tokens: 0 }, 400, { param: 'max_tokens' }, 'max_tokens 0');
    await expectRefused({ ...base, max_tokens: -5 }, 400, { param: 'max_tokens' }, 'max_tokens -5');
    const e = await expectRefused({ ...base, max_completion_tokens: 0 }, 400, {}, 'max_completion_tokens 0');
    assert.match(String(e.param), /^max_(completion_)?tokens$/);
  });

  it('temperature clamped to 0..1, top_p and top_k passed', { timeout: T(20000) }, async () => {
    const base = { model: MODEL, messages: [user('hi')] };
    let { up } = await roundTrip({ ...base, temperature: 1.7, top_p: 0.8, top_k: 40 });
    assert.equal(up.temperature, 1);
    assert.equal(up.top_p, 0.8);
    assert.equal(up.top_k, 40);
    ({ up } = await roundTrip({ ...base, temperature: 0.3 }));
    assert.equal(up.temperature, 0.3);
    ({ up } = await roundTrip({ ...base, temperature: 0 }));
    assert.equal(up.temperature, 0);
    ({ up } = await roundTrip({ ...base, temperature: 2 }));
    assert.equal(up.temperature, 1);
  });

  it('stop -> stop_sequences, blank entries dropped, none left -> no key', { timeout: T(20000) }, async () => {
    const base = { model: MODEL, messages: [user('hi')] };
    assert.deepEqual((await roundTrip({ ...base, stop: 'END' })).up.stop_sequences, ['END']);
    assert.deepEqual((await roundTrip({ ...base, stop: ['A', '', '  ', '\n', 'B'] })).up.stop_sequences, ['A', 'B']);
    let { up } = await roundTrip({ ...base, stop: ['', ' \t'] });
    assert.ok(!('stop_sequences' in up), `no stop_sequences (got ${JSON.stringify(up.stop_sequences)})`);
    ({ up } = await roundTrip({ ...base, stop: '' }));
    assert.ok(!('stop_sequences' in up));
    ({ up } = await roundTrip({ ...base, stop: ' ' }));
    assert.ok(!('stop_sequences' in up));
  });

  it('user -> metadata.user_id; OpenAI metadata is not forwarded; n: 1 is fine', { timeout: T(15000) }, async () => {
    const { up } = await roundTrip({ model: MODEL, messages: [user('hi')], user: 'user-1234', metadata: { suite: 'e2e' }, n: 1 });
    assert.deepEqual(up.metadata, { user_id: 'user-1234' });
    assert.ok(!('n' in up));
  });

  it('n: 2 -> 400 unsupported_parameter, param n', { timeout: T(15000) }, async () => {
    await expectRefused({ model: MODEL, messages: [user('hi')], n: 2 }, 400, { code: 'unsupported_parameter', param: 'n' }, 'n=2');
  });

  it('OpenAI-only parameters are dropped (nothing the Messages API would refuse reaches it)', { timeout: T(15000) }, async () => {
    const { up } = await roundTrip({
      model: MODEL,
      messages: [user('hi')],
      frequency_penalty: 0.5,
      presence_penalty: 0.5,
      logit_bias: { 50256: -100 },
      seed: 42,
      logprobs: true,
      top_logprobs: 2,
      service_tier: 'auto',
      store: false,
      metadata: { a: 'b' },
      prediction: { type: 'content', content: 'x' },
      modalities: ['text'],
      web_search_options: {},
      parallel_tool_calls: true,
      stream_options: { include_usage: true },
    });
    assert.deepEqual(Object.keys(core(up)).sort(), ['max_tokens', 'messages', 'model']);
  });

  it('modalities asking for audio -> 400', { timeout: T(15000) }, async () => {
    await expectRefused(
      { model: MODEL, messages: [user('hi')], modalities: ['text', 'audio'], audio: { voice: 'alloy', format: 'wav' } },
      400,
      {},
      'audio modality',
    );
  });

  // ---- tools -------------------------------------------------------------------------------------------------------

  const WEATHER_SCHEMA = {
    type: 'object',
    properties: { city: { type: 'string', description: 'City name' }, unit: { type: 'string', enum: ['c', 'f'] } },
    required: ['city'],
    additionalProperties: false,
  };
  const TOOLS = [
    { type: 'function', function: { name: 'get_weather', description: 'Weather for a city', parameters: WEATHER_SCHEMA, strict: true } },
    { type: 'function', function: { name: 'no_args' } },
  ];

  it('tools -> {name, description, input_schema}; no parameters -> empty object schema; strict dropped', { timeout: T(15000) }, async () => {
    const { up } = await roundTrip({ model: MODEL, messages: [user('weather?')], tools: TOOLS });
    assert.deepEqual(up.tools, [
      { name: 'get_weather', description: 'Weather for a city', input_schema: WEATHER_SCHEMA },
      { name: 'no_args', input_schema: { type: 'object', properties: {} } },
    ]);
    assert.ok(!('tool_choice' in up), 'no tool_choice when the client gave none');
  });

  it('a non-function tool type -> 400', { timeout: T(15000) }, async () => {
    await expectRefused(
      { model: MODEL, messages: [user('hi')], tools: [{ type: 'custom', custom: { name: 'x' } }] },
      400,
      {},
      'custom tool',
    );
  });

  const CHOICES = [
    ['auto', undefined, { type: 'auto' }],
    ['none', undefined, { type: 'none' }],
    ['required', undefined, { type: 'any' }],
    [{ type: 'function', function: { name: 'get_weather' } }, undefined, { type: 'tool', name: 'get_weather' }],
    [undefined, false, { type: 'auto', disable_parallel_tool_use: true }],
    ['auto', false, { type: 'auto', disable_parallel_tool_use: true }],
    ['required', false, { type: 'any', disable_parallel_tool_use: true }],
    [{ type: 'function', function: { name: 'get_weather' } }, false, { type: 'tool', name: 'get_weather', disable_parallel_tool_use: true }],
    ['none', false, { type: 'none' }],
    ['auto', true, { type: 'auto' }],
    ['required', true, { type: 'any' }],
    [undefined, true, undefined],
  ];
  for (const [choice, parallel, expected] of CHOICES) {
    it(`tool_choice ${JSON.stringify(choice)} with parallel_tool_calls ${parallel} -> ${JSON.stringify(expected)}`, { timeout: T(15000) }, async () => {
      const params = { model: MODEL, messages: [user('weather?')], tools: TOOLS };
      if (choice !== undefined) params.tool_choice = choice;
      if (parallel !== undefined) params.parallel_tool_calls = parallel;
      const { up } = await roundTrip(params);
      if (expected === undefined) assert.ok(!('tool_choice' in up), `no tool_choice (got ${JSON.stringify(up.tool_choice)})`);
      else assert.deepEqual(up.tool_choice, expected);
      assert.equal(up.tools.length, 2);
    });
  }

  it('without tools: tool_choice "none" and parallel_tool_calls false send no tool_choice', { timeout: T(15000) }, async () => {
    let { up } = await roundTrip({ model: MODEL, messages: [user('hi')], tool_choice: 'none' });
    assert.ok(!('tool_choice' in up), `no tool_choice (got ${JSON.stringify(up.tool_choice)})`);
    assert.ok(!('tools' in up));
    ({ up } = await roundTrip({ model: MODEL, messages: [user('hi')], parallel_tool_calls: false }));
    assert.ok(!('tool_choice' in up), `no tool_choice (got ${JSON.stringify(up.tool_choice)})`);
  });

  it('tool_choice allowed_tools: only the listed tools go upstream, mode required -> any', { timeout: T(15000) }, async () => {
    const fn = (name) => ({ type: 'function', function: { name, parameters: { type: 'object', properties: {} } } });
    const { up } = await roundTrip({
      model: MODEL,
      messages: [user('hi')],
      tools: [fn('a'), fn('b'), fn('c')],
      tool_choice: { type: 'allowed_tools', allowed_tools: { mode: 'required', tools: [{ type: 'function', function: { name: 'b' } }] } },
    });
    assert.deepEqual(up.tools.map((t) => t.name), ['b']);
    assert.deepEqual(up.tool_choice, { type: 'any' });
  });

  // ---- response_format ---------------------------------------------------------------------------------------------

  const FORCED_DESC = 'Respond with JSON that matches this schema.';

  it('response_format text -> nothing', { timeout: T(15000) }, async () => {
    const { up, data } = await roundTrip({ model: MODEL, messages: [user('hi')], response_format: { type: 'text' } });
    assert.deepEqual(Object.keys(core(up)).sort(), ['max_tokens', 'messages', 'model']);
    assert.equal(data.choices[0].message.content, 'Hello from fake Claude.');
  });

  it('response_format json_schema -> forced tool named after the schema; its input comes back as content, finish_reason stop', { timeout: T(15000) }, async () => {
    const input = { city: 'Paris', temp: 18.5, tags: ['a', 'é'], nested: { ok: true, none: null } };
    const { up, data } = await roundTrip(
      {
        model: MODEL,
        messages: [user('Weather as JSON')],
        response_format: { type: 'json_schema', json_schema: { name: 'weather_report', schema: WEATHER_SCHEMA, strict: true } },
      },
      { content: [{ type: 'tool_use', id: toolUseId(), name: 'weather_report', input }], stopReason: 'tool_use' },
    );
    assert.deepEqual(up.tools, [{ name: 'weather_report', description: FORCED_DESC, input_schema: WEATHER_SCHEMA }]);
    assert.deepEqual(up.tool_choice, { type: 'tool', name: 'weather_report' });
    const m = data.choices[0].message;
    assert.equal(typeof m.content, 'string');
    assert.deepEqual(JSON.parse(m.content), input);
    assert.ok(!m.tool_calls || m.tool_calls.length === 0, 'no tool_calls for the forced JSON tool');
    assert.equal(data.choices[0].finish_reason, 'stop');
  });

  it('response_format json_object -> forced tool json_response with {"type":"object"}', { timeout: T(15000) }, async () => {
    const { up, data } = await roundTrip(
      { model: MODEL, messages: [user('JSON please')], response_format: { type: 'json_object' } },
      { content: [{ type: 'tool_use', id: toolUseId(), name: 'json_response', input: { a: 1 } }], stopReason: 'tool_use' },
    );
    assert.deepEqual(up.tools, [{ name: 'json_response', description: FORCED_DESC, input_schema: { type: 'object' } }]);
    assert.deepEqual(up.tool_choice, { type: 'tool', name: 'json_response' });
    assert.deepEqual(JSON.parse(data.choices[0].message.content), { a: 1 });
    assert.equal(data.choices[0].finish_reason, 'stop');
  });

  it('response_format json_schema with a name Anthropic would refuse -> json_response', { timeout: T(15000) }, async () => {
    const { up } = await roundTrip(
      { model: MODEL, messages: [user('x')], response_format: { type: 'json_schema', json_schema: { name: 'bad name!', schema: WEATHER_SCHEMA } } },
      { content: [{ type: 'tool_use', id: toolUseId(), name: 'json_response', input: { city: 'x' } }], stopReason: 'tool_use' },
    );
    assert.deepEqual(up.tool_choice, { type: 'tool', name: 'json_response' });
    assert.equal(up.tools.at(-1).name, 'json_response');
  });

  it('response_format wins over the client tools/tool_choice (tools kept, the forced tool added and chosen)', { timeout: T(15000) }, async () => {
    const { up, data } = await roundTrip(
      {
        model: MODEL,
        messages: [user('x')],
        tools: TOOLS,
        tool_choice: 'required',
        response_format: { type: 'json_schema', json_schema: { name: 'answer', schema: { type: 'object', properties: { v: { type: 'number' } } } } },
      },
      { content: [{ type: 'tool_use', id: toolUseId(), name: 'answer', input: { v: 3 } }], stopReason: 'tool_use' },
    );
    assert.deepEqual(up.tool_choice, { type: 'tool', name: 'answer' });
    assert.deepEqual(
      up.tools.map((t) => t.name).sort(),
      ['answer', 'get_weather', 'no_args'],
    );
    assert.deepEqual(JSON.parse(data.choices[0].message.content), { v: 3 });
    assert.equal(data.choices[0].finish_reason, 'stop');
  });

  // ---- reasoning_effort / thinking ---------------------------------------------------------------------------------

  const EFFORTS = [
    // [params, budget, max_tokens]
    [{ reasoning_effort: 'low' }, 1024, 4096],
    [{ reasoning_effort: 'minimal' }, 1024, 4096],
    [{ reasoning_effort: 'medium' }, 4096, 8192],
    [{ reasoning_effort: 'high' }, 16384, 20480],
    [{ reasoning_effort: 'medium', max_completion_tokens: 2000 }, 4096, 6096],
    [{ reasoning_effort: 'low', max_tokens: 1024 }, 1024, 2048],
    [{ reasoning_effort: 'high', max_tokens: 30000 }, 16384, 30000],
  ];
  for (const [extra, budget, maxTokens] of EFFORTS) {
    it(`${JSON.stringify(extra)} -> thinking budget ${budget}, max_tokens ${maxTokens}`, { timeout: T(15000) }, async () => {
      const { up } = await roundTrip({ model: MODEL, messages: [user('think')], ...extra });
      assert.deepEqual(up.thinking, { type: 'enabled', budget_tokens: budget });
      assert.equal(up.max_tokens, maxTokens);
      assert.ok(!('reasoning_effort' in up));
    });
  }

  it('thinking on: temperature and top_k dropped, top_p kept only if >= 0.95', { timeout: T(15000) }, async () => {
    let { up } = await roundTrip({ model: MODEL, messages: [user('think')], reasoning_effort: 'low', temperature: 0.5, top_k: 10, top_p: 0.9 });
    assert.ok(up.thinking);
    assert.ok(!('temperature' in up), 'temperature dropped');
    assert.ok(!('top_k' in up), 'top_k dropped');
    assert.ok(!('top_p' in up), 'top_p < 0.95 dropped');
    ({ up } = await roundTrip({ model: MODEL, messages: [user('think')], reasoning_effort: 'low', top_p: 0.97 }));
    assert.equal(up.top_p, 0.97);
  });

  it('reasoning_effort "none" -> no thinking; an unknown value -> 400 param reasoning_effort', { timeout: T(15000) }, async () => {
    const { up } = await roundTrip({ model: MODEL, messages: [user('x')], reasoning_effort: 'none' });
    assert.ok(!('thinking' in up));
    assert.equal(up.max_tokens, 4096);
    await expectRefused({ model: MODEL, messages: [user('x')], reasoning_effort: 'extreme' }, 400, { param: 'reasoning_effort' }, 'extreme');
  });

  it('a client "thinking" object is passed through as-is', { timeout: T(15000) }, async () => {
    const { up } = await roundTrip({ model: MODEL, messages: [user('x')], max_tokens: 5000, thinking: { type: 'enabled', budget_tokens: 2048 } });
    assert.deepEqual(up.thinking, { type: 'enabled', budget_tokens: 2048 });
    assert.equal(up.max_tokens, 5000);
  });

  it('thinking blocks in the answer -> reasoning_content (concatenated) and thinking_blocks (with signature)', { timeout: T(15000) }, async () => {
    const blocks = [
      { type: 'thinking', thinking: 'Let me ', signature: 'EqQBCgIYAhIM1gbcDa9GJwZA2b3h==' },
      { type: 'redacted_thinking', data: 'EmwKAhgBEgy3va3pzix/LafPsn4aDFIT' },
      { type: 'thinking', thinking: 'think.', signature: 'EqQBCgIYAhIMsecond==' },
    ];
    const { data } = await roundTrip(
      { model: MODEL, messages: [user('q')], reasoning_effort: 'medium' },
      { content: [...blocks, text('The answer is 4.')] },
    );
    const m = data.choices[0].message;
    assert.equal(m.content, 'The answer is 4.');
    assert.equal(m.reasoning_content, 'Let me think.');
    assert.deepEqual(m.thinking_blocks, blocks);
    assert.equal(data.choices[0].finish_reason, 'stop');
  });

  // ---- response content -------------------------------------------------------------------------------------------

  it('text blocks are concatenated', { timeout: T(15000) }, async () => {
    const { data } = await roundTrip({ model: MODEL, messages: [user('x')] }, { content: [text('Hello, '), text('wörld 🚀')] });
    assert.equal(data.choices[0].message.content, 'Hello, wörld 🚀');
  });

  it('tool_use blocks -> tool_calls with compact JSON arguments; content null without text; finish_reason tool_calls', { timeout: T(15000) }, async () => {
    const a = { city: 'Paris', unit: 'c' };
    const b = { q: 'héllo "quoted" \\ ✓', n: [1, 2.5, -3], deep: { x: null, y: false } };
    const id1 = toolUseId();
    const id2 = toolUseId();
    const { data } = await roundTrip(
      { model: MODEL, messages: [user('x')], tools: TOOLS },
      { content: [{ type: 'tool_use', id: id1, name: 'get_weather', input: a }, { type: 'tool_use', id: id2, name: 'no_args', input: b }], stopReason: 'tool_use' },
    );
    const m = data.choices[0].message;
    assert.equal(m.content, null);
    assert.equal(m.tool_calls.length, 2);
    assert.deepEqual(m.tool_calls[0], { id: id1, type: 'function', function: { name: 'get_weather', arguments: JSON.stringify(a) } });
    assert.equal(m.tool_calls[1].id, id2);
    assert.equal(m.tool_calls[1].type, 'function');
    assert.equal(m.tool_calls[1].function.name, 'no_args');
    assert.equal(typeof m.tool_calls[1].function.arguments, 'string');
    assert.deepEqual(JSON.parse(m.tool_calls[1].function.arguments), b);
    assert.ok(!/\n|": /.test(m.tool_calls[1].function.arguments), `compact JSON: ${m.tool_calls[1].function.arguments}`);
    assert.equal(data.choices[0].finish_reason, 'tool_calls');
  });

  it('text and tool_use together -> content and tool_calls', { timeout: T(15000) }, async () => {
    const id = toolUseId();
    const { data } = await roundTrip(
      { model: MODEL, messages: [user('x')], tools: TOOLS },
      { content: [text('Let me check.'), { type: 'tool_use', id, name: 'get_weather', input: { city: 'Oslo' } }], stopReason: 'tool_use' },
    );
    const m = data.choices[0].message;
    assert.equal(m.content, 'Let me check.');
    assert.deepEqual(m.tool_calls, [{ id, type: 'function', function: { name: 'get_weather', arguments: '{"city":"Oslo"}' } }]);
    assert.equal(data.choices[0].finish_reason, 'tool_calls');
  });

  it('an answer cJSON must read (a -0, an integer past 64 bits): tool arguments keep the numbers it reads', { timeout: T(15000) }, async () => {
    const id = toolUseId();
    fake.reset();
    fake.next({
      status: 200,
      headers: { 'content-type': 'application/json' },
      rawBody: `{"id":"msg_01Num","type":"message","role":"assistant","model":"${MODEL}","content":[` +
        `{"type":"tool_use","id":"${id}","name":"get_weather","input":{"neg_zero":-0,"big":123456789012345678901234567890,"n":1.5}}],` +
        '"stop_reason":"tool_use","stop_sequence":null,"usage":{"input_tokens":7,"output_tokens":3}}',
    });
    const data = await client.chat.completions.create({ model: MODEL, messages: [user('x')], tools: TOOLS });
    const call = data.choices[0].message.tool_calls[0];
    assert.equal(call.id, id);
    assert.equal(call.function.arguments, '{"neg_zero":-0,"big":1.2345678901234568e+29,"n":1.5}');
    assert.equal(data.usage.prompt_tokens, 7);
    assert.equal(data.usage.completion_tokens, 3);
  });

  const STOP_REASONS = [
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
  it('stop_reason -> finish_reason for every documented value (non-streamed)', { timeout: T(30000) }, async () => {
    for (const [stopReason, finish] of STOP_REASONS) {
      const content =
        stopReason === 'tool_use' ? [{ type: 'tool_use', id: toolUseId(), name: 'get_weather', input: { city: 'x' } }] : [text('partial')];
      const { data } = await roundTrip(
        { model: MODEL, messages: [user('x')], tools: TOOLS, ...(stopReason === 'stop_sequence' ? { stop: ['END'] } : {}) },
        { content, stopReason, stopSequence: stopReason === 'stop_sequence' ? 'END' : null },
      );
      assert.equal(data.choices[0].finish_reason, finish, `stop_reason ${stopReason}`);
    }
  });

  // ---- validation --------------------------------------------------------------------------------------------------

  it('invalid bodies -> 400 before anything reaches the upstream', { timeout: T(30000) }, async () => {
    const bad = [
      ['an array body', [{ model: MODEL }]],
      ['no messages', { model: MODEL }],
      ['empty messages', { model: MODEL, messages: [] }],
      ['a message that is not an object', { model: MODEL, messages: [42] }],
      ['role function', { model: MODEL, messages: [{ role: 'function', name: 'f', content: 'x' }] }],
      ['an unknown role', { model: MODEL, messages: [{ role: 'robot', content: 'x' }] }],
      ['content a number', { model: MODEL, messages: [{ role: 'user', content: 42 }] }],
    ];
    for (const [what, body] of bad) {
      fake.reset();
      const res = await fetch(gw.url('/v1/chat/completions'), {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(T(5000)),
      });
      await expectErrorResponse(res, 400, {}, what);
      assert.equal(fake.requests.length, 0, `${what}: nothing reaches the upstream`);
    }
  });

  // ---- lifecycle ---------------------------------------------------------------------------------------------------

  it('shuts down cleanly and never logs the Anthropic key', { timeout: T(15000) }, async () => {
    await stopAndAssertClean(gw);
    assertNoSecretsInLogs(gw, [ANTHROPIC_KEY]);
  });
});

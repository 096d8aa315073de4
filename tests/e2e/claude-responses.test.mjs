// Claude through the gateway's Responses API with the official OpenAI SDK (client.responses): the
// Responses request becomes an Anthropic Messages request, Anthropic's message a Response, and its
// SSE events the Responses stream events. The rules: docs/translation.md, "The Responses API".
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startFakeAnthropic, claudeEnv, assertAnthropicRequest, ANTHROPIC_KEY, DEFAULT_TEXT, toolUseId } from './lib/fake-anthropic.mjs';
import { T, startGateway, sdkClient, withDeadline, assertNoSecretsInLogs, stopAndAssertClean } from './lib/gateway.mjs';

const CLIENT_KEY = 'sk-client-side-not-a-gateway-key';
const MODEL = 'claude-sonnet-4-5';
const TOOLS = [
  { type: 'function', name: 'get_weather', description: 'Weather in a city', parameters: { type: 'object', properties: { city: { type: 'string' } } } },
];

describe('Claude via the OpenAI SDK: the Responses API', { timeout: T(180000) }, () => {
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

  async function create(params, behaviour) {
    fake.reset();
    if (behaviour) fake.next(behaviour);
    const data = await client.responses.create(params);
    assert.equal(fake.requests.length, 1, 'exactly one upstream request');
    assertAnthropicRequest(fake.requests[0], { forbidden: [CLIENT_KEY] });
    return { data, up: fake.requests[0].body, sent: fake.responses[0] };
  }

  /** Streams one request; returns every event the SDK yielded and the upstream request. */
  async function stream(params, behaviour) {
    fake.reset();
    if (behaviour) fake.next(behaviour);
    const events = [];
    await withDeadline(T(8000), 'the stream did not end', async (signal) => {
      const s = await client.responses.create({ ...params, stream: true }, { signal });
      for await (const e of s) events.push(e);
    });
    assert.equal(fake.requests.length, 1, 'exactly one upstream request');
    assertAnthropicRequest(fake.requests[0], { forbidden: [CLIENT_KEY] });
    return { events, up: fake.requests[0].body };
  }

  async function expectRefused(params, { code, param }) {
    fake.reset();
    let caught;
    await assert.rejects(client.responses.create(params), (e) => {
      caught = e;
      return true;
    });
    assert.ok(caught instanceof OpenAI.APIError, `an APIError: ${caught}`);
    assert.equal(caught.status, 400, caught.message);
    if (code !== undefined) assert.equal(caught.code, code, caught.message);
    if (param !== undefined) assert.equal(caught.param, param, caught.message);
    assert.equal(fake.requests.length, 0, 'nothing reaches the upstream');
    return caught;
  }

  it('a string input with instructions: system + one user turn upstream; a Response with output_text and usage', { timeout: T(15000) }, async () => {
    const t0 = Math.floor(Date.now() / 1000);
    const { data, up, sent } = await create(
      { model: MODEL, input: 'Say hello.', instructions: 'Be brief.', max_output_tokens: 50, temperature: 0.25, metadata: { team: 'a' } },
      { content: [{ type: 'text', text: 'Hello!' }], usage: { input_tokens: 9, output_tokens: 3, cache_read_input_tokens: 4 } },
    );
    assert.deepEqual(up.system, [{ type: 'text', text: 'Be brief.' }]);
    assert.deepEqual(up.messages, [{ role: 'user', content: [{ type: 'text', text: 'Say hello.' }] }]);
    assert.equal(up.max_tokens, 50);
    assert.equal(up.temperature, 0.25);
    assert.ok(!up.stream, 'not streamed');

    assert.equal(data.object, 'response');
    assert.equal(data.id, sent.body.id.replace(/^msg_/, 'resp_'));
    assert.equal(data.status, 'completed');
    assert.equal(data.error, null);
    assert.equal(data.incomplete_details, null);
    assert.ok(Math.abs(data.created_at - t0) <= 60);
    assert.equal(data.model, sent.body.model);
    assert.equal(data.output_text, 'Hello!', 'the SDK joins the output_text parts');
    assert.equal(data.output.length, 1);
    const item = data.output[0];
    assert.equal(item.type, 'message');
    assert.equal(item.role, 'assistant');
    assert.equal(item.status, 'completed');
    assert.match(item.id, /^msg_/);
    assert.deepEqual(item.content, [{ type: 'output_text', text: 'Hello!', annotations: [], logprobs: [] }]);
    assert.deepEqual(data.usage, {
      input_tokens: 13,
      input_tokens_details: { cached_tokens: 4 },
      output_tokens: 3,
      output_tokens_details: { reasoning_tokens: 0 },
      total_tokens: 16,
    });
    assert.equal(data.instructions, 'Be brief.', 'the request settings are echoed');
    assert.equal(data.max_output_tokens, 50);
    assert.equal(data.temperature, 0.25);
    assert.deepEqual(data.metadata, { team: 'a' });
  });

  it('message items with content parts, an image and an assistant turn carry across in order', { timeout: T(15000) }, async () => {
    const png = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==';
    const { up } = await create({
      model: MODEL,
      input: [
        { role: 'developer', content: 'Answer in French.' },
        { role: 'user', content: [{ type: 'input_text', text: 'What is this?' }, { type: 'input_image', image_url: `data:image/png;base64,${png}` }] },
        { type: 'message', role: 'assistant', content: [{ type: 'output_text', text: 'Un pixel.' }] },
        { role: 'user', content: 'Sure?' },
      ],
    });
    assert.deepEqual(up.system, [{ type: 'text', text: 'Answer in French.' }]);
    assert.deepEqual(up.messages, [
      { role: 'user', content: [{ type: 'text', text: 'What is this?' }, { type: 'image', source: { type: 'base64', media_type: 'image/png', data: png } }] },
      { role: 'assistant', content: [{ type: 'text', text: 'Un pixel.' }] },
      { role: 'user', content: [{ type: 'text', text: 'Sure?' }] },
    ]);
  });

  it('function tools: a tool_use answer is a function_call item, and the next turn sends it back as tool_use + tool_result', { timeout: T(15000) }, async () => {
    const id = toolUseId();
    const first = await create(
      { model: MODEL, input: 'Weather in Paris?', tools: TOOLS, tool_choice: { type: 'function', name: 'get_weather' } },
      { content: [{ type: 'text', text: 'Checking.' }, { type: 'tool_use', id, name: 'get_weather', input: { city: 'Paris' } }], stopReason: 'tool_use' },
    );
    assert.deepEqual(first.up.tools, [{ name: 'get_weather', description: 'Weather in a city', input_schema: TOOLS[0].parameters }]);
    assert.deepEqual(first.up.tool_choice, { type: 'tool', name: 'get_weather' });
    const out = first.data.output;
    assert.deepEqual(out.map((o) => o.type), ['message', 'function_call']);
    const fc = out[1];
    assert.equal(fc.call_id, id);
    assert.equal(fc.name, 'get_weather');
    assert.deepEqual(JSON.parse(fc.arguments), { city: 'Paris' });
    assert.equal(fc.status, 'completed');
    assert.match(fc.id, /^fc_/);

    const second = await create({
      model: MODEL,
      tools: TOOLS,
      input: [
        { role: 'user', content: 'Weather in Paris?' },
        ...out,
        { type: 'function_call_output', call_id: id, output: '{"temp":21}' },
      ],
    });
    const [u1, a1, u2, ...rest] = second.up.messages;
    assert.deepEqual(rest, []);
    assert.deepEqual(u1, { role: 'user', content: [{ type: 'text', text: 'Weather in Paris?' }] });
    assert.deepEqual(a1, { role: 'assistant', content: [{ type: 'text', text: 'Checking.' }, { type: 'tool_use', id, name: 'get_weather', input: { city: 'Paris' } }] });
    assert.equal(u2.role, 'user');
    assert.equal(u2.content.length, 1);
    const r = u2.content[0];
    assert.equal(r.type, 'tool_result');
    assert.equal(r.tool_use_id, id);
    assert.ok(r.content === '{"temp":21}' || JSON.stringify(r.content) === JSON.stringify([{ type: 'text', text: '{"temp":21}' }]), JSON.stringify(r.content));
    assert.equal(second.data.output_text, DEFAULT_TEXT);
  });

  it('reasoning with tools: thinking is a reasoning item, and sent back it leads the assistant turn as the signed thinking block', { timeout: T(15000) }, async () => {
    const id = toolUseId();
    const thinking = { type: 'thinking', thinking: 'The user wants the weather; call the tool.', signature: 'EqQBCgIYAhIMsig' };
    const first = await create(
      { model: MODEL, input: 'Weather in Rome?', tools: TOOLS, reasoning: { effort: 'low' } },
      { content: [thinking, { type: 'tool_use', id, name: 'get_weather', input: { city: 'Rome' } }], stopReason: 'tool_use' },
    );
    assert.equal(first.up.thinking.type, 'enabled', 'reasoning.effort turns thinking on');
    const [rs, fc] = first.data.output;
    assert.equal(rs.type, 'reasoning');
    assert.deepEqual(rs.summary, [{ type: 'summary_text', text: thinking.thinking }]);
    assert.equal(rs.encrypted_content, thinking.signature);
    assert.equal(fc.type, 'function_call');

    const second = await create({
      model: MODEL,
      tools: TOOLS,
      reasoning: { effort: 'low' },
      input: [{ role: 'user', content: 'Weather in Rome?' }, ...first.data.output, { type: 'function_call_output', call_id: id, output: 'sunny' }],
    });
    const turn = second.up.messages[1];
    assert.equal(turn.role, 'assistant');
    assert.deepEqual(turn.content, [thinking, { type: 'tool_use', id, name: 'get_weather', input: { city: 'Rome' } }]);
  });

  it('item_reference: the items of an earlier Response are kept and read back (what stored-response clients send); store: false keeps none', { timeout: T(15000) }, async () => {
    const id = toolUseId();
    const first = await create(
      { model: MODEL, input: 'Weather in Lima?', tools: TOOLS },
      { content: [{ type: 'text', text: 'One moment.' }, { type: 'tool_use', id, name: 'get_weather', input: { city: 'Lima' } }], stopReason: 'tool_use' },
    );
    const second = await create({
      model: MODEL,
      tools: TOOLS,
      input: [
        { role: 'user', content: 'Weather in Lima?' },
        ...first.data.output.map((o) => ({ type: 'item_reference', id: o.id })),
        { type: 'function_call_output', call_id: id, output: 'mild' },
      ],
    });
    assert.deepEqual(second.up.messages[1], {
      role: 'assistant',
      content: [{ type: 'text', text: 'One moment.' }, { type: 'tool_use', id, name: 'get_weather', input: { city: 'Lima' } }],
    });

    const unkept = await create({ model: MODEL, input: 'Hi', store: false }, { content: [{ type: 'text', text: 'Not kept.' }] });
    await expectRefused({ model: MODEL, input: [{ type: 'item_reference', id: unkept.data.output[0].id }] }, { code: 'invalid_value', param: 'input[0].id' });
  });

  it('text.format json_schema: the forced tool answer comes back as output_text', { timeout: T(15000) }, async () => {
    const schema = { type: 'object', properties: { n: { type: 'integer' } }, required: ['n'] };
    fake.reset();
    const { data, up } = await create(
      { model: MODEL, input: 'A number.', text: { format: { type: 'json_schema', name: 'answer', schema } } },
      { content: [{ type: 'tool_use', id: toolUseId(), name: 'answer', input: { n: 7 } }], stopReason: 'tool_use' },
    );
    assert.deepEqual(up.tool_choice, { type: 'tool', name: 'answer' });
    assert.deepEqual(JSON.parse(data.output_text), { n: 7 });
    assert.deepEqual(data.output.map((o) => o.type), ['message']);
    assert.equal(data.text.format.type, 'json_schema');
  });

  it('max_tokens: status incomplete, reason max_output_tokens', { timeout: T(15000) }, async () => {
    const { data } = await create({ model: MODEL, input: 'Long story.' }, { content: [{ type: 'text', text: 'Once' }], stopReason: 'max_tokens' });
    assert.equal(data.status, 'incomplete');
    assert.deepEqual(data.incomplete_details, { reason: 'max_output_tokens' });
    assert.equal(data.output_text, 'Once');
  });

  it('streamed: created, in_progress, the item and its part, text deltas, done events, completed with the whole Response', { timeout: T(15000) }, async () => {
    const pieces = ['Hel', 'lo ', 'there.'];
    const { events, up } = await stream({ model: MODEL, input: 'Hi' }, { content: [{ type: 'text', text: pieces.join(''), pieces }], usage: { input_tokens: 5, output_tokens: 3 } });
    assert.equal(up.stream, true);
    assert.deepEqual(events.map((e) => e.type), [
      'response.created',
      'response.in_progress',
      'response.output_item.added',
      'response.content_part.added',
      'response.output_text.delta',
      'response.output_text.delta',
      'response.output_text.delta',
      'response.output_text.done',
      'response.content_part.done',
      'response.output_item.done',
      'response.completed',
    ]);
    assert.deepEqual(events.map((e) => e.sequence_number), events.map((_, i) => i));
    assert.equal(events[0].response.status, 'in_progress');
    assert.deepEqual(events.filter((e) => e.type === 'response.output_text.delta').map((e) => e.delta), pieces);
    const itemId = events[2].item.id;
    for (const e of events.slice(3, 10)) {
      assert.equal(e.item_id ?? e.item.id, itemId);
      assert.equal(e.output_index, 0);
    }
    assert.equal(events[7].text, 'Hello there.');
    const done = events.at(-1).response;
    assert.equal(done.status, 'completed');
    assert.equal(done.id, events[0].response.id);
    assert.deepEqual(done.output, [events[9].item]);
    assert.equal(done.output[0].content[0].text, 'Hello there.');
    assert.deepEqual(done.usage, { input_tokens: 5, input_tokens_details: { cached_tokens: 0 }, output_tokens: 3, output_tokens_details: { reasoning_tokens: 0 }, total_tokens: 8 });
  });

  it('streamed with the SDK helper: finalResponse() has the text and the function call, arguments streamed in pieces', { timeout: T(15000) }, async () => {
    const id = toolUseId();
    fake.reset();
    fake.next({ content: [{ type: 'text', text: 'Let me check.' }, { type: 'tool_use', id, name: 'get_weather', input: { city: 'Oslo' } }], stopReason: 'tool_use' });
    const s = client.responses.stream({ model: MODEL, input: 'Weather in Oslo?', tools: TOOLS });
    const argDeltas = [];
    s.on('response.function_call_arguments.delta', (e) => argDeltas.push(e.delta));
    const final = await withDeadline(T(8000), 'the stream did not end', () => s.finalResponse());
    assert.equal(final.output_text, 'Let me check.');
    const fc = final.output.find((o) => o.type === 'function_call');
    assert.equal(fc.call_id, id);
    assert.deepEqual(JSON.parse(fc.arguments), { city: 'Oslo' });
    assert.ok(argDeltas.length > 1, 'the arguments came in several deltas');
    assert.equal(argDeltas.join(''), fc.arguments);
  });

  it('refused before any upstream call: previous_response_id, a non-function tool, an unknown item_reference', { timeout: T(15000) }, async () => {
    await expectRefused({ model: MODEL, input: 'Hi', previous_response_id: 'resp_123' }, { code: 'unsupported_parameter', param: 'previous_response_id' });
    await expectRefused({ model: MODEL, input: 'Hi', tools: [{ type: 'web_search' }] }, { code: 'unsupported_parameter', param: 'tools[0].type' });
    await expectRefused({ model: MODEL, input: [{ type: 'item_reference', id: 'msg_never_seen' }] }, { code: 'invalid_value', param: 'input[0].id' });
    await expectRefused({ model: MODEL }, { code: 'missing_required_parameter', param: 'input' });
  });

  it('what the chat translation refuses is named as the Responses request has it', { timeout: T(15000) }, async () => {
    const badCall = await expectRefused(
      {
        model: MODEL,
        input: [
          { role: 'user', content: 'Weather?' },
          { type: 'function_call', call_id: 'toolu_1', name: 'get_weather', arguments: '{"city": ' },
          { type: 'function_call_output', call_id: 'toolu_1', output: 'sunny' },
        ],
      },
      { code: 'invalid_tool_arguments', param: 'input[1]' },
    );
    assert.match(badCall.message, /'input\[1\]'/);
    assert.doesNotMatch(badCall.message, /messages\[/);
    await expectRefused({ model: MODEL, input: 'Hi', tools: [{ ...TOOLS[0], parameters: 'not a schema' }] }, { param: 'tools[0].parameters' });
    await expectRefused({ model: MODEL, input: 'Hi', max_output_tokens: -1 }, { param: 'max_output_tokens' });
  });

  it('an upstream error keeps its status; a mid-stream error ends the stream with error and response.failed', { timeout: T(15000) }, async () => {
    fake.reset();
    fake.next({ status: 429 });
    await assert.rejects(client.responses.create({ model: MODEL, input: 'Hi' }, { maxRetries: 0 }), (e) => e instanceof OpenAI.RateLimitError);
    const { events } = await stream(
      { model: MODEL, input: 'Hi' },
      { content: [{ type: 'text', text: 'abcdef', pieces: ['ab', 'cd', 'ef'] }], errorAfter: 1, error: { type: 'overloaded_error', message: 'Overloaded' } },
    );
    const types = events.map((e) => e.type);
    assert.ok(types.includes('response.output_text.delta'), types.join());
    assert.deepEqual(types.slice(-2), ['error', 'response.failed']);
    const [err, failed] = events.slice(-2);
    assert.equal(err.code, 'overloaded');
    assert.equal(err.message, 'Overloaded');
    assert.equal(failed.response.status, 'failed');
    assert.deepEqual(failed.response.error, { code: 'overloaded', message: 'Overloaded' });
    assert.equal(failed.response.output[0].content[0].text, 'ab', 'what came before the error');
  });

  it('keys stay where they belong, and the gateway shuts down clean', { timeout: T(30000) }, async () => {
    assertNoSecretsInLogs(gw, [ANTHROPIC_KEY]);
    await stopAndAssertClean(gw);
    gw = null;
  });
});

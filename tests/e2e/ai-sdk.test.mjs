// The Vercel AI SDK (`ai` with `@ai-sdk/openai`) against the gateway, as an app would use it: its OpenAI
// provider speaks the Responses API by default (and Chat Completions with openai.chat), lets responses be
// stored and, in a tool loop, sends the previous steps' items back by reference. Claude answers through the
// fake Anthropic upstream, GPT models through the fake OpenAI one.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createOpenAI } from '@ai-sdk/openai';
import { generateText, generateObject, streamText, tool, jsonSchema, stepCountIs } from 'ai';
import { startFakeAnthropic, claudeEnv, ANTHROPIC_KEY, DEFAULT_TEXT, toolUseId } from './lib/fake-anthropic.mjs';
import { T, startGateway, stopAndAssertClean } from './lib/gateway.mjs';

const MODEL = 'claude-sonnet-4-5';
const weather = (reply) =>
  tool({
    description: 'Weather in a city',
    inputSchema: jsonSchema({ type: 'object', properties: { city: { type: 'string' } }, required: ['city'] }),
    execute: async ({ city }) => `${reply} in ${city}`,
  });

describe('the Vercel AI SDK through the gateway (Claude)', { timeout: T(120000) }, () => {
  let fake;
  let gw;
  let openai;

  before(async () => {
    fake = await startFakeAnthropic({ apiKey: ANTHROPIC_KEY });
    gw = await startGateway({ env: claudeEnv(fake) });
    openai = createOpenAI({ baseURL: gw.url('/v1'), apiKey: 'sk-client-side-not-a-gateway-key' });
  });

  after(async () => {
    if (gw) await gw.kill();
    if (fake) await fake.close();
  });

  it('generateText and streamText (Responses API), and generateText on openai.chat (Chat Completions)', { timeout: T(20000) }, async () => {
    fake.reset();
    const r = await generateText({ model: openai(MODEL), system: 'Be brief.', prompt: 'Say hi', maxOutputTokens: 64 });
    assert.equal(r.text, DEFAULT_TEXT);
    assert.equal(r.finishReason, 'stop');
    assert.equal(r.usage.inputTokens, 12);
    assert.equal(r.usage.outputTokens, 6);
    assert.deepEqual(fake.requests[0].body.system, [{ type: 'text', text: 'Be brief.' }]);
    assert.equal(fake.requests[0].body.max_tokens, 64);

    const s = streamText({ model: openai(MODEL), prompt: 'Say hi' });
    let text = '';
    for await (const d of s.textStream) text += d;
    assert.equal(text, DEFAULT_TEXT);
    assert.equal(await s.finishReason, 'stop');

    const c = await generateText({ model: openai.chat(MODEL), prompt: 'Say hi' });
    assert.equal(c.text, DEFAULT_TEXT);
    assert.equal(fake.requests.length, 3);
  });

  it('a tool loop: the first step\'s text and call come back by reference, the tool result as its output', { timeout: T(20000) }, async () => {
    fake.reset();
    const id = toolUseId();
    fake.next({ content: [{ type: 'text', text: 'Let me look.' }, { type: 'tool_use', id, name: 'weather', input: { city: 'Paris' } }], stopReason: 'tool_use' });
    fake.next({ content: [{ type: 'text', text: 'It is sunny.' }] });
    const r = await generateText({ model: openai(MODEL), prompt: 'Weather in Paris?', tools: { weather: weather('sunny') }, stopWhen: stepCountIs(3) });
    assert.equal(r.text, 'It is sunny.');
    assert.equal(r.steps.length, 2);
    assert.equal(fake.requests.length, 2);
    assert.deepEqual(fake.requests[1].body.messages, [
      { role: 'user', content: [{ type: 'text', text: 'Weather in Paris?' }] },
      { role: 'assistant', content: [{ type: 'text', text: 'Let me look.' }, { type: 'tool_use', id, name: 'weather', input: { city: 'Paris' } }] },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: id, content: 'sunny in Paris' }] },
    ]);
  });

  it('a streamed tool loop with thinking: the signed thinking block leads the next request\'s assistant turn', { timeout: T(20000) }, async () => {
    fake.reset();
    const id = toolUseId();
    const thinking = { type: 'thinking', thinking: 'Need the tool.', signature: 'EqQBsig1' };
    fake.next({ content: [thinking, { type: 'tool_use', id, name: 'weather', input: { city: 'Oslo' } }], stopReason: 'tool_use' });
    fake.next({ content: [{ type: 'thinking', thinking: 'Got it.', signature: 'EqQBsig2' }, { type: 'text', text: 'Cold.' }] });
    const s = streamText({ model: openai(MODEL), prompt: 'Weather in Oslo?', tools: { weather: weather('cold') }, stopWhen: stepCountIs(3) });
    let text = '';
    let reasoning = '';
    for await (const p of s.fullStream) {
      if (p.type === 'text-delta') text += p.text;
      if (p.type === 'reasoning-delta') reasoning += p.text;
      assert.notEqual(p.type, 'error', JSON.stringify(p.error));
    }
    assert.equal(text, 'Cold.');
    assert.equal(reasoning, 'Need the tool.Got it.');
    assert.equal(fake.requests.length, 2);
    assert.deepEqual(fake.requests[1].body.messages[1], {
      role: 'assistant',
      content: [thinking, { type: 'tool_use', id, name: 'weather', input: { city: 'Oslo' } }],
    });
  });

  it('generateObject: the schema goes as a forced tool, its input comes back as the object', { timeout: T(20000) }, async () => {
    fake.reset();
    fake.next({ content: [{ type: 'tool_use', id: toolUseId(), name: 'response', input: { name: 'Ada', age: 36 } }], stopReason: 'tool_use' });
    const o = await generateObject({
      model: openai(MODEL),
      prompt: 'A person',
      schema: jsonSchema({ type: 'object', properties: { name: { type: 'string' }, age: { type: 'number' } }, required: ['name', 'age'], additionalProperties: false }),
    });
    assert.deepEqual(o.object, { name: 'Ada', age: 36 });
    assert.deepEqual(fake.requests[0].body.tool_choice, { type: 'tool', name: 'response' });
  });

  it('the gateway shuts down clean', { timeout: T(30000) }, async () => {
    await stopAndAssertClean(gw);
    gw = null;
  });
});

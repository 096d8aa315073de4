// A fake Anthropic Messages API upstream for the end-to-end tests. It plays the *provider*
// (api.anthropic.com), never the gateway, and speaks the documented formats:
//   - POST /v1/messages            https://docs.anthropic.com/en/api/messages
//   - the Message object           {id:"msg_...", type:"message", role:"assistant", model, content, stop_reason,
//                                   stop_sequence, usage:{input_tokens, output_tokens, cache_creation_input_tokens,
//                                   cache_read_input_tokens}}
//   - streaming                    https://docs.anthropic.com/en/docs/build-with-claude/streaming
//                                  "event: <name>\ndata: <json>\n\n": message_start, content_block_start, ping,
//                                  content_block_delta (text_delta, input_json_delta, thinking_delta,
//                                  signature_delta), content_block_stop, message_delta, message_stop, error
//   - errors                       https://docs.anthropic.com/en/api/errors
//                                  {"type":"error","error":{"type","message"},"request_id"}
//
// Like the real API it checks the request (headers and body) and answers 400 invalid_request_error /
// 401 authentication_error when it is not acceptable; every problem found is also recorded in
// record.violations (so a test can assert it is empty with a readable message).
//
// Usage:
//   const fake = await startFakeAnthropic({ apiKey: 'sk-ant-test-secret' });
//   fake.baseURL                 -> "http://127.0.0.1:<port>"  (what ANTHROPIC_BASE_URL is set to)
//   fake.requests                -> every request: {method, url, headers, rawBody, body, violations, at,
//                                   closedAt, clientAborted}
//   fake.responses               -> what was sent back, same order: {status, headers, body} or
//                                   {status, events: [{event, data}], done, gatedAt, releasedAt, dropped, stalled}
//   fake.next(behaviour)         -> queue a one-shot behaviour for the next /v1/messages request:
//     { content: [blocks], stopReason, stopSequence, usage, model, id }
//         A Message (or, when the request says stream: true, its event sequence). Blocks are Anthropic
//         content blocks: {type:'text', text, pieces?}, {type:'tool_use', id, name, input, partials?},
//         {type:'thinking', thinking, signature, pieces?}, {type:'redacted_thinking', data}.
//         `pieces` / `partials` say how a block is split into deltas when streamed (they must concatenate to
//         the text / to the JSON of input); they are never sent in a Message.
//     { status, body, headers, rawBody, contentType }
//         An HTTP error (or any) response; body defaults to an Anthropic error for the status.
//     stream options (only when the request streams):
//       gate: promise, gateAfter: n   after the n-th content_block_delta (default 1) wait for `gate`
//       dropAfter: n                  after n content_block_deltas destroy the connection (no message_stop)
//       stallAfter: n                 after n content_block_deltas send nothing more (until the client
//                                     hangs up or the fake is closed)
//       errorAfter: n, error: {type, message}
//                                     after n content_block_deltas send an `error` event and end the response
//       events: [{event, data}]       send exactly these events (data: object, or a raw string)
//       intervalMs: ms                wait between events
//     { hold: true }                  never answer (until the client hangs up or the fake is closed)
//     misbehaviour (for the fault-injection suite):
//     { reset: true }                 the connection is reset (RST) before any response byte
//     { destroy: true }               the socket is destroyed (a plain close, FIN) before any response byte
//     resetAfterEvents: n             (streamed) reset the connection (RST) after n events of any type
//     { raw: [string|Buffer, ...], status: 200, contentType, intervalMs, end }
//                                     a response whose body is exactly these pieces, then end: 'end'
//                                     (clean close, default), 'reset' or 'stall'
//   fake.always(behaviour)            the behaviour used when nothing is queued (null: the default)
//     (req, res, record) => {...}     full control
//   await fake.waitForRequests(n, ms), await fake.waitClosed(record, ms)
//   fake.reset(), await fake.close()
// Without a queued behaviour: a short text answer, streamed when the request says stream: true.

import http from 'node:http';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { gatewayEnv } from './gateway.mjs';
import { resetConnection, sendRaw } from './fake-openai.mjs';

export const ANTHROPIC_VERSION = '2023-06-01';
export const DEFAULT_TEXT = 'Hello from fake Claude.';
export const DEFAULT_USAGE = Object.freeze({
  input_tokens: 12,
  output_tokens: 6,
  cache_creation_input_tokens: 0,
  cache_read_input_tokens: 0,
});

export function messageId() {
  return 'msg_01' + randomBytes(12).toString('hex').slice(0, 22);
}

export function toolUseId() {
  return 'toolu_01' + randomBytes(12).toString('hex').slice(0, 22);
}

const STATUS_BY_TYPE = {
  invalid_request_error: 400,
  authentication_error: 401,
  permission_error: 403,
  not_found_error: 404,
  request_too_large: 413,
  rate_limit_error: 429,
  api_error: 500,
  overloaded_error: 529,
};

const TYPE_BY_STATUS = Object.fromEntries(Object.entries(STATUS_BY_TYPE).map(([k, v]) => [v, k]));

/** An Anthropic error body. */
export function anthropicError(type, message, requestId = 'req_fake_' + randomBytes(8).toString('hex')) {
  return { type: 'error', error: { type, message }, request_id: requestId };
}

/** The documented HTTP status of an Anthropic error type. */
export function statusOf(type) {
  return STATUS_BY_TYPE[type] ?? 500;
}

// ---- the Message and its event stream --------------------------------------------------------------------------

function publicBlock(b) {
  const { pieces, partials, ...rest } = b; // eslint-disable-line no-unused-vars
  return rest;
}

export function makeMessage(reqBody, behaviour = {}) {
  const content = (behaviour.content ?? [{ type: 'text', text: DEFAULT_TEXT }]).map(publicBlock);
  return {
    id: behaviour.id ?? messageId(),
    type: 'message',
    role: 'assistant',
    model: behaviour.model ?? reqBody?.model ?? 'claude-unknown',
    content,
    stop_reason: behaviour.stopReason === undefined ? 'end_turn' : behaviour.stopReason,
    stop_sequence: behaviour.stopSequence ?? null,
    usage: { ...DEFAULT_USAGE, ...(behaviour.usage ?? {}) },
  };
}

function splitText(s, n = 3) {
  if (s.length <= 1) return [s];
  const size = Math.max(1, Math.ceil(s.length / n));
  const out = [];
  for (let i = 0; i < s.length; i += size) out.push(s.slice(i, i + size));
  return out;
}

/** The documented event sequence for a Message: [{event, data}]. */
export function makeEvents(reqBody, behaviour = {}) {
  const msg = makeMessage(reqBody, behaviour);
  const blocks = behaviour.content ?? [{ type: 'text', text: DEFAULT_TEXT }];
  const usage = msg.usage;
  const ev = (event, data) => ({ event, data: { type: event, ...data } });
  const events = [];
  events.push(
    ev('message_start', {
      message: {
        ...msg,
        content: [],
        stop_reason: null,
        stop_sequence: null,
        usage: {
          input_tokens: usage.input_tokens,
          cache_creation_input_tokens: usage.cache_creation_input_tokens,
          cache_read_input_tokens: usage.cache_read_input_tokens,
          output_tokens: 1,
        },
      },
    }),
  );
  blocks.forEach((b, index) => {
    switch (b.type) {
      case 'text':
        events.push(ev('content_block_start', { index, content_block: { type: 'text', text: '' } }));
        if (index === 0) events.push(ev('ping', {}));
        for (const p of b.pieces ?? splitText(b.text)) {
          events.push(ev('content_block_delta', { index, delta: { type: 'text_delta', text: p } }));
        }
        break;
      case 'tool_use': {
        events.push(ev('content_block_start', { index, content_block: { type: 'tool_use', id: b.id, name: b.name, input: {} } }));
        if (index === 0) events.push(ev('ping', {}));
        // The real API starts with an empty partial_json; a tool without parameters gets only that.
        const json = JSON.stringify(b.input ?? {});
        const partials = b.partials ?? (json === '{}' ? [''] : ['', ...splitText(json, 3)]);
        for (const p of partials) {
          events.push(ev('content_block_delta', { index, delta: { type: 'input_json_delta', partial_json: p } }));
        }
        break;
      }
      case 'thinking':
        events.push(ev('content_block_start', { index, content_block: { type: 'thinking', thinking: '' } }));
        if (index === 0) events.push(ev('ping', {}));
        for (const p of b.pieces ?? splitText(b.thinking)) {
          events.push(ev('content_block_delta', { index, delta: { type: 'thinking_delta', thinking: p } }));
        }
        if (b.signature) {
          events.push(ev('content_block_delta', { index, delta: { type: 'signature_delta', signature: b.signature } }));
        }
        break;
      case 'redacted_thinking':
        events.push(ev('content_block_start', { index, content_block: { type: 'redacted_thinking', data: b.data } }));
        break;
      default:
        events.push(ev('content_block_start', { index, content_block: publicBlock(b) }));
    }
    events.push(ev('content_block_stop', { index }));
  });
  events.push(
    ev('message_delta', {
      delta: { stop_reason: msg.stop_reason, stop_sequence: msg.stop_sequence },
      usage: { output_tokens: usage.output_tokens },
    }),
  );
  events.push(ev('message_stop', {}));
  return { message: msg, events };
}

export function sseFrame({ event, data }) {
  const d = typeof data === 'string' ? data : JSON.stringify(data);
  return (event ? `event: ${event}\n` : '') + `data: ${d}\n\n`;
}

// ---- request checks (what the real API refuses) -----------------------------------------------------------------

const TOP_LEVEL_KEYS = new Set([
  'model',
  'messages',
  'max_tokens',
  'system',
  'metadata',
  'stop_sequences',
  'stream',
  'temperature',
  'top_p',
  'top_k',
  'tools',
  'tool_choice',
  'thinking',
  'service_tier',
  'container',
  'mcp_servers',
]);
const TOOL_NAME = /^[a-zA-Z0-9_-]{1,64}$/;

function isNonEmptyText(s) {
  return typeof s === 'string' && s.length > 0 && s.trim().length > 0;
}

/** The problems the real Messages API would reject (or that the spec forbids). */
export function checkRequest(headers, body, { apiKey } = {}) {
  const v = [];
  if (!headers['x-api-key']) v.push('x-api-key header is required');
  else if (apiKey && headers['x-api-key'] !== apiKey) v.push('invalid x-api-key');
  if (!headers['anthropic-version']) v.push('anthropic-version: header is required');
  if (!/^application\/json\b/i.test(headers['content-type'] || '')) v.push('content-type must be application/json');
  if (body === undefined) return [...v, 'body is not valid JSON'];
  if (!body || typeof body !== 'object' || Array.isArray(body)) return [...v, 'body must be a JSON object'];
  for (const k of Object.keys(body)) if (!TOP_LEVEL_KEYS.has(k)) v.push(`${k}: Extra inputs are not permitted`);
  if (typeof body.model !== 'string' || !body.model) v.push('model: Field required');
  if (!Number.isInteger(body.max_tokens) || body.max_tokens < 1) v.push('max_tokens: must be a positive integer');
  if (body.stream !== undefined && typeof body.stream !== 'boolean') v.push('stream: must be a boolean');
  if (body.temperature !== undefined && !(typeof body.temperature === 'number' && body.temperature >= 0 && body.temperature <= 1))
    v.push('temperature: must be between 0 and 1');
  if (body.top_p !== undefined && !(typeof body.top_p === 'number' && body.top_p >= 0 && body.top_p <= 1))
    v.push('top_p: must be between 0 and 1');
  if (body.top_k !== undefined && !(Number.isInteger(body.top_k) && body.top_k >= 0)) v.push('top_k: must be a non-negative integer');
  if (body.metadata !== undefined) {
    if (!body.metadata || typeof body.metadata !== 'object') v.push('metadata: must be an object');
    else for (const k of Object.keys(body.metadata)) if (k !== 'user_id') v.push(`metadata.${k}: Extra inputs are not permitted`);
  }
  if (body.stop_sequences !== undefined) {
    if (!Array.isArray(body.stop_sequences)) v.push('stop_sequences: must be a list');
    else
      body.stop_sequences.forEach((s, i) => {
        if (!isNonEmptyText(s)) v.push(`stop_sequences.${i}: each stop sequence must contain non-whitespace`);
      });
  }
  if (body.system !== undefined) {
    if (typeof body.system === 'string') {
      if (!body.system) v.push('system: must not be empty');
    } else if (!Array.isArray(body.system)) v.push('system: must be a string or a list of text blocks');
    else
      body.system.forEach((b, i) => {
        if (!b || b.type !== 'text') v.push(`system.${i}: must be a text block`);
        else if (!isNonEmptyText(b.text)) v.push(`system.${i}: text content blocks must contain non-whitespace text`);
      });
  }
  // thinking
  const thinking = body.thinking && body.thinking.type === 'enabled';
  if (thinking) {
    const b = body.thinking.budget_tokens;
    if (!Number.isInteger(b) || b < 1024) v.push('thinking.enabled.budget_tokens: Input should be greater than or equal to 1024');
    else if (Number.isInteger(body.max_tokens) && body.max_tokens <= b) v.push('`max_tokens` must be greater than `thinking.budget_tokens`');
    if (body.temperature !== undefined && body.temperature !== 1) v.push('`temperature` may only be set to 1 when thinking is enabled');
    if (body.top_k !== undefined) v.push('`top_k` must be unset when thinking is enabled');
    if (body.top_p !== undefined && body.top_p < 0.95) v.push('`top_p` must be between 0.95 and 1 when thinking is enabled');
  }
  // tools
  const toolNames = new Set();
  if (body.tools !== undefined) {
    if (!Array.isArray(body.tools)) v.push('tools: must be a list');
    else
      body.tools.forEach((t, i) => {
        if (!t || typeof t !== 'object') return v.push(`tools.${i}: must be an object`);
        if (t.type !== undefined && t.type !== 'custom') v.push(`tools.${i}.type: unexpected ${t.type}`);
        if (!TOOL_NAME.test(t.name ?? '')) v.push(`tools.${i}.name: String should match pattern '^[a-zA-Z0-9_-]{1,64}$'`);
        if (!t.input_schema || typeof t.input_schema !== 'object' || t.input_schema.type !== 'object')
          v.push(`tools.${i}.input_schema: must be a JSON schema object with type "object"`);
        for (const k of Object.keys(t))
          if (!['name', 'description', 'input_schema', 'cache_control', 'type'].includes(k)) v.push(`tools.${i}.${k}: Extra inputs are not permitted`);
        toolNames.add(t.name);
      });
  }
  if (body.tool_choice !== undefined) {
    const tc = body.tool_choice;
    if (!tc || !['auto', 'any', 'tool', 'none'].includes(tc.type)) v.push('tool_choice: unknown type');
    else {
      if (tc.type === 'tool' && !toolNames.has(tc.name)) v.push(`tool_choice.name: no tool named ${tc.name}`);
      if (tc.type !== 'tool' && tc.name !== undefined) v.push('tool_choice.name: only with type "tool"');
      if (tc.type === 'none' && tc.disable_parallel_tool_use !== undefined) v.push('tool_choice.none: disable_parallel_tool_use: Extra inputs are not permitted');
      if (tc.type !== 'none' && body.tools === undefined) v.push('tool_choice may only be specified while providing tools');
    }
  }
  // messages
  if (!Array.isArray(body.messages) || body.messages.length === 0) {
    v.push('messages: at least one message is required');
    return v;
  }
  let prevRole = null;
  let pendingToolUses = null;
  body.messages.forEach((m, i) => {
    if (!m || (m.role !== 'user' && m.role !== 'assistant')) return v.push(`messages.${i}.role: must be "user" or "assistant"`);
    for (const k of Object.keys(m)) if (k !== 'role' && k !== 'content') v.push(`messages.${i}.${k}: Extra inputs are not permitted`);
    if (m.role === prevRole) v.push(`messages.${i}: roles must alternate between "user" and "assistant" (two ${m.role} turns in a row)`);
    prevRole = m.role;
    let blocks;
    if (typeof m.content === 'string') {
      if (!isNonEmptyText(m.content)) v.push(`messages.${i}.content: must not be empty`);
      blocks = [];
    } else if (Array.isArray(m.content)) {
      if (m.content.length === 0) v.push(`messages.${i}.content: must not be empty`);
      blocks = m.content;
    } else {
      v.push(`messages.${i}.content: must be a string or a list of blocks`);
      blocks = [];
    }
    let seenOther = false;
    const toolResults = new Set();
    blocks.forEach((b, j) => {
      const where = `messages.${i}.content.${j}`;
      if (!b || typeof b !== 'object') return v.push(`${where}: must be an object`);
      switch (b.type) {
        case 'text':
          if (!isNonEmptyText(b.text)) v.push(`${where}: text content blocks must contain non-whitespace text`);
          seenOther = true;
          break;
        case 'image': {
          const s = b.source || {};
          if (m.role !== 'user') v.push(`${where}: image blocks only in user turns`);
          if (s.type === 'base64') {
            if (!['image/jpeg', 'image/png', 'image/gif', 'image/webp'].includes(s.media_type))
              v.push(`${where}.source.media_type: Input should be 'image/jpeg', 'image/png', 'image/gif' or 'image/webp'`);
            if (typeof s.data !== 'string' || !/^[A-Za-z0-9+/]+=*$/.test(s.data)) v.push(`${where}.source.data: invalid base64`);
          } else if (s.type === 'url') {
            if (!/^https?:\/\//.test(s.url ?? '')) v.push(`${where}.source.url: must be an http(s) URL`);
          } else v.push(`${where}.source.type: must be base64 or url`);
          seenOther = true;
          break;
        }
        case 'document': {
          const s = b.source || {};
          if (!(s.type === 'base64' && s.media_type === 'application/pdf' && typeof s.data === 'string') && s.type !== 'url' && s.type !== 'text')
            v.push(`${where}.source: invalid document source`);
          seenOther = true;
          break;
        }
        case 'tool_use':
          if (m.role !== 'assistant') v.push(`${where}: tool_use blocks only in assistant turns`);
          if (typeof b.id !== 'string' || !b.id) v.push(`${where}.id: Field required`);
          if (typeof b.name !== 'string' || !b.name) v.push(`${where}.name: Field required`);
          if (!b.input || typeof b.input !== 'object' || Array.isArray(b.input)) v.push(`${where}.input: Input should be a valid dictionary`);
          seenOther = true;
          break;
        case 'tool_result':
          if (m.role !== 'user') v.push(`${where}: tool_result blocks only in user turns`);
          if (seenOther) v.push(`${where}: tool_result blocks must come first in the user turn, before any other content`);
          if (typeof b.tool_use_id !== 'string' || !b.tool_use_id) v.push(`${where}.tool_use_id: Field required`);
          toolResults.add(b.tool_use_id);
          if (Array.isArray(b.content)) {
            b.content.forEach((c, k) => {
              if (c?.type === 'text' && !isNonEmptyText(c.text)) v.push(`${where}.content.${k}: text content blocks must contain non-whitespace text`);
            });
          } else if (b.content !== undefined && typeof b.content !== 'string') v.push(`${where}.content: must be a string or a list`);
          break;
        case 'thinking':
        case 'redacted_thinking':
          if (m.role !== 'assistant') v.push(`${where}: thinking blocks only in assistant turns`);
          if (seenOther) v.push(`${where}: thinking blocks must come first in the assistant turn`);
          break;
        default:
          v.push(`${where}.type: unknown block type ${JSON.stringify(b.type)}`);
      }
    });
    if (pendingToolUses && m.role === 'user') {
      for (const id of pendingToolUses)
        if (!toolResults.has(id)) v.push(`messages.${i}: \`tool_use\` ids were found without \`tool_result\` blocks immediately after: ${id}`);
    }
    pendingToolUses = m.role === 'assistant' ? blocks.filter((b) => b?.type === 'tool_use').map((b) => b.id) : null;
  });
  return v;
}

// ---- the server ---------------------------------------------------------------------------------------------------

function readBody(req) {
  return new Promise((resolve, reject) => {
    const parts = [];
    req.on('data', (d) => parts.push(d));
    req.on('end', () => resolve(Buffer.concat(parts)));
    req.on('error', reject);
  });
}

function requestIdHeader() {
  return 'req_fake_' + randomBytes(8).toString('hex');
}

function sendJson(res, status, obj, headers = {}) {
  const text = JSON.stringify(obj);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    'request-id': requestIdHeader(),
    ...headers,
  });
  res.end(text);
}

function waitUntil(cond, ms, what) {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const tick = () => {
      const v = cond();
      if (v) return resolve(v);
      if (Date.now() - t0 >= ms) return reject(new Error(`fake Anthropic: ${what} not within ${ms} ms`));
      setTimeout(tick, 5);
    };
    tick();
  });
}

export async function startFakeAnthropic({ host = '127.0.0.1', port: wantedPort = 0, apiKey = null, strict = true } = {}) {
  const requests = [];
  const responses = [];
  const queue = [];
  let always = null;
  let closed = false;
  let closeSignal;
  const closedPromise = new Promise((r) => (closeSignal = r));

  async function streamResponse(req, res, body, behaviour) {
    let events;
    if (behaviour.events) events = behaviour.events;
    else events = makeEvents(body, behaviour).events;
    const record = { status: 200, headers: { 'content-type': 'text/event-stream' }, events: [], done: false };
    responses.push(record);
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
      'request-id': requestIdHeader(),
      ...(behaviour.headers ?? {}),
    });
    res.flushHeaders();
    let clientGone = false;
    const gone = new Promise((r) =>
      res.on('close', () => {
        clientGone = !res.writableFinished;
        r();
      }),
    );
    const pause = async (ms) => {
      let timer;
      await Promise.race([new Promise((r) => (timer = setTimeout(r, ms))), gone, closedPromise]);
      clearTimeout(timer);
    };
    let deltas = 0;
    for (let i = 0; i < events.length; i++) {
      if (clientGone || closed) {
        record.aborted = true;
        res.destroy();
        return;
      }
      res.write(sseFrame(events[i]));
      record.events.push(events[i]);
      if (behaviour.resetAfterEvents !== undefined && record.events.length === behaviour.resetAfterEvents) {
        await pause(20); // let the frames leave first
        record.dropped = true;
        resetConnection(res);
        return;
      }
      if (events[i].event === 'content_block_delta') {
        deltas++;
        if (behaviour.gate && deltas === (behaviour.gateAfter ?? 1)) {
          record.gatedAt = Date.now();
          await Promise.race([behaviour.gate, gone, closedPromise]);
          record.releasedAt = Date.now();
        }
        if (behaviour.dropAfter !== undefined && deltas === behaviour.dropAfter) {
          await pause(20); // let the frames leave first
          record.dropped = true;
          res.socket?.destroy();
          res.destroy();
          return;
        }
        if (behaviour.stallAfter !== undefined && deltas === behaviour.stallAfter) {
          record.stalled = true;
          await Promise.race([gone, closedPromise]);
          record.aborted = true;
          res.destroy();
          return;
        }
        if (behaviour.errorAfter !== undefined && deltas === behaviour.errorAfter) {
          const err = behaviour.error ?? { type: 'overloaded_error', message: 'Overloaded' };
          const e = { event: 'error', data: { type: 'error', error: err } };
          res.write(sseFrame(e));
          record.events.push(e);
          res.end();
          record.done = true;
          return;
        }
      }
      if (behaviour.intervalMs) await pause(behaviour.intervalMs);
      else await new Promise((r) => setImmediate(r)); // separate writes
    }
    res.end();
    record.done = true;
  }

  const server = http.createServer(async (req, res) => {
    try {
      const raw = await readBody(req);
      let body = null;
      try {
        body = raw.length ? JSON.parse(raw.toString('utf8')) : null;
      } catch {
        body = undefined; // not JSON
      }
      const record = {
        method: req.method,
        url: req.url,
        headers: { ...req.headers },
        rawHeaders: [...req.rawHeaders],
        rawBody: raw.toString('utf8'),
        body,
        violations: [],
        at: Date.now(),
      };
      requests.push(record);
      res.on('close', () => {
        if (record.closedAt === undefined) {
          record.closedAt = Date.now();
          record.clientAborted = !res.writableFinished;
        }
      });

      const path = (req.url || '').split('?')[0];
      if (path !== '/v1/messages') {
        const b = anthropicError('not_found_error', 'Not found');
        responses.push({ status: 404, body: b });
        return sendJson(res, 404, b);
      }
      if (req.method !== 'POST') {
        const b = anthropicError('invalid_request_error', `Method Not Allowed`);
        responses.push({ status: 405, body: b });
        return sendJson(res, 405, b);
      }
      record.violations = checkRequest(record.headers, body, { apiKey });
      if (strict && record.violations.length) {
        const auth = record.violations.find((x) => /x-api-key/.test(x));
        const b = auth ? anthropicError('authentication_error', auth) : anthropicError('invalid_request_error', record.violations.join('; '));
        const st = auth ? 401 : 400;
        responses.push({ status: st, body: b });
        return sendJson(res, st, b);
      }

      const behaviour = (queue.length ? queue.shift() : always) ?? {};
      if (typeof behaviour === 'function') return await behaviour(req, res, record);
      if (behaviour.reset) {
        responses.push({ status: null, reset: true });
        return resetConnection(res);
      }
      if (behaviour.destroy) {
        responses.push({ status: null, destroyed: true });
        res.socket?.destroy();
        return res.destroy();
      }
      if (behaviour.raw) {
        responses.push({ status: behaviour.status ?? 200, raw: true });
        return await sendRaw(res, behaviour, closedPromise);
      }
      if (behaviour.hold) {
        responses.push({ status: null, held: true });
        await Promise.race([new Promise((r) => res.on('close', r)), closedPromise]);
        res.destroy();
        return;
      }
      if (behaviour.status !== undefined) {
        const type = TYPE_BY_STATUS[behaviour.status] ?? 'api_error';
        if (behaviour.rawBody !== undefined) {
          responses.push({ status: behaviour.status, headers: behaviour.headers ?? {}, rawBody: behaviour.rawBody });
          res.writeHead(behaviour.status, {
            'content-type': behaviour.contentType ?? 'text/html',
            'content-length': Buffer.byteLength(behaviour.rawBody),
            ...(behaviour.headers ?? {}),
          });
          return res.end(behaviour.rawBody);
        }
        const b = behaviour.body ?? anthropicError(type, `fake ${type}`);
        responses.push({ status: behaviour.status, headers: behaviour.headers ?? {}, body: b });
        return sendJson(res, behaviour.status, b, behaviour.headers ?? {});
      }
      if (body.stream === true) return await streamResponse(req, res, body, behaviour);
      const message = makeMessage(body, behaviour);
      responses.push({ status: 200, body: message });
      return sendJson(res, 200, message, behaviour.headers ?? {});
    } catch (err) {
      try {
        res.destroy(err);
      } catch {
        /* ignore */
      }
    }
  });

  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(wantedPort, host, resolve);
  });
  const { port } = server.address();

  return {
    port,
    host,
    origin: `http://${host}:${port}`,
    baseURL: `http://${host}:${port}`,
    requests,
    responses,
    next(behaviour) {
      queue.push(behaviour);
    },
    pending() {
      return queue.length;
    },
    always(behaviour) {
      always = behaviour ?? null;
    },
    reset() {
      requests.length = 0;
      responses.length = 0;
      queue.length = 0;
      always = null;
    },
    last() {
      return requests[requests.length - 1];
    },
    waitForRequests(n, ms = 5000) {
      return waitUntil(() => requests.length >= n, ms, `${n} request(s)`);
    },
    waitClosed(record, ms = 5000) {
      return waitUntil(() => record.closedAt, ms, `the close of ${record.method} ${record.url}`);
    },
    async close() {
      if (closed) return;
      closed = true;
      closeSignal();
      const done = new Promise((r) => server.close(() => r()));
      server.closeAllConnections?.();
      await done;
    },
  };
}

// ---- helpers shared by tests/e2e/claude*.test.mjs ------------------------------------------------------------------

/** The Anthropic key the gateway is given (must never reach a log or a client). */
export const ANTHROPIC_KEY = 'sk-ant-test-secret';

/** Gateway env pointing claude_provider at `fake` (ANTHROPIC_* are never inherited, so they are set here). */
export function claudeEnv(fake, extra = {}) {
  return gatewayEnv(null, {
    ANTHROPIC_BASE_URL: fake.baseURL,
    ANTHROPIC_API_KEY: ANTHROPIC_KEY,
    ...extra,
  });
}

/** What every upstream request must carry: the upstream key, the version, JSON; no client secret anywhere. */
export function assertAnthropicRequest(record, { forbidden = [] } = {}) {
  assert.ok(record, 'the request reached the fake Anthropic upstream');
  assert.equal(record.method, 'POST');
  assert.equal(record.url, '/v1/messages', 'the provider calls ${ANTHROPIC_BASE_URL}/v1/messages');
  assert.equal(record.headers['x-api-key'], ANTHROPIC_KEY, 'x-api-key is the upstream key');
  assert.equal(record.headers['anthropic-version'], ANTHROPIC_VERSION);
  assert.match(record.headers['content-type'] || '', /^application\/json\b/i);
  assert.equal(record.headers.authorization, undefined, 'no Authorization header goes to Anthropic');
  if (record.headers['anthropic-beta'] !== undefined) {
    assert.ok(String(record.headers['anthropic-beta']).trim().length > 0, 'anthropic-beta, when sent, is not empty');
  }
  for (const secret of forbidden) {
    for (const [name, value] of Object.entries(record.headers)) {
      assert.ok(!String(value).includes(secret), `a client secret must not be forwarded upstream (header ${name})`);
    }
    assert.ok(!record.rawBody.includes(secret), 'a client secret must not be forwarded upstream (body)');
  }
  assert.deepEqual(record.violations, [], 'the Messages API would refuse this request');
}

// A fake OpenAI upstream for the end-to-end tests. It plays the *provider*
// (api.openai.com), never the gateway, and answers in the documented formats:
//   - chat.completion objects  https://platform.openai.com/docs/api-reference/chat/object
//   - chat.completion.chunk SSE https://platform.openai.com/docs/api-reference/chat/streaming
//   - error bodies {"error":{"message","type","param","code"}}
//
// Usage:
//   const fake = await startFakeOpenAI();
//   fake.baseURL                      -> "http://127.0.0.1:<port>/v1"
//   fake.requests                     -> every request received: {method, url, headers, rawBody, body}
//   fake.responses                    -> what was sent back, in the same order: {status, headers, body|chunks}
//   fake.next(behaviour)              -> queue a one-shot behaviour for the next chat request:
//        { status, body, headers }                     an error (or any) JSON response
//        { content: 'text', finishReason: 'stop' }     a normal completion with this content
//        { content, delayMs: 500 }                     ... sent only after delayMs
//        { streamChunks: ['a','b'], gate: promise,     a stream; the first `gateAfter` content
//          gateAfter: 1 }                              pieces go out, then it waits for `gate`
//        { streamChunks, intervalMs: 100 }             a stream with intervalMs between chunks
//        { hold: true }                                never answers (until the client hangs up
//                                                      or the fake is closed)
//        (req, res, record) => {...}                   full control
//      misbehaviour (for the fault-injection suite):
//        { reset: true }                               the connection is reset (RST) before any
//                                                      response byte
//        { destroy: true }                             the socket is destroyed (a plain close, FIN)
//                                                      before any response byte
//        { streamChunks, resetAfterEvents: n }         a stream reset (RST) after n SSE events
//        { status, rawBody, contentType, headers }     any status with a raw (non-JSON) body
//        { raw: [string|Buffer, ...], status: 200,      a response whose body is exactly these
//          contentType, intervalMs, end }              pieces; then end: 'end' (clean close,
//                                                      default), 'reset' or 'stall' (silence
//                                                      until the client hangs up)
//   fake.always(behaviour)           -> the behaviour used when nothing is queued (null: the default)
//   POST /v1/embeddings and /v1/responses answer in their documented formats (floats or base64
//   embeddings; a Response, or its event stream when stream: true); a queued {status, body} is an error.
//   startFakeOpenAI({ tls: {key, cert} }) serves HTTPS (fake.baseURL is then https://...)
//   Every request record also gets closedAt (ms, when the connection/response closed) and
//   clientAborted (true when it closed before the response was complete).
//   await fake.waitForRequests(n, ms)  -> resolves once n requests have arrived (rejects after ms)
//   await fake.waitClosed(record, ms)  -> resolves with record.closedAt once it closed (rejects after ms)
//   fake.reset(), await fake.close()
//
// Behaviour without a queued one: a normal completion, streamed when the request says stream: true.

import http from 'node:http';
import https from 'node:https';
import { randomBytes } from 'node:crypto';

export const DEFAULT_CONTENT = 'Hello from the fake upstream.';
export const DEFAULT_STREAM_PIECES = ['Hello', ' from', ' the', ' fake', ' stream', '.'];

function completionId() {
  return 'chatcmpl-' + randomBytes(12).toString('base64url');
}

function nowSeconds() {
  return Math.floor(Date.now() / 1000);
}

// Rough token counts, only so that usage numbers are plausible and consistent.
function countPromptTokens(body) {
  const msgs = Array.isArray(body?.messages) ? body.messages : [];
  let n = 0;
  for (const m of msgs) {
    const c = typeof m?.content === 'string' ? m.content : JSON.stringify(m?.content ?? '');
    n += 4 + Math.ceil(c.length / 4);
  }
  return n + 3;
}

export function openaiError(message, type, param = null, code = null) {
  return { error: { message, type, param, code } };
}

export function makeCompletion(body, { content = DEFAULT_CONTENT, finishReason = 'stop' } = {}) {
  const prompt_tokens = countPromptTokens(body);
  const completion_tokens = Math.max(1, Math.ceil(content.length / 4));
  return {
    id: completionId(),
    object: 'chat.completion',
    created: nowSeconds(),
    model: body?.model ?? 'unknown',
    choices: [
      {
        index: 0,
        message: { role: 'assistant', content, refusal: null },
        logprobs: null,
        finish_reason: finishReason,
      },
    ],
    usage: {
      prompt_tokens,
      completion_tokens,
      total_tokens: prompt_tokens + completion_tokens,
    },
    system_fingerprint: 'fp_e2e_fake',
  };
}

// The chunks of a documented chat.completion.chunk stream, in order.
export function makeStreamChunks(body, { pieces = DEFAULT_STREAM_PIECES, finishReason = 'stop' } = {}) {
  const id = completionId();
  const created = nowSeconds();
  const model = body?.model ?? 'unknown';
  const includeUsage = body?.stream_options?.include_usage === true;
  const base = () => {
    const c = { id, object: 'chat.completion.chunk', created, model, system_fingerprint: 'fp_e2e_fake' };
    return c;
  };
  const withUsageNull = (c) => (includeUsage ? { ...c, usage: null } : c);
  const chunks = [];
  chunks.push(
    withUsageNull({
      ...base(),
      choices: [{ index: 0, delta: { role: 'assistant', content: '', refusal: null }, logprobs: null, finish_reason: null }],
    }),
  );
  for (const p of pieces) {
    chunks.push(
      withUsageNull({ ...base(), choices: [{ index: 0, delta: { content: p }, logprobs: null, finish_reason: null }] }),
    );
  }
  chunks.push(withUsageNull({ ...base(), choices: [{ index: 0, delta: {}, logprobs: null, finish_reason: finishReason }] }));
  if (includeUsage) {
    const prompt_tokens = countPromptTokens(body);
    const completion_tokens = pieces.length;
    chunks.push({
      ...base(),
      choices: [],
      usage: { prompt_tokens, completion_tokens, total_tokens: prompt_tokens + completion_tokens },
    });
  }
  return chunks;
}

// ---- the Embeddings API: POST /v1/embeddings ----

/** A fixed, input-dependent vector per input, as floats or (encoding_format: base64) little-endian float32. */
export function makeEmbeddings(body, { dimensions = 8 } = {}) {
  const inputs = Array.isArray(body?.input) ? body.input : [body?.input ?? ''];
  const data = inputs.map((text, index) => {
    const s = typeof text === 'string' ? text : JSON.stringify(text);
    const v = Array.from({ length: dimensions }, (_, i) => Math.fround(((s.length + i * 7) % 13) / 13 - 0.5));
    const embedding = body?.encoding_format === 'base64' ? Buffer.from(new Float32Array(v).buffer).toString('base64') : v;
    return { object: 'embedding', index, embedding };
  });
  const prompt_tokens = inputs.reduce((n, t) => n + Math.max(1, Math.ceil(String(t).length / 4)), 0);
  return { object: 'list', data, model: body?.model ?? 'unknown', usage: { prompt_tokens, total_tokens: prompt_tokens } };
}

// ---- the Responses API: POST /v1/responses ----

function responseObject(body, { content, status, itemId, id, createdAt }) {
  const input = typeof body?.input === 'string' ? body.input : JSON.stringify(body?.input ?? '');
  const input_tokens = 4 + Math.ceil(input.length / 4);
  const output_tokens = content === null ? 0 : Math.max(1, Math.ceil(content.length / 4));
  return {
    id,
    object: 'response',
    created_at: createdAt,
    status,
    error: null,
    incomplete_details: null,
    instructions: body?.instructions ?? null,
    max_output_tokens: body?.max_output_tokens ?? null,
    model: body?.model ?? 'unknown',
    output:
      content === null
        ? []
        : [{ type: 'message', id: itemId, status: 'completed', role: 'assistant', content: [{ type: 'output_text', text: content, annotations: [] }] }],
    parallel_tool_calls: true,
    previous_response_id: null,
    reasoning: { effort: null, summary: null },
    store: true,
    temperature: 1.0,
    text: { format: { type: 'text' } },
    tool_choice: 'auto',
    tools: [],
    top_p: 1.0,
    truncation: 'disabled',
    usage:
      status === 'completed'
        ? { input_tokens, input_tokens_details: { cached_tokens: 0 }, output_tokens, output_tokens_details: { reasoning_tokens: 0 }, total_tokens: input_tokens + output_tokens }
        : null,
    user: null,
    metadata: {},
  };
}

export function makeResponse(body, { content = DEFAULT_CONTENT } = {}) {
  const ids = { id: 'resp_' + randomBytes(12).toString('hex'), itemId: 'msg_' + randomBytes(12).toString('hex'), createdAt: nowSeconds() };
  return responseObject(body, { content, status: 'completed', ...ids });
}

/** The documented event sequence of a streamed response: [{event, data}]. */
export function makeResponseEvents(body, { pieces = DEFAULT_STREAM_PIECES } = {}) {
  const ids = { id: 'resp_' + randomBytes(12).toString('hex'), itemId: 'msg_' + randomBytes(12).toString('hex'), createdAt: nowSeconds() };
  const text = pieces.join('');
  const events = [];
  let seq = 0;
  const ev = (type, data) => events.push({ event: type, data: { type, sequence_number: seq++, ...data } });
  const part = (t) => ({ type: 'output_text', text: t, annotations: [] });
  const item = (status, content) => ({ id: ids.itemId, type: 'message', status, role: 'assistant', content });
  ev('response.created', { response: responseObject(body, { content: null, status: 'in_progress', ...ids }) });
  ev('response.in_progress', { response: responseObject(body, { content: null, status: 'in_progress', ...ids }) });
  ev('response.output_item.added', { output_index: 0, item: item('in_progress', []) });
  ev('response.content_part.added', { item_id: ids.itemId, output_index: 0, content_index: 0, part: part('') });
  for (const delta of pieces) ev('response.output_text.delta', { item_id: ids.itemId, output_index: 0, content_index: 0, delta, logprobs: [] });
  ev('response.output_text.done', { item_id: ids.itemId, output_index: 0, content_index: 0, text, logprobs: [] });
  ev('response.content_part.done', { item_id: ids.itemId, output_index: 0, content_index: 0, part: part(text) });
  ev('response.output_item.done', { output_index: 0, item: item('completed', [part(text)]) });
  ev('response.completed', { response: responseObject(body, { content: text, status: 'completed', ...ids }) });
  return events;
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const parts = [];
    req.on('data', (d) => parts.push(d));
    req.on('end', () => resolve(Buffer.concat(parts)));
    req.on('error', reject);
  });
}

function sendJson(res, status, obj, headers = {}) {
  const text = JSON.stringify(obj);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    'x-request-id': 'req_fake_' + randomBytes(6).toString('hex'),
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
      if (Date.now() - t0 >= ms) return reject(new Error(`fake upstream: ${what} not within ${ms} ms`));
      setTimeout(tick, 5);
    };
    tick();
  });
}

/** Resets the connection under `res` (TCP RST where Node can, else a plain destroy). */
export function resetConnection(res) {
  const sock = res.socket;
  if (sock && typeof sock.resetAndDestroy === 'function' && !sock.destroyed) {
    try {
      sock.resetAndDestroy();
      return;
    } catch {
      /* fall through */
    }
  }
  sock?.destroy();
  res.destroy();
}

/** Sends `pieces` as the body of a 200 (or `status`) response, then ends, resets or stalls. */
export async function sendRaw(res, { raw, status = 200, contentType = 'text/event-stream', headers = {}, intervalMs = 0, end = 'end' }, closedPromise) {
  res.writeHead(status, { 'content-type': contentType, 'cache-control': 'no-cache', ...headers });
  res.flushHeaders();
  let gone = false;
  const gonePromise = new Promise((r) => res.on('close', () => r((gone = true))));
  for (const piece of raw) {
    if (gone) return;
    res.write(piece);
    let timer;
    await Promise.race([new Promise((r) => (timer = setTimeout(r, intervalMs || 5))), gonePromise, closedPromise ?? new Promise(() => {})]);
    clearTimeout(timer);
  }
  if (gone) return;
  if (end === 'reset') {
    await new Promise((r) => setTimeout(r, 20)); // let the bytes leave first
    resetConnection(res);
  } else if (end === 'stall') {
    await Promise.race([gonePromise, closedPromise ?? new Promise(() => {})]);
    res.destroy();
  } else {
    res.end();
  }
}

export async function startFakeOpenAI({ host = '127.0.0.1', port: wantedPort = 0, tls = null } = {}) {
  const requests = [];
  const responses = [];
  const queue = [];
  let always = null;
  let closed = false;
  let closeSignal;
  const closedPromise = new Promise((r) => (closeSignal = r));

  async function streamResponse(req, res, body, behaviour = {}) {
    const pieces = behaviour.streamChunks ?? DEFAULT_STREAM_PIECES;
    const chunks = makeStreamChunks(body, { pieces, finishReason: behaviour.finishReason ?? 'stop' });
    const record = { status: 200, headers: { 'content-type': 'text/event-stream' }, chunks, done: false };
    responses.push(record);
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
      'x-request-id': 'req_fake_' + randomBytes(6).toString('hex'),
    });
    res.flushHeaders();
    let clientGone = false;
    const gone = new Promise((r) =>
      res.on('close', () => {
        clientGone = !res.writableFinished;
        r();
      }),
    );
    // With a gate: the role chunk and the first `gateAfter` content chunks go out, then we wait.
    const gateAt = behaviour.gate ? 1 + (behaviour.gateAfter ?? 1) : Infinity;
    for (let i = 0; i < chunks.length; i++) {
      if (behaviour.resetAfterEvents !== undefined && i === behaviour.resetAfterEvents) {
        await new Promise((r) => setTimeout(r, 20)); // let the events leave first
        record.reset = true;
        resetConnection(res);
        return;
      }
      if (i === gateAt) {
        record.gatedAt = Date.now();
        await Promise.race([behaviour.gate, gone, closedPromise]);
        record.releasedAt = Date.now();
        if (clientGone || closed) {
          record.aborted = true;
          res.destroy();
          return;
        }
      }
      if (clientGone) {
        record.aborted = true;
        return;
      }
      res.write(`data: ${JSON.stringify(chunks[i])}\n\n`);
      // Separate writes, separated in time a little, so that they are separate TCP segments.
      if (behaviour.intervalMs && i < chunks.length - 1) {
        let timer;
        await Promise.race([new Promise((r) => (timer = setTimeout(r, behaviour.intervalMs))), gone, closedPromise]);
        clearTimeout(timer);
        if (closed && !clientGone) {
          record.aborted = true;
          res.destroy();
          return;
        }
      } else {
        await new Promise((r) => setImmediate(r));
      }
    }
    res.write('data: [DONE]\n\n');
    res.end();
    record.done = true;
  }

  const handler = async (req, res) => {
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
        at: Date.now(),
      };
      requests.push(record);
      const markClosed = () => {
        if (record.closedAt === undefined) {
          record.closedAt = Date.now();
          record.clientAborted = !res.writableFinished;
        }
      };
      // 'close' on the response: sent completely, or the connection went away before that.
      res.on('close', markClosed);

      const path = (req.url || '').split('?')[0];
      if ((path === '/v1/embeddings' || path === '/v1/responses') && req.method === 'POST' && body && typeof body === 'object') {
        const behaviour = queue.length ? queue.shift() : always;
        if (behaviour && behaviour.status !== undefined) {
          const b = behaviour.body ?? openaiError('fake error', 'server_error');
          responses.push({ status: behaviour.status, body: b });
          return sendJson(res, behaviour.status, b, behaviour.headers ?? {});
        }
        if (path === '/v1/embeddings') {
          const e = makeEmbeddings(body);
          responses.push({ status: 200, body: e });
          return sendJson(res, 200, e);
        }
        if (body.stream === true) {
          const events = makeResponseEvents(body, behaviour ?? {});
          responses.push({ status: 200, events });
          res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' });
          for (const e of events) res.write(`event: ${e.event}\ndata: ${JSON.stringify(e.data)}\n\n`);
          return res.end();
        }
        const r = makeResponse(body, behaviour ?? {});
        responses.push({ status: 200, body: r });
        return sendJson(res, 200, r);
      }
      if (path !== '/v1/chat/completions') {
        const b = openaiError(`Invalid URL (${req.method} ${path})`, 'invalid_request_error', null, null);
        responses.push({ status: 404, body: b });
        return sendJson(res, 404, b);
      }
      if (req.method !== 'POST') {
        const b = openaiError(`Invalid method for URL (${req.method} ${path})`, 'invalid_request_error', null, null);
        responses.push({ status: 405, body: b });
        return sendJson(res, 405, b);
      }
      if (body === undefined || body === null || typeof body !== 'object') {
        const b = openaiError(
          "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly.)",
          'invalid_request_error',
          null,
          null,
        );
        responses.push({ status: 400, body: b });
        return sendJson(res, 400, b);
      }

      const behaviour = queue.length ? queue.shift() : always;
      if (typeof behaviour === 'function') {
        return await behaviour(req, res, record);
      }
      if (behaviour && behaviour.reset) {
        responses.push({ status: null, reset: true });
        return resetConnection(res);
      }
      if (behaviour && behaviour.destroy) {
        responses.push({ status: null, destroyed: true });
        res.socket?.destroy();
        return res.destroy();
      }
      if (behaviour && behaviour.raw) {
        responses.push({ status: behaviour.status ?? 200, raw: true });
        return await sendRaw(res, behaviour, closedPromise);
      }
      if (behaviour && behaviour.status !== undefined && behaviour.rawBody !== undefined) {
        responses.push({ status: behaviour.status, headers: behaviour.headers ?? {}, rawBody: behaviour.rawBody });
        res.writeHead(behaviour.status, {
          'content-type': behaviour.contentType ?? 'text/html',
          'content-length': Buffer.byteLength(behaviour.rawBody),
          ...(behaviour.headers ?? {}),
        });
        return res.end(behaviour.rawBody);
      }
      if (behaviour && behaviour.hold) {
        responses.push({ status: null, held: true });
        await Promise.race([new Promise((r) => res.on('close', r)), closedPromise]);
        res.destroy();
        return;
      }
      if (behaviour && behaviour.delayMs) {
        let timer;
        let gone = false;
        const gonePromise = new Promise((r) => res.on('close', () => r((gone = true))));
        await Promise.race([new Promise((r) => (timer = setTimeout(r, behaviour.delayMs))), gonePromise, closedPromise]);
        clearTimeout(timer);
        if (gone || closed) {
          res.destroy();
          return;
        }
      }
      if (behaviour && behaviour.status !== undefined) {
        const b = behaviour.body ?? openaiError('fake error', 'server_error');
        responses.push({ status: behaviour.status, headers: behaviour.headers ?? {}, body: b });
        return sendJson(res, behaviour.status, b, behaviour.headers ?? {});
      }
      if (body.stream === true) {
        return await streamResponse(req, res, body, behaviour ?? {});
      }
      const completion = makeCompletion(body, behaviour ?? {});
      responses.push({ status: 200, body: completion });
      return sendJson(res, 200, completion);
    } catch (err) {
      try {
        res.destroy(err);
      } catch {
        /* ignore */
      }
    }
  };
  const server = tls ? https.createServer({ key: tls.key, cert: tls.cert }, handler) : http.createServer(handler);

  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(wantedPort, host, resolve);
  });
  const { port } = server.address();
  const scheme = tls ? 'https' : 'http';

  return {
    port,
    host,
    origin: `${scheme}://${host}:${port}`,
    baseURL: `${scheme}://${host}:${port}/v1`,
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

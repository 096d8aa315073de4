// A streaming fake provider for the benchmarks (nginx cannot pace events).
//
//   node bench/stream-fake.mjs --port 18500 [--gap-ms 20] [--events 20]
//
// POST /v1/chat/completions with "stream": true  -> OpenAI chat.completion.chunk SSE events
// POST /v1/messages with "stream": true          -> Anthropic Messages SSE events
// (without "stream": true, either answers one static JSON object.)
//
// The first content event goes out as soon as the request body has arrived, then one
// content event every --gap-ms, --events content events in all (--events 0: until the
// client hangs up). Every content event's text is "t<ns> ", <ns> being this process's
// monotonic clock (CLOCK_MONOTONIC, shared by every process on the machine) when the
// event was written, so bench/stream-client.mjs can compute each event's one-way delay
// through the gateway (Prism keeps the text when it translates Anthropic events).
// Prints "listening <port>" on stdout once it accepts connections.

import http from 'node:http';

const args = process.argv.slice(2);
function opt(name, def) {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : def;
}
const PORT = Number(opt('port', '18500'));
const GAP_MS = Number(opt('gap-ms', '20'));
const EVENTS = Number(opt('events', '20'));

const now = () => process.hrtime.bigint();
const sse = (obj, event) => (event ? `event: ${event}\n` : '') + `data: ${JSON.stringify(obj)}\n\n`;

function openaiStream(req, res, body) {
  const id = 'chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT';
  const created = Math.floor(Date.now() / 1000);
  const model = 'gpt-4o-mini-2024-07-18';
  const base = { id, object: 'chat.completion.chunk', created, model, service_tier: 'default', system_fingerprint: 'fp_06737a9306' };
  const usage = body?.stream_options?.include_usage === true;
  res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', 'x-request-id': 'req_bench' });
  let sent = 0;
  const content = (first) => {
    const delta = first ? { role: 'assistant', content: `t${now()} `, refusal: null } : { content: `t${now()} ` };
    return sse({ ...base, choices: [{ index: 0, delta, logprobs: null, finish_reason: null }] });
  };
  const finish = () => {
    res.write(sse({ ...base, choices: [{ index: 0, delta: {}, logprobs: null, finish_reason: 'stop' }] }));
    if (usage) res.write(sse({ ...base, choices: [], usage: { prompt_tokens: 19, completion_tokens: sent, total_tokens: 19 + sent } }));
    res.end('data: [DONE]\n\n');
  };
  pace(req, res, () => res.write(content(sent++ === 0)), finish);
}

function anthropicStream(req, res, body) {
  const model = 'claude-sonnet-4-5-20250929';
  res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', 'request-id': 'req_bench' });
  res.write(
    sse(
      {
        type: 'message_start',
        message: {
          id: 'msg_01XFDUDYJgAACzvnptvVoYEL', type: 'message', role: 'assistant', model, content: [],
          stop_reason: null, stop_sequence: null,
          usage: { input_tokens: 19, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, output_tokens: 1 },
        },
      },
      'message_start',
    ) + sse({ type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } }, 'content_block_start'),
  );
  let sent = 0;
  const content = () => {
    sent++;
    return sse({ type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: `t${now()} ` } }, 'content_block_delta');
  };
  const finish = () => {
    res.write(
      sse({ type: 'content_block_stop', index: 0 }, 'content_block_stop') +
        sse({ type: 'message_delta', delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: sent } }, 'message_delta'),
    );
    res.end(sse({ type: 'message_stop' }, 'message_stop'));
  };
  pace(req, res, () => res.write(content()), finish);
}

// One content event now, then one every GAP_MS, EVENTS in all; stops when the client goes.
function pace(req, res, emit, finish) {
  let n = 0;
  let timer = null;
  const tick = () => {
    timer = null;
    if (res.destroyed) return;
    emit();
    n++;
    if (EVENTS > 0 && n >= EVENTS) return finish();
    timer = setTimeout(tick, GAP_MS);
  };
  res.on('close', () => timer && clearTimeout(timer));
  tick();
}

const OPENAI_JSON = JSON.stringify({
  id: 'chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT', object: 'chat.completion', created: 1741569952, model: 'gpt-4o-mini-2024-07-18',
  choices: [{ index: 0, message: { role: 'assistant', content: 'Hello! How can I assist you today?', refusal: null, annotations: [] }, logprobs: null, finish_reason: 'stop' }],
  usage: { prompt_tokens: 19, completion_tokens: 9, total_tokens: 28 },
});
const ANTHROPIC_JSON = JSON.stringify({
  id: 'msg_01XFDUDYJgAACzvnptvVoYEL', type: 'message', role: 'assistant', model: 'claude-sonnet-4-5-20250929',
  content: [{ type: 'text', text: 'Hello! How can I assist you today?' }], stop_reason: 'end_turn', stop_sequence: null,
  usage: { input_tokens: 19, output_tokens: 9 },
});

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    let body = null;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
      /* not JSON: answered below */
    }
    const openai = req.method === 'POST' && req.url === '/v1/chat/completions';
    const anthropic = req.method === 'POST' && req.url === '/v1/messages';
    if ((!openai && !anthropic) || body === null) {
      res.writeHead(openai || anthropic ? 400 : 404, { 'content-type': 'application/json' });
      return res.end('{"error":{"message":"bad request","type":"invalid_request_error","param":null,"code":null}}');
    }
    if (body.stream === true) return openai ? openaiStream(req, res, body) : anthropicStream(req, res, body);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(openai ? OPENAI_JSON : ANTHROPIC_JSON);
  });
});
server.keepAliveTimeout = 300_000;
server.headersTimeout = 60_000;
server.requestTimeout = 0; // a held stream may last as long as the benchmark wants
server.maxHeadersCount = 200;
server.listen({ port: PORT, host: '127.0.0.1', backlog: 4096 }, () => {
  process.stdout.write(`listening ${PORT}\n`);
});
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));

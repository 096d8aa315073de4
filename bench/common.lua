-- Shared by post-small.lua and post-large.lua (wrk scripts).
--   BENCH_MODEL       the request's model (default gpt-4o-mini)
--   BENCH_MODELS      several models, comma-separated: requests take turns (overrides BENCH_MODEL)
--   BENCH_PATH        the request path (default /v1/chat/completions)
--   BENCH_STOP_AFTER  when set, each wrk thread stops after this many responses
--   BENCH_STREAM      1: ask for a streamed answer ("stream": true, with usage)
-- done() prints one machine-readable line, WRK_RESULT key=value ..., that
-- bench/run.sh and bench/soak.sh read.
local M = {}

-- A chat request with a system prompt and a user message padded so that the
-- whole JSON body is `size` bytes (give or take a few).
function M.body(size, model)
  model = model or os.getenv("BENCH_MODEL") or "gpt-4o-mini"
  local head = '{"model":"' .. model .. '","messages":[' ..
    '{"role":"system","content":"You are a helpful assistant. Answer briefly and precisely."},' ..
    '{"role":"user","content":"'
  local tail = '"}],"max_tokens":256,"temperature":0.7,"user":"bench-user-0001"'
  if os.getenv("BENCH_STREAM") == "1" then
    tail = tail .. ',"stream":true,"stream_options":{"include_usage":true}'
  end
  tail = tail .. '}'
  local text = "Summarize the following notes for a status update. " ..
    "The deployment finished on time, latency stayed flat, two alerts fired and were resolved, " ..
    "and the next release is planned for Thursday after the review with the platform team. "
  local need = size - #head - #tail
  local user = ""
  while #user < need do user = user .. text end
  user = string.sub(user, 1, math.max(need, 1))
  return head .. user .. tail
end

function M.install(size)
  wrk.method = "POST"
  wrk.path = os.getenv("BENCH_PATH") or "/v1/chat/completions"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer " .. (os.getenv("BENCH_KEY") or "sk-bench")
  wrk.body = M.body(size)

  local models = {}
  for m in string.gmatch(os.getenv("BENCH_MODELS") or "", "[^,%s]+") do models[#models + 1] = m end
  if #models > 0 then
    -- Requests built once per model (on first use: wrk adds the Host header only after
    -- loading the script), then sent in turn.
    local reqs = nil
    wrk.body = M.body(size, models[1])
    local i = 0
    request = function()
      if reqs == nil then
        reqs = {}
        for k, m in ipairs(models) do reqs[k] = wrk.format(nil, nil, nil, M.body(size, m)) end
      end
      i = i % #reqs + 1
      return reqs[i]
    end
  end

  -- BENCH_STOP_AFTER: wrk still waits out its -d duration once every thread has
  -- stopped, so each thread also notes how long it was busy (monotonic clock) and
  -- done() reports requests per busy second.
  local stop_after = tonumber(os.getenv("BENCH_STOP_AFTER") or "")
  local threads = {}
  if stop_after then
    local ffi = require("ffi")
    pcall(ffi.cdef, "typedef struct { long tv_sec; long tv_nsec; } bench_ts; int clock_gettime(int, bench_ts *);")
    local ts = ffi.new("bench_ts")
    local function now_us()
      ffi.C.clock_gettime(1, ts)
      return tonumber(ts.tv_sec) * 1e6 + tonumber(ts.tv_nsec) / 1e3
    end
    local t0 = now_us()
    local n = 0
    response = function(status, headers, body)
      n = n + 1
      if n == stop_after then
        busy_us = now_us() - t0
        wrk.thread:stop()
      end
    end
    setup = function(thread) threads[#threads + 1] = thread end
  end

  done = function(summary, latency, requests)
    local e = summary.errors
    local duration = summary.duration
    local busy = 0
    for _, t in ipairs(threads) do
      local b = t:get("busy_us")
      if b == nil then busy = nil; break end
      if b > busy then busy = b end
    end
    if busy ~= nil and busy > 0 then duration = busy end
    io.write(string.format(
      "WRK_RESULT requests=%d duration_us=%d rps=%.1f p50_us=%d p90_us=%d p99_us=%d max_us=%d " ..
      "mean_us=%.1f err_connect=%d err_read=%d err_write=%d err_status=%d err_timeout=%d body_bytes=%d\n",
      summary.requests, duration, summary.requests / (duration / 1e6),
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
      latency.mean, e.connect, e.read, e.write, e.status, e.timeout, #wrk.body))
  end
end

return M

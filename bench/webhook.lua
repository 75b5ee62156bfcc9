-- wrk script for bench/webhook.py: replays pre-signed Twilio webhooks, each one once.
--
--   wrk -t T -c C -d 15s -s bench/webhook.lua URL -- REQUESTS_FILE T MODE
--
-- REQUESTS_FILE has one request a line, "<X-Twilio-Signature>\t<form body>" (bench/webhook.py
-- writes it, signed for exactly the URL wrk hits). Thread k of T sends lines k+1, k+1+T, ... in
-- order, so no request is sent twice in a run. MODE "once": when a thread runs out it sends
-- GET /healthz (never a repeated webhook) and the run is reported as exhausted; "cycle": it
-- starts over (for the bare endpoint, which stores nothing). Requests are formatted in init(),
-- before the clock starts, so wrk spends little CPU per request (it shares the 2 cores). In "once"
-- mode every non-2xx answer is counted here (response()); "cycle" mode skips that per-response
-- Lua call, which would lower the bare ceiling, and relies on wrk's own count of 4xx/5xx.
-- done() prints one line "WRK-RESULT {json}" that bench/webhook.py reads.

local threads = {}

function setup(thread)
  thread:set("thread_index", #threads)
  table.insert(threads, thread)
end

local formatted = {}
local next_index, total = 0, 0
local mode = "once"
local host = nil
sent, non2xx, exhausted, statuses = 0, 0, 0, ""
local status_counts = {}

function init(args)
  local path, thread_total = args[1], tonumber(args[2] or "1")
  mode = args[3] or "once"
  local index = 0
  host = wrk.headers["Host"] or (wrk.host .. ":" .. wrk.port)
  local file = assert(io.open(path, "r"))
  for line in file:lines() do
    if index % thread_total == thread_index then
      local tab = line:find("\t", 1, true)
      total = total + 1
      formatted[total] = wrk.format("POST", wrk.path, {
        ["Host"] = host,
        ["Content-Type"] = "application/x-www-form-urlencoded",
        ["X-Twilio-Signature"] = line:sub(1, tab - 1),
      }, line:sub(tab + 1))
    end
    index = index + 1
  end
  file:close()
  if mode == "once" then
    response = count_response
  end
end

function request()
  next_index = next_index + 1
  if next_index > total then
    if mode == "once" then
      exhausted = 1
      return wrk.format("GET", "/healthz", { ["Host"] = host }, nil)
    end
    next_index = 1
  end
  sent = sent + 1
  return formatted[next_index]
end

function count_response(status, headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
    status_counts[status] = (status_counts[status] or 0) + 1
    local parts = {}
    for code, n in pairs(status_counts) do
      parts[#parts + 1] = string.format('"%d": %d', code, n)
    end
    statuses = table.concat(parts, ", ")
  end
end

function done(summary, latency, requests)
  local sent_total, non2xx_total, exhausted_any, statuses_all = 0, 0, 0, {}
  for _, thread in ipairs(threads) do
    sent_total = sent_total + thread:get("sent")
    non2xx_total = non2xx_total + thread:get("non2xx")
    exhausted_any = math.max(exhausted_any, thread:get("exhausted"))
    local s = thread:get("statuses")
    if s ~= "" then statuses_all[#statuses_all + 1] = s end
  end
  local e = summary.errors
  io.write(string.format(
    'WRK-RESULT {"duration_us": %d, "requests": %d, "sent": %d, "non2xx": %d, "exhausted": %d, '
      .. '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, '
      .. '"p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, "non2xx_by_thread": [%s]}\n',
    summary.duration, summary.requests, sent_total, non2xx_total, exhausted_any,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    table.concat((function()
      local out = {}
      for i, s in ipairs(statuses_all) do out[i] = "{" .. s .. "}" end
      return out
    end)(), ", ")))
end

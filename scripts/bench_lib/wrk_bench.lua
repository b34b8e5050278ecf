-- wrk script shared by every bench scenario (scripts/bench sets the environment).
--   BENCH_METHOD   GET or POST
--   BENCH_PATH     request path
--   BENCH_BODY     request body (POST)
--   BENCH_TOKENS   file, one credential a line (a bearer token, or a user id for X-User);
--                  thread t of T uses lines t+1, t+1+T, ... in turn
--   BENCH_AUTH     bearer | xuser | none
--   BENCH_THREADS  wrk's -t (to split the credentials)
--   BENCH_QUOTA    total responses after which the run stops (0: run for -d)
--   BENCH_DONE_DIR where each thread drops a file when its quota is met
--   BENCH_TAG      prefix of idempotency keys (unique per run)
-- done() prints one line: BENCHJSON {...} with counts, statuses, latency and timing.
local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk_id, bench_timespec *tp);
]]
local ts = ffi.new("bench_timespec")
local function now_us()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1000000 + math.floor(tonumber(ts.tv_nsec) / 1000)
end

local threads = {}
local counter = 0
function setup(thread)
  thread:set("id", counter)
  table.insert(threads, thread)
  counter = counter + 1
end

local method, path, body, auth, tag
local creds = {}
local quota = 0
local done_dir
-- per-thread results, read by done() through thread:get
issued = 0
responses = 0
first_us = 0
last_us = 0
last_created_us = 0
statuses = {}

function init(args)
  method = os.getenv("BENCH_METHOD") or "GET"
  path = os.getenv("BENCH_PATH") or "/"
  body = os.getenv("BENCH_BODY")
  auth = os.getenv("BENCH_AUTH") or "none"
  tag = (os.getenv("BENCH_TAG") or "k") .. "-" .. id .. "-"
  done_dir = os.getenv("BENCH_DONE_DIR")
  local nthreads = tonumber(os.getenv("BENCH_THREADS") or "1")
  local total_quota = tonumber(os.getenv("BENCH_QUOTA") or "0")
  if total_quota > 0 then
    quota = math.floor(total_quota / nthreads)
    if id < total_quota % nthreads then quota = quota + 1 end
  end
  local file = os.getenv("BENCH_TOKENS")
  if file and file ~= "" then
    local i = 0
    for line in io.lines(file) do
      if i % nthreads == id and line ~= "" then creds[#creds + 1] = line end
      i = i + 1
    end
  end
end

function request()
  if first_us == 0 then first_us = now_us() end
  local headers = {}
  if #creds > 0 then
    local cred = creds[(issued % #creds) + 1]
    if auth == "bearer" then
      headers["Authorization"] = "Bearer " .. cred
    elseif auth == "xuser" then
      headers["X-User"] = cred
    end
  end
  if method == "POST" then
    headers["Content-Type"] = "application/json"
    headers["X-Idempotency-Key"] = tag .. issued
  end
  issued = issued + 1
  return wrk.format(method, path, headers, body)
end

function response(status, headers, resp_body)
  responses = responses + 1
  local t = now_us()
  last_us = t
  if status == 201 then last_created_us = t end
  statuses[status] = (statuses[status] or 0) + 1
  if quota > 0 and responses == quota then
    if done_dir then
      local f = io.open(done_dir .. "/" .. id, "w")
      if f then f:write("done") f:close() end
    end
    wrk.thread:stop()
  end
end

function done(summary, latency, requests)
  local total, first, last, last_created = 0, nil, 0, 0
  local merged = {}
  for _, thread in ipairs(threads) do
    total = total + (thread:get("responses") or 0)
    local f = thread:get("first_us") or 0
    if f > 0 and (first == nil or f < first) then first = f end
    local l = thread:get("last_us") or 0
    if l > last then last = l end
    local lc = thread:get("last_created_us") or 0
    if lc > last_created then last_created = lc end
    for code, count in pairs(thread:get("statuses") or {}) do
      merged[code] = (merged[code] or 0) + count
    end
  end
  local parts = {}
  for code, count in pairs(merged) do parts[#parts + 1] = string.format('"%d":%d', code, count) end
  local e = summary.errors
  io.write(string.format(
    'BENCHJSON {"responses":%d,"wrk_requests":%d,"wrk_duration_us":%d,"first_us":%d,' ..
    '"last_us":%d,"last_created_us":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},"statuses":{%s}}\n',
    total, summary.requests, summary.duration, first or 0, last, last_created,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    e.connect, e.read, e.write, e.status, e.timeout, table.concat(parts, ",")))
end

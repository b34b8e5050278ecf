-- Every rate-limit window one request counts against (per shopper, per address), in one call:
-- a sliding log of the requests let through in the last window, per key.
-- KEYS: the logs (sorted sets: member = a unique request id, score = its time in us)
-- ARGV: 1 this request's unique id, 2 now (us; empty = Redis's own clock, so every process
--       shares one clock), then per log: limit, window (us)
-- The request is logged in its windows only when every one has room: a refused request
-- counts nowhere, so hammering while limited does not push the next free slot further away.
-- Returns {0, 0} when allowed, {i, retry after (us)} when the i-th key's window refuses.
local now
if ARGV[2] ~= nil and ARGV[2] ~= '' then
  now = tonumber(ARGV[2])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end

for i = 1, #KEYS do
  local limit = tonumber(ARGV[1 + 2 * i])
  local window = tonumber(ARGV[2 + 2 * i])
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now - window)
  if redis.call('ZCARD', KEYS[i]) >= limit then
    local oldest = redis.call('ZRANGE', KEYS[i], 0, 0, 'WITHSCORES')
    if oldest[2] == nil then
      return {i, window}
    end
    return {i, tonumber(oldest[2]) + window - now}
  end
end
for i = 1, #KEYS do
  redis.call('ZADD', KEYS[i], now, ARGV[1])
  redis.call('PEXPIRE', KEYS[i], math.ceil(tonumber(ARGV[2 + 2 * i]) / 1000) + 1000)
end
return {0, 0}

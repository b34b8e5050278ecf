-- One rate-limit check: a sliding log of the requests let through in the last window.
-- KEYS: 1 the log (sorted set: member = a unique request id, score = its time in us)
-- ARGV: 1 limit, 2 window (us), 3 this request's unique id,
--       4 now (us; empty = Redis's own clock, so every process shares one clock)
-- Returns {1, left} when allowed, {0, retry after (us)} when refused. A refused request is
-- not logged, so hammering while limited does not push the next free slot further away.
local now
if ARGV[4] ~= nil and ARGV[4] ~= '' then
  now = tonumber(ARGV[4])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])

redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
if count < limit then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], math.ceil(window / 1000) + 1000)
  return {1, limit - count - 1}
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {0, tonumber(oldest[2]) + window - now}

-- May a call go to this gateway? KEYS[1] breaker state hash, KEYS[2] half-open probe lock.
-- ARGV[1] probe token, ARGV[2] probe lock ms.
-- Returns {state, wait_ms}: "closed" (go), "probe" (go: the one half-open trial call),
-- "open" (do not call; wait_ms until a probe may be tried).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local open_until = tonumber(redis.call('HGET', KEYS[1], 'open_until') or '0')
if open_until == 0 then
  return {'closed', 0}
end
if now < open_until then
  return {'open', open_until - now}
end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return {'probe', 0}
end
local ttl = redis.call('PTTL', KEYS[2])
if ttl < 0 then ttl = 100 end
return {'open', ttl}

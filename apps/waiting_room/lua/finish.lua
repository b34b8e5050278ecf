-- A shopper finished with their admission (bought): it stops counting as active at once,
-- and the claim remembers the order it bought.
-- KEYS: 1 state, 2 claims, 3 live claims.  ARGV: 1 user, 2 order id ('' = unknown).
-- Returns 1 when it was active.
local claim = redis.call('HGET', KEYS[2], ARGV[1])
if not claim then return 0 end
local jti, exp, st = string.match(claim, '([^|]*)|([^|]*)|([^|]*)')
if st == 'd' then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], jti .. '|' .. exp .. '|d|' .. (ARGV[2] or ''))
if redis.call('ZREM', KEYS[3], ARGV[1]) == 1 then
  local active = tonumber(redis.call('HGET', KEYS[1], 'active') or '0')
  if active > 0 then redis.call('HINCRBY', KEYS[1], 'active', -1) end
  return 1
end
return 0

-- Install a pool rebuilt from PostgreSQL, minus the holds still in flight, in one step.
-- KEYS: 1 free units, 2 buyers, 3 primed marker, 4 pending holds,
--       5 staged free units, 6 staged buyers, 7 restock marker, 8 holders-ready marker
-- ARGV: 1 generation, 2 restock delay (ms; 0: none, e.g. when no unit was ever sold)
-- The holders set is not trusted again until the idempotency records are restored
-- (apps/orders/services/reservations.py sets the holders-ready marker).
local pending = redis.call('HGETALL', KEYS[4])
for i = 1, #pending, 2 do
  local user, quantity, units = string.match(pending[i + 1], '^([^|]+)|([^|]+)|([^|]*)')
  for unit in string.gmatch(units, '[^,]+') do
    redis.call('SREM', KEYS[5], unit)
  end
  redis.call('HINCRBY', KEYS[6], user, tonumber(quantity))
end
if redis.call('EXISTS', KEYS[5]) == 1 then
  redis.call('RENAME', KEYS[5], KEYS[1])
else
  redis.call('DEL', KEYS[1])
end
if redis.call('EXISTS', KEYS[6]) == 1 then
  redis.call('RENAME', KEYS[6], KEYS[2])
else
  redis.call('DEL', KEYS[2])
end
redis.call('SET', KEYS[3], ARGV[1])
redis.call('DEL', KEYS[8])
if tonumber(ARGV[2]) > 0 and redis.call('SCARD', KEYS[1]) > 0 then
  redis.call('SET', KEYS[7], '1', 'PX', tonumber(ARGV[2]))  -- see reserve.lua
end
return redis.call('SCARD', KEYS[1])

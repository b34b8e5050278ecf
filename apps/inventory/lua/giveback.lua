-- Undo a hold that never became a PostgreSQL order. Safe to run twice: the pending entry
-- is the token, and only the caller that deletes it gives anything back. The request is
-- then known to have failed: its idempotency record and its admission marker (each only
-- while it still names this order) are removed, so the shopper may try again.
-- KEYS: 1 free units (set), 2 buyers (hash), 3 in-flight holds (zset), 4 pending holds (hash),
--       5 idempotency record, 6 admission-used marker (each a dummy key when unknown),
--       7 restock marker
-- ARGV: 1 order id, 2 "1" to put the units back in the pool, "0" when PostgreSQL said they
--       are held by someone else, 3 restock delay (ms; 0: none)
local entry = redis.call('HGET', KEYS[4], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
if not entry then
  return 0
end
redis.call('HDEL', KEYS[4], ARGV[1])
local user, quantity, units = string.match(entry, '^([^|]+)|([^|]+)|([^|]*)')
if ARGV[2] == '1' and units ~= '' then
  if tonumber(ARGV[3]) > 0 and redis.call('SCARD', KEYS[1]) == 0 then
    redis.call('SET', KEYS[7], '1', 'PX', tonumber(ARGV[3]))  -- see reserve.lua
  end
  for unit in string.gmatch(units, '[^,]+') do
    redis.call('SADD', KEYS[1], unit)
  end
end
local held = redis.call('HINCRBY', KEYS[2], user, -tonumber(quantity))
if held <= 0 then
  redis.call('HDEL', KEYS[2], user)
end
local record = redis.call('GET', KEYS[5])
if record and string.find(record, ARGV[1], 1, true) then
  redis.call('DEL', KEYS[5])
end
if redis.call('GET', KEYS[6]) == ARGV[1] then
  redis.call('DEL', KEYS[6])
end
return 1

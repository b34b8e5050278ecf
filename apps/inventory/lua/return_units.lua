-- Units of a released PostgreSQL order go back to the pool, once per order.
-- KEYS: 1 free units (set), 2 buyers (hash), 3 primed marker, 4 per-order "returned" marker,
--       5 restock marker
-- ARGV: 1 user id, 2 quantity, 3 marker ttl (s), 4 restock delay (ms; 0: none),
--       5.. unit numbers
if redis.call('EXISTS', KEYS[3]) == 0 then
  return 0  -- not primed: the next rebuild reads PostgreSQL, which already has them free
end
if not redis.call('SET', KEYS[4], '1', 'NX', 'EX', tonumber(ARGV[3])) then
  return 0
end
if #ARGV > 4 and tonumber(ARGV[4]) > 0 and redis.call('SCARD', KEYS[1]) == 0 then
  redis.call('SET', KEYS[5], '1', 'PX', tonumber(ARGV[4]))  -- see reserve.lua
end
for i = 5, #ARGV do
  redis.call('SADD', KEYS[1], ARGV[i])
end
local held = redis.call('HINCRBY', KEYS[2], ARGV[1], -tonumber(ARGV[2]))
if held <= 0 then
  redis.call('HDEL', KEYS[2], ARGV[1])
end
return 1

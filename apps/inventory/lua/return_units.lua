-- Units of a released PostgreSQL order go back to the pool, once per order.
-- KEYS: 1 free units (set), 2 buyers (hash), 3 primed marker, 4 per-order "returned" marker
-- ARGV: 1 user id, 2 quantity, 3 marker ttl (s), 4.. unit numbers
if redis.call('EXISTS', KEYS[3]) == 0 then
  return 0  -- not primed: the next rebuild reads PostgreSQL, which already has them free
end
if not redis.call('SET', KEYS[4], '1', 'NX', 'EX', tonumber(ARGV[3])) then
  return 0
end
for i = 4, #ARGV do
  redis.call('SADD', KEYS[1], ARGV[i])
end
local held = redis.call('HINCRBY', KEYS[2], ARGV[1], -tonumber(ARGV[2]))
if held <= 0 then
  redis.call('HDEL', KEYS[2], ARGV[1])
end
return 1

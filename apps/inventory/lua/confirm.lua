-- The hold reached PostgreSQL: forget it as in-flight and remember the reply for replays.
-- KEYS: 1 in-flight holds (zset), 2 pending holds (hash), 3 idempotency record
-- ARGV: 1 order id, 2 record to keep for replays
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
local record = redis.call('GET', KEYS[3])
if record and string.find(record, ARGV[1], 1, true) then
  redis.call('SET', KEYS[3], ARGV[2], 'KEEPTTL')
end
return 1

-- Record a call's outcome. KEYS[1] state hash, KEYS[2] probe lock.
-- ARGV[1] "success"|"failure", ARGV[2] threshold, ARGV[3] open ms.
-- A success closes the circuit; the threshold-th consecutive failure, or a failed probe,
-- (re)opens it for ARGV[3] ms. Returns the state after: "closed" | "open".
if ARGV[1] == 'success' then
  redis.call('DEL', KEYS[1], KEYS[2])
  return 'closed'
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
local open_until = tonumber(redis.call('HGET', KEYS[1], 'open_until') or '0')
redis.call('PEXPIRE', KEYS[1], 86400000)
if open_until > 0 or failures >= tonumber(ARGV[2]) then
  if open_until == 0 then
    redis.call('HINCRBY', KEYS[1], 'opened', 1)
  end
  redis.call('HSET', KEYS[1], 'open_until', now + tonumber(ARGV[3]))
  redis.call('DEL', KEYS[2])
  return 'open'
end
return 'closed'

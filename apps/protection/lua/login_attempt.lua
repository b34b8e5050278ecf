-- Password attempts of one username or one address, with a growing delay.
-- KEYS: 1 the record (hash: n = attempts counted, last = time of the last one, us)
-- ARGV: 1 mode: 'begin' (may this attempt hash a password? counts it when yes),
--               'forget' (a success: the record goes), 'undo' (a success: uncount one),
--       2 free attempts, 3 base delay (us), 4 longest delay (us), 5 memory (ms),
--       6 now (us; empty = Redis's own clock)
-- The first `free` attempts are not delayed; after them each attempt must wait
-- base * 2^(n - free) after the previous one, up to the longest delay. Counting happens
-- before the password is hashed, so a burst of concurrent guesses cannot all slip through.
-- Returns {1, 0} allowed, {0, wait (us)} refused.
local now
if ARGV[6] ~= nil and ARGV[6] ~= '' then
  now = tonumber(ARGV[6])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local mode = ARGV[1]
if mode == 'forget' then
  redis.call('DEL', KEYS[1])
  return {1, 0}
end
local n = tonumber(redis.call('HGET', KEYS[1], 'n') or '0')
if mode == 'undo' then
  if n > 0 then redis.call('HSET', KEYS[1], 'n', n - 1) end
  return {1, 0}
end
local free = tonumber(ARGV[2])
local wait = 0
if n >= free then
  wait = tonumber(ARGV[3]) * 2 ^ (n - free)
  if wait > tonumber(ARGV[4]) then wait = tonumber(ARGV[4]) end
end
local last = tonumber(redis.call('HGET', KEYS[1], 'last') or '0')
if now < last + wait then
  return {0, last + wait - now}
end
redis.call('HSET', KEYS[1], 'n', n + 1, 'last', now)
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[5]))
return {1, 0}

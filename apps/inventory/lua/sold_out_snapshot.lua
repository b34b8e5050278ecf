-- What a process may remember about a sold-out sale, and for how long: the pool is empty
-- and the shoppers who took a hold (the only ones whose retry can be a replay) are these.
-- While the pool stays empty nobody is added; units that come back to an empty pool wait
-- for the restock marker to expire (reserve.lua), so the answer holds for the time given.
-- KEYS: 1 free units, 2 primed marker, 3 holders (set), 4 holders-ready marker,
--       5 restock marker
-- ARGV: 1 the longest the caller will remember (ms), 2 the holders count it already has
--       (-1: none): the members are sent only when the count differs
-- Returns {'UNKNOWN'} (not primed, or the holders not restored after a rebuild)
--       | {'AVAILABLE'} | {'SOLD_OUT', valid ms, holders count, [holder...]}
if redis.call('EXISTS', KEYS[2]) == 0 or redis.call('EXISTS', KEYS[4]) == 0 then
  return {'UNKNOWN'}
end
if redis.call('SCARD', KEYS[1]) > 0 then
  return {'AVAILABLE'}
end
local valid = tonumber(ARGV[1])
local restock = redis.call('PTTL', KEYS[5])
if restock >= 0 then
  valid = math.min(valid, restock)
end
local count = redis.call('SCARD', KEYS[3])
local reply = {'SOLD_OUT', tostring(valid), tostring(count)}
if count ~= tonumber(ARGV[2]) then
  local holders = redis.call('SMEMBERS', KEYS[3])
  for i = 1, #holders do
    reply[#reply + 1] = holders[i]
  end
end
return reply

-- Reserve units of one sale for one shopper, atomically.
-- KEYS: 1 free units (set), 2 primed marker, 3 buyers (hash user -> units held),
--       4 idempotency record, 5 in-flight holds (zset order -> ms), 6 pending holds (hash),
--       7 admission-used marker (waiting room; any key of the sale when no admission),
--       8 holders (set of the shoppers who took a hold: sold_out_snapshot.lua),
--       9 restock marker (set while units that came back to an empty pool wait)
-- The pending entry is "user|quantity|units|idempotency record key|admission marker key";
-- the idempotency record "hold|fingerprint|order id|units left": it stays as it is once the
-- order is committed (PostgreSQL says whether the hold became an order).
-- ARGV: 1 user id, 2 quantity, 3 max per user, 4 request fingerprint, 5 idempotency ttl (s),
--       6 sale start (ms), 7 sale end (ms), 8 order id, 9 admission jti ('' = none),
--       10 admission marker ttl (s)
-- Returns {code, ...}: REPLAY record | ADMISSION_USED | NOT_STARTED ms_left | ENDED
--                      | NOT_PRIMED | LIMIT held | SOLD_OUT left ['RESTOCKING'] | OK left unit...
local record = redis.call('GET', KEYS[4])
if record then
  return {'REPLAY', record}
end
-- An admission buys once; only a replay of that purchase (above) may present it again.
local jti = ARGV[9] or ''
if jti ~= '' and redis.call('EXISTS', KEYS[7]) == 1 then
  return {'ADMISSION_USED'}
end

local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if now_ms < tonumber(ARGV[6]) then
  return {'NOT_STARTED', tostring(tonumber(ARGV[6]) - now_ms)}
end
if now_ms >= tonumber(ARGV[7]) then
  return {'ENDED'}
end

if redis.call('EXISTS', KEYS[2]) == 0 then
  return {'NOT_PRIMED'}
end

local user = ARGV[1]
local quantity = tonumber(ARGV[2])
local held = tonumber(redis.call('HGET', KEYS[3], user) or '0')
if held + quantity > tonumber(ARGV[3]) then
  return {'LIMIT', tostring(held)}
end

-- Units that came back to an empty pool wait until no process can still remember the sale
-- sold out with its holders as they were (sold_out_snapshot.lua): a sale made now could
-- otherwise be answered "sold out" on its replay by such a process.
if redis.call('EXISTS', KEYS[9]) == 1 then
  return {'SOLD_OUT', '0', 'RESTOCKING'}
end

local left = redis.call('SCARD', KEYS[1])
if left < quantity then
  return {'SOLD_OUT', tostring(left)}
end

local units = redis.call('SPOP', KEYS[1], quantity)
redis.call('HINCRBY', KEYS[3], user, quantity)
redis.call('SADD', KEYS[8], user)
redis.call('EXPIRE', KEYS[8], tonumber(ARGV[5]))
local order_id = ARGV[8]
redis.call('ZADD', KEYS[5], now_ms, order_id)
-- The pending entry names the idempotency record and the admission marker, so whoever gives
-- an orphaned hold back (the sweep) can also undo those: the request is known to have failed.
local marker = ''
if jti ~= '' then marker = KEYS[7] end
redis.call('HSET', KEYS[6], order_id,
  user .. '|' .. quantity .. '|' .. table.concat(units, ',') .. '|' .. KEYS[4] .. '|' .. marker)
local left_after = left - quantity
redis.call('SET', KEYS[4], 'hold|' .. ARGV[4] .. '|' .. order_id .. '|' .. left_after,
  'EX', tonumber(ARGV[5]))
if jti ~= '' then
  redis.call('SET', KEYS[7], order_id, 'EX', math.max(1, tonumber(ARGV[10])))
end

local reply = {'OK', tostring(left_after)}
for i = 1, #units do
  reply[#reply + 1] = units[i]
end
return reply

-- One releaser tick for one sale: expire unused admissions, fix the pre-start order at the
-- start, then admit shoppers at the sale's rate, within the active cap and the units budget.
-- KEYS: 1 state, 2 pre, 3 back-pre, 4 main batches, 5 back batches, 6 batch meta,
--       7 batch deadlines (zset id -> ms), 8 live claims (zset), 9 free units, 10 primed
-- ARGV: 1 rate per second, 2 max active, 3 units held by reservations that may expire,
--       4 admission factor x100, 5 admission window ms, 6 starts ms, 7 closed (0/1),
--       8 longest gap credited (ms), 9 now (ms; empty = Redis's own clock, tests drive it)
-- Returns {now_serving, admitted now, active, units left (-1 unknown), waiting,
--          measured rate x1000, phase}
local now
if ARGV[9] ~= nil and ARGV[9] ~= '' then
  now = tonumber(ARGV[9])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local S = KEYS[1]

local function num(field)
  return tonumber(redis.call('HGET', S, field) or '0')
end

local active = num('active')
-- Release windows that closed: their unclaimed slots stop counting as active.
local dead = redis.call('ZRANGEBYSCORE', KEYS[7], '-inf', now)
local unclaimed = 0
for _, id in ipairs(dead) do
  local slots = tonumber(redis.call('HGET', KEYS[6], id .. ':u') or '0')
  active = active - slots
  unclaimed = unclaimed + slots
  redis.call('HDEL', KEYS[6], id .. ':u', id .. ':s', id .. ':d')
  redis.call('ZREM', KEYS[4], id)
  redis.call('ZREM', KEYS[5], id)
  redis.call('ZREM', KEYS[7], id)
end
-- Claimed admission tokens that expired unused.
local gone = redis.call('ZREMRANGEBYSCORE', KEYS[8], '-inf', now)
active = active - gone
-- No-shows, for the operator: admissions that ended unused, claimed or not.
if gone + unclaimed > 0 then redis.call('HINCRBY', S, 'noshow', gone + unclaimed) end
if active < 0 then active = 0 end

local starts = tonumber(ARGV[6])
if num('sealed') ~= 1 and now >= starts then
  redis.call('HSET', S, 'sealed', 1, 'P', redis.call('ZCARD', KEYS[2]),
    'BP', redis.call('ZCARD', KEYS[3]))
end
local sealed = num('sealed') == 1

local primed = redis.call('EXISTS', KEYS[10]) == 1
local free = -1
if primed then free = redis.call('SCARD', KEYS[9]) end

local sm, sb = num('sm'), num('sb')
local main_tail, back_tail
if sealed then
  main_tail = num('P') + num('mpost')
  back_tail = num('BP') + num('bpost')
else
  main_tail = redis.call('ZCARD', KEYS[2])
  back_tail = redis.call('ZCARD', KEYS[3])
end
local waiting = (main_tail - sm) + (back_tail - sb)

local last = tonumber(redis.call('HGET', S, 'last') or tostring(now))
local elapsed = now - last
if elapsed < 0 then elapsed = 0 end
if elapsed > tonumber(ARGV[8]) then elapsed = tonumber(ARGV[8]) end

local phase = 'waiting'
local k = 0
local carry = num('carry')
if ARGV[7] == '1' then
  phase = 'closed'
  carry = 0
elseif not sealed then
  phase = 'scheduled'
  carry = 0
elseif free == 0 then
  phase = 'sold_out'
  carry = 0
elseif not primed then
  phase = 'live'
  carry = 0
else
  phase = 'live'
  -- Credit in thousandths of a shopper, so any rate is kept exactly over time.
  local credit = carry + tonumber(ARGV[1]) * elapsed
  local due = math.floor(credit / 1000)
  k = due
  local cap = tonumber(ARGV[2]) - active
  if cap < k then k = cap end
  local budget = math.floor((free + tonumber(ARGV[3])) * tonumber(ARGV[4]) / 100) - active
  if budget < k then k = budget end
  if waiting < k then k = waiting end
  if k < 0 then k = 0 end
  if k < due then
    carry = credit % 1000  -- capped or empty: no credit is banked for later
  else
    carry = credit - k * 1000
  end
end

if k > 0 then
  local deadline = now + tonumber(ARGV[5])
  local a = math.min(k, main_tail - sm)
  local b = k - a
  if a > 0 then
    local id = redis.call('HINCRBY', S, 'bid', 1)
    redis.call('ZADD', KEYS[4], sm + a, id)
    redis.call('HSET', KEYS[6], id .. ':s', sm + 1, id .. ':u', a, id .. ':d', deadline)
    redis.call('ZADD', KEYS[7], deadline, id)
    sm = sm + a
  end
  if b > 0 then
    local id = redis.call('HINCRBY', S, 'bid', 1)
    redis.call('ZADD', KEYS[5], sb + b, id)
    redis.call('HSET', KEYS[6], id .. ':s', sb + 1, id .. ':u', b, id .. ':d', deadline)
    redis.call('ZADD', KEYS[7], deadline, id)
    sb = sb + b
  end
  active = active + k
end

-- The admission rate the wait estimates use (per second; see estimates.py). Measured only
-- over the time someone was left waiting: an empty queue says nothing about the pace,
-- while a room held up by admitted shoppers who have not bought yet does. Smoothed (time
-- constant 20 s, at most 5 % a second) and kept between the floor (every admitted slot
-- frees within one admission window: max active / window) and the configured rate.
local configured = tonumber(ARGV[1])
local floor = tonumber(ARGV[2]) * 1000 / tonumber(ARGV[5])
if floor > configured then floor = configured end
local rate = tonumber(redis.call('HGET', S, 'rate') or '-1')
local rate_t = num('rate_t')
local rate_n = num('rate_n')
if phase ~= 'live' then
  rate_t = 0
  rate_n = 0
elseif waiting - k > 0 then
  rate_t = rate_t + elapsed
  rate_n = rate_n + k
end
if rate_t >= 1000 then
  local target = rate_n * 1000 / rate_t
  if target > configured then target = configured end
  if rate < 0 or rate ~= rate then rate = configured end
  local smoothed = rate + (1 - math.exp(-rate_t / 20000)) * (target - rate)
  local step = 0.05 * rate_t / 1000
  if smoothed < rate * (1 - step) then smoothed = rate * (1 - step) end
  if smoothed > rate * (1 + step) then smoothed = rate * (1 + step) end
  rate = smoothed
  rate_t = 0
  rate_n = 0
end
if rate >= 0 then
  if rate < floor then rate = floor end
  if rate > configured then rate = configured end
end

redis.call('HSET', S, 'sm', sm, 'sb', sb, 'active', active, 'carry', carry, 'last', now,
  'rate', tostring(rate), 'rate_t', rate_t, 'rate_n', rate_n, 'phase', phase)
return {sm + sb, k, active, free, waiting - k, tostring(math.floor(rate * 1000)), phase}

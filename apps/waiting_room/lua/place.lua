-- Join the waiting room of one sale, or read (and, when admitted, claim) a shopper's place.
-- KEYS: 1 state (hash), 2 pre (zset, main lane before the start: user -> random score),
--       3 post (hash, main lane after the start: user -> lane rank), 4 back-pre (zset),
--       5 back-post (hash), 6 claims (hash user -> "jti|exp_ms|c or d"),
--       7 live (zset user -> token expiry ms), 8 main batches (zset end rank -> id),
--       9 back batches (zset), 10 batch meta (hash), 11 free units (set), 12 primed marker,
--       13 requeued (hash user -> main-lane ticket of a shopper who missed their turn),
--       14 the sale's buyers (inventory hash user -> units held)
-- ARGV: 1 mode (join|claim|peek), 2 user, 3 opens ms, 4 starts ms, 5 ends ms,
--       6 back of queue (0/1), 7 random score in [0, 1), 8 jti for a new claim,
--       9 admission token ms, 10 sale closed (0/1), 11 max units per shopper
-- Returns {code, public rank (0 = drawn at the start), now serving, measured rate,
--          pre-start joiners so far (while the draw is pending), ...}:
--   CLOSED opens_ms | NOT_IN_QUEUE | ENDED | WAITING rank serving | READY rank serving jti exp
--   | ADMITTED rank serving (peek only) | EXPIRED rank serving [order units_held]
--   | USED rank serving order units_held | SOLD_OUT rank serving
local mode, user = ARGV[1], ARGV[2]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local function num(field)
  return tonumber(redis.call('HGET', KEYS[1], field) or '0')
end

local function seal()
  -- The order of everyone who joined before the start is fixed from here on.
  redis.call('HSET', KEYS[1], 'sealed', 1, 'P', redis.call('ZCARD', KEYS[2]),
    'BP', redis.call('ZCARD', KEYS[4]))
end

local function place()
  local requeued = redis.call('HGET', KEYS[13], user)
  if requeued then return 'm', tonumber(requeued) end
  local r = redis.call('ZRANK', KEYS[2], user)
  if r then return 'm', r + 1 end
  local ticket = redis.call('HGET', KEYS[3], user)
  if ticket then return 'm', tonumber(ticket) end
  r = redis.call('ZRANK', KEYS[4], user)
  if r then return 'b', r + 1 end
  ticket = redis.call('HGET', KEYS[5], user)
  if ticket then return 'b', tonumber(ticket) end
  return nil, nil
end

if ARGV[10] == '1' or now >= tonumber(ARGV[5]) then
  return {'ENDED'}
end

local sealed = num('sealed') == 1
if not sealed and now >= tonumber(ARGV[4]) then
  seal()
  sealed = true
end

local lane, r = place()
if not lane then
  if mode ~= 'join' then
    return {'NOT_IN_QUEUE'}
  end
  if now < tonumber(ARGV[3]) then
    return {'CLOSED', tostring(ARGV[3])}
  end
  local back = ARGV[6] == '1'
  if not sealed then
    redis.call('ZADD', KEYS[back and 4 or 2], ARGV[7], user)
  elseif back then
    redis.call('HSET', KEYS[5], user, num('BP') + redis.call('HINCRBY', KEYS[1], 'bpost', 1))
  else
    redis.call('HSET', KEYS[3], user, num('P') + redis.call('HINCRBY', KEYS[1], 'mpost', 1))
  end
  lane, r = place()
end

local sm, sb = num('sm'), num('sb')
local serving = sm + sb
local rank
local drawing = 0
local function public_rank()
  if not sealed then
    -- Joined before the start: the place is drawn at the start (rank 0 until then).
    rank = 0
    drawing = redis.call('ZCARD', KEYS[2]) + redis.call('ZCARD', KEYS[4])
  elseif lane == 'm' then
    rank = r + sb
  else
    rank = num('P') + num('mpost') + r
  end
end
public_rank()
local rate = redis.call('HGET', KEYS[1], 'rate') or '-1'
local function reply(code, ...)
  return {code, tostring(rank), tostring(serving), rate, tostring(drawing), ...}
end
-- A shopper who missed their turn (admission unclaimed or unused until it expired), or
-- whose purchase ended unpaid, and joins again goes to the back of the queue with a new
-- ticket; a read just says expired.
local function expired(order, held)
  if mode ~= 'join' then
    if order then return reply('EXPIRED', order, tostring(held)) end
    return reply('EXPIRED')
  end
  local ticket = num('P') + redis.call('HINCRBY', KEYS[1], 'mpost', 1)
  redis.call('HSET', KEYS[13], user, ticket)
  redis.call('HDEL', KEYS[6], user)
  lane, r = 'm', ticket
  public_rank()
  return reply('WAITING')
end

local claim = redis.call('HGET', KEYS[6], user)
if claim then
  local jti, exp, st = string.match(claim, '([^|]*)|([^|]*)|([^|]*)')
  if st == 'd' then
    -- The admission bought. While the shopper holds the most units allowed (reserved or
    -- paid) they cannot queue again; once an order ended unpaid (cancelled, expired) its
    -- units left their tally, and they may queue again at the back like anyone.
    local order = string.match(claim, '^[^|]*|[^|]*|d|(.+)$') or ''
    local held = tonumber(redis.call('HGET', KEYS[14], user) or '0')
    if held < tonumber(ARGV[11]) then return expired(order, held) end
    return reply('USED', order, tostring(held))
  end
  if tonumber(exp) <= now then return expired() end
end
if redis.call('EXISTS', KEYS[12]) == 1 and redis.call('SCARD', KEYS[11]) == 0 then
  return reply('SOLD_OUT')
end
if claim then
  local jti, exp = string.match(claim, '([^|]*)|([^|]*)|')
  return reply('READY', jti, exp)
end

local served
if lane == 'm' then served = sm >= r else served = sb >= r end
if not served then
  return reply('WAITING')
end
-- Admitted: find the release batch holding this lane rank; its window may have closed.
local batches = KEYS[lane == 'm' and 8 or 9]
local found = redis.call('ZRANGEBYSCORE', batches, r, '+inf', 'LIMIT', 0, 1)
local id = found[1]
if not id then return expired() end
local first = tonumber(redis.call('HGET', KEYS[10], id .. ':s') or '0')
local deadline = tonumber(redis.call('HGET', KEYS[10], id .. ':d') or '0')
if first == 0 or first > r or deadline <= now then
  return expired()
end
if mode == 'peek' then
  return reply('ADMITTED')
end
-- Claim: the slot leaves the batch's unclaimed count and is tracked by its token expiry.
local exp = now + tonumber(ARGV[9])
redis.call('HINCRBY', KEYS[10], id .. ':u', -1)
redis.call('HSET', KEYS[6], user, ARGV[8] .. '|' .. exp .. '|c')
redis.call('ZADD', KEYS[7], exp, user)
return reply('READY', ARGV[8], tostring(exp))

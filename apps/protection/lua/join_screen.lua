-- The bot screen of one waiting-room join, decided in Redis: the account signals, the
-- honeypot, the proof of work's one use and the verdict. The waiting room runs it inside
-- the join's own script (one round trip for screen and place; see
-- apps/waiting_room/screening.py); join_screen runs it alone.
-- KEYS (all under the sale's hash tag): 1 accounts per IP (set), 2 join times per IP
--       (list), 3 accounts per device (set; untouched without a device),
--       4 the shopper's flag marker, 5 the spent challenge (untouched without one),
--       6 the sale's flags waiting to be recorded (list of JSON, drained by a task)
-- ARGV: 1 user, 2 now (epoch seconds, text), 3 window seconds, 4 has a device (0/1),
--       5 accounts per IP allowed, 6 accounts per device allowed, 7 score so far (from the
--       request alone), 8 threshold, 9 policy (refuse|back_of_queue|off), 10 honeypot (0/1),
--       11 spent challenge seconds (0: no proof of work to spend), 12 flag marker seconds,
--       13-15 weights of many_accounts_per_ip, many_accounts_per_device, regular_timing,
--       16 ip, 17 sale id, 18... the reasons so far
-- Returns {verdict, score, reason...}; verdict: ok | back (a suspect let in at the back of
-- the queue) | refuse (a suspect) | honeypot | pow_replayed. Only ok and back may be placed.
local user, now, window = ARGV[1], ARGV[2], tonumber(ARGV[3])
local score = tonumber(ARGV[7])
local reasons = {}
for i = 18, #ARGV do reasons[#reasons + 1] = ARGV[i] end
local function add(reason, weight)
  reasons[#reasons + 1] = reason
  score = math.min(100, score + tonumber(weight))
end

-- Six or more joins from one IP whose gaps vary by under 5 %: a loop with a sleep, not people.
local function regular(times)
  if #times < 6 then return false end
  local t = {}
  for i, v in ipairs(times) do t[i] = tonumber(v) end
  table.sort(t)
  local n = #t - 1
  local sum = 0
  for i = 1, n do sum = sum + (t[i + 1] - t[i]) end
  local mean = sum / n
  if mean <= 0 or mean > 30 then return mean <= 0 end
  local squares = 0
  for i = 1, n do
    local d = t[i + 1] - t[i] - mean
    squares = squares + d * d
  end
  return math.sqrt(squares / n) / mean < 0.05
end

-- The accounts seen from one address (or device), exactly, up to one more than allowed:
-- the set stops growing there, so an address shared by thousands costs a few members, and
-- counting is O(1) (a HyperLogLog's PFCOUNT recounts 16,384 registers after each change).
local function too_many(accounts, allowed)
  if redis.call('SCARD', accounts) <= allowed then redis.call('SADD', accounts, user) end
  redis.call('EXPIRE', accounts, window)
  return redis.call('SCARD', accounts) > allowed
end

local many_per_ip = too_many(KEYS[1], tonumber(ARGV[5]))
redis.call('LPUSH', KEYS[2], now)
redis.call('LTRIM', KEYS[2], 0, 7)
local times = redis.call('LRANGE', KEYS[2], 0, 7)
redis.call('EXPIRE', KEYS[2], window)
local many_per_device = ARGV[4] == '1' and too_many(KEYS[3], tonumber(ARGV[6]))
if many_per_ip then add('many_accounts_per_ip', ARGV[13]) end
if many_per_device then add('many_accounts_per_device', ARGV[14]) end
if regular(times) then add('regular_timing', ARGV[15]) end

-- A suspect's flag is recorded once per shopper and sale a minute: queued here, written to
-- PostgreSQL in batches by protection.record_flags (no broker, no database on this path).
local function flag()
  if redis.call('SET', KEYS[4], 1, 'NX', 'EX', ARGV[12]) then
    redis.call('RPUSH', KEYS[6], cjson.encode({
      user_id = tonumber(user), ip = ARGV[16], sale_id = ARGV[17], score = score,
      reasons = reasons,
    }))
    redis.call('EXPIRE', KEYS[6], 86400)
  end
end

local function answer(verdict)
  local reply = {verdict, tostring(score)}
  for _, reason in ipairs(reasons) do reply[#reply + 1] = reason end
  return reply
end

if ARGV[10] == '1' then
  flag()
  return answer('honeypot')
end
local spent_seconds = tonumber(ARGV[11])
if spent_seconds > 0 and not redis.call('SET', KEYS[5], 1, 'NX', 'EX', spent_seconds) then
  return answer('pow_replayed')
end
if score < tonumber(ARGV[8]) then return answer('ok') end
flag()
if ARGV[9] == 'refuse' then return answer('refuse') end
if ARGV[9] == 'back_of_queue' then return answer('back') end
return answer('ok')

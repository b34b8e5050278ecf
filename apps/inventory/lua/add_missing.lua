-- Reconciliation: put back units PostgreSQL has free that Redis lost, skipping any unit a
-- hold in flight has taken meanwhile.
-- KEYS: 1 free units, 2 pending holds, 3 primed marker, 4 restock marker
-- ARGV: 1 restock delay (ms; 0: none), 2.. unit numbers
if redis.call('EXISTS', KEYS[3]) == 0 then
  return 0
end
local busy = {}
local pending = redis.call('HVALS', KEYS[2])
for i = 1, #pending do
  local units = string.match(pending[i], '^[^|]+|[^|]+|([^|]*)')
  for unit in string.gmatch(units, '[^,]+') do
    busy[unit] = true
  end
end
local was_empty = redis.call('SCARD', KEYS[1]) == 0
local added = 0
for i = 2, #ARGV do
  if not busy[ARGV[i]] then
    added = added + redis.call('SADD', KEYS[1], ARGV[i])
  end
end
if added > 0 and was_empty and tonumber(ARGV[1]) > 0 then
  redis.call('SET', KEYS[4], '1', 'PX', tonumber(ARGV[1]))  -- see reserve.lua
end
return added

-- Reconciliation: put back units PostgreSQL has free that Redis lost, skipping any unit a
-- hold in flight has taken meanwhile.
-- KEYS: 1 free units, 2 pending holds, 3 primed marker
-- ARGV: unit numbers
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
local added = 0
for i = 1, #ARGV do
  if not busy[ARGV[i]] then
    added = added + redis.call('SADD', KEYS[1], ARGV[i])
  end
end
return added

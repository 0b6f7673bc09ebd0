-- The relay's fenced, idempotent append of one batch of feed events (fastsse/redis/relay.py).
-- Atomic in Redis: the entries and the checkpoint move together, or nothing changes.
--
-- KEYS: the stream, the lease, the checkpoint (one hash slot, so this runs on a cluster too).
-- ARGV: the lease token, maxlen (0: none), the checkpoint the batch starts from, the id of the
--       batch's last event, then per event its field count (2 per field) and its fields.
-- Returns the number of entries appended, or -1 when the checkpoint already is the batch's
-- last id: the batch is in (a call retried after its reply was lost), nothing is appended.
if redis.call('GET', KEYS[2]) ~= ARGV[1] then
  return redis.error_reply('FENCED this relay does not hold the lease')
end
local current = redis.call('GET', KEYS[3])
if current == false then current = '' end
if current ~= ARGV[3] then
  -- The relay never sends a batch whose last id is its start (ids only move forward).
  if current == ARGV[4] then return -1 end
  return redis.error_reply('STALE the checkpoint moved since this relay read it')
end
local maxlen = tonumber(ARGV[2])
local i = 5
local appended = 0
while i <= #ARGV do
  local count = tonumber(ARGV[i])
  local args = {KEYS[1]}
  if maxlen > 0 then
    args[#args + 1] = 'MAXLEN'
    args[#args + 1] = '~'
    args[#args + 1] = maxlen
  end
  args[#args + 1] = '*'
  for j = i + 1, i + count do args[#args + 1] = ARGV[j] end
  redis.call('XADD', unpack(args))
  i = i + count + 1
  appended = appended + 1
end
redis.call('SET', KEYS[3], ARGV[4])
return appended

-- claim: node ARGV[3] claims room ARGV[2] before opening it. ARGV: lease ms, retention
-- ms, player capacity. Exactly one of any number of racing claims wins: the room's
-- epoch goes up by one and the winner gets the last checkpoint, read in the same step,
-- so no write of an older owner can land after it.
-- Returns {'won', epoch, checkpoint or nil, its epoch, its time}, {'held', epoch} (the
-- claimant already owns it), {'owned'|'pending', node, url} (served elsewhere),
-- {'unregistered'} or {'draining'}.
local room, node = ARGV[2], ARGV[3]
local lease, retention, capacity = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local now = now_ms()
local me = redis.call('HMGET', k_node(node), 'url', 'draining')
if not me[1] then return {'unregistered'} end
if me[2] == '1' then return {'draining'} end
local r = room_get(room)
if r then
  local host, how = room_host(r, now)
  if host == node and how == 'owned' then return {'held', r.epoch} end
  if host and host ~= node then
    return {how, host, redis.call('HGET', k_node(host), 'url') or ''}
  end
end
local epoch = (r and r.epoch or 0) + 1
redis.call('HSET', k_room(room), 'epoch', epoch, 'owner', node, 'lease_until', now + lease,
  'capacity', capacity)
redis.call('HDEL', k_room(room), 'pending_node', 'pending_until')
room_keep(room, now, retention)
redis.call('INCR', K_VERSION)
return {'won', epoch, redis.call('GET', k_ckpt(room)), r and r.ckpt_epoch or 0,
  r and r.ckpt_at or 0}

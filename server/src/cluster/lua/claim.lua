-- claim: node ARGV[4] claims room ARGV[3] before opening it. ARGV: lease ms, retention
-- ms, player capacity, the claiming process (it must be the node's registered one).
-- Exactly one of any number of racing claims wins: the room's epoch goes up by one and
-- the winner gets the last checkpoint, read in the same step, so no write of an older
-- owner can land after it.
-- Returns {'won'|'held', epoch, checkpoint or nil, its epoch, its time} ('held': the
-- claimant already owns it under a live lease, at that epoch), {'owned'|'pending', node,
-- url} (served elsewhere), {'unregistered'} or {'draining'}.
local room, node, instance = ARGV[3], ARGV[4], ARGV[8]
local lease, retention, capacity = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local now = now_ms()
if late(now) then return {'late', now} end
local me = redis.call('HMGET', k_node(node), 'instance', 'draining')
if me[1] ~= instance then return {'unregistered'} end
if me[2] == '1' then return {'draining'} end
local r = room_get(room)
if r then
  local host, how = room_host(r, now)
  if host == node and how == 'owned' then
    return {'held', r.epoch, redis.call('GET', k_ckpt(room)), r.ckpt_epoch, r.ckpt_at}
  end
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

-- reserve: holds a seat in room ARGV[3] for account ARGV[4] for ARGV[5] ms. When nobody
-- serves the room and ARGV[6] names a node, the room is placed on that node first (it
-- opens the room when the player arrives), with ARGV[7] seats; a placement may require
-- the directory version to still be ARGV[8] (-1: any), so matchers deciding on the same
-- snapshot cannot each open a new room. ARGV[9]: retention ms.
-- Seats taken = members + live reservations; never more than the room's capacity.
-- Returns {'ok', room, node, url, resume (0/1)}, {'full'}, {'gone'} (nobody serves the
-- room and no placement was asked), {'stale'} or {'node_gone'}.
local room, account, ttl = ARGV[3], ARGV[4], tonumber(ARGV[5])
local place_node, place_capacity = ARGV[6], tonumber(ARGV[7])
local expect, retention = tonumber(ARGV[8]), tonumber(ARGV[9])
local now = now_ms()
if late(now) then return {'late', now} end
local r = room_get(room)
local host, how = nil, nil
if r then host, how = room_host(r, now) end
if not host then
  if place_node == '' then return {'gone'} end
  if expect >= 0 and num(redis.call('GET', K_VERSION)) ~= expect then return {'stale'} end
  local n = redis.call('HMGET', k_node(place_node), 'url', 'draining')
  if not n[1] or n[2] == '1' then return {'node_gone'} end
  if not r then redis.call('HSET', k_room(room), 'epoch', 0, 'owner', '', 'lease_until', 0) end
  if not r or r.capacity == 0 then redis.call('HSET', k_room(room), 'capacity', place_capacity) end
  redis.call('HSET', k_room(room), 'pending_node', place_node, 'pending_until', now + ttl)
  room_keep(room, now, retention)
  r = room_get(room)
  host, how = place_node, 'pending'
end
local url = redis.call('HGET', k_node(host), 'url')
if not url then return {'node_gone'} end
if redis.call('SISMEMBER', k_members(room), account) == 1 then
  return {'ok', room, host, url, 1}
end
redis.call('ZREMRANGEBYSCORE', k_resv(room), '-inf', now)
if not redis.call('ZSCORE', k_resv(room), account) then
  local taken = redis.call('SCARD', k_members(room)) + redis.call('ZCARD', k_resv(room))
  if taken >= r.capacity then return {'full'} end
end
redis.call('ZADD', k_resv(room), now + ttl, account)
redis.call('PEXPIRE', k_resv(room), ttl)
-- The account now points here, unless it has a player elsewhere; a seat it held in
-- another room is given back.
local current = redis.call('GET', k_acct(account))
if not current or current == room
    or redis.call('SISMEMBER', k_members(current), account) == 0 then
  if current and current ~= room then redis.call('ZREM', k_resv(current), account) end
  redis.call('SET', k_acct(account), room, 'PX', ttl)
end
if how == 'pending' then
  redis.call('HSET', k_room(room), 'pending_until', math.max(r.pending_until, now + ttl))
end
redis.call('INCR', K_VERSION)
return {'ok', room, host, url, 0}

-- heartbeat: registers or renews node ARGV[3] (process ARGV[4]) and renews each room it
-- holds. ARGV: url, room capacity limit, players per room, rooms, players, draining
-- (0/1), lease ms, retention ms, then (room, epoch, capacity) triples.
-- Returns {'in_use'} when another live process holds the id, else
-- {'ok', registered anew (0/1), now, then (outcome, epoch, owner) per room}.
local node, instance = ARGV[3], ARGV[4]
local lease, retention = tonumber(ARGV[11]), tonumber(ARGV[12])
local now = now_ms()
if late(now) then return {'late', now} end
local held = redis.call('HGET', k_node(node), 'instance')
if held and held ~= instance then return {'in_use'} end
redis.call('HSET', k_node(node), 'instance', instance, 'url', ARGV[5], 'capacity', ARGV[6],
  'room_capacity', ARGV[7], 'rooms', ARGV[8], 'players', ARGV[9], 'draining', ARGV[10],
  'renewed', now)
if not held then redis.call('HSET', k_node(node), 'registered', now) end
redis.call('PEXPIRE', k_node(node), lease)
redis.call('ZADD', K_NODES, now + lease, node)
redis.call('ZREMRANGEBYSCORE', K_NODES, '-inf', now)
redis.call('ZREMRANGEBYSCORE', K_ROOMS, '-inf', now)
local out = {'ok', held and 0 or 1, now}
for i = 13, #ARGV, 3 do
  local r = room_renew(ARGV[i], node, tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2]), now,
    lease, retention)
  out[#out + 1] = r[1]
  out[#out + 1] = r[2]
  out[#out + 1] = r[3]
end
return out

-- heartbeat: registers or renews node ARGV[2] (process ARGV[3]) and renews each room it
-- holds. ARGV: url, room capacity limit, players per room, rooms, players, draining
-- (0/1), lease ms, retention ms, then (room, epoch, capacity) triples.
-- Returns {'in_use'} when another live process holds the id, else
-- {'ok', registered anew (0/1), now, then (outcome, epoch, owner) per room}.
local node, instance = ARGV[2], ARGV[3]
local lease, retention = tonumber(ARGV[10]), tonumber(ARGV[11])
local now = now_ms()
local held = redis.call('HGET', k_node(node), 'instance')
if held and held ~= instance then return {'in_use'} end
redis.call('HSET', k_node(node), 'instance', instance, 'url', ARGV[4], 'capacity', ARGV[5],
  'room_capacity', ARGV[6], 'rooms', ARGV[7], 'players', ARGV[8], 'draining', ARGV[9],
  'renewed', now)
if not held then redis.call('HSET', k_node(node), 'registered', now) end
redis.call('PEXPIRE', k_node(node), lease)
redis.call('ZADD', K_NODES, now + lease, node)
redis.call('ZREMRANGEBYSCORE', K_NODES, '-inf', now)
redis.call('ZREMRANGEBYSCORE', K_ROOMS, '-inf', now)
local out = {'ok', held and 0 or 1, now}
for i = 12, #ARGV, 3 do
  local r = room_renew(ARGV[i], node, tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2]), now,
    lease, retention)
  out[#out + 1] = r[1]
  out[#out + 1] = r[2]
  out[#out + 1] = r[3]
end
return out

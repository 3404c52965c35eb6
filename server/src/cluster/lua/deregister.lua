-- deregister: hands over every room node ARGV[3] (process ARGV[4]) lists, then removes
-- the node. ARGV: retention ms, then (room, epoch) pairs.
-- Returns {'in_use'} when the id belongs to another process, else {'ok', rooms released}.
local node, instance, retention = ARGV[3], ARGV[4], tonumber(ARGV[5])
local now = now_ms()
if late(now) then return {'late', now} end
local held = redis.call('HGET', k_node(node), 'instance')
if held and held ~= instance then return {'in_use'} end
local released = 0
for i = 6, #ARGV, 2 do
  local r = room_release(ARGV[i], node, tonumber(ARGV[i + 1]), 'handoff', now, retention)
  if r[1] == 'released' then released = released + 1 end
end
redis.call('DEL', k_node(node))
redis.call('ZREM', K_NODES, node)
return {'ok', released}

-- deregister: hands over every room node ARGV[2] (process ARGV[3]) lists, then removes
-- the node. ARGV: retention ms, then (room, epoch) pairs.
-- Returns {'in_use'} when the id belongs to another process, else {'ok', rooms released}.
local node, instance, retention = ARGV[2], ARGV[3], tonumber(ARGV[4])
local held = redis.call('HGET', k_node(node), 'instance')
if held and held ~= instance then return {'in_use'} end
local now = now_ms()
local released = 0
for i = 5, #ARGV, 2 do
  local r = room_release(ARGV[i], node, tonumber(ARGV[i + 1]), 'handoff', now, retention)
  if r[1] == 'released' then released = released + 1 end
end
redis.call('DEL', k_node(node))
redis.call('ZREM', K_NODES, node)
return {'ok', released}

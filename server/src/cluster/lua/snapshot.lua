-- snapshot: the directory as one consistent view, for matchmaking and the admin API.
-- ARGV[3]: an account whose room to look up ('' for none). Returns {now, version,
-- account's room or '', account is a member there (0/1), node count, then per live node
-- (id, url, capacity, room capacity, rooms, players, draining, lease until, registered),
-- room count, then per listed room (name, epoch, owner, lease until, pending node,
-- pending until, capacity, members, live reservations, checkpoint written at)}.
local now = now_ms()
local out = {now, num(redis.call('GET', K_VERSION))}
local room, member = '', 0
if ARGV[3] ~= '' then
  room = redis.call('GET', k_acct(ARGV[3])) or ''
  if room ~= '' then member = redis.call('SISMEMBER', k_members(room), ARGV[3]) end
end
out[#out + 1] = room
out[#out + 1] = member
local nodes = redis.call('ZRANGEBYSCORE', K_NODES, now, '+inf', 'WITHSCORES')
local count_at = #out + 1
out[count_at] = 0
for i = 1, #nodes, 2 do
  local f = redis.call('HMGET', k_node(nodes[i]), 'url', 'capacity', 'room_capacity', 'rooms',
    'players', 'draining', 'registered')
  if f[1] then
    out[count_at] = out[count_at] + 1
    out[#out + 1] = nodes[i]
    out[#out + 1] = f[1]
    out[#out + 1] = num(f[2])
    out[#out + 1] = num(f[3])
    out[#out + 1] = num(f[4])
    out[#out + 1] = num(f[5])
    out[#out + 1] = num(f[6])
    out[#out + 1] = num(nodes[i + 1])
    out[#out + 1] = num(f[7])
  end
end
local rooms = redis.call('ZRANGEBYSCORE', K_ROOMS, now, '+inf')
count_at = #out + 1
out[count_at] = 0
for _, name in ipairs(rooms) do
  local r = room_get(name)
  if r then
    out[count_at] = out[count_at] + 1
    out[#out + 1] = name
    out[#out + 1] = r.epoch
    out[#out + 1] = r.owner
    out[#out + 1] = r.lease_until
    out[#out + 1] = r.pending_node
    out[#out + 1] = r.pending_until
    out[#out + 1] = r.capacity
    out[#out + 1] = redis.call('SCARD', k_members(name))
    out[#out + 1] = redis.call('ZCOUNT', k_resv(name), now, '+inf')
    out[#out + 1] = r.ckpt_at
  end
end
return out

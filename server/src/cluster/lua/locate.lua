-- locate: where room ARGV[3] is served: {state, node, url, epoch, capacity, members,
-- reserved, checkpoint written at}, state 'owned', 'pending', 'orphan' (a record but
-- nobody serving it) or 'none'.
local room = ARGV[3]
local now = now_ms()
local r = room_get(room)
if not r or redis.call('ZSCORE', K_ROOMS, room) == false then return {'none'} end
local host, how = room_host(r, now)
local url = ''
if host then url = redis.call('HGET', k_node(host), 'url') or '' end
return {how or 'orphan', host or '', url, r.epoch, r.capacity,
  redis.call('SCARD', k_members(room)), redis.call('ZCOUNT', k_resv(room), now, '+inf'),
  r.ckpt_at}

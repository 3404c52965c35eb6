-- checkpoint_write: the owner of room ARGV[2] (node ARGV[3], epoch ARGV[4]) stores its
-- checkpoint ARGV[6], kept ARGV[5] ms. Fenced: refused unless that claim is the room's
-- current one. Returns {'written', now}, {'superseded', epoch, owner} or {'unclaimed'}
-- (no record, or an older one: Redis lost data and the next heartbeat re-takes it).
local room, node, epoch = ARGV[2], ARGV[3], tonumber(ARGV[4])
local r = room_get(room)
if not r or r.epoch < epoch then return {'unclaimed'} end
if r.epoch ~= epoch or r.owner ~= node then return {'superseded', r.epoch, r.owner} end
local now = now_ms()
redis.call('SET', k_ckpt(room), ARGV[6], 'PX', tonumber(ARGV[5]))
redis.call('HSET', k_room(room), 'ckpt_epoch', epoch, 'ckpt_at', now,
  'ckpt_bytes', string.len(ARGV[6]))
return {'written', now}

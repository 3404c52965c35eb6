-- checkpoint_write: the owner of room ARGV[3] (node ARGV[4], epoch ARGV[5]) stores its
-- checkpoint ARGV[7], kept ARGV[6] ms. Fenced: refused unless that claim is the room's
-- current one. Returns {'written', now}, {'superseded', epoch, owner} or {'unclaimed'}
-- (no record, or an older one: Redis lost data and the next heartbeat re-takes it).
local room, node, epoch = ARGV[3], ARGV[4], tonumber(ARGV[5])
local now = now_ms()
if late(now) then return {'late', now} end
local r = room_get(room)
if not r or r.epoch < epoch then return {'unclaimed'} end
if r.epoch ~= epoch or r.owner ~= node then return {'superseded', r.epoch, r.owner} end
redis.call('SET', k_ckpt(room), ARGV[7], 'PX', tonumber(ARGV[6]))
redis.call('HSET', k_room(room), 'ckpt_epoch', epoch, 'ckpt_at', now,
  'ckpt_bytes', string.len(ARGV[7]))
return {'written', now}

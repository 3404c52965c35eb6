-- checkpoint_read: room ARGV[2]'s last checkpoint: {bytes or nil, epoch, written at}.
local r = room_get(ARGV[2])
if not r then return {false, 0, 0} end
return {redis.call('GET', k_ckpt(ARGV[2])), r.ckpt_epoch, r.ckpt_at}

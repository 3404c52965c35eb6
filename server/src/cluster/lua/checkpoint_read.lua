-- checkpoint_read: room ARGV[3]'s last checkpoint: {bytes or nil, epoch, written at}.
local r = room_get(ARGV[3])
if not r then return {false, 0, 0} end
return {redis.call('GET', k_ckpt(ARGV[3])), r.ckpt_epoch, r.ckpt_at}

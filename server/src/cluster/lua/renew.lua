-- renew: node ARGV[4] renews its claim on room ARGV[3] outside the heartbeat.
-- ARGV: epoch, capacity, lease ms, retention ms. Returns {outcome, epoch, owner}.
local now = now_ms()
if late(now) then return {'late', now} end
return room_renew(ARGV[3], ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6]), now,
  tonumber(ARGV[7]), tonumber(ARGV[8]))

-- renew: node ARGV[3] renews its claim on room ARGV[2] outside the heartbeat.
-- ARGV: epoch, capacity, lease ms, retention ms. Returns {outcome, epoch, owner}.
local now = now_ms()
return room_renew(ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5]), now,
  tonumber(ARGV[6]), tonumber(ARGV[7]))

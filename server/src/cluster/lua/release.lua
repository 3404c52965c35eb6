-- release: node ARGV[4] ends its claim on room ARGV[3]. ARGV: epoch, mode ('handoff' or
-- 'close'), retention ms. Returns {'released'} or {'not_owner', epoch, owner}.
local now = now_ms()
if late(now) then return {'late', now} end
return room_release(ARGV[3], ARGV[4], tonumber(ARGV[5]), ARGV[6], now, tonumber(ARGV[7]))

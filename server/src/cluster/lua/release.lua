-- release: node ARGV[3] ends its claim on room ARGV[2]. ARGV: epoch, mode ('handoff' or
-- 'close'), retention ms. Returns {'released'} or {'not_owner', epoch, owner}.
return room_release(ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5], now_ms(), tonumber(ARGV[6]))

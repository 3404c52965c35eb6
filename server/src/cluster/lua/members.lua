-- members: the owner of room ARGV[3] (node ARGV[4], epoch ARGV[5]) records who has a
-- player in it. ARGV: op ('join', 'leave' or 'sync': the list replaces the members),
-- retention ms, then accounts. A join consumes the account's reservation and points the
-- account at the room (that is how `/match` finds a returning player).
-- Returns {'ok'}, {'superseded', epoch, owner} or {'unclaimed'}.
local room, node, epoch, op = ARGV[3], ARGV[4], tonumber(ARGV[5]), ARGV[6]
local retention = tonumber(ARGV[7])
local now = now_ms()
if late(now) then return {'late', now} end
local r = room_get(room)
if not r or r.epoch < epoch then return {'unclaimed'} end
if r.epoch ~= epoch or r.owner ~= node then return {'superseded', r.epoch, r.owner} end
if op == 'sync' then
  local keep = {}
  for i = 8, #ARGV do keep[ARGV[i]] = true end
  for _, account in ipairs(redis.call('SMEMBERS', k_members(room))) do
    if not keep[account] and redis.call('GET', k_acct(account)) == room then
      redis.call('DEL', k_acct(account))
    end
  end
  redis.call('DEL', k_members(room))
end
for i = 8, #ARGV do
  local account = ARGV[i]
  if op == 'leave' then
    redis.call('SREM', k_members(room), account)
    if redis.call('GET', k_acct(account)) == room then redis.call('DEL', k_acct(account)) end
  else
    redis.call('SADD', k_members(room), account)
    redis.call('ZREM', k_resv(room), account)
    redis.call('SET', k_acct(account), room, 'PX', retention)
  end
end
redis.call('PEXPIRE', k_members(room), retention)
redis.call('INCR', K_VERSION)
return {'ok'}

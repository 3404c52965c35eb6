-- Prepended to every directory script: the key schema, the clock, and the room rules
-- more than one script applies. ARGV[1] is the key prefix, ARGV[2] the caller's deadline;
-- a script's own arguments start at ARGV[3]. Scripts run atomically: nothing here can
-- interleave with another node's call.
local P = ARGV[1]
local DEADLINE = tonumber(ARGV[2]) or 0
local K_NODES = P .. ':nodes'
local K_ROOMS = P .. ':rooms'
local K_VERSION = P .. ':version'
local function k_node(id) return P .. ':node:' .. id end
local function k_room(name) return P .. ':room:' .. name end
local function k_members(name) return P .. ':members:' .. name end
local function k_resv(name) return P .. ':resv:' .. name end
local function k_ckpt(name) return P .. ':ckpt:' .. name end
local function k_acct(account) return P .. ':acct:' .. account end

-- Milliseconds on the Redis clock. Every lease is measured on it, never on a node's.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function num(v) return tonumber(v) or 0 end

-- A call that reaches Redis after its deadline (on the Redis clock; 0: none) was held up
-- on the way, in a network that healed later or a Redis that was frozen: its caller has
-- counted it as failed, so it must not change anything. The reply is {'late', now}.
local function late(now) return DEADLINE > 0 and now > DEADLINE end

-- A room record, or nil when there is none. `epoch` is set whenever the record exists.
local function room_get(name)
  local f = redis.call('HMGET', k_room(name), 'epoch', 'owner', 'lease_until',
    'pending_node', 'pending_until', 'capacity', 'ckpt_epoch', 'ckpt_at')
  if not f[1] then return nil end
  return {
    epoch = num(f[1]), owner = f[2] or '', lease_until = num(f[3]),
    pending_node = f[4] or '', pending_until = num(f[5]), capacity = num(f[6]),
    ckpt_epoch = num(f[7]), ckpt_at = num(f[8]),
  }
end

-- Who serves a room now: its owner under a live lease ('owned'), else the node a
-- matchmaker placed it on, until that placement lapses ('pending').
local function room_host(r, now)
  if r.owner ~= '' and r.lease_until > now then return r.owner, 'owned' end
  if r.pending_node ~= '' and r.pending_until > now then return r.pending_node, 'pending' end
  return nil, nil
end

-- Keeps a room's record, members and checkpoint for `retention` from now, listed in
-- the room index. Members' account keys are refreshed every half retention, not on
-- every renewal.
local function room_keep(name, now, retention)
  redis.call('PEXPIRE', k_room(name), retention)
  redis.call('PEXPIRE', k_members(name), retention)
  redis.call('PEXPIRE', k_ckpt(name), retention)
  redis.call('ZADD', K_ROOMS, now + retention, name)
  local kept = num(redis.call('HGET', k_room(name), 'acct_kept'))
  if now - kept > retention / 2 then
    for _, account in ipairs(redis.call('SMEMBERS', k_members(name))) do
      if redis.call('GET', k_acct(account)) == name then
        redis.call('PEXPIRE', k_acct(account), retention)
      end
    end
    redis.call('HSET', k_room(name), 'acct_kept', now)
  end
end

-- Renews the claim `epoch` of `node` on a room; re-takes it when the lease lapsed or the
-- record is gone or older (Redis lost data) and nobody claimed it since. A higher epoch,
-- or the same epoch no longer owned by `node` (released, or granted twice after a data
-- loss), means the claim is lost. Returns {outcome, epoch, owner}.
local function room_renew(name, node, epoch, capacity, now, lease, retention)
  local r = room_get(name)
  if r and (r.epoch > epoch or (r.epoch == epoch and r.owner ~= node)) then
    return {'lost', r.epoch, r.owner}
  end
  local outcome = 'renewed'
  if not r or r.epoch < epoch or r.lease_until <= now then outcome = 'reacquired' end
  redis.call('HSET', k_room(name), 'epoch', epoch, 'owner', node,
    'lease_until', now + lease, 'capacity', capacity)
  redis.call('HDEL', k_room(name), 'pending_node', 'pending_until')
  room_keep(name, now, retention)
  return {outcome, epoch, node}
end

-- Ends `node`'s claim `epoch` on a room. 'handoff' keeps everything a reopening needs
-- (epoch, members, checkpoint); 'close' ends the room: members, reservations, account
-- keys and checkpoint go, and only the epoch stays for `retention`, so no older claim
-- can come back. Returns {'released'} or {'not_owner', epoch, owner}.
local function room_release(name, node, epoch, mode, now, retention)
  local r = room_get(name)
  if not r or r.epoch ~= epoch or r.owner ~= node then
    return {'not_owner', r and r.epoch or 0, r and r.owner or ''}
  end
  redis.call('HSET', k_room(name), 'owner', '', 'lease_until', 0)
  redis.call('HDEL', k_room(name), 'pending_node', 'pending_until')
  if mode == 'close' then
    local accounts = redis.call('SMEMBERS', k_members(name))
    for _, account in ipairs(redis.call('ZRANGE', k_resv(name), 0, -1)) do
      accounts[#accounts + 1] = account
    end
    for _, account in ipairs(accounts) do
      if redis.call('GET', k_acct(account)) == name then redis.call('DEL', k_acct(account)) end
    end
    redis.call('DEL', k_members(name), k_resv(name), k_ckpt(name))
    redis.call('HDEL', k_room(name), 'ckpt_epoch', 'ckpt_at', 'ckpt_bytes', 'capacity')
    redis.call('ZREM', K_ROOMS, name)
    redis.call('PEXPIRE', k_room(name), retention)
  else
    room_keep(name, now, retention)
  end
  redis.call('INCR', K_VERSION)
  return {'released'}
end

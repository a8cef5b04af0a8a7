// The slot lease exchange, one Lua script run atomically by Redis. An instance calls it
// with everything it has to say at once (leases to release, leases to renew, its unmet
// demand per priority class) and gets back the leases granted to it, so a busy instance
// makes one round trip per batch, not one per request.
//
// Data, per backend (KEYS):
//   KEYS[1]        hash   demand: "<instance>|<rank>" -> "<count>|<since_ms>|<expires_ms>"
//   KEYS[2]        zset   instances: instance id scored by expiry (for /status)
//   KEYS[3..2+n]   zset   leases of backend server i: lease id scored by its expiry
// Time is Redis's own (TIME), so instances' clocks never matter.
//
// Contract:
// - A lease counts against its server until released or expired. Expired leases (a dead or
//   partitioned instance's) are removed before anything is granted: they come back within
//   lease_ttl of their last renewal.
// - A free slot goes to the caller only after every other instance's live demand that is
//   more urgent (lower rank, or the same rank waiting longer) has been counted: priority and
//   FIFO hold across instances at the granularity of one demand entry per instance and class.
// - Leases in use are renewed unconditionally, even above the limit: they are running in the
//   backend, and counting them is what keeps new grants down (after a Redis restart, say).
//   Idle leases are renewed only if they still exist; the ids of lost ones are returned.
// - When slots are free and another instance has demand, the script publishes on the
//   channel so waiting instances retry at once instead of polling.
//
// ARGV: instance, ttl_ms, lease id base, n, limit_1..limit_n,
//       R, R x (server, id) to release (server: 0-based index),
//       U, U x (server, id) in use (renew, force),
//       F, F x (server, id) idle (renew if present),
//       D, D x (rank, count, age_ms) demand, most urgent first,
//       channel
// Returns: { granted: flat (server, id) list, active per server, lost ids, live instances,
//            ms until the earliest lease expires (-1: none), other instances' demand in
//            classes more urgent than the caller's most urgent one, and in that same class
//            (both -1 when the caller sent no demand) }
export const LEASE_EXCHANGE_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local instance = ARGV[1]
local ttl = tonumber(ARGV[2])
local base = ARGV[3]
local n = tonumber(ARGV[4])
local i = 5
local limits = {}
for s = 1, n do limits[s] = tonumber(ARGV[i]); i = i + 1 end

local released = tonumber(ARGV[i]); i = i + 1
for r = 1, released do
  redis.call('ZREM', KEYS[3 + tonumber(ARGV[i])], ARGV[i + 1]); i = i + 2
end
local inuse = tonumber(ARGV[i]); i = i + 1
for u = 1, inuse do
  redis.call('ZADD', KEYS[3 + tonumber(ARGV[i])], now + ttl, ARGV[i + 1]); i = i + 2
end
local lost = {}
local idle = tonumber(ARGV[i]); i = i + 1
for f = 1, idle do
  local key = KEYS[3 + tonumber(ARGV[i])]
  if redis.call('ZADD', key, 'XX', 'CH', now + ttl, ARGV[i + 1]) == 0 and not redis.call('ZSCORE', key, ARGV[i + 1]) then
    table.insert(lost, ARGV[i + 1])
  end
  i = i + 2
end
local mine = {}
local classes = tonumber(ARGV[i]); i = i + 1
for c = 1, classes do
  mine[c] = { rank = tonumber(ARGV[i]), count = tonumber(ARGV[i + 1]), since = now - tonumber(ARGV[i + 2]) }
  i = i + 3
end
local channel = ARGV[i]

redis.call('ZADD', KEYS[2], now + ttl, instance)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)

local free = {}
local totalFree = 0
local active = {}
for s = 1, n do
  redis.call('ZREMRANGEBYSCORE', KEYS[2 + s], '-inf', now)
  active[s] = redis.call('ZCARD', KEYS[2 + s])
  free[s] = math.max(0, limits[s] - active[s])
  totalFree = totalFree + free[s]
end

local others = {}
local entries = redis.call('HGETALL', KEYS[1])
for e = 1, #entries, 2 do
  local field, value = entries[e], entries[e + 1]
  local who, rank = string.match(field, '^(.*)|(%d+)$')
  local count, since, expires = string.match(value, '^(%d+)|(%-?%d+)|(%d+)$')
  if who == instance or not count or tonumber(expires) <= now then
    redis.call('HDEL', KEYS[1], field)
  else
    table.insert(others, { rank = tonumber(rank), count = tonumber(count), since = tonumber(since) })
  end
end

local granted = {}
local grantedCount = 0
local seq = 0
local better, same = -1, -1
for c = 1, #mine do
  local m = mine[c]
  local ahead = 0
  if c == 1 then better, same = 0, 0 end
  for _, o in ipairs(others) do
    if o.rank < m.rank or (o.rank == m.rank and o.since < m.since) then ahead = ahead + o.count end
    if c == 1 and o.rank < m.rank then better = better + o.count end
    if c == 1 and o.rank == m.rank then same = same + o.count end
  end
  local allowed = math.min(m.count, totalFree - ahead - grantedCount)
  local g = 0
  while g < allowed do
    local best, bestFree = 0, 0
    for s = 1, n do
      if free[s] > bestFree then best, bestFree = s, free[s] end
    end
    if best == 0 then break end
    seq = seq + 1
    local id = base .. ':' .. seq
    redis.call('ZADD', KEYS[2 + best], now + ttl, id)
    free[best] = free[best] - 1
    active[best] = active[best] + 1
    table.insert(granted, best - 1)
    table.insert(granted, id)
    g = g + 1
  end
  grantedCount = grantedCount + g
  if m.count > g then
    redis.call('HSET', KEYS[1], instance .. '|' .. m.rank, (m.count - g) .. '|' .. m.since .. '|' .. (now + ttl))
  end
end
redis.call('PEXPIRE', KEYS[1], ttl * 2)

if #others > 0 and totalFree - grantedCount > 0 then
  redis.call('PUBLISH', channel, instance)
end

local earliest = -1
for s = 1, n do
  local first = redis.call('ZRANGE', KEYS[2 + s], 0, 0, 'WITHSCORES')
  if first[2] then
    local left = tonumber(first[2]) - now
    if earliest < 0 or left < earliest then earliest = left end
  end
end
return { granted, active, lost, redis.call('ZCARD', KEYS[2]), earliest, better, same }
`;

export interface LeaseExchangeArgs {
  readonly instance: string;
  readonly ttlMs: number;
  readonly idBase: string;
  readonly limits: readonly number[];
  readonly release: readonly (readonly [number, string])[];
  readonly inUse: readonly (readonly [number, string])[];
  readonly idle: readonly (readonly [number, string])[];
  /** Most urgent first. */
  readonly demand: readonly { readonly rank: number; readonly count: number; readonly ageMs: number }[];
  readonly channel: string;
}

export interface LeaseExchangeResult {
  readonly granted: { server: number; id: string }[];
  readonly active: number[];
  readonly lost: string[];
  readonly instances: number;
  /** Milliseconds until the earliest lease anywhere expires; undefined when none is held. */
  readonly earliestExpiryMs: number | undefined;
  /** Other instances' waiters in more urgent classes than the caller's most urgent one, and in that class; undefined when it sent no demand. */
  readonly others: { readonly better: number; readonly same: number } | undefined;
}

export function exchangeArgv(a: LeaseExchangeArgs): string[] {
  const pairs = (list: readonly (readonly [number, string])[]) => [String(list.length), ...list.flatMap(([s, id]) => [String(s), id])];
  return [
    a.instance, String(a.ttlMs), a.idBase, String(a.limits.length), ...a.limits.map(String),
    ...pairs(a.release), ...pairs(a.inUse), ...pairs(a.idle),
    String(a.demand.length), ...a.demand.flatMap((d) => [String(d.rank), String(d.count), String(Math.max(0, Math.round(d.ageMs)))]),
    a.channel,
  ];
}

export function parseExchangeReply(reply: unknown): LeaseExchangeResult {
  const [granted, active, lost, instances, earliest, better, same] = reply as [string[], number[], string[], number, number, number, number];
  const list: { server: number; id: string }[] = [];
  for (let i = 0; i < granted.length; i += 2) list.push({ server: Number(granted[i]), id: String(granted[i + 1]) });
  return {
    granted: list,
    active: active.map(Number),
    lost: lost.map(String),
    instances: Number(instances),
    earliestExpiryMs: Number(earliest) < 0 ? undefined : Number(earliest),
    others: Number(better) < 0 ? undefined : { better: Number(better), same: Number(same) },
  };
}

/**
 * The Lua scripts of the Redis tier, registered once per client by digest (the kit's
 * `defineScripts`: a changed body gets a new name by itself). Every state change that other
 * processes race on is one script, never a read-then-write from Node.
 *
 * An entry is a hash: v = serialized value, e = fresh until, s = stale (grace) until,
 * c = created at (epoch ms of the writer's clock), t = tags as JSON.
 * @internal
 */

/**
 * getOrLock: KEYS[1] entry, KEYS[2] loader lock.
 * ARGV[1] now, ARGV[2] lock token, ARGV[3] lock ttl (ms), ARGV[4] only count an entry as fresh
 * if created after this (eager refresh must not be satisfied by the copy it is refreshing).
 * Returns { status, v, e, s, c, t } with status 0 = fresh, 1 = lock acquired, 2 = someone else loads.
 */
export const GET_OR_LOCK = `
local f = redis.call('HMGET', KEYS[1], 'v', 'e', 's', 'c', 't')
local e = tonumber(f[2])
local c = tonumber(f[4])
-- A fresh entry needs no loader: answer it and take no lock.
if e and e > tonumber(ARGV[1]) and c and c > tonumber(ARGV[4]) then
  return { 0, f[1], f[2], f[3], f[4], f[5] }
end
-- Missing or expired: whoever sets the lock first runs the loader; the others wait for it.
-- The lease bounds how long a crashed loader can keep the others waiting.
local status = 2
if redis.call('SET', KEYS[2], ARGV[2], 'NX', 'PX', ARGV[3]) then status = 1 end
-- The expired entry (if any) rides along so the caller can serve it within grace.
return { status, f[1], f[2], f[3], f[4], f[5] }
`;

/**
 * write: KEYS[1] entry, KEYS[2] loader lock, KEYS[3..] tag sets.
 * ARGV[1] value, ARGV[2] e, ARGV[3] s, ARGV[4] c, ARGV[5] tags JSON, ARGV[6] key lifetime (ms),
 * ARGV[7] lock token ('' when not loading under the lock), ARGV[8] bus channel, ARGV[9] message.
 */
export const WRITE = `
redis.call('HSET', KEYS[1], 'v', ARGV[1], 'e', ARGV[2], 's', ARGV[3], 'c', ARGV[4], 't', ARGV[5])
-- Redis forgets the entry when its grace is over; freshness itself is judged from e and s.
redis.call('PEXPIRE', KEYS[1], ARGV[6])
local life = tonumber(ARGV[6])
for i = 3, #KEYS do
  redis.call('SADD', KEYS[i], KEYS[1])
  -- A tag set lives as long as its longest-lived member (-1 = no expiry yet, so set one).
  if redis.call('PTTL', KEYS[i]) < life then redis.call('PEXPIRE', KEYS[i], life) end
end
-- Release the loader lock only if it is still ours: a lease that lapsed may belong to another.
if ARGV[7] ~= '' and redis.call('GET', KEYS[2]) == ARGV[7] then redis.call('DEL', KEYS[2]) end
-- Wakes the processes waiting on this key and drops their L1 copies, in the same round trip.
redis.call('PUBLISH', ARGV[8], ARGV[9])
return 1
`;

/**
 * release: KEYS[1] loader lock. ARGV[1] token, ARGV[2] channel, ARGV[3] message.
 * After a loader failure: free the lock if ours and wake the waiters so one of them retries.
 */
export const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
redis.call('PUBLISH', ARGV[2], ARGV[3])
return 1
`;

/** remove: KEYS = entries. ARGV[1] channel, ARGV[2] message. Deletes and tells every instance. */
export const REMOVE = `
if #KEYS > 0 then redis.call('UNLINK', unpack(KEYS)) end
redis.call('PUBLISH', ARGV[1], ARGV[2])
return #KEYS
`;

/**
 * removeTags: KEYS = tag sets. ARGV[1] channel, ARGV[2] message.
 * Deletes every entry listed in the sets, then the sets, then tells every instance.
 */
export const REMOVE_TAGS = `
local n = 0
for i = 1, #KEYS do
  local members = redis.call('SMEMBERS', KEYS[i])
  -- unpack() has a stack limit: delete in slices.
  for j = 1, #members, 1000 do
    n = n + redis.call('UNLINK', unpack(members, j, math.min(j + 999, #members)))
  end
  redis.call('DEL', KEYS[i])
end
redis.call('PUBLISH', ARGV[1], ARGV[2])
return n
`;

/**
 * lease: KEYS[1] a schedule's lock. ARGV[1] token, ARGV[2] ms. While the lock is ours: keep it
 * for `ms` more, or free it when `ms` is 0. Returns 1 when it was ours.
 */
export const LEASE = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if tonumber(ARGV[2]) > 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) else redis.call('DEL', KEYS[1]) end
return 1
`;

/**
 * The scripts by name; each is registered as its name plus a digest of its body, so an upgrade
 * never runs an old body. Without `numberOfKeys` the caller passes the key count first.
 */
export const SCRIPTS = {
  idemCacheGetOrLock: { lua: GET_OR_LOCK, numberOfKeys: 2 },
  idemCacheWrite: { lua: WRITE },
  idemCacheRelease: { lua: RELEASE, numberOfKeys: 1 },
  idemCacheRemove: { lua: REMOVE },
  idemCacheRemoveTags: { lua: REMOVE_TAGS },
  idemCacheLease: { lua: LEASE, numberOfKeys: 1 },
} as const;

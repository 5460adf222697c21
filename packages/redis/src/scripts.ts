/**
 * The store's Lua scripts, registered once per client by digest (the kit's `defineScripts`).
 *
 *   KEYS[1]  the record, one string (layout in record.ts): state, waiter flag, `<len>:<token>`,
 *            time, fingerprint and, when completed, status + headers and the exact body bytes
 *
 * The in-flight record is the lease on the records' node: written only where none stands, it
 * expires after lockTtl unless renewed, and its token fences every later write. On a single node
 * (or Cluster) that is the whole lock, and a claim is no script at all but one command,
 * `SET record <in flight> NX PX ttl GET` (atomic; NX with GET since Redis 7.0), and a replay a
 * plain `GET` (redis-store.ts, single-node-lease.ts). With independent lock masters a Redlock lock
 * on them comes first (lock.ts) and MARK writes the record, the fence on this node.
 *
 * Scripts fence by reading only the record's first bytes (`GETRANGE 0 1+#tag`: state, flag and
 * token), never a completed body, and each makes at most two calls on the common path.
 *
 * A key may still hold a hash written by the previous version (fields s, t, at, fp, meta, body, w).
 * `GET`/`SET` on it fail with WRONGTYPE; the scripts read it with `redis.pcall` and treat it as
 * what it is: a completed record (replayed) or another instance's lease (contention, never ours,
 * since this version writes only strings). Every write here is a string.
 */
import { defineScripts } from '@idem/redis-kit';
import type { Cluster, Redis } from 'ioredis';

// A previous version's hash record, by position (HASH_FIELDS in record.ts).
const HASH_STANDING = `redis.call('HMGET', record, 's', 'fp', 'at', 'meta', 'body')`;

// Reads the first bytes of the record: `head` is a string (possibly '' for none), or a table
// with `err` when the key holds a previous version's hash (WRONGTYPE). `ours` is true when it is
// our in-flight record (locals: record, token).
const OURS = `local tag = #token .. ':' .. token
local head = redis.pcall('GETRANGE', record, 0, 1 + #tag)
local ours = type(head) == 'string' and string.sub(head, 1, 1) == 'f' and string.sub(head, 3) == tag`;

const CLAIM_ON_HASH = `
local record = KEYS[1]
local value, ttl = ARGV[1], ARGV[2]
-- Only after the claim's SET … NX GET met WRONGTYPE: the key holds a previous version's hash,
-- a completed record (replay it) or another instance's lease (contention). Hand it back.
if redis.call('TYPE', record).ok == 'hash' then return ${HASH_STANDING} end
-- The hash went since: claim as the SET would have (nil: ours; a string: the standing record).
return redis.call('SET', record, value, 'NX', 'PX', ttl, 'GET')
`;

const MARK = `
local record = KEYS[1]
local token, value, ttl = ARGV[1], ARGV[2], ARGV[3]
-- Used after a Redlock lock on independent masters.
${OURS}
-- A previous version's hash: completed, or another lease's. Never ours: hand it back.
if type(head) == 'table' then return ${HASH_STANDING} end
-- Completed between the caller's read and its lock: the first result stands; hand it back.
-- Another owner's in-flight record that has not expired yet: its lease may still be alive on
-- masters we cannot see (e.g. a lock master restarted empty). Never run twice: it is contention.
if head ~= '' and not ours then return redis.call('GET', record) end
-- Ours: the in-flight record carries the token and the fingerprint, and lives as long as the lease.
redis.call('SET', record, value, 'PX', ttl)
return 1
`;

const EXTEND = `
local record = KEYS[1]
local token, ttl = ARGV[1], ARGV[2]
${OURS}
-- Fencing: only the token that wrote the in-flight record may renew it.
if not ours then return 0 end
redis.call('PEXPIRE', record, ttl)
return 1
`;

const COMPLETE = `
local record = KEYS[1]
local token, value, ttl, channel = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
${OURS}
-- Fencing: a late writer whose lease lapsed (its record expired or was taken over) writes nothing.
if not ours then return 0 end
-- The completed record replaces the in-flight one, value and expiry in one write; this ends the lease.
redis.call('SET', record, value, 'PX', ttl)
-- Wake waiters in every process, if any said they wait (PEEK): a regular PUBLISH reaches
-- subscribers on every Cluster node, so it is sent only when someone listens.
if string.sub(head, 2, 2) == 'w' then redis.call('PUBLISH', channel, 'completed') end
return 1
`;

const RELEASE = `
local record = KEYS[1]
local token, channel = ARGV[1], ARGV[2]
${OURS}
-- Drop our in-flight record only; a stranger's token leaves everything as it is.
if not ours then return 0 end
redis.call('DEL', record)
-- A released key may be claimed by a waiter now (if one said it waits, in PEEK).
if string.sub(head, 2, 2) == 'w' then redis.call('PUBLISH', channel, 'released') end
return 1
`;

const PEEK = `
local record = KEYS[1]
-- The record's state and how long it has left: waiters re-check when an in-flight lease would lapse.
-- A waiter asks for the end of an in-flight record to be published (COMPLETE, RELEASE). It has
-- subscribed before this, and this runs atomically with them: no end goes unannounced.
-- Written once: later checks stay reads (no replication, no keyspace event, no write under OOM).
local head = redis.pcall('GETRANGE', record, 0, 1)
local state
if type(head) == 'table' then
  -- A previous version's hash: mark it as that version does, so its COMPLETE publishes.
  state = redis.call('HGET', record, 's')
  if not state then return false end
  if state == 'f' and redis.call('HEXISTS', record, 'w') == 0 then redis.call('HSET', record, 'w', '1') end
else
  if head == '' then return false end
  state = string.sub(head, 1, 1)
  -- SETRANGE writes the flag in place and keeps the expiry.
  if state == 'f' and string.sub(head, 2, 2) ~= 'w' then redis.call('SETRANGE', record, 1, 'w') end
end
return { state, redis.call('PTTL', record) }
`;

const INSPECT = `
local record = KEYS[1]
-- For operators: the standing record and how long it has left, read together. Unlike PEEK it
-- writes nothing (no waiter mark). { value, pttl }, or a previous version's hash fields and pttl.
local standing = redis.pcall('GET', record)
if type(standing) == 'table' then
  standing = ${HASH_STANDING}
  if not standing[1] then return false end
  standing[6] = redis.call('PTTL', record)
  return standing
end
if not standing then return false end
return { standing, redis.call('PTTL', record) }
`;

const DELETE = `
local record, lock = KEYS[1], KEYS[2]
local channel = ARGV[1]
-- Both keys share a slot, so one DEL removes them together (the lock exists only where this node
-- is one of the lock masters). Whatever the record's format.
local removed = redis.call('DEL', record, lock)
-- Waiters on a deleted in-flight key must not wait for a completion that will never come.
if removed > 0 then redis.call('PUBLISH', channel, 'deleted') end
return removed
`;

type Key = string;

/**
 * What a claim-like script answers: 1 (MARK) or null (CLAIM_ON_HASH) when the key is ours; the
 * standing record as a string value, or as a previous version's hash fields.
 */
export type StandingReply = number | Buffer | (Buffer | null)[] | null;

/** The store's commands, as `defineCommand` adds them to a client. */
export interface StoreCommands {
  /** After WRONGTYPE on a claim: null when the key is ours now; otherwise the standing record. */
  idemClaimOnHashBuffer(record: Key, value: string, ttl: number): Promise<StandingReply>;
  /** 1 when the in-flight record is ours; otherwise the standing record. */
  idemMarkBuffer(record: Key, token: string, value: string, ttl: number): Promise<StandingReply>;
  /** 1 when renewed, 0 when the lease was lost. */
  idemExtend(record: Key, token: string, ttl: number): Promise<number>;
  /** 1 when stored, 0 when fenced out. */
  idemComplete(record: Key, token: string, value: Buffer, ttl: number, channel: string): Promise<number>;
  /** 1 when our in-flight record was dropped, else 0. */
  idemRelease(record: Key, token: string, channel: string): Promise<number>;
  /** [state, pttl] with state 'f' | 'c', or null when nothing is there; marks an in-flight record as waited for. */
  idemPeek(record: Key): Promise<[string, number] | null>;
  /** [value, pttl], or a previous version's hash fields (`HASH_FIELDS`) and PTTL; null when nothing is there. */
  idemInspectBuffer(record: Key): Promise<(Buffer | number | null)[] | null>;
  /** How many keys were removed. */
  idemDelete(record: Key, lock: Key, channel: string): Promise<number>;
}

const SCRIPTS = {
  idemClaimOnHash: { lua: CLAIM_ON_HASH, numberOfKeys: 1 },
  idemMark: { lua: MARK, numberOfKeys: 1 },
  idemExtend: { lua: EXTEND, numberOfKeys: 1 },
  idemComplete: { lua: COMPLETE, numberOfKeys: 1 },
  idemRelease: { lua: RELEASE, numberOfKeys: 1 },
  idemPeek: { lua: PEEK, numberOfKeys: 1 },
  idemInspect: { lua: INSPECT, numberOfKeys: 1 },
  idemDelete: { lua: DELETE, numberOfKeys: 2 },
};

/**
 * Registers the scripts on `client` (once per client, however many stores share it, each under a
 * name carrying its digest) and returns them.
 */
export function withStoreCommands(client: Redis | Cluster): StoreCommands {
  return defineScripts<StoreCommands>(client, SCRIPTS);
}

/** True for Redis's answer to a command on a key of another type: a previous version's hash record. */
export function isWrongType(error: unknown): boolean {
  return error instanceof Error && error.message.startsWith('WRONGTYPE');
}

/**
 * The error a claim answers when the records' Redis is older than 7.0, which refuses `NX`
 * together with `GET` as a syntax error: said plainly, with the server's own answer as its cause.
 * Undefined for any other error.
 */
export function olderRedisError(error: unknown): Error | undefined {
  if (!(error instanceof Error) || !/^ERR syntax error/i.test(error.message)) return undefined;
  return new Error(
    'idem: the Redis of the records refused SET … NX PX … GET; @idem/redis needs Redis 7.0 or newer there',
    { cause: error },
  );
}

/**
 * The store's Lua scripts: every state change of a record is one atomic script, registered once
 * per client by digest (the kit's `defineScripts`).
 *
 *   KEYS[1]  the record, a hash: s = 'f' (in flight) | 'c' (completed), t = lease token (in flight),
 *            at = startedAt | completedAt (epoch ms, Redis's clock), fp = fingerprint (absent: none),
 *            meta = JSON { status, headers }, body = the exact response bytes (completed),
 *            w = '1' once a duplicate waits for this in-flight record (so its end is published)
 *
 * The in-flight record is the lease on the records' node: written only where none stands, it
 * expires after lockTtl unless renewed, and its token fences every later write. On a single node
 * (or Cluster) that is the whole lock; with independent lock masters a Redlock lock on them comes
 * first (lock.ts) and the record is the fence on this node. Fingerprints are passed as '' for none.
 * Times come from Redis (`TIME`, allowed before writes since Redis 5's effect replication).
 */
import { defineScripts } from '@idem/redis-kit';
import type { Cluster, Redis } from 'ioredis';

// The standing record, by position (RECORD_FIELDS in record.ts): what a losing claim answers.
const STANDING = `redis.call('HMGET', KEYS[1], 's', 'fp', 'at', 'meta', 'body')`;

// Epoch milliseconds from Redis's clock, as a string (defines \`now\`). A write after TIME needs
// effect replication: the default since Redis 5 (a no-op there), switched on here for older ones.
const NOW = `redis.replicate_commands()
local time = redis.call('TIME')
local now = time[1] .. string.format('%03d', math.floor(tonumber(time[2]) / 1000))`;

// The end of a won claim, shared by CLAIM and MARK (locals: record, token, ttl, fingerprint).
const MARK_OURS = `${NOW}
-- Ours: the in-flight record carries the token and the fingerprint (422 for a mismatching duplicate).
if fingerprint ~= '' then
  redis.call('HSET', record, 's', 'f', 't', token, 'at', now, 'fp', fingerprint)
else
  redis.call('HSET', record, 's', 'f', 't', token, 'at', now)
end
-- It lives exactly as long as the lease; extend renews it.
redis.call('PEXPIRE', record, ttl)
return 1`;

const CLAIM = `
local record = KEYS[1]
local token, ttl, fingerprint = ARGV[1], ARGV[2], ARGV[3]
-- The lease lives on this node: read and claim in one step. A record stands (completed: replay
-- it; another lease's in-flight record: contention): hand it back, one read, no write.
local standing = ${STANDING}
if standing[1] then return standing end
${MARK_OURS}
`;

const MARK = `
local record = KEYS[1]
local token, ttl, fingerprint = ARGV[1], ARGV[2], ARGV[3]
-- Used after a Redlock lock on independent masters.
local state = redis.call('HMGET', record, 's', 't')
-- Completed between the caller's read and its lock: the first result stands; hand it back.
if state[1] == 'c' then return ${STANDING} end
-- Another owner's in-flight record that has not expired yet: its lease may still be alive on
-- masters we cannot see (e.g. a lock master restarted empty). Never run twice: it is contention.
if state[2] and state[2] ~= token then return ${STANDING} end
${MARK_OURS}
`;

const EXTEND = `
local record = KEYS[1]
local token, ttl = ARGV[1], ARGV[2]
-- Fencing: only the token that wrote the in-flight record may renew it.
if redis.call('HGET', record, 't') ~= token then return 0 end
redis.call('PEXPIRE', record, ttl)
return 1
`;

const COMPLETE = `
local record = KEYS[1]
local token, ttl, meta, body, fingerprint, channel = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local lease = redis.call('HMGET', record, 't', 'w')
-- Fencing: a late writer whose lease lapsed (its record expired or was taken over) writes nothing.
if lease[1] ~= token then return 0 end
${NOW}
-- Replace the in-flight fields (token, startedAt) by the completed record; this ends the lease.
redis.call('DEL', record)
if fingerprint ~= '' then
  redis.call('HSET', record, 's', 'c', 'at', now, 'meta', meta, 'body', body, 'fp', fingerprint)
else
  redis.call('HSET', record, 's', 'c', 'at', now, 'meta', meta, 'body', body)
end
redis.call('PEXPIRE', record, ttl)
-- Wake waiters in every process, if any said they wait (PEEK): a regular PUBLISH reaches
-- subscribers on every Cluster node, so it is sent only when someone listens.
if lease[2] then redis.call('PUBLISH', channel, 'completed') end
return 1
`;

const RELEASE = `
local record = KEYS[1]
local token, channel = ARGV[1], ARGV[2]
local lease = redis.call('HMGET', record, 't', 'w')
-- Drop our in-flight record only; a stranger's token leaves everything as it is.
if lease[1] ~= token then return 0 end
redis.call('DEL', record)
-- A released key may be claimed by a waiter now (if one said it waits, in PEEK).
if lease[2] then redis.call('PUBLISH', channel, 'released') end
return 1
`;

const PEEK = `
local record = KEYS[1]
-- The record's state and how long it has left: waiters re-check when an in-flight lease would lapse.
local state = redis.call('HGET', record, 's')
if not state then return false end
-- A waiter asks for the end of an in-flight record to be published (COMPLETE, RELEASE). It has
-- subscribed before this, and this runs atomically with them: no end goes unannounced.
-- Written once: later checks stay reads (no replication, no keyspace event, no write under OOM).
if state == 'f' and redis.call('HEXISTS', record, 'w') == 0 then redis.call('HSET', record, 'w', '1') end
return { state, redis.call('PTTL', record) }
`;

const INSPECT = `
local record = KEYS[1]
-- For operators: the standing record and how long it has left, read together. Unlike PEEK it
-- writes nothing (no waiter mark).
local standing = ${STANDING}
if not standing[1] then return false end
standing[6] = redis.call('PTTL', record)
return standing
`;

const DELETE = `
local record, lock = KEYS[1], KEYS[2]
local channel = ARGV[1]
-- Both keys share a slot, so one DEL removes them together (the lock exists only where this node
-- is one of the lock masters).
local removed = redis.call('DEL', record, lock)
-- Waiters on a deleted in-flight key must not wait for a completion that will never come.
if removed > 0 then redis.call('PUBLISH', channel, 'deleted') end
return removed
`;

type Key = string;
type Arg = string | number | Buffer;

/** The store's commands, as `defineCommand` adds them to a client. Fingerprints: '' for none. */
export interface StoreCommands {
  /** 1 when the key is ours (marked in flight); otherwise the standing record's fields. */
  idemClaimBuffer(record: Key, token: string, ttl: number, fingerprint: string): Promise<number | (Buffer | null)[]>;
  /** 1 when the in-flight record is ours; otherwise the standing record's fields (all null: none). */
  idemMarkBuffer(record: Key, token: string, ttl: number, fingerprint: string): Promise<number | (Buffer | null)[]>;
  /** 1 when renewed, 0 when the lease was lost. */
  idemExtend(record: Key, token: string, ttl: number): Promise<number>;
  /** 1 when stored, 0 when fenced out. */
  idemComplete(
    record: Key,
    token: string,
    ttl: number,
    meta: string,
    body: Arg,
    fingerprint: string,
    channel: string,
  ): Promise<number>;
  /** 1 when our in-flight record was dropped, else 0. */
  idemRelease(record: Key, token: string, channel: string): Promise<number>;
  /** [state, pttl] with state 'f' | 'c', or null when nothing is there; marks an in-flight record as waited for. */
  idemPeek(record: Key): Promise<[string, number] | null>;
  /** The standing record's fields (`RECORD_FIELDS` by position) and its PTTL, or null when nothing is there. */
  idemInspectBuffer(record: Key): Promise<[...(Buffer | null)[], number] | null>;
  /** How many keys were removed. */
  idemDelete(record: Key, lock: Key, channel: string): Promise<number>;
}

const SCRIPTS = {
  idemClaim: { lua: CLAIM, numberOfKeys: 1 },
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

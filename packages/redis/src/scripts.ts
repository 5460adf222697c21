/**
 * The store's Lua scripts: every state change of a record is one atomic script, registered once
 * per client with `defineCommand` (ioredis sends EVALSHA and falls back to EVAL after a
 * SCRIPT FLUSH or a restart). All of them take the same two keys, which share one hash tag and
 * so one Cluster slot:
 *
 *   KEYS[1]  the record, a hash: s = 'f' (in flight) | 'c' (completed), t = lease token (in flight),
 *            at = startedAt | completedAt (epoch ms), fp = fingerprint (absent: none),
 *            meta = JSON { status, headers }, body = the exact response bytes (completed)
 *   KEYS[2]  the Redlock lock key (a string holding the token), when the lock lives on this node
 *
 * `here` (an ARGV) is '1' when the lock lives on this node, i.e. the lock masters are this client
 * alone; with independent lock masters the record's token is the fence on this node.
 */
import type { Cluster, Redis } from 'ioredis';

// The standing record, by position (RECORD_FIELDS in record.ts): what a losing claim answers.
const STANDING = `redis.call('HMGET', KEYS[1], 's', 'fp', 'at', 'meta', 'body')`;

// The end of a won claim, shared by CLAIM and MARK (locals: record, token, startedAt, ttl,
// hasFingerprint, fingerprint).
const MARK_OURS = `-- Ours: the in-flight record carries the token and the fingerprint (422 for a mismatching duplicate).
if hasFingerprint == '1' then
  redis.call('HSET', record, 's', 'f', 't', token, 'at', startedAt, 'fp', fingerprint)
else
  redis.call('HSET', record, 's', 'f', 't', token, 'at', startedAt)
end
-- It lives exactly as long as the lease; extend renews both.
redis.call('PEXPIRE', record, ttl)
return 1`;

const CLAIM = `
local record, lock = KEYS[1], KEYS[2]
local token, startedAt, ttl, hasFingerprint, fingerprint = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
-- Used when the lock lives on this node: read, lock and mark in one step.
-- A record stands (completed: replay it; another lease's in-flight record: contention): hand it back.
if redis.call('EXISTS', record) == 1 then return ${STANDING} end
-- The lock itself, as Redlock lays it out on one master (the token, with the lease as PX), so
-- EXTEND, COMPLETE and RELEASE treat it alike. Held without a record: contention (all nil fields).
if not redis.call('SET', lock, token, 'NX', 'PX', ttl) then return ${STANDING} end
${MARK_OURS}
`;

const MARK = `
local record, lock = KEYS[1], KEYS[2]
local token, here, startedAt, ttl, hasFingerprint, fingerprint = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
-- Used after a Redlock lock on independent masters.
-- Completed between the caller's read and its lock: the first result stands; hand it back.
if redis.call('HGET', record, 's') == 'c' then return ${STANDING} end
-- The lock is taken in an earlier round trip; if it lapsed since (or was deleted), it is not ours.
if here == '1' and redis.call('GET', lock) ~= token then return ${STANDING} end
-- Another owner's in-flight record that has not expired yet: its lease may still be alive on
-- masters we cannot see (e.g. a lock master restarted empty). Never run twice: it is contention.
local owner = redis.call('HGET', record, 't')
if owner and owner ~= token then return ${STANDING} end
${MARK_OURS}
`;

const EXTEND = `
local record, lock = KEYS[1], KEYS[2]
local token, here, ttl = ARGV[1], ARGV[2], ARGV[3]
-- Fencing: only the token that wrote the in-flight record may renew it...
if redis.call('HGET', record, 't') ~= token then return 0 end
-- ...and only while the lock on this node still holds that token.
if here == '1' then
  if redis.call('GET', lock) ~= token then return 0 end
  redis.call('PEXPIRE', lock, ttl)
end
redis.call('PEXPIRE', record, ttl)
return 1
`;

const COMPLETE = `
local record, lock = KEYS[1], KEYS[2]
local token, here, completedAt, ttl = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local meta, body, hasFingerprint, fingerprint, channel = ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9]
-- Fencing: a late writer whose lease lapsed (its record expired or was taken over) writes nothing...
if redis.call('HGET', record, 't') ~= token then return 0 end
-- ...nor does one whose lock on this node is gone or held by another token.
if here == '1' and redis.call('GET', lock) ~= token then return 0 end
-- Replace the in-flight fields (token, startedAt) by the completed record.
redis.call('DEL', record)
if hasFingerprint == '1' then
  redis.call('HSET', record, 's', 'c', 'at', completedAt, 'meta', meta, 'body', body, 'fp', fingerprint)
else
  redis.call('HSET', record, 's', 'c', 'at', completedAt, 'meta', meta, 'body', body)
end
redis.call('PEXPIRE', record, ttl)
-- Release in the same step: the lock is ours (checked above).
if here == '1' then redis.call('DEL', lock) end
-- Wake waiters in every process; a regular PUBLISH reaches subscribers on every Cluster node.
redis.call('PUBLISH', channel, 'completed')
return 1
`;

const RELEASE = `
local record, lock = KEYS[1], KEYS[2]
local token, here, channel = ARGV[1], ARGV[2], ARGV[3]
local dropped = 0
-- Drop our in-flight record only; a stranger's token leaves everything as it is.
if redis.call('HGET', record, 't') == token then dropped = redis.call('DEL', record) end
-- And our lock on this node (also when the record was never written: a claim that lost the race).
if here == '1' and redis.call('GET', lock) == token then dropped = dropped + redis.call('DEL', lock) end
-- A released key may be claimed by a waiter now.
if dropped > 0 then redis.call('PUBLISH', channel, 'released') end
return dropped
`;

const PEEK = `
local record, lock = KEYS[1], KEYS[2]
local here = ARGV[1]
-- The record's state and how long it has left: waiters re-check when an in-flight lease would lapse.
local state = redis.call('HGET', record, 's')
if state then return { state, redis.call('PTTL', record) } end
-- Locked but not marked yet (the claimer is between its two round trips): in flight too.
if here == '1' then
  local ttl = redis.call('PTTL', lock)
  if ttl > 0 then return { 'l', ttl } end
end
return false
`;

const DELETE = `
local record, lock = KEYS[1], KEYS[2]
local channel = ARGV[1]
-- Both keys share a slot, so one DEL removes them together.
local removed = redis.call('DEL', record, lock)
-- Waiters on a deleted in-flight key must not wait for a completion that will never come.
if removed > 0 then redis.call('PUBLISH', channel, 'deleted') end
return removed
`;

type Key = string;
type Arg = string | number | Buffer;

/** The store's commands, as `defineCommand` adds them to a client. */
export interface StoreCommands {
  /** 1 when the key is ours (locked and marked); otherwise the standing record's fields (all null: none visible). */
  idemClaimBuffer(record: Key, lock: Key, token: string, startedAt: number, ttl: number, hasFingerprint: string, fingerprint: string): Promise<number | (Buffer | null)[]>;
  /** 1 when the in-flight record is ours; otherwise the standing record's fields (all null: none). */
  idemMarkBuffer(record: Key, lock: Key, token: string, here: string, startedAt: number, ttl: number, hasFingerprint: string, fingerprint: string): Promise<number | (Buffer | null)[]>;
  /** 1 when renewed, 0 when the lease was lost. */
  idemExtend(record: Key, lock: Key, token: string, here: string, ttl: number): Promise<number>;
  /** 1 when stored, 0 when fenced out. */
  idemComplete(record: Key, lock: Key, token: string, here: string, completedAt: number, ttl: number, meta: string, body: Arg, hasFingerprint: string, fingerprint: string, channel: string): Promise<number>;
  /** How many of our keys were dropped. */
  idemRelease(record: Key, lock: Key, token: string, here: string, channel: string): Promise<number>;
  /** [state, pttl] with state 'f' | 'c' | 'l' (locked, not marked), or null when nothing is there. */
  idemPeek(record: Key, lock: Key, here: string): Promise<[string, number] | null>;
  /** How many keys were removed. */
  idemDelete(record: Key, lock: Key, channel: string): Promise<number>;
}

const COMMANDS = { idemClaim: CLAIM, idemMark: MARK, idemExtend: EXTEND, idemComplete: COMPLETE, idemRelease: RELEASE, idemPeek: PEEK, idemDelete: DELETE };
const registered = new WeakSet<object>();

/** Registers the scripts on `client` (once per client, however many stores share it) and returns it typed. */
export function withStoreCommands(client: Redis | Cluster): StoreCommands {
  if (!registered.has(client)) {
    for (const [name, lua] of Object.entries(COMMANDS)) client.defineCommand(name, { numberOfKeys: 2, lua });
    registered.add(client);
  }
  return client as unknown as StoreCommands;
}

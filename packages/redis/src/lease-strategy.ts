/**
 * How the Redis store takes, renews, fences and drops a lease. There are two ways, chosen once when
 * the store is created:
 *
 * - single-node-lease.ts: the lock lives on the records' node (one node, or a Cluster). The
 *   in-flight record is the lease; a claim is one script that reads and, when nothing stands,
 *   writes it (docs/design.md, "Costs").
 * - quorum-lease.ts: the lock lives on independent masters. A Redlock lock on a quorum comes first
 *   and the in-flight record on the records' node is the fence (lock.ts).
 *
 * Either way the completed record is written by one script only while the lease's token still
 * owns the key. The store (redis-store.ts) does the rest the same for both: reads, waiting, admin.
 */
import type { ClaimResult, IdempotencyRecord, Logger, StoredResponse } from '@idem/core';
import type { Cluster, Redis } from 'ioredis';
import { decodeStanding, encodeCompleted } from './record.js';
import type { StandingReply, StoreCommands } from './scripts.js';
import { withTimeout } from './timeout.js';

/** The keys of one request key; one hash tag, so they share a Cluster slot. */
export interface RequestKeys {
  /** The request key as the engine knows it. */
  key: string;
  record: string;
  lock: string;
  channel: string;
}

/** How long the completed record lives, and the fingerprint it keeps. */
export type CompleteOptions = { fingerprint: string | null; ttl: number };

/** One way of holding leases. Methods may throw synchronously; the store turns that into a rejection. */
export interface LeaseStrategy {
  /** Claims `keys`, or answers the record that stands (completed, or another lease in flight). */
  claim(keys: RequestKeys, fingerprint: string | null, lockTtl: number): Promise<ClaimResult>;
  /** Present when a claim also reads, so that a replay and a first claim are one call. */
  getOrClaim?(keys: RequestKeys, fingerprint: string | null, lockTtl: number): Promise<ClaimResult>;
  /** True when the lease was still ours and now lives `lockTtl` more. */
  extend(keys: RequestKeys, token: string, lockTtl: number): Promise<boolean>;
  /** Stores the response if the lease is still ours (true), and ends the lease. */
  complete(keys: RequestKeys, token: string, response: StoredResponse, options: CompleteOptions): Promise<boolean>;
  /** Drops our in-flight record and our lock. */
  release(keys: RequestKeys, token: string): Promise<void>;
  /** Removes the record and its lock wherever it lives; how many keys went. */
  delete(keys: RequestKeys): Promise<number>;
}

/** What the strategies share of the store they serve. */
export interface LeaseContext {
  /** The records' client, for the commands that need no script (a claim's `SET … NX GET`). */
  client: Redis | Cluster;
  commands: StoreCommands;
  commandTimeout: number;
  logger: Logger;
  /** `promise` bounded by `ms` (default `commandTimeout`); a timeout is a `RedisTimeoutError`. */
  bounded<T>(operation: string, promise: Promise<T>, ms?: number): Promise<T>;
  /** The record of `keys`, read with one GET (a previous version's hash: one HMGET more). */
  read(keys: RequestKeys): Promise<IdempotencyRecord | undefined>;
}

export const isOne = (reply: number): boolean => reply === 1;

/** True when a claim's reply says the key is ours: 1 (MARK) or nil (`SET … NX GET` found nothing). */
export const claimed = (reply: StandingReply): boolean => reply === 1 || reply === null;

/** The claim result of a claim's reply for `token`: ours, or the standing record (string or old hash). */
export function claimResult(keys: RequestKeys, token: string, reply: StandingReply): ClaimResult {
  if (claimed(reply)) return { acquired: true, lease: { key: keys.key, token } };
  return { acquired: false, record: decodeStanding(reply as Buffer | (Buffer | null)[]) };
}

/** Best effort, for paths that already answer: the lease lapses by itself if this fails. */
export function releaseQuietly(
  strategy: Pick<LeaseStrategy, 'release'>,
  logger: Logger,
  keys: RequestKeys,
  token: string,
  why: string,
): Promise<void> {
  return strategy.release(keys, token).catch((error: unknown) => {
    logger.warn({ err: error, key: keys.record }, `idem: releasing the lock ${why} failed; it lapses after lockTtl`);
  });
}

/**
 * The reply of a claim call (a command or a script) that writes our in-flight record for `token`,
 * bounded. When the call fails, a release is queued behind it on the same connection, so it undoes
 * the write even if it runs late.
 */
export function boundedClaim<T>(
  context: LeaseContext,
  strategy: Pick<LeaseStrategy, 'release'>,
  keys: RequestKeys,
  token: string,
  call: Promise<T>,
  why: string,
): Promise<T> {
  const undo = (): void => void releaseQuietly(strategy, context.logger, keys, token, why);
  return withTimeout(call, context.commandTimeout, 'claim', undo);
}

/** The completing script: 1 when stored, 0 when fenced out. Throws synchronously for a body that is not bytes. */
export function storeResponse(
  context: LeaseContext,
  keys: RequestKeys,
  token: string,
  response: StoredResponse,
  { fingerprint, ttl }: CompleteOptions,
): Promise<number> {
  const value = encodeCompleted(response, fingerprint, Date.now());
  return context.bounded('complete', context.commands.idemComplete(keys.record, token, value, ttl, keys.channel));
}

/**
 * Leases on one node (or a Cluster): the in-flight record is the lock, so a claim is one command
 * (`SET … NX PX … GET`), and a renewal, the store of the response and a release are each one
 * script on the records' node.
 */
import { randomUUID } from 'node:crypto';
import { claimResult, boundedClaim, isOne, storeResponse } from './lease-strategy.js';
import type { LeaseContext, LeaseStrategy } from './lease-strategy.js';
import { encodeInFlight } from './record.js';
import { isWrongType, olderRedisError, type StandingReply } from './scripts.js';

/** ioredis' `setBuffer` with the options a claim passes (its typings stop short of NX together with GET). */
type SetNxGet = (key: string, value: string, px: 'PX', ttl: number, nx: 'NX', get: 'GET') => Promise<Buffer | null>;

/**
 * The record-is-lease strategy. Its claim reads too, so the store offers `getOrClaim`: a replay
 * and a first claim in one script.
 *
 * @example
 * const lease = singleNodeLease(context);
 * const claimed = await lease.claim(keys, 'fp', 30_000);
 */
export function singleNodeLease(context: LeaseContext): LeaseStrategy {
  const { client, commands, bounded } = context;
  const setNxGet = (client.setBuffer as unknown as SetNxGet).bind(client);

  const strategy: LeaseStrategy = {
    claim(keys, fingerprint, lockTtl) {
      // The lease lives on the records' node: one command writes the in-flight record that is the
      // lock where nothing stands (NX), or hands back what stands (GET), atomically. No script.
      const token = randomUUID();
      const value = encodeInFlight(token, fingerprint, Date.now());
      const call: Promise<StandingReply> = setNxGet(keys.record, value, 'PX', lockTtl, 'NX', 'GET').catch(
        (error: unknown) => {
          // The key holds a previous version's hash record (a rolling deploy): read it as that
          // version would, in one script that claims only if it has gone.
          if (isWrongType(error)) return commands.idemClaimOnHashBuffer(keys.record, value, lockTtl);
          throw olderRedisError(error) ?? error;
        },
      );
      const claiming = boundedClaim(context, strategy, keys, token, call, 'of a claim that timed out');
      return claiming.then((reply) => claimResult(keys, token, reply));
    },

    getOrClaim(keys, fingerprint, lockTtl) {
      return strategy.claim(keys, fingerprint, lockTtl);
    },

    async extend(keys, token, lockTtl) {
      return isOne(await bounded('extend', commands.idemExtend(keys.record, token, lockTtl)));
    },

    complete(keys, token, response, options) {
      return storeResponse(context, keys, token, response, options).then(isOne);
    },

    async release(keys, token) {
      await bounded('release', commands.idemRelease(keys.record, token, keys.channel));
    },

    delete(keys) {
      // The lock key exists only on lock masters; on one node DEL of it is a no-op in the same step.
      return bounded('delete', commands.idemDelete(keys.record, keys.lock, keys.channel));
    },
  };
  return strategy;
}

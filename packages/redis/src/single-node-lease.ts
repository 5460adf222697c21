/**
 * Leases on one node (or a Cluster): the in-flight record is the lock, so a claim, a renewal, the
 * store of the response and a release are each one script on the records' node.
 */
import { randomUUID } from 'node:crypto';
import { claimResult, claimScript, isOne, storeResponse } from './lease-strategy.js';
import type { LeaseContext, LeaseStrategy } from './lease-strategy.js';

/**
 * The record-is-lease strategy. Its claim reads too, so the store offers `getOrClaim`: a replay
 * and a first claim in one script.
 *
 * @example
 * const lease = singleNodeLease(context);
 * const claimed = await lease.claim(keys, 'fp', 30_000);
 */
export function singleNodeLease(context: LeaseContext): LeaseStrategy {
  const { commands, bounded } = context;

  const strategy: LeaseStrategy = {
    claim(keys, fingerprint, lockTtl) {
      // The lease lives on the records' node: one script reads, and claims when nothing stands, by
      // writing the in-flight record that is the lock.
      const token = randomUUID();
      const call = commands.idemClaimBuffer(keys.record, token, lockTtl, fingerprint ?? '');
      const claiming = claimScript(context, strategy, keys, token, call, 'of a claim that timed out');
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

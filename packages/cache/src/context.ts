import type { Bus } from './bus.js';
import type { CacheCounters } from './counters.js';
import type { DurableLayer } from './durable.js';
import type { CacheEvents } from './events.js';
import type { MemoryTier } from './memory-tier.js';
import type { ResolvedCacheOptions } from './options.js';
import type { BusMessage, RedisTier } from './redis-tier.js';

/**
 * What the jobs of one cache (loading, invalidation, the public methods) share: its options, its
 * tiers and bus, its counters and events, and the id it signs its bus messages and locks with.
 * @internal
 */
export interface CacheContext {
  readonly options: ResolvedCacheOptions;
  readonly events: CacheEvents;
  readonly counters: CacheCounters;
  readonly l1: MemoryTier;
  /** Undefined for a memory-only cache; then `bus` is too. */
  readonly l2: RedisTier | undefined;
  readonly bus: Bus | undefined;
  /** The durable tier behind L2, if one was given. */
  readonly durable: DurableLayer | undefined;
  /** This instance's id: the sender of its bus messages (so it skips its own), the prefix of its lock tokens. */
  readonly id: string;
}

/** The body of a bus message, before the sender is added. */
type MessageBody =
  | { t: 'set' | 'rel'; k: string }
  | { t: 'del'; k: string[] }
  | { t: 'tag'; g: string[] }
  | { t: 'pfx'; p: string }
  | { t: 'clr' };

/** A bus message sent by this instance. @internal */
export function busMessage(context: CacheContext, body: MessageBody): BusMessage {
  return { i: context.id, ...body } as BusMessage;
}

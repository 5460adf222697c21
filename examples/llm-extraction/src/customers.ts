/**
 * Customer records from a slow upstream (a simulated CRM), read through @idem/cache: memory in
 * front, Redis behind when configured, one upstream call per customer however many requests ask
 * at once, and the last known record served (marked stale) when the upstream fails.
 */
import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Cache } from '@idem/cache';
import { ProblemError } from './problem.js';

/** What the CRM knows about a customer. */
export interface Customer {
  id: string;
  name: string;
  tier: 'enterprise' | 'growth' | 'starter';
  account_manager: string;
}

/** The upstream: slow, and sometimes down. */
export interface CustomerDirectory {
  lookup(id: string): Promise<Customer>;
}

/** Options of {@link simulatedDirectory}. */
export interface SimulatedDirectoryOptions {
  /** Time per lookup. @default 300 */
  latencyMs?: number;
  /** Share of lookups that fail, 0–1. @default 0 */
  failureRate?: number;
  /** For tests. @default Math.random */
  random?: () => number;
}

const NAMES = [
  'Acme Corp',
  'Globex',
  'Initech',
  'Umbrella Health',
  'Stark Logistics',
  'Wayne Foods',
  'Hooli',
  'Vandelay Imports',
  'Soylent Labs',
  'Tyrell Systems',
  'Cyberdyne Retail',
  'Wonka Brands',
];
const TIERS: Customer['tier'][] = ['enterprise', 'growth', 'starter'];
const MANAGERS = ['Priya Raman', 'Tom Becker', 'Ana Souza', 'Kenji Sato'];

/** A deterministic CRM: the same id always names the same customer, after `latencyMs`. */
export function simulatedDirectory(options: SimulatedDirectoryOptions = {}): CustomerDirectory {
  const { latencyMs = 300, failureRate = 0, random = Math.random } = options;
  return {
    async lookup(id) {
      if (latencyMs > 0) await sleep(latencyMs);
      if (failureRate > 0 && random() < failureRate) throw new Error('CRM unavailable (simulated: CRM_FAILURE_RATE)');
      const digest = createHash('sha256').update(id).digest();
      return {
        id,
        name: NAMES[digest[0]! % NAMES.length]!,
        tier: TIERS[digest[1]! % TIERS.length]!,
        account_manager: MANAGERS[digest[2]! % MANAGERS.length]!,
      };
    },
  };
}

/** A customer and where the answer came from. */
export interface CustomerLookup {
  customer: Customer;
  /** `l1` (this process's memory), `l2` (Redis), `durable` (a durable tier; this example has none) or `loader` (the CRM itself). */
  source: 'l1' | 'l2' | 'durable' | 'loader';
  /** True when the CRM failed or was slow and an expired record was served. */
  stale: boolean;
  /** Epoch ms when the record stops being fresh. */
  expiresAt: number;
}

/** Customer lookups through the cache. */
export interface CustomerService {
  /** Throws a 502 {@link ProblemError} when the CRM fails and nothing, not even a stale record, is cached. */
  get(id: string): Promise<CustomerLookup>;
}

/**
 * Reads customers through `cache`: fresh for `ttlMs`, then served stale for up to `graceMs` while
 * the CRM fails or takes longer than a second.
 *
 * @example
 * const customers = customerService({ cache: createCache({ redis }), directory: simulatedDirectory(), ttlMs: 300_000, graceMs: 86_400_000 });
 * const { customer, stale } = await customers.get('cust-42');
 */
export function customerService(options: {
  cache: Cache;
  directory: CustomerDirectory;
  ttlMs: number;
  graceMs: number;
}): CustomerService {
  const { cache, directory, ttlMs, graceMs } = options;
  return {
    async get(id) {
      try {
        const entry = await cache.getOrSetEntry<Customer>(`customer:${id}`, () => directory.lookup(id), {
          ttl: ttlMs,
          grace: graceMs,
          // With a stale record at hand, a slow CRM is not worth waiting for.
          timeout: 1_000,
          // With nothing at hand, give up before the client does.
          hardTimeout: 10_000,
          tags: ['customers'],
        });
        return { customer: entry.value, source: entry.source, stale: entry.stale, expiresAt: entry.expiresAt };
      } catch (error) {
        throw new ProblemError(
          502,
          'customer_directory_unavailable',
          'Customer directory unavailable',
          `The customer directory could not be reached and customer ${JSON.stringify(id)} is not cached; retry shortly.`,
          { cause: error },
        );
      }
    },
  };
}

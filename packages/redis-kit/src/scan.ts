/**
 * Walking keys for admin calls (count, clear): SCAN in batches, never KEYS (which blocks the
 * server), on every master of a Cluster, since each node only scans its own slots.
 */
import type { Cluster, Redis } from 'ioredis';
import { keyPrefixOf, mastersOf } from './client.js';

/** A glob (SCAN's MATCH) that matches `text` literally. */
export function globEscape(text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&');
}

/** How the caller bounds each SCAN: its own timeout, error and (for the cache) circuit breaker. */
export type CallRunner = <T>(operation: string, call: () => Promise<T>) => Promise<T>;

/** Options of {@link scanKeys}. */
export interface ScanOptions {
  /** Runs each SCAN call, bounded as the caller bounds its calls. */
  run: CallRunner;
  /** SCAN's COUNT hint. @default 500 */
  count?: number;
  /** The operation name handed to `run`. @default 'scan' */
  operation?: string;
}

/**
 * Calls `visit` with each batch of keys that start with `prefix` and then match the glob
 * `pattern`, on every master `client` spans. `prefix` is a name as the caller uses it, before any
 * ioredis `keyPrefix`. The keys handed to `visit` are ready to send back on `connection`, the
 * master that holds them: without the `keyPrefix` that connection adds itself (on one node, the
 * caller's own names again).
 *
 * @example
 * await scanKeys(client, 'idem:', '{*}:rec', (connection, keys) => count += keys.length, { run });
 */
export async function scanKeys(
  client: Redis | Cluster,
  prefix: string,
  pattern: string,
  visit: (connection: Redis, keys: string[]) => Promise<void> | void,
  options: ScanOptions,
): Promise<void> {
  const { run, count = 500, operation = 'scan' } = options;
  // SCAN's MATCH is not prefixed by ioredis, but the keys it returns carry the prefix.
  const match = globEscape(keyPrefixOf(client) + prefix) + pattern;
  for (const connection of mastersOf(client)) {
    // The connection adds its own prefix again to keys sent back on it (a Cluster's node
    // connections carry it only when it was given in `redisOptions`).
    const own = keyPrefixOf(connection);
    let cursor = '0';
    do {
      const [next, keys] = await run(operation, () => connection.scan(cursor, 'MATCH', match, 'COUNT', count));
      cursor = next;
      if (keys.length === 0) continue;
      await visit(
        connection,
        own === '' ? keys : keys.map((key) => (key.startsWith(own) ? key.slice(own.length) : key)),
      );
    } while (cursor !== '0');
  }
}

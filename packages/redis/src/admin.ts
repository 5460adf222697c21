/**
 * Walking the store's keys for admin helpers: SCAN in batches (never KEYS, which blocks the
 * server), on every master of a Cluster since each node only scans its own slots.
 */
import type { Cluster, Redis } from 'ioredis';
import { withTimeout } from './timeout.js';

const SCAN_COUNT = 500;

/** The ioredis `keyPrefix` a connection adds to every key it sends ('' when none). */
function keyPrefixOf(connection: Redis | Cluster): string {
  const options = connection.options as { keyPrefix?: string; redisOptions?: { keyPrefix?: string } };
  return options.keyPrefix ?? options.redisOptions?.keyPrefix ?? '';
}

/** A glob that matches `text` literally. */
export function globEscape(text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&');
}

/**
 * Calls `visit` with each batch of keys that start with `prefix` and then match the glob
 * `pattern`, on every node `client` spans (names as the store uses them, before any ioredis
 * `keyPrefix`). The keys handed to
 * `visit` are the store's names again, ready to pass to `connection`. Every call is bounded.
 */
export async function scanKeys(
  client: Redis | Cluster,
  prefix: string,
  pattern: string,
  timeoutMs: number,
  visit: (connection: Redis, keys: string[]) => Promise<void>,
): Promise<void> {
  const serverPrefix = keyPrefixOf(client);
  const connections = client.isCluster ? (client as Cluster).nodes('master') : [client as Redis];
  for (const connection of connections) {
    // SCAN's MATCH is not prefixed by ioredis, but the keys it returns carry the prefix; the
    // connection will add its own prefix again when we send them back.
    const ownPrefix = keyPrefixOf(connection);
    let cursor = '0';
    do {
      const [next, keys] = await withTimeout(connection.scan(cursor, 'MATCH', globEscape(serverPrefix + prefix) + pattern, 'COUNT', SCAN_COUNT), timeoutMs, 'scan');
      cursor = next;
      if (keys.length > 0) await visit(connection, keys.map((key) => (key.startsWith(ownPrefix) ? key.slice(ownPrefix.length) : key)));
    } while (cursor !== '0');
  }
}

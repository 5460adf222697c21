/**
 * The bench's redis-server: the test harness's (test/harness/redis.mjs), started with room for the
 * bench's connections. What the bench reads from it: its pid (CPU from /proc), `INFO commandstats`
 * with the bench's own admin commands left out, and `CONFIG RESETSTAT`.
 */
import { RedisServer } from '../../test/harness/redis.mjs';

/** Commands the bench (through redis-cli) sends itself; never counted as traffic. */
const ADMIN = new Set([
  'config|resetstat',
  'info',
  'ping',
  'client|setname',
  'client|setinfo',
  'flushall',
  'dbsize',
  'memory|usage',
  'config|get',
]);

/**
 * Starts redis-server (no persistence) and resolves once it accepts connections.
 * @returns {Promise<RedisServer & { traffic(): Promise<Record<string, number>>, flushAll(): Promise<void> }>}
 */
export async function startRedis() {
  const server = await RedisServer.start({ args: ['--maxclients', '20000'] });
  return Object.assign(server, {
    /** Calls per command since the last reset, the bench's own admin commands left out. */
    async traffic() {
      const stats = await server.commandStats();
      return Object.fromEntries(Object.entries(stats).filter(([name]) => !ADMIN.has(name)));
    },
    async flushAll() {
      await server.cli('flushall');
    },
  });
}

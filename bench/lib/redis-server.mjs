/**
 * A redis-server of the bench's own, on a free port in a temporary directory, with what the bench
 * reads from it: its pid (CPU from /proc), `INFO commandstats` and `CONFIG RESETSTAT`.
 * Plain .mjs so that `node bench/run.mjs` needs no TypeScript step.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';

/** A free TCP port on 127.0.0.1. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Commands the bench itself sends on its admin connection; never counted as traffic. */
const ADMIN = new Set(['config|resetstat', 'info', 'ping', 'client|setname', 'client|setinfo', 'flushall', 'dbsize', 'memory|usage', 'config|get']);

/**
 * Starts redis-server (no persistence) and resolves once it accepts connections.
 * @returns {Promise<{ port: number, url: string, pid: number, admin: Redis, resetStats(): Promise<void>, commandStats(): Promise<Record<string, number>>, stop(): Promise<void> }>}
 */
export async function startRedis() {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'idem-bench-redis-'));
  const child = spawn('redis-server', [
    '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
    '--daemonize', 'no', '--dir', dir, '--loglevel', 'warning', '--maxclients', '20000',
  ], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  await new Promise((resolve, reject) => {
    child.once('error', (error) => reject(error.code === 'ENOENT' ? new Error('redis-server is not on PATH (apt-get install -y redis-server)') : error));
    child.once('exit', (code, signal) => reject(new Error(`redis-server exited early (${code ?? signal})`)));
    // Poll with PING: the log level is quiet, and a connection that answers is the real signal.
    const started = Date.now();
    const probe = () => {
      const client = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
      client.on('error', () => {});
      client.connect().then(() => client.ping()).then(() => {
        client.disconnect();
        resolve();
      }, () => {
        client.disconnect();
        if (Date.now() - started > 10_000) reject(new Error('redis-server did not answer within 10 s'));
        else setTimeout(probe, 50);
      });
    };
    probe();
  });
  child.stdout.resume();
  child.stderr.resume();
  const admin = new Redis({ port, host: '127.0.0.1' });

  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    pid: child.pid,
    admin,
    async resetStats() {
      await admin.config('RESETSTAT');
    },
    /** Calls per command since the last reset, the bench's own admin commands left out. */
    async commandStats() {
      const text = await admin.info('commandstats');
      const stats = {};
      for (const match of text.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
        if (!ADMIN.has(match[1])) stats[match[1]] = Number(match[2]);
      }
      return stats;
    },
    async stop() {
      admin.disconnect();
      process.off('exit', killOnExit);
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

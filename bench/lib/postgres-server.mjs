/**
 * The bench's PostgreSQL: the test harness's (test/harness/postgres.mjs), an `initdb` into a
 * temporary folder and `postgres` on a free port of 127.0.0.1 (as the `postgres` user when the
 * bench runs as root), stopped by its own pid, never the machine's own server. What the bench reads
 * from it: the CPU of the postmaster and every process it forked (/proc), its version, and it
 * empties the bench's tables between groups.
 */
import pg from 'pg';
import { PostgresServer } from '../../test/harness/postgres.mjs';
import { treeCpuMicros } from './proc.mjs';

/** The tables the server variants write (servers/variants.mjs); emptied between groups. */
export const BENCH_TABLES = ['bench_floor', 'bench_idem_lease', 'bench_idem_tx'];

/**
 * Starts PostgreSQL and resolves once it accepts connections.
 * @returns {Promise<PostgresServer & { version: string, cpuMicros(): number, truncate(): Promise<void> }>}
 */
export async function startPostgres() {
  const server = await PostgresServer.start();
  const admin = new pg.Client({ connectionString: server.url });
  await admin.connect();
  const { rows } = await admin.query('SHOW server_version');
  await admin.end();
  return Object.assign(server, {
    version: String(rows[0].server_version),
    /** CPU of the whole server (postmaster, backends, background workers) in µs. */
    cpuMicros() {
      return treeCpuMicros(server.pid);
    },
    /** Empties the bench's tables that exist (each server variant creates its own). */
    async truncate() {
      const client = new pg.Client({ connectionString: server.url });
      await client.connect();
      try {
        const present = await client.query('SELECT relname FROM pg_class WHERE relname = ANY($1) AND relkind = $2', [
          BENCH_TABLES,
          'r',
        ]);
        if (present.rows.length > 0)
          await client.query(`TRUNCATE ${present.rows.map((r) => `"${r.relname}"`).join(', ')}`);
        // Fresh statistics and a clean visibility map for the next group's plans.
        for (const { relname } of present.rows) await client.query(`VACUUM ANALYZE "${relname}"`);
      } finally {
        await client.end();
      }
    },
  });
}

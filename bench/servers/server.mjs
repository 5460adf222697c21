/**
 * One server under test, in its own process. Started by the bench with its configuration as JSON in
 * argv[2]; listens on a free port of 127.0.0.1 and talks to the bench over IPC:
 *
 *   → { type: 'ready', port, pid }                 once listening
 *   ← { type: 'stats' }  → { type: 'stats', cpu, rss, executions, statements }
 *   ← { type: 'profile-start' }                    starts the V8 CPU profiler (after warm-up)
 *   ← { type: 'profile-stop', path } → { type: 'profiled' }   writes the .cpuprofile
 *   ← { type: 'exit' }                             closes connections and exits
 *
 * `cpu` is process.cpuUsage() (user + system, µs): the server's own CPU, read around each window;
 * `statements`: SQL statements its pg clients sent so far.
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { buildServer } from './frameworks.mjs';
import { counters, FLOOR_KEY, FLOOR_PG_KEY, FLOOR_TABLE, orderBody } from './variants.mjs';

const cfg = JSON.parse(process.argv[2]);

async function main() {
  if (cfg.variant === 'floor-get') {
    // The floor reads a value the size of a stored response.
    const { Redis } = await import('ioredis');
    const client = new Redis(cfg.redisUrl);
    await client.set(FLOOR_KEY, JSON.stringify(orderBody()));
    client.disconnect();
    counters.executions = 0;
  }
  if (cfg.variant.startsWith('floor-pg')) {
    // The floors' table has the store's schema; floor-pg-get reads a completed row of a stored
    // response's size. Both floor servers of a group may run this at once: the DDL is serialised.
    const { schemaSql } = await import('@idem/postgres');
    const { default: pg } = await import('pg');
    const client = new pg.Client({ connectionString: cfg.pgUrl });
    await client.connect();
    await client.query(`SELECT pg_advisory_xact_lock(4242);\n${schemaSql(FLOOR_TABLE)}`);
    await client.query(
      `INSERT INTO ${FLOOR_TABLE} (key, state, started_at, status, headers, body, completed_at, expires_at)
       VALUES ($1, 'completed', now(), 201, $2::jsonb, $3, now(), now() + interval '1 day')
       ON CONFLICT (key) DO NOTHING`,
      [
        FLOOR_PG_KEY,
        JSON.stringify({ 'content-type': 'application/json; charset=utf-8' }),
        Buffer.from(JSON.stringify(orderBody())),
      ],
    );
    await client.end();
    counters.executions = 0;
    counters.statements = 0;
  }
  const { server, close } = await buildServer(cfg);
  server.keepAliveTimeout = 60_000;
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));

  let session;
  const post = (method, params) =>
    new Promise((resolve, reject) =>
      session.post(method, params, (error, result) => (error ? reject(error) : resolve(result))),
    );
  process.on('message', async (message) => {
    if (message.type === 'profile-start') {
      session = new Session();
      session.connect();
      await post('Profiler.enable');
      await post('Profiler.setSamplingInterval', { interval: 100 });
      await post('Profiler.start');
    } else if (message.type === 'profile-stop') {
      const { profile } = await post('Profiler.stop');
      writeFileSync(message.path, JSON.stringify(profile));
      session.disconnect();
      process.send({ type: 'profiled' });
    } else if (message.type === 'stats') {
      const cpu = process.cpuUsage();
      process.send({
        type: 'stats',
        cpu: cpu.user + cpu.system,
        rss: process.memoryUsage.rss(),
        executions: counters.executions,
        statements: counters.statements,
      });
    } else if (message.type === 'exit') {
      server.closeAllConnections?.();
      server.close();
      // Some peers' clients never settle their disconnect (node-redis v4 here): don't wait long.
      await Promise.race([close(), new Promise((resolve) => setTimeout(resolve, 300))]);
      process.exit(0);
    }
  });
  // The bench going away takes the server with it.
  process.on('disconnect', () => process.exit(0));
  process.send({ type: 'ready', port: server.address().port, pid: process.pid });
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});

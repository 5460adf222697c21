/**
 * One server under test, in its own process. Started by the bench with its configuration as JSON in
 * argv[2]; listens on a free port of 127.0.0.1 and talks to the bench over IPC:
 *
 *   → { type: 'ready', port, pid }                 once listening
 *   ← { type: 'stats' }  → { type: 'stats', cpu, rss, executions }
 *   ← { type: 'profile-start' }                    starts the V8 CPU profiler (after warm-up)
 *   ← { type: 'profile-stop', path } → { type: 'profiled' }   writes the .cpuprofile
 *   ← { type: 'exit' }                             closes connections and exits
 *
 * `cpu` is process.cpuUsage() (user + system, µs): the server's own CPU, read around each window.
 */
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { Session } from 'node:inspector';
import { buildExpress, buildKoa, counters, FLOOR_KEY, orderBody } from './variants.mjs';

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
  const { app, close } = cfg.framework === 'koa' ? await buildKoa(cfg) : await buildExpress(cfg);
  const server = createServer(cfg.framework === 'koa' ? app.callback() : app);
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

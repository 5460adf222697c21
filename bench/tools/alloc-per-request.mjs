#!/usr/bin/env node
/**
 * Bytes allocated per request, by allocation site, of server variants under the same load: V8's
 * sampling heap profiler with the objects that minor and major GCs collected kept in (a request's
 * garbage is what a scavenge pays for), one server process per variant, a redis-server of its own.
 * With two variants, the sites where the second allocates more, largest first (bench/FINDINGS.md, Q).
 *
 * Usage: node bench/tools/alloc-per-request.mjs <express|koa|fastify|hono> <passthrough|replay|first> <variant>… [--requests=10000] [--interval=512]
 * Sampled (one sample per `--interval` bytes on average): per-site figures under ~100 bytes are noise.
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const SELF = fileURLToPath(import.meta.url);
const args = process.argv.slice(2);
const options = Object.fromEntries(args.filter((a) => a.startsWith('--')).map((a) => a.slice(2).split('=')));

if ('serve' in options) {
  // The server side: one variant, profiled on the driver's say-so over IPC.
  const { Session } = await import('node:inspector/promises');
  const { buildServer } = await import('../servers/frameworks.mjs');
  const [framework, variant, redisUrl] = args.filter((a) => !a.startsWith('--'));
  const { server } = await buildServer({ framework, variant, redisUrl });
  const session = new Session();
  session.connect();
  process.on('message', async (message) => {
    if (message === 'start') {
      await session.post('HeapProfiler.startSampling', {
        samplingInterval: Number(options.interval ?? 512),
        includeObjectsCollectedByMajorGC: true,
        includeObjectsCollectedByMinorGC: true,
      });
      process.send({ started: true });
    } else if (message === 'stop') {
      const { profile } = await session.post('HeapProfiler.stopSampling');
      process.send({ profile });
    }
  });
  server.listen(0, '127.0.0.1', () => process.send({ port: server.address().port }));
} else {
  const autocannon = (await import('autocannon')).default;
  const { completeKey, requestFor } = await import('../lib/load.mjs');
  const { startRedis } = await import('../lib/redis-server.mjs');
  const [framework, scenario, ...variants] = args.filter((a) => !a.startsWith('--'));
  if (!['passthrough', 'replay', 'first'].includes(scenario) || variants.length === 0) {
    console.error(
      'usage: node bench/tools/alloc-per-request.mjs <framework> <passthrough|replay|first> <variant>… [--requests=N]',
    );
    process.exit(2);
  }
  const requests = Number(options.requests ?? 10_000);
  const request = requestFor(
    scenario === 'first' ? 'unique' : scenario === 'replay' ? `alloc-${Date.now()}` : undefined,
  );
  const redis = await startRedis();

  const siteOf = ({ functionName, url, lineNumber }) =>
    `${functionName || '(anonymous)'} ${url
      .replace(/^file:\/\//, '')
      .replace(/.*node_modules\//, 'nm:')
      .replace(/.*\/work\/main\//, '')}:${lineNumber + 1}`;

  /** Bytes per request by site, and in all, of one variant. */
  async function measure(variant) {
    const child = fork(SELF, [framework, variant, redis.url, '--serve', `--interval=${options.interval ?? 512}`], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      env: { ...process.env, NODE_ENV: 'production' },
    });
    const next = () => new Promise((resolve) => child.once('message', resolve));
    const { port } = await next();
    const url = `http://127.0.0.1:${port}${request.path}`;
    const load = (amount) =>
      new Promise((resolve, reject) =>
        autocannon({ ...request, url, connections: 32, amount }, (error, result) =>
          error ? reject(error) : resolve(result),
        ),
      );
    if (scenario === 'replay') await completeKey(url, request);
    await load(3_000); // warm: JIT and pools settled before the profile starts
    child.send('start');
    await next();
    const result = await load(requests);
    if (result.non2xx > 0 || result.errors > 0)
      throw new Error(`${variant}: ${result.non2xx} non-2xx, ${result.errors} errors`);
    child.send('stop');
    const { profile } = await next();
    child.kill();
    const sites = new Map();
    let total = 0;
    (function walk(node) {
      total += node.selfSize;
      const site = siteOf(node.callFrame);
      sites.set(site, (sites.get(site) ?? 0) + node.selfSize);
      node.children.forEach(walk);
    })(profile.head);
    return { total: total / requests, sites: new Map([...sites].map(([site, bytes]) => [site, bytes / requests])) };
  }

  const measured = [];
  for (const variant of variants) {
    const m = await measure(variant);
    measured.push(m);
    console.log(`${framework} ${scenario} ${variant}: ${m.total.toFixed(0)} bytes allocated per request`);
  }
  if (measured.length === 2) {
    const [a, b] = measured;
    const rows = [...new Set([...a.sites.keys(), ...b.sites.keys()])]
      .map((site) => [site, a.sites.get(site) ?? 0, b.sites.get(site) ?? 0])
      .sort((x, y) => y[2] - y[1] - (x[2] - x[1]));
    console.log(`\n${variants[1]} − ${variants[0]}, bytes per request by allocation site, largest first:`);
    for (const [site, x, y] of rows.slice(0, Number(options.top ?? 30)))
      console.log(`${(y - x).toFixed(0).padStart(7)}  (${x.toFixed(0)} → ${y.toFixed(0)})  ${site}`);
  }
  await redis.stop();
  process.exit(0);
}

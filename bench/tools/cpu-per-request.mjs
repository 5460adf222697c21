#!/usr/bin/env node
/**
 * Server CPU per request (user and system, from /proc) of server variants under the same load,
 * in interleaved rounds, median per variant. A decomposition tool: on a steady machine it tells
 * what one layer adds (FINDINGS.md, K and R), e.g. `express first floor-pinned store-pinned
 * idem-redis --rate=2000`. It counts the server's process CPU (every thread: GC and JIT helpers included),
 * with the server saturated as in the bench, so the figures match the bench's "server CPU" column.
 * CPU per request is not additive across layers: a Redis round trip lets requests queue and be
 * served in batches, which makes a server with one GET per request cheaper per request than
 * without it (FINDINGS.md, K). Compare variants that make the same round trips.
 *
 * Usage: node bench/tools/cpu-per-request.mjs <express|koa|fastify|hono> <passthrough|replay|first> <variant>… [--rounds=7] [--duration=2] [--connections=32] [--rate=N]
 * Starts its own redis-server on a free port. `--rate=N` loads every variant at N requests per
 * second in all instead of as fast as it answers: at an equal rate, CPU per request compares
 * variants fairly (closed-loop, the faster server serves more requests per event-loop turn).
 * redis-server's own CPU per request is printed too. The total columns (server and redis-server)
 * are every thread's scheduled time from /proc/<pid>/task/<tid>/schedstat, to the nanosecond;
 * user and system are the 10 ms ticks of /proc/<pid>/stat (5 µs per request over 2 s at
 * 1 000 req/s), shown for the split only.
 *
 * A variant may carry environment settings for its server after '@' (`idem-redis@NAME=value,…`),
 * for A/B runs of a change kept behind a switch while it is measured.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import autocannon from 'autocannon';
import { completeKey, requestFor } from '../lib/load.mjs';
import { threadsCpuMicros } from '../lib/proc.mjs';
import { startRedis } from '../lib/redis-server.mjs';
import { STANDALONE, listeningPort } from '../lib/server-process.mjs';

const args = process.argv.slice(2);
const options = Object.fromEntries(args.filter((a) => a.startsWith('--')).map((a) => a.slice(2).split('=')));
const [framework, scenario, ...variants] = args.filter((a) => !a.startsWith('--'));
if (
  !['express', 'koa', 'fastify', 'hono'].includes(framework) ||
  !['passthrough', 'replay', 'first'].includes(scenario) ||
  variants.length === 0
) {
  console.error(
    'usage: node bench/tools/cpu-per-request.mjs <express|koa|fastify|hono> <passthrough|replay|first> <variant>… [--rounds=7] [--duration=2] [--connections=32]',
  );
  process.exit(2);
}
const rounds = Number(options.rounds ?? 7);
const durationS = Number(options.duration ?? 2);
const connections = Number(options.connections ?? 32);
const rate = options.rate === undefined ? undefined : Number(options.rate);
if (rate !== undefined && !(rate > 0)) {
  console.error(`--rate: expected a positive number of requests per second, got ${options.rate}`);
  process.exit(2);
}
const request = requestFor(scenario === 'first' ? 'unique' : scenario === 'replay' ? `cpu-${Date.now()}` : undefined);
const TICK_US = 1e6 / 100; // /proc/<pid>/stat counts clock ticks of 10 ms

/** User and system CPU of a process so far, in µs (10 ms ticks), and `exact`: both together, from schedstat. */
function cpu(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return { user: Number(fields[11]) * TICK_US, system: Number(fields[12]) * TICK_US, exact: threadsCpuMicros(pid) };
}

function load(url, duration) {
  return new Promise((resolve, reject) => {
    autocannon(
      {
        url,
        method: request.method,
        headers: request.headers,
        body: request.body,
        idReplacement: request.idReplacement,
        connections,
        duration,
        sampleInt: 50,
        ...(rate === undefined ? {} : { overallRate: rate }),
      },
      (error, result) => (error ? reject(error) : resolve(result)),
    );
  });
}

const redis = await startRedis();
const servers = [];
try {
  for (const variant of variants) {
    const child = spawn(process.execPath, [STANDALONE, framework, variant, redis.url], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const port = await listeningPort(child, variant);
    servers.push({ variant, child, url: `http://127.0.0.1:${port}${request.path}`, rounds: [] });
  }
  for (const server of servers) {
    if (scenario === 'replay') await completeKey(server.url, request);
    await load(server.url, durationS); // warm-up: past V8's tiering
  }
  for (let round = 0; round < rounds; round++) {
    // A B C, C B A, …: each variant sees the machine's drift from both sides.
    for (const server of round % 2 === 0 ? servers : [...servers].reverse()) {
      const before = cpu(server.child.pid);
      const redisBefore = cpu(redis.pid);
      const result = await load(server.url, durationS);
      const after = cpu(server.child.pid);
      const redisAfter = cpu(redis.pid);
      const answered = result['2xx'];
      if (result.non2xx > 0) throw new Error(`${server.variant}: ${result.non2xx} answers were not 2xx`);
      server.rounds.push({
        user: (after.user - before.user) / answered,
        system: (after.system - before.system) / answered,
        redis: (redisAfter.exact - redisBefore.exact) / answered,
        exact: (after.exact - before.exact) / answered,
        rps: answered / durationS,
      });
    }
  }
} finally {
  for (const server of servers) server.child.kill('SIGTERM');
  await redis.stop();
}

const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const base = servers[0];
console.log(
  `${framework} ${scenario}: server CPU per request, median of ${rounds} interleaved rounds of ${durationS} s (${connections} connections${rate === undefined ? ', closed loop' : `, ${rate} req/s`})`,
);
console.log('| variant | user µs | system µs | total µs | + vs first row | redis-server µs | req/s |');
console.log('|---|--:|--:|--:|--:|--:|--:|');
const totalOf = (server) => median(server.rounds.map((r) => r.exact));
for (const server of servers) {
  const total = totalOf(server);
  console.log(
    `| ${server.variant} | ${median(server.rounds.map((r) => r.user)).toFixed(1)} | ${median(server.rounds.map((r) => r.system)).toFixed(1)} | ${total.toFixed(1)} | ${(total - totalOf(base)).toFixed(1)} | ${median(server.rounds.map((r) => r.redis)).toFixed(1)} | ${median(server.rounds.map((r) => r.rps)).toFixed(0)} |`,
  );
}

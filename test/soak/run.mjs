#!/usr/bin/env node
// The soak: several app processes (Express and Koa, @idem/* with redisStore) on one redis-server
// that this harness starts, a mixed load from this process, and a chaos schedule that pauses and
// kills Redis and SIGKILLs app processes mid-handler. At the end it checks the ledgers and writes
// the figures as JSON and Markdown.
//
//   npm run soak                          60 s of load → bench/results/soak.json + SOAK.md
//   npm run soak -- --duration 300        longer
//   npm run soak -- --quick               ≤ 60 s in all (the CI mode) → bench/results/tmp/
//   options: --seed <n> (replay a chaos schedule), --out <dir>, --workers <n> (default 24),
//            --keep (keep the raw ledgers even when every invariant holds),
//            --analyze <ledger dir> (re-analyse a kept run; writes next to it unless --out)
//
// Exits 1 when an invariant fails. Packages are imported from their built dist: build first
// (`npm run soak` does).
import { fork } from 'node:child_process';
import { mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Agent } from 'node:http';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { analyze } from './analyze.mjs';
import { createLoad, prng, sleep } from './load.mjs';
import { RedisServer } from '../harness/redis.mjs';
import { markdown, summary } from './report.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, '../..');
const APP = join(HERE, 'app.mjs');

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    duration: { type: 'string' },
    seed: { type: 'string' },
    out: { type: 'string' },
    workers: { type: 'string' },
    keep: { type: 'boolean', default: false },
    analyze: { type: 'string' },
  },
});

const quick = args.quick;
const loadSeconds = Number(args.duration ?? (quick ? 30 : 60));
if (!Number.isFinite(loadSeconds) || loadSeconds < 10) throw new Error('--duration: at least 10 seconds');
if (quick && loadSeconds > 35) throw new Error('--quick stays within 60 s in all: --duration at most 35');
const seed = Number(args.seed ?? Math.floor(Math.random() * 2 ** 31));
const workers = Number(args.workers ?? 24);
const outDir = resolve(args.out ?? join(ROOT, quick ? 'bench/results/tmp' : 'bench/results'));

// Lease well above the longest pause (2 s) and the longest store call (commandTimeout): the
// guarantee's assumption. Handlers of up to 1.4 × lockTtl run on renewals.
const config = { lockTtl: 5_000, commandTimeout: 1_000, pollInterval: 200, waitTimeout: 8_000 };
const SLOTS = ['express', 'koa', 'express', 'koa'];
const drainMs = quick ? 6_000 : 10_000;

const random = prng(seed);
const between = (min, max) => min + random() * (max - min);
const runId = `soak${seed.toString(36)}${Date.now().toString(36)}`;
const ledgerDir = args.analyze ? resolve(args.analyze) : mkdtempSync(join(tmpdir(), 'idem-soak-'));
const appLog = openSync(join(ledgerDir, 'apps.log'), 'a');
const started = Date.now();
const log = (message) => process.stdout.write(`[soak +${((Date.now() - started) / 1000).toFixed(1)}s] ${message}\n`);

const chaos = [];
/** @type {(AppProcess | undefined)[]} */
const slots = SLOTS.map(() => undefined);
let generation = 0;
let redis;
let stopping = false;

/** One forked app process, serving one slot. */
class AppProcess {
  constructor(slot, framework, child, port) {
    Object.assign(this, { slot, framework, child, port, pid: child.pid, killed: false, outstanding: 0 });
    this.agent = new Agent({ keepAlive: true, maxSockets: 256 });
  }

  get alive() {
    return !this.killed && this.child.exitCode === null && this.child.signalCode === null;
  }
}

async function startApp(slot) {
  const framework = SLOTS[slot];
  const ledger = join(ledgerDir, `ledger-${slot}-${++generation}.ndjson`);
  const child = fork(APP, [], {
    env: { ...process.env, IDEM_SOAK_APP: JSON.stringify({ framework, slot, ledger, redisUrl: redis.url, ...config }) },
    execArgv: [],
    stdio: ['ignore', appLog, appLog, 'ipc'],
  });
  const ready = await new Promise((resolveReady, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`app ${slot} (${framework}) not ready after 15 s; see ${join(ledgerDir, 'apps.log')}`)),
      15_000,
    );
    child.once('message', (message) => {
      clearTimeout(timer);
      resolveReady(message);
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`app ${slot} (${framework}) exited before it was ready (${code ?? signal})`));
    });
  });
  const app = new AppProcess(slot, framework, child, ready.port);
  child.once('exit', (code, signal) => {
    if (app.killed || stopping) return;
    // Nobody asked it to go: a crash. Recorded (an invariant) and replaced, so the soak goes on.
    chaos.push({ type: 'app-crash', slot, pid: app.pid, framework, at: Date.now(), code, signal });
    log(`app ${slot} (${framework}, pid ${app.pid}) CRASHED (${code ?? signal}); restarting`);
    if (slots[slot] === app)
      startApp(slot).then(
        (next) => (slots[slot] = next),
        (error) => log(String(error)),
      );
  });
  slots[slot] = app;
  chaos.push({ type: 'app-start', slot, pid: app.pid, framework, at: Date.now() });
  return app;
}

async function killApp(app) {
  app.killed = true;
  const at = Date.now();
  const outstanding = app.outstanding;
  const exited = new Promise((done) =>
    app.child.exitCode !== null || app.child.signalCode !== null ? done() : app.child.once('exit', done),
  );
  app.child.kill('SIGKILL');
  await exited;
  app.agent.destroy();
  chaos.push({
    type: 'app-kill',
    slot: app.slot,
    pid: app.pid,
    framework: app.framework,
    at,
    exitedAt: Date.now(),
    outstanding,
  });
  return outstanding;
}

const pool = {
  live: () => slots.filter((app) => app?.alive),
  bySlot: (slot) => slots[slot],
};

/**
 * The chaos schedule, drawn from the seed before the load starts. Redis: a fault every 5–9 s,
 * one in ~25 s of load a kill (down 0.5–2 s, back empty), the rest pauses of 0.3–2 s. Apps: a
 * SIGKILL every 2.5–4.5 s of the process with the most requests in flight, restarted 0.2–1.2 s later.
 */
function schedule(loadMs) {
  const redisEvents = [];
  // Pauses alternate: under commandTimeout (requests wait them out) and over it (up to 2 s:
  // 503s and store calls that time out), always under the 5 s lease.
  for (let t = 3_000; t < loadMs - 5_000; t += between(5_000, 9_000)) {
    const long = redisEvents.length % 2 === 0;
    redisEvents.push({ t, type: 'pause', ms: Math.round(long ? between(1_200, 2_000) : between(300, 900)) });
  }
  const kills = Math.max(1, Math.round(loadMs / 25_000));
  // Spread the kills over the first 80 % of the run (the k-th in the k-th part of it), so that
  // the keys of the last stretch, which the final check re-sends, outlive the last restart.
  const span = loadMs * 0.8;
  for (let k = 0; k < kills && redisEvents.length; k++) {
    const part = redisEvents.filter(
      (e) => e.t >= (k * span) / kills && e.t < ((k + 1) * span) / kills && e.type === 'pause',
    );
    const chosen = part[Math.floor(random() * part.length)];
    if (chosen) Object.assign(chosen, { type: 'kill', ms: Math.round(between(500, 2_000)) });
  }
  const appEvents = [];
  for (let t = 2_000; t < loadMs - 2_500; t += between(2_500, 4_500))
    appEvents.push({ t, restartMs: Math.round(between(200, 1_200)) });
  return { redisEvents, appEvents };
}

async function runRedisChaos(events, t0) {
  for (const event of events) {
    await sleep(t0 + event.t - Date.now());
    if (event.type === 'pause') {
      const from = Date.now();
      redis.pause();
      await sleep(event.ms);
      redis.resume();
      chaos.push({ type: 'redis-pause', from, to: Date.now() });
      log(`Redis paused ${Date.now() - from} ms`);
    } else {
      const at = Date.now();
      await redis.kill();
      const downAt = Date.now();
      await sleep(event.ms);
      await redis.launch();
      chaos.push({ type: 'redis-kill', at, downAt, upAt: Date.now() });
      log(`Redis killed, restarted empty after ${Date.now() - at} ms`);
    }
  }
}

async function runAppChaos(events, t0) {
  for (const event of events) {
    await sleep(t0 + event.t - Date.now());
    const live = pool.live();
    if (live.length < SLOTS.length) continue;
    // Mid-handler: the process with the most requests in flight.
    const victim = live.reduce((a, b) =>
      b.outstanding > a.outstanding || (b.outstanding === a.outstanding && random() < 0.5) ? b : a,
    );
    const outstanding = await killApp(victim);
    log(`SIGKILL app ${victim.slot} (${victim.framework}, pid ${victim.pid}) with ${outstanding} requests in flight`);
    await sleep(event.restartMs);
    await startApp(victim.slot);
  }
}

function readLedgers() {
  const lines = [];
  let broken = 0;
  for (const name of readdirSync(ledgerDir).filter((n) => n.startsWith('ledger-'))) {
    for (const line of readFileSync(join(ledgerDir, name), 'utf8').split('\n')) {
      if (line === '') continue;
      try {
        lines.push(JSON.parse(line));
      } catch {
        broken++;
      }
    }
  }
  return { lines, broken };
}

/** Resolves once every execution that started in a live process has sent its response (bounded). */
async function handlersDone(timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const killed = new Set(chaos.filter((c) => c.type === 'app-kill' || c.type === 'app-crash').map((c) => c.pid));
    const { lines } = readLedgers();
    const closed = new Set(lines.filter((l) => l.e === 'sent' || l.e === 'outcome').map((l) => l.x));
    const running = lines.filter((l) => l.e === 'start' && !closed.has(l.x) && !killed.has(l.pid)).length;
    if (running === 0 || Date.now() > deadline) return running;
    await sleep(200);
  }
}

/** Every idem key left in Redis: locks and in-flight records are stuck keys once leases lapsed. */
async function scanRedis() {
  const client = new Redis(redis.url, { maxRetriesPerRequest: 2 });
  try {
    const found = { locks: [], inFlight: [], completed: 0 };
    let cursor = '0';
    do {
      const [next, keys] = await client.scan(cursor, 'MATCH', 'idem:*', 'COUNT', 1000);
      cursor = next;
      for (const key of keys) {
        if (key.endsWith(':lock')) found.locks.push({ key, pttl: await client.pttl(key) });
        else if (key.endsWith(':rec')) {
          const state = await client.hget(key, 's');
          if (state === 'c') found.completed++;
          else found.inFlight.push({ key, state, pttl: await client.pttl(key) });
        }
      }
    } while (cursor !== '0');
    return found;
  } finally {
    client.disconnect();
  }
}

async function redisVersion() {
  const client = new Redis(redis.url);
  try {
    return /redis_version:(\S+)/.exec(await client.info('server'))?.[1] ?? 'unknown';
  } finally {
    client.disconnect();
  }
}

async function mapLimit(items, limit, fn) {
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < items.length) await fn(items[next++]);
    }),
  );
}

async function shutdown() {
  stopping = true;
  await Promise.all(
    slots.map(async (app) => {
      if (!app?.alive) return;
      app.agent.destroy();
      const exited = new Promise((done) => app.child.once('exit', done));
      app.child.send({ type: 'shutdown' });
      const timer = setTimeout(() => app.child.kill('SIGKILL'), 3_000);
      await exited;
      clearTimeout(timer);
    }),
  );
  await redis?.stop();
}

process.once('exit', () => {
  for (const app of slots) if (app?.alive) app.child.kill('SIGKILL');
  if (redis?.alive) {
    redis.child.kill('SIGKILL');
    rmSync(redis.dir, { recursive: true, force: true });
  }
});
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    log(`${signal}: stopping; raw ledgers kept in ${ledgerDir}`);
    process.exit(130);
  });
}

async function main() {
  const loadBefore = loadavg()[0];
  redis = await RedisServer.start();
  const version = await redisVersion();
  await Promise.all(SLOTS.map((_, slot) => startApp(slot)));
  log(
    `redis-server ${version} on ${redis.port}; apps ${slots.map((a) => `${a.framework}:${a.port}`).join(', ')}; seed ${seed}; ledgers in ${ledgerDir}`,
  );

  const requests = [];
  const loadMs = loadSeconds * 1_000;
  const t0 = Date.now();
  const loadEnd = t0 + loadMs;
  const { redisEvents, appEvents } = schedule(loadMs);
  const load = createLoad({
    pool,
    random,
    requests,
    loadEnd,
    retryEnd: loadEnd + drainMs,
    lockTtl: config.lockTtl,
    runId,
  });
  const progress = setInterval(() => log(`${requests.length} requests`), 10_000);
  await Promise.all([load.run(workers), runRedisChaos(redisEvents, t0), runAppChaos(appEvents, t0)]);
  clearInterval(progress);
  log(`load done: ${requests.length} requests, ${load.scenarios.length} scenarios`);

  // Quiet: every app up, Redis running; let the last handlers finish, then every lease lapse.
  if (redis.paused) redis.resume();
  const running = await handlersDone(15_000);
  if (running > 0) log(`${running} handlers still running after 15 s (they will show as unfinished)`);
  await sleep(config.lockTtl + 500);
  const stuck = await scanRedis();

  // One more request per key: a replay of what is stored, or the first execution of a key whose
  // every attempt failed; never a 409 now that no lease can be alive. Only keys first sent after
  // the last Redis restart: that restart wiped the earlier ones, whose retry would only re-run them.
  const { lines: sofar } = readLedgers();
  const latest = new Map();
  for (const line of sofar) if (line.e === 'start' && line.k !== null) latest.set(`${line.r} ${line.k}`, line.v);
  const lastRestart = Math.max(0, ...chaos.filter((c) => c.type === 'redis-kill').map((c) => c.upAt));
  const firstSent = new Map();
  for (const r of requests) if (!firstSent.has(r.sid)) firstSent.set(r.sid, r.t0);
  const keyed = load.scenarios.filter(
    (s) => s.key !== undefined && s.kind !== 'invalid' && (firstSent.get(s.sid) ?? 0) > lastRestart,
  );
  await mapLimit(keyed, 16, (scn) =>
    load.client(scn, {
      v: latest.get(`${scn.route} ${scn.key}`) ?? 'a',
      phase: 'verify',
      until: Date.now() + 5_000,
      retryConflicts: false,
    }),
  );
  log(`final check: ${keyed.length} keys`);

  await shutdown();
  const meta = {
    mode: quick ? 'quick' : 'full',
    seed,
    loadSeconds,
    wallSeconds: Math.round((Date.now() - started) / 1000),
    finishedAt: new Date().toISOString(),
    node: process.versions.node,
    cpus: cpus().length,
    redisVersion: version,
    apps: SLOTS.map((framework, slot) => ({ slot, framework })),
    workers,
    ...config,
    // The machine may be shared: its 1-minute load average before and after, for reading latencies.
    loadAverage: { before: Number(loadBefore.toFixed(2)), after: Number(loadavg()[0].toFixed(2)) },
  };
  writeFileSync(join(ledgerDir, 'run.json'), JSON.stringify({ meta, requests, chaos, stuck }));
  return write(meta, requests, chaos, stuck, outDir);
}

/** Analyses the ledgers in `ledgerDir`, writes soak.json + SOAK.md to `target`; 0 when every invariant holds. */
function write(meta, requests, chaosEvents, stuck, target) {
  const { lines: ledger, broken } = readLedgers();
  const report = analyze({ requests, ledger, chaos: chaosEvents, stuck, meta });
  const ordered = {
    meta: { ...meta, brokenLedgerLines: broken },
    ...report,
    chaosEvents: chaosEvents.filter((c) => c.type !== 'app-start'),
  };
  mkdirSync(target, { recursive: true });
  writeFileSync(join(target, 'soak.json'), `${JSON.stringify(ordered, null, 2)}\n`);
  writeFileSync(join(target, 'SOAK.md'), markdown(ordered));
  console.log(summary(ordered));
  console.log(`wrote ${relative(process.cwd(), join(target, 'soak.json'))} and SOAK.md`);
  if (report.invariants.ok && !args.keep && !args.analyze) rmSync(ledgerDir, { recursive: true, force: true });
  else console.log(`raw ledgers kept in ${ledgerDir}`);
  return report.invariants.ok ? 0 : 1;
}

if (args.analyze) {
  const { meta, requests, chaos: events, stuck } = JSON.parse(readFileSync(join(ledgerDir, 'run.json'), 'utf8'));
  process.exit(write(meta, requests, events, stuck, resolve(args.out ?? ledgerDir)));
}

main().then(
  (code) => process.exit(code),
  async (error) => {
    console.error(error);
    console.error(`raw ledgers kept in ${ledgerDir}`);
    await shutdown().catch(() => {});
    process.exit(2);
  },
);

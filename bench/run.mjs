#!/usr/bin/env node
/**
 * idem's load benchmark. `npm run bench` at the root builds the packages and runs this file;
 * `npm run bench -- --quick` runs the same scenarios with short windows (for development; its
 * results go to bench/results/tmp/ and never replace the committed ones).
 *
 * Options:
 *   --quick            short windows, fewer rounds (~2–3 min: 136 s on a 2-core VM)
 *   --only=a,b         run only these sections: http, storm, cache (default: all)
 *   --groups=a,b       only these HTTP groups (ids in lib/http-bench.mjs)
 *   --profile=a,b      profile these variants (e.g. express/idem-redis) with the V8 CPU profiler
 *                      during the measured rounds; .cpuprofile files in bench/results/tmp/profiles/
 *                      (read them with tools/prof-summary.mjs and tools/prof-diff.mjs)
 *   --variants=a,b     only these variants of each group (its reference and floor are kept); a
 *                      variant no group runs (store-pinned, variants.mjs) joins the groups with a floor
 *   --rounds=n, --duration=s, --warmup=s
 *                      override the mode's rounds and seconds per window (development runs on
 *                      a noisy machine: more rounds, longer windows)
 *   --out=dir          where to write latest.json, RESULTS.md and chart.svg
 *   --render=file      measure nothing: re-render RESULTS.md, chart.svg (and, for bench/results,
 *                      the README block) from an existing latest.json
 *
 * Method, in short: every server in its own process on 127.0.0.1; autocannon in this process as the
 * load generator; a redis-server and a PostgreSQL of our own; rounds interleaved; medians; ratios
 * paired per round.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runCacheMode, runStampede } from './lib/cache-bench.mjs';
import { GROUPS, runGroup, usesPostgresGroup } from './lib/http-bench.mjs';
import { startPostgres } from './lib/postgres-server.mjs';
import { machineBusyMicros, selfAndChildrenMicros } from './lib/proc.mjs';
import { startRedis } from './lib/redis-server.mjs';
import { evaluate, isNoisy, renderChart, renderHeadline, renderMarkdown } from './lib/report.mjs';
import { runStorm, STORMS } from './lib/storm.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');
const args = Object.fromEntries(
  process.argv.slice(2).map((a) => {
    const [k, v] = a.replace(/^--/, '').split('=');
    return [k, v ?? true];
  }),
);
const quick = Boolean(args.quick);
const list = (value) => (typeof value === 'string' ? value.split(',').filter(Boolean) : undefined);
const sections = new Set(list(args.only) ?? ['http', 'storm', 'cache']);
const onlyGroups = list(args.groups);
const profile = list(args.profile) ?? [];
const partial = quick || args.only || args.groups || args.variants || args.rounds || args.duration || args.warmup;
const outDir = typeof args.out === 'string' ? args.out : join(here, 'results', partial ? 'tmp' : '');
const profileDir = join(here, 'results', 'tmp', 'profiles');

const settings = quick
  ? {
      rounds: 3,
      durationS: 0.2,
      warmupS: 0.1,
      connections: 32,
      stormClients: 1000,
      stormDelayMs: 100,
      stampedeTrials: 2,
      commandSample: 200,
    }
  : {
      rounds: 5,
      durationS: 1,
      // The fixed-rate windows of the groups with CPU verdicts (lib/http-bench.mjs): a major GC of
      // ~9 ms in a 1 s window at ~1 300 req/s moved a round's CPU per request by ~7 µs.
      fixedDurationS: 3,
      // …and as many rounds as it takes to read a verdict of ±10 µs on a VM whose rounds move by
      // ±50 µs of CPU per request from one to the next (bench/FINDINGS.md, R).
      fixedRounds: 9,
      warmupS: 0.5,
      connections: 32,
      stormClients: 1000,
      stormDelayMs: 100,
      stampedeTrials: 3,
      commandSample: 2000,
    };
for (const [option, field] of [
  ['rounds', 'rounds'],
  ['duration', 'durationS'],
  ['warmup', 'warmupS'],
]) {
  if (args[option] === undefined) continue;
  const value = Number(args[option]);
  if (!(value > 0) || (option === 'rounds' && !Number.isInteger(value)))
    throw new Error(
      `--${option}: expected a positive ${option === 'rounds' ? 'integer' : 'number'}, got ${args[option]}`,
    );
  settings[field] = value;
  // A window length or round count asked for on the command line is every window's, the
  // fixed-rate ones too.
  if (field === 'durationS') delete settings.fixedDurationS;
  if (field === 'rounds') delete settings.fixedRounds;
}
const onlyVariants = list(args.variants);
const inAGroup = new Set(GROUPS.flatMap((g) => g.members));
// --quick keeps the storms that share Redis across processes (the exactly-once question).
const storms = quick
  ? STORMS.filter((s) => s.processes > 1 && s.framework === 'express' && s.id !== 'ni-redis-wait')
  : STORMS;

const startedAt = Date.now();
const log = (line) => console.log(`[${((Date.now() - startedAt) / 1000).toFixed(1).padStart(6)}s] ${line}`);

function tryRun(cmd, argv) {
  try {
    return execFileSync(cmd, argv, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return '';
  }
}

function version(pkg) {
  for (const base of [join(here, 'node_modules'), join(root, 'node_modules')]) {
    try {
      return JSON.parse(readFileSync(join(base, pkg, 'package.json'), 'utf8')).version;
    } catch {
      // next
    }
  }
  return null;
}

function machine() {
  const vitest = tryRun('pgrep', ['-f', 'vitest']).split('\n').filter(Boolean).length;
  return { loadavg: os.loadavg().map((v) => Math.round(v * 100) / 100), vitestProcesses: vitest };
}

async function main() {
  const busyAtStart = machineBusyMicros();
  const ownAtStart = selfAndChildrenMicros();
  mkdirSync(outDir, { recursive: true });
  if (profile.length > 0) mkdirSync(profileDir, { recursive: true });
  const meta = {
    date: new Date().toISOString(),
    mode: quick ? 'quick' : 'full',
    settings,
    node: process.version,
    os: `${os.type()} ${os.release()}`,
    cpu: `${os.cpus()[0]?.model ?? 'unknown'} × ${os.cpus().length}`,
    memoryGB: Math.round(os.totalmem() / 2 ** 30),
    redis: tryRun('redis-server', ['--version']).replace(/^Redis server /, ''),
    commit: tryRun('git', ['-C', root, 'rev-parse', '--short', 'HEAD']),
    packagesDirty: tryRun('git', ['-C', root, 'status', '--porcelain', '--', 'packages']).length > 0,
    versions: Object.fromEntries(
      [
        'express',
        'koa',
        '@koa/router',
        '@koa/bodyparser',
        'ioredis',
        'autocannon',
        'lru-cache',
        'bentocache',
        '@sesamecare-oss/redlock',
        'express-idempotency',
        'express-idempotency-redis-adapter',
        '@node-idempotency/core',
        '@node-idempotency/storage-adapter-memory',
        '@node-idempotency/storage-adapter-redis',
        'redis',
      ].map((p) => [p, version(p)]),
    ),
    machineBefore: machine(),
  };
  log(
    `idem bench (${meta.mode}) — node ${meta.node}, ${meta.cpu}, redis ${meta.redis.split(' ')[0]}, load ${meta.machineBefore.loadavg.join(' ')}${meta.machineBefore.vitestProcesses ? `, ${meta.machineBefore.vitestProcesses} vitest processes running` : ''}`,
  );

  const redis = await startRedis();
  const groups = sections.has('http') ? GROUPS.filter((g) => !onlyGroups || onlyGroups.includes(g.id)) : [];
  // Our own PostgreSQL (initdb into a temporary folder, a free port), only when a group needs it.
  const postgres = groups.some(usesPostgresGroup) ? await startPostgres() : undefined;
  meta.postgres = postgres?.version ?? null;
  const results = { meta, http: [], storms: [], cache: null };
  try {
    if (sections.has('http')) {
      for (const group of groups) {
        log(`http: ${group.title}`);
        await redis.flushAll();
        if (usesPostgresGroup(group)) await postgres.truncate();
        const members =
          onlyVariants === undefined
            ? group.members
            : [
                ...group.members.filter((v) => v === group.baseline || v === group.floor || onlyVariants.includes(v)),
                // Decomposition variants that no group runs (store-pinned…) join the groups with a
                // Redis floor when named; a variant of other groups stays out of this one.
                ...(group.floor && !usesPostgresGroup(group) ? onlyVariants.filter((v) => !inAGroup.has(v)) : []),
              ];
        results.http.push(
          await runGroup({ ...group, members }, { redis, postgres, settings, log, profile, profileDir }),
        );
      }
    }
    if (sections.has('storm')) {
      for (const spec of storms) {
        const storm = await runStorm(
          { ...spec, delayMs: settings.stormDelayMs },
          { redis, total: settings.stormClients },
        );
        storm.pkg = spec.pkg;
        storm.variant = spec.variant;
        storm.framework = spec.framework;
        log(
          `storm: ${spec.label.padEnd(52)} ${spec.processes}p  executions ${String(storm.executions).padStart(4)}  ${JSON.stringify(storm.statuses)}  all answered in ${storm.allAnsweredMs.toFixed(0)} ms`,
        );
        results.storms.push(storm);
      }
    }
    if (sections.has('cache')) {
      log('cache: L1 hit');
      const l1 = await runCacheMode('l1', { redis, quick });
      log('cache: L2 hit');
      const l2 = await runCacheMode('l2', { redis, quick });
      const stampede = {};
      for (const impl of ['idem', 'bentocache']) {
        log(`cache: cold-key stampede, ${impl}`);
        stampede[impl] = await runStampede(impl, { redis, trials: settings.stampedeTrials });
      }
      results.cache = { l1, l2, stampede };
      for (const row of [...l1, ...l2])
        log(`  ${row.label.padEnd(40)} ${Math.round(row.opsPerSecond).toLocaleString('en-US').padStart(12)} ops/s`);
      for (const [impl, trials] of Object.entries(stampede))
        log(`  stampede ${impl}: loader runs ${trials.map((t) => t.loaderRuns).join(', ')}`);
    }
  } finally {
    await redis.stop();
    await postgres?.stop();
  }

  meta.machineAfter = machine();
  meta.durationS = Math.round((Date.now() - startedAt) / 100) / 10;
  // Every process the bench started has exited and been reaped by now, so its CPU is in
  // cutime/cstime: what remains of the machine's busy time was other work sharing the cores.
  const otherS = (machineBusyMicros() - busyAtStart - (selfAndChildrenMicros() - ownAtStart)) / 1e6;
  meta.otherProcessesCpuS = Math.round(otherS * 10) / 10;
  meta.otherProcessesCores = Math.round((otherS / meta.durationS) * 100) / 100;
  results.targets = evaluate(results);
  writeFileSync(join(outDir, 'latest.json'), `${JSON.stringify(results, null, 2)}\n`);
  render(results, outDir, isCommittedRun(results, outDir));
}

/** Writes chart.svg and RESULTS.md next to latest.json; `headline`: also the bench README's results block. */
function render(results, dir, headline) {
  const { meta } = results;
  writeFileSync(join(dir, 'chart.svg'), renderChart(results));
  const findings = join(here, 'FINDINGS.md');
  writeFileSync(
    join(dir, 'RESULTS.md'),
    renderMarkdown(results, existsSync(findings) ? readFileSync(findings, 'utf8') : ''),
  );
  // A full run of everything is the committed result: the bench README shows its headline.
  if (headline) {
    const readme = join(here, 'README.md');
    const text = readFileSync(readme, 'utf8');
    const block = [
      '<!-- results:start -->',
      `From the ${meta.mode} run of ${meta.date.slice(0, 10)} (${meta.cpu}, Node ${meta.node}; 1-min load ${meta.machineBefore.loadavg[0]} at start, ${Math.max(0, meta.otherProcessesCores ?? 0).toFixed(2)} of a core used by other processes during the run${isNoisy(meta) ? ': **not a quiet machine**, so ratios are noisier than on an idle one' : ''}). Ratios of throughput to the reference in the same run; details, CPU per request, latency, RSS, Redis commands and PostgreSQL statements in [results/RESULTS.md](results/RESULTS.md).`,
      '',
      ...renderHeadline(results, 'results/chart.svg'),
      '<!-- results:end -->',
    ].join('\n');
    writeFileSync(readme, text.replace(/<!-- results:start -->[\s\S]*<!-- results:end -->/, block));
  }
  const met = results.targets.filter((t) => t.met === true).length;
  const missed = results.targets.filter((t) => t.met === false);
  log(`targets: ${met} met, ${missed.length} missed${missed.length ? ` (${missed.map((t) => t.id).join(', ')})` : ''}`);
  log(`wrote ${join(dir, 'latest.json')}, RESULTS.md, chart.svg (run took ${meta.durationS} s)`);
}

/** Whether `results` is a complete full run written to bench/results (the committed one). */
function isCommittedRun(results, dir) {
  return (
    results.meta.mode === 'full' &&
    dir === join(here, 'results') &&
    results.http.length === GROUPS.length &&
    results.storms.length === STORMS.length &&
    results.cache !== null
  );
}

if (typeof args.render === 'string') {
  // Measure nothing: re-render RESULTS.md, the chart and the README block from a latest.json.
  const file = args.render;
  const results = JSON.parse(readFileSync(file, 'utf8'));
  results.targets = evaluate(results);
  writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`);
  const dir = dirname(file);
  render(results, dir, isCommittedRun(results, dir));
} else {
  main().catch((error) => {
    console.error(error);
    process.exitCode = 1;
  });
}

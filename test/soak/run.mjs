#!/usr/bin/env node
// The soak: one run per store, side by side and under the same chaos schedule. Each run has four
// app processes (Express and Koa, @idem/*) on a server of its own that this harness starts: Redis
// (@idem/redis), PostgreSQL in lease mode and PostgreSQL in transactional mode (@idem/postgres; the
// handler's business row written through transactionOf). A mixed load from this process; the
// schedule pauses and kills each store's server and SIGKILLs app processes mid-handler. At the end
// it checks the ledgers and the business rows, and writes the figures as JSON and Markdown.
//
//   npm run soak                          60 s of load → bench/results/soak.json + SOAK.md
//   npm run soak -- --duration 300        longer
//   npm run soak -- --quick               ≤ 45 s in all (the CI mode) → bench/results/tmp/
//   options: --seed <n> (replay a chaos schedule), --out <dir>, --workers <n> per store (default
//            24, quick 12), --stores redis,postgres-lease,postgres-tx (default all),
//            --keep (keep the raw ledgers even when every invariant holds),
//            --analyze <ledger dir> (re-analyse a kept run; writes next to it unless --out)
//
// Exits 1 when an invariant fails. Packages are imported from their built dist: build first
// (`npm run soak` does).
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { analyze } from './analyze.mjs';
import { markdown, summary } from './report.mjs';
import { readLedgers, schedule, SLOTS, StoreSoak } from './store-run.mjs';
import { STORE_NAMES } from './stores.mjs';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    duration: { type: 'string' },
    seed: { type: 'string' },
    out: { type: 'string' },
    workers: { type: 'string' },
    stores: { type: 'string' },
    keep: { type: 'boolean', default: false },
    analyze: { type: 'string' },
  },
});

const quick = args.quick;
const loadSeconds = Number(args.duration ?? (quick ? 18 : 60));
if (!Number.isFinite(loadSeconds) || loadSeconds < 10) throw new Error('--duration: at least 10 seconds');
if (quick && loadSeconds > 25) throw new Error('--quick stays within ~45 s in all: --duration at most 25');
const seed = Number(args.seed ?? Math.floor(Math.random() * 2 ** 31));
// Three stores share the machine: fewer workers each in CI.
const workers = Number(args.workers ?? (quick ? 12 : 24));
const stores = (args.stores ?? STORE_NAMES.join(',')).split(',');
for (const name of stores) if (!STORE_NAMES.includes(name)) throw new Error(`--stores: unknown store ${name}`);
const outDir = resolve(args.out ?? join(ROOT, quick ? 'bench/results/tmp' : 'bench/results'));

// Lease well above the longest pause (2 s) and the longest store call (commandTimeout, which is
// PostgreSQL's queryTimeout too): the guarantee's assumption. Handlers of up to 1.4 × lockTtl
// run on renewals.
const config = { lockTtl: 5_000, commandTimeout: 1_000, pollInterval: 200, waitTimeout: 8_000 };
const drainMs = quick ? 5_000 : 10_000;

const started = Date.now();
const log = (message) => process.stdout.write(`[soak +${((Date.now() - started) / 1000).toFixed(1)}s] ${message}\n`);
const ledgerDir = args.analyze ? resolve(args.analyze) : mkdtempSync(join(tmpdir(), 'idem-soak-'));

/** @type {StoreSoak[]} */
const runs = [];
process.once('exit', () => {
  for (const run of runs) run.killNow();
});
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    log(`${signal}: stopping; raw ledgers kept in ${ledgerDir}`);
    process.exit(130);
  });
}

async function main() {
  const loadBefore = loadavg()[0];
  const loadMs = loadSeconds * 1_000;
  const plan = schedule(seed, loadMs);
  for (const name of stores) {
    const dir = join(ledgerDir, name);
    runs.push(new StoreSoak({ name, seed, plan, dir, config, workers, log }));
  }
  log(`seed ${seed}; stores ${stores.join(', ')}; ledgers in ${ledgerDir}`);
  await Promise.all(runs.map((run) => run.setUp()));
  // One start for all: the same fault lands on every store at the same moment of its load.
  const t0 = Date.now() + 200;
  const runId = `soak${seed.toString(36)}${Date.now().toString(36)}`;
  const results = await Promise.all(runs.map((run) => run.run({ t0, loadMs, drainMs, runId })));
  await Promise.all(runs.map((run) => run.shutdown()));

  const meta = {
    mode: quick ? 'quick' : 'full',
    seed,
    loadSeconds,
    wallSeconds: Math.round((Date.now() - started) / 1000),
    finishedAt: new Date().toISOString(),
    node: process.versions.node,
    cpus: cpus().length,
    apps: SLOTS.map((framework, slot) => ({ slot, framework })),
    workers,
    ...config,
    // The machine may be shared: its 1-minute load average before and after, for reading latencies.
    loadAverage: { before: Number(loadBefore.toFixed(2)), after: Number(loadavg()[0].toFixed(2)) },
  };
  const perStore = runs.map((run, i) => ({
    store: run.name,
    version: run.version,
    chaos: run.chaos,
    ...results[i],
  }));
  writeFileSync(join(ledgerDir, 'run.json'), JSON.stringify({ meta, stores: perStore }));
  return write(meta, perStore, outDir);
}

/** Analyses each store's ledgers, writes soak.json + SOAK.md to `target`; 0 when every invariant holds. */
function write(meta, perStore, target) {
  const reports = perStore.map(({ store, version, chaos, requests, stuck, effects, records }) => {
    const { lines: ledger, broken } = readLedgers(join(ledgerDir, store));
    const report = analyze({ requests, ledger, chaos, stuck, effects, records, meta: { ...meta, store } });
    return {
      store,
      version,
      brokenLedgerLines: broken,
      ...report,
      chaosEvents: chaos.filter((c) => c.type !== 'app-start'),
    };
  });
  const ok = reports.every((r) => r.invariants.ok);
  const file = { meta, ok, stores: reports };
  mkdirSync(target, { recursive: true });
  writeFileSync(join(target, 'soak.json'), `${JSON.stringify(file, null, 2)}\n`);
  writeFileSync(join(target, 'SOAK.md'), markdown(file));
  console.log(summary(file));
  console.log(`wrote ${relative(process.cwd(), join(target, 'soak.json'))} and SOAK.md`);
  if (ok && !args.keep && !args.analyze) rmSync(ledgerDir, { recursive: true, force: true });
  else console.log(`raw ledgers kept in ${ledgerDir}`);
  return ok ? 0 : 1;
}

if (args.analyze) {
  const { meta, stores: perStore } = JSON.parse(readFileSync(join(ledgerDir, 'run.json'), 'utf8'));
  process.exit(write(meta, perStore, resolve(args.out ?? ledgerDir)));
}

main().then(
  (code) => process.exit(code),
  async (error) => {
    console.error(error);
    console.error(`raw ledgers kept in ${ledgerDir}`);
    await Promise.all(runs.map((run) => run.shutdown().catch(() => {})));
    process.exit(2);
  },
);

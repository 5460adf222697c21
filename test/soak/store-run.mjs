// One store's soak: its server (stores.mjs), four app processes (Express and Koa) on it, the mixed
// load (load.mjs), and the shared chaos schedule: store pauses and kills, app SIGKILLs mid-handler.
// Then a quiet spell, the final check (one request per key) and what the store holds. run.mjs runs
// one of these per store, side by side, under the same schedule.
import { fork } from 'node:child_process';
import { mkdirSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { Agent } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createLoad, prng, sleep } from './load.mjs';
import { PROFILES } from './analyze.mjs';
import { startStore } from './stores.mjs';

const APP = join(dirname(fileURLToPath(import.meta.url)), 'app.mjs');
export const SLOTS = ['express', 'koa', 'express', 'koa'];

/**
 * The chaos schedule, drawn from the seed before the load starts; every store gets the same one.
 * Store: a fault every 5–9 s, one in ~25 s of load a kill (down 0.5–2 s, then restarted), the rest
 * pauses of 0.3–2 s. Apps: a SIGKILL every 2.5–4.5 s of the process with the most requests in
 * flight, restarted 0.2–1.2 s later.
 */
export function schedule(seed, loadMs) {
  const random = prng(seed);
  const between = (min, max) => min + random() * (max - min);
  const storeEvents = [];
  // Pauses alternate: under commandTimeout (requests wait them out) and over it (up to 2 s:
  // 503s and store calls that time out), always under the 5 s lease.
  for (let t = 3_000; t < loadMs - 5_000; t += between(5_000, 9_000)) {
    const long = storeEvents.length % 2 === 0;
    storeEvents.push({ t, type: 'pause', long, ms: Math.round(long ? between(1_200, 2_000) : between(300, 900)) });
  }
  const kills = Math.max(1, Math.round(loadMs / 25_000));
  // Spread the kills over the first 80 % of the run (the k-th in the k-th part of it), so that
  // the keys of the last stretch, which the final check re-sends, outlive the last restart.
  const span = loadMs * 0.8;
  for (let k = 0; k < kills && storeEvents.length; k++) {
    const part = storeEvents.filter(
      (e) => e.t >= (k * span) / kills && e.t < ((k + 1) * span) / kills && e.type === 'pause',
    );
    // A kill replaces a short pause where it can: the long pauses are the faults over
    // commandTimeout, and a run without one has no store call that times out (no 503 to check).
    const short = part.filter((e) => !e.long);
    const pool = short.length > 0 ? short : part;
    const chosen = pool[Math.floor(random() * pool.length)];
    if (chosen) Object.assign(chosen, { type: 'kill', ms: Math.round(between(500, 2_000)) });
  }
  const appEvents = [];
  for (let t = 2_000; t < loadMs - 2_500; t += between(2_500, 4_500))
    appEvents.push({ t, restartMs: Math.round(between(200, 1_200)) });
  return { storeEvents, appEvents };
}

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

async function mapLimit(items, limit, fn) {
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < items.length) await fn(items[next++]);
    }),
  );
}

/** Reads every app ledger in `dir`: the lines, and how many were cut short (a SIGKILL mid-write). */
export function readLedgers(dir) {
  const lines = [];
  let broken = 0;
  for (const name of readdirSync(dir).filter((n) => n.startsWith('ledger-'))) {
    for (const line of readFileSync(join(dir, name), 'utf8').split('\n')) {
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

/** The soak of one store. */
export class StoreSoak {
  /**
   * @param {object} o
   * @param {string} o.name a store of stores.mjs
   * @param {number} o.seed the run's seed (this store's load and victims draw from it too)
   * @param {{ storeEvents: object[], appEvents: object[] }} o.plan the chaos schedule
   * @param {string} o.dir this store's ledger folder
   * @param {object} o.config lockTtl, commandTimeout, pollInterval, waitTimeout
   * @param {number} o.workers concurrent load workers
   * @param {(message: string) => void} o.log
   */
  constructor({ name, seed, plan, dir, config, workers, log }) {
    Object.assign(this, { name, seed, plan, dir, config, workers });
    this.profile = PROFILES[name];
    this.log = (message) => log(`${name}: ${message}`);
    // Each store its own stream, so that one store's timing does not shift another's draws.
    this.random = prng(seed ^ (STORE_SALT[name] ?? 0));
    this.chaos = [];
    /** @type {(AppProcess | undefined)[]} */
    this.slots = SLOTS.map(() => undefined);
    this.generation = 0;
    this.stopping = false;
    this.store = undefined;
    mkdirSync(dir, { recursive: true });
    this.appLog = openSync(join(dir, 'apps.log'), 'a');
    this.pool = {
      live: () => this.slots.filter((app) => app?.alive),
      bySlot: (slot) => this.slots[slot],
    };
  }

  async startApp(slot) {
    const framework = SLOTS[slot];
    const ledger = join(this.dir, `ledger-${slot}-${++this.generation}.ndjson`);
    const settings = { framework, slot, ledger, store: this.name, url: this.store.url, ...this.config };
    const child = fork(APP, [], {
      env: { ...process.env, IDEM_SOAK_APP: JSON.stringify(settings) },
      execArgv: [],
      stdio: ['ignore', this.appLog, this.appLog, 'ipc'],
    });
    const ready = await new Promise((resolveReady, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`app ${slot} (${framework}) not ready after 15 s; see ${join(this.dir, 'apps.log')}`)),
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
      if (app.killed || this.stopping) return;
      // Nobody asked it to go: a crash. Recorded (an invariant) and replaced, so the soak goes on.
      this.chaos.push({ type: 'app-crash', slot, pid: app.pid, framework, at: Date.now(), code, signal });
      // What it printed last (apps.log holds every app's stderr): the reason, in the soak's own log.
      const said = readFileSync(join(this.dir, 'apps.log'), 'utf8').trimEnd().split('\n').slice(-30).join('\n  ');
      this.log(
        `app ${slot} (${framework}, pid ${app.pid}) CRASHED (${code ?? signal}); restarting; apps.log ends:\n  ${said}`,
      );
      if (this.slots[slot] === app)
        this.startApp(slot).then(
          (next) => (this.slots[slot] = next),
          (error) => this.log(String(error)),
        );
    });
    this.slots[slot] = app;
    this.chaos.push({ type: 'app-start', slot, pid: app.pid, framework, at: Date.now() });
    return app;
  }

  async killApp(app) {
    app.killed = true;
    const at = Date.now();
    const outstanding = app.outstanding;
    const exited = new Promise((done) =>
      app.child.exitCode !== null || app.child.signalCode !== null ? done() : app.child.once('exit', done),
    );
    app.child.kill('SIGKILL');
    await exited;
    app.agent.destroy();
    const { slot, pid, framework } = app;
    this.chaos.push({ type: 'app-kill', slot, pid, framework, at, exitedAt: Date.now(), outstanding });
    return outstanding;
  }

  async runStoreChaos(t0) {
    for (const event of this.plan.storeEvents) {
      await sleep(t0 + event.t - Date.now());
      if (event.type === 'pause') {
        const from = Date.now();
        this.store.pause();
        await sleep(event.ms);
        this.store.resume();
        this.chaos.push({ type: 'store-pause', from, to: Date.now() });
        this.log(`paused ${Date.now() - from} ms`);
      } else {
        const at = Date.now();
        await this.store.kill();
        const downAt = Date.now();
        await sleep(event.ms);
        await this.store.relaunch();
        this.chaos.push({ type: 'store-kill', at, downAt, upAt: Date.now() });
        this.log(
          `killed, restarted ${this.profile.restartLosesData ? 'empty' : 'on its data'} after ${Date.now() - at} ms`,
        );
      }
    }
  }

  async runAppChaos(t0) {
    for (const event of this.plan.appEvents) {
      await sleep(t0 + event.t - Date.now());
      const live = this.pool.live();
      if (live.length < SLOTS.length) continue;
      // Mid-handler: the process with the most requests in flight.
      const victim = live.reduce((a, b) =>
        b.outstanding > a.outstanding || (b.outstanding === a.outstanding && this.random() < 0.5) ? b : a,
      );
      const outstanding = await this.killApp(victim);
      this.log(`SIGKILL app ${victim.slot} (${victim.framework}, pid ${victim.pid}) with ${outstanding} in flight`);
      await sleep(event.restartMs);
      await this.startApp(victim.slot);
    }
  }

  /** Resolves once every execution that started in a live process has sent its response (bounded). */
  async handlersDone(timeoutMs) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const killed = new Set(
        this.chaos.filter((c) => c.type === 'app-kill' || c.type === 'app-crash').map((c) => c.pid),
      );
      const { lines } = readLedgers(this.dir);
      const closed = new Set(lines.filter((l) => l.e === 'sent' || l.e === 'outcome').map((l) => l.x));
      const running = lines.filter((l) => l.e === 'start' && !closed.has(l.x) && !killed.has(l.pid)).length;
      if (running === 0 || Date.now() > deadline) return running;
      await sleep(200);
    }
  }

  /** Starts the server and the apps; resolves once every app serves. */
  async setUp() {
    this.store = await startStore(this.name);
    this.version = await this.store.version();
    await Promise.all(SLOTS.map((_, slot) => this.startApp(slot)));
    this.log(`${this.version}; apps ${this.slots.map((a) => `${a.framework}:${a.port}`).join(', ')}`);
  }

  /** The load under chaos from `t0` for `loadMs`, the quiet spell and the final check. */
  async run({ t0, loadMs, drainMs, runId }) {
    const requests = [];
    const loadEnd = t0 + loadMs;
    const load = createLoad({
      pool: this.pool,
      random: this.random,
      requests,
      loadEnd,
      retryEnd: loadEnd + drainMs,
      lockTtl: this.config.lockTtl,
      runId,
    });
    const progress = setInterval(() => this.log(`${requests.length} requests`), 10_000);
    await Promise.all([load.run(this.workers), this.runStoreChaos(t0), this.runAppChaos(t0)]);
    clearInterval(progress);
    this.log(`load done: ${requests.length} requests, ${load.scenarios.length} scenarios`);

    // Quiet: every app up, the store running; let the last handlers finish, then every lease lapse.
    if (this.store.paused) this.store.resume();
    const running = await this.handlersDone(15_000);
    if (running > 0) this.log(`${running} handlers still running after 15 s (they will show as unfinished)`);
    await sleep(this.config.lockTtl + 500);
    const stuck = await this.store.scan();

    // One more request per key: a replay of what is stored, or the first execution of a key whose
    // every attempt failed; never a 409 now that no lease can be alive. A store that restarts
    // empty forgot the keys sent before its last restart (a retry would only re-run them): those
    // are left out. A store that keeps its data is checked on every key.
    const { lines: sofar } = readLedgers(this.dir);
    // The payload of each key's latest execution by time: the ledgers are one file per process, so
    // their order is not the order the executions ran in.
    const latest = new Map();
    for (const line of sofar) {
      if (line.e !== 'start' || line.k === null) continue;
      const id = `${line.r} ${line.k}`;
      if (!(latest.get(id)?.at > line.at)) latest.set(id, line);
    }
    const restarts = this.chaos.filter((c) => c.type === 'store-kill').map((c) => c.upAt);
    const lastRestart = this.profile.restartLosesData ? Math.max(0, ...restarts) : 0;
    const firstSent = new Map();
    for (const r of requests) if (!firstSent.has(r.sid)) firstSent.set(r.sid, r.t0);
    const keyed = load.scenarios.filter(
      (s) => s.key !== undefined && s.kind !== 'invalid' && (firstSent.get(s.sid) ?? 0) > lastRestart,
    );
    await mapLimit(keyed, 16, (scn) =>
      load.client(scn, {
        v: latest.get(`${scn.route} ${scn.key}`)?.v ?? 'a',
        phase: 'verify',
        until: Date.now() + 5_000,
        retryConflicts: false,
      }),
    );
    this.log(`final check: ${keyed.length} keys`);
    // The business rows are read once no handler can write any more.
    await this.stopApps();
    const { effects, records } = await this.store.rows();
    return { requests, stuck, effects, records };
  }

  async stopApps() {
    this.stopping = true;
    await Promise.all(
      this.slots.map(async (app) => {
        if (!app?.alive) return;
        app.agent.destroy();
        const exited = new Promise((done) => app.child.once('exit', done));
        app.child.send({ type: 'shutdown' });
        const timer = setTimeout(() => app.child.kill('SIGKILL'), 3_000);
        await exited;
        clearTimeout(timer);
      }),
    );
  }

  async shutdown() {
    await this.stopApps();
    if (this.store?.paused) this.store.resume();
    await this.store?.stop();
  }

  /** On process exit, synchronously: nothing of this store outlives the soak. */
  killNow() {
    for (const app of this.slots) if (app?.alive) app.child.kill('SIGKILL');
    this.store?.killNow();
  }
}

const STORE_SALT = { redis: 0, 'postgres-lease': 0x5bd1e995, 'postgres-tx': 0x1b873593 };

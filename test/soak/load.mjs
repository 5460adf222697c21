// The soak's mixed load, driven from the harness process. A fixed number of workers each run
// scenarios back to back until the load ends; every HTTP attempt lands in `requests`.
//
//   unique    one key, sent once (retried by the client on 409 / 503 / a broken connection)
//   retried   one key, then 1–3 more copies after it was answered, each to a random process
//   burst     3–8 copies of one key fired at the same instant at different processes (Express
//             and Koa), each retried like a client would until it gets a final answer
//   mismatch  a key sent with payload A, then with payload B (after A was answered, or while A
//             is in flight): B must get 422
//   missing   no Idempotency-Key (required: true): must get 400 and execute nothing
//   invalid   a 300-character key: must get 400 and execute nothing
//
// Retried copies re-serialise the payload with its keys in a new order: the fingerprint is over
// the canonical body, so they are still the same request.
import { post } from './http.mjs';

const KINDS = [
  ['unique', 30],
  ['retried', 25],
  ['burst', 20],
  ['mismatch', 10],
  ['missing', 10],
  ['invalid', 5],
];

const MAX_ATTEMPTS = 15;

/** Mulberry32: a small seeded PRNG, so a run's choices and chaos schedule can be replayed. */
export function prng(seed) {
  let a = seed >>> 0;
  return function random() {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));

/**
 * @param {object} o
 * @param {{ live(): object[], bySlot(slot: number): object | undefined }} o.pool the app processes
 * @param {() => number} o.random seeded PRNG
 * @param {object[]} o.requests where every attempt is recorded
 * @param {number} o.loadEnd no new scenario starts after this (epoch ms)
 * @param {number} o.retryEnd clients stop retrying after this (epoch ms)
 * @param {number} o.lockTtl the apps' lease, to place handlers longer than it
 * @param {string} o.runId prefix of every key of this run
 */
export function createLoad({ pool, random, requests, loadEnd, retryEnd, lockTtl, runId }) {
  const between = (min, max) => min + random() * (max - min);
  const int = (min, max) => Math.floor(between(min, max + 1));
  const pick = (items) => items[Math.floor(random() * items.length)];
  const scenarios = [];
  let sid = 0;

  function kind() {
    const total = KINDS.reduce((sum, [, weight]) => sum + weight, 0);
    let roll = random() * total;
    for (const [name, weight] of KINDS) {
      roll -= weight;
      if (roll < 0) return name;
    }
    return 'unique';
  }

  /** How long the handler works: mostly short, some slow, a few longer than the lease (renewals). */
  function workMs() {
    const roll = random();
    if (roll < 0.65) return int(2, 40);
    if (roll < 0.9) return int(40, 300);
    if (roll < 0.98 || loadEnd - Date.now() < 15_000) return int(300, 2_500);
    return int(Math.round(lockTtl * 1.1), Math.round(lockTtl * 1.4));
  }

  function padBytes() {
    const roll = random();
    if (roll < 0.8) return int(0, 200);
    if (roll < 0.95) return int(200, 8_000);
    return int(8_000, 64_000);
  }

  function payload(v, n) {
    return {
      v,
      order: { id: n, items: [{ sku: `sku-${n % 97}`, qty: (n % 5) + 1 }], note: v === 'a' ? 'first' : 'second' },
      amount: n * 3,
    };
  }

  /** The same value with every object's keys inserted in a random order. */
  function shuffled(value) {
    if (Array.isArray(value)) return value.map(shuffled);
    if (value === null || typeof value !== 'object') return value;
    const keys = Object.keys(value);
    for (let i = keys.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [keys[i], keys[j]] = [keys[j], keys[i]];
    }
    return Object.fromEntries(keys.map((k) => [k, shuffled(value[k])]));
  }

  function scenario(name) {
    const id = ++sid;
    const keyed = name !== 'missing';
    const scn = {
      sid: id,
      kind: name,
      route: random() < 0.5 ? '/work' : '/wait',
      key: name === 'invalid' ? `${runId}-${id}-`.padEnd(300, 'x') : keyed ? `${runId}-${id}` : undefined,
      payloads: { a: payload('a', id), b: payload('b', id) },
      workMs: workMs(),
      pad: padBytes(),
    };
    scenarios.push(scn);
    return scn;
  }

  /** Seconds of Retry-After → a client's wait, a little shorter or as long. */
  function retryDelay(entry) {
    if (entry.error !== null) return between(100, 400);
    if (entry.status === 409) return between(300, 1_000);
    if (entry.status >= 500) return between(200, 700);
    return null;
  }

  /**
   * One client's request with its retries, until a final answer (2xx, 4xx other than 409), the
   * attempt limit or `retryEnd`. The first attempt goes to `app` when given.
   */
  async function client(scn, { v = 'a', app, phase = 'load', until = retryEnd, retryConflicts = true } = {}) {
    let target = app;
    let last;
    for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
      if (target === undefined || !target.alive) target = pick(pool.live());
      if (target === undefined) {
        await sleep(100);
        continue;
      }
      target.outstanding++;
      const entry = await post(target, {
        route: scn.route,
        key: scn.key,
        body: shuffled(scn.payloads[v]),
        workMs: scn.workMs,
        pad: scn.pad,
      });
      target.outstanding--;
      Object.assign(entry, { sid: scn.sid, kind: scn.kind, v, phase, attempt });
      requests.push(entry);
      last = entry;
      const wait = entry.status === 409 && !retryConflicts ? null : retryDelay(entry);
      if (wait === null || Date.now() + wait > until) return entry;
      await sleep(wait);
      target = undefined;
    }
    return last;
  }

  /** Different live processes, starting at a random one, for truly concurrent duplicates. */
  function spread(n) {
    const live = pool.live();
    const offset = Math.floor(random() * live.length);
    return Array.from({ length: n }, (_, i) => live[(offset + i) % live.length]);
  }

  const run = {
    async unique(scn) {
      await client(scn);
    },
    async retried(scn) {
      await client(scn);
      for (let copies = int(1, 3); copies > 0; copies--) {
        await sleep(between(100, 2_500));
        if (Date.now() > retryEnd) return;
        await client(scn);
      }
    },
    async burst(scn) {
      await Promise.all(spread(int(3, 8)).map((app) => client(scn, { app })));
      if (random() < 0.5) {
        await sleep(between(50, 1_500));
        await client(scn);
      }
    },
    async mismatch(scn) {
      if (random() < 0.3) {
        // B while A is (probably) in flight: whichever claims first wins, the other gets 422.
        const [app1, app2] = spread(2);
        await Promise.all([
          client(scn, { app: app1 }),
          sleep(between(5, 60)).then(() => client(scn, { v: 'b', app: app2 })),
        ]);
      } else {
        await client(scn);
        await client(scn, { v: 'b' });
      }
    },
    async missing(scn) {
      await client(scn);
    },
    async invalid(scn) {
      await client(scn);
    },
  };

  async function worker() {
    while (Date.now() < loadEnd) {
      const scn = scenario(kind());
      await run[scn.kind](scn);
    }
  }

  return {
    scenarios,
    client,
    /** Runs `workers` workers until the load ends and their last scenarios finish. */
    run: (workers) => Promise.all(Array.from({ length: workers }, worker)),
  };
}

/**
 * The cache rows, in their own process. argv[2] is JSON { mode, redisUrl, impl?, quick? }:
 *
 *   l1        L1-hit throughput: bare lru-cache get (sync, and awaited) vs idem's getOrSet (also
 *             through wrap(), and on an L1 bounded by bytes) vs bentocache's getOrSet,
 *             interleaved rounds; replies { type: 'result', rows }
 *   l2        L2-hit throughput (L1 too small to help, value in Redis): raw ioredis GET + JSON.parse
 *             vs idem vs bentocache, `concurrency` reads in flight; replies { type: 'result', rows }
 *   stampede  waits for { type: 'go', key, callers } and calls getOrSet(key) `callers` times at
 *             once with a 50 ms loader; replies { type: 'done', runs, values, ms, errors }
 *
 * bentocache is configured as its README and docs show a multi-tier store: memory L1, Redis L2,
 * Redis bus.
 */
import { Redis } from 'ioredis';

const cfg = JSON.parse(process.argv[2]);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const VALUE = { id: 'prod_42', name: 'A book', price: 4200, currency: 'eur', tags: ['paper', 'fiction'], stock: 17 };

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

function client() {
  const redis = new Redis(cfg.redisUrl);
  redis.on('error', () => {});
  return redis;
}

async function idemCache(options = {}) {
  const { createCache } = await import('@idem/cache');
  return createCache({ redis: client(), ttl: '1h', ...options });
}

async function bento({ maxItems = 1000 } = {}) {
  const { BentoCache, bentostore } = await import('bentocache');
  const { memoryDriver } = await import('bentocache/drivers/memory');
  const { redisDriver, redisBusDriver } = await import('bentocache/drivers/redis');
  const url = new URL(cfg.redisUrl);
  const connection = { host: url.hostname, port: Number(url.port) };
  return new BentoCache({
    default: 'cache',
    stores: {
      cache: bentostore()
        .useL1Layer(memoryDriver({ maxItems }))
        .useL2Layer(redisDriver({ connection: client() }))
        .useBus(redisBusDriver({ connection })),
    },
  });
}

/** Runs `op` (sync or async) in batches for `ms` milliseconds; ops per second. */
async function opsPerSecond(op, ms, isAsync) {
  let ops = 0;
  const started = performance.now();
  const until = started + ms;
  const BATCH = 1_000;
  while (performance.now() < until) {
    if (isAsync) for (let i = 0; i < BATCH; i++) await op();
    else for (let i = 0; i < BATCH; i++) op();
    ops += BATCH;
  }
  return ops / ((performance.now() - started) / 1000);
}

async function l1() {
  const { LRUCache } = await import('lru-cache');
  const lru = new LRUCache({ max: 10_000 });
  lru.set('k', VALUE);
  const idem = await idemCache();
  // The same L1 hit through wrap() (the memoize form), and on an L1 bounded by bytes as well.
  const fetchProduct = idem.wrap((id) => ({ ...VALUE, id }), { key: (id) => `product:${id}` });
  const bytes = await idemCache({ namespace: 'l1-bytes', l1: { maxEntries: 10_000, maxBytes: 64 * 1024 * 1024 } });
  const bc = await bento();
  const loader = () => VALUE;
  await idem.getOrSet('k', loader);
  await fetchProduct('42');
  await bytes.getOrSet('k', loader);
  await bc.getOrSet({ key: 'k', factory: loader, ttl: '1h' });
  let sink = 0;
  const impls = [
    {
      id: 'lru-get',
      label: 'lru-cache get (sync, bare)',
      isAsync: false,
      op: () => {
        sink += lru.get('k') === undefined ? 0 : 1;
      },
    },
    {
      id: 'lru-get-await',
      label: 'lru-cache get, awaited',
      isAsync: true,
      op: async () => {
        sink += (await lru.get('k')) === undefined ? 0 : 1;
      },
    },
    { id: 'idem', label: 'idem getOrSet (L1 hit)', isAsync: true, op: () => idem.getOrSet('k', loader) },
    { id: 'idem-wrap', label: 'idem wrap()ped function (L1 hit)', isAsync: true, op: () => fetchProduct('42') },
    {
      id: 'idem-bytes',
      label: 'idem getOrSet, L1 bounded by bytes too (L1 hit)',
      isAsync: true,
      op: () => bytes.getOrSet('k', loader),
    },
    {
      id: 'bentocache',
      label: 'bentocache getOrSet (L1 hit)',
      isAsync: true,
      op: () => bc.getOrSet({ key: 'k', factory: loader, ttl: '1h' }),
    },
  ];
  const windowMs = cfg.quick ? 100 : 300;
  const rounds = cfg.quick ? 3 : 5;
  for (const impl of impls) await opsPerSecond(impl.op, windowMs, impl.isAsync); // warm-up
  const samples = Object.fromEntries(impls.map((i) => [i.id, []]));
  for (let r = 0; r < rounds; r++) {
    for (const impl of r % 2 ? [...impls].reverse() : impls)
      samples[impl.id].push(await opsPerSecond(impl.op, windowMs, impl.isAsync));
  }
  // Two keys loaded once each: 'k' and the wrapped function's.
  if (idem.stats().loader.runs !== 2)
    throw new Error(`idem loader ran ${idem.stats().loader.runs} times in the L1 bench`);
  if (bytes.stats().loader.runs !== 1)
    throw new Error(`idem (bytes) loader ran ${bytes.stats().loader.runs} times in the L1 bench`);
  await idem.close();
  await bytes.close();
  await bc.disconnectAll?.();
  return impls.map((i) => ({
    id: i.id,
    label: i.label,
    opsPerSecond: median(samples[i.id]),
    rounds: samples[i.id],
    sink: sink > 0,
  }));
}

async function l2() {
  const N = 1_000;
  const concurrency = 16;
  const keys = Array.from({ length: N }, (_, i) => `item:${i}`);
  const admin = client();
  const raw = client();
  await admin.flushall();
  // Floor: the same value as JSON under a plain key, read with GET and parsed.
  await Promise.all(keys.map((k) => raw.set(`bench:l2floor:${k}`, JSON.stringify(VALUE))));
  // idem: written by one instance, read by another whose L1 holds a single entry.
  const idemWriter = await idemCache({ l1: { maxEntries: 10 } });
  for (const k of keys) await idemWriter.set(k, VALUE);
  const idemReader = await idemCache({ l1: { maxEntries: 1 } });
  const bentoWriter = await bento({ maxItems: 10 });
  for (const k of keys) await bentoWriter.set({ key: k, value: VALUE, ttl: '1h' });
  const bentoReader = await bento({ maxItems: 1 });
  const never = () => {
    throw new Error('the loader must not run on an L2 hit');
  };
  const impls = [
    {
      id: 'floor-get',
      label: 'raw ioredis GET + JSON.parse (floor)',
      read: async (k) => JSON.parse(await raw.getBuffer(`bench:l2floor:${k}`)),
    },
    { id: 'idem', label: 'idem getOrSet (L2 hit)', read: (k) => idemReader.getOrSet(k, never) },
    {
      id: 'bentocache',
      label: 'bentocache getOrSet (L2 hit)',
      read: (k) => bentoReader.getOrSet({ key: k, factory: never, ttl: '1h' }),
    },
  ];

  async function window(impl, ms) {
    let ops = 0;
    const started = performance.now();
    const until = started + ms;
    await Promise.all(
      Array.from({ length: concurrency }, async (_, lane) => {
        for (let j = 0; performance.now() < until; j++) {
          await impl.read(keys[(lane * 61 + j * concurrency) % N]);
          ops++;
        }
      }),
    );
    return { ops, seconds: (performance.now() - started) / 1000 };
  }

  const windowMs = cfg.quick ? 150 : 400;
  const rounds = cfg.quick ? 3 : 5;
  for (const impl of impls) await window(impl, windowMs / 2);
  const samples = Object.fromEntries(impls.map((i) => [i.id, []]));
  const commands = Object.fromEntries(impls.map((i) => [i.id, []]));
  for (let r = 0; r < rounds; r++) {
    for (const impl of r % 2 ? [...impls].reverse() : impls) {
      await admin.config('RESETSTAT');
      const { ops, seconds } = await window(impl, windowMs);
      const info = await admin.info('commandstats');
      let calls = 0;
      for (const m of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm))
        if (!['config|resetstat', 'info'].includes(m[1])) calls += Number(m[2]);
      samples[impl.id].push(ops / seconds);
      commands[impl.id].push(calls / ops);
    }
  }
  const hits = idemReader.stats();
  await Promise.all([
    idemWriter.close(),
    idemReader.close(),
    bentoWriter.disconnectAll?.(),
    bentoReader.disconnectAll?.(),
  ]);
  admin.disconnect();
  raw.disconnect();
  return impls.map((i) => ({
    id: i.id,
    label: i.label,
    opsPerSecond: median(samples[i.id]),
    rounds: samples[i.id],
    commandsPerOp: median(commands[i.id]),
    ...(i.id === 'idem' ? { l1Hits: hits.l1.hits, l2Hits: hits.l2.hits, loaderRuns: hits.loader.runs } : {}),
  }));
}

async function stampede() {
  let runs = 0;
  const instance = cfg.impl === 'idem' ? await idemCache() : await bento();
  const get =
    cfg.impl === 'idem'
      ? (key, loader) => instance.getOrSet(key, loader)
      : (key, loader) => instance.getOrSet({ key, factory: loader, ttl: '1h' });
  process.on('message', async (message) => {
    if (message.type === 'go') {
      const started = performance.now();
      const before = runs;
      const loader = async () => {
        runs++;
        await sleep(50);
        return { ...VALUE, loadedBy: `${process.pid}:${runs}` };
      };
      const settled = await Promise.allSettled(Array.from({ length: message.callers }, () => get(message.key, loader)));
      const values = new Set(settled.filter((s) => s.status === 'fulfilled').map((s) => s.value?.loadedBy));
      process.send({
        type: 'done',
        runs: runs - before,
        values: [...values],
        ms: performance.now() - started,
        errors: settled.filter((s) => s.status === 'rejected').length,
      });
    } else if (message.type === 'exit') {
      await (cfg.impl === 'idem' ? instance.close() : instance.disconnectAll?.());
      process.exit(0);
    }
  });
  process.on('disconnect', () => process.exit(0));
  process.send({ type: 'ready' });
}

const modes = { l1, l2 };
if (cfg.mode === 'stampede') {
  stampede().catch((error) => {
    console.error(error);
    process.exit(1);
  });
} else {
  modes[cfg.mode]().then(
    (rows) => {
      process.send({ type: 'result', rows });
      process.exit(0);
    },
    (error) => {
      console.error(error);
      process.exit(1);
    },
  );
}

/** The cache rows: L1 hit, L2 hit and the cross-process cold-key stampede, each worker in its own process. */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const WORKER = fileURLToPath(new URL('../servers/cache-worker.mjs', import.meta.url));

function spawnWorker(cfg) {
  return fork(WORKER, [JSON.stringify(cfg)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
}

function once(child, type) {
  return new Promise((resolve, reject) => {
    const onExit = (code) => reject(new Error(`cache worker exited (${code}) before sending ${type}`));
    child.once('exit', onExit);
    child.on('message', function onMessage(message) {
      if (message.type !== type) return;
      child.off('message', onMessage);
      child.off('exit', onExit);
      resolve(message);
    });
  });
}

/** Runs the l1 or l2 mode in a worker and returns its rows. */
export async function runCacheMode(mode, { redis, quick }) {
  const child = spawnWorker({ mode, redisUrl: redis.url, quick });
  return (await once(child, 'result')).rows;
}

/**
 * Cold-key stampede: `processes` workers of `impl`, each calling getOrSet on the same missing key
 * `callers` times at once. Returns, per trial, the loader runs summed over processes, the distinct
 * values the callers got, and the time until every caller had one.
 */
export async function runStampede(impl, { redis, processes = 4, callers = 250, trials = 3 }) {
  const workers = Array.from({ length: processes }, () => spawnWorker({ mode: 'stampede', impl, redisUrl: redis.url }));
  try {
    await Promise.all(workers.map((w) => once(w, 'ready')));
    const results = [];
    for (let trial = 0; trial < trials; trial++) {
      const key = `stampede:${impl}:${Date.now()}:${trial}`;
      const started = performance.now();
      const done = workers.map((w) => once(w, 'done').then((m) => ({ ...m, at: performance.now() - started })));
      for (const w of workers) w.send({ type: 'go', key, callers });
      const replies = await Promise.all(done);
      results.push({
        key,
        loaderRuns: replies.reduce((a, r) => a + r.runs, 0),
        runsPerProcess: replies.map((r) => r.runs),
        distinctValues: new Set(replies.flatMap((r) => r.values)).size,
        errors: replies.reduce((a, r) => a + r.errors, 0),
        allAnsweredMs: Math.max(...replies.map((r) => r.at)),
      });
    }
    return results;
  } finally {
    await Promise.all(
      workers.map(
        (w) =>
          new Promise((resolve) => {
            if (w.exitCode !== null) return resolve();
            w.once('exit', resolve);
            w.send({ type: 'exit' });
            setTimeout(() => w.kill('SIGKILL'), 3_000).unref();
          }),
      ),
    );
  }
}

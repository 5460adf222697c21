/**
 * One load window: autocannon against a server, with the server's CPU and that of the database it
 * uses (redis-server, or every process of PostgreSQL) read around it.
 */
import autocannon from 'autocannon';
import { threadsCpuMicros } from './proc.mjs';

/** The JSON every request carries. */
export const REQUEST_BODY = JSON.stringify({ amount: 4200, currency: 'eur', item: 'book', customer: 'cus_123' });

/**
 * The request of a scenario. `key`: undefined (no header), a fixed string (every request a replay
 * of the same key) or 'unique' (a fresh key per request: autocannon's [<id>] replacement).
 */
export function requestFor(key) {
  const headers = { 'content-type': 'application/json' };
  if (key === 'unique') headers['idempotency-key'] = 'bench-[<id>]';
  else if (key !== undefined) headers['idempotency-key'] = key;
  return { method: 'POST', path: '/orders', headers, body: REQUEST_BODY, idReplacement: key === 'unique' };
}

/** Completes a replay scenario's key once, so that a load on it is replays only (not duplicates in flight: 409). */
export async function completeKey(url, request) {
  const first = await fetch(url, { method: request.method, headers: request.headers, body: request.body });
  await first.arrayBuffer();
}

/**
 * One counting window: `amount` requests (all answered) between `before()` and `after()`, after a
 * pause for requests an earlier window abandoned in flight (on any server) and before a pause for
 * work some stores do after answering. Resolves with the answers and what `after()` returned.
 */
async function countedWindow({ server, request, amount, connections }, before, after) {
  await new Promise((resolve) => setTimeout(resolve, 150));
  await before();
  const result = await runAutocannon({
    url: server.url + request.path,
    connections,
    amount,
    sampleInt: 50,
    method: request.method,
    headers: request.headers,
    body: request.body,
    idReplacement: request.idReplacement,
    timeout: 10,
  });
  await new Promise((resolve) => setTimeout(resolve, 100));
  const counted = await after();
  const answered = result['1xx'] + result['2xx'] + result['3xx'] + result['4xx'] + result['5xx'];
  return { requests: answered, ok: result['2xx'], counted };
}

/** Redis commands per request, counted exactly: a window between CONFIG RESETSTAT and INFO commandstats. */
export async function countCommands({ server, request, redis, amount = 1000, connections }) {
  const window = await countedWindow(
    { server, request, amount, connections },
    () => redis.resetStats(),
    () => redis.traffic(),
  );
  return { requests: window.requests, ok: window.ok, commands: window.counted };
}

/** SQL statements per request, counted exactly like Redis commands: the server's own count around a window. */
export async function countStatements({ server, request, amount = 1000, connections }) {
  let before;
  const window = await countedWindow(
    { server, request, amount, connections },
    async () => {
      before = await server.stats();
    },
    () => server.stats(),
  );
  return {
    requests: window.requests,
    ok: window.ok,
    perRequest: (window.counted.statements - before.statements) / window.requests,
  };
}

function runAutocannon(opts) {
  return new Promise((resolve, reject) => {
    autocannon(opts, (error, result) => (error ? reject(error) : resolve(result)));
  });
}

/**
 * Loads `server` for `durationS` seconds with `connections` connections: as fast as it answers
 * (closed loop), or at `rate` requests per second in all (fixed rate, for CPU per request at an
 * equal load: closed-loop CPU per request favours the faster server, which serves more requests
 * per event-loop turn).
 * @param {object} options { server, request, durationS, connections, rate?, redis?, postgres? }
 */
export async function measure({ server, request, durationS, connections, rate, redis, postgres }) {
  // Let requests an earlier window abandoned in flight finish before this one is timed.
  await new Promise((resolve) => setTimeout(resolve, 20));
  const before = await server.stats();
  const redisBefore = redis ? threadsCpuMicros(redis.pid) : 0;
  const postgresBefore = postgres ? postgres.cpuMicros() : 0;
  const started = process.hrtime.bigint();
  const result = await runAutocannon({
    url: server.url + request.path,
    connections,
    pipelining: 1,
    duration: durationS,
    ...(rate === undefined ? {} : { overallRate: rate }),
    method: request.method,
    headers: request.headers,
    body: request.body,
    idReplacement: request.idReplacement,
    timeout: 10,
    // autocannon stops at its first sample tick after `duration`; the default 1 s tick would
    // stretch every short window to a whole second (50 ms: windows end within 50 ms of their duration).
    sampleInt: 50,
  });
  const elapsedS = Number(process.hrtime.bigint() - started) / 1e9;
  const after = await server.stats();
  const redisAfter = redis ? threadsCpuMicros(redis.pid) : 0;
  const postgresAfter = postgres ? postgres.cpuMicros() : 0;

  const responses = result['1xx'] + result['2xx'] + result['3xx'] + result['4xx'] + result['5xx'];
  const per = (value) => (responses > 0 ? value / responses : Number.NaN);
  const statusCodes = {};
  for (const [code, { count }] of Object.entries(result.statusCodeStats ?? {})) statusCodes[code] = count;
  return {
    responses,
    ok: result['2xx'],
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    statusCodes,
    rps: responses / result.duration,
    p50: result.latency.p50,
    p99: result.latency.p99,
    rss: after.rss,
    serverCpuUs: per(after.cpu - before.cpu),
    redisCpuUs: redis ? per(redisAfter - redisBefore) : null,
    postgresCpuUs: postgres ? per(postgresAfter - postgresBefore) : null,
    elapsedS,
  };
}

#!/usr/bin/env node
/**
 * What a PostgreSQL row costs in the database alone, without HTTP: the store's own calls and the
 * floors' raw statements, each run by `--clients` concurrent loops on one pg.Pool for
 * `--duration` seconds, in interleaved rounds (median), on a PostgreSQL of its own (the test
 * harness's). Prints operations per second and PostgreSQL CPU per operation (every process of the
 * server, schedstat), and per case the statements it sent.
 *
 *   node bench/tools/pg-statements.mjs [replay|first|all] [--clients=32] [--duration=1] [--rounds=5]
 *
 * The cases (a "replay" reads a completed record, a "first" claims a new key and completes it):
 *   replay  floor-select        the floor: SELECT state, status, headers, body … WHERE key = $1
 *           store-get           the store's get() (its SELECT, the expiry and lock checks in SQL)
 *           store-claim         the store's getOrClaim() on that completed key: what a replay runs
 *           store-claim-spread  the same on 1000 completed keys in turn (no two loops on one row)
 *           claim-precheck      the store's claim statement, raw, with its INSERT skipped when a live
 *                               completed record stands (an experiment for packages/postgres)
 *           claim-prepared      the store's claim statement, raw, as a named (prepared) statement
 *   first   floor-insert-update the floor: INSERT … ON CONFLICT DO NOTHING, then UPDATE
 *           store-lease         the store's claim() + complete(), lease mode
 *           store-lease-nonotify  the same two statements with complete's pg_notify left out
 *           store-tx            claim() + complete(), transactional mode
 *           lease-prepared      store-lease's two statements, raw, as named (prepared) statements
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { postgresStore, schemaSql } from '@idem/postgres';
import { startPostgres } from '../lib/postgres-server.mjs';
import { median } from '../lib/stats.mjs';

const argv = process.argv.slice(2);
const opt = (name, fallback) => Number(argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? fallback);
const which = argv.find((a) => !a.startsWith('--')) ?? 'all';
const clients = opt('clients', 32);
const durationS = opt('duration', 1);
const rounds = opt('rounds', 5);

// Every statement any client sends, by its text's first line, and the texts themselves.
const sent = { count: 0, texts: new Map() };
const query = pg.Client.prototype.query;
pg.Client.prototype.query = function countedQuery(text, ...rest) {
  sent.count++;
  const sql = typeof text === 'string' ? text : text?.text;
  if (sql) sent.texts.set(sql, (sent.texts.get(sql) ?? 0) + 1);
  return query.call(this, text, ...rest);
};

const server = await startPostgres();
const pool = new pg.Pool({ connectionString: server.url, max: clients + 8, idleTimeoutMillis: 0 });
pool.on('error', () => {});
const lease = postgresStore({ pool, table: 'bench_idem_lease' });
const tx = postgresStore({ pool, table: 'bench_idem_tx', transactional: true });
await lease.migrate();
await tx.migrate();
await pool.query(schemaSql('bench_floor'));

const response = {
  status: 201,
  headers: { 'content-type': 'application/json; charset=utf-8' },
  body: Buffer.from(JSON.stringify({ id: 'ord_1', status: 'created', amount: 4200, currency: 'eur' })),
};
const fingerprint = 'f'.repeat(64);
const claimOptions = { fingerprint, lockTtl: 30_000 };
const done = { fingerprint, ttl: 86_400_000 };
const HEADERS = JSON.stringify(response.headers);

async function completed(store, key) {
  const claim = await store.claim(key, claimOptions);
  await store.complete(claim.lease, response, done);
}
await pool.query(
  `INSERT INTO bench_floor (key, state, started_at, status, headers, body, completed_at, expires_at)
   VALUES ('floor', 'completed', now(), 201, $1::jsonb, $2, now(), now() + interval '1 day')`,
  [HEADERS, response.body],
);
await completed(lease, 'replayed');
for (let i = 0; i < 1000; i++) await completed(lease, `spread-${i}`);

// complete's statement as the store sends it, and the same without its notification.
sent.texts.clear();
await completed(lease, 'probe');
const completeSql = [...sent.texts.keys()].find((t) => t.includes('pg_notify($8, key) FROM done'));
const completeQuiet = completeSql.replace('SELECT pg_notify($8, key) FROM done', 'SELECT key FROM done');
// The claim as the store sends it, and a variant that inserts nothing when a live completed record
// stands: ON CONFLICT DO UPDATE locks the conflicting row (a transaction id, a lock written into the
// row, WAL) even when its WHERE then declines the update, and a replay needs none of that.
sent.texts.clear();
await lease.claim('probe-claim', claimOptions);
const claimSql = [...sent.texts.keys()].find((t) => t.includes('ON CONFLICT (key) DO UPDATE'));
const claimPrecheck = claimSql.replace(
  "clock_timestamp() + $4 * interval '1 millisecond'\n  FROM settings\n",
  'clock_timestamp() + $4 * interval \'1 millisecond\'\n  FROM settings WHERE NOT EXISTS (SELECT 1 FROM "bench_idem_lease" x\n' +
    "    WHERE x.key = $1 AND x.state = 'completed' AND x.expires_at > clock_timestamp())\n",
);
if (claimPrecheck === claimSql) throw new Error('the claim statement changed: update the precheck variant');

let spread = 0;
const CASES = {
  replay: {
    'floor-select': () => pool.query('SELECT state, status, headers, body FROM bench_floor WHERE key = $1', ['floor']),
    'store-get': () => lease.get('replayed'),
    'store-claim': () => lease.getOrClaim('replayed', claimOptions),
    'store-claim-spread': () => lease.getOrClaim(`spread-${spread++ % 1000}`, claimOptions),
    'claim-precheck': () => pool.query(claimPrecheck, ['replayed', fingerprint, randomUUID(), 30_000, null, '250ms']),
    // The store's claim text unchanged, as a named (prepared) statement: parsed and planned once per
    // connection instead of on every call.
    'claim-prepared': () =>
      pool.query({
        name: 'claim',
        text: claimSql,
        values: ['replayed', fingerprint, randomUUID(), 30_000, null, '250ms'],
      }),
  },
  first: {
    'floor-insert-update': async () => {
      const key = randomUUID();
      const token = randomUUID();
      await pool.query(
        `INSERT INTO bench_floor (key, state, lease_token, started_at, expires_at)
         VALUES ($1, 'in_flight', $2, clock_timestamp(), clock_timestamp() + interval '30 seconds')
         ON CONFLICT (key) DO NOTHING`,
        [key, token],
      );
      await pool.query(
        `UPDATE bench_floor SET state = 'completed', status = $3, headers = $4::jsonb, body = $5, lease_token = NULL,
           completed_at = clock_timestamp(), expires_at = clock_timestamp() + interval '1 day'
         WHERE key = $1 AND lease_token = $2`,
        [key, token, 201, HEADERS, response.body],
      );
    },
    'store-lease': () => completed(lease, randomUUID()),
    'store-lease-nonotify': async () => {
      const key = randomUUID();
      const claim = await lease.claim(key, claimOptions);
      await pool.query(completeQuiet, [key, claim.lease.token, 201, HEADERS, response.body, fingerprint, 86_400_000]);
    },
    'store-tx': () => completed(tx, randomUUID()),
    'lease-prepared': async () => {
      const key = randomUUID();
      const token = randomUUID();
      await pool.query({ name: 'claim', text: claimSql, values: [key, fingerprint, token, 30_000, null, '250ms'] });
      await pool.query({
        name: 'complete',
        text: completeSql,
        values: [key, token, 201, HEADERS, response.body, fingerprint, 86_400_000, 'bench_channel'],
      });
    },
  },
};

async function window(op) {
  const cpu0 = server.cpuMicros();
  const sent0 = sent.count;
  const app0 = process.cpuUsage();
  let ops = 0;
  const end = Date.now() + durationS * 1000;
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (Date.now() < end) {
        await op();
        ops++;
      }
    }),
  );
  const app = process.cpuUsage(app0);
  return {
    opsPerS: ops / durationS,
    pgUs: (server.cpuMicros() - cpu0) / ops,
    appUs: (app.user + app.system) / ops,
    statements: (sent.count - sent0) / ops,
  };
}

try {
  for (const [scenario, cases] of Object.entries(CASES)) {
    if (which !== 'all' && which !== scenario) continue;
    const names = Object.keys(cases);
    for (const name of names) await window(cases[name]); // warm-up
    const results = Object.fromEntries(names.map((n) => [n, []]));
    for (let r = 0; r < rounds; r++)
      for (const name of r % 2 ? [...names].reverse() : names) results[name].push(await window(cases[name]));
    const base = results[names[0]];
    console.log(`\n${scenario}: ${clients} concurrent loops, ${rounds} rounds of ${durationS} s (medians)`);
    console.log('case                    ops/s   × floor (range)      PostgreSQL µs/op  this process µs/op  stmts/op');
    for (const name of names) {
      const list = results[name];
      const ratios = list.map((w, i) => w.opsPerS / base[i].opsPerS);
      const m = (f) => median(list.map((w) => w[f]));
      console.log(
        `${name.padEnd(22)} ${m('opsPerS').toFixed(0).padStart(6)}   ${median(ratios).toFixed(2)} (${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)})   ${m('pgUs').toFixed(0).padStart(14)}  ${m('appUs').toFixed(0).padStart(18)}  ${m('statements').toFixed(2).padStart(8)}`,
      );
    }
  }
} finally {
  await Promise.allSettled([lease.close(), tx.close()]);
  await pool.end();
  await server.stop();
}

/**
 * Every statement the store runs, built once per table. Times always come from the database
 * clock (`clock_timestamp()`, which also moves inside a transaction; `now()` only where an index
 * must serve the comparison), never the app's, so that
 * processes with skewed clocks agree on who holds a lease. Every read treats an expired row as
 * absent, so nothing depends on when the cleanup runs.
 */

/** The statements for one (quoted) table. */
export interface Statements {
  get: string;
  inspect: string;
  ping: string;
  claim: string;
  complete: string;
  extend: string;
  release: string;
  remove: string;
  peek: string;
  cleanup: string;
  count: string;
  clear: string;
}

// Whether a transactional marker's holder still runs: its session holds the marker's advisory lock
// (exclusively, at session level). The shared try-lock succeeds only when no session holds it
// exclusively (the holder died: PostgreSQL dropped its lock with its session), and probes never
// conflict with each other, so a reader can never make a dead holder look alive to a takeover. It
// is transaction-level: taken at most for the reader's own statement. (Locks of one session never
// conflict with each other, so the holder's own session must never run this probe: it never does,
// its client is lent to the handler until the execution ends.)
const holderAlive = (row: string): string => `NOT pg_try_advisory_xact_lock_shared(${row}.lease_lock)`;

// A transactional marker: in flight with a holder's lock. Its liveness is that lock alone, never
// its expires_at: the holder renews nothing in the database (a renewal of the marker from another
// connection would be a concurrent update of the row the holder's REPEATABLE READ or SERIALIZABLE
// transaction updates at the end, which then fails with 40001). expires_at only says when cleanup
// may remove the marker once its holder is gone.
const transactionalMarker = (row: string): string => `${row}.state = 'in_flight' AND ${row}.lease_lock IS NOT NULL`;

// A row counts: a transactional marker whose holder runs, or any other row that has not expired.
const live = (row: string): string => `CASE WHEN ${transactionalMarker(row)}
    THEN ${holderAlive(row)} ELSE ${row}.expires_at > clock_timestamp() END`;

// What a reader needs of a row, times as epoch milliseconds.
const columns = (row: string): string => `${row}.state, ${row}.fingerprint,
  floor(extract(epoch FROM ${row}.started_at) * 1000)::float8 AS started_ms, ${row}.status, ${row}.headers, ${row}.body,
  floor(extract(epoch FROM ${row}.completed_at) * 1000)::float8 AS completed_ms`;

/** Builds the statements for `table` (already quoted). */
export function statements(table: string): Statements {
  return {
    get: `SELECT ${columns('r')} FROM ${table} r WHERE r.key = $1 AND ${live('r')}`,

    // For operators: what get reads, and how long the row has left (NULL for a transactional
    // marker, which lasts as long as its holder). $1 key.
    inspect: `SELECT ${columns('r')}, CASE WHEN ${transactionalMarker('r')} THEN NULL
  ELSE greatest(0, ceil(extract(epoch FROM r.expires_at - clock_timestamp()) * 1000))::float8 END AS remaining_ms
FROM ${table} r WHERE r.key = $1 AND ${live('r')}`,

    // For health checks: a round trip that touches no table.
    ping: 'SELECT 1',

    // The claim, in one statement: insert the in-flight row, or take over one that counts as
    // absent; when the claim loses, the standing record comes back in the same round trip.
    // $1 key, $2 fingerprint, $3 lease token, $4 lockTtl ms, $5 advisory lock id (transactional
    // mode) or NULL, $6 lock_timeout.
    claim: `WITH settings AS MATERIALIZED (
  -- Local to this statement's own transaction: a row locked by a transaction that is committing
  -- its record must not make a duplicate wait (55P03 then means "in flight").
  SELECT set_config('lock_timeout', $6, true) AS lock_timeout
), claimed AS (
  INSERT INTO ${table} AS r (key, state, fingerprint, lease_token, lease_lock, started_at, expires_at)
  SELECT $1, 'in_flight', $2, $3, $5::bigint, clock_timestamp(), clock_timestamp() + $4 * interval '1 millisecond'
  FROM settings
  ON CONFLICT (key) DO UPDATE SET state = 'in_flight', fingerprint = excluded.fingerprint,
    lease_token = excluded.lease_token, lease_lock = excluded.lease_lock, started_at = excluded.started_at,
    expires_at = excluded.expires_at, status = NULL, headers = NULL, body = NULL, completed_at = NULL
  -- Take over only a row that counts as absent: a transactional marker under a dead holder, or
  -- any other row once expired.
  WHERE NOT (${live('r')})
  -- The new holder's session lock, taken before the row becomes visible at commit, so that no
  -- reader ever sees our row without our lock. (Here r is the row as written.)
  RETURNING CASE WHEN r.lease_lock IS NULL THEN true ELSE pg_try_advisory_lock(r.lease_lock) END AS locked
)
SELECT true AS acquired, c.locked, NULL::text AS state, NULL::text AS fingerprint, NULL::float8 AS started_ms,
  NULL::smallint AS status, NULL::jsonb AS headers, NULL::bytea AS body, NULL::float8 AS completed_ms
FROM claimed c
UNION ALL
-- The standing row as of this statement's snapshot; empty when it was committed just after the
-- snapshot was taken (the caller reads again then).
SELECT false, NULL, ${columns('s')} FROM ${table} s
WHERE s.key = $1 AND NOT EXISTS (SELECT 1 FROM claimed) AND ${live('s')}`,

    // Only the lease's own token, while its lease lasts, turns the row into the completed record.
    // The notification leaves with the commit (in transactional mode: the handler's transaction;
    // there the lease is the holder's own lock, which it holds while it runs this).
    // $1 key, $2 token, $3 status, $4 headers, $5 body, $6 fingerprint, $7 ttl ms, $8 channel.
    complete: `WITH done AS (
  UPDATE ${table} SET state = 'completed', status = $3, headers = $4::jsonb, body = $5, fingerprint = $6,
    completed_at = clock_timestamp(), expires_at = clock_timestamp() + $7 * interval '1 millisecond',
    lease_token = NULL, lease_lock = NULL
  WHERE key = $1 AND lease_token = $2 AND state = 'in_flight'
    AND (lease_lock IS NOT NULL OR expires_at > clock_timestamp())
  RETURNING key
)
SELECT pg_notify($8, key) FROM done`,

    // Lease mode only (a transactional holder renews nothing here). $1 key, $2 token, $3 lockTtl ms.
    extend: `UPDATE ${table} SET expires_at = clock_timestamp() + $3 * interval '1 millisecond'
WHERE key = $1 AND lease_token = $2 AND state = 'in_flight' AND expires_at > clock_timestamp()`,

    // Drops our in-flight row and wakes the waiters; in transactional mode it also gives back our
    // session lock. $1 key, $2 token, $3 channel, $4 advisory lock id or NULL.
    release: `WITH gone AS (
  DELETE FROM ${table} WHERE key = $1 AND lease_token = $2 AND state = 'in_flight' RETURNING key
)
SELECT (SELECT count(*) FROM (SELECT pg_notify($3, key) FROM gone) n)::int AS removed,
  CASE WHEN $4::bigint IS NULL THEN NULL ELSE pg_advisory_unlock($4::bigint) END AS unlocked`,

    // $1 key, $2 channel. True when the row still counted (an expired one is already absent).
    remove: `WITH gone AS (DELETE FROM ${table} r WHERE r.key = $1 RETURNING r.key, ${live('r')} AS live)
SELECT pg_notify($2, key), live FROM gone`,

    // For waiters: whether the key is still in flight, and for how long its lease lasts (NULL for
    // a transactional marker, which lasts as long as its holder).
    peek: `SELECT r.state, CASE WHEN ${transactionalMarker('r')} THEN NULL
  ELSE greatest(0, ceil(extract(epoch FROM r.expires_at - clock_timestamp()) * 1000))::float8 END AS remaining_ms
FROM ${table} r WHERE r.key = $1 AND ${live('r')}`,

    // Expired rows, a bounded batch at a time; SKIP LOCKED so that it never waits on (nor makes
    // wait) a claim taking an expired row over. The batch is found with now(), a constant of the
    // statement, so that the expires_at index serves it (clock_timestamp() is volatile: a seq
    // scan); the outer clock_timestamp() re-check keeps a row renewed meanwhile. A transactional
    // marker whose holder still runs is never a candidate (the probe comes before the row lock,
    // so the holder's row is not even locked). $1 batch size.
    cleanup: `DELETE FROM ${table} WHERE ctid IN (
  SELECT c.ctid FROM ${table} c WHERE c.expires_at <= now()
    AND CASE WHEN ${transactionalMarker('c')} THEN NOT (${holderAlive('c')}) ELSE true END
  LIMIT $1 FOR UPDATE SKIP LOCKED
) AND expires_at <= clock_timestamp()`,

    count: `SELECT count(*)::int AS n FROM ${table} r WHERE ${live('r')}`,
    clear: `DELETE FROM ${table}`,
  };
}

// Turns one store's soak ledgers into its figures. Pure: requests (the harness's ledger of every
// HTTP attempt), the apps' execution ledgers, the chaos events, the final scan of the store and,
// on PostgreSQL, the business rows and the completed records in, the report out.
// test/soak.test.ts feeds it hand-made ledgers to prove it catches what it must.
//
// Which executions count. Redis: every execution on the ledgers (the side effect is the execution
// itself). PostgreSQL: the executions whose business row is in the database, counted there, not
// from log lines: an execution killed before its insert, or whose transaction rolled back, did
// nothing.
//
// Double executions. Counted executions of one key are taken in start order; each one after the
// first needs a reason why the one before it (P) did not keep it from running:
//   data_loss          the store was killed and restarted empty (Redis, no persistence) between
//                      the two: P started before it was back (so P's claim, and whatever P stored,
//                      lived on the server that was killed), and this execution started after the
//                      kill. Also covers P still running: its lock went with the data. A store that
//                      restarts on its data (PostgreSQL) never explains a double this way.
//   holder_killed      P's process was SIGKILLed after P started and before P's response was stored
//                      (no outcome on record), and this execution started after the kill, once P's
//                      lease could have lapsed (at least 2/3 lockTtl − 500 ms later, as renewals run
//                      every lockTtl/3; sooner only if a store fault in the lockTtl before the kill
//                      may have made renewals fail).
//   store_failed       P's response could not be stored because the store was paused or down at
//                      that moment (outcome failed/store_error, within a fault window): P's client
//                      got the answer, nothing was kept, and the retry ran again.
//   write_unconfirmed  lease mode: P's business write landed but its answer was lost when
//                      PostgreSQL went down, so P answered 503 (not stored, the key released) and
//                      the retry wrote again.
// Anything else is unexplained, notably two executions of one key that overlap in time with no
// restart-empty between them (the lease did not hold), or a re-run after a stored response. In
// transactional mode every second business row of a key is unexplained: the mode exists to rule
// each of these causes out.

/**
 * What each store promises under the soak's faults, which the analysis holds it to.
 *   restartLosesData    a kill + restart forgets every record (and lock) it held
 *   restartEndsHolders  a kill ends every running execution's hold on its key (Redis: the lock
 *                       went with the data; transactional: the transaction went with its connection)
 *   rows                side effects are business rows, counted in the database
 *   transactional       a business row commits only with the stored response: no double is explained
 */
export const PROFILES = {
  redis: { label: 'Redis', restartLosesData: true, restartEndsHolders: true, rows: false, transactional: false },
  'postgres-lease': {
    label: 'PostgreSQL, lease mode',
    restartLosesData: false,
    restartEndsHolders: false,
    rows: true,
    transactional: false,
  },
  'postgres-tx': {
    label: 'PostgreSQL, transactional mode',
    restartLosesData: false,
    restartEndsHolders: true,
    rows: true,
    transactional: true,
  },
};

// A business write that failed for a fault is answered this long after the fault ended, at most.
const WRITE_FAILURE_MARGIN_MS = 2_000;

function percentile(sorted, p) {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

function stats(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return {
    count: sorted.length,
    min: sorted.length ? sorted[0] : null,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    max: sorted.length ? sorted[sorted.length - 1] : null,
  };
}

function tally(items, keyOf) {
  const out = {};
  for (const item of items) {
    const k = keyOf(item);
    out[k] = (out[k] ?? 0) + 1;
  }
  return out;
}

const keyId = (route, key) => `${route} ${key}`;

/** The outcome a latency is filed under. */
function outcomeOf(entry) {
  if (entry.error !== null) return entry.error === 'TIMEOUT' ? 'client timeout' : 'connection error';
  if (entry.status >= 200 && entry.status < 300)
    return entry.replayed ? `${entry.status} replayed (${entry.route})` : `${entry.status} executed`;
  // /work answers at once; /wait may first wait for the holder (409 after waitTimeout, 503 when
  // the store fails while it waits), so its latencies say little about the fault itself.
  if (entry.status === 409 || entry.status === 503) return `${entry.status} ${entry.code} (${entry.route})`;
  return `${entry.status}${entry.code ? ` ${entry.code}` : ''}`;
}

/**
 * @param {object} input
 * @param {object[]} input.requests every HTTP attempt (see http.mjs), with sid, kind, v, phase
 * @param {object[]} input.ledger every line of every app's ledger (see app.mjs)
 * @param {object[]} input.chaos the chaos events (see store-run.mjs)
 * @param {{ locks: object[], inFlight: object[], completed: number } | null} input.stuck the final scan
 * @param {{ skey: string, route: string, key: string, exec: string }[] | null} [input.effects]
 *   PostgreSQL: the business rows
 * @param {{ skey: string, exec: string | null }[] | null} [input.records] PostgreSQL: the completed records
 * @param {{ store?: string, lockTtl: number, commandTimeout: number }} input.meta
 */
export function analyze({ requests, ledger, chaos, stuck, effects = null, records = null, meta }) {
  const profile = PROFILES[meta.store ?? 'redis'];
  if (profile === undefined) throw new Error(`unknown store ${meta.store}`);
  // --- executions, from the handler side ---
  const execs = new Map();
  for (const line of ledger) {
    if (line.e !== 'start') continue;
    execs.set(line.x, {
      x: line.x,
      key: line.k,
      route: line.r,
      v: line.v,
      pid: line.pid,
      start: line.at,
      respondAt: null,
      sha: null,
      outcome: null,
      outcomeAt: null,
      sent: null,
      unwrittenAt: null,
    });
  }
  let orphanOutcomes = 0;
  for (const line of ledger) {
    if (line.e === 'outcome' && (line.x === undefined || line.x === null)) orphanOutcomes++;
    const ex = line.x ? execs.get(line.x) : undefined;
    if (ex === undefined) continue;
    if (line.e === 'respond') Object.assign(ex, { sha: line.sha, respondAt: line.at });
    else if (line.e === 'outcome') Object.assign(ex, { outcome: line.o, outcomeAt: line.at });
    else if (line.e === 'sent') ex.sent = line.at;
    else if (line.e === 'unwritten') ex.unwrittenAt = line.at;
  }
  const storeErrors = tally(
    ledger.filter((l) => l.e === 'store'),
    (l) => l.op,
  );
  const leaseLines = ledger.filter((l) => l.e === 'lease');

  // --- chaos ---
  const appKills = chaos.filter((c) => c.type === 'app-kill');
  const killOf = new Map(appKills.map((k) => [k.pid, k]));
  const storeKills = chaos.filter((c) => c.type === 'store-kill');
  const pauses = chaos.filter((c) => c.type === 'store-pause');
  const crashes = chaos.filter((c) => c.type === 'app-crash');
  const faultWindows = [...pauses.map((p) => [p.from, p.to]), ...storeKills.map((k) => [k.at, k.upAt])];
  const inFault = (from, to) => faultWindows.some(([a, b]) => a <= to && b >= from);
  const inKill = (from, to) => storeKills.some((k) => k.at <= to && k.upAt >= from);

  const all = [...execs.values()];

  // --- business rows (PostgreSQL) ---
  const rowsOf = new Map();
  for (const row of effects ?? []) {
    if (!rowsOf.has(row.exec)) rowsOf.set(row.exec, []);
    rowsOf.get(row.exec).push(row);
  }
  const hasRow = (ex) => rowsOf.has(ex.x);

  // Leases lost while the handler ran (leaseLost, or a fenced store write). With every pause
  // shorter than the lease, only a kill may take one, and only where a kill ends holders (Redis:
  // the lock went with the data; transactional: the transaction with its connection): the
  // execution started before the store was back and lost its lease after the kill.
  const lostAt = new Map();
  for (const line of leaseLines) if (line.x && execs.has(line.x) && !lostAt.has(line.x)) lostAt.set(line.x, line.at);
  for (const ex of all) if (ex.outcome === 'fenced' && !lostAt.has(ex.x)) lostAt.set(ex.x, ex.outcomeAt);
  const leasesLost = [...lostAt].map(([x, at]) => {
    const ex = execs.get(x);
    const restart = profile.restartEndsHolders && storeKills.find((k) => ex.start < k.upAt && k.at < at);
    return { exec: x, key: `${ex.route} ${ex.key}`, start: ex.start, lostAt: at, explained: Boolean(restart) };
  });
  const leasesLostWithoutRestart = leasesLost.filter((l) => !l.explained);
  const orphanLeaseLines = leaseLines.filter((l) => !l.x || !execs.has(l.x)).length;
  const withoutKey = all.filter((e) => e.key === null);
  const interrupted = all.filter((e) => e.outcome === null && e.sent === null && killOf.has(e.pid));
  const unfinished = all.filter((e) => e.outcome === null && e.sent === null && !killOf.has(e.pid));

  // The executions that took effect: on PostgreSQL, those whose business row the database holds.
  const byKey = new Map();
  for (const ex of all) {
    if (ex.key === null || (profile.rows && !hasRow(ex))) continue;
    const id = keyId(ex.route, ex.key);
    if (!byKey.has(id)) byKey.set(id, []);
    byKey.get(id).push(ex);
  }

  // --- double executions ---
  // A killed holder's lease was renewed at most lockTtl/3 before the kill, so it lapses at least
  // 2/3 lockTtl after it (less a margin for timer jitter), unless store faults made renewals fail.
  const earliestTakeover = (2 * meta.lockTtl) / 3 - (meta.takeoverMarginMs ?? 500);
  const doubles = [];
  for (const [id, list] of byKey) {
    list.sort((a, b) => a.start - b.start);
    for (let i = 1; i < list.length; i++) {
      const prev = list[i - 1];
      const cur = list[i];
      const kill = killOf.get(prev.pid);
      const prevEnd = prev.sent ?? prev.outcomeAt ?? kill?.at ?? Infinity;
      const loss = profile.restartLosesData && storeKills.find((k) => prev.start < k.upAt && cur.start > k.at);
      let cause;
      let why;
      if (profile.transactional) {
        cause = 'unexplained';
        why = `transactional mode: a second committed business row for this key (${prev.x}, then ${cur.x})`;
      } else if (loss) {
        cause = 'data_loss';
        why = `store killed at ${loss.at} and restarted empty (back at ${loss.upAt}), between the executions`;
      } else if (cur.start < prevEnd) {
        cause = 'unexplained';
        why = 'overlapping executions with no restart-empty between them: the lease did not hold';
      } else if (
        prev.outcome === null &&
        kill &&
        kill.at >= prev.start &&
        kill.at <= cur.start &&
        cur.start - kill.at < earliestTakeover &&
        !inFault(kill.at - meta.lockTtl, kill.at)
      ) {
        cause = 'unexplained';
        why =
          `holder pid ${prev.pid} SIGKILLed, but its key was taken over ${cur.start - kill.at} ms later, ` +
          `before its lease could lapse (renewed every ${Math.floor(meta.lockTtl / 3)} ms, ` +
          'no store fault before the kill)';
      } else if (prev.outcome === null && kill && kill.at >= prev.start && kill.at <= cur.start) {
        cause = 'holder_killed';
        why =
          `holder pid ${prev.pid} SIGKILLed ${kill.at - prev.start} ms into its execution, before storing; ` +
          `retry ran ${cur.start - kill.at} ms after the kill`;
      } else if (
        (prev.outcome === 'failed' || prev.outcome === 'store_error') &&
        inFault((prev.respondAt ?? prev.start) - meta.commandTimeout, prev.outcomeAt)
      ) {
        cause = 'store_failed';
        why = `the response could not be stored (${prev.outcome}) while the store was paused or down`;
      } else if (
        profile.rows &&
        prev.unwrittenAt !== null &&
        inKill(prev.start, prev.unwrittenAt) &&
        prev.outcome !== 'stored'
      ) {
        cause = 'write_unconfirmed';
        why =
          'its business write landed, but PostgreSQL went down before confirming it: ' +
          'answered 503 (not stored), the retry wrote again';
      } else {
        cause = 'unexplained';
        why =
          prev.outcome === 'stored'
            ? 'ran again after a stored response, with no restart-empty in between'
            : `previous execution ended with outcome ${prev.outcome ?? 'none'}` +
              (kill ? '' : ' and its process was not killed');
      }
      doubles.push({
        key: id,
        cause,
        why,
        previous: { ...prev },
        execution: { ...cur },
        takeoverAfterKillMs: cause === 'holder_killed' ? cur.start - kill.at : undefined,
      });
    }
  }
  const doubleCount = (cause) => doubles.filter((d) => d.cause === cause).length;
  const killGaps = doubles.filter((d) => d.cause === 'holder_killed').map((d) => d.takeoverAfterKillMs);

  // Holders killed mid-handler that left nothing (no business row): how soon their key ran again.
  // Transactional mode: at once, as the rollback freed the key; no lease to wait out.
  const retryAfterKill = [];
  if (profile.rows) {
    for (const ex of interrupted) {
      if (ex.key === null || hasRow(ex)) continue;
      const kill = killOf.get(ex.pid);
      const next = all
        .filter((e) => e.key === ex.key && e.route === ex.route && e.start > kill.at)
        .sort((a, b) => a.start - b.start)[0];
      if (next) retryAfterKill.push(next.start - kill.at);
    }
  }

  // --- business rows against the records (PostgreSQL) ---
  const rowProblems = [];
  if (profile.rows) {
    const rowsByKey = new Map();
    for (const row of effects ?? []) {
      if (!rowsByKey.has(row.skey)) rowsByKey.set(row.skey, []);
      rowsByKey.get(row.skey).push(row);
      if (!execs.has(row.exec))
        rowProblems.push({ key: keyId(row.route, row.key), problem: `row of ${row.exec}, an execution no ledger has` });
    }
    const recordOf = new Map((records ?? []).map((r) => [r.skey, r]));
    for (const record of records ?? []) {
      const rows = rowsByKey.get(record.skey) ?? [];
      const name = rows[0] ? keyId(rows[0].route, rows[0].key) : record.skey;
      if (!rows.some((r) => r.exec === record.exec))
        rowProblems.push({ key: name, problem: `completed record of ${record.exec}, which has no business row` });
      else if (profile.transactional && rows.length !== 1)
        rowProblems.push({ key: name, problem: `completed key with ${rows.length} business rows, not exactly one` });
    }
    if (profile.transactional) {
      // A row commits with its record: a row without one is a write kept without its response.
      for (const [skey, rows] of rowsByKey)
        if (!recordOf.has(skey))
          rowProblems.push({
            key: keyId(rows[0].route, rows[0].key),
            problem: `${rows.length} business row(s), no completed record`,
          });
    }
  }
  // How many keys hold 1, 2, … business rows.
  const rowsPerKey = tally(Object.values(tally(effects ?? [], (r) => r.skey)), (n) => String(n));

  // --- responses: every 2xx must be the exact bytes of the execution it names ---
  const storedByKey = new Map();
  for (const [id, list] of byKey)
    storedByKey.set(
      id,
      list.filter((e) => e.outcome === 'stored'),
    );
  const differing = [];
  const lateWrites = new Set();
  const resultsSeen = new Map();
  for (const r of requests) {
    if (r.status === null || r.status < 200 || r.status >= 300) continue;
    const id = keyId(r.route, r.key);
    const ex = r.exec ? execs.get(r.exec) : undefined;
    const problems = [];
    if (ex === undefined) problems.push(r.exec ? 'names an execution no handler recorded' : 'carries no X-Exec');
    else {
      if (ex.key !== r.key || ex.route !== r.route) problems.push(`body of another key (${ex.route} ${ex.key})`);
      if (ex.sha !== r.sha) problems.push('body bytes differ from what the handler produced');
      if (r.status !== 201 || r.location !== `/things/${ex.x}` || !String(r.type).startsWith('application/json'))
        problems.push(`status/headers differ (${r.status}, ${r.location}, ${r.type})`);
      if (r.replayed && ex.v !== r.v)
        problems.push(`replay of payload ${ex.v} answered a request with payload ${r.v} (should be 422)`);
      // A fenced write never lands. A store call that timed out may have (the script ran once the store
      // answered again): its replay is right, though the execute event said 'failed'.
      if (r.replayed && ex.outcome === 'fenced') problems.push('replay of an execution whose write was fenced');
      // Told "success" for a write that is not there (rolled back, or never made).
      if (profile.rows && !hasRow(ex)) problems.push('a success whose execution has no business row');
      if (r.replayed && (ex.outcome === 'failed' || ex.outcome === 'store_error')) lateWrites.add(ex.x);
      if (r.replayed) {
        const newer = (storedByKey.get(id) ?? []).find((s) => s.start > ex.start && s.outcomeAt < r.t0);
        if (newer) problems.push(`stale: replays ${ex.x} though ${newer.x} was stored before the request was sent`);
      }
    }
    if (!resultsSeen.has(id)) resultsSeen.set(id, new Set());
    resultsSeen.get(id).add(r.exec);
    if (problems.length)
      differing.push({ key: id, exec: r.exec, slot: r.slot, replayed: r.replayed, t0: r.t0, problems });
  }
  const keysSeeingTwoResults = [...resultsSeen.values()].filter((s) => s.size > 1).length;

  // --- statuses ---
  const fiveHundreds = requests.filter((r) => r.status !== null && r.status >= 500);
  const problem503 = (r, code) =>
    r.status === 503 && r.code === code && String(r.type).startsWith('application/problem+json');
  const documented503 = fiveHundreds.filter((r) => problem503(r, 'store_unavailable'));
  // The app's own 503 when its business write failed: only while PostgreSQL was down or paused.
  const unwritten503 = fiveHundreds.filter(
    (r) => profile.rows && problem503(r, 'business_write_failed') && inFault(r.t0, r.t1 + WRITE_FAILURE_MARGIN_MS),
  );
  const undocumented5xx = fiveHundreds.filter((r) => !documented503.includes(r) && !unwritten503.includes(r));
  const unexpected = [];
  for (const r of requests) {
    if (r.error !== null || r.status >= 500) continue;
    let ok;
    if (r.kind === 'missing') ok = r.status === 400 && r.code === 'key_missing';
    else if (r.kind === 'invalid') ok = r.status === 400 && r.code === 'key_invalid';
    else
      ok =
        r.status === 201 ||
        (r.status === 409 && r.code === 'in_flight') ||
        (r.kind === 'mismatch' && r.status === 422 && r.code === 'key_reused');
    if (!ok && r.status < 500)
      unexpected.push({ key: keyId(r.route, r.key), kind: r.kind, status: r.status, code: r.code, phase: r.phase });
  }
  const connectionErrors = requests.filter((r) => r.error !== null);
  const byKill = connectionErrors.filter((r) => {
    const kill = killOf.get(r.pid);
    return kill !== undefined && kill.at >= r.t0 - 1_000 && kill.at <= r.t1 + 1_000;
  });

  // --- stuck keys: in flight after every lease lapsed ---
  const verify = requests.filter((r) => r.phase === 'verify');
  const verifyFinal = new Map();
  for (const r of verify) verifyFinal.set(keyId(r.route, r.key), r);
  const verifyStuck = [...verifyFinal.values()].filter((r) => r.status !== 201);
  const scanStuck = stuck ? stuck.locks.length + stuck.inFlight.length : 0;

  // --- latency by outcome ---
  const latencyGroups = new Map();
  for (const r of requests) {
    if (r.phase !== 'load') continue;
    const name = outcomeOf(r);
    if (!latencyGroups.has(name)) latencyGroups.set(name, []);
    latencyGroups.get(name).push(r.t1 - r.t0);
  }
  const latency = Object.fromEntries(
    [...latencyGroups].sort((a, b) => b[1].length - a[1].length).map(([name, values]) => [name, stats(values)]),
  );

  const invariants = {
    unexplainedDoubleExecutions: doubleCount('unexplained'),
    differingResponses: differing.length,
    stuckKeys: scanStuck + verifyStuck.length,
    undocumented5xx: undocumented5xx.length,
    unexpectedAnswers: unexpected.length,
    leasesLostWithoutRestart: leasesLostWithoutRestart.length + orphanLeaseLines,
    executionsWithoutKey: withoutKey.length,
    appCrashes: crashes.length,
    businessRowMismatches: rowProblems.length,
  };

  return {
    invariants: { ...invariants, ok: Object.values(invariants).every((n) => n === 0) },
    requests: {
      sent: requests.length,
      load: requests.length - verify.length,
      verify: verify.length,
      byKind: tally(requests, (r) => r.kind),
      byFramework: tally(
        requests.filter((r) => r.status !== null && r.status >= 200 && r.status < 300),
        (r) => r.fw,
      ),
      byAnswer: tally(requests, outcomeOf),
      documented503: documented503.length,
      businessWriteFailed503: unwritten503.length,
      undocumented5xx: undocumented5xx
        .slice(0, 20)
        .map((r) => ({ status: r.status, code: r.code, slot: r.slot, t0: r.t0 })),
      connectionErrors: connectionErrors.length,
      connectionErrorsAtAKill: byKill.length,
      connectionErrorsOther: connectionErrors.length - byKill.length,
      clientTimeouts: connectionErrors.filter((r) => r.error === 'TIMEOUT').length,
      unexpected: unexpected.slice(0, 20),
    },
    keys: {
      total: new Set(requests.filter((r) => r.key !== null && r.kind !== 'invalid').map((r) => keyId(r.route, r.key)))
        .size,
      executed: byKey.size,
      seeingTwoResults: keysSeeingTwoResults,
    },
    executions: {
      total: all.length,
      // PostgreSQL: those whose business row the database holds (the rest did nothing).
      withBusinessRow: profile.rows ? all.filter(hasRow).length : null,
      outcomes: tally(all, (e) => e.outcome ?? (killOf.has(e.pid) ? 'none (process killed)' : 'none')),
      interruptedByKill: interrupted.length,
      // Handlers that outlived lockTtl kept their key on renewals alone: a lapse would have let a
      // retry run them again (an overlap, counted above as unexplained).
      longerThanLease: all.filter((e) => e.respondAt !== null && e.respondAt - e.start > meta.lockTtl).length,
      unfinished: unfinished.length,
      withoutKey: withoutKey.length,
      orphanOutcomes,
      leaseLost: leaseLines.length,
      leasesLost: leasesLost.length,
      leasesLostAtARestart: leasesLost.length - leasesLostWithoutRestart.length,
      leasesLostWithoutRestart: leasesLostWithoutRestart.slice(0, 20),
      storeErrors,
    },
    doubles: {
      total: doubles.length,
      explained: {
        holderKilled: doubleCount('holder_killed'),
        dataLoss: doubleCount('data_loss'),
        storeFailed: doubleCount('store_failed'),
        writeUnconfirmed: doubleCount('write_unconfirmed'),
      },
      unexplained: doubleCount('unexplained'),
      takeoverAfterKillMs: stats(killGaps),
      retryAfterKilledHolderLeftNothingMs: stats(retryAfterKill),
      details: doubles.map((d) => ({
        key: d.key,
        cause: d.cause,
        why: d.why,
        previous: pickExec(d.previous),
        execution: pickExec(d.execution),
      })),
    },
    rows: profile.rows
      ? {
          total: effects?.length ?? 0,
          completedRecords: records?.length ?? 0,
          keysByRowCount: rowsPerKey,
          mismatches: rowProblems.length,
          details: rowProblems.slice(0, 50),
        }
      : null,
    responses: {
      checked: requests.filter((r) => r.status !== null && r.status >= 200 && r.status < 300).length,
      replays: requests.filter((r) => r.replayed).length,
      replayedAfterFailedStore: lateWrites.size,
      differing: differing.length,
      details: differing.slice(0, 50),
    },
    stuck: {
      total: invariants.stuckKeys,
      locksLeft: stuck?.locks.length ?? null,
      inFlightRecordsLeft: stuck?.inFlight.length ?? null,
      completedRecords: stuck?.completed ?? null,
      verifyNotAnswered201: verifyStuck.length,
      details: [
        ...(stuck?.locks ?? []),
        ...(stuck?.inFlight ?? []),
        ...verifyStuck
          .slice(0, 20)
          .map((r) => ({ key: keyId(r.route, r.key), status: r.status, code: r.code, error: r.error })),
      ],
    },
    verify: {
      keys: verifyFinal.size,
      replayed: [...verifyFinal.values()].filter((r) => r.status === 201 && r.replayed).length,
      executed: [...verifyFinal.values()].filter((r) => r.status === 201 && !r.replayed).length,
    },
    chaos: {
      storePauses: pauses.length,
      storePauseMs: stats(pauses.map((p) => p.to - p.from)),
      storeRestarts: storeKills.length,
      storeDownMs: stats(storeKills.map((k) => k.upAt - k.at)),
      appKills: appKills.length,
      appKillsWithHandlersRunning: appKills.filter((k) => interrupted.some((e) => e.pid === k.pid)).length,
      appCrashes: crashes.length,
    },
    latency,
  };
}

function pickExec(e) {
  const { x: exec, pid, v, start, outcome, outcomeAt, sent } = e;
  return { exec, pid, v, start, outcome, outcomeAt, sent };
}

/**
 * The soak in CI: its quick mode (test/soak/run.mjs --quick: per store four app processes, Express
 * and Koa, on Redis, on PostgreSQL in lease mode and in transactional mode, side by side; ~18 s of
 * mixed load under pauses and kills of each store and app SIGKILLs) must hold every invariant on
 * every store. First, the analyser is fed hand-made ledgers, to show it catches each violation it
 * exists to catch: a soak that cannot fail proves nothing.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { analyze, type SoakChaosEvent, type SoakFile, type SoakLedgerLine, type SoakRequest } from './soak/analyze.mjs';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const meta = { lockTtl: 5_000, commandTimeout: 1_000 };
const T = 1_700_000_000_000;

/** The ledger lines of one execution: started at `start`, answered `ms` later, with an outcome. */
function execution(
  x: string,
  key: string,
  pid: number,
  start: number,
  { ms = 50, outcome = 'stored' as string | null, v = 'a' } = {},
): SoakLedgerLine[] {
  const lines: SoakLedgerLine[] = [{ e: 'start', x, k: key, r: '/work', v, pid, at: start }];
  if (outcome === null) return lines;
  return [
    ...lines,
    { e: 'respond', x, sha: `sha-${x}`, pid, at: start + ms },
    { e: 'outcome', x, o: outcome, s: 201, pid, at: start + ms + 1 },
    { e: 'sent', x, pid, at: start + ms + 2 },
  ];
}

/** A 201 answered with execution `x`'s body. */
function answer(x: string, key: string, t0: number, fields: Partial<SoakRequest> = {}): SoakRequest {
  return {
    sid: 1,
    kind: 'retried',
    v: 'a',
    phase: 'load',
    slot: 0,
    fw: 'express',
    pid: 1,
    route: '/work',
    key,
    t0,
    t1: t0 + 5,
    status: 201,
    code: null,
    replayed: true,
    exec: x,
    sha: `sha-${x}`,
    location: `/things/${x}`,
    type: 'application/json; charset=utf-8',
    error: null,
    ...fields,
  };
}

function run(ledger: SoakLedgerLine[], chaos: SoakChaosEvent[] = [], requests: SoakRequest[] = []) {
  return analyze({ requests, ledger, chaos, stuck: { locks: [], inFlight: [], completed: 0 }, meta });
}

type Row = { skey: string; route: string; key: string; exec: string };
const row = (exec: string, key = 'k'): Row => ({ skey: `h-${key}`, route: '/work', key, exec });

/** The analyser on a PostgreSQL store: business rows and completed records beside the ledgers. */
function runPg(
  store: 'postgres-lease' | 'postgres-tx',
  ledger: SoakLedgerLine[],
  {
    chaos = [],
    requests = [],
    effects = [],
    records = [],
  }: Partial<{
    chaos: SoakChaosEvent[];
    requests: SoakRequest[];
    effects: Row[];
    records: { skey: string; exec: string | null }[];
  }> = {},
) {
  const stuck = { locks: [], inFlight: [], completed: records.length };
  return analyze({ requests, ledger, chaos, stuck, effects, records, meta: { ...meta, store } });
}

const appKill = (pid: number, at: number): SoakChaosEvent => ({
  type: 'app-kill',
  slot: 0,
  pid,
  framework: 'express',
  at,
  exitedAt: at + 5,
  outstanding: 1,
});

describe('the soak analyser', () => {
  it('flags overlapping executions of one key as unexplained, and a Redis restart between them as data loss', () => {
    const ledger = [...execution('e1', 'k', 10, T, { ms: 2_000 }), ...execution('e2', 'k', 11, T + 500)];
    expect(run(ledger).invariants.unexplainedDoubleExecutions).toBe(1);
    const report = run(ledger, [{ type: 'store-kill', at: T + 100, downAt: T + 101, upAt: T + 400 }]);
    expect(report.invariants.unexplainedDoubleExecutions).toBe(0);
    expect(report.doubles.explained.dataLoss).toBe(1);
    // A restart after both had claimed the key explains nothing.
    expect(
      run(ledger, [{ type: 'store-kill', at: T + 600, downAt: T + 601, upAt: T + 900 }]).invariants
        .unexplainedDoubleExecutions,
    ).toBe(1);
    // Overlap is never excused by what happened to the first execution's store write.
    const failedWrite = [
      ...execution('e1', 'k', 10, T, { ms: 2_000, outcome: 'failed' }),
      ...execution('e2', 'k', 11, T + 500),
    ];
    expect(
      run(failedWrite, [{ type: 'store-pause', from: T + 1_000, to: T + 2_500 }]).invariants
        .unexplainedDoubleExecutions,
    ).toBe(1);
  });

  it('flags a re-run after a stored response, with no fault between', () => {
    const report = run([...execution('e1', 'k', 10, T), ...execution('e2', 'k', 11, T + 10_000)]);
    expect(report.doubles.unexplained).toBe(1);
    expect(report.doubles.details[0]?.why).toMatch(/stored response/);
  });

  it('explains a re-run after the holder was SIGKILLed before storing, not one before its lease could lapse', () => {
    const kill = (at: number): SoakChaosEvent => ({
      type: 'app-kill',
      slot: 0,
      pid: 10,
      framework: 'express',
      at,
      exitedAt: at + 5,
      outstanding: 1,
    });
    const killed = execution('e1', 'k', 10, T, { outcome: null });
    const late = run([...killed, ...execution('e2', 'k', 11, T + 4_500)], [kill(T + 200)]);
    expect(late.doubles.explained.holderKilled).toBe(1);
    expect(late.invariants.unexplainedDoubleExecutions).toBe(0);
    const early = run([...killed, ...execution('e2', 'k', 11, T + 1_200)], [kill(T + 200)]);
    expect(early.invariants.unexplainedDoubleExecutions).toBe(1);
  });

  it('explains a re-run after a store write that failed while Redis was paused, and only then', () => {
    const ledger = [...execution('e1', 'k', 10, T, { outcome: 'failed' }), ...execution('e2', 'k', 11, T + 6_000)];
    expect(run(ledger).invariants.unexplainedDoubleExecutions).toBe(1);
    const paused = run(ledger, [{ type: 'store-pause', from: T + 20, to: T + 1_500 }]);
    expect(paused.doubles.explained.storeFailed).toBe(1);
    expect(paused.invariants.unexplainedDoubleExecutions).toBe(0);
  });

  it('flags a lease lost with no Redis restart to take it', () => {
    const ledger = [...execution('e1', 'k', 10, T, { ms: 3_000, outcome: 'fenced' })];
    expect(run(ledger).invariants.leasesLostWithoutRestart).toBe(1);
    expect(
      run(ledger, [{ type: 'store-kill', at: T + 1_000, downAt: T + 1_001, upAt: T + 1_400 }]).invariants
        .leasesLostWithoutRestart,
    ).toBe(0);
    const lost: SoakLedgerLine = { e: 'lease', x: 'e2', pid: 11, at: T + 4_000 };
    expect(run([...execution('e2', 'k2', 11, T, { ms: 5_000 }), lost]).invariants.leasesLostWithoutRestart).toBe(1);
  });

  it('flags replays whose bytes differ, that answer another payload, or that are stale', () => {
    const ledger = [...execution('e1', 'k', 10, T), ...execution('e2', 'k', 11, T + 5_000)];
    const chaos: SoakChaosEvent[] = [{ type: 'store-kill', at: T + 1_000, downAt: T + 1_001, upAt: T + 1_500 }];
    expect(
      run(ledger, chaos, [answer('e1', 'k', T + 200), answer('e2', 'k', T + 6_000)]).invariants.differingResponses,
    ).toBe(0);
    expect(run(ledger, chaos, [answer('e1', 'k', T + 200, { sha: 'other bytes' })]).invariants.differingResponses).toBe(
      1,
    );
    expect(
      run(ledger, chaos, [answer('e1', 'k', T + 200, { kind: 'mismatch', v: 'b' })]).invariants.differingResponses,
    ).toBe(1);
    // e2 was stored at T + 5 051: a replay of e1 asked for after that is stale.
    expect(run(ledger, chaos, [answer('e1', 'k', T + 6_000)]).invariants.differingResponses).toBe(1);
    expect(run(ledger, chaos, [answer('e9', 'k', T + 200)]).invariants.differingResponses).toBe(1);
  });

  it('counts 5xx other than 503 store_unavailable, unexpected 4xx, keyless executions and stuck keys', () => {
    const problem = { replayed: false, exec: null, sha: null, location: null, type: 'application/problem+json' };
    const report = run(
      [{ e: 'start', x: 'n1', k: null, r: '/work', v: 'a', pid: 10, at: T }],
      [],
      [
        answer('-', 'k', T, { ...problem, status: 503, code: 'store_unavailable' }),
        answer('-', 'k', T, { ...problem, status: 500, type: 'text/plain' }),
        answer('-', 'k', T, { ...problem, status: 422, code: 'key_reused' }),
      ],
    );
    expect(report.requests.documented503).toBe(1);
    expect(report.invariants.undocumented5xx).toBe(1);
    expect(report.invariants.unexpectedAnswers).toBe(1);
    expect(report.invariants.executionsWithoutKey).toBe(1);
    const stuck = analyze({
      requests: [],
      ledger: [],
      chaos: [],
      stuck: { locks: [{ key: 'idem:{x}:lock' }], inFlight: [], completed: 0 },
      meta,
    });
    expect(stuck.invariants.stuckKeys).toBe(1);
  });

  it('PostgreSQL restarts on its data: a restart between two executions explains no double', () => {
    const ledger = [...execution('e1', 'k', 10, T), ...execution('e2', 'k', 11, T + 5_000)];
    const chaos: SoakChaosEvent[] = [{ type: 'store-kill', at: T + 1_000, downAt: T + 1_001, upAt: T + 1_500 }];
    expect(run(ledger, chaos).doubles.explained.dataLoss).toBe(1);
    const lease = runPg('postgres-lease', ledger, { chaos, effects: [row('e1'), row('e2')] });
    expect(lease.doubles.explained.dataLoss).toBe(0);
    expect(lease.invariants.unexplainedDoubleExecutions).toBe(1);
  });

  it('PostgreSQL counts business rows: an execution killed before its commit did nothing', () => {
    const killed = execution('e1', 'k', 10, T, { outcome: null });
    // Retried at once, as a rollback frees the key: no lease to wait out, and no double.
    const ledger = [...killed, ...execution('e2', 'k', 11, T + 300)];
    const tx = runPg('postgres-tx', ledger, {
      chaos: [appKill(10, T + 200)],
      effects: [row('e2')],
      records: [{ skey: 'h-k', exec: 'e2' }],
    });
    expect(tx.doubles.total).toBe(0);
    expect(tx.invariants.ok).toBe(true);
    expect(tx.doubles.retryAfterKilledHolderLeftNothingMs.max).toBe(100);
    // Lease mode, the killed holder's autocommitted row stays: the documented double, after its lease.
    const late = [...killed, ...execution('e2', 'k', 11, T + 4_500)];
    const lease = runPg('postgres-lease', late, {
      chaos: [appKill(10, T + 200)],
      effects: [row('e1'), row('e2')],
      records: [{ skey: 'h-k', exec: 'e2' }],
    });
    expect(lease.doubles.explained.holderKilled).toBe(1);
    expect(lease.invariants.ok).toBe(true);
  });

  it('transactional mode: every second business row of a key is unexplained, whatever happened before it', () => {
    const late = [...execution('e1', 'k', 10, T, { outcome: null }), ...execution('e2', 'k', 11, T + 4_500)];
    const tx = runPg('postgres-tx', late, {
      chaos: [appKill(10, T + 200)],
      effects: [row('e1'), row('e2')],
      records: [{ skey: 'h-k', exec: 'e2' }],
    });
    expect(tx.doubles.explained.holderKilled).toBe(0);
    expect(tx.invariants.unexplainedDoubleExecutions).toBe(1);
    // …and the completed key holds two rows, not exactly one.
    expect(tx.invariants.businessRowMismatches).toBe(1);
  });

  it('checks business rows against the stored records and the successes against the rows', () => {
    const ledger = execution('e1', 'k', 10, T);
    const ok = { effects: [row('e1')], records: [{ skey: 'h-k', exec: 'e1' }] };
    expect(runPg('postgres-tx', ledger, ok).invariants.ok).toBe(true);
    // A record whose execution has no row; a row kept without its record; a row no ledger knows.
    expect(
      runPg('postgres-tx', ledger, { records: [{ skey: 'h-k', exec: 'e1' }] }).invariants.businessRowMismatches,
    ).toBe(1);
    expect(runPg('postgres-tx', ledger, { effects: [row('e1')] }).invariants.businessRowMismatches).toBe(1);
    expect(
      runPg('postgres-lease', ledger, { ...ok, effects: [row('e1'), row('e9', 'k9')] }).invariants
        .businessRowMismatches,
    ).toBe(1);
    // A client told "success" for an execution whose write is not there.
    const told = [answer('e1', 'k', T + 200, { replayed: false })];
    expect(runPg('postgres-tx', ledger, { ...ok, requests: told }).invariants.differingResponses).toBe(0);
    expect(
      runPg('postgres-tx', ledger, { records: [], effects: [], requests: told }).invariants.differingResponses,
    ).toBe(1);
  });

  it("counts the app's own 503 business_write_failed as documented only while PostgreSQL was down", () => {
    const problem = { replayed: false, exec: null, sha: null, location: null, type: 'application/problem+json' };
    const requests = [answer('-', 'k', T, { ...problem, status: 503, code: 'business_write_failed' })];
    expect(runPg('postgres-lease', [], { requests }).invariants.undocumented5xx).toBe(1);
    const chaos: SoakChaosEvent[] = [{ type: 'store-kill', at: T - 100, downAt: T - 90, upAt: T + 800 }];
    const down = runPg('postgres-lease', [], { requests, chaos });
    expect(down.invariants.undocumented5xx).toBe(0);
    expect(down.requests.businessWriteFailed503).toBe(1);
    // Redis has no business write: there it is never documented.
    expect(run([], chaos, requests).invariants.undocumented5xx).toBe(1);
  });
});

describe('the soak, quick mode', () => {
  let out: string | undefined;
  let soak: ChildProcess | undefined;
  afterEach(() => {
    // A soak cut short by the test's timeout stops (SIGTERM: it kills its apps and Redis on exit).
    if (soak && soak.exitCode === null && soak.signalCode === null) soak.kill('SIGTERM');
    if (out !== undefined) rmSync(out, { recursive: true, force: true });
  });

  it('holds every invariant on every store under store pauses and kills and app SIGKILLs', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'idem-soak-test-'));
    out = dir;
    let output = '';
    const code = await new Promise<number | null>((resolve) => {
      const child = spawn(process.execPath, ['test/soak/run.mjs', '--quick', '--out', dir], {
        cwd: ROOT,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      soak = child;
      child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
      child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
      child.on('exit', resolve);
    });
    // 0: every invariant held; 1: one failed (the figures below say which); anything else: the soak broke.
    expect([0, 1], output).toContain(code);
    const file = JSON.parse(readFileSync(join(dir, 'soak.json'), 'utf8')) as SoakFile;
    expect(file.meta.mode).toBe('quick');
    expect(file.stores.map((s) => s.store)).toEqual(['redis', 'postgres-lease', 'postgres-tx']);

    for (const report of file.stores) {
      const failures = {
        doubles: report.doubles.details.filter((d) => d.cause === 'unexplained'),
        responses: report.responses.details,
        stuck: report.stuck.details,
        rows: report.rows?.details,
        leases: report.executions.leasesLostWithoutRestart,
        unexpected: report.requests.unexpected,
        fiveHundreds: report.requests.undocumented5xx,
      };
      const context = `${report.store}\n${output}\n${JSON.stringify(failures, null, 1)}`;

      // The soak did what it claims: real load on both frameworks, every kind of fault, kills mid-handler.
      expect(report.requests.load, context).toBeGreaterThan(300);
      expect(report.executions.total, context).toBeGreaterThan(80);
      expect(report.responses.replays, context).toBeGreaterThan(60);
      expect(report.requests.byFramework.express, context).toBeGreaterThan(30);
      expect(report.requests.byFramework.koa, context).toBeGreaterThan(30);
      expect(report.chaos.storePauses, context).toBeGreaterThanOrEqual(1);
      expect(report.chaos.storeRestarts, context).toBeGreaterThanOrEqual(1);
      expect(report.requests.documented503, context).toBeGreaterThanOrEqual(1);
      expect(report.chaos.appKills, context).toBeGreaterThanOrEqual(3);
      expect(report.chaos.appKillsWithHandlersRunning, context).toBeGreaterThanOrEqual(1);
      expect(report.verify.keys, context).toBeGreaterThan(0);

      // The invariants, the same on every store.
      expect(report.invariants.unexplainedDoubleExecutions, context).toBe(0);
      expect(report.invariants.differingResponses, context).toBe(0);
      expect(report.invariants.stuckKeys, context).toBe(0);
      expect(report.invariants.undocumented5xx, context).toBe(0);
      expect(report.invariants.unexpectedAnswers, context).toBe(0);
      expect(report.invariants.leasesLostWithoutRestart, context).toBe(0);
      expect(report.invariants.businessRowMismatches, context).toBe(0);
      expect(report.invariants.executionsWithoutKey, context).toBe(0);
      expect(report.invariants.appCrashes, context).toBe(0);
      if (report.store !== 'redis') {
        // Restarted on its data: no double from a restart, and the final check covers every key.
        expect(report.doubles.explained.dataLoss, context).toBe(0);
        expect(report.verify.keys, context).toBe(report.keys.total);
      }
      if (report.store === 'postgres-tx') {
        // Exactly once: no double of any cause, and exactly one business row per completed key.
        expect(report.doubles.total, context).toBe(0);
        expect(report.rows?.completedRecords, context).toBeGreaterThan(0);
        expect(report.rows?.keysByRowCount, context).toEqual({ '1': report.rows?.completedRecords });
      }
    }
    expect(code, output).toBe(0);
  }, 150_000);
});

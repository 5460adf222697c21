/**
 * The soak in CI: its quick mode (test/soak/run.mjs --quick: four app processes, Express and Koa,
 * on one redis-server, ~30 s of mixed load under Redis pauses and restarts and app SIGKILLs)
 * must hold every invariant. First, the analyser is fed hand-made ledgers, to show it catches
 * each violation it exists to catch: a soak that cannot fail proves nothing.
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

describe('the soak analyser', () => {
  it('flags two overlapping executions of one key as unexplained, and a Redis restart between them as data loss', () => {
    const ledger = [...execution('e1', 'k', 10, T, { ms: 2_000 }), ...execution('e2', 'k', 11, T + 500)];
    expect(run(ledger).invariants.unexplainedDoubleExecutions).toBe(1);
    const report = run(ledger, [{ type: 'redis-kill', at: T + 100, downAt: T + 101, upAt: T + 400 }]);
    expect(report.invariants.unexplainedDoubleExecutions).toBe(0);
    expect(report.doubles.explained.redisDataLoss).toBe(1);
    // A restart after both had claimed the key explains nothing.
    expect(
      run(ledger, [{ type: 'redis-kill', at: T + 600, downAt: T + 601, upAt: T + 900 }]).invariants
        .unexplainedDoubleExecutions,
    ).toBe(1);
    // Overlap is never excused by what happened to the first execution's store write.
    const failedWrite = [
      ...execution('e1', 'k', 10, T, { ms: 2_000, outcome: 'failed' }),
      ...execution('e2', 'k', 11, T + 500),
    ];
    expect(
      run(failedWrite, [{ type: 'redis-pause', from: T + 1_000, to: T + 2_500 }]).invariants
        .unexplainedDoubleExecutions,
    ).toBe(1);
  });

  it('flags a re-run after a stored response, with no fault between', () => {
    const report = run([...execution('e1', 'k', 10, T), ...execution('e2', 'k', 11, T + 10_000)]);
    expect(report.doubles.unexplained).toBe(1);
    expect(report.doubles.details[0]?.why).toMatch(/stored response/);
  });

  it('explains a re-run after the holder was SIGKILLed before storing, but not one that came before its lease could lapse', () => {
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
    const paused = run(ledger, [{ type: 'redis-pause', from: T + 20, to: T + 1_500 }]);
    expect(paused.doubles.explained.storeFailed).toBe(1);
    expect(paused.invariants.unexplainedDoubleExecutions).toBe(0);
  });

  it('flags a lease lost with no Redis restart to take it', () => {
    const ledger = [...execution('e1', 'k', 10, T, { ms: 3_000, outcome: 'fenced' })];
    expect(run(ledger).invariants.leasesLostWithoutRestart).toBe(1);
    expect(
      run(ledger, [{ type: 'redis-kill', at: T + 1_000, downAt: T + 1_001, upAt: T + 1_400 }]).invariants
        .leasesLostWithoutRestart,
    ).toBe(0);
    const lost: SoakLedgerLine = { e: 'lease', x: 'e2', pid: 11, at: T + 4_000 };
    expect(run([...execution('e2', 'k2', 11, T, { ms: 5_000 }), lost]).invariants.leasesLostWithoutRestart).toBe(1);
  });

  it('flags replays whose bytes differ, that answer another payload, or that are stale', () => {
    const ledger = [...execution('e1', 'k', 10, T), ...execution('e2', 'k', 11, T + 5_000)];
    const chaos: SoakChaosEvent[] = [{ type: 'redis-kill', at: T + 1_000, downAt: T + 1_001, upAt: T + 1_500 }];
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
});

describe('the soak, quick mode', () => {
  let out: string | undefined;
  let soak: ChildProcess | undefined;
  afterEach(() => {
    // A soak cut short by the test's timeout stops (SIGTERM: it kills its apps and Redis on exit).
    if (soak && soak.exitCode === null && soak.signalCode === null) soak.kill('SIGTERM');
    if (out !== undefined) rmSync(out, { recursive: true, force: true });
  });

  it('holds every invariant under Redis pauses and restarts and app SIGKILLs, on Express and Koa processes', async () => {
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
    const report = JSON.parse(readFileSync(join(dir, 'soak.json'), 'utf8')) as SoakFile;
    const context = `${output}\n${JSON.stringify({ doubles: report.doubles.details.filter((d) => d.cause === 'unexplained'), responses: report.responses.details, stuck: report.stuck.details, leases: report.executions.leasesLostWithoutRestart, unexpected: report.requests.unexpected, fiveHundreds: report.requests.undocumented5xx }, null, 1)}`;

    // The soak did what it claims: real load on both frameworks, every kind of fault, kills mid-handler.
    expect(report.meta.mode).toBe('quick');
    expect(report.requests.load, context).toBeGreaterThan(500);
    expect(report.executions.total, context).toBeGreaterThan(100);
    expect(report.responses.replays, context).toBeGreaterThan(100);
    expect(report.requests.byFramework.express, context).toBeGreaterThan(50);
    expect(report.requests.byFramework.koa, context).toBeGreaterThan(50);
    expect(report.chaos.redisPauses, context).toBeGreaterThanOrEqual(1);
    expect(report.chaos.redisRestarts, context).toBeGreaterThanOrEqual(1);
    expect(report.requests.documented503, context).toBeGreaterThanOrEqual(1);
    expect(report.chaos.appKills, context).toBeGreaterThanOrEqual(3);
    expect(report.chaos.appKillsWithHandlersRunning, context).toBeGreaterThanOrEqual(1);
    expect(report.verify.keys, context).toBeGreaterThan(0);

    // The invariants.
    expect(report.invariants.unexplainedDoubleExecutions, context).toBe(0);
    expect(report.invariants.differingResponses, context).toBe(0);
    expect(report.invariants.stuckKeys, context).toBe(0);
    expect(report.invariants.undocumented5xx, context).toBe(0);
    expect(report.invariants.unexpectedAnswers, context).toBe(0);
    expect(report.invariants.leasesLostWithoutRestart, context).toBe(0);
    expect(report.invariants.executionsWithoutKey, context).toBe(0);
    expect(report.invariants.appCrashes, context).toBe(0);
    expect(code, context).toBe(0);
  }, 150_000);
});

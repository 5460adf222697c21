// Types of analyze.mjs for test/soak.test.ts (the soak itself is plain JS, runnable without tsc).

/** One HTTP attempt of the harness (see http.mjs and load.mjs). */
export interface SoakRequest {
  sid: number;
  kind: 'unique' | 'retried' | 'burst' | 'mismatch' | 'missing' | 'invalid';
  v: 'a' | 'b';
  phase: 'load' | 'verify';
  attempt?: number;
  slot: number;
  fw: string;
  pid: number;
  route: string;
  key: string | null;
  t0: number;
  t1: number;
  status: number | null;
  code: string | null;
  replayed: boolean;
  exec: string | null;
  sha: string | null;
  location: string | null;
  type: string | null;
  error: string | null;
}

/** One line of an app's ledger (see app.mjs). */
export interface SoakLedgerLine {
  e: 'boot' | 'start' | 'effect' | 'unwritten' | 'respond' | 'outcome' | 'sent' | 'lease' | 'store';
  pid: number;
  at: number;
  x?: string;
  k?: string | null;
  r?: string;
  v?: string | null;
  sha?: string;
  o?: string;
  s?: number;
  op?: string;
}

/** A chaos event (see store-run.mjs). */
export type SoakChaosEvent =
  | { type: 'store-pause'; from: number; to: number }
  | { type: 'store-kill'; at: number; downAt: number; upAt: number }
  | {
      type: 'app-kill';
      slot: number;
      pid: number;
      framework: string;
      at: number;
      exitedAt: number;
      outstanding: number;
    }
  | { type: 'app-start'; slot: number; pid: number; framework: string; at: number }
  | { type: 'app-crash'; slot: number; pid: number; framework: string; at: number };

export interface SoakStats {
  count: number;
  min: number | null;
  p50: number | null;
  p99: number | null;
  max: number | null;
}

export interface SoakInvariants {
  unexplainedDoubleExecutions: number;
  differingResponses: number;
  stuckKeys: number;
  undocumented5xx: number;
  unexpectedAnswers: number;
  leasesLostWithoutRestart: number;
  executionsWithoutKey: number;
  appCrashes: number;
  businessRowMismatches: number;
  ok: boolean;
}

/** The soak's stores (see stores.mjs). */
export type SoakStore = 'redis' | 'postgres-lease' | 'postgres-tx';

export interface SoakProfile {
  label: string;
  restartLosesData: boolean;
  restartEndsHolders: boolean;
  rows: boolean;
  transactional: boolean;
}

/** What each store promises under the soak's faults. */
export const PROFILES: Record<SoakStore, SoakProfile>;

/** PostgreSQL: one business row, written by execution `exec`. */
export interface SoakEffectRow {
  skey: string;
  route: string;
  key: string;
  exec: string;
}

/** PostgreSQL: a completed record and the execution whose response it holds. */
export interface SoakRecord {
  skey: string;
  exec: string | null;
}

export interface SoakReport {
  invariants: SoakInvariants;
  requests: {
    sent: number;
    load: number;
    verify: number;
    byKind: Record<string, number>;
    byFramework: Record<string, number>;
    byAnswer: Record<string, number>;
    documented503: number;
    businessWriteFailed503: number;
    undocumented5xx: unknown[];
    connectionErrors: number;
    connectionErrorsAtAKill: number;
    connectionErrorsOther: number;
    clientTimeouts: number;
    unexpected: unknown[];
  };
  keys: { total: number; executed: number; seeingTwoResults: number };
  executions: {
    total: number;
    withBusinessRow: number | null;
    outcomes: Record<string, number>;
    interruptedByKill: number;
    longerThanLease: number;
    unfinished: number;
    withoutKey: number;
    orphanOutcomes: number;
    leaseLost: number;
    leasesLost: number;
    leasesLostAtARestart: number;
    leasesLostWithoutRestart: unknown[];
    storeErrors: Record<string, number>;
  };
  doubles: {
    total: number;
    explained: { holderKilled: number; dataLoss: number; storeFailed: number; writeUnconfirmed: number };
    unexplained: number;
    takeoverAfterKillMs: SoakStats;
    retryAfterKilledHolderLeftNothingMs: SoakStats;
    details: { key: string; cause: string; why: string }[];
  };
  rows: {
    total: number;
    completedRecords: number;
    keysByRowCount: Record<string, number>;
    mismatches: number;
    details: { key: string; problem: string }[];
  } | null;
  responses: {
    checked: number;
    replays: number;
    replayedAfterFailedStore: number;
    differing: number;
    details: { key: string; problems: string[] }[];
  };
  stuck: {
    total: number;
    locksLeft: number | null;
    inFlightRecordsLeft: number | null;
    completedRecords: number | null;
    verifyNotAnswered201: number;
    details: unknown[];
  };
  verify: { keys: number; replayed: number; executed: number };
  chaos: {
    storePauses: number;
    storePauseMs: SoakStats;
    storeRestarts: number;
    storeDownMs: SoakStats;
    appKills: number;
    appKillsWithHandlersRunning: number;
    appCrashes: number;
  };
  latency: Record<string, SoakStats>;
}

/** What run.mjs writes to soak.json: the run's settings and one report per store. */
export interface SoakFile {
  meta: {
    mode: 'quick' | 'full';
    seed: number;
    loadSeconds: number;
    wallSeconds: number;
    lockTtl: number;
    commandTimeout: number;
    workers: number;
    apps: { slot: number; framework: string }[];
  };
  ok: boolean;
  stores: (SoakReport & { store: SoakStore; version: string; brokenLedgerLines: number })[];
}

/** Turns the ledgers of a run into its figures and invariants. */
export function analyze(input: {
  requests: SoakRequest[];
  ledger: SoakLedgerLine[];
  chaos: SoakChaosEvent[];
  stuck: { locks: unknown[]; inFlight: unknown[]; completed: number } | null;
  effects?: SoakEffectRow[] | null;
  records?: SoakRecord[] | null;
  meta: { store?: SoakStore; lockTtl: number; commandTimeout: number; takeoverMarginMs?: number };
}): SoakReport;

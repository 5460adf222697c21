/**
 * The contract of idem in one place: the neutral request an adapter hands the engine, the
 * response it captures, the record a store keeps, the store interface and the options.
 * Nothing here knows Express, Koa or Redis.
 */

import type { Duration, Logger } from './config.js';
import type { FormattedProblem, ProblemDetails } from './problem.js';

export type { Duration, Logger } from './config.js';

/** Header values as Node exposes them; names are lower-case. */
export type HeaderBag = Record<string, string | string[] | number | undefined>;

/**
 * A request as the engine sees it. Adapters translate their framework's request into this.
 * @typeParam Native the framework's own request (Express `req`, Koa `ctx`), handed to user functions.
 */
export interface NeutralRequest<Native = unknown> {
  /** Upper-case HTTP method. */
  method: string;
  /** Path without the query string, e.g. `/orders/1`. */
  path: string;
  /** The raw query string without `?` (empty when none); fingerprints use it verbatim. */
  search: string;
  /** The route pattern when the framework knows it (`/orders/:id`), else undefined. */
  route?: string | undefined;
  /** Request headers with lower-case names. */
  headers: HeaderBag;
  /** Every value the client sent for a header, in order (a header may appear several times). */
  headerValues(name: string): string[];
  /** The parsed body, when a body parser ran. */
  body: unknown;
  /** False when the request carries a body that no parser has read. */
  bodyParsed: boolean;
  /** Parsed query object (for derived keys). */
  query: unknown;
  /** Route params (for derived keys). */
  params: unknown;
  /** The framework's request, given to `key`, `scope` and `fingerprint` functions. */
  native: Native;
}

/** The response a handler produced, as the adapter captured it. */
export interface CapturedResponse {
  status: number;
  /** Response headers at the time the response ended (lower-case names). */
  headers: HeaderBag;
  /** The exact body bytes, or `null` when they were not captured (over `maxBodyBytes`, or a stream). */
  body: Uint8Array | null;
}

/** A response as it is kept and replayed: exact status, allowed headers, exact bytes. */
export interface StoredResponse {
  status: number;
  /** Only the replayable headers (see {@link isReplayableHeader}); lower-case names. */
  headers: Record<string, string | string[]>;
  body: Uint8Array;
}

/** A record whose handler is still running somewhere. */
export interface InFlightRecord {
  state: 'in_flight';
  fingerprint: string | null;
  /** Epoch ms when the handler started. */
  startedAt: number;
}

/** A record whose handler finished with a storable response. */
export interface CompletedRecord {
  state: 'completed';
  fingerprint: string | null;
  /** Epoch ms when the response was stored. */
  completedAt: number;
  response: StoredResponse;
}

export type IdempotencyRecord = InFlightRecord | CompletedRecord;

/** What {@link IdempotencyStore.inspect} reports of a key. */
export interface InspectedRecord {
  record: IdempotencyRecord;
  /**
   * Milliseconds until the store drops the record by itself: a completed record's `ttl`, an
   * in-flight record's lease. Null when it has no fixed end (a transactional lease of
   * `@idem/postgres` lasts as long as its holder runs).
   */
  expiresInMs: number | null;
}

/** Proof of ownership of an in-flight key. `token` is the fencing token. */
export interface Lease {
  readonly key: string;
  readonly token: string;
  /**
   * What the store opened for this execution and the handler may use, e.g. the database
   * transaction of `@idem/postgres`'s transactional mode. The engine passes it on as
   * `Execution.context`, and adapters make it reachable from the request (`executionOf(req)`).
   * Undefined for stores that open nothing.
   */
  readonly context?: unknown;
}

/** The answer to a claim: we own the key, or somebody else's record stands. */
export type ClaimResult =
  | { acquired: true; lease: Lease }
  /** `record` is undefined when the key is locked but its record is not visible yet. */
  | { acquired: false; record: IdempotencyRecord | undefined };

/**
 * A store keeps idempotency records. Every method may throw when the backing service fails; the
 * engine turns such throws into `store_unavailable` (503) or, with `onStoreError: 'fail-open'`, into
 * an unprotected run. Contention is never an error: it is `{ acquired: false }`.
 *
 * All keys are already hashed by the engine; stores may prefix them but must not parse them.
 */
export interface IdempotencyStore {
  /** A short name for logs and events (`'memory'`, `'redis'`). */
  readonly name: string;
  /** The record for `key`, or undefined. One round trip. */
  get(key: string): Promise<IdempotencyRecord | undefined>;
  /**
   * Atomically claims `key` for one execution: succeeds only when there is neither a completed
   * record nor a live lease. The in-flight record carries `fingerprint` so that a mismatching
   * duplicate gets 422 even while the first is running.
   */
  claim(key: string, options: { fingerprint: string | null; lockTtl: number }): Promise<ClaimResult>;
  /**
   * Optional: `claim` that is as cheap as `get` for this store, so the engine skips the separate
   * read. A replay then costs one round trip (the standing record comes back) and a first
   * execution one fewer. Stores whose claim is costly (a lock on several masters) leave it out.
   */
  getOrClaim?(key: string, options: { fingerprint: string | null; lockTtl: number }): Promise<ClaimResult>;
  /** Extends the lease by `lockTtl` from now. False when the lease was lost (expired or taken). */
  extend(lease: Lease, lockTtl: number): Promise<boolean>;
  /**
   * Stores the completed record and releases the lease, only while `lease` still owns the key
   * (fencing). False, and nothing written, when it does not.
   */
  complete(
    lease: Lease,
    response: StoredResponse,
    options: { fingerprint: string | null; ttl: number },
  ): Promise<boolean>;
  /** Drops the lease and the in-flight record without storing anything, so a retry runs again. */
  release(lease: Lease): Promise<void>;
  /**
   * Resolves when `key` stops being in flight (completed, released or expired), or after `timeoutMs`.
   * Must not miss a change that happens after the call begins. Never rejects for a timeout.
   */
  waitFor(key: string, timeoutMs: number): Promise<void>;
  /** Removes whatever is kept for `key`. True when something was there. */
  delete(key: string): Promise<boolean>;
  /**
   * Optional, for operators (`@idem/admin`): the record for `key` as `get` reads it, with the time
   * the store keeps it. One round trip that changes nothing: no lease is touched, no waiter
   * registered. `get` alone cannot say when a record goes.
   */
  inspect?(key: string): Promise<InspectedRecord | undefined>;
  /**
   * Optional, for health checks: one cheap round trip to the backing service. Resolves when it
   * answered; rejects (like every other method) when it did not. Creates and changes nothing.
   */
  ping?(): Promise<void>;
  /** Frees timers and connections the store opened itself (never the user's client). */
  close?(): Promise<void>;
  /**
   * True for a store whose `complete` commits the handler's own writes together with the record
   * and whose `release` undoes them (`@idem/postgres`'s transactional mode). The engine then never
   * lets a success (status below 400) out whose effects were undone or may have been: a failed or
   * fenced `complete`, and a late finish past `maxHold`, are answered 503 `store_unavailable`
   * (retry with the same key: it replays if the commit landed); a success too large to store, or
   * not cacheable, 500 `response_not_stored`. Error answers (400 and above) go out as they are.
   */
  readonly transactional?: boolean;
}

/** Selects request data: dot paths into `{ body, query, params, headers }`, or a function of the native request. */
export type Selector<Native> = readonly string[] | ((req: Native) => unknown);

/** Options of `idempotent()`; see the README for the semantics of each. */
export interface IdempotencyOptions<Native = unknown> {
  /** Where records live. @default memoryStore() */
  store?: IdempotencyStore;
  /** Request header carrying the client's key, or `false` for none. @default 'Idempotency-Key' */
  header?: string | false;
  /** A request without a key is answered 400 instead of passing through. @default false */
  required?: boolean;
  /**
   * Derive the key from the request instead of the header: dot paths such as
   * `'body.metadata.meeting_id'`, or a function. A request whose selected values are all
   * missing has no key.
   */
  key?: Selector<Native>;
  /** Tenant or principal the key belongs to. @default method + route */
  scope?: (req: Native) => unknown;
  /** What must match for a key to be reused. @default method + path + query + canonical body */
  fingerprint?: false | Selector<Native>;
  /** Methods that are protected; others pass through. @default ['POST', 'PATCH'] */
  methods?: readonly string[];
  /** How long a completed response is kept. @default '24h' */
  ttl?: Duration;
  /** The in-flight lease, renewed every lockTtl/3 while the handler runs. @default '30s' */
  lockTtl?: Duration;
  /**
   * Longest a handler keeps its key. Past it the engine stops renewing the lease, releases the
   * key (a retry runs again) and does not store the late result. @default '1h'
   */
  maxHold?: Duration;
  /** What a duplicate gets while the first is in flight. @default 'reject' */
  concurrent?: 'reject' | 'wait';
  /** With `concurrent: 'wait'`, the longest a duplicate waits before 409. @default '60s' */
  waitTimeout?: Duration;
  /** Which statuses are stored. @default status < 500 and not 408, 409, 425, 429 */
  cacheable?: (status: number) => boolean;
  /** Largest body stored; larger responses are sent but not kept. @default 1 MiB */
  maxBodyBytes?: number;
  /** What to do when the store fails. @default 'fail-closed' */
  onStoreError?: 'fail-closed' | 'fail-open';
  /** A pino logger (or anything with its methods). @default silent */
  logger?: Logger;
  /**
   * idem's own answers (400, 409, 422, 503 and its 500s) in the API's own error format instead of
   * RFC 9457 problem+json, e.g. Stripe's `{ error: { type, code, message } }`. Receives the problem
   * document and `retryAfter`; returns `{ status?, headers?, body }`. `Retry-After` is still sent
   * unless `headers` override it. @default problem+json
   */
  formatProblem?: (problem: ProblemDetails) => FormattedProblem;
}

/** A response the adapter writes as is: a replay or one of idem's own problem answers. */
export interface OutgoingResponse {
  status: number;
  headers: Record<string, string | string[]>;
  body: Uint8Array;
  /**
   * True for a replay of a stored response: the adapter sets `Idempotent-Replayed: true` on the
   * response besides `headers`, which are the stored record's own (never mutate them).
   */
  replayed: boolean;
}

/** What became of an execution's response: the `outcome` of the `execute` event. */
export type ExecuteOutcome =
  /** Stored; duplicates replay it. */
  | 'stored'
  /** Its status is not `cacheable`: the key was released. */
  | 'not_cacheable'
  /** Over `maxBodyBytes` (or streamed): the key was released. */
  | 'too_large'
  /** The handler threw (or its client went away and it never answered): the key was released. */
  | 'failed'
  /** The lease was lost before the response was stored: nothing written. */
  | 'fenced'
  /** The handler held the key past `maxHold`: the key was released, the late result not stored. */
  | 'max_hold'
  /** The store failed to keep the response or to release the key. */
  | 'store_error';

/**
 * One run of the handler under a lease. The adapter calls exactly one of `finish` (with the
 * captured response, before flushing it) or `abort` (the handler failed). Neither rejects; later
 * calls are no-ops.
 */
export interface Execution {
  /** The stored (hashed) key. */
  readonly key: string;
  /** The lease's store context (e.g. a database transaction), undefined for most stores. */
  readonly context: unknown;
  /** True once the execution ended (finished, aborted, or given up past `maxHold`): its context is done. */
  readonly settled: boolean;
  /**
   * Stores the response when it is storable, else releases the key. Resolves when that is done,
   * with undefined (send the captured response) or, for a transactional store only, the answer to
   * send instead when the handler's effects were undone or may have been (see
   * {@link IdempotencyStore.transactional}). A replacement can only be sent while the response is
   * still held; one that already streamed out must be cut off (the connection destroyed), so that
   * the client does not take it for a success.
   */
  finish(response: CapturedResponse): Promise<OutgoingResponse | undefined>;
  /** Releases the key so that a retry runs again. */
  abort(reason?: unknown): Promise<void>;
}

/** What the adapter does with a request. */
export type Decision =
  { action: 'pass' } | { action: 'respond'; response: OutgoingResponse } | { action: 'execute'; execution: Execution };

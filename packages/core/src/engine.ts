import { IdempotencyError, StoreError } from './errors.js';
import { IdempotencyEvents } from './events.js';
import { defaultFingerprint, fingerprintOf } from './fingerprint.js';
import { replayableHeaders } from './headers.js';
import { parseKeyHeader, storageKey } from './key.js';
import { resolveOptions, type ResolvedOptions } from './options.js';
import type { CapturedResponse, ClaimResult, IdempotencyOptions, IdempotencyRecord, Lease, NeutralRequest } from './types.js';

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

/** What the adapter does with a request. */
export type Decision =
  | { action: 'pass' }
  | { action: 'respond'; response: OutgoingResponse }
  | { action: 'execute'; execution: Execution };

/**
 * One run of the handler under a lease. The adapter calls exactly one of `finish` (with the
 * captured response, before flushing it) or `abort` (the handler failed). Neither throws.
 */
export interface Execution {
  readonly key: string;
  /** Stores the response when it is storable, else releases the key. Resolves when that is done. */
  finish(response: CapturedResponse): Promise<void>;
  /** Releases the key so that a retry runs again. */
  abort(reason?: unknown): Promise<void>;
}

/** The engine behind `idempotent()` of every adapter. */
export interface Idempotency<Native> {
  readonly options: ResolvedOptions;
  readonly events: IdempotencyEvents;
  /**
   * Decides what happens to a request: at once when no store call is needed (a method or request
   * that is not covered, a missing or malformed key), else through a promise. Store failures
   * become problem responses; only a throwing user function (`key`, `scope`, `fingerprint`) throws.
   */
  handle(req: NeutralRequest<Native>): Decision | Promise<Decision>;
}

const PASS: Decision = { action: 'pass' };
const RETRY_AFTER_SECONDS = 1;

/**
 * Creates the engine. Options are validated here, once; a bad option throws
 * {@link IdempotencyConfigError} naming it.
 */
export function createIdempotency<Native = unknown>(options: IdempotencyOptions<Native> = {}): Idempotency<Native> {
  const o = resolveOptions(options);
  const { store, logger } = o;
  const events = new IdempotencyEvents();
  let warnedUnparsed = false;
  // pino's check where the logger has it: a debug line per request is not built for nobody.
  const debugging = typeof logger.isLevelEnabled === 'function' ? () => (logger.isLevelEnabled as (level: string) => boolean)('debug') : () => true;

  function problem(error: IdempotencyError): Decision {
    return { action: 'respond', response: problemResponse(error) };
  }

  function storeFailure(operation: string, cause: unknown, startedAt: number): Decision {
    const error = cause instanceof StoreError ? cause : new StoreError(operation, cause);
    const failOpen = o.onStoreError === 'fail-open';
    events.emit('storeError', { operation, error, failOpen, durationMs: Date.now() - startedAt });
    logger.error({ err: error, operation, store: store.name, failOpen }, failOpen ? 'idempotency store failed; running unprotected (fail-open)' : 'idempotency store failed; answering 503');
    if (failOpen) return PASS;
    return problem(new IdempotencyError('store_unavailable', 'The idempotency store is unavailable; retry shortly.', { retryAfter: RETRY_AFTER_SECONDS, cause: error }));
  }

  function unparsedBody(): Decision {
    // A developer error, not a client one: shout once in the logs and answer every such request 500.
    const detail = 'The request body was not parsed before the idempotency middleware ran, so it cannot be fingerprinted. Mount a body parser (e.g. express.json()) before idempotent().';
    if (!warnedUnparsed) {
      warnedUnparsed = true;
      logger.error({ code: 'body_not_parsed' }, detail);
    }
    return problem(new IdempotencyError('body_not_parsed', detail));
  }

  function readKey(req: NeutralRequest<Native>): unknown {
    if (o.key !== undefined) {
      const selected = o.key(req);
      // A derived key whose every part is missing is no key at all.
      if (selected === undefined || selected === null) return undefined;
      if (Array.isArray(selected) && selected.every((v) => v === undefined || v === null)) return undefined;
      return selected;
    }
    return o.header && parseKeyHeader(req.headerValues(o.header.lower), o.header.name);
  }

  function handle(req: NeutralRequest<Native>): Decision | Promise<Decision> {
    if (!o.methods.has(req.method)) return PASS;
    const startedAt = Date.now();
    if (o.keyReadsBody && !req.bodyParsed) return unparsedBody();

    let rawKey: unknown;
    try {
      rawKey = readKey(req);
    } catch (error) {
      if (error instanceof IdempotencyError) return problem(error);
      throw error;
    }
    if (rawKey === undefined) {
      if (!o.required) return PASS;
      const how = o.header ? `an ${o.header.name} header` : 'the fields the key is derived from';
      return problem(new IdempotencyError('key_missing', `This request requires ${how}.`));
    }
    if (o.fingerprintReadsBody && !req.bodyParsed) return unparsedBody();

    const scope = o.scope ? o.scope(req) : `${req.method} ${req.route ?? req.path}`;
    const key = storageKey(scope, rawKey);
    const fingerprint = o.fingerprint === null ? null : o.fingerprint ? fingerprintOf(o.fingerprint(req)) : defaultFingerprint(req);
    return decide(key, fingerprint, startedAt);
  }

  /** 422 before replay before 409 before claim (DESIGN.md §4). */
  function judge(key: string, record: IdempotencyRecord, fingerprint: string | null, startedAt: number): Decision | 'in_flight' {
    if (fingerprint !== null && record.fingerprint !== null && record.fingerprint !== fingerprint) {
      events.emit('mismatch', { key });
      logger.warn({ key }, 'idempotency key reused with a different request');
      return problem(new IdempotencyError('key_reused', 'This idempotency key was already used with a different request.'));
    }
    if (record.state === 'completed') {
      const { response } = record;
      if (events.hasListeners('replay')) {
        const now = Date.now();
        events.emit('replay', { key, status: response.status, ageMs: now - record.completedAt, durationMs: now - startedAt });
      }
      if (debugging()) logger.debug({ key, status: response.status, ageMs: Date.now() - record.completedAt }, 'idempotent replay');
      return { action: 'respond', response: { status: response.status, headers: response.headers, body: response.body, replayed: true } };
    }
    return 'in_flight';
  }

  async function decide(key: string, fingerprint: string | null, startedAt: number): Promise<Decision> {
    const deadline = startedAt + o.waitTimeout;
    const claimOptions = { fingerprint, lockTtl: o.lockTtl };
    for (;;) {
      // The standing record, or a lease on the key: one round trip where the store can
      // (getOrClaim), else a read, and a claim only when nothing stands.
      let operation = 'claim';
      let claim: ClaimResult;
      try {
        if (store.getOrClaim !== undefined) {
          claim = await store.getOrClaim(key, claimOptions);
        } else {
          operation = 'get';
          const record = await store.get(key);
          operation = 'claim';
          claim = record !== undefined ? { acquired: false, record } : await store.claim(key, claimOptions);
        }
      } catch (error) {
        return storeFailure(operation, error, startedAt);
      }
      if (claim.acquired) return { action: 'execute', execution: startExecution(claim.lease, fingerprint) };
      const { record } = claim;
      const verdict = record === undefined ? 'in_flight' : judge(key, record, fingerprint, startedAt);
      if (verdict !== 'in_flight') return verdict;

      const remaining = deadline - Date.now();
      if (o.concurrent === 'reject' || remaining <= 0) {
        const waitedMs = Date.now() - startedAt;
        events.emit('conflict', { key, waitedMs });
        logger.info({ key, waitedMs }, 'idempotency key in flight; answering 409');
        return problem(new IdempotencyError('in_flight', o.concurrent === 'reject'
          ? 'A request with this idempotency key is still being processed; retry shortly.'
          : `A request with this idempotency key was still being processed after ${o.waitTimeout} ms; retry shortly.`, { retryAfter: RETRY_AFTER_SECONDS }));
      }
      try {
        await store.waitFor(key, remaining);
      } catch (error) {
        return storeFailure('waitFor', error, startedAt);
      }
    }
  }

  function startExecution(lease: Lease, fingerprint: string | null): Execution {
    const startedAt = Date.now();
    let settled = false;
    let lost = false;
    const renewal = setInterval(() => {
      store.extend(lease, o.lockTtl).then(
        (kept) => {
          if (kept || settled || lost) return;
          lost = true;
          // Nothing left to keep: renewing a lost lease would only spend store round trips.
          clearInterval(renewal);
          events.emit('leaseLost', { key: lease.key, heldMs: Date.now() - startedAt });
          logger.warn({ key: lease.key, heldMs: Date.now() - startedAt }, 'idempotency lease lost while the handler ran; its result will not be stored');
        },
        (error: unknown) => logger.warn({ err: error, key: lease.key }, 'idempotency lease renewal failed; will retry'),
      );
    }, Math.max(1, Math.floor(o.lockTtl / 3)));
    renewal.unref();

    function settle(): boolean {
      if (settled) return false;
      settled = true;
      clearInterval(renewal);
      return true;
    }

    function done(status: number | undefined, outcome: 'stored' | 'not_cacheable' | 'too_large' | 'failed' | 'fenced' | 'store_error'): void {
      const durationMs = Date.now() - startedAt;
      if (events.hasListeners('execute')) events.emit('execute', { key: lease.key, status, outcome, durationMs });
      if (debugging()) logger.debug({ key: lease.key, status, outcome, durationMs }, 'idempotent execution');
    }

    async function release(status: number | undefined, outcome: 'not_cacheable' | 'too_large' | 'failed'): Promise<void> {
      try {
        await store.release(lease);
        done(status, outcome);
      } catch (error) {
        // The lease will lapse on its own after lockTtl; the handler's outcome stands.
        const failure = new StoreError('release', error);
        events.emit('storeError', { operation: 'release', error: failure, failOpen: false, durationMs: Date.now() - startedAt });
        logger.error({ err: failure, key: lease.key }, 'idempotency release failed; the key unlocks when its lease expires');
        done(status, 'store_error');
      }
    }

    return {
      key: lease.key,
      async finish(captured) {
        if (!settle()) return;
        const { status, body } = captured;
        if (!o.cacheable(status)) return release(status, 'not_cacheable');
        if (body === null || body.byteLength > o.maxBodyBytes) return release(status, 'too_large');
        const response = { status, headers: replayableHeaders(captured.headers), body };
        try {
          const stored = await store.complete(lease, response, { fingerprint, ttl: o.ttl });
          if (stored) return done(status, 'stored');
          logger.warn({ key: lease.key, status }, 'idempotency lease was lost before the response was stored; not storing it (fenced)');
          if (!lost) events.emit('leaseLost', { key: lease.key, heldMs: Date.now() - startedAt });
          done(status, 'fenced');
        } catch (error) {
          // A timed-out write may still land when the store answers again: then the response is
          // kept and replayed. Only when it did not does a retry run the handler again.
          const failure = new StoreError('complete', error);
          events.emit('storeError', { operation: 'complete', error: failure, failOpen: false, durationMs: Date.now() - startedAt });
          logger.error({ err: failure, key: lease.key }, 'idempotency store did not confirm keeping the response; if it was not kept, a retry runs the handler again');
          await store.release(lease).catch(() => {}); // a no-op if the write landed: the lease is gone then
          done(status, 'store_error');
        }
      },
      async abort(reason) {
        if (!settle()) return;
        logger.debug({ key: lease.key, err: reason }, 'idempotent handler failed; releasing the key');
        await release(undefined, 'failed');
      },
    };
  }

  return { options: o, events, handle };
}

/** The RFC 9457 response for one of idem's own answers. */
export function problemResponse(error: IdempotencyError): OutgoingResponse {
  const headers: Record<string, string> = { 'content-type': 'application/problem+json' };
  if (error.retryAfter !== undefined) headers['retry-after'] = String(error.retryAfter);
  return { status: error.status, headers, body: Buffer.from(JSON.stringify(error.toProblem())), replayed: false };
}

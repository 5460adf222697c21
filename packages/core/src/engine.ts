/**
 * The engine behind `idempotent()` of every adapter: from a neutral request to a decision (pass
 * it on, answer it, or execute it under a lease). The execution itself lives in execution.ts.
 */
import { IdempotencyError } from './errors.js';
import { IdempotencyEvents, type IdempotencyEventMap, type StoreOperation } from './events.js';
import { startExecution } from './execution.js';
import { defaultFingerprint, fingerprintOf } from './fingerprint.js';
import { parseKeyHeader, storageKey } from './key.js';
import { resolveOptions, type ResolvedOptions } from './options.js';
import { RETRY_AFTER_SECONDS } from './problem.js';
import { recordProblem } from './record.js';
import { createReporter } from './report.js';
import type { ClaimResult, Decision, IdempotencyOptions, IdempotencyRecord, NeutralRequest } from './types.js';

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

/**
 * Creates the engine. Options are validated here, once; a bad option throws
 * {@link IdempotencyConfigError} naming it.
 */
export function createIdempotency<Native = unknown>(
  options: IdempotencyOptions<Native> = {},
  shared: { events?: IdempotencyEvents } = {},
): Idempotency<Native> {
  const o = resolveOptions(options);
  const { store, logger } = o;
  // An adapter with several engines behind one middleware (Fastify's per-route options) gives them
  // one events object: listeners see every engine's events, and none is built when nobody listens.
  const events = shared.events ?? new IdempotencyEvents();
  const report = createReporter(events, logger, store.name);
  let warnedUnparsed = false;
  const problem = (error: IdempotencyError): Decision => ({ action: 'respond', response: o.problem(error) });

  function storeFailure(
    operation: string,
    cause: unknown,
    startedAt: number,
    key: string,
    route: string | undefined,
  ): Decision {
    const failOpen = o.onStoreError === 'fail-open';
    const message = failOpen
      ? 'idempotency store failed; running unprotected (fail-open)'
      : 'idempotency store failed; answering 503';
    const error = report.storeError(operation, cause, { startedAt, failOpen, key, route, message });
    if (failOpen) return PASS;
    return problem(
      new IdempotencyError('store_unavailable', 'The idempotency store is unavailable; retry shortly.', {
        retryAfter: RETRY_AFTER_SECONDS,
        cause: error,
      }),
    );
  }

  function unparsedBody(route: string | undefined): Decision {
    // A developer error, not a client one: shout once in the logs and answer every such request 500.
    const detail =
      'The request body was not parsed before the idempotency middleware ran, so it cannot be fingerprinted. Mount a body parser (e.g. express.json()) before idempotent().';
    if (!warnedUnparsed) {
      warnedUnparsed = true;
      logger.error({ code: 'body_not_parsed' }, detail);
    }
    return rejected(route, new IdempotencyError('body_not_parsed', detail));
  }

  /** A problem answered before any store call, told to the `rejected` listeners. */
  function rejected(route: string | undefined, error: IdempotencyError): Decision {
    const code = error.code as IdempotencyEventMap['rejected']['code'];
    events.emit('rejected', { route, code });
    return problem(error);
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
    if (o.keyReadsBody && !req.bodyParsed) return unparsedBody(req.route);

    let rawKey: unknown;
    try {
      rawKey = readKey(req);
    } catch (error) {
      if (error instanceof IdempotencyError) return rejected(req.route, error);
      throw error;
    }
    if (rawKey === undefined) {
      if (!o.required) return PASS;
      const how = o.header ? `an ${o.header.name} header` : 'the fields the key is derived from';
      return rejected(req.route, new IdempotencyError('key_missing', `This request requires ${how}.`));
    }
    if (o.fingerprintReadsBody && !req.bodyParsed) return unparsedBody(req.route);

    const scope = o.scope ? o.scope(req) : `${req.method} ${req.route ?? req.path}`;
    const key = storageKey(scope, rawKey);
    const fingerprint =
      o.fingerprint === null ? null : o.fingerprint ? fingerprintOf(o.fingerprint(req)) : defaultFingerprint(req);
    return decide(req, key, fingerprint, startedAt);
  }

  /**
   * What a standing record means for this request, in the order of docs/design.md ("Decision
   * order"): 422 before replay before 409. Undefined when it is in flight (409 or wait).
   */
  function judge(
    req: NeutralRequest<Native>,
    key: string,
    record: IdempotencyRecord,
    fingerprint: string | null,
    startedAt: number,
  ): Decision | undefined {
    const invalid = recordProblem(record);
    if (invalid !== undefined) {
      events.emit('invalidRecord', { key, route: req.route, reason: invalid });
      logger.error(
        { key, store: store.name, reason: invalid },
        'idempotency record is unreadable; answering 500, not replaying it',
      );
      return problem(
        new IdempotencyError('record_invalid', 'The stored result of this idempotency key cannot be replayed.'),
      );
    }
    if (fingerprint !== null && record.fingerprint !== null && record.fingerprint !== fingerprint) {
      events.emit('mismatch', { key, route: req.route });
      logger.warn({ key }, 'idempotency key reused with a different request');
      return problem(
        new IdempotencyError('key_reused', 'This idempotency key was already used with a different request.'),
      );
    }
    if (record.state !== 'completed') return undefined;
    const { response } = record;
    if (events.hasListeners('replay')) {
      const now = Date.now();
      events.emit('replay', {
        key,
        route: req.route,
        status: response.status,
        ageMs: now - record.completedAt,
        durationMs: now - startedAt,
      });
    }
    if (report.debugging())
      logger.debug({ key, status: response.status, ageMs: Date.now() - record.completedAt }, 'idempotent replay');
    return {
      action: 'respond',
      response: { status: response.status, headers: response.headers, body: response.body, replayed: true },
    };
  }

  async function decide(
    req: NeutralRequest<Native>,
    key: string,
    fingerprint: string | null,
    startedAt: number,
  ): Promise<Decision> {
    const deadline = startedAt + o.waitTimeout;
    const claimOptions = { fingerprint, lockTtl: o.lockTtl };
    let waited = false;
    for (;;) {
      // The standing record, or a lease on the key: one round trip where the store can
      // (getOrClaim), else a read, and a claim only when nothing stands.
      let operation: StoreOperation = 'getOrClaim';
      let claim: ClaimResult;
      let calledAt = report.callStart();
      try {
        if (store.getOrClaim !== undefined) {
          claim = await store.getOrClaim(key, claimOptions);
        } else {
          operation = 'get';
          const record = await store.get(key);
          if (record !== undefined) {
            claim = { acquired: false, record };
          } else {
            report.callEnd(operation, calledAt, true, key, req);
            operation = 'claim';
            calledAt = report.callStart();
            claim = await store.claim(key, claimOptions);
          }
        }
        report.callEnd(operation, calledAt, true, key, req);
      } catch (error) {
        report.callEnd(operation, calledAt, false, key, req);
        return storeFailure(operation === 'getOrClaim' ? 'claim' : operation, error, startedAt, key, req.route);
      }
      if (claim.acquired) {
        return { action: 'execute', execution: startExecution(o, report, claim.lease, fingerprint, req) };
      }
      const { record } = claim;
      const verdict = record === undefined ? undefined : judge(req, key, record, fingerprint, startedAt);
      if (verdict !== undefined) return verdict;

      const remaining = deadline - Date.now();
      if (o.concurrent === 'reject' || remaining <= 0) {
        const waitedMs = Date.now() - startedAt;
        events.emit('conflict', { key, route: req.route, waitedMs });
        logger.info({ key, waitedMs }, 'idempotency key in flight; answering 409');
        return problem(
          new IdempotencyError(
            'in_flight',
            o.concurrent === 'reject'
              ? 'A request with this idempotency key is still being processed; retry shortly.'
              : `A request with this idempotency key was still being processed after ${o.waitTimeout} ms; retry shortly.`,
            { retryAfter: RETRY_AFTER_SECONDS },
          ),
        );
      }
      if (!waited) {
        waited = true;
        events.emit('wait', { key, route: req.route });
      }
      const waitStart = report.callStart();
      try {
        await store.waitFor(key, remaining);
        report.callEnd('waitFor', waitStart, true, key, req);
      } catch (error) {
        report.callEnd('waitFor', waitStart, false, key, req);
        return storeFailure('waitFor', error, startedAt, key, req.route);
      }
    }
  }

  return { options: o, events, handle };
}

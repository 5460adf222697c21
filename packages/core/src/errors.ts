import { brand } from './brand.js';
import { ConfigError } from './config.js';

/**
 * Every answer the middleware gives on its own behalf, with a stable code, the HTTP status it
 * maps to and the RFC 9457 problem type. Messages of these errors are written for clients and
 * are safe to expose; anything else (store failures, handler errors) is never echoed.
 */

/** Stable codes of the problems idem answers with. */
export type ProblemCode =
  | 'key_missing'
  | 'key_invalid'
  | 'key_reused'
  | 'in_flight'
  | 'store_unavailable'
  | 'body_not_parsed'
  | 'record_invalid'
  | 'response_not_stored';

const TITLES: Record<ProblemCode, { status: number; title: string }> = {
  key_missing: { status: 400, title: 'Idempotency key missing' },
  key_invalid: { status: 400, title: 'Idempotency key invalid' },
  key_reused: { status: 422, title: 'Idempotency key reused with a different request' },
  in_flight: { status: 409, title: 'Request with this idempotency key is in progress' },
  store_unavailable: { status: 503, title: 'Idempotency store unavailable' },
  body_not_parsed: { status: 500, title: 'Request body was not parsed before idempotency' },
  record_invalid: { status: 500, title: 'Stored idempotency record is unreadable' },
  response_not_stored: { status: 500, title: 'Response could not be stored with its effects' },
};

/** The problem `type` URI for a code: stable, documented in the README. */
export function problemType(code: ProblemCode): string {
  return `urn:idem:problem:${code}`;
}

/** An answer idem gives itself. `retryAfter` is in seconds. */
export class IdempotencyError extends Error {
  readonly code: ProblemCode;
  readonly status: number;
  readonly retryAfter: number | undefined;

  constructor(code: ProblemCode, detail: string, options: { retryAfter?: number; cause?: unknown } = {}) {
    super(detail, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'IdempotencyError';
    this.code = code;
    this.status = TITLES[code].status;
    this.retryAfter = options.retryAfter;
  }

  /** The RFC 9457 body. */
  toProblem(): ProblemBody {
    return {
      type: problemType(this.code),
      title: TITLES[this.code].title,
      status: this.status,
      detail: this.message,
      code: this.code,
    };
  }
}

/** An RFC 9457 problem details object with idem's `code` extension. */
export interface ProblemBody {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: ProblemCode;
}

/** Thrown at creation for a bad option of `idempotent()` or a store; the message names the option. */
export class IdempotencyConfigError extends ConfigError {
  constructor(option: string, message: string) {
    super(option, message);
    this.name = 'IdempotencyConfigError';
  }
}
brand(IdempotencyConfigError, 'IdempotencyConfigError');

/**
 * A failure of the store, wrapped once at the boundary: `operation` says which call failed and
 * `cause` keeps the store's own error. Store errors that already are a `StoreError` (such as
 * `RedisTimeoutError`) are passed on as they are, never wrapped again, so `instanceof` on the
 * store's own class keeps working in `storeError` events and logs.
 */
export class StoreError extends Error {
  readonly operation: string;
  constructor(operation: string, cause: unknown, message?: string) {
    super(message ?? `idem: store ${operation} failed: ${cause instanceof Error ? cause.message : String(cause)}`, {
      cause,
    });
    this.name = 'StoreError';
    this.operation = operation;
  }

  /** `error` itself when it already is a `StoreError`, else a `StoreError` of `operation` around it. */
  static from(operation: string, error: unknown): StoreError {
    return error instanceof StoreError ? error : new StoreError(operation, error);
  }
}
brand(StoreError, 'StoreError');
brand(IdempotencyError, 'IdempotencyError');

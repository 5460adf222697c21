/**
 * Every answer of the admin API that is not a success: an RFC 9457 problem document shaped like
 * core's (`type`, `title`, `status`, `detail`, and a stable `code`), sent as
 * `application/problem+json`. Details are written for the operator and never carry what a store,
 * a cache or `authorize` threw: those go to the logger.
 */
import { ConfigError } from '@idem/core';
import { brand } from '@idem/core/adapter';

/** Stable codes of the admin API's problems. */
export type AdminProblemCode =
  | 'input_invalid'
  | 'body_too_large'
  | 'media_type_unsupported'
  | 'forbidden'
  | 'authorize_failed'
  | 'not_found'
  | 'method_not_allowed'
  | 'record_not_found'
  | 'cache_not_configured'
  | 'store_unavailable'
  | 'cache_unavailable'
  | 'internal_error';

const TITLES: Record<AdminProblemCode, { status: number; title: string }> = {
  input_invalid: { status: 400, title: 'Invalid admin request' },
  body_too_large: { status: 413, title: 'Admin request body too large' },
  media_type_unsupported: { status: 415, title: 'Admin request body is not JSON' },
  forbidden: { status: 403, title: 'Not allowed' },
  authorize_failed: { status: 500, title: 'Authorization check failed' },
  not_found: { status: 404, title: 'No such admin endpoint' },
  method_not_allowed: { status: 405, title: 'Method not allowed on this admin endpoint' },
  record_not_found: { status: 404, title: 'No idempotency record for this key and scope' },
  cache_not_configured: { status: 404, title: 'No cache is attached to this admin API' },
  store_unavailable: { status: 503, title: 'Idempotency store unavailable' },
  cache_unavailable: { status: 503, title: 'Cache unavailable' },
  internal_error: { status: 500, title: 'Admin API error' },
};

/** The problem `type` URI of an admin code. */
export function adminProblemType(code: AdminProblemCode): string {
  return `urn:idem:admin:problem:${code}`;
}

/** An RFC 9457 problem document of the admin API, with its `code` and any extension members. */
export interface AdminProblemBody {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: AdminProblemCode;
  [extension: string]: unknown;
}

/** An answer the admin API gives instead of a success. Its message is safe to show the caller. */
export class AdminError extends Error {
  readonly code: AdminProblemCode;
  readonly status: number;
  /** Extra response headers (`Allow` for a 405, `Retry-After` for a 503). */
  readonly headers: Readonly<Record<string, string>>;
  /** Extension members of the problem document (e.g. the health report of a failed check). */
  readonly extensions: Readonly<Record<string, unknown>>;

  constructor(
    code: AdminProblemCode,
    detail: string,
    options: { headers?: Record<string, string>; extensions?: Record<string, unknown>; cause?: unknown } = {},
  ) {
    super(detail, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'AdminError';
    this.code = code;
    this.status = TITLES[code].status;
    this.headers = options.headers ?? {};
    this.extensions = options.extensions ?? {};
  }

  /** The RFC 9457 body. */
  toProblem(): AdminProblemBody {
    return {
      ...this.extensions,
      type: adminProblemType(this.code),
      title: TITLES[this.code].title,
      status: this.status,
      detail: this.message,
      code: this.code,
    };
  }
}
brand(AdminError, 'AdminError');

/** Thrown at creation for a bad option of the admin API (a missing `authorize` among them); a `TypeError`. */
export class AdminConfigError extends ConfigError {
  /** Always `'admin_config'`. */
  declare readonly code: 'admin_config';

  constructor(option: string, message: string) {
    super(option, message, { code: 'admin_config', scope: 'idem admin' });
    this.name = 'AdminConfigError';
  }
}
brand(AdminConfigError, 'AdminConfigError');

/** A bad input: 400 with `detail`. */
export const invalid = (detail: string): AdminError => new AdminError('input_invalid', detail);

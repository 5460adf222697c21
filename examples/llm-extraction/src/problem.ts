/**
 * The service's own errors as RFC 9457 problem details (`application/problem+json`), each with a
 * stable `type` and `code`. idem's middleware answers its own problems (409, 422, 503) the same way.
 */
import type { ErrorRequestHandler, Response } from 'express';

/** Codes of the problems this service answers with. */
export type ServiceProblemCode =
  | 'invalid_request'
  | 'malformed_json'
  | 'unsupported_media_type'
  | 'payload_too_large'
  | 'not_found'
  | 'llm_failed'
  | 'customer_directory_unavailable'
  | 'internal_error';

/** One invalid field, as in RFC 9457 §3's example: a JSON pointer into the request body and what is wrong. */
export interface FieldError {
  pointer: string;
  detail: string;
}

/** An answer with a problem body. `detail` is written for clients and always safe to expose. */
export class ProblemError extends Error {
  readonly status: number;
  readonly code: ServiceProblemCode;
  readonly title: string;
  readonly extensions: Record<string, unknown>;

  constructor(
    status: number,
    code: ServiceProblemCode,
    title: string,
    detail: string,
    options: { cause?: unknown; extensions?: Record<string, unknown> } = {},
  ) {
    super(detail, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ProblemError';
    this.status = status;
    this.code = code;
    this.title = title;
    this.extensions = options.extensions ?? {};
  }
}

/** Writes `error` as a problem+json response; `instance` is the request ID, so a report can be matched to the logs. */
export function sendProblem(res: Response, error: ProblemError, requestId: string): void {
  res
    .status(error.status)
    .type('application/problem+json')
    .json({
      type: `urn:llm-extraction:problem:${error.code}`,
      title: error.title,
      status: error.status,
      detail: error.message,
      code: error.code,
      instance: `urn:request:${requestId}`,
      ...error.extensions,
    });
}

/** Body-parser errors carry these; see body-parser's README. */
interface HttpError {
  status?: number;
  type?: string;
}

/**
 * The last middleware: known errors become their problem, body-parser failures a 4xx problem,
 * anything else a 500 whose details stay in the log. A {@link ProblemError} is an expected answer,
 * logged where it is thrown (with its cause) and in the request's completion line, not here again.
 */
export function problemHandler(): ErrorRequestHandler {
  return function handleProblem(error: unknown, req, res, next): void {
    if (res.headersSent) return next(error);
    let problem: ProblemError;
    if (error instanceof ProblemError) {
      problem = error;
    } else {
      const { status, type } = (error ?? {}) as HttpError;
      if (type === 'entity.parse.failed') {
        problem = new ProblemError(400, 'malformed_json', 'Malformed JSON', 'The request body is not valid JSON.');
      } else if (type === 'entity.too.large') {
        problem = new ProblemError(
          413,
          'payload_too_large',
          'Payload too large',
          'The request body is larger than the service accepts (2 MB).',
        );
      } else if (typeof status === 'number' && status >= 400 && status < 500) {
        problem = new ProblemError(status, 'invalid_request', 'Invalid request', 'The request could not be read.');
      } else {
        req.log.error({ err: error }, 'unhandled error');
        problem = new ProblemError(
          500,
          'internal_error',
          'Internal error',
          'Something went wrong; the request ID is in the logs.',
        );
      }
    }
    // For the request's completion log line (metrics.ts): why it failed, not just that it did.
    res.locals.problem = `${problem.code}: ${problem.message}`;
    sendProblem(res, problem, req.id);
  };
}

/**
 * `POST /extract` and `POST /analyze`: validate, then idempotency keyed on the meeting, then the
 * costly model call. The idempotency middleware sits between validation and the handler, so a
 * bad payload is answered 400 before any key is claimed, and every duplicate of a valid one —
 * sequential or concurrent, on this instance or another sharing the store — gets the first call's
 * response without a second model call.
 */
import { storageKey, type IdempotencyStore } from '@idem/core';
import { idempotent, type IdempotentMiddleware } from '@idem/express';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { Config } from './config.js';
import type { CustomerService } from './customers.js';
import { estimateCostUsd, LlmError, type LlmProvider, type Task } from './llm/index.js';
import type { Logger } from './logger.js';
import { COST_HEADER, type Metrics } from './metrics.js';
import { keyParts, parseMeetingPayload, type MeetingPayload } from './payload.js';
import { ProblemError } from './problem.js';
import { contextualLogger, currentContext } from './request-context.js';

declare module 'express-serve-static-core' {
  interface Request {
    /** The validated, normalised body of an extraction request. */
    meeting?: MeetingPayload;
  }
}

/** What the extraction routes need. */
export interface ExtractionDeps {
  config: Config;
  store: IdempotencyStore;
  llm: LlmProvider;
  customers: CustomerService;
  metrics: Metrics;
  logger: Logger;
}

/** The key's scope per task: the same meeting extracted and analysed is two jobs, two keys. */
function scopeOf(task: Task): string {
  return `POST /${task}`;
}

/** The idempotency key a request gets, as idem stores it and logs it: hex SHA-256 of scope and the normalised fields. */
export function idempotencyKeyOf(task: Task, payload: MeetingPayload): string {
  return storageKey(scopeOf(task), keyParts(payload));
}

/** 415 unless the body is JSON; then validates it into `req.meeting` (400 problem when invalid). */
function validateMeeting(req: Request, _res: Response, next: NextFunction): void {
  if (!req.is('application/json')) {
    throw new ProblemError(
      415,
      'unsupported_media_type',
      'Unsupported media type',
      'Send the meeting as JSON, with Content-Type: application/json.',
    );
  }
  req.meeting = parseMeetingPayload(req.body);
  next();
}

/** 850 ms, 12.3 s, 4 min, 2.5 h: a record's age at a glance. */
function age(ms: number): string {
  if (ms < 1_000) return `${ms} ms`;
  if (ms < 60_000) return `${(ms / 1_000).toFixed(1)} s`;
  if (ms < 3_600_000) return `${Math.round(ms / 60_000)} min`;
  return `${(ms / 3_600_000).toFixed(1)} h`;
}

/** The idempotency middleware of one task, its events logged. */
function idempotency(task: Task, deps: ExtractionDeps): IdempotentMiddleware {
  const { config, store, logger } = deps;
  // A duplicate waits as long as the first call may take: the model's timeout plus the customer lookup's.
  const firstCallMs = (config.llm.provider === 'openai' ? config.llm.timeoutMs : config.llm.latencyMs) + 15_000;

  const middleware = idempotent<Request>({
    store,
    // The key is derived from the meeting, never taken from a header.
    header: false,
    key: (req) => (req.meeting === undefined ? undefined : keyParts(req.meeting)),
    scope: () => scopeOf(task),
    // What must match for a replay: the normalised request. The same meeting sent with another
    // transcript is a client error (422), not a reason to return the old extraction silently.
    fingerprint: (req) => req.meeting ?? null,
    concurrent: 'wait',
    waitTimeout: Math.max(60_000, firstCallMs),
    ttl: config.resultTtlMs,
    logger: contextualLogger(logger),
  });

  const log = (): Logger => currentContext()?.log ?? logger;
  middleware.events
    .on('replay', ({ key, status, ageMs, durationMs }) => {
      // A record younger than this request was completed while it waited: a concurrent duplicate.
      const what =
        ageMs < durationMs
          ? `waited ${durationMs} ms for the call already running, then replayed its response`
          : `replayed the stored response (${age(ageMs)} old)`;
      log().info({ key, status, ageMs, durationMs }, `${what}; no model call`);
    })
    .on('execute', ({ key, status, outcome, durationMs }) => {
      const what =
        outcome === 'stored' ? 'response stored for replay' : `response not stored (${outcome}); a retry runs again`;
      log().info({ key, status, outcome, durationMs }, `handler ran: ${what}`);
    });
  // Conflicts, mismatches and store errors the engine logs itself, through the same request-scoped
  // logger; @idem/prometheus counts every outcome (app.ts).
  return middleware;
}

/** The handler: look the customer up (cached), call the model once, answer with the result. */
function runTask(task: Task, deps: ExtractionDeps): RequestHandler {
  const { config, llm, customers, metrics } = deps;
  return async function extractionHandler(req: Request, res: Response): Promise<void> {
    res.locals.handlerRan = true;
    const payload = req.meeting as MeetingPayload;
    const { customer, stale } = await customers.get(payload.metadata.customer_id);

    const labels = { provider: llm.name, task };
    const started = performance.now();
    req.log.info({ provider: llm.name, model: llm.model, task }, 'calling the model');
    let result;
    try {
      result = await llm.complete({ task, transcript: payload.transcript, meeting: payload.metadata, customer });
    } catch (error) {
      const code = error instanceof LlmError ? error.code : 'llm_error';
      metrics.llmCalls.inc({ ...labels, model: llm.model, outcome: code });
      metrics.llmDuration.observe(labels, (performance.now() - started) / 1000);
      if (error instanceof LlmError)
        req.log.error(
          { err: error, code, upstreamStatus: error.upstreamStatus, upstream: error.upstream },
          `model call failed: ${error.message}`,
        );
      // 502: idempotency stores no 5xx, so the client's retry calls the model again.
      throw new ProblemError(
        502,
        'llm_failed',
        'Model call failed',
        error instanceof LlmError ? error.message : 'The model call failed; retry shortly.',
        { cause: error, extensions: { llm_error: code } },
      );
    }
    const modelMs = Math.round(performance.now() - started);
    const cost = estimateCostUsd(result.usage, config.pricing);
    metrics.llmCalls.inc({ ...labels, model: result.model, outcome: 'ok' });
    metrics.llmDuration.observe(labels, modelMs / 1000);
    metrics.llmTokens.inc({ ...labels, type: 'prompt' }, result.usage.promptTokens);
    metrics.llmTokens.inc({ ...labels, type: 'completion' }, result.usage.completionTokens);
    metrics.llmCost.inc(labels, cost);
    req.log.info(
      {
        model: result.model,
        modelMs,
        promptTokens: result.usage.promptTokens,
        completionTokens: result.usage.completionTokens,
        costUsd: cost,
      },
      'model call done',
    );

    res.setHeader(COST_HEADER, String(cost));
    res.json({
      idempotency_key: idempotencyKeyOf(task, payload),
      task,
      meeting: payload.metadata,
      customer: stale ? { ...customer, stale: true } : customer,
      [task === 'extract' ? 'extraction' : 'analysis']: result.output,
      model: { provider: llm.name, name: result.model },
      usage: {
        prompt_tokens: result.usage.promptTokens,
        completion_tokens: result.usage.completionTokens,
        estimated_cost_usd: cost,
      },
      model_ms: modelMs,
      generated_at: new Date().toISOString(),
      // Replays carry the ID of the request that paid for the call, not their own (that is in X-Request-ID).
      generated_by_request: req.id,
    });
  };
}

/** The middleware chain of one task's route (validate → idempotency → model), and its idempotency middleware for observers. */
export function extractionRoute(
  task: Task,
  deps: ExtractionDeps,
): { handlers: RequestHandler[]; idempotency: IdempotentMiddleware } {
  const middleware = idempotency(task, deps);
  return { handlers: [validateMeeting, middleware, runTask(task, deps)], idempotency: middleware };
}

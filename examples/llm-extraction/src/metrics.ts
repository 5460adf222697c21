/**
 * Prometheus metrics, one registry per app instance (two apps in one test process never share
 * counters): the service's own (model calls, cost, customer lookups, request durations) here, and
 * idem's and the cache's from @idem/prometheus on the same registry (app.ts). What they prove:
 * `llm_calls_total` stays at one per meeting however many duplicates arrive, while
 * `idem_requests_total{outcome="replay"}` and `llm_cost_saved_usd_total` grow.
 */
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { collectDefaultMetrics, Counter, Histogram, Registry } from 'prom-client';

/** Response header with a call's estimated cost; idem replays `x-*` headers, so replays carry it too. */
export const COST_HEADER = 'X-LLM-Estimated-Cost-USD';

/** The service's metrics. */
export interface Metrics {
  registry: Registry;
  httpDuration: Histogram<'method' | 'route' | 'status' | 'idempotency'>;
  llmCalls: Counter<'provider' | 'model' | 'task' | 'outcome'>;
  llmDuration: Histogram<'provider' | 'task'>;
  llmTokens: Counter<'provider' | 'task' | 'type'>;
  llmCost: Counter<'provider' | 'task'>;
  llmCostSaved: Counter<'route'>;
  customerLookups: Counter<'source' | 'stale'>;
  customerDirectoryCalls: Counter<'outcome'>;
}

/** Creates the metrics on a fresh registry, with Node's default process metrics. */
export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const registers = [registry];
  return {
    registry,
    httpDuration: new Histogram({
      name: 'http_request_duration_seconds',
      help: 'HTTP request duration by route; idempotency="replay" for replayed responses, "miss" when the handler ran, "none" otherwise',
      labelNames: ['method', 'route', 'status', 'idempotency'],
      buckets: [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    }),
    llmCalls: new Counter({
      name: 'llm_calls_total',
      help: 'Model calls, by outcome (ok or an llm_* error code)',
      labelNames: ['provider', 'model', 'task', 'outcome'],
      registers,
    }),
    llmDuration: new Histogram({
      name: 'llm_call_duration_seconds',
      help: 'Model call duration',
      labelNames: ['provider', 'task'],
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120],
      registers,
    }),
    llmTokens: new Counter({
      name: 'llm_tokens_total',
      help: 'Tokens consumed by model calls',
      labelNames: ['provider', 'task', 'type'],
      registers,
    }),
    llmCost: new Counter({
      name: 'llm_cost_usd_total',
      help: 'Estimated cost of model calls in USD',
      labelNames: ['provider', 'task'],
      registers,
    }),
    llmCostSaved: new Counter({
      name: 'llm_cost_saved_usd_total',
      help: 'Estimated model cost replays did not pay again, in USD',
      labelNames: ['route'],
      registers,
    }),
    customerLookups: new Counter({
      name: 'customer_lookups_total',
      help: 'Customer lookups, by where the answer came from (l1, l2, loader) and whether it was stale',
      labelNames: ['source', 'stale'],
      registers,
    }),
    customerDirectoryCalls: new Counter({
      name: 'customer_directory_calls_total',
      help: 'Calls to the customer directory (the slow upstream behind the cache)',
      labelNames: ['outcome'],
      registers,
    }),
  };
}

/** The route pattern of a matched request (`/extract`), or `unmatched` (keeps label cardinality bounded). */
export function routeOf(req: Request): string {
  const path: unknown = req.route?.path;
  return typeof path === 'string' ? `${req.baseUrl}${path}` : 'unmatched';
}

/** Routes polled by machines: their completions are logged at debug level only. */
const QUIET_ROUTES = new Set(['/health', '/metrics']);

/**
 * Observes every request's duration when its response finishes, counts the model cost a replay
 * saved (read from the replayed {@link COST_HEADER}), and logs one line per request.
 */
export function observeRequests(metrics: Metrics): RequestHandler {
  return function observeRequest(req: Request, res: Response, next: NextFunction): void {
    const started = process.hrtime.bigint();
    res.once('finish', () => {
      const route = routeOf(req);
      const replayed = res.getHeader('idempotent-replayed') === 'true';
      const idempotency = replayed ? 'replay' : res.locals.handlerRan === true ? 'miss' : 'none';
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      metrics.httpDuration.observe({ method: req.method, route, status: String(res.statusCode), idempotency }, seconds);
      const cost = Number(res.getHeader(COST_HEADER.toLowerCase()));
      if (replayed && Number.isFinite(cost) && cost > 0) metrics.llmCostSaved.inc({ route }, cost);
      const line = {
        method: req.method,
        url: req.originalUrl,
        status: res.statusCode,
        ms: Math.round(seconds * 1000),
        idempotency,
      };
      const problem = typeof res.locals.problem === 'string' ? ` — ${res.locals.problem}` : '';
      const message = `${req.method} ${req.originalUrl} ${res.statusCode}${replayed ? ' (replayed)' : ''} in ${line.ms} ms${problem}`;
      if (QUIET_ROUTES.has(route)) req.log.debug(line, message);
      else req.log.info(line, message);
    });
    next();
  };
}

/**
 * The service as an Express app, built without listening so tests can drive it with supertest.
 * `server.ts` connects the store, builds this and listens.
 */
import { timingSafeEqual } from 'node:crypto';
import { adminRouter } from '@idem/admin/express';
import { createCache } from '@idem/cache';
import { cacheMetrics, idempotencyMetrics } from '@idem/prometheus';
import express, { type Express, type NextFunction, type Request, type Response } from 'express';
import { memoryBackend, type Backend } from './backend.js';
import type { Config } from './config.js';
import { customerService, simulatedDirectory, type CustomerDirectory } from './customers.js';
import { extractionRoute } from './extraction.js';
import { createLlm, type LlmProvider } from './llm/index.js';
import { silentLogger, type Logger } from './logger.js';
import { createMetrics, observeRequests, type Metrics } from './metrics.js';
import { ProblemError, problemHandler } from './problem.js';
import { bindContext, contextualLogger, currentContext, requestId } from './request-context.js';

/** Parts a caller may supply instead of the ones `config` describes (tests inject fakes here). */
export interface AppDeps {
  /** Where records live. @default memoryBackend() */
  backend?: Backend;
  /** The model. @default createLlm(config.llm) */
  llm?: LlmProvider;
  /** The customer directory behind the cache. @default simulatedDirectory(config.customers) */
  directory?: CustomerDirectory;
  /** @default a silent logger */
  logger?: Logger;
}

/** A built service. */
export interface Service {
  app: Express;
  metrics: Metrics;
  backend: Backend;
  llm: LlmProvider;
  /** Closes the customer cache and the backend (its PostgreSQL pool and Redis connection included). */
  close(): Promise<void>;
}

/**
 * Builds the service.
 *
 * @example
 * const { app, close } = createApp(loadConfig());
 * app.listen(3000);
 */
export function createApp(config: Config, deps: AppDeps = {}): Service {
  const logger = deps.logger ?? silentLogger();
  const backend = deps.backend ?? memoryBackend();
  const llm = deps.llm ?? createLlm(config.llm);
  const metrics = createMetrics();
  const startedAt = Date.now();

  // After a failed CRM call, serve stale for 10 s before calling it again: a failing upstream is not hammered.
  const cache = createCache({
    redis: backend.redis,
    namespace: 'llm-extraction',
    graceBackoff: '10s',
    logger: contextualLogger(logger),
  });
  cache.events.on('load', ({ ok }) => metrics.customerDirectoryCalls.inc({ outcome: ok ? 'ok' : 'error' }));
  const baseCustomers = customerService({
    cache,
    directory:
      deps.directory ??
      simulatedDirectory({ latencyMs: config.customers.latencyMs, failureRate: config.customers.failureRate }),
    ttlMs: config.customers.ttlMs,
    graceMs: config.customers.graceMs,
  });
  const customers = {
    async get(id: string) {
      let lookup;
      try {
        lookup = await baseCustomers.get(id);
      } catch (error) {
        (currentContext()?.log ?? logger).error(
          { err: (error as Error).cause ?? error, customerId: id },
          'customer lookup failed and nothing is cached',
        );
        throw error;
      }
      metrics.customerLookups.inc({ source: lookup.source, stale: String(lookup.stale) });
      if (lookup.stale)
        (currentContext()?.log ?? logger).warn(
          { customerId: id },
          'customer directory failing or slow; served the cached record (stale)',
        );
      return lookup;
    },
  };

  const app = express();
  app.disable('x-powered-by');
  app.use(requestId(logger));
  app.use(observeRequests(metrics));
  app.use(express.json({ limit: '2mb' }));
  app.use(bindContext());

  const routeDeps = { config, store: backend.store, llm, customers, metrics, logger };
  const extract = extractionRoute('extract', routeDeps);
  const analyze = extractionRoute('analyze', routeDeps);
  app.post('/extract', ...extract.handlers);
  app.post('/analyze', ...analyze.handlers);
  // idem's own metrics (idem_requests_total by route and outcome, store latency, …) and the
  // customer cache's (idem_cache_*), on the service's registry.
  idempotencyMetrics([extract.idempotency, analyze.idempotency], { registry: metrics.registry });
  cacheMetrics(cache, { registry: metrics.registry });

  // The admin API only with a token: look up or delete a meeting's record, health, cache stats.
  if (config.adminToken !== undefined) {
    const token = Buffer.from(config.adminToken);
    app.use(
      '/admin/idem',
      adminRouter({ store: backend.store, cache, authorize: (req) => bearerIs(req, token), logger }),
    );
  }

  app.get('/customers/:id', async (req: Request, res: Response) => {
    const id = String(req.params.id).trim();
    if (id === '' || id.length > 128)
      throw new ProblemError(
        400,
        'invalid_request',
        'Invalid customer id',
        'The customer id must be 1 to 128 characters.',
      );
    const { customer, source, stale, expiresAt } = await customers.get(id);
    res.json({ customer, cache: { source, stale, expires_at: new Date(expiresAt).toISOString() } });
  });

  app.get('/health', async (_req: Request, res: Response) => {
    const reachable = await backend.ping();
    const stats = cache.stats();
    res.status(reachable ? 200 : 503).json({
      status: !reachable ? 'unavailable' : backend.fallbackReason === undefined ? 'ok' : 'degraded',
      uptime_s: Math.round((Date.now() - startedAt) / 1000),
      store: {
        kind: backend.kind,
        reachable,
        ...(backend.fallbackReason === undefined ? {} : { fallback_reason: backend.fallbackReason }),
      },
      llm: { provider: llm.name, model: llm.model },
      customer_cache: {
        l1_entries: stats.l1.size,
        redis:
          backend.redis === undefined ? 'off' : stats.l2.breaker === 'closed' ? 'ok' : `breaker ${stats.l2.breaker}`,
      },
    });
  });

  app.get('/metrics', async (_req: Request, res: Response) => {
    res.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });

  app.use((req: Request, _res: Response, next: NextFunction) => {
    next(
      new ProblemError(
        404,
        'not_found',
        'Not found',
        `No route for ${req.method} ${req.path}. Try POST /extract, POST /analyze, GET /customers/:id, GET /health or GET /metrics.`,
      ),
    );
  });
  app.use(problemHandler());

  return {
    app,
    metrics,
    backend,
    llm,
    async close() {
      await cache.close();
      await backend.close();
    },
  };
}

/**
 * Whether the request carries `Authorization: Bearer <token>` (the scheme in any case, as HTTP
 * allows), compared in constant time; a token of another length is refused before comparing.
 */
function bearerIs(req: { headers: Record<string, string | string[] | undefined> }, token: Buffer): boolean {
  const header = req.headers.authorization;
  if (typeof header !== 'string' || !/^bearer /i.test(header)) return false;
  const given = Buffer.from(header.slice('bearer '.length));
  return given.length === token.length && timingSafeEqual(given, token);
}

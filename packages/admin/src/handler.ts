/**
 * The admin API without a framework: a request in, a response out. Every endpoint goes the same
 * way: parse and check the input (400), ask `authorize` with the parsed target (403, or 500 when it
 * throws), then act (503 when the store or the cache fails). The Express and Koa adapters only
 * translate; other frameworks can use `createAdmin()` the same way.
 */
import { ConfigError } from '@idem/core';
import { ADDRESS_PARAMS, addressOf, flag, queryOf } from './address.js';
import { clearInput, tagsInput, warmInput } from './cache-ops.js';
import { AdminError, invalid } from './errors.js';
import { checkHealth } from './health.js';
import { resolveAdminOptions, type ResolvedAdminOptions } from './options.js';
import { findRecord, recordView } from './records.js';
import type { AdminCache, AdminOptions, AdminRequest, AdminResponse, AdminTarget } from './types.js';

/** The framework-free admin API. */
export interface Admin<Native = unknown> {
  /** Largest request body to read (`maxBodyBytes`), for the adapter's `readBody`. */
  readonly maxBodyBytes: number;
  /** Answers one request; never rejects (every failure is a problem+json response). */
  handle(request: AdminRequest<Native>): Promise<AdminResponse>;
}

/** What an endpoint does once allowed. */
interface Prepared {
  target: AdminTarget;
  run(): Promise<{ status?: number; body: unknown }>;
}

type Endpoint<Native> = (request: AdminRequest<Native>) => Prepared | Promise<Prepared>;

/** The endpoints, by path and method (README, "Endpoints"). */
type Routes<Native> = Record<string, Partial<Record<string, Endpoint<Native>>>>;

const RETRY_AFTER = { 'retry-after': '1' };
const COMMON_HEADERS = { 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' };

function storeFailed(cause: unknown): AdminError {
  return new AdminError('store_unavailable', 'The idempotency store did not answer; retry shortly.', {
    headers: RETRY_AFTER,
    cause,
  });
}

/** A store call whose failure is a 503 (its error goes to the logger, never to the caller). */
async function fromStore<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    throw storeFailed(error);
  }
}

/** A cache call: a value the cache refuses is a 400 with its message; any other failure a 503. */
async function fromCache<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (error instanceof ConfigError) throw invalid(error.message);
    throw new AdminError('cache_unavailable', 'The cache did not complete the operation; retry shortly.', {
      headers: RETRY_AFTER,
      cause: error,
    });
  }
}

function json(status: number, body: unknown, headers: Record<string, string> = {}): AdminResponse {
  return {
    status,
    headers: { 'content-type': 'application/json; charset=utf-8', ...COMMON_HEADERS, ...headers },
    body: JSON.stringify(body),
  };
}

function problem(error: AdminError): AdminResponse {
  return {
    status: error.status,
    headers: { 'content-type': 'application/problem+json', ...COMMON_HEADERS, ...error.headers },
    body: JSON.stringify(error.toProblem()),
  };
}

function routes<Native>(o: ResolvedAdminOptions<Native>): Routes<Native> {
  const { store, logger } = o;
  const audit = (target: AdminTarget, what: Record<string, unknown>): void =>
    logger.info({ action: target.action, ...what }, `idem admin: ${target.action}`);

  function cacheOf(): AdminCache {
    if (o.cache === undefined)
      throw new AdminError('cache_not_configured', 'This admin API was created without a cache.');
    return o.cache;
  }

  const noQuery = (request: AdminRequest<Native>): void => void queryOf(request.search, []);

  return {
    '/records': {
      GET(request) {
        const query = queryOf(request.search, [...ADDRESS_PARAMS, 'body']);
        const address = addressOf(query);
        const body = flag(query, 'body');
        return {
          target: { action: 'record.read', ...address, body },
          async run() {
            const found = await fromStore(() => findRecord(store, address.storageKey));
            if (found === undefined)
              throw new AdminError('record_not_found', 'The store holds no record for this key in this scope.');
            return { body: recordView(store, address, found, body) };
          },
        };
      },
      DELETE(request) {
        const address = addressOf(queryOf(request.search, ADDRESS_PARAMS));
        const target: AdminTarget = { action: 'record.delete', ...address };
        return {
          target,
          async run() {
            const deleted = await fromStore(() => store.delete(address.storageKey));
            if (!deleted)
              throw new AdminError('record_not_found', 'The store holds no record for this key in this scope.');
            audit(target, { storageKey: address.storageKey });
            return { body: { deleted: true, scope: address.scope, key: address.key, storageKey: address.storageKey } };
          },
        };
      },
    },
    '/health': {
      GET(request) {
        noQuery(request);
        return {
          target: { action: 'health' },
          async run() {
            const report = await checkHealth(store, o.cache, o.healthTimeout, (error) =>
              logger.warn({ err: error, store: store.name }, 'idem admin: the store health probe failed'),
            );
            if (report.status !== 'unavailable') return { body: report };
            throw new AdminError('store_unavailable', `The idempotency store (${store.name}) is not reachable.`, {
              headers: RETRY_AFTER,
              extensions: { health: report },
            });
          },
        };
      },
    },
    '/cache/stats': {
      GET(request) {
        noQuery(request);
        const cache = cacheOf();
        return { target: { action: 'cache.stats' }, run: async () => ({ body: cache.stats() }) };
      },
    },
    '/cache/clear': {
      async POST(request) {
        noQuery(request);
        const cache = cacheOf();
        const namespace = clearInput(await request.readBody());
        const target: AdminTarget = { action: 'cache.clear', namespace };
        return {
          target,
          async run() {
            await fromCache(() => cache.clear(namespace));
            audit(target, { namespace: namespace ?? null });
            return { body: { cleared: true, namespace: namespace ?? null } };
          },
        };
      },
    },
    '/cache/delete-by-tag': {
      async POST(request) {
        noQuery(request);
        const cache = cacheOf();
        const tags = tagsInput(await request.readBody());
        const target: AdminTarget = { action: 'cache.deleteByTag', tags };
        return {
          target,
          async run() {
            await fromCache(() => cache.deleteByTag(tags));
            audit(target, { tags });
            return { body: { deleted: true, tags } };
          },
        };
      },
    },
    '/cache/warm': {
      async POST(request) {
        noQuery(request);
        const cache = cacheOf();
        const entries = warmInput(await request.readBody());
        const target: AdminTarget = { action: 'cache.warm', keys: entries.map((e) => e.key) };
        return {
          target,
          async run() {
            const stored = await fromCache(() => cache.warm(entries));
            audit(target, { entries: stored });
            return { body: { stored } };
          },
        };
      },
    },
  };
}

/** The path as routed: one trailing slash ignored, nothing else normalised. */
function routeOf(path: string): string {
  return path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path;
}

/**
 * Creates the framework-free admin API. Options are validated here; a missing `authorize` (or
 * any bad option) throws {@link AdminConfigError}, a `TypeError`.
 *
 * @example
 * const admin = createAdmin({ store, authorize: (req) => isOperator(req) });
 * const response = await admin.handle({ method: 'GET', path: '/health', search: '', readBody, native: req });
 */
export function createAdmin<Native = unknown>(
  options: AdminOptions<Native>,
  /** Options an adapter reads itself (Koa's `prefix`), accepted besides the admin API's own. */
  adapterOptions: readonly string[] = [],
): Admin<Native> {
  const o = resolveAdminOptions(options, adapterOptions);
  const table = routes(o);
  const { logger } = o;

  async function answer(request: AdminRequest<Native>): Promise<AdminResponse> {
    const route = table[routeOf(request.path)];
    if (route === undefined) throw new AdminError('not_found', `No admin endpoint at ${request.path}.`);
    const endpoint = route[request.method];
    if (endpoint === undefined) {
      const allow = Object.keys(route).join(', ');
      throw new AdminError('method_not_allowed', `${request.method} is not allowed here; use ${allow}.`, {
        headers: { allow },
      });
    }
    const prepared = await endpoint(request);
    let allowed: unknown;
    try {
      allowed = await o.authorize(request.native, prepared.target);
    } catch (error) {
      throw new AdminError('authorize_failed', 'The authorization check failed.', { cause: error });
    }
    // Only true allows: a check that forgets to return must not open the API.
    if (allowed !== true) throw new AdminError('forbidden', `Not allowed to ${prepared.target.action}.`);
    const { status = 200, body } = await prepared.run();
    return json(status, body);
  }

  return {
    maxBodyBytes: o.maxBodyBytes,
    async handle(request) {
      try {
        return await answer(request);
      } catch (thrown) {
        const error =
          thrown instanceof AdminError
            ? thrown
            : new AdminError('internal_error', 'The admin API failed to answer.', { cause: thrown });
        if (error.status >= 500 && error.cause !== undefined)
          logger.error({ err: error.cause, code: error.code, path: request.path }, `idem admin: ${error.message}`);
        return problem(error);
      }
    },
  };
}

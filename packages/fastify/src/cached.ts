import type { FastifyInstance, FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify';
import fp from 'fastify-plugin';
import { CACHE_STATUS_HEADER, responseCaching } from '@idem/core/adapter';
import type { CachedAnswer, CachedOptions as CoreCachedOptions, ResponseCaching } from '@idem/core/adapter';
import { capturePayload, type CapturedPayload } from './capture.js';
import { clearHeaders, send } from './send.js';

export type { ResponseCache } from '@idem/core/adapter';

/** Options of `cached`; a `tags` function receives the Fastify request. */
export type CachedOptions = CoreCachedOptions<FastifyRequest>;

/** A route's own `cached` options (`config.cached`), laid over the plugin's; `false` leaves the route alone. */
export type RouteCachedOptions = Partial<CachedOptions> | false;

declare module 'fastify' {
  interface FastifyContextConfig {
    /** This GET route's `cached` options over the plugin's, or `false` for none. */
    cached?: RouteCachedOptions;
  }
}

type Caching = ResponseCaching<FastifyRequest>;

/** A request whose own handler runs as the cache's loader: onSend hands it the response and answers. */
interface OwnRun {
  caching: Caching;
  /** True once the cache chose this request's handler as its loader. */
  ran: boolean;
  /** How to answer, once decided (after the handler's response reached onSend). */
  answer: Promise<CachedAnswer>;
  resolve(captured: CapturedPayload): void;
}

const OWN_RUN = Symbol('@idem/fastify cached run');
const REGISTERED = Symbol.for('@idem/fastify cached');
type WithRun = FastifyRequest & { [OWN_RUN]?: OwnRun | undefined };

/** Writes core's answer (`cachedAnswer`) for a request whose handler did not run. */
function answerBefore(reply: FastifyReply, done: HookHandlerDoneFunction, decided: CachedAnswer): void {
  switch (decided.action) {
    case 'fail':
      return done(decided.error as Error);
    case 'run':
    case 'own':
      reply.header(CACHE_STATUS_HEADER, decided.cacheStatus);
      return done();
    case 'send':
      return send(reply, decided.response, [[CACHE_STATUS_HEADER, decided.cacheStatus]]);
  }
}

async function cachedPlugin(fastify: FastifyInstance, options: CachedOptions): Promise<void> {
  if (fastify.hasDecorator(REGISTERED)) {
    throw new Error(
      '@idem/fastify cached is already registered in this scope or a parent scope; give a route its own options with `config: { cached: {…} }` instead',
    );
  }
  const caching = responseCaching(options);
  fastify.decorate(REGISTERED, true);

  // Per route with options of its own: created when the route is declared, or on its first request.
  const routeCachings = new WeakMap<object, Caching>();
  function cachingOf(config: { cached?: RouteCachedOptions } | undefined): Caching | undefined {
    const own = config?.cached;
    if (own === undefined) return caching;
    if (own === false) return undefined;
    let found = routeCachings.get(config as object);
    if (found === undefined) routeCachings.set(config as object, (found = responseCaching({ ...options, ...own })));
    return found;
  }
  fastify.addHook('onRoute', (route) => void cachingOf(route.config));

  fastify.addHook('preHandler', function lookUp(request: WithRun, reply, done) {
    if (request.method !== 'GET') return done();
    const chosen = cachingOf(request.routeOptions.config);
    if (chosen === undefined) return done();
    let settle!: (answer: CachedAnswer) => void;
    const run: OwnRun = {
      caching: chosen,
      ran: false,
      answer: new Promise((resolve) => (settle = resolve)),
      resolve: () => {},
    };
    chosen
      .decide(chosen.keyOf(request.url, request.headers), request, function runHandler() {
        // Fastify may run the handler, and onSend, before this returns: the run is attached first.
        run.ran = true;
        request[OWN_RUN] = run;
        const captured = new Promise<CapturedPayload>((resolve) => (run.resolve = resolve));
        done();
        return captured.then((c) => c.response);
      })
      .then((decided) => (run.ran ? settle(decided) : answerBefore(reply, done, decided)))
      // A throw while answering (a cached header Node refuses) goes to the error handler.
      .catch((error: Error) => done(error));
  });

  fastify.addHook('onSend', function share(request: WithRun, reply, payload, done) {
    const own = request[OWN_RUN];
    if (own === undefined) return done(null, payload);
    request[OWN_RUN] = undefined;
    Promise.resolve(capturePayload(reply, payload, own.caching.maxBodyBytes))
      .then(async (captured) => {
        own.resolve(captured);
        const decided = await own.answer;
        switch (decided.action) {
          case 'fail':
            return done(decided.error as Error);
          case 'run':
          case 'own':
            reply.header(CACHE_STATUS_HEADER, decided.cacheStatus);
            return done(null, captured.payload);
          case 'send': {
            // Answer with the cached response instead of what the handler wrote.
            const { response } = decided;
            clearHeaders(reply);
            reply.code(response.status);
            for (const name in response.headers) reply.header(name, response.headers[name]);
            reply.header(CACHE_STATUS_HEADER, decided.cacheStatus);
            return done(null, response.body);
          }
        }
      })
      .catch((error: Error) => done(error));
  });
}

/**
 * Read-through caching for the GET routes of the scope it is registered in, on `@idem/cache`:
 * the handler runs once per URL (and `vary` headers) however many requests arrive at once, in
 * however many processes; the others get its status, headers and bytes, or its failure. Within
 * grace, a failing handler is answered with the last good response. Every answer carries an
 * RFC 9211 `Cache-Status` header. A route changes its options, or opts out, with `config: { cached }`.
 *
 * @example
 * const cache = createCache({ redis, ttl: '1m', grace: '1h' });
 * await app.register(async (scope) => {
 *   await scope.register(cached, { cache, vary: ['accept-language'] });
 *   scope.get('/stats/:day', statsHandler);
 * });
 */
export const cached = fp(cachedPlugin, { fastify: '5.x', name: '@idem/fastify cached' });

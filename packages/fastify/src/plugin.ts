import type { FastifyInstance, FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify';
import fp from 'fastify-plugin';
import { attachExecution, createIdempotency, executionOf } from '@idem/core/adapter';
import type { Decision, Execution, Idempotency, IdempotencyEvents, IdempotencyOptions } from '@idem/core/adapter';
import { capturePayload } from './capture.js';
import { FastifyRequestView } from './request-view.js';
import { answered, clearHeaders, sendOutgoing, untype } from './send.js';

/** Options of the Fastify plugin; `key`, `scope` and `fingerprint` functions receive the Fastify request. */
export type FastifyIdempotencyOptions = IdempotencyOptions<FastifyRequest>;

/** A route's own options (`config.idempotency`), laid over the plugin's; `false` leaves the route alone. */
export type RouteIdempotencyOptions = FastifyIdempotencyOptions | false;

/** What the plugin decorates its scope with. */
export interface IdempotencyDecorator {
  /** Typed events of every route of the scope: `replay`, `execute`, `conflict`, `mismatch`, `storeError`… */
  readonly events: IdempotencyEvents;
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** This route's idempotency options over the plugin's, or `false` for none. */
    idempotency?: RouteIdempotencyOptions;
  }
  interface FastifyInstance {
    /** Set by `@idem/fastify` on the scope it is registered in (and the scopes within). */
    idempotency: IdempotencyDecorator;
  }
}

type Done = HookHandlerDoneFunction;
type Engine = Idempotency<FastifyRequest>;

/** Ends an execution whose response went out around idem (a hijacked reply written to `reply.raw`). */
function watchClose(reply: FastifyReply, execution: Execution): void {
  reply.raw.once('close', function closed() {
    // A client that left is no reason: a handler that still answers has its response stored
    // (docs/design.md, "Leases and fencing"); one that never does is bounded by maxHold.
    if (!execution.settled && reply.raw.writableEnded) void execution.abort('response sent without onSend');
  });
}

async function idempotencyPlugin(fastify: FastifyInstance, options: FastifyIdempotencyOptions): Promise<void> {
  if (fastify.hasDecorator('idempotency')) {
    throw new Error(
      '@idem/fastify is already registered in this scope or a parent scope; give a route its own options with `config: { idempotency: {…} }` instead',
    );
  }
  const engine = createIdempotency<FastifyRequest>(options);
  fastify.decorate('idempotency', { events: engine.events } satisfies IdempotencyDecorator);

  // One engine per route that has options of its own, created when the route is declared (so a bad
  // option fails at startup) or, for a route declared before the plugin loaded, on its first request.
  const routeEngines = new WeakMap<object, Engine>();
  function routeEngine(config: object, own: FastifyIdempotencyOptions): Engine {
    let found = routeEngines.get(config);
    if (found === undefined) {
      // The plugin's events: `app.idempotency.events` tells about every route of the scope.
      found = createIdempotency<FastifyRequest>({ ...options, ...own }, { events: engine.events });
      routeEngines.set(config, found);
    }
    return found;
  }
  fastify.addHook('onRoute', (route) => {
    const own = route.config?.idempotency;
    if (own !== undefined && own !== false) routeEngine(route.config as object, own);
  });

  /** The engine of a route, from its config; undefined for a route that opted out. */
  function engineOf(config: FastifyRequest['routeOptions']['config'] | undefined): Engine | undefined {
    const own = config?.idempotency;
    if (own === undefined) return engine;
    return own === false ? undefined : routeEngine(config as object, own);
  }

  function act(request: FastifyRequest, reply: FastifyReply, done: Done, decision: Decision): void {
    if (decision.action === 'pass') return done();
    if (decision.action === 'respond') return sendOutgoing(reply, decision.response);
    const { execution } = decision;
    // Answered while it waited (a request timeout before idem) or its client left: nobody would
    // get the result, so release the key for the retry instead of running the handler.
    if (answered(reply)) return void execution.abort('response already sent');
    attachExecution(request, execution);
    watchClose(reply, execution);
    done();
  }

  fastify.addHook('preHandler', function decide(request, reply, done) {
    const { config } = request.routeOptions;
    const chosen = engineOf(config);
    if (chosen === undefined) return done();
    let decision: Decision | Promise<Decision>;
    try {
      decision = chosen.handle(new FastifyRequestView(request, config?.url));
      // Requests that need no store call (no key, a bad key) go on without a detour through a promise.
      if (!(decision instanceof Promise)) return act(request, reply, done, decision);
    } catch (error) {
      return done(error as Error); // a throwing key, scope or fingerprint function
    }
    decision.then(
      (d) => {
        try {
          act(request, reply, done, d);
        } catch (error) {
          done(error as Error);
        }
      },
      (error: Error) => done(error),
    );
  });

  // The handler's answer, serialised, before Fastify writes it: stored first, then sent.
  fastify.addHook('onSend', function storeThenSend(request, reply, payload, done) {
    const execution = executionOf(request);
    if (execution === undefined) {
      untype(reply);
      return done(null, payload);
    }
    // An execution runs only where engineOf found an engine.
    const { maxBodyBytes } = (engineOf(request.routeOptions.config) as Engine).options;
    let capture;
    try {
      capture = capturePayload(reply, payload, maxBodyBytes);
    } catch (error) {
      void execution.abort(error);
      return done(error as Error);
    }
    Promise.resolve(capture)
      .then(async (captured) => {
        const instead = await execution.finish(captured.response);
        if (instead === undefined) return done(null, captured.payload);
        // A transactional store could not keep the response: the engine's answer replaces it.
        if (typeof (captured.payload as { destroy?: unknown })?.destroy === 'function')
          (captured.payload as { destroy(): void }).destroy();
        clearHeaders(reply);
        reply.code(instead.status);
        for (const name in instead.headers) reply.header(name, instead.headers[name]);
        done(null, Buffer.from(instead.body.buffer, instead.body.byteOffset, instead.body.byteLength));
      })
      .catch(async (error: Error) => {
        await execution.abort(error); // a stream that failed while it was read
        done(error);
      });
  });
}

/**
 * Makes Fastify routes safe to retry: the handler runs once per idempotency key and every
 * duplicate gets the same response, replayed byte for byte with `Idempotent-Replayed: true`.
 * It applies to the scope it is registered in and the scopes within, never to sibling scopes;
 * a route changes its options, or opts out, with `config: { idempotency }`. Options are
 * validated at registration; a bad one fails `app.ready()`.
 *
 * @example
 * await app.register(idempotent, { required: true });
 * app.post('/orders', async (request, reply) => reply.code(201).send(await createOrder(request.body)));
 */
export const idempotent = fp(idempotencyPlugin, { fastify: '5.x', name: '@idem/fastify' });

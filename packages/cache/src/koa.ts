/**
 * `@idem/cache/koa`: `invalidates()` for Koa 2 and 3 write routes. No dependency on Koa itself:
 * it needs only what every Koa context has.
 */
import { REPLAYED_HEADER } from '@idem/core';
import { invalidation, type InvalidatesOptions } from './invalidates.js';

export type { InvalidatesOptions, Names } from './invalidates.js';

/** The part of a Koa context `invalidates()` reads. */
export interface InvalidatesContext {
  status: number;
  response: { get(field: string): string | string[] | number | undefined };
}

/**
 * Deletes the tags and keys a write route names once it answers 2xx, from both tiers and every
 * instance's memory tier, before the response is sent (a read right after the write gets the new
 * value). A replayed answer (`Idempotent-Replayed: true`) invalidates nothing: its first run did.
 * Options are checked here; a bad one throws.
 *
 * @example
 * router.put('/users/:id', invalidates({ cache, tags: (ctx) => [`user:${ctx.params.id}`] }), updateUser);
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function invalidates<Ctx extends InvalidatesContext = InvalidatesContext & Record<string, any>>(
  options: InvalidatesOptions<Ctx>,
): (ctx: Ctx, next: () => Promise<unknown>) => Promise<void> {
  const it = invalidation(options);
  return async function invalidatesMiddleware(ctx, next) {
    await next();
    // Koa sends the response once the middleware chain has settled: this runs before it.
    if (it.applies(ctx.status, ctx.response.get(REPLAYED_HEADER))) await it.run(ctx);
  };
}

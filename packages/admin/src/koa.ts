/**
 * `@idem/admin/koa`: the admin API as Koa middleware (Koa 2 and 3). Koa has no mount points of
 * its own, so the middleware takes its `prefix`: requests below it are the admin API's, every
 * other request goes on to `next()`.
 */
import type { IncomingMessage } from 'node:http';
import { readJsonBody } from './body.js';
import { AdminConfigError } from './errors.js';
import { createAdmin } from './handler.js';
import type { AdminOptions } from './types.js';

/** The parts of a Koa context the admin API uses (Koa 2 and 3 both fit). */
export interface KoaAdminContext {
  method: string;
  path: string;
  querystring: string;
  req: IncomingMessage;
  request: { body?: unknown };
  status: number;
  body: unknown;
  set(field: string, value: string): void;
}

/** What `authorize` receives by default: the Koa context, loosely typed. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyKoaContext = Record<string, any> & KoaAdminContext;

/** Koa middleware serving the admin API below its prefix. */
export type AdminMiddleware = (ctx: KoaAdminContext, next: () => Promise<unknown>) => Promise<void>;

/** Options of the Koa admin API; `authorize` receives the Koa context. */
export interface KoaAdminOptions<Ctx = AnyKoaContext> extends AdminOptions<Ctx> {
  /** Where the admin API lives, e.g. `'/admin/idem'` (`'/'` under koa-mount). Required. */
  prefix: string;
}

/**
 * The admin API for Koa. `authorize` and `prefix` are required (a `TypeError` without them).
 *
 * @example
 * app.use(adminMiddleware({ prefix: '/admin/idem', store, authorize: (ctx) => hasAdminToken(ctx) }));
 */
export function adminMiddleware<Ctx = AnyKoaContext>(options: KoaAdminOptions<Ctx>): AdminMiddleware {
  // prefix is ours; the rest is checked by createAdmin, which knows prefix as an option too.
  const admin = createAdmin<Ctx>(options, ['prefix']);
  const given = options.prefix;
  if (typeof given !== 'string' || !given.startsWith('/'))
    throw new AdminConfigError('prefix', "is required: the path the admin API answers below, e.g. '/admin/idem'");
  const prefix = given.length > 1 && given.endsWith('/') ? given.slice(0, -1) : given;

  /** The path below the prefix, or undefined for a request that is not the admin API's. */
  function below(path: string): string | undefined {
    if (prefix === '/') return path;
    if (path === prefix) return '/';
    return path.startsWith(`${prefix}/`) ? path.slice(prefix.length) : undefined;
  }

  return async (ctx, next) => {
    const path = below(ctx.path);
    if (path === undefined) {
      await next();
      return;
    }
    const answer = await admin.handle({
      method: ctx.method.toUpperCase(),
      path,
      search: ctx.querystring,
      readBody: () => readJsonBody(ctx.req, ctx.request.body, admin.maxBodyBytes),
      native: ctx as unknown as Ctx,
    });
    ctx.status = answer.status;
    for (const [name, value] of Object.entries(answer.headers)) ctx.set(name, value);
    // A string body would make Koa set its own text/html or text/plain type over ours.
    ctx.body = Buffer.from(answer.body);
  };
}

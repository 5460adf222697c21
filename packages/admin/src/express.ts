/**
 * `@idem/admin/express`: the admin API as Express middleware (Express 4 and 5), mounted where
 * you choose. It answers every request that reaches it, with paths below its mount point.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { readJsonBody } from './body.js';
import { createAdmin } from './handler.js';
import type { AdminOptions } from './types.js';

/** What `authorize` receives by default: the Express request, loosely typed. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyExpressRequest = Record<string, any> & IncomingMessage;

/** Express middleware serving the admin API. */
export type AdminRouter = (req: IncomingMessage, res: ServerResponse, next: (error?: unknown) => void) => void;

/** Options of the Express admin API; `authorize` receives the Express request. */
export type ExpressAdminOptions<Req = AnyExpressRequest> = AdminOptions<Req>;

/**
 * The admin API for Express. `authorize` is required (a `TypeError` without it).
 *
 * @example
 * app.use('/admin/idem', adminRouter({ store, cache, authorize: (req) => hasAdminToken(req) }));
 */
export function adminRouter<Req = AnyExpressRequest>(options: ExpressAdminOptions<Req>): AdminRouter {
  const admin = createAdmin<Req>(options);
  return (req, res, next) => {
    // Express rewrites req.url to the part below the mount point (req.originalUrl keeps all).
    const url = req.url ?? '/';
    const at = url.indexOf('?');
    const native = req as unknown as Req;
    admin
      .handle({
        method: (req.method ?? 'GET').toUpperCase(),
        path: at === -1 ? url : url.slice(0, at),
        search: at === -1 ? '' : url.slice(at + 1),
        readBody: () => readJsonBody(req, (req as { body?: unknown }).body, admin.maxBodyBytes),
        native,
      })
      .then((answer) => {
        if (res.headersSent) return;
        res.statusCode = answer.status;
        for (const [name, value] of Object.entries(answer.headers)) res.setHeader(name, value);
        res.setHeader('content-length', Buffer.byteLength(answer.body));
        res.end(answer.body);
      })
      .catch(next);
  };
}

/**
 * `@idem/admin`: the admin API for idem, framework-free. `createAdmin()` answers requests given as
 * `AdminRequest`s; `@idem/admin/express` (`adminRouter`) and `@idem/admin/koa` (`adminMiddleware`)
 * mount it in an app.
 */
export { createAdmin } from './handler.js';
export type { Admin } from './handler.js';
export { AdminConfigError, AdminError, adminProblemType } from './errors.js';
export type { AdminProblemBody, AdminProblemCode } from './errors.js';
export { defaults } from './options.js';
export type { HealthReport } from './health.js';
export type { RecordView, ResponseView } from './records.js';
export type * from './types.js';

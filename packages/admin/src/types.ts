/**
 * The admin API's contract: what `authorize` is asked, the options, and the framework-free
 * request and response the Express and Koa adapters translate from and to.
 */
import type { IdempotencyStore, Logger, Duration } from '@idem/core';
import type { Cache } from '@idem/cache';

/** A record's address: the client's key and its scope, as `idempotent()` computes them. */
export interface RecordAddress {
  /** The scope value (a string for the default scope `'POST /orders'`; whatever a `scope` function returns). */
  scope: unknown;
  /** The client's key (the header's value, or what a `key` selector returns). */
  key: unknown;
  /** The stored (hashed) key, as idem's logs and events show it. */
  storageKey: string;
}

/**
 * What a request asks to do, parsed and checked, given to `authorize` as its second argument so
 * that a tenant-limited check can see which scope is asked for before anything is read.
 */
export type AdminTarget =
  | ({
      action: 'record.read';
      /** True when the stored response's body is asked for too. */ body: boolean;
    } & RecordAddress)
  | ({ action: 'record.delete' } & RecordAddress)
  | { action: 'health' }
  | { action: 'cache.stats' }
  | { action: 'cache.clear'; /** Undefined: the cache's own namespace. */ namespace: string | undefined }
  | { action: 'cache.deleteByTag'; tags: readonly string[] }
  | { action: 'cache.warm'; keys: readonly string[] };

/** Every action, for allow-lists in `authorize`. */
export type AdminAction = AdminTarget['action'];

/**
 * Says whether `req` may do `target`. Only `true` allows (a forgotten `return` denies); a throw or
 * rejection is answered 500 without its message.
 */
export type Authorize<Native> = (req: Native, target: AdminTarget) => boolean | Promise<boolean>;

/** The part of an @idem/cache the admin API uses (its public methods). */
export type AdminCache = Pick<Cache, 'stats' | 'clear' | 'deleteByTag' | 'warm'>;

/** Options of the admin API. */
export interface AdminOptions<Native = unknown> {
  /** The store `idempotent()` uses. */
  store: IdempotencyStore;
  /** Who may do what. Required: there is no admin API without it. */
  authorize: Authorize<Native>;
  /** An @idem/cache to expose (stats, clear, delete by tag, warm) and report on in `/health`. @default none */
  cache?: AdminCache;
  /** Largest request body read (the JSON of `POST /cache/*`). @default 1 MiB */
  maxBodyBytes?: number;
  /** Longest the health probe of the store may take before it counts as unreachable. @default '2s' */
  healthTimeout?: Duration;
  /** A pino logger (or anything with its methods): failures, and every change made (audit). @default silent */
  logger?: Logger;
}

/** A request as the framework-free handler sees it. */
export interface AdminRequest<Native = unknown> {
  /** Upper-case HTTP method. */
  method: string;
  /** The path below where the admin API is mounted, e.g. `/records`. */
  path: string;
  /** The raw query string without `?` (empty when none). */
  search: string;
  /** Reads the JSON body; called only by the endpoints that take one. */
  readBody(): Promise<unknown>;
  /** The framework's request (Express `req`, Koa `ctx`), handed to `authorize`. */
  native: Native;
}

/** The answer the adapter writes as it is. */
export interface AdminResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

import type { IncomingMessage } from 'node:http';
import { hasRequestBody, headerValues, splitUrl, type NeutralRequest } from '@idem/core/adapter';

/**
 * An Express request as idem sees it (Express 4 and 5 both fit). The middleware itself is typed
 * with the bare `IncomingMessage` so that it never narrows Express's inference of route params,
 * query or body for the handlers mounted after it.
 */
export interface ExpressRequest extends IncomingMessage {
  originalUrl?: string;
  baseUrl?: string;
  body?: unknown;
  query?: unknown;
  params?: unknown;
  route?: { path?: unknown };
}

function isParsed(req: ExpressRequest): boolean {
  // A parser that read the body consumed the stream (body-parser 2 checks exactly this) or left
  // `req.body` behind; neither is true when no parser ran.
  return !hasRequestBody(req.headers) || req.readableEnded || req.body !== undefined;
}

/**
 * The Express request as the engine sees it. A class, not an object literal with getters: V8 builds
 * the latter on a slow path, and this runs for every request (bench/FINDINGS.md, A). Body, query,
 * params and the route are read only when the engine needs them (Express 5 parses req.query on read).
 */
export class ExpressRequestView implements NeutralRequest<ExpressRequest> {
  readonly method: string;
  readonly headers: ExpressRequest['headers'];
  // Split on first use: a request without a key never needs its path.
  private url: { path: string; search: string } | undefined = undefined;

  constructor(readonly native: ExpressRequest) {
    this.method = (native.method ?? 'GET').toUpperCase();
    this.headers = native.headers;
  }

  get path(): string {
    return this.splitUrl().path;
  }

  get search(): string {
    return this.splitUrl().search;
  }

  private splitUrl(): { path: string; search: string } {
    return (this.url ??= splitUrl(this.native.originalUrl ?? this.native.url ?? '/'));
  }

  get route(): string | undefined {
    const routePath = this.native.route?.path;
    return typeof routePath === 'string' ? `${this.native.baseUrl ?? ''}${routePath}` : undefined;
  }

  headerValues(name: string): string[] {
    return headerValues(this.headers, name, this.native);
  }

  get body(): unknown {
    return this.native.body;
  }

  get bodyParsed(): boolean {
    return isParsed(this.native);
  }

  get query(): unknown {
    return this.native.query;
  }

  get params(): unknown {
    return this.native.params;
  }
}

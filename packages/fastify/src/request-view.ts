import type { FastifyRequest } from 'fastify';
import { hasRequestBody, headerValues, splitUrl, type NeutralRequest } from '@idem/core/adapter';

/**
 * The Fastify request as the engine sees it. A class, not an object literal with getters: V8 builds
 * the latter on a slow path, and this runs for every request (bench/FINDINGS.md, A). Fastify has
 * parsed the body by the time idem runs (preHandler), and knows the route pattern (`/orders/:id`,
 * with the prefix of its plugin scope).
 */
export class FastifyRequestView implements NeutralRequest<FastifyRequest> {
  readonly method: string;
  readonly headers: FastifyRequest['headers'];
  // Split on first use: a request without a key never needs its path.
  private url: { path: string; search: string } | undefined = undefined;

  constructor(
    readonly native: FastifyRequest,
    readonly route: string | undefined,
  ) {
    this.method = native.method.toUpperCase();
    this.headers = native.headers;
  }

  get path(): string {
    return this.splitUrl().path;
  }

  get search(): string {
    return this.splitUrl().search;
  }

  private splitUrl(): { path: string; search: string } {
    return (this.url ??= splitUrl(this.native.url));
  }

  headerValues(name: string): string[] {
    return headerValues(this.headers, name, this.native.raw);
  }

  get body(): unknown {
    return this.native.body;
  }

  /**
   * A content-type parser that hands the body on unread (`done(null)`, to stream it in the handler)
   * leaves nothing to fingerprint: the request stream is still open and `request.body` undefined.
   */
  get bodyParsed(): boolean {
    return !hasRequestBody(this.headers) || this.native.body !== undefined || this.native.raw.readableEnded;
  }

  get query(): unknown {
    return this.native.query;
  }

  get params(): unknown {
    return this.native.params;
  }
}

import type { Context } from 'hono';
import { matchedRoutes } from 'hono/route';
import { hasRequestBody, type HeaderBag, type NeutralRequest } from '@idem/core/adapter';

// JSON media types (application/json, application/problem+json…): fingerprinted as parsed JSON.
const JSON_TYPE = /^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i;
const FORM_TYPE = /^application\/x-www-form-urlencoded\s*(?:;|$)/i;
const TEXT_TYPE = /^text\//i;

/** A form body as an object: one value per name, or an array of the values of a repeated name. */
function formObject(text: string): Record<string, string | string[]> {
  const form: Record<string, string | string[]> = Object.create(null) as Record<string, string | string[]>;
  for (const [name, value] of new URLSearchParams(text)) {
    const seen = form[name];
    form[name] = seen === undefined ? value : Array.isArray(seen) ? [...seen, value] : [seen, value];
  }
  return form;
}

/**
 * Reads the request body once, through Hono's body cache, so that the handler's own
 * `c.req.json()`, `text()`, `arrayBuffer()` or `parseBody()` still get it. What the engine
 * fingerprints (and `body.*` selectors read): the parsed JSON for a JSON type (its text when it
 * is not JSON, which the handler answers itself), a form as an object, other text as a string,
 * and any other body as its bytes (a latin1 string, one character a byte).
 */
async function readBody(c: Context): Promise<{ parsed: boolean; body: unknown }> {
  const { req } = c;
  const headers = req.raw.headers;
  const length = headers.get('content-length') ?? undefined;
  const transfer = headers.get('transfer-encoding') ?? undefined;
  if (!hasRequestBody({ 'content-length': length, 'transfer-encoding': transfer }))
    return { parsed: true, body: undefined };
  // Read by something before idem without Hono's cache (a middleware on c.req.raw): nothing to fingerprint.
  if (req.raw.bodyUsed && Object.keys(req.bodyCache).length === 0) return { parsed: false, body: undefined };
  const type = headers.get('content-type') ?? '';
  if (JSON_TYPE.test(type)) {
    const text = await req.text();
    try {
      return { parsed: true, body: JSON.parse(text) as unknown };
    } catch {
      return { parsed: true, body: text };
    }
  }
  if (FORM_TYPE.test(type)) return { parsed: true, body: formObject(await req.text()) };
  if (TEXT_TYPE.test(type)) return { parsed: true, body: await req.text() };
  return { parsed: true, body: Buffer.from(await req.arrayBuffer()).toString('latin1') };
}

/** The index, among the routes that matched, of the handler's: the last one that is not `app.use()`. */
function handlerIndex(c: Context): number {
  const routes = matchedRoutes(c);
  for (let i = routes.length - 1; i >= 0; i--) if (routes[i]?.method !== 'ALL') return i;
  return -1;
}

/**
 * The Hono request as the engine sees it, built once the body is read ({@link HonoRequestView.read}).
 * Headers come from the Web `Headers` (lower-case names; a header sent twice is one value joined
 * with ", ", which the key parser refuses as a list, as it refuses a key sent twice). The route
 * and params are the handler's, not the middleware's: idem usually runs as `app.use()`.
 */
export class HonoRequestView implements NeutralRequest<Context> {
  readonly method: string;
  readonly path: string;
  readonly search: string;
  private bag: HeaderBag | undefined = undefined;
  private index: number | undefined = undefined;

  private constructor(
    readonly native: Context,
    readonly body: unknown,
    readonly bodyParsed: boolean,
  ) {
    this.method = native.req.method.toUpperCase();
    this.path = native.req.path;
    const url = native.req.url;
    const q = url.indexOf('?');
    this.search = q < 0 ? '' : url.slice(q + 1);
  }

  /** Reads the body (through Hono's cache) and builds the view. */
  static async read(c: Context): Promise<HonoRequestView> {
    const { parsed, body } = await readBody(c);
    return new HonoRequestView(c, body, parsed);
  }

  private get handler(): number {
    return (this.index ??= handlerIndex(this.native));
  }

  get route(): string | undefined {
    const index = this.handler;
    return index < 0 ? undefined : matchedRoutes(this.native)[index]?.path;
  }

  get headers(): HeaderBag {
    if (this.bag === undefined) {
      const bag: HeaderBag = {};
      this.native.req.raw.headers.forEach((value, name) => (bag[name] = value));
      this.bag = bag;
    }
    return this.bag;
  }

  headerValues(name: string): string[] {
    const value = this.native.req.raw.headers.get(name);
    return value === null ? [] : [value];
  }

  get query(): unknown {
    return this.native.req.query();
  }

  /** Hono reads params for the route at `routeIndex`: the handler's, for a moment. */
  get params(): unknown {
    const { req } = this.native;
    const index = this.handler;
    if (index < 0) return req.param();
    const own = req.routeIndex;
    req.routeIndex = index;
    try {
      return req.param();
    } finally {
      req.routeIndex = own;
    }
  }
}

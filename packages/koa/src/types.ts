import type { IncomingMessage, ServerResponse } from 'node:http';

/** The parts of a Koa context idem uses (Koa 2 and 3 both fit). */
export interface KoaContext {
  method: string;
  path: string;
  querystring: string;
  headers: IncomingMessage['headers'];
  query: unknown;
  params?: unknown;
  _matchedRoute?: unknown;
  status: number;
  message: string;
  body: unknown;
  type: string;
  respond?: boolean;
  /** True once the response head went out. */
  headerSent?: boolean;
  req: IncomingMessage;
  res: ServerResponse;
  request: { body?: unknown };
  response: { headers: Record<string, string | string[] | number | undefined>; get(field: string): string };
  set(field: string, value: string | string[]): void;
  remove(field: string): void;
}

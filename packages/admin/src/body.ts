/**
 * The JSON body of an admin request, for both adapters: what a body parser mounted before the
 * admin API already parsed, else read here from the request stream, bounded by `maxBodyBytes`.
 */
import type { IncomingMessage } from 'node:http';
import { AdminError, invalid } from './errors.js';

const JSON_TYPE = /^application\/([\w.+-]+\+)?json\s*(;|$)/i;

/**
 * The body: `parsed` when something already read the stream (express.json(), @koa/bodyparser),
 * else the stream's bytes as JSON. Undefined for an empty body.
 */
export async function readJsonBody(req: IncomingMessage, parsed: unknown, limit: number): Promise<unknown> {
  if (req.readableDidRead || req.readableEnded) {
    if (parsed !== undefined) return parsed;
    throw invalid('The request body was read by another middleware, which left no parsed body.');
  }
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) {
    req.resume();
    throw new AdminError('body_too_large', `The request body is over ${limit} bytes.`);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) {
      req.resume();
      throw new AdminError('body_too_large', `The request body is over ${limit} bytes.`);
    }
    chunks.push(chunk);
  }
  if (size === 0) return undefined;
  const type = req.headers['content-type'] ?? '';
  if (!JSON_TYPE.test(type))
    throw new AdminError('media_type_unsupported', 'The request body must be JSON (Content-Type: application/json).');
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
  } catch {
    throw invalid('The request body is not valid JSON.');
  }
}

import { createServer } from 'node:http';
import { getRequestListener } from '@hono/node-server';
import { Hono, type Context } from 'hono';
import { setCookie } from 'hono/cookie';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { executionOf } from '@idem/core';
import { idempotent } from '@idem/hono';
import {
  Probe,
  TIMEOUT_BODY,
  serve,
  type AdapterUnderTest,
  type ScenarioApp,
  type ScenarioAppOptions,
} from './scenario.js';

/** A web stream of the given chunks, one read each. */
function chunks(...parts: (string | Uint8Array)[]): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  return new ReadableStream({
    pull(controller) {
      const part = parts.shift();
      if (part === undefined) controller.close();
      else controller.enqueue(typeof part === 'string' ? encoder.encode(part) : part);
    },
  });
}

/** Hono's default error handling (an HTTPException's own response, else a 500), without its console.error. */
function quietErrors(error: Error, c: Context): Response {
  if ('getResponse' in error) return (error as { getResponse(): Response }).getResponse();
  return c.text('Internal Server Error', 500);
}

/** The scenario app on Hono 4, served on Node by @hono/node-server, idempotent() mounted with app.use(). */
export function honoAdapter(name: string): AdapterUnderTest {
  return {
    name,
    async start(options: ScenarioAppOptions): Promise<ScenarioApp> {
      const probe = new Probe();
      const app = new Hono();
      app.onError(quietErrors);
      app.use(async (c, next) => {
        probe.arrived();
        const origin = c.req.header('origin');
        if (origin) c.header('Access-Control-Allow-Origin', origin);
        await next();
      });
      if (options.requestTimeout) {
        // What a request-timeout middleware does: answer once the time is up, and let the rest run on.
        app.use(async (c, next) => {
          const ms = Number(c.req.header('x-timeout-ms'));
          if (!(ms > 0)) return next();
          let timer: NodeJS.Timeout | undefined;
          const timedOut = new Promise<'timeout'>((resolve) => (timer = setTimeout(resolve, ms, 'timeout')));
          const rest = next();
          const first = await Promise.race([rest.then(() => 'done' as const), timedOut]);
          clearTimeout(timer);
          if (first === 'done') return;
          void rest.catch((error: unknown) => {
            throw error;
          });
          return c.json(TIMEOUT_BODY, 503);
        });
      }
      if (options.parserAfter) {
        // Hono has no body parser to mount after idem: idem reads the body itself, through Hono's
        // cache. What it cannot read is a body something before it consumed from the raw Request.
        app.use(async (c, next) => {
          await c.req.raw.arrayBuffer();
          await next();
        });
      }
      const mw = idempotent(options.idempotency as never);
      app.use(mw);
      app.post('/orders', async (c) => {
        const n = probe.ran('orders');
        setCookie(c, 'session', `s${n}`);
        c.header('X-Order-Trace', `trace-${n}`);
        c.header('Location', `/orders/${n}`);
        return c.json({ id: `ord_${n}`, n, body: await c.req.json() }, 201);
      });
      app.post('/empty', (c) => {
        const n = probe.ran('empty');
        c.header('Location', `/things/${n}`);
        return c.body(null, 201);
      });
      app.post('/buffer', (c) => {
        probe.ran('buffer');
        c.header('Content-Type', 'application/octet-stream');
        return c.body(new Uint8Array(Array.from({ length: 256 }, (_, i) => i)));
      });
      app.post('/chunked', (c) => {
        const n = probe.ran('chunked');
        c.header('Content-Type', 'text/plain; charset=utf-8');
        return c.body(chunks('first,', new TextEncoder().encode('second,'), `third-${n}`));
      });
      app.post('/fail', (c) => {
        const n = probe.ran('fail');
        return c.json({ error: 'boom', n }, 500);
      });
      app.post('/throw', () => {
        probe.ran('throw');
        throw new Error('handler exploded');
      });
      app.post('/slow', async (c) => {
        const n = probe.ran('slow');
        await probe.gate.wait();
        return c.json({ n, body: await c.req.json() });
      });
      app.post('/flaky', (c) => {
        const n = probe.ran('flaky');
        if (n === 1) throw new Error('first run fails');
        return c.json({ n });
      });
      app.post('/echo', async (c) => {
        const n = probe.ran('echo');
        return c.json({ n, body: await c.req.json() });
      });
      app.post('/status/:code', (c) => {
        const n = probe.ran(`status-${c.req.param('code')}`);
        return c.json({ n }, Number(c.req.param('code')) as ContentfulStatusCode);
      });
      app.post('/big', (c) => {
        const n = probe.ran('big');
        const text = String(n % 10).repeat(Number(c.req.query('size')));
        c.header('Content-Type', 'text/plain');
        // A stream, so the cap is exercised on streamed bodies too.
        return c.body(chunks(...(text.match(/.{1,700}/gs) ?? [])));
      });
      app.post('/respond', async (c) => {
        probe.ran('respond');
        const spec = (await c.req.json()) as { status: number; headers: Record<string, string>; base64: string };
        return c.body(Buffer.from(spec.base64, 'base64'), spec.status as ContentfulStatusCode, spec.headers);
      });
      app.post('/execution', (c) => {
        probe.ran('execution');
        return c.json({ key: executionOf(c)?.key ?? null });
      });
      const listener = getRequestListener(app.fetch);
      return serve(
        createServer((req, res) => void listener(req, res)),
        probe,
        mw.events,
      );
    },
  };
}

import { Readable } from 'node:stream';
import bodyParser from '@koa/bodyparser';
import Router from '@koa/router';
import type Koa from 'koa';
import { executionOf } from '@idem/core';
import { idempotent } from '@idem/koa';
import {
  Probe,
  TIMEOUT_BODY,
  koaServer,
  serve,
  type AdapterUnderTest,
  type ScenarioApp,
  type ScenarioAppOptions,
} from './scenario.js';

/** The scenario app on a given Koa (2 or 3), with @koa/router. */
export function koaAdapter(name: string, KoaClass: typeof Koa): AdapterUnderTest {
  return {
    name,
    async start(options: ScenarioAppOptions): Promise<ScenarioApp> {
      const probe = new Probe();
      const app = new KoaClass();
      app.silent = true;
      app.use(async (ctx, next) => {
        probe.arrived();
        if (ctx.get('origin')) ctx.set('Access-Control-Allow-Origin', ctx.get('origin'));
        await next();
      });
      if (options.requestTimeout) {
        // What koa-timeout and its kin do: answer once the time is up, and let the rest run on.
        app.use(async (ctx, next) => {
          const ms = Number(ctx.get('x-timeout-ms'));
          if (!(ms > 0)) return next();
          let timer: NodeJS.Timeout | undefined;
          const timedOut = new Promise<'timeout'>((resolve) => (timer = setTimeout(resolve, ms, 'timeout')));
          const rest = next();
          const first = await Promise.race([rest.then(() => 'done' as const), timedOut]);
          clearTimeout(timer);
          if (first === 'done') return;
          // Answered already. A late failure behind it must not pass unnoticed: left unhandled, the
          // test runner reports it.
          void rest.catch((error: unknown) => {
            throw error;
          });
          ctx.status = 503;
          ctx.body = TIMEOUT_BODY;
        });
      }
      const mw = idempotent(options.idempotency as never);
      if (options.parserAfter) {
        app.use(mw);
        app.use(bodyParser());
      } else {
        app.use(bodyParser());
        app.use(mw);
      }
      const router = new Router();
      router.post('/orders', (ctx) => {
        const n = probe.ran('orders');
        ctx.cookies.set('session', `s${n}`);
        ctx.set('X-Order-Trace', `trace-${n}`);
        ctx.set('Location', `/orders/${n}`);
        ctx.status = 201;
        ctx.body = { id: `ord_${n}`, n, body: ctx.request.body };
      });
      router.post('/empty', (ctx) => {
        const n = probe.ran('empty');
        ctx.set('Location', `/things/${n}`);
        ctx.status = 201;
        ctx.body = '';
      });
      router.post('/buffer', (ctx) => {
        probe.ran('buffer');
        ctx.type = 'application/octet-stream';
        ctx.body = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
      });
      router.post('/chunked', (ctx) => {
        const n = probe.ran('chunked');
        ctx.type = 'text/plain; charset=utf-8';
        ctx.body = Readable.from(['first,', Buffer.from('second,'), `third-${n}`]);
      });
      router.post('/fail', (ctx) => {
        const n = probe.ran('fail');
        ctx.status = 500;
        ctx.body = { error: 'boom', n };
      });
      router.post('/throw', () => {
        probe.ran('throw');
        throw new Error('handler exploded');
      });
      router.post('/slow', async (ctx) => {
        const n = probe.ran('slow');
        await probe.gate.wait();
        ctx.body = { n, body: ctx.request.body };
      });
      router.post('/flaky', (ctx) => {
        const n = probe.ran('flaky');
        if (n === 1) ctx.throw(500, 'first run fails');
        ctx.body = { n };
      });
      router.post('/echo', (ctx) => {
        const n = probe.ran('echo');
        ctx.body = { n, body: ctx.request.body };
      });
      router.post('/status/:code', (ctx) => {
        const n = probe.ran(`status-${ctx.params.code}`);
        ctx.status = Number(ctx.params.code);
        ctx.body = { n };
      });
      router.post('/big', (ctx) => {
        const n = probe.ran('big');
        const text = String(n % 10).repeat(Number(ctx.query.size));
        ctx.type = 'text/plain';
        // A stream, so the cap is exercised on streamed bodies too.
        ctx.body = Readable.from(text.match(/.{1,700}/gs) ?? []);
      });
      router.post('/respond', (ctx) => {
        probe.ran('respond');
        const spec = ctx.request.body as { status: number; headers: Record<string, string>; base64: string };
        ctx.status = spec.status;
        for (const [name, value] of Object.entries(spec.headers)) ctx.set(name, value);
        ctx.body = Buffer.from(spec.base64, 'base64');
      });
      router.post('/execution', (ctx) => {
        probe.ran('execution');
        ctx.body = { key: executionOf(ctx)?.key ?? null };
      });
      app.use(router.routes());
      return serve(koaServer(app), probe, mw.events);
    },
  };
}

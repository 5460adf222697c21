import { Readable } from 'node:stream';
import Fastify from 'fastify';
import { executionOf } from '@idem/core';
import { idempotent } from '@idem/fastify';
import {
  Probe,
  TIMEOUT_BODY,
  serve,
  type AdapterUnderTest,
  type ScenarioApp,
  type ScenarioAppOptions,
} from './scenario.js';

/** The scenario app on Fastify 5, with @idem/fastify registered at the root. */
export function fastifyAdapter(name: string): AdapterUnderTest {
  return {
    name,
    async start(options: ScenarioAppOptions): Promise<ScenarioApp> {
      const probe = new Probe();
      const app = Fastify();
      app.addHook('onRequest', (request, reply, done) => {
        probe.arrived();
        if (request.headers.origin) reply.header('access-control-allow-origin', request.headers.origin);
        done();
      });
      if (options.requestTimeout) {
        // What a request-timeout hook does: answer once the time is up, whatever runs behind.
        app.addHook('onRequest', (request, reply, done) => {
          const ms = Number(request.headers['x-timeout-ms']);
          if (ms > 0) {
            const timer = setTimeout(() => void (reply.sent || reply.code(503).send(TIMEOUT_BODY)), ms);
            reply.raw.on('close', () => clearTimeout(timer));
          }
          done();
        });
      }
      if (options.parserAfter) {
        // Fastify parses bodies before any hook idem can run in; the misconfiguration it can have is
        // a parser that hands the body on unread (to stream it in the handler).
        app.removeContentTypeParser('application/json');
        app.addContentTypeParser('application/json', (_request, _payload, done) => done(null));
      }
      await app.register(idempotent, options.idempotency as never);
      app.post('/orders', async (request, reply) => {
        const n = probe.ran('orders');
        reply.header('set-cookie', `session=s${n}; Path=/`);
        reply.header('X-Order-Trace', `trace-${n}`);
        reply.header('location', `/orders/${n}`);
        return reply.code(201).send({ id: `ord_${n}`, n, body: request.body });
      });
      app.post('/empty', async (_request, reply) => {
        const n = probe.ran('empty');
        return reply.code(201).header('location', `/things/${n}`).send();
      });
      app.post('/buffer', async (_request, reply) => {
        probe.ran('buffer');
        return reply.type('application/octet-stream').send(Buffer.from(Array.from({ length: 256 }, (_, i) => i)));
      });
      app.post('/chunked', async (_request, reply) => {
        const n = probe.ran('chunked');
        reply.type('text/plain; charset=utf-8');
        return reply.send(Readable.from(['first,', Buffer.from('second,'), `third-${n}`]));
      });
      app.post('/fail', async (_request, reply) => {
        const n = probe.ran('fail');
        return reply.code(500).send({ error: 'boom', n });
      });
      app.post('/throw', async () => {
        probe.ran('throw');
        throw new Error('handler exploded');
      });
      app.post('/slow', async (request) => {
        const n = probe.ran('slow');
        await probe.gate.wait();
        return { n, body: request.body };
      });
      app.post('/flaky', async () => {
        const n = probe.ran('flaky');
        if (n === 1) throw new Error('first run fails');
        return { n };
      });
      app.post('/echo', async (request) => {
        const n = probe.ran('echo');
        return { n, body: request.body };
      });
      app.post<{ Params: { code: string } }>('/status/:code', async (request, reply) => {
        const n = probe.ran(`status-${request.params.code}`);
        return reply.code(Number(request.params.code)).send({ n });
      });
      app.post<{ Querystring: { size: string } }>('/big', async (request, reply) => {
        const n = probe.ran('big');
        const text = String(n % 10).repeat(Number(request.query.size));
        // A stream, so the cap is exercised on streamed bodies too.
        return reply.type('text/plain').send(Readable.from(text.match(/.{1,700}/gs) ?? []));
      });
      app.post('/respond', async (request, reply) => {
        probe.ran('respond');
        const spec = request.body as { status: number; headers: Record<string, string>; base64: string };
        reply.code(spec.status);
        for (const [name, value] of Object.entries(spec.headers)) reply.header(name, value);
        return reply.send(Buffer.from(spec.base64, 'base64'));
      });
      app.post('/execution', async (request) => {
        probe.ran('execution');
        return { key: executionOf(request)?.key ?? null };
      });
      await app.ready();
      return serve(app.server, probe, app.idempotency.events);
    },
  };
}

import { createServer } from 'node:http';
import type { Express, NextFunction, Request, Response } from 'express';
import { executionOf } from '@idem/core';
import { idempotent } from '@idem/express';
import {
  Probe,
  TIMEOUT_BODY,
  serve,
  type AdapterUnderTest,
  type ScenarioApp,
  type ScenarioAppOptions,
} from './scenario.js';

type ExpressFactory = (() => Express) & { json: () => unknown; raw: (o?: object) => unknown };

/** The scenario app on a given Express (4 or 5). */
export function expressAdapter(name: string, express: ExpressFactory): AdapterUnderTest {
  return {
    name,
    async start(options: ScenarioAppOptions): Promise<ScenarioApp> {
      const probe = new Probe();
      const app = express();
      app.use((req: Request, res: Response, next: NextFunction) => {
        probe.arrived();
        if (req.headers.origin) res.setHeader('access-control-allow-origin', req.headers.origin);
        next();
      });
      if (options.requestTimeout) {
        // What connect-timeout and its kin do: answer once the time is up, whatever runs behind.
        app.use((req: Request, res: Response, next: NextFunction) => {
          const ms = Number(req.headers['x-timeout-ms']);
          if (ms > 0) {
            const timer = setTimeout(() => void (res.headersSent || res.status(503).json(TIMEOUT_BODY)), ms);
            res.on('close', () => clearTimeout(timer));
          }
          next();
        });
      }
      const mw = idempotent(options.idempotency as never);
      if (options.parserAfter) {
        app.use(mw as never);
        app.use(express.json() as never);
      } else {
        app.use(express.json() as never);
        app.use(mw as never);
      }
      app.post('/orders', (req: Request, res: Response) => {
        const n = probe.ran('orders');
        res.cookie('session', `s${n}`);
        res.set('X-Order-Trace', `trace-${n}`);
        res
          .location(`/orders/${n}`)
          .status(201)
          .json({ id: `ord_${n}`, n, body: req.body });
      });
      app.post('/empty', (_req: Request, res: Response) => {
        const n = probe.ran('empty');
        res.status(201).location(`/things/${n}`).end();
      });
      app.post('/buffer', (_req: Request, res: Response) => {
        probe.ran('buffer');
        res.type('application/octet-stream').end(Buffer.from(Array.from({ length: 256 }, (_, i) => i)));
      });
      app.post('/chunked', (_req: Request, res: Response) => {
        const n = probe.ran('chunked');
        res.setHeader('content-type', 'text/plain; charset=utf-8');
        res.write('first,');
        res.write(Buffer.from('second,'));
        res.end(`third-${n}`);
      });
      app.post('/fail', (_req: Request, res: Response) => {
        const n = probe.ran('fail');
        res.status(500).json({ error: 'boom', n });
      });
      app.post('/throw', () => {
        probe.ran('throw');
        throw new Error('handler exploded');
      });
      app.post('/slow', async (req: Request, res: Response) => {
        const n = probe.ran('slow');
        await probe.gate.wait();
        res.json({ n, body: req.body });
      });
      app.post('/flaky', (_req: Request, res: Response) => {
        const n = probe.ran('flaky');
        if (n === 1) throw new Error('first run fails');
        res.json({ n });
      });
      app.post('/echo', (req: Request, res: Response) => {
        const n = probe.ran('echo');
        res.json({ n, body: req.body });
      });
      app.post('/status/:code', (req: Request, res: Response) => {
        const n = probe.ran(`status-${req.params.code}`);
        res.status(Number(req.params.code)).json({ n });
      });
      app.post('/big', (req: Request, res: Response) => {
        const n = probe.ran('big');
        res.type('text/plain').send(String(n % 10).repeat(Number(req.query.size)));
      });
      app.post('/respond', (req: Request, res: Response) => {
        probe.ran('respond');
        const spec = req.body as { status: number; headers: Record<string, string>; base64: string };
        res.status(spec.status);
        for (const [name, value] of Object.entries(spec.headers)) res.setHeader(name, value);
        res.end(Buffer.from(spec.base64, 'base64'));
      });
      app.post('/execution', (req: Request, res: Response) => {
        probe.ran('execution');
        res.json({ key: executionOf(req)?.key ?? null });
      });
      return serve(createServer(app), probe, mw.events);
    },
  };
}

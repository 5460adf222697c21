/**
 * What an Express client is answered in the corners found by review, over real HTTP on Express 4
 * and 5: a response that already streamed out live while a transactional store undid its writes is
 * cut off, never completed as a success; and a socket the server timed out counts as a client that
 * left (the handler's result is still stored, so a retry replays instead of running it again).
 */
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import express5, { type NextFunction, type Request, type Response } from 'express';
import express4 from 'express4';
import { memoryStore, type IdempotencyStore } from '@idem/core';
import { idempotent } from '@idem/express';
import { afterEach, describe, expect, it } from 'vitest';
import { Probe, serve, type ScenarioApp } from '../apps/scenario.js';
import { post } from './scenarios.js';

/** The memory store, declared transactional: what it cannot keep, it "undid". */
function transactionalStore(): IdempotencyStore {
  return { ...memoryStore(), name: 'transactional-memory', transactional: true };
}

async function start(
  express: typeof express5,
  store: IdempotencyStore,
  serverTimeoutMs?: number,
): Promise<ScenarioApp & { errors: unknown[] }> {
  const probe = new Probe();
  const errors: unknown[] = [];
  const app = express();
  const mw = idempotent({ store, maxBodyBytes: 1000 });
  app.use(express.json(), mw);
  app.post('/stream', (_req: Request, res: Response) => {
    probe.ran('stream');
    res.type('text/plain');
    // Three writes of 600 bytes: the second outgrows maxBodyBytes and goes out live.
    for (let i = 0; i < 2; i++) res.write('x'.repeat(600));
    res.end('y'.repeat(600));
  });
  app.post('/slow', async (_req: Request, res: Response) => {
    const n = probe.ran('slow');
    await probe.gate.wait();
    res.status(201).json({ n });
  });
  app.use((error: unknown, _req: Request, res: Response, next: NextFunction) => {
    errors.push(error);
    next(error);
  });
  const server = createServer(app);
  if (serverTimeoutMs !== undefined) server.setTimeout(serverTimeoutMs);
  return Object.assign(await serve(server, probe, mw.events), { errors });
}

for (const [name, express] of [
  ['Express 5', express5],
  ['Express 4', express4 as unknown as typeof express5],
] as const) {
  describe(`Express answers: ${name}`, () => {
    let app: (ScenarioApp & { errors: unknown[] }) | undefined;
    afterEach(async () => {
      app?.probe.gate.open();
      await app?.close();
    });

    it('a response that streamed out live is cut off when a transactional store could not keep it', async () => {
      app = await start(express, transactionalStore());
      const key = randomUUID();
      const outcome = await fetch(`${app.url}/stream`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'idempotency-key': key },
        body: '{}',
      }).then(
        async (res) => ({
          status: res.status,
          body: await res.text().then(
            (t) => t.length,
            () => 'cut off' as const,
          ),
        }),
        () => ({ status: 0, body: 'cut off' as const }),
      );
      // The head may have gone out, the end never did: the client cannot take it for a success.
      expect(outcome.body).toBe('cut off');
      expect(app.errors).toEqual([]);
      expect(app.probe.count('stream')).toBe(1);
    });

    it('the same response on a store that is not transactional ends whole, unstored', async () => {
      app = await start(express, memoryStore());
      const key = randomUUID();
      for (let i = 0; i < 2; i++) {
        const res = await post(app, '/stream', { key });
        expect(res.status).toBe(200);
        expect(res.body.length).toBe(1800);
        expect(res.headers.get('idempotent-replayed')).toBeNull();
      }
      expect(app.probe.count('stream')).toBe(2);
    });

    it('a socket the server timed out is a client that left: the running handler keeps its key and its result is stored', async () => {
      app = await start(express, memoryStore(), 100);
      const key = randomUUID();
      const first = post(app, '/slow', { key }).catch(() => 'timed out' as const);
      await app.probe.running('slow');
      expect(await first).toBe('timed out');
      // The handler still runs: a retry is in flight, not a second run.
      expect((await post(app, '/slow', { key })).status).toBe(409);
      const stored = new Promise<string>((resolve) => app?.events.once('execute', (e) => resolve(e.outcome)));
      app.probe.gate.open();
      expect(await stored).toBe('stored');
      const replay = await post(app, '/slow', { key });
      expect(replay.status).toBe(201);
      expect(replay.headers.get('idempotent-replayed')).toBe('true');
      expect(app.probe.count('slow')).toBe(1);
    });
  });
}

/**
 * A connection that closes before the response ended, on Express 4 and 5 over real HTTP: the
 * adapter aborts the execution (the key is free at once, a retry runs) when nothing is left that
 * will end the response, and keeps waiting for a handler that may still end it (then it is
 * stored: 'a client that disconnects does not cancel the store' in the scenario suite).
 */
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import { PassThrough, Readable, pipeline } from 'node:stream';
import express5, { type Request, type Response } from 'express';
import express4 from 'express4';
import type { ExecuteOutcome } from '@idem/core';
import { idempotent } from '@idem/express';
import { afterEach, describe, expect, it } from 'vitest';
import { Probe, serve, type ScenarioApp } from '../apps/scenario.js';
import { post } from './scenarios.js';

/** A source that gives one chunk and then nothing more until it is closed. */
function endless(): PassThrough {
  const source = new PassThrough();
  source.write('first,');
  return source;
}

async function start(express: typeof express5): Promise<ScenarioApp> {
  const probe = new Probe();
  const app = express();
  const mw = idempotent();
  app.use(express.json(), mw);
  app.post('/pipe', (_req: Request, res: Response) => {
    probe.ran('pipe');
    res.type('text/plain');
    endless().pipe(res);
  });
  app.post('/pipeline', (_req: Request, res: Response) => {
    probe.ran('pipeline');
    pipeline(endless(), res, () => {});
  });
  app.post('/destroy', (_req: Request, res: Response) => {
    probe.ran('destroy');
    setImmediate(() => res.destroy());
  });
  app.post('/destroy-error', (_req: Request, res: Response) => {
    probe.ran('destroy-error');
    setImmediate(() => res.destroy(new Error('gave up')));
  });
  app.post('/finite-pipe', (_req: Request, res: Response) => {
    const n = probe.ran('finite-pipe');
    res.type('text/plain');
    Readable.from(['one,', 'two,', `three-${n}`]).pipe(res);
  });
  return serve(createServer(app), probe, mw.events);
}

/** Resolves with the outcome of the next `execute` event. */
function nextOutcome(app: ScenarioApp): Promise<ExecuteOutcome> {
  return new Promise((resolve) => app.events.once('execute', (e) => resolve(e.outcome)));
}

/** POSTs with a key and hangs up once the handler has started for the `run`-th time. */
async function leaveDuring(app: ScenarioApp, path: string, key: string, run: number): Promise<void> {
  const controller = new AbortController();
  const request = fetch(app.url + path, {
    method: 'POST',
    signal: controller.signal,
    headers: { 'content-type': 'application/json', 'idempotency-key': key },
    body: '{}',
  })
    .then((res) => res.arrayBuffer())
    .catch(() => undefined);
  await app.probe.running(path.slice(1), run);
  controller.abort();
  await request;
}

for (const [name, express] of [
  ['Express 5', express5],
  ['Express 4', express4 as unknown as typeof express5],
] as const) {
  describe(`connection closed before the response ended: ${name}`, () => {
    let app: ScenarioApp | undefined;
    afterEach(async () => {
      await app?.close();
    });

    for (const path of ['/pipe', '/pipeline']) {
      it(`a client that leaves while the handler streams into res (${path.slice(1)}) frees the key: a retry runs`, async () => {
        app = await start(express);
        const key = randomUUID();
        const outcome = nextOutcome(app);
        await leaveDuring(app, path, key, 1);
        // The source was unpiped from the closed response: nothing will end it, so the key is released.
        expect(await outcome).toBe('failed');
        const retried = nextOutcome(app);
        await leaveDuring(app, path, key, 2);
        expect(await retried).toBe('failed');
        expect(app.probe.count(path.slice(1))).toBe(2);
      });
    }

    for (const path of ['/destroy', '/destroy-error']) {
      it(`a handler that destroys its response (${path.slice(1)}) frees the key: a retry runs`, async () => {
        app = await start(express);
        const key = randomUUID();
        const outcome = nextOutcome(app);
        await expect(post(app, path, { key })).rejects.toThrow();
        expect(await outcome).toBe('failed');
        await expect(post(app, path, { key })).rejects.toThrow();
        expect(app.probe.count(path.slice(1))).toBe(2);
      });
    }

    it('a piped stream that ends is stored and replayed as usual', async () => {
      app = await start(express);
      const key = randomUUID();
      const first = await post(app, '/finite-pipe', { key });
      expect(first.body.toString()).toBe('one,two,three-1');
      const replay = await post(app, '/finite-pipe', { key });
      expect(replay.headers.get('idempotent-replayed')).toBe('true');
      expect(replay.body.equals(first.body)).toBe(true);
      expect(app.probe.count('finite-pipe')).toBe(1);
    });
  });
}

/**
 * maxHold over HTTP, on every adapter: a handler that never finishes must not hold its key for
 * ever. Past maxHold the key is free (a retry runs), and the stuck handler's late answer still
 * reaches its client but is not stored.
 */
import express from 'express';
import express4 from 'express4';
import Koa from 'koa';
import Koa2 from 'koa2';
import { randomUUID } from 'node:crypto';
import type { IdempotencyEventMap } from '@idem/core';
import { afterEach, describe, expect, it } from 'vitest';
import { expressAdapter } from '../apps/express-app.js';
import { koaAdapter } from '../apps/koa-app.js';
import type { ScenarioApp } from '../apps/scenario.js';
import { post } from './scenarios.js';

for (const adapter of [
  expressAdapter('Express 5', express as never),
  expressAdapter('Express 4', express4 as never),
  koaAdapter('Koa 3', Koa),
  koaAdapter('Koa 2', Koa2 as never),
]) {
  describe(`maxHold: ${adapter.name}`, () => {
    let app: ScenarioApp | undefined;
    afterEach(async () => {
      app?.probe.gate.open();
      await app?.close();
    });

    it('frees the key of a handler that runs past maxHold; the late answer is sent, not stored', async () => {
      app = await adapter.start({ idempotency: { maxHold: '150ms', lockTtl: '30s' } });
      const key = randomUUID();
      const given = new Promise<IdempotencyEventMap['execute']>((resolve) => app?.events.once('execute', resolve));
      const stuck = post(app, '/slow', { key });
      await app.probe.running('slow');
      // While it holds the key, a duplicate is in flight.
      expect((await post(app, '/slow', { key })).status).toBe(409);
      expect((await given).outcome).toBe('max_hold');

      // The key is free: a retry runs the handler again.
      const retry = post(app, '/slow', { key });
      await app.probe.running('slow', 2);
      app.probe.gate.open();
      const [late, second] = await Promise.all([stuck, retry]);
      expect(late.status).toBe(200);
      expect(late.headers.get('idempotent-replayed')).toBeNull();
      expect(second.status).toBe(200);

      // What is replayed is the retry's answer, the one that was stored.
      const replay = await post(app, '/slow', { key });
      expect(replay.headers.get('idempotent-replayed')).toBe('true');
      expect(replay.json()).toEqual(second.json());
      expect(app.probe.count('slow')).toBe(2);
    });
  });
}

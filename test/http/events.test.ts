/**
 * The events that observers (metrics, tracing) are built on, seen over HTTP on every adapter:
 * `rejected` for the 400s answered before any store call, `storeCall` for each store call with its
 * operation and monotonic duration, and `wait` once per waiting duplicate.
 */
import express from 'express';
import Koa from 'koa';
import { randomUUID } from 'node:crypto';
import type { IdempotencyEventMap } from '@idem/core';
import { afterEach, describe, expect, it } from 'vitest';
import { expressAdapter } from '../apps/express-app.js';
import { koaAdapter } from '../apps/koa-app.js';
import type { ScenarioApp } from '../apps/scenario.js';
import { post } from './scenarios.js';

for (const adapter of [expressAdapter('Express 5', express as never), koaAdapter('Koa 3', Koa)]) {
  describe(`observer events: ${adapter.name}`, () => {
    let app: ScenarioApp | undefined;
    afterEach(async () => {
      app?.probe.gate.open();
      await app?.close();
    });

    it('tells a missing and a malformed key apart in `rejected`, before any store call', async () => {
      app = await adapter.start({ idempotency: { required: true } });
      const rejected: IdempotencyEventMap['rejected'][] = [];
      const calls: IdempotencyEventMap['storeCall'][] = [];
      app.events.on('rejected', (e) => rejected.push(e));
      app.events.on('storeCall', (e) => calls.push(e));

      expect((await post(app, '/orders')).status).toBe(400);
      expect((await post(app, '/orders', { key: '' })).status).toBe(400);
      expect(rejected.map((e) => e.code)).toEqual(['key_missing', 'key_invalid']);
      expect(calls).toEqual([]);
    });

    it('reports each store call of a first execution and of its replay, with a duration', async () => {
      app = await adapter.start({ idempotency: {} });
      const calls: IdempotencyEventMap['storeCall'][] = [];
      app.events.on('storeCall', (e) => calls.push(e));
      const key = randomUUID();
      const before = Date.now();

      expect((await post(app, '/orders', { key })).status).toBe(201);
      expect((await post(app, '/orders', { key })).headers.get('idempotent-replayed')).toBe('true');

      // The memory store answers a read and a claim in one call (getOrClaim).
      expect(calls.map((c) => [c.operation, c.ok])).toEqual([
        ['getOrClaim', true],
        ['complete', true],
        ['getOrClaim', true],
      ]);
      // Mounted app-wide, the route is known once the router has matched: at `complete`.
      expect(calls.map((c) => c.route)).toEqual([undefined, '/orders', undefined]);
      for (const call of calls) {
        expect(call.key).toMatch(/^[0-9a-f]{64}$/);
        expect(call.store).toBe('memory');
        expect(call.durationMs).toBeGreaterThanOrEqual(0);
        expect(call.startTime).toBeGreaterThanOrEqual(before - 1);
        expect(call.startTime).toBeLessThanOrEqual(Date.now());
      }
    });

    it('emits `wait` once for a duplicate that waits, then replays it', async () => {
      app = await adapter.start({ idempotency: { concurrent: 'wait', waitTimeout: '10s' } });
      const waits: IdempotencyEventMap['wait'][] = [];
      app.events.on('wait', (e) => waits.push(e));
      const waited = new Promise((resolve) => app?.events.once('wait', resolve));
      const key = randomUUID();

      const first = post(app, '/slow', { key });
      await app.probe.running('slow');
      const duplicate = post(app, '/slow', { key });
      await waited;
      app.probe.gate.open();
      const [a, b] = await Promise.all([first, duplicate]);

      expect(a.status).toBe(200);
      expect(b.headers.get('idempotent-replayed')).toBe('true');
      expect(waits).toHaveLength(1);
      expect(waits[0]?.key).toMatch(/^[0-9a-f]{64}$/);
      expect(app.probe.count('slow')).toBe(1);
    });
  });
}

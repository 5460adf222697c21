/**
 * Express-specific mounting: route middleware and routers, where the default scope uses the
 * route pattern, not the concrete path.
 */
import express from 'express';
import express4 from 'express4';
import request from 'supertest';
import { idempotent } from '@idem/express';
import { describe, expect, it } from 'vitest';

describe.each([
  ['Express 5', express],
  ['Express 4', express4 as unknown as typeof express],
])('%s mounting', (_name, framework) => {
  it('works as route middleware, with its own options per route', async () => {
    const app = framework();
    app.use(framework.json());
    let runs = 0;
    app.post('/payments', idempotent({ required: true }), (_req, res) => {
      runs++;
      res.status(201).json({ runs });
    });
    app.post('/notes', (_req, res) => {
      runs++;
      res.json({ runs });
    });
    expect((await request(app).post('/payments').send({})).status).toBe(400);
    const first = await request(app).post('/payments').set('Idempotency-Key', 'p1').send({ a: 1 });
    const again = await request(app).post('/payments').set('Idempotency-Key', 'p1').send({ a: 1 });
    expect(again.text).toBe(first.text);
    expect(again.headers['idempotent-replayed']).toBe('true');
    // Unprotected routes are untouched, key or not.
    await request(app).post('/notes').set('Idempotency-Key', 'p1').send({});
    await request(app).post('/notes').set('Idempotency-Key', 'p1').send({});
    expect(runs).toBe(3);
  });

  it('scopes keys by route pattern on a router, so one key on two resources is two keys', async () => {
    const app = framework();
    app.use(framework.json());
    const router = framework.Router();
    const runs: string[] = [];
    router.post('/orders/:id/refund', idempotent(), (req, res) => {
      runs.push(req.params.id as string);
      res.json({ refunded: req.params.id });
    });
    router.post('/orders/:id/cancel', idempotent(), (req, res) => {
      runs.push(`cancel-${req.params.id as string}`);
      res.json({ cancelled: req.params.id });
    });
    app.use('/api', router);
    const a = await request(app).post('/api/orders/1/refund').set('Idempotency-Key', 'k').send({});
    expect(a.status).toBe(200);
    // Same key, same route pattern, another order: the same scope, but the path is part of the
    // fingerprint, so this is a reused key, not a replay of order 1's refund.
    const b = await request(app).post('/api/orders/2/refund').set('Idempotency-Key', 'k').send({});
    expect(b.status).toBe(422);
    // Same key on another route: a different scope, so it runs.
    const c = await request(app).post('/api/orders/1/cancel').set('Idempotency-Key', 'k').send({});
    expect(c.headers['idempotent-replayed']).toBeUndefined();
    expect(runs).toEqual(['1', 'cancel-1']);
  });
});

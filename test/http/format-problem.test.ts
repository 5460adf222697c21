/**
 * `formatProblem`: idem's own answers in the API's error format. Checked over HTTP on every
 * adapter for each status idem answers with (400, 409, 422, 503), with a Stripe-style body — the
 * format whose SDK only recognises an error by its `error` field.
 */
import express from 'express';
import Koa from 'koa';
import { randomUUID } from 'node:crypto';
import { IdempotencyConfigError, memoryStore, type FormattedProblem, type ProblemDetails } from '@idem/core';
import { idempotent } from '@idem/express';
import { afterEach, describe, expect, it } from 'vitest';
import { expressAdapter } from '../apps/express-app.js';
import { koaAdapter } from '../apps/koa-app.js';
import type { ScenarioApp } from '../apps/scenario.js';
import { chaosStore } from '../harness/chaos-store.js';
import { post } from './scenarios.js';

/** Stripe's error shape, and its header telling the SDK whether a retry can succeed. */
function stripeStyle(problem: ProblemDetails): FormattedProblem {
  const retryable = problem.status === 409 || problem.status === 503;
  return {
    headers: { 'stripe-should-retry': String(retryable) },
    body: {
      error: {
        type: problem.status === 503 ? 'api_error' : 'idempotency_error',
        code: problem.code,
        message: problem.detail,
      },
    },
  };
}

for (const adapter of [expressAdapter('Express 5', express as never), koaAdapter('Koa 3', Koa)]) {
  describe(`formatProblem: ${adapter.name}`, () => {
    let app: ScenarioApp | undefined;
    afterEach(async () => {
      app?.probe.gate.open();
      await app?.close();
    });

    it('answers 400, 409 and 422 in the API format, with the status and Retry-After kept', async () => {
      app = await adapter.start({ idempotency: { required: true, formatProblem: stripeStyle } });

      const missing = await post(app, '/orders');
      expect(missing.status).toBe(400);
      expect(missing.headers.get('content-type')).toMatch(/^application\/json/);
      expect(missing.headers.get('stripe-should-retry')).toBe('false');
      expect(missing.json()).toEqual({
        error: { type: 'idempotency_error', code: 'key_missing', message: expect.any(String) },
      });

      const key = randomUUID();
      const first = post(app, '/slow', { key });
      await app.probe.running('slow');
      const conflict = await post(app, '/slow', { key });
      expect(conflict.status).toBe(409);
      expect(conflict.headers.get('retry-after')).toBe('1');
      expect(conflict.headers.get('stripe-should-retry')).toBe('true');
      expect(conflict.json().error.code).toBe('in_flight');
      app.probe.gate.open();
      expect((await first).status).toBe(200);

      const reused = await post(app, '/slow', { key, body: { other: true } });
      expect(reused.status).toBe(422);
      expect(reused.json().error).toMatchObject({ type: 'idempotency_error', code: 'key_reused' });
      expect(app.probe.count('slow')).toBe(1);
    });

    it('answers a store outage (503) in the API format, Retry-After included', async () => {
      const store = chaosStore(memoryStore());
      app = await adapter.start({ idempotency: { store, formatProblem: stripeStyle } });
      store.break('get', 'claim');

      const res = await post(app, '/orders', { key: randomUUID() });
      expect(res.status).toBe(503);
      expect(res.headers.get('retry-after')).toBe('1');
      expect(res.headers.get('stripe-should-retry')).toBe('true');
      expect(res.json()).toEqual({
        error: { type: 'api_error', code: 'store_unavailable', message: expect.any(String) },
      });
      expect(app.probe.count('orders')).toBe(0);
    });

    it('falls back to problem+json, and logs, when the format function throws', async () => {
      const errors: unknown[] = [];
      const logger = { debug() {}, info() {}, warn() {}, error: (obj: object) => errors.push(obj) };
      app = await adapter.start({
        idempotency: {
          required: true,
          logger,
          formatProblem: () => {
            throw new Error('format bug');
          },
        },
      });
      const res = await post(app, '/orders');
      expect(res.status).toBe(400);
      expect(res.headers.get('content-type')).toBe('application/problem+json');
      expect(res.json().code).toBe('key_missing');
      expect(errors).toHaveLength(1);
    });

    it('does not touch handler responses or replays', async () => {
      app = await adapter.start({ idempotency: { formatProblem: stripeStyle } });
      const failed = await post(app, '/fail', { key: randomUUID() });
      expect(failed.status).toBe(500);
      expect(failed.headers.get('stripe-should-retry')).toBeNull();

      const key = randomUUID();
      const first = await post(app, '/orders', { key });
      const replay = await post(app, '/orders', { key });
      expect(replay.headers.get('idempotent-replayed')).toBe('true');
      expect(replay.body).toEqual(first.body);
      expect(replay.headers.get('stripe-should-retry')).toBeNull();
    });
  });
}

describe('formatProblem option', () => {
  it('is refused at creation when it is not a function', () => {
    expect(() => idempotent({ formatProblem: 'stripe' as never })).toThrow(IdempotencyConfigError);
    expect(() => idempotent({ formatProblem: 'stripe' as never })).toThrow(/formatProblem/);
  });
});

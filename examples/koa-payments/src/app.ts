import { randomUUID } from 'node:crypto';
import bodyParser from '@koa/bodyparser';
import Router from '@koa/router';
import Koa from 'koa';
import type { Logger } from 'pino';
import { idempotent } from '@idem/koa';
import type { IdempotencyStore } from '@idem/core';

/** A payment as the (pretend) processor returns it. */
export interface Charge {
  id: string;
  amount: number;
  currency: string;
  customer: string;
  status: 'succeeded';
}

/** The payment processor: the side effect that must happen once per key. */
export interface Processor {
  charge(input: { amount: number; currency: string; customer: string }): Promise<Charge>;
}

export interface AppConfig {
  processor: Processor;
  logger: Logger;
  store?: IdempotencyStore;
}

/**
 * A Koa payments API. `POST /payments` requires an Idempotency-Key: a client that times out
 * and retries gets the first charge back instead of a second charge.
 */
export function createApp({ processor, logger, store }: AppConfig): Koa {
  const app = new Koa();
  const router = new Router();

  const payments = idempotent({ required: true, store, logger, ttl: '24h', concurrent: 'reject' });
  payments.events.on('replay', ({ ageMs }) => logger.info({ ageMs }, 'replayed a stored payment response'));

  router.post('/payments', payments, async (ctx) => {
    const { amount, currency, customer } = (ctx.request.body ?? {}) as Record<string, unknown>;
    if (
      !Number.isInteger(amount) ||
      (amount as number) <= 0 ||
      typeof currency !== 'string' ||
      typeof customer !== 'string'
    ) {
      ctx.status = 400;
      ctx.type = 'application/problem+json';
      ctx.body = {
        type: 'about:blank',
        title: 'Invalid payment',
        status: 400,
        detail: 'amount (positive integer, minor units), currency and customer are required',
      };
      return;
    }
    const charge = await processor.charge({ amount: amount as number, currency, customer });
    ctx.status = 201;
    ctx.set('Location', `/payments/${charge.id}`);
    ctx.body = charge;
  });

  app.use(bodyParser());
  app.use(router.routes());
  app.use(router.allowedMethods());
  return app;
}

/** A processor that charges nothing: it counts, waits a little like a real one, and answers. */
export function fakeProcessor(latencyMs = 200): Processor & { charges: number } {
  const processor = {
    charges: 0,
    async charge(input: { amount: number; currency: string; customer: string }): Promise<Charge> {
      processor.charges++;
      await new Promise((resolve) => setTimeout(resolve, latencyMs));
      return { id: `ch_${randomUUID().slice(0, 8)}`, ...input, status: 'succeeded' };
    },
  };
  return processor;
}

import bodyParser from '@koa/bodyparser';
import Router from '@koa/router';
import Koa, { type Context } from 'koa';
import type { Logger } from 'pino';
import { idempotent } from '@idem/koa';
import type { IdempotencyStore } from '@idem/core';
import type { Ledger } from './ledger.js';

export interface AppConfig {
  /** Where payments are recorded (see `ledger.ts`). */
  ledger: Ledger;
  logger: Logger;
  /** Where idempotency records live; with `postgresLedger`, `postgresStore({ transactional: true })` on its pool. @default memoryStore() */
  store?: IdempotencyStore;
}

/** An RFC 9457 problem. */
function problem(ctx: Context, status: number, title: string, detail: string): void {
  ctx.status = status;
  ctx.type = 'application/problem+json';
  ctx.body = { type: 'about:blank', title, status, detail };
}

/**
 * A Koa payments API. `POST /payments` requires an Idempotency-Key: a client that times out
 * and retries gets the first charge back instead of a second charge. `GET /payments/:id` reads
 * a recorded payment.
 *
 * @example
 * createApp({ ledger: memoryLedger(), logger }).listen(3001);
 */
export function createApp({ ledger, logger, store }: AppConfig): Koa {
  const app = new Koa();
  const router = new Router();
  // Koa prints errors to stderr unless someone listens; here they go to the log, with the request.
  app.on('error', (error: unknown, ctx?: Context) =>
    logger.error({ err: error, method: ctx?.method, url: ctx?.url }, 'request failed'),
  );

  const payments = idempotent({ required: true, store, logger, ttl: '24h', concurrent: 'reject' });
  payments.events
    .on('execute', ({ status, outcome, durationMs }) =>
      logger.info(
        { status, outcome, durationMs },
        outcome === 'stored'
          ? 'payment handler ran; its response is stored for retries'
          : `payment handler ran; response not stored (${outcome}), a retry runs again`,
      ),
    )
    .on('replay', ({ ageMs }) => logger.info({ ageMs }, 'replayed a stored payment response'));

  router.post('/payments', payments, async (ctx) => {
    const { amount, currency, customer } = (ctx.request.body ?? {}) as Record<string, unknown>;
    if (
      !Number.isSafeInteger(amount) ||
      (amount as number) <= 0 ||
      typeof currency !== 'string' ||
      typeof customer !== 'string'
    ) {
      problem(
        ctx,
        400,
        'Invalid payment',
        'amount (positive integer, minor units), currency and customer are required',
      );
      return;
    }
    // With PostgreSQL this is an INSERT through transactionOf(ctx): it commits with the stored response.
    const charge = await ledger.charge(ctx, {
      amount: amount as number,
      currency,
      customer,
      idempotencyKey: ctx.get('Idempotency-Key'),
    });
    ctx.status = 201;
    ctx.set('Location', `/payments/${charge.id}`);
    ctx.body = charge;
  });

  router.get('/payments/:id', async (ctx) => {
    const charge = await ledger.find(ctx.params.id!);
    if (charge === undefined) {
      problem(ctx, 404, 'No such payment', `No payment has the id ${JSON.stringify(ctx.params.id)}.`);
      return;
    }
    ctx.body = charge;
  });

  app.use(bodyParser());
  app.use(router.routes());
  app.use(router.allowedMethods());
  return app;
}

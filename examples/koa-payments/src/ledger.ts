/**
 * Where payments are recorded: the side effect that must happen once per Idempotency-Key. In
 * memory (this process only) or as a row of the `payments` table, written through
 * `transactionOf(ctx)` so that the row and the stored response commit together or not at all.
 */
import { randomUUID } from 'node:crypto';
import { transactionOf } from '@idem/postgres';
import type { Context } from 'koa';
import type pg from 'pg';

/** What a client asks to pay; `amount` in minor units (1999 = 19.99). */
export interface PaymentRequest {
  amount: number;
  currency: string;
  customer: string;
}

/** A recorded payment, as the API answers it. */
export interface Charge extends PaymentRequest {
  id: string;
  status: 'succeeded';
}

/** Records payments and finds them again. */
export interface Ledger {
  readonly kind: 'memory' | 'postgres';
  /** Records the payment of this request (`ctx`), under the client's Idempotency-Key. */
  charge(ctx: Context, payment: PaymentRequest & { idempotencyKey: string }): Promise<Charge>;
  /** A recorded payment, or undefined. */
  find(id: string): Promise<Charge | undefined>;
}

/** The business table; the idempotency records live in the store's own table beside it. */
export const PAYMENTS_SQL = `
CREATE TABLE IF NOT EXISTS payments (
  id              text PRIMARY KEY,
  idempotency_key text NOT NULL,
  amount          bigint NOT NULL CHECK (amount > 0),
  currency        text NOT NULL,
  customer        text NOT NULL,
  status          text NOT NULL,
  created_at      timestamptz NOT NULL DEFAULT now()
)`;

const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const newId = (): string => `ch_${randomUUID().slice(0, 8)}`;

/**
 * Payments in this process's memory: they vanish on restart, and a request that fails after its
 * charge keeps the charge (nothing is rolled back). `charges` counts them.
 *
 * @example
 * const ledger = memoryLedger(5);
 */
export function memoryLedger(latencyMs = 200): Ledger & { readonly charges: number } {
  const payments = new Map<string, Charge>();
  return {
    kind: 'memory',
    get charges() {
      return payments.size;
    },
    async charge(_ctx, { amount, currency, customer }) {
      await delay(latencyMs);
      const charge: Charge = { id: newId(), amount, currency, customer, status: 'succeeded' };
      payments.set(charge.id, charge);
      return charge;
    },
    async find(id) {
      return payments.get(id);
    },
  };
}

interface PaymentRow {
  id: string;
  amount: string;
  currency: string;
  customer: string;
  status: 'succeeded';
}

const toCharge = ({ id, amount, currency, customer, status }: PaymentRow): Charge => ({
  id,
  amount: Number(amount),
  currency,
  customer,
  status,
});

/**
 * Payments as rows of `payments`, inserted in the transaction idem opened for the request
 * (`postgresStore({ transactional: true })`): committed with the stored response, or rolled back
 * with it when the handler fails, so a retry finds either both or neither.
 *
 * @example
 * const ledger = postgresLedger({ pool, latencyMs: 200 });
 */
export function postgresLedger({ pool, latencyMs = 200 }: { pool: pg.Pool; latencyMs?: number }): Ledger {
  return {
    kind: 'postgres',
    async charge(ctx, { amount, currency, customer, idempotencyKey }) {
      const tx = transactionOf(ctx);
      // A write outside idem's transaction could be kept for a request whose response was not.
      if (tx === undefined)
        throw new Error('koa-payments: no idempotent transaction for this request; the route needs idempotent()');
      await delay(latencyMs);
      const { rows } = await tx.query<PaymentRow>(
        `INSERT INTO payments (id, idempotency_key, amount, currency, customer, status)
         VALUES ($1, $2, $3, $4, $5, 'succeeded') RETURNING id, amount, currency, customer, status`,
        [newId(), idempotencyKey, amount, currency, customer],
      );
      return toCharge(rows[0]!);
    },
    async find(id) {
      const { rows } = await pool.query<PaymentRow>(
        'SELECT id, amount, currency, customer, status FROM payments WHERE id = $1',
        [id],
      );
      return rows[0] === undefined ? undefined : toCharge(rows[0]);
    },
  };
}

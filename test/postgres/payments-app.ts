/**
 * A small payments app on Express 5 or Koa 3 whose handler writes its business row through
 * `transactionOf(req | ctx)`: the row a user would count. Test controls travel in headers, which
 * the fingerprint ignores, so a failing first try and its plain retry are the same request:
 * `x-fail: throw | 500 | big | commit | commit-early` (`commit` writes a row whose deferred foreign
 * key fails at COMMIT; `commit-early` sends its own COMMIT through the transaction after its
 * insert, then throws), `x-hold: 1` (the handler waits on the gate after its insert),
 * `x-isolation: serializable` (its first statement raises the isolation level), `x-sleep: <s>`
 * (after its insert it records its backend's pid in `backends` and runs `pg_sleep`).
 */
import { createServer } from 'node:http';
import bodyParser from '@koa/bodyparser';
import express, { type Request, type Response } from 'express';
import Koa from 'koa';
import type { IdempotencyOptions } from '@idem/core';
import { idempotent as expressIdempotent } from '@idem/express';
import { idempotent as koaIdempotent } from '@idem/koa';
import { transactionOf, type TransactionClient } from '@idem/postgres';
import { Probe, koaServer, serve, type ScenarioApp } from '../apps/scenario.js';

/** The business tables; `payments.ref` is checked at COMMIT only. */
export const PAYMENTS_SQL = `
CREATE TABLE IF NOT EXISTS payment_refs (id int PRIMARY KEY);
INSERT INTO payment_refs VALUES (1) ON CONFLICT DO NOTHING;
CREATE TABLE IF NOT EXISTS payments (
  id serial PRIMARY KEY, key text NOT NULL, n int NOT NULL, amount int,
  ref int NOT NULL REFERENCES payment_refs (id) DEFERRABLE INITIALLY DEFERRED
);`;

export type Framework = 'express' | 'koa';

/** The backend pid of each `x-sleep` handler's transaction, by idempotency key. */
export const backends = new Map<string, number>();
/** What the handler's own COMMIT got back under `x-fail: commit-early`, by idempotency key. */
export const earlyCommits = new Map<string, unknown>();

interface Attempt {
  key: string | undefined;
  fail: string | undefined;
  hold: boolean;
  isolation?: string | undefined;
  sleep?: string | undefined;
  amount: unknown;
  tx: TransactionClient | undefined;
}

/** What both frameworks' handlers do; returns the status and body to send. */
async function pay(probe: Probe, attempt: Attempt): Promise<{ status: number; body: unknown }> {
  const n = probe.ran('pay');
  const { tx } = attempt;
  if (tx === undefined) return { status: 200, body: { n, unprotected: true } };
  const ref = attempt.fail === 'commit' ? 999 : 1;
  if (attempt.isolation === 'serializable') await tx.query('SET TRANSACTION ISOLATION LEVEL SERIALIZABLE');
  await tx.query('INSERT INTO payments (key, n, amount, ref) VALUES ($1, $2, $3, $4)', [
    attempt.key,
    n,
    attempt.amount,
    ref,
  ]);
  if (attempt.fail === 'commit-early') {
    // What an ORM's transaction helper would send; the error (if any) is the handler's failure.
    const answer = await tx.query('COMMIT').then(
      (result) => result.command,
      (error: unknown) => error,
    );
    earlyCommits.set(String(attempt.key), answer);
    throw answer instanceof Error ? answer : new Error('handler failed after its own COMMIT');
  }
  if (attempt.sleep !== undefined) {
    const { rows } = await tx.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
    backends.set(String(attempt.key), Number(rows[0]?.pid));
    await tx.query('SELECT pg_sleep($1)', [Number(attempt.sleep)]);
  }
  if (attempt.hold) await probe.gate.wait();
  if (attempt.fail === 'throw') throw new Error('payment handler failed after its insert');
  if (attempt.fail === '500') return { status: 500, body: { error: 'upstream failed', n } };
  if (attempt.fail === 'big') return { status: 201, body: { n, padding: 'x'.repeat(5000) } };
  return { status: 201, body: { id: `pay_${n}`, n } };
}

/** Starts the app with `idempotency` (its store included) on a free port. */
export async function startPayments(
  framework: Framework,
  idempotency: IdempotencyOptions<never>,
): Promise<ScenarioApp> {
  const probe = new Probe();
  const options = { maxBodyBytes: 1000, ...idempotency };
  if (framework === 'express') {
    const app = express();
    app.use(express.json());
    const mw = expressIdempotent(options as never);
    app.use(mw);
    // Express 5 passes a rejected handler to its default error handler (500): the engine's abort path.
    app.post('/pay', async (req: Request, res: Response) => {
      const { status, body } = await pay(probe, {
        key: req.get('idempotency-key'),
        fail: req.get('x-fail'),
        hold: req.get('x-hold') === '1',
        isolation: req.get('x-isolation'),
        sleep: req.get('x-sleep'),
        amount: (req.body as { amount?: unknown }).amount,
        tx: transactionOf(req),
      });
      res.status(status).json(body);
    });
    return serve(createServer(app), probe, mw.events);
  }
  const app = new Koa();
  app.silent = true;
  app.use(bodyParser());
  const mw = koaIdempotent(options as never);
  app.use(mw);
  app.use(async (ctx) => {
    const { status, body } = await pay(probe, {
      key: ctx.get('idempotency-key') || undefined,
      fail: ctx.get('x-fail') || undefined,
      hold: ctx.get('x-hold') === '1',
      isolation: ctx.get('x-isolation') || undefined,
      sleep: ctx.get('x-sleep') || undefined,
      amount: (ctx.request.body as { amount?: unknown } | undefined)?.amount,
      tx: transactionOf(ctx),
    });
    ctx.status = status;
    ctx.body = body;
  });
  return serve(koaServer(app), probe, mw.events);
}

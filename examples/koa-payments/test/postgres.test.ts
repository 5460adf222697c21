/**
 * Transactional mode with DATABASE_URL, on a real PostgreSQL started by the repository's test
 * harness (never the machine's own server), wired by `openStorage` exactly as `npm start` wires
 * it. The rows of `payments` are what a user would count: one per key however the duplicates
 * arrive, none when the handler fails after its insert, and the same one after a restart.
 */
import type { Server } from 'node:http';
import type { Context } from 'koa';
import pg from 'pg';
import pino from 'pino';
import request from 'supertest';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { PostgresServer } from '../../../test/harness/postgres.mjs';
import { freePort } from '../../../test/harness/redis.mjs';
import { createApp } from '../src/app.js';
import type { Ledger, PaymentRequest } from '../src/ledger.js';
import { APPLICATION_NAME, openStorage, StorageError, type Storage } from '../src/storage.js';

const logger = pino({ level: 'silent' });
const body = { amount: 1999, currency: 'eur', customer: 'cus_42' };

let database: PostgresServer;
let admin: pg.Pool;

beforeAll(async () => {
  database = await PostgresServer.start();
  admin = new pg.Pool({ connectionString: database.url, max: 2 });
});

afterAll(async () => {
  await admin?.end();
  await database?.stop();
});

/** Rows of `payments` recorded under `key`. */
async function rows(key: string): Promise<number> {
  const { rows } = await admin.query<{ n: number }>(
    'SELECT count(*)::int AS n FROM payments WHERE idempotency_key = $1',
    [key],
  );
  return rows[0]!.n;
}

interface Running {
  server: Server;
  storage: Storage;
}
const running: Running[] = [];

/**
 * The app as `DATABASE_URL=… npm start` builds it, listening on a free port; `wrap` may put a
 * test's own behaviour around the ledger.
 */
async function start(wrap: (ledger: Ledger) => Ledger = (l) => l): Promise<Running> {
  const storage = await openStorage({ databaseUrl: database.url, paymentLatencyMs: 0 }, logger);
  const app = createApp({ ledger: wrap(storage.ledger), store: storage.store, logger });
  const server = app.listen(0, '127.0.0.1');
  await new Promise<void>((resolve) => server.once('listening', resolve));
  const instance = { server, storage };
  running.push(instance);
  return instance;
}

async function stop(instance: Running): Promise<void> {
  running.splice(running.indexOf(instance), 1);
  await new Promise<void>((resolve) => {
    instance.server.close(() => resolve());
    instance.server.closeAllConnections();
  });
  await instance.storage.close();
}

afterEach(async () => {
  for (const instance of [...running]) await stop(instance);
});

const pay = (server: Server, key: string) =>
  request(server)
    .post('/payments')
    .set('Idempotency-Key', key)
    .send(body)
    .then((r) => r);

describe('koa-payments on PostgreSQL (DATABASE_URL, transactional mode)', () => {
  it('records one row per key: duplicates during the payment get 409, the retry after it the same charge', async () => {
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let inserted!: () => void;
    const insertedOnce = new Promise<void>((resolve) => (inserted = resolve));
    const { server } = await start((ledger) => ({
      ...ledger,
      async charge(ctx: Context, payment: PaymentRequest & { idempotencyKey: string }) {
        const charge = await ledger.charge(ctx, payment);
        inserted();
        await held; // the transaction stays open, its row uncommitted, until the duplicates are answered
        return charge;
      },
    }));

    const first = pay(server, 'pg-dup-1');
    await insertedOnce;
    const duplicates = await Promise.all(Array.from({ length: 4 }, () => pay(server, 'pg-dup-1')));
    expect(duplicates.map((r) => r.status)).toEqual([409, 409, 409, 409]);
    release();
    const charged = await first;
    expect(charged.status).toBe(201);

    const retry = await pay(server, 'pg-dup-1');
    expect(retry.status).toBe(201);
    expect(retry.headers['idempotent-replayed']).toBe('true');
    expect(retry.text).toBe(charged.text);
    expect(await rows('pg-dup-1')).toBe(1);
  });

  it('records one row for a burst of twenty identical requests sent at once', async () => {
    const { server } = await start();
    const all = await Promise.all(Array.from({ length: 20 }, () => pay(server, 'pg-burst-1')));
    expect(all.every((r) => r.status === 201 || r.status === 409)).toBe(true);
    const charged = all.filter((r) => r.status === 201);
    expect(charged.filter((r) => r.headers['idempotent-replayed'] === undefined)).toHaveLength(1);
    expect(new Set(charged.map((r) => r.body.id)).size).toBe(1);
    expect(await rows('pg-burst-1')).toBe(1);
  });

  it('keeps no row when the handler throws after its insert; the retry runs and keeps one', async () => {
    let failures = 1;
    let inserts = 0;
    const { server } = await start((ledger) => ({
      ...ledger,
      async charge(ctx: Context, payment: PaymentRequest & { idempotencyKey: string }) {
        const charge = await ledger.charge(ctx, payment);
        inserts++;
        if (failures-- > 0) throw new Error('crashed after the payment row was inserted');
        return charge;
      },
    }));

    const failed = await pay(server, 'pg-throw-1');
    expect(failed.status).toBe(500);
    expect(inserts).toBe(1);
    expect(await rows('pg-throw-1')).toBe(0);

    const retry = await pay(server, 'pg-throw-1');
    expect(retry.status).toBe(201);
    expect(retry.headers['idempotent-replayed']).toBeUndefined();
    expect(inserts).toBe(2);
    expect(await rows('pg-throw-1')).toBe(1);
    expect((await request(server).get(retry.headers.location!)).body).toEqual(retry.body);
  });

  it('replays after a restart: a new app on the same database answers the stored charge, and adds no row', async () => {
    const before = await start();
    const charged = await pay(before.server, 'pg-restart-1');
    expect(charged.status).toBe(201);
    await stop(before);

    const after = await start();
    const replay = await pay(after.server, 'pg-restart-1');
    expect(replay.status).toBe(201);
    expect(replay.headers['idempotent-replayed']).toBe('true');
    expect(replay.text).toBe(charged.text);
    expect(replay.headers.location).toBe(charged.headers.location);
    expect(await rows('pg-restart-1')).toBe(1);
    expect((await request(after.server).get(charged.headers.location!)).body).toEqual(charged.body);
  });

  it('closes its connections with the app', async () => {
    const instance = await start();
    await pay(instance.server, 'pg-close-1');
    const count = async (): Promise<number> =>
      (
        await admin.query<{ n: number }>(
          'SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1',
          [APPLICATION_NAME],
        )
      ).rows[0]!.n;
    expect(await count()).toBeGreaterThan(0);
    await stop(instance);
    // A backend exits a moment after its client hung up: look again until it has.
    for (let tries = 0; (await count()) > 0 && tries < 100; tries++)
      await new Promise((resolve) => setTimeout(resolve, 20));
    expect(await count()).toBe(0);
  });

  it('refuses to start on an unreachable DATABASE_URL, naming it without its password', async () => {
    const url = `postgres://app:secret@127.0.0.1:${await freePort()}/payments`;
    const error = await openStorage({ databaseUrl: url, paymentLatencyMs: 0 }, logger).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StorageError);
    expect((error as Error).message).toMatch(
      /^PostgreSQL at postgres:\/\/app:\*\*\*@127\.0\.0\.1:\d+\/payments did not answer: .*ECONNREFUSED/,
    );
    expect((error as Error).message).not.toContain('secret');
  });
});

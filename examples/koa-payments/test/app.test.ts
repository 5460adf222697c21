import pino from 'pino';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import type { Context } from 'koa';
import { createApp } from '../src/app.js';
import { memoryLedger, type PaymentRequest } from '../src/ledger.js';

const logger = pino({ level: 'silent' });
const body = { amount: 1999, currency: 'eur', customer: 'cus_42' };

describe('koa-payments on the memory store and ledger', () => {
  it('charges once however often the client retries, and replays the first charge', async () => {
    const ledger = memoryLedger(5);
    const server = createApp({ ledger, logger }).callback();
    const first = await request(server).post('/payments').set('Idempotency-Key', '"pay-1"').send(body);
    const retry = await request(server).post('/payments').set('Idempotency-Key', '"pay-1"').send(body);
    expect(first.status).toBe(201);
    expect(retry.status).toBe(201);
    expect(retry.text).toBe(first.text);
    expect(retry.headers.location).toBe(first.headers.location);
    expect(retry.headers['idempotent-replayed']).toBe('true');
    expect(ledger.charges).toBe(1);
  });

  it('reads a payment back at its Location, and answers 404 for an unknown id', async () => {
    const server = createApp({ ledger: memoryLedger(0), logger }).callback();
    const paid = await request(server).post('/payments').set('Idempotency-Key', 'pay-read').send(body);
    const read = await request(server).get(paid.headers.location!);
    expect(read.status).toBe(200);
    expect(read.body).toEqual(paid.body);
    const unknown = await request(server).get('/payments/ch_nope');
    expect(unknown.status).toBe(404);
    expect(unknown.headers['content-type']).toMatch(/^application\/problem\+json/);
  });

  it('requires a key', async () => {
    const ledger = memoryLedger(5);
    const res = await request(createApp({ ledger, logger }).callback()).post('/payments').send(body);
    expect(res.status).toBe(400);
    expect(res.body.code).toBe('key_missing');
    expect(ledger.charges).toBe(0);
  });

  it('refuses a key reused for a different payment', async () => {
    const ledger = memoryLedger(5);
    const server = createApp({ ledger, logger }).callback();
    await request(server).post('/payments').set('Idempotency-Key', 'pay-2').send(body);
    const other = await request(server)
      .post('/payments')
      .set('Idempotency-Key', 'pay-2')
      .send({ ...body, amount: 5000 });
    expect(other.status).toBe(422);
    expect(ledger.charges).toBe(1);
  });

  it('answers concurrent duplicates 409 while the charge runs, and charges once', async () => {
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let charges = 0;
    let started!: () => void;
    const charging = new Promise<void>((resolve) => (started = resolve));
    const ledger = {
      ...memoryLedger(0),
      async charge(_ctx: Context, { amount, currency, customer }: PaymentRequest) {
        charges++;
        started();
        await held; // the charge stays in flight until every duplicate has been answered
        return { id: 'ch_1', amount, currency, customer, status: 'succeeded' as const };
      },
    };
    const server = createApp({ ledger, logger }).listen(0);
    try {
      const send = () => request(server).post('/payments').set('Idempotency-Key', 'pay-3').send(body);
      const first = send().then((r) => r); // supertest starts a request when it is awaited
      await charging;
      const duplicates = await Promise.all(Array.from({ length: 4 }, send));
      expect(duplicates.map((r) => r.status)).toEqual([409, 409, 409, 409]);
      release();
      expect((await first).status).toBe(201);
      expect(charges).toBe(1);
    } finally {
      server.close();
    }
  });
});

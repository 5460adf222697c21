/**
 * What a request costs in Redis commands, counted by the server itself (INFO commandstats):
 * a replay is one command and no script; a first execution two (a claim command, a complete script) on a
 * single node (docs/design.md, "Costs").
 * Commands that scripts run inside Redis are counted by commandstats too; they are not round
 * trips, so they are told apart from the commands a client can send.
 */
import { randomUUID } from 'node:crypto';
import express from 'express';
import { idempotent } from '@idem/express';
import { redisStore, type RedisStore } from '@idem/redis';
import { Redis } from 'ioredis';
import request from 'supertest';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { RedisServer } from '../harness/redis.mjs';

/**
 * Commands only our scripts run, inside Redis (with the lock on the records' node, the default).
 * `set` is not among them: the claim sends it itself (`SET … NX PX … GET`), so the count of `set`
 * includes the complete script's one; `evalsha` tells them apart.
 */
const INSIDE_SCRIPTS = new Set([
  'getrange',
  'setrange',
  'pexpire',
  'del',
  'get',
  'publish',
  'pttl',
  'select',
  'type',
  'hget',
  'hmget',
]);
/** Commands the measuring itself sends. */
const MEASURING = new Set(['info', 'config|resetstat']);

let server: RedisServer;
let client: Redis;
let store: RedisStore;
let app: express.Express;

beforeAll(async () => {
  server = await RedisServer.start();
  client = new Redis(server.url);
  store = redisStore({ client });
  app = express();
  app.use(express.json());
  app.use(idempotent({ store, lockTtl: '30s' }));
  app.post('/orders', (req, res) => void res.status(201).location('/orders/1').json({ id: 1, item: req.body.item }));
  // Warm up: ioredis loads each script once (EVALSHA, NOSCRIPT, EVAL) on first use.
  const warm = randomUUID();
  await request(app).post('/orders').set('Idempotency-Key', warm).send({ item: 'warm' }).expect(201);
  await request(app).post('/orders').set('Idempotency-Key', warm).send({ item: 'warm' }).expect(201);
});

afterAll(async () => {
  await store?.close();
  client?.disconnect();
  await server?.stop();
});

/** Runs `act` and returns the commands clients sent (round trips) and those scripts ran inside. */
async function measure(
  act: () => Promise<unknown>,
): Promise<{ sent: Record<string, number>; inside: Record<string, number>; roundTrips: number }> {
  await server.resetStats();
  await act();
  const stats = await server.commandStats();
  const sent: Record<string, number> = {};
  const inside: Record<string, number> = {};
  for (const [command, calls] of Object.entries(stats)) {
    if (MEASURING.has(command)) continue;
    if (INSIDE_SCRIPTS.has(command)) inside[command] = calls;
    else sent[command] = calls;
  }
  const roundTrips = Object.values(sent).reduce((a, b) => a + b, 0);
  return { sent, inside, roundTrips };
}

it('a first execution costs at most five commands on a single node, and a replay one', async () => {
  const key = randomUUID();
  const first = await measure(() =>
    request(app).post('/orders').set('Idempotency-Key', key).send({ item: 'book' }).expect(201),
  );
  const replay = await measure(() =>
    request(app)
      .post('/orders')
      .set('Idempotency-Key', key)
      .send({ item: 'book' })
      .expect(201)
      .expect('Idempotent-Replayed', 'true'),
  );
  console.info(
    `first execution: ${first.roundTrips} round trips ${JSON.stringify(first.sent)}, inside scripts ${JSON.stringify(first.inside)}`,
  );
  console.info(
    `replay: ${replay.roundTrips} round trip ${JSON.stringify(replay.sent)}, inside scripts ${JSON.stringify(replay.inside)}`,
  );

  // read + claim (one command, SET … NX PX … GET, no script), then store-if-owner (one script whose
  // calls are GETRANGE of the record's head and one SET: the commandstats' second `set`).
  expect(first.sent).toEqual({ set: 2, evalsha: 1 });
  expect(first.inside).toEqual({ getrange: 1 });
  // Nobody waited for this key, so its completion is not published (a PUBLISH reaches every Cluster node).
  expect(first.inside.publish).toBeUndefined();
  expect(first.roundTrips).toBeLessThanOrEqual(5);
  // The claim's SET … NX GET finds the completed record and hands it back: one command, no script, no write.
  expect(replay.sent).toEqual({ set: 1 });
  expect(replay.inside).toEqual({});
});

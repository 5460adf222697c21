import { describe, expect, it } from 'vitest';
import { createIdempotency } from './engine.js';
import { StoreError } from './errors.js';
import type { IdempotencyEventMap } from './events.js';
import { memoryStore } from './memory-store.js';
import type { Decision, Execution, IdempotencyStore, NeutralRequest } from './types.js';

function request(key: string): NeutralRequest {
  const headers = { 'idempotency-key': key };
  return {
    method: 'POST', path: '/orders', search: '', route: '/orders', headers, body: { sku: 'A1' }, bodyParsed: true,
    query: {}, params: {}, native: {}, headerValues: (name) => (name === 'idempotency-key' ? [key] : []),
  };
}

async function decide(engine: ReturnType<typeof createIdempotency>, key: string): Promise<Decision> {
  return await engine.handle(request(key));
}

function executionOf(decision: Decision): Execution {
  if (decision.action !== 'execute') throw new Error(`expected an execution, got ${decision.action}`);
  return decision.execution;
}

const ok = { status: 201, headers: { 'content-type': 'application/json' }, body: Buffer.from('{"id":1}') };

describe('maxHold', () => {
  it('releases the key of a handler that never finishes; its late result is not stored', async () => {
    const engine = createIdempotency({ maxHold: 50, lockTtl: '30s' });
    const executed = new Promise<IdempotencyEventMap['execute']>((resolve) => engine.events.once('execute', resolve));
    const stuck = executionOf(await decide(engine, 'k1'));
    // While it holds the key, a duplicate is in flight.
    expect((await decide(engine, 'k1')).action).toBe('respond');
    const event = await executed;
    expect(event).toMatchObject({ outcome: 'max_hold', route: '/orders' });
    expect(event.durationMs).toBeGreaterThanOrEqual(45);
    // The key is free: a retry runs again.
    const retry = executionOf(await decide(engine, 'k1'));
    // The stuck handler finishes late: nothing of it is kept, and finish still resolves.
    await expect(stuck.finish(ok)).resolves.toBeUndefined();
    await retry.finish({ ...ok, body: Buffer.from('{"id":2}') });
    const replay = await decide(engine, 'k1');
    expect(replay.action === 'respond' && Buffer.from(replay.response.body).toString()).toBe('{"id":2}');
  });

  it('keeps renewing the lease of a handler that finishes within maxHold', async () => {
    const store = memoryStore();
    let extends_ = 0;
    const counting: IdempotencyStore = { ...store, name: 'counting', extend: (lease, ttl) => (extends_++, store.extend(lease, ttl)) };
    const engine = createIdempotency({ store: counting, lockTtl: 30, maxHold: '1h' });
    const execution = executionOf(await decide(engine, 'k2'));
    // Past several lockTtl: the lease was renewed, so the key is still ours.
    await new Promise<void>((resolve) => {
      const check = setInterval(() => extends_ >= 3 && (clearInterval(check), resolve()), 5);
    });
    await execution.finish(ok);
    expect((await store.get(execution.key))?.state).toBe('completed');
  });
});

describe('store errors', () => {
  class VendorTimeout extends StoreError {
    constructor() {
      super('complete', new Error('no answer within 5 ms'));
    }
  }

  it('a store error that already is a StoreError reaches storeError as it was, message not doubled', async () => {
    const store = memoryStore();
    const failing: IdempotencyStore = { ...store, name: 'failing', complete: () => Promise.reject(new VendorTimeout()) };
    const engine = createIdempotency({ store: failing });
    const reported = new Promise<IdempotencyEventMap['storeError']>((resolve) => engine.events.once('storeError', resolve));
    await executionOf(await decide(engine, 'k3')).finish(ok);
    const { error, operation } = await reported;
    expect(operation).toBe('complete');
    expect(error).toBeInstanceOf(VendorTimeout);
    expect(error.message).toBe('idem: store complete failed: no answer within 5 ms');
  });

  it('any other store failure is wrapped once, with the original as cause', async () => {
    const boom = new Error('connection reset');
    const failing: IdempotencyStore = { ...memoryStore(), name: 'failing', getOrClaim: () => Promise.reject(boom) };
    const engine = createIdempotency({ store: failing });
    const reported = new Promise<IdempotencyEventMap['storeError']>((resolve) => engine.events.once('storeError', resolve));
    const decision = await decide(engine, 'k4');
    expect(decision.action === 'respond' && decision.response.status).toBe(503);
    const { error } = await reported;
    expect(error).toBeInstanceOf(StoreError);
    expect(error.cause).toBe(boom);
  });
});

describe('a record that cannot be replayed', () => {
  it('is answered 500 record_invalid, reported, and not replayed', async () => {
    const store = memoryStore();
    const tampered: IdempotencyStore = {
      ...store,
      name: 'tampered',
      getOrClaim: async () => ({
        acquired: false,
        record: { state: 'completed', fingerprint: null, completedAt: Date.now(), response: { status: 1000, headers: {}, body: new Uint8Array() } },
      }),
    };
    const engine = createIdempotency({ store: tampered });
    const reported = new Promise<IdempotencyEventMap['invalidRecord']>((resolve) => engine.events.once('invalidRecord', resolve));
    const decision = await decide(engine, 'k5');
    expect(decision.action).toBe('respond');
    if (decision.action !== 'respond') return;
    expect(decision.response).toMatchObject({ status: 500, replayed: false, headers: { 'content-type': 'application/problem+json' } });
    expect(JSON.parse(Buffer.from(decision.response.body).toString())).toMatchObject({ code: 'record_invalid' });
    expect((await reported).reason).toMatch(/status 1000/);
  });
});

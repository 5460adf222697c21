import { describe, expect, it } from 'vitest';
import { createIdempotency } from './engine.js';
import { StoreError } from './errors.js';
import type { IdempotencyEventMap } from './events.js';
import { memoryStore } from './memory-store.js';
import type { Decision, Execution, IdempotencyStore, NeutralRequest } from './types.js';

function request(key: string): NeutralRequest {
  const headers = { 'idempotency-key': key };
  return {
    method: 'POST',
    path: '/orders',
    search: '',
    route: '/orders',
    headers,
    body: { sku: 'A1' },
    bodyParsed: true,
    query: {},
    params: {},
    native: {},
    headerValues: (name) => (name === 'idempotency-key' ? [key] : []),
  };
}

async function decide(engine: ReturnType<typeof createIdempotency>, key: string): Promise<Decision> {
  return engine.handle(request(key));
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
    const counting: IdempotencyStore = {
      ...store,
      name: 'counting',
      extend: (lease, ttl) => (extends_++, store.extend(lease, ttl)),
    };
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
    const thrown = new VendorTimeout();
    const failing: IdempotencyStore = { ...store, name: 'failing', complete: () => Promise.reject(thrown) };
    const engine = createIdempotency({ store: failing });
    const reported = new Promise<IdempotencyEventMap['storeError']>((resolve) =>
      engine.events.once('storeError', resolve),
    );
    await executionOf(await decide(engine, 'k3')).finish(ok);
    const { error, operation } = await reported;
    expect(operation).toBe('complete');
    expect(error).toBe(thrown);
    expect(error.message).toBe('idem: store complete failed: no answer within 5 ms');
  });

  it('any other store failure is wrapped once, with the original as cause', async () => {
    const boom = new Error('connection reset');
    const failing: IdempotencyStore = { ...memoryStore(), name: 'failing', getOrClaim: () => Promise.reject(boom) };
    const engine = createIdempotency({ store: failing });
    const reported = new Promise<IdempotencyEventMap['storeError']>((resolve) =>
      engine.events.once('storeError', resolve),
    );
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
        record: {
          state: 'completed',
          fingerprint: null,
          completedAt: Date.now(),
          response: { status: 1000, headers: {}, body: new Uint8Array() },
        },
      }),
    };
    const engine = createIdempotency({ store: tampered });
    const reported = new Promise<IdempotencyEventMap['invalidRecord']>((resolve) =>
      engine.events.once('invalidRecord', resolve),
    );
    const decision = await decide(engine, 'k5');
    expect(decision.action).toBe('respond');
    if (decision.action !== 'respond') return;
    expect(decision.response).toMatchObject({
      status: 500,
      replayed: false,
      headers: { 'content-type': 'application/problem+json' },
    });
    expect(JSON.parse(Buffer.from(decision.response.body).toString())).toMatchObject({ code: 'record_invalid' });
    expect((await reported).reason).toMatch(/status 1000/);
  });
});

describe('a lost lease', () => {
  it('is reported once, renewals stop, what the store holds is released, and the late result is fenced', async () => {
    const store = memoryStore();
    let extends_ = 0;
    let releases = 0;
    const losing: IdempotencyStore = {
      ...store,
      name: 'losing',
      extend: async () => (extends_++, false),
      release: (lease) => (releases++, store.release(lease)),
      complete: async () => false,
    };
    const engine = createIdempotency({ store: losing, lockTtl: 30 });
    const lost = new Promise<void>((resolve) => engine.events.once('leaseLost', () => resolve()));
    let lostEvents = 0;
    engine.events.on('leaseLost', () => lostEvents++);
    const execution = executionOf(await decide(engine, 'lost-1'));
    await lost;
    // Several renewal periods later: no second renewal, no second report.
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(extends_).toBe(1);
    expect(lostEvents).toBe(1);
    expect(releases).toBe(1);
    const outcome = new Promise<IdempotencyEventMap['execute']>((resolve) => engine.events.once('execute', resolve));
    await execution.finish(ok);
    expect((await outcome).outcome).toBe('fenced');
    expect(lostEvents).toBe(1);
  });

  it('a store whose extend throws synchronously does not take the process down; renewal goes on', async () => {
    const store = memoryStore();
    let calls = 0;
    const throwing: IdempotencyStore = {
      ...store,
      name: 'throwing',
      extend: (lease, ttl) => {
        calls++;
        if (calls === 1) throw new Error('sync boom');
        return store.extend(lease, ttl);
      },
    };
    const engine = createIdempotency({ store: throwing, lockTtl: 30 });
    const execution = executionOf(await decide(engine, 'sync-1'));
    await new Promise<void>((resolve) => {
      const check = setInterval(() => calls >= 3 && (clearInterval(check), resolve()), 5);
    });
    await execution.finish(ok);
    expect((await store.get(execution.key))?.state).toBe('completed');
  });
});

describe('a transactional store', () => {
  /** The memory store, declared transactional, with `complete` as given. */
  function transactional(complete?: IdempotencyStore['complete']): IdempotencyStore {
    const store = memoryStore();
    return { ...store, name: 'tx', transactional: true, ...(complete ? { complete } : {}) };
  }

  it('answers 503 instead of a success whose commit failed, or was fenced', async () => {
    for (const complete of [() => Promise.reject(new Error('commit failed')), async () => false]) {
      const engine = createIdempotency({ store: transactional(complete) });
      const replacement = await executionOf(await decide(engine, 'tx-1')).finish(ok);
      expect(replacement).toMatchObject({ status: 503, headers: { 'retry-after': '1' } });
    }
  });

  it('answers 500 response_not_stored instead of a success it could not keep; errors go out as they are', async () => {
    const engine = createIdempotency({ store: transactional(), maxBodyBytes: 4 });
    const tooLarge = await executionOf(await decide(engine, 'tx-2')).finish(ok);
    expect(tooLarge?.status).toBe(500);
    expect(JSON.parse(Buffer.from(tooLarge?.body ?? []).toString())).toMatchObject({ code: 'response_not_stored' });
    const notFound = await executionOf(await decide(engine, 'tx-3')).finish({ status: 404, headers: {}, body: null });
    expect(notFound).toBeUndefined();
    const picky = createIdempotency({ store: transactional(), cacheable: () => false });
    expect((await executionOf(await decide(picky, 'tx-4')).finish(ok))?.status).toBe(500);
    expect(await executionOf(await decide(picky, 'tx-5')).finish({ ...ok, status: 409 })).toBeUndefined();
  });

  it('answers 503 for a late finish past maxHold, whose transaction was rolled back', async () => {
    const engine = createIdempotency({ store: transactional(), maxHold: 20 });
    const executed = new Promise<void>((resolve) => engine.events.once('execute', () => resolve()));
    const execution = executionOf(await decide(engine, 'tx-6'));
    await executed;
    expect((await execution.finish(ok))?.status).toBe(503);
  });

  it('changes nothing for a store that is not transactional', async () => {
    const store = memoryStore();
    const engine = createIdempotency({
      store: { ...store, name: 'plain', complete: () => Promise.reject(new Error('x')) },
    });
    expect(await executionOf(await decide(engine, 'tx-7')).finish(ok)).toBeUndefined();
  });
});

describe('statuses a replay could not send', () => {
  it('are never kept, whatever cacheable says', async () => {
    const engine = createIdempotency({ cacheable: () => true });
    const outcome = new Promise<IdempotencyEventMap['execute']>((resolve) => engine.events.once('execute', resolve));
    await executionOf(await decide(engine, 'st-1')).finish({ ...ok, status: 700 });
    expect((await outcome).outcome).toBe('not_cacheable');
    expect((await decide(engine, 'st-1')).action).toBe('execute');
  });
});

import { memoryStore } from '@idem/core';
import { afterEach, describe, expect, it } from 'vitest';
import { storeConformance } from '@idem/core/conformance';

storeConformance({ describe, it, afterEach }, 'memory', () => memoryStore(), {
  extras: ({ create }) => {
    it('stays within maxEntries, evicting the least recently used completed record', async () => {
      const store = memoryStore({ maxEntries: 3 });
      for (let i = 0; i < 10; i++) {
        const claim = await store.claim(`k${i}`, { fingerprint: null, lockTtl: 1_000 });
        if (!claim.acquired) throw new Error('claim failed');
        await store.complete(
          claim.lease,
          { status: 200, headers: {}, body: new Uint8Array() },
          { fingerprint: null, ttl: 60_000 },
        );
      }
      expect(store.size).toBe(3);
      expect(await store.get('k0')).toBeUndefined();
      expect((await store.get('k9'))?.state).toBe('completed');
      void create;
    });

    it('never evicts an in-flight lease under memory pressure', async () => {
      const store = memoryStore({ maxEntries: 1 });
      const running = await store.claim('running', { fingerprint: null, lockTtl: 60_000 });
      expect(running.acquired).toBe(true);
      for (let i = 0; i < 5; i++) {
        const claim = await store.claim(`done${i}`, { fingerprint: null, lockTtl: 1_000 });
        if (claim.acquired)
          await store.complete(
            claim.lease,
            { status: 200, headers: {}, body: new Uint8Array() },
            { fingerprint: null, ttl: 60_000 },
          );
      }
      expect((await store.claim('running', { fingerprint: null, lockTtl: 60_000 })).acquired).toBe(false);
    });

    it('expires by its clock, without waiting', async () => {
      let now = 1_000_000;
      const store = memoryStore({ clock: () => now });
      const claim = await store.claim('k', { fingerprint: null, lockTtl: 1_000 });
      if (!claim.acquired) throw new Error('claim failed');
      await store.complete(
        claim.lease,
        { status: 200, headers: {}, body: new Uint8Array() },
        { fingerprint: null, ttl: 5_000 },
      );
      now += 4_999;
      expect((await store.get('k'))?.state).toBe('completed');
      now += 1;
      expect(await store.get('k')).toBeUndefined();
    });

    it('rejects a bad maxEntries with a clear error', () => {
      expect(() => memoryStore({ maxEntries: 0 })).toThrow(/maxEntries/);
    });
  },
});

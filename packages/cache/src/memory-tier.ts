import { LRUCache } from 'lru-cache';
import { entrySize } from './size.js';

/** A cached value with its times (epoch ms of the cache clock). @internal */
export interface Entry<T = unknown> {
  value: T;
  createdAt: number;
  expiresAt: number;
  staleUntil: number;
  tags: readonly string[];
  /** Sequence number of its L1 write (for invalidations missed while the bus was down); 0 until stored. */
  storedAt: number;
  /** Grace backoff: until then a stale entry is served without calling the loader. */
  retryAt: number;
}

/** The bounds of L1: entries always, bytes when `maxBytes` is set (each entry sized by `sizeOf`, or estimated). @internal */
export interface MemoryBounds {
  maxEntries: number;
  maxBytes: number | undefined;
  sizeOf: ((value: unknown, key: string) => number) | undefined;
}

/**
 * The L1 tier: a bounded LRU of entries, values kept by reference (no copy, no serialization).
 * Bounded by bytes too, it charges each entry its size when stored (lru-cache's `maxSize`), evicts
 * the least recently used until the new one fits, and keeps none larger than the bound itself.
 * Expiry is judged by the cache clock on read, so lru-cache itself runs without TTLs; an expired
 * entry is kept through its grace and then dropped on the next read or by LRU pressure.
 * @internal
 */
export class MemoryTier {
  readonly #lru: LRUCache<string, Entry>;
  // A write counter rather than a timestamp: exact within one millisecond and under a fake clock.
  #writes = 0;
  #staleBefore = 0;

  readonly maxBytes: number | undefined;

  constructor({ maxEntries, maxBytes, sizeOf }: MemoryBounds) {
    this.maxBytes = maxBytes;
    this.#lru =
      maxBytes === undefined
        ? new LRUCache<string, Entry>({ max: maxEntries })
        : new LRUCache<string, Entry>({
            max: maxEntries,
            maxSize: maxBytes,
            sizeCalculation: (entry, key) => entrySize(entry.value, key, entry.tags, sizeOf),
          });
  }

  /** The bytes charged for the entries held (0 when not bounded by bytes). */
  get bytes(): number {
    return this.maxBytes === undefined ? 0 : this.#lru.calculatedSize;
  }

  /** Number of entries held (expired ones included until read or evicted). */
  get size(): number {
    return this.#lru.size;
  }

  /** The entry if still usable at `now` (fresh or within grace); drops it otherwise. */
  get(key: string, now: number): Entry | undefined {
    const entry = this.#lru.get(key);
    if (entry === undefined) return undefined;
    if (now >= entry.staleUntil) {
      this.#lru.delete(key);
      return undefined;
    }
    return entry;
  }

  /** Whether an entry read from L1 is still fresh at `now`. */
  isFresh(entry: Entry, now: number): boolean {
    return now < entry.expiresAt && entry.storedAt > this.#staleBefore;
  }

  /** Stores an entry (stamping its write sequence). */
  set(key: string, entry: Entry): void {
    entry.storedAt = ++this.#writes;
    this.#lru.set(key, entry);
  }

  /** Makes every entry stored so far count as expired; they stay usable as stale fallbacks. */
  expireAll(): void {
    this.#staleBefore = this.#writes;
  }

  /** Drops one entry. */
  delete(key: string): void {
    this.#lru.delete(key);
  }

  /** Drops every entry carrying any of `tags`. O(size): L1 is bounded. */
  deleteTags(tags: readonly string[]): void {
    const wanted = new Set(tags);
    const doomed: string[] = [];
    for (const [key, entry] of this.#lru.entries()) {
      if (entry.tags.some((t) => wanted.has(t))) doomed.push(key);
    }
    for (const key of doomed) this.#lru.delete(key);
  }

  /** Drops every entry whose key starts with `prefix`. O(size): L1 is bounded. */
  deletePrefix(prefix: string): void {
    const doomed: string[] = [];
    for (const key of this.#lru.keys()) if (key.startsWith(prefix)) doomed.push(key);
    for (const key of doomed) this.#lru.delete(key);
  }

  /** Drops everything. */
  clear(): void {
    this.#lru.clear();
  }
}

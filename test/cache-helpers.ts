/**
 * Helpers of the @idem/cache suites: deferred promises, event waits (no sleep-and-hope), a fake
 * clock, and a "chaos" TCP proxy in front of a real redis-server that can cut and refuse
 * connections on demand.
 */
import { randomUUID } from 'node:crypto';
import { createServer, connect, type Server, type Socket } from 'node:net';
import type { Cache, CacheEventMap } from '@idem/cache';

/** A promise with its resolve/reject exposed. */
export interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
  reject(error: unknown): void;
}

export function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/**
 * Starts `cache.getOrSet(key)` with a loader held open until `gate` settles; resolves once the
 * loader is running, so the load is known to be in flight.
 */
export async function heldLoad<T>(cache: Cache, key: string): Promise<{ call: Promise<T>; gate: Deferred<T> }> {
  const gate = deferred<T>();
  const started = deferred();
  const call = cache.getOrSet(key, () => {
    started.resolve();
    return gate.promise;
  });
  await started.promise;
  return { call, gate };
}

/** A random key, so tests never share state. */
export const newKey = (label = 'k'): string => `${label}-${randomUUID()}`;

/** Resolves with the first `event` whose payload passes `match`; rejects after `timeoutMs`. */
export function nextEvent<K extends keyof CacheEventMap>(
  cache: Cache,
  event: K,
  match: (payload: CacheEventMap[K]) => boolean = () => true,
  timeoutMs = 5_000,
): Promise<CacheEventMap[K]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      cache.events.off(event, listener);
      reject(new Error(`no '${event}' event within ${timeoutMs}ms`));
    }, timeoutMs);
    const listener = (payload: CacheEventMap[K]): void => {
      if (!match(payload)) return;
      clearTimeout(timer);
      cache.events.off(event, listener);
      resolve(payload);
    };
    cache.events.on(event, listener);
  });
}

/** Resolves once the cache's invalidation bus is subscribed. */
export async function busConnected(cache: Cache, timeoutMs = 5_000): Promise<void> {
  if (cache.stats().bus.connected) return;
  await nextEvent(cache, 'bus', (e) => e.state === 'connected' || e.state === 'recovered', timeoutMs);
}

/** Polls `check` on the event loop until it holds (for state outside our events, e.g. Redis). */
export async function until(
  check: () => boolean | Promise<boolean>,
  timeoutMs = 5_000,
  what = 'condition',
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what} did not hold within ${timeoutMs}ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Rejects if `promise` takes longer than `ms`: a hang detector, not a speed assertion. */
export async function within<T>(ms: number, promise: Promise<T>, what = 'call'): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>(
        (_, reject) => (timer = setTimeout(() => reject(new Error(`${what} hung for more than ${ms}ms`)), ms)),
      ),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** A manual epoch clock for TTL and grace boundaries. */
export interface FakeClock {
  (): number;
  advance(ms: number): void;
  set(ms: number): void;
}

export function fakeClock(start = 1_700_000_000_000): FakeClock {
  let now = start;
  const clock = (() => now) as FakeClock;
  clock.advance = (ms) => {
    now += ms;
  };
  clock.set = (ms) => {
    now = ms;
  };
  return clock;
}

/**
 * A TCP proxy in front of Redis. `cut()` drops every connection through it; `refuse()` makes
 * new ones fail until `accept()`; so a test decides exactly when a client is cut off.
 */
export class ChaosProxy {
  readonly #sockets = new Set<Socket>();
  #refusing = false;

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  static async start(targetPort: number): Promise<ChaosProxy> {
    // The server's handler needs the proxy, which needs the server: fill this in once both exist.
    const self: { proxy?: ChaosProxy } = {};
    const server = createServer((client) => {
      const proxy = self.proxy;
      if (proxy === undefined || proxy.#refusing) {
        client.destroy();
        return;
      }
      const upstream = connect(targetPort, '127.0.0.1');
      for (const socket of [client, upstream]) {
        proxy.#sockets.add(socket);
        socket.on('error', () => {});
        socket.on('close', () => {
          proxy.#sockets.delete(socket);
          client.destroy();
          upstream.destroy();
        });
      }
      client.pipe(upstream);
      upstream.pipe(client);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    self.proxy = new ChaosProxy(server, typeof address === 'object' && address ? address.port : 0);
    return self.proxy;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Drops every open connection. */
  cut(): void {
    for (const socket of this.#sockets) socket.destroy();
  }

  /** New connections are closed at once until `accept()`. */
  refuse(): void {
    this.#refusing = true;
  }

  accept(): void {
    this.#refusing = false;
  }

  async stop(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

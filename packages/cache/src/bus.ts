import { KeyedWaiters } from '@idem/core/adapter';
import { bounded } from '@idem/redis-kit';
import type { Redis } from 'ioredis';
import type { CacheEvents } from './events.js';
import type { Logger } from './types.js';
import type { BusMessage } from './redis-tier.js';

/**
 * The invalidation bus: one pub/sub connection (a duplicate of the user's client) on the
 * namespace channel. It delivers other instances' invalidations and wakes the callers waiting
 * for another process's loader. Publishing happens inside the Lua scripts that change state.
 * @internal
 */
export class Bus {
  readonly #sub: Redis;
  readonly #channel: string;
  /** Callers waiting for another process's loader, by cache key (the kit's keyed waiter). */
  readonly #waiters = new KeyedWaiters<string>();
  #everConnected = false;
  #connected = false;
  #closed = false;
  received = 0;

  constructor(
    client: Redis,
    channel: string,
    private readonly instanceId: string,
    private readonly handlers: { onMessage: (message: BusMessage) => void; onRecovered: () => void },
    private readonly events: CacheEvents,
    private readonly logger: Logger,
  ) {
    this.#channel = channel;
    // Our own connection: a subscribed connection cannot run commands, and the user's stays theirs.
    const sub = client.duplicate();
    this.#sub = sub;
    sub.on('error', (error: Error) => logger.debug({ err: error }, 'idem cache: bus connection error'));
    sub.on('close', () => this.#onDown());
    sub.on('ready', () => void this.#onReady());
    sub.on('messageBuffer', (channel: Buffer, payload: Buffer) => this.#onPayload(channel, payload));
    // With lazyConnect the duplicate would otherwise sit idle until its first command.
    if (sub.status === 'wait') sub.connect().catch(() => {});
  }

  /** Whether the subscription is live. */
  get connected(): boolean {
    return this.#connected;
  }

  async #onReady(): Promise<void> {
    try {
      // Subscribing (again) and waiting for the reply means every message published from here on
      // reaches us; ioredis' own resubscription gives no such point in time.
      await this.#sub.subscribe(this.#channel);
    } catch (error) {
      this.logger.warn({ err: error }, 'idem cache: bus subscription failed; retrying on reconnect');
      return;
    }
    if (this.#closed) return;
    this.#connected = true;
    if (!this.#everConnected) {
      this.#everConnected = true;
      this.events.emit('bus', { state: 'connected' });
      return;
    }
    this.logger.info({}, 'idem cache: bus recovered; L1 entries from before the gap will be re-checked');
    this.handlers.onRecovered();
    this.events.emit('bus', { state: 'recovered' });
  }

  #onDown(): void {
    if (!this.#connected) return;
    this.#connected = false;
    if (!this.#closed) {
      this.logger.warn(
        {},
        'idem cache: bus connection lost; invalidations from other instances may be missed until it returns',
      );
      this.events.emit('bus', { state: 'disconnected' });
    }
  }

  #onPayload(channel: Buffer, payload: Buffer): void {
    if (channel.toString() !== this.#channel) return;
    let message: BusMessage;
    try {
      message = JSON.parse(payload.toString()) as BusMessage;
    } catch {
      this.logger.warn({}, 'idem cache: ignored a malformed bus message');
      return;
    }
    this.received++;
    if (message.t === 'set' || message.t === 'rel') this.#waiters.wake(message.k);
    if (message.i !== this.instanceId) this.handlers.onMessage(message);
  }

  /** Resolves when a value for `key` lands or its lock is released, or after `ms` (polling backstop). */
  waitFor(key: string, ms: number): Promise<void> {
    const watch = this.#waiters.watch(key);
    return watch.next(ms).then(() => watch.stop());
  }

  /** Unsubscribes and closes the duplicate connection. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#connected = false;
    this.#waiters.wakeAll();
    // QUIT on a connection that is down would sit in the offline queue: only ask a live one, and
    // not for longer than a second (disconnect below ends it either way).
    if (this.#sub.status === 'ready') {
      await bounded(this.#sub.quit(), 1_000, () => new Error('QUIT took longer than 1s')).catch(() => {});
    }
    this.#sub.disconnect();
  }
}

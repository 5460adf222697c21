/**
 * Child processes for the cross-process cache suites: each runs test/fixtures/cache-worker.mjs
 * (one @idem/cache instance, from the built package) and is driven over IPC: request/reply
 * commands, and an event log the child fills (loader runs, invalidations) that a test waits on.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const WORKER = fileURLToPath(new URL('../fixtures/cache-worker.mjs', import.meta.url));

export interface Message {
  id?: number;
  ok?: boolean;
  result?: unknown;
  error?: string;
  event?: string;
  key?: string;
  pid?: number;
  kind?: string;
  at?: number;
  [field: string]: unknown;
}

/** One child process running a cache, with a request/reply channel and an event log. */
export class Worker {
  readonly events: Message[] = [];
  readonly #child: ChildProcess;
  readonly #pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  readonly #eventWaiters = new Set<() => void>();
  #seq = 0;

  /** `execArgv`: Node flags of the child (`--expose-gc` for the memory commands). */
  constructor(options: { execArgv?: string[] } = {}) {
    this.#child = fork(WORKER, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: options.execArgv });
    this.#child.on('message', (message: Message) => {
      if (message.id !== undefined) {
        const pending = this.#pending.get(message.id);
        this.#pending.delete(message.id);
        if (message.ok) pending?.resolve(message.result);
        else pending?.reject(new Error(`worker: ${message.error}`));
      } else {
        this.events.push(message);
        for (const wake of this.#eventWaiters) wake();
      }
    });
  }

  call<T = unknown>(cmd: string, args: Record<string, unknown> = {}): Promise<T> {
    const id = ++this.#seq;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
      this.#child.send({ id, cmd, ...args });
    });
  }

  /** Resolves with the first logged event matching `match` (already logged or still to come). */
  waitEvent(match: (m: Message) => boolean, timeoutMs = 5_000): Promise<Message> {
    return new Promise((resolve, reject) => {
      const check = (): boolean => {
        const found = this.events.find(match);
        if (found === undefined) return false;
        clearTimeout(timer);
        this.#eventWaiters.delete(onEvent);
        resolve(found);
        return true;
      };
      const onEvent = (): void => void check();
      const timer = setTimeout(() => {
        this.#eventWaiters.delete(onEvent);
        reject(new Error(`worker event not seen within ${timeoutMs}ms`));
      }, timeoutMs);
      this.#eventWaiters.add(onEvent);
      check();
    });
  }

  /** The logged events named `event`. */
  logged(event: string): Message[] {
    return this.events.filter((e) => e.event === event);
  }

  /** Kills the process at once (SIGKILL), as a crash would. */
  async kill(): Promise<void> {
    if (this.#child.exitCode !== null || this.#child.signalCode !== null) return;
    const exited = new Promise((resolve) => this.#child.once('exit', resolve));
    this.#child.kill('SIGKILL');
    await exited;
  }

  async stop(): Promise<void> {
    if (this.#child.exitCode !== null || this.#child.signalCode !== null) return;
    const exited = new Promise((resolve) => this.#child.once('exit', resolve));
    await this.call('close').catch(() => this.#child.kill('SIGKILL'));
    await exited;
  }
}

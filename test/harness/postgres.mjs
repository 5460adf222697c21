/**
 * Starts and stops real PostgreSQL servers for the tests: `initdb` into a temporary folder and
 * `postgres` on a free port of 127.0.0.1, as the `postgres` system user when the tests run as
 * root (PostgreSQL refuses to run as root). Each server is stopped by its own pid, never by name,
 * so the machine's own PostgreSQL is never touched. A server can be stopped and started again on
 * the same data folder, crashed (SIGKILL of the postmaster), and paused (SIGSTOP of the postmaster
 * and every backend).
 * Plain JavaScript (typed with JSDoc), like the Redis harness.
 */
import { execFileSync, spawn } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './redis.mjs';

/** @type {Set<PostgresServer>} */
const live = new Set();

process.once('exit', () => {
  for (const server of live) server.killNow();
});

/** Sends `name` to `pid`, ignoring a process that is already gone. @param {number} pid @param {NodeJS.Signals} name */
function signal(pid, name) {
  try {
    process.kill(pid, name);
  } catch {
    // gone already
  }
}

/** The folder of initdb and postgres: `pg_config --bindir`, else Debian's versioned folders. */
function binDir() {
  /** @type {string[]} */
  const candidates = [];
  try {
    candidates.push(execFileSync('pg_config', ['--bindir'], { encoding: 'utf8' }).trim());
  } catch {
    // pg_config comes with the client package; the server's folder is found below.
  }
  const debian = '/usr/lib/postgresql';
  if (existsSync(debian)) {
    for (const version of readdirSync(debian).sort((a, b) => Number(b) - Number(a)))
      candidates.push(join(debian, version, 'bin'));
  }
  const found = candidates.find((dir) => existsSync(join(dir, 'initdb')) && existsSync(join(dir, 'postgres')));
  if (found === undefined)
    throw new Error('PostgreSQL server binaries not found: install them (apt-get install -y postgresql)');
  return found;
}

/** The uid/gid to run as: the `postgres` user when we are root, else ourselves. */
function runAs() {
  if (process.getuid?.() !== 0) return {};
  const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
  const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
  return { uid, gid };
}

/**
 * The state and parent of process `pid` from /proc (Linux), or undefined once it is gone.
 * @param {number} pid
 * @returns {{ state: string, ppid: number } | undefined}
 */
function procStat(pid) {
  try {
    // pid (comm) state ppid …; comm may hold spaces, so split after the last ')'.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { state: String(state), ppid: Number(ppid) };
  } catch {
    return undefined;
  }
}

/** True while `pid` runs (a zombie, never reaped where PID 1 does not reap, counts as gone). @param {number} pid */
function running(pid) {
  const stat = procStat(pid);
  return stat !== undefined && stat.state !== 'Z' && stat.state !== 'X';
}

/**
 * The postmaster's children (backends, checkpointer, …). Each calls setsid(), so they are not in
 * the postmaster's process group: they are found by parent pid.
 * @param {number} postmaster
 * @returns {number[]}
 */
function childrenOf(postmaster) {
  return readdirSync('/proc')
    .filter((e) => /^\d+$/.test(e))
    .map(Number)
    .filter((pid) => procStat(pid)?.ppid === postmaster);
}

/** One PostgreSQL server we started. */
export class PostgresServer {
  /** @param {number} port @param {string} dir @param {string} bin */
  constructor(port, dir, bin) {
    /** @readonly */
    this.port = port;
    /** @readonly The temporary folder; the data folder is `${dir}/data`. */
    this.dir = dir;
    /** @private @readonly */
    this.bin = bin;
    /** @type {import('node:child_process').ChildProcess | undefined} */
    this.child = undefined;
    /** True between `pause()` and `resume()`. */
    this.paused = false;
    /** @type {number[]} The processes `pause()` stopped. */
    this.stopped = [];
  }

  /**
   * Creates a cluster with initdb and starts it; resolves once it accepts connections.
   * @returns {Promise<PostgresServer>}
   */
  static async start() {
    const bin = binDir();
    const dir = mkdtempSync(join(tmpdir(), 'idem-pg-'));
    const ids = runAs();
    if (ids.uid !== undefined) chownSync(dir, ids.uid, ids.gid);
    const server = new PostgresServer(await freePort(), dir, bin);
    await new Promise((resolve, reject) => {
      const init = spawn(
        join(bin, 'initdb'),
        ['-D', server.dataDir, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync', '--no-instructions'],
        { ...ids, stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let log = '';
      init.stdout.on('data', (d) => (log += d));
      init.stderr.on('data', (d) => (log += d));
      init.once('error', reject);
      init.once('exit', (code) =>
        code === 0 ? resolve(undefined) : reject(new Error(`initdb failed (${code}):\n${log}`)),
      );
    });
    await server.launch();
    return server;
  }

  /** @returns {string} */
  get dataDir() {
    return join(this.dir, 'data');
  }

  /** A connection string for `pg`. @returns {string} */
  get url() {
    return `postgres://postgres@127.0.0.1:${this.port}/postgres`;
  }

  /** @returns {number | undefined} */
  get pid() {
    return this.child?.pid;
  }

  /** Whether the postmaster runs (paused counts as running). @returns {boolean} */
  get alive() {
    const child = this.child;
    return child !== undefined && child.exitCode === null && child.signalCode === null;
  }

  /** Starts the postmaster on the data folder and resolves once it is ready (after crash recovery too). @returns {Promise<void>} */
  launch() {
    const args = [
      '-D',
      this.dataDir,
      '-p',
      String(this.port),
      '-c',
      'listen_addresses=127.0.0.1',
      '-c',
      'unix_socket_directories=',
      // Speed over durability against an OS crash: data still reaches the kernel, so a killed
      // postmaster loses nothing committed (synchronous_commit stays on for that reason).
      '-c',
      'fsync=off',
      '-c',
      'full_page_writes=off',
      '-c',
      'max_connections=300',
      '-c',
      'shared_buffers=32MB',
      '-c',
      'log_min_messages=warning',
      '-c',
      'logging_collector=off',
      '-c',
      'log_line_prefix=',
    ];
    const child = spawn(join(this.bin, 'postgres'), args, {
      ...runAs(),
      cwd: this.dir,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    this.child = child;
    this.paused = false;
    live.add(this);
    return new Promise((resolve, reject) => {
      let log = '';
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`postgres on port ${this.port} not ready after 30 s:\n${log}`));
      }, 30_000);
      /** @param {Buffer} data */
      const onData = (data) => {
        log += data.toString();
        // The postmaster says so once it accepts connections, after any crash recovery.
        if (log.includes('ready to accept connections')) {
          clearTimeout(timer);
          child.stderr?.off('data', onData);
          child.stderr?.resume();
          resolve();
        }
      };
      child.stderr?.on('data', onData);
      child.once('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`postgres on port ${this.port} exited early (${code ?? signal}):\n${log}`));
      });
    });
  }

  /** Freezes the postmaster and every backend (SIGSTOP): connections stay open, nothing answers. */
  pause() {
    const pid = this.pid;
    if (!this.alive || pid === undefined) return;
    // The postmaster first, so that it forks no new backend meanwhile.
    process.kill(pid, 'SIGSTOP');
    /** @type {number[]} */
    this.stopped = [pid, ...childrenOf(pid)];
    for (const child of this.stopped.slice(1)) signal(child, 'SIGSTOP');
    this.paused = true;
  }

  /** Thaws a paused server (SIGCONT to every process `pause()` stopped). */
  resume() {
    for (const pid of this.stopped ?? []) signal(pid, 'SIGCONT');
    this.stopped = [];
    this.paused = false;
  }

  /**
   * Sends `signal` to the postmaster and resolves when every process of the server is gone.
   * SIGINT is a fast shutdown (clients are disconnected, everything committed is kept), SIGKILL a
   * crash: the backends notice their postmaster died and exit, and the next start recovers from WAL.
   * @param {NodeJS.Signals} [signal]
   */
  async kill(signal = 'SIGKILL') {
    const child = this.child;
    const pid = child?.pid;
    if (child === undefined || pid === undefined) return;
    const exited = this.alive ? new Promise((resolve) => child.once('exit', resolve)) : Promise.resolve();
    if (this.paused) this.resume();
    // Remembered before the postmaster goes: its orphans are reparented, and a new postmaster
    // cannot start while they still hold the shared memory.
    const children = childrenOf(pid);
    if (this.alive) child.kill(signal);
    await exited;
    for (let waited = 0; children.some(running) && waited < 15_000; waited += 20) {
      if (waited === 10_000) for (const orphan of children) signal(orphan, 'SIGKILL');
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    this.paused = false;
  }

  /** Stops the server cleanly (fast shutdown), keeping its data folder for `launch()`. */
  async shutdown() {
    await this.kill('SIGINT');
  }

  /** Stops it and starts it again on the same data folder and port. */
  async restart() {
    await this.shutdown();
    await this.launch();
  }

  /** Stops the server and removes its folder. */
  async stop() {
    await this.kill('SIGINT');
    live.delete(this);
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** @internal On process exit: kill whatever is left, synchronously. */
  killNow() {
    const pid = this.child?.pid;
    if (pid === undefined || !running(pid)) return;
    for (const target of [...childrenOf(pid), pid]) {
      signal(target, 'SIGCONT');
      signal(target, 'SIGKILL');
    }
  }
}

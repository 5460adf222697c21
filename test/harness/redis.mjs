/**
 * Starts and stops real redis-server processes for the tests and the soak: one node, several
 * independent masters, or a small Cluster. Every server runs on a free port in a temporary
 * directory and is stopped after the run; the harness never touches a server it did not start.
 * Plain JavaScript (typed with JSDoc), so `npm run soak` runs it with node alone.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
/** @type {Set<RedisServer>} */
const live = new Set();

process.once('exit', () => {
  for (const server of live) server.child?.kill('SIGKILL');
});

/**
 * A free TCP port on 127.0.0.1, as the kernel hands it out.
 * @returns {Promise<number>}
 */
export async function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/**
 * @typedef {object} RedisServerOptions
 * @property {boolean} [cluster]
 * @property {string[]} [args] Extra redis-server arguments, e.g. ['--maxmemory', '10mb'].
 */

/** One redis-server process we started. */
export class RedisServer {
  /**
   * @param {number} port
   * @param {RedisServerOptions} options
   */
  constructor(port, options) {
    /** @readonly */
    this.port = port;
    /** @private @readonly */
    this.options = options;
    /** @readonly */
    this.dir = mkdtempSync(join(tmpdir(), 'idem-redis-'));
    /** @type {import('node:child_process').ChildProcess | undefined} */
    this.child = undefined;
    /** True between `pause()` and `resume()` (or a kill). */
    this.paused = false;
  }

  /**
   * Starts a server on a free port and resolves once it accepts connections.
   * @param {RedisServerOptions} [options]
   * @returns {Promise<RedisServer>}
   */
  static async start(options = {}) {
    const server = new RedisServer(await freePort(), options);
    await server.launch();
    return server;
  }

  /** @returns {string} */
  get url() {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** @returns {number | undefined} */
  get pid() {
    return this.child?.pid;
  }

  /** Whether the process is running (paused counts as running). @returns {boolean} */
  get alive() {
    const child = this.child;
    return child !== undefined && child.exitCode === null && child.signalCode === null;
  }

  /** @private @returns {Promise<void>} */
  launch() {
    const args = [
      '--port',
      String(this.port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      '--daemonize',
      'no',
      '--dir',
      this.dir,
      '--loglevel',
      'notice',
      ...(this.options.cluster
        ? ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', '2000']
        : []),
      ...(this.options.args ?? []),
    ];
    const child = spawn('redis-server', args, { cwd: this.dir, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    this.paused = false;
    live.add(this);
    return new Promise((resolve, reject) => {
      let log = '';
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`redis-server on port ${this.port} not ready after 10 s:\n${log}`));
      }, 10_000);
      /** @param {Buffer} data */
      const onData = (data) => {
        log += data.toString();
        if (log.includes('Ready to accept connections')) {
          clearTimeout(timer);
          child.stdout?.off('data', onData);
          child.stdout?.resume();
          resolve();
        }
      };
      child.stdout?.on('data', onData);
      child.stderr?.resume();
      child.once('error', (/** @type {NodeJS.ErrnoException} */ error) => {
        clearTimeout(timer);
        live.delete(this);
        reject(
          error.code === 'ENOENT'
            ? new Error('redis-server is not on PATH: install it (apt-get install -y redis-server)')
            : error,
        );
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`redis-server on port ${this.port} exited early (${code ?? signal}):\n${log}`));
      });
    });
  }

  /** Freezes the process (SIGSTOP): connections stay open, nothing answers. */
  pause() {
    if (this.alive) this.child?.kill('SIGSTOP');
    this.paused = true;
  }

  /** Thaws a paused process (SIGCONT). */
  resume() {
    if (this.alive) this.child?.kill('SIGCONT');
    this.paused = false;
  }

  /** Kills the process (SIGKILL) and resolves when it is gone; everything it held is lost. */
  async kill() {
    const child = this.child;
    if (child === undefined || !this.alive) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGCONT');
    child.kill('SIGKILL');
    await exited;
    this.paused = false;
  }

  /** Starts the server again on the same port (after `kill`), empty. */
  async restart() {
    await this.kill();
    await this.launch();
  }

  /** Stops the server and removes its directory. */
  async stop() {
    await this.kill();
    live.delete(this);
    rmSync(this.dir, { recursive: true, force: true });
  }

  /**
   * Calls per command since the last {@link resetStats} (`INFO commandstats`), e.g.
   * `{ hmget: 1, evalsha: 2 }`. Commands run inside scripts are counted too.
   * @returns {Promise<Record<string, number>>}
   */
  async commandStats() {
    /** @type {Record<string, number>} */
    const stats = {};
    for (const match of (await this.cli('info', 'commandstats')).matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
      stats[/** @type {string} */ (match[1])] = Number(match[2]);
    }
    return stats;
  }

  /** Zeroes the server's statistics (`CONFIG RESETSTAT`). */
  async resetStats() {
    await this.cli('config', 'resetstat');
  }

  /**
   * Runs a redis-cli command against this server and returns its output.
   * @param {...string} args
   * @returns {Promise<string>}
   */
  async cli(...args) {
    const { stdout } = await run('redis-cli', ['-h', '127.0.0.1', '-p', String(this.port), ...args]);
    return stdout;
  }
}

/**
 * Starts `count` independent masters (e.g. the three of a Redlock quorum).
 * @param {number} count
 * @returns {Promise<RedisServer[]>}
 */
export async function startMasters(count) {
  return Promise.all(Array.from({ length: count }, () => RedisServer.start()));
}

/**
 * A Cluster of masters without replicas, created with `redis-cli --cluster create`.
 * @typedef {object} RedisCluster
 * @property {RedisServer[]} nodes
 * @property {{ host: string, port: number }[]} startupNodes `{ host, port }` of every node, as ioredis' Cluster wants them.
 * @property {() => Promise<void>} stop
 */

/**
 * Starts a Cluster of `masters` nodes and waits until every node reports `cluster_state:ok`.
 * `args` go to every node, e.g. `['--cluster-require-full-coverage', 'no']` so that the other
 * masters keep serving their slots while one is down.
 * @param {number} [masters]
 * @param {{ args?: string[] }} [options]
 * @returns {Promise<RedisCluster>}
 */
export async function startCluster(masters = 3, options = {}) {
  const nodes = await Promise.all(
    Array.from({ length: masters }, () => RedisServer.start({ cluster: true, args: options.args ?? [] })),
  );
  const addresses = nodes.map((n) => `127.0.0.1:${n.port}`);
  await run('redis-cli', ['--cluster', 'create', ...addresses, '--cluster-replicas', '0', '--cluster-yes']);
  // The nodes agree on the slot map through gossip; the cluster is usable once every node says ok.
  for (const node of nodes) {
    for (let attempt = 0; ; attempt++) {
      if ((await node.cli('cluster', 'info')).includes('cluster_state:ok')) break;
      if (attempt > 200) throw new Error(`cluster node ${node.port} never reached cluster_state:ok`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  return {
    nodes,
    startupNodes: nodes.map((n) => ({ host: '127.0.0.1', port: n.port })),
    stop: async () => {
      await Promise.all(nodes.map((n) => n.stop()));
    },
  };
}

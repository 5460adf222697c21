/**
 * Starts and stops real redis-server processes for the tests: one node, several independent
 * masters, or a small Cluster. Every server runs on a free port in a temporary directory and is
 * stopped after the run; the harness never touches a server it did not start.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const live = new Set<RedisServer>();

process.once('exit', () => {
  for (const server of live) server.child?.kill('SIGKILL');
});

/** A free TCP port on 127.0.0.1, as the kernel hands it out. */
export async function freePort(): Promise<number> {
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

export interface RedisServerOptions {
  cluster?: boolean;
  /** Extra redis-server arguments, e.g. ['--maxmemory', '10mb']. */
  args?: string[];
}

/** One redis-server process we started. */
export class RedisServer {
  child: ChildProcess | undefined;
  readonly dir: string;

  private constructor(readonly port: number, private readonly options: RedisServerOptions) {
    this.dir = mkdtempSync(join(tmpdir(), 'idem-redis-'));
  }

  /** Starts a server on a free port and resolves once it accepts connections. */
  static async start(options: RedisServerOptions = {}): Promise<RedisServer> {
    const server = new RedisServer(await freePort(), options);
    await server.launch();
    return server;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  private launch(): Promise<void> {
    const args = [
      '--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
      '--daemonize', 'no', '--dir', this.dir, '--loglevel', 'notice',
      ...(this.options.cluster ? ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', '2000'] : []),
      ...(this.options.args ?? []),
    ];
    const child = spawn('redis-server', args, { cwd: this.dir, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    live.add(this);
    return new Promise((resolve, reject) => {
      let log = '';
      const onData = (data: Buffer): void => {
        log += data.toString();
        if (log.includes('Ready to accept connections')) {
          child.stdout?.off('data', onData);
          child.stdout?.resume();
          resolve();
        }
      };
      child.stdout?.on('data', onData);
      child.stderr?.resume();
      child.once('error', (error: NodeJS.ErrnoException) => {
        live.delete(this);
        reject(error.code === 'ENOENT' ? new Error('redis-server is not on PATH: install it (apt-get install -y redis-server)') : error);
      });
      child.once('exit', (code, signal) => reject(new Error(`redis-server on port ${this.port} exited early (${code ?? signal}):\n${log}`)));
    });
  }

  /** Freezes the process (SIGSTOP): connections stay open, nothing answers. */
  pause(): void {
    this.child?.kill('SIGSTOP');
  }

  /** Thaws a paused process (SIGCONT). */
  resume(): void {
    this.child?.kill('SIGCONT');
  }

  /** Kills the process (SIGKILL) and resolves when it is gone. */
  async kill(): Promise<void> {
    const child = this.child;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGCONT');
    child.kill('SIGKILL');
    await exited;
  }

  /** Starts the server again on the same port (after `kill`), empty. */
  async restart(): Promise<void> {
    await this.kill();
    await this.launch();
  }

  /** Stops the server and removes its directory. */
  async stop(): Promise<void> {
    await this.kill();
    live.delete(this);
    rmSync(this.dir, { recursive: true, force: true });
  }

  /**
   * Calls per command since the last {@link resetStats} (`INFO commandstats`), e.g.
   * `{ hgetall: 1, evalsha: 2 }`. Commands run inside scripts are counted too.
   */
  async commandStats(): Promise<Record<string, number>> {
    const stats: Record<string, number> = {};
    for (const match of (await this.cli('info', 'commandstats')).matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
      stats[match[1] as string] = Number(match[2]);
    }
    return stats;
  }

  /** Zeroes the server's statistics (`CONFIG RESETSTAT`). */
  async resetStats(): Promise<void> {
    await this.cli('config', 'resetstat');
  }

  /** Runs a redis-cli command against this server and returns its output. */
  async cli(...args: string[]): Promise<string> {
    const { stdout } = await run('redis-cli', ['-h', '127.0.0.1', '-p', String(this.port), ...args]);
    return stdout;
  }
}

/** Starts `count` independent masters (e.g. the three of a Redlock quorum). */
export async function startMasters(count: number): Promise<RedisServer[]> {
  return Promise.all(Array.from({ length: count }, () => RedisServer.start()));
}

/** A Cluster of `masters` nodes without replicas, created with `redis-cli --cluster create`. */
export interface RedisCluster {
  nodes: RedisServer[];
  /** `{ host, port }` of every node, as ioredis' Cluster wants them. */
  startupNodes: { host: string; port: number }[];
  stop(): Promise<void>;
}

/**
 * Starts a Cluster of `masters` nodes and waits until every node reports `cluster_state:ok`.
 * `args` go to every node, e.g. `['--cluster-require-full-coverage', 'no']` so that the other
 * masters keep serving their slots while one is down.
 */
export async function startCluster(masters = 3, options: { args?: string[] } = {}): Promise<RedisCluster> {
  const nodes = await Promise.all(Array.from({ length: masters }, () => RedisServer.start({ cluster: true, args: options.args ?? [] })));
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

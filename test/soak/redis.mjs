// One redis-server for the soak, started on a free port in a temporary directory with no
// persistence (so a kill + restart empties it), and the faults the chaos schedule injects:
// pause (SIGSTOP), resume (SIGCONT), kill (SIGKILL) and restart on the same port.
// A plain-JS port of the parts of test/harness/redis.ts the soak needs, so `npm run soak` runs
// without a TypeScript compiler.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A free TCP port on 127.0.0.1, as the kernel hands it out. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

export class RedisServer {
  /** @param {number} port */
  constructor(port) {
    this.port = port;
    this.dir = mkdtempSync(join(tmpdir(), 'idem-soak-redis-'));
    /** @type {import('node:child_process').ChildProcess | undefined} */
    this.child = undefined;
    this.paused = false;
  }

  /** Starts a server on a free port; resolves once it accepts connections. */
  static async start() {
    const server = new RedisServer(await freePort());
    await server.launch();
    return server;
  }

  get url() {
    return `redis://127.0.0.1:${this.port}`;
  }

  get alive() {
    const child = this.child;
    return child !== undefined && child.exitCode === null && child.signalCode === null;
  }

  launch() {
    const args = [
      '--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
      '--daemonize', 'no', '--dir', this.dir, '--loglevel', 'notice',
    ];
    const child = spawn('redis-server', args, { cwd: this.dir, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    this.paused = false;
    return new Promise((resolve, reject) => {
      let log = '';
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`redis-server on port ${this.port} not ready after 10 s:\n${log}`));
      }, 10_000);
      const onData = (data) => {
        log += data.toString();
        if (log.includes('Ready to accept connections')) {
          clearTimeout(timer);
          child.stdout.off('data', onData);
          child.stdout.resume();
          resolve();
        }
      };
      child.stdout.on('data', onData);
      child.stderr.resume();
      child.once('error', (error) => reject(error.code === 'ENOENT' ? new Error('redis-server is not on PATH: install it (apt-get install -y redis-server)') : error));
      child.once('exit', (code, signal) => reject(new Error(`redis-server on port ${this.port} exited early (${code ?? signal}):\n${log}`)));
    });
  }

  /** Freezes the process: connections stay open, nothing answers. */
  pause() {
    if (this.alive) this.child.kill('SIGSTOP');
    this.paused = true;
  }

  resume() {
    if (this.alive) this.child.kill('SIGCONT');
    this.paused = false;
  }

  /** SIGKILL; resolves once the process is gone. Everything it held is lost. */
  async kill() {
    if (!this.alive) return;
    const child = this.child;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGCONT');
    child.kill('SIGKILL');
    await exited;
    this.paused = false;
  }

  /** Starts again on the same port, empty. */
  async restart() {
    await this.kill();
    await this.launch();
  }

  async stop() {
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

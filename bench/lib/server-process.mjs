/** Starts a server under test (servers/server.mjs) in its own process and talks to it over IPC. */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ENTRY = fileURLToPath(new URL('../servers/server.mjs', import.meta.url));

/** servers/standalone.mjs: one variant without IPC, for tools that run it under something else. */
export const STANDALONE = fileURLToPath(new URL('../servers/standalone.mjs', import.meta.url));

/** The port a standalone server prints (`PORT <n>`) once it listens; rejects if it exits first. */
export function listeningPort(child, variant) {
  return new Promise((resolve, reject) => {
    let text = '';
    child.stdout.on('data', (chunk) => {
      text += chunk;
      const match = /PORT (\d+)/.exec(text);
      if (match) resolve(Number(match[1]));
    });
    child.once('exit', (code) => reject(new Error(`${variant} exited (${code}) before listening`)));
  });
}

/**
 * @param {object} cfg { framework, variant, redisUrl, concurrent?, delayMs? }
 * @param {{ execArgv?: string[], entry?: string }} [options] execArgv e.g. ['--cpu-prof', '--cpu-prof-dir', dir];
 *   entry: another server script speaking the same IPC (for experiments)
 */
export async function startServer(cfg, options = {}) {
  const child = fork(options.entry ?? ENTRY, [JSON.stringify(cfg)], {
    execArgv: options.execArgv ?? [],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, NODE_ENV: 'production' },
  });
  const pending = [];
  child.on('message', (message) => {
    if (message.type === 'stats') pending.shift()?.(message);
  });
  const ready = await new Promise((resolve, reject) => {
    const onExit = (code) =>
      reject(new Error(`server ${cfg.framework}/${cfg.variant} exited (${code}) before it was ready`));
    child.once('exit', onExit);
    child.on('message', function onReady(message) {
      if (message.type !== 'ready') return;
      child.off('message', onReady);
      child.off('exit', onExit);
      resolve(message);
    });
  });
  return {
    cfg,
    port: ready.port,
    pid: ready.pid,
    url: `http://127.0.0.1:${ready.port}`,
    /** { cpu (µs, user + system), rss (bytes), executions } */
    stats() {
      return new Promise((resolve) => {
        pending.push(resolve);
        child.send({ type: 'stats' });
      });
    },
    /** Starts the server's CPU profiler (measured windows only, no start-up in the profile). */
    profileStart() {
      child.send({ type: 'profile-start' });
    },
    /** Stops it and writes the .cpuprofile to `path`. */
    profileStop(path) {
      return new Promise((resolve) => {
        child.on('message', function onProfiled(message) {
          if (message.type !== 'profiled') return;
          child.off('message', onProfiled);
          resolve();
        });
        child.send({ type: 'profile-stop', path });
      });
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.send({ type: 'exit' });
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

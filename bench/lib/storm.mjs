/**
 * The duplicate storm: N server processes (no load balancer in front), and `total` clients that
 * each hold their own TCP connection and send the same request with the same Idempotency-Key at
 * the same moment: every socket is connected first, then all requests are written in one
 * synchronous loop. Handler executions are counted by the handlers themselves (IPC counters);
 * the time reported is until the last client has its complete answer.
 */
import { connect } from 'node:net';
import { REQUEST_BODY } from './load.mjs';
import { startServer } from './server-process.mjs';

function openSocket(port) {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: '127.0.0.1', noDelay: true });
    socket.once('connect', () => resolve(socket));
    socket.once('error', reject);
  });
}

/** Status and body of a raw HTTP/1.1 response (Content-Length or chunked). */
function parseResponse(raw) {
  const head = raw.indexOf('\r\n\r\n');
  if (head < 0) return { status: 0, body: '' };
  const lines = raw.subarray(0, head).toString('latin1').split('\r\n');
  const status = Number(lines[0].split(' ')[1]);
  let body = raw.subarray(head + 4);
  if (lines.some((l) => /^transfer-encoding:\s*chunked/i.test(l))) {
    const parts = [];
    let at = 0;
    for (;;) {
      const eol = body.indexOf('\r\n', at);
      if (eol < 0) break;
      const size = parseInt(body.subarray(at, eol).toString('latin1'), 16);
      if (!size) break;
      parts.push(body.subarray(eol + 2, eol + 2 + size));
      at = eol + 2 + size + 2;
    }
    body = Buffer.concat(parts);
  }
  return { status, body: body.toString('utf8') };
}

/** Fires the storm at `ports` and collects every answer. */
async function fire(ports, { total, key, timeoutMs }) {
  const sockets = await Promise.all(Array.from({ length: total }, (_, i) => openSocket(ports[i % ports.length])));
  const request = Buffer.from(
    'POST /orders HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n' +
      `Content-Length: ${Buffer.byteLength(REQUEST_BODY)}\r\nIdempotency-Key: ${key}\r\nConnection: close\r\n\r\n${REQUEST_BODY}`,
  );
  let started = 0n;
  const answers = sockets.map(
    (socket) =>
      new Promise((resolve) => {
        const chunks = [];
        const timer = setTimeout(() => {
          socket.destroy();
          resolve({ status: 'timeout', body: '', ms: timeoutMs });
        }, timeoutMs);
        socket.on('data', (chunk) => chunks.push(chunk));
        socket.on('error', () => {});
        socket.on('close', () => {
          clearTimeout(timer);
          const ms = Number(process.hrtime.bigint() - started) / 1e6;
          const raw = Buffer.concat(chunks);
          resolve(raw.length === 0 ? { status: 'reset', body: '', ms } : { ...parseResponse(raw), ms });
        });
      }),
  );
  started = process.hrtime.bigint();
  for (const socket of sockets) socket.write(request);
  return Promise.all(answers);
}

/**
 * One storm. `spec`: { id, label, framework, variant, processes, concurrent?, delayMs }.
 * Returns executions (summed over the processes), status counts, distinct 2xx bodies and timings.
 */
export async function runStorm(spec, { redis, total, timeoutMs = 30_000 }) {
  const servers = await Promise.all(
    Array.from({ length: spec.processes }, () =>
      startServer({
        framework: spec.framework,
        variant: spec.variant,
        redisUrl: redis.url,
        concurrent: spec.concurrent,
        delayMs: spec.delayMs,
      }),
    ),
  );
  try {
    const key = `storm-${spec.id}-${Date.now()}`;
    const answers = await fire(
      servers.map((s) => s.port),
      { total, key, timeoutMs },
    );
    // Let stores finish what they do after answering (fire-and-forget writes) before counting.
    await new Promise((resolve) => setTimeout(resolve, 200));
    const stats = await Promise.all(servers.map((s) => s.stats()));
    const statuses = {};
    const bodies = new Set();
    for (const answer of answers) {
      statuses[answer.status] = (statuses[answer.status] ?? 0) + 1;
      if (typeof answer.status === 'number' && answer.status >= 200 && answer.status < 300) bodies.add(answer.body);
    }
    const times = answers.map((a) => a.ms).sort((a, b) => a - b);
    return {
      id: spec.id,
      label: spec.label,
      processes: spec.processes,
      concurrent: spec.concurrent ?? null,
      clients: total,
      executions: stats.reduce((a, s) => a + s.executions, 0),
      executionsPerProcess: stats.map((s) => s.executions),
      statuses,
      distinct2xxBodies: bodies.size,
      answered: answers.filter((a) => typeof a.status === 'number' && a.status > 0).length,
      allAnsweredMs: times[times.length - 1],
      medianAnswerMs: times[times.length >> 1],
    };
  } finally {
    await Promise.all(servers.map((s) => s.stop()));
  }
}

/** The storms: idem and every peer, each on the store it would share across processes. */
export const STORMS = [
  {
    id: 'idem-redis-reject',
    label: 'idem (Redis), concurrent: reject',
    framework: 'express',
    variant: 'idem-redis',
    processes: 4,
    concurrent: 'reject',
    pkg: 'idem',
  },
  {
    id: 'idem-redis-wait',
    label: 'idem (Redis), concurrent: wait',
    framework: 'express',
    variant: 'idem-redis',
    processes: 4,
    concurrent: 'wait',
    pkg: 'idem',
  },
  {
    id: 'idem-koa-redis-wait',
    label: 'idem on Koa (Redis), concurrent: wait',
    framework: 'koa',
    variant: 'idem-redis',
    processes: 4,
    concurrent: 'wait',
    pkg: 'idem',
  },
  {
    id: 'ei-redis',
    label: 'express-idempotency (Redis adapter)',
    framework: 'express',
    variant: 'ei-redis',
    processes: 4,
    pkg: 'express-idempotency',
  },
  {
    id: 'ni-redis',
    label: '@node-idempotency (Redis)',
    framework: 'express',
    variant: 'ni-redis',
    processes: 4,
    pkg: '@node-idempotency',
  },
  {
    id: 'ni-redis-wait',
    label: '@node-idempotency (Redis), inProgressStrategy.wait',
    framework: 'express',
    variant: 'ni-redis',
    processes: 4,
    concurrent: 'wait',
    pkg: '@node-idempotency',
  },
  // Memory stores are per process: exactly-once across processes is not theirs to give, so their
  // storm is 1000 duplicates on one process.
  {
    id: 'idem-memory-reject',
    label: 'idem (memory), concurrent: reject',
    framework: 'express',
    variant: 'idem-memory',
    processes: 1,
    concurrent: 'reject',
    pkg: 'idem',
  },
  {
    id: 'idem-memory-wait',
    label: 'idem (memory), concurrent: wait',
    framework: 'express',
    variant: 'idem-memory',
    processes: 1,
    concurrent: 'wait',
    pkg: 'idem',
  },
  {
    id: 'ei-memory',
    label: 'express-idempotency (memory)',
    framework: 'express',
    variant: 'ei-memory',
    processes: 1,
    pkg: 'express-idempotency',
  },
  {
    id: 'ni-memory',
    label: '@node-idempotency (memory)',
    framework: 'express',
    variant: 'ni-memory',
    processes: 1,
    pkg: '@node-idempotency',
  },
];

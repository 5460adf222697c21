#!/usr/bin/env node
/**
 * CPU instructions per request of server variants, counted by valgrind (callgrind): a figure that
 * does not move with the machine's speed, unlike req/s and CPU time on a shared VM (FINDINGS.md, J).
 * Each variant runs twice under valgrind, for `warm` and for `warm + measured` requests; the
 * difference divided by `measured` is the steady-state cost of one request, start-up and warm-up
 * excluded. It counts every thread of the server (JIT compiler and GC helpers included), so the
 * warm-up must outlast V8's tiering, which under valgrind takes thousands of requests: with Koa
 * 3 000 leave a visible compiler share (FINDINGS.md, I), Express needs more. Slow: a Koa request
 * costs ~25 ms under valgrind, an Express one ~60 ms.
 *
 * Usage: node bench/tools/instructions.mjs <express|koa> <scenario: passthrough|replay|first> <variant>… [--warm=3000] [--measured=5000]
 * Needs valgrind and, for Redis variants, a redis-server on 127.0.0.1:6379 (or --redis=url).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { completeKey, requestFor } from '../lib/load.mjs';
import { STANDALONE, listeningPort } from '../lib/server-process.mjs';

const args = process.argv.slice(2);
const options = Object.fromEntries(args.filter((a) => a.startsWith('--')).map((a) => a.slice(2).split('=')));
const [framework, scenario, ...variants] = args.filter((a) => !a.startsWith('--'));
const warm = Number(options.warm ?? 3000);
const measured = Number(options.measured ?? 5000);
const redisUrl = options.redis ?? 'redis://127.0.0.1:6379';
if (
  !['express', 'koa'].includes(framework) ||
  !['passthrough', 'replay', 'first'].includes(scenario) ||
  variants.length === 0
) {
  console.error(
    'usage: node bench/tools/instructions.mjs <express|koa> <passthrough|replay|first> <variant>… [--warm=3000] [--measured=5000]',
  );
  process.exit(2);
}
const request = requestFor(scenario === 'first' ? 'unique' : scenario === 'replay' ? `instr-${Date.now()}` : undefined);

/** Instructions valgrind counted for a server that answered `amount` requests (start-up included). */
async function count(variant, amount) {
  const dir = mkdtempSync(join(tmpdir(), 'idem-instr-'));
  const out = join(dir, 'callgrind.out');
  const child = spawn(
    'valgrind',
    [
      '--tool=callgrind',
      '--smc-check=all-non-file',
      '--separate-threads=yes',
      `--callgrind-out-file=${out}`,
      process.execPath,
      STANDALONE,
      framework,
      variant,
      redisUrl,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  try {
    const port = await listeningPort(child, variant);
    const url = `http://127.0.0.1:${port}${request.path}`;
    if (scenario === 'replay') await completeKey(url, request);
    const result = await autocannon({
      url,
      method: request.method,
      headers: request.headers,
      body: request.body,
      idReplacement: request.idReplacement,
      connections: 4,
      amount,
      timeout: 120,
    });
    const ok = result['2xx'];
    if (ok !== amount)
      throw new Error(
        `${variant}: ${ok} of ${amount} requests answered 2xx (${JSON.stringify(result.statusCodeStats)})`,
      );
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
    // One file per thread: the main thread (-01) runs the requests; the others are V8's background
    // compiler and GC helpers, whose share depends on how far tiering got, which varies run to run.
    const threads = readdirSync(dir).filter((f) => f.startsWith('callgrind.out'));
    const counts = threads.map((f) => {
      const summary = /^summary: (\d+)/m.exec(readFileSync(join(dir, f), 'utf8'));
      return { main: f.endsWith('-01'), n: summary ? Number(summary[1]) : 0 };
    });
    const main = counts.find((c) => c.main);
    if (!main) throw new Error(`${variant}: no callgrind output for the main thread`);
    return { main: main.n, all: counts.reduce((a, c) => a + c.n, 0) };
  } finally {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}

const rows = [];
const fmt = (n) => Math.round(n).toLocaleString('en-US').padStart(9);
for (const variant of variants) {
  const base = await count(variant, warm);
  const total = await count(variant, warm + measured);
  const perRequest = (total.main - base.main) / measured;
  const allThreads = (total.all - base.all) / measured;
  rows.push({ variant, perRequest });
  console.log(
    `${framework} ${scenario} ${variant.padEnd(12)} ${fmt(perRequest)} instructions per request on the main thread (${fmt(allThreads)} with V8's background threads)`,
  );
}
if (rows.length > 1) {
  const [reference] = rows;
  for (const row of rows.slice(1))
    console.log(
      `${row.variant} ÷ ${reference.variant}: ${(row.perRequest / reference.perRequest).toFixed(2)}× the instructions (${(reference.perRequest / row.perRequest).toFixed(2)} as a throughput-like ratio)`,
    );
}

#!/usr/bin/env node
/**
 * Summarizes a V8 .cpuprofile (from `node --cpu-prof`, e.g. `node bench/run.mjs --profile=express/idem-redis`):
 * self time per function, and total (inclusive) time of the functions whose file matches --filter
 * (default: idem's own packages). Usage: node bench/tools/prof-summary.mjs file.cpuprofile [--top=30] [--filter=packages/]
 */
import { readFileSync } from 'node:fs';

const [file, ...rest] = process.argv.slice(2);
const opts = Object.fromEntries(rest.map((a) => a.replace(/^--/, '').split('=')));
const top = Number(opts.top ?? 30);
const filter = opts.filter ?? '/packages/';
const profile = JSON.parse(readFileSync(file, 'utf8'));
// run.mjs --profile writes the number of responses the server gave next to its profile.
let requests = Number(opts.requests ?? 0);
try {
  requests ||= JSON.parse(readFileSync(`${file}.json`, 'utf8')).requests;
} catch {
  // no side file: shares only
}

const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const parent = new Map();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
// Sample time: deltas in µs, attributed to the sampled node.
const self = new Map();
let total = 0;
profile.samples.forEach((id, i) => {
  const dt = profile.timeDeltas[i] ?? 0;
  self.set(id, (self.get(id) ?? 0) + dt);
  total += dt;
});
const name = (n) => {
  const f = n.callFrame;
  const url = f.url
    .replace(/^file:\/\//, '')
    .replace(/.*node_modules\//, 'nm:')
    .replace(/.*\/work\/main\//, '');
  return `${f.functionName || '(anonymous)'} ${url}:${f.lineNumber + 1}`;
};
const selfBy = new Map();
const inclBy = new Map();
for (const [id, t] of self) {
  const n = byId.get(id);
  const key = name(n);
  selfBy.set(key, (selfBy.get(key) ?? 0) + t);
  // Inclusive: charge every distinct matching frame on the stack once.
  const seen = new Set();
  for (let cur = id; cur !== undefined; cur = parent.get(cur)) {
    const k = name(byId.get(cur));
    if (seen.has(k)) continue;
    seen.add(k);
    if (byId.get(cur).callFrame.url.includes(filter)) inclBy.set(k, (inclBy.get(k) ?? 0) + t);
  }
}
const idle = [...selfBy].filter(([k]) => k.startsWith('(idle)')).reduce((a, [, t]) => a + t, 0);
const busy = total - idle;
// Shares of the busy (non-idle) time: a bench server idles while the others are measured.
const pct = (t) =>
  `${((t / busy) * 100).toFixed(1).padStart(5)}%${requests ? ` ${(t / requests).toFixed(2).padStart(6)} µs/req` : ''}`;
console.log(
  `total ${(total / 1000).toFixed(0)} ms, busy ${(busy / 1000).toFixed(0)} ms${requests ? ` over ${requests} requests = ${(busy / requests).toFixed(1)} µs/req` : ''}; shares below are of busy time`,
);
console.log('\nself time:');
for (const [k, t] of [...selfBy]
  .filter(([k]) => !k.startsWith('(idle)'))
  .sort((a, b) => b[1] - a[1])
  .slice(0, top))
  console.log(`${pct(t)}  ${k}`);
console.log(`\ninclusive time of frames matching ${filter}:`);
for (const [k, t] of [...inclBy].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${pct(t)}  ${k}`);

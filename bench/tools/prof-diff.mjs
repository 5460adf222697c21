#!/usr/bin/env node
/**
 * Where does B spend more per request than A? Self time per function in µs per request, from two
 * .cpuprofile files written by `run.mjs --profile` (each with its `.json` side file of responses).
 * Usage: node bench/tools/prof-diff.mjs base.cpuprofile other.cpuprofile [--top=30]
 */
import { readFileSync } from 'node:fs';

const [a, b, ...rest] = process.argv.slice(2);
const top = Number(Object.fromEntries(rest.map((x) => x.replace(/^--/, '').split('='))).top ?? 30);

function load(file) {
  const profile = JSON.parse(readFileSync(file, 'utf8'));
  const { requests } = JSON.parse(readFileSync(`${file}.json`, 'utf8'));
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map();
  let busy = 0;
  profile.samples.forEach((id, i) => {
    const f = byId.get(id).callFrame;
    if (f.functionName === '(idle)') return;
    const url = f.url
      .replace(/^file:\/\//, '')
      .replace(/.*node_modules\//, 'nm:')
      .replace(/.*\/work\/main\//, '');
    const key = `${f.functionName || '(anonymous)'} ${url}:${f.lineNumber + 1}`;
    const dt = profile.timeDeltas[i] ?? 0;
    self.set(key, (self.get(key) ?? 0) + dt);
    busy += dt;
  });
  return { requests, busy, perReq: new Map([...self].map(([k, t]) => [k, t / requests])) };
}

const A = load(a);
const B = load(b);
console.log(`A: ${(A.busy / A.requests).toFixed(1)} µs/req busy over ${A.requests} requests`);
console.log(`B: ${(B.busy / B.requests).toFixed(1)} µs/req busy over ${B.requests} requests`);
const keys = new Set([...A.perReq.keys(), ...B.perReq.keys()]);
const rows = [...keys].map((k) => [
  k,
  (B.perReq.get(k) ?? 0) - (A.perReq.get(k) ?? 0),
  A.perReq.get(k) ?? 0,
  B.perReq.get(k) ?? 0,
]);
console.log('\nB − A, µs per request (self time), largest first:');
const line = ([k, d, x, y]) => console.log(`${d.toFixed(2).padStart(7)}  (${x.toFixed(2)} → ${y.toFixed(2)})  ${k}`);
rows.sort((p, q) => q[1] - p[1]);
rows.slice(0, top).forEach(line);
console.log('\nlargest savings (B spends less):');
rows
  .slice(-Math.min(8, rows.length))
  .reverse()
  .filter((r) => r[1] < 0)
  .forEach(line);

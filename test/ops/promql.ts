/**
 * What the ops suites need to check PromQL they do not run: promtool (required, never skipped),
 * the metric names an expression reads, the expressions of a rules file, and every metric name
 * the two collectors of @idem/prometheus expose.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Registry } from 'prom-client';
import { createCache } from '@idem/cache';
import { IdempotencyEvents } from '@idem/core';
import { cacheMetrics, idempotencyMetrics } from '@idem/prometheus';
import { Scrape } from './scrape.js';

const run = promisify(execFile);

/** Runs promtool; a missing promtool fails with the way to install it (CI's .ci/run does). */
export async function promtool(
  args: string[],
  options: { cwd?: string; input?: string } = {},
): Promise<{ code: number; output: string }> {
  try {
    const child = run('promtool', args, { cwd: options.cwd });
    if (options.input !== undefined) {
      child.child.stdin?.end(options.input);
    }
    const { stdout, stderr } = await child;
    return { code: 0, output: stdout + stderr };
  } catch (error) {
    const e = error as NodeJS.ErrnoException & { code?: number | string; stdout?: string; stderr?: string };
    if (e.code === 'ENOENT') {
      throw new Error(
        'promtool is not on PATH: install it (Debian/Ubuntu: apt-get install -y prometheus; .ci/run does this in CI)',
      );
    }
    return { code: typeof e.code === 'number' ? e.code : 1, output: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

/** Words of PromQL that are not metric names. */
const KEYWORDS = new Set([
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'and',
  'or',
  'unless',
  'bool',
  'offset',
  'inf',
  'nan',
]);

/** Whether every (, [ and { is closed in order (strings skipped). */
export function balanced(expr: string): boolean {
  const stack: string[] = [];
  const pairs: Record<string, string> = { ')': '(', ']': '[', '}': '{' };
  for (const ch of stripStrings(expr)) {
    if (ch === '(' || ch === '[' || ch === '{') stack.push(ch);
    else if (ch in pairs && stack.pop() !== pairs[ch]) return false;
  }
  return stack.length === 0;
}

function stripStrings(expr: string): string {
  return expr.replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""');
}

/**
 * The metric names an expression reads: identifiers that are not functions, keywords, label
 * names (in `{…}` or in `by (…)` and its kin) or durations.
 */
export function metricNames(expr: string): Set<string> {
  let text = stripStrings(expr)
    .replace(/#.*$/gm, '')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ');
  text = text.replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const names = new Set<string>();
  for (const match of text.matchAll(/[a-zA-Z0-9_:.]+(?=(\s*)(\(?))/g)) {
    const word = match[0];
    if (!/^[a-zA-Z_:]/.test(word)) continue; // a number or a duration
    if (match[2] === '(') continue; // a function or an aggregation
    if (KEYWORDS.has(word.toLowerCase())) continue;
    names.add(word);
  }
  return names;
}

/** The `expr:` values of a rules file (inline, or a `|` block), in order. */
export function ruleExpressions(yaml: string): string[] {
  const lines = yaml.split('\n');
  const out: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    const m = /^(\s*)(?:- )?expr:\s*(.*)$/.exec(lines[i] as string);
    if (!m) continue;
    const inline = (m[2] as string).trim();
    if (inline !== '|' && inline !== '>') {
      out.push(inline.replace(/^'(.*)'$/, '$1').replace(/^"(.*)"$/, '$1'));
      continue;
    }
    const indent = (m[1] as string).length;
    const block: string[] = [];
    while (i + 1 < lines.length) {
      const next = lines[i + 1] as string;
      if (next.trim() !== '' && next.search(/\S/) <= indent) break;
      block.push(next);
      i++;
    }
    out.push(block.join('\n').trim());
  }
  return out;
}

/**
 * Parses each expression with promtool, as the expression of a recording rule in a scratch rules
 * file (`promtool check rules` runs Prometheus' own PromQL parser). Returns promtool's verdict.
 */
export async function parseWithPromtool(expressions: readonly string[]): Promise<{ code: number; output: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'idem-promql-'));
  try {
    const rules = expressions
      .map((expr, i) => `      - record: idem_check:expr_${i}\n        expr: ${JSON.stringify(expr)}\n`)
      .join('');
    writeFileSync(join(dir, 'check.yml'), `groups:\n  - name: check\n    rules:\n${rules}`);
    return await promtool(['check', 'rules', 'check.yml'], { cwd: dir });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** One scrape of a registry with both collectors attached (one route known), and its text. */
export async function exportedScrape(): Promise<Scrape> {
  const registry = new Registry();
  const cache = createCache({ namespace: 'ops-names' });
  const a = idempotencyMetrics({ events: new IdempotencyEvents() }, { registry, routes: ['/orders/:id'] });
  const b = cacheMetrics(cache, { registry });
  try {
    return await Scrape.of(registry);
  } finally {
    a.close();
    b.close();
    await cache.close();
  }
}

/**
 * The Grafana dashboard shipped in deploy/grafana: every query parses as PromQL (Prometheus' own
 * parser, through promtool) and reads only metrics that @idem/prometheus exports, so a renamed
 * metric cannot leave a panel silently empty.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { balanced, exportedScrape, metricNames, parseWithPromtool } from './promql.js';

const file = resolve(import.meta.dirname, '..', '..', 'deploy', 'grafana', 'idem-dashboard.json');

interface Target {
  expr: string;
  refId: string;
}
interface Panel {
  type: string;
  title: string;
  targets?: Target[];
  panels?: Panel[];
}
interface Dashboard {
  uid: string;
  title: string;
  panels: Panel[];
  templating: { list: { name: string; type: string; query?: { query: string } | string }[] };
}

const dashboard = JSON.parse(readFileSync(file, 'utf8')) as Dashboard;
const panels = dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]).filter((p) => p.type !== 'row');
const queries = panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr })));
/** Template variables' queries: `label_values(<selector>, label)`, whose selector is PromQL. */
const variableSelectors = dashboard.templating.list.flatMap((v) => {
  if (v.type !== 'query') return [];
  const query = typeof v.query === 'string' ? v.query : (v.query?.query ?? '');
  const m = /^label_values\((.*),\s*\w+\)$/.exec(query);
  if (!m) throw new Error(`variable ${v.name}: expected label_values(selector, label), got ${query}`);
  return [{ panel: `variable ${v.name}`, expr: m[1] as string }];
});

/** Grafana's variables, replaced by what Grafana sends for them. */
function asPromql(expr: string): string {
  return expr
    .replaceAll('$__rate_interval', '1m')
    .replaceAll('$__interval', '1m')
    .replaceAll('$__range', '1h')
    .replace(/\$\{?(\w+)\}?/g, '.*');
}

describe('deploy/grafana/idem-dashboard.json', () => {
  it('is a dashboard with panels that all have a query', () => {
    expect(dashboard.uid).toBe('idem-overview');
    expect(panels.length).toBeGreaterThan(10);
    for (const panel of panels) expect(panel.targets?.length, panel.title).toBeGreaterThan(0);
  });

  it('has the panels an operator looks for', () => {
    const titles = panels.map((p) => p.title);
    for (const wanted of [
      'Request outcomes',
      'Replay ratio',
      '409 and 503 by route',
      'Store latency p99 by operation',
      'Store errors by operation',
      'Leases lost',
      'Cache hit ratio by layer',
      'Breaker state',
      'Stale values served by reason',
    ]) {
      expect(titles).toContain(wanted);
    }
  });

  it('uses only metric names that idempotencyMetrics() and cacheMetrics() export', async () => {
    const exported = (await exportedScrape()).queryableNames();
    for (const { panel, expr } of [...queries, ...variableSelectors]) {
      const names = metricNames(asPromql(expr));
      expect(names.size, `${panel}: ${expr} reads a metric`).toBeGreaterThan(0);
      for (const name of names) expect(exported, `${panel}: ${name}`).toContain(name);
    }
  });

  it('has queries that parse as PromQL (promtool check rules on each as a recording rule)', async () => {
    const all = [...queries, ...variableSelectors];
    for (const { panel, expr } of all) expect(balanced(expr), `${panel}: unbalanced ${expr}`).toBe(true);
    const { code, output } = await parseWithPromtool(all.map((q) => asPromql(q.expr)));
    expect(output, output).toContain(`SUCCESS: ${all.length} rules found`);
    expect(code, output).toBe(0);
  });

  it('groups only by labels the metrics have (or job and instance, added by Prometheus)', async () => {
    const scrape = await exportedScrape();
    const labels = new Map<string, Set<string>>();
    for (const s of scrape.samples) {
      const set = labels.get(s.name) ?? new Set<string>();
      for (const label of Object.keys(s.labels)) set.add(label);
      labels.set(s.name, set);
    }
    for (const { panel, expr } of queries) {
      const grouped = [...expr.matchAll(/\bby \(([^)]*)\)/g)].flatMap((m) => (m[1] as string).split(/,\s*/));
      const names = [...metricNames(asPromql(expr))];
      for (const label of grouped) {
        if (label === 'job' || label === 'instance') continue;
        const known = names.some((name) => labels.get(name)?.has(label));
        expect(known, `${panel}: by (${label}) on ${names.join(', ')}`).toBe(true);
      }
    }
  });
});

/**
 * The alert rules shipped in deploy/prometheus: valid for Prometheus (`promtool check rules`),
 * behaving as their unit tests say (`promtool test rules`), and reading only metrics that
 * @idem/prometheus exports. promtool is required: CI installs it (.ci/run), this suite never skips.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { exportedScrape, metricNames, promtool, ruleExpressions } from './promql.js';

const dir = resolve(import.meta.dirname, '..', '..', 'deploy', 'prometheus');
const rules = readFileSync(resolve(dir, 'idem-rules.yml'), 'utf8');

describe('deploy/prometheus/idem-rules.yml', () => {
  it('passes promtool check rules', async () => {
    const { code, output } = await promtool(['check', 'rules', 'idem-rules.yml'], { cwd: dir });
    expect(output, output).toMatch(/SUCCESS: \d+ rules found/);
    expect(code, output).toBe(0);
  });

  it('passes its unit tests (promtool test rules idem-rules.test.yml)', async () => {
    const { code, output } = await promtool(['test', 'rules', 'idem-rules.test.yml'], { cwd: dir });
    expect(output, output).toContain('SUCCESS');
    expect(code, output).toBe(0);
  });

  it('has a firing and a not-firing unit test for every alert', () => {
    const tests = readFileSync(resolve(dir, 'idem-rules.test.yml'), 'utf8');
    const alerts = [...rules.matchAll(/^\s*- alert:\s*(\S+)/gm)].map((m) => m[1] as string);
    expect(alerts.length).toBeGreaterThan(0);
    for (const alert of alerts) {
      const cases = tests.split(/^\s*- eval_time:/m).filter((c) => new RegExp(`alertname:\\s*${alert}\\b`).test(c));
      expect(
        cases.some((c) => /exp_alerts:\s*\n\s*- exp_labels/.test(c)),
        `${alert} has a firing case`,
      ).toBe(true);
      expect(
        cases.some((c) => /exp_alerts:\s*\[\]/.test(c)),
        `${alert} has a not-firing case`,
      ).toBe(true);
    }
  });

  it('reads only metrics that idempotencyMetrics() and cacheMetrics() export', async () => {
    const exported = (await exportedScrape()).queryableNames();
    const expressions = ruleExpressions(rules);
    expect(expressions.length).toBe([...rules.matchAll(/^\s*- (alert|record):/gm)].length);
    const used = new Set(expressions.flatMap((e) => [...metricNames(e)]));
    expect(used.size).toBeGreaterThan(0);
    for (const name of used) expect(exported, `${name} is used by a rule`).toContain(name);
  });
});

describe('the exposition of @idem/prometheus', () => {
  it('passes promtool check metrics (names, units, help)', async () => {
    const { text } = await exportedScrape();
    const { code, output } = await promtool(['check', 'metrics'], { input: text });
    expect(output.trim(), output).toBe('');
    expect(code).toBe(0);
  });
});

describe('metricNames', () => {
  it('finds the metric names of an expression, not its functions, labels or durations', () => {
    expect(
      metricNames(
        'histogram_quantile(0.99, sum by (le, operation) (rate(a_bucket{job=~"x|y"}[5m]))) / on (job) group_left b offset 1h > 0.5 and c',
      ),
    ).toEqual(new Set(['a_bucket', 'b', 'c']));
  });
});

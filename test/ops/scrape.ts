/**
 * Reads a registry the way Prometheus does: its text exposition, parsed into samples. The suites
 * assert on what a scrape shows, not on prom-client's objects.
 */
import type { Registry } from 'prom-client';

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses the text exposition format (one sample a line; `#` lines are HELP and TYPE). */
export function parseExposition(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match) throw new Error(`not an exposition line: ${line}`);
    const labels: Record<string, string> = {};
    for (const pair of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[pair[1] as string] = (pair[2] as string).replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    }
    const raw = match[3] as string;
    samples.push({ name: match[1] as string, labels, value: raw === '+Inf' ? Infinity : Number(raw) });
  }
  return samples;
}

/** One scrape of `registry`. */
export class Scrape {
  readonly samples: Sample[];
  constructor(readonly text: string) {
    this.samples = parseExposition(text);
  }

  static async of(registry: Registry): Promise<Scrape> {
    return new Scrape(await registry.metrics());
  }

  /** The samples of `name` whose labels include `labels`. */
  select(name: string, labels: Record<string, string> = {}): Sample[] {
    return this.samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  }

  /** The value of exactly one sample; throws when there is none or several (a test must name its series). */
  value(name: string, labels: Record<string, string> = {}): number {
    const found = this.select(name, labels);
    if (found.length !== 1) {
      throw new Error(`${found.length} samples of ${name}${JSON.stringify(labels)} in the scrape:\n${this.text}`);
    }
    return (found[0] as Sample).value;
  }

  /** The sum over every sample of `name` matching `labels`. */
  sum(name: string, labels: Record<string, string> = {}): number {
    return this.select(name, labels).reduce((total, s) => total + s.value, 0);
  }

  /** The metric families (names without _bucket/_sum/_count) the scrape declares with `# TYPE`. */
  families(): Map<string, string> {
    const out = new Map<string, string>();
    for (const m of this.text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) out.set(m[1] as string, m[2] as string);
    return out;
  }

  /** Every sample name a query may use: counters and gauges as they are, histograms' _bucket, _sum, _count. */
  queryableNames(): Set<string> {
    const names = new Set<string>();
    for (const [family, type] of this.families()) {
      if (type === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) names.add(family + suffix);
      else names.add(family);
    }
    return names;
  }
}

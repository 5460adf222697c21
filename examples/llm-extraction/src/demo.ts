/**
 * `npm run demo`: shows, against a running service, what idempotency buys — the first call pays
 * for the model, the replay is answered from the store many times faster, ten concurrent
 * duplicates cost one model call — and the /metrics lines that prove it. Exits 1 when a check fails.
 *
 * BASE_URL (default http://localhost:3000) may list several instances, comma-separated
 * (`BASE_URL=http://localhost:3000,http://localhost:3001` with REDIS_URL set on both): the
 * requests then go round-robin across them and the metrics are summed.
 */

const bases = (process.env.BASE_URL ?? 'http://localhost:3000')
  .split(',')
  .map((b) => b.trim().replace(/\/+$/, ''))
  .filter((b) => b !== '');
const run = Date.now().toString(36);
let failures = 0;

interface Call {
  status: number;
  ms: number;
  replayed: boolean;
  body: string;
  requestId: string | null;
  base: string;
}

function transcript(topic: string): string {
  return [
    `Alice: Thanks everyone for joining. Today is about the ${topic} rollout.`,
    'Bob: The pilot went well and the customer is happy with the dashboards.',
    'Carol: I am worried about the data migration; it could delay the launch.',
    'Alice: We agreed to start with the EU region first.',
    'Bob: I will send the migration plan by Friday.',
    'Carol: Can we get a sandbox before the security review?',
  ].join('\n');
}

function meeting(id: string, overrides: Record<string, string> = {}): Record<string, unknown> {
  return {
    transcript: transcript('analytics'),
    metadata: { meeting_id: id, customer_id: 'cust-42', meet_date: '2025-03-14', ...overrides },
  };
}

async function post(path: string, body: unknown, index = 0): Promise<Call> {
  const base = bases[index % bases.length]!;
  const started = performance.now();
  const res = await fetch(`${base}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  return {
    status: res.status,
    ms: performance.now() - started,
    replayed: res.headers.get('idempotent-replayed') === 'true',
    body: text,
    requestId: res.headers.get('x-request-id'),
    base,
  };
}

/** Samples of every instance's /metrics, as `name{labels}` → value, summed across instances. */
async function scrape(): Promise<Map<string, number>> {
  const totals = new Map<string, number>();
  for (const base of bases) {
    const text = await (await fetch(`${base}/metrics`)).text();
    for (const line of text.split('\n')) {
      if (line === '' || line.startsWith('#')) continue;
      const at = line.lastIndexOf(' ');
      const name = line.slice(0, at);
      totals.set(name, (totals.get(name) ?? 0) + Number(line.slice(at + 1)));
    }
  }
  return totals;
}

function sum(samples: Map<string, number>, name: string, filter: (labels: string) => boolean = () => true): number {
  let total = 0;
  for (const [series, value] of samples) {
    const brace = series.indexOf('{');
    const metric = brace === -1 ? series : series.slice(0, brace);
    if (metric === name && filter(brace === -1 ? '' : series.slice(brace))) total += value;
  }
  return total;
}

function ms(value: number): string {
  return `${value.toFixed(value < 10 ? 1 : 0)} ms`.padStart(9);
}

function check(ok: boolean, what: string): void {
  if (!ok) failures++;
  console.log(`   ${ok ? '✓' : '✗'} ${what}`);
}

async function main(): Promise<void> {
  console.log(`idem llm-extraction demo against ${bases.join(', ')}\n`);
  for (const base of bases) {
    let health: {
      status: string;
      store: { kind: string; fallback_reason?: string };
      llm: { provider: string; model: string };
    };
    try {
      health = (await (await fetch(`${base}/health`)).json()) as typeof health;
    } catch {
      console.error(
        `✗ nothing answers at ${base}. Start the service first (npm start, in another terminal), or set BASE_URL.`,
      );
      process.exit(1);
    }
    const fallback = health.store.fallback_reason === undefined ? '' : ` (FALLBACK: ${health.store.fallback_reason})`;
    console.log(
      `   ${base}: ${health.status}, store ${health.store.kind}${fallback}, model ${health.llm.provider}/${health.llm.model}`,
    );
  }
  const before = await scrape();

  console.log('\n1. First call for a meeting: the model runs');
  const first = await post('/extract', meeting(`demo-${run}-a`));
  console.log(`   POST /extract → ${first.status} in ${ms(first.ms)}   Idempotent-Replayed: ${first.replayed}`);
  check(first.status === 200 && !first.replayed, 'answered by the model');
  const parsed = JSON.parse(first.body) as { idempotency_key?: string; usage?: { estimated_cost_usd?: number } };
  console.log(`   idempotency_key ${parsed.idempotency_key}, estimated cost $${parsed.usage?.estimated_cost_usd}`);

  console.log('\n2. The same meeting again: replayed from the store');
  const replay = await post('/extract', meeting(`demo-${run}-a`), 1);
  console.log(`   POST /extract → ${replay.status} in ${ms(replay.ms)}   Idempotent-Replayed: ${replay.replayed}`);
  check(replay.replayed, 'Idempotent-Replayed: true');
  check(replay.body === first.body, 'body identical to the first call, byte for byte');
  check(replay.ms * 5 < first.ms, `${(first.ms / replay.ms).toFixed(0)}× faster than the first call`);

  console.log('\n3. Same meeting, written differently (padded id, date as a timestamp): same key, replayed');
  const variant = await post('/extract', meeting(`  demo-${run}-a `, { meet_date: '2025-03-14T16:00:00+01:00' }));
  console.log(`   POST /extract → ${variant.status} in ${ms(variant.ms)}   Idempotent-Replayed: ${variant.replayed}`);
  check(variant.replayed && variant.body === first.body, 'normalised to the same key and replayed');

  console.log(
    `\n4. Ten concurrent duplicates of a new meeting${bases.length > 1 ? `, spread over ${bases.length} instances` : ''}`,
  );
  const started = performance.now();
  const burst = await Promise.all(Array.from({ length: 10 }, (_, i) => post('/extract', meeting(`demo-${run}-b`), i)));
  const wall = performance.now() - started;
  const ran = burst.filter((c) => !c.replayed).length;
  console.log(
    `   10 × POST /extract → ${[...new Set(burst.map((c) => c.status))].join(', ')} in ${ms(wall)} wall time: ${ran} ran the model, ${10 - ran} waited and got its result replayed`,
  );
  check(
    burst.every((c) => c.status === 200),
    'all answered 200',
  );
  check(new Set(burst.map((c) => c.body)).size === 1, 'all ten bodies identical');
  check(ran === 1, 'exactly one ran the model');

  console.log('\n5. An invalid payload: a 400 problem, nothing stored, no model call');
  const bad = await post('/extract', { transcript: '', metadata: { meeting_id: 'x', meet_date: '14/03/2025' } });
  const problem = JSON.parse(bad.body) as { detail?: string };
  console.log(`   POST /extract → ${bad.status}: ${problem.detail}`);
  check(bad.status === 400, '400 application/problem+json');

  const after = await scrape();
  const delta = (name: string, filter?: (labels: string) => boolean): number =>
    sum(after, name, filter) - sum(before, name, filter);
  const calls = delta('llm_calls_total', (l) => l.includes('outcome="ok"'));
  console.log(`\n6. What it cost: ${calls} model calls for ${3 + burst.length} valid requests`);
  check(calls === 2, 'two model calls: one per meeting (llm_calls_total)');
  check(
    delta('idem_requests_total', (l) => l.includes('outcome="replay"')) === 11,
    'eleven replays (idem_requests_total{outcome="replay"})',
  );
  console.log(
    `   estimated spend $${delta('llm_cost_usd_total').toFixed(6)}, saved by replays $${delta('llm_cost_saved_usd_total').toFixed(6)}`,
  );

  console.log(`\n/metrics${bases.length > 1 ? ' (summed over the instances)' : ''}, totals since the service started:`);
  const shown = [
    'llm_calls_total',
    'idem_requests_total',
    'llm_cost_usd_total',
    'llm_cost_saved_usd_total',
    'http_request_duration_seconds_count',
    'http_request_duration_seconds_sum',
  ];
  for (const name of shown) {
    for (const [series, value] of after) {
      if (!series.startsWith(`${name}{`) && series !== name) continue;
      if (name.startsWith('http_') && !series.includes('route="/extract"')) continue;
      // idem's series all exist from the start at 0: show the ones that counted something.
      if (name.startsWith('idem_') && value === 0) continue;
      console.log(`   ${series} ${Number.isInteger(value) ? value : value.toFixed(6)}`);
    }
  }

  console.log(failures === 0 ? '\nAll checks passed.' : `\n${failures} check(s) FAILED.`);
  process.exit(failures === 0 ? 0 : 1);
}

main().catch((error: unknown) => {
  console.error('demo failed:', error);
  process.exit(1);
});

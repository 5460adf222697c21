/** Turns a run's results into the target verdicts, RESULTS.md and the SVG chart. */
import { LABELS } from './http-bench.mjs';
import { median } from './stats.mjs';

const PEERS = { memory: ['ei-memory', 'ni-memory'], redis: ['ei-redis', 'ni-redis'] };
const fx = (v, d = 2) => (Number.isFinite(v) ? v.toFixed(d) : '–');
const int = (v) => (Number.isFinite(v) ? Math.round(v).toLocaleString('en-US') : '–');
const mark = (met) => (met === true ? '✅ met' : met === false ? '❌ missed' : '–');

function group(results, id) {
  return results.http.find((g) => g.id === id);
}

/** a's throughput over b's, round by round; undefined when either did not run. */
function roundRatios(g, a, b) {
  const ra = g.members[a]?.rounds;
  const rb = g.members[b]?.rounds;
  if (!ra || !rb) return undefined;
  return ra.map((r, i) => r.rps / rb[i].rps);
}

/** Median over rounds of a's throughput over b's, paired round by round. */
function pairRatio(g, a, b) {
  const ratios = roundRatios(g, a, b);
  return ratios === undefined ? Number.NaN : median(ratios);
}

/** The lowest and highest of the per-round ratios behind pairRatio: how much the rounds disagree. */
function pairRange(g, a, b) {
  const ratios = roundRatios(g, a, b)?.filter(Number.isFinite);
  return ratios?.length ? [Math.min(...ratios), Math.max(...ratios)] : undefined;
}

/** Median over rounds of b's server CPU per request over a's: a throughput-like ratio from CPU alone. */
function cpuRatio(g, a, b) {
  const ra = g.members[a]?.rounds;
  const rb = g.members[b]?.rounds;
  if (!ra || !rb) return Number.NaN;
  return median(ra.map((r, i) => rb[i].serverCpuUs / r.serverCpuUs));
}

/**
 * Median over the fixed-rate rounds of a's server CPU per request minus b's (`field`: serverCpuUs),
 * paired round by round; undefined when either did not run at the fixed rate.
 */
function fixedAdded(g, a, b, field = 'serverCpuUs') {
  const ra = g?.members[a]?.fixedRate?.rounds;
  const rb = g?.members[b]?.fixedRate?.rounds;
  if (!ra || !rb) return undefined;
  return median(ra.map((r, i) => r[field] - rb[i][field]));
}

/** Median over the fixed-rate rounds of a's Redis CPU per request over b's. */
function fixedRedisRatio(g, a, b) {
  const ra = g?.members[a]?.fixedRate?.rounds;
  const rb = g?.members[b]?.fixedRate?.rounds;
  if (!ra || !rb || ra[0].redisCpuUs === null || rb[0].redisCpuUs === null) return undefined;
  return median(ra.map((r, i) => r.redisCpuUs / rb[i].redisCpuUs));
}

/**
 * The headline rows: for each scenario and store, idem and the peers as a ratio to the reference
 * the issue names (bare for passthrough and memory replay, the raw-Redis floor for Redis rows).
 */
export function headlineRows(results) {
  const rows = [];
  for (const framework of ['express', 'koa', 'fastify', 'hono']) {
    const name = { express: 'Express', koa: 'Koa', fastify: 'Fastify', hono: 'Hono' }[framework];
    // Fastify and Hono are read against the bare framework only (issue 18): no floors, no targets.
    const plain = framework === 'fastify' || framework === 'hono';
    const specs = plain
      ? [
          ['passthrough', 'memory', 'idem-memory', 'passthrough (no key)'],
          ['replay', 'memory', 'idem-memory', 'replay, memory store'],
          ['replay', 'redis', 'idem-redis', 'replay, Redis store'],
          ['first', 'memory', 'idem-memory', 'first execution, memory store'],
          ['first', 'redis', 'idem-redis', 'first execution, Redis store'],
        ].map(([scenario, store, idem, what]) => ({
          gid: `${framework}-${scenario}`,
          store,
          idem,
          ref: 'bare',
          label: `${name} ${what}`,
          min: null,
          target: '–',
        }))
      : [
          {
            gid: `${framework}-passthrough`,
            store: 'memory',
            idem: 'idem-memory',
            ref: 'bare',
            label: `${name} passthrough (no key)`,
            min: 0.97,
          },
          {
            gid: `${framework}-replay`,
            store: 'memory',
            idem: 'idem-memory',
            ref: 'bare',
            label: `${name} replay, memory store`,
            min: 0.97,
          },
          {
            gid: `${framework}-replay`,
            store: 'redis',
            idem: 'idem-redis',
            ref: 'floor-get-pinned',
            label: `${name} replay, Redis store`,
            min: 0.95,
          },
          {
            gid: `${framework}-first`,
            store: 'memory',
            idem: 'idem-memory',
            ref: 'bare-pinned',
            label: `${name} first execution, memory store`,
            min: null,
          },
          {
            gid: `${framework}-first`,
            store: 'redis',
            idem: 'idem-redis',
            ref: 'floor-pinned',
            label: `${name} first execution, Redis store`,
            min: 0.8,
          },
        ];
    // PostgreSQL: no target was set for these rows; they are read against their raw floors.
    if (!plain)
      specs.push(
        {
          gid: `${framework}-replay-pg`,
          store: 'postgres',
          idem: 'idem-pg',
          ref: 'floor-pg-get',
          label: `${name} replay, PostgreSQL store`,
          min: null,
          target: '–',
        },
        {
          gid: `${framework}-first-pg`,
          store: 'postgres',
          idem: 'idem-pg',
          ref: 'floor-pg-first',
          label: `${name} first execution, PG lease mode`,
          min: null,
          target: '–',
        },
        {
          gid: `${framework}-first-pg`,
          store: 'postgres-tx',
          idem: 'idem-pg-tx',
          ref: 'floor-pg-first',
          label: `${name} first execution, PG transactional`,
          min: null,
          target: '–',
        },
      );
    for (const s of specs) {
      const g = group(results, s.gid);
      if (!g?.members[s.ref]) continue;
      const perRound = (variant, field) => median(g.members[variant]?.rounds.map((r) => r[field]) ?? []);
      const ratio = (v) => (g.members[v] ? pairRatio(g, v, s.ref) : undefined);
      rows.push({
        id: `${s.gid}-${s.store}`,
        label: s.label,
        reference: LABELS[s.ref],
        idem: ratio(s.idem),
        idemRange: g.members[s.idem] ? pairRange(g, s.idem, s.ref) : undefined,
        idemCpu: g.members[s.idem] ? cpuRatio(g, s.idem, s.ref) : undefined,
        idemAddedCpuUs: g.members[s.idem]
          ? median(g.members[s.idem].rounds.map((r, i) => r.serverCpuUs - g.members[s.ref].rounds[i].serverCpuUs))
          : undefined,
        idemAddedCpuUsFixedRate: fixedAdded(g, s.idem, s.ref),
        peers: Object.fromEntries((PEERS[s.store] ?? []).filter((p) => g.members[p]).map((p) => [p, ratio(p)])),
        idemOverPeers: Object.fromEntries(
          (PEERS[s.store] ?? []).filter((p) => g.members[p]).map((p) => [p, pairRatio(g, s.idem, p)]),
        ),
        min: s.min,
        target: s.target ?? (s.min === null ? 'ahead of peers' : `≥ ${s.min}`),
        ...(s.store.startsWith('postgres') && g.members[s.idem]
          ? {
              postgres: {
                idemCpuUs: perRound(s.idem, 'serverCpuUs'),
                refCpuUs: perRound(s.ref, 'serverCpuUs'),
                idemDbCpuUs: perRound(s.idem, 'postgresCpuUs'),
                refDbCpuUs: perRound(s.ref, 'postgresCpuUs'),
                idemStatements: g.members[s.idem].statementsPerRequest,
                refStatements: g.members[s.ref].statementsPerRequest,
              },
            }
          : {}),
      });
    }
  }
  return rows;
}

/** Every target of the issue, with its measured value and verdict (null: not measured this run). */
export function evaluate(results) {
  const targets = [];
  const add = (id, text, value, met, unit = '×') =>
    targets.push({ id, text, value: Number.isFinite(value) ? Math.round(value * 1000) / 1000 : value, unit, met });
  for (const row of headlineRows(results)) {
    if (row.min !== null && row.idem !== undefined)
      add(`${row.id}-ratio`, `${row.label}: idem ≥ ${row.min}× ${row.reference}`, row.idem, row.idem >= row.min);
    for (const [peer, ratio] of Object.entries(row.idemOverPeers)) {
      add(`${row.id}-vs-${peer}`, `${row.label}: idem ahead of ${LABELS[peer]}`, ratio, ratio > 1);
    }
  }
  for (const framework of ['express', 'koa']) {
    const replay = group(results, `${framework}-replay`);
    const first = group(results, `${framework}-first`);
    if (replay?.members['idem-redis']) {
      const cmds = replay.members['idem-redis'].clientCommandsPerRequest;
      add(
        `${framework}-replay-commands`,
        `${framework}: a Redis replay costs 1 command`,
        cmds,
        Math.round(cmds * 100) / 100 <= 1,
        'cmd/req',
      );
    }
    if (first?.members['idem-redis']) {
      const cmds = first.members['idem-redis'].clientCommandsPerRequest;
      add(
        `${framework}-first-commands`,
        `${framework}: a first execution costs ≤ 5 commands`,
        cmds,
        Math.round(cmds * 100) / 100 <= 5,
        'cmd/req',
      );
    }
    // Server CPU per request over the floors that do the pinned work, at one fixed rate (issue 15).
    const cpuTargets = [
      [replay, 'idem-redis', 'floor-get-pinned', 10, 'replay-redis-cpu', 'a Redis replay'],
      [first, 'idem-redis', 'floor-pinned', 25, 'first-redis-cpu', 'a first execution with Redis'],
      [first, 'idem-memory', 'bare-pinned', 30, 'first-memory-cpu', 'a first execution with the memory store'],
    ];
    for (const [g, variant, floor, within, id, what] of cpuTargets) {
      const added = fixedAdded(g, variant, floor);
      if (added === undefined) continue;
      add(
        `${framework}-${id}`,
        `${framework}: server CPU of ${what} ≤ ${LABELS[floor]} + ${within} µs (at ${g.fixedRate} req/s)`,
        added,
        added <= within,
        'µs',
      );
    }
    const redisTargets = [
      [replay, 'floor-get-pinned', 1.3, 'replay-redis-server-cpu', 'a replay'],
      [first, 'floor-pinned', 1.5, 'first-redis-server-cpu', 'a first execution'],
    ];
    for (const [g, floor, max, id, what] of redisTargets) {
      const ratio = fixedRedisRatio(g, 'idem-redis', floor);
      if (ratio === undefined) continue;
      add(
        `${framework}-${id}`,
        `${framework}: redis-server CPU per ${what} ≤ ${max}× ${LABELS[floor]}'s (at ${g.fixedRate} req/s)`,
        ratio,
        ratio <= max,
      );
    }
  }
  if (results.cache) {
    const { l1, l2, stampede } = results.cache;
    const ops = (rows, id) => rows.find((r) => r.id === id)?.opsPerSecond;
    add(
      'cache-l1-vs-bentocache',
      'cache: getOrSet L1 hit ahead of bentocache',
      ops(l1, 'idem') / ops(l1, 'bentocache'),
      ops(l1, 'idem') > ops(l1, 'bentocache'),
    );
    add(
      'cache-l2-vs-bentocache',
      'cache: getOrSet L2 hit ahead of bentocache',
      ops(l2, 'idem') / ops(l2, 'bentocache'),
      ops(l2, 'idem') > ops(l2, 'bentocache'),
    );
    const runs = stampede.idem.map((t) => t.loaderRuns);
    add(
      'cache-stampede',
      'cache: cold-key stampede over 4 processes runs the loader once',
      Math.max(...runs),
      runs.every((r) => r === 1),
      'loader runs (worst trial)',
    );
  }
  for (const storm of results.storms.filter((s) => s.pkg === 'idem')) {
    add(
      `storm-${storm.id}`,
      `storm, ${storm.label}, ${storm.processes} process${storm.processes > 1 ? 'es' : ''}: exactly 1 execution, every client answered`,
      storm.executions,
      storm.executions === 1 && storm.answered === storm.clients,
      'executions',
    );
  }
  return targets;
}

function httpTable(g) {
  if (Object.values(g.members).some((m) => m.postgresCpuUs !== null && m.postgresCpuUs !== undefined))
    return postgresTable(g);
  const lines = [
    `#### ${g.title}`,
    '',
    `Baseline: ${LABELS[g.baseline]}${g.floor ? `; floor: ${LABELS[g.floor].replace(/^floor: /, '')}` : ''}. Medians over rounds; ratios paired per round.`,
    '',
    `| variant | req/s | × bare${g.floor ? ' | × floor' : ''} | p50 ms | p99 ms | RSS MB | server CPU µs/req | +CPU µs vs bare${g.floor ? ' | +CPU µs vs floor' : ''} | redis CPU µs/req | Redis cmds/req (client) | incl. inside Lua | 2xx share |`,
    `|---|--:|--:|${g.floor ? '--:|' : ''}--:|--:|--:|--:|--:|${g.floor ? '--:|' : ''}--:|--:|--:|--:|`,
  ];
  for (const [variant, m] of Object.entries(g.members)) {
    const vb = variant === g.baseline ? 1 : g.vsBaseline?.[variant]?.rps;
    const vf = g.floor ? (variant === g.floor ? 1 : g.vsFloor?.[variant]?.rps) : null;
    const cb = variant === g.baseline ? 0 : g.vsBaseline?.[variant]?.addedCpuUs;
    const cf = g.floor ? (variant === g.floor ? 0 : g.vsFloor?.[variant]?.addedCpuUs) : null;
    const cells = [
      m.label,
      int(m.rps),
      fx(vb),
      ...(g.floor ? [fx(vf)] : []),
      fx(m.p50, 0),
      fx(m.p99, 0),
      fx(m.rssMB, 0),
      fx(m.serverCpuUs, 1),
      fx(cb, 1),
      ...(g.floor ? [fx(cf, 1)] : []),
      m.redisCpuUs === null ? '–' : fx(m.redisCpuUs, 1),
      m.clientCommandsPerRequest !== null
        ? fx(m.clientCommandsPerRequest)
        : m.commandsPerRequest === null
          ? '–'
          : fx(m.commandsPerRequest),
      m.commandsPerRequest === null ? '–' : fx(m.commandsPerRequest),
      `${(m.okShare * 100).toFixed(1)}%`,
    ];
    lines.push(`| ${cells.join(' | ')} |`);
  }
  const mixes = Object.entries(g.members).filter(([, m]) => m.commandMix);
  if (mixes.length) {
    lines.push(
      '',
      '<details><summary>Redis command mix per request (INFO commandstats over a fixed-count window, commands run inside Lua included)</summary>',
      '',
    );
    for (const [, m] of mixes) {
      lines.push(
        `- ${m.label}: ${Object.entries(m.commandMix)
          .sort((a, b) => b[1] - a[1])
          .map(([n, c]) => `${n} ${c.toFixed(2)}`)
          .join(', ')}`,
      );
    }
    lines.push('', '</details>');
  }
  const odd = Object.entries(g.members).filter(([, m]) => m.okShare < 0.999 || m.errors > 0);
  for (const [, m] of odd)
    lines.push('', `> ${m.label}: status codes ${JSON.stringify(m.statusCodes)}, socket errors/timeouts ${m.errors}.`);
  return lines.join('\n');
}

/** A PostgreSQL group's table: the database's CPU and statements per request in place of Redis's. */
function postgresTable(g) {
  const lines = [
    `#### ${g.title}`,
    '',
    `Baseline: ${LABELS[g.baseline]}; floor: ${LABELS[g.floor].replace(/^floor: /, '')}. Medians over rounds; ratios paired per round. PostgreSQL CPU: every process of the bench's PostgreSQL (schedstat of the live ones), idle background work included (bare's row shows it). Statements: what the app's pg clients sent ÷ requests, over a separate window of ${g.members[g.floor]?.statementSample?.requests ?? '–'} requests, every one answered.`,
    '',
    '| variant | req/s | × bare | × floor | p50 ms | p99 ms | RSS MB | server CPU µs/req | +CPU µs vs floor | PostgreSQL CPU µs/req | SQL statements/req | 2xx share |',
    '|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|',
  ];
  for (const [variant, m] of Object.entries(g.members)) {
    const vb = variant === g.baseline ? 1 : g.vsBaseline?.[variant]?.rps;
    const vf = variant === g.floor ? 1 : g.vsFloor?.[variant]?.rps;
    const cf = variant === g.floor ? 0 : g.vsFloor?.[variant]?.addedCpuUs;
    const cells = [
      m.label,
      int(m.rps),
      fx(vb),
      fx(vf),
      fx(m.p50, 0),
      fx(m.p99, 0),
      fx(m.rssMB, 0),
      fx(m.serverCpuUs, 1),
      fx(cf, 1),
      fx(m.postgresCpuUs, 1),
      fx(m.statementsPerRequest),
      `${(m.okShare * 100).toFixed(1)}%`,
    ];
    lines.push(`| ${cells.join(' | ')} |`);
  }
  const odd = Object.entries(g.members).filter(([, m]) => m.okShare < 0.999 || m.errors > 0);
  for (const [, m] of odd)
    lines.push('', `> ${m.label}: status codes ${JSON.stringify(m.statusCodes)}, socket errors/timeouts ${m.errors}.`);
  return lines.join('\n');
}

/** The headline: verdict count, the ratio table and the chart (`chartPath` relative to the document). */
export function renderHeadline(results, chartPath) {
  const rows = headlineRows(results);
  const out = [];
  const targets = results.targets;
  const met = targets.filter((t) => t.met === true).length;
  const missed = targets.filter((t) => t.met === false);
  out.push(
    `**${met} of ${targets.length} targets met${missed.length ? `; missed: ${missed.map((t) => t.id).join(', ')}` : ''}.** Throughput ratios (median over rounds of req/s ÷ the reference's req/s in the same round, with the lowest and highest round in brackets); higher is better, 1.00 = as fast as the reference.`,
    '',
  );
  out.push(
    "| scenario | reference | idem (rounds) | express-idempotency | @node-idempotency | target | idem meets it | idem by server CPU | idem's extra server CPU | the same at a fixed rate |",
  );
  out.push('|---|---|--:|--:|--:|--:|---|--:|--:|--:|');
  const verdict = (r) => {
    if (r.min === null) return '–';
    const met = r.idem >= r.min;
    // A verdict the rounds themselves disagree on is said to be one.
    const straddles = r.idemRange !== undefined && r.idemRange[0] < r.min && r.idemRange[1] >= r.min;
    return `${mark(met)}${straddles ? ' (rounds on both sides)' : ''}`;
  };
  for (const r of rows) {
    const peer = (prefix) => {
      const entry = Object.entries(r.peers).find(([p]) => p.startsWith(prefix));
      return entry ? fx(entry[1]) : 'n/a';
    };
    const range = r.idemRange ? ` (${fx(r.idemRange[0])}–${fx(r.idemRange[1])})` : '';
    out.push(
      `| ${r.label} | ${r.reference} | **${fx(r.idem)}**${range} | ${peer('ei')} | ${peer('ni')} | ${r.target} | ${verdict(r)} | ${fx(r.idemCpu)} | ${fx(r.idemAddedCpuUs, 1)} µs | ${r.idemAddedCpuUsFixedRate === undefined ? '–' : `${fx(r.idemAddedCpuUsFixedRate, 1)} µs`} |`,
    );
  }
  const cpuTargets = targets.filter((t) => /-(cpu|server-cpu)$/.test(t.id));
  if (cpuTargets.length) {
    out.push(
      '',
      "Server CPU per request against the floors that do the work the design pins (the SHA-256 storage key and the canonical body fingerprint; issue 15), measured again with every variant at one fixed request rate (70% of the slowest one's closed-loop throughput), paired round by round: closed-loop CPU per request favours the faster server, which serves more requests per event-loop turn. redis-server's own CPU per request is compared the same way.",
      '',
      '| target | measured | verdict |',
      '|---|--:|---|',
    );
    for (const t of cpuTargets)
      out.push(`| ${t.text} | ${fx(t.value, t.unit === 'µs' ? 1 : 2)} ${t.unit} | ${mark(t.met)} |`);
  }
  const pgRows = rows.filter((r) => r.postgres);
  if (pgRows.length) {
    out.push(
      '',
      "PostgreSQL rows, CPU per request (medians over rounds) of the app's process and of every process of the bench's PostgreSQL, and SQL statements per request, idem against its floor. No target was set for these rows. The floors run the same statements raw on a table of the store's schema: a replay's is one `SELECT` of the row by key, a first execution's one `INSERT … ON CONFLICT DO NOTHING` before the handler and one `UPDATE` of the response after. **Transactional mode also opens and commits a transaction per first execution** (`BEGIN`, `COMMIT` and the advisory unlock, on the client it holds for the whole handler), which the floor does not; the handler writes nothing itself, so its floor is the same.",
      '',
      '| row | app CPU µs/req, idem / floor | PostgreSQL CPU µs/req, idem / floor | statements/req, idem / floor |',
      '|---|--:|--:|--:|',
    );
    for (const r of pgRows) {
      const p = r.postgres;
      out.push(
        `| ${r.label} | ${fx(p.idemCpuUs, 0)} / ${fx(p.refCpuUs, 0)} | ${fx(p.idemDbCpuUs, 0)} / ${fx(p.refDbCpuUs, 0)} | ${fx(p.idemStatements, 1)} / ${fx(p.refStatements, 1)} |`,
      );
    }
  }
  out.push(
    '',
    '"idem by server CPU" is the reference\'s server CPU per request ÷ idem\'s (median of per-round ratios): what the throughput ratio would be if the server alone were the bottleneck. On 2 cores shared by autocannon, the server and Redis it is the steadier figure; the verdicts use the throughput ratios, as the issue states them.',
  );
  const storms = results.storms.filter((st) => st.processes > 1);
  if (storms.length) {
    out.push(
      '',
      `Duplicate storm, ${storms[0].clients} concurrent duplicates over ${storms[0].processes} processes sharing one Redis — handler executions: ${storms.map((st) => `${st.label} **${st.executions}**`).join('; ')}.`,
    );
  }
  out.push('', `![ratios chart](${chartPath})`);
  return out;
}

/**
 * Whether other work shared the machine during a run: a tenth of a core taken by others in bursts
 * moved whole rounds by 2× (FINDINGS.md, L). What others used is measured over the run itself; the
 * 1-min load at the start (the bench README asks for < 0.5) only stands in for it in results from
 * before it was measured, since a load left by a run that just ended decays while nothing else runs.
 */
export function isNoisy(meta) {
  const vitest = meta.machineBefore.vitestProcesses + (meta.machineAfter?.vitestProcesses ?? 0);
  if (vitest > 0) return true;
  if (!Number.isFinite(meta.otherProcessesCores)) return meta.machineBefore.loadavg[0] >= 0.5;
  return Math.max(0, meta.otherProcessesCores) > 0.1;
}

/** RESULTS.md. `notes` (optional): hand-written findings (bench/FINDINGS.md), appended verbatim. */
export function renderMarkdown(results, notes = '') {
  const { meta } = results;
  const out = [];
  out.push('# idem benchmark results', '');
  out.push(
    `Run of ${meta.date} (${meta.mode} mode, ${meta.durationS} s) on ${meta.cpu}, ${meta.memoryGB} GB, ${meta.os}; Node ${meta.node}; redis-server ${meta.redis.split(' ')[0]}${meta.postgres ? `; PostgreSQL ${meta.postgres}` : ''}; commit ${meta.commit}${meta.packagesDirty ? ' (packages/ had uncommitted changes)' : ''}.`,
  );
  out.push('');
  const quiet = (m) =>
    `load average ${m.loadavg.join(' / ')}, ${m.vitestProcesses} vitest process${m.vitestProcesses === 1 ? '' : 'es'}`;
  // /proc accounting is tick-based: a few seconds either way over a whole run is noise.
  const others = Math.max(0, meta.otherProcessesCores ?? 0);
  const othersS = Math.max(0, meta.otherProcessesCpuS ?? 0);
  const noisy = isNoisy(meta);
  out.push(
    `Machine at start: ${quiet(meta.machineBefore)}; at end (the bench's own processes included): ${quiet(meta.machineAfter)}. CPU time used outside the bench's own processes during the run: ${othersS.toFixed(1)} s, ${others.toFixed(2)} of a core on average (the machine's busy time from /proc/stat minus the CPU of the bench and of every process it started; tick-based, so ±1% of the run's CPU).${noisy ? ' **The machine was not quiet during this run: other work shared the 2 cores, so absolute numbers are lower and ratios noisier than on an idle machine.**' : ''}`,
  );
  out.push('');

  out.push('## Headline', '', ...renderHeadline(results, 'chart.svg'), '');
  const targets = results.targets;

  out.push('## Targets', '');
  out.push('| target | measured | verdict |', '|---|--:|---|');
  for (const t of targets)
    out.push(`| ${t.text} | ${Number.isFinite(t.value) ? t.value : '–'} ${t.unit} | ${mark(t.met)} |`);
  out.push('');

  if (results.storms.length) {
    out.push('## Duplicate storm', '');
    out.push(
      `${results.storms[0].clients} clients, each on its own TCP connection, all connected first and then sending the same POST with the same Idempotency-Key in one synchronous write loop, spread round-robin over the server processes (no load balancer). The handler takes ${meta.settings.stormDelayMs} ms. Executions are counted by the handlers (IPC counters summed over processes). Memory stores are per process, so their storm runs on one process.`,
      '',
    );
    out.push(
      '| package / configuration | processes | handler executions | answers by status | distinct 2xx bodies | every client answered after | median answer |',
    );
    out.push('|---|--:|--:|---|--:|--:|--:|');
    for (const s of results.storms) {
      const bad = s.pkg === 'idem' ? s.executions !== 1 : s.executions > 1;
      out.push(
        `| ${s.label} | ${s.processes} | ${bad ? `**${s.executions}**` : s.executions} | ${Object.entries(s.statuses)
          .map(([k, v]) => `${k}: ${v}`)
          .join(', ')} | ${s.distinct2xxBodies} | ${fx(s.allAnsweredMs, 0)} ms | ${fx(s.medianAnswerMs, 0)} ms |`,
      );
    }
    out.push('');
  }

  if (results.cache) {
    const { l1, l2, stampede } = results.cache;
    out.push('## Cache (@idem/cache vs bentocache)', '');
    const bare = l1.find((r) => r.id === 'lru-get');
    const awaited = l1.find((r) => r.id === 'lru-get-await');
    out.push('L1 hit: one key, sequential calls in one process (interleaved rounds, median).', '');
    out.push('| implementation | ops/s | × bare lru-cache get | × awaited lru-cache get |', '|---|--:|--:|--:|');
    for (const r of l1)
      out.push(
        `| ${r.label} | ${int(r.opsPerSecond)} | ${fx(r.opsPerSecond / bare.opsPerSecond, 3)} | ${fx(r.opsPerSecond / awaited.opsPerSecond)} |`,
      );
    out.push('');
    const floor = l2.find((r) => r.id === 'floor-get');
    out.push('L2 hit: 1000 keys in Redis, an L1 of one entry so every read goes to Redis, 16 reads in flight.', '');
    out.push(
      '| implementation | ops/s | × raw GET floor | Redis commands/op (incl. inside Lua) |',
      '|---|--:|--:|--:|',
    );
    for (const r of l2)
      out.push(
        `| ${r.label} | ${int(r.opsPerSecond)} | ${fx(r.opsPerSecond / floor.opsPerSecond)} | ${fx(r.commandsPerOp)} |`,
      );
    out.push('');
    out.push('Cold-key stampede: 4 processes × 250 concurrent getOrSet of one missing key, 50 ms loader.', '');
    out.push(
      '| implementation | loader runs per trial | distinct values served | every caller answered after |',
      '|---|---|---|---|',
    );
    for (const [impl, trials] of Object.entries(stampede)) {
      out.push(
        `| ${impl} | ${trials.map((t) => t.loaderRuns).join(', ')} | ${trials.map((t) => t.distinctValues).join(', ')} | ${trials.map((t) => `${fx(t.allAnsweredMs, 0)} ms`).join(', ')} |`,
      );
    }
    out.push('');
  }

  if (results.http.length) {
    out.push('## HTTP details', '');
    for (const g of results.http) out.push(httpTable(g), '');
  }

  out.push('## Method', '');
  const s = meta.settings;
  out.push(
    `- Every server runs in its own Node process on 127.0.0.1 (\`bench/servers/server.mjs\`), one per variant; the bench starts its own \`redis-server\` on a free port (no persistence).`,
    `- Load: autocannon ${meta.versions.autocannon}, ${s.connections} connections, no pipelining, \`POST /orders\` with a 70-byte JSON body; the handler answers 201 with a ~120-byte JSON order. Within a group every variant gets the same request (no key / one fixed key / a new key per request via autocannon's \`[<id>]\`).`,
    `- Rounds: ${s.rounds} rounds of ${s.durationS} s windows per variant after a ${s.warmupS} s warm-up of each; rounds alternate the order (A B C … then … C B A). A variant's ratio is the median over rounds of its req/s divided by the reference's req/s **in the same round**.`,
    `- Server CPU: \`process.cpuUsage()\` of the server process, read over IPC before and after each window, divided by responses. redis-server CPU: the scheduled time of its threads (\`/proc/<pid>/task/<tid>/schedstat\`, ns), which the 10 ms ticks of \`/proc/<pid>/stat\` rounded to ~7 µs per request in a 1 s window. On a 2-core machine where autocannon and Redis share the cores, CPU per request is the steadier figure. The fixed-rate rounds of the groups with a floor (the CPU verdicts) are ${s.fixedRounds ?? s.rounds} rounds of ${s.fixedDurationS ?? s.durationS} s windows${s.fixedDurationS ? ': a major GC in a 1 s window moved a round by ~7 µs per request' : ''}${s.fixedRounds ? ', and whole rounds moved by ±50 µs on a 2-core VM (FINDINGS.md, R)' : ''}.`,
    `- Redis commands: after the timed rounds, each Redis variant gets a separate window of exactly ${s.commandSample} requests (all answered, then a 100 ms pause for writes made after answering), between \`CONFIG RESETSTAT\` and \`INFO commandstats\`; calls ÷ requests. Redis counts the commands a Lua script runs too; "client" counts what the client sent: for idem its EVALSHA/EVAL calls plus the few plain commands its store may send itself (HGETALL, SUBSCRIBE, UNSUBSCRIBE), everything else being run by its scripts; every peer and floor sends plain commands only. "incl. inside Lua" counts everything.`,
    '- Floors: "raw GET" is the bare app plus one ioredis `GET` per request; "raw SET NX + SET" is the bare app plus `SET key v PX 30000 NX` and then `SET key body PX 86400000` before answering.',
    "- PostgreSQL: the bench starts its own server with the test harness (`test/harness/postgres.mjs`: `initdb` into a temporary folder, a free port of 127.0.0.1, `fsync=off`, stopped by its own pid) and empties its tables before each group. Every PostgreSQL variant has its own `pg.Pool` of 40 connections (above the 32 concurrent requests, as the store's README asks for transactional mode) kept open between windows, and its own table of the store's schema. Floors: \"raw SELECT\" is the bare app plus one `SELECT state, status, headers, body … WHERE key = $1` of a completed row per request; \"raw INSERT ON CONFLICT + UPDATE\" is the bare app plus `INSERT` of an in-flight row with a token `ON CONFLICT (key) DO NOTHING` (409 when it stands), the handler, then `UPDATE` of the row with the response under that token. idem on PostgreSQL: `postgresStore({ pool })` (lease mode) and `postgresStore({ pool, transactional: true })`, `concurrent: 'reject'`. PostgreSQL CPU: the postmaster's reaped children (`/proc/<pid>/stat` cutime + cstime) plus the scheduled time of it and of every live child (`/proc/<pid>/schedstat`, ns). Statements: every `query` of the app's pg clients, counted in the server process, over the fixed-count window of the Redis commands (all answered, then a 100 ms pause).",
    "- Peers, configured as their READMEs say: express-idempotency (default in-memory adapter; and `express-idempotency-redis-adapter` with `connectionConfig: { url }`), its handler checking `isHit(req)`; @node-idempotency/core with `MemoryStorageAdapter` or `RedisStorageAdapter({ url })`. **@node-idempotency's Express adapter is not published on npm, so the bench drives `@node-idempotency/core` through a line-by-line port of that adapter from the mahendraHegde/node-idempotency repository (`packages/plugin-express/src/middleware.ts`)**, in `bench/servers/variants.mjs`; the only deviation: errors that are not IdempotencyErrors are passed to `next()` instead of being swallowed.",
    "- Every variant shares one JSON error handler (the peers' READMEs ask for the app's own).",
    '',
  );
  out.push('## Versions', '');
  out.push(
    Object.entries(meta.versions)
      .map(([k, v]) => `${k} ${v ?? 'n/a'}`)
      .join(' · '),
    '',
  );
  if (notes) out.push(notes.trim(), '');
  return `${out.join('\n')}\n`;
}

/** A horizontal bar chart of the headline ratios, with the reference (1.0) and each target marked. */
export function renderChart(results) {
  const rows = headlineRows(results);
  const series = [
    { key: 'idem', label: 'idem', color: '#2563eb' },
    { key: 'ei', label: 'express-idempotency', color: '#f59e0b' },
    { key: 'ni', label: '@node-idempotency', color: '#10b981' },
  ];
  const bar = 14;
  const gap = 3;
  const left = 320;
  const width = 930;
  const plotW = width - left - 70;
  // A row of one bar (no peers) still leaves room for its two lines of label.
  const rowH = (r) => Math.max(2, 1 + Object.keys(r.peers).length) * (bar + gap) + 14;
  const maxRatio =
    Math.min(
      2,
      Math.max(
        1.2,
        ...rows.flatMap((r) => [r.idem, r.idemRange?.[1], ...Object.values(r.peers)]).filter(Number.isFinite),
      ),
    ) * 1.05;
  const x = (v) => left + (Math.min(v, maxRatio) / maxRatio) * plotW;
  const top = 72;
  const plotBottom = top + rows.reduce((a, r) => a + rowH(r), 0);
  const height = plotBottom + 56;
  const esc = (t) => String(t).replace(/&/g, '&amp;').replace(/</g, '&lt;');
  const parts = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, sans-serif" font-size="12">`,
  );
  parts.push(`<rect width="${width}" height="${height}" fill="#fff"/>`);
  parts.push(
    `<text x="${left}" y="20" font-size="15" font-weight="600">Throughput relative to the reference (1.0 = as fast as it)</text>`,
  );
  parts.push(
    `<text x="${left}" y="38" fill="#555">${esc(`${results.meta.mode} run, ${results.meta.date.slice(0, 10)}, ${results.meta.cpu}`)}</text>`,
  );
  parts.push(
    `<text x="${left}" y="54" fill="#555">${esc("red tick: idem's target · whisker: idem's lowest and highest round")}</text>`,
  );
  for (let t = 0; t <= maxRatio + 1e-9; t += 0.25) {
    const one = Math.abs(t - 1) < 1e-9;
    parts.push(
      `<line x1="${x(t)}" y1="${top - 6}" x2="${x(t)}" y2="${plotBottom}" stroke="${one ? '#111' : '#e5e7eb'}" stroke-width="${one ? 1.5 : 1}"/>`,
    );
    parts.push(`<text x="${x(t)}" y="${plotBottom + 16}" text-anchor="middle" fill="#555">${t.toFixed(2)}</text>`);
  }
  series.forEach((s, i) => {
    parts.push(
      `<rect x="${left + i * 170}" y="${plotBottom + 30}" width="12" height="12" fill="${s.color}"/><text x="${left + 16 + i * 170}" y="${plotBottom + 40}">${esc(s.label)}</text>`,
    );
  });
  let y = top;
  for (const r of rows) {
    const h = rowH(r);
    parts.push(`<text x="${left - 8}" y="${y + bar}" text-anchor="end" font-weight="600">${esc(r.label)}</text>`);
    parts.push(`<text x="${left - 8}" y="${y + bar + 14}" text-anchor="end" fill="#555">vs ${esc(r.reference)}</text>`);
    const bars = [
      { s: series[0], v: r.idem },
      ...Object.entries(r.peers).map(([p, v]) => ({ s: series[p.startsWith('ei') ? 1 : 2], v })),
    ];
    bars.forEach(({ s, v }, i) => {
      const by = y + i * (bar + gap);
      if (!Number.isFinite(v)) return;
      parts.push(`<rect x="${left}" y="${by}" width="${Math.max(1, x(v) - left)}" height="${bar}" fill="${s.color}"/>`);
      let labelX = x(v) + 4;
      // idem's spread over the rounds: how far this run's median can be trusted.
      if (i === 0 && r.idemRange !== undefined) {
        const [lo, hi] = r.idemRange.map(x);
        const mid = by + bar / 2;
        parts.push(
          `<path d="M${lo} ${mid}H${hi}M${lo} ${by + 3}V${by + bar - 3}M${hi} ${by + 3}V${by + bar - 3}" stroke="#111" stroke-width="1.2" fill="none"/>`,
        );
        labelX = Math.max(labelX, hi + 4);
      }
      parts.push(`<text x="${labelX}" y="${by + bar - 3}">${v.toFixed(2)}</text>`);
    });
    if (r.min !== null)
      parts.push(
        `<line x1="${x(r.min)}" y1="${y - 2}" x2="${x(r.min)}" y2="${y + bar + 2}" stroke="#dc2626" stroke-width="3"/>`,
      );
    y += h;
  }
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}

/**
 * The HTTP scenarios. Each group is one comparison: the same request sent to a baseline and to
 * its contenders, every server in its own process, measured one after the other in rounds
 * (A B C … then … C B A, alternating, so slow drift on a shared machine hits all alike), and each
 * contender reported as the median over rounds of its ratio to the baseline of the same round.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { countCommands, countStatements, measure, requestFor } from './load.mjs';
import { startServer } from './server-process.mjs';
import { median } from './stats.mjs';

/** Display names of the variants. */
export const LABELS = {
  bare: 'bare',
  'floor-get': 'floor: raw GET',
  'floor-setnx': 'floor: raw SET NX + SET',
  'floor-get-pinned': 'floor: GET + pinned hashing',
  'floor-pinned': 'floor: SET NX + SET + pinned hashing',
  'bare-pinned': 'bare + pinned hashing',
  'store-pinned': 'the Redis store alone + pinned hashing',
  'store-pinned-memory': 'the memory store alone + pinned hashing',
  'idem-memory': 'idem (memory)',
  'idem-redis': 'idem (Redis)',
  'ei-memory': 'express-idempotency (memory)',
  'ei-redis': 'express-idempotency (Redis adapter)',
  'ni-memory': '@node-idempotency (memory)',
  'ni-redis': '@node-idempotency (Redis)',
  'floor-pg-get': 'floor: raw SELECT',
  'floor-pg-first': 'floor: raw INSERT ON CONFLICT + UPDATE',
  'idem-pg': 'idem (PostgreSQL, lease mode)',
  'idem-pg-tx': 'idem (PostgreSQL, transactional mode)',
};

/**
 * The commands a variant's client sends itself. Redis counts the commands a script runs too, so
 * for idem everything but these is inside a script. idem's claim (and a replay, a claim that finds
 * the record) is a plain `SET … NX PX … GET`, but its scripts write with `SET` as well: each script
 * reads the record's head with one `GETRANGE` (which only scripts send) and makes one write, a
 * `SET`, a `PEXPIRE` or a `DEL` (which, in the bench, only scripts send), so the scripts' `SET`s are
 * `getrange − pexpire − del` and come off the count. The other variants send plain commands only:
 * all of theirs are their own.
 */
const CLIENT_COMMANDS = {
  'idem-redis': {
    own: new Set(['set', 'get', 'evalsha', 'eval', 'eval_ro', 'evalsha_ro', 'script|load', 'subscribe', 'unsubscribe']),
    insideScripts: (c) => Math.max(0, (c.getrange ?? 0) - (c.pexpire ?? 0) - (c.del ?? 0)),
  },
};
CLIENT_COMMANDS['store-pinned'] = CLIENT_COMMANDS['idem-redis'];

export const GROUPS = [
  {
    id: 'express-passthrough',
    framework: 'express',
    scenario: 'passthrough',
    key: undefined,
    baseline: 'bare',
    title: 'Express, passthrough (no key)',
    members: ['bare', 'idem-memory', 'ei-memory', 'ni-memory'],
  },
  {
    id: 'express-replay',
    framework: 'express',
    scenario: 'replay',
    key: 'bench-replay-express',
    baseline: 'bare',
    title: 'Express, replay of a completed key',
    floor: 'floor-get-pinned',
    members: [
      'bare',
      'floor-get',
      'floor-get-pinned',
      'idem-memory',
      'idem-redis',
      'ei-memory',
      'ei-redis',
      'ni-memory',
      'ni-redis',
    ],
  },
  {
    id: 'express-first',
    framework: 'express',
    scenario: 'first',
    key: 'unique',
    baseline: 'bare',
    title: 'Express, first execution (a new key per request)',
    floor: 'floor-pinned',
    members: [
      'bare',
      'bare-pinned',
      'floor-setnx',
      'floor-pinned',
      'idem-memory',
      'idem-redis',
      'ei-memory',
      'ei-redis',
      'ni-memory',
      'ni-redis',
    ],
  },
  {
    id: 'koa-passthrough',
    framework: 'koa',
    scenario: 'passthrough',
    key: undefined,
    baseline: 'bare',
    title: 'Koa, passthrough (no key)',
    members: ['bare', 'idem-memory'],
  },
  {
    id: 'koa-replay',
    framework: 'koa',
    scenario: 'replay',
    key: 'bench-replay-koa',
    baseline: 'bare',
    title: 'Koa, replay of a completed key',
    floor: 'floor-get-pinned',
    members: ['bare', 'floor-get', 'floor-get-pinned', 'idem-memory', 'idem-redis'],
  },
  {
    id: 'koa-first',
    framework: 'koa',
    scenario: 'first',
    key: 'unique',
    baseline: 'bare',
    title: 'Koa, first execution (a new key per request)',
    floor: 'floor-pinned',
    members: ['bare', 'bare-pinned', 'floor-setnx', 'floor-pinned', 'idem-memory', 'idem-redis'],
  },
  // Fastify and Hono (issue 18): against the bare framework; the floors stay with Express and Koa.
  ...[
    ['fastify', 'Fastify'],
    ['hono', 'Hono'],
  ].flatMap(([framework, name]) => [
    {
      id: `${framework}-passthrough`,
      framework,
      scenario: 'passthrough',
      key: undefined,
      baseline: 'bare',
      title: `${name}, passthrough (no key)`,
      members: ['bare', 'idem-memory'],
    },
    {
      id: `${framework}-replay`,
      framework,
      scenario: 'replay',
      key: `bench-replay-${framework}`,
      baseline: 'bare',
      title: `${name}, replay of a completed key`,
      members: ['bare', 'idem-memory', 'idem-redis'],
    },
    {
      id: `${framework}-first`,
      framework,
      scenario: 'first',
      key: 'unique',
      baseline: 'bare',
      title: `${name}, first execution (a new key per request)`,
      members: ['bare', 'idem-memory', 'idem-redis'],
    },
  ]),
  // PostgreSQL: groups of their own, so the Redis groups above keep their members and timing.
  ...['express', 'koa'].flatMap((framework) => {
    const name = framework === 'express' ? 'Express' : 'Koa';
    return [
      {
        id: `${framework}-replay-pg`,
        framework,
        scenario: 'replay',
        key: `bench-replay-${framework}-pg`,
        baseline: 'bare',
        title: `${name}, replay of a completed key, PostgreSQL`,
        floor: 'floor-pg-get',
        members: ['bare', 'floor-pg-get', 'idem-pg', 'idem-pg-tx'],
      },
      {
        id: `${framework}-first-pg`,
        framework,
        scenario: 'first',
        key: 'unique',
        baseline: 'bare',
        title: `${name}, first execution (a new key per request), PostgreSQL`,
        floor: 'floor-pg-first',
        members: ['bare', 'floor-pg-first', 'idem-pg', 'idem-pg-tx'],
      },
    ];
  }),
];

/**
 * The variants the server-CPU verdicts compare (issue 15), measured again at a fixed request rate
 * that all of them sustain: closed-loop CPU per request penalises the slower variant.
 */
const FIXED_RATE = new Set([
  'bare',
  'bare-pinned',
  'floor-get',
  'floor-get-pinned',
  'floor-setnx',
  'floor-pinned',
  'idem-memory',
  'idem-redis',
  // Decomposition variants (variants.mjs), when run.mjs --variants names them.
  'store-pinned',
  'store-pinned-memory',
]);
/** The fixed rate, as a share of the slowest of those variants' closed-loop throughput. */
const FIXED_RATE_SHARE = 0.7;

/** Whether a group needs the bench's PostgreSQL. */
export const usesPostgresGroup = (group) => group.members.some(usesPostgres);

function usesPostgres(variant) {
  return variant.includes('-pg');
}
const usesRedis = (variant) =>
  !usesPostgres(variant) && (variant.includes('redis') || variant.startsWith('floor') || variant === 'store-pinned');

function clientCommands(variant, commands, responses) {
  const client = CLIENT_COMMANDS[variant];
  let total = 0;
  for (const [name, calls] of Object.entries(commands))
    if (client === undefined || client.own.has(name)) total += calls;
  if (client !== undefined) total -= client.insideScripts(commands);
  return responses > 0 ? total / responses : Number.NaN;
}

/** Median of one field over rounds. */
const medianOf = (rounds, field) => median(rounds.map((r) => r[field]));

/**
 * Runs one group. `settings`: { rounds, durationS, warmupS, connections }.
 * `profile`: variants (`express/idem-redis` or `idem-redis`) to run under the V8 CPU profiler during the
 * measured rounds; profiles go to `profileDir`, each with a side file of the responses it covers.
 */
export async function runGroup(group, { redis, postgres, settings, log, profile = [], profileDir }) {
  const servers = {};
  const profiles = {};
  // Responses each server gave (warm-up included), so a profile's time can be read per request.
  const served = Object.fromEntries(group.members.map((v) => [v, 0]));
  await Promise.all(
    group.members.map(async (variant) => {
      if (profile.includes(`${group.framework}/${variant}`) || profile.includes(variant))
        profiles[variant] = join(profileDir, `${group.id}-${variant}.cpuprofile`);
      servers[variant] = await startServer({
        framework: group.framework,
        variant,
        redisUrl: redis.url,
        pgUrl: postgres?.url,
      });
    }),
  );
  const request = requestFor(group.key);
  try {
    // Replays need a completed record first (one per process: memory stores are per process).
    if (group.scenario === 'replay') {
      for (const server of Object.values(servers)) {
        const response = await fetch(`${server.url}/orders`, {
          method: 'POST',
          headers: request.headers,
          body: request.body,
        });
        await response.arrayBuffer();
      }
    }
    // Warm-up: JIT, connection pools, lazy script loading. Not recorded.
    for (const variant of group.members) {
      served[variant] += (
        await measure({
          server: servers[variant],
          request,
          durationS: settings.warmupS,
          connections: settings.connections,
        })
      ).responses;
    }

    // Profiles cover the measured rounds only: counting starts here, after start-up and warm-up.
    for (const variant of Object.keys(profiles)) {
      servers[variant].profileStart();
      served[variant] = 0;
    }
    const rounds = Object.fromEntries(group.members.map((v) => [v, []]));
    for (let round = 0; round < settings.rounds; round++) {
      const order = round % 2 === 0 ? group.members : [...group.members].reverse();
      for (const variant of order) {
        const result = await measure({
          server: servers[variant],
          request,
          durationS: settings.durationS,
          connections: settings.connections,
          redis: usesRedis(variant) ? redis : undefined,
          // Every variant of a PostgreSQL group, bare too: what the idle server burns meanwhile.
          postgres: usesPostgresGroup(group) ? postgres : undefined,
        });
        result.round = round;
        served[variant] += result.responses;
        rounds[variant].push(result);
        log(
          `  ${group.id.padEnd(20)} r${round} ${variant.padEnd(12)} ${Math.round(result.rps).toString().padStart(6)} req/s  p99 ${String(result.p99).padStart(3)} ms  cpu ${result.serverCpuUs.toFixed(0).padStart(4)} µs/req${result.postgresCpuUs === null ? '' : `  pg ${result.postgresCpuUs.toFixed(0).padStart(4)} µs/req`}${result.non2xx ? `  non-2xx ${result.non2xx} ${JSON.stringify(result.statusCodes)}` : ''}${result.errors ? `  errors ${result.errors}` : ''}`,
        );
      }
    }
    // The same rounds again at one fixed rate for the variants of the CPU verdicts (not the
    // PostgreSQL groups: no CPU target was set for them).
    const fixed = Object.fromEntries(
      group.members.filter((v) => FIXED_RATE.has(v) && !usesPostgresGroup(group)).map((v) => [v, []]),
    );
    const fixedVariants = Object.keys(fixed);
    const rate =
      fixedVariants.length > 1
        ? Math.floor(FIXED_RATE_SHARE * Math.min(...fixedVariants.map((v) => medianOf(rounds[v], 'rps'))))
        : undefined;
    // Longer windows where a CPU verdict is read (the groups with a floor), when the mode sets them.
    const fixedDurationS = (group.floor && settings.fixedDurationS) || settings.durationS;
    const fixedRounds = (group.floor && settings.fixedRounds) || settings.rounds;
    for (let round = 0; rate !== undefined && round < fixedRounds; round++) {
      const order = round % 2 === 0 ? fixedVariants : [...fixedVariants].reverse();
      for (const variant of order) {
        const result = await measure({
          server: servers[variant],
          request,
          durationS: fixedDurationS,
          connections: settings.connections,
          rate,
          redis: usesRedis(variant) ? redis : undefined,
        });
        result.round = round;
        served[variant] += result.responses;
        fixed[variant].push(result);
        log(
          `  ${group.id.padEnd(20)} r${round} ${variant.padEnd(12)} at ${rate} req/s: cpu ${result.serverCpuUs.toFixed(0).padStart(4)} µs/req${result.redisCpuUs === null ? '' : `  redis ${result.redisCpuUs.toFixed(1)} µs/req`}`,
        );
      }
    }
    for (const [variant, path] of Object.entries(profiles)) {
      await servers[variant].profileStop(path);
      writeFileSync(`${path}.json`, JSON.stringify({ group: group.id, variant, requests: served[variant] }));
    }
    // Commands per request in a window of its own with a fixed number of requests, every one
    // answered: timed windows end with requests in flight whose commands were counted.
    const commands = {};
    for (const variant of group.members.filter(usesRedis)) {
      const counted = await countCommands({
        server: servers[variant],
        request,
        redis,
        connections: settings.connections,
        amount: settings.commandSample,
      });
      served[variant] += counted.requests;
      const all = Object.values(counted.commands).reduce((a, b) => a + b, 0);
      commands[variant] = {
        requests: counted.requests,
        ok: counted.ok,
        perRequest: all / counted.requests,
        clientPerRequest: clientCommands(variant, counted.commands, counted.requests),
        mix: Object.fromEntries(Object.entries(counted.commands).map(([n, c]) => [n, c / counted.requests])),
      };
    }
    // SQL statements per request the same way, for the PostgreSQL variants.
    const statements = {};
    for (const variant of group.members.filter(usesPostgres)) {
      const counted = await countStatements({
        server: servers[variant],
        request,
        connections: settings.connections,
        amount: settings.commandSample,
      });
      served[variant] += counted.requests;
      statements[variant] = counted;
    }
    return summarize(group, rounds, commands, statements, rate === undefined ? undefined : { rate, rounds: fixed });
  } finally {
    await Promise.all(Object.values(servers).map((s) => s.stop()));
  }
}

/**
 * Per-variant medians, and ratios computed round by round against the baseline and the floor.
 * `fixed`: { rate, rounds } of the fixed-rate rounds, when the group had them.
 */
function summarize(group, rounds, commands, statements, fixed) {
  const members = {};
  for (const [variant, list] of Object.entries(rounds)) {
    const okShare =
      list.reduce((a, r) => a + r.ok, 0) /
      Math.max(
        1,
        list.reduce((a, r) => a + r.responses, 0),
      );
    members[variant] = {
      label: LABELS[variant],
      rps: medianOf(list, 'rps'),
      p50: medianOf(list, 'p50'),
      p99: medianOf(list, 'p99'),
      rssMB: medianOf(list, 'rss') / 2 ** 20,
      serverCpuUs: medianOf(list, 'serverCpuUs'),
      redisCpuUs: list[0].redisCpuUs === null ? null : medianOf(list, 'redisCpuUs'),
      postgresCpuUs: list[0].postgresCpuUs === null ? null : medianOf(list, 'postgresCpuUs'),
      statementsPerRequest: statements[variant]?.perRequest ?? null,
      statementSample: statements[variant]
        ? { requests: statements[variant].requests, ok: statements[variant].ok }
        : null,
      commandsPerRequest: commands[variant]?.perRequest ?? null,
      clientCommandsPerRequest: commands[variant]?.clientPerRequest ?? null,
      commandMix: commands[variant]?.mix ?? null,
      commandSample: commands[variant] ? { requests: commands[variant].requests, ok: commands[variant].ok } : null,
      okShare,
      ...(fixed?.rounds[variant]
        ? {
            fixedRate: {
              rps: medianOf(fixed.rounds[variant], 'rps'),
              serverCpuUs: medianOf(fixed.rounds[variant], 'serverCpuUs'),
              redisCpuUs:
                fixed.rounds[variant][0].redisCpuUs === null ? null : medianOf(fixed.rounds[variant], 'redisCpuUs'),
              non2xx: fixed.rounds[variant].reduce((a, r) => a + r.non2xx, 0),
              rounds: fixed.rounds[variant].map((r) => ({
                round: r.round,
                rps: r.rps,
                serverCpuUs: r.serverCpuUs,
                redisCpuUs: r.redisCpuUs,
              })),
            },
          }
        : {}),
      statusCodes: list.reduce((acc, r) => {
        for (const [code, count] of Object.entries(r.statusCodes)) acc[code] = (acc[code] ?? 0) + count;
        return acc;
      }, {}),
      errors: list.reduce((a, r) => a + r.errors + r.timeouts, 0),
      rounds: list.map((r) => ({
        round: r.round,
        rps: r.rps,
        p50: r.p50,
        p99: r.p99,
        rss: r.rss,
        serverCpuUs: r.serverCpuUs,
        redisCpuUs: r.redisCpuUs,
        ...(r.postgresCpuUs === null ? {} : { postgresCpuUs: r.postgresCpuUs }),
        responses: r.responses,
        non2xx: r.non2xx,
      })),
    };
  }
  const ratioTo = (reference) => {
    if (!rounds[reference]) return undefined;
    const out = {};
    for (const variant of group.members) {
      if (variant === reference) continue;
      out[variant] = {
        rps: median(rounds[variant].map((r, i) => r.rps / rounds[reference][i].rps)),
        // Extra server CPU per request over the reference, paired round by round.
        addedCpuUs: median(rounds[variant].map((r, i) => r.serverCpuUs - rounds[reference][i].serverCpuUs)),
      };
    }
    return out;
  };
  return {
    id: group.id,
    title: group.title,
    framework: group.framework,
    scenario: group.scenario,
    baseline: group.baseline,
    floor: group.floor ?? null,
    members,
    vsBaseline: ratioTo(group.baseline),
    vsFloor: group.floor ? ratioTo(group.floor) : null,
    fixedRate: fixed?.rate ?? null,
  };
}

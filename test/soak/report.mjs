// Renders the soak's figures: a Markdown report (SOAK.md) and a short console summary.

const ms = (v) => (v === null || v === undefined ? '–' : `${Math.round(v)} ms`);

function table(head, rows) {
  return [
    `| ${head.join(' | ')} |`,
    `| ${head.map(() => '---').join(' | ')} |`,
    ...rows.map((r) => `| ${r.join(' | ')} |`),
  ].join('\n');
}

const INVARIANTS = [
  ['unexplainedDoubleExecutions', 'double executions no documented cause explains'],
  ['differingResponses', 'responses that differ from the execution they name (bytes, headers, payload, staleness)'],
  ['stuckKeys', 'keys stuck in flight after every lease lapsed (Redis scan + a final request per key)'],
  ['undocumented5xx', '5xx other than the documented 503 store_unavailable'],
  ['unexpectedAnswers', '4xx that the request did not call for (e.g. 422 for the same payload, 400 for a valid key)'],
  [
    'leasesLostWithoutRestart',
    'leases lost while the handler ran (leaseLost or a fenced write) with no Redis restart to explain it: every pause is shorter than the lease',
  ],
  ['executionsWithoutKey', 'handler executions for requests without a key (required: true)'],
  ['appCrashes', 'app processes that exited without being killed by the chaos schedule'],
];

/** The Markdown report of one run. */
export function markdown(report) {
  const { meta, invariants, requests, keys, executions, doubles, responses, stuck, verify, chaos, latency } = report;
  const lines = [];
  lines.push(`# Soak: ${meta.mode} run`, '');
  lines.push(
    `${meta.finishedAt} · ${meta.loadSeconds} s of load, ${meta.wallSeconds} s in all · seed ${meta.seed} · ` +
      `${meta.apps.map((a) => a.framework).join(' + ')} app processes, one redis-server (${meta.redisVersion}, no persistence) · ` +
      `lockTtl ${meta.lockTtl} ms, commandTimeout ${meta.commandTimeout} ms · Node ${meta.node} on ${meta.cpus} CPUs` +
      `${meta.loadAverage ? ` (load average ${meta.loadAverage.before} before, ${meta.loadAverage.after} after)` : ''}.`,
    '',
  );
  lines.push(
    `Reproduce: \`npm run soak -- ${meta.mode === 'quick' ? '--quick ' : ''}--duration ${meta.loadSeconds} --seed ${meta.seed}\` ` +
      '(the chaos schedule follows the seed; which requests meet which fault depends on timing and does not).',
    '',
  );

  lines.push('## Invariants', '');
  lines.push(
    table(
      ['', 'count', 'what'],
      INVARIANTS.map(([k, what]) => [invariants[k] === 0 ? 'pass' : '**FAIL**', String(invariants[k]), what]),
    ),
    '',
  );

  lines.push('## Figures', '');
  lines.push(
    table(
      ['figure', 'value'],
      [
        ['HTTP requests sent', `${requests.sent} (${requests.load} under load, ${requests.verify} in the final check)`],
        ['keys', `${keys.total} (${keys.executed} executed at least once)`],
        ['handler executions', `${executions.total}`],
        ['executions cut short by a SIGKILL', `${executions.interruptedByKill}`],
        ['executions longer than the lease (kept on renewals)', `${executions.longerThanLease}`],
        [
          '**double executions**',
          `**${doubles.total}**: ${doubles.explained.holderKilled} holder killed before storing, ${doubles.explained.redisDataLoss} Redis data loss (restart), ${doubles.explained.storeFailed} response not storable (Redis paused/down at that moment), **${doubles.unexplained} unexplained**`,
        ],
        [
          'keys whose clients saw two different results',
          `${keys.seeingTwoResults} (each one a double execution above)`,
        ],
        [
          '2xx responses checked byte for byte',
          `${responses.checked} (${responses.replays} replays), ${responses.differing} differing`,
        ],
        [
          'executions whose store call timed out, yet whose response was stored and replayed',
          `${responses.replayedAfterFailedStore} (the write reached Redis after the client-side timeout; the execute event said \`failed\`)`,
        ],
        [
          'stuck keys',
          `${stuck.total} (locks left ${stuck.locksLeft ?? '–'}, in-flight records left ${stuck.inFlightRecordsLeft ?? '–'}, final requests not answered 201: ${stuck.verifyNotAnswered201})`,
        ],
        [
          'final check, one request per key sent since the last Redis restart',
          `${verify.keys} keys: ${verify.replayed} replayed, ${verify.executed} executed (no response had been stored)`,
        ],
        ['documented 503 store_unavailable', `${requests.documented503}`],
        ['other 5xx', `${requests.undocumented5xx.length}`],
        [
          'broken connections',
          `${requests.connectionErrors} (${requests.connectionErrorsAtAKill} at a SIGKILL of the process, ${requests.connectionErrorsOther} otherwise; ${requests.clientTimeouts} client timeouts)`,
        ],
        [
          'leases lost while the handler ran',
          `${executions.leasesLost} (${executions.leasesLostAtARestart} at a Redis restart, which took the lock with the data)`,
        ],
        [
          'middleware events',
          `leaseLost ${executions.leaseLost}; storeError ${
            Object.entries(executions.storeErrors)
              .map(([k, v]) => `${k} ${v}`)
              .join(', ') || '0'
          }`,
        ],
      ],
    ),
    '',
  );

  lines.push('## Chaos', '');
  lines.push(
    table(
      ['fault', 'count', 'duration p50 / max'],
      [
        [
          'Redis paused (SIGSTOP … SIGCONT)',
          String(chaos.redisPauses),
          `${ms(chaos.redisPauseMs.p50)} / ${ms(chaos.redisPauseMs.max)}`,
        ],
        [
          'Redis killed (SIGKILL) and restarted empty',
          String(chaos.redisRestarts),
          `${ms(chaos.redisDownMs.p50)} / ${ms(chaos.redisDownMs.max)} down`,
        ],
        [
          'app process SIGKILLed and restarted',
          `${chaos.appKills} (${chaos.appKillsWithHandlersRunning} with handlers running)`,
          '',
        ],
      ],
    ),
    '',
  );
  if (doubles.explained.holderKilled > 0) {
    const g = doubles.takeoverAfterKillMs;
    lines.push(
      `A killed holder's key was taken over no sooner than ${ms(g.min)} after the kill (p50 ${ms(g.p50)}; later when no retry came sooner): its lease had to lapse first (lockTtl ${meta.lockTtl} ms, renewed every ${Math.floor(meta.lockTtl / 3)} ms, so at least ~${Math.round((2 * meta.lockTtl) / 3)} ms unless a Redis fault had made renewals fail).`,
      '',
    );
  }

  lines.push('## Latency by answer (under load, per HTTP attempt)', '');
  lines.push(
    table(
      ['answer', 'count', 'p50', 'p99', 'max'],
      Object.entries(latency).map(([name, s]) => [name, String(s.count), ms(s.p50), ms(s.p99), ms(s.max)]),
    ),
    '',
  );

  lines.push('## Answers', '');
  lines.push(
    table(
      ['answer', 'count'],
      Object.entries(requests.byAnswer)
        .sort((a, b) => b[1] - a[1])
        .map(([k, v]) => [k, String(v)]),
    ),
    '',
  );

  if (doubles.details.length) {
    lines.push('## Double executions', '');
    lines.push(
      table(
        ['key', 'cause', 'why'],
        doubles.details.slice(0, 30).map((d) => [`\`${d.key}\``, d.cause, d.why]),
      ),
      '',
    );
    if (doubles.details.length > 30) lines.push(`… and ${doubles.details.length - 30} more in the JSON.`, '');
  }
  if (responses.details.length) {
    lines.push('## Differing responses', '');
    lines.push(
      table(
        ['key', 'exec', 'problems'],
        responses.details.slice(0, 30).map((d) => [`\`${d.key}\``, String(d.exec), d.problems.join('; ')]),
      ),
      '',
    );
  }

  lines.push('## How to read this', '');
  lines.push(
    '- Executions are counted from the handler side: each app process appends a line to its own ledger, synchronously, *before* the simulated side effect, so a SIGKILL cannot hide an execution that started.',
    '- A double execution is explained only by a documented cause, attributed by time: **holder killed** (its process was SIGKILLed after the execution started and before its response was stored; the retry ran after the kill, once the lease lapsed), **Redis data loss** (Redis was SIGKILLed and restarted empty between the two executions: the first started before Redis was back, the second after the kill), **response not storable** (the store write failed while Redis was paused or down; the client got the answer, nothing was kept, so the retry ran — see docs/guarantees.md). Two executions of one key that overlap in time with no Redis restart between them are always unexplained.',
    '- Every 2xx is checked against the ledger of the execution it names (X-Exec): exact body bytes, status, Location, content type, the payload it was for, and that no newer stored execution existed when the request was sent.',
    '- Stuck keys are checked after the load stopped, every handler finished and one lockTtl passed: no lock and no in-flight record may be left in Redis, and one more request per key (each key first sent after the last Redis restart; that restart wiped the others) must be answered 201.',
    '- Pauses are kept shorter than the lease; the guarantee assumes that (docs/guarantees.md).',
    '',
  );
  return lines.join('\n');
}

/** A few lines for the console. */
export function summary(report) {
  const { invariants, requests, doubles, responses, stuck, chaos, latency, meta } = report;
  const lat = Object.entries(latency)
    .slice(0, 6)
    .map(
      ([k, s]) =>
        `  ${k.padEnd(30)} n=${String(s.count).padStart(6)}  p50 ${ms(s.p50).padStart(8)}  p99 ${ms(s.p99).padStart(8)}`,
    );
  return [
    `soak (${meta.mode}): ${meta.loadSeconds} s of load, ${meta.wallSeconds} s in all, seed ${meta.seed}`,
    `  requests ${requests.sent}; 503 store_unavailable ${requests.documented503}; other 5xx ${requests.undocumented5xx.length}; broken connections ${requests.connectionErrors} (${requests.connectionErrorsAtAKill} at a kill)`,
    `  chaos: ${chaos.redisPauses} Redis pauses, ${chaos.redisRestarts} Redis restarts, ${chaos.appKills} app SIGKILLs (${chaos.appKillsWithHandlersRunning} mid-handler)`,
    `  double executions ${doubles.total}: holder killed ${doubles.explained.holderKilled}, Redis data loss ${doubles.explained.redisDataLoss}, not storable ${doubles.explained.storeFailed}, UNEXPLAINED ${doubles.unexplained}`,
    `  differing responses ${responses.differing} of ${responses.checked}; stuck keys ${stuck.total}; unexpected answers ${invariants.unexpectedAnswers}`,
    ...lat,
    invariants.ok ? '  invariants: all hold' : `  invariants FAILED: ${JSON.stringify(invariants)}`,
  ].join('\n');
}

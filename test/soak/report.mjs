// Renders the soak's figures: a Markdown report (SOAK.md) with the stores side by side, and a short
// console summary.
import { PROFILES } from './analyze.mjs';

const ms = (v) => (v === null || v === undefined ? '–' : `${Math.round(v)} ms`);
const label = (store) => PROFILES[store]?.label ?? store;

function table(head, rows) {
  return [
    `| ${head.join(' | ')} |`,
    `| ${head.map(() => '---').join(' | ')} |`,
    ...rows.map((r) => `| ${r.join(' | ')} |`),
  ].join('\n');
}

const INVARIANTS = [
  ['unexplainedDoubleExecutions', 'double executions no documented cause explains (transactional: any double)'],
  ['differingResponses', 'replies that differ from the stored one or from the execution they name'],
  ['stuckKeys', 'keys stuck in flight after every lease lapsed (store scan + a final request per key)'],
  ['undocumented5xx', '5xx besides the documented 503s'],
  ['unexpectedAnswers', '4xx that the request did not call for (e.g. 422 for the same payload)'],
  ['leasesLostWithoutRestart', 'leases lost while the handler ran with no kill of the store that ends holders'],
  ['businessRowMismatches', 'PostgreSQL: business rows that disagree with the stored records'],
  ['executionsWithoutKey', 'handler executions for requests without a key (required: true)'],
  ['appCrashes', 'app processes that exited without being killed by the chaos schedule'],
];

const CAUSES = [
  ['holderKilled', 'holder killed after its side effect, before storing'],
  ['dataLoss', 'store restarted empty (data loss)'],
  ['storeFailed', 'response not storable (store paused/down at that moment)'],
  ['writeUnconfirmed', 'business write landed, its answer lost (503, key released)'],
];

/** The notes under every report, one array of lines per bullet. */
const HOW_TO_READ = [
  [
    'Each store has its own server and its own four app processes; the three runs share the machine and',
    'one fault schedule (the same pause or kill at the same moment of each load).',
  ],
  [
    'Executions are counted from the handler side: each app process appends a line to its own ledger,',
    'synchronously, *before* the side effect, so a SIGKILL cannot hide an execution that started. On',
    'PostgreSQL the side effect is a business row (lease mode: autocommitted on the pool; transactional',
    'mode: written through `transactionOf(req)`), and the rows are counted in the database: an execution',
    'killed before its commit did nothing.',
  ],
  [
    'A double execution is explained only by a documented cause, attributed by time: **holder killed**',
    '(its process was SIGKILLed after its side effect and before its response was stored; the retry ran',
    'once the lease lapsed), **store restarted empty** (Redis without persistence: the first execution',
    'started before the store was back, the second after the kill), **response not storable** (the store',
    'write failed while the store was paused or down; the client got the answer, nothing was kept, so the',
    'retry ran), **business write landed, its answer lost** (lease mode: the app answered 503, the key was',
    'released). See docs/guarantees.md. Overlapping executions of one key with no restart-empty between',
    'them are always unexplained, and so is any second business row of a key in transactional mode.',
  ],
  [
    'PostgreSQL restarts on its data folder after its SIGKILL (crash recovery): completed records',
    'survive, so no double is explained by its restarts, and the final check covers every key.',
  ],
  [
    'Transactional mode must keep exactly one business row per completed key, and it must be the row of',
    'the execution whose response the record holds; a row without a completed record is a write kept',
    'without its response.',
  ],
  [
    'Every 2xx is checked against the ledger of the execution it names (X-Exec): exact body bytes,',
    'status, Location, content type, the payload it was for, that no newer stored execution existed when',
    'the request was sent, and (PostgreSQL) that its business row is in the database.',
  ],
  [
    'Stuck keys are checked after the load stopped, every handler finished and one lockTtl passed: no',
    'lock and no live in-flight record may be left, and one more request per key must be answered 201.',
  ],
  ['Pauses are kept shorter than the lease; the guarantee assumes that (docs/guarantees.md).'],
];

/** One row of the side-by-side table: `cell(report)` per store. */
const row = (name, stores, cell) => [name, ...stores.map((s) => cell(s))];

function sideBySide(stores) {
  const rows = [
    row('HTTP requests sent', stores, (s) => `${s.requests.sent} (${s.requests.verify} in the final check)`),
    row('keys', stores, (s) => String(s.keys.total)),
    row('handler executions (started)', stores, (s) => String(s.executions.total)),
    row('… that took effect (business row committed)', stores, (s) =>
      s.executions.withBusinessRow === null ? 'every one (no database)' : String(s.executions.withBusinessRow),
    ),
    row(
      'app processes SIGKILLed (mid-handler)',
      stores,
      (s) => `${s.chaos.appKills} (${s.chaos.appKillsWithHandlersRunning})`,
    ),
    row('executions cut short by a SIGKILL', stores, (s) => String(s.executions.interruptedByKill)),
    row(
      'store paused (SIGSTOP … SIGCONT)',
      stores,
      (s) => `${s.chaos.storePauses} (max ${ms(s.chaos.storePauseMs.max)})`,
    ),
    row('store killed (SIGKILL) and restarted', stores, (s) => {
      const how = PROFILES[s.store].restartLosesData ? 'empty' : 'on its data';
      return `${s.chaos.storeRestarts} (${how}, down max ${ms(s.chaos.storeDownMs.max)})`;
    }),
    row('**double executions**', stores, (s) => `**${s.doubles.total}**`),
    ...CAUSES.map(([k, what]) => row(`… ${what}`, stores, (s) => String(s.doubles.explained[k]))),
    row('… **unexplained**', stores, (s) => `**${s.doubles.unexplained}**`),
    row('keys with two or more business rows', stores, (s) =>
      s.rows === null
        ? '–'
        : String(
            Object.entries(s.rows.keysByRowCount)
              .filter(([n]) => Number(n) > 1)
              .reduce((sum, [, keys]) => sum + keys, 0),
          ),
    ),
    row('business rows disagreeing with the stored records', stores, (s) =>
      s.rows === null ? '–' : String(s.rows.mismatches),
    ),
    row('retry of a killed holder that left nothing: after the kill, p50 / min', stores, (s) => {
      const g = s.doubles.retryAfterKilledHolderLeftNothingMs;
      return g.count ? `${ms(g.p50)} / ${ms(g.min)} (${g.count})` : '–';
    }),
    row('retry of a killed holder that did it (the double): after the kill, p50 / min', stores, (s) => {
      const g = s.doubles.takeoverAfterKillMs;
      return g.count ? `${ms(g.p50)} / ${ms(g.min)} (${g.count})` : '–';
    }),
    row(
      '2xx checked byte for byte (replays), differing',
      stores,
      (s) => `${s.responses.checked} (${s.responses.replays}), **${s.responses.differing}**`,
    ),
    row('keys stuck in flight', stores, (s) => `**${s.stuck.total}**`),
    row('final check: keys replayed / executed', stores, (s) => {
      const which = PROFILES[s.store].restartLosesData ? 'sent since the last restart' : 'every key';
      return `${s.verify.replayed} / ${s.verify.executed} of ${s.verify.keys} (${which})`;
    }),
    row('documented 503 store_unavailable', stores, (s) => String(s.requests.documented503)),
    row("503 business_write_failed (the app's own write, database down)", stores, (s) =>
      PROFILES[s.store].rows ? String(s.requests.businessWriteFailed503) : '–',
    ),
    row('**other 5xx**', stores, (s) => `**${s.requests.undocumented5xx.length}**`),
    row(
      'broken connections (at a SIGKILL of the process)',
      stores,
      (s) => `${s.requests.connectionErrors} (${s.requests.connectionErrorsAtAKill})`,
    ),
    row(
      'leases lost while the handler ran (at a kill of the store)',
      stores,
      (s) => `${s.executions.leasesLost} (${s.executions.leasesLostAtARestart})`,
    ),
    row(
      'storeError events',
      stores,
      (s) =>
        Object.entries(s.executions.storeErrors)
          .map(([k, v]) => `${k} ${v}`)
          .join(', ') || '0',
    ),
  ];
  return table(['', ...stores.map((s) => `${label(s.store)}`)], rows);
}

/** The Markdown report of one run, every store side by side. */
export function markdown(file) {
  const { meta, stores } = file;
  const lines = [];
  lines.push(`# Soak: ${meta.mode} run`, '');
  lines.push(
    `${meta.finishedAt} · ${meta.loadSeconds} s of load, ${meta.wallSeconds} s in all · seed ${meta.seed} · ` +
      `per store ${meta.apps.map((a) => a.framework).join(' + ')} app processes and ${meta.workers} load workers, ` +
      'the stores side by side under the same chaos schedule · ' +
      `lockTtl ${meta.lockTtl} ms, commandTimeout / queryTimeout ${meta.commandTimeout} ms · ` +
      `Node ${meta.node} on ${meta.cpus} CPUs` +
      (meta.loadAverage ? ` (load average ${meta.loadAverage.before} before, ${meta.loadAverage.after} after).` : '.'),
    '',
  );
  lines.push(stores.map((s) => `- **${label(s.store)}**: ${s.version}${storeNote(s.store)}`).join('\n'), '');
  lines.push(
    `Reproduce: \`npm run soak -- ${meta.mode === 'quick' ? '--quick ' : ''}` +
      `--duration ${meta.loadSeconds} --seed ${meta.seed}\` ` +
      '(the chaos schedule follows the seed; which requests meet which fault depends on timing and does not).',
    '',
  );

  lines.push('## Invariants', '');
  lines.push(
    table(
      ['', ...stores.map((s) => label(s.store))],
      INVARIANTS.map(([k, what]) => [
        what,
        ...stores.map((s) => (s.invariants[k] === 0 ? `pass (0)` : `**FAIL (${s.invariants[k]})**`)),
      ]),
    ),
    '',
  );

  lines.push('## Side by side', '');
  lines.push(sideBySide(stores), '');

  for (const s of stores) {
    lines.push(`## ${label(s.store)}`, '');
    lines.push('Latency by answer (under load, per HTTP attempt):', '');
    lines.push(
      table(
        ['answer', 'count', 'p50', 'p99', 'max'],
        Object.entries(s.latency).map(([name, st]) => [name, String(st.count), ms(st.p50), ms(st.p99), ms(st.max)]),
      ),
      '',
    );
    if (s.doubles.details.length) {
      lines.push('Double executions:', '');
      lines.push(
        table(
          ['key', 'cause', 'why'],
          s.doubles.details.slice(0, 20).map((d) => [`\`${d.key}\``, d.cause, d.why]),
        ),
        '',
      );
      if (s.doubles.details.length > 20) lines.push(`… and ${s.doubles.details.length - 20} more in the JSON.`, '');
    }
    if (s.responses.details.length) {
      lines.push('Differing responses:', '');
      lines.push(
        table(
          ['key', 'exec', 'problems'],
          s.responses.details.slice(0, 20).map((d) => [`\`${d.key}\``, String(d.exec), d.problems.join('; ')]),
        ),
        '',
      );
    }
    if (s.rows?.details.length) {
      lines.push('Business rows against the records:', '');
      lines.push(
        table(
          ['key', 'problem'],
          s.rows.details.slice(0, 20).map((d) => [`\`${d.key}\``, d.problem]),
        ),
        '',
      );
    }
  }

  lines.push('## How to read this', '', ...HOW_TO_READ.map((paragraph) => `- ${paragraph.join(' ')}`), '');
  return lines.join('\n');
}

function storeNote(store) {
  if (store === 'redis') return '; killed = restarted empty';
  if (store === 'postgres-lease') return '; `postgresStore({ pool })`, business row autocommitted on the pool';
  return '; `postgresStore({ pool, transactional: true })`, business row through `transactionOf(req | ctx)`';
}

/** A few lines for the console. */
export function summary(file) {
  const { meta, stores } = file;
  const out = [`soak (${meta.mode}): ${meta.loadSeconds} s of load, ${meta.wallSeconds} s in all, seed ${meta.seed}`];
  for (const s of stores) {
    const { invariants, requests, doubles, responses, stuck, chaos } = s;
    const e = doubles.explained;
    out.push(
      `${label(s.store)}:`,
      `  requests ${requests.sent}; 503 store_unavailable ${requests.documented503}; ` +
        `other 5xx ${requests.undocumented5xx.length}; chaos ${chaos.storePauses} pauses, ` +
        `${chaos.storeRestarts} restarts, ${chaos.appKills} app SIGKILLs ` +
        `(${chaos.appKillsWithHandlersRunning} mid-handler)`,
      `  double executions ${doubles.total}: holder killed ${e.holderKilled}, data loss ${e.dataLoss}, ` +
        `not storable ${e.storeFailed}, write unconfirmed ${e.writeUnconfirmed}, UNEXPLAINED ${doubles.unexplained}`,
      `  differing responses ${responses.differing} of ${responses.checked}; stuck keys ${stuck.total}; ` +
        `row mismatches ${invariants.businessRowMismatches}; unexpected answers ${invariants.unexpectedAnswers}`,
      invariants.ok ? '  invariants: all hold' : `  invariants FAILED: ${JSON.stringify(invariants)}`,
    );
  }
  return out.join('\n');
}

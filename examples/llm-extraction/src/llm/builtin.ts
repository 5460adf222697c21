/**
 * The built-in "model": deterministic heuristics over the transcript, behind a simulated latency,
 * so the service and its demo work offline and cost nothing. It answers with the same JSON shapes
 * as the prompts ask a real model for, and reports estimated token usage like a real provider.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { estimateTokens, SYSTEM_PROMPTS, userPrompt } from './prompts.js';
import type { LlmInput, LlmProvider, LlmResult } from './types.js';

/** Options of {@link builtinProvider}. */
export interface BuiltinProviderOptions {
  /** Simulated model latency per call. @default 1500 */
  latencyMs?: number;
}

/** The built-in extractor's model name. */
export const BUILTIN_MODEL = 'builtin-extractor-v1';

interface Utterance {
  speaker: string;
  sentence: string;
}

const STOPWORDS = new Set(
  (
    'about above after again also been before being below between both but could does doing down during each from further ' +
    'have having here hers herself himself into itself just more most myself once only other ours ourselves over same should ' +
    'some such than that their theirs them themselves then there these they this those through under until very were what ' +
    'when where which while whom will with would your yours yourself yourselves okay yeah sure thanks thank think know going ' +
    "want need like really right well good great let's that's it's we'll i'll you're we're can't don't " +
    // Words the heuristics below already turn into decisions, actions and dates.
    'decided agreed agree send share follow review check prepare schedule joining worried today tomorrow week ' +
    'monday tuesday wednesday thursday friday saturday sunday'
  ).split(' '),
);
const POSITIVE =
  /\b(great|good|happy|excited|love|perfect|thanks|thank you|excellent|glad|pleased|works well|impressed|agreed?)\b/gi;
const NEGATIVE =
  /\b(concerns?|worried|problems?|issues?|delays?|delayed|blocked|blockers?|risks?|unhappy|frustrat\w*|late|expensive|churn|cancel\w*|escalat\w*)\b/gi;
const ACTION =
  /\b(i'll|i will|we'll|we will|will (?:send|share|follow|prepare|schedule|draft|set up|review|check)|action item|to-?do|follow up|needs? to)\b/i;
const DECISION = /\b(decided|agreed|we'll go with|let's go with|approved|signed off|final decision)\b/i;
const RISK =
  /\b(risks?|concerns?|worried|blockers?|blocked|delays?|delayed|churn|cancel\w*|escalat\w*|problems?|issues?)\b/i;
const DUE =
  /\b(?:by|on|before|until|due)\s+((?:next\s+)?(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday|week)|tomorrow|today|end of (?:the )?(?:day|week|month|quarter)|eod|eow|\d{4}-\d{2}-\d{2})\b/i;
const NAMED_OWNER = /^([A-Z][a-z]+)(?:,)?\s+(?:will|can you|could you|please)\b/;

/** Splits "Name: text" lines into sentences with their speaker; lines without a name continue the last speaker. */
function utterances(transcript: string): Utterance[] {
  const out: Utterance[] = [];
  let speaker = 'Unknown';
  for (const line of transcript.split(/\r?\n/)) {
    const match = /^\s*([A-Z][\w .'-]{0,40}?)\s*:\s*(.*)$/.exec(line);
    const text = (match ? match[2] : line)?.trim() ?? '';
    if (match) speaker = match[1]!.trim();
    for (const sentence of text.split(/(?<=[.!?])\s+/)) {
      if (sentence.trim() !== '') out.push({ speaker, sentence: sentence.trim() });
    }
  }
  return out;
}

function unique<T>(items: readonly T[]): T[] {
  return [...new Set(items)];
}

function round(value: number): number {
  return Math.round(value * 100) / 100;
}

function topics(said: readonly Utterance[]): string[] {
  const counts = new Map<string, number>();
  for (const { sentence } of said) {
    // Lower-case words only: capitalised ones are mostly names, which make poor topics.
    for (const word of sentence.match(/(?<![\w'-])[a-z][a-z'-]{3,}/g) ?? []) {
      if (!STOPWORDS.has(word)) counts.set(word, (counts.get(word) ?? 0) + 1);
    }
  }
  // Ties break alphabetically: the same transcript always gives the same topics.
  return [...counts]
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .slice(0, 5)
    .map(([word]) => word);
}

function summarise(
  input: LlmInput,
  participants: readonly string[],
  subjects: readonly string[],
  tail: string,
): string {
  const who =
    participants.length === 0
      ? 'The participants'
      : participants.length === 1
        ? participants[0]!
        : `${participants.slice(0, -1).join(', ')} and ${participants.at(-1)!}`;
  const customer = input.customer?.name ?? input.meeting.customer_id;
  const about = subjects.length > 0 ? ` about ${subjects.slice(0, 3).join(', ')}` : '';
  return `${who} met with ${customer} on ${input.meeting.meet_date}${about}. ${tail}`;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/** The `extract` task's answer. */
export function extractFacts(input: LlmInput): Record<string, unknown> {
  const said = utterances(input.transcript);
  const participants = unique(said.map((u) => u.speaker).filter((s) => s !== 'Unknown'));
  const action_items = said
    .filter(({ sentence }) => ACTION.test(sentence) && !sentence.endsWith('?'))
    .map(({ speaker, sentence }) => ({
      owner:
        NAMED_OWNER.exec(sentence)?.[1] ?? (/^we\b/i.test(sentence) ? 'team' : speaker === 'Unknown' ? null : speaker),
      task: sentence.replace(/[.!]+$/, ''),
      due: DUE.exec(sentence)?.[1]?.toLowerCase() ?? null,
    }));
  const decisions = said
    .filter(({ sentence }) => DECISION.test(sentence))
    .map(({ sentence }) => sentence.replace(/[.!]+$/, ''));
  const subjects = topics(said);
  const summary = summarise(
    input,
    participants,
    subjects,
    `${plural(decisions.length, 'decision')} and ${plural(action_items.length, 'action item')}.`,
  );
  return { summary, participants, action_items, decisions, topics: subjects };
}

/** The `analyze` task's answer. */
export function analyzeConversation(input: LlmInput): Record<string, unknown> {
  const said = utterances(input.transcript);
  const words = new Map<string, number>();
  for (const { speaker, sentence } of said)
    words.set(speaker, (words.get(speaker) ?? 0) + sentence.split(/\s+/).length);
  const total = [...words.values()].reduce((a, b) => a + b, 0) || 1;
  const talk_time = [...words].map(([speaker, n]) => ({ speaker, words: n, share: round(n / total) }));

  const text = input.transcript;
  const positive = text.match(POSITIVE)?.length ?? 0;
  const negative = text.match(NEGATIVE)?.length ?? 0;
  const score = round((positive - negative) / Math.max(1, positive + negative));
  const label = score > 0.2 ? 'positive' : score < -0.2 ? 'negative' : 'neutral';

  const risks = said.filter(({ sentence }) => RISK.test(sentence)).map(({ sentence }) => sentence);
  const open_questions = said.filter(({ sentence }) => sentence.endsWith('?')).map(({ sentence }) => sentence);
  const participants = talk_time.map((t) => t.speaker).filter((s) => s !== 'Unknown');
  const summary = summarise(
    input,
    participants,
    topics(said),
    `The tone was ${label}, with ${plural(risks.length, 'risk')} raised.`,
  );
  return { summary, sentiment: { label, score }, talk_time, risks, open_questions };
}

/**
 * A provider that needs no network: same input, same output, after `latencyMs`.
 *
 * @example
 * const llm = builtinProvider({ latencyMs: 1500 });
 * const { output } = await llm.complete({ task: 'extract', transcript, meeting, customer });
 */
export function builtinProvider(options: BuiltinProviderOptions = {}): LlmProvider {
  const latencyMs = options.latencyMs ?? 1500;
  return {
    name: 'builtin',
    model: BUILTIN_MODEL,
    async complete(input): Promise<LlmResult> {
      // The wait stands in for the model's time; the service's point is to pay it once.
      if (latencyMs > 0) await sleep(latencyMs);
      const output = input.task === 'extract' ? extractFacts(input) : analyzeConversation(input);
      const usage = {
        promptTokens: estimateTokens(SYSTEM_PROMPTS[input.task] + userPrompt(input)),
        completionTokens: estimateTokens(JSON.stringify(output)),
      };
      return { output, model: BUILTIN_MODEL, usage };
    },
  };
}

/**
 * The instructions each task gives the model and the JSON shape it must answer with. The built-in
 * extractor answers with the same shapes, so clients see one contract whichever model runs.
 */
import type { LlmInput, Task } from './types.js';

/** System prompts, one per task. */
export const SYSTEM_PROMPTS: Record<Task, string> = {
  extract: [
    'You extract facts from a meeting transcript. Answer with one JSON object and nothing else:',
    '{"summary": string (two sentences at most),',
    ' "participants": string[] (speaker names in order of first appearance),',
    ' "action_items": [{"owner": string | null, "task": string, "due": string | null}],',
    ' "decisions": string[],',
    ' "topics": string[] (at most five, lower-case)}',
    'Use only what the transcript says; leave a list empty rather than guess.',
  ].join('\n'),
  analyze: [
    'You analyse the conversation in a meeting transcript. Answer with one JSON object and nothing else:',
    '{"summary": string (two sentences at most),',
    ' "sentiment": {"label": "positive" | "neutral" | "negative", "score": number from -1 to 1},',
    ' "talk_time": [{"speaker": string, "words": number, "share": number from 0 to 1}],',
    ' "risks": string[] (concerns, blockers, delays, churn signals, quoted or closely paraphrased),',
    ' "open_questions": string[]}',
    'Use only what the transcript says.',
  ].join('\n'),
};

/** The user message: the meeting's metadata, then the transcript. */
export function userPrompt(input: LlmInput): string {
  const { meeting, customer } = input;
  const who = customer === undefined ? meeting.customer_id : `${customer.name} (${customer.tier}, id ${customer.id})`;
  return `Meeting ${meeting.meeting_id} on ${meeting.meet_date} with customer ${who}.\n\nTranscript:\n${input.transcript}`;
}

/** A rough token count (about four characters per token in English) for providers that report none. */
export function estimateTokens(text: string): number {
  return Math.ceil(text.length / 4);
}

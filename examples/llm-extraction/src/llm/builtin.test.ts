import { describe, expect, it } from 'vitest';
import { builtinProvider } from './builtin.js';
import type { LlmInput } from './types.js';

const input: LlmInput = {
  task: 'extract',
  transcript: [
    'Alice: Thanks for joining. We decided to go with the annual plan.',
    'Bob: I will send the contract by Friday. I am worried about the migration delay.',
    'Alice: Carol will schedule the kickoff. Can legal review it?',
  ].join('\n'),
  meeting: { meeting_id: 'm-1', customer_id: 'c-1', meet_date: '2024-05-01' },
  customer: { id: 'c-1', name: 'Acme Corp', tier: 'growth', account_manager: 'Ana' },
};

describe('builtinProvider', () => {
  const llm = builtinProvider({ latencyMs: 0 });

  it('extracts participants, action items with owners and dates, and decisions', async () => {
    const { output, model, usage } = await llm.complete(input);
    expect(model).toBe('builtin-extractor-v1');
    expect(output).toMatchObject({
      participants: ['Alice', 'Bob'],
      action_items: [
        { owner: 'Bob', task: 'I will send the contract by Friday', due: 'friday' },
        { owner: 'Carol', task: 'Carol will schedule the kickoff', due: null },
      ],
      decisions: ['We decided to go with the annual plan'],
    });
    expect(output.summary).toBe(
      'Alice and Bob met with Acme Corp on 2024-05-01 about annual, contract, delay. 1 decision and 2 action items.',
    );
    expect(usage.promptTokens).toBeGreaterThan(0);
    expect(usage.completionTokens).toBeGreaterThan(0);
  });

  it('analyses sentiment, talk time, risks and open questions', async () => {
    const { output } = await llm.complete({ ...input, task: 'analyze' });
    expect(output.talk_time).toEqual([
      { speaker: 'Alice', words: 20, share: 0.59 },
      { speaker: 'Bob', words: 14, share: 0.41 },
    ]);
    expect(output.risks).toEqual(['I am worried about the migration delay.']);
    expect(output.open_questions).toEqual(['Can legal review it?']);
    // One positive word (thanks) against two negative ones (worried, delay).
    expect(output.sentiment).toEqual({ label: 'negative', score: -0.33 });
  });

  it('answers the same input with the same output', async () => {
    const a = await llm.complete(input);
    const b = await llm.complete(input);
    expect(JSON.stringify(b)).toBe(JSON.stringify(a));
  });
});

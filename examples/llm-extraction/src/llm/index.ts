/** Picks the model the configuration asks for, and prices its calls. */
import type { Config, LlmConfig } from '../config.js';
import { builtinProvider } from './builtin.js';
import { openAiProvider } from './openai.js';
import type { LlmProvider, TokenUsage } from './types.js';

export { builtinProvider, BUILTIN_MODEL } from './builtin.js';
export { openAiProvider } from './openai.js';
export { LlmError } from './types.js';
export type { LlmErrorCode, LlmInput, LlmProvider, LlmResult, Task, TokenUsage } from './types.js';

/** The provider `config` names: OpenAI-compatible when `OPENAI_API_KEY` is set, else the built-in extractor. */
export function createLlm(config: LlmConfig): LlmProvider {
  if (config.provider === 'openai') {
    return openAiProvider({
      apiKey: config.apiKey,
      baseUrl: config.baseUrl,
      model: config.model,
      timeoutMs: config.timeoutMs,
    });
  }
  return builtinProvider({ latencyMs: config.latencyMs });
}

/** A line for the start-up banner: which model, where, how slow. */
export function describeLlm(config: LlmConfig): string {
  return config.provider === 'openai'
    ? `openai-compatible ${config.model} at ${config.baseUrl} (timeout ${config.timeoutMs} ms)`
    : `built-in extractor, simulated latency ${config.latencyMs} ms (set OPENAI_API_KEY for a real model)`;
}

/** Estimated price of a call in USD, from the configured per-million-token prices. */
export function estimateCostUsd(usage: TokenUsage, pricing: Config['pricing']): number {
  const usd = (usage.promptTokens * pricing.inputPerMTok + usage.completionTokens * pricing.outputPerMTok) / 1_000_000;
  // Micro-dollars: enough precision for a per-call estimate, short in JSON.
  return Math.round(usd * 1_000_000) / 1_000_000;
}

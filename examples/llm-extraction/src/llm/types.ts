/** The model behind the endpoints: one interface, a built-in offline extractor and an OpenAI-compatible API. */
import type { Customer } from '../customers.js';
import type { MeetingPayload } from '../payload.js';

/** What the model is asked to do: `extract` facts (POST /extract) or `analyze` the conversation (POST /analyze). */
export type Task = 'extract' | 'analyze';

/** One model call's input. */
export interface LlmInput {
  task: Task;
  transcript: string;
  meeting: MeetingPayload['metadata'];
  /** The customer record, to give the model context; undefined when unknown. */
  customer: Customer | undefined;
}

/** Tokens a call consumed, as the provider reports them (or estimates them). */
export interface TokenUsage {
  promptTokens: number;
  completionTokens: number;
}

/** One model call's answer: a JSON object whose shape {@link Task} defines (see prompts.ts). */
export interface LlmResult {
  output: Record<string, unknown>;
  /** The model that answered, as the provider names it. */
  model: string;
  usage: TokenUsage;
}

/** A model. `complete` is the costly, slow call that idempotency makes happen once per meeting. */
export interface LlmProvider {
  /** `'builtin'` or `'openai'`, for logs and metrics. */
  readonly name: string;
  /** The configured model name. */
  readonly model: string;
  /**
   * Runs the task. Throws {@link LlmError} on any failure. Not cancellable on purpose: duplicates
   * may be waiting for this very call, so a client that hangs up does not stop it.
   */
  complete(input: LlmInput): Promise<LlmResult>;
}

/** Stable codes of model failures. Each becomes a 502 problem, which idempotency does not store. */
export type LlmErrorCode =
  'llm_timeout' | 'llm_unreachable' | 'llm_rejected' | 'llm_rate_limited' | 'llm_upstream_error' | 'llm_bad_output';

/**
 * A failed model call. `message` is safe to show clients; `upstream` holds what the provider said
 * (which may quote part of a key), for the logs only.
 */
export class LlmError extends Error {
  readonly code: LlmErrorCode;
  readonly upstreamStatus: number | undefined;
  readonly upstream: string | undefined;

  constructor(
    code: LlmErrorCode,
    message: string,
    context: { upstreamStatus?: number; upstream?: string; cause?: unknown } = {},
  ) {
    super(message, context.cause === undefined ? undefined : { cause: context.cause });
    this.name = 'LlmError';
    this.code = code;
    this.upstreamStatus = context.upstreamStatus;
    this.upstream = context.upstream;
  }
}

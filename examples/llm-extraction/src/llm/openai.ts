/**
 * An OpenAI-compatible chat-completions provider (OpenAI, Azure OpenAI's v1 endpoint, vLLM,
 * Ollama, LiteLLM…), over plain fetch with a timeout. Every failure becomes an {@link LlmError}
 * with a stable code and a message that tells the operator what to check.
 */
import { estimateTokens, SYSTEM_PROMPTS, userPrompt } from './prompts.js';
import { LlmError, type LlmProvider, type LlmResult } from './types.js';

/** Options of {@link openAiProvider}. */
export interface OpenAiProviderOptions {
  apiKey: string;
  /** Up to and including the version, e.g. `https://api.openai.com/v1`. */
  baseUrl: string;
  model: string;
  /** Longest wait for the whole answer. @default 60000 */
  timeoutMs?: number;
  /** For tests. @default globalThis.fetch */
  fetch?: typeof fetch;
}

interface ChatCompletion {
  model?: string;
  choices?: { message?: { content?: string | null } }[];
  usage?: { prompt_tokens?: number; completion_tokens?: number };
}

/** The provider's own error text, shortened, for the logs. */
async function upstreamText(response: Response): Promise<string> {
  const text = await response.text().catch(() => '');
  try {
    const parsed = JSON.parse(text) as { error?: { message?: string } };
    if (typeof parsed.error?.message === 'string') return parsed.error.message.slice(0, 300);
  } catch {
    // Not JSON: the raw text will do.
  }
  return text.slice(0, 300);
}

function statusError(status: number, upstream: string, baseUrl: string, model: string): LlmError {
  const context = { upstreamStatus: status, upstream };
  if (status === 401 || status === 403)
    return new LlmError(
      'llm_rejected',
      `The model API refused the credentials (HTTP ${status}); check OPENAI_API_KEY.`,
      context,
    );
  if (status === 404)
    return new LlmError(
      'llm_rejected',
      `The model API answered 404; check OPENAI_BASE_URL (${baseUrl}) and OPENAI_MODEL (${model}).`,
      context,
    );
  if (status === 429)
    return new LlmError(
      'llm_rate_limited',
      'The model API is rate limiting or out of quota (HTTP 429); retry later.',
      context,
    );
  if (status >= 500)
    return new LlmError('llm_upstream_error', `The model API failed (HTTP ${status}); retry later.`, context);
  return new LlmError('llm_rejected', `The model API rejected the request (HTTP ${status}).`, context);
}

/**
 * A provider for any server that speaks OpenAI's `POST /chat/completions` with JSON mode.
 *
 * @example
 * const llm = openAiProvider({ apiKey: process.env.OPENAI_API_KEY!, baseUrl: 'https://api.openai.com/v1', model: 'gpt-4o-mini' });
 */
export function openAiProvider(options: OpenAiProviderOptions): LlmProvider {
  const { apiKey, model } = options;
  const baseUrl = options.baseUrl.replace(/\/+$/, '');
  const timeoutMs = options.timeoutMs ?? 60_000;
  const doFetch = options.fetch ?? globalThis.fetch;

  return {
    name: 'openai',
    model,
    async complete(input): Promise<LlmResult> {
      const user = userPrompt(input);
      const request = {
        model,
        temperature: 0,
        response_format: { type: 'json_object' },
        messages: [
          { role: 'system', content: SYSTEM_PROMPTS[input.task] },
          { role: 'user', content: user },
        ],
      };

      let response: Response;
      let body: string;
      try {
        // The timeout covers reading the body too: a server that sends headers and stalls is a timeout.
        const signal = AbortSignal.timeout(timeoutMs);
        response = await doFetch(`${baseUrl}/chat/completions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${apiKey}` },
          body: JSON.stringify(request),
          signal,
        });
        if (!response.ok) throw statusError(response.status, await upstreamText(response), baseUrl, model);
        body = await response.text();
      } catch (error) {
        if (error instanceof LlmError) throw error;
        const name = (error as Error | undefined)?.name;
        if (name === 'TimeoutError' || name === 'AbortError') {
          throw new LlmError('llm_timeout', `The model API did not answer within ${timeoutMs} ms (LLM_TIMEOUT_MS).`, {
            cause: error,
          });
        }
        const cause = (error as { cause?: { code?: string; message?: string } } | undefined)?.cause;
        const why = cause?.code ?? cause?.message ?? (error as Error | undefined)?.message ?? String(error);
        throw new LlmError(
          'llm_unreachable',
          `Could not reach the model API at ${baseUrl} (${why}); check OPENAI_BASE_URL.`,
          { cause: error },
        );
      }

      let completion: ChatCompletion;
      let output: unknown;
      try {
        completion = JSON.parse(body) as ChatCompletion;
        const content = completion.choices?.[0]?.message?.content;
        if (typeof content !== 'string') throw new Error('no choices[0].message.content');
        output = JSON.parse(content);
      } catch (error) {
        throw new LlmError('llm_bad_output', 'The model answered, but not with the JSON object it was asked for.', {
          cause: error,
          upstream: body.slice(0, 300),
        });
      }
      if (typeof output !== 'object' || output === null || Array.isArray(output)) {
        throw new LlmError('llm_bad_output', 'The model answered, but not with the JSON object it was asked for.', {
          upstream: body.slice(0, 300),
        });
      }

      const usage = {
        promptTokens: completion.usage?.prompt_tokens ?? estimateTokens(SYSTEM_PROMPTS[input.task] + user),
        completionTokens: completion.usage?.completion_tokens ?? estimateTokens(JSON.stringify(output)),
      };
      return { output: output as Record<string, unknown>, model: completion.model ?? model, usage };
    },
  };
}

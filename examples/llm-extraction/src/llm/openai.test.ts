import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openAiProvider } from './openai.js';
import { LlmError, type LlmInput } from './types.js';

const input: LlmInput = {
  task: 'extract',
  transcript: 'Alice: hello',
  meeting: { meeting_id: 'm-1', customer_id: 'c-1', meet_date: '2024-05-01' },
  customer: undefined,
};

/** A local stand-in for an OpenAI-compatible server; `reply` decides each answer. */
let reply: (req: IncomingMessage, body: string, res: ServerResponse) => void;
let server: Server;
let baseUrl: string;

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => reply(req, body, res));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}

async function failure(promise: Promise<unknown>): Promise<LlmError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(LlmError);
  return error as LlmError;
}

describe('openAiProvider', () => {
  it('posts a JSON-mode chat completion and returns the parsed object with the reported usage', async () => {
    let seen: { url?: string; auth?: string; body?: Record<string, unknown> } = {};
    reply = (req, body, res) => {
      seen = { url: req.url, auth: req.headers.authorization, body: JSON.parse(body) as Record<string, unknown> };
      json(res, 200, {
        model: 'gpt-4o-mini-2024-07-18',
        choices: [{ message: { content: '{"summary":"hi","participants":["Alice"]}' } }],
        usage: { prompt_tokens: 120, completion_tokens: 30 },
      });
    };
    const llm = openAiProvider({ apiKey: 'sk-test', baseUrl: `${baseUrl}/`, model: 'gpt-4o-mini' });
    const result = await llm.complete(input);

    expect(result).toEqual({
      output: { summary: 'hi', participants: ['Alice'] },
      model: 'gpt-4o-mini-2024-07-18',
      usage: { promptTokens: 120, completionTokens: 30 },
    });
    expect(seen.url).toBe('/v1/chat/completions');
    expect(seen.auth).toBe('Bearer sk-test');
    expect(seen.body).toMatchObject({ model: 'gpt-4o-mini', temperature: 0, response_format: { type: 'json_object' } });
    expect(JSON.stringify(seen.body)).toContain('Alice: hello');
  });

  it('tells a refused key from a rate limit from a server error, keeping the provider text out of the message', async () => {
    const llm = openAiProvider({ apiKey: 'sk-bad', baseUrl, model: 'm' });
    reply = (_req, _body, res) => json(res, 401, { error: { message: 'Incorrect API key provided: sk-bad***' } });
    const refused = await failure(llm.complete(input));
    expect(refused).toMatchObject({
      code: 'llm_rejected',
      upstreamStatus: 401,
      upstream: 'Incorrect API key provided: sk-bad***',
    });
    expect(refused.message).toBe('The model API refused the credentials (HTTP 401); check OPENAI_API_KEY.');

    reply = (_req, _body, res) => json(res, 429, { error: { message: 'quota' } });
    expect(await failure(llm.complete(input))).toMatchObject({ code: 'llm_rate_limited', upstreamStatus: 429 });
    reply = (_req, _body, res) => json(res, 503, { error: { message: 'overloaded' } });
    expect(await failure(llm.complete(input))).toMatchObject({ code: 'llm_upstream_error', upstreamStatus: 503 });
  });

  it('reports an answer that is not the JSON object asked for', async () => {
    const llm = openAiProvider({ apiKey: 'k', baseUrl, model: 'm' });
    reply = (_req, _body, res) => json(res, 200, { choices: [{ message: { content: 'Sure! Here is the summary…' } }] });
    expect(await failure(llm.complete(input))).toMatchObject({ code: 'llm_bad_output' });
    reply = (_req, _body, res) => json(res, 200, { choices: [{ message: { content: '[1,2]' } }] });
    expect(await failure(llm.complete(input))).toMatchObject({ code: 'llm_bad_output' });
  });

  it('gives up after timeoutMs when the server stalls', async () => {
    reply = () => {
      // Never answers.
    };
    const llm = openAiProvider({ apiKey: 'k', baseUrl, model: 'm', timeoutMs: 50 });
    const error = await failure(llm.complete(input));
    expect(error.code).toBe('llm_timeout');
    expect(error.message).toBe('The model API did not answer within 50 ms (LLM_TIMEOUT_MS).');
  });

  it('names the base URL when nothing listens there', async () => {
    // A port that was free a moment ago: nothing listens on it.
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const { port } = probe.address() as AddressInfo;
    await new Promise((resolve) => probe.close(resolve));
    const llm = openAiProvider({ apiKey: 'k', baseUrl: `http://127.0.0.1:${port}/v1`, model: 'm' });
    const error = await failure(llm.complete(input));
    expect(error.code).toBe('llm_unreachable');
    expect(error.message).toBe(
      `Could not reach the model API at http://127.0.0.1:${port}/v1 (ECONNREFUSED); check OPENAI_BASE_URL.`,
    );
  });
});

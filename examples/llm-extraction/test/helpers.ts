/**
 * Test doubles that count and gate from the outside, so tests assert what happened instead of
 * sleeping and hoping: a model that counts its calls and can be held, a store wrapper that
 * reports which requests are waiting, and a logger that keeps its lines.
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import type { IdempotencyStore } from '@idem/core';
import { pino } from 'pino';
import type { Express } from 'express';
import { LlmError, type LlmInput, type LlmProvider, type LlmResult } from '../src/llm/index.js';
import { extractFacts, analyzeConversation } from '../src/llm/builtin.js';
import type { Logger } from '../src/logger.js';
import { currentContext } from '../src/request-context.js';

/** A model that counts calls, can be held mid-call, and fails when told to. */
export interface FakeLlm extends LlmProvider {
  readonly calls: number;
  readonly inputs: LlmInput[];
  /** Calls started from now on wait until the returned function is called. */
  hold(): () => void;
  /** The next `n` calls throw an LlmError. */
  failNext(n?: number): void;
}

export function fakeLlm(): FakeLlm {
  const inputs: LlmInput[] = [];
  let gate: Promise<void> | undefined;
  let failures = 0;
  return {
    name: 'fake',
    model: 'fake-1',
    get calls() {
      return inputs.length;
    },
    inputs,
    hold() {
      let release!: () => void;
      gate = new Promise((resolve) => (release = resolve));
      return () => {
        gate = undefined;
        release();
      };
    },
    failNext(n = 1) {
      failures = n;
    },
    async complete(input): Promise<LlmResult> {
      inputs.push(input);
      if (gate !== undefined) await gate;
      if (failures > 0) {
        failures--;
        throw new LlmError('llm_upstream_error', 'The model API failed (HTTP 500); retry later.', {
          upstreamStatus: 500,
          upstream: 'boom',
        });
      }
      const output = input.task === 'extract' ? extractFacts(input) : analyzeConversation(input);
      return { output, model: 'fake-1', usage: { promptTokens: 1000, completionTokens: 200 } };
    },
  };
}

/** Tells which requests (by X-Request-ID) are waiting for an in-flight key, on any store it wraps. */
export interface WaitTracker {
  /** `inner`, reporting its waiters to this tracker. */
  wrap(inner: IdempotencyStore): IdempotencyStore;
  /** Resolves once `n` distinct requests have started waiting since the last `reset()`; rejects after `timeoutMs`. */
  waiters(n: number, timeoutMs?: number): Promise<void>;
  reset(): void;
}

export function waitTracker(): WaitTracker {
  const waiting = new Set<string>();
  const listeners = new Set<() => void>();
  return {
    wrap(inner) {
      return {
        name: inner.name,
        get: (key) => inner.get(key),
        claim: (key, options) => inner.claim(key, options),
        extend: (lease, ttl) => inner.extend(lease, ttl),
        complete: (lease, response, options) => inner.complete(lease, response, options),
        release: (lease) => inner.release(lease),
        delete: (key) => inner.delete(key),
        waitFor(key, timeoutMs) {
          // The engine waits inside the request's context, so the request ID says who waits.
          waiting.add(currentContext()?.requestId ?? 'unknown');
          for (const listener of listeners) listener();
          return inner.waitFor(key, timeoutMs);
        },
      };
    },
    reset: () => waiting.clear(),
    waiters(n, timeoutMs = 5_000) {
      return new Promise((resolve, reject) => {
        // Only bounds a failure: when the code under test is right, this resolves at once.
        const timer = setTimeout(() => {
          listeners.delete(check);
          reject(
            new Error(`only ${waiting.size} of ${n} requests waited for the in-flight key within ${timeoutMs} ms`),
          );
        }, timeoutMs);
        function check(): void {
          if (waiting.size < n) return;
          listeners.delete(check);
          clearTimeout(timer);
          resolve();
        }
        listeners.add(check);
        check();
      });
    },
  };
}

/** A logger whose JSON lines are kept in `lines`. */
export function memoryLogger(level = 'debug'): { logger: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n'))
        if (line !== '') lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { logger: pino({ level }, stream), lines };
}

/** Listens on a free port; supertest then reuses this one server for every request. */
export async function listen(app: Express): Promise<{ server: Server; url: string }> {
  const server = app.listen(0, '127.0.0.1');
  await new Promise<void>((resolve, reject) => server.once('listening', resolve).once('error', reject));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

export function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

/** A valid request body for `meetingId`. */
export function meeting(
  meetingId: string,
  overrides: { transcript?: string; customer_id?: string; meet_date?: string } = {},
): Record<string, unknown> {
  return {
    transcript:
      overrides.transcript ??
      'Alice: We agreed to ship on Monday.\nBob: I will send the release notes by Friday. I am worried about the delay?',
    metadata: {
      meeting_id: meetingId,
      customer_id: overrides.customer_id ?? 'cust-1',
      meet_date: overrides.meet_date ?? '2024-05-01',
    },
  };
}

/** Sums the samples of `name` in Prometheus text whose labels contain every `labels` pair. */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number {
  let total = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`)))
      total += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return total;
}

/**
 * Property-based tests (fast-check): key parsing, fingerprint canonicalisation, and byte-exact
 * replay of arbitrary responses through both adapters.
 */
import { randomUUID } from 'node:crypto';
import express from 'express';
import Koa from 'koa';
import fc from 'fast-check';
import { IdempotencyError, defaultFingerprint, parseKeyHeader, type NeutralRequest } from '@idem/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expressAdapter } from '../apps/express-app.js';
import { koaAdapter } from '../apps/koa-app.js';
import type { ScenarioApp } from '../apps/scenario.js';
import { rawPost } from './scenarios.js';

const printable = fc.string({
  unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)),
  minLength: 1,
  maxLength: 255,
});
const sfString = (s: string): string => `"${s.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
const rejected = (fn: () => unknown): boolean => {
  try {
    fn();
    return false;
  } catch (error) {
    return error instanceof IdempotencyError && error.code === 'key_invalid' && error.status === 400;
  }
};

describe('key parsing', () => {
  it('every printable key of 1–255 characters round-trips through the sf-string form', () => {
    fc.assert(fc.property(printable, (key) => parseKeyHeader([sfString(key)], 'Idempotency-Key') === key));
  });

  it('a bare token is the same key as its sf-string', () => {
    const token = printable.filter((s) => s.trim() === s && !/[",]/.test(s));
    fc.assert(fc.property(token, (key) => parseKeyHeader([key], 'K') === parseKeyHeader([sfString(key)], 'K')));
  });

  it('any value with a character outside printable ASCII is rejected with key_invalid', () => {
    const bad = fc
      .tuple(
        fc.string({ maxLength: 20 }),
        fc.integer({ min: 0, max: 0xffff }).filter((c) => c < 0x20 || c > 0x7e),
        fc.string({ maxLength: 20 }),
      )
      .map(([a, c, b]) => `${a.replace(/[^\x21-\x7e]/g, '')}${String.fromCharCode(c)}${b.replace(/[^\x21-\x7e]/g, '')}`)
      .filter((s) => s.trim() !== '' && s.trim() === s);
    fc.assert(
      fc.property(
        bad,
        (value) => rejected(() => parseKeyHeader([value], 'K')) && rejected(() => parseKeyHeader([`"${value}"`], 'K')),
      ),
    );
  });

  it('keys longer than 255 characters are rejected in both forms', () => {
    const long = fc.string({ unit: fc.constantFrom('a', 'b', '-', '_'), minLength: 256, maxLength: 600 });
    fc.assert(
      fc.property(
        long,
        (key) => rejected(() => parseKeyHeader([key], 'K')) && rejected(() => parseKeyHeader([sfString(key)], 'K')),
      ),
    );
  });
});

describe('fingerprint canonicalisation', () => {
  const request = (body: unknown): NeutralRequest => ({
    method: 'POST',
    path: '/x',
    search: '',
    headers: {},
    headerValues: () => [],
    body,
    bodyParsed: true,
    query: {},
    params: {},
    native: null,
  });
  // Rebuilds an object with its keys in reverse order at every level.
  const reorder = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(reorder);
    if (value === null || typeof value !== 'object') return value;
    return Object.fromEntries(
      Object.entries(value)
        .reverse()
        .map(([k, v]) => [k, reorder(v)]),
    );
  };
  const json = fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.parse(JSON.stringify(v)) as unknown);

  it('key order never changes the fingerprint', () => {
    fc.assert(
      fc.property(json, (body) => defaultFingerprint(request(body)) === defaultFingerprint(request(reorder(body)))),
    );
  });

  it('any change of a value changes it', () => {
    const object = fc
      .dictionary(fc.string({ minLength: 1, maxLength: 8 }), fc.jsonValue({ maxDepth: 2 }), { minKeys: 1 })
      .map((v) => JSON.parse(JSON.stringify(v)) as Record<string, unknown>);
    fc.assert(
      fc.property(object, fc.nat(), fc.jsonValue({ maxDepth: 1 }), (body, pick, replacement) => {
        const keys = Object.keys(body);
        const key = keys[pick % keys.length] as string;
        const changed = { ...body, [key]: JSON.parse(JSON.stringify(replacement ?? null)) };
        fc.pre(JSON.stringify(changed[key]) !== JSON.stringify(body[key]));
        return defaultFingerprint(request(body)) !== defaultFingerprint(request(changed));
      }),
    );
  });
});

describe.each([
  ['Express 5', () => expressAdapter('Express 5', express as never)],
  ['Koa 3', () => koaAdapter('Koa 3', Koa)],
])('byte-exact replay through %s', (_name, adapter) => {
  let app: ScenarioApp;
  beforeAll(async () => {
    app = await adapter().start({ idempotency: { maxBodyBytes: 1 << 20 } });
  });
  afterAll(() => app.close());

  const headerName = fc
    .string({ unit: fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz0123456789-'), minLength: 1, maxLength: 12 })
    .map((s) => `x-p-${s}`);
  const headerValue = fc.string({
    unit: fc.integer({ min: 0x21, max: 0x7e }).map((c) => String.fromCharCode(c)),
    minLength: 1,
    maxLength: 40,
  });
  const spec = fc.record({
    status: fc.constantFrom(200, 201, 202, 203, 206, 400, 401, 402, 403, 404, 410, 418, 422),
    headers: fc.dictionary(headerName, headerValue, { maxKeys: 5 }),
    body: fc.uint8Array({ maxLength: 4096 }),
    type: fc.constantFrom('application/octet-stream', 'application/json', 'text/plain; charset=utf-8', 'image/png'),
  });

  it('replays any cacheable status, custom headers and body bytes exactly', async () => {
    await fc.assert(
      fc.asyncProperty(spec, async ({ status, headers, body, type }) => {
        const key = randomUUID();
        const payload = JSON.stringify({
          status,
          headers: { ...headers, 'content-type': type },
          base64: Buffer.from(body).toString('base64'),
        });
        const send = () =>
          fetch(`${app.url}/respond`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', 'idempotency-key': key },
            body: payload,
          });
        const first = await send();
        const firstBody = Buffer.from(await first.arrayBuffer());
        const replay = await send();
        const replayBody = Buffer.from(await replay.arrayBuffer());
        expect(first.status).toBe(status);
        expect(Buffer.compare(firstBody, Buffer.from(body))).toBe(0);
        expect(replay.status).toBe(status);
        expect(Buffer.compare(replayBody, firstBody)).toBe(0);
        expect(replay.headers.get('idempotent-replayed')).toBe('true');
        expect(replay.headers.get('content-type')).toBe(first.headers.get('content-type'));
        for (const name of Object.keys(headers)) expect(replay.headers.get(name)).toBe(first.headers.get(name));
      }),
      { numRuns: 60 },
    );
  });

  it('answers every malformed key 400 and executes nothing', async () => {
    const before = app.probe.count('echo');
    const malformed = fc.oneof(
      fc.string({ unit: fc.constantFrom('a', 'b', '1'), minLength: 256, maxLength: 400 }),
      fc.tuple(printable, printable).map(([a, b]) => `${sfString(a)}, ${sfString(b)}`),
      fc
        .tuple(
          fc.string({ unit: fc.constantFrom('a', 'b'), minLength: 1, maxLength: 10 }),
          fc.integer({ min: 0x80, max: 0xff }),
        )
        .map(([a, c]) => `${a}${String.fromCharCode(c)}`),
      fc
        .string({ unit: fc.constantFrom('a', 'b', '\t'), minLength: 3, maxLength: 10 })
        .filter((s) => s.trim().includes('\t')),
    );
    await fc.assert(
      fc.asyncProperty(malformed, async (value) => {
        const res = await rawPost(app, '/echo', [['idempotency-key', value]]);
        expect(res.status).toBe(400);
        expect(JSON.parse(res.body).code).toBe('key_invalid');
      }),
      { numRuns: 60 },
    );
    expect(app.probe.count('echo')).toBe(before);
  });
});

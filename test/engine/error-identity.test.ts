/**
 * Error identity between installed copies of core: an app can hold two (a store built against
 * one version and an adapter against another, or the ESM and CJS builds of one). `instanceof`
 * must still hold between them, or `error instanceof StoreError` in a storeError listener misses.
 */
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import * as core from '@idem/core';
import { RedisTimeoutError } from '@idem/redis';
import { afterAll, describe, expect, it } from 'vitest';

const require = createRequire(import.meta.url);
type Core = typeof core;

// Inside the repository (git-ignored), so the copy's own dependencies resolve as hoisted ones would.
const copyRoot = mkdtempSync(join(fileURLToPath(new URL('..', import.meta.url)), '.consumer-core-copy-'));
afterAll(() => rmSync(copyRoot, { recursive: true, force: true }));

/** Copies an installed package (its files as npm would install them) into the copy's node_modules. */
function install(name: string, files: string[]): string {
  const from = dirname(require.resolve(`${name}/package.json`));
  const to = join(copyRoot, 'node_modules', name);
  for (const file of files) cpSync(join(from, file), join(to, file), { recursive: true });
  return to;
}

/** A second installed copy of @idem/core, in a folder of its own. */
async function secondCopy(): Promise<Core> {
  const target = install('@idem/core', ['package.json', 'dist']);
  return (await import(pathToFileURL(join(target, 'dist', 'index.js')).href)) as Core;
}

describe('error identity across copies of @idem/core', () => {
  it('holds between the ESM and the CommonJS build', () => {
    const cjs = require('@idem/core') as Core;
    expect(cjs.StoreError).not.toBe(core.StoreError);
    expect(new cjs.StoreError('get', new Error('x'))).toBeInstanceOf(core.StoreError);
    expect(new core.IdempotencyConfigError('ttl', 'bad')).toBeInstanceOf(cjs.ConfigError);
    expect(new cjs.IdempotencyError('in_flight', 'busy')).toBeInstanceOf(core.IdempotencyError);
  });

  it('holds with a second installed copy, for subclasses of other packages too', async () => {
    const other = await secondCopy();
    expect(other.StoreError).not.toBe(core.StoreError);
    const timeout = new RedisTimeoutError('get', 5);
    expect(timeout).toBeInstanceOf(other.StoreError);
    expect(timeout).toBeInstanceOf(core.StoreError);
    expect(new other.StoreError('get', new Error('x'))).toBeInstanceOf(core.StoreError);
  });

  it('the CommonJS entry points share one copy of every class', () => {
    const index = require('@idem/core') as Core;
    const adapter = require('@idem/core/adapter') as Core;
    expect(adapter.StoreError).toBe(index.StoreError);
    expect(adapter.IdempotencyEvents).toBe(index.IdempotencyEvents);
    expect(adapter.memoryStore).toBe(index.memoryStore);
  });

  it('an unbranded subclass keeps the ordinary instanceof', () => {
    class VendorError extends core.StoreError {}
    class OtherVendorError extends core.StoreError {}
    expect(new VendorError('get', new Error('x'))).toBeInstanceOf(core.StoreError);
    expect(new core.StoreError('get', new Error('x'))).not.toBeInstanceOf(VendorError);
    expect(new OtherVendorError('get', new Error('x'))).not.toBeInstanceOf(VendorError);
  });

  it('does not make unrelated errors match', async () => {
    const other = await secondCopy();
    expect(new other.StoreError('get', new Error('x'))).not.toBeInstanceOf(core.IdempotencyError);
    expect(new core.StoreError('get', new Error('x'))).not.toBeInstanceOf(RedisTimeoutError);
    expect(new Error('plain')).not.toBeInstanceOf(core.StoreError);
    expect(Object.assign(new Error('look-alike'), { name: 'StoreError', operation: 'get' })).not.toBeInstanceOf(
      core.StoreError,
    );
  });
});

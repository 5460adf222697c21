/**
 * The option tables of the READMEs say what the code does: every entry of a package's `defaults`
 * object is in its README's table, with the same value. A default changed in code without its
 * documentation (or the other way round) fails here.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { defaults as adminDefaults } from '@idem/admin';
import { defaults as cacheDefaults } from '@idem/cache';
import { defaults as coreDefaults } from '@idem/core';
import { defaults as postgresDefaults, tierDefaults } from '@idem/postgres';
import { defaults as redisDefaults } from '@idem/redis';
import { describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '..', '..');

/** The `| \`name\` | default | …` rows of the first table after `heading`, as name → default cell. */
function optionTable(file: string, heading: string): Map<string, string> {
  const text = readFileSync(resolve(root, file), 'utf8');
  const start = text.indexOf(heading);
  if (start < 0) throw new Error(`${file} has no ${heading}`);
  const rows = new Map<string, string>();
  let seenTable = false;
  for (const line of text.slice(start + heading.length).split('\n')) {
    const cells = line.match(/^\|\s*`([^`]+)`\s*\|\s*([^|]*?)\s*\|/);
    if (cells) {
      seenTable = true;
      rows.set(cells[1] as string, cells[2] as string);
    } else if (seenTable && !line.startsWith('|')) {
      break;
    }
  }
  return rows;
}

/** How a default is written in a README cell: `'24h'`, `false`, `['POST', 'PATCH']`, `1048576`. */
function written(value: unknown): string {
  if (typeof value === 'string') return `'${value}'`;
  if (Array.isArray(value)) return `[${value.map(written).join(', ')}]`;
  if (value !== null && typeof value === 'object') {
    return `{ ${Object.entries(value)
      .map(([k, v]) => `${k}: ${written(v)}`)
      .join(', ')} }`;
  }
  return String(value);
}

/** Checks that every default appears in the table, its cell starting with the written value. */
function expectDocumented(file: string, heading: string, defaults: Record<string, unknown>, path = ''): void {
  const table = optionTable(file, heading);
  for (const [name, value] of Object.entries(defaults)) {
    const cell = table.get(`${path}${name}`);
    expect(cell, `${file}: option ${path}${name} is not in the table under ${heading}`).toBeDefined();
    // Numbers may be written with separators (`10_000`).
    const shownCell = typeof value === 'number' ? cell?.replaceAll('_', '') : cell;
    expect(shownCell, `${file}: default of ${path}${name}`).toMatch(new RegExp(`^\`${escape(written(value))}\``));
  }
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

describe('option tables match the defaults in code', () => {
  it.each([
    ['README.md', '## Options'],
    ['packages/core/README.md', '## Options'],
  ])('%s', (file, heading) => {
    expectDocumented(file, heading, coreDefaults);
  });

  it('packages/redis/README.md', () => {
    expectDocumented('packages/redis/README.md', '## Options', redisDefaults);
  });

  it('packages/postgres/README.md', () => {
    expectDocumented('packages/postgres/README.md', '## Options', postgresDefaults);
    expectDocumented('packages/postgres/README.md', '## Durable tier for @idem/cache', tierDefaults);
  });

  it('packages/admin/README.md', () => {
    expectDocumented('packages/admin/README.md', '## Options', adminDefaults);
  });

  it('packages/cache/README.md', () => {
    const { l1, ...rest } = cacheDefaults;
    expectDocumented('packages/cache/README.md', '## Options', rest);
    expectDocumented('packages/cache/README.md', '## Options', l1, 'l1.');
  });
});

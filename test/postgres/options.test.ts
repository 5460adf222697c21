/**
 * postgresStore's options are checked at creation, and the README's schema SQL is the very text
 * the store runs (so a team that migrates by hand creates what the store would).
 */
import { readFileSync } from 'node:fs';
import { IdempotencyConfigError } from '@idem/core';
import { durableSchemaSql, postgresStore, schemaSql } from '@idem/postgres';
import pg from 'pg';
import { describe, expect, it } from 'vitest';

const pool = new pg.Pool({ host: '127.0.0.1', port: 1 }); // never connected: creation is checked offline

describe('postgresStore options', () => {
  it('refuses an unknown option, naming it', () => {
    expect(() => postgresStore({ pool, tabel: 'x' } as never)).toThrow(IdempotencyConfigError);
    expect(() => postgresStore({ pool, tabel: 'x' } as never)).toThrow(/`tabel`/);
  });

  it.each(['', 'a.b.c', 'idem records', 'x"; DROP TABLE users; --', '1abc', 'a'.repeat(49), 42])(
    'refuses the table %j, naming the option',
    (table) => {
      expect(() => postgresStore({ pool, table } as never)).toThrow(/`table`/);
    },
  );

  it('accepts schema.table and quotes both parts', () => {
    expect(() => postgresStore({ pool, table: 'billing.Idem_Records' })).not.toThrow();
    expect(schemaSql('billing.Idem_Records')).toContain('CREATE TABLE IF NOT EXISTS "billing"."Idem_Records" (');
  });

  it('refuses a pool that is not a pg Pool, and bad durations', () => {
    expect(() => postgresStore({ pool: {} as never })).toThrow(/`pool`/);
    expect(() => postgresStore({ pool, queryTimeout: 'soon' })).toThrow(/`queryTimeout`/);
    expect(() => postgresStore({ pool, transactional: 'yes' as never })).toThrow(/`transactional`/);
  });

  it("the README's schema SQL is exactly what the store runs", () => {
    const readme = readFileSync(new URL('../../packages/postgres/README.md', import.meta.url), 'utf8');
    expect(readme).toContain('```sql\n' + schemaSql() + '\n```');
    expect(readme).toContain('```sql\n' + durableSchemaSql() + '\n```');
  });
});

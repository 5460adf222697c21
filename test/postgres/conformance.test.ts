/**
 * The store conformance suite, unchanged, on a real PostgreSQL in both modes: what every store
 * promises holds for lease mode and for transactional mode alike.
 */
import { randomUUID } from 'node:crypto';
import { storeConformance } from '@idem/core/conformance';
import { postgresStore } from '@idem/postgres';
import type pg from 'pg';
import { afterEach, beforeAll, describe, it } from 'vitest';
import { useDatabase } from './helpers.js';

const db = useDatabase();
let pool: pg.Pool;
beforeAll(() => {
  // Transactional mode keeps a pooled client per open lease; the suite holds up to ~45 at once.
  pool = db.pool({ max: 60 });
});

// A table per mode, so that the two never see each other's rows.
const table = `conf_${randomUUID().slice(0, 8)}`;
storeConformance({ describe, it, afterEach }, 'postgres (lease mode)', () =>
  postgresStore({ pool, table: `${table}_lease`, pollInterval: 50 }),
);
storeConformance({ describe, it, afterEach }, 'postgres (transactional mode)', () =>
  postgresStore({ pool, table: `${table}_tx`, transactional: true, pollInterval: 50 }),
);

/** The admin API's shared suite on the PostgreSQL store (a real server), in lease and transactional mode. */
import { randomUUID } from 'node:crypto';
import { postgresStore } from '@idem/postgres';
import type pg from 'pg';
import { beforeAll } from 'vitest';
import { useDatabase } from '../postgres/helpers.js';
import { adminSuite } from './suite.js';

const db = useDatabase();
let pool: pg.Pool;
beforeAll(() => {
  pool = db.pool({ max: 30 });
});

const table = `admin_${randomUUID().slice(0, 8)}`;
adminSuite('PostgreSQL (lease mode)', {
  createStore: () => postgresStore({ pool, table: `${table}_lease`, pollInterval: 50 }),
});
adminSuite('PostgreSQL (transactional mode)', {
  createStore: () => postgresStore({ pool, table: `${table}_tx`, transactional: true, pollInterval: 50 }),
  leaseWithoutEnd: true,
});

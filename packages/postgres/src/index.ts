export { postgresStore } from './postgres-store.js';
export type { PostgresStore } from './postgres-store.js';
export { defaults } from './options.js';
export type { PostgresStoreOptions } from './options.js';
export { transactionOf } from './transaction.js';
export type { TransactionClient } from './transaction.js';
export { schemaSql } from './schema.js';
export { PostgresTimeoutError, TransactionControlError, TransactionFailedError } from './errors.js';

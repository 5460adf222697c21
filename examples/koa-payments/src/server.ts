/**
 * Entry point: reads the environment, opens the storage (PostgreSQL with `DATABASE_URL`, memory
 * otherwise), listens, and stops cleanly on SIGINT/SIGTERM, the PostgreSQL pool included.
 */
import pino from 'pino';
import { createApp } from './app.js';
import { ConfigError, loadConfig } from './config.js';
import { openStorage, StorageError, type Storage } from './storage.js';

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    console.error(`koa-payments: ${error.message}`);
    process.exit(1);
  }
  const logger = pino({ level: config.logLevel });
  let storage: Storage;
  try {
    storage = await openStorage(config, logger);
  } catch (error) {
    if (!(error instanceof StorageError)) throw error;
    logger.fatal({ err: error.cause }, `${error.message}. Start PostgreSQL or fix DATABASE_URL, then restart.`);
    logger.flush(() => process.exit(1));
    return;
  }
  const { store, ledger } = storage;

  const server = createApp({ ledger, store, logger }).listen(config.port, () => {
    logger.info(`koa-payments listening on http://localhost:${config.port}`);
    logger.info(`storage: ${storage.description}`);
  });

  let stopping = false;
  async function stop(signal: string): Promise<void> {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down: finishing payments in flight');
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeIdleConnections();
    });
    await storage.close();
    logger.info('stopped');
    logger.flush(() => process.exit(0));
  }
  process.once('SIGINT', () => void stop('SIGINT'));
  process.once('SIGTERM', () => void stop('SIGTERM'));
}

main().catch((error: unknown) => {
  console.error('koa-payments failed to start:', error);
  process.exit(1);
});

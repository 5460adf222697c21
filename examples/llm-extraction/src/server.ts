/**
 * Entry point: reads the environment, connects the store (PostgreSQL, Redis or memory; memory too
 * when the chosen one is unreachable), listens, and says where, on which store, with which model.
 * Stops cleanly on SIGINT/SIGTERM, the PostgreSQL pool and the Redis connection included.
 */
import { createApp } from './app.js';
import { connectBackend } from './backend.js';
import { ConfigError, loadConfig } from './config.js';
import { describeLlm } from './llm/index.js';
import { createLogger } from './logger.js';

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    console.error(`llm-extraction: ${error.message}`);
    process.exit(1);
  }
  const logger = createLogger(config);
  // Flush before exiting: pino writes asynchronously, and the last lines matter most.
  const exit = (code: number): void => logger.flush(() => process.exit(code));
  const backend = await connectBackend(config, logger);
  const service = createApp(config, { backend, logger });

  const server = service.app.listen(config.port);
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
  }).catch(async (error: NodeJS.ErrnoException) => {
    const hint = error.code === 'EADDRINUSE' ? ` — port ${config.port} is taken; set PORT to another one` : '';
    logger.fatal({ err: error }, `cannot listen on port ${config.port}${hint}`);
    await service.close();
    exit(1);
  });
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : config.port;

  logger.info(
    { port, store: backend.kind, llm: service.llm.name, model: service.llm.model },
    `llm-extraction listening on http://localhost:${port}`,
  );
  logger.info(`store: ${backend.describe()}`);
  logger.info(`llm:   ${describeLlm(config.llm)}`);
  logger.info(
    config.adminToken === undefined
      ? 'admin: off (set ADMIN_TOKEN to 32+ characters to mount the admin API at /admin/idem)'
      : `admin: http://localhost:${port}/admin/idem (Authorization: Bearer $ADMIN_TOKEN)`,
  );
  logger.info(
    `results are replayed for ${config.resultTtlMs / 3_600_000} h (CACHE_TTL_HOURS); try it: npm run demo (in another terminal)`,
  );

  let stopping = false;
  async function stop(signal: string): Promise<void> {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down: finishing requests in flight');
    // Let a running model call finish and store its result rather than leave duplicates waiting.
    const drained = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    const forced = setTimeout(() => {
      logger.warn('requests still running after 30 s; closing their connections');
      server.closeAllConnections();
    }, 30_000);
    forced.unref();
    await drained;
    await service.close();
    logger.info('stopped');
    exit(0);
  }
  process.once('SIGINT', () => void stop('SIGINT'));
  process.once('SIGTERM', () => void stop('SIGTERM'));
}

main().catch((error: unknown) => {
  console.error('llm-extraction failed to start:', error);
  process.exit(1);
});

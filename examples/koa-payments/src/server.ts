import pino from 'pino';
import { createApp, fakeProcessor } from './app.js';

const port = Number(process.env.PORT ?? 3001);
const logger = pino({ level: process.env.LOG_LEVEL ?? 'info' });
const processor = fakeProcessor(Number(process.env.PROCESSOR_LATENCY_MS ?? 200));

createApp({ processor, logger }).listen(port, () => {
  logger.info(`koa-payments listening on http://localhost:${port} (memory store)`);
});

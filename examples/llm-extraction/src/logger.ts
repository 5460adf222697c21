/**
 * Logging: one pino logger for the process, a child per request (see request-context.ts).
 * Pretty and coloured on a terminal, one JSON object per line otherwise (for log shippers).
 */
import { pino, type Logger } from 'pino';
import pretty from 'pino-pretty';
import type { Config } from './config.js';

export type { Logger } from 'pino';

/** The process logger, formatted as `config.logFormat` says. */
export function createLogger(config: Pick<Config, 'logLevel' | 'logFormat'>): Logger {
  const options = { level: config.logLevel, base: { service: 'llm-extraction' } };
  if (config.logFormat === 'json') return pino(options);
  // A stream rather than a transport: no worker thread, and nothing is lost on a fast exit.
  return pino(
    options,
    pretty({ colorize: true, translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname,service', singleLine: true }),
  );
}

/** A logger that writes nothing, the default when the app is embedded (tests). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

/**
 * Structured logging. Log lines carry ids, hashes, codes and counts, never message content or patient data:
 * callers pass objects with ids only, and the serializers below drop the fields that could carry PHI if one slips in.
 */
import pino from 'pino';

export type Logger = pino.Logger;

export interface LoggerOptions {
  /** pino level: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent'. Default 'info'. */
  level?: string;
  name?: string;
}

/** Keys whose values may contain patient data; redacted wherever they appear in a log object. */
const PHI_KEYS = ['raw', 'text', 'body', 'payload', 'message.raw', 'resource', 'patient', 'req.headers.authorization'];

export function createLogger(options: LoggerOptions = {}): Logger {
  return pino({
    name: options.name ?? 'anchorline',
    level: options.level ?? 'info',
    redact: { paths: PHI_KEYS, censor: '[redacted]' },
    base: { pid: process.pid },
  });
}

/** A logger that writes nothing, for tools and tests that do not want output. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

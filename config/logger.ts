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
  /** Where log lines go. Default stdout. */
  destination?: pino.DestinationStream;
}

/** Keys whose values may contain patient data; redacted wherever they appear in a log object. */
const PHI_KEYS = ['raw', 'text', 'body', 'payload', 'message.raw', 'resource', 'patient', 'req.headers.authorization'];

export function createLogger(options: LoggerOptions = {}): Logger {
  const settings: pino.LoggerOptions = {
    name: options.name ?? 'anchorline',
    level: options.level ?? 'info',
    redact: { paths: PHI_KEYS, censor: '[redacted]' },
    base: { pid: process.pid },
  };
  return options.destination ? pino(settings, options.destination) : pino(settings);
}

/** A logger that writes nothing, for tools and tests that do not want output. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

/**
 * Log fields for a caught error without its message: database and parser messages can quote the values they choked
 * on (patient data), so only the error's class and code are logged (a catalogue code, a PostgreSQL SQLSTATE, a Node
 * error code).
 */
export function errorFields(error: unknown): { errorName: string; errorCode?: string } {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return { errorName: error.name, ...(typeof code === 'string' ? { errorCode: code } : {}) };
  }
  return { errorName: typeof error };
}

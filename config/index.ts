/** Configuration (one schema, validated before anything starts) and logging. */
export { configSchema, type AnchorlineConfig, type ConfigInput } from './schema.ts';
export { ConfigError, loadConfig, parseConfig, rawConfig } from './load.ts';
export { createLogger, silentLogger, type Logger, type LoggerOptions } from './logger.ts';

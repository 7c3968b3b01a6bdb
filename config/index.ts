/**
 * Configuration (one schema, validated before anything starts), logging, and mapping configs: the per-source-system
 * files that say how messages are mapped (mapping-config.ts). Keeping them current in a running engine (watching the
 * files, deploying versions to the database, rollback) is the workers' mapping registry (workers/mapping-registry.ts).
 */
export { configSchema, type AnchorlineConfig, type ConfigInput } from './schema.ts';
export { ConfigError, loadConfig, parseConfig, rawConfig } from './load.ts';
export { createLogger, silentLogger, type Logger, type LoggerOptions } from './logger.ts';
export {
  DEFAULT_MAPPING_CONFIG,
  MappingConfigError,
  MappingConfigSet,
  builtInDefault,
  combineMappingConfigs,
  formatProblem,
  loadMappingConfigs,
  mappingConfigVersion,
  parseMappingConfig,
  readMappingConfigFile,
  storedVersion,
  type MappingBase,
  type MappingConfigContent,
  type MappingConfigProblem,
  type MappingConfigVersion,
  type MappingMatch,
  type ParsedMappingConfig,
} from './mapping-config.ts';

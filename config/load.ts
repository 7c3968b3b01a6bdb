/**
 * Loading the configuration: an optional JSON file, then environment overrides, then validation against the schema.
 *
 * Environment overrides are of two kinds: the documented short names of the external interface (HTTP_PORT,
 * MLLP_PORT, DICOM_PORT, DATABASE_URL, REDIS_URL, ANCHORLINE_DATA_DIR, ANCHORLINE_API_KEY, LOG_LEVEL, and for chain anchoring
 * ANCHOR_RPC_URL, ANCHOR_CHAIN_ID, ANCHOR_CONTRACT_ADDRESS, ANCHOR_SUBMITTER_KEY_FILE; ANCHOR_RPC_URL also selects the
 * 'evm' anchor driver unless a driver is configured), and a generic form for any
 * option, `ANCHORLINE__SECTION__OPTION_NAME` (e.g. ANCHORLINE__MLLP__MAX_FRAME_BYTES=1048576). Values are parsed as
 * JSON when they parse, so numbers and booleans arrive typed.
 */
import { existsSync, readFileSync } from 'node:fs';
import { configSchema, type AnchorlineConfig } from './schema.ts';

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/** Short names of the external interface: option path, and whether the value is JSON-typed (ports) or a plain string. */
const SHORT_NAMES: Record<string, { keys: string[]; typed: boolean }> = {
  ANCHORLINE_DATA_DIR: { keys: ['dataDir'], typed: false },
  HTTP_PORT: { keys: ['http', 'port'], typed: true },
  MLLP_PORT: { keys: ['mllp', 'port'], typed: true },
  DICOM_PORT: { keys: ['dicom', 'port'], typed: true },
  DATABASE_URL: { keys: ['database', 'url'], typed: false },
  REDIS_URL: { keys: ['redis', 'url'], typed: false },
  ANCHORLINE_API_KEY: { keys: ['auth', 'apiKey'], typed: false },
  LOG_LEVEL: { keys: ['log', 'level'], typed: false },
  ANCHOR_RPC_URL: { keys: ['anchor', 'evm', 'rpcUrl'], typed: false },
  ANCHOR_CHAIN_ID: { keys: ['anchor', 'evm', 'chainId'], typed: true },
  ANCHOR_CONTRACT_ADDRESS: { keys: ['anchor', 'evm', 'contractAddress'], typed: false },
  ANCHOR_SUBMITTER_KEY_FILE: { keys: ['anchor', 'evm', 'submitterKeyFile'], typed: false },
};

function camel(snake: string): string {
  return snake.toLowerCase().replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

function envValue(raw: string): unknown {
  try {
    return JSON.parse(raw);
  } catch {
    return raw;
  }
}

function setPath(target: Record<string, unknown>, keys: string[], value: unknown): void {
  let node = target;
  for (const key of keys.slice(0, -1)) {
    const next = node[key];
    if (typeof next !== 'object' || next === null || Array.isArray(next)) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  node[keys[keys.length - 1]!] = value;
}

/** Builds the raw (unvalidated) config object from a file and the environment. */
export function rawConfig(options: { file?: string; env?: NodeJS.ProcessEnv; overrides?: Record<string, unknown> } = {}): Record<string, unknown> {
  const env = options.env ?? process.env;
  let raw: Record<string, unknown> = {};
  const file = options.file ?? env.ANCHORLINE_CONFIG;
  if (file) {
    if (!existsSync(file)) throw new ConfigError(`config file ${file} does not exist`);
    try {
      raw = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    } catch (error) {
      throw new ConfigError(`config file ${file} is not valid JSON: ${(error as Error).message}`);
    }
  }
  for (const [name, { keys, typed }] of Object.entries(SHORT_NAMES)) {
    const value = env[name];
    if (value !== undefined && value !== '') setPath(raw, keys, typed ? envValue(value) : value);
  }
  if (env.ANCHOR_RPC_URL) {
    const anchor = raw.anchor as Record<string, unknown>;
    anchor.driver ??= 'evm';
  }
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith('ANCHORLINE__') || value === undefined) continue;
    const keys = name.slice('ANCHORLINE__'.length).split('__').map(camel);
    setPath(raw, keys, envValue(value));
  }
  if (options.overrides) deepMerge(raw, options.overrides);
  return raw;
}

function deepMerge(target: Record<string, unknown>, source: Record<string, unknown>): void {
  for (const [key, value] of Object.entries(source)) {
    const existing = target[key];
    if (value && typeof value === 'object' && !Array.isArray(value) && existing && typeof existing === 'object' && !Array.isArray(existing)) {
      deepMerge(existing as Record<string, unknown>, value as Record<string, unknown>);
    } else {
      target[key] = value;
    }
  }
}

/** Validates a raw config; throws ConfigError naming every offending key. */
export function parseConfig(raw: unknown): AnchorlineConfig {
  const result = configSchema.safeParse(raw);
  if (result.success) return result.data;
  const lines = result.error.issues.map((issue) => {
    const base = issue.path.join('.');
    const keys = issue.code === 'unrecognized_keys' ? issue.keys.map((k) => (base ? `${base}.${k}` : k)).join(', ') : base || '(root)';
    const what = issue.code === 'unrecognized_keys' ? 'unknown key' : issue.message;
    return `  ${keys}: ${what}`;
  });
  throw new ConfigError(`invalid configuration:\n${lines.join('\n')}`);
}

export function loadConfig(options: { file?: string; env?: NodeJS.ProcessEnv; overrides?: Record<string, unknown> } = {}): AnchorlineConfig {
  return parseConfig(rawConfig(options));
}

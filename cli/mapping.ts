/**
 * `anchorline mapping ...`: see, test, compare, deploy and roll back mapping configs (config/mapping-config.ts).
 *
 *   mapping test --config <dir|file> [message files...]   dry run, no database: validate the configs and map each
 *       message with the config it selects; prints a JSON array with, per message, the FHIR resources (the drafts
 *       applied to nothing, as for a new patient) or a coded error. Exit 1 if a config is invalid or a message fails.
 *   mapping diff --from <version> --to <version> <corpus>  maps every message of the corpus (a file, or the *.hl7,
 *       *.er7 and *.txt files of a directory) with both versions and prints what changes in the FHIR output, per
 *       message, as JSON paths. A version is a directory or file of configs, or a version (SHA-256) stored in the
 *       engine's database. Exit 0 (2 if it cannot run).
 *   mapping list                     configs deployed in the engine's database: active version and history
 *   mapping rollback <name> --to <sha256>   make an earlier version of a config active in every engine and worker
 *
 * A file may hold one message or several, one after the other or separated by blank lines, with or without MLLP
 * framing bytes; each message is decoded by its MSH-18 as intake does.
 *
 * The engine's config (ANCHORLINE_CONFIG or --engine-config, and the environment, as for `start`) gives the base
 * that configs are resolved on, so versions printed here are the ones the engine records, and the database for
 * list, rollback and stored versions (DATABASE_URL, or the embedded server under the data dir, as `audit` finds it).
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type pg from 'pg';
import { decodeHl7Bytes, parseHl7 } from '../adapters/hl7v2/codec.ts';
import {
  ConfigError,
  DEFAULT_MAPPING_CONFIG,
  MappingConfigError,
  MappingConfigSet,
  builtInDefault,
  formatProblem,
  listMappingConfigs,
  loadConfig,
  loadMappingConfigs,
  rollbackMappingConfig,
  storedVersion,
  type AnchorlineConfig,
  type MappingBase,
  type MappingConfigContent,
  type MappingConfigVersion,
} from '../config/index.ts';
import { isAnchorlineError } from '../errors/index.ts';
import { mapHl7Message, mergeDraft, validateFhirResource, type PatientMerge } from '../mappers/index.ts';
import { mappingConfigs, openToolDatabase } from '../store/index.ts';

export const MAPPING_USAGE = `usage: anchorline mapping <command> [options]

commands:
  test --config <dir|file> [message files...]
        validate mapping configs and map each message with the config it selects (no database); prints the FHIR
        resources or a coded error per message as JSON; exit 1 if a config is invalid or any message fails
  diff --from <version> --to <version> <corpus dir|file> [--json]
        map every message of the corpus with both versions and print the FHIR differences; a version is a directory
        or file of configs, or a SHA-256 stored in the engine's database
  list [--json]
        the configs deployed in the engine's database: active version and deployment history
  rollback <name> --to <sha256>
        make an earlier version of a config active again in every engine and worker sharing the database

options:
  --engine-config <file>   the engine's JSON config (also ANCHORLINE_CONFIG), as for start: the base configs are
                           resolved on, and the database; environment variables override it
`;

/** Where the command writes; the process streams in the CLI. */
export interface MappingOutput {
  out: (text: string) => void;
  err: (text: string) => void;
}

const processOutput: MappingOutput = {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
};

/** A usage problem: reported with the usage, exit code 2. */
class UsageError extends Error {}

/** A problem that stops the command: reported as is, exit code 2. */
class CommandError extends Error {}

/** Runs `mapping` with the arguments after the command name; returns the exit code. */
export async function runMapping(argv: string[], output: MappingOutput = processOutput, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  try {
    const command = argv[0];
    const rest = argv.slice(1);
    switch (command) {
      case 'test':
        return await mappingTest(rest, output, env);
      case 'diff':
        return await mappingDiff(rest, output, env);
      case 'list':
        return await mappingList(rest, output, env);
      case 'rollback':
        return await mappingRollback(rest, output, env);
      case '--help':
      case 'help':
        output.out(MAPPING_USAGE);
        return 0;
      case undefined:
        throw new UsageError('name a command');
      default:
        throw new UsageError(`unknown command ${command}`);
    }
  } catch (error) {
    if (error instanceof UsageError) {
      output.err(`anchorline mapping: ${error.message}\n\n${MAPPING_USAGE}`);
      return 2;
    }
    if (error instanceof CommandError || error instanceof ConfigError) {
      output.err(`anchorline mapping: ${error.message}\n`);
      return 2;
    }
    if (isAnchorlineError(error)) {
      output.err(`anchorline mapping: ${error.code}: ${error.detail ?? ''}\n`);
      return 1;
    }
    output.err(`anchorline mapping: ${(error as Error).message ?? String(error)}\n`);
    return 2;
  }
}

type Options = Record<string, { type: 'string' | 'boolean' }>;

function parse(argv: string[], options: Options): { values: Record<string, string | boolean | undefined>; positionals: string[] } {
  try {
    const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, strict: true, options: { ...options, 'engine-config': { type: 'string' } } });
    return { values: values as Record<string, string | boolean | undefined>, positionals };
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

function engineConfig(values: Record<string, string | boolean | undefined>, env: NodeJS.ProcessEnv): AnchorlineConfig {
  const file = values['engine-config'];
  return loadConfig({ ...(typeof file === 'string' ? { file } : {}), env });
}

// ---------------------------------------------------------------------------------------------------------------
// Messages

export interface CorpusMessage {
  file: string;
  /** 1-based position in its file. */
  index: number;
  bytes: Buffer;
}

/**
 * The messages of a file's bytes. A message starts at an MSH segment, or at the first line after a blank line;
 * segments end at CR, LF or CRLF, and MLLP framing bytes (VT, FS) count as line ends. Bytes are cut, not decoded:
 * the charsets MSH-18 may name are ASCII-compatible, so CR and LF bytes are line ends in all of them.
 */
export function splitMessages(bytes: Buffer): Buffer[] {
  // latin1 maps each byte to one character and back, so slicing the string slices the bytes.
  const lines = bytes.toString('latin1').split(/\r\n|\r|\n|\x0b|\x1c/);
  const messages: string[][] = [];
  let current: string[] | undefined;
  let blank = true;
  for (const line of lines) {
    if (line.trim() === '') {
      blank = true;
      continue;
    }
    if (current === undefined || blank || line.startsWith('MSH')) {
      current = [];
      messages.push(current);
    }
    current.push(line);
    blank = false;
  }
  return messages.map((segments) => Buffer.from(segments.join('\r') + '\r', 'latin1'));
}

function readMessages(files: string[]): CorpusMessage[] {
  const messages: CorpusMessage[] = [];
  for (const file of files) {
    let bytes: Buffer;
    try {
      bytes = readFileSync(file);
    } catch (error) {
      throw new CommandError(`cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
    }
    splitMessages(bytes).forEach((message, i) => messages.push({ file, index: i + 1, bytes: message }));
  }
  return messages;
}

const CORPUS_EXTENSIONS = ['.hl7', '.er7', '.txt'];

function corpusFiles(target: string): string[] {
  let info;
  try {
    info = statSync(target);
  } catch (error) {
    throw new CommandError(`cannot read ${target} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
  if (!info.isDirectory()) return [target];
  return readdirSync(target, { withFileTypes: true })
    .filter((entry) => entry.isFile() && !entry.name.startsWith('.') && CORPUS_EXTENSIONS.includes(path.extname(entry.name).toLowerCase()))
    .map((entry) => path.join(target, entry.name))
    .sort();
}

/** What one message maps to under one set of configs. */
export interface MessageMapping {
  file: string;
  index: number;
  controlId?: string;
  messageType?: string;
  /** The config the message selected, and its version. */
  config?: string;
  sha256?: string;
  resources?: Array<Record<string, unknown>>;
  merges?: PatientMerge[];
  error?: { code: string; location?: string; detail?: string };
}

/**
 * Maps one message as the ingest worker would, without a database: decode by MSH-18, select the config, map, apply
 * the drafts to nothing (several drafts of one resource merge in order), and validate each resource as FHIR R4.
 */
export function mapMessage(message: CorpusMessage, configs: MappingConfigSet, defaultCharset: string): MessageMapping {
  const result: MessageMapping = { file: message.file, index: message.index };
  try {
    const decoded = decodeHl7Bytes(message.bytes, defaultCharset);
    result.controlId = decoded.header.controlId;
    result.messageType = [decoded.header.messageType, decoded.header.triggerEvent].filter((part) => part !== '').join('^');
    const config = configs.select(decoded.header);
    result.config = config.name;
    result.sha256 = config.sha256;
    const mapped = mapHl7Message(parseHl7(decoded.text), config.options);
    const resources = new Map<string, Record<string, unknown>>();
    for (const draft of mapped.drafts) {
      const key = `${draft.resourceType}/${draft.id}`;
      resources.set(key, mergeDraft(resources.get(key), draft));
    }
    for (const resource of resources.values()) {
      const problems = validateFhirResource(resource);
      if (problems.length > 0) {
        result.error = { code: 'ANCHORLINE_ERR_MAPPING_INVALID_FHIR', detail: `${String(resource.resourceType)}: ${problems.slice(0, 3).join('; ')}` };
        return result;
      }
    }
    result.resources = [...resources.values()];
    if (mapped.merges && mapped.merges.length > 0) result.merges = mapped.merges;
  } catch (error) {
    result.error = isAnchorlineError(error)
      ? { code: error.code, ...(error.location ? { location: error.location } : {}), ...(error.detail ? { detail: error.detail } : {}) }
      : { code: 'ANCHORLINE_ERR_INTERNAL', detail: (error as Error).message ?? String(error) };
  }
  return result;
}

// ---------------------------------------------------------------------------------------------------------------
// test

async function mappingTest(argv: string[], output: MappingOutput, env: NodeJS.ProcessEnv): Promise<number> {
  const { values, positionals } = parse(argv, { config: { type: 'string' } });
  if (typeof values.config !== 'string') throw new UsageError('mapping test needs --config <dir|file>');
  const engine = engineConfig(values, env);
  const { configs, problems } = loadMappingConfigs(values.config, engine.mapping);
  for (const problem of problems) output.err(`${formatProblem(problem)}\n`);
  const set = new MappingConfigSet(configs, builtInDefault(engine.mapping));
  for (const config of set.configs) output.err(`config ${config.name} ${config.sha256} (${config.source})\n`);

  const results = readMessages(positionals).map((message) => mapMessage(message, set, engine.mllp.defaultCharset));
  output.out(JSON.stringify(results, null, 2) + '\n');
  const failed = results.filter((result) => result.error !== undefined).length;
  output.err(`${problems.length > 0 ? `${problems.length} config ${problems.length === 1 ? 'problem' : 'problems'}; ` : ''}${results.length} ${results.length === 1 ? 'message' : 'messages'}: ${results.length - failed} mapped, ${failed} failed\n`);
  return problems.length > 0 || failed > 0 ? 1 : 0;
}

// ---------------------------------------------------------------------------------------------------------------
// diff

const SHA256 = /^[0-9a-f]{64}$/;

/** A version named on the command line: a directory or file of configs, or a SHA-256 stored in mapping_config. */
async function versionSet(spec: string, base: MappingBase, database: () => Promise<pg.Pool>): Promise<MappingConfigSet> {
  const fallback = builtInDefault(base);
  if (SHA256.test(spec) && !exists(spec)) {
    const content = (await mappingConfigs.mappingConfigsByDigest(await database(), [spec])).get(spec);
    if (content === undefined) throw new CommandError(`version ${spec} is not stored in mapping_config`);
    let version: MappingConfigVersion;
    try {
      // A stored config without a match is a default config (the built-in default stores no name).
      const stored = content as Partial<MappingConfigContent>;
      version = storedVersion(stored.name ?? DEFAULT_MAPPING_CONFIG, spec, content);
    } catch (error) {
      if (error instanceof MappingConfigError) throw new CommandError(error.message);
      throw error;
    }
    return new MappingConfigSet([version], fallback);
  }
  const { configs, problems } = loadMappingConfigs(spec, base);
  if (problems.length > 0) throw new CommandError(`${spec} holds invalid mapping configs:\n${problems.map((p) => `  ${formatProblem(p)}`).join('\n')}`);
  return new MappingConfigSet(configs, fallback);
}

function exists(file: string): boolean {
  try {
    statSync(file);
    return true;
  } catch {
    return false;
  }
}

/** One difference between two JSON values: a path and what was there before and after (absent = undefined). */
export interface JsonChange {
  path: string;
  from?: unknown;
  to?: unknown;
}

/** The differences between two JSON values, by path: objects key by key (in `from`'s order, then added keys), arrays by index. */
export function jsonDiff(from: unknown, to: unknown, at = ''): JsonChange[] {
  if (isPlainObject(from) && isPlainObject(to)) {
    const keys = [...Object.keys(from), ...Object.keys(to).filter((key) => !Object.hasOwn(from, key))];
    return keys.flatMap((key) => {
      const child = `${at}${/^[A-Za-z_$][A-Za-z0-9_$]*$/.test(key) ? (at === '' ? key : `.${key}`) : `[${JSON.stringify(key)}]`}`;
      if (!Object.hasOwn(to, key)) return [{ path: child, from: from[key] }];
      if (!Object.hasOwn(from, key)) return [{ path: child, to: to[key] }];
      return jsonDiff(from[key], to[key], child);
    });
  }
  if (Array.isArray(from) && Array.isArray(to)) {
    const changes: JsonChange[] = [];
    for (let i = 0; i < Math.max(from.length, to.length); i++) {
      if (i >= to.length) changes.push({ path: `${at}[${i}]`, from: from[i] });
      else if (i >= from.length) changes.push({ path: `${at}[${i}]`, to: to[i] });
      else changes.push(...jsonDiff(from[i], to[i], `${at}[${i}]`));
    }
    return changes;
  }
  return JSON.stringify(from) === JSON.stringify(to) ? [] : [{ path: at, from, to }];
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** A message's output keyed for comparison: resources by type and position (Patient[0]), so a changed id shows as one. */
function comparable(mapping: MessageMapping): Map<string, unknown> {
  const keyed = new Map<string, unknown>();
  const seen = new Map<string, number>();
  for (const resource of mapping.resources ?? []) {
    const type = String(resource.resourceType);
    const n = seen.get(type) ?? 0;
    seen.set(type, n + 1);
    keyed.set(`${type}[${n}]`, resource);
  }
  if (mapping.merges) keyed.set('merges', mapping.merges);
  return keyed;
}

export interface MessageDiff {
  file: string;
  index: number;
  controlId?: string;
  messageType?: string;
  status: 'changed' | 'unchanged' | 'failed';
  from: { config?: string; sha256?: string; error?: MessageMapping['error'] };
  to: { config?: string; sha256?: string; error?: MessageMapping['error'] };
  changes: JsonChange[];
}

export function diffMessage(from: MessageMapping, to: MessageMapping): MessageDiff {
  const side = (m: MessageMapping): MessageDiff['from'] => ({ ...(m.config ? { config: m.config } : {}), ...(m.sha256 ? { sha256: m.sha256 } : {}), ...(m.error ? { error: m.error } : {}) });
  const failed = from.error !== undefined || to.error !== undefined;
  const changes: JsonChange[] = [];
  if (!failed) {
    const before = comparable(from);
    const after = comparable(to);
    for (const key of new Set([...before.keys(), ...after.keys()])) {
      if (!after.has(key)) changes.push({ path: key, from: before.get(key) });
      else if (!before.has(key)) changes.push({ path: key, to: after.get(key) });
      else changes.push(...jsonDiff(before.get(key), after.get(key), key));
    }
  }
  return {
    file: from.file,
    index: from.index,
    ...(from.controlId !== undefined ? { controlId: from.controlId } : {}),
    ...(from.messageType !== undefined ? { messageType: from.messageType } : {}),
    status: failed ? 'failed' : changes.length > 0 ? 'changed' : 'unchanged',
    from: side(from),
    to: side(to),
    changes,
  };
}

function formatDiff(diff: MessageDiff): string {
  const label = `${diff.file} #${diff.index}${diff.controlId ? ` ${diff.controlId}` : ''}${diff.messageType ? ` ${diff.messageType}` : ''}`;
  const version = (side: MessageDiff['from']): string => (side.config ? `${side.config} ${side.sha256!.slice(0, 12)}` : '-');
  const lines = [`${label}: ${diff.status} (${version(diff.from)} -> ${version(diff.to)})`];
  if (diff.status === 'failed') {
    const outcome = (side: MessageDiff['from']): string =>
      side.error ? `${side.error.code}${side.error.location ? ` at ${side.error.location}` : ''}${side.error.detail ? `: ${side.error.detail}` : ''}` : 'mapped';
    lines.push(`  from: ${outcome(diff.from)}`, `  to:   ${outcome(diff.to)}`);
  }
  for (const change of diff.changes) {
    if (!('to' in change)) lines.push(`  - ${change.path}: ${JSON.stringify(change.from)}`);
    else if (!('from' in change)) lines.push(`  + ${change.path}: ${JSON.stringify(change.to)}`);
    else lines.push(`  ~ ${change.path}: ${JSON.stringify(change.from)} -> ${JSON.stringify(change.to)}`);
  }
  return lines.join('\n') + '\n';
}

async function mappingDiff(argv: string[], output: MappingOutput, env: NodeJS.ProcessEnv): Promise<number> {
  const { values, positionals } = parse(argv, { from: { type: 'string' }, to: { type: 'string' }, json: { type: 'boolean' } });
  if (typeof values.from !== 'string' || typeof values.to !== 'string' || positionals.length !== 1) {
    throw new UsageError('mapping diff needs --from <version> --to <version> and one corpus directory or file');
  }
  const engine = engineConfig(values, env);
  let database: { pool: pg.Pool; close(): Promise<void> } | undefined;
  const pool = async (): Promise<pg.Pool> => (database ??= await openToolDatabase(engine, 'anchorline-mapping')).pool;
  try {
    const fromSet = await versionSet(values.from, engine.mapping, pool);
    const toSet = await versionSet(values.to, engine.mapping, pool);
    const messages = readMessages(corpusFiles(positionals[0]!));
    const diffs = messages.map((message) => diffMessage(mapMessage(message, fromSet, engine.mllp.defaultCharset), mapMessage(message, toSet, engine.mllp.defaultCharset)));
    const summary = {
      messages: diffs.length,
      changed: diffs.filter((d) => d.status === 'changed').length,
      unchanged: diffs.filter((d) => d.status === 'unchanged').length,
      failed: diffs.filter((d) => d.status === 'failed').length,
    };
    if (values.json) {
      output.out(JSON.stringify({ from: values.from, to: values.to, summary, messages: diffs }, null, 2) + '\n');
    } else {
      for (const diff of diffs) output.out(formatDiff(diff));
      output.out(`${summary.messages} ${summary.messages === 1 ? 'message' : 'messages'}: ${summary.changed} changed, ${summary.unchanged} unchanged, ${summary.failed} failed\n`);
    }
    return 0;
  } finally {
    await database?.close();
  }
}

// ---------------------------------------------------------------------------------------------------------------
// list, rollback

async function mappingList(argv: string[], output: MappingOutput, env: NodeJS.ProcessEnv): Promise<number> {
  const { values, positionals } = parse(argv, { json: { type: 'boolean' } });
  if (positionals.length > 0) throw new UsageError(`unexpected argument ${positionals[0]}`);
  const database = await openToolDatabase(engineConfig(values, env), 'anchorline-mapping');
  try {
    const listings = await listMappingConfigs(database.pool);
    if (values.json) {
      output.out(JSON.stringify({ configs: listings }, null, 2) + '\n');
      return 0;
    }
    if (listings.length === 0) output.out('no mapping configs deployed yet (they are deployed when an engine or worker starts)\n');
    for (const listing of listings) {
      output.out(`${listing.name}: ${listing.active ? `active ${listing.active.sha256} (${listing.active.reason}, ${listing.active.deployedAt})` : 'no active version'}\n`);
      for (const row of listing.history) {
        output.out(`  ${row.deployedAt}  ${row.reason.padEnd(8)}  ${row.sha256}${row.source ? `  ${row.source}` : ''}${row.active ? '  [active]' : ''}\n`);
      }
    }
    return 0;
  } finally {
    await database.close();
  }
}

async function mappingRollback(argv: string[], output: MappingOutput, env: NodeJS.ProcessEnv): Promise<number> {
  const { values, positionals } = parse(argv, { to: { type: 'string' } });
  if (positionals.length !== 1 || typeof values.to !== 'string') throw new UsageError('mapping rollback needs a config name and --to <sha256>');
  const name = positionals[0]!;
  const database = await openToolDatabase(engineConfig(values, env), 'anchorline-mapping');
  try {
    const outcome = await rollbackMappingConfig(database.pool, name, values.to);
    if (!outcome.changed) {
      output.out(`mapping config ${name}: ${outcome.sha256} is already the active version\n`);
    } else {
      output.out(`mapping config ${name}: active version ${outcome.previousSha256 ?? '(none)'} -> ${outcome.sha256} (rollback); running engines and workers switch within mapping.pollIntervalMs (default 2 s)\n`);
    }
    return 0;
  } finally {
    await database.close();
  }
}


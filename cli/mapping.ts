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
import {
  ConfigError,
  DEFAULT_MAPPING_CONFIG,
  MappingConfigError,
  MappingConfigSet,
  builtInDefault,
  formatProblem,
  loadConfig,
  loadMappingConfigs,
  storedVersion,
  type AnchorlineConfig,
  type MappingBase,
  type MappingConfigContent,
  type MappingConfigVersion,
} from '../config/index.ts';
import { isAnchorlineError } from '../errors/index.ts';
// stringifyJson, not JSON.stringify: mapped resources carry decimals as LosslessNumbers (`5.40`, anchor/json.ts).
import { stringifyJson } from '../anchor/index.ts';
import { mappingConfigs, openToolDatabase } from '../store/index.ts';
import { diffMessage, listMappingConfigs, mapMessage, rollbackMappingConfig, splitMessages, type CorpusMessage, type MessageDiff } from '../workers/index.ts';

// The dry run itself lives in workers/mapping-dry-run.ts (the admin API runs it too); re-exported for callers of this module.
export { diffMessage, jsonDiff, mapMessage, splitMessages, type CorpusMessage, type JsonChange, type MessageDiff, type MessageMapping } from '../workers/index.ts';

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
  output.out(stringifyJson(results, 2) + '\n');
  const failed = results.filter((result) => result.error !== undefined).length;
  // Mapped with warnings: something of the message was not mapped as sent (mapping issues); it still maps.
  const warned = results.filter((result) => result.error === undefined && (result.issues ?? []).some((issue) => issue.severity !== 'information')).length;
  output.err(
    `${problems.length > 0 ? `${problems.length} config ${problems.length === 1 ? 'problem' : 'problems'}; ` : ''}${results.length} ${results.length === 1 ? 'message' : 'messages'}: ` +
      `${results.length - failed} mapped${warned > 0 ? ` (${warned} with warnings)` : ''}, ${failed} failed\n`,
  );
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
    if (!('to' in change)) lines.push(`  - ${change.path}: ${stringifyJson(change.from)}`);
    else if (!('from' in change)) lines.push(`  + ${change.path}: ${stringifyJson(change.to)}`);
    else lines.push(`  ~ ${change.path}: ${stringifyJson(change.from)} -> ${stringifyJson(change.to)}`);
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
      output.out(stringifyJson({ from: values.from, to: values.to, summary, messages: diffs }, 2) + '\n');
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


/**
 * `anchorline terminology ...`: ConceptMaps and code systems in the engine's database.
 *
 *   anchorline terminology conceptmap load <file> [--format json|yaml|csv] [--url U] [--version V] [--name N] [--inactive]
 *   anchorline terminology conceptmap activate <url> <version>
 *   anchorline terminology list [--json]
 *   anchorline terminology load <format> <path> [options]    release files of a code system (RELEASE_LOADERS)
 *
 * The database is the engine's, as for `audit`: DATABASE_URL when set, else the embedded server under the data dir
 * (the running engine's, or started here and stopped after). A loaded map is active at once; running engines pick it
 * up with their next ingest batch (the enricher compares terminology versions on every batch).
 * Exit codes: 0 done, 1 the file or the database refused it, 2 usage or configuration error.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type pg from 'pg';
import { ConfigError, loadConfig, type AnchorlineConfig } from '../config/index.ts';
import { isAnchorlineError } from '../errors/index.ts';
import { openToolDatabase, withTransaction } from '../store/index.ts';
import {
  activateConceptMap,
  formatOfFile,
  listCodeSystems,
  listConceptMaps,
  loadConceptMap,
  parseConceptMap,
  readTerminologyVersion,
  type ConceptMapFormat,
} from '../terminology/index.ts';
import { TERMINOLOGY_RELEASE_LOADERS } from '../terminology/loaders/index.ts';

/** The help text; `formats` names the release loaders available. */
export function terminologyUsage(formats: string[] = Object.keys(RELEASE_LOADERS)): string {
  return `usage: anchorline terminology <command> [options]

commands:
  conceptmap load <file> [--format json|yaml|csv] [--url <url>] [--version <v>] [--name <name>] [--inactive]
      load a ConceptMap (FHIR R4 JSON, or the YAML and CSV formats of the README) and make it the active version
      of its url (unless --inactive). CSV files need --url and --version.
  conceptmap activate <url> <version>
      make a stored version of a map the active one
  list [--json]
      the loaded code systems, the stored ConceptMaps and the terminology version
  load <format> <path> [options]
      load a code system release (formats: ${formats.length > 0 ? formats.join(', ') : 'none in this build'})

options:
  --config <file>   JSON config file (also ANCHORLINE_CONFIG), as for start; environment variables override it
  --help            show this help
`;
}

/**
 * Release-file loaders by format name (`anchorline terminology load <format> <path> ...`). Each gets the arguments
 * after the format and a migrated pool on the engine's database, and returns the exit code.
 */
export type ReleaseLoader = (argv: string[], pool: pg.Pool, output: TerminologyOutput) => Promise<number>;
export const RELEASE_LOADERS: Record<string, ReleaseLoader> = { ...TERMINOLOGY_RELEASE_LOADERS };

export interface TerminologyOutput {
  out: (text: string) => void;
  err: (text: string) => void;
}

const processOutput: TerminologyOutput = {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
};

class UsageError extends Error {}

function usage(): string {
  return terminologyUsage();
}

/** Runs `terminology` with the arguments after the command name; returns the exit code. */
export async function runTerminology(argv: string[], output: TerminologyOutput = processOutput, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === 'help') {
    output.out(usage());
    return command === undefined ? 2 : 0;
  }
  try {
    switch (command) {
      case 'conceptmap':
        return await runConceptMap(rest, output, env);
      case 'list':
        return await runList(rest, output, env);
      case 'load':
        return await runReleaseLoad(rest, output, env);
      default:
        throw new UsageError(`unknown command ${command}`);
    }
  } catch (error) {
    if (error instanceof UsageError) {
      output.err(`anchorline terminology: ${error.message}\n\n${usage()}`);
      return 2;
    }
    if (error instanceof ConfigError) {
      output.err(`anchorline terminology: ${error.message}\n`);
      return 2;
    }
    output.err(`anchorline terminology: ${isAnchorlineError(error) ? `${error.code}: ${error.detail ?? error.spec.title}${error.location ? ` (at ${error.location})` : ''}` : ((error as Error).message ?? String(error))}\n`);
    return 1;
  }
}

async function runConceptMap(argv: string[], output: TerminologyOutput, env: NodeJS.ProcessEnv): Promise<number> {
  const [subcommand, ...rest] = argv;
  if (subcommand === 'load') {
    const { values, positionals } = parse(rest, { format: { type: 'string' }, url: { type: 'string' }, version: { type: 'string' }, name: { type: 'string' }, inactive: { type: 'boolean' } });
    if (positionals.length !== 1) throw new UsageError('conceptmap load needs one file');
    const file = positionals[0]!;
    const format = (values.format as string | undefined) ?? formatOfFile(file);
    if (format !== 'json' && format !== 'yaml' && format !== 'csv') throw new UsageError(`give --format json, yaml or csv for ${path.basename(file)}`);
    const text = await readFile(file, 'utf8');
    const map = parseConceptMap(text, format as ConceptMapFormat, {
      ...(values.url !== undefined ? { url: values.url as string } : {}),
      ...(values.version !== undefined ? { version: values.version as string } : {}),
      ...(values.name !== undefined ? { name: values.name as string } : {}),
    });
    const result = await withDatabase(values.config as string | undefined, env, (pool) => loadConceptMap(pool, map, { activate: values.inactive !== true }));
    output.out(
      `${result.created ? 'loaded' : 'already loaded'} ConceptMap ${result.url} version ${result.version}: ${result.elementCount} mappings, sha256 ${result.contentSha256}${result.active ? ', active' : ', not active'}\n`,
    );
    return 0;
  }
  if (subcommand === 'activate') {
    const { values, positionals } = parse(rest, {});
    if (positionals.length !== 2) throw new UsageError('conceptmap activate needs <url> <version>');
    const [url, version] = positionals as [string, string];
    await withDatabase(values.config as string | undefined, env, (pool) => withTransaction(pool, (client) => activateConceptMap(client, url, version)));
    output.out(`ConceptMap ${url} version ${version} is active\n`);
    return 0;
  }
  throw new UsageError(subcommand === undefined ? 'conceptmap needs load or activate' : `unknown conceptmap command ${subcommand}`);
}

async function runList(argv: string[], output: TerminologyOutput, env: NodeJS.ProcessEnv): Promise<number> {
  const { values, positionals } = parse(argv, { json: { type: 'boolean' } });
  if (positionals.length > 0) throw new UsageError(`unexpected argument ${positionals[0]}`);
  const listing = await withDatabase(values.config as string | undefined, env, async (pool) => ({
    terminologyVersion: await readTerminologyVersion(pool),
    codeSystems: await listCodeSystems(pool),
    conceptMaps: await listConceptMaps(pool, { withCounts: true }),
  }));
  if (values.json) {
    output.out(JSON.stringify(listing, null, 2) + '\n');
    return 0;
  }
  const lines = [`terminology version: ${listing.terminologyVersion}`, '', `code systems (${listing.codeSystems.length}):`];
  for (const c of listing.codeSystems) lines.push(`  ${c.url}  version ${c.version}  ${c.conceptCount} concepts  (${c.sourceFormat}, loaded ${c.loadedAt.toISOString()})`);
  lines.push('', `ConceptMaps (${listing.conceptMaps.length} versions; * = active):`);
  for (const m of listing.conceptMaps) {
    lines.push(`  ${m.active ? '*' : ' '} ${m.url}  version ${m.version}  ${m.elementCount} mappings  sha256 ${m.contentSha256.slice(0, 16)}…  (loaded ${m.loadedAt.toISOString()})`);
  }
  output.out(lines.join('\n') + '\n');
  return 0;
}

async function runReleaseLoad(argv: string[], output: TerminologyOutput, env: NodeJS.ProcessEnv): Promise<number> {
  const [format, ...rest] = argv;
  const loader = format === undefined ? undefined : RELEASE_LOADERS[format];
  if (!loader) throw new UsageError(format === undefined ? 'load needs a format' : `no release loader for ${format}`);
  // --config is the one option every loader shares; the rest are the loader's own.
  const at = rest.indexOf('--config');
  const configFile = at >= 0 ? rest[at + 1] : undefined;
  const loaderArgs = at >= 0 ? [...rest.slice(0, at), ...rest.slice(at + 2)] : rest;
  return withDatabase(configFile, env, (pool) => loader(loaderArgs, pool, output));
}

function parse(argv: string[], options: Record<string, { type: 'string' | 'boolean' }>): { values: Record<string, string | boolean | undefined>; positionals: string[] } {
  try {
    return parseArgs({ args: argv, allowPositionals: true, strict: true, options: { ...options, config: { type: 'string' } } });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

/** Runs `work` on a migrated pool on the engine's database, then lets go of it (stopping a server started here). */
async function withDatabase<T>(configFile: string | undefined, env: NodeJS.ProcessEnv, work: (pool: pg.Pool) => Promise<T>): Promise<T> {
  const config: AnchorlineConfig = loadConfig({ ...(configFile ? { file: configFile } : {}), env });
  const database = await openToolDatabase(config, 'anchorline-terminology');
  try {
    return await work(database.pool);
  } finally {
    await database.close();
  }
}

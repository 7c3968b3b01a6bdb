/**
 * Loaders for terminology release files: public surface of terminology/loaders/.
 *
 * `anchorline terminology load <snomed|icd10|kcd|kostom|loinc> <path>... [options]` runs `runTerminologyLoad`; the
 * load functions are for code that already holds a pool (tests, an admin endpoint). Each load streams its files and
 * replaces the code system in one transaction (see load.ts); a rejected file leaves the loaded release untouched.
 *
 * Database: the engine's, from the same config as `start` (DATABASE_URL / database.url, else the embedded server under
 * the data dir). When an engine is running on the embedded server, the load connects to it (readers keep seeing the
 * previous release until the load commits); when none is, the load starts the server and stops it after.
 */
import { parseArgs } from 'node:util';
import type pg from 'pg';
import { ConfigError, loadConfig, type AnchorlineConfig } from '../../config/index.ts';
import { openToolDatabase } from '../../store/index.ts';
import type { DisplayLanguage } from './common.ts';
import { TerminologyLoadError } from './errors.ts';
import { loadIcd10Cm } from './icd10cm.ts';
import { loadKcd } from './kcd.ts';
import { loadKostom } from './kostom.ts';
import type { LoadSummary } from './load.ts';
import { loadLoinc } from './loinc.ts';
import { formatDuration, LoadProgress } from './progress.ts';
import { loadSnomedRf2 } from './snomed.ts';

export { TerminologyLoadError } from './errors.ts';
export { DEFAULT_BATCH_SIZE, type LoaderOptions, type LoadSummary, type ConceptMapSummary } from './load.ts';
export { LoadProgress, silentObserver, type LoadObserver, type ProgressOptions } from './progress.ts';
export { loadSnomedRf2, findRf2Files, SNOMED, SNOMED_SYSTEM, type SnomedLoadOptions, type Rf2Files } from './snomed.ts';
export { loadIcd10Cm, ICD10CM_SYSTEM, type Icd10CmLoadOptions } from './icd10cm.ts';
export { loadKcd, kcdSystem, type KcdLoadOptions } from './kcd.ts';
export { loadKostom, KOSTOM_SYSTEM, KOSTOM_TO_SNOMED_MAP_URL, kostomToKcdMapUrl, type KostomLoadOptions } from './kostom.ts';
export { loadLoinc, LOINC_SYSTEM, type LoincLoadOptions } from './loinc.ts';
export type { DisplayLanguage } from './common.ts';

export const TERMINOLOGY_KINDS = ['snomed', 'icd10', 'kcd', 'kostom', 'loinc'] as const;
export type TerminologyKind = (typeof TERMINOLOGY_KINDS)[number];

export const TERMINOLOGY_LOAD_USAGE = `usage: anchorline terminology load <kind> <path>... [options]

Loads a terminology release into the engine's database, replacing the loaded release of that code system in one
transaction (a file that is rejected changes nothing).
kinds:
  snomed   SNOMED CT RF2 snapshot: a release directory, or its sct2_Concept/Description/Relationship_Snapshot files
           (and der2_cRefset_LanguageSnapshot files, which choose the preferred terms)
  icd10    ICD-10-CM order file (icd10cm_order_<year>.txt, fixed width)
  kcd      KCD-8/KCD-9 table as CSV with columns 코드, 한글명, 영문명
  kostom   KOSTOM table as CSV with columns code, 한글명, 영문명, SNOMED CT, KCD; also writes ConceptMaps
           KOSTOM -> SNOMED CT and KOSTOM -> KCD
  loinc    Loinc.csv of the LOINC table distribution
options:
  --version <v>        the release (required unless the file name holds it: Loinc_2.77, kcd-8, icd10cm_order_2025,
                       kostom_2024; for snomed, the edition URI found in the files is used)
  --encoding <name>    character set of kcd/kostom/icd10 files: utf-8, euc-kr, cp949 (default: BOM, else UTF-8 if
                       valid, else CP949)
  --language <ko|en>   language of the display: kcd, kostom default ko; snomed default en
  --system <url>       code system URL instead of the standard one
  --kcd-version <n>    kostom: the KCD edition of the table's KCD codes (default 8)
  --config <file>      JSON config file (also ANCHORLINE_CONFIG), as for start; environment variables override it
  --quiet              no progress on stderr
Exit code 0 when loaded, 1 when the release was rejected (a bad line is named by file and line) and nothing was
changed, 2 for usage or configuration errors or when the database cannot be opened.
`;

/** Where the command writes: results on `out`, progress and errors on `err`. */
export interface TerminologyLoadOutput {
  out: (text: string) => void;
  err: (text: string) => void;
  /** Whether `err` is a terminal (progress redraws one line) or not (a line every few seconds). */
  errIsTTY?: boolean;
}

const processOutput: TerminologyLoadOutput = {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
  errIsTTY: process.stderr.isTTY === true,
};

class UsageError extends Error {}

interface LoadCommand {
  kind: TerminologyKind;
  paths: string[];
  version?: string;
  encoding?: string;
  language?: DisplayLanguage;
  system?: string;
  kcdEdition?: string;
  config?: string;
  quiet: boolean;
}

/**
 * Runs `terminology load` with the arguments after `load` (`<kind> <path>... [options]`), opening the engine's
 * database itself; returns the exit code: 0 loaded, 1 the release was rejected (by a check or by the database),
 * 2 usage or configuration error, or the database could not be opened.
 */
export async function runTerminologyLoad(argv: string[], output: TerminologyLoadOutput = processOutput, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  let command: LoadCommand;
  let config: AnchorlineConfig;
  try {
    const parsed = parseCommandLine(argv);
    if (parsed === 'help') {
      output.out(TERMINOLOGY_LOAD_USAGE);
      return 0;
    }
    command = parsed;
    config = loadConfig({ ...(command.config ? { file: command.config } : {}), env });
  } catch (error) {
    return reportSetupError(error, output);
  }
  let database: { pool: pg.Pool; close(): Promise<void> };
  try {
    database = await openToolDatabase(config, 'anchorline-terminology-load');
  } catch (error) {
    output.err(`anchorline terminology load: the database could not be opened: ${(error as Error).message ?? String(error)}\n`);
    return 2;
  }
  try {
    return await loadAndReport(database.pool, command, output);
  } finally {
    await database.close();
  }
}

/** A loader run on a pool the caller opened: the arguments after the kind, as `anchorline terminology load` passes them. */
export type ReleaseLoaderCommand = (argv: string[], pool: pg.Pool, output: TerminologyLoadOutput) => Promise<number>;

/**
 * One entry per kind, for a command that opens the database itself and dispatches on the kind: each takes the
 * arguments after the kind (`<path>... [options]`, --config already consumed) and returns the exit code as
 * runTerminologyLoad does.
 */
export const TERMINOLOGY_RELEASE_LOADERS: Record<TerminologyKind, ReleaseLoaderCommand> = {
  snomed: (argv, pool, output) => runOnPool('snomed', argv, pool, output),
  icd10: (argv, pool, output) => runOnPool('icd10', argv, pool, output),
  kcd: (argv, pool, output) => runOnPool('kcd', argv, pool, output),
  kostom: (argv, pool, output) => runOnPool('kostom', argv, pool, output),
  loinc: (argv, pool, output) => runOnPool('loinc', argv, pool, output),
};

async function runOnPool(kind: TerminologyKind, argv: string[], pool: pg.Pool, output: TerminologyLoadOutput): Promise<number> {
  let command: LoadCommand;
  try {
    const parsed = parseCommandLine([kind, ...argv]);
    if (parsed === 'help') {
      output.out(TERMINOLOGY_LOAD_USAGE);
      return 0;
    }
    command = parsed;
  } catch (error) {
    return reportSetupError(error, output);
  }
  return loadAndReport(pool, command, output);
}

function reportSetupError(error: unknown, output: TerminologyLoadOutput): number {
  if (error instanceof UsageError) {
    output.err(`anchorline terminology load: ${error.message}\n\n${TERMINOLOGY_LOAD_USAGE}`);
    return 2;
  }
  if (error instanceof ConfigError) {
    output.err(`anchorline terminology load: ${error.message}\n`);
    return 2;
  }
  throw error;
}

/** Loads with progress on `err` and the summary on `out`; 0 when loaded, 1 when the load was rolled back. */
async function loadAndReport(pool: pg.Pool, command: LoadCommand, output: TerminologyLoadOutput): Promise<number> {
  const progress = new LoadProgress({ label: command.kind, write: command.quiet ? () => undefined : output.err, isTTY: output.errIsTTY === true });
  const startedAt = performance.now();
  try {
    const summary = await loadRelease(pool, command, progress);
    progress.finish('done');
    output.out(formatSummary(command.kind, summary, (performance.now() - startedAt) / 1000));
    return 0;
  } catch (error) {
    progress.finish('failed');
    if (error instanceof TerminologyLoadError) {
      output.err(`anchorline terminology load: rejected, nothing was changed: ${error.detail}\n`);
    } else {
      output.err(`anchorline terminology load: the load failed, nothing was changed: ${(error as Error).message ?? String(error)}\n`);
    }
    return 1;
  }
}

/** Runs the loader of `command.kind` on an open pool. */
export async function loadRelease(pool: pg.Pool, command: Omit<LoadCommand, 'config' | 'quiet'>, progress?: LoadProgress): Promise<LoadSummary> {
  const common = {
    ...(progress ? { observer: progress } : {}),
    ...(command.version !== undefined ? { version: command.version } : {}),
    ...(command.system !== undefined ? { system: command.system } : {}),
  };
  const encoding = command.encoding !== undefined ? { encoding: command.encoding } : {};
  const language = command.language !== undefined ? { language: command.language } : {};
  const single = (): string => {
    if (command.paths.length !== 1) throw new UsageError(`${command.kind} takes one file, not ${command.paths.length}`);
    return command.paths[0]!;
  };
  switch (command.kind) {
    case 'snomed':
      return loadSnomedRf2(pool, command.paths, { ...common, ...language });
    case 'icd10':
      return loadIcd10Cm(pool, single(), { ...common, ...encoding });
    case 'kcd':
      return loadKcd(pool, single(), { ...common, ...encoding, ...language });
    case 'kostom':
      return loadKostom(pool, single(), { ...common, ...encoding, ...language, ...(command.kcdEdition !== undefined ? { kcdEdition: command.kcdEdition } : {}) });
    case 'loinc':
      return loadLoinc(pool, single(), common);
  }
}

function parseCommandLine(argv: string[]): LoadCommand | 'help' {
  let values: Record<string, string | boolean | undefined>;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        version: { type: 'string' },
        encoding: { type: 'string' },
        language: { type: 'string' },
        system: { type: 'string' },
        'kcd-version': { type: 'string' },
        config: { type: 'string' },
        quiet: { type: 'boolean' },
        help: { type: 'boolean' },
      },
    }));
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  if (values.help) return 'help';
  const [kind, ...paths] = positionals;
  if (kind === undefined) throw new UsageError('which kind of release? (snomed, icd10, kcd, kostom or loinc)');
  if (!(TERMINOLOGY_KINDS as readonly string[]).includes(kind)) throw new UsageError(`unknown kind ${kind} (snomed, icd10, kcd, kostom or loinc)`);
  if (paths.length === 0) throw new UsageError(`give the ${kind} release file${kind === 'snomed' ? ' or directory' : ''}`);
  if (kind !== 'snomed' && paths.length > 1) throw new UsageError(`${kind} takes one file, not ${paths.length}`);
  const language = values.language as string | undefined;
  if (language !== undefined && language !== 'ko' && language !== 'en') throw new UsageError('--language is ko or en');
  if (language !== undefined && (kind === 'icd10' || kind === 'loinc')) throw new UsageError(`--language does not apply to ${kind} (its terms are English only)`);
  if (values.encoding !== undefined && (kind === 'snomed' || kind === 'loinc')) throw new UsageError(`--encoding does not apply to ${kind} (its files are UTF-8)`);
  const kcdEdition = values['kcd-version'] as string | undefined;
  if (kcdEdition !== undefined && kind !== 'kostom') throw new UsageError('--kcd-version applies to kostom only');
  if (kcdEdition !== undefined && !/^\d{1,2}$/.test(kcdEdition)) throw new UsageError('--kcd-version is a KCD edition number such as 8');
  return {
    kind: kind as TerminologyKind,
    paths,
    ...(values.version !== undefined ? { version: values.version as string } : {}),
    ...(values.encoding !== undefined ? { encoding: values.encoding as string } : {}),
    ...(language !== undefined ? { language } : {}),
    ...(values.system !== undefined ? { system: values.system as string } : {}),
    ...(kcdEdition !== undefined ? { kcdEdition } : {}),
    ...(values.config !== undefined ? { config: values.config as string } : {}),
    quiet: values.quiet === true,
  };
}

export function formatSummary(kind: TerminologyKind, summary: LoadSummary, seconds: number): string {
  const lines = [
    `loaded ${kind}: ${summary.system} version ${summary.version}: ${summary.concepts.toLocaleString('en-US')} concepts` +
      (summary.inactiveConcepts > 0 ? ` (${summary.inactiveConcepts.toLocaleString('en-US')} inactive)` : '') +
      (summary.relationships > 0 ? `, ${summary.relationships.toLocaleString('en-US')} relationships` : '') +
      ` in ${formatDuration(seconds)}`,
  ];
  for (const map of summary.conceptMaps) {
    const state = map.created ? 'active' : 'loaded already with this content, active';
    lines.push(`  ConceptMap ${map.url} version ${map.version}: ${map.elements.toLocaleString('en-US')} source codes, sha256 ${map.contentSha256}, ${state}`);
  }
  return lines.join('\n') + '\n';
}


/**
 * The mapping registry: the mapping configs a worker maps with (config/mapping-config.ts), kept current while the
 * engine runs.
 *
 * - Files: the config directory is read at start, watched (fs.watch, with a quiet period so that an editor's
 *   several writes count once), and also checked every pollIntervalMs by file size and mtime, since watches miss
 *   changes on network file systems and in some containers. A changed file is validated; if valid, its version is
 *   deployed (mapping_deployment, reason 'file') and logged with the old and new version. An invalid file is
 *   logged with its file, line and key, and the version it had before stays in use. A removed file's config is no
 *   longer applied here.
 * - The database decides which version of each config is active: every pollIntervalMs the registry reads the active
 *   versions, so a rollback (`anchorline mapping rollback`, POST /admin/mappings/{name}/rollback) or a file version
 *   another process deployed reaches every engine and worker process sharing the database within that interval.
 *   The active version wins over a process's own file until the file changes again.
 * - Names come from this process's files (and the built-in default): every process that maps must load the same
 *   config directory.
 *
 * The registry is the ingest worker's MappingSource; select() reads only memory.
 */
import { watch, type FSWatcher } from 'node:fs';
import { readFile, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import type pg from 'pg';
import { AnchorlineError } from '../errors/index.ts';
import type { MshHeader } from '../formats/hl7v2/index.ts';
import { mappingConfigs, mappingDeployments } from '../store/index.ts';
import type { MappingSource } from './ingest.ts';
import { errorFields, type Logger } from '../config/logger.ts';
import {
  DEFAULT_MAPPING_CONFIG,
  MAPPING_CONFIG_EXTENSIONS,
  MAX_MAPPING_CONFIG_BYTES,
  MappingConfigError,
  MappingConfigSet,
  builtInDefault,
  combineMappingConfigs,
  formatProblem,
  parseMappingConfigBytes,
  storedVersion,
  type MappingBase,
  type MappingConfigProblem,
  type MappingConfigVersion,
  type ParsedMappingConfig,
} from '../config/mapping-config.ts';

/** Default of mapping.pollIntervalMs. */
export const DEFAULT_MAPPING_POLL_INTERVAL_MS = 2_000;

/** The config directory when mapping.configDir is not set. */
export function defaultMappingConfigDir(dataDir: string): string {
  return path.join(dataDir, 'mappings');
}

export interface MappingRegistryOptions {
  pool: pg.Pool;
  log: Logger;
  /** The engine's `mapping` settings: the base of every config, and the built-in default. */
  base: MappingBase;
  /** Directory of config files; it need not exist yet. Undefined: no files, only the built-in default. */
  configDir: string | undefined;
  /** How often active versions are read from the database and files are checked, in ms. Default 2000. */
  pollIntervalMs?: number;
  /** Quiet time after a watched change before the directory is read, in ms. Default 200. */
  debounceMs?: number;
}

/** What the registry knows of one file. */
interface FileState {
  /** inode, size and mtime: a different stamp means the file is read again. */
  stamp: string;
  /** Set when the stamp changed since the last pass. */
  changed: boolean;
  /** The file as last read, when it was valid. */
  parsed?: ParsedMappingConfig;
  /** Why the file as last read cannot be used. */
  problems?: MappingConfigProblem[];
  /** The config from this file in use after the last pass (possibly an earlier valid version of the file). */
  accepted?: ParsedMappingConfig;
}

export class MappingRegistry implements MappingSource {
  private readonly options: MappingRegistryOptions;
  private readonly log: Logger;
  private readonly pollIntervalMs: number;
  private readonly builtIn: MappingConfigVersion;
  private files = new Map<string, FileState>();
  /** The version of each name that this process's files give (the built-in default when no file is 'default'). */
  private local = new Map<string, MappingConfigVersion>();
  /** The version of each name in use: the database's active version. */
  private active = new Map<string, MappingConfigVersion>();
  private set: MappingConfigSet;
  /** Versions read from mapping_config, by name and version. */
  private readonly stored = new Map<string, MappingConfigVersion>();
  /** Stored versions found unusable (or missing), so each is reported once rather than at every poll. */
  private readonly refused = new Set<string>();
  /** Files changed since the configs were last chosen and deployed (also after a pass that failed half way). */
  private dirty = true;
  private work: Promise<void> = Promise.resolve();
  private watcher: FSWatcher | undefined;
  private debounce: NodeJS.Timeout | undefined;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  private constructor(options: MappingRegistryOptions) {
    this.options = options;
    this.log = options.log;
    this.pollIntervalMs = options.pollIntervalMs ?? DEFAULT_MAPPING_POLL_INTERVAL_MS;
    this.builtIn = builtInDefault(options.base);
    this.set = new MappingConfigSet([], this.builtIn);
  }

  /**
   * Reads the config directory, deploys what changed and reads the active versions, then starts watching. Ready to
   * select when it resolves; throws if the database cannot be reached (invalid files only get logged).
   */
  static async open(options: MappingRegistryOptions): Promise<MappingRegistry> {
    const registry = new MappingRegistry(options);
    await registry.scanFiles();
    await registry.refreshActive();
    registry.startWatching();
    registry.timer = setInterval(() => registry.enqueue(() => registry.tick()), registry.pollIntervalMs);
    registry.timer.unref();
    registry.log.info(
      { configDir: options.configDir, configs: [...registry.active.values()].map((v) => ({ name: v.name, sha256: v.sha256 })) },
      'mapping configs loaded',
    );
    return registry;
  }

  select(header: MshHeader | undefined): MappingConfigVersion {
    return this.set.select(header);
  }

  /** Problems of the config files that cannot be used now (their earlier version, if any, is in use). */
  problems(): MappingConfigProblem[] {
    return [...this.files.values()].flatMap((state) => state.problems ?? []);
  }

  /** Reads the directory and the database now rather than at the next tick; resolves when done. */
  async reload(): Promise<void> {
    await this.enqueue(async () => {
      await this.scanFiles();
      await this.refreshActive();
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    if (this.debounce) clearTimeout(this.debounce);
    this.watcher?.close();
    this.watcher = undefined;
    await this.work;
  }

  /** Runs `step` after whatever is under way: passes never overlap. Failures are logged, never thrown at timers. */
  private enqueue(step: () => Promise<void>): Promise<void> {
    this.work = this.work.then(async () => {
      if (this.closed) return;
      try {
        await step();
      } catch (error) {
        this.log.warn({ ...errorFields(error) }, 'mapping configs: check failed; the versions in use stay');
      }
    });
    return this.work;
  }

  private async tick(): Promise<void> {
    if (this.watcher === undefined) this.startWatching();
    await this.scanFiles();
    await this.refreshActive();
  }

  private startWatching(): void {
    const dir = this.options.configDir;
    if (dir === undefined || this.closed) return;
    try {
      const watcher = watch(dir, { persistent: false }, () => {
        if (this.debounce) clearTimeout(this.debounce);
        this.debounce = setTimeout(() => void this.enqueue(() => this.tick()), this.options.debounceMs ?? 200);
        this.debounce.unref();
      });
      watcher.on('error', () => {
        // The directory went away (or the watch broke): the tick checks files and watches again once it is back.
        watcher.close();
        if (this.watcher === watcher) this.watcher = undefined;
      });
      this.watcher = watcher;
    } catch {
      // No directory yet: the tick looks for it.
      this.watcher = undefined;
    }
  }

  /** The config files in the directory now, with their stamps; none when it does not exist. */
  private async listFiles(): Promise<Map<string, string>> {
    const dir = this.options.configDir;
    const found = new Map<string, string>();
    if (dir === undefined) return found;
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return found;
      throw error;
    }
    for (const entry of entries) {
      if (!entry.isFile() || entry.name.startsWith('.') || !MAPPING_CONFIG_EXTENSIONS.includes(path.extname(entry.name).toLowerCase())) continue;
      const file = path.join(dir, entry.name);
      try {
        const info = await stat(file);
        found.set(file, `${info.ino}:${info.size}:${info.mtimeMs}`);
      } catch {
        // Removed between readdir and stat: gone.
      }
    }
    return found;
  }

  /**
   * One pass over the directory: reads the files whose stamp changed, chooses the configs to use and deploys their
   * versions. Nothing is chosen or deployed when no file changed since the last complete pass.
   */
  private async scanFiles(): Promise<void> {
    const listed = await this.listFiles();
    for (const file of this.files.keys()) {
      if (!listed.has(file)) {
        this.dirty = true;
        const name = this.files.get(file)!.accepted?.version.name;
        this.files.delete(file);
        this.log.warn({ file, name }, 'mapping config file removed; its config is no longer applied here');
      }
    }
    for (const [file, stamp] of [...listed].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      const previous = this.files.get(file);
      if (previous !== undefined && previous.stamp === stamp) continue;
      this.dirty = true;
      const state: FileState = { stamp, changed: true, ...(previous?.accepted ? { accepted: previous.accepted } : {}) };
      try {
        const bytes = await readFile(file);
        if (bytes.length > MAX_MAPPING_CONFIG_BYTES) {
          throw new MappingConfigError([{ file, line: 1, column: 1, key: '(file)', message: `is larger than ${MAX_MAPPING_CONFIG_BYTES} bytes` }]);
        }
        state.parsed = parseMappingConfigBytes(bytes, file, this.options.base);
      } catch (error) {
        if (!(error instanceof MappingConfigError)) {
          if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue;
          throw error;
        }
        state.problems = error.problems;
        this.logRejected(error.problems, state.accepted);
      }
      this.files.set(file, state);
    }
    if (!this.dirty) return;
    this.chooseConfigs();
    await this.deploy();
    this.dirty = false;
  }

  private logRejected(problems: MappingConfigProblem[], kept: ParsedMappingConfig | undefined): void {
    for (const problem of problems) {
      this.log.error(
        { file: problem.file, line: problem.line, column: problem.column, key: problem.key, problem: problem.message, keptSha256: kept?.version.sha256 },
        `mapping config rejected: ${formatProblem(problem)}${kept ? '; its previous version stays active' : ''}`,
      );
    }
  }

  /**
   * Chooses which file configs are used together. Configs in use keep their place ahead of changed files, so a
   * changed file that collides with another config is the one rejected, and then its previous version stays.
   */
  private chooseConfigs(): void {
    const states = [...this.files.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, state]) => state);
    const prior: ParsedMappingConfig[] = [];
    const fresh: ParsedMappingConfig[] = [];
    const waiting: ParsedMappingConfig[] = [];
    for (const state of states) {
      if (state.changed && state.parsed) fresh.push(state.parsed);
      else if (state.accepted) prior.push(state.accepted);
      else if (state.parsed) waiting.push(state.parsed);
    }
    let combined = combineMappingConfigs([...prior, ...fresh, ...waiting]);
    const acceptedFiles = new Set(combined.accepted.map((item) => item.file));
    const fallbacks = states.filter((state) => state.changed && state.parsed && !acceptedFiles.has(state.parsed.file) && state.accepted).map((state) => state.accepted!);
    if (fallbacks.length > 0) {
      const retried = combineMappingConfigs([...combined.accepted, ...fallbacks]);
      combined = { accepted: retried.accepted, problems: [...combined.problems, ...retried.problems] };
    }
    const byFile = new Map(combined.accepted.map((item) => [item.file, item]));
    for (const state of states) {
      const file = state.parsed?.file ?? state.accepted?.file;
      const accepted = file === undefined ? undefined : byFile.get(file);
      if (state.changed) {
        // A conflict is reported with the changed file; a file rejected before is not reported again until it changes.
        const problems = combined.problems.filter((problem) => problem.file === file);
        if (problems.length > 0) {
          state.problems = [...(state.problems ?? []), ...problems];
          this.logRejected(problems, accepted);
        }
      }
      if (accepted) state.accepted = accepted;
      else delete state.accepted;
      state.changed = false;
    }
    const local = new Map<string, MappingConfigVersion>(combined.accepted.map((item) => [item.version.name, item.version]));
    if (!local.has(DEFAULT_MAPPING_CONFIG)) local.set(DEFAULT_MAPPING_CONFIG, this.builtIn);
    this.local = local;
  }

  /** Records each local version as the name's file version (a no-op for versions deployed before). */
  private async deploy(): Promise<void> {
    for (const version of this.local.values()) {
      const outcome = await mappingDeployments.deployFileVersion(this.options.pool, version.name, version.content, version.source);
      if (outcome.deployed) {
        this.log.info({ name: version.name, oldSha256: outcome.previousSha256 ?? null, newSha256: version.sha256, source: version.source }, 'mapping config deployed');
      }
    }
  }

  /** Reads the active version of each name from the database and switches to it. */
  private async refreshActive(): Promise<void> {
    const rows = await mappingDeployments.activeVersions(this.options.pool);
    const next = new Map<string, MappingConfigVersion>();
    for (const [name, local] of this.local) {
      const sha256 = rows.get(name) ?? local.sha256;
      const current = this.active.get(name);
      if (sha256 === local.sha256) next.set(name, local);
      else if (current?.sha256 === sha256) next.set(name, current);
      else {
        const version = await this.storedVersion(name, sha256);
        next.set(name, version ?? current ?? local);
      }
    }
    for (const [name, version] of next) {
      const before = this.active.get(name);
      if (before !== undefined && before.sha256 !== version.sha256) {
        this.log.info({ name, oldSha256: before.sha256, newSha256: version.sha256, source: version.source }, 'mapping config: active version changed');
      }
    }
    this.active = next;
    this.set = new MappingConfigSet([...next.values()], this.builtIn);
  }

  /** A version stored in mapping_config, or undefined (logged) when it is missing or does not validate. */
  private async storedVersion(name: string, sha256: string): Promise<MappingConfigVersion | undefined> {
    const key = `${name}\u0000${sha256}`;
    const cached = this.stored.get(key);
    if (cached) return cached;
    if (this.refused.has(key)) return undefined;
    const content = (await mappingConfigs.mappingConfigsByDigest(this.options.pool, [sha256])).get(sha256);
    if (content === undefined) {
      // Looked up again at every poll (the row may be restored), but reported once.
      if (this.refused.has(`missing\u0000${key}`)) return undefined;
      this.refused.add(`missing\u0000${key}`);
      this.log.error({ name, sha256 }, 'mapping config: the active version is not stored in mapping_config; the version in use stays');
      return undefined;
    }
    try {
      const version = storedVersion(name, sha256, content);
      this.stored.set(key, version);
      return version;
    } catch (error) {
      if (!(error instanceof MappingConfigError)) throw error;
      this.refused.add(key);
      this.log.error({ name, sha256, problems: error.problems.map(formatProblem) }, 'mapping config: the active version cannot be used; the version in use stays');
      return undefined;
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Listing and rollback, shared by the admin API and the command line: they work on the database alone, and the
// registries of running processes follow within their poll interval.

export interface MappingConfigListing {
  name: string;
  /** The active version, and its stored content. */
  active: { sha256: string; deployedAt: string; reason: mappingDeployments.DeploymentReason; content: unknown } | null;
  /** Every deployment of the name, oldest first. */
  history: Array<{ sha256: string; deployedAt: string; reason: mappingDeployments.DeploymentReason; source: string | null; active: boolean }>;
}

export async function listMappingConfigs(pool: pg.Pool | pg.PoolClient): Promise<MappingConfigListing[]> {
  const history = await mappingDeployments.deploymentHistory(pool);
  const activeDigests = [...new Set(history.filter((row) => row.active).map((row) => row.sha256))];
  const contents = await mappingConfigs.mappingConfigsByDigest(pool, activeDigests);
  const listings = new Map<string, MappingConfigListing>();
  for (const row of history) {
    let listing = listings.get(row.name);
    if (!listing) listings.set(row.name, (listing = { name: row.name, active: null, history: [] }));
    const deployedAt = row.deployedAt.toISOString();
    listing.history.push({ sha256: row.sha256, deployedAt, reason: row.reason, source: row.source, active: row.active });
    if (row.active) listing.active = { sha256: row.sha256, deployedAt, reason: row.reason, content: contents.get(row.sha256) ?? null };
  }
  return [...listings.values()];
}

const SHA256 = /^[0-9a-f]{64}$/;

/**
 * Makes an earlier version of a config active again, in every process sharing the database. Throws AnchorlineError:
 * INVALID_REQUEST for a malformed digest or a stored version that cannot be used, NOT_FOUND for a name or version
 * never deployed.
 */
export async function rollbackMappingConfig(pool: pg.Pool, name: string, sha256: string): Promise<{ name: string; previousSha256: string | null; sha256: string; changed: boolean }> {
  if (!SHA256.test(sha256)) throw new AnchorlineError('ANCHORLINE_ERR_INVALID_REQUEST', 'a version is 64 lowercase hex digits (the SHA-256 that mapping list shows)');
  const outcome = await mappingDeployments.rollbackTo(pool, name, sha256, (content) => {
    try {
      storedVersion(name, sha256, content);
    } catch (error) {
      if (!(error instanceof MappingConfigError)) throw error;
      throw new AnchorlineError('ANCHORLINE_ERR_INVALID_REQUEST', `version ${sha256} cannot be activated: ${error.problems.map((p) => `${p.key}: ${p.message}`).join('; ')}`);
    }
  });
  return { name, previousSha256: outcome.previousSha256 ?? null, sha256: outcome.sha256, changed: outcome.changed };
}

/**
 * The frame every loader runs in: one transaction per code system that replaces the loaded release atomically.
 *
 * Inside the transaction: an advisory lock on the code system's url (two loads of one system queue; loads of
 * different systems run side by side), then the terminology store's `upsertCodeSystem` (which clears the previous
 * release), the loader's batches through `insertConcepts` / `insertRelationships`, and `finishCodeSystem`. Until the
 * commit, every reader keeps seeing the previous release; if anything throws (a bad line, a lost connection), the
 * rollback leaves it exactly as it was.
 *
 * Rows are buffered only up to one batch (`batchSize`, default 5,000) before they are written, so a loader's memory
 * does not grow with the release.
 */
import { withTransaction, type Pool, type PoolClient } from '../../store/index.ts';
import { finishCodeSystem, insertConcepts, insertRelationships, upsertCodeSystem, type CodeSystemMeta, type ConceptInput, type RelationshipInput } from '../store.ts';
import { silentObserver, type LoadObserver } from './progress.ts';

/** Rows per INSERT. 5,000 concepts with designations make a parameter of a few MB; larger batches gain little. */
export const DEFAULT_BATCH_SIZE = 5000;

export interface LoaderOptions {
  /** Rows per batch written. Default 5000. */
  batchSize?: number;
  /** Told about bytes read, rows and phases (see progress.ts). Default: nothing is reported. */
  observer?: LoadObserver;
}

export interface ConceptMapSummary {
  url: string;
  version: string;
  /** Source codes with at least one target. */
  elements: number;
  contentSha256: string;
  /** false when this version was stored already with the same content (it was only made active again). */
  created: boolean;
}

export interface LoadSummary {
  /** Code system url. */
  system: string;
  version: string;
  name: string;
  /** Concepts the code system holds after the load. */
  concepts: number;
  /** Of which inactive. */
  inactiveConcepts: number;
  /** Relationships written (SNOMED CT; repeated ones counted once). */
  relationships: number;
  /** ConceptMaps written with the code system (KOSTOM). */
  conceptMaps: ConceptMapSummary[];
  /** The files read, in the order they were read. */
  files: string[];
}

/** A code system being loaded: where a loader puts its rows. */
export interface CodeSystemLoad {
  /** The transaction's connection, for loader-specific statements (staging tables, set-based updates). */
  readonly db: PoolClient;
  readonly meta: CodeSystemMeta;
  readonly batchSize: number;
  readonly observer: LoadObserver;
  addConcept(concept: ConceptInput): Promise<void>;
  addRelationship(relationship: RelationshipInput): Promise<void>;
  /** Writes what is buffered; called by the frame before finishing, and by loaders whose later steps need the rows. */
  flush(): Promise<void>;
  /** Relationships written so far (repeated ones counted once). */
  readonly counts: { relationships: number };
}

/** What a loader's work returns to the frame. */
export interface LoadOutcome {
  files: string[];
  conceptMaps?: ConceptMapSummary[];
  /** The version, when it became known only while reading (SNOMED CT's edition module); replaces meta.version. */
  version?: string;
}

/**
 * Runs `work` in a transaction that replaces the code system `meta.url` with what `work` adds. Returns the summary
 * (with what `work` returns merged in) after the commit.
 */
export async function replaceCodeSystem(
  pool: Pool,
  meta: CodeSystemMeta,
  options: LoaderOptions,
  work: (load: CodeSystemLoad) => Promise<LoadOutcome>,
): Promise<LoadSummary> {
  const batchSize = options.batchSize ?? DEFAULT_BATCH_SIZE;
  const observer = options.observer ?? silentObserver;
  return withTransaction(pool, async (db) => {
    await db.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`anchorline-terminology:${meta.url}`]);
    await upsertCodeSystem(db, meta);

    let concepts: ConceptInput[] = [];
    let relationships: RelationshipInput[] = [];
    const counts = { relationships: 0 };
    const flushConcepts = async (): Promise<void> => {
      if (concepts.length === 0) return;
      const batch = concepts;
      concepts = [];
      await insertConcepts(db, meta.url, batch);
    };
    const flushRelationships = async (): Promise<void> => {
      if (relationships.length === 0) return;
      const batch = relationships;
      relationships = [];
      counts.relationships += await insertRelationships(db, meta.url, batch);
    };
    const load: CodeSystemLoad = {
      db,
      meta,
      batchSize,
      observer,
      counts,
      async addConcept(concept) {
        concepts.push(concept);
        if (concepts.length >= batchSize) await flushConcepts();
      },
      async addRelationship(relationship) {
        relationships.push(relationship);
        if (relationships.length >= batchSize) await flushRelationships();
      },
      async flush() {
        await flushConcepts();
        await flushRelationships();
      },
    };

    const outcome = await work(load);
    await load.flush();
    observer.phase('finishing');
    const version = outcome.version ?? meta.version;
    if (version !== meta.version) await upsertCodeSystem(db, { ...meta, version }, { keepConcepts: true });
    const conceptCount = await finishCodeSystem(db, meta.url);
    const inactive = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM concept WHERE system = $1 AND NOT active', [meta.url]);
    observer.phase('committing');
    return {
      system: meta.url,
      version,
      name: meta.name,
      concepts: conceptCount,
      inactiveConcepts: inactive.rows[0]?.n ?? 0,
      relationships: counts.relationships,
      conceptMaps: outcome.conceptMaps ?? [],
      files: outcome.files,
    };
  });
}

/**
 * Stored ConceptMaps: concept_map (the normalised FHIR ConceptMap per url and version, its hash, which version is
 * active) and concept_map_element (its (source code, target code) pairs, for lookups).
 *
 * Contract:
 * - A (url, version) is loaded once. Loading it again with the same content (same content_sha256) changes nothing
 *   but making it active; with different content it is refused: a version names one content forever, because the
 *   terminology version recorded in provenance leaves names maps by (url, version, hash).
 * - At most one version per url is active (a unique index enforces it). `storeConceptMap` makes the version it
 *   stores active unless told not to; the earlier versions are kept, inactive, and can be made active again.
 * - Stores of one url are serialised by an advisory lock held to the end of the caller's transaction, so two loads
 *   of one map cannot both end up active or interleave their elements. Run them inside a transaction
 *   (`loadConceptMap` opens one).
 */
import type pg from 'pg';
import { AnchorlineError } from '../errors/index.ts';
import { withTransaction, type Queryable } from '../store/index.ts';
import { conceptMapId, conceptMapSha256, flattenConceptMap, type ConceptMapResource } from './concept-maps.ts';

/** Element rows per INSERT statement. */
const ELEMENT_BATCH_ROWS = 5_000;

export interface StoredConceptMapInfo {
  url: string;
  version: string;
  name: string | null;
  contentSha256: string;
  active: boolean;
  loadedAt: Date;
  /** (source code, target code) pairs; -1 when not counted. */
  elementCount: number;
}

export interface StoreResult {
  url: string;
  version: string;
  contentSha256: string;
  elementCount: number;
  /** false when this version was stored already (with this content). */
  created: boolean;
  active: boolean;
}

/** Loads a map in a transaction of its own (see storeConceptMap). */
export async function loadConceptMap(pool: pg.Pool, map: ConceptMapResource, options: { activate?: boolean } = {}): Promise<StoreResult> {
  return withTransaction(pool, (client) => storeConceptMap(client, map, options));
}

/** Stores a normalised map and its elements inside the caller's transaction; activates it unless activate is false. */
export async function storeConceptMap(client: pg.PoolClient, map: ConceptMapResource, options: { activate?: boolean } = {}): Promise<StoreResult> {
  const activate = options.activate ?? true;
  const contentSha256 = conceptMapSha256(map);
  await lockMap(client, map.url);
  const existing = await client.query<{ content_sha256: string; active: boolean }>('SELECT content_sha256, active FROM concept_map WHERE url = $1 AND version = $2', [map.url, map.version]);
  const flat = flattenConceptMap(map);
  let created = false;
  if (existing.rows[0]) {
    if (existing.rows[0].content_sha256 !== contentSha256) {
      throw new AnchorlineError('ANCHORLINE_ERR_INVALID_REQUEST', `ConceptMap ${map.url} version ${map.version} is loaded already with other content; give the changed map a new version`, { location: 'version' });
    }
  } else {
    await client.query('INSERT INTO concept_map (url, version, name, content, content_sha256, active) VALUES ($1, $2, $3, $4, $5, false)', [
      map.url,
      map.version,
      map.name ?? null,
      JSON.stringify(map),
      contentSha256,
    ]);
    for (let start = 0; start < flat.length; start += ELEMENT_BATCH_ROWS) {
      const batch = flat.slice(start, start + ELEMENT_BATCH_ROWS);
      await client.query(
        `INSERT INTO concept_map_element (map_url, map_version, source_system, source_code, target_system, target_code, target_display, equivalence)
         SELECT $1, $2, s, c, ts, tc, td, eq FROM unnest($3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[]) AS e(s, c, ts, tc, td, eq)`,
        [
          map.url,
          map.version,
          batch.map((m) => m.sourceSystem),
          batch.map((m) => m.sourceCode),
          batch.map((m) => m.targetSystem),
          batch.map((m) => m.targetCode),
          batch.map((m) => m.targetDisplay),
          batch.map((m) => m.equivalence),
        ],
      );
    }
    created = true;
  }
  if (activate) await setActive(client, map.url, map.version);
  return { url: map.url, version: map.version, contentSha256, elementCount: flat.length, created, active: activate || existing.rows[0]?.active === true };
}

/** Makes a stored version the active one of its url. Run inside a transaction. */
export async function activateConceptMap(client: pg.PoolClient, url: string, version: string): Promise<void> {
  await lockMap(client, url);
  const found = await client.query('SELECT 1 FROM concept_map WHERE url = $1 AND version = $2', [url, version]);
  if (found.rowCount === 0) throw new AnchorlineError('ANCHORLINE_ERR_NOT_FOUND', `ConceptMap ${url} has no version ${version}`);
  await setActive(client, url, version);
}

async function setActive(client: pg.PoolClient, url: string, version: string): Promise<void> {
  // Two statements: the unique index on the active version is checked row by row, so one UPDATE flipping both rows
  // could see two active rows half way.
  await client.query('UPDATE concept_map SET active = false WHERE url = $1 AND active AND version <> $2', [url, version]);
  await client.query('UPDATE concept_map SET active = true WHERE url = $1 AND version = $2 AND NOT active', [url, version]);
}

/** Serialises changes to the map `url` until the caller's transaction ends (re-entrant within it). */
export async function lockMap(client: pg.PoolClient, url: string): Promise<void> {
  await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`anchorline-conceptmap:${url}`]);
}

/**
 * Stored maps (without content), newest load first within a url. elementCount is counted only with withCounts
 * (it reads every element of every map listed); otherwise it is -1.
 */
export async function listConceptMaps(
  db: Queryable,
  filter: { url?: string; version?: string; activeOnly?: boolean; id?: string; withCounts?: boolean } = {},
): Promise<StoredConceptMapInfo[]> {
  const count = filter.withCounts ? '(SELECT count(*) FROM concept_map_element e WHERE e.map_url = m.url AND e.map_version = m.version)' : '-1';
  const result = await db.query<{ url: string; version: string; name: string | null; content_sha256: string; active: boolean; loaded_at: Date; element_count: number }>(
    `SELECT m.url, m.version, m.name, m.content_sha256, m.active, m.loaded_at, ${count} AS element_count
       FROM concept_map m
      WHERE ($1::text IS NULL OR m.url = $1) AND ($2::text IS NULL OR m.version = $2) AND (NOT $3 OR m.active)
      ORDER BY m.url, m.loaded_at DESC, m.version`,
    [filter.url ?? null, filter.version ?? null, filter.activeOnly ?? false],
  );
  return result.rows
    .filter((r) => filter.id === undefined || conceptMapId(r.url) === filter.id)
    .map((r) => ({ url: r.url, version: r.version, name: r.name, contentSha256: r.content_sha256, active: r.active, loadedAt: r.loaded_at, elementCount: r.element_count }));
}

/** The content of a stored map: the given version, or the active one. */
export async function readConceptMap(db: Queryable, url: string, version?: string): Promise<ConceptMapResource | undefined> {
  const result = await db.query<{ content: ConceptMapResource }>(
    version === undefined ? 'SELECT content FROM concept_map WHERE url = $1 AND active' : 'SELECT content FROM concept_map WHERE url = $1 AND version = $2',
    version === undefined ? [url] : [url, version],
  );
  return result.rows[0]?.content;
}

/** Active maps with a group from `sourceSystem`, as (url, version) with the group targets; content is not read. */
export async function activeMapsFromSource(db: Queryable, sourceSystem: string): Promise<Array<{ url: string; version: string; targetSystems: string[] }>> {
  const result = await db.query<{ url: string; version: string; target_systems: string[] }>(
    `SELECT m.url, m.version, array_agg(DISTINCT e.target_system) AS target_systems
       FROM concept_map m JOIN concept_map_element e ON e.map_url = m.url AND e.map_version = m.version
      WHERE m.active AND e.source_system = $1
      GROUP BY m.url, m.version ORDER BY m.url`,
    [sourceSystem],
  );
  return result.rows.map((r) => ({ url: r.url, version: r.version, targetSystems: r.target_systems }));
}

/** Source systems of the active maps: the systems whose codes ingest looks up. */
export async function activeSourceSystems(db: Queryable): Promise<string[]> {
  const result = await db.query<{ source_system: string }>(
    `SELECT DISTINCT e.source_system FROM concept_map m JOIN concept_map_element e ON e.map_url = m.url AND e.map_version = m.version WHERE m.active`,
  );
  return result.rows.map((r) => r.source_system);
}

/**
 * Terminology storage: code systems and their concepts, ConceptMaps and their flattened elements, the unmapped-code
 * worklist. Tables are those of store/migrations/0007_terminology.sql.
 *
 * Contract for code system loads (the release-file loaders write through these functions):
 * - A load starts with `upsertCodeSystem`, which records (url, version, name, title, sourceFormat) and, unless
 *   `keepConcepts` is set, removes the concepts and relationships of the previous load of that url: a code system holds
 *   one loaded release at a time.
 * - `insertConcepts` and `insertRelationships` write one batch each in one statement. Re-inserting a concept replaces
 *   its display, status, designations and properties (last write wins, also within one batch); re-inserting a
 *   relationship changes nothing. Batch size is the caller's choice: a few thousand rows keeps a statement's parameter
 *   under a few megabytes.
 * - `finishCodeSystem` records the concept count and the load time. A load run in one transaction is all or nothing;
 *   one spread over several is visible half-loaded until it finishes.
 * - The terminology version (`terminologyVersion`) names each code system by (url, version): a reload of the same
 *   version with different content does not change it, so loaders must give each release its own version string.
 */
import type { Queryable } from '../store/index.ts';

export interface CodeSystemMeta {
  /** Canonical URL: http://snomed.info/sct, http://loinc.org, http://www.hl7korea.or.kr/CodeSystem/kcd-8, ... */
  url: string;
  /** The release, e.g. 'http://snomed.info/sct/900000000000207008/version/20240101' or 'KCD-8 2021'. */
  version: string;
  /** A computer-friendly name (FHIR CodeSystem.name). */
  name: string;
  title?: string;
  /** What was loaded: 'snomed-rf2', 'icd10', 'kcd', 'kostom', 'loinc', 'fhir', ... */
  sourceFormat: string;
}

/** A FHIR designation: another term for the concept (another language, a synonym). */
export interface ConceptDesignation {
  language?: string;
  use?: { system?: string; code: string; display?: string };
  value: string;
}

/** A FHIR $lookup property: `code` plus exactly one value[x]. */
export interface ConceptProperty {
  code: string;
  valueCode?: string;
  valueString?: string;
  valueBoolean?: boolean;
  valueInteger?: number;
  valueDecimal?: number;
  valueDateTime?: string;
  valueCoding?: { system?: string; code: string; display?: string };
}

export interface ConceptInput {
  code: string;
  display?: string;
  /** Default true. */
  active?: boolean;
  designations?: ConceptDesignation[];
  properties?: ConceptProperty[];
}

export interface RelationshipInput {
  sourceCode: string;
  /**
   * The relationship type: a SNOMED CT typeId (116680003 is a, or an attribute), or 'is-a' for the hierarchy of other
   * systems (e.g. an ICD-10/KCD code under its category). $lookup reports IS_A_TYPES as parent and child.
   */
  typeCode: string;
  destinationCode: string;
}

export interface StoredCodeSystem {
  url: string;
  version: string;
  name: string;
  title: string | null;
  sourceFormat: string;
  conceptCount: number;
  loadedAt: Date;
}

export interface StoredConcept {
  system: string;
  code: string;
  display: string | null;
  active: boolean;
  designations: ConceptDesignation[];
  properties: ConceptProperty[];
}

/** Starts a load of a code system: records its metadata and (unless keepConcepts) clears the previous release. */
export async function upsertCodeSystem(db: Queryable, meta: CodeSystemMeta, options: { keepConcepts?: boolean } = {}): Promise<void> {
  await db.query(
    `INSERT INTO code_system (url, version, name, title, source_format, concept_count, loaded_at)
     VALUES ($1, $2, $3, $4, $5, 0, now())
     ON CONFLICT (url) DO UPDATE SET version = excluded.version, name = excluded.name, title = excluded.title,
       source_format = excluded.source_format, loaded_at = now()`,
    [meta.url, meta.version, meta.name, meta.title ?? null, meta.sourceFormat],
  );
  if (!options.keepConcepts) {
    await db.query('DELETE FROM concept_relationship WHERE system = $1', [meta.url]);
    await db.query('DELETE FROM concept WHERE system = $1', [meta.url]);
  }
}

/** Inserts or replaces a batch of concepts of `system` (which must have been started with upsertCodeSystem). */
export async function insertConcepts(db: Queryable, system: string, concepts: readonly ConceptInput[]): Promise<number> {
  if (concepts.length === 0) return 0;
  // ON CONFLICT DO UPDATE refuses to touch one row twice in a statement: keep the last of each code.
  const byCode = new Map<string, ConceptInput>();
  for (const concept of concepts) byCode.set(concept.code, concept);
  const rows = [...byCode.values()].map((c) => ({
    code: c.code,
    display: c.display ?? null,
    active: c.active ?? true,
    designations: c.designations ?? [],
    properties: c.properties ?? [],
  }));
  const result = await db.query(
    `INSERT INTO concept (system, code, display, active, designations, properties)
     SELECT $1, c.code, c.display, c.active, c.designations, c.properties
       FROM jsonb_to_recordset($2::jsonb) AS c(code text, display text, active boolean, designations jsonb, properties jsonb)
     ON CONFLICT (system, code) DO UPDATE SET display = excluded.display, active = excluded.active,
       designations = excluded.designations, properties = excluded.properties`,
    [system, JSON.stringify(rows)],
  );
  return result.rowCount ?? rows.length;
}

/** Inserts a batch of relationships of `system`; ones already stored are left as they are. */
export async function insertRelationships(db: Queryable, system: string, rows: readonly RelationshipInput[]): Promise<number> {
  if (rows.length === 0) return 0;
  const result = await db.query(
    `INSERT INTO concept_relationship (system, source_code, type_code, destination_code)
     SELECT $1, s, t, d FROM unnest($2::text[], $3::text[], $4::text[]) AS r(s, t, d)
     ON CONFLICT DO NOTHING`,
    [system, rows.map((r) => r.sourceCode), rows.map((r) => r.typeCode), rows.map((r) => r.destinationCode)],
  );
  return result.rowCount ?? 0;
}

/** Ends a load: records how many concepts the code system holds now. Returns that count. */
export async function finishCodeSystem(db: Queryable, url: string): Promise<number> {
  const result = await db.query<{ concept_count: number }>(
    `UPDATE code_system SET concept_count = (SELECT count(*) FROM concept WHERE system = $1), loaded_at = now()
      WHERE url = $1 RETURNING concept_count`,
    [url],
  );
  return result.rows[0]?.concept_count ?? 0;
}

/** SNOMED CT |Is a| (116680003), and 'is-a' for other systems: the relationship types $lookup reports as parent/child. */
export const IS_A_TYPES: readonly string[] = ['116680003', 'is-a'];

/** Loaded code systems, by url. */
export async function listCodeSystems(db: Queryable, filter: { url?: string; version?: string; name?: string } = {}): Promise<StoredCodeSystem[]> {
  const result = await db.query<{ url: string; version: string; name: string; title: string | null; source_format: string; concept_count: number; loaded_at: Date }>(
    `SELECT url, version, name, title, source_format, concept_count, loaded_at FROM code_system
      WHERE ($1::text IS NULL OR url = $1) AND ($2::text IS NULL OR version = $2) AND ($3::text IS NULL OR name = $3)
      ORDER BY url`,
    [filter.url ?? null, filter.version ?? null, filter.name ?? null],
  );
  return result.rows.map((r) => ({ url: r.url, version: r.version, name: r.name, title: r.title, sourceFormat: r.source_format, conceptCount: r.concept_count, loadedAt: r.loaded_at }));
}

/** A code system and, when it holds `code`, that concept with its is-a parents; one statement. */
export async function readConcept(db: Queryable, system: string, code: string): Promise<{ codeSystem: StoredCodeSystem; concept?: StoredConcept; parents: string[] } | undefined> {
  const result = await db.query<{
    url: string; version: string; name: string; title: string | null; source_format: string; concept_count: number; loaded_at: Date;
    code: string | null; display: string | null; active: boolean | null; designations: ConceptDesignation[] | null; properties: ConceptProperty[] | null; parents: string[];
  }>(
    `SELECT cs.url, cs.version, cs.name, cs.title, cs.source_format, cs.concept_count, cs.loaded_at,
            c.code, c.display, c.active, c.designations, c.properties,
            ARRAY(SELECT r.destination_code FROM concept_relationship r
                   WHERE c.code IS NOT NULL AND r.system = cs.url AND r.source_code = c.code AND r.type_code = ANY($3::text[])
                   ORDER BY r.destination_code) AS parents
       FROM code_system cs LEFT JOIN concept c ON c.system = cs.url AND c.code = $2
      WHERE cs.url = $1`,
    [system, code, IS_A_TYPES],
  );
  const row = result.rows[0];
  if (!row) return undefined;
  const codeSystem: StoredCodeSystem = { url: row.url, version: row.version, name: row.name, title: row.title, sourceFormat: row.source_format, conceptCount: row.concept_count, loadedAt: row.loaded_at };
  if (row.code === null) return { codeSystem, parents: [] };
  return {
    codeSystem,
    concept: { system: row.url, code: row.code, display: row.display, active: row.active ?? true, designations: row.designations ?? [], properties: row.properties ?? [] },
    parents: row.parents,
  };
}

/** Codes with an is-a relationship to `code` (its children), at most `limit`. */
export async function readChildren(db: Queryable, system: string, code: string, limit: number): Promise<string[]> {
  const result = await db.query<{ source_code: string }>(
    `SELECT source_code FROM concept_relationship WHERE system = $1 AND destination_code = $2 AND type_code = ANY($3::text[]) ORDER BY source_code LIMIT $4`,
    [system, code, IS_A_TYPES, limit],
  );
  return result.rows.map((r) => r.source_code);
}

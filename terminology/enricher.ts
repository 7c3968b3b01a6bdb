/**
 * Terminology in the ingest transaction: every CodeableConcept coding whose system is the source system of an active
 * ConceptMap is looked up, the standard codings its maps give are added to the same `coding` array right after it
 * (the sender's coding stays, first), and codes the maps do not know go to the unmapped-code worklist. An unmapped
 * code never fails a message.
 *
 * Cost: one statement per call, whatever the number of messages and codings. It reads the terminology version, looks
 * up every (system, code) pair of the batch, and records the unmapped ones (unmapped_code and unmapped_code_message)
 * in one round trip. Which systems are looked up at all is cached in the process together with the terminology
 * version it was read at; the statement compares that version with the tables' and, when a map changed in between,
 * writes nothing and says so, and the call refreshes the cache (one more statement) and runs again.
 *
 * Only codings inside a `coding` array (a CodeableConcept) are considered: a lone Coding (Encounter.class) has no
 * place for a second coding beside it, and replacing it would drop what the sender sent.
 *
 * Drafts are changed in place at their top-level elements; nested objects and arrays on the way to a changed
 * `coding` array are copied, never mutated, because mappers may share constant objects between drafts.
 */
import type pg from 'pg';
import type { Logger } from '../config/logger.ts';
import { AnchorlineError } from '../errors/index.ts';
import { NON_MATCHING_EQUIVALENCES } from './concept-maps.ts';
import { TERMINOLOGY_VERSION_SQL } from './version.ts';

/** What the ingest job hands over per message; structurally the ingest worker's TerminologyEnricher input. */
export interface EnrichItem {
  messageId: number;
  /** The mapping configuration the message went through; its name is the worklist's `source`. */
  mapping: { name: string };
  drafts: Array<{ resourceType: string; id: string; [element: string]: unknown }>;
}

export interface TerminologyEnricher {
  /** Adds standard codings to the drafts in place and records unmapped codes; returns the terminology version. */
  enrich(client: pg.PoolClient, items: EnrichItem[]): Promise<string>;
}

export interface TerminologyEnricherOptions {
  log?: Logger;
}

interface Coding {
  system: string;
  code: string;
  display?: string;
}

/** Rounds of "maps changed, refresh, run again" before the batch is failed (and retried by the queue). */
const MAX_REFRESHES = 3;

const REFRESH_SQL = `
  SELECT (${TERMINOLOGY_VERSION_SQL}) AS version,
         ARRAY(SELECT DISTINCT e.source_system FROM concept_map m
                 JOIN concept_map_element e ON e.map_url = m.url AND e.map_version = m.version WHERE m.active) AS systems`;

/**
 * $1..$6: one row per (message, system, code, source) with the sender's display and how often it occurred;
 * $7: the terminology version the caller's cache was read at. Writes only when that is still the version.
 * $8: the equivalences whose targets are not added. Unmapped rows are written in key order, so concurrent batches lock
 * them in the same order. Targets come back in a byte-wise order, so a message maps to the same resource anywhere.
 */
const ENRICH_SQL = `
  WITH stamp AS (${TERMINOLOGY_VERSION_SQL}),
  fresh AS (SELECT (SELECT version FROM stamp) = $7 AS ok),
  input AS (
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::int[]) AS i(system, code, display, source, message_id, n)
     WHERE (SELECT ok FROM fresh)),
  pairs AS (SELECT DISTINCT system, code FROM input),
  known AS (
    SELECT e.*
      FROM pairs p
      CROSS JOIN LATERAL (
        SELECT e.source_system, e.source_code, e.target_system, e.target_code, e.target_display, e.equivalence, e.map_url
          FROM concept_map_element e JOIN concept_map m ON m.url = e.map_url AND m.version = e.map_version AND m.active
         WHERE e.source_system = p.system AND e.source_code = p.code
        -- OFFSET 0 keeps this a per-pair index lookup: the planner cannot estimate the pairs of an unnest and may
        -- otherwise hash the whole element table (millions of rows with SNOMED CT maps) for a batch of a few hundred.
        OFFSET 0) e),
  missing AS (
    SELECT i.* FROM input i WHERE NOT EXISTS (SELECT 1 FROM known k WHERE k.source_system = i.system AND k.source_code = i.code)),
  counted AS (
    INSERT INTO unmapped_code (system, code, display, source, occurrences)
    SELECT system, code, max(display), source, sum(n) FROM missing GROUP BY system, code, source ORDER BY system, code, source
    ON CONFLICT (system, code, source) DO UPDATE
       SET occurrences = unmapped_code.occurrences + excluded.occurrences, last_seen = now(),
           display = coalesce(excluded.display, unmapped_code.display), resolved_at = NULL),
  linked AS (
    INSERT INTO unmapped_code_message (system, code, message_id)
    SELECT DISTINCT system, code, message_id FROM missing ORDER BY system, code, message_id
    ON CONFLICT DO NOTHING)
  SELECT (SELECT version FROM stamp) AS version, (SELECT ok FROM fresh) AS fresh,
         coalesce((SELECT json_agg(json_build_array(source_system, source_code, target_system, target_code, target_display)
                                   ORDER BY source_system COLLATE "C", source_code COLLATE "C", map_url COLLATE "C",
                                            target_system COLLATE "C", target_code COLLATE "C")
                     FROM known WHERE target_code <> '' AND equivalence <> ALL($8::text[])), '[]') AS matches`;

export function createTerminologyEnricher(options: TerminologyEnricherOptions = {}): TerminologyEnricher {
  return new ConceptMapEnricher(options);
}

class ConceptMapEnricher implements TerminologyEnricher {
  private readonly log: Logger | undefined;
  /** The terminology version `sourceSystems` was read at; undefined until the first call. */
  private version: string | undefined;
  private sourceSystems = new Set<string>();

  constructor(options: TerminologyEnricherOptions) {
    this.log = options.log;
  }

  async enrich(client: pg.PoolClient, items: EnrichItem[]): Promise<string> {
    if (this.version === undefined) await this.refresh(client);
    for (let round = 0; round <= MAX_REFRESHES; round++) {
      const occurrences = collectOccurrences(items, this.sourceSystems);
      const rows = [...occurrences.values()];
      const result = await client.query<{ version: string; fresh: boolean; matches: Array<[string, string, string, string, string | null]> }>(ENRICH_SQL, [
        rows.map((r) => r.system),
        rows.map((r) => r.code),
        rows.map((r) => r.display ?? null),
        rows.map((r) => r.source),
        rows.map((r) => r.messageId),
        rows.map((r) => r.n),
        this.version,
        [...NON_MATCHING_EQUIVALENCES],
      ]);
      const row = result.rows[0]!;
      if (row.fresh) {
        if (row.matches.length > 0) addTranslations(items, translationsOf(row.matches));
        return row.version;
      }
      await this.refresh(client);
    }
    throw new AnchorlineError('ANCHORLINE_ERR_INTERNAL', 'terminology changed during every attempt to read it');
  }

  private async refresh(client: pg.PoolClient): Promise<void> {
    const result = await client.query<{ version: string; systems: string[] }>(REFRESH_SQL);
    const row = result.rows[0]!;
    this.version = row.version;
    this.sourceSystems = new Set(row.systems);
    this.log?.info({ terminologyVersion: row.version, mappedSourceSystems: row.systems.length }, 'terminology: active ConceptMaps read');
  }
}

interface Occurrence {
  messageId: number;
  system: string;
  code: string;
  source: string;
  display: string | undefined;
  n: number;
}

function isCoding(value: unknown): value is Coding {
  return typeof value === 'object' && value !== null && typeof (value as Coding).system === 'string' && typeof (value as Coding).code === 'string';
}

function pairKey(system: string, code: string): string {
  return `${system}\u0000${code}`;
}

/** Every coding of every CodeableConcept in the drafts whose system is looked up, counted per message. */
function collectOccurrences(items: EnrichItem[], sourceSystems: ReadonlySet<string>): Map<string, Occurrence> {
  const occurrences = new Map<string, Occurrence>();
  if (sourceSystems.size === 0) return occurrences;
  for (const item of items) {
    const visit = (coding: Coding): void => {
      if (!sourceSystems.has(coding.system) || coding.code === '') return;
      const key = `${item.messageId}\u0000${pairKey(coding.system, coding.code)}\u0000${item.mapping.name}`;
      const seen = occurrences.get(key);
      if (seen) {
        seen.n++;
        if (typeof coding.display === 'string') seen.display = coding.display;
      } else {
        occurrences.set(key, {
          messageId: item.messageId,
          system: coding.system,
          code: coding.code,
          source: item.mapping.name,
          display: typeof coding.display === 'string' ? coding.display : undefined,
          n: 1,
        });
      }
    };
    for (const draft of item.drafts) walkCodings(draft, visit, 0);
  }
  return occurrences;
}

/** Deep enough for any FHIR resource; deeper structures are not resources and are left alone. */
const MAX_DEPTH = 64;

function walkCodings(value: unknown, visit: (coding: Coding) => void, depth: number): void {
  if (depth > MAX_DEPTH || typeof value !== 'object' || value === null) return;
  if (Array.isArray(value)) {
    for (const element of value) walkCodings(element, visit, depth + 1);
    return;
  }
  for (const [key, child] of Object.entries(value)) {
    if (key === 'coding' && Array.isArray(child)) {
      for (const coding of child) if (isCoding(coding)) visit(coding);
    } else {
      walkCodings(child, visit, depth + 1);
    }
  }
}

function translationsOf(matches: Array<[string, string, string, string, string | null]>): Map<string, Coding[]> {
  const translations = new Map<string, Coding[]>();
  for (const [sourceSystem, sourceCode, targetSystem, targetCode, targetDisplay] of matches) {
    const key = pairKey(sourceSystem, sourceCode);
    let targets = translations.get(key);
    if (!targets) translations.set(key, (targets = []));
    targets.push(targetDisplay === null ? { system: targetSystem, code: targetCode } : { system: targetSystem, code: targetCode, display: targetDisplay });
  }
  return translations;
}

function addTranslations(items: EnrichItem[], translations: Map<string, Coding[]>): void {
  for (const item of items) {
    for (const draft of item.drafts) {
      for (const [key, value] of Object.entries(draft)) {
        if (key === 'resourceType' || key === 'id') continue;
        const rewritten = rewrite(value, translations, 0);
        if (rewritten !== value) draft[key] = rewritten;
      }
    }
  }
}

/** `value` with translations added to its coding arrays: the same object when nothing changed, else a copy. */
function rewrite(value: unknown, translations: Map<string, Coding[]>, depth: number): unknown {
  if (depth > MAX_DEPTH || typeof value !== 'object' || value === null) return value;
  if (Array.isArray(value)) {
    let copy: unknown[] | undefined;
    value.forEach((element, i) => {
      const next = rewrite(element, translations, depth + 1);
      if (next !== element) (copy ??= [...value])[i] = next;
    });
    return copy ?? value;
  }
  let copy: Record<string, unknown> | undefined;
  for (const [key, child] of Object.entries(value)) {
    const next = key === 'coding' && Array.isArray(child) ? withTranslations(child, translations) : rewrite(child, translations, depth + 1);
    if (next !== child) (copy ??= { ...value })[key] = next;
  }
  return copy ?? value;
}

/** The codings with each one's translations right after it, skipping any coding the array holds already. */
function withTranslations(codings: unknown[], translations: Map<string, Coding[]>): unknown[] {
  const present = new Set<string>();
  for (const coding of codings) if (isCoding(coding)) present.add(pairKey(coding.system, coding.code));
  const out: unknown[] = [];
  let added = false;
  for (const coding of codings) {
    out.push(coding);
    if (!isCoding(coding)) continue;
    for (const target of translations.get(pairKey(coding.system, coding.code)) ?? []) {
      const key = pairKey(target.system, target.code);
      if (present.has(key)) continue;
      present.add(key);
      out.push({ ...target });
      added = true;
    }
  }
  return added ? out : codings;
}

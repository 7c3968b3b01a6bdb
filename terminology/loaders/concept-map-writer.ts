/**
 * Writing a ConceptMap that is produced row by row from a release file (KOSTOM -> SNOMED CT, KOSTOM -> KCD) without
 * holding the map in memory.
 *
 * concept_map.content must be the whole FHIR R4 ConceptMap and content_sha256 the SHA-256 of its RFC 8785 canonical
 * JSON. Both are built without the element list in memory:
 * - Elements are staged in a temporary table, in file order, a batch at a time; at the end one statement builds the
 *   content (jsonb_agg in file order) and another flattens the elements into concept_map_element.
 * - The hash is computed as the rows go by. The canonical form of the map with an empty element list is split at
 *   its `"element":[]` (the one place those bytes can occur: inside strings, quotes are escaped) and the canonical
 *   form of each element, comma-separated, is hashed in between. That is byte for byte the canonical form of the
 *   finished map, because canonical JSON keeps array order and sorts keys within each object independently.
 *
 * Versions follow the ConceptMap store's contract (../concept-map-store.ts): a (url, version) names one content for
 * good, since provenance records maps by (url, version, hash). Loading a version that is stored with the same hash
 * only makes it active again; with another hash it is refused (the release needs a new version). A new version is
 * stored and made the active one, the previous active version of the url kept inactive. Changes to one url are
 * serialised by the store's lock. A map that ends with no element is not stored (a FHIR R4 group needs one).
 */
import { createHash, type Hash } from 'node:crypto';
import { canonicalize } from '../../anchor/index.ts';
import type { PoolClient } from '../../store/index.ts';
import { activateConceptMap, lockMap } from '../concept-map-store.ts';
import { conceptMapId, type ConceptMapElement } from '../concept-maps.ts';
import { TerminologyLoadError } from './errors.ts';
import type { ConceptMapSummary } from './load.ts';

export interface StreamedConceptMapHeader {
  url: string;
  version: string;
  name: string;
  title: string;
  description?: string;
  sourceSystem: string;
  sourceVersion?: string;
  targetSystem: string;
  /** The release file, for error messages. */
  file: string;
}

const STAGING_TABLE = 'terminology_load_map_element';

interface StagedElement {
  seq: number;
  line: number;
  code: string;
  element: ConceptMapElement;
}

export class StreamedConceptMap {
  private readonly db: PoolClient;
  private readonly header: StreamedConceptMapHeader;
  private readonly batchSize: number;
  /** The map with an empty element list, as stored before the elements are put in. */
  private readonly envelope: object;
  /** content_sha256 of this (url, version) when it is stored already. */
  private readonly storedSha256: string | undefined;
  private readonly hash: Hash = createHash('sha256');
  /** The canonical text after the element list. */
  private readonly suffix: string;
  private staged: StagedElement[] = [];
  private count = 0;

  private constructor(db: PoolClient, header: StreamedConceptMapHeader, batchSize: number, envelope: object, storedSha256: string | undefined, prefix: string, suffix: string) {
    this.db = db;
    this.header = header;
    this.batchSize = batchSize;
    this.envelope = envelope;
    this.storedSha256 = storedSha256;
    this.hash.update(prefix, 'utf8');
    this.suffix = suffix;
  }

  static async begin(db: PoolClient, header: StreamedConceptMapHeader, batchSize: number): Promise<StreamedConceptMap> {
    const envelope = {
      resourceType: 'ConceptMap',
      id: conceptMapId(header.url),
      url: header.url,
      version: header.version,
      name: header.name,
      title: header.title,
      status: 'active',
      ...(header.description ? { description: header.description } : {}),
      group: [
        {
          source: header.sourceSystem,
          ...(header.sourceVersion ? { sourceVersion: header.sourceVersion } : {}),
          target: header.targetSystem,
          element: [],
        },
      ],
    };
    const canonical = canonicalize(envelope);
    const marker = '"element":[]';
    const at = canonical.indexOf(marker);
    if (at < 0 || canonical.indexOf(marker, at + 1) >= 0) throw new Error('canonical ConceptMap envelope has no single element list');
    const prefix = canonical.slice(0, at + marker.length - 1);
    const suffix = canonical.slice(at + marker.length - 1);

    await lockMap(db, header.url);
    const stored = await db.query<{ content_sha256: string }>('SELECT content_sha256 FROM concept_map WHERE url = $1 AND version = $2', [header.url, header.version]);
    await db.query(`CREATE TEMP TABLE IF NOT EXISTS ${STAGING_TABLE} (
      map_url text NOT NULL, seq bigint NOT NULL, line integer NOT NULL, code text NOT NULL, element jsonb NOT NULL) ON COMMIT DROP`);
    await db.query(`DELETE FROM ${STAGING_TABLE} WHERE map_url = $1`, [header.url]);
    return new StreamedConceptMap(db, header, batchSize, envelope, stored.rows[0]?.content_sha256, prefix, suffix);
  }

  /** Adds the element for one source code (read at `line` of the release file). */
  async add(element: ConceptMapElement, line: number): Promise<void> {
    this.hash.update(this.count === 0 ? canonicalize(element) : `,${canonicalize(element)}`, 'utf8');
    this.count++;
    this.staged.push({ seq: this.count, line, code: element.code, element });
    if (this.staged.length >= this.batchSize) await this.flush();
  }

  private async flush(): Promise<void> {
    if (this.staged.length === 0) return;
    const batch = this.staged;
    this.staged = [];
    await this.db.query(
      `INSERT INTO ${STAGING_TABLE} (map_url, seq, line, code, element)
       SELECT $1, r.seq, r.line, r.code, r.element FROM jsonb_to_recordset($2::jsonb) AS r(seq bigint, line integer, code text, element jsonb)`,
      [this.header.url, JSON.stringify(batch)],
    );
  }

  /** Completes the content and hash, stores the map and its elements (unless stored already) and activates it. */
  async finish(): Promise<ConceptMapSummary | undefined> {
    await this.flush();
    const { url, version } = this.header;
    if (this.count === 0) return undefined;
    const repeated = await this.db.query<{ code: string; lines: number[] }>(
      `SELECT code, array_agg(line ORDER BY seq) AS lines FROM ${STAGING_TABLE} WHERE map_url = $1
        GROUP BY code HAVING count(*) > 1 ORDER BY min(seq) LIMIT 1`,
      [url],
    );
    const duplicate = repeated.rows[0];
    if (duplicate) {
      throw new TerminologyLoadError(this.header.file, duplicate.lines[1] ?? 0, `code ${duplicate.code} appears again (first on line ${duplicate.lines[0]}); a map needs one row per source code`);
    }
    this.hash.update(this.suffix, 'utf8');
    const contentSha256 = this.hash.digest('hex');
    if (this.storedSha256 !== undefined && this.storedSha256 !== contentSha256) {
      throw new TerminologyLoadError(this.header.file, 0, `ConceptMap ${url} version ${version} is loaded already with other content; give this release a new version (--version)`);
    }
    const created = this.storedSha256 === undefined;
    if (created) {
      await this.db.query(
        `INSERT INTO concept_map (url, version, name, content, content_sha256, active)
         SELECT $1, $2, $3, jsonb_set($4::jsonb, '{group,0,element}', jsonb_agg(element ORDER BY seq)), $5, false
           FROM ${STAGING_TABLE} WHERE map_url = $1`,
        [url, version, this.header.name, JSON.stringify(this.envelope), contentSha256],
      );
      await this.db.query(
        `INSERT INTO concept_map_element (map_url, map_version, source_system, source_code, target_system, target_code, target_display, equivalence)
         SELECT $1, $2, $3, s.code, $4, COALESCE(t.value->>'code', ''), t.value->>'display', t.value->>'equivalence'
           FROM ${STAGING_TABLE} s CROSS JOIN LATERAL jsonb_array_elements(s.element->'target') AS t(value)
          WHERE s.map_url = $1`,
        [url, version, this.header.sourceSystem, this.header.targetSystem],
      );
    }
    await activateConceptMap(this.db, url, version);
    await this.db.query(`DELETE FROM ${STAGING_TABLE} WHERE map_url = $1`, [url]);
    return { url, version, elements: this.count, contentSha256, created };
  }
}

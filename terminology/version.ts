/**
 * The terminology version: what a provenance leaf's `terminologyVersion` records, naming the exact terminology a
 * resource version was mapped with.
 *
 * It is `sha256:` and the lowercase hex SHA-256 of the UTF-8 preimage made of one line per active ConceptMap,
 * `ConceptMap|<url>|<version>|<content_sha256>`, sorted by url, then one line per loaded code system,
 * `CodeSystem|<url>|<version>`, sorted by url (byte order), all joined with '\n'. With no active map and no code
 * system loaded it is `none`, as when no terminology is used at all. An auditor holding the maps can recompute it;
 * the map contents are bound through their hashes, the code systems by their release versions.
 */
import { sha256Hex } from '../anchor/index.ts';
import type { Queryable } from '../store/index.ts';

/** SQL computing the version from the tables, as one column `version`; kept beside terminologyVersionOf, which it must match. */
export const TERMINOLOGY_VERSION_SQL = `
  SELECT CASE WHEN m.lines IS NULL AND c.lines IS NULL THEN 'none'
              ELSE 'sha256:' || encode(sha256(convert_to(concat_ws(E'\\n', m.lines, c.lines), 'UTF8')), 'hex') END AS version
    FROM (SELECT string_agg('ConceptMap|' || url || '|' || version || '|' || content_sha256, E'\\n' ORDER BY url COLLATE "C") AS lines
            FROM concept_map WHERE active) m,
         (SELECT string_agg('CodeSystem|' || url || '|' || version, E'\\n' ORDER BY url COLLATE "C") AS lines
            FROM code_system) c`;

export interface VersionedMap {
  url: string;
  version: string;
  contentSha256: string;
}

export interface VersionedCodeSystem {
  url: string;
  version: string;
}

const utf8 = new TextEncoder();

function byUtf8(a: { url: string }, b: { url: string }): number {
  return Buffer.compare(Buffer.from(a.url, 'utf8'), Buffer.from(b.url, 'utf8'));
}

/** The version from the active maps and loaded code systems (the same computation as TERMINOLOGY_VERSION_SQL). */
export function terminologyVersionOf(activeMaps: readonly VersionedMap[], codeSystems: readonly VersionedCodeSystem[]): string {
  if (activeMaps.length === 0 && codeSystems.length === 0) return 'none';
  const lines = [
    ...[...activeMaps].sort(byUtf8).map((m) => `ConceptMap|${m.url}|${m.version}|${m.contentSha256}`),
    ...[...codeSystems].sort(byUtf8).map((c) => `CodeSystem|${c.url}|${c.version}`),
  ];
  return `sha256:${sha256Hex(utf8.encode(lines.join('\n')))}`;
}

/** The current terminology version, read in one statement. */
export async function readTerminologyVersion(db: Queryable): Promise<string> {
  const result = await db.query<{ version: string }>(TERMINOLOGY_VERSION_SQL);
  return result.rows[0]!.version;
}

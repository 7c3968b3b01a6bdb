/**
 * Stored mapping configurations: the content behind each provenance leaf's `mappingSha256`.
 *
 * Contract:
 * - A configuration is keyed by its digest, the lowercase hex SHA-256 of its RFC 8785 canonical JSON
 *   (`mappingConfigSha256`). `recordMappingConfig` computes the digest itself, so a row can never be stored under a
 *   digest other than its content's.
 * - Recording is idempotent: recording a configuration that is already stored changes nothing (ON CONFLICT DO
 *   NOTHING), also when two transactions record it at once. Rows are never updated or deleted by the engine.
 * - Run it in the transaction that appends the leaves naming the configuration, so that a leaf is never committed
 *   without it. A caller that remembers what it recorded must remember only after that transaction commits.
 * - jsonb does not keep key order or number spelling; the canonical JSON of the content read back equals that of the
 *   content recorded (mapping configurations hold strings and objects of strings), so re-hashing what is read back
 *   with `mappingConfigSha256` gives the digest it is stored under, unless the row was altered.
 */
import { canonicalBytes, sha256Hex } from '../anchor/index.ts';
import type { Queryable } from './db.ts';

/** Lowercase hex SHA-256 of the canonical JSON of a mapping configuration: what LeafPreimage.mappingSha256 holds. */
export function mappingConfigSha256(content: unknown): string {
  return sha256Hex(canonicalBytes(content));
}

/** Stores `content` under its digest unless it is stored already; returns the digest. */
export async function recordMappingConfig(db: Queryable, content: unknown): Promise<string> {
  const sha256 = mappingConfigSha256(content);
  await db.query('INSERT INTO mapping_config (sha256, content) VALUES ($1, $2) ON CONFLICT (sha256) DO NOTHING', [sha256, JSON.stringify(content)]);
  return sha256;
}

/** The stored content of each digest in `digests` that is stored (absent ones are missing from the map). */
export async function mappingConfigsByDigest(db: Queryable, digests: readonly string[]): Promise<Map<string, unknown>> {
  if (digests.length === 0) return new Map();
  const result = await db.query<{ sha256: string; content: unknown }>('SELECT sha256, content FROM mapping_config WHERE sha256 = ANY($1::text[])', [digests]);
  return new Map(result.rows.map((row) => [row.sha256, row.content]));
}

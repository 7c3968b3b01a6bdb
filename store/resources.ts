/**
 * FHIR resources with full version history.
 *
 * Contract:
 * - The store owns `meta.versionId` and `meta.lastUpdated`: every write makes version N+1 of the resource (1 for a
 *   new one), stamps both, keeps the current version in `fhir_resource` and appends it to `fhir_resource_history`.
 *   History rows are never updated.
 * - Writers call `lockCurrent` first, inside their transaction: it takes a row lock on the current version (or, for
 *   a resource that does not exist yet, an advisory lock on its key), so concurrent writers of one resource queue up
 *   and each sees the version the other wrote. A writer retried after a failed transaction may assume nothing of the
 *   failed attempt was written.
 * - Search index rows are rebuilt for a resource on each write, in the same transaction.
 */
import type pg from 'pg';
import type { Queryable } from './db.ts';
import { normaliseSearchString, searchEntries } from './search-index.ts';

export interface StoredResource {
  resourceType: string;
  id: string;
  versionId: number;
  lastUpdated: Date;
  content: Record<string, unknown>;
  deleted: boolean;
}

function toStored(row: Record<string, unknown>): StoredResource {
  return {
    resourceType: row.resource_type as string,
    id: row.id as string,
    versionId: row.version_id as number,
    lastUpdated: row.last_updated as Date,
    content: row.content as Record<string, unknown>,
    deleted: row.deleted as boolean,
  };
}

/** The current version, locked for update until the transaction ends. */
export async function lockCurrent(client: pg.PoolClient, resourceType: string, id: string): Promise<StoredResource | undefined> {
  // Serialises writers of a resource that does not exist yet: a row lock needs a row.
  await client.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [`${resourceType}/${id}`]);
  const result = await client.query(
    'SELECT resource_type, id, version_id, last_updated, content, deleted FROM fhir_resource WHERE resource_type = $1 AND id = $2 FOR UPDATE',
    [resourceType, id],
  );
  return result.rows[0] ? toStored(result.rows[0]) : undefined;
}

/**
 * Writes the next version. `previous` is what lockCurrent returned in this transaction. `content` must carry
 * resourceType and id; its meta is replaced by the store's.
 */
export async function writeVersion(
  client: pg.PoolClient,
  previous: StoredResource | undefined,
  content: Record<string, unknown>,
  sourceMessageId: number | null,
  now: Date = new Date(),
): Promise<StoredResource> {
  const resourceType = content.resourceType as string;
  const id = content.id as string;
  const versionId = (previous?.versionId ?? 0) + 1;
  // lastUpdated must move forward even if the clock does not (two writes in the same millisecond, clock skew).
  const lastUpdated = previous && previous.lastUpdated.getTime() >= now.getTime() ? new Date(previous.lastUpdated.getTime() + 1) : now;
  const oldMeta = (content.meta as Record<string, unknown> | undefined) ?? {};
  const stamped: Record<string, unknown> = {
    resourceType,
    id,
    meta: { ...oldMeta, versionId: String(versionId), lastUpdated: lastUpdated.toISOString() },
    ...Object.fromEntries(Object.entries(content).filter(([k]) => k !== 'resourceType' && k !== 'id' && k !== 'meta')),
  };
  await client.query(
    `INSERT INTO fhir_resource (resource_type, id, version_id, last_updated, content, deleted) VALUES ($1, $2, $3, $4, $5, false)
     ON CONFLICT (resource_type, id) DO UPDATE SET version_id = EXCLUDED.version_id, last_updated = EXCLUDED.last_updated,
       content = EXCLUDED.content, deleted = false`,
    [resourceType, id, versionId, lastUpdated, stamped],
  );
  await client.query(
    `INSERT INTO fhir_resource_history (resource_type, id, version_id, last_updated, content, deleted, source_message_id)
     VALUES ($1, $2, $3, $4, $5, false, $6)`,
    [resourceType, id, versionId, lastUpdated, stamped, sourceMessageId],
  );
  await reindex(client, resourceType, id, stamped);
  return { resourceType, id, versionId, lastUpdated, content: stamped, deleted: false };
}

async function reindex(client: pg.PoolClient, resourceType: string, id: string, content: Record<string, unknown>): Promise<void> {
  const { tokens, strings } = searchEntries(content);
  await client.query(
    `WITH gone_t AS (DELETE FROM fhir_search_token WHERE resource_type = $1 AND id = $2),
          gone_s AS (DELETE FROM fhir_search_string WHERE resource_type = $1 AND id = $2),
          new_t AS (INSERT INTO fhir_search_token (resource_type, id, param, system, code)
                    SELECT $1, $2, * FROM unnest($3::text[], $4::text[], $5::text[]))
     INSERT INTO fhir_search_string (resource_type, id, param, value) SELECT $1, $2, * FROM unnest($6::text[], $7::text[])`,
    [resourceType, id, tokens.map((t) => t.param), tokens.map((t) => t.system), tokens.map((t) => t.code), strings.map((s) => s.param), strings.map((s) => s.value)],
  );
}

export async function readCurrent(db: Queryable, resourceType: string, id: string): Promise<StoredResource | undefined> {
  const result = await db.query(
    'SELECT resource_type, id, version_id, last_updated, content, deleted FROM fhir_resource WHERE resource_type = $1 AND id = $2',
    [resourceType, id],
  );
  return result.rows[0] ? toStored(result.rows[0]) : undefined;
}

export async function readVersion(db: Queryable, resourceType: string, id: string, versionId: number): Promise<StoredResource | undefined> {
  const result = await db.query(
    `SELECT resource_type, id, version_id, last_updated, content, deleted FROM fhir_resource_history
      WHERE resource_type = $1 AND id = $2 AND version_id = $3`,
    [resourceType, id, versionId],
  );
  return result.rows[0] ? toStored(result.rows[0]) : undefined;
}

/** Versions of one resource, newest first. */
export async function readHistory(db: Queryable, resourceType: string, id: string, options: { count: number; offset: number; since?: Date }): Promise<{ total: number; versions: StoredResource[] }> {
  const params: unknown[] = [resourceType, id];
  let where = 'resource_type = $1 AND id = $2';
  if (options.since) {
    params.push(options.since);
    where += ` AND last_updated >= $${params.length}`;
  }
  const total = (await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM fhir_resource_history WHERE ${where}`, params)).rows[0]?.n ?? 0;
  const rows = await db.query(
    `SELECT resource_type, id, version_id, last_updated, content, deleted FROM fhir_resource_history WHERE ${where}
      ORDER BY version_id DESC LIMIT ${Number(options.count)} OFFSET ${Number(options.offset)}`,
    params,
  );
  return { total, versions: rows.rows.map(toStored) };
}

/** One search criterion; all criteria of a search must hold (AND), the values of one criterion are alternatives (OR). */
export type SearchCriterion =
  | { kind: 'token'; param: string; values: Array<{ system?: string; code: string }> }
  | { kind: 'string'; param: string; values: string[]; exact: boolean }
  | { kind: 'id'; values: string[] };

export async function searchResources(
  db: Queryable,
  resourceType: string,
  criteria: SearchCriterion[],
  options: { count: number; offset: number },
): Promise<{ total: number; resources: StoredResource[] }> {
  const params: unknown[] = [resourceType];
  const conditions: string[] = ['r.resource_type = $1', 'NOT r.deleted'];
  const p = (value: unknown): string => {
    params.push(value);
    return `$${params.length}`;
  };
  for (const criterion of criteria) {
    if (criterion.kind === 'id') {
      conditions.push(`r.id = ANY(${p(criterion.values)}::text[])`);
    } else if (criterion.kind === 'token') {
      const alternatives = criterion.values.map((v) =>
        v.system === undefined ? `t.code = ${p(v.code)}` : `(t.code = ${p(v.code)} AND t.system = ${p(v.system)})`,
      );
      conditions.push(`EXISTS (SELECT 1 FROM fhir_search_token t WHERE t.resource_type = r.resource_type AND t.id = r.id
        AND t.param = ${p(criterion.param)} AND (${alternatives.join(' OR ')}))`);
    } else {
      const alternatives = criterion.values.map((v) => {
        const normalised = normaliseSearchString(v);
        return criterion.exact ? `s.value = ${p(normalised)}` : `s.value LIKE ${p(escapeLike(normalised) + '%')}`;
      });
      conditions.push(`EXISTS (SELECT 1 FROM fhir_search_string s WHERE s.resource_type = r.resource_type AND s.id = r.id
        AND s.param = ${p(criterion.param)} AND (${alternatives.join(' OR ')}))`);
    }
  }
  const where = conditions.join(' AND ');
  const total = (await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM fhir_resource r WHERE ${where}`, params)).rows[0]?.n ?? 0;
  const rows = await db.query(
    `SELECT r.resource_type, r.id, r.version_id, r.last_updated, r.content, r.deleted FROM fhir_resource r WHERE ${where}
      ORDER BY r.last_updated DESC, r.id LIMIT ${Number(options.count)} OFFSET ${Number(options.offset)}`,
    params,
  );
  return { total, resources: rows.rows.map(toStored) };
}

function escapeLike(value: string): string {
  return value.replace(/[\\%_]/g, (c) => `\\${c}`);
}

/**
 * FHIR resources with full version history.
 *
 * Contract:
 * - The store owns `meta.versionId` and `meta.lastUpdated`: every write makes version N+1 of the resource (1 for a
 *   new one), stamps both, keeps the current version in `fhir_resource` and appends it to `fhir_resource_history`.
 *   History rows are never updated.
 * - Writers call `lockCurrent` first, inside their transaction: it takes row locks on the current versions, so
 *   concurrent writers of one resource queue up and each sees the version the other wrote. Or they read with
 *   `readCurrentMany`, and before writing lock what they write with `lockVersions` and check it is still at the
 *   version they read (the ingest job: most resources a message names stay as they are and need no lock). Two
 *   writers creating the same new resource collide on the history key and one transaction fails (a retryable error).
 *   A writer retried after a failed transaction may assume nothing of the failed attempt was written.
 * - Search index rows, and the index of literal references between current resources (fhir_reference), are
 *   rebuilt for a resource on each write, in the same transaction.
 * - Each version records the mapping configuration version and the source message it was made from, and the
 *   resource keeps the time of the latest event applied to it (event_time), by which the ingest job keeps an older
 *   message from overwriting a newer state.
 * - Content keeps its numbers as written: it is written with stringifyJson and read with LOSSLESS_JSON_TYPES, so a
 *   decimal `5.40` or a long `12345678901234567890` (LosslessNumbers, anchor/json.ts) comes back as it went in;
 *   jsonb itself keeps both. Every query that reads `content` passes `types: LOSSLESS_JSON_TYPES`.
 * - Versions of a patient's records (store/keys.ts sealingPatientOf) are sealed under that patient's key when the
 *   pool's keyring seals: `content` NULL, `sealed` and `key_id` set. Every reader here selects the sealed columns
 *   and opens them before toStored, so callers get plaintext as before; a version whose key was destroyed (an
 *   erasure) reads as deleted, with `erased` set and no content but its type, id and meta. History rows are never
 *   updated, but for an erasure's cleanup, which leaves them as they are and destroys their key, and a patient key
 *   rotation (store/patient-key-rotation.ts), which re-seals the same plaintext under the patient's next key.
 */
import type pg from 'pg';
import { stringifyJson } from '../anchor/index.ts';
import { AnchorlineError } from '../errors/index.ts';
import { changesPatient } from './compartment.ts';
import { LOSSLESS_JSON_TYPES, preparedName, type Queryable } from './db.ts';
import { blindIndexOf, noteVocabulary, unknownVocabulary, type BlindStringRow, type BlindTokenRow, type BlindVocabularyRow } from './blind-index.ts';
import { everyAuditEventMatches } from './search-index.ts';
import { keyringOf, openVersionRows, sealingPatientOf, sealVersion, type PatientKey, type VersionRow } from './keys.ts';

export interface StoredResource {
  resourceType: string;
  id: string;
  versionId: number;
  lastUpdated: Date;
  content: Record<string, unknown>;
  deleted: boolean;
  /** The time of the latest event applied to the resource (see migration 0006); set by lockCurrent and stampVersion. */
  eventTime?: Date | null;
  /** The version was sealed under a patient key that an erasure destroyed: `deleted`, and its content is gone. */
  erased?: boolean;
}

/**
 * jsonb keeps keys in its own order (shortest first); readers expect resourceType, id and meta to lead, as FHIR
 * examples and every other server write them. Order carries no meaning, so this is only for people reading it.
 */
function resourceTypeFirst(content: Record<string, unknown>): Record<string, unknown> {
  const { resourceType, id, meta, ...rest } = content;
  return { resourceType, id, meta, ...rest };
}

function toStored(row: Record<string, unknown>): StoredResource {
  return {
    resourceType: row.resource_type as string,
    id: row.id as string,
    versionId: row.version_id as number,
    lastUpdated: row.last_updated as Date,
    content: resourceTypeFirst(row.content as Record<string, unknown>),
    deleted: row.deleted as boolean,
    ...(row.event_time === undefined ? {} : { eventTime: row.event_time as Date | null }),
    ...(row.erased === true ? { erased: true } : {}),
  };
}

/** Version rows as StoredResources, sealed ones opened first (store/keys.ts). */
async function storedRows(db: Queryable, rows: Array<Record<string, unknown>>): Promise<StoredResource[]> {
  await openVersionRows(db, rows as unknown as VersionRow[]);
  return rows.map(toStored);
}

/** What a reader of fhir_resource_history selects, with `h` the history and `k` the patient key (HISTORY_KEY_JOIN). */
const HISTORY_SEALED = 'h.sealed, h.key_id, k.wrapped_dek AS key_wrapped, k.kek_id AS key_kek';
const HISTORY_KEY_JOIN = 'LEFT JOIN patient_key k ON k.id = h.key_id';
/** What a reader of the fhir_resource view (alias r) selects for sealed versions. */
const CURRENT_SEALED = 'r.sealed, r.key_id, r.key_wrapped, r.key_kek';

/**
 * The current versions of several resources, locked for update until the transaction ends (absent ones are missing
 * from the map). Two writers creating the same new resource at once both see it absent; the second one's history
 * insert then violates the (type, id, version) key and its transaction fails, to be retried, when it sees the
 * first one's version.
 */
export async function lockCurrent(client: pg.PoolClient, keys: Array<{ resourceType: string; id: string }>): Promise<Map<string, StoredResource>> {
  return currentOf(client, keys, true);
}

/**
 * The current versions of several resources as lockCurrent reads them, without locking them: for a writer that locks
 * only what it then changes (lockVersions) and checks that nothing it read changed meanwhile.
 */
export async function readCurrentMany(client: pg.PoolClient, keys: Array<{ resourceType: string; id: string }>): Promise<Map<string, StoredResource>> {
  return currentOf(client, keys, false);
}

async function currentOf(client: pg.PoolClient, keys: Array<{ resourceType: string; id: string }>, lock: boolean): Promise<Map<string, StoredResource>> {
  const result = await client.query({
    name: lock ? 'anchorline_resource_lock' : 'anchorline_resource_read_many',
    // The keys of sealed versions are read after these locks are held (openVersionRows), not joined here: a writer
    // touches patient_key last, and not at all when nothing it locks is sealed.
    text: `SELECT r.resource_type, r.id, r.version_id, r.last_updated, h.content, r.deleted, r.event_time, h.sealed, h.key_id
             FROM fhir_current r JOIN unnest($1::text[], $2::text[]) AS k(resource_type, id)
               ON r.resource_type = k.resource_type AND r.id = k.id
             JOIN fhir_resource_history h ON h.resource_type = r.resource_type AND h.id = r.id AND h.version_id = r.version_id
            ${lock ? 'ORDER BY r.resource_type, r.id FOR UPDATE OF r' : ''}`,
    values: [keys.map((k) => k.resourceType), keys.map((k) => k.id)],
    types: LOSSLESS_JSON_TYPES,
  });
  return new Map((await storedRows(client, result.rows)).map((stored) => [`${stored.resourceType}/${stored.id}`, stored]));
}

/**
 * Locks the current rows of several resources for update, in key order (so that concurrent writers cannot deadlock
 * on each other), and returns the version each is at; a resource that does not exist is missing from the map.
 */
export async function lockVersions(client: pg.PoolClient, keys: Array<{ resourceType: string; id: string }>): Promise<Map<string, number>> {
  const result = await client.query<{ resource_type: string; id: string; version_id: number }>({
    name: 'anchorline_resource_lock_versions',
    text: `SELECT r.resource_type, r.id, r.version_id FROM fhir_current r JOIN unnest($1::text[], $2::text[]) AS k(resource_type, id)
               ON r.resource_type = k.resource_type AND r.id = k.id
            ORDER BY r.resource_type, r.id FOR UPDATE OF r`,
    values: [keys.map((k) => k.resourceType), keys.map((k) => k.id)],
  });
  return new Map(result.rows.map((row) => [`${row.resource_type}/${row.id}`, row.version_id]));
}

export interface NewVersion {
  /** The stored version this one follows (from lockCurrent, or the previous NewVersion of the same resource). */
  previous: StoredResource | undefined;
  /** The resource; must carry resourceType and id. Its meta is replaced by the store's. */
  content: Record<string, unknown>;
  sourceMessageId: number | null;
}

/**
 * Stamps meta.versionId and meta.lastUpdated: the version after `previous`, at `now` or just after the previous.
 * The version's event time is the later of the previous one's and `eventTime`.
 */
export function stampVersion(previous: StoredResource | undefined, content: Record<string, unknown>, now: Date = new Date(), eventTime?: Date): StoredResource {
  const resourceType = content.resourceType as string;
  const id = content.id as string;
  const versionId = (previous?.versionId ?? 0) + 1;
  // lastUpdated must move forward even if the clock does not (two writes in the same millisecond, clock skew).
  const lastUpdated = previous && previous.lastUpdated.getTime() >= now.getTime() ? new Date(previous.lastUpdated.getTime() + 1) : now;
  const oldMeta = (content.meta as Record<string, unknown> | undefined) ?? {};
  const stamped: Record<string, unknown> = { resourceType, id, meta: { ...oldMeta, versionId: String(versionId), lastUpdated: lastUpdated.toISOString() } };
  for (const [key, value] of Object.entries(content)) if (key !== 'resourceType' && key !== 'id' && key !== 'meta') stamped[key] = value;
  const before = previous?.eventTime ?? null;
  const latestEvent = eventTime === undefined ? before : before === null || eventTime > before ? eventTime : before;
  return { resourceType, id, versionId, lastUpdated, content: stamped, deleted: false, eventTime: latestEvent };
}

/**
 * Literal references ("Type/id") anywhere in a resource: the targets a patient merge must re-point. Contained and
 * absolute references are not indexed; anchorline writes neither.
 */
export function literalReferences(content: unknown): string[] {
  const found = new Set<string>();
  const walk = (value: unknown): void => {
    if (Array.isArray(value)) {
      for (const item of value) walk(item);
    } else if (value !== null && typeof value === 'object') {
      for (const [key, child] of Object.entries(value)) {
        if (key === 'reference' && typeof child === 'string' && /^[A-Z][A-Za-z]+\/[A-Za-z0-9\-.]{1,64}$/.test(child)) found.add(child);
        else walk(child);
      }
    }
  };
  walk(content);
  return [...found];
}

/**
 * The statement writeVersions runs: every version into the history, the latest of each resource as its current row,
 * the search index and reference rows of those, the vocabulary of new string values; with the superseded versions'
 * index and reference rows deleted first where there are any. Two named statements, not one with empty arrays: a
 * batch of new resources (each read's AuditEvent, a first message about a patient) gets a plan of inserts alone,
 * which is cheap to make and safe to keep, where the deletes of empty arrays were planned again on every run (about
 * 1 ms a group of read events, a fifth of its cost to PostgreSQL).
 */
const WRITE_NEW_PARTS = `WITH x AS (SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(t text, i text, v int, u timestamptz, m bigint, s text, e timestamptz, latest boolean, c jsonb, z text, k bigint)),
           hist AS (
             INSERT INTO fhir_resource_history (resource_type, id, version_id, last_updated, content, deleted, source_message_id, mapping_sha256, event_time, sealed, key_id)
             SELECT t, i, v, u, c, false, m, s, e, decode(z, 'base64'), k FROM x),
           cur AS (
             INSERT INTO fhir_current (resource_type, id, version_id, last_updated, deleted, event_time)
             SELECT t, i, v, u, false, e FROM x WHERE latest
             ON CONFLICT (resource_type, id) DO UPDATE SET version_id = EXCLUDED.version_id, last_updated = EXCLUDED.last_updated,
               deleted = false, event_time = EXCLUDED.event_time),
           new_t AS (INSERT INTO fhir_search_token (resource_type, id, param, code_hash, token_hash, reference)
                     SELECT * FROM unnest($2::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[], $7::text[])),
           new_s AS (INSERT INTO fhir_search_string (resource_type, id, param, value_hash) SELECT * FROM unnest($8::text[], $9::text[], $10::text[], $11::bigint[])),
           new_r AS (INSERT INTO fhir_reference (target, resource_type, id) SELECT * FROM unnest($12::text[], $13::text[], $14::text[]))`;
const WRITE_VOCABULARY = `
           INSERT INTO fhir_search_vocabulary (resource_type, param, prefix_hash, value_hash)
           SELECT * FROM unnest($15::text[], $16::text[], $17::bigint[], $18::bigint[]) ON CONFLICT DO NOTHING
           RETURNING resource_type, param, value_hash`;
const WRITE_NEW = WRITE_NEW_PARTS + WRITE_VOCABULARY;
const WRITE_WITH_DROPS = `${WRITE_NEW_PARTS},
           gone_t AS (DELETE FROM fhir_search_token s USING unnest($19::text[], $20::text[], $21::text[], $22::bigint[], $23::bigint[]) AS d(t, i, p, ch, th)
                      WHERE s.resource_type = d.t AND s.param = d.p AND s.code_hash = d.ch AND s.token_hash = d.th AND s.id = d.i),
           gone_s AS (DELETE FROM fhir_search_string s USING unnest($24::text[], $25::text[], $26::text[], $27::bigint[]) AS d(t, i, p, v)
                      WHERE s.resource_type = d.t AND s.param = d.p AND s.value_hash = d.v AND s.id = d.i),
           gone_r AS (DELETE FROM fhir_reference f USING unnest($28::text[], $29::text[], $30::text[]) AS d(target, t, i)
                      WHERE f.target = d.target AND f.resource_type = d.t AND f.id = d.i)${WRITE_VOCABULARY}`;

/** A row of fhir_reference, as writeVersions collects them. */
type ReferenceRow = [target: string, resourceType: string, id: string];

const sameRows = (a: ReadonlyArray<ReadonlyArray<string | null>>, b: ReadonlyArray<ReadonlyArray<string | null>>): boolean => {
  if (a.length !== b.length) return false;
  const key = (rows: ReadonlyArray<ReadonlyArray<string | null>>): string => rows.map((r) => r.join('\u0000')).sort().join('\u0001');
  return key(a) === key(b);
};

/**
 * Resource types whose references stay out of the reference index, so that a patient merge never re-points them:
 * records of what happened, which must keep naming whom it happened to. An AuditEvent is never changed; a Provenance
 * (mappers/hl7v2/provenance.ts) records what one message wrote, the retired patient included; a document Bundle
 * (workers/document-bundle.ts) is a document as it was stored, and would add a row for every reference of every
 * resource it copies.
 */
const UNINDEXED_REFERENCES: ReadonlySet<string> = new Set(['AuditEvent', 'Provenance', 'Bundle']);

/** Whether a patient merge re-points this type's references (false for the records of what happened, above). */
export function mergeRepoints(resourceType: string): boolean {
  return !UNINDEXED_REFERENCES.has(resourceType);
}

/**
 * Writes new versions, several per resource allowed (in order), in one statement: every version into the history,
 * the last version of each resource as its current row, and the search index of those current rows. Versions must
 * come from stampVersion with a `previous` that was locked in this transaction (or the version before it here), by
 * lockCurrent or by lockVersions confirming the version read. `superseded` holds what lockCurrent (or
 * readCurrentMany) returned: the versions whose search entries are in the index now.
 */
export async function writeVersions(
  client: pg.PoolClient,
  versions: Array<{ stored: StoredResource; sourceMessageId: number | null; mappingSha256?: string | null; patientMerge?: boolean }>,
  superseded: ReadonlyMap<string, StoredResource>,
): Promise<Map<string, PatientKey>> {
  if (versions.length === 0) return new Map();
  const latest = new Map<string, StoredResource>();
  for (const { stored, patientMerge } of versions) {
    const key = `${stored.resourceType}/${stored.id}`;
    // One patient's record never becomes another's (compartment.ts); only a patient merge moves it, on purpose.
    const before = latest.get(key) ?? superseded.get(key);
    if (patientMerge !== true && before !== undefined && changesPatient(before.content, stored.content)) {
      throw new AnchorlineError('ANCHORLINE_ERR_STORE_PATIENT_CHANGED', `${key}: version ${stored.versionId} names another patient than version ${before.versionId}`);
    }
    latest.set(key, stored);
  }
  const add = { tokens: [] as BlindTokenRow[], strings: [] as BlindStringRow[], references: [] as ReferenceRow[] };
  const drop = { tokens: [] as BlindTokenRow[], strings: [] as BlindStringRow[], references: [] as ReferenceRow[] };
  const blind = await blindIndexOf(client);
  const vocabulary: BlindVocabularyRow[] = [];
  for (const [key, resource] of latest) {
    const next = blind.rows(resource);
    for (const each of next.vocabulary) vocabulary.push(each);
    const before = superseded.get(key);
    const old = before ? blind.rows(before) : { tokens: [], strings: [] };
    const indexed = !UNINDEXED_REFERENCES.has(resource.resourceType);
    const nextRefs = new Set(indexed ? literalReferences(resource.content) : []);
    const oldRefs = new Set(before && indexed ? literalReferences(before.content) : []);
    for (const target of nextRefs) if (!oldRefs.has(target)) add.references.push([target, resource.resourceType, resource.id]);
    for (const target of oldRefs) if (!nextRefs.has(target)) drop.references.push([target, resource.resourceType, resource.id]);
    // Most updates leave the searchable values alone; then the index is not touched at all.
    // Appended one by one: push(...rows) passes each row as an argument, and past about 100k (a resource with that
    // many identifiers) it throws RangeError.
    if (!sameRows(old.tokens, next.tokens)) {
      for (const each of old.tokens) drop.tokens.push(each);
      for (const each of next.tokens) add.tokens.push(each);
    }
    if (!sameRows(old.strings, next.strings)) {
      for (const each of old.strings) drop.strings.push(each);
      for (const each of next.strings) add.strings.push(each);
    }
  }
  // Patients' versions are sealed under their keys, read (or created) for the whole batch in one statement.
  const keyring = keyringOf(client);
  const sealingPatients = keyring?.sealing ? versions.map(({ stored }) => sealingPatientOf(stored.content)) : [];
  const keys = keyring?.sealing ? await keyring.patientKeys(client, sealingPatients.filter((p): p is string => p !== undefined)) : new Map<string, PatientKey>();
  // The versions travel as one JSON document: PostgreSQL parses it once, and resource bodies are neither escaped
  // into array literals nor parsed twice (history and current row share the parsed value). stringifyJson, not
  // JSON.stringify: LosslessNumbers are written as the numbers they hold.
  const rows = versions.map(({ stored, sourceMessageId, mappingSha256 }, n) => {
    const patient = sealingPatients[n];
    const key = patient === undefined ? undefined : keys.get(patient);
    const sealed = key === undefined ? null : sealVersion(key, stored.resourceType, stored.id, stored.versionId, stored.content);
    return {
    t: stored.resourceType,
    i: stored.id,
    v: stored.versionId,
    u: stored.lastUpdated.toISOString(),
    m: sourceMessageId,
    s: mappingSha256 ?? null,
    e: stored.eventTime ? stored.eventTime.toISOString() : null,
    latest: latest.get(`${stored.resourceType}/${stored.id}`) === stored,
    c: sealed === null ? stored.content : null,
    z: sealed === null ? null : sealed.toString('base64'),
    k: key === undefined ? null : key.keyId,
    };
  });
  const col = (list: ReadonlyArray<ReadonlyArray<string | null>>, n: number): Array<string | null> => list.map((r) => r[n]!);
  const offered = unknownVocabulary(client, vocabulary);
  const drops = drop.tokens.length + drop.strings.length + drop.references.length > 0;
  // Planned as the caller's transaction says (TransactionOptions.customPlans): the ingest batch plans it for its
  // arrays each run, because the generic plan of this statement scanned whole tables once they grew.
  const written = await client.query<{ resource_type: string; param: string; value_hash: string }>({
    name: drops ? 'anchorline_resource_write' : 'anchorline_resource_insert',
    text: drops ? WRITE_WITH_DROPS : WRITE_NEW,
    values: [
      stringifyJson(rows),
      col(add.tokens, 0), col(add.tokens, 1), col(add.tokens, 2), col(add.tokens, 3), col(add.tokens, 4), col(add.tokens, 5),
      col(add.strings, 0), col(add.strings, 1), col(add.strings, 2), col(add.strings, 3),
      col(add.references, 0), col(add.references, 1), col(add.references, 2),
      col(offered, 0), col(offered, 1), col(offered, 2), col(offered, 3),
      ...(drops
        ? [
            col(drop.tokens, 0), col(drop.tokens, 1), col(drop.tokens, 2), col(drop.tokens, 3), col(drop.tokens, 4),
            col(drop.strings, 0), col(drop.strings, 1), col(drop.strings, 2), col(drop.strings, 3),
            col(drop.references, 0), col(drop.references, 1), col(drop.references, 2),
          ]
        : []),
    ],
  });
  noteVocabulary(client, offered, written.rows);
  return keys;
}

/** Current resources holding a literal reference to `target` ("Type/id"), as lockCurrent keys. */
export async function referencing(db: Queryable, target: string): Promise<Array<{ resourceType: string; id: string }>> {
  const result = await db.query<{ resource_type: string; id: string }>('SELECT resource_type, id FROM fhir_reference WHERE target = $1 ORDER BY resource_type, id', [target]);
  return result.rows.map((r) => ({ resourceType: r.resource_type, id: r.id }));
}

export async function readCurrent(db: Queryable, resourceType: string, id: string): Promise<StoredResource | undefined> {
  const result = await db.query({
    // Named, so each connection plans the view's join once: planning it took four times as long as running it.
    name: 'anchorline_read_current',
    text: `SELECT r.resource_type, r.id, r.version_id, r.last_updated, r.content, r.deleted, ${CURRENT_SEALED} FROM fhir_resource r WHERE r.resource_type = $1 AND r.id = $2`,
    values: [resourceType, id],
    types: LOSSLESS_JSON_TYPES,
  });
  return (await storedRows(db, result.rows))[0];
}

export async function readVersion(db: Queryable, resourceType: string, id: string, versionId: number): Promise<StoredResource | undefined> {
  const result = await db.query({
    name: 'anchorline_read_version',
    text: `SELECT h.resource_type, h.id, h.version_id, h.last_updated, h.content, h.deleted, ${HISTORY_SEALED} FROM fhir_resource_history h ${HISTORY_KEY_JOIN}
      WHERE h.resource_type = $1 AND h.id = $2 AND h.version_id = $3`,
    values: [resourceType, id, versionId],
    types: LOSSLESS_JSON_TYPES,
  });
  const version = (await storedRows(db, result.rows))[0];
  // A version asked for by number that was erased is answered as such (410), not as a deleted version's stub.
  if (version?.erased) throw new AnchorlineError('ANCHORLINE_ERR_ERASED', `${resourceType}/${id}/_history/${versionId} was erased`);
  return version;
}

/** Versions of one resource, newest first. */
export async function readHistory(db: Queryable, resourceType: string, id: string, options: { count: number; offset: number; since?: Date }): Promise<{ total: number; versions: StoredResource[] }> {
  const params: unknown[] = [resourceType, id];
  let where = 'h.resource_type = $1 AND h.id = $2';
  if (options.since) {
    params.push(options.since);
    where += ` AND h.last_updated >= $${params.length}`;
  }
  const countText = `SELECT count(*)::int AS n FROM fhir_resource_history h WHERE ${where}`;
  const total = (await db.query<{ n: number }>({ name: preparedName(countText), text: countText, values: params })).rows[0]?.n ?? 0;
  const text = `SELECT h.resource_type, h.id, h.version_id, h.last_updated, h.content, h.deleted, ${HISTORY_SEALED} FROM fhir_resource_history h ${HISTORY_KEY_JOIN}
      WHERE ${where}
      ORDER BY h.version_id DESC LIMIT $${params.length + 1} OFFSET $${params.length + 2}`;
  const rows = await db.query({ name: preparedName(text), text, values: [...params, Number(options.count), Number(options.offset)], types: LOSSLESS_JSON_TYPES });
  return { total, versions: await storedRows(db, rows.rows) };
}

/** One search criterion; all criteria of a search must hold (AND), the values of one criterion are alternatives (OR). */
export type SearchCriterion =
  | { kind: 'token'; param: string; values: Array<{ system?: string; code: string }> }
  | { kind: 'string'; param: string; values: string[]; exact: boolean }
  | { kind: 'id'; values: string[] }
  /**
   * On lastUpdated (`_lastUpdated`, and AuditEvent's `date`, which is the recorded time of its only version). A value
   * is the range its precision covers, [start, end); the prefix compares the record's instant with that range.
   */
  | { kind: 'date'; values: Array<{ prefix: DatePrefix; start: Date; end: Date }> };

export type DatePrefix = 'eq' | 'ne' | 'gt' | 'lt' | 'ge' | 'le' | 'sa' | 'eb';

export async function searchResources(
  db: Queryable,
  resourceType: string,
  criteria: SearchCriterion[],
  options: SearchPaging,
): Promise<{ total: number | undefined; resources: StoredResource[]; more: boolean }> {
  const params: unknown[] = [resourceType];
  const conditions: string[] = ['r.resource_type = $1', 'NOT r.deleted'];
  const blind = await blindIndexOf(db);
  // What the engine's own agent meets holds for every AuditEvent, and is not in the index to be looked up.
  if (resourceType === 'AuditEvent') criteria = criteria.filter((c) => c.kind !== 'string' || !everyAuditEventMatches(c.param, c.values, c.exact));
  const p = (value: unknown): string => {
    params.push(value);
    return `$${params.length}`;
  };
  for (const criterion of criteria) {
    if (criterion.kind === 'id') {
      conditions.push(`r.id = ANY(${p(criterion.values)}::text[])`);
    } else if (criterion.kind === 'date') {
      const alternatives = criterion.values.map(({ prefix, start, end }) => {
        switch (prefix) {
          case 'eq': return `(r.last_updated >= ${p(start)} AND r.last_updated < ${p(end)})`;
          case 'ne': return `(r.last_updated < ${p(start)} OR r.last_updated >= ${p(end)})`;
          case 'gt': case 'sa': return `r.last_updated >= ${p(end)}`;
          case 'ge': return `r.last_updated >= ${p(start)}`;
          case 'lt': case 'eb': return `r.last_updated < ${p(start)}`;
          case 'le': return `r.last_updated < ${p(end)}`;
        }
      });
      conditions.push(`(${alternatives.join(' OR ')})`);
    } else if (criterion.kind === 'token') {
      const { param } = criterion;
      const alternatives = criterion.values.map((v) =>
        v.system === undefined
          ? `t.code_hash = ${p(blind.codeHash(param, v.code))}`
          : `(t.code_hash = ${p(blind.codeHash(param, v.code))} AND t.token_hash = ${p(blind.tokenHash(param, v.system, v.code))})`,
      );
      conditions.push(`EXISTS (SELECT 1 FROM fhir_search_token t WHERE t.resource_type = r.resource_type AND t.id = r.id
        AND t.param = ${p(param)} AND (${alternatives.join(' OR ')}))`);
    } else {
      const { param } = criterion;
      const queries = criterion.values.map((v) => blind.stringQuery(resourceType, param, v, criterion.exact));
      // An empty value (after normalising) starts every value: any row of the parameter matches.
      const params = queries.find((q) => q !== undefined)?.params ?? [param];
      const prefixes = queries.flatMap((q) => q?.vocabulary ?? []);
      // A vocabulary parameter's "starts with" also matches the whole values its prefix begins (blind-index.ts).
      const vocabulary = prefixes.length === 0 ? '' : ` || ARRAY(SELECT v.value_hash FROM fhir_search_vocabulary v
          WHERE v.resource_type = ${p(resourceType)} AND v.param = ${p(param)} AND v.prefix_hash = ANY(${p(prefixes)}::bigint[]))`;
      const match = queries.includes(undefined) ? '' : ` AND s.value_hash = ANY(${p(queries.flatMap((q) => q!.hashes))}::bigint[]${vocabulary})`;
      conditions.push(`EXISTS (SELECT 1 FROM fhir_search_string s WHERE s.resource_type = r.resource_type AND s.id = r.id
        AND s.param = ANY(${p(params)}::text[])${match})`);
    }
  }
  const where = conditions.join(' AND ');
  // Counted on the pointers alone: the conditions read no content, and the view's join would only cost.
  // Both statements are prepared by shape (preparedName): planning them cost more than running them.
  const countText = `SELECT count(*)::int AS n FROM fhir_current r WHERE ${where}`;
  const countAll = async (): Promise<number> => (await db.query<{ n: number }>({ name: preparedName(countText), text: countText, values: params })).rows[0]?.n ?? 0;
  const counted = options.total !== false;
  // A count alone (`_summary=count`) reads no rows.
  if (options.count === 0 && counted) return { total: await countAll(), resources: [], more: false };
  const sort = options.sort !== undefined && options.sort.length > 0 ? options.sort : [{ key: 'lastUpdated', descending: true }];
  const order = sort.map(({ key, descending }) => `r.${key === 'id' ? 'id' : 'last_updated'}${descending ? ' DESC' : ''}`);
  if (!sort.some((s) => s.key === 'id')) order.push('r.id');
  // One row past the page says whether there is a next one.
  const count = Number(options.count);
  const offset = Number(options.offset);
  const text = `SELECT r.resource_type, r.id, r.version_id, r.last_updated, r.content, r.deleted, ${CURRENT_SEALED} FROM fhir_resource r WHERE ${where}
      ORDER BY ${order.join(', ')} LIMIT $${params.length + 1} OFFSET $${params.length + 2}`;
  const rows = await db.query({ name: preparedName(text), text, values: [...params, count + 1, offset], types: LOSSLESS_JSON_TYPES });
  const more = rows.rows.length > count;
  const page = rows.rows.slice(0, count);
  // A page that holds the last match (most searches: one patient by an identifier) says how many there are, and
  // the count costs no statement of its own; a full page, or one past the last match, is counted.
  const total = !counted ? undefined : !more && (page.length > 0 || offset === 0) ? offset + page.length : await countAll();
  return { total, resources: await storedRows(db, page), more };
}

/** Which page of a search, in which order, and whether to count every match. */
export interface SearchPaging {
  count: number;
  offset: number;
  /** Count every match (`_total`): default true. False reads one row past the page instead, to know of a next one. */
  total?: boolean;
  /** `_sort` keys in precedence; default last updated first. The id always breaks ties. */
  sort?: ReadonlyArray<{ key: 'lastUpdated' | 'id'; descending: boolean }>;
}

/**
 * `_include`: the current resources that the given resources point at through one reference search parameter
 * (optionally only those of `targetType`), at most `limit`.
 */
export async function includedBy(db: Queryable, sourceType: string, ids: string[], param: string, targetType: string | undefined, limit: number): Promise<StoredResource[]> {
  if (ids.length === 0) return [];
  const rows = await db.query({
    text: `SELECT r.resource_type, r.id, r.version_id, r.last_updated, r.content, r.deleted, ${CURRENT_SEALED}
       FROM fhir_resource r
      WHERE NOT r.deleted AND ($4::text IS NULL OR r.resource_type = $4)
        AND (r.resource_type || '/' || r.id) IN (
          SELECT t.reference FROM fhir_search_token t WHERE t.resource_type = $1 AND t.id = ANY($2::text[]) AND t.param = $3)
      ORDER BY r.resource_type, r.id LIMIT $5`,
    values: [sourceType, ids, param, targetType ?? null, limit],
    types: LOSSLESS_JSON_TYPES,
  });
  return storedRows(db, rows.rows);
}

/** `_revinclude`: the current resources of `type` whose reference parameter `param` points at one of `targets`. */
export async function includingOf(db: Queryable, type: string, param: string, targets: string[], limit: number): Promise<StoredResource[]> {
  if (targets.length === 0) return [];
  const blind = await blindIndexOf(db);
  const rows = await db.query({
    text: `SELECT r.resource_type, r.id, r.version_id, r.last_updated, r.content, r.deleted, ${CURRENT_SEALED}
       FROM fhir_resource r
      WHERE r.resource_type = $1 AND NOT r.deleted
        AND r.id IN (SELECT t.id FROM fhir_search_token t WHERE t.resource_type = $1 AND t.param = $2 AND t.code_hash = ANY($3::bigint[]))
      ORDER BY r.id LIMIT $4`,
    values: [type, param, targets.map((target) => blind.codeHash(param, target)), limit],
    types: LOSSLESS_JSON_TYPES,
  });
  return storedRows(db, rows.rows);
}

/**
 * The current resources of one patient's compartment (Patient/$everything): the Patient and every resource whose
 * `patient` search entry names it, optionally of some types only, in a stable order (type, id), one page of them.
 * AuditEvents are left out: the trail about a record is not part of the record.
 */
export async function compartmentResources(
  db: Queryable,
  patientId: string,
  options: { count: number; offset: number; types?: readonly string[] },
): Promise<StoredResource[]> {
  const blind = await blindIndexOf(db);
  const rows = await db.query({
    text: `SELECT r.resource_type, r.id, r.version_id, r.last_updated, r.content, r.deleted, ${CURRENT_SEALED}
       FROM fhir_resource r
      WHERE NOT r.deleted AND ($3::text[] IS NULL OR r.resource_type = ANY($3::text[]))
        AND ((r.resource_type = 'Patient' AND r.id = $2)
          OR (r.resource_type <> 'AuditEvent' AND (r.resource_type, r.id) IN (
                SELECT t.resource_type, t.id FROM fhir_search_token t WHERE t.param = 'patient' AND t.code_hash = $1)))
      ORDER BY r.resource_type, r.id LIMIT ${Number(options.count)} OFFSET ${Number(options.offset)}`,
    values: [blind.codeHash('patient', `Patient/${patientId}`), patientId, options.types ?? null],
    types: LOSSLESS_JSON_TYPES,
  });
  return storedRows(db, rows.rows);
}

/**
 * Current resources in (type, id) order after `after`, at most `limit`, sealed ones opened: for walking the whole
 * store (the search index rebuild). Deleted ones are included, marked so.
 */
export async function currentResourcesAfter(db: Queryable, after: { resourceType: string; id: string } | undefined, limit: number): Promise<StoredResource[]> {
  const rows = await db.query({
    text: `SELECT r.resource_type, r.id, r.version_id, r.last_updated, r.content, r.deleted, ${CURRENT_SEALED} FROM fhir_resource r
            WHERE $1::text IS NULL OR (r.resource_type, r.id) > ($1, $2)
            ORDER BY r.resource_type, r.id LIMIT $3`,
    values: [after?.resourceType ?? null, after?.id ?? null, limit],
    types: LOSSLESS_JSON_TYPES,
  });
  return storedRows(db, rows.rows);
}

/** The inbox message a stored version was mapped from, if it came from one. */
export async function sourceMessageId(db: Queryable, resourceType: string, id: string, versionId: number): Promise<number | undefined> {
  const result = await db.query<{ source_message_id: string | null }>(
    'SELECT source_message_id FROM fhir_resource_history WHERE resource_type = $1 AND id = $2 AND version_id = $3',
    [resourceType, id, versionId],
  );
  const value = result.rows[0]?.source_message_id;
  return value === null || value === undefined ? undefined : Number(value);
}

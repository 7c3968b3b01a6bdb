/**
 * Research projects and the research database (migration 0021): the project definitions a data steward writes, the
 * de-identified projection of each project's cohort that researchers query, its releases, and Bulk Data exports.
 *
 * Two places, never mixed:
 * - the engine's schema holds the projects (with their secrets), the de-identification configs by digest, every
 *   release, and the projection map from each research row back to the clinical resource it was made from;
 * - the research schema (`researchSchema`) holds only de-identified resources, by pseudonymous id, with their search
 *   index and the exports made of them. No clinical id, reference or content hash is written there: a row names its
 *   source by a hash keyed with the project secret.
 *
 * Contract:
 * - `writeStudyResource` writes a ResearchStudy or Group version through the API like writeConsent writes a Consent
 *   (store/consents.ts): in the caller's transaction, the request body as a done inbox message, the version with its
 *   history and index, a leaf naming the body and the write's mapping descriptor, and an AuditEvent (research
 *   activity `define`, purpose HRESCH) with its own leaf.
 * - `defineProject` writes a new version of a project's settings; the secret is made at the first version and kept
 *   until a rotation, which is also a new version. Settings versions are never changed.
 * - `publishProjection` replaces, in the caller's transaction and under the project's advisory lock, the research rows
 *   whose source changed, removes those whose source left, and keeps the projection map in step. Rows whose source
 *   hash is unchanged are not touched, so publishing the same projection twice has one effect.
 * - Exports are claimed with FOR UPDATE SKIP LOCKED, so that several workers never run one export twice at once; a
 *   claimed export left in progress by a process that died is claimed again after `staleMs`.
 */
import { createHash, createHmac, randomBytes, randomUUID } from 'node:crypto';
import type pg from 'pg';
import { canonicalBytes, resourceSha256, sha256Hex, stringifyJson } from '../anchor/index.ts';
import { LOSSLESS_JSON_TYPES, type Queryable } from './db.ts';
import { AUDIT_EVENT, auditVersions, NO_SOURCE_SHA256, researchAuditEvent, type AuditActor, type AuditRecord, type ResearchAudit } from './audit-trail.ts';
import { writeApiResource } from './api-writes.ts';
import { appendLeaves } from './ledger.ts';
import { writeVersions, type StoredResource } from './resources.ts';

/** The research schema of the engine schema `schema`, as migration 0021 names it. */
export function researchSchema(schema: string): string {
  const name = `${schema}_research`;
  return Buffer.byteLength(name) <= 63 ? name : `research_${createHash('sha256').update(schema).digest('hex').slice(0, 32)}`;
}

/** An SQL identifier, quoted (the research schema's name derives from the engine's). */
export const quoted = (identifier: string): string => `"${identifier.replaceAll('"', '""')}"`;

/** The types a steward writes through the FHIR API for a project. */
export const STUDY_TYPES = ['ResearchStudy', 'Group'] as const;
export type StudyType = (typeof STUDY_TYPES)[number];

export interface StudyWrite {
  resourceType: StudyType;
  /** The resource, with its id (chosen by the route for a create, from the URL for an update). */
  content: Record<string, unknown>;
  interaction: 'create' | 'update';
  /** If-Match: the version the writer expects to replace; a mismatch fails with 412. */
  expectedVersion?: number;
  raw: Buffer;
  actor: AuditActor;
  /** `ResearchStudy/<id>` the write belongs to (a Group: every study that enrols it; none yet: the Group itself). */
  studies: string[];
}

export interface StudyWritten {
  stored: StoredResource;
  created: boolean;
  messageId: number;
  auditEventIds: string[];
}

/** Writes one ResearchStudy or Group version in the caller's transaction (see the contract above). */
export async function writeStudyResource(client: pg.PoolClient, write: StudyWrite, now: Date = new Date()): Promise<StudyWritten> {
  const key = `${write.resourceType}/${write.content.id as string}`;
  // One event per study the version belongs to, so that each project's usage is found by its own study.
  const studies = write.studies.length > 0 ? write.studies : [key];
  const written = await writeApiResource(client, {
    resourceType: write.resourceType,
    content: write.content,
    interaction: write.interaction,
    ...(write.expectedVersion === undefined ? {} : { expectedVersion: write.expectedVersion }),
    raw: write.raw,
    actor: write.actor,
    auditEvents: ({ stored, messageId }) => studies.map((study) =>
      researchAuditEvent({ activity: 'define', actor: write.actor, study, patients: [], written: [{ resourceType: stored.resourceType, id: stored.id, versionId: stored.versionId }], messageId }, now)),
  }, now);
  return { stored: written.stored, created: written.created, messageId: written.messageId, auditEventIds: written.auditEventIds };
}

/** Stores research AuditEvents (no source message: releases, queries, exports, settings) in the caller's transaction. */
export async function recordResearchEvents(client: pg.PoolClient, events: ResearchAudit[], now: Date = new Date()): Promise<string[]> {
  if (events.length === 0) return [];
  const records: AuditRecord[] = events.map((event) => ({ content: researchAuditEvent(event, now), recorded: now, sourceMessageId: null, rawSha256: NO_SOURCE_SHA256, mappingSha256: NO_SOURCE_SHA256 }));
  const { versions, leaves } = auditVersions(records);
  await writeVersions(client, versions, new Map());
  await appendLeaves(client, leaves);
  return versions.map((v) => v.stored.id);
}

/** SHA-256 (hex) of a de-identification config's canonical JSON: its version. */
export function deidConfigSha256(content: unknown): string {
  return sha256Hex(canonicalBytes(content));
}

/** Stores a de-identification config under its digest (once); returns the digest. */
export async function recordDeidConfig(db: Queryable, content: unknown): Promise<string> {
  const sha256 = deidConfigSha256(content);
  await db.query('INSERT INTO research_deid_config (sha256, content) VALUES ($1, $2) ON CONFLICT (sha256) DO NOTHING', [sha256, stringifyJson(content)]);
  return sha256;
}

export async function deidConfigByDigest(db: Queryable, sha256: string): Promise<unknown> {
  const result = await db.query({ text: 'SELECT content FROM research_deid_config WHERE sha256 = $1', values: [sha256], types: LOSSLESS_JSON_TYPES });
  return result.rows[0]?.content;
}

/** What a steward sets for a project besides its ResearchStudy and Group. */
export interface ProjectSettings {
  /** The cohort: `Group/<id>`'s id. */
  groupId: string;
  /** Resource types released (Patient is always read for the k-anonymity check, and released only if listed). */
  releasedTypes: string[];
  /** Top-level elements released per type; a type not named here keeps every element the de-id config keeps. */
  elements: Record<string, string[]>;
  /** The quasi-identifiers of de-identified Patients the k-anonymity check groups by (e.g. gender, birthDate). */
  quasiIdentifiers: string[];
  k: number;
  /** l-diversity of `sensitive` within each group; absent: not checked. */
  l?: number;
  sensitive?: string;
}

export interface ResearchProject extends ProjectSettings {
  id: string;
  version: number;
  deidConfigSha256: string;
  /** The project secret (32 bytes). Never leaves the engine. */
  secret: Buffer;
  /** Newest ledger leaf id whose version the last published projection has taken into account. */
  watermark: bigint | null;
  releasedAt: Date | null;
}

interface ProjectRow {
  id: string;
  version: number;
  group_id: string;
  released_types: string[];
  elements: Record<string, string[]>;
  deid_config_sha256: string;
  quasi_identifiers: string[];
  k: number;
  l: number | null;
  sensitive: string | null;
  secret: Buffer;
  watermark: string | null;
  released_at: Date | null;
}

const PROJECT_COLUMNS = 'id, version, group_id, released_types, elements, deid_config_sha256, quasi_identifiers, k, l, sensitive, secret, watermark, released_at';

function toProject(row: ProjectRow): ResearchProject {
  return {
    id: row.id,
    version: row.version,
    groupId: row.group_id,
    releasedTypes: row.released_types,
    elements: row.elements,
    deidConfigSha256: row.deid_config_sha256,
    quasiIdentifiers: row.quasi_identifiers,
    k: row.k,
    ...(row.l === null ? {} : { l: row.l }),
    ...(row.sensitive === null ? {} : { sensitive: row.sensitive }),
    secret: row.secret,
    watermark: row.watermark === null ? null : BigInt(row.watermark),
    releasedAt: row.released_at,
  };
}

export async function readProject(db: Queryable, id: string): Promise<ResearchProject | undefined> {
  const result = await db.query<ProjectRow>(`SELECT ${PROJECT_COLUMNS} FROM research_project WHERE id = $1`, [id]);
  return result.rows[0] ? toProject(result.rows[0]) : undefined;
}

/** Projects that have been released at least once: the ones a refresh keeps current. */
export async function releasedProjectIds(db: Queryable): Promise<string[]> {
  const result = await db.query<{ id: string }>('SELECT id FROM research_project WHERE released_at IS NOT NULL ORDER BY id');
  return result.rows.map((r) => r.id);
}

/**
 * Writes a new version of a project's settings with `deidConfig` (stored by digest). The first version makes the
 * project secret; `rotateSecret` makes a new one (every pseudonym of the project changes with it). Returns the version.
 */
export async function defineProject(
  client: pg.PoolClient,
  id: string,
  settings: ProjectSettings,
  deidConfig: unknown,
  options: { rotateSecret: boolean; definedBy: string },
): Promise<{ version: number; deidConfigSha256: string; secretRotated: boolean }> {
  const digest = await recordDeidConfig(client, deidConfig);
  const current = await client.query<{ version: number }>('SELECT version FROM research_project WHERE id = $1 FOR UPDATE', [id]);
  const previous = current.rows[0]?.version;
  const rotated = previous === undefined || options.rotateSecret;
  const values = [id, settings.groupId, settings.releasedTypes, stringifyJson(settings.elements), digest, settings.quasiIdentifiers, settings.k, settings.l ?? null, settings.sensitive ?? null];
  let version: number;
  if (previous === undefined) {
    version = 1;
    await client.query(
      `INSERT INTO research_project (id, version, group_id, released_types, elements, deid_config_sha256, quasi_identifiers, k, l, sensitive, secret)
       VALUES ($1, 1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
      [...values, randomBytes(32)],
    );
  } else {
    version = previous + 1;
    await client.query(
      `UPDATE research_project SET version = $10, group_id = $2, released_types = $3, elements = $4, deid_config_sha256 = $5, quasi_identifiers = $6,
              k = $7, l = $8, sensitive = $9, secret = CASE WHEN $11 THEN $12::bytea ELSE secret END, updated_at = now(),
              -- New settings mean a new projection: the next refresh reads everything again.
              watermark = NULL
        WHERE id = $1`,
      [...values, version, options.rotateSecret, randomBytes(32)],
    );
  }
  const recorded = { ...settings, deidConfigSha256: digest, secretRotated: rotated };
  await client.query('INSERT INTO research_project_version (project_id, version, settings, deid_config_sha256, defined_by) VALUES ($1, $2, $3, $4, $5)', [id, version, stringifyJson(recorded), digest, options.definedBy]);
  return { version, deidConfigSha256: digest, secretRotated: rotated };
}

/** A keyed hash of the clinical version a research row was made from: tells a refresh what changed, and nothing else. */
export function sourceHash(secret: Uint8Array, source: StoredResource): string {
  return createHmac('sha256', secret).update(`research-source\u0000${source.resourceType}/${source.id}/_history/${source.versionId}\u0000${resourceSha256(source.content)}`).digest('hex');
}

/** One de-identified resource, ready for the research database, with the clinical version it came from. */
export interface ResearchRow {
  /** The clinical resource: kept in the engine's schema (research_projection), never in the research schema. */
  source: { resourceType: string; id: string; versionId: number; patient: string };
  /** The pseudonymous type and id the de-identification gave it. */
  resourceType: string;
  id: string;
  /** `Patient/<pseudonym>` the row is about, for the patient search parameter. */
  patient: string | null;
  content: Record<string, unknown>;
  sourceHash: string;
  tokens: Array<{ param: string; system: string; code: string }>;
  dates: Array<{ param: string; low: Date; high: Date }>;
}

export interface Publication {
  /** Rows written (new or changed). */
  published: number;
  /** Rows removed (their source left the projection: a patient left the cohort or withdrew consent, a record went). */
  removed: number;
  /** Clinical patients (`Patient/x`) whose released data this publication wrote or removed. */
  patients: string[];
}

/**
 * Removes one clinical patient (`Patient/x`) from every project's research rows and projection map, in the caller's
 * transaction: an erasure (store/erasure.ts) reaches the research database too, since its rows are pseudonymous, not
 * anonymous. Returns the research rows removed.
 */
export async function forgetPatient(client: pg.PoolClient, patient: string): Promise<number> {
  const schema = (await client.query<{ schema: string }>('SELECT current_schema() AS schema')).rows[0]!.schema;
  const research = quoted(researchSchema(schema));
  const removed = await client.query(
    `WITH gone AS (DELETE FROM research_projection WHERE patient = $1 RETURNING project_id, pseudo_type, pseudo_id)
     DELETE FROM ${research}.resource r USING gone g WHERE r.project_id = g.project_id AND r.resource_type = g.pseudo_type AND r.id = g.pseudo_id`,
    [patient],
  );
  return removed.rowCount ?? 0;
}

/**
 * Makes the research rows of project `projectId` what `rows` says (see the contract above): the full projection, or
 * with `scope` the projection of those clinical patients (`Patient/x`) only, in the caller's transaction. Takes the project's advisory lock first, so a release and a refresh of one project
 * publish one after the other, each on the other's result.
 */
export async function publishProjection(client: pg.PoolClient, schema: string, projectId: string, rows: readonly ResearchRow[], scope?: ReadonlySet<string>): Promise<Publication> {
  const research = quoted(researchSchema(schema));
  await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`anchorline-research:${schema}:${projectId}`]);
  const mapped = await client.query<{ source_type: string; source_id: string; patient: string; pseudo_type: string; pseudo_id: string }>(
    'SELECT source_type, source_id, patient, pseudo_type, pseudo_id FROM research_projection WHERE project_id = $1',
    [projectId],
  );
  const hashes = await client.query<{ resource_type: string; id: string; source_hash: string }>(`SELECT resource_type, id, source_hash FROM ${research}.resource WHERE project_id = $1`, [projectId]);
  const published = new Map(hashes.rows.map((r) => [`${r.resource_type}/${r.id}`, r.source_hash]));
  const wanted = new Set(rows.map((r) => `${r.source.resourceType}/${r.source.id}`));
  const changed = rows.filter((r) => published.get(`${r.resourceType}/${r.id}`) !== r.sourceHash);
  // Within the scope only: a partial projection (a refresh of some patients) says nothing of the others' rows.
  const gone = mapped.rows.filter((m) => (scope === undefined || scope.has(m.patient)) && !wanted.has(`${m.source_type}/${m.source_id}`));
  const patients = new Set<string>([...changed.map((r) => r.source.patient), ...gone.map((m) => m.patient)]);
  // A changed source's row may have another pseudonymous key than before (the secret was rotated): both go.
  const previousKey = new Map(mapped.rows.map((m) => [`${m.source_type}/${m.source_id}`, [m.pseudo_type, m.pseudo_id] as const]));
  const drop = [
    ...changed.flatMap((r) => [[r.resourceType, r.id] as const, ...(previousKey.has(`${r.source.resourceType}/${r.source.id}`) ? [previousKey.get(`${r.source.resourceType}/${r.source.id}`)!] : [])]),
    ...gone.map((m) => [m.pseudo_type, m.pseudo_id] as const),
  ];
  if (drop.length > 0) {
    await client.query(`DELETE FROM ${research}.resource r USING unnest($2::text[], $3::text[]) AS d(t, i) WHERE r.project_id = $1 AND r.resource_type = d.t AND r.id = d.i`, [projectId, drop.map((d) => d[0]), drop.map((d) => d[1])]);
  }
  if (gone.length > 0) {
    await client.query('DELETE FROM research_projection p USING unnest($2::text[], $3::text[]) AS d(t, i) WHERE p.project_id = $1 AND p.source_type = d.t AND p.source_id = d.i', [projectId, gone.map((g) => g.source_type), gone.map((g) => g.source_id)]);
  }
  if (changed.length > 0) {
    const now = new Date().toISOString();
    const records = changed.map((r) => ({ t: r.resourceType, i: r.id, p: r.patient, c: r.content, h: r.sourceHash }));
    await client.query(
      `INSERT INTO ${research}.resource (project_id, resource_type, id, patient, content, source_hash, published_at)
       SELECT $1, t, i, p, c, h, $3 FROM jsonb_to_recordset($2::jsonb) AS x(t text, i text, p text, c jsonb, h text)`,
      [projectId, stringifyJson(records), now],
    );
    const tokens = changed.flatMap((r) => r.tokens.map((t) => [r.resourceType, r.id, t.param, t.system, t.code]));
    if (tokens.length > 0) {
      const col = (n: number): string[] => tokens.map((t) => t[n]!);
      await client.query(`INSERT INTO ${research}.search_token (project_id, resource_type, id, param, system, code) SELECT $1, * FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[])`, [projectId, col(0), col(1), col(2), col(3), col(4)]);
    }
    const dates = changed.flatMap((r) => r.dates.map((d) => ({ t: r.resourceType, i: r.id, p: d.param, l: d.low.toISOString(), h: d.high.toISOString() })));
    if (dates.length > 0) {
      await client.query(`INSERT INTO ${research}.search_date (project_id, resource_type, id, param, low, high) SELECT $1, t, i, p, l, h FROM jsonb_to_recordset($2::jsonb) AS x(t text, i text, p text, l timestamptz, h timestamptz)`, [projectId, JSON.stringify(dates)]);
    }
    const map = changed.map((r) => ({ st: r.source.resourceType, si: r.source.id, sv: r.source.versionId, pa: r.source.patient, pt: r.resourceType, pi: r.id }));
    await client.query(
      `INSERT INTO research_projection (project_id, source_type, source_id, source_version, patient, pseudo_type, pseudo_id)
       SELECT $1, st, si, sv, pa, pt, pi FROM jsonb_to_recordset($2::jsonb) AS x(st text, si text, sv int, pa text, pt text, pi text)
       ON CONFLICT (project_id, source_type, source_id) DO UPDATE SET source_version = EXCLUDED.source_version, patient = EXCLUDED.patient,
         pseudo_type = EXCLUDED.pseudo_type, pseudo_id = EXCLUDED.pseudo_id`,
      [projectId, JSON.stringify(map)],
    );
  }
  return { published: changed.length, removed: gone.length, patients: [...patients].sort() };
}

/** The clinical patients whose data project `projectId`'s research rows hold now. */
export async function projectedPatients(db: Queryable, projectId: string): Promise<string[]> {
  const result = await db.query<{ patient: string }>('SELECT DISTINCT patient FROM research_projection WHERE project_id = $1 ORDER BY patient', [projectId]);
  return result.rows.map((r) => r.patient);
}

/** The k-anonymity (and l-diversity) figures of a release, as recorded and reported: sizes only, no values. */
export interface RiskFigures {
  k: number;
  l?: number;
  quasiIdentifiers: string[];
  /** Groups of records sharing quasi-identifier values. */
  groups: number;
  /** The smallest group's size (0 when there are no records). */
  smallestGroup: number;
  /**
   * Groups below k, or with fewer than l distinct sensitive values: their (generalised) quasi-identifier values and
   * sizes, and their count of distinct sensitive values (never the values).
   */
  offending: Array<{ values: Record<string, string>; size: number; distinctSensitive?: number }>;
  /** Patients a refresh left out because their class fell below k (workers/research-refresh.ts); absent: none. */
  suppressedPatients?: number;
}

export interface ReleaseRecord {
  projectId: string;
  projectVersion: number;
  kind: 'release' | 'refresh';
  outcome: 'published' | 'refused';
  deidConfigSha256: string;
  cohortSize: number;
  excludedByConsent: number;
  published: number;
  removed: number;
  risk: RiskFigures;
  auditEventId?: string;
}

export async function recordRelease(client: pg.PoolClient, release: ReleaseRecord, now: Date = new Date()): Promise<number> {
  const result = await client.query<{ id: string }>(
    `INSERT INTO research_release (project_id, project_version, kind, outcome, released_at, deid_config_sha256, cohort_size, excluded_by_consent, published, removed, risk, audit_event_id)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id`,
    [release.projectId, release.projectVersion, release.kind, release.outcome, now, release.deidConfigSha256, release.cohortSize, release.excludedByConsent, release.published, release.removed, JSON.stringify(release.risk), release.auditEventId ?? null],
  );
  return Number(result.rows[0]!.id);
}

export interface ReleaseSummary extends ReleaseRecord {
  id: number;
  releasedAt: Date;
}

/** A project's releases and refreshes, newest first. */
export async function releasesOf(db: Queryable, projectId: string, limit = 50): Promise<ReleaseSummary[]> {
  const result = await db.query(
    `SELECT id, project_id, project_version, kind, outcome, released_at, deid_config_sha256, cohort_size, excluded_by_consent, published, removed, risk, audit_event_id
       FROM research_release WHERE project_id = $1 ORDER BY id DESC LIMIT $2`,
    [projectId, limit],
  );
  return result.rows.map((r) => ({
    id: Number(r.id),
    projectId: r.project_id,
    projectVersion: r.project_version,
    kind: r.kind,
    outcome: r.outcome,
    releasedAt: r.released_at,
    deidConfigSha256: r.deid_config_sha256,
    cohortSize: Number(r.cohort_size),
    excludedByConsent: r.excluded_by_consent,
    published: r.published,
    removed: r.removed,
    risk: r.risk,
    ...(r.audit_event_id ? { auditEventId: r.audit_event_id } : {}),
  }));
}

/** Marks a projection published up to ledger leaf `watermark` (a release also sets released_at). */
export async function setWatermark(client: pg.PoolClient, projectId: string, version: number, watermark: bigint, released: boolean): Promise<void> {
  // Only for the settings version the projection was made with: settings changed meanwhile read everything again.
  await client.query(`UPDATE research_project SET watermark = $3${released ? ', released_at = now()' : ''} WHERE id = $1 AND version = $2`, [projectId, version, watermark.toString()]);
}

/** The newest ledger leaf id, and the newest one at least `settleMs` old (see workers/research-refresh.ts). */
export async function ledgerHead(db: Queryable, settleMs: number): Promise<{ newest: bigint; settled: bigint }> {
  const result = await db.query<{ newest: string | null; settled: string | null }>(
    `SELECT (SELECT max(id) FROM ledger_leaf) AS newest,
            (SELECT max(id) FROM ledger_leaf WHERE created_at < now() - make_interval(secs => $1::double precision / 1000)) AS settled`,
    [settleMs],
  );
  const row = result.rows[0];
  return { newest: BigInt(row?.newest ?? '0'), settled: BigInt(row?.settled ?? '0') };
}

/**
 * The (type, id) of the versions whose leaves come after `after` (AuditEvents left out), from at most `limit` leaves;
 * `truncated` when there were more.
 */
export async function changesSince(db: Queryable, after: bigint, limit: number): Promise<{ changes: Array<{ resourceType: string; id: string }>; truncated: boolean }> {
  const result = await db.query<{ resource_type: string; resource_id: string }>(
    'SELECT resource_type, resource_id FROM ledger_leaf WHERE id > $1 AND resource_type <> $2 ORDER BY id LIMIT $3',
    [after.toString(), AUDIT_EVENT, limit + 1],
  );
  const seen = new Map<string, { resourceType: string; id: string }>();
  for (const row of result.rows.slice(0, limit)) seen.set(`${row.resource_type}/${row.resource_id}`, { resourceType: row.resource_type, id: row.resource_id });
  return { changes: [...seen.values()], truncated: result.rows.length > limit };
}

/**
 * The clinical patients (`Patient/x`) the given resources are about: a Patient itself, else its `patient` search
 * entries (a Consent's patient included), and whichever patient project `projectId`'s projection recorded for it.
 */
export async function patientsConcerned(db: Queryable, projectId: string, changed: ReadonlyArray<{ resourceType: string; id: string }>): Promise<string[]> {
  const patients = new Set(changed.filter((c) => c.resourceType === 'Patient').map((c) => `Patient/${c.id}`));
  const others = changed.filter((c) => c.resourceType !== 'Patient');
  if (others.length > 0) {
    const types = others.map((c) => c.resourceType);
    const ids = others.map((c) => c.id);
    const result = await db.query<{ patient: string }>(
      `SELECT t.reference AS patient FROM fhir_search_token t JOIN unnest($1::text[], $2::text[]) AS c(resource_type, id) ON t.resource_type = c.resource_type AND t.id = c.id
        WHERE t.param = 'patient' AND t.reference LIKE 'Patient/%'
       UNION
       SELECT p.patient FROM research_projection p JOIN unnest($1::text[], $2::text[]) AS c(resource_type, id) ON p.source_type = c.resource_type AND p.source_id = c.id
        WHERE p.project_id = $3`,
      [types, ids, projectId],
    );
    for (const row of result.rows) patients.add(row.patient);
  }
  return [...patients].sort();
}

/** One criterion of a researcher's search; all must hold, the values of one are alternatives. */
export type ResearchCriterion =
  | { kind: 'patient'; values: string[] }
  | { kind: 'id'; values: string[] }
  | { kind: 'token'; param: string; values: Array<{ system?: string; code: string }> }
  | { kind: 'date'; param: string; values: Array<{ prefix: string; start: Date; end: Date }> };

/** A search of one project's research rows of one type, newest published first. */
export async function searchResearch(
  db: Queryable,
  schema: string,
  projectId: string,
  resourceType: string,
  criteria: readonly ResearchCriterion[],
  paging: { count: number; offset: number },
): Promise<{ total: number; resources: Array<Record<string, unknown>> }> {
  const research = quoted(researchSchema(schema));
  const params: unknown[] = [projectId, resourceType];
  const p = (value: unknown): string => {
    params.push(value);
    return `$${params.length}`;
  };
  const conditions = ['r.project_id = $1', 'r.resource_type = $2'];
  for (const criterion of criteria) {
    if (criterion.kind === 'patient') conditions.push(`r.patient = ANY(${p(criterion.values)}::text[])`);
    else if (criterion.kind === 'id') conditions.push(`r.id = ANY(${p(criterion.values)}::text[])`);
    else if (criterion.kind === 'token') {
      const alternatives = criterion.values.map((v) => (v.system === undefined ? `t.code = ${p(v.code)}` : `(t.code = ${p(v.code)} AND t.system = ${p(v.system)})`));
      conditions.push(`EXISTS (SELECT 1 FROM ${research}.search_token t WHERE t.project_id = r.project_id AND t.resource_type = r.resource_type AND t.id = r.id
        AND t.param = ${p(criterion.param)} AND (${alternatives.join(' OR ')}))`);
    } else {
      // The resource's time is a range [low, high) (a date stands for its whole day, month or year); the prefixes
      // compare it with the range the parameter's precision covers, as FHIR date search does.
      const alternatives = criterion.values.map(({ prefix, start, end }) => {
        switch (prefix) {
          case 'ne': return `NOT (d.low >= ${p(start)} AND d.high <= ${p(end)})`;
          case 'gt': return `d.high > ${p(end)}`;
          case 'sa': return `d.low >= ${p(end)}`;
          case 'ge': return `d.high > ${p(start)}`;
          case 'lt': return `d.low < ${p(start)}`;
          case 'eb': return `d.high <= ${p(start)}`;
          case 'le': return `d.low < ${p(end)}`;
          default: return `(d.low >= ${p(start)} AND d.high <= ${p(end)})`;
        }
      });
      conditions.push(`EXISTS (SELECT 1 FROM ${research}.search_date d WHERE d.project_id = r.project_id AND d.resource_type = r.resource_type AND d.id = r.id
        AND d.param = ${p(criterion.param)} AND (${alternatives.join(' OR ')}))`);
    }
  }
  const where = conditions.join(' AND ');
  const total = (await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${research}.resource r WHERE ${where}`, params)).rows[0]?.n ?? 0;
  const rows = await db.query({
    text: `SELECT r.content FROM ${research}.resource r WHERE ${where} ORDER BY r.published_at DESC, r.id LIMIT ${Number(paging.count)} OFFSET ${Number(paging.offset)}`,
    values: params,
    types: LOSSLESS_JSON_TYPES,
  });
  return { total, resources: rows.rows.map((r) => r.content as Record<string, unknown>) };
}

/** A Bulk Data export of one project's research data. */
export interface BulkExport {
  id: string;
  projectId: string;
  /** The credential that asked (`oauth-client/<id>`, `api-key/<id>`): only it may poll, fetch and cancel. */
  client: string;
  state: 'accepted' | 'in-progress' | 'completed' | 'failed';
  request: string;
  groupId: string;
  types: string[] | null;
  since: Date | null;
  transactionTime: Date | null;
  progress: string | null;
  error: string | null;
  createdAt: Date;
}

function toExport(row: Record<string, unknown>): BulkExport {
  return {
    id: row.id as string,
    projectId: row.project_id as string,
    client: row.client as string,
    state: row.state as BulkExport['state'],
    request: row.request as string,
    groupId: row.group_id as string,
    types: row.types as string[] | null,
    since: row.since as Date | null,
    transactionTime: row.transaction_time as Date | null,
    progress: row.progress as string | null,
    error: row.error as string | null,
    createdAt: row.created_at as Date,
  };
}

const EXPORT_COLUMNS = 'id, project_id, client, state, request, group_id, types, since, transaction_time, progress, error, created_at';

export async function createExport(db: Queryable, schema: string, request: { projectId: string; client: string; request: string; groupId: string; types: string[] | null; since: Date | null }): Promise<string> {
  const id = randomUUID();
  await db.query(
    `INSERT INTO ${quoted(researchSchema(schema))}.bulk_export (id, project_id, client, state, request, group_id, types, since, progress) VALUES ($1, $2, $3, 'accepted', $4, $5, $6, $7, 'accepted')`,
    [id, request.projectId, request.client, request.request, request.groupId, request.types, request.since],
  );
  return id;
}

export async function readExport(db: Queryable, schema: string, id: string): Promise<BulkExport | undefined> {
  const result = await db.query(`SELECT ${EXPORT_COLUMNS} FROM ${quoted(researchSchema(schema))}.bulk_export WHERE id = $1`, [id]);
  return result.rows[0] ? toExport(result.rows[0]) : undefined;
}

/**
 * Takes the oldest accepted export (or one left in progress for more than `staleMs` by a process that stopped) and
 * marks it in progress, with its transaction time: the data it reads is the research database as of that moment.
 */
export async function claimExport(db: Queryable, schema: string, staleMs: number): Promise<BulkExport | undefined> {
  const research = quoted(researchSchema(schema));
  const result = await db.query(
    `UPDATE ${research}.bulk_export SET state = 'in-progress', started_at = now(), transaction_time = now(), progress = 'reading'
      WHERE id = (SELECT id FROM ${research}.bulk_export
                   WHERE state = 'accepted' OR (state = 'in-progress' AND started_at < now() - make_interval(secs => $1::double precision / 1000))
                   ORDER BY created_at FOR UPDATE SKIP LOCKED LIMIT 1)
      RETURNING ${EXPORT_COLUMNS}`,
    [staleMs],
  );
  return result.rows[0] ? toExport(result.rows[0]) : undefined;
}

/** The research rows of `types` (all the project's types when null) published after `since`, by type, in pages. */
export async function exportPage(db: Queryable, schema: string, projectId: string, resourceType: string, since: Date | null, afterId: string, limit: number): Promise<Array<{ id: string; content: Record<string, unknown> }>> {
  const result = await db.query({
    text: `SELECT id, content FROM ${quoted(researchSchema(schema))}.resource
            WHERE project_id = $1 AND resource_type = $2 AND ($3::timestamptz IS NULL OR published_at > $3) AND id > $4
            ORDER BY id LIMIT $5`,
    values: [projectId, resourceType, since, afterId, limit],
    types: LOSSLESS_JSON_TYPES,
  });
  return result.rows.map((r) => ({ id: r.id as string, content: r.content as Record<string, unknown> }));
}

/** The resource types a project's research rows hold. */
export async function researchTypes(db: Queryable, schema: string, projectId: string): Promise<string[]> {
  const result = await db.query<{ resource_type: string }>(`SELECT DISTINCT resource_type FROM ${quoted(researchSchema(schema))}.resource WHERE project_id = $1 ORDER BY resource_type`, [projectId]);
  return result.rows.map((r) => r.resource_type);
}

/** Stores one NDJSON file of an export; false when the export is gone (cancelled meanwhile). */
export async function writeExportFile(db: Queryable, schema: string, exportId: string, resourceType: string, part: number, count: number, ndjson: Buffer): Promise<boolean> {
  const research = quoted(researchSchema(schema));
  const result = await db.query(
    `INSERT INTO ${research}.bulk_export_file (export_id, resource_type, part, count, ndjson)
     SELECT id, $2, $3, $4, $5 FROM ${research}.bulk_export WHERE id = $1 AND state = 'in-progress'`,
    [exportId, resourceType, part, count, ndjson],
  );
  return (result.rowCount ?? 0) > 0;
}

export async function updateExport(db: Queryable, schema: string, id: string, change: { state?: 'completed' | 'failed'; progress?: string; error?: string }): Promise<void> {
  await db.query(
    `UPDATE ${quoted(researchSchema(schema))}.bulk_export SET state = coalesce($2, state), progress = coalesce($3, progress), error = coalesce($4, error),
            completed_at = CASE WHEN $2 IS NULL THEN completed_at ELSE now() END, started_at = CASE WHEN $2 IS NULL THEN now() ELSE started_at END
      WHERE id = $1 AND state = 'in-progress'`,
    [id, change.state ?? null, change.progress ?? null, change.error ?? null],
  );
}

/** An export's files: type, part and count, in order (the manifest's output). */
export async function exportFiles(db: Queryable, schema: string, exportId: string): Promise<Array<{ resourceType: string; part: number; count: number }>> {
  const result = await db.query<{ resource_type: string; part: number; count: number }>(
    `SELECT resource_type, part, count FROM ${quoted(researchSchema(schema))}.bulk_export_file WHERE export_id = $1 ORDER BY resource_type, part`,
    [exportId],
  );
  return result.rows.map((r) => ({ resourceType: r.resource_type, part: r.part, count: r.count }));
}

export async function readExportFile(db: Queryable, schema: string, exportId: string, resourceType: string, part: number): Promise<Buffer | undefined> {
  const result = await db.query<{ ndjson: Buffer }>(`SELECT ndjson FROM ${quoted(researchSchema(schema))}.bulk_export_file WHERE export_id = $1 AND resource_type = $2 AND part = $3`, [exportId, resourceType, part]);
  return result.rows[0]?.ndjson;
}

/** Deletes an export and its files (a cancel, or a client's DELETE once it has its files). */
export async function deleteExport(db: Queryable, schema: string, id: string): Promise<boolean> {
  const result = await db.query(`DELETE FROM ${quoted(researchSchema(schema))}.bulk_export WHERE id = $1`, [id]);
  return (result.rowCount ?? 0) > 0;
}

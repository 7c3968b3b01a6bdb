/**
 * The research projection: what a project's cohort looks like in the research database, built from the clinical
 * store (ResearchProjector), kept current as new versions arrive (ResearchRefresher), and exported for researchers
 * (Bulk Data, the same refresher's second duty).
 *
 * A projection, for a release and for every refresh alike:
 *  1. the cohort: the patients the project's Group describes (store/research-cohort.ts);
 *  2. consent: each patient's active consents decide for requester `ResearchStudy/<id>` with purpose HRESCH
 *     (consent/decide.ts, the engine's default policy: under opt-in a patient without a research permit is left out);
 *     every released resource is decided as well, so a deny inside a permit (a sensitivity label) withholds it;
 *  3. the released types and elements, de-identified with the project's config and secret (research/);
 *  4. k-anonymity (and l-diversity) of the de-identified Patients' quasi-identifiers: below k, nothing is published;
 *  5. publication in one transaction: the changed rows, the rows whose source left, the release record, the
 *     AuditEvent naming the patients whose data was written (in the clinical store, where their own view finds it).
 *
 * Why refresh by sweeping the ledger rather than by a hook in the ingest worker or a job per committed batch: every
 * version written by any path (mapping, the FHIR write routes, a patient merge, a consent) has a ledger leaf in its
 * own transaction, and leaf ids only grow; a watermark on them sees every change whatever wrote it, needs nothing from
 * the writers, survives a lost queue or a restart (the watermark is in Postgres), and costs one index range scan per
 * project per pass when nothing changed. Leaf ids are taken before commit, so a transaction may commit after a later
 * one: the watermark only moves to leaves older than `settleMs`, and the leaves after it are read again on the next
 * pass (a projection of unchanged sources publishes nothing, so reading them again costs a recomputation only).
 * A refresh recomputes the patients the changed versions are about (and the candidates not published: left out by
 * consent, or suppressed below k) and publishes only the difference: rows whose keyed source hash changed, and
 * removals. A changed Group or study, new settings, or more changes than one pass reads recompute everyone.
 */
import type pg from 'pg';
import { stringifyJson } from '../anchor/index.ts';
import { errorFields, type Logger } from '../config/logger.ts';
import { decide, DEFAULT_SENSITIVITY_RULES, resourceFacts, type DefaultPolicy, type Requester, type SensitivityRule } from '../consent/index.ts';
import { AnchorlineError } from '../errors/index.ts';
import { DEFAULT_DEID_CONFIG, deidentifyResource, kAnonymity, namesOf, parseDeidConfig, quasiIdentifierRows } from '../research/index.ts';
import { auditTrail, consents, research, researchCohort, resources, withTransaction, type StoredResource } from '../store/index.ts';

type Json = Record<string, unknown>;

export interface ResearchProjectorOptions {
  pool: pg.Pool;
  /** The engine's schema (config database.schema); the research schema is named after it. */
  schema: string;
  /** What decides when no consent applies (config consent.default). */
  defaultPolicy: DefaultPolicy;
  /** Label rules added to the engine's own (config consent.sensitivityRules). */
  sensitivityRules?: readonly SensitivityRule[];
  /** Leaves younger than this are read again by the next refresh, in ms (config research.settleMs). Default 5000. */
  settleMs?: number;
  log: Logger;
}

/** What one projection did, as the release route answers it and the release record keeps it. No identifiers. */
export interface ProjectionReport {
  projectId: string;
  projectVersion: number;
  kind: 'release' | 'refresh';
  outcome: 'published' | 'refused' | 'unchanged';
  deidConfigSha256: string;
  cohortSize: number;
  excludedByConsent: number;
  /** Resources withheld one by one by the patient's consent (a deny inside a research permit). */
  withheldByConsent: number;
  published: number;
  removed: number;
  risk: research.RiskFigures;
}

/** Changed versions one refresh reads to find the patients concerned; beyond it, it recomputes everyone. */
const MAX_CHANGES_PER_PASS = 10_000;
/** ResearchStudy statuses under which nothing more is released or refreshed. */
const CLOSED_STUDY = new Set(['withdrawn', 'disapproved', 'completed', 'administratively-completed']);
/** Types whose resources a projection's patient reference is read from, in the de-identified content. */
const PATIENT_ELEMENTS = ['subject', 'patient', 'beneficiary'];
/** Elements of a de-identified resource indexed as the research search's `code` and `category` tokens. */
const CODE_ELEMENTS: Record<string, string> = { code: 'code', vaccineCode: 'code', medicationCodeableConcept: 'code', type: 'code', category: 'category' };
/** Elements read as a resource's `date`, the first one present, in this order. */
const DATE_ELEMENTS = ['effectiveDateTime', 'effectivePeriod', 'onsetDateTime', 'recordedDate', 'performedDateTime', 'performedPeriod', 'issued', 'authoredOn', 'occurrenceDateTime', 'period', 'started', 'date', 'birthDate'];

export class ResearchProjector {
  private readonly options: ResearchProjectorOptions;
  private readonly rules: readonly SensitivityRule[];

  constructor(options: ResearchProjectorOptions) {
    this.options = options;
    this.rules = [...DEFAULT_SENSITIVITY_RULES, ...(options.sensitivityRules ?? [])];
  }

  /**
   * Builds project `projectId`'s projection and publishes what changed. A release that fails the k-anonymity check
   * throws ANCHORLINE_ERR_RESEARCH_K_ANONYMITY (its `report` on the error) after recording the refusal; a refresh
   * that fails it publishes nothing and returns the refusal. `actor` is who asked (the steward; the engine for a
   * refresh).
   */
  async run(projectId: string, kind: 'release' | 'refresh', actor: auditTrail.AuditActor): Promise<ProjectionReport> {
    const { pool, schema } = this.options;
    const project = await research.readProject(pool, projectId);
    if (!project) throw new AnchorlineError('ANCHORLINE_ERR_NOT_FOUND', `research project ${projectId} has no settings; PUT /research/projects/${projectId} first`);
    // Taken before anything is read: whatever commits later has a leaf after it, or is read again (settleMs).
    const head = await research.ledgerHead(pool, this.options.settleMs ?? 5_000);
    const study = await resources.readCurrent(pool, 'ResearchStudy', projectId);
    if (!study || study.deleted) throw new AnchorlineError('ANCHORLINE_ERR_NOT_FOUND', `ResearchStudy/${projectId} is not stored`);
    // A study that was withdrawn, disapproved or completed gets no more data: what was released stays as it was.
    if (CLOSED_STUDY.has(study.content.status as string)) {
      throw new AnchorlineError('ANCHORLINE_ERR_RESEARCH_PROJECT_INVALID', `ResearchStudy/${projectId} is ${study.content.status as string}: nothing more is released`);
    }
    const group = await resources.readCurrent(pool, 'Group', project.groupId);
    if (!group || group.deleted) throw new AnchorlineError('ANCHORLINE_ERR_RESEARCH_PROJECT_INVALID', `the project's cohort Group/${project.groupId} is not stored`);
    const config = parseDeidConfig((await research.deidConfigByDigest(pool, project.deidConfigSha256)) ?? DEFAULT_DEID_CONFIG);

    const candidates = await researchCohort.cohortPatients(pool, group.content);
    // A refresh recomputes only the patients something happened to since the watermark (their records, their
    // consents), and the candidates whose data is not published (left out by consent, or suppressed below k: a new
    // classmate may change that); everyone else's rows stand. A release, new settings, a changed Group or study, or
    // more changes than one pass reads, recompute everyone.
    const published = new Set(await research.projectedPatients(pool, projectId));
    const affected = kind === 'refresh' && project.watermark !== null ? await this.affectedPatients(project) : undefined;
    const recomputed = affected === undefined ? candidates : candidates.filter((p) => affected.has(p) || !published.has(p));
    const standing = affected === undefined ? [] : candidates.filter((p) => !affected.has(p) && published.has(p));
    const requester: Requester = { fhirUser: `ResearchStudy/${projectId}`, memberOf: [], roles: [], purpose: 'HRESCH' };
    const now = new Date();
    const rows: research.ResearchRow[] = [];
    const deidentifiedPatients: Json[] = [];
    /** The clinical patient of each de-identified Patient, in the same order. */
    const patientOrder: string[] = [];
    const deidentifiedRelated: Json[] = [];
    let excludedByConsent = 0;
    let withheldByConsent = 0;
    const types = [...new Set(['Patient', ...project.releasedTypes])];
    const deidentify = (stored: StoredResource, patient: string, knownNames: string[]): Json | undefined =>
      deidentifyResource(releasedElements(stored.content, project.elements[stored.resourceType]), config, { projectSecret: project.secret, patient, knownNames }).resource;
    /** Keeps a de-identified resource for the risk check: the Patient as the patient's row, the rest as related. */
    const countForRisk = (stored: StoredResource, patient: string, deidentified: Json): void => {
      if (stored.resourceType === 'Patient') {
        deidentifiedPatients.push(deidentified);
        patientOrder.push(patient);
      } else {
        deidentifiedRelated.push(deidentified);
      }
    };
    for (const patient of recomputed) {
      const patientConsents = await consents.activeConsents(pool, patient);
      const permits = (stored: StoredResource): boolean => decide(patientConsents, requester, resourceFacts(stored.content, this.rules), this.options.defaultPolicy, now).permit;
      // The patient first: one left out by consent costs one read, not their whole record.
      const patientRecord = await resources.readCurrent(pool, 'Patient', patient.slice('Patient/'.length));
      if (!patientRecord || patientRecord.deleted || !permits(patientRecord)) {
        excludedByConsent += 1;
        continue;
      }
      // The patient's names are scrubbed from every free text the config keeps, in each of their resources.
      const knownNames = namesOf(patientRecord.content.name);
      for (const stored of await this.compartment(patient.slice('Patient/'.length), types)) {
        if (!permits(stored)) {
          withheldByConsent += 1;
          continue;
        }
        const deidentified = deidentify(stored, patient, knownNames);
        if (!deidentified) continue;
        countForRisk(stored, patient, deidentified);
        if (stored.resourceType === 'Patient' && !project.releasedTypes.includes('Patient')) continue;
        rows.push(researchRow(stored, patient, deidentified, research.sourceHash(project.secret, stored)));
      }
    }
    // The standing members count in the k-anonymity check with their de-identified Patient (and, for a sensitive
    // attribute drawn from their conditions or observations, those), as published.
    const sensitiveType = project.sensitive === 'condition' ? 'Condition' : project.sensitive === 'observation' ? 'Observation' : undefined;
    for (const patient of standing) {
      const records = await this.compartment(patient.slice('Patient/'.length), sensitiveType ? ['Patient', sensitiveType] : ['Patient']);
      const patientRecord = records.find((r) => r.resourceType === 'Patient');
      if (!patientRecord) continue;
      const knownNames = namesOf(patientRecord.content.name);
      for (const stored of records) {
        const deidentified = deidentify(stored, patient, knownNames);
        if (deidentified) countForRisk(stored, patient, deidentified);
      }
    }
    /** The patients whose rows this projection decides; the others' rows are left as they are. */
    const scope = affected === undefined ? undefined : new Set([...recomputed, ...affected]);

    let risk = riskOf(deidentifiedPatients, deidentifiedRelated, project);
    if (kind === 'refresh' && risk.offending.length > 0) {
      // A refresh cannot be refused the way a release is: what changed may be a withdrawal (a consent revoked, a
      // patient who left the cohort), which must take effect, and which can leave the withdrawn patient's classmates
      // below k. So the patients of the classes below k are suppressed: their rows are not published, and those
      // already published are removed. Classes are whole, so suppressing one changes no other class's size.
      const offending = new Set(risk.offending.map((g) => classKey(g.values, project.quasiIdentifiers)));
      const rowsOf = quasiIdentifierRows(deidentifiedPatients, project.quasiIdentifiers);
      const suppressed = new Set(patientOrder.filter((_, i) => offending.has(classKey(rowsOf[i]!, project.quasiIdentifiers))));
      const remainingPatients = deidentifiedPatients.filter((_, i) => !suppressed.has(patientOrder[i]!));
      const remainingIds = new Set(remainingPatients.map((p) => `Patient/${p.id as string}`));
      for (let i = rows.length - 1; i >= 0; i--) if (suppressed.has(rows[i]!.source.patient)) rows.splice(i, 1);
      for (const patient of suppressed) scope?.add(patient);
      risk = { ...riskOf(remainingPatients, deidentifiedRelated.filter((r) => remainingIds.has(((r.subject ?? r.patient) as Json | undefined)?.reference as string)), project), suppressedPatients: suppressed.size };
    }
    const base = {
      projectId,
      projectVersion: project.version,
      kind,
      deidConfigSha256: project.deidConfigSha256,
      cohortSize: candidates.length - excludedByConsent,
      excludedByConsent,
      withheldByConsent,
      risk,
    };
    const system = { kind: actor.kind, id: actor.id } as const;
    if (risk.offending.length > 0) {
      const report: ProjectionReport = { ...base, outcome: 'refused', published: 0, removed: 0 };
      await withTransaction(pool, async (client) => {
        const [auditEventId] = await research.recordResearchEvents(client, [{
          activity: kind,
          actor,
          study: `ResearchStudy/${projectId}`,
          patients: [],
          outcome: '4',
          description: `${kind} refused: ${risk.offending.length} quasi-identifier group(s) below k=${project.k}${project.l ? ` or l=${project.l}` : ''}; nothing published`,
        }], now);
        await research.recordRelease(client, { ...base, outcome: 'refused', published: 0, removed: 0, ...(auditEventId ? { auditEventId } : {}) }, now);
      });
      this.options.log.warn({ projectId, kind, offendingGroups: risk.offending.length, by: `${system.kind}/${system.id}` }, 'research: projection below k; nothing published');
      if (kind === 'release') {
        throw Object.assign(new AnchorlineError('ANCHORLINE_ERR_RESEARCH_K_ANONYMITY', `${risk.offending.length} quasi-identifier group(s) of ${risk.groups} are smaller than k=${project.k}${project.l ? ` or have fewer than l=${project.l} distinct ${project.sensitive} values` : ''}`), { report });
      }
      return report;
    }

    return withTransaction(pool, async (client) => {
      const publication = await research.publishProjection(client, schema, projectId, rows, scope);
      if (kind === 'refresh' && publication.published === 0 && publication.removed === 0) {
        await research.setWatermark(client, projectId, project.version, head.settled, false);
        return { ...base, outcome: 'unchanged', published: 0, removed: 0 };
      }
      // A release concerns every patient whose data the research database holds after it; a refresh those whose
      // rows it wrote or removed. One event per patient, as BALP records a disclosure about several patients, so that
      // each patient's own view of the trail (which shows events about them alone) finds it; and one for the
      // release itself, naming none, which the release record points to.
      const patients = kind === 'release' ? await research.projectedPatients(client, projectId) : publication.patients;
      const study = `ResearchStudy/${projectId}`;
      const [auditEventId] = await research.recordResearchEvents(client, [
        {
          activity: kind,
          actor,
          study,
          patients: [],
          description: `${kind}: ${publication.published} resource(s) published, ${publication.removed} removed, ${patients.length} patient(s) concerned; cohort ${base.cohortSize}, ${excludedByConsent} excluded by consent; de-identification config sha256:${project.deidConfigSha256}; k=${project.k}, smallest group ${risk.smallestGroup}`,
        },
        ...patients.map((patient) => ({ activity: kind, actor, study, patients: [patient], description: `${kind}: this patient's de-identified data in the research database of ${study}` })),
      ], now);
      await research.recordRelease(client, { ...base, outcome: 'published', published: publication.published, removed: publication.removed, ...(auditEventId ? { auditEventId } : {}) }, now);
      await research.setWatermark(client, projectId, project.version, head.settled, kind === 'release');
      return { ...base, outcome: 'published', published: publication.published, removed: publication.removed };
    });
  }

  /**
   * The patients whose data may have changed since the project's watermark: those a changed version is about (its
   * patient search entry, or the patient the projection recorded for it, so a record that moved or went counts).
   * Undefined when everything must be recomputed: the Group or the study changed, or more changed than one pass reads.
   */
  private async affectedPatients(project: research.ResearchProject): Promise<Set<string> | undefined> {
    const { changes, truncated } = await research.changesSince(this.options.pool, project.watermark ?? 0n, MAX_CHANGES_PER_PASS);
    if (truncated) return undefined;
    if (changes.some((c) => (c.resourceType === 'Group' && c.id === project.groupId) || (c.resourceType === 'ResearchStudy' && c.id === project.id))) return undefined;
    return new Set(await research.patientsConcerned(this.options.pool, project.id, changes));
  }

  /** The current resources of one patient's compartment of `types`, the Patient included. */
  private async compartment(patientId: string, types: string[]): Promise<StoredResource[]> {
    const out: StoredResource[] = [];
    const pageSize = 1_000;
    for (let offset = 0; ; offset += pageSize) {
      const page = await resources.compartmentResources(this.options.pool, patientId, { count: pageSize, offset, types });
      out.push(...page);
      if (page.length < pageSize) return out;
    }
  }
}

/** The elements a project releases of one resource: the listed top-level ones (all when none are listed). */
function releasedElements(content: Json, elements: readonly string[] | undefined): Json {
  if (!elements || elements.length === 0) return content;
  const kept: Json = { resourceType: content.resourceType, id: content.id, ...(content.meta ? { meta: content.meta } : {}) };
  for (const element of elements) if (element in content) kept[element] = content[element];
  return kept;
}

function researchRow(source: StoredResource, patient: string, content: Json, sourceHash: string): research.ResearchRow {
  const type = content.resourceType as string;
  const id = content.id as string;
  let pseudonymousPatient: string | null = type === 'Patient' ? `Patient/${id}` : null;
  for (const element of PATIENT_ELEMENTS) {
    const reference = (content[element] as Json | undefined)?.reference;
    if (pseudonymousPatient === null && typeof reference === 'string' && reference.startsWith('Patient/')) pseudonymousPatient = reference;
  }
  const tokens: research.ResearchRow['tokens'] = [];
  for (const [element, param] of Object.entries(CODE_ELEMENTS)) {
    const value = content[element];
    for (const concept of Array.isArray(value) ? value : [value]) {
      for (const coding of ((concept as Json | undefined)?.coding as Json[] | undefined) ?? []) {
        if (typeof coding?.code === 'string') tokens.push({ param, system: typeof coding.system === 'string' ? coding.system : '', code: coding.code });
      }
    }
  }
  if (type === 'Patient' && typeof content.gender === 'string') tokens.push({ param: 'gender', system: 'http://hl7.org/fhir/administrative-gender', code: content.gender });
  const dates: research.ResearchRow['dates'] = [];
  for (const element of DATE_ELEMENTS) {
    const range = dateRange(content[element]);
    if (range) {
      dates.push({ param: 'date', ...range });
      break;
    }
  }
  return { source: { resourceType: source.resourceType, id: source.id, versionId: source.versionId, patient }, resourceType: type, id, patient: pseudonymousPatient, content, sourceHash, tokens, dates };
}

/** A FHIR date, dateTime, instant or Period as the range of time it covers, [low, high). */
export function dateRange(value: unknown): { low: Date; high: Date } | undefined {
  if (value && typeof value === 'object') {
    const period = value as Json;
    const start = typeof period.start === 'string' ? dateRange(period.start) : undefined;
    const end = typeof period.end === 'string' ? dateRange(period.end) : undefined;
    if (!start && !end) return undefined;
    return { low: (start ?? end)!.low, high: end ? end.high : new Date('9999-12-31T00:00:00Z') };
  }
  if (typeof value !== 'string') return undefined;
  const match = /^(\d{4})(?:-(\d{2})(?:-(\d{2})(T.*)?)?)?$/.exec(value);
  if (!match) return undefined;
  const [, year, month, day, time] = match;
  if (time) {
    const at = new Date(value);
    return Number.isNaN(at.getTime()) ? undefined : { low: at, high: new Date(at.getTime() + 1) };
  }
  const low = new Date(Date.UTC(Number(year), month ? Number(month) - 1 : 0, day ? Number(day) : 1));
  const high = day ? new Date(low.getTime() + 86_400_000) : month ? new Date(Date.UTC(Number(year), Number(month), 1)) : new Date(Date.UTC(Number(year) + 1, 0, 1));
  return { low, high };
}

/** One equivalence class's key: its quasi-identifier values in order, a missing one as `*` (research/risk.ts). */
function classKey(values: Record<string, string | undefined>, quasiIdentifiers: readonly string[]): string {
  return JSON.stringify(quasiIdentifiers.map((qi) => (values[qi] === undefined || values[qi] === '' ? '*' : values[qi])));
}

/** The k-anonymity and l-diversity figures of the de-identified Patients, by the project's quasi-identifiers. */
function riskOf(patients: Json[], related: Json[], project: research.ResearchProject): research.RiskFigures {
  const sensitive = project.sensitive ? { sensitive: project.sensitive } : {};
  const records = quasiIdentifierRows(patients, project.quasiIdentifiers, { ...sensitive, related });
  const result = kAnonymity(records, project.quasiIdentifiers, project.k, { ...sensitive, ...(project.l ? { l: project.l } : {}) });
  return {
    k: project.k,
    ...(project.l ? { l: project.l } : {}),
    quasiIdentifiers: project.quasiIdentifiers,
    groups: result.groups,
    smallestGroup: result.smallestGroup,
    // The classes by their generalised quasi-identifier values and sizes: what a steward needs to generalise
    // further, and never a record, a pseudonym or a sensitive value.
    offending: result.offending.map((g) => ({ values: g.values, size: g.size, ...(g.distinctSensitive === undefined ? {} : { distinctSensitive: g.distinctSensitive }) })),
  };
}

export interface ResearchRefresherOptions {
  projector: ResearchProjector;
  pool: pg.Pool;
  schema: string;
  log: Logger;
  /** How often projects are checked for new versions and exports for work, in ms (config research.refreshIntervalMs). */
  intervalMs: number;
  /** An export left in progress this long by a stopped process is taken up again, in ms. Default 60000. */
  exportStaleMs?: number;
  /** Resources per NDJSON file of an export. Default 10000. */
  resourcesPerFile?: number;
}

/** The engine, as the actor of a refresh. */
const ENGINE_ACTOR: auditTrail.AuditActor = { kind: 'sender', id: 'anchorline/research-refresh', name: 'anchorline research refresh' };

/**
 * The periodic worker: refreshes every released project whose relevant resources changed since its watermark, then
 * runs waiting Bulk Data exports. One pass at a time in a process; across processes, publications of one project
 * are serialised by its advisory lock and exports are claimed with SKIP LOCKED.
 */
export class ResearchRefresher {
  private readonly options: ResearchRefresherOptions;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  constructor(options: ResearchRefresherOptions) {
    this.options = options;
  }

  start(): void {
    this.timer = setInterval(() => void this.pass(), this.options.intervalMs);
    this.timer.unref();
  }

  /** One pass (refresh, then exports); a pass already under way is waited for instead. */
  pass(): Promise<void> {
    this.running ??= this.run().finally(() => (this.running = undefined));
    return this.running;
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.running;
  }

  private async run(): Promise<void> {
    const { pool, log } = this.options;
    try {
      for (const projectId of await research.releasedProjectIds(pool)) {
        const project = await research.readProject(pool, projectId);
        if (!project) continue;
        if (project.watermark !== null && !(await this.changed(project))) continue;
        const study = await resources.readCurrent(pool, 'ResearchStudy', projectId);
        if (!study || study.deleted || CLOSED_STUDY.has(study.content.status as string)) continue;
        try {
          const report = await this.options.projector.run(projectId, 'refresh', ENGINE_ACTOR);
          if (report.outcome !== 'unchanged') log.info({ projectId, outcome: report.outcome, published: report.published, removed: report.removed }, 'research: projection refreshed');
        } catch (error) {
          log.warn({ projectId, ...errorFields(error) }, 'research: refresh failed; will try again');
        }
      }
      for (;;) {
        const claimed = await research.claimExport(pool, this.options.schema, this.options.exportStaleMs ?? 60_000);
        if (!claimed) break;
        await this.export(claimed);
      }
    } catch (error) {
      log.warn(errorFields(error), 'research: pass failed; will try again');
    }
  }

  /** True when a leaf after the watermark is of a type the projection reads. */
  private async changed(project: research.ResearchProject): Promise<boolean> {
    const relevant = new Set(['Patient', 'Consent', 'Group', 'ResearchStudy', 'Condition', 'Observation', ...project.releasedTypes]);
    const { changes, truncated } = await research.changesSince(this.options.pool, project.watermark ?? 0n, MAX_CHANGES_PER_PASS);
    return truncated || changes.some((c) => relevant.has(c.resourceType));
  }

  /** Writes an export's NDJSON files, by type, from the research database as of its transaction time. */
  private async export(bulk: research.BulkExport): Promise<void> {
    const { pool, schema, log } = this.options;
    const perFile = this.options.resourcesPerFile ?? 10_000;
    try {
      const available = await research.researchTypes(pool, schema, bulk.projectId);
      const types = bulk.types ? available.filter((t) => bulk.types!.includes(t)) : available;
      for (const [index, type] of types.entries()) {
        let after = '';
        let part = 0;
        for (;;) {
          const page = await research.exportPage(pool, schema, bulk.projectId, type, bulk.since, after, perFile);
          if (page.length === 0) break;
          part += 1;
          const ndjson = Buffer.from(page.map((r) => `${stringifyJson(r.content)}\n`).join(''), 'utf8');
          if (!(await research.writeExportFile(pool, schema, bulk.id, type, part, page.length, ndjson))) return;
          after = page[page.length - 1]!.id;
          if (page.length < perFile) break;
        }
        await research.updateExport(pool, schema, bulk.id, { progress: `${index + 1} of ${types.length} types exported` });
      }
      await research.updateExport(pool, schema, bulk.id, { state: 'completed', progress: 'completed' });
    } catch (error) {
      log.warn({ exportId: bulk.id, ...errorFields(error) }, 'research: export failed');
      await research.updateExport(pool, schema, bulk.id, { state: 'failed', error: 'the export could not be written; start a new one' }).catch(() => undefined);
    }
  }
}

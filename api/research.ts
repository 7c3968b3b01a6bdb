/**
 * Research projects (data stewards) and the research database's FHIR search (researchers). Bulk Data $export is in
 * api/bulk-export.ts.
 *
 * Stewards (scope research-admin, or admin):
 *   POST /fhir/ResearchStudy, PUT /fhir/ResearchStudy/{id}   the project, as a FHIR ResearchStudy
 *   POST /fhir/Group, PUT /fhir/Group/{id}                   its cohort (store/research-cohort.ts says what a cohort
 *                                                            Group may hold)
 *   PUT  /research/projects/{id}                             its release settings: the Group, released types and
 *                                                            elements, the de-identification config, quasi-identifiers,
 *                                                            k (and l over a sensitive attribute); a new version each time
 *   POST /research/projects/{id}/$rotate-secret              a new project secret (a new version; every pseudonym changes)
 *   GET  /research/projects/{id}                             the settings, the config digest and the releases
 *   POST /research/projects/{id}/$release                    de-identify the cohort into the research database
 *   POST /research/projects/{id}/researchers                 a researcher's OAuth client, scope research/{id} only
 * ResearchStudy and Group are stored like every resource: versioned, with a leaf and an AuditEvent each. Their
 * answer is the stored version (the steward wrote it; a FHIR read scope is not what authorises it here).
 *
 * Researchers (scope research/{id}, or a steward):
 *   GET /research/projects/{id}/fhir/{type}?patient=&code=&category=&date=&_id=&_count=&_offset=
 * searches the project's de-identified rows only; `patient` takes the pseudonymous id the research data carries.
 *   GET /research/projects/{id}/omop/{table}
 * is the same data as an OMOP CDM table (store/research-omop.ts), as CSV.
 *
 * Every definition, release, search and export is an AuditEvent (store/audit-trail.ts researchAuditEvent, purpose
 * HRESCH, the study as entity): `GET /fhir/AuditEvent?entity=ResearchStudy/{id}` lists a project's usage. A
 * release's names the clinical patients whose data it released, so each patient sees it in their own trail.
 */
import { randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type pg from 'pg';
import { stringifyJson } from '../anchor/index.ts';
import { AnchorlineError, operationOutcome } from '../errors/index.ts';
import { validateFhirResource } from '../mappers/index.ts';
import { DEFAULT_DEID_CONFIG, deidConfigSchema } from '../research/index.ts';
import { oauthClients, research, researchCohort, researchOmop, resources, SEARCH_PARAMETERS, withTransaction } from '../store/index.ts';
import type { ResearchProjector } from '../workers/research-refresh.ts';
import { researchScope } from './access.ts';
import { accessOf, auditActor, dateValue, FHIR_JSON } from './fhir.ts';
import { ifMatchVersion, parseStrictJsonBody } from './fhir-write.ts';

export interface ResearchRouteOptions {
  pool: pg.Pool;
  /** The engine's schema; the research schema is named after it (store/research.ts researchSchema). */
  schema: string;
  projector: ResearchProjector;
}

/** Largest ResearchStudy, Group or settings body accepted, in bytes: a Group may list many members. */
export const MAX_DEFINITION_BYTES = 4 * 1024 * 1024;
const JSON_MEDIA_TYPES = ['application/fhir+json', 'application/json'];
const ID_PATTERN = /^[A-Za-z0-9\-.]{1,64}$/;
const RESOURCE_TYPES = new Set(Object.keys(SEARCH_PARAMETERS));
const DEFAULT_COUNT = 20;
const MAX_COUNT = 1_000;
const MAX_OFFSET = 10_000;
/** What a researcher's search accepts: the research database's minimal index, and paging. */
const SEARCH_PARAMETERS_ACCEPTED = new Set(['patient', 'code', 'category', 'gender', 'date', '_id', '_count', '_offset', '_format']);

type StudyType = research.StudyType;

export function registerResearchRoutes(app: FastifyInstance, options: ResearchRouteOptions): void {
  void app.register(async (scope) => {
    // The body's bytes are the written version's source: kept as sent and parsed here (as api/fhir-write.ts does).
    scope.removeContentTypeParser(['application/json']);
    scope.addContentTypeParser(JSON_MEDIA_TYPES, { parseAs: 'buffer', bodyLimit: MAX_DEFINITION_BYTES }, (_request, body, done) => done(null, body));

    for (const type of research.STUDY_TYPES) {
      scope.post(`/fhir/${type}`, {
        config: { scope: 'research-admin' },
        bodyLimit: MAX_DEFINITION_BYTES,
        schema: { tags: ['research'], summary: `Create a ${type} (research project definition)`, consumes: JSON_MEDIA_TYPES },
      }, async (request, reply) => writeStudy(options, request, reply, type, 'create', undefined));
      scope.put<{ Params: { id: string } }>(`/fhir/${type}/:id`, {
        config: { scope: 'research-admin' },
        bodyLimit: MAX_DEFINITION_BYTES,
        schema: { tags: ['research'], summary: `Update (or create) a ${type} (research project definition)`, consumes: JSON_MEDIA_TYPES },
      }, async (request, reply) => {
        assertId(request.params.id);
        return writeStudy(options, request, reply, type, 'update', request.params.id);
      });
    }

    scope.put<{ Params: { id: string } }>('/research/projects/:id', {
      config: { scope: 'research-admin' },
      bodyLimit: MAX_DEFINITION_BYTES,
      schema: {
        tags: ['research'],
        summary: 'Set a research project\'s release settings (a new version)',
        description: 'Body: {group, releasedTypes, elements?, deidConfig?, quasiIdentifiers, k, l?, sensitive?}. The project secret is made at the first version and never returned.',
        consumes: JSON_MEDIA_TYPES,
      },
    }, async (request, reply) => {
      assertId(request.params.id);
      const body = parseJsonBody(request.body);
      return defineSettings(options, request, reply, request.params.id, body, false);
    });
  });

  app.post<{ Params: { id: string } }>('/research/projects/:id/$rotate-secret', {
    config: { scope: 'research-admin' },
    schema: { tags: ['research'], summary: 'Rotate a research project\'s secret (a new version; every pseudonym of the project changes)' },
  }, async (request, reply) => {
    const project = await projectOf(options, request.params.id);
    return defineSettings(options, request, reply, project.id, settingsBody(project), true);
  });

  app.get<{ Params: { id: string } }>('/research/projects/:id', {
    config: { scope: 'research-admin' },
    schema: { tags: ['research'], summary: 'A research project: its settings, de-identification config digest and releases' },
  }, async (request) => {
    const project = await projectOf(options, request.params.id);
    const releases = await research.releasesOf(options.pool, project.id);
    return { ...summary(project), releases: releases.map((r) => ({ ...r, releasedAt: r.releasedAt.toISOString() })) };
  });

  app.post<{ Params: { id: string } }>('/research/projects/:id/$release', {
    config: { scope: 'research-admin' },
    schema: {
      tags: ['research'],
      summary: 'Release a research project: de-identify its cohort into the research database',
      description: 'Refused with 422 ANCHORLINE_ERR_RESEARCH_K_ANONYMITY (and the sizes of the offending groups) when a quasi-identifier group is smaller than k.',
    },
  }, async (request, reply) => {
    const project = await projectOf(options, request.params.id);
    try {
      const report = await options.projector.run(project.id, 'release', auditActor(request));
      return reply.header('content-type', 'application/json').send(report);
    } catch (error) {
      const report = (error as { report?: unknown }).report;
      if (!(error instanceof AnchorlineError) || report === undefined) throw error;
      // The refusal's OperationOutcome, with the report (group sizes, never their values) beside it.
      return reply.status(error.spec.httpStatus).header('content-type', FHIR_JSON).header('x-anchorline-error', error.code).send({ ...operationOutcome(error), report });
    }
  });

  app.post<{ Params: { id: string }; Body: { name?: unknown } }>('/research/projects/:id/researchers', {
    config: { scope: 'research-admin' },
    schema: { tags: ['research'], summary: 'Register a researcher of a project: an OAuth client (client credentials) holding research/{id} only; its secret is shown once' },
  }, async (request, reply) => {
    const project = await projectOf(options, request.params.id);
    const name = request.body?.name;
    if (typeof name !== 'string' || name.trim() === '' || name.length > 200) throw new AnchorlineError('ANCHORLINE_ERR_INVALID_REQUEST', 'name (the researcher or their organisation, at most 200 characters) is required', { location: 'name' });
    const created = await oauthClients.createClient(options.pool, { name: name.trim(), scopes: [researchScope(project.id)] });
    return reply.status(201).send({ clientId: created.client.clientId, clientSecret: created.secret, scopes: created.client.scopes });
  });

  app.get<{ Params: { id: string; type: string }; Querystring: Record<string, string | string[]> }>('/research/projects/:id/fhir/:type', {
    config: { scope: 'research' },
    schema: { tags: ['research'], summary: 'Search a research project\'s de-identified data (patient, code, category, gender, date, _id, _count, _offset)' },
  }, async (request, reply) => {
    const { id, type } = request.params;
    const access = accessOf(request);
    requireResearcher(access, id);
    if (!RESOURCE_TYPES.has(type)) throw new AnchorlineError('ANCHORLINE_ERR_NOT_FOUND', `resource type ${type} is not supported`);
    const { criteria, paging } = parseResearchSearch(request.query);
    const result = await research.searchResearch(options.pool, options.schema, id, type, criteria, paging);
    const query = request.url.includes('?') ? request.url.slice(request.url.indexOf('?') + 1) : '';
    await withTransaction(options.pool, (client) =>
      research.recordResearchEvents(client, [{ activity: 'query', actor: auditActor(request), study: `ResearchStudy/${id}`, patients: [], query: `${type}?${query}`, description: `${result.resources.length} of ${result.total} ${type} returned` }]),
    );
    const base = `${request.protocol}://${request.host}/research/projects/${id}/fhir`;
    const self = `${base}/${type}${query ? `?${query}` : ''}`;
    const links = [{ relation: 'self', url: self }];
    if (paging.offset + paging.count < result.total) {
      const next = new URLSearchParams(query);
      next.set('_offset', String(paging.offset + paging.count));
      next.set('_count', String(paging.count));
      links.push({ relation: 'next', url: `${base}/${type}?${next.toString()}` });
    }
    const bundle = {
      resourceType: 'Bundle',
      type: 'searchset',
      total: result.total,
      link: links,
      entry: result.resources.map((resource) => ({ fullUrl: `${base}/${resource.resourceType as string}/${resource.id as string}`, resource, search: { mode: 'match' } })),
    };
    return reply.header('content-type', FHIR_JSON).send(stringifyJson(bundle));
  });
  app.get<{ Params: { id: string; table: string } }>('/research/projects/:id/omop/:table', {
    config: { scope: 'research' },
    schema: { tags: ['research'], summary: 'One OMOP CDM table (person, observation_period, condition_occurrence, measurement) of a research project\'s de-identified data, as CSV' },
  }, async (request, reply) => {
    const { id, table } = request.params;
    requireResearcher(accessOf(request), id);
    if (!(researchOmop.OMOP_TABLES as readonly string[]).includes(table)) throw new AnchorlineError('ANCHORLINE_ERR_NOT_FOUND', `OMOP table ${table.slice(0, 64)} is not served (served: ${researchOmop.OMOP_TABLES.join(', ')})`);
    const rows = await researchOmop.omopTable(options.pool, options.schema, id, table as researchOmop.OmopTable);
    await withTransaction(options.pool, (client) =>
      research.recordResearchEvents(client, [{ activity: 'export', actor: auditActor(request), study: `ResearchStudy/${id}`, patients: [], description: `OMOP CDM table ${table}: ${rows.rows.length} row(s)` }]),
    );
    return reply.header('content-type', 'text/csv; charset=utf-8').send(researchOmop.omopCsv(rows));
  });
}

/** Throws unless the caller may query project `projectId`'s research data. */
export function requireResearcher(access: ReturnType<typeof accessOf>, projectId: string): void {
  if (!access.canResearch(projectId)) throw new AnchorlineError('ANCHORLINE_ERR_FORBIDDEN', `this credential lacks ${researchScope(projectId)}`);
}

function assertId(id: string): void {
  if (!ID_PATTERN.test(id)) throw new AnchorlineError('ANCHORLINE_ERR_INVALID_REQUEST', 'id is not a valid FHIR id');
}

async function projectOf(options: ResearchRouteOptions, id: string): Promise<research.ResearchProject> {
  assertId(id);
  const project = await research.readProject(options.pool, id);
  if (!project) throw new AnchorlineError('ANCHORLINE_ERR_NOT_FOUND', `research project ${id} has no settings`);
  return project;
}

/** A project's settings as a steward writes them (PUT /research/projects/{id}): never its secret. */
function settingsBody(project: research.ResearchProject): Record<string, unknown> {
  return {
    group: `Group/${project.groupId}`,
    releasedTypes: project.releasedTypes,
    elements: project.elements,
    deidConfigSha256: project.deidConfigSha256,
    quasiIdentifiers: project.quasiIdentifiers,
    k: project.k,
    ...(project.l === undefined ? {} : { l: project.l }),
    ...(project.sensitive === undefined ? {} : { sensitive: project.sensitive }),
  };
}

/** A project as a steward reads it: its settings, version and study, never its secret. */
function summary(project: research.ResearchProject): Record<string, unknown> {
  return { id: project.id, version: project.version, study: `ResearchStudy/${project.id}`, ...settingsBody(project), releasedAt: project.releasedAt?.toISOString() ?? null };
}

function parseJsonBody(raw: unknown): Record<string, unknown> {
  if (!Buffer.isBuffer(raw) || raw.length === 0) throw new AnchorlineError('ANCHORLINE_ERR_UNSUPPORTED_MEDIA_TYPE', `send the body with Content-Type ${JSON_MEDIA_TYPES.join(' or ')}`);
  const value = parseStrictJsonBody(raw);
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new AnchorlineError('ANCHORLINE_ERR_INVALID_REQUEST', 'the body is not a JSON object');
  return value as Record<string, unknown>;
}

function invalid(location: string, detail: string): AnchorlineError {
  return new AnchorlineError('ANCHORLINE_ERR_RESEARCH_PROJECT_INVALID', `${location}: ${detail}`, { location });
}

async function writeStudy(options: ResearchRouteOptions, request: FastifyRequest, reply: FastifyReply, type: StudyType, interaction: 'create' | 'update', urlId: string | undefined): Promise<FastifyReply> {
  const raw = request.body as Buffer;
  const resource = parseJsonBody(raw);
  if (resource.resourceType !== type) throw invalid('resourceType', `must be ${type}: this route writes ${type} resources only`);
  if (interaction === 'update' && resource.id !== urlId) throw new AnchorlineError('ANCHORLINE_ERR_INVALID_REQUEST', 'the body\'s id must be the id in the URL', { location: `${type}.id` });
  const content: Record<string, unknown> = { ...resource, id: interaction === 'create' ? randomUUID() : urlId! };
  const structure = validateFhirResource(content);
  if (structure.length > 0) throw invalid(type, structure.slice(0, 5).join('; '));
  if (type === 'Group') {
    const problems = researchCohort.cohortProblems(content);
    if (problems.length > 0) throw invalid(problems[0]!.location, problems.map((p) => `${p.location}: ${p.detail}`).join('; '));
  } else {
    const enrollment = Array.isArray(content.enrollment) ? (content.enrollment as Array<{ reference?: unknown } | null>) : [];
    if (enrollment.some((e) => typeof e?.reference !== 'string' || !/^Group\/[A-Za-z0-9\-.]{1,64}$/.test(e.reference))) throw invalid('ResearchStudy.enrollment', 'an enrollment is a reference Group/<id>');
  }
  const expectedVersion = ifMatchVersion(request.headers['if-match']);
  const id = content.id as string;
  const written = await withTransaction(options.pool, async (client) => {
    // A Group's definition is part of the usage of every project whose cohort it is: the settings name it, or the
    // study enrols it.
    const studies = type === 'ResearchStudy'
      ? [`ResearchStudy/${id}`]
      : (await client.query<{ id: string }>(
          `SELECT id FROM research_project WHERE group_id = $1
           UNION SELECT id FROM fhir_resource WHERE resource_type = 'ResearchStudy' AND NOT deleted AND content -> 'enrollment' @> $2::jsonb
           ORDER BY id`,
          [id, JSON.stringify([{ reference: `Group/${id}` }])],
        )).rows.map((r) => `ResearchStudy/${r.id}`);
    return research.writeStudyResource(client, {
      resourceType: type,
      content,
      interaction,
      ...(expectedVersion === undefined ? {} : { expectedVersion }),
      raw,
      actor: auditActor(request),
      studies,
    });
  });
  const stored = written.stored;
  // Sent as text: the response check of the FHIR read routes asks for a FHIR read scope, and a steward writing a
  // definition is answered with what they wrote, which their research-admin scope covers.
  return reply
    .status(written.created ? 201 : 200)
    .header('etag', `W/"${stored.versionId}"`)
    .header('last-modified', stored.lastUpdated.toUTCString())
    .header('location', `/fhir/${type}/${stored.id}/_history/${stored.versionId}`)
    .header('content-type', FHIR_JSON)
    .send(stringifyJson(stored.content));
}

async function defineSettings(options: ResearchRouteOptions, request: FastifyRequest, reply: FastifyReply, id: string, body: Record<string, unknown>, rotateSecret: boolean): Promise<FastifyReply> {
  const allowed = new Set(['group', 'releasedTypes', 'elements', 'deidConfig', 'deidConfigSha256', 'quasiIdentifiers', 'k', 'l', 'sensitive']);
  for (const key of Object.keys(body)) if (!allowed.has(key)) throw invalid(key, `unknown setting; the settings are ${[...allowed].join(', ')}`);
  const study = await resources.readCurrent(options.pool, 'ResearchStudy', id);
  if (!study || study.deleted) throw invalid('ResearchStudy', `ResearchStudy/${id} is not stored; write it first (PUT /fhir/ResearchStudy/${id})`);
  const group = typeof body.group === 'string' ? /^Group\/([A-Za-z0-9\-.]{1,64})$/.exec(body.group)?.[1] : undefined;
  if (!group) throw invalid('group', 'the cohort, a reference Group/<id>');
  const stored = await resources.readCurrent(options.pool, 'Group', group);
  if (!stored || stored.deleted) throw invalid('group', `Group/${group} is not stored; write it first (PUT /fhir/Group/${group})`);
  const types = stringList(body.releasedTypes, 'releasedTypes');
  if (types.length === 0) throw invalid('releasedTypes', 'at least one resource type');
  for (const type of types) if (!RESOURCE_TYPES.has(type) || type === 'AuditEvent' || type === 'Consent') throw invalid('releasedTypes', `${type} is not a clinical resource type the engine stores`);
  const elements: Record<string, string[]> = {};
  if (body.elements !== undefined) {
    if (body.elements === null || typeof body.elements !== 'object' || Array.isArray(body.elements)) throw invalid('elements', 'an object of resource type to element names');
    for (const [type, names] of Object.entries(body.elements)) {
      if (!types.includes(type)) throw invalid(`elements.${type}`, 'elements are given for released types only');
      elements[type] = stringList(names, `elements.${type}`);
    }
  }
  let deidConfig: unknown;
  if (body.deidConfig !== undefined) {
    const parsed = deidConfigSchema.safeParse(body.deidConfig);
    if (!parsed.success) throw invalid('deidConfig', parsed.error.issues.slice(0, 3).map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; '));
    deidConfig = parsed.data;
  } else if (typeof body.deidConfigSha256 === 'string') {
    deidConfig = await research.deidConfigByDigest(options.pool, body.deidConfigSha256);
    if (deidConfig === undefined) throw invalid('deidConfigSha256', 'no stored config has this digest');
  } else {
    deidConfig = DEFAULT_DEID_CONFIG;
  }
  const quasiIdentifiers = stringList(body.quasiIdentifiers, 'quasiIdentifiers');
  if (quasiIdentifiers.length === 0) throw invalid('quasiIdentifiers', 'at least one quasi-identifier (e.g. gender, birthDate)');
  const k = body.k;
  if (typeof k !== 'number' || !Number.isInteger(k) || k < 2 || k > 1_000) throw invalid('k', 'an integer from 2 to 1000');
  const l = body.l;
  if (l !== undefined && (typeof l !== 'number' || !Number.isInteger(l) || l < 2 || l > 1_000)) throw invalid('l', 'an integer from 2 to 1000');
  const sensitive = body.sensitive;
  if ((l === undefined) !== (sensitive === undefined)) throw invalid(l === undefined ? 'l' : 'sensitive', 'l and sensitive are given together');
  if (sensitive !== undefined && (typeof sensitive !== 'string' || sensitive === '')) throw invalid('sensitive', 'the name of the sensitive attribute');
  const settings: research.ProjectSettings = {
    groupId: group,
    releasedTypes: types,
    elements,
    quasiIdentifiers,
    k,
    ...(l === undefined ? {} : { l: l as number }),
    ...(sensitive === undefined ? {} : { sensitive: sensitive as string }),
  };
  const actor = auditActor(request);
  const defined = await withTransaction(options.pool, async (client) => {
    const result = await research.defineProject(client, id, settings, deidConfig, { rotateSecret, definedBy: `${actor.kind}/${actor.id}` });
    await research.recordResearchEvents(client, [{
      activity: 'define',
      actor,
      study: `ResearchStudy/${id}`,
      patients: [],
      description: `settings version ${result.version}: cohort Group/${group}, types ${types.join(', ')}, de-identification config sha256:${result.deidConfigSha256}, k=${k}${l === undefined ? '' : `, l=${l as number}`}${result.secretRotated ? ', new project secret' : ''}`,
    }]);
    return result;
  });
  const project = await research.readProject(options.pool, id);
  return reply.status(defined.version === 1 ? 201 : 200).header('content-type', 'application/json').send(summary(project!));
}

function stringList(value: unknown, location: string): string[] {
  if (!Array.isArray(value) || value.some((v) => typeof v !== 'string' || v === '' || v.length > 128) || value.length > 100) throw invalid(location, 'a list of names');
  return [...new Set(value as string[])];
}

/** A researcher's search: the research index's parameters, refused when unknown (never silently widened). */
export function parseResearchSearch(query: Record<string, string | string[] | undefined>): { criteria: research.ResearchCriterion[]; paging: { count: number; offset: number } } {
  const criteria: research.ResearchCriterion[] = [];
  let count = DEFAULT_COUNT;
  let offset = 0;
  for (const [name, raw] of Object.entries(query)) {
    if (raw === undefined) continue;
    if (!SEARCH_PARAMETERS_ACCEPTED.has(name)) throw new AnchorlineError('ANCHORLINE_ERR_INVALID_REQUEST', `search parameter ${JSON.stringify(name.slice(0, 64))} is not supported here (supported: ${[...SEARCH_PARAMETERS_ACCEPTED].join(', ')})`, { location: name.slice(0, 64) });
    const values = Array.isArray(raw) ? raw : [raw];
    if (values.length > 10) throw new AnchorlineError('ANCHORLINE_ERR_INVALID_REQUEST', `${name} may be given at most 10 times`, { location: name });
    for (const value of values) {
      const alternatives = value.split(',').filter((v) => v !== '').slice(0, 100);
      if (name === '_count' || name === '_offset') {
        if (!/^(0|[1-9][0-9]{0,6})$/.test(value)) throw new AnchorlineError('ANCHORLINE_ERR_INVALID_REQUEST', `${name} must be a non-negative integer`, { location: name });
        if (name === '_count') count = Math.min(Number(value), MAX_COUNT);
        else if (Number(value) > MAX_OFFSET) throw new AnchorlineError('ANCHORLINE_ERR_INVALID_REQUEST', `_offset may be at most ${MAX_OFFSET}`, { location: name });
        else offset = Number(value);
      } else if (name === '_format') {
        continue;
      } else if (name === 'patient') {
        criteria.push({ kind: 'patient', values: alternatives.map((v) => (v.startsWith('Patient/') ? v : `Patient/${v}`)) });
      } else if (name === '_id') {
        criteria.push({ kind: 'id', values: alternatives });
      } else if (name === 'date') {
        criteria.push({ kind: 'date', param: 'date', values: alternatives.map((v) => dateValue(v, name)) });
      } else {
        criteria.push({
          kind: 'token',
          param: name,
          values: alternatives.map((v) => {
            const bar = v.indexOf('|');
            return bar < 0 ? { code: v } : { system: v.slice(0, bar), code: v.slice(bar + 1) };
          }),
        });
      }
    }
  }
  return { criteria, paging: { count, offset } };
}

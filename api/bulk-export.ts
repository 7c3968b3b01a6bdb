/**
 * FHIR Bulk Data Access (IG v2.0.0) Group export of a research project's de-identified data:
 *
 *   GET    /research/projects/{id}/fhir/Group/{groupId}/$export   kick-off: `Prefer: respond-async` (required);
 *          _outputFormat (application/fhir+ndjson, application/ndjson or ndjson), _type (comma-separated types),
 *          _since (instant). Any other parameter is refused (400) unless `Prefer: handling=lenient`, when it is
 *          ignored. Answers 202 with Content-Location: the status URL.
 *   GET    /research/projects/{id}/$export-status/{exportId}       202 with X-Progress and Retry-After while it runs;
 *          200 with the manifest {transactionTime, request, requiresAccessToken: true, output: [{type, url, count}],
 *          error: []} when done; 500 with an OperationOutcome when it failed.
 *   DELETE /research/projects/{id}/$export-status/{exportId}       cancels (or, once done, deletes) it: 202.
 *   GET    /research/projects/{id}/$export-file/{exportId}/{Type}-{n}.ndjson   one output file
 *          (application/fhir+ndjson), with the same access token (requiresAccessToken).
 *
 * Who: a researcher of the project (scope research/{id}) or a steward; an export's status and files are for the
 * credential that started it only. The Group is the project's cohort; its export is the research database's rows
 * of the project, never the clinical store. The work itself runs in the research worker (workers/research-refresh.ts),
 * so a restart or a second engine picks up an export nobody finished. Each kick-off is an AuditEvent (activity
 * export, purpose HRESCH) with its request.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type pg from 'pg';
import { AnchorlineError, operationOutcome } from '../errors/index.ts';
import { research, SEARCH_PARAMETERS, withTransaction } from '../store/index.ts';
import { accessOf, auditActor, FHIR_JSON } from './fhir.ts';
import { requireResearcher } from './research.ts';

export interface BulkExportOptions {
  pool: pg.Pool;
  schema: string;
  /** Retry-After of an in-progress status, in seconds. Default 2. */
  retryAfterSeconds?: number;
}

const OUTPUT_FORMATS = new Set(['application/fhir+ndjson', 'application/ndjson', 'ndjson']);
const KICK_OFF_PARAMETERS = new Set(['_outputFormat', '_type', '_since']);
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const FILE_NAME = /^([A-Z][A-Za-z]{1,63})-([1-9][0-9]{0,5})\.ndjson$/;
/** A FHIR instant: a dateTime with seconds and a zone. */
const INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;

/** The credential an export belongs to, as store/research.ts BulkExport.client records it. */
function clientOf(request: FastifyRequest): string {
  const { principal } = accessOf(request);
  return `${principal.kind}/${principal.id}`;
}

export function registerBulkExportRoutes(app: FastifyInstance, options: BulkExportOptions): void {
  const { pool, schema } = options;

  app.get<{ Params: { id: string; groupId: string }; Querystring: Record<string, string | string[]> }>('/research/projects/:id/fhir/Group/:groupId/$export', {
    config: { scope: 'research' },
    schema: { tags: ['research'], summary: 'Bulk Data $export of a research project\'s cohort (Prefer: respond-async; _type, _since, _outputFormat)' },
  }, async (request, reply) => {
    const { id, groupId } = request.params;
    requireResearcher(accessOf(request), id);
    const project = await research.readProject(pool, id);
    if (!project || project.groupId !== groupId) throw new AnchorlineError('ANCHORLINE_ERR_NOT_FOUND', `Group/${groupId} is not the cohort of research project ${id}`);
    const prefer = String(request.headers.prefer ?? '');
    if (!/(^|[,;\s])respond-async([,;\s]|$)/.test(prefer)) throw new AnchorlineError('ANCHORLINE_ERR_INVALID_REQUEST', 'a Bulk Data export is asynchronous: send Prefer: respond-async', { location: 'Prefer' });
    const accept = request.headers.accept;
    if (accept !== undefined && !/application\/fhir\+json|\*\/\*/.test(accept)) throw new AnchorlineError('ANCHORLINE_ERR_INVALID_REQUEST', 'the kick-off answers application/fhir+json', { location: 'Accept' });
    const lenient = /handling=lenient/.test(prefer);
    const query = request.query;
    for (const name of Object.keys(query)) {
      if (!KICK_OFF_PARAMETERS.has(name) && !lenient) throw new AnchorlineError('ANCHORLINE_ERR_INVALID_REQUEST', `export parameter ${JSON.stringify(name.slice(0, 64))} is not supported (supported: ${[...KICK_OFF_PARAMETERS].join(', ')}); send Prefer: handling=lenient to have it ignored`, { location: name.slice(0, 64) });
    }
    const one = (name: string): string | undefined => {
      const value = query[name];
      if (Array.isArray(value)) {
        if (value.length !== 1) throw new AnchorlineError('ANCHORLINE_ERR_INVALID_REQUEST', `${name} may be given once`, { location: name });
        return value[0];
      }
      return value;
    };
    const format = one('_outputFormat');
    if (format !== undefined && !OUTPUT_FORMATS.has(format)) throw new AnchorlineError('ANCHORLINE_ERR_INVALID_REQUEST', '_outputFormat must be application/fhir+ndjson', { location: '_outputFormat' });
    const typeList = one('_type');
    const types = typeList === undefined ? null : [...new Set(typeList.split(',').map((t) => t.trim()).filter((t) => t !== ''))];
    for (const type of types ?? []) if (!(type in SEARCH_PARAMETERS)) throw new AnchorlineError('ANCHORLINE_ERR_INVALID_REQUEST', `_type names ${JSON.stringify(type.slice(0, 64))}, not a resource type`, { location: '_type' });
    const sinceText = one('_since');
    let since: Date | null = null;
    if (sinceText !== undefined) {
      since = INSTANT.test(sinceText) ? new Date(sinceText) : new Date(Number.NaN);
      if (Number.isNaN(since.getTime())) throw new AnchorlineError('ANCHORLINE_ERR_INVALID_REQUEST', '_since must be a FHIR instant (e.g. 2026-12-01T00:00:00Z)', { location: '_since' });
    }
    const kickOff = `${request.protocol}://${request.host}${request.url}`;
    const exportId = await withTransaction(pool, async (client) => {
      const created = await research.createExport(client, schema, { projectId: id, client: clientOf(request), request: kickOff, groupId, types, since });
      await research.recordResearchEvents(client, [{
        activity: 'export',
        actor: auditActor(request),
        study: `ResearchStudy/${id}`,
        patients: [],
        query: request.url.includes('?') ? request.url.slice(request.url.indexOf('?') + 1) : '',
        description: `Bulk Data export ${created} of Group/${groupId}${types ? ` (${types.join(', ')})` : ''}${since ? ` since ${since.toISOString()}` : ''}`,
      }]);
      return created;
    });
    return reply.status(202).header('content-location', `${request.protocol}://${request.host}/research/projects/${id}/$export-status/${exportId}`).header('content-type', FHIR_JSON).send({
      resourceType: 'OperationOutcome',
      issue: [{ severity: 'information', code: 'informational', diagnostics: 'export accepted; poll the Content-Location URL' }],
    });
  });

  /** The caller's export `exportId` of project `id`; absent, or another credential's: 404 alike. */
  const exportOf = async (request: FastifyRequest<{ Params: { id: string; exportId: string } }>): Promise<research.BulkExport> => {
    const { id, exportId } = request.params;
    requireResearcher(accessOf(request), id);
    const bulk = UUID.test(exportId) ? await research.readExport(pool, schema, exportId) : undefined;
    if (!bulk || bulk.projectId !== id || bulk.client !== clientOf(request)) throw new AnchorlineError('ANCHORLINE_ERR_NOT_FOUND', 'no such export (it may have been cancelled or deleted)');
    return bulk;
  };

  app.get<{ Params: { id: string; exportId: string } }>('/research/projects/:id/$export-status/:exportId', {
    config: { scope: 'research' },
    schema: { tags: ['research'], summary: 'Bulk Data export status: 202 with X-Progress while it runs, 200 with the manifest when done' },
  }, async (request, reply) => {
    const bulk = await exportOf(request);
    if (bulk.state === 'accepted' || bulk.state === 'in-progress') {
      return reply.status(202).header('x-progress', bulk.progress ?? bulk.state).header('retry-after', String(options.retryAfterSeconds ?? 2)).send();
    }
    if (bulk.state === 'failed') {
      const error = new AnchorlineError('ANCHORLINE_ERR_INTERNAL', bulk.error ?? 'the export failed');
      return reply.status(500).header('content-type', FHIR_JSON).header('x-anchorline-error', error.code).send(operationOutcome(error));
    }
    const files = await research.exportFiles(pool, schema, bulk.id);
    const base = `${request.protocol}://${request.host}/research/projects/${bulk.projectId}/$export-file/${bulk.id}`;
    return reply.status(200).header('content-type', 'application/json').send({
      transactionTime: bulk.transactionTime!.toISOString(),
      request: bulk.request,
      requiresAccessToken: true,
      output: files.map((f) => ({ type: f.resourceType, url: `${base}/${f.resourceType}-${f.part}.ndjson`, count: f.count })),
      error: [],
    });
  });

  app.delete<{ Params: { id: string; exportId: string } }>('/research/projects/:id/$export-status/:exportId', {
    config: { scope: 'research' },
    schema: { tags: ['research'], summary: 'Cancel a Bulk Data export, or delete its files once done' },
  }, async (request, reply) => {
    const bulk = await exportOf(request);
    await research.deleteExport(pool, schema, bulk.id);
    return reply.status(202).header('content-type', FHIR_JSON).send({
      resourceType: 'OperationOutcome',
      issue: [{ severity: 'information', code: 'informational', diagnostics: 'export cancelled and its files deleted' }],
    });
  });

  app.get<{ Params: { id: string; exportId: string; file: string } }>('/research/projects/:id/$export-file/:exportId/:file', {
    config: { scope: 'research' },
    schema: { tags: ['research'], summary: 'One NDJSON output file of a completed Bulk Data export' },
  }, async (request, reply): Promise<FastifyReply> => {
    const bulk = await exportOf(request);
    const name = FILE_NAME.exec(request.params.file);
    const ndjson = name && bulk.state === 'completed' ? await research.readExportFile(pool, schema, bulk.id, name[1]!, Number(name[2])) : undefined;
    if (!ndjson) throw new AnchorlineError('ANCHORLINE_ERR_NOT_FOUND', 'no such output file');
    return reply.header('content-type', 'application/fhir+ndjson').send(ndjson);
  });
}

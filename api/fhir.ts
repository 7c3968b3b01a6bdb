/**
 * FHIR R4 REST: capability statement, read, vread, history and search over the resources the store holds.
 * Responses are application/fhir+json; errors are OperationOutcomes with anchorline error codes.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type pg from 'pg';
import { AnchorlineError } from '../errors/index.ts';
import { resources, SEARCH_PARAMETERS, type SearchCriterion, type StoredResource } from '../store/index.ts';

export const FHIR_JSON = 'application/fhir+json; charset=utf-8';
const RESOURCE_TYPES = Object.keys(SEARCH_PARAMETERS);
const ID_PATTERN = /^[A-Za-z0-9\-.]{1,64}$/;
const DEFAULT_COUNT = 20;
const MAX_COUNT = 1000;

function baseUrl(request: FastifyRequest): string {
  return `${request.protocol}://${request.host}/fhir`;
}

function assertType(type: string): void {
  if (!RESOURCE_TYPES.includes(type)) {
    throw new AnchorlineError('ANCHORLINE_ERR_NOT_FOUND', `resource type ${type} is not supported (supported: ${RESOURCE_TYPES.join(', ')})`);
  }
}

function assertId(id: string): void {
  if (!ID_PATTERN.test(id)) throw new AnchorlineError('ANCHORLINE_ERR_INVALID_REQUEST', 'resource id is not a valid FHIR id');
}

function sendResource(reply: FastifyReply, stored: StoredResource): FastifyReply {
  return reply
    .header('content-type', FHIR_JSON)
    .header('etag', `W/"${stored.versionId}"`)
    .header('last-modified', stored.lastUpdated.toUTCString())
    .send(stored.content);
}

function parsePaging(query: Record<string, string | string[] | undefined>): { count: number; offset: number } {
  const count = query._count === undefined ? DEFAULT_COUNT : Number(single(query._count, '_count'));
  const offset = query._offset === undefined ? 0 : Number(single(query._offset, '_offset'));
  if (!Number.isInteger(count) || count < 0) throw new AnchorlineError('ANCHORLINE_ERR_INVALID_REQUEST', '_count must be a non-negative integer', { location: '_count' });
  if (!Number.isInteger(offset) || offset < 0) throw new AnchorlineError('ANCHORLINE_ERR_INVALID_REQUEST', '_offset must be a non-negative integer', { location: '_offset' });
  return { count: Math.min(count, MAX_COUNT), offset };
}

function single(value: string | string[], name: string): string {
  if (Array.isArray(value)) {
    if (value.length !== 1) throw new AnchorlineError('ANCHORLINE_ERR_INVALID_REQUEST', `${name} may be given once`, { location: name });
    return value[0]!;
  }
  return value;
}

/** Splits a FHIR search value on unescaped commas (alternatives), unescaping `\,` `\|` `\$` `\\`. */
function alternatives(value: string): string[] {
  const out: string[] = [];
  let current = '';
  for (let i = 0; i < value.length; i++) {
    const c = value[i]!;
    if (c === '\\' && i + 1 < value.length) {
      current += value[++i];
    } else if (c === ',') {
      out.push(current);
      current = '';
    } else {
      current += c;
    }
  }
  out.push(current);
  return out.filter((v) => v !== '');
}

/** `system|code`, `|code` (no system) or `code` (any system); the bar is the first unescaped one. */
function tokenValue(raw: string): { system?: string; code: string } {
  const bar = raw.search(/(?<!\\)\|/);
  const unescape = (s: string): string => s.replace(/\\([\\|,$])/g, '$1');
  if (bar < 0) return { code: unescape(raw) };
  return { system: unescape(raw.slice(0, bar)), code: unescape(raw.slice(bar + 1)) };
}

export function parseSearch(type: string, query: Record<string, string | string[] | undefined>): SearchCriterion[] {
  const supported = SEARCH_PARAMETERS[type] ?? {};
  const criteria: SearchCriterion[] = [];
  for (const [rawName, rawValue] of Object.entries(query)) {
    if (rawValue === undefined || rawName === '_count' || rawName === '_offset' || rawName === '_format') continue;
    const values = Array.isArray(rawValue) ? rawValue : [rawValue];
    const [name, modifier] = rawName.split(':', 2) as [string, string | undefined];
    for (const value of values) {
      if (name === '_id') {
        criteria.push({ kind: 'id', values: alternatives(value) });
        continue;
      }
      const kind = supported[name];
      // Ignoring an unknown parameter would widen the search to every record: refuse instead.
      if (!kind) {
        throw new AnchorlineError('ANCHORLINE_ERR_INVALID_REQUEST', `unknown search parameter ${name} for ${type} (supported: _id, ${Object.keys(supported).join(', ')})`, { location: name });
      }
      if (kind === 'string') {
        if (modifier !== undefined && modifier !== 'exact') throw new AnchorlineError('ANCHORLINE_ERR_INVALID_REQUEST', `modifier :${modifier} is not supported on ${name}`, { location: rawName });
        criteria.push({ kind: 'string', param: name, values: alternatives(value), exact: modifier === 'exact' });
      } else {
        if (modifier !== undefined) throw new AnchorlineError('ANCHORLINE_ERR_INVALID_REQUEST', `modifier :${modifier} is not supported on ${name}`, { location: rawName });
        const tokens = value.split(/(?<!\\),/).filter(Boolean).map((v) => (kind === 'reference' ? referenceValue(v, name) : tokenValue(v)));
        criteria.push({ kind: 'token', param: name, values: tokens });
      }
      if (criteria.at(-1)!.kind !== 'id' && (criteria.at(-1) as { values: unknown[] }).values.length === 0) {
        throw new AnchorlineError('ANCHORLINE_ERR_INVALID_REQUEST', `search parameter ${name} has no value`, { location: name });
      }
    }
  }
  return criteria;
}

function referenceValue(raw: string, name: string): { code: string } {
  // `subject=Patient/123`, or a bare id for the patient parameter.
  if (raw.includes('/')) return { code: raw };
  if (name === 'patient' || name === 'subject') return { code: `Patient/${raw}` };
  return { code: raw };
}

function bundle(type: 'searchset' | 'history', base: string, total: number, entries: StoredResource[], links: Array<{ relation: string; url: string }>): Record<string, unknown> {
  return {
    resourceType: 'Bundle',
    type,
    total,
    link: links,
    entry: entries.map((r) => ({
      fullUrl: `${base}/${r.resourceType}/${r.id}`,
      resource: r.content,
      ...(type === 'searchset' ? { search: { mode: 'match' } } : { request: { method: r.versionId === 1 ? 'POST' : 'PUT', url: `${r.resourceType}/${r.id}` }, response: { status: r.versionId === 1 ? '201 Created' : '200 OK', lastModified: r.lastUpdated.toISOString() } }),
    })),
  };
}

function pageLinks(request: FastifyRequest, count: number, offset: number, total: number): Array<{ relation: string; url: string }> {
  const url = new URL(request.url, `${request.protocol}://${request.host}`);
  const at = (o: number): string => {
    url.searchParams.set('_count', String(count));
    url.searchParams.set('_offset', String(o));
    return url.toString();
  };
  const links = [{ relation: 'self', url: at(offset) }];
  if (count > 0 && offset + count < total) links.push({ relation: 'next', url: at(offset + count) });
  if (offset > 0) links.push({ relation: 'previous', url: at(Math.max(0, offset - count)) });
  return links;
}

const TERMINOLOGY_OPERATIONS = [
  { type: 'CodeSystem', operations: ['lookup', 'validate-code'] },
  { type: 'ConceptMap', operations: ['translate'] },
];

export function capabilityStatement(): Record<string, unknown> {
  return {
    resourceType: 'CapabilityStatement',
    status: 'active',
    date: '2026-11-21',
    kind: 'instance',
    software: { name: 'anchorline' },
    implementation: { description: 'anchorline FHIR R4 server' },
    fhirVersion: '4.0.1',
    format: ['application/fhir+json', 'json'],
    rest: [
      {
        mode: 'server',
        security: { service: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/restful-security-service', code: 'OAuth' }], text: 'Bearer API key' }] },
        resource: [
          ...RESOURCE_TYPES.map((type) => ({
            type,
            versioning: 'versioned',
            readHistory: true,
            interaction: [{ code: 'read' }, { code: 'vread' }, { code: 'history-instance' }, { code: 'search-type' }],
            searchParam: [
              { name: '_id', type: 'token' },
              ...Object.entries(SEARCH_PARAMETERS[type]!).map(([name, kind]) => ({ name, type: kind })),
            ],
          })),
          // Terminology (api/terminology.ts): read, search by url, and the FHIR R4 operations.
          ...TERMINOLOGY_OPERATIONS.map(({ type, operations }) => ({
            type,
            interaction: [{ code: 'read' }, { code: 'search-type' }],
            searchParam: [{ name: 'url', type: 'uri' }],
            operation: operations.map((name) => ({ name, definition: `http://hl7.org/fhir/OperationDefinition/${type}-${name}` })),
          })),
        ],
      },
    ],
  };
}

export function registerFhirRoutes(app: FastifyInstance, pool: pg.Pool): void {
  app.get('/fhir/metadata', { config: { public: true } }, async (_request, reply) => reply.header('content-type', FHIR_JSON).send(capabilityStatement()));

  app.get<{ Params: { type: string } ; Querystring: Record<string, string | string[]> }>('/fhir/:type', { config: { scope: 'read' } }, async (request, reply) => {
    const { type } = request.params;
    assertType(type);
    const criteria = parseSearch(type, request.query);
    const paging = parsePaging(request.query);
    const result = await resources.searchResources(pool, type, criteria, paging);
    return reply.header('content-type', FHIR_JSON).send(bundle('searchset', baseUrl(request), result.total, result.resources, pageLinks(request, paging.count, paging.offset, result.total)));
  });

  app.get<{ Params: { type: string; id: string } }>('/fhir/:type/:id', { config: { scope: 'read' } }, async (request, reply) => {
    const { type, id } = request.params;
    assertType(type);
    assertId(id);
    const stored = await resources.readCurrent(pool, type, id);
    if (!stored) throw new AnchorlineError('ANCHORLINE_ERR_NOT_FOUND', `${type}/${id} does not exist`);
    if (stored.deleted) throw new AnchorlineError('ANCHORLINE_ERR_GONE', `${type}/${id} was deleted`);
    return sendResource(reply, stored);
  });

  app.get<{ Params: { type: string; id: string }; Querystring: Record<string, string | string[]> }>('/fhir/:type/:id/_history', { config: { scope: 'read' } }, async (request, reply) => {
    const { type, id } = request.params;
    assertType(type);
    assertId(id);
    const paging = parsePaging(request.query);
    let since: Date | undefined;
    if (request.query._since !== undefined) {
      since = new Date(single(request.query._since, '_since'));
      if (Number.isNaN(since.getTime())) throw new AnchorlineError('ANCHORLINE_ERR_INVALID_REQUEST', '_since must be a FHIR instant', { location: '_since' });
    }
    const result = await resources.readHistory(pool, type, id, { ...paging, ...(since ? { since } : {}) });
    if (result.total === 0 && !since) throw new AnchorlineError('ANCHORLINE_ERR_NOT_FOUND', `${type}/${id} does not exist`);
    return reply.header('content-type', FHIR_JSON).send(bundle('history', baseUrl(request), result.total, result.versions, pageLinks(request, paging.count, paging.offset, result.total)));
  });

  app.get<{ Params: { type: string; id: string; vid: string } }>('/fhir/:type/:id/_history/:vid', { config: { scope: 'read' } }, async (request, reply) => {
    const { type, id, vid } = request.params;
    assertType(type);
    assertId(id);
    const versionId = Number(vid);
    if (!Number.isInteger(versionId) || versionId < 1) throw new AnchorlineError('ANCHORLINE_ERR_INVALID_REQUEST', 'version id must be a positive integer');
    const stored = await resources.readVersion(pool, type, id, versionId);
    if (!stored) throw new AnchorlineError('ANCHORLINE_ERR_NOT_FOUND', `${type}/${id}/_history/${vid} does not exist`);
    return sendResource(reply, stored);
  });
}

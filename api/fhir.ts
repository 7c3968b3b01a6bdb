/**
 * FHIR R4 REST: capability statement, read, vread, history and search (with _include and _revinclude) over the
 * resources the store holds. Responses are application/fhir+json; errors are OperationOutcomes with anchorline error
 * codes.
 *
 * Authorization is checked twice. Each handler checks the interaction on the type it serves and drops every
 * included resource the caller may not read (an OperationOutcome entry says how many were withheld). Then, whatever a
 * handler produced, a preSerialization hook checks every resource in the response body against the caller's scopes
 * and refuses the whole response if one is not allowed: nothing reaches a caller through _include, _revinclude or a
 * future route that forgot its check.
 *
 * Every answer that discloses records has an AuditEvent (store/audit-trail.ts). The read runs on the API pool (with its
 * statement timeout); its event then goes to the read-audit group commit, and the answer waits for that commit: when
 * the records are sent, their event is durable. If it cannot be written, the records are not sent (503).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type pg from 'pg';
import { AnchorlineError } from '../errors/index.ts';
import { auditTrail, resources, SEARCH_PARAMETERS, type SearchCriterion, type StoredResource } from '../store/index.ts';
import { documentBundleId } from '../mappers/index.ts';
import type { DatePrefix } from '../store/resources.ts';
import type { Access } from './access.ts';
import { filterThrough, requestContext, type ConsentGate, type GateContext } from './consent-gate.ts';
import { parsePositiveId, singleValue } from './params.ts';
import { parseResultShape, shapeResource, SHAPE_PARAMETERS, type ResultShape } from './fhir-shape.ts';

export const FHIR_JSON = 'application/fhir+json; charset=utf-8';
const RESOURCE_TYPES = Object.keys(SEARCH_PARAMETERS);
const ID_PATTERN = /^[A-Za-z0-9\-.]{1,64}$/;
const DEFAULT_COUNT = 20;
/**
 * What a search parameter's name may look like (FHIR names: letters, digits and hyphens, `_` only to start the
 * common parameters). Anything else, `__proto__` included, is refused before it is looked up.
 */
const PARAMETER_NAME = /^_?[A-Za-z][A-Za-z0-9-]{0,63}$/;
/** A non-negative integer as written canonically: no sign, exponent, hex, spaces or leading zeros. */
const CANONICAL_INTEGER = /^(0|[1-9][0-9]{0,14})$/;

/** What a FHIR search or history page may ask for (config http.maxSearchParameters, maxPageCount, ...). */
export interface SearchLimits {
  /** Search criteria, `_include` and `_revinclude` per request. */
  maxParameters: number;
  /** Alternatives (comma-separated values) per criterion. */
  maxValuesPerParameter: number;
  /** Largest page; a larger `_count` is lowered to it (FHIR lets a server return fewer than asked). */
  maxCount: number;
  /** Largest `_offset`; a larger one is refused. */
  maxOffset: number;
}

export const DEFAULT_SEARCH_LIMITS: SearchLimits = { maxParameters: 32, maxValuesPerParameter: 100, maxCount: 1_000, maxOffset: 10_000 };
/** Included resources per search page, over all _include and _revinclude parameters. */
const MAX_INCLUDED = 1000;
/** Parameters that shape the result rather than select it. */
const RESULT_PARAMETERS = new Set(['_count', '_offset', '_format', '_include', '_revinclude', ...SHAPE_PARAMETERS]);

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

function parsePaging(query: Record<string, string | string[] | undefined>, limits: SearchLimits): { count: number; offset: number } {
  const integer = (name: '_count' | '_offset', fallback: number): number => {
    const raw = query[name];
    if (raw === undefined) return fallback;
    const text = singleValue(raw, name);
    if (!CANONICAL_INTEGER.test(text)) throw new AnchorlineError('ANCHORLINE_ERR_INVALID_REQUEST', `${name} must be a non-negative integer in decimal digits`, { location: name });
    return Number(text);
  };
  const count = integer('_count', DEFAULT_COUNT);
  const offset = integer('_offset', 0);
  // Every row before the offset is read and thrown away: deep pages cost as much as reading everything before them.
  if (offset > limits.maxOffset) {
    throw new AnchorlineError('ANCHORLINE_ERR_INVALID_REQUEST', `_offset may be at most ${limits.maxOffset} (http.maxPageOffset); narrow the search instead, e.g. with _lastUpdated`, { location: '_offset' });
  }
  return { count: Math.min(count, limits.maxCount), offset };
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

/**
 * Refuses a search that asks for more than the limits allow, before anything is parsed or run: each criterion is one
 * more join for the database to plan and run (a thousand of them ran for minutes), each `_include` one more query.
 */
function checkSearchSize(query: Record<string, string | string[] | undefined>, limits: SearchLimits): void {
  let parameters = 0;
  for (const [name, value] of Object.entries(query)) {
    if (value === undefined || (RESULT_PARAMETERS.has(name) && name !== '_include' && name !== '_revinclude')) continue;
    parameters += Array.isArray(value) ? value.length : 1;
  }
  if (parameters > limits.maxParameters) {
    throw new AnchorlineError('ANCHORLINE_ERR_INVALID_REQUEST', `a search may carry at most ${limits.maxParameters} search parameters, _include and _revinclude (http.maxSearchParameters); this one has ${parameters}`);
  }
}

function checkAlternatives(name: string, count: number, limits: SearchLimits): void {
  if (count > limits.maxValuesPerParameter) {
    throw new AnchorlineError('ANCHORLINE_ERR_INVALID_REQUEST', `search parameter ${name} may list at most ${limits.maxValuesPerParameter} values (http.maxSearchValuesPerParameter)`, { location: name });
  }
}

export function parseSearch(type: string, query: Record<string, string | string[] | undefined>, limits: SearchLimits = DEFAULT_SEARCH_LIMITS): SearchCriterion[] {
  const supported = Object.hasOwn(SEARCH_PARAMETERS, type) ? SEARCH_PARAMETERS[type]! : {};
  checkSearchSize(query, limits);
  const criteria: SearchCriterion[] = [];
  for (const [rawName, rawValue] of Object.entries(query)) {
    if (rawValue === undefined || RESULT_PARAMETERS.has(rawName)) continue;
    const values = Array.isArray(rawValue) ? rawValue : [rawValue];
    const [name, modifier] = rawName.split(':', 2) as [string, string | undefined];
    // Looked up as an own property only: `constructor` or `__proto__` must not find what every object inherits.
    if (!PARAMETER_NAME.test(name) || (modifier !== undefined && !PARAMETER_NAME.test(modifier))) {
      throw new AnchorlineError('ANCHORLINE_ERR_INVALID_REQUEST', `${JSON.stringify(rawName.slice(0, 64))} is not a FHIR search parameter name`);
    }
    for (const value of values) {
      if (name === '_id') {
        const ids = alternatives(value);
        checkAlternatives(name, ids.length, limits);
        criteria.push({ kind: 'id', values: ids });
        continue;
      }
      const kind = name === '_lastUpdated' ? 'date' : Object.hasOwn(supported, name) ? supported[name] : undefined;
      // Ignoring an unknown parameter would widen the search to every record: refuse instead.
      if (!kind) {
        throw new AnchorlineError('ANCHORLINE_ERR_INVALID_REQUEST', `unknown search parameter ${name} for ${type} (supported: _id, ${Object.keys(supported).join(', ')})`, { location: name });
      }
      if (kind === 'date') {
        if (modifier !== undefined) throw new AnchorlineError('ANCHORLINE_ERR_INVALID_REQUEST', `modifier :${modifier} is not supported on ${name}`, { location: rawName });
        criteria.push({ kind: 'date', values: alternatives(value).map((v) => dateValue(v, name)) });
        continue;
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
      checkAlternatives(name, (criteria.at(-1) as { values: unknown[] }).values.length, limits);
    }
  }
  return criteria;
}

const DATE_VALUE = /^(eq|ne|gt|lt|ge|le|sa|eb)?(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})?)?)?)?$/;

/**
 * A FHIR date search value as the range its precision covers: `2026-11` is all of November. Values without a time
 * zone are read as UTC.
 */
export function dateValue(raw: string, name: string): { prefix: DatePrefix; start: Date; end: Date } {
  const match = DATE_VALUE.exec(raw);
  const invalid = (): AnchorlineError => new AnchorlineError('ANCHORLINE_ERR_INVALID_REQUEST', `${name} must be a FHIR date or dateTime with an optional prefix (eq, ne, gt, lt, ge, le, sa, eb)`, { location: name });
  if (!match) throw invalid();
  const [, prefix, year, month, day, hour, minute, second, fraction, zone] = match;
  const offsetMinutes = !zone || zone === 'Z' ? 0 : (zone.startsWith('-') ? -1 : 1) * (Number(zone.slice(1, 3)) * 60 + Number(zone.slice(4, 6)));
  const utc = (y: number, mo: number, d: number, h: number, mi: number, sec: number, ms: number): Date => new Date(Date.UTC(y, mo, d, h, mi, sec, ms) - offsetMinutes * 60_000);
  const y = Number(year);
  const mo = month ? Number(month) - 1 : 0;
  const d = day ? Number(day) : 1;
  let start: Date;
  let end: Date;
  if (!month) [start, end] = [utc(y, 0, 1, 0, 0, 0, 0), utc(y + 1, 0, 1, 0, 0, 0, 0)];
  else if (!day) [start, end] = [utc(y, mo, 1, 0, 0, 0, 0), utc(y, mo + 1, 1, 0, 0, 0, 0)];
  else if (!hour) [start, end] = [utc(y, mo, d, 0, 0, 0, 0), utc(y, mo, d + 1, 0, 0, 0, 0)];
  else {
    const h = Number(hour);
    const mi = Number(minute);
    if (second === undefined) [start, end] = [utc(y, mo, d, h, mi, 0, 0), utc(y, mo, d, h, mi + 1, 0, 0)];
    else if (fraction === undefined) [start, end] = [utc(y, mo, d, h, mi, Number(second), 0), utc(y, mo, d, h, mi, Number(second) + 1, 0)];
    else {
      const ms = Math.floor(Number(fraction) * 1000);
      [start, end] = [utc(y, mo, d, h, mi, Number(second), ms), utc(y, mo, d, h, mi, Number(second), ms + 1)];
    }
  }
  if (Number.isNaN(start.getTime()) || mo > 11 || d > 31) throw invalid();
  return { prefix: (prefix as DatePrefix | undefined) ?? 'eq', start, end };
}

/** One `_include` or `_revinclude` value: `Type:param` or `Type:param:TargetType`. */
interface Inclusion {
  reverse: boolean;
  sourceType: string;
  param: string;
  targetType?: string;
}

export function parseInclusions(type: string, query: Record<string, string | string[] | undefined>): Inclusion[] {
  const out: Inclusion[] = [];
  for (const [name, reverse] of [['_include', false], ['_revinclude', true]] as const) {
    const raw = query[name];
    for (const value of raw === undefined ? [] : Array.isArray(raw) ? raw : [raw]) {
      const [sourceType, param, targetType, ...rest] = value.split(':');
      const parameters = sourceType && Object.hasOwn(SEARCH_PARAMETERS, sourceType) ? SEARCH_PARAMETERS[sourceType]! : {};
      const kind = param && Object.hasOwn(parameters, param) ? parameters[param] : undefined;
      if (rest.length > 0 || !sourceType || !param || kind !== 'reference' || (targetType !== undefined && !RESOURCE_TYPES.includes(targetType))) {
        throw new AnchorlineError('ANCHORLINE_ERR_INVALID_REQUEST', `${name}=${value} is not a supported inclusion: use Type:param[:TargetType] with a reference search parameter of Type`, { location: name });
      }
      if (!reverse && sourceType !== type) throw new AnchorlineError('ANCHORLINE_ERR_INVALID_REQUEST', `${name} must name the searched type ${type}`, { location: name });
      out.push({ reverse, sourceType, param, ...(targetType ? { targetType } : {}) });
    }
  }
  return out;
}

function referenceValue(raw: string, name: string): { code: string } {
  // `subject=Patient/123`, or a bare id for the patient parameter.
  if (raw.includes('/')) return { code: raw };
  if (name === 'patient' || name === 'subject') return { code: `Patient/${raw}` };
  return { code: raw };
}

function bundle(
  type: 'searchset' | 'history',
  base: string,
  total: number | undefined,
  entries: StoredResource[],
  links: Array<{ relation: string; url: string }>,
  extra: { included?: StoredResource[]; withheld?: number } = {},
): Record<string, unknown> {
  const entry: Array<Record<string, unknown>> = entries.map((r) => ({
    fullUrl: `${base}/${r.resourceType}/${r.id}`,
    resource: r.content,
    ...(type === 'searchset' ? { search: { mode: 'match' } } : { request: { method: r.versionId === 1 ? 'POST' : 'PUT', url: `${r.resourceType}/${r.id}` }, response: { status: r.versionId === 1 ? '201 Created' : '200 OK', lastModified: r.lastUpdated.toISOString() } }),
  }));
  for (const r of extra.included ?? []) entry.push({ fullUrl: `${base}/${r.resourceType}/${r.id}`, resource: r.content, search: { mode: 'include' } });
  if (extra.withheld) {
    entry.push({
      resource: {
        resourceType: 'OperationOutcome',
        issue: [{ severity: 'information', code: 'suppressed', diagnostics: `${extra.withheld} included resource(s) withheld: this credential may not read them` }],
      },
      search: { mode: 'outcome' },
    });
  }
  return { resourceType: 'Bundle', type, ...(total === undefined ? {} : { total }), link: links, entry };
}

/** `hasNext`: a next page exists; given when the total is not known (a search under consent that stopped scanning). */
function pageLinks(request: FastifyRequest, count: number, offset: number, total: number | undefined, hasNext?: boolean): Array<{ relation: string; url: string }> {
  const url = new URL(request.url, `${request.protocol}://${request.host}`);
  const at = (o: number): string => {
    url.searchParams.set('_count', String(count));
    url.searchParams.set('_offset', String(o));
    return url.toString();
  };
  const links = [{ relation: 'self', url: at(offset) }];
  if (count > 0 && (hasNext ?? (total !== undefined && offset + count < total))) links.push({ relation: 'next', url: at(offset + count) });
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
        security: {
          service: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/restful-security-service', code: 'SMART-on-FHIR' }] }],
          description:
            'Bearer API key, or an access token from the OAuth 2.0 client-credentials grant at /auth/token (SMART Backend Services), ' +
            'or, for people, from SMART App Launch (authorization code with PKCE; discovery at /fhir/.well-known/smart-configuration). ' +
            'Scopes: system/<Type>.<cruds> (SMART v2), ingest, audit (AuditEvent), admin; people: patient/ and user/ scopes, and every read by a person is decided on the patient\'s consent.',
        },
        resource: [
          ...RESOURCE_TYPES.map((type) => ({
            type,
            versioning: 'versioned',
            readHistory: true,
            // Consent is the one type written through the API (api/fhir-write.ts); the rest come from messages.
            interaction: [{ code: 'read' }, { code: 'vread' }, { code: 'history-instance' }, { code: 'search-type' }, ...(type === 'Consent' ? [{ code: 'create' }, { code: 'update' }] : [])],
            ...(type === 'Consent' ? { updateCreate: true, conditionalUpdate: false } : {}),
            searchParam: [
              { name: '_id', type: 'token' },
              ...Object.entries(SEARCH_PARAMETERS[type]!).map(([name, kind]) => ({ name, type: kind })),
            ],
            ...(type === 'Composition' ? { operation: [{ name: 'document', definition: 'http://hl7.org/fhir/OperationDefinition/Composition-document' }] } : {}),
            ...(type === 'Patient' ? { operation: [{ name: 'everything', definition: 'http://hl7.org/fhir/OperationDefinition/Patient-everything' }] } : {}),
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

/** The caller's access on a route that required authentication (set by api/server.ts before any handler runs). */
export function accessOf(request: FastifyRequest): Access {
  if (!request.access) throw new AnchorlineError('ANCHORLINE_ERR_UNAUTHORIZED');
  return request.access;
}

/** Who a read audit names: the caller's credential and address. */
export function auditActor(request: FastifyRequest): auditTrail.AuditActor {
  const { principal } = accessOf(request);
  return { kind: principal.kind, id: principal.id, name: principal.name, source: principal.source, address: request.ip, fhirUser: principal.person?.fhirUser, app: principal.app };
}

/**
 * The versions a response discloses: each resource's, and for a stored document Bundle also each entry's (its
 * entries are stored versions of their own, and reading the document reads them).
 */
function versionsOf(list: StoredResource[]): auditTrail.AuditedVersion[] {
  return list.flatMap((r) => [{ resourceType: r.resourceType, id: r.id, versionId: r.versionId }, ...(r.resourceType === 'Bundle' ? entryVersions(r.content) : [])]);
}

function entryVersions(bundle: Record<string, unknown>): auditTrail.AuditedVersion[] {
  const versions: auditTrail.AuditedVersion[] = [];
  for (const entry of Array.isArray(bundle.entry) ? (bundle.entry as Array<{ resource?: Record<string, unknown> } | null>) : []) {
    const resource = entry?.resource;
    const versionId = Number((resource?.meta as { versionId?: unknown } | undefined)?.versionId);
    if (typeof resource?.resourceType === 'string' && typeof resource.id === 'string' && Number.isSafeInteger(versionId)) versions.push({ resourceType: resource.resourceType, id: resource.id, versionId });
  }
  return versions;
}

function patientsIn(list: StoredResource[]): string[] {
  return list.flatMap((r) => auditTrail.patientsOf(r.content));
}

/** Types that are containers or messages, not records: never checked against resource scopes. */
const NOT_RECORDS = new Set(['Bundle', 'OperationOutcome', 'CapabilityStatement', 'Parameters']);

/**
 * The response check: every resource in a FHIR response body (a resource, or a Bundle's entries, and anything
 * contained in them) must be one the caller may read. Violations fail the whole response.
 */
export function checkResponse(access: Access, payload: unknown): void {
  const visit = (resource: unknown): void => {
    if (!resource || typeof resource !== 'object') return;
    const record = resource as Record<string, unknown>;
    const type = record.resourceType;
    if (typeof type !== 'string') return;
    if (type === 'Bundle') {
      for (const entry of Array.isArray(record.entry) ? record.entry : []) visit((entry as { resource?: unknown })?.resource);
      return;
    }
    if (!NOT_RECORDS.has(type) && !access.can(type, 'r') && !access.can(type, 's')) {
      throw new AnchorlineError('ANCHORLINE_ERR_FORBIDDEN', `the response holds a ${type}, which this credential may not read`);
    }
    for (const contained of Array.isArray(record.contained) ? record.contained : []) visit(contained);
  };
  visit(payload);
}

/** Matches a person's search scans at most, in rows, before it answers with what it found and no total. */
const MAX_CONSENT_SCAN = 20_000;

/**
 * One page of what a reader may see, paged among themselves, so that neither the page nor the total betrays a
 * withheld match: rows are read in chunks from the start (`read`) and filtered (`keep`) until the page is full and one
 * more kept row shows there is a next page, or the rows run out (then the total is exact), or MAX_CONSENT_SCAN rows
 * were read (then the total is left out, as FHIR allows). A person's search and `$everything` page this way.
 */
async function filteredPage(
  read: (count: number, offset: number) => Promise<{ rows: StoredResource[]; more: boolean }>,
  keep: (rows: StoredResource[]) => Promise<StoredResource[]>,
  paging: { count: number; offset: number },
): Promise<{ page: StoredResource[]; total: number | undefined; hasNext: boolean }> {
  const wanted = paging.offset + paging.count + 1;
  const chunk = Math.max(200, paging.count * 2);
  const kept: StoredResource[] = [];
  let scanned = 0;
  let exhausted = false;
  while (kept.length < wanted && scanned < MAX_CONSENT_SCAN) {
    const { rows, more } = await read(chunk, scanned);
    scanned += rows.length;
    for (const r of await keep(rows)) kept.push(r);
    if (!more) {
      exhausted = true;
      break;
    }
  }
  return { page: kept.slice(paging.offset, paging.offset + paging.count), total: exhausted ? kept.length : undefined, hasNext: kept.length > paging.offset + paging.count };
}

/** One page of a search by a person, under consent (filteredPage), with what authorised what it returns. */
async function consentedSearch(
  pool: pg.Pool,
  type: string,
  criteria: SearchCriterion[],
  paging: { count: number; offset: number },
  gate: ConsentGate,
  context: GateContext,
  sort: ResultShape['sort'] = [],
): Promise<{ page: StoredResource[]; total: number | undefined; hasNext: boolean; authorization: auditTrail.ReadAuthorization | undefined }> {
  const found = await filteredPage(
    async (count, offset) => {
      const result = await resources.searchResources(pool, type, criteria, { count, offset, total: false, sort });
      return { rows: result.resources, more: result.more };
    },
    async (rows) => (await gate.filter(context, rows, 's')).allowed,
    paging,
  );
  // Decided again for the page alone, so the AuditEvent names what authorised what was returned, nothing more.
  const { authorization } = await gate.filter(context, found.page, 's');
  return { ...found, authorization };
}

/**
 * How many matches of a search a person may see (`_summary=count` under consent): every match is decided, as a page
 * would be, up to MAX_CONSENT_SCAN; past that the count is not known (undefined) rather than guessed.
 */
async function consentedCount(pool: pg.Pool, type: string, criteria: SearchCriterion[], gate: ConsentGate, context: GateContext): Promise<number | undefined> {
  const chunk = 500;
  let allowed = 0;
  for (let offset = 0; offset < MAX_CONSENT_SCAN; offset += chunk) {
    const { resources: rows, more } = await resources.searchResources(pool, type, criteria, { count: chunk, offset, total: false, sort: [{ key: 'id', descending: false }] });
    allowed += (await gate.filter(context, rows, 's')).allowed.length;
    if (!more) return allowed;
  }
  return undefined;
}

/** The resources as `_summary` / `_elements` shape them (fhir-shape.ts). */
function shaped(found: StoredResource[], shape: ResultShape): StoredResource[] {
  return found.map((r) => ({ ...r, content: shapeResource(r.content, shape) }));
}

/** Merges what authorised two parts of one answer (a search page and its inclusions). */
function mergeAuthorizations(a: auditTrail.ReadAuthorization | undefined, b: auditTrail.ReadAuthorization | undefined): auditTrail.ReadAuthorization | undefined {
  if (!a || !b) return a ?? b;
  return {
    consents: [...new Set([...a.consents, ...b.consents])].sort(),
    byDefault: a.byDefault || b.byDefault,
    ownRecord: a.ownRecord || b.ownRecord,
    ...(a.breakGlass ?? b.breakGlass ? { breakGlass: (a.breakGlass ?? b.breakGlass)! } : {}),
  };
}

/** What a read's AuditEvent says of the person's purpose and the consents behind it; nothing for a system caller. */
function consentAudit(context: GateContext | undefined, authorization: auditTrail.ReadAuthorization | undefined): Pick<auditTrail.ReadAudit, 'purposeOfUse' | 'authorization'> {
  if (!context) return {};
  return { purposeOfUse: context.requester.purpose, ...(authorization ? { authorization } : {}) };
}

/** The only patient a person's read of `type/id` may concern is checked by the gate; a withheld record reads as absent. */
function notFound(type: string, id: string, suffix = ''): AnchorlineError {
  return new AnchorlineError('ANCHORLINE_ERR_NOT_FOUND', `${type}/${id}${suffix} does not exist`);
}

/** Resource types `$everything` never returns: the audit trail is read with the audit scope or by the patient. */
const EVERYTHING_EXCLUDED = new Set(['AuditEvent']);

export function registerFhirRoutes(app: FastifyInstance, pool: pg.Pool, readAudits: auditTrail.ReadAuditBatcher, limits: SearchLimits = DEFAULT_SEARCH_LIMITS, gate?: ConsentGate): void {
  // Without a gate, no person can be let through: every person's read is refused before it runs.
  const gateOf = (request: FastifyRequest, access: Access): GateContext | undefined => requestContext(gate, request, access);
  const filter = (context: GateContext | undefined, found: StoredResource[], interaction: 'r' | 's' = 'r') => filterThrough(gate, context, found, interaction);
  app.addHook('preSerialization', async (request, _reply, payload) => {
    if (request.access && request.routeOptions.url?.startsWith('/fhir/')) checkResponse(request.access, payload);
    return payload;
  });

  app.get('/fhir/metadata', { config: { public: true } }, async (_request, reply) => reply.header('content-type', FHIR_JSON).send(capabilityStatement()));

  app.get<{ Params: { type: string } ; Querystring: Record<string, string | string[]> }>('/fhir/:type', { config: { scope: 'read' } }, async (request, reply) => {
    const { type } = request.params;
    assertType(type);
    const access = accessOf(request);
    access.require(type, 's');
    const criteria = parseSearch(type, request.query, limits);
    const inclusions = parseInclusions(type, request.query);
    const paging = parsePaging(request.query, limits);
    const shape = parseResultShape(request.query, 'search');
    const context = gateOf(request, access);
    const query = `${type}?${request.url.split('?')[1] ?? ''}`;
    if (shape.summary === 'count') {
      // How many, and nothing else: no resource is disclosed, but the answer is about patients, so it is recorded.
      const total = context && gate ? await consentedCount(pool, type, criteria, gate, context) : (await resources.searchResources(pool, type, criteria, { count: 0, offset: 0 })).total;
      await readAudits.record({ interaction: 'search-type', actor: auditActor(request), returned: [], patients: [], query, ...consentAudit(context, undefined) });
      return reply.header('content-type', FHIR_JSON).send(bundle('searchset', baseUrl(request), total, [], [{ relation: 'self', url: new URL(request.url, `${request.protocol}://${request.host}`).toString() }]));
    }
    // Statements on the pool, not in a transaction: under READ COMMITTED one would not make them see one snapshot
    // either, and BEGIN and COMMIT would be two more round trips per search.
    let result: { total: number | undefined; resources: StoredResource[] };
    let hasNext: boolean | undefined;
    let authorization: auditTrail.ReadAuthorization | undefined;
    if (context && gate) {
      const page = await consentedSearch(pool, type, criteria, paging, gate, context, shape.sort);
      result = { total: shape.total === 'none' ? undefined : page.total, resources: page.page };
      hasNext = page.hasNext;
      authorization = page.authorization;
    } else {
      const found = await resources.searchResources(pool, type, criteria, { ...paging, total: shape.total !== 'none', sort: shape.sort });
      result = found;
      hasNext = found.more;
    }
    const seen = new Set(result.resources.map((r) => `${r.resourceType}/${r.id}`));
    const found: StoredResource[] = [];
    for (const inclusion of inclusions) {
      const room = MAX_INCLUDED - found.length;
      if (room <= 0) break;
      const batch = inclusion.reverse
        ? await resources.includingOf(pool, inclusion.sourceType, inclusion.param, result.resources.map((r) => `${type}/${r.id}`), room)
        : await resources.includedBy(pool, type, result.resources.map((r) => r.id), inclusion.param, inclusion.targetType, room);
      for (const r of batch) {
        const key = `${r.resourceType}/${r.id}`;
        if (!seen.has(key)) {
          seen.add(key);
          found.push(r);
        }
      }
    }
    const readable = found.filter((r) => access.can(r.resourceType, 'r'));
    const gated = await filter(context, readable);
    const included = gated.allowed;
    // A system caller is told how many inclusions its scopes withheld; a person never learns what consent withheld.
    const withheld = context ? 0 : found.length - included.length;
    const returned = [...result.resources, ...included];
    // A search is recorded even when it finds nothing: that nothing matched is itself an answer about patients.
    await readAudits.record({
      interaction: 'search-type',
      actor: auditActor(request),
      returned: versionsOf(returned),
      patients: patientsIn(returned),
      query,
      ...consentAudit(context, mergeAuthorizations(authorization, gated.authorization)),
    });
    return reply.header('content-type', FHIR_JSON).send(bundle('searchset', baseUrl(request), result.total, shaped(result.resources, shape), pageLinks(request, paging.count, paging.offset, result.total, hasNext), { included, withheld }));
  });

  // Composition/$document (FHIR R4 operation, GET): the document Bundle the worker stored for the Composition's
  // C-CDA document, as stored (it is always persisted, so `persist` changes nothing). Audited as an operation that
  // read the Bundle and every entry in it.
  app.get<{ Params: { id: string }; Querystring: Record<string, string | string[]> }>('/fhir/Composition/:id/$document', { config: { scope: 'read' } }, async (request, reply) => {
    const { id } = request.params;
    assertId(id);
    accessOf(request).require('Composition', 'r');
    const unknown = Object.keys(request.query).filter((name) => name !== 'persist' && name !== '_format');
    if (unknown.length > 0) throw new AnchorlineError('ANCHORLINE_ERR_INVALID_REQUEST', `$document takes no parameter ${unknown[0]} (supported: persist)`, { location: unknown[0] });
    const context = gateOf(request, accessOf(request));
    const bundle = await resources.readCurrent(pool, 'Bundle', documentBundleId(id));
    // A document is disclosed whole or not at all: the gate lets a Bundle through only if every entry may be seen.
    const gated = await filter(context, bundle ? [bundle] : []);
    if (!bundle || bundle.deleted || gated.allowed.length === 0) throw new AnchorlineError('ANCHORLINE_ERR_NOT_FOUND', `Composition/${id} heads no stored document (documents are stored by the worker that maps them)`);
    await readAudits.record({ interaction: 'operation', actor: auditActor(request), returned: versionsOf([bundle]), patients: patientsIn([bundle]), description: `Composition/${id}/$document`, ...consentAudit(context, gated.authorization) });
    return sendResource(reply, bundle);
  });

  // Patient/$everything (FHIR R4 operation, GET): the patient and their compartment's current resources, paged
  // (`_count`, `_offset`), optionally of some types (`_type`). Each entry passes the caller's scopes and, for a
  // person, consent; what is withheld leaves no trace in the page or its links.
  app.get<{ Params: { id: string }; Querystring: Record<string, string | string[]> }>('/fhir/Patient/:id/$everything', { config: { scope: 'read' } }, async (request, reply) => {
    const { id } = request.params;
    assertId(id);
    const access = accessOf(request);
    access.require('Patient', 'r');
    const unknown = Object.keys(request.query).filter((name) => !['_count', '_offset', '_type', '_format'].includes(name));
    if (unknown.length > 0) throw new AnchorlineError('ANCHORLINE_ERR_INVALID_REQUEST', `$everything takes no parameter ${unknown[0]} (supported: _count, _offset, _type)`, { location: unknown[0] });
    const types = request.query._type === undefined ? undefined : alternatives(singleValue(request.query._type, '_type'));
    for (const type of types ?? []) assertType(type);
    const paging = parsePaging(request.query, limits);
    const context = gateOf(request, access);
    const patient = await resources.readCurrent(pool, 'Patient', id);
    if (!patient || patient.deleted || (await filter(context, [patient])).allowed.length === 0) throw notFound('Patient', id);
    // Scanned from the start and paged after filtering, as a person's search is, so that pages do not reveal gaps.
    const { page, total, hasNext } = await filteredPage(
      async (count, offset) => {
        const rows = await resources.compartmentResources(pool, id, { count, offset, ...(types ? { types } : {}) });
        return { rows, more: rows.length === count };
      },
      async (rows) => (await filter(context, rows.filter((r) => access.can(r.resourceType, 'r') && !EVERYTHING_EXCLUDED.has(r.resourceType)))).allowed,
      paging,
    );
    const gated = await filter(context, page);
    await readAudits.record({ interaction: 'operation', actor: auditActor(request), returned: versionsOf(page), patients: [`Patient/${id}`], description: `Patient/${id}/$everything`, ...consentAudit(context, gated.authorization) });
    return reply.header('content-type', FHIR_JSON).send(bundle('searchset', baseUrl(request), total, page, pageLinks(request, paging.count, paging.offset, total, hasNext)));
  });

  app.get<{ Params: { type: string; id: string }; Querystring: Record<string, string | string[]> }>('/fhir/:type/:id', { config: { scope: 'read' } }, async (request, reply) => {
    const { type, id } = request.params;
    assertType(type);
    assertId(id);
    const shape = parseResultShape(request.query, 'read');
    const access = accessOf(request);
    access.require(type, 'r');
    const context = gateOf(request, access);
    const stored = await resources.readCurrent(pool, type, id);
    if (!stored) throw notFound(type, id);
    const gated = await filter(context, [stored]);
    if (gated.allowed.length === 0) throw notFound(type, id);
    if (stored.deleted) throw new AnchorlineError('ANCHORLINE_ERR_GONE', `${type}/${id} was deleted`);
    await readAudits.record({ interaction: 'read', actor: auditActor(request), returned: versionsOf([stored]), patients: patientsIn([stored]), ...consentAudit(context, gated.authorization) });
    return sendResource(reply, shaped([stored], shape)[0]!);
  });

  app.get<{ Params: { type: string; id: string }; Querystring: Record<string, string | string[]> }>('/fhir/:type/:id/_history', { config: { scope: 'read' } }, async (request, reply) => {
    const { type, id } = request.params;
    assertType(type);
    assertId(id);
    const access = accessOf(request);
    access.require(type, 'r');
    const context = gateOf(request, access);
    const paging = parsePaging(request.query, limits);
    let since: Date | undefined;
    if (request.query._since !== undefined) {
      since = new Date(singleValue(request.query._since, '_since'));
      if (Number.isNaN(since.getTime())) throw new AnchorlineError('ANCHORLINE_ERR_INVALID_REQUEST', '_since must be a FHIR instant', { location: '_since' });
    }
    let result: { total: number; versions: StoredResource[] };
    let authorization: auditTrail.ReadAuthorization | undefined;
    if (context) {
      // Each version is decided on its own content (its labels may differ); the person's page and total count only
      // the versions they may see, so a withheld version leaves no gap to notice.
      const all = await resources.readHistory(pool, type, id, { count: limits.maxCount, offset: 0, ...(since ? { since } : {}) });
      const gated = await filter(context, all.versions);
      result = { total: gated.allowed.length, versions: gated.allowed.slice(paging.offset, paging.offset + paging.count) };
      authorization = (await filter(context, result.versions)).authorization;
      if (all.total > 0 && gated.allowed.length === 0 && !since) result.total = 0;
    } else {
      result = await resources.readHistory(pool, type, id, { ...paging, ...(since ? { since } : {}) });
    }
    if (result.total === 0 && !since) throw notFound(type, id);
    if (result.versions.length > 0) {
      await readAudits.record({ interaction: 'history-instance', actor: auditActor(request), returned: versionsOf(result.versions), patients: patientsIn(result.versions), ...consentAudit(context, authorization) });
    }
    return reply.header('content-type', FHIR_JSON).send(bundle('history', baseUrl(request), result.total, result.versions, pageLinks(request, paging.count, paging.offset, result.total)));
  });

  app.get<{ Params: { type: string; id: string; vid: string }; Querystring: Record<string, string | string[]> }>('/fhir/:type/:id/_history/:vid', { config: { scope: 'read' } }, async (request, reply) => {
    const { type, id, vid } = request.params;
    assertType(type);
    assertId(id);
    const shape = parseResultShape(request.query, 'read');
    const access = accessOf(request);
    access.require(type, 'r');
    const context = gateOf(request, access);
    const versionId = parsePositiveId(vid);
    if (versionId === undefined) throw new AnchorlineError('ANCHORLINE_ERR_INVALID_REQUEST', 'version id must be a positive integer in decimal digits');
    const stored = await resources.readVersion(pool, type, id, versionId);
    const gated = await filter(context, stored ? [stored] : []);
    if (!stored || gated.allowed.length === 0) throw notFound(type, id, `/_history/${vid}`);
    await readAudits.record({ interaction: 'vread', actor: auditActor(request), returned: versionsOf([stored]), patients: patientsIn([stored]), ...consentAudit(context, gated.authorization) });
    return sendResource(reply, shaped([stored], shape)[0]!);
  });
}

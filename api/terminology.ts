/**
 * Terminology over HTTP (terminology/ does the work):
 * - FHIR R4 operations, GET with query parameters or POST with a Parameters body (application/fhir+json or
 *   application/json): CodeSystem/$lookup, CodeSystem/$validate-code (also CodeSystem/{id}/$validate-code),
 *   ConceptMap/$translate (also ConceptMap/{id}/$translate). Scope `read`.
 * - Read and search of the loaded code systems and ConceptMaps: /fhir/CodeSystem, /fhir/CodeSystem/{id},
 *   /fhir/ConceptMap, /fhir/ConceptMap/{id} (search by url, version, name, _id). Scope `read`.
 * - The unmapped-code worklist: GET /terminology/unmapped (scope `read`) and POST /terminology/unmapped/resolve
 *   (scope `admin`).
 *
 * These routes name their resource type in the path, so the router prefers them to the generic /fhir/{type} and
 * /fhir/{type}/{id} routes of api/fhir.ts (static segments win over parameters); an operation name sent as `%24...`
 * arrives at the {id} routes, which dispatch it (registerOperations). Unknown parameters are refused, as in FHIR
 * search, so that a misspelt one is never silently dropped.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type pg from 'pg';
import { AnchorlineError } from '../errors/index.ts';
import {
  canonicalId,
  codeSystemResource,
  EQUIVALENCES,
  listCodeSystems,
  listConceptMaps,
  listUnmapped,
  lookupCode,
  readConceptMap,
  resolveUnmapped,
  translateCode,
  validateCode,
  type CodingValue,
  type Equivalence,
  type Parameters,
  type ParametersParameter,
  type StoredCodeSystem,
  type StoredConceptMapInfo,
} from '../terminology/index.ts';
import { FHIR_JSON } from './fhir.ts';

type Query = Record<string, string | string[] | undefined>;

/** An operation's inputs by name: strings for primitive values, objects for Coding and CodeableConcept. */
type Inputs = Map<string, Array<string | Record<string, unknown>>>;

const MAX_COUNT = 1000;

// Route descriptions (api/openapi.ts). Values are typed but not otherwise constrained here: the handlers check
// them and refuse unknown parameters and members with their own messages (a schema with additionalProperties: false
// would silently drop them instead).
const UNMAPPED_SCHEMA = {
  summary: 'The unmapped-code worklist',
  description: 'Local codes that arrived without a ConceptMap entry to a standard code, with how often and when they were seen, and by which source. Needs the terminology (or admin) scope. Unknown parameters are refused (400).',
  tags: ['terminology'],
  querystring: {
    type: 'object',
    properties: {
      source: { type: 'string', description: 'Only codes from this source system (mapping config name)' },
      system: { type: 'string', description: 'Only codes of this code system URI' },
      resolved: { type: 'string', description: "'false' (default): open codes; 'true': resolved ones; 'any': both" },
      _count: { type: 'string', description: 'Page size, a non-negative integer (default 100, at most 1000)' },
      _offset: { type: 'string', description: 'Codes to skip, a non-negative integer (default 0)' },
    },
  },
};

const codingProperties = {
  system: { type: 'string', description: 'Code system URI' },
  code: { type: 'string', description: 'The code' },
};

const RESOLVE_SCHEMA = {
  summary: 'Resolve an unmapped code',
  description:
    'Adds the mapping of a local code to a standard code to a new version of its ConceptMap, marks the code resolved and queues the messages that carried it ' +
    'to be mapped again, in one transaction. Required: system, code, target.system, target.code.',
  tags: ['terminology'],
  body: {
    type: 'object',
    properties: {
      ...codingProperties,
      target: { type: 'object', description: 'The standard code it maps to', properties: { ...codingProperties, display: { type: 'string', description: 'Display of the target code' } } },
      conceptMap: { type: 'string', description: 'URL of the ConceptMap to add it to; needed only when several active maps translate the system' },
      equivalence: { type: 'string', description: `ConceptMap equivalence (default equivalent): ${EQUIVALENCES.join(', ')}` },
    },
  },
};

export function registerTerminologyRoutes(app: FastifyInstance, pool: pg.Pool): void {
  void app.register(async (scope) => {
    if (!scope.hasContentTypeParser('application/fhir+json')) {
      scope.addContentTypeParser('application/fhir+json', { parseAs: 'string' }, scope.getDefaultJsonParser('error', 'error'));
    }

    const lookup: OperationHandler = async (request, reply) => {
      const inputs = operationInputs(request, ['system', 'code', 'version', 'coding', 'property', 'displayLanguage']);
      const coding = codingInputs(inputs)[0]; // $lookup takes no codeableConcept
      const system = coding?.system ?? single(inputs, 'system');
      const code = coding?.code ?? single(inputs, 'code');
      if (system === undefined || code === undefined) throw invalid('give system and code, or coding', 'code');
      const version = coding?.version ?? single(inputs, 'version');
      const properties = (inputs.get('property') ?? []).map((p) => primitive(p, 'property'));
      const displayLanguage = single(inputs, 'displayLanguage');
      return sendFhir(reply, await lookupCode(pool, { system, code, ...optional('version', version), ...optional('displayLanguage', displayLanguage), properties }));
    };

    const validate: OperationHandler = async (request, reply, id) => {
      const inputs = operationInputs(request, ['url', 'system', 'code', 'version', 'display', 'coding', 'codeableConcept']);
      let url = single(inputs, 'url') ?? single(inputs, 'system');
      if (id !== undefined) url = (await codeSystemById(pool, id)).url;
      const version = single(inputs, 'version');
      const display = single(inputs, 'display');
      const codings = codingInputs(inputs);
      const code = single(inputs, 'code');
      if (code !== undefined) codings.push({ code });
      if (codings.length === 0) throw invalid('give code (with url), coding or codeableConcept', 'code');
      let answer: Parameters | undefined;
      for (const c of codings) {
        const system = c.system ?? url;
        if (system === undefined) throw invalid('give url (the code system) with code', 'url');
        answer = await validateCode(pool, {
          url: system,
          code: c.code,
          ...((c.version ?? version) !== undefined ? { version: (c.version ?? version)! } : {}),
          ...((c.display ?? display) !== undefined ? { display: (c.display ?? display)! } : {}),
        });
        if (answer.parameter[0]?.valueBoolean === true) break;
      }
      return sendFhir(reply, answer!);
    };

    const translate: OperationHandler = async (request, reply, id) => {
      // `version` (of the code's system) is accepted and not used: a map here applies to every version of its source.
      const inputs = operationInputs(request, ['url', 'conceptMapVersion', 'code', 'system', 'version', 'source', 'coding', 'codeableConcept', 'target', 'targetsystem', 'reverse']);
      let url = single(inputs, 'url');
      if (id !== undefined) url = (await conceptMapById(pool, id)).url;
      const codings = codingInputs(inputs);
      const code = single(inputs, 'code');
      if (code !== undefined) codings.push({ code, ...(single(inputs, 'system') !== undefined ? { system: single(inputs, 'system')! } : {}) });
      if (codings.length === 0) throw invalid('give system and code, coding or codeableConcept', 'code');
      const reverse = single(inputs, 'reverse');
      if (reverse !== undefined && reverse !== 'true' && reverse !== 'false') throw invalid('reverse must be true or false', 'reverse');
      const options = {
        ...(url !== undefined ? { url } : {}),
        ...optional('conceptMapVersion', single(inputs, 'conceptMapVersion')),
        ...optional('source', single(inputs, 'source')),
        ...optional('target', single(inputs, 'target')),
        ...optional('targetSystem', single(inputs, 'targetsystem')),
        reverse: reverse === 'true',
      };
      // Several codings (a CodeableConcept): one answer holding every coding's matches.
      const answers: Parameters[] = [];
      for (const c of codings) {
        if (c.system === undefined) throw invalid('give the system of the code', 'system');
        answers.push(await translateCode(pool, { ...options, system: c.system, code: c.code }));
      }
      return sendFhir(reply, mergeTranslations(answers));
    };
    registerOperations(scope, 'CodeSystem', { type: { $lookup: lookup, '$validate-code': validate }, instance: { '$validate-code': validate } }, async (id) =>
      codeSystemResource(await codeSystemById(pool, id)),
    );
    registerOperations(scope, 'ConceptMap', { type: { $translate: translate }, instance: { $translate: translate } }, async (id) => {
      const map = await readConceptMap(pool, (await conceptMapById(pool, id)).url);
      if (!map) throw new AnchorlineError('ANCHORLINE_ERR_NOT_FOUND', `ConceptMap/${id} does not exist`);
      return map;
    });

    scope.get<{ Querystring: Query }>('/fhir/CodeSystem', { config: { scope: 'read' } }, async (request, reply) => {
      const search = searchParameters(request.query);
      const systems = (await listCodeSystems(pool, search.filter)).filter((c) => search.ids === undefined || search.ids.includes(canonicalId(c.url)));
      return sendFhir(reply, searchBundle(request, systems.map(codeSystemResource), search.count));
    });

    scope.get<{ Querystring: Query }>('/fhir/ConceptMap', { config: { scope: 'read' } }, async (request, reply) => {
      const search = searchParameters(request.query);
      // A version names one map; without it, the search is over the active versions.
      const infos = await listConceptMaps(pool, { ...search.filter, activeOnly: search.filter.version === undefined });
      const chosen = infos.filter((m) => (search.ids === undefined || search.ids.includes(canonicalId(m.url))) && (search.filter.name === undefined || m.name === search.filter.name));
      const maps = [];
      for (const info of chosen.slice(0, search.count)) maps.push(await readConceptMap(pool, info.url, info.version));
      return sendFhir(reply, searchBundle(request, maps.filter((m) => m !== undefined), search.count, chosen.length));
    });

    scope.get<{ Querystring: Query }>('/terminology/unmapped', { schema: UNMAPPED_SCHEMA, config: { scope: 'terminology' } }, async (request) => {
      const query = request.query;
      refuseUnknown(query, ['source', 'system', 'resolved', '_count', '_offset']);
      const resolvedText = queryValue(query, 'resolved') ?? 'false';
      if (!['true', 'false', 'any'].includes(resolvedText)) throw invalid('resolved must be true, false or any', 'resolved');
      const count = integer(queryValue(query, '_count'), '_count', 100);
      const offset = integer(queryValue(query, '_offset'), '_offset', 0);
      const source = queryValue(query, 'source');
      const system = queryValue(query, 'system');
      const list = await listUnmapped(pool, {
        ...(source !== undefined ? { source } : {}),
        ...(system !== undefined ? { system } : {}),
        resolved: resolvedText === 'any' ? 'any' : resolvedText === 'true',
        count: Math.min(count, MAX_COUNT),
        offset,
      });
      return {
        total: list.total,
        codes: list.codes.map((c) => ({
          ...c,
          firstSeen: c.firstSeen.toISOString(),
          lastSeen: c.lastSeen.toISOString(),
          resolvedAt: c.resolvedAt?.toISOString() ?? null,
        })),
      };
    });

    scope.post<{ Body: unknown }>('/terminology/unmapped/resolve', { schema: RESOLVE_SCHEMA, config: { scope: 'admin' } }, async (request) => {
      const body = request.body;
      const usage = 'send {"system": "...", "code": "...", "target": {"system": "...", "code": "...", "display": "..."}, "conceptMap": "<url>"?, "equivalence": "..."?}';
      if (!isObject(body) || !isObject(body.target)) throw invalid(usage);
      const text = (value: unknown, name: string, required: boolean): string | undefined => {
        if (value === undefined && !required) return undefined;
        if (typeof value !== 'string' || value.trim() === '') throw invalid(`${name} must be a non-empty string; ${usage}`, name);
        return value.trim();
      };
      for (const key of Object.keys(body)) if (!['system', 'code', 'target', 'conceptMap', 'equivalence'].includes(key)) throw invalid(`unknown member ${key}; ${usage}`, key);
      for (const key of Object.keys(body.target)) if (!['system', 'code', 'display'].includes(key)) throw invalid(`unknown member target.${key}; ${usage}`, `target.${key}`);
      const equivalence = text(body.equivalence, 'equivalence', false);
      if (equivalence !== undefined && !(EQUIVALENCES as readonly string[]).includes(equivalence)) throw invalid(`equivalence must be one of ${EQUIVALENCES.join(', ')}`, 'equivalence');
      const display = text(body.target.display, 'target.display', false);
      const conceptMap = text(body.conceptMap, 'conceptMap', false);
      return resolveUnmapped(pool, {
        system: text(body.system, 'system', true)!,
        code: text(body.code, 'code', true)!,
        target: { system: text(body.target.system, 'target.system', true)!, code: text(body.target.code, 'target.code', true)!, ...(display ? { display } : {}) },
        ...(conceptMap ? { conceptMap } : {}),
        ...(equivalence ? { equivalence: equivalence as Equivalence } : {}),
      });
    });
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Routes

/** An operation; `id` is the resource's for an instance-level call ([base]/Type/{id}/$op). */
type OperationHandler = (request: FastifyRequest, reply: FastifyReply, id?: string) => Promise<FastifyReply>;

/**
 * A type's operations, GET and POST, at type and instance level, and the read of one resource. Clients that
 * percent-encode the `$` (`%24translate`) reach the routes with parameters, which the router decodes: those routes
 * dispatch on the decoded name, so both spellings work.
 */
function registerOperations(
  scope: FastifyInstance,
  type: string,
  operations: { type: Record<string, OperationHandler>; instance: Record<string, OperationHandler> },
  read: (id: string) => Promise<Record<string, unknown>>,
): void {
  const route = { config: { scope: 'read' as const } };
  const unknownOperation = (name: string): AnchorlineError =>
    new AnchorlineError('ANCHORLINE_ERR_NOT_FOUND', `${type} has no operation ${name} (supported: ${[...new Set([...Object.keys(operations.type), ...Object.keys(operations.instance)])].join(', ')})`);
  for (const [name, handler] of Object.entries(operations.type)) {
    scope.get(`/fhir/${type}/${name}`, route, (request, reply) => handler(request, reply));
    scope.post(`/fhir/${type}/${name}`, route, (request, reply) => handler(request, reply));
  }
  for (const [name, handler] of Object.entries(operations.instance)) {
    scope.get<{ Params: { id: string } }>(`/fhir/${type}/:id/${name}`, route, (request, reply) => handler(request, reply, request.params.id));
    scope.post<{ Params: { id: string } }>(`/fhir/${type}/:id/${name}`, route, (request, reply) => handler(request, reply, request.params.id));
  }
  scope.get<{ Params: { id: string } }>(`/fhir/${type}/:id`, route, async (request, reply) => {
    const { id } = request.params;
    if (!id.startsWith('$')) return sendFhir(reply, await read(id));
    const handler = operations.type[id];
    if (!handler) throw unknownOperation(id);
    return handler(request, reply);
  });
  scope.post<{ Params: { id: string } }>(`/fhir/${type}/:id`, route, async (request, reply) => {
    const handler = operations.type[request.params.id];
    if (!handler) throw unknownOperation(request.params.id);
    return handler(request, reply);
  });
  const instance = async (request: FastifyRequest<{ Params: { id: string; operation: string } }>, reply: FastifyReply): Promise<FastifyReply> => {
    const handler = operations.instance[request.params.operation];
    if (!handler) throw unknownOperation(request.params.operation);
    return handler(request, reply, request.params.id);
  };
  scope.get(`/fhir/${type}/:id/:operation`, route, instance);
  scope.post(`/fhir/${type}/:id/:operation`, route, instance);
}

async function codeSystemById(pool: pg.Pool, id: string): Promise<StoredCodeSystem> {
  const [codeSystem] = (await listCodeSystems(pool)).filter((c) => canonicalId(c.url) === id);
  if (!codeSystem) throw new AnchorlineError('ANCHORLINE_ERR_NOT_FOUND', `CodeSystem/${id} does not exist`);
  return codeSystem;
}

async function conceptMapById(pool: pg.Pool, id: string): Promise<StoredConceptMapInfo> {
  const [map] = await listConceptMaps(pool, { id, activeOnly: true });
  if (!map) throw new AnchorlineError('ANCHORLINE_ERR_NOT_FOUND', `ConceptMap/${id} does not exist`);
  return map;
}

// ---------------------------------------------------------------------------------------------------------------
// Operation inputs

/** Inputs from the query string (GET) or a Parameters body (POST), refusing names the operation does not define. */
function operationInputs(request: FastifyRequest, names: string[]): Inputs {
  const inputs: Inputs = new Map();
  const add = (name: string, value: string | Record<string, unknown>): void => {
    if (!names.includes(name)) throw invalid(`unknown parameter ${name} (supported: ${names.join(', ')})`, name);
    inputs.set(name, [...(inputs.get(name) ?? []), value]);
  };
  if (request.method === 'GET') {
    for (const [name, value] of Object.entries(request.query as Query)) {
      if (value === undefined || name === '_format') continue;
      for (const v of Array.isArray(value) ? value : [value]) add(name, v);
    }
    return inputs;
  }
  const body = request.body;
  if (!isObject(body) || body.resourceType !== 'Parameters') throw invalid('send a FHIR Parameters resource as the body', 'resourceType');
  const parameters = body.parameter ?? [];
  if (!Array.isArray(parameters)) throw invalid('Parameters.parameter must be an array', 'parameter');
  for (const parameter of parameters) {
    if (!isObject(parameter) || typeof parameter.name !== 'string') throw invalid('each parameter needs a name', 'parameter');
    const valueKeys = Object.keys(parameter).filter((k) => k.startsWith('value'));
    if (valueKeys.length !== 1) throw invalid(`parameter ${parameter.name} needs exactly one value[x]`, parameter.name);
    const value = parameter[valueKeys[0]!];
    if (typeof value === 'string') add(parameter.name, value);
    else if (typeof value === 'boolean' || typeof value === 'number') add(parameter.name, String(value));
    else if (isObject(value)) add(parameter.name, value);
    else throw invalid(`parameter ${parameter.name} has a value of an unsupported type`, parameter.name);
  }
  return inputs;
}

function single(inputs: Inputs, name: string): string | undefined;
function single(inputs: Inputs, name: string, kind: 'object'): Record<string, unknown> | undefined;
function single(inputs: Inputs, name: string, kind: 'string' | 'object' = 'string'): string | Record<string, unknown> | undefined {
  const values = inputs.get(name);
  if (values === undefined || values.length === 0) return undefined;
  if (values.length > 1) throw invalid(`${name} may be given once`, name);
  const value = values[0]!;
  if (kind === 'string') return primitive(value, name);
  if (typeof value !== 'object') throw invalid(`${name} must be a ${name === 'coding' ? 'Coding' : 'CodeableConcept'}`, name);
  return value;
}

function primitive(value: string | Record<string, unknown>, name: string): string {
  if (typeof value !== 'string') throw invalid(`${name} must be a primitive value`, name);
  return value;
}

/** The codings an operation was given as `coding` and as `codeableConcept`, in that order. */
function codingInputs(inputs: Inputs): CodingValue[] {
  const codings: CodingValue[] = [];
  const coding = single(inputs, 'coding', 'object');
  if (coding !== undefined) codings.push(codingOf(coding, 'coding'));
  const concept = single(inputs, 'codeableConcept', 'object');
  if (concept !== undefined) codings.push(...codingsOf(concept, 'codeableConcept'));
  return codings;
}

function codingOf(value: Record<string, unknown>, at: string): CodingValue {
  const text = (key: string): string | undefined => {
    const v = value[key];
    if (v === undefined) return undefined;
    if (typeof v !== 'string') throw invalid(`${at}.${key} must be a string`, `${at}.${key}`);
    return v;
  };
  const code = text('code');
  if (code === undefined) throw invalid(`${at} needs a code`, `${at}.code`);
  const system = text('system');
  const version = text('version');
  const display = text('display');
  return { code, ...(system !== undefined ? { system } : {}), ...(version !== undefined ? { version } : {}), ...(display !== undefined ? { display } : {}) };
}

function codingsOf(concept: Record<string, unknown>, at: string): CodingValue[] {
  const codings = concept.coding;
  if (!Array.isArray(codings) || codings.length === 0) throw invalid(`${at} needs at least one coding`, `${at}.coding`);
  return codings.map((c, i) => {
    if (!isObject(c)) throw invalid(`${at}.coding[${i}] must be a Coding`, `${at}.coding[${i}]`);
    return codingOf(c, `${at}.coding[${i}]`);
  });
}

function mergeTranslations(answers: Parameters[]): Parameters {
  if (answers.length === 1) return answers[0]!;
  const result = answers.some((a) => a.parameter[0]?.valueBoolean === true);
  const matches: ParametersParameter[] = answers.flatMap((a) => a.parameter.filter((p) => p.name === 'match'));
  const messages = result ? [] : answers.flatMap((a) => a.parameter.filter((p) => p.name === 'message'));
  return {
    resourceType: 'Parameters',
    parameter: [{ name: 'result', valueBoolean: result }, ...(messages.length > 0 ? [{ name: 'message', valueString: messages.map((m) => m.valueString).join('; ') }] : []), ...matches],
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Search

function searchParameters(query: Query): { filter: { url?: string; version?: string; name?: string }; ids?: string[]; count: number } {
  refuseUnknown(query, ['url', 'version', 'name', '_id', '_count']);
  const filter: { url?: string; version?: string; name?: string } = {};
  for (const name of ['url', 'version', 'name'] as const) {
    const value = queryValue(query, name);
    if (value !== undefined) filter[name] = value;
  }
  const id = queryValue(query, '_id');
  return { filter, ...(id !== undefined ? { ids: id.split(',') } : {}), count: Math.min(integer(queryValue(query, '_count'), '_count', 100), MAX_COUNT) };
}

function searchBundle(request: FastifyRequest, resources: Array<Record<string, unknown>>, count: number, total = resources.length): Record<string, unknown> {
  const base = `${request.protocol}://${request.host}/fhir`;
  return {
    resourceType: 'Bundle',
    type: 'searchset',
    total,
    link: [{ relation: 'self', url: `${request.protocol}://${request.host}${request.url}` }],
    entry: resources.slice(0, count).map((resource) => ({ fullUrl: `${base}/${resource.resourceType as string}/${resource.id as string}`, resource, search: { mode: 'match' } })),
  };
}

function refuseUnknown(query: Query, names: string[]): void {
  for (const name of Object.keys(query)) {
    if (name === '_format') continue;
    if (!names.includes(name)) throw invalid(`unknown parameter ${name} (supported: ${names.join(', ')})`, name);
  }
}

function queryValue(query: Query, name: string): string | undefined {
  const value = query[name];
  if (value === undefined) return undefined;
  if (Array.isArray(value)) {
    if (value.length !== 1) throw invalid(`${name} may be given once`, name);
    return value[0];
  }
  return value;
}

function integer(value: string | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (!/^\d+$/.test(value)) throw invalid(`${name} must be a non-negative integer`, name);
  return Number(value);
}

function optional<K extends string>(key: K, value: string | undefined): { [P in K]?: string } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: string };
}

function sendFhir(reply: FastifyReply, body: unknown): FastifyReply {
  return reply.header('content-type', FHIR_JSON).send(body);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function invalid(detail: string, location?: string): AnchorlineError {
  return new AnchorlineError('ANCHORLINE_ERR_INVALID_REQUEST', detail, location ? { location } : undefined);
}

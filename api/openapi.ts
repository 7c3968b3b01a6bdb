/**
 * The OpenAPI 3 description of the HTTP API, built by @fastify/swagger from the routes' own `schema` objects:
 * GET /openapi.json (public) and a browsable copy at /docs (@fastify/swagger-ui, public).
 *
 * It documents every route but the FHIR REST API under /fhir, which the CapabilityStatement at /fhir/metadata
 * describes in FHIR's own terms. Security comes from each route's config, so the document cannot disagree with the
 * authentication hook: a public route has none, every other one needs a bearer credential.
 *
 * Route schemas only describe and validate requests (params, querystring, body); none declares a response schema,
 * because fast-json-stringify would drop every property a response schema does not list. A body that is not JSON
 * (HL7 v2, XML, DICOM) is described with `consumes` and a body schema without a type, which accepts the buffer the
 * content-type parser hands over; the document shows it as binary.
 */
import { readFileSync } from 'node:fs';
import type { FastifyInstance, FastifySchema, RouteOptions } from 'fastify';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';

const DOCS_PREFIX = '/docs';

/** A route as it was added: what the document should cover. */
export interface RouteSummary {
  method: string;
  url: string;
  /** Its route config (public, scope). */
  config: Record<string, unknown>;
  /** Whether its schema hides it from the document. */
  hidden: boolean;
}

/** The options of every route added, as later onRoute hooks (in plugins) leave them. */
const ROUTES = new WeakMap<FastifyInstance, RouteOptions[]>();

/** Every route added to `app` after registerOpenApi, one per method (HEAD included), in the order added. */
export function routesOf(app: FastifyInstance): RouteSummary[] {
  return (ROUTES.get(app) ?? []).flatMap((route) =>
    [route.method].flat().map((method) => ({
      method,
      url: route.url,
      config: { ...((route.config as Record<string, unknown> | undefined) ?? {}) },
      hidden: (route.schema as { hide?: boolean } | undefined)?.hide === true,
    })),
  );
}

const TAGS = [
  { name: 'operations', description: 'Metrics, probes and operational statistics' },
  { name: 'ingest', description: 'Messages in: HL7 v2, C-CDA, DICOM (STOW-RS)' },
  { name: 'dicomweb', description: 'Stored DICOM instances (WADO-RS) and their files' },
  { name: 'proofs', description: 'Proof bundles of resource versions, for auditors' },
  { name: 'terminology', description: 'The unmapped-code worklist' },
  { name: 'admin', description: 'Administration: messages, keys, mapping configs' },
  { name: 'authorization', description: 'OAuth 2.0 client credentials: token endpoint, engine keys, SMART discovery' },
  { name: 'credentials', description: 'API keys and OAuth clients, with their scopes and source bindings' },
  { name: 'documentation', description: 'This description of the API' },
];

function engineVersion(): string {
  try {
    return (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version?: string }).version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}

function isDocsRoute(url: string): boolean {
  return url === DOCS_PREFIX || url.startsWith(`${DOCS_PREFIX}/`);
}

/** The route's schema as the document shows it: FHIR routes hidden, security from the route's config, binary bodies typed. */
function documented({ schema, url, route }: { schema: FastifySchema | undefined; url: string; route: RouteOptions }): { schema: FastifySchema; url: string } {
  const base = (schema ?? {}) as FastifySchema & Record<string, unknown>;
  if (url === '/fhir' || url.startsWith('/fhir/')) return { schema: { ...base, hide: true } as FastifySchema, url };
  const config = (route.config ?? {}) as { public?: boolean; scope?: unknown };
  const out: Record<string, unknown> = { ...base, security: config.public ? [] : [{ bearer: [] }] };
  if (!config.public && typeof config.scope === 'string' && typeof base.description === 'string') {
    out.description = `${base.description}\n\nScope: \`${config.scope}\`.`;
  }
  const body = base.body as Record<string, unknown> | undefined;
  if (body && base.consumes !== undefined && body.type === undefined && body.content === undefined) {
    out.body = { ...body, type: 'string', format: 'binary' };
  }
  return { schema: out as FastifySchema, url };
}

/**
 * Registers the document and its routes. Call it in buildApi before any other route is added: @fastify/swagger
 * learns the routes as they are added.
 */
export async function registerOpenApi(app: FastifyInstance): Promise<void> {
  // swagger-ui's page and assets are public, like the document they show; the authentication hook reads route config.
  const routes: RouteOptions[] = [];
  ROUTES.set(app, routes);
  app.addHook('onRoute', (route) => {
    if (isDocsRoute(route.url)) route.config = { ...(route.config ?? {}), public: true };
    routes.push(route);
  });

  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'anchorline',
        version: engineVersion(),
        description:
          'HL7 v2, C-CDA and DICOM in; FHIR R4 out, with every resource version provable against signed, anchored Merkle batches. ' +
          'The FHIR REST API under /fhir is not described here: its CapabilityStatement is GET /fhir/metadata. ' +
          'Errors are FHIR OperationOutcomes whose coding carries a stable ANCHORLINE_ERR_* code (also in the X-Anchorline-Error header).',
      },
      tags: TAGS,
      components: {
        securitySchemes: {
          bearer: { type: 'http', scheme: 'bearer', description: 'An API key (POST /admin/api-keys; the bootstrap key is under the data dir), sent as Authorization: Bearer <key>.' },
        },
      },
    },
    transform: documented,
  });
  await app.register(swaggerUi, { routePrefix: DOCS_PREFIX });

  app.get(
    '/openapi.json',
    {
      config: { public: true },
      schema: { summary: 'This OpenAPI document', description: 'The OpenAPI 3 description of every route but the FHIR REST API (see /fhir/metadata).', tags: ['documentation'] },
    },
    async () => app.swagger(),
  );
}

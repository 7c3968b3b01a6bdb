/**
 * The OpenAPI document covers the API: every route the engine registers (but the FHIR REST API, which the
 * CapabilityStatement describes, and static files) is in /openapi.json with a summary, and its security matches the
 * route's config. The document and its browsable copy are public.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { routesOf, type RouteSummary } from '../../api/index.ts';
import { startTestEngine, type TestEngine } from '../support/engine.ts';

let t: TestEngine;
let doc: any;

beforeAll(async () => {
  t = await startTestEngine();
  const response = await fetch(`${t.httpUrl}/openapi.json`);
  expect(response.status).toBe(200);
  doc = await response.json();
});
afterAll(async () => {
  await t?.destroy();
});

/** FHIR REST: described by /fhir/metadata instead. */
const isFhir = (url: string): boolean => url === '/fhir' || url.startsWith('/fhir/');
/** Files and redirects to them: the docs page and its assets, the web console. */
const isStatic = (route: RouteSummary): boolean =>
  route.url.includes('*') || route.url === '/' || route.url === '/docs' || route.url.startsWith('/docs/') || route.url.startsWith('/console') || route.url.startsWith('/portal');

/** fastify's /a/:b to OpenAPI's /a/{b}. */
const openapiPath = (url: string): string => url.replace(/:([A-Za-z0-9_]+)/g, '{$1}');

function documentedRoutes(): RouteSummary[] {
  return routesOf(t.engine.api!).filter((route) => route.method !== 'HEAD' && !isFhir(route.url) && !isStatic(route));
}

function operation(route: RouteSummary): any {
  return doc.paths?.[openapiPath(route.url)]?.[route.method.toLowerCase()];
}

describe('/openapi.json', () => {
  it('is an OpenAPI 3 document with bearer security', () => {
    expect(doc.openapi).toMatch(/^3\./);
    expect(doc.info.title).toBe('anchorline');
    expect(doc.components.securitySchemes.bearer).toMatchObject({ type: 'http', scheme: 'bearer' });
  });

  it('documents every route but FHIR and static files, each with a summary', () => {
    const routes = documentedRoutes();
    // The collection itself works: it sees routes of the root and of plugins.
    expect(routes.map((r) => `${r.method} ${r.url}`)).toEqual(expect.arrayContaining(['GET /metrics', 'POST /ingest/cda', 'POST /dicomweb/studies', 'GET /terminology/unmapped']));
    const missing = routes.filter((route) => typeof operation(route)?.summary !== 'string' || operation(route).summary === '').map((r) => `${r.method} ${r.url}`);
    expect(missing).toEqual([]);
  });

  it('leaves the FHIR REST API to its CapabilityStatement', () => {
    expect(routesOf(t.engine.api!).some((route) => isFhir(route.url))).toBe(true);
    expect(Object.keys(doc.paths).filter(isFhir)).toEqual([]);
  });

  it('says which routes need a bearer credential, as their config does', () => {
    for (const route of documentedRoutes()) {
      const described = operation(route);
      if (!described) continue; // reported by the coverage test
      const expected = route.config.public === true ? [] : [{ bearer: [] }];
      expect(described.security, `${route.method} ${route.url}`).toEqual(expected);
    }
    expect(doc.paths['/metrics'].get.security).toEqual([]);
    expect(doc.paths['/admin/stats'].get.security).toEqual([{ bearer: [] }]);
  });

  it('describes bodies that are not JSON as binary, with their media types', () => {
    const cda = doc.paths['/ingest/cda'].post.requestBody.content;
    expect(Object.keys(cda)).toEqual(expect.arrayContaining(['application/xml', 'text/xml', 'application/cda+xml']));
    expect(cda['application/xml'].schema).toMatchObject({ type: 'string', format: 'binary' });
    expect(doc.paths['/dicomweb/studies'].post.requestBody.content['multipart/related'].schema).toMatchObject({ type: 'string', format: 'binary' });
    expect(doc.paths['/proofs/{type}/{id}/_history/{vid}'].get.parameters.map((p: any) => p.name).sort()).toEqual(['checkpoint', 'id', 'type', 'vid']);
  });
});

describe('/docs', () => {
  it('serves the browsable copy without a key', async () => {
    const page = await fetch(`${t.httpUrl}/docs`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toContain('text/html');
    const json = await fetch(`${t.httpUrl}/docs/json`);
    expect(json.status).toBe(200);
    expect(((await json.json()) as any).openapi).toBe(doc.openapi);
  });
});

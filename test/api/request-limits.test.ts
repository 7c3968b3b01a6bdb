/**
 * What a request may ask of the API: the number of search criteria and their values, page size and depth, search
 * parameter names that are no FHIR names (`__proto__`, `constructor`), ids written other than as decimal digits, and
 * a C-CDA document sent as JSON.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adtMessage } from '../support/messages.ts';
import { authHeaders, eventually, startTestEngine, type TestEngine } from '../support/engine.ts';

let t: TestEngine;

beforeAll(async () => {
  t = await startTestEngine({ overrides: { http: { maxSearchParameters: 8, maxSearchValuesPerParameter: 5, maxPageCount: 50, maxPageOffset: 200 } } });
});
afterAll(async () => {
  await t?.destroy();
});

async function get(path: string): Promise<{ status: number; code: string | null; body: any }> {
  const response = await fetch(`${t.httpUrl}${path}`, { headers: authHeaders() });
  return { status: response.status, code: response.headers.get('x-anchorline-error'), body: await response.json().catch(() => undefined) };
}

function expectRefused(answer: { status: number; code: string | null; body: any }, text?: RegExp): void {
  expect(answer.status).toBe(400);
  expect(answer.code).toBe('ANCHORLINE_ERR_INVALID_REQUEST');
  expect(answer.body.resourceType).toBe('OperationOutcome');
  if (text) expect(answer.body.issue[0].details.text).toMatch(text);
}

describe('search size', () => {
  it('refuses more search criteria than http.maxSearchParameters, naming the cap', async () => {
    const criteria = (n: number): string => Array.from({ length: n }, (_, i) => `name=n${i}`).join('&');
    expect((await get(`/fhir/Patient?${criteria(8)}`)).status).toBe(200);
    expectRefused(await get(`/fhir/Patient?${criteria(9)}`), /at most 8 .*http\.maxSearchParameters/);
    // The flood that once ran for minutes: a thousand criteria are refused before any query runs.
    expectRefused(await get(`/fhir/Patient?${criteria(1000)}`), /at most 8/);
    // _include and _revinclude count too (each is a query of its own); _count and _offset do not.
    const includes = Array.from({ length: 9 }, () => '_revinclude=Encounter:subject').join('&');
    expectRefused(await get(`/fhir/Patient?${includes}`), /at most 8/);
    expect((await get(`/fhir/Patient?${criteria(8)}&_count=5&_offset=0`)).status).toBe(200);
  });

  it('refuses more alternatives in one criterion than http.maxSearchValuesPerParameter', async () => {
    expect((await get('/fhir/Patient?name=a,b,c,d,e')).status).toBe(200);
    expectRefused(await get('/fhir/Patient?name=a,b,c,d,e,f'), /name may list at most 5 values/);
    expectRefused(await get('/fhir/Patient?_id=a,b,c,d,e,f'), /_id may list at most 5 values/);
    expectRefused(await get('/fhir/Patient?gender=a,b,c,d,e,f'), /gender may list at most 5 values/);
  });
});

describe('paging', () => {
  it('lowers _count to http.maxPageCount and refuses _offset above http.maxPageOffset', async () => {
    const big = await get('/fhir/Patient?_count=5000');
    expect(big.status).toBe(200);
    expect(new URL(big.body.link.find((l: any) => l.relation === 'self').url).searchParams.get('_count')).toBe('50');
    expect((await get('/fhir/Patient?_offset=200')).status).toBe(200);
    expectRefused(await get('/fhir/Patient?_offset=201'), /_offset may be at most 200 \(http\.maxPageOffset\)/);
    expectRefused(await get('/fhir/Patient/none/_history?_offset=201'), /_offset may be at most 200/);
  });

  it('reads _count and _offset only as decimal digits', async () => {
    for (const value of ['1e1', '0x10', '+5', '05', '5.0', '-1', '', '%205']) {
      expectRefused(await get(`/fhir/Patient?_count=${value}`));
      expectRefused(await get(`/fhir/Patient?_offset=${value}`));
    }
  });
});

describe('search parameter names', () => {
  it('refuses names every object inherits and names that are no FHIR names, with 400', async () => {
    for (const name of ['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'valueOf', '__defineGetter__', 'name%20x', 'name.family', '_', 'name:__proto__']) {
      const answer = await get(`/fhir/Patient?${name}=x`);
      expect(answer.status, name).toBe(400);
      expect(answer.code, name).toBe('ANCHORLINE_ERR_INVALID_REQUEST');
    }
    for (const include of ['constructor:name', '__proto__:constructor', 'Patient:constructor', 'Encounter:__proto__']) {
      expect((await get(`/fhir/Patient?_include=${include}`)).status, include).toBe(400);
      expect((await get(`/fhir/Patient?_revinclude=${include}`)).status, include).toBe(400);
    }
    // The names that are FHIR's still work.
    expect((await get('/fhir/Patient?name:exact=x&_lastUpdated=ge2020&_id=a')).status).toBe(200);
    expect((await get('/fhir/Encounter?subject=Patient/x&_revinclude=Observation:encounter')).status).toBe(200);
  });
});

describe('ids in paths', () => {
  it('revokes a key only by its id in decimal digits', async () => {
    const made = await fetch(`${t.httpUrl}/admin/api-keys`, { method: 'POST', headers: { ...authHeaders(), 'content-type': 'application/json' }, body: JSON.stringify({ name: 'strict', scopes: ['system/Patient.rs'] }) });
    const { id, key } = (await made.json()) as { id: number; key: string };
    const read = async (): Promise<number> => (await fetch(`${t.httpUrl}/fhir/Patient`, { headers: { authorization: `Bearer ${key}` } })).status;
    expect(await read()).toBe(200);
    for (const spelling of [`${id}e0`, `0x${id.toString(16)}`, `%2B${id}`, `0${id}`, `%20${id}`, `${id}.0`, `${id}%20`, `0b${id.toString(2)}`]) {
      const revoke = await fetch(`${t.httpUrl}/admin/api-keys/${spelling}`, { method: 'DELETE', headers: authHeaders() });
      expect(revoke.status, spelling).toBe(400);
      expect(revoke.headers.get('x-anchorline-error'), spelling).toBe('ANCHORLINE_ERR_INVALID_REQUEST');
    }
    expect(await read()).toBe(200);
    expect((await fetch(`${t.httpUrl}/admin/api-keys/${id}`, { method: 'DELETE', headers: authHeaders() })).status).toBe(204);
  });

  it('reads message and version ids only as decimal digits', async () => {
    const ingest = await fetch(`${t.httpUrl}/ingest/hl7v2`, { method: 'POST', headers: { ...authHeaders(), 'content-type': 'x-application/hl7-v2+er7' }, body: adtMessage({ controlId: 'LIMITS-1', mrn: 'LIM1' }) });
    expect(ingest.status).toBe(202);
    const messageId = Number(ingest.headers.get('x-anchorline-message-id'));
    expect((await get(`/admin/messages/${messageId}`)).status).toBe(200);
    for (const spelling of [`${messageId}e0`, `0x${messageId.toString(16)}`, `0${messageId}`, `${messageId}.0`]) {
      expectRefused(await get(`/admin/messages/${spelling}`));
    }
    const patient = await eventually(async () => (await get('/fhir/Patient?identifier=LIM1')).body.entry?.[0]?.resource, 20_000, 'the Patient');
    expect((await get(`/fhir/Patient/${patient.id}/_history/1`)).status).toBe(200);
    for (const spelling of ['1e0', '0x1', '01', '1.0', '%2B1']) {
      expectRefused(await get(`/fhir/Patient/${patient.id}/_history/${spelling}`));
      expectRefused(await get(`/proofs/Patient/${patient.id}/_history/${spelling}`));
    }
  });
});

describe('C-CDA media type', () => {
  it('answers a document sent as JSON with 415, before the body is parsed', async () => {
    for (const contentType of ['application/json', 'application/json; charset=utf-8', 'application/fhir+json', 'text/plain']) {
      const response = await fetch(`${t.httpUrl}/ingest/cda`, { method: 'POST', headers: { ...authHeaders(), 'content-type': contentType }, body: '<ClinicalDocument xmlns="urn:hl7-org:v3"/>' });
      expect(response.status, contentType).toBe(415);
      expect(response.headers.get('x-anchorline-error'), contentType).toBe('ANCHORLINE_ERR_UNSUPPORTED_MEDIA_TYPE');
    }
    // Even when the body is JSON: the route takes XML only.
    const json = await fetch(`${t.httpUrl}/ingest/cda`, { method: 'POST', headers: { ...authHeaders(), 'content-type': 'application/json' }, body: '{"a": 1}' });
    expect(json.status).toBe(415);
  });
});

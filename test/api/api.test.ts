/** The HTTP API: authentication before parsing, scopes, FHIR reads/searches/history, errors as OperationOutcome. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adtMessage } from '../support/messages.ts';
import { hl7Field } from '../support/mllp-client.ts';
import { authHeaders, eventually, startTestEngine, type TestEngine } from '../support/engine.ts';

let t: TestEngine;
let readKey: string;
let ingestKey: string;

beforeAll(async () => {
  t = await startTestEngine({ overrides: { http: { bodyLimitBytes: 256 * 1024 } } });
  const make = async (scopes: string[]): Promise<string> => {
    const response = await fetch(`${t.httpUrl}/admin/api-keys`, { method: 'POST', headers: { ...authHeaders(), 'content-type': 'application/json' }, body: JSON.stringify({ name: scopes.join('+'), scopes }) });
    expect(response.status).toBe(201);
    return ((await response.json()) as { key: string }).key;
  };
  readKey = await make(['read']);
  ingestKey = await make(['ingest']);
});
afterAll(async () => {
  await t?.destroy();
});

const HL7 = { 'content-type': 'x-application/hl7-v2+er7' };

async function ingest(body: string | Buffer, key = ingestKey): Promise<Response> {
  return fetch(`${t.httpUrl}/ingest/hl7v2`, { method: 'POST', headers: { ...HL7, authorization: `Bearer ${key}` }, body });
}

describe('authentication', () => {
  it('answers 401 with an OperationOutcome before reading the body', async () => {
    // Larger than the body limit: had the body been parsed first, this would be 413.
    const response = await fetch(`${t.httpUrl}/ingest/hl7v2`, { method: 'POST', headers: HL7, body: 'x'.repeat(1024 * 1024) });
    expect(response.status).toBe(401);
    expect(response.headers.get('www-authenticate')).toBe('Bearer');
    const outcome = (await response.json()) as any;
    expect(outcome.resourceType).toBe('OperationOutcome');
    expect(outcome.issue[0].details.coding[0].code).toBe('ANCHORLINE_ERR_UNAUTHORIZED');
  });

  it('rejects unknown keys and enforces scopes', async () => {
    expect((await fetch(`${t.httpUrl}/fhir/Patient`, { headers: { authorization: 'Bearer nope' } })).status).toBe(401);
    expect((await fetch(`${t.httpUrl}/fhir/Patient`, { headers: { authorization: `Bearer ${readKey}` } })).status).toBe(200);
    const forbidden = await ingest(adtMessage({ controlId: 'SCOPE-1', mrn: 'S1' }), readKey);
    expect(forbidden.status).toBe(403);
    expect(forbidden.headers.get('x-anchorline-error')).toBe('ANCHORLINE_ERR_FORBIDDEN');
    expect((await fetch(`${t.httpUrl}/fhir/Patient`, { headers: { authorization: `Bearer ${ingestKey}` } })).status).toBe(403);
  });

  it('stops accepting a key once it is revoked', async () => {
    const made = await fetch(`${t.httpUrl}/admin/api-keys`, { method: 'POST', headers: { ...authHeaders(), 'content-type': 'application/json' }, body: JSON.stringify({ name: 'temp', scopes: ['read'] }) });
    const { id, key } = (await made.json()) as { id: number; key: string };
    expect((await fetch(`${t.httpUrl}/fhir/Patient`, { headers: { authorization: `Bearer ${key}` } })).status).toBe(200);
    expect((await fetch(`${t.httpUrl}/admin/api-keys/${id}`, { method: 'DELETE', headers: { authorization: `Bearer ${key}` } })).status).toBe(403);
    expect((await fetch(`${t.httpUrl}/admin/api-keys/${id}`, { method: 'DELETE', headers: authHeaders() })).status).toBe(204);
    expect((await fetch(`${t.httpUrl}/fhir/Patient`, { headers: { authorization: `Bearer ${key}` } })).status).toBe(401);
    expect((await fetch(`${t.httpUrl}/admin/api-keys/${id}`, { method: 'DELETE', headers: authHeaders() })).status).toBe(404);
  });

  it('serves the capability statement without a key', async () => {
    const response = await fetch(`${t.httpUrl}/fhir/metadata`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toContain('application/fhir+json');
    const body = (await response.json()) as any;
    expect(body.resourceType).toBe('CapabilityStatement');
    expect(body.fhirVersion).toBe('4.0.1');
    expect(body.rest[0].resource.map((r: any) => r.type)).toEqual(expect.arrayContaining(['Patient', 'Encounter']));
  });
});

describe('HL7 v2 over HTTP and FHIR reads', () => {
  it('ingests, then reads, vreads, searches and lists history', async () => {
    const first = await ingest(adtMessage({ controlId: 'HTTP-1', mrn: 'H100', family: 'Choi', given: 'Yuna', event: 'A04' }));
    expect(first.status).toBe(202);
    expect(first.headers.get('content-type')).toContain('hl7-v2');
    const ack = await first.text();
    expect(hl7Field(ack, 'MSA', 1)).toBe('AA');
    const resend = await ingest(adtMessage({ controlId: 'HTTP-1', mrn: 'H100', family: 'Choi', given: 'Yuna', event: 'A04' }));
    expect(resend.status).toBe(200);
    expect(resend.headers.get('x-anchorline-outcome')).toBe('duplicate');
    expect(await resend.text()).toBe(ack);

    const headers = { authorization: `Bearer ${readKey}` };
    const patient = await eventually(async () => {
      const r = await fetch(`${t.httpUrl}/fhir/Patient?family=cho`, { headers });
      const b = (await r.json()) as any;
      return b.total === 1 ? b.entry[0].resource : undefined;
    });
    expect(patient.name[0].family).toBe('Choi');

    await ingest(adtMessage({ controlId: 'HTTP-2', mrn: 'H100', family: 'Choi', given: 'Yuna', event: 'A08', gender: 'M' }));
    await eventually(async () => {
      const r = await fetch(`${t.httpUrl}/fhir/Patient/${patient.id}`, { headers });
      const b = (await r.json()) as any;
      return b.meta.versionId === '2' ? b : undefined;
    });
    const read = await fetch(`${t.httpUrl}/fhir/Patient/${patient.id}`, { headers });
    expect(read.headers.get('etag')).toBe('W/"2"');
    const vread = (await (await fetch(`${t.httpUrl}/fhir/Patient/${patient.id}/_history/1`, { headers })).json()) as any;
    expect(vread.gender).toBe('female');
    expect(vread.meta.versionId).toBe('1');
    const history = (await (await fetch(`${t.httpUrl}/fhir/Patient/${patient.id}/_history`, { headers })).json()) as any;
    expect(history.type).toBe('history');
    expect(history.entry.map((e: any) => e.resource.meta.versionId)).toEqual(['2', '1']);

    const byName = (await (await fetch(`${t.httpUrl}/fhir/Patient?name=yuna`, { headers })).json()) as any;
    expect(byName.total).toBe(1);
    const byGender = (await (await fetch(`${t.httpUrl}/fhir/Patient?gender=male&family=choi`, { headers })).json()) as any;
    expect(byGender.total).toBe(1);
    // The superseded version's entries are gone from the index.
    const oldGender = (await (await fetch(`${t.httpUrl}/fhir/Patient?gender=female&family=choi`, { headers })).json()) as any;
    expect(oldGender.total).toBe(0);
    const none = (await (await fetch(`${t.httpUrl}/fhir/Patient?name=nobody-like-this`, { headers })).json()) as any;
    expect(none.total).toBe(0);
    expect(none.entry).toEqual([]);
  });

  it('answers errors with coded OperationOutcomes', async () => {
    const headers = { authorization: `Bearer ${readKey}` };
    const missing = await fetch(`${t.httpUrl}/fhir/Patient/does-not-exist`, { headers });
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as any).issue[0].code).toBe('not-found');
    const unknownParam = await fetch(`${t.httpUrl}/fhir/Patient?nmae=x`, { headers });
    expect(unknownParam.status).toBe(400);
    expect(unknownParam.headers.get('x-anchorline-error')).toBe('ANCHORLINE_ERR_INVALID_REQUEST');
    const badType = await fetch(`${t.httpUrl}/fhir/Spaceship/1`, { headers });
    expect(badType.status).toBe(404);
    const tooBig = await ingest('MSH|^~\\&|' + 'x'.repeat(300 * 1024));
    expect(tooBig.status).toBe(413);
    expect(tooBig.headers.get('x-anchorline-error')).toBe('ANCHORLINE_ERR_FRAME_TOO_LARGE');
    const malformed = await ingest('not hl7 at all');
    expect(malformed.status).toBe(400);
    expect(malformed.headers.get('x-anchorline-error')).toBe('ANCHORLINE_ERR_HL7_NO_MSH');
    expect(hl7Field(await malformed.text(), 'MSA', 1)).toBe('AR');
  });
});

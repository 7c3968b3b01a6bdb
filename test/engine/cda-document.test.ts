/**
 * A C-CDA document through a real engine (embedded PostgreSQL, the worker) as a FHIR document: the worker stores a
 * Bundle of type document whose entries are the resource versions it stored, readable at /fhir/Bundle/{id} and by
 * GET /fhir/Composition/{id}/$document, audited like every read; the header's attesters and encounter, and an
 * unstructured document's body in its DocumentReference.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { validateFhirResource } from '../../mappers/index.ts';
import { authHeaders, eventually, startTestEngine, type TestEngine } from '../support/engine.ts';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const fixture = (name: string): Buffer => readFileSync(path.join(HERE, '..', 'fixtures', 'cda', name));
const corpus = (name: string): Buffer => readFileSync(path.join(HERE, '..', 'fixtures', 'corpus', 'ccda', 'hl7-c-cda-examples', name));

let t: TestEngine;

beforeAll(async () => {
  t = await startTestEngine({ overrides: { cda: { maxBytes: 400_000, maxDepth: 200 } } });
});

afterAll(async () => {
  await t?.destroy();
});

async function get(url: string, headers: Record<string, string> = authHeaders()): Promise<any> {
  const response = await fetch(`${t.httpUrl}${url}`, { headers });
  expect(response.status, url).toBe(200);
  return response.json();
}

/** Posts a document and waits until it is mapped; returns the message as /admin/messages shows it. */
async function ingest(document: Buffer): Promise<any> {
  const response = await fetch(`${t.httpUrl}/ingest/cda`, { method: 'POST', headers: { ...authHeaders(), 'content-type': 'application/xml' }, body: document });
  expect(response.status).toBe(202);
  const id = Number(response.headers.get('x-anchorline-message-id'));
  return eventually(async () => {
    const message = await get(`/admin/messages/${id}`);
    return message.state === 'queued' ? undefined : message;
  }, 30_000, `message ${id} mapped`);
}

async function lastAuditEvent(): Promise<any> {
  const { rows } = await t.pool.query<{ content: any }>(`SELECT content FROM fhir_resource WHERE resource_type = 'AuditEvent' ORDER BY last_updated DESC LIMIT 1`);
  return rows[0]!.content;
}

describe('the FHIR document of a C-CDA document', () => {
  let compositionId: string;
  let bundle: any;

  it('is stored by the worker as a document Bundle of the versions it stored, served by Composition/$document', async () => {
    const message = await ingest(fixture('header-attesters-encounter.xml'));
    expect(message.state).toBe('done');
    const patient = (await get('/fhir/Patient?identifier=urn:oid:2.16.840.1.113883.19.5|HDR-P1')).entry[0].resource;
    const composition = (await get(`/fhir/Composition?patient=Patient/${patient.id}`)).entry[0].resource;
    compositionId = composition.id;

    bundle = await get(`/fhir/Composition/${compositionId}/$document`);
    expect(validateFhirResource(bundle)).toEqual([]);
    expect(bundle).toMatchObject({ resourceType: 'Bundle', type: 'document', identifier: { system: 'urn:oid:2.16.840.1.113883.19.5.99999.1', value: 'HDR-1' }, timestamp: '2024-05-02T17:00:00+09:00' });
    expect(bundle.entry[0].resource).toEqual(composition);
    // Every entry is the stored version itself, references as stored, each named by its RESTful fullUrl.
    for (const entry of bundle.entry) {
      const { resourceType, id } = entry.resource;
      expect(entry.fullUrl).toMatch(new RegExp(`^http://[^/]+/fhir/${resourceType}/${id}$`));
      expect(await get(`/fhir/${resourceType}/${id}`)).toEqual(entry.resource);
    }
    const types = bundle.entry.map((entry: any) => entry.resource.resourceType);
    expect(types).toEqual(expect.arrayContaining(['Composition', 'Patient', 'Practitioner', 'Organization', 'Encounter', 'Location']));
    expect(types).not.toContain('DocumentReference');
    // Every reference among entries resolves, relative to the entries' base, to an entry.
    const base = bundle.entry[0].fullUrl.slice(0, -`Composition/${compositionId}`.length);
    const fullUrls = new Set(bundle.entry.map((entry: any) => entry.fullUrl));
    for (const reference of JSON.stringify(bundle.entry).match(/"reference":"[^"]+"/g) ?? []) expect(fullUrls, reference).toContain(`${base}${reference.slice(13, -1)}`);

    // The same resource at /fhir/Bundle/{id}, found by the document id and by its Composition.
    expect(await get(`/fhir/Bundle/${bundle.id}`)).toEqual(bundle);
    expect((await get('/fhir/Bundle?identifier=urn:oid:2.16.840.1.113883.19.5.99999.1|HDR-1')).entry.map((entry: any) => entry.resource.id)).toEqual([bundle.id]);
    expect((await get(`/fhir/Bundle?composition=Composition/${compositionId}`)).entry).toHaveLength(1);
    expect((await get('/fhir/metadata')).rest[0].resource.find((resource: any) => resource.type === 'Composition').operation).toEqual([expect.objectContaining({ name: 'document' })]);
  });

  it('carries the header: the Composition\'s attesters and its Encounter, readable under the patient', async () => {
    const composition = bundle.entry[0].resource;
    expect(composition.attester.map((attester: any) => attester.mode)).toEqual(['legal', 'professional', 'professional']);
    const encounter = await get(`/fhir/${composition.encounter.reference}`);
    expect(encounter).toMatchObject({ status: 'finished', class: { code: 'IMP' }, subject: composition.subject });
    expect((await get(`/fhir/Encounter?patient=${composition.subject.reference}`)).entry.map((entry: any) => entry.resource.id)).toEqual([encounter.id]);
    const patient = await get(`/fhir/${composition.subject.reference}`);
    expect(patient.communication.map((communication: any) => communication.language.coding[0].code)).toEqual(['ko', 'en']);
  });

  it('audits $document as an operation that read the Bundle, every entry and the patient', async () => {
    await get(`/fhir/Composition/${compositionId}/$document`);
    const audit = await lastAuditEvent();
    expect(audit.subtype).toEqual([expect.objectContaining({ code: 'operation' })]);
    expect(audit.outcomeDesc).toBe(`Composition/${compositionId}/$document`);
    const what = audit.entity.map((entity: any) => entity.what?.reference);
    expect(what).toContain(bundle.entry[0].resource.subject.reference);
    expect(what).toContain(`Bundle/${bundle.id}/_history/${bundle.meta.versionId}`);
    for (const entry of bundle.entry) expect(what).toContain(`${entry.resource.resourceType}/${entry.resource.id}/_history/${entry.resource.meta.versionId}`);
    // A plain read of the Bundle names the same patient and entries.
    await get(`/fhir/Bundle/${bundle.id}`);
    const read = await lastAuditEvent();
    expect(read.subtype).toEqual([expect.objectContaining({ code: 'read' })]);
    expect(read.entity.map((entity: any) => entity.what?.reference)).toEqual(expect.arrayContaining(what.filter((reference: unknown) => reference !== undefined)));
  });

  it('writes no new Bundle version when the document is mapped again and nothing changed', async () => {
    const { rows } = await t.pool.query<{ id: string }>(`SELECT id::text FROM inbox_message WHERE control_id = '2.16.840.1.113883.19.5.99999.1^HDR-1'`);
    const reprocess = await fetch(`${t.httpUrl}/admin/messages/reprocess`, { method: 'POST', headers: { ...authHeaders(), 'content-type': 'application/json' }, body: JSON.stringify({ ids: [Number(rows[0]!.id)] }) });
    expect(reprocess.status).toBe(200);
    await eventually(async () => (await get(`/admin/messages/${rows[0]!.id}`)).state === 'done', 30_000, 'mapped again');
    const again = await get(`/fhir/Bundle/${bundle.id}`);
    expect(again.meta.versionId).toBe(bundle.meta.versionId);
  });

  it('refuses a caller who may read Compositions but not what the document holds, and answers 404 for a Composition without one', async () => {
    const made = await fetch(`${t.httpUrl}/admin/api-keys`, { method: 'POST', headers: { ...authHeaders(), 'content-type': 'application/json' }, body: JSON.stringify({ name: 'compositions-only', scopes: ['system/Composition.rs', 'system/Bundle.rs'] }) });
    const { key } = (await made.json()) as { key: string };
    const narrow = await fetch(`${t.httpUrl}/fhir/Composition/${compositionId}/$document`, { headers: { authorization: `Bearer ${key}` } });
    expect(narrow.status).toBe(403);
    expect((await fetch(`${t.httpUrl}/fhir/Bundle/${bundle.id}`, { headers: { authorization: `Bearer ${key}` } })).status).toBe(403);
    const missing = await fetch(`${t.httpUrl}/fhir/Composition/00000000-0000-4000-8000-000000000000/$document`, { headers: authHeaders() });
    expect(missing.status).toBe(404);
    const unknown = await fetch(`${t.httpUrl}/fhir/Composition/${compositionId}/$document?graph=x`, { headers: authHeaders() });
    expect(unknown.status).toBe(400);
    // The rest of the Composition's routes still answer.
    expect((await get(`/fhir/Composition/${compositionId}/_history`)).total).toBeGreaterThanOrEqual(1);
  });

  it('stores an unstructured document\'s embedded PDF in its DocumentReference, beside the stored CDA document', async () => {
    const document = corpus('Unstructured_Document_embed.xml');
    const message = await ingest(document);
    expect(message.state).toBe('done');
    expect(message.mappingIssues ?? []).toEqual([]);
    const composition = (await get('/fhir/Composition?_count=100')).entry.map((entry: any) => entry.resource).find((resource: any) => resource.title === 'Community Health and Hospitals: Discharge Summary');
    const documentReference = (await get(`/fhir/DocumentReference?patient=${composition.subject.reference}`)).entry
      .map((entry: any) => entry.resource)
      .find((resource: any) => resource.context.related[0].reference === `Composition/${composition.id}`);
    const [body, stored] = documentReference.content;
    expect(body.attachment.contentType).toBe('application/pdf');
    expect(Buffer.from(body.attachment.data, 'base64').subarray(0, 5).toString()).toBe('%PDF-');
    expect(stored.attachment).toMatchObject({ contentType: 'text/xml', url: `urn:anchorline:message:${message.rawSha256}` });
    expect(validateFhirResource(documentReference)).toEqual([]);
  });
});

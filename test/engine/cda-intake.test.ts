/**
 * POST /ingest/cda through a real engine (embedded PostgreSQL, the Postgres queue, the ingest worker): a C-CDA
 * document is stored with its SHA-256, mapped through terminology into resources readable at /fhir, about the same
 * Patient an HL7 v2 ADT made for the same identifier, with a DocumentReference whose url names the stored bytes. A
 * resend is a duplicate; refused documents get coded OperationOutcomes, are kept as rejected rows, and disturb
 * nothing else.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { validateFhirResource } from '../../mappers/index.ts';
import { loadConceptMap, parseConceptMap } from '../../terminology/index.ts';
import { authHeaders, eventually, startTestEngine, type TestEngine } from '../support/engine.ts';

const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'cda');
const fixture = (name: string): Buffer => readFileSync(path.join(FIXTURES, name));
const sha256 = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex');

const MRN_SYSTEM = 'urn:oid:1.2.410.999999.1.1';
const ICD10 = 'http://hl7.org/fhir/sid/icd-10';
const SNOMED = 'http://snomed.info/sct';

let t: TestEngine;

beforeAll(async () => {
  t = await startTestEngine({ overrides: { cda: { maxBytes: 200_000, maxDepth: 200 } } });
  // The document's problem is coded in ICD-10; the engine's ConceptMaps add SNOMED CT beside it.
  await loadConceptMap(t.pool, parseConceptMap(JSON.stringify({
    resourceType: 'ConceptMap',
    url: 'http://hospital.example.org/fhir/ConceptMap/icd10-to-snomed',
    version: '1',
    status: 'active',
    group: [{ source: ICD10, target: SNOMED, element: [{ code: 'E11.9', target: [{ code: '44054006', display: 'Diabetes mellitus type 2', equivalence: 'equivalent' }] }] }],
  }), 'json'));
});

afterAll(async () => {
  await t?.destroy();
});

async function postCda(body: Buffer | string, contentType = 'application/xml'): Promise<{ status: number; headers: Headers; body: any }> {
  const response = await fetch(`${t.httpUrl}/ingest/cda`, { method: 'POST', headers: { ...authHeaders(), 'content-type': contentType }, body });
  return { status: response.status, headers: response.headers, body: await response.json() };
}

async function get(url: string): Promise<any> {
  const response = await fetch(`${t.httpUrl}${url}`, { headers: authHeaders() });
  expect(response.status, url).toBe(200);
  return response.json();
}

async function mapped(messageId: number): Promise<any> {
  return eventually(async () => {
    const message = await get(`/admin/messages/${messageId}`);
    return message.state === 'queued' ? undefined : message;
  }, 30_000, `message ${messageId} mapped`);
}

/** Records stored; not AuditEvents, which the tests' own reads of the admin API write. */
async function counts(): Promise<{ versions: number; resources: number }> {
  const { rows } = await t.pool.query<{ versions: number; resources: number }>(
    `SELECT (SELECT count(*)::int FROM fhir_resource_history WHERE resource_type <> 'AuditEvent') AS versions,
            (SELECT count(*)::int FROM fhir_resource WHERE resource_type <> 'AuditEvent') AS resources`,
  );
  return rows[0]!;
}

function errorCode(outcome: any): string {
  return outcome.issue[0].details.coding[0].code;
}

describe('POST /ingest/cda', () => {
  let hl7PatientId: string;
  let messageId: number;
  const document = fixture('korean-discharge-summary.xml');

  it('takes a patient from HL7 v2 first', async () => {
    const adt = [
      'MSH|^~\\&|HIS|SEOULCENTRAL|ANCHORLINE|ANCHORLINE|20240301090000+0900||ADT^A28^ADT_A05|ADT-CDA-1|P|2.5.1|||||KOR|UNICODE UTF-8',
      'EVN|A28|20240301090000',
      `PID|1||H0012345^^^&1.2.410.999999.1.1&ISO^MR~850101-1234567^^^&1.2.410.200001.1&ISO^NI||홍^길동||19700412|M`,
    ].join('\r');
    const response = await fetch(`${t.httpUrl}/ingest/hl7v2`, { method: 'POST', headers: { ...authHeaders(), 'content-type': 'x-application/hl7-v2+er7' }, body: adt });
    expect(response.status).toBe(202);
    hl7PatientId = await eventually(async () => (await get(`/fhir/Patient?identifier=${MRN_SYSTEM}|H0012345`)).entry?.[0]?.resource?.id, 30_000, 'HL7 patient');
  });

  it('stores the document, answers 202 naming where its mapping outcome will be, and records what the conversion leaves out on the message', async () => {
    const response = await postCda(document);
    expect(response.status).toBe(202);
    expect(response.headers.get('x-anchorline-outcome')).toBe('stored');
    messageId = Number(response.headers.get('x-anchorline-message-id'));
    expect(response.headers.get('location')).toBe(`/admin/messages/${messageId}`);
    expect(response.body.resourceType).toBe('OperationOutcome');
    expect(validateFhirResource(response.body)).toEqual([]);
    // The intake does not convert: the answer says where the outcome will be, and the conversion's issues are the message's.
    expect(response.body.issue.map((issue: any) => issue.details.coding[0].code)).toEqual(['document-stored']);
    expect(response.body.issue[0].details.text).toContain(`/admin/messages/${messageId}`);

    const message = await mapped(messageId);
    expect(message).toMatchObject({
      protocol: 'cda',
      sender: 'cda:1.2.410.999999.1',
      controlId: '1.2.410.999999.1.5^DS-2024-000123-v2',
      messageType: 'CDA^18842-5',
      disposition: 'accepted',
      state: 'done',
      rawSha256: sha256(document),
      rawSize: document.length,
    });
    expect(Buffer.from(message.rawBase64, 'base64').equals(document)).toBe(true);
    // The document repeats an entry id: each statement kept as a resource of its own, recorded as a mapping issue.
    expect(message.mappingIssues).toEqual([
      expect.objectContaining({ severity: 'information', code: 'ANCHORLINE_ISSUE_DUPLICATE_KEY', location: '/ClinicalDocument', detail: expect.stringContaining('repeated-entry-id') }),
    ]);
  });

  it('makes the document\'s patient the Patient HL7 v2 made, with both sets of identifiers', async () => {
    const bundle = await get(`/fhir/Patient?identifier=${MRN_SYSTEM}|H0012345`);
    expect(bundle.entry).toHaveLength(1);
    const patient = bundle.entry[0].resource;
    expect(patient.id).toBe(hl7PatientId);
    expect(patient.identifier).toEqual(expect.arrayContaining([
      expect.objectContaining({ system: MRN_SYSTEM, value: 'H0012345' }),
      expect.objectContaining({ system: 'urn:oid:1.2.410.200001.1', value: '850101-1234567' }),
    ]));
    expect(patient.name[0]).toMatchObject({ family: '홍', given: ['길동'] });
    expect((await get('/fhir/Patient?family=홍')).entry).toHaveLength(1);
  });

  it('serves the Composition, the clinical resources and the DocumentReference at /fhir, terminology applied', async () => {
    const about = `patient=Patient/${hl7PatientId}`;
    const composition = (await get(`/fhir/Composition?${about}`)).entry.map((entry: any) => entry.resource);
    expect(composition).toHaveLength(1);
    expect(composition[0]).toMatchObject({ subject: { reference: `Patient/${hl7PatientId}` }, title: '퇴원요약지' });
    expect((await get(`/fhir/AllergyIntolerance?${about}`)).entry).toHaveLength(1);
    expect((await get(`/fhir/MedicationRequest?${about}`)).entry).toHaveLength(1);
    expect((await get(`/fhir/Observation?${about}`)).entry).toHaveLength(3);
    const condition = (await get(`/fhir/Condition?${about}`)).entry[0].resource;
    expect(condition.code.coding).toEqual([
      expect.objectContaining({ system: ICD10, code: 'E11.9' }),
      expect.objectContaining({ system: SNOMED, code: '44054006' }),
    ]);
    expect((await get(`/fhir/Condition?code=${SNOMED}|44054006`)).entry).toHaveLength(1);
    const author = composition[0].author[0].reference;
    expect((await get(`/fhir/${author}`)).name[0].family).toBe('김');
  });

  it('points the DocumentReference at the stored raw document, whose SHA-256 matches', async () => {
    const documentReference = (await get(`/fhir/DocumentReference?patient=Patient/${hl7PatientId}`)).entry[0].resource;
    const attachment = documentReference.content[0].attachment;
    expect(attachment.url).toBe(`urn:anchorline:message:${sha256(document)}`);
    expect(attachment.size).toBe(document.length);
    const message = await get(`/admin/messages/${messageId}`);
    expect(message.rawSha256).toBe(attachment.url.slice('urn:anchorline:message:'.length));
    expect(sha256(Buffer.from(message.rawBase64, 'base64'))).toBe(message.rawSha256);
    const source = await fetch(`${t.httpUrl}/proofs/DocumentReference/${documentReference.id}/_history/${documentReference.meta.versionId}/source`, { headers: authHeaders() });
    expect(source.status).toBe(200);
    expect(Buffer.from(await source.arrayBuffer()).equals(document)).toBe(true);
  });

  it('answers a resend as a duplicate and changes nothing', async () => {
    const before = await counts();
    const response = await postCda(document);
    expect(response.status).toBe(200);
    expect(response.headers.get('x-anchorline-outcome')).toBe('duplicate');
    expect(Number(response.headers.get('x-anchorline-message-id'))).toBe(messageId);
    expect(response.body.issue[0].details.coding[0].code).toBe('document-duplicate');
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(await counts()).toEqual(before);
  });

  it('refuses the same document id with other content (409), keeping it for review', async () => {
    const changed = Buffer.from(document.toString('utf8').replace('페니실린: 두드러기', '페니실린: 발진'));
    const response = await postCda(changed);
    expect(response.status).toBe(409);
    expect(errorCode(response.body)).toBe('ANCHORLINE_ERR_DUPLICATE_CONTROL_ID');
    const row = await get(`/admin/messages/${response.headers.get('x-anchorline-message-id')}`);
    expect(row).toMatchObject({ disposition: 'conflict', rawSha256: sha256(changed) });
  });
});

describe('mapping issues of a document', () => {
  it('records the sections the conversion leaves out on the message, located by XPath, listed among warnings and counted', async () => {
    const response = await postCda(fixture('unknown-section.xml'));
    expect(response.status).toBe(202);
    expect(response.body.issue).toHaveLength(1);
    const id = Number(response.headers.get('x-anchorline-message-id'));
    const message = await mapped(id);
    expect(message.state).toBe('done');
    expect(message.mappingIssues).toEqual([
      {
        severity: 'warning',
        code: 'ANCHORLINE_ISSUE_SECTION_NOT_MAPPED',
        location: '/ClinicalDocument/component/structuredBody/component[1]/section',
        detail: expect.stringMatching(/^section 'Local screening results' \(X-LOCAL-1\) is not a kind the converter knows .*\(section-not-supported\)$/),
      },
    ]);
    const warned = await get('/admin/messages?warnings=true&protocol=cda');
    expect(warned.messages.map((m: any) => m.id)).toContain(id);
    const metrics = await (await fetch(`${t.httpUrl}/metrics`, { headers: authHeaders() })).text();
    expect(metrics).toMatch(/anchorline_mapping_issues_total\{code="ANCHORLINE_ISSUE_SECTION_NOT_MAPPED"\} [1-9]/);
  });
});

describe('refused documents', () => {
  const cases: Array<[string, Buffer | string, number, string, string?]> = [
    ['a DOCTYPE with an external entity', fixture('error-doctype-xxe.xml'), 400, 'ANCHORLINE_ERR_CDA_DOCTYPE'],
    ['entity expansion', fixture('error-billion-laughs.xml'), 400, 'ANCHORLINE_ERR_CDA_DOCTYPE'],
    ['nesting past the limit', fixture('error-too-deep.xml'), 400, 'ANCHORLINE_ERR_CDA_TOO_DEEP'],
    ['no recordTarget', fixture('error-no-record-target.xml'), 422, 'ANCHORLINE_ERR_CDA_NO_PATIENT'],
    ['a patient of nullFlavors only', fixture('error-null-flavor-patient.xml'), 422, 'ANCHORLINE_ERR_CDA_NO_PATIENT'],
    ['malformed XML', fixture('error-malformed-tags.xml'), 400, 'ANCHORLINE_ERR_CDA_MALFORMED'],
    ['bytes that are not UTF-8', fixture('error-invalid-utf8.xml'), 400, 'ANCHORLINE_ERR_CHARSET_MISMATCH'],
    ['a document over cda.maxBytes', `<ClinicalDocument>${'<title>x</title>'.repeat(20_000)}</ClinicalDocument>`, 413, 'ANCHORLINE_ERR_CDA_TOO_LARGE'],
  ];

  for (const [name, body, status, code] of cases) {
    it(`answers ${status} ${code} to ${name}, keeps the bytes as a rejected row, and disturbs nothing`, async () => {
      const before = await counts();
      const response = await postCda(body);
      expect(response.status).toBe(status);
      expect(response.headers.get('x-anchorline-error')).toBe(code);
      expect(response.body.resourceType).toBe('OperationOutcome');
      expect(errorCode(response.body)).toBe(code);
      const row = await get(`/admin/messages/${response.headers.get('x-anchorline-message-id')}`);
      const bytes = Buffer.isBuffer(body) ? body : Buffer.from(body);
      expect(row).toMatchObject({ protocol: 'cda', disposition: 'rejected', state: 'rejected', errorCode: code, rawSize: bytes.length });
      const kept = Buffer.from(row.rawBase64, 'base64');
      expect(bytes.subarray(0, kept.length).equals(kept)).toBe(true);
      if (code === 'ANCHORLINE_ERR_CDA_TOO_LARGE') expect(kept.length).toBe(64 * 1024);
      else expect(kept.length).toBe(bytes.length);
      expect(await counts()).toEqual(before);
    });
  }

  it('answers 415 to other media types and 400 to an empty body, storing nothing', async () => {
    const rows = async (): Promise<number> => (await t.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM inbox_message')).rows[0]!.n;
    const before = await rows();
    const plain = await postCda(fixture('unknown-section.xml'), 'text/plain');
    expect(plain.status).toBe(415);
    expect(errorCode(plain.body)).toBe('ANCHORLINE_ERR_UNSUPPORTED_MEDIA_TYPE');
    const json = await postCda('{}', 'application/json');
    expect(json.status).toBe(415);
    const empty = await postCda('', 'application/xml');
    expect(empty.status).toBe(400);
    expect(await rows()).toBe(before);
  });

  it('still takes good documents after all that', async () => {
    const response = await postCda(fixture('korean-progress-note-euc-kr.xml'), 'text/xml');
    expect(response.status).toBe(202);
    const message = await mapped(Number(response.headers.get('x-anchorline-message-id')));
    expect(message.state).toBe('done');
    const patient = (await get('/fhir/Patient?identifier=urn:oid:1.2.410.999999.1.1|H0098765')).entry[0].resource;
    expect(patient.name[0]).toMatchObject({ family: '이', given: ['서연'] });
    expect(patient.birthDate).toBe('1992-03');
  });
});

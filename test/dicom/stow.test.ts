/**
 * STOW-RS and WADO-RS on a real engine: real multipart/related bodies (whole, and streamed in small chunks) through
 * the HTTP API, the real intake and ingest worker, answered with the Store Instances Response Module.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DICOM_BLOB_EXTENSION_URL, imagingStudyId } from '../../mappers/index.ts';
import { authHeaders, eventually, startTestEngine, type TestEngine } from '../support/engine.ts';

const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'dicom');
const fixture = (name: string): Buffer => readFileSync(path.join(FIXTURES, `${name}.dcm`));
const STUDY_UID = '2.25.1000000001';
const MAX_INSTANCE_BYTES = 16 * 1024;
const STOW_MAX_BYTES = 200 * 1024;
const BOUNDARY = 'stow-test-boundary-7d1c';
const CONTENT_TYPE = `multipart/related; type="application/dicom"; boundary=${BOUNDARY}`;

/** DICOM JSON attribute helpers. */
type DicomJson = Record<string, { vr: string; Value?: unknown[] }>;
const values = (dataset: DicomJson, tag: string): unknown[] => dataset[tag]?.Value ?? [];
const items = (dataset: DicomJson, tag: string): DicomJson[] => values(dataset, tag) as DicomJson[];

function multipart(parts: Array<Buffer | { body: Buffer; type?: string }>, boundary = BOUNDARY): Buffer {
  const pieces: Buffer[] = [];
  for (const part of parts) {
    const { body, type } = Buffer.isBuffer(part) ? { body: part, type: 'application/dicom' } : part;
    pieces.push(Buffer.from(`--${boundary}\r\n${type ? `Content-Type: ${type}\r\n` : ''}\r\n`), body, Buffer.from('\r\n'));
  }
  pieces.push(Buffer.from(`--${boundary}--\r\n`));
  return Buffer.concat(pieces);
}

async function stow(body: Buffer | ReadableStream<Uint8Array>, options: { path?: string; contentType?: string; headers?: Record<string, string> } = {}): Promise<{ status: number; json: any; headers: Headers }> {
  const response = await fetch(`${t.httpUrl}${options.path ?? '/dicomweb/studies'}`, {
    method: 'POST',
    headers: { ...authHeaders(), 'content-type': options.contentType ?? CONTENT_TYPE, accept: 'application/dicom+json', ...options.headers },
    body,
    ...(body instanceof ReadableStream ? { duplex: 'half' } : {}),
  } as RequestInit);
  const text = await response.text();
  return { status: response.status, json: text ? JSON.parse(text) : undefined, headers: response.headers };
}

function trickle(bytes: Buffer, chunkBytes: number): ReadableStream<Uint8Array> {
  let offset = 0;
  return new ReadableStream({
    pull(controller) {
      if (offset >= bytes.length) return controller.close();
      controller.enqueue(new Uint8Array(bytes.subarray(offset, offset + chunkBytes)));
      offset += chunkBytes;
    },
  });
}

/** Parts of a multipart/related response body. */
function responseParts(body: Buffer, contentType: string): Array<{ headers: string; body: Buffer }> {
  const boundary = /boundary=([^;]+)/.exec(contentType)![1]!;
  const out: Array<{ headers: string; body: Buffer }> = [];
  const delimiter = Buffer.from(`--${boundary}`);
  let at = body.indexOf(delimiter);
  while (at >= 0) {
    const next = body.indexOf(delimiter, at + delimiter.length);
    if (next < 0) break;
    const part = body.subarray(at + delimiter.length + 2, next - 2);
    const split = part.indexOf('\r\n\r\n');
    out.push({ headers: part.subarray(0, split).toString(), body: part.subarray(split + 4) });
    at = next;
  }
  return out;
}

/** The stored message of an instance once it is mapped, as /admin/messages/{id} shows it. */
async function mapped(sop: string): Promise<any> {
  let row: { id: number; state: string } | undefined;
  await eventually(async () => {
    row = (await t.pool.query<{ id: number; state: string }>(`SELECT id, state FROM inbox_message WHERE control_id = $1`, [sop])).rows[0];
    return row?.state === 'done';
  }, 30_000, `instance ${sop} mapped`);
  return (await fetch(`${t.httpUrl}/admin/messages/${row!.id}`, { headers: authHeaders() })).json();
}

let t: TestEngine;
beforeAll(async () => {
  t = await startTestEngine({ overrides: { dicom: { enabled: false, maxInstanceBytes: MAX_INSTANCE_BYTES, stowMaxBytes: STOW_MAX_BYTES } } });
});
afterAll(async () => {
  await t?.destroy();
});

describe('STOW-RS', () => {
  it('stores several instances; a broken one fails alone (202, Failed SOP Sequence with its reason)', async () => {
    const good = ['ct-1', 'ct-2', 'ct-3', 'mr-1', 'mr-2'];
    const { status, json, headers } = await stow(multipart([fixture('ct-1'), fixture('truncated'), ...good.slice(1).map(fixture)]));
    expect(status).toBe(202);
    expect(headers.get('content-type')).toContain('application/dicom+json');
    expect(headers.get('x-anchorline-error')).toBe('ANCHORLINE_ERR_DICOM_TRUNCATED');
    const referenced = items(json, '00081199');
    expect(referenced.map((i) => values(i, '00081155')[0]).sort()).toEqual([`${STUDY_UID}.1.1`, `${STUDY_UID}.1.2`, `${STUDY_UID}.1.3`, `${STUDY_UID}.2.1`, `${STUDY_UID}.2.2`]);
    expect(values(referenced[0]!, '00081150')[0]).toBe('1.2.840.10008.5.1.4.1.1.2');
    expect(values(referenced[0]!, '00081190')[0]).toBe(`${t.httpUrl}/dicomweb/studies/${STUDY_UID}/series/${STUDY_UID}.1/instances/${STUDY_UID}.1.1`);
    expect(values(json, '00081190')[0]).toBe(`${t.httpUrl}/dicomweb/studies/${STUDY_UID}`);
    const failed = items(json, '00081198');
    expect(failed).toHaveLength(1);
    expect(values(failed[0]!, '00081197')[0]).toBe(0xc000);

    // Mapped into FHIR, and retrievable over WADO-RS as the bytes sent.
    await eventually(async () => {
      const response = await fetch(`${t.httpUrl}/fhir/ImagingStudy/${imagingStudyId(STUDY_UID)}`, { headers: authHeaders() });
      return response.status === 200 && ((await response.json()) as { numberOfInstances?: number }).numberOfInstances === 5;
    }, 30_000, 'the ImagingStudy with 5 instances');
    const instance = await fetch(`${t.httpUrl}/dicomweb/studies/${STUDY_UID}/series/${STUDY_UID}.2/instances/${STUDY_UID}.2.2`, { headers: authHeaders() });
    expect(instance.status).toBe(200);
    const contentType = instance.headers.get('content-type')!;
    expect(contentType).toMatch(/^multipart\/related; type="application\/dicom"; boundary=/);
    const parts = responseParts(Buffer.from(await instance.arrayBuffer()), contentType);
    expect(parts).toHaveLength(1);
    expect(parts[0]!.body.equals(fixture('mr-2'))).toBe(true);
    expect(parts[0]!.headers).toContain('transfer-syntax=1.2.840.10008.1.2.4.50');
    const study = await fetch(`${t.httpUrl}/dicomweb/studies/${STUDY_UID}`, { headers: authHeaders() });
    expect(responseParts(Buffer.from(await study.arrayBuffer()), study.headers.get('content-type')!)).toHaveLength(5);
    const series = await fetch(`${t.httpUrl}/dicomweb/studies/${STUDY_UID}/series/${STUDY_UID}.1`, { headers: authHeaders() });
    expect(responseParts(Buffer.from(await series.arrayBuffer()), series.headers.get('content-type')!)).toHaveLength(3);
    expect((await fetch(`${t.httpUrl}/dicomweb/studies/${STUDY_UID}/series/${STUDY_UID}.1/instances/2.25.404`, { headers: authHeaders() })).status).toBe(404);
  });

  it('stores what real equipment sends past the standard, with each departure as an issue on the message', async () => {
    // From the public corpus: a structured report with undefined-length items and an empty Patient ID, and an RT plan
    // whose file meta names another SOP instance than its data set.
    const corpus = (name: string): Buffer => readFileSync(path.join(FIXTURES, '..', 'corpus', 'dicom', 'pydicom', name));
    const report = { sop: '1.2.276.0.7230010.3.1.4.1787205428.166.1117461927.10', study: '1.2.276.0.7230010.3.1.2.1787205428.166.1117461927.5' };
    const plan = { sop: '1.2.777.777.77.7.7777.7777.20030903150023', study: '1.22.333.4.555555.6.7777777777777777777777777777' };
    const { status, json } = await stow(multipart([corpus('test_files__reportsi.dcm'), corpus('test_files__rtplan.dcm')]));
    expect(status).toBe(200);
    expect(items(json, '00081199').map((i) => values(i, '00081155')[0]).sort()).toEqual([plan.sop, report.sop].sort());
    const reportMessage = await mapped(report.sop);
    expect(reportMessage.mappingIssues.map((i: any) => [i.code, i.location])).toEqual([['ANCHORLINE_ISSUE_PATIENT_UNIDENTIFIED', '(0010,0020)']]);
    const study = (await (await fetch(`${t.httpUrl}/fhir/ImagingStudy/${imagingStudyId(report.study)}`, { headers: authHeaders() })).json()) as any;
    expect(study.series[0].modality.code).toBe('SR');
    const patient = (await (await fetch(`${t.httpUrl}/fhir/${study.subject.reference}`, { headers: authHeaders() })).json()) as any;
    expect(patient.identifier).toBeUndefined();
    expect(patient.name[0].family).toBe('Last Name');
    const planMessage = await mapped(plan.sop);
    // Sent without Issuer of Patient ID over STOW-RS (no AE title) by a credential bound to no source, in a config
    // with no default authority: the Patient ID takes the authority every such sender shares, with a warning.
    expect(planMessage.mappingIssues.map((i: any) => [i.code, i.location, i.severity, i.value])).toEqual([
      ['ANCHORLINE_ISSUE_INVALID_VALUE', '(0002,0003)', 'warning', '1.2.999.999.99.9.9999.9999.20030903150023'],
      ['ANCHORLINE_ISSUE_AUTHORITY_FALLBACK', '(0010,0021)', 'warning', undefined],
    ]);
    const planStudy = (await (await fetch(`${t.httpUrl}/fhir/ImagingStudy/${imagingStudyId(plan.study)}`, { headers: authHeaders() })).json()) as any;
    expect(planStudy.series[0].instance.map((i: any) => i.uid)).toEqual([plan.sop]);
    const planPatient = (await (await fetch(`${t.httpUrl}/fhir/${planStudy.subject.reference}`, { headers: authHeaders() })).json()) as any;
    expect(planPatient.identifier).toEqual([{ system: 'urn:anchorline:authority:unidentified-sender', value: 'id00001' }]);
  });

  it('stores an instance written without File Meta Information inside a file meta group of its own, and says so', async () => {
    // pydicom's RT Structure Set: a bare implicit VR little endian data set, no preamble, no 'DICM', no group 0002.
    const bare = readFileSync(path.join(FIXTURES, '..', 'corpus', 'dicom', 'pydicom', 'test_files__rtstruct.dcm'));
    const sop = '1.2.826.0.1.3680043.8.498.2010020400001';
    const study = `${sop}.1`;
    const { status, json } = await stow(multipart([bare]));
    expect(status).toBe(200);
    expect(items(json, '00081199').map((i) => values(i, '00081155')[0])).toEqual([sop]);
    const message = await mapped(sop);
    expect(message.mappingIssues.map((i: any) => [i.code, i.location])).toContainEqual(['ANCHORLINE_ISSUE_MISSING_FIELD', '(0002,0010)']);
    // WADO-RS serves a Part 10 file: our file meta group (implicit VR little endian, the SOP instance) before the data
    // set exactly as received.
    const instance = await fetch(`${t.httpUrl}/dicomweb/studies/${study}/series/${study}.1/instances/${sop}`, { headers: authHeaders() });
    expect(instance.status).toBe(200);
    const contentType = instance.headers.get('content-type')!;
    const [part] = responseParts(Buffer.from(await instance.arrayBuffer()), contentType);
    expect(part!.headers).toMatch(/transfer-syntax=1\.2\.840\.10008\.1\.2(\r|\n|;|$)/m);
    expect(part!.body.toString('latin1', 128, 132)).toBe('DICM');
    expect(part!.body.subarray(part!.body.length - bare.length).equals(bare)).toBe(true);
    expect(part!.body.includes(Buffer.from(sop, 'latin1'))).toBe(true);
    // The same bytes again are the same instance.
    const again = await stow(multipart([bare]));
    expect(again.status).toBe(200);
    expect((await t.pool.query(`SELECT count(*)::int AS n FROM inbox_message WHERE control_id = $1`, [sop])).rows[0]).toEqual({ n: 1 });
  });

  it('stores an instance that names no study or series under UIDs derived for it, which its Retrieve URL names', async () => {
    // fo-dicom's GH223: a CT image with SOP class and instance, and no Study or Series Instance UID.
    const file = readFileSync(path.join(FIXTURES, '..', 'corpus', 'dicom', 'fo-dicom', 'GH223.dcm'));
    const sop = '1.2.840.113704.7.1.1.1096.1405167825.3';
    const { status, json } = await stow(multipart([file]));
    expect(status).toBe(200);
    const retrieveUrl = values(items(json, '00081199')[0]!, '00081190')[0] as string;
    const [, study, series] = /\/studies\/(2\.25\.\d+)\/series\/(2\.25\.\d+)\/instances\/([\d.]+)$/.exec(retrieveUrl)!;
    expect(retrieveUrl.endsWith(`/instances/${sop}`)).toBe(true);
    const message = await mapped(sop);
    expect(message.mappingIssues.map((i: any) => [i.code, i.location])).toEqual(expect.arrayContaining([['ANCHORLINE_ISSUE_MISSING_FIELD', '(0020,000D)'], ['ANCHORLINE_ISSUE_MISSING_FIELD', '(0020,000E)']]));
    const imaging = (await (await fetch(`${t.httpUrl}/fhir/ImagingStudy/${imagingStudyId(study!)}`, { headers: authHeaders() })).json()) as any;
    expect(imaging.identifier).toContainEqual(expect.objectContaining({ value: `urn:oid:${study}` }));
    expect(imaging.series[0].uid).toBe(series);
    const instance = await fetch(retrieveUrl, { headers: authHeaders() });
    expect(instance.status).toBe(200);
    expect(responseParts(Buffer.from(await instance.arrayBuffer()), instance.headers.get('content-type')!)[0]!.body.equals(file)).toBe(true);
    // Sent again to a study in the URL: the instance names none, so it is not of another study.
    expect((await stow(multipart([file]), { path: '/dicomweb/studies/2.25.42' })).status).toBe(200);
  });

  it('answers a resend with 200: instances stored before are not failures', async () => {
    const { status, json } = await stow(multipart([fixture('ct-1'), fixture('ct-2')]));
    expect(status).toBe(200);
    expect(items(json, '00081199')).toHaveLength(2);
    expect(json['00081198']).toBeUndefined();
  });

  it('reads a body streamed in 7-byte chunks, boundaries split anywhere', async () => {
    const { status, json } = await stow(trickle(multipart([fixture('ct-3'), fixture('mr-1')]), 7));
    expect(status).toBe(200);
    expect(items(json, '00081199')).toHaveLength(2);
  });

  it('answers 409 when nothing could be stored, with each part in the Failed SOP Sequence', async () => {
    const { status, json } = await stow(multipart([fixture('bad-uid-traversal'), fixture('no-dicm-prefix'), { body: Buffer.from('{"not": "dicom"}'), type: 'application/json' }]));
    expect(status).toBe(409);
    const reasons = items(json, '00081198').map((i) => values(i, '00081197')[0]);
    expect(reasons).toEqual([0xa900, 0xc000, 0xc000]);
    expect(json['00081199']).toBeUndefined();
  });

  it('fails an instance whose SOP Instance UID was stored with other content (0111), keeping the first', async () => {
    const altered = Buffer.from(fixture('ct-1'));
    altered[altered.length - 1] = altered[altered.length - 1]! ^ 0xff; // a pixel value
    const { status, json, headers } = await stow(multipart([altered]));
    expect(status).toBe(409);
    expect(headers.get('x-anchorline-error')).toBe('ANCHORLINE_ERR_DUPLICATE_CONTROL_ID');
    expect(values(items(json, '00081198')[0]!, '00081197')[0]).toBe(0x0111);
  });

  it('fails a part over dicom.maxInstanceBytes with A700 and stores the others', async () => {
    const big = Buffer.concat([fixture('ct-1'), Buffer.alloc(MAX_INSTANCE_BYTES)]);
    const { status, json } = await stow(multipart([big, fixture('ct-1')]));
    expect(status).toBe(202);
    expect(values(items(json, '00081198')[0]!, '00081197')[0]).toBe(0xa700);
  });

  it('with a study in the URL, fails instances of another study', async () => {
    const { status, json } = await stow(multipart([fixture('ct-1')]), { path: '/dicomweb/studies/2.25.42' });
    expect(status).toBe(409);
    const failed = items(json, '00081198')[0]!;
    expect(values(failed, '00081155')[0]).toBe(`${STUDY_UID}.1.1`);
    expect(values(failed, '00081197')[0]).toBe(0xa900);
    expect(values(json, '00081190')[0]).toBe(`${t.httpUrl}/dicomweb/studies/2.25.42`);
    expect((await stow(multipart([fixture('ct-1')]), { path: `/dicomweb/studies/${STUDY_UID}` })).status).toBe(200);
    expect((await stow(multipart([fixture('ct-1')]), { path: '/dicomweb/studies/not-a-uid' })).status).toBe(400);
  });

  it('refuses requests that are not multipart/related of application/dicom (415) or not acceptable (406)', async () => {
    const single = await stow(fixture('ct-1'), { contentType: 'application/dicom' });
    expect(single.status).toBe(415);
    expect(single.json.resourceType).toBe('OperationOutcome');
    expect((await stow(multipart([fixture('ct-1')]), { contentType: `multipart/related; type="application/dicom+xml"; boundary=${BOUNDARY}` })).status).toBe(415);
    const xmlOnly = await stow(multipart([fixture('ct-1')]), { headers: { accept: 'application/dicom+xml' } });
    expect(xmlOnly.status).toBe(406);
    expect(xmlOnly.json.issue[0].details.coding[0].code).toBe('ANCHORLINE_ERR_NOT_ACCEPTABLE');
  });

  it('refuses a malformed multipart body (400) and one without a boundary (400)', async () => {
    const noBoundary = await stow(multipart([fixture('ct-1')]), { contentType: 'multipart/related; type="application/dicom"' });
    expect(noBoundary.status).toBe(400);
    expect(noBoundary.json.issue[0].details.coding[0].code).toBe('ANCHORLINE_ERR_MULTIPART_MALFORMED');
    const wrongBoundary = await stow(multipart([fixture('ct-1')], 'other-boundary'));
    expect(wrongBoundary.status).toBe(400);
    const unterminated = await stow(Buffer.from(`--${BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\n`));
    expect(unterminated.status).toBe(400);
    // Broken before any part is complete, while more of the body is still on its way.
    const broken = await stow(trickle(Buffer.concat([Buffer.from(`--${BOUNDARY}\r\nnot a header line\r\n\r\n`), Buffer.alloc(100 * 1024), multipart([fixture('ct-1')])]), 4096));
    expect(broken.status).toBe(400);
    expect(broken.json.issue[0].details.text).toMatch(/not "name: value"/);
  });

  it('refuses a body over dicom.stowMaxBytes with 413, by its Content-Length or as it streams', async () => {
    const body = multipart(Array.from({ length: 20 }, () => Buffer.alloc(12 * 1024)));
    const declared = await stow(body);
    expect(declared.status).toBe(413);
    expect(declared.json.issue[0].details.coding[0].code).toBe('ANCHORLINE_ERR_FRAME_TOO_LARGE');
    const streamed = await stow(trickle(body, 16 * 1024));
    expect(streamed.status).toBe(413);
  });

  it('needs a key with the ingest scope; instances need the read scope', async () => {
    const anonymous = await fetch(`${t.httpUrl}/dicomweb/studies`, { method: 'POST', headers: { 'content-type': CONTENT_TYPE }, body: multipart([fixture('ct-1')]) });
    expect(anonymous.status).toBe(401);
    const created = await fetch(`${t.httpUrl}/admin/api-keys`, { method: 'POST', headers: { ...authHeaders(), 'content-type': 'application/json' }, body: JSON.stringify({ name: 'reader', scopes: ['read'] }) });
    const reader = ((await created.json()) as { key: string }).key;
    const forbidden = await fetch(`${t.httpUrl}/dicomweb/studies`, { method: 'POST', headers: { ...authHeaders(reader), 'content-type': CONTENT_TYPE }, body: multipart([fixture('ct-1')]) });
    expect(forbidden.status).toBe(403);
    const study = (await (await fetch(`${t.httpUrl}/fhir/ImagingStudy/${imagingStudyId(STUDY_UID)}`, { headers: authHeaders(reader) })).json()) as any;
    const sha256 = study.series[0].instance[0].extension.find((e: { url: string }) => e.url === DICOM_BLOB_EXTENSION_URL).valueString as string;
    const blob = await fetch(`${t.httpUrl}/blobs/${sha256}`, { headers: authHeaders(reader) });
    expect(blob.status).toBe(200);
    expect(blob.headers.get('content-type')).toBe('application/dicom');
    // Each retrieval is audited and an instance may be erased: nothing may keep a copy to serve later.
    expect(blob.headers.get('cache-control')).toBe('no-store');
    expect((await fetch(`${t.httpUrl}/blobs/${'0'.repeat(64)}`, { headers: authHeaders(reader) })).status).toBe(404);
    expect((await fetch(`${t.httpUrl}/blobs/..%2F..%2Fetc%2Fpasswd`, { headers: authHeaders(reader) })).status).toBe(400);
  });
});

/**
 * The DIMSE listener against real peers: DCMTK's echoscu and storescu (Debian package dcmtk) talk to a real engine,
 * whose instances go through the real intake, ingest worker and FHIR store. A raw upper layer client
 * (test/support/dimse-client.ts) does what DCMTK's tools will not: hold associations open, send bytes that are not
 * DICOM, break the PDU limits, or send without waiting.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DICOM_BLOB_EXTENSION_URL, imagingStudyId } from '../../mappers/index.ts';
import { authHeaders, eventually, startTestEngine, type TestEngine } from '../support/engine.ts';
import {
  announcedMaxPdu,
  commandSet,
  contextResults,
  CT_IMAGE_STORAGE,
  EXPLICIT_LE,
  message,
  RawDimseClient,
  rejection,
  responseStatus,
  VERIFICATION,
} from '../support/dimse-client.ts';

const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'dicom');
const fixturePath = (name: string): string => path.join(FIXTURES, `${name}.dcm`);
const STUDY_UID = '2.25.1000000001';
const MAX_INSTANCE_BYTES = 256 * 1024;
const MAX_PDU_BYTES = 32 * 1024;

interface ToolResult {
  code: number;
  output: string;
}

/** Runs a DCMTK tool (asynchronously: the engine under test lives in this process). */
function dcmtk(tool: string, args: string[]): Promise<ToolResult> {
  return new Promise((resolve) => {
    execFile(tool, args, { timeout: 30_000 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
      resolve({ code, output: `${stdout}${stderr}` });
    });
  });
}

/** The data set of a Part 10 file: what a C-STORE carries (after the preamble, 'DICM' and the meta group). */
function datasetOf(file: Buffer): Buffer {
  const metaLength = file.readUInt32LE(132 + 8);
  return file.subarray(132 + 12 + metaLength);
}

let t: TestEngine;
const clients: RawDimseClient[] = [];

beforeAll(async () => {
  t = await startTestEngine({
    overrides: {
      dicom: {
        aeTitle: 'ANCHORLINE',
        allowedCallingAeTitles: ['ECHOSCU', 'STORESCU', 'RAWSCU'],
        maxAssociations: 2,
        // Short enough for the timeout test below, long enough that a storescu started on a loaded machine (CI runs
        // test files side by side on two cores) associates and sends its next instance in time.
        associationRequestTimeoutMs: 3_000,
        associationIdleTimeoutMs: 8_000,
        maxPduBytes: MAX_PDU_BYTES,
        maxInstanceBytes: MAX_INSTANCE_BYTES,
      },
    },
  });
});

afterAll(async () => {
  for (const c of clients) c.destroy();
  await t?.destroy();
});

async function rawAssociation(contexts = [{ id: 1, abstractSyntax: CT_IMAGE_STORAGE, transferSyntaxes: [EXPLICIT_LE] }, { id: 3, abstractSyntax: VERIFICATION, transferSyntaxes: [EXPLICIT_LE] }]): Promise<RawDimseClient> {
  const client = await RawDimseClient.connect(t.dicomPort);
  clients.push(client);
  const answer = await client.associate({ called: 'ANCHORLINE', calling: 'RAWSCU', contexts });
  expect(answer?.type, 'A-ASSOCIATE-AC').toBe(0x02);
  return client;
}

async function store(client: RawDimseClient, messageId: number, sopInstanceUid: string, dataset: Buffer): Promise<number | undefined> {
  client.send(message(1, commandSet({ sopClassUid: CT_IMAGE_STORAGE, commandField: 0x0001, messageId, hasDataset: true, sopInstanceUid }), dataset));
  const response = await client.nextCommand();
  return response ? responseStatus(response) : undefined;
}

describe('DIMSE with DCMTK peers', () => {
  it('answers C-ECHO from echoscu', async () => {
    const result = await dcmtk('echoscu', ['-v', '-aec', 'ANCHORLINE', '127.0.0.1', String(t.dicomPort)]);
    expect(result.code, result.output).toBe(0);
    expect(result.output).toContain('Received Echo Response (Success)');
  });

  it('stores a study sent by storescu as an ImagingStudy; an invalid instance in the same association fails alone', async () => {
    // bad-uid-traversal names its SOP instance '../../../../tmp/anchorline-escape': refused with A900, and the
    // instances after it in the association are stored. -xy also proposes JPEG Baseline, for mr-2.
    const files = ['ct-1', 'bad-uid-traversal', 'ct-2', 'ct-3', 'mr-1', 'mr-2'].map(fixturePath);
    const result = await dcmtk('storescu', ['-v', '-nh', '-xy', '-aec', 'ANCHORLINE', '127.0.0.1', String(t.dicomPort), ...files]);
    expect(result.code, result.output).toBe(0);
    expect(result.output.match(/Received Store Response \(Success\)/g)).toHaveLength(5);
    expect(result.output).toContain('Received Store Response (Error: DataSetDoesNotMatchSOPClass)');

    const study = await eventually(async () => {
      const response = await fetch(`${t.httpUrl}/fhir/ImagingStudy/${imagingStudyId(STUDY_UID)}`, { headers: authHeaders() });
      if (response.status !== 200) return undefined;
      const body = (await response.json()) as { numberOfInstances?: number };
      return body.numberOfInstances === 5 ? body : undefined;
    }, 30_000, 'the ImagingStudy with 5 instances');
    const series = (study as { series: Array<{ uid: string; instance: Array<{ uid: string; extension: Array<{ url: string; valueString: string }> }> }> }).series;
    expect(series.map((s) => s.uid).sort()).toEqual([`${STUDY_UID}.1`, `${STUDY_UID}.2`]);
    const instances = series.flatMap((s) => s.instance);
    expect(instances.map((i) => i.uid).sort()).toEqual([`${STUDY_UID}.1.1`, `${STUDY_UID}.1.2`, `${STUDY_UID}.1.3`, `${STUDY_UID}.2.1`, `${STUDY_UID}.2.2`]);

    // Each stored instance is the data set as sent, in a file meta group naming the association's calling AE title.
    const sha256 = instances[0]!.extension.find((e) => e.url === DICOM_BLOB_EXTENSION_URL)!.valueString;
    const blob = await fetch(`${t.httpUrl}/blobs/${sha256}`, { headers: authHeaders() });
    expect(blob.status).toBe(200);
    const file = Buffer.from(await blob.arrayBuffer());
    expect(file.toString('latin1', 128, 132)).toBe('DICM');
    expect(file.includes(Buffer.from('STORESCU'))).toBe(true);

    const rows = await t.pool.query<{ disposition: string; error_code: string | null; sender: string; source: string }>("SELECT disposition, error_code, sender, source FROM inbox_message WHERE protocol = 'dicom' ORDER BY id");
    expect(rows.rows.filter((r) => r.disposition === 'accepted')).toHaveLength(5);
    expect(rows.rows.find((r) => r.disposition === 'rejected')?.error_code).toBe('ANCHORLINE_ERR_DICOM_BAD_UID');
    expect(rows.rows.every((r) => r.sender === 'STORESCU' && r.source.startsWith('dimse:127.0.0.1:'))).toBe(true);
  });

  it('answers a resend of the same instances with Success, storing nothing twice', async () => {
    const result = await dcmtk('storescu', ['-aec', 'ANCHORLINE', '127.0.0.1', String(t.dicomPort), fixturePath('ct-1'), fixturePath('ct-2')]);
    expect(result.code, result.output).toBe(0);
    const count = await t.pool.query<{ n: string }>("SELECT count(*) AS n FROM inbox_message WHERE protocol = 'dicom' AND control_id IN ($1, $2)", [`${STUDY_UID}.1.1`, `${STUDY_UID}.1.2`]);
    expect(Number(count.rows[0]!.n)).toBe(2);
  });

  it('rejects an association from a calling AE title not allowed, or to another called AE title', async () => {
    const intruder = await dcmtk('echoscu', ['-aet', 'INTRUDER', '-aec', 'ANCHORLINE', '127.0.0.1', String(t.dicomPort)]);
    expect(intruder.code).not.toBe(0);
    expect(intruder.output).toContain('Rejected Permanent, Source: Service User');
    expect(intruder.output).toContain('Calling AE Title Not Recognized');
    const misdirected = await dcmtk('echoscu', ['-aec', 'OTHERPACS', '127.0.0.1', String(t.dicomPort)]);
    expect(misdirected.code).not.toBe(0);
    expect(misdirected.output).toContain('Called AE Title Not Recognized');
  });

  it('rejects associations beyond maxAssociations as transient, and admits again once one is released', async () => {
    const first = await rawAssociation();
    const second = await rawAssociation();
    const refused = await dcmtk('echoscu', ['-aec', 'ANCHORLINE', '127.0.0.1', String(t.dicomPort)]);
    expect(refused.code).not.toBe(0);
    expect(refused.output).toContain('Rejected Transient');
    expect(refused.output).toContain('Local Limit Exceeded');
    await first.release();
    await eventually(async () => (await dcmtk('echoscu', ['-aec', 'ANCHORLINE', '127.0.0.1', String(t.dicomPort)])).code === 0, 5_000, 'an association admitted again');
    await second.release();
  });
});

describe('DIMSE robustness', () => {
  it('answers a data set that is not DICOM with Cannot Understand, and goes on with the next instance', async () => {
    const client = await rawAssociation();
    const garbage = Buffer.from('this is not a DICOM data set at all, just text and more text'.repeat(4));
    expect(await store(client, 1, '2.25.999.1', garbage)).toBe(0xc000);
    const good = datasetOf(readFileSync(fixturePath('ct-1')));
    expect(await store(client, 2, `${STUDY_UID}.1.1`, good)).toBe(0x0000);
    await client.release();
  });

  it('refuses an instance over maxInstanceBytes with Out of Resources, without holding it, and goes on', async () => {
    const client = await rawAssociation();
    expect(await store(client, 1, '2.25.999.2', Buffer.alloc(MAX_INSTANCE_BYTES + 1024, 0x41))).toBe(0xa700);
    expect(await store(client, 2, `${STUDY_UID}.1.1`, datasetOf(readFileSync(fixturePath('ct-1'))))).toBe(0x0000);
    await client.release();
  });

  it('answers requests sent without waiting for responses, one by one, in order', async () => {
    const client = await rawAssociation();
    const good = datasetOf(readFileSync(fixturePath('ct-2')));
    const pipelined = Buffer.concat([
      message(1, commandSet({ sopClassUid: CT_IMAGE_STORAGE, commandField: 0x0001, messageId: 11, hasDataset: true, sopInstanceUid: '2.25.999.3' }), Buffer.from('not dicom')),
      message(3, commandSet({ sopClassUid: VERIFICATION, commandField: 0x0030, messageId: 12, hasDataset: false })),
      message(1, commandSet({ sopClassUid: CT_IMAGE_STORAGE, commandField: 0x0001, messageId: 13, hasDataset: true, sopInstanceUid: `${STUDY_UID}.1.2` }), good),
    ]);
    // ct-2 is implicit VR; the context is explicit VR, so its data set is read in the wrong syntax: it fails alone.
    client.send(pipelined);
    const statuses = [];
    for (let i = 0; i < 3; i += 1) statuses.push(responseStatus((await client.nextCommand())!));
    expect(statuses[0]).toBe(0xc000);
    expect(statuses[1]).toBe(0x0000);
    expect(statuses[2]).not.toBe(0x0000);
    await client.release();
  });

  it('negotiates: our maximum PDU length, storage and verification contexts only', async () => {
    const client = await RawDimseClient.connect(t.dicomPort);
    clients.push(client);
    const answer = await client.associate({
      called: 'ANCHORLINE',
      calling: 'RAWSCU',
      maxPduLength: 0,
      contexts: [
        { id: 1, abstractSyntax: CT_IMAGE_STORAGE, transferSyntaxes: ['1.2.3.4.private', EXPLICIT_LE] },
        { id: 3, abstractSyntax: '1.2.840.10008.5.1.4.1.2.2.1', transferSyntaxes: [EXPLICIT_LE] },
        { id: 5, abstractSyntax: CT_IMAGE_STORAGE, transferSyntaxes: ['1.2.3.4.private'] },
      ],
    });
    expect(answer?.type).toBe(0x02);
    expect(announcedMaxPdu(answer!.body)).toBe(MAX_PDU_BYTES);
    // 0 acceptance, 3 abstract syntax not supported (C-FIND), 4 transfer syntaxes not supported.
    expect(Object.fromEntries(contextResults(answer!.body))).toEqual({ 1: 0, 3: 3, 5: 4 });
    await client.release();
  });

  it('aborts a peer that sends a PDU longer than announced', async () => {
    const client = await rawAssociation();
    const huge = datasetOf(readFileSync(fixturePath('ct-1')));
    client.send(message(1, commandSet({ sopClassUid: CT_IMAGE_STORAGE, commandField: 0x0001, messageId: 1, hasDataset: true, sopInstanceUid: '2.25.999.4' }), Buffer.concat([huge, Buffer.alloc(MAX_PDU_BYTES * 2)]), MAX_PDU_BYTES * 2));
    const answer = await client.next();
    expect(answer?.type, 'A-ABORT').toBe(0x07);
    expect(answer!.body[2]).toBe(2);
    expect(await client.waitClosed(5_000)).toBe(true);
  });

  it('closes a connection that requests no association in time, and aborts an idle association', async () => {
    const silent = await RawDimseClient.connect(t.dicomPort);
    clients.push(silent);
    expect(await silent.waitClosed(10_000)).toBe(true);
    const idle = await rawAssociation();
    const answer = await idle.next(20_000);
    expect(answer?.type, 'A-ABORT').toBe(0x07);
    expect(await idle.waitClosed(5_000)).toBe(true);
  });

  it('rejects with the A-ASSOCIATE-RJ reasons of PS3.8 table 9-21', async () => {
    const client = await RawDimseClient.connect(t.dicomPort);
    clients.push(client);
    const answer = await client.associate({ called: 'ANCHORLINE', calling: 'NOBODY', contexts: [{ id: 1, abstractSyntax: VERIFICATION, transferSyntaxes: [EXPLICIT_LE] }] });
    expect(answer?.type).toBe(0x03);
    expect(rejection(answer!.body)).toEqual({ result: 1, source: 1, reason: 3 });
    expect(await client.waitClosed(5_000)).toBe(true);
  });
});

describe('DIMSE shutdown', () => {
  it('aborts open associations and stops listening when the engine closes', async () => {
    const other = await startTestEngine({ overrides: { dicom: { associationIdleTimeoutMs: 60_000 } } });
    try {
      const client = await RawDimseClient.connect(other.dicomPort);
      clients.push(client);
      const answer = await client.associate({ called: 'ANCHORLINE', calling: 'ANYONE', contexts: [{ id: 1, abstractSyntax: VERIFICATION, transferSyntaxes: [EXPLICIT_LE] }] });
      expect(answer?.type, 'any calling AE title is accepted by default').toBe(0x02);
      const closing = other.close();
      const abort = await client.next();
      expect(abort?.type).toBe(0x07);
      expect(abort!.body[2], 'source: service user').toBe(0);
      expect(await client.waitClosed(5_000)).toBe(true);
      await closing;
      expect((await dcmtk('echoscu', ['-to', '2', '-aec', 'ANCHORLINE', '127.0.0.1', String(other.dicomPort)])).code).not.toBe(0);
    } finally {
      await other.destroy();
    }
  });
});

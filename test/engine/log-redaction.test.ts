/**
 * No patient data in the logs. An engine logging at debug level into a capture stream receives messages carrying
 * distinctive invented patient data (names in Latin and Hangul, MRN, birth date, address, phone) over every path:
 * HL7 v2 accepted, mapped, failing mapping, malformed (NAK), unsupported, oversized, in the wrong charset, outside any
 * frame, over MLLP and HTTP; C-CDA accepted, with a DOCTYPE, malformed and oversized; DICOM accepted over DIMSE and
 * STOW-RS, and broken. Not one captured line may contain any planted value.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import iconv from 'iconv-lite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { segment } from '../support/messages.ts';
import { hl7Field, MllpTestClient } from '../support/mllp-client.ts';
import { authHeaders, eventually, startTestEngine, type TestEngine } from '../support/engine.ts';

const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures');

/** The invented patient, as planted; each value must never reach a log line. */
const PATIENT = {
  family: 'Zelmorth',
  given: 'Qxvandra',
  koreanFamily: '왕',
  koreanGiven: '소희',
  mrn: 'PX7731904',
  birthDate: '19470312',
  street: 'Vrellwick Lane',
  phone: '+82-2-913-4417',
};
/** What the log lines are searched for: every value above, and the Korean name whole. */
const PLANTED = [PATIENT.family, PATIENT.given, PATIENT.koreanGiven, `${PATIENT.koreanFamily}${PATIENT.koreanGiven}`, PATIENT.mrn, PATIENT.birthDate, PATIENT.street, PATIENT.phone, '913-4417'];
/** Names the DICOM fixture already carries (ISO 2022 IR 149), which the instances below keep. */
const DICOM_FIXTURE_NAMES = ['홍길동', '길동'];

const lines: string[] = [];
let t: TestEngine;
let workDir: string;

beforeAll(async () => {
  workDir = await mkdtemp(path.join(os.tmpdir(), 'anchorline-log-redaction-'));
  t = await startTestEngine({
    logDestination: { write: (line: string) => void lines.push(line) },
    overrides: { mllp: { maxFrameBytes: 4096 }, cda: { maxBytes: 64 * 1024 }, dicom: { maxInstanceBytes: 1024 * 1024 } },
  });
});
afterAll(async () => {
  await t?.destroy();
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

function hl7(options: { controlId: string; type?: string; charset?: string; pid3?: string; extra?: string[]; msh10?: boolean }): string {
  const msh = segment('MSH', {
    2: '^~\\&',
    3: 'EMR',
    4: 'SNUH',
    5: 'ANCHORLINE',
    6: 'HUB',
    7: '20261121093000',
    9: options.type ?? 'ADT^A01^ADT_A01',
    10: options.msh10 === false ? '' : options.controlId,
    11: 'P',
    12: '2.5.1',
    ...(options.charset ? { 18: options.charset } : {}),
  });
  const pid = segment('PID', {
    1: '1',
    3: options.pid3 ?? `${PATIENT.mrn}^^^SNUH^MR`,
    5: `${PATIENT.family}^${PATIENT.given}~${PATIENT.koreanFamily}^${PATIENT.koreanGiven}`,
    7: PATIENT.birthDate,
    8: 'F',
    11: `4417 ${PATIENT.street}^^Seoul^^04000^KOR`,
    13: `^PRN^PH^^^^^^^^^${PATIENT.phone}`,
  });
  return [msh, segment('EVN', { 1: 'A01', 2: '20261121093000' }), pid, segment('PV1', { 1: '1', 2: 'I', 19: `V-${options.controlId}` }), ...(options.extra ?? [])].join('\r') + '\r';
}

function cdaDocument(id: string, doctype = false): Buffer {
  const xml = readFileSync(path.join(FIXTURES, 'cda', 'korean-discharge-summary.xml'), 'utf8')
    .replace('<family>&#xD64D;</family><given>길동</given>', `<family>${PATIENT.family}</family><given>${PATIENT.given}</given></name><name><family>${PATIENT.koreanFamily}</family><given>${PATIENT.koreanGiven}</given>`)
    .replace('extension="H0012345"', `extension="${PATIENT.mrn}"`)
    .replace('<birthTime value="19700412"/>', `<birthTime value="${PATIENT.birthDate}"/>`)
    .replace('세종대로 110', `4417 ${PATIENT.street}`)
    .replace('tel:+82-2-555-0100', `tel:${PATIENT.phone}`)
    .replace('extension="DS-2024-000123-v2"', `extension="${id}"`);
  for (const value of [PATIENT.family, PATIENT.mrn, PATIENT.birthDate, PATIENT.street, PATIENT.phone, id]) expect(xml).toContain(value);
  return Buffer.from(doctype ? xml.replace('<ClinicalDocument', '<!DOCTYPE ClinicalDocument [ <!ENTITY x "y"> ]>\n<ClinicalDocument') : xml, 'utf8');
}

/** ct-1 with the patient's name, id and birth date replaced by planted values of the same length, and its own UIDs. */
async function dicomInstance(suffix: string): Promise<Buffer> {
  const bytes = await readFile(path.join(FIXTURES, 'dicom', 'ct-1.dcm'));
  const replace = (from: string, to: string): void => {
    expect(to.length).toBe(from.length);
    const at = bytes.indexOf(Buffer.from(from, 'latin1'));
    expect(at).toBeGreaterThanOrEqual(0);
    bytes.write(to, at, 'latin1');
  };
  replace('Hong^Gildong', `${PATIENT.given.slice(0, 3)}^${PATIENT.family}`);
  replace('SEOUL0001', PATIENT.mrn);
  replace('19800101', PATIENT.birthDate);
  // Same-length UIDs, so the instance is new to this engine's store: 2.25.1000000001.1.1 -> 2.25.1000000001.1.<n>
  let at = bytes.indexOf(Buffer.from('2.25.1000000001.1.1', 'latin1'));
  while (at >= 0) {
    bytes.write(`2.25.1000000001.1.${suffix}`, at, 'latin1');
    at = bytes.indexOf(Buffer.from('2.25.1000000001.1.1', 'latin1'), at + 1);
  }
  return bytes;
}

function storescu(file: string): Promise<number | null> {
  return new Promise((resolve) => {
    execFile('storescu', ['-aec', 'ANCHORLINE', '127.0.0.1', String(t.dicomPort), file], { timeout: 30_000 }, (error) => resolve(error ? ((error as { code?: number }).code ?? 1) : 0));
  });
}

function stowBody(parts: Buffer[], boundary: string): Buffer {
  const pieces: Buffer[] = [];
  for (const part of parts) pieces.push(Buffer.from(`--${boundary}\r\nContent-Type: application/dicom\r\n\r\n`), part, Buffer.from('\r\n'));
  pieces.push(Buffer.from(`--${boundary}--\r\n`));
  return Buffer.concat(pieces);
}

function leaks(): Array<{ value: string; line: string }> {
  const found: Array<{ value: string; line: string }> = [];
  for (const line of lines) for (const value of [...PLANTED, ...DICOM_FIXTURE_NAMES]) if (line.includes(value)) found.push({ value, line });
  return found;
}

describe('logs carry no patient data', () => {
  it('on every HL7 v2 path, over MLLP and HTTP', async () => {
    const client = await MllpTestClient.connect(t.mllpPort);
    const answers: Record<string, string> = {};
    answers.accepted = await client.request(hl7({ controlId: 'LR-1' }));
    // A resend of the same control id with other bytes: a conflict.
    answers.conflict = await client.request(hl7({ controlId: 'LR-1', extra: ['NTE|1||changed'] }));
    // Accepted at intake, fails mapping: the patient's only identifier names an authority that cannot be read.
    answers.mappingFailure = await client.request(hl7({ controlId: 'LR-2', pid3: `${PATIENT.mrn}^^^&not-a-uuid&UUID^MR` }));
    // Malformed: no MSH-9.
    answers.malformed = await client.request(hl7({ controlId: 'LR-3', type: '' }));
    // No MSH-10: accepted, keyed by its bytes.
    answers.noControlId = await client.request(hl7({ controlId: 'LR-3b', msh10: false }));
    answers.unsupported = await client.request(hl7({ controlId: 'LR-4', type: 'QBP^Q22' }));
    // The Korean name in EUC-KR, declared as such (accepted), and declared as ASCII (refused: not valid in its charset).
    const euckr = iconv.encode(hl7({ controlId: 'LR-5', charset: 'KS X 1001' }), 'cp949');
    answers.euckr = await client.request(euckr);
    answers.wrongCharset = await client.request(iconv.encode(hl7({ controlId: 'LR-6', charset: 'ASCII' }), 'cp949'));
    // NUL characters.
    answers.nul = await client.request(hl7({ controlId: 'LR-7' }).replace('PV1|', 'PV1|\u0000'));
    // Oversized: over mllp.maxFrameBytes (4096).
    answers.oversized = await client.request(hl7({ controlId: 'LR-8', extra: Array.from({ length: 40 }, (_, i) => `NTE|${i + 1}||${PATIENT.family} ${PATIENT.given} ${PATIENT.mrn} ${PATIENT.phone} ${'x'.repeat(60)}`) }));
    await client.close();
    // Bytes outside any frame, then a frame, on a fresh connection.
    const stray = await MllpTestClient.connect(t.mllpPort);
    stray.writeRaw(Buffer.from(`PID|1||${PATIENT.mrn}|${PATIENT.family}^${PATIENT.given}\r`, 'utf8'));
    answers.stray = await stray.request(hl7({ controlId: 'LR-9' }));
    await stray.close();

    expect(hl7Field(answers.accepted, 'MSA', 1)).toBe('AA');
    expect(hl7Field(answers.conflict, 'MSA', 1)).toBe('AR');
    expect(hl7Field(answers.mappingFailure, 'MSA', 1)).toBe('AA');
    for (const name of ['malformed', 'unsupported', 'wrongCharset', 'nul', 'oversized']) expect(hl7Field(answers[name]!, 'MSA', 1), name).toBe('AR');
    expect(hl7Field(answers.euckr, 'MSA', 1)).toBe('AA');
    expect(hl7Field(answers.noControlId, 'MSA', 1)).toBe('AA');

    const http = (body: string | Buffer): Promise<Response> =>
      fetch(`${t.httpUrl}/ingest/hl7v2`, { method: 'POST', headers: { ...authHeaders(), 'content-type': 'x-application/hl7-v2+er7' }, body });
    expect((await http(hl7({ controlId: 'LR-H1' }))).status).toBe(202);
    expect((await http(hl7({ controlId: 'LR-H2', type: 'QBP^Q22' }))).status).toBeGreaterThanOrEqual(400);
    expect((await http(`${PATIENT.family}^${PATIENT.given}|${PATIENT.mrn}`)).status).toBeGreaterThanOrEqual(400);
    // Without a key: refused before the body is read.
    expect((await fetch(`${t.httpUrl}/ingest/hl7v2`, { method: 'POST', headers: { 'content-type': 'x-application/hl7-v2+er7' }, body: hl7({ controlId: 'LR-H3' }) })).status).toBe(401);

    // Wait until the worker has mapped (and failed) what it was given, so its log lines are in.
    await eventually(async () => {
      const { rows } = await t.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM inbox_message WHERE state = 'queued'`);
      return rows[0]!.n === 0;
    });
    const failed = await t.pool.query(`SELECT error_code FROM inbox_message WHERE control_id = 'LR-2'`);
    expect(failed.rows).toEqual([{ error_code: 'ANCHORLINE_ERR_MAPPING_INVALID_VALUE' }]);
    expect(leaks()).toEqual([]);
  });

  it('on every C-CDA path', async () => {
    const post = (body: Buffer | string): Promise<Response> =>
      fetch(`${t.httpUrl}/ingest/cda`, { method: 'POST', headers: { ...authHeaders(), 'content-type': 'application/xml' }, body });
    expect((await post(cdaDocument('LR-CDA-1'))).status).toBe(202);
    expect((await post(cdaDocument('LR-CDA-2', true))).status).toBeGreaterThanOrEqual(400);
    // Malformed XML quoting the patient.
    expect((await post(`<ClinicalDocument xmlns="urn:hl7-org:v3"><recordTarget><patientRole><patient><name><family>${PATIENT.family}</family></patient></ClinicalDocument>`)).status).toBeGreaterThanOrEqual(400);
    // Over cda.maxBytes (64 KiB).
    const big = cdaDocument('LR-CDA-3').toString('utf8').replace('</ClinicalDocument>', `<!-- ${`${PATIENT.family} ${PATIENT.mrn} `.repeat(4000)} --></ClinicalDocument>`);
    expect((await post(big)).status).toBe(413);
    await eventually(async () => {
      const { rows } = await t.pool.query<{ state: string }>(`SELECT state FROM inbox_message WHERE protocol = 'cda' AND disposition = 'accepted'`);
      return rows.length === 1 && rows[0]!.state !== 'queued';
    });
    expect(leaks()).toEqual([]);
  });

  it('on every DICOM path, over DIMSE and STOW-RS', async () => {
    const dimseFile = path.join(workDir, 'planted-dimse.dcm');
    await writeFile(dimseFile, await dicomInstance('2'));
    expect(await storescu(dimseFile)).toBe(0);

    const boundary = 'log-redaction-boundary';
    const good = await dicomInstance('3');
    const noPrefix = Buffer.from(await dicomInstance('4'));
    noPrefix.write('DICX', 128, 'latin1');
    const truncated = (await dicomInstance('5')).subarray(0, good.indexOf(Buffer.from(PATIENT.family, 'latin1')) + 4);
    const garbage = Buffer.concat([Buffer.alloc(128), Buffer.from('DICM', 'latin1'), Buffer.from(`${PATIENT.family}^${PATIENT.given} ${PATIENT.mrn}`, 'latin1')]);
    const response = await fetch(`${t.httpUrl}/dicomweb/studies`, {
      method: 'POST',
      headers: { ...authHeaders(), 'content-type': `multipart/related; type="application/dicom"; boundary=${boundary}`, accept: 'application/dicom+json' },
      body: stowBody([good, noPrefix, truncated, garbage], boundary),
    });
    expect(response.status).toBe(202);
    // A broken multipart body whose only content is patient data.
    const broken = await fetch(`${t.httpUrl}/dicomweb/studies`, {
      method: 'POST',
      headers: { ...authHeaders(), 'content-type': `multipart/related; type="application/dicom"; boundary=${boundary}` },
      body: `${PATIENT.family}^${PATIENT.given} ${PATIENT.mrn}`,
    });
    expect(broken.status).toBeGreaterThanOrEqual(400);

    await eventually(async () => {
      const { rows } = await t.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM inbox_message WHERE protocol = 'dicom' AND disposition = 'accepted' AND state <> 'queued'`);
      return rows[0]!.n === 2;
    });
    expect(leaks()).toEqual([]);
  });

  it('and the capture saw the engine log at debug level', () => {
    // Guards the test itself: had nothing been logged, nothing could have leaked.
    expect(lines.length).toBeGreaterThan(20);
    const levels = new Set(lines.map((line) => (JSON.parse(line) as { level: number }).level));
    expect(levels.has(20)).toBe(true); // debug
    expect(levels.has(40)).toBe(true); // warn
  });
});

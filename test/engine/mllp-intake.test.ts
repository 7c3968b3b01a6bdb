/**
 * The spine end to end over real sockets: MLLP -> inbox (Postgres) -> queue -> ingest worker -> FHIR REST.
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeMllpFrame } from '../../adapters/mllp/framer.ts';
import { adtMessage, encode } from '../support/messages.ts';
import { hl7Field, MllpTestClient } from '../support/mllp-client.ts';
import { authHeaders, eventually, startTestEngine, type TestEngine } from '../support/engine.ts';
import { blindIndexOf, inbox } from '../../store/index.ts';

const SYSTEM = 'http://snuh.example.org/mrn';

let t: TestEngine;

beforeAll(async () => {
  t = await startTestEngine({ overrides: { mapping: { identifierSystems: { SNUH: SYSTEM } }, mllp: { maxFrameBytes: 64 * 1024 } } });
});
afterAll(async () => {
  await t?.destroy();
});

async function fhir(path: string): Promise<{ status: number; body: Record<string, any> }> {
  const response = await fetch(`${t.httpUrl}${path}`, { headers: authHeaders() });
  return { status: response.status, body: (await response.json()) as Record<string, any> };
}

async function patientByMrn(mrn: string, minVersion = 1): Promise<Record<string, any>> {
  return eventually(async () => {
    const { body } = await fhir(`/fhir/Patient?identifier=${encodeURIComponent(`${SYSTEM}|${mrn}`)}`);
    const resource = body.entry?.[0]?.resource;
    return resource && Number(resource.meta.versionId) >= minVersion ? resource : undefined;
  }, 20_000, `Patient ${mrn}`);
}

/** Inbox rows with their raw bytes as the store's reader opens them (raw is sealed at intake). */
async function inboxRows(where: string, params: unknown[]): Promise<Array<Record<string, any>>> {
  const rows = (await t.pool.query(`SELECT * FROM inbox_message WHERE ${where} ORDER BY id`, params)).rows;
  for (const row of rows) row.raw = (await inbox.getMessage(t.pool, Number(row.id)))!.raw;
  return rows;
}

describe('MLLP intake', () => {
  it('acknowledges a message after commit and maps it into FHIR', async () => {
    const client = await MllpTestClient.connect(t.mllpPort);
    const ack = await client.request(adtMessage({ controlId: 'CTRL-1', mrn: 'M1001', family: 'Park', given: 'Jisoo' }));
    await client.close();
    expect(hl7Field(ack, 'MSA', 1)).toBe('AA');
    expect(hl7Field(ack, 'MSA', 2)).toBe('CTRL-1');
    const ackControlId = hl7Field(ack, 'MSH', 10);
    expect(ackControlId).not.toBe('');
    expect(ackControlId).not.toBe('CTRL-1');
    expect(ackControlId).not.toBe('ACK');
    expect(hl7Field(ack, 'MSH', 9)).toBe('ACK^A01^ACK');
    // The inbox row holds the raw bytes and their hash.
    const [row] = await inboxRows('control_id = $1', ['CTRL-1']);
    expect(row!.disposition).toBe('accepted');
    expect(row!.raw_sha256.toString('hex')).toMatch(/^[0-9a-f]{64}$/);

    const patient = await patientByMrn('M1001');
    expect(patient.name[0]).toMatchObject({ family: 'Park', given: ['Jisoo'] });
    expect(patient.meta.versionId).toBe('1');
    expect(patient.meta.lastUpdated).toMatch(/Z$/);
    const read = await fhir(`/fhir/Patient/${patient.id}`);
    expect(read.status).toBe(200);
    expect(read.body.id).toBe(patient.id);
    const encounters = await fhir(`/fhir/Encounter?subject=Patient/${patient.id}`);
    expect(encounters.body.total).toBe(1);
    expect(encounters.body.entry[0].resource.subject.reference).toBe(`Patient/${patient.id}`);
    await eventually(async () => (await inboxRows('control_id = $1', ['CTRL-1']))[0]!.state === 'done', 10_000, 'state done');
  });

  it('answers a duplicate resend with the stored ACK and applies it once', async () => {
    const message = adtMessage({ controlId: 'DUP-1', mrn: 'M2001' });
    const client = await MllpTestClient.connect(t.mllpPort);
    const first = await client.request(message);
    await patientByMrn('M2001');
    const second = await client.request(message);
    await client.close();
    expect(second).toBe(first);
    expect(await inboxRows('control_id = $1', ['DUP-1'])).toHaveLength(1);
    const patient = await patientByMrn('M2001');
    const history = await fhir(`/fhir/Patient/${patient.id}/_history`);
    expect(history.body.total).toBe(1);
  });

  it('rejects a reused control id with different bytes and keeps it for review', async () => {
    const client = await MllpTestClient.connect(t.mllpPort);
    const ok = await client.request(adtMessage({ controlId: 'REUSE-1', mrn: 'M3001' }));
    const clash = await client.request(adtMessage({ controlId: 'REUSE-1', mrn: 'M3002' }));
    await client.close();
    expect(hl7Field(ok, 'MSA', 1)).toBe('AA');
    expect(hl7Field(clash, 'MSA', 1)).toBe('AR');
    expect(hl7Field(clash, 'MSA', 2)).toBe('REUSE-1');
    expect(clash).toContain('ANCHORLINE_ERR_DUPLICATE_CONTROL_ID');
    expect(hl7Field(clash, 'ERR', 3)).toMatch(/^205\^/);
    const rows = await inboxRows('control_id = $1', ['REUSE-1']);
    expect(rows.map((r) => r.disposition)).toEqual(['accepted', 'conflict']);
    expect(rows[1]!.raw.toString()).toContain('M3002');
  });

  it('accepts a message sent without MSH-10, keyed by its bytes: a resend is one message, another message is another', async () => {
    const message = adtMessage({ controlId: '', mrn: 'M4001', family: 'Seo' });
    const other = adtMessage({ controlId: '', mrn: 'M4011', family: 'Yoon' });
    const client = await MllpTestClient.connect(t.mllpPort);
    const first = await client.request(message);
    expect(hl7Field(first, 'MSA', 1)).toBe('AA');
    // MSA-2 echoes MSH-10 as sent: empty.
    expect(hl7Field(first, 'MSA', 2)).toBe('');
    const second = await client.request(message);
    expect(second).toBe(first);
    expect(hl7Field(await client.request(other), 'MSA', 1)).toBe('AA');
    await client.close();
    const sha = (text: string): string => createHash('sha256').update(Buffer.from(text, 'utf8')).digest('hex');
    // Its control id is a keyed digest of the bytes, not their plain hash (which an erasure would leave behind).
    const index = await blindIndexOf(t.pool);
    const controlIdOf = (text: string): string => index.contentControlId(Buffer.from(sha(text), 'hex'));
    expect(controlIdOf(message)).toMatch(/^content:[0-9a-f]{64}$/);
    expect(controlIdOf(message)).not.toContain(sha(message));
    const rows = await inboxRows('control_id = ANY($1)', [[controlIdOf(message), controlIdOf(other)]]);
    expect(rows.map((r) => r.disposition)).toEqual(['accepted', 'accepted']);
    expect(rows[0]!.raw_sha256.toString('hex')).toBe(sha(message));
    expect((await patientByMrn('M4001')).name[0].family).toBe('Seo');
    expect((await patientByMrn('M4011')).name[0].family).toBe('Yoon');
    const mapped = await eventually(async () => {
      const [row] = await inboxRows('control_id = $1', [controlIdOf(message)]);
      return row?.state === 'done' ? row : undefined;
    }, 10_000, 'mapped');
    expect(mapped.mapping_issues.map((issue: { code: string; location: string }) => `${issue.code}@${issue.location}`)).toContain('ANCHORLINE_ISSUE_MISSING_FIELD@MSH-10');
  });

  it('answers malformed frames with coded NAKs and keeps the connection usable', async () => {
    const client = await MllpTestClient.connect(t.mllpPort);
    const noMsh = await client.request('PID|1||X\r');
    expect(hl7Field(noMsh, 'MSA', 1)).toBe('AR');
    expect(noMsh).toContain('ANCHORLINE_ERR_HL7_NO_MSH');

    const badDelimiters = await client.request('MSH|^|EMR|X\r');
    expect(badDelimiters).toContain('ANCHORLINE_ERR_HL7_BAD_DELIMITERS');

    const unsupported = await client.request(adtMessage({ controlId: 'UNSUP-1', mrn: 'M4002' }).replace('ADT^A01^ADT_A01', 'QBP^Q22'));
    expect(hl7Field(unsupported, 'MSA', 1)).toBe('AR');
    expect(unsupported).toContain('ANCHORLINE_ERR_HL7_NOT_DATA_MESSAGE');

    // Oversized (the listener's cap is 64 KiB here): NAK naming the control id, then the next message still works.
    const huge = adtMessage({ controlId: 'BIG-1', mrn: 'M4003' }) + `NTE|1||${'x'.repeat(100 * 1024)}\r`;
    const tooLarge = await client.request(huge);
    expect(hl7Field(tooLarge, 'MSA', 1)).toBe('AR');
    expect(hl7Field(tooLarge, 'MSA', 2)).toBe('BIG-1');
    expect(tooLarge).toContain('ANCHORLINE_ERR_FRAME_TOO_LARGE');
    const after = await client.request(adtMessage({ controlId: 'AFTER-BIG', mrn: 'M4004' }));
    expect(hl7Field(after, 'MSA', 1)).toBe('AA');
    await client.close();

    const rejected = await inboxRows(`disposition = 'rejected'`, []);
    const codes = rejected.map((r) => r.error_code);
    expect(codes).toEqual(expect.arrayContaining(['ANCHORLINE_ERR_HL7_NO_MSH', 'ANCHORLINE_ERR_HL7_BAD_DELIMITERS', 'ANCHORLINE_ERR_FRAME_TOO_LARGE', 'ANCHORLINE_ERR_HL7_NOT_DATA_MESSAGE']));
    const big = rejected.find((r) => r.error_code === 'ANCHORLINE_ERR_FRAME_TOO_LARGE')!;
    expect(big.raw_size).toBeGreaterThan(100 * 1024);
    expect(big.raw_truncated).toBe(true);
  });

  it('handles a message delivered one byte at a time', async () => {
    const client = await MllpTestClient.connect(t.mllpPort);
    const frame = encodeMllpFrame(Buffer.from(adtMessage({ controlId: 'BYTE-1', mrn: 'M5001' })));
    for (const byte of frame) {
      client.writeRaw(Buffer.from([byte]));
      await new Promise((r) => setImmediate(r));
    }
    const ack = (await client.nextAck()).toString('latin1');
    await client.close();
    expect(hl7Field(ack, 'MSA', 2)).toBe('BYTE-1');
    expect(hl7Field(ack, 'MSA', 1)).toBe('AA');
  });

  it('answers three messages in one chunk with three ACKs in order', async () => {
    const client = await MllpTestClient.connect(t.mllpPort);
    const chunk = Buffer.concat(['TRIO-1', 'TRIO-2', 'TRIO-3'].map((id, i) => encodeMllpFrame(Buffer.from(adtMessage({ controlId: id, mrn: `M600${i}` })))));
    client.writeRaw(chunk);
    const acks = [await client.nextAck(), await client.nextAck(), await client.nextAck()].map((b) => b.toString('latin1'));
    await client.close();
    expect(acks.map((a) => hl7Field(a, 'MSA', 2))).toEqual(['TRIO-1', 'TRIO-2', 'TRIO-3']);
    expect(acks.every((a) => hl7Field(a, 'MSA', 1) === 'AA')).toBe(true);
    for (const i of [0, 1, 2]) await patientByMrn(`M600${i}`);
  });

  it('decodes an EUC-KR message by MSH-18 and stores the Korean name intact', async () => {
    for (const [charset, mrn, controlId] of [['KS X 1001', 'M7001', 'KR-1'], ['EUC-KR', 'M7002', 'KR-2']] as const) {
      const text = adtMessage({ controlId, mrn, family: '홍', given: '길동', charset });
      const bytes = encode(text, 'euc-kr');
      expect(bytes.includes(Buffer.from('홍', 'utf8'))).toBe(false);
      const client = await MllpTestClient.connect(t.mllpPort);
      const ack = await client.request(bytes);
      await client.close();
      expect(hl7Field(ack, 'MSA', 1)).toBe('AA');
      const patient = await patientByMrn(mrn);
      expect(patient.name[0].family).toBe('홍');
      expect(patient.name[0].given).toEqual(['길동']);
      const byName = await fhir(`/fhir/Patient?name=${encodeURIComponent('홍길동')}`);
      expect(byName.body.entry.map((e: any) => e.resource.id)).toContain(patient.id);
    }
  });

  it('rejects bytes that lie about their charset and keeps them', async () => {
    const bytes = encode(adtMessage({ controlId: 'LIAR-1', mrn: 'M7101', family: '홍', given: '길동', charset: 'UNICODE UTF-8' }), 'euc-kr');
    const client = await MllpTestClient.connect(t.mllpPort);
    const ack = await client.request(bytes);
    await client.close();
    expect(hl7Field(ack, 'MSA', 1)).toBe('AR');
    expect(ack).toContain('ANCHORLINE_ERR_CHARSET_MISMATCH');
    const [row] = await inboxRows('control_id = $1', ['LIAR-1']);
    expect(row!.disposition).toBe('rejected');
    expect(Buffer.compare(row!.raw, bytes)).toBe(0);
  });

  it('acknowledges enhanced-mode messages with CA', async () => {
    const client = await MllpTestClient.connect(t.mllpPort);
    const ack = await client.request(adtMessage({ controlId: 'ENH-1', mrn: 'M8001', enhanced: true }));
    await client.close();
    expect(hl7Field(ack, 'MSA', 1)).toBe('CA');
  });

  it('turns an A08 update into a new version of the same Patient', async () => {
    const client = await MllpTestClient.connect(t.mllpPort);
    await client.request(adtMessage({ event: 'A04', controlId: 'UPD-1', mrn: 'M9001', family: 'Lee', given: 'Mina' }));
    const v1 = await patientByMrn('M9001');
    await client.request(adtMessage({ event: 'A08', controlId: 'UPD-2', mrn: 'M9001', family: 'Lee', given: 'Minah' }));
    await client.close();
    const v2 = await patientByMrn('M9001', 2);
    expect(v2.id).toBe(v1.id);
    expect(v2.name[0].given).toEqual(['Minah']);
    const old = await fhir(`/fhir/Patient/${v1.id}/_history/1`);
    expect(old.body.name[0].given).toEqual(['Mina']);
    const history = await fhir(`/fhir/Patient/${v1.id}/_history`);
    expect(history.body.total).toBe(2);
  });

  it('gives the same MRN from two facilities two different patients', async () => {
    const client = await MllpTestClient.connect(t.mllpPort);
    await client.request(adtMessage({ controlId: 'FAC-A', mrn: 'SAME-1', facility: 'HOSP_A', family: 'Alpha' }));
    await client.request(adtMessage({ controlId: 'FAC-B', mrn: 'SAME-1', facility: 'HOSP_B', family: 'Beta' }));
    await client.close();
    const found = await eventually(async () => {
      const { body } = await fhir('/fhir/Patient?identifier=SAME-1');
      return body.total === 2 ? body : undefined;
    });
    const families = found.entry.map((e: any) => e.resource.name[0].family).sort();
    expect(families).toEqual(['Alpha', 'Beta']);
    expect(found.entry[0].resource.id).not.toBe(found.entry[1].resource.id);
  });

  it('answers AE/CE when the commit fails, so the sender resends, and the resend is stored once', async () => {
    const client = await MllpTestClient.connect(t.mllpPort);
    // Make every intake commit fail: the inbox table is briefly not where the engine expects it.
    await t.pool.query('ALTER TABLE inbox_message RENAME TO inbox_message_away');
    let original: string;
    let enhanced: string;
    try {
      original = await client.request(adtMessage({ controlId: 'DOWN-1', mrn: 'D1' }));
      enhanced = await client.request(adtMessage({ controlId: 'DOWN-2', mrn: 'D2', enhanced: true }));
    } finally {
      await t.pool.query('ALTER TABLE inbox_message_away RENAME TO inbox_message');
    }
    expect(hl7Field(original, 'MSA', 1)).toBe('AE');
    expect(original).toContain('ANCHORLINE_ERR_STORE_UNAVAILABLE');
    expect(hl7Field(enhanced, 'MSA', 1)).toBe('CE');
    expect(await inboxRows('control_id = ANY($1)', [['DOWN-1', 'DOWN-2']])).toHaveLength(0);

    const resent = await client.request(adtMessage({ controlId: 'DOWN-1', mrn: 'D1' }));
    await client.close();
    expect(hl7Field(resent, 'MSA', 1)).toBe('AA');
    expect(await inboxRows('control_id = $1', ['DOWN-1'])).toHaveLength(1);
    await patientByMrn('D1');
  });
});

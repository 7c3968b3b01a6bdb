/**
 * HL7 v2 batches end to end (FHS/BHS ... BTS/FTS): a public laboratory batch file posted to /ingest/hl7v2 and sent
 * as one MLLP frame is taken message by message, each stored, mapped and answered as if sent alone; the answer is the
 * batch of their ACKs; a resent batch changes nothing; a broken message costs itself only.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MllpTestClient } from '../support/mllp-client.ts';
import { authHeaders, eventually, startTestEngine, type TestEngine } from '../support/engine.ts';

const ROOT = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'hl7v2-batch');
const PDI = readFileSync(path.join(ROOT, 'reportstream-sample-batch-pdi-20210608-0001.hl7'));
const LF_BATCH = readFileSync(path.join(ROOT, 'reportstream-batch_message.hl7'));

let t: TestEngine;

beforeAll(async () => {
  // The 20-message batch is at the cap; one more message is over it.
  t = await startTestEngine({ overrides: { hl7v2: { maxBatchMessages: 20 } } });
});
afterAll(async () => {
  await t?.destroy();
});

function post(body: Buffer | string, json = false): Promise<Response> {
  return fetch(`${t.httpUrl}/ingest/hl7v2`, { method: 'POST', headers: { ...authHeaders(), 'content-type': 'x-application/hl7-v2+er7', ...(json ? { accept: 'application/json' } : {}) }, body });
}

const segments = (ack: string): string[] => ack.split(/\r/).filter((segment) => segment !== '');
const names = (ack: string): string[] => segments(ack).map((segment) => segment.slice(0, 3));
const msaCodes = (ack: string): string[] => segments(ack).filter((segment) => segment.startsWith('MSA|')).map((segment) => segment.split('|')[1]!);

describe('HL7 v2 batches', () => {
  it('takes a 20-message laboratory batch over HTTP as 20 messages, answers with the batch of their ACKs, and maps each', async () => {
    const response = await post(PDI);
    expect(response.status).toBe(202);
    expect(response.headers.get('x-anchorline-outcome')).toBe('batch');
    const ack = await response.text();
    expect(names(ack).slice(0, 2)).toEqual(['FHS', 'BHS']);
    expect(names(ack).slice(-2)).toEqual(['BTS', 'FTS']);
    // The messages ask for enhanced-mode acknowledgment (MSH-15): CA once committed.
    expect(msaCodes(ack)).toEqual(Array(20).fill('CA'));
    expect(segments(ack).find((segment) => segment.startsWith('BTS|'))).toBe('BTS|20');
    const { rows } = await t.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM inbox_message WHERE protocol = 'hl7v2-http' AND message_type LIKE 'ORU%'`);
    expect(rows[0]!.n).toBe(20);
    // Each is mapped as a message sent alone: 20 DiagnosticReports.
    await eventually(async () => (await t.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM inbox_message WHERE message_type LIKE 'ORU%' AND state = 'done'`)).rows[0]!.n === 20, 60_000, 'the 20 messages mapped');
    const reports = (await (await fetch(`${t.httpUrl}/fhir/DiagnosticReport?_summary=count`, { headers: authHeaders() })).json()) as { total: number };
    expect(reports.total).toBe(20);
  });

  it('answers the same batch sent again with the stored ACKs and no second effect (200)', async () => {
    const response = await post(PDI, true);
    expect(response.status).toBe(200);
    const body = (await response.json()) as { outcome: string; messages: Array<{ outcome: string }> };
    expect(body.outcome).toBe('batch');
    expect(body.messages.map((message) => message.outcome)).toEqual(Array(20).fill('duplicate'));
    expect((await t.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM inbox_message WHERE message_type LIKE 'ORU%'`)).rows[0]!.n).toBe(20);
  });

  it('takes a batch with LF line ends as one MLLP frame, and a broken message costs itself only', async () => {
    // The second message's MSH-9 removed: that message is refused, the first is stored; the count says 2 arrived of 3.
    const text = LF_BATCH.toString('latin1');
    const second = text.indexOf('MSH|', text.indexOf('MSH|') + 4);
    const broken = text.slice(0, second) + text.slice(second).replace(/^((?:[^|\n]*\|){8})[^|\n]*/, '$1') .replace(/^BTS\|2/m, 'BTS|3');
    const client = await MllpTestClient.connect(t.mllpPort);
    const ack = await client.request(broken);
    await client.close();
    expect(names(ack)[0]).toBe('FHS');
    expect(msaCodes(ack)).toEqual(['CA', 'AR']);
    expect(ack).toContain('ANCHORLINE_ERR_HL7_MISSING_MESSAGE_TYPE');
    expect(segments(ack).find((segment) => segment.startsWith('BTS|'))).toBe('BTS|2|BTS-1 declared 3 messages; 2 arrived');
    const { rows } = await t.pool.query<{ disposition: string }>(`SELECT disposition FROM inbox_message WHERE protocol = 'hl7v2-mllp' ORDER BY id`);
    expect(rows.map((row) => row.disposition)).toEqual(['accepted', 'rejected']);
  });

  it('takes messages posted one after another without batch segments as that many messages, not as one', async () => {
    const message = (id: string, mrn: string) => `MSH|^~\\&|LAB|HOSP|||20240101||ADT^A08^ADT_A01|${id}|P|2.5.1\nPID|1||${mrn}^^^HOSP^MR||Doe^${id}\n`;
    const response = await post(message('SEQ-1', 'SEQ100') + message('SEQ-2', 'SEQ200'), true);
    expect(response.status).toBe(202);
    const body = (await response.json()) as { messages: Array<{ outcome: string; ackCode: string }>; ack: string };
    expect(body.messages.map((m) => [m.outcome, m.ackCode])).toEqual([['stored', 'AA'], ['stored', 'AA']]);
    expect(names(body.ack)).toEqual(['BHS', 'MSH', 'MSA', 'MSH', 'MSA', 'BTS']);
    for (const mrn of ['SEQ100', 'SEQ200']) {
      await eventually(async () => ((await (await fetch(`${t.httpUrl}/fhir/Patient?identifier=${mrn}`, { headers: authHeaders() })).json()) as { total?: number }).total === 1, 30_000, `patient ${mrn}`);
    }
  });

  it('refuses whole a batch of more messages than hl7v2.maxBatchMessages, storing none of them, and keeps it as a rejected row', async () => {
    const message = (n: number) => `MSH|^~\\&|LAB|HOSP|||20240101||ADT^A08^ADT_A01|CAP-${n}|P|2.5.1\rPID|1||CAP${n}^^^HOSP^MR||Doe^Cap\r`;
    const batch = `BHS|^~\\&|LAB|HOSP\r${Array.from({ length: 21 }, (_, n) => message(n)).join('')}BTS|21\r`;
    const response = await post(batch, true);
    expect(response.status).toBe(400);
    const body = (await response.json()) as { messages: Array<{ outcome: string; errorCode: string; messageId: number }> };
    expect(body.messages).toEqual([expect.objectContaining({ outcome: 'rejected', errorCode: 'ANCHORLINE_ERR_HL7_TOO_COMPLEX' })]);
    expect((await t.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM inbox_message WHERE control_id LIKE 'CAP-%'`)).rows[0]!.n).toBe(0);
    const row = (await t.pool.query(`SELECT disposition, error_code, raw_size FROM inbox_message WHERE id = $1`, [body.messages[0]!.messageId])).rows[0];
    expect(row).toEqual({ disposition: 'rejected', error_code: 'ANCHORLINE_ERR_HL7_TOO_COMPLEX', raw_size: Buffer.byteLength(batch) });
  });
});

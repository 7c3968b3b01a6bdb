/** ackMode afterMapping: original-mode messages are acknowledged once mapped, with AE when mapping fails. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adtMessage } from '../support/messages.ts';
import { hl7Field, MllpTestClient } from '../support/mllp-client.ts';
import { authHeaders, startTestEngine, type TestEngine } from '../support/engine.ts';

let t: TestEngine;
beforeAll(async () => {
  t = await startTestEngine({ overrides: { mllp: { ackMode: 'afterMapping', ackTimeoutMs: 10_000 } } });
});
afterAll(async () => {
  await t?.destroy();
});

describe('ACK after mapping', () => {
  it('answers AA only when the resources are in FHIR', async () => {
    const client = await MllpTestClient.connect(t.mllpPort);
    const ack = await client.request(adtMessage({ controlId: 'AM-1', mrn: 'AM100' }));
    await client.close();
    expect(hl7Field(ack, 'MSA', 1)).toBe('AA');
    expect(hl7Field(ack, 'MSA', 2)).toBe('AM-1');
    // No polling: the ACK promised the mapping is done.
    const response = await fetch(`${t.httpUrl}/fhir/Patient?identifier=AM100`, { headers: authHeaders() });
    expect(((await response.json()) as any).total).toBe(1);
  });

  it('answers AE with the mapping error, stores it, and gives a resend the same answer', async () => {
    const broken = adtMessage({ controlId: 'AM-2', mrn: 'AM200' }).replace('ADT^A01^ADT_A01', 'ADT^A40^ADT_A39');
    const client = await MllpTestClient.connect(t.mllpPort);
    const ack = await client.request(broken);
    const again = await client.request(broken);
    await client.close();
    expect(hl7Field(ack, 'MSA', 1)).toBe('AE');
    expect(ack).toContain('ANCHORLINE_ERR_MAPPING_MISSING_FIELD');
    expect(again).toBe(ack);
    const { rows } = await t.pool.query(`SELECT state, error_code FROM inbox_message WHERE control_id = 'AM-2'`);
    expect(rows).toEqual([{ state: 'failed', error_code: 'ANCHORLINE_ERR_MAPPING_MISSING_FIELD' }]);
  });

  it('answers AA with ERR segments of severity W for what was not mapped as sent, and records the issues', async () => {
    const client = await MllpTestClient.connect(t.mllpPort);
    const ack = await client.request(adtMessage({ controlId: 'AM-4', mrn: 'AM400', gender: 'X', birthDate: 'notadate' }));
    await client.close();
    expect(hl7Field(ack, 'MSA', 1)).toBe('AA');
    const errs = ack.split('\r').filter((segment) => segment.startsWith('ERR|'));
    expect(errs.map((err) => [err.split('|')[2], err.split('|')[4], err.split('|')[5]?.split('^')[0]])).toEqual([
      ['PID^1^8', 'W', 'ANCHORLINE_ISSUE_CODE_NOT_IN_TABLE'],
      ['PID^1^7', 'W', 'ANCHORLINE_ISSUE_INVALID_VALUE'],
    ]);
    // The values as sent are kept with the message, never echoed to the sender.
    expect(ack).not.toContain('notadate');
    const patient = ((await (await fetch(`${t.httpUrl}/fhir/Patient?identifier=AM400`, { headers: authHeaders() })).json()) as any).entry[0].resource;
    expect(patient.gender).toBe('unknown');
    expect(patient.birthDate).toBeUndefined();
    const { rows } = await t.pool.query(`SELECT id, state, mapping_warnings FROM inbox_message WHERE control_id = 'AM-4'`);
    expect(rows).toEqual([expect.objectContaining({ state: 'done', mapping_warnings: 2 })]);
    const detail = (await (await fetch(`${t.httpUrl}/admin/messages/${rows[0].id}`, { headers: authHeaders() })).json()) as any;
    expect(detail.mappingIssues.map((i: any) => [i.code, i.location, i.value])).toEqual([
      ['ANCHORLINE_ISSUE_CODE_NOT_IN_TABLE', 'PID-8', 'X'],
      ['ANCHORLINE_ISSUE_INVALID_VALUE', 'PID-7', 'notadate'],
    ]);
    const warned = (await (await fetch(`${t.httpUrl}/admin/messages?warnings=true`, { headers: authHeaders() })).json()) as any;
    expect(warned.messages.map((m: any) => m.controlId)).toEqual(['AM-4']);
    const metrics = await (await fetch(`${t.httpUrl}/metrics`, { headers: authHeaders() })).text();
    expect(metrics).toMatch(/anchorline_mapping_issues_total\{code="ANCHORLINE_ISSUE_INVALID_VALUE"\} 1/);
  });

  it('still accepts enhanced-mode messages on commit', async () => {
    const client = await MllpTestClient.connect(t.mllpPort);
    const ack = await client.request(adtMessage({ controlId: 'AM-3', mrn: 'AM300', enhanced: true }));
    await client.close();
    expect(hl7Field(ack, 'MSA', 1)).toBe('CA');
  });
});

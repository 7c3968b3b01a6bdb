/**
 * Bounded HL7 v2 parsing end to end: a message whose structure passes a cap of `hl7v2` is refused at intake, over
 * MLLP and over HTTP, before anything is acknowledged (AR/CR, MSA-2 its control id, ERR with
 * ANCHORLINE_ERR_HL7_TOO_COMPLEX) and kept as a rejected row; the configured caps are the ones the intake applies and
 * the worker parses with; and a NUL sent as \X00\ maps once, with an issue, instead of failing at the store.
 */
import { describe, expect, it } from 'vitest';
import { hostileText } from '../support/hl7v2-hostile.ts';
import { hl7Field, MllpTestClient } from '../support/mllp-client.ts';
import { authHeaders, eventually, type TestEngine, withEngineAndClient } from '../support/engine.ts';
import { resources } from '../../store/index.ts';

const SYSTEM = 'http://snuh.example.org/mrn';
const CODE = 'ANCHORLINE_ERR_HL7_TOO_COMPLEX';

let t: TestEngine;
let client: MllpTestClient;

// One cap lowered, to see that the configured value (not only the default) reaches the intake and the worker.
withEngineAndClient({ overrides: { hl7v2: { maxRepetitionsPerField: 50 }, mapping: { identifierSystems: { SNUH: SYSTEM } } } }, (engine, mllp) => {
  t = engine;
  client = mllp;
});

function msh(controlId: string, enhanced = false): string {
  return `MSH|^~\\&|EMR|SNUH|ANCHORLINE|HUB|20261121093000||ADT^A08^ADT_A01|${controlId}|P|2.5.1${enhanced ? '|||AL|NE' : ''}\r`;
}

/** A hostile shape with its MSH replaced by one carrying `controlId`. */
function hostile(shape: string, size: number, controlId: string, enhanced = false): string {
  const text = hostileText(shape, size);
  return msh(controlId, enhanced) + text.slice(text.indexOf('\r') + 1);
}

async function row(controlId: string): Promise<Record<string, any>> {
  return eventually(async () => (await t.pool.query('SELECT disposition, state, error_code, ack_code, raw_size FROM inbox_message WHERE control_id = $1', [controlId])).rows[0], 10_000, `row ${controlId}`);
}

describe('HL7 v2 structure limits at intake', () => {
  it('refuses the hostile shapes over MLLP with AR, MSA-2 the control id, a coded ERR, and a rejected row', async () => {
    const cases: Array<[string, number]> = [['tilde', 4 * 1024 * 1024], ['caret', 1024 * 1024], ['ampersand', 1024 * 1024], ['pipe', 1024 * 1024], ['short-segments', 1024 * 1024], ['pid3-repetitions', 2 * 1024 * 1024]];
    for (const [shape, size] of cases) {
      const controlId = `HOSTILE-${shape}`;
      const ack = await client.request(hostile(shape, size, controlId));
      expect(hl7Field(ack, 'MSA', 1), shape).toBe('AR');
      expect(hl7Field(ack, 'MSA', 2), shape).toBe(controlId);
      expect(ack, shape).toContain(CODE);
      expect(await row(controlId), shape).toMatchObject({ disposition: 'rejected', error_code: CODE, ack_code: 'AR' });
    }
    // The connection and the engine keep serving.
    const ok = await client.request(`${msh('AFTER-HOSTILE')}PID|1||M500^^^SNUH^MR||Doe^Jane\r`);
    expect(hl7Field(ok, 'MSA', 1)).toBe('AA');
  });

  it('answers CR in enhanced mode', async () => {
    const ack = await client.request(hostile('caret', 1024 * 1024, 'HOSTILE-ENHANCED', true));
    expect(hl7Field(ack, 'MSA', 1)).toBe('CR');
    expect(hl7Field(ack, 'MSA', 2)).toBe('HOSTILE-ENHANCED');
    expect(await row('HOSTILE-ENHANCED')).toMatchObject({ disposition: 'rejected', error_code: CODE, ack_code: 'CR' });
  });

  it('refuses over POST /ingest/hl7v2 too', async () => {
    const response = await fetch(`${t.httpUrl}/ingest/hl7v2`, {
      method: 'POST',
      headers: { ...authHeaders(), 'content-type': 'x-application/hl7-v2+er7' },
      body: hostile('tilde', 2 * 1024 * 1024, 'HOSTILE-HTTP'),
    });
    expect(response.status).toBe(400);
    expect(response.headers.get('x-anchorline-error')).toBe(CODE);
    const ack = Buffer.from(await response.arrayBuffer()).toString('latin1');
    expect(hl7Field(ack, 'MSA', 1)).toBe('AR');
    expect(hl7Field(ack, 'MSA', 2)).toBe('HOSTILE-HTTP');
    expect(await row('HOSTILE-HTTP')).toMatchObject({ disposition: 'rejected', error_code: CODE });
  });

  it('refuses 100k PID-3 repetitions with the coded error, never a RangeError or a retryable answer', async () => {
    const pid3 = Array.from({ length: 100_000 }, (_, i) => `M${i}^^^SNUH^MR`).join('~');
    const ack = await client.request(`${msh('PID3-100K')}PID|1||${pid3}||Doe^Jane\r`);
    expect(hl7Field(ack, 'MSA', 1)).toBe('AR');
    expect(ack).toContain(CODE);
    expect(await row('PID3-100K')).toMatchObject({ disposition: 'rejected', error_code: CODE });
  });

  it('applies the configured cap: 50 PID-3 repetitions are accepted and mapped, 51 refused', async () => {
    const identifiers = (n: number): string => Array.from({ length: n }, (_, i) => `CAP${i}^^^SNUH^MR`).join('~');
    const accepted = await client.request(`${msh('CAP-50')}PID|1||${identifiers(50)}||Doe^Jane\r`);
    expect(hl7Field(accepted, 'MSA', 1)).toBe('AA');
    const patient = await eventually(async () => {
      const response = await fetch(`${t.httpUrl}/fhir/Patient?identifier=${encodeURIComponent(`${SYSTEM}|CAP0`)}`, { headers: authHeaders() });
      return ((await response.json()) as { entry?: Array<{ resource: Record<string, any> }> }).entry?.[0]?.resource;
    }, 20_000, 'Patient CAP0');
    expect(patient.identifier.filter((identifier: { system?: string }) => identifier.system === SYSTEM)).toHaveLength(50);
    expect(await row('CAP-50')).toMatchObject({ disposition: 'accepted', state: 'done' });

    const refused = await client.request(`${msh('CAP-51')}PID|1||${identifiers(51)}||Doe^Jane\r`);
    expect(hl7Field(refused, 'MSA', 1)).toBe('AR');
    expect(await row('CAP-51')).toMatchObject({ disposition: 'rejected', error_code: CODE });
  });
});

describe('NUL in a value', () => {
  it('is removed with an issue: the message maps once, and is neither failed nor retried', async () => {
    const message = [
      'MSH|^~\\&|LIS|SNUH|ANCHORLINE|HUB|20261121093000||ORU^R01^ORU_R01|NUL-1|P|2.5.1',
      'PID|1||NUL100^^^SNUH^MR||Ki\\X00\\m^Min\\X00\\su||19800101|M',
      'OBR|1|ORD-NUL-1|FIL-NUL-1|GLU^Glucose^L|||20261121090000',
      'OBX|1|NM|GLU\\X00\\^Glu\\X00\\cose^L||5.4|mmol/L|||||F',
    ].join('\r') + '\r';
    const ack = await client.request(message);
    expect(hl7Field(ack, 'MSA', 1)).toBe('AA');
    const done = await eventually(async () => {
      const found = (await t.pool.query(`SELECT state, error_code, mapping_issues FROM inbox_message WHERE control_id = 'NUL-1'`)).rows[0];
      return found && found.state !== 'queued' ? found : undefined;
    }, 20_000, 'NUL-1 mapped');
    expect(done.state).toBe('done');
    expect(done.error_code).toBeNull();
    const locations = (done.mapping_issues as Array<{ code: string; location: string }>).filter((issue) => issue.code === 'ANCHORLINE_ISSUE_INVALID_VALUE').map((issue) => issue.location);
    expect(locations).toEqual(expect.arrayContaining(['PID[1]-5', 'OBX[1]-3']));

    const response = await fetch(`${t.httpUrl}/fhir/Patient?identifier=${encodeURIComponent(`${SYSTEM}|NUL100`)}`, { headers: authHeaders() });
    const patient = ((await response.json()) as { entry: Array<{ resource: Record<string, any> }> }).entry[0]!.resource;
    expect(patient.name[0]).toMatchObject({ family: 'Kim', given: ['Minsu'] });
    expect(patient.meta.versionId).toBe('1');
    // Read through the store: the Observations are sealed under the patient's key.
    const observations = [];
    for (const { id } of (await t.pool.query<{ id: string }>(`SELECT id FROM fhir_resource WHERE resource_type = 'Observation'`)).rows) {
      const content = (await resources.readCurrent(t.pool, 'Observation', id))!.content;
      if (JSON.stringify(content).includes('GLU')) observations.push(content);
    }
    expect(observations.length).toBeGreaterThan(0);
    expect(JSON.stringify(observations)).not.toContain('\\u0000');
  });
});

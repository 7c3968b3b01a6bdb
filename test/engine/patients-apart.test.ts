/**
 * One patient's record never becomes another's. Senders reuse ids across patients (a lab's filler order number, a
 * C-CDA entry id copied from a vendor template): a message for a second patient that names an existing resource of
 * the first gets a resource of its own, with a warning, and the first patient's record keeps its versions. Checked
 * through a real engine in both orders, in one batch, and for C-CDA documents; and the store itself refuses a
 * version that moves a resource to another patient unless a merge made it.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { describe, expect, it } from 'vitest';

import { segment } from '../support/messages.ts';
import { MllpTestClient, hl7Field } from '../support/mllp-client.ts';
import { authHeaders, eventually, startTestEngine, type TestEngine, withEngineAndClient } from '../support/engine.ts';
import { uniqueName } from '../support/db.ts';
import { startTestRedis } from '../support/redis.ts';
import { compartment, resources } from '../../store/index.ts';
import { AnchorlineError } from '../../errors/index.ts';

const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'cda');

let t: TestEngine;
let client: MllpTestClient;

withEngineAndClient({ overrides: { cda: { maxBytes: 200_000, maxDepth: 200 } } }, (engine, mllp) => {
  t = engine;
  client = mllp;
});

function oru(controlId: string, mrn: string, family: string, filler: string): string {
  return [
    segment('MSH', { 2: '^~\\&', 3: 'LIS', 4: 'SNUH', 5: 'ANCHORLINE', 6: 'HUB', 7: '20261121120000', 9: 'ORU^R01^ORU_R01', 10: controlId, 11: 'P', 12: '2.5.1' }),
    segment('PID', { 1: '1', 3: `${mrn}^^^SNUH^MR`, 5: `${family}^Jiwoo`, 7: '19900202', 8: 'F' }),
    segment('OBR', { 1: '1', 2: `P-${controlId}`, 3: `${filler}^LIS`, 4: 'CBC^Blood count^L', 7: '20261121110000', 22: '20261121115900', 25: 'F' }),
    segment('OBX', { 1: '1', 2: 'NM', 3: 'WBC^WBC^L', 5: '5.2', 6: '10*3/uL', 11: 'F' }),
  ].join('\r') + '\r';
}

async function settled(pool = t.pool): Promise<void> {
  await eventually(async () => {
    const { rows } = await pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM inbox_message WHERE state = 'queued'`);
    return rows[0]!.n === 0 ? true : undefined;
  }, 30_000, 'all mapped');
}

/** Every resource whose versions name more than one patient (should be none), and how many versions were read. */
async function movedRecords(pool = t.pool): Promise<{ moved: string[]; versions: number }> {
  const { rows } = await pool.query<{ resource_type: string; id: string; version_id: number }>(
    `SELECT resource_type, id, version_id FROM fhir_resource_history WHERE resource_type NOT IN ('AuditEvent', 'Provenance')`,
  );
  const patients = new Map<string, Set<string>>();
  for (const row of rows) {
    // Read through the store: versions in a patient's compartment are sealed under that patient's key.
    const version = await resources.readVersion(pool, row.resource_type, row.id, row.version_id);
    const patient = compartment.patientOf(version!.content);
    if (patient === undefined) continue;
    const key = `${row.resource_type}/${row.id}`;
    patients.set(key, (patients.get(key) ?? new Set()).add(patient));
  }
  return { moved: [...patients].filter(([, set]) => set.size > 1).map(([key]) => key), versions: rows.length };
}

async function get(url: string): Promise<any> {
  const response = await fetch(`${t.httpUrl}${url}`, { headers: authHeaders() });
  return response.json();
}

async function issuesOf(controlId: string, pool = t.pool): Promise<string[]> {
  const { rows } = await pool.query<{ issues: Array<{ code: string }> | null }>(`SELECT mapping_issues AS issues FROM inbox_message WHERE control_id = $1`, [controlId]);
  return (rows[0]?.issues ?? []).map((issue) => issue.code);
}

describe('ids reused across patients', () => {
  it('HL7 v2: a filler order number sent for a second patient makes a second report, in either order', async () => {
    for (const [first, second, filler] of [
      [['R-1', 'P100', 'Kang'], ['R-2', 'P200', 'Seo'], 'F-1'],
      [['R-3', 'P400', 'Han'], ['R-4', 'P300', 'Yoon'], 'F-2'],
    ] as const) {
      expect(hl7Field(await client.request(oru(first[0], first[1], first[2], filler)), 'MSA', 1)).toBe('AA');
      await settled();
      expect(hl7Field(await client.request(oru(second[0], second[1], second[2], filler)), 'MSA', 1)).toBe('AA');
      await settled();
      const firstPatient = (await get(`/fhir/Patient?identifier=${first[1]}`)).entry[0].resource.id;
      const secondPatient = (await get(`/fhir/Patient?identifier=${second[1]}`)).entry[0].resource.id;
      const firstReports = (await get(`/fhir/DiagnosticReport?subject=Patient/${firstPatient}`)).entry ?? [];
      const secondReports = (await get(`/fhir/DiagnosticReport?subject=Patient/${secondPatient}`)).entry ?? [];
      expect(firstReports).toHaveLength(1);
      expect(secondReports).toHaveLength(1);
      expect(secondReports[0].resource.id).not.toBe(firstReports[0].resource.id);
      // The first patient's report is as its own message wrote it: one version, its own result.
      expect(firstReports[0].resource.meta.versionId).toBe('1');
      const secondResult = await get(`/fhir/${secondReports[0].resource.result[0].reference}`);
      expect(secondResult.subject.reference).toBe(`Patient/${secondPatient}`);
      expect(await issuesOf(second[0])).toContain('ANCHORLINE_ISSUE_ID_REUSED_ACROSS_PATIENTS');
      expect(await issuesOf(first[0])).not.toContain('ANCHORLINE_ISSUE_ID_REUSED_ACROSS_PATIENTS');
    }
    // A resend of the second message names the same kept-apart resources: nothing new, nothing moved.
    const before = await movedRecords();
    expect(hl7Field(await client.request(oru('R-2', 'P200', 'Seo', 'F-1')), 'MSA', 1)).toBe('AA');
    await settled();
    const after = await movedRecords();
    expect(after.moved).toEqual([]);
    expect(after.versions).toBe(before.versions);
  });

  it('C-CDA: two patients\' documents that share entry ids make two records, in either order', async () => {
    const original = readFileSync(path.join(FIXTURES, 'korean-discharge-summary.xml'), 'utf8');
    const documentFor = (mrn: string, documentId: string): string =>
      original
        .replace('extension="H0012345"', `extension="${mrn}"`)
        .replace(/(<ClinicalDocument[\s\S]*?<id\b[^>]*?extension=")[^"]*(")/, `$1${documentId}$2`);
    const post = async (body: string): Promise<number> => {
      const response = await fetch(`${t.httpUrl}/ingest/cda`, { method: 'POST', headers: { ...authHeaders(), 'content-type': 'application/xml' }, body });
      expect(response.status, await response.clone().text()).toBeLessThan(300);
      return Number(response.headers.get('x-anchorline-message-id'));
    };
    const ids: number[] = [];
    for (const [mrn, documentId] of [['C100', 'DOC-A'], ['C200', 'DOC-B'], ['C400', 'DOC-D'], ['C300', 'DOC-C']]) {
      ids.push(await post(documentFor(mrn!, documentId!)));
      await settled();
    }
    const states = await t.pool.query<{ id: string; state: string; issues: Array<{ code: string }> | null }>(
      `SELECT id::text, state, mapping_issues AS issues FROM inbox_message WHERE id = ANY($1::bigint[]) ORDER BY inbox_message.id`,
      [ids],
    );
    expect(states.rows.map((row) => row.state)).toEqual(['done', 'done', 'done', 'done']);
    expect((states.rows[0]!.issues ?? []).map((issue) => issue.code)).not.toContain('ANCHORLINE_ISSUE_ID_REUSED_ACROSS_PATIENTS');
    for (const row of states.rows.slice(1)) expect((row.issues ?? []).map((issue) => issue.code)).toContain('ANCHORLINE_ISSUE_ID_REUSED_ACROSS_PATIENTS');
    // Each patient has the document's clinical records under it.
    const conditionsOf = async (mrn: string): Promise<number> => {
      const patient = (await get(`/fhir/Patient?identifier=${mrn}`)).entry[0].resource.id;
      return ((await get(`/fhir/Condition?subject=Patient/${patient}`)).entry ?? []).length;
    };
    const counts = await Promise.all(['C100', 'C200', 'C300', 'C400'].map(conditionsOf));
    expect(counts[0]).toBeGreaterThan(0);
    expect(new Set(counts).size).toBe(1);
    expect((await movedRecords()).moved).toEqual([]);
  });

  it('keeps two patients apart when their messages map in one batch', async () => {
    const redis = await startTestRedis();
    const schema = uniqueName('apart');
    const intake = await startTestEngine({ schema, redisUrl: redis.url, overrides: { workers: { enabled: false } } });
    let worker: TestEngine | undefined;
    try {
      const sender = await MllpTestClient.connect(intake.mllpPort);
      await sender.request(oru('B-1', 'Q100', 'Kang', 'F-9'));
      await sender.request(oru('B-2', 'Q200', 'Seo', 'F-9'));
      await sender.close();
      worker = await startTestEngine({ schema, redisUrl: redis.url, role: 'worker' });
      await settled(intake.pool);
      const failed = await intake.pool.query(`SELECT control_id FROM inbox_message WHERE state <> 'done'`);
      expect(failed.rows).toEqual([]);
      const reports = await intake.pool.query<{ id: string }>(`SELECT id FROM fhir_resource WHERE resource_type = 'DiagnosticReport'`);
      const subjects = await Promise.all(reports.rows.map(async (row) => ((await resources.readCurrent(intake.pool, 'DiagnosticReport', row.id))!.content.subject as { reference: string }).reference));
      expect(new Set(subjects).size).toBe(2);
      expect((await movedRecords(intake.pool)).moved).toEqual([]);
      expect(await issuesOf('B-2', intake.pool)).toContain('ANCHORLINE_ISSUE_ID_REUSED_ACROSS_PATIENTS');
    } finally {
      await worker?.destroy();
      await intake.destroy();
      await redis.stop();
    }
  });

  it('the store refuses a version that names another patient, unless a merge made it', async () => {
    const db = await t.pool.connect();
    try {
      await db.query('BEGIN');
      const first = resources.stampVersion(undefined, { resourceType: 'Observation', id: 'obs-apart-1', status: 'final', code: { text: 'x' }, subject: { reference: 'Patient/a' } });
      await resources.writeVersions(db, [{ stored: first, sourceMessageId: null }], new Map());
      const moved = resources.stampVersion(first, { ...first.content, subject: { reference: 'Patient/b' } });
      const refused = await resources.writeVersions(db, [{ stored: moved, sourceMessageId: null }], new Map([['Observation/obs-apart-1', first]])).catch((error: unknown) => error);
      expect(refused).toBeInstanceOf(AnchorlineError);
      expect((refused as AnchorlineError).code).toBe('ANCHORLINE_ERR_STORE_PATIENT_CHANGED');
      await db.query('ROLLBACK');
      await db.query('BEGIN');
      await resources.writeVersions(db, [{ stored: first, sourceMessageId: null }], new Map());
      await resources.writeVersions(db, [{ stored: moved, sourceMessageId: null, patientMerge: true }], new Map([['Observation/obs-apart-1', first]]));
      // Within one call too: the second version of a resource is checked against the first.
      const second = resources.stampVersion(undefined, { resourceType: 'Condition', id: 'cond-apart-1', subject: { reference: 'Patient/a' } });
      const third = resources.stampVersion(second, { ...second.content, subject: { reference: 'Patient/c' } });
      const chained = await resources.writeVersions(db, [{ stored: second, sourceMessageId: null }, { stored: third, sourceMessageId: null }], new Map()).catch((error: unknown) => error);
      expect((chained as AnchorlineError).code).toBe('ANCHORLINE_ERR_STORE_PATIENT_CHANGED');
    } finally {
      await db.query('ROLLBACK');
      db.release();
    }
  });
});

/**
 * ADT^A40 through the engine: the retired patient's Encounters (stored earlier, and one made in the same batch as
 * the merge) are re-pointed to the surviving patient, the retired one becomes inactive and `replaced-by` the
 * survivor, the survivor `replaces` it, and every change is a new version with a provenance leaf.
 */
import { describe, expect, it } from 'vitest';
import { adtMessage, segment } from '../support/messages.ts';
import { MllpTestClient, hl7Field } from '../support/mllp-client.ts';
import { authHeaders, eventually, startTestEngine, type TestEngine, withEngineAndClient } from '../support/engine.ts';
import { uniqueName } from '../support/db.ts';
import { startTestRedis } from '../support/redis.ts';
import { resources } from '../../store/index.ts';

let t: TestEngine;
let client: MllpTestClient;

withEngineAndClient({}, (engine, mllp) => {
  t = engine;
  client = mllp;
});

async function get(url: string): Promise<any> {
  const response = await fetch(`${t.httpUrl}${url}`, { headers: authHeaders() });
  return response.json();
}

async function settled(): Promise<void> {
  await eventually(async () => {
    const { rows } = await t.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM inbox_message WHERE state = 'queued'`);
    return rows[0]!.n === 0 ? true : undefined;
  });
}

function a40(controlId: string, survivor: string, retired: string): string {
  return [
    segment('MSH', { 2: '^~\\&', 3: 'EMR', 4: 'SNUH', 5: 'ANCHORLINE', 6: 'HUB', 7: '20261121120000', 9: 'ADT^A40^ADT_A39', 10: controlId, 11: 'P', 12: '2.5.1' }),
    segment('EVN', { 1: 'A40', 2: '20261121120000' }),
    segment('PID', { 1: '1', 3: `${survivor}^^^SNUH^MR`, 5: 'Park^Jiwoo', 7: '19900202', 8: 'F' }),
    segment('MRG', { 1: `${retired}^^^SNUH^MR` }),
  ].join('\r') + '\r';
}

describe('patient merge (A40)', () => {
  it('re-points references to the retired patient and links both records', async () => {
    expect(hl7Field(await client.request(adtMessage({ controlId: 'M-1', mrn: 'KEEP1', family: 'Park', given: 'Jiwoo', visit: 'VK1' })), 'MSA', 1)).toBe('AA');
    expect(hl7Field(await client.request(adtMessage({ controlId: 'M-2', mrn: 'DUP1', family: 'Park', given: 'Jiwoo', visit: 'VD1' })), 'MSA', 1)).toBe('AA');
    await settled();
    const survivor = (await get('/fhir/Patient?identifier=KEEP1')).entry[0].resource;
    const retired = (await get('/fhir/Patient?identifier=DUP1')).entry[0].resource;
    const before = (await get(`/fhir/Encounter?subject=Patient/${retired.id}`)).entry;
    expect(before).toHaveLength(1);

    // A second visit of the duplicate arrives right before the merge: both may map in one batch.
    await client.request(adtMessage({ event: 'A04', controlId: 'M-3', mrn: 'DUP1', family: 'Park', given: 'Jiwoo', visit: 'VD2', timestamp: '20261121113000' }));
    expect(hl7Field(await client.request(a40('M-4', 'KEEP1', 'DUP1')), 'MSA', 1)).toBe('AA');
    await settled();

    const failed = await t.pool.query(`SELECT control_id, error_code FROM inbox_message WHERE state = 'failed'`);
    expect(failed.rows).toEqual([]);
    expect((await get(`/fhir/Encounter?subject=Patient/${retired.id}`)).entry ?? []).toEqual([]);
    const moved = (await get(`/fhir/Encounter?subject=Patient/${survivor.id}`)).entry.map((e: any) => e.resource.identifier[0].value).sort();
    expect(moved).toEqual(['VD1', 'VD2', 'VK1']);

    const retiredNow = await get(`/fhir/Patient/${retired.id}`);
    expect(retiredNow.active).toBe(false);
    expect(retiredNow.link).toEqual([{ other: { reference: `Patient/${survivor.id}` }, type: 'replaced-by' }]);
    const survivorNow = await get(`/fhir/Patient/${survivor.id}`);
    expect(survivorNow.link).toEqual([{ other: { reference: `Patient/${retired.id}` }, type: 'replaces' }]);

    // Each re-pointed version is a version of its own, made by the A40 message, with its leaf.
    const merge = await t.pool.query<{ id: number }>(`SELECT id FROM inbox_message WHERE control_id = 'M-4'`);
    const versions = await t.pool.query<{ resource_type: string; leaf: boolean }>(
      `SELECT h.resource_type, EXISTS (SELECT 1 FROM ledger_leaf l WHERE l.resource_type = h.resource_type AND l.resource_id = h.id AND l.version_id = h.version_id) AS leaf
         FROM fhir_resource_history h WHERE h.source_message_id = $1 ORDER BY h.resource_type`,
      [merge.rows[0]!.id],
    );
    // And the AuditEvent recording that import, and the A40's Provenance (the earlier messages' Provenances keep the
    // retired patient they wrote: history is not re-pointed).
    expect(versions.rows.map((r) => r.resource_type)).toEqual(['AuditEvent', 'Encounter', 'Encounter', 'Patient', 'Patient', 'Provenance']);
    expect(versions.rows.every((r) => r.leaf)).toBe(true);
  });

  it("names in each message's Provenance the SHA-256 of its bytes as committed at intake, and MSH-4 as a resource", async () => {
    const { rows } = await t.pool.query<{ raw: string; entity: Array<{ what: { identifier: { system: string; value: string } } }>; who: { reference?: string } }>(
      `SELECT encode(m.raw_sha256, 'hex') AS raw, r.content->'entity' AS entity, r.content->'agent'->0->'who' AS who
         FROM fhir_resource r JOIN fhir_resource_history h ON h.resource_type = r.resource_type AND h.id = r.id AND h.version_id = r.version_id
         JOIN inbox_message m ON m.id = h.source_message_id
        WHERE r.resource_type = 'Provenance' AND m.control_id = 'M-4'`,
    );
    expect(rows).toHaveLength(1);
    expect(rows[0]!.entity.map((e) => e.what.identifier)).toContainEqual({ system: 'urn:anchorline:raw-sha256', value: rows[0]!.raw });
    const organization = await get(`/fhir/${rows[0]!.who.reference}`);
    expect(organization.resourceType).toBe('Organization');
  });

  it('merging a patient nobody stored changes only the survivor', async () => {
    expect(hl7Field(await client.request(a40('M-5', 'KEEP2', 'GHOST1')), 'MSA', 1)).toBe('AA');
    await settled();
    const survivor = (await get('/fhir/Patient?identifier=KEEP2')).entry[0].resource;
    expect(survivor.link).toBeUndefined();
    const failed = await t.pool.query(`SELECT 1 FROM inbox_message WHERE control_id = 'M-5' AND state = 'failed'`);
    expect(failed.rowCount).toBe(0);
  });

  it('leaves the Provenance of a message mapped in the same batch as the merge naming the patient it wrote', async () => {
    // Intake only: the messages wait, and one worker started afterwards takes them in one batch.
    const redis = await startTestRedis();
    const schema = uniqueName('merge');
    const intake = await startTestEngine({ schema, redisUrl: redis.url, overrides: { workers: { enabled: false } } });
    let worker: TestEngine | undefined;
    try {
      const sender = await MllpTestClient.connect(intake.mllpPort);
      await sender.request(adtMessage({ controlId: 'B-1', mrn: 'KEEP9', family: 'Park', given: 'Jiwoo', visit: 'VK9' }));
      await sender.request(adtMessage({ controlId: 'B-2', mrn: 'DUP9', family: 'Park', given: 'Jiwoo', visit: 'VD9' }));
      await sender.request(a40('B-3', 'KEEP9', 'DUP9'));
      await sender.close();
      worker = await startTestEngine({ schema, redisUrl: redis.url, role: 'worker' });
      await eventually(async () => (await intake.pool.query(`SELECT count(*)::int AS n FROM inbox_message WHERE state = 'done'`)).rows[0].n === 3 || undefined);
      const provenance = await intake.pool.query<{ control_id: string; versions: number; targets: string[] }>(
        `SELECT m.control_id, count(*)::int AS versions, array_agg(DISTINCT t->>'reference' ORDER BY t->>'reference') AS targets
           FROM fhir_resource_history h JOIN inbox_message m ON m.id = h.source_message_id, jsonb_array_elements(h.content->'target') t
          WHERE h.resource_type = 'Provenance' AND m.control_id = 'B-2' GROUP BY m.control_id`,
      );
      // Patients read through the store: they are sealed under their own keys.
      const dup = [];
      for (const { id } of (await intake.pool.query<{ id: string }>(`SELECT id FROM fhir_resource WHERE resource_type = 'Patient'`)).rows) {
        if ((await resources.readCurrent(intake.pool, 'Patient', id))!.content.active === false) dup.push({ id });
      }
      expect(dup).toHaveLength(1);
      expect(provenance.rows).toHaveLength(1);
      expect(provenance.rows[0]!.targets).toContain(`Patient/${dup[0]!.id}`);
      // One version per Provenance target row: the B-2 Provenance was written once and never re-pointed.
      const versions = await intake.pool.query(`SELECT max(version_id)::int AS latest FROM fhir_resource_history WHERE resource_type = 'Provenance'`);
      expect(versions.rows[0].latest).toBe(1);
    } finally {
      await worker?.destroy();
      await intake.destroy();
      await redis.stop();
    }
  });
});

/**
 * Mapping batches lock only the resources they change. A resource every message names and leaves as it is (the ward
 * a patient lies on, the attending doctor) is read, not locked, so one batch holding it cannot hold up another; a
 * resource that a batch read and changes, and that another writer moved on before the batch locked it, makes the
 * batch map again under locks, so that no version is written over one the batch never saw.
 */
import type pg from 'pg';
import { describe, expect, it } from 'vitest';
import { adtMessage } from '../support/messages.ts';
import { MllpTestClient, hl7Field } from '../support/mllp-client.ts';
import { authHeaders, eventually, type TestEngine, withEngineAndClient } from '../support/engine.ts';
import { resources } from '../../store/index.ts';

let t: TestEngine;
let client: MllpTestClient;

withEngineAndClient({}, (engine, mllp) => {
  t = engine;
  client = mllp;
});

async function send(message: string): Promise<void> {
  const ack = await client.request(message);
  expect(hl7Field(ack, 'MSA', 1)).toBe('AA');
}

async function messageRow(controlId: string): Promise<{ state: string; attempts: number; error_code: string | null }> {
  const { rows } = await t.pool.query<{ state: string; attempts: number; error_code: string | null }>(
    'SELECT state, attempts, error_code FROM inbox_message WHERE control_id = $1',
    [controlId],
  );
  return rows[0]!;
}

const mapped = (controlId: string): Promise<true> =>
  eventually(async () => ((await messageRow(controlId))?.state === 'done' ? true : undefined), 20_000, `${controlId} mapped`);

async function currentId(resourceType: string, where: string): Promise<string> {
  const { rows } = await t.pool.query<{ id: string }>(`SELECT id FROM fhir_resource WHERE resource_type = $1 AND ${where}`, [resourceType]);
  expect(rows).toHaveLength(1);
  return rows[0]!.id;
}

const MARRIED = { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-MaritalStatus', code: 'M' }] };

/** A transaction of the test's own holding the current row of one resource locked, as a writer of it does. */
async function holdLock(resourceType: string, id: string): Promise<{ client: pg.PoolClient; pid: number }> {
  const holder = await t.pool.connect();
  await holder.query('BEGIN');
  await holder.query('SELECT 1 FROM fhir_current WHERE resource_type = $1 AND id = $2 FOR UPDATE', [resourceType, id]);
  const pid = (await holder.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
  return { client: holder, pid };
}

describe('concurrent mapping batches', () => {
  it('maps a message while another transaction holds a resource it names but leaves as it is', async () => {
    await send(adtMessage({ controlId: 'CB-1', mrn: 'CB1', family: 'Han' }));
    await mapped('CB-1');
    const ward = await currentId('Location', `content->>'name' = 'W1'`);
    const held = await holdLock('Location', ward);
    try {
      // The same ward, unchanged, for another patient: mapped while the ward's row stays locked.
      await send(adtMessage({ controlId: 'CB-2', mrn: 'CB2', family: 'Seo' }));
      await mapped('CB-2');
      const { rows } = await t.pool.query<{ version_id: number }>(`SELECT version_id FROM fhir_current WHERE resource_type = 'Location' AND id = $1`, [ward]);
      expect(rows[0]!.version_id).toBe(1);
    } finally {
      await held.client.query('ROLLBACK');
      held.client.release();
    }
  });

  it('maps a batch again under locks when a resource it changes moved on after it was read', async () => {
    await send(adtMessage({ controlId: 'CB-3', mrn: 'CB3', family: 'First', timestamp: '20261121090000' }));
    await mapped('CB-3');
    const search = await fetch(`${t.httpUrl}/fhir/Patient?identifier=CB3`, { headers: authHeaders() });
    const patientId = ((await search.json()) as { entry: Array<{ resource: { id: string } }> }).entry[0]!.resource.id;
    const held = await holdLock('Patient', patientId);
    try {
      // The update reads version 1 unlocked, maps, and waits for the lock on the patient to write version 2.
      await send(adtMessage({ event: 'A08', controlId: 'CB-4', mrn: 'CB3', family: 'Second', timestamp: '20261121100000' }));
      await eventually(async () => {
        const { rows } = await held.client.query<{ n: number }>('SELECT count(*)::int AS n FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))', [held.pid]);
        return rows[0]!.n > 0 ? true : undefined;
      }, 20_000, 'the batch waiting for the patient');
      // Meanwhile another writer makes version 2 (a marital status the message does not carry).
      const locked = await resources.lockCurrent(held.client, [{ resourceType: 'Patient', id: patientId }]);
      const before = locked.get(`Patient/${patientId}`)!;
      expect(before.versionId).toBe(1);
      const next = resources.stampVersion(before, { ...before.content, maritalStatus: MARRIED });
      await resources.writeVersions(held.client, [{ stored: next, sourceMessageId: null }], locked);
      await held.client.query('COMMIT');
    } catch (error) {
      await held.client.query('ROLLBACK');
      throw error;
    } finally {
      held.client.release();
    }
    await mapped('CB-4');
    // Mapped in its first attempt, onto version 2: the other writer's marital status kept, the message's name applied.
    expect(await messageRow('CB-4')).toMatchObject({ state: 'done', attempts: 1, error_code: null });
    const patient = (await resources.readCurrent(t.pool, 'Patient', patientId))!;
    expect(patient.versionId).toBe(3);
    expect((patient.content.name as Array<{ family: string }>)[0]!.family).toBe('Second');
    expect(patient.content.maritalStatus).toEqual(MARRIED);
  });
});

/**
 * The group commit of read AuditEvents through a real engine: reads that arrive together share one transaction for
 * their events, each event stays its own resource with its own leaf, a read is answered only once its event is
 * committed, and a group that the database refuses fails every read in it with a coded 503 and no records.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adtMessage } from '../support/messages.ts';
import { MllpTestClient } from '../support/mllp-client.ts';
import { authHeaders, eventually, startTestEngine, type TestEngine } from '../support/engine.ts';
import { blindIndexOf } from '../../store/index.ts';

let t: TestEngine;
const patients: Record<'a' | 'b', string> = { a: '', b: '' };

async function get(url: string, key: string): Promise<{ status: number; error: string | null; text: string }> {
  const response = await fetch(`${t.httpUrl}${url}`, { headers: authHeaders(key) });
  return { status: response.status, error: response.headers.get('x-anchorline-error'), text: await response.text() };
}

/** A reader credential of its own, so that each test counts only the events of its own reads. */
async function reader(name: string): Promise<{ key: string; altId: string }> {
  const response = await fetch(`${t.httpUrl}/admin/api-keys`, { method: 'POST', headers: { ...authHeaders(), 'content-type': 'application/json' }, body: JSON.stringify({ name, scopes: ['system/*.rs'] }) });
  const body = (await response.json()) as { key: string; id: number };
  return { key: body.key, altId: `api-key/${body.id}` };
}

/** The read events of one caller: id, the transaction that wrote them (xmin) and content. */
async function readEvents(altId: string): Promise<Array<{ id: string; version_id: number; xid: string; content: Record<string, any> }>> {
  const rows = await t.pool.query(
    `SELECT id, version_id, xmin::text AS xid, content FROM fhir_resource_history
     WHERE resource_type = 'AuditEvent' AND content @> $1::jsonb ORDER BY id`,
    [JSON.stringify({ type: { code: 'rest' }, agent: [{ altId }] })],
  );
  return rows.rows;
}

beforeAll(async () => {
  t = await startTestEngine({ overrides: { anchor: { closeAfterMs: 200 } } });
  const client = await MllpTestClient.connect(t.mllpPort);
  await client.request(adtMessage({ controlId: 'RAB-A', mrn: 'RABA', family: 'Moon', given: 'Seo' }));
  await client.request(adtMessage({ controlId: 'RAB-B', mrn: 'RABB', family: 'Jang', given: 'Hoon' }));
  await client.close();
  for (const [which, mrn] of [['a', 'RABA'], ['b', 'RABB']] as const) {
    patients[which] = await eventually(async () => {
      const rows = await t.pool.query<{ id: string }>(`SELECT id FROM fhir_search_token WHERE resource_type = 'Patient' AND param = 'identifier' AND code_hash = $1`, [(await blindIndexOf(t.pool)).codeHash('identifier', mrn)]);
      return rows.rows[0]?.id;
    }, 20_000, `patient ${mrn}`);
  }
});

afterAll(async () => {
  await t?.destroy();
});

describe('read audit group commit', () => {
  it('gives each of N concurrent reads exactly one AuditEvent and one leaf; reads that arrive together share a transaction', async () => {
    const { key, altId } = await reader('group commit');
    const n = 40;
    const answers = await Promise.all(Array.from({ length: n }, () => get(`/fhir/Patient/${patients.a}`, key)));
    expect(answers.map((a) => a.status)).toEqual(Array(n).fill(200));

    const events = await readEvents(altId);
    expect(events).toHaveLength(n);
    expect(new Set(events.map((e) => e.id)).size).toBe(n);
    for (const event of events) {
      expect(event.version_id).toBe(1);
      expect(event.content).toMatchObject({ subtype: [{ code: 'read' }], action: 'R', outcome: '0' });
      expect(event.content.entity).toEqual([
        expect.objectContaining({ what: { reference: `Patient/${patients.a}` }, role: expect.objectContaining({ code: '1' }) }),
        expect.objectContaining({ what: { reference: `Patient/${patients.a}/_history/1` }, role: expect.objectContaining({ code: '4' }) }),
      ]);
    }
    // Fewer transactions than events: the reads that waited together were committed together.
    const transactions = new Set(events.map((e) => e.xid));
    expect(transactions.size).toBeLessThan(n);

    // One leaf per event (their transaction is not compared: closing an anchor batch updates the leaf rows).
    const leaves = await t.pool.query<{ resource_id: string; version_id: number }>(
      `SELECT resource_id, version_id FROM ledger_leaf WHERE resource_type = 'AuditEvent' AND resource_id = ANY($1::text[])`,
      [events.map((e) => e.id)],
    );
    expect(leaves.rows.map((l) => l.resource_id).sort()).toEqual(events.map((e) => e.id).sort());
    expect(leaves.rows.every((l) => l.version_id === 1)).toBe(true);
  });

  it('answers a read only when its AuditEvent is committed', async () => {
    const { key } = await reader('durability');
    const n = 24;
    await Promise.all(Array.from({ length: n }, async (_, i) => {
      const query = `Patient?identifier=DURABLE${i}`;
      const answer = await get(`/fhir/${query}`, key);
      expect(answer.status).toBe(200);
      // Looked up on another connection the moment the answer arrives: no waiting, no retry.
      const stored = await t.pool.query(`SELECT 1 FROM fhir_resource_history WHERE resource_type = 'AuditEvent' AND content @> $1::jsonb`, [
        JSON.stringify({ entity: [{ query: Buffer.from(query, 'utf8').toString('base64') }] }),
      ]);
      expect(stored.rowCount).toBe(1);
    }));
  });

  it('fails every read of a group the database refuses with 503 ANCHORLINE_ERR_AUDIT_UNAVAILABLE, and sends no records', async () => {
    const { key, altId } = await reader('refused');
    // A real fault of the store: a constraint that refuses the read events of patient B (and only read events, so
    // that mapping is not affected). NOT VALID: the rows already there are not checked.
    await t.pool.query(
      `ALTER TABLE fhir_resource_history ADD CONSTRAINT refuse_reads_of_b
       CHECK (resource_type <> 'AuditEvent' OR NOT content @> '{"type":{"code":"rest"}}'::jsonb OR NOT content @> $$${JSON.stringify({ entity: [{ what: { reference: `Patient/${patients.b}` } }] })}$$::jsonb) NOT VALID`,
    );
    try {
      const alone = await get(`/fhir/Patient/${patients.b}`, key);
      expect(alone.status).toBe(503);
      expect(alone.error).toBe('ANCHORLINE_ERR_AUDIT_UNAVAILABLE');
      expect(JSON.parse(alone.text).resourceType).toBe('OperationOutcome');
      expect(alone.text).not.toContain('Jang');
      expect(alone.text).not.toContain('RABB');

      // Reads of A that share a group with a read of B fail with it; every read of A that is answered has its event.
      const reads = [...Array.from({ length: 30 }, () => 'a' as const), 'b' as const, 'b' as const, 'b' as const].sort(() => Math.random() - 0.5);
      const answers = await Promise.all(reads.map(async (which) => ({ which, ...(await get(`/fhir/Patient/${patients[which]}`, key)) })));
      for (const answer of answers) {
        if (answer.which === 'b') expect(answer.status).toBe(503);
        expect([200, 503]).toContain(answer.status);
        if (answer.status === 503) {
          expect(answer.error).toBe('ANCHORLINE_ERR_AUDIT_UNAVAILABLE');
          expect(answer.text).not.toMatch(/Moon|Jang|RABA|RABB/);
        }
      }
      const answeredA = answers.filter((a) => a.which === 'a' && a.status === 200).length;
      const events = await readEvents(altId);
      expect(events.filter((e) => JSON.stringify(e.content).includes(`Patient/${patients.b}`))).toEqual([]);
      expect(events).toHaveLength(answeredA);
    } finally {
      await t.pool.query('ALTER TABLE fhir_resource_history DROP CONSTRAINT refuse_reads_of_b');
    }
    expect((await get(`/fhir/Patient/${patients.b}`, key)).status).toBe(200);
  });
});

/**
 * The audit trail through a real engine: an AuditEvent (IHE BALP shape) for every write by mapping and every read of
 * patient data, committed before the read is answered, anchored as a ledger leaf, and served at /fhir/AuditEvent to the
 * audit scope.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyBundle } from '../../anchor/index.ts';
import { validateFhirResource } from '../../mappers/index.ts';
import { auditLedger, auditTrail, blindIndexOf } from '../../store/index.ts';
import { adtMessage } from '../support/messages.ts';
import { MllpTestClient } from '../support/mllp-client.ts';
import { authHeaders, eventually, startTestEngine, type TestEngine } from '../support/engine.ts';

let t: TestEngine;
let patientId: string;
let auditorKey: string;
let readerKey: string;
let readerKeyId: number;

async function get(url: string, key: string): Promise<{ status: number; body: any }> {
  const response = await fetch(`${t.httpUrl}${url}`, { headers: authHeaders(key) });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : undefined };
}

async function auditEvents(where: string, params: unknown[] = []): Promise<Array<Record<string, any>>> {
  const rows = await t.pool.query<{ content: Record<string, any> }>(`SELECT content FROM fhir_resource WHERE resource_type = 'AuditEvent' AND ${where} ORDER BY last_updated`, params);
  return rows.rows.map((r) => r.content);
}

async function key(scopes: string[]): Promise<{ key: string; id: number }> {
  const response = await fetch(`${t.httpUrl}/admin/api-keys`, { method: 'POST', headers: { ...authHeaders(), 'content-type': 'application/json' }, body: JSON.stringify({ name: `audit test ${scopes.join(' ')}`, scopes }) });
  const body = (await response.json()) as { key: string; id: number };
  return { key: body.key, id: body.id };
}

beforeAll(async () => {
  t = await startTestEngine({ overrides: { anchor: { closeAfterMs: 200 } } });
  ({ key: auditorKey } = await key(['audit']));
  ({ key: readerKey, id: readerKeyId } = await key(['system/*.rs']));
  const client = await MllpTestClient.connect(t.mllpPort);
  await client.request(adtMessage({ controlId: 'TRAIL-1', mrn: 'TR1', family: 'Baek', given: 'Yuna' }));
  await client.close();
  patientId = await eventually(async () => {
    const rows = await t.pool.query<{ id: string }>(`SELECT id FROM fhir_search_token WHERE resource_type = 'Patient' AND param = 'identifier' AND code_hash = $1`, [(await blindIndexOf(t.pool)).codeHash('identifier', 'TR1')]);
    return rows.rows[0]?.id;
  }, 20_000, 'patient TR1');
});

afterAll(async () => {
  await t?.destroy();
});

describe('audit trail', () => {
  it('records each mapped message as a BALP-shaped import: sender, patient, every version written and the message', async () => {
    const message = (await t.pool.query<{ id: string }>(`SELECT id FROM inbox_message WHERE control_id = 'TRAIL-1'`)).rows[0]!;
    const [event, ...more] = await auditEvents(`content @> $1::jsonb`, [JSON.stringify({ entity: [{ what: { identifier: { value: String(message.id) } } }] })]);
    expect(more).toEqual([]);
    expect(event).toMatchObject({
      type: { system: 'http://dicom.nema.org/resources/ontology/DCM', code: '110107' },
      action: 'C',
      outcome: '0',
      source: { observer: { display: 'anchorline' } },
    });
    expect(event!.subtype).toEqual([expect.objectContaining({ code: 'create' })]);
    expect(event!.agent[0]).toMatchObject({ requestor: true, who: { identifier: { system: 'urn:anchorline:sender', value: 'EMR|SNUH' } } });
    const refs = event!.entity.map((e: any) => [e.role.code, e.what.reference ?? e.what.identifier.value]);
    expect(refs).toContainEqual(['1', `Patient/${patientId}`]);
    expect(refs).toContainEqual(['4', `Patient/${patientId}/_history/1`]);
    expect(refs.some(([role, ref]: [string, string]) => role === '4' && ref.startsWith('Encounter/'))).toBe(true);
    expect(validateFhirResource(event)).toEqual([]);
    // Its leaf binds it to the message and mapping like the versions it records.
    const leaf = (await t.pool.query<{ preimage: any }>(`SELECT preimage FROM ledger_leaf WHERE resource_type = 'AuditEvent' AND resource_id = $1`, [event!.id])).rows[0]!;
    const patientLeaf = (await t.pool.query<{ preimage: any }>(`SELECT preimage FROM ledger_leaf WHERE resource_type = 'Patient' AND resource_id = $1 AND version_id = 1`, [patientId])).rows[0]!;
    expect(leaf.preimage.rawSha256).toBe(patientLeaf.preimage.rawSha256);
    expect(leaf.preimage.mappingSha256).toBe(patientLeaf.preimage.mappingSha256);
  });

  it('records a read with the caller, the version returned and its patient; a search with its query', async () => {
    const before = Date.now();
    expect((await get(`/fhir/Patient/${patientId}`, readerKey)).status).toBe(200);
    const [read] = await auditEvents(`last_updated >= $1 AND content @> '{"subtype":[{"code":"read"}]}'`, [new Date(before)]);
    expect(read).toMatchObject({ type: { code: 'rest' }, action: 'R', outcome: '0' });
    expect(read!.agent[0]).toMatchObject({ altId: `api-key/${readerKeyId}`, requestor: true, network: { address: '127.0.0.1' } });
    expect(read!.entity.map((e: any) => [e.role.code, e.what.reference])).toEqual([['1', `Patient/${patientId}`], ['4', `Patient/${patientId}/_history/1`]]);
    expect(validateFhirResource(read)).toEqual([]);

    await get('/fhir/Patient?identifier=TR1&_count=5', readerKey);
    const [search] = await auditEvents(`last_updated >= $1 AND content @> '{"subtype":[{"code":"search-type"}]}'`, [new Date(before)]);
    expect(search!.action).toBe('E');
    const query = search!.entity.find((e: any) => e.role.code === '24');
    expect(Buffer.from(query.query, 'base64').toString('utf8')).toBe('Patient?identifier=TR1&_count=5');
    // A search that finds nothing is recorded too.
    await get('/fhir/Patient?identifier=NOBODY', readerKey);
    expect(await auditEvents(`last_updated >= $1 AND content @> '{"subtype":[{"code":"search-type"}]}'`, [new Date(before)])).toHaveLength(2);
  });

  it('does not answer a read whose AuditEvent cannot be written: 503, and no records', async () => {
    await t.pool.query(`CREATE FUNCTION refuse_audit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'audit store unavailable'; END $$`);
    await t.pool.query(`CREATE TRIGGER refuse_audit BEFORE INSERT ON fhir_resource_history FOR EACH ROW WHEN (NEW.resource_type = 'AuditEvent') EXECUTE FUNCTION refuse_audit()`);
    try {
      const refused = await get(`/fhir/Patient/${patientId}`, readerKey);
      expect(refused.status).toBe(503);
      expect(refused.body.issue[0].details.coding[0].code).toBe('ANCHORLINE_ERR_AUDIT_UNAVAILABLE');
      expect(JSON.stringify(refused.body)).not.toContain('Baek');
      expect((await get('/fhir/Patient?identifier=TR1', readerKey)).status).toBe(503);
    } finally {
      await t.pool.query('DROP TRIGGER refuse_audit ON fhir_resource_history');
      await t.pool.query('DROP FUNCTION refuse_audit()');
    }
    expect((await get(`/fhir/Patient/${patientId}`, readerKey)).status).toBe(200);
  });

  it('serves the trail to auditors, searchable by patient, date and caller, and proves each event like any record', async () => {
    const start = new Date(Date.now() - 60_000).toISOString();
    const byPatient = await get(`/fhir/AuditEvent?patient=Patient/${patientId}&date=ge${start}&_count=100`, auditorKey);
    expect(byPatient.status).toBe(200);
    expect(byPatient.body.total).toBeGreaterThanOrEqual(3);
    expect((await get(`/fhir/AuditEvent?patient=Patient/${patientId}&date=lt2000-01-01`, auditorKey)).body.total).toBe(0);
    const byCaller = await get(`/fhir/AuditEvent?altid=api-key/${readerKeyId}&subtype=read`, auditorKey);
    expect(byCaller.body.entry.length).toBeGreaterThanOrEqual(1);
    expect((await get('/fhir/AuditEvent?date=2026-13', auditorKey)).status).toBe(400);

    const event = byCaller.body.entry[0].resource;
    const bundle = await eventually(async () => {
      const response = await get(`/proofs/AuditEvent/${event.id}/_history/1`, auditorKey);
      return response.status === 200 ? response.body : undefined;
    }, 20_000, 'the AuditEvent batched');
    const stored = (await get(`/fhir/AuditEvent/${event.id}`, auditorKey)).body;
    const verification = verifyBundle(bundle, { resource: stored });
    expect(verification.ok).toBe(true);
    expect(bundle.leaf.preimage.rawSha256).toBe(auditTrail.NO_SOURCE_SHA256);

    // A reader cannot fetch the proof of an audit event; an auditor can fetch a record's proof without reading it.
    expect((await get(`/proofs/AuditEvent/${event.id}/_history/1`, readerKey)).status).toBe(403);
    expect((await get(`/proofs/Patient/${patientId}/_history/1`, auditorKey)).status).toBe(200);

    await eventually(async () => (await t.pool.query(`SELECT 1 FROM ledger_leaf WHERE batch_number IS NULL`)).rowCount === 0, 20_000, 'leaves batched');
    const report = await auditLedger(t.pool);
    expect(report.findings).toEqual([]);
    expect(report.ok).toBe(true);
  });

  it('finds events by agent name: a caller by prefix and exactly, the engine on every event without indexing its name', async () => {
    // The reader's key (named 'audit test system/*.rs') reads the patient, and its event names it as agent.
    expect((await get(`/fhir/Patient/${patientId}`, readerKey)).status).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 20));
    const before = new Date().toISOString();
    const total = async (query: string): Promise<number> => {
      const response = await get(`/fhir/AuditEvent?${query}&date=lt${before}&_count=1`, auditorKey);
      expect(response.status).toBe(200);
      return response.body.total;
    };
    const all = await total('date=ge2000-01-01');
    expect(all).toBeGreaterThanOrEqual(3);
    const byPrefix = await total(`agent-name=${encodeURIComponent('Audit Test SYS')}`);
    expect(byPrefix).toBeGreaterThanOrEqual(1);
    expect(byPrefix).toBeLessThan(all);
    expect(await total(`agent-name:exact=${encodeURIComponent('audit test system/*.rs')}`)).toBe(byPrefix);
    expect(await total(`agent-name:exact=${encodeURIComponent('audit test sys')}`)).toBe(0);
    // The engine is the destination of every event: its name, or the start of it, finds them all.
    expect(await total('agent-name=anchor')).toBe(all);
    expect(await total('agent-name:exact=Anchorline')).toBe(all);
    expect(await total('agent-name=anchorline,nobody')).toBe(all);
    expect(await total('agent-name=anchorlinex')).toBe(0);
    expect(await total('agent-name:exact=anchor')).toBe(0);
    // ...and is not in the index: no string rows of AuditEvents hash it or its prefixes (from 'an': the caller's name
    // starts with 'a' too).
    const blind = await blindIndexOf(t.pool);
    const engineHashes = [blind.exactHash('agent-name', 'anchorline'), ...Array.from('nchorline', (_, i) => blind.prefixHash('agent-name', 'anchorline'.slice(0, i + 2)))];
    const rows = await t.pool.query(`SELECT 1 FROM fhir_search_string WHERE resource_type = 'AuditEvent' AND param = 'agent-name' AND value_hash = ANY($1::bigint[])`, [engineHashes]);
    expect(rows.rowCount).toBe(0);
    const callerRows = await t.pool.query(`SELECT 1 FROM fhir_search_string WHERE resource_type = 'AuditEvent' AND param = 'agent-name' AND value_hash = $1`, [blind.exactHash('agent-name', 'audit test system/*.rs')]);
    expect(callerRows.rowCount).toBeGreaterThanOrEqual(1);
  });

  it("keeps an agent's name once per event and its prefixes once in the vocabulary, and still finds older events by prefix", async () => {
    const name = 'audit test system/*.rs';
    for (let n = 0; n < 4; n++) expect((await get(`/fhir/Patient/${patientId}`, readerKey)).status).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 20));
    const blind = await blindIndexOf(t.pool);
    const exact = blind.exactHash('agent-name', name);
    const prefixes = Array.from(name, (_, i) => blind.prefixHash('agent-name', name.slice(0, i + 1)));
    // Each of the reader's events has one agent-name row, the whole name's; no event holds a prefix row.
    const events = (await auditEvents(`content->'agent' @> $1::jsonb`, [JSON.stringify([{ who: { display: name } }])])).map((e) => e.id as string);
    expect(events.length).toBeGreaterThanOrEqual(5);
    const rows = await t.pool.query<{ id: string; hashes: string[] }>(
      `SELECT id, array_agg(value_hash::text) AS hashes FROM fhir_search_string WHERE resource_type = 'AuditEvent' AND param = 'agent-name' AND id = ANY($1::text[]) GROUP BY id`,
      [events],
    );
    expect(rows.rows.map((r) => r.hashes)).toEqual(events.map(() => [exact]));
    // The vocabulary holds each prefix of the name once, however many events carry it.
    const vocabulary = await t.pool.query<{ prefix_hash: string }>(`SELECT prefix_hash::text FROM fhir_search_vocabulary WHERE resource_type = 'AuditEvent' AND param = 'agent-name' AND value_hash = $1`, [exact]);
    expect(vocabulary.rows.map((r) => r.prefix_hash).sort()).toEqual([...new Set(prefixes)].sort());
    const byPrefix = await get(`/fhir/AuditEvent?agent-name=${encodeURIComponent('AUDIT TEST SYS')}&_count=1`, auditorKey);
    expect(byPrefix.body.total).toBe(events.length);

    // An event indexed before the vocabulary, with a row per prefix of its agent's name, is found by prefix too.
    const older = (await auditEvents(`content->>'outcomeDesc' IS NULL`))[0]!.id as string;
    const legacy = 'legacy sender';
    const legacyRows = [blind.exactHash('agent-name', legacy), ...Array.from(legacy, (_, i) => blind.prefixHash('agent-name', legacy.slice(0, i + 1)))];
    await t.pool.query(`INSERT INTO fhir_search_string (resource_type, id, param, value_hash) SELECT 'AuditEvent', $1, 'agent-name', unnest($2::bigint[])`, [older, legacyRows]);
    const found = await get(`/fhir/AuditEvent?agent-name=legacy&_count=10`, auditorKey);
    expect(found.body.entry.map((e: any) => e.resource.id)).toEqual([older]);
    expect((await get(`/fhir/AuditEvent?agent-name=legacyx&_count=10`, auditorKey)).body.total).toBe(0);
  });

  it('records the raw message view, and keeps AuditEvents out of the references a patient merge re-points', async () => {
    const response = await fetch(`${t.httpUrl}/proofs/Patient/${patientId}/_history/1/source`, { headers: authHeaders() });
    expect(response.status).toBe(200);
    const [view] = await auditEvents(`content->>'outcomeDesc' LIKE 'raw inbound message %'`);
    expect(view!.entity.map((e: any) => e.what.reference)).toEqual([`Patient/${patientId}`, `Patient/${patientId}/_history/1`]);
    const referencing = await t.pool.query(`SELECT 1 FROM fhir_reference WHERE resource_type = 'AuditEvent'`);
    expect(referencing.rowCount).toBe(0);
  });
});

/**
 * The unmapped-code worklist end to end: an ADT with a local admit source (PV1-14) that its ConceptMap lacks lands on
 * the worklist; resolving it adds the mapping to a new map version and re-maps the message, whose Encounter gets a new
 * version with the standard coding, recorded under the new terminology version.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ledger } from '../../store/index.ts';
import { listConceptMaps, loadConceptMap, parseConceptMap, readTerminologyVersion } from '../../terminology/index.ts';
import { authHeaders, eventually, startTestEngine, type TestEngine } from '../support/engine.ts';
import { segment } from '../support/messages.ts';

const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/terminology/conceptmaps');
const ADMIT_SOURCE_LOCAL = 'urn:anchorline:local/HL70023';
const ADMIT_SOURCE = 'http://terminology.hl7.org/CodeSystem/admit-source';
const ADMIT_SOURCE_MAP = 'http://hospital.example.org/fhir/ConceptMap/admit-source';

let t: TestEngine;
let readKey: string;
let patientReadKey: string;
let terminologyKey: string;

beforeAll(async () => {
  t = await startTestEngine();
  await loadConceptMap(t.pool, parseConceptMap(readFileSync(path.join(FIXTURES, 'admit-source.yaml'), 'utf8'), 'yaml'));
  const make = async (name: string, scopes: string[]): Promise<string> => {
    const response = await fetch(`${t.httpUrl}/admin/api-keys`, { method: 'POST', headers: { ...authHeaders(), 'content-type': 'application/json' }, body: JSON.stringify({ name, scopes }) });
    expect(response.status).toBe(201);
    return ((await response.json()) as { key: string }).key;
  };
  readKey = await make('reader', ['read']);
  patientReadKey = await make('patient reader', ['system/Patient.rs']);
  terminologyKey = await make('terminologist', ['terminology']);
});
afterAll(async () => {
  await t?.destroy();
});

function admission(controlId: string, mrn: string, visit: string, admitSource: string): string {
  return [
    segment('MSH', { 2: '^~\\&', 3: 'EMR', 4: 'SNUH', 5: 'ANCHORLINE', 6: 'HUB', 7: '20261121093000', 9: 'ADT^A01^ADT_A01', 10: controlId, 11: 'P', 12: '2.5.1' }),
    segment('EVN', { 1: 'A01', 2: '20261121093000' }),
    segment('PID', { 1: '1', 3: `${mrn}^^^SNUH^MR`, 5: 'Doe^Jane', 7: '19800101', 8: 'F' }),
    segment('PV1', { 1: '1', 2: 'I', 3: 'W1^101^A', 14: admitSource, 19: visit, 44: '20261121093000' }),
  ].join('\r') + '\r';
}

async function ingest(message: string): Promise<void> {
  const response = await fetch(`${t.httpUrl}/ingest/hl7v2`, { method: 'POST', headers: { ...authHeaders(), 'content-type': 'x-application/hl7-v2+er7' }, body: message });
  expect(response.status).toBe(202);
}

async function encounter(visit: string, minVersion = 1): Promise<any | undefined> {
  const response = await fetch(`${t.httpUrl}/fhir/Encounter?identifier=${visit}`, { headers: authHeaders() });
  const bundle = (await response.json()) as any;
  const resource = bundle.entry?.[0]?.resource;
  return resource && Number(resource.meta.versionId) >= minVersion ? resource : undefined;
}

describe('unmapped codes', () => {
  it('a mapped local code gains the standard coding; an unmapped one goes on the worklist', async () => {
    await ingest(admission('WL-1', 'WL0001', 'WLV1', '7^Emergency room'));
    await ingest(admission('WL-2', 'WL0002', 'WLV2', '9^GP referral'));

    const mapped = await eventually(() => encounter('WLV1'), 20_000, 'the first Encounter');
    expect(mapped.hospitalization.admitSource.coding).toEqual([
      { system: ADMIT_SOURCE_LOCAL, code: '7', display: 'Emergency room' },
      { system: ADMIT_SOURCE, code: 'emd', display: 'From accident/emergency department' },
    ]);
    const unmapped = await eventually(() => encounter('WLV2'), 20_000, 'the second Encounter');
    expect(unmapped.hospitalization.admitSource.coding).toEqual([{ system: ADMIT_SOURCE_LOCAL, code: '9', display: 'GP referral' }]);

    const response = await fetch(`${t.httpUrl}/terminology/unmapped?system=${encodeURIComponent(ADMIT_SOURCE_LOCAL)}`, { headers: { authorization: `Bearer ${terminologyKey}` } });
    expect(response.status).toBe(200);
    const list = (await response.json()) as any;
    expect(list.total).toBe(1);
    expect(list.codes[0]).toMatchObject({ system: ADMIT_SOURCE_LOCAL, code: '9', display: 'GP referral', occurrences: 1, messages: 1, resolvedAt: null });
    expect(typeof list.codes[0].source).toBe('string');
    expect(Date.parse(list.codes[0].firstSeen)).not.toBeNaN();
  });

  it('the worklist needs the terminology or admin scope: reading records does not grant it', async () => {
    for (const key of [patientReadKey, readKey]) {
      const refused = await fetch(`${t.httpUrl}/terminology/unmapped`, { headers: { authorization: `Bearer ${key}` } });
      expect(refused.status).toBe(403);
      expect(refused.headers.get('x-anchorline-error')).toBe('ANCHORLINE_ERR_FORBIDDEN');
    }
    expect((await fetch(`${t.httpUrl}/terminology/unmapped`, { headers: { authorization: `Bearer ${terminologyKey}` } })).status).toBe(200);
    expect((await fetch(`${t.httpUrl}/terminology/unmapped`, { headers: authHeaders() })).status).toBe(200);
    // The terminology scope reads the worklist only; mapping a code stays with admins.
    const resolve = await fetch(`${t.httpUrl}/terminology/unmapped/resolve`, {
      method: 'POST',
      headers: { authorization: `Bearer ${terminologyKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ system: ADMIT_SOURCE_LOCAL, code: '9', target: { system: ADMIT_SOURCE, code: 'gp' } }),
    });
    expect(resolve.status).toBe(403);
  });

  it('resolving needs the admin scope and a well-formed body', async () => {
    const body = JSON.stringify({ system: ADMIT_SOURCE_LOCAL, code: '9', target: { system: ADMIT_SOURCE, code: 'gp' } });
    const asReader = await fetch(`${t.httpUrl}/terminology/unmapped/resolve`, { method: 'POST', headers: { authorization: `Bearer ${readKey}`, 'content-type': 'application/json' }, body });
    expect(asReader.status).toBe(403);
    const malformed = await fetch(`${t.httpUrl}/terminology/unmapped/resolve`, { method: 'POST', headers: { ...authHeaders(), 'content-type': 'application/json' }, body: JSON.stringify({ system: ADMIT_SOURCE_LOCAL, code: '9' }) });
    expect(malformed.status).toBe(400);
    const badList = await fetch(`${t.httpUrl}/terminology/unmapped?resolved=maybe`, { headers: authHeaders() });
    expect(badList.status).toBe(400);
  });

  it('resolving adds the mapping to a new map version and re-maps the message into a new Encounter version', async () => {
    const before = await readTerminologyVersion(t.pool);
    const response = await fetch(`${t.httpUrl}/terminology/unmapped/resolve`, {
      method: 'POST',
      headers: { ...authHeaders(), 'content-type': 'application/json' },
      body: JSON.stringify({ system: ADMIT_SOURCE_LOCAL, code: '9', target: { system: ADMIT_SOURCE, code: 'gp', display: 'General Practitioner referral' } }),
    });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ conceptMap: { url: ADMIT_SOURCE_MAP, version: '1+1', previousVersion: '1' }, resolved: 1, requeuedMessages: 1 });
    expect((await listConceptMaps(t.pool, { url: ADMIT_SOURCE_MAP })).map((m) => [m.version, m.active])).toEqual([['1+1', true], ['1', false]]);

    const remapped = await eventually(() => encounter('WLV2', 2), 20_000, 'the re-mapped Encounter');
    expect(remapped.hospitalization.admitSource.coding).toEqual([
      { system: ADMIT_SOURCE_LOCAL, code: '9', display: 'GP referral' },
      { system: ADMIT_SOURCE, code: 'gp', display: 'General Practitioner referral' },
    ]);
    const after = await readTerminologyVersion(t.pool);
    expect(after).not.toBe(before);
    const first = await ledger.findLeaf(t.pool, 'Encounter', remapped.id, 1);
    const second = await ledger.findLeaf(t.pool, 'Encounter', remapped.id, Number(remapped.meta.versionId));
    expect(first?.preimage.terminologyVersion).toBe(before);
    expect(second?.preimage.terminologyVersion).toBe(after);

    const open = (await (await fetch(`${t.httpUrl}/terminology/unmapped`, { headers: authHeaders() })).json()) as any;
    expect(open.total).toBe(0);
    const resolved = (await (await fetch(`${t.httpUrl}/terminology/unmapped?resolved=true`, { headers: authHeaders() })).json()) as any;
    expect(resolved.codes[0]).toMatchObject({ code: '9', messages: 0 });
    expect(resolved.codes[0].resolvedAt).not.toBeNull();

    // The map now translates it for new messages too, and $translate sees the new version.
    const translated = (await (await fetch(`${t.httpUrl}/fhir/ConceptMap/$translate?system=${encodeURIComponent(ADMIT_SOURCE_LOCAL)}&code=9`, { headers: authHeaders() })).json()) as any;
    expect(translated.parameter[0]).toEqual({ name: 'result', valueBoolean: true });
  });

  it('resolving a code the map already translates makes no new version and re-queues nothing', async () => {
    const response = await fetch(`${t.httpUrl}/terminology/unmapped/resolve`, {
      method: 'POST',
      headers: { ...authHeaders(), 'content-type': 'application/json' },
      body: JSON.stringify({ system: ADMIT_SOURCE_LOCAL, code: '9', target: { system: ADMIT_SOURCE, code: 'gp' }, conceptMap: ADMIT_SOURCE_MAP }),
    });
    expect(await response.json()).toEqual({ conceptMap: { url: ADMIT_SOURCE_MAP, version: '1+1', previousVersion: '1+1' }, resolved: 0, requeuedMessages: 0 });
  });

  it('a code from a system no map translates cannot be resolved without naming a map', async () => {
    const response = await fetch(`${t.httpUrl}/terminology/unmapped/resolve`, {
      method: 'POST',
      headers: { ...authHeaders(), 'content-type': 'application/json' },
      body: JSON.stringify({ system: 'urn:anchorline:local/OTHER', code: 'x', target: { system: ADMIT_SOURCE, code: 'gp' } }),
    });
    expect(response.status).toBe(404);
    expect(((await response.json()) as any).issue[0].details.text).toMatch(/no active ConceptMap translates/);
  });
});

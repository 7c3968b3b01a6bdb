/**
 * Search result parameters on a real engine (api/fhir-shape.ts): `_summary` (count, true, text, data), `_elements`,
 * `_total` and `_sort`, on searches and on reads by id, and the refusals of what cannot be honoured.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MllpTestClient } from '../support/mllp-client.ts';
import { authHeaders, eventually, startTestEngine, type TestEngine } from '../support/engine.ts';
import { adtMessage } from '../support/messages.ts';

let t: TestEngine;
const SUBSETTED = { system: 'http://terminology.hl7.org/CodeSystem/v3-ObservationValue', code: 'SUBSETTED' };

async function get(url: string): Promise<{ status: number; body: any; code: string | null }> {
  const response = await fetch(`${t.httpUrl}${url}`, { headers: authHeaders() });
  return { status: response.status, body: await response.json(), code: response.headers.get('x-anchorline-error') };
}

beforeAll(async () => {
  t = await startTestEngine();
  const client = await MllpTestClient.connect(t.mllpPort);
  for (let i = 0; i < 5; i++) await client.request(adtMessage({ controlId: `SR${i}`, mrn: `SRM${i}`, family: 'Shape', given: `P${i}` }));
  await client.close();
  await eventually(async () => ((await get('/fhir/Patient?family=Shape')).body.total === 5 ? true : undefined), 30_000, 'five patients mapped');
});
afterAll(async () => {
  await t?.destroy();
});

describe('search result parameters', () => {
  it('_summary=count answers the count alone, and the search is still recorded', async () => {
    const { status, body } = await get('/fhir/Patient?family=Shape&_summary=count');
    expect(status).toBe(200);
    expect(body).toMatchObject({ resourceType: 'Bundle', type: 'searchset', total: 5, entry: [] });
    const event = await eventually(async () => {
      const events = (await get('/fhir/AuditEvent?subtype=search-type&_count=50')).body.entry ?? [];
      return events.map((e: any) => e.resource).find((e: any) => Buffer.from(e.entity?.find((x: any) => x.role?.code === '24')?.query ?? '', 'base64').toString().includes('_summary=count'));
    });
    expect(event.entity.filter((x: any) => x.role?.code === '4')).toEqual([]);
  });

  it('_total=none leaves the total out and still links the next page', async () => {
    const { body } = await get('/fhir/Patient?family=Shape&_total=none&_count=2');
    expect(body.total).toBeUndefined();
    expect(body.entry).toHaveLength(2);
    expect(body.link.map((l: any) => l.relation)).toContain('next');
    const last = await get('/fhir/Patient?family=Shape&_total=none&_count=2&_offset=4');
    expect(last.body.entry).toHaveLength(1);
    expect(last.body.link.map((l: any) => l.relation)).not.toContain('next');
  });

  it('_sort orders by _lastUpdated or _id, either way, and refuses any other key', async () => {
    const order = async (sort: string): Promise<string[]> => (await get(`/fhir/Patient?family=Shape&_sort=${sort}`)).body.entry.map((e: any) => e.resource.id);
    const ids = await order('_id');
    expect(ids).toEqual([...ids].sort());
    expect(await order('-_id')).toEqual([...ids].sort().reverse());
    const times = async (sort: string): Promise<number[]> => (await get(`/fhir/Patient?family=Shape&_sort=${sort}`)).body.entry.map((e: any) => Date.parse(e.resource.meta.lastUpdated));
    const ascending = await times('_lastUpdated,_id');
    expect(ascending).toEqual([...ascending].sort((a, b) => a - b));
    const descending = await times('-_lastUpdated');
    expect(descending).toEqual([...descending].sort((a, b) => b - a));
    // Ties (one batch writes several at one time) are broken by the id, ascending unless asked otherwise.
    expect(await order('_lastUpdated,-_id')).toEqual(await order('_lastUpdated,-_id'));
    const refused = await get('/fhir/Patient?family=Shape&_sort=birthdate');
    expect(refused.status).toBe(400);
    expect(refused.code).toBe('ANCHORLINE_ERR_INVALID_REQUEST');
  });

  it('_elements and _summary shape each match, keep what R4 requires, and mark it SUBSETTED', async () => {
    const whole = (await get('/fhir/Patient?family=Shape&_count=1')).body.entry[0].resource;
    const elements = (await get('/fhir/Patient?family=Shape&_count=1&_elements=gender')).body.entry[0].resource;
    expect(Object.keys(elements).sort()).toEqual(['gender', 'id', 'meta', 'resourceType']);
    expect(elements.meta.tag).toContainEqual(expect.objectContaining(SUBSETTED));
    expect(elements.meta.versionId).toBe(whole.meta.versionId);
    // The R4 Encounter elements that are not in its summary (isSummary false in the base definition).
    const encounter = (await get('/fhir/Encounter?_count=1')).body.entry[0].resource;
    const summary = (await get(`/fhir/Encounter?_id=${encounter.id}&_summary=true`)).body.entry[0].resource;
    const notInSummary = new Set(['language', 'text', 'contained', 'extension', 'modifierExtension', 'statusHistory', 'classHistory', 'priority', 'basedOn', 'period', 'length', 'account', 'hospitalization', 'location', 'serviceProvider', 'partOf']);
    expect(Object.keys(encounter).filter((k) => notInSummary.has(k)).length).toBeGreaterThan(0);
    expect(Object.keys(summary).filter((k) => notInSummary.has(k))).toEqual([]);
    expect(Object.keys(summary).sort()).toEqual(Object.keys(encounter).filter((k) => !notInSummary.has(k)).sort());
    expect(summary.meta.tag).toContainEqual(expect.objectContaining(SUBSETTED));
    const data = (await get('/fhir/Patient?family=Shape&_count=1&_summary=data')).body.entry[0].resource;
    expect(data.text).toBeUndefined();
    expect(Object.keys(data).sort()).toEqual(Object.keys(whole).filter((k) => k !== 'text').sort());
    const both = await get('/fhir/Patient?family=Shape&_summary=true&_elements=gender');
    expect(both.status).toBe(400);
  });

  it('a read by id takes _elements and _summary, not _summary=count', async () => {
    const id = (await get('/fhir/Patient?family=Shape&_count=1')).body.entry[0].resource.id;
    const read = await get(`/fhir/Patient/${id}?_elements=birthDate,gender`);
    expect(Object.keys(read.body).sort()).toEqual(['birthDate', 'gender', 'id', 'meta', 'resourceType']);
    expect(read.body.meta.tag).toContainEqual(expect.objectContaining(SUBSETTED));
    expect((await get(`/fhir/Patient/${id}?_summary=count`)).status).toBe(400);
    const plain = await get(`/fhir/Patient/${id}`);
    expect(plain.body.meta.tag ?? []).not.toContainEqual(expect.objectContaining(SUBSETTED));
  });
});

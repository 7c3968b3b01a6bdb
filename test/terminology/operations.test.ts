/** FHIR terminology operations over HTTP: $translate, $lookup, $validate-code, and CodeSystem/ConceptMap reads. */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canonicalId, finishCodeSystem, insertConcepts, insertRelationships, loadConceptMap, parseConceptMap, upsertCodeSystem } from '../../terminology/index.ts';
import { authHeaders, startTestEngine, type TestEngine } from '../support/engine.ts';

const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/terminology/conceptmaps');
const fixture = (name: string): string => readFileSync(path.join(FIXTURES, name), 'utf8');

const KOSTOM = 'http://www.hl7korea.or.kr/CodeSystem/kostom';
const SNOMED = 'http://snomed.info/sct';
const LOCAL_DX = 'urn:anchorline:local/SNUH-DX';
const KCD = 'http://www.hl7korea.or.kr/CodeSystem/kostat-kcd-8';
const KOSTOM_MAP = 'http://hospital.example.org/fhir/ConceptMap/kostom-to-snomed';
const KCD_MAP = 'http://hospital.example.org/fhir/ConceptMap/local-dx-to-kcd';

let t: TestEngine;
let readKey: string;

beforeAll(async () => {
  t = await startTestEngine();
  await loadConceptMap(t.pool, parseConceptMap(fixture('kostom-to-snomed.csv'), 'csv', { url: KOSTOM_MAP, version: '2026.1', name: 'KostomToSnomedCt' }));
  await loadConceptMap(t.pool, parseConceptMap(fixture('local-to-kcd.json'), 'json'));
  // A tiny KCD-8 extract: enough for $lookup and $validate-code.
  await upsertCodeSystem(t.pool, { url: KCD, version: 'KCD-8 2021', name: 'KOSTAT_KCD_8', title: 'KOSTAT KCD-8', sourceFormat: 'kcd' });
  await insertConcepts(t.pool, KCD, [
    { code: 'E11', display: 'Type 2 diabetes mellitus', designations: [{ language: 'ko', value: '2형 당뇨병' }] },
    { code: 'E11.9', display: 'Type 2 diabetes mellitus without complications', designations: [{ language: 'ko', use: { system: SNOMED, code: '900000000000013009', display: 'Synonym' }, value: '합병증을 동반하지 않은 2형 당뇨병' }], properties: [{ code: 'kind', valueCode: 'code' }] },
    { code: 'E11.8', display: 'Type 2 diabetes mellitus with unspecified complications', active: false },
  ]);
  await insertRelationships(t.pool, KCD, [{ sourceCode: 'E11.9', typeCode: 'is-a', destinationCode: 'E11' }, { sourceCode: 'E11.8', typeCode: 'is-a', destinationCode: 'E11' }]);
  await finishCodeSystem(t.pool, KCD);
  const response = await fetch(`${t.httpUrl}/admin/api-keys`, { method: 'POST', headers: { ...authHeaders(), 'content-type': 'application/json' }, body: JSON.stringify({ name: 'reader', scopes: ['read'] }) });
  readKey = ((await response.json()) as { key: string }).key;
});
afterAll(async () => {
  await t?.destroy();
});

async function get(pathAndQuery: string, key = readKey): Promise<{ status: number; body: any; type: string | null }> {
  const response = await fetch(`${t.httpUrl}${pathAndQuery}`, { headers: { authorization: `Bearer ${key}` } });
  return { status: response.status, body: await response.json(), type: response.headers.get('content-type') };
}

async function post(pathname: string, body: unknown, contentType = 'application/fhir+json', key = readKey): Promise<{ status: number; body: any }> {
  const response = await fetch(`${t.httpUrl}${pathname}`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': contentType }, body: JSON.stringify(body) });
  return { status: response.status, body: await response.json() };
}

function param(parameters: any, name: string): any {
  return parameters.parameter.find((p: any) => p.name === name);
}

function matches(parameters: any): Array<Record<string, unknown>> {
  return parameters.parameter
    .filter((p: any) => p.name === 'match')
    .map((m: any) => Object.fromEntries(m.part.map((part: any) => [part.name, part.valueCode ?? part.valueCoding ?? part.valueUri])));
}

describe('ConceptMap/$translate', () => {
  it('translates KOSTOM to SNOMED CT (GET)', async () => {
    const { status, body, type } = await get(`/fhir/ConceptMap/$translate?system=${encodeURIComponent(KOSTOM)}&code=0010101`);
    expect(status).toBe(200);
    expect(type).toContain('application/fhir+json');
    expect(body.resourceType).toBe('Parameters');
    expect(param(body, 'result').valueBoolean).toBe(true);
    expect(matches(body)).toEqual([{ equivalence: 'equivalent', concept: { system: SNOMED, code: '22298006', display: 'Myocardial infarction' }, source: `${KOSTOM_MAP}|2026.1` }]);
  });

  it('translates a local code to KCD-8 with several targets (POST Parameters)', async () => {
    const { status, body } = await post('/fhir/ConceptMap/$translate', {
      resourceType: 'Parameters',
      parameter: [{ name: 'coding', valueCoding: { system: LOCAL_DX, code: 'DX-DM2' } }, { name: 'targetsystem', valueUri: KCD }],
    });
    expect(status).toBe(200);
    expect(param(body, 'result').valueBoolean).toBe(true);
    expect(matches(body).map((m) => [(m.concept as any).code, m.equivalence])).toEqual([['E11', 'wider'], ['E11.9', 'equivalent']]);
  });

  it('answers result false for an unmatched code and for an unknown one', async () => {
    const unmatched = await get(`/fhir/ConceptMap/$translate?system=${encodeURIComponent(KOSTOM)}&code=0010505`);
    expect(param(unmatched.body, 'result').valueBoolean).toBe(false);
    expect(matches(unmatched.body)).toEqual([{ equivalence: 'unmatched', source: `${KOSTOM_MAP}|2026.1` }]);
    const unknown = await get(`/fhir/ConceptMap/$translate?system=${encodeURIComponent(KOSTOM)}&code=nope`);
    expect(unknown.status).toBe(200);
    expect(param(unknown.body, 'result').valueBoolean).toBe(false);
    expect(param(unknown.body, 'message').valueString).toMatch(/no active ConceptMap maps code nope/);
  });

  it('filters by map url, target system and implicit value sets; translates in reverse', async () => {
    const q = (extra: string): string => `/fhir/ConceptMap/$translate?system=${encodeURIComponent(LOCAL_DX)}&code=DX-HTN${extra}`;
    expect(param((await get(q(`&url=${encodeURIComponent(KCD_MAP)}`))).body, 'result').valueBoolean).toBe(true);
    expect(param((await get(q(`&target=${encodeURIComponent(`${KCD}?fhir_vs`)}`))).body, 'result').valueBoolean).toBe(true);
    expect(param((await get(q(`&targetsystem=${encodeURIComponent(SNOMED)}`))).body, 'result').valueBoolean).toBe(false);
    const missingMap = await get(q(`&url=${encodeURIComponent('http://example.org/no-such-map')}`));
    expect(missingMap.status).toBe(404);
    expect(missingMap.body.issue[0].details.coding[0].code).toBe('ANCHORLINE_ERR_NOT_FOUND');

    const reverse = await get(`/fhir/ConceptMap/$translate?system=${encodeURIComponent(KCD)}&code=I10&reverse=true`);
    expect(matches(reverse.body)).toEqual([{ equivalence: 'equivalent', concept: { system: LOCAL_DX, code: 'DX-HTN' }, source: `${KCD_MAP}|1.0` }]);
  });

  it('works on one map by id, and refuses unknown or missing parameters', async () => {
    const byId = await get(`/fhir/ConceptMap/${canonicalId(KOSTOM_MAP)}/$translate?system=${encodeURIComponent(KOSTOM)}&code=0010404`);
    expect(matches(byId.body)[0]).toMatchObject({ equivalence: 'wider' });
    const typo = await get(`/fhir/ConceptMap/$translate?sytem=x&code=1`);
    expect(typo.status).toBe(400);
    expect(typo.body.issue[0].details.text).toMatch(/unknown parameter sytem/);
    expect((await get('/fhir/ConceptMap/$translate?code=1')).status).toBe(400);
    expect((await post('/fhir/ConceptMap/$translate', { resourceType: 'Patient' })).status).toBe(400);
  });

  it('answers at a percent-encoded $ too', async () => {
    const { status, body } = await get(`/fhir/ConceptMap/%24translate?system=${encodeURIComponent(KOSTOM)}&code=0010202`);
    expect(status).toBe(200);
    expect(param(body, 'result').valueBoolean).toBe(true);
    const instance = await get(`/fhir/ConceptMap/${canonicalId(KOSTOM_MAP)}/%24translate?system=${encodeURIComponent(KOSTOM)}&code=0010202`);
    expect(param(instance.body, 'result').valueBoolean).toBe(true);
    const lookup = await post('/fhir/CodeSystem/%24lookup', { resourceType: 'Parameters', parameter: [{ name: 'system', valueUri: KCD }, { name: 'code', valueCode: 'E11' }] });
    expect(lookup.status).toBe(200);
    const unknown = await get('/fhir/ConceptMap/%24closure');
    expect(unknown.status).toBe(404);
    expect(unknown.body.issue[0].details.text).toMatch(/no operation \$closure/);
  });

  it('needs a key with the read scope', async () => {
    const response = await fetch(`${t.httpUrl}/fhir/ConceptMap/$translate?system=a&code=b`);
    expect(response.status).toBe(401);
  });
});

describe('CodeSystem/$lookup', () => {
  it('gives name, version, display, designations and properties', async () => {
    const { status, body } = await get(`/fhir/CodeSystem/$lookup?system=${encodeURIComponent(KCD)}&code=E11.9`);
    expect(status).toBe(200);
    expect(param(body, 'name').valueString).toBe('KOSTAT KCD-8');
    expect(param(body, 'version').valueString).toBe('KCD-8 2021');
    expect(param(body, 'display').valueString).toBe('Type 2 diabetes mellitus without complications');
    expect(param(body, 'designation').part).toEqual([
      { name: 'language', valueCode: 'ko' },
      { name: 'use', valueCoding: { system: SNOMED, code: '900000000000013009', display: 'Synonym' } },
      { name: 'value', valueString: '합병증을 동반하지 않은 2형 당뇨병' },
    ]);
    const properties = body.parameter.filter((p: any) => p.name === 'property').map((p: any) => p.part);
    expect(properties).toContainEqual([{ name: 'code', valueCode: 'inactive' }, { name: 'value', valueBoolean: false }]);
    expect(properties).toContainEqual([{ name: 'code', valueCode: 'kind' }, { name: 'value', valueCode: 'code' }]);
    expect(properties).toContainEqual([{ name: 'code', valueCode: 'parent' }, { name: 'value', valueCode: 'E11' }]);
  });

  it('gives the display in the language asked for, when the concept has a designation in it', async () => {
    const korean = await get(`/fhir/CodeSystem/$lookup?system=${encodeURIComponent(KCD)}&code=E11&displayLanguage=ko-KR`);
    expect(param(korean.body, 'display').valueString).toBe('2형 당뇨병');
    const english = await get(`/fhir/CodeSystem/$lookup?system=${encodeURIComponent(KCD)}&code=E11&displayLanguage=fr`);
    expect(param(english.body, 'display').valueString).toBe('Type 2 diabetes mellitus');
  });

  it('lists only the properties asked for, children when asked (POST)', async () => {
    const { body } = await post('/fhir/CodeSystem/$lookup', {
      resourceType: 'Parameters',
      parameter: [{ name: 'coding', valueCoding: { system: KCD, code: 'E11' } }, { name: 'property', valueCode: 'child' }],
    }, 'application/json');
    const properties = body.parameter.filter((p: any) => p.name === 'property').map((p: any) => p.part[1].valueCode);
    expect(properties).toEqual(['E11.8', 'E11.9']);
  });

  it('answers 404 with a coded OperationOutcome for an unknown code or system', async () => {
    const code = await get(`/fhir/CodeSystem/$lookup?system=${encodeURIComponent(KCD)}&code=Z99.99`);
    expect(code.status).toBe(404);
    expect(code.body.resourceType).toBe('OperationOutcome');
    expect(code.body.issue[0].code).toBe('not-found');
    expect(code.body.issue[0].details.coding[0].code).toBe('ANCHORLINE_ERR_NOT_FOUND');
    const system = await get(`/fhir/CodeSystem/$lookup?system=${encodeURIComponent('http://example.org/none')}&code=1`);
    expect(system.status).toBe(404);
    const version = await get(`/fhir/CodeSystem/$lookup?system=${encodeURIComponent(KCD)}&code=E11&version=KCD-7`);
    expect(version.status).toBe(404);
    expect(version.body.issue[0].details.text).toMatch(/version KCD-7/);
  });
});

describe('CodeSystem/$validate-code', () => {
  const v = (query: string): Promise<{ status: number; body: any }> => get(`/fhir/CodeSystem/$validate-code?url=${encodeURIComponent(KCD)}&${query}`);

  it('validates a code, its display (or a designation) and reports an inactive one', async () => {
    const ok = await v('code=E11.9');
    expect(param(ok.body, 'result').valueBoolean).toBe(true);
    expect(param(ok.body, 'display').valueString).toBe('Type 2 diabetes mellitus without complications');
    expect(param((await v(`code=E11&display=${encodeURIComponent('2형 당뇨병')}`)).body, 'result').valueBoolean).toBe(true);
    const wrongDisplay = await v('code=E11&display=Asthma');
    expect(param(wrongDisplay.body, 'result').valueBoolean).toBe(false);
    expect(param(wrongDisplay.body, 'message').valueString).toMatch(/not a display/);
    const inactive = await v('code=E11.8');
    expect(param(inactive.body, 'result').valueBoolean).toBe(true);
    expect(param(inactive.body, 'message').valueString).toMatch(/inactive/);
  });

  it('answers result false for an unknown code or code system', async () => {
    expect(param((await v('code=Q99')).body, 'result').valueBoolean).toBe(false);
    const system = await get('/fhir/CodeSystem/$validate-code?url=http%3A%2F%2Fexample.org%2Fnone&code=1');
    expect(system.status).toBe(200);
    expect(param(system.body, 'result').valueBoolean).toBe(false);
  });

  it('validates a CodeableConcept and works on the CodeSystem by id', async () => {
    const { body } = await post('/fhir/CodeSystem/$validate-code', {
      resourceType: 'Parameters',
      parameter: [{ name: 'codeableConcept', valueCodeableConcept: { coding: [{ system: LOCAL_DX, code: 'DX-DM2' }, { system: KCD, code: 'E11.9' }] } }],
    });
    expect(param(body, 'result').valueBoolean).toBe(true);
    const byId = await get(`/fhir/CodeSystem/${canonicalId(KCD)}/$validate-code?code=E11`);
    expect(param(byId.body, 'result').valueBoolean).toBe(true);
  });
});

describe('CodeSystem and ConceptMap resources', () => {
  it('searches and reads the loaded code systems', async () => {
    const search = await get(`/fhir/CodeSystem?url=${encodeURIComponent(KCD)}`);
    expect(search.body).toMatchObject({ resourceType: 'Bundle', type: 'searchset', total: 1 });
    expect(search.body.entry[0].resource).toMatchObject({ resourceType: 'CodeSystem', url: KCD, version: 'KCD-8 2021', content: 'not-present', count: 3 });
    const read = await get(`/fhir/CodeSystem/${canonicalId(KCD)}`);
    expect(read.body.url).toBe(KCD);
    expect((await get('/fhir/CodeSystem/0000')).status).toBe(404);
  });

  it('searches and reads the active ConceptMaps', async () => {
    const all = await get('/fhir/ConceptMap');
    expect(all.body.total).toBe(2);
    const search = await get(`/fhir/ConceptMap?url=${encodeURIComponent(KOSTOM_MAP)}`);
    expect(search.body.entry[0].resource).toMatchObject({ resourceType: 'ConceptMap', url: KOSTOM_MAP, version: '2026.1', id: canonicalId(KOSTOM_MAP) });
    const read = await get(`/fhir/ConceptMap/${canonicalId(KCD_MAP)}`);
    expect(read.body.group[0].source).toBe(LOCAL_DX);
    expect((await get('/fhir/ConceptMap?title=x')).status).toBe(400);
  });

  it('leaves the other FHIR routes as they were', async () => {
    expect((await get('/fhir/Patient/does-not-exist')).status).toBe(404);
    expect((await get('/fhir/Patient?identifier=x')).body.resourceType).toBe('Bundle');
  });
});

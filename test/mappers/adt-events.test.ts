/**
 * ADT events applied in sequence, as the ingest job applies them: each message's drafts merged (mergeDraft) into
 * what the previous messages left. The visit's history is the point: where the patient was and when, across
 * transfers, discharges and their cancellations.
 */

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { describe, expect, it } from 'vitest';

import { parseHl7 } from '../../formats/hl7v2/parse.ts';
import { type MappingResult, defaultHl7MappingOptions, mapHl7Message, mergeDraft, validateFhirResource } from '../../mappers/index.ts';

const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'adt');

type Resource = Record<string, unknown>;

/** A store of current resources, keyed `${resourceType}/${id}`. */
class Store {
  readonly resources = new Map<string, Resource>();

  apply(result: MappingResult): this {
    for (const draft of result.drafts) {
      const key = `${draft.resourceType}/${draft.id}`;
      this.resources.set(key, mergeDraft(this.resources.get(key), draft));
    }
    return this;
  }

  only(resourceType: string): Resource {
    const found = [...this.resources.values()].filter((resource) => resource['resourceType'] === resourceType);
    expect(found, resourceType).toHaveLength(1);
    return found[0]!;
  }
}

function map(text: string): MappingResult {
  return mapHl7Message(parseHl7(text), defaultHl7MappingOptions);
}

function fixture(name: string): MappingResult {
  return map(readFileSync(path.join(FIXTURES, `${name}.hl7`), 'utf8').replace(/\r\n|\n/g, '\r'));
}

/** A segment from field number -> value. */
function segment(name: string, fields: Record<number, string>): string {
  const last = Math.max(0, ...Object.keys(fields).map(Number));
  return [name, ...Array.from({ length: last }, (_, i) => fields[i + 1] ?? '')].join('|');
}

/** One ADT message about visit V1 of patient MRN1; `time` is EVN-2 (local Seoul time), `pv1` the PV1 fields. */
function adt(event: string, time: string, pv1: Record<number, string>, extra: string[] = []): string {
  return [
    `MSH|^~\\&|HIS|HOSP|||${time}||ADT^${event}|C-${event}-${time}|P|2.5.1`,
    segment('EVN', { 1: event, 2: time }),
    segment('PID', { 1: '1', 3: 'MRN1^^^HOSP^MR', 5: 'KIM^MINSU' }),
    segment('PV1', { 1: '1', 2: 'I', 19: 'V1^^^HOSP^VN', ...pv1 }),
    ...extra,
  ].join('\r');
}

const at = (time: string): string => `${time.slice(0, 4)}-${time.slice(4, 6)}-${time.slice(6, 8)}T${time.slice(8, 10)}:${time.slice(10, 12)}:00+09:00`;

/** An Encounter.location entry's place: the Location the PL names (mappers/hl7v2/directory.ts), shown as PL-1^PL-2^PL-3. */
const place = (display: string): unknown => ({ reference: expect.stringMatching(/^Location\/[0-9a-f-]{36}$/), display });

function expectValid(store: Store): void {
  for (const resource of store.resources.values()) expect(validateFhirResource(resource), `${String(resource['resourceType'])}`).toEqual([]);
}

describe('location history', () => {
  it('A01 -> A02 -> A02 -> A12 -> A03: each transfer closes the bed before, the cancel reopens it, the discharge closes the last', () => {
    const store = new Store();
    store.apply(map(adt('A01', '202408150800', { 3: 'W71^0712^B', 44: '202408150800' })));
    store.apply(map(adt('A02', '202408161000', { 3: 'W82^0821^A', 6: 'W71^0712^B' })));
    let encounter = store.only('Encounter');
    expect(encounter['status']).toBe('in-progress');
    expect(encounter['location']).toEqual([
      { location: place('W71^0712^B'), status: 'completed', period: { start: at('202408150800'), end: at('202408161000') } },
      { location: place('W82^0821^A'), status: 'active', period: { start: at('202408161000') } },
    ]);

    store.apply(map(adt('A02', '202408171500', { 3: 'ICU^03', 6: 'W82^0821^A' })));
    store.apply(map(adt('A12', '202408171530', { 3: 'W82^0821^A' })));
    encounter = store.only('Encounter');
    // The cancelled transfer is gone; the bed it left is current again, from when the patient arrived there.
    expect(encounter['location']).toEqual([
      { location: place('W71^0712^B'), status: 'completed', period: { start: at('202408150800'), end: at('202408161000') } },
      { location: place('W82^0821^A'), status: 'active', period: { start: at('202408161000') } },
    ]);
    expect(encounter['status']).toBe('in-progress');

    store.apply(map(adt('A03', '202408201400', { 3: 'W82^0821^A', 45: '202408201400' })));
    encounter = store.only('Encounter');
    expect(encounter['status']).toBe('finished');
    expect(encounter['period']).toEqual({ start: at('202408150800'), end: at('202408201400') });
    expect(encounter['location']).toEqual([
      { location: place('W71^0712^B'), status: 'completed', period: { start: at('202408150800'), end: at('202408161000') } },
      { location: place('W82^0821^A'), status: 'completed', period: { start: at('202408161000'), end: at('202408201400') } },
    ]);
    expectValid(store);
  });

  it('the same story from the fixture files of one sender (A01, A02, A12, A03, A13)', () => {
    const store = new Store();
    for (const name of ['a01-admit-with-visit', 'a02-transfer', 'a12-cancel-transfer']) store.apply(fixture(name));
    expect(store.only('Encounter')['location']).toEqual([{ location: place('W71^0712^B'), status: 'active', period: { start: '2024-08-15T08:00:00+09:00' } }]);

    store.apply(fixture('a03-discharge-with-diagnoses'));
    let encounter = store.only('Encounter');
    expect(encounter).toMatchObject({ status: 'finished', period: { start: '2024-08-15T08:00:00+09:00', end: '2024-08-20T14:00:00+09:00' } });
    // Admission and discharge each set their half of hospitalization.
    expect(Object.keys(encounter['hospitalization'] as object).sort()).toEqual(['admitSource', 'dischargeDisposition']);
    // The patient, the visit and its three diagnoses, beside the people and places they name (Organization, Location,
    // Practitioner) and each message's Provenance.
    const named = new Set(['Organization', 'Location', 'Practitioner', 'Provenance']);
    expect([...store.resources.values()].filter((resource) => !named.has(String(resource['resourceType'])))).toHaveLength(5);

    store.apply(fixture('a13-cancel-discharge'));
    encounter = store.only('Encounter');
    expect(encounter['status']).toBe('in-progress');
    expect(encounter['period']).toEqual({ start: '2024-08-15T08:00:00+09:00' });
    expect(encounter['location']).toEqual([{ location: place('W71^0712^B'), status: 'active', period: { start: '2024-08-15T08:00:00+09:00' } }]);
    expectValid(store);
  });

  it('a resent message changes nothing', () => {
    const transfer = adt('A02', '202408161000', { 3: 'W82', 6: 'W71' });
    const once = new Store().apply(map(adt('A01', '202408150800', { 3: 'W71' }))).apply(map(transfer));
    const twice = new Store().apply(map(adt('A01', '202408150800', { 3: 'W71' }))).apply(map(transfer)).apply(map(transfer));
    expect([...twice.resources.values()]).toEqual([...once.resources.values()]);
    const cancel = adt('A12', '202408161100', { 3: 'W71' });
    expect([...once.apply(map(cancel)).apply(map(cancel)).resources.values()]).toEqual([...new Store().apply(map(adt('A01', '202408150800', { 3: 'W71' }))).apply(map(transfer)).apply(map(cancel)).resources.values()]);
  });

  it('an A08 restating the location is not a move; one naming another bed moves the patient at the event time', () => {
    const store = new Store().apply(map(adt('A01', '202408150800', { 3: 'W71' })));
    store.apply(map(adt('A08', '202408151200', { 3: 'W71' })));
    expect(store.only('Encounter')['location']).toHaveLength(1);
    store.apply(map(adt('A08', '202408151300', { 3: 'W72' })));
    expect(store.only('Encounter')['location']).toEqual([
      { location: place('W71'), status: 'completed', period: { start: at('202408150800'), end: at('202408151300') } },
      { location: place('W72'), status: 'active', period: { start: at('202408151300') } },
    ]);
  });

  it('a preadmission plans the bed; the admission makes it current', () => {
    const store = new Store().apply(map(adt('A05', '202408140900', { 2: 'P', 3: 'W71' })));
    expect(store.only('Encounter')).toMatchObject({ status: 'planned', location: [{ location: place('W71'), status: 'planned' }] });
    store.apply(map(adt('A01', '202408150800', { 3: 'W71', 44: '202408150800' })));
    expect(store.only('Encounter')).toMatchObject({
      status: 'in-progress',
      location: [{ location: place('W71'), status: 'active', period: { start: at('202408150800') } }],
    });
    expectValid(store);
  });
});

describe('cancellations', () => {
  it('A11 cancels the visit and keeps what it recorded', () => {
    const store = new Store().apply(map(adt('A01', '202408150800', { 3: 'W71', 44: '202408150800' })));
    store.apply(map(adt('A11', '202408150900', { 3: 'W71' })));
    const encounter = store.only('Encounter');
    expect(encounter['status']).toBe('cancelled');
    expect(encounter['period']).toEqual({ start: at('202408150800') });
    expect(encounter['location']).toEqual([{ location: place('W71'), status: 'active', period: { start: at('202408150800') } }]);
    expectValid(store);
  });

  it('A11 as a fixture: cancelled, after the IG ConceptMap table-hl70003-to-encounter-status', () => {
    const store = new Store().apply(fixture('a01-admit-with-visit')).apply(fixture('a11-cancel-admit'));
    expect(store.only('Encounter')['status']).toBe('cancelled');
  });

  it('A13 undoes the discharge: in progress again, no end, the last bed current', () => {
    const store = new Store().apply(map(adt('A01', '202408150800', { 3: 'W71', 44: '202408150800' })));
    store.apply(map(adt('A03', '202408201400', { 3: 'W71', 44: '202408150800', 45: '202408201400' })));
    expect(store.only('Encounter')).toMatchObject({ status: 'finished', period: { end: at('202408201400') } });
    store.apply(map(adt('A13', '202408201600', { 3: 'W71', 44: '202408150800' })));
    const encounter = store.only('Encounter');
    expect(encounter['status']).toBe('in-progress');
    expect(encounter['period']).toEqual({ start: at('202408150800') });
    expect(encounter['location']).toEqual([{ location: place('W71'), status: 'active', period: { start: at('202408150800') } }]);
    // And a second discharge closes it again.
    store.apply(map(adt('A03', '202408211000', { 3: 'W71' })));
    expect(store.only('Encounter')).toMatchObject({ status: 'finished', period: { start: at('202408150800'), end: at('202408211000') } });
    expectValid(store);
  });

  it('A03 without a discharge time ends the visit at the event time and keeps the admit time', () => {
    const store = new Store().apply(map(adt('A01', '202408150800', { 3: 'W71', 44: '202408150800' })));
    store.apply(map(adt('A03', '202408201400', { 3: 'W71' })));
    expect(store.only('Encounter')['period']).toEqual({ start: at('202408150800'), end: at('202408201400') });
  });
});

describe('class changes', () => {
  it('A04 -> A06 -> A07 records each class with its period in classHistory', () => {
    const store = new Store().apply(map(adt('A04', '202408150800', { 2: 'O', 3: 'ER', 44: '202408150800' })));
    store.apply(map(adt('A06', '202408151200', { 2: 'I', 3: 'W71', 6: 'ER' })));
    let encounter = store.only('Encounter');
    expect(encounter['class']).toMatchObject({ code: 'IMP' });
    expect(encounter['classHistory']).toEqual([
      { class: expect.objectContaining({ code: 'AMB' }), period: { start: at('202408150800'), end: at('202408151200') } },
      { class: expect.objectContaining({ code: 'IMP' }), period: { start: at('202408151200') } },
    ]);
    // A07 without PV1-2: the event itself says the patient is no longer admitted.
    store.apply(map(adt('A07', '202408181000', { 2: '', 3: 'OPD' })));
    encounter = store.only('Encounter');
    expect(encounter['class']).toMatchObject({ code: 'AMB' });
    expect((encounter['classHistory'] as unknown[]).length).toBe(3);
    expect((encounter['location'] as Array<{ status: string }>).map((entry) => entry.status)).toEqual(['completed', 'completed', 'active']);
    expectValid(store);
  });

  it('A06 with a new visit number finishes the prior visit named in MRG-5', () => {
    const store = new Store().apply(map(adt('A04', '202408150800', { 2: 'E', 3: 'ER', 19: 'E1^^^HOSP^VN', 44: '202408150800' })));
    const a06 = adt('A06', '202408151200', { 2: 'I', 3: 'W71', 6: 'ER', 19: 'V2^^^HOSP^VN' }, ['MRG|MRN1^^^HOSP^MR||||E1^^^HOSP^VN']);
    // MRG follows PID in ADT_A06; where it sits does not matter to the mapping.
    store.apply(map(a06));
    const encounters = [...store.resources.values()].filter((resource) => resource['resourceType'] === 'Encounter');
    expect(encounters.map((encounter) => [(encounter['identifier'] as Array<{ value: string }>)[0]!.value, encounter['status']])).toEqual([
      ['E1', 'finished'],
      ['V2', 'in-progress'],
    ]);
    expect(encounters[0]!['period']).toEqual({ start: at('202408150800'), end: at('202408151200') });
    expect(encounters[0]!['location']).toEqual([{ location: place('ER'), status: 'completed', period: { start: at('202408150800'), end: at('202408151200') } }]);
    expectValid(store);
  });
});

describe('merges', () => {
  it('A40 reports the merge and maps the surviving patient', () => {
    const result = fixture('a40-merge');
    // The surviving patient, the sender (MSH-4, an Organization) and where it came from (mappers/hl7v2/provenance.ts).
    // MSH-4 is an Organization, and the assigner of the patient's identifiers: it comes first.
    expect(result.drafts.map((draft) => draft.resourceType)).toEqual(['Organization', 'Patient', 'Provenance']);
    expect(result.merges).toEqual([{ sourceId: expect.any(String), targetId: result.drafts[1]!.id }]);
    // The source is the patient an earlier message created under the retired MRN.
    const earlier = map(
      ['MSH|^~\\&|HIS|SEOULGEN|||20240801||ADT^A04|C1|P|2.5.1', 'PID|1||12399999^^^SEOULGEN^MR||KIM^MIN SU'].join('\r'),
    );
    expect(result.merges![0]!.sourceId).toBe(earlier.drafts.find((draft) => draft.resourceType === 'Patient')!.id);
  });

  it('messages that merge nothing report no merges', () => {
    expect(fixture('a01-admit-with-visit')).not.toHaveProperty('merges');
  });
});

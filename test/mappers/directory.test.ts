/**
 * The people, organizations and places messages name (mappers/hl7v2/directory.ts): Practitioner, Organization,
 * Location and PractitionerRole drafts with deterministic ids, and the literal references the resources that name
 * them carry, each to a draft of the same message that comes before the reference.
 */

import { describe, expect, it } from 'vitest';

import { parseHl7 } from '../../formats/hl7v2/parse.ts';
import { type MappingResult, type ResourceDraft, defaultHl7MappingOptions, deterministicId, mapHl7Message, mergeDraft, validateFhirResource } from '../../mappers/index.ts';

const DIRECTORY_TYPES = new Set(['Practitioner', 'Organization', 'Location', 'PractitionerRole']);
const HOSP = 'urn:anchorline:authority:SEOULGEN';

function map(...segments: string[]): MappingResult {
  return mapHl7Message(parseHl7(segments.join('\r')), defaultHl7MappingOptions);
}

function msh(type: string, control: string, facility = 'SEOULGEN'): string {
  return `MSH|^~\\&|HIS|${facility}|ANCHORLINE|ANCHORLINE|20240815083015||${type}|${control}|P|2.5.1`;
}

/** A segment from field number -> value. */
function segment(name: string, fields: Record<number, string>): string {
  const last = Math.max(0, ...Object.keys(fields).map(Number));
  return [name, ...Array.from({ length: last }, (_, i) => fields[i + 1] ?? '')].join('|');
}

const PID = 'PID|1||12345678^^^SEOULGEN^MR||KIM^MINSU||19880101|M';

function draftsOf(result: MappingResult, resourceType: string): ResourceDraft[] {
  return result.drafts.filter((draft) => draft.resourceType === resourceType);
}

function only(result: MappingResult, resourceType: string): ResourceDraft {
  const found = draftsOf(result, resourceType);
  expect(found, resourceType).toHaveLength(1);
  return found[0]!;
}

function byReference(result: MappingResult, reference: string): ResourceDraft {
  const found = result.drafts.find((draft) => `${draft.resourceType}/${draft.id}` === reference);
  expect(found, reference).toBeDefined();
  return found!;
}

/** Every `reference` member anywhere in a value. */
function referencesIn(value: unknown, found: string[] = []): string[] {
  if (Array.isArray(value)) for (const item of value) referencesIn(item, found);
  else if (value !== null && typeof value === 'object') {
    for (const [name, member] of Object.entries(value)) {
      if (name === 'reference' && typeof member === 'string') found.push(member);
      else referencesIn(member, found);
    }
  }
  return found;
}

/**
 * Every reference to a practitioner, organization, location or role is literal and names a draft of the same message
 * that comes before the draft holding the reference; every directory draft is valid FHIR R4.
 */
function expectResolvedAndValid(result: MappingResult): void {
  const before = new Set<string>();
  for (const draft of result.drafts) {
    for (const reference of referencesIn(draft)) {
      if (DIRECTORY_TYPES.has(reference.split('/')[0]!)) expect(before.has(reference), `${draft.resourceType} -> ${reference}`).toBe(true);
    }
    if (DIRECTORY_TYPES.has(draft.resourceType)) expect(validateFhirResource(mergeDraft(undefined, draft)), `${draft.resourceType}/${draft.id}`).toEqual([]);
    before.add(`${draft.resourceType}/${draft.id}`);
  }
}

const ADMIT = [
  msh('ADT^A01^ADT_A01', 'A1'),
  'EVN|A01|20240815083000',
  PID,
  // PV1-3 bed W71/0712/B at SEOULGEN on floor 7 of building MAIN; PV1-6 prior ER; PV1-7 attending and PV1-17 admitting
  // are one doctor, PV1-8 a referrer sent by name only.
  segment('PV1', {
    1: '1',
    2: 'I',
    3: 'W71^0712^B^SEOULGEN^^N^MAIN^7',
    7: 'D1234^LEE^JIHOON^^^DR^^^^^^^^^^^^F',
    8: '^PARK^MINJI^^^DR',
    17: 'D1234^LEE^JIHOON^^^DR^^^^^^^^^^^^F',
    19: 'V20240815001^^^SEOULGEN^VN',
  }),
  'IN1|1|GOLD^Gold plan^L|NHIS01|National Health Insurance Service|123 Main St^^Wonju^^26464^KOR||033-736-1234^WPN^PH',
];

describe('Practitioner', () => {
  it('one practitioner in two messages is one resource, found by the identifier its id is made from', () => {
    const admit = map(...ADMIT);
    // XCN-9 empty in the admission, sent in the result: both take SEOULGEN, MSH-4 being SEOULGEN.
    const result = map(
      msh('ORU^R01^ORU_R01', 'R1'),
      PID,
      'ORC|RE|ORD1^OCS|LAB1^LIS',
      'OBR|1|ORD1^OCS|LAB1^LIS|GLU^Glucose^L|||20240903081000||||||||||||||20240903101500||CH|F',
      'OBX|1|NM|2345-7^Glucose^LN||105|mg/dL|70-99|H|||F|||20240903094500||D1234^LEE^J^^^^^^SEOULGEN',
    );
    const expectedId = deterministicId('Practitioner', HOSP, 'D1234');
    expect(only(admit, 'Practitioner').id).toBe(expectedId);
    expect(only(result, 'Practitioner').id).toBe(expectedId);
    expect(only(admit, 'Practitioner')['identifier']).toEqual([
      expect.objectContaining({ system: HOSP, value: 'D1234', assigner: { reference: `Organization/${deterministicId('Organization', HOSP)}`, display: 'SEOULGEN' } }),
    ]);
    expect(only(result, 'Observation')['performer']).toEqual([{ reference: `Practitioner/${expectedId}`, display: 'J LEE' }]);
  });

  it('a message that says less keeps what another said; one that says more updates it', () => {
    const named = map(...ADMIT);
    const idOnly = map(msh('ORM^O01', 'O1'), PID, 'ORC|NW|ORD9^OCS||||||||||D1234', 'OBR|1|ORD9^OCS||GLU^Glucose^L');
    const renamed = map(msh('ORM^O01', 'O2'), PID, 'ORC|NW|ORD9^OCS||||||||||D1234^LEE^JI-HOON^^^DR^MD', 'OBR|1|ORD9^OCS||GLU^Glucose^L');
    const id = deterministicId('Practitioner', HOSP, 'D1234');
    let stored = mergeDraft(undefined, only(named, 'Practitioner'));
    stored = mergeDraft(stored, only(idOnly, 'Practitioner'));
    expect(stored['name']).toEqual([{ family: 'LEE', given: ['JIHOON'], prefix: ['DR'] }]);
    stored = mergeDraft(stored, only(renamed, 'Practitioner'));
    expect(stored).toMatchObject({ id, name: [{ family: 'LEE', given: ['JI-HOON'], prefix: ['DR'], suffix: ['MD'] }] });
    expect(only(idOnly, 'ServiceRequest')['requester']).toEqual({ reference: `Practitioner/${id}` });
  });

  it('two mentions in one message are one draft; a person sent by name only stays a display', () => {
    const result = map(...ADMIT);
    const encounter = only(result, 'Encounter');
    const participants = mergeDraft(undefined, encounter)['participant'] as Array<{ type: Array<{ coding: Array<{ code: string }> }>; individual: { reference?: string; display: string } }>;
    expect(participants.map((participant) => [participant.type[0]!.coding[0]!.code, participant.individual])).toEqual([
      ['ATND', { reference: `Practitioner/${deterministicId('Practitioner', HOSP, 'D1234')}`, display: 'DR LEE JIHOON' }],
    ]);
    // The default participant source is PV1-7; with every source, the referrer is a name without a resource.
    const all = mapHl7Message(parseHl7(ADMIT.join('\r')), { ...defaultHl7MappingOptions, fieldSources: { 'Encounter.participant': ['PV1-7', 'PV1-8', 'PV1-17'] } });
    const individuals = (mergeDraft(undefined, only(all, 'Encounter'))['participant'] as Array<{ individual: Record<string, string> }>).map((participant) => participant.individual);
    expect(individuals[1]).toEqual({ display: 'DR MINJI PARK' });
    expect(individuals[2]).toEqual(individuals[0]);
    expect(draftsOf(all, 'Practitioner')).toHaveLength(1);
    expectResolvedAndValid(all);
  });
});

describe('Location', () => {
  it("a bed's Location is part of its room, the room of the point of care, the point of care of the facility", () => {
    const result = map(...ADMIT);
    const entry = (only(result, 'Encounter')['location'] as { entry: { location: { reference: string; display: string } } }).entry;
    expect(entry.location.display).toBe('W71^0712^B');
    const bed = byReference(result, entry.location.reference);
    expect(bed).toMatchObject({ name: 'B', mode: 'instance', physicalType: { coding: [{ code: 'bd' }] } });
    const room = byReference(result, (bed['partOf'] as { reference: string }).reference);
    expect(room).toMatchObject({ name: '0712', physicalType: { coding: [{ code: 'ro' }] } });
    // PL-6 N: the point of care is a nursing unit, a ward.
    const ward = byReference(result, (room['partOf'] as { reference: string }).reference);
    expect(ward).toMatchObject({ name: 'W71', physicalType: { coding: [{ code: 'wa' }] } });
    const facility = byReference(result, (ward['partOf'] as { reference: string }).reference);
    expect(facility).toMatchObject({ name: 'SEOULGEN', physicalType: { coding: [{ code: 'si' }] } });
    expect(facility).not.toHaveProperty('partOf');
    // Floor 7 of building MAIN, as the IG relates them: the floor in the building, the building in the facility.
    const floor = draftsOf(result, 'Location').find((location) => location['name'] === '7')!;
    const building = byReference(result, (floor['partOf'] as { reference: string }).reference);
    expect(building).toMatchObject({ name: 'MAIN', physicalType: { coding: [{ code: 'bu' }] }, partOf: { reference: `Location/${facility.id}` } });
    expect(bed.id).toBe(deterministicId('Location', HOSP, 'poc', 'W71', 'room', '0712', 'bed', 'B'));
    expectResolvedAndValid(result);
  });

  it('the same bed sent with and without PL-4 is one Location when PL-4 is the sender', () => {
    const withFacility = map(msh('ADT^A08', 'U1'), PID, segment('PV1', { 1: '1', 2: 'I', 3: 'W71^0712^B^SEOULGEN', 19: 'V1^^^SEOULGEN^VN' }));
    const without = map(msh('ADT^A08', 'U2'), PID, segment('PV1', { 1: '1', 2: 'I', 3: 'W71^0712^B', 19: 'V1^^^SEOULGEN^VN' }));
    const bedOf = (result: MappingResult): string => (only(result, 'Encounter')['location'] as { entry: { location: { reference: string } } }).entry.location.reference;
    expect(bedOf(without)).toBe(bedOf(withFacility));
    // Without PL-4 there is no facility Location to be part of; the stored one stays (an update draft).
    expect(draftsOf(without, 'Location').map((location) => location['name'])).toEqual(['W71', '0712', 'B']);
    // Another sender's ward W71 is another ward.
    const other = map(msh('ADT^A08', 'U3', 'BUSANGEN'), PID, segment('PV1', { 1: '1', 2: 'I', 3: 'W71^0712^B', 19: 'V1^^^BUSANGEN^VN' }));
    expect(bedOf(other)).not.toBe(bedOf(without));
    // PL-4 naming the sender by namespace is MSH-4, OID and all: the facility Location carries the OID.
    const oidSender = 'BUSANMC^1.2.410.200090.1^ISO';
    const named = map(msh('ADT^A08', 'U4', oidSender), PID, segment('PV1', { 1: '1', 2: 'I', 3: '7W^701^2^BUSANMC', 19: 'V2^^^BUSANMC^VN' }));
    const unnamed = map(msh('ADT^A08', 'U5', oidSender), PID, segment('PV1', { 1: '1', 2: 'I', 3: '7W^701^2', 19: 'V2^^^BUSANMC^VN' }));
    expect(bedOf(unnamed)).toBe(bedOf(named));
    expect(draftsOf(named, 'Location')[0]).toMatchObject({ name: 'BUSANMC', identifier: [{ system: 'urn:ietf:rfc:3986', value: 'urn:oid:1.2.410.200090.1' }] });
  });

  it('the prior, temporary and pending locations are Locations too; the history refers to the assigned and prior ones', () => {
    const result = map(msh('ADT^A02^ADT_A02', 'T1'), 'EVN|A02|20240816101500', PID, 'PV1|1|I|W82^0821^A|||W71^0712^B|||||TMP^1||||||||V1^^^SEOULGEN^VN|||||||||||||||||||||||W90^0901^C');
    const names = draftsOf(result, 'Location').map((location) => location['name']);
    expect(names).toEqual(expect.arrayContaining(['W82', '0821', 'A', 'W71', '0712', 'B', 'TMP', 'W90', '0901', 'C']));
    const operation = only(result, 'Encounter')['location'] as { entry: { location: { reference: string } }; prior: { location: { reference: string } } };
    expect(byReference(result, operation.prior.location.reference)['name']).toBe('B');
    expect(byReference(result, operation.entry.location.reference)['name']).toBe('A');
    expectResolvedAndValid(result);
  });

  it('an appointment location is a Location', () => {
    const result = map(
      msh('SIU^S12^SIU_S12', 'S1'),
      segment('SCH', { 1: 'A1^OCS', 2: 'F1^EZ', 6: 'NEW^New^L', 7: 'ROUTINE^Routine^HL70276', 11: '^^30^20240910093000^20240910100000', 25: 'Booked' }),
      PID,
      'RGS|1|A',
      'AIL|1|A|IM^201^^SEOULGEN',
      'AIP|1|A|D1234^LEE^JIHOON|ATND^Attending^HL70443',
    );
    const actors = (only(result, 'Appointment')['participant'] as Array<{ actor: { reference?: string } }>).map((participant) => participant.actor.reference?.split('/')[0]);
    expect(actors).toEqual(expect.arrayContaining(['Patient', 'Location', 'Practitioner']));
    expectResolvedAndValid(result);
  });
});

describe('Organization and PractitionerRole', () => {
  it('MSH-4 is an Organization in every message; the insurer is one, keyed by IN1-3, with its address and number', () => {
    const result = map(...ADMIT);
    const sender = byReference(result, `Organization/${deterministicId('Organization', HOSP)}`);
    expect(sender['identifier']).toEqual([{ value: 'SEOULGEN' }]);
    const payor = (only(result, 'Coverage')['payor'] as Array<{ reference: string; display: string }>)[0]!;
    expect(payor).toEqual({ reference: `Organization/${deterministicId('Organization', HOSP, 'NHIS01')}`, display: 'National Health Insurance Service' });
    expect(byReference(result, payor.reference)).toMatchObject({
      name: 'National Health Insurance Service',
      identifier: [{ system: HOSP, value: 'NHIS01' }],
      address: [{ city: 'Wonju', postalCode: '26464' }],
      telecom: [{ system: 'phone', value: '033-736-1234', use: 'work' }],
    });
    expectResolvedAndValid(result);
  });

  it('an insurer sent by name only is one Organization per sender, however its name is spaced or cased', () => {
    const payorOf = (name: string, facility = 'SEOULGEN'): string =>
      (only(map(msh('ADT^A08', 'N1', facility), PID, `IN1|1|GOLD^Gold^L||${name}`), 'Coverage')['payor'] as Array<{ reference: string }>)[0]!.reference;
    expect(payorOf('Samsung  Fire')).toBe(payorOf('SAMSUNG FIRE'));
    expect(payorOf('Samsung Fire', 'BUSANGEN')).not.toBe(payorOf('Samsung Fire'));
  });

  it('OBX-23 is the performing Organization; with OBX-25 the performer is the medical director PractitionerRole there', () => {
    const result = map(
      msh('ORU^R01^ORU_R01', 'R2'),
      PID,
      'ORC|RE|ORD1^OCS|LAB1^LIS',
      segment('OBR', { 1: '1', 2: 'ORD1^OCS', 3: 'LAB1^LIS', 4: 'GLU^Glucose^L', 7: '20240903081000', 22: '20240903101500', 24: 'CH', 25: 'F', 32: 'P77&KANG&MINHO&&&&&&SEOULGEN', 34: 'T12&YOON&SORA' }),
      segment('OBX', { 1: '1', 2: 'NM', 3: '2345-7^Glucose^LN', 5: '105', 6: 'mg/dL', 7: '70-99', 8: 'H', 11: 'F', 14: '20240903094500', 23: 'Green Lab^^^^^SEOULGEN^^^^GL01', 24: '1 Lab St^^Seoul', 25: 'M100^CHOI^EUNJI^^^DR' }),
      segment('OBX', { 1: '2', 2: 'NM', 3: '2160-0^Creatinine^LN', 5: '0.9', 6: 'mg/dL', 7: '0.7-1.3', 8: 'N', 11: 'F', 14: '20240903094500', 23: 'Green Lab^^^^^SEOULGEN^^^^GL01' }),
    );
    const lab = `Organization/${deterministicId('Organization', HOSP, 'GL01')}`;
    expect(byReference(result, lab)).toMatchObject({ name: 'Green Lab', address: [{ line: ['1 Lab St'], city: 'Seoul' }] });
    const [first, second] = draftsOf(result, 'Observation');
    const role = (first!['performer'] as Array<{ reference: string }>)[0]!;
    expect(byReference(result, role.reference)).toMatchObject({
      resourceType: 'PractitionerRole',
      practitioner: { reference: `Practitioner/${deterministicId('Practitioner', HOSP, 'M100')}` },
      organization: { reference: lab, display: 'Green Lab' },
      code: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0912', code: 'MDIR' }] }],
    });
    expect(second!['performer']).toEqual([{ reference: lab, display: 'Green Lab' }]);
    const report = only(result, 'DiagnosticReport');
    expect(report['resultsInterpreter']).toEqual([{ reference: `Practitioner/${deterministicId('Practitioner', HOSP, 'P77')}`, display: 'MINHO KANG' }]);
    expect(report['performer']).toEqual([
      { reference: lab, display: 'Green Lab' },
      { reference: `Practitioner/${deterministicId('Practitioner', HOSP, 'T12')}`, display: 'SORA YOON' },
    ]);
    expectResolvedAndValid(result);
  });

  it('references from immunizations, documents and medication orders are literal too', () => {
    const vxu = map(
      msh('VXU^V04^VXU_V04', 'V1'),
      PID,
      segment('ORC', { 1: 'RE', 3: 'IZ-1^REG', 12: 'OP1^ORDER^ER' }),
      segment('RXA', { 1: '0', 2: '1', 3: '20240110', 5: '08^HEPB^CVX', 6: '0.5', 7: 'mL', 9: '00^New^NIP001', 10: 'AP1^ADMIN^ISTER' }),
    );
    expect((only(vxu, 'Immunization')['performer'] as Array<{ actor: { reference: string } }>).map((performer) => performer.actor.reference)).toEqual([
      `Practitioner/${deterministicId('Practitioner', HOSP, 'AP1')}`,
      `Practitioner/${deterministicId('Practitioner', HOSP, 'OP1')}`,
    ]);
    const mdm = map(
      msh('MDM^T02^MDM_T02', 'M1'),
      PID,
      segment('TXA', { 1: '1', 2: 'DS', 3: 'TX', 4: '20240101120000', 9: 'AU1^AUTHOR^ANNE', 12: 'DOC1^HIS', 17: 'AU', 19: 'AV' }),
      'OBX|1|TX|DS^Discharge summary^L||text of the summary||||||F',
    );
    expect(only(mdm, 'DocumentReference')['author']).toEqual([{ reference: `Practitioner/${deterministicId('Practitioner', HOSP, 'AU1')}`, display: 'ANNE AUTHOR' }]);
    const rde = map(msh('RDE^O11^RDE_O11', 'D1'), PID, segment('ORC', { 1: 'NW', 2: 'RX1^OCS', 12: 'PR1^PRESCRIBER^PAT' }), 'RXE|^^^20240101|ASA^Aspirin^L|100||mg');
    expect(only(rde, 'MedicationRequest')['requester']).toEqual({ reference: `Practitioner/${deterministicId('Practitioner', HOSP, 'PR1')}`, display: 'PAT PRESCRIBER' });
    for (const result of [vxu, mdm, rde]) expectResolvedAndValid(result);
  });
});

/**
 * What a Patient says about others (mappers/hl7v2/adt-patient.ts): the Organization that assigned each identifier
 * (CX-4, else MSH-4), the primary care of PD1-3 and PD1-4 as generalPractitioner, and the NK1 contacts as
 * Patient.contact beside their RelatedPersons, merged across messages without duplicates.
 */

import { describe, expect, it } from 'vitest';

import { defaultHl7MappingOptions, deterministicId, mergeDraft } from '../../mappers/index.ts';

import { SEOULGEN, byReference, draftsOf, expectResolvedAndValid, map, msh, only, segment } from './hl7v2-references.ts';

const PID = 'PID|1||12345678^^^SEOULGEN^MR~990101-1234567^^^MOIS&1.2.410.100001.1&ISO^NI||KIM^MINSU||19880101|M|||||||||||123-45-6789';
const sender = `Organization/${deterministicId('Organization', SEOULGEN)}`;

describe('Patient.identifier.assigner', () => {
  it("each identifier names its CX-4 authority's Organization; one without CX-4 names MSH-4's; the SSN names none", () => {
    const result = map([msh('ADT^A08^ADT_A01', 'I1'), 'EVN|A08|20240815083000', PID.replace('12345678^^^SEOULGEN^MR', '12345678^^^^MR')]);
    const mois = `Organization/${deterministicId('Organization', 'urn:oid:1.2.410.100001.1')}`;
    expect(only(result, 'Patient')['identifier']).toEqual([
      { type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'MR' }] }, system: SEOULGEN, value: '12345678', assigner: { reference: sender, display: 'SEOULGEN' } },
      { type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'NI' }] }, system: 'urn:oid:1.2.410.100001.1', value: '990101-1234567', assigner: { reference: mois, display: 'MOIS' } },
    ]);
    expect(byReference(result, mois)['identifier']).toEqual([{ value: 'MOIS' }, { system: 'urn:ietf:rfc:3986', value: 'urn:oid:1.2.410.100001.1' }]);
    expectResolvedAndValid(result);
    // With PID-19 among the identifier sources, the SSN is an identifier whose assigner the message does not name.
    const withSsn = map([msh('ADT^A08^ADT_A01', 'I3'), 'EVN|A08|20240815083000', PID], { ...defaultHl7MappingOptions, fieldSources: { 'Patient.identifier': ['PID-3', 'PID-19'] } });
    expect((only(withSsn, 'Patient')['identifier'] as Array<Record<string, unknown>>)[2]).toEqual({
      type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'SS', display: 'Social Security number' }] },
      system: 'http://hl7.org/fhir/sid/us-ssn',
      value: '123-45-6789',
    });
  });

  it('an identifier whose authority came from MSH-3 (MSH-4 empty) names no assigner', () => {
    const result = map([msh('ADT^A08^ADT_A01', 'I2', ''), 'EVN|A08|20240815083000', 'PID|1||12345678^^^^MR||KIM^MINSU']);
    expect(only(result, 'Patient')['identifier']).toEqual([expect.not.objectContaining({ assigner: expect.anything() })]);
    expect(draftsOf(result, 'Organization')).toEqual([]);
  });
});

describe('Patient.generalPractitioner (PD1)', () => {
  it('PD1-3 primary facility is an Organization and PD1-4 the primary care provider a Practitioner, the facility first', () => {
    const result = map([msh('ADT^A08^ADT_A01', 'G1'), 'EVN|A08|20240815083000', PID, segment('PD1', { 3: 'Haeundae Clinic^^^^^SEOULGEN^^^^HC01', 4: 'GP7^JUNG^HAEIN^^^DR~^NAM^SUJI' })]);
    const clinic = `Organization/${deterministicId('Organization', SEOULGEN, 'HC01')}`;
    expect(mergeDraft(undefined, only(result, 'Patient'))['generalPractitioner']).toEqual([
      { reference: clinic, display: 'Haeundae Clinic' },
      { reference: `Practitioner/${deterministicId('Practitioner', SEOULGEN, 'GP7')}`, display: 'DR HAEIN JUNG' },
      // A provider sent by name only is a display (directory.ts).
      { display: 'SUJI NAM' },
    ]);
    expect(byReference(result, clinic)).toMatchObject({ name: 'Haeundae Clinic', identifier: [{ system: SEOULGEN, value: 'HC01' }] });
    expectResolvedAndValid(result);
  });

  it('a message without PD1 leaves the stored list; `""` in PD1-3 and PD1-4 removes it', () => {
    const withPd1 = only(map([msh('ADT^A08^ADT_A01', 'G2'), 'EVN|A08|20240815083000', PID, segment('PD1', { 4: 'GP7^JUNG^HAEIN' })]), 'Patient');
    const without = only(map([msh('ADT^A08^ADT_A01', 'G3'), 'EVN|A08|20240815083000', PID]), 'Patient');
    const cleared = only(map([msh('ADT^A08^ADT_A01', 'G4'), 'EVN|A08|20240815083000', PID, segment('PD1', { 3: '""', 4: '""' })]), 'Patient');
    expect(without).not.toHaveProperty('generalPractitioner');
    // PD1's entries removed; a ROL's primary care provider (roles.test.ts) would stay.
    expect(cleared['generalPractitioner']).toEqual({ $merge: 'roles', clearFields: true });
    const stored = mergeDraft(mergeDraft(undefined, withPd1), without);
    expect(stored['generalPractitioner']).toEqual(mergeDraft(undefined, withPd1)['generalPractitioner']);
    expect(mergeDraft(stored, cleared)).not.toHaveProperty('generalPractitioner');
  });
});

describe('Patient.contact (NK1)', () => {
  const spouse = 'NK1|1|KIM^YOUNGHEE^^^^^L|SPO^Spouse^HL70063|1 Haeundae-ro^^Busan^^48095^KOR|010-4444-5555^PRN^CP||N^Next-of-Kin^HL70131||||||||F';
  const child = 'NK1|2|PARK^MINJUN^^^^^L|CHD^Child^HL70063||010-6666-7777^PRN^CP||C^Emergency Contact^HL70131';

  it('every NK1 is a contact with its relationships, name, numbers, address and gender, beside its RelatedPerson', () => {
    const result = map([msh('ADT^A01^ADT_A01', 'C1'), 'EVN|A01|20240815083000', PID, spouse, child]);
    const contacts = only(result, 'Patient')['contact'] as Array<Record<string, unknown>>;
    expect(contacts).toHaveLength(2);
    expect(contacts[0]).toEqual({
      relationship: [
        { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-RoleCode', code: 'SPS', display: 'spouse' }, { system: 'urn:anchorline:local/HL70063', code: 'SPO', display: 'Spouse' }] },
        { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0131', code: 'N', display: 'Next-of-Kin' }, { system: 'urn:anchorline:local/HL70131', code: 'N', display: 'Next-of-Kin' }] },
      ],
      name: { use: 'official', family: 'KIM', given: ['YOUNGHEE'] },
      telecom: [{ system: 'phone', value: '010-4444-5555', use: 'mobile' }],
      address: { line: ['1 Haeundae-ro'], city: 'Busan', postalCode: '48095', country: 'KOR' },
      gender: 'female',
    });
    expect(draftsOf(result, 'RelatedPerson')).toHaveLength(2);
    expectResolvedAndValid(result);
  });

  it('contacts resent in later messages are not added again; a message without NK1 keeps them; one NK1 sent twice is one contact', () => {
    const admit = only(map([msh('ADT^A01^ADT_A01', 'C2'), 'EVN|A01|20240815083000', PID, spouse, child]), 'Patient');
    const update = only(map([msh('ADT^A08^ADT_A01', 'C3'), 'EVN|A08|20240816083000', PID, spouse, child, spouse]), 'Patient');
    const noContacts = only(map([msh('ADT^A08^ADT_A01', 'C4'), 'EVN|A08|20240817083000', PID]), 'Patient');
    let stored = mergeDraft(undefined, admit);
    stored = mergeDraft(stored, update);
    stored = mergeDraft(stored, noContacts);
    expect(stored['contact']).toEqual(admit['contact']);
    expect(stored['contact']).toHaveLength(2);
    // The sender drops the child: the contacts are those it now sends.
    stored = mergeDraft(stored, only(map([msh('ADT^A08^ADT_A01', 'C5'), 'EVN|A08|20240818083000', PID, spouse]), 'Patient'));
    expect(stored['contact']).toHaveLength(1);
  });

  it('an employer (NK1-3 EMR) is a contact with its Organization, not a RelatedPerson, as the IG maps it', () => {
    const employer = segment('NK1', { 1: '3', 3: 'EMR^Employer^HL70063', 6: '051-123-4567^WPN^PH', 13: 'Busan Shipyard^^^^^SEOULGEN^^^^BS01', 30: 'LEE^HR' });
    const result = map([msh('ADT^A01^ADT_A01', 'C6'), 'EVN|A01|20240815083000', PID, spouse, employer]);
    expect(draftsOf(result, 'RelatedPerson')).toHaveLength(1);
    const contact = (only(result, 'Patient')['contact'] as Array<Record<string, unknown>>)[1]!;
    expect(contact).toMatchObject({
      name: { family: 'LEE', given: ['HR'] },
      telecom: [{ system: 'phone', value: '051-123-4567', use: 'work' }],
      organization: { reference: `Organization/${deterministicId('Organization', SEOULGEN, 'BS01')}`, display: 'Busan Shipyard' },
    });
    expectResolvedAndValid(result);
  });

  it('an NK1 that names no one and nothing to reach is no contact', () => {
    const result = map([msh('ADT^A01^ADT_A01', 'C7'), 'EVN|A01|20240815083000', PID, 'NK1|1||SPO^Spouse^HL70063']);
    expect(only(result, 'Patient')).not.toHaveProperty('contact');
  });

  it("each patient of a swap gets its own group's contacts", () => {
    const result = map([msh('ADT^A17^ADT_A17', 'C8'), 'EVN|A17|20240815083000', PID, spouse, 'PID|1||87654321^^^SEOULGEN^MR||LEE^JIWON', child]);
    const [first, second] = draftsOf(result, 'Patient');
    expect((first!['contact'] as Array<{ name: { family: string } }>).map((contact) => contact.name.family)).toEqual(['KIM']);
    expect((second!['contact'] as Array<{ name: { family: string } }>).map((contact) => contact.name.family)).toEqual(['PARK']);
  });
});



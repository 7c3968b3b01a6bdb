/**
 * The people and places named by dispenses (RXD-10), administrations (RXA-10), procedures (PR1-8, PR1-11, PR1-12,
 * PR1-23) and charges (FT1-20, FT1-24) are Practitioner and Location resources, and the references to them literal,
 * as every other builder's are (mappers/hl7v2/directory.ts).
 */

import { describe, expect, it } from 'vitest';

import { deterministicId, mergeDraft } from '../../mappers/index.ts';

import { SEOULGEN, byReference, expectResolvedAndValid, map, msh, only, segment } from './hl7v2-references.ts';

const PID = 'PID|1||12345678^^^SEOULGEN^MR||KIM^MINSU||19880101|M';
const PV1 = segment('PV1', { 1: '1', 2: 'I', 3: 'W71^0712^B', 19: 'V20240815001^^^SEOULGEN^VN' });

const practitioner = (id: string, system = SEOULGEN): string => `Practitioner/${deterministicId('Practitioner', system, id)}`;

describe('Practitioner references of medication events, procedures and charges', () => {
  it('RXD-10 dispensing provider is a Practitioner', () => {
    const result = map([
      msh('RDS^O13^RDS_O13', 'D1'),
      PID,
      segment('ORC', { 1: 'RE', 2: 'RX1^OCS' }),
      segment('RXD', { 1: '1', 2: 'ASA^Aspirin^L', 3: '20240815090000', 4: '30', 5: 'TAB', 10: 'PH7^PARK^SORA^^^^^^SEOULGEN~^CHOI^MIN' }),
    ]);
    const dispense = only(result, 'MedicationDispense');
    expect(dispense['performer']).toEqual([{ actor: { reference: practitioner('PH7'), display: 'SORA PARK' } }, { actor: { display: 'MIN CHOI' } }]);
    expect(byReference(result, practitioner('PH7'))).toMatchObject({ identifier: [{ system: SEOULGEN, value: 'PH7' }], name: [{ family: 'PARK', given: ['SORA'] }] });
    expectResolvedAndValid(result);
  });

  it('RXA-10 administering provider is a Practitioner, its XCN-9 authority its identifier system', () => {
    const result = map([
      msh('RAS^O17^RAS_O17', 'A1'),
      PID,
      segment('ORC', { 1: 'RE', 2: 'RX1^OCS' }),
      segment('RXA', { 1: '0', 2: '1', 3: '20240815091000', 5: 'ASA^Aspirin^L', 6: '100', 7: 'mg', 10: 'N12^YOON^HANA^^^^^^NURSES' }),
    ]);
    const system = 'urn:anchorline:authority:NURSES';
    expect(only(result, 'MedicationAdministration')['performer']).toEqual([{ actor: { reference: practitioner('N12', system), display: 'HANA YOON' } }]);
    expectResolvedAndValid(result);
  });

  it('PR1-8, PR1-11 and PR1-12 are Practitioners with their functions; PR1-23 is a Location', () => {
    const result = map([
      msh('ADT^A08^ADT_A01', 'P1'),
      'EVN|A08|20240815083000',
      PID,
      PV1,
      segment('PR1', { 1: '1', 3: '0DTJ4ZZ^Appendectomy^I10P', 5: '20240814100000', 8: 'AN1^HAN^JIWOO', 11: 'SU1^KANG^MINHO', 12: 'SU2^LIM^SEO', 23: 'OR^3^^SEOULGEN' }),
    ]);
    const procedure = mergeDraft(undefined, only(result, 'Procedure'));
    const actors = (procedure['performer'] as Array<{ actor: { reference: string } }>).map((performer) => performer.actor.reference);
    expect(actors).toEqual([practitioner('AN1'), practitioner('SU1'), practitioner('SU2')]);
    expect((procedure['performer'] as Array<{ function?: { coding: Array<{ code: string }> } }>).map((performer) => performer.function?.coding[0]!.code)).toEqual([
      '88189002',
      '304292004',
      undefined,
    ]);
    const location = procedure['location'] as { reference: string; display: string };
    expect(location.display).toBe('OR^3');
    expect(byReference(result, location.reference)).toMatchObject({ name: '3', physicalType: { coding: [{ code: 'ro' }] } });
    expectResolvedAndValid(result);
  });

  it('a PR1-23 that cannot be read as a Location keeps the place as a display, with an issue', () => {
    const result = map([msh('ADT^A08^ADT_A01', 'P2'), 'EVN|A08|20240815083000', PID, PV1, segment('PR1', { 1: '1', 3: '0DTJ4ZZ^Appendectomy^I10P', 23: 'OR^3^^&not-a-uuid&UUID' })]);
    expect(only(result, 'Procedure')['location']).toEqual({ display: 'OR^3' });
    expect(result.issues).toEqual(expect.arrayContaining([expect.objectContaining({ code: 'ANCHORLINE_ISSUE_INVALID_VALUE', location: 'PR1-23' })]));
  });

  it('FT1-20 performed by and FT1-24 entered by are Practitioners', () => {
    const result = map([
      msh('DFT^P03^DFT_P03', 'F1'),
      'EVN|P03|20240815083000',
      segment('PID', { 1: '1', 3: '12345678^^^SEOULGEN^MR', 5: 'KIM^MINSU', 7: '19880101', 8: 'M', 18: 'ACC1^^^SEOULGEN^AN' }),
      PV1,
      segment('FT1', { 1: '1', 2: 'T1', 4: '20240815', 6: 'CG', 7: 'X100^Chest X-ray^L', 10: '1', 20: 'RD1^OH^JIN', 24: 'CL9^BAE^SUN' }),
    ]);
    const charge = only(result, 'ChargeItem');
    expect(charge['performer']).toEqual([{ actor: { reference: practitioner('RD1'), display: 'JIN OH' } }]);
    expect(charge['enterer']).toEqual({ reference: practitioner('CL9'), display: 'SUN BAE' });
    expectResolvedAndValid(result);
  });
});

/**
 * Who holds a policy and who pays an account: IN1's insured as the Coverage's subscriber (the Patient, or a
 * RelatedPerson of IN1-16 to IN1-19), IN1-10/IN1-11 as its policyHolder Organization, IN2-61 and IN2-72
 * (mappers/hl7v2/adt-coverage.ts); GT1 as Account.guarantor (mappers/hl7v2/guarantors.ts); and the GT1 and IN2
 * segments reported as not mapped only where no builder of the message reads them (segments.ts).
 */

import { describe, expect, it } from 'vitest';

import { deterministicId } from '../../mappers/index.ts';

import { SEOULGEN, byReference, draftsOf, expectResolvedAndValid, map, msh, only, segment } from './hl7v2-references.ts';

const PID = segment('PID', { 1: '1', 3: '12345678^^^SEOULGEN^MR', 5: 'KIM^MINSU', 7: '19880101', 8: 'M', 18: 'ACC77^^^SEOULGEN^AN' });
const PV1 = segment('PV1', { 1: '1', 2: 'I', 3: 'W71^0712^B', 19: 'V1^^^SEOULGEN^VN' });
const patientReference = (result: ReturnType<typeof map>): string => `Patient/${only(result, 'Patient').id}`;

const issueCodes = (result: ReturnType<typeof map>): string[] => (result.issues ?? []).map((issue) => `${issue.code}@${issue.location}`);

describe('Coverage: the insured and the policy holder', () => {
  const spousePolicy = segment('IN1', {
    1: '1',
    2: 'GOLD^Gold plan^L',
    3: 'NHIS01',
    4: 'National Health Insurance Service',
    10: 'E-55^^^SEOULGEN',
    11: 'Busan Shipyard',
    16: 'KIM^YOUNGHEE',
    17: 'SPO^Spouse^HL70063',
    18: '19820505',
    19: '1 Haeundae-ro^^Busan^^48095^KOR',
    36: 'P-1234',
    43: 'F',
  });

  it('an insured who is not the patient is a RelatedPerson, the subscriber; IN1-11 with IN1-10 is the policy holder', () => {
    const result = map([msh('ADT^A08^ADT_A01', 'V1'), 'EVN|A08|20240815083000', PID, PV1, spousePolicy, segment('IN2', { 63: '010-4444-5555^PRN^PH' })]);
    const coverage = only(result, 'Coverage');
    const subscriber = coverage['subscriber'] as { reference: string };
    expect(byReference(result, subscriber.reference)).toMatchObject({
      patient: { reference: patientReference(result) },
      relationship: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-RoleCode', code: 'SPS' }, { code: 'SPO' }] }],
      name: [{ family: 'KIM', given: ['YOUNGHEE'] }],
      gender: 'female',
      birthDate: '1982-05-05',
      address: [{ line: ['1 Haeundae-ro'], city: 'Busan' }],
      telecom: [{ system: 'phone', value: '010-4444-5555', use: 'home' }],
    });
    expect(coverage['relationship']).toMatchObject({ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/subscriber-relationship', code: 'spouse' }, { code: 'SPO' }] });
    const holder = `Organization/${deterministicId('Organization', SEOULGEN, 'E-55')}`;
    expect(coverage['policyHolder']).toEqual({ reference: holder, display: 'Busan Shipyard' });
    expect(byReference(result, holder)).toMatchObject({ name: 'Busan Shipyard', identifier: [{ system: SEOULGEN, value: 'E-55' }] });
    expectResolvedAndValid(result);
  });

  it("an IN1-10 typed SN is the insured's subscriber number, not the employer's identifier", () => {
    const result = map([msh('ADT^A08^ADT_A01', 'V5'), 'EVN|A08|20240815083000', PID, PV1, segment('IN1', { 1: '1', 3: 'NHIS01', 4: 'NHIS', 10: '125189^^^SEOULGEN^SN', 11: 'Acme' })]);
    const holder = (only(result, 'Coverage')['policyHolder'] as { reference: string }).reference;
    expect(byReference(result, holder)).not.toHaveProperty('identifier');
    expect(byReference(result, holder)['name']).toBe('Acme');
  });

  it('the insured is the patient when IN1-17 is SEL; an NK1 of the same name stays its own RelatedPerson', () => {
    const own = map([msh('ADT^A08^ADT_A01', 'V2'), 'EVN|A08|20240815083000', PID, PV1, segment('IN1', { 1: '1', 3: 'NHIS01', 4: 'NHIS', 16: 'KIM^MINSU', 17: 'SEL' })]);
    expect(only(own, 'Coverage')['subscriber']).toEqual({ reference: patientReference(own) });
    expect(draftsOf(own, 'RelatedPerson')).toEqual([]);
    const both = map([msh('ADT^A08^ADT_A01', 'V3'), 'EVN|A08|20240815083000', PID, 'NK1|1|KIM^YOUNGHEE|SPO^Spouse^HL70063', PV1, spousePolicy]);
    expect(draftsOf(both, 'RelatedPerson')).toHaveLength(2);
    expectResolvedAndValid(both);
  });

  it('IN2-72 gives the relationship when IN1-17 is empty, and 01 makes the patient the subscriber; IN2-61 is another identifier', () => {
    const result = map([
      msh('ADT^A08^ADT_A01', 'V4'),
      'EVN|A08|20240815083000',
      PID,
      PV1,
      segment('IN1', { 1: '1', 3: 'NHIS01', 4: 'NHIS', 36: 'P-1234' }),
      segment('IN2', { 61: 'M-77^^^SEOULGEN^MB', 72: '01^Patient is insured^HL70344' }),
    ]);
    const coverage = only(result, 'Coverage');
    expect(coverage['relationship']).toMatchObject({ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/subscriber-relationship', code: 'self' }, { code: '01' }] });
    expect(coverage['subscriber']).toEqual({ reference: patientReference(result) });
    expect(coverage['identifier']).toEqual([
      { type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'MB', display: 'Member Number' }] }, value: 'P-1234' },
      { type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'MB' }] }, system: SEOULGEN, value: 'M-77' },
    ]);
    // IN2 is read where the message maps IN1; it is no longer reported as not mapped.
    expect(issueCodes(result)).not.toContain('ANCHORLINE_ISSUE_SEGMENT_NOT_MAPPED@IN2');
    expectResolvedAndValid(result);
  });
});

describe('Account.guarantor (GT1)', () => {
  const bar = (...gt1: string[]) => map([msh('BAR^P01^BAR_P01', 'G1'), 'EVN|P01|20240815083000', PID, PV1, ...gt1]);

  it('a guarantor who is not the patient is a RelatedPerson, with GT1-22 on hold and GT1-13/14 its period', () => {
    const result = bar(
      segment('GT1', { 1: '1', 2: 'G-9^^^SEOULGEN', 3: 'KIM^YOUNGHEE', 5: '1 Haeundae-ro^^Busan', 6: '010-4444-5555', 7: '051-555-1234', 8: '19820505', 9: 'F', 11: 'SPO^Spouse^HL70063', 13: '20240101', 14: '20241231', 22: 'Y' }),
    );
    const account = only(result, 'Account');
    const [entry] = account['guarantor'] as Array<{ party: { reference: string }; onHold: boolean; period: unknown }>;
    expect(entry).toMatchObject({ onHold: true, period: { start: '2024-01-01', end: '2024-12-31' } });
    expect(byReference(result, entry!.party.reference)).toMatchObject({
      identifier: [{ system: SEOULGEN, value: 'G-9' }],
      patient: { reference: patientReference(result) },
      relationship: [{ coding: [{ code: 'SPS' }, { code: 'SPO' }] }],
      name: [{ family: 'KIM', given: ['YOUNGHEE'] }],
      telecom: [
        { system: 'phone', value: '010-4444-5555', use: 'home' },
        { system: 'phone', value: '051-555-1234', use: 'work' },
      ],
      gender: 'female',
      birthDate: '1982-05-05',
    });
    expect(issueCodes(result)).not.toContain('ANCHORLINE_ISSUE_SEGMENT_NOT_MAPPED@GT1');
    expectResolvedAndValid(result);
  });

  it('the guarantor is the patient (GT1-11 SEL) or an organization (GT1-21), one entry per GT1', () => {
    const result = bar(segment('GT1', { 1: '1', 3: 'KIM^MINSU', 11: 'SEL' }), segment('GT1', { 1: '2', 21: 'Busan Shipyard^^^^^SEOULGEN^^^^BS01' }));
    expect(only(result, 'Account')['guarantor']).toEqual([
      { party: { reference: patientReference(result) } },
      { party: { reference: `Organization/${deterministicId('Organization', SEOULGEN, 'BS01')}`, display: 'Busan Shipyard' } },
    ]);
    expect(draftsOf(result, 'RelatedPerson')).toEqual([]);
    expectResolvedAndValid(result);
  });

  it('a GT1 without an account to guarantee, or in a message whose builders read no GT1, is reported as not mapped', () => {
    const noAccount = map([msh('BAR^P01^BAR_P01', 'G2'), 'EVN|P01|20240815083000', 'PID|1||12345678^^^SEOULGEN^MR||KIM^MINSU', segment('GT1', { 1: '1', 3: 'KIM^YOUNGHEE' })]);
    expect(draftsOf(noAccount, 'Account')).toEqual([]);
    expect(issueCodes(noAccount)).toContain('ANCHORLINE_ISSUE_SEGMENT_NOT_MAPPED@GT1');
    const schedule = map([msh('SIU^S12^SIU_S12', 'G3'), PID, segment('GT1', { 1: '1', 3: 'KIM^YOUNGHEE' })]);
    expect(issueCodes(schedule)).toContain('ANCHORLINE_ISSUE_SEGMENT_NOT_MAPPED@GT1');
  });

  it('the GT1 of an ADT, an order or a vaccination guarantees the account of PID-18 without saying whether it is open', () => {
    for (const [type, segments] of [
      ['ADT^A01^ADT_A01', ['EVN|A01|20240815083000', PID, PV1]],
      ['ADT^A31^ADT_A05', ['EVN|A31|20240815083000', PID]],
      ['ORM^O01^ORM_O01', [PID, segment('ORC', { 1: 'NW', 2: 'O1^X' }), segment('OBR', { 1: '1', 2: 'O1^X', 4: 'X^Y^L' })]],
      ['VXU^V04^VXU_V04', [PID, segment('ORC', { 1: 'RE', 3: 'IZ-1^SEOULGEN' }), segment('RXA', { 1: '0', 2: '1', 3: '20240815', 5: '08^HEPB^CVX', 6: '0.5', 7: 'mL' })]],
    ] as const) {
      const result = map([msh(type, 'G4'), ...segments, segment('GT1', { 1: '1', 2: 'G1^^^SEOULGEN', 3: 'KIM^YOUNGHEE', 11: 'MTH^Mother^HL70063' })]);
      const account = only(result, 'Account');
      expect(account.id, type).toBe(deterministicId('Account', SEOULGEN, 'ACC77'));
      // Only filled in when nothing is stored: an account a BAR^P06 ended stays inactive.
      expect(account['status'], type).toEqual({ $merge: 'if-absent', value: 'active' });
      expect(account['guarantor'], type).toEqual([{ party: { reference: `RelatedPerson/${only(result, 'RelatedPerson').id}` } }]);
      expect(draftsOf(result, 'EpisodeOfCare'), type).toEqual([]);
      expect(issueCodes(result), type).not.toContain('ANCHORLINE_ISSUE_SEGMENT_NOT_MAPPED@GT1');
      expectResolvedAndValid(result);
    }
  });
});

/**
 * ROL segments (mappers/hl7v2/roles.ts) placed by the segment they follow: the patient's primary care provider and
 * CareTeam after PID, the visit's participants after PV1, a procedure's performers after PR1, nothing (an issue) in an
 * insurance group; their action codes; and how their entries and those of PV1-7, PD1-4 and PR1-8/11/12 live side by
 * side in the stored resource across messages. A whole message with its expected drafts is the ADT fixture
 * a01-roles-guarantor-referral (test/fixtures/adt).
 */
import { describe, expect, it } from 'vitest';

import { type MappingResult, type ResourceDraft, deterministicId, mergeDraft } from '../../mappers/index.ts';

import { SEOULGEN, draftsOf, expectResolvedAndValid, map, msh, only, segment } from './hl7v2-references.ts';

const PID = segment('PID', { 1: '1', 3: '12345678^^^SEOULGEN^MR', 5: 'KIM^MINSU', 7: '19880101', 8: 'M' });
const PV1 = segment('PV1', { 1: '1', 2: 'I', 3: 'W71^0712^B', 7: 'D1^LEE^JIHOON^^^DR', 19: 'V1^^^SEOULGEN^VN' });
const PD1 = segment('PD1', { 4: 'GP7^JUNG^HAEIN^^^DR' });

/** A ROL: ROL-2 action code, ROL-3 role, ROL-4 person, ROL-5 begin. */
const rol = (action: string, role: string, person: string, begin = ''): string => segment('ROL', { 1: '1', 2: action, 3: role, 4: person, 5: begin });

const practitioner = (id: string): string => `Practitioner/${deterministicId('Practitioner', SEOULGEN, id)}`;

function adt(event: string, control: string, segments: string[]): MappingResult {
  return map([msh(`ADT^${event}^ADT_A01`, control), `EVN|${event}|20240815083000`, ...segments]);
}

/** Each message's drafts of one resource applied in turn, as the store applies them. */
function stored(type: string, ...results: MappingResult[]): Record<string, unknown> {
  let resource: Record<string, unknown> | undefined;
  for (const result of results) for (const draft of draftsOf(result, type)) resource = mergeDraft(resource, draft);
  return resource!;
}

const issues = (result: MappingResult): string[] => (result.issues ?? []).map((issue) => `${issue.code}@${issue.location}`);
const codes = (concepts: unknown): string[] => (concepts as Array<{ coding: Array<{ code: string }> }>).flatMap((concept) => concept.coding.map((coding) => coding.code));

describe('ROL after PV1: Encounter.participant', () => {
  const participants = (encounter: Record<string, unknown>) =>
    (encounter['participant'] as Array<{ type: unknown; individual: { reference?: string } }>).map((participant) => `${codes(participant.type).join('+')} ${participant.individual.reference}`);

  it('types the role by the IG ConceptMap and keeps the table 0443 code, beside the PV1-7 attending doctor', () => {
    const result = adt('A01', 'R1', [PID, PV1, rol('AD', 'CP^Consulting Provider^HL70443', 'C7^PARK^SORA', '20240815090000')]);
    const encounter = mergeDraft(undefined, only(result, 'Encounter'));
    expect(participants(encounter)).toEqual([`ATND ${practitioner('D1')}`, `CON+CP ${practitioner('C7')}`]);
    expect((encounter['participant'] as Array<Record<string, unknown>>)[1]!['period']).toEqual({ start: '2024-08-15T09:00:00+09:00' });
    expect(issues(result).filter((issue) => issue.includes('ROL'))).toEqual([]);
    expectResolvedAndValid(result);
  });

  it('an A08 restating the ROL adds no second participant; PV1 and ROL never replace each other; DE removes the entry', () => {
    const consultant = rol('AD', 'CP^^HL70443', 'C7^PARK^SORA');
    const admit = adt('A01', 'R1', [PID, PV1, consultant]);
    const restated = adt('A08', 'R2', [PID, PV1, rol('UC', 'CP^^HL70443', 'C7^PARK^SORA')]);
    expect(participants(stored('Encounter', admit, restated))).toEqual([`ATND ${practitioner('D1')}`, `CON+CP ${practitioner('C7')}`]);
    // A change of attending doctor (A54) restates PV1-7 only: the ROL's consultant stays.
    const newAttending = adt('A54', 'R3', [PID, segment('PV1', { 1: '1', 2: 'I', 7: 'D2^CHOI^MIN', 19: 'V1^^^SEOULGEN^VN' })]);
    expect(participants(stored('Encounter', admit, restated, newAttending))).toEqual([`ATND ${practitioner('D2')}`, `CON+CP ${practitioner('C7')}`]);
    // An ATND from a ROL is an entry of its own: PV1-7 sent as "" removes the field's entry only.
    const cleared = adt('A08', 'R4', [PID, segment('PV1', { 1: '1', 2: 'I', 7: '""', 19: 'V1^^^SEOULGEN^VN' }), rol('AD', 'AT^^HL70443', 'D1^LEE^JIHOON')]);
    expect(participants(stored('Encounter', admit, cleared))).toEqual([`CON+CP ${practitioner('C7')}`, `ATND+AT ${practitioner('D1')}`]);
    const deleted = adt('A08', 'R5', [PID, PV1, rol('DE', 'CP^^HL70443', 'C7^PARK^SORA')]);
    expect(participants(stored('Encounter', admit, restated, deleted))).toEqual([`ATND ${practitioner('D1')}`]);
    // Deleting what was never stated leaves the list as it was.
    expect(participants(stored('Encounter', adt('A01', 'R6', [PID, PV1]), deleted))).toEqual([`ATND ${practitioner('D1')}`]);
  });

  it('a later ROL about the same role and person overrides an earlier one in the same message', () => {
    const result = adt('A08', 'R1', [PID, PV1, rol('DE', 'CP^^HL70443', 'C7^PARK^SORA'), rol('AD', 'CP^^HL70443', 'C7^PARK^SORA')]);
    const operation = only(result, 'Encounter')['participant'] as Record<string, unknown[]>;
    expect(operation['set']).toHaveLength(1);
    expect(operation['remove']).toBeUndefined();
  });

  it('a visit the message does not map (A28) or no visit number leaves the ROL reported', () => {
    const person = map([msh('ADT^A28^ADT_A05', 'R1'), 'EVN|A28|20240815083000', PID, segment('PV1', { 1: '1', 2: 'N' }), rol('AD', 'AT^^HL70443', 'D1^LEE')]);
    expect(issues(person)).toContain('ANCHORLINE_ISSUE_SEGMENT_NOT_MAPPED@ROL[1]');
    const noVisit = adt('A04', 'R2', [PID, segment('PV1', { 1: '1', 2: 'O' }), rol('AD', 'AT', 'D1^LEE')]);
    expect(draftsOf(noVisit, 'Encounter')).toEqual([]);
    expect(issues(noVisit)).toContain('ANCHORLINE_ISSUE_SEGMENT_NOT_MAPPED@ROL[1]');
  });
});

describe('ROL after PID: Patient.generalPractitioner and CareTeam', () => {
  it('PP is a PractitionerRole beside PD1-4, kept when PD1 is restated without it, removed by DE', () => {
    const primary = rol('AD', 'PP^Primary Care Provider^HL70443', 'GP9^HAN^JIWOO', '20240101');
    const admit = adt('A01', 'P1', [PID, PD1, primary, PV1]);
    const patient = mergeDraft(undefined, only(admit, 'Patient'));
    const role = only(admit, 'PractitionerRole');
    expect(patient['generalPractitioner']).toEqual([
      { reference: practitioner('GP7'), display: 'DR HAEIN JUNG' },
      { reference: `PractitionerRole/${role.id}`, display: 'JIWOO HAN' },
    ]);
    expect(role).toMatchObject({ practitioner: { reference: practitioner('GP9') }, code: [{ coding: [{ system: 'http://snomed.info/sct', code: '446050000' }] }] });
    expectResolvedAndValid(admit);
    // PD1 restated alone changes PD1's entries only.
    const update = adt('A08', 'P2', [PID, segment('PD1', { 4: 'GP8^YOON^HANA' }), PV1]);
    expect((stored('Patient', admit, update)['generalPractitioner'] as Array<{ reference: string }>).map((entry) => entry.reference)).toEqual([practitioner('GP8'), `PractitionerRole/${role.id}`]);
    const deleted = adt('A08', 'P3', [PID, rol('DE', 'PP^^HL70443', 'GP9^HAN^JIWOO'), PV1]);
    expect(stored('Patient', admit, deleted)['generalPractitioner']).toEqual([{ reference: practitioner('GP7'), display: 'DR HAEIN JUNG' }]);
  });

  it('other roles are the CareTeam of the patient, one team across messages', () => {
    const family = rol('AD', 'FHCP^Family Health Care Professional^HL70443', 'N5^SEO^YUNA');
    const first = adt('A01', 'C1', [PID, family, PV1]);
    const team = only(first, 'CareTeam');
    expect(team.id).toBe(deterministicId('CareTeam', only(first, 'Patient').id, 'ROL'));
    expect(mergeDraft(undefined, team)).toMatchObject({
      status: 'active',
      subject: { reference: `Patient/${only(first, 'Patient').id}` },
      participant: [{ role: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0443', code: 'FHCP' }] }], member: { reference: practitioner('N5') } }],
    });
    expectResolvedAndValid(first);
    const second = adt('A08', 'C2', [PID, family, rol('AD', 'RP^^HL70443', 'R2^KO^EUN'), PV1]);
    expect(only(second, 'CareTeam').id).toBe(team.id);
    expect((stored('CareTeam', first, second)['participant'] as unknown[]).length).toBe(2);
  });

  it('a primary care provider sent by name only, or a role outside table 0443, is reported', () => {
    const result = adt('A01', 'N1', [PID, rol('AD', 'PP^^HL70443', '^HAN^JIWOO'), rol('AD', 'DOC^Doctor^LOCAL', 'N5^SEO'), PV1]);
    expect(draftsOf(result, 'PractitionerRole')).toEqual([]);
    expect(draftsOf(result, 'CareTeam')).toEqual([]);
    expect(issues(result)).toEqual(expect.arrayContaining(['ANCHORLINE_ISSUE_SEGMENT_NOT_MAPPED@ROL[1]-4', 'ANCHORLINE_ISSUE_SEGMENT_NOT_MAPPED@ROL[2]-3']));
  });
});

describe('ROL after PR1 and in other groups', () => {
  const PR1 = segment('PR1', { 1: '1', 3: '0DTJ4ZZ^Appendectomy^I10P', 5: '20240814100000', 11: 'SU1^KANG^MINHO' });

  it('the ROL of a PROCEDURE group is a performer of that procedure, beside PR1-11', () => {
    const result = adt('A03', 'S1', [PID, PV1, PR1, rol('AD', 'AT^Attending^HL70443', 'AS1^OH^DAEUN'), segment('PR1', { 1: '2', 3: '0DB64ZZ^Excision^I10P', 5: '20240814120000' })]);
    const [first, second] = draftsOf(result, 'Procedure').map((draft: ResourceDraft) => mergeDraft(undefined, draft));
    expect((first!['performer'] as Array<{ function?: unknown; actor: { reference: string } }>).map((performer) => [performer.function === undefined ? [] : codes([performer.function]), performer.actor.reference])).toEqual([
      [['304292004'], practitioner('SU1')],
      [['ATND', 'AT'], practitioner('AS1')],
    ]);
    expect(second!['performer']).toBeUndefined();
    expectResolvedAndValid(result);
  });

  it('a ROL of an insurance group is reported by position; an empty ROL says nothing', () => {
    const result = adt('A01', 'I1', [PID, segment('ROL', { 1: '1' }), PV1, segment('IN1', { 1: '1', 2: 'P1^PLAN', 3: 'INS1^^^SEOULGEN', 4: 'Insurer' }), rol('AD', 'CP^^HL70443', 'C7^PARK')]);
    expect(issues(result).filter((issue) => issue.includes('ROL'))).toEqual(['ANCHORLINE_ISSUE_SEGMENT_NOT_MAPPED@ROL[2]']);
    expect((result.issues ?? []).find((issue) => issue.location === 'ROL[2]')?.detail).toContain('insurance');
  });

  it('an action code outside table 0287 is read as a statement, with a warning', () => {
    const result = adt('A08', 'X1', [PID, PV1, rol('ZZ', 'CP^^HL70443', 'C7^PARK')]);
    expect(issues(result)).toContain('ANCHORLINE_ISSUE_CODE_NOT_IN_TABLE@ROL[1]-2');
    expect((only(result, 'Encounter')['participant'] as Record<string, unknown[]>)['set']).toHaveLength(1);
  });
});

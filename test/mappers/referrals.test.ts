/**
 * Referrals: RF1 -> a ServiceRequest (category Patient referral) and the Task that tracks it, the PRD providers as
 * requester and performer; REF and RRI are mapped by their segments without an unknown-type issue.
 */
import { describe, expect, it } from 'vitest';
import { parseHl7 } from '../../formats/hl7v2/index.ts';
import { defaultHl7MappingOptions, mapHl7Message, mergeDraft, validateFhirResource, type MappingResult, type ResourceDraft } from '../../mappers/index.ts';
import { requiredCodeIssues } from '../../mappers/fhir-required-codes.ts';

const ref = (rf1: string, controlId = 'R1', ...rest: string[]): string =>
  [
    `MSH|^~\\&|EMR|CLINIC|ANCHORLINE|HUB|20240101120000||REF^I12^REF_I12|${controlId}|P|2.5.1`,
    rf1,
    'PRD|RP^Referring^HL70286|Kim^Minsu^^^Dr|||||1234^NPI',
    'PRD|RT^Referred to^HL70286|Lee^Jiwon',
    'PID|1||M1^^^CLINIC^MR||Park^Jiwoo||19900101|F',
    ...rest,
  ].join('\r');

const map = (text: string): MappingResult => mapHl7Message(parseHl7(text), defaultHl7MappingOptions);
const only = (result: MappingResult, type: string): ResourceDraft => {
  const found = result.drafts.filter((d) => d.resourceType === type);
  expect(found, type).toHaveLength(1);
  return found[0]!;
};

describe('referrals (RF1)', () => {
  it('makes a referral ServiceRequest and its Task, with the referring and referred-to providers', () => {
    const result = map(ref('RF1|A^Accepted^HL70283|S^STAT^HL70280|Med^Medical^HL70281|AP^Approved^HL70282|O^Outpatient^HL70284|REF-77^EMR|20240101|20240401|20240102|R51^Headache^I10|EXT-9^PAYER'));
    const request = only(result, 'ServiceRequest');
    const task = only(result, 'Task');
    const patient = only(result, 'Patient');
    expect(request).toMatchObject({
      status: 'active',
      intent: 'order',
      priority: 'stat',
      category: [{ coding: [{ system: 'http://snomed.info/sct', code: '3457005' }] }],
      code: { coding: [expect.objectContaining({ system: 'http://terminology.hl7.org/CodeSystem/v2-0281', code: 'Med' })] },
      subject: { reference: `Patient/${patient.id}` },
      occurrencePeriod: { start: '2024-01-01', end: '2024-04-01' },
      reasonCode: [{ coding: [expect.objectContaining({ code: 'R51' })] }],
    });
    expect((request['identifier'] as Array<{ value: string }>).map((i) => i.value)).toEqual(['REF-77', 'EXT-9']);
    // The referring provider has an identifier: a Practitioner; the referred-to one only a name: a display.
    const practitioner = only(result, 'Practitioner');
    expect(request['requester']).toEqual({ reference: `Practitioner/${practitioner.id}`, display: 'Minsu Kim' });
    expect(request['performer']).toEqual([{ display: 'Jiwon Lee' }]);
    expect(task).toMatchObject({ status: 'accepted', intent: 'order', focus: { reference: `ServiceRequest/${request.id}` }, for: { reference: `Patient/${patient.id}` }, owner: { display: 'Jiwon Lee' } });
    expect(task['businessStatus']).toMatchObject({ coding: [expect.objectContaining({ code: 'AP' })] });
    expect(result.issues).toBeUndefined();
    for (const draft of result.drafts) {
      const resource = mergeDraft(undefined, draft);
      expect([...validateFhirResource(resource), ...requiredCodeIssues(resource)], `${draft.resourceType}`).toEqual([]);
    }
  });

  it('reads the referral status into both resources, and keys a referral without ids by its message', () => {
    const statuses = (code: string) => {
      const result = map(ref(`RF1|${code}|||||REF-1^EMR`));
      return [only(result, 'ServiceRequest')['status'], only(result, 'Task')['status']];
    };
    expect([statuses('P'), statuses('R'), statuses('E')]).toEqual([['active', 'requested'], ['revoked', 'rejected'], ['completed', 'cancelled']]);
    const anonymous = map(ref('RF1|P'));
    expect(anonymous.issues?.map((i) => `${i.code}@${i.location}`)).toEqual(['ANCHORLINE_ISSUE_MISSING_FIELD@RF1[1]-6']);
    expect(only(map(ref('RF1|P')), 'ServiceRequest').id).toBe(only(anonymous, 'ServiceRequest').id);
    expect(only(map(ref('RF1|P', 'R2')), 'ServiceRequest').id).not.toBe(only(anonymous, 'ServiceRequest').id);
  });
});

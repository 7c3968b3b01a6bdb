/**
 * consent/labels.ts: security labels from meta.security and derived from content (ICD-10/KCD chapters, SNOMED CT,
 * report categories, imaging types), codes as `system|code`, and the time a dataPeriod is compared with.
 */
import { describe, expect, it } from 'vitest';
import { DEFAULT_SENSITIVITY_RULES, resourceFacts } from '../../consent/index.ts';

const ACT = 'http://terminology.hl7.org/CodeSystem/v3-ActCode';
const CONF = 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality';
const KCD = 'http://www.hl7korea.or.kr/CodeSystem/kostat-kcd-8';
const condition = (system: string, code: string): Record<string, unknown> => ({ resourceType: 'Condition', id: 'c', code: { coding: [{ system, code }] }, subject: { reference: 'Patient/p1' } });

describe('resourceFacts', () => {
  it('keeps meta.security labels, reading the retired Confidentiality information types as ActCode', () => {
    const facts = resourceFacts({ resourceType: 'Observation', id: 'o', meta: { security: [{ system: CONF, code: 'V' }, { system: CONF, code: 'HIV' }] } });
    expect(facts.labels).toEqual(expect.arrayContaining([`${CONF}|V`, `${ACT}|HIV`]));
  });

  it('labels mental health, substance use, HIV and genetics by ICD-10 and KCD chapter, and marks them restricted', () => {
    expect(resourceFacts(condition(KCD, 'F32.1')).labels).toEqual(expect.arrayContaining([`${ACT}|MH`, `${ACT}|PSY`, `${CONF}|R`]));
    const alcohol = resourceFacts(condition('http://hl7.org/fhir/sid/icd-10', 'F10.2')).labels;
    expect(alcohol).toEqual(expect.arrayContaining([`${ACT}|SUD`, `${ACT}|ETH`, `${ACT}|MH`]));
    expect(resourceFacts(condition(KCD, 'B20.0')).labels).toContain(`${ACT}|HIV`);
    expect(resourceFacts(condition(KCD, 'Z21')).labels).toContain(`${ACT}|HIV`);
    expect(resourceFacts(condition(KCD, 'B25.0')).labels).not.toContain(`${ACT}|HIV`);
    expect(resourceFacts(condition(KCD, 'Q90.9')).labels).toContain(`${ACT}|GDIS`);
    expect(resourceFacts(condition(KCD, 'I10')).labels).toEqual([]);
  });

  it('labels by SNOMED CT where the concept is listed', () => {
    expect(resourceFacts(condition('http://snomed.info/sct', '86406008')).labels).toContain(`${ACT}|HIV`);
  });

  it('labels laboratory and imaging reports by category, and imaging studies by type', () => {
    const report = resourceFacts({ resourceType: 'DiagnosticReport', id: 'r', category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0074', code: 'HM' }] }], code: { coding: [{ system: 'http://loinc.org', code: '58410-2' }] }, issued: '2026-03-02T09:00:00+09:00' });
    expect(report.labels).toEqual([`${ACT}|LABCAT`]);
    expect(report.codes).toEqual(['http://loinc.org|58410-2', 'http://terminology.hl7.org/CodeSystem/v2-0074|HM']);
    expect(report.when?.toISOString()).toBe('2026-03-02T00:00:00.000Z');
    const ct = resourceFacts({ resourceType: 'DiagnosticReport', id: 'ct', category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0074', code: 'CT' }] }] });
    expect(ct.labels).toEqual([`${ACT}|DICAT`]);
    expect(resourceFacts({ resourceType: 'ImagingStudy', id: 'i' }).labels).toEqual([`${ACT}|DICAT`]);
  });

  it('takes extra rules, as config consent.sensitivityRules adds them', () => {
    const rules = [...DEFAULT_SENSITIVITY_RULES, { systems: ['urn:oid:1.2.410.100110.10.41'], codes: ['GEN-PANEL'], labels: [`${ACT}|GDIS`] }];
    const facts = resourceFacts({ resourceType: 'Observation', id: 'g', code: { coding: [{ system: 'urn:oid:1.2.410.100110.10.41', code: 'GEN-PANEL' }] } }, rules);
    expect(facts.labels).toContain(`${ACT}|GDIS`);
  });
});

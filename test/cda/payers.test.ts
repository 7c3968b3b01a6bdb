/**
 * The payers section converted by mappers/cda/sections/payers.ts: each policy a Coverage of the patient, its payer
 * an Organization, its subscriber the patient or a RelatedPerson, the relationship, member id, period, plan and
 * order as sent. Crafted edge cases (test/fixtures/cda/sections/payers-edge-cases.xml) and real documents.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

import { byIdentifier, convertBytes, convertCorpusDocument, convertSectionFixture, itIsValidAndRepeatable, problemsOf, resolve, resourcesOf } from '../support/cda-section-documents.ts';

const TYPES = ['Coverage', 'Organization', 'RelatedPerson'];

describe('payers (crafted edge cases)', () => {
  const conversion = convertSectionFixture('payers-edge-cases');
  const coverages = resourcesOf(conversion, 'Coverage');
  const patient = `Patient/${conversion.patientId}`;

  itIsValidAndRepeatable('payers-edge-cases', conversion, TYPES);

  it('names the subscriber of a policy covering the patient as a child as a RelatedPerson', () => {
    const coverage = byIdentifier(coverages, 'GRP-5555')!;
    expect(coverage).toMatchObject({
      status: 'active',
      type: { coding: [{ system: 'https://nahdo.org/sopt', code: '72' }] },
      beneficiary: { reference: patient },
      subscriberId: 'SUB-0040',
      relationship: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/subscriber-relationship', code: 'child' }, { code: 'CHILD' }] },
      period: { start: '2024-01-01', end: '2024-12-31' },
      class: [{ type: { coding: [{ code: 'plan' }] }, value: 'PLAN-GOLD', name: 'Good Health Gold PPO' }],
      order: 1,
    });
    expect(coverage.identifier).toContainEqual({ system: 'urn:oid:2.16.840.1.113883.19.5.99999.73', value: 'MEMBER-0042', type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'MB', display: 'Member Number' }] } });
    expect(coverage.subscriber).toEqual(coverage.policyHolder);
    expect(resolve(conversion, coverage.subscriber)).toMatchObject({
      resourceType: 'RelatedPerson',
      patient: { reference: patient },
      identifier: [{ value: 'SUB-0040' }],
      name: [{ family: 'Park', given: ['Jiwoo'] }],
      birthDate: '1962-04-07',
    });
  });

  it('makes the payer an Organization with the payer id, name, telecom and an address that is not a home', () => {
    const payor = resolve(conversion, (byIdentifier(coverages, 'GRP-5555')!.payor as unknown[])[0])!;
    expect(payor).toEqual({
      resourceType: 'Organization',
      id: payor.id,
      identifier: [{ system: 'urn:oid:2.16.840.1.113883.6.300', value: '12345' }],
      name: 'Good Health Insurance',
      telecom: [{ system: 'phone', value: '+1(555)555-1515', use: 'work' }],
      address: [{ line: ['9009 Health Drive'], city: 'Portland', state: 'OR', postalCode: '99123' }],
    });
    // The guarantor is no payer.
    expect(JSON.stringify(resourcesOf(conversion, 'Organization'))).not.toContain('GUAR-1');
  });

  it('makes the patient the subscriber of a policy they hold, and keeps a payer known by its id alone', () => {
    const coverage = byIdentifier(coverages, 'MCR-1')!;
    expect(coverage).toMatchObject({ subscriber: { reference: patient }, policyHolder: { reference: patient }, subscriberId: '1EG4TE5MK73', order: 2 });
    expect(resolve(conversion, (coverage.payor as unknown[])[0])).toMatchObject({ identifier: [{ value: '00430' }] });
  });

  it('reports a coverage activity holding no policy', () => {
    expect(coverages).toHaveLength(2);
    expect(conversion.issues).toContainEqual(expect.objectContaining({ severity: 'warning', code: 'entries-not-converted', text: 'a coverage activity without a policy activity was not converted' }));
  });

  it('notes, rather than warns of, a coverage activity with nothing in it (id and code unknown: a placeholder for no information)', () => {
    const raw = readFileSync(path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'cda', 'sections', 'payers-edge-cases.xml'), 'utf8');
    const empty = raw.replace(
      /<templateId root="2\.16\.840\.1\.113883\.10\.20\.22\.4\.60" extension="2015-08-01"\/>\s*<id root="2\.16\.840\.1\.113883\.19\.5\.99999\.70" extension="COV-EMPTY"\/>\s*<code code="48768-6"[^>]*\/>/,
      '<id nullFlavor="UNK"/><code nullFlavor="UNK"/>',
    );
    expect(empty).not.toBe(raw);
    const placeholder = convertBytes(Buffer.from(empty)).issues.filter((issue) => issue.text.startsWith('a coverage activity'));
    expect(placeholder.map((issue) => [issue.severity, issue.text])).toEqual([['information', 'a coverage activity with no policy or anything else in it (a placeholder for no information) was not converted']]);
  });
});

describe('payers (public documents)', () => {
  it('HL7 CCD: a self-pay policy the patient holds, paid by Good Health Insurance', () => {
    const conversion = convertCorpusDocument('hl7-c-cda-examples/CCD.xml');
    expect(problemsOf(conversion, TYPES)).toEqual([]);
    const [coverage, ...others] = resourcesOf(conversion, 'Coverage');
    expect(others).toEqual([]);
    expect(coverage).toMatchObject({
      type: { coding: [{ code: '81' }] },
      subscriber: { reference: `Patient/${conversion.patientId}` },
      subscriberId: '1138345',
      relationship: { coding: [{ code: 'self' }, { code: 'SELF' }] },
    });
    expect(resolve(conversion, (coverage!.payor as unknown[])[0])).toMatchObject({ name: 'Good Health Insurance' });
  });

  it('athenahealth CCD: every policy of a real document converts', () => {
    const conversion = convertCorpusDocument('nurrahealth-ccda-to-fhir/athena_ccd_real_world.xml');
    expect(problemsOf(conversion, TYPES)).toEqual([]);
    const coverages = resourcesOf(conversion, 'Coverage');
    expect(coverages).toHaveLength(2);
    for (const coverage of coverages) expect(coverage.beneficiary).toEqual({ reference: `Patient/${conversion.patientId}` });
  });
});

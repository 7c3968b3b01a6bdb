/**
 * The advance directives section converted by mappers/cda/sections/advance-directives.ts: each directive a Consent
 * with scope adr, its kind as category, its content and span as the provision, the document holding it as source.
 * Crafted edge cases (test/fixtures/cda/sections/advance-directives-edge-cases.xml) and real documents.
 */
import { describe, expect, it } from 'vitest';

import { byIdentifier, convertCorpusDocument, convertSectionFixture, itIsValidAndRepeatable, problemsOf, resourcesOf } from '../support/cda-section-documents.ts';

const TYPES = ['Consent'];
const ADR = { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/consentscope', code: 'adr', display: 'Advanced Care Directive' }] };
const ACD = { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/consentcategorycodes', code: 'acd', display: 'Advance Directive' }] };

describe('advance directives (crafted edge cases)', () => {
  const conversion = convertSectionFixture('advance-directives-edge-cases');
  const consents = resourcesOf(conversion, 'Consent');
  const patient = `Patient/${conversion.patientId}`;

  itIsValidAndRepeatable('advance-directives-edge-cases', conversion, TYPES);

  it('makes a do-not-resuscitate directive a Consent: its kind, content, span, author time and document', () => {
    expect(byIdentifier(consents, 'AD-DNR')).toMatchObject({
      status: 'active',
      scope: ADR,
      category: [ACD, { coding: [{ code: '304251008' }, { code: '75320-2' }] }, { coding: [{ code: '45473-6' }] }],
      patient: { reference: patient },
      // The organizer's author: the observation has none of its own.
      dateTime: '2023-08-01T12:35:00-05:00',
      performer: [{ reference: patient }],
      sourceAttachment: { contentType: 'application/pdf', url: 'https://documents.example.org/ad/ADDOC-1.pdf', title: 'Do not resuscitate' },
      // No document says which law governs a directive (FHIR ppc-1 requires one).
      policyRule: { extension: [{ url: 'http://hl7.org/fhir/StructureDefinition/data-absent-reason', valueCode: 'unknown' }] },
      provision: { period: { start: '2023-08-01' }, code: [{ coding: [{ system: 'http://snomed.info/sct', code: '304253006' }] }] },
    });
  });

  it('keeps a nullified directive as entered in error, its text from the narrative and its document by id', () => {
    expect(byIdentifier(consents, 'AD-INTUBATION')).toMatchObject({
      status: 'entered-in-error',
      dateTime: '2022-01-05',
      sourceReference: { identifier: { system: 'urn:oid:2.16.840.1.113883.19.5.99999.52', value: 'ADDOC-2' } },
      provision: { period: { start: '2022-01-01', end: '2023-12-31' }, code: [{ text: 'No intubation' }] },
    });
  });

  it('makes no Consent of "no advance directive", and says so', () => {
    expect(consents).toHaveLength(2);
    expect(conversion.issues).toContainEqual(expect.objectContaining({ code: 'entries-not-converted', location: '/ClinicalDocument/component/structuredBody/component[1]/section/entry[3]/observation' }));
    // Said once, at the entry: not again as the section's count of entries not converted.
    expect(conversion.issues.filter((issue) => issue.location === '/ClinicalDocument/component/structuredBody/component[1]/section')).toEqual([]);
  });
});

describe('advance directives (public documents)', () => {
  it('HL7 CCD: a living will organizer holding a do-not-resuscitate directive and its PDF', () => {
    const conversion = convertCorpusDocument('hl7-c-cda-examples/CCD.xml');
    expect(problemsOf(conversion, TYPES)).toEqual([]);
    expect(resourcesOf(conversion, 'Consent')).toMatchObject([{
      scope: ADR,
      category: [ACD, { coding: [{ code: '75278-2' }] }, { coding: [{ code: '45473-6' }] }],
      sourceAttachment: { contentType: 'application/pdf', url: 'AdvanceDirective.b50b7910.pdf' },
      provision: { period: { start: '2011-02-19' }, code: [{ coding: [{ code: '304253006' }] }] },
    }]);
  });

  it('ONC validator sample: R2.1 directive observations sent without an organizer', () => {
    const conversion = convertCorpusDocument('onc-reference-ccda-validator/tempResults_ValidatorBrokeETTGG.xml');
    expect(problemsOf(conversion, TYPES)).toEqual([]);
    const consents = resourcesOf(conversion, 'Consent');
    expect(consents).toHaveLength(3);
    expect(byIdentifier(consents, '120001')).toMatchObject({ provision: { period: { start: '2019-06-05T10:48:21-04:00', end: '2020-06' }, code: [{ coding: [{ code: '281789004' }] }] } });
  });
});

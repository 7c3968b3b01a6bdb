/**
 * The C-CDA conversion's decisions, one by one: patient identity shared with HL7 v2, local times, date precision,
 * section routing, deterministic ids, the document inside an HL7 message, the DocumentReference, and the property
 * that every mutated real document converts to valid FHIR or is refused with a code.
 */

import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { convertCcdaToFhir, convertXmlToCcda, mapCcdaToFhirDateTime } from '@medplum/ccda';
import { describe, expect, it } from 'vitest';

import { parseHl7 } from '../../formats/hl7v2/parse.ts';
import { isAnchorlineError } from '../../errors/index.ts';
import { cdaIssuesOutcome, convertCdaDocument, type CdaConversion } from '../../mappers/cda/index.ts';
import { defaultHl7MappingOptions, mapHl7Message, mergeDraft, validateFhirResource, type Hl7MappingOptions, type ResourceDraft } from '../../mappers/index.ts';
import { requiredCodeIssues } from '../../mappers/fhir-required-codes.ts';

import { mutations } from './sections-support.ts';

const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'cda');
const fixture = (name: string): Buffer => readFileSync(path.join(FIXTURES, name));

function convert(raw: Buffer | string, mapping: Partial<Hl7MappingOptions> = {}, extra: { subjectPatientId?: string } = {}): CdaConversion {
  const bytes = Buffer.isBuffer(raw) ? raw : Buffer.from(raw);
  return convertCdaDocument(bytes, {
    mapping: { ...defaultHl7MappingOptions, ...mapping },
    source: { sha256: createHash('sha256').update(bytes).digest(), size: bytes.length },
    ...extra,
  });
}

const ofType = (conversion: CdaConversion, type: string): ResourceDraft[] => conversion.drafts.filter((draft) => draft.resourceType === type);

function hl7PatientId(cx: string, mapping: Partial<Hl7MappingOptions> = {}): string {
  const message = [
    'MSH|^~\\&|HIS|SEOULGEN|ANCHORLINE|ANCHORLINE|20240501100000+0900||ADT^A28^ADT_A05|A28-1|P|2.5.1',
    'EVN|A28|20240501100000',
    `PID|1||${cx}||KIM^JISOO||19850203|F`,
  ].join('\r');
  const result = mapHl7Message(parseHl7(message), { ...defaultHl7MappingOptions, ...mapping });
  return result.drafts.find((draft) => draft.resourceType === 'Patient')!.id;
}

describe('patient identity', () => {
  it('is the Patient an HL7 v2 message gives the same identifier: CDA root = CX-4 ISO universal id', () => {
    const conversion = convert(fixture('unknown-section.xml'));
    expect(conversion.patientId).toBe(hl7PatientId('12345^^^&2.16.840.1.113883.19.5&ISO^MR'));
    expect(ofType(conversion, 'Patient')[0]!.id).toBe(conversion.patientId);
  });

  it('is also the one a namespace-only CX-4 gets when a mapping config maps the namespace to urn:oid:<root>', () => {
    const mapping = { identifierSystems: { SEOULGEN: 'urn:oid:2.16.840.1.113883.19.5' } };
    expect(convert(fixture('unknown-section.xml'), mapping).patientId).toBe(hl7PatientId('12345^^^SEOULGEN^MR', mapping));
  });

  it('adds the document\'s identifiers to the stored ones, and takes no identifier away', () => {
    const patient = ofType(convert(fixture('korean-discharge-summary.xml')), 'Patient')[0]!;
    const stored = { resourceType: 'Patient', id: patient.id, identifier: [{ system: 'http://hl7.org/fhir/sid/us-ssn', value: '123-45-6789' }] };
    expect(mergeDraft(stored, patient).identifier).toEqual([
      { system: 'http://hl7.org/fhir/sid/us-ssn', value: '123-45-6789' },
      { system: 'urn:oid:1.2.410.999999.1.1', value: 'H0012345' },
    ]);
  });
});

describe('times and dates', () => {
  it('places times sent without an offset in the mapping\'s time zone, and keeps offsets that are sent', () => {
    const seoul = convert(fixture('korean-discharge-summary.xml'));
    const newYork = convert(fixture('korean-discharge-summary.xml'), { timeZone: 'America/New_York' });
    expect(ofType(seoul, 'Composition')[0]!.date).toBe('2024-03-15T14:30:00+09:00');
    expect(ofType(newYork, 'Composition')[0]!.date).toBe('2024-03-15T14:30:00-04:00');
    expect(ofType(convert(fixture('unknown-section.xml'), { timeZone: 'America/New_York' }), 'Composition')[0]!.date).toBe('2024-05-01T10:15:00+09:00');
    expect(seoul.eventTime).toBe('2024-03-15T14:30:00+09:00');
  });

  it('keeps dates at the precision sent (the converter alone would make them midnight UTC and lose a month)', () => {
    const conversion = convert(fixture('korean-discharge-summary.xml'));
    expect(ofType(conversion, 'Condition')[0]!.onsetDateTime).toBe('2014-03');
    expect(ofType(conversion, 'AllergyIntolerance')[0]!.onsetDateTime).toBe('2015');
    expect(ofType(conversion, 'AllergyIntolerance')[0]!.recordedDate).toBe('2024-03-10');
    expect(mapCcdaToFhirDateTime('201403')).toBe('2014-01-01T00:00:00Z');
    expect(mapCcdaToFhirDateTime('20240310')).toBe('2024-03-10T00:00:00Z');
  });
});

describe('section routing', () => {
  it('converts sections the converter would skip for the order or absence of their templateIds', () => {
    const conversion = convert(fixture('korean-discharge-summary.xml'));
    // IHE template first (allergies), no templateId at all (problems), the entries-optional root (medications).
    expect(ofType(conversion, 'AllergyIntolerance')).toHaveLength(1);
    expect(ofType(conversion, 'Condition')).toHaveLength(1);
    expect(ofType(conversion, 'MedicationRequest')).toHaveLength(1);
    // The converter alone fails on the section without a templateId, and given one, skips the other two.
    const text = fixture('korean-discharge-summary.xml').toString('utf8');
    expect(() => convertCcdaToFhir(convertXmlToCcda(text), { ignoreUnsupportedSections: true })).toThrow(TypeError);
    const routable = text.replace('<section>\n          <code code="11450-4"', '<section>\n          <templateId root="2.16.840.1.113883.10.20.22.2.5.1"/><code code="11450-4"');
    const bare = convertCcdaToFhir(convertXmlToCcda(routable), { ignoreUnsupportedSections: true });
    const bareTypes = ((bare.entry ?? []) as Array<{ resource?: { resourceType: string } }>).map((entry) => entry.resource!.resourceType);
    expect(bareTypes).toContain('Condition');
    expect(bareTypes).not.toContain('AllergyIntolerance');
    expect(bareTypes).not.toContain('MedicationRequest');
  });

  it('reports a section it does not know, and converts the rest', () => {
    const conversion = convert(fixture('unknown-section.xml'));
    expect(conversion.issues.map((issue) => issue.code)).toEqual(['section-not-supported']);
    expect(ofType(conversion, 'Immunization')).toHaveLength(1);
    const composition = ofType(conversion, 'Composition')[0] as unknown as { section: Array<{ title: string; text: { div: string } }> };
    expect(composition.section.map((section) => section.title)).toEqual(['Local screening results', 'Immunizations']);
    expect(composition.section[0]!.text.div).toContain('Screening done');
  });

  it('converts the other sections when the converter fails on one, and reports that one', () => {
    const conversion = convert(fixture('section-fails.xml'));
    expect(conversion.issues).toEqual([expect.objectContaining({ code: 'section-failed', location: '/ClinicalDocument/component/structuredBody/component[1]/section' })]);
    expect(ofType(conversion, 'Immunization')).toHaveLength(1);
    expect(() => convertCcdaToFhir(convertXmlToCcda(fixture('section-fails.xml').toString('utf8')), { ignoreUnsupportedSections: true })).toThrow();
  });
});

describe('ids and references', () => {
  it('gives every resource an id from the document (the converter\'s own are random), and every reference resolves', () => {
    const raw = fixture('sample-ccd-r11.xml');
    const first = convert(raw);
    expect(convert(raw).drafts).toEqual(first.drafts);
    const keys = new Set(first.drafts.map((draft) => `${draft.resourceType}/${draft.id}`));
    const references = JSON.stringify(first.drafts).match(/"reference":"[A-Za-z]+\/[^"]+"/g) ?? [];
    for (const reference of references) {
      const target = reference.slice('"reference":"'.length, -1);
      if (target.startsWith('Composition/') && !keys.has(target)) continue; // a replaced document
      expect(keys, target).toContain(target);
    }
  });

  it('names an entry by its own id, so another document with the same entry updates the same resource', () => {
    const one = ofType(convert(fixture('korean-discharge-summary.xml')), 'AllergyIntolerance')[0]!.id;
    const other = fixture('korean-discharge-summary.xml').toString('utf8').replace('DS-2024-000123-v2', 'DS-2024-000999').replace('20240315143000', '20240401100000');
    expect(ofType(convert(other), 'AllergyIntolerance')[0]!.id).toBe(one);
  });

  it('keeps entries that reuse one id apart (sample documents reuse an id for every allergy)', () => {
    const conversion = convert(fixture('sample-ccd-r11.xml'));
    expect(new Set(ofType(conversion, 'AllergyIntolerance').map((draft) => draft.id)).size).toBe(3);
    expect(conversion.issues.map((issue) => issue.code)).toContain('repeated-entry-id');
  });
});

describe('what the converter gets wrong, corrected', () => {
  it('files an allergy by its type and a dose in its own unit', () => {
    const conversion = convert(fixture('korean-discharge-summary.xml'));
    expect(ofType(conversion, 'AllergyIntolerance')[0]).toMatchObject({ type: 'allergy', category: ['medication'] });
    const dosage = (ofType(conversion, 'MedicationRequest')[0]!.dosageInstruction as Array<{ doseAndRate: unknown }>)[0]!;
    expect(dosage.doseAndRate).toEqual([{ doseQuantity: { value: 500, unit: 'mg', system: 'http://unitsofmeasure.org', code: 'mg' } }]);
  });
});

describe('organizations as CDA writes them', () => {
  it('takes the text of a name with a use attribute, and drops the home use FHIR forbids on an organization', () => {
    const text = fixture('korean-discharge-summary.xml').toString('utf8').replace(
      '<name>서울중앙병원</name>',
      '<name use="L">서울중앙병원</name><telecom use="HP" value="tel:+82-2-555-0199"/><addr use="HP"><city>서울</city></addr>',
    );
    const organization = ofType(convert(text), 'Organization').find((draft) => JSON.stringify(draft).includes('서울중앙병원'))!;
    expect(organization['name']).toBe('서울중앙병원');
    for (const list of ['telecom', 'address']) for (const item of (organization[list] as Array<{ use?: string }> | undefined) ?? []) expect(item.use).not.toBe('home');
    expect(validateFhirResource(mergeDraft(undefined, organization))).toEqual([]);
  });
});

describe('the DocumentReference', () => {
  it('points at the stored bytes by their SHA-256, and at the Composition; relatesTo names what the document replaces', () => {
    const raw = fixture('korean-discharge-summary.xml');
    const conversion = convert(raw);
    const documentReference = conversion.documentReference!;
    const content = (documentReference.content as Array<{ attachment: { url: string; size: number; contentType: string } }>)[0]!.attachment;
    expect(content.url).toBe(`urn:anchorline:message:${createHash('sha256').update(raw).digest('hex')}`);
    expect(content.size).toBe(raw.length);
    expect(documentReference.subject).toEqual({ reference: `Patient/${conversion.patientId}` });
    expect((documentReference.context as { related: unknown[] }).related).toEqual([{ reference: `Composition/${conversion.compositionId}` }]);
    expect(documentReference.relatesTo).toEqual([{ code: 'replaces', target: { reference: expect.stringMatching(/^DocumentReference\//) } }]);
    expect(conversion.drafts.at(-1)!.resourceType).toBe('DocumentReference');
  });
});

describe('a document inside an HL7 v2 message', () => {
  it('is about the message\'s patient: no Patient and no DocumentReference of its own', () => {
    const conversion = convert(fixture('unknown-section.xml'), {}, { subjectPatientId: 'patient-from-pid' });
    expect(ofType(conversion, 'Patient')).toEqual([]);
    expect(ofType(conversion, 'DocumentReference')).toEqual([]);
    expect(ofType(conversion, 'Immunization')[0]!.patient).toMatchObject({ reference: 'Patient/patient-from-pid' });
    expect(ofType(conversion, 'Composition')[0]!.subject).toEqual({ reference: 'Patient/patient-from-pid' });
  });

  it('needs no recordTarget of its own', () => {
    const conversion = convert(fixture('error-no-record-target.xml'), {}, { subjectPatientId: 'patient-from-pid' });
    expect(ofType(conversion, 'Composition')[0]!.subject).toEqual({ reference: 'Patient/patient-from-pid' });
  });
});

describe('issues', () => {
  it('read as a valid OperationOutcome', () => {
    const outcome = cdaIssuesOutcome(convert(fixture('sample-ccd-r11.xml')).issues, { code: 'document-stored', text: 'stored' });
    expect(validateFhirResource(outcome)).toEqual([]);
    expect((outcome.issue as unknown[]).length).toBeGreaterThan(2);
  });

  it('converts the header of a document whose structuredBody holds text and no sections, and says so', () => {
    const text = fixture('korean-discharge-summary.xml').toString('utf8').replace(/<structuredBody>[\s\S]*<\/structuredBody>/, '<structuredBody> ... </structuredBody>');
    const conversion = convert(text);
    expect(ofType(conversion, 'Patient')).toHaveLength(1);
    expect(ofType(conversion, 'Composition')).toHaveLength(1);
    expect(conversion.issues.map((issue) => issue.code)).toContain('body-not-structured');
  });
});

describe('property: every mutated real document converts to valid FHIR or is refused with a code', () => {
  for (const name of ['sample-ccd-r11.xml', 'sample-ccda-null-flavors.xml', 'korean-discharge-summary.xml']) {
    it(name, () => {
      const text = fixture(name).toString('utf8');
      for (const mutated of mutations(text, 25, name.length)) {
        let conversion: CdaConversion;
        try {
          conversion = convert(mutated);
        } catch (error) {
          if (!isAnchorlineError(error) || error.retryable) throw error;
          continue;
        }
        for (const draft of conversion.drafts) {
          const resource = mergeDraft(undefined, draft);
          expect([...validateFhirResource(resource), ...requiredCodeIssues(resource)], `${draft.resourceType}/${draft.id}`).toEqual([]);
        }
      }
    });
  }
});

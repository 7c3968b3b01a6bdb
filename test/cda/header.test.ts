/**
 * The header beyond patient and author (mappers/cda/header.ts): the patient's languages, the attesters and the
 * encompassing encounter, on a crafted document (header-attesters-encounter.xml) and on the public samples.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { describe, expect, it } from 'vitest';

import { convertCdaDocument, type CdaConversion, type FhirResource } from '../../mappers/cda/index.ts';
import { defaultHl7MappingOptions, deterministicId, mergeDraft, validateFhirResource } from '../../mappers/index.ts';

const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'cda');
const fixture = (name: string): Buffer => readFileSync(path.join(FIXTURES, name));

function convert(raw: Buffer | string): CdaConversion {
  const bytes = Buffer.isBuffer(raw) ? raw : Buffer.from(raw);
  return convertCdaDocument(bytes, { mapping: defaultHl7MappingOptions, source: { sha256: createHash('sha256').update(bytes).digest(), size: bytes.length } });
}

function resource(conversion: CdaConversion, reference: unknown): FhirResource {
  const [type, id] = String((reference as { reference?: string }).reference).split('/');
  const found = conversion.resources.find((candidate) => candidate.resourceType === type && candidate.id === id);
  expect(found, `${type}/${id}`).toBeDefined();
  return found!;
}

const ownId = (root: string, extension = ''): string => deterministicId('CdaElement', root, extension);

describe('C-CDA header', () => {
  const conversion = convert(fixture('header-attesters-encounter.xml'));
  const composition = conversion.resources[0]! as FhirResource & { attester: Array<Record<string, any>>; encounter: { reference: string }; author: Array<{ reference: string }> };

  it('gives the Patient its languages: language, preference, and mode and proficiency in the patient-proficiency extension', () => {
    const patient = conversion.resources.find((candidate) => candidate.resourceType === 'Patient')!;
    const proficiency = 'http://hl7.org/fhir/StructureDefinition/patient-proficiency';
    expect(patient.communication).toEqual([
      {
        extension: [{ url: proficiency, extension: [
          { url: 'level', valueCoding: { system: 'http://terminology.hl7.org/CodeSystem/v3-LanguageAbilityProficiency', code: 'E', display: 'Excellent' } },
          { url: 'type', valueCoding: { system: 'http://terminology.hl7.org/CodeSystem/v3-LanguageAbilityMode', code: 'ESP', display: 'Expressed spoken' } },
        ] }],
        language: { coding: [{ system: 'urn:ietf:bcp:47', code: 'ko' }] },
        preferred: true,
      },
      {
        extension: [{ url: proficiency, extension: [{ url: 'level', valueCoding: { system: 'http://terminology.hl7.org/CodeSystem/v3-LanguageAbilityProficiency', code: 'F', display: 'Fair' } }] }],
        language: { coding: [{ system: 'urn:ietf:bcp:47', code: 'en' }] },
        preferred: false,
      },
    ]);
  });

  it('makes the legal authenticator a legal attester and each authenticator a professional one, with the time signed in the sender\'s zone', () => {
    expect(composition.attester.map((attester) => [attester.mode, attester.time])).toEqual([
      // Sent without an offset (20240502173000): the mapping's time zone (Asia/Seoul) applies, as for every CDA time.
      ['legal', '2024-05-02T17:30:00+09:00'],
      ['professional', '2024-05-02T17:20:00+09:00'],
      ['professional', '2024-05-02T17:25:00+09:00'],
    ]);
    // The legal authenticator is also the author: one Practitioner, named by its own id, with what both say of it.
    const legal = resource(conversion, composition.attester[0]!.party);
    expect(composition.attester[0]!.party.reference).toBe(composition.author[0]!.reference);
    expect(legal).toMatchObject({ resourceType: 'Practitioner', id: ownId('2.16.840.1.113883.19.5.99999.2', 'DR-KIM'), name: [{ family: 'Kim', given: ['Doyun'] }], telecom: [{ system: 'phone', value: '+82-2-555-0100', use: 'work' }] });
    expect(resource(conversion, composition.attester[1]!.party)).toMatchObject({ resourceType: 'Practitioner', name: [{ prefix: ['Dr.'], family: 'Lee', given: ['Sora'] }] });
    // An authenticator without a person is its represented organization.
    expect(resource(conversion, composition.attester[2]!.party)).toMatchObject({
      resourceType: 'Organization',
      id: ownId('2.16.840.1.113883.19.5.99999.3', 'QA'),
      identifier: [{ system: 'urn:oid:2.16.840.1.113883.19.5.99999.3', value: 'QA' }],
      name: 'Medical Records Department',
    });
  });

  it('makes the encompassing encounter the Composition\'s Encounter, with its class, period, people, facility and provider', () => {
    const encounter = resource(conversion, composition.encounter);
    expect(encounter).toMatchObject({
      id: ownId('2.16.840.1.113883.19.5.99999.4', 'V-2024-0042'),
      identifier: [{ system: 'urn:oid:2.16.840.1.113883.19.5.99999.4', value: 'V-2024-0042' }],
      status: 'finished',
      class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'IMP' },
      subject: { reference: `Patient/${conversion.patientId}` },
      period: { start: '2024-04-28T09:30:00+09:00', end: '2024-05-02T16:00:00+09:00' },
      hospitalization: { dischargeDisposition: { coding: [expect.objectContaining({ code: '01' })] } },
    });
    expect(encounter.type ?? null).toBeNull();
    const participants = encounter.participant as Array<{ type: Array<{ coding: Array<{ code: string }> }>; individual: { reference: string } }>;
    expect(participants.map((participant) => participant.type[0]!.coding[0]!.code)).toEqual(['RESP', 'ATND']);
    expect(participants[0]!.individual.reference).toBe(composition.author[0]!.reference);
    // The attender also authenticated: one Practitioner, as the first mention named her.
    expect(participants[1]!.individual.reference).toBe(composition.attester[1]!.party.reference);
    const location = resource(conversion, (encounter.location as Array<{ location: unknown }>)[0]!.location);
    expect(location).toMatchObject({ resourceType: 'Location', name: 'Ward 7', address: { line: ['101 Daehak-ro'], city: 'Seoul', country: 'KR' }, type: [{ coding: [expect.objectContaining({ code: '1060-3' })] }] });
    // The service provider is the custodian organization (one id): one Organization.
    expect((encounter.serviceProvider as { reference: string }).reference).toBe((composition as { custodian?: { reference?: string } }).custodian?.reference);
  });

  it('yields valid FHIR R4 drafts, the Composition owning its attesters and encounter', () => {
    for (const draft of conversion.drafts) expect(validateFhirResource(mergeDraft(undefined, draft)), `${draft.resourceType}/${draft.id}`).toEqual([]);
    // A later version of the document without them removes them (the Composition is the document's own).
    const stripped = convert(fixture('header-attesters-encounter.xml').toString('utf8').replace(/<legalAuthenticator>[\s\S]*<\/componentOf>/, ''));
    const draft = stripped.drafts.find((candidate) => candidate.resourceType === 'Composition')!;
    expect(draft).toMatchObject({ attester: null, encounter: null });
  });

  it('keeps the ids of everything else: header elements are named after the body, so a document with them names the body\'s resources as one without', () => {
    for (const name of ['sample-ccd-r11.xml', 'sample-ccda-null-flavors.xml']) {
      const full = convert(fixture(name));
      const header = /<legalAuthenticator>[\s\S]*?<\/legalAuthenticator>|<authenticator>[\s\S]*?<\/authenticator>|<componentOf>[\s\S]*?<\/componentOf>/g;
      const text = fixture(name).toString('utf8');
      expect(text).toMatch(header);
      const without = convert(text.replace(header, ''));
      const ids = new Set(full.drafts.map((draft) => `${draft.resourceType}/${draft.id}`));
      for (const draft of without.drafts) {
        if (draft.resourceType === 'DocumentReference') continue;
        expect(ids.has(`${draft.resourceType}/${draft.id}`), `${name}: ${draft.resourceType}/${draft.id}`).toBe(true);
      }
      expect((full.resources[0] as { attester?: unknown[] }).attester?.length).toBeGreaterThan(0);
    }
  });
});

/**
 * Planned entries of a plan of care (sections/planned-entries.ts): a Plan of Treatment's planned procedures become
 * ServiceRequests (not records of procedures done) and its supplies requests of what they supply, while
 * @medplum/ccda still converts the section's other entries.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { describe, expect, it } from 'vitest';

import { mergeDraft, validateFhirResource } from '../../mappers/index.ts';
import { convertBytes, convertCorpusDocument } from '../support/cda-section-documents.ts';

const CORPUS = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'corpus', 'ccda');

function resources(conversion: ReturnType<typeof convertBytes>): Array<Record<string, any>> {
  return conversion.drafts.map((draft) => mergeDraft(undefined, draft) as Record<string, any>);
}

describe('planned entries', () => {
  it('makes the HL7 Transfer Summary\'s planned albuterol a MedicationRequest and its planned colonoscopy a ServiceRequest, beside the plan\'s other entries', () => {
    const conversion = convertCorpusDocument('hl7-c-cda-examples/Transfer_Summary.xml');
    const all = resources(conversion);
    const request = all.find((resource) => resource.resourceType === 'MedicationRequest' && resource.dispenseRequest !== undefined && JSON.stringify(resource.identifier).includes('9a6d1bac-17d3-4195-89c4-1121bc809b5d'));
    expect(request).toMatchObject({
      status: 'active',
      intent: 'order',
      authoredOn: '2013-07-30',
      dispenseRequest: { validityPeriod: { start: '2013-06-15' }, numberOfRepeatsAllowed: 0, quantity: { value: 3 } },
    });
    const medication = all.find((resource) => `Medication/${resource.id}` === request!.medicationReference.reference);
    expect(medication?.code.coding).toContainEqual(expect.objectContaining({ system: 'http://www.nlm.nih.gov/research/umls/rxnorm', code: '573621' }));
    // The planned colonoscopy (moodCode RQO) is a request, not a Procedure done; its day is when it is to be done.
    const colonoscopy = all.filter((resource) => JSON.stringify(resource.code ?? {}).includes('73761001'));
    expect(colonoscopy.map((resource) => [resource.resourceType, resource.intent, resource.occurrenceDateTime])).toEqual([['ServiceRequest', 'order', '2013-06-13']]);
    // The planned wound care (a Planned Act, INT) is a request too, active as its statusCode says.
    expect(all.filter((resource) => JSON.stringify(resource.code ?? {}).includes('225358003')).map((resource) => [resource.resourceType, resource.status, resource.intent])).toEqual([['ServiceRequest', 'active', 'plan']]);
    // The hand-over to the nurse (a Handoff Communication, done) is the Communication it records.
    expect(all.filter((resource) => JSON.stringify(resource.category ?? {}).includes('432138007')).map((resource) => [resource.resourceType, resource.status, resource.sent, resource.recipient?.length])).toEqual([['Communication', 'completed', '2013-07-12', 1]]);
    // The section's other entries are still @medplum/ccda's: the planned check-up.
    expect(all.filter((resource) => resource.resourceType === 'Encounter').flatMap((resource) => resource.type ?? []).map((type: any) => type.coding?.[0]?.code)).toContain('185349003');
    const plan = '/ClinicalDocument/component/structuredBody/component[19]/section';
    expect(conversion.issues.filter((issue) => issue.location?.startsWith(plan))).toEqual([]);
    for (const resource of all) expect(validateFhirResource(resource), `${resource.resourceType}/${resource.id}`).toEqual([]);
  });

  it('makes a supply without a product a DeviceRequest of what its code names, and reports one that names nothing', () => {
    // ONC's validator sample: two planned supplies named only by their code's original text ("OIT POC Supply", "CPAP").
    const conversion = convertCorpusDocument('onc-reference-ccda-validator/tempResults_ValidatorBrokeETTGG.xml');
    const requests = resources(conversion).filter((resource) => resource.resourceType === 'DeviceRequest');
    expect(requests.map((request) => request.codeCodeableConcept?.text).sort()).toEqual(['CPAP', 'OIT POC Supply']);
    expect(requests[0]).toMatchObject({ status: 'active', intent: 'order', occurrencePeriod: { start: '2019-06-10T10:48:21-04:00', end: '2019-06-26T10:48:21-04:00' } });
    for (const request of requests) expect(validateFhirResource(request)).toEqual([]);

    // The Transfer Summary's supply stripped of its product and its code: nothing says what is to be supplied.
    const raw = readFileSync(path.join(CORPUS, 'hl7-c-cda-examples', 'Transfer_Summary.xml'), 'utf8');
    const supplyAt = raw.indexOf('<id root="9a6d1bac-17d3-4195-89c4-1121bc809b5d" />');
    const productStart = raw.indexOf('<product>', supplyAt);
    const productEnd = raw.indexOf('</product>', productStart) + '</product>'.length;
    const stripped = convertBytes(Buffer.from(raw.slice(0, productStart) + raw.slice(productEnd), 'utf8'));
    expect(stripped.issues.filter((issue) => issue.code === 'entries-not-converted' && issue.location?.endsWith('/supply'))).toEqual([
      expect.objectContaining({ severity: 'warning', location: '/ClinicalDocument/component/structuredBody/component[19]/section/entry[9]/supply' }),
    ]);
  });

  it('makes a planned observation (a test to be done) a ServiceRequest for its time, not a Goal', () => {
    // Amida's null-flavor sample: a Sputum Culture requested (moodCode RQO) for the center of its effectiveTime.
    const all = resources(convertCorpusDocument('amida-blue-button/CCDA_NullFlavorSample_v1.xml'));
    const culture = all.filter((resource) => JSON.stringify(resource.code ?? resource.category ?? {}).includes('624-7'));
    expect(culture.map((resource) => [resource.resourceType, resource.intent, resource.status, resource.occurrenceDateTime])).toEqual([['ServiceRequest', 'order', 'draft', '2012-08-20']]);
    for (const resource of culture) expect(validateFhirResource(resource)).toEqual([]);
  });
});

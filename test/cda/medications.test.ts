/**
 * Medication sections converted by mappers/cda/sections/medications.ts: a history of use is a MedicationStatement,
 * an order a MedicationRequest, an administration a MedicationAdministration, each naming a Medication resource made
 * once per product; dosage as sent (decimals kept, timing, route, site, as-needed, sig). Crafted edge cases
 * (test/fixtures/cda/sections/medications-edge-cases.xml) and real documents of the public corpus.
 */
import { describe, expect, it } from 'vitest';

import { byIdentifier, convertCorpusDocument, convertSectionFixture, itIsValidAndRepeatable, problemsOf, resolve, resourcesOf } from '../support/cda-section-documents.ts';
import { stringifyJson } from '../../anchor/index.ts';

const TYPES = ['MedicationStatement', 'MedicationRequest', 'MedicationAdministration', 'Medication', 'Organization', 'Practitioner', 'PractitionerRole'];

describe('medication sections (crafted edge cases)', () => {
  const conversion = convertSectionFixture('medications-edge-cases');
  const statements = resourcesOf(conversion, 'MedicationStatement');
  const requests = resourcesOf(conversion, 'MedicationRequest');

  itIsValidAndRepeatable('medications-edge-cases', conversion, TYPES);

  it('reads a history of use (EVN) as a MedicationStatement with its dosage as sent', () => {
    const statement = byIdentifier(statements, 'MED-A')!;
    expect(statement).toMatchObject({
      status: 'active',
      effectivePeriod: { start: '2024-01-01', end: '2024-06-30' },
      dateAsserted: '2024-01-02T09:30:00-05:00',
      reasonCode: [{ coding: [{ system: 'http://snomed.info/sct', code: '38341003' }] }],
      note: [{ text: 'Patient reports taking it with food.' }],
    });
    const dosage = (statement.dosage as Array<Record<string, unknown>>)[0]!;
    expect(dosage).toMatchObject({
      text: 'Take half a tablet every 8 hours when needed for palpitations',
      patientInstruction: 'Do not stop suddenly.',
      // Every 8 hours at times the institution sets: three times a day.
      timing: { repeat: { frequency: 3, period: 1, periodUnit: 'd' } },
      asNeededCodeableConcept: { coding: [{ code: '80313002' }] },
      site: { coding: [{ code: '181220002' }] },
      route: { coding: [{ code: 'C38288' }] },
    });
    // The decimal as sent: 0.50, not 0.5.
    expect(stringifyJson((dosage.doseAndRate as unknown[])[0])).toBe('{"doseQuantity":{"value":0.50,"unit":"mg","system":"http://unitsofmeasure.org","code":"mg"}}');
    expect(resolve(conversion, statement.informationSource)?.resourceType).toBe('PractitionerRole');
  });

  it('reads an order (INT) as a MedicationRequest: dose range, rate, event timing, supply order', () => {
    const request = byIdentifier(requests, 'MED-B')!;
    expect(request).toMatchObject({
      status: 'active',
      intent: 'order',
      // The earliest author's time.
      authoredOn: '2024-03-14T10:00:00-05:00',
      dispenseRequest: { validityPeriod: { end: '2024-09-15' }, numberOfRepeatsAllowed: 2, quantity: { value: 60 } },
    });
    expect(resolve(conversion, request.requester)?.resourceType).toBe('Practitioner');
    const dosage = (request.dosageInstruction as Array<Record<string, unknown>>)[0]!;
    expect(dosage.timing).toEqual({ repeat: { boundsPeriod: { start: '2024-03-15' }, when: ['AC'], offset: 30 } });
    expect(stringifyJson(dosage.doseAndRate)).toBe(
      '[{"doseRange":{"low":{"value":12.5,"unit":"mg","system":"http://unitsofmeasure.org","code":"mg"},"high":{"value":25,"unit":"mg","system":"http://unitsofmeasure.org","code":"mg"}},'
      + '"rateQuantity":{"value":1.0,"unit":"mg/h","system":"http://unitsofmeasure.org","code":"mg/h"}}]',
    );
  });

  it('makes one Medication of a product named twice, with its codes, form and manufacturer', () => {
    const history = byIdentifier(statements, 'MED-A')!;
    const order = byIdentifier(requests, 'MED-B')!;
    expect(history.medicationReference).toEqual(order.medicationReference);
    const medication = resolve(conversion, history.medicationReference)!;
    expect(medication).toMatchObject({
      resourceType: 'Medication',
      code: {
        coding: [
          { system: 'http://www.nlm.nih.gov/research/umls/rxnorm', code: '866426' },
          { system: 'http://hl7.org/fhir/sid/ndc', code: '0378-0018-01' },
        ],
        // The originalText, resolved in the narrative.
        text: 'Metoprolol tartrate 25 MG Oral Tablet',
      },
      form: { coding: [{ code: 'C48542' }] },
    });
    expect(resolve(conversion, medication.manufacturer)).toMatchObject({ resourceType: 'Organization', name: 'Mylan Pharmaceuticals' });
  });

  it('reads "no known medications" as not taken, a proposal as one, and reports a mood it makes nothing of', () => {
    expect(byIdentifier(statements, 'MED-NONE')).toMatchObject({ status: 'not-taken' });
    expect(byIdentifier(requests, 'MED-PRP')).toMatchObject({ intent: 'proposal', status: 'draft' });
    expect(conversion.issues).toContainEqual(expect.objectContaining({ code: 'entries-not-converted', text: 'a medication activity with moodCode GOL was not converted' }));
  });

  it('files discharge medications as discharge orders and admission medications as statements', () => {
    expect(byIdentifier(requests, 'MED-DISCHARGE')).toMatchObject({
      intent: 'order',
      category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/medicationrequest-category', code: 'discharge' }] }],
    });
    expect(byIdentifier(statements, 'MED-HOME')).toMatchObject({ status: 'completed', effectivePeriod: { start: '2023', end: '2024-03-10' } });
  });

  it('reads medications administered as MedicationAdministrations; one without a time is kept with its time unknown, a placeholder is not', () => {
    const administrations = resourcesOf(conversion, 'MedicationAdministration');
    expect(administrations).toHaveLength(2);
    const administration = byIdentifier(administrations, 'MED-GIVEN')!;
    expect(administration).toMatchObject({ status: 'completed', effectiveDateTime: '2024-03-12T08:15:00-05:00', dosage: { dose: { value: 5000, unit: '[iU]' } } });
    expect(resolve(conversion, (administration.performer as Array<{ actor: unknown }>)[0]!.actor)?.resourceType).toBe('Practitioner');
    expect(resolve(conversion, administration.medicationReference)).toMatchObject({ batch: { lotNumber: 'HEP-2024-17' } });
    const untimed = byIdentifier(administrations, 'MED-GIVEN-NO-TIME')!;
    expect(untimed.effectiveDateTime).toBeUndefined();
    expect(untimed._effectiveDateTime).toEqual({ extension: [{ url: 'http://hl7.org/fhir/StructureDefinition/data-absent-reason', valueCode: 'unknown' }] });
    expect(resolve(conversion, untimed.medicationReference)).toMatchObject({ code: { coding: [expect.objectContaining({ code: '1361615' })] } });
    const section = '/ClinicalDocument/component/structuredBody/component[4]/section';
    expect(conversion.issues).toContainEqual(expect.objectContaining({ severity: 'warning', code: 'value-not-converted', location: `${section}/entry[2]/substanceAdministration` }));
    expect(conversion.issues).toContainEqual(expect.objectContaining({ severity: 'information', code: 'entries-not-converted', location: `${section}/entry[3]/substanceAdministration` }));
    // The section's count of entries not converted is not added: the placeholder says why at the entry.
    expect(conversion.issues.filter((issue) => issue.location === section)).toEqual([]);
  });

  it('lists what it made in the Composition\'s sections', () => {
    const composition = resourcesOf(conversion, 'Composition')[0]!;
    const sections = composition.section as Array<{ entry?: Array<{ reference: string }> }>;
    expect(sections[0]!.entry).toHaveLength(4);
    expect(sections[0]!.entry!.every((entry) => /^Medication(Statement|Request)\//.test(entry.reference))).toBe(true);
    expect(sections[3]!.entry).toEqual(resourcesOf(conversion, 'MedicationAdministration').map((administration) => ({ reference: `MedicationAdministration/${administration.id}` })));
  });
});

describe('medication sections (public documents)', () => {
  it('HL7 CCD: a history of use as needed, four times a day, for asthma, with its drug vehicle', () => {
    const conversion = convertCorpusDocument('hl7-c-cda-examples/CCD.xml');
    expect(problemsOf(conversion, TYPES)).toEqual([]);
    expect(resourcesOf(conversion, 'MedicationRequest')).toEqual([]);
    const statement = resourcesOf(conversion, 'MedicationStatement').find((resource) => JSON.stringify(resource.reasonCode).includes('195967001'))!;
    expect(statement).toMatchObject({ status: 'active', effectivePeriod: { start: '2011-01-03' } });
    expect((statement.dosage as Array<Record<string, unknown>>)[0]).toMatchObject({
      timing: { repeat: { frequency: 4, period: 1, periodUnit: 'd' } },
      asNeededCodeableConcept: { coding: [{ code: '56018004' }] },
      route: { coding: [{ code: 'C38216' }] },
    });
    expect(resolve(conversion, statement.medicationReference)).toMatchObject({
      code: { coding: [{ code: '573621' }] },
      form: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-orderableDrugForm', code: 'PUFF' }] },
      ingredient: [{ itemCodeableConcept: { coding: [{ code: '324049' }] }, isActive: false }],
    });
  });

  it('ONC validator sample: orders with a dose range, supply orders, comments and discharge orders', () => {
    const conversion = convertCorpusDocument('onc-reference-ccda-validator/tempResults_ValidatorBrokeETTGG.xml');
    expect(problemsOf(conversion, TYPES)).toEqual([]);
    const requests = resourcesOf(conversion, 'MedicationRequest');
    expect(byIdentifier(requests, '210001')).toMatchObject({
      intent: 'order',
      note: [{ text: 'Medication Comment' }],
      dispenseRequest: { numberOfRepeatsAllowed: 19, quantity: { value: 30 } },
      dosageInstruction: [{ text: 'free text sig of the med', site: { coding: [{ code: '85234005' }] }, doseAndRate: [{ doseQuantity: { value: 10, unit: '{tablet}' } }] }],
    });
    expect(byIdentifier(requests, '210006')!.dosageInstruction).toMatchObject([{ doseAndRate: [{ doseRange: { low: { value: 300, unit: 'mg' }, high: { value: 355.25, unit: 'g' } } }] }]);
    expect(requests.filter((request) => JSON.stringify(request.category ?? []).includes('"discharge"')).length).toBeGreaterThan(0);
    // An event-timed order keeps its timing ("before meals").
    expect(byIdentifier(requests, '210009')!.dosageInstruction).toMatchObject([{ timing: { repeat: { when: ['AC'] } } }]);
  });

  it('ONC cures discharge summary: every medication of a real inpatient document converts', () => {
    const conversion = convertCorpusDocument('onc-cures-update-data/170.315_b1_toc_inp_ds_r21_sample1_v12.xml');
    expect(problemsOf(conversion, TYPES)).toEqual([]);
    expect(resourcesOf(conversion, 'MedicationStatement').length).toBe(12);
    expect(conversion.issues.filter((issue) => issue.code === 'entries-not-converted' && /Medication/i.test(issue.text))).toEqual([]);
  });
});

describe('anesthesia sections', () => {
  it('HL7 Operative Note: the anesthetic is a MedicationAdministration and the anesthesia a Procedure, both entries of the section', () => {
    const conversion = convertCorpusDocument('hl7-c-cda-examples/Operative_Note.xml');
    const composition = resourcesOf(conversion, 'Composition')[0]!;
    const anesthesia = (composition['section'] as Array<{ title: string; entry?: Array<{ reference: string }> }>).find((section) => /anesthesia/i.test(section.title))!;
    expect(anesthesia.entry!.map((entry) => entry.reference.split('/')[0]).sort()).toEqual(['MedicationAdministration', 'Procedure']);
    const [administration] = resourcesOf(conversion, 'MedicationAdministration');
    expect(administration).toMatchObject({ status: expect.any(String), subject: { reference: expect.stringMatching(/^Patient\//) } });
    expect(conversion.issues.filter((issue) => issue.location?.includes('component[1]/section'))).toEqual([]);
    expect(problemsOf(conversion, ['MedicationAdministration', 'Medication', 'Procedure'])).toEqual([]);
  });

  it('HL7 Procedure Note: an Anesthesia section known by its template alone is converted, not left as a section of no known kind', () => {
    const conversion = convertCorpusDocument('hl7-c-cda-examples/Procedure_Note.xml');
    expect(resourcesOf(conversion, 'MedicationAdministration')).toHaveLength(1);
    expect(conversion.issues.filter((issue) => issue.code === 'section-not-supported')).toEqual([]);
  });
});

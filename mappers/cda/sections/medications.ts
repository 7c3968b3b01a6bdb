/**
 * Medication sections: medications, discharge medications, admission medications and medications administered.
 *
 * Taken over from @medplum/ccda, which makes every medication activity of the medications section a
 * MedicationRequest with intent "order" whatever its mood (a history of use becomes an order), states every dose
 * in international units, keeps its Medication contained with a manufacturer identifier made of the OID alone,
 * reads neither the approach site, the rate, a dose range, the negation, the indications nor the author, defaults a
 * missing status to "active", and leaves the discharge, admission and administered sections as narrative. Here each
 * Medication Activity is a MedicationStatement (EVN), a MedicationRequest (INT; discharge medications are
 * discharge orders) or, in the medications administered section, a MedicationAdministration
 * (substance-administration.ts), with its Medication as a resource of its own.
 *
 * Discharge and admission medications come wrapped in a Discharge Medication (4.35) or Admission Medication (4.36)
 * act holding the activities; the act itself says nothing FHIR keeps apart from them.
 */

import { attr, entryStatements, hasTemplate, Narrative, relatedStatements, SectionResources, type Node } from './cda-read.ts';
import { medicationActivity, type ActivityOptions } from './substance-administration.ts';
import type { SectionContext, SectionConverter, SectionOutput } from '../section-types.ts';

const C = '2.16.840.1.113883.10.20.22.2.';
const IHE = '1.3.6.1.4.1.19376.1.5.3.1.3.';
const MEDICATION_ACTIVITY = '2.16.840.1.113883.10.20.22.4.16';
const DISCHARGE_MEDICATION = '2.16.840.1.113883.10.20.22.4.35';
const ADMISSION_MEDICATION = '2.16.840.1.113883.10.20.22.4.36';
const DISCHARGE_CATEGORY = {
  coding: [{ system: 'http://terminology.hl7.org/CodeSystem/medicationrequest-category', code: 'discharge', display: 'Discharge' }],
};

export const medicationsSection: SectionConverter = {
  name: 'medications',
  roots: [`${C}1`, `${C}1.1`, `${IHE}19`],
  loincCodes: ['10160-0'],
  convert: (section, context) => convertMedications(section, context, {}),
};

export const dischargeMedicationsSection: SectionConverter = {
  name: 'discharge medications',
  roots: [`${C}11`, `${C}11.1`, `${IHE}22`],
  loincCodes: ['10183-2', '75311-1'],
  convert: (section, context) => convertMedications(section, context, { requestCategory: DISCHARGE_CATEGORY }),
};

export const admissionMedicationsSection: SectionConverter = {
  name: 'admission medications',
  roots: [`${C}44`, `${IHE}20`],
  loincCodes: ['42346-7'],
  convert: (section, context) => convertMedications(section, context, {}),
};

export const medicationsAdministeredSection: SectionConverter = {
  name: 'medications administered',
  roots: [`${C}38`, `${IHE}21`],
  loincCodes: ['29549-3'],
  convert: (section, context) => convertMedications(section, context, { administered: true }),
};

/**
 * Anesthesia (2.16.840.1.113883.10.20.22.2.25, LOINC 59774-0, in operative and procedure notes): its Medication
 * Activities are the anesthetics given, MedicationAdministrations as a Medications Administered section's are; its
 * Procedure Activities (the anesthesia itself) are left to the converter, which reads them as procedures.
 */
export const anesthesiaSection: SectionConverter = {
  name: 'anesthesia',
  roots: [`${C}25`],
  loincCodes: ['59774-0'],
  claims: (entry) => entry.substanceAdministration !== undefined,
  convert: (section, context) => convertMedications(section, context, { administered: true }),
};

function convertMedications(section: Node, context: SectionContext, options: Omit<ActivityOptions, 'narrative'>): SectionOutput {
  const out = new SectionResources();
  const activityOptions: ActivityOptions = { ...options, narrative: new Narrative(section.text) };
  for (const { kind, node, at } of entryStatements(section, context)) {
    if (kind === 'substanceAdministration') {
      if (convertActivity(node, context, out, activityOptions, at)) out.count();
    } else if (kind === 'act' && hasTemplate(node, [DISCHARGE_MEDICATION, ADMISSION_MEDICATION])) {
      // The wrapping act counts as converted when an activity it holds is.
      let any = false;
      for (const { kind: innerKind, node: inner } of relatedStatements(node)) {
        if (innerKind === 'substanceAdministration' && convertActivity(inner, context, out, activityOptions, `${at}/entryRelationship/substanceAdministration`)) any = true;
      }
      if (any) out.count();
    }
  }
  return out.output();
}

function convertActivity(activity: Node, context: SectionContext, out: SectionResources, options: ActivityOptions, at: string): boolean {
  // Sections of medications hold Medication Activities; a substanceAdministration without the template (older
  // documents, IHE) is read as one.
  if (!hasTemplate(activity, MEDICATION_ACTIVITY) && attr(activity, 'classCode') !== undefined && attr(activity, 'classCode') !== 'SBADM') return false;
  const resource = medicationActivity(activity, context, out, options, at);
  if (resource === undefined) return false;
  out.entry(resource);
  return true;
}

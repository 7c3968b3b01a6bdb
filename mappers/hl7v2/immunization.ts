/**
 * VXU^V04 (unsolicited vaccination record update) -> one Immunization draft per ORC/RXA, after the HL7
 * v2-to-FHIR IG segment maps RXA[Immunization] and RXR[Immunization].
 *
 * An RXA is the whole record of one administration (or of one refusal), and registries resend it whole when it
 * changes, so Immunization is a complete draft (message-common.ts). It is keyed on the sender's own id for the
 * administration, the filler order number in ORC-3 (which immunization guides require for exactly this purpose),
 * else ORC-2; without either, on the patient, vaccine and time.
 */

import { type Hl7Segment, fieldOf } from '../../formats/hl7v2/index.ts';
import { deterministicId } from '../ids.ts';
import type { ResourceDraft } from '../types.ts';

import { buildEncounter, buildPatient } from './adt.ts';
import { visitReference } from './clinical-common.ts';
import {
  type CodeableConcept,
  type Reference,
  codeTable,
  comp,
  hl7TableSystems,
  toCodeableConcept,
  toCodeableConceptIn,
  toFhirDate,
  toFhirDateTime,
  toQuantity,
  toQuantityUnitOf,
  v2TableSystem,
} from './datatypes.ts';
import { practitionerReference } from './directory.ts';
import { buildGuarantorAccount } from './financial.ts';
import { codeOf, completeDraft } from './drafts.ts';
import { immunizationOrderNumbers, invalidValue, missingField, orderGroups, positionOf, singlePatientReference } from './message-common.ts';
import { buildObservations } from './observations.ts';
import { PATIENT_GROUP } from './patient-group.ts';
import type { MappingContext, MappingRow } from './context.ts';
import { buildEach, reportIssue } from '../issues.ts';

// ---------------------------------------------------------------------------------------------------------------
// Tables

/** Vaccine vocabularies senders name in RXA-5, with their FHIR systems. */
const VACCINE_SYSTEMS: ReadonlyMap<string, string> = new Map([
  ['CVX', 'http://hl7.org/fhir/sid/cvx'],
  ['NDC', 'http://hl7.org/fhir/sid/ndc'],
]);

/**
 * HL7 table 0322 (completion status, RXA-20) -> Immunization.status, as the v2-to-FHIR IG ConceptMap
 * table-hl70322: CP and PA completed, RE and NA not-done. An empty RXA-20 means complete (the IG assigns
 * completed).
 */
const IMMUNIZATION_STATUS = codeTable<string>({ CP: 'completed', PA: 'completed', RE: 'not-done', NA: 'not-done' });

/** HL7 table 0443 (provider role) codes for Immunization.performer.function: AP administering, OP ordering. */
const PERFORMER_FUNCTION = (code: string, display: string): CodeableConcept => ({ coding: [{ system: v2TableSystem('0443'), code, display }] });

/**
 * RXA-9 administration notes in the NIP001 vocabulary (immunization information source): 00 is a new
 * administration recorded by whoever gave it, 01-08 are historical records from other sources. The IG leaves
 * RXA-9 to realm guides; this is the one vocabulary that says whether the record is a primary source.
 */
const NIP001 = 'NIP001';

/** RXA-6 999 means the amount is not known (CDC immunization guide), not 999 units. */
const UNKNOWN_AMOUNT = '999';

// ---------------------------------------------------------------------------------------------------------------
// Builder

export function buildImmunizations(context: MappingContext): ResourceDraft[] {
  const subject = singlePatientReference(context);
  const groups = orderGroups(context.message.segments, 'RXA');
  if (groups.length === 0) throw missingField('RXA', 'the message has no RXA segment');
  const ids = new Set<string>();
  // One administration that cannot be read (an ORC with no RXA after it, an RXA without its vaccine) costs itself.
  return buildEach(groups, (group) => {
    if (group.detail === undefined) throw missingField('RXA', 'an ORC is not followed by its RXA');
    const immunization = buildImmunization(group.orc, group.detail, group.segments, subject, context);
    // Two records with one key would be one resource written twice, the second silently replacing the first: the
    // later one is kept under its position, as two OBX are. A sender that numbers every ORC of a history alike gets a
    // warning; records sent without a number (a registry's forecasts, each a 998 on the day of the query) share
    // their patient, vaccine and time by nature, and get a note.
    if (ids.has(immunization.id)) {
      const position = positionOf(context.message, group.detail);
      const numbers = immunizationOrderNumbers(group.orc, context);
      const numbered = numbers.filler !== undefined || numbers.placer !== undefined;
      immunization.id = deterministicId('Immunization', immunization.id, 'RXA', String(position));
      reportIssue({
        severity: numbered ? 'warning' : 'information',
        code: 'ANCHORLINE_ISSUE_DUPLICATE_KEY',
        location: group.orc === undefined ? `RXA[${position}]-3` : `ORC[${positionOf(context.message, group.orc)}]-3`,
        detail: numbered
          ? 'an earlier RXA of this message has the same order number; kept under its position'
          : 'an earlier RXA of this message without an order number has the same vaccine and time; kept under its position',
      });
    }
    ids.add(immunization.id);
    return immunization;
  });
}

function buildImmunization(orc: Hl7Segment | undefined, rxa: Hl7Segment, segments: Hl7Segment[], patient: Reference, context: MappingContext): ResourceDraft {
  const { options } = context;
  const { timeZone } = options;

  const vaccineCode = toCodeableConceptIn(fieldOf(rxa, 5)[0] ?? [], options, 'L', VACCINE_SYSTEMS);
  if (vaccineCode === undefined) throw missingField('RXA-5', 'administered code is empty');
  const occurrence = toFhirDateTime(comp(fieldOf(rxa, 3)[0], 1), 'RXA-3', timeZone);
  if (occurrence === undefined) throw missingField('RXA-3', 'start of administration is empty');

  // ORC-3 9999 (the immunization guide's number for a refusal or a forecast) is no key: such an RXA is keyed as one
  // sent without an order number, by its patient, vaccine and time.
  const { filler, placer } = immunizationOrderNumbers(orc, context);
  const key = filler ?? placer;
  const coding = vaccineCode.coding?.[0];
  const id =
    key !== undefined
      ? deterministicId('Immunization', key.system, key.value)
      : deterministicId('Immunization', patient.reference!, coding?.system ?? '', coding?.code ?? vaccineCode.text ?? '', occurrence);

  const completion = completionStatus(rxa);
  const rxr = segments.find((segment) => segment.name === 'RXR');
  const amount = comp(fieldOf(rxa, 6)[0], 1);

  return completeDraft('Immunization', id, {
    identifier: [placer, filler],
    status: completion.status,
    statusReason: completion.status === 'not-done' ? toCodeableConcept(fieldOf(rxa, 18)[0] ?? [], options, 'NIP002') : undefined,
    vaccineCode,
    patient,
    // The visit PV1 names, as the IG's VXU_V04 map has it.
    encounter: visitReference(context),
    occurrenceDateTime: occurrence,
    recorded: toFhirDateTime(comp(fieldOf(rxa, 22)[0], 1), 'RXA-22', timeZone),
    primarySource: primarySource(rxa),
    manufacturer: manufacturer(rxa),
    lotNumber: comp(fieldOf(rxa, 15)[0], 1),
    expirationDate: toFhirDate(comp(fieldOf(rxa, 16)[0], 1), 'RXA-16'),
    site: rxr === undefined ? undefined : toCodeableConceptIn(fieldOf(rxr, 2)[0] ?? [], options, 'HL70163', hl7TableSystems('0163')),
    route: rxr === undefined ? undefined : toCodeableConceptIn(fieldOf(rxr, 1)[0] ?? [], options, 'HL70162', hl7TableSystems('0162')),
    doseQuantity: amount === UNKNOWN_AMOUNT ? undefined : toQuantity(amount, toQuantityUnitOf(fieldOf(rxa, 7)[0]), 'RXA-6'),
    performer: [
      ...fieldOf(rxa, 10).map((rep) => performer(practitionerReference(rep, 'RXA-10', context), PERFORMER_FUNCTION('AP', 'Administering Provider'))),
      ...fieldOf(orc, 12).map((rep) => performer(practitionerReference(rep, 'ORC-12', context), PERFORMER_FUNCTION('OP', 'Ordering Provider'))),
    ],
    reasonCode: fieldOf(rxa, 19).map((rep) => toCodeableConcept(rep, options, 'L')),
    isSubpotent: completion.subpotent ? true : undefined,
  });
}

/** Status from RXA-21 action code (D: the record is deleted) and RXA-20 completion status. */
function completionStatus(rxa: Hl7Segment): { status: string; subpotent: boolean } {
  if (codeOf(fieldOf(rxa, 21)).toUpperCase() === 'D') return { status: 'entered-in-error', subpotent: false };
  const code = codeOf(fieldOf(rxa, 20)).toUpperCase();
  if (code === '') return { status: 'completed', subpotent: false };
  const status = IMMUNIZATION_STATUS.get(code);
  if (status === undefined) throw invalidValue('RXA-20', 'completion status is not an HL7 table 0322 code');
  // A partial dose was given, but it does not count as a full one.
  return { status, subpotent: code === 'PA' };
}

function primarySource(rxa: Hl7Segment): boolean | undefined {
  const note = fieldOf(rxa, 9).find((rep) => comp(rep, 3) === NIP001 && comp(rep, 1) !== '');
  return note === undefined ? undefined : comp(note, 1) === '00';
}

/** RXA-17 (MVX or local) as a display-only reference: manufacturers are not resources here. */
function manufacturer(rxa: Hl7Segment): Reference | undefined {
  const sent = fieldOf(rxa, 17)[0];
  const display = comp(sent, 2) || comp(sent, 1);
  return display === '' ? undefined : { display };
}

function performer(actor: Reference | undefined, role: CodeableConcept): Record<string, unknown> | undefined {
  return actor === undefined ? undefined : { function: role, actor };
}

/** The immunization row of the mapping table (mappers/hl7v2/registry.ts). */
// Its GT1 are the guarantors of the patient's account (financial.ts).
export const IMMUNIZATION_MAPPINGS: readonly MappingRow[] = [['VXU^V04', [buildPatient, buildEncounter, ...PATIENT_GROUP, buildGuarantorAccount, buildImmunizations, buildObservations]]];

/**
 * FT1 (financial transaction) -> ChargeItem, one per charge, in every message that carries FT1: DFT (with the Account
 * the message builds, financial.ts), the visit events of ADT and RDS (with the visit's Encounter), and orders,
 * results and person events (ORM, OML, ORU, RDE, A28, A31: the patient's, without an Encounter). Apart from
 * financial.ts, whose BAR and DFT rows build on the result builders, so that the result rows can use it.
 *
 * The IG publishes no FT1 map; FT1 maps by its field definitions: FT1-7 transaction code -> ChargeItem.code (FT1-8
 * description as its text; FT1-25 procedure code when FT1-7 is empty), FT1-10 quantity, FT1-4 transaction date ->
 * occurrence, FT1-5 posting date -> enteredDate, FT1-19 diagnoses -> reason, FT1-20 performed by -> performer,
 * FT1-24 entered by -> enterer (both Practitioners, XCN[Practitioner]), FT1-29 NDC -> productCodeableConcept, FT1-2
 * transaction id -> identifier (and the id), the visit -> context, the Account -> account. Amounts (FT1-11, FT1-12,
 * FT1-22) are left out: R4 ChargeItem holds a price only as priceOverride, an override of the price list, which a
 * posted amount is not. FT1-6 transaction type (user-defined table 0017) says whether the line is a charge: a credit,
 * payment or adjustment (CD, PY, AJ, CO) is no ChargeItem, and is an information issue. A posted charge is final, so
 * ChargeItem is a complete draft.
 */

import { type Hl7Repetition, type Hl7Segment, fieldOf, segmentsNamed } from '../../formats/hl7v2/index.ts';
import { AnchorlineError } from '../../errors/index.ts';
import { deterministicId } from '../ids.ts';
import { reportIssue } from '../issues.ts';
import type { ResourceDraft } from '../types.ts';

import { accountKey, conceptKey, patientId, sendingFacility, visitKey } from './adt-common.ts';
import { MEDICATION_CODE_SYSTEMS, PROCEDURE_CODE_SYSTEMS, atPosition, eachSegmentResource, visitReference } from './clinical-common.ts';
import { type CodeableConcept, type Identifier, type Reference, comp, identifierSystem, pruneEmpty, toCodeableConcept, toCodeableConceptIn, toFhirDateTime, toQuantity } from './datatypes.ts';
import { practitionerReference } from './directory.ts';
import { codeOf, completeDraft, element, listElement } from './drafts.ts';
import type { MappingContext } from './context.ts';

/** HL7 table 0017 (transaction type) codes of lines that are not charges: credit, payment, adjustment, co-payment. */
const NOT_CHARGES = new Set(['CD', 'PY', 'AJ', 'CO']);

/** The charges of a DFT: linked to its visit and to the Account the message builds (buildAccount). */
export function buildChargeItems(context: MappingContext): ResourceDraft[] {
  return chargeItemsOf(context, { visit: true, accountBuilt: true });
}

/**
 * The charges of a message that maps its visit but not its account (ADT A01-A08 and their kin, RDS, and the orders and
 * results: ORM, OML, OMP, RDE, ORU): linked to the visit's Encounter when PV1 names one, and to the account by its
 * identifier.
 */
export function buildVisitChargeItems(context: MappingContext): ResourceDraft[] {
  return chargeItemsOf(context, { visit: true, accountBuilt: false });
}

/**
 * The charges of a message that maps no visit (A28/A31: the person's): the patient's, with the account by its
 * identifier, and no Encounter to refer to.
 */
export function buildChargeItemsOutsideVisit(context: MappingContext): ResourceDraft[] {
  return chargeItemsOf(context, { visit: false, accountBuilt: false });
}

/**
 * One ChargeItem per FT1 charge. `visit`: the message's row maps the visit, so the charge refers to its Encounter.
 * `accountBuilt`: the row builds the Account (BAR, DFT), so the charge refers to it literally; otherwise by the
 * account's identifier, as nothing in the message creates the resource.
 */
function chargeItemsOf(context: MappingContext, { visit, accountBuilt }: { visit: boolean; accountBuilt: boolean }): ResourceDraft[] {
  const lines = segmentsNamed(context.message, 'FT1');
  if (lines.length === 0) return [];
  const patient = patientId(context);
  const encounter = visit ? visitReference(context) : undefined;
  const account = accountKey(context);
  const charges = lines.filter((ft1) => {
    const type = codeOf(fieldOf(ft1, 6)).toUpperCase();
    if (!NOT_CHARGES.has(type)) return true;
    reportIssue({
      severity: 'information',
      code: 'ANCHORLINE_ISSUE_SEGMENT_NOT_MAPPED',
      location: atPosition('FT1-6', ft1, context.message),
      detail: 'FT1-6: a credit, payment or adjustment is not a charge item; kept in the raw message',
      value: type,
    });
    return false;
  });
  const accountReference: (Reference & { type?: string; identifier?: Identifier }) | undefined =
    account === undefined ? undefined : accountBuilt ? { reference: `Account/${account.id}` } : { type: 'Account', identifier: account.identifier };
  return eachSegmentResource(charges, (ft1) => buildChargeItem(ft1, patient, encounter, accountReference, context), context.message);
}

function buildChargeItem(
  ft1: Hl7Segment,
  patient: string,
  encounter: Reference | undefined,
  account: (Reference & { type?: string; identifier?: Identifier }) | undefined,
  context: MappingContext,
): ResourceDraft {
  const { options } = context;
  const { timeZone } = options;
  const facility = sendingFacility(context);
  const code = chargeCode(ft1, context);
  const transactionId = comp(fieldOf(ft1, 2)[0], 1);
  const identifier = transactionId === '' ? undefined : pruneEmpty<Identifier>({ system: identifierSystem(facility, 'FT1-2', options), value: transactionId });
  const id =
    identifier?.system !== undefined
      ? deterministicId('ChargeItem', identifier.system, transactionId)
      : deterministicId('ChargeItem', patient, visitKey(context)?.id ?? '', comp(fieldOf(ft1, 1)[0], 1), conceptKey(code), comp(fieldOf(ft1, 4)[0], 1));
  const type = codeOf(fieldOf(ft1, 6)).toUpperCase();
  if (type !== '' && type !== 'CG') {
    reportIssue({ severity: 'information', code: 'ANCHORLINE_ISSUE_CODE_NOT_IN_TABLE', location: atPosition('FT1-6', ft1, context.message), detail: 'FT1-6: transaction type is not an HL7 table 0017 code; read as a charge', value: type });
  }

  return completeDraft('ChargeItem', id, {
    identifier: identifier === undefined ? undefined : [identifier],
    status: 'billable',
    code,
    subject: { reference: `Patient/${patient}` },
    context: encounter,
    ...occurrence(ft1, timeZone),
    performer: listElement([
      [
        fieldOf(ft1, 20),
        (rep) => {
          const actor = practitionerReference(rep, 'FT1-20', context);
          return actor === undefined ? undefined : { actor };
        },
      ],
    ]),
    quantity: element(fieldOf(ft1, 10), (rep) => toQuantity(comp(rep, 1), undefined, 'FT1-10')),
    enterer: element(fieldOf(ft1, 24), (rep) => practitionerReference(rep, 'FT1-24', context)),
    enteredDate: element(fieldOf(ft1, 5), (rep) => toFhirDateTime(comp(rep, 1), 'FT1-5', timeZone)),
    reason: fieldOf(ft1, 19).map((rep) => toCodeableConcept(rep, options, 'HL70051')),
    account: account === undefined ? undefined : [account],
    productCodeableConcept: element(fieldOf(ft1, 29), (rep) => toCodeableConceptIn(rep, options, 'NDC', MEDICATION_CODE_SYSTEMS)),
  });
}

/** FT1-7 transaction code (user-defined table 0132), FT1-8 description as text; FT1-25 procedure code when FT1-7 is empty. */
function chargeCode(ft1: Hl7Segment, context: MappingContext): CodeableConcept {
  const { options } = context;
  const description = comp(fieldOf(ft1, 8)[0], 1);
  const sent =
    toCodeableConceptIn(fieldOf(ft1, 7)[0] ?? [], options, 'HL70132', PROCEDURE_CODE_SYSTEMS) ??
    toCodeableConceptIn(fieldOf(ft1, 25)[0] ?? [], options, 'HL70088', PROCEDURE_CODE_SYSTEMS);
  const code = pruneEmpty<CodeableConcept>({ ...sent, text: sent?.text ?? (description || undefined) });
  if (code === undefined) throw new AnchorlineError('ANCHORLINE_ERR_MAPPING_MISSING_FIELD', 'FT1-7: the transaction code is empty (and FT1-25 and FT1-8 too)', { location: 'FT1-7' });
  return code;
}

/**
 * FT1-4 transaction date: a DR (v2.5: start ^ end, each a TS whose first subcomponent is the time) or a TS (v2.3).
 * A range is occurrencePeriod, a single time occurrenceDateTime; the other is null.
 */
function occurrence(ft1: Hl7Segment, timeZone: string): Record<string, unknown> {
  const range = element(fieldOf(ft1, 4), (rep: Hl7Repetition) => {
    const start = toFhirDateTime(comp(rep, 1, 1), 'FT1-4', timeZone);
    const end = toFhirDateTime(comp(rep, 2, 1), 'FT1-4', timeZone);
    return start === undefined && end === undefined ? undefined : { start, end };
  });
  if (range === null || range === undefined) return { occurrenceDateTime: null, occurrencePeriod: null };
  if (range.end === undefined || range.end === range.start) return { occurrenceDateTime: range.start, occurrencePeriod: null };
  return { occurrencePeriod: pruneEmpty(range), occurrenceDateTime: null };
}

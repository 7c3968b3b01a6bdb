/**
 * ORU^R01 (unsolicited observation results) -> Specimen, Observation and DiagnosticReport drafts, after the HL7
 * v2-to-FHIR IG segment maps OBR[DiagnosticReport], OBX[Observation] and SPM[Specimen].
 *
 * Each OBR (with its ORC, when sent) is one report. Its OBX segments are its observations, each with the NTE
 * segments that follow it as notes; its SPM segments are its specimens. All three resources are complete drafts
 * (message-common.ts): a result message always carries the whole result, so a correction replaces every element.
 *
 * NTE segments directly after OBR comment on the whole report; R4 DiagnosticReport has no element for notes, so
 * they are not mapped. OBX segments after an SPM (observations about that specimen) are mapped like the others and
 * refer to that specimen.
 */

import { type Hl7Encoding, type Hl7Field, type Hl7Repetition, type Hl7Segment, HL7_NULL, fieldOf, isEmptyField, isExplicitNull } from '../../formats/hl7v2/index.ts';
import { deterministicId } from '../ids.ts';
import type { ResourceDraft } from '../types.ts';

import { buildEncounter } from './adt-encounter.ts';
import { buildPatient } from './adt-patient.ts';
import { buildVisitChargeItems } from './charge-items.ts';
import { buildProcedures } from './procedures.ts';
import { PATIENT_GROUP } from './patient-group.ts';
import {
  type Attachment,
  type CodeableConcept,
  type Coding,
  type Quantity,
  type QuantityUnit,
  type Reference,
  codeTable,
  comp,
  entityIdentifierIn,
  entityIdentifierOf,
  hl7TableSystems,
  toAddress,
  toAttachment,
  toCodeableConcept,
  toCodeableConceptIn,
  toCqQuantity,
  toFhirDecimal,
  toEntityIdentifier,
  toFhirDateTime,
  toQuantity,
  toQuantityUnitOf,
  toStructuredNumeric,
  v2TableSystem,
} from './datatypes.ts';
import { cnnPractitionerReference, organizationReference, practitionerReference, practitionerRoleReference } from './directory.ts';
import { deviceReference } from './devices.ts';
import { codeOf, completeDraft, element, firstOfEachResource, listElement } from './drafts.ts';
import {
  type Annotation,
  type OrderGroup,
  invalidValue,
  messageScopedKey,
  missingField,
  noteOf,
  orderGroups,
  orderNumbers,
  printableType,
  sendingFacility,
  singlePatientReference,
} from './message-common.ts';
import type { MappingContext, MappingRow } from './context.ts';
import { atPosition, eachSegment, positionOf, visitReference, withinSegment } from './clinical-common.ts';
import { buildEach, degrade, issueCodeOf, reportIssue, tolerate } from '../issues.ts';
import type { AnchorlineError } from '../../errors/index.ts';

// ---------------------------------------------------------------------------------------------------------------
// Tables

/**
 * HL7 table 0123 (result status, OBR-25) -> DiagnosticReport.status, as the v2-to-FHIR IG ConceptMap
 * table-hl70123 (O, I, S registered; P preliminary; C corrected; R partial; F final; X cancelled). The IG leaves
 * A, M and N unmapped; ours: A (some results available) and M (corrected, not final) -> partial, N (procedure done,
 * results pending) -> registered. Y and Z answer queries and never describe a result.
 */
const REPORT_STATUS = codeTable<string>({
  O: 'registered',
  I: 'registered',
  S: 'registered',
  N: 'registered',
  P: 'preliminary',
  A: 'partial',
  M: 'partial',
  R: 'partial',
  C: 'corrected',
  F: 'final',
  X: 'cancelled',
});

/**
 * HL7 table 0085 (observation result status, OBX-11) -> Observation.status, as the v2-to-FHIR IG ConceptMap
 * table-hl70085 (A amended, C corrected, D and W entered-in-error, F final, I registered, P and S preliminary,
 * X cancelled). Ours where the IG has none: B (appended after final) -> amended, O (order detail, no result) ->
 * registered, R (entered, not verified) -> preliminary, U and V (final, status change only) -> final, N (not asked)
 * -> cancelled.
 */
const OBSERVATION_STATUS = codeTable<string>({
  A: 'amended',
  B: 'amended',
  C: 'corrected',
  D: 'entered-in-error',
  W: 'entered-in-error',
  F: 'final',
  U: 'final',
  V: 'final',
  I: 'registered',
  O: 'registered',
  P: 'preliminary',
  R: 'preliminary',
  S: 'preliminary',
  N: 'cancelled',
  X: 'cancelled',
});

const DATA_ABSENT_REASON = 'http://terminology.hl7.org/CodeSystem/data-absent-reason';

/** Observation.code of an OBX sent without OBX-3: no coding, marked unknown (FHIR's data-absent-reason extension). */
const UNKNOWN_CODE: CodeableConcept = Object.freeze({
  extension: [{ url: 'http://hl7.org/fhir/StructureDefinition/data-absent-reason', valueCode: 'unknown' }],
}) as CodeableConcept;

/**
 * Why an observation without a value has none: N (not asked) -> not-asked, as the IG maps it; X (results cannot be
 * obtained) -> not-performed (the IG's cannot-be-obtained is not an R4 data-absent-reason code).
 */
const ABSENT_REASON = codeTable<CodeableConcept>({
  N: { coding: [{ system: DATA_ABSENT_REASON, code: 'not-asked', display: 'Not Asked' }] },
  X: { coding: [{ system: DATA_ABSENT_REASON, code: 'not-performed', display: 'Not Performed' }] },
});

const V3_OBSERVATION_INTERPRETATION = 'http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation';

/**
 * HL7 table 0078 (interpretation codes, OBX-8) -> v3 ObservationInterpretation, as the v2-to-FHIR IG ConceptMap
 * InterpretationCodes: the same code in the v3 system. HM, MS, QCF, TOX and VS, which the IG leaves unmapped, have
 * the same code and meaning in the v3 system and map the same way; other codes keep the sender's coding.
 */
const INTERPRETATION = codeTable<Coding>(
  Object.fromEntries(
    Object.entries({
      '<': 'Off scale low',
      '>': 'Off scale high',
      A: 'Abnormal',
      AA: 'Critical abnormal',
      AC: 'Anti-complementary substances present',
      B: 'Better',
      CAR: 'Carrier',
      D: 'Significant change down',
      DET: 'Detected',
      E: 'Equivocal',
      EX: 'outside threshold',
      EXP: 'Expected',
      H: 'High',
      HH: 'Critical high',
      HM: 'Hold for Medical Review',
      HU: 'Significantly high',
      I: 'Intermediate',
      IE: 'Insufficient evidence',
      IND: 'Indeterminate',
      L: 'Low',
      LL: 'Critical low',
      LU: 'Significantly low',
      MS: 'moderately susceptible',
      N: 'Normal',
      NCL: 'No CLSI defined breakpoint',
      ND: 'Not detected',
      NEG: 'Negative',
      NR: 'Non-reactive',
      NS: 'Non-susceptible',
      POS: 'Positive',
      QCF: 'Quality control failure',
      R: 'Resistant',
      RR: 'Reactive',
      S: 'Susceptible',
      SDD: 'Susceptible-dose dependent',
      'SYN-R': 'Synergy - resistant',
      'SYN-S': 'Synergy - susceptible',
      TOX: 'Cytotoxic substance present',
      U: 'Significant change up',
      UNE: 'Unexpected',
      VS: 'very susceptible',
      W: 'Worse',
      WR: 'Weakly reactive',
    }).map(([code, display]) => [code, { system: V3_OBSERVATION_INTERPRETATION, code, display }]),
  ),
);

/** HL7 table 0136 (yes/no, SPM-20 specimen availability) -> Specimen.status. */
const SPECIMEN_AVAILABILITY = codeTable<string>({ Y: 'available', N: 'unavailable' });

/**
 * R4 Observation.value[x] has no Attachment; R5 added it. The FHIR cross-version extension for R5's
 * Observation.value carries it in R4, as the v2-to-FHIR IG maps an ED observation value.
 */
const R5_OBSERVATION_VALUE = 'http://hl7.org/fhir/5.0/StructureDefinition/extension-Observation.value';

/** Value types whose OBX-5 repetitions are lines of one text. */
const TEXT_TYPES = new Set(['ST', 'TX', 'FT']);
const CODED_TYPES = new Set(['CE', 'CWE', 'CNE', 'CF', 'IS', 'ID']);
const TIME_TYPES = new Set(['DT', 'TS', 'DTM']);

// ---------------------------------------------------------------------------------------------------------------
// Builder

/** Patient first (buildPatient), then per report: its specimens, its observations, the report. */
export function buildResults(context: MappingContext): ResourceDraft[] {
  const subject = singlePatientReference(context);
  const groups = orderGroups(context.message.segments, 'OBR');
  if (groups.length === 0) throw missingField('OBR', 'the message has no OBR segment');
  const reportKeys = new Set<string>();
  // One report that cannot be built (its OBR without a service code) costs that report, not the message's others.
  const reports = buildEach(
    groups,
    (group) => reportDrafts(group, subject, context, reportKeys),
    (group, failure) => atPosition(failure.location, group.detail ?? group.orc!, context.message),
  );
  // Reports are kept apart by key (reportDrafts), and their observations and specimens are named under their report's
  // key; only a specimen two orders share is sent twice.
  return firstOfEachResource(reports.flat());
}

export interface ObservationEntry {
  obx: Hl7Segment;
  /** The OBX after it that continue its text, a line each (continuesText). */
  continued?: Hl7Segment[];
  notes: Annotation[];
  /** Index into the report's specimens when the OBX follows an SPM. */
  specimen?: number;
}

/**
 * The resources of one OBR group. `reportKeys` holds the keys of the reports built before it in this message: a report
 * whose order number and service repeat an earlier one's (a sender that numbers every OBR of a message alike, or sends
 * one twice) is kept under its position, with an issue, as two OBX of one key are.
 */
function reportDrafts(group: OrderGroup, subject: Reference, context: MappingContext, reportKeys: Set<string>): ResourceDraft[] {
  const obr = group.detail;
  if (obr === undefined) throw missingField('OBR', 'an ORC is not followed by its OBR');
  // Field issues of the report name this OBR (OBR[2]-7); those of its OBX and SPM name theirs.
  return withinSegment(obr, context.message, () => reportOf(group, obr, subject, context, reportKeys));
}

function reportOf(group: OrderGroup, obr: Hl7Segment, subject: Reference, context: MappingContext, reportKeys: Set<string>): ResourceDraft[] {
  const { options } = context;

  const numbers = orderNumbers(group.orc, obr, 'OBR', context);
  const orderKey =
    numbers.filler ??
    numbers.placer ??
    messageScopedKey(obr, 3, 'neither a filler (OBR-3, ORC-3) nor a placer (OBR-2, ORC-2) order number is sent; the report is keyed by the message control id and the OBR position, so a later correction cannot replace it', context);
  const code = firstValue(fieldOf(obr, 4), (rep) => toCodeableConcept(rep, options, 'L'));
  if (code === undefined) throw missingField('OBR-4', 'universal service identifier is empty');
  let reportKey = [orderKey.system, orderKey.value, ...conceptKey(code)];
  if (reportKeys.has(reportKey.join('\u0000'))) {
    const position = positionOf(context.message, obr);
    reportKey = [...reportKey, 'OBR', String(position)];
    reportIssue({ severity: 'warning', code: 'ANCHORLINE_ISSUE_DUPLICATE_KEY', location: `OBR[${position}]-3`, detail: 'an earlier OBR of this message has the same order number and service; kept under its position' });
  }
  reportKeys.add(reportKey.join('\u0000'));

  const observations: ObservationEntry[] = [];
  const specimenSegments: Hl7Segment[] = [];
  // The OBX that NTE segments comment on: the one they follow, not across an SPM (whose notes are the specimen's).
  let current: ObservationEntry | undefined;
  for (const segment of group.segments) {
    if (segment.name === 'OBX') {
      if (addsLineTo(current, segment)) continue;
      current = { obx: segment, notes: [], specimen: specimenSegments.length > 0 ? specimenSegments.length - 1 : undefined };
      observations.push(current);
    } else if (segment.name === 'NTE') {
      const note = noteOf(segment);
      if (note !== undefined && current !== undefined) current.notes.push(note);
    } else if (segment.name === 'SPM') {
      specimenSegments.push(segment);
      current = undefined;
    }
  }

  // A specimen that cannot be built costs itself: its observations keep their place, without the reference.
  const specimens = specimenSegments.map((spm) => specimenOf(spm, reportKey, subject, context));
  const specimenReference = (index: number | undefined): Reference | undefined => {
    const target = index === undefined ? (specimens.length === 1 ? specimens[0] : undefined) : specimens[index];
    return target === undefined ? undefined : { reference: `Specimen/${target.id}` };
  };
  const builtSpecimens = specimens.filter((specimen): specimen is ResourceDraft => specimen !== undefined);

  const reportTime = optionalTime(fieldOf(obr, 7), 'OBR-7', context);
  const encounter = visitReference(context);
  const issued = element(fieldOf(obr, 22), (rep) => instant(comp(rep, 1), 'OBR-22', context)) ?? undefined;
  const ids = new Set<string>();
  // One OBX that cannot be read costs that observation, not the report's others; issues name the OBX by position.
  const built = buildEach(
    observations,
    (entry) => {
      const facts = { reportKey, subject, effective: reportTime, issued, specimen: specimenReference(entry.specimen), encounter, reportStatus: REPORT_STATUS.get(codeOf(fieldOf(obr, 25)).toUpperCase()) };
      const observation = withinSegment(entry.obx, context.message, () => buildObservation(entry, facts, context));
      if (ids.has(observation.id)) {
        // Two OBX with the same set id, sub-id and code: both are kept, the later one named by its position.
        const position = positionOf(context.message, entry.obx);
        observation.id = deterministicId('Observation', observation.id, 'OBX', String(position));
        reportIssue({ severity: 'warning', code: 'ANCHORLINE_ISSUE_DUPLICATE_KEY', location: `OBX[${position}]-1`, detail: 'another OBX of this report has the same set id, sub-id and code; kept under its position' });
      }
      ids.add(observation.id);
      return observation;
    },
    (entry, failure) => atPosition(failure.location, entry.obx, context.message),
  );

  const organizations = uniqueByJson(observations.flatMap((entry) => performingOrganizations(entry.obx, context)));
  const technicians = listElement([[fieldOf(obr, 34), (rep) => cnnPractitionerReference(rep, 1, 'OBR-34', context)]]) ?? [];
  const endTime = optionalTime(fieldOf(obr, 8), 'OBR-8', context);

  const report = completeDraft('DiagnosticReport', deterministicId('DiagnosticReport', ...reportKey), {
    identifier: [numbers.placer, numbers.filler],
    basedOn: numbers.placer === undefined ? undefined : [{ type: 'ServiceRequest', identifier: numbers.placer }],
    status: reportStatus(obr, built),
    category: element(fieldOf(obr, 24), (rep) => {
      const category = toCodeableConceptIn(rep, options, 'HL70074', hl7TableSystems('0074'));
      return category === undefined ? undefined : [category];
    }),
    code,
    subject,
    encounter,
    effectiveDateTime: endTime === undefined ? reportTime : undefined,
    effectivePeriod: endTime === undefined ? undefined : { start: reportTime, end: endTime },
    issued,
    performer: [...organizations, ...technicians],
    // The IG maps OBR-32 and OBR-34 (NDL) to PractitionerRoles; the person (NDL-1) is all senders fill, so the
    // references go to the Practitioners, which R4 allows here, rather than to roles that would say nothing more.
    resultsInterpreter: listElement([[fieldOf(obr, 32), (rep) => cnnPractitionerReference(rep, 1, 'OBR-32', context)]]) ?? [],
    specimen: builtSpecimens.map((specimen) => ({ reference: `Specimen/${specimen.id}` })),
    result: built.map((observation) => ({ reference: `Observation/${observation.id}` })),
  });
  return [...builtSpecimens, ...built, report];
}

/**
 * The report's status from its results' (OBX-11), for a report that leaves OBR-25 empty: all of one status, that
 * status; final, corrected or amended results beside preliminary ones, a partial report. Undefined when a result's
 * status is not known or the report has none.
 */
function statusFromResults(results: readonly ResourceDraft[]): string | undefined {
  const statuses = [...new Set(results.map((result) => String(result['status'] ?? 'unknown')))];
  if (statuses.length === 1) return REPORT_STATUS_OF_RESULTS.has(statuses[0]!) ? statuses[0] : undefined;
  return statuses.length > 1 && statuses.every((status) => PARTIAL_WHEN_MIXED.has(status)) ? 'partial' : undefined;
}

/** Observation statuses that, shared by every result, are the report's as they stand (`unknown` tells nothing). */
const REPORT_STATUS_OF_RESULTS: ReadonlySet<string> = new Set(['registered', 'preliminary', 'final', 'amended', 'corrected', 'cancelled', 'entered-in-error']);
/** Observation statuses that, mixed in one report, make it partial. */
const PARTIAL_WHEN_MIXED: ReadonlySet<string> = new Set(['registered', 'preliminary', 'final', 'amended', 'corrected']);

function reportStatus(obr: Hl7Segment, results: readonly ResourceDraft[]): string {
  const code = codeOf(fieldOf(obr, 25));
  // The IG: an ORU without OBR-25 is an error on the v2 side, which requires it in results. DiagnosticReport.status is
  // required too: a missing one is read from the results' own statuses when they tell it (an information issue),
  // else, like an unknown one, as `unknown` with a warning (strict callers still get the error).
  if (code === '') {
    const derived = statusFromResults(results);
    if (derived !== undefined) {
      reportIssue({ severity: 'information', code: 'ANCHORLINE_ISSUE_MISSING_FIELD', location: 'OBR-25', detail: `OBR-25: result status is empty; read from the results' statuses (OBX-11): ${derived}` });
      return derived;
    }
    return degrade(missingField('OBR-25', 'result status is empty; read as unknown'), 'ANCHORLINE_ISSUE_MISSING_FIELD', 'unknown');
  }
  const status = REPORT_STATUS.get(code.toUpperCase());
  if (status === undefined) return degrade(invalidValue('OBR-25', 'result status is not an HL7 table 0123 code for results; read as unknown'), 'ANCHORLINE_ISSUE_CODE_NOT_IN_TABLE', 'unknown', code);
  return status;
}

// ---------------------------------------------------------------------------------------------------------------
// Observation

export interface ReportFacts {
  reportKey: string[];
  subject: Reference;
  /** OBR-7, for observations without their own OBX-14. */
  effective: string | undefined;
  issued: string | undefined;
  specimen: Reference | undefined;
  /** The visit PV1 names (PV1-19), the report's and its observations' encounter. */
  encounter?: Reference | undefined;
  /** DiagnosticReport.status read from OBR-25, for observations without their own OBX-11. */
  reportStatus?: string | undefined;
}

/**
 * DiagnosticReport.status -> Observation.status, for an OBX that leaves OBX-11 empty in a report whose OBR-25 says
 * where the results stand: a result of a final report is final. `unknown` says nothing and is not taken.
 */
const STATUS_FROM_REPORT: ReadonlyMap<string, string> = new Map([
  ['registered', 'registered'], ['partial', 'preliminary'], ['preliminary', 'preliminary'], ['final', 'final'], ['amended', 'amended'],
  ['corrected', 'corrected'], ['appended', 'amended'], ['cancelled', 'cancelled'], ['entered-in-error', 'entered-in-error'],
]);

export function buildObservation(entry: ObservationEntry, report: ReportFacts, context: MappingContext): ResourceDraft {
  const { options } = context;
  const { obx } = entry;
  const sentCode = firstValue(fieldOf(obx, 3), (rep) => toCodeableConcept(rep, options, 'L'));
  // A value sent without saying what it measures is still what the lab sent: kept, its code marked unknown. An OBX
  // with neither says nothing.
  if (sentCode === undefined && isEmptyField(fieldOf(obx, 5))) throw missingField('OBX-3', 'observation identifier is empty');
  const code = sentCode ?? degrade(missingField('OBX-3', 'observation identifier is empty; the value is kept with its code marked unknown'), 'ANCHORLINE_ISSUE_MISSING_FIELD', UNKNOWN_CODE);
  const statusCode = codeOf(fieldOf(obx, 11)).toUpperCase();
  const fromReport = report.reportStatus === undefined ? undefined : STATUS_FROM_REPORT.get(report.reportStatus);
  if (statusCode === '' && fromReport !== undefined) {
    reportIssue({ severity: 'information', code: 'ANCHORLINE_ISSUE_MISSING_FIELD', location: 'OBX-11', detail: `OBX-11: observation result status is empty; taken from the report's result status (OBR-25): ${fromReport}` });
  }
  const status =
    statusCode === ''
      ? (fromReport ?? degrade(missingField('OBX-11', `observation result status is empty${'reportStatus' in report ? ', and the report\'s result status (OBR-25) says none either' : ''}; read as unknown`), 'ANCHORLINE_ISSUE_MISSING_FIELD', 'unknown'))
      : (OBSERVATION_STATUS.get(statusCode) ?? degrade(invalidValue('OBX-11', 'observation result status is not an HL7 table 0085 code; read as unknown'), 'ANCHORLINE_ISSUE_CODE_NOT_IN_TABLE', 'unknown', statusCode));

  const unit = toQuantityUnitOf(fieldOf(obx, 6)[0]);
  if (entry.continued !== undefined) {
    reportIssue({
      severity: 'information',
      code: 'ANCHORLINE_ISSUE_TEXT_CONTINUED',
      location: 'OBX-5',
      detail: `the ${entry.continued.length} OBX that follow have the same set id, value type, code, sub-id and status: they continue this text, a line each, and were read as lines of its value`,
    });
  }
  const value = observationValue(obx, textLines(entry), code, unit, context.message.encoding, context);
  const hasValue = Object.values(value).some((member) => member !== undefined);
  const setId = comp(fieldOf(obx, 1)[0], 1);
  const subId = comp(fieldOf(obx, 4)[0], 1);
  const facility = sendingFacility(context);

  return completeDraft('Observation', deterministicId('Observation', ...report.reportKey, setId, subId, ...(sentCode === undefined ? ['(no code)'] : conceptKey(sentCode))), {
    identifier: element(fieldOf(obx, 21), (rep) => {
      const identifier = toEntityIdentifier(entityIdentifierOf(rep), 'OBX-21', options, facility, 'FILL');
      return identifier === undefined ? undefined : [identifier];
    }),
    status,
    code,
    subject: report.subject,
    encounter: report.encounter,
    effectiveDateTime: optionalTime(fieldOf(obx, 14), 'OBX-14', context) ?? report.effective,
    issued: report.issued,
    performer: [...(listElement([[fieldOf(obx, 16), (rep) => practitionerReference(rep, 'OBX-16', context)]]) ?? []), ...observationPerformers(obx, context)],
    ...value,
    dataAbsentReason: hasValue ? undefined : ABSENT_REASON.get(statusCode),
    interpretation: fieldOf(obx, 8).map((rep) => interpretation(rep, context)),
    note: entry.notes,
    method: element(fieldOf(obx, 17), (rep) => toCodeableConcept(rep, options, 'L')),
    // An equipment id whose authority cannot be read costs the device, not the result.
    device: element(fieldOf(obx, 18), (rep) => deviceReference(rep, 'OBX-18', context)),
    specimen: report.specimen,
    referenceRange: referenceRange(comp(fieldOf(obx, 7)[0], 1), unit),
  });
}

/** HL7 table 0912 (participation) MDIR: OBX-25, the performing organization's medical director. */
const MEDICAL_DIRECTOR: Coding = { system: v2TableSystem('0912'), code: 'MDIR', display: 'Medical Director' };

/** OBX-23 performing organizations as Organizations, the first with OBX-24 as its address. */
function performingOrganizations(obx: Hl7Segment, context: MappingContext): Reference[] {
  const address = element(fieldOf(obx, 24), (rep) => toAddress(rep, 'OBX-24', context.options.timeZone)) ?? undefined;
  return fieldOf(obx, 23).flatMap((rep, index) => organizationReference(rep, 'OBX-23', context, index === 0 && address !== undefined ? { address: [address] } : {}) ?? []);
}

/**
 * Who performed the observation besides OBX-16 responsible observers: the OBX-23 performing organization, or, when
 * OBX-25 names its medical director, as the IG maps it, the director's PractitionerRole (MDIR) at that organization.
 * OBX-16 observers are Practitioners, not the IG's PractitionerRole coded 'responsibleObserver': that code is not in
 * the practitioner-role code system it names, and a role without a code or an organization adds a resource that says
 * nothing the Practitioner does not.
 */
function observationPerformers(obx: Hl7Segment, context: MappingContext): Reference[] {
  const organizations = performingOrganizations(obx, context);
  const director = firstValue(fieldOf(obx, 25), (rep) => practitionerReference(rep, 'OBX-25', context));
  const role = practitionerRoleReference(director, organizations[0], MEDICAL_DIRECTOR, context);
  return role === undefined ? organizations : [role, ...organizations.slice(1)];
}

/** The value[x] members this mapper writes, all of them, so that a value of one type replaces one of another. */
interface ObservationValue {
  valueQuantity: Quantity | undefined;
  valueCodeableConcept: CodeableConcept | undefined;
  valueString: string | undefined;
  valueRange: unknown;
  valueRatio: unknown;
  valueDateTime: string | undefined;
  extension: Array<{ url: string; valueAttachment: Attachment }> | undefined;
  /** A repeated OBX-5: one component per value, each coded as the observation is. */
  component: Array<Record<string, unknown>> | undefined;
}

/**
 * Whether an OBX continues the text of the OBX before it. Many senders write a report one line per OBX, repeating the
 * set id (often empty), the value type, the observation identifier and the sub-id: as one key, the lines are one
 * value. A text type (ST, TX, FT) and the same OBX-1, -2, -3, -4 and -11 as sent; anything else is an observation of
 * its own.
 */
function continuesText(previous: Hl7Segment, next: Hl7Segment): boolean {
  if (!TEXT_TYPES.has(codeOf(fieldOf(next, 2)).toUpperCase())) return false;
  return [1, 2, 3, 4, 11].every((n) => JSON.stringify(fieldOf(previous, n)) === JSON.stringify(fieldOf(next, n)));
}

/** Adds `obx` to `current`'s lines when it continues its text (continuesText); whether it did. */
export function addsLineTo(current: Pick<ObservationEntry, 'obx' | 'continued'> | undefined, obx: Hl7Segment): boolean {
  if (current === undefined || !continuesText(current.obx, obx)) return false;
  (current.continued ??= []).push(obx);
  return true;
}

/** OBX-5 of an observation and of the OBX that continue its text, a continuing OBX with no value being an empty line. */
export function textLines(entry: Pick<ObservationEntry, 'obx' | 'continued'>): Hl7Field {
  const field = fieldOf(entry.obx, 5);
  if (entry.continued === undefined) return field;
  const line = (segment: Hl7Segment): Hl7Field => (isEmptyField(fieldOf(segment, 5)) ? [[['']]] : fieldOf(segment, 5));
  return [...line(entry.obx), ...entry.continued.flatMap(line)];
}

function observationValue(obx: Hl7Segment, field: Hl7Field, code: CodeableConcept, unit: QuantityUnit | undefined, encoding: Hl7Encoding, context: MappingContext): ObservationValue {
  const value: ObservationValue = {
    valueQuantity: undefined,
    valueCodeableConcept: undefined,
    valueString: undefined,
    valueRange: undefined,
    valueRatio: undefined,
    valueDateTime: undefined,
    extension: undefined,
    component: undefined,
  };
  const sent = field.filter((rep) => rep.some((component) => component.some((part) => part !== '' && part !== HL7_NULL)));
  if (sent.length === 0 || isExplicitNull(field)) return value;
  const valueType = codeOf(fieldOf(obx, 2)).toUpperCase();
  if (valueType === '' || TEXT_TYPES.has(valueType)) {
    if (valueType === '') degrade(missingField('OBX-2', 'value type is empty but OBX-5 has a value; the value is kept as text'), 'ANCHORLINE_ISSUE_MISSING_FIELD', undefined);
    value.valueString = textValue(field, encoding);
    return value;
  }
  // A value the type cannot be read as (several values for a one-value type, a number that is not one, a type with no
  // FHIR value here such as XAD, XTN or HD) is kept as text with an issue, not lost.
  const keepAsText = (error: AnchorlineError): ObservationValue => {
    degrade(error, issueCodeOf(error) ?? 'ANCHORLINE_ISSUE_INVALID_VALUE', undefined);
    return { ...value, valueString: textValue(field, encoding) };
  };
  if (sent.length > 1) return repeatedValue(value, code, sent, valueType, unit, context) ?? keepAsText(invalidValue('OBX-5', `repeats, but value type ${printableType(valueType)} holds one value; kept as text`));
  const repetition = sent[0]!;
  try {
    return typedValue(value, valueType, repetition, unit, context);
  } catch (error) {
    if (issueCodeOf(error) === undefined) throw error;
    if (valueType !== 'ED') return keepAsText(error as AnchorlineError);
    // An encapsulated document that cannot be decoded is not text either: the observation keeps its other elements.
    degrade(error as AnchorlineError, issueCodeOf(error) ?? 'ANCHORLINE_ISSUE_INVALID_VALUE', undefined);
    return value;
  }
}

/**
 * A repeated OBX-5 of a type with a FHIR value: each repetition is one answer to the one question ("select all that
 * apply": the organisms of a co-infection, the years of two transplants), so each is a component coded as the
 * observation is, with the value its type reads; Observation.value is left out (obs-7). undefined when a repetition
 * cannot be read as its type, or the type's value is no component's (ED): the field is then kept as text.
 */
function repeatedValue(
  value: ObservationValue,
  code: CodeableConcept,
  sent: Hl7Repetition[],
  valueType: string,
  unit: QuantityUnit | undefined,
  context: MappingContext,
): ObservationValue | undefined {
  if (valueType === 'ED') return undefined;
  const components: Array<Record<string, unknown>> = [];
  for (const repetition of sent) {
    try {
      const typed = typedValue({ ...value }, valueType, repetition, unit, context);
      components.push({ code, ...Object.fromEntries(Object.entries(typed).filter(([, member]) => member !== undefined)) });
    } catch (error) {
      if (issueCodeOf(error) === undefined) throw error;
      return undefined;
    }
  }
  reportIssue({ severity: 'information', code: 'ANCHORLINE_ISSUE_REPEATED_VALUE', location: 'OBX-5', detail: `OBX-5: ${sent.length} values of type ${printableType(valueType)}; each is a component of the observation` });
  return { ...value, component: components };
}

/** OBX-5 as the FHIR value its type (OBX-2) gives; throws for a value the type cannot read. */
function typedValue(value: ObservationValue, valueType: string, repetition: Hl7Repetition, unit: QuantityUnit | undefined, context: MappingContext): ObservationValue {
  if (valueType === 'NM') {
    value.valueQuantity = toQuantity(comp(repetition, 1), unit, 'OBX-5');
  } else if (valueType === 'SN') {
    Object.assign(value, toStructuredNumeric(repetition, unit, 'OBX-5'));
  } else if (CODED_TYPES.has(valueType)) {
    value.valueCodeableConcept = toCodeableConcept(repetition, context.options, 'L');
  } else if (TIME_TYPES.has(valueType)) {
    value.valueDateTime = toFhirDateTime(comp(repetition, 1), 'OBX-5', context.options.timeZone);
  } else if (valueType === 'ED') {
    const attachment = toAttachment(repetition, 'OBX-5');
    value.extension = attachment === undefined ? undefined : [{ url: R5_OBSERVATION_VALUE, valueAttachment: attachment }];
  } else {
    throw invalidValue('OBX-2', `value type ${printableType(valueType)} has no FHIR value here; kept as text`);
  }
  return value;
}

/**
 * ST/TX/FT: each repetition is a line (TX repetitions are lines by definition). Components and subcomponents are
 * joined back with their delimiters: a sender that did not escape a `^` in free text still meant the character.
 */
function textValue(field: Hl7Field, encoding: Hl7Encoding): string | undefined {
  const lines = field.map((repetition) =>
    repetition
      .map((component) => component.join(encoding.subcomponent))
      .join(encoding.component)
      .trimEnd(),
  );
  const text = lines.join('\n').trim();
  return text === '' ? undefined : text;
}

function interpretation(repetition: Hl7Repetition, context: MappingContext): CodeableConcept | undefined {
  const standard = INTERPRETATION.get(comp(repetition, 1));
  if (standard !== undefined) return { coding: [standard] };
  return toCodeableConcept(repetition, context.options, 'HL70078');
}

const NUMBER = String.raw`[+-]?(?:\d+(?:\.\d+)?|\.\d+)`;
const RANGE = new RegExp(`^(${NUMBER})\\s*-\\s*(${NUMBER})$`);
const BOUND = new RegExp(`^(<=|>=|<|>)\\s*(${NUMBER})$`);

/**
 * OBX-7 reference range: "3.5-5.0" -> low and high; "<10", "<=10", ">60", ">=60" -> one bound, with the text kept
 * because FHIR bounds are inclusive and "<10" is not; anything else (Negative, 1:40 or less) -> text only.
 */
function referenceRange(text: string, unit: QuantityUnit | undefined): Array<Record<string, unknown>> | undefined {
  if (text === '') return undefined;
  const quantity = (number: string): Quantity => ({ value: toFhirDecimal(number, 'OBX-7')!, ...unit });
  const range = RANGE.exec(text);
  if (range !== null) return [{ low: quantity(range[1]!), high: quantity(range[2]!) }];
  const bound = BOUND.exec(text);
  if (bound !== null) {
    const side = bound[1]!.startsWith('<') ? 'high' : 'low';
    return [{ [side]: quantity(bound[2]!), text }];
  }
  return [{ text }];
}

// ---------------------------------------------------------------------------------------------------------------
// Specimen

/**
 * One SPM's Specimen, or undefined when it cannot be built: that costs the specimen alone, with its issues at its
 * position (SPM[2]-17), for a report's specimens and an order's (orders.ts).
 */
export function specimenOf(spm: Hl7Segment, reportKey: string[], subject: Reference, context: MappingContext): ResourceDraft | undefined {
  return eachSegment([spm], () => withinSegment(spm, context.message, () => buildSpecimen(spm, reportKey, subject, context)), context.message)[0];
}

/**
 * SPM -> Specimen, for a report's or an order's specimens (orders.ts): keyed by its specimen id (SPM-2, filler else
 * placer), so the order's specimen and the report's are one, else as the n-th (SPM-1) of the report or order.
 */
function buildSpecimen(spm: Hl7Segment, reportKey: string[], subject: Reference, context: MappingContext): ResourceDraft {
  const { options } = context;
  const { timeZone } = options;
  const facility = sendingFacility(context);
  const specimenId = fieldOf(spm, 2)[0];
  const placer = toEntityIdentifier(entityIdentifierIn(specimenId, 1), 'SPM-2', options, facility, 'PLAC');
  const filler = toEntityIdentifier(entityIdentifierIn(specimenId, 2), 'SPM-2', options, facility, 'FILL');
  const key = filler ?? placer;
  // Without a specimen id the specimen is known only as the report's n-th.
  const id =
    key?.system !== undefined && key.value !== undefined
      ? deterministicId('Specimen', key.system, key.value)
      : deterministicId('Specimen', ...reportKey, 'SPM', comp(fieldOf(spm, 1)[0], 1));

  // SPM-17 is a range (DR): its start and end are each left out alone when unreadable.
  const collected = fieldOf(spm, 17)[0];
  const collectedStart = tolerate(() => toFhirDateTime(comp(collected, 1), 'SPM-17', timeZone), () => comp(collected, 1));
  const collectedEnd = tolerate(() => toFhirDateTime(comp(collected, 2), 'SPM-17', timeZone), () => comp(collected, 2));
  const availability = codeOf(fieldOf(spm, 20)).toUpperCase();
  const status =
    availability === ''
      ? undefined
      : (SPECIMEN_AVAILABILITY.get(availability) ?? degrade(invalidValue('SPM-20', 'specimen availability is not Y or N; left out'), 'ANCHORLINE_ISSUE_CODE_NOT_IN_TABLE', undefined, availability));

  return completeDraft('Specimen', id, {
    identifier: [placer, filler],
    status,
    type: element(fieldOf(spm, 4), (rep) => toCodeableConceptIn(rep, options, 'HL70487', hl7TableSystems('0487'))),
    subject,
    receivedTime: optionalTime(fieldOf(spm, 18), 'SPM-18', context),
    collection: {
      collectedDateTime: collectedEnd === undefined ? collectedStart : undefined,
      collectedPeriod: collectedEnd === undefined ? undefined : { start: collectedStart, end: collectedEnd },
      quantity: element(fieldOf(spm, 12), (rep) => toCqQuantity(rep, 'SPM-12')) ?? undefined,
    },
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Field access, keys and times

/** The converted first repetition of a field, undefined when not sent or `""` (complete drafts null it anyway). */
function firstValue<T>(field: Hl7Field, convert: (repetition: Hl7Repetition) => T | undefined): T | undefined {
  const first = field[0];
  if (first === undefined || isExplicitNull(field)) return undefined;
  return convert(first);
}

/**
 * A time field's first component (TS-1 / DTM) as a FHIR dateTime, for a time its resource can do without: one that
 * cannot be read is an issue, with the value as sent, and left out (drafts.ts element).
 */
function optionalTime(field: Hl7Field, location: string, context: MappingContext): string | undefined {
  return element(field, (rep) => toFhirDateTime(comp(rep, 1), location, context.options.timeZone)) ?? undefined;
}

/** The part of an id key that names a coded concept: its first coding's system and code, else its text. */
function conceptKey(concept: CodeableConcept): string[] {
  const coding = concept.coding?.[0];
  return coding === undefined ? ['', concept.text ?? ''] : [coding.system ?? '', coding.code ?? ''];
}

/** A time that FHIR instant can hold: to the second or finer (a bare date cannot be an instant). */
function instant(value: string, location: string, context: MappingContext): string | undefined {
  const time = toFhirDateTime(value, location, context.options.timeZone);
  return time !== undefined && time.length > 10 ? time : undefined;
}

function uniqueByJson<T>(values: T[]): T[] {
  const seen = new Set<string>();
  return values.filter((value) => {
    const key = JSON.stringify(value);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** The result rows of the mapping table (mappers/hl7v2/registry.ts). */
// A PR1 or an FT1 beside the results (outside the ORU_R01 structure, but sent) is the patient's procedure or a charge
// of the order; the message maps no visit for them to refer to.
// The visit PV1 names is the reports' and observations' encounter, as the IG's ORU_R01 map has it: an Encounter as the
// visit stands (adt-encounter.ts), which the result changes nothing of.
export const RESULT_MAPPINGS: readonly MappingRow[] = [['ORU^R01', [buildPatient, buildEncounter, ...PATIENT_GROUP, buildResults, buildProcedures, buildVisitChargeItems]]];


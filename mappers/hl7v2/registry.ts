/**
 * Which HL7 v2 messages map to which FHIR resources: one table row per `${MSH-9.1}^${MSH-9.2}`, listing the builders
 * that produce its drafts in dependency order. Supporting a new message type is adding a row (and its builders).
 */

import { createHash } from 'node:crypto';
import { HL7_NULL, type Hl7Message, fieldOf, firstSegment, valueOf } from '../../formats/hl7v2/index.ts';
import { AnchorlineError, isAnchorlineError } from '../../errors/index.ts';
import type { Hl7MappingOptions, MappingResult, ResourceDraft } from '../types.ts';
import type { MappingContext, MappingRow, ResourceBuilder } from './context.ts';
import { type MappingIssue, MappingIssues, issueCodeOf, tolerate, withIssues } from '../issues.ts';
import { segmentBuilders, unmappedSegmentReporter } from './segments.ts';
import { DirectoryDrafts } from './directory-drafts.ts';
import { sendingOrganizationReference } from './directory.ts';
import { repetitionText } from './drafts.ts';
import { applyZSegmentRules } from './z-segments.ts';

import { ADT_MAPPINGS } from './adt.ts';
import { DOCUMENT_MAPPINGS } from './documents.ts';
import { IMMUNIZATION_MAPPINGS } from './immunization.ts';
import { ORDER_MAPPINGS } from './orders.ts';
import { PHARMACY_MAPPINGS } from './pharmacy.ts';
import { RESULT_MAPPINGS } from './results.ts';
import { SCHEDULING_MAPPINGS } from './scheduling.ts';
import { FINANCIAL_MAPPINGS } from './financial.ts';
import { MEDICATION_EVENT_MAPPINGS } from './medication-events.ts';
import { PROBLEM_MAPPINGS } from './problems.ts';
import { RESPONSE_MAPPINGS } from './responses.ts';
import { buildProvenance } from './provenance.ts';
import { assertTimeZone, textOf, toFhirDateTime } from './datatypes.ts';

/** Each message family lists its rows beside its builders; a key may appear only once across families. */
const MAPPINGS: ReadonlyMap<string, readonly ResourceBuilder[]> = (() => {
  const rows: MappingRow[] = [...ADT_MAPPINGS, ...RESULT_MAPPINGS, ...ORDER_MAPPINGS, ...SCHEDULING_MAPPINGS, ...IMMUNIZATION_MAPPINGS, ...DOCUMENT_MAPPINGS, ...PHARMACY_MAPPINGS, ...FINANCIAL_MAPPINGS, ...MEDICATION_EVENT_MAPPINGS, ...PROBLEM_MAPPINGS, ...RESPONSE_MAPPINGS];
  const table = new Map<string, readonly ResourceBuilder[]>();
  for (const [key, builders] of rows) {
    if (table.has(key)) throw new Error(`mapping table: ${key} is listed twice`);
    // Every row also reports the data segments none of its builders reads.
    table.set(key, [...builders, unmappedSegmentReporter(builders)]);
  }
  return table;
})();

/**
 * Message types that carry no record to store: acknowledgments and queries (a query's data comes back in its
 * response, RSP, which is accepted). ADT^A19 is the v2.3 patient query (QRY_A19).
 */
const NOT_DATA_TYPES = new Set(['ACK', 'MCF', 'QBP', 'QRY', 'QCN', 'QSB', 'QVR', 'VQQ', 'RQQ', 'RQI', 'RQC', 'RQA', 'CNQ', 'ESU', 'ESR', 'SQM', 'NMQ', 'MFQ']);

/**
 * Whether intake accepts a message of this type: every type that may carry data. Types the table does not list are
 * mapped by their segments (segments.ts); only queries and acknowledgments are refused.
 */
export function isSupportedMessageType(messageType: string, triggerEvent: string): boolean {
  if (NOT_DATA_TYPES.has(messageType.toUpperCase())) return false;
  return !(messageType === 'ADT' && triggerEvent === 'A19');
}

/**
 * How the parser's notes on a message locate a segment: by name and occurrence (`NTE[2]`), counted in one pass over
 * the message however many notes there are.
 */
function segmentLocator(message: Hl7Message): (index: number) => string {
  let occurrences: number[] | undefined;
  return (index) => {
    if (occurrences === undefined) {
      const seen = new Map<string, number>();
      occurrences = message.segments.map(({ name }) => {
        const occurrence = (seen.get(name) ?? 0) + 1;
        seen.set(name, occurrence);
        return occurrence;
      });
    }
    return `${message.segments[index]!.name}[${occurrences[index]}]`;
  };
}

/**
 * The issue of a field that held U+0000, sent as \X00\ (formats/hl7v2/parse.ts removed it): the value was kept
 * without it. Located as `OBX[2]-3`.
 */
function removedNulIssue(segment: string, field: number): MappingIssue {
  return {
    severity: 'warning',
    code: 'ANCHORLINE_ISSUE_INVALID_VALUE',
    location: `${segment}-${field}`,
    detail: `${segment}-${field} held U+0000 (NUL, sent as a hex escape), which stored text cannot hold; it was removed and the rest of the value kept`,
  };
}

/** The issue of a segment sent across several lines (formats/hl7v2/parse.ts), located as `NTE[2]`. */
function brokenSegmentIssue(segment: string): MappingIssue {
  return {
    severity: 'information',
    code: 'ANCHORLINE_ISSUE_LINE_BREAK_IN_SEGMENT',
    location: segment,
    detail: `${segment} was sent across several lines (a line break inside a field, not escaped as \\.br\\); the break was kept in the value`,
  };
}

/**
 * Message types mapped by the segments they carry (segments.ts) by design rather than for want of a row: referrals
 * and their responses (REF, RRI: RF1, PRD, PID, DG1, PR1, IN1, OBR/OBX in any of the IG's structures I12-I15).
 */
const SEGMENT_DRIVEN_TYPES: ReadonlySet<string> = new Set(['REF', 'RRI']);

/** `${MSH-9.1}^${MSH-9.2}` keys with a row of their own in the mapping table, sorted. */
export function supportedMessageTypes(): string[] {
  return [...MAPPINGS.keys()].sort();
}

/**
 * Maps one parsed message to resource drafts. Throws AnchorlineError only: the message's own problems as
 * ANCHORLINE_ERR_HL7_* / ANCHORLINE_ERR_MAPPING_* codes, a bad time zone option as ANCHORLINE_ERR_CONFIG_INVALID.
 */
export function mapHl7Message(message: Hl7Message, options: Hl7MappingOptions): MappingResult {
  assertTimeZone(options.timeZone);
  const msh = firstSegment(message, 'MSH');
  if (msh === undefined) {
    throw new AnchorlineError('ANCHORLINE_ERR_HL7_NO_MSH', 'the message has no MSH segment', { location: 'MSH' });
  }
  const messageType = textOf(valueOf(msh, 9, 1));
  // v2.1 and v2.2 put the trigger event in EVN-1 and may leave MSH-9.2 empty.
  const triggerEvent = textOf(valueOf(msh, 9, 2)) || textOf(valueOf(firstSegment(message, 'EVN'), 1, 1));
  if (messageType === '') {
    throw new AnchorlineError('ANCHORLINE_ERR_HL7_MISSING_MESSAGE_TYPE', 'MSH-9 message type is empty', { location: 'MSH-9' });
  }
  const key = `${messageType}^${triggerEvent}`;
  if (!isSupportedMessageType(messageType, triggerEvent)) {
    // The type is safe to name: it is message metadata, not patient data.
    throw new AnchorlineError('ANCHORLINE_ERR_HL7_NOT_DATA_MESSAGE', `${key} is a query or an acknowledgment, not data to store`, { location: 'MSH-9' });
  }
  const sentControlId = valueOf(msh, 10);
  const controlId = sentControlId.trim() === '' ? `sha256:${createHash('sha256').update(JSON.stringify(message.segments)).digest('hex')}` : sentControlId;
  const context: MappingContext = { message, options, msh, messageType, triggerEvent, controlId, merges: [], directory: new DirectoryDrafts(), mappedSegments: new Set() };
  const issues = new MappingIssues();
  if (controlId !== sentControlId) {
    issues.add({ severity: 'warning', code: 'ANCHORLINE_ISSUE_MISSING_FIELD', location: 'MSH-10', detail: 'MSH-10 message control id is empty; the message is known by the SHA-256 of its content, so a resend of the same bytes is still one message, and its ACK echoes the empty MSA-2 as sent' });
  }
  let builders = MAPPINGS.get(key);
  if (builders === undefined) {
    builders = segmentBuilders(message);
    if (!SEGMENT_DRIVEN_TYPES.has(messageType)) issues.add({ severity: 'information', code: 'ANCHORLINE_ISSUE_UNKNOWN_MESSAGE_TYPE', location: 'MSH-9', detail: `${key} has no row in the mapping table; its segments were mapped by their own meaning`, value: key });
  }
  const locate = segmentLocator(message);
  for (const index of message.brokenSegments ?? []) issues.add(brokenSegmentIssue(locate(index)));
  for (const { segment, field } of message.removedNul ?? []) issues.add(removedNulIssue(locate(segment), field));
  const drafts: ResourceDraft[] = [];
  // Where the directory drafts go: before the drafts of the first builder that named a practitioner, organization or
  // location, so that every draft comes after the drafts it refers to (the Patient, which refers to none, first).
  let directoryAt: number | undefined;
  let patientFailure: AnchorlineError | undefined;
  withIssues(issues, () => {
    for (const build of builders) {
      const named = context.directory.size;
      const before = drafts.length;
      try {
        const built = build(context);
        // One by one: a spread passes every element as an argument, and a message can make more than the stack holds.
        if (Array.isArray(built)) for (const each of built) drafts.push(each);
        else if (built !== undefined) drafts.push(built);
      } catch (error) {
        if (isAnchorlineError(error) && issueCodeOf(error) !== undefined) {
          // One resource that cannot be built (an order without its number, a result without its code) costs that
          // resource, not the message; whether the patient itself could be built is decided below.
          issues.addError(error, 'ANCHORLINE_ISSUE_RESOURCE_NOT_MAPPED');
          patientFailure ??= error;
          continue;
        }
        if (isAnchorlineError(error)) throw error;
        // A builder bug fails the same way for the same message every time, so it is a permanent mapping failure,
        // not a retryable internal error.
        throw new AnchorlineError('ANCHORLINE_ERR_MAPPING_FAILED', `${key} mapping failed unexpectedly`, { cause: error });
      } finally {
        if (directoryAt === undefined && context.directory.size > named) directoryAt = before;
      }
    }
  });
  // Without its Patient a message about a patient is unsafe to store: nothing else of it could be attributed.
  // A message none of whose resources could be built is a failed message, not an empty success.
  if (patientFailure !== undefined && (drafts.length === 0 || (firstSegment(message, 'PID') !== undefined && !drafts.some((d) => d.resourceType === 'Patient')))) {
    throw patientFailure;
  }
  // The source's Z-segment rules add to the Patient and Encounter just built, and make Observations about them.
  withIssues(issues, () => {
    try {
      applyZSegmentRules(context, drafts);
    } catch (error) {
      if (isAnchorlineError(error)) throw error;
      throw new AnchorlineError('ANCHORLINE_ERR_MAPPING_FAILED', `${key} Z-segment mapping failed unexpectedly`, { cause: error });
    }
  });
  // MSH-4 sending facility is an Organization in every message that names one: who sent it, and the assigner of the
  // identifiers that take MSH-4 for want of their own authority.
  withIssues(issues, () => tolerate(() => sendingOrganizationReference(context), () => repetitionText(fieldOf(msh, 4)[0])));
  if (context.directory.size > 0) drafts.splice(directoryAt ?? drafts.length, 0, ...context.directory.drafts());
  // Last, as it refers to every other draft: where they came from (mappers/hl7v2/provenance.ts).
  const provenance = withIssues(issues, () => buildProvenance(context, drafts));
  if (provenance !== undefined) drafts.push(provenance);
  const eventTime = messageEventTime(context);
  return {
    drafts,
    ...(context.merges.length > 0 ? { merges: context.merges } : {}),
    ...(eventTime === undefined ? {} : { eventTime }),
    ...(issues.list.length > 0 ? { issues: issues.list } : {}),
  };
}

/**
 * EVN-2 (recorded date/time of the event), else MSH-7 (when the message was made), as a FHIR instant. A time the
 * mapper cannot read is not an error here: ordering falls back to arrival order.
 */
function messageEventTime(context: MappingContext): string | undefined {
  const candidates = [valueOf(firstSegment(context.message, 'EVN'), 2, 1), valueOf(context.msh, 7, 1)];
  for (const value of candidates) {
    if (value === '' || value === HL7_NULL) continue;
    try {
      const time = toFhirDateTime(value, 'EVN-2', context.options.timeZone);
      // Only a time to the second or finer orders messages; a bare date would tie most of a day's messages.
      if (time !== undefined && time.length > 10) return new Date(time).toISOString();
    } catch {
      // unreadable: try the next
    }
  }
  return undefined;
}

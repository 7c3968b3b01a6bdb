/**
 * Which HL7 v2 messages map to which FHIR resources: one table row per `${MSH-9.1}^${MSH-9.2}`, listing the builders
 * that produce its drafts in dependency order. Supporting a new message type is adding a row (and its builders).
 */

import { HL7_NULL, type Hl7Message, type Hl7Segment, firstSegment, valueOf } from '../../formats/hl7v2/index.ts';
import { AnchorlineError, isAnchorlineError } from '../../errors/index.ts';
import type { Hl7MappingOptions, MappingResult, ResourceDraft } from '../types.ts';
import type { MappingContext, MappingRow, ResourceBuilder } from './context.ts';

import { ADT_MAPPINGS } from './adt.ts';
import { DOCUMENT_MAPPINGS } from './documents.ts';
import { IMMUNIZATION_MAPPINGS } from './immunization.ts';
import { ORDER_MAPPINGS } from './orders.ts';
import { PHARMACY_MAPPINGS } from './pharmacy.ts';
import { RESULT_MAPPINGS } from './results.ts';
import { SCHEDULING_MAPPINGS } from './scheduling.ts';
import { assertTimeZone, textOf, toFhirDateTime } from './datatypes.ts';

/** Each message family lists its rows beside its builders; a key may appear only once across families. */
const MAPPINGS: ReadonlyMap<string, readonly ResourceBuilder[]> = (() => {
  const rows: MappingRow[] = [...ADT_MAPPINGS, ...RESULT_MAPPINGS, ...ORDER_MAPPINGS, ...SCHEDULING_MAPPINGS, ...IMMUNIZATION_MAPPINGS, ...DOCUMENT_MAPPINGS, ...PHARMACY_MAPPINGS];
  const table = new Map<string, readonly ResourceBuilder[]>();
  for (const [key, builders] of rows) {
    if (table.has(key)) throw new Error(`mapping table: ${key} is listed twice`);
    table.set(key, builders);
  }
  return table;
})();

export function isSupportedMessageType(messageType: string, triggerEvent: string): boolean {
  return MAPPINGS.has(`${messageType}^${triggerEvent}`);
}

/** Supported `${MSH-9.1}^${MSH-9.2}` keys, sorted. */
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
  const triggerEvent = textOf(valueOf(msh, 9, 2));
  if (messageType === '' || triggerEvent === '') {
    throw new AnchorlineError('ANCHORLINE_ERR_HL7_MISSING_MESSAGE_TYPE', 'MSH-9 message type or trigger event is empty', { location: 'MSH-9' });
  }
  const key = `${messageType}^${triggerEvent}`;
  const builders = MAPPINGS.get(key);
  if (builders === undefined) {
    // The type is safe to name: it is message metadata, not patient data.
    throw new AnchorlineError('ANCHORLINE_ERR_HL7_UNSUPPORTED_MESSAGE_TYPE', `${key} is not supported`, { location: 'MSH-9' });
  }

  const context: MappingContext = { message, options, msh, messageType, triggerEvent, merges: [] };
  const drafts: ResourceDraft[] = [];
  for (const build of builders) {
    try {
      const built = build(context);
      if (Array.isArray(built)) drafts.push(...built);
      else if (built !== undefined) drafts.push(built);
    } catch (error) {
      if (isAnchorlineError(error)) throw error;
      // A builder bug fails the same way for the same message every time, so it is a permanent mapping failure,
      // not a retryable internal error.
      throw new AnchorlineError('ANCHORLINE_ERR_MAPPING_FAILED', `${key} mapping failed unexpectedly`, { cause: error });
    }
  }
  const eventTime = messageEventTime(context);
  return { drafts, ...(context.merges.length > 0 ? { merges: context.merges } : {}), ...(eventTime === undefined ? {} : { eventTime }) };
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

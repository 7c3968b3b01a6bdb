/**
 * What the order, result, scheduling, immunization, document and pharmacy mappers share beyond field -> element
 * semantics and the two kinds of draft (drafts.ts): the patient a message is about, order identifiers, the segment
 * groups of ORC-led messages, and what an order request (ServiceRequest, MedicationRequest) reads from its ORC.
 */

import { type Hl7Field, type Hl7Message, type Hl7Repetition, type Hl7Segment, fieldOf, segmentsNamed, valueOf } from '../../formats/hl7v2/index.ts';
import { AnchorlineError } from '../../errors/index.ts';
import type { ResourceDraft } from '../types.ts';

import { patientId, sendingFacility } from './adt-common.ts';
import { type Identifier, type Reference, codeTable, comp, entityIdentifierOf, pruneEmpty, toEntityIdentifier, toFhirDateTime } from './datatypes.ts';
import { codeOf, element } from './drafts.ts';
import { practitionerReference } from './directory.ts';
import type { MappingContext } from './context.ts';
import { buildEach, degrade, reportIssue } from '../issues.ts';

/** MSH-4 as the authority of identifiers sent without their own: the same for every message family. */
export { sendingFacility };

// ---------------------------------------------------------------------------------------------------------------
// Errors (details name fields, never values)

export function missingField(location: string, detail: string): AnchorlineError {
  return new AnchorlineError('ANCHORLINE_ERR_MAPPING_MISSING_FIELD', `${location}: ${detail}`, { location });
}

export function invalidValue(location: string, detail: string): AnchorlineError {
  return new AnchorlineError('ANCHORLINE_ERR_MAPPING_INVALID_VALUE', `${location}: ${detail}`, { location });
}

/**
 * A value type (OBX-2) for an error detail: table 0125 codes are message structure, not patient data, and are
 * named; anything else a sender put there is not repeated.
 */
export function printableType(valueType: string): string {
  return /^[A-Z]{2,3}$/.test(valueType) ? valueType : '(not a table 0125 code)';
}

// ---------------------------------------------------------------------------------------------------------------
// The patient

/**
 * The reference to the patient the message is about. One patient per message: the result, scheduling and order
 * structures allow several PID groups, but each builder attributes everything to the first PID, so a second patient
 * would receive the first one's results. Such a message is refused rather than mapped wrongly.
 */
export function singlePatientReference(context: MappingContext): Reference & { reference: string } {
  if (segmentsNamed(context.message, 'PID').length > 1) {
    throw invalidValue('PID', 'the message is about more than one patient; one PID per message is supported');
  }
  return { reference: `Patient/${patientId(context)}` };
}

// ---------------------------------------------------------------------------------------------------------------
// Keys

/** An identifier that names a business key, so it has a system and a value. */
export type KeyIdentifier = Identifier & { system: string; value: string };

/** An EI field (or the first of two that carry the same number) as a key identifier, or undefined when empty. */
export function eiKey(repetition: Hl7Repetition | undefined, location: string, context: MappingContext, typeCode?: string): KeyIdentifier | undefined {
  const identifier = toEntityIdentifier(entityIdentifierOf(repetition), location, context.options, sendingFacility(context), typeCode);
  if (identifier === undefined) return undefined;
  if (identifier.system === undefined) {
    throw missingField(location, 'the identifier has no assigning authority and MSH-4 sending facility is empty');
  }
  return identifier as KeyIdentifier;
}

/**
 * ORC-3 9999: the CDC immunization guide's filler order number for an RXA that records no administration of the
 * sender's own (a refusal, a forecast of a dose due: CVX 998 "no vaccine administered"). Registries send it on every
 * such RXA of every patient, so it names no one record.
 */
const NO_IMMUNIZATION_ORDER_NUMBER = '9999';

/**
 * The order numbers an Immunization is known by (immunization.ts keys it on the filler's, else the placer's), and the
 * observations after its RXA name it by: ORC-3 and ORC-2, with the guide's 9999 read as no number.
 */
export function immunizationOrderNumbers(orc: Hl7Segment | undefined, context: MappingContext): OrderNumbers {
  const filler = eiKey(fieldOf(orc, 3)[0], 'ORC-3', context, 'FILL');
  const placer = eiKey(fieldOf(orc, 2)[0], 'ORC-2', context, 'PLAC');
  return { ...(filler !== undefined && filler.value !== NO_IMMUNIZATION_ORDER_NUMBER ? { filler } : {}), ...(placer !== undefined ? { placer } : {}) };
}

/** The placer and filler order numbers of an order: OBR-2/OBR-3 when sent, else ORC-2/ORC-3 (the IG's precedence). */
export interface OrderNumbers {
  placer?: KeyIdentifier;
  filler?: KeyIdentifier;
}

export function orderNumbers(orc: Hl7Segment | undefined, detail: Hl7Segment | undefined, detailName: string, context: MappingContext): OrderNumbers {
  const pick = (field: number, typeCode: string): KeyIdentifier | undefined => {
    const fromDetail = fieldOf(detail, field)[0];
    if (comp(fromDetail, 1) !== '') return eiKey(fromDetail, `${detailName}-${field}`, context, typeCode);
    return eiKey(fieldOf(orc, field)[0], `ORC-${field}`, context, typeCode);
  };
  return pruneEmpty<OrderNumbers>({ placer: pick(2, 'PLAC'), filler: pick(3, 'FILL') }) ?? {};
}

// ---------------------------------------------------------------------------------------------------------------
// Segment groups

/**
 * One order in an ORC-led message: its ORC (optional where the structure allows), its detail segment (OBR, RXE,
 * RXA) and every other segment up to the next order, in message order (TQ1, NTE, OBX, SPM, RXR, Z-segments...).
 */
export interface OrderGroup {
  orc?: Hl7Segment;
  detail?: Hl7Segment;
  segments: Hl7Segment[];
}

/**
 * The orders of a message: an ORC opens an order, and so does a detail segment that does not follow an ORC of its
 * own (ORU results sent without ORC, a second OBR after the first). Segments before the first order (MSH, PID,
 * PV1 and their notes) belong to no order.
 */
export function orderGroups(segments: readonly Hl7Segment[], detailName: string): OrderGroup[] {
  const groups: OrderGroup[] = [];
  let current: OrderGroup | undefined;
  for (const segment of segments) {
    if (segment.name === 'ORC') {
      current = { orc: segment, segments: [] };
      groups.push(current);
    } else if (segment.name === detailName) {
      if (current !== undefined && current.detail === undefined && current.orc !== undefined) {
        current.detail = segment;
      } else {
        current = { detail: segment, segments: [] };
        groups.push(current);
      }
    } else if (current !== undefined) {
      current.segments.push(segment);
    }
  }
  return groups;
}

// ---------------------------------------------------------------------------------------------------------------
// Order requests: what ServiceRequest (ORM, OML) and MedicationRequest (RDE) read from the ORC

/** HL7 table 0119 (order control codes), to tell a code the table does not have from one that sets no status. */
const ORDER_CONTROL_CODES = new Set(
  'AF CA CH CN CP CR DC DE DF DR FU HD HR LI MC NA NW OC OD OE OF OH OK OP OR PA PR PY RE RF RL RO RP RQ RR RU SC SN SR SS UA UC UD UF UH UM UN UR UX XO XR XX'.split(' '),
);

/**
 * ORC-1, checked against table 0119; ORC-1 is required in every message with an ORC. An order sent without one, or
 * with a code the table lacks, is read as a new order (NW) with an issue: that it is an order is certain, and NW
 * implies no change of a stored status that ORC-5 does not state.
 */
function orderControl(orc: Hl7Segment): string {
  const code = codeOf(fieldOf(orc, 1)).toUpperCase();
  if (code === '') return degrade(missingField('ORC-1', 'order control is empty; read as NW'), 'ANCHORLINE_ISSUE_MISSING_FIELD', 'NW');
  if (!ORDER_CONTROL_CODES.has(code)) return degrade(invalidValue('ORC-1', 'order control is not an HL7 table 0119 code; read as NW'), 'ANCHORLINE_ISSUE_CODE_NOT_IN_TABLE', 'NW', code);
  return code;
}

/**
 * An order's status: ORC-5 (order status, table 0038) when sent, else what ORC-1 implies, as the IG maps ORC-1
 * only when ORC-5 is empty. `byStatus` and `byControl` are the target value set's tables. A control code that
 * implies no status (SC status changed, UA unable to accept...) needs ORC-5: without it the order's state is not
 * known, and guessing would overwrite the stored one, so the status is undefined (left as stored).
 */
function orderStatus(
  orc: Hl7Segment,
  byStatus: ReadonlyMap<string, string>,
  byControl: ReadonlyMap<string, string>,
): { control: string; status: string | undefined } {
  const control = orderControl(orc);
  const statusCode = codeOf(fieldOf(orc, 5)).toUpperCase();
  if (statusCode !== '') {
    const status = byStatus.get(statusCode);
    if (status === undefined) return { control, status: degrade(invalidValue('ORC-5', 'order status is not an HL7 table 0038 code; read as unknown'), 'ANCHORLINE_ISSUE_CODE_NOT_IN_TABLE', 'unknown', statusCode) };
    return { control, status };
  }
  const status = byControl.get(control);
  // The order is still kept: its stored status stands, and a request first seen here gets `unknown` (merge.ts).
  if (status === undefined) return { control, status: degrade(missingField('ORC-5', 'order status is empty and the order control code does not imply one; the status is left as it was'), 'ANCHORLINE_ISSUE_MISSING_FIELD', undefined) };
  return { control, status };
}

/** HL7 table 0485 (extended priority codes) -> request-priority, as the IG ConceptMap v2-0485: S, A, R only. */
const PRIORITY = codeTable<string>({ S: 'stat', A: 'asap', R: 'routine' });

/** A TQ1-9 or TQ-6 priority as request-priority; the codes the IG leaves unmapped (P, C, T, PRN...) give none. */
export function requestPriority(code: string): string | undefined {
  return code === '' ? undefined : PRIORITY.get(code.toUpperCase());
}

/** How one kind of order request reads its orders. */
export interface OrderRequestKind {
  /** The segment that details each ORC's order (OBR, RXE). */
  detailName: string;
  /** Whether the detail segment carries order numbers in its fields 2 and 3 (OBR does, RXE does not). */
  numbersInDetail: boolean;
  /** HL7 table 0038 (ORC-5 order status) -> the resource's status. */
  statusByStatus: ReadonlyMap<string, string>;
  /** HL7 table 0119 (ORC-1 order control) -> the resource's status, where ORC-5 is empty. */
  statusByControl: ReadonlyMap<string, string>;
  /**
   * The detail segments of other kinds of order the same message may carry (an ORM^O01's OBR and RXO): an ORC
   * followed by one of those instead of this kind's detail is an order of that kind, left to its builder.
   */
  otherDetails?: readonly string[];
}

/** One order of an ORC-led order message, with what its ORC says about it. */
export interface OrderRequest {
  orc: Hl7Segment;
  detail: Hl7Segment;
  /** The order's other segments (TQ1, NTE, RXR...), in message order. */
  segments: Hl7Segment[];
  numbers: OrderNumbers;
  /**
   * The placer order number, else the filler's: what the request's id is made from. The placer assigns its number
   * before any filler number exists, so every message about one order addresses the same request.
   */
  key: KeyIdentifier;
  control: string;
  /** Undefined when the message does not say (the stored status stands). */
  status: string | undefined;
  /** The order's NTE comments, undefined when it has none (the stored notes stay). */
  note: Array<Annotation | undefined> | undefined;
}

/**
 * One draft per order of an order message: every order must have its ORC and its detail segment and a placer or
 * filler order number, and the message must be about one patient (singlePatientReference).
 */
export function buildOrderRequests(
  context: MappingContext,
  kind: OrderRequestKind,
  build: (request: OrderRequest, subject: Reference & { reference: string }) => ResourceDraft | ResourceDraft[],
): ResourceDraft[] {
  const subject = singlePatientReference(context);
  const groups = orderGroups(context.message.segments, kind.detailName);
  if (groups.length === 0) throw missingField('ORC', 'the message has no order');
  const others = kind.otherDetails ?? [];
  const ours = groups.filter((group) => group.detail !== undefined || !group.segments.some((segment) => others.includes(segment.name)));
  // One order that cannot be read (no order number, no detail segment) costs itself, not the message's other orders.
  return buildEach(ours, (group) => build(orderRequest(group, kind, context), subject)).flat();
}

function orderRequest(group: OrderGroup, kind: OrderRequestKind, context: MappingContext): OrderRequest {
  const { detail, segments } = group;
  const { detailName, numbersInDetail } = kind;
  // Before v2.3 an order was often its OBR alone: read as a new order whose numbers come from the detail segment.
  const orc = group.orc ?? degrade(missingField('ORC', `an ${detailName} is sent without its ORC; read as a new order`), 'ANCHORLINE_ISSUE_MISSING_FIELD', EMPTY_ORC);
  if (detail === undefined) throw missingField(detailName, `an ORC is not followed by its ${detailName}`);

  const numbers = orderNumbers(orc, numbersInDetail ? detail : undefined, detailName, context);
  const sources = (field: number): string => (numbersInDetail ? `ORC-${field}, ${detailName}-${field}` : `ORC-${field}`);
  const key =
    numbers.placer ??
    numbers.filler ??
    messageScopedKey(orc === EMPTY_ORC ? detail : orc, 2, `neither a placer (${sources(2)}) nor a filler (${sources(3)}) order number is sent; the order is keyed by the message control id and its position, so a later message about it cannot find it`, context);
  const { control, status } = orderStatus(orc, kind.statusByStatus, kind.statusByControl);
  const notes = segments.filter((segment) => segment.name === 'NTE').map(noteOf);
  return { orc, detail, segments, numbers, key, control, status, note: notes.length > 0 ? notes : undefined };
}

/** The ORC an order without one is read with: every field empty, so ORC-1 reads as NW (with its own issue). */
const EMPTY_ORC: Hl7Segment = Object.freeze({ name: 'ORC', fields: [] }) as unknown as Hl7Segment;

/**
 * An order's requester from its fields in turn (ORC-12, then the detail segment's own: OBR-16, RXO-14, where older
 * senders put the same provider): the first that names someone; a `""` in one, with nobody named in another, removes
 * the stored requester.
 */
export function orderingProvider(sources: ReadonlyArray<readonly [Hl7Field, string]>, context: MappingContext): Reference | null | undefined {
  let cleared = false;
  for (const [field, location] of sources) {
    const provider = element(field, (rep) => practitionerReference(rep, location, context));
    if (provider) return provider;
    if (provider === null) cleared = true;
  }
  return cleared ? null : undefined;
}

/** An order's quantity/timing, as its components' text: what TQ1 says, else the TQ of older senders. */
export interface OrderTiming {
  /** TQ1-9, else TQ-6 (table 0485). */
  priority: string;
  /** The repeat pattern: TQ1-3, else TQ-2.1 (table 0335). */
  pattern: string;
  /** TQ1-7 and TQ1-8, else TQ-4 and TQ-5. */
  start: string;
  end: string;
  /** Where the start and end were read, for their issues. */
  location: string;
}

/**
 * The quantity/timing of an order: its TQ1 (v2.5 on), else `older`, the TQ that senders before v2.5 put where the
 * order keeps it (ORC-7 or OBR-27 for a service, RXE-1 or ORC-7 for a medication).
 */
export function orderTiming(segments: readonly Hl7Segment[], older: { tq: Hl7Repetition | undefined; location: string }): OrderTiming {
  const tq1 = segments.find((segment) => segment.name === 'TQ1');
  if (tq1 !== undefined) {
    const first = (field: number): string => comp(fieldOf(tq1, field)[0], 1);
    return { priority: first(9), pattern: first(3), start: first(7), end: first(8), location: 'TQ1-7' };
  }
  const { tq, location } = older;
  return { priority: comp(tq, 6), pattern: comp(tq, 2, 1), start: comp(tq, 4, 1), end: comp(tq, 5, 1), location };
}

/**
 * authoredOn: ORC-9 is when this message's event happened; it is when the order was written only for a new order
 * (ORC-1 NW). A function of its own, not part of OrderRequest, so that a bad ORC-9 is reported where the draft
 * reads it, after the detail segment's own required fields.
 */
export function authoredOn(request: OrderRequest, timeZone: string): string | undefined {
  return request.control === 'NW' ? toFhirDateTime(comp(fieldOf(request.orc, 9)[0], 1), 'ORC-9', timeZone) : undefined;
}

// ---------------------------------------------------------------------------------------------------------------
// Notes

export interface Annotation {
  text: string;
}

/** NTE-3 comment (FT, repeating) as one annotation per NTE; repetitions are lines. */
export function noteOf(nte: Hl7Segment): Annotation | undefined {
  const text = fieldOf(nte, 3)
    .map((repetition) => comp(repetition, 1))
    .join('\n')
    .trim();
  return text === '' ? undefined : { text };
}

/** A segment's position among the message's segments of its name (1-based): the n of `PR1[n]-3`. */
export function positionOf(message: Hl7Message, segment: Hl7Segment): number {
  let position = 0;
  for (const candidate of message.segments) {
    if (candidate.name === segment.name) position++;
    if (candidate === segment) return position;
  }
  return position;
}

/**
 * The key of an order or report sent without any order number (as some point-of-care and older senders do): the
 * sender, the message's control id and the segment's position, with a warning at `<segment>[n]-<field>`. A resend of
 * the message names the same resource; a later message about it cannot find it, since nothing ties the two. Being
 * scoped to one message, it can never name another patient's resource.
 */
export function messageScopedKey(segment: Hl7Segment, field: number, detail: string, context: MappingContext): KeyIdentifier {
  const sender = [valueOf(context.msh, 3), valueOf(context.msh, 4)].join('|');
  const position = positionOf(context.message, segment);
  reportIssue({ severity: 'warning', code: 'ANCHORLINE_ISSUE_MISSING_FIELD', location: `${segment.name}[${position}]-${field}`, detail });
  return { system: `urn:anchorline:message:${encodeURIComponent(sender)}`, value: `${context.controlId}#${segment.name}${position}` };
}

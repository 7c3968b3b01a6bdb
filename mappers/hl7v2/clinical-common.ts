/**
 * What the procedure, observation, financial, medication event, problem and provenance mappers share: building one
 * resource per segment so that one unreadable segment costs only its own resource, segment positions for issue
 * locations, the segment groups of ORC-led event messages (an order and its administrations or dispenses), and the
 * keys that name an administration, a dispense, a problem and a medication order, so that the builder of a resource
 * and the builder of what refers to it (an Observation's partOf) derive one id.
 *
 * Apart from the families, and free of adt.ts, results.ts and the order families, so that adt.ts can list the
 * procedure and observation builders without an import circle.
 */

import { type Hl7Field, type Hl7Message, type Hl7Segment, fieldOf } from '../../formats/hl7v2/index.ts';
import { AnchorlineError } from '../../errors/index.ts';
import { deterministicId } from '../ids.ts';
import { buildEach, currentIssues, reportIssue } from '../issues.ts';
import type { ResourceDraft } from '../types.ts';

import { conceptKey, patientId, visitKey } from './adt-common.ts';
import { type CodeableConcept, type Reference, comp, pruneEmpty, toCodeableConcept, toCodeableConceptIn } from './datatypes.ts';
import { type KeyIdentifier, eiKey, orderNumbers, positionOf } from './message-common.ts';
import type { MappingContext } from './context.ts';

// ---------------------------------------------------------------------------------------------------------------
// One resource per segment

/**
 * What `build` makes of each segment; one that cannot be built costs itself, with the issue at its position
 * (`AL1[2]-3`), not the other segments' resources.
 */
export function eachSegment<R>(segments: readonly Hl7Segment[], build: (segment: Hl7Segment, index: number) => R | undefined, message: Hl7Message): R[] {
  return buildEach(segments, build, (segment, failure) => atPosition(failure.location, segment, message));
}

/**
 * One draft per segment of `segments` (eachSegment), and two segments that name the same resource (the same PR1
 * sent twice, one transaction id on two FT1) both kept: the later one under its position, with an issue
 * (ANCHORLINE_ISSUE_DUPLICATE_KEY), as results.ts keeps two OBX of one key.
 */
export function eachSegmentResource(segments: readonly Hl7Segment[], build: (segment: Hl7Segment) => ResourceDraft | undefined, message: Hl7Message): ResourceDraft[] {
  const ids = new Set<string>();
  return eachSegment(
    segments,
    (segment) => {
      const draft = build(segment);
      if (draft === undefined) return undefined;
      if (ids.has(draft.id)) {
        const at = atPosition(undefined, segment, message);
        draft.id = deterministicId(draft.resourceType, draft.id, at);
        reportIssue({ severity: 'warning', code: 'ANCHORLINE_ISSUE_DUPLICATE_KEY', location: at, detail: `another ${segment.name} names the same ${draft.resourceType}; kept under its position` });
      }
      ids.add(draft.id);
      return draft;
    },
    message,
  );
}

export { positionOf } from './message-common.ts';

/**
 * An error's location (`PR1-3`) as the location in the n-th segment of that name (`PR1[2]-3`), so that integration
 * staff can find which of several segments failed; a location naming another segment (`ORC-2`) stays as it is.
 */
export function atPosition(location: string | undefined, segment: Hl7Segment, message: Hl7Message): string {
  const at = `${segment.name}[${positionOf(message, segment)}]`;
  if (location === undefined || location === '') return at;
  return location.startsWith(`${segment.name}-`) ? `${at}${location.slice(segment.name.length)}` : location;
}

/** Runs `build` with the field issues it records located at `segment` (OBX-5 becomes OBX[3]-5), as atPosition. */
export function withinSegment<T>(segment: Hl7Segment, message: Hl7Message, build: () => T): T {
  const issues = currentIssues();
  return issues === undefined ? build() : issues.within((location) => atPosition(location, segment, message), build);
}

// ---------------------------------------------------------------------------------------------------------------
// Segment groups of ORC-led event messages

/**
 * One event of an order (an RXA administration, an RXD dispense): its segment, the ORC of its order when one was
 * sent before it, and the segments that follow it up to the next event or order (RXR, RXC, OBX, NTE, FT1...).
 * Unlike message-common's orderGroups, every event after an ORC belongs to that ORC: the RAS and RDS structures
 * give one order several administrations or dispenses (RXA-1/RXA-2 and RXD-1 count them).
 */
export interface OrderEvent {
  orc?: Hl7Segment;
  event: Hl7Segment;
  segments: Hl7Segment[];
}

export function orderEvents(message: Hl7Message, eventName: string): OrderEvent[] {
  const events: OrderEvent[] = [];
  let orc: Hl7Segment | undefined;
  let current: OrderEvent | undefined;
  for (const segment of message.segments) {
    if (segment.name === 'ORC') {
      orc = segment;
      current = undefined;
    } else if (segment.name === 'PID') {
      orc = undefined;
      current = undefined;
    } else if (segment.name === eventName) {
      current = { ...(orc === undefined ? {} : { orc }), event: segment, segments: [] };
      events.push(current);
    } else if (current !== undefined) {
      current.segments.push(segment);
    }
  }
  return events;
}

// ---------------------------------------------------------------------------------------------------------------
// Keys shared by a resource's builder and the builders that refer to it

/**
 * The medication order an ORC names: the placer order number, else the filler's, as pharmacy.ts keys
 * MedicationRequest (RDE^O11), so that a dispense or an administration refers to the request its order made.
 */
export function medicationOrderKey(orc: Hl7Segment | undefined, context: MappingContext): KeyIdentifier | undefined {
  if (orc === undefined) return undefined;
  const numbers = orderNumbers(orc, undefined, 'ORC', context);
  return numbers.placer ?? numbers.filler;
}

/** A literal reference to the MedicationRequest pharmacy.ts makes of an order with this key, naming its number too. */
export function medicationRequestReference(key: KeyIdentifier): Reference & { type: string; identifier: KeyIdentifier } {
  return { reference: `MedicationRequest/${deterministicId('MedicationRequest', key.system, key.value)}`, type: 'MedicationRequest', identifier: key };
}

/**
 * The MedicationAdministration of an RXA in a RAS message: its order's key with RXA-1 (give sub-id counter) and
 * RXA-2 (administration sub-id counter), which count the administrations of one order; without an order number, the
 * patient, the medication and the start of administration (RXA-3) with RXA-2.
 */
export function administrationId(event: OrderEvent, medication: CodeableConcept | undefined, context: MappingContext): string {
  const { event: rxa } = event;
  const counters = [comp(fieldOf(rxa, 1)[0], 1), comp(fieldOf(rxa, 2)[0], 1)];
  const key = medicationOrderKey(event.orc, context);
  if (key !== undefined) return deterministicId('MedicationAdministration', key.system, key.value, ...counters);
  return deterministicId('MedicationAdministration', patientId(context), medication === undefined ? '' : conceptKey(medication), comp(fieldOf(rxa, 3)[0], 1), ...counters);
}

/**
 * The MedicationDispense of an RXD: its order's key with RXD-1 (dispense sub-id counter); without an order number,
 * RXD-7 (prescription number) with RXD-1; without either, the patient, the medication and RXD-3 (when dispensed).
 */
export function dispenseId(event: OrderEvent, medication: CodeableConcept | undefined, context: MappingContext): string {
  const { event: rxd } = event;
  const counter = comp(fieldOf(rxd, 1)[0], 1);
  const key = medicationOrderKey(event.orc, context) ?? prescriptionNumber(rxd, context);
  if (key !== undefined) return deterministicId('MedicationDispense', key.system, key.value, counter);
  return deterministicId('MedicationDispense', patientId(context), medication === undefined ? '' : conceptKey(medication), comp(fieldOf(rxd, 3)[0], 1), counter);
}

/**
 * The ids of every administration (RXA) or dispense (RXD) of the message, by event segment: administrationId or
 * dispenseId, and for a later event whose id an earlier one already has (an order number reused, counters not sent)
 * that id with the event's position, so that both are kept. `duplicates` lists those later events; their builder
 * reports them (ANCHORLINE_ISSUE_DUPLICATE_KEY), and an Observation's partOf (observations.ts) reads the same ids.
 */
export function eventIds(context: MappingContext, eventName: 'RXA' | 'RXD'): { ids: Map<Hl7Segment, string>; duplicates: Set<Hl7Segment> } {
  const known = eventIdsByMessage.get(context)?.get(eventName);
  if (known !== undefined) return known;
  const computed = computeEventIds(context, eventName);
  const byName = eventIdsByMessage.get(context) ?? new Map<string, { ids: Map<Hl7Segment, string>; duplicates: Set<Hl7Segment> }>();
  byName.set(eventName, computed);
  eventIdsByMessage.set(context, byName);
  return computed;
}

/** eventIds once per message: every OBX of a dispense or an administration asks for its event's id. */
const eventIdsByMessage = new WeakMap<MappingContext, Map<string, { ids: Map<Hl7Segment, string>; duplicates: Set<Hl7Segment> }>>();

function computeEventIds(context: MappingContext, eventName: 'RXA' | 'RXD'): { ids: Map<Hl7Segment, string>; duplicates: Set<Hl7Segment> } {
  const ids = new Map<Hl7Segment, string>();
  const duplicates = new Set<Hl7Segment>();
  const taken = new Set<string>();
  for (const event of orderEvents(context.message, eventName)) {
    const medication = medicationConcept(fieldOf(event.event, eventName === 'RXA' ? 5 : 2), 'L', context);
    let id = eventName === 'RXA' ? administrationId(event, medication, context) : dispenseId(event, medication, context);
    if (taken.has(id)) {
      id = deterministicId(eventName === 'RXA' ? 'MedicationAdministration' : 'MedicationDispense', id, eventName, String(positionOf(context.message, event.event)));
      duplicates.add(event.event);
    }
    taken.add(id);
    ids.set(event.event, id);
  }
  return { ids, duplicates };
}

/** RXD-7 prescription number, an identifier the sending pharmacy assigns (MSH-4 its authority). */
export function prescriptionNumber(rxd: Hl7Segment, context: MappingContext): KeyIdentifier | undefined {
  const number = comp(fieldOf(rxd, 7)[0], 1);
  return number === '' ? undefined : eiKey([[number]], 'RXD-7', context);
}

/**
 * PRB-3 problem id (CE; codes sent without a coding system are local to table 0051, the diagnosis codes problems
 * share with DG1): what names the problem. Throws when PRB-3 is empty.
 */
export function problemCode(prb: Hl7Segment, context: MappingContext): CodeableConcept {
  const code = pruneEmpty(toCodeableConcept(fieldOf(prb, 3)[0] ?? [], context.options, 'HL70051'));
  if (code === undefined) throw new AnchorlineError('ANCHORLINE_ERR_MAPPING_MISSING_FIELD', 'PRB-3: the problem id is empty', { location: 'PRB-3' });
  return code;
}

/**
 * The Condition of a PRB: PRB-4 (problem instance id, which names the problem across PC1 add, PC2 update and PC3
 * delete) when sent, else the patient and the problem code. `PRB` in the key keeps a problem apart from a DG1
 * diagnosis of the same code (adt-diagnosis.ts), which is about one visit.
 */
export function problemId(prb: Hl7Segment, code: CodeableConcept, context: MappingContext): { id: string; identifier?: KeyIdentifier } {
  const identifier = eiKey(fieldOf(prb, 4)[0], 'PRB-4', context);
  if (identifier !== undefined) return { id: deterministicId('Condition', identifier.system, identifier.value), identifier };
  return { id: deterministicId('Condition', patientId(context), 'PRB', conceptKey(code)) };
}

/** The visit the message is about, as a reference, when PV1 names one (adt-common visitKey). */
export function visitReference(context: MappingContext): Reference | undefined {
  const visit = visitKey(context);
  return visit === undefined ? undefined : { reference: `Encounter/${visit.id}` };
}

// ---------------------------------------------------------------------------------------------------------------
// Code systems of procedure, charge and medication codes

/**
 * Coding system names (HL7 table 0396) senders use for procedure and charge codes (PR1-3, FT1-7, FT1-25), with the
 * URIs terminology.hl7.org gives them: CPT-4, ICD-10-PCS, ICD-9-CM procedures, HCPCS. Korean EDI procedure codes
 * (HIRA) have no published URI and stay in the local system.
 */
export const PROCEDURE_CODE_SYSTEMS: ReadonlyMap<string, string> = new Map([
  ['C4', 'http://www.ama-assn.org/go/cpt'],
  ['CPT4', 'http://www.ama-assn.org/go/cpt'],
  ['CPT', 'http://www.ama-assn.org/go/cpt'],
  ['I10P', 'http://www.cms.gov/Medicare/Coding/ICD10'],
  ['I9CP', 'http://hl7.org/fhir/sid/icd-9-cm'],
  ['HCPCS', 'http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets'],
  ['HCPT', 'http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets'],
]);

/** Medication vocabularies senders name in RXA-5, RXD-2 and FT1-29, beyond the shared ones (RxNorm is one of those). */
export const MEDICATION_CODE_SYSTEMS: ReadonlyMap<string, string> = new Map([
  ['NDC', 'http://hl7.org/fhir/sid/ndc'],
  ['CVX', 'http://hl7.org/fhir/sid/cvx'],
]);

/** A medication code field (RXA-5, RXD-2) as a CodeableConcept; codes sent without a system are local to `table`. */
export function medicationConcept(field: Hl7Field, table: string, context: MappingContext): CodeableConcept | undefined {
  return toCodeableConceptIn(field[0] ?? [], context.options, table, MEDICATION_CODE_SYSTEMS);
}

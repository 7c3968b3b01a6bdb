/**
 * OBX outside result reports -> Observation, one per OBX, with the OBX[Observation] map of results.ts (code, value,
 * status, performers, notes: one conversion for every OBX), attached to what the OBX is about. Where an OBX stands in
 * the message says what it is about, as in the IG's message maps:
 * - after PID, PV1 or PV2 (ADT, BAR, DFT, PPR): the patient at this visit, height, weight and the like. The IG leaves
 *   Observation.encounter to the implementer (the observation may be from an earlier stay); the visit the message
 *   names is the one the sender reports it with, so it is set when PV1 names a visit (not for A28 and A31, which are
 *   about the person and describe no visit).
 * - after an OBR of an order (ORM, OML): ask-at-order-entry answers. The IG links them from the order,
 *   ServiceRequest.supportingInfo (orders.ts asks orderObservationReferences for them).
 * - after an RXA of a vaccination (VXU, RSP): funding source, VFC eligibility, VIS documents. Observation.partOf names
 *   the Immunization by the identifier immunization.ts gives it (ORC-3, else ORC-2). The IG notes that some of these
 *   could become Immunization elements (fundingSource, programEligibility) per realm guide; here they stay
 *   Observations, which keeps them whatever the guide.
 * - after an RXA of a RAS (MedicationAdministration) or an RXD (MedicationDispense): partOf that event.
 * - after RXE, RXO or RXG (a pharmacy order), or a PRB (a problem): keyed on that order or problem.
 * OBX in a document message (MDM, after TXA) are its content (documents.ts) and are left alone.
 *
 * Observation is a complete draft (results.ts): an OBX is the whole observation each time it is sent. Ids are the
 * key of what the OBX is about with its code and sub-id, and, for an observation of the visit, its time (OBX-14), so
 * that a weight resent in the next A08, in any position, updates one Observation, and a weight taken later is another.
 * Two OBX with the same key in one message are both kept, the later one under its position (DUPLICATE_KEY).
 */

import { type Hl7Segment, fieldOf } from '../../formats/hl7v2/index.ts';
import { deterministicId } from '../ids.ts';
import { buildEach, issueCodeOf, reportIssue } from '../issues.ts';
import type { ResourceDraft } from '../types.ts';

import { conceptKey, patientId, visitKey } from './adt-common.ts';
import { atPosition, eventIds, positionOf, problemCode, problemId } from './clinical-common.ts';
import { type CodeableConcept, type Reference, comp, toCodeableConcept } from './datatypes.ts';
import { type Annotation, type KeyIdentifier, immunizationOrderNumbers, noteOf, orderNumbers, singlePatientReference } from './message-common.ts';
import { addsLineTo, buildObservation, buildResults } from './results.ts';
import type { MappingContext } from './context.ts';

// ---------------------------------------------------------------------------------------------------------------
// What each OBX is about

/** The segment an OBX follows, which says what the observation is about. */
type Subject =
  | { kind: 'visit' }
  | { kind: 'order'; orc?: Hl7Segment; obr?: Hl7Segment }
  | { kind: 'vaccination'; orc?: Hl7Segment; rxa: Hl7Segment }
  | { kind: 'administration'; event: Hl7Segment }
  | { kind: 'dispense'; event: Hl7Segment }
  | { kind: 'medication-order'; orc?: Hl7Segment }
  | { kind: 'problem'; prb: Hl7Segment }
  | { kind: 'document' };

interface ObservedSegment {
  obx: Hl7Segment;
  /** The OBX after it that continue its text (results.ts, addsLineTo). */
  continued?: Hl7Segment[];
  notes: Annotation[];
  about: Subject;
}

/** Segments after which the next OBX are about the patient and the visit again. */
const VISIT_SEGMENTS = new Set(['PID', 'PD1', 'PV1', 'PV2', 'NK1', 'AL1', 'IAM', 'DG1', 'DRG', 'PR1', 'GT1', 'IN1', 'IN2', 'IN3', 'ACC', 'UB1', 'UB2', 'FT1', 'DB1']);

/**
 * Every OBX of the message with the NTE segments that follow it and what it is about. An RXA in a RAS message is a
 * medication administration, anywhere else a vaccination (VXU, and RSP responses of immunization registries).
 */
function observedSegments(context: MappingContext): ObservedSegment[] {
  const administrations = context.messageType === 'RAS';
  const observed: ObservedSegment[] = [];
  let about: Subject = { kind: 'visit' };
  let orc: Hl7Segment | undefined;
  // Whether the ORC already has its detail segment: a second RXA after one ORC has no ORC of its own in a VXU
  // (immunization.ts reads it so, as message-common's orderGroups groups it).
  let orcTaken = false;
  let current: ObservedSegment | undefined;
  for (const segment of context.message.segments) {
    const { name } = segment;
    if (name === 'OBX') {
      if (addsLineTo(current, segment)) continue;
      current = { obx: segment, notes: [], about };
      observed.push(current);
      continue;
    }
    if (name === 'NTE') {
      const note = noteOf(segment);
      if (note !== undefined && current !== undefined) current.notes.push(note);
      continue;
    }
    current = undefined;
    const ownOrc = orcTaken ? undefined : orc;
    if (name === 'ORC') {
      orc = segment;
      orcTaken = false;
      about = { kind: 'order', orc };
    } else if (name === 'OBR') {
      about = { kind: 'order', ...(ownOrc === undefined ? {} : { orc: ownOrc }), obr: segment };
      orcTaken = true;
    } else if (name === 'RXA') {
      about = administrations ? { kind: 'administration', event: segment } : { kind: 'vaccination', ...(ownOrc === undefined ? {} : { orc: ownOrc }), rxa: segment };
      orcTaken = true;
    } else if (name === 'RXD') {
      about = { kind: 'dispense', event: segment };
    } else if (name === 'RXE' || name === 'RXO' || name === 'RXG') {
      about = { kind: 'medication-order', ...(orc === undefined ? {} : { orc }) };
    } else if (name === 'PRB') {
      about = { kind: 'problem', prb: segment };
    } else if (name === 'TXA') {
      about = { kind: 'document' };
    } else if (VISIT_SEGMENTS.has(name)) {
      about = { kind: 'visit' };
      if (name === 'PID') orc = undefined;
    }
    // RXR, RXC, TQ1, SPM, PRT, ROL, VAR, CDO and Z-segments belong to what they follow.
  }
  return observed;
}

// ---------------------------------------------------------------------------------------------------------------
// Keys and links

interface Attachment {
  /** What the observation's id is made from besides its code and sub-id. */
  key: string[];
  partOf?: Reference & Record<string, unknown>;
}

function attachment(about: Subject, obx: Hl7Segment, visitId: string | undefined, context: MappingContext): Attachment {
  const visit = (): Attachment => ({ key: ['visit', patientId(context), visitId ?? '', comp(fieldOf(obx, 14)[0], 1)] });
  const keyed = (kind: string, key: KeyIdentifier | undefined): Attachment => (key === undefined ? visit() : { key: [kind, key.system, key.value] });
  switch (about.kind) {
    case 'visit':
    case 'document':
      return visit();
    case 'order': {
      // The ServiceRequest's own key (orders.ts): the placer order number, else the filler's.
      const numbers = orderNumbers(about.orc, about.obr, 'OBR', context);
      return keyed('order', numbers.placer ?? numbers.filler);
    }
    case 'medication-order': {
      const numbers = orderNumbers(about.orc, undefined, 'ORC', context);
      return keyed('medication-order', numbers.placer ?? numbers.filler);
    }
    case 'vaccination': {
      // The Immunization's identifier as immunization.ts keys it: ORC-3 filler order number, else ORC-2.
      const numbers = immunizationOrderNumbers(about.orc, context);
      const key = numbers.filler ?? numbers.placer;
      if (key === undefined) {
        const vaccine = toCodeableConcept(fieldOf(about.rxa, 5)[0] ?? [], context.options, 'L');
        return { key: ['vaccination', patientId(context), vaccine === undefined ? '' : conceptKey(vaccine), comp(fieldOf(about.rxa, 3)[0], 1)] };
      }
      return { key: ['vaccination', key.system, key.value], partOf: { type: 'Immunization', identifier: key } };
    }
    case 'administration': {
      const id = eventIds(context, 'RXA').ids.get(about.event)!;
      return { key: ['administration', id], partOf: { reference: `MedicationAdministration/${id}` } };
    }
    case 'dispense': {
      const id = eventIds(context, 'RXD').ids.get(about.event)!;
      return { key: ['dispense', id], partOf: { reference: `MedicationDispense/${id}` } };
    }
    case 'problem': {
      const { id } = problemId(about.prb, problemCode(about.prb, context), context);
      return { key: ['problem', id] };
    }
  }
}

/** The segment an observation's key belongs to: undefined for the patient and visit, which are one per message. */
function anchorOf(about: Subject): Hl7Segment | undefined {
  switch (about.kind) {
    case 'order':
      return about.obr ?? about.orc;
    case 'medication-order':
      return about.orc;
    case 'vaccination':
      return about.rxa;
    case 'administration':
    case 'dispense':
      return about.event;
    case 'problem':
      return about.prb;
    default:
      return undefined;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Builders

/** Which OBX a builder maps, and whether they belong to the visit PV1 names. */
interface Selection {
  /** Leave out the OBX of OBR groups, which buildResults reads as results. */
  besideResults: boolean;
  /** Refer to the visit: false for events about the person (A28, A31), which describe no Encounter. */
  visit: boolean;
}

/**
 * The Observation drafts of a message's OBX, by OBX segment, built once per message and selection: orders.ts asks
 * for an order's references while building its ServiceRequest, and the observation builder of the same row emits
 * them afterwards.
 */
const builtByMessage = new WeakMap<MappingContext, Map<string, Map<Hl7Segment, ResourceDraft>>>();

function observationsOf(context: MappingContext, selection: Selection): Map<Hl7Segment, ResourceDraft> {
  const selectionKey = `${selection.besideResults}|${selection.visit}`;
  const known = builtByMessage.get(context)?.get(selectionKey);
  if (known !== undefined) return known;
  const observed = observedSegments(context).filter((entry) => entry.about.kind !== 'document' && !(selection.besideResults && entry.about.kind === 'order'));
  const built = new Map<Hl7Segment, ResourceDraft>();
  if (observed.length > 0) {
    const subject = singlePatientReference(context);
    const visit = selection.visit ? visitKey(context) : undefined;
    const ids = new Set<string>();
    const anchors = new Map<string, Hl7Segment | undefined>();
    buildEach(
      observed,
      (entry) => {
        const { obx } = entry;
        const attached = attachment(entry.about, obx, visit?.id, context);
        // Two orders or vaccinations sent with one key (one order number; or, without one, the same vaccine and time,
        // as a registry's forecasts): the observations of the later one are kept under its position, with one issue.
        const anchor = anchorOf(entry.about);
        const anchorKey = JSON.stringify(attached.key);
        if (!anchors.has(anchorKey)) anchors.set(anchorKey, anchor);
        else if (anchor !== undefined && anchors.get(anchorKey) !== anchor) {
          const at = atPosition(undefined, anchor, context.message);
          attached.key = [...attached.key, at];
          // A vaccination sent without an order number (a registry's forecasts) is known by its vaccine and time,
          // which its forecasts share by nature: a note, as immunization.ts gives its record.
          const unnumbered = entry.about.kind === 'vaccination' && attached.partOf === undefined;
          reportIssue({
            severity: unnumbered ? 'information' : 'warning',
            code: 'ANCHORLINE_ISSUE_DUPLICATE_KEY',
            location: at,
            detail: unnumbered
              ? `another ${anchor.name} without an order number has the same vaccine and time; the observations that follow this one are kept under its position`
              : `another ${anchor.name} has the same order number; the observations that follow this one are kept under its position`,
          });
        }
        const draft = buildObservation(entry, { reportKey: attached.key, subject, effective: undefined, issued: undefined, specimen: undefined }, context);
        let id = deterministicId('Observation', ...attached.key, 'OBX', conceptKey(draft['code'] as CodeableConcept), comp(fieldOf(obx, 4)[0], 1));
        if (ids.has(id)) {
          const position = positionOf(context.message, obx);
          id = deterministicId('Observation', id, 'OBX', String(position));
          reportIssue({ severity: 'warning', code: 'ANCHORLINE_ISSUE_DUPLICATE_KEY', location: `OBX[${position}]-3`, detail: 'another OBX about the same thing has the same code and sub-id; kept under its position' });
        }
        ids.add(id);
        draft.id = id;
        draft['encounter'] = visit === undefined ? null : { reference: `Encounter/${visit.id}` };
        draft['partOf'] = attached.partOf === undefined ? null : [attached.partOf];
        built.set(obx, draft);
        return draft;
      },
      (entry, failure) => atPosition(failure.location, entry.obx, context.message),
    );
  }
  const selections = builtByMessage.get(context) ?? new Map<string, Map<Hl7Segment, ResourceDraft>>();
  selections.set(selectionKey, built);
  builtByMessage.set(context, selections);
  return built;
}

/** Observations of every OBX of the message (ADT, BAR, DFT, PPR, ORM, OML, VXU, RDE, RDS, RAS). */
export function buildObservations(context: MappingContext): ResourceDraft[] {
  return [...observationsOf(context, { besideResults: false, visit: true }).values()];
}

/** Observations of the OBX outside result reports, for messages whose OBR groups buildResults reads (ORF, RSP). */
export function buildObservationsBesideResults(context: MappingContext): ResourceDraft[] {
  return [...observationsOf(context, { besideResults: true, visit: true }).values()];
}

/** Observations of the person, for events that describe no visit (ADT A28, A31): no Encounter is referred to. */
export function buildPersonObservations(context: MappingContext): ResourceDraft[] {
  return [...observationsOf(context, { besideResults: false, visit: false }).values()];
}

/**
 * Results for messages that may carry result reports among other things (DFT: the orders a charge is for, with their
 * OBR and OBX): buildResults when the message has OBR groups with OBX, else nothing.
 */
export function buildResultsIfAny(context: MappingContext): ResourceDraft[] {
  return hasResults(context) ? buildResults(context) : [];
}

/** The OBX buildResultsIfAny leaves: all of them without results, those outside the OBR groups with. */
export function buildObservationsBesideAnyResults(context: MappingContext): ResourceDraft[] {
  return hasResults(context) ? buildObservationsBesideResults(context) : buildObservations(context);
}

function hasResults(context: MappingContext): boolean {
  const names = new Set(context.message.segments.map((segment) => segment.name));
  return names.has('OBR') && names.has('OBX');
}

/**
 * ServiceRequest.supportingInfo of one order (orders.ts): references to the Observations of the OBX among the
 * order's segments (its ask-at-order-entry answers, as the IG's ORM_O01 and OML_O21 maps link them); undefined when
 * it has none, so that the stored ones stay. Only OBX that could be mapped are named.
 */
export function orderObservationReferences(orderSegments: readonly Hl7Segment[], context: MappingContext): Reference[] | undefined {
  if (!orderSegments.some((segment) => segment.name === 'OBX')) return undefined;
  let built: Map<Hl7Segment, ResourceDraft>;
  try {
    built = observationsOf(context, { besideResults: false, visit: true });
  } catch (error) {
    // The observations' own builder reports why they could not be built; the order is still the order.
    if (issueCodeOf(error) !== undefined) return undefined;
    throw error;
  }
  const references = orderSegments.flatMap((segment) => {
    const draft = segment.name === 'OBX' ? built.get(segment) : undefined;
    return draft === undefined ? [] : [{ reference: `Observation/${draft.id}` }];
  });
  return references.length > 0 ? references : undefined;
}

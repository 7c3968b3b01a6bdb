/**
 * Applying a draft to the stored resource: the one place where HL7 update semantics meet the store.
 *
 * Most elements follow the draft contract (types.ts): absent keeps, null removes, a value replaces. A few elements
 * hold history that no single message carries in full (the places an encounter has been, the classes it has had,
 * the series and instances of an imaging study that arrive one instance at a time), are fed by fields a message may
 * send one at a time (an encounter's start and end), or come from a source that may only fill gaps (a PACS's view
 * of the patient). For those a draft carries an element merge operation instead of a value, and ELEMENT_RULES below
 * says how each operation combines with what is stored. Every rule is a pure function of the stored resource and the operation, so replaying the same drafts in
 * the same order always gives the same resource.
 */

import { AnchorlineError } from '../errors/index.ts';

import type { ResourceDraft } from './types.ts';
// Not structuredClone: it would turn a decimal kept as a LosslessNumber (`5.40`) into a plain object.
import { cloneFhirJson } from './fhir-decimal.ts';

const DATA_ABSENT_REASON = 'http://hl7.org/fhir/StructureDefinition/data-absent-reason';

// ---------------------------------------------------------------------------------------------------------------
// Element merge operations (what a draft may carry instead of a value)

/**
 * The member that marks a draft element as an operation. FHIR JSON has no member names starting with '$', so a
 * value can never be mistaken for an operation, and the operation stays plain JSON (fixtures show it as it is).
 */
export const MERGE_OPERATION = '$merge';

export interface ElementMergeOperation {
  $merge: string;
  [argument: string]: unknown;
}

/** An Encounter.location entry as the mappers write it. */
export interface EncounterLocationEntry {
  location: { reference?: string; display?: string };
  /** planned | active | reserved | completed. Stored entries without a status count as current unless they have an end. */
  status?: string;
  period?: { start?: string; end?: string };
  /** The subject-locationClassification extension of a temporary location (temporaryLocationClassification). */
  extension?: Array<{ url: string; valueCodeableConcept?: { coding?: Array<{ system?: string; code?: string; display?: string }> } }>;
}

/**
 * The extension (FHIR extensions pack, context Encounter.location) that marks an entry as a place the patient is in
 * for a while beside the assigned one (dialysis, radiology): code `temporary` of
 * http://hl7.org/fhir/subject-locationClassification.
 */
export const LOCATION_CLASSIFICATION_EXTENSION = 'http://hl7.org/fhir/StructureDefinition/subject-locationClassification';
export function temporaryLocationClassification(): NonNullable<EncounterLocationEntry['extension']>[number] {
  return {
    url: LOCATION_CLASSIFICATION_EXTENSION,
    valueCodeableConcept: { coding: [{ system: 'http://hl7.org/fhir/subject-locationClassification', code: 'temporary', display: 'Temporary' }] },
  };
}

/**
 * The places beside the assigned location's history that an ADT event may carry (PV1-11, PV1-42, PV1-43), applied
 * after the event's own operation:
 * - temporary: where the patient is now for a while (an active entry with the temporary classification); the active
 *   temporary entries elsewhere are completed at `at`. Nothing changes when the patient is already there.
 *   backFromTemporary: the patient is back from every temporary place (completed at `at`).
 * - priorTemporary: where the patient was for a while: its active temporary entry is completed at `at`, or, when the
 *   history does not have it, it is added as completed.
 * - pending: the place held for the patient (status reserved): it replaces other reserved entries, and is left out
 *   when the patient is already assigned there. released: nothing is held any more.
 * The assigned history ignores these entries (an arrival does not leave a temporary place), except that a discharge
 * completes the temporary places and drops the reserved ones, and an actual arrival drops the reserved ones, as it
 * drops the planned ones.
 */
export interface EncounterSidePlaces {
  at?: string;
  temporary?: EncounterLocationEntry;
  backFromTemporary?: true;
  priorTemporary?: EncounterLocationEntry;
  pending?: EncounterLocationEntry;
  released?: true;
}

/**
 * Encounter.location operations, one per kind of ADT event:
 * - arrive: the patient is now at `entry` (status active, or planned for a preadmission). Current entries are
 *   completed with period.end = `at` and `entry` is appended; nothing changes when the current entry is already that
 *   place, so a resent message or an A08 repeating the location is a no-op. An active arrival drops earlier planned
 *   entries (the plan is overtaken); a planned arrival replaces other planned entries and leaves current ones alone.
 *   `prior` (PV1-6) seeds the history when nothing is stored, so a transfer seen before its admission still says
 *   where the patient came from.
 * - leave: the patient left (discharge): current entries are completed at `at`; `entry` (PV1-3, where the patient
 *   was discharged from) is appended as completed when the history does not already end there.
 * - cancel-arrive: the last arrival did not happen (A12): the current entry is removed and the previous one, when it
 *   is `entry` (PV1-3: where the patient was before the transfer), becomes active again with its end removed;
 *   otherwise `entry` is appended as active. A no-op when the patient is already at `entry`.
 * - cancel-leave: the discharge did not happen (A13): the last entry becomes active again with its end removed, or
 *   `entry` is appended as active when the history does not end there. A no-op while any entry is current.
 * - places: only the places beside the assigned one (EncounterSidePlaces), for events that do not move the patient
 *   (A09 departing to a temporary place, A15 pending transfer).
 * Each may carry `places`, applied after it.
 */
export type EncounterLocationOperation =
  | { $merge: 'arrive'; entry: EncounterLocationEntry; at?: string; prior?: EncounterLocationEntry; places?: EncounterSidePlaces }
  | { $merge: 'leave'; at?: string; entry?: EncounterLocationEntry; places?: EncounterSidePlaces }
  | { $merge: 'cancel-arrive'; entry: EncounterLocationEntry; places?: EncounterSidePlaces }
  | { $merge: 'cancel-leave'; entry?: EncounterLocationEntry; places?: EncounterSidePlaces }
  | { $merge: 'places'; places: EncounterSidePlaces };

/**
 * Members of an object element replaced one by one: each member of `set` replaces the stored member, each name in
 * `remove` deletes it, other stored members are kept. The element is removed when no member is left. For elements
 * whose members come from separate fields and separate events: Encounter.period (PV1-44 admit, PV1-45 discharge)
 * and Encounter.hospitalization (PV1-14 admit source, PV1-36 discharge disposition).
 */
export interface MembersOperation {
  $merge: 'members';
  set?: Record<string, unknown>;
  remove?: string[];
}

/**
 * Encounter.classHistory when the class changes (A06, A07): when the stored class differs from `class`, the stored
 * class's entry (created from the stored class and period.start when there is no history yet) is closed at `at` and
 * `class` is appended, open from `at`. Nothing changes when the stored class already is `class` (a resent message)
 * or when nothing is stored.
 */
export interface ClassChangeOperation {
  $merge: 'class-change';
  class: { system?: string; code?: string; display?: string };
  at: string;
}

/**
 * Identifiers added to a list (Patient.identifier from a source that is not the patient's master, such as a PACS):
 * each one whose system and value the stored list lacks is appended; the stored identifiers are kept as they are.
 */
export interface AddIdentifiersOperation {
  $merge: 'add';
  identifier: Array<{ system?: string; value?: string; [element: string]: unknown }>;
}

/**
 * A value that only fills a gap: `value` when nothing is stored, else the stored element unchanged (with its
 * primitive extension). For demographics from a secondary source (a PACS) that must not overwrite what the
 * patient's master system (the HIS) sent.
 */
export interface IfAbsentOperation {
  $merge: 'if-absent';
  value: unknown;
}

/** An ImagingStudy.series entry as the DICOM mapper writes it: one series, with the instances a message carries. */
export interface ImagingSeriesEntry {
  uid: string;
  number?: number;
  instance?: Array<{ uid: string; number?: number; [element: string]: unknown }>;
  [element: string]: unknown;
}

/**
 * ImagingStudy.series as instances of a study arrive one by one: each series of `series` is merged into the stored
 * series with its uid (its own elements replace the stored ones; its instances replace stored instances with the
 * same uid and are added otherwise), or added. Series are ordered by number then uid and instances likewise, so the
 * result does not depend on the order instances arrived in, and each series' numberOfInstances is recounted.
 */
export interface ImagingSeriesOperation {
  $merge: 'series';
  series: ImagingSeriesEntry[];
}

/**
 * The code system of HL7 table 0443 (provider role). An entry that has a coding of it in its role (participant.type,
 * performer.function, CareTeam participant.role) was stated by a ROL segment (RoleEntriesOperation).
 */
export const PROVIDER_ROLE_SYSTEM = 'http://terminology.hl7.org/CodeSystem/v2-0443';

/**
 * A list that two kinds of segment feed: fields of a segment that is sent whole each time (PV1-7/8/9/17 attending,
 * referring, consulting and admitting doctors; PD1-3/4 primary facility and provider; PR1-8/11/12 anesthesiologist,
 * surgeon and practitioner), and ROL segments, each of which states or deletes one role of one person (ROL-2 action
 * code). Neither replaces the other's entries:
 * - fields: the field entries as the segment now states them; they replace every stored field entry. clearFields (the
 *   fields sent as `""`) removes them. Neither: the stored field entries stay.
 * - set: role entries stated (ROL-2 AD add, CO correct, UP update, UC unchanged, LI link, or none): each replaces the
 *   stored role entry with its key, or is appended, so a ROL restated by every message is one entry.
 * - remove: role entries deleted (ROL-2 DE delete, UN unlink): the stored role entry with its key is removed.
 * An entry is a role entry, and has its key, by its element (ROLE_LISTS): a role coded in table 0443 and the person
 * (Encounter.participant, Procedure.performer, CareTeam.participant), or a PractitionerRole reference
 * (Patient.generalPractitioner). Field entries come first, then role entries in the order first stated.
 */
export interface RoleEntriesOperation {
  $merge: 'roles';
  fields?: unknown[];
  clearFields?: true;
  set?: unknown[];
  remove?: unknown[];
}

export function isElementMergeOperation(value: unknown): value is ElementMergeOperation {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && typeof (value as Record<string, unknown>)[MERGE_OPERATION] === 'string';
}

// ---------------------------------------------------------------------------------------------------------------
// Rules

/**
 * A rule: the element's new value from the stored element (undefined when absent), the operation, and the stored
 * resource as it was before this draft (undefined when new), for rules that read a sibling element. Returns
 * undefined to remove the element. Must not modify its inputs.
 */
type ElementRule = (stored: unknown, operation: ElementMergeOperation, resource: Readonly<Record<string, unknown>> | undefined) => unknown;

/** One Encounter.location operation by name. */
type LocationOperation<Name extends EncounterLocationOperation['$merge']> = Extract<EncounterLocationOperation, { $merge: Name }>;

// Rules receive operations the mappers built with the types above; the casts name which one each rule is for.
const LOCATION_HISTORY: ReadonlyMap<string, ElementRule> = new Map<string, ElementRule>([
  ['arrive', (stored, operation) => withPlaces(arrive(entriesOf(stored), operation as unknown as LocationOperation<'arrive'>), operation)],
  ['leave', (stored, operation) => withPlaces(leave(entriesOf(stored), operation as unknown as LocationOperation<'leave'>), operation)],
  ['cancel-arrive', (stored, operation) => withPlaces(cancelArrive(entriesOf(stored), operation as unknown as LocationOperation<'cancel-arrive'>), operation)],
  ['cancel-leave', (stored, operation) => withPlaces(cancelLeave(entriesOf(stored), operation as unknown as LocationOperation<'cancel-leave'>), operation)],
  ['places', (stored, operation) => withPlaces(entriesOf(stored), operation)],
]);

const OBJECT_MEMBERS: ReadonlyMap<string, ElementRule> = new Map<string, ElementRule>([
  ['members', (stored, operation) => members(stored, operation as unknown as MembersOperation)],
]);

const CLASS_HISTORY: ReadonlyMap<string, ElementRule> = new Map<string, ElementRule>([
  ['class-change', (stored, operation, resource) => classChange(stored, operation as unknown as ClassChangeOperation, resource)],
]);

const IDENTIFIER_ADDITIONS: ReadonlyMap<string, ElementRule> = new Map<string, ElementRule>([
  ['add', (stored, operation) => addIdentifiers(stored, operation as unknown as AddIdentifiersOperation)],
]);

const GAP_FILL: ReadonlyMap<string, ElementRule> = new Map<string, ElementRule>([
  // The stored element itself (not a copy) when there is one: mergeDraft then keeps it and its extension sibling.
  ['if-absent', (stored, operation) => (stored !== undefined ? stored : (operation as unknown as IfAbsentOperation).value)],
]);

const IMAGING_SERIES: ReadonlyMap<string, ElementRule> = new Map<string, ElementRule>([
  ['series', (stored, operation) => mergeSeries(stored, operation as unknown as ImagingSeriesOperation)],
]);

/** How one list tells role entries from field entries, and which role entry an entry restates (RoleEntriesOperation). */
interface RoleList {
  isRole: (entry: Record<string, unknown>) => boolean;
  key: (entry: Record<string, unknown>) => string;
}

type Loose = Record<string, unknown>;

/** The table 0443 code of a role concept (or a list of them), '' when it has none. */
function providerRoleCode(concepts: unknown): string {
  for (const concept of Array.isArray(concepts) ? concepts : [concepts]) {
    for (const coding of ((concept as Loose | undefined)?.['coding'] as Loose[] | undefined) ?? []) {
      if (coding['system'] === PROVIDER_ROLE_SYSTEM && typeof coding['code'] === 'string') return coding['code'];
    }
  }
  return '';
}

/** Who a reference names: its literal reference, else its display. */
function referenceKey(reference: unknown): string {
  const { reference: literal, display } = (reference as Loose | undefined) ?? {};
  return typeof literal === 'string' ? literal : `display:${typeof display === 'string' ? display : ''}`;
}

/** A list whose entries carry a role concept (`role`) and a person (`person`): role entries are those coded in table 0443. */
function rolesIn(role: string, person: string): RoleList {
  return {
    isRole: (entry) => providerRoleCode(entry[role]) !== '',
    key: (entry) => `${providerRoleCode(entry[role])}|${referenceKey(entry[person])}`,
  };
}

/** The lists that ROL segments and fields feed together, by element. */
export type RoleListElement = 'Encounter.participant' | 'Procedure.performer' | 'CareTeam.participant' | 'Patient.generalPractitioner';

const ROLE_LISTS: ReadonlyMap<RoleListElement, RoleList> = new Map<RoleListElement, RoleList>([
  ['Encounter.participant', rolesIn('type', 'individual')],
  ['Procedure.performer', rolesIn('function', 'actor')],
  ['CareTeam.participant', rolesIn('role', 'member')],
  // PD1 names a Practitioner or an Organization; a ROL's primary care provider is a PractitionerRole (its role, its
  // period), so its reference says where it came from.
  ['Patient.generalPractitioner', { isRole: (entry) => String(entry['reference'] ?? '').startsWith('PractitionerRole/'), key: referenceKey }],
]);

/**
 * The key of a role entry of `element`: the role and person a later ROL restates or deletes. The mappers dedupe one
 * message's ROL segments by it, so that they and the merge with the stored list agree on what is the same entry.
 */
export function roleEntryKey(element: RoleListElement, entry: Record<string, unknown>): string {
  return ROLE_LISTS.get(element)!.key(entry);
}

function roleEntries(list: RoleList): ReadonlyMap<string, ElementRule> {
  return new Map([['roles', (stored, operation) => mergeRoleEntries(stored, operation as unknown as RoleEntriesOperation, list)]]);
}

/** Resource type -> element -> the operations it accepts. An element not listed here accepts no operation. */
const ELEMENT_RULES: ReadonlyMap<string, ReadonlyMap<string, ReadonlyMap<string, ElementRule>>> = new Map([
  [
    'Encounter',
    new Map([
      ['location', LOCATION_HISTORY],
      ['period', OBJECT_MEMBERS],
      ['hospitalization', OBJECT_MEMBERS],
      ['classHistory', CLASS_HISTORY],
      ['participant', roleEntries(ROLE_LISTS.get('Encounter.participant')!)],
    ]),
  ],
  [
    'Patient',
    new Map([
      ['identifier', IDENTIFIER_ADDITIONS],
      ['name', GAP_FILL],
      ['gender', GAP_FILL],
      ['birthDate', GAP_FILL],
      ['generalPractitioner', roleEntries(ROLE_LISTS.get('Patient.generalPractitioner')!)],
    ]),
  ],
  ['ImagingStudy', new Map([['series', IMAGING_SERIES]])],
  ['Procedure', new Map([['performer', roleEntries(ROLE_LISTS.get('Procedure.performer')!)]])],
  ['CareTeam', new Map([['participant', roleEntries(ROLE_LISTS.get('CareTeam.participant')!)]])],
  // An account a message names without saying its state (an ADT's guarantors): active unless its state is known.
  ['Account', new Map([['status', GAP_FILL]])],
]);

/**
 * Elements FHIR R4 requires (min 1) that a draft may legitimately leave out (an A08 creating an Encounter it never
 * saw admitted) or remove (a `""` in PV1-2). They get a value that says "not known" rather than a guess: status
 * 'unknown', and for the Coding `class` the data-absent-reason extension.
 */
const REQUIRED_WHEN_MISSING: ReadonlyMap<string, Readonly<Record<string, unknown>>> = new Map([
  // An order first seen in a status change that does not say its status (ORC-1 SC without ORC-5).
  ['ServiceRequest', { status: 'unknown' }],
  ['MedicationRequest', { status: 'unknown' }],
  [
    'Encounter',
    {
      status: 'unknown',
      class: { extension: [{ url: DATA_ABSENT_REASON, valueCode: 'unknown' }] },
    },
  ],
]);

/**
 * Elements computed from others once a draft is applied, so that they always agree with what they summarise:
 * ImagingStudy.numberOfSeries, numberOfInstances and the study's modality list (each modality of its series, once,
 * in series order), from ImagingStudy.series.
 */
const DERIVED: ReadonlyMap<string, (resource: Record<string, unknown>) => void> = new Map([['ImagingStudy', deriveImagingStudyCounts]]);

/** Elements the draft cannot touch: identity is the draft's own, `meta` belongs to the store. */
const RESERVED = new Set(['resourceType', 'id', 'meta']);

/**
 * The stored resource (`current`, undefined when new) with `draft` applied: an undefined element keeps the stored
 * one, null removes it, an element merge operation is applied to the stored element by its rule (ELEMENT_RULES),
 * any other value replaces it. `meta` is carried over untouched. When an element is replaced, merged or removed,
 * its primitive extension sibling (`_birthDate` for `birthDate`) goes too unless the draft sends one: it described
 * the old value. Returns a new object; neither input is modified. An operation its element has no rule for is a
 * mapper bug and throws ANCHORLINE_ERR_MAPPING_FAILED.
 */
export function mergeDraft(current: Record<string, unknown> | undefined, draft: ResourceDraft): Record<string, unknown> {
  if (current !== undefined && (current['resourceType'] !== draft.resourceType || current['id'] !== draft.id)) {
    throw new AnchorlineError('ANCHORLINE_ERR_MAPPING_FAILED', 'draft resourceType/id does not match the stored resource');
  }
  const merged: Record<string, unknown> = { resourceType: draft.resourceType, id: draft.id };
  if (current !== undefined) {
    for (const [name, value] of Object.entries(current)) {
      if (name === 'resourceType' || name === 'id') continue;
      merged[name] = cloneFhirJson(value);
    }
  }
  for (const name of Object.keys(draft)) {
    const value = draft[name];
    if (RESERVED.has(name) || value === undefined) continue;
    if (isElementMergeOperation(value)) {
      const rule = ELEMENT_RULES.get(draft.resourceType)?.get(name)?.get(value.$merge);
      if (rule === undefined) {
        throw new AnchorlineError('ANCHORLINE_ERR_MAPPING_FAILED', `${draft.resourceType}.${name} has no '${value.$merge}' merge rule`);
      }
      const next = rule(current?.[name], value, current);
      // A rule that returns the stored element itself left it as it was, extension sibling included.
      if (current !== undefined && next !== undefined && next === current[name]) continue;
      if (current !== undefined) dropExtensionSibling(merged, name, draft);
      if (next !== undefined) merged[name] = cloneFhirJson(next);
      else if (current !== undefined) delete merged[name];
      continue;
    }
    if (current !== undefined) dropExtensionSibling(merged, name, draft);
    if (value !== null) merged[name] = cloneFhirJson(value);
    else if (current !== undefined) delete merged[name];
  }
  DERIVED.get(draft.resourceType)?.(merged);
  const required = REQUIRED_WHEN_MISSING.get(draft.resourceType);
  if (required !== undefined) {
    for (const [name, fallback] of Object.entries(required)) {
      if (merged[name] === undefined) merged[name] = cloneFhirJson(fallback);
    }
  }
  return merged;
}

/**
 * The stored primitive extension sibling of `name` (`_birthDate` for `birthDate`), which described the stored value,
 * unless the draft sends its own. Only a stored resource has one to drop, as it has elements that a null removes:
 * onto nothing, `merged` holds only what the draft itself has put in it, each name once. mergeDraft skips both deletes
 * there, as each would find nothing and cost every element of every new resource a lookup by a new string.
 */
function dropExtensionSibling(merged: Record<string, unknown>, name: string, draft: ResourceDraft): void {
  if (!name.startsWith('_') && !Object.hasOwn(draft, `_${name}`)) delete merged[`_${name}`];
}

// ---------------------------------------------------------------------------------------------------------------
// Encounter.location history

type Entry = Record<string, unknown> & EncounterLocationEntry;

/** A copy of the stored list (entries are copied too: rules edit them in place). */
function entriesOf(stored: unknown): Entry[] {
  return Array.isArray(stored) ? (cloneFhirJson(stored) as Entry[]) : [];
}

/** A place the patient is in for a while beside the assigned one (PV1-11, PV1-43): the temporary classification. */
function isTemporary(entry: Entry): boolean {
  return (entry.extension ?? []).some((extension) => extension.url === LOCATION_CLASSIFICATION_EXTENSION && (extension.valueCodeableConcept?.coding ?? []).some((coding) => coding.code === 'temporary'));
}

/** An entry of the assigned location's history: not a temporary place, nor the place held for the patient (PV1-42). */
function isAssigned(entry: Entry): boolean {
  return !isTemporary(entry) && entry.status !== 'reserved';
}

/** Where the patient is assigned now: active, or (as stored before statuses were written) no status and no end. */
function isCurrent(entry: Entry): boolean {
  return isAssigned(entry) && (entry.status === 'active' || (entry.status === undefined && entry.period?.end === undefined));
}

function isActiveTemporary(entry: Entry): boolean {
  return isTemporary(entry) && entry.status === 'active';
}

/** The last entry of the assigned history, or undefined. */
function lastAssigned(entries: Entry[]): Entry | undefined {
  const at = lastIndexWhere(entries, isAssigned);
  return at < 0 ? undefined : entries[at];
}

/** Same place: the same Location reference when both have one, else the same display. */
function samePlace(a: EncounterLocationEntry, b: EncounterLocationEntry): boolean {
  const [referenceA, referenceB] = [a.location?.reference, b.location?.reference];
  // Entries stored before the mappers made Locations have only the display (PL-1^PL-2^PL-3), which new entries'
  // display repeats: a message restating the place is no move.
  if (referenceA !== undefined && referenceB !== undefined) return referenceA === referenceB;
  return a.location?.display !== undefined && a.location.display === b.location?.display;
}

function complete(entry: Entry, at: string | undefined): Entry {
  entry.status = 'completed';
  if (at !== undefined && entry.period?.end === undefined) entry.period = { ...entry.period, end: at };
  return entry;
}

function reopen(entry: Entry): Entry {
  entry.status = 'active';
  if (entry.period !== undefined) {
    const { end: _end, ...rest } = entry.period;
    if (Object.keys(rest).length > 0) entry.period = rest;
    else delete entry.period;
  }
  return entry;
}

function lastIndexWhere(entries: Entry[], predicate: (entry: Entry) => boolean): number {
  for (let i = entries.length - 1; i >= 0; i--) if (predicate(entries[i]!)) return i;
  return -1;
}

function listOrUndefined(entries: Entry[]): Entry[] | undefined {
  return entries.length > 0 ? entries : undefined;
}

function arrive(entries: Entry[], operation: LocationOperation<'arrive'>): Entry[] | undefined {
  const { entry, at, prior } = operation;
  if (entry.status === 'planned') {
    const kept = entries.filter((stored) => stored.status !== 'planned' || samePlace(stored, entry));
    if (kept.some((stored) => stored.status === 'planned')) return kept;
    return [...kept, cloneFhirJson(entry) as Entry];
  }
  const current = lastIndexWhere(entries, isCurrent);
  if (current >= 0 && samePlace(entries[current]!, entry)) {
    // Still there; a stored display-only place gains the Location the message now refers to.
    const stored = entries[current]!;
    if (stored.location?.reference === undefined && entry.location.reference !== undefined) stored.location = cloneFhirJson(entry.location);
    return entries;
  }
  // An actual arrival overtakes what was planned or held.
  const history = entries.filter((stored) => stored.status !== 'planned' && stored.status !== 'reserved').map((stored) => (isCurrent(stored) ? complete(stored, at) : stored));
  if (!history.some(isAssigned) && prior !== undefined && !samePlace(prior, entry)) history.push(complete(cloneFhirJson(prior) as Entry, at));
  history.push(cloneFhirJson(entry) as Entry);
  return history;
}

function leave(entries: Entry[], operation: LocationOperation<'leave'>): Entry[] | undefined {
  const { entry, at } = operation;
  const history = entries.filter((stored) => stored.status !== 'planned' && stored.status !== 'reserved');
  const last = lastAssigned(history);
  const appendEntry = entry !== undefined && (last === undefined || !samePlace(last, entry));
  // A discharge ends the stay everywhere, temporary places included.
  for (const stored of history) if (isCurrent(stored) || isActiveTemporary(stored)) complete(stored, at);
  if (appendEntry) history.push(complete(cloneFhirJson(entry) as Entry, at));
  return listOrUndefined(history);
}

function cancelArrive(entries: Entry[], operation: LocationOperation<'cancel-arrive'>): Entry[] | undefined {
  const { entry } = operation;
  const current = lastIndexWhere(entries, isCurrent);
  // Not at any location: there is no arrival to take back (a cancel after a discharge is the sender's mistake).
  if (current < 0) return entries.some(isAssigned) ? entries : [...entries, reopen(cloneFhirJson(entry) as Entry)];
  if (samePlace(entries[current]!, entry)) return entries;
  entries.splice(current, 1);
  const last = lastAssigned(entries);
  if (last !== undefined && last.status === 'completed' && samePlace(last, entry)) reopen(last);
  else entries.push(reopen(cloneFhirJson(entry) as Entry));
  return entries;
}

function cancelLeave(entries: Entry[], operation: LocationOperation<'cancel-leave'>): Entry[] | undefined {
  const { entry } = operation;
  if (entries.some(isCurrent)) return entries;
  const last = lastAssigned(entries);
  if (last !== undefined && last.status === 'completed' && (entry === undefined || samePlace(last, entry))) reopen(last);
  else if (entry !== undefined) entries.push(reopen(cloneFhirJson(entry) as Entry));
  return listOrUndefined(entries);
}

/** The history after an operation (undefined: none left) with the operation's places beside it (EncounterSidePlaces). */
function withPlaces(entries: Entry[] | undefined, operation: ElementMergeOperation): Entry[] | undefined {
  const places = operation['places'] as EncounterSidePlaces | undefined;
  if (places === undefined) return entries;
  const { at, temporary, backFromTemporary, priorTemporary, pending, released } = places;
  let history = entries ?? [];
  if (priorTemporary !== undefined) {
    const active = history.find((stored) => isActiveTemporary(stored) && samePlace(stored, priorTemporary));
    if (active !== undefined) complete(active, at);
    else if (!history.some((stored) => isTemporary(stored) && samePlace(stored, priorTemporary))) history.push(complete(cloneFhirJson(priorTemporary) as Entry, at));
  }
  if (backFromTemporary === true) {
    for (const stored of history) if (isActiveTemporary(stored)) complete(stored, at);
  } else if (temporary !== undefined && !history.some((stored) => isActiveTemporary(stored) && samePlace(stored, temporary))) {
    for (const stored of history) if (isActiveTemporary(stored)) complete(stored, at);
    history.push(cloneFhirJson(temporary) as Entry);
  }
  if (released === true) {
    history = history.filter((stored) => stored.status !== 'reserved');
  } else if (pending !== undefined) {
    const current = history[lastIndexWhere(history, isCurrent)];
    // Already assigned there: nothing is held any more.
    const there = current !== undefined && samePlace(current, pending);
    history = history.filter((stored) => stored.status !== 'reserved' || (!there && samePlace(stored, pending)));
    if (!there && !history.some((stored) => stored.status === 'reserved')) history.push(cloneFhirJson(pending) as Entry);
  }
  return listOrUndefined(history);
}

// ---------------------------------------------------------------------------------------------------------------
// Object members

function members(stored: unknown, operation: MembersOperation): Record<string, unknown> | undefined {
  const result: Record<string, unknown> =
    typeof stored === 'object' && stored !== null && !Array.isArray(stored) ? cloneFhirJson(stored as Record<string, unknown>) : {};
  for (const [name, value] of Object.entries(operation.set ?? {})) if (value !== undefined) result[name] = cloneFhirJson(value);
  for (const name of operation.remove ?? []) delete result[name];
  return Object.keys(result).length > 0 ? result : undefined;
}

// ---------------------------------------------------------------------------------------------------------------
// Lists fed by fields and by ROL segments

function mergeRoleEntries(stored: unknown, operation: RoleEntriesOperation, list: RoleList): unknown {
  const entries = Array.isArray(stored) ? (stored as Loose[]) : [];
  const fields =
    operation.clearFields === true ? [] : operation.fields !== undefined ? (cloneFhirJson(operation.fields) as Loose[]) : entries.filter((entry) => !list.isRole(entry)).map((entry) => cloneFhirJson(entry));
  const removed = new Set((operation.remove ?? []).map((entry) => list.key(entry as Loose)));
  const roles = entries.filter((entry) => list.isRole(entry) && !removed.has(list.key(entry))).map((entry) => cloneFhirJson(entry));
  for (const entry of (operation.set ?? []) as Loose[]) {
    const at = roles.findIndex((known) => list.key(known) === list.key(entry));
    if (at >= 0) roles[at] = cloneFhirJson(entry);
    else roles.push(cloneFhirJson(entry));
  }
  const merged = [...fields, ...roles];
  // Nothing changed: the stored list itself, so that the element counts as untouched.
  if (stored !== undefined && JSON.stringify(merged) === JSON.stringify(stored)) return stored;
  return merged.length > 0 ? merged : undefined;
}

// ---------------------------------------------------------------------------------------------------------------
// Encounter.classHistory

interface ClassHistoryEntry {
  class: unknown;
  period: { start?: string; end?: string };
}

function sameCoding(a: unknown, b: { system?: string; code?: string }): boolean {
  const coding = a as { system?: unknown; code?: unknown };
  return coding.system === b.system && coding.code === b.code;
}

function classChange(stored: unknown, operation: ClassChangeOperation, resource: Readonly<Record<string, unknown>> | undefined): unknown {
  const previous = resource?.['class'] as Record<string, unknown> | undefined;
  // A class that was never known (absent, or the data-absent placeholder) has no history worth recording.
  if (previous === undefined || typeof previous['code'] !== 'string' || sameCoding(previous, operation.class)) return stored;
  const history: ClassHistoryEntry[] = Array.isArray(stored) ? (cloneFhirJson(stored) as ClassHistoryEntry[]) : [];
  if (history.length === 0) {
    const start = (resource?.['period'] as { start?: string } | undefined)?.start;
    history.push({ class: cloneFhirJson(previous), period: start === undefined ? {} : { start } });
  }
  for (const entry of history) if (entry.period.end === undefined) entry.period = { ...entry.period, end: operation.at };
  history.push({ class: cloneFhirJson(operation.class), period: { start: operation.at } });
  return history;
}

// ---------------------------------------------------------------------------------------------------------------
// Patient.identifier additions

function addIdentifiers(stored: unknown, operation: AddIdentifiersOperation): unknown {
  const list = Array.isArray(stored) ? (cloneFhirJson(stored) as Array<{ system?: unknown; value?: unknown }>) : [];
  const before = list.length;
  for (const identifier of operation.identifier) {
    if (!list.some((known) => known.system === identifier.system && known.value === identifier.value)) list.push(cloneFhirJson(identifier));
  }
  // Nothing new: the stored list itself, so that the element counts as untouched.
  if (list.length === before && stored !== undefined) return stored;
  return list.length > 0 ? list : undefined;
}

// ---------------------------------------------------------------------------------------------------------------
// ImagingStudy.series

type SeriesJson = Record<string, unknown> & { uid?: unknown; number?: unknown; instance?: unknown };

/** Number first (absent last), then uid: the order PACS viewers list series and instances in. */
function byNumberThenUid(a: { number?: unknown; uid?: unknown }, b: { number?: unknown; uid?: unknown }): number {
  const na = typeof a.number === 'number' ? a.number : Number.POSITIVE_INFINITY;
  const nb = typeof b.number === 'number' ? b.number : Number.POSITIVE_INFINITY;
  if (na !== nb) return na < nb ? -1 : 1;
  const ua = String(a.uid ?? '');
  const ub = String(b.uid ?? '');
  return ua < ub ? -1 : ua > ub ? 1 : 0;
}

function mergeSeries(stored: unknown, operation: ImagingSeriesOperation): SeriesJson[] | undefined {
  const result: SeriesJson[] = Array.isArray(stored) ? (cloneFhirJson(stored) as SeriesJson[]) : [];
  for (const incoming of operation.series) {
    let series = result.find((known) => known.uid === incoming.uid);
    if (series === undefined) {
      series = { uid: incoming.uid };
      result.push(series);
    }
    for (const [name, value] of Object.entries(incoming)) {
      if (name !== 'instance' && value !== undefined) series[name] = cloneFhirJson(value);
    }
    const instances = Array.isArray(series.instance) ? (series.instance as SeriesJson[]) : [];
    for (const instance of incoming.instance ?? []) {
      const at = instances.findIndex((known) => known.uid === instance.uid);
      if (at >= 0) instances[at] = cloneFhirJson(instance);
      else instances.push(cloneFhirJson(instance));
    }
    instances.sort(byNumberThenUid);
    series.instance = instances;
    series.numberOfInstances = instances.length;
    // FHIR R4 requires a series' modality; none of its instances so far gave one (no (0008,0060)).
    if (series['modality'] === undefined) series['modality'] = { extension: [{ url: DATA_ABSENT_REASON, valueCode: 'unknown' }] };
  }
  result.sort(byNumberThenUid);
  return result.length > 0 ? result : undefined;
}

function deriveImagingStudyCounts(resource: Record<string, unknown>): void {
  if (!Array.isArray(resource['series'])) return;
  const series = resource['series'] as SeriesJson[];
  resource['numberOfSeries'] = series.length;
  resource['numberOfInstances'] = series.reduce((total, entry) => total + (Array.isArray(entry.instance) ? entry.instance.length : 0), 0);
  const modalities: Array<{ system?: unknown; code?: unknown }> = [];
  for (const entry of series) {
    const modality = entry['modality'] as { system?: unknown; code?: unknown } | undefined;
    // A modality stated as not known (no code) says nothing about the study's modalities.
    if (modality?.code === undefined || modalities.some((known) => known.system === modality.system && known.code === modality.code)) continue;
    modalities.push(cloneFhirJson(modality));
  }
  if (modalities.length > 0) resource['modality'] = modalities;
}

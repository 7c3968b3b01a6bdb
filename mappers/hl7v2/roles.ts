/**
 * ROL (role) -> the people in a role of what the segment follows, after the HL7 v2-to-FHIR IG's message maps (ADT_A01
 * and the structures like it), which place a ROL by the segment it follows:
 * - after PID (and PD1): ROL-3 PP (primary care provider) -> Patient.generalPractitioner, a PractitionerRole (the
 *   ROL[GeneralPractitioner] map: ROL-4 its practitioner, ROL-3 its code through the IG's ConceptMap
 *   table-hl70443-to-v3-participationtype, ROL-14 its organization); every other role -> the patient's CareTeam (the
 *   ROL[CareTeam] map: ROL-3 participant.role, ROL-4 member, ROL-5/6 period).
 * - after PV1 (and PV2): Encounter.participant (the ROL[PractitionerRole] to Encounter map: ROL-3 type through the
 *   same ConceptMap, ROL-4 individual, ROL-5/6 period).
 * - after PR1 (the PROCEDURE group): that Procedure's performer, ROL-3 its function and ROL-4 its actor. The IG lists
 *   this ROL without a map; who took part in the procedure in a role is what Procedure.performer holds.
 * - after IN1, IN2 or IN3 (the INSURANCE group), or anywhere else: the IG has no map (R4 Coverage has no element for
 *   the people of a policy), and the segment is reported as not mapped (reportUnmappedRoles).
 *
 * Where the IG points at a PractitionerRole, Encounter.participant, Procedure.performer and the CareTeam refer to the
 * Practitioner of ROL-4 itself, as the PV1-7..17 and PR1-8..12 entries beside them do (directory.ts), so that one
 * clinician is one individual whichever segment names them. Patient.generalPractitioner keeps the IG's
 * PractitionerRole: PD1-4 already names the Practitioner there, and the role is what tells a ROL's entry from PD1's
 * (mappers/merge.ts RoleEntriesOperation). ROL-5/6 are left off that PractitionerRole: it is the practitioner's role
 * for all of their patients, while the dates are this patient's.
 *
 * A ROL states or deletes one role of each person in ROL-4, by ROL-2 action code (HL7 table 0287): AD add, CO
 * correct, UP update, UC unchanged and LI link state the entry as sent (an entry with the same role and person is
 * replaced, so a ROL restated by every A08 stays one entry); DE delete and UN unlink remove that entry; no action code
 * states it. Entries are merged with the stored list by the `roles` operation (mappers/merge.ts), so ROL entries and
 * the entries of PV1, PD1 and PR1 fields never replace each other. Only roles of table 0443 are mapped (the IG's
 * condition, ROL-3.3 HL70443; a ROL-3 sent without a coding system is read as table 0443, the field's table): a role
 * coded in another system is reported, as is a ROL that names a role but nobody.
 */
import { type Hl7Message, type Hl7Segment, fieldOf, segmentsNamed } from '../../formats/hl7v2/index.ts';
import { deterministicId } from '../ids.ts';
import { reportIssue } from '../issues.ts';
import { type RoleEntriesOperation, type RoleListElement, roleEntryKey } from '../merge.ts';
import type { ResourceDraft } from '../types.ts';

import { patientId, periodElement } from './adt-common.ts';
import { atPosition, withinSegment } from './clinical-common.ts';
import { type CodeableConcept, type Coding, type Reference, comp, hl7TableSystems, mappedValue, toCodeableConceptIn, withStandardCoding } from './datatypes.ts';
import { organizationReference, practitionerReference, practitionerRoleReference } from './directory.ts';
import { updateDraft } from './drafts.ts';
import type { MappingContext } from './context.ts';

// ---------------------------------------------------------------------------------------------------------------
// Where a ROL belongs

/** What a ROL is about, by the segment it follows. */
export type RoleOwner =
  | { kind: 'patient'; pid: Hl7Segment }
  | { kind: 'visit'; pv1: Hl7Segment }
  | { kind: 'procedure'; pr1: Hl7Segment }
  | { kind: 'insurance' }
  | { kind: 'none' };

/**
 * Segments that may stand between a group's first segment and its ROL without ending the group: PD1 and ARV after
 * PID, PV2 and ARV after PV1, IN2 and IN3 after IN1, other ROL and PRT segments, notes, and Z-segments, which senders
 * place after the segment they extend.
 */
const WITHIN_GROUP = new Set(['PD1', 'PV2', 'ARV', 'IN2', 'IN3', 'ROL', 'PRT', 'NTE']);

/** Each ROL of the message with what it is about. */
export function placedRoles(message: Hl7Message): Array<{ rol: Hl7Segment; owner: RoleOwner }> {
  const placed: Array<{ rol: Hl7Segment; owner: RoleOwner }> = [];
  let owner: RoleOwner = { kind: 'none' };
  for (const segment of message.segments) {
    const { name } = segment;
    if (name === 'ROL') placed.push({ rol: segment, owner });
    else if (name === 'PID') owner = { kind: 'patient', pid: segment };
    else if (name === 'PV1') owner = { kind: 'visit', pv1: segment };
    else if (name === 'PR1') owner = { kind: 'procedure', pr1: segment };
    else if (name === 'IN1') owner = { kind: 'insurance' };
    else if (!WITHIN_GROUP.has(name) && !name.startsWith('Z')) owner = { kind: 'none' };
  }
  return placed;
}

/** The ROL segments that follow `anchor` (a PID, PV1 or PR1) in its group. */
function rolesOf(message: Hl7Message, anchor: Hl7Segment): Hl7Segment[] {
  return placedRoles(message)
    .filter(({ owner }) => ('pid' in owner && owner.pid === anchor) || ('pv1' in owner && owner.pv1 === anchor) || ('pr1' in owner && owner.pr1 === anchor))
    .map(({ rol }) => rol);
}

// ---------------------------------------------------------------------------------------------------------------
// What one ROL says

/**
 * HL7 table 0443 -> the IG's ConceptMap table-hl70443-to-v3-participationtype: AD, AT, CP, RP to participation
 * types; PP and PI to SNOMED CT. The other roles the IG leaves unmatched and keep only their table 0443 coding.
 */
const V3_PARTICIPATION_TYPE = 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType';
const SNOMED = 'http://snomed.info/sct';
const STANDARD_ROLE: ReadonlyMap<string, Coding> = new Map([
  ['AD', { system: V3_PARTICIPATION_TYPE, code: 'ADM', display: 'admitter' }],
  ['AT', { system: V3_PARTICIPATION_TYPE, code: 'ATND', display: 'attender' }],
  ['CP', { system: V3_PARTICIPATION_TYPE, code: 'CON', display: 'consultant' }],
  ['RP', { system: V3_PARTICIPATION_TYPE, code: 'REF', display: 'referrer' }],
  ['PP', { system: SNOMED, code: '446050000', display: 'Primary care physician' }],
  ['PI', { system: SNOMED, code: '40570005', display: 'Interpreter' }],
]);

/** The primary care provider role of table 0443, which after PID is Patient.generalPractitioner. */
const PRIMARY_CARE_PROVIDER = 'PP';

/** HL7 table 0287 (problem/goal action code, ROL-2): what each does to the entry. */
const ACTIONS: ReadonlyMap<string, 'set' | 'remove'> = new Map([
  ['AD', 'set'],
  ['CO', 'set'],
  ['UP', 'set'],
  ['UC', 'set'],
  ['LI', 'set'],
  ['DE', 'remove'],
  ['UN', 'remove'],
]);

/** One ROL as read: what it does, the role, the people and when. */
interface RoleStatement {
  rol: Hl7Segment;
  action: 'set' | 'remove';
  role: CodeableConcept;
  persons: Reference[];
  period?: { start?: string; end?: string };
}

/**
 * The statements of `rols`, each ROL marked as read (context.mappedSegments). A ROL that names neither a role nor a
 * person says nothing and gives none; one whose role is not a table 0443 code, or that names a role but nobody, is
 * reported and gives none.
 */
function statementsOf(rols: readonly Hl7Segment[], context: MappingContext): RoleStatement[] {
  const statements: RoleStatement[] = [];
  for (const rol of rols) {
    context.mappedSegments.add(rol);
    const statement = withinSegment(rol, context.message, () => statementOf(rol, context));
    if (statement !== undefined) statements.push(statement);
  }
  return statements;
}

/** A ROL that names neither a role (ROL-3) nor a person (ROL-4: an id or a family name). */
function saysNothing(rol: Hl7Segment): boolean {
  return comp(fieldOf(rol, 3)[0], 1) === '' && fieldOf(rol, 4).every((rep) => comp(rep, 1) === '' && comp(rep, 2) === '');
}

function statementOf(rol: Hl7Segment, context: MappingContext): RoleStatement | undefined {
  const { options } = context;
  if (saysNothing(rol)) return undefined;
  const sent = fieldOf(rol, 3)[0];
  const sentCode = comp(sent, 1);
  const at = atPosition(undefined, rol, context.message);
  const systemName = comp(sent, 3).toUpperCase();
  if (sentCode === '' || (systemName !== '' && systemName !== 'HL70443')) {
    reportIssue({
      severity: 'information',
      code: 'ANCHORLINE_ISSUE_SEGMENT_NOT_MAPPED',
      location: `${at}-3`,
      detail: `${at}-3: the role is ${sentCode === '' ? 'empty' : 'not coded in HL7 table 0443 (provider role)'}; the ROL is kept in the raw message`,
      ...(sentCode === '' ? {} : { value: sentCode }),
    });
    return undefined;
  }
  const persons = fieldOf(rol, 4).flatMap((rep) => practitionerReference(rep, 'ROL-4', context) ?? []);
  if (persons.length === 0) {
    reportIssue({ severity: 'information', code: 'ANCHORLINE_ISSUE_SEGMENT_NOT_MAPPED', location: `${at}-4`, detail: `${at}-4: the ROL names a role but no person; kept in the raw message` });
    return undefined;
  }
  const code = mappedValue(options, 'HL70443', sentCode).toUpperCase();
  const role = withStandardCoding(toCodeableConceptIn(sent!, options, 'HL70443', hl7TableSystems('0443')), STANDARD_ROLE.get(code))!;
  const period = periodElement(fieldOf(rol, 5), fieldOf(rol, 6), ['ROL-5', 'ROL-6'], options.timeZone) ?? undefined;
  return { rol, action: actionOf(rol, at), role, persons, ...(period === undefined ? {} : { period }) };
}

function actionOf(rol: Hl7Segment, at: string): 'set' | 'remove' {
  const code = comp(fieldOf(rol, 2)[0], 1).toUpperCase();
  if (code === '') return 'set';
  const action = ACTIONS.get(code);
  if (action !== undefined) return action;
  reportIssue({
    severity: 'warning',
    code: 'ANCHORLINE_ISSUE_CODE_NOT_IN_TABLE',
    location: `${at}-2`,
    detail: `${at}-2: the action code is not an HL7 table 0287 code; the role is read as stated (added or updated)`,
    value: code,
  });
  return 'set';
}

/** One entry a ROL states or deletes, with its key in its list (mappers/merge.ts roleEntryKey: the role and the person). */
interface RoleEntry {
  action: 'set' | 'remove';
  entry: Record<string, unknown>;
  key: string;
}

function roleEntry(element: RoleListElement, action: 'set' | 'remove', entry: Record<string, unknown>): RoleEntry {
  return { action, entry, key: roleEntryKey(element, entry) };
}

/**
 * A `roles` operation from entries in message order: a later ROL about the same role of the same person overrides
 * an earlier one, so that a message that deletes and adds one role leaves what it said last. Undefined with no
 * entries and no `fields`.
 */
function rolesOperation(fields: unknown[] | null | undefined, entries: readonly RoleEntry[]): RoleEntriesOperation | undefined {
  const last = new Map<string, RoleEntry>();
  for (const each of entries) {
    last.delete(each.key);
    last.set(each.key, each);
  }
  const set = [...last.values()].filter(({ action }) => action === 'set').map(({ entry }) => entry);
  const remove = [...last.values()].filter(({ action }) => action === 'remove').map(({ entry }) => entry);
  if (fields === undefined && set.length === 0 && remove.length === 0) return undefined;
  return {
    $merge: 'roles',
    ...(fields === null ? { clearFields: true as const } : fields === undefined ? {} : { fields }),
    ...(set.length > 0 ? { set } : {}),
    ...(remove.length > 0 ? { remove } : {}),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Targets

/**
 * Encounter.participant: the PV1 participants (`fields`: undefined not sent, null removed) with the ROL segments
 * that follow `pv1`.
 */
export function encounterParticipants(pv1: Hl7Segment, fields: unknown[] | null | undefined, context: MappingContext): RoleEntriesOperation | undefined {
  const entries = statementsOf(rolesOf(context.message, pv1), context).flatMap(({ action, role, persons, period }) =>
    persons.map((individual) => roleEntry('Encounter.participant', action, { type: [role], individual, ...(period === undefined ? {} : { period }) })),
  );
  return rolesOperation(fields, entries);
}

/** Procedure.performer: the PR1-8/11/12 performers (`fields`) with the ROL segments of `pr1`'s PROCEDURE group. */
export function procedurePerformers(pr1: Hl7Segment, fields: unknown[] | null | undefined, context: MappingContext): RoleEntriesOperation | undefined {
  const entries = statementsOf(rolesOf(context.message, pr1), context).flatMap(({ action, role, persons }) =>
    persons.map((actor) => roleEntry('Procedure.performer', action, { function: role, actor })),
  );
  return rolesOperation(fields, entries);
}

/**
 * Patient.generalPractitioner: PD1-3/4 (`fields`) with the primary care providers of the ROL segments that follow
 * `pid`, each a PractitionerRole. A primary care provider sent by name only has no Practitioner to hold the role and
 * is reported.
 */
export function generalPractitioners(pid: Hl7Segment, fields: unknown[] | null | undefined, context: MappingContext): RoleEntriesOperation | undefined {
  const rols = rolesOf(context.message, pid).filter(isPrimaryCareRole);
  const entries: RoleEntry[] = statementsOf(rols, context).flatMap(({ rol, action, persons }) =>
    withinSegment(rol, context.message, () => {
      const organization = fieldOf(rol, 14)[0];
      const onBehalfOf = organization === undefined ? undefined : organizationReference(organization, 'ROL-14', context);
      return persons.flatMap((person) => {
        const role = practitionerRoleReference(person, onBehalfOf, STANDARD_ROLE.get(PRIMARY_CARE_PROVIDER)!, context);
        if (role === undefined) {
          const at = atPosition(undefined, rol, context.message);
          reportIssue({ severity: 'information', code: 'ANCHORLINE_ISSUE_SEGMENT_NOT_MAPPED', location: `${at}-4`, detail: `${at}-4: the primary care provider has no id (XCN-1), so no Practitioner to hold the role; kept in the raw message` });
          return [];
        }
        return [roleEntry('Patient.generalPractitioner', action, { ...role })];
      });
    }),
  );
  return rolesOperation(fields, entries);
}

/** Whether a ROL after a PID names the primary care provider (Patient.generalPractitioner); every other role is the CareTeam's. */
function isPrimaryCareRole(rol: Hl7Segment): boolean {
  return comp(fieldOf(rol, 3)[0], 1).toUpperCase() === PRIMARY_CARE_PROVIDER;
}

/**
 * The patient's CareTeam: the roles other than primary care provider of the ROL segments that follow the PID, one
 * participant per role and person. One CareTeam per patient and sender's facility-independent: keyed by the patient,
 * so that every message's ROL segments update the same team. Undefined when the PID has no such ROL.
 */
export function buildCareTeam(context: MappingContext): ResourceDraft | undefined {
  const pid = segmentsNamed(context.message, 'PID')[0];
  if (pid === undefined) return undefined;
  const rols = rolesOf(context.message, pid).filter((rol) => !isPrimaryCareRole(rol));
  if (rols.length === 0) return undefined;
  const entries = statementsOf(rols, context).flatMap(({ action, role, persons, period }) =>
    persons.map((member) => roleEntry('CareTeam.participant', action, { role: [role], member, ...(period === undefined ? {} : { period }) })),
  );
  const participant = rolesOperation(undefined, entries);
  if (participant === undefined) return undefined;
  const patient = patientId(context);
  return updateDraft('CareTeam', deterministicId('CareTeam', patient, 'ROL'), {
    status: 'active',
    subject: { reference: `Patient/${patient}` },
    participant,
  });
}

// ---------------------------------------------------------------------------------------------------------------
// What stays unmapped

/** Why a ROL no builder read is kept in the raw message, by what it follows. */
function unmappedReason(owner: RoleOwner, context: MappingContext): string {
  const type = `${context.messageType}^${context.triggerEvent}`;
  switch (owner.kind) {
    case 'insurance':
      return 'a role in an insurance (IN1) group: the v2-to-FHIR IG has no map for it, and R4 Coverage has no element for the people of a policy';
    case 'none':
      return 'it follows no PID, PV1 or PR1, so what it is a role in is not known';
    case 'patient':
      return `${type} does not map the patient's roles`;
    case 'visit':
      return `${type} maps no visit for it (no Encounter: the event describes none, or PV1 has no visit number)`;
    case 'procedure':
      return `${type} maps no Procedure for it`;
  }
}

/**
 * Reports each ROL that names a role or a person and that no builder read (a ROL of an insurance, one after a PV1 of
 * a message that maps no visit), located as `ROL[2]`.
 */
export function reportUnmappedRoles(context: MappingContext): void {
  for (const { rol, owner } of placedRoles(context.message)) {
    if (context.mappedSegments.has(rol)) continue;
    if (saysNothing(rol)) continue;
    const at = atPosition(undefined, rol, context.message);
    reportIssue({ severity: 'information', code: 'ANCHORLINE_ISSUE_SEGMENT_NOT_MAPPED', location: at, detail: `${at} is kept in the raw message: ${unmappedReason(owner, context)}` });
  }
}


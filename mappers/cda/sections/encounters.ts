/**
 * Encounters section (2.16.840.1.113883.10.20.22.2.22, .22.1): each Encounter Activity (4.49) as an Encounter,
 * following C-CDA on FHIR (CF-encounters):
 *
 * - class: the v3 ActCode among the code and its translations, else one mapped from a CPT evaluation and management
 *   code (99202-99215 ambulatory, 99221-99239 inpatient, 99281-99288 emergency, ...); type: the other codes;
 * - status: statusCode (ConceptMap CF-EncounterStatus), else from effectiveTime (an end or a single time: finished);
 * - period from effectiveTime; participants from the performers (sdtc:functionCode as their type); the Service
 *   Delivery Locations (participant LOC) as Location resources with the participant's time; discharge disposition;
 * - indications (RSON observations) as reasonCode; Encounter Diagnosis acts (4.80) as Conditions of category
 *   encounter-diagnosis, listed in diagnosis.
 *
 * Taken over from @medplum/ccda, which loses the locations, files the encounter's code (often CPT) as its class,
 * defaults a missing status to "unknown" without reading effectiveTime, and makes every indication an admission
 * diagnosis Condition while reading no Encounter Diagnosis act; correcting its Encounter afterwards would need the
 * participants carried to resources.ts.
 */

import {
  asNodes,
  attr,
  concept,
  earliestAuthorTime,
  entryStatements,
  first,
  firstAuthor,
  hasTemplate,
  identifiers,
  isNegated,
  moodOf,
  Narrative,
  narrativeExtension,
  notesOf,
  reasonCodesOf,
  relatedStatements,
  resourceId,
  SectionResources,
  statusCodeOf,
  type CodeableConcept,
  type FhirResource,
  type Node,
  type Reference,
} from './cda-read.ts';
import { actor, location } from './participants.ts';
import type { SectionContext, SectionConverter, SectionOutput } from '../section-types.ts';

const ACT_CODE_OID = '2.16.840.1.113883.5.4';
const ACT_CODE = 'http://terminology.hl7.org/CodeSystem/v3-ActCode';
const CPT_OID = '2.16.840.1.113883.6.12';
const ENCOUNTER_DIAGNOSIS = '2.16.840.1.113883.10.20.22.4.80';
const PROBLEM_STATUS = '2.16.840.1.113883.10.20.22.4.6';
const PARTICIPATION_TYPE = 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType';
const CONDITION_CATEGORY = 'http://terminology.hl7.org/CodeSystem/condition-category';
const CONDITION_CLINICAL = 'http://terminology.hl7.org/CodeSystem/condition-clinical';
const CONDITION_VER_STATUS = 'http://terminology.hl7.org/CodeSystem/condition-ver-status';

/** ActEncounterCode: the codes Encounter.class takes. */
const CLASS_DISPLAY: Readonly<Record<string, string>> = {
  AMB: 'ambulatory', EMER: 'emergency', FLD: 'field', HH: 'home health', IMP: 'inpatient encounter', ACUTE: 'inpatient acute',
  NONAC: 'inpatient non-acute', OBSENC: 'observation encounter', PRENC: 'pre-admission', SS: 'short stay', VR: 'virtual',
};

/** CPT evaluation and management code ranges -> class (C-CDA on FHIR names 99211-99215, 99221-99223, 99281-99285). */
const CPT_CLASSES: ReadonlyArray<readonly [number, number, string]> = [
  [99202, 99215, 'AMB'], [99241, 99245, 'AMB'], [99381, 99429, 'AMB'],
  [99221, 99239, 'IMP'], [99251, 99255, 'IMP'],
  [99281, 99288, 'EMER'],
  [99304, 99318, 'NONAC'],
  [99341, 99350, 'HH'],
  [99421, 99423, 'VR'], [99441, 99443, 'VR'],
];

/** ActStatus -> Encounter.status (ConceptMap CF-EncounterStatus, and the ActStatus codes it leaves out). */
const ENCOUNTER_STATUS: Readonly<Record<string, string>> = {
  active: 'in-progress', completed: 'finished', aborted: 'cancelled', cancelled: 'cancelled', nullified: 'entered-in-error',
  new: 'planned', held: 'planned', suspended: 'onleave',
};

/** Problem Status observation values (SNOMED CT) -> Condition.clinicalStatus (ConceptMap CF-ProblemStatus). */
const PROBLEM_STATUS_VALUES: Readonly<Record<string, string>> = {
  '55561003': 'active', '73425007': 'inactive', '413322009': 'resolved', '246455001': 'recurrence', '263855007': 'relapse', '277022003': 'remission',
};

export const encountersSection: SectionConverter = {
  name: 'encounters',
  roots: ['2.16.840.1.113883.10.20.22.2.22', '2.16.840.1.113883.10.20.22.2.22.1', '1.3.6.1.4.1.19376.1.5.3.1.1.5.3.3'],
  loincCodes: ['46240-8'],
  convert: convertEncounters,
};

function convertEncounters(section: Node, context: SectionContext): SectionOutput {
  const out = new SectionResources();
  const narrative = new Narrative(section.text);
  for (const { kind, node, at } of entryStatements(section, context)) {
    if (kind !== 'encounter') continue;
    const mood = moodOf(node);
    if (mood !== 'EVN' && mood !== 'INT' && mood !== 'APT' && mood !== 'ARQ') {
      context.issue('warning', 'entries-not-converted', `an encounter with moodCode ${mood} was not converted`, at);
      continue;
    }
    out.entry(encounter(node, context, out, narrative, at));
    out.count();
  }
  return out.output();
}

function encounter(node: Node, context: SectionContext, out: SectionResources, narrative: Narrative, at: string): FhirResource {
  const id = resourceId('Encounter', node, context, at, 'encounter');
  const code = first(node.code);
  const { encounterClass, type } = classAndType(code, narrative);
  const span = first(node.effectiveTime);
  const period = span === undefined ? undefined : attr(span, 'value') !== undefined ? startOnly(context.dateTime(span)) : context.period(span);

  const participants: Array<Record<string, unknown>> = [];
  let serviceProvider: Reference | undefined;
  for (const performer of asNodes(node.performer)) {
    const who = actor(first(performer.assignedEntity), context, out);
    if (who === undefined) continue;
    // An organization performing the encounter is its service provider; participants are people.
    if (who.reference.startsWith('Organization/')) {
      serviceProvider ??= { reference: who.reference };
      continue;
    }
    const functionCode = concept(performer['sdtc:functionCode'], narrative);
    const typeCode = attr(performer, 'typeCode') ?? 'PRF';
    participants.push({
      type: [functionCode ?? { coding: [{ system: PARTICIPATION_TYPE, code: typeCode, display: PARTICIPATION_DISPLAY[typeCode] ?? 'performer' }] }],
      period: context.period(first(performer.time)),
      individual: { reference: who.reference },
    });
  }
  const locations = asNodes(node.participant)
    .filter((participant) => attr(participant, 'typeCode') === 'LOC')
    .map((participant) => {
      const place = location(first(participant.participantRole), context, out);
      return place === undefined ? undefined : { location: { reference: place.reference, ...(place.display ? { display: place.display } : {}) }, period: context.period(first(participant.time)) };
    })
    .filter((entry) => entry !== undefined);

  const diagnoses: Array<Record<string, unknown>> = [];
  relatedStatements(node)
    .filter(({ kind, node: related }) => kind === 'act' && (hasTemplate(related, ENCOUNTER_DIAGNOSIS) || attr(first(related.code), 'code') === '29308-4'))
    .forEach(({ node: act }, a) => {
      relatedStatements(act)
        .filter(({ kind, node: problem }) => kind === 'observation' && !hasTemplate(problem, PROBLEM_STATUS))
        .forEach(({ node: problem }, p) => {
          const condition = diagnosisCondition(problem, act, id, context, out, narrative, `${at}/entryRelationship[${a + 1}]/act/entryRelationship[${p + 1}]/observation`);
          if (condition === undefined) return;
          diagnoses.push({ condition: out.refer(condition), rank: diagnoses.length + 1 });
        });
    });
  const disposition = concept(node['sdtc:dischargeDispositionCode'], narrative);
  const status = ENCOUNTER_STATUS[statusCodeOf(node) ?? ''] ?? statusFromTime(span);

  return {
    resourceType: 'Encounter',
    id,
    extension: narrativeExtension(node),
    identifier: identifiers(node, context),
    status: moodOf(node) === 'EVN' ? status : 'planned',
    class: encounterClass ?? { extension: [{ url: 'http://hl7.org/fhir/StructureDefinition/data-absent-reason', valueCode: 'unknown' }] },
    type: type === undefined ? undefined : [type],
    subject: { reference: context.patientReference },
    participant: participants.length > 0 ? participants : undefined,
    period,
    reasonCode: reasonCodesOf(node, narrative),
    diagnosis: diagnoses.length > 0 ? diagnoses : undefined,
    hospitalization: disposition === undefined ? undefined : { dischargeDisposition: disposition },
    location: locations.length > 0 ? locations : undefined,
    serviceProvider,
  };
}

const PARTICIPATION_DISPLAY: Readonly<Record<string, string>> = { PRF: 'performer', PPRF: 'primary performer', SPRF: 'secondary performer' };

function startOnly(start: string | undefined): { start: string } | undefined {
  return start === undefined ? undefined : { start };
}

/** CF-encounters: a single time or an end is a finished encounter; a start alone says too little (unknown). */
function statusFromTime(span: Node | undefined): string {
  if (span === undefined) return 'unknown';
  if (attr(span, 'value') !== undefined || attr(first(span.high), 'value') !== undefined) return 'finished';
  return 'unknown';
}

/** The class (v3 ActCode in the code or a translation, else from a CPT E/M code) and the type (the other codes). */
function classAndType(code: Node | undefined, narrative: Narrative): { encounterClass?: Record<string, string>; type?: CodeableConcept } {
  if (code === undefined) return {};
  let classCode: string | undefined;
  for (const part of [code, ...asNodes(code.translation)]) {
    const value = attr(part, 'code');
    if (attr(part, 'codeSystem') === ACT_CODE_OID && value !== undefined && CLASS_DISPLAY[value] !== undefined) {
      classCode = value;
      break;
    }
  }
  if (classCode === undefined) {
    for (const part of [code, ...asNodes(code.translation)]) {
      const value = Number(attr(part, 'code'));
      if (attr(part, 'codeSystem') !== CPT_OID || !Number.isInteger(value)) continue;
      classCode = CPT_CLASSES.find(([low, high]) => value >= low && value <= high)?.[2];
      if (classCode !== undefined) break;
    }
  }
  const full = concept(code, narrative);
  const others = full?.coding?.filter((coding) => coding.system !== ACT_CODE && coding.system !== `urn:oid:${ACT_CODE_OID}`);
  const type = full === undefined ? undefined
    : others !== undefined && others.length > 0 ? { ...full, coding: others }
    : full.coding === undefined ? full
    : undefined;
  return {
    ...(classCode !== undefined ? { encounterClass: { system: ACT_CODE, code: classCode, display: CLASS_DISPLAY[classCode]! } } : {}),
    ...(type !== undefined ? { type } : {}),
  };
}

/**
 * A problem observation of an Encounter Diagnosis act as a Condition of category encounter-diagnosis (mapped as C-CDA
 * on FHIR maps problems): the value is the code, effectiveTime low/high onset and abatement, the Problem Status
 * observation the clinical status (an abated problem is resolved when no status is sent), negationInd refuted.
 */
function diagnosisCondition(problem: Node, act: Node, encounterId: string, context: SectionContext, out: SectionResources, narrative: Narrative, at: string): FhirResource | undefined {
  const negated = isNegated(problem) || isNegated(act);
  const code = concept(problem.value, narrative) ?? (narrative.textOf(problem.text) === undefined ? undefined : { text: narrative.textOf(problem.text)! });
  if (code === undefined && !negated) {
    context.issue('information', 'value-not-converted', 'an encounter diagnosis with neither a coded value nor text was left out', at);
    return undefined;
  }
  const time = first(problem.effectiveTime);
  const onset = context.dateTime(first(time?.low)) ?? (attr(time, 'value') !== undefined ? context.dateTime(time) : undefined);
  const abatement = context.dateTime(first(time?.high));
  const statusValue = relatedStatements(problem)
    .filter(({ kind, node }) => kind === 'observation' && hasTemplate(node, PROBLEM_STATUS))
    .map(({ node }) => PROBLEM_STATUS_VALUES[attr(first(node.value), 'code') ?? ''])
    .find((status) => status !== undefined);
  const clinical = statusValue ?? (abatement !== undefined ? 'resolved' : undefined);
  const author = firstAuthor(problem) ?? firstAuthor(act);
  const recorder = author === undefined ? undefined : actor(author, context, out);
  return {
    resourceType: 'Condition',
    id: resourceId('Condition', problem, context, encounterId, at),
    extension: narrativeExtension(problem),
    identifier: identifiers(problem, context),
    clinicalStatus: clinical === undefined ? undefined : { coding: [{ system: CONDITION_CLINICAL, code: clinical }] },
    verificationStatus: negated ? { coding: [{ system: CONDITION_VER_STATUS, code: 'refuted', display: 'Refuted' }] } : undefined,
    category: [{ coding: [{ system: CONDITION_CATEGORY, code: 'encounter-diagnosis', display: 'Encounter Diagnosis' }] }],
    code: code ?? concept(problem.code, narrative),
    subject: { reference: context.patientReference },
    onsetDateTime: onset,
    abatementDateTime: abatement,
    recordedDate: earliestAuthorTime(problem, context) ?? earliestAuthorTime(act, context),
    recorder: recorder === undefined || recorder.reference.startsWith('Organization/') ? undefined : { reference: recorder.reference },
    note: notesOf(problem, narrative),
  };
}

/**
 * The planned entries of a Plan of Treatment or an Assessment and Plan section that @medplum/ccda gets wrong or
 * drops; it reads the others (encounters, acts, medication activities, observations, goals):
 * - a Planned Procedure (2.16.840.1.113883.10.20.22.4.41, a procedure of a requesting mood) it makes a Procedure,
 *   a record of one done, and a Planned Observation (4.44, an observation of a requesting mood: a test to be done)
 *   a Goal; C-CDA on FHIR maps both to a ServiceRequest, as here (referral.ts serviceRequest: status, intent from
 *   the mood, code, occurrence, priority, body site, author, performer, indications, comments);
 * - a Planned Act (4.39) or another act of a requesting mood it makes a CarePlan "completed" whatever its status;
 *   C-CDA on FHIR maps it to a ServiceRequest too (a Patient Referral Act with the referral category, as in a
 *   Reason for Referral section), and an Instruction (4.20) is a CarePlan as in an Instructions section
 *   (instructions.ts: its status, and its words from the narrative, which the converter leaves out);
 * - a Handoff Communication (4.141, a hand-over done) it makes a CarePlan; here it is the Communication it records;
 * - a Planned Supply (2.16.840.1.113883.10.20.22.4.43), a medication or a device the plan says the patient is to be
 *   given, it makes nothing of.
 *
 * Planned supplies:
 * C-CDA on FHIR has no page for the template; the mapping follows its medication page for the supply order of a
 * Medication Activity (quantity, repeatNumber as fills, effectiveTime as the validity period) and the participations
 * page for a product instance (a Device):
 * - a product that is Medication Information (4.23), or a drug coded in RxNorm, is a MedicationRequest;
 * - a Product Instance participant (4.37), or another manufactured product, is a DeviceRequest of that Device;
 * - a supply without a product whose code names what is supplied is a DeviceRequest of that code;
 * - a supply that names nothing is reported: a request needs what it requests.
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
  REQUEST_STATUS_OF_ACT,
  resourceId,
  SectionResources,
  statusCodeOf,
  timeChoice,
  type FhirResource,
  type Node,
} from './cda-read.ts';
import { PROCEDURE_STATUS, devicesOf, productDevice } from './medical-equipment.ts';
import { actor } from './participants.ts';
import { instruction } from './instructions.ts';
import { PATIENT_REFERRAL, serviceRequest } from './referral.ts';
import { dispenseRequestOfSupply, INSTRUCTION, medicationOf, REQUEST_INTENTS, REQUEST_STATUS } from './substance-administration.ts';
import { ENTRY_REFERENCE } from '../normalize.ts';
import { sectionKindNamed } from '../sections.ts';
import type { SectionContext, SectionConverter, SectionOutput } from '../section-types.ts';

/** Handoff Communication Participants: the care of the patient handed from its author to its recipients. */
const HANDOFF = '2.16.840.1.113883.10.20.22.4.141';
const MEDICATION_INFORMATION = ['2.16.840.1.113883.10.20.22.4.23', '2.16.840.1.113883.10.20.22.4.54'];
const RXNORM = '2.16.840.1.113883.6.88';

/** Plan of Treatment (R2.1 and R1.1 Plan of Care), IHE Care Plan, Assessment and Plan, as sections.ts knows them. */
const PLAN = sectionKindNamed('plan of treatment');

export const plannedEntriesSection: SectionConverter = {
  name: 'planned procedures and supplies',
  roots: PLAN.roots,
  loincCodes: PLAN.loincCodes,
  claims: (entry) =>
    Object.entries(entry).some(([kind, value]) => !kind.startsWith('@_') && asNodes(value).some((statement) => planEntry(kind, statement) !== undefined)),
  convert: convertPlannedEntries,
};

/**
 * What this converter makes of a statement of a plan section, or undefined for one it leaves to @medplum/ccda (a
 * procedure done, an act done, an encounter, a medication activity, a goal). The one test of which entries are
 * claimed and what each becomes.
 */
function planEntry(kind: string, statement: Node): 'handoff' | 'instruction' | 'request' | 'supply' | undefined {
  switch (kind) {
    case 'supply':
      return 'supply';
    case 'procedure':
    case 'observation':
      return isPlanned(statement) ? 'request' : undefined;
    case 'act':
      if (hasTemplate(statement, HANDOFF)) return 'handoff';
      if (!isPlannedAct(statement)) return undefined;
      return hasTemplate(statement, INSTRUCTION) ? 'instruction' : 'request';
    default:
      return undefined;
  }
}

/**
 * A statement of a mood other than an event's (EVN) or a goal's (GOL, which @medplum/ccda makes a Goal): intended,
 * requested, proposed, promised, appointed.
 */
function isPlanned(statement: Node): boolean {
  const mood = moodOf(statement);
  return mood !== 'EVN' && mood !== 'GOL';
}

/**
 * A planned act (Planned Act 4.39, a Patient Referral Act 4.140, a Nutrition Recommendation 4.130, an Instruction
 * 4.20: anything of a requesting mood) but an Entry Reference, which is no act of its own.
 */
function isPlannedAct(act: Node): boolean {
  return isPlanned(act) && !hasTemplate(act, ENTRY_REFERENCE);
}

function convertPlannedEntries(section: Node, context: SectionContext): SectionOutput {
  const out = new SectionResources();
  const narrative = new Narrative(section.text);
  for (const { kind, node, at } of entryStatements(section, context)) {
    let resource: FhirResource | undefined;
    switch (planEntry(kind, node)) {
      case 'handoff':
        resource = handoff(node, context, out, narrative, at);
        break;
      case 'instruction':
        // An instruction is a CarePlan, as in an Instructions section: its words, and the status it has.
        resource = instruction(node, context, narrative, at);
        break;
      case 'request': {
        const category = kind === 'act' && attr(node, 'classCode') === 'PCPR' ? PATIENT_REFERRAL : undefined;
        resource = serviceRequest(node, context, narrative, out, at, { purpose: `planned-${kind}`, ...(category ? { category } : {}) });
        break;
      }
      case 'supply':
        resource = plannedSupply(node, context, out, narrative, at);
        break;
      default:
        // The section's other entries are @medplum/ccda's: claims left them in the section.
        continue;
    }
    if (resource === undefined) continue;
    out.entry(resource);
    out.count();
  }
  return out.output();
}

function plannedSupply(supply: Node, context: SectionContext, out: SectionResources, narrative: Narrative, at: string): FhirResource | undefined {
  const mood = moodOf(supply);
  const intent = REQUEST_INTENTS[mood];
  if (intent === undefined) {
    context.issue('warning', 'entries-not-converted', `a supply with moodCode ${mood} in a plan was not converted (a planned supply is an intent, request or promise)`, at);
    return undefined;
  }
  const author = firstAuthor(supply);
  const requester = author === undefined ? undefined : actor(author, context, out);
  const common = {
    extension: narrativeExtension(supply),
    identifier: identifiers(supply, context),
    intent,
    subject: { reference: context.patientReference },
    authoredOn: earliestAuthorTime(supply, context),
    reasonCode: reasonCodesOf(supply, narrative),
    note: notesOf(supply, narrative),
  };
  const status = statusCodeOf(supply) ?? '';
  const product = first(first(supply.product)?.manufacturedProduct);
  if (product !== undefined && isMedication(product)) {
    return {
      resourceType: 'MedicationRequest',
      id: resourceId('MedicationRequest', supply, context, at, 'planned-supply'),
      ...common,
      status: REQUEST_STATUS[status] ?? 'unknown',
      doNotPerform: isNegated(supply) ? true : undefined,
      // medicationOf reads a substanceAdministration's consumable; a supply's product is the same element by another name.
      ...medicationOf({ consumable: supply.product }, context, out, narrative),
      // The requester of a MedicationRequest may be an organization as well as a person.
      requester,
      dispenseRequest: dispenseRequestOfSupply(supply, context),
    };
  }
  const device = devicesOf(supply, context, out, narrative)[0] ?? productDevice(supply, context, out, narrative);
  // Without a product, the supply's own code (often just its originalText: "CPAP") names what is to be supplied.
  const named = device === undefined ? concept(supply.code, narrative) : undefined;
  if (device === undefined && named === undefined) {
    context.issue('warning', 'entries-not-converted', 'a planned supply naming no product (no medication, no device, no code) was not converted: a request needs what it requests', at);
    return undefined;
  }
  return {
    resourceType: 'DeviceRequest',
    id: resourceId('DeviceRequest', supply, context, at, 'planned-supply'),
    ...common,
    status: REQUEST_STATUS_OF_ACT[status] ?? 'unknown',
    ...(device !== undefined ? { codeReference: { reference: device.reference } } : { codeCodeableConcept: named }),
    ...timeChoice('occurrence', first(supply.effectiveTime), context),
    requester,
  };
}

/**
 * A Handoff Communication (4.141: care of the patient handed over, from its author to its IRCP participants) as the
 * Communication it records: the act's code as category, its time as `sent`, its author the sender, each recipient
 * a Practitioner or PractitionerRole (a participantRole's playingEntity read as its person).
 */
function handoff(act: Node, context: SectionContext, out: SectionResources, narrative: Narrative, at: string): FhirResource {
  const author = firstAuthor(act);
  const recipients = asNodes(act.participant)
    .filter((participant) => attr(participant, 'typeCode') === 'IRCP')
    .map((participant) => first(participant.participantRole))
    .map((role) => (role === undefined ? undefined : actor({ ...role, assignedPerson: role.playingEntity }, context, out)))
    .filter((reference) => reference !== undefined)
    .map((reference) => ({ reference: reference.reference }));
  const code = concept(act.code, narrative);
  return {
    resourceType: 'Communication',
    id: resourceId('Communication', act, context, at, 'handoff'),
    extension: narrativeExtension(act),
    identifier: identifiers(act, context),
    status: PROCEDURE_STATUS[statusCodeOf(act) ?? ''] ?? 'unknown',
    category: code === undefined ? undefined : [code],
    subject: { reference: context.patientReference },
    sent: context.dateTime(first(act.effectiveTime)),
    sender: author === undefined ? undefined : actor(author, context, out),
    recipient: recipients.length > 0 ? recipients : undefined,
    note: notesOf(act, narrative),
  };
}

/** Whether a supply's product is a medication: Medication Information, or a material coded in RxNorm. */
function isMedication(product: Node): boolean {
  if (hasTemplate(product, MEDICATION_INFORMATION)) return true;
  const code = first(first(product.manufacturedMaterial)?.code);
  return attr(code, 'codeSystem') === RXNORM || asNodes(code?.translation).some((translation) => attr(translation, 'codeSystem') === RXNORM);
}

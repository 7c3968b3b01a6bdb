/**
 * Medical equipment section (2.16.840.1.113883.10.20.22.2.23): the patient's devices, implanted or not.
 *
 * C-CDA on FHIR has no page for this section; the mapping follows its participations page (a participant device is
 * a Device) and procedures page, and US Core's implantable device: every Product Instance (participantRole
 * 2.16.840.1.113883.10.20.22.4.37) is a Device, its FDA UDI (id root 2.16.840.1.113883.3.3719) the udiCarrier, read
 * into the device identifier, lot, serial number and dates when it is a GS1 string; its playingDevice code the type.
 * A Non-Medicinal Supply Activity (4.50: equipment supplied to the patient) is a DeviceUseStatement of that Device;
 * a Procedure Activity Procedure (4.14: a device placed in the patient) a Procedure with the Device as its focal
 * device. A Medical Equipment Organizer (4.135) groups such entries and is read through.
 *
 * A Device is keyed by its UDI when it has one (the same implant in another document is the same resource), else by
 * what the document says of it: sample documents give one product instance id to different devices.
 */

import {
  asNodes,
  attr,
  componentStatements,
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
  plainText,
  reasonCodesOf,
  resourceId,
  SectionResources,
  statusCodeOf,
  texts,
  timeChoice,
  type FhirResource,
  type Node,
  type Reference,
} from './cda-read.ts';
import { actor, location } from './participants.ts';
import type { SectionContext, SectionConverter, SectionOutput } from '../section-types.ts';

const PRODUCT_INSTANCE = '2.16.840.1.113883.10.20.22.4.37';
const EQUIPMENT_ORGANIZER = '2.16.840.1.113883.10.20.22.4.135';
const NON_MEDICINAL_SUPPLY = '2.16.840.1.113883.10.20.22.4.50';
const FDA_UDI = '2.16.840.1.113883.3.3719';

const USE_STATUS: Readonly<Record<string, string>> = {
  active: 'active', completed: 'completed', aborted: 'stopped', cancelled: 'stopped', suspended: 'on-hold', held: 'on-hold', new: 'intended',
  nullified: 'entered-in-error',
};
/** ActStatus -> Procedure.status (ConceptMap CF-ProcedureStatus), and any other event status (Communication.status). */
export const PROCEDURE_STATUS: Readonly<Record<string, string>> = {
  completed: 'completed', active: 'in-progress', aborted: 'stopped', cancelled: 'not-done', new: 'preparation', held: 'on-hold',
  suspended: 'on-hold', nullified: 'entered-in-error',
};

export const medicalEquipmentSection: SectionConverter = {
  name: 'medical equipment',
  roots: ['2.16.840.1.113883.10.20.22.2.23', '1.3.6.1.4.1.19376.1.5.3.1.1.5.3.5'],
  loincCodes: ['46264-8'],
  convert: convertEquipment,
};

function convertEquipment(section: Node, context: SectionContext): SectionOutput {
  const out = new SectionResources();
  const narrative = new Narrative(section.text);
  // Sample documents give one id to several supplies: the second is the statement at its place, not the first again.
  const seen = new Set<string>();
  for (const { kind, node, at } of entryStatements(section, context)) {
    if (kind === 'organizer' || hasTemplate(node, EQUIPMENT_ORGANIZER)) {
      let any = false;
      for (const inner of componentStatements(node, at)) {
        if (equipmentStatement(inner.kind, inner.node, context, out, narrative, seen, inner.at)) any = true;
      }
      if (any) out.count();
    } else if (equipmentStatement(kind, node, context, out, narrative, seen, at)) {
      out.count();
    }
  }
  return out.output();
}

function equipmentStatement(sentKind: string, node: Node, context: SectionContext, out: SectionResources, narrative: Narrative, seen: Set<string>, at: string): boolean {
  // Some senders write the Non-Medicinal Supply Activity as an act (classCode ACT) with its template: it is read as
  // the supply its template says it is.
  const kind = sentKind === 'act' && hasTemplate(node, NON_MEDICINAL_SUPPLY) ? 'supply' : sentKind;
  if (kind !== 'supply' && kind !== 'procedure') return false;
  if (moodOf(node) !== 'EVN') {
    context.issue('warning', 'entries-not-converted', `a planned ${kind} (moodCode ${moodOf(node)}) of medical equipment was not converted`, at);
    return false;
  }
  const resource = kind === 'supply' ? deviceUse(node, context, out, narrative, seen, at) : procedure(node, context, out, narrative, at);
  if (resource === undefined) return false;
  out.entry(resource);
  return true;
}

/** A Non-Medicinal Supply Activity as a DeviceUseStatement of its product. */
function deviceUse(supply: Node, context: SectionContext, out: SectionResources, narrative: Narrative, seen: Set<string>, at: string): FhirResource | undefined {
  if (isNegated(supply)) {
    context.issue('information', 'entries-not-converted', 'a supply recorded as not done was not converted (FHIR has no statement of a device not used)', at);
    return undefined;
  }
  const device = devicesOf(supply, context, out, narrative)[0] ?? productDevice(supply, context, out, narrative);
  if (device === undefined) {
    context.issue('warning', 'entries-not-converted', 'a supply naming no device was not converted (a device use statement needs its device)', at);
    return undefined;
  }
  const own = asNodes(supply.id).find((id) => attr(id, 'root') !== undefined && attr(id, 'nullFlavor') === undefined);
  const key = own === undefined ? undefined : `${attr(own, 'root')}|${attr(own, 'extension') ?? ''}`;
  const id = key !== undefined && !seen.has(key)
    ? context.derivedId('DeviceUseStatement', supply, at, 'device-use')
    : context.derivedId('DeviceUseStatement', undefined, at, 'device-use');
  if (key !== undefined) seen.add(key);
  const timing = timeChoice('timing', first(supply.effectiveTime), context);
  const author = firstAuthor(supply);
  const source = author === undefined ? undefined : actor(author, context, out);
  return {
    resourceType: 'DeviceUseStatement',
    id,
    extension: narrativeExtension(supply),
    identifier: identifiers(supply, context),
    status: USE_STATUS[statusCodeOf(supply) ?? ''] ?? 'completed',
    subject: { reference: context.patientReference },
    ...timing,
    recordedOn: earliestAuthorTime(supply, context),
    // DeviceUseStatement.source takes a person, not an organization.
    source: source === undefined || source.reference.startsWith('Organization/') ? undefined : { reference: source.reference },
    device: { reference: device.reference },
    reasonCode: reasonCodesOf(supply, narrative),
    note: notesOf(supply, narrative),
  };
}

/**
 * A Procedure Activity Procedure (CF-procedures) with the devices it places as focal devices. Negated ("no
 * implanted devices"), the device it names is no device of the patient: its type is the procedure's usedCode.
 */
function procedure(node: Node, context: SectionContext, out: SectionResources, narrative: Narrative, at: string): FhirResource {
  const negated = isNegated(node);
  const devices = negated ? [] : devicesOf(node, context, out, narrative);
  const usedCode = negated
    ? productInstances(node).map((role) => concept(first(role.playingDevice)?.code, narrative)).filter((code) => code !== undefined)
    : [];
  const performed = timeChoice('performed', first(node.effectiveTime), context);
  const performers = asNodes(node.performer)
    .map((performer) => actor(first(performer.assignedEntity), context, out))
    .filter((reference): reference is Reference => reference !== undefined)
    .map((reference) => ({ actor: { reference: reference.reference } }));
  const locations = asNodes(node.participant)
    .filter((participant) => attr(participant, 'typeCode') === 'LOC')
    .map((participant) => location(first(participant.participantRole), context, out))
    .filter((reference): reference is Reference => reference !== undefined);
  const author = firstAuthor(node);
  const recorder = author === undefined ? undefined : actor(author, context, out);
  const target = concept(node.targetSiteCode, narrative);
  return {
    resourceType: 'Procedure',
    id: resourceId('Procedure', node, context, at, 'procedure'),
    extension: narrativeExtension(node),
    identifier: identifiers(node, context),
    status: negated ? 'not-done' : (PROCEDURE_STATUS[statusCodeOf(node) ?? ''] ?? 'completed'),
    code: concept(node.code, narrative),
    subject: { reference: context.patientReference },
    ...performed,
    recorder: recorder === undefined || recorder.reference.startsWith('Organization/') ? undefined : { reference: recorder.reference },
    performer: performers.length > 0 ? performers : undefined,
    location: locations[0] === undefined ? undefined : { reference: locations[0].reference },
    reasonCode: reasonCodesOf(node, narrative),
    bodySite: target === undefined ? undefined : [target],
    note: notesOf(node, narrative),
    focalDevice: devices.length > 0 ? devices.map((device) => ({ manipulated: { reference: device.reference } })) : undefined,
    usedCode: usedCode.length > 0 ? usedCode : undefined,
  };
}

function productInstances(statement: Node): Node[] {
  return asNodes(statement.participant)
    .filter((participant) => ['DEV', 'PRD'].includes(attr(participant, 'typeCode') ?? ''))
    .map((participant) => first(participant.participantRole))
    .filter((role): role is Node => role !== undefined && (hasTemplate(role, PRODUCT_INSTANCE) || role.playingDevice !== undefined));
}

/** The Devices of a statement's Product Instance participants. */
export function devicesOf(statement: Node, context: SectionContext, out: SectionResources, narrative: Narrative): Reference[] {
  return productInstances(statement)
    .map((role) => device(role, context, out, narrative))
    .filter((reference): reference is Reference => reference !== undefined);
}

/** A supply's product (manufacturedProduct) as a Device, for a supply that names its equipment that way. */
export function productDevice(supply: Node, context: SectionContext, out: SectionResources, narrative: Narrative): Reference | undefined {
  const product = first(first(supply.product)?.manufacturedProduct);
  const material = first(product?.manufacturedMaterial);
  const type = concept(material?.code, narrative) ?? (texts(material?.name)[0] === undefined ? undefined : { text: texts(material?.name)[0]! });
  if (type === undefined) return undefined;
  const body = { type, patient: { reference: context.patientReference } };
  return out.refer({ resourceType: 'Device', id: context.derivedId('Device', undefined, 'device', JSON.stringify(body)), ...body }, type.text);
}

function device(role: Node, context: SectionContext, out: SectionResources, narrative: Narrative): Reference | undefined {
  if (attr(role, 'nullFlavor') !== undefined) return undefined;
  const playing = first(role.playingDevice);
  const type = concept(playing?.code, narrative);
  const udiId = asNodes(role.id).find((id) => attr(id, 'root') === FDA_UDI && attr(id, 'extension') !== undefined && attr(id, 'nullFlavor') === undefined);
  const udi = udiId === undefined ? undefined : udiCarrier(attr(udiId, 'extension')!);
  const identifier = identifiers({ id: asNodes(role.id).filter((id) => id !== udiId) }, context);
  if (type === undefined && udi === undefined && identifier === undefined) return undefined;
  const manufacturer = plainText(first(role.scopingEntity)?.desc);
  const modelNumber = plainText(first(playing?.manufacturerModelName));
  const body = {
    identifier,
    udiCarrier: udi === undefined ? undefined : [udi.carrier],
    manufacturer,
    ...udi?.production,
    modelNumber,
    type,
    patient: { reference: context.patientReference },
  };
  const id = udiId !== undefined
    ? context.derivedId('Device', { id: [udiId] }, 'device', 'device')
    : context.derivedId('Device', undefined, 'device', JSON.stringify([identifier ?? null, type ?? null, manufacturer ?? null, modelNumber ?? null]));
  return out.refer({ resourceType: 'Device', id, ...body }, type?.text);
}

/**
 * A UDI as FHIR's udiCarrier: the human-readable form as sent, and, for a GS1 string ("(01)…(17)…(10)…(21)…"), the
 * device identifier (AI 01) and the production identifiers the Device has elements for: lot (10), serial (21),
 * expiry (17) and manufacture (11) dates. HIBCC ('+') and ICCBBA ('=') strings are kept whole; a bare number is
 * a device identifier alone.
 */
export function udiCarrier(udi: string): { carrier: Record<string, string>; production: Record<string, string> } {
  const jurisdiction = 'http://hl7.org/fhir/NamingSystem/fda-udi';
  if (udi.startsWith('(')) {
    const parts = new Map<string, string>();
    for (const match of udi.matchAll(/\((\d{2,4})\)([^(]*)/g)) parts.set(match[1]!, match[2]!.trim());
    const production: Record<string, string> = {};
    const lot = parts.get('10');
    const serial = parts.get('21');
    const expiry = gs1Date(parts.get('17'));
    const made = gs1Date(parts.get('11'));
    if (lot) production.lotNumber = lot;
    if (serial) production.serialNumber = serial;
    if (expiry) production.expirationDate = expiry;
    if (made) production.manufactureDate = made;
    const deviceIdentifier = parts.get('01');
    return {
      carrier: { ...(deviceIdentifier ? { deviceIdentifier } : {}), issuer: 'http://hl7.org/fhir/NamingSystem/gs1-di', jurisdiction, carrierHRF: udi },
      production,
    };
  }
  if (udi.startsWith('+')) return { carrier: { issuer: 'http://hl7.org/fhir/NamingSystem/hibcc-dI', jurisdiction, carrierHRF: udi }, production: {} };
  if (udi.startsWith('=')) return { carrier: { issuer: 'http://hl7.org/fhir/NamingSystem/iccbba-other-di', jurisdiction, carrierHRF: udi }, production: {} };
  if (/^\d{8,14}$/.test(udi)) return { carrier: { deviceIdentifier: udi, jurisdiction }, production: {} };
  return { carrier: { jurisdiction, carrierHRF: udi }, production: {} };
}

/**
 * A GS1 date (YYMMDD; day 00 is the month) as a FHIR date. GS1 places the century by the current year; a conversion
 * reads no clock, so years 00-49 are 20xx and 50-99 19xx (right for devices made from 1950 to 2049).
 */
function gs1Date(value: string | undefined): string | undefined {
  const match = value === undefined ? null : /^(\d{2})(\d{2})(\d{2})$/.exec(value);
  if (match === null) return undefined;
  const [, yy, mm, dd] = match as unknown as [string, string, string, string];
  const month = Number(mm);
  if (month < 1 || month > 12) return undefined;
  const year = Number(yy) < 50 ? `20${yy}` : `19${yy}`;
  if (dd === '00') return `${year}-${mm}`;
  const day = Number(dd);
  if (day > new Date(Date.UTC(Number(year), month, 0)).getUTCDate()) return undefined;
  return `${year}-${mm}-${dd}`;
}

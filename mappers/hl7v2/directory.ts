/**
 * The people, organizations and places a message names, as resources: Practitioner from XCN (and CNN), Organization
 * from HD (an assigning authority, MSH-4 sending facility) and XON (a performing laboratory, an insurer), Location
 * from PL with the places it lies in, and PractitionerRole where the IG gives a role. After the HL7 v2-to-FHIR IG
 * datatype maps XCN[Practitioner], HD[Organization], XON[Organization], PL[Location] and HD[Location].
 *
 * Each function adds the resource's update draft to the message's directory (context.directory; directory-drafts.ts)
 * and returns the literal reference (`Practitioner/<id>`) the referring resource carries, with a display so that the
 * reference reads without being resolved. Update drafts, because messages describe these resources piecemeal: an
 * XCN with only an id keeps the name another message sent, and one that sends a new name replaces it.
 *
 * Ids (mappers/ids.ts deterministicId) come from what names the thing in every message, so that one practitioner sent
 * in a thousand messages is one resource, found by its identifier:
 * - Practitioner: ('Practitioner', system, XCN-1), where system is the identifier system of XCN-9, else of the
 *   message's fallback authority (MSH-4, MSH-3, the config's default, the bound source: adt-common.ts
 *   sendingFacility), exactly as the Practitioner's identifier carries it: `Practitioner?identifier=system|id`.
 * - Organization with an id (XON-10 or XON-3, IN1-3): ('Organization', system, id), likewise. An assigning authority
 *   or a sending facility (HD): ('Organization', the system of the identifiers it assigns), so that every identifier
 *   with one authority names one assigner. An organization sent by name only: ('Organization', 'name', the sender's
 *   system, the name in upper case with its spaces collapsed).
 * - Location: ('Location', place key, level, name, level, name...), the place key being the system of PL-4 facility,
 *   else of the message's fallback authority, and the levels those of the PL hierarchy down to the place itself:
 *   a bed is (key, 'poc', W71, 'room', 0712, 'bed', B). Ward, room and bed codes are the sender's own, so they are
 *   only unique under the facility that assigns them.
 * - PractitionerRole: ('PractitionerRole', practitioner reference, organization reference, role code).
 *
 * A person sent by name only (an XCN or CNN without its id) stays a display-only reference and makes no
 * Practitioner: a name does not identify a clinician. Two clinicians of one hospital with one name (common with
 * Korean names: a few family names and popular given names) would become one resource and each be credited with the
 * other's encounters and results, and one clinician written two ways would become two; neither can be undone once
 * stored, while a display-only reference loses nothing the message said. An organization sent by name only does get
 * a resource keyed by its name within its sender: the name is what senders use to tell laboratories and payers apart
 * (IN1-4 and OBX-23 often come without an id), and one sender does not give two organizations one name.
 */
import { type Hl7Repetition, fieldOf } from '../../formats/hl7v2/index.ts';
import { deterministicId } from '../ids.ts';

import { sendingFacility } from './adt-common.ts';
import {
  type Address,
  type AssigningAuthority,
  type CodeableConcept,
  type Coding,
  type ContactPoint,
  type Identifier,
  type Reference,
  V2_0203_SYSTEM,
  authorityFromComponent,
  authorityFromField,
  comp,
  identifierSystem,
  isEmptyAuthority,
  toHumanName,
  toLocationDisplay,
  toPersonDisplay,
  v2TableSystem,
} from './datatypes.ts';
import { updateDraft } from './drafts.ts';
import type { MappingContext } from './context.ts';

/** An identifier with the organization that assigned it (Identifier.assigner). */
export type AssignedIdentifier = Identifier & { system: string; value: string; assigner?: Reference };

/** The system of identifiers whose universal id is itself a URI (an OID or UUID as a URN): HD[Organization]. */
const URI_SYSTEM = 'urn:ietf:rfc:3986';

// ---------------------------------------------------------------------------------------------------------------
// Identifiers and their assigners

/**
 * An id with its assigning authority (XCN-9, XON-6, CX-4; `ownAuthority` empty when not sent) as an identifier: the
 * authority's system, else the message's fallback authority's, as every identifier without one gets; the assigner
 * is the authority's Organization, or the sending facility's when the id took MSH-4.
 */
export function assignedIdentifier(
  id: string,
  ownAuthority: AssigningAuthority,
  location: string,
  context: MappingContext,
  typeCode = '',
): AssignedIdentifier {
  const sent = !isEmptyAuthority(ownAuthority);
  const authority = sent ? ownAuthority : sendingFacility(context);
  // Never undefined: a non-empty authority always has a system, and sendingFacility always names one.
  const system = identifierSystem(authority, location, context.options)!;
  const assigner = sent ? authorityOrganizationReference(ownAuthority, location, context) : sendingOrganizationReference(context);
  return {
    ...(typeCode === '' ? {} : { type: { coding: [{ system: V2_0203_SYSTEM, code: typeCode }] } }),
    system,
    value: id,
    ...(assigner === undefined ? {} : { assigner }),
  };
}

/**
 * An assigning authority (HD) as an Organization, after HD[Organization]: HD-1 namespace as one identifier's value,
 * HD-2 universal id as another (an ISO OID or a UUID as its URN in system urn:ietf:rfc:3986; any other type with its
 * table 0301 code as the identifier type). Undefined for an empty authority.
 */
export function authorityOrganizationReference(authority: AssigningAuthority, location: string, context: MappingContext): Reference | undefined {
  if (isEmptyAuthority(authority)) return undefined;
  const system = identifierSystem(authority, location, context.options)!;
  const id = deterministicId('Organization', system);
  const reference = `Organization/${id}`;
  const display = authority.namespace || authority.universalId;
  const { namespace, universalId } = authority;
  const type = authority.universalIdType.toUpperCase();
  // identifierSystem has checked the universal id against its type: it is the system itself when it is a URN or URI.
  const universalIsUri = universalId !== '' && (system === `urn:oid:${universalId}` || (type === 'UUID' && system === `urn:uuid:${universalId.toLowerCase()}`) || (type === 'URI' && system === universalId));
  const sent: Identifier[] = [];
  if (namespace !== '') sent.push({ value: namespace });
  if (universalIsUri) sent.push({ system: URI_SYSTEM, value: system });
  else if (universalId !== '') sent.push({ ...(type === '' ? {} : { type: { coding: [{ system: v2TableSystem('0301'), code: type }] } }), value: universalId });
  // One authority is often named in several ways in one message (MSH-4 with its namespace and OID, CX-4 with the OID
  // alone): the Organization keeps every identifier any of them gives, the namespace first.
  const known = (context.directory.get(reference)?.['identifier'] ?? []) as Identifier[];
  const added = sent.filter((identifier) => !known.some((other) => other.system === identifier.system && other.value === identifier.value));
  if (known.length > 0 && added.length === 0) return { reference, display };
  const identifier = [...known, ...added].sort((a, b) => Number(a.system !== undefined) - Number(b.system !== undefined));
  context.directory.add(updateDraft('Organization', id, { identifier }));
  return { reference, display };
}

/**
 * MSH-4 sending facility as an Organization (HD[Organization]); undefined when MSH-4 is empty. Every message that
 * names one has it (registry.ts): who sent the message (Provenance), and the assigner of the identifiers that took
 * MSH-4 for want of their own authority.
 */
export function sendingOrganizationReference(context: MappingContext): Reference | undefined {
  return authorityOrganizationReference(authorityFromField(fieldOf(context.msh, 4)[0]), 'MSH-4', context);
}

// ---------------------------------------------------------------------------------------------------------------
// XCN / CNN -> Practitioner

/**
 * XCN -> a reference to the Practitioner it names (XCN[Practitioner]): XCN-1 with XCN-9 (else the message's fallback
 * authority) and XCN-13 type as its identifier, XCN-2..7, 10, 19, 20, 21 as its name; the reference's display is the
 * name as written (XCN-18 F: family name first). Without XCN-1, a display-only reference (see the file comment);
 * undefined when the repetition names nobody.
 */
export function practitionerReference(repetition: Hl7Repetition, location: string, context: MappingContext): Reference | undefined {
  const id = comp(repetition, 1);
  const display = toPersonDisplay(repetition);
  if (id === '') return display === undefined ? undefined : { display };
  const identifier = assignedIdentifier(id, authorityFromComponent(repetition, 9), location, context, comp(repetition, 13));
  const name = toHumanName(xpnOfXcn(repetition), location, context.options.timeZone);
  const practitionerId = deterministicId('Practitioner', identifier.system, identifier.value);
  const reference = context.directory.add(updateDraft('Practitioner', practitionerId, { identifier: [identifier], name: name === undefined ? undefined : [name] }));
  return display === undefined ? { reference } : { reference, display };
}

/**
 * XCN's name components laid out as XPN's, for toHumanName: XCN-2 family (FN), 3 given, 4 further given, 5 suffix,
 * 6 prefix, 7 degree, 10 name type, 19/20 effective/expiration, 21 professional suffix are XPN-1..7, 12, 13, 14.
 * XCN-18 name assembly order shapes the reference's display only: the IG puts it in the humanname-assembly-order
 * extension, whose codes (name-assembly-order: NL1-NL4, Dutch partner-name orders) are not table 0444's F and G.
 */
function xpnOfXcn(xcn: Hl7Repetition): Hl7Repetition {
  const component = (n: number): string[] => xcn[n - 1] ?? [''];
  return [component(2), component(3), component(4), component(5), component(6), component(7), component(10), [''], [''], [''], [''], component(19), component(20), component(21)];
}

/**
 * CNN (a person inside one component of NDL: OBR-32 principal result interpreter, OBR-34 technician) as its
 * subcomponents 1 id, 2 family, 3 given, 4 second given, 5 suffix, 6 prefix, 7 degree, 9-11 assigning authority ->
 * a reference to the Practitioner, as practitionerReference reads an XCN.
 */
export function cnnPractitionerReference(repetition: Hl7Repetition, component: number, location: string, context: MappingContext): Reference | undefined {
  const sub = (n: number): string => comp(repetition, component, n);
  const xcn: Hl7Repetition = [[sub(1)], [sub(2)], [sub(3)], [sub(4)], [sub(5)], [sub(6)], [sub(7)], [''], [sub(9), sub(10), sub(11)]];
  return practitionerReference(xcn, location, context);
}

/**
 * A practitioner in a role at an organization (OBX-25 performing organization medical director): a PractitionerRole
 * with `code`, referring to the Practitioner and the Organization. Undefined when the practitioner has no resource
 * (a name only): a role of nobody in particular says nothing a display does not.
 */
export function practitionerRoleReference(practitioner: Reference | undefined, organization: Reference | undefined, role: Coding, context: MappingContext): Reference | undefined {
  if (practitioner?.reference === undefined) return undefined;
  const id = deterministicId('PractitionerRole', practitioner.reference, organization?.reference ?? '', `${role.system ?? ''}|${role.code ?? ''}`);
  const code: CodeableConcept = { coding: [role] };
  const reference = context.directory.add(updateDraft('PractitionerRole', id, { practitioner, organization, code: [code] }));
  return practitioner.display === undefined ? { reference } : { reference, display: practitioner.display };
}

// ---------------------------------------------------------------------------------------------------------------
// XON -> Organization

/** What a segment says about an organization beside its XON or its id: an address (OBX-24, IN1-5), numbers (IN1-7). */
export interface OrganizationDetails {
  address?: Address[];
  telecom?: ContactPoint[];
}

/**
 * XON -> a reference to the Organization (XON[Organization]): XON-1 name, XON-10 organization identifier (else
 * XON-3, its place before v2.5) with XON-6 assigning authority (else the message's fallback authority) and XON-7
 * type. Undefined when the XON has neither a name nor an id.
 */
export function organizationReference(repetition: Hl7Repetition, location: string, context: MappingContext, details: OrganizationDetails = {}): Reference | undefined {
  const id = comp(repetition, 10) || comp(repetition, 3);
  const identifier = id === '' ? undefined : assignedIdentifier(id, authorityFromComponent(repetition, 6), location, context, comp(repetition, 7));
  return organizationOf(identifier, comp(repetition, 1), location, context, details);
}

/**
 * An Organization from its identifier and name, however the segment carries them (XON, IN1-3 with IN1-4): keyed by
 * the identifier, else by the name within the sender (see the file comment). Undefined with neither.
 */
export function organizationOf(
  identifier: AssignedIdentifier | undefined,
  name: string,
  location: string,
  context: MappingContext,
  details: OrganizationDetails = {},
): Reference | undefined {
  if (identifier === undefined && name === '') return undefined;
  const id =
    identifier !== undefined
      ? deterministicId('Organization', identifier.system, identifier.value)
      : deterministicId('Organization', 'name', identifierSystem(sendingFacility(context), location, context.options)!, nameKey(name));
  const reference = context.directory.add(
    updateDraft('Organization', id, {
      identifier: identifier === undefined ? undefined : [identifier],
      name,
      address: details.address,
      telecom: details.telecom,
    }),
  );
  return name === '' ? { reference } : { reference, display: name };
}

/** A name as a key: `LabCorp  Seoul` and `LABCORP SEOUL` are one organization. */
function nameKey(name: string): string {
  return name.normalize('NFC').replace(/\s+/g, ' ').trim().toUpperCase();
}

// ---------------------------------------------------------------------------------------------------------------
// PL -> Location

const LOCATION_PHYSICAL_TYPE = 'http://terminology.hl7.org/CodeSystem/location-physical-type';

const physicalType = (code: string, display: string): CodeableConcept => ({ coding: [{ system: LOCATION_PHYSICAL_TYPE, code, display }] });

const OID = /^[0-2](\.(0|[1-9]\d*))+$/;
const UUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

const SITE = physicalType('si', 'Site');
const BUILDING = physicalType('bu', 'Building');
const LEVEL = physicalType('lvl', 'Level');
const WARD = physicalType('wa', 'Ward');
const ROOM = physicalType('ro', 'Room');
const BED = physicalType('bd', 'Bed');

/** One level of a PL (an HD in one component): its name (HD-1, else HD-2) and, for an OID or UUID HD-2, its identifier. */
interface Place {
  name: string;
  identifier?: Identifier;
}

function placeIn(repetition: Hl7Repetition, component: number): Place | undefined {
  return placeOf(authorityFromComponent(repetition, component));
}

function placeOf({ namespace, universalId, universalIdType }: AssigningAuthority): Place | undefined {
  const type = universalIdType.toUpperCase();
  const name = namespace || universalId;
  if (name === '') return undefined;
  // HD[Location]: HD-2 is the location's identifier when it is an ISO OID or a UUID (one that is not is left out).
  const identifier =
    type === 'ISO' && OID.test(universalId)
      ? { system: URI_SYSTEM, value: `urn:oid:${universalId}` }
      : type === 'UUID' && UUID.test(universalId)
        ? { system: URI_SYSTEM, value: `urn:uuid:${universalId.toLowerCase()}` }
        : undefined;
  return identifier === undefined ? { name } : { name, identifier };
}

/**
 * PL-4 facility; a facility sent by its namespace alone that is MSH-4's namespace is MSH-4, universal id and all, so
 * that a ward is one Location whether PL-4 names the sender (`W71^0712^B^BUSANMC`) or is left out. Undefined when
 * PL-4 is empty.
 */
function facilityOf(repetition: Hl7Repetition, context: MappingContext): AssigningAuthority | undefined {
  const facility = authorityFromComponent(repetition, 4);
  if (isEmptyAuthority(facility)) return undefined;
  if (facility.universalId !== '') return facility;
  const sender = authorityFromField(fieldOf(context.msh, 4)[0]);
  return sender.namespace === facility.namespace ? sender : facility;
}

/**
 * PL -> a reference to the Location of the place itself (PL[Location]), after adding it and every place it lies in,
 * each partOf the next: bed (PL-3) -> room (PL-2) -> point of care (PL-1) -> facility (PL-4), and floor (PL-8) ->
 * building (PL-7) -> facility, skipping levels not sent. Every Location has mode `instance` and its physical type
 * (location-physical-type: si, bu, lvl, ro, bd; a point of care is a ward, wa, when PL-6 person location type is N,
 * nursing unit, and has none otherwise: the IG leaves it open, and a clinic or department is no ward).
 *
 * The IG leaves the parent of the point of care open, and relates the floor and building only to the facility; the
 * point of care is not put on the floor, because a ward may span floors and its one resource would then move from
 * floor to floor with each message. The reference's display is PL-1^PL-2^PL-3 as sent (what Encounter.location
 * showed before it had Locations to refer to, so that history entries written before and after match), else the
 * place's name. Undefined when the PL names no place.
 */
export function locationReference(repetition: Hl7Repetition, location: string, context: MappingContext): Reference | undefined {
  const facilityHd = facilityOf(repetition, context);
  const places = {
    facility: facilityHd === undefined ? undefined : placeOf(facilityHd),
    building: placeIn(repetition, 7),
    floor: placeIn(repetition, 8),
    pointOfCare: placeIn(repetition, 1),
    room: placeIn(repetition, 2),
    bed: placeIn(repetition, 3),
  };
  if (Object.values(places).every((place) => place === undefined)) return undefined;
  // Ward, room and bed codes are the facility's own: PL-4 when sent, else whoever the message's identifiers belong to.
  const key = identifierSystem(facilityHd ?? sendingFacility(context), location, context.options)!;

  const add = (path: string[], place: Place, type: CodeableConcept | undefined, partOf: Reference | undefined): Reference => {
    const id = deterministicId('Location', key, ...path);
    const reference = context.directory.add(
      updateDraft('Location', id, { identifier: place.identifier === undefined ? undefined : [place.identifier], name: place.name, mode: 'instance', physicalType: type, partOf }),
    );
    return { reference, display: place.name };
  };

  const facility = places.facility === undefined ? undefined : add([], places.facility, SITE, undefined);
  let building: Reference | undefined;
  let floor: Reference | undefined;
  if (places.building !== undefined) building = add(['building', places.building.name], places.building, BUILDING, facility);
  if (places.floor !== undefined) floor = add(['building', places.building?.name ?? '', 'floor', places.floor.name], places.floor, LEVEL, building ?? facility);

  let parent = facility;
  let unit: Reference | undefined;
  const path: string[] = [];
  for (const [level, place, type] of [
    ['poc', places.pointOfCare, comp(repetition, 6).toUpperCase() === 'N' ? WARD : undefined],
    ['room', places.room, ROOM],
    ['bed', places.bed, BED],
  ] as const) {
    path.push(level, place?.name ?? '');
    if (place !== undefined) parent = unit = add([...path], place, type, parent);
  }
  const most = unit ?? floor ?? building ?? facility;
  if (most?.reference === undefined) return undefined;
  return { reference: most.reference, display: toLocationDisplay(repetition) ?? most.display };
}

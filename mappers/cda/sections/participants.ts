/**
 * People, organizations and places of C-CDA participations, as C-CDA on FHIR maps them (CF-participations): a
 * person with an organization or a role code is a PractitionerRole of a Practitioner and an Organization; a person
 * alone a Practitioner; an organization alone an Organization; a LOC participant a Location; a person named by
 * their relation to the patient a RelatedPerson. Names, addresses and telecoms as @medplum/ccda writes them for the
 * document's other participants, so the same person reads the same wherever they are named.
 *
 * Ids: a Practitioner takes the id normalize.ts gave its assignedEntity/assignedAuthor (the one @medplum/ccda gives
 * the same person elsewhere in the document); an Organization or Location with an id of its own takes one derived
 * from it, so the same organization is one resource across documents; one without is keyed by what it says, so
 * that it is one resource within the document however often it is named.
 */

import { asNodes, attr, concept, first, identifiers, plainText, resourceId, texts, type FhirResource, type Node, type Reference, type SectionResources } from './cda-read.ts';
import type { SectionContext } from '../section-types.ts';

type HumanName = { use?: string; text?: string; family?: string; given?: string[]; prefix?: string[]; suffix?: string[] };
type Address = { use?: string; line?: string[]; city?: string; state?: string; postalCode?: string; country?: string };
type ContactPoint = { system?: string; value: string; use?: string };

const NAME_USES: Readonly<Record<string, string>> = { C: 'usual', L: 'official', TEMP: 'temp', P: 'nickname', ANON: 'anonymous', OR: 'official', A: 'usual' };
const ADDRESS_USES: Readonly<Record<string, string>> = { H: 'home', HP: 'home', HV: 'home', WP: 'work', DIR: 'work', PUB: 'work', TMP: 'temp', OLD: 'old', BAD: 'old' };
const TELECOM_USES: Readonly<Record<string, string>> = { H: 'home', HP: 'home', HV: 'home', WP: 'work', DIR: 'work', PUB: 'work', MC: 'mobile', PG: 'mobile', TMP: 'temp', BAD: 'old' };

/** CDA PNs as HumanNames; a name sent as text alone is the name's text. */
export function names(value: unknown): HumanName[] | undefined {
  const out: HumanName[] = [];
  for (const item of Array.isArray(value) ? value : [value]) {
    if (typeof item === 'string') {
      if (item.trim() !== '') out.push({ text: item.trim() });
      continue;
    }
    const name = first(item);
    if (name === undefined || attr(name, 'nullFlavor') !== undefined) continue;
    const use = NAME_USES[attr(name, 'use') ?? ''];
    const family = texts(name.family)[0];
    const given = texts(name.given);
    const prefix = texts(name.prefix);
    const suffix = texts(name.suffix);
    const text = family === undefined && given.length === 0 ? plainText(name) : undefined;
    const human: HumanName = {
      ...(use ? { use } : {}),
      ...(text ? { text } : {}),
      ...(family ? { family } : {}),
      ...(given.length > 0 ? { given } : {}),
      ...(prefix.length > 0 ? { prefix } : {}),
      ...(suffix.length > 0 ? { suffix } : {}),
    };
    if (Object.keys(human).some((key) => key !== 'use')) out.push(human);
  }
  return out.length > 0 ? out : undefined;
}

/** An organization's or place's name (ON/EN, or text): the first one sent. */
export function entityName(value: unknown): string | undefined {
  for (const item of Array.isArray(value) ? value : [value]) {
    const text = plainText(item);
    if (text !== undefined) return text;
  }
  return undefined;
}

export function addresses(value: unknown): Address[] | undefined {
  const out: Address[] = [];
  for (const addr of asNodes(value)) {
    if (attr(addr, 'nullFlavor') !== undefined) continue;
    const use = ADDRESS_USES[attr(addr, 'use') ?? ''];
    const line = texts(addr.streetAddressLine);
    const part = (name: string): string | undefined => texts(addr[name])[0];
    const address: Address = {
      ...(use ? { use } : {}),
      ...(line.length > 0 ? { line } : {}),
      ...(part('city') ? { city: part('city') } : {}),
      ...(part('state') ? { state: part('state') } : {}),
      ...(part('postalCode') ? { postalCode: part('postalCode') } : {}),
      ...(part('country') ? { country: part('country') } : {}),
    };
    if (Object.keys(address).some((key) => key !== 'use')) out.push(address);
  }
  return out.length > 0 ? out : undefined;
}

export function telecoms(value: unknown): ContactPoint[] | undefined {
  const out: ContactPoint[] = [];
  for (const telecom of asNodes(value)) {
    const raw = attr(telecom, 'value');
    if (raw === undefined || attr(telecom, 'nullFlavor') !== undefined) continue;
    const scheme = /^(tel|mailto|fax|http|https):/i.exec(raw)?.[1]?.toLowerCase();
    const system = scheme === 'tel' ? 'phone' : scheme === 'mailto' ? 'email' : scheme === 'fax' ? 'fax' : scheme === 'http' || scheme === 'https' ? 'url' : 'other';
    const contact = scheme === 'tel' || scheme === 'mailto' || scheme === 'fax' ? raw.slice(scheme.length + 1).trim() : raw;
    if (contact === '') continue;
    const use = TELECOM_USES[attr(telecom, 'use') ?? ''];
    out.push({ system, value: contact, ...(use ? { use } : {}) });
  }
  return out.length > 0 ? out : undefined;
}

/**
 * An Organization of an organization element (representedOrganization, manufacturerOrganization, a payer's
 * organization), with the ids of the role that names it when the organization has none of its own (a payer's id
 * is the assignedEntity's). Undefined when it has neither a name nor an identifier (FHIR org-1).
 */
export function organization(element: Node | undefined, context: SectionContext, out: SectionResources, extra?: { ids?: Node; addr?: unknown; telecom?: unknown }): Reference | undefined {
  if (element === undefined || attr(element, 'nullFlavor') !== undefined) return undefined;
  const name = entityName(element.name);
  const identifier = identifiers(element, context) ?? (extra?.ids ? identifiers(extra.ids, context) : undefined);
  if (name === undefined && identifier === undefined) return undefined;
  const own = ownId(element, context) ?? (extra?.ids ? ownId(extra.ids, context) : undefined);
  const id = own !== undefined
    ? context.derivedId('Organization', { id: [own] }, 'organization', 'organization')
    : context.derivedId('Organization', undefined, 'organization', `name|${name ?? ''}`);
  const resource: FhirResource = {
    resourceType: 'Organization',
    id,
    identifier,
    name,
    // An organization's address and telecom are never its home (FHIR org-2, org-3), whatever use the sender gave.
    telecom: withoutHomeUse(telecoms(element.telecom) ?? telecoms(extra?.telecom)),
    address: withoutHomeUse(addresses(element.addr) ?? addresses(extra?.addr)),
  };
  return out.refer(resource, name);
}

function withoutHomeUse<T extends { use?: string }>(list: T[] | undefined): T[] | undefined {
  return list?.map((item) => {
    if (item.use !== 'home') return item;
    const { use: _home, ...rest } = item;
    return rest as T;
  });
}

/** The element's first id of its own (not the one normalize.ts put first), when it has one. */
function ownId(element: Node, context: SectionContext): Node | undefined {
  const own = context.idOf(element);
  return asNodes(element.id).find((id, i) => attr(id, 'root') !== undefined && attr(id, 'nullFlavor') === undefined && !(i === 0 && attr(id, 'root') === own));
}

/**
 * The actor of an assignedEntity or assignedAuthor: a PractitionerRole (with its Practitioner and Organization)
 * for a person with an organization or a role code, a Practitioner for a person alone, an Organization for an
 * organization alone. Undefined when the participation names nobody (an author device is not an actor here).
 */
export function actor(assigned: Node | undefined, context: SectionContext, out: SectionResources): Reference | undefined {
  if (assigned === undefined || attr(assigned, 'nullFlavor') !== undefined) return undefined;
  const person = first(assigned.assignedPerson);
  const represented = first(assigned.representedOrganization);
  // A role naming neither a person nor an organization but identified (an NPI alone) is a person all the same: CDA
  // records a person's ids on the role (C-CDA on FHIR, "Mapping id").
  if (person === undefined && (represented !== undefined || identifiers(assigned, context) === undefined)) {
    return organization(represented, context, out, { addr: assigned.addr, telecom: assigned.telecom });
  }
  const practitionerId = resourceId('Practitioner', assigned, context, 'practitioner', 'practitioner');
  const name = names(person?.name);
  const practitioner = out.refer({
    resourceType: 'Practitioner',
    id: practitionerId,
    identifier: identifiers(assigned, context),
    name,
    telecom: telecoms(assigned.telecom),
    address: addresses(assigned.addr),
  });
  const organizationReference = organization(represented, context, out);
  const role = concept(assigned.code);
  if (organizationReference === undefined && role === undefined) return practitioner;
  return out.refer({
    resourceType: 'PractitionerRole',
    id: context.derivedId('PractitionerRole', undefined, practitionerId, organizationReference?.reference ?? 'no organization'),
    practitioner,
    organization: organizationReference === undefined ? undefined : { reference: organizationReference.reference },
    code: role === undefined ? undefined : [role],
  });
}

/**
 * A Location of a participantRole (a Service Delivery Location: id, HSLOC code, address, telecom, playingEntity
 * name). FHIR gives a Location one address: the first. Undefined when it says nothing to tell the place by.
 */
export function location(role: Node | undefined, context: SectionContext, out: SectionResources): Reference | undefined {
  if (role === undefined || attr(role, 'nullFlavor') !== undefined) return undefined;
  const place = first(role.playingEntity);
  const name = entityName(place?.name) ?? plainText(place?.desc);
  const address = addresses(role.addr)?.[0];
  const identifier = identifiers(role, context);
  const type = concept(role.code);
  if (name === undefined && address === undefined && identifier === undefined) return undefined;
  // An id with an extension names the place; a root alone (often the organization's OID) or nothing does not, so
  // such a place is keyed by what the document says of it.
  const own = asNodes(role.id).find((id) => attr(id, 'root') !== undefined && attr(id, 'extension') !== undefined && attr(id, 'nullFlavor') === undefined);
  const id = own !== undefined
    ? context.derivedId('Location', { id: [own] }, 'location', 'location')
    : context.derivedId('Location', undefined, 'location', JSON.stringify([identifier ?? null, name ?? null, address ?? null, type?.coding?.[0]?.code ?? null]));
  return out.refer({
    resourceType: 'Location',
    id,
    identifier,
    name,
    type: type === undefined ? undefined : [type],
    telecom: telecoms(role.telecom),
    address,
  }, name);
}

/**
 * A RelatedPerson of a participantRole that names a person other than the patient (a policy holder, a
 * subscriber): its id from the role's own id when it has one (the same subscriber in another document), else from
 * `owner`.
 */
export function relatedPerson(role: Node | undefined, context: SectionContext, out: SectionResources, owner: string, relationship?: unknown): Reference | undefined {
  if (role === undefined || attr(role, 'nullFlavor') !== undefined) return undefined;
  const person = first(role.playingEntity) ?? first(role.associatedPerson) ?? first(role.relatedPerson);
  const name = names(person?.name);
  const identifier = identifiers(role, context);
  const address = addresses(role.addr);
  if (name === undefined && identifier === undefined && address === undefined) return undefined;
  const birthDate = context.date(first(person?.['sdtc:birthTime']));
  return out.refer({
    resourceType: 'RelatedPerson',
    id: context.derivedId('RelatedPerson', role, owner, 'related-person'),
    identifier,
    patient: { reference: context.patientReference },
    relationship: relationship === undefined ? undefined : [relationship],
    name,
    telecom: telecoms(role.telecom),
    birthDate,
    address,
  });
}

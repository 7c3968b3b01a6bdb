/**
 * Reading C-CDA clinical statements for the section converters of this folder: their codes, identifiers, times,
 * text and authors, and the encounter the document is about. Everything here is read from the parsed, normalized
 * document (normalize.ts) and written in the converter's output form: times as @medplum/ccda writes them (restored to
 * the precision sent by resources.ts), code systems by OID where no URI is known (mapped by resources.ts), resource
 * ids from the context. Nothing here throws for a document's content: what cannot be read is undefined.
 *
 * What every converter reads alike (an element sent once or repeated, templateIds, the statements of a section's
 * entries) is cda-read.ts's, re-exported here. Codes, identifiers, narrative and people are read differently there,
 * for the converters of medications, immunizations, encounters, equipment, payers and advance directives, and are
 * kept apart: their outputs differ (an originalText reference's target, UUID roots, name and address uses).
 */

import { ADDRESS_USE_MAPPER, CCDA_NARRATIVE_REFERENCE_URL, HUMAN_NAME_USE_MAPPER, mapCcdaSystemToFhir, TELECOM_USE_MAPPER } from '@medplum/ccda';

import { toFhirDate, toFhirDateTime } from '../../hl7v2/datatypes.ts';
import { asNodes, firstUsableId, statementIdOf, textOf } from '../normalize.ts';
import { iiIdentifier, type FhirResource } from '../resources.ts';
import type { Node, SectionContext } from '../section-types.ts';

import { DATA_ABSENT_REASON, entryStatements, first as one, hasTemplate, Narrative, ownIdKey, resourceId, UCUM, UUID, xsiType } from './cda-read.ts';

export { asNodes, DATA_ABSENT_REASON, entryStatements, hasTemplate, Narrative, one, ownIdKey, resourceId, textOf, UCUM, xsiType, type FhirResource, type Node, type SectionContext };

export type Concept = { coding?: Coding[]; text?: string; extension?: unknown[] };
export type Coding = { system?: string; code?: string; display?: string };
export type Reference = { reference: string };

const SNOMED = 'http://snomed.info/sct';

/** A CodeableConcept that says only that the value is not known (for elements FHIR requires). */
export function unknownConcept(text?: string, reason = 'unknown'): Concept {
  return { extension: [{ url: DATA_ABSENT_REASON, valueCode: reason }], ...(text ? { text } : {}) };
}

/** The code of an element's `code`, when it has one. */
export function codeValue(element: Node | undefined): string | undefined {
  const code = one(element?.code)?.['@_code'];
  return typeof code === 'string' && code !== '' ? code : undefined;
}

/** The entryRelationships of a statement, of the given typeCodes (all when none is given). */
export function relationships(element: Node, ...typeCodes: string[]): Node[] {
  return asNodes(element.entryRelationship).filter((relationship) => typeCodes.length === 0 || typeCodes.includes(String(relationship['@_typeCode'] ?? '')));
}

/** The observations related to a statement by entryRelationships of the given typeCodes (all when none is given). */
export function relatedObservations(element: Node, ...typeCodes: string[]): Node[] {
  return relationships(element, ...typeCodes).flatMap((relationship) => asNodes(relationship.observation));
}

/** The acts related to a statement by entryRelationships of the given typeCodes. */
export function relatedActs(element: Node, ...typeCodes: string[]): Node[] {
  return relationships(element, ...typeCodes).flatMap((relationship) => asNodes(relationship.act));
}

/** Whether a statement says the opposite of what it codes (negationInd="true"). */
export function isNegated(element: Node): boolean {
  return String(element['@_negationInd'] ?? '').trim().toLowerCase() === 'true';
}

/** A statement's statusCode/@code. */
export function statusOf(element: Node): string | undefined {
  const code = one(element.statusCode)?.['@_code'];
  return typeof code === 'string' && code !== '' ? code.trim() : undefined;
}

// ---------------------------------------------------------------------------------------------------------------
// Text

/** An element's own character content (the parser keeps mixed content's text in `#text`), whitespace collapsed. */
function plainText(value: unknown): string | undefined {
  const text = textOf(value);
  return text === undefined ? undefined : collapse(text);
}

function collapse(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}

/** The narrative reference of a statement's text, as @medplum/ccda records it on the resources it makes. */
export function narrativeReference(element: Node): Array<{ url: string; valueString: string }> | undefined {
  const reference = one(one(element.text)?.reference)?.['@_value'];
  return typeof reference === 'string' && reference.trim() !== '' ? [{ url: CCDA_NARRATIVE_REFERENCE_URL, valueString: reference.trim() }] : undefined;
}

// ---------------------------------------------------------------------------------------------------------------
// Codes

/**
 * A CD/CE/CV/CO/CS as a CodeableConcept, through the context's mapping (@medplum/ccda's, so codes read as the rest
 * of the document's): codings without a code (a nullFlavor code that still names its code system) are left out, and
 * the text is the originalText, or the narrative it points at, or the display name. Undefined when nothing is left.
 */
export function conceptOf(code: unknown, context: SectionContext, narrative?: Narrative): Concept | undefined {
  const node = one(code);
  if (node === undefined) return undefined;
  const mapped = context.concept(node) as Concept | undefined;
  const coding = (mapped?.coding ?? []).filter((entry) => typeof entry.code === 'string' && entry.code.trim() !== '');
  const text = (narrative === undefined ? plainText(node.originalText) : narrative.textOf(node.originalText)) ?? mapped?.text;
  if (coding.length === 0 && text === undefined) return undefined;
  return { ...(coding.length > 0 ? { coding } : {}), ...(text !== undefined ? { text } : {}) };
}

/** A code of a known system as a CodeableConcept. */
export function fixedConcept(system: string, code: string, display: string): Concept {
  return { coding: [{ system, code, display }] };
}

export const SNOMED_DEAD = fixedConcept(SNOMED, '419099009', 'Dead');

/** C-CDA on FHIR ConceptMap CF-NullFlavorDataAbsentReason: a nullFlavor as the data-absent-reason code. */
const ABSENT_REASONS: Readonly<Record<string, string>> = {
  NI: 'unknown',
  OTH: 'unsupported',
  NINF: 'negative-infinity',
  PINF: 'positive-infinity',
  MSK: 'masked',
  NA: 'not-applicable',
  UNK: 'unknown',
  ASKU: 'asked-unknown',
  NAV: 'temp-unknown',
  NASK: 'not-asked',
  TRC: 'unsupported',
  NP: 'unknown',
};

/** The data-absent-reason code for an element's nullFlavor; undefined when it has none. */
export function absentReason(element: Node | undefined): string | undefined {
  const nullFlavor = element?.['@_nullFlavor'];
  if (typeof nullFlavor !== 'string' || nullFlavor === '') return undefined;
  return ABSENT_REASONS[nullFlavor.trim().toUpperCase()] ?? 'unknown';
}

// ---------------------------------------------------------------------------------------------------------------
// Quantities

/**
 * A C-CDA age (PQ in UCUM time units, years when no unit is sent) as a FHIR Age: positive, with a UCUM code (age-1).
 */
export function ageQuantity(value: Node | undefined): Record<string, unknown> | undefined {
  const text = typeof value?.['@_value'] === 'string' ? value['@_value'].trim() : '';
  const number = /^\d+(\.\d+)?$/.test(text) ? Number(text) : Number.NaN;
  if (!(number > 0)) return undefined;
  const unit = typeof value?.['@_unit'] === 'string' && value['@_unit'].trim() !== '' ? value['@_unit'].trim() : 'a';
  if (!AGE_UNITS.has(unit)) return undefined;
  return { value: number, unit, system: UCUM, code: unit };
}

const AGE_UNITS = new Set(['a', 'mo', 'wk', 'd', 'h', 'min']);

// ---------------------------------------------------------------------------------------------------------------
// Identifiers

/**
 * A statement's ids as Identifiers (C-CDA on FHIR "CDA id -> FHIR identifier"): root and extension as system and
 * value, a root alone as the identifier itself (urn:ietf:rfc:3986); the id normalize.ts put first is the resource's
 * own id, not an identifier. `skipUuidOnly`: leave out UUID roots without an extension, as @medplum/ccda does for the
 * people it makes (it takes them as resource ids), so that a Practitioner made here reads as one made there.
 */
export function identifiersOf(element: Node, context: SectionContext, skipUuidOnly = false): Array<{ system: string; value: string }> | undefined {
  const own = context.idOf(element);
  const identifiers: Array<{ system: string; value: string }> = [];
  asNodes(element.id).forEach((id, index) => {
    const root = id['@_root'];
    if (typeof root !== 'string' || root.trim() === '' || id['@_nullFlavor'] !== undefined) return;
    const extension = typeof id['@_extension'] === 'string' && id['@_extension'].trim() !== '' ? id['@_extension'].trim() : undefined;
    if (index === 0 && root === own && extension === undefined) return;
    if (skipUuidOnly && extension === undefined && UUID.test(root)) return;
    const known = extension === undefined ? undefined : mapCcdaSystemToFhir(root);
    const identifier = known && !known.startsWith('urn:oid:') ? { system: known, value: extension! } : iiIdentifier(id);
    if (!identifiers.some((seen) => seen.system === identifier.system && seen.value === identifier.value)) identifiers.push(identifier);
  });
  return identifiers.length > 0 ? identifiers : undefined;
}

/**
 * Whether a statement repeats the id of one earlier in the document (normalize.ts then gave it an id of its own):
 * a reference to that statement (a concern's REFR to a problem of the Problems section) or a sender's mistake.
 */
export function repeatsEarlierStatement(element: Node, context: SectionContext): boolean {
  const own = ownIdKey(element, context);
  return own !== undefined && context.idOf(element) !== statementIdOf(...own);
}

// ---------------------------------------------------------------------------------------------------------------
// Times

export type Effective = { effectiveDateTime?: string; effectivePeriod?: { start?: string; end?: string } };

/**
 * An effectiveTime as a FHIR effective[x] (C-CDA on FHIR prefers effectiveDateTime): a value, a low alone or a low
 * equal to its high is a dateTime; a low and a different high, or a high alone, a Period.
 */
export function effectiveOf(effectiveTime: unknown, context: SectionContext): Effective {
  const time = one(effectiveTime);
  if (time === undefined) return {};
  const value = typeof time['@_value'] === 'string' ? context.dateTime(time) : undefined;
  if (value !== undefined) return { effectiveDateTime: value };
  const low = context.dateTime(one(time.low));
  const high = context.dateTime(one(time.high));
  if (low !== undefined && (high === undefined || high === low)) return { effectiveDateTime: low };
  if (low === undefined && high === undefined) return {};
  return { effectivePeriod: { ...(low !== undefined ? { start: low } : {}), ...(high !== undefined ? { end: high } : {}) } };
}

/**
 * A TS the walk of normalize.ts does not reach (header elements, birth and death times, TS values), read in the
 * mapping's time zone as HL7 v2 times are: a FHIR dateTime at the precision sent; undefined when it is not a TS.
 */
export function unnormalizedDateTime(ts: unknown, context: SectionContext): string | undefined {
  const value = one(ts)?.['@_value'];
  if (typeof value !== 'string' || value.trim() === '') return undefined;
  try {
    return toFhirDateTime(value.trim(), 'effectiveTime', context.mapping.timeZone);
  } catch {
    return undefined;
  }
}

/** Such a TS as a FHIR date (the sender's calendar date, at the precision sent up to the day). */
export function unnormalizedDate(ts: unknown): string | undefined {
  const value = one(ts)?.['@_value'];
  if (typeof value !== 'string' || value.trim() === '') return undefined;
  try {
    return toFhirDate(value.trim(), 'birthTime');
  } catch {
    return undefined;
  }
}

/** The earliest of FHIR dateTimes (by the instant each starts at); undefined for none. */
export function earliest(values: ReadonlyArray<string | undefined>): string | undefined {
  return extreme(values, (a, b) => a < b);
}

export function latest(values: ReadonlyArray<string | undefined>): string | undefined {
  return extreme(values, (a, b) => a > b);
}

function extreme(values: ReadonlyArray<string | undefined>, better: (a: number, b: number) => boolean): string | undefined {
  let best: { value: string; at: number } | undefined;
  for (const value of values) {
    if (value === undefined) continue;
    const at = Date.parse(value.length === 4 ? `${value}-01-01` : value.length === 7 ? `${value}-01` : value);
    if (Number.isNaN(at)) continue;
    if (best === undefined || better(at, best.at)) best = { value, at };
  }
  return best?.value;
}

// ---------------------------------------------------------------------------------------------------------------
// People

/**
 * A Practitioner for the person an author participation names (assignedAuthor with an assignedPerson, or with an id
 * that points at one named elsewhere in the document), pushed onto `resources`, and the reference to it. A device
 * author (assignedAuthoringDevice) is no Practitioner: undefined. The id is the one normalize.ts gave the
 * assignedAuthor, so the same author in another section is the same resource.
 */
export function authorReference(author: Node | undefined, context: SectionContext, resources: FhirResource[]): Reference | undefined {
  const assigned = one(author?.assignedAuthor);
  if (assigned === undefined || assigned.assignedAuthoringDevice !== undefined) return undefined;
  const person = one(assigned.assignedPerson);
  if (person === undefined && firstUsableId(assigned.id) === undefined) return undefined;
  const id = resourceId('Practitioner', assigned, context, context.compositionId, 'author');
  const names = asNodes(person?.name).map(humanName).filter((name) => name !== undefined);
  const telecom = asNodes(assigned.telecom).map(contactPoint).filter((point) => point !== undefined);
  const address = asNodes(assigned.addr).map(postalAddress).filter((addr) => addr !== undefined);
  const qualification = conceptOf(assigned.code, context);
  resources.push({
    resourceType: 'Practitioner',
    id,
    identifier: identifiersOf(assigned, context, true),
    name: names.length > 0 ? names : undefined,
    telecom: telecom.length > 0 ? telecom : undefined,
    address: address.length > 0 ? address : undefined,
    qualification: qualification === undefined ? undefined : [{ code: qualification }],
  });
  return { reference: `Practitioner/${id}` };
}

/**
 * The author C-CDA on FHIR takes as a resource's recorder: the latest by author/time (the first when none has a
 * time), of the statement's own authors.
 */
export function latestAuthor(element: Node, context: SectionContext): Node | undefined {
  const authors = asNodes(element.author);
  if (authors.length <= 1) return authors[0];
  const times = authors.map((author) => context.dateTime(one(author.time)));
  const last = latest(times);
  return last === undefined ? authors[0] : authors[times.indexOf(last)];
}

/** The earliest author/time of a statement's authors. */
export function earliestAuthorTime(element: Node, context: SectionContext): string | undefined {
  return earliest(asNodes(element.author).map((author) => context.dateTime(one(author.time))));
}

function humanName(name: Node): Record<string, unknown> | undefined {
  const parts = (value: unknown): string[] | undefined => {
    const list = (Array.isArray(value) ? value : value === undefined ? [] : [value]).map((part) => plainText(part)).filter((part): part is string => part !== undefined);
    return list.length > 0 ? list : undefined;
  };
  const family = parts(name.family)?.join(' ');
  const given = parts(name.given);
  const prefix = parts(name.prefix);
  const suffix = parts(name.suffix);
  const use = typeof name['@_use'] === 'string' ? HUMAN_NAME_USE_MAPPER.mapCcdaToFhir(name['@_use'] as never) : undefined;
  // An unstructured name: its text alone.
  const text = family === undefined && given === undefined ? plainText(name) : undefined;
  if (family === undefined && given === undefined && text === undefined) return undefined;
  return { ...(use ? { use } : {}), ...(text ? { text } : {}), ...(family ? { family } : {}), ...(given ? { given } : {}), ...(prefix ? { prefix } : {}), ...(suffix ? { suffix } : {}) };
}

function contactPoint(telecom: Node): Record<string, unknown> | undefined {
  const raw = telecom['@_value'];
  if (typeof raw !== 'string' || raw.trim() === '') return undefined;
  const value = raw.trim();
  const system = /^tel:/i.test(value) ? 'phone' : /^fax:/i.test(value) ? 'fax' : /^mailto:/i.test(value) ? 'email' : /^https?:/i.test(value) ? 'url' : 'other';
  const use = typeof telecom['@_use'] === 'string' ? TELECOM_USE_MAPPER.mapCcdaToFhir(telecom['@_use'] as never) : undefined;
  return { system, value: system === 'url' ? value : value.replace(/^(tel|fax|mailto):/i, ''), ...(use ? { use } : {}) };
}

function postalAddress(addr: Node): Record<string, unknown> | undefined {
  const line = (Array.isArray(addr.streetAddressLine) ? addr.streetAddressLine : [addr.streetAddressLine]).map((part) => plainText(part)).filter((part): part is string => part !== undefined);
  const field = (name: string): string | undefined => plainText(Array.isArray(addr[name]) ? (addr[name] as unknown[])[0] : addr[name]);
  const address = {
    ...(line.length > 0 ? { line } : {}),
    ...(field('city') ? { city: field('city') } : {}),
    ...(field('state') ? { state: field('state') } : {}),
    ...(field('postalCode') ? { postalCode: field('postalCode') } : {}),
    ...(field('country') ? { country: field('country') } : {}),
  };
  if (Object.keys(address).length === 0) return undefined;
  const use = typeof addr['@_use'] === 'string' ? ADDRESS_USE_MAPPER.mapCcdaToFhir(addr['@_use'] as never) : undefined;
  return { ...(use ? { use } : {}), ...address };
}

// ---------------------------------------------------------------------------------------------------------------
// The document's encounter

/**
 * The reference to the encounter the document is about (componentOf/encompassingEncounter), for the diagnoses made
 * in it (admission, discharge, pre- and postoperative). The Encounter itself is made with the header (header.ts),
 * under the id normalize.ts gave the element; undefined when the document names none.
 */
export function documentEncounter(context: SectionContext): Reference | undefined {
  const encounter = one(one(context.document.componentOf)?.encompassingEncounter);
  const id = encounter === undefined ? undefined : context.idOf(encounter);
  return id === undefined ? undefined : { reference: `Encounter/${id}` };
}

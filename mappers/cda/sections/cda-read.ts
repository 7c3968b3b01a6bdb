/**
 * Reading the parsed, normalized C-CDA tree for the section converters of this folder: elements that may come as one
 * node or a list, attributes, null flavors, narrative references, identifiers, codes and quantities, and the
 * collector of a section's resources. What every converter here reads the same way is read here once.
 *
 * The parser (fast-xml-parser, as @medplum/ccda configures it) gives a list for the elements it knows to repeat and
 * a single node for the rest, whatever the document sends; everything here therefore reads both shapes.
 */

import { mapCcdaSystemToFhir } from '@medplum/ccda';

import { decimalFromLiteral, type FhirDecimal } from '../../fhir-decimal.ts';
import { asNodes, firstUsableId } from '../normalize.ts';
import { narrativeTextsById } from '../narrative.ts';
import { COMMENT_ACTIVITY_ROOT, isSectionComment } from '../sections.ts';
import { iiIdentifier, type FhirResource } from '../resources.ts';
import type { Node, SectionContext, SectionOutput } from '../section-types.ts';

export { asNodes, firstUsableId };
export type { FhirResource, Node };

export type CodeableConcept = { coding?: Array<{ system?: string; code: string; display?: string }>; text?: string };
export type Identifier = { system?: string; value: string; type?: CodeableConcept };
export type Quantity = { value: FhirDecimal; unit?: string; system?: string; code?: string };
export type Reference = { reference: string; display?: string };

export const UCUM = 'http://unitsofmeasure.org';
export const DATA_ABSENT_REASON = 'http://hl7.org/fhir/StructureDefinition/data-absent-reason';
/** What a required element holds when the document does not say (a nullFlavor where FHIR needs a value). */
export const UNKNOWN_CONCEPT: CodeableConcept & { extension: unknown[] } = { extension: [{ url: DATA_ABSENT_REASON, valueCode: 'unknown' }] };
/** The extension @medplum/ccda puts on resources to name the narrative an entry's text points at; kept alike here. */
const NARRATIVE_REFERENCE = 'https://medplum.com/fhir/StructureDefinition/ccda-narrative-reference';

const INDICATION = '2.16.840.1.113883.10.20.22.4.19';
/** An RSON observation that says why something was not done, not what it was done for. */
const REFUSAL_REASON = '2.16.840.1.113883.10.20.22.4.53';

/** The first node of an element sent once or repeated. */
export function first(value: unknown): Node | undefined {
  return asNodes(value)[0];
}

/** An attribute's value, trimmed; undefined when absent or blank. */
export function attr(node: Node | undefined, name: string): string | undefined {
  const value = node?.[`@_${name}`];
  if (typeof value !== 'string') return undefined;
  const trimmed = value.trim();
  return trimmed === '' ? undefined : trimmed;
}

/** Whether an element carries the templateId `roots` (one root, or any of several). */
export function hasTemplate(node: Node | undefined, roots: string | readonly string[]): boolean {
  const wanted: readonly unknown[] = typeof roots === 'string' ? [roots] : roots;
  return asNodes(node?.templateId).some((templateId) => wanted.includes(templateId['@_root']));
}

/** The text of each occurrence of a repeated text element (a name's given names, an address's lines). */
export function texts(value: unknown): string[] {
  const list = Array.isArray(value) ? value : [value];
  const out: string[] = [];
  for (const item of list) {
    const text = plainText(item);
    if (text !== undefined) out.push(text);
  }
  return out;
}

/** The text of an element holding text only (a string, or a node's `#text`); undefined for a nullFlavor. */
export function plainText(value: unknown): string | undefined {
  if (typeof value === 'string') return value.trim() === '' ? undefined : value.trim();
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) return plainText((value as Node)['#text']);
  return undefined;
}

/** A statement's moodCode (EVN, INT, ...), upper-cased; EVN when absent, the default CDA gives it. */
export function moodOf(statement: Node): string {
  return (attr(statement, 'moodCode') ?? 'EVN').toUpperCase();
}

export function isNegated(statement: Node): boolean {
  return attr(statement, 'negationInd') === 'true';
}

export function statusCodeOf(statement: Node): string | undefined {
  return attr(first(statement.statusCode), 'code');
}

/**
 * The entry relationships of a statement, each with the clinical statement it holds (act, observation,
 * substanceAdministration, supply, procedure, encounter, organizer), in document order.
 */
export function relatedStatements(statement: Node): Array<{ typeCode: string | undefined; kind: string; node: Node; relationship: Node }> {
  const out: Array<{ typeCode: string | undefined; kind: string; node: Node; relationship: Node }> = [];
  for (const relationship of asNodes(statement.entryRelationship)) {
    for (const kind of STATEMENT_KINDS) {
      for (const node of asNodes(relationship[kind])) out.push({ typeCode: attr(relationship, 'typeCode'), kind, node, relationship });
    }
  }
  return out;
}

/** The clinical statements an entry (or an organizer's component) holds. */
export function statementsOf(holder: Node): Array<{ kind: string; node: Node }> {
  const out: Array<{ kind: string; node: Node }> = [];
  for (const kind of STATEMENT_KINDS) for (const node of asNodes(holder[kind])) out.push({ kind, node });
  return out;
}

/**
 * The clinical statement element names read, in the order an entry's statements are taken when a sender puts more
 * than the one CDA allows in it.
 */
const STATEMENT_KINDS = ['act', 'observation', 'substanceAdministration', 'supply', 'procedure', 'encounter', 'organizer'] as const;

/** A clinical statement with its place in the document (`…/entry[n]/kind`), for the issues raised about it. */
export type PlacedStatement = { kind: string; node: Node; at: string };

/**
 * The clinical statements of a section's entries, in document order. A comment on the section itself (a Comment
 * Activity sent as an entry) is no clinical statement: its words are in the narrative, which the Composition keeps,
 * and it is not yielded (nor counted: sections.ts countEntryStatements).
 */
export function* entryStatements(section: Node, context: SectionContext): Generator<PlacedStatement> {
  const entries = asNodes(section.entry);
  for (let e = 0; e < entries.length; e++) {
    for (const { kind, node } of statementsOf(entries[e]!)) {
      if (isSectionComment(kind, node)) continue;
      yield { kind, node, at: `${context.location}/entry[${e + 1}]/${kind}` };
    }
  }
}

/** The clinical statements of an organizer's components, placed under the organizer's own place `at`. */
export function* componentStatements(organizer: Node, at: string): Generator<PlacedStatement> {
  const components = asNodes(organizer.component);
  for (let c = 0; c < components.length; c++) {
    for (const { kind, node } of statementsOf(components[c]!)) yield { kind, node, at: `${at}/component[${c + 1}]/${kind}` };
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Narrative

/**
 * A section's narrative block, for the texts entries point at (`<text><reference value="#id"/></text>`, an
 * originalText's reference) instead of repeating them: C-CDA on FHIR resolves them, since FHIR text is a string.
 * Senders put the human-readable value of a coded element there, often as the only text a nullFlavor value has.
 * The elements with an ID are indexed on first use.
 */
/** An element's xsi:type without its prefix, upper case (`ED`), whatever prefix the document bound the namespace to. */
export function xsiType(value: Node): string | undefined {
  const type = value['@_xsi:type'] ?? Object.entries(value).find(([name]) => name.endsWith(':type'))?.[1];
  return typeof type === 'string' ? type.replace(/^.*:/, '').trim().toUpperCase() : undefined;
}

export class Narrative {
  private readonly block: unknown;
  private byId: Map<string, unknown> | undefined;
  /** The texts of the section's narrative markup in document order (convert.ts puts it in place of the parsed text). */
  private ordered: ReadonlyMap<string, string> | undefined;

  constructor(block: unknown) {
    this.block = block;
  }

  /**
   * The text of an ED/ST element: its own text when it has any, else the narrative its reference points at;
   * whitespace collapsed. Undefined when neither gives text.
   */
  textOf(element: unknown): string | undefined {
    if (typeof element === 'string') return collapse(element);
    const node = first(element);
    if (node === undefined) return undefined;
    const own = collapse(typeof node['#text'] === 'string' ? node['#text'] : undefined);
    if (own !== undefined) return own;
    return this.resolve(node.reference);
  }

  /**
   * The narrative text an in-document reference points at: a `reference` element or its value, `#id` (or, as some
   * senders write it, the id without its `#`). Undefined when it points nowhere in this section.
   */
  resolve(reference: unknown): string | undefined {
    const value = typeof reference === 'string' ? reference : attr(first(reference), 'value');
    const id = value?.trim().replace(/^#/, '');
    if (id === undefined || id === '') return undefined;
    if (typeof this.block === 'string') {
      this.ordered ??= narrativeTextsById(this.block);
      return this.ordered.get(id);
    }
    if (this.byId === undefined) {
      this.byId = new Map();
      indexIds(this.block, this.byId);
    }
    const target = this.byId.get(id);
    return target === undefined ? undefined : collapse(flatten(target));
  }
}

function indexIds(value: unknown, byId: Map<string, unknown>): void {
  if (Array.isArray(value)) {
    for (const item of value) indexIds(item, byId);
    return;
  }
  if (value === null || typeof value !== 'object') return;
  const node = value as Node;
  const id = node['@_ID'];
  if (typeof id === 'string' && !byId.has(id)) byId.set(id, node);
  for (const [name, child] of Object.entries(node)) if (!name.startsWith('@_')) indexIds(child, byId);
}

/** The character data of a narrative element and everything in it (the parser keeps no order between text and elements). */
function flatten(value: unknown): string {
  if (typeof value === 'string') return value;
  if (Array.isArray(value)) return value.map(flatten).join(' ');
  if (value === null || typeof value !== 'object') return '';
  const parts: string[] = [];
  for (const [name, child] of Object.entries(value as Node)) if (!name.startsWith('@_')) parts.push(flatten(child));
  return parts.join(' ');
}

function collapse(text: string | undefined): string | undefined {
  if (text === undefined) return undefined;
  const collapsed = text.replace(/\s+/g, ' ').trim();
  return collapsed === '' ? undefined : collapsed;
}

/** The narrative reference extension @medplum/ccda gives its resources, for an entry whose text points at the narrative. */
export function narrativeExtension(statement: Node): unknown[] | undefined {
  const reference = attr(first(first(statement.text)?.reference), 'value');
  return reference === undefined ? undefined : [{ url: NARRATIVE_REFERENCE, valueString: reference }];
}

/** Comment Activities of a statement (C-CDA on FHIR: Comment -> Annotation) as notes. */
export function notesOf(statement: Node, narrative: Narrative): Array<{ text: string }> | undefined {
  const notes: Array<{ text: string }> = [];
  for (const { kind, node } of relatedStatements(statement)) {
    if (kind !== 'act' || !hasTemplate(node, COMMENT_ACTIVITY_ROOT)) continue;
    const text = narrative.textOf(node.text);
    if (text !== undefined) notes.push({ text });
  }
  return notes.length > 0 ? notes : undefined;
}

/** Indications (RSON observations) of a statement: their values, the reason codes C-CDA on FHIR maps them to. */
export function reasonCodesOf(statement: Node, narrative: Narrative): CodeableConcept[] | undefined {
  const reasons: CodeableConcept[] = [];
  for (const { typeCode, kind, node } of relatedStatements(statement)) {
    if (typeCode !== 'RSON' || kind !== 'observation' || hasTemplate(node, REFUSAL_REASON) || (!hasTemplate(node, INDICATION) && node.value === undefined)) continue;
    const reason = concept(node.value, narrative);
    if (reason !== undefined) reasons.push(reason);
  }
  return reasons.length > 0 ? reasons : undefined;
}

// ---------------------------------------------------------------------------------------------------------------
// Identifiers, codes, quantities

/** ActStatus -> request-status (CarePlan, ServiceRequest): what a planned or requested act's status says of it. */
export const REQUEST_STATUS_OF_ACT: Readonly<Record<string, string>> = {
  active: 'active', new: 'draft', held: 'on-hold', suspended: 'on-hold', completed: 'completed', aborted: 'revoked', cancelled: 'revoked', nullified: 'entered-in-error', obsolete: 'revoked',
};

/** A UUID, as some senders give ids a root alone. */
export const UUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

/**
 * An element's ids as Identifiers (C-CDA on FHIR "CDA id -> FHIR identifier"): a root with an extension is the
 * system (a known one's URI, else urn:oid: / urn:uuid:) and the extension the value; a root alone is itself the
 * identifier, under urn:ietf:rfc:3986. The id normalize.ts put first (the resource's own id) is left out, as are
 * ids with a nullFlavor.
 */
export function identifiers(element: Node | undefined, context: SectionContext): Identifier[] | undefined {
  if (element === undefined) return undefined;
  const own = context.idOf(element);
  const out: Identifier[] = [];
  asNodes(element.id).forEach((id, i) => {
    const root = attr(id, 'root');
    if (root === undefined || attr(id, 'nullFlavor') !== undefined || (i === 0 && root === own && attr(id, 'extension') === undefined)) return;
    const identifier = iiIdentifier(id);
    const known = attr(id, 'extension') !== undefined && !UUID.test(root) ? mapCcdaSystemToFhir(root) : undefined;
    const mapped = known !== undefined && known !== '' && !known.startsWith('urn:oid:') ? { system: known, value: identifier.value } : identifier;
    if (!out.some((seen) => seen.system === mapped.system && seen.value === mapped.value)) out.push(mapped);
  });
  return out.length > 0 ? out : undefined;
}

/** A statement's own first usable id (not the one normalize.ts put first) as [root, extension]; undefined for none. */
export function ownIdKey(element: Node, context: SectionContext): [string, string] | undefined {
  const ids = asNodes(element.id);
  const placed = context.idOf(element);
  const own = firstUsableId(placed !== undefined && ids[0]?.['@_root'] === placed ? ids.slice(1) : ids);
  return own === undefined ? undefined : [String(own['@_root']), String(own['@_extension'] ?? '')];
}

/**
 * The id of the resource made of a statement: the one normalize.ts gave it, else one derived from the statement's
 * own id or its owner and purpose.
 */
export function resourceId(resourceType: string, element: Node, context: SectionContext, owner: string, purpose: string): string {
  return context.idOf(element) ?? context.derivedId(resourceType, element, owner, purpose);
}

/**
 * A CD/CE/CV as a CodeableConcept, as C-CDA on FHIR maps it: the code and each translation as codings (code systems
 * by @medplum/ccda's OID table, else urn:oid:, which the tidy step maps further), codings without a code left out
 * (a nullFlavor root keeps its translations), and the originalText, resolved in the narrative when it is a
 * reference, as the text; else the display name, as @medplum/ccda gives it.
 */
export function concept(code: unknown, narrative?: Narrative): CodeableConcept | undefined {
  const node = first(code);
  if (node === undefined) return undefined;
  const coding: Array<{ system?: string; code: string; display?: string }> = [];
  for (const part of [node, ...asNodes(node.translation)]) {
    const value = attr(part, 'code');
    if (value === undefined) continue;
    const oid = attr(part, 'codeSystem');
    const system = oid === undefined ? undefined : systemUri(oid);
    const display = attr(part, 'displayName');
    if (coding.some((known) => known.system === system && known.code === value)) continue;
    coding.push({ ...(system !== undefined ? { system } : {}), code: value, ...(display !== undefined ? { display } : {}) });
  }
  const original = node.originalText === undefined ? undefined : (narrative?.textOf(node.originalText) ?? plainText(node.originalText));
  const text = original ?? attr(node, 'displayName');
  if (coding.length === 0) return text === undefined ? undefined : { text };
  return { coding, ...(text !== undefined ? { text } : {}) };
}

function systemUri(oid: string): string {
  const mapped = mapCcdaSystemToFhir(oid);
  // @medplum/ccda maps a few systems to '' (Source of Payment Typology): keep them by their OID.
  return mapped === undefined || mapped === '' ? `urn:oid:${oid}` : mapped;
}

/**
 * A PQ as a Quantity with the decimal as sent (`0.50` stays 0.50, ../../fhir-decimal.ts), its unit as a UCUM code
 * as resources.ts states dose units; a unit of '1' (a count) is no unit. Undefined without a numeric value.
 */
export function quantity(pq: unknown): Quantity | undefined {
  const node = first(pq);
  const text = attr(node, 'value');
  if (text === undefined) return undefined;
  const value = decimalFromLiteral(text) ?? (Number.isFinite(Number(text)) ? Number(text) : undefined);
  if (value === undefined) return undefined;
  const unit = attr(node, 'unit');
  return unit === undefined || unit === '1' ? { value } : { value, unit, system: UCUM, code: unit };
}

/** An IVL_PQ with low and/or high as a Range; undefined when neither bound has a value. */
export function range(ivl: unknown): { low?: Quantity; high?: Quantity } | undefined {
  const node = first(ivl);
  if (node === undefined) return undefined;
  const low = quantity(node.low);
  const high = quantity(node.high);
  if (low === undefined && high === undefined) return undefined;
  return { ...(low ? { low } : {}), ...(high ? { high } : {}) };
}

/** The time of the earliest author of a statement that gives one (C-CDA on FHIR: authoredOn, earliest). */
/**
 * An effectiveTime as the choice element `<prefix>[x]`: a single value as `<prefix>DateTime`, an interval as
 * `<prefix>Period`; undefined when there is none.
 */
export function timeChoice(prefix: string, span: Node | undefined, context: SectionContext): Record<string, unknown> | undefined {
  if (span === undefined) return undefined;
  return attr(span, 'value') !== undefined ? { [`${prefix}DateTime`]: context.dateTime(span) } : { [`${prefix}Period`]: context.period(span) };
}

export function earliestAuthorTime(statement: Node, context: SectionContext): string | undefined {
  let earliest: { time: string; at: number } | undefined;
  for (const author of asNodes(statement.author)) {
    const time = context.dateTime(author.time);
    if (time === undefined) continue;
    const at = Date.parse(time.length <= 10 ? `${time}T00:00:00Z` : time);
    if (earliest === undefined || (Number.isFinite(at) && at < earliest.at)) earliest = { time, at };
  }
  return earliest?.time;
}

/** The first author of a statement with an assignedAuthor. */
export function firstAuthor(statement: Node): Node | undefined {
  return asNodes(statement.author).map((author) => first(author.assignedAuthor)).find((assigned) => assigned !== undefined);
}

// ---------------------------------------------------------------------------------------------------------------
// The section's resources

/**
 * What a converter makes of one section: each entry resource followed by what it refers to, every resource once
 * (the same Medication, Location or organization met again is the resource already made; its first making counts).
 */
export class SectionResources {
  private readonly resources: FhirResource[] = [];
  private readonly entries: FhirResource[] = [];
  private readonly byKey = new Map<string, FhirResource>();
  private pending: FhirResource[] = [];
  private converted = 0;

  /** A resource an entry refers to (a Medication, a Practitioner): listed after the next entry. Returns its reference. */
  refer(resource: FhirResource, display?: string): Reference {
    const key = `${resource.resourceType}/${resource.id}`;
    if (!this.byKey.has(key)) {
      this.byKey.set(key, resource);
      this.pending.push(resource);
    }
    return { reference: key, ...(display !== undefined ? { display } : {}) };
  }

  /** A resource the Composition's section lists (a clinical statement made into a resource). */
  entry(resource: FhirResource): Reference {
    const key = `${resource.resourceType}/${resource.id}`;
    if (!this.byKey.has(key)) {
      this.byKey.set(key, resource);
      this.resources.push(resource);
      this.entries.push(resource);
    }
    for (const each of this.pending) this.resources.push(each);
    this.pending = [];
    return { reference: key };
  }

  /** Counts a clinical statement of the section's entries as converted. */
  count(statements = 1): void {
    this.converted += statements;
  }

  output(): SectionOutput {
    return { resources: [...this.resources, ...this.pending], entries: this.entries, converted: this.converted };
  }
}

/**
 * The parsed document (fast-xml-parser's object tree, as @medplum/ccda reads it) made ready for conversion, in one
 * walk that changes it in place:
 *
 * - Ids. @medplum/ccda gives each resource a random UUID unless the element carries an `<id root="UUID"/>` without an
 *   extension, which it takes as the resource id. Every element it makes a resource of therefore gets such an id,
 *   first among its ids, deterministic: from the element's own id (root, extension) when it has one, so that the
 *   same act or author in another document (or a resent one) is the same resource; else from the document id and
 *   the element's place in the document. The patient's is the id the HL7 v2 mappers give the same identifier.
 *   The converter leaves such UUID-only ids out of `identifier`, so the document's identifiers are unchanged.
 * - Times. The converter reads a time without a UTC offset as UTC and drops fractional seconds badly; CDA times
 *   without an offset are local to the sender. Each TS value gets the offset of the mapping's time zone at that
 *   instant (as HL7 v2 times do), fractions are dropped, and values that are not TS at all are removed (and
 *   reported). The converter also turns dates into midnight UTC date-times; which ones were dates is recorded, so
 *   the result can be given back its precision (DatePrecision).
 * - Shapes the converter reads unguarded: an observation without a templateId or statusCode, a custodian without
 *   its organization.
 */

import { isAnchorlineError } from '../../errors/index.ts';
import { deterministicId } from '../ids.ts';
import type { Hl7MappingOptions } from '../types.ts';
import { toFhirDateTime } from '../hl7v2/datatypes.ts';

type Node = Record<string, unknown>;

/** The elements @medplum/ccda makes a resource (or a reaction) from, and so reads an id of. */
const RESOURCE_ELEMENTS = new Set([
  'associatedEntity', 'act', 'substanceAdministration', 'observation', 'organizer', 'encounter', 'procedure',
  'assignedAuthor', 'assignedEntity', 'representedCustodianOrganization',
  // The header's encounter and its facility (header.ts makes an Encounter and a Location of them).
  'encompassingEncounter', 'healthCareFacility',
]);

/**
 * Elements holding nothing the walk changes (no element the converter makes a resource of, no time it reads): not
 * descended into. Narrative (`text`) is most of a document's markup.
 */
const LEAVES = new Set([
  '#text', 'text', 'id', 'templateId', 'code', 'value', 'addr', 'telecom', 'name', 'statusCode', 'realmCode', 'typeId',
  'confidentialityCode', 'languageCode', 'setId', 'versionNumber', 'routeCode', 'doseQuantity', 'rateQuantity', 'targetSiteCode',
  'methodCode', 'approachSiteCode', 'priorityCode', 'interpretationCode', 'administrativeGenderCode', 'maritalStatusCode',
  'religiousAffiliationCode', 'raceCode', 'sdtc:raceCode', 'ethnicGroupCode', 'languageCommunication', 'birthTime', 'birthplace',
  'playingEntity', 'manufacturedMaterial', 'referenceRange', 'functionCode',
  // Header participations nothing converts.
  'dataEnterer', 'informationRecipient', 'informant', 'providerOrganization', 'guardian', 'relatedDocument', 'authorization', 'inFulfillmentOf',
]);

/**
 * Header elements header.ts converts (the attesters, the encounter), walked after the body: ids made from the
 * document and an element's place count the elements walked before it, so walking these first would give every
 * body element without an id of its own a new id, and a document sent again would make its resources twice.
 */
const HEADER_AFTER_BODY = ['legalAuthenticator', 'authenticator', 'componentOf'] as const;
const HEADER_AFTER_BODY_SET: ReadonlySet<string> = new Set(HEADER_AFTER_BODY);

/**
 * Elements a sender may repeat (or CDA allows to repeat) that the converter copies into single-valued FHIR elements
 * (an address's city, a section's title, a name's family): a repeated one would come out as an array, which is not
 * valid FHIR there. The first counts.
 */
const SINGLE_VALUED = new Set(['city', 'state', 'postalCode', 'country', 'title', 'family']);

/** ClinicalDocument children CDA allows at most once, which the converter reads as single values. */
const HEADER_SINGLETONS = ['code', 'title', 'languageCode', 'confidentialityCode', 'setId', 'versionNumber', 'custodian', 'documentationOf', 'component'];

/** The clinical statements among them: an id repeated on another statement of the document is a sender's mistake. */
const STATEMENTS = new Set(['act', 'substanceAdministration', 'observation', 'organizer', 'encounter', 'procedure']);

/**
 * Elements holding a TS (or an IVL_TS with low/high/center) that the converter reads as date-times. (birthTime it
 * reads as a date, badly for a year or month; the Patient's birth date is taken from the value as sent instead.)
 */
const TIME_ELEMENTS = new Set(['effectiveTime', 'time']);

/**
 * The converter reads every TS as a date-time: a date becomes midnight UTC, a year-month loses its month
 * ('201403' -> '2014-01-01T00:00:00Z'). Dates are therefore handed to it in a form whose output says which date and
 * precision it was: a day as sent, a month as that month's first day at 00:00:02 UTC, a year as its first day at
 * 00:00:01 UTC. restore() maps such outputs back to the date as sent ('2014-03'), unless a real time of the document
 * came out as the same value (then it stays as it is: valid, if more precise than sent).
 */
export class DatePrecision {
  private readonly dates = new Map<string, string>();
  private readonly times = new Set<string>();

  /** The value to give the converter for a FHIR date (YYYY, YYYY-MM or YYYY-MM-DD), remembering what it becomes. */
  encodeDate(date: string): string {
    const [year, month, day] = date.split('-') as [string, string?, string?];
    if (day !== undefined) {
      this.dates.set(`${date}T00:00:00Z`, date);
      return `${year}${month}${day}`;
    }
    if (month !== undefined) {
      this.dates.set(`${year}-${month}-01T00:00:02Z`, date);
      return `${year}${month}01000002+0000`;
    }
    this.dates.set(`${year}-01-01T00:00:01Z`, date);
    return `${year}0101000001+0000`;
  }

  /** A real time the converter will output as `converted` (only those that could be mistaken for a date matter). */
  recordTime(converted: string): void {
    if (isDateForm(converted)) this.times.add(converted);
  }

  /** The value with its precision restored, or as it was. */
  restore(value: string): string {
    if (!isDateForm(value)) return value;
    const date = this.dates.get(value);
    return date === undefined || this.times.has(value) ? value : date;
  }
}

/** What the converter makes of an encoded date: YYYY-MM-DDT00:00:0[012]Z. */
function isDateForm(value: string): boolean {
  return value.length === 20 && value.startsWith('T00:00:0', 10) && value.endsWith('Z') && value.charCodeAt(18) <= 0x32;
}

/** What the converter drops of an element and the result needs back, by the id given to the element. */
export interface ElementFacts {
  /** An act's subject observation value code: for allergies, the SNOMED CT allergy or intolerance type. */
  allergyType?: string;
  /** A substanceAdministration's doseQuantity as sent. */
  doseQuantity?: { value?: string; unit?: string };
  /**
   * An observation's value (PQ, CO) and the bounds of each of its reference ranges that has an observationRange, as
   * sent: the converter reads them with parseFloat, which drops the precision FHIR keeps (`5.40` -> 5.4).
   */
  quantities?: { value?: string; ranges: Array<{ low?: string; high?: string }> };
  /**
   * An observation's effectiveTime sent as an interval (low, high) without a value of its own: the converter reads
   * an observation's value alone, so a habit "since 2005" would lose its dates. The element itself, whose times the
   * walk normalizes in place.
   */
  effectiveInterval?: Node;
  /**
   * A procedure's, encounter's (or act's) effectiveTime sent as a single value: the converter reads their times only
   * as an interval (low, high), so a procedure done on a day, or an encounter planned for one, would lose the day.
   * The element itself, normalized in place; read for a Procedure or an Encounter made of the element only.
   */
  effectiveValue?: Node;
  /**
   * An encounter of a planning mood (INT, RQO, PRP, PRMS, APT, ARQ: a Plan of Treatment's planned visit): the
   * converter gives it the status its statusCode maps to for a visit that happened (`active` -> in-progress).
   */
  planned?: true;
}

export interface NormalizeResult {
  facts: Map<string, ElementFacts>;
  /** Every resource id placed on an element (the patient's included). */
  ids: Set<string>;
  precision: DatePrecision;
  /** TS values removed because they were not times. */
  invalidTimes: number;
  /** Of those, the values whose day could still be read and was kept (dayOf). */
  timesKeptToTheDay: number;
  /** Clinical statements whose id repeats an earlier statement's, given an id of their own. */
  repeatedIds: number;
}

export interface NormalizeOptions {
  mapping: Hl7MappingOptions;
  /** The document's own key (its ClinicalDocument/id), which ids of elements without an id of their own derive from. */
  documentKey: readonly [string, string];
  /** The id of the Composition made of the document. */
  compositionId: string;
  /** The Patient id recordTarget/patientRole gets (the HL7 v2 mappers' id for its identifier, or the message's patient). */
  patientId: string;
}

/**
 * Header elements the converter reads as single values, made single: an element the document repeats (where CDA
 * allows it once, or where the converter reads only one) comes out of the parser as an array; the first counts.
 * Runs before anything reads the header.
 */
export function singleHeaderElements(ccda: Node): void {
  for (const name of HEADER_SINGLETONS) if (Array.isArray(ccda[name])) ccda[name] = asNodes(ccda[name])[0] ?? (ccda[name] as unknown[])[0];
  for (const recordTarget of asNodes(ccda.recordTarget)) if (Array.isArray(recordTarget.patientRole)) recordTarget.patientRole = asNodes(recordTarget.patientRole)[0];
}

export function normalizeDocument(ccda: Node, options: NormalizeOptions): NormalizeResult {
  const result: NormalizeResult = { facts: new Map(), ids: new Set([options.compositionId, options.patientId]), precision: new DatePrecision(), invalidTimes: 0, timesKeptToTheDay: 0, repeatedIds: 0 };
  let ordinal = 0;
  // Clinical statements whose own id an earlier one in this document already has (sample documents reuse one id
  // for every allergy): distinct statements, so distinct resources. People and organizations do repeat by design.
  const statementIds = new Set<string>();
  // An author or performer is named again and again; its id is hashed once.
  const ownIds = new Map<string, string>();
  const idFor = (element: Node, kind: string): string => {
    ordinal++;
    // A reference carries the id of the statement it points at: it is no statement of its own, and must not take
    // that id from its target when it comes first in the document.
    const own = isReference(element, kind) ? undefined : firstUsableId(element.id);
    let id: string | undefined;
    if (own !== undefined) {
      const root = own['@_root'] as string;
      const extension = (own['@_extension'] as string | undefined) ?? '';
      const key = `${root}\u0000${extension}`;
      id = ownIds.get(key);
      if (id === undefined) ownIds.set(key, (id = statementIdOf(root, extension)));
    }
    if (id !== undefined && STATEMENTS.has(kind)) {
      if (statementIds.has(id)) {
        id = undefined;
        result.repeatedIds++;
      } else {
        statementIds.add(id);
      }
    }
    id ??= deterministicId('CdaElement', options.documentKey[0], options.documentKey[1], kind, String(ordinal));
    result.ids.add(id);
    return id;
  };

  // Documents repeat their times (an encounter's date on each of its statements): each distinct value is read once.
  const times = new Map<string, ConvertedTime | undefined>();
  const convertTime = (value: string): ConvertedTime | undefined => {
    if (times.has(value)) return times.get(value);
    let converted: ConvertedTime | undefined;
    const common = commonTime(value);
    if (common !== undefined) converted = { fhir: common };
    else {
      try {
        const fhir = toFhirDateTime(value, 'effectiveTime', options.mapping.timeZone);
        if (fhir !== undefined) converted = { fhir };
      } catch (error) {
        if (!isAnchorlineError(error) || error.code !== 'ANCHORLINE_ERR_MAPPING_INVALID_VALUE') throw error;
        // A time whose hour or offset is garbled (`-5000`, `-500`, a digit too many) still names its day: kept to it.
        const day = dayOf(value);
        if (day !== undefined) converted = { fhir: day, keptToTheDay: true };
      }
    }
    times.set(value, converted);
    return converted;
  };

  const walk = (node: Node, skip?: ReadonlySet<string>): void => {
    for (const name of Object.keys(node)) {
      if (name.charCodeAt(0) === 0x40 /* @ */ || skip?.has(name)) continue;
      let value = node[name];
      if (value === null || typeof value !== 'object') continue;
      if (SINGLE_VALUED.has(name) && Array.isArray(value)) node[name] = value = value[0];
      if (name === 'addr' || name === 'name') {
        for (const part of asNodes(value)) singleValues(part);
        continue;
      }
      if (LEAVES.has(name) || value === null || typeof value !== 'object') continue;
      if (TIME_ELEMENTS.has(name)) {
        for (const time of asNodes(value)) normalizeTime(time, convertTime, result);
        continue;
      }
      const resource = RESOURCE_ELEMENTS.has(name);
      if (Array.isArray(value)) {
        for (const child of value) if (isNode(child)) visit(child, name, resource);
      } else {
        visit(value as Node, name, resource);
      }
    }
  };
  const visit = (element: Node, name: string, resource: boolean): void => {
    if (resource) {
      const id = idFor(element, name);
      prependId(element, id);
      if (name === 'observation') {
        observationShape(element);
        recordQuantityFacts(element, id, result.facts);
        recordIntervalFacts(element, id, result.facts);
      } else if (name === 'procedure') {
        // A procedure of a requesting mood was not performed: no time of its is a performance's.
        const mood = element['@_moodCode'];
        if (mood === undefined || mood === 'EVN') recordEffectiveValue(element, id, result.facts);
      }
      else if (name === 'encounter') {
        recordEffectiveValue(element, id, result.facts);
        recordPlannedEncounter(element, id, result.facts);
      }
      else if (name === 'act') {
        recordActFacts(element, id, result.facts);
        // An act can become a Procedure too (a Procedure Context, convert.ts).
        recordEffectiveValue(element, id, result.facts);
      }
      else if (name === 'substanceAdministration') recordDoseFacts(element, id, result.facts);
    }
    walk(element);
  };

  // The header elements the converter reads directly; the rest is reached by the walk.
  prependId(ccda, options.compositionId);
  const recordTarget = asNodes(ccda.recordTarget)[0];
  const patientRole = recordTarget === undefined ? undefined : asNodes(recordTarget.patientRole)[0];
  if (patientRole !== undefined) {
    prependId(patientRole, options.patientId);
    // The converter reads patientRole.patient unguarded, after its null flavour clean-up has removed a patient with
    // nothing but null flavours; a classCode (PSN, the only one CDA allows there) keeps it.
    if (Array.isArray(patientRole.patient)) patientRole.patient = asNodes(patientRole.patient)[0];
    const patient = asNodes(patientRole.patient)[0];
    if (patient === undefined) patientRole.patient = { '@_classCode': 'PSN' };
    else patient['@_classCode'] ??= 'PSN';
  }
  const custodian = ccda.custodian as Node | undefined;
  if (custodian !== undefined) {
    if (Array.isArray(custodian.assignedCustodian)) custodian.assignedCustodian = asNodes(custodian.assignedCustodian)[0];
    const assigned = custodian.assignedCustodian as Node | undefined;
    if (isNode(assigned) && Array.isArray(assigned.representedCustodianOrganization)) assigned.representedCustodianOrganization = asNodes(assigned.representedCustodianOrganization)[0];
  }
  if (custodian !== undefined && !isNode((custodian.assignedCustodian as Node | undefined)?.representedCustodianOrganization)) delete ccda.custodian;
  walk(ccda, HEADER_AFTER_BODY_SET);
  for (const name of HEADER_AFTER_BODY) if (ccda[name] !== undefined) walk({ [name]: ccda[name] });
  return result;
}

/** The text of an element that holds text (`#text` of a mixed element, or the string itself). */
export function textOf(value: unknown): string | undefined {
  if (typeof value === 'string') return value.trim() === '' ? undefined : value.trim();
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) return textOf((value as Node)['#text']);
  return undefined;
}

/**
 * An element that holds text (a title, an address or name part) made the string it holds (textOf),
 * or left out when it holds none. One sent with attributes (`<title mediaType="text/plain">`, `<city partType="CTY">`)
 * is parsed as an object, which the converter would copy into a FHIR string as it is.
 */
export function textElement(node: Node, name: string): void {
  const value = node[name];
  if (value === undefined || typeof value === 'string') return;
  const text = textOf(Array.isArray(value) ? value[0] : value);
  if (text === undefined) delete node[name];
  else node[name] = text;
}

/**
 * An address's or a name's parts the converter copies into single-valued FHIR elements, made single; and every part
 * made the text it holds. A part sent with attributes (`<city partType="CTY">Seoul</city>`, `<given qualifier="CL">`)
 * is parsed as an object, which the converter would copy into the FHIR string as it is; one with no text at all
 * (`<city nullFlavor="UNK"/>`) is left out.
 */
function singleValues(part: Node): void {
  for (const name of Object.keys(part)) {
    if (name.charCodeAt(0) === 0x40 /* @ */ || name === '#text') continue;
    if (SINGLE_VALUED.has(name) && Array.isArray(part[name])) part[name] = (part[name] as unknown[])[0];
    const value = part[name];
    if (Array.isArray(value)) {
      const texts = value.map(textOf).filter((text): text is string => text !== undefined);
      if (texts.length > 0) part[name] = texts;
      else delete part[name];
    } else if (value !== null && typeof value === 'object') textElement(part, name);
  }
}

/** Entry Reference (2.16.840.1.113883.10.20.22.4.122): an act that names another statement of the document by its id. */
export const ENTRY_REFERENCE = '2.16.840.1.113883.10.20.22.4.122';

/**
 * Whether a statement only points at another by its id: an Entry Reference, or a statement that says nothing but
 * its id (`<encounter classCode="ENC" moodCode="EVN"><id …/></encounter>` inside a problem or a result, naming the
 * visit the Encounters section describes). Such an element is no statement of its own: it neither takes its target's
 * id, which would rename the target when the reference comes first, nor counts as a repeat of it.
 */
function isReference(element: Node, kind: string): boolean {
  if (asNodes(element.templateId).some((templateId) => templateId['@_root'] === ENTRY_REFERENCE)) return true;
  // People and organizations are named by their id alone everywhere; only a clinical statement so named points away.
  if (!STATEMENTS.has(kind) || element.id === undefined) return false;
  for (const name of Object.keys(element)) if (name !== 'id' && name.charCodeAt(0) !== 0x40 /* @ */) return false;
  return true;
}

/**
 * The resource id a statement sent with the id (root, extension) is given (idFor), unless an earlier statement of the
 * document has that id already: what an Entry Reference's target is called, and what a repeat is told apart by.
 */
export function statementIdOf(root: string, extension: string): string {
  return deterministicId('CdaElement', root, extension);
}

/** The first id with a root and no nullFlavor. */
export function firstUsableId(ids: unknown): Node | undefined {
  if (!Array.isArray(ids)) return isNode(ids) && usable(ids) ? ids : undefined;
  for (const id of ids) if (isNode(id) && usable(id)) return id;
  return undefined;
}

function usable(id: Node): boolean {
  return typeof id['@_root'] === 'string' && id['@_root'] !== '' && id['@_nullFlavor'] === undefined;
}

export function asNodes(value: unknown): Node[] {
  if (Array.isArray(value)) return value.filter(isNode);
  return isNode(value) ? [value] : [];
}

function isNode(value: unknown): value is Node {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function prependId(element: Node, id: string): void {
  if (Array.isArray(element.id)) element.id.unshift({ '@_root': id });
  else element.id = isNode(element.id) ? [{ '@_root': id }, element.id] : [{ '@_root': id }];
}

/**
 * The converter reads `templateId[0]['@_root']` and (for goals) `statusCode['@_code']` of every entry observation
 * without checking they exist; its own null flavour clean-up removes ones that only carry a nullFlavor.
 */
function observationShape(observation: Node): void {
  const templateIds = asNodes(observation.templateId);
  if (!templateIds.some((templateId) => typeof templateId['@_root'] === 'string' && templateId['@_root'] !== '')) {
    observation.templateId = [{ '@_root': '' }, ...templateIds];
  }
  const statusCode = observation.statusCode as Node | undefined;
  if (!isNode(statusCode) || typeof statusCode['@_code'] !== 'string') observation.statusCode = { '@_code': 'active' };
}

/** A TS in FHIR form; `keptToTheDay` when only the day it begins with could be read. */
interface ConvertedTime {
  fhir: string;
  keptToTheDay?: true;
}

type TimeConverter = (value: string) => ConvertedTime | undefined;

/**
 * The day a value that is not a TS begins with, when it has a date and a time of day (YYYYMMDDHHMM and more, then
 * anything: a garbled offset such as `-5000` or `-500`, a digit too many) and those eight digits are a date. Nine or
 * ten digits are a mistyped date (`201102013`), whose first eight need not be the day meant: those are left out.
 */
function dayOf(value: string): string | undefined {
  if (!/^\d{12}/.test(value)) return undefined;
  return commonTime(value.slice(0, 8));
}

/** A date (YYYYMMDD), or a time to the minute or second with its UTC offset: most of what documents send. */
const COMMON_TIME = /^(\d{4})(\d{2})(\d{2})(?:(\d{2})(\d{2})(\d{2})?([+-]\d{2})(\d{2}))?$/;

/**
 * The FHIR form of a common TS, read without the general parser (which places times without an offset in a zone, a
 * costly lookup not needed here); undefined for anything else, including values out of range, which the general
 * parser then reads or refuses.
 */
function commonTime(value: string): string | undefined {
  const match = COMMON_TIME.exec(value);
  if (match === null) return undefined;
  const [, year, month, day, hour, minute, second = '00', offsetHours, offsetMinutes] = match as unknown as string[];
  const y = Number(year);
  const m = Number(month);
  const d = Number(day);
  if (y < 1 || m < 1 || m > 12 || d < 1 || d > new Date(Date.UTC(y, m, 0)).getUTCDate()) return undefined;
  const date = `${year}-${month}-${day}`;
  if (hour === undefined) return date;
  if (Number(hour) > 23 || Number(minute) > 59 || Number(second) > 59 || Number(offsetHours!.slice(1)) > 14 || Number(offsetMinutes) > 59) return undefined;
  return `${date}T${hour}:${minute}:${second}${offsetHours}:${offsetMinutes}`;
}

function normalizeTime(time: Node, convertTime: TimeConverter, result: NormalizeResult): void {
  normalizeTimeValue(time, convertTime, result);
  for (const part of ['low', 'high', 'center']) {
    const value = time[part];
    if (isNode(value)) normalizeTimeValue(value, convertTime, result);
  }
}

function normalizeTimeValue(holder: Node, convertTime: TimeConverter, result: NormalizeResult): void {
  const value = holder['@_value'];
  if (typeof value !== 'string') return;
  const read = convertTime(value);
  if (read === undefined) {
    delete holder['@_value'];
    result.invalidTimes++;
    return;
  }
  if (read.keptToTheDay) result.timesKeptToTheDay++;
  const converted = read.fhir;
  if (converted.length <= 10) {
    holder['@_value'] = result.precision.encodeDate(converted);
    return;
  }
  // FHIR form (seconds and offset always present) back to TS: the converter reads YYYYMMDDHHMMSS+ZZZZ correctly.
  const date = converted.slice(0, 10).replaceAll('-', '');
  const time = converted.slice(11, 19).replaceAll(':', '');
  const offset = converted.endsWith('Z') ? '+0000' : converted.slice(-6).replace(':', '');
  holder['@_value'] = `${date}${time}${offset}`;
  if (offset === '+0000' || offset === '-0000') result.precision.recordTime(`${converted.slice(0, 19)}Z`);
}

function recordActFacts(act: Node, id: string, facts: Map<string, ElementFacts>): void {
  const subject = asNodes(act.entryRelationship).find((relationship) => relationship['@_typeCode'] === 'SUBJ');
  const value = asNodes(asNodes(subject?.observation)[0]?.value)[0];
  if (typeof value?.['@_code'] === 'string') facts.set(id, { allergyType: value['@_code'] });
}

function recordIntervalFacts(observation: Node, id: string, facts: Map<string, ElementFacts>): void {
  const time = asNodes(observation.effectiveTime)[0];
  if (time === undefined || time['@_value'] !== undefined || (time.low === undefined && time.high === undefined)) return;
  facts.set(id, { ...facts.get(id), effectiveInterval: time });
}

/** Moods of an encounter that is not (yet) one that happened: intended, requested, proposed, appointed, asked for. */
const PLANNED_MOODS: ReadonlySet<string> = new Set(['INT', 'RQO', 'PRP', 'PRMS', 'APT', 'ARQ']);

function recordPlannedEncounter(encounter: Node, id: string, facts: Map<string, ElementFacts>): void {
  const mood = encounter['@_moodCode'];
  if (typeof mood === 'string' && PLANNED_MOODS.has(mood.trim())) facts.set(id, { ...facts.get(id), planned: true });
}

function recordEffectiveValue(statement: Node, id: string, facts: Map<string, ElementFacts>): void {
  const time = asNodes(statement.effectiveTime)[0];
  if (time === undefined || time['@_value'] === undefined) return;
  facts.set(id, { ...facts.get(id), effectiveValue: time });
}

function recordQuantityFacts(observation: Node, id: string, facts: Map<string, ElementFacts>): void {
  // The shapes the converter reads: value and a range's observationRange, value, low and high as single elements.
  const sent = (node: unknown): string | undefined => (isNode(node) && typeof node['@_value'] === 'string' ? node['@_value'] : undefined);
  const value = sent(observation.value);
  const ranges = asNodes(observation.referenceRange)
    .map((range) => range.observationRange)
    .filter(isNode)
    .map((range) => {
      const bounds = isNode(range.value) ? range.value : undefined;
      return { low: sent(bounds?.low), high: sent(bounds?.high) };
    });
  if (value === undefined && ranges.every((range) => range.low === undefined && range.high === undefined)) return;
  facts.set(id, { ...facts.get(id), quantities: { ...(value !== undefined ? { value } : {}), ranges } });
}

function recordDoseFacts(substanceAdministration: Node, id: string, facts: Map<string, ElementFacts>): void {
  const dose = asNodes(substanceAdministration.doseQuantity)[0];
  if (dose === undefined) return;
  const value = typeof dose['@_value'] === 'string' ? dose['@_value'] : undefined;
  const unit = typeof dose['@_unit'] === 'string' && dose['@_unit'] !== '' && dose['@_unit'] !== '1' ? dose['@_unit'] : undefined;
  facts.set(id, { doseQuantity: { ...(value !== undefined ? { value } : {}), ...(unit !== undefined ? { unit } : {}) } });
}

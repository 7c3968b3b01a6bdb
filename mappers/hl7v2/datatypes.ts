/**
 * HL7 v2 data types -> FHIR R4 data types.
 *
 * Each converter takes one repetition (components already unescaped by the parser) and returns the FHIR value, or
 * undefined when the repetition carries nothing FHIR can hold. Results never contain empty strings, arrays or
 * objects. A value that cannot be interpreted throws ANCHORLINE_ERR_MAPPING_INVALID_VALUE with the field as location
 * (e.g. `PID-7`); details name components, never values, because values are patient data.
 *
 * Component numbers follow HL7 v2.5.1, which later versions keep compatible for the components used here.
 */

import { HL7_NULL, componentOf, type Hl7Repetition } from '../../adapters/hl7v2/types.ts';
import { AnchorlineError } from '../../errors/index.ts';
import type { Hl7MappingOptions } from '../types.ts';

export interface Coding {
  system?: string;
  version?: string;
  code?: string;
  display?: string;
}

export interface CodeableConcept {
  coding?: Coding[];
  text?: string;
}

export interface Period {
  start?: string;
  end?: string;
}

export interface Identifier {
  type?: CodeableConcept;
  system?: string;
  value?: string;
  period?: Period;
}

export interface HumanName {
  use?: string;
  family?: string;
  given?: string[];
  prefix?: string[];
  suffix?: string[];
  period?: Period;
}

export interface Address {
  use?: string;
  type?: string;
  line?: string[];
  city?: string;
  district?: string;
  state?: string;
  postalCode?: string;
  country?: string;
  period?: Period;
}

export interface ContactPoint {
  system?: string;
  value?: string;
  use?: string;
}

export interface Reference {
  reference?: string;
  display?: string;
}

export const V2_0203_SYSTEM = 'http://terminology.hl7.org/CodeSystem/v2-0203';

/**
 * A code table (sender's code -> FHIR value), looked up with get(). A Map and not an object literal indexed by the
 * code, because the code is sender data: `table[code]` on a plain object finds Object.prototype members for codes
 * such as 'toString', 'constructor' or '__proto__' and puts a function or an object into the resource.
 */
export function codeTable<T>(entries: Readonly<Record<string, T>>): ReadonlyMap<string, T> {
  return new Map(Object.entries(entries));
}

// ---------------------------------------------------------------------------------------------------------------
// Values

/**
 * A component value as FHIR wants it: trimmed (senders pad fixed-width values), and '' for the HL7 explicit null,
 * which inside a component has no "remove" meaning of its own: draft semantics apply to whole elements, decided by
 * the caller from the field (see adt.ts).
 */
export function textOf(value: string): string {
  if (value === HL7_NULL) return '';
  return value.trim();
}

/** One component (1-based) of a repetition, as textOf() returns it. */
export function comp(repetition: Hl7Repetition | undefined, component: number, subcomponent = 1): string {
  return textOf(componentOf(repetition, component, subcomponent));
}

function invalid(location: string, detail: string): AnchorlineError {
  return new AnchorlineError('ANCHORLINE_ERR_MAPPING_INVALID_VALUE', `${location}: ${detail}`, { location });
}

/**
 * Removes undefined, '', [] and {} recursively, so that no converter output carries an empty FHIR element; null is
 * kept because at the top of a draft it means "remove this element".
 */
export function pruneEmpty<T>(value: T): T | undefined {
  if (value === null) return value;
  if (value === undefined || value === '') return undefined;
  if (Array.isArray(value)) {
    const items = value.map((item) => pruneEmpty(item)).filter((item) => item !== undefined);
    return (items.length > 0 ? items : undefined) as T | undefined;
  }
  if (typeof value === 'object') {
    const result: Record<string, unknown> = {};
    let kept = 0;
    for (const [key, element] of Object.entries(value as Record<string, unknown>)) {
      const pruned = pruneEmpty(element);
      if (pruned !== undefined) {
        result[key] = pruned;
        kept++;
      }
    }
    return (kept > 0 ? result : undefined) as T | undefined;
  }
  return value;
}

// ---------------------------------------------------------------------------------------------------------------
// TS / DTM / DT

/** DTM: YYYY[MM[DD[HH[MM[SS[.S[S[S[S]]]]]]]]][+/-ZZZZ]; each part needs the ones before it. */
const DTM_PATTERN = /^(\d{4})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:\.(\d{1,4}))?)?)?)?)?)?([+-]\d{4})?$/;

interface DtmParts {
  year: number;
  month?: number;
  day?: number;
  hour?: number;
  minute?: number;
  second?: number;
  /** Fraction digits as sent (1-4), without the dot. */
  fraction?: string;
  /** Offset as sent, in FHIR form (+09:00). */
  offset?: string;
}

function parseDtm(value: string, location: string): DtmParts {
  const match = DTM_PATTERN.exec(value);
  if (match === null) throw invalid(location, 'not an HL7 date/time (YYYY[MM[DD[HH[MM[SS[.S]]]]]][+/-ZZZZ])');
  const [, yearText, monthText, dayText, hourText, minuteText, secondText, fraction, offsetText] = match;
  const parts: DtmParts = { year: Number(yearText) };
  // FHIR's date grammar has no year 0000.
  if (parts.year < 1) throw invalid(location, 'year is out of range');
  if (monthText !== undefined) {
    parts.month = Number(monthText);
    if (parts.month < 1 || parts.month > 12) throw invalid(location, 'month is out of range');
  }
  if (dayText !== undefined) {
    parts.day = Number(dayText);
    if (parts.day < 1 || parts.day > daysInMonth(parts.year, parts.month!)) throw invalid(location, 'day is out of range');
  }
  if (hourText !== undefined) {
    parts.hour = Number(hourText);
    if (parts.hour > 23) throw invalid(location, 'hour is out of range');
  }
  if (minuteText !== undefined) {
    parts.minute = Number(minuteText);
    if (parts.minute > 59) throw invalid(location, 'minute is out of range');
  }
  if (secondText !== undefined) {
    parts.second = Number(secondText);
    // A leap second (60) cannot be placed on the time line to find a zone offset, and senders do not send them.
    if (parts.second > 59) throw invalid(location, 'second is out of range');
  }
  if (fraction !== undefined) parts.fraction = fraction;
  if (offsetText !== undefined) {
    const hours = Number(offsetText.slice(1, 3));
    const minutes = Number(offsetText.slice(3, 5));
    // FHIR allows offsets from -14:00 to +14:00.
    if (minutes > 59 || hours > 14 || (hours === 14 && minutes > 0)) throw invalid(location, 'UTC offset is out of range');
    parts.offset = `${offsetText[0]}${offsetText.slice(1, 3)}:${offsetText.slice(3, 5)}`;
  }
  return parts;
}

function daysInMonth(year: number, month: number): number {
  if (month === 2) return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28;
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
}

const pad2 = (n: number): string => String(n).padStart(2, '0');

/**
 * TS/DTM -> FHIR dateTime, keeping the precision sent: YYYY, YYYY-MM, YYYY-MM-DD, or a full time.
 *
 * FHIR has no hour- or minute-precision time and requires seconds and an offset once a time is given, so HHMM becomes
 * HH:MM:00. An offset sent is kept; a time without one is placed in `timeZone` (the sender's local time). An offset
 * sent on a date-only value is dropped: FHIR dates carry no zone.
 */
export function toFhirDateTime(value: string, location: string, timeZone: string): string | undefined {
  const trimmed = textOf(value);
  if (trimmed === '') return undefined;
  const parts = parseDtm(trimmed, location);
  const date = formatDate(parts);
  if (parts.hour === undefined) return date;
  const minute = parts.minute ?? 0;
  const second = parts.second ?? 0;
  const time = `${pad2(parts.hour)}:${pad2(minute)}:${pad2(second)}${parts.fraction === undefined ? '' : `.${parts.fraction}`}`;
  const offset = parts.offset ?? formatOffset(zoneOffsetSeconds(parts.year, parts.month!, parts.day!, parts.hour, minute, second, timeZone));
  return `${date}T${time}${offset}`;
}

/**
 * DT (or a TS/DTM sent where a date is wanted, as PID-7 is) -> FHIR date at the precision sent, up to the day. The
 * whole value is validated, time included; the date is the sender's calendar date, never shifted by a zone.
 */
export function toFhirDate(value: string, location: string): string | undefined {
  const trimmed = textOf(value);
  if (trimmed === '') return undefined;
  return formatDate(parseDtm(trimmed, location));
}

function formatDate(parts: DtmParts): string {
  let date = String(parts.year).padStart(4, '0');
  if (parts.month !== undefined) date += `-${pad2(parts.month)}`;
  if (parts.day !== undefined) date += `-${pad2(parts.day)}`;
  return date;
}

/** FHIR offsets have minute precision; historical zone offsets with seconds (local mean time) are rounded. */
function formatOffset(offsetSeconds: number): string {
  const sign = offsetSeconds < 0 ? '-' : '+';
  const totalMinutes = Math.round(Math.abs(offsetSeconds) / 60);
  return `${sign}${pad2(Math.floor(totalMinutes / 60))}:${pad2(totalMinutes % 60)}`;
}

/**
 * One formatter per zone, created on first use. A memo, not shared state: formatters are immutable and creating one
 * costs far more than a lookup.
 */
const offsetFormatters = new Map<string, Intl.DateTimeFormat>();

function offsetFormatter(timeZone: string): Intl.DateTimeFormat {
  let formatter = offsetFormatters.get(timeZone);
  if (formatter === undefined) {
    try {
      formatter = new Intl.DateTimeFormat('en-US', { timeZone, timeZoneName: 'longOffset' });
    } catch (error) {
      throw new AnchorlineError('ANCHORLINE_ERR_CONFIG_INVALID', `timeZone '${timeZone}' is not an IANA time zone`, { cause: error });
    }
    offsetFormatters.set(timeZone, formatter);
  }
  return formatter;
}

/** Throws ANCHORLINE_ERR_CONFIG_INVALID unless Intl knows the zone. */
export function assertTimeZone(timeZone: string): void {
  offsetFormatter(timeZone);
}

const OFFSET_NAME = /^GMT(?:([+-])(\d{1,2})(?::(\d{2}))?(?::(\d{2}))?)?$/;

/** The zone's UTC offset, in seconds, at one instant. */
function offsetSecondsAt(epochMs: number, timeZone: string): number {
  const name = offsetFormatter(timeZone)
    .formatToParts(epochMs)
    .find((part) => part.type === 'timeZoneName')?.value;
  const match = name === undefined ? null : OFFSET_NAME.exec(name);
  if (match === null) {
    // Intl's longOffset format is specified as GMT±hh:mm[:ss]; anything else means the runtime changed under us.
    throw new AnchorlineError('ANCHORLINE_ERR_INTERNAL', 'Intl returned an unrecognised time zone offset');
  }
  if (match[1] === undefined) return 0;
  const seconds = Number(match[2]) * 3600 + Number(match[3] ?? 0) * 60 + Number(match[4] ?? 0);
  return match[1] === '-' ? -seconds : seconds;
}

/**
 * The offset of a local wall-clock time in `timeZone`. Around a DST change a local time can exist twice (autumn) or
 * not at all (spring); like Temporal's 'compatible' disambiguation, the earlier instant is taken for a repeated
 * time, and the offset in force before the change for a skipped one (02:30 on a spring-forward night is read as
 * 02:30 standard time, i.e. 03:30 daylight time).
 */
function zoneOffsetSeconds(year: number, month: number, day: number, hour: number, minute: number, second: number, timeZone: string): number {
  const wall = new Date(0);
  // setUTCFullYear, unlike Date.UTC, does not map years 0-99 to 1900-1999.
  wall.setUTCFullYear(year, month - 1, day);
  wall.setUTCHours(hour, minute, second, 0);
  const wallMs = wall.getTime();
  const dayMs = 86_400_000;
  const before = offsetSecondsAt(wallMs - dayMs, timeZone);
  const after = offsetSecondsAt(wallMs + dayMs, timeZone);
  let chosen: number | undefined;
  for (const candidate of before === after ? [before] : [before, after]) {
    if (offsetSecondsAt(wallMs - candidate * 1000, timeZone) === candidate && (chosen === undefined || candidate > chosen)) {
      chosen = candidate;
    }
  }
  return chosen ?? before;
}

// ---------------------------------------------------------------------------------------------------------------
// XPN -> HumanName

/**
 * HL7 table 0200 (name type) -> FHIR name-use, after the HL7 v2-to-FHIR IG ConceptMap table-hl70200-to-name-use
 * (L, R official; D usual; M maiden; N nickname; MSK anonymous; TEMP, NAV temp; BAD old), plus S (coded pseudonym)
 * -> anonymous and NOUSE -> old from FHIR's own v2 name-use map. Codes the IG leaves unmapped (A alias/assigned,
 * B birth, C adopted, P partner, T tribal, U unspecified, ...) get no use: FHIR 'anonymous' is for privacy
 * pseudonyms and 'nickname' for informal names, and an alias is neither reliably.
 */
const NAME_USE = codeTable<string>({
  L: 'official',
  R: 'official',
  D: 'usual',
  M: 'maiden',
  N: 'nickname',
  S: 'anonymous',
  MSK: 'anonymous',
  TEMP: 'temp',
  NAV: 'temp',
  BAD: 'old',
  NOUSE: 'old',
});

/**
 * XPN: 1 family name (1.1 surname), 2 given, 3 further given names, 4 suffix, 5 prefix, 6 degree, 7 name type,
 * 12/13 effective/expiration date, 14 professional suffix. `defaultNameType` applies when XPN-7 is empty (PID-9
 * aliases are name type A by definition).
 */
export function toHumanName(repetition: Hl7Repetition, location: string, timeZone: string, defaultNameType = ''): HumanName | undefined {
  const nameType = comp(repetition, 7) || defaultNameType;
  const name: HumanName = {
    use: NAME_USE.get(nameType),
    family: comp(repetition, 1),
    given: [comp(repetition, 2), comp(repetition, 3)],
    prefix: [comp(repetition, 5)],
    suffix: [comp(repetition, 4), comp(repetition, 6), comp(repetition, 14)],
    period: {
      start: toFhirDateTime(comp(repetition, 12), location, timeZone),
      end: toFhirDateTime(comp(repetition, 13), location, timeZone),
    },
  };
  const pruned = pruneEmpty(name);
  // A use or a period alone names nobody.
  if (pruned === undefined || (pruned.family === undefined && pruned.given === undefined && pruned.prefix === undefined && pruned.suffix === undefined)) {
    return undefined;
  }
  return pruned;
}

// ---------------------------------------------------------------------------------------------------------------
// XAD -> Address

/**
 * HL7 table 0190 (address type) -> FHIR Address.use / Address.type. The v2-to-FHIR IG maps only M and SH (type
 * postal); the use mappings are ours and follow the FHIR definitions: H home, B/O work, C and V temp (a vacation
 * address is temporary), BA old, BI billing. Legal, birth and country-of-origin addresses have no FHIR use.
 */
const ADDRESS_USE = codeTable<string>({ H: 'home', B: 'work', O: 'work', C: 'temp', V: 'temp', BA: 'old', BI: 'billing' });
const ADDRESS_TYPE = codeTable<string>({ M: 'postal', SH: 'postal' });

/**
 * XAD: 1 street address (1.1 street or mailing address, 1.2 street name, 1.3 dwelling number), 2 other designation,
 * 3 city, 4 state or province, 5 postal code, 6 country, 7 address type, 9 county/parish, 13/14 effective/expiration.
 */
export function toAddress(repetition: Hl7Repetition, location: string, timeZone: string): Address | undefined {
  const addressType = comp(repetition, 7);
  const street = comp(repetition, 1, 1) || [comp(repetition, 1, 2), comp(repetition, 1, 3)].filter((part) => part !== '').join(' ');
  const address: Address = {
    use: ADDRESS_USE.get(addressType),
    type: ADDRESS_TYPE.get(addressType),
    line: [street, comp(repetition, 2)],
    city: comp(repetition, 3),
    district: comp(repetition, 9),
    state: comp(repetition, 4),
    postalCode: comp(repetition, 5),
    country: comp(repetition, 6),
    period: {
      start: toFhirDateTime(comp(repetition, 13), location, timeZone),
      end: toFhirDateTime(comp(repetition, 14), location, timeZone),
    },
  };
  const pruned = pruneEmpty(address);
  if (pruned === undefined) return undefined;
  const { use: _use, type: _type, period: _period, ...place } = pruned;
  // Without any part of the place itself there is no address, only its labels.
  return Object.keys(place).length > 0 ? pruned : undefined;
}

// ---------------------------------------------------------------------------------------------------------------
// XTN -> ContactPoint

/**
 * HL7 table 0201 (telecommunication use) -> FHIR ContactPoint.use: PRN home, WPN work, PRS mobile as in the
 * v2-to-FHIR IG ConceptMap table-hl70201-to-contact-point-use; ORN (other residence) is also a home number and VHN
 * (vacation home) a temporary one. NET and BPN select the system (email, pager) instead of a use.
 */
const TELECOM_USE = codeTable<string>({ PRN: 'home', ORN: 'home', WPN: 'work', PRS: 'mobile', VHN: 'temp' });

/**
 * HL7 table 0202 (telecommunication equipment type) -> FHIR ContactPoint.system. CP (cellular) is a phone whose use
 * is mobile, whatever XTN-2 says: FHIR has no separate system for it.
 */
const TELECOM_SYSTEM = codeTable<string>({
  PH: 'phone',
  CP: 'phone',
  SAT: 'phone',
  FX: 'fax',
  BP: 'pager',
  Internet: 'email',
  'X.400': 'email',
  MD: 'other',
  TDD: 'other',
  TTY: 'other',
});

/**
 * XTN: 1 number as text, 2 use code, 3 equipment type, 4 email address, 5 country code, 6 area code, 7 local number,
 * 8 extension, 12 unformatted number. `defaultUse` applies when XTN-2 gives no use (PID-13 home, PID-14 work).
 */
export function toContactPoint(repetition: Hl7Repetition, defaultUse?: string): ContactPoint | undefined {
  const useCode = comp(repetition, 2);
  const equipment = comp(repetition, 3);
  const system = TELECOM_SYSTEM.get(equipment) ?? (useCode === 'NET' ? 'email' : useCode === 'BPN' ? 'pager' : 'phone');
  const value = system === 'email' ? comp(repetition, 4) || comp(repetition, 1) : comp(repetition, 1) || comp(repetition, 12) || assembledNumber(repetition);
  if (value === '') return undefined;
  // Codes without a use of their own (NET, BPN, EMR, ...) still belong to the field's home or work list.
  const use = equipment === 'CP' ? 'mobile' : (TELECOM_USE.get(useCode) ?? defaultUse);
  return pruneEmpty<ContactPoint>({ system, value, use });
}

function assembledNumber(repetition: Hl7Repetition): string {
  const country = comp(repetition, 5);
  const number = [country === '' ? '' : `+${country}`, comp(repetition, 6), comp(repetition, 7)].filter((part) => part !== '').join(' ');
  if (number === '') return '';
  const extension = comp(repetition, 8);
  return extension === '' ? number : `${number} ext. ${extension}`;
}

// ---------------------------------------------------------------------------------------------------------------
// HD / CX -> Identifier

/** An assigning authority (HD): from CX-4 subcomponents, or from a field such as MSH-4 sending facility. */
export interface AssigningAuthority {
  namespace: string;
  universalId: string;
  universalIdType: string;
}

/** HD carried in one component as subcomponents (CX-4, PL-4). */
export function authorityFromComponent(repetition: Hl7Repetition, component: number): AssigningAuthority {
  return {
    namespace: comp(repetition, component, 1),
    universalId: comp(repetition, component, 2),
    universalIdType: comp(repetition, component, 3),
  };
}

/** HD carried as a field's components (MSH-4 sending facility). */
export function authorityFromField(repetition: Hl7Repetition | undefined): AssigningAuthority {
  return { namespace: comp(repetition, 1), universalId: comp(repetition, 2), universalIdType: comp(repetition, 3) };
}

export function isEmptyAuthority(authority: AssigningAuthority): boolean {
  return authority.namespace === '' && authority.universalId === '';
}

const OID = /^[0-2](\.(0|[1-9]\d*))+$/;
const UUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
const ABSOLUTE_URI = /^[A-Za-z][A-Za-z0-9+.-]*:\S+$/;

/**
 * The identifier system for an assigning authority: an ISO OID universal id -> urn:oid:<oid> (UUID -> urn:uuid:,
 * URI as is); else the namespace looked up in options.identifierSystems; else
 * urn:anchorline:authority:<namespace, URI-encoded>. A universal id of another type (DNS, CLIA, ...) without a
 * namespace is used as the key itself. Undefined when the authority is empty.
 */
export function identifierSystem(authority: AssigningAuthority, location: string, options: Hl7MappingOptions): string | undefined {
  const { namespace, universalId } = authority;
  const universalIdType = authority.universalIdType.toUpperCase();
  if (universalId !== '') {
    if (universalIdType === 'ISO') {
      // A malformed OID would silently move every identifier of this authority to a different system (and patient).
      if (!OID.test(universalId)) throw invalid(location, 'assigning authority universal id of type ISO is not an OID');
      return `urn:oid:${universalId}`;
    }
    if (universalIdType === 'UUID') {
      if (!UUID.test(universalId)) throw invalid(location, 'assigning authority universal id of type UUID is not a UUID');
      return `urn:uuid:${universalId.toLowerCase()}`;
    }
    if (universalIdType === 'URI') {
      if (!ABSOLUTE_URI.test(universalId)) throw invalid(location, 'assigning authority universal id of type URI is not an absolute URI');
      return universalId;
    }
  }
  const key = namespace || universalId;
  if (key === '') return undefined;
  // Own keys only: a namespace such as 'constructor' must not find Object.prototype members.
  if (Object.hasOwn(options.identifierSystems, key)) return options.identifierSystems[key];
  return `urn:anchorline:authority:${encodeURIComponent(key)}`;
}

/**
 * CX: 1 id, 4 assigning authority (HD), 5 identifier type (table 0203), 7/8 effective/expiration date. When CX-4 is
 * empty the identifier takes `fallbackAuthority` (the sending facility): local ids such as MRNs are only unique
 * within the facility that issued them.
 */
export function toIdentifier(
  repetition: Hl7Repetition,
  location: string,
  options: Hl7MappingOptions,
  fallbackAuthority?: AssigningAuthority,
): Identifier | undefined {
  const value = comp(repetition, 1);
  if (value === '') return undefined;
  const ownAuthority = authorityFromComponent(repetition, 4);
  const authority = isEmptyAuthority(ownAuthority) && fallbackAuthority !== undefined ? fallbackAuthority : ownAuthority;
  const typeCode = comp(repetition, 5);
  return pruneEmpty<Identifier>({
    type: typeCode === '' ? undefined : { coding: [{ system: V2_0203_SYSTEM, code: typeCode }] },
    system: identifierSystem(authority, location, options),
    value,
    period: {
      start: toFhirDateTime(comp(repetition, 7), location, options.timeZone),
      end: toFhirDateTime(comp(repetition, 8), location, options.timeZone),
    },
  });
}

// ---------------------------------------------------------------------------------------------------------------
// CE / CWE -> CodeableConcept

/**
 * CE-3/CWE-3 coding system names with a FHIR system URI. Everything else, including HL7nnnn names, is treated as
 * local: user-defined tables share the HL7nnnn naming but have no published code system, so the name alone does not
 * tell us the codes are HL7's. Converters that know a field's table is HL7-defined use its URI directly (CX-5).
 */
const KNOWN_CODE_SYSTEMS = codeTable<string>({
  LN: 'http://loinc.org',
  SCT: 'http://snomed.info/sct',
  I10: 'http://hl7.org/fhir/sid/icd-10',
  I9C: 'http://hl7.org/fhir/sid/icd-9-cm',
  UCUM: 'http://unitsofmeasure.org',
  RXNORM: 'http://www.nlm.nih.gov/research/umls/rxnorm',
});

/** The system URI for a CE-3 coding system name: a known system, or `<localCodeSystemBase>/<name>`. */
export function codeSystemUri(name: string, options: Hl7MappingOptions): string {
  return KNOWN_CODE_SYSTEMS.get(name) ?? localCodeSystem(name, options);
}

export function localCodeSystem(name: string, options: Hl7MappingOptions): string {
  return `${options.localCodeSystemBase}/${encodeURIComponent(name)}`;
}

/**
 * CE/CWE: 1 code, 2 text, 3 coding system, 4-6 alternate code/text/system, 7/8 system versions, 9 original text.
 * Each triplet becomes a coding; a triplet without a system name is local to `defaultSystemName` (the field's
 * table, e.g. HL70296). Original text (or the text of a value sent without a code) becomes CodeableConcept.text.
 */
export function toCodeableConcept(repetition: Hl7Repetition, options: Hl7MappingOptions, defaultSystemName: string): CodeableConcept | undefined {
  const codings: Coding[] = [];
  for (const [code, display, systemName, version] of [
    [comp(repetition, 1), comp(repetition, 2), comp(repetition, 3), comp(repetition, 7)],
    [comp(repetition, 4), comp(repetition, 5), comp(repetition, 6), comp(repetition, 8)],
  ] as const) {
    if (code === '') continue;
    codings.push(
      pruneEmpty<Coding>({ system: systemName === '' ? localCodeSystem(defaultSystemName, options) : codeSystemUri(systemName, options), version, code, display })!,
    );
  }
  const text = comp(repetition, 9) || (codings.length === 0 ? comp(repetition, 2) : '');
  return pruneEmpty<CodeableConcept>({ coding: codings, text });
}

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

import { HL7_NULL, componentOf, type Hl7Repetition } from '../../formats/hl7v2/index.ts';
import { AnchorlineError } from '../../errors/index.ts';
import type { Hl7MappingOptions } from '../types.ts';
import { currentIssues, degrade, reportIssue } from '../issues.ts';
import { decimalFromLiteral, isLosslessNumber, type FhirDecimal } from '../fhir-decimal.ts';
import { BoundedMemo } from '../memo.ts';

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

/**
 * The value a mapper reads for a code sent in a field coded in HL7 table `table` (e.g. 'HL70001' for PID-8): the
 * config's value map for the table turns a sender's own code into the one the mapper knows ('1' -> 'M'); a value
 * the map does not list, or a table without a map, is read as sent. Keys are matched exactly against the value as
 * comp() returns it (trimmed), before any case folding the field's own table applies.
 */
export function mappedValue(options: Hl7MappingOptions, table: string, value: string): string {
  const maps = options.valueMaps;
  // Own keys only: a value such as 'constructor' must not find Object.prototype members.
  if (maps === undefined || !Object.hasOwn(maps, table)) return value;
  const map = maps[table]!;
  return Object.hasOwn(map, value) ? map[value]! : value;
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
  if (typeof value !== 'object') return value;
  // Plain loops rather than map/filter and Object.entries: this runs on every element of every draft, a few hundred
  // times per message, and the intermediate arrays cost more than the pruning itself.
  if (Array.isArray(value)) {
    const items: unknown[] = [];
    for (let index = 0; index < value.length; index++) {
      const pruned = pruneEmpty(value[index] as unknown);
      if (pruned !== undefined) items.push(pruned);
    }
    return (items.length > 0 ? items : undefined) as T | undefined;
  }
  // A decimal kept as sent (`5.40`) is a value, not an element to prune and rebuild.
  if (isLosslessNumber(value)) return value;
  const result: Record<string, unknown> = {};
  let kept = 0;
  const elements = value as Record<string, unknown>;
  // for-in rather than Object.keys: the converters build plain objects, which have no enumerable inherited members.
  for (const key in elements) {
    const pruned = pruneEmpty(elements[key]);
    if (pruned !== undefined) {
      result[key] = pruned;
      kept++;
    }
  }
  return (kept > 0 ? result : undefined) as T | undefined;
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

/** Digits only, more of them than DTM has before a fraction or an odd count (9 or more), with an offset or not. */
const OVERLONG_DTM = /^(\d{9,})([+-]\d{4})?$/;

/** The precisions an overlong value is read to, longest first (a day at the least), by their digit counts. */
const OVERLONG_PRECISIONS: ReadonlyArray<[digits: number, name: string]> = [[14, 'second'], [12, 'minute'], [10, 'hour'], [8, 'day']];

interface DtmRead {
  parts: DtmParts;
  /** For an overlong value: how many digits it has, the precision read, and how many digits after it were left out. */
  overlong?: { digits: number; precision: string; leftOut: number };
}

/**
 * parseDtm, and for a value of digits that is longer than DTM or cut between two of its parts (`2014121914001`,
 * `2020051401000000`, `2018080800000000000`: written so by some senders' generators, and seen in public health test
 * messages), the longest prefix at one of DTM's precisions, a day at the least, that is a valid date/time, with the
 * offset sent. The date and time are what the sender wrote before the stray digits, so they are kept rather than the
 * whole value dropped; the caller reports what was left out. A value whose day does not read (a digit added in
 * front: `220241021055726`) is refused as before: nothing in it says which digits to trust. A value of a length DTM
 * has whose parts are out of range (`2024081524`) is refused too: it is not overlong, it is wrong.
 */
function readDtm(value: string, location: string): DtmRead {
  try {
    return { parts: parseDtm(value, location) };
  } catch (error) {
    const overlong = OVERLONG_DTM.exec(value);
    if (overlong === null) throw error;
    const digits = overlong[1]!;
    const offset = overlong[2] ?? '';
    if (digits.length <= 14 && digits.length % 2 === 0) throw error;
    for (const [length, precision] of OVERLONG_PRECISIONS) {
      if (digits.length <= length) continue;
      try {
        return { parts: parseDtm(digits.slice(0, length) + offset, location), overlong: { digits: digits.length, precision, leftOut: digits.length - length } };
      } catch {
        // Not valid to this precision: try the next shorter one.
      }
    }
    throw error;
  }
}

/** What an overlong value was read as (readDtm), with the issue that says what was left out. */
function readOverlong<T>(read: T, sent: string, location: string, overlong: NonNullable<DtmRead['overlong']>): T {
  const detail = `${overlong.digits} digits, which no HL7 date/time has (YYYY[MM[DD[HH[MM[SS[.S]]]]]][+/-ZZZZ]); read to the ${overlong.precision}, the last ${overlong.leftOut} left out`;
  return degrade(invalid(location, detail), 'ANCHORLINE_ISSUE_INVALID_VALUE', read, sent);
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
  const key = `${timeZone}\u0000${trimmed}`;
  const known = readTimes.get(key);
  if (known !== undefined) return known;
  const { parts, overlong } = readDtm(trimmed, location);
  const time = fhirDateTime(parts, timeZone);
  // An overlong value is not remembered: each read of it reports its issue.
  if (overlong !== undefined) return readOverlong(time, trimmed, location, overlong);
  readTimes.set(key, time);
  return time;
}

/** Times remembered per generation of the memo (mappers/memo.ts). */
const TIMES_PER_GENERATION = 500;

/**
 * Times already read, by zone and text. A memo of a pure function, not shared state: one message reads the same few
 * times again and again (EVN-6, EVN-2 or MSH-7 for each resource that records the event time, MSH-7 for the
 * Provenance and for the order of messages), a couple of dozen reads of three or four values. Only readable times are
 * remembered: an unreadable one throws again, naming the field of each read.
 */
const readTimes = new BoundedMemo<string, string>(TIMES_PER_GENERATION);

function fhirDateTime(parts: DtmParts, timeZone: string): string {
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
  const { parts, overlong } = readDtm(trimmed, location);
  const date = formatDate(parts);
  return overlong === undefined ? date : readOverlong(date, trimmed, location, overlong);
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

/**
 * Offsets already looked up, by zone and UTC minute. Intl's formatter is most of the cost of reading a time, and one
 * message reads the same few instants several times (MSH-7, EVN-2, the Provenance). Only instants from 1973 on are
 * remembered by the minute: every UTC offset in use since then is a whole number of minutes, so every transition
 * falls on a whole UTC minute and a minute never straddles one (Monrovia's -00:44:30, the last odd offset, ended in
 * January 1972). Older instants are looked up each time.
 */
const offsetsByMinute = new Map<string, number>();
const MAX_REMEMBERED_OFFSETS = 50_000;
const FIRST_WHOLE_MINUTE_MS = Date.UTC(1973, 0, 1);

/** The zone's UTC offset, in seconds, at one instant. */
function offsetSecondsAt(epochMs: number, timeZone: string): number {
  if (epochMs < FIRST_WHOLE_MINUTE_MS) return lookUpOffsetSeconds(epochMs, timeZone);
  const key = `${timeZone}|${Math.floor(epochMs / 60_000)}`;
  const known = offsetsByMinute.get(key);
  if (known !== undefined) return known;
  const offset = lookUpOffsetSeconds(epochMs, timeZone);
  if (offsetsByMinute.size >= MAX_REMEMBERED_OFFSETS) offsetsByMinute.clear();
  offsetsByMinute.set(key, offset);
  return offset;
}

function lookUpOffsetSeconds(epochMs: number, timeZone: string): number {
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

/** The authority of last resort: a sender that names itself nowhere (message, config or connection). */
export const UNIDENTIFIED_SENDER: AssigningAuthority = Object.freeze({ namespace: 'unidentified-sender', universalId: '', universalIdType: '' });

/**
 * The authority identifiers take when neither they nor their sender name one (no CX-4 and no MSH-4 or MSH-3; no
 * Issuer of Patient ID and no AE title): the source's configured default authority (mapping config
 * `defaultAuthority`), else the source the sender's credential or connection is bound to, else UNIDENTIFIED_SENDER,
 * which every such sender shares. `from` says which, for the issue the caller records.
 */
export function configuredAuthority(options: Hl7MappingOptions): { authority: AssigningAuthority; from: string } {
  const configured = options.defaultAuthority ?? '';
  if (configured !== '') return { authority: { namespace: configured, universalId: '', universalIdType: '' }, from: "the source's default authority" };
  const bound = options.boundSource ?? '';
  if (bound !== '') return { authority: { namespace: bound, universalId: '', universalIdType: '' }, from: 'the bound source' };
  return { authority: UNIDENTIFIED_SENDER, from: 'the authority of senders that name themselves nowhere' };
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
const OID_URI = /^urn:oid:([0-2](?:\.(?:0|[1-9]\d*))+)$/i;
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
    if (universalIdType === 'ISO' && OID.test(universalId)) return `urn:oid:${universalId}`;
    // Some senders write the OID in its URI form (urn:oid:1.2.840.114350...): the same authority as the bare OID, so
    // the same system, or one patient would be two.
    const oidUri = universalIdType === 'ISO' ? OID_URI.exec(universalId) : null;
    if (oidUri !== null) {
      reportIssue({ severity: 'information', code: 'ANCHORLINE_ISSUE_INVALID_VALUE', location, detail: `${location}: assigning authority universal id of type ISO is an OID written as a URI; read as the OID`, value: universalId });
      return `urn:oid:${oidUri[1]!}`;
    }
    if (universalIdType === 'ISO') {
      // A malformed OID must not become a urn:oid: system; where issues are collected, the authority is read by its
      // namespace (else the universal id as sent) like an authority without a type, and the message says so.
      if (currentIssues() === undefined) throw invalid(location, 'assigning authority universal id of type ISO is not an OID');
      reportIssue({ severity: 'warning', code: 'ANCHORLINE_ISSUE_INVALID_VALUE', location, detail: `${location}: assigning authority universal id of type ISO is not an OID; read as a local authority name`, value: universalId });
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

/**
 * The system URI for a CE-3 coding system name: the configured one (options.codeSystems), a known system, or
 * `<localCodeSystemBase>/<name>`.
 */
export function codeSystemUri(name: string, options: Hl7MappingOptions): string {
  // Own keys only: a name such as 'constructor' must not find Object.prototype members.
  const configured = options.codeSystems;
  if (configured !== undefined && Object.hasOwn(configured, name)) return configured[name]!;
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
  return toCodeableConceptWith(repetition, (systemName) =>
    systemName === '' ? localCodeSystem(defaultSystemName, options) : codeSystemUri(systemName, options),
  );
}

/**
 * CE/CWE read as toCodeableConcept describes, with each triplet's system URI chosen by `systemFor` from the coding
 * system name sent with it ('' when none was). The variants below, and fields with a vocabulary of their own (DG1-3),
 * differ only in that choice.
 */
export function toCodeableConceptWith(repetition: Hl7Repetition, systemFor: (systemName: string) => string): CodeableConcept | undefined {
  const codings: Coding[] = [];
  for (const [code, display, systemName, version] of [
    [comp(repetition, 1), comp(repetition, 2), comp(repetition, 3), comp(repetition, 7)],
    [comp(repetition, 4), comp(repetition, 5), comp(repetition, 6), comp(repetition, 8)],
  ] as const) {
    if (code === '') continue;
    // A FHIR code is runs of non-space characters separated by single spaces; a sender's code with tabs or runs of
    // spaces inside it is read with them made single (it is the same code to every reader who sees it).
    codings.push(pruneEmpty<Coding>({ system: systemFor(systemName), version, code: code.replace(/\s+/g, ' '), display })!);
  }
  const text = comp(repetition, 9) || (codings.length === 0 ? comp(repetition, 2) : '');
  return pruneEmpty<CodeableConcept>({ coding: codings, text });
}

/**
 * The sender's CodeableConcept with the standard coding its code maps to put first (what FHIR consumers look for),
 * the sender's own coding kept beside it; the sender's alone when the code maps to nothing.
 */
export function withStandardCoding(sent: CodeableConcept | undefined, standard: Coding | undefined): CodeableConcept | undefined {
  if (sent === undefined) return undefined;
  return standard === undefined ? sent : { ...sent, coding: [standard, ...(sent.coding ?? [])] };
}

// ---------------------------------------------------------------------------------------------------------------
// Converters for the order, result, scheduling, immunization, document and pharmacy mappers

/** The published code system of an HL7-defined v2 table: v2TableSystem('0074') -> .../CodeSystem/v2-0074. */
export function v2TableSystem(table: string): string {
  return `http://terminology.hl7.org/CodeSystem/v2-${table}`;
}

/**
 * CE/CWE as toCodeableConcept, with coding-system names this field knows beyond the shared ones: `systems` maps a
 * CE-3 name (or `defaultSystemName`, used for triplets sent without one) to its URI. Fields coded in an HL7-defined
 * table pass the table's published system here (HL70487 -> v2-0487); fields with their own vocabulary pass it too
 * (CVX). Names not in `systems` resolve as in toCodeableConcept.
 */
export function toCodeableConceptIn(
  repetition: Hl7Repetition,
  options: Hl7MappingOptions,
  defaultSystemName: string,
  systems: ReadonlyMap<string, string>,
): CodeableConcept | undefined {
  return toCodeableConceptWith(repetition, (sentSystemName) => {
    const systemName = sentSystemName || defaultSystemName;
    return systems.get(systemName) ?? (sentSystemName === '' ? localCodeSystem(defaultSystemName, options) : codeSystemUri(systemName, options));
  });
}

/**
 * A coding system map for a field coded in an HL7-defined table: the table's name (HL7nnnn) -> its published system.
 * Only for tables HL7 defines: codes of user-defined tables are the sender's own, whatever the table is called.
 */
export function hl7TableSystems(table: string): ReadonlyMap<string, string> {
  return new Map([[`HL7${table}`, v2TableSystem(table)]]);
}

// ---------------------------------------------------------------------------------------------------------------
// EI -> Identifier

/** EI: entity identifier, namespace id, universal id, universal id type. */
export interface EntityIdentifier {
  id: string;
  authority: AssigningAuthority;
}

/** EI carried as a field's components (OBR-2, ORC-3, TXA-12). */
export function entityIdentifierOf(repetition: Hl7Repetition | undefined): EntityIdentifier {
  return {
    id: comp(repetition, 1),
    authority: { namespace: comp(repetition, 2), universalId: comp(repetition, 3), universalIdType: comp(repetition, 4) },
  };
}

/** EI carried in one component as subcomponents (the placer and filler halves of EIP, SPM-2). */
export function entityIdentifierIn(repetition: Hl7Repetition | undefined, component: number): EntityIdentifier {
  return {
    id: comp(repetition, component, 1),
    authority: {
      namespace: comp(repetition, component, 2),
      universalId: comp(repetition, component, 3),
      universalIdType: comp(repetition, component, 4),
    },
  };
}

/**
 * EI -> Identifier, typed with a v2-0203 code when given (PLAC, FILL). An EI without a namespace or universal id
 * takes `fallbackAuthority` (the sending facility), as CX does in toIdentifier. Undefined without an entity id.
 */
export function toEntityIdentifier(
  ei: EntityIdentifier,
  location: string,
  options: Hl7MappingOptions,
  fallbackAuthority?: AssigningAuthority,
  typeCode?: string,
): Identifier | undefined {
  if (ei.id === '') return undefined;
  const authority = isEmptyAuthority(ei.authority) && fallbackAuthority !== undefined ? fallbackAuthority : ei.authority;
  return pruneEmpty<Identifier>({
    type: typeCode === undefined ? undefined : { coding: [{ system: V2_0203_SYSTEM, code: typeCode }] },
    system: identifierSystem(authority, location, options),
    value: ei.id,
  });
}

// ---------------------------------------------------------------------------------------------------------------
// XCN -> display

/** Given names, family name and affixes as one display; name assembly order F puts the family name first (Korean names). */
function personDisplay(parts: { family: string; given: string[]; prefix: string; suffix: string; degree: string; familyFirst: boolean }): string | undefined {
  const ordered = parts.familyFirst ? [parts.family, ...parts.given] : [...parts.given, parts.family];
  const words = [parts.prefix, ...ordered, parts.suffix, parts.degree].filter((word) => word !== '');
  return words.length === 0 ? undefined : words.join(' ');
}

/**
 * XCN-2 family, 3 given, 4 further given, 5 suffix, 6 prefix, 7 degree as one display; XCN-18 name assembly order F
 * (family first, as Korean and other East Asian names are written) puts the family name first. Undefined when the
 * repetition has no name.
 */
export function toPersonDisplay(repetition: Hl7Repetition): string | undefined {
  return personDisplay({
    family: comp(repetition, 2, 1),
    given: [comp(repetition, 3), comp(repetition, 4)],
    suffix: comp(repetition, 5),
    prefix: comp(repetition, 6),
    degree: comp(repetition, 7),
    familyFirst: comp(repetition, 18) === 'F',
  });
}

// ---------------------------------------------------------------------------------------------------------------
// PL -> display

/**
 * PL point of care ^ room ^ bed, trailing empty parts dropped, as the display of a location reference (directory.ts
 * locationReference): the sender's bed, readable, and the same text Encounter.location entries had before they
 * referred to Locations, so that old and new entries match.
 */
export function toLocationDisplay(repetition: Hl7Repetition | undefined): string | undefined {
  const parts = [comp(repetition, 1), comp(repetition, 2), comp(repetition, 3)];
  while (parts.length > 0 && parts[parts.length - 1] === '') parts.pop();
  return parts.length === 0 ? undefined : parts.join('^');
}

// ---------------------------------------------------------------------------------------------------------------
// NM / CQ / units -> Quantity

export const UCUM_SYSTEM = 'http://unitsofmeasure.org';

export interface Quantity {
  /** As sent: `5.40` keeps its trailing zero (see toFhirDecimal). */
  value?: FhirDecimal;
  comparator?: string;
  unit?: string;
  system?: string;
  code?: string;
}

export type QuantityUnit = Pick<Quantity, 'unit' | 'system' | 'code'>;

/** NM: an optional sign, digits and an optional decimal point (HL7 v2.5.1 section 2.A.47). */
const NUMERIC = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)$/;

/**
 * NM -> a JavaScript number, undefined when empty: for values the mappers compute with (a duration, a count of
 * refills). A FHIR decimal element takes toFhirDecimal, which keeps the precision sent.
 */
export function toDecimal(text: string, location: string): number | undefined {
  const trimmed = textOf(text);
  if (trimmed === '') return undefined;
  const value = NUMERIC.test(trimmed) ? Number(trimmed) : Number.NaN;
  if (!Number.isFinite(value)) throw invalid(location, 'not an HL7 numeric (NM) value');
  // -0 has no FHIR meaning different from 0, and JSON would write it as 0 anyway.
  return value === 0 ? 0 : value;
}

/**
 * NM -> FHIR decimal, undefined when empty, with the precision and digits sent (FHIR R4: a decimal's precision is
 * significant): `5.40` stays `5.40`, `12345678901234567890` keeps every digit (a LosslessNumber; see
 * decimalFromLiteral in ../fhir-decimal.ts for the little it normalizes). Values a double cannot reach (more than 308
 * integer digits) are refused, as before, and so are more than 16383 fraction digits.
 */
export function toFhirDecimal(text: string, location: string): FhirDecimal | undefined {
  const trimmed = textOf(text);
  if (trimmed === '') return undefined;
  const decimal = decimalFromLiteral(trimmed);
  if (decimal === undefined) throw invalid(location, 'not an HL7 numeric (NM) value');
  return decimal;
}

/**
 * Unit strings laboratories send -> UCUM codes, for the common clinical units only; anything else keeps its text
 * without a system (a guessed UCUM code would be worse than none). Keys are as sent, with the case variants senders
 * use; UCUM itself is case-sensitive, which the values respect.
 */
const UCUM_UNITS = codeTable<string>({
  '%': '%',
  'mg/dL': 'mg/dL',
  'mg/dl': 'mg/dL',
  'g/dL': 'g/dL',
  'g/dl': 'g/dL',
  'g/L': 'g/L',
  'mg/L': 'mg/L',
  'ug/dL': 'ug/dL',
  'µg/dL': 'ug/dL',
  'ug/L': 'ug/L',
  'ug/mL': 'ug/mL',
  'ng/mL': 'ng/mL',
  'ng/ml': 'ng/mL',
  'ng/dL': 'ng/dL',
  'pg/mL': 'pg/mL',
  'pg/ml': 'pg/mL',
  'mmol/L': 'mmol/L',
  'mmol/l': 'mmol/L',
  'umol/L': 'umol/L',
  'µmol/L': 'umol/L',
  'μmol/L': 'umol/L',
  'nmol/L': 'nmol/L',
  'pmol/L': 'pmol/L',
  'mEq/L': 'meq/L',
  'meq/L': 'meq/L',
  'U/L': 'U/L',
  'IU/L': '[IU]/L',
  'mU/L': 'mU/L',
  'mIU/L': 'm[IU]/L',
  'mIU/mL': 'm[IU]/mL',
  'uIU/mL': 'u[IU]/mL',
  'µIU/mL': 'u[IU]/mL',
  'IU/mL': '[IU]/mL',
  'U/mL': 'U/mL',
  '10*3/uL': '10*3/uL',
  '10^3/uL': '10*3/uL',
  'x10E3/uL': '10*3/uL',
  'x10^3/uL': '10*3/uL',
  '10*3/ul': '10*3/uL',
  'K/uL': '10*3/uL',
  '10*6/uL': '10*6/uL',
  '10^6/uL': '10*6/uL',
  'x10E6/uL': '10*6/uL',
  'x10^6/uL': '10*6/uL',
  'M/uL': '10*6/uL',
  '10*9/L': '10*9/L',
  '10^9/L': '10*9/L',
  'x10E9/L': '10*9/L',
  '10*12/L': '10*12/L',
  '10^12/L': '10*12/L',
  'x10E12/L': '10*12/L',
  '/uL': '/uL',
  'cells/uL': '/uL',
  '/HPF': '/[HPF]',
  '/LPF': '/[LPF]',
  fL: 'fL',
  fl: 'fL',
  pg: 'pg',
  ug: 'ug',
  mg: 'mg',
  g: 'g',
  kg: 'kg',
  mL: 'mL',
  ml: 'mL',
  dL: 'dL',
  L: 'L',
  cm: 'cm',
  mm: 'mm',
  'mm/h': 'mm/h',
  'mm/hr': 'mm/h',
  mmHg: 'mm[Hg]',
  'mm[Hg]': 'mm[Hg]',
  Cel: 'Cel',
  '°C': 'Cel',
  degC: 'Cel',
  '/min': '/min',
  bpm: '/min',
  'beats/min': '/min',
  s: 's',
  sec: 's',
  min: 'min',
  h: 'h',
  hr: 'h',
  d: 'd',
  'kg/m2': 'kg/m2',
  'kg/m^2': 'kg/m2',
  'mL/min/1.73m2': 'mL/min/{1.73_m2}',
  'mL/min/1.73m^2': 'mL/min/{1.73_m2}',
  'mL/min/{1.73_m2}': 'mL/min/{1.73_m2}',
  'mOsm/kg': 'mosm/kg',
  'mosm/kg': 'mosm/kg',
});

/**
 * A unit as sent (CWE code, text and coding system, from a field or from CQ-2 subcomponents) -> the unit members
 * of a Quantity: the text as `unit`; a UCUM code when the sender names UCUM or the unit is one of the common ones.
 */
export function toQuantityUnit(code: string, text: string, systemName: string): QuantityUnit | undefined {
  const shown = text || code;
  if (shown === '') return undefined;
  if (systemName.toUpperCase() === 'UCUM' && code !== '') return { unit: shown, system: UCUM_SYSTEM, code };
  const ucum = UCUM_UNITS.get(code || text);
  return ucum === undefined ? { unit: shown } : { unit: shown, system: UCUM_SYSTEM, code: ucum };
}

/** A unit field's first repetition (OBX-6, RXA-7, RXE-5): CWE 1 code, 2 text, 3 coding system. */
export function toQuantityUnitOf(repetition: Hl7Repetition | undefined): QuantityUnit | undefined {
  return toQuantityUnit(comp(repetition, 1), comp(repetition, 2), comp(repetition, 3));
}

/** NM + unit -> Quantity; undefined when the number is empty. */
export function toQuantity(numberText: string, unit: QuantityUnit | undefined, location: string): Quantity | undefined {
  const value = toFhirDecimal(numberText, location);
  return value === undefined ? undefined : { value, ...unit };
}

/** CQ: 1 quantity (NM), 2 units (CWE as subcomponents). */
export function toCqQuantity(repetition: Hl7Repetition | undefined, location: string): Quantity | undefined {
  return toQuantity(comp(repetition, 1), toQuantityUnit(comp(repetition, 2, 1), comp(repetition, 2, 2), comp(repetition, 2, 3)), location);
}

// ---------------------------------------------------------------------------------------------------------------
// SN -> Quantity, Range, Ratio or string

export interface Range {
  low?: Quantity;
  high?: Quantity;
}

export interface Ratio {
  numerator?: Quantity;
  denominator?: Quantity;
}

/** An SN value as the one FHIR value[x] that holds it. */
export type StructuredNumeric = { valueQuantity: Quantity } | { valueRange: Range } | { valueRatio: Ratio } | { valueString: string };

/** SN-1 comparators FHIR Quantity.comparator can hold ('=' is the absence of one). */
const QUANTITY_COMPARATORS = new Set(['<', '<=', '>=', '>']);
const SN_COMPARATORS = new Set(['', '=', '<', '<=', '>=', '>', '<>']);
const SN_SEPARATORS = new Set(['', '-', '+', '/', ':', '.']);

/**
 * SN: 1 comparator, 2 first number, 3 separator/suffix, 4 second number, after the v2-to-FHIR IG OBX mapping:
 * no separator -> valueQuantity with the comparator; '-' -> valueRange; ':' or '/' -> valueRatio; anything FHIR
 * cannot hold as a number ('+' as in "2+", '.', '<>', a comparator on a range or ratio) -> valueString as sent.
 * `unit` applies to every quantity. Undefined when the value is empty.
 */
export function toStructuredNumeric(repetition: Hl7Repetition, unit: QuantityUnit | undefined, location: string): StructuredNumeric | undefined {
  const comparator = comp(repetition, 1);
  const first = comp(repetition, 2);
  const separator = comp(repetition, 3);
  const second = comp(repetition, 4);
  if (comparator === '' && first === '' && separator === '' && second === '') return undefined;
  if (!SN_COMPARATORS.has(comparator)) throw invalid(location, 'SN comparator is not one of = < <= > >= <>');
  if (!SN_SEPARATORS.has(separator)) throw invalid(location, 'SN separator/suffix is not one of - + / : .');
  const firstNumber = toFhirDecimal(first, location);
  const secondNumber = toFhirDecimal(second, location);
  const plainComparator = comparator === '' || comparator === '=';
  const quantity = (value: FhirDecimal | undefined): Quantity | undefined => (value === undefined ? undefined : { value, ...unit });

  if (separator === '' && second !== '') throw invalid(location, 'SN has a second number without a separator');
  if (separator === '') {
    if (firstNumber === undefined) throw invalid(location, 'SN has a comparator but no number');
    if (plainComparator) return { valueQuantity: quantity(firstNumber)! };
    if (QUANTITY_COMPARATORS.has(comparator)) return { valueQuantity: { value: firstNumber, comparator, ...unit } };
  } else if (plainComparator && separator === '-' && (firstNumber !== undefined || secondNumber !== undefined)) {
    return { valueRange: pruneEmpty<Range>({ low: quantity(firstNumber), high: quantity(secondNumber) })! };
  } else if (plainComparator && (separator === ':' || separator === '/') && firstNumber !== undefined && secondNumber !== undefined) {
    return { valueRatio: { numerator: quantity(firstNumber), denominator: quantity(secondNumber) } };
  }
  return { valueString: `${comparator}${first}${separator}${second}` };
}

// ---------------------------------------------------------------------------------------------------------------
// ED -> Attachment

export interface Attachment {
  contentType?: string;
  data?: string;
  size?: number;
  title?: string;
  creation?: string;
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const HEX = /^(?:[0-9A-Fa-f]{2})+$/;
const MIME_TOP_LEVEL_TYPES = new Set(['application', 'audio', 'font', 'image', 'message', 'model', 'multipart', 'text', 'video']);
const MIME_SUBTYPE = /^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*$/;

/**
 * ED-3 data subtypes (HL7 table 0291 and what senders put there) -> MIME type, for senders whose ED-2 is an HL7
 * table 0191 code (AP, IM, TEXT, ...) rather than a MIME top-level type.
 */
const DATA_SUBTYPE_MIME = codeTable<string>({
  PDF: 'application/pdf',
  RTF: 'application/rtf',
  XML: 'application/xml',
  HTML: 'text/html',
  SGML: 'text/sgml',
  JPEG: 'image/jpeg',
  JPG: 'image/jpeg',
  GIF: 'image/gif',
  PNG: 'image/png',
  TIFF: 'image/tiff',
  BMP: 'image/bmp',
  DICOM: 'application/dicom',
  POSTSCRIPT: 'application/postscript',
  'OCTET-STREAM': 'application/octet-stream',
});

/** ED-2 (type of data) codes that mean plain text when ED-3 does not say otherwise. */
const TEXT_DATA_TYPES = new Set(['TEXT', 'TX', 'FT']);

/** The MIME type for ED-2 type of data and ED-3 subtype: MIME parts as sent, else table 0191/0291 codes. */
function edContentType(typeOfData: string, subtype: string): string {
  const type = typeOfData.toLowerCase();
  if (MIME_TOP_LEVEL_TYPES.has(type) && MIME_SUBTYPE.test(subtype)) return `${type}/${subtype.toLowerCase()}`;
  const known = DATA_SUBTYPE_MIME.get(subtype.toUpperCase());
  if (known !== undefined) return known;
  if (TEXT_DATA_TYPES.has(typeOfData.toUpperCase())) return 'text/plain';
  return 'application/octet-stream';
}

/**
 * ED: 1 source application, 2 type of data, 3 data subtype, 4 encoding (table 0299: A none, Hex, Base64), 5 data.
 * The data becomes base64 whatever the encoding (A as UTF-8 text, the same bytes FHIR consumers will decode); a
 * Base64 or Hex value that is not what it says is an error. Undefined when ED-5 is empty.
 */
export function toAttachment(repetition: Hl7Repetition, location: string): Attachment | undefined {
  const encoding = comp(repetition, 4).toUpperCase();
  // Data is taken untrimmed: in text (encoding A) spaces are content; base64 and hex have none to lose.
  const raw = componentOf(repetition, 5);
  const data = raw === HL7_NULL ? '' : raw;
  if (data.trim() === '') return undefined;
  let bytes: Buffer;
  if (encoding === 'BASE64') {
    if (!BASE64.test(data.trim())) throw invalid(location, 'ED data is not valid base64');
    bytes = Buffer.from(data.trim(), 'base64');
  } else if (encoding === 'HEX') {
    if (!HEX.test(data.trim())) throw invalid(location, 'ED data is not valid hex');
    bytes = Buffer.from(data.trim(), 'hex');
  } else if (encoding === 'A' || encoding === '') {
    bytes = Buffer.from(data, 'utf8');
  } else {
    throw invalid(location, 'ED encoding is not one of A, Hex, Base64');
  }
  return { contentType: edContentType(comp(repetition, 2), comp(repetition, 3)), data: bytes.toString('base64'), size: bytes.length };
}

/** Text (a transcribed document, TX/FT content) as an attachment: UTF-8 bytes, base64. */
export function textAttachment(text: string): Attachment {
  const bytes = Buffer.from(text, 'utf8');
  return { contentType: 'text/plain; charset=utf-8', data: bytes.toString('base64'), size: bytes.length };
}

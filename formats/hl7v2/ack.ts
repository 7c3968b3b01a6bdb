/**
 * HL7 v2 acknowledgments (original mode AA/AE/AR and enhanced mode CA/CE/CR).
 *
 * The ACK answers in the sender's own delimiters and echoes the sender's header fields verbatim, so the sender can
 * correlate it however it parses. Everything the engine itself contributes (ids, error text, details) is escaped for
 * those delimiters.
 */
import { randomBytes } from 'node:crypto';
import { AnchorlineError, ERROR_CATALOGUE, type ErrorCode } from '../../errors/index.ts';
import { encodeHl7Text } from './charset.ts';
import { escapeHl7 } from './escape-text.ts';
import type { MshHeader } from './header.ts';
import type { Hl7Encoding } from './types.ts';

export type AckCode = 'AA' | 'AE' | 'AR' | 'CA' | 'CE' | 'CR';

/** Random per process start, so ids from a restarted engine cannot repeat earlier ones. */
const ACK_ID_PREFIX = randomBytes(6).toString('base64url');
let ackIdCounter = 0;

/** A fresh MSH-10 for an ACK: 8 random characters and a counter, at most 20 characters (the ST length of 2.5). */
export function newAckControlId(): string {
  ackIdCounter = (ackIdCounter + 1) % 36 ** 12;
  return ACK_ID_PREFIX + ackIdCounter.toString(36);
}

export interface AckError {
  code: ErrorCode;
  /** Where the error is, e.g. 'MSH-10', 'PID-3', 'PID-3.1', 'OBX[2]-5' (second OBX), 'PID-3[2].1' (second repetition). */
  location?: string;
  /** Shown to the sender in ERR-8; must not contain patient data. */
  detail?: string;
}

/**
 * A warning on an accepted message (severity W): something of it was not mapped as sent (a mapping issue), told to
 * the sender with the message's own acknowledgment.
 */
export interface AckWarning {
  /** The stable code, e.g. 'ANCHORLINE_ISSUE_INVALID_VALUE' (ERR-5). */
  code: string;
  /** Table 0357 condition (ERR-3): '101' required field missing, '102' data type error, '103' table value not found. */
  condition: string;
  /** Where, as AckError.location. */
  location?: string;
  /** Shown to the sender in ERR-8; must not contain patient data. */
  detail?: string;
}

/** Warnings an ACK carries at most; the rest are on the message (the sender's ACK stays small). */
export const MAX_ACK_WARNINGS = 20;

export interface AckOptions {
  /** The incoming message's header; undefined when its MSH could not be read. */
  header: MshHeader | undefined;
  ackCode: AckCode;
  /** A fresh control id for the ACK's own MSH-10. */
  ackControlId: string;
  timestamp: Date;
  /** IANA time zone for MSH-7, e.g. 'Asia/Seoul' gives YYYYMMDDHHMMSS.SSS+0900. */
  timeZone: string;
  error?: AckError;
  /**
   * Warnings (ERR with severity W, v2.5 and later: earlier versions' ERR has no severity, so they are left out there),
   * at most MAX_ACK_WARNINGS.
   */
  warnings?: readonly AckWarning[];
  /** MSH-3 of the ACK when the incoming MSH-5 is empty. Default 'ANCHORLINE'. */
  engineApplication?: string;
}

const DEFAULT_ENCODING: Hl7Encoding = { field: '|', component: '^', repetition: '~', escape: '\\', subcomponent: '&' };
const DEFAULT_VERSION = '2.5.1';
const DEFAULT_PROCESSING_ID = 'P';
const DEFAULT_ENGINE_APPLICATION = 'ANCHORLINE';
const APPLICATION_CODING_SYSTEM = 'ANCHORLINE';
const CONDITION_CODING_SYSTEM = 'HL70357';

/** HL7 table 0357 (message error condition codes), the texts that go with the codes in the catalogue. */
const CONDITION_TEXT: Readonly<Record<string, string>> = {
  '0': 'Message accepted',
  '100': 'Segment sequence error',
  '101': 'Required field missing',
  '102': 'Data type error',
  '103': 'Table value not found',
  '104': 'Value too long',
  '200': 'Unsupported message type',
  '201': 'Unsupported event code',
  '202': 'Unsupported processing id',
  '203': 'Unsupported version id',
  '204': 'Unknown key identifier',
  '205': 'Duplicate key identifier',
  '206': 'Application record locked',
  '207': 'Application internal error',
};

/** The ACK as HL7 text: MSH, MSA and, with an error, ERR; each segment terminated by CR. */
export function buildAck(o: AckOptions): string {
  const h = o.header;
  const enc = h?.encoding ?? DEFAULT_ENCODING;
  const esc = (value: string): string => escapeHl7(value, enc);
  // Echoed header values are already in the sender's delimiters; everything the engine supplies goes through esc(),
  // even timestamps and codes, because a sender may legally pick '+', '.' or '_' as a delimiter.
  const version = h?.versionId || DEFAULT_VERSION;
  const trigger = h?.triggerEvent ?? '';

  // MSH-9.3 (message structure) exists from v2.3.1 on; older receivers expect two components at most.
  const messageType = atLeast(version, 2, 3, 1)
    ? ['ACK', trigger, 'ACK'].join(enc.component)
    : trigger === ''
      ? 'ACK'
      : ['ACK', trigger].join(enc.component);

  const msh = [
    'MSH',
    encodingCharacters(enc),
    h?.receivingApplication || esc(o.engineApplication ?? DEFAULT_ENGINE_APPLICATION),
    h?.receivingFacility ?? '',
    h?.sendingApplication ?? '',
    h?.sendingFacility ?? '',
    esc(hl7Timestamp(o.timestamp, o.timeZone)),
    '',
    messageType,
    esc(o.ackControlId),
    h?.processingId || esc(DEFAULT_PROCESSING_ID),
    h?.versionId || esc(DEFAULT_VERSION),
    '', '', '', '', '',
    h?.characterSet ?? '',
  ];
  const spec = o.error === undefined ? undefined : ERROR_CATALOGUE[o.error.code];
  const msa = ['MSA', o.ackCode, h?.controlId ?? '', spec === undefined ? '' : esc(spec.title)];
  const segments = [trimJoin(msh, enc.field), trimJoin(msa, enc.field)];
  if (o.error !== undefined) segments.push(errSegment(o.error, version, enc));
  if (o.warnings !== undefined && atLeast(version, 2, 5)) {
    for (const warning of o.warnings.slice(0, MAX_ACK_WARNINGS)) segments.push(warningSegment(warning, enc));
  }
  return segments.join('\r') + '\r';
}

/** Enhanced acknowledgment mode is requested by sending MSH-15 or MSH-16. */
/**
 * An ACK as bytes, ready to send or store: fresh control id, stamped now, with the ERR segment of `error` when given,
 * encoded in the message's charset (UTF-8 when that charset cannot carry it, e.g. the sender's was not readable).
 */
export function encodeAck(o: {
  header: MshHeader | undefined;
  charset: string;
  ackCode: AckCode;
  error?: AnchorlineError | undefined;
  warnings?: readonly AckWarning[];
  timeZone: string;
  engineApplication: string;
}): Buffer {
  const { error } = o;
  const text = buildAck({
    header: o.header,
    ackCode: o.ackCode,
    ackControlId: newAckControlId(),
    timestamp: new Date(),
    timeZone: o.timeZone,
    engineApplication: o.engineApplication,
    ...(o.warnings !== undefined && o.warnings.length > 0 ? { warnings: o.warnings } : {}),
    ...(error ? { error: { code: error.code, ...(error.location ? { location: error.location } : {}), ...(error.detail ? { detail: error.detail } : {}) } } : {}),
  });
  try {
    return encodeHl7Text(text, o.charset);
  } catch {
    return Buffer.from(text, 'utf8');
  }
}

export function isEnhancedMode(h: MshHeader | undefined): boolean {
  if (h === undefined) return false;
  return isPresent(h.acceptAckType) || isPresent(h.applicationAckType);
}

/** A field sent as the HL7 explicit null "" carries no value, so it does not request enhanced mode. */
function isPresent(value: string): boolean {
  const trimmed = value.trim();
  return trimmed !== '' && trimmed !== '""';
}

function errSegment(error: AckError, version: string, enc: Hl7Encoding): string {
  const esc = (value: string): string => escapeHl7(value, enc);
  const spec = ERROR_CATALOGUE[error.code];
  const conditionText = CONDITION_TEXT[spec.hl7Condition] ?? '';
  const where = error.location === undefined ? undefined : parseLocation(error.location);

  if (!atLeast(version, 2, 5)) {
    // v2.1-2.4 have only ERR-1 (ELD): segment^sequence^field^code, with the code as a CE in subcomponents.
    const code = [spec.hl7Condition, esc(conditionText), CONDITION_CODING_SYSTEM].join(enc.subcomponent);
    const eld = [where?.segment ?? '', where?.segmentSequence ?? '', where?.field ?? '', code].join(enc.component);
    return trimJoin(['ERR', eld], enc.field);
  }

  const erl = where === undefined ? '' : trimJoin(erlComponents(where), enc.component);
  return trimJoin(
    [
      'ERR',
      '', // ERR-1 (ELD) is deprecated from v2.5 on.
      erl,
      [spec.hl7Condition, esc(conditionText), CONDITION_CODING_SYSTEM].join(enc.component),
      'E',
      [esc(error.code), esc(spec.title), APPLICATION_CODING_SYSTEM].join(enc.component),
      '',
      '',
      error.detail === undefined ? '' : esc(error.detail),
    ],
    enc.field,
  );
}

function warningSegment(warning: AckWarning, enc: Hl7Encoding): string {
  const esc = (value: string): string => escapeHl7(value, enc);
  const where = warning.location === undefined ? undefined : parseLocation(warning.location);
  const erl = where === undefined ? '' : trimJoin(erlComponents(where), enc.component);
  return trimJoin(
    [
      'ERR',
      '',
      erl,
      [esc(warning.condition), esc(CONDITION_TEXT[warning.condition] ?? ''), CONDITION_CODING_SYSTEM].join(enc.component),
      'W',
      [esc(warning.code), '', APPLICATION_CODING_SYSTEM].join(enc.component),
      '',
      '',
      warning.detail === undefined ? '' : esc(warning.detail),
    ],
    enc.field,
  );
}

interface ErrorLocation {
  segment: string;
  segmentSequence: string;
  field: string;
  fieldRepetition: string;
  component: string;
  subcomponent: string;
}

const LOCATION = /^([A-Z][A-Z0-9]{2})(?:\[(\d+)\])?(?:-(\d+)(?:\[(\d+)\])?(?:\.(\d+)(?:\.(\d+))?)?)?$/;

/** 'PID-3.1' and friends as ERL parts; undefined for anything else, which then leaves the location out. */
function parseLocation(location: string): ErrorLocation | undefined {
  const m = LOCATION.exec(location.trim());
  if (m === null) return undefined;
  const [, segment = '', segmentSequence, field = '', fieldRepetition, component = '', subcomponent = ''] = m;
  return {
    segment,
    segmentSequence: segmentSequence ?? '1',
    field,
    // ERL needs a repetition before it can name a component; the first repetition is the one meant when none is given.
    fieldRepetition: fieldRepetition ?? (component !== '' ? '1' : ''),
    component,
    subcomponent,
  };
}

function erlComponents(l: ErrorLocation): string[] {
  return [l.segment, l.segmentSequence, l.field, l.fieldRepetition, l.component, l.subcomponent];
}

function encodingCharacters(enc: Hl7Encoding): string {
  return enc.component + enc.repetition + enc.escape + enc.subcomponent + (enc.truncation ?? '');
}

/** Joins fields or components, leaving out trailing empty ones as HL7 senders are expected to. */
function trimJoin(parts: string[], separator: string): string {
  let end = parts.length;
  while (end > 0 && parts[end - 1] === '') end--;
  return parts.slice(0, end).join(separator);
}

/** True when an HL7 version id ('2.3', '2.5.1', 'V2.4') is at least major.minor.patch; unreadable ids count as 2.5.1. */
function atLeast(version: string, major: number, minor: number, patch = 0): boolean {
  const m = /^v?(\d+)\.(\d+)(?:\.(\d+))?/i.exec(version.trim());
  const have = m === null ? [2, 5, 1] : [Number(m[1]), Number(m[2]), Number(m[3] ?? 0)];
  const want = [major, minor, patch];
  for (let i = 0; i < 3; i++) {
    if (have[i] !== want[i]) return have[i]! > want[i]!;
  }
  return true;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatterFor(timeZone: string): Intl.DateTimeFormat {
  let formatter = formatters.get(timeZone);
  if (formatter === undefined) {
    try {
      formatter = new Intl.DateTimeFormat('en-US', {
        timeZone,
        year: 'numeric',
        month: '2-digit',
        day: '2-digit',
        hour: '2-digit',
        minute: '2-digit',
        second: '2-digit',
        hourCycle: 'h23',
      });
    } catch (cause) {
      throw new AnchorlineError('ANCHORLINE_ERR_CONFIG_INVALID', 'timeZone is not a valid IANA time zone', { cause });
    }
    formatters.set(timeZone, formatter);
  }
  return formatter;
}

/** YYYYMMDDHHMMSS.SSS+ZZZZ in `timeZone`, the offset being the zone's offset at that instant. */
/** Per zone, the UTC offset of the last minute asked for: offsets only change on minute boundaries. */
const offsetCache = new Map<string, { minute: number; offsetMinutes: number }>();

/** Minutes the zone's wall clock is ahead of UTC at `millis`. Intl is slow, so it is asked once a minute per zone. */
function zoneOffsetMinutes(millis: number, timeZone: string): number {
  const minute = Math.floor(millis / 60_000);
  const cached = offsetCache.get(timeZone);
  if (cached && cached.minute === minute) return cached.offsetMinutes;
  const part: Record<string, number> = {};
  for (const p of formatterFor(timeZone).formatToParts(new Date(minute * 60_000))) {
    if (p.type !== 'literal') part[p.type] = Number(p.value);
  }
  // Intl gives the wall-clock time in the zone; its distance from UTC is the offset, whatever DST rule applied.
  const wallClock = new Date(0);
  // setUTCFullYear rather than Date.UTC, which would read years 0-99 as 1900-1999.
  wallClock.setUTCFullYear(part['year'] ?? 0, (part['month'] ?? 1) - 1, part['day'] ?? 1);
  wallClock.setUTCHours(part['hour'] ?? 0, part['minute'] ?? 0, part['second'] ?? 0, 0);
  const offsetMinutes = Math.round((wallClock.getTime() - minute * 60_000) / 60_000);
  offsetCache.set(timeZone, { minute, offsetMinutes });
  return offsetMinutes;
}

export function hl7Timestamp(date: Date, timeZone: string): string {
  const millis = date.getTime();
  if (Number.isNaN(millis)) {
    throw new AnchorlineError('ANCHORLINE_ERR_INTERNAL', 'ACK timestamp is not a valid date');
  }
  const offsetMinutes = zoneOffsetMinutes(millis, timeZone);
  const wall = new Date(millis + offsetMinutes * 60_000);
  const sign = offsetMinutes < 0 ? '-' : '+';
  const absolute = Math.abs(offsetMinutes);
  return (
    pad(wall.getUTCFullYear(), 4) +
    pad(wall.getUTCMonth() + 1, 2) +
    pad(wall.getUTCDate(), 2) +
    pad(wall.getUTCHours(), 2) +
    pad(wall.getUTCMinutes(), 2) +
    pad(wall.getUTCSeconds(), 2) +
    '.' +
    pad(wall.getUTCMilliseconds(), 3) +
    sign +
    pad(Math.floor(absolute / 60), 2) +
    pad(absolute % 60, 2)
  );
}

function pad(value: number, width: number): string {
  return String(value).padStart(width, '0');
}

/**
 * HL7 v2 message parser: text (already decoded from bytes by the intake) -> Hl7Message.
 *
 * Hand-written rather than taken from @medplum/core: its Hl7Message neither decodes escape sequences nor exposes the
 * raw field/repetition/component/subcomponent structure, and the mappers need both (escaped delimiters inside names,
 * the HL7 explicit null `""` kept distinct from "not sent").
 *
 * Every failure is an AnchorlineError with one of ANCHORLINE_ERR_HL7_NO_MSH, ANCHORLINE_ERR_HL7_BAD_DELIMITERS or
 * ANCHORLINE_ERR_HL7_MALFORMED; error details name segment positions and fields, never their content (a line that
 * fails to parse is often a piece of free text, i.e. patient data, broken by a stray line feed).
 *
 * Shape: a field that was not sent is [] (no repetitions, as fieldOf() returns past a segment's end); a sent field
 * has at least one repetition, component and subcomponent, so `a^` is [[['a'], ['']]].
 *
 * Speed matters (every message passes through here on the intake path): each segment is walked once from delimiter
 * to delimiter, and only values that contain the escape character are unescaped.
 */

import { AnchorlineError } from '../../errors/index.ts';

import { unescapeHl7 } from './escape.ts';
import { encodingFrom, isDelimiterChar } from './header.ts';
import type { Hl7Component, Hl7Encoding, Hl7Field, Hl7Message, Hl7Repetition, Hl7Segment } from './types.ts';

const SEGMENT_SEPARATOR = /\r\n|\r|\n/;
const BYTE_ORDER_MARK = 0xfeff;

export function parseHl7(text: string): Hl7Message {
  // A byte order mark survives decoding when a message was saved as a file by an editor; it is never content.
  const body = text.charCodeAt(0) === BYTE_ORDER_MARK ? text.slice(1) : text;
  // The standard separator is CR alone; LF and CRLF arrive from files and from senders that get it wrong.
  const lines = body.indexOf('\n') === -1 ? body.split('\r') : body.split(SEGMENT_SEPARATOR);

  let encoding: Hl7Encoding | undefined;
  const segments: Hl7Segment[] = [];
  const brokenSegments: number[] = [];
  for (let i = 0; i < lines.length; i++) {
    let line = lines[i]!;
    if (isBlank(line)) continue;
    if (encoding === undefined) {
      if (!line.startsWith('MSH')) {
        throw new AnchorlineError('ANCHORLINE_ERR_HL7_NO_MSH', 'the first segment is not MSH', { location: 'MSH' });
      }
      encoding = readEncoding(line);
      segments.push(parseMsh(line, encoding));
      continue;
    }
    // A line that does not start a segment continues the one before: a line break sent unescaped inside a field
    // (report text with raw line feeds, base64 wrapped at 76 columns). The break is kept as part of the value.
    let continued = false;
    while (i + 1 < lines.length && !isBlank(lines[i + 1]!) && !startsSegment(lines[i + 1]!, encoding)) {
      line += `\n${lines[++i]}`;
      continued = true;
    }
    if (continued) brokenSegments.push(segments.length);
    segments.push(parseSegment(line, encoding, segments.length + 1));
  }
  if (encoding === undefined) {
    throw new AnchorlineError('ANCHORLINE_ERR_HL7_NO_MSH', 'the message has no segments', { location: 'MSH' });
  }
  return brokenSegments.length === 0 ? { encoding, segments } : { encoding, segments, brokenSegments };
}

/** Whether a line starts a segment: a segment name (isSegmentName) followed by the field separator or nothing. */
function startsSegment(line: string, encoding: Hl7Encoding): boolean {
  return isSegmentName(line.slice(0, 3)) && (line.length === 3 || line.charAt(3) === encoding.field);
}

/** Empty and whitespace-only lines separate nothing: they come from trailing terminators and padded files. */
function isBlank(line: string): boolean {
  if (line.length === 0) return true;
  const first = line.charCodeAt(0);
  if (first !== 0x20 && first !== 0x09) return false;
  return line.trim().length === 0;
}

/**
 * MSH-1 is the character after "MSH"; MSH-2 runs to the next field separator and holds the component, repetition,
 * escape and subcomponent characters, plus the truncation character from v2.7 on.
 */
function readEncoding(msh: string): Hl7Encoding {
  if (msh.length < 4) {
    throw new AnchorlineError('ANCHORLINE_ERR_HL7_BAD_DELIMITERS', 'MSH-1 field separator is missing', { location: 'MSH-1' });
  }
  const field = msh[3]!;
  if (!isDelimiterChar(field)) {
    throw new AnchorlineError('ANCHORLINE_ERR_HL7_BAD_DELIMITERS', 'MSH-1 field separator is not an ASCII punctuation character', {
      location: 'MSH-1',
    });
  }
  const end = msh.indexOf(field, 4);
  return encodingFrom(field, end === -1 ? msh.slice(4) : msh.slice(4, end));
}

function parseMsh(line: string, encoding: Hl7Encoding): Hl7Segment {
  const encodingChars = encoding.component + encoding.repetition + encoding.escape + encoding.subcomponent + (encoding.truncation ?? '');
  // MSH-1 and MSH-2 are kept literally: they define the delimiters, so splitting or unescaping them is meaningless.
  const fields: Hl7Field[] = [[], [[[encoding.field]]], [[[encodingChars]]]];
  // MSH-3 starts after the separator that ends MSH-2 as sent (which may be longer than encodingChars: encodingFrom).
  const encodingEnd = line.indexOf(encoding.field, 4);
  const restStart = encodingEnd === -1 ? line.length + 1 : encodingEnd + 1;
  if (restStart <= line.length) scanFields(line, restStart, encoding, fields);
  return { name: 'MSH', fields };
}

function parseSegment(line: string, encoding: Hl7Encoding, position: number): Hl7Segment {
  const nameEnd = line.indexOf(encoding.field);
  const name = nameEnd === -1 ? line : line.slice(0, nameEnd);
  // No ERR-2 location: a segment without a valid name has no segment id to point at, so the detail gives its position.
  if (!isSegmentName(name)) {
    throw new AnchorlineError('ANCHORLINE_ERR_HL7_MALFORMED', `segment ${position} does not start with a 3-character segment name`);
  }
  if (name === 'MSH') {
    // A second header means two messages were framed as one; parsing on would attribute segments to the wrong one.
    throw new AnchorlineError('ANCHORLINE_ERR_HL7_MALFORMED', `segment ${position} is a second MSH`, { location: 'MSH' });
  }
  const fields: Hl7Field[] = [[]];
  if (nameEnd !== -1) scanFields(line, nameEnd + 1, encoding, fields);
  return { name, fields };
}

/** Delimiter kinds, from the outermost. */
const FIELD = 0;
const REPETITION = 1;
const COMPONENT = 2;
const SUBCOMPONENT = 3;

/**
 * Appends the fields of `line`, starting at `start` (just after a field separator), to `fields`.
 *
 * One pass over the segment that jumps from delimiter to delimiter with String#indexOf (native, much faster than a
 * character loop in JavaScript), keeping the next position of each delimiter kind and taking the nearest. It
 * allocates only the arrays the result holds, and a field that was not sent becomes [] without any inner levels: most
 * fields of a real message are empty, and [] is exactly what fieldOf() returns for a field past a segment's end.
 */
function scanFields(line: string, start: number, encoding: Hl7Encoding, fields: Hl7Field[]): void {
  const length = line.length;
  let nextField = nextIndex(line, encoding.field, start, length);
  let nextRepetition = nextIndex(line, encoding.repetition, start, length);
  let nextComponent = nextIndex(line, encoding.component, start, length);
  let nextSubcomponent = nextIndex(line, encoding.subcomponent, start, length);
  let nextEscape = nextIndex(line, encoding.escape, start, length);

  let field: Hl7Field | undefined;
  let repetition: Hl7Repetition | undefined;
  let component: Hl7Component | undefined;
  let fieldStart = start;
  let valueStart = start;
  for (;;) {
    let at = nextField;
    let kind = FIELD;
    if (nextComponent < at) {
      at = nextComponent;
      kind = COMPONENT;
    }
    if (nextRepetition < at) {
      at = nextRepetition;
      kind = REPETITION;
    }
    if (nextSubcomponent < at) {
      at = nextSubcomponent;
      kind = SUBCOMPONENT;
    }

    if (kind === FIELD && at === fieldStart) {
      fields.push([]);
    } else {
      const raw = line.slice(valueStart, at);
      let value = raw;
      if (nextEscape < at) {
        value = unescapeHl7(raw, encoding);
        nextEscape = nextIndex(line, encoding.escape, at + 1, length);
      }
      (component ??= []).push(value);
      if (kind !== SUBCOMPONENT) {
        (repetition ??= []).push(component);
        component = undefined;
        if (kind !== COMPONENT) {
          (field ??= []).push(repetition);
          repetition = undefined;
          if (kind === FIELD) {
            fields.push(field);
            field = undefined;
          }
        }
      }
    }

    valueStart = at + 1;
    switch (kind) {
      case FIELD:
        if (at >= length) return;
        fieldStart = at + 1;
        nextField = nextIndex(line, encoding.field, at + 1, length);
        break;
      case REPETITION:
        nextRepetition = nextIndex(line, encoding.repetition, at + 1, length);
        break;
      case COMPONENT:
        nextComponent = nextIndex(line, encoding.component, at + 1, length);
        break;
      default:
        nextSubcomponent = nextIndex(line, encoding.subcomponent, at + 1, length);
    }
  }
}

/** Position of the next `delimiter` at or after `from`, or `length` (the segment end acts as the last separator). */
function nextIndex(line: string, delimiter: string, from: number, length: number): number {
  const at = line.indexOf(delimiter, from);
  return at === -1 ? length : at;
}

/** Segment names are three characters from A-Z and 0-9 (standard segments and Z-segments alike). */
function isSegmentName(name: string): boolean {
  if (name.length !== 3) return false;
  for (let i = 0; i < 3; i++) {
    const code = name.charCodeAt(i);
    if (!((code >= 0x30 && code <= 0x39) || (code >= 0x41 && code <= 0x5a))) return false;
  }
  return true;
}

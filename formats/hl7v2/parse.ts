/**
 * HL7 v2 message parser: text (already decoded from bytes by the intake) -> Hl7Message.
 *
 * Hand-written rather than taken from @medplum/core: its Hl7Message neither decodes escape sequences nor exposes the
 * raw field/repetition/component/subcomponent structure, and the mappers need both (escaped delimiters inside names,
 * the HL7 explicit null `""` kept distinct from "not sent").
 *
 * Every failure is an AnchorlineError with one of ANCHORLINE_ERR_HL7_NO_MSH, ANCHORLINE_ERR_HL7_BAD_DELIMITERS,
 * ANCHORLINE_ERR_HL7_MALFORMED or ANCHORLINE_ERR_HL7_TOO_COMPLEX; error details name segment positions and fields,
 * never their content (a line that fails to parse is often a piece of free text, i.e. patient data, broken by a stray
 * line feed).
 *
 * Shape: a field that was not sent is [] (no repetitions, as fieldOf() returns past a segment's end); a sent field
 * has at least one repetition, component and subcomponent, so `a^` is [[['a'], ['']]].
 *
 * Bounded (limits.ts): the structure is counted while it is scanned, and the scan stops at the first delimiter past a
 * cap. Time and memory are linear in the text with a small constant for any input: lines are found with cached
 * positions rather than split into an array (16 MiB of CR would be 16 million empty strings), a segment sent across
 * several lines is cut from the text once rather than concatenated line by line, and escapes are decoded without
 * building a string per sequence (escape.ts).
 *
 * Speed matters (every message passes through here on the intake path, counting only, and in the worker): each
 * segment is walked once, character by character, and only values that contain the escape character are unescaped.
 */

import { AnchorlineError } from '../../errors/index.ts';

import { unescapeHl7 } from './escape.ts';
import { encodingFrom, isDelimiterChar } from './header.ts';
import { DEFAULT_HL7_LIMITS, type Hl7Limits } from './limits.ts';
import type { Hl7Component, Hl7Encoding, Hl7Field, Hl7Message, Hl7Repetition, Hl7Segment } from './types.ts';

const BYTE_ORDER_MARK = 0xfeff;
const CR = 0x0d;
const LF = 0x0a;
/** Line breaks inside a segment sent across several lines; each is kept in the value as one LF. */
const CONTINUATION_BREAK = /\r\n?/g;
const NUL = '\u0000';

/** Parses `text`; throws AnchorlineError ANCHORLINE_ERR_HL7_TOO_COMPLEX as soon as the structure passes a cap. */
export function parseHl7(text: string, limits: Hl7Limits = DEFAULT_HL7_LIMITS): Hl7Message {
  return new Scan(text, limits, true).run()!;
}

/**
 * Counts the structure of `text` exactly as parseHl7 would, without building anything, and throws the
 * ANCHORLINE_ERR_HL7_TOO_COMPLEX that parseHl7 would throw. Structural errors are not reported: parseHl7 stops at
 * them too, before any cap further on, so a message this accepts never exceeds a cap in parseHl7. The intake runs it
 * on every message, a few times faster than parsing.
 */
export function checkHl7Limits(text: string, limits: Hl7Limits = DEFAULT_HL7_LIMITS): void {
  try {
    new Scan(text, limits, false).run();
  } catch (error) {
    if (error instanceof AnchorlineError && error.code === 'ANCHORLINE_ERR_HL7_TOO_COMPLEX') throw error;
  }
}

/** Delimiter kinds, from the outermost. */
const FIELD = 0;
const REPETITION = 1;
const COMPONENT = 2;
const SUBCOMPONENT = 3;

/** One walk over a message's text: building the message (parseHl7) or only counting its structure (checkHl7Limits). */
class Scan {
  private readonly text: string;
  private readonly limits: Hl7Limits;
  private readonly build: boolean;
  private nodes = 0;
  private segmentCount = 0;
  /** Next CR and LF at or after the line being read (text.length when there is none), so no search repeats. */
  private nextCr = -1;
  private nextLf = -1;
  private readonly removedNul: Array<{ segment: number; field: number }> = [];

  constructor(text: string, limits: Hl7Limits, build: boolean) {
    this.text = text;
    this.limits = limits;
    this.build = build;
  }

  run(): Hl7Message | undefined {
    const text = this.text;
    const length = text.length;
    // A byte order mark survives decoding when a message was saved as a file by an editor; it is never content.
    let pos = text.charCodeAt(0) === BYTE_ORDER_MARK ? 1 : 0;
    let encoding: Hl7Encoding | undefined;
    const segments: Hl7Segment[] = [];
    const brokenSegments: number[] = [];
    // The standard separator is CR alone; LF and CRLF arrive from files and from senders that get it wrong.
    while (pos < length) {
      const first = text.charCodeAt(pos);
      // Empty lines (trailing terminators, CRLF read as two breaks) are skipped without a search.
      if (first === CR || first === LF) {
        pos++;
        continue;
      }
      const end = this.lineEnd(pos);
      if (isBlank(text, pos, end)) {
        pos = this.nextLine(end);
        continue;
      }
      if (encoding === undefined) {
        if (!text.startsWith('MSH', pos)) {
          throw new AnchorlineError('ANCHORLINE_ERR_HL7_NO_MSH', 'the first segment is not MSH', { location: 'MSH' });
        }
        const line = text.slice(pos, end);
        encoding = readEncoding(line);
        this.countSegment('MSH');
        const msh = this.parseMsh(line, encoding);
        if (msh !== undefined) segments.push(msh);
        pos = this.nextLine(end);
        continue;
      }
      // A line that does not start a segment continues the one before: a line break sent unescaped inside a field
      // (report text with raw line feeds, base64 wrapped at 76 columns). The break is kept as part of the value.
      let segmentEnd = end;
      let next = this.nextLine(end);
      while (next < length) {
        const nextEnd = this.lineEnd(next);
        if (isBlank(text, next, nextEnd) || startsSegment(text, next, nextEnd, encoding)) break;
        // Each line break kept inside a value counts as a parsed node: millions of one-character lines would
        // otherwise cost a step each without ever reaching a cap (a base64 PDF wrapped at 76 columns stays far below).
        if (++this.nodes > this.limits.maxParsedNodes) {
          throw tooComplex(`more than ${this.limits.maxParsedNodes} parsed nodes, counting the line breaks inside segment ${this.segmentCount + 1} (hl7v2.maxParsedNodes)`, text.slice(pos, pos + 3));
        }
        segmentEnd = nextEnd;
        next = this.nextLine(nextEnd);
      }
      const continued = segmentEnd !== end;
      let line = text.slice(pos, segmentEnd);
      // Line breaks are never delimiters (those are printable ASCII), so counting needs no rewriting.
      if (continued && this.build) line = line.replace(CONTINUATION_BREAK, '\n');
      // Segments so far: this one's index in `segments`, and its position (1-based) in error details.
      const index = this.segmentCount;
      if (continued) brokenSegments.push(index);
      const segment = this.parseSegment(line, encoding, index + 1);
      if (segment !== undefined) segments.push(segment);
      pos = next;
    }
    if (encoding === undefined) {
      throw new AnchorlineError('ANCHORLINE_ERR_HL7_NO_MSH', 'the message has no segments', { location: 'MSH' });
    }
    if (!this.build) return undefined;
    const message: Hl7Message = { encoding, segments };
    if (brokenSegments.length > 0) message.brokenSegments = brokenSegments;
    if (this.removedNul.length > 0) message.removedNul = this.removedNul;
    return message;
  }

  /** Where the line starting at `from` ends: its first CR or LF, or the end of the text. */
  private lineEnd(from: number): number {
    if (this.nextCr < from) this.nextCr = nextIndex(this.text, '\r', from, this.text.length);
    if (this.nextLf < from) this.nextLf = nextIndex(this.text, '\n', from, this.text.length);
    return this.nextCr < this.nextLf ? this.nextCr : this.nextLf;
  }

  /** Where the line after one ending at `end` starts (past CRLF as one break). */
  private nextLine(end: number): number {
    return this.text.charCodeAt(end) === CR && this.text.charCodeAt(end + 1) === LF ? end + 2 : end + 1;
  }

  private countSegment(name: string): void {
    if (++this.segmentCount > this.limits.maxSegments) {
      throw tooComplex(`more than ${this.limits.maxSegments} segments (hl7v2.maxSegments)`, name);
    }
    this.nodes++;
  }

  private parseMsh(line: string, encoding: Hl7Encoding): Hl7Segment | undefined {
    const encodingChars = encoding.component + encoding.repetition + encoding.escape + encoding.subcomponent + (encoding.truncation ?? '');
    // MSH-1 and MSH-2 are kept literally: they define the delimiters, so splitting or unescaping them is meaningless.
    const fields: Hl7Field[] | undefined = this.build ? [[], [[[encoding.field]]], [[[encodingChars]]]] : undefined;
    // MSH-3 starts after the separator that ends MSH-2 as sent (which may be longer than encodingChars: encodingFrom).
    const encodingEnd = line.indexOf(encoding.field, 4);
    const restStart = encodingEnd === -1 ? line.length + 1 : encodingEnd + 1;
    if (restStart <= line.length) this.scanFields(line, restStart, encoding, fields, 'MSH', 1, 2);
    return fields && { name: 'MSH', fields };
  }

  private parseSegment(line: string, encoding: Hl7Encoding, position: number): Hl7Segment | undefined {
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
    this.countSegment(name);
    const fields: Hl7Field[] | undefined = this.build ? [[]] : undefined;
    if (nameEnd !== -1) this.scanFields(line, nameEnd + 1, encoding, fields, name, position, 0);
    return fields && { name, fields };
  }

  /**
   * Appends the fields of `line`, starting at `start` (just after a field separator, with `fieldNumber` fields before
   * it), to `fields`, or only counts them when `fields` is undefined.
   *
   * One pass over the segment's characters. A character loop rather than String#indexOf per delimiter kind: values
   * in real messages are a few characters long, so the calls cost more than the loop (measured: counting an ADT^A01
   * this way takes a third of the time of indexOf jumps), and a 16 MiB value without delimiters still takes only
   * tens of milliseconds. It notes whether a value holds the escape character (only those are unescaped) or a NUL.
   * It allocates only the arrays the result holds, and a field that was not sent becomes [] without any inner levels:
   * most fields of a real message are empty, and [] is exactly what fieldOf() returns for a field past a segment's
   * end. Every count is checked against its cap at the delimiter that raises it.
   */
  private scanFields(line: string, start: number, encoding: Hl7Encoding, fields: Hl7Field[] | undefined, name: string, position: number, fieldNumber: number): void {
    const length = line.length;
    const { maxFieldsPerSegment, maxRepetitionsPerField, maxComponentsPerRepetition, maxSubcomponentsPerComponent, maxParsedNodes } = this.limits;
    const fieldCode = encoding.field.charCodeAt(0);
    const repetitionCode = encoding.repetition.charCodeAt(0);
    const componentCode = encoding.component.charCodeAt(0);
    const subcomponentCode = encoding.subcomponent.charCodeAt(0);
    const escapeCode = encoding.escape.charCodeAt(0);

    let field: Hl7Field | undefined;
    let repetition: Hl7Repetition | undefined;
    let component: Hl7Component | undefined;
    let repetitions = 0;
    let components = 0;
    let subcomponents = 0;
    let nodes = this.nodes;
    let fieldStart = start;
    let valueStart = start;
    let escaped = false;
    let nul = false;
    // Characters since the last one the loop had to look at; a long run is skipped with a search (see below).
    let run = 0;
    for (let at = start; ; at++) {
      // The segment end acts as the last field separator.
      let kind = FIELD;
      if (at < length) {
        const code = line.charCodeAt(at);
        if (code === componentCode) kind = COMPONENT;
        else if (code === repetitionCode) kind = REPETITION;
        else if (code === subcomponentCode) kind = SUBCOMPONENT;
        else if (code !== fieldCode) {
          // Escapes and NULs matter only when values are built (decoded, cleaned); counting steps over them.
          if (code === escapeCode && fields !== undefined) {
            escaped = true;
            run = 0;
          } else if (code === 0 && fields !== undefined) {
            nul = true;
            run = 0;
          } else if (++run === LONG_RUN) {
            // A long value (base64 of an embedded PDF, report text): the regular expression engine finds the next
            // character that matters several times faster than this loop, which keeps a 16 MiB value to tens of
            // milliseconds. Short values stay in the loop, where a search per value would cost more than it saves.
            const search = characterSearch(encoding, fields !== undefined);
            search.lastIndex = at + 1;
            const found = search.exec(line);
            at = (found === null ? length : found.index) - 1;
            run = 0;
          }
          continue;
        }
      }
      run = 0;

      if (kind !== FIELD || at !== fieldStart) {
        nodes++;
        if (++subcomponents > maxSubcomponentsPerComponent) {
          throw tooComplex(`segment ${position} (${name}) field ${fieldNumber + 1}: more than ${maxSubcomponentsPerComponent} subcomponents in a component (hl7v2.maxSubcomponentsPerComponent)`, `${name}-${fieldNumber + 1}`);
        }
        if (kind !== SUBCOMPONENT) {
          nodes++;
          subcomponents = 0;
          if (++components > maxComponentsPerRepetition) {
            throw tooComplex(`segment ${position} (${name}) field ${fieldNumber + 1}: more than ${maxComponentsPerRepetition} components in a repetition (hl7v2.maxComponentsPerRepetition)`, `${name}-${fieldNumber + 1}`);
          }
          if (kind !== COMPONENT) {
            nodes++;
            components = 0;
            if (++repetitions > maxRepetitionsPerField) {
              throw tooComplex(`segment ${position} (${name}) field ${fieldNumber + 1}: more than ${maxRepetitionsPerField} repetitions (hl7v2.maxRepetitionsPerField)`, `${name}-${fieldNumber + 1}`);
            }
            if (kind === FIELD) repetitions = 0;
          }
        }
      }
      if (kind === FIELD) {
        nodes++;
        if (++fieldNumber > maxFieldsPerSegment) {
          throw tooComplex(`segment ${position} (${name}): more than ${maxFieldsPerSegment} fields (hl7v2.maxFieldsPerSegment)`, name);
        }
      }
      if (nodes > maxParsedNodes) {
        throw tooComplex(`more than ${maxParsedNodes} parsed nodes, reached in segment ${position} (${name}) (hl7v2.maxParsedNodes)`, name);
      }

      if (fields !== undefined) {
        if (kind === FIELD && at === fieldStart) {
          fields.push([]);
        } else {
          let value = line.slice(valueStart, at);
          if (escaped) value = unescapeHl7(value, encoding);
          if ((escaped || nul) && value.includes(NUL)) value = this.removeNul(value, position - 1, fieldNumber + (kind === FIELD ? 0 : 1));
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
      }

      escaped = false;
      nul = false;
      valueStart = at + 1;
      if (kind === FIELD) {
        if (at >= length) {
          this.nodes = nodes;
          return;
        }
        fieldStart = at + 1;
      }
    }
  }

  /**
   * A value without its NUL characters. Neither PostgreSQL text nor jsonb can hold U+0000, and it is never text: the
   * intake refuses a raw NUL, so one here was sent as a hex escape (\X00\). The value keeps the rest; where it was
   * (segment index, field number) is recorded on the message, and the mapper reports it as an issue.
   */
  private removeNul(value: string, segment: number, field: number): string {
    const last = this.removedNul[this.removedNul.length - 1];
    if (last?.segment !== segment || last.field !== field) this.removedNul.push({ segment, field });
    return value.replaceAll(NUL, '');
  }
}

/** Characters after which the scan of a value searches instead of stepping (scanFields). */
const LONG_RUN = 64;

/** The searches characterSearch made, by the characters they look for. */
const characterSearches = new Map<string, RegExp>();

/**
 * A global search for the next delimiter of `encoding`, and with `escapesAndNul` also its escape character or a NUL
 * (what building values must see; counting looks for delimiters alone). One per character set, reused.
 */
function characterSearch(encoding: Hl7Encoding, escapesAndNul: boolean): RegExp {
  const characters = encoding.field + encoding.repetition + encoding.component + encoding.subcomponent + (escapesAndNul ? `${encoding.escape}\u0000` : '');
  let search = characterSearches.get(characters);
  if (search === undefined) {
    search = new RegExp(`[${[...characters].map((c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`).join('')}]`, 'g');
    if (characterSearches.size < 128) characterSearches.set(characters, search);
  }
  return search;
}

function tooComplex(detail: string, location: string): AnchorlineError {
  return new AnchorlineError('ANCHORLINE_ERR_HL7_TOO_COMPLEX', detail, { location });
}

/** Whether the line text[from, end) starts a segment: a segment name followed by the field separator or nothing. */
function startsSegment(text: string, from: number, end: number, encoding: Hl7Encoding): boolean {
  if (end - from < 3 || (end - from > 3 && text.charAt(from + 3) !== encoding.field)) return false;
  for (let i = from; i < from + 3; i++) if (!isSegmentNameChar(text.charCodeAt(i))) return false;
  return true;
}

/** Empty and whitespace-only lines separate nothing: they come from trailing terminators and padded files. */
function isBlank(text: string, from: number, end: number): boolean {
  if (end === from) return true;
  const first = text.charCodeAt(from);
  if (first !== 0x20 && first !== 0x09) return false;
  return text.slice(from, end).trim().length === 0;
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
  // MSH-2 is 4 or 5 characters (6 with one doubled); anything longer is refused by encodingFrom, unread.
  return encodingFrom(field, end === -1 ? msh.slice(4, 12) : msh.slice(4, Math.min(end, 12)));
}

/** Position of the next `delimiter` at or after `from`, or `length` (the segment end acts as the last separator). */
function nextIndex(line: string, delimiter: string, from: number, length: number): number {
  const at = line.indexOf(delimiter, from);
  return at === -1 ? length : at;
}

/** Segment names are three characters from A-Z and 0-9 (standard segments and Z-segments alike). */
function isSegmentName(name: string): boolean {
  if (name.length !== 3) return false;
  for (let i = 0; i < 3; i++) if (!isSegmentNameChar(name.charCodeAt(i))) return false;
  return true;
}

function isSegmentNameChar(code: number): boolean {
  return (code >= 0x30 && code <= 0x39) || (code >= 0x41 && code <= 0x5a);
}

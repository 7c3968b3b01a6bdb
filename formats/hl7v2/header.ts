/**
 * Reads the MSH segment without parsing the rest of the message.
 *
 * The intake calls this for every message, before charset decoding (on a latin1 view of the bytes) and again after
 * it, to route, deduplicate and acknowledge. It therefore looks only at the first segment and splits nothing else.
 *
 * Values are returned as sent, not unescaped: the ACK echoes them verbatim under the same delimiters (MSA-2 must be
 * the sender's MSH-10 byte for byte), and the codes read here (message type, version, ack types) never carry escapes.
 */
import { AnchorlineError } from '../../errors/index.ts';
import type { Hl7Encoding } from './types.ts';

export interface MshHeader {
  /** From MSH-1 (field separator) and MSH-2 (component, repetition, escape, subcomponent[, truncation]). */
  encoding: Hl7Encoding;
  /** MSH-3 as sent: the whole field, components still joined by the component separator. */
  sendingApplication: string;
  /** MSH-4 as sent. */
  sendingFacility: string;
  /** MSH-5 as sent. */
  receivingApplication: string;
  /** MSH-6 as sent. */
  receivingFacility: string;
  /** MSH-7, first component (the timestamp itself, without the pre-2.5 degree-of-precision component). */
  messageDateTime: string;
  /** MSH-9.1. */
  messageType: string;
  /** MSH-9.2; may be empty (ACKs, and v2.1/2.2 messages that carry the event only in EVN-1). */
  triggerEvent: string;
  /** MSH-9.3 (v2.3.1+); often empty. */
  messageStructure: string;
  /**
   * MSH-10 as sent; empty when the sender sent none (it is required, but some senders and many test messages leave it
   * out: the intake then keys the message by its content, store/blind-index.ts contentControlId).
   */
  controlId: string;
  /** MSH-11 as sent (processing id and, when sent, processing mode). */
  processingId: string;
  /** MSH-12.1. */
  versionId: string;
  /** MSH-15. */
  acceptAckType: string;
  /** MSH-16. */
  applicationAckType: string;
  /** MSH-18, first repetition. */
  characterSet: string;
}

const CR = 0x0d;
const LF = 0x0a;
const BOM = 0xfeff;

/**
 * Reads the MSH of `text`. Leading CR/LF and a byte order mark are skipped; the segment ends at CR, LF or CRLF.
 * Throws AnchorlineError ANCHORLINE_ERR_HL7_NO_MSH, _BAD_DELIMITERS or _MISSING_MESSAGE_TYPE.
 */
export function readMshHeader(text: string): MshHeader {
  let start = 0;
  while (start < text.length) {
    const c = text.charCodeAt(start);
    if (c !== CR && c !== LF && c !== BOM) break;
    start++;
  }
  if (!text.startsWith('MSH', start)) {
    throw new AnchorlineError('ANCHORLINE_ERR_HL7_NO_MSH', 'first segment is not MSH', { location: 'MSH' });
  }
  // A character loop rather than indexOf: the MSH is short, and indexOf for a terminator that a message lacks (LF in
  // a CR-terminated message) would scan the whole body.
  let end = start + 3;
  while (end < text.length) {
    const c = text.charCodeAt(end);
    if (c === CR || c === LF) break;
    end++;
  }
  const segment = text.slice(start, end);

  const fieldSeparator = segment.charAt(3);
  if (fieldSeparator === '' || !isDelimiterChar(fieldSeparator)) {
    throw new AnchorlineError(
      'ANCHORLINE_ERR_HL7_BAD_DELIMITERS',
      'MSH-1 field separator must be one printable non-alphanumeric ASCII character',
      { location: 'MSH-1' },
    );
  }
  const encodingEnd = segment.indexOf(fieldSeparator, 4);
  const encodingChars = segment.slice(4, encodingEnd === -1 ? segment.length : encodingEnd);
  const encoding = encodingFrom(fieldSeparator, encodingChars);

  // fields[0] is MSH-3: MSH-1 and MSH-2 are the delimiters themselves. Only MSH-3 to MSH-18 are read, and only so
  // many are split off: an MSH of millions of separators must not become millions of strings before anything counts.
  const fields = encodingEnd === -1 ? [] : segment.slice(encodingEnd + 1).split(fieldSeparator, 16);
  const field = (n: number): string => fields[n - 3] ?? '';
  const firstRepetition = (n: number): string => {
    const value = field(n);
    const cut = value.indexOf(encoding.repetition);
    return cut === -1 ? value : value.slice(0, cut);
  };
  const component = (n: number, index: number): string =>
    firstRepetition(n).split(encoding.component, index)[index - 1] ?? '';

  const messageType = component(9, 1);
  if (messageType.trim() === '') {
    // Only MSH-9.1 is required: v2.1/2.2 messages and ACKs may leave the trigger event empty.
    throw new AnchorlineError('ANCHORLINE_ERR_HL7_MISSING_MESSAGE_TYPE', 'MSH-9.1 message type is empty', {
      location: 'MSH-9',
    });
  }
  const controlId = field(10).trim() === '' ? '' : field(10);

  return {
    encoding,
    sendingApplication: field(3),
    sendingFacility: field(4),
    receivingApplication: field(5),
    receivingFacility: field(6),
    messageDateTime: component(7, 1),
    messageType,
    triggerEvent: component(9, 2),
    messageStructure: component(9, 3),
    controlId,
    processingId: field(11),
    versionId: component(12, 1),
    acceptAckType: field(15),
    applicationAckType: field(16),
    characterSet: firstRepetition(18),
  };
}

/**
 * MSH-2's encoding characters after MSH-1 `field`. One sender's slip is read rather than refused: MSH-2 written with
 * its escape character doubled (`^~\\&`, a string escaped once too often on its way into an interface's
 * configuration), which no valid MSH-2 can be, since the characters must be distinct. It is read as `^~\&`.
 */
export function encodingFrom(field: string, sent: string): Hl7Encoding {
  const chars = sent.length === 5 && sent.charAt(2) === sent.charAt(3) ? sent.slice(0, 3) + sent.slice(4) : sent;
  const valid =
    (chars.length === 4 || chars.length === 5) &&
    [...chars].every((c, i) => isDelimiterChar(c) && c !== field && chars.indexOf(c) === i);
  if (!valid) {
    throw new AnchorlineError(
      'ANCHORLINE_ERR_HL7_BAD_DELIMITERS',
      'MSH-2 must be 4 or 5 distinct printable non-alphanumeric ASCII characters, none equal to MSH-1',
      { location: 'MSH-2' },
    );
  }
  const encoding: Hl7Encoding = {
    field,
    component: chars.charAt(0),
    repetition: chars.charAt(1),
    escape: chars.charAt(2),
    subcomponent: chars.charAt(3),
  };
  if (chars.length === 5) encoding.truncation = chars.charAt(4);
  return encoding;
}

/**
 * Delimiters are limited to printable ASCII punctuation, which is stricter than "non-alphanumeric": the header is first
 * read from a latin1 view of the raw bytes, and only ASCII delimiters read the same before and after charset decoding.
 * Whitespace and control characters would also make segments ambiguous.
 */
export function isDelimiterChar(c: string): boolean {
  const code = c.charCodeAt(0);
  if (code < 0x21 || code > 0x7e) return false;
  const isDigit = code >= 0x30 && code <= 0x39;
  const isLetter = (code >= 0x41 && code <= 0x5a) || (code >= 0x61 && code <= 0x7a);
  return !isDigit && !isLetter;
}


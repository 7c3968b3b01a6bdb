/**
 * HL7 v2 escape sequence decoding (v2.9 chapter 2.7, "Use of escape sequences in text fields").
 *
 * The parser splits a field on its delimiters first and only then decodes each leaf value, so a decoded `|` or `^`
 * (from \F\ or \S\) is data, never structure.
 */

import { isUtf8 } from 'node:buffer';

import type { Hl7Encoding } from './types.ts';

/**
 * HL7 2.7 names `#` as the truncation character; a sender that writes \P\ without declaring a fifth MSH-2 character
 * still means "the truncation character", so that is what it decodes to.
 */
const DEFAULT_TRUNCATION = '#';

const HEX_DIGITS = /^[0-9A-Fa-f]*$/;

/**
 * Decodes every escape sequence in one leaf value (a subcomponent, or a component without subcomponents).
 *
 * - \F\ \S\ \T\ \R\ \E\ \P\ become the field, component, subcomponent, repetition, escape and truncation characters.
 * - \Xhh..\ becomes the bytes it spells, read as UTF-8 when they are valid UTF-8 and as Latin-1 otherwise: the text
 *   around it is already decoded, so the hex bytes are the only raw bytes left, and senders use both encodings.
 * - \.br\ and \.sp..\ become a newline; every other formatted-text command (\.in..\ \.ti..\ \.sk..\ \.ce\ \.fi\
 *   \.nf\), highlighting (\H\ \N\), locally defined escapes (\Zxx\) and character set switches (\Cxxyy\ \Mxxyyzz\)
 *   are removed. Charset switches carry no text: the intake has already decoded the bytes to a string.
 * - An escape sequence that is not terminated, or whose body is not one of the above, is kept literally so that no
 *   sent character is silently lost.
 */
export function unescapeHl7(value: string, enc: Hl7Encoding): string {
  const esc = enc.escape;
  let start = value.indexOf(esc);
  if (start === -1) return value;

  let decodedValue = '';
  let copiedUpTo = 0;
  while (start !== -1) {
    const end = value.indexOf(esc, start + 1);
    if (end === -1) break;
    const replacement = decodeEscapeBody(value.slice(start + 1, end), enc);
    if (replacement !== undefined) {
      decodedValue += value.slice(copiedUpTo, start) + replacement;
      copiedUpTo = end + 1;
    }
    // An unknown sequence is kept as it stands: scanning resumes after its closing escape character, which pairs it
    // with its opener exactly as a receiver that knew the sequence would have.
    start = value.indexOf(esc, end + 1);
  }
  return decodedValue + value.slice(copiedUpTo);
}

/** The text one escape body stands for, or undefined when the body is not a known escape (kept literally). */
function decodeEscapeBody(body: string, enc: Hl7Encoding): string | undefined {
  if (body.length === 1) {
    switch (body) {
      case 'F':
        return enc.field;
      case 'S':
        return enc.component;
      case 'T':
        return enc.subcomponent;
      case 'R':
        return enc.repetition;
      case 'E':
        return enc.escape;
      case 'P':
        return enc.truncation ?? DEFAULT_TRUNCATION;
      case 'H':
      case 'N':
        return '';
      default:
        return undefined;
    }
  }
  switch (body.charCodeAt(0)) {
    case 0x58 /* X */:
      return decodeHex(body.slice(1));
    case 0x2e /* . */:
      return decodeFormatting(body);
    case 0x5a /* Z */:
    case 0x43 /* C */:
    case 0x4d /* M */:
      return '';
    default:
      return undefined;
  }
}

function decodeHex(hex: string): string | undefined {
  if (hex.length % 2 !== 0 || !HEX_DIGITS.test(hex)) return undefined;
  const bytes = Buffer.from(hex, 'hex');
  return isUtf8(bytes) ? bytes.toString('utf8') : bytes.toString('latin1');
}

/** Formatted-text (FT) commands: only line breaks carry meaning in plain text. */
function decodeFormatting(body: string): string {
  if (body === '.br' || body.startsWith('.sp')) return '\n';
  return '';
}

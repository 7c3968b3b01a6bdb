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

  // The decoded value is gathered as pieces joined a chunk at a time: appending each piece to a string would leave a
  // rope of one node per piece (tens of bytes each), and a 16 MiB field of escapes has millions of pieces.
  const chunks: string[] = [];
  const pieces: string[] = [];
  const escCode = esc.charCodeAt(0);
  let copiedUpTo = 0;
  while (start !== -1) {
    // One-character sequences (\F\ \S\ \T\ \R\ \E\ ...) are by far the most common: their end needs no search
    // and their body no string.
    const oneCharacter = value.charCodeAt(start + 2) === escCode && value.charCodeAt(start + 1) !== escCode;
    const end = oneCharacter ? start + 2 : value.indexOf(esc, start + 1);
    if (end === -1) break;
    const replacement = oneCharacter ? decodeOneCharacter(value.charAt(start + 1), enc) : decodeEscapeBody(value.slice(start + 1, end), enc);
    if (replacement !== undefined) {
      if (start > copiedUpTo) pieces.push(value.slice(copiedUpTo, start));
      if (replacement !== '') pieces.push(replacement);
      copiedUpTo = end + 1;
      if (pieces.length >= PIECES_PER_CHUNK) {
        chunks.push(pieces.join(''));
        pieces.length = 0;
      }
    }
    // An unknown sequence is kept as it stands: scanning resumes after its closing escape character, which pairs it
    // with its opener exactly as a receiver that knew the sequence would have.
    start = value.indexOf(esc, end + 1);
  }
  if (copiedUpTo < value.length) pieces.push(value.slice(copiedUpTo));
  if (chunks.length === 0) return pieces.join('');
  chunks.push(pieces.join(''));
  return chunks.join('');
}

const PIECES_PER_CHUNK = 4096;

/** The text one escape body stands for, or undefined when the body is not a known escape (kept literally). */
function decodeEscapeBody(body: string, enc: Hl7Encoding): string | undefined {
  if (body.length === 1) return decodeOneCharacter(body, enc);
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

/** \F\ \S\ \T\ \R\ \E\ \P\ \H\ \N\: the one-character escapes. */
function decodeOneCharacter(body: string, enc: Hl7Encoding): string | undefined {
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

function decodeHex(hex: string): string | undefined {
  // One byte, the usual case (\X0D\, \X0A\): below 0x80 it is the same character in UTF-8 and Latin-1, and above
  // it a lone byte is never valid UTF-8, so it is the Latin-1 character. No buffer for it.
  if (hex.length === 2) {
    const high = hexValue(hex.charCodeAt(0));
    const low = hexValue(hex.charCodeAt(1));
    return high < 0 || low < 0 ? undefined : String.fromCharCode(high * 16 + low);
  }
  if (hex.length % 2 !== 0 || !HEX_DIGITS.test(hex)) return undefined;
  const bytes = Buffer.from(hex, 'hex');
  // Some senders write 16-bit code units, high byte first (\X00E9\ for é, \X000D\ for CR): a NUL before each
  // character is never text, so pairs of a zero byte and a non-zero one are read as those characters.
  if (isZeroHighUtf16(bytes)) {
    let text = '';
    for (let i = 1; i < bytes.length; i += 2) text += String.fromCharCode(bytes[i]!);
    return text;
  }
  return isUtf8(bytes) ? bytes.toString('utf8') : bytes.toString('latin1');
}

/** Whether `bytes` are pairs of a zero byte and a non-zero byte (UTF-16BE below U+0100, without NUL). */
function isZeroHighUtf16(bytes: Buffer): boolean {
  if (bytes.length % 2 !== 0) return false;
  for (let i = 0; i < bytes.length; i += 2) if (bytes[i] !== 0 || bytes[i + 1] === 0) return false;
  return true;
}

/** The value of one hexadecimal digit, or -1. */
function hexValue(code: number): number {
  if (code >= 0x30 && code <= 0x39) return code - 0x30;
  if (code >= 0x41 && code <= 0x46) return code - 0x37;
  if (code >= 0x61 && code <= 0x66) return code - 0x57;
  return -1;
}

/** Formatted-text (FT) commands: only line breaks carry meaning in plain text. */
function decodeFormatting(body: string): string {
  if (body === '.br' || body.startsWith('.sp')) return '\n';
  return '';
}

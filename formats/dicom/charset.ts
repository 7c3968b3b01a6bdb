/**
 * Text values of a DICOM instance -> JavaScript strings, by the instance's Specific Character Set (0008,0005).
 *
 * dicom-character-set does the decoding, code extensions (ISO 2022 escapes, e.g. `\ISO 2022 IR 149` for Korean)
 * included. It never fails: TextDecoder turns bytes it cannot map into U+FFFD, and bytes above 0x7F where no G1 set
 * is designated come out as Latin-1. So before trusting it, the bytes are checked against the declared set here
 * (PS3.5 6.1.2.5): high bytes need a G1 set (initially designated or designated by an escape), escape sequences must
 * designate a set the attribute declares, and the decoded text must hold no U+FFFD.
 *
 * Korean devices commonly write EUC-KR bytes with no escapes, declaring no character set, `ISO_IR 192`, or
 * `\ISO 2022 IR 149` without the ESC $ ) C the standard requires, or write it once per name but not again after
 * each PN delimiter. Bytes that are not valid in the declared set are then read as CP949, the superset of EUC-KR
 * that Korean systems actually send. Bytes valid in neither are refused with a coded error: a mangled name would
 * otherwise be stored as the patient's name.
 */
import iconv from 'iconv-lite';
import { characterSets, convertBytes, type CodeElement } from 'dicom-character-set';
import { AnchorlineError } from '../../errors/index.ts';
import type { TextDecoding } from './types.ts';

const ESC = 0x1b;
const BACKSLASH = 0x5c;
const CARET = 0x5e;
const EQUALS = 0x3d;
/** TAB, LF, FF, CR: delimiters that return every VR to the initial designations (PS3.5 6.1.2.5.3). */
const CONTROL_DELIMITERS = [0x09, 0x0a, 0x0c, 0x0d];
const REPLACEMENT = '\uFFFD';

export interface DecodedText {
  text: string;
  decoding: TextDecoding;
}

/**
 * Names equipment writes for a character set instead of its Defined Term, and the term each means. Misspellings of
 * the ISO-IR terms themselves (`ISO-IR 100`, `ISO_IR100`, `ISO IR 100`, `ISO_IR 149`) are corrected by pattern in
 * correctedTerm. The Chinese GB2312 and EUC-CN are read as GB18030, their superset; the Korean names as KS X 1001 in
 * G1 (EUC-KR), with CP949 as ever the fallback for its extensions.
 */
const ALIASES: Readonly<Record<string, string>> = {
  'UTF-8': 'ISO_IR 192', UTF8: 'ISO_IR 192', 'ISO-10646': 'ISO_IR 192',
  LATIN1: 'ISO_IR 100', 'LATIN-1': 'ISO_IR 100', 'ISO-8859-1': 'ISO_IR 100', 'ISO8859-1': 'ISO_IR 100', 'ISO_8859-1': 'ISO_IR 100',
  GB2312: 'GB18030', 'EUC-CN': 'GB18030',
  'EUC-KR': 'ISO 2022 IR 149', EUCKR: 'ISO 2022 IR 149', 'KS_C_5601-1987': 'ISO 2022 IR 149', KSC5601: 'ISO 2022 IR 149', 'KS X 1001': 'ISO 2022 IR 149', CP949: 'ISO 2022 IR 149',
};

const MISSPELLED_ISO_IR = /^ISO[-_ ]?(?:2022[-_ ]?)?IR[-_ ]?(\d+)$/;

/** The Defined Term a sender's term means: itself when it is one, else by ALIASES or the ISO-IR pattern, else itself. */
function correctedTerm(term: string): string {
  if (term === '' || Object.hasOwn(characterSets, term)) return term;
  if (Object.hasOwn(ALIASES, term)) return ALIASES[term]!;
  const number = MISSPELLED_ISO_IR.exec(term)?.[1];
  if (number !== undefined) for (const candidate of [`ISO_IR ${number}`, `ISO 2022 IR ${number}`]) if (Object.hasOwn(characterSets, candidate)) return candidate;
  return term;
}

/**
 * A Specific Character Set value with each term as the Defined Term it means (correctedTerm), and whether any was
 * corrected: `ISO-IR 100` reads as `ISO_IR 100`, `UTF-8` as `ISO_IR 192`. The parser notes a correction.
 */
export function correctedCharacterSet(specificCharacterSet: string): { value: string; corrected: boolean } {
  const terms = specificCharacterSet.split('\\').map((term) => term.trim().toUpperCase());
  const corrected = terms.map(correctedTerm);
  return { value: corrected.join('\\'), corrected: corrected.some((term, i) => term !== terms[i]) };
}

/**
 * The Defined Terms of a Specific Character Set value, normalised as dicom-character-set reads them (misspelled terms
 * corrected): an empty first value is the default repertoire (ISO 2022 IR 6 when code extensions follow).
 */
export function characterSetTerms(specificCharacterSet: string): string[] {
  return termsOf(correctedCharacterSet(specificCharacterSet).value);
}

/** The terms of a corrected value, the default repertoire named. */
function termsOf(corrected: string): string[] {
  const terms = corrected.split('\\');
  if (terms[0] === '') terms[0] = terms.length > 1 ? 'ISO 2022 IR 6' : 'ISO_IR 6';
  return terms;
}

/** True when every term of the value is a Defined Term anchorline can decode. */
export function isKnownCharacterSet(specificCharacterSet: string): boolean {
  return characterSetTerms(specificCharacterSet).every((term) => Object.hasOwn(characterSets, term));
}

/** Delimiters that reset code extensions for a VR: `\` separates values except in ST/LT/UT; `^` and `=` in PN. */
function delimitersFor(vr: string): number[] {
  const delimiters = [...CONTROL_DELIMITERS];
  if (!['UT', 'ST', 'LT'].includes(vr)) delimiters.push(BACKSLASH);
  if (vr === 'PN') delimiters.push(CARET, EQUALS);
  return delimiters;
}

function hasHighOrEscape(bytes: Uint8Array): { high: boolean; escape: boolean } {
  let high = false;
  let escape = false;
  for (const byte of bytes) {
    if (byte >= 0x80) high = true;
    else if (byte === ESC) escape = true;
  }
  return { high, escape };
}

function escapeAt(bytes: Uint8Array, at: number, element: CodeElement): boolean {
  const sequence = element.escapeSequence;
  if (at + sequence.length > bytes.length) return false;
  for (let i = 0; i < sequence.length; i++) if (bytes[at + i] !== sequence[i]) return false;
  return true;
}

/**
 * Whether the bytes use only the code elements an ISO 2022 Specific Character Set makes available: walks them as
 * a decoder would, tracking the G0 and G1 designations.
 */
function validIso2022(bytes: Uint8Array, terms: string[], vr: string): boolean {
  const elements = terms.flatMap((term) => characterSets[term]?.elements ?? []);
  const first = characterSets[terms[0]!]?.elements ?? [];
  const initial = { G0: first.find((e) => e.codeElement === 'G0'), G1: first.find((e) => e.codeElement === 'G1') };
  const active = { ...initial };
  const delimiters = delimitersFor(vr);
  let i = 0;
  while (i < bytes.length) {
    const byte = bytes[i]!;
    if (byte === ESC) {
      const designated = elements.find((element) => escapeAt(bytes, i, element));
      if (designated === undefined) return false;
      active[designated.codeElement] = designated;
      i += designated.escapeSequence.length;
      continue;
    }
    if (byte >= 0x80) {
      const g1 = active.G1;
      if (g1 === undefined) return false;
      if (g1.bytesPerCodePoint === 2) {
        if (i + 1 >= bytes.length || bytes[i + 1]! < 0x80) return false;
        i += 2;
      } else {
        i += 1;
      }
      continue;
    }
    if (active.G0 !== undefined && active.G0.bytesPerCodePoint === 2 && !delimiters.includes(byte) && byte > 0x20) {
      // A two-byte G0 set (JIS X 0208 after ESC $ B): characters are byte pairs in 0x21-0x7E.
      i += 2;
      continue;
    }
    if (delimiters.includes(byte)) Object.assign(active, initial);
    i += 1;
  }
  return true;
}

function strictDecode(encoding: string, bytes: Uint8Array): string | undefined {
  try {
    return new TextDecoder(encoding, { fatal: true }).decode(bytes);
  } catch {
    return undefined;
  }
}

/** The text as the declared set reads it, or undefined when the bytes are not valid in that set. */
function decodeDeclared(bytes: Uint8Array, terms: string[], specificCharacterSet: string, vr: string): string | undefined {
  const { high, escape } = hasHighOrEscape(bytes);
  if (!high && !escape) return Buffer.from(bytes).toString('latin1');
  const single = terms.length === 1 && !terms[0]!.startsWith('ISO 2022');
  if (single) {
    const term = terms[0]!;
    // The default repertoire is ASCII: anything above 0x7F is outside it (the library would read it as UTF-8).
    if (term === 'ISO_IR 6' || escape) return undefined;
    if (term === 'ISO_IR 192') return strictDecode('utf-8', bytes);
    if (term === 'GB18030' || term === 'GBK') return strictDecode('gb18030', bytes);
  } else if (!validIso2022(bytes, terms, vr)) {
    return undefined;
  }
  const text = convertBytes(specificCharacterSet, bytes, { vr });
  return text.includes(REPLACEMENT) ? undefined : text;
}

/** ESC $ ) C: designates KS X 1001 (ISO 2022 IR 149) as G1. */
const KS_X_1001_G1 = [ESC, 0x24, 0x29, 0x43];

/**
 * The bytes as CP949, or undefined when they are not valid CP949. Designations of KS X 1001 are dropped first: a
 * sender that writes ESC $ ) C once per name but not again after each `^` and `=` (as PS3.5 requires) means EUC-KR
 * throughout. Any other escape sequence means some other set is in use, and the bytes are not read as CP949.
 */
function decodeCp949(bytes: Uint8Array): string | undefined {
  const kept: number[] = [];
  for (let i = 0; i < bytes.length; i++) {
    if (bytes[i] === ESC) {
      if (!KS_X_1001_G1.every((byte, k) => bytes[i + k] === byte)) return undefined;
      i += KS_X_1001_G1.length - 1;
      continue;
    }
    kept.push(bytes[i]!);
  }
  const text = iconv.decode(Buffer.from(kept), 'cp949');
  return text.includes(REPLACEMENT) ? undefined : text;
}

/** What is safe to say about a sender's Specific Character Set in an error: printable ASCII, at most 64 characters. */
function shownCharacterSet(value: string): string {
  const printable = value.replace(/[^\x20-\x7e]/g, '?');
  return printable.length > 64 ? `${printable.slice(0, 64)}...` : printable;
}

/**
 * Decodes one text value (the bytes of one element, padding included) in the instance's Specific Character Set,
 * falling back to CP949 as described above. `location` names the attribute for errors, e.g. '(0010,0010)'.
 * Throws ANCHORLINE_ERR_CHARSET_MISMATCH when the bytes are valid in neither, ANCHORLINE_ERR_DICOM_UNSUPPORTED when
 * the declared set is unknown and the bytes are not plain ASCII or CP949.
 */
export function decodeDicomText(bytes: Uint8Array, specificCharacterSet: string, vr: string, location: string): DecodedText {
  const corrected = correctedCharacterSet(specificCharacterSet).value;
  const terms = termsOf(corrected);
  const known = terms.every((term) => Object.hasOwn(characterSets, term));
  const { high, escape } = hasHighOrEscape(bytes);
  // Plain ASCII reads the same in every set, a set anchorline does not know included.
  const declared = known ? decodeDeclared(bytes, terms, corrected, vr) : high || escape ? undefined : Buffer.from(bytes).toString('latin1');
  if (declared !== undefined) return { text: declared, decoding: 'declared' };
  const fallback = decodeCp949(bytes);
  if (fallback !== undefined) return { text: fallback, decoding: 'cp949' };
  if (!known) {
    throw new AnchorlineError('ANCHORLINE_ERR_DICOM_UNSUPPORTED', `${location}: Specific Character Set '${shownCharacterSet(specificCharacterSet)}' is not supported`, { location });
  }
  throw new AnchorlineError(
    'ANCHORLINE_ERR_CHARSET_MISMATCH',
    `${location}: bytes are valid neither in Specific Character Set '${shownCharacterSet(specificCharacterSet) || 'ISO_IR 6'}' nor in CP949`,
    { location },
  );
}

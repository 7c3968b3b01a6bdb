/**
 * Turns raw HL7 v2 bytes into text according to MSH-18, and text back into bytes for replies.
 *
 * Decoding is strict because senders lie: a system configured for "UNICODE UTF-8" that really sends EUC-KR would
 * otherwise store replacement characters in a patient's name. Bytes that are not valid in the declared character set
 * are rejected with ANCHORLINE_ERR_CHARSET_MISMATCH rather than repaired.
 *
 * Two declarations are read past, because the bytes leave no doubt: MSH-18 `ASCII` on bytes that are valid UTF-8 with
 * non-ASCII characters (UTF-8 is ASCII's superset, and strict UTF-8 validity is very unlikely by chance), and an
 * MSH-18 value that names no character set at all (`PRELIM`, `UNICODE`, a typo) on bytes that are valid UTF-8. Either
 * decodes as UTF-8 and says so (`declaredCharsetIgnored`), so the mapping records it on the message.
 */
import { isAscii, isUtf8 } from 'node:buffer';
import iconv from 'iconv-lite';
import { AnchorlineError } from '../../errors/index.ts';
import { readMshHeader, type MshHeader } from './header.ts';

export interface DecodedHl7 {
  text: string;
  /** The iconv-lite name of the character set the bytes were decoded with (see resolveCharset). */
  charset: string;
  /** Read from the decoded text, so non-ASCII header fields are correct. */
  header: MshHeader;
  /** MSH-18 was read past: it named no character set, or ASCII, and the bytes are valid UTF-8 (decoded as such). */
  declaredCharsetIgnored?: true;
}

/**
 * MSH-18 values (HL7 table 0211, plus what Korean and other systems really send) by normalized key: upper case with
 * spaces, hyphens, underscores, slashes and dots removed, so 'KS X 1001', 'ks_x_1001' and 'KSX1001' are one key.
 * UTF-16 and UTF-32 are left out on purpose: their bytes are not ASCII-compatible, so neither MLLP framing nor the
 * latin1 MSH read works on them.
 */
const CHARSETS: ReadonlyMap<string, string> = new Map([
  ['ASCII', 'ascii'],
  ['USASCII', 'ascii'],
  ['ISOIR6', 'ascii'],
  ...[1, 2, 3, 4, 5, 6, 7, 8, 9, 15].flatMap((n): [string, string][] => [
    [`8859${n}`, `iso-8859-${n}`],
    [`ISO8859${n}`, `iso-8859-${n}`],
  ]),
  ['ISOIR100', 'iso-8859-1'],
  // '8859' alone (no part) is what older systems send for Latin-1.
  ['8859', 'iso-8859-1'],
  ['UNICODEUTF8', 'utf-8'],
  ['UTF8', 'utf-8'],
  ['ISOIR192', 'utf-8'],
  // KS X 1001 is the character set and EUC-KR its usual byte encoding; Korean systems use the names interchangeably.
  ['KSX1001', 'euc-kr'],
  ['EUCKR', 'euc-kr'],
  ['KSC5601', 'euc-kr'],
  ['KSC56011987', 'euc-kr'],
  ['ISOIR149', 'euc-kr'],
  ['CP949', 'cp949'],
  ['MS949', 'cp949'],
  ['UHC', 'cp949'],
  ['WINDOWS949', 'cp949'],
  ['XWINDOWS949', 'cp949'],
  ['WINDOWS1252', 'windows-1252'],
  ['CP1252', 'windows-1252'],
  ['GB180302000', 'gb18030'],
  ['GB18030', 'gb18030'],
  // GB2312 (and its EUC-CN encoding) and GBK are subsets of GB18030: what Chinese systems label them decodes the same.
  ['GB2312', 'gb18030'],
  ['EUCCN', 'gb18030'],
  ['GBK', 'gb18030'],
  ['BIG5', 'big5'],
]);

/** Every name resolveCharset can return; encodeHl7Text accepts only these. */
const RESOLVED_NAMES: ReadonlySet<string> = new Set(CHARSETS.values());

/**
 * Codecs used to decode each resolved name. EUC-KR is decoded as CP949 (Unified Hangul Code), a strict superset:
 * Korean systems labelled EUC-KR routinely send the extra CP949 syllables (for example in names), and rejecting those
 * would reject real patients.
 */
const DECODER_FOR: Readonly<Record<string, string>> = { 'euc-kr': 'cp949' };

const UTF8_BOM = Buffer.from([0xef, 0xbb, 0xbf]);
const REPLACEMENT = '\ufffd';
const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** The iconv-lite encoding for an MSH-18 value; an empty value means `defaultCharset`. */
export function resolveCharset(msh18: string, defaultCharset: string): string {
  const declared = msh18.trim() === '' ? defaultCharset : msh18;
  const resolved = CHARSETS.get(normalizeCharsetName(declared));
  if (resolved === undefined) {
    // The declared value itself stays out of the detail: details hold field names only.
    throw new AnchorlineError(
      'ANCHORLINE_ERR_CHARSET_UNSUPPORTED',
      msh18.trim() === '' ? 'the default character set is not supported' : 'MSH-18 names an unsupported character set',
      { location: 'MSH-18' },
    );
  }
  return resolved;
}

/**
 * Decodes one message's bytes. The MSH is first read from a latin1 view (its delimiters and MSH-18 are ASCII in every
 * supported charset), MSH-18 picks the charset, the whole message is decoded strictly, and the header is read again
 * from the text so that non-ASCII sending/receiving names come out right.
 */
export function decodeHl7Bytes(raw: Buffer, defaultCharset = 'UTF-8'): DecodedHl7 {
  const body = raw.subarray(0, 3).equals(UTF8_BOM) ? raw.subarray(3) : raw;
  const provisional = readMshHeader(firstSegmentLatin1(body));
  let charset: string;
  try {
    charset = resolveCharset(provisional.characterSet, defaultCharset);
  } catch (error) {
    if (provisional.characterSet.trim() === '' || namesAnEncoding(provisional.characterSet) || !isUtf8(body)) throw error;
    return { ...decodedAsUtf8(body), declaredCharsetIgnored: true };
  }
  if (charset === 'ascii' && !isAscii(body) && isUtf8(body)) return { ...decodedAsUtf8(body), declaredCharsetIgnored: true };
  const text = decodeStrict(body, charset);
  const header = readMshHeader(text);
  // In GB18030 and Big5 a trail byte can be '|' or '^', so a non-ASCII MSH-3..17 can split differently in the latin1
  // view. If the decoded MSH then declares another charset, the bytes contradict themselves.
  if (resolveCharset(header.characterSet, defaultCharset) !== charset) {
    throw new AnchorlineError(
      'ANCHORLINE_ERR_CHARSET_MISMATCH',
      'MSH-18 reads differently before and after decoding with the declared character set',
      { location: 'MSH-18' },
    );
  }
  return { text, charset, header };
}

/**
 * Whether an MSH-18 value names a real encoding this engine does not read (UTF-16, UTF-32, JIS X 0208/0212, CNS
 * 11643, the 8859 parts not listed): such a declaration is believed and refused, never read past.
 */
function namesAnEncoding(msh18: string): boolean {
  return /^(UNICODE)?(UTF(16|32)(LE|BE)?|UCS\d*)$|^ISOIR(14|87|159)$|^CNS|JIS|^(ISO)?8859\d+$/.test(normalizeCharsetName(msh18));
}

function decodedAsUtf8(body: Buffer): DecodedHl7 {
  const text = strictUtf8.decode(body);
  return { text, charset: 'utf-8', header: readMshHeader(text) };
}

/**
 * Encodes reply text (an ACK) in a charset returned by resolveCharset. A character the charset cannot represent
 * becomes '?', which only affects text the engine did not receive in that charset in the first place.
 */
export function encodeHl7Text(text: string, charset: string): Buffer {
  if (!RESOLVED_NAMES.has(charset)) {
    throw new AnchorlineError('ANCHORLINE_ERR_CHARSET_UNSUPPORTED', 'reply character set is not supported', {
      location: 'MSH-18',
    });
  }
  if (charset === 'utf-8') return Buffer.from(text, 'utf8');
  return iconv.encode(text, DECODER_FOR[charset] ?? charset);
}

function normalizeCharsetName(name: string): string {
  return name.trim().toUpperCase().replace(/[\s\-_/.]+/g, '');
}

/** The first segment (after any leading CR/LF) as latin1, without converting the rest of a possibly large message. */
function firstSegmentLatin1(bytes: Buffer): string {
  let start = 0;
  while (start < bytes.length && (bytes[start] === 0x0d || bytes[start] === 0x0a)) start++;
  let end = start;
  while (end < bytes.length && bytes[end] !== 0x0d && bytes[end] !== 0x0a) end++;
  return bytes.toString('latin1', start, end);
}

function decodeStrict(bytes: Buffer, charset: string): string {
  if (charset === 'utf-8') {
    try {
      return strictUtf8.decode(bytes);
    } catch {
      throw mismatch(charset);
    }
  }
  if (charset === 'ascii') {
    if (!isAscii(bytes)) throw mismatch(charset);
    return bytes.toString('latin1');
  }
  const codec = DECODER_FOR[charset] ?? charset;
  const text = iconv.decode(bytes, codec);
  // iconv-lite has no fatal mode: it substitutes U+FFFD for undecodable bytes. U+FFFD in the output is therefore an
  // error unless the input really encoded U+FFFD (only GB18030 can), which re-encoding tells apart.
  if (text.includes(REPLACEMENT) && !iconv.encode(text, codec).equals(bytes)) throw mismatch(charset);
  return text;
}

function mismatch(charset: string): AnchorlineError {
  return new AnchorlineError('ANCHORLINE_ERR_CHARSET_MISMATCH', `message bytes are not valid ${charset}`, {
    location: 'MSH-18',
  });
}

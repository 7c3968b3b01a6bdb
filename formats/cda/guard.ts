/**
 * The checks a C-CDA document passes before any XML parser sees it, and its decoding to text.
 *
 * XML parsers are where document-borne attacks live: external entities (XXE) read files or reach the network, and
 * entity expansion ("billion laughs") turns a few kilobytes into gigabytes. CDA needs neither (its schema is applied
 * by reference, never by DOCTYPE), so any markup declaration is refused outright, wherever it stands, before the
 * document is parsed; the parser never sees one. Size is capped before decoding and nesting depth by a scan that
 * builds nothing, so a hostile document costs one linear pass and no tree.
 *
 * The scan also checks what the parser used by @medplum/ccda (fast-xml-parser) lets through silently: end tags that
 * do not match their start tag, text or a second element outside the root, references to entities XML does not
 * define. Numeric character references (`&#54861;`) are decoded here because that parser leaves them as they are;
 * the five that are markup (`<`, `>`, `&`, quotes) become the entity the parser does decode.
 */

import iconv from 'iconv-lite';

import { AnchorlineError } from '../../errors/index.ts';

export interface CdaLimits {
  /** Largest document, in bytes. Default 10 MiB (config `cda.maxBytes`). */
  maxBytes: number;
  /** Deepest element nesting. Default 200 (config `cda.maxDepth`). */
  maxDepth: number;
}

export const DEFAULT_CDA_LIMITS: Readonly<CdaLimits> = Object.freeze({ maxBytes: 10 * 1024 * 1024, maxDepth: 200 });

export interface CdaText {
  /** The document as text, numeric character references decoded. */
  text: string;
  /** The iconv-lite name of the encoding it was decoded from. */
  charset: string;
  /**
   * readCdaText only: the markup inside each top-level section's first `text` element (numeric character references
   * decoded), one slot per section of the structured body in document order, undefined for a section without one.
   */
  sectionNarratives?: Array<string | undefined>;
}

/** XML encoding names (lower case, as in an XML declaration or a charset parameter) -> iconv-lite codec. */
const ENCODINGS: ReadonlyMap<string, string> = new Map([
  ['utf-8', 'utf-8'],
  ['utf8', 'utf-8'],
  ['us-ascii', 'ascii'],
  ['ascii', 'ascii'],
  ['utf-16', 'utf-16'],
  ['utf-16le', 'utf-16le'],
  ['utf-16be', 'utf-16be'],
  ['iso-8859-1', 'iso-8859-1'],
  ['latin1', 'iso-8859-1'],
  ['iso-8859-15', 'iso-8859-15'],
  ['windows-1252', 'windows-1252'],
  ['cp1252', 'windows-1252'],
  // Decoded as CP949, the superset Korean systems labelled EUC-KR actually send (as for HL7 v2).
  ['euc-kr', 'cp949'],
  ['ks_c_5601-1987', 'cp949'],
  ['cp949', 'cp949'],
  ['windows-949', 'cp949'],
  ['gb18030', 'gb18030'],
  ['big5', 'big5'],
  ['shift_jis', 'shift_jis'],
]);

const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Checks and decodes one document: size, encoding (BOM, else the charset parameter of its media type, else the XML
 * declaration, else UTF-8), no markup declarations, well-formed tags within `limits.maxDepth`, a ClinicalDocument
 * root in the default namespace. Throws AnchorlineError (ANCHORLINE_ERR_CDA_*, ANCHORLINE_ERR_CHARSET_MISMATCH).
 */
export function readCdaText(raw: Buffer, limits: CdaLimits = DEFAULT_CDA_LIMITS, charsetParameter?: string): CdaText {
  if (raw.length > limits.maxBytes) {
    throw new AnchorlineError('ANCHORLINE_ERR_CDA_TOO_LARGE', `the document is ${raw.length} bytes; at most ${limits.maxBytes} are accepted`);
  }
  const { text, charset } = documentText(raw, charsetParameter);
  const sectionNarratives: Array<string | undefined> = [];
  scanMarkup(text, limits.maxDepth, sectionNarratives);
  return { text: decodeCharacterReferences(text), charset, sectionNarratives: sectionNarratives.map((markup) => (markup === undefined ? undefined : decodeCharacterReferences(markup))) };
}

/**
 * The same checks over the whole document as readCdaText, but only its header as text: the ClinicalDocument with
 * everything from its first `component` child (the body) left out. What the intake reads: parsing a body of
 * megabytes into a tree takes seconds, and the intake needs none of it (the worker converts it, with its own
 * parse). The scan still covers every byte, so a document refused here is refused whole.
 */
export function readCdaHeaderText(raw: Buffer, limits: CdaLimits = DEFAULT_CDA_LIMITS, charsetParameter?: string): CdaText {
  if (raw.length > limits.maxBytes) {
    throw new AnchorlineError('ANCHORLINE_ERR_CDA_TOO_LARGE', `the document is ${raw.length} bytes; at most ${limits.maxBytes} are accepted`);
  }
  const { text, charset } = documentText(raw, charsetParameter);
  const body = scanMarkup(text, limits.maxDepth);
  const header = body === undefined ? text : `${text.slice(0, body)}</ClinicalDocument>`;
  return { text: decodeCharacterReferences(header), charset };
}

/**
 * Whether text looks like a ClinicalDocument (its first element is one), read from its start only: what an
 * embedded document (HL7 v2 OBX-5) must look like to be converted rather than kept as an opaque attachment.
 */
export function looksLikeClinicalDocument(text: string): boolean {
  return /^(?:\uFEFF)?\s*(?:<\?[^]*?\?>\s*|<!--[^]*?-->\s*|<![^]*?>\s*)*<(?:[\w.-]+:)?ClinicalDocument[\s/>]/.test(text.slice(0, 8192));
}

// ---------------------------------------------------------------------------------------------------------------
// Decoding

/** The document as text, decoded (decodeDocument) and with the CDA namespace unprefixed (inDefaultNamespace). */
function documentText(raw: Buffer, charsetParameter: string | undefined): CdaText {
  const { text, charset } = decodeDocument(raw, charsetParameter);
  return { text: inDefaultNamespace(text), charset };
}

function decodeDocument(raw: Buffer, charsetParameter: string | undefined): CdaText {
  if (raw[0] === 0xef && raw[1] === 0xbb && raw[2] === 0xbf) return { text: decodeStrict(raw.subarray(3), 'utf-8'), charset: 'utf-8' };
  if (raw[0] === 0xff && raw[1] === 0xfe) return { text: decodeStrict(raw.subarray(2), 'utf-16le'), charset: 'utf-16le' };
  if (raw[0] === 0xfe && raw[1] === 0xff) return { text: decodeStrict(raw.subarray(2), 'utf-16be'), charset: 'utf-16be' };
  const declared = charsetParameter?.trim() || declaredEncoding(raw);
  if (declared === undefined) return { text: decodeStrict(raw, 'utf-8'), charset: 'utf-8' };
  let codec = ENCODINGS.get(declared.toLowerCase());
  if (codec === 'utf-16') codec = 'utf-16be'; // without a BOM, UTF-16 is big-endian (XML 1.0 appendix F)
  if (codec === undefined) throw new AnchorlineError('ANCHORLINE_ERR_CDA_MALFORMED', 'the document declares an encoding that is not supported');
  return { text: decodeStrict(raw, codec), charset: codec };
}

/** The encoding an XML declaration names, read from the first bytes as ASCII. */
function declaredEncoding(raw: Buffer): string | undefined {
  const head = raw.toString('latin1', 0, Math.min(raw.length, 512));
  const declaration = /^\s*<\?xml\s[^?]*?encoding\s*=\s*["']([A-Za-z][\w.:-]*)["']/.exec(head);
  return declaration?.[1];
}

function decodeStrict(bytes: Buffer, codec: string): string {
  if (codec === 'utf-8') {
    try {
      return strictUtf8.decode(bytes);
    } catch {
      throw mismatch(codec);
    }
  }
  if (codec === 'ascii') {
    for (const byte of bytes) if (byte > 0x7f) throw mismatch(codec);
    return bytes.toString('latin1');
  }
  const text = iconv.decode(bytes, codec);
  // iconv-lite substitutes U+FFFD for bytes it cannot decode; re-encoding tells a real U+FFFD from a substitution.
  if (text.includes('\uFFFD') && !iconv.encode(text, codec).equals(bytes)) throw mismatch(codec);
  return text;
}

function mismatch(codec: string): AnchorlineError {
  return new AnchorlineError('ANCHORLINE_ERR_CHARSET_MISMATCH', `the document bytes are not valid ${codec}`);
}

// ---------------------------------------------------------------------------------------------------------------
// Markup scan

/** Where a top-level section's narrative stands: ClinicalDocument/component/structuredBody/component/section/text. */
const NARRATIVE_PATH = ['ClinicalDocument', 'component', 'structuredBody', 'component', 'section', 'text'];
const SECTION_DEPTH = 4;
const NARRATIVE_DEPTH = 5;

/**
 * One pass over the markup, returning the offset of the root's first `component` child (the body), if any. With
 * `sectionNarratives`, it also collects the markup of each top-level section's first `text` element as sent (the
 * conversion reads narratives in document order from it, which the object parse does not keep, without parsing the
 * whole document a second time).
 *
 * Comments, CDATA and processing instructions are skipped, any other `<!` is a markup declaration (DOCTYPE, ENTITY,
 * ELEMENT, ATTLIST) and refused; start and end tags must pair up within maxDepth; nothing but whitespace, comments
 * and processing instructions may stand outside the one root element. Open elements are kept as (offset, length) of
 * their names, compared in place: the scan allocates next to nothing.
 */
function scanMarkup(text: string, maxDepth: number, sectionNarratives?: Array<string | undefined>): number | undefined {
  let body: number | undefined;
  // How many of the open elements, from the root, lie on NARRATIVE_PATH; where the open narrative's markup starts.
  let onPath = 0;
  let narrativeStart = -1;
  const ampersands: AmpersandCursor = { next: -1 };
  const nameStart: number[] = [];
  const nameLength: number[] = [];
  let depth = 0;
  let rootSeen = false;
  let position = 0;
  for (;;) {
    const lt = text.indexOf('<', position);
    if (depth === 0 && hasContent(text, position, lt < 0 ? text.length : lt)) malformed('text stands outside the root element');
    checkReferences(text, position, lt < 0 ? text.length : lt, ampersands);
    if (lt < 0) break;
    const next = text.charCodeAt(lt + 1);
    if (next === 0x21 /* ! */) {
      if (text.startsWith('<!--', lt)) {
        position = endOf(text, '-->', lt + 4, 'a comment is not closed');
      } else if (text.startsWith('<![CDATA[', lt)) {
        if (depth === 0) malformed('CDATA stands outside the root element');
        position = endOf(text, ']]>', lt + 9, 'a CDATA section is not closed');
      } else {
        throw new AnchorlineError('ANCHORLINE_ERR_CDA_DOCTYPE', 'the document contains a markup declaration (<!DOCTYPE, <!ENTITY, ...); C-CDA documents must not carry one');
      }
    } else if (next === 0x3f /* ? */) {
      position = endOf(text, '?>', lt + 2, 'a processing instruction is not closed');
    } else if (next === 0x2f /* / */) {
      const gt = text.indexOf('>', lt + 2);
      if (gt < 0) malformed('an end tag is not closed');
      if (depth === 0) malformed('an end tag does not match its start tag');
      depth--;
      // The end tag's name is the start tag's, then nothing but whitespace.
      const length = nameLength[depth]!;
      if (!sameName(text, nameStart[depth]!, lt + 2, length) || hasContent(text, lt + 2 + length, gt)) malformed('an end tag does not match its start tag');
      if (onPath > depth) {
        if (depth === NARRATIVE_DEPTH && narrativeStart >= 0) {
          sectionNarratives![sectionNarratives!.length - 1] = text.slice(narrativeStart, lt);
          narrativeStart = -1;
        }
        onPath = depth;
      }
      position = gt + 1;
    } else {
      const nameEnd = endOfName(text, lt + 1);
      if (nameEnd === lt + 1) malformed('a start tag has no element name');
      const gt = tagEnd(text, nameEnd);
      checkReferences(text, nameEnd, gt, ampersands);
      if (depth === 0) {
        if (rootSeen) malformed('the document has more than one root element');
        rootSeen = true;
        checkRoot(text.slice(lt + 1, nameEnd));
      } else if (depth === 1 && body === undefined && nameEnd - lt - 1 === 9 && text.startsWith('component', lt + 1)) {
        body = lt;
      }
      const selfClosing = text.charCodeAt(gt - 1) === 0x2f; /* / */
      if (sectionNarratives !== undefined && onPath === depth && depth <= NARRATIVE_DEPTH && hasLocalName(text, lt + 1, nameEnd, NARRATIVE_PATH[depth]!)) {
        if (depth === SECTION_DEPTH) sectionNarratives.push(undefined);
        else if (depth === NARRATIVE_DEPTH && sectionNarratives.at(-1) === undefined && narrativeStart < 0) {
          if (selfClosing) sectionNarratives[sectionNarratives.length - 1] = '';
          else narrativeStart = gt + 1;
        }
        if (!selfClosing) onPath = depth + 1;
      }
      if (!selfClosing) {
        if (depth === maxDepth) throw new AnchorlineError('ANCHORLINE_ERR_CDA_TOO_DEEP', `elements nest deeper than ${maxDepth} levels`);
        nameStart[depth] = lt + 1;
        nameLength[depth] = nameEnd - lt - 1;
        depth++;
      }
      position = gt + 1;
    }
  }
  if (!rootSeen) malformed('the document has no root element');
  if (depth > 0) malformed('the root element is not closed');
  return body;
}

/** A reference XML without a DTD defines: the five predefined entities and numeric character references. */
const REFERENCE = /&(?:amp|lt|gt|quot|apos|#[0-9]+|#x[0-9A-Fa-f]+);/y;

/**
 * Checks the `&` references in character data or a start tag's attributes (text[from, to)). Comments, CDATA sections
 * and processing instructions are not checked: an `&` in them is not a reference (a vendor's comment may say
 * "R&D").
 */
function checkReferences(text: string, from: number, to: number, cursor: AmpersandCursor): void {
  // The next '&' is remembered between calls: searching afresh from each range's start would run on to the next '&'
  // every time, far past the range in a document with few of them, which made the scan quadratic.
  if (cursor.next < from) {
    const found = text.indexOf('&', from);
    cursor.next = found < 0 ? Number.POSITIVE_INFINITY : found;
  }
  while (cursor.next < to) {
    REFERENCE.lastIndex = cursor.next;
    if (!REFERENCE.test(text)) malformed('the document refers to an entity XML does not define');
    const found = text.indexOf('&', cursor.next + 1);
    cursor.next = found < 0 ? Number.POSITIVE_INFINITY : found;
  }
}

/** Where the scan's next '&' is (infinity: none after it), for checkReferences. */
interface AmpersandCursor {
  next: number;
}

/** The index after an element name starting at `from`: the first whitespace, '/' or '>'. */
function endOfName(text: string, from: number): number {
  let i = from;
  for (; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09 || c === 0x2f || c === 0x3e) break;
  }
  return i;
}

/** Whether the element name text[start, end) is `name`, with or without a namespace prefix. */
function hasLocalName(text: string, start: number, end: number, name: string): boolean {
  // The prefix is looked for within the name only: lastIndexOf would run back through the document when it has none.
  let local = start;
  for (let i = end - 1; i >= start; i--) {
    if (text.charCodeAt(i) === 0x3a /* : */) {
      local = i + 1;
      break;
    }
  }
  return end - local === name.length && text.startsWith(name, local);
}

function sameName(text: string, a: number, b: number, length: number): boolean {
  for (let i = 0; i < length; i++) if (text.charCodeAt(a + i) !== text.charCodeAt(b + i)) return false;
  return true;
}

/** The CDA namespace. */
const HL7_V3 = 'urn:hl7-org:v3';

/**
 * A document written with the CDA namespace bound to a prefix (`<cda:ClinicalDocument xmlns:cda="urn:hl7-org:v3">`,
 * as some XML toolkits write it) is the same document in the default namespace: the prefix is taken off every
 * element name that carries it, in one pass, so that the scan and the parser read it as any other. Other prefixes
 * (`sdtc:`, `xsi:`) stay. A root whose prefix is bound to another namespace, or to none, is left as it is (and
 * refused as not a ClinicalDocument).
 */
function inDefaultNamespace(text: string): string {
  const lt = firstElement(text);
  if (lt < 0) return text;
  const nameEnd = endOfName(text, lt + 1);
  const name = text.slice(lt + 1, nameEnd);
  const colon = name.indexOf(':');
  if (colon <= 0 || name.slice(colon + 1) !== 'ClinicalDocument') return text;
  const prefix = name.slice(0, colon);
  const startTag = text.slice(nameEnd, text.indexOf('>', nameEnd) + 1 || text.length);
  const bound = new RegExp(`\\sxmlns:${prefix.replace(/[.-]/g, '\\$&')}\\s*=\\s*(["'])${HL7_V3}\\1`).test(startTag);
  if (!bound) return text;
  return text.split(`</${prefix}:`).join('</').split(`<${prefix}:`).join('<');
}

/** Where the first element starts: after the prolog's declaration, comments, processing instructions, DOCTYPE. */
function firstElement(text: string): number {
  let position = 0;
  for (;;) {
    const lt = text.indexOf('<', position);
    if (lt < 0) return -1;
    if (text.startsWith('<!--', lt)) position = text.indexOf('-->', lt + 4);
    else if (text.charCodeAt(lt + 1) === 0x3f /* ? */) position = text.indexOf('?>', lt + 2);
    else if (text.charCodeAt(lt + 1) === 0x21 /* ! */) position = text.indexOf('>', lt + 2);
    else return lt;
    if (position < 0) return -1;
  }
}

function checkRoot(name: string): void {
  if (name === 'ClinicalDocument') return;
  if (name.endsWith(':ClinicalDocument')) malformed('the ClinicalDocument root has a namespace prefix; send CDA in the default namespace urn:hl7-org:v3');
  malformed('the root element is not ClinicalDocument');
}

/** Runs of characters that neither end a start tag nor open a quoted attribute value (sticky: matched in place). */
const TAG_TEXT = /[^"'<>]*/y;

/** The index of the `>` ending a start tag whose name ends at `from`, skipping quoted attribute values. */
function tagEnd(text: string, from: number): number {
  let i = from;
  for (;;) {
    TAG_TEXT.lastIndex = i;
    TAG_TEXT.test(text);
    i = TAG_TEXT.lastIndex;
    const c = text.charCodeAt(i);
    if (c === 0x3e /* > */) return i;
    if (c !== 0x22 /* " */ && c !== 0x27 /* ' */) break;
    const close = text.indexOf(c === 0x22 ? '"' : "'", i + 1);
    if (close < 0) break;
    i = close + 1;
  }
  return malformed('a start tag is not closed');
}

function endOf(text: string, terminator: string, from: number, problem: string): number {
  const end = text.indexOf(terminator, from);
  if (end < 0) malformed(problem);
  return end + terminator.length;
}

function hasContent(text: string, from: number, to: number): boolean {
  for (let i = from; i < to; i++) {
    const c = text.charCodeAt(i);
    if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09 && c !== 0xfeff) return true;
  }
  return false;
}

function malformed(detail: string): never {
  throw new AnchorlineError('ANCHORLINE_ERR_CDA_MALFORMED', detail);
}

// ---------------------------------------------------------------------------------------------------------------
// Character references

const MARKUP_REFERENCES: Readonly<Record<number, string>> = { 0x26: '&amp;', 0x3c: '&lt;', 0x3e: '&gt;', 0x22: '&quot;', 0x27: '&apos;' };

function decodeCharacterReferences(text: string): string {
  if (!text.includes('&#')) return text;
  return text.replace(/&#(x[0-9A-Fa-f]+|[0-9]+);/g, (_reference, digits: string) => {
    const codePoint = digits.startsWith('x') ? Number.parseInt(digits.slice(1), 16) : Number.parseInt(digits, 10);
    if (!isXmlChar(codePoint)) malformed('a character reference names a character XML does not allow');
    return MARKUP_REFERENCES[codePoint] ?? String.fromCodePoint(codePoint);
  });
}

/** XML 1.0 Char production. */
function isXmlChar(codePoint: number): boolean {
  return (
    codePoint === 0x9 || codePoint === 0xa || codePoint === 0xd ||
    (codePoint >= 0x20 && codePoint <= 0xd7ff) || (codePoint >= 0xe000 && codePoint <= 0xfffd) || (codePoint >= 0x10000 && codePoint <= 0x10ffff)
  );
}

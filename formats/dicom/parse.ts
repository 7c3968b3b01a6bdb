/**
 * DICOM Part 10 bytes -> the header attributes the engine uses (types.ts), or a coded error.
 *
 * dicom-parser reads the file meta and the data set up to the Pixel Data element (untilTag 'x7fe00010'), so the
 * pixel data is never interpreted. It is lenient where the engine must not be, so every result is checked here:
 * - the 'DICM' prefix and a file meta with a transfer syntax this reader understands (implicit and explicit VR little
 *   endian, explicit VR big endian, deflated, and the encapsulated syntaxes, whose data set is explicit little endian);
 * - every element, item and the pixel data itself lies inside the bytes (dicom-parser seeks past the end of the
 *   data without complaint, in implicit VR even silently), and explicit VRs are real VRs;
 * - a deflated data set is inflated with caps on its size and on its inflated-to-deflated ratio (a few kilobytes can
 *   inflate to gigabytes), and only as far as the header needs (inflate.ts judges the whole data set, off the event
 *   loop);
 * - UIDs are digits and dots of at most 64 characters (PS3.5 9.1), so no UID can carry a path such as `../`;
 * - the file meta and the data set name the same SOP instance and class;
 * - text decodes in the declared Specific Character Set, or in CP949 (charset.ts).
 * Every failure is an AnchorlineError with one of the ANCHORLINE_ERR_DICOM_* codes (or _CHARSET_MISMATCH); nothing
 * else is thrown. Details name tags, never values.
 */
import { createHash } from 'node:crypto';
import { constants as zlibConstants, inflateRawSync } from 'node:zlib';
import dicomParser, { type DataSet, type Element } from 'dicom-parser';
import { AnchorlineError, isAnchorlineError } from '../../errors/index.ts';
import { correctedCharacterSet, decodeDicomText } from './charset.ts';
import { IMPLEMENTATION_CLASS_UID, NO_FILE_META_NOTE } from './meta-ids.ts';
import type { DicomAnomaly, DicomInstanceHeader, DicomPersonName, PersonNameGroup, TextDecoding } from './types.ts';

export const IMPLICIT_VR_LITTLE_ENDIAN = '1.2.840.10008.1.2';
export const EXPLICIT_VR_LITTLE_ENDIAN = '1.2.840.10008.1.2.1';
export const DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN = '1.2.840.10008.1.2.1.99';
export const EXPLICIT_VR_BIG_ENDIAN = '1.2.840.10008.1.2.2';

/**
 * Transfer syntaxes whose data set is explicit VR little endian and whose pixel data is encapsulated (JPEG, JPEG 2000,
 * JPEG-LS, RLE, HTJ2K, MPEG, encapsulated uncompressed, Deflated Image Frame Compression), or referenced (JPIP).
 */
const ENCAPSULATED = /^1\.2\.840\.10008\.1\.2\.(4\.\d+|5|1\.98|8\.1)$/;
/**
 * JPIP Referenced Deflate and JPIP HTJ2K Referenced Deflate (PS3.5 A.7, A.12): their data sets are deflated as a whole,
 * which the reader does only for Deflated Explicit VR Little Endian; read as explicit VR they would be garbage.
 */
const JPIP_DEFLATE = new Set(['1.2.840.10008.1.2.4.95', '1.2.840.10008.1.2.4.205']);

/** Preamble (128 bytes) + 'DICM'. */
export const PREFIX_BYTES = 132;

/** Whether the bytes start as a DICOM Part 10 file: a 128-byte preamble, then 'DICM'. */
export function hasPart10Prefix(bytes: Uint8Array): boolean {
  return bytes.length >= PREFIX_BYTES && Buffer.from(bytes.buffer, bytes.byteOffset + 128, 4).toString('latin1') === 'DICM';
}
const PIXEL_DATA_TAGS = ['x7fe00008', 'x7fe00009', 'x7fe00010'] as const;
/** VRs of PS3.5 Table 6.2-1; an explicit VR data set with anything else is not DICOM. */
export const VRS: ReadonlySet<string> = new Set(['AE', 'AS', 'AT', 'CS', 'DA', 'DS', 'DT', 'FD', 'FL', 'IS', 'LO', 'LT', 'OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'PN', 'SH', 'SL', 'SQ', 'SS', 'ST', 'SV', 'TM', 'UC', 'UI', 'UL', 'UN', 'UR', 'US', 'UT', 'UV']);
/** (FFFE,E00D) Item Delimitation Item and (FFFE,E0DD) Sequence Delimitation Item, as dicom-parser names tags. */
const DELIMITATION_TAGS: ReadonlySet<string> = new Set(['xfffee00d', 'xfffee0dd']);
/** The Sequence Delimitation Item (FFFE,E0DD) with length 0, little endian: how encapsulated pixel data ends. */
const SEQUENCE_DELIMITER = Buffer.from([0xfe, 0xff, 0xdd, 0xe0, 0x00, 0x00, 0x00, 0x00]);

export interface DicomParseOptions {
  /** Largest size a deflated data set may inflate to, in bytes; beyond it ANCHORLINE_ERR_DICOM_TOO_LARGE. */
  maxInflatedBytes: number;
  /**
   * Most a deflated data set may inflate to as a multiple of its deflated size (data sets inflating to at most
   * RATIO_FREE_INFLATED_BYTES are not held to it); beyond it ANCHORLINE_ERR_DICOM_TOO_LARGE. Default
   * DEFAULT_MAX_INFLATE_RATIO.
   */
  maxInflateRatio?: number;
  /**
   * The deflated data set as inflate.ts inflated it (its first bytes, and its whole size). Without it, parsing inflates
   * the data set itself, synchronously, and only as far as the header needs (at most HEADER_WINDOW_BYTES).
   */
  inflated?: InflatedDataSet | undefined;
}

/** The first bytes of an inflated data set, and how many bytes it inflated to in all (inflate.ts). */
export interface InflatedDataSet {
  /** The first min(totalBytes, HEADER_WINDOW_BYTES) bytes of the inflated data set. */
  head: Buffer;
  totalBytes: number;
}

/** DICOM data sets deflate 3 to 20 times; deflate itself reaches about 1000, which only crafted input comes near. */
export const DEFAULT_MAX_INFLATE_RATIO = 200;
/** Below this, inflating costs too little for the ratio to matter, and small headers of zeros may pass it. */
export const RATIO_FREE_INFLATED_BYTES = 1024 * 1024;
/**
 * How much of an inflated data set is kept and read for the header. The attributes the engine reads end at
 * (0020,0060); what comes before them (file meta aside) is some kilobytes in practice, private groups included.
 * Reading is bounded by this whatever the data set inflates to: parsing 2 MiB of the smallest elements takes tens of
 * milliseconds.
 */
export const HEADER_WINDOW_BYTES = 2 * 1024 * 1024;
/** The last attribute the header reads ((0020,0060) Laterality): a data set read past it holds the whole header. */
const LAST_HEADER_TAG = 'x00200060';
/** The first deflated bytes inflated when looking for the header; doubled until the header is complete. */
const FIRST_DEFLATED_STEP_BYTES = 1024;
/** The first inflated bytes parsed when looking for the header in a data set inflate.ts inflated; doubled likewise. */
const FIRST_INFLATED_STEP_BYTES = 8 * 1024;

/** Most a deflated data set of `deflatedBytes` may inflate to under the instance cap and the ratio cap. */
export function inflateLimitBytes(deflatedBytes: number, options: Pick<DicomParseOptions, 'maxInflatedBytes' | 'maxInflateRatio'>): number {
  const byRatio = Math.max(RATIO_FREE_INFLATED_BYTES, deflatedBytes * (options.maxInflateRatio ?? DEFAULT_MAX_INFLATE_RATIO));
  return Math.min(options.maxInflatedBytes, byRatio);
}

/** The error for a data set inflating past `limit`, naming the cap that set it. */
export function inflatedTooLarge(deflatedBytes: number, limit: number, options: Pick<DicomParseOptions, 'maxInflatedBytes' | 'maxInflateRatio'>): AnchorlineError {
  if (limit < options.maxInflatedBytes) {
    return new AnchorlineError('ANCHORLINE_ERR_DICOM_TOO_LARGE', `the deflated data set (${deflatedBytes} bytes) inflates to more than ${options.maxInflateRatio ?? DEFAULT_MAX_INFLATE_RATIO} times its size`);
  }
  return new AnchorlineError('ANCHORLINE_ERR_DICOM_TOO_LARGE', `the deflated data set inflates to more than ${options.maxInflatedBytes} bytes`);
}

export interface ParsedDicomInstance {
  header: DicomInstanceHeader;
  /**
   * Length of the instance's header: the bytes from the start of the file up to (not including) its first pixel
   * data element ((7FE0,0008), (7FE0,0009) or (7FE0,0010)); the whole input when it has none, and when the data set
   * is deflated (then no prefix of the bytes is the header alone). Parsing these bytes alone gives the same header.
   */
  headerLength: number;
}

/** A UID by PS3.5 9.1: components of digits separated by single dots, at most 64 characters. */
const UID = /^[0-9]+(\.[0-9]+)*$/;

/**
 * Whether a value is a UID. Components with a leading zero (forbidden by 9.1) are accepted: some equipment writes
 * them, and they are harmless, as the engine never builds a name or path from a UID.
 */
export function isValidUid(value: string): boolean {
  return value.length > 0 && value.length <= 64 && UID.test(value);
}

/** A UUID-derived UID (PS3.5 B.2): `2.25.` and the decimal of the first 128 bits of a digest, at most 44 characters. */
export function uidFromDigest(digest: Uint8Array): string {
  let value = 0n;
  for (const byte of digest.subarray(0, 16)) value = (value << 8n) | BigInt(byte);
  return `2.25.${value.toString(10)}`;
}

/**
 * The UID the engine files an instance under when the instance lacks it: derived from the UID of what holds it (the
 * study from the series, the series from the instance), so that every instance of one series lands in one study and
 * a resent instance lands where it did before. A series is never derived from the study: instances that share a
 * study but name no series may come from different equipment, and one series per instance groups nothing wrongly.
 */
function derivedUid(level: 'study' | 'series' | 'instance', from: string): string {
  return uidFromDigest(createHash('sha256').update(`anchorline derived ${level} UID\u0000${from}`).digest());
}

/**
 * What an instance that names no SOP Instance UID anywhere is identified by: the SHA-256 of its data set's elements
 * (tag and value) other than Pixel Data, read the same from the whole file and from its header alone, so a resend
 * of the same instance is the same instance.
 */
function dataSetDigest(dataSet: DataSet): string {
  const hash = createHash('sha256');
  const data = dataSet.byteArray;
  for (const tag of Object.keys(dataSet.elements).sort()) {
    const element = dataSet.elements[tag]!;
    if (tag === 'x7fe00010' || element.length === undefined || element.dataOffset + element.length > data.length) continue;
    hash.update(tag).update(data.subarray(element.dataOffset, element.dataOffset + element.length));
  }
  return hash.digest('hex');
}

function malformed(detail: string, location?: string): AnchorlineError {
  return new AnchorlineError('ANCHORLINE_ERR_DICOM_MALFORMED', detail, location === undefined ? undefined : { location });
}

function truncated(detail: string, location?: string): AnchorlineError {
  return new AnchorlineError('ANCHORLINE_ERR_DICOM_TRUNCATED', detail, location === undefined ? undefined : { location });
}

/** '(GGGG,EEEE)' from dicom-parser's 'xggggeeee'. */
function tagName(tag: string): string {
  return `(${tag.slice(1, 5).toUpperCase()},${tag.slice(5, 9).toUpperCase()})`;
}

/**
 * dicom-parser throws strings, Errors, and `{ exception, dataSet }` wrappers; its messages say whether it ran out of
 * bytes. The message itself is not passed on (it may quote offsets only, but the catalogue text is enough).
 */
function parserFailure(thrown: unknown): AnchorlineError {
  if (isAnchorlineError(thrown)) return thrown;
  const inner = typeof thrown === 'object' && thrown !== null && 'exception' in thrown ? (thrown as { exception: unknown }).exception : thrown;
  if (isAnchorlineError(inner)) return inner;
  const message = typeof inner === 'string' ? inner : inner instanceof Error ? inner.message : '';
  if (inner instanceof RangeError && !/buffer|offset|bounds/i.test(message)) return malformed('the data set is nested too deeply to read');
  if (/past end|overread|overrun|eof|greater than or equal|maxP ?osition|out of range|outside the bounds|offset/i.test(message)) {
    return truncated('the data ends inside an element, or an element length runs past the end of the data');
  }
  return malformed('the data set cannot be read as DICOM');
}

/**
 * The deflated data set, inflated synchronously as far as the header needs: ever longer prefixes of the deflated bytes
 * (1 KiB, doubling), each inflated with a sync flush and capped at HEADER_WINDOW_BYTES, so the work is bounded by the
 * window whatever the data set inflates to. 1 KiB inflates to at most about 1 MiB, so the first step always fits; when a
 * later step overflows the window (pixel data of zeros right after the header), the prefixes between the last that fit
 * and it are narrowed down by halves. The last step inflates all of it and sees whether the stream is whole.
 */
function* deflatedWindows(deflated: Buffer, options: DicomParseOptions): Generator<{ data: Buffer; complete: boolean; totalBytes?: number }> {
  const limit = inflateLimitBytes(deflated.length, options);
  const inflatePrefix = (length: number): Buffer | undefined => {
    const whole = length >= deflated.length;
    try {
      return inflateRawSync(whole ? deflated : deflated.subarray(0, length), {
        finishFlush: whole ? zlibConstants.Z_FINISH : zlibConstants.Z_SYNC_FLUSH,
        maxOutputLength: Math.min(limit, HEADER_WINDOW_BYTES),
      });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE' || error instanceof RangeError) return undefined;
      throw malformed('the deflated data set is not a valid deflate stream');
    }
  };
  let fits = 0;
  for (let step = FIRST_DEFLATED_STEP_BYTES; ; step *= 2) {
    const length = Math.min(step, deflated.length);
    const data = inflatePrefix(length);
    if (data === undefined) {
      // A prefix that inflates past the limit: so does the whole.
      if (limit <= HEADER_WINDOW_BYTES) throw inflatedTooLarge(deflated.length, limit, options);
      let low = fits;
      let high = length;
      for (let round = 0; round < 8 && high - low > 1; round++) {
        const middle = Math.floor((low + high) / 2);
        const window = inflatePrefix(middle);
        if (window === undefined) {
          high = middle;
          continue;
        }
        low = middle;
        yield { data: window, complete: false };
      }
      throw headerTooLong();
    }
    const whole = length === deflated.length;
    yield whole ? { data, complete: true, totalBytes: data.length } : { data, complete: false };
    if (whole) return;
    fits = length;
  }
}

/** The data set inflate.ts inflated: prefixes of its head, 8 KiB doubling, so a small header costs a small parse. */
function* inflatedWindows(inflated: InflatedDataSet): Generator<{ data: Buffer; complete: boolean; totalBytes?: number }> {
  for (let step = FIRST_INFLATED_STEP_BYTES; ; step *= 2) {
    const last = step >= inflated.head.length;
    const complete = last && inflated.head.length === inflated.totalBytes;
    yield { data: last ? inflated.head : inflated.head.subarray(0, step), complete, totalBytes: inflated.totalBytes };
    if (last) return;
  }
}

function headerTooLong(): AnchorlineError {
  return new AnchorlineError('ANCHORLINE_ERR_DICOM_TOO_LARGE', `the header of the deflated data set (up to (0020,0060)) does not end within its first ${HEADER_WINDOW_BYTES} inflated bytes`);
}

/**
 * Reads the header of a deflated data set from windows of its inflated bytes. A window that ends inside the data set
 * holds the whole header once a complete top-level element past (0020,0060) was read (elements come in tag order), or
 * the pixel data element; then the element the window cut (if any) is dropped and the pixel data is judged by the
 * data set's whole size when inflate.ts measured it.
 */
function readDeflatedHeader(bytes: Uint8Array, windows: Iterable<{ data: Buffer; complete: boolean; totalBytes?: number }>): DataSet {
  for (const { data, complete, totalBytes } of windows) {
    const options = { untilTag: 'x7fe00010', inflater: () => data } as unknown as dicomParser.ParseDicomOptions;
    if (complete) {
      try {
        return dicomParser.parseDicom(bytes, options) as DataSet;
      } catch (thrown) {
        throw parserFailure(thrown);
      }
    }
    let dataSet: DataSet;
    let cut = false;
    try {
      dataSet = dicomParser.parseDicom(bytes, options) as DataSet;
    } catch (thrown) {
      const partial = typeof thrown === 'object' && thrown !== null && 'dataSet' in thrown ? (thrown as { dataSet?: DataSet }).dataSet : undefined;
      if (partial === undefined) continue;
      dataSet = partial;
      cut = true;
    }
    const ownElements = Object.values(dataSet.elements).filter((element) => !element.tag.startsWith('x0002'));
    const pixelData = dataSet.elements['x7fe00010'];
    const reachedPixelData = !cut && pixelData !== undefined;
    // The element read last may run past the window (a sequence without a defined length, cut, ends in an 'eof'
    // warning rather than an exception); every element before it lies wholly inside.
    const last = ownElements.reduce<Element | undefined>((latest, element) => (latest === undefined || element.dataOffset > latest.dataOffset ? element : latest), undefined);
    const lastCut = last !== undefined && last !== pixelData && (cut || dataSet.warnings.some((warning) => /eof/i.test(warning)) || last.hadUndefinedLength || last.dataOffset + last.length > data.length);
    const whole = ownElements.filter((element) => element !== pixelData && !(lastCut && element === last));
    if (!reachedPixelData && !whole.some((element) => element.tag > LAST_HEADER_TAG)) continue;
    if (lastCut && last !== undefined) delete dataSet.elements[last.tag];
    dataSet.warnings = dataSet.warnings.filter((warning) => !/eof/i.test(warning));
    if (pixelData !== undefined) {
      if (totalBytes !== undefined && !pixelData.hadUndefinedLength && pixelData.dataOffset + pixelData.length > totalBytes) {
        throw truncated('(7FE0,0010) has a length that runs past the end of the data', '(7FE0,0010)');
      }
      // Its value lies past the window; what it holds is not read, and its length was judged above where known.
      delete dataSet.elements['x7fe00010'];
    }
    return dataSet;
  }
  throw headerTooLong();
}

/** Transfer syntaxes of the standard (PS3.6 A), the root under which DICOM defines them all. */
const STANDARD_TRANSFER_SYNTAX = /^1\.2\.840\.10008\.1\.2\.\d+(\.\d+)*$/;

type DataSetEncoding = 'implicit' | 'explicit' | 'big' | 'deflated';

/**
 * How the data set of a transfer syntax is encoded, and whether that was assumed rather than known; undefined when
 * this reader cannot read it. A standard transfer syntax this reader does not list (one added to the standard later)
 * is read as explicit VR little endian: PS3.5 10 and Annex A encode all but a few that way (implicit VR, big endian,
 * the deflated data sets), and the others differ only in their pixel data, which is kept as sent. A private transfer
 * syntax may encode its data set any way, and is not guessed at.
 */
function dataSetEncoding(transferSyntaxUid: string): { encoding: DataSetEncoding; assumed: boolean } | undefined {
  if (JPIP_DEFLATE.has(transferSyntaxUid)) return undefined;
  if (transferSyntaxUid === IMPLICIT_VR_LITTLE_ENDIAN) return { encoding: 'implicit', assumed: false };
  if (transferSyntaxUid === EXPLICIT_VR_LITTLE_ENDIAN || ENCAPSULATED.test(transferSyntaxUid)) return { encoding: 'explicit', assumed: false };
  if (transferSyntaxUid === EXPLICIT_VR_BIG_ENDIAN) return { encoding: 'big', assumed: false };
  if (transferSyntaxUid === DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN) return { encoding: 'deflated', assumed: false };
  if (STANDARD_TRANSFER_SYNTAX.test(transferSyntaxUid)) return { encoding: 'explicit', assumed: true };
  return undefined;
}

/** ASCII value of an element (UI, CS, DA, TM, IS, AE): padding (trailing NULs and spaces) and leading spaces removed. */
function asciiOf(dataSet: DataSet, tag: string): string | undefined {
  const element = dataSet.elements[tag];
  if (element === undefined || element.length === 0 || element.hadUndefinedLength) return undefined;
  const value = Buffer.from(dataSet.byteArray.buffer, dataSet.byteArray.byteOffset + element.dataOffset, element.length)
    .toString('latin1')
    .replace(/[\0 ]+$/, '')
    .replace(/^ +/, '');
  return value === '' ? undefined : value;
}

function bytesOf(dataSet: DataSet, tag: string): Uint8Array | undefined {
  const element = dataSet.elements[tag];
  if (element === undefined || element.length === 0 || element.hadUndefinedLength) return undefined;
  return dataSet.byteArray.subarray(element.dataOffset, element.dataOffset + element.length);
}

function uidOf(dataSet: DataSet, tag: string, required: boolean): string | undefined {
  const value = asciiOf(dataSet, tag);
  if (value === undefined) {
    if (required) throw new AnchorlineError('ANCHORLINE_ERR_DICOM_MISSING_ATTRIBUTE', `${tagName(tag)} is missing or empty`, { location: tagName(tag) });
    return undefined;
  }
  if (!isValidUid(value)) throw new AnchorlineError('ANCHORLINE_ERR_DICOM_BAD_UID', `${tagName(tag)} is not a UID (digits and dots, at most 64 characters)`, { location: tagName(tag) });
  return value;
}

/** A value as sent, fit for an issue: printable ASCII only, at most 64 characters. */
function sentValue(value: string): string {
  return value.replace(/[^\x20-\x7e]/g, '?').slice(0, 64);
}

/** What identifiers written where a UID belongs are made of: digits, letters, dots, dashes and underscores. */
const IDENTIFIER_LIKE = /^[0-9A-Za-z._-]+$/;

/**
 * A Study, Series or SOP Instance UID of the data set, as the instance is filed under it; undefined when the element
 * is missing or empty. Anonymisers that put hashes or UUIDs in place of UIDs, and equipment that writes more than 64
 * characters, send values that are not UIDs (PS3.5 9.1). Such a value is replaced by a UID derived from it, so every
 * instance that names it still lands in one study or series and a resend lands where it did, with an issue naming
 * the value sent; the stored file keeps it. A value that is not even identifier-like (a path, spaces, control
 * characters) is no system's identifier written wrongly, and is refused.
 */
function filedUid(dataSet: DataSet, tag: string, level: 'study' | 'series' | 'instance', anomalies: DicomAnomaly[]): string | undefined {
  const value = asciiOf(dataSet, tag);
  if (value === undefined || isValidUid(value)) return value;
  if (!IDENTIFIER_LIKE.test(value)) return uidOf(dataSet, tag, false);
  const uid = derivedUid(level, `sent\u0000${value}`);
  anomalies.push({ location: tagName(tag), detail: `${tagName(tag)} is not a UID (digits and dots, at most 64 characters); the instance is filed under ${uid}, derived from the value sent`, value: sentValue(value) });
  return uid;
}

/**
 * The SOP Class (0008,0016) or Instance (0008,0018) UID of the data set, or when it lacks one the file meta's (0002,0002)
 * or (0002,0003), with an anomaly for either a difference or the stand-in. An instance named by neither is filed under
 * a UID derived from its data set; a SOP class named by neither is refused, as nothing says what the instance is.
 */
function sopUid(dataSet: DataSet, meta: DataSet, which: 'class' | 'instance', anomalies: DicomAnomaly[]): string {
  const [own, metaTag, name] = which === 'class' ? ['x00080016', 'x00020002', 'SOP class'] : ['x00080018', 'x00020003', 'SOP instance'];
  const value = which === 'class' ? uidOf(dataSet, own, false) : filedUid(dataSet, own, 'instance', anomalies);
  // The file meta only stands in for the data set; a value there that is not a UID is passed over.
  const metaValue = asciiOf(meta, metaTag);
  const fromMeta = metaValue !== undefined && isValidUid(metaValue) ? metaValue : undefined;
  const ownName = tagName(own);
  const metaName = tagName(metaTag);
  if (value === undefined && fromMeta === undefined) {
    if (which === 'class') throw new AnchorlineError('ANCHORLINE_ERR_DICOM_MISSING_ATTRIBUTE', `${ownName} is missing or empty, and so is the file meta's ${metaName}`, { location: ownName });
    const uid = derivedUid('instance', `data set\u0000${dataSetDigest(dataSet)}`);
    anomalies.push({ code: 'ANCHORLINE_ISSUE_MISSING_FIELD', location: ownName, detail: `${ownName} is missing or empty, and the file meta names no ${name} UID either; the instance is filed under ${uid}, derived from its data set` });
    return uid;
  }
  if (value === undefined) {
    anomalies.push({ code: 'ANCHORLINE_ISSUE_MISSING_FIELD', location: ownName, detail: `the data set has no ${ownName} ${name} UID; the file meta's ${metaName} is used` });
    return fromMeta!;
  }
  if (fromMeta !== undefined && fromMeta !== value) {
    anomalies.push({ location: metaName, detail: `the file meta ${metaName} names another ${name} than the data set ${ownName}; the data set's is used`, value: fromMeta });
  }
  return value;
}

function integerOf(dataSet: DataSet, tag: string): number | undefined {
  const value = asciiOf(dataSet, tag);
  // IS values that are not integers are ignored rather than refused: they only order series and instances.
  if (value === undefined || !/^[+-]?\d{1,10}$/.test(value)) return undefined;
  const number = Number(value);
  return Number.isSafeInteger(number) && number >= 0 ? number : undefined;
}

/**
 * Checks that every element and item lies within the data, recursing into sequences. `skipFileMeta`: dicom-parser
 * merges the file meta's elements into the data set, with offsets into the file rather than into an inflated data
 * set; they are checked on their own. Returns the tags of elements whose explicit VR is not a VR (`(0028,0120)` sent
 * with two spaces by some equipment): dicom-parser reads them with a 2-byte length, as DCMTK does, and the bounds
 * still hold or the data is refused; the caller notes them.
 */
function checkBounds(dataSet: DataSet, end: number, explicit: boolean, skipFileMeta = false, notes: DicomAnomaly[] = []): DicomAnomaly[] {
  for (const element of Object.values(dataSet.elements)) {
    if (skipFileMeta && element.tag.startsWith('x0002')) continue;
    // dicom-parser keeps the Item Delimitation Item that ends an item of undefined length as an element of the
    // item's data set, with no VR: delimiters have none in any transfer syntax (PS3.5 7.5).
    if (DELIMITATION_TAGS.has(element.tag)) continue;
    const location = tagName(element.tag);
    if (explicit && element.vr !== undefined && !VRS.has(element.vr)) {
      if (element.tag === 'xfffee000' && element.length === 0 && !element.hadUndefinedLength) {
        // An empty item after a sequence written with length 0, as some equipment writes it (fo-dicom's
        // FreezePattern): it holds nothing, and what follows reads as the elements it is.
        if (!notes.some((note) => note.location === location)) notes.push({ location, detail: `an empty item ${location} stands where an element should be (after a sequence of length 0); it holds nothing and is passed over` });
        delete dataSet.elements[element.tag];
        continue;
      }
      // Any other item tag where an element should be is the structure broken, not one odd element.
      if (element.tag.startsWith('xfffe')) throw malformed(`${location} has no valid VR`, location);
      if (notes.length < MAX_NOTED_BAD_VRS && !notes.some((note) => note.location === location)) {
        notes.push({ location, detail: `${location} has no valid VR; read with a 2-byte length, as DICOM toolkits read an unknown VR` });
      }
    }
    if (element.dataOffset > end) throw truncated(`${location} starts past the end of the data`, location);
    if (!element.hadUndefinedLength && element.dataOffset + element.length > end) throw truncated(`${location} has a length that runs past the end of the data`, location);
    for (const item of element.items ?? []) {
      if (!item.hadUndefinedLength && item.dataOffset + item.length > end) throw truncated(`an item of ${location} runs past the end of the data`, location);
      if (item.dataSet !== undefined) checkBounds(item.dataSet, end, explicit, false, notes);
    }
  }
  return notes;
}

/** Elements with an invalid VR noted on one instance, at most. */
const MAX_NOTED_BAD_VRS = 5;

/** An encapsulated pixel data element of undefined length must end with a Sequence Delimitation Item. */
function checkEncapsulatedEnd(bytes: Uint8Array, element: Element): void {
  const data = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (data.lastIndexOf(SEQUENCE_DELIMITER) < element.dataOffset) throw truncated('the encapsulated pixel data has no sequence delimiter: the data ends inside it', tagName(element.tag));
}

function personNameGroup(text: string | undefined): PersonNameGroup | undefined {
  if (text === undefined) return undefined;
  const [family, given, middle, prefix, suffix] = text.split('^').map((component) => component.trim());
  const group: PersonNameGroup = { given: [given, middle].filter((part): part is string => part !== undefined && part !== '') };
  if (family) group.family = family;
  if (prefix) group.prefix = prefix;
  if (suffix) group.suffix = suffix;
  return group.family === undefined && group.given.length === 0 && group.prefix === undefined && group.suffix === undefined ? undefined : group;
}

function personName(text: string): DicomPersonName | undefined {
  // Patient's Name has VM 1; of a value with several, the first is the name.
  const [alphabetic, ideographic, phonetic] = text.split('\\')[0]!.split('=');
  const name: DicomPersonName = {};
  const groups = { alphabetic: personNameGroup(alphabetic), ideographic: personNameGroup(ideographic), phonetic: personNameGroup(phonetic) };
  for (const [key, group] of Object.entries(groups)) if (group !== undefined) name[key as keyof DicomPersonName] = group;
  return Object.keys(name).length > 0 ? name : undefined;
}

/**
 * What our own Private Information (0002,0102) in the file meta says of how the instance arrived (part10.ts,
 * asPart10File): a data set received without File Meta Information, whose transfer syntax was detected.
 */
function metaNote(meta: DataSet): DicomAnomaly | undefined {
  if (asciiOf(meta, 'x00020100') !== IMPLEMENTATION_CLASS_UID) return undefined;
  const note = asciiOf(meta, 'x00020102');
  if (note !== NO_FILE_META_NOTE) return undefined;
  return {
    location: '(0002,0010)',
    code: 'ANCHORLINE_ISSUE_MISSING_FIELD',
    detail: 'the instance came without File Meta Information (no preamble and \'DICM\', PS3.10 7.1); its transfer syntax was detected from its first element and a file meta group was added, the data set kept as received',
  };
}

/** Reads and checks the file meta; returns the transfer syntax and how its data set is encoded. */
function readFileMeta(bytes: Uint8Array): { transferSyntaxUid: string; encoding: DataSetEncoding; encodingAssumed: boolean; meta: DataSet } {
  if (!hasPart10Prefix(bytes)) {
    throw malformed("no 'DICM' prefix at byte 128: not a DICOM Part 10 file");
  }
  let meta: DataSet;
  try {
    meta = dicomParser.readPart10Header(bytes) as DataSet;
  } catch (thrown) {
    throw parserFailure(thrown);
  }
  const [badMeta] = checkBounds(meta, bytes.length, true);
  if (badMeta !== undefined) throw malformed(`${badMeta.location} has no valid VR`, badMeta.location);
  const transferSyntaxUid = uidOf(meta, 'x00020010', true)!;
  const known = dataSetEncoding(transferSyntaxUid);
  if (known === undefined) throw new AnchorlineError('ANCHORLINE_ERR_DICOM_UNSUPPORTED', `transfer syntax ${transferSyntaxUid} is not supported`, { location: '(0002,0010)' });
  return { transferSyntaxUid, encoding: known.encoding, encodingAssumed: known.assumed, meta };
}

/** The transfer syntax of a Part 10 file and where its data set starts (after the file meta). Throws AnchorlineError only. */
export function readTransferSyntax(bytes: Uint8Array): { transferSyntaxUid: string; position: number } {
  try {
    const { transferSyntaxUid, meta } = readFileMeta(bytes);
    return { transferSyntaxUid, position: (meta as DataSet & { position: number }).position };
  } catch (thrown) {
    throw parserFailure(thrown);
  }
}

/**
 * Parses the header of a DICOM Part 10 file. Pure and synchronous; bounded by the input size, and for a deflated data
 * set by HEADER_WINDOW_BYTES: without options.inflated, a deflated data set is inflated only as far as its header, so
 * an instance that inflates past the caps further on is not noticed here (readDicomInstance in inflate.ts judges the
 * whole). Throws AnchorlineError only.
 */
export function parseDicomInstance(bytes: Uint8Array, options: DicomParseOptions): ParsedDicomInstance {
  try {
    return parseChecked(bytes, options);
  } catch (thrown) {
    throw parserFailure(thrown);
  }
}

/** Media Storage Directory Storage (PS3.10 8.6): a DICOMDIR, the index of a medium, not an instance. */
const MEDIA_STORAGE_DIRECTORY = '1.2.840.10008.1.3.10';

function parseChecked(bytes: Uint8Array, options: DicomParseOptions): ParsedDicomInstance {
  const { transferSyntaxUid, encoding, encodingAssumed, meta } = readFileMeta(bytes);
  if (asciiOf(meta, 'x00020002') === MEDIA_STORAGE_DIRECTORY) {
    throw new AnchorlineError('ANCHORLINE_ERR_DICOM_UNSUPPORTED', 'a DICOMDIR (Media Storage Directory) indexes the files of a medium and is not an instance: send the instances it lists', { location: '(0002,0002)' });
  }
  let dataSet: DataSet;
  if (encoding === 'deflated') {
    const start = (meta as DataSet & { position: number }).position;
    const deflated = Buffer.from(bytes.buffer, bytes.byteOffset + start, bytes.byteLength - start);
    dataSet = readDeflatedHeader(bytes, options.inflated ? inflatedWindows(options.inflated) : deflatedWindows(deflated, options));
  } else {
    try {
      dataSet = dicomParser.parseDicom(bytes, { untilTag: 'x7fe00010' }) as DataSet;
    } catch (thrown) {
      throw parserFailure(thrown);
    }
  }
  // An undefined-length sequence or item that never ends is a warning to dicom-parser. (Its other 'eof' warning, from
  // peeking past a short last element in implicit VR, says nothing about the data; the bounds check covers it.)
  if (dataSet.warnings.some((warning) => /eof/i.test(warning) && !/peeking/i.test(warning))) throw truncated('the data ends inside a sequence or item');
  const data = dataSet.byteArray;
  const readPast = checkBounds(dataSet, data.length, encoding !== 'implicit', true);

  const pixelData = dataSet.elements['x7fe00010'];
  if (pixelData?.hadUndefinedLength) checkEncapsulatedEnd(data, pixelData);

  // The file meta should repeat the data set's SOP class and instance. Tools that re-identify or anonymise often
  // rewrite one and not the other; the data set is the instance, so its UIDs are used and the difference is noted.
  // Where the data set lacks one (a tool that wrote the meta group and stripped the data set), the meta's is used.
  const anomalies: DicomAnomaly[] = readPast;
  const sopClassUid = sopUid(dataSet, meta, 'class', anomalies);
  const sopInstanceUid = sopUid(dataSet, meta, 'instance', anomalies);
  const note = metaNote(meta);
  if (note !== undefined) anomalies.push(note);
  if (encodingAssumed) {
    anomalies.push({ code: 'ANCHORLINE_ISSUE_CODE_NOT_IN_TABLE', location: '(0002,0010)', detail: `transfer syntax ${transferSyntaxUid} is not one this engine knows; its data set was read as explicit VR little endian, as the standard encodes all but a few, and its pixel data is kept as sent` });
  }
  // Study and Series Instance UIDs are Type 1, yet codec test files, some anonymisers and some secondary-capture tools
  // leave them out. Such an instance is kept under UIDs derived from what it does name, and says so.
  let seriesInstanceUid = filedUid(dataSet, 'x0020000e', 'series', anomalies);
  if (seriesInstanceUid === undefined) {
    seriesInstanceUid = derivedUid('series', sopInstanceUid);
    anomalies.push({ code: 'ANCHORLINE_ISSUE_MISSING_FIELD', location: '(0020,000E)', detail: `(0020,000E) Series Instance UID is missing; the instance is filed under series ${seriesInstanceUid}, derived from its SOP Instance UID` });
  }
  let studyInstanceUid = filedUid(dataSet, 'x0020000d', 'study', anomalies);
  const studyDerived = studyInstanceUid === undefined || studyInstanceUid !== asciiOf(dataSet, 'x0020000d');
  if (studyInstanceUid === undefined) {
    studyInstanceUid = derivedUid('study', seriesInstanceUid);
    anomalies.push({ code: 'ANCHORLINE_ISSUE_MISSING_FIELD', location: '(0020,000D)', detail: `(0020,000D) Study Instance UID is missing; the instance is filed under study ${studyInstanceUid}, derived from its Series Instance UID` });
  }

  const specificCharacterSet = Buffer.from(bytesOf(dataSet, 'x00080005') ?? new Uint8Array()).toString('latin1').replace(/[\0 ]+$/, '').trim();
  const correctedSet = correctedCharacterSet(specificCharacterSet);
  if (correctedSet.corrected) {
    anomalies.push({ location: '(0008,0005)', detail: `(0008,0005) Specific Character Set is not written as its Defined Terms; read as '${correctedSet.value}'`, value: sentValue(specificCharacterSet) });
  }
  let textDecoding: TextDecoding = 'declared';
  const text = (tag: string, vr: string): string | undefined => {
    const value = bytesOf(dataSet, tag);
    if (value === undefined) return undefined;
    const decoded = decodeDicomText(value, specificCharacterSet, vr, tagName(tag));
    if (decoded.decoding === 'cp949') textDecoding = 'cp949';
    const trimmed = decoded.text.replace(/[\0 ]+$/, '').trim();
    return trimmed === '' ? undefined : trimmed;
  };

  // Modality (Type 1) and Patient ID (Type 2) are missing from some equipment's and tools' output. Neither is needed
  // to store the instance; the mapper says what it did without them (mappers/dicom/instance.ts).
  const modality = asciiOf(dataSet, 'x00080060');
  const patientId = text('x00100020', 'LO');

  const qualifiers = dataSet.elements['x00100024']?.items?.[0]?.dataSet;
  const patientName = text('x00100010', 'PN');
  const header: DicomInstanceHeader = {
    transferSyntaxUid,
    sopClassUid,
    sopInstanceUid,
    studyInstanceUid,
    seriesInstanceUid,
    specificCharacterSet,
    textDecoding: 'declared',
    patient: prune({
      id: patientId,
      issuer: text('x00100021', 'LO'),
      issuerUniversalId: qualifiers === undefined ? undefined : asciiOf(qualifiers, 'x00400032'),
      issuerUniversalIdType: qualifiers === undefined ? undefined : asciiOf(qualifiers, 'x00400033'),
      name: patientName === undefined ? undefined : personName(patientName),
      birthDate: asciiOf(dataSet, 'x00100030'),
      sex: asciiOf(dataSet, 'x00100040'),
    }),
    study: prune({
      date: asciiOf(dataSet, 'x00080020'),
      time: asciiOf(dataSet, 'x00080030'),
      timezoneOffset: asciiOf(dataSet, 'x00080201'),
      accessionNumber: text('x00080050', 'SH'),
      id: text('x00200010', 'SH'),
      description: text('x00081030', 'LO'),
    }),
    series: prune({
      modality,
      number: integerOf(dataSet, 'x00200011'),
      description: text('x0008103e', 'LO'),
      bodyPartExamined: asciiOf(dataSet, 'x00180015'),
      laterality: asciiOf(dataSet, 'x00200060'),
      date: asciiOf(dataSet, 'x00080021'),
      time: asciiOf(dataSet, 'x00080031'),
    }),
    instance: prune({ number: integerOf(dataSet, 'x00200013') }),
    ...(studyDerived ? { studyInstanceUidDerived: true as const } : {}),
    ...(anomalies.length > 0 ? { anomalies } : {}),
  };
  header.textDecoding = textDecoding;

  let headerLength = bytes.length;
  if (encoding !== 'deflated') {
    const first = PIXEL_DATA_TAGS.map((tag) => dataSet.elements[tag]).find((element) => element !== undefined);
    if (first !== undefined) headerLength = first.dataOffset - (encoding === 'implicit' ? 8 : 12);
  }
  if (headerLength < PREFIX_BYTES || headerLength > bytes.length) throw malformed('the pixel data element is not where the data set says');
  return { header, headerLength };
}

/** The object without its undefined members (the header types use optional members, not undefined values). */
function prune<T extends Record<string, unknown>>(value: T): { [K in keyof T]: Exclude<T[K], undefined> } {
  const result: Record<string, unknown> = {};
  for (const [key, member] of Object.entries(value)) if (member !== undefined) result[key] = member;
  return result as { [K in keyof T]: Exclude<T[K], undefined> };
}

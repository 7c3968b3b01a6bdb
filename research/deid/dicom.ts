/**
 * De-identification of a DICOM Part 10 instance under PS3.15's Basic Application Level Confidentiality Profile
 * (dicom-profile.ts), with the Retain Longitudinal Temporal Information with Modified Dates Option (dates shifted
 * by the patient's keyed offset, the same one as the patient's FHIR resources) unless `dates: 'remove'`, and the
 * Retain Patient Characteristics Option when asked.
 *
 * The instance is read into a list of elements that keep their value bytes as sent, changed where the profile
 * says, and written back in the transfer syntax it came in (a deflated one is written inflated, as Explicit VR
 * Little Endian). Everything the profile keeps, the pixel data above all, is copied byte for byte. Values are
 * replaced, never decoded and re-encoded, so names in any character set (ISO 2022 IR 149, or EUC-KR without
 * escapes) are removed alike.
 *
 * Beyond the table: private attributes (odd groups) are removed; every UID that is not a standard one (under
 * 1.2.840.10008) is remapped like the table's U attributes, so references between instances stay consistent; the
 * file meta's Media Storage SOP Instance UID follows the SOP Instance UID; Patient Identity Removed (0012,0062) YES
 * and De-identification Method (0012,0063) are added. An instance whose Burned In Annotation (0028,0301) is not NO
 * is refused: its pixels may show what the header no longer does, and this code does not clean pixels.
 *
 * Compound actions: X where the first is X; Z/D as Z, except Patient ID, which becomes the patient's pseudonymous
 * id (pseudonymousId of the Patient) when the context names the patient, so imaging links to the patient's
 * released FHIR record within the project.
 */
import dicomParser, { type DataSet, type Element } from 'dicom-parser';
import { inflateRawSync } from 'node:zlib';
import { AnchorlineError } from '../../errors/index.ts';
import { BASIC_PROFILE, repeatingGroupAction, type ProfileAttribute } from './dicom-profile.ts';
import { patientOf } from './fhir.ts';
import { dateOffsetDays, pseudonymousId, remappedUid } from './keys.ts';
import { shiftDate } from './dates.ts';
import type { DeidApplied, DeidContext } from './types.ts';

export interface DicomDeidOptions {
  /** `shift` (Retain Longitudinal Temporal Information with Modified Dates Option) or `remove`. Default shift. */
  dates?: 'shift' | 'remove';
  /** Days either way of the date shift; use the project's dateShiftRangeDays. Default 365. */
  dateShiftRangeDays?: number;
  /** Retain Patient Characteristics Option: keep sex, age, size, weight, ethnic group. Default false. */
  retainPatientCharacteristics?: boolean;
  /**
   * Refuse instances that do not say Burned In Annotation NO. Default false: an instance that says YES is refused,
   * and one that does not say is refused only for modalities that commonly burn text into pixels (ultrasound,
   * secondary capture, endoscopy and other visible-light photography, documents).
   */
  requireBurnedInAnnotationNo?: boolean;
  /** Largest inflated data set of a deflated instance, in bytes. Default 256 MiB. */
  maxInflatedBytes?: number;
}

/** One attribute: its tag (GGGGEEEE, upper case), VR when known, and value bytes as sent or items. */
export interface DicomElement {
  tag: string;
  vr?: string;
  value?: Uint8Array;
  items?: DicomElement[][];
  /** Encapsulated pixel data: `value` holds its items and delimiter as sent, written with undefined length. */
  encapsulated?: boolean;
}

export interface DicomDataset {
  transferSyntaxUid: string;
  explicitVr: boolean;
  littleEndian: boolean;
  /** File meta information (group 0002), always Explicit VR Little Endian. */
  meta: DicomElement[];
  elements: DicomElement[];
}

export interface DicomDeidResult {
  /** The de-identified data set; absent when refused. */
  dataset?: DicomDataset;
  applied: DeidApplied[];
  /** Why the instance was refused (no value from it). */
  refused?: string;
}

const IMPLICIT_LE = '1.2.840.10008.1.2';
const EXPLICIT_LE = '1.2.840.10008.1.2.1';
const DEFLATED = '1.2.840.10008.1.2.1.99';
const EXPLICIT_BE = '1.2.840.10008.1.2.2';
/** VRs with a 4-byte length (and 2 reserved bytes) in explicit VR encoding. */
const LONG_VRS = new Set(['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'SQ', 'SV', 'UC', 'UN', 'UR', 'UT', 'UV']);
const STANDARD_UID_ROOT = '1.2.840.10008.';

/** Modalities whose pixels commonly carry burned-in text when Burned In Annotation is not sent. */
const BURNS_IN_TEXT = new Set(['US', 'IVUS', 'SC', 'OT', 'XC', 'ES', 'GM', 'SM', 'DOC']);

const latin1 = new TextDecoder('latin1');
const ascii = (text: string): Uint8Array => Uint8Array.from(text, (c) => c.charCodeAt(0) & 0xff);

/** Reads a Part 10 instance into elements. Throws ANCHORLINE_ERR_DICOM_MALFORMED or _TOO_LARGE. */
export function readDicomDataset(bytes: Uint8Array, options: Pick<DicomDeidOptions, 'maxInflatedBytes'> = {}): DicomDataset {
  const maxInflated = options.maxInflatedBytes ?? 256 * 1024 * 1024;
  let metaSet: DataSet;
  let dataSet: DataSet;
  try {
    metaSet = dicomParser.readPart10Header(bytes) as DataSet;
    dataSet = dicomParser.parseDicom(bytes, {
      // dicom-parser reads the data set from the start of what the inflater returns: the inflated bytes alone (its
      // own zlib path prepends the file header and then reads it as data). Bounded, unlike its own path.
      inflater: (array: Uint8Array, position: number) => {
        try {
          return new Uint8Array(inflateRawSync(array.subarray(position), { maxOutputLength: maxInflated }));
        } catch (error) {
          throw new AnchorlineError('ANCHORLINE_ERR_DICOM_TOO_LARGE', 'the inflated data set exceeds the configured maximum', { cause: error });
        }
      },
    } as never) as DataSet;
  } catch (error) {
    if (error instanceof AnchorlineError) throw error;
    throw new AnchorlineError('ANCHORLINE_ERR_DICOM_MALFORMED', 'the instance could not be read', { cause: error });
  }
  const syntax = metaSet.string('x00020010') ?? '';
  const explicitVr = syntax !== IMPLICIT_LE;
  const littleEndian = syntax !== EXPLICIT_BE;
  // The meta's offsets are into the file; the data set's into the inflated bytes when the file was deflated.
  const meta = sortedElements(metaSet).map((element) => readElement(metaSet.byteArray, element));
  const elements = sortedElements(dataSet).filter((element) => !element.tag.startsWith('x0002')).map((element) => readElement(dataSet.byteArray, element));
  return { transferSyntaxUid: syntax === DEFLATED ? EXPLICIT_LE : syntax, explicitVr, littleEndian, meta, elements };
}

function sortedElements(dataSet: DataSet): Element[] {
  return Object.values(dataSet.elements).sort((a, b) => (a.tag < b.tag ? -1 : a.tag > b.tag ? 1 : 0));
}

function readElement(byteArray: Uint8Array, element: Element): DicomElement {
  const tag = element.tag.slice(1).toUpperCase();
  const out: DicomElement = { tag, ...(element.vr ? { vr: element.vr } : {}) };
  if (element.items) {
    out.items = element.items.map((item) => (item.dataSet ? sortedElements(item.dataSet).map((e) => readElement(byteArray, e)) : []));
    out.vr = 'SQ';
    return out;
  }
  out.value = byteArray.subarray(element.dataOffset, element.dataOffset + element.length);
  if (element.encapsulatedPixelData || (element.hadUndefinedLength && tag === '7FE00010')) out.encapsulated = true;
  return out;
}

/**
 * Applies the Basic Profile to a data set. The context's project secret keys UIDs, the date offset and the
 * patient's pseudonymous id; `context.patient` names the patient whose offset the dates take (as for FHIR).
 */
export function deidentifyDicomDataset(dataset: DicomDataset, context: DeidContext, options: DicomDeidOptions = {}): DicomDeidResult {
  const applied: DeidApplied[] = [];
  const burnedIn = textOf(dataset.elements, '00280301')?.toUpperCase();
  const modality = textOf(dataset.elements, '00080060')?.toUpperCase() ?? '';
  const unsaid = burnedIn === undefined || burnedIn === '';
  if (burnedIn === 'YES' || (unsaid && (options.requireBurnedInAnnotationNo || BURNS_IN_TEXT.has(modality)))) {
    applied.push({ path: '(0028,0301)', rule: 'refused: burned in annotation' });
    return { applied, refused: unsaid ? 'the instance does not say that it has no burned in annotation' : 'the instance has burned in annotation' };
  }
  const patient = patientOf({}, context);
  const offsetDays = dateOffsetDays(context.projectSecret, patient ?? `dicom/${uidOf(dataset.elements, '0020000D') ?? ''}`, options.dateShiftRangeDays ?? 365);
  const walk = {
    secret: context.projectSecret,
    offsetDays,
    dates: options.dates ?? 'shift',
    characteristics: options.retainPatientCharacteristics ?? false,
    patientId: patient ? pseudonymousId(context.projectSecret, 'Patient', patient.slice('Patient/'.length)) : undefined,
    applied,
  };
  const elements = cleanElements(walk, dataset.elements, '');
  elements.push(
    { tag: '00120062', vr: 'CS', value: padded('YES', 'CS') },
    { tag: '00120063', vr: 'LO', value: padded('DICOM PS3.15 E.1 Basic Profile; Modified Dates', 'LO') },
  );
  elements.sort((a, b) => (a.tag < b.tag ? -1 : 1));
  const sopInstance = uidOf(elements, '00080018');
  const meta = dataset.meta.map((element) => {
    if (element.tag === '00020003' && sopInstance) return { ...element, value: padded(sopInstance, 'UI') };
    if (element.tag === '00020010') return { ...element, value: padded(dataset.transferSyntaxUid, 'UI') };
    return element;
  });
  return { dataset: { ...dataset, meta, elements }, applied };
}

interface DicomWalk {
  secret: Uint8Array;
  offsetDays: number;
  dates: 'shift' | 'remove';
  characteristics: boolean;
  patientId: string | undefined;
  applied: DeidApplied[];
}

function cleanElements(walk: DicomWalk, elements: readonly DicomElement[], prefix: string): DicomElement[] {
  const out: DicomElement[] = [];
  for (const element of elements) {
    const path = `${prefix}(${element.tag.slice(0, 4)},${element.tag.slice(4)})`;
    const cleaned = cleanElement(walk, element, path);
    if (cleaned) out.push(cleaned);
  }
  return out;
}

function cleanElement(walk: DicomWalk, element: DicomElement, path: string): DicomElement | undefined {
  const group = parseInt(element.tag.slice(0, 4), 16);
  if (group % 2 === 1) {
    walk.applied.push({ path, rule: 'X private attribute' });
    return undefined;
  }
  const attribute: ProfileAttribute | undefined = BASIC_PROFILE[element.tag] ?? repeatingGroupAction(element.tag);
  const vr = element.vr ?? (element.items ? 'SQ' : undefined);
  const done = (rule: string, result: DicomElement | undefined): DicomElement | undefined => {
    walk.applied.push({ path, rule });
    return result;
  };
  if (attribute?.characteristics && walk.characteristics) return element;
  if (attribute?.dates && walk.dates === 'shift' && element.value && (vr === 'DA' || vr === 'DT' || vr === 'TM' || vr === undefined)) {
    return done(`C ${attribute.name} (modified dates)`, shiftDicomDate(walk, element));
  }
  if (attribute) {
    const action = attribute.action.split('/')[0]!;
    switch (action) {
      case 'X':
        return done(`X ${attribute.name}`, undefined);
      case 'Z':
        if (element.tag === '00100020' && walk.patientId) return done(`D ${attribute.name} (patient pseudonym)`, { ...element, value: padded(walk.patientId, 'LO') });
        return done(`Z ${attribute.name}`, element.items ? { ...element, items: [] } : { ...element, value: new Uint8Array(0) });
      case 'D':
        return done(`D ${attribute.name}`, { ...element, value: padded(dummyFor(vr), vr ?? 'LO') });
      case 'U':
        return done(`U ${attribute.name}`, remapUids(walk, element));
      case 'K':
      case 'C':
        break;
    }
  }
  if (element.items) return { ...element, items: element.items.map((item, i) => cleanElements(walk, item, `${path}[${i}]`)) };
  // A UID the table does not name (Referenced SOP Instance UIDs in other modules, private-creator-free references):
  // remapped alike, unless it is one of the standard's own (SOP classes, transfer syntaxes, coding schemes).
  if (vr === 'UI' && element.value) {
    const remapped = remapUids(walk, element);
    if (remapped.value !== element.value) walk.applied.push({ path, rule: 'U UID' });
    return remapped;
  }
  return element;
}

function remapUids(walk: DicomWalk, element: DicomElement): DicomElement {
  if (!element.value) return element;
  const values = latin1.decode(element.value).replace(/[\0 ]+$/, '').split('\\');
  if (values.every((uid) => uid === '' || uid.startsWith(STANDARD_UID_ROOT))) return element;
  const remapped = values.map((uid) => (uid === '' || uid.startsWith(STANDARD_UID_ROOT) ? uid : remappedUid(walk.secret, uid)));
  return { ...element, value: padded(remapped.join('\\'), 'UI') };
}

function shiftDicomDate(walk: DicomWalk, element: DicomElement): DicomElement {
  const text = latin1.decode(element.value!).replace(/[\0 ]+$/, '');
  const vr = element.vr ?? (/^\d{8}$/.test(text) ? 'DA' : /^\d{6}/.test(text) && text.length <= 13 ? 'TM' : 'DT');
  if (vr === 'TM') return element;
  const shifted = text.split('\\').map((value) => {
    const match = /^(\d{4})(\d{2})(\d{2})(.*)$/.exec(value);
    if (!match) return '';
    const day = shiftDate(`${match[1]}-${match[2]}-${match[3]}`, walk.offsetDays);
    return day ? `${day.replace(/-/g, '')}${vr === 'DT' ? match[4] : ''}` : '';
  });
  return { ...element, value: padded(shifted.join('\\'), vr) };
}

function dummyFor(vr: string | undefined): string {
  switch (vr) {
    case 'DA': return '19000101';
    case 'TM': return '000000';
    case 'DT': return '19000101000000';
    case 'IS':
    case 'DS': return '0';
    case 'AS': return '000Y';
    case 'PN': return 'ANONYMOUS';
    default: return 'ANONYMIZED';
  }
}

function padded(text: string, vr: string): Uint8Array {
  const bytes = ascii(text);
  if (bytes.length % 2 === 0) return bytes;
  const out = new Uint8Array(bytes.length + 1);
  out.set(bytes);
  out[bytes.length] = vr === 'UI' || vr === 'OB' ? 0 : 0x20;
  return out;
}

function textOf(elements: readonly DicomElement[], tag: string): string | undefined {
  const element = elements.find((e) => e.tag === tag);
  return element?.value ? latin1.decode(element.value).replace(/^ +|[\0 ]+$/g, '') : undefined;
}
const uidOf = textOf;

// ---- writing ----

class Writer {
  private chunks: Uint8Array[] = [];
  private readonly littleEndian: boolean;
  length = 0;
  constructor(littleEndian: boolean) {
    this.littleEndian = littleEndian;
  }
  bytes(bytes: Uint8Array): void {
    this.chunks.push(bytes);
    this.length += bytes.length;
  }
  u16(value: number): void {
    const b = new Uint8Array(2);
    new DataView(b.buffer).setUint16(0, value, this.littleEndian);
    this.bytes(b);
  }
  u32(value: number): void {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, value, this.littleEndian);
    this.bytes(b);
  }
  concat(): Uint8Array {
    const out = new Uint8Array(this.length);
    let at = 0;
    for (const chunk of this.chunks) {
      out.set(chunk, at);
      at += chunk.length;
    }
    return out;
  }
}

const UNDEFINED_LENGTH = 0xffffffff;

function writeElements(writer: Writer, elements: readonly DicomElement[], explicitVr: boolean): void {
  for (const element of elements) writeElement(writer, element, explicitVr);
}

function writeElement(writer: Writer, element: DicomElement, explicitVr: boolean): void {
  writer.u16(parseInt(element.tag.slice(0, 4), 16));
  writer.u16(parseInt(element.tag.slice(4), 16));
  const vr = element.items ? 'SQ' : (element.vr ?? 'UN');
  const undefinedLength = element.items !== undefined || element.encapsulated === true;
  const length = undefinedLength ? UNDEFINED_LENGTH : element.value!.length;
  if (explicitVr) {
    writer.bytes(ascii(vr));
    if (LONG_VRS.has(vr) || undefinedLength) {
      writer.u16(0);
      writer.u32(length);
    } else {
      writer.u16(length);
    }
  } else {
    writer.u32(length);
  }
  if (element.items) {
    for (const item of element.items) {
      writer.u16(0xfffe);
      writer.u16(0xe000);
      writer.u32(UNDEFINED_LENGTH);
      writeElements(writer, item, explicitVr);
      writer.u16(0xfffe);
      writer.u16(0xe00d);
      writer.u32(0);
    }
    writer.u16(0xfffe);
    writer.u16(0xe0dd);
    writer.u32(0);
    return;
  }
  writer.bytes(element.value!);
}

/** A Part 10 file of a data set: preamble, DICM, the file meta with its group length, then the data set. */
export function writeDicomPart10(dataset: DicomDataset): Uint8Array {
  const metaBody = new Writer(true);
  writeElements(metaBody, dataset.meta.filter((e) => e.tag !== '00020000'), true);
  const file = new Writer(dataset.littleEndian);
  file.bytes(new Uint8Array(128));
  file.bytes(ascii('DICM'));
  const groupLength = new Writer(true);
  writeElement(groupLength, { tag: '00020000', vr: 'UL', value: new Uint8Array(new Uint32Array([metaBody.length]).buffer) }, true);
  file.bytes(groupLength.concat());
  file.bytes(metaBody.concat());
  writeElements(file, dataset.elements, dataset.explicitVr);
  return file.concat();
}

/**
 * Reads, de-identifies and writes one Part 10 instance: `bytes` absent when the instance is refused (`refused`
 * says why). Throws ANCHORLINE_ERR_DICOM_MALFORMED for an instance that cannot be read.
 */
export function deidentifyDicomPart10(bytes: Uint8Array, context: DeidContext, options: DicomDeidOptions = {}): { bytes?: Uint8Array; applied: DeidApplied[]; refused?: string } {
  const result = deidentifyDicomDataset(readDicomDataset(bytes, options), context, options);
  if (!result.dataset) return { applied: result.applied, ...(result.refused ? { refused: result.refused } : {}) };
  return { bytes: writeDicomPart10(result.dataset), applied: result.applied };
}

/**
 * A DICOM Part 10 file (PS3.10 section 7) around a data set received over DIMSE.
 *
 * C-STORE carries the bare data set in the transfer syntax of its presentation context; the intake takes files. The
 * data set bytes are kept exactly as received (never decoded and re-encoded), behind a 128-byte preamble, "DICM" and
 * the File Meta Information group, which is always Explicit VR Little Endian (PS3.10 7.1). The meta group names the
 * SOP class and instance from the C-STORE request (its Affected SOP Class/Instance UID), the transfer syntax the
 * data set was sent in, and the sending AE title.
 */

import { IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME, NO_FILE_META_NOTE } from './meta-ids.ts';
import { EXPLICIT_VR_BIG_ENDIAN, EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN, PREFIX_BYTES, VRS, hasPart10Prefix, parseDicomInstance } from './parse.ts';

export { IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME } from './meta-ids.ts';

export interface FileMetaInput {
  sopClassUid: string;
  sopInstanceUid: string;
  transferSyntaxUid: string;
  /** The calling AE title of the association, kept as Source Application Entity Title (0002,0016). */
  sourceAeTitle?: string;
  /** Noted as our Private Information (0002,0100, 0002,0102): the data set came without File Meta Information. */
  receivedWithoutFileMeta?: boolean;
}

export function part10File(meta: FileMetaInput, dataset: Buffer): Buffer {
  const elements = [
    element(0x0001, 'OB', Buffer.from([0x00, 0x01])),
    element(0x0002, 'UI', uidValue(meta.sopClassUid)),
    element(0x0003, 'UI', uidValue(meta.sopInstanceUid)),
    element(0x0010, 'UI', uidValue(meta.transferSyntaxUid)),
    element(0x0012, 'UI', uidValue(IMPLEMENTATION_CLASS_UID)),
    element(0x0013, 'SH', textValue(IMPLEMENTATION_VERSION_NAME)),
    ...(meta.sourceAeTitle ? [element(0x0016, 'AE', textValue(meta.sourceAeTitle.slice(0, 16)))] : []),
    ...(meta.receivedWithoutFileMeta ? [element(0x0100, 'UI', uidValue(IMPLEMENTATION_CLASS_UID)), element(0x0102, 'OB', textValue(NO_FILE_META_NOTE))] : []),
  ];
  const groupLength = elements.reduce((sum, e) => sum + e.length, 0);
  const lengthElement = Buffer.alloc(12);
  lengthElement.writeUInt16LE(0x0002, 0);
  lengthElement.writeUInt16LE(0x0000, 2);
  lengthElement.write('UL', 4, 'latin1');
  lengthElement.writeUInt16LE(4, 6);
  lengthElement.writeUInt32LE(groupLength, 8);
  return Buffer.concat([part10Prefix(), lengthElement, ...elements, dataset]);
}

/** One group 0002 element, Explicit VR Little Endian: OB has a 4-byte length after two reserved bytes. */
function element(elementNumber: number, vr: 'OB' | 'UI' | 'SH' | 'AE', value: Buffer): Buffer {
  const long = vr === 'OB';
  const header = Buffer.alloc(long ? 12 : 8);
  header.writeUInt16LE(0x0002, 0);
  header.writeUInt16LE(elementNumber, 2);
  header.write(vr, 4, 'latin1');
  if (long) header.writeUInt32LE(value.length, 8);
  else header.writeUInt16LE(value.length, 6);
  return Buffer.concat([header, value]);
}

/** UI values are padded to even length with one NUL (PS3.5 9.1). */
function uidValue(uid: string): Buffer {
  const bytes = Buffer.from(uid, 'latin1');
  return bytes.length % 2 === 0 ? bytes : Buffer.concat([bytes, Buffer.from([0x00])]);
}

/** SH and AE values are padded to even length with one space. */
function textValue(text: string): Buffer {
  const bytes = Buffer.from(text, 'latin1');
  return bytes.length % 2 === 0 ? bytes : Buffer.concat([bytes, Buffer.from(' ')]);
}

/** Explicit VRs whose length field is 4 bytes after 2 reserved bytes (PS3.5 7.1.2). */
const LONG_VRS = new Set(['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'SQ', 'SV', 'UC', 'UN', 'UR', 'UT', 'UV']);

/**
 * The Transfer Syntax UID (0002,0010) of a Part 10 file's meta group, read without parsing the data set; undefined
 * when the bytes are not a Part 10 file or the element is absent.
 */
export function fileTransferSyntax(file: Buffer): string | undefined {
  if (!hasPart10Prefix(file)) return undefined;
  let offset = 132;
  while (offset + 8 <= file.length && file.readUInt16LE(offset) === 0x0002) {
    const element = file.readUInt16LE(offset + 2);
    const vr = file.toString('latin1', offset + 4, offset + 6);
    const long = LONG_VRS.has(vr);
    if (long && offset + 12 > file.length) return undefined;
    const length = long ? file.readUInt32LE(offset + 8) : file.readUInt16LE(offset + 6);
    const valueStart = offset + (long ? 12 : 8);
    if (valueStart + length > file.length) return undefined;
    if (element === 0x0010) return file.toString('latin1', valueStart, valueStart + length).replace(/[\0 ]+$/, '');
    offset = valueStart + length;
  }
  return undefined;
}

/** The 128-byte preamble (zeros) and 'DICM' a Part 10 file starts with. */
function part10Prefix(): Buffer {
  const prefix = Buffer.alloc(PREFIX_BYTES);
  prefix.write('DICM', 128, 'latin1');
  return prefix;
}

/**
 * The first group of a data set sent without File Meta Information. Real data sets start with group 0008 (Specific
 * Character Set, Image Type, SOP Class UID) or, stripped of identifying modules, a little later; anything else is
 * not taken for DICOM.
 */
function plausibleFirstGroup(group: number): boolean {
  return group % 2 === 0 && group >= 0x0008 && group <= 0x0028;
}

/**
 * The transfer syntax of a data set sent without File Meta Information, told from its first element as DICOM
 * toolkits tell it: a real VR after the tag is explicit VR (little endian when the group reads as one little endian,
 * big endian when it reads as one big endian); no VR is implicit VR little endian, the default transfer syntax.
 * Undefined when the first element is not one.
 */
function bareDataSetTransferSyntax(bytes: Buffer): string | undefined {
  if (bytes.length < 8) return undefined;
  const explicit = VRS.has(bytes.toString('latin1', 4, 6));
  if (plausibleFirstGroup(bytes.readUInt16LE(0))) {
    if (explicit) return EXPLICIT_VR_LITTLE_ENDIAN;
    return bytes.readUInt32LE(4) <= bytes.length - 8 || bytes.readUInt32LE(4) === 0xffffffff ? IMPLICIT_VR_LITTLE_ENDIAN : undefined;
  }
  if (explicit && plausibleFirstGroup(bytes.readUInt16BE(0))) return EXPLICIT_VR_BIG_ENDIAN;
  return undefined;
}

/**
 * The instance as a DICOM Part 10 file. A Part 10 file is returned as it is. Some archives and older equipment write
 * instances without the preamble and File Meta Information (PS3.10 7.1), as a bare data set (the ACR-NEMA habit) or
 * a file meta group without the preamble; DICOM toolkits read both. Such an instance is returned inside a file meta
 * group of our own (part10File) naming its SOP class and instance and the transfer syntax detected, with a note
 * (Private Information, 0002,0102) that the reader reports as a mapping issue. The data set's bytes are kept as
 * received. Bytes that do not start like a data set are returned unchanged, and the reader refuses them as before.
 * Throws AnchorlineError (the data set's own faults) only.
 */
export function asPart10File(bytes: Buffer): Buffer {
  if (hasPart10Prefix(bytes)) return bytes;
  if (bytes.length >= 8 && bytes.readUInt16LE(0) === 0x0002 && VRS.has(bytes.toString('latin1', 4, 6))) {
    // A file meta group without the preamble: the preamble and 'DICM' are all that is missing.
    return Buffer.concat([part10Prefix(), bytes]);
  }
  const transferSyntaxUid = bareDataSetTransferSyntax(bytes);
  if (transferSyntaxUid === undefined) return bytes;
  // The file meta names the data set's SOP class and instance, so the data set is read once inside a provisional
  // group, then wrapped in the real one.
  const provisional = part10File({ sopClassUid: '', sopInstanceUid: '', transferSyntaxUid, receivedWithoutFileMeta: true }, bytes);
  const { header } = parseDicomInstance(provisional, { maxInflatedBytes: 0 });
  return part10File({ sopClassUid: header.sopClassUid, sopInstanceUid: header.sopInstanceUid, transferSyntaxUid, receivedWithoutFileMeta: true }, bytes);
}

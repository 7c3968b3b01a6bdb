/**
 * A DICOM Part 10 file (PS3.10 section 7) around a data set received over DIMSE.
 *
 * C-STORE carries the bare data set in the transfer syntax of its presentation context; the intake takes files. The
 * data set bytes are kept exactly as received (never decoded and re-encoded), behind a 128-byte preamble, "DICM" and
 * the File Meta Information group, which is always Explicit VR Little Endian (PS3.10 7.1). The meta group names the
 * SOP class and instance from the C-STORE request (its Affected SOP Class/Instance UID), the transfer syntax the
 * data set was sent in, and the sending AE title.
 */

/** Our implementation class UID (a UUID-derived UID, PS3.5 B.2), written into every file meta group we make. */
export const IMPLEMENTATION_CLASS_UID = '2.25.186232566078651622444903801208637435033';
/** At most 16 characters (SH). */
export const IMPLEMENTATION_VERSION_NAME = 'ANCHORLINE_1';

export interface FileMetaInput {
  sopClassUid: string;
  sopInstanceUid: string;
  transferSyntaxUid: string;
  /** The calling AE title of the association, kept as Source Application Entity Title (0002,0016). */
  sourceAeTitle?: string;
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
  ];
  const groupLength = elements.reduce((sum, e) => sum + e.length, 0);
  const lengthElement = Buffer.alloc(12);
  lengthElement.writeUInt16LE(0x0002, 0);
  lengthElement.writeUInt16LE(0x0000, 2);
  lengthElement.write('UL', 4, 'latin1');
  lengthElement.writeUInt16LE(4, 6);
  lengthElement.writeUInt32LE(groupLength, 8);
  const preamble = Buffer.alloc(132);
  preamble.write('DICM', 128, 'latin1');
  return Buffer.concat([preamble, lengthElement, ...elements, dataset]);
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
  if (file.length < 132 || file.toString('latin1', 128, 132) !== 'DICM') return undefined;
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

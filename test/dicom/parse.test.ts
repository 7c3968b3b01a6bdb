/**
 * The DICOM header reader: UIDs, character sets (ISO 2022 IR 149 and the CP949 fallback), the file meta checks, and
 * the property that any damage to an instance ends in a result or a coded error, never anything else.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import iconv from 'iconv-lite';
import { describe, expect, it } from 'vitest';
import { correctedCharacterSet, decodeDicomText } from '../../formats/dicom/charset.ts';
import { isValidUid, parseDicomInstance } from '../../formats/dicom/parse.ts';
import { readDicomInstance } from '../../formats/dicom/inflate.ts';
import { AnchorlineError, isAnchorlineError } from '../../errors/index.ts';

const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'dicom');
const fixture = (name: string): Buffer => readFileSync(path.join(FIXTURES, `${name}.dcm`));
const OPTIONS = { maxInflatedBytes: 16 * 1024 * 1024 };

const ESC_KSX1001 = Buffer.from('\x1b$)C', 'latin1');
const ascii = (text: string): Buffer => Buffer.from(text, 'latin1');
const euckr = (text: string): Buffer => iconv.encode(text, 'euc-kr');

function codeOf(run: () => unknown): string | undefined {
  try {
    run();
    return undefined;
  } catch (error) {
    if (!isAnchorlineError(error)) throw error;
    return error.code;
  }
}

describe('UIDs (PS3.5 9.1)', () => {
  it.each(['1.2.840.10008.5.1.4.1.1.2', '2.25.1000000001', '0', '1.2.3.4', '9'.repeat(64)])('accepts %s', (uid) => {
    expect(isValidUid(uid)).toBe(true);
  });

  it.each(['', '../etc/passwd', '1.2/../3', '1..2', '.1.2', '1.2.', '1.2.a', '1.2 ', '1.2\u0000', '1'.repeat(65), '１.２'])('refuses %j', (uid) => {
    expect(isValidUid(uid)).toBe(false);
  });
});

describe('text in the declared character set, else CP949', () => {
  it('reads ASCII in any set, and the default repertoire when none is declared', () => {
    expect(decodeDicomText(ascii('DOE^JOHN '), '', 'PN', '(0010,0010)')).toEqual({ text: 'DOE^JOHN ', decoding: 'declared' });
    expect(decodeDicomText(ascii('DOE^JOHN'), 'ISO_IR 192', 'PN', '(0010,0010)').decoding).toBe('declared');
  });

  it('reads ISO 2022 IR 149 with the escapes PS3.5 requires after each delimiter', () => {
    const bytes = Buffer.concat([ascii('Hong^Gildong='), ESC_KSX1001, euckr('洪'), ascii('^'), ESC_KSX1001, euckr('吉洞'), ascii('='), ESC_KSX1001, euckr('홍'), ascii('^'), ESC_KSX1001, euckr('길동')]);
    expect(decodeDicomText(bytes, '\\ISO 2022 IR 149', 'PN', '(0010,0010)')).toEqual({ text: 'Hong^Gildong=洪^吉洞=홍^길동', decoding: 'declared' });
  });

  it('reads ISO 2022 IR 149 as the first value, where KS X 1001 is G1 from the start', () => {
    expect(decodeDicomText(euckr('홍^길동'), 'ISO 2022 IR 149', 'PN', '(0010,0010)')).toEqual({ text: '홍^길동', decoding: 'declared' });
  });

  it('reads EUC-KR sent without escapes as CP949, whatever set was declared', () => {
    for (const declared of ['', 'ISO_IR 6', 'ISO_IR 192', '\\ISO 2022 IR 149']) {
      expect(decodeDicomText(euckr('김^철수'), declared, 'PN', '(0010,0010)'), declared).toEqual({ text: '김^철수', decoding: 'cp949' });
    }
    // CP949's own extension syllables (not in EUC-KR) too.
    expect(decodeDicomText(iconv.encode('똠방각하', 'cp949'), '', 'LO', '(0008,1030)')).toEqual({ text: '똠방각하', decoding: 'cp949' });
  });

  it('reads a KS X 1001 escape sent once per name, not after each delimiter, as CP949', () => {
    const bytes = Buffer.concat([ascii('Hong^Gildong='), ESC_KSX1001, euckr('洪^吉洞=홍^길동')]);
    expect(decodeDicomText(bytes, '\\ISO 2022 IR 149', 'PN', '(0010,0010)')).toEqual({ text: 'Hong^Gildong=洪^吉洞=홍^길동', decoding: 'cp949' });
  });

  it('reads UTF-8 and Latin-1 as declared', () => {
    expect(decodeDicomText(Buffer.from('홍^길동', 'utf8'), 'ISO_IR 192', 'PN', '(0010,0010)')).toEqual({ text: '홍^길동', decoding: 'declared' });
    expect(decodeDicomText(Buffer.from('Müller^Jürgen', 'latin1'), 'ISO_IR 100', 'PN', '(0010,0010)')).toEqual({ text: 'Müller^Jürgen', decoding: 'declared' });
  });

  it('refuses bytes valid in neither, naming the attribute and not the value', () => {
    let thrown: unknown;
    try {
      decodeDicomText(Buffer.from([0x48, 0xff, 0xfe, 0x80]), '', 'PN', '(0010,0010)');
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(AnchorlineError);
    expect((thrown as AnchorlineError).code).toBe('ANCHORLINE_ERR_CHARSET_MISMATCH');
    expect((thrown as AnchorlineError).location).toBe('(0010,0010)');
  });

  it('refuses an unknown character set unless the text is ASCII or CP949', () => {
    expect(decodeDicomText(ascii('DOE'), 'ISO_IR 999', 'PN', '(0010,0010)').text).toBe('DOE');
    expect(decodeDicomText(euckr('김'), 'KS_C_5601', 'PN', '(0010,0010)').decoding).toBe('cp949');
    expect(codeOf(() => decodeDicomText(Buffer.from([0xff, 0xff]), 'ISO_IR 999', 'PN', '(0010,0010)'))).toBe('ANCHORLINE_ERR_DICOM_UNSUPPORTED');
  });

  it('reads the names equipment writes for a set instead of its Defined Term as the term they mean', () => {
    const latin1 = Buffer.from('M\u00fcller^J\u00fcrgen', 'latin1');
    for (const written of ['ISO-IR 100', 'ISO_IR100', 'ISO IR 100', 'iso_ir 100', 'ISO-8859-1']) {
      expect(decodeDicomText(latin1, written, 'PN', '(0010,0010)'), written).toEqual({ text: 'M\u00fcller^J\u00fcrgen', decoding: 'declared' });
    }
    expect(decodeDicomText(Buffer.from('M\u00fcller', 'utf8'), 'UTF-8', 'PN', '(0010,0010)')).toEqual({ text: 'M\u00fcller', decoding: 'declared' });
    // Korean devices write ISO_IR 149 or EUC-KR for EUC-KR without escapes: read as KS X 1001 in G1, as declared.
    for (const written of ['ISO_IR 149', 'EUC-KR', 'KS_C_5601-1987']) {
      expect(decodeDicomText(euckr('\ud64d^\uae38\ub3d9'), written, 'PN', '(0010,0010)'), written).toEqual({ text: '\ud64d^\uae38\ub3d9', decoding: 'declared' });
    }
    expect(correctedCharacterSet('ISO-IR 100')).toEqual({ value: 'ISO_IR 100', corrected: true });
    expect(correctedCharacterSet('\\ISO 2022 IR 149')).toEqual({ value: '\\ISO 2022 IR 149', corrected: false });
  });

  it('notes a corrected Specific Character Set on the header, as the sender wrote it', () => {
    // pydicom's CT_small (public corpus) declares ISO_IR 100; the same bytes with the name some equipment writes.
    const file = readFileSync(path.join(FIXTURES, '..', 'corpus', 'dicom', 'pydicom', 'test_files__CT_small.dcm'));
    const at = file.indexOf('ISO_IR 100');
    expect(at).toBeGreaterThan(132);
    expect(parseDicomInstance(file, OPTIONS).header.anomalies).toBeUndefined();
    file.write('ISO-IR 100', at, 'latin1');
    const { header } = parseDicomInstance(file, OPTIONS);
    expect(header.anomalies).toEqual([expect.objectContaining({ location: '(0008,0005)', value: 'ISO-IR 100' })]);
  });
});

describe('the file meta', () => {
  it('refuses a bare data set, an empty input and random bytes as not Part 10', () => {
    const file = fixture('ct-1');
    expect(codeOf(() => parseDicomInstance(file.subarray(132 + 4 + file.readUInt32LE(140) + 8), OPTIONS))).toBe('ANCHORLINE_ERR_DICOM_MALFORMED');
    expect(codeOf(() => parseDicomInstance(Buffer.alloc(0), OPTIONS))).toBe('ANCHORLINE_ERR_DICOM_MALFORMED');
    expect(codeOf(() => parseDicomInstance(Buffer.from('GET / HTTP/1.1\r\n\r\n'), OPTIONS))).toBe('ANCHORLINE_ERR_DICOM_MALFORMED');
  });

  it('reads the data set\'s SOP instance when the file meta names another, and notes the difference', () => {
    const file = Buffer.from(fixture('ct-1'));
    const at = file.indexOf('2.25.1000000001.1.1');
    expect(at).toBeGreaterThan(132);
    file.write('7', at + '2.25.1000000001.1.1'.length - 1, 'latin1');
    const { header } = parseDicomInstance(file, OPTIONS);
    expect(header.sopInstanceUid).toBe('2.25.1000000001.1.1');
    expect(header.anomalies).toEqual([expect.objectContaining({ location: '(0002,0003)', value: '2.25.1000000001.1.7' })]);
    expect(parseDicomInstance(fixture('ct-1'), OPTIONS).header.anomalies).toBeUndefined();
  });

  it('files an instance without Study or Series Instance UID under UIDs derived from what it names, and says so', () => {
    // ct-1 is explicit VR little endian: an element's value is blanked with spaces, which reads as absent.
    const blank = (file: Buffer, group: number, element: number): Buffer => {
      const copy = Buffer.from(file);
      const at = copy.indexOf(Buffer.from([group, 0, element, 0, 0x55, 0x49]), 132);
      expect(at).toBeGreaterThan(132);
      copy.fill(0x20, at + 8, at + 8 + copy.readUInt16LE(at + 6));
      return copy;
    };
    // A second instance of ct-1's series: its SOP Instance UID (in the meta and the data set) ends in 2, not 1.
    const sibling = (file: Buffer): Buffer => Buffer.from(file.toString('latin1').replaceAll('2.25.1000000001.1.1\0', '2.25.1000000001.1.2\0'), 'latin1');
    const noStudy = blank(fixture('ct-1'), 0x20, 0x0d);
    const first = parseDicomInstance(noStudy, OPTIONS).header;
    const second = parseDicomInstance(sibling(noStudy), OPTIONS).header;
    expect(second.sopInstanceUid).toBe('2.25.1000000001.1.2');
    expect(first.studyInstanceUid).toMatch(/^2\.25\.[1-9][0-9]{0,38}$/);
    expect(isValidUid(first.studyInstanceUid)).toBe(true);
    expect(first.studyInstanceUidDerived).toBe(true);
    expect(first.seriesInstanceUid).toBe('2.25.1000000001.1');
    // One series, one study: its instances land together, and a resend lands where the first did.
    expect(second.studyInstanceUid).toBe(first.studyInstanceUid);
    expect(parseDicomInstance(noStudy, OPTIONS).header.studyInstanceUid).toBe(first.studyInstanceUid);
    expect(first.anomalies).toEqual([{ code: 'ANCHORLINE_ISSUE_MISSING_FIELD', location: '(0020,000D)', detail: expect.stringContaining(first.studyInstanceUid) }]);

    // Without a series either, each instance is a series of its own, and the study follows the series.
    const noSeries = blank(noStudy, 0x20, 0x0e);
    const alone = parseDicomInstance(noSeries, OPTIONS).header;
    const other = parseDicomInstance(sibling(noSeries), OPTIONS).header;
    expect(alone.seriesInstanceUid).not.toBe(other.seriesInstanceUid);
    expect(alone.studyInstanceUid).not.toBe(other.studyInstanceUid);
    expect(alone.studyInstanceUid).not.toBe(first.studyInstanceUid);
    expect(alone.anomalies?.map((a) => [a.code, a.location])).toEqual([['ANCHORLINE_ISSUE_MISSING_FIELD', '(0020,000E)'], ['ANCHORLINE_ISSUE_MISSING_FIELD', '(0020,000D)']]);

    // A study that is sent is never replaced, and an instance that names its series and study carries no note.
    const sent = parseDicomInstance(blank(fixture('ct-1'), 0x20, 0x0e), OPTIONS).header;
    expect(sent.studyInstanceUid).toBe('2.25.1000000001');
    expect(sent.studyInstanceUidDerived).toBeUndefined();
    expect(parseDicomInstance(fixture('ct-1'), OPTIONS).header.studyInstanceUidDerived).toBeUndefined();
  });

  it('files an instance under UIDs derived from values that are not UIDs, grouped as they were sent', () => {
    // An anonymiser's digest where a UID belongs: the value is overwritten in place, keeping its length.
    const overwrite = (file: Buffer, group: number, element: number, text: string): Buffer => {
      const copy = Buffer.from(file);
      const at = copy.indexOf(Buffer.from([group, 0, element, 0, 0x55, 0x49]), 132);
      expect(at).toBeGreaterThan(132);
      const length = copy.readUInt16LE(at + 6);
      copy.write(text.padEnd(length, text).slice(0, length), at + 8, 'latin1');
      return copy;
    };
    const hashed = overwrite(overwrite(fixture('ct-1'), 0x20, 0x0d, 'dccc9599'), 0x20, 0x0e, 'e1a2b3');
    const first = parseDicomInstance(hashed, OPTIONS).header;
    expect(isValidUid(first.studyInstanceUid)).toBe(true);
    expect(isValidUid(first.seriesInstanceUid)).toBe(true);
    expect(first.studyInstanceUid).toMatch(/^2\.25\./);
    expect(first.studyInstanceUidDerived).toBe(true);
    expect(first.anomalies).toEqual([
      { location: '(0020,000E)', detail: expect.stringContaining(first.seriesInstanceUid), value: 'e1a2b3e1a2b3e1a2b3' },
      { location: '(0020,000D)', detail: expect.stringContaining(first.studyInstanceUid), value: 'dccc9599dccc9599' },
    ]);
    // Another instance naming the same values lands in the same study and series; another value, elsewhere.
    const sibling = overwrite(hashed, 0x08, 0x18, '2.25.1000000001.1.2\0');
    expect(parseDicomInstance(sibling, OPTIONS).header).toMatchObject({ sopInstanceUid: '2.25.1000000001.1.2', studyInstanceUid: first.studyInstanceUid, seriesInstanceUid: first.seriesInstanceUid });
    expect(parseDicomInstance(overwrite(hashed, 0x20, 0x0d, 'ffff'), OPTIONS).header.studyInstanceUid).not.toBe(first.studyInstanceUid);

    // A SOP Instance UID that is not one is derived the same way; the file meta's, when it differs, is noted.
    const instance = parseDicomInstance(overwrite(fixture('ct-1'), 0x08, 0x18, 'abc'), OPTIONS).header;
    expect(isValidUid(instance.sopInstanceUid)).toBe(true);
    expect(instance.sopInstanceUid).not.toBe('2.25.1000000001.1.1');
    expect(instance.anomalies?.map((a) => a.location)).toEqual(['(0008,0018)', '(0002,0003)']);
    // A SOP class that is not a UID says nothing of what the instance is: refused.
    expect(codeOf(() => parseDicomInstance(overwrite(fixture('ct-1'), 0x08, 0x16, 'x'), OPTIONS))).toBe('ANCHORLINE_ERR_DICOM_BAD_UID');
  });

  it('files an instance that names no SOP Instance UID anywhere under one derived from its data set', () => {
    const file = Buffer.from(fixture('ct-1'));
    for (const tag of [[0x08, 0x18], [0x02, 0x03]]) {
      const at = file.indexOf(Buffer.from([tag[0]!, 0, tag[1]!, 0, 0x55, 0x49]), 132);
      file.fill(0x20, at + 8, at + 8 + file.readUInt16LE(at + 6));
    }
    const { header, headerLength } = parseDicomInstance(file, OPTIONS);
    expect(isValidUid(header.sopInstanceUid)).toBe(true);
    expect(header.anomalies).toContainEqual({ code: 'ANCHORLINE_ISSUE_MISSING_FIELD', location: '(0008,0018)', detail: expect.stringContaining(header.sopInstanceUid) });
    // The same instance resent, or read from its header alone, is the same instance; another data set is another.
    expect(parseDicomInstance(Buffer.from(file), OPTIONS).header.sopInstanceUid).toBe(header.sopInstanceUid);
    expect(parseDicomInstance(file.subarray(0, headerLength), OPTIONS).header.sopInstanceUid).toBe(header.sopInstanceUid);
    const other = Buffer.from(file);
    other.write('MR', other.indexOf(Buffer.from([0x08, 0, 0x60, 0, 0x43, 0x53]), 132) + 8, 'latin1');
    expect(parseDicomInstance(other, OPTIONS).header.sopInstanceUid).not.toBe(header.sopInstanceUid);
  });

  it('reads a standard transfer syntax it does not list as explicit VR little endian, and says so; refuses a private one', () => {
    // The meta's (0002,0010) rewritten to another length, with the meta group length (0002,0000) following it.
    const withSyntax = (uid: string): Buffer => {
      const file = fixture('ct-1');
      const at = file.indexOf(Buffer.from([0x02, 0, 0x10, 0, 0x55, 0x49]));
      const value = Buffer.from(uid.length % 2 === 0 ? uid : `${uid}\0`, 'latin1');
      const header = Buffer.from(file.subarray(at, at + 8));
      header.writeUInt16LE(value.length, 6);
      const copy = Buffer.concat([file.subarray(0, at), header, value, file.subarray(at + 8 + file.readUInt16LE(at + 6))]);
      const groupLengthAt = copy.indexOf(Buffer.from([0x02, 0, 0, 0, 0x55, 0x4c]));
      copy.writeUInt32LE(copy.readUInt32LE(groupLengthAt + 8) + value.length - file.readUInt16LE(at + 6), groupLengthAt + 8);
      return copy;
    };
    const { header } = parseDicomInstance(withSyntax('1.2.840.10008.1.2.9'), OPTIONS);
    expect(header.transferSyntaxUid).toBe('1.2.840.10008.1.2.9');
    expect(header.sopInstanceUid).toBe('2.25.1000000001.1.1');
    expect(header.series.modality).toBe('CT');
    expect(header.anomalies).toEqual([expect.objectContaining({ code: 'ANCHORLINE_ISSUE_CODE_NOT_IN_TABLE', location: '(0002,0010)' })]);
    expect(codeOf(() => parseDicomInstance(withSyntax('1.2.840.113619.5.2'), OPTIONS))).toBe('ANCHORLINE_ERR_DICOM_UNSUPPORTED');
    // Deflated Image Frame Compression (Supplement 244) is one it knows.
    const frameDeflate = parseDicomInstance(withSyntax('1.2.840.10008.1.2.8.1'), OPTIONS).header;
    expect(frameDeflate.transferSyntaxUid).toBe('1.2.840.10008.1.2.8.1');
    expect(frameDeflate.anomalies).toBeUndefined();
    // JPIP Referenced Deflate deflates its data set: refused rather than read as explicit VR.
    expect(codeOf(() => parseDicomInstance(withSyntax('1.2.840.10008.1.2.4.95'), OPTIONS))).toBe('ANCHORLINE_ERR_DICOM_UNSUPPORTED');
  });

  it('reads the SOP class and instance from the file meta when the data set lacks them; refuses when neither names one', () => {
    const file = Buffer.from(fixture('ct-1'));
    const classAt = file.indexOf(Buffer.from([0x08, 0, 0x16, 0, 0x55, 0x49]), 132);
    file.fill(0x20, classAt + 8, classAt + 8 + file.readUInt16LE(classAt + 6));
    const { header } = parseDicomInstance(file, OPTIONS);
    expect(header.sopClassUid).toBe('1.2.840.10008.5.1.4.1.1.2');
    expect(header.anomalies).toEqual([expect.objectContaining({ code: 'ANCHORLINE_ISSUE_MISSING_FIELD', location: '(0008,0016)' })]);
    const metaClassAt = file.indexOf(Buffer.from([0x02, 0, 0x02, 0, 0x55, 0x49]), 132);
    file.fill(0x20, metaClassAt + 8, metaClassAt + 8 + file.readUInt16LE(metaClassAt + 6));
    expect(codeOf(() => parseDicomInstance(file, OPTIONS))).toBe('ANCHORLINE_ERR_DICOM_MISSING_ATTRIBUTE');
  });

  it('reads past an element whose explicit VR is not a VR, and notes it; an item tag out of place stays malformed', () => {
    const file = Buffer.from(fixture('ct-1'));
    const at = file.indexOf(Buffer.from([0x08, 0x00, 0x60, 0x00, 0x43, 0x53])); // (0008,0060) CS
    expect(at).toBeGreaterThan(132);
    file.write('  ', at + 4, 'latin1');
    const { header } = parseDicomInstance(file, OPTIONS);
    expect(header.series.modality).toBe('CT');
    expect(header.anomalies).toEqual([expect.objectContaining({ location: '(0008,0060)' })]);
    const broken = Buffer.from(file);
    broken.writeUInt16LE(0xfffe, at);
    broken.writeUInt16LE(0xe000, at + 2);
    expect(codeOf(() => parseDicomInstance(broken, OPTIONS))).toBe('ANCHORLINE_ERR_DICOM_MALFORMED');

    // An empty item where an element should be (what some equipment writes after a sequence of length 0) holds
    // nothing: it is passed over, noted, and what follows reads as it is.
    const original = fixture('ct-1');
    const before = original.indexOf(Buffer.from([0x08, 0x00, 0x60, 0x00, 0x43, 0x53]));
    const strayItem = Buffer.concat([original.subarray(0, before), Buffer.from([0xfe, 0xff, 0x00, 0xe0, 0, 0, 0, 0]), original.subarray(before)]);
    const read = parseDicomInstance(strayItem, OPTIONS).header;
    expect(read.series.modality).toBe('CT');
    expect(read.anomalies).toEqual([{ location: '(FFFE,E000)', detail: expect.stringContaining('empty item') }]);
  });

  it('caps what a deflated data set may inflate to', async () => {
    // Parsing reads the header only; readDicomInstance inflates the whole data set and judges its size.
    expect(parseDicomInstance(fixture('deflate-bomb'), OPTIONS).header.sopInstanceUid).toBe('2.25.1000000001.1.99');
    await expect(readDicomInstance(fixture('deflate-bomb'), OPTIONS)).rejects.toMatchObject({ code: 'ANCHORLINE_ERR_DICOM_TOO_LARGE' });
    expect(parseDicomInstance(fixture('ct-3'), { maxInflatedBytes: 4096 }).header.sopInstanceUid).toBe('2.25.1000000001.1.3');
    expect((await readDicomInstance(fixture('ct-3'), { maxInflatedBytes: 4096 })).header.sopInstanceUid).toBe('2.25.1000000001.1.3');
    expect(codeOf(() => parseDicomInstance(fixture('ct-3'), { maxInflatedBytes: 64 }))).toBe('ANCHORLINE_ERR_DICOM_TOO_LARGE');
    await expect(readDicomInstance(fixture('ct-3'), { maxInflatedBytes: 64 })).rejects.toMatchObject({ code: 'ANCHORLINE_ERR_DICOM_TOO_LARGE' });
  });

  it('keeps the header: the bytes before the pixel data, or the whole file when deflated', () => {
    for (const name of ['ct-1', 'ct-2', 'mr-1', 'mr-2']) {
      const file = fixture(name);
      const { headerLength } = parseDicomInstance(file, OPTIONS);
      const tag = name === 'mr-1' ? [0x7f, 0xe0, 0x00, 0x10] : [0xe0, 0x7f, 0x10, 0x00];
      expect(file.subarray(headerLength, headerLength + 4).equals(Buffer.from(tag)), name).toBe(true);
    }
    expect(parseDicomInstance(fixture('ct-3'), OPTIONS).headerLength).toBe(fixture('ct-3').length);
  });
});

describe('any damage to an instance', () => {
  const seeds = ['ct-1', 'ct-2', 'ct-3', 'mr-1', 'mr-2', 'cr-euckr-no-escape'].map(fixture);
  const allowed = new Set(['ANCHORLINE_ERR_DICOM_MALFORMED', 'ANCHORLINE_ERR_DICOM_TRUNCATED', 'ANCHORLINE_ERR_DICOM_BAD_UID', 'ANCHORLINE_ERR_DICOM_MISSING_ATTRIBUTE', 'ANCHORLINE_ERR_DICOM_TOO_LARGE', 'ANCHORLINE_ERR_DICOM_UNSUPPORTED', 'ANCHORLINE_ERR_CHARSET_MISMATCH']);

  function outcome(bytes: Buffer): string {
    try {
      const { header, headerLength } = parseDicomInstance(bytes, OPTIONS);
      expect(headerLength).toBeLessThanOrEqual(bytes.length);
      for (const uid of [header.sopInstanceUid, header.studyInstanceUid, header.seriesInstanceUid]) expect(isValidUid(uid)).toBe(true);
      return 'ok';
    } catch (error) {
      if (!isAnchorlineError(error)) throw error;
      expect(allowed.has(error.code), error.code).toBe(true);
      return error.code;
    }
  }

  it('ends in a header or a coded error: cut anywhere', () => {
    for (const seed of seeds) for (let cut = 0; cut < seed.length; cut++) outcome(seed.subarray(0, cut));
  });

  it('ends in a header or a coded error: bytes overwritten anywhere', () => {
    fc.assert(
      fc.property(fc.nat(seeds.length - 1), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }), (which, edits) => {
        const bytes = Buffer.from(seeds[which]!);
        for (const [position, value] of edits) bytes[132 + (position % (bytes.length - 132))] = value;
        outcome(bytes);
      }),
      { numRuns: 3000 },
    );
  });
});

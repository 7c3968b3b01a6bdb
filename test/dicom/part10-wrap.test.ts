/**
 * Instances written without File Meta Information (a bare data set, or the group without its preamble) are read
 * inside a file meta group of our own (formats/dicom/part10.ts, asPart10File): the transfer syntax is told from the
 * first element, the data set is kept byte for byte, the reader reports the missing group as a mapping issue, and
 * DCMTK (dcmdump) reads the file we make.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { asPart10File, parseDicomInstance } from '../../formats/dicom/index.ts';
import { readTransferSyntax } from '../../formats/dicom/parse.ts';
import { isAnchorlineError } from '../../errors/index.ts';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const corpus = (name: string): Buffer => readFileSync(path.join(HERE, '..', 'fixtures', 'corpus', 'dicom', 'pydicom', name));
const fixture = (name: string): Buffer => readFileSync(path.join(HERE, '..', 'fixtures', 'dicom', `${name}.dcm`));
const OPTIONS = { maxInflatedBytes: 16 * 1024 * 1024 };
const scratch = mkdtempSync(path.join(tmpdir(), 'anchorline-part10-'));

afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** dcmdump's reading of a file: its output, and whether it reported an error. */
function dcmdump(file: Buffer): { text: string; errors: string[] } {
  const name = path.join(scratch, `${Math.random().toString(36).slice(2)}.dcm`);
  writeFileSync(name, file);
  const text = execFileSync('dcmdump', ['+E', name], { encoding: 'latin1', stdio: ['ignore', 'pipe', 'pipe'] });
  return { text, errors: text.split('\n').filter((line) => /^[EF]: /.test(line)) };
}

describe('an instance without File Meta Information', () => {
  const cases = [
    { name: 'implicit VR little endian', file: 'test_files__rtstruct.dcm', transferSyntax: '1.2.840.10008.1.2', sop: '1.2.826.0.1.3680043.8.498.2010020400001' },
    { name: 'explicit VR little endian', file: 'test_files__ExplVR_LitEndNoMeta.dcm', transferSyntax: '1.2.840.10008.1.2.1', sop: '1.2.333.4444.5.6.7.8' },
    { name: 'explicit VR big endian', file: 'test_files__ExplVR_BigEndNoMeta.dcm', transferSyntax: '1.2.840.10008.1.2.2', sop: '1.2.333.4444.5.6.7.8' },
  ];
  for (const c of cases) {
    it(`is read as ${c.name}, inside a file meta group that DCMTK reads, the data set kept as received`, () => {
      const bare = corpus(c.file);
      expect(bare.toString('latin1', 128, 132)).not.toBe('DICM');
      const file = asPart10File(bare);
      expect(file.toString('latin1', 128, 132)).toBe('DICM');
      const { transferSyntaxUid, position } = readTransferSyntax(file);
      expect(transferSyntaxUid).toBe(c.transferSyntax);
      expect(file.subarray(position).equals(bare)).toBe(true);
      const { header } = parseDicomInstance(file, OPTIONS);
      expect(header.sopInstanceUid).toBe(c.sop);
      expect(header.anomalies).toContainEqual(expect.objectContaining({ location: '(0002,0010)', code: 'ANCHORLINE_ISSUE_MISSING_FIELD' }));
      const dump = dcmdump(file);
      expect(dump.errors).toEqual([]);
      expect(dump.text).toContain(`(0002,0003) UI [${c.sop}]`);
      // The same bytes make the same file: a resend is recognised as one.
      expect(asPart10File(bare).equals(file)).toBe(true);
    });
  }

  it('gets back the preamble and DICM when only they are missing', () => {
    const part10 = fixture('ct-1');
    const file = asPart10File(part10.subarray(132));
    expect(file.equals(Buffer.concat([Buffer.alloc(128), Buffer.from('DICM'), part10.subarray(132)]))).toBe(true);
    expect(parseDicomInstance(file, OPTIONS).header.anomalies ?? []).toEqual(parseDicomInstance(part10, OPTIONS).header.anomalies ?? []);
  });

  it('leaves a Part 10 file as it is, and bytes that do not start like a data set to be refused', () => {
    const part10 = fixture('mr-1');
    expect(asPart10File(part10)).toBe(part10);
    expect(parseDicomInstance(part10, OPTIONS).header.anomalies?.some((anomaly) => anomaly.location === '(0002,0010)') ?? false).toBe(false);
    for (const junk of [Buffer.from('MSH|^~\\&|APP|FAC|||20240101||ADT^A01|1|P|2.5.1\r'), Buffer.alloc(300), Buffer.from('%PDF-1.7 ...')]) {
      expect(asPart10File(junk)).toBe(junk);
      let code: string | undefined;
      try {
        parseDicomInstance(junk, OPTIONS);
      } catch (error) {
        code = isAnchorlineError(error) ? error.code : 'thrown';
      }
      expect(code).toBe('ANCHORLINE_ERR_DICOM_MALFORMED');
    }
  });

  it('refuses a bare data set without the attributes a stored instance needs, with the reader\'s code', () => {
    // The data set of ct-1 without its SOP Class UID: (0008,0016) is the element after Specific Character Set.
    const part10 = fixture('ct-1');
    const { position } = readTransferSyntax(part10);
    const dataSet = part10.subarray(position);
    const at = dataSet.indexOf(Buffer.from([0x08, 0x00, 0x16, 0x00]));
    expect(at).toBeGreaterThanOrEqual(0);
    const length = dataSet.readUInt16LE(at + 6);
    const without = Buffer.concat([dataSet.subarray(0, at), dataSet.subarray(at + 8 + length)]);
    let code: string | undefined;
    try {
      asPart10File(without);
    } catch (error) {
      code = isAnchorlineError(error) ? error.code : 'thrown';
    }
    expect(code).toBe('ANCHORLINE_ERR_DICOM_MISSING_ATTRIBUTE');
  });
});

/** Catalogue codes as DIMSE statuses and STOW-RS failure reasons. */
import { describe, expect, it } from 'vitest';
import { DicomStatus, dicomStatusFor, errorComment } from '../../adapters/dicom/status.ts';
import { ERROR_CATALOGUE, type ErrorCode } from '../../errors/index.ts';

describe('dicomStatusFor', () => {
  it('gives every catalogue code a failure status (never Success), retryable codes Out of Resources', () => {
    for (const code of Object.keys(ERROR_CATALOGUE) as ErrorCode[]) {
      const status = dicomStatusFor(code);
      expect(status, code).not.toBe(DicomStatus.Success);
      if (ERROR_CATALOGUE[code].retryable && code !== 'ANCHORLINE_ERR_INTERNAL') expect(status, code).toBe(DicomStatus.OutOfResources);
    }
  });

  it('maps the intake codes to the PS3.4 Annex B classes', () => {
    expect(dicomStatusFor('ANCHORLINE_ERR_DICOM_MALFORMED')).toBe(0xc000);
    expect(dicomStatusFor('ANCHORLINE_ERR_DICOM_TRUNCATED')).toBe(0xc000);
    expect(dicomStatusFor('ANCHORLINE_ERR_DICOM_MISSING_ATTRIBUTE')).toBe(0xa900);
    expect(dicomStatusFor('ANCHORLINE_ERR_DICOM_BAD_UID')).toBe(0xa900);
    expect(dicomStatusFor('ANCHORLINE_ERR_DICOM_TOO_LARGE')).toBe(0xa700);
    expect(dicomStatusFor('ANCHORLINE_ERR_DICOM_UNSUPPORTED')).toBe(0xc122);
    expect(dicomStatusFor('ANCHORLINE_ERR_STORE_UNAVAILABLE')).toBe(0xa700);
    expect(dicomStatusFor('ANCHORLINE_ERR_SHUTTING_DOWN')).toBe(0xa700);
    expect(dicomStatusFor('ANCHORLINE_ERR_INTERNAL')).toBe(0x0110);
  });

  it('writes Error Comments that fit LO in the default repertoire', () => {
    expect(errorComment('ANCHORLINE_ERR_DICOM_MISSING_ATTRIBUTE', '(0020,000D)\\é\n')).toBe('ANCHORLINE_ERR_DICOM_MISSING_ATTRIBUTE: (0020,000D)???');
    const long = errorComment('ANCHORLINE_ERR_DICOM_MISSING_ATTRIBUTE', 'Study Instance UID (0020,000D) and a long tail of text');
    expect(long).toHaveLength(64);
    expect(errorComment('ANCHORLINE_ERR_INTERNAL')).toBe('ANCHORLINE_ERR_INTERNAL');
  });
});

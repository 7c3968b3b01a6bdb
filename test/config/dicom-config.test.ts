/** The dicom section of the config schema: defaults, the DICOM_PORT short name, and what it refuses. */
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../config/load.ts';

describe('dicom config', () => {
  it('has documented defaults', () => {
    expect(loadConfig({ env: {} }).dicom).toEqual({
      enabled: true,
      host: '127.0.0.1',
      port: 11112,
      aeTitle: 'ANCHORLINE',
      allowedCallingAeTitles: [],
      maxAssociations: 32,
      associationRequestTimeoutMs: 30_000,
      associationIdleTimeoutMs: 120_000,
      maxPduBytes: 262_144,
      maxInstanceBytes: 256 * 1024 * 1024,
      stowMaxBytes: 1024 * 1024 * 1024,
      maxInflateRatio: 200,
      stowMaxInflatedBytes: 1024 * 1024 * 1024,
    });
  });

  it('reads DICOM_PORT and ANCHORLINE__DICOM__* from the environment', () => {
    const config = loadConfig({ env: { DICOM_PORT: '4242', ANCHORLINE__DICOM__AE_TITLE: 'HOSPITAL_AE', ANCHORLINE__DICOM__ALLOWED_CALLING_AE_TITLES: '["CT01","MR02"]', ANCHORLINE__DICOM__BLOB_DIR: '/var/lib/blobs' } });
    expect(config.dicom).toMatchObject({ port: 4242, aeTitle: 'HOSPITAL_AE', allowedCallingAeTitles: ['CT01', 'MR02'], blobDir: '/var/lib/blobs' });
  });

  it.each([
    ['an AE title over 16 characters', { ANCHORLINE__DICOM__AE_TITLE: 'A_VERY_LONG_AE_TITLE' }, 'dicom.aeTitle'],
    ['a blank AE title', { ANCHORLINE__DICOM__AE_TITLE: '"   "' }, 'dicom.aeTitle'],
    ['an AE title with a backslash', { ANCHORLINE__DICOM__AE_TITLE: 'A\\B' }, 'dicom.aeTitle'],
    ['a PDU limit above 256 KiB', { ANCHORLINE__DICOM__MAX_PDU_BYTES: '1048576' }, 'dicom.maxPduBytes'],
    ['an unknown key', { ANCHORLINE__DICOM__MAX_ASSOCIATION: '3' }, 'dicom.maxAssociation: unknown key'],
  ])('refuses %s', (_what, env, expected) => {
    expect(() => loadConfig({ env })).toThrow(expected);
  });
});

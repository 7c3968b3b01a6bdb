/**
 * DICOM instance files with encryption at rest off, and after it is turned on over the same data: with
 * `encryption.enabled: false` an instance is kept as received, named by its own SHA-256, one file for every message
 * with those bytes (a resend removes nothing), served by WADO-RS and /blobs, and audited as before; an engine started
 * later with encryption on, on the same database and data dir, still serves those files, seals the instances
 * it receives, and the audit checks both kinds.
 */
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dicomBlobStore } from '../../cli/engine.ts';
import { auditLedger } from '../../store/index.ts';
import { uniqueName } from '../support/db.ts';
import { authHeaders, eventually, startTestEngine, type TestEngine } from '../support/engine.ts';

const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'dicom');
const fixture = (name: string): Buffer => readFileSync(path.join(FIXTURES, `${name}.dcm`));
const sha256 = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex');
const STUDY_UID = '2.25.1000000001';

const schema = uniqueName('e');
let plain: TestEngine;
let sealed: TestEngine | undefined;
let blobDir: string;

async function accept(t: TestEngine, name: string, callingAeTitle = 'MODALITY1'): Promise<{ status: string; messageId: number }> {
  const result = await t.engine.dicomIntake!.accept(fixture(name), { protocol: 'dimse', source: '127.0.0.1:40000', callingAeTitle });
  if (result.status === 'rejected') throw new Error(`${name} was refused: ${JSON.stringify(result)}`);
  await eventually(async () => (await t.pool.query('SELECT state FROM inbox_message WHERE id = $1', [result.messageId])).rows[0].state === 'done', 20_000, `${name} mapped`);
  return result;
}

async function served(t: TestEngine, name: string): Promise<{ blob: Buffer; wado: Buffer }> {
  const bytes = fixture(name);
  const blob = await fetch(`${t.httpUrl}/blobs/${sha256(bytes)}`, { headers: authHeaders() });
  expect(blob.status, name).toBe(200);
  const sop = { 'ct-1': `${STUDY_UID}.1.1`, 'ct-2': `${STUDY_UID}.1.2` }[name]!;
  const wado = await fetch(`${t.httpUrl}/dicomweb/studies/${STUDY_UID}/series/${STUDY_UID}.1/instances/${sop}`, { headers: authHeaders() });
  expect(wado.status, name).toBe(200);
  const body = Buffer.from(await wado.arrayBuffer());
  const start = body.indexOf('\r\n\r\n') + 4;
  return { blob: Buffer.from(await blob.arrayBuffer()), wado: body.subarray(start, start + bytes.length) };
}

function files(): string[] {
  return readdirSync(blobDir, { recursive: true, withFileTypes: true }).filter((entry) => entry.isFile()).map((entry) => entry.name).sort();
}

beforeAll(async () => {
  plain = await startTestEngine({ schema, overrides: { anchor: { closeAfterMs: 200 }, encryption: { enabled: false } } });
  blobDir = path.join(plain.config.dataDir, 'blobs');
});

afterAll(async () => {
  await sealed?.destroy();
  await plain?.destroy();
});

describe('DICOM instance files with encryption off', () => {
  it('keeps an instance as received under its own SHA-256, one file for every message with those bytes', async () => {
    const first = await accept(plain, 'ct-1');
    // The same instance forwarded by another node: another message, the same file.
    const forwarded = await accept(plain, 'ct-1', 'ROUTER1');
    expect(forwarded.messageId).not.toBe(first.messageId);
    const digest = sha256(fixture('ct-1'));
    expect(files()).toEqual([digest]);
    expect((await readFile(path.join(blobDir, digest.slice(0, 2), digest.slice(2, 4), digest))).equals(fixture('ct-1'))).toBe(true);
    const rows = await plain.pool.query('SELECT blob_sha256, blob_sealed_sha256, raw_key FROM inbox_message WHERE id = ANY($1::bigint[])', [[first.messageId, forwarded.messageId]]);
    for (const row of rows.rows) expect(row).toEqual({ blob_sha256: Buffer.from(digest, 'hex'), blob_sealed_sha256: null, raw_key: null });

    // A resend is a duplicate, and the shared file stays.
    expect((await plain.engine.dicomIntake!.accept(fixture('ct-1'), { protocol: 'dimse', source: '127.0.0.1:40000', callingAeTitle: 'MODALITY1' })).status).toBe('duplicate');
    expect(files()).toEqual([digest]);

    const { blob, wado } = await served(plain, 'ct-1');
    expect(blob.equals(fixture('ct-1'))).toBe(true);
    expect(wado.equals(fixture('ct-1'))).toBe(true);
    const report = await auditLedger(plain.pool, { blobs: dicomBlobStore(plain.config), blobRehash: 'all' });
    expect(report.findings).toEqual([]);
    expect(report.checked.blob).toBe(1);
    expect(report.blobsRehashed).toBe(1);
  });

  it('serves those files still once encryption is turned on, and seals what arrives then', async () => {
    await plain.close();
    // The same data dir (signing key, blob directory) and database: an upgrade in place.
    sealed = await startTestEngine({ schema, overrides: { dataDir: plain.config.dataDir, anchor: { closeAfterMs: 200 } } });
    expect((await served(sealed, 'ct-1')).blob.equals(fixture('ct-1'))).toBe(true);

    const second = await accept(sealed, 'ct-2');
    const row = (await sealed.pool.query<{ blob_sealed_sha256: Buffer | null }>('SELECT blob_sealed_sha256 FROM inbox_message WHERE id = $1', [second.messageId])).rows[0]!;
    expect(row.blob_sealed_sha256).toBeInstanceOf(Buffer);
    expect(files()).toEqual([sha256(fixture('ct-1')), row.blob_sealed_sha256!.toString('hex')].sort());
    const { blob, wado } = await served(sealed, 'ct-2');
    expect(blob.equals(fixture('ct-2'))).toBe(true);
    expect(wado.equals(fixture('ct-2'))).toBe(true);
    expect((await served(sealed, 'ct-1')).wado.equals(fixture('ct-1'))).toBe(true);

    const report = await auditLedger(sealed.pool, { blobs: dicomBlobStore(sealed.config), blobRehash: 'all' });
    expect(report.findings).toEqual([]);
    expect(report.checked.blob).toBe(2);
    expect(report.blobsRehashed).toBe(2);
  });
});

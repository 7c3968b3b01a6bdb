/**
 * The audit covers everything stored, not only what leaves name: every inbox row (a rejected message, a failed one,
 * a conflicting resend, a message that changed nothing), every stored mapping configuration version, and the DICOM
 * blobs inbox rows name (sealed under their messages' keys, encryption at rest being on). A real engine writes each
 * kind of row; each tampering is done directly in PostgreSQL or on disk, reported by the check that names it, and
 * put back.
 */
import { readFileSync } from 'node:fs';
import { readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { runAudit } from '../../cli/audit.ts';
import { captured } from '../support/audit-output.ts';
import { dicomBlobStore } from '../../cli/engine.ts';
import { auditLedger, mappingConfigs, type AuditCheckName, type AuditOptions, type AuditReport } from '../../store/index.ts';
import { adtMessage } from '../support/messages.ts';
import { MllpTestClient } from '../support/mllp-client.ts';
import { eventually, startTestEngine, type TestEngine } from '../support/engine.ts';
import { flipRawByte } from '../support/tamper.ts';

const DICOM_FIXTURE = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'dicom', 'ct-1.dcm');

let t: TestEngine;
let configFile: string;
/** Inbox ids by what became of the message. */
const rows: Record<'mapped' | 'unchanged' | 'failed' | 'rejected' | 'conflict' | 'dicom', number> = {} as never;
/** The sealed file of the DICOM instance's first message: its name (the sealed bytes' SHA-256), and its path. */
let blobDigest: string;
let blobFile: string;
/** The sealed file of the same instance forwarded by another node: another message, another key, another file. */
let forwardedBlobDigest: string;

async function idOf(where: string, values: unknown[]): Promise<number> {
  const found = await t.pool.query<{ id: string }>(`SELECT id FROM inbox_message WHERE ${where}`, values);
  expect(found.rows).toHaveLength(1);
  return Number(found.rows[0]!.id);
}

/** Waits until every message is mapped and every leaf is in a closed batch. */
async function settled(): Promise<void> {
  await eventually(async () => {
    const { rows: counts } = await t.pool.query<{ queued: number; waiting: number }>(
      `SELECT (SELECT count(*)::int FROM inbox_message WHERE state = 'queued') AS queued,
              (SELECT count(*)::int FROM ledger_leaf WHERE batch_number IS NULL) AS waiting`,
    );
    return counts[0]!.queued === 0 && counts[0]!.waiting === 0;
  }, 20_000, 'mapping and a closed batch');
}

function failed(report: AuditReport): { checks: AuditCheckName[]; refs: string[] } {
  return {
    checks: (Object.keys(report.mismatches) as AuditCheckName[]).filter((name) => report.mismatches[name] > 0),
    refs: report.findings.map((f) => `${f.check} ${f.ref}`),
  };
}

const audit = (options: AuditOptions = {}): Promise<AuditReport> => auditLedger(t.pool, { blobs: dicomBlobStore(t.config), blobRehash: 'all', ...options });

/** Runs `tamper`, hands the audit report to `expectations`, puts everything back with `restore`, and sees it clean. */
async function whileTampered(tamper: () => Promise<unknown>, restore: () => Promise<unknown>, expectations: () => Promise<void>): Promise<void> {
  await tamper();
  try {
    await expectations();
  } finally {
    await restore();
  }
  const after = await audit();
  expect(after.findings).toEqual([]);
}

/** Flips a bit of byte `offset` of the messages' raw bytes, sealed again under each message's key: run twice, it puts them back. */
const flip = (offset: number, ids: number[]) => flipRawByte(t.pool, ids, offset);

beforeAll(async () => {
  t = await startTestEngine({ overrides: { anchor: { closeAfterMs: 200 } } });
  configFile = path.join(t.config.dataDir, 'audit-config.json');
  await writeFile(configFile, JSON.stringify(t.config));

  const client = await MllpTestClient.connect(t.mllpPort);
  const admission = { mrn: 'AI1', family: 'Lim', given: 'Sora' };
  await client.request(adtMessage({ controlId: 'AI-1', ...admission }));
  // A mapping failure, a query refused at intake (no record to store), and AI-1's control id again with other bytes.
  await client.request(adtMessage({ controlId: 'AI-3', mrn: 'AI3' }).replace('ADT^A01^ADT_A01', 'ADT^A40^ADT_A39'));
  await client.request(adtMessage({ controlId: 'AI-4', mrn: 'AI4' }).replace('ADT^A01^ADT_A01', 'QRY^A19'));
  await client.request(adtMessage({ controlId: 'AI-1', ...admission, given: 'Sori' }));
  await client.close();

  const instance = readFileSync(DICOM_FIXTURE);
  const accepted = await t.engine.dicomIntake!.accept(instance, { protocol: 'dimse', source: '127.0.0.1:40000', callingAeTitle: 'MODALITY1' });
  if (accepted.status !== 'stored') throw new Error(`the DICOM instance was not stored: ${JSON.stringify(accepted)}`);
  await settled();
  // The same instance again, forwarded by another node (another calling AE title, so another resend key): stored and
  // mapped, but it changes nothing, so no version (and no leaf) names it.
  const forwarded = await t.engine.dicomIntake!.accept(instance, { protocol: 'dimse', source: '127.0.0.1:40001', callingAeTitle: 'ROUTER1' });
  if (forwarded.status !== 'stored') throw new Error(`the forwarded instance was not stored: ${JSON.stringify(forwarded)}`);
  await settled();

  rows.mapped = await idOf(`control_id = 'AI-1' AND disposition = 'accepted'`, []);
  rows.unchanged = forwarded.messageId;
  expect(await idOf(`id = $1 AND state = 'done'`, [rows.unchanged])).toBe(rows.unchanged);
  rows.failed = await idOf(`control_id = 'AI-3' AND state = 'failed'`, []);
  rows.rejected = await idOf(`control_id = 'AI-4' AND disposition = 'rejected'`, []);
  rows.conflict = await idOf(`control_id = 'AI-1' AND disposition = 'conflict'`, []);
  rows.dicom = accepted.messageId;
  const sealedName = async (id: number): Promise<string> =>
    (await t.pool.query<{ blob_sealed_sha256: Buffer }>('SELECT blob_sealed_sha256 FROM inbox_message WHERE id = $1', [id])).rows[0]!.blob_sealed_sha256.toString('hex');
  blobDigest = await sealedName(rows.dicom);
  forwardedBlobDigest = await sealedName(rows.unchanged);
  blobFile = path.join(t.config.dataDir, 'blobs', blobDigest.slice(0, 2), blobDigest.slice(2, 4), blobDigest);
});

beforeEach(() => settled());

afterAll(async () => {
  await t?.destroy();
});

describe('the audit of everything stored', () => {
  it('names no leaf for the unchanged, failed, rejected and conflicting messages, and finds nothing wrong', async () => {
    const named = await t.pool.query<{ id: string }>('SELECT DISTINCT source_message_id AS id FROM fhir_resource_history WHERE source_message_id IS NOT NULL');
    const sources = named.rows.map((row) => Number(row.id));
    expect(sources).toContain(rows.mapped);
    for (const id of [rows.unchanged, rows.failed, rows.rejected, rows.conflict]) expect(sources).not.toContain(id);

    const inboxRows = (await t.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM inbox_message')).rows[0]!.n;
    const report = await audit();
    expect(report.findings).toEqual([]);
    expect(report.ok).toBe(true);
    expect(report.checked['raw-message']).toBe(inboxRows);
    expect(report.checked.blob).toBe(2); // the same instance, sealed under each message's key: two files
    expect(report.blobsRehashed).toBe(2);
    // Pages of one, two and three rows, and byte groups of one message, cross every page boundary.
    for (const pageRows of [1, 2, 3]) expect(await audit({ pageRows, rawPageBytes: 1 })).toEqual(report);
  });

  it('reports a changed byte in a rejected, a failed and an unchanged message that no leaf names, on any page size', async () => {
    const ids = [rows.rejected, rows.failed, rows.unchanged];
    await whileTampered(
      () => flip(30, ids),
      () => flip(30, ids),
      async () => {
        const report = await audit();
        expect(failed(report)).toEqual({ checks: ['raw-message'], refs: [...ids].sort((a, b) => a - b).map((id) => `raw-message inbox_message/${id}`) });
        for (const finding of report.findings) expect(finding.detail).toMatch(/^raw bytes hash to [0-9a-f]{64}; raw_sha256 is [0-9a-f]{64}$/);
        for (const pageRows of [1, 2]) expect(await audit({ pageRows, rawPageBytes: 1 })).toEqual(report);
        // maxFindings lists the first and counts the rest.
        const capped = await audit({ maxFindings: 1 });
        expect(capped.findings).toEqual(report.findings.slice(0, 1));
        expect(capped.findingsOmitted).toBe(2);
      },
    );
  });

  it('reports a changed byte of a conflicting resend and of a DICOM header, and a raw_size that does not match', async () => {
    await whileTampered(
      () => flip(8, [rows.conflict, rows.dicom]),
      () => flip(8, [rows.conflict, rows.dicom]),
      async () => expect(failed(await audit()).refs).toEqual([`raw-message inbox_message/${rows.conflict}`, `raw-message inbox_message/${rows.dicom}`]),
    );
    await whileTampered(
      () => t.pool.query('UPDATE inbox_message SET raw_size = raw_size + 1 WHERE id = $1', [rows.failed]),
      () => t.pool.query('UPDATE inbox_message SET raw_size = raw_size - 1 WHERE id = $1', [rows.failed]),
      async () => {
        const report = await audit();
        expect(failed(report).refs).toEqual([`raw-message inbox_message/${rows.failed}`]);
        expect(report.findings[0]!.detail).toMatch(/^\d+ raw bytes are stored; raw_size is \d+$/);
      },
    );
  });

  it('reports a changed mapping configuration version that no leaf names', async () => {
    // A version saved as for a deployment or a rollback: stored, named by no leaf yet.
    const digest = await mappingConfigs.recordMappingConfig(t.pool, { ...(t.config.mapping as object), timeZone: 'UTC' });
    try {
      const clean = await audit();
      expect(clean.findings).toEqual([]);
      expect(clean.checked['mapping-config']).toBe(2);
      await whileTampered(
        () => t.pool.query(`UPDATE mapping_config SET content = jsonb_set(content, '{timeZone}', '"Asia/Seoul"') WHERE sha256 = $1`, [digest]),
        () => t.pool.query(`UPDATE mapping_config SET content = jsonb_set(content, '{timeZone}', '"UTC"') WHERE sha256 = $1`, [digest]),
        async () => {
          for (const pageRows of [1, 1000]) {
            const report = await audit({ pageRows });
            expect(failed(report)).toEqual({ checks: ['mapping-config'], refs: [`mapping-config mapping_config/${digest}`] });
            expect(report.findings[0]!.detail).toMatch(/^the stored content re-hashes to [0-9a-f]{64} \(no leaf names it\)$/);
          }
        },
      );
    } finally {
      await t.pool.query('DELETE FROM mapping_config WHERE sha256 = $1', [digest]);
    }
  });

  it('reports a changed, resized or missing DICOM blob', async () => {
    const original = await readFile(blobFile);
    const changed = Buffer.from(original);
    changed[changed.length - 1]! ^= 1;
    await whileTampered(
      () => writeFile(blobFile, changed),
      () => writeFile(blobFile, original),
      async () => {
        const report = await audit();
        expect(failed(report)).toEqual({ checks: ['blob'], refs: [`blob blob/${blobDigest}`] });
        expect(report.findings[0]!.detail).toMatch(/^the blob's bytes hash to [0-9a-f]{64}$/);
        // A sample of none re-hashes nothing: the same size passes unseen.
        expect((await audit({ blobRehash: 0 })).findings).toEqual([]);
        expect((await audit({ blobRehash: 5 })).findings).toEqual(report.findings);
      },
    );
    await whileTampered(
      () => writeFile(blobFile, original.subarray(1)),
      () => writeFile(blobFile, original),
      async () => expect((await audit({ blobRehash: 0 })).findings.map((f) => f.detail)).toEqual([`the blob holds ${original.length - 1} bytes; raw_size is ${original.length - 29}, ${original.length} sealed`]),
    );
    await whileTampered(
      () => rename(blobFile, `${blobFile}.moved`),
      () => rename(`${blobFile}.moved`, blobFile),
      async () => expect((await audit()).findings.map((f) => f.detail)).toEqual(['the blob is not in the blob store (1 inbox message names it)']),
    );
  });

  it('reports a message made to name another message\'s sealed file: it does not open under its own key', async () => {
    await whileTampered(
      () => t.pool.query('UPDATE inbox_message SET blob_sealed_sha256 = $2 WHERE id = $1', [rows.dicom, Buffer.from(forwardedBlobDigest, 'hex')]),
      () => t.pool.query('UPDATE inbox_message SET blob_sealed_sha256 = $2 WHERE id = $1', [rows.dicom, Buffer.from(blobDigest, 'hex')]),
      async () => {
        const report = await audit();
        // Same instance, same size, and the file hashes to its name: only opening it shows the move.
        expect(failed(report)).toEqual({ checks: ['blob'], refs: [`blob blob/${forwardedBlobDigest}`] });
        expect(report.findings[0]!.detail).toBe(`the sealed blob does not open under the key of inbox_message/${rows.dicom} as the instance it names`);
      },
    );
  });
});

describe('the audit command over everything stored', () => {
  it('exits 1 for a changed byte in a message no leaf names, lists findings up to --max-findings, and checks blobs as asked', async () => {
    const clean = captured();
    expect(await runAudit(['--config', configFile], clean, {})).toBe(0);
    expect(clean.stdout()).toContain('PASS blob: 2 checked (2 re-hashed)\n');
    const skipped = captured();
    expect(await runAudit(['--config', configFile, '--blobs', 'none'], skipped, {})).toBe(0);
    expect(skipped.stdout()).toContain('SKIP blob: --blobs none\n');
    const bad = captured();
    expect(await runAudit(['--config', configFile, '--blobs', 'some'], bad, {})).toBe(2);
    expect(bad.stderr()).toMatch(/^anchorline audit: --blobs needs/);

    const ids = [rows.rejected, rows.unchanged];
    await flip(12, ids);
    try {
      const text = captured();
      expect(await runAudit(['--config', configFile], text, {})).toBe(1);
      expect(text.stdout()).toContain('FAIL raw-message: 2 mismatches\n');
      expect(text.stdout()).not.toContain('Lim');
      const json = captured();
      expect(await runAudit(['--config', configFile, '--json', '--max-findings', '1', '--blobs', '0'], json, {})).toBe(1);
      const report = JSON.parse(json.stdout()) as AuditReport;
      expect(report.mismatches['raw-message']).toBe(2);
      expect(report.findings).toHaveLength(1);
      expect(report.findingsOmitted).toBe(1);
      expect(report.blobsRehashed).toBe(0);
      expect(report.checked.blob).toBe(2); // one sealed file per message
    } finally {
      await flip(12, ids);
    }
  });
});

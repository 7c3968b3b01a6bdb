/**
 * The ledger audit against a real engine: ADT messages sent over MLLP are mapped, get provenance leaves and are
 * batched, and the audit finds nothing. Then each kind of tampering, done directly in PostgreSQL, is reported by the
 * check that names it and by no other (and, where an auditor's proof bundle covers the same thing, the bundle's
 * verification fails too). Each tampering test puts back what it changed and sees the audit clean again.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { bytesToHex, generateSigningKey, leafHash, merkleRoot, verifyBundle } from '../../anchor/index.ts';
import { runAudit } from '../../cli/audit.ts';
import { captured } from '../support/audit-output.ts';
import { startEngine } from '../../cli/engine.ts';
import { parseConfig } from '../../config/load.ts';
import { silentLogger } from '../../config/logger.ts';
import { StreamingRoot } from '../../store/audit.ts';
import { auditLedger, auditTrail, freePort, mappingConfigs, type AuditCheckName, type AuditReport } from '../../store/index.ts';
import { adtMessage } from '../support/messages.ts';
import { MllpTestClient } from '../support/mllp-client.ts';
import { authHeaders, eventually, startTestEngine, TEST_API_KEY, type TestEngine } from '../support/engine.ts';

let t: TestEngine;
let dir: string;
let configFile: string;
const patients: Record<string, string> = {};

async function get(url: string): Promise<{ status: number; body: any }> {
  const response = await fetch(`${t.httpUrl}${url}`, { headers: authHeaders() });
  return { status: response.status, body: await response.json() };
}



async function patientId(mrn: string, versionId: number): Promise<string> {
  return eventually(async () => {
    const resource = (await get(`/fhir/Patient?identifier=${mrn}`)).body.entry?.[0]?.resource;
    return resource && Number(resource.meta.versionId) >= versionId ? (resource.id as string) : undefined;
  }, 20_000, `Patient ${mrn} version ${versionId}`);
}

/** Waits until every message is mapped and every leaf is in a closed batch. */
async function settled(): Promise<void> {
  await eventually(async () => {
    const { rows } = await t.pool.query<{ queued: number; waiting: number }>(
      `SELECT (SELECT count(*)::int FROM inbox_message WHERE state = 'queued') AS queued,
              (SELECT count(*)::int FROM ledger_leaf WHERE batch_number IS NULL) AS waiting`,
    );
    return rows[0]!.queued === 0 && rows[0]!.waiting === 0;
  }, 20_000, 'mapping and a closed batch');
}

async function batchCount(): Promise<number> {
  return (await t.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM ledger_batch')).rows[0]!.n;
}

/** The checks that found something, and the findings' refs. */
function failed(report: AuditReport): { checks: AuditCheckName[]; refs: string[] } {
  return {
    checks: (Object.keys(report.mismatches) as AuditCheckName[]).filter((name) => report.mismatches[name] > 0),
    refs: report.findings.map((f) => `${f.check} ${f.ref}`),
  };
}

/** Runs `tamper`, hands the audit report to `expectations`, and puts everything back with `restore`. */
async function whileTampered(tamper: () => Promise<void>, restore: () => Promise<void>, expectations: (report: AuditReport) => Promise<void>): Promise<void> {
  await tamper();
  try {
    await expectations(await auditLedger(t.pool));
  } finally {
    await restore();
  }
  const after = await auditLedger(t.pool);
  expect(after.findings).toEqual([]);
  expect(after.ok).toBe(true);
}

beforeAll(async () => {
  t = await startTestEngine({ overrides: { anchor: { closeAfterMs: 200 } } });
  dir = await mkdtemp(path.join(os.tmpdir(), 'anchorline-audit-'));
  configFile = path.join(dir, 'config.json');
  await writeFile(configFile, JSON.stringify(t.config));

  const client = await MllpTestClient.connect(t.mllpPort);
  await client.request(adtMessage({ controlId: 'AUDIT-1', mrn: 'AU1', family: 'Seo', given: 'Jun' }));
  patients.AU1 = await patientId('AU1', 1);
  await settled();
  // The rest land in later batches, so the header chain has links to check.
  await client.request(adtMessage({ controlId: 'AUDIT-2', mrn: 'AU2', family: 'Ahn', given: 'Mira' }));
  await client.request(adtMessage({ event: 'A04', controlId: 'AUDIT-3', mrn: 'AU3', family: 'Yoon', given: 'Hana', visit: 'OP-3' }));
  await client.request(adtMessage({ event: 'A08', controlId: 'AUDIT-4', mrn: 'AU1', family: 'Seo', given: 'Junho' }));
  await client.close();
  patients.AU2 = await patientId('AU2', 1);
  patients.AU3 = await patientId('AU3', 1);
  await patientId('AU1', 2);
  await settled();
  expect(await batchCount()).toBeGreaterThanOrEqual(2);
});

// Reads write AuditEvents; each test starts once their leaves are batched and the ledger is quiet.
beforeEach(() => settled());

afterAll(async () => {
  await t?.destroy();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('anchorline audit', () => {
  it('finds nothing wrong with what the engine wrote, whatever the page size', async () => {
    const counts = (
      await t.pool.query<{ leaves: number; versions: number; messages: number; batches: number }>(
        `SELECT (SELECT count(*)::int FROM ledger_leaf) AS leaves, (SELECT count(*)::int FROM fhir_resource_history) AS versions,
                (SELECT count(*)::int FROM inbox_message) AS messages, (SELECT count(*)::int FROM ledger_batch) AS batches`,
      )
    ).rows[0]!;
    const report = await auditLedger(t.pool);
    expect(report.findings).toEqual([]);
    expect(report.ok).toBe(true);
    expect(report.checked).toEqual({
      'leaf-hash': counts.leaves,
      resource: counts.leaves,
      'raw-message': counts.messages,
      'mapping-config': 1,
      blob: 0,
      'missing-leaf': counts.versions,
      'header-hash': counts.batches,
      'header-signature': counts.batches,
      'header-chain': counts.batches,
      'batch-leaves': counts.batches,
    });
    expect(counts.messages).toBe(4);
    expect(report.unbatchedLeaves).toBe(0);
    // Pages of one and two rows cross every keyset boundary (composite history keys, batch and leaf streams).
    expect(await auditLedger(t.pool, { pageRows: 1 })).toEqual(report);
    expect(await auditLedger(t.pool, { pageRows: 2, rawPageBytes: 1 })).toEqual(report);
  });

  it('stores the mapping configuration the leaves name, under its digest', async () => {
    const digest = mappingConfigs.mappingConfigSha256(t.config.mapping);
    // Leaves of versions mapped from messages, and of the AuditEvents of those imports; AuditEvents of reads name
    // no mapping (NO_SOURCE_SHA256).
    const named = await t.pool.query<{ digest: string }>(`SELECT DISTINCT preimage->>'mappingSha256' AS digest FROM ledger_leaf WHERE preimage->>'mappingSha256' <> $1`, [auditTrail.NO_SOURCE_SHA256]);
    expect(named.rows).toEqual([{ digest }]);
    const stored = await mappingConfigs.mappingConfigsByDigest(t.pool, [digest]);
    expect(mappingConfigs.mappingConfigSha256(stored.get(digest))).toBe(digest);
    // Recorded once, by the first batch: later batches did not write it again.
    const rows = await t.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM mapping_config');
    expect(rows.rows[0]!.n).toBe(1);
  });

  it('reports an edited stored resource version under resource, and its proof no longer verifies', async () => {
    const id = patients.AU1!;
    const original = (await t.pool.query<{ content: string }>(`SELECT content::text AS content FROM fhir_resource_history WHERE resource_type = 'Patient' AND id = $1 AND version_id = 1`, [id])).rows[0]!.content;
    const bundle = (await get(`/proofs/Patient/${id}/_history/1`)).body;
    await whileTampered(
      () => t.pool.query(`UPDATE fhir_resource_history SET content = jsonb_set(content, '{name,0,family}', '"Kim"') WHERE resource_type = 'Patient' AND id = $1 AND version_id = 1`, [id]).then(() => undefined),
      () => t.pool.query(`UPDATE fhir_resource_history SET content = $2::jsonb WHERE resource_type = 'Patient' AND id = $1 AND version_id = 1`, [id, original]).then(() => undefined),
      async (report) => {
        expect(report.ok).toBe(false);
        expect(failed(report)).toEqual({ checks: ['resource'], refs: [`resource Patient/${id}/_history/1`] });
        expect(report.findings[0]!.detail).toMatch(/^the stored version hashes to [0-9a-f]{64}; the leaf says [0-9a-f]{64}$/);
        expect(JSON.stringify(report)).not.toContain('Kim');
        const tampered = (await get(`/fhir/Patient/${id}/_history/1`)).body;
        const verification = verifyBundle(bundle, { resource: tampered });
        expect(verification.ok).toBe(false);
        expect(verification.checks.filter((c) => !c.ok).map((c) => c.name)).toEqual(['resource-hash']);
      },
    );
  });

  it('reports an edited current row under resource', async () => {
    const id = patients.AU2!;
    const original = (await t.pool.query<{ content: string }>(`SELECT content::text AS content FROM fhir_resource WHERE resource_type = 'Patient' AND id = $1`, [id])).rows[0]!.content;
    await whileTampered(
      () => t.pool.query(`UPDATE fhir_resource SET content = jsonb_set(content, '{gender}', '"male"') WHERE resource_type = 'Patient' AND id = $1`, [id]).then(() => undefined),
      () => t.pool.query(`UPDATE fhir_resource SET content = $2::jsonb WHERE resource_type = 'Patient' AND id = $1`, [id, original]).then(() => undefined),
      async (report) => {
        expect(failed(report)).toEqual({ checks: ['resource'], refs: [`resource Patient/${id}/_history/1`] });
        expect(report.findings[0]!.detail).toMatch(/^the current row \(fhir_resource\) hashes to [0-9a-f]{64}/);
      },
    );
  });

  it('reports a changed byte of a raw inbound message under raw-message', async () => {
    const messageId = (await t.pool.query<{ id: number }>(`SELECT source_message_id AS id FROM fhir_resource_history WHERE resource_type = 'Patient' AND id = $1`, [patients.AU2])).rows[0]!.id;
    const flip = `UPDATE inbox_message SET raw = set_byte(raw, 20, get_byte(raw, 20) # 1) WHERE id = $1`;
    await whileTampered(
      () => t.pool.query(flip, [messageId]).then(() => undefined),
      () => t.pool.query(flip, [messageId]).then(() => undefined),
      async (report) => {
        expect(failed(report)).toEqual({ checks: ['raw-message'], refs: [`raw-message inbox_message/${messageId}`] });
        expect(report.findings[0]!.detail).toMatch(/^raw bytes hash to [0-9a-f]{64}; raw_sha256 is [0-9a-f]{64}$/);
      },
    );
  });

  it('reports an edited mapping configuration under mapping-config', async () => {
    const digest = mappingConfigs.mappingConfigSha256(t.config.mapping);
    const original = (await t.pool.query<{ content: string }>('SELECT content::text AS content FROM mapping_config WHERE sha256 = $1', [digest])).rows[0]!.content;
    await whileTampered(
      () => t.pool.query(`UPDATE mapping_config SET content = jsonb_set(content, '{timeZone}', '"UTC"') WHERE sha256 = $1`, [digest]).then(() => undefined),
      () => t.pool.query('UPDATE mapping_config SET content = $2::jsonb WHERE sha256 = $1', [digest, original]).then(() => undefined),
      async (report) => {
        expect(failed(report)).toEqual({ checks: ['mapping-config'], refs: [`mapping-config mapping_config/${digest}`] });
        expect(report.findings[0]!.detail).toMatch(/^the stored content re-hashes to [0-9a-f]{64} \(\d+ leaves name it\)$/);
      },
    );
    // A configuration that is not stored at all.
    await whileTampered(
      () => t.pool.query('DELETE FROM mapping_config WHERE sha256 = $1', [digest]).then(() => undefined),
      () => t.pool.query('INSERT INTO mapping_config (sha256, content) VALUES ($1, $2::jsonb)', [digest, original]).then(() => undefined),
      async (report) => {
        expect(failed(report).checks).toEqual(['mapping-config']);
        expect(report.findings[0]!.detail).toMatch(/^no mapping configuration is stored under this digest/);
      },
    );
  });

  it('reports an edited batch header under header-hash and header-signature, and its proof no longer verifies', async () => {
    const id = patients.AU1!;
    // The batch holding the patient's first version (searches before it was mapped left AuditEvents in earlier ones).
    const batch = (await t.pool.query<{ n: number }>(`SELECT batch_number::int AS n FROM ledger_leaf WHERE resource_type = 'Patient' AND resource_id = $1 AND version_id = 1`, [id])).rows[0]!.n;
    const original = (await t.pool.query<{ header: string }>('SELECT header::text AS header FROM ledger_batch WHERE batch_number = $1', [batch])).rows[0]!.header;
    await whileTampered(
      () => t.pool.query(`UPDATE ledger_batch SET header = jsonb_set(header, '{time}', '"2000-01-01T00:00:00.000Z"') WHERE batch_number = $1`, [batch]).then(() => undefined),
      () => t.pool.query('UPDATE ledger_batch SET header = $1::jsonb WHERE batch_number = $2', [original, batch]).then(() => undefined),
      async (report) => {
        expect(failed(report)).toEqual({ checks: ['header-hash', 'header-signature'], refs: [`header-hash batch/${batch}`, `header-signature batch/${batch}`] });
        const bundle = (await get(`/proofs/Patient/${id}/_history/1`)).body;
        expect(bundle.batch.header.batchNumber).toBe(batch);
        const stored = (await get(`/fhir/Patient/${id}/_history/1`)).body;
        const verification = verifyBundle(bundle, { resource: stored });
        expect(verification.ok).toBe(false);
        expect(verification.checks.filter((c) => !c.ok).map((c) => c.name)).toEqual(expect.arrayContaining(['header-hash']));
      },
    );
  });

  it('reports headers signed with another key than the engine\'s, when the engine key is given', async () => {
    const other = bytesToHex(generateSigningKey().publicKey);
    const report = await auditLedger(t.pool, { publicKey: other });
    expect(failed(report).checks).toEqual(['header-signature']);
    expect(report.mismatches['header-signature']).toBe(report.checked['header-signature']);
    expect(report.findings[0]!.detail).toContain(`is not the engine's key ${other}`);
  });

  it('reports a deleted leaf under missing-leaf, and its batch under batch-leaves', async () => {
    const id = patients.AU3!;
    const leaf = (
      await t.pool.query(`SELECT id, resource_type, resource_id, version_id, preimage::text AS preimage, leaf_hash, created_at, batch_number, leaf_index
                            FROM ledger_leaf WHERE resource_type = 'Patient' AND resource_id = $1 AND version_id = 1`, [id])
    ).rows[0]!;
    await whileTampered(
      () => t.pool.query('DELETE FROM ledger_leaf WHERE id = $1', [leaf.id]).then(() => undefined),
      () =>
        t.pool
          .query(
            `INSERT INTO ledger_leaf (id, resource_type, resource_id, version_id, preimage, leaf_hash, created_at, batch_number, leaf_index)
             VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7, $8, $9)`,
            [leaf.id, leaf.resource_type, leaf.resource_id, leaf.version_id, leaf.preimage, leaf.leaf_hash, leaf.created_at, leaf.batch_number, leaf.leaf_index],
          )
          .then(() => undefined),
      async (report) => {
        expect(failed(report)).toEqual({
          checks: ['missing-leaf', 'batch-leaves'],
          refs: [`missing-leaf Patient/${id}/_history/1`, `batch-leaves batch/${leaf.batch_number}`],
        });
        expect(report.findings.find((f) => f.check === 'batch-leaves')!.detail).toMatch(/the root of its leaves is [0-9a-f]{64}; the header's root is [0-9a-f]{64}/);
      },
    );
  });

  it('lists at most maxFindings findings and counts the rest', async () => {
    const other = bytesToHex(generateSigningKey().publicKey);
    const report = await auditLedger(t.pool, { publicKey: other, maxFindings: 1 });
    expect(report.findings).toHaveLength(1);
    // Every batch in the audit's snapshot (reads keep adding AuditEvent batches, so not a count taken afterwards).
    expect(report.findingsOmitted).toBe(report.checked['header-signature'] - 1);
    expect(report.checked['header-signature']).toBeGreaterThanOrEqual(2);
  });

  it('folds a batch root leaf by leaf to the RFC 9162 root of any number of leaves', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 70 }), fc.integer(), (count, seed) => {
        const leaves = Array.from({ length: count }, (_, i) => leafHash(new TextEncoder().encode(`${seed}:${i}`)));
        const root = new StreamingRoot();
        for (const leaf of leaves) root.push(leaf);
        return bytesToHex(root.root()) === bytesToHex(merkleRoot(leaves)) && root.count === count;
      }),
    );
  });
});

describe('the audit command', () => {
  it('exits 0 on a clean ledger and 1 on a mismatch, printing a line per check and each finding', async () => {
    const clean = captured();
    expect(await runAudit(['--config', configFile], clean, {})).toBe(0);
    const lines = clean.stdout().trim().split('\n');
    expect(lines.map((line) => line.split(':')[0])).toEqual([
      'PASS leaf-hash',
      'PASS resource',
      'PASS raw-message',
      'PASS mapping-config',
      'PASS blob',
      'PASS missing-leaf',
      'PASS header-hash',
      'PASS header-signature',
      'PASS header-chain',
      'PASS batch-leaves',
      'audit clean',
    ]);
    expect(lines[0]).toMatch(/^PASS leaf-hash: \d+ checked$/);
    expect(clean.stderr()).toBe('');

    const messageId = (await t.pool.query<{ id: number }>(`SELECT source_message_id AS id FROM fhir_resource_history WHERE resource_type = 'Patient' AND id = $1`, [patients.AU3])).rows[0]!.id;
    const flip = `UPDATE inbox_message SET raw = set_byte(raw, 12, get_byte(raw, 12) # 4) WHERE id = $1`;
    await t.pool.query(flip, [messageId]);
    try {
      const text = captured();
      expect(await runAudit(['--config', configFile], text, {})).toBe(1);
      expect(text.stdout()).toContain('FAIL raw-message: 1 mismatch\n');
      expect(text.stdout()).toMatch(new RegExp(`\\n  inbox_message/${messageId}: raw bytes hash to [0-9a-f]{64}; raw_sha256 is [0-9a-f]{64}\\n`));
      expect(text.stdout()).toContain('PASS resource: ');
      expect(text.stdout().trim().split('\n').at(-1)).toBe('audit FAILED: 1 mismatch');

      const json = captured();
      expect(await runAudit(['--config', configFile, '--json', '--max-findings', '0'], json, {})).toBe(1);
      const report = JSON.parse(json.stdout()) as AuditReport;
      expect(report.ok).toBe(false);
      expect(report.mismatches['raw-message']).toBe(1);
      expect(report.findings).toEqual([]);
      expect(report.findingsOmitted).toBe(1);
    } finally {
      await t.pool.query(flip, [messageId]);
    }
    expect(await runAudit(['--config', configFile], captured(), {})).toBe(0);
  });

  it('exits 2 for usage, config and database errors', async () => {
    for (const argv of [['--max-findings', 'many'], ['--no-such-option'], ['extra-argument'], ['--config', path.join(dir, 'missing.json')]]) {
      const output = captured();
      expect(await runAudit(argv, output, {})).toBe(2);
      expect(output.stdout()).toBe('');
      expect(output.stderr()).toMatch(/^anchorline audit: /);
    }
    const unreachable = captured();
    const port = await freePort();
    expect(await runAudit(['--config', configFile], unreachable, { DATABASE_URL: `postgres://nobody:none@127.0.0.1:${port}/anchorline` })).toBe(2);
    expect(unreachable.stderr()).toMatch(/^anchorline audit: the audit could not run: /);
  });

  it('audits an engine on embedded PostgreSQL: through its running server, or a server it starts and stops', async () => {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'anchorline-audit-embedded-'));
    try {
      const raw = { dataDir, http: { port: 0 }, mllp: { port: 0 }, dicom: { port: 0 }, auth: { apiKey: TEST_API_KEY }, log: { level: 'silent' } };
      const file = path.join(dataDir, 'config.json');
      await writeFile(file, JSON.stringify(raw));
      const engine = await startEngine(parseConfig(raw), silentLogger());
      const pidFile = path.join(dataDir, 'pg', 'postmaster.pid');
      try {
        const postmasterPid = readFileSync(pidFile, 'utf8').split('\n')[0];
        const running = captured();
        expect(await runAudit(['--config', file], running, {})).toBe(0);
        expect(running.stdout()).toContain('audit clean');
        // The engine's server is still the one running, and still serves the engine.
        expect(readFileSync(pidFile, 'utf8').split('\n')[0]).toBe(postmasterPid);
        expect((await engine.store.pool.query('SELECT 1 AS one')).rows[0].one).toBe(1);
      } finally {
        await engine.close();
      }
      expect(existsSync(pidFile)).toBe(false);
      const stopped = captured();
      expect(await runAudit(['--config', file], stopped, {})).toBe(0);
      expect(stopped.stdout()).toContain('audit clean');
      expect(existsSync(pidFile)).toBe(false);
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});

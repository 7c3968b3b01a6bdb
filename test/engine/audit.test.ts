/**
 * The ledger audit against a real engine: ADT messages sent over MLLP are mapped, get provenance leaves and are
 * appended to the one log under signed checkpoints, a witness cosigns one, and the audit finds nothing. Then each kind
 * of tampering, done directly in PostgreSQL, is reported by the check that names it and by no other (and, where an
 * auditor's proof bundle covers the same thing, the bundle's verification fails too). Each tampering test puts back
 * what it changed and sees the audit clean again.
 *
 * Batches (ledger_batch) are what the engine wrote before the one log. A second engine, with the anchor worker off,
 * stands for such a store: its leaves are batched the way the old anchor worker did (test/support/old-batches.ts, a
 * signed header per batch), the batch checks run on it, and then the log's appender takes the batches over.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import type pg from 'pg';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  bytesToHex,
  checkpointHash,
  formatLogCheckpoint,
  generateSigningKey,
  leafHash,
  merkleRoot,
  parseLogCheckpoint,
  publicKeyFor,
  verifyBundle,
} from '../../anchor/index.ts';
import { ed25519Cosigner, ed25519NoteSigner, formatCosignerKey, formatSignatureLine, parseCheckpoint, parseNote, signNote } from '../../anchor/log/index.ts';
import { runAudit } from '../../cli/audit.ts';
import { captured } from '../support/audit-output.ts';
import { startEngine } from '../../cli/engine.ts';
import { parseConfig } from '../../config/load.ts';
import { silentLogger } from '../../config/logger.ts';
import { StreamingRoot } from '../../store/audit.ts';
import { auditLedger, auditTrail, freePort, mappingConfigs, type AuditCheckName, type AuditOptions, type AuditReport } from '../../store/index.ts';
import { AnchorWorker, loadSigningKey } from '../../workers/index.ts';
import { adtMessage } from '../support/messages.ts';
import { MllpTestClient } from '../support/mllp-client.ts';
import { closeOldBatch } from '../support/old-batches.ts';
import { flipRawByte, tamperVersion } from '../support/tamper.ts';
import { authHeaders, eventually, startTestEngine, TEST_API_KEY, type TestEngine } from '../support/engine.ts';

let t: TestEngine;
let dir: string;
let configFile: string;
const patients: Record<string, string> = {};

/** The witness the engine accepts cosignatures from (anchor.witnesses). */
const WITNESS_NAME = 'witness.example/audit';
const witness = generateSigningKey();
const witnessKey = formatCosignerKey(WITNESS_NAME, witness.publicKey);

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

/** Waits until every message is mapped and every leaf is in the log under a signed checkpoint. */
async function settled(): Promise<void> {
  await eventually(async () => {
    const { rows } = await t.pool.query<{ queued: number; waiting: number }>(
      `SELECT (SELECT count(*)::int FROM inbox_message WHERE state = 'queued') AS queued,
              (SELECT count(*)::int FROM ledger_leaf
                WHERE batch_number IS NULL OR leaf_index >= coalesce((SELECT max(tree_size) FROM log_checkpoint), 0)) AS waiting`,
    );
    return rows[0]!.queued === 0 && rows[0]!.waiting === 0;
  }, 20_000, 'mapping and a signed checkpoint');
}

interface CheckpointRow {
  number: number;
  tree_size: number;
  text: string;
  signature: string;
  checkpoint_hash: string;
}

async function checkpoints(pool: pg.Pool = t.pool): Promise<CheckpointRow[]> {
  return (
    await pool.query<CheckpointRow>('SELECT number::int, tree_size::int, text, signature, checkpoint_hash FROM log_checkpoint ORDER BY number')
  ).rows;
}

/** The audit as `anchorline audit` runs it for the test engine: with the witness keys of its config. */
function audit(options: AuditOptions = {}): Promise<AuditReport> {
  return auditLedger(t.pool, { witnesses: t.config.anchor.witnesses, ...options });
}

/** The checks that found something, and the findings' refs. */
function failed(report: AuditReport): { checks: AuditCheckName[]; refs: string[] } {
  return {
    checks: (Object.keys(report.mismatches) as AuditCheckName[]).filter((name) => report.mismatches[name] > 0),
    refs: report.findings.map((f) => `${f.check} ${f.ref}`),
  };
}

/**
 * Runs `tamper`, hands the audit report to `expectations`, and puts everything back with `restore`; the audit is
 * clean again after.
 */
async function whileTampered(
  tamper: () => Promise<unknown>,
  restore: () => Promise<unknown>,
  expectations: (report: AuditReport) => Promise<void> | void,
  run: () => Promise<AuditReport> = () => audit(),
): Promise<void> {
  await tamper();
  try {
    await expectations(await run());
  } finally {
    await restore();
  }
  const after = await run();
  expect(after.findings).toEqual([]);
  expect(after.ok).toBe(true);
}

/** A leaf row deleted while `check` runs, then put back exactly as it was (id, numbering and time included). */
async function whileLeafDeleted(pool: pg.Pool, leaf: Record<string, any>, check: (report: AuditReport) => void, run?: () => Promise<AuditReport>): Promise<void> {
  await whileTampered(
    () => pool.query('DELETE FROM ledger_leaf WHERE id = $1', [leaf.id]),
    () =>
      pool.query(
        `INSERT INTO ledger_leaf (id, resource_type, resource_id, version_id, preimage, leaf_hash, created_at, batch_number, leaf_index)
         VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7, $8, $9)`,
        [leaf.id, leaf.resource_type, leaf.resource_id, leaf.version_id, leaf.preimage, leaf.leaf_hash, leaf.created_at, leaf.batch_number, leaf.leaf_index],
      ),
    check,
    run,
  );
}

/** Flips a bit of a bytea column's first byte: run twice, it puts the value back. */
const flipFirstByte = (table: string, column: string, where: string): string => `UPDATE ${table} SET ${column} = set_byte(${column}, 0, get_byte(${column}, 0) # 1) WHERE ${where}`;

beforeAll(async () => {
  t = await startTestEngine({ overrides: { anchor: { closeAfterMs: 200, witnesses: [witnessKey] } } });
  dir = await mkdtemp(path.join(os.tmpdir(), 'anchorline-audit-'));
  configFile = path.join(dir, 'config.json');
  await writeFile(configFile, JSON.stringify(t.config));

  const client = await MllpTestClient.connect(t.mllpPort);
  await client.request(adtMessage({ controlId: 'AUDIT-1', mrn: 'AU1', family: 'Seo', given: 'Jun' }));
  patients.AU1 = await patientId('AU1', 1);
  await settled();
  // The rest land under later checkpoints, so the checkpoint chain has links to check.
  await client.request(adtMessage({ controlId: 'AUDIT-2', mrn: 'AU2', family: 'Ahn', given: 'Mira' }));
  await client.request(adtMessage({ event: 'A04', controlId: 'AUDIT-3', mrn: 'AU3', family: 'Yoon', given: 'Hana', visit: 'OP-3' }));
  await client.request(adtMessage({ event: 'A08', controlId: 'AUDIT-4', mrn: 'AU1', family: 'Seo', given: 'Junho' }));
  patients.AU2 = await patientId('AU2', 1);
  patients.AU3 = await patientId('AU3', 1);
  await patientId('AU1', 2);
  await settled();
  await client.request(adtMessage({ controlId: 'AUDIT-5', mrn: 'AU4', family: 'Lim', given: 'Dana' }));
  await client.close();
  await settled();
  const signed = await checkpoints();
  expect(signed.length).toBeGreaterThanOrEqual(3);

  // The witness cosigns the first checkpoint, through the route witnesses use.
  const note = signNote(signed[0]!.text, [ed25519Cosigner(WITNESS_NAME, witness.privateKey)]);
  const response = await fetch(`${t.httpUrl}/log/cosignature`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: note });
  expect(response.status).toBe(200);
  expect(((await response.json()) as { stored: number }).stored).toBe(1);
});

// Reads write AuditEvents; each test starts once their leaves are in the log and the ledger is quiet.
beforeEach(() => settled());

afterAll(async () => {
  await t?.destroy();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('anchorline audit', () => {
  it('finds nothing wrong with what the engine wrote, whatever the page size', async () => {
    const counts = (
      await t.pool.query<{ leaves: number; versions: number; current: number; messages: number; checkpoints: number; nodes: number; cosignatures: number }>(
        `SELECT (SELECT count(*)::int FROM ledger_leaf) AS leaves, (SELECT count(*)::int FROM fhir_resource_history) AS versions,
                (SELECT count(*)::int FROM fhir_current) AS current,
                (SELECT count(*)::int FROM inbox_message) AS messages, (SELECT count(*)::int FROM log_checkpoint) AS checkpoints,
                (SELECT count(*)::int FROM log_node) AS nodes, (SELECT count(*)::int FROM log_cosignature) AS cosignatures`,
      )
    ).rows[0]!;
    const report = await audit();
    expect(report.findings).toEqual([]);
    expect(report.ok).toBe(true);
    expect(report.checked).toEqual({
      'leaf-hash': counts.leaves,
      // Each leaf's version, and each current pointer.
      resource: counts.leaves + counts.current,
      'raw-message': counts.messages,
      'mapping-config': 1,
      blob: 0,
      'missing-leaf': counts.versions,
      'header-hash': 0,
      'header-signature': 0,
      'header-chain': 0,
      'batch-leaves': 0,
      'log-leaves': counts.leaves,
      'log-node': counts.nodes,
      'log-root': counts.checkpoints,
      'checkpoint-hash': counts.checkpoints,
      'checkpoint-signature': counts.checkpoints,
      'checkpoint-chain': counts.checkpoints,
      cosignature: 1,
      'cosignature-witness': 1,
    });
    expect(counts.messages).toBe(5);
    expect(counts.nodes).toBeGreaterThan(0);
    expect(report.unbatchedLeaves).toBe(0);
    // Pages of one and two rows cross every keyset boundary (composite history keys, leaf, node, checkpoint and
    // cosignature streams, and a node read per page of leaves).
    expect(await audit({ pageRows: 1 })).toEqual(report);
    expect(await audit({ pageRows: 2, rawPageBytes: 1 })).toEqual(report);
    // Pinned to the engine's own key, the checkpoints still pass.
    const signingKey = await loadSigningKey(path.join(t.config.dataDir, 'anchor-signing.key'), false);
    expect(await audit({ publicKey: bytesToHex(publicKeyFor(signingKey!)) })).toEqual(report);
  });

  it('stores the mapping configuration the leaves name, under its digest', async () => {
    const digest = mappingConfigs.mappingConfigSha256(t.config.mapping);
    // Leaves of versions mapped from messages, and of the AuditEvents of those imports; AuditEvents of reads name
    // no mapping (NO_SOURCE_SHA256).
    const named = await t.pool.query<{ digest: string }>(`SELECT DISTINCT preimage->>'mappingSha256' AS digest FROM ledger_leaf WHERE preimage->>'mappingSha256' <> $1`, [auditTrail.NO_SOURCE_SHA256]);
    expect(named.rows).toEqual([{ digest }]);
    const stored = await mappingConfigs.mappingConfigsByDigest(t.pool, [digest]);
    expect(mappingConfigs.mappingConfigSha256(stored.get(digest))).toBe(digest);
    // Recorded once: later messages mapped with it did not write it again.
    const rows = await t.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM mapping_config');
    expect(rows.rows[0]!.n).toBe(1);
  });

  it('reports an edited stored resource version under resource, and its proof no longer verifies', async () => {
    const id = patients.AU1!;
    const original = (await t.pool.query<{ content: string | null; sealed: Buffer | null }>(`SELECT content::text AS content, sealed FROM fhir_resource_history WHERE resource_type = 'Patient' AND id = $1 AND version_id = 1`, [id])).rows[0]!;
    const bundle = (await get(`/proofs/Patient/${id}/_history/1`)).body;
    await whileTampered(
      // Edited as someone holding the keys would edit it: sealed again under the patient's key, so it still opens.
      () =>
        tamperVersion(t.pool, 'Patient', id, 1, (content) => {
          content.name[0].family = 'Kim';
          return content;
        }),
      () => t.pool.query(`UPDATE fhir_resource_history SET content = $2::jsonb, sealed = $3 WHERE resource_type = 'Patient' AND id = $1 AND version_id = 1`, [id, original.content, original.sealed]),
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

  it('reports a current pointer moved off the latest version, or to a version not stored, under resource', async () => {
    const id = patients.AU2!;
    const version = (await t.pool.query<{ v: number }>(`SELECT version_id AS v FROM fhir_current WHERE resource_type = 'Patient' AND id = $1`, [id])).rows[0]!.v;
    await whileTampered(
      () => t.pool.query(`UPDATE fhir_current SET version_id = version_id + 5 WHERE resource_type = 'Patient' AND id = $1`, [id]),
      () => t.pool.query(`UPDATE fhir_current SET version_id = $2 WHERE resource_type = 'Patient' AND id = $1`, [id, version]),
      (report) => {
        expect(failed(report)).toEqual({ checks: ['resource'], refs: [`resource current Patient/${id}`] });
        expect(report.findings[0]!.detail).toBe(`the current row points at version ${version + 5}, which is not stored`);
      },
    );
    if (version > 1) {
      await whileTampered(
        () => t.pool.query(`UPDATE fhir_current SET version_id = 1 WHERE resource_type = 'Patient' AND id = $1`, [id]),
        () => t.pool.query(`UPDATE fhir_current SET version_id = $2 WHERE resource_type = 'Patient' AND id = $1`, [id, version]),
        (report) => expect(report.findings[0]!.detail).toBe(`the current row points at version 1, not the latest stored version ${version}`),
      );
    }
  });

  it('reports a changed byte of a raw inbound message under raw-message', async () => {
    const messageId = (await t.pool.query<{ id: number }>(`SELECT source_message_id AS id FROM fhir_resource_history WHERE resource_type = 'Patient' AND id = $1`, [patients.AU2])).rows[0]!.id;
    // Changed as someone holding the keys would change it: sealed again under the message's key, so it opens.
    const flip = () => flipRawByte(t.pool, [Number(messageId)], 20);
    await whileTampered(
      flip,
      flip,
      (report) => {
        expect(failed(report)).toEqual({ checks: ['raw-message'], refs: [`raw-message inbox_message/${messageId}`] });
        expect(report.findings[0]!.detail).toMatch(/^raw bytes hash to [0-9a-f]{64}; raw_sha256 is [0-9a-f]{64}$/);
      },
    );
  });

  it('reports a version whose source message is not stored under raw-message (no foreign key refuses it first)', async () => {
    const version = `Patient/${patients.AU2}/_history/1`;
    const messageId = (await t.pool.query<{ id: string }>(`SELECT source_message_id::text AS id FROM fhir_resource_history WHERE resource_type = 'Patient' AND id = $1 AND version_id = 1`, [patients.AU2])).rows[0]!.id;
    const point = (id: string) => () => t.pool.query(`UPDATE fhir_resource_history SET source_message_id = $2::bigint WHERE resource_type = 'Patient' AND id = $1 AND version_id = 1`, [patients.AU2, id]);
    await whileTampered(point('999999999'), point(messageId), (report) => {
      expect(failed(report).checks).toEqual(['raw-message']);
      expect(report.findings.map((f) => f.detail)).toContain('source inbox_message/999999999 does not exist');
      expect(report.findings.map((f) => f.ref)).toContain(version);
    });
  });

  it('reports an edited mapping configuration under mapping-config', async () => {
    const digest = mappingConfigs.mappingConfigSha256(t.config.mapping);
    const original = (await t.pool.query<{ content: string }>('SELECT content::text AS content FROM mapping_config WHERE sha256 = $1', [digest])).rows[0]!.content;
    await whileTampered(
      () => t.pool.query(`UPDATE mapping_config SET content = jsonb_set(content, '{timeZone}', '"UTC"') WHERE sha256 = $1`, [digest]),
      () => t.pool.query('UPDATE mapping_config SET content = $2::jsonb WHERE sha256 = $1', [digest, original]),
      (report) => {
        expect(failed(report)).toEqual({ checks: ['mapping-config'], refs: [`mapping-config mapping_config/${digest}`] });
        expect(report.findings[0]!.detail).toMatch(/^the stored content re-hashes to [0-9a-f]{64} \(\d+ leaves name it\)$/);
      },
    );
    // A configuration that is not stored at all.
    await whileTampered(
      () => t.pool.query('DELETE FROM mapping_config WHERE sha256 = $1', [digest]),
      () => t.pool.query('INSERT INTO mapping_config (sha256, content) VALUES ($1, $2::jsonb)', [digest, original]),
      (report) => {
        expect(failed(report).checks).toEqual(['mapping-config']);
        expect(report.findings[0]!.detail).toMatch(/^no mapping configuration is stored under this digest/);
      },
    );
  });

  it('reports a deleted leaf under missing-leaf, and the gap it leaves in the log under log-leaves', async () => {
    const id = patients.AU3!;
    const leaf = (
      await t.pool.query(`SELECT id, resource_type, resource_id, version_id, preimage::text AS preimage, leaf_hash, created_at, batch_number, leaf_index
                            FROM ledger_leaf WHERE resource_type = 'Patient' AND resource_id = $1 AND version_id = 1`, [id])
    ).rows[0]!;
    await whileLeafDeleted(t.pool, leaf,
      (report) => {
        expect(failed(report)).toEqual({
          checks: ['missing-leaf', 'log-leaves'],
          refs: [`missing-leaf Patient/${id}/_history/1`, `log-leaves leaf/${Number(leaf.leaf_index)}`],
        });
        expect(report.findings.find((f) => f.check === 'log-leaves')!.detail).toBe(
          `no leaf has leaf_index ${Number(leaf.leaf_index)}: the log is not recomputed past it, so later roots and nodes are not compared`,
        );
      },
    );
  });

  it('reports a changed log_node hash under log-node', async () => {
    const node = (await t.pool.query<{ level: number; idx: string }>('SELECT level, idx FROM log_node ORDER BY level DESC, idx LIMIT 1')).rows[0]!;
    const flip = flipFirstByte('log_node', 'hash', 'level = $1 AND idx = $2');
    await whileTampered(
      () => t.pool.query(flip, [node.level, node.idx]),
      () => t.pool.query(flip, [node.level, node.idx]),
      (report) => {
        expect(failed(report)).toEqual({ checks: ['log-node'], refs: [`log-node log_node/${node.level}/${node.idx}`] });
        expect(report.findings[0]!.detail).toMatch(/^log_node holds [0-9a-f]{64}; the leaves below it hash to [0-9a-f]{64}$/);
      },
    );
  });

  it("reports a changed checkpoint root_hash under log-root", async () => {
    const latest = (await checkpoints()).at(-1)!;
    const flip = flipFirstByte('log_checkpoint', 'root_hash', 'number = $1');
    await whileTampered(
      () => t.pool.query(flip, [latest.number]),
      () => t.pool.query(flip, [latest.number]),
      (report) => {
        expect(failed(report)).toEqual({ checks: ['log-root'], refs: [`log-root checkpoint/${latest.number}`] });
        expect(report.findings[0]!.detail).toMatch(
          new RegExp(`^the text's root is [0-9a-f]{64}; root_hash is [0-9a-f]{64}; the log's first ${latest.tree_size} leaves hash to [0-9a-f]{64}; root_hash is [0-9a-f]{64}$`),
        );
      },
    );
  });

  it('reports a changed leaf_hash of a leaf in the log under leaf-hash, and every node and root above it', async () => {
    const leaf = (await t.pool.query('SELECT id, resource_type, resource_id, version_id FROM ledger_leaf WHERE leaf_index = 0')).rows[0]!;
    const signed = await checkpoints();
    const size = signed.at(-1)!.tree_size;
    const flip = flipFirstByte('ledger_leaf', 'leaf_hash', 'id = $1');
    await whileTampered(
      () => t.pool.query(flip, [leaf.id]),
      () => t.pool.query(flip, [leaf.id]),
      (report) => {
        expect(failed(report).checks).toEqual(['leaf-hash', 'log-node', 'log-root']);
        expect(report.findings[0]).toMatchObject({ check: 'leaf-hash', ref: `${leaf.resource_type}/${leaf.resource_id}/_history/${leaf.version_id}` });
        // Leaf 0 is below one node per level, up to the largest perfect subtree of the log, and in every checkpoint.
        expect(report.findings.filter((f) => f.check === 'log-node').map((f) => f.ref)).toEqual(
          Array.from({ length: Math.floor(Math.log2(size)) }, (_, i) => `log_node/${i + 1}/0`),
        );
        expect(report.findings.filter((f) => f.check === 'log-root').map((f) => f.ref)).toEqual(signed.map((c) => `checkpoint/${c.number}`));
        expect(report.findings.find((f) => f.check === 'log-root')!.detail).toMatch(/^the log's first \d+ leaves hash to [0-9a-f]{64}; root_hash is [0-9a-f]{64}$/);
      },
    );
  });

  it("reports a changed checkpoint text under checkpoint-hash and checkpoint-signature", async () => {
    const second = (await checkpoints())[1]!;
    const edited = second.text.replace(/^time .*$/m, 'time 2000-01-01T00:00:00.000Z');
    expect(edited).not.toBe(second.text);
    await whileTampered(
      () => t.pool.query('UPDATE log_checkpoint SET text = $2 WHERE number = $1', [second.number, edited]),
      () => t.pool.query('UPDATE log_checkpoint SET text = $2 WHERE number = $1', [second.number, second.text]),
      (report) => {
        expect(failed(report)).toEqual({
          checks: ['checkpoint-hash', 'checkpoint-signature'],
          refs: [`checkpoint-hash checkpoint/${second.number}`, `checkpoint-signature checkpoint/${second.number}`],
        });
        expect(report.findings[1]!.detail).toMatch(/^the checkpoint does not open under log_key: invalid signature for key /);
      },
    );
  });

  it('reports a checkpoint re-signed with a wrong previous line under checkpoint-chain', async () => {
    const latest = (await checkpoints()).at(-1)!;
    const parsed = parseLogCheckpoint(latest.text);
    if (!parsed.ok) throw new Error(parsed.reason);
    // Signed as workers/anchor.ts signs, with the engine's own key: only the link is wrong.
    const signingKey = (await loadSigningKey(path.join(t.config.dataDir, 'anchor-signing.key'), false))!;
    const text = formatLogCheckpoint({ ...parsed.value, previous: checkpointHash('not the previous checkpoint\n') });
    const signer = ed25519NoteSigner(parsed.value.origin, signingKey);
    const signature = formatSignatureLine({ name: signer.name, keyId: signer.keyId, signature: signer.sign(new TextEncoder().encode(text)) });
    const write = (row: { text: string; signature: string; hash: string }) =>
      t.pool.query('UPDATE log_checkpoint SET text = $2, signature = $3, checkpoint_hash = $4 WHERE number = $1', [latest.number, row.text, row.signature, row.hash]);
    await whileTampered(
      () => write({ text, signature, hash: bytesToHex(checkpointHash(text)) }),
      () => write({ text: latest.text, signature: latest.signature, hash: latest.checkpoint_hash }),
      (report) => {
        expect(failed(report)).toEqual({ checks: ['checkpoint-chain'], refs: [`checkpoint-chain checkpoint/${latest.number}`] });
        expect(report.findings[0]!.detail).toMatch(new RegExp(`^the previous line names [0-9a-f]{64}; checkpoint ${latest.number - 1}'s checkpoint_hash is [0-9a-f]{64}$`));
      },
    );
  });

  it('reports an altered cosignature line under cosignature', async () => {
    const row = (await t.pool.query<{ tree_size: string; witness: string; line: string }>('SELECT tree_size, witness, line FROM log_cosignature')).rows[0]!;
    // A character inside the Ed25519 signature (the base64 ends in "==" and a newline).
    const at = row.line.length - 10;
    const altered = row.line.slice(0, at) + (row.line[at] === 'A' ? 'B' : 'A') + row.line.slice(at + 1);
    const write = (line: string) => t.pool.query('UPDATE log_cosignature SET line = $3 WHERE tree_size = $1 AND witness = $2', [row.tree_size, row.witness, line]);
    await whileTampered(
      () => write(altered),
      () => write(row.line),
      (report) => {
        expect(failed(report)).toEqual({ checks: ['cosignature'], refs: [`cosignature cosignature/${row.tree_size}/${row.witness}`] });
        expect(report.findings[0]!.detail).toMatch(/^the cosignature does not verify over checkpoint \d+'s text$/);
      },
    );
  });

  it('reports a cosignature by a key that is not a configured witness under cosignature-witness', async () => {
    const first = (await checkpoints())[0]!;
    const stranger = generateSigningKey();
    const note = parseNote(signNote(first.text, [ed25519Cosigner('stranger.example/w', stranger.privateKey, () => 1_800_000_000)]));
    if (!note.ok) throw new Error(note.reason);
    const signature = note.value.signatures[0]!;
    const witnessName = `${signature.name}+${signature.keyId.toString(16).padStart(8, '0')}`;
    await whileTampered(
      () =>
        t.pool.query('INSERT INTO log_cosignature (tree_size, witness, line, signed_at) VALUES ($1, $2, $3, $4)', [
          first.tree_size,
          witnessName,
          formatSignatureLine(signature),
          1_800_000_000,
        ]),
      () => t.pool.query('DELETE FROM log_cosignature WHERE witness = $1', [witnessName]),
      (report) => {
        expect(failed(report)).toEqual({ checks: ['cosignature-witness'], refs: [`cosignature-witness cosignature/${first.tree_size}/${witnessName}`] });
        expect(report.findings[0]!.detail).toBe(`the line is signed by ${witnessName}, which is not a configured witness key (anchor.witnesses)`);
        expect(report.checked.cosignature).toBe(1);
      },
    );
    // Audited without the engine's witness keys, its own witness's cosignature is a stranger's too.
    const unconfigured = await auditLedger(t.pool);
    expect(failed(unconfigured).checks).toEqual(['cosignature-witness']);
    expect(unconfigured.mismatches['cosignature-witness']).toBe(1);
    await expect(auditLedger(t.pool, { witnesses: ['not a key'] })).rejects.toThrow(/^witness key 1: /);
  });

  it('reports leaves numbered into another checkpoint, or into none, under log-leaves', async () => {
    const [earlier, latest] = (await checkpoints()).slice(-2) as [CheckpointRow, CheckpointRow];
    const leaf = (await t.pool.query<{ id: string; leaf_index: string }>('SELECT id, leaf_index FROM ledger_leaf WHERE batch_number = $1 ORDER BY leaf_index LIMIT 1', [latest.number])).rows[0]!;
    const renumber = (batchNumber: number) => t.pool.query('UPDATE ledger_leaf SET batch_number = $2 WHERE id = $1', [leaf.id, batchNumber]);
    await whileTampered(
      () => renumber(earlier.number),
      () => renumber(latest.number),
      (report) => {
        expect(failed(report)).toEqual({ checks: ['log-leaves'], refs: [`log-leaves leaf/${leaf.leaf_index}`] });
        expect(report.findings[0]!.detail).toBe(
          `the leaf is among checkpoint ${latest.number}'s (leaf_index ${earlier.tree_size}..${latest.tree_size - 1}), but its batch_number names checkpoint ${earlier.number}`,
        );
      },
    );
    await whileTampered(
      () => renumber(999_999),
      () => renumber(latest.number),
      (report) => {
        expect(failed(report)).toEqual({ checks: ['log-leaves'], refs: [`log-leaves leaf/${leaf.leaf_index}`] });
        expect(report.findings[0]!.detail).toMatch(/^its batch_number 999999 names neither a batch nor a checkpoint/);
      },
    );
  });

  it("reports checkpoints signed with another key than the engine's, when the engine key is given", async () => {
    const other = bytesToHex(generateSigningKey().publicKey);
    const report = await audit({ publicKey: other });
    expect(failed(report).checks).toEqual(['checkpoint-signature']);
    expect(report.mismatches['checkpoint-signature']).toBe(report.checked['checkpoint-signature']);
    expect(report.findings[0]!.detail).toMatch(new RegExp(`^log_key's public key [0-9a-f]{64} is not the engine's key ${other}$`));
  });

  it('lists at most maxFindings findings and counts the rest', async () => {
    const other = bytesToHex(generateSigningKey().publicKey);
    const report = await audit({ publicKey: other, maxFindings: 1 });
    expect(report.findings).toHaveLength(1);
    // Every checkpoint in the audit's snapshot (reads keep adding AuditEvent checkpoints, so not a count taken afterwards).
    expect(report.findingsOmitted).toBe(report.checked['checkpoint-signature'] - 1);
    expect(report.checked['checkpoint-signature']).toBeGreaterThanOrEqual(3);
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

describe('batches written before the log', () => {
  let old: TestEngine;
  const oldKey = generateSigningKey();
  const oldPublicKey = bytesToHex(oldKey.publicKey);
  const oldAudit = (options: AuditOptions = {}): Promise<AuditReport> => auditLedger(old.pool, { publicKey: oldPublicKey, ...options });

  /** Waits until `messages` inbox messages are stored and none is queued. */
  async function mapped(messages: number): Promise<void> {
    await eventually(async () => {
      const { rows } = await old.pool.query<{ total: number; queued: number }>(`SELECT count(*)::int AS total, (count(*) FILTER (WHERE state = 'queued'))::int AS queued FROM inbox_message`);
      return rows[0]!.total === messages && rows[0]!.queued === 0;
    }, 20_000, `${messages} messages mapped`);
  }

  /** Closes a batch of the waiting leaves as the anchor worker did before the log: a signed header over their root. */
  async function closeBatch(): Promise<void> {
    await closeOldBatch(old.pool, oldKey.privateKey);
  }

  beforeAll(async () => {
    old = await startTestEngine({ overrides: { anchor: { enabled: false } } });
    const client = await MllpTestClient.connect(old.mllpPort);
    await client.request(adtMessage({ controlId: 'OLD-1', mrn: 'OB1', family: 'Kang', given: 'Yuri' }));
    await mapped(1);
    await closeBatch();
    await client.request(adtMessage({ controlId: 'OLD-2', mrn: 'OB2', family: 'Jung', given: 'Eun' }));
    await client.request(adtMessage({ event: 'A08', controlId: 'OLD-3', mrn: 'OB1', family: 'Kang', given: 'Yurim' }));
    await mapped(3);
    await closeBatch();
    // Mapped after the last batch, before the log: these leaves wait unnumbered.
    await client.request(adtMessage({ controlId: 'OLD-4', mrn: 'OB3', family: 'Oh', given: 'Sena' }));
    await client.close();
    await mapped(4);
  });

  afterAll(async () => {
    await old?.destroy();
  });

  it('finds nothing wrong with batches whose leaves wait to be appended to the log', async () => {
    const leaves = (await old.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM ledger_leaf')).rows[0]!.n;
    const numbered = (await old.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM ledger_leaf WHERE leaf_index IS NOT NULL')).rows[0]!.n;
    const report = await oldAudit();
    expect(report.findings).toEqual([]);
    expect(report.ok).toBe(true);
    for (const check of ['header-hash', 'header-signature', 'header-chain', 'batch-leaves'] as const) expect(report.checked[check]).toBe(2);
    expect(report.checked['log-leaves']).toBe(numbered);
    expect(report.checked['log-root']).toBe(0);
    expect(numbered).toBeLessThan(leaves);
    // Batched leaves the log has not appended yet, and leaves not numbered at all.
    expect(report.unbatchedLeaves).toBe(leaves);
    expect(await oldAudit({ pageRows: 1 })).toEqual(report);
  });

  it('reports an edited batch header under header-hash and header-signature', async () => {
    // Proof bundles are made from the log now (anchorline-proof/2) and carry no batch header, so unlike before the
    // log no bundle's verification changes with it; the first checkpoint's legacy line names the last header's hash.
    const original = (await old.pool.query<{ header: string }>('SELECT header::text AS header FROM ledger_batch WHERE batch_number = 1')).rows[0]!.header;
    await whileTampered(
      () => old.pool.query(`UPDATE ledger_batch SET header = jsonb_set(header, '{time}', '"2000-01-01T00:00:00.000Z"') WHERE batch_number = 1`),
      () => old.pool.query('UPDATE ledger_batch SET header = $1::jsonb WHERE batch_number = 1', [original]),
      (report) => {
        expect(failed(report)).toEqual({ checks: ['header-hash', 'header-signature'], refs: ['header-hash batch/1', 'header-signature batch/1'] });
      },
      () => oldAudit(),
    );
  });

  it("reports headers signed with another key than the engine's, when the engine key is given", async () => {
    const other = bytesToHex(generateSigningKey().publicKey);
    const report = await oldAudit({ publicKey: other });
    expect(failed(report).checks).toEqual(['header-signature']);
    expect(report.mismatches['header-signature']).toBe(2);
    expect(report.findings[0]!.detail).toContain(`is not the engine's key ${other}`);
  });

  it('reports a deleted leaf under missing-leaf, its batch under batch-leaves, and the gap under log-leaves', async () => {
    const leaf = (
      await old.pool.query(`SELECT id, resource_type, resource_id, version_id, preimage::text AS preimage, leaf_hash, created_at, batch_number, leaf_index
                              FROM ledger_leaf WHERE resource_type = 'Patient' AND batch_number = 1`)
    ).rows[0]!;
    await whileLeafDeleted(old.pool, leaf,
      (report) => {
        expect(failed(report)).toEqual({
          checks: ['missing-leaf', 'batch-leaves', 'log-leaves'],
          refs: [`missing-leaf Patient/${leaf.resource_id}/_history/${leaf.version_id}`, 'batch-leaves batch/1', `log-leaves leaf/${Number(leaf.leaf_index)}`],
        });
        expect(report.findings.find((f) => f.check === 'batch-leaves')!.detail).toMatch(/the root of its leaves is [0-9a-f]{64}; the header's root is [0-9a-f]{64}/);
      },
      () => oldAudit(),
    );
  });

  it('audits the log that takes the batches over: numbered after the last batch, linked to its header', async () => {
    // The log's appender, as the engine runs it, a few leaves per checkpoint: the first checkpoints append only
    // batched leaves, later ones number the leaves that were waiting.
    const worker = new AnchorWorker({ pool: old.pool, log: silentLogger(), signingKey: oldKey.privateKey, closeAfterMs: 60_000, maxLeaves: 3 });
    expect(await worker.closeAll()).toBeGreaterThanOrEqual(3);
    await worker.close();
    const signed = await checkpoints(old.pool);
    const lastHeader = (await old.pool.query<{ header_hash: string }>('SELECT header_hash FROM ledger_batch WHERE batch_number = 2')).rows[0]!.header_hash;
    expect(signed[0]!.number).toBe(3);
    const first = parseCheckpoint(signed[0]!.text);
    if (!first.ok) throw new Error(first.reason);
    expect(first.value.extensions.filter((line) => !line.startsWith('time '))).toEqual([`legacy ${lastHeader}`]);
    const fresh = await old.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM ledger_leaf WHERE batch_number > 2');
    expect(fresh.rows[0]!.n).toBeGreaterThan(0);

    const report = await oldAudit();
    expect(report.findings).toEqual([]);
    expect(report.ok).toBe(true);
    expect(report.checked['checkpoint-chain']).toBe(signed.length);
    expect(report.checked['header-chain']).toBe(2);
    expect(report.unbatchedLeaves).toBe(0);
    expect(await oldAudit({ pageRows: 1 })).toEqual(report);

    // A legacy line that names another header breaks the link between the batches and the log.
    const origin = signed[0]!.text.slice(0, signed[0]!.text.indexOf('\n'));
    const relinked = signed[0]!.text.replace(`legacy ${lastHeader}`, `legacy ${'0'.repeat(64)}`);
    const signer = ed25519NoteSigner(origin, oldKey.privateKey);
    const write = (row: { text: string; signature: string; hash: string }) =>
      old.pool.query('UPDATE log_checkpoint SET text = $1, signature = $2, checkpoint_hash = $3 WHERE number = 3', [row.text, row.signature, row.hash]);
    await write({
      text: relinked,
      signature: formatSignatureLine({ name: signer.name, keyId: signer.keyId, signature: signer.sign(new TextEncoder().encode(relinked)) }),
      hash: bytesToHex(checkpointHash(relinked)),
    });
    try {
      const broken = await oldAudit();
      // Checkpoint 4's previous line still names the text as it was.
      expect(failed(broken)).toEqual({ checks: ['checkpoint-chain'], refs: ['checkpoint-chain checkpoint/3', 'checkpoint-chain checkpoint/4'] });
      expect(broken.findings[0]!.detail).toBe(`the legacy line names ${'0'.repeat(64)}; batch 2's header_hash is ${lastHeader}`);
    } finally {
      await write({ text: signed[0]!.text, signature: signed[0]!.signature, hash: signed[0]!.checkpoint_hash });
    }
    expect(await oldAudit()).toEqual(report);
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
      'PASS log-leaves',
      'PASS log-node',
      'PASS log-root',
      'PASS checkpoint-hash',
      'PASS checkpoint-signature',
      'PASS checkpoint-chain',
      'PASS cosignature',
      'PASS cosignature-witness',
      'audit clean',
    ]);
    expect(lines[0]).toMatch(/^PASS leaf-hash: \d+ checked$/);
    expect(lines.find((line) => line.startsWith('PASS cosignature:'))).toBe('PASS cosignature: 1 checked');
    expect(clean.stderr()).toBe('');

    const messageId = (await t.pool.query<{ id: number }>(`SELECT source_message_id AS id FROM fhir_resource_history WHERE resource_type = 'Patient' AND id = $1`, [patients.AU3])).rows[0]!.id;
    const flip = () => flipRawByte(t.pool, [Number(messageId)], 12, 4);
    await flip();
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
      await flip();
    }
    expect(await runAudit(['--config', configFile], captured(), {})).toBe(0);

    // Without the engine's witness keys in its config, the stored cosignature is reported, not trusted.
    const noWitnesses = path.join(dir, 'no-witnesses.json');
    await writeFile(noWitnesses, JSON.stringify({ ...t.config, anchor: { ...t.config.anchor, witnesses: [] } }));
    const strange = captured();
    expect(await runAudit(['--config', noWitnesses], strange, {})).toBe(1);
    expect(strange.stdout()).toContain('FAIL cosignature-witness: 1 mismatch\n');
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

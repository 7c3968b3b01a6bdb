/**
 * From MLLP to an auditor's proof: the Patient written for a message gets a provenance leaf in the same
 * transaction, the anchor worker appends it to the one log and signs a checkpoint, the proof endpoint returns a
 * bundle that verifies offline (in-process and with the `anchorline verify` CLI), later checkpoints are consistent
 * with earlier ones, the log's tiles reproduce its roots, and tampering with the stored resource, the raw message or
 * a checkpoint makes verification fail at the check that names it.
 */
import { execFile, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { base64ToBytes, parseLogCheckpoint, verifyBundle, verifyBundleForward, verifyConsistencyDocument } from '../../anchor/index.ts';
import { tileNodeSource, treeRoot } from '../../anchor/log/index.ts';
import { adtMessage } from '../support/messages.ts';
import { MllpTestClient } from '../support/mllp-client.ts';
import { authHeaders, eventually, startTestEngine, type TestEngine } from '../support/engine.ts';
import { tamperRaw, tamperVersion } from '../support/tamper.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
let t: TestEngine;
let dir: string;

beforeAll(async () => {
  t = await startTestEngine({ overrides: { anchor: { closeAfterMs: 200 } } });
  dir = await mkdtemp(path.join(os.tmpdir(), 'anchorline-proofs-'));
});
afterAll(async () => {
  await t?.destroy();
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function get(url: string): Promise<{ status: number; body: any }> {
  const response = await fetch(`${t.httpUrl}${url}`, { headers: authHeaders() });
  return { status: response.status, body: await response.json() };
}

async function proof(type: string, id: string, vid: number, query = ''): Promise<any> {
  return eventually(async () => {
    const { status, body } = await get(`/proofs/${type}/${id}/_history/${vid}${query}`);
    return status === 200 ? body : undefined;
  }, 20_000, `proof of ${type}/${id}/${vid}`);
}

async function cliVerify(bundle: unknown, resource?: unknown, raw?: Uint8Array): Promise<{ status: number | null; stdout: string }> {
  const name = Math.random().toString(36).slice(2);
  const bundleFile = path.join(dir, `bundle-${name}.json`);
  await writeFile(bundleFile, JSON.stringify(bundle));
  const args = [path.join(ROOT, 'cli/main.ts'), 'verify', bundleFile];
  if (resource !== undefined) {
    const resourceFile = path.join(dir, `resource-${name}.json`);
    await writeFile(resourceFile, JSON.stringify(resource));
    args.push('--resource', resourceFile);
  }
  if (raw !== undefined) {
    const rawFile = path.join(dir, `raw-${name}.hl7`);
    await writeFile(rawFile, raw);
    args.push('--raw', rawFile);
  }
  const result = spawnSync(process.execPath, ['--import', 'tsx', ...args], { cwd: ROOT, encoding: 'utf8', timeout: 30_000 });
  return { status: result.status, stdout: result.stdout };
}

/** The CLI in a child process, asynchronously: with --log it asks this process's engine, which must keep serving. */
function verifyCli(...args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', path.join(ROOT, 'cli/main.ts'), 'verify', ...args], { cwd: ROOT, timeout: 30_000 }, (error, stdout, stderr) => {
      resolve({ status: error === null ? 0 : typeof error.code === 'number' ? error.code : null, stdout, stderr });
    });
  });
}

async function file(name: string, content: unknown): Promise<string> {
  const target = path.join(dir, name);
  await writeFile(target, typeof content === 'string' ? content : JSON.stringify(content));
  return target;
}

describe('proof bundles', () => {
  it('proves a Patient version end to end, and catches tampering', async () => {
    const client = await MllpTestClient.connect(t.mllpPort);
    await client.request(adtMessage({ controlId: 'PROOF-1', mrn: 'PR1', family: 'Han', given: 'Sol' }));
    const patient = await eventually(async () => (await get('/fhir/Patient?identifier=PR1')).body.entry?.[0]?.resource);
    const bundle = await proof('Patient', patient.id, 1);
    expect(bundle.format).toBe('anchorline-proof/2');
    expect(Object.keys(bundle).sort()).toEqual(['anchor', 'checkpoint', 'format', 'inclusionProof', 'leaf', 'logKey']);
    expect(bundle.leaf.preimage).toMatchObject({ resourceType: 'Patient', id: patient.id, versionId: '1', terminologyVersion: 'none' });
    const stored = (await get(`/fhir/Patient/${patient.id}/_history/1`)).body;

    const good = verifyBundle(bundle, { resource: stored });
    expect(good.checks.filter((c) => !c.ok)).toEqual([]);
    expect(good.ok).toBe(true);
    const cli = await cliVerify(bundle, stored);
    expect(cli.status).toBe(0);
    expect(cli.stdout).toContain('verified');

    // A later version and checkpoint: the first bundle, fetched again, is against the newer checkpoint and no bigger
    // than a proof one level higher; the old bundle is brought forward by a consistency proof, without the record.
    const firstSize = parseLogCheckpoint(bundle.checkpoint.slice(0, bundle.checkpoint.indexOf('\n\n') + 1));
    expect(firstSize.ok).toBe(true);
    const oldSize = firstSize.ok ? firstSize.value.size : 0;
    await client.request(adtMessage({ event: 'A08', controlId: 'PROOF-2', mrn: 'PR1', family: 'Han', given: 'Solbi' }));
    await client.close();
    await proof('Patient', patient.id, 2);
    const refreshed = await proof('Patient', patient.id, 1);
    expect(refreshed.checkpoint).not.toBe(bundle.checkpoint);
    expect(verifyBundle(refreshed, { resource: stored }).ok).toBe(true);
    expect(JSON.stringify(refreshed).length).toBeLessThan(JSON.stringify(bundle).length + 100);
    const latest = await (await fetch(`${t.httpUrl}/log/checkpoint`)).text();
    const newSize = Number(latest.split('\n')[1]);
    expect(newSize).toBeGreaterThan(oldSize);
    const consistency = (await (await fetch(`${t.httpUrl}/log/consistency?old=${oldSize}&new=${newSize}`)).json()) as any;
    expect(verifyConsistencyDocument(consistency, { logKey: bundle.logKey }).ok).toBe(true);
    expect(verifyBundleForward(bundle, consistency, { resource: stored }).ok).toBe(true);
    // The same from the command line: a pinned log key, the document, two checkpoints with the proof fetched from
    // the log, and a bundle brought forward.
    const bundleFile = await file('old-bundle.json', bundle);
    const documentFile = await file('consistency.json', consistency);
    expect((await verifyCli(bundleFile, '--log-key', bundle.logKey)).status).toBe(0);
    const otherKey = bundle.logKey.replace(/\+[0-9a-f]{8}\+/, '+00000000+');
    expect((await verifyCli(bundleFile, '--log-key', otherKey)).status).toBe(2);
    const consistencyRun = await verifyCli('--consistency', documentFile);
    expect(consistencyRun.stdout).toMatch(/PASS consistency: the \d+-leaf tree is a prefix of the \d+-leaf tree/);
    expect(consistencyRun.status).toBe(0);
    const oldNote = await file('old.checkpoint', consistency.old);
    const newNote = await file('new.checkpoint', consistency.new);
    const fetched = await verifyCli('--consistency', oldNote, newNote, '--log', t.httpUrl, '--log-key', bundle.logKey);
    expect(fetched.stdout + fetched.stderr).toContain('PASS consistency');
    expect(fetched.status).toBe(0);
    expect((await verifyCli('--consistency', newNote, oldNote, '--log', t.httpUrl, '--log-key', bundle.logKey)).status).toBe(2);
    const forwardRun = await verifyCli(bundleFile, '--forward', documentFile);
    expect(forwardRun.stdout).toMatch(/PASS forward: leaf \d+ is in the \d+-leaf checkpoint too/);
    expect(forwardRun.status).toBe(0);
    // A proof that does not lead from the old root to the new one is refused.
    const forged = { ...consistency, proof: consistency.proof.length > 0 ? [consistency.proof[0].replace(/^./, (c: string) => (c === 'A' ? 'B' : 'A')), ...consistency.proof.slice(1)] : ['A'.repeat(43) + '='] };
    expect(verifyConsistencyDocument(forged).checks.find((c) => c.name === 'consistency')?.ok).toBe(false);
    // The public hash tiles give the same root as the signed checkpoint.
    const tiles = tileNodeSource({ readTile: async (level, index, width) => {
      const response = await fetch(`${t.httpUrl}/log/tile/${level}/${String(index).padStart(3, '0')}${width === 256 ? '' : `.p/${width}`}`);
      expect(response.status).toBe(200);
      return new Uint8Array(await response.arrayBuffer());
    } }, newSize);
    expect(Buffer.from(await treeRoot(tiles, newSize)).toString('base64')).toBe(latest.split('\n')[2]);
    expect(base64ToBytes(latest.split('\n')[2]!).length).toBe(32);
    // And the tiles of the older size give the older checkpoint's root: partial tiles are served at every width reached.
    const oldTiles = tileNodeSource({ readTile: async (level, index, width) => {
      const response = await fetch(`${t.httpUrl}/log/tile/${level}/${String(index).padStart(3, '0')}${width === 256 ? '' : `.p/${width}`}`);
      expect(response.status).toBe(200);
      return new Uint8Array(await response.arrayBuffer());
    } }, oldSize);
    expect(Buffer.from(await treeRoot(oldTiles, oldSize)).toString('base64')).toBe(consistency.old.split('\n')[2]);
    // The mapping configuration the leaf names, by its digest: its canonical bytes hash to the digest.
    const mapping = await fetch(`${t.httpUrl}/mappings/sha256/${bundle.leaf.preimage.mappingSha256}`, { headers: authHeaders() });
    expect(mapping.status).toBe(200);
    expect(createHash('sha256').update(Buffer.from(await mapping.arrayBuffer())).digest('hex')).toBe(bundle.leaf.preimage.mappingSha256);
    expect((await fetch(`${t.httpUrl}/mappings/sha256/${bundle.leaf.preimage.mappingSha256}`)).status).toBe(401);
    // Entry bundles name resource ids: not without the audit scope.
    expect((await fetch(`${t.httpUrl}/log/tile/entries/000.p/${newSize % 256}`)).status).toBe(401);
    expect((await fetch(`${t.httpUrl}/log/tile/entries/000.p/${newSize % 256}`, { headers: authHeaders() })).status).toBe(200);

    // Tamper with the stored resource (sealed again under the patient's key, so it still opens): the resource no
    // longer matches the anchored hash.
    await tamperVersion(t.pool, 'Patient', patient.id, 1, (content) => {
      content.name[0].family = 'Kim';
      return content;
    });
    const tampered = (await get(`/fhir/Patient/${patient.id}/_history/1`)).body;
    const resourceCheck = verifyBundle(refreshed, { resource: tampered });
    expect(resourceCheck.ok).toBe(false);
    expect(resourceCheck.checks.find((c) => c.name === 'resource-hash')?.ok).toBe(false);
    const cliTampered = await cliVerify(refreshed, tampered);
    expect(cliTampered.status).toBe(1);
    expect(cliTampered.stdout).toMatch(/FAIL resource-hash/);

    // The raw message the version came from, byte for byte: it hashes to the leaf's rawSha256, until it is changed.
    const source = async (): Promise<Uint8Array> => {
      const response = await fetch(`${t.httpUrl}/proofs/Patient/${patient.id}/_history/1/source`, { headers: authHeaders() });
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toBe('application/octet-stream');
      return new Uint8Array(await response.arrayBuffer());
    };
    const raw = await source();
    expect(Buffer.from(raw).toString('latin1')).toContain('PROOF-1');
    expect(verifyBundle(refreshed, { raw }).checks.find((c) => c.name === 'raw-hash')?.ok).toBe(true);
    expect((await cliVerify(refreshed, undefined, raw)).status).toBe(0);
    const messageId = (await t.pool.query(`SELECT source_message_id FROM fhir_resource_history WHERE resource_type = 'Patient' AND id = $1 AND version_id = 1`, [patient.id])).rows[0].source_message_id;
    await tamperRaw(t.pool, Number(messageId), (bytes) => {
      bytes[30] = bytes[30]! ^ 1;
      return bytes;
    });
    const changedRaw = await source();
    const rawCheck = verifyBundle(refreshed, { raw: changedRaw });
    expect(rawCheck.checks.filter((c) => !c.ok).map((c) => c.name)).toEqual(['raw-hash']);
    const cliRaw = await cliVerify(refreshed, undefined, changedRaw);
    expect(cliRaw.status).toBe(1);
    expect(cliRaw.stdout).toMatch(/FAIL raw-hash: SHA-256 of the \d+-byte raw message is [0-9a-f]{64}, but preimage.rawSha256 is [0-9a-f]{64}/);

    // Rewrite a checkpoint's time: the log's signature no longer holds.
    await t.pool.query(`UPDATE log_checkpoint SET text = regexp_replace(text, 'time [^\n]*', 'time 2000-01-01T00:00:00.000Z') WHERE tree_size = $1`, [newSize]);
    const rewritten = await proof('Patient', patient.id, 1, `?checkpoint=${newSize}`);
    const checkpointCheck = verifyBundle(rewritten, { resource: stored });
    expect(checkpointCheck.ok).toBe(false);
    expect(checkpointCheck.checks.filter((c) => !c.ok).map((c) => c.name)).toEqual(expect.arrayContaining(['checkpoint']));
  });

  it('answers 404 for a version that has no leaf, or no source message', async () => {
    const missing = await get('/proofs/Patient/does-not-exist/_history/1');
    expect(missing.status).toBe(404);
    expect((await get('/proofs/Patient/does-not-exist/_history/1/source')).status).toBe(404);
  });
});

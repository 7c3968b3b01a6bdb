/**
 * The whole path with chain anchoring, on anvil mining a block every second: an ADT over MLLP becomes a Patient,
 * its leaf goes into the log, a checkpoint's hash is anchored through the engine's 'evm' driver and confirmed, and
 * the proof bundle, with the anchor claim the log key signed, verifies offline and against the chain with
 * `anchorline verify --rpc`. A forged claim fails offline; a chain reorganisation after the bundle was made, or the
 * wrong node, fail the chain check that names it.
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAnchorClaim, verifyBundle, type AnchorClaim } from '../../anchor/index.ts';
import { parseNote, parseVerifierKey } from '../../anchor/log/index.ts';
import { runVerify } from '../../cli/verify.ts';
import { adtMessage } from '../support/messages.ts';
import { MllpTestClient } from '../support/mllp-client.ts';
import { authHeaders, eventually, startTestEngine, type TestEngine } from '../support/engine.ts';
import { ANVIL_KEYS, deployTestRegistry, startAnvil, submitter, type TestAnvil } from '../support/anvil.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
let anvil: TestAnvil;
let t: TestEngine;
let dir: string;
let contract: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'anchorline-chain-'));
  anvil = await startAnvil({ blockTimeSeconds: 1 });
  contract = await deployTestRegistry(anvil, [submitter.address]);
  const submitterKeyFile = path.join(dir, 'submitter.key');
  await writeFile(submitterKeyFile, ANVIL_KEYS.submitter + '\n', { mode: 0o600 });
  t = await startTestEngine({
    overrides: {
      anchor: { closeAfterMs: 200, driver: 'evm', evm: { rpcUrl: anvil.url, contractAddress: contract, submitterKeyFile, confirmations: 2, pollIntervalMs: 100 } },
    },
  });
});
afterAll(async () => {
  await t?.destroy();
  await anvil?.kill();
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function get(url: string): Promise<{ status: number; body: any }> {
  const response = await fetch(`${t.httpUrl}${url}`, { headers: authHeaders() });
  return { status: response.status, body: await response.json() };
}

/** Runs `anchorline verify` in-process on `bundle`; returns the exit code and the printed lines. */
async function verify(bundle: unknown, ...args: string[]): Promise<{ code: number; lines: string[] }> {
  const file = path.join(dir, `bundle-${Math.random().toString(36).slice(2)}.json`);
  await writeFile(file, JSON.stringify(bundle));
  let printed = '';
  const code = await runVerify([file, ...args], { out: (text) => (printed += text), err: (text) => (printed += text) });
  return { code, lines: printed.trim().split('\n') };
}

function failed(lines: string[]): string[] {
  return lines.filter((l) => l.startsWith('FAIL')).map((l) => l.slice(5, l.indexOf(':')));
}

function claimOf(bundle: any): AnchorClaim {
  const note = parseNote(bundle.anchor.claim);
  if (!note.ok) throw new Error(note.reason);
  const claim = parseAnchorClaim(note.value.text);
  if (!claim.ok) throw new Error(claim.reason);
  return claim.value;
}

/** The bundle with one line of its claim rewritten, keeping the log's signature: what a forger can do. */
function forge(bundle: any, line: RegExp, replacement: string): any {
  const forged = structuredClone(bundle);
  forged.anchor.claim = forged.anchor.claim.replace(line, replacement);
  expect(forged.anchor.claim).not.toBe(bundle.anchor.claim);
  return forged;
}

describe('chain-anchored proofs', () => {
  let bundle: any;
  let stored: any;

  it('anchors the batch of an MLLP message on chain and hands out a bundle that verifies offline and against the node', async () => {
    const client = await MllpTestClient.connect(t.mllpPort);
    await client.request(adtMessage({ controlId: 'CHAIN-1', mrn: 'CH1', family: 'Kim', given: 'Ara' }));
    await client.close();
    const patient = await eventually(async () => (await get('/fhir/Patient?identifier=CH1')).body.entry?.[0]?.resource);

    // Until the chain confirms, the proof is pending (409 with its code), never a bundle without its anchor.
    const early = await get(`/proofs/Patient/${patient.id}/_history/1`);
    if (early.status !== 200) expect(early.body.issue[0].details.coding[0].code).toBe('ANCHORLINE_ERR_PROOF_PENDING');
    bundle = await eventually(async () => {
      const { status, body } = await get(`/proofs/Patient/${patient.id}/_history/1`);
      return status === 200 ? body : undefined;
    }, 30_000, 'a chain-anchored proof');
    stored = (await get(`/fhir/Patient/${patient.id}/_history/1`)).body;

    expect(bundle.anchor.driver).toBe('evm');
    expect(claimOf(bundle)).toMatchObject({ chainId: 31337, contract: contract.toLowerCase() });
    expect(verifyBundle(bundle, { resource: stored }).ok).toBe(true);

    const resourceFile = path.join(dir, 'resource.json');
    await writeFile(resourceFile, JSON.stringify(stored));
    const run = await verify(bundle, '--resource', resourceFile, '--rpc', anvil.url, '--public-key', publicKeyHex(bundle.logKey));
    expect(failed(run.lines)).toEqual([]);
    expect(run.code).toBe(0);
    for (const name of ['chain-id', 'chain-contract', 'chain-transaction', 'chain-event', 'chain-state', 'public-key', 'resource-hash']) {
      expect(run.lines.some((l) => l.startsWith(`PASS ${name}:`))).toBe(true);
    }
  });

  it('the command line does the same', () => {
    const file = path.join(dir, 'cli-bundle.json');
    return writeFile(file, JSON.stringify(bundle)).then(() => {
      const result = spawnSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'cli/main.ts'), 'verify', file, '--rpc', anvil.url], { cwd: ROOT, encoding: 'utf8', timeout: 30_000 });
      expect(result.stdout).toContain('PASS chain-state');
      expect(result.status).toBe(0);
    });
  });

  it('fails a forged anchor claim offline, and the chain checks name what the chain does not hold', async () => {
    const wrongBlock = forge(bundle, /^block (\d+) 0x[0-9a-f]{64}$/m, `block $1 0x${'ab'.repeat(32)}`);
    let run = await verify(wrongBlock, '--rpc', anvil.url);
    expect(run.code).toBe(1);
    expect(failed(run.lines)).toEqual(['anchor', 'chain-transaction', 'chain-event', 'chain-state']);

    const unknownTx = forge(bundle, /^tx 0x[0-9a-f]{64}$/m, `tx 0x${'cd'.repeat(32)}`);
    run = await verify(unknownTx, '--rpc', anvil.url);
    expect(failed(run.lines)).toEqual(['anchor', 'chain-transaction', 'chain-event', 'chain-state']);

    const wrongChain = forge(bundle, /^evm 31337 /m, 'evm 2018 ');
    run = await verify(wrongChain, '--rpc', anvil.url);
    expect(failed(run.lines)).toEqual(['anchor', 'chain-id', 'chain-contract', 'chain-transaction', 'chain-event', 'chain-state']);

    const wrongContract = forge(bundle, /^evm 31337 0x[0-9a-f]{40}$/m, `evm 31337 ${submitter.address.toLowerCase()}`);
    run = await verify(wrongContract, '--rpc', anvil.url);
    expect(failed(run.lines)).toContain('anchor');
    expect(failed(run.lines)).toContain('chain-contract');
    expect(failed(run.lines)).toContain('chain-transaction');

    // Without --rpc too: the claim is signed by the log key, so a made-up one fails offline.
    run = await verify(wrongBlock);
    expect(run.code).toBe(1);
    expect(failed(run.lines)).toEqual(['anchor']);
    // A pinned key that is not the engine's fails.
    run = await verify(bundle, '--public-key', 'ab'.repeat(32));
    expect(failed(run.lines)).toEqual(['public-key']);
  });

  it('fails when the node is unreachable', async () => {
    const run = await verify(bundle, '--rpc', 'http://127.0.0.1:9');
    expect(run.code).toBe(1);
    expect(failed(run.lines)).toEqual(['chain-id', 'chain-contract', 'chain-transaction', 'chain-event', 'chain-state']);
  });

  it('fails chain-transaction when the chain reorganised the anchoring block away after the bundle was made', async () => {
    // Stop the engine first, so that its driver does not re-anchor while the check runs.
    await t.close();
    // Reorganise from the anchoring block up; read the head again if a block came between reading it and the reorg
    // (on a loaded machine), until the anchoring block is no longer the one the bundle names.
    const claim = claimOf(bundle);
    const blockHashAt = async (n: number): Promise<string | undefined> => (await anvil.rpc<{ hash: string } | null>('eth_getBlockByNumber', [`0x${n.toString(16)}`, false]))?.hash;
    for (let attempt = 0; attempt < 5 && (await blockHashAt(claim.blockNumber)) === claim.blockHash; attempt++) {
      const head = Number(await anvil.rpc<string>('eth_blockNumber'));
      await anvil.rpc('anvil_reorg', [head - claim.blockNumber + 1, []]);
    }
    expect(await blockHashAt(claim.blockNumber)).not.toBe(claim.blockHash);
    const run = await verify(bundle, '--rpc', anvil.url);
    expect(run.code).toBe(1);
    expect(failed(run.lines)).toEqual(['chain-transaction', 'chain-event', 'chain-state']);
    expect(run.lines.find((l) => l.startsWith('FAIL chain-transaction'))).toMatch(/reorganised/);
  });
});

function publicKeyHex(logKey: string): string {
  const key = parseVerifierKey(logKey);
  if (!key.ok) throw new Error(key.reason);
  return Buffer.from(key.value.publicKey).toString('hex');
}

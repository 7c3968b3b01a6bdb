/**
 * The 'evm' anchor driver against a real anvil node: the happy path, a backlog, the node down, the engine killed
 * between sending and the receipt, a dropped transaction, reorgs, a submitter not on the allow-list, a conflicting
 * registry entry and a lost database row. Each test gets its own schema and its own anvil.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createPublicClient, http, type Address, type Hex } from 'viem';
import { anchorRegistryAbi } from '../../anchor/chain/abi.ts';
import { generateSigningKey } from '../../anchor/index.ts';
import { silentLogger } from '../../config/logger.ts';
import { chainAnchors, log as logStore } from '../../store/index.ts';
import { AnchorWorker } from '../../workers/anchor.ts';
import { ChainAnchorDriver, type StepOutcome } from '../../workers/chain-anchor.ts';
import { createTestDatabase, type TestDatabase } from '../support/db.ts';
import { appendTestLeaves } from '../support/leaves.ts';
import { deployTestRegistry, outsider, owner, startAnvil, submitter, type TestAnvil } from '../support/anvil.ts';
import { setRegistrySubmitter } from '../../anchor/chain/registry.ts';
import { buildProofBundle } from '../../api/proofs.ts';
import { parseAnchorClaim, verifyBundle } from '../../anchor/index.ts';
import { parseNote } from '../../anchor/log/index.ts';

const EVM = { anchorDriver: 'evm', witnessQuorum: 0 } as const;
const LOCAL = { anchorDriver: 'local', witnessQuorum: 0 } as const;
let db: TestDatabase;
let anvil: TestAnvil;
let contract: Address;
const signingKey = generateSigningKey().privateKey;
const cleanups: Array<() => Promise<unknown>> = [];

beforeEach(async () => {
  db = await createTestDatabase('chain');
  anvil = await startAnvil();
  contract = await deployTestRegistry(anvil);
});

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  await anvil.kill();
  await db.drop();
});

let lastLeafId = '';
/** Appends `count` leaves and signs one checkpoint over them; returns its number and hash and the first leaf's id. */
async function closeBatch(count = 3): Promise<{ batchNumber: number; headerHash: string; firstLeafId: string }> {
  const preimages = await appendTestLeaves(db.pool, count, 'Patient', 'p');
  const firstLeafId = preimages[0]!.id;
  lastLeafId = preimages.at(-1)!.id;
  expect(await anchorWorker().closeAll()).toBe(1);
  const newest = (await logStore.latestCheckpoint(db.pool))!;
  return { batchNumber: newest.number, headerHash: newest.checkpointHash, firstLeafId };
}

/** The log's appender and claim signer, with the one signing key of these tests. */
function anchorWorker(): AnchorWorker {
  return new AnchorWorker({ pool: db.pool, log: silentLogger(), signingKey, closeAfterMs: 60_000, maxLeaves: 10_000 });
}

function driver(overrides: Partial<ConstructorParameters<typeof ChainAnchorDriver>[0]> = {}): ChainAnchorDriver {
  const created = new ChainAnchorDriver({
    pool: db.pool,
    log: silentLogger(),
    rpcUrl: anvil.url,
    contract,
    submitter,
    confirmations: 1,
    pollIntervalMs: 50,
    requestTimeoutMs: 2_000,
    retryBackoffMs: 1_000,
    maxRetryBackoffMs: 8_000,
    gasHeadroomPercent: 130,
    signClaim: (anchored) => anchorWorker().signAnchorClaim(anchored),
    ...overrides,
  });
  cleanups.push(() => created.close());
  return created;
}

/** Steps until `want` (ignoring back-off by stepping with a clock far ahead); fails after `limit` steps. */
async function stepUntil(d: ChainAnchorDriver, want: StepOutcome, limit = 20): Promise<StepOutcome[]> {
  const seen: StepOutcome[] = [];
  let clock = Date.now();
  for (let i = 0; i < limit; i += 1) {
    clock += 120_000;
    const outcome = await d.step(clock);
    seen.push(outcome);
    if (outcome === want) return seen;
  }
  throw new Error(`never reached ${want}: ${seen.join(', ')}`);
}

/**
 * The next step's outcome other than 'waiting' (the node has the transaction but has not mined it yet, which a
 * loaded machine can make last a moment even with automining); fails after `limit` steps 50 ms apart.
 */
async function stepPastWaiting(d: ChainAnchorDriver, limit = 100): Promise<StepOutcome> {
  for (let i = 0; i < limit; i += 1) {
    const outcome = await d.step();
    if (outcome !== 'waiting') return outcome;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`still waiting after ${limit} steps`);
}

function chainClient() {
  return createPublicClient({ transport: http(anvil.url, { retryCount: 0 }) });
}

async function registryHash(batchNumber: number): Promise<Hex> {
  return chainClient().readContract({ address: contract, abi: anchorRegistryAbi, functionName: 'headerHashOf', args: [submitter.address, BigInt(batchNumber)] });
}

async function anchoredEvents(): Promise<Array<{ batchNumber: bigint; headerHash: Hex; transactionHash: Hex }>> {
  const logs = await chainClient().getContractEvents({ address: contract, abi: anchorRegistryAbi, eventName: 'Anchored', fromBlock: 0n });
  return logs.map((l) => ({ batchNumber: l.args.batchNumber!, headerHash: l.args.headerHash!, transactionHash: l.transactionHash! }));
}

async function submitterNonce(): Promise<number> {
  return chainClient().getTransactionCount({ address: submitter.address, blockTag: 'latest' });
}

async function liveAnchor(batchNumber: number): Promise<chainAnchors.AnchorTransaction> {
  const rows = (await chainAnchors.anchorsOfBatch(db.pool, batchNumber)).filter((r) => r.state !== 'abandoned');
  expect(rows).toHaveLength(1);
  return rows[0]!;
}

describe('evm anchor driver', () => {
  it('anchors a closed batch, records where, and confirms it; the proof bundle then carries the chain anchor', async () => {
    const batch = await closeBatch();
    const d = driver();
    expect(await d.step()).toBe('sent');
    expect(await stepPastWaiting(d)).toBe('included');
    expect(await stepPastWaiting(d)).toBe('confirmed');
    expect(await d.step()).toBe('idle');

    expect(await registryHash(batch.batchNumber)).toBe(`0x${batch.headerHash}`);
    const row = await liveAnchor(batch.batchNumber);
    const receipt = await chainClient().getTransactionReceipt({ hash: row.txHash as Hex });
    expect(row).toMatchObject({ state: 'confirmed', chainId: 31337, contract, submitter: submitter.address, blockNumber: Number(receipt.blockNumber), blockHash: receipt.blockHash });

    const bundle = await buildProofBundle(db.pool, 'Patient', lastLeafId, 1, EVM);
    expect(bundle.anchor.driver).toBe('evm');
    const claim = bundle.anchor.driver === 'evm' ? parseNote(bundle.anchor.claim) : undefined;
    expect(claim?.ok).toBe(true);
    const parsed = claim?.ok ? parseAnchorClaim(claim.value.text) : undefined;
    expect(parsed?.ok && parsed.value).toMatchObject({
      checkpointNumber: batch.batchNumber,
      chainId: 31337,
      contract: contract.toLowerCase(),
      txHash: row.txHash,
      blockNumber: row.blockNumber,
      blockHash: row.blockHash,
    });
    expect(verifyBundle(bundle).ok).toBe(true);
    // The claim is signed by the log key: one made up, or moved to another transaction, fails offline.
    const forged = { ...bundle, anchor: { driver: 'evm' as const, claim: (bundle.anchor as { claim: string }).claim.replace(/^tx 0x[0-9a-f]/m, (m) => `${m.slice(0, -1)}${m.endsWith('0') ? '1' : '0'}`) } };
    const forgedResult = verifyBundle(forged);
    expect(forgedResult.checks.filter((c) => !c.ok).map((c) => c.name)).toEqual(['anchor']);
  });

  it('waits for the configured number of confirmations', async () => {
    await closeBatch();
    const d = driver({ confirmations: 3 });
    await stepUntil(d, 'included');
    expect(await d.step()).toBe('waiting');
    await anvil.mine(1);
    expect(await d.step()).toBe('waiting');
    await anvil.mine(1);
    expect(await d.step()).toBe('confirmed');
  });

  it('answers PROOF_PENDING for a batch the chain has not confirmed, with the evm driver', async () => {
    await closeBatch();
    await expect(buildProofBundle(db.pool, 'Patient', lastLeafId, 1, EVM)).rejects.toMatchObject({ code: 'ANCHORLINE_ERR_PROOF_PENDING' });
    // The local driver still hands out the bundle, saying that nothing is anchored outside the engine.
    expect((await buildProofBundle(db.pool, 'Patient', lastLeafId, 1, LOCAL)).anchor).toEqual({ driver: 'local' });
  });

  it('anchors only the newest checkpoint of a backlog; its proofs cover the earlier leaves', async () => {
    const first = await closeBatch();
    await closeBatch();
    const third = await closeBatch();
    const d = driver();
    await stepUntil(d, 'confirmed');
    expect(await d.step()).toBe('idle');
    expect((await anchoredEvents()).map((e) => Number(e.batchNumber))).toEqual([third.batchNumber]);
    const covering = await chainAnchors.coveringAnchor(db.pool, first.batchNumber);
    expect(covering?.batchNumber).toBe(third.batchNumber);

    // The bundle of a leaf in the first checkpoint is made against the anchored third one, directly.
    const bundle = await buildProofBundle(db.pool, 'Patient', first.firstLeafId, 1, EVM);
    expect(bundle.checkpoint.split('\n')[1]).toBe('9');
    expect(bundle.anchor.driver).toBe('evm');
    expect(verifyBundle(bundle).ok).toBe(true);

    // A later batch gets its own transaction.
    const fourth = await closeBatch();
    await stepUntil(d, 'confirmed');
    expect((await anchoredEvents()).map((e) => Number(e.batchNumber))).toEqual([third.batchNumber, fourth.batchNumber]);
  });

  it('keeps batches pending with back-off while the node is down, without blocking batch closing, and anchors once it is back', async () => {
    const port = anvil.port;
    await anvil.kill();
    await closeBatch();
    const d = driver();
    const start = Date.now();
    expect(await d.step(start)).toBe('backing-off');
    // Backing off: the next steps inside the window do not touch the chain.
    expect(await d.step(start + 500)).toBe('backing-off');
    expect(await d.step(start + 1_500)).toBe('backing-off');
    // The window doubles: 1 s, then 2 s.
    expect(await d.step(start + 2_500)).toBe('backing-off');
    // Batches keep closing while the chain is away.
    const second = await closeBatch();
    expect(await chainAnchors.inFlight(db.pool)).toBeUndefined();

    anvil = await startAnvil({ port });
    expect(await deployTestRegistry(anvil)).toBe(contract);
    await stepUntil(d, 'confirmed');
    expect(await registryHash(second.batchNumber)).toBe(`0x${second.headerHash}`);
  });

  it('reconciles after the node restarts between send and receipt, losing the transaction, by broadcasting the same bytes again', async () => {
    const port = anvil.port;
    await anvil.rpc('evm_setAutomine', [false]);
    const batch = await closeBatch();
    const d = driver();
    expect(await d.step()).toBe('sent');
    const sent = await liveAnchor(batch.batchNumber);
    await anvil.kill();
    expect(await d.step(Date.now() + 120_000)).toBe('backing-off');
    expect((await liveAnchor(batch.batchNumber)).lastError).toBe('ANCHORLINE_ERR_CHAIN_UNAVAILABLE');

    anvil = await startAnvil({ port });
    await deployTestRegistry(anvil);
    expect(await stepUntil(d, 'rebroadcast')).not.toContain('sent');
    await stepUntil(d, 'confirmed');
    const events = await anchoredEvents();
    expect(events).toEqual([{ batchNumber: BigInt(batch.batchNumber), headerHash: `0x${batch.headerHash}`, transactionHash: sent.txHash }]);
  });

  it('after the engine dies between send and receipt, a new process finds the receipt and never sends twice', async () => {
    await anvil.rpc('evm_setAutomine', [false]);
    const batch = await closeBatch();
    const before = await driver().step();
    expect(before).toBe('sent');
    const sent = await liveAnchor(batch.batchNumber);
    // The first process is gone (its object is never used again); the transaction is mined meanwhile.
    await anvil.mine(1);
    const successor = driver();
    const outcomes = await stepUntil(successor, 'confirmed');
    expect(outcomes).toEqual(['included', 'confirmed']);
    expect(await submitterNonce()).toBe(1);
    expect((await anchoredEvents()).map((e) => e.transactionHash)).toEqual([sent.txHash]);
  });

  it('broadcasts the recorded transaction again when the node dropped it, and still anchors exactly once', async () => {
    await anvil.rpc('evm_setAutomine', [false]);
    const batch = await closeBatch();
    const d = driver();
    expect(await d.step()).toBe('sent');
    const sent = await liveAnchor(batch.batchNumber);
    await anvil.rpc('anvil_dropTransaction', [sent.txHash]);
    expect(await d.step()).toBe('rebroadcast');
    expect(await d.step()).toBe('waiting');
    await anvil.mine(1);
    await stepUntil(d, 'confirmed');
    expect(await submitterNonce()).toBe(1);
    expect((await anchoredEvents()).map((e) => e.transactionHash)).toEqual([sent.txHash]);
  });

  it('detects a reorg that drops the anchoring block before it is confirmed, and anchors again in the new chain', async () => {
    const batch = await closeBatch();
    const d = driver({ confirmations: 3 });
    await stepUntil(d, 'included');
    const included = await liveAnchor(batch.batchNumber);
    // Replace the block holding the transaction with an empty one; the transaction is gone from the chain.
    await anvil.rpc('anvil_reorg', [1, []]);
    expect(await registryHash(batch.batchNumber)).toBe(`0x${'0'.repeat(64)}`);
    await anvil.mine(2);
    expect(await d.step()).toBe('reorged');
    expect((await liveAnchor(batch.batchNumber)).state).toBe('sent');
    await stepUntil(d, 'included');
    await anvil.mine(2);
    await stepUntil(d, 'confirmed');

    const confirmed = await liveAnchor(batch.batchNumber);
    expect(confirmed.txHash).toBe(included.txHash);
    expect(confirmed.blockHash).not.toBe(included.blockHash);
    const block = await chainClient().getBlock({ blockNumber: BigInt(confirmed.blockNumber!) });
    expect(block.hash).toBe(confirmed.blockHash);
    expect(await registryHash(batch.batchNumber)).toBe(`0x${batch.headerHash}`);
    expect(await anchoredEvents()).toHaveLength(1);
  });

  it('records the new block when a reorg re-includes the transaction elsewhere', async () => {
    const batch = await closeBatch();
    const d = driver({ confirmations: 2 });
    await stepUntil(d, 'included');
    const included = await liveAnchor(batch.batchNumber);
    const tx = await chainClient().getTransaction({ hash: included.txHash as Hex });
    const raw = included.rawTx;
    expect(tx.nonce).toBe(included.nonce);
    // The block holding it and the one after are replaced by two new blocks; it lands in the second of them.
    await anvil.mine(1);
    await anvil.rpc('anvil_reorg', [2, [[raw, 1]]]);
    expect(await d.step()).toBe('reorged');
    const moved = await liveAnchor(batch.batchNumber);
    expect(moved.state).toBe('included');
    expect(moved.blockHash).not.toBe(included.blockHash);
    expect(moved.blockNumber).toBe(included.blockNumber! + 1);
    expect(await d.step()).toBe('waiting');
    await anvil.mine(1);
    expect(await d.step()).toBe('confirmed');
    expect(await anchoredEvents()).toHaveLength(1);
  });

  it('sends nothing while the submitter is not on the allow-list, and anchors once the owner allows it', async () => {
    const d = driver({ submitter: outsider });
    const batch = await closeBatch();
    const outcome = await d.step();
    expect(outcome).toBe('backing-off');
    expect(await chainAnchors.inFlight(db.pool)).toBeUndefined();
    expect(await chainClient().getTransactionCount({ address: outsider.address })).toBe(0);

    await setRegistrySubmitter({ rpcUrl: anvil.url, owner, contract, submitter: outsider.address, allowed: true, pollIntervalMs: 50 });
    await stepUntil(d, 'confirmed');
    const hash = await chainClient().readContract({ address: contract, abi: anchorRegistryAbi, functionName: 'headerHashOf', args: [outsider.address, BigInt(batch.batchNumber)] });
    expect(hash).toBe(`0x${batch.headerHash}`);
  });

  it('refuses to anchor when the registry holds another header hash for this submitter at or after the batch', async () => {
    const batch = await closeBatch();
    // Someone with the submitter key anchored a different header as this batch.
    const { createWalletClient, defineChain } = await import('viem');
    const chain = defineChain({ id: 31337, name: 'anvil', nativeCurrency: { name: 'E', symbol: 'E', decimals: 18 }, rpcUrls: { default: { http: [anvil.url] } } });
    const wallet = createWalletClient({ account: submitter, chain, transport: http(anvil.url) });
    await wallet.writeContract({ address: contract, abi: anchorRegistryAbi, functionName: 'anchor', args: [BigInt(batch.batchNumber), `0x${'ee'.repeat(32)}`] });
    const d = driver();
    expect(await d.step()).toBe('backing-off');
    expect(await chainAnchors.inFlight(db.pool)).toBeUndefined();
    expect(await anchoredEvents()).toHaveLength(1);
  });

  it('recovers a lost database row from the registry instead of anchoring again', async () => {
    const batch = await closeBatch();
    const d = driver();
    await stepUntil(d, 'confirmed');
    const original = await liveAnchor(batch.batchNumber);
    await db.pool.query('DELETE FROM ledger_anchor');
    expect(await d.step()).toBe('recovered');
    await stepUntil(d, 'confirmed');
    const recovered = await liveAnchor(batch.batchNumber);
    expect(recovered.txHash).toBe(original.txHash);
    expect(recovered.blockHash).toBe(original.blockHash);
    expect(await anchoredEvents()).toHaveLength(1);
  });

  it('finds an older anchor through event searches in windows a node allows (Besu caps eth_getLogs ranges)', async () => {
    const batch = await closeBatch();
    await stepUntil(driver(), 'confirmed');
    const original = await liveAnchor(batch.batchNumber);
    await anvil.mine(9);
    await db.pool.query('DELETE FROM ledger_anchor');
    const narrow = driver({ logRangeBlocks: 2 });
    expect(await narrow.step()).toBe('recovered');
    expect((await liveAnchor(batch.batchNumber)).blockHash).toBe(original.blockHash);
    // Not found when the search starts after the anchoring block.
    await db.pool.query('DELETE FROM ledger_anchor');
    const late = driver({ logRangeBlocks: 2, fromBlock: original.blockNumber! + 1 });
    expect(await late.step()).toBe('backing-off');
    expect(await chainAnchors.inFlight(db.pool)).toBeUndefined();
  });

  it('refuses a node on another chain than the configured one', async () => {
    await closeBatch();
    const d = driver({ chainId: 2018 });
    expect(await d.step()).toBe('backing-off');
    expect(await chainAnchors.inFlight(db.pool)).toBeUndefined();
  });
});

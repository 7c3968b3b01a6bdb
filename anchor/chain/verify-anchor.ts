/**
 * The on-chain half of proof verification (`anchorline verify --rpc URL`): checks a bundle's `evm` anchor against a
 * chain node the auditor chooses. It reads only public chain data (the chain id, the registry's code, the
 * transaction's receipt, the registry's state), so it runs wherever viem runs, a browser included.
 *
 * The facts checked come from the bundle: for anchorline-proof/2 from its anchor claim (whose signature by the log
 * key the offline `anchor` check verifies), the anchored hash being the SHA-256 of the bundle's checkpoint text and
 * the batch number the checkpoint's number; for anchorline-proof/1 from its anchor object and header chain.
 *
 * CHECKS (names are stable; each needs the offline checks' bundle-format to pass first):
 *   chain-id           the node's eth_chainId equals anchor.chainId.
 *   chain-contract     the code at anchor.contract is a known AnchorRegistry build (anchor/chain/artifacts), so
 *                      its rules hold: owner-managed submitters, batch numbers that only increase, no rewrites.
 *   chain-transaction  the receipt of anchor.txHash exists, succeeded, was sent to anchor.contract, and sits in
 *                      anchor.blockNumber with anchor.blockHash (a different block means the chain reorganised
 *                      after the bundle was made). The detail gives the confirmations: head - blockNumber + 1.
 *   chain-event        that receipt holds the registry's Anchored(submitter, batchNumber, headerHash) event with
 *                      anchor.batchNumber and the headerHash the bundle gives for that batch.
 *   chain-state        the registry, at the latest block, still returns that headerHash for (submitter,
 *                      anchor.batchNumber).
 * Together with the offline checks (the anchored header is `batch` or is linked to it by the header chain), a pass
 * means that the header committing to this leaf was public on the chain by that block.
 */
import { decodeEventLog, type Address, type Hex } from 'viem';
import type { ProofBundle, VerificationCheck } from '../bundle.ts';
import { bytesToHex } from '../encoding.ts';
import { checkpointHash, bundleCheckpointText, LOG_PROOF_FORMAT, parseAnchorClaim, type LogProofBundle } from '../log-bundle.ts';
import { parseNote } from '../log/note.ts';
import { anchorRegistryAbi } from './abi.ts';
import { RegistryClient } from './registry.ts';

export const CHAIN_CHECK_NAMES = ['chain-id', 'chain-contract', 'chain-transaction', 'chain-event', 'chain-state'] as const;

/** What a bundle says was anchored: for /1 a batch header, for /2 a checkpoint (batchNumber is its number). */
interface ChainAnchorFacts {
  chainId: number;
  contract: string;
  txHash: string;
  blockNumber: number;
  blockHash: string;
  batchNumber: number;
  /** 0x-prefixed lowercase hex of the anchored hash the bundle implies, if it holds it. */
  expectedHash: Hex | undefined;
}

export async function verifyAnchorOnChain(bundle: ProofBundle | LogProofBundle, rpcUrl: string, options: { requestTimeoutMs?: number } = {}): Promise<VerificationCheck[]> {
  const facts = anchorFacts(bundle);
  if (typeof facts === 'string') return CHAIN_CHECK_NAMES.map((name) => ({ name, ok: false, detail: `not checked: ${facts}` }));
  return verifyFactsOnChain(facts, rpcUrl, options);
}

/**
 * The chain facts a bundle states. For anchorline-proof/2 they are read from the claim (whose log signature the
 * offline `anchor` check verifies) and the expected hash is that of the bundle's own checkpoint text.
 */
function anchorFacts(bundle: ProofBundle | LogProofBundle): ChainAnchorFacts | string {
  if (bundle.format === LOG_PROOF_FORMAT) {
    const anchor = (bundle as LogProofBundle).anchor;
    if (anchor.driver !== 'evm') return 'the bundle has no chain anchor (driver local)';
    const note = parseNote(anchor.claim);
    if (!note.ok) return `the anchor claim is not a signed note (${note.reason})`;
    const claim = parseAnchorClaim(note.value.text);
    if (!claim.ok) return `the anchor claim is malformed (${claim.reason})`;
    const text = bundleCheckpointText((bundle as LogProofBundle).checkpoint);
    const c = claim.value;
    return {
      chainId: c.chainId,
      contract: c.contract,
      txHash: c.txHash,
      blockNumber: c.blockNumber,
      blockHash: c.blockHash,
      batchNumber: c.checkpointNumber,
      expectedHash: text === undefined ? undefined : (`0x${bytesToHex(checkpointHash(text))}` as Hex),
    };
  }
  const old = bundle as ProofBundle;
  const anchor = old.anchor;
  if (anchor.driver !== 'evm') return 'the bundle has no chain anchor (driver local)';
  const anchored = [old.batch, ...old.headerChain].find((signed) => signed.header.batchNumber === anchor.batchNumber);
  return { ...anchor, expectedHash: anchored ? (`0x${anchored.headerHash}` as Hex) : undefined };
}

async function verifyFactsOnChain(anchor: ChainAnchorFacts, rpcUrl: string, options: { requestTimeoutMs?: number }): Promise<VerificationCheck[]> {
  const expectedHash = anchor.expectedHash;
  const client = new RegistryClient({ rpcUrl, contract: anchor.contract as Address, requestTimeoutMs: options.requestTimeoutMs ?? 10_000 });
  const checks: VerificationCheck[] = [];
  const run = async (name: (typeof CHAIN_CHECK_NAMES)[number], fn: () => Promise<{ ok: boolean; detail: string }>): Promise<boolean> => {
    try {
      const outcome = await fn();
      checks.push({ name, ...outcome });
      return outcome.ok;
    } catch (error) {
      checks.push({ name, ok: false, detail: `could not check: ${(error as Error).message.split('\n')[0]}` });
      return false;
    }
  };
  const skipRest = (from: number, why: string): VerificationCheck[] => {
    for (const name of CHAIN_CHECK_NAMES.slice(from)) checks.push({ name, ok: false, detail: `not checked: ${why}` });
    return checks;
  };

  if (!(await run('chain-id', async () => {
    const id = await client.chainId();
    return id === anchor.chainId ? { ok: true, detail: `node is on chain ${id}` } : { ok: false, detail: `node is on chain ${id}, the anchor names chain ${anchor.chainId}` };
  }))) return skipRest(1, 'wrong or unreachable chain');

  await run('chain-contract', async () => {
    const version = await client.deployedRegistryVersion();
    if (version) return { ok: true, detail: `${anchor.contract} runs the AnchorRegistry build for evmVersion ${version}` };
    return (await client.hasCode())
      ? { ok: false, detail: `${anchor.contract} holds code that is not a known AnchorRegistry build` }
      : { ok: false, detail: `no contract at ${anchor.contract}` };
  });

  let event: { submitter: Address; headerHash: Hex } | undefined;
  const included = await run('chain-transaction', async () => {
    const receipt = await client.receipt(anchor.txHash as Hex);
    if (!receipt) return { ok: false, detail: `the node has no receipt for ${anchor.txHash}: not mined on this chain, or reorganised away` };
    if (receipt.status !== 'success') return { ok: false, detail: `transaction ${anchor.txHash} reverted` };
    if (receipt.to?.toLowerCase() !== anchor.contract.toLowerCase()) return { ok: false, detail: `transaction ${anchor.txHash} was not sent to ${anchor.contract}` };
    if (receipt.blockHash.toLowerCase() !== anchor.blockHash.toLowerCase() || Number(receipt.blockNumber) !== anchor.blockNumber) {
      return { ok: false, detail: `transaction is in block ${receipt.blockNumber} (${receipt.blockHash}), not block ${anchor.blockNumber} (${anchor.blockHash}) as the bundle says: the chain reorganised` };
    }
    for (const log of receipt.logs) {
      if (log.address.toLowerCase() !== anchor.contract.toLowerCase()) continue;
      try {
        const decoded = decodeEventLog({ abi: anchorRegistryAbi, data: log.data, topics: log.topics as [Hex, ...Hex[]] });
        if (decoded.eventName === 'Anchored' && Number(decoded.args.batchNumber) === anchor.batchNumber) {
          event = { submitter: decoded.args.submitter, headerHash: decoded.args.headerHash };
        }
      } catch {
        // another event of the registry
      }
    }
    const head = await client.blockNumber();
    return { ok: true, detail: `mined in block ${receipt.blockNumber}, ${head - receipt.blockNumber + 1n} confirmation(s)` };
  });
  if (!included) return skipRest(3, 'no transaction to read');

  if (!(await run('chain-event', async () => {
    if (!event) return { ok: false, detail: `the transaction holds no Anchored event for batch ${anchor.batchNumber}` };
    if (!expectedHash) return { ok: false, detail: `the bundle holds no header for batch ${anchor.batchNumber}` };
    return event.headerHash.toLowerCase() === expectedHash
      ? { ok: true, detail: `Anchored(${event.submitter}, batch ${anchor.batchNumber}, ${event.headerHash})` }
      : { ok: false, detail: `the Anchored event records header hash ${event.headerHash.slice(2)} for batch ${anchor.batchNumber}, the bundle's header hash is ${expectedHash.slice(2)}` };
  }))) return skipRest(4, 'no matching event');

  await run('chain-state', async () => {
    const { submitter } = event!;
    const stored = await client.headerHashOf(submitter, anchor.batchNumber);
    return stored.toLowerCase() === expectedHash
      ? { ok: true, detail: `the registry holds this header hash for ${submitter}, batch ${anchor.batchNumber}` }
      : { ok: false, detail: `the registry now holds ${stored} for ${submitter}, batch ${anchor.batchNumber}` };
  });
  return checks;
}

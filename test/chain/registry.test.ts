/**
 * AnchorRegistry.sol and its build, against a real anvil node (london, like the oldest fork a consortium chain runs):
 * the committed artifacts are exactly what solc builds from the source, the human-readable ABI matches solc's, the
 * artifact's EVM version decides whether a node accepts it, the contract enforces its rules (allow-list, ownership,
 * strictly increasing batch numbers per submitter, per-submitter records), and RegistryClient reports what the node
 * said as catalogue errors, including a node that is gone or does not answer.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createTcpServer, type AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  BaseError,
  ContractFunctionRevertedError,
  createPublicClient,
  createWalletClient,
  defineChain,
  getContractAddress,
  http,
  isAddressEqual,
  keccak256,
  parseEventLogs,
  toHex,
  zeroAddress,
  type Abi,
  type Address,
  type Hex,
  type LocalAccount,
  type TransactionReceipt,
} from 'viem';
import { formatAbiItem, formatAbiParams } from 'viem/utils';
import { anchorRegistryAbi } from '../../anchor/chain/abi.ts';
import { recogniseRegistryCode, registryArtifact, REGISTRY_EVM_VERSIONS, type RegistryEvmVersion } from '../../anchor/chain/artifacts.ts';
import { compileRegistry, REGISTRY_SOURCE_FILE } from '../../anchor/chain/compile.ts';
import { chainError, deployRegistry, RegistryClient, setRegistrySubmitter } from '../../anchor/chain/registry.ts';
import { AnchorlineError } from '../../errors/index.ts';
import { outsider, owner, startAnvil, submitter, type TestAnvil } from '../support/anvil.ts';

const ANVIL_CHAIN_ID = 31337;
const PUSH0 = 0x5f;
const zeroHash: Hex = `0x${'00'.repeat(32)}`;

/** A distinct, non-zero header hash per label. */
function headerHash(label: string): Hex {
  return keccak256(toHex(label));
}

// --- bytecode ----------------------------------------------------------------------------------------------------

function hexBytes(hex: string): Uint8Array {
  return Uint8Array.from(Buffer.from(hex.replace(/^0x/, ''), 'hex'));
}

/**
 * The opcodes of runtime code, in order, without PUSH immediates. solc appends CBOR metadata whose length is the
 * last two bytes (big-endian); that tail is data, not code, and may hold any byte, so it is cut off first.
 */
function runtimeOpcodes(deployedBytecode: string): number[] {
  const code = hexBytes(deployedBytecode);
  const metadataLength = (code[code.length - 2]! << 8) | code[code.length - 1]!;
  const end = code.length - 2 - metadataLength;
  expect(end).toBeGreaterThan(0);
  // The metadata is a CBOR map of two entries (ipfs, solc).
  expect(code[end]).toBe(0xa2);
  const opcodes: number[] = [];
  let pc = 0;
  for (; pc < end; pc += 1) {
    const opcode = code[pc]!;
    opcodes.push(opcode);
    // PUSH1 (0x60) .. PUSH32 (0x7f) carry 1..32 immediate bytes.
    if (opcode >= 0x60 && opcode <= 0x7f) pc += opcode - 0x5f;
  }
  // The last immediate ends where the metadata starts: the walk stayed in step with the code.
  expect(pc).toBe(end);
  return opcodes;
}

// --- ABI ---------------------------------------------------------------------------------------------------------

/**
 * One line per ABI entry, holding everything a caller depends on: parameter types and names (viem decodes event and
 * error arguments by name), which event parameters are indexed (they are the log topics filters match on), and a
 * function's mutability and outputs.
 */
function abiSignatures(abi: Abi): string[] {
  return abi
    .map((item) => {
      switch (item.type) {
        case 'function':
          return `function ${formatAbiItem(item, { includeName: true })} ${item.stateMutability} returns (${formatAbiParams(item.outputs, { includeName: true })})`;
        case 'event':
          return `event ${formatAbiItem(item, { includeName: true })} indexed [${item.inputs.map((p) => Boolean(p.indexed)).join(',')}]${item.anonymous ? ' anonymous' : ''}`;
        case 'error':
          return `error ${formatAbiItem(item, { includeName: true })}`;
        case 'constructor':
          return `constructor(${formatAbiParams(item.inputs, { includeName: true })}) ${item.stateMutability}`;
        default:
          return item.type;
      }
    })
    .sort();
}

// --- chain access ------------------------------------------------------------------------------------------------

function publicClientFor(anvil: TestAnvil) {
  return createPublicClient({ transport: http(anvil.url, { retryCount: 0 }) });
}

function walletFor(anvil: TestAnvil, account: LocalAccount) {
  const chain = defineChain({ id: ANVIL_CHAIN_ID, name: 'anvil', nativeCurrency: { name: 'Ether', symbol: 'ETH', decimals: 18 }, rpcUrls: { default: { http: [anvil.url] } } });
  return createWalletClient({ account, chain, transport: http(anvil.url, { retryCount: 0 }) });
}

async function receiptOf(anvil: TestAnvil, txHash: Hex): Promise<TransactionReceipt> {
  return publicClientFor(anvil).waitForTransactionReceipt({ hash: txHash, pollingInterval: 50, timeout: 10_000 });
}

async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected the call to be rejected');
}

/** The registry's custom error behind a failure (an AnchorlineError from the client, or a viem error). */
function revertOf(error: unknown): { errorName: string | undefined; args: readonly unknown[] | undefined } {
  const viemError = error instanceof AnchorlineError ? error.cause : error;
  const revert = viemError instanceof BaseError ? viemError.walk((e) => e instanceof ContractFunctionRevertedError) : undefined;
  if (!(revert instanceof ContractFunctionRevertedError)) throw new Error(`not a decoded revert: ${String(error)}`);
  return { errorName: revert.data?.errorName, args: revert.data?.args };
}

/** Every message down the cause chain, for asserting what the node itself answered. */
function causeMessages(error: unknown): string {
  const messages: string[] = [];
  for (let current: unknown = error; current instanceof Error; current = current.cause) messages.push(current.message);
  return messages.join('\n');
}

/**
 * Anchors the way the engine does: simulate, sign locally with the pending nonce, broadcast, then wait for the
 * receipt.
 */
async function anchorAs(anvil: TestAnvil, registry: RegistryClient, account: LocalAccount, batchNumber: number, hash: Hex): Promise<TransactionReceipt> {
  await registry.simulateAnchor(account, batchNumber, hash);
  const nonce = await registry.nonce(account.address, 'pending');
  const signed = await registry.signAnchor(account, ANVIL_CHAIN_ID, batchNumber, hash, nonce, 130);
  await registry.broadcast(signed.rawTransaction);
  const receipt = await receiptOf(anvil, signed.txHash);
  expect(receipt.status).toBe('success');
  return receipt;
}

/** Sends anchor() without simulating or estimating, so a transaction that reverts is still mined. */
async function sendAnchorUnchecked(anvil: TestAnvil, contract: Address, account: LocalAccount, batchNumber: number, hash: Hex): Promise<TransactionReceipt> {
  const txHash = await walletFor(anvil, account).writeContract({ address: contract, abi: anchorRegistryAbi, functionName: 'anchor', args: [BigInt(batchNumber), hash], gas: 200_000n });
  return receiptOf(anvil, txHash);
}

async function ownerOf(anvil: TestAnvil, contract: Address): Promise<Address> {
  return publicClientFor(anvil).readContract({ address: contract, abi: anchorRegistryAbi, functionName: 'owner' });
}

// -----------------------------------------------------------------------------------------------------------------

describe('AnchorRegistry build', () => {
  it('rebuilds every committed artifact byte for byte from AnchorRegistry.sol', { timeout: 120_000 }, () => {
    const sourceSha256 = createHash('sha256').update(readFileSync(REGISTRY_SOURCE_FILE)).digest('hex');
    for (const evmVersion of REGISTRY_EVM_VERSIONS) {
      const committed = registryArtifact(evmVersion);
      const built = compileRegistry(evmVersion);
      expect(built, evmVersion).toEqual(committed);
      expect(built.evmVersion).toBe(evmVersion);
      expect(committed.sourceSha256, evmVersion).toBe(sourceSha256);
      // The file on disk is exactly what `npm run build:contract` writes, so `--check` passes too.
      const file = fileURLToPath(new URL(`../../anchor/chain/artifacts/AnchorRegistry.${evmVersion}.json`, import.meta.url));
      expect(readFileSync(file, 'utf8'), evmVersion).toBe(JSON.stringify(built, null, 2) + '\n');
    }
  });

  it('uses PUSH0 only in the artifacts for shanghai and later', () => {
    const usesPush0 = Object.fromEntries(REGISTRY_EVM_VERSIONS.map((v) => [v, runtimeOpcodes(registryArtifact(v).deployedBytecode).includes(PUSH0)]));
    expect(usesPush0).toEqual({ london: false, paris: false, shanghai: true, cancun: true });
  });

  it('tells runtime code apart per EVM version, and recognises nothing else', () => {
    for (const evmVersion of REGISTRY_EVM_VERSIONS) {
      const code = registryArtifact(evmVersion).deployedBytecode;
      expect(recogniseRegistryCode(code)).toBe(evmVersion);
      expect(recogniseRegistryCode(code.toUpperCase().replace(/^0X/, '0x'))).toBe(evmVersion);
    }
    expect(recogniseRegistryCode('0x')).toBeUndefined();
    expect(recogniseRegistryCode(registryArtifact('london').bytecode)).toBeUndefined();
  });

  it('declares in abi.ts the same functions, events and errors as the ABI solc emits', () => {
    for (const evmVersion of REGISTRY_EVM_VERSIONS) {
      expect(abiSignatures(anchorRegistryAbi), evmVersion).toEqual(abiSignatures(registryArtifact(evmVersion).abi as Abi));
    }
    // The comparison is not vacuous: every kind of entry is present.
    const signatures = abiSignatures(anchorRegistryAbi);
    expect(signatures).toContain('event Anchored(address submitter, uint256 batchNumber, bytes32 headerHash) indexed [true,true,false]');
    expect(signatures).toContain('function anchor(uint256 batchNumber, bytes32 headerHash) nonpayable returns ()');
    expect(signatures).toContain('function headerHashOf(address submitter, uint256 batchNumber) view returns (bytes32 headerHash)');
    expect(signatures).toContain('error BatchNotAfterLatest(uint256 batchNumber, uint256 latestBatchNumber)');
    expect(signatures).toHaveLength(16);
  });
});

describe('deploying on a london node', () => {
  let anvil: TestAnvil;

  beforeEach(async () => {
    anvil = await startAnvil();
  });

  afterEach(async () => {
    await anvil.kill();
  });

  it('places the london artifact runtime code at the new address, recognised as london', async () => {
    const deployment = await deployRegistry({ rpcUrl: anvil.url, owner, evmVersion: 'london', pollIntervalMs: 50 });
    expect(deployment.chainId).toBe(ANVIL_CHAIN_ID);
    // The address comes from the receipt, in lower case; compare as addresses.
    expect(isAddressEqual(deployment.contract, getContractAddress({ from: owner.address, nonce: 0n }))).toBe(true);
    const code = await publicClientFor(anvil).getCode({ address: deployment.contract });
    expect(code).toBe(registryArtifact('london').deployedBytecode);
    expect(recogniseRegistryCode(code!)).toBe('london');

    const registry = new RegistryClient({ rpcUrl: anvil.url, contract: deployment.contract, requestTimeoutMs: 2_000 });
    expect(await registry.hasCode()).toBe(true);
    expect(await registry.deployedRegistryVersion()).toBe('london');
    // An address without code is neither a registry nor any version of it.
    const empty = new RegistryClient({ rpcUrl: anvil.url, contract: outsider.address, requestTimeoutMs: 2_000 });
    expect(await empty.hasCode()).toBe(false);
    expect(await empty.deployedRegistryVersion()).toBeUndefined();
  });

  it('deploys the paris artifact too: paris added no opcode the registry uses', async () => {
    const deployment = await deployRegistry({ rpcUrl: anvil.url, owner, evmVersion: 'paris', pollIntervalMs: 50 });
    const registry = new RegistryClient({ rpcUrl: anvil.url, contract: deployment.contract, requestTimeoutMs: 2_000 });
    expect(await registry.deployedRegistryVersion()).toBe('paris');
  });

  it.each(['shanghai', 'cancun'] as const satisfies readonly RegistryEvmVersion[])(
    'refuses the %s artifact: the node rejects its PUSH0 when estimating gas, and nothing is sent',
    async (evmVersion) => {
      const chain = publicClientFor(anvil);
      const blockBefore = await chain.getBlockNumber({ cacheTime: 0 });
      const started = Date.now();
      const error = await rejectionOf(deployRegistry({ rpcUrl: anvil.url, owner, evmVersion, pollIntervalMs: 50 }));
      expect(Date.now() - started).toBeLessThan(5_000);
      expect(error).toBeInstanceOf(AnchorlineError);
      // anvil answers eth_estimateGas with "EVM error NotActivated" (an opcode of a later fork): the chain refused
      // the code, the node is not unavailable, and the message points at the EVM version.
      expect(error).toMatchObject({ code: 'ANCHORLINE_ERR_CHAIN_REVERTED' });
      expect((error as AnchorlineError).message).toMatch(/^ANCHORLINE_ERR_CHAIN_REVERTED: deploy: the chain refused to execute it .*is evmVersion (shanghai|cancun) supported by this chain\?/);
      expect(causeMessages(error)).toContain('NotActivated');
      expect(await chain.getTransactionCount({ address: owner.address })).toBe(0);
      expect(await chain.getBlockNumber({ cacheTime: 0 })).toBe(blockBefore);
    },
  );

  it('mines the cancun creation code as a failed transaction when it is sent with a fixed gas limit, leaving no code', async () => {
    const txHash = await walletFor(anvil, owner).deployContract({ abi: anchorRegistryAbi, bytecode: registryArtifact('cancun').bytecode, gas: 1_000_000n });
    const receipt = await receiptOf(anvil, txHash);
    expect(receipt.status).toBe('reverted');
    const address = getContractAddress({ from: owner.address, nonce: 0n });
    expect(await publicClientFor(anvil).getCode({ address })).toBeUndefined();
  });
});

describe('AnchorRegistry rules', () => {
  let anvil: TestAnvil;
  let contract: Address;
  let deployment: Awaited<ReturnType<typeof deployRegistry>>;
  let registry: RegistryClient;

  beforeEach(async () => {
    anvil = await startAnvil();
    deployment = await deployRegistry({ rpcUrl: anvil.url, owner, evmVersion: 'london', pollIntervalMs: 50 });
    contract = deployment.contract;
    await setRegistrySubmitter({ rpcUrl: anvil.url, owner, contract, submitter: submitter.address, allowed: true, pollIntervalMs: 50 });
    registry = new RegistryClient({ rpcUrl: anvil.url, contract, requestTimeoutMs: 2_000 });
  });

  afterEach(async () => {
    await anvil.kill();
  });

  it('makes the deployer its owner, announced by OwnershipTransferred from the zero address', async () => {
    expect(await ownerOf(anvil, contract)).toBe(owner.address);
    const events = await publicClientFor(anvil).getContractEvents({ address: contract, abi: anchorRegistryAbi, eventName: 'OwnershipTransferred', fromBlock: 0n });
    expect(events).toHaveLength(1);
    expect(events[0]!.args).toEqual({ previousOwner: zeroAddress, newOwner: owner.address });
    expect(events[0]!.transactionHash).toBe(deployment.txHash);
    expect(events[0]!.blockNumber).toBe(deployment.blockNumber);
  });

  it('lets the owner allow a submitter, announced by SubmitterSet', async () => {
    expect(await registry.isSubmitter(outsider.address)).toBe(false);
    const allowed = await setRegistrySubmitter({ rpcUrl: anvil.url, owner, contract, submitter: outsider.address, allowed: true, pollIntervalMs: 50 });
    expect(await registry.isSubmitter(outsider.address)).toBe(true);
    const receipt = await receiptOf(anvil, allowed.txHash);
    const events = parseEventLogs({ abi: anchorRegistryAbi, logs: receipt.logs, eventName: 'SubmitterSet' });
    expect(events.map((e) => e.args)).toEqual([{ submitter: outsider.address, allowed: true }]);
  });

  it('lets only the owner change the allow-list', async () => {
    const error = await rejectionOf(setRegistrySubmitter({ rpcUrl: anvil.url, owner: outsider, contract, submitter: outsider.address, allowed: true, pollIntervalMs: 50 }));
    expect(error).toMatchObject({ code: 'ANCHORLINE_ERR_CHAIN_REVERTED' });
    expect(revertOf(error)).toEqual({ errorName: 'NotOwner', args: [outsider.address] });
    // An allowed submitter is not an owner either.
    const bySubmitter = await rejectionOf(setRegistrySubmitter({ rpcUrl: anvil.url, owner: submitter, contract, submitter: outsider.address, allowed: true, pollIntervalMs: 50 }));
    expect(revertOf(bySubmitter)).toEqual({ errorName: 'NotOwner', args: [submitter.address] });
    expect(await registry.isSubmitter(outsider.address)).toBe(false);
    expect(await publicClientFor(anvil).getTransactionCount({ address: outsider.address })).toBe(0);
  });

  it('refuses the zero address as a submitter and as a new owner', async () => {
    const asSubmitter = await rejectionOf(setRegistrySubmitter({ rpcUrl: anvil.url, owner, contract, submitter: zeroAddress, allowed: true, pollIntervalMs: 50 }));
    expect(asSubmitter).toMatchObject({ code: 'ANCHORLINE_ERR_CHAIN_REVERTED' });
    expect(revertOf(asSubmitter)).toEqual({ errorName: 'ZeroAddress', args: undefined });

    const asOwner = await rejectionOf(
      publicClientFor(anvil).simulateContract({ account: owner, address: contract, abi: anchorRegistryAbi, functionName: 'transferOwnership', args: [zeroAddress] }),
    );
    expect(revertOf(asOwner)).toEqual({ errorName: 'ZeroAddress', args: undefined });
    expect(chainError(asOwner, 'transferOwnership')).toMatchObject({ code: 'ANCHORLINE_ERR_CHAIN_REVERTED' });
    expect(await ownerOf(anvil, contract)).toBe(owner.address);
  });

  it('hands ownership on: only the owner can, then the new owner manages the allow-list and the old one cannot', async () => {
    const chain = publicClientFor(anvil);
    const byOutsider = await rejectionOf(
      chain.simulateContract({ account: outsider, address: contract, abi: anchorRegistryAbi, functionName: 'transferOwnership', args: [outsider.address] }),
    );
    expect(revertOf(byOutsider)).toEqual({ errorName: 'NotOwner', args: [outsider.address] });

    const txHash = await walletFor(anvil, owner).writeContract({ address: contract, abi: anchorRegistryAbi, functionName: 'transferOwnership', args: [outsider.address] });
    const receipt = await receiptOf(anvil, txHash);
    expect(receipt.status).toBe('success');
    expect(parseEventLogs({ abi: anchorRegistryAbi, logs: receipt.logs, eventName: 'OwnershipTransferred' }).map((e) => e.args)).toEqual([
      { previousOwner: owner.address, newOwner: outsider.address },
    ]);
    expect(await ownerOf(anvil, contract)).toBe(outsider.address);

    const byOldOwner = await rejectionOf(setRegistrySubmitter({ rpcUrl: anvil.url, owner, contract, submitter: owner.address, allowed: true, pollIntervalMs: 50 }));
    expect(revertOf(byOldOwner)).toEqual({ errorName: 'NotOwner', args: [owner.address] });
    const handBack = await rejectionOf(
      chain.simulateContract({ account: owner, address: contract, abi: anchorRegistryAbi, functionName: 'transferOwnership', args: [owner.address] }),
    );
    expect(revertOf(handBack)).toEqual({ errorName: 'NotOwner', args: [owner.address] });

    await setRegistrySubmitter({ rpcUrl: anvil.url, owner: outsider, contract, submitter: submitter.address, allowed: false, pollIntervalMs: 50 });
    expect(await registry.isSubmitter(submitter.address)).toBe(false);
  });

  it('refuses anchors from an address not on the allow-list, even when the transaction is mined', async () => {
    const error = await rejectionOf(registry.simulateAnchor(outsider, 1, headerHash('outsider 1')));
    expect(error).toBeInstanceOf(AnchorlineError);
    expect(error).toMatchObject({ code: 'ANCHORLINE_ERR_CHAIN_SUBMITTER_NOT_ALLOWED' });
    expect(revertOf(error)).toEqual({ errorName: 'NotSubmitter', args: [outsider.address] });
    // The owner manages the list but is not on it.
    expect(revertOf(await rejectionOf(registry.simulateAnchor(owner, 1, headerHash('owner 1'))))).toEqual({ errorName: 'NotSubmitter', args: [owner.address] });

    const receipt = await sendAnchorUnchecked(anvil, contract, outsider, 1, headerHash('outsider 1'));
    expect(receipt.status).toBe('reverted');
    expect(receipt.logs).toEqual([]);
    expect(await registry.headerHashOf(outsider.address, 1)).toBe(zeroHash);
    expect(await registry.latestBatchOf(outsider.address)).toBe(0);
  });

  it('records an allowed submitter\'s anchor and announces it with Anchored', async () => {
    const hash = headerHash('batch 1');
    const receipt = await anchorAs(anvil, registry, submitter, 1, hash);
    expect(await registry.headerHashOf(submitter.address, 1)).toBe(hash);
    expect(await registry.latestBatchOf(submitter.address)).toBe(1);
    const events = parseEventLogs({ abi: anchorRegistryAbi, logs: receipt.logs });
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ eventName: 'Anchored', address: contract.toLowerCase(), args: { submitter: submitter.address, batchNumber: 1n, headerHash: hash } });
    // The indexed fields are the topics the client filters on.
    expect(events[0]!.topics).toHaveLength(3);
    // Reading at the block before the anchor shows nothing there yet.
    expect(await registry.headerHashOf(submitter.address, 1, receipt.blockNumber - 1n)).toBe(zeroHash);
    expect(await registry.headerHashOf(submitter.address, 1, receipt.blockNumber)).toBe(hash);
  });

  it('requires batch numbers to increase strictly per submitter, and allows skipping ahead', async () => {
    await anchorAs(anvil, registry, submitter, 1, headerHash('batch 1'));

    const same = await rejectionOf(registry.simulateAnchor(submitter, 1, headerHash('batch 1 rewritten')));
    expect(same).toMatchObject({ code: 'ANCHORLINE_ERR_CHAIN_CONFLICT' });
    expect(revertOf(same)).toEqual({ errorName: 'BatchNotAfterLatest', args: [1n, 1n] });
    // Even the same hash again is not accepted: an anchor happens once.
    expect(revertOf(await rejectionOf(registry.simulateAnchor(submitter, 1, headerHash('batch 1'))))).toEqual({ errorName: 'BatchNotAfterLatest', args: [1n, 1n] });

    // An engine that was offline anchors only its newest batch.
    await anchorAs(anvil, registry, submitter, 5, headerHash('batch 5'));
    expect(await registry.latestBatchOf(submitter.address)).toBe(5);
    for (const skipped of [2, 3, 4]) expect(await registry.headerHashOf(submitter.address, skipped)).toBe(zeroHash);

    const lower = await rejectionOf(registry.simulateAnchor(submitter, 3, headerHash('batch 3')));
    expect(lower).toMatchObject({ code: 'ANCHORLINE_ERR_CHAIN_CONFLICT' });
    expect(revertOf(lower)).toEqual({ errorName: 'BatchNotAfterLatest', args: [3n, 5n] });

    // Sent anyway, the rewrite is mined as a failure and the record stays.
    const rewrite = await sendAnchorUnchecked(anvil, contract, submitter, 1, headerHash('batch 1 rewritten'));
    expect(rewrite.status).toBe('reverted');
    expect(await registry.headerHashOf(submitter.address, 1)).toBe(headerHash('batch 1'));
    expect(await registry.latestBatchOf(submitter.address)).toBe(5);

    await anchorAs(anvil, registry, submitter, 6, headerHash('batch 6'));
    expect(await registry.latestBatchOf(submitter.address)).toBe(6);
  });

  it('refuses batch number 0: latestBatchOf is 0 before the first anchor, so batches start at 1', async () => {
    const error = await rejectionOf(registry.simulateAnchor(submitter, 0, headerHash('batch 0')));
    expect(error).toMatchObject({ code: 'ANCHORLINE_ERR_CHAIN_CONFLICT' });
    expect(revertOf(error)).toEqual({ errorName: 'BatchNotAfterLatest', args: [0n, 0n] });
  });

  it('refuses a zero header hash', async () => {
    const error = await rejectionOf(registry.simulateAnchor(submitter, 1, zeroHash));
    expect(error).toMatchObject({ code: 'ANCHORLINE_ERR_CHAIN_REVERTED' });
    expect(revertOf(error)).toEqual({ errorName: 'ZeroHeaderHash', args: undefined });
    expect(await registry.latestBatchOf(submitter.address)).toBe(0);
  });

  it('keys records by submitter: two members anchor batch 1 with different hashes without touching each other', async () => {
    const member = outsider;
    await setRegistrySubmitter({ rpcUrl: anvil.url, owner, contract, submitter: member.address, allowed: true, pollIntervalMs: 50 });
    await anchorAs(anvil, registry, submitter, 1, headerHash('first member batch 1'));
    await anchorAs(anvil, registry, member, 1, headerHash('second member batch 1'));
    expect(await registry.headerHashOf(submitter.address, 1)).toBe(headerHash('first member batch 1'));
    expect(await registry.headerHashOf(member.address, 1)).toBe(headerHash('second member batch 1'));

    // One member running far ahead does not block the other.
    await anchorAs(anvil, registry, member, 1_000, headerHash('second member batch 1000'));
    expect(await registry.latestBatchOf(member.address)).toBe(1_000);
    expect(await registry.latestBatchOf(submitter.address)).toBe(1);
    await anchorAs(anvil, registry, submitter, 2, headerHash('first member batch 2'));
    expect(await registry.headerHashOf(member.address, 2)).toBe(zeroHash);
    expect(await registry.headerHashOf(submitter.address, 1_000)).toBe(zeroHash);

    const first = await registry.findAnchored(submitter.address, 1);
    const second = await registry.findAnchored(member.address, 1);
    expect(first).toBeDefined();
    expect(second).toBeDefined();
    expect(first!.txHash).not.toBe(second!.txHash);
  });

  it('stops a removed submitter from anchoring but keeps its records, and a re-allowed one cannot rewrite them', async () => {
    await anchorAs(anvil, registry, submitter, 1, headerHash('batch 1'));
    await anchorAs(anvil, registry, submitter, 2, headerHash('batch 2'));
    const removed = await setRegistrySubmitter({ rpcUrl: anvil.url, owner, contract, submitter: submitter.address, allowed: false, pollIntervalMs: 50 });
    const removal = parseEventLogs({ abi: anchorRegistryAbi, logs: (await receiptOf(anvil, removed.txHash)).logs, eventName: 'SubmitterSet' });
    expect(removal.map((e) => e.args)).toEqual([{ submitter: submitter.address, allowed: false }]);

    expect(await registry.isSubmitter(submitter.address)).toBe(false);
    const error = await rejectionOf(registry.simulateAnchor(submitter, 3, headerHash('batch 3')));
    expect(error).toMatchObject({ code: 'ANCHORLINE_ERR_CHAIN_SUBMITTER_NOT_ALLOWED' });
    expect(revertOf(error)).toEqual({ errorName: 'NotSubmitter', args: [submitter.address] });
    expect(await registry.headerHashOf(submitter.address, 1)).toBe(headerHash('batch 1'));
    expect(await registry.headerHashOf(submitter.address, 2)).toBe(headerHash('batch 2'));
    expect(await registry.latestBatchOf(submitter.address)).toBe(2);
    expect(await registry.findAnchored(submitter.address, 2)).toBeDefined();

    await setRegistrySubmitter({ rpcUrl: anvil.url, owner, contract, submitter: submitter.address, allowed: true, pollIntervalMs: 50 });
    expect(revertOf(await rejectionOf(registry.simulateAnchor(submitter, 2, headerHash('batch 2 rewritten'))))).toEqual({ errorName: 'BatchNotAfterLatest', args: [2n, 2n] });
    await anchorAs(anvil, registry, submitter, 3, headerHash('batch 3'));
  });

  it('finds where a batch was anchored, and knows mined transactions but not made-up ones', async () => {
    expect(await registry.findAnchored(submitter.address, 1)).toBeUndefined();
    const first = await anchorAs(anvil, registry, submitter, 1, headerHash('batch 1'));
    await anvil.mine(3);
    const second = await anchorAs(anvil, registry, submitter, 2, headerHash('batch 2'));

    expect(await registry.findAnchored(submitter.address, 1)).toEqual({ txHash: first.transactionHash, blockNumber: first.blockNumber, blockHash: first.blockHash });
    expect(await registry.findAnchored(submitter.address, 2)).toEqual({ txHash: second.transactionHash, blockNumber: second.blockNumber, blockHash: second.blockHash });
    expect(await registry.findAnchored(submitter.address, 3)).toBeUndefined();
    expect(await registry.findAnchored(outsider.address, 1)).toBeUndefined();

    expect(await registry.knowsTransaction(first.transactionHash)).toBe(true);
    expect(await registry.receipt(first.transactionHash)).toMatchObject({ status: 'success', blockNumber: first.blockNumber, blockHash: first.blockHash, to: contract.toLowerCase() });
    const madeUp = headerHash('no such transaction');
    expect(await registry.knowsTransaction(madeUp)).toBe(false);
    expect(await registry.receipt(madeUp)).toBeUndefined();
  });

  it('knows a transaction waiting in the pool, which has no receipt until it is mined', async () => {
    await anvil.rpc('evm_setAutomine', [false]);
    const hash = headerHash('batch 1');
    await registry.simulateAnchor(submitter, 1, hash);
    const signed = await registry.signAnchor(submitter, ANVIL_CHAIN_ID, 1, hash, await registry.nonce(submitter.address, 'pending'), 130);
    await registry.broadcast(signed.rawTransaction);
    // Broadcasting the same bytes again is not an error.
    await registry.broadcast(signed.rawTransaction);
    expect(await registry.knowsTransaction(signed.txHash)).toBe(true);
    expect(await registry.receipt(signed.txHash)).toBeUndefined();
    expect(await registry.findAnchored(submitter.address, 1)).toBeUndefined();
    await anvil.mine(1);
    expect(await registry.receipt(signed.txHash)).toMatchObject({ status: 'success' });
    expect((await registry.findAnchored(submitter.address, 1))?.txHash).toBe(signed.txHash);
  });
});

describe('a node mining a block per second', () => {
  let anvil: TestAnvil;

  beforeAll(async () => {
    anvil = await startAnvil({ blockTimeSeconds: 1 });
  });

  afterAll(async () => {
    await anvil.kill();
  });

  it('deploys, allows a submitter and takes an anchor within a few seconds', async () => {
    const started = Date.now();
    const deployment = await deployRegistry({ rpcUrl: anvil.url, owner, evmVersion: 'london', pollIntervalMs: 50 });
    const allowed = await setRegistrySubmitter({ rpcUrl: anvil.url, owner, contract: deployment.contract, submitter: submitter.address, allowed: true, pollIntervalMs: 50 });
    expect(allowed.blockNumber).toBeGreaterThan(deployment.blockNumber);
    const registry = new RegistryClient({ rpcUrl: anvil.url, contract: deployment.contract, requestTimeoutMs: 2_000 });
    expect(await registry.deployedRegistryVersion()).toBe('london');
    expect(await registry.isSubmitter(submitter.address)).toBe(true);

    const hash = headerHash('batch 1');
    await registry.simulateAnchor(submitter, 1, hash);
    const signed = await registry.signAnchor(submitter, ANVIL_CHAIN_ID, 1, hash, await registry.nonce(submitter.address, 'pending'), 130);
    await registry.broadcast(signed.rawTransaction);
    const sent = Date.now();
    expect(await registry.knowsTransaction(signed.txHash)).toBe(true);
    let receipt = await registry.receipt(signed.txHash);
    while (receipt === undefined && Date.now() - sent < 5_000) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      receipt = await registry.receipt(signed.txHash);
    }
    expect(receipt).toMatchObject({ status: 'success' });
    expect(receipt!.blockNumber).toBeGreaterThan(allowed.blockNumber);
    expect(await registry.headerHashOf(submitter.address, 1)).toBe(hash);
    expect(await registry.findAnchored(submitter.address, 1)).toEqual({ txHash: signed.txHash, blockNumber: receipt!.blockNumber, blockHash: receipt!.blockHash });
    // Three transactions, each waiting for the next block: about three seconds.
    expect(Date.now() - started).toBeLessThan(8_000);
  });
});

describe('an unreachable node', () => {
  const requestTimeoutMs = 300;

  /** Every RegistryClient call, each expected to fail fast with CHAIN_UNAVAILABLE. */
  async function expectAllUnavailable(rpcUrl: string, contract: Address): Promise<void> {
    const registry = new RegistryClient({ rpcUrl, contract, requestTimeoutMs });
    const txHash = headerHash('some transaction');
    const rawTransaction = await submitter.signTransaction({ type: 'eip1559', chainId: ANVIL_CHAIN_ID, nonce: 0, to: contract, gas: 100_000n, maxFeePerGas: 1n, maxPriorityFeePerGas: 1n });
    const calls: Record<string, () => Promise<unknown>> = {
      chainId: () => registry.chainId(),
      blockNumber: () => registry.blockNumber(),
      deployedRegistryVersion: () => registry.deployedRegistryVersion(),
      hasCode: () => registry.hasCode(),
      headerHashOf: () => registry.headerHashOf(submitter.address, 1),
      latestBatchOf: () => registry.latestBatchOf(submitter.address),
      isSubmitter: () => registry.isSubmitter(submitter.address),
      receipt: () => registry.receipt(txHash),
      knowsTransaction: () => registry.knowsTransaction(txHash),
      nonce: () => registry.nonce(submitter.address, 'pending'),
      findAnchored: () => registry.findAnchored(submitter.address, 1),
      simulateAnchor: () => registry.simulateAnchor(submitter, 1, headerHash('batch 1')),
      signAnchor: () => registry.signAnchor(submitter, ANVIL_CHAIN_ID, 1, headerHash('batch 1'), 0, 130),
      broadcast: () => registry.broadcast(rawTransaction),
      deployRegistry: () => deployRegistry({ rpcUrl, owner, evmVersion: 'london', requestTimeoutMs, pollIntervalMs: 50 }),
      setRegistrySubmitter: () => setRegistrySubmitter({ rpcUrl, owner, contract, submitter: submitter.address, allowed: true, requestTimeoutMs, pollIntervalMs: 50 }),
    };
    for (const [name, call] of Object.entries(calls)) {
      const started = Date.now();
      const error = await rejectionOf(call());
      expect(error, name).toBeInstanceOf(AnchorlineError);
      expect((error as AnchorlineError).code, name).toBe('ANCHORLINE_ERR_CHAIN_UNAVAILABLE');
      expect(Date.now() - started, name).toBeLessThan(requestTimeoutMs + 1_500);
    }
  }

  describe('after the node was killed', () => {
    let anvil: TestAnvil;

    beforeEach(async () => {
      anvil = await startAnvil();
    });

    afterEach(async () => {
      await anvil.kill();
    });

    it('fails every call with CHAIN_UNAVAILABLE', async () => {
      const deployment = await deployRegistry({ rpcUrl: anvil.url, owner, evmVersion: 'london', pollIntervalMs: 50 });
      const registry = new RegistryClient({ rpcUrl: anvil.url, contract: deployment.contract, requestTimeoutMs });
      expect(await registry.deployedRegistryVersion()).toBe('london');
      await anvil.kill();
      await expectAllUnavailable(anvil.url, deployment.contract);
    });
  });

  it('fails every call with CHAIN_UNAVAILABLE on a closed port', async () => {
    const probe = createTcpServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const { port } = probe.address() as AddressInfo;
    await new Promise<void>((resolve, reject) => probe.close((error) => (error ? reject(error) : resolve())));
    await expectAllUnavailable(`http://127.0.0.1:${port}`, getContractAddress({ from: owner.address, nonce: 0n }));
  });

  describe('that accepts connections but never answers', () => {
    let silent: Server;
    let url: string;

    beforeAll(async () => {
      // Holds every request open, like a node stuck on a slow disk.
      silent = createHttpServer(() => undefined);
      await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
      url = `http://127.0.0.1:${(silent.address() as AddressInfo).port}`;
    });

    afterAll(async () => {
      silent.closeAllConnections();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    });

    it('gives up after requestTimeoutMs with CHAIN_UNAVAILABLE', async () => {
      const registry = new RegistryClient({ rpcUrl: url, contract: getContractAddress({ from: owner.address, nonce: 0n }), requestTimeoutMs });
      const started = Date.now();
      const error = await rejectionOf(registry.blockNumber());
      const elapsed = Date.now() - started;
      expect(error).toMatchObject({ code: 'ANCHORLINE_ERR_CHAIN_UNAVAILABLE' });
      expect(elapsed).toBeGreaterThanOrEqual(requestTimeoutMs - 20);
      expect(elapsed).toBeLessThan(requestTimeoutMs + 1_000);
      await expectAllUnavailable(url, registry.contract);
    });
  });
});

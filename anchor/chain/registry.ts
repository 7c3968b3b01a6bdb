/**
 * A client for one deployed AnchorRegistry, over viem. It only reads the chain and sends transactions signed
 * locally: the anchor driver (workers/chain-anchor.ts) decides what to send and keeps every step in PostgreSQL, so
 * that a crash at any point can be reconciled from the database and the chain.
 *
 * Failures come out as AnchorlineErrors: an unreachable or slow node is CHAIN_UNAVAILABLE; a revert is decoded to
 * the registry's custom error (NotSubmitter -> CHAIN_SUBMITTER_NOT_ALLOWED, BatchNotAfterLatest -> CHAIN_CONFLICT).
 */
import {
  BaseError,
  ContractFunctionRevertedError,
  ExecutionRevertedError,
  getAddress,
  HttpRequestError,
  RpcRequestError,
  TimeoutError,
  TransactionReceiptNotFoundError,
  TransactionNotFoundError,
  createPublicClient,
  createWalletClient,
  defineChain,
  encodeFunctionData,
  http,
  keccak256,
  type Account,
  type Address,
  type Hex,
  type LocalAccount,
  type PublicClient,
} from 'viem';
import { AnchorlineError } from '../../errors/index.ts';
import { anchorRegistryAbi } from './abi.ts';
import { recogniseRegistryCode, registryArtifact, type RegistryEvmVersion } from './artifacts.ts';

export interface RegistryClientOptions {
  rpcUrl: string;
  contract: Address;
  /** Timeout of one JSON-RPC request, in ms. */
  requestTimeoutMs: number;
  /** Log searches start at this block (the registry's deployment block). Default 0. */
  fromBlock?: number;
  /** Blocks per eth_getLogs request: nodes cap the range (Besu's --rpc-max-logs-range, 1000 by default). Default 1000. */
  logRangeBlocks?: number;
}

export interface Inclusion {
  txHash: Hex;
  blockNumber: bigint;
  blockHash: Hex;
}

export interface SignedAnchorTransaction {
  rawTransaction: Hex;
  txHash: Hex;
  nonce: number;
}

/** A plain transport: viem's own retries would hide an unavailable node behind long waits; the driver backs off. */
function transport(rpcUrl: string, requestTimeoutMs: number) {
  return http(rpcUrl, { timeout: requestTimeoutMs, retryCount: 0 });
}

/** Maps viem failures to catalogue codes; everything else passes through. */
export function chainError(error: unknown, what: string): unknown {
  if (error instanceof AnchorlineError) return error;
  if (error instanceof BaseError) {
    const revert = error.walk((e) => e instanceof ContractFunctionRevertedError);
    if (revert instanceof ContractFunctionRevertedError) {
      const name = revert.data?.errorName;
      if (name === 'NotSubmitter') return new AnchorlineError('ANCHORLINE_ERR_CHAIN_SUBMITTER_NOT_ALLOWED', `${what}: the registry owner has not allowed this submitter address`, { cause: error });
      if (name === 'BatchNotAfterLatest') return new AnchorlineError('ANCHORLINE_ERR_CHAIN_CONFLICT', `${what}: the registry already holds this or a later batch for this submitter`, { cause: error });
      return new AnchorlineError('ANCHORLINE_ERR_CHAIN_REVERTED', `${what}: reverted${name ? ` with ${name}` : ''}`, { cause: error });
    }
    // The node ran the call and it failed: a revert it did not decode, or an opcode this chain's fork lacks (anvil:
    // "EVM error NotActivated", geth/Besu: "invalid opcode"). The node is fine; the transaction is not.
    const executionFailure = error.walk((e) => e instanceof ExecutionRevertedError || (e instanceof BaseError && /execution reverted|NotActivated|invalid opcode|EVM error/i.test(`${e.shortMessage} ${e.details ?? ''}`)));
    if (executionFailure) {
      return new AnchorlineError('ANCHORLINE_ERR_CHAIN_REVERTED', `${what}: the chain refused to execute it (${(executionFailure as BaseError).details || (executionFailure as BaseError).shortMessage})`, { cause: error });
    }
    const transportFailure = error.walk((e) => e instanceof HttpRequestError || e instanceof TimeoutError);
    if (transportFailure) return new AnchorlineError('ANCHORLINE_ERR_CHAIN_UNAVAILABLE', `${what}: ${(transportFailure as BaseError).shortMessage}`, { cause: error });
    const rpcFailure = error.walk((e) => e instanceof RpcRequestError);
    if (rpcFailure) return new AnchorlineError('ANCHORLINE_ERR_CHAIN_UNAVAILABLE', `${what}: node answered with an error: ${(rpcFailure as BaseError).shortMessage}`, { cause: error });
  }
  return error;
}

async function onChain<T>(what: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    throw chainError(error, what);
  }
}

export class RegistryClient {
  readonly contract: Address;
  readonly rpcUrl: string;
  private readonly client: PublicClient;
  private readonly fromBlock: bigint;
  private readonly logRangeBlocks: bigint;

  constructor(options: RegistryClientOptions) {
    this.contract = options.contract;
    this.rpcUrl = options.rpcUrl;
    this.fromBlock = BigInt(options.fromBlock ?? 0);
    this.logRangeBlocks = BigInt(Math.max(1, options.logRangeBlocks ?? 1_000));
    this.client = createPublicClient({ transport: transport(options.rpcUrl, options.requestTimeoutMs) });
  }

  chainId(): Promise<number> {
    return onChain('eth_chainId', () => this.client.getChainId());
  }

  blockNumber(): Promise<bigint> {
    // cacheTime 0: viem otherwise serves a block number up to its polling interval old.
    return onChain('eth_blockNumber', () => this.client.getBlockNumber({ cacheTime: 0 }));
  }

  /** The EVM version of the committed artifact whose runtime code is deployed at the contract address, if any. */
  async deployedRegistryVersion(): Promise<RegistryEvmVersion | undefined> {
    const code = await onChain('eth_getCode', () => this.client.getCode({ address: this.contract }));
    return code ? recogniseRegistryCode(code) : undefined;
  }

  async hasCode(): Promise<boolean> {
    const code = await onChain('eth_getCode', () => this.client.getCode({ address: this.contract }));
    return code !== undefined && code !== '0x';
  }

  headerHashOf(submitter: Address, batchNumber: number, blockNumber?: bigint): Promise<Hex> {
    return onChain('headerHashOf', () =>
      this.client.readContract({ address: this.contract, abi: anchorRegistryAbi, functionName: 'headerHashOf', args: [submitter, BigInt(batchNumber)], blockNumber }),
    );
  }

  async latestBatchOf(submitter: Address): Promise<number> {
    return Number(await onChain('latestBatchOf', () => this.client.readContract({ address: this.contract, abi: anchorRegistryAbi, functionName: 'latestBatchOf', args: [submitter] })));
  }

  isSubmitter(submitter: Address): Promise<boolean> {
    return onChain('isSubmitter', () => this.client.readContract({ address: this.contract, abi: anchorRegistryAbi, functionName: 'isSubmitter', args: [submitter] }));
  }

  /** The receipt of `txHash`, or undefined while it is not in the node's canonical chain. */
  async receipt(txHash: Hex): Promise<{ status: 'success' | 'reverted'; blockNumber: bigint; blockHash: Hex; to: Address | null; logs: Array<{ address: Address; topics: Hex[]; data: Hex }> } | undefined> {
    try {
      return await this.client.getTransactionReceipt({ hash: txHash });
    } catch (error) {
      if (error instanceof BaseError && error.walk((e) => e instanceof TransactionReceiptNotFoundError)) return undefined;
      throw chainError(error, 'eth_getTransactionReceipt');
    }
  }

  /** True while the node knows the transaction (pending in its pool, or mined). */
  async knowsTransaction(txHash: Hex): Promise<boolean> {
    try {
      await this.client.getTransaction({ hash: txHash });
      return true;
    } catch (error) {
      if (error instanceof BaseError && error.walk((e) => e instanceof TransactionNotFoundError)) return false;
      throw chainError(error, 'eth_getTransactionByHash');
    }
  }

  nonce(address: Address, blockTag: 'latest' | 'pending'): Promise<number> {
    return onChain('eth_getTransactionCount', () => this.client.getTransactionCount({ address, blockTag }));
  }

  /**
   * Where the registry recorded `submitter`'s `batchNumber`, from its Anchored event: searched from the newest block
   * back to `fromBlock`, one window of `logRangeBlocks` at a time (a recent anchor is found in the first request).
   */
  async findAnchored(submitter: Address, batchNumber: number): Promise<Inclusion | undefined> {
    let to = await this.blockNumber();
    while (to >= this.fromBlock) {
      const from = to - this.logRangeBlocks + 1n > this.fromBlock ? to - this.logRangeBlocks + 1n : this.fromBlock;
      const logs = await onChain('eth_getLogs', () =>
        this.client.getContractEvents({ address: this.contract, abi: anchorRegistryAbi, eventName: 'Anchored', args: { submitter, batchNumber: BigInt(batchNumber) }, fromBlock: from, toBlock: to }),
      );
      const log = logs.at(-1);
      if (log && log.blockHash !== null && log.blockNumber !== null && log.transactionHash !== null) {
        return { txHash: log.transactionHash, blockNumber: log.blockNumber, blockHash: log.blockHash };
      }
      to = from - 1n;
    }
    return undefined;
  }

  /** Runs anchor() as a call first, so a transaction that would revert is never sent; throws the decoded reason. */
  async simulateAnchor(account: Account, batchNumber: number, headerHash: Hex): Promise<void> {
    await onChain('anchor (simulated)', () =>
      this.client.simulateContract({ account, address: this.contract, abi: anchorRegistryAbi, functionName: 'anchor', args: [BigInt(batchNumber), headerHash] }),
    );
  }

  /**
   * Signs (locally; nothing is sent) an anchor() transaction with the given nonce. The caller records it before
   * broadcasting, so the hash is known even if the process dies right after sending. Fees follow the chain: an
   * EIP-1559 transaction where blocks carry a base fee, a legacy one otherwise (Besu free-gas networks).
   */
  async signAnchor(account: LocalAccount, chainId: number, batchNumber: number, headerHash: Hex, nonce: number, gasHeadroomPercent: number): Promise<SignedAnchorTransaction> {
    const data = encodeFunctionData({ abi: anchorRegistryAbi, functionName: 'anchor', args: [BigInt(batchNumber), headerHash] });
    // Estimated with the ABI, so a revert here (the chain changed since the simulation) is decoded like one there.
    const estimate = await onChain('eth_estimateGas', () =>
      this.client.estimateContractGas({ account, address: this.contract, abi: anchorRegistryAbi, functionName: 'anchor', args: [BigInt(batchNumber), headerHash] }),
    );
    const gas = (estimate * BigInt(gasHeadroomPercent)) / 100n;
    const block = await onChain('eth_getBlockByNumber', () => this.client.getBlock({ blockTag: 'latest' }));
    let rawTransaction: Hex;
    if (block.baseFeePerGas !== null && block.baseFeePerGas !== undefined) {
      const tip = await onChain('eth_maxPriorityFeePerGas', () => this.client.estimateMaxPriorityFeePerGas().catch(() => 0n));
      rawTransaction = await account.signTransaction({ type: 'eip1559', chainId, nonce, to: this.contract, data, gas, maxPriorityFeePerGas: tip, maxFeePerGas: block.baseFeePerGas * 2n + tip });
    } else {
      const gasPrice = await onChain('eth_gasPrice', () => this.client.getGasPrice());
      rawTransaction = await account.signTransaction({ type: 'legacy', chainId, nonce, to: this.contract, data, gas, gasPrice });
    }
    return { rawTransaction, txHash: keccak256(rawTransaction), nonce };
  }

  /**
   * Broadcasts a signed transaction. A node that already has it (a re-broadcast after a crash) answers with an
   * error that means success here, so that is not reported.
   */
  async broadcast(rawTransaction: Hex): Promise<void> {
    try {
      await this.client.sendRawTransaction({ serializedTransaction: rawTransaction });
    } catch (error) {
      const text = error instanceof BaseError ? `${error.shortMessage} ${error.details ?? ''}` : String(error);
      if (/already known|already imported|known transaction/i.test(text)) return;
      if (/nonce too low|nonce is too low|transaction already exists/i.test(text)) {
        throw new AnchorlineError('ANCHORLINE_ERR_CHAIN_REVERTED', 'broadcast: the nonce was used by another transaction', { cause: error });
      }
      throw chainError(error, 'eth_sendRawTransaction');
    }
  }
}

/** A viem chain for the node at `rpcUrl`, from its own chain id; for the owner's one-off transactions. */
async function walletFor(rpcUrl: string, account: LocalAccount, requestTimeoutMs: number) {
  const publicClient = createPublicClient({ transport: transport(rpcUrl, requestTimeoutMs) });
  const id = await onChain('eth_chainId', () => publicClient.getChainId());
  const chain = defineChain({ id, name: `chain ${id}`, nativeCurrency: { name: 'Ether', symbol: 'ETH', decimals: 18 }, rpcUrls: { default: { http: [rpcUrl] } } });
  const wallet = createWalletClient({ account, chain, transport: transport(rpcUrl, requestTimeoutMs) });
  return { publicClient, wallet, chainId: id };
}

export interface OwnerTransactionOptions {
  rpcUrl: string;
  owner: LocalAccount;
  requestTimeoutMs?: number;
  /** Receipt polling interval in ms; viem can miss receipts when polling faster than about 50 ms. */
  pollIntervalMs?: number;
}

/** Deploys the committed AnchorRegistry artifact for `evmVersion`; the deployer becomes its owner. */
export async function deployRegistry(options: OwnerTransactionOptions & { evmVersion: RegistryEvmVersion }): Promise<{ chainId: number; contract: Address; txHash: Hex; blockNumber: bigint }> {
  const { publicClient, wallet, chainId } = await walletFor(options.rpcUrl, options.owner, options.requestTimeoutMs ?? 10_000);
  const artifact = registryArtifact(options.evmVersion);
  const txHash = await onChain('deploy', () => wallet.deployContract({ abi: anchorRegistryAbi, bytecode: artifact.bytecode })).catch((error: unknown) => {
    if (error instanceof AnchorlineError && error.code === 'ANCHORLINE_ERR_CHAIN_REVERTED') {
      throw new AnchorlineError('ANCHORLINE_ERR_CHAIN_REVERTED', `${error.detail}; is evmVersion ${options.evmVersion} supported by this chain? Deploy the artifact of its fork or an older one`, { cause: error });
    }
    throw error;
  });
  const receipt = await onChain('deploy receipt', () => publicClient.waitForTransactionReceipt({ hash: txHash, pollingInterval: Math.max(50, options.pollIntervalMs ?? 500) }));
  if (receipt.status !== 'success' || !receipt.contractAddress) {
    throw new AnchorlineError('ANCHORLINE_ERR_CHAIN_REVERTED', `deploying the registry failed in block ${receipt.blockNumber}; is evmVersion ${options.evmVersion} supported by this chain?`);
  }
  return { chainId, contract: getAddress(receipt.contractAddress), txHash, blockNumber: receipt.blockNumber };
}

/** Allows (or removes) a submitter; only the registry owner can. */
export async function setRegistrySubmitter(options: OwnerTransactionOptions & { contract: Address; submitter: Address; allowed: boolean }): Promise<{ txHash: Hex; blockNumber: bigint }> {
  const { publicClient, wallet } = await walletFor(options.rpcUrl, options.owner, options.requestTimeoutMs ?? 10_000);
  const { request } = await onChain('setSubmitter (simulated)', () =>
    publicClient.simulateContract({ account: options.owner, address: options.contract, abi: anchorRegistryAbi, functionName: 'setSubmitter', args: [options.submitter, options.allowed] }),
  );
  const txHash = await onChain('setSubmitter', () => wallet.writeContract(request));
  const receipt = await onChain('setSubmitter receipt', () => publicClient.waitForTransactionReceipt({ hash: txHash, pollingInterval: Math.max(50, options.pollIntervalMs ?? 500) }));
  if (receipt.status !== 'success') throw new AnchorlineError('ANCHORLINE_ERR_CHAIN_REVERTED', `setSubmitter reverted in block ${receipt.blockNumber}`);
  return { txHash, blockNumber: receipt.blockNumber };
}

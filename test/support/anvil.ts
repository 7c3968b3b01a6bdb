/**
 * A real local EVM node for tests: anvil from npm (@foundry-rs/anvil) on loopback, one process per caller, so a
 * test may kill it, restart it on the same port, mine by hand or reorg without touching anyone else.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { privateKeyToAccount } from 'viem/accounts';
import type { Address, Hex, LocalAccount } from 'viem';
import { deployRegistry, setRegistrySubmitter } from '../../anchor/chain/registry.ts';

/** anvil's well-known development keys (its default mnemonic): public, funded on every anvil chain. */
export const ANVIL_KEYS = {
  owner: '0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80',
  submitter: '0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d',
  outsider: '0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a',
} as const satisfies Record<string, Hex>;

export const owner: LocalAccount = privateKeyToAccount(ANVIL_KEYS.owner);
export const submitter: LocalAccount = privateKeyToAccount(ANVIL_KEYS.submitter);
export const outsider: LocalAccount = privateKeyToAccount(ANVIL_KEYS.outsider);

export interface AnvilOptions {
  /** Mine a block every this many seconds; default: a block per transaction (automine). */
  blockTimeSeconds?: number;
  /** Reuse a port (restarting a node "in place"). */
  port?: number;
}

export interface TestAnvil {
  url: string;
  port: number;
  process: ChildProcess;
  /** A JSON-RPC call, e.g. rpc('evm_mine') or rpc('anvil_reorg', [1, []]). */
  rpc<T = unknown>(method: string, params?: unknown[]): Promise<T>;
  mine(blocks?: number): Promise<void>;
  /** SIGKILL: the node disappears with its pending transactions, as in a crash. */
  kill(): Promise<void>;
}

/**
 * The native anvil binary from its platform package. Spawned directly, not through the npm wrapper (bin.mjs),
 * because killing the wrapper would leave the node it started running.
 */
function anvilBinary(): string {
  const fromHere = createRequire(import.meta.url);
  const fromAnvil = createRequire(fromHere.resolve('@foundry-rs/anvil/package.json'));
  const arch = process.arch === 'x64' ? 'amd64' : process.arch;
  return fromAnvil.resolve(`@foundry-rs/anvil-${process.platform}-${arch}/bin/anvil`);
}

export async function startAnvil(options: AnvilOptions = {}): Promise<TestAnvil> {
  const args = ['--host', '127.0.0.1', '--port', String(options.port ?? 0), '--hardfork', 'london', '--base-fee', '0', '--gas-price', '0'];
  if (options.blockTimeSeconds) args.push('--block-time', String(options.blockTimeSeconds));
  // Port 0 lets the OS choose; anvil's banner names the port it got.
  const child = spawn(anvilBinary(), args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const port = await new Promise<number>((resolve, reject) => {
    let output = '';
    const timer = setTimeout(() => reject(new Error(`anvil did not start: ${output.slice(-500)}`)), 15_000);
    const onData = (chunk: Buffer): void => {
      output += chunk.toString();
      const match = /Listening on 127\.0\.0\.1:(\d+)/.exec(output);
      if (match) {
        clearTimeout(timer);
        child.stdout!.off('data', onData);
        child.stdout!.resume();
        resolve(Number(match[1]));
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`anvil exited with ${code}: ${output.slice(-500)}`));
    });
  });
  const url = `http://127.0.0.1:${port}`;
  let nextId = 1;
  const rpc = async <T,>(method: string, params: unknown[] = []): Promise<T> => {
    const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ jsonrpc: '2.0', id: nextId++, method, params }) });
    const body = (await response.json()) as { result?: T; error?: { message: string } };
    if (body.error) throw new Error(`${method}: ${body.error.message}`);
    return body.result as T;
  };
  return {
    url,
    port,
    process: child,
    rpc,
    async mine(blocks = 1) {
      for (let i = 0; i < blocks; i += 1) await rpc('evm_mine');
    },
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}

/**
 * Deploys the registry (london artifact) from the owner key and allows `allow`. On a fresh anvil the owner's first
 * transaction always creates the same address, so a restarted node gets the registry back where it was.
 */
export async function deployTestRegistry(anvil: TestAnvil, allow: Address[] = [submitter.address]): Promise<Address> {
  const { contract } = await deployRegistry({ rpcUrl: anvil.url, owner, evmVersion: 'london', pollIntervalMs: 50 });
  for (const address of allow) await setRegistrySubmitter({ rpcUrl: anvil.url, owner, contract, submitter: address, allowed: true, pollIntervalMs: 50 });
  return contract;
}

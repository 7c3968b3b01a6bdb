/**
 * Compiles AnchorRegistry.sol with the solc compiler from npm, reproducibly: the standard-JSON input is fixed (the
 * source, the optimizer settings, the EVM version and the metadata hash), so the same compiler release gives the
 * same bytecode byte for byte. The EVM version must be one the target chain runs: bytecode built for a newer fork
 * uses opcodes (PUSH0 from shanghai on, MCOPY from cancun) that revert on an older one.
 *
 * Node-only (reads files and loads the compiler); the engine loads the committed artifacts instead
 * (./artifacts.ts), and `npm run build:contract` rewrites them.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { sha256Hex } from '../leaf.ts';
import type { RegistryArtifact } from './artifacts.ts';

export const REGISTRY_SOURCE_FILE = fileURLToPath(new URL('./AnchorRegistry.sol', import.meta.url));

interface SolcOutput {
  errors?: Array<{ severity: string; formattedMessage: string }>;
  contracts: Record<string, Record<string, { abi: unknown[]; evm: { bytecode: { object: string }; deployedBytecode: { object: string } } }>>;
}

export function compileRegistry(evmVersion: string): RegistryArtifact {
  const require = createRequire(import.meta.url);
  const solc = require('solc') as { compile(input: string): string; version(): string };
  const source = readFileSync(REGISTRY_SOURCE_FILE, 'utf8');
  const input = {
    language: 'Solidity',
    sources: { 'AnchorRegistry.sol': { content: source } },
    settings: {
      evmVersion,
      optimizer: { enabled: true, runs: 200 },
      // The metadata hash covers the source and these settings, so it is stable too; keeping it lets block
      // explorers match the deployed code to this source.
      metadata: { bytecodeHash: 'ipfs' },
      outputSelection: { 'AnchorRegistry.sol': { AnchorRegistry: ['abi', 'evm.bytecode.object', 'evm.deployedBytecode.object'] } },
    },
  };
  const output = JSON.parse(solc.compile(JSON.stringify(input))) as SolcOutput;
  const errors = (output.errors ?? []).filter((e) => e.severity === 'error');
  if (errors.length > 0) throw new Error(`AnchorRegistry.sol does not compile for ${evmVersion}:\n${errors.map((e) => e.formattedMessage).join('\n')}`);
  const contract = output.contracts['AnchorRegistry.sol']?.AnchorRegistry;
  if (!contract) throw new Error('solc produced no AnchorRegistry contract');
  return {
    contractName: 'AnchorRegistry',
    compiler: `solc ${solc.version()}`,
    evmVersion,
    optimizerRuns: 200,
    sourceSha256: sha256Hex(new TextEncoder().encode(source)),
    abi: contract.abi,
    bytecode: `0x${contract.evm.bytecode.object}`,
    deployedBytecode: `0x${contract.evm.deployedBytecode.object}`,
  };
}

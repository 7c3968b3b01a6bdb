/**
 * The compiled AnchorRegistry, one committed artifact per supported EVM version (./artifacts/*.json, written by
 * `npm run build:contract`; a test recompiles each and requires identical bytes). Deploying uses these, so a
 * deployment never depends on compiling at run time, and a verifier can recognise the registry's runtime code.
 */
import cancun from './artifacts/AnchorRegistry.cancun.json' with { type: 'json' };
import london from './artifacts/AnchorRegistry.london.json' with { type: 'json' };
import paris from './artifacts/AnchorRegistry.paris.json' with { type: 'json' };
import shanghai from './artifacts/AnchorRegistry.shanghai.json' with { type: 'json' };

export interface RegistryArtifact {
  contractName: 'AnchorRegistry';
  /** e.g. "solc 0.8.37+commit.….Emscripten.clang" */
  compiler: string;
  evmVersion: string;
  optimizerRuns: number;
  /** Hex SHA-256 of AnchorRegistry.sol as compiled. */
  sourceSha256: string;
  abi: unknown[];
  /** 0x-prefixed creation code. */
  bytecode: `0x${string}`;
  /** 0x-prefixed runtime code, what eth_getCode returns for a deployed registry. */
  deployedBytecode: `0x${string}`;
}

/** EVM versions with a committed artifact, oldest first. Besu QBFT networks run london or later. */
export const REGISTRY_EVM_VERSIONS = ['london', 'paris', 'shanghai', 'cancun'] as const;
export type RegistryEvmVersion = (typeof REGISTRY_EVM_VERSIONS)[number];

const ARTIFACTS: Record<RegistryEvmVersion, RegistryArtifact> = {
  london: london as RegistryArtifact,
  paris: paris as RegistryArtifact,
  shanghai: shanghai as RegistryArtifact,
  cancun: cancun as RegistryArtifact,
};

export function registryArtifact(evmVersion: RegistryEvmVersion): RegistryArtifact {
  return ARTIFACTS[evmVersion];
}

/** The EVM version whose artifact has exactly this runtime code, if any. */
export function recogniseRegistryCode(code: string): RegistryEvmVersion | undefined {
  const lower = code.toLowerCase();
  return REGISTRY_EVM_VERSIONS.find((v) => ARTIFACTS[v].deployedBytecode.toLowerCase() === lower);
}

/**
 * `anchorline chain ...`: setting up chain anchoring.
 *   chain deploy    --rpc URL --key-file F [--evm-version V] [--out F]   deploy an AnchorRegistry; F's key owns it
 *   chain allow     --rpc URL --key-file F --contract ADDR --address A   the owner allows submitter A
 *   chain disallow  --rpc URL --key-file F --contract ADDR --address A   the owner removes submitter A
 *   chain submitter [--config F]                                         this engine's submitter address (the key is
 *                                                                        created under the data dir if missing)
 * Results go to stdout as JSON; errors to stderr with their catalogue code. Exit codes: 0 done, 1 the chain refused
 * or was unreachable, 2 usage or config error. Keys are read from files, never from the command line, so they do
 * not end up in shell history or process lists.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { isAddress, type Address } from 'viem';
import { REGISTRY_EVM_VERSIONS, type RegistryEvmVersion } from '../anchor/chain/artifacts.ts';
import { deployRegistry, setRegistrySubmitter } from '../anchor/chain/registry.ts';
import { ConfigError, loadConfig } from '../config/index.ts';
import { isAnchorlineError } from '../errors/index.ts';
import { loadSubmitterKey } from '../workers/chain-anchor.ts';

export const CHAIN_USAGE = `usage:
  anchorline chain deploy    --rpc <url> --key-file <owner.key> [--evm-version <${REGISTRY_EVM_VERSIONS.join('|')}>] [--out <file.json>]
  anchorline chain allow     --rpc <url> --key-file <owner.key> --contract <address> --address <submitter>
  anchorline chain disallow  --rpc <url> --key-file <owner.key> --contract <address> --address <submitter>
  anchorline chain submitter [--config <file>]

deploy puts an AnchorRegistry on the chain, owned by the key in --key-file (hex secp256k1 private key);
--evm-version must be the chain's fork or older (default london). allow/disallow manage the
consortium's submitters. submitter prints the address this engine anchors from, for the owner to allow.
`;

export interface ChainOutput {
  out: (text: string) => void;
  err: (text: string) => void;
}

const processOutput: ChainOutput = { out: (t) => process.stdout.write(t), err: (t) => process.stderr.write(t) };

class UsageError extends Error {}

export async function runChain(argv: string[], output: ChainOutput = processOutput, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  try {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        rpc: { type: 'string' },
        'key-file': { type: 'string' },
        'evm-version': { type: 'string' },
        out: { type: 'string' },
        contract: { type: 'string' },
        address: { type: 'string' },
        config: { type: 'string' },
        help: { type: 'boolean' },
      },
    });
    if (values.help) {
      output.out(CHAIN_USAGE);
      return 0;
    }
    const [command, ...rest] = positionals;
    if (rest.length > 0) throw new UsageError(`unexpected argument ${rest[0]}`);
    switch (command) {
      case 'deploy': {
        const evmVersion = (values['evm-version'] ?? 'london') as RegistryEvmVersion;
        if (!REGISTRY_EVM_VERSIONS.includes(evmVersion)) throw new UsageError(`--evm-version must be one of ${REGISTRY_EVM_VERSIONS.join(', ')}`);
        const rpcUrl = rpc(values.rpc);
        const owner = await ownerKey(values['key-file']);
        const deployed = await deployRegistry({ rpcUrl, owner, evmVersion });
        const result = { chainId: deployed.chainId, contract: deployed.contract, owner: owner.address, txHash: deployed.txHash, blockNumber: Number(deployed.blockNumber), evmVersion };
        const text = JSON.stringify(result, null, 2) + '\n';
        if (values.out) writeFileSync(values.out, text);
        output.out(text);
        return 0;
      }
      case 'allow':
      case 'disallow': {
        const rpcUrl = rpc(values.rpc);
        const contract = address(values.contract, '--contract');
        const submitter = address(values.address, '--address');
        const owner = await ownerKey(values['key-file']);
        const done = await setRegistrySubmitter({ rpcUrl, owner, contract, submitter, allowed: command === 'allow' });
        output.out(JSON.stringify({ submitter: values.address, allowed: command === 'allow', txHash: done.txHash, blockNumber: Number(done.blockNumber) }, null, 2) + '\n');
        return 0;
      }
      case 'submitter': {
        const config = loadConfig(values.config ? { file: values.config, env } : { env });
        const keyFile = config.anchor.evm.submitterKeyFile ?? path.join(config.dataDir, 'anchor-submitter.key');
        const account = await loadSubmitterKey(keyFile, true);
        output.out(JSON.stringify({ submitter: account!.address, keyFile }, null, 2) + '\n');
        return 0;
      }
      default:
        throw new UsageError(command ? `unknown chain command ${command}` : 'missing chain command');
    }
  } catch (error) {
    if (error instanceof UsageError || error instanceof ConfigError || (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      output.err(`anchorline chain: ${(error as Error).message}\n\n${CHAIN_USAGE}`);
      return 2;
    }
    if (isAnchorlineError(error)) {
      output.err(`anchorline chain: ${error.code}: ${error.detail ?? error.spec.title}\n`);
      return 1;
    }
    throw error;
  }
}

function rpc(url: string | undefined): string {
  if (!url || !/^https?:\/\/\S+$/.test(url)) throw new UsageError('--rpc must be an http(s) URL');
  return url;
}

function address(value: string | undefined, flag: string): Address {
  if (!value || !isAddress(value, { strict: false })) throw new UsageError(`${flag} must be an address (0x and 40 hex digits)`);
  return value;
}

async function ownerKey(file: string | undefined) {
  if (!file) throw new UsageError('--key-file is required');
  try {
    const account = await loadSubmitterKey(file, false);
    if (!account) throw new UsageError(`key file ${file} does not exist`);
    return account;
  } catch (error) {
    if (error instanceof UsageError) throw error;
    throw new UsageError(`key file ${file} does not hold a hex secp256k1 private key`);
  }
}

/**
 * The development Besu QBFT network of docker-compose.yml: its genesis, keys and per-node settings, derived
 * reproducibly, so that the committed files can be checked against this script.
 *
 *   npx tsx deploy/besu/make-genesis.ts            write the files below
 *   npx tsx deploy/besu/make-genesis.ts --check    exit 1 unless the committed files are exactly what it would write
 *
 * Writes, under deploy/besu/:
 *   genesis.json            QBFT genesis: 4 validators in extraData, 2 s blocks, London EVM, zero base fee
 *   keys/validator-N.key    node keys of the 4 validators (secp256k1; the node address is the validator address)
 *   keys/owner.key          deploys the AnchorRegistry and manages its allow-list
 *   keys/submitter.key      the engine's submitter account, which the owner allows to anchor
 *   validator-N.env         per-node Besu settings (BESU_* variables): node key, advertised address, bootnodes
 *   dev-network.env         ANCHOR_* settings: chain id, the registry's address, the owner and submitter addresses
 *
 * DEVELOPMENT ONLY. Every private key here is derived from a public label and committed to the repository, so
 * anyone can sign for these validators and accounts. Never use them, or this genesis, for a network that holds
 * records anyone relies on: a production consortium generates its keys on each member's own machines.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { getContractAddress, hexToBigInt, keccak256, stringToBytes, toRlp, type Address, type Hex } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';

const HERE = path.dirname(fileURLToPath(import.meta.url));

/** Chain id of the development network (the one Besu's QBFT documentation uses). */
const CHAIN_ID = 1337;
/**
 * The validators' fixed addresses on the compose network `besu` (docker-compose.yml declares the same subnet and
 * ipv4_address for each node). Besu wants IP addresses, not host names, in enode URLs.
 */
const VALIDATOR_IPS = ['172.30.42.11', '172.30.42.12', '172.30.42.13', '172.30.42.14'] as const;
const P2P_PORT = 30303;
/** 1,000,000 ether: gas is free on this network, but a funded account still works if a client asks for fees. */
const DEV_BALANCE_WEI = 10n ** 24n;

/** secp256k1 group order: a private key must lie in [1, n-1]. */
const SECP256K1_ORDER = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;

/** A private key derived from a public label: reproducible, and by construction known to everyone. */
function devKey(label: string): Hex {
  const key = keccak256(stringToBytes(`anchorline besu development network (public, development only): ${label}`));
  const scalar = hexToBigInt(key);
  if (scalar === 0n || scalar >= SECP256K1_ORDER) throw new Error(`the key derived for ${label} is not a valid secp256k1 key`);
  return key;
}

/**
 * QBFT genesis extraData with block header validator selection, per Besu's QBFT documentation
 * (private-networks/how-to/configure/consensus/qbft, "Extra data"):
 *   RLP([32 bytes Vanity, List<Validators>, No Vote, Round=Int(0), 0 Seals])
 * "No vote" is the empty list, round 0 the empty string and no seals the empty list, as `besu rlp encode
 * --type=QBFT_EXTRA_DATA` writes them. Validators are encoded in the order given.
 */
function qbftExtraData(validators: readonly Address[]): Hex {
  const vanity: Hex = `0x${'00'.repeat(32)}`;
  return toRlp([vanity, validators.map((v) => v.toLowerCase() as Hex), [], '0x', []]);
}

/** The documentation's own example (its toEncode.json and the RLP it prints), so a wrong encoder cannot pass. */
function assertEncoderMatchesBesuDocs(): void {
  const documented = qbftExtraData([
    '0x4592c8e45706cc08b8f44b11e43cba0cfc5892cb',
    '0x06e23768a0f59cf365e18c2e0c89e151bcdedc70',
    '0xc5327f96ee02d7bcbc1bf1236b8c15148971e1de',
    '0xab5e7f4061c605820d3744227eed91ff8e2c8908',
  ]);
  const expected =
    '0xf87aa00000000000000000000000000000000000000000000000000000000000000000f854944592c8e45706cc08b8f44b11e43cba0cfc5892cb9406e23768a0f59cf365e18c2e0c89e151bcdedc7094c5327f96ee02d7bcbc1bf1236b8c15148971e1de94ab5e7f4061c605820d3744227eed91ff8e2c8908c080c0';
  if (documented !== expected) throw new Error(`QBFT extraData encoder does not reproduce Besu's documented example:\n  got      ${documented}\n  expected ${expected}`);
}

interface Node {
  name: string;
  key: Hex;
  address: Address;
  ip: string;
  enode: string;
}

function validatorNodes(): Node[] {
  return VALIDATOR_IPS.map((ip, i) => {
    const name = `validator-${i + 1}`;
    const key = devKey(name);
    const account = privateKeyToAccount(key);
    // The node id is the uncompressed public key without its 0x04 prefix.
    const nodeId = account.publicKey.slice(4);
    return { name, key, address: account.address, ip, enode: `enode://${nodeId}@${ip}:${P2P_PORT}` };
  });
}

const GENERATED = 'Generated by deploy/besu/make-genesis.ts; do not edit. DEVELOPMENT ONLY: these keys are public.';

/** Every file the script owns, path (relative to deploy/besu) -> exact content. */
function networkFiles(): Map<string, string> {
  assertEncoderMatchesBesuDocs();
  const validators = validatorNodes();
  const owner = privateKeyToAccount(devKey('registry owner'));
  const submitter = privateKeyToAccount(devKey('engine submitter'));
  // The owner's first transaction deploys the registry (deploy/besu/anchor-deploy.sh refuses otherwise), so the
  // registry's address is known before the chain starts and the engine can be configured with it.
  const registry = getContractAddress({ from: owner.address, nonce: 0n });

  const sortedValidators = validators.map((v) => v.address).sort((a, b) => a.toLowerCase().localeCompare(b.toLowerCase()));
  const genesis = {
    config: {
      chainId: CHAIN_ID,
      berlinBlock: 0,
      // London, and no later fork: the registry is compiled for evmVersion london (anchorline chain deploy).
      londonBlock: 0,
      // A free gas network under London (Besu's free-gas guide): base fee 0, and every node runs --min-gas-price=0.
      zeroBaseFee: true,
      qbft: { blockperiodseconds: 2, epochlength: 30000, requesttimeoutseconds: 4 },
    },
    nonce: '0x0',
    timestamp: '0x58ee40ba',
    extraData: qbftExtraData(sortedValidators),
    gasLimit: '0x1fffffffffffff',
    difficulty: '0x1',
    // The fixed mix hash every QBFT block carries.
    mixHash: '0x63746963616c2062797a616e74696e65206661756c7420746f6c6572616e6365',
    coinbase: '0x0000000000000000000000000000000000000000',
    alloc: {
      [owner.address.slice(2).toLowerCase()]: { comment: 'anchorline registry owner; public development key, development only', balance: `0x${DEV_BALANCE_WEI.toString(16)}` },
      [submitter.address.slice(2).toLowerCase()]: { comment: 'anchorline engine submitter; public development key, development only', balance: `0x${DEV_BALANCE_WEI.toString(16)}` },
    },
    number: '0x0',
    gasUsed: '0x0',
    parentHash: `0x${'00'.repeat(32)}`,
  };

  const files = new Map<string, string>();
  files.set('genesis.json', JSON.stringify(genesis, null, 2) + '\n');
  for (const node of validators) {
    files.set(`keys/${node.name}.key`, node.key + '\n');
    const bootnodes = validators.filter((other) => other !== node).map((other) => other.enode);
    files.set(
      `${node.name}.env`,
      [
        `# ${GENERATED}`,
        `# Besu options for ${node.name} (validator address ${node.address}), read by docker-compose.yml.`,
        `BESU_NODE_PRIVATE_KEY_FILE=/config/keys/${node.name}.key`,
        `BESU_P2P_HOST=${node.ip}`,
        `BESU_BOOTNODES=${bootnodes.join(',')}`,
        '',
      ].join('\n'),
    );
  }
  files.set('keys/owner.key', devKey('registry owner') + '\n');
  files.set('keys/submitter.key', devKey('engine submitter') + '\n');
  files.set(
    'dev-network.env',
    [
      `# ${GENERATED}`,
      '# The development network as the engine and the anchor-deploy service see it (docker-compose.yml).',
      `ANCHOR_CHAIN_ID=${CHAIN_ID}`,
      '# Where the owner\'s first transaction deploys the AnchorRegistry.',
      `ANCHOR_CONTRACT_ADDRESS=${registry}`,
      `ANCHOR_OWNER_ADDRESS=${owner.address}`,
      `ANCHOR_SUBMITTER_ADDRESS=${submitter.address}`,
      '',
    ].join('\n'),
  );
  return files;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { check: { type: 'boolean', default: false } } });
  const files = networkFiles();
  if (values.check) {
    const problems: string[] = [];
    for (const [name, content] of files) {
      const file = path.join(HERE, name);
      if (!existsSync(file)) problems.push(`${name}: missing`);
      else if ((await readFile(file, 'utf8')) !== content) problems.push(`${name}: differs from what make-genesis.ts writes`);
    }
    if (problems.length > 0) {
      process.stderr.write(`deploy/besu is out of date (run npx tsx deploy/besu/make-genesis.ts):\n  ${problems.join('\n  ')}\n`);
      process.exit(1);
    }
    process.stdout.write(`deploy/besu: ${files.size} files match make-genesis.ts\n`);
    return;
  }
  await mkdir(path.join(HERE, 'keys'), { recursive: true });
  for (const [name, content] of files) await writeFile(path.join(HERE, name), content);
  process.stdout.write(`deploy/besu: wrote ${[...files.keys()].join(', ')}\n`);
}

await main();

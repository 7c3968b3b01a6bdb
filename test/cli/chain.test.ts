/**
 * `anchorline chain`: deploying the registry, managing submitters and printing this engine's submitter address,
 * against a real anvil node; usage errors exit 2, a refusing or unreachable chain exits 1 with its code.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RegistryClient } from '../../anchor/chain/registry.ts';
import { runChain } from '../../cli/chain.ts';
import { ANVIL_KEYS, owner, outsider, startAnvil, submitter, type TestAnvil } from '../support/anvil.ts';

let anvil: TestAnvil;
let dir: string;
let ownerKeyFile: string;

beforeAll(async () => {
  anvil = await startAnvil();
  dir = await mkdtemp(path.join(os.tmpdir(), 'anchorline-chain-cli-'));
  ownerKeyFile = path.join(dir, 'owner.key');
  await writeFile(ownerKeyFile, ANVIL_KEYS.owner.slice(2) + '\n', { mode: 0o600 });
});
afterAll(async () => {
  await anvil?.kill();
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function chain(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runChain(args, { out: (t) => (out += t), err: (t) => (err += t) }, { ANCHORLINE_DATA_DIR: dir });
  return { code, out, err };
}

describe('anchorline chain', () => {
  let contract: `0x${string}`;

  it('deploys the registry owned by the key file, and writes the result to --out', async () => {
    const outFile = path.join(dir, 'registry.json');
    const run = await chain('deploy', '--rpc', anvil.url, '--key-file', ownerKeyFile, '--evm-version', 'london', '--out', outFile);
    expect(run.err).toBe('');
    expect(run.code).toBe(0);
    const result = JSON.parse(run.out);
    expect(result).toMatchObject({ chainId: 31337, owner: owner.address, evmVersion: 'london' });
    expect(JSON.parse(await readFile(outFile, 'utf8'))).toEqual(result);
    contract = result.contract;
    const registry = new RegistryClient({ rpcUrl: anvil.url, contract, requestTimeoutMs: 2_000 });
    expect(await registry.deployedRegistryVersion()).toBe('london');
  });

  it('allows and removes submitters; only the owner can', async () => {
    const registry = new RegistryClient({ rpcUrl: anvil.url, contract, requestTimeoutMs: 2_000 });
    expect((await chain('allow', '--rpc', anvil.url, '--key-file', ownerKeyFile, '--contract', contract, '--address', submitter.address)).code).toBe(0);
    expect(await registry.isSubmitter(submitter.address)).toBe(true);
    expect((await chain('disallow', '--rpc', anvil.url, '--key-file', ownerKeyFile, '--contract', contract, '--address', submitter.address)).code).toBe(0);
    expect(await registry.isSubmitter(submitter.address)).toBe(false);

    const outsiderKey = path.join(dir, 'outsider.key');
    await writeFile(outsiderKey, ANVIL_KEYS.outsider);
    const refused = await chain('allow', '--rpc', anvil.url, '--key-file', outsiderKey, '--contract', contract, '--address', outsider.address);
    expect(refused.code).toBe(1);
    expect(refused.err).toMatch(/^anchorline chain: ANCHORLINE_ERR_CHAIN_REVERTED: setSubmitter \(simulated\): reverted with NotOwner/);
    expect(await registry.isSubmitter(outsider.address)).toBe(false);
  });

  it('prints the engine submitter address, creating its key under the data dir once', async () => {
    const first = await chain('submitter');
    expect(first.code).toBe(0);
    const { submitter: address, keyFile } = JSON.parse(first.out);
    expect(keyFile).toBe(path.join(dir, 'anchor-submitter.key'));
    expect(address).toMatch(/^0x[0-9a-fA-F]{40}$/);
    expect(JSON.parse((await chain('submitter')).out).submitter).toBe(address);
    // The key itself is never printed.
    expect(first.out).not.toContain((await readFile(keyFile, 'utf8')).trim().replace(/^0x/, ''));
  });

  it('exits 1 with CHAIN_UNAVAILABLE when the node is unreachable', async () => {
    const run = await chain('deploy', '--rpc', 'http://127.0.0.1:9', '--key-file', ownerKeyFile);
    expect(run.code).toBe(1);
    expect(run.err).toMatch(/ANCHORLINE_ERR_CHAIN_UNAVAILABLE/);
  });

  it.each([
    [[], /missing chain command/],
    [['launch'], /unknown chain command launch/],
    [['deploy', '--key-file', 'x'], /--rpc must be an http\(s\) URL/],
    [['deploy', '--rpc', 'http://127.0.0.1:9'], /--key-file is required/],
    [['deploy', '--rpc', 'http://127.0.0.1:9', '--key-file', '/no/such.key'], /does not exist/],
    [['deploy', '--rpc', 'http://127.0.0.1:9', '--key-file', 'README.md'], /does not hold a hex secp256k1 private key/],
    [['deploy', '--rpc', 'http://127.0.0.1:9', '--key-file', 'x', '--evm-version', 'prague'], /--evm-version must be one of london, paris, shanghai, cancun/],
    [['allow', '--rpc', 'http://127.0.0.1:9', '--key-file', 'x', '--contract', '0x12'], /--contract must be an address/],
    [['deploy', '--bogus'], /Unknown option '--bogus'/],
  ])('exits 2 for %j', async (args, message) => {
    const run = await chain(...(args as string[]));
    expect(run.code).toBe(2);
    expect(run.err).toMatch(message);
    expect(run.err).toContain('usage:');
  });
});

/**
 * The engine process is SIGKILLed after it broadcast an anchor transaction and before any receipt (anvil is not
 * mining, so the transaction waits in its pool). The restarted engine reconciles from its database and the chain:
 * it finds the transaction mined, records it, and never sends a second one.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createPublicClient, http, type Address } from 'viem';
import { anchorRegistryAbi } from '../../anchor/chain/abi.ts';
import { adtMessage } from '../support/messages.ts';
import { MllpTestClient } from '../support/mllp-client.ts';
import { eventually, TEST_API_KEY } from '../support/engine.ts';
import { startChildEngine, type ChildEngine } from '../support/child-engine.ts';
import { createTestDatabase, type TestDatabase } from '../support/db.ts';
import { ANVIL_KEYS, deployTestRegistry, startAnvil, submitter, type TestAnvil } from '../support/anvil.ts';

let anvil: TestAnvil | undefined;
let db: TestDatabase | undefined;
let dir: string | undefined;
const children: ChildEngine[] = [];

afterAll(async () => {
  for (const child of children) if (child.process.exitCode === null) child.process.kill('SIGKILL');
  await Promise.all(children.map((c) => c.exited));
  await anvil?.kill();
  await db?.drop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('chain anchoring across an engine crash', () => {
  it('reconciles a transaction sent just before SIGKILL without anchoring twice', async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'anchorline-chain-kill-'));
    db = await createTestDatabase('chainkill');
    anvil = await startAnvil();
    const contract = await deployTestRegistry(anvil);
    await anvil.rpc('evm_setAutomine', [false]);
    const keyFile = path.join(dir, 'submitter.key');
    await writeFile(keyFile, ANVIL_KEYS.submitter + '\n', { mode: 0o600 });
    const env = {
      ANCHORLINE_DATA_DIR: dir,
      ANCHORLINE_API_KEY: TEST_API_KEY,
      DATABASE_URL: db.url,
      ANCHORLINE__DATABASE__SCHEMA: db.schema,
      ANCHOR_RPC_URL: anvil.url,
      ANCHOR_CONTRACT_ADDRESS: contract,
      ANCHOR_SUBMITTER_KEY_FILE: keyFile,
      ANCHORLINE__ANCHOR__CLOSE_AFTER_MS: '200',
      ANCHORLINE__ANCHOR__EVM__CONFIRMATIONS: '1',
      ANCHORLINE__ANCHOR__EVM__POLL_INTERVAL_MS: '100',
    };

    const first = await startChildEngine(env);
    children.push(first);
    const client = await MllpTestClient.connect(first.mllpPort);
    await client.request(adtMessage({ controlId: 'KILL-1', mrn: 'K1' }));
    await client.close();
    const sent = await eventually(async () => {
      const { rows } = await db!.pool.query(`SELECT tx_hash, state FROM ledger_anchor`);
      return rows[0]?.state === 'sent' ? (rows[0].tx_hash as string) : undefined;
    }, 30_000, 'an anchor transaction recorded as sent');
    // Recorded before broadcast; wait until the node has it too, then kill the engine.
    await eventually(async () => ((await anvil!.rpc<unknown>('eth_getTransactionByHash', [sent])) ? true : undefined), 10_000, 'the transaction in the pool');
    first.process.kill('SIGKILL');
    await first.exited;

    await anvil.mine(1);
    const second = await startChildEngine(env);
    children.push(second);
    await eventually(async () => {
      const { rows } = await db!.pool.query(`SELECT state FROM ledger_anchor`);
      return rows[0]?.state === 'confirmed' ? true : undefined;
    }, 30_000, 'the anchor confirmed by the restarted engine');

    const { rows } = await db.pool.query(`SELECT tx_hash, state FROM ledger_anchor ORDER BY id`);
    expect(rows).toEqual([{ tx_hash: sent, state: 'confirmed' }]);
    const chain = createPublicClient({ transport: http(anvil.url, { retryCount: 0 }) });
    expect(await chain.getTransactionCount({ address: submitter.address })).toBe(1);
    const events = await chain.getContractEvents({ address: contract as Address, abi: anchorRegistryAbi, eventName: 'Anchored', fromBlock: 0n });
    expect(events.map((e) => e.transactionHash)).toEqual([sent]);

    second.process.kill('SIGTERM');
    expect(await second.exited).toBe(0);
    // Two engine starts, each with its worker process, on a machine that may be busy: minutes, not one.
  }, 240_000);
});

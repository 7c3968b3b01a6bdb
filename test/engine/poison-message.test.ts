/**
 * A message whose processing kills its worker cannot take the engine down: the workers run in a process of their own
 * (workers.isolation 'process'), a worker that dies is started again, each attempt is counted as it starts, and after
 * workers.maxCrashedAttempts attempts that never ended the message goes to the dead letters, while intake, the API
 * and every other message carry on. A value the store refuses fails its message once instead of being retried.
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adtMessage } from '../support/messages.ts';
import { hl7Field, MllpTestClient } from '../support/mllp-client.ts';
import { eventually, startTestEngine, type TestEngine } from '../support/engine.ts';
import { blindIndexOf } from '../../store/index.ts';

const MAX_CRASHED_ATTEMPTS = 2;
let t: TestEngine;

beforeAll(async () => {
  t = await startTestEngine({
    overrides: {
      // A small heap, so that one oversized message exhausts it in a second or two.
      // Caps far above the defaults: the message below is one that intake would refuse today, stored before it did.
      hl7v2: { maxRepetitionsPerField: 100_000_000, maxParsedNodes: 1_000_000_000 },
      workers: { isolation: 'process', maxHeapMb: 400, restartDelayMs: 100, stallTimeoutMs: 5_000, maxCrashedAttempts: MAX_CRASHED_ATTEMPTS },
    },
  });
}, 120_000);
afterAll(async () => {
  await t?.destroy();
});

/**
 * Stores a message as an earlier version of the engine might have accepted it: past intake's limits, in the inbox,
 * queued. Its PID-5 holds millions of repetitions: parsed into objects they need far more than the worker's heap.
 */
async function storeOversizedMessage(controlId: string): Promise<number> {
  const text = adtMessage({ controlId, mrn: 'POISON1' }).replace(/\rPID\|1\|\|[^|]*\|\|[^|]*/, (pid) => `${pid}${'~'.repeat(6 * 1024 * 1024)}`);
  const raw = Buffer.from(text, 'utf8');
  const { rows } = await t.pool.query(
    `INSERT INTO inbox_message (protocol, source, sender, control_id, message_type, raw, raw_sha256, raw_size, disposition, state, received_at)
     VALUES ('hl7v2-mllp', 'default', 'EMR|SNUH', $1, 'ADT^A01', $2, $3, $4, 'accepted', 'queued', now() - interval '1 minute') RETURNING id`,
    [controlId, raw, createHash('sha256').update(raw).digest(), raw.length],
  );
  return Number(rows[0].id);
}

describe('a message that kills its worker', () => {
  it('is moved to the dead letters after the configured crashes, while intake and other messages carry on', async () => {
    const poisonId = await storeOversizedMessage('POISON-1');
    // The sweeper hands it to the worker process, which dies; meanwhile other senders are answered and mapped.
    const client = await MllpTestClient.connect(t.mllpPort);
    const ackTimes: number[] = [];
    for (let i = 0; i < 20; i++) {
      const started = performance.now();
      const ack = await client.request(adtMessage({ controlId: `HEALTHY-${i}`, mrn: `H${i}` }));
      ackTimes.push(performance.now() - started);
      expect(hl7Field(ack, 'MSA', 1)).toBe('AA');
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    await client.close();
    // The engine's own HTTP listener never stopped answering.
    expect((await fetch(`${t.httpUrl}/livez`)).status).toBe(200);

    const dead = await eventually(async () => {
      const { rows } = await t.pool.query(`SELECT state, error_code, attempts_started, attempts FROM inbox_message WHERE id = $1`, [poisonId]);
      return rows[0].state === 'failed' ? rows[0] : undefined;
    }, 90_000, 'the oversized message in the dead letters');
    expect(dead.error_code).toBe('ANCHORLINE_ERR_MESSAGE_POISON');
    // Every crashed attempt counted as it started, plus the one that moved it.
    expect(dead.attempts_started).toBe(MAX_CRASHED_ATTEMPTS + 1);
    expect(dead.attempts_started - dead.attempts).toBe(MAX_CRASHED_ATTEMPTS);

    await eventually(async () => {
      const { rows } = await t.pool.query(`SELECT count(*)::int AS n FROM inbox_message WHERE control_id LIKE 'HEALTHY-%' AND state = 'done'`);
      return rows[0].n === 20;
    }, 60_000, 'every healthy message mapped');
    // Intake answered in its own time throughout: no ACK waited for a worker.
    expect(Math.max(...ackTimes)).toBeLessThan(5_000);
    // The dead letter stays where it is: no worker picks it up again.
    const before = (await t.pool.query(`SELECT attempts_started FROM inbox_message WHERE id = $1`, [poisonId])).rows[0].attempts_started;
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    const after = (await t.pool.query(`SELECT attempts_started FROM inbox_message WHERE id = $1`, [poisonId])).rows[0].attempts_started;
    expect(after).toBe(before);
    expect(t.engine.workerProcessRestarts?.()).toBeGreaterThanOrEqual(MAX_CRASHED_ATTEMPTS);
  }, 180_000);

  it('fails a message the store refuses once, with a code, without retrying it or its neighbours', async () => {
    // A rule of this database that one mapped value breaks, every time it is written (SQLSTATE 23514): the store
    // refusing a value for what it is, as it refuses a NUL in text or a number past its range. On the search index,
    // which the Patient's version writes in the same statement: the version itself is sealed, so no rule sees its
    // content.
    const refusedFamily = (await blindIndexOf(t.pool)).stringQuery('Patient', 'family', 'Refused', true)!.hashes[0];
    await t.pool.query(`ALTER TABLE fhir_search_string ADD CONSTRAINT no_refused_family CHECK (NOT (param = 'family' AND value_hash = ${refusedFamily}))`);
    const client = await MllpTestClient.connect(t.mllpPort);
    const sent = [adtMessage({ controlId: 'REFUSED-1', mrn: 'R1', family: 'Refused' })];
    for (let i = 0; i < 5; i++) sent.push(adtMessage({ controlId: `NEIGHBOUR-${i}`, mrn: `N${i}` }));
    // Sent together, so that the worker is likely to map them in one batch.
    for (const message of sent) client.send(message);
    for (const _ of sent) expect(hl7Field((await client.nextAck()).toString('utf8'), 'MSA', 1)).toBe('AA');
    await client.close();
    const refused = await eventually(async () => {
      const { rows } = await t.pool.query(`SELECT state, error_code, attempts FROM inbox_message WHERE control_id = 'REFUSED-1'`);
      return rows[0]?.state === 'failed' ? rows[0] : undefined;
    }, 60_000, 'the refused message failed');
    expect(refused.error_code).toBe('ANCHORLINE_ERR_STORE_REFUSED_VALUE');
    expect(refused.attempts).toBe(1);
    await eventually(async () => {
      const { rows } = await t.pool.query(`SELECT count(*)::int AS n, max(attempts)::int AS attempts FROM inbox_message WHERE control_id LIKE 'NEIGHBOUR-%' AND state = 'done'`);
      return rows[0].n === 5 && rows[0].attempts === 1;
    }, 60_000, 'the neighbours mapped, each at its first attempt');
  }, 120_000);
});

describe('the worker process', () => {
  it('is killed and started again when its event loop stops turning, and maps what arrives next', async () => {
    const stalled = t.engine.workerProcessPid?.();
    expect(stalled).toBeGreaterThan(0);
    const restarts = t.engine.workerProcessRestarts!();
    // A process that no longer runs at all: its heartbeats stop, as they do when one message holds its event loop.
    process.kill(stalled!, 'SIGSTOP');
    await eventually(async () => t.engine.workerProcessRestarts!() > restarts, 60_000, 'the stalled worker process replaced');
    expect(t.engine.workerProcessPid?.()).not.toBe(stalled);
    const client = await MllpTestClient.connect(t.mllpPort);
    expect(hl7Field(await client.request(adtMessage({ controlId: 'AFTER-STALL', mrn: 'AS1' })), 'MSA', 1)).toBe('AA');
    await client.close();
    await eventually(async () => {
      const { rows } = await t.pool.query(`SELECT state FROM inbox_message WHERE control_id = 'AFTER-STALL'`);
      return rows[0]?.state === 'done';
    }, 60_000, 'the next message mapped by the new worker process');
  }, 120_000);
});

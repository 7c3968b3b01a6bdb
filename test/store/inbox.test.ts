/** The inbox contract: one transaction per batch, duplicates and conflicts resolved within and across batches. */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inbox, withTransaction, type InboxInput } from '../../store/index.ts';
import { createTestDatabase, type TestDatabase } from '../support/db.ts';
import { TEST_QUEUE_SETTINGS } from '../queue/support/harness.ts';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase('inbox');
});
afterAll(async () => {
  await db?.drop();
});

function input(controlId: string | null, body: string, options: Partial<InboxInput> = {}): InboxInput {
  const raw = Buffer.from(body);
  return {
    protocol: 'test',
    source: 'test',
    sender: 'EMR|SNUH',
    controlId,
    messageType: 'ADT^A01',
    messageTime: null,
    raw,
    rawSha256: createHash('sha256').update(raw).digest(),
    rawSize: raw.length,
    charset: 'utf-8',
    disposition: 'accepted',
    ack: Buffer.from(`ACK for ${controlId}`),
    ackCode: 'AA',
    ...options,
  };
}

const conflictAck = (i: InboxInput) => ({ ack: Buffer.from(`AR for ${i.controlId}`), ackCode: 'AR' });

async function record(inputs: InboxInput[]) {
  return withTransaction(db.pool, (client) => inbox.recordMessages(client, inputs, conflictAck));
}

describe('recordMessages', () => {
  it('stores, deduplicates and flags conflicts within one batch', async () => {
    const outcomes = await record([
      input('A', 'one'),
      input('B', 'two'),
      input('A', 'one'),
      input('A', 'one-changed'),
      input(null, 'garbage', { disposition: 'rejected', errorCode: 'ANCHORLINE_ERR_HL7_NO_MSH', ack: Buffer.from('NAK'), ackCode: 'AR' }),
    ]);
    expect(outcomes.map((o) => o.kind)).toEqual(['stored', 'stored', 'duplicate', 'conflict', 'rejected']);
    const [a, b, dupA, conflictA, rejected] = outcomes as any[];
    expect(dupA.id).toBe(a.id);
    expect(dupA.ack.toString()).toBe('ACK for A');
    expect(conflictA.originalId).toBe(a.id);
    expect(new Set([a.id, b.id, conflictA.id, rejected.id]).size).toBe(4);
    const rows = await db.pool.query('SELECT id, control_id, disposition, state, raw, ack FROM inbox_message ORDER BY id');
    const byId = new Map(rows.rows.map((r) => [r.id, r]));
    expect(byId.get(a.id)).toMatchObject({ control_id: 'A', disposition: 'accepted', state: 'queued' });
    expect(byId.get(b.id)).toMatchObject({ control_id: 'B', disposition: 'accepted' });
    expect(byId.get(conflictA.id).raw.toString()).toBe('one-changed');
    expect(byId.get(conflictA.id).ack.toString()).toBe('AR for A');
    expect(byId.get(rejected.id)).toMatchObject({ disposition: 'rejected', state: 'rejected' });
    expect(rows.rowCount).toBe(4);
  });

  it('resolves resends against messages stored by earlier batches', async () => {
    const [first] = (await record([input('C', 'three')])) as any[];
    const outcomes = (await record([input('C', 'three'), input('C', 'three-changed'), input('D', 'four')])) as any[];
    expect(outcomes.map((o) => o.kind)).toEqual(['duplicate', 'conflict', 'stored']);
    expect(outcomes[0].id).toBe(first.id);
    expect(outcomes[0].state).toBe('queued');
    expect(outcomes[1].originalId).toBe(first.id);
  });

  it('writes nothing when the transaction fails', async () => {
    const before = (await db.pool.query('SELECT count(*)::int AS n FROM inbox_message')).rows[0].n;
    await expect(
      withTransaction(db.pool, async (client) => {
        await inbox.recordMessages(client, [input('E', 'five')], conflictAck);
        throw new Error('commit never happens');
      }),
    ).rejects.toThrow('commit never happens');
    expect((await db.pool.query('SELECT count(*)::int AS n FROM inbox_message')).rows[0].n).toBe(before);
  });

  it('keeps a rejected message from blocking a later valid one with the same control id', async () => {
    const outcomes = (await record([input('F', 'bad', { disposition: 'rejected', errorCode: 'ANCHORLINE_ERR_CHARSET_MISMATCH', ack: null, ackCode: null }), input('F', 'good')])) as any[];
    expect(outcomes.map((o) => o.kind)).toEqual(['rejected', 'stored']);
  });

  it('records the size of a refused frame over 2 GiB in the same commit as other messages, and reads it back', async () => {
    // Only the first bytes of an oversized frame are kept; raw_size is what the sender streamed (here 3 GiB).
    const threeGiB = 3 * 1024 * 1024 * 1024;
    const outcomes = (await record([
      input('G', 'before'),
      input('H', 'first 64 KiB of a 3 GiB frame', { disposition: 'rejected', errorCode: 'ANCHORLINE_ERR_FRAME_TOO_LARGE', rawSize: threeGiB, ack: Buffer.from('NAK'), ackCode: 'AR' }),
      input('I', 'after'),
    ])) as any[];
    expect(outcomes.map((o) => o.kind)).toEqual(['stored', 'rejected', 'stored']);
    const row = (await db.pool.query('SELECT raw_size, raw_truncated, pg_typeof(raw_size)::text AS type FROM inbox_message WHERE id = $1', [outcomes[1].id])).rows[0];
    expect(row).toEqual({ raw_size: threeGiB, raw_truncated: true, type: 'bigint' });
    expect((await inbox.getMessage(db.pool, outcomes[1].id))?.rawSize).toBe(threeGiB);
  });

  it('holds every size or length column of the schema in bigint', async () => {
    const columns = await db.pool.query<{ table_name: string; column_name: string; data_type: string }>(
      `SELECT table_name, column_name, data_type FROM information_schema.columns
        WHERE table_schema = current_schema() AND (column_name LIKE '%size%' OR column_name LIKE '%length%' OR column_name LIKE '%bytes%')`,
    );
    expect(columns.rows.length).toBeGreaterThan(0);
    for (const column of columns.rows) expect(column.data_type, `${column.table_name}.${column.column_name}`).toBe('bigint');
  });
});

describe('recordAcceptedWithJobs: the group commit of the common case in one statement', () => {
  it('stores each message with its ingest job, or neither; names the inputs an earlier message holds', async () => {
    const { createPostgresQueue } = await import('../../queue/index.ts');
    const { silentLogger } = await import('../../config/logger.ts');
    const queue = await createPostgresQueue(db.pool, TEST_QUEUE_SETTINGS, silentLogger());
    try {
      const jobs = queue.inlineIngestEnqueue!.bind(queue);
      await record([input('ONE-1', 'held before')]);
      const ids = await inbox.recordAcceptedWithJobs(db.pool, [input('ONE-2', 'new'), input('ONE-1', 'held before'), input('ONE-3', 'new too')], jobs);
      expect(ids[1]).toBeUndefined();
      expect(ids[0]).toBeGreaterThan(0);
      expect(ids[2]).toBeGreaterThan(ids[0]!);
      // Each stored message has exactly the job enqueue(ingestJob(id)) would have made.
      const rows = await db.pool.query<{ job_key: string; data: { id: string } }>(`SELECT job_key, data FROM queue_job WHERE job_key = ANY($1::text[]) ORDER BY id`, [
        [`msg-${ids[0]}`, `msg-${ids[2]}`],
      ]);
      expect(rows.rows).toEqual([
        { job_key: `msg-${ids[0]}`, data: { id: String(ids[0]) } },
        { job_key: `msg-${ids[2]}`, data: { id: String(ids[2]) } },
      ]);
      // The held key then resolves as any collision does: a duplicate, with the stored ACK.
      const [again] = await record([input('ONE-1', 'held before')]);
      expect(again).toMatchObject({ kind: 'duplicate' });
      // A row PostgreSQL refuses for its values (class 22) stores nothing of the statement: no message, no job.
      await expect(inbox.recordAcceptedWithJobs(db.pool, [input('ONE-6', 'ok'), input('ONE-7', 'bad', { rawSize: 1e30 })], jobs)).rejects.toMatchObject({
        code: expect.stringMatching(/^22/),
      });
      const stored = await db.pool.query<{ n: number }>(
        `SELECT (SELECT count(*) FROM inbox_message WHERE control_id IN ('ONE-6', 'ONE-7'))::int + (SELECT count(*) FROM queue_job WHERE job_key NOT IN (SELECT 'msg-' || id FROM inbox_message))::int AS n`,
      );
      expect(stored.rows[0]!.n).toBe(0);
      // Inputs it cannot map back by key are refused, not guessed at.
      await expect(inbox.recordAcceptedWithJobs(db.pool, [input(null, 'no control id')], jobs)).rejects.toThrow(/plain control id/);
      await expect(inbox.recordAcceptedWithJobs(db.pool, [input('ONE-8', 'a'), input('ONE-8', 'b')], jobs)).rejects.toThrow(/different keys/);
    } finally {
      await queue.close();
    }
  });
});

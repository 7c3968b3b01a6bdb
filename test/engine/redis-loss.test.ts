/**
 * Redis is only a work distributor: when it dies mid-run (taking its jobs with it), intake keeps acknowledging
 * (messages are committed to Postgres), and once Redis is back the sweeper re-enqueues whatever was unfinished.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { adtMessage } from '../support/messages.ts';
import { hl7Field, MllpTestClient } from '../support/mllp-client.ts';
import { eventually, startTestEngine, type TestEngine } from '../support/engine.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';

let t: TestEngine | undefined;
const redises: TestRedis[] = [];

afterAll(async () => {
  await t?.destroy();
  for (const r of redises) await r.stop();
});

describe('losing Redis', () => {
  it('keeps acknowledging and finishes every message once Redis is back', async () => {
    const redis = await startTestRedis();
    redises.push(redis);
    t = await startTestEngine({ redisUrl: redis.url });
    expect(t.engine.queue.driver).toBe('bullmq');

    const client = await MllpTestClient.connect(t.mllpPort);
    const send = async (from: number, to: number): Promise<string[]> => {
      const acks: string[] = [];
      for (let i = from; i < to; i++) acks.push(await client.request(adtMessage({ controlId: `R-${i}`, mrn: `R${i}` })));
      return acks;
    };
    const before = await send(0, 40);
    await redis.kill();
    const during = await send(40, 80);
    expect([...before, ...during].every((a) => hl7Field(a, 'MSA', 1) === 'AA')).toBe(true);

    // While Redis is down nothing new is mapped, and nothing is lost.
    const { rows } = await t.pool.query(`SELECT count(*)::int AS n FROM inbox_message WHERE disposition = 'accepted'`);
    expect(rows[0].n).toBe(80);

    const revived = await startTestRedis([], redis.port);
    redises.push(revived);
    await eventually(async () => {
      const done = await t!.pool.query(`SELECT count(*)::int AS n FROM inbox_message WHERE state = 'done'`);
      return done.rows[0].n === 80;
    }, 60_000, 'all 80 messages mapped');
    await client.close();
    const versions = await t.pool.query(`SELECT count(*)::int AS n, max(version_id) AS latest FROM fhir_resource_history WHERE resource_type = 'Patient'`);
    expect(versions.rows[0]).toEqual({ n: 80, latest: 1 });
  });
});

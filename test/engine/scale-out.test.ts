/**
 * Scale-out topology: an intake-only node (workers.enabled=false) and separate `anchorline worker` engines against
 * the same PostgreSQL schema and Redis. Every message is mapped exactly once, by whichever worker takes it.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { adtMessage } from '../support/messages.ts';
import { hl7Field, MllpTestClient } from '../support/mllp-client.ts';
import { eventually, startTestEngine, type TestEngine } from '../support/engine.ts';
import { uniqueName } from '../support/db.ts';
import { startTestRedis, type TestRedis } from '../support/redis.ts';

const engines: TestEngine[] = [];
let redis: TestRedis | undefined;
afterAll(async () => {
  for (const e of engines.reverse()) await e.destroy();
  await redis?.stop();
});

describe('intake node with separate workers', () => {
  it('maps everything once across two worker processes', async () => {
    redis = await startTestRedis();
    const schema = uniqueName('scale');
    const intake = await startTestEngine({ schema, redisUrl: redis.url, overrides: { workers: { enabled: false } } });
    engines.push(intake);
    const client = await MllpTestClient.connect(intake.mllpPort);
    for (let i = 0; i < 60; i++) expect(hl7Field(await client.request(adtMessage({ controlId: `S-${i}`, mrn: `S${i}` })), 'MSA', 1)).toBe('AA');
    await client.close();
    // Nothing maps without workers.
    await new Promise((r) => setTimeout(r, 300));
    expect((await intake.pool.query(`SELECT count(*)::int AS n FROM inbox_message WHERE state = 'done'`)).rows[0].n).toBe(0);

    for (let w = 0; w < 2; w++) engines.push(await startTestEngine({ schema, redisUrl: redis.url, role: 'worker' }));
    await eventually(async () => (await intake.pool.query(`SELECT count(*)::int AS n FROM inbox_message WHERE state = 'done'`)).rows[0].n === 60, 30_000, 'all mapped');
    const versions = await intake.pool.query(`SELECT count(*)::int AS n, max(version_id) AS latest FROM fhir_resource_history WHERE resource_type = 'Patient'`);
    expect(versions.rows[0]).toEqual({ n: 60, latest: 1 });
  });
});

/**
 * Intake before mapping (workers.intakePriority): while the engine's ACKs are slower than the target, the share of
 * time its worker process maps is cut, the worker process is told and maps at that share, every message is still
 * mapped, and once intake is quiet the share is whole again.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adtMessage } from '../support/messages.ts';
import { MllpTestClient, hl7Field } from '../support/mllp-client.ts';
import { authHeaders, eventually, startTestEngine, type TestEngine } from '../support/engine.ts';

let t: TestEngine;

beforeAll(async () => {
  // A target no durable commit meets: every window of ACKs is over it.
  t = await startTestEngine({ overrides: { workers: { isolation: 'process', intakePriority: { ackTargetMs: 1, minMappingShare: 0.25 } } } });
}, 120_000);
afterAll(async () => {
  await t?.destroy();
});

describe('intake priority', () => {
  it('cuts the worker process\'s share of time while ACKs are over the target, maps everything, and gives the share back', async () => {
    expect(t.engine.mappingShare?.()).toBe(1);
    const client = await MllpTestClient.connect(t.mllpPort);
    let sent = 0;
    try {
      // Messages keep arriving until the engine has cut the share and the worker process reports mapping at it.
      const deadline = Date.now() + 30_000;
      let seen = false;
      while (!seen && Date.now() < deadline) {
        const ack = await client.request(adtMessage({ controlId: `PRIO-${sent}`, mrn: `PRIO${sent}` }));
        expect(hl7Field(ack, 'MSA', 1)).toBe('AA');
        sent++;
        const share = t.engine.mappingShare!();
        seen = share < 1 && t.engine.workerMappingShare?.() === share;
      }
      expect(seen).toBe(true);
      expect(t.engine.mappingShare!()).toBeGreaterThanOrEqual(0.25);
    } finally {
      await client.close();
    }

    // Nothing is left behind: every message acknowledged is mapped.
    await eventually(async () => {
      const { rows } = await t.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM inbox_message WHERE control_id LIKE 'PRIO-%' AND state = 'done'`);
      return rows[0]!.n === sent ? true : undefined;
    }, 60_000, 'every message to be mapped');
    const last = await fetch(`${t.httpUrl}/fhir/Patient?identifier=PRIO${sent - 1}`, { headers: authHeaders() });
    expect(((await last.json()) as { total?: number }).total).toBe(1);

    // Quiet: the share is whole again, in the engine and in the worker process.
    await eventually(async () => (t.engine.mappingShare!() === 1 && t.engine.workerMappingShare?.() === 1 ? true : undefined), 10_000, 'the share to be whole again');
  });
});

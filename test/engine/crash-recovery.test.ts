/**
 * The engine is SIGKILLed right after it acknowledged a burst of messages, most of them not yet mapped. After a
 * restart on the same data directory (its embedded PostgreSQL orphaned by the kill, postmaster.pid stale), every
 * acknowledged message is mapped, exactly once.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { adtMessage } from '../support/messages.ts';
import { hl7Field, MllpTestClient } from '../support/mllp-client.ts';
import { eventually, TEST_API_KEY } from '../support/engine.ts';
import { startChildEngine, type ChildEngine } from '../support/child-engine.ts';

const MESSAGES = 200;
const CONNECTIONS = 4;
let dataDir: string;
const children: ChildEngine[] = [];

afterAll(async () => {
  for (const child of children) if (child.process.exitCode === null) child.process.kill('SIGKILL');
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

function envFor(dir: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    ANCHORLINE_DATA_DIR: dir,
    ANCHORLINE_API_KEY: TEST_API_KEY,
    ANCHORLINE__SWEEPER__INTERVAL_MS: '300',
    ANCHORLINE__SWEEPER__STALE_AFTER_MS: '1000',
    ANCHORLINE__QUEUE__LOCK_MS: '2000',
    ...extra,
  };
}

describe('crash recovery', () => {
  it('maps every acknowledged message exactly once after SIGKILL and restart', async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'anchorline-crash-'));
    // One slow worker, so that most messages are still unmapped when the engine dies.
    const first = await startChildEngine(envFor(dataDir, { ANCHORLINE__QUEUE__CONCURRENCY: '1' }));
    children.push(first);

    const clients = await Promise.all(Array.from({ length: CONNECTIONS }, () => MllpTestClient.connect(first.mllpPort)));
    const acks: string[] = [];
    await Promise.all(
      clients.map(async (client, c) => {
        for (let i = c; i < MESSAGES; i += CONNECTIONS) {
          acks.push(await client.request(adtMessage({ controlId: `CRASH-${i}`, mrn: `C${i}` })));
        }
      }),
    );
    const password = (await readFile(path.join(dataDir, 'pg-password'), 'utf8')).trim();
    const url = (port: number | undefined): string => `postgres://anchorline:${encodeURIComponent(password)}@127.0.0.1:${port}/anchorline`;
    const before = new pg.Client({ connectionString: url(first.postgresPort) });
    await before.connect();
    const unmappedAtKill = (await before.query(`SELECT count(*)::int AS n FROM inbox_message WHERE state = 'queued'`)).rows[0].n as number;
    first.process.kill('SIGKILL');
    await first.exited;
    await before.end();
    expect(acks).toHaveLength(MESSAGES);
    expect(acks.every((a) => hl7Field(a, 'MSA', 1) === 'AA')).toBe(true);
    for (const client of clients) await client.close();

    const second = await startChildEngine(envFor(dataDir));
    children.push(second);
    expect(second.logs.some((l) => /left running|stale postmaster/.test(String(l.msg)))).toBe(true);

    const db = new pg.Client({ connectionString: url(second.postgresPort) });
    await db.connect();
    try {
      await eventually(async () => {
        const { rows } = await db.query(`SELECT count(*)::int AS n FROM inbox_message WHERE state = 'done'`);
        return rows[0].n === MESSAGES;
      }, 60_000, 'all messages mapped');
      const accepted = await db.query(`SELECT count(*)::int AS n FROM inbox_message WHERE disposition = 'accepted'`);
      expect(accepted.rows[0].n).toBe(MESSAGES);
      const versions = await db.query(`SELECT id, count(*)::int AS versions, max(version_id) AS latest FROM fhir_resource_history WHERE resource_type = 'Patient' GROUP BY id`);
      expect(versions.rows).toHaveLength(MESSAGES);
      expect(versions.rows.every((r) => r.versions === 1 && r.latest === 1)).toBe(true);
      const sources = await db.query(`SELECT count(DISTINCT source_message_id)::int AS n FROM fhir_resource_history WHERE resource_type = 'Patient'`);
      expect(sources.rows[0].n).toBe(MESSAGES);
      // Not an assertion of the property, only of the test's power: the kill must have caught unmapped work.
      expect(unmappedAtKill).toBeGreaterThan(0);
    } finally {
      await db.end();
    }

    // Graceful shutdown: SIGTERM drains and exits 0.
    second.process.kill('SIGTERM');
    expect(await second.exited).toBe(0);
    // Two engine starts, each with its worker process, on a machine that may be busy: minutes, not one.
  }, 240_000);
});

/**
 * Mapping yields the cores to intake: the worker process `start` forks runs at workers.niceness, and so do the
 * PostgreSQL sessions of its mapping and background pools on a server on this host; intake's and the API's sessions
 * keep their priority. It runs with the young generation workers.semiSpaceMb sets, scavenged on its own thread.
 */
import { readFile } from 'node:fs/promises';
import { getPriority } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adtMessage } from '../support/messages.ts';
import { MllpTestClient, hl7Field } from '../support/mllp-client.ts';
import { authHeaders, eventually, startTestEngine, type TestEngine } from '../support/engine.ts';
import { overUnixSocket } from '../../store/db.ts';
import { testDatabaseUrl } from '../support/db.ts';

const NICENESS = 7;
const SEMI_SPACE_MB = 48;
let t: TestEngine;

beforeAll(async () => {
  t = await startTestEngine({ overrides: { workers: { isolation: 'process', niceness: NICENESS, semiSpaceMb: SEMI_SPACE_MB } } });
}, 120_000);
afterAll(async () => {
  await t?.destroy();
});

/** The niceness of each server session whose application name is `name`, by process id. */
async function sessionNiceness(name: string): Promise<number[]> {
  const { rows } = await t.pool.query<{ pid: number }>(`SELECT pid FROM pg_stat_activity WHERE application_name = $1`, [name]);
  return rows.flatMap(({ pid }) => {
    try {
      return [getPriority(pid)];
    } catch {
      return []; // the session ended meanwhile
    }
  });
}

describe('worker priority', () => {
  it('runs the worker process and its mapping sessions at workers.niceness, intake at its own', async () => {
    // The tests' server is reached over its Unix socket, as the embedded one is.
    expect(overUnixSocket(testDatabaseUrl())).toBe(true);
    const client = await MllpTestClient.connect(t.mllpPort);
    try {
      const ack = await client.request(adtMessage({ controlId: 'NICE-1', mrn: 'NICE1' }));
      expect(hl7Field(ack, 'MSA', 1)).toBe('AA');
    } finally {
      await client.close();
    }
    await eventually(async () => {
      const response = await fetch(`${t.httpUrl}/fhir/Patient?identifier=NICE1`, { headers: authHeaders() });
      return ((await response.json()) as { total?: number }).total === 1 ? true : undefined;
    });

    const workerPid = t.engine.workerProcessPid?.();
    expect(workerPid).toBeGreaterThan(0);
    expect(getPriority(workerPid!)).toBe(NICENESS);
    expect(getPriority()).toBeLessThan(NICENESS);
    // ...with the young generation workers.semiSpaceMb sets, and the heap limit of workers.maxHeapMb, once each.
    const argv = (await readFile(`/proc/${workerPid}/cmdline`, 'utf8')).split('\u0000');
    expect(argv.filter((arg) => arg.startsWith('--max-semi-space-size'))).toEqual([`--max-semi-space-size=${SEMI_SPACE_MB}`]);
    expect(argv.filter((arg) => arg.startsWith('--max-old-space-size'))).toEqual([`--max-old-space-size=${t.config.workers.maxHeapMb}`]);
    // Its scavenges on its own thread (workers.parallelScavenge false by default), not on intake's cores too.
    expect(t.config.workers.parallelScavenge).toBe(false);
    expect(argv.filter((arg) => /parallel-scavenge/.test(arg))).toEqual(['--no-parallel-scavenge']);

    // The mapping transaction ran on a session of the worker's pool; other engines on this server use the default
    // niceness, so a session at NICENESS is this engine's.
    const mapping = await sessionNiceness('anchorline-worker/workers');
    expect(mapping).toContain(NICENESS);
    // Intake and the API are never lowered, in any engine on the server.
    const intake = [...(await sessionNiceness('anchorline-all/intake')), ...(await sessionNiceness('anchorline-all/api'))];
    expect(intake.length).toBeGreaterThan(0);
    expect(intake.every((n) => n === getPriority())).toBe(true);
  }, 60_000);

  it('knows a server on this host only by a Unix socket', () => {
    expect(overUnixSocket('postgres://u:p@127.0.0.1:5432/db?host=%2Ftmp%2Fpg-socket')).toBe(true);
    expect(overUnixSocket('postgres://u:p@%2Fvar%2Frun%2Fpostgresql/db')).toBe(true);
    expect(overUnixSocket('postgres://u:p@127.0.0.1:5432/db')).toBe(false);
    expect(overUnixSocket('postgres://u:p@db.example:5432/db')).toBe(false);
    expect(overUnixSocket('not a url')).toBe(false);
  });
});

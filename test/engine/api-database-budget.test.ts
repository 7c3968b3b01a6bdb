/**
 * The API's database budget: its own connection pool, a statement timeout on every API query, and cancellation when
 * the client goes away, so that readers cannot stop HL7 intake.
 *
 * Slow queries are made deterministic by holding a lock the API's queries need: a test transaction takes fhir_resource
 * in ACCESS EXCLUSIVE mode, so every FHIR read and search (and its audit write) waits for it, holding an API
 * connection as a slow search does, while the intake (inbox and queue tables) does not touch it. Before the pools were
 * separate, a handful of such requests took every connection of the one pool and ADTs got AE STORE_UNAVAILABLE.
 */
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adtMessage } from '../support/messages.ts';
import { hl7Field, MllpTestClient } from '../support/mllp-client.ts';
import { authHeaders, eventually, startTestEngine, type TestEngine } from '../support/engine.ts';

const QUERY_TIMEOUT_MS = 1_500;
const API_CONNECTIONS = 4;
const FLOOD_CLIENTS = 16;

let t: TestEngine;
/** An engine whose statement timeout is far longer than any bound here: only cancellation can end its queries. */
let patient: TestEngine;

beforeAll(async () => {
  [t, patient] = await Promise.all([
    startTestEngine({ overrides: { http: { queryTimeoutMs: QUERY_TIMEOUT_MS }, database: { pools: { apiConnections: API_CONNECTIONS, intakeConnections: 4 } } } }),
    startTestEngine({ overrides: { http: { queryTimeoutMs: 120_000 }, database: { pools: { apiConnections: 2 } } } }),
  ]);
});
afterAll(async () => {
  await Promise.all([t?.destroy(), patient?.destroy()]);
});

/** Holds fhir_resource locked in a transaction of the test's own until the returned function is called. */
async function lockResources(engine: TestEngine): Promise<{ pid: number; release: () => Promise<void> }> {
  const client: pg.PoolClient = await engine.pool.connect();
  await client.query('BEGIN');
  await client.query('LOCK TABLE fhir_resource IN ACCESS EXCLUSIVE MODE');
  const pid = (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
  return {
    pid,
    release: async () => {
      await client.query('ROLLBACK').catch(() => undefined);
      client.release();
    },
  };
}

/** Backends waiting for the lock `holder` holds: the API queries it stalls. */
async function blockedBy(engine: TestEngine, holder: number): Promise<Array<{ pid: number; application_name: string; state: string }>> {
  return (await engine.pool.query(`SELECT pid, application_name, state FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))`, [holder])).rows;
}

describe('API database budget', () => {
  it('keeps acknowledging ADTs over MLLP while every API connection is held by slow searches', async () => {
    const client = await MllpTestClient.connect(t.mllpPort);
    expect(hl7Field(await client.request(adtMessage({ controlId: 'BUDGET-0', mrn: 'BUD0' })), 'MSA', 1)).toBe('AA');

    const lock = await lockResources(t);
    let flooding = true;
    const answers: Array<{ status: number; code: string | null }> = [];
    const flood = Array.from({ length: FLOOD_CLIENTS }, async (_, i) => {
      while (flooding) {
        const response = await fetch(`${t.httpUrl}/fhir/Patient?name=flood${i}&family=f${i}&given=g${i}`, { headers: authHeaders() });
        answers.push({ status: response.status, code: response.headers.get('x-anchorline-error') });
        await response.arrayBuffer();
      }
    });
    try {
      // Every API connection is taken by a search waiting on the lock; further searches queue for a connection.
      await eventually(async () => (await blockedBy(t, lock.pid)).length >= API_CONNECTIONS, 15_000, 'the API pool to be held by slow searches');

      const latencies: number[] = [];
      for (let i = 1; i <= 5; i++) {
        const started = performance.now();
        const ack = await client.request(adtMessage({ controlId: `BUDGET-${i}`, mrn: `BUD${i}` }));
        latencies.push(performance.now() - started);
        expect(hl7Field(ack, 'MSA', 1), `ADT ${i}`).toBe('AA');
        expect(hl7Field(ack, 'MSA', 2)).toBe(`BUDGET-${i}`);
      }
      // Generous for a loaded 2-core machine; with one shared pool these waited 10 s and came back AE.
      for (const ms of latencies) expect(ms).toBeLessThan(3_000);
      // The API is still saturated: the ACKs did not come from a lull in the flood.
      expect((await blockedBy(t, lock.pid)).length).toBeGreaterThanOrEqual(1);
      // The searches end at the statement timeout, with its coded error, and the next ones take their connections.
      await eventually(async () => answers.filter((a) => a.code === 'ANCHORLINE_ERR_QUERY_TIMEOUT').length >= API_CONNECTIONS, 15_000, 'searches to time out');
    } finally {
      flooding = false;
      await lock.release();
      await Promise.all(flood);
      await client.close();
    }
    // Searches that ran into the statement timeout ended with its coded error, never a hang or a 500.
    expect(answers.length).toBeGreaterThan(0);
    expect(answers.filter((a) => a.status === 503 && a.code === 'ANCHORLINE_ERR_QUERY_TIMEOUT').length).toBeGreaterThan(0);
    expect(answers.filter((a) => a.status >= 500 && a.code !== 'ANCHORLINE_ERR_QUERY_TIMEOUT')).toEqual([]);

    // Once the lock is gone, the API answers again and the messages acknowledged meanwhile are mapped.
    expect((await fetch(`${t.httpUrl}/fhir/Patient?name=flood0`, { headers: authHeaders() })).status).toBe(200);
    await eventually(async () => {
      const bundle = (await (await fetch(`${t.httpUrl}/fhir/Patient?identifier=BUD5`, { headers: authHeaders() })).json()) as any;
      return bundle.total === 1;
    }, 30_000, 'the ADT acknowledged during the flood to be mapped');
  });

  it('ends a query over http.queryTimeoutMs with 503 ANCHORLINE_ERR_QUERY_TIMEOUT', async () => {
    const lock = await lockResources(t);
    try {
      for (const path of ['/fhir/Patient?name=slow', '/fhir/Patient/slow-read']) {
        const started = performance.now();
        const response = await fetch(`${t.httpUrl}${path}`, { headers: authHeaders() });
        const elapsed = performance.now() - started;
        expect(response.status, path).toBe(503);
        expect(response.headers.get('x-anchorline-error'), path).toBe('ANCHORLINE_ERR_QUERY_TIMEOUT');
        const outcome = (await response.json()) as any;
        expect(outcome.resourceType).toBe('OperationOutcome');
        expect(outcome.issue[0].code).toBe('too-costly');
        expect(outcome.issue[0].details.text).toContain(`${QUERY_TIMEOUT_MS} ms (http.queryTimeoutMs)`);
        expect(elapsed, path).toBeGreaterThanOrEqual(QUERY_TIMEOUT_MS - 100);
        expect(elapsed, path).toBeLessThan(QUERY_TIMEOUT_MS + 8_000);
      }
    } finally {
      await lock.release();
    }
    // The pool is whole again: a read succeeds at once.
    expect((await fetch(`${t.httpUrl}/fhir/Patient?name=slow`, { headers: authHeaders() })).status).toBe(200);
  });

  it("cancels a disconnected client's query on the server", async () => {
    const lock = await lockResources(patient);
    try {
      const abandoned = new AbortController();
      const request = fetch(`${patient.httpUrl}/fhir/Patient?name=gone`, { headers: authHeaders(), signal: abandoned.signal }).catch((error: unknown) => error);
      // pg_stat_activity's state is read once per statement and pg_blocking_pids live, so a backend can show as
      // blocked while its state is still that of the moment before its query began: wait until both agree.
      const [waiting] = await eventually(async () => {
        const blocked = (await blockedBy(patient, lock.pid)).filter((b) => b.application_name.endsWith('/api') && b.state === 'active');
        return blocked.length > 0 ? blocked : undefined;
      }, 15_000, 'the search to run on the server, waiting on the lock');

      abandoned.abort();
      expect(await request).toBeInstanceOf(Error);
      // Its statement timeout is two minutes: only the cancellation can end it this soon.
      await eventually(async () => {
        const { rows } = await patient.pool.query(`SELECT state FROM pg_stat_activity WHERE pid = $1`, [waiting!.pid]);
        return rows.length === 0 || rows[0].state !== 'active';
      }, 5_000, 'the abandoned query to be cancelled');
      expect(await blockedBy(patient, lock.pid)).toEqual([]);
    } finally {
      await lock.release();
    }
    // The cancelled request left no connection behind: the pool (2 connections) serves two readers at once.
    const reads = await Promise.all([0, 1, 2].map(() => fetch(`${patient.httpUrl}/fhir/Patient?name=after`, { headers: authHeaders() })));
    expect(reads.map((r) => r.status)).toEqual([200, 200, 200]);
  });
});

/**
 * FHIR read throughput with the audit trail on: every answer waits for its AuditEvent and ledger leaf.
 *
 *   npm run bench:fhir-read -- [--clients 32] [--seconds 10] [--patients 300]
 *
 * Starts `anchorline start` on its defaults (embedded PostgreSQL, workers in their own process) in a temporary data
 * dir, stores --patients patients over MLLP, then runs --clients closed-loop HTTP clients on keep-alive connections
 * for --seconds each: reads by id (`GET /fhir/Patient/{id}`), then searches by identifier
 * (`GET /fhir/Patient?identifier={mrn}`). Prints requests per second, p50 and p99 latency, the answers by status,
 * the AuditEvents written during the run against the answers given, and the load average before and after.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { runningEmbeddedConnection } from '../store/index.ts';
import { adtMessage } from '../test/support/messages.ts';
import { MllpTestClient } from '../test/support/mllp-client.ts';
import { startChildEngine } from '../test/support/child-engine.ts';
import { describeLoad, HttpLoad, loadAverage } from './http-load.ts';

const { values } = parseArgs({
  options: {
    clients: { type: 'string', default: '32' },
    seconds: { type: 'string', default: '10' },
    patients: { type: 'string', default: '300' },
  },
});
const CLIENTS = Number(values.clients);
const SECONDS = Number(values.seconds);
const PATIENTS = Number(values.patients);
const KEY = 'bench-fhir-read-key-0123456789abcdef';
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const HEADERS = { authorization: `Bearer ${KEY}` };

async function auditEventCount(db: pg.Pool): Promise<number> {
  return (await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM fhir_resource WHERE resource_type = 'AuditEvent' AND content->'type'->>'code' = 'rest'`)).rows[0]!.n;
}

async function closedLoop(name: string, load: HttpLoad, db: pg.Pool, urlFor: (i: number) => string): Promise<void> {
  const eventsBefore = await auditEventCount(db);
  const loadBefore = loadAverage();
  const result = await load.run(CLIENTS, SECONDS, urlFor, () => HEADERS);
  const events = (await auditEventCount(db)) - eventsBefore;
  console.log(`${describeLoad(name, result)}  AuditEvents written ${events}  load ${loadBefore} -> ${loadAverage()}`);
}

const dataDir = await mkdtemp(path.join(os.tmpdir(), 'anchorline-fhir-read-'));
const engine = await startChildEngine({ ANCHORLINE_DATA_DIR: dataDir, ANCHORLINE_API_KEY: KEY }, 120_000).catch(async (error: unknown) => {
  await rm(dataDir, { recursive: true, force: true });
  throw error;
});
const db = new pg.Pool({ connectionString: runningEmbeddedConnection(dataDir)!, max: 1 });
const load = new HttpLoad(engine.httpPort, CLIENTS);
try {
  const mllp = await Promise.all(Array.from({ length: 4 }, () => MllpTestClient.connect(engine.mllpPort)));
  await Promise.all(mllp.map(async (client, c) => {
    for (let i = c; i < PATIENTS; i += mllp.length) await client.request(adtMessage({ controlId: `FR${i}`, mrn: `FRM${i}`, family: 'Reader', given: `P${i}` }));
  }));
  await Promise.all(mllp.map((c) => c.close()));
  let ids: string[] = [];
  for (let waited = 0; ids.length < PATIENTS && waited < 120; waited++) {
    const bundle = JSON.parse((await load.get(`/fhir/Patient?family=Reader&_count=1000`, HEADERS)).body) as { entry?: Array<{ resource: { id: string } }> };
    ids = (bundle.entry ?? []).map((e) => e.resource.id);
    if (ids.length < PATIENTS) await sleep(1000);
  }
  console.log(`${ids.length} patients stored; ${CLIENTS} keep-alive clients, ${SECONDS} s each, ${os.cpus().length} cores`);
  await closedLoop('warm-up (read by id)', load, db, (i) => `/fhir/Patient/${ids[i % ids.length]}`);
  await closedLoop('read by id', load, db, (i) => `/fhir/Patient/${ids[i % ids.length]}`);
  await closedLoop('search by identifier', load, db, (i) => `/fhir/Patient?identifier=FRM${i % PATIENTS}`);
} finally {
  load.close();
  await db.end();
  engine.process.kill('SIGTERM');
  await engine.exited;
  await rm(dataDir, { recursive: true, force: true });
}

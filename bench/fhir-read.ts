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
import http from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { runningEmbeddedConnection } from '../store/index.ts';
import { adtMessage } from '../test/support/messages.ts';
import { MllpTestClient } from '../test/support/mllp-client.ts';
import { startChildEngine } from '../test/support/child-engine.ts';

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

const agent = new http.Agent({ keepAlive: true, maxSockets: CLIENTS });

/** One GET on a keep-alive connection; node:http rather than fetch, whose own cost would bound the rate here. */
function get(port: number, url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const request = http.get({ host: '127.0.0.1', port, path: url, agent, headers: { authorization: `Bearer ${KEY}` } }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      response.on('error', reject);
    });
    request.on('error', reject);
  });
}

function load(): string {
  return os.loadavg().map((l) => l.toFixed(2)).join(' ');
}

async function auditEventCount(db: pg.Pool): Promise<number> {
  return (await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM fhir_resource WHERE resource_type = 'AuditEvent' AND content->'type'->>'code' = 'rest'`)).rows[0]!.n;
}

async function closedLoop(name: string, port: number, db: pg.Pool, urlFor: (i: number) => string): Promise<void> {
  const latencies: number[] = [];
  const statuses = new Map<number, number>();
  const eventsBefore = await auditEventCount(db);
  const loadBefore = load();
  let running = true;
  let n = 0;
  const started = performance.now();
  const clients = Array.from({ length: CLIENTS }, async () => {
    while (running) {
      const at = performance.now();
      const { status } = await get(port, urlFor(n++));
      latencies.push(performance.now() - at);
      statuses.set(status, (statuses.get(status) ?? 0) + 1);
    }
  });
  await sleep(SECONDS * 1000);
  running = false;
  await Promise.all(clients);
  const seconds = (performance.now() - started) / 1000;
  const sorted = latencies.sort((a, b) => a - b);
  const at = (p: number): string => (sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN).toFixed(1);
  const events = (await auditEventCount(db)) - eventsBefore;
  console.log(
    `${name.padEnd(22)} ${(sorted.length / seconds).toFixed(0).padStart(6)} req/s  p50 ${at(50)} ms  p99 ${at(99)} ms  ` +
      `answers ${[...statuses].map(([s, c]) => `${s}: ${c}`).join(', ')}  AuditEvents written ${events}  load ${loadBefore} -> ${load()}`,
  );
}

const dataDir = await mkdtemp(path.join(os.tmpdir(), 'anchorline-fhir-read-'));
const engine = await startChildEngine({ ANCHORLINE_DATA_DIR: dataDir, ANCHORLINE_API_KEY: KEY }, 120_000).catch(async (error: unknown) => {
  await rm(dataDir, { recursive: true, force: true });
  throw error;
});
const db = new pg.Pool({ connectionString: runningEmbeddedConnection(dataDir)!, max: 1 });
try {
  const mllp = await Promise.all(Array.from({ length: 4 }, () => MllpTestClient.connect(engine.mllpPort)));
  await Promise.all(mllp.map(async (client, c) => {
    for (let i = c; i < PATIENTS; i += mllp.length) await client.request(adtMessage({ controlId: `FR${i}`, mrn: `FRM${i}`, family: 'Reader', given: `P${i}` }));
  }));
  await Promise.all(mllp.map((c) => c.close()));
  let ids: string[] = [];
  for (let waited = 0; ids.length < PATIENTS && waited < 120; waited++) {
    const bundle = JSON.parse((await get(engine.httpPort, `/fhir/Patient?family=Reader&_count=1000`)).body) as { entry?: Array<{ resource: { id: string } }> };
    ids = (bundle.entry ?? []).map((e) => e.resource.id);
    if (ids.length < PATIENTS) await sleep(1000);
  }
  console.log(`${ids.length} patients stored; ${CLIENTS} keep-alive clients, ${SECONDS} s each, ${os.cpus().length} cores`);
  await closedLoop('warm-up (read by id)', engine.httpPort, db, (i) => `/fhir/Patient/${ids[i % ids.length]}`);
  await closedLoop('read by id', engine.httpPort, db, (i) => `/fhir/Patient/${ids[i % ids.length]}`);
  await closedLoop('search by identifier', engine.httpPort, db, (i) => `/fhir/Patient?identifier=FRM${i % PATIENTS}`);
} finally {
  agent.destroy();
  await db.end();
  engine.process.kill('SIGTERM');
  await engine.exited;
  await rm(dataDir, { recursive: true, force: true });
}

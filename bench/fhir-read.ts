/**
 * FHIR read throughput with the audit trail on and off.
 *
 *   npm run bench:fhir-read -- [--clients 32] [--seconds 8] [--patients 300] [--rounds 2] [--audit both|on|off] [--sources]
 *                           [--baselines]
 *
 * Starts `anchorline start` on its defaults (embedded PostgreSQL, workers in their own process), compiled as
 * `npm start` runs it (--sources: the TypeScript through tsx; engine-code.ts), in a temporary data dir and stores
 * --patients patients over MLLP. Then, for each round, restarts the engine on that data dir with the read audit trail
 * on (every answer waits for its AuditEvent and ledger leaf) and off (`http.auditReads: false`,
 * which exists only for this measurement), alternating, and runs --clients closed-loop HTTP clients on keep-alive
 * connections for --seconds each: reads by id (`GET /fhir/Patient/{id}`), then searches by identifier
 * (`GET /fhir/Patient?identifier={mrn}`). Prints requests per second, p50 and p99 latency, the answers by status, the
 * AuditEvents written against the answers given, the load average, and at the end the rate with the audit trail as a
 * share of the rate without (alternating rounds in one run: this machine is shared and noisy). On Linux each phase also
 * prints its CPU time per request (cpu-meter.ts), and the summary the server's (engine, worker process, PostgreSQL) CPU
 * per request with and without the audit trail: the ratio that holds when the rates swing.
 *
 * --baselines first measures, with the same clients on the same PostgreSQL, what a bare node:http server does
 * (bare-read-server.ts): answering alone, with one SELECT a request, and with that and one durable group-committed row
 * a request, over as many stored rows as --patients; the summary then gives the engine's rates as shares of those
 * limits.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { runningEmbeddedConnection } from '../store/index.ts';
import { adtMessage } from '../test/support/messages.ts';
import { MllpTestClient } from '../test/support/mllp-client.ts';
import { startChildEngine, type ChildEngine } from '../test/support/child-engine.ts';
import { CpuMeter, embeddedPostgresPid, engineCpu, printCpuBudget } from './cpu-meter.ts';
import { engineCode } from './engine-code.ts';
import { describeLoad, HttpLoad, loadAverage, type LoadResult } from './http-load.ts';

const { values } = parseArgs({
  options: {
    clients: { type: 'string', default: '32' },
    seconds: { type: 'string', default: '8' },
    patients: { type: 'string', default: '300' },
    rounds: { type: 'string', default: '2' },
    audit: { type: 'string', default: 'both' },
    sources: { type: 'boolean', default: false },
    baselines: { type: 'boolean', default: false },
  },
});
const CLIENTS = Number(values.clients);
const SECONDS = Number(values.seconds);
const PATIENTS = Number(values.patients);
const ROUNDS = Number(values.rounds);
if (!['both', 'on', 'off'].includes(values.audit!)) throw new Error('--audit is both, on or off');
const CODE = engineCode(values.sources);
const MODES: Array<'on' | 'off'> = values.audit === 'both' ? ['on', 'off'] : [values.audit as 'on' | 'off'];
const KEY = 'bench-fhir-read-key-0123456789abcdef';
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const HEADERS = { authorization: `Bearer ${KEY}` };

async function auditEventCount(db: pg.Pool): Promise<number> {
  return (await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM fhir_current WHERE resource_type = 'AuditEvent'`)).rows[0]!.n;
}

const meter = CpuMeter.open();

async function closedLoop(name: string, load: HttpLoad, db: pg.Pool, urlFor: (i: number) => string): Promise<{ result: LoadResult; cpu: number | undefined }> {
  const eventsBefore = await auditEventCount(db);
  const loadBefore = loadAverage();
  const measured = await engineCpu(meter, engine, name.trim(), 'request', async () => {
    const result = await load.run(CLIENTS, SECONDS, urlFor, () => HEADERS);
    return { result, units: result.requests };
  });
  const events = (await auditEventCount(db)) - eventsBefore;
  console.log(`${describeLoad(name, measured.result)}  AuditEvents written ${events}  load ${loadBefore} -> ${loadAverage()}`);
  return measured;
}

type BareMode = 'http' | 'select' | 'write';
const BARE_MODES: Record<BareMode, string> = {
  http: 'bare HTTP, nothing stored',
  select: 'bare HTTP + 1 SELECT',
  write: 'bare + SELECT + durable row',
};

/** One phase of a bare server (bare-read-server.ts) on the engine's PostgreSQL: requests per second. */
async function bareRate(mode: BareMode, databaseUrl: string, postgresPid: number | undefined): Promise<number> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(import.meta.dirname, 'bare-read-server.ts'), mode, databaseUrl, String(PATIENTS)], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const port = await new Promise<number>((resolve, reject) => {
      child.once('exit', (code) => reject(new Error(`bare server exited with ${code}`)));
      child.stdout!.on('data', (data: Buffer) => {
        const match = /PORT (\d+)/.exec(data.toString());
        if (match) resolve(Number(match[1]));
      });
    });
    const load = new HttpLoad(port, CLIENTS);
    try {
      const url = (i: number): string => `/fhir/Patient/p${i % PATIENTS}`;
      await load.run(CLIENTS, 2, url, () => HEADERS);
      const roots = new Map<string, number>([['bare server', child.pid!], ...(postgresPid === undefined ? [] : [['PostgreSQL', postgresPid] as [string, number]])]);
      const loadBefore = loadAverage();
      const before = meter?.sample(roots);
      const result = await load.run(CLIENTS, SECONDS, url, () => HEADERS);
      const after = meter?.sample(roots);
      if (before && after) printCpuBudget(`  ${BARE_MODES[mode]}`, before, after, result.requests, 'request');
      console.log(`${describeLoad(`  ${BARE_MODES[mode]}`, result)}  load ${loadBefore} -> ${loadAverage()}`);
      return result.requestsPerSecond;
    } finally {
      load.close();
    }
  } finally {
    child.kill('SIGTERM');
  }
}

async function start(dataDir: string, auditReads: boolean): Promise<ChildEngine> {
  return startChildEngine({ ANCHORLINE_DATA_DIR: dataDir, ANCHORLINE_API_KEY: KEY, ANCHORLINE__HTTP__AUDIT_READS: String(auditReads) }, 120_000, 'start', CODE);
}

async function stop(engine: ChildEngine): Promise<void> {
  engine.process.kill('SIGTERM');
  await engine.exited;
}

const dataDir = await mkdtemp(path.join(os.tmpdir(), 'anchorline-fhir-read-'));
let engine = await start(dataDir, true).catch(async (error: unknown) => {
  await rm(dataDir, { recursive: true, force: true });
  throw error;
});
type Figures = { read: number[]; search: number[]; readCpu: number[]; searchCpu: number[] };
const results: Record<'on' | 'off', Figures> = { on: { read: [], search: [], readCpu: [], searchCpu: [] }, off: { read: [], search: [], readCpu: [], searchCpu: [] } };
try {
  const mllp = await Promise.all(Array.from({ length: 4 }, () => MllpTestClient.connect(engine.mllpPort)));
  await Promise.all(mllp.map(async (client, c) => {
    for (let i = c; i < PATIENTS; i += mllp.length) await client.request(adtMessage({ controlId: `FR${i}`, mrn: `FRM${i}`, family: 'Reader', given: `P${i}` }));
  }));
  await Promise.all(mllp.map((c) => c.close()));
  let ids: string[] = [];
  const seeding = new HttpLoad(engine.httpPort, 1);
  for (let waited = 0; ids.length < PATIENTS && waited < 120; waited++) {
    const bundle = JSON.parse((await seeding.get(`/fhir/Patient?family=Reader&_count=1000`, HEADERS)).body) as { entry?: Array<{ resource: { id: string } }> };
    ids = (bundle.entry ?? []).map((e) => e.resource.id);
    if (ids.length < PATIENTS) await sleep(1000);
  }
  seeding.close();
  console.log(`${ids.length} patients stored; ${CLIENTS} keep-alive clients, ${SECONDS} s a phase, ${ROUNDS} rounds, ${os.cpus().length} cores`);
  const bare = new Map<BareMode, number>();
  if (values.baselines) {
    console.log('baselines: bare node:http servers, the same clients, the engine\'s PostgreSQL');
    for (const mode of Object.keys(BARE_MODES) as BareMode[]) bare.set(mode, await bareRate(mode, runningEmbeddedConnection(dataDir)!, embeddedPostgresPid(engine)));
  }
  for (let round = 1; round <= ROUNDS; round++) {
    for (const mode of MODES) {
      await stop(engine);
      engine = await start(dataDir, mode === 'on');
      const db = new pg.Pool({ connectionString: runningEmbeddedConnection(dataDir)!, max: 1 });
      const load = new HttpLoad(engine.httpPort, CLIENTS);
      try {
        console.log(`round ${round}, audit trail ${mode}`);
        await closedLoop('  warm-up (read by id)', load, db, (i) => `/fhir/Patient/${ids[i % ids.length]}`);
        const read = await closedLoop('  read by id', load, db, (i) => `/fhir/Patient/${ids[i % ids.length]}`);
        results[mode].read.push(read.result.requestsPerSecond);
        if (read.cpu !== undefined) results[mode].readCpu.push(read.cpu);
        const search = await closedLoop('  search by identifier', load, db, (i) => `/fhir/Patient?identifier=FRM${i % PATIENTS}`);
        results[mode].search.push(search.result.requestsPerSecond);
        if (search.cpu !== undefined) results[mode].searchCpu.push(search.cpu);
      } finally {
        load.close();
        await db.end();
      }
    }
  }
  const mean = (list: number[]): number => list.reduce((a, b) => a + b, 0) / list.length;
  const rates = (list: number[]): string => `${mean(list).toFixed(0)} req/s (${list.map((r) => r.toFixed(0)).join('/')})`;
  console.log('summary');
  const cpu = (list: number[]): string => (list.length === 0 ? 'not measured' : `${mean(list).toFixed(3)} CPU-ms (${list.map((c) => c.toFixed(3)).join('/')})`);
  for (const mode of MODES) {
    console.log(`  audit ${mode.padEnd(3)}  read by id ${rates(results[mode].read)}  search by identifier ${rates(results[mode].search)}`);
    console.log(`             server CPU per request (engine, worker, PostgreSQL): read by id ${cpu(results[mode].readCpu)}, search ${cpu(results[mode].searchCpu)}`);
  }
  if (MODES.length === 2) {
    console.log(`  with the audit trail, as a share of without: read by id ${((100 * mean(results.on.read)) / mean(results.off.read)).toFixed(0)} %, search by identifier ${((100 * mean(results.on.search)) / mean(results.off.search)).toFixed(0)} %`);
    if (results.on.readCpu.length > 0 && results.off.readCpu.length > 0) {
      console.log(`  server CPU per request with the audit trail, as a multiple of without: read by id ${(mean(results.on.readCpu) / mean(results.off.readCpu)).toFixed(2)}x, search by identifier ${(mean(results.on.searchCpu) / mean(results.off.searchCpu)).toFixed(2)}x`);
    }
  }
  if (bare.size > 0) {
    const share = (rate: number, limit: BareMode): string => `${((100 * rate) / bare.get(limit)!).toFixed(0)} % of ${BARE_MODES[limit]} (${bare.get(limit)!.toFixed(0)} req/s)`;
    if (results.on.read.length > 0) console.log(`  audit on:  read by id ${share(mean(results.on.read), 'write')}; search ${share(mean(results.on.search), 'write')}`);
    if (results.off.read.length > 0) console.log(`  audit off: read by id ${share(mean(results.off.read), 'select')}; search ${share(mean(results.off.search), 'select')}`);
  }
  console.log(`  load average at the end ${loadAverage()}`);
} finally {
  await stop(engine);
  await rm(dataDir, { recursive: true, force: true });
}

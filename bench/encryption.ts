/**
 * What encryption at rest costs: end-to-end mapping throughput and FHIR read throughput with encryption.enabled true
 * and false, in one run, on one data dir, alternating (on, off, on, off) so that the machine's drift shows as spread,
 * not as a ratio.
 *
 *   npm run bench:encryption -- [--messages 3000] [--connections 8] [--clients 32] [--seconds 8] [--rounds 2]
 *
 * Each phase restarts `anchorline start` (embedded PostgreSQL, workers in their own process) with the setting, then
 *  1. mapped: --connections closed-loop MLLP senders send --messages ADT^A01s, each a new patient; the time from the
 *     first send until the inbox has no queued message is the end-to-end rate (acknowledged, mapped, sealed or not);
 *  2. read:   --clients keep-alive clients read the patients written under the phase's setting by id
 *     (`GET /fhir/Patient/{id}`) for --seconds: sealed ones open per read with encryption on, plain ones with it off.
 * Prints each phase, then the mean of each setting and the cost (1 - on/off). On Linux each phase also prints its CPU
 * time per message or request (cpu-meter.ts): the engine with its worker process, PostgreSQL, and this load generator;
 * the engine and PostgreSQL together are what the setting costs the server, whatever else the machine is doing, and
 * their ratio is the cost that holds when the rates swing.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { runningEmbeddedConnection } from '../store/index.ts';
import { adtMessage } from '../test/support/messages.ts';
import { MllpTestClient } from '../test/support/mllp-client.ts';
import { startChildEngine, type ChildEngine } from '../test/support/child-engine.ts';
import { CpuMeter, engineCpu } from './cpu-meter.ts';
import { describeLoad, HttpLoad, loadAverage } from './http-load.ts';

const { values } = parseArgs({
  options: {
    messages: { type: 'string', default: '3000' },
    connections: { type: 'string', default: '8' },
    clients: { type: 'string', default: '32' },
    seconds: { type: 'string', default: '8' },
    rounds: { type: 'string', default: '2' },
  },
});
const MESSAGES = Number(values.messages);
const CONNECTIONS = Number(values.connections);
const CLIENTS = Number(values.clients);
const SECONDS = Number(values.seconds);
const ROUNDS = Number(values.rounds);
const KEY = 'bench-encryption-key-0123456789abcdef';
const HEADERS = { authorization: `Bearer ${KEY}` };
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

const dataDir = await mkdtemp(path.join(os.tmpdir(), 'anchorline-encryption-'));
const start = (enabled: boolean): Promise<ChildEngine> =>
  startChildEngine({ ANCHORLINE_DATA_DIR: dataDir, ANCHORLINE_API_KEY: KEY, ANCHORLINE__ENCRYPTION__ENABLED: String(enabled) }, 120_000);
const stop = async (engine: ChildEngine): Promise<void> => {
  engine.process.kill('SIGTERM');
  await engine.exited;
};

async function queued(db: pg.Pool): Promise<number> {
  return (await db.query<{ n: number }>("SELECT count(*)::int AS n FROM inbox_message WHERE state = 'queued'")).rows[0]!.n;
}

const meter = CpuMeter.open();
const serverCpu = <T>(engine: ChildEngine, phase: string, unit: string, work: () => Promise<{ result: T; units: number }>) => engineCpu(meter, engine, phase, unit, work);

/** Sends MESSAGES new patients over CONNECTIONS closed-loop senders; resolves when all are mapped. Returns msg/s. */
async function mapped(engine: ChildEngine, db: pg.Pool, phase: string): Promise<number> {
  const clients = await Promise.all(Array.from({ length: CONNECTIONS }, () => MllpTestClient.connect(engine.mllpPort)));
  const started = performance.now();
  await Promise.all(clients.map(async (client, c) => {
    for (let i = c; i < MESSAGES; i += CONNECTIONS) {
      await client.request(adtMessage({ controlId: `${phase}-${i}`, mrn: `${phase}M${i}`, family: `Enc${phase.replace(/\d+$/, '')}`, given: `P${i}` }));
    }
  }));
  await Promise.all(clients.map((c) => c.close()));
  while ((await queued(db)) > 0) await sleep(20);
  return MESSAGES / ((performance.now() - started) / 1000);
}

const results = new Map<string, number[]>();
const note = (key: string, value: number): void => void results.set(key, [...(results.get(key) ?? []), value]);
let engine: ChildEngine | undefined;
let db: pg.Pool | undefined;
try {
  console.log(`${MESSAGES} ADT^A01 a phase on ${CONNECTIONS} MLLP connections; reads: ${CLIENTS} keep-alive clients, ${SECONDS} s; ${os.cpus().length} cores`);
  for (let round = 1; round <= ROUNDS; round++) {
    for (const enabled of [true, false]) {
      const label = enabled ? 'on' : 'off';
      engine = await start(enabled);
      db ??= new pg.Pool({ connectionString: runningEmbeddedConnection(dataDir)!, max: 1 });
      const loadBefore = loadAverage();
      const mappedPhase = await serverCpu(engine, `encryption ${label} mapped`, 'message', async () => ({ result: await mapped(engine!, db!, `${label}${round}`), units: MESSAGES }));
      const rate = mappedPhase.result;
      note(`mapped | ${label}`, rate);
      if (mappedPhase.cpu !== undefined) note(`mapped cpu | ${label}`, mappedPhase.cpu);
      console.log(`encryption ${label.padEnd(3)} mapped end to end   ${rate.toFixed(0).padStart(6)} msg/s`);
      const load = new HttpLoad(engine.httpPort, CLIENTS);
      const bundle = JSON.parse((await load.get(`/fhir/Patient?family=Enc${label}&_count=1000`, HEADERS)).body) as { entry?: Array<{ resource: { id: string } }> };
      const ids = (bundle.entry ?? []).map((e) => e.resource.id);
      if (ids.length === 0) throw new Error('no patients to read');
      // Warm-up: JIT, connections, and the data keys of the patients read (unwrapped once, then cached).
      await load.run(CLIENTS, Math.max(3, SECONDS / 2), (i) => `/fhir/Patient/${ids[i % ids.length]}`, () => HEADERS);
      const readPhase = await serverCpu(engine, `encryption ${label} read by id`, 'request', async () => {
        const result = await load.run(CLIENTS, SECONDS, (i) => `/fhir/Patient/${ids[i % ids.length]}`, () => HEADERS);
        return { result, units: result.requests };
      });
      const read = readPhase.result;
      note(`read | ${label}`, read.requestsPerSecond);
      if (readPhase.cpu !== undefined) note(`read cpu | ${label}`, readPhase.cpu);
      console.log(`encryption ${label.padEnd(3)} ${describeLoad(`read by id (${ids.length} patients)`, read)}  load ${loadBefore} -> ${loadAverage()}`);
      load.close();
      await db.end();
      db = undefined;
      await stop(engine);
      engine = undefined;
    }
  }
  const mean = (list: number[] | undefined): number => (list && list.length > 0 ? list.reduce((a, b) => a + b, 0) / list.length : NaN);
  console.log('\nmean over the phases, and what encryption costs (1 - on/off):');
  for (const name of ['mapped', 'read']) {
    const on = mean(results.get(`${name} | on`));
    const off = mean(results.get(`${name} | off`));
    const spread = (label: string): string => (results.get(`${name} | ${label}`) ?? []).map((v) => v.toFixed(0)).join('/');
    console.log(`  ${name.padEnd(8)} on ${on.toFixed(0).padStart(6)} (${spread('on')})  off ${off.toFixed(0).padStart(6)} (${spread('off')})  cost ${((1 - on / off) * 100).toFixed(1)} %`);
  }
  if (meter !== undefined) {
    console.log('server CPU (engine, its worker process and PostgreSQL) per message or request, and what encryption costs by it (1 - off/on):');
    for (const name of ['mapped', 'read']) {
      const on = mean(results.get(`${name} cpu | on`));
      const off = mean(results.get(`${name} cpu | off`));
      const spread = (label: string): string => (results.get(`${name} cpu | ${label}`) ?? []).map((v) => v.toFixed(3)).join('/');
      console.log(`  ${name.padEnd(8)} on ${on.toFixed(3)} ms (${spread('on')})  off ${off.toFixed(3)} ms (${spread('off')})  cost ${((1 - off / on) * 100).toFixed(1)} %`);
    }
  }
} finally {
  await db?.end();
  if (engine) await stop(engine);
  await rm(dataDir, { recursive: true, force: true });
}

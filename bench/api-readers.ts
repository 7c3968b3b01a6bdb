/**
 * MLLP ACK latency while API clients read: does reading records slow intake?
 *
 *   npx tsx bench/api-readers.ts [--readers 32] [--searchers 0] [--rate 100] [--seconds 10]
 *
 * Starts `anchorline start` on its defaults (embedded PostgreSQL, workers in their own process) in a temporary data
 * dir, stores a few hundred patients, then sends ADTs over MLLP at --rate msg/s (4 connections, each waiting for its
 * ACK) for --seconds: first alone, then while --readers clients read Patients by id in a closed loop and --searchers
 * clients run searches with as many criteria as the API allows (http.maxSearchParameters). Prints ACK latency of both
 * phases and what the readers got.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { adtMessage } from '../test/support/messages.ts';
import { hl7Field, MllpTestClient } from '../test/support/mllp-client.ts';
import { startChildEngine } from '../test/support/child-engine.ts';

const { values } = parseArgs({
  options: {
    readers: { type: 'string', default: '32' },
    searchers: { type: 'string', default: '0' },
    rate: { type: 'string', default: '100' },
    seconds: { type: 'string', default: '10' },
  },
});
const READERS = Number(values.readers);
const SEARCHERS = Number(values.searchers);
const RATE = Number(values.rate);
const SECONDS = Number(values.seconds);
const KEY = 'bench-api-readers-key-0123456789abcdef';
const CONNECTIONS = 4;
const PATIENTS = 300;

let counter = 0;
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function summarise(latencies: number[]): string {
  const sorted = [...latencies].sort((a, b) => a - b);
  const at = (p: number): string => (sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN).toFixed(1);
  return `${sorted.length} ACKs, p50 ${at(50)} ms, p99 ${at(99)} ms, max ${sorted.at(-1)?.toFixed(1)} ms, not AA: ${notAccepted}`;
}

let notAccepted = 0;

/** Paced sends: each connection sends its next ADT at its next slot, after the previous ACK. */
async function steadyAcks(clients: MllpTestClient[]): Promise<number[]> {
  const latencies: number[] = [];
  const intervalMs = (1000 * clients.length) / RATE;
  const end = performance.now() + SECONDS * 1000;
  await Promise.all(clients.map(async (client, c) => {
    let next = performance.now() + (c * intervalMs) / clients.length;
    while (next < end) {
      await sleep(Math.max(0, next - performance.now()));
      const i = counter++;
      const started = performance.now();
      const ack = await client.request(adtMessage({ controlId: `AR${i}`, mrn: `ARM${i}`, family: 'Reader', given: `P${i}` }));
      latencies.push(performance.now() - started);
      if (hl7Field(ack, 'MSA', 1) !== 'AA') notAccepted++;
      next += intervalMs;
    }
  }));
  return latencies;
}

const dataDir = await mkdtemp(path.join(os.tmpdir(), 'anchorline-api-readers-'));
const engine = await startChildEngine({ ANCHORLINE_DATA_DIR: dataDir, ANCHORLINE_API_KEY: KEY }, 120_000).catch(async (error: unknown) => {
  await rm(dataDir, { recursive: true, force: true });
  throw error;
});
const http = `http://127.0.0.1:${engine.httpPort}`;
const headers = { authorization: `Bearer ${KEY}` };
try {
  const clients = await Promise.all(Array.from({ length: CONNECTIONS }, () => MllpTestClient.connect(engine.mllpPort)));
  for (let i = 0; i < PATIENTS; i++) await clients[i % CONNECTIONS]!.request(adtMessage({ controlId: `SEED${i}`, mrn: `SEED${i}`, family: 'Seed', given: `P${i}` }));
  let ids: string[] = [];
  for (let waited = 0; ids.length < PATIENTS && waited < 120; waited++) {
    const bundle = (await (await fetch(`${http}/fhir/Patient?family=Seed&_count=1000`, { headers })).json()) as { entry?: Array<{ resource: { id: string } }> };
    ids = (bundle.entry ?? []).map((e) => e.resource.id);
    if (ids.length < PATIENTS) await sleep(1000);
  }
  console.log(`seeded:  ${ids.length} patients`);

  console.log(`alone:   ${summarise(await steadyAcks(clients))}`);
  notAccepted = 0;

  let reading = true;
  const outcomes = new Map<string, number>();
  const count = (key: string): void => void outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
  const readers = Array.from({ length: READERS }, async () => {
    while (reading) {
      const id = ids[Math.floor(Math.random() * ids.length)]!;
      const response = await fetch(`${http}/fhir/Patient/${id}`, { headers });
      await response.arrayBuffer();
      count(`read ${response.status}${response.headers.get('x-anchorline-error') ? ` ${response.headers.get('x-anchorline-error')}` : ''}`);
    }
  });
  const criteria = Array.from({ length: 32 }, (_, i) => `name=x${i}`).join('&');
  const searchers = Array.from({ length: SEARCHERS }, async () => {
    while (reading) {
      const response = await fetch(`${http}/fhir/Patient?${criteria}`, { headers });
      await response.arrayBuffer();
      count(`search ${response.status}${response.headers.get('x-anchorline-error') ? ` ${response.headers.get('x-anchorline-error')}` : ''}`);
    }
  });
  await sleep(1000);
  const started = performance.now();
  const latencies = await steadyAcks(clients);
  const seconds = (performance.now() - started) / 1000;
  reading = false;
  await Promise.all([...readers, ...searchers]);
  console.log(`readers: ${READERS} reading by id, ${SEARCHERS} searching: ${summarise(latencies)}`);
  console.log(`answers: ${[...outcomes].map(([key, n]) => `${key}: ${n} (${(n / seconds).toFixed(0)}/s)`).join(', ')}`);
  await Promise.all(clients.map((c) => c.close()));
} finally {
  engine.process.kill('SIGTERM');
  await engine.exited;
  await rm(dataDir, { recursive: true, force: true });
}

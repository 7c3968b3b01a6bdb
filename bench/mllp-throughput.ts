/**
 * MLLP intake benchmark: the engine runs as its own process on embedded defaults (PostgreSQL under a temporary data
 * dir; add --redis for BullMQ), and this process drives it over loopback.
 *
 *   npm run bench:mllp -- [--connections 8] [--messages 20000] [--rate 1000] [--seconds 10] [--redis]
 *
 * Prints: messages/s acknowledged over N connections with p50/p99 ACK latency (closed loop: each connection sends
 * its next message when the previous ACK arrives, as interface engines do), messages/s fully mapped into FHIR, and
 * p50/p99 ACK latency at a steady offered rate (open loop).
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { adtMessage } from '../test/support/messages.ts';
import { MllpTestClient } from '../test/support/mllp-client.ts';
import { startChildEngine } from '../test/support/child-engine.ts';
import { startTestRedis, type TestRedis } from '../test/support/redis.ts';

const { values } = parseArgs({
  options: {
    connections: { type: 'string', default: '8' },
    messages: { type: 'string', default: '20000' },
    rate: { type: 'string', default: '1000' },
    seconds: { type: 'string', default: '10' },
    redis: { type: 'boolean', default: false },
  },
});
const CONNECTIONS = Number(values.connections);
const MESSAGES = Number(values.messages);
const RATE = Number(values.rate);
const SECONDS = Number(values.seconds);

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

function summarise(latencies: number[]): string {
  const sorted = [...latencies].sort((a, b) => a - b);
  return `p50 ${percentile(sorted, 50).toFixed(2)} ms, p99 ${percentile(sorted, 99).toFixed(2)} ms, max ${sorted.at(-1)?.toFixed(2)} ms`;
}

let counter = 0;
function nextMessage(): string {
  const i = counter++;
  return adtMessage({ controlId: `B${i}`, mrn: `BM${i}`, family: 'Bench', given: `P${i}` });
}

async function main(): Promise<void> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'anchorline-bench-'));
  let redis: TestRedis | undefined;
  if (values.redis) redis = await startTestRedis();
  const engine = await startChildEngine({ ANCHORLINE_DATA_DIR: dataDir, ...(redis ? { REDIS_URL: redis.url } : {}) });
  const password = (await readFile(path.join(dataDir, 'pg-password'), 'utf8')).trim();
  const db = new pg.Client({ connectionString: `postgres://anchorline:${encodeURIComponent(password)}@127.0.0.1:${engine.postgresPort}/anchorline` });
  await db.connect();
  const mapped = async (): Promise<number> => (await db.query(`SELECT count(*)::int AS n FROM inbox_message WHERE state = 'done'`)).rows[0].n as number;

  try {
    console.log(`anchorline MLLP benchmark: ${CONNECTIONS} connections, ${MESSAGES} messages, queue ${redis ? 'BullMQ' : 'PostgreSQL'}, ${os.cpus().length} cores`);
    const clients = await Promise.all(Array.from({ length: CONNECTIONS }, () => MllpTestClient.connect(engine.mllpPort)));

    // Warm-up (JIT, pool connections).
    await Promise.all(clients.map(async (c) => { for (let i = 0; i < 50; i++) await c.request(nextMessage()); }));
    const warm = counter;
    while ((await mapped()) < warm) await new Promise((r) => setTimeout(r, 50));

    // 1. Closed-loop throughput and latency.
    const latencies: number[] = [];
    const perConnection = Math.ceil(MESSAGES / CONNECTIONS);
    const start = performance.now();
    await Promise.all(
      clients.map(async (client) => {
        for (let i = 0; i < perConnection; i++) {
          const t0 = performance.now();
          await client.request(nextMessage());
          latencies.push(performance.now() - t0);
        }
      }),
    );
    const ackSeconds = (performance.now() - start) / 1000;
    const sent = perConnection * CONNECTIONS;
    console.log(`acked:   ${(sent / ackSeconds).toFixed(0)} msg/s over ${CONNECTIONS} connections (${sent} messages in ${ackSeconds.toFixed(2)} s); ACK latency ${summarise(latencies)}`);

    // 2. End to end: until every message is mapped into FHIR.
    const total = counter;
    while ((await mapped()) < total) await new Promise((r) => setTimeout(r, 20));
    const e2eSeconds = (performance.now() - start) / 1000;
    console.log(`mapped:  ${(sent / e2eSeconds).toFixed(0)} msg/s end to end (all ${sent} in FHIR after ${e2eSeconds.toFixed(2)} s)`);

    // 3. Open loop at a steady rate: latency when the engine is not saturated.
    const steady: number[] = [];
    const interval = 1000 / RATE;
    const steadyStart = performance.now();
    const inflight: Array<Promise<void>> = [];
    const queues = clients.map(() => Promise.resolve());
    for (let i = 0; i < RATE * SECONDS; i++) {
      const due = steadyStart + i * interval;
      const wait = due - performance.now();
      if (wait > 1) await new Promise((r) => setTimeout(r, wait));
      const c = i % CONNECTIONS;
      const message = nextMessage();
      // Latency is measured from when the message was due, so queueing behind a slow ACK counts against us.
      queues[c] = queues[c]!.then(async () => {
        await clients[c]!.request(message);
        steady.push(performance.now() - due);
      });
      inflight.push(queues[c]!);
    }
    await Promise.all(inflight);
    const steadySeconds = (performance.now() - steadyStart) / 1000;
    console.log(`steady:  offered ${RATE} msg/s for ${SECONDS} s (achieved ${(steady.length / steadySeconds).toFixed(0)} msg/s); ACK latency ${summarise(steady)}`);

    for (const c of clients) await c.close();
  } finally {
    await db.end();
    engine.process.kill('SIGTERM');
    await engine.exited;
    await redis?.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
}

await main();

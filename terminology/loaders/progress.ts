/**
 * Progress of a terminology load on stderr.
 *
 * On a terminal: one line, redrawn in place (carriage return + erase to end of line), with bytes read of the total,
 * the percentage, rows, rows per second and the time left at the current byte rate. Elsewhere (a log file, CI): the
 * same text as a new line every few seconds, so logs stay readable. Loaders report through `LoadObserver`; they never
 * write to a stream themselves.
 */

/** What loaders tell about their progress. All methods are cheap; none writes anything by itself. */
export interface LoadObserver {
  /** The load reads this many bytes in all (the sum of its files' sizes). */
  start(totalBytes: number): void;
  /** Bytes read from a release file. */
  bytes(count: number): void;
  /** Rows (concepts, descriptions, relationships, map entries) read. */
  rows(count: number): void;
  /** A step that reads nothing (an UPDATE over the whole table, the commit), shown while it runs. */
  phase(name: string): void;
}

export const silentObserver: LoadObserver = { start() {}, bytes() {}, rows() {}, phase() {} };

export interface ProgressOptions {
  /** Shown first on the line, e.g. 'snomed'. */
  label: string;
  write: (text: string) => void;
  /** Redraw one line in place (a terminal) or print a line now and then (anything else). */
  isTTY: boolean;
  /** Terminal: the fewest ms between redraws. Default 200. */
  redrawIntervalMs?: number;
  /** Not a terminal: ms between lines. Default 5000. */
  logIntervalMs?: number;
  /** Clock in ms; for tests. Default performance.now. */
  now?: () => number;
}

export class LoadProgress implements LoadObserver {
  private readonly options: Required<Omit<ProgressOptions, 'now'>> & { now: () => number };
  private totalBytes = 0;
  private readBytes = 0;
  private readRows = 0;
  private phaseName: string | undefined;
  private readonly startedAt: number;
  private lastOutputAt: number;
  private drawn = false;

  constructor(options: ProgressOptions) {
    const now = options.now ?? (() => performance.now());
    this.options = { redrawIntervalMs: 200, logIntervalMs: 5000, ...options, now };
    this.startedAt = now();
    this.lastOutputAt = this.startedAt;
  }

  start(totalBytes: number): void {
    this.totalBytes = totalBytes;
  }

  bytes(count: number): void {
    this.readBytes += count;
    // Reading again means the step that read nothing is over.
    this.phaseName = undefined;
    this.maybeDraw();
  }

  rows(count: number): void {
    this.readRows += count;
  }

  phase(name: string): void {
    this.phaseName = name;
    this.draw();
  }

  /** Draws the final state and ends the line. */
  finish(outcome: string): void {
    this.phaseName = outcome;
    this.draw();
    if (this.options.isTTY) this.options.write('\n');
  }

  /** The progress text (no line break or terminal control). */
  describe(): string {
    const elapsedSeconds = Math.max((this.options.now() - this.startedAt) / 1000, 1e-3);
    const parts: string[] = [];
    if (this.totalBytes > 0) {
      const fraction = Math.min(this.readBytes / this.totalBytes, 1);
      parts.push(`${(fraction * 100).toFixed(1)}% ${formatBytes(this.readBytes)} / ${formatBytes(this.totalBytes)}`);
    } else {
      parts.push(formatBytes(this.readBytes));
    }
    parts.push(`${this.readRows.toLocaleString('en-US')} rows`);
    parts.push(`${Math.round(this.readRows / elapsedSeconds).toLocaleString('en-US')} rows/s`);
    if (this.totalBytes > 0 && this.readBytes > 0 && this.readBytes < this.totalBytes) {
      const bytesPerSecond = this.readBytes / elapsedSeconds;
      parts.push(`ETA ${formatDuration((this.totalBytes - this.readBytes) / bytesPerSecond)}`);
    } else {
      parts.push(`${formatDuration(elapsedSeconds)} elapsed`);
    }
    const head = `${this.options.label}: ${parts.join(', ')}`;
    return this.phaseName ? `${head} - ${this.phaseName}` : head;
  }

  private maybeDraw(): void {
    const interval = this.options.isTTY ? this.options.redrawIntervalMs : this.options.logIntervalMs;
    if (this.options.now() - this.lastOutputAt >= interval) this.draw();
  }

  private draw(): void {
    this.lastOutputAt = this.options.now();
    if (this.options.isTTY) {
      this.options.write(`\r${this.describe()}\x1b[K`);
      this.drawn = true;
    } else {
      this.options.write(`${this.describe()}\n`);
    }
  }

  /** Whether anything was drawn on the terminal line (so an error message should start on a new line). */
  get lineOpen(): boolean {
    return this.options.isTTY && this.drawn;
  }
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  if (bytes < 1024 * 1024 * 1024) return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
  return `${(bytes / 1024 / 1024 / 1024).toFixed(2)} GiB`;
}

/** 0:07, 2:05, 1:02:05. */
export function formatDuration(seconds: number): string {
  const total = Math.max(0, Math.round(seconds));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${String(s).padStart(2, '0')}` : `${m}:${String(s).padStart(2, '0')}`;
}

/**
 * The engine's metrics, on a prom-client Registry of its own (one per engine, never prom-client's global default
 * registry, so two engines in one process, as in the tests, keep separate counts).
 *
 * Two kinds:
 * - Events, counted where they happen: messages answered by the intakes, ACK latency, mapping failures. They are per
 *   process: an intake node counts what it received, a worker process what it failed to map; Prometheus sums them.
 * - State, read at scrape time from PostgreSQL and the queue driver: queue depth, inbox backlog, anchor lag. These
 *   describe the whole deployment (every process reads the same database), so aggregate them with max, not sum.
 *
 * Nothing here carries patient data: labels are protocols, outcomes and catalogue codes.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { IngestMetrics, IntakeMetrics, MllpMetrics } from './types.ts';

/** The queue driver's ingest job counts at scrape time. */
export interface QueueJobGauges {
  waiting: number;
  active: number;
  delayed: number;
  failed: number;
}

/** Anchoring lag at scrape time. */
export interface AnchorGauges {
  unbatchedLeaves: number;
  /** Age of the oldest leaf not yet in a batch, in seconds; null when none waits. */
  oldestUnbatchedAgeSeconds: number | null;
  /** Seconds since the newest batch closed; null when no batch was ever closed. */
  secondsSinceLastBatch: number | null;
  /** Closed batches no confirmed chain anchor covers yet; null unless batch headers are anchored on chain. */
  unanchoredBatches: number | null;
}

/** The worker processes `start` supervises (cli/worker-process.ts), as the engine reads them at scrape time. */
export interface WorkerProcessGauges {
  /** Children running and ready. */
  running: () => number;
  /** Children started again after one died, since the engine started. */
  restarts: () => number;
}

export interface EngineMetricsOptions {
  /** Also collect Node.js process metrics (process_*, nodejs_*: CPU, memory, event loop lag, GC). Default true. */
  processMetrics?: boolean;
}

/**
 * ACK latency buckets, in seconds: an ACK after commit takes ~1-5 ms here, p99 10-30 ms under load; the top buckets
 * catch commits stalled on the database and ACKs after mapping (mllp.ackTimeoutMs is 30 s by default).
 */
const ACK_LATENCY_BUCKETS_SECONDS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export class EngineMetrics implements IntakeMetrics, IngestMetrics, MllpMetrics {
  readonly registry: Registry;
  private readonly received: Counter<'protocol' | 'outcome'>;
  private readonly refused: Counter<'protocol' | 'code'>;
  private readonly ackLatency: Histogram<'protocol'>;
  private readonly ackListeners: Array<(seconds: number) => void> = [];
  private readonly mllpDropped: Counter<'reason'>;
  private readonly mllpClosed: Counter<'reason'>;
  private readonly mappingErrors: Counter<'code'>;
  private readonly mappingIssues: Counter<'code'>;
  private readonly queueJobs: Gauge<'state'>;
  private readonly backlog: Gauge;
  private readonly unbatchedLeaves: Gauge;
  private readonly oldestUnbatchedAge: Gauge;
  private readonly sinceLastBatch: Gauge;
  private readonly unanchoredBatches: Gauge;
  private readonly collectErrors: Counter<'source'>;
  private readonly mappingShare: Gauge;

  constructor(options: EngineMetricsOptions = {}) {
    const registry = new Registry();
    this.registry = registry;
    const registers = [registry];
    this.received = new Counter({
      name: 'anchorline_messages_received_total',
      help: 'Messages answered by an intake, by protocol and by the outcome the intake reported (stored, duplicate, conflict, rejected, not-stored).',
      labelNames: ['protocol', 'outcome'],
      registers,
    });
    this.refused = new Counter({
      name: 'anchorline_messages_refused_total',
      help: 'Messages an intake answered with an error (rejected, conflict, not stored), by protocol and ANCHORLINE_ERR_* code.',
      labelNames: ['protocol', 'code'],
      registers,
    });
    this.ackLatency = new Histogram({
      name: 'anchorline_ack_latency_seconds',
      help: 'Time from the last byte of a message arriving to its acknowledgment written (MLLP frame to ACK; HTTP request to response), in seconds.',
      labelNames: ['protocol'],
      buckets: ACK_LATENCY_BUCKETS_SECONDS,
      registers,
    });
    this.mappingErrors = new Counter({
      name: 'anchorline_mapping_errors_total',
      help: 'Messages the ingest worker marked failed, by ANCHORLINE_ERR_* code.',
      labelNames: ['code'],
      registers,
    });
    this.mappingIssues = new Counter({
      name: 'anchorline_mapping_issues_total',
      help: 'Mapping issues recorded on messages that were mapped (a field not mapped as sent), by ANCHORLINE_ISSUE_* code.',
      labelNames: ['code'],
      registers,
    });
    this.queueJobs = new Gauge({
      name: 'anchorline_queue_jobs',
      help: 'Ingest jobs in the queue driver, by state (waiting, active, delayed, failed); read at scrape time.',
      labelNames: ['state'],
      registers,
    });
    this.mllpDropped = new Counter({
      name: 'anchorline_mllp_dropped_bytes_total',
      help: 'Bytes the MLLP listener dropped without an answer, by reason: outside-frame (between frames), unfinished-frame (abandoned, cut off or timed out).',
      labelNames: ['reason'],
      registers,
    });
    this.mllpClosed = new Counter({
      name: 'anchorline_mllp_connections_closed_total',
      help: 'MLLP connections the listener closed on its own, by reason: peer-limit, connection-limit, evicted, frame-timeout, idle-timeout.',
      labelNames: ['reason'],
      registers,
    });
    this.backlog = new Gauge({
      name: 'anchorline_inbox_backlog_messages',
      help: 'Accepted inbox messages not yet mapped (state queued), across all processes; read at scrape time.',
      registers,
    });
    this.unbatchedLeaves = new Gauge({
      name: 'anchorline_anchor_unbatched_leaves',
      help: 'Provenance leaves not yet in a closed batch; read at scrape time.',
      registers,
    });
    this.oldestUnbatchedAge = new Gauge({
      name: 'anchorline_anchor_oldest_unbatched_leaf_age_seconds',
      help: 'Age of the oldest provenance leaf not yet in a batch, in seconds (0 when none waits); read at scrape time.',
      registers,
    });
    this.sinceLastBatch = new Gauge({
      name: 'anchorline_anchor_seconds_since_last_batch',
      help: 'Seconds since the newest batch closed (NaN before the first batch); read at scrape time.',
      registers,
    });
    this.unanchoredBatches = new Gauge({
      name: 'anchorline_anchor_unanchored_batches',
      help: 'Closed batches not yet covered by a confirmed chain anchor (NaN unless anchor.driver is evm); read at scrape time.',
      registers,
    });
    this.collectErrors = new Counter({
      name: 'anchorline_metrics_collect_errors_total',
      help: 'Scrapes whose state gauges could not be read, by source (database, queue); the gauges keep their last values.',
      labelNames: ['source'],
      registers,
    });
    this.mappingShare = new Gauge({
      name: 'anchorline_mapping_share',
      help: 'The share of time intake priority lets mapping take (1: all of it; lower while ACKs are slower than the target).',
      registers,
    });
    this.mappingShare.set(1);
    if (options.processMetrics ?? true) collectDefaultMetrics({ register: registry });
  }

  messageReceived(protocol: string, outcome: string, errorCode?: string): void {
    this.received.inc({ protocol, outcome });
    if (errorCode !== undefined) this.refused.inc({ protocol, code: errorCode });
  }

  ackSent(protocol: string, seconds: number): void {
    this.ackLatency.observe({ protocol }, seconds);
    for (const listener of this.ackListeners) listener(seconds);
  }

  /** Also tells `listener` each ACK's latency, in seconds (workers/pacing.ts IntakePressure). */
  onAckSent(listener: (seconds: number) => void): void {
    this.ackListeners.push(listener);
  }

  mllpBytesDropped(reason: 'outside-frame' | 'unfinished-frame', bytes: number): void {
    this.mllpDropped.inc({ reason }, bytes);
  }

  mllpConnectionClosed(reason: 'peer-limit' | 'connection-limit' | 'evicted' | 'frame-timeout' | 'idle-timeout'): void {
    this.mllpClosed.inc({ reason });
  }

  mappingFailed(errorCode: string): void {
    this.mappingErrors.inc({ code: errorCode });
  }

  mappingIssue(issueCode: string): void {
    this.mappingIssues.inc({ code: issueCode });
  }

  setQueueJobs(counts: QueueJobGauges): void {
    for (const state of ['waiting', 'active', 'delayed', 'failed'] as const) this.queueJobs.set({ state }, counts[state]);
  }

  setInboxBacklog(messages: number): void {
    this.backlog.set(messages);
  }

  setAnchor(gauges: AnchorGauges): void {
    this.unbatchedLeaves.set(gauges.unbatchedLeaves);
    this.oldestUnbatchedAge.set(gauges.oldestUnbatchedAgeSeconds ?? 0);
    this.sinceLastBatch.set(gauges.secondsSinceLastBatch ?? Number.NaN);
    this.unanchoredBatches.set(gauges.unanchoredBatches ?? Number.NaN);
  }

  /**
   * Reports the worker processes `start` supervises, read from `source` at each scrape. Only such an engine has these
   * metrics: where mapping runs inline or in `anchorline worker`, there is nothing to count.
   */
  trackWorkerProcesses(source: WorkerProcessGauges): void {
    const registers = [this.registry];
    new Gauge({
      name: 'anchorline_worker_processes_running',
      help: 'Worker processes this engine supervises that are running and ready (workers.processes when all are).',
      registers,
      collect() {
        this.set(source.running());
      },
    });
    let counted = 0;
    new Counter({
      name: 'anchorline_worker_process_restarts_total',
      help: 'Worker processes started again after one died (a crash, a stall the watchdog ended, a kill from outside).',
      registers,
      collect() {
        const restarts = source.restarts();
        if (restarts > counted) this.inc(restarts - counted);
        counted = restarts;
      },
    });
  }

  /** The share of time mapping may take (workers/pacing.ts IntakePressure), on each change. */
  setMappingShare(share: number): void {
    this.mappingShare.set(share);
  }

  /** Counts a scrape whose state could not be read from `source`. */
  collectFailed(source: 'database' | 'queue'): void {
    this.collectErrors.inc({ source });
  }

  /** The Prometheus text exposition of everything registered. */
  render(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}

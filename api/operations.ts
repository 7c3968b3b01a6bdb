/**
 * Operating the engine: metrics, probes and operational statistics.
 *
 *   GET /metrics       Prometheus text format (observability/metrics.ts). Public unless
 *                      observability.metricsRequireAdminKey; metrics carry no patient data.
 *   GET /livez         the process is up and its event loop answers (no database involved). Public.
 *   GET /readyz        every readiness check passes (database, queue, mapping configs, listeners); 503 with the
 *                      failing checks named otherwise. Public.
 *   GET /admin/stats   message rates and states, queue depth, recent error codes and anchoring lag, for the web
 *                      console. Scope admin.
 *
 * Statistics come from PostgreSQL (store/operations.ts) and the queue driver's counts, so they describe the whole
 * deployment, whichever process answers. `anchorline worker` has no HTTP API: startWorkerOperationsServer serves
 * /metrics, /livez and /readyz for it on observability.workerPort.
 */
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import type pg from 'pg';
import { AnchorlineError, isAnchorlineError, operationOutcome } from '../errors/index.ts';
import { errorFields, type Logger } from '../config/logger.ts';
import type { EngineMetrics, Readiness } from '../observability/index.ts';
import { apiKeys, operations } from '../store/index.ts';
import { INGEST_QUEUE, type JobQueue } from '../queue/index.ts';

export interface OperationsOptions {
  pool: pg.Pool;
  queue: JobQueue;
  metrics: EngineMetrics;
  readiness: Readiness;
  /** 'evm': batch headers are anchored on chain, and the statistics say how far that lags. */
  anchorDriver: 'local' | 'evm';
  /** GET /metrics needs an admin key (config observability.metricsRequireAdminKey). */
  metricsRequireAdminKey: boolean;
  /** Each readiness check, and reading the state gauges at a scrape, must answer within this time, in ms. */
  readinessTimeoutMs: number;
  log: Logger;
}

/** GET /admin/stats. The web console is built against this shape: change it only together with the console. */
export interface OperationalStats {
  /** When the statistics were read (ISO 8601). */
  at: string;
  messages: {
    /** Messages received per second, averaged over the last 60 s. */
    perSecond: number;
    receivedLastMinute: number;
    /** Messages received in the last 24 hours, by their state now. */
    byState: { queued: number; done: number; failed: number; rejected: number };
    /** Of the messages done in that window, those mapped with warnings (mapping issues of severity warning or error). */
    mappedWithWarnings: number;
  };
  /** The last 30 minutes, one row per minute, oldest first (the current, partial minute last). */
  throughput: Array<{ minute: string; received: number; done: number; failed: number }>;
  queue: { driver: 'bullmq' | 'postgres'; waiting: number; active: number; delayed: number; failed: number; backlog: number };
  /** Failed and rejected messages of the last 24 hours, by error code, most frequent first. */
  errors: Array<{ code: string; count: number; lastAt: string }>;
  anchor: {
    unbatchedLeaves: number;
    oldestUnbatchedAgeSeconds: number | null;
    lastBatchNumber: number | null;
    lastBatchClosedAt: string | null;
    chain: null | { lastAnchoredBatch: number | null; lastAnchoredAt: string | null; unanchoredBatches: number };
  };
}

/** Reads the statistics; throws (ANCHORLINE_ERR_QUEUE_UNAVAILABLE, a database error) when a source cannot answer. */
export async function operationalStats(pool: pg.Pool, queue: JobQueue, anchorDriver: 'local' | 'evm'): Promise<OperationalStats> {
  const at = new Date();
  const [counts, perMinute, errors, backlog, anchor, jobs] = await Promise.all([
    operations.messageCounts(pool),
    operations.throughput(pool),
    operations.errorCounts(pool),
    operations.inboxBacklog(pool),
    operations.anchorStatus(pool, { chain: anchorDriver === 'evm' }),
    queue.counts(INGEST_QUEUE),
  ]);
  return {
    at: at.toISOString(),
    messages: { perSecond: counts.receivedLastMinute / 60, receivedLastMinute: counts.receivedLastMinute, byState: counts.byState, mappedWithWarnings: counts.mappedWithWarnings },
    throughput: perMinute.map((m) => ({ minute: m.minute.toISOString(), received: m.received, done: m.done, failed: m.failed })),
    queue: { driver: queue.driver, waiting: jobs.waiting, active: jobs.active, delayed: jobs.delayed, failed: jobs.failed, backlog },
    errors: errors.map((e) => ({ code: e.code, count: e.count, lastAt: e.lastAt.toISOString() })),
    anchor: {
      unbatchedLeaves: anchor.unbatchedLeaves,
      oldestUnbatchedAgeSeconds: anchor.oldestUnbatchedAgeSeconds,
      lastBatchNumber: anchor.lastBatchNumber,
      lastBatchClosedAt: anchor.lastBatchClosedAt?.toISOString() ?? null,
      chain: anchor.chain
        ? { lastAnchoredBatch: anchor.chain.lastAnchoredBatch, lastAnchoredAt: anchor.chain.lastAnchoredAt?.toISOString() ?? null, unanchoredBatches: anchor.chain.unanchoredBatches }
        : null,
    },
  };
}

/**
 * Sets the state gauges from the database and the queue, each source on its own: one that fails (or does not answer
 * within timeoutMs) is counted in anchorline_metrics_collect_errors_total and leaves its gauges as they were, so a
 * scrape still answers while Redis or PostgreSQL is away.
 */
async function refreshStateGauges(options: OperationsOptions): Promise<void> {
  const { pool, queue, metrics, log } = options;
  const within = <T>(work: Promise<T>): Promise<T> => withTimeout(work, options.readinessTimeoutMs);
  const [jobs, backlog, anchor] = await Promise.allSettled([
    within(queue.counts(INGEST_QUEUE)),
    within(operations.inboxBacklog(pool)),
    within(operations.anchorStatus(pool, { chain: options.anchorDriver === 'evm' })),
  ]);
  if (jobs.status === 'fulfilled') metrics.setQueueJobs(jobs.value);
  else metrics.collectFailed('queue');
  if (backlog.status === 'fulfilled') metrics.setInboxBacklog(backlog.value);
  if (anchor.status === 'fulfilled') {
    const status = anchor.value;
    metrics.setAnchor({
      unbatchedLeaves: status.unbatchedLeaves,
      oldestUnbatchedAgeSeconds: status.oldestUnbatchedAgeSeconds,
      secondsSinceLastBatch: status.secondsSinceLastBatch,
      unanchoredBatches: status.chain?.unanchoredBatches ?? null,
    });
  }
  const failed = [backlog, anchor].find((r) => r.status === 'rejected');
  if (failed) {
    metrics.collectFailed('database');
    log.debug(errorFields(failed.reason), 'metrics: state gauges could not be read from the database');
  }
}

function withTimeout<T>(work: Promise<T>, timeoutMs: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new AnchorlineError('ANCHORLINE_ERR_STORE_UNAVAILABLE', `no answer within ${timeoutMs} ms`)), timeoutMs);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

const OPERATIONS_TAG = 'operations';

/** Ingest routes whose response is the acknowledgment, and the protocol their latency is recorded under. */
const ACK_ROUTES: Record<string, string> = { '/ingest/hl7v2': 'hl7v2-http', '/ingest/cda': 'cda' };

/** The probe and metrics routes, on the HTTP API or on the worker's listener. */
function registerProbeRoutes(app: FastifyInstance, options: OperationsOptions, metricsRoute: { config: { public: true } | { scope: 'admin' }; preHandler?: (request: FastifyRequest) => Promise<void> }): void {
  const startedAt = Date.now();

  app.get(
    '/metrics',
    {
      config: metricsRoute.config,
      ...(metricsRoute.preHandler ? { preHandler: metricsRoute.preHandler } : {}),
      schema: {
        summary: 'Metrics in Prometheus text format',
        description:
          'Counters and histograms of this process (messages received by protocol and outcome, refusals by code, ACK latency, mapping errors by code), ' +
          'gauges read from PostgreSQL and the queue at each scrape (queue jobs, inbox backlog, anchoring lag; the same in every process, so aggregate them with max), ' +
          'and Node.js process metrics. Public unless observability.metricsRequireAdminKey is set.',
        tags: [OPERATIONS_TAG],
        produces: ['text/plain'],
      },
    },
    async (_request, reply) => {
      await refreshStateGauges(options);
      return reply.header('content-type', options.metrics.contentType).send(await options.metrics.render());
    },
  );

  app.get(
    '/livez',
    {
      config: { public: true },
      schema: {
        summary: 'Liveness',
        description: 'Answers 200 while the process runs and its event loop is responsive; it touches no database, so restarting on its failure never hides an outage elsewhere.',
        tags: [OPERATIONS_TAG],
      },
    },
    async () => ({ status: 'ok', uptimeSeconds: Math.round((Date.now() - startedAt) / 1000) }),
  );

  app.get(
    '/readyz',
    {
      config: { public: true },
      schema: {
        summary: 'Readiness',
        description:
          'Answers 200 when PostgreSQL and the queue backend answer, the listeners are up and the mapping configs are loaded; ' +
          '503 otherwise, with a JSON body naming each check and why a failing one is not ready. Every check has observability.readinessTimeoutMs to answer.',
        tags: [OPERATIONS_TAG],
      },
    },
    async (_request, reply) => {
      const report = await options.readiness.check(options.readinessTimeoutMs);
      return reply.status(report.ready ? 200 : 503).send({ status: report.ready ? 'ready' : 'not-ready', checks: report.checks });
    },
  );
}

/** Registers the routes above on the HTTP API, and records the latency of the HTTP ingest routes' answers. */
export function registerOperationRoutes(app: FastifyInstance, options: OperationsOptions): void {
  app.addHook('onResponse', async (request, reply) => {
    const protocol = ACK_ROUTES[request.routeOptions.url ?? ''];
    // Only answers the intake gave (it sets the outcome header), not refusals of the request itself (401, 415, ...).
    if (protocol !== undefined && reply.hasHeader('x-anchorline-outcome')) options.metrics.ackSent(protocol, reply.elapsedTime / 1000);
  });

  registerProbeRoutes(app, options, { config: options.metricsRequireAdminKey ? { scope: 'admin' } : { public: true } });

  app.get(
    '/admin/stats',
    {
      config: { scope: 'admin' },
      schema: {
        summary: 'Operational statistics',
        description:
          'For the web console, read from PostgreSQL (right across processes) and the queue driver: messages received per second (over the last 60 s) and by state (last 24 h), ' +
          'throughput per minute (last 30 min), queue depth and inbox backlog, failed and rejected messages by error code (last 24 h), and anchoring lag ' +
          '(unbatched leaves, the last batch, and with the evm driver the last chain anchor). 503 when the queue backend cannot be reached.',
        tags: [OPERATIONS_TAG],
      },
    },
    async () => operationalStats(options.pool, options.queue, options.anchorDriver),
  );
}

export interface WorkerOperationsServer {
  port: number;
  close(): Promise<void>;
}

/**
 * /metrics, /livez and /readyz of a worker-only process, on their own listener. /metrics asks for an admin key here
 * too when observability.metricsRequireAdminKey is set (checked against the shared database).
 */
export async function startWorkerOperationsServer(options: OperationsOptions & { host: string; port: number }): Promise<WorkerOperationsServer> {
  const app = Fastify({ logger: false, trustProxy: false });
  app.setErrorHandler((error, request, reply) => {
    const coded = isAnchorlineError(error) ? error : new AnchorlineError('ANCHORLINE_ERR_INTERNAL', undefined, { cause: error });
    if (coded.spec.httpStatus >= 500) options.log.error({ code: coded.code, url: request.routeOptions.url, ...errorFields(coded.cause ?? error) }, 'operations: request failed');
    return reply.status(coded.spec.httpStatus).header('x-anchorline-error', coded.code).send(operationOutcome(coded));
  });
  const requireAdmin = async (request: FastifyRequest): Promise<void> => {
    const match = /^Bearer\s+(\S+)$/i.exec(request.headers.authorization ?? '');
    const key = match ? await apiKeys.findApiKey(options.pool, match[1]!) : undefined;
    if (!key) throw new AnchorlineError('ANCHORLINE_ERR_UNAUTHORIZED', 'send Authorization: Bearer <admin API key>');
    if (!key.scopes.includes('admin')) throw new AnchorlineError('ANCHORLINE_ERR_FORBIDDEN', 'this key lacks the admin scope');
  };
  registerProbeRoutes(app, options, { config: { public: true }, ...(options.metricsRequireAdminKey ? { preHandler: requireAdmin } : {}) });
  await app.listen({ host: options.host, port: options.port });
  const address = app.server.address();
  return { port: typeof address === 'object' && address ? address.port : options.port, close: () => app.close() };
}

/**
 * Wiring: every resource is created here at start-up, passed to what uses it, and closed on shutdown in the reverse
 * order of start. Start: store -> queue -> workers (ingest consumer, sweeper) -> intakes (HL7 v2, DICOM, C-CDA) ->
 * listeners (HTTP, MLLP, DICOM DIMSE).
 * Shutdown: listeners stop accepting and finish the message in hand -> intake -> sweeper -> consumer finishes or
 * releases its jobs -> queue -> store.
 */
import type { FastifyInstance } from 'fastify';
import type { ApiOptions } from '../api/index.ts';
import type { AnchorlineConfig, Logger } from '../config/index.ts';
import { Hl7Intake, MappingWaiter } from '../adapters/hl7v2/index.ts';
import { DICOM_PROTOCOL, DicomIntake } from '../adapters/dicom/intake.ts';
import { MllpServer } from '../adapters/mllp/index.ts';
import { CdaIntake } from '../adapters/cda/index.ts';
import { EngineMetrics, NotReady, Readiness, type IntakeMetrics } from '../observability/index.ts';
import { SourcePolicy } from '../adapters/sources.ts';
import { WorkerProcessGroup } from './worker-process.ts';
import { isSupportedMessageType } from '../mappers/index.ts';
import { createTerminologyEnricher } from '../terminology/index.ts';
import { apiKeys, blindIndexOf, configuredBlobStore, openStore, signInApps, type BlobStore, type MessagePatientReader, type Store } from '../store/index.ts';
import { ConsentCache } from '../store/consents.ts';
import path from 'node:path';
import { getPriority, setPriority } from 'node:os';
import { AnchorWorker, IntakePressure, MappingPacer, MappingRegistry, defaultMappingConfigDir, createCdaConverter, createDicomConverter, createIngestHandler, createMessagePatientReader, loadChainAnchoring, createQueue, INGEST_QUEUE, loadSigningKey, Sweeper, ResearchProjector, ResearchRefresher, type Consumer, type JobQueue, type MappingSource } from '../workers/index.ts';

export type EngineRole = 'all' | 'worker';

export interface Engine {
  httpPort?: number;
  mllpPort?: number;
  /** The DIMSE listener's port, when dicom.enabled. */
  dicomPort?: number;
  store: Store;
  queue: JobQueue;
  /** The DICOM intake (C-STORE and STOW-RS hand it instances); absent in a worker-only process. */
  dicomIntake?: DicomIntake;
  /** Where the bootstrap API key was written, when it was generated. */
  apiKeyFile?: string;
  /** The HTTP API; absent in a worker-only process. */
  api?: FastifyInstance;
  /** With workers.isolation 'process': how many times a worker process was started again after it died. */
  workerProcessRestarts?: () => number;
  /** With workers.isolation 'process': the first worker process's id, while it runs. */
  workerProcessPid?: () => number | undefined;
  /** With workers.isolation 'process': each worker process's id (workers.processes of them), undefined while it restarts. */
  workerProcessPids?: () => Array<number | undefined>;
  /** The worker-only process's /metrics, /livez and /readyz listener port, when observability.workerPort is set. */
  operationsPort?: number;
  /** Where this process maps messages: what slows its mapping while intake is pressed (workers/pacing.ts). */
  mappingPacer?: MappingPacer;
  /** In an engine whose intake yields the cores to its mapping's (workers.intakePriority): the share mapping gets. */
  mappingShare?: () => number;
  /** With workers.isolation 'process': the share of time the worker processes last reported they map at (the highest). */
  workerMappingShare?: () => number | undefined;
  close(): Promise<void>;
}

interface Closer {
  name: string;
  close: () => Promise<unknown>;
}

export async function startEngine(config: AnchorlineConfig, log: Logger, role: EngineRole = 'all'): Promise<Engine> {
  if (role === 'worker' && !config.database.url) {
    throw new Error('anchorline worker needs DATABASE_URL: workers scale out against a shared PostgreSQL (and REDIS_URL for BullMQ)');
  }
  // Closed in reverse order of this list, also when start-up fails half way.
  const closers: Closer[] = [];
  const closeAll = async (): Promise<void> => {
    for (const closer of closers.reverse()) {
      try {
        await closer.close();
      } catch (error) {
        log.warn({ component: closer.name, err: (error as Error).message }, 'shutdown: close failed');
      }
    }
    closers.length = 0;
    log.info('anchorline stopped');
  };

  // The worker process is forked first: it loads its modules (~0.5 s of CPU) on the other core while this process
  // starts the database, builds the API and opens its listeners, and gets its config once the database is up. Intake
  // does not need it; /readyz reports the engine not ready until it is, and start waits for it before it is ready.
  const workerProcess = role === 'all' && config.workers.enabled && config.workers.isolation === 'process' ? startWorkerProcess(config, log) : undefined;
  let workerProcessListed = false;
  // The HTTP API and the DIMSE listener (fastify and its plugins, jose, dcmjs-dimse: ~0.3 s) are loaded only where
  // they are served, so a worker process starts without them, and they load while the database starts.
  const serving = role === 'all' ? Promise.all([import('../api/index.ts'), import('../adapters/dicom/index.ts')]) : undefined;
  serving?.catch(() => undefined);
  try {
    // A worker process yields the cores to intake: it runs at workers.niceness, and so do its database sessions that
    // map and run background work (on a server on this host). Threads started from here on inherit the priority.
    if (role === 'worker') lowerOwnPriority(config.workers.niceness, log);
    const store = await openStore(config, log, {
      applicationName: `anchorline-${role}`,
      ...(role === 'worker' ? { lowPriority: { pools: ['workers', 'background'], niceness: config.workers.niceness } } : {}),
    });
    closers.push({ name: 'store', close: () => store.close() });
    workerProcess?.useStore(store);

    const queue = await createQueue(config, store.pool, log);
    closers.push({ name: 'queue', close: () => queue.close() });
    if (workerProcess) {
      closers.push({ name: 'worker process', close: () => workerProcess.workers.close() });
      workerProcessListed = true;
    }

    // One registry and one set of readiness checks per engine; checks are added as their parts start.
    const metrics = new EngineMetrics();
    const readiness = new Readiness();
    readiness.add('database', () => store.pool.query('SELECT 1'));
    readiness.add('queue', () => queue.counts(INGEST_QUEUE));

    const ackAfterMapping = config.mllp.ackMode === 'afterMapping';
    const engineParts: Pick<Engine, 'workerProcessRestarts' | 'workerProcessPid' | 'workerProcessPids' | 'workerMappingShare' | 'mappingPacer' | 'mappingShare'> = {};
    if (role === 'worker' || config.workers.enabled) {
      let pace: (duty: number) => void;
      if (workerProcess) {
        const { workers } = workerProcess;
        readiness.add('workers', () => {
          if (!workers.running) throw new NotReady(workers.members.length === 1 ? 'the worker process is starting or restarting' : 'every worker process is starting or restarting');
        });
        engineParts.workerProcessRestarts = () => workers.restarts;
        engineParts.workerProcessPid = () => workers.pids[0];
        engineParts.workerProcessPids = () => workers.pids;
        metrics.trackWorkerProcesses({ running: () => workers.runningCount, restarts: () => workers.restarts });
        engineParts.workerMappingShare = () => workers.childMappingShare;
        pace = (duty) => workers.setDuty(duty);
      } else {
        const pacer = new MappingPacer();
        engineParts.mappingPacer = pacer;
        await startWorkers(config, log, store, queue, closers, { metrics, readiness }, pacer);
        // Closed before the consumer (closers run last first): a batch resting for intake would hold its shutdown.
        closers.push({ name: 'mapping pacer', close: async () => pacer.setDuty(1) });
        pace = (duty) => pacer.setDuty(duty);
      }
      // Intake before mapping, where both share this machine's cores. Not with ACKs sent after mapping: slowing
      // mapping would slow the very ACKs it watches.
      const { intakePriority } = config.workers;
      if (role === 'all' && intakePriority.enabled && !ackAfterMapping) {
        const pressure = new IntakePressure({
          targetMs: intakePriority.ackTargetMs,
          minDuty: intakePriority.minMappingShare,
          onDuty: (duty) => {
            pace(duty);
            metrics.setMappingShare(duty);
          },
          backlog: { max: intakePriority.maxBacklog, waiting: async () => (await queue.counts(INGEST_QUEUE)).waiting },
        });
        metrics.onAckSent((seconds) => pressure.observe(seconds));
        engineParts.mappingShare = () => pressure.currentDuty;
        closers.push({ name: 'intake pressure', close: async () => pressure.close() });
      }
      await startAnchoring(config, log, store, role, closers);
    }

    const engine: Engine = { store, queue, close: closeAll, ...engineParts };
    if (role === 'worker') {
      if (config.observability.workerPort !== undefined) {
        const { startWorkerOperationsServer } = await import('../api/index.ts');
        const operations = await startWorkerOperationsServer({ ...operationsOptions(config, store, queue, metrics, readiness), log: log.child({ component: 'operations' }), host: config.observability.workerHost, port: config.observability.workerPort });
        engine.operationsPort = operations.port;
        closers.push({ name: 'operations', close: () => operations.close() });
      }
      log.info({ queue: queue.driver, concurrency: config.queue.concurrency }, 'anchorline worker ready');
      return engine;
    }

    const keySource = await apiKeys.ensureBootstrapKey(store.pool, config.auth.apiKey, config.dataDir);
    if (keySource.source === 'file') engine.apiKeyFile = keySource.file;
    if (keySource.revoked) log.warn({ source: keySource.source }, 'the bootstrap API key is revoked and stays so; make admin keys with anchorline credentials key create');
    if (keySource.source === 'none') log.warn({ file: keySource.file }, 'no bootstrap API key file, and the database already holds keys: none is made; make one with anchorline credentials key create --scope admin');
    const [{ buildApi, TokenIssuer, ConsentGate }, { DicomScpServer }] = await serving!;
    const tokenIssuer = await TokenIssuer.fromKeyFile(config.auth.tokenSigningKeyFile ?? path.join(config.dataDir, 'oauth-signing.pem'), {
      issuer: config.auth.issuer,
      lifetimeSeconds: config.auth.tokenLifetimeSeconds,
      create: true,
    });
    const sources = new SourcePolicy(config.sources);

    let mappingWaiter: MappingWaiter | undefined;
    if (ackAfterMapping) {
      mappingWaiter = new MappingWaiter(store.pool, { connectionString: store.connectionString });
      await mappingWaiter.start();
      const waiter = mappingWaiter;
      closers.push({ name: 'mapping waiter', close: () => waiter.close() });
    }
    const intake = new Hl7Intake({
      pool: store.pool,
      queue,
      log: log.child({ component: 'intake' }),
      ackMode: config.mllp.ackMode,
      ackTimeoutMs: config.mllp.ackTimeoutMs,
      defaultCharset: config.mllp.defaultCharset,
      timeZone: config.mapping.timeZone,
      engineApplication: config.engine.applicationName,
      commitBatchMaxMessages: config.intake.commitBatchMaxMessages,
      commitConcurrency: config.intake.commitConcurrency,
      maxPendingMessages: config.intake.maxPendingMessages,
      isSupported: isSupportedMessageType,
      hl7Limits: config.hl7v2,
      sources,
      metrics,
      contentKey: await blindIndexOf(store.pool),
      ...(mappingWaiter ? { mappingWaiter } : {}),
    });
    closers.push({ name: 'intake', close: () => intake.close() });
    const dicomIntake = createDicomIntake(config, log, store, queue, metrics);
    engine.dicomIntake = dicomIntake;
    closers.push({ name: 'dicom intake', close: () => dicomIntake.close() });
    const cdaIntake = new CdaIntake({ pool: store.pool, queue, log: log.child({ component: 'cda-intake' }), limits: config.cda, sources, metrics });
    closers.push({ name: 'cda intake', close: () => cdaIntake.close() });

    const expectedListeners = ['http', ...(config.mllp.enabled ? ['mllp'] : []), ...(config.dicom.enabled ? ['dicom'] : [])];
    const listeners: Record<string, { readonly listening: boolean }> = {};
    readiness.add('listeners', () => {
      const down = expectedListeners.filter((name) => !listeners[name]?.listening);
      if (down.length > 0) throw new NotReady(`not listening: ${down.join(', ')}`);
    });

    if (!config.http.auditReads) log.warn('http.auditReads is false: FHIR reads are answered without their AuditEvents (for measuring only)');
    if (!config.consent.enforce) log.warn('consent.enforce is false: people read without consent decisions (for measuring only)');
    // People's reads are decided on the patients' consents, read through a cache that LISTENs for consent writes.
    const consents = new ConsentCache({ pool: store.pools.api, ttlMs: config.consent.cacheTtlMs, maxPatients: config.consent.cacheMaxPatients, log: log.child({ component: 'consent' }) });
    closers.push({ name: 'consent cache', close: () => consents.close() });
    const consentGate = new ConsentGate(consents, {
      enabled: config.consent.enforce,
      defaultPolicy: config.consent.default,
      breakGlassRoles: config.consent.breakGlassRoles,
      sensitivityRules: config.consent.sensitivityRules,
    });
    const api: FastifyInstance = await buildApi({
      consentGate,
      consentCache: consents,
      pool: store.pools.api,
      cancelPool: store.pools.background,
      auditPool: store.pools.background,
      auditReads: config.http.auditReads,
      queryTimeoutMs: config.http.queryTimeoutMs,
      searchLimits: { maxParameters: config.http.maxSearchParameters, maxValuesPerParameter: config.http.maxSearchValuesPerParameter, maxCount: config.http.maxPageCount, maxOffset: config.http.maxPageOffset },
      intake,
      log: log.child({ component: 'api' }),
      bodyLimitBytes: config.http.bodyLimitBytes,
      requestTimeoutMs: config.http.requestTimeoutMs,
      anchorDriver: config.anchor.driver,
      witnesses: config.anchor.witnesses,
      ...(config.anchor.witnessQuorum === undefined ? {} : { witnessQuorum: config.anchor.witnessQuorum }),
      keyCacheMs: config.auth.credentialCacheMs,
      tokenIssuer,
      ...(config.auth.signIn.enabled ? { signIn: await signInOptions(config) } : {}),
      ...(config.auth.externalIdp ? { externalIdp: config.auth.externalIdp } : {}),
      sourceNames: sources.names,
      queue,
      defaultCharset: config.mllp.defaultCharset,
      mappingBase: config.mapping,
      messagePatients: messagePatientReader(config),
      cdaIntake,
      dicom: { intake: dicomIntake, blobs: dicomBlobStore(config), maxInstanceBytes: config.dicom.maxInstanceBytes, stowMaxBytes: config.dicom.stowMaxBytes },
      operations: operationsOptions(config, store, queue, metrics, readiness),
      research: { schema: config.database.schema, defaultPolicy: config.consent.default, sensitivityRules: config.consent.sensitivityRules, settleMs: config.research.settleMs },
    });
    engine.api = api;
    listeners.http = api.server;
    await api.listen({ host: config.http.host, port: config.http.port });
    closers.push({ name: 'http', close: () => api.close() });
    const address = api.server.address();
    engine.httpPort = typeof address === 'object' && address ? address.port : config.http.port;

    if (config.mllp.enabled) {
      const mllp = new MllpServer({ ...config.mllp, intake, sources, metrics, log: log.child({ component: 'mllp' }) });
      engine.mllpPort = await mllp.listen();
      listeners.mllp = mllp;
      closers.push({ name: 'mllp', close: () => mllp.close(config.engine.shutdownGraceMs) });
    }
    if (config.dicom.enabled) {
      const dimse = new DicomScpServer({ ...config.dicom, intake: dicomIntake, log: log.child({ component: 'dicom' }) });
      engine.dicomPort = await dimse.listen();
      listeners.dicom = dimse;
      closers.push({ name: 'dicom', close: () => dimse.close(config.engine.shutdownGraceMs) });
    }
    await workerProcess?.started;
    log.info({ httpPort: engine.httpPort, mllpPort: engine.mllpPort, dicomPort: engine.dicomPort, queue: queue.driver, database: config.database.url ? 'external' : 'embedded' }, 'anchorline ready');
    return engine;
  } catch (error) {
    // A worker process forked before a failure that came before its place in the closers.
    if (workerProcess && !workerProcessListed) await workerProcess.workers.close();
    await closeAll();
    throw error;
  }
}

/** People's sign-in (auth.signIn, auth.publicUrl), with the sign-in secret under the data dir. */
async function signInOptions(config: AnchorlineConfig): Promise<NonNullable<ApiOptions['signIn']>> {
  const signIn = config.auth.signIn;
  return {
    ...(config.auth.publicUrl ? { publicUrl: config.auth.publicUrl } : {}),
    secret: await signInApps.loadSignInSecret(signIn.secretFile ?? path.join(config.dataDir, 'sign-in-secret')),
    accessTokenLifetimeSeconds: signIn.accessTokenLifetimeSeconds,
    refreshTokenLifetimeSeconds: signIn.refreshTokenLifetimeSeconds,
    sessionLifetimeSeconds: signIn.sessionLifetimeSeconds,
    sweepIntervalMs: signIn.sweepIntervalMs,
  };
}

/**
 * The anchor worker, where a signing key is at hand: `start` creates one under dataDir; `worker` needs one
 * configured. With the 'evm' driver, also the chain driver, likewise with its submitter key.
 */
async function startAnchoring(config: AnchorlineConfig, log: Logger, store: Store, role: EngineRole, closers: Closer[]): Promise<void> {
  if (!config.anchor.enabled) return;
  const keyFile = config.anchor.signingKeyFile ?? path.join(config.dataDir, 'anchor-signing.key');
  const signingKey = await loadSigningKey(keyFile, role === 'all');
  if (!signingKey) {
    log.warn({ keyFile }, 'anchor: no signing key; this process does not close batches');
    return;
  }
  const anchor = new AnchorWorker({ pool: store.pools.background, log: log.child({ component: 'anchor' }), signingKey, closeAfterMs: config.anchor.closeAfterMs, maxLeaves: config.anchor.maxLeaves, ...(config.anchor.origin === undefined ? {} : { origin: config.anchor.origin }) });
  anchor.start();
  closers.push({ name: 'anchor', close: () => anchor.close() });
  log.info({ publicKey: anchor.publicKey }, 'anchor: signing log checkpoints with this Ed25519 public key');
  if (config.anchor.driver === 'evm') await startChainAnchoring(config, log, store, role, closers, anchor);
}

async function startChainAnchoring(config: AnchorlineConfig, log: Logger, store: Store, role: EngineRole, closers: Closer[], anchor: AnchorWorker): Promise<void> {
  const { ChainAnchorDriver, loadSubmitterKey } = await loadChainAnchoring();
  const evm = config.anchor.evm;
  const keyFile = evm.submitterKeyFile ?? path.join(config.dataDir, 'anchor-submitter.key');
  const submitter = await loadSubmitterKey(keyFile, role === 'all');
  if (!submitter) {
    log.warn({ keyFile }, 'chain anchor: no submitter key; this process does not anchor on chain');
    return;
  }
  const driver = new ChainAnchorDriver({
    pool: store.pools.background,
    log: log.child({ component: 'chain-anchor' }),
    rpcUrl: evm.rpcUrl!,
    contract: evm.contractAddress! as `0x${string}`,
    submitter,
    chainId: evm.chainId,
    confirmations: evm.confirmations,
    pollIntervalMs: evm.pollIntervalMs,
    requestTimeoutMs: evm.requestTimeoutMs,
    retryBackoffMs: evm.retryBackoffMs,
    maxRetryBackoffMs: evm.maxRetryBackoffMs,
    gasHeadroomPercent: evm.gasHeadroomPercent,
    fromBlock: evm.fromBlock,
    logRangeBlocks: evm.logRangeBlocks,
    signClaim: (anchored) => anchor.signAnchorClaim(anchored),
  });
  driver.start();
  closers.push({ name: 'chain-anchor', close: () => driver.close() });
  // The address, not the key: the registry owner must put it on the allow-list (anchorline chain allow).
  log.info({ submitter: submitter.address, contract: evm.contractAddress }, 'chain anchor: anchoring checkpoint hashes from this submitter address');
}

/**
 * The ingest consumer and the sweeper in child processes of their own (cli/worker-process.ts; workers.processes of
 * them), on this engine's database; the anchor worker stays here, where the signing key was made. The children are
 * forked at once and get their config when useStore is called with the opened store. `started` resolves when all
 * are ready, rejects when one cannot start.
 */
function startWorkerProcess(config: AnchorlineConfig, log: Logger): { workers: WorkerProcessGroup; started: Promise<void>; useStore: (store: Store) => void } {
  let useStore!: (store: Store) => void;
  const childConfig = new Promise<AnchorlineConfig>((resolve) => {
    useStore = (store) =>
      resolve({
        ...config,
        database: { ...config.database, url: store.connectionString },
        anchor: { ...config.anchor, enabled: false },
        observability: { ...config.observability, workerPort: undefined },
      });
  });
  const workers = new WorkerProcessGroup(config.workers.processes, {
    config: childConfig,
    log: log.child({ component: 'worker-process' }),
    maxHeapMb: config.workers.maxHeapMb,
    semiSpaceMb: config.workers.semiSpaceMb,
    parallelScavenge: config.workers.parallelScavenge,
    niceness: config.workers.niceness,
    stallTimeoutMs: config.workers.stallTimeoutMs,
    restartDelayMs: config.workers.restartDelayMs,
    shutdownGraceMs: config.engine.shutdownGraceMs,
  });
  const started = workers.start();
  // Awaited before the engine reports ready; a rejection until then is not an unhandled one.
  started.catch(() => undefined);
  return { workers, started, useStore };
}

/** Sets this process's niceness (no lower than it is: an unprivileged process may not raise its own priority). */
function lowerOwnPriority(niceness: number, log: Logger): void {
  try {
    if (getPriority() < niceness) setPriority(niceness);
  } catch (error) {
    log.warn({ code: (error as { code?: unknown }).code }, 'worker: the process priority cannot be lowered; mapping competes with intake at equal priority');
  }
}

/** The ingest consumer and the sweeper: what `anchorline worker` runs, and `start` too with workers.isolation 'inline'. */

async function startWorkers(config: AnchorlineConfig, log: Logger, store: Store, queue: JobQueue, closers: Closer[], observability: { metrics: EngineMetrics; readiness: Readiness }, pacer: MappingPacer): Promise<void> {
  // Mapping configs are loaded, deployed and read back before the first job is taken; closed after the consumer.
  const mappings = await MappingRegistry.open({
    pool: store.pools.background,
    log: log.child({ component: 'mapping' }),
    base: config.mapping,
    configDir: config.mapping.configDir ?? defaultMappingConfigDir(config.dataDir),
    pollIntervalMs: config.mapping.pollIntervalMs,
  });
  closers.push({ name: 'mapping registry', close: () => mappings.close() });
  // Open means every config was loaded and the active versions read back; a file that fails later keeps its last version.
  observability.readiness.add('mappings', () => undefined);
  const consumer: Consumer = queue.consume(
    INGEST_QUEUE,
    createIngestHandler({
      pool: store.pools.workers,
      log: log.child({ component: 'ingest' }),
      mappings,
      ackAfterMapping: config.mllp.ackMode === 'afterMapping',
      defaultCharset: config.mllp.defaultCharset,
      hl7Limits: config.hl7v2,
      engineApplication: config.engine.applicationName,
      maxAttempts: config.queue.maxAttempts,
      maxCrashedAttempts: config.workers.maxCrashedAttempts,
      batchesInFlight: config.workers.batchesInFlight,
      pacer,
      terminology: createTerminologyEnricher({ log: log.child({ component: 'terminology' }) }),
      metrics: observability.metrics,
      messagePatients: messagePatientReader(config, mappings),
      converters: {
        cda: createCdaConverter({ limits: config.cda, fhirBaseUrl: fhirBaseUrl(config) }),
        [DICOM_PROTOCOL]: createDicomConverter({ dicomwebBaseUrl: dicomwebBaseUrl(config), maxInflatedBytes: config.dicom.maxInstanceBytes }),
      },
    }),
    { concurrency: config.queue.concurrency },
  );
  closers.push({ name: 'ingest consumer', close: () => consumer.close(config.engine.shutdownGraceMs) });
  const sweeper = new Sweeper({ pool: store.pools.background, queue, log: log.child({ component: 'sweeper' }), ...config.sweeper });
  sweeper.start();
  closers.push({ name: 'sweeper', close: () => sweeper.close() });
  // Research projections follow the clinical store by a ledger watermark, and Bulk Data exports run here.
  const researchLog = log.child({ component: 'research' });
  const projector = new ResearchProjector({ pool: store.pools.background, schema: config.database.schema, defaultPolicy: config.consent.default, sensitivityRules: config.consent.sensitivityRules, settleMs: config.research.settleMs, log: researchLog });
  const refresher = new ResearchRefresher({ projector, pool: store.pools.background, schema: config.database.schema, log: researchLog, intervalMs: config.research.refreshIntervalMs, exportStaleMs: config.research.exportStaleMs });
  refresher.start();
  closers.push({ name: 'research refresh', close: () => refresher.close() });
}

/**
 * Reads the patient identifiers of stored messages (workers/message-patients.ts) with the engine's limits: for the
 * ingest worker, with the identifierSystems of the mapping config each message is mapped with; for an erasure's
 * scan (`mappings` absent), with those of the engine's `mapping` settings.
 */
export function messagePatientReader(config: AnchorlineConfig, mappings?: MappingSource): MessagePatientReader {
  return createMessagePatientReader({
    defaultCharset: config.mllp.defaultCharset,
    hl7Limits: config.hl7v2,
    cdaLimits: config.cda,
    identifierSystems: mappings === undefined ? () => config.mapping.identifierSystems : (header) => mappings.select(header).options.identifierSystems,
  });
}

/** The blob store of whole DICOM instances: dicom.blobDir, default '<dataDir>/blobs'. */
export function dicomBlobStore(config: AnchorlineConfig): BlobStore {
  return configuredBlobStore(config);
}

/**
 * The DICOM intake on the engine's store and queue: what the DIMSE listener and STOW-RS hand instances to. Close it
 * after the listeners that feed it and before the queue.
 */
export function createDicomIntake(config: AnchorlineConfig, log: Logger, store: Store, queue: JobQueue, metrics?: IntakeMetrics): DicomIntake {
  return new DicomIntake({
    pool: store.pool,
    log: log.child({ component: 'dicom-intake' }),
    blobs: dicomBlobStore(config),
    queue,
    maxInstanceBytes: config.dicom.maxInstanceBytes,
    maxInflateRatio: config.dicom.maxInflateRatio,
    stowMaxInflatedBytes: config.dicom.stowMaxInflatedBytes,
    ...(metrics ? { metrics } : {}),
  });
}

/** What /metrics, /livez, /readyz and /admin/stats read, on the HTTP API or the worker's own listener. */
function operationsOptions(config: AnchorlineConfig, store: Store, queue: JobQueue, metrics: EngineMetrics, readiness: Readiness) {
  return {
    pool: store.pools.api,
    queue,
    metrics,
    readiness,
    anchorDriver: config.anchor.driver,
    metricsRequireAdminKey: config.observability.metricsRequireAdminKey,
    readinessTimeoutMs: config.observability.readinessTimeoutMs,
  };
}

/**
 * The engine's DICOMweb base URL, the address the ImagingStudy Endpoint records: the HTTP listener's, with a
 * wildcard bind address read as loopback.
 */
export function dicomwebBaseUrl(config: AnchorlineConfig): string {
  return `${httpBaseUrl(config)}/dicomweb`;
}

/** The engine's FHIR base URL, which the fullUrls of a stored document Bundle are made from: the HTTP listener's. */
export function fhirBaseUrl(config: AnchorlineConfig): string {
  return `${httpBaseUrl(config)}/fhir`;
}

function httpBaseUrl(config: AnchorlineConfig): string {
  const host = config.http.host === '0.0.0.0' || config.http.host === '::' ? '127.0.0.1' : config.http.host;
  return `http://${host.includes(':') ? `[${host}]` : host}:${config.http.port}`;
}

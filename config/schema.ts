/**
 * The one configuration schema. Every option is declared here with its default beside it and its unit in its name;
 * unknown keys are errors. The engine validates the whole configuration before it opens any socket, and a bad
 * configuration exits with a message that names the key (see loadConfig in config/load.ts).
 */
import { z } from 'zod';

const port = z.number().int().min(0).max(65535);
const positiveInt = z.number().int().positive();

const tlsSchema = z
  .strictObject({
    /** Serve MLLP over TLS. Default false. */
    enabled: z.boolean().default(false),
    /** PEM certificate chain file. Required when enabled. */
    certFile: z.string().optional(),
    /** PEM private key file. Required when enabled. */
    keyFile: z.string().optional(),
    /** PEM CA bundle used to verify client certificates. */
    caFile: z.string().optional(),
    /** Require and verify a client certificate (mutual TLS). Default false. */
    requireClientCert: z.boolean().default(false),
  })
  .refine((t) => !t.enabled || (t.certFile && t.keyFile), { message: 'certFile and keyFile are required when TLS is enabled', path: ['certFile'] });

export const configSchema = z.strictObject({
  /** Where the embedded database, the bootstrap API key and other state live. Default './data'. Env ANCHORLINE_DATA_DIR. */
  dataDir: z.string().default('./data'),

  http: z
    .strictObject({
      /** Bind address of the HTTP API. Default '127.0.0.1'. */
      host: z.string().default('127.0.0.1'),
      /** HTTP API port; 0 picks a free port. Default 8080. Env HTTP_PORT. */
      port: port.default(8080),
      /** Largest accepted request body, in bytes. Default 16 MiB. */
      bodyLimitBytes: positiveInt.default(16 * 1024 * 1024),
      /** A request must arrive whole within this time, in ms, so slow clients cannot hold sockets. Default 60000. */
      requestTimeoutMs: positiveInt.default(60_000),
      /**
       * Longest a single database statement of an API request may run, in ms (PostgreSQL statement_timeout on the API's
       * connections). A request whose statement runs longer is answered 503 ANCHORLINE_ERR_QUERY_TIMEOUT. A query is
       * also cancelled when its client disconnects. Default 5000.
       */
      queryTimeoutMs: positiveInt.default(5_000),
      /**
       * Record every FHIR read as an AuditEvent, durable before the answer. Default true. false answers reads without
       * their AuditEvents (the engine warns at start): only for measuring what the audit trail costs
       * (`npm run bench:fhir-read`), never for serving records.
       */
      auditReads: z.boolean().default(true),
      /**
       * Search criteria a FHIR search may carry: each occurrence of a search parameter counts once (`name=a&name=b`
       * is two), and so does each `_include` and `_revinclude` (a query each); `_count` and `_offset` do not. More are
       * refused with 400. Default 32.
       */
      maxSearchParameters: positiveInt.default(32),
      /** Values one search criterion may list as alternatives (`code=a,b,c` is three); more are refused with 400. Default 100. */
      maxSearchValuesPerParameter: positiveInt.default(100),
      /** Largest page of a FHIR search or history, in resources: a larger `_count` is lowered to it (as FHIR allows). Default 1000. */
      maxPageCount: positiveInt.default(1_000),
      /**
       * Largest `_offset` of a FHIR search or history page; a larger one is refused with 400, since the database walks
       * every row before the offset. Narrow the search (`_lastUpdated`, `date`) to go further back. Default 10000.
       */
      maxPageOffset: z.number().int().min(0).default(10_000),
    })
    .prefault({}),

  mllp: z
    .strictObject({
      /** Run the MLLP listener. Default true. */
      enabled: z.boolean().default(true),
      /** Bind address. Default '127.0.0.1'; set '0.0.0.0' to accept senders from the network. */
      host: z.string().default('127.0.0.1'),
      /** MLLP port; 0 picks a free port. Default 2575. Env MLLP_PORT. */
      port: port.default(2575),
      /** Largest accepted message (frame payload), in bytes. Default 16 MiB (MDM/ORU with embedded documents). */
      maxFrameBytes: positiveInt.default(16 * 1024 * 1024),
      /**
       * Simultaneous connections in all. When all are taken, a peer holding fewer connections than the peer holding the
       * most is admitted by closing that peer's longest-silent connection (one that owes no answer); otherwise the new
       * connection is closed at once. Default 256.
       */
      maxConnections: positiveInt.default(256),
      /**
       * Simultaneous connections from one peer address; further ones from it are closed at once. Senders behind one NAT
       * or interface engine share it. Default 64.
       */
      maxConnectionsPerPeer: positiveInt.default(64),
      /** A connection with no traffic for this long is closed, in ms. Any byte counts as traffic. Default 300000 (5 min). */
      idleTimeoutMs: positiveInt.default(300_000),
      /**
       * Longest time from the first byte of a frame (or of bytes between frames) to its end, in ms. A frame still open
       * then is answered with ANCHORLINE_ERR_FRAME_TIMEOUT and the connection is closed, so a sender trickling bytes or
       * streaming an endless frame cannot hold a connection. At 16 MiB frames it allows a link of ~2 Mbit/s. Default 60000.
       */
      frameTimeoutMs: positiveInt.default(60_000),
      /**
       * When an original-mode message is acknowledged: 'afterCommit' (AA once the raw message is durably stored) or
       * 'afterMapping' (AA/AE once it has been mapped to FHIR). Enhanced mode (MSH-15/16 present) always sends the
       * accept acknowledgment (CA) after the commit. Default 'afterCommit'.
       */
      ackMode: z.enum(['afterCommit', 'afterMapping']).default('afterCommit'),
      /** In afterMapping mode, how long to wait for mapping before answering AE (resend gets the final ACK), in ms. Default 30000. */
      ackTimeoutMs: positiveInt.default(30_000),
      /** Character set assumed when MSH-18 is empty. Default 'UTF-8'. */
      defaultCharset: z.string().default('UTF-8'),
      tls: tlsSchema.prefault({}),
    })
    .prefault({}),

  dicom: z
    .strictObject({
      /** Run the DIMSE listener (C-ECHO, C-STORE). STOW-RS on the HTTP API is served either way. Default true. */
      enabled: z.boolean().default(true),
      /** Bind address of the DIMSE listener. Default '127.0.0.1'; set '0.0.0.0' to accept modalities from the network. */
      host: z.string().default('127.0.0.1'),
      /** DIMSE port; 0 picks a free port. Default 11112. Env DICOM_PORT. */
      port: port.default(11112),
      /** Our AE title: the called AE title an association request must name. 1-16 characters. Default 'ANCHORLINE'. */
      aeTitle: z
        .string()
        .regex(/^[\x20-\x5b\x5d-\x7e]{1,16}$/, 'must be 1-16 printable ASCII characters without backslash')
        .refine((title) => title.trim() !== '', 'must not be blank')
        .default('ANCHORLINE'),
      /**
       * Calling AE titles allowed to associate (compared exactly, ignoring leading and trailing spaces). Default []:
       * any calling AE title is accepted, so set it wherever the listener is reachable from outside this host.
       */
      allowedCallingAeTitles: z.array(z.string().min(1).max(16)).default([]),
      /** Associations served at once; further requests are rejected as transient (local limit exceeded). Default 32. */
      maxAssociations: positiveInt.default(32),
      /** An association must be requested within this time of connecting, in ms (the ARTIM timer). Default 30000. */
      associationRequestTimeoutMs: positiveInt.default(30_000),
      /** An association with no traffic for this long is aborted, in ms. Default 120000. */
      associationIdleTimeoutMs: positiveInt.default(120_000),
      /**
       * Largest P-DATA-TF PDU we accept, in bytes (announced as our maximum length received; at most 256 KiB, the
       * DIMSE library's own limit). A peer sending a larger PDU is aborted. Default 262144.
       */
      maxPduBytes: z.number().int().min(4_096).max(262_144).default(262_144),
      /**
       * Largest DICOM instance accepted, in bytes (C-STORE data set or STOW-RS part). A larger one is refused on its
       * own (DIMSE status A700, STOW failure reason A700) and the association or request goes on. An instance is held in
       * memory while it is stored, so this times the simultaneous associations and requests bounds that memory.
       * Default 256 MiB.
       */
      maxInstanceBytes: positiveInt.default(256 * 1024 * 1024),
      /** Largest STOW-RS request body, in bytes; a larger one is answered 413. Default 1 GiB. */
      stowMaxBytes: positiveInt.default(1024 * 1024 * 1024),
      /**
       * Most a deflated data set (transfer syntax 1.2.840.10008.1.2.1.99) may inflate to, as a multiple of its deflated
       * size; beyond it the instance is refused (ANCHORLINE_ERR_DICOM_TOO_LARGE) whatever maxInstanceBytes allows.
       * Data sets inflating to at most 1 MiB are not held to it. Default 200 (DICOM headers and images deflate 3 to 20
       * times; deflate itself reaches about 1000).
       */
      maxInflateRatio: positiveInt.default(200),
      /**
       * Most the deflated instances of one STOW-RS request may inflate to together, in bytes; an instance past it is
       * refused (ANCHORLINE_ERR_DICOM_INFLATE_BUDGET, retryable: send it in another request). Default 1 GiB.
       */
      stowMaxInflatedBytes: positiveInt.default(1024 * 1024 * 1024),
      /** Directory of stored instance files (content-addressed by SHA-256). Default '<dataDir>/blobs'. */
      blobDir: z.string().min(1).optional(),
    })
    .prefault({}),

  database: z
    .strictObject({
      /** External PostgreSQL URL; when absent an embedded server runs under dataDir. Env DATABASE_URL. */
      url: z.string().optional(),
      /**
       * Connections of each of the process's pools, so that no kind of work can take the connections another needs: a
       * flood of API searches cannot stop intake. Pools open connections when used: `anchorline worker` uses the
       * intake (queue), workers and background pools. With the defaults, `start` takes at most 20 connections (30 with
       * workers.isolation 'inline') and each worker process 22: an engine with its worker process and two more worker
       * processes stay within PostgreSQL's default max_connections of 100.
       */
      pools: z
        .strictObject({
          /** HL7 v2, C-CDA and DICOM intake, the Postgres queue and the readiness check. Default 8. */
          intakeConnections: positiveInt.default(8),
          /** The HTTP API (FHIR, admin, console, metrics); statements limited by http.queryTimeoutMs. Default 8. */
          apiConnections: positiveInt.default(8),
          /** The ingest workers' mapping transactions. Default 10. */
          workerConnections: positiveInt.default(10),
          /** Anchor worker, chain anchor, sweeper, mapping config polling, and cancelling abandoned API queries. Default 4. */
          backgroundConnections: positiveInt.default(4),
        })
        .prefault({}),
      /** Port of the embedded server; 0 picks a free port at each start. Default 0. */
      embeddedPort: port.default(0),
      /** Schema holding anchorline's tables. Default 'public'. */
      schema: z.string().regex(/^[a-z_][a-z0-9_]*$/).default('public'),
    })
    .prefault({}),

  redis: z
    .strictObject({
      /** Redis URL; when set, the queue runs on BullMQ, otherwise on PostgreSQL. Env REDIS_URL. */
      url: z.string().optional(),
      /** Prefix of every BullMQ key. Default 'anchorline'. */
      keyPrefix: z.string().default('anchorline'),
    })
    .prefault({}),

  queue: z
    .strictObject({
      /**
       * Jobs one worker process runs at once. Default 128. Ingest jobs running together are mapped in one
       * transaction (up to 100 a batch), so this sets how large batches can grow; it costs promises, not threads.
       * Measured on 2 cores, draining a backlog: 8 -> 1311 msg/s, 32 -> ~2000, 128 -> 2167.
       */
      concurrency: positiveInt.default(128),
      /** Attempts for a job that fails with a retryable error. Default 10. */
      maxAttempts: positiveInt.default(10),
      /** First retry delay, doubled each attempt, in ms. Default 500. */
      backoffMs: positiveInt.default(500),
      /** A claimed job whose worker stops renewing it is handed out again after this long, in ms (Postgres lease; BullMQ lock and stalled check). Default 30000. */
      lockMs: positiveInt.default(30_000),
    })
    .prefault({}),

  workers: z
    .strictObject({
      /**
       * Run the ingest workers and the sweeper in this process. Default true. Set false for an intake-only node
       * whose messages are mapped by `anchorline worker` processes against the same database (and Redis).
       */
      enabled: z.boolean().default(true),
      /**
       * Where `start` runs the ingest workers and the sweeper. 'process': in a child process of their own, with its own
       * heap limit and a stall watchdog, restarted when it dies, so that no message can exhaust the memory of, or stall,
       * the process that takes in messages and answers the API. 'inline': in the engine's own process (one process
       * to debug; what `anchorline worker` always does). Default 'process'.
       */
      isolation: z.enum(['process', 'inline']).default('process'),
      /**
       * How many worker processes `start` forks with isolation 'process': each maps from the shared queue, as
       * `anchorline worker` processes do, with its own heap limit, watchdog and restarts, and intake priority slows
       * them all alike. Default 1: on a 2-core machine shared with intake and PostgreSQL a second one maps faster
       * but takes the cores intake needs (README, Performance); where cores are to spare, more map more, until
       * PostgreSQL's cores are full. Each takes up to 22 database connections (database.pools).
       */
      processes: positiveInt.max(16).default(1),
      /** The worker process's V8 heap limit (--max-old-space-size), in MiB. Default 2048. */
      maxHeapMb: positiveInt.default(2048),
      /**
       * The worker process's V8 young generation: the size of each semi-space (--max-semi-space-size), in MiB.
       * Default 64 (V8's own is 16): mapping makes many short-lived objects, and a larger young generation collects
       * them in fewer scavenges and promotes fewer of them, 10-20 % less worker CPU a mapped message (README,
       * Performance).
       */
      semiSpaceMb: z.number().int().min(1).max(1024).default(64),
      /**
       * Whether the worker process's scavenges (young-generation collections) run on helper threads on every core,
       * as V8 does by default. Default false: they run on the worker's own thread (--no-parallel-scavenge). With
       * them parallel, each larger scavenge took every core at once, intake's included: with the mixed corpus, intake
       * beside mapping on two cores acknowledged ~800 of 1,000 msg/s offered, ACK p50 over 1 s. Set true for worker
       * processes on cores of their own.
       */
      parallelScavenge: z.boolean().default(false),
      /**
       * The worker process is killed and restarted when its event loop has not turned for this long, in ms (one
       * message's processing stalled it). Default 60000.
       */
      stallTimeoutMs: positiveInt.default(60_000),
      /** First wait before a dead worker process is restarted, in ms; doubled per quick death up to 30 s. Default 500. */
      restartDelayMs: positiveInt.default(500),
      /**
       * A message whose processing attempts crashed or stalled their worker this many times (counted durably as each
       * attempt starts) is moved to the dead letters with ANCHORLINE_ERR_MESSAGE_POISON and not picked up again
       * automatically. Default 3.
       */
      maxCrashedAttempts: positiveInt.default(3),
      /**
       * Mapping batches (transactions) one worker process runs at once, so that it can map one while PostgreSQL
       * writes another. Default 1: on 2 cores shared with intake and PostgreSQL, 2 drained a backlog 10-15 % faster
       * at more CPU a message and lengthened the ACK tail beside it; worth measuring where the database has cores of
       * its own.
       */
      batchesInFlight: positiveInt.max(16).default(1),
      /**
       * CPU priority of mapping, as a Unix niceness (0 = as the intake, 19 = lowest): worker processes (`anchorline
       * worker`, and the one `start` forks) run at it, and so do the PostgreSQL sessions of their mapping and background
       * pools when the server is on this host (reached over a Unix socket: the embedded server), so that where the
       * cores are what intake and mapping contend for, intake goes first. Default 0: on the 2-core machine the ACK
       * tail with mapping running is WAL flushes, not CPU, and 10 measured worse (README, Performance).
       */
      niceness: z.number().int().min(0).max(19).default(0),
      /**
       * Intake before mapping (workers/pacing.ts): while the ACKs the engine sends are slower than `ackTargetMs` (p99
       * of each 200 ms), the worker process `start` forks (or its inline workers) rests after each mapping batch, so
       * that mapping takes half the time, then a quarter, down to `minMappingShare`; the share comes back step by step
       * once the ACKs are well under the target, and whole when nothing arrives or more than `maxBacklog` messages
       * wait to be mapped. Worker processes started on their own
       * (`anchorline worker`) are not slowed. `enabled: false` lets mapping take every core it can.
       */
      intakePriority: z
        .strictObject({
          enabled: z.boolean().default(true),
          /** The ACK latency (p99 of a window) intake should keep under, in ms. Default 10. */
          ackTargetMs: positiveInt.max(60_000).default(10),
          /** The least share of time mapping keeps while intake is pressed, from 0.05 to 1. Default 0.25. */
          minMappingShare: z.number().min(0.05).max(1).default(0.25),
          /**
           * Messages waiting to be mapped beyond which mapping takes its whole share whatever the ACKs: a feed that
           * never pauses must not grow the backlog without bound. Default 20000.
           */
          maxBacklog: positiveInt.default(20_000),
        })
        .prefault({}),
    })
    .superRefine((workers, context) => {
      // Inline workers are one set in the engine's own process: more processes than one would be silently ignored.
      if (workers.isolation === 'inline' && workers.processes > 1) {
        context.addIssue({ code: 'custom', path: ['processes'], message: "more than one worker process needs isolation 'process'" });
      }
    })
    .prefault({}),

  anchor: z
    .strictObject({
      /** Append provenance leaves to the log and sign its checkpoints in this process. Default true. */
      enabled: z.boolean().default(true),
      /** A checkpoint is signed this long after the previous one, in ms, when leaves are waiting. Default 5000. */
      closeAfterMs: positiveInt.default(5_000),
      /** A checkpoint is signed at once when this many leaves are waiting; also the most leaves one appends. Default 10000. */
      maxLeaves: positiveInt.default(10_000),
      /**
       * Ed25519 private key (hex) that signs checkpoints (and once signed batch headers). Default
       * '<dataDir>/anchor-signing.key', created at the first `start`. Every process that signs checkpoints must use
       * the same key: auditors pin its public key.
       */
      signingKeyFile: z.string().optional(),
      /**
       * The log's origin: the first line of every checkpoint and the name of the log key (C2SP tlog-checkpoint),
       * a schema-less URL such as 'hospital.example/anchorline'. Default 'anchorline.localhost/log/<16 hex digits
       * of SHA-256 of the public key>'. A log keeps the origin of its first checkpoint.
       */
      origin: z
        .string()
        .regex(/^[^\s+]+$/, 'must be one word without spaces or "+"')
        .max(200)
        .optional(),
      /**
       * Witnesses whose cosignatures the engine accepts (POST /log/cosignature) and puts in proof bundles: their
       * cosignature/v1 verifier keys (<name>+<key id>+<base64>, as `anchorline witness keygen` prints). Default none.
       */
      witnesses: z.array(z.string().min(1).max(512)).default([]),
      /**
       * Proof bundles are made against the newest checkpoint cosigned by at least this many witnesses, when one
       * covers the record (else the newest checkpoint). Default: all configured witnesses.
       */
      witnessQuorum: z.number().int().min(0).optional(),
      /**
       * Where checkpoints of the log are anchored. 'local': nowhere outside the engine (the signed, linked
       * checkpoints in PostgreSQL, and any witnesses' cosignatures). 'evm': their hashes go to an AnchorRegistry
       * contract on an EVM chain (settings in `evm`).
       * Default 'local'; setting ANCHOR_RPC_URL selects 'evm'.
       */
      driver: z.enum(['local', 'evm']).default('local'),
      evm: z
        .strictObject({
          /** JSON-RPC URL of a chain node (Besu in production). Required with driver 'evm'. */
          rpcUrl: z.string().url().optional(),
          /** The chain's id; the driver refuses to anchor on any other. Optional: the node's answer is used. */
          chainId: positiveInt.optional(),
          /** Address of the deployed AnchorRegistry (`anchorline chain deploy`). Required with driver 'evm'. */
          contractAddress: z.string().regex(/^0x[0-9a-fA-F]{40}$/, 'must be 0x and 40 hex digits').optional(),
          /**
           * secp256k1 private key (hex) of the submitter account, which the registry owner must allow. Default
           * '<dataDir>/anchor-submitter.key', created at the first start with driver 'evm'.
           */
          submitterKeyFile: z.string().optional(),
          /** Blocks that must follow the anchoring block (counting it) before the anchor counts as final. Default 2. */
          confirmations: positiveInt.default(2),
          /** How often the node is asked for receipts and new blocks, in ms; at least 50. Default 1000. */
          pollIntervalMs: z.number().int().min(50).default(1_000),
          /** Timeout of one JSON-RPC request, in ms. Default 10000. */
          requestTimeoutMs: positiveInt.default(10_000),
          /** First wait after a failed attempt, in ms; doubled per failure up to maxRetryBackoffMs. Default 1000. */
          retryBackoffMs: positiveInt.default(1_000),
          /** Longest wait between attempts while the chain is unavailable, in ms. Default 60000. */
          maxRetryBackoffMs: positiveInt.default(60_000),
          /** Block the registry was deployed in; searches of its events start there. Default 0. */
          fromBlock: z.number().int().min(0).default(0),
          /** Blocks per eth_getLogs request (Besu caps it with --rpc-max-logs-range, 1000 by default). Default 1000. */
          logRangeBlocks: positiveInt.default(1_000),
          /** Gas limit multiplier over the node's estimate, in percent. Default 130. */
          gasHeadroomPercent: z.number().int().min(100).max(1_000).default(130),
        })
        .prefault({}),
    })
    .superRefine((anchor, context) => {
      if (anchor.driver !== 'evm') return;
      if (!anchor.evm.rpcUrl) context.addIssue({ code: 'custom', path: ['evm', 'rpcUrl'], message: "required when driver is 'evm' (ANCHOR_RPC_URL)" });
      if (!anchor.evm.contractAddress) context.addIssue({ code: 'custom', path: ['evm', 'contractAddress'], message: "required when driver is 'evm' (ANCHOR_CONTRACT_ADDRESS)" });
    })
    .prefault({}),

  sweeper: z
    .strictObject({
      /** How often unfinished inbox messages are re-enqueued, in ms. Default 5000. */
      intervalMs: positiveInt.default(5_000),
      /** A message still unfinished this long after it arrived is re-enqueued, in ms. Default 15000. */
      staleAfterMs: positiveInt.default(15_000),
      /** Messages re-enqueued per pass at most. Default 5000. */
      batchSize: positiveInt.default(5_000),
    })
    .prefault({}),

  intake: z
    .strictObject({
      /**
       * Messages arriving together are committed in one transaction (group commit): one fsync for many ACKs.
       * A batch closes when it holds this many messages. Default 500.
       */
      commitBatchMaxMessages: positiveInt.default(500),
      /**
       * Group commits under way at once. Default 1: on 2 cores, 8 senders, 1 gave 2946 ACK/s, 2 gave 2796 and 4 gave
       * 2453 (smaller groups cost more commits); more can pay off where the database is on another machine.
       */
      commitConcurrency: positiveInt.default(1),
      /** Messages allowed to wait for the next group commit before senders are slowed down. Default 5000. */
      maxPendingMessages: positiveInt.default(5_000),
    })
    .prefault({}),

  mapping: z
    .strictObject({
      /** IANA time zone applied to HL7 times sent without an offset. Default 'Asia/Seoul'. */
      timeZone: z
        .string()
        .default('Asia/Seoul')
        .refine((tz) => {
          try {
            new Intl.DateTimeFormat('en', { timeZone: tz });
            return true;
          } catch {
            return false;
          }
        }, 'not a known IANA time zone'),
      /** Assigning authority namespace (CX-4.1) -> identifier system URI. Default {}. */
      identifierSystems: z.record(z.string(), z.string()).default({}),
      /** Base URI of local code systems. Default 'urn:anchorline:local'. */
      localCodeSystemBase: z.string().default('urn:anchorline:local'),
      // The two options below say where mapping config files are read and how often the database is polled; they
      // are not mapping rules. Their defaults are applied by the mapping registry (workers/mapping-registry.ts) rather
      // than here: with neither set, this section as parsed is exactly the three rules above, the content of the
      // built-in 'default' mapping config, whose version (the SHA-256 of that content) stays what it was before
      // these options existed.
      /**
       * Directory of mapping config files (*.yaml, *.yml, *.json; README "Mapping configs"), watched for changes.
       * Default '<dataDir>/mappings' (read when it exists, and picked up when it is created later). The shipped
       * examples in config/mappings are not loaded unless this points at them.
       */
      configDir: z.string().min(1).optional(),
      /**
       * How often the deployment table is read for versions other processes (or a rollback) activated, and the config
       * directory is checked for changes a file watch may have missed, in ms. Default 2000.
       */
      pollIntervalMs: z.number().int().min(100).optional(),
    })
    .prefault({}),

  /**
   * How much structure one HL7 v2 message may have (formats/hl7v2/limits.ts): the frame cap bounds bytes, these bound
   * what the bytes expand to when parsed. The intake counts every message against them before it acknowledges it and
   * refuses one over a cap with AR/CR and ANCHORLINE_ERR_HL7_TOO_COMPLEX, kept as a rejected message; the ingest
   * workers parse with the same limits. The defaults are far above the largest public corpus message (179 segments,
   * 94 fields, 17 repetitions, 26 components, 21 subcomponents, 14,620 nodes).
   */
  hl7v2: z
    .strictObject({
      /** Segments in one message, MSH included. Default 10000. */
      maxSegments: positiveInt.default(10_000),
      /** Fields in one segment (its highest field number). Default 500. */
      maxFieldsPerSegment: positiveInt.default(500),
      /** Repetitions of one field (a report sent one line per OBX-5 repetition is the longest seen). Default 10000. */
      maxRepetitionsPerField: positiveInt.default(10_000),
      /** Components of one repetition. Default 1000. */
      maxComponentsPerRepetition: positiveInt.default(1_000),
      /** Subcomponents of one component (embedded XML with unescaped `&` makes many). Default 10000. */
      maxSubcomponentsPerComponent: positiveInt.default(10_000),
      /**
       * Segments, fields, repetitions, components and values of one message together, the size of its parsed tree
       * (each costs some 30 to 60 bytes of heap), and the line breaks kept inside segments. Default 500000.
       */
      maxParsedNodes: positiveInt.default(500_000),
      /**
       * Messages in one batch (FHS/BHS ... BTS/FTS, or messages one after another in one MLLP frame or HTTP body); a
       * batch with more is refused whole with ANCHORLINE_ERR_HL7_TOO_COMPLEX, kept as a rejected row. Default 10000.
       */
      maxBatchMessages: positiveInt.default(10_000),
    })
    .prefault({}),

  cda: z
    .strictObject({
      /**
       * Largest C-CDA document accepted at POST /ingest/cda, in bytes; a larger one is answered 413 and its first
       * 64 KiB kept as a rejected message. Must not exceed http.bodyLimitBytes to take effect. Default 10 MiB.
       */
      maxBytes: positiveInt.default(10 * 1024 * 1024),
      /** Deepest element nesting accepted in a C-CDA document, checked before it is parsed. Default 200. */
      maxDepth: positiveInt.default(200),
    })
    .prefault({}),

  /** Patients' consents: who may read what when a person (not a system) reads records (README "Consent"). */
  consent: z
    .strictObject({
      /**
       * What applies to a person's read when none of the patient's active consents does: 'opt-in' denies (sharing
       * across institutions needs the patient's consent, as Korean law expects), 'opt-out' permits. Default 'opt-in'.
       */
      default: z.enum(['opt-in', 'opt-out']).default('opt-in'),
      /**
       * Decide people's reads on consent. Default true. false lets people read whatever their scopes reach (their own
       * records and their patients' stay theirs; the audit trail still records every read): only for measuring what
       * enforcement costs, never for serving patients.
       */
      enforce: z.boolean().default(true),
      /** Person roles (user accounts' role codes) that may break the glass: read despite a deny, with a reason, flagged for review. Default ['emergency']. */
      breakGlassRoles: z.array(z.string().min(1)).default(['emergency']),
      /**
       * Rules deriving security labels from content, added to the engine's table (consent/labels.ts): a coding of one
       * of `systems` whose code is in `codes`, starts with one of `prefixes` or falls in one of `ranges` (inclusive,
       * compared without the dot) gives the resource `labels` ('system|code'). Default [].
       */
      sensitivityRules: z
        .array(
          z.strictObject({
            systems: z.array(z.string().min(1)).min(1),
            codes: z.array(z.string().min(1)).optional(),
            prefixes: z.array(z.string().min(1)).optional(),
            ranges: z.array(z.tuple([z.string().min(1), z.string().min(1)])).optional(),
            labels: z.array(z.string().regex(/^[^|]+\|[^|]+$/, "a label is 'system|code'")).min(1),
            resourceTypes: z.array(z.string().min(1)).optional(),
          }),
        )
        .default([]),
      /** Longest a patient's consents are served from the API's cache without reading them again, in ms. Default 30000. */
      cacheTtlMs: positiveInt.default(30_000),
      /** Patients whose consents the API's cache keeps at most. Default 10000. */
      cacheMaxPatients: positiveInt.default(10_000),
    })
    .prefault({}),

  /** Research projects and the de-identified research database (README "Research"). */
  research: z
    .strictObject({
      /**
       * How often released projects are checked for new versions (and refreshed) and waiting Bulk Data exports are
       * run, in ms. Default 5000.
       */
      refreshIntervalMs: positiveInt.default(5_000),
      /**
       * Ledger leaves younger than this are read again by the next refresh, in ms: a transaction may commit after a
       * later one, and one that stays open longer than this could be missed. Default 5000.
       */
      settleMs: positiveInt.default(5_000),
      /** An export left in progress this long by a stopped process is taken up again, in ms. Default 60000. */
      exportStaleMs: positiveInt.default(60_000),
    })
    .prefault({}),

  encryption: z
    .strictObject({
      /**
       * Seal patients' records (resource versions in their compartment, document Bundles) under per-patient keys,
       * and inbound raw messages under per-message keys moved under the patient's at mapping (store/keys.ts).
       * Default true: the first start creates the master key file (masterKeyFile) in the data dir. Back it up apart
       * from the database backups: losing it loses every sealed record, and keeping it beside every database backup
       * keeps erased records readable in those backups. Every engine and worker on one database reads the same file.
       * False seals nothing new and still reads what was sealed, while the file is there.
       */
      enabled: z.boolean().default(true),
      /** The master key file (JSON, mode 0600), created at first start with encryption on. Default '<dataDir>/master-key.json'. */
      masterKeyFile: z.string().min(1).optional(),
      /** Unwrapped patient keys a process keeps in memory at most. Default 10000. */
      keyCacheMaxKeys: positiveInt.default(10_000),
      /** Longest an unwrapped patient key stays in memory, in ms. Default 300000 (5 minutes). */
      keyCacheTtlMs: positiveInt.default(300_000),
    })
    .prefault({}),

  auth: z
    .strictObject({
      /** Bootstrap admin API key. When absent, one is generated at first start and written to dataDir. Env ANCHORLINE_API_KEY. */
      apiKey: z.string().min(16).optional(),
      /**
       * Issuer (`iss`) and audience (`aud`) of the access tokens the token endpoint signs, and the audience a client
       * assertion (private_key_jwt) must name besides the token endpoint URL. Default 'anchorline'; set the public
       * base URL when clients need it to be one.
       */
      issuer: z.string().min(1).default('anchorline'),
      /** Lifetime of an access token, in seconds. Default 300 (SMART Backend Services recommends at most five minutes). */
      tokenLifetimeSeconds: positiveInt.max(86_400).default(300),
      /**
       * PEM PKCS#8 ES256 private key that signs access tokens. Default '<dataDir>/oauth-signing.pem', created at first
       * start. Engines behind one load balancer must share it.
       */
      tokenSigningKeyFile: z.string().optional(),
      /** How long a verified API key or client is trusted before it is looked up again, in ms. Default 10000. */
      credentialCacheMs: z.number().int().min(0).default(10_000),
      /**
       * The engine's public base URL (scheme, host, port, no trailing slash), as apps and browsers reach it. People's
       * tokens are issued by '<publicUrl>/auth/oidc' for the audience '<publicUrl>/fhir', and the built-in portal app
       * returns to '<publicUrl>/portal/callback'. Default 'http://<http.host>:<listening port>' (127.0.0.1 when
       * http.host listens on every interface): set it whenever the engine is reached by another name or over TLS.
       */
      publicUrl: z.string().url().regex(/^https?:\/\/[^/?#]+(\/[^?#]*[^/?#])?$/, 'an http(s) URL without query, fragment or trailing slash').optional(),
      /** People signing in: SMART App Launch with the engine's own OpenID Connect provider (api/sign-in.ts). */
      signIn: z
        .strictObject({
          /** Serve sign-in (authorization endpoint, interaction pages, apps and users). Default true. */
          enabled: z.boolean().default(true),
          /** Lifetime of a person's access token, in seconds. Default 600. */
          accessTokenLifetimeSeconds: positiveInt.max(86_400).default(600),
          /** Lifetime of a refresh token (offline_access), in seconds. Default 2592000 (30 days). */
          refreshTokenLifetimeSeconds: positiveInt.default(30 * 86_400),
          /** Lifetime of a sign-in session at the engine (one login for several app launches), in seconds. Default 28800 (8 h). */
          sessionLifetimeSeconds: positiveInt.default(8 * 3_600),
          /**
           * 32 random bytes (base64url) that cookie signing keys and confidential apps' secrets are derived from.
           * Default '<dataDir>/sign-in-secret', created at first start (mode 0600). Engines behind one load balancer
           * must share it.
           */
          secretFile: z.string().optional(),
          /** How often expired sign-in state (codes, sessions, grants) is deleted from the database, in ms. Default 600000. */
          sweepIntervalMs: positiveInt.default(600_000),
        })
        .prefault({}),
      /**
       * A hospital's own identity provider: bearer JWTs it issues are verified against its JWK Set and act as the
       * local user whose externalSubject is the token's subject claim, with the SMART patient/ and user/ scopes the
       * token carries (`scope` or `scp`). Absent: none.
       */
      externalIdp: z
        .strictObject({
          /** `iss` of its tokens. */
          issuer: z.string().min(1),
          /** Where its public keys are published (JWK Set). */
          jwksUri: z.string().url(),
          /** `aud` its tokens must name (this engine, as registered there). */
          audience: z.string().min(1),
          /** The claim that holds the person's subject, as user accounts record it (externalSubject). Default 'sub'. */
          subjectClaim: z.string().min(1).default('sub'),
        })
        .optional(),
    })
    .prefault({}),

  /**
   * The hospitals and systems that send to this engine, so that one cannot send as another. A source claims its
   * sending facilities (MSH-4 namespace id) and applications (MSH-3); a message naming a claimed facility or
   * application is accepted only over a connection or credential bound to the claiming source: an HTTP API key or
   * OAuth client created with `source`, or an MLLP TLS connection whose client certificate is pinned here. Messages
   * naming nothing claimed are accepted from any ingest credential or connection, as before. Default [].
   */
  sources: z
    .array(
      z.strictObject({
        /** The source's name, as credentials are bound to it. Letters, digits, '.', '_' and '-'. */
        name: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'a source name is 1-64 letters, digits, ".", "_" or "-"'),
        /** MSH-4 namespace ids this source claims. Default []. */
        sendingFacilities: z.array(z.string().min(1)).default([]),
        /** MSH-3 namespace ids this source claims. Default []. */
        sendingApplications: z.array(z.string().min(1)).default([]),
        /**
         * C-CDA author or custodian organizations this source claims: an OID root ('1.2.410.100110'), which covers
         * every extension under it, or 'root^extension'. Default [].
         */
        cdaOrganizations: z.array(z.string().min(1)).default([]),
        mllp: z
          .strictObject({
            /**
             * SHA-256 fingerprints (hex, colons allowed) of the client certificates this source's MLLP senders
             * present over TLS (mllp.tls.enabled). A TLS connection presenting one of them is bound to this source.
             * Default [].
             */
            clientCertificateSha256: z.array(z.string().regex(/^([0-9A-Fa-f]{2}:?){31}[0-9A-Fa-f]{2}$/, 'a SHA-256 fingerprint is 64 hex digits')).default([]),
          })
          .prefault({}),
      }),
    )
    .default([])
    .superRefine((sources, ctx) => {
      const seen = new Map<string, string>();
      sources.forEach((source, i) => {
        if (sources.findIndex((s) => s.name === source.name) !== i) ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `source ${source.name} is declared twice` });
        for (const claim of [...source.sendingFacilities.map((f) => `facility ${f}`), ...source.sendingApplications.map((a) => `application ${a}`), ...source.cdaOrganizations.map((o) => `organization ${o}`)]) {
          const owner = seen.get(claim);
          if (owner && owner !== source.name) ctx.addIssue({ code: 'custom', path: [i], message: `${claim} is claimed by both ${owner} and ${source.name}` });
          seen.set(claim, source.name);
        }
      });
    }),

  engine: z
    .strictObject({
      /** MSH-3 of our ACKs when the sender left MSH-5 empty. Default 'ANCHORLINE'. */
      applicationName: z.string().default('ANCHORLINE'),
      /** Grace period for in-flight work on SIGTERM, in ms. Default 20000. */
      shutdownGraceMs: positiveInt.default(20_000),
    })
    .prefault({}),

  log: z
    .strictObject({
      /** 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent'. Default 'info'. Env LOG_LEVEL. */
      level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    })
    .prefault({}),

  observability: z
    .strictObject({
      /**
       * GET /metrics needs an admin API key. Default false: metrics carry counts, protocols, error codes and ages,
       * never patient data, and Prometheus scrapers usually hold no key.
       */
      metricsRequireAdminKey: z.boolean().default(false),
      /**
       * `anchorline worker` has no HTTP API; with this set it serves GET /metrics, /livez and /readyz on this port
       * (0 picks a free port). Ignored by `anchorline start`, whose HTTP API serves them. Default: absent, no listener.
       */
      workerPort: port.optional(),
      /** Bind address of the worker's metrics listener. Default '127.0.0.1'. */
      workerHost: z.string().default('127.0.0.1'),
      /** Each readiness check (GET /readyz) must answer within this time, in ms, or counts as not ready. Default 2000. */
      readinessTimeoutMs: positiveInt.default(2_000),
    })
    .prefault({}),
});

export type AnchorlineConfig = z.infer<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;

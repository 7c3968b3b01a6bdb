/**
 * The HTTP API (fastify): FHIR REST under /fhir, HL7 v2 over HTTP at /ingest/hl7v2, C-CDA at /ingest/cda, DICOMweb
 * under /dicomweb, health and admin routes.
 *
 * Authentication runs in onRequest, before any body is read or parsed: a request without a valid API key or access
 * token is answered 401 without its body ever being looked at. Each route declares what it needs (`ingest`, `audit`,
 * `admin`, or `read`: some FHIR read permission, the handler checking the resource type; see api/access.ts) or that
 * it is public.
 */
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type pg from 'pg';
import { AnchorlineError, ERROR_CATALOGUE, isAnchorlineError, operationOutcome, type ErrorCode } from '../errors/index.ts';
import { stringifyJson } from '../anchor/index.ts';
import { errorFields, type Logger } from '../config/logger.ts';
import { auditTrail, isQueryCanceled, isStatementTimeout, QueryAbandonedError, QueryCancellation, type MessagePatientReader } from '../store/index.ts';
import type { BatchIntakeResult, Hl7Intake } from '../adapters/hl7v2/intake.ts';
import { holdsSeveralMessages } from '../formats/hl7v2/index.ts';
import { originLabel } from '../adapters/sources.ts';
import type { Access, RouteScope } from './access.ts';
import { Authenticator } from './authenticate.ts';
import { registerOAuthRoutes, type TokenIssuer } from './oauth.ts';
import { SignIn, type SignInOptions } from './sign-in.ts';
import { registerSignInRoutes } from './sign-in-routes.ts';
import { ExternalIdp, type ExternalIdpOptions } from './external-idp.ts';
import { registerCredentialRoutes } from './credentials.ts';
import { DEFAULT_SEARCH_LIMITS, FHIR_JSON, registerFhirRoutes, type SearchLimits } from './fhir.ts';
import { registerProofRoutes } from './proofs.ts';
import { registerLogRoutes } from './log.ts';
import { registerTerminologyRoutes } from './terminology.ts';
import { registerMappingRoutes } from './mappings.ts';
import { registerMappingTesterRoutes } from './mapping-tester.ts';
import { registerAdminMessageRoutes } from './admin-messages.ts';
import { registerErasureRoutes } from './erasure.ts';
import { registerSealedExportRoutes } from './sealed-export.ts';
import { registerConsoleRoutes } from './console.ts';
import { registerPortalRoutes } from './portal.ts';
import type { MappingBase } from '../config/index.ts';
import type { JobQueue } from '../workers/index.ts';
import { registerCdaRoutes } from './cda.ts';
import type { CdaIntake } from '../adapters/cda/index.ts';
import { registerDicomWebRoutes, type DicomWebOptions } from './dicomweb.ts';
import { registerOpenApi } from './openapi.ts';
import { registerOperationRoutes, type OperationsOptions } from './operations.ts';
import type { ConsentGate } from './consent-gate.ts';
import { registerFhirWriteRoutes } from './fhir-write.ts';
import { registerResearchRoutes } from './research.ts';
import { registerBulkExportRoutes } from './bulk-export.ts';
import { ResearchProjector, type ResearchProjectorOptions } from '../workers/research-refresh.ts';
import { createMessagePatientReader } from '../workers/message-patients.ts';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** What the route requires; absent means admin. */
    scope?: RouteScope;
    /** No authentication. */
    public?: boolean;
  }
  interface FastifyRequest {
    /** The caller's access, set by authentication on every non-public route. */
    access?: Access;
  }
}

export interface ApiOptions {
  /**
   * The API's own pool, with statement_timeout set on its connections (config http.queryTimeoutMs). The API
   * instruments it to cancel a request's statements when its client disconnects (store/db.ts QueryCancellation).
   */
  pool: pg.Pool;
  /** Runs pg_cancel_backend for statements whose client went away: another pool than `pool`, which may be full. Default `pool`. */
  cancelPool?: pg.Pool;
  /**
   * Where the group commits of FHIR read AuditEvents run (store/audit-trail.ts ReadAuditBatcher): not the API pool,
   * so that readers waiting for their events do not hold the connections other readers need. Default `cancelPool`.
   */
  auditPool?: pg.Pool;
  /** Record reads as AuditEvents (config http.auditReads). Default true. */
  auditReads?: boolean;
  /** The statement_timeout of `pool`, in ms, named in the answer of a request that ran over it. */
  queryTimeoutMs?: number;
  /** Limits of FHIR searches and history pages. Default DEFAULT_SEARCH_LIMITS. */
  searchLimits?: SearchLimits;
  intake: Hl7Intake;
  log: Logger;
  bodyLimitBytes: number;
  requestTimeoutMs: number;
  /** How long a verified key or client is trusted before it is looked up again, in ms. Default 10000. */
  keyCacheMs?: number;
  /** Signs and verifies OAuth access tokens; absent: only API keys are accepted and /auth/token is not served. */
  tokenIssuer?: TokenIssuer;
  /**
   * People's sign-in (SMART App Launch with the engine's OpenID Connect provider, api/sign-in.ts), signing with
   * `tokenIssuer`'s key; absent (or without `tokenIssuer`): people cannot sign in here.
   */
  signIn?: Omit<SignInOptions, 'pool' | 'log' | 'signingKey'>;
  /** Accept people's tokens from a hospital's identity provider (config auth.externalIdp); absent: none. */
  externalIdp?: ExternalIdpOptions;
  /** Names of the configured sources credentials may be bound to (config `sources`). Default []. */
  sourceNames?: readonly string[];
  /** The ingest queue, for reprocessing messages from the console; absent: the sweeper enqueues them. */
  queue?: JobQueue;
  /** Charset of HL7 v2 messages without MSH-18 (mllp.defaultCharset). Default 'UTF-8'. */
  defaultCharset?: string;
  /** The engine's `mapping` settings, which the mapping tester resolves configs on; absent: the tester is not served. */
  mappingBase?: MappingBase;
  /**
   * Reads the patient identifiers of stored messages for an erasure's scan (workers/message-patients.ts); absent: one
   * on the defaults, `defaultCharset` and `mappingBase`'s identifierSystems.
   */
  messagePatients?: MessagePatientReader;
  /** Serve the web console at /console/. Default true. */
  console?: boolean;
  /** Serve the patient portal at /portal/ and GET /me. Default true. */
  portal?: boolean;
  /** Proof bundles wait for a chain anchor when batch headers are anchored on chain ('evm'). Default 'local'. */
  anchorDriver?: 'local' | 'evm';
  /** cosignature/v1 verifier keys of the witnesses whose cosignatures the log accepts (anchor.witnesses). */
  witnesses?: readonly string[];
  /** Cosignatures a checkpoint needs to be preferred for proof bundles; default all witnesses (anchor.witnessQuorum). */
  witnessQuorum?: number;
  /** POST /ingest/cda; absent: not served. */
  cdaIntake?: CdaIntake;
  /** STOW-RS, WADO-RS and /blobs; absent: those routes are not served. */
  dicom?: Omit<DicomWebOptions, 'pool' | 'log'>;
  /** Consent enforcement on people's reads (api/consent-gate.ts); absent: people are served no records. */
  consentGate?: ConsentGate;
  /** The consent cache the gate reads through, told at once when POST/PUT /fhir/Consent commits (api/fhir-write.ts). */
  consentCache?: { invalidate(patient: string): void };
  /** /metrics, /livez, /readyz and /admin/stats (api/operations.ts); absent: not served. */
  operations?: Omit<OperationsOptions, 'pool' | 'log'>;
  /** Research projects, releases, researchers' search and Bulk Data $export (api/research.ts); absent: not served. */
  research?: Omit<ResearchProjectorOptions, 'pool' | 'log'>;
}

const HL7_CONTENT_TYPES = ['x-application/hl7-v2+er7', 'application/hl7-v2', 'application/hl7-v2+er7', 'text/plain', 'application/edi-hl7', 'application/octet-stream'];

/**
 * Fastify's own errors (body too large, bad media type, malformed JSON) as catalogue errors, so every error response
 * carries a code. Client errors keep fastify's message; server errors say nothing of their cause.
 */
function fromFrameworkError(error: Error & { code?: string; statusCode?: number }): AnchorlineError {
  if (error instanceof QueryAbandonedError || (isQueryCanceled(error) && !isStatementTimeout(error))) {
    return new AnchorlineError('ANCHORLINE_ERR_QUERY_CANCELLED', undefined, { cause: error });
  }
  // pg-pool's own words when no connection of the API pool came free in time: the API is saturated, which is
  // transient, not an internal error.
  if (error.message === 'timeout exceeded when trying to connect') {
    return new AnchorlineError('ANCHORLINE_ERR_STORE_UNAVAILABLE', 'every database connection of the API is busy; try again later', { cause: error });
  }
  const clientError = error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500;
  const code: ErrorCode =
    error.code === 'FST_ERR_CTP_BODY_TOO_LARGE'
      ? 'ANCHORLINE_ERR_FRAME_TOO_LARGE'
      : error.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE'
        ? 'ANCHORLINE_ERR_UNSUPPORTED_MEDIA_TYPE'
        : clientError
          ? 'ANCHORLINE_ERR_INVALID_REQUEST'
          : 'ANCHORLINE_ERR_INTERNAL';
  return new AnchorlineError(code, clientError ? error.message : undefined, { cause: error });
}

export async function buildApi(options: ApiOptions): Promise<FastifyInstance> {
  const { pool, intake, log } = options;
  const app = Fastify({ logger: false, bodyLimit: options.bodyLimitBytes, requestTimeout: options.requestTimeoutMs, trustProxy: false });
  const authenticator = new Authenticator(pool, options.tokenIssuer, options.keyCacheMs ?? 10_000);
  const signIn = options.signIn && options.tokenIssuer ? new SignIn(app, { ...options.signIn, pool, log, signingKey: await options.tokenIssuer.signingJwk() }) : undefined;
  if (signIn) {
    authenticator.addPersonVerifier(signIn);
    app.addHook('onClose', async () => signIn.close());
  }
  if (options.externalIdp) authenticator.addPersonVerifier(new ExternalIdp(options.externalIdp));
  // Every JSON answer is written by stringifyJson: resources carry decimals as LosslessNumbers (anchor/json.ts), which
  // must leave as the numbers they hold (`5.40`, `12345678901234567890`); for anything else it writes what
  // JSON.stringify would. No route has a response schema, so nothing is lost by replacing fastify's serializer.
  app.setReplySerializer((payload) => stringifyJson(payload));

  // A statement keeps running on the server after its client has gone: each handler runs in a scope whose statements
  // are cancelled when the response closes before it was sent (the client disconnected or timed out).
  const cancellation = new QueryCancellation(pool, options.cancelPool ?? pool);
  app.addHook('onRoute', (route) => {
    const handler = route.handler;
    route.handler = function (this: FastifyInstance, request, reply) {
      const abandoned = new AbortController();
      if (request.raw.socket?.destroyed) abandoned.abort();
      else reply.raw.once('close', () => reply.raw.writableFinished || abandoned.abort());
      return cancellation.run(abandoned.signal, () => handler.call(this, request, reply));
    };
  });

  app.addHook('onRequest', async (request) => {
    const config = request.routeOptions.config;
    if (config.public) return;
    const access = await authenticator.authenticate(request.headers.authorization);
    const needed: RouteScope = config.scope ?? 'admin';
    if (!access.meets(needed)) {
      throw new AnchorlineError('ANCHORLINE_ERR_FORBIDDEN', needed === 'read' ? 'this credential grants no FHIR read scope (system/<Type>.rs)' : `this credential lacks the ${needed} scope`);
    }
    request.access = access;
  });

  app.setErrorHandler((error, request, reply) => {
    const coded = isStatementTimeout(error) || (isAnchorlineError(error) && error.code === 'ANCHORLINE_ERR_INTERNAL' && isStatementTimeout(error.cause))
      ? new AnchorlineError('ANCHORLINE_ERR_QUERY_TIMEOUT', `a database statement ran longer than ${options.queryTimeoutMs !== undefined ? `${options.queryTimeoutMs} ms (http.queryTimeoutMs)` : 'the API allows'}; narrow the request or try again later`, { cause: error })
      : isAnchorlineError(error) ? error : fromFrameworkError(error as Error & { code?: string; statusCode?: number });
    if (coded.spec.httpStatus >= 500) log.error({ code: coded.code, url: request.routeOptions.url, ...errorFields(coded.cause ?? error) }, 'api: request failed');
    if (coded.code === 'ANCHORLINE_ERR_UNAUTHORIZED') reply.header('www-authenticate', 'Bearer');
    return reply.status(coded.spec.httpStatus).header('content-type', FHIR_JSON).header('x-anchorline-error', coded.code).send(operationOutcome(coded));
  });

  app.setNotFoundHandler({ preHandler: undefined }, (request, reply) => {
    const error = new AnchorlineError('ANCHORLINE_ERR_NOT_FOUND', `no route for ${request.method} ${request.url.split('?')[0]}`);
    return reply.status(404).header('content-type', FHIR_JSON).header('x-anchorline-error', error.code).send(operationOutcome(error));
  });

  app.addContentTypeParser(HL7_CONTENT_TYPES, { parseAs: 'buffer' }, (_request, body, done) => done(null, body));

  // OpenAPI first: it learns the routes as they are added.
  await registerOpenApi(app);
  if (options.operations) registerOperationRoutes(app, { ...options.operations, pool, log });

  app.get('/healthz', { config: { public: true }, schema: { summary: 'Database health', description: 'Answers 200 when PostgreSQL answers. /readyz checks every dependency.', tags: ['operations'] } }, async () => {
    await pool.query('SELECT 1');
    return { status: 'ok' };
  });

  app.post('/ingest/hl7v2', {
    config: { scope: 'ingest' },
    schema: {
      tags: ['ingest'],
      summary: 'Receive one HL7 v2 message, or a batch of them, over HTTP',
      description:
        'The body is one ER7 message (Content-Type x-application/hl7-v2+er7, application/hl7-v2, text/plain, ...), or a batch (FHS/BHS ... BTS/FTS), ' +
        'whose answer is the batch of its messages\' ACKs (202 when any was stored). The answer to one message is its ACK as ER7 ' +
        '(or, with Accept: application/json, {outcome, ackCode, messageId, errorCode, ack}): 202 when stored, 200 for a resend of a stored ' +
        'message, 4xx with X-Anchorline-Error when refused. A credential bound to a source may send only that source\'s facilities.',
      consumes: HL7_CONTENT_TYPES,
    },
  }, async (request, reply) => {
    const body = request.body;
    if (!Buffer.isBuffer(body) || body.length === 0) {
      throw new AnchorlineError('ANCHORLINE_ERR_INVALID_REQUEST', `send the HL7 v2 message as the body with Content-Type ${HL7_CONTENT_TYPES[0]}`);
    }
    const bound = request.access?.principal.source;
    const meta = { protocol: 'hl7v2-http', source: originLabel(`http:${sourceOf(request)}`, bound), boundSource: bound };
    if (holdsSeveralMessages(body)) return answerBatch(await intake.receiveBatch(body, meta), request, reply);
    const result = await intake.receive(body, meta);
    const status = result.errorCode ? errorStatus(result.errorCode) : result.outcome === 'stored' ? 202 : 200;
    if (result.errorCode) reply.header('x-anchorline-error', result.errorCode);
    if (result.messageId !== undefined) reply.header('x-anchorline-message-id', String(result.messageId));
    reply.header('x-anchorline-outcome', result.outcome);
    if (wantsJson(request)) {
      return reply.status(status).send({ outcome: result.outcome, ackCode: result.ackCode, messageId: result.messageId, errorCode: result.errorCode, ack: result.ack.toString('latin1') });
    }
    return reply.status(status).header('content-type', 'x-application/hl7-v2+er7').send(result.ack);
  });

  registerCredentialRoutes(app, pool, authenticator, options.sourceNames ?? []);
  if (options.tokenIssuer) registerOAuthRoutes(app, pool, options.tokenIssuer, signIn);
  if (signIn) await registerSignInRoutes(app, signIn, authenticator, log);
  const readAudits = new auditTrail.ReadAuditBatcher({ pool: options.auditPool ?? options.cancelPool ?? pool, enabled: options.auditReads ?? true });
  // After the server has stopped taking requests and answered those under way: their events are committed first.
  app.addHook('onClose', () => readAudits.close());
  registerFhirRoutes(app, pool, readAudits, options.searchLimits ?? DEFAULT_SEARCH_LIMITS, options.consentGate);
  registerSealedExportRoutes(app, pool, options.consentGate);
  registerFhirWriteRoutes(app, { pool, ...(options.consentCache ? { consentCache: options.consentCache } : {}) });
  const witnesses = options.witnesses ?? [];
  registerProofRoutes(app, pool, { anchorDriver: options.anchorDriver ?? 'local', witnessQuorum: options.witnessQuorum ?? witnesses.length, ...(options.consentGate ? { gate: options.consentGate } : {}) });
  registerLogRoutes(app, pool, { witnesses, authenticate: (authorization) => authenticator.authenticate(authorization) });
  registerTerminologyRoutes(app, pool);
  registerMappingRoutes(app, pool);
  registerAdminMessageRoutes(app, { pool, log, ...(options.queue ? { queue: options.queue } : {}), defaultCharset: options.defaultCharset ?? 'UTF-8' });
  const messagePatients = options.messagePatients ?? createMessagePatientReader({ defaultCharset: options.defaultCharset ?? 'UTF-8', ...(options.mappingBase ? { identifierSystems: () => options.mappingBase!.identifierSystems } : {}) });
  registerErasureRoutes(app, pool, { messagePatients, ...(options.dicom?.blobs ? { blobs: options.dicom.blobs } : {}) });
  if (options.mappingBase) registerMappingTesterRoutes(app, { pool, base: options.mappingBase, defaultCharset: options.defaultCharset ?? 'UTF-8' });
  if (options.console ?? true) await registerConsoleRoutes(app, { log });
  if (options.portal ?? true) await registerPortalRoutes(app, { log });
  if (options.cdaIntake) registerCdaRoutes(app, options.cdaIntake);
  if (options.dicom) registerDicomWebRoutes(app, { ...options.dicom, pool, log, ...(options.consentGate ? { gate: options.consentGate } : {}) });
  if (options.research) {
    const projector = new ResearchProjector({ ...options.research, pool, log: log.child({ component: 'research' }) });
    registerResearchRoutes(app, { pool, schema: options.research.schema, projector });
    registerBulkExportRoutes(app, { pool, schema: options.research.schema });
  }
  await app.ready();
  return app;
}

/**
 * The answer to a batch: its batch acknowledgment as ER7 (or, with Accept: application/json, each message's outcome
 * in order). 202 when any message was stored; 200 when none was but none was refused either (all resends); else the
 * status of the first refusal, every message's own answer being in the body.
 */
function answerBatch(batch: BatchIntakeResult, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const { results } = batch;
  const refused = results.find((result) => result.errorCode !== undefined && result.outcome !== 'stored' && result.outcome !== 'duplicate');
  const status = results.some((result) => result.outcome === 'stored') ? 202 : refused?.errorCode === undefined ? 200 : errorStatus(refused.errorCode);
  reply.header('x-anchorline-outcome', 'batch');
  if (wantsJson(request)) {
    return reply.status(status).send({
      outcome: 'batch',
      mismatchedCounts: batch.mismatchedCounts,
      messages: results.map((result) => ({ outcome: result.outcome, ackCode: result.ackCode, messageId: result.messageId, errorCode: result.errorCode })),
      ack: batch.ack.toString('latin1'),
    });
  }
  return reply.status(status).header('content-type', 'x-application/hl7-v2+er7').send(batch.ack);
}

function sourceOf(request: FastifyRequest): string {
  return `${request.ip}`;
}

function wantsJson(request: FastifyRequest): boolean {
  return /application\/json/.test(request.headers.accept ?? '');
}

function errorStatus(code: ErrorCode): number {
  return ERROR_CATALOGUE[code].httpStatus;
}

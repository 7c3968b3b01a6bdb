/**
 * The HTTP API (fastify): FHIR REST under /fhir, HL7 v2 over HTTP at /ingest/hl7v2, C-CDA at /ingest/cda, DICOMweb
 * under /dicomweb, health and admin routes.
 *
 * Authentication runs in onRequest, before any body is read or parsed: a request without a valid bearer key is
 * answered 401 without its body ever being looked at. Each route declares the scope it needs (`ingest`, `read`,
 * `admin`; admin implies the others) or that it is public.
 */
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import type pg from 'pg';
import { AnchorlineError, ERROR_CATALOGUE, isAnchorlineError, operationOutcome, type ErrorCode } from '../errors/index.ts';
import { errorFields, type Logger } from '../config/logger.ts';
import type { Hl7Intake } from '../adapters/hl7v2/intake.ts';
import { apiKeys, inbox, type ApiKeyInfo, type Scope } from '../store/index.ts';
import { FHIR_JSON, registerFhirRoutes } from './fhir.ts';
import { registerProofRoutes } from './proofs.ts';
import { registerTerminologyRoutes } from './terminology.ts';
import { registerMappingRoutes } from './mappings.ts';
import { registerCdaRoutes } from './cda.ts';
import type { CdaIntake } from '../adapters/cda/index.ts';
import { registerDicomWebRoutes, type DicomWebOptions } from './dicomweb.ts';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Scope the route requires; absent means admin. */
    scope?: Scope;
    /** No authentication. */
    public?: boolean;
  }
  interface FastifyRequest {
    apiKey?: ApiKeyInfo;
  }
}

export interface ApiOptions {
  pool: pg.Pool;
  intake: Hl7Intake;
  log: Logger;
  bodyLimitBytes: number;
  requestTimeoutMs: number;
  /** How long a verified key is trusted before it is looked up again, in ms. Default 10000. */
  keyCacheMs?: number;
  /** Proof bundles wait for a chain anchor when batch headers are anchored on chain ('evm'). Default 'local'. */
  anchorDriver?: 'local' | 'evm';
  /** POST /ingest/cda; absent: not served. */
  cdaIntake?: CdaIntake;
  /** STOW-RS, WADO-RS and /blobs; absent: those routes are not served. */
  dicom?: Omit<DicomWebOptions, 'pool' | 'log'>;
}

const HL7_CONTENT_TYPES = ['x-application/hl7-v2+er7', 'application/hl7-v2', 'application/hl7-v2+er7', 'text/plain', 'application/edi-hl7', 'application/octet-stream'];

/**
 * Fastify's own errors (body too large, bad media type, malformed JSON) as catalogue errors, so every error response
 * carries a code. Client errors keep fastify's message; server errors say nothing of their cause.
 */
function fromFrameworkError(error: Error & { code?: string; statusCode?: number }): AnchorlineError {
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
  const keyCache = new Map<string, { info: ApiKeyInfo | undefined; until: number }>();
  const keyCacheMs = options.keyCacheMs ?? 10_000;

  async function lookupKey(key: string): Promise<ApiKeyInfo | undefined> {
    const cached = keyCache.get(key);
    if (cached && cached.until > Date.now()) return cached.info;
    const info = await apiKeys.findApiKey(pool, key);
    if (keyCache.size > 10_000) keyCache.clear();
    keyCache.set(key, { info, until: Date.now() + keyCacheMs });
    return info;
  }

  app.addHook('onRequest', async (request) => {
    const config = request.routeOptions.config;
    if (config.public) return;
    const header = request.headers.authorization;
    const match = header ? /^Bearer\s+(\S+)$/i.exec(header) : null;
    const info = match ? await lookupKey(match[1]!) : undefined;
    if (!info) throw new AnchorlineError('ANCHORLINE_ERR_UNAUTHORIZED', match ? 'API key is not valid' : 'send Authorization: Bearer <api key>');
    const needed: Scope = config.scope ?? 'admin';
    if (!info.scopes.includes(needed) && !info.scopes.includes('admin')) {
      throw new AnchorlineError('ANCHORLINE_ERR_FORBIDDEN', `this key lacks the ${needed} scope`);
    }
    request.apiKey = info;
  });

  app.setErrorHandler((error, request, reply) => {
    const coded = isAnchorlineError(error) ? error : fromFrameworkError(error as Error & { code?: string; statusCode?: number });
    if (coded.spec.httpStatus >= 500) log.error({ code: coded.code, url: request.routeOptions.url, ...errorFields(coded.cause ?? error) }, 'api: request failed');
    if (coded.code === 'ANCHORLINE_ERR_UNAUTHORIZED') reply.header('www-authenticate', 'Bearer');
    return reply.status(coded.spec.httpStatus).header('content-type', FHIR_JSON).header('x-anchorline-error', coded.code).send(operationOutcome(coded));
  });

  app.setNotFoundHandler({ preHandler: undefined }, (request, reply) => {
    const error = new AnchorlineError('ANCHORLINE_ERR_NOT_FOUND', `no route for ${request.method} ${request.url.split('?')[0]}`);
    return reply.status(404).header('content-type', FHIR_JSON).header('x-anchorline-error', error.code).send(operationOutcome(error));
  });

  app.addContentTypeParser(HL7_CONTENT_TYPES, { parseAs: 'buffer' }, (_request, body, done) => done(null, body));

  app.get('/healthz', { config: { public: true } }, async () => {
    await pool.query('SELECT 1');
    return { status: 'ok' };
  });

  app.post('/ingest/hl7v2', { config: { scope: 'ingest' } }, async (request, reply) => {
    const body = request.body;
    if (!Buffer.isBuffer(body) || body.length === 0) {
      throw new AnchorlineError('ANCHORLINE_ERR_INVALID_REQUEST', `send the HL7 v2 message as the body with Content-Type ${HL7_CONTENT_TYPES[0]}`);
    }
    const result = await intake.receive(body, { protocol: 'hl7v2-http', source: `http:${sourceOf(request)}` });
    const status = result.errorCode ? errorStatus(result.errorCode) : result.outcome === 'stored' ? 202 : 200;
    if (result.errorCode) reply.header('x-anchorline-error', result.errorCode);
    if (result.messageId !== undefined) reply.header('x-anchorline-message-id', String(result.messageId));
    reply.header('x-anchorline-outcome', result.outcome);
    if (wantsJson(request)) {
      return reply.status(status).send({ outcome: result.outcome, ackCode: result.ackCode, messageId: result.messageId, errorCode: result.errorCode, ack: result.ack.toString('latin1') });
    }
    return reply.status(status).header('content-type', 'x-application/hl7-v2+er7').send(result.ack);
  });

  app.get<{ Params: { id: string } }>('/admin/messages/:id', { config: { scope: 'admin' } }, async (request) => {
    const id = Number(request.params.id);
    if (!Number.isSafeInteger(id)) throw new AnchorlineError('ANCHORLINE_ERR_INVALID_REQUEST', 'message id must be an integer');
    const message = await inbox.getMessage(pool, id);
    if (!message) throw new AnchorlineError('ANCHORLINE_ERR_NOT_FOUND', `message ${id} does not exist`);
    return {
      id: message.id,
      protocol: message.protocol,
      source: message.source,
      sender: message.sender,
      controlId: message.controlId,
      messageType: message.messageType,
      disposition: message.disposition,
      state: message.state,
      attempts: message.attempts,
      errorCode: message.errorCode,
      errorDetail: message.errorDetail,
      ackCode: message.ackCode,
      charset: message.charset,
      rawSha256: message.rawSha256.toString('hex'),
      rawSize: message.rawSize,
      rawBase64: message.raw.toString('base64'),
      receivedAt: message.receivedAt.toISOString(),
      processedAt: message.processedAt?.toISOString() ?? null,
    };
  });

  app.post<{ Body: { name?: unknown; scopes?: unknown } }>('/admin/api-keys', { config: { scope: 'admin' } }, async (request, reply) => {
    const { name, scopes } = request.body ?? {};
    const valid = Array.isArray(scopes) && scopes.length > 0 && scopes.every((s) => (apiKeys.SCOPES as readonly string[]).includes(s as string));
    if (typeof name !== 'string' || name === '' || !valid) {
      throw new AnchorlineError('ANCHORLINE_ERR_INVALID_REQUEST', `send {"name": "...", "scopes": [${apiKeys.SCOPES.map((s) => `"${s}"`).join(', ')}]}`);
    }
    const created = await apiKeys.createApiKey(pool, name, scopes as Scope[]);
    return reply.status(201).send({ id: created.info.id, name, scopes, key: created.key });
  });

  app.delete<{ Params: { id: string } }>('/admin/api-keys/:id', { config: { scope: 'admin' } }, async (request, reply) => {
    const id = Number(request.params.id);
    if (!Number.isSafeInteger(id)) throw new AnchorlineError('ANCHORLINE_ERR_INVALID_REQUEST', 'key id must be an integer');
    if (!(await apiKeys.revokeApiKey(pool, id))) throw new AnchorlineError('ANCHORLINE_ERR_NOT_FOUND', `no active key ${id}`);
    // This process forgets what it trusted at once; other engine processes within keyCacheMs.
    keyCache.clear();
    return reply.status(204).send();
  });

  registerFhirRoutes(app, pool);
  registerProofRoutes(app, pool, options.anchorDriver ?? 'local');
  registerTerminologyRoutes(app, pool);
  registerMappingRoutes(app, pool);
  if (options.cdaIntake) registerCdaRoutes(app, options.cdaIntake);
  if (options.dicom) registerDicomWebRoutes(app, { ...options.dicom, pool, log });
  await app.ready();
  return app;
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

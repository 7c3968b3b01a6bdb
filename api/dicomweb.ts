/**
 * DICOMweb (PS3.18): STOW-RS store, WADO-RS retrieve of stored instances, and whole instances by their blob name.
 *
 * STOW-RS `POST /dicomweb/studies[/{study}]` (scope ingest): a multipart/related body of application/dicom parts,
 * each a Part 10 file. The body is read as a stream and each part is handed to the DICOM intake as soon as it is
 * complete, so memory holds one instance at a time, never the body. Every part is judged alone: a broken, oversized
 * or mistyped part fails by itself and the others are stored. The answer (PS3.18 10.5.3) is the Store Instances
 * Response Module as application/dicom+json: Referenced SOP Sequence (0008,1199) for instances stored (or stored
 * before: a resend is not a failure), Failed SOP Sequence (0008,1198) with a Failure Reason (0008,1197) for the others
 * (adapters/dicom/status.ts), and Retrieve URLs. Status: 200 all stored; 202 some stored; 409 none stored; 503 none
 * stored and every failure is one that may pass later (resend). Errors of the request itself are OperationOutcomes:
 * 415 (not multipart/related of application/dicom), 413 (body over dicom.stowMaxBytes), 400 (no boundary, or a body
 * that is not multipart before any part was complete), 406 (an Accept we cannot answer).
 *
 * With {study} in the URL, a part of another study is not stored (Failed, ANCHORLINE_ERR_DICOM_STUDY_MISMATCH). A part
 * that names no study is stored under the study derived for it (formats/dicom), which its Retrieve URL names.
 *
 * WADO-RS `GET /dicomweb/studies/{study}[/series/{series}[/instances/{instance}]]` (scope read) returns the stored
 * instances as multipart/related; type="application/dicom", each part as received (its transfer syntax named in the
 * part's Content-Type), found through the study's ImagingStudy: an instance is retrievable once it is mapped.
 * `GET /blobs/{sha256}` (scope read) returns one stored instance file by the SHA-256 the ImagingStudy records.
 *
 * Both read instances through the inbox rows that name them (store/instance-blobs.ts), so a file sealed at rest is
 * opened and served as received, and a plain one as before. An instance whose patient was erased answers 410
 * ANCHORLINE_ERR_ERASED on /blobs; WADO-RS answers 410 for an erased study, and leaves out an erased instance as it
 * leaves out one that is not stored.
 */
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type pg from 'pg';
import { AnchorlineError, ERROR_CATALOGUE, type ErrorCode } from '../errors/index.ts';
import type { Logger } from '../config/logger.ts';
import { fileTransferSyntax, isValidUid, parseDicomInstance } from '../formats/dicom/index.ts';
import {
  dicomStatusFor,
  isValidBoundary,
  MultipartParser,
  parseMediaType,
  type DicomInstanceIntake,
  type DicomOrigin,
  type MultipartEvent,
} from '../adapters/dicom/index.ts';
import { DICOM_BLOB_EXTENSION_URL, imagingStudyId } from '../mappers/index.ts';
import { filterThrough, requestContext, type ConsentGate } from './consent-gate.ts';
import { auditTrail, isBlobDigest, readInstance, resources, withTransaction, type BlobStore } from '../store/index.ts';
import { accessOf, auditActor } from './fhir.ts';

export const DICOM_JSON = 'application/dicom+json';

export interface DicomWebOptions {
  pool: pg.Pool;
  intake: DicomInstanceIntake;
  blobs: BlobStore;
  log: Logger;
  /** Largest instance (part) accepted, in bytes. */
  maxInstanceBytes: number;
  /** Largest request body, in bytes. */
  stowMaxBytes: number;
  /** Consent enforcement for people (api/consent-gate.ts); absent: people retrieve no instances. */
  gate?: ConsentGate;
}

/** One part's outcome, as the response module reports it. */
interface InstanceOutcome {
  stored: boolean;
  sopClassUid?: string | undefined;
  sopInstanceUid?: string | undefined;
  studyInstanceUid?: string | undefined;
  seriesInstanceUid?: string | undefined;
  errorCode?: ErrorCode;
  detail?: string;
}

// ---- Route descriptions (api/openapi.ts). Parameters are described, not constrained: the handlers check UIDs and
// digests themselves and answer with their own coded errors.

const uidParam = (what: string): Record<string, unknown> => ({ type: 'string', description: `${what} (a DICOM UID: digits and dots)` });

const STOW_DESCRIPTION =
  'STOW-RS (PS3.18): a multipart/related body of application/dicom parts, each a DICOM Part 10 file, read as a stream and stored part by part. ' +
  'The answer is the Store Instances Response Module (application/dicom+json): Referenced SOP Sequence for instances stored (or stored before), ' +
  'Failed SOP Sequence with a Failure Reason for the others. 200 all stored, 202 some, 409 none, 503 none and every failure may pass later; ' +
  '415 not multipart/related of application/dicom, 413 over dicom.stowMaxBytes, 400 a body that is not multipart, 406 an Accept other than application/dicom+json.';

const STOW_SCHEMA = {
  summary: 'Store DICOM instances (STOW-RS)',
  description: STOW_DESCRIPTION,
  tags: ['ingest', 'dicomweb'],
  consumes: ['multipart/related'],
  body: { description: 'multipart/related; type="application/dicom"; boundary=... with one Part 10 file per part' },
};

const STOW_STUDY_SCHEMA = {
  ...STOW_SCHEMA,
  summary: 'Store DICOM instances of one study (STOW-RS)',
  description: `${STOW_DESCRIPTION} A part of another study than the URL names is not stored (ANCHORLINE_ERR_DICOM_STUDY_MISMATCH).`,
  params: { type: 'object', properties: { study: uidParam('Study Instance UID') }, required: ['study'] },
};

const WADO_DESCRIPTION =
  'WADO-RS (PS3.18): the stored instances as multipart/related; type="application/dicom", each part as received. ' +
  'Instances are found through the study\'s ImagingStudy, so an instance is retrievable once it is mapped. 406 for an Accept other than multipart/related of application/dicom.';

const WADO_SCHEMAS = {
  study: {
    summary: 'Retrieve a study (WADO-RS)',
    description: WADO_DESCRIPTION,
    tags: ['dicomweb'],
    params: { type: 'object', properties: { study: uidParam('Study Instance UID') }, required: ['study'] },
  },
  series: {
    summary: 'Retrieve a series (WADO-RS)',
    description: WADO_DESCRIPTION,
    tags: ['dicomweb'],
    params: { type: 'object', properties: { study: uidParam('Study Instance UID'), series: uidParam('Series Instance UID') }, required: ['study', 'series'] },
  },
  instance: {
    summary: 'Retrieve an instance (WADO-RS)',
    description: WADO_DESCRIPTION,
    tags: ['dicomweb'],
    params: {
      type: 'object',
      properties: { study: uidParam('Study Instance UID'), series: uidParam('Series Instance UID'), instance: uidParam('SOP Instance UID') },
      required: ['study', 'series', 'instance'],
    },
  },
};

const BLOB_SCHEMA = {
  summary: 'One stored DICOM instance file by its SHA-256',
  description: "The whole instance as received (application/dicom), by the SHA-256 an ImagingStudy instance records in its blob extension (opened when it is sealed at rest). Immutable: served with a long cache lifetime and the digest as ETag. 410 ANCHORLINE_ERR_ERASED when its patient was erased.",
  tags: ['dicomweb'],
  params: { type: 'object', properties: { sha256: { type: 'string', description: 'Lowercase hex SHA-256 of the instance file' } }, required: ['sha256'] },
};

export function registerDicomWebRoutes(app: FastifyInstance, options: DicomWebOptions): void {
  // The body parser of multipart/related is scoped to the STOW routes: it hands the handler the request stream.
  void app.register(async (stow) => {
    stow.addContentTypeParser('multipart/related', (_request, payload, done) => done(null, payload));
    stow.post('/dicomweb/studies', { schema: STOW_SCHEMA, config: { scope: 'ingest' } }, (request, reply) => storeInstances(request, reply, options, undefined));
    stow.post<{ Params: { study: string } }>('/dicomweb/studies/:study', { schema: STOW_STUDY_SCHEMA, config: { scope: 'ingest' } }, (request, reply) => {
      const study = request.params.study;
      if (!isValidUid(study)) throw new AnchorlineError('ANCHORLINE_ERR_INVALID_REQUEST', 'the study in the URL is not a UID', { location: 'study' });
      return storeInstances(request, reply, options, study);
    });
  });

  app.get<{ Params: { study: string } }>('/dicomweb/studies/:study', { schema: WADO_SCHEMAS.study, config: { scope: 'read' } }, (request, reply) => retrieve(request, reply, options, request.params));
  app.get<{ Params: { study: string; series: string } }>('/dicomweb/studies/:study/series/:series', { schema: WADO_SCHEMAS.series, config: { scope: 'read' } }, (request, reply) => retrieve(request, reply, options, request.params));
  app.get<{ Params: { study: string; series: string; instance: string } }>('/dicomweb/studies/:study/series/:series/instances/:instance', { schema: WADO_SCHEMAS.instance, config: { scope: 'read' } }, (request, reply) =>
    retrieve(request, reply, options, request.params),
  );

  app.get<{ Params: { sha256: string } }>('/blobs/:sha256', { schema: BLOB_SCHEMA, config: { scope: 'read' } }, async (request, reply) => {
    const { sha256 } = request.params;
    if (!isBlobDigest(sha256)) throw new AnchorlineError('ANCHORLINE_ERR_INVALID_REQUEST', 'a blob name is a lowercase hex SHA-256', { location: 'sha256' });
    const access = accessOf(request);
    access.require('ImagingStudy', 'r');
    // A blob is named by its digest alone, with no study to decide consent on: people retrieve through WADO-RS.
    if (access.person) throw new AnchorlineError('ANCHORLINE_ERR_FORBIDDEN', 'people retrieve DICOM instances through WADO-RS (/dicomweb/studies/...), which checks consent');
    const bytes = await readInstance(options.pool, options.blobs, sha256);
    if (!bytes) throw new AnchorlineError('ANCHORLINE_ERR_NOT_FOUND', `no blob ${sha256}`);
    await withTransaction(options.pool, (client) =>
      auditTrail.recordRead(client, { interaction: 'read', actor: auditActor(request), returned: [], patients: [], description: `DICOM instance blob ${sha256}` }),
    );
    // Not cached anywhere, the browser included: every retrieval is a read the audit trail records, and an erased
    // instance must not live on in a cache.
    return reply.header('content-type', 'application/dicom').header('etag', `"${sha256}"`).header('cache-control', 'no-store').send(bytes);
  });
}

// ---- STOW-RS ------------------------------------------------------------------------------------------------------

async function storeInstances(request: FastifyRequest, reply: FastifyReply, options: DicomWebOptions, study: string | undefined): Promise<FastifyReply> {
  assertAcceptsDicomJson(request.headers.accept);
  const contentType = parseMediaType(request.headers['content-type']);
  if (!contentType || contentType.essence !== 'multipart/related') {
    throw new AnchorlineError('ANCHORLINE_ERR_UNSUPPORTED_MEDIA_TYPE', 'send multipart/related; type="application/dicom"; boundary=...');
  }
  const rootType = contentType.params.type?.toLowerCase();
  if (rootType !== undefined && parseMediaType(rootType)?.essence !== 'application/dicom') {
    throw new AnchorlineError('ANCHORLINE_ERR_UNSUPPORTED_MEDIA_TYPE', `multipart/related of ${rootType} is not supported; send application/dicom parts`);
  }
  const boundary = contentType.params.boundary;
  if (boundary === undefined || !isValidBoundary(boundary)) {
    throw new AnchorlineError('ANCHORLINE_ERR_MULTIPART_MALFORMED', 'the Content-Type has no valid boundary parameter', { location: 'Content-Type' });
  }
  const declaredLength = Number(request.headers['content-length'] ?? Number.NaN);
  if (declaredLength > options.stowMaxBytes) {
    throw new AnchorlineError('ANCHORLINE_ERR_FRAME_TOO_LARGE', `the body is ${declaredLength} bytes; dicom.stowMaxBytes is ${options.stowMaxBytes}`);
  }
  const body = request.body;
  if (!(body instanceof Readable)) throw new AnchorlineError('ANCHORLINE_ERR_INVALID_REQUEST', 'the request has no body');

  const outcomes: InstanceOutcome[] = [];
  const parser = new MultipartParser(boundary);
  const origin: DicomOrigin = { protocol: 'stow', source: request.ip };
  let part: { chunks: Buffer[]; size: number; refused?: { code: ErrorCode; detail: string } } | undefined;
  let malformed: string | undefined;
  let received = 0;

  const handle = async (event: MultipartEvent): Promise<void> => {
    switch (event.kind) {
      case 'part': {
        const type = event.headers['content-type'];
        const essence = type === undefined ? 'application/dicom' : parseMediaType(type)?.essence;
        part = { chunks: [], size: 0 };
        if (essence !== 'application/dicom') part.refused = { code: 'ANCHORLINE_ERR_UNSUPPORTED_MEDIA_TYPE', detail: `a part of type ${type} is not application/dicom` };
        return;
      }
      case 'data':
        if (!part || part.refused) return;
        if (part.size + event.bytes.length > options.maxInstanceBytes) {
          part.refused = { code: 'ANCHORLINE_ERR_DICOM_TOO_LARGE', detail: `a part exceeds dicom.maxInstanceBytes (${options.maxInstanceBytes})` };
          part.chunks = [];
          return;
        }
        // The parser's bytes may share memory with the socket's chunk; the part keeps its own copy.
        part.chunks.push(Buffer.from(event.bytes));
        part.size += event.bytes.length;
        return;
      case 'partEnd': {
        const done = part;
        part = undefined;
        if (!done) return;
        outcomes.push(done.refused ? { stored: false, errorCode: done.refused.code, detail: done.refused.detail } : await storePart(Buffer.concat(done.chunks, done.size), options, origin, study));
        return;
      }
      case 'error':
        malformed = event.detail;
        return;
      case 'end':
        return;
    }
  };

  try {
    // Leaving the loop early (a limit, a broken body) must not destroy the request: the answer still goes out on
    // its socket.
    for await (const chunk of body.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>) {
      received += chunk.length;
      if (received > options.stowMaxBytes) {
        throw new AnchorlineError('ANCHORLINE_ERR_FRAME_TOO_LARGE', `the body exceeds dicom.stowMaxBytes (${options.stowMaxBytes})${outcomes.length > 0 ? `; ${outcomes.filter((o) => o.stored).length} instance(s) before the limit were stored` : ''}`);
      }
      for (const event of parser.push(chunk)) await handle(event);
      if (malformed !== undefined) break;
    }
    if (malformed === undefined) for (const event of parser.end()) await handle(event);
  } finally {
    // Whatever is left of the body is not read; the connection is not reused.
    if (!body.readableEnded) reply.header('connection', 'close');
  }

  if (malformed !== undefined) {
    if (outcomes.length === 0) throw new AnchorlineError('ANCHORLINE_ERR_MULTIPART_MALFORMED', malformed);
    // Parts before the break were judged (and some perhaps stored); the rest of the body is one failure.
    outcomes.push({ stored: false, errorCode: 'ANCHORLINE_ERR_MULTIPART_MALFORMED', detail: malformed });
  }
  if (outcomes.length === 0) throw new AnchorlineError('ANCHORLINE_ERR_MULTIPART_MALFORMED', 'the body holds no parts');

  const stored = outcomes.filter((o) => o.stored);
  const failed = outcomes.filter((o) => !o.stored);
  const status = failed.length === 0 ? 200 : stored.length > 0 ? 202 : failed.every((o) => ERROR_CATALOGUE[o.errorCode!].retryable) ? 503 : 409;
  if (failed.length > 0) {
    reply.header('x-anchorline-error', failed[0]!.errorCode!);
    options.log.info({ stored: stored.length, failed: failed.length, codes: [...new Set(failed.map((o) => o.errorCode))] }, 'stow: instances refused');
  }
  if (status === 503) reply.header('retry-after', '30');
  return reply.status(status).header('content-type', DICOM_JSON).send(storeResponse(outcomes, studyBaseUrl(request), study));
}

/** One part: the study check (when the URL names one), then the intake. */
async function storePart(bytes: Buffer, options: DicomWebOptions, origin: DicomOrigin, study: string | undefined): Promise<InstanceOutcome> {
  // The header is read here for the study check and the Retrieve URL; a part that does not parse goes to the
  // intake all the same, which records it and answers with its code.
  let seriesInstanceUid: string | undefined;
  try {
    const { header } = parseDicomInstance(bytes, { maxInflatedBytes: options.maxInstanceBytes });
    seriesInstanceUid = header.seriesInstanceUid;
    // An instance that names no study is not of another one; it is filed under the study derived for it.
    if (study !== undefined && !header.studyInstanceUidDerived && header.studyInstanceUid !== study) {
      return { stored: false, sopClassUid: header.sopClassUid, sopInstanceUid: header.sopInstanceUid, errorCode: 'ANCHORLINE_ERR_DICOM_STUDY_MISMATCH', detail: 'the instance belongs to another study than the URL names' };
    }
  } catch {
    // judged by the intake
  }
  const result = await options.intake.accept(bytes, origin);
  if (result.status === 'rejected') {
    return { stored: false, sopClassUid: result.sopClassUid, sopInstanceUid: result.sopInstanceUid, errorCode: result.errorCode, detail: result.detail };
  }
  return { stored: true, sopClassUid: result.sopClassUid, sopInstanceUid: result.sopInstanceUid, studyInstanceUid: result.studyInstanceUid, seriesInstanceUid };
}

/** The Store Instances Response Module (PS3.18 Annex I) in the DICOM JSON model (PS3.18 F.2). */
function storeResponse(outcomes: InstanceOutcome[], studiesUrl: string, study: string | undefined): Record<string, unknown> {
  const stored = outcomes.filter((o) => o.stored);
  const failed = outcomes.filter((o) => !o.stored);
  const studies = new Set(stored.map((o) => o.studyInstanceUid));
  const onlyStudy = study ?? (studies.size === 1 ? [...studies][0] : undefined);
  const response: Record<string, unknown> = {
    // Type 2: the study's URL when the request concerned one study, empty otherwise.
    '00081190': onlyStudy ? { vr: 'UR', Value: [`${studiesUrl}/${onlyStudy}`] } : { vr: 'UR' },
  };
  if (failed.length > 0) {
    response['00081198'] = {
      vr: 'SQ',
      Value: failed.map((o) => ({
        ...sopReference(o),
        '00081197': { vr: 'US', Value: [dicomStatusFor(o.errorCode!)] },
      })),
    };
  }
  if (stored.length > 0) {
    response['00081199'] = {
      vr: 'SQ',
      Value: stored.map((o) => ({
        ...sopReference(o),
        '00081190': o.seriesInstanceUid ? { vr: 'UR', Value: [`${studiesUrl}/${o.studyInstanceUid}/series/${o.seriesInstanceUid}/instances/${o.sopInstanceUid}`] } : { vr: 'UR' },
      })),
    };
  }
  return response;
}

/** SOP Instance Reference Macro (PS3.3 10-11); a part too broken to name its instance has neither UID. */
function sopReference(outcome: InstanceOutcome): Record<string, unknown> {
  return {
    ...(outcome.sopClassUid ? { '00081150': { vr: 'UI', Value: [outcome.sopClassUid] } } : {}),
    ...(outcome.sopInstanceUid ? { '00081155': { vr: 'UI', Value: [outcome.sopInstanceUid] } } : {}),
  };
}

function studyBaseUrl(request: FastifyRequest): string {
  return `${request.protocol}://${request.host}/dicomweb/studies`;
}

/** The response is application/dicom+json; an Accept that excludes it (e.g. only +xml) is answered 406. */
function assertAcceptsDicomJson(accept: string | undefined): void {
  if (!accept) return;
  const types = accept.split(',').map((t) => parseMediaType(t.trim())?.essence ?? t.trim().toLowerCase());
  const ok = types.some((t) => t === DICOM_JSON || t === 'application/json' || t === 'application/*' || t === '*/*');
  if (!ok) throw new AnchorlineError('ANCHORLINE_ERR_NOT_ACCEPTABLE', `the response is ${DICOM_JSON}`, { location: 'Accept' });
}

// ---- WADO-RS ------------------------------------------------------------------------------------------------------

interface RetrieveTarget {
  study: string;
  series?: string;
  instance?: string;
}

async function retrieve(request: FastifyRequest, reply: FastifyReply, options: DicomWebOptions, target: RetrieveTarget): Promise<FastifyReply> {
  for (const [name, uid] of Object.entries(target)) {
    if (!isValidUid(uid)) throw new AnchorlineError('ANCHORLINE_ERR_INVALID_REQUEST', `the ${name} in the URL is not a UID`, { location: name });
  }
  assertAcceptsMultipartDicom(request.headers.accept);
  const access = accessOf(request);
  access.require('ImagingStudy', 'r');
  const context = requestContext(options.gate, request, access);
  const blobs = await withTransaction(options.pool, async (client) => {
    const found = await resources.readCurrent(client, 'ImagingStudy', imagingStudyId(target.study));
    // A study a person may not see reads as absent, like one never stored.
    const gated = await filterThrough(options.gate, context, found ? [found] : []);
    const stored = gated.allowed[0];
    if (stored?.erased) throw new AnchorlineError('ANCHORLINE_ERR_ERASED', `study ${target.study} was erased with its patient's key`);
    const blobs = stored ? instanceBlobs(stored.content, target) : [];
    if (!stored || blobs.length === 0) {
      const what = target.instance ? `instance ${target.instance}` : target.series ? `series ${target.series}` : `study ${target.study}`;
      throw new AnchorlineError('ANCHORLINE_ERR_NOT_FOUND', `no stored ${what} (instances are retrievable once mapped)`);
    }
    await auditTrail.recordRead(client, {
      interaction: 'read',
      actor: auditActor(request),
      returned: [{ resourceType: stored.resourceType, id: stored.id, versionId: stored.versionId }],
      patients: auditTrail.patientsOf(stored.content),
      description: `WADO-RS retrieve of ${blobs.length} DICOM instance(s)`,
      ...(context ? { purposeOfUse: context.requester.purpose, ...(gated.authorization ? { authorization: gated.authorization } : {}) } : {}),
    });
    return blobs;
  });
  const boundary = randomBytes(16).toString('hex');
  const parts = async function* (): AsyncGenerator<Buffer> {
    for (const sha256 of blobs) {
      const bytes = await readInstance(options.pool, options.blobs, sha256).catch((error: unknown) => {
        // The answer has begun: an instance erased since the study was read is left out, as a missing one is.
        if (error instanceof AnchorlineError && error.code === 'ANCHORLINE_ERR_ERASED') return undefined;
        throw error;
      });
      if (!bytes) continue;
      const transferSyntax = fileTransferSyntax(bytes);
      yield Buffer.from(`--${boundary}\r\nContent-Type: application/dicom${transferSyntax ? `; transfer-syntax=${transferSyntax}` : ''}\r\nContent-Length: ${bytes.length}\r\n\r\n`, 'latin1');
      yield bytes;
      yield Buffer.from('\r\n', 'latin1');
    }
    yield Buffer.from(`--${boundary}--\r\n`, 'latin1');
  };
  return reply.header('content-type', `multipart/related; type="application/dicom"; boundary=${boundary}`).send(Readable.from(parts()));
}

/** The blob names of the ImagingStudy's instances that the target selects, in the study's order. */
function instanceBlobs(content: Record<string, unknown>, target: RetrieveTarget): string[] {
  const out: string[] = [];
  const series = Array.isArray(content.series) ? (content.series as Array<Record<string, unknown>>) : [];
  for (const s of series) {
    if (target.series !== undefined && s.uid !== target.series) continue;
    const instances = Array.isArray(s.instance) ? (s.instance as Array<Record<string, unknown>>) : [];
    for (const i of instances) {
      if (target.instance !== undefined && i.uid !== target.instance) continue;
      const extensions = Array.isArray(i.extension) ? (i.extension as Array<Record<string, unknown>>) : [];
      const sha256 = extensions.find((e) => e.url === DICOM_BLOB_EXTENSION_URL)?.valueString;
      if (typeof sha256 === 'string' && isBlobDigest(sha256)) out.push(sha256);
    }
  }
  return out;
}

/** WADO-RS answers multipart/related of application/dicom; an Accept that excludes it is answered 406. */
function assertAcceptsMultipartDicom(accept: string | undefined): void {
  if (!accept) return;
  const ok = accept.split(',').some((entry) => {
    const type = parseMediaType(entry.trim());
    if (!type) return false;
    if (type.essence === '*/*' || type.essence === 'multipart/*') return true;
    if (type.essence !== 'multipart/related') return false;
    const inner = type.params.type ? parseMediaType(type.params.type)?.essence : 'application/dicom';
    return inner === 'application/dicom';
  });
  if (!ok) throw new AnchorlineError('ANCHORLINE_ERR_NOT_ACCEPTABLE', 'instances are served as multipart/related; type="application/dicom"', { location: 'Accept' });
}

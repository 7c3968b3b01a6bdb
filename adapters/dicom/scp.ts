/**
 * The DIMSE listener: a DICOM Storage SCP (C-STORE) with Verification (C-ECHO), over the dcmjs-dimse upper layer.
 *
 * The listening socket is ours, not the library's: its Server binds every interface and leaves Nagle's algorithm on,
 * which holds each small C-STORE response back for a delayed ACK (about 21 instances/s instead of about 200). Each
 * connection gets TCP_NODELAY and one library Scp; around it we keep what the library does not:
 * - Admission: the called AE title must be ours and the calling AE title allowed (else A-ASSOCIATE-RJ, permanent,
 *   "called/calling AE title not recognized"); at most maxAssociations at once (else A-ASSOCIATE-RJ, transient,
 *   "local limit exceeded"); a few connections beyond that wait for their rejection, more are closed at once.
 * - Limits: the byte stream passes a PduGuard first (PDU and command sizes), an association must be requested within
 *   associationRequestTimeoutMs, and an association idle for associationIdleTimeoutMs is aborted.
 * - C-STORE: the data set is collected as raw bytes up to maxInstanceBytes (the library never parses it), wrapped in
 *   a Part 10 file and handed to the DICOM intake; its answer becomes the response status. Requests of one
 *   association are handled one at a time, in order, and reading pauses meanwhile, so a peer that does not wait for
 *   responses cannot make us buffer more than one read ahead. A failed instance fails alone: the association and the
 *   instances after it go on.
 *
 * Negotiation: Verification, and every Storage SOP Class of PS3.4 Annex B (UIDs under 1.2.840.10008.5.1.4.1.1.), in
 * the first transfer syntax the peer proposes that we take: the uncompressed ones and every encapsulated one (the
 * data set is stored as sent; pixel data are never decoded). Asynchronous operations are not offered (one request
 * at a time).
 */
import net from 'node:net';
import { Writable } from 'node:stream';
import dimse from 'dcmjs-dimse';
import type { association as dimseAssociation, requests as dimseRequests } from 'dcmjs-dimse';
import { toAnchorlineError, type ErrorCode } from '../../errors/index.ts';
import { errorFields, type Logger } from '../../config/logger.ts';
import type { DicomAcceptResult, DicomOrigin } from './intake.ts';
import { abortPdu, PduGuard, type PduViolation } from './pdu-guard.ts';
import { part10File } from '../../formats/dicom/index.ts';
import { DicomStatus, dicomStatusFor, errorComment } from './status.ts';
import { listenOn } from '../listen.ts';

type Association = dimseAssociation.Association;
type PresentationContext = dimseAssociation.PresentationContext;
type Request = dimseRequests.Request;
type CStoreRequest = dimseRequests.CStoreRequest;

const { Scp, Dataset, Implementation } = dimse;
const { PresentationContextResult, RejectResult, RejectSource, RejectReason, SopClass } = dimse.constants;
const { CEchoResponse, CStoreResponse, CFindResponse, CMoveResponse, CGetResponse, NActionResponse, NCreateResponse, NDeleteResponse, NEventReportResponse, NGetResponse, NSetResponse } = dimse.responses;

/** What the listener needs of the DICOM intake. */
export interface DicomInstanceIntake {
  accept(bytes: Buffer, origin: DicomOrigin): Promise<DicomAcceptResult>;
}

export interface DicomScpOptions {
  host: string;
  port: number;
  aeTitle: string;
  /** Empty: any calling AE title. */
  allowedCallingAeTitles: string[];
  maxAssociations: number;
  associationRequestTimeoutMs: number;
  associationIdleTimeoutMs: number;
  maxPduBytes: number;
  maxInstanceBytes: number;
  intake: DicomInstanceIntake;
  log: Logger;
}

const STORAGE_SOP_CLASS_PREFIX = '1.2.840.10008.5.1.4.1.1.';

export const TransferSyntax = {
  ImplicitVrLittleEndian: '1.2.840.10008.1.2',
  ExplicitVrLittleEndian: '1.2.840.10008.1.2.1',
  DeflatedExplicitVrLittleEndian: '1.2.840.10008.1.2.1.99',
  ExplicitVrBigEndian: '1.2.840.10008.1.2.2',
} as const;

/**
 * Transfer syntaxes whose data sets the intake reads: the uncompressed ones, and the encapsulated ones (RLE, JPEG,
 * JPEG-LS, JPEG 2000, MPEG-2/4, HEVC, JPEG XL, HTJ2K, encapsulated uncompressed, deflated frames), whose data set is Explicit VR
 * Little Endian around pixel data that we store without decoding.
 */
export const STORAGE_TRANSFER_SYNTAXES: ReadonlySet<string> = new Set([
  TransferSyntax.ExplicitVrLittleEndian,
  TransferSyntax.ImplicitVrLittleEndian,
  TransferSyntax.DeflatedExplicitVrLittleEndian,
  TransferSyntax.ExplicitVrBigEndian,
  '1.2.840.10008.1.2.1.98',
  '1.2.840.10008.1.2.5',
  // Deflated Image Frame Compression (Supplement 244): each frame deflated, the data set explicit VR little endian.
  '1.2.840.10008.1.2.8.1',
  ...['50', '51', '57', '70', '80', '81', '90', '91', '92', '93', '100', '101', '102', '103', '104', '105', '106', '107', '108', '110', '111', '112', '201', '202', '203'].map((n) => `1.2.840.10008.1.2.4.${n}`),
]);

const VERIFICATION_TRANSFER_SYNTAXES: ReadonlySet<string> = new Set([TransferSyntax.ExplicitVrLittleEndian, TransferSyntax.ImplicitVrLittleEndian]);

/** Connections beyond maxAssociations that are let in to receive their A-ASSOCIATE-RJ; further ones are closed. */
const REJECTION_BACKLOG = 16;
/** After A-ASSOCIATE-RJ, A-RELEASE-RP or A-ABORT, the peer closes; if it does not, we do after this long (ms). */
const CLOSE_AFTER_MS = 2_000;

export function isStorageSopClass(uid: string): boolean {
  return uid.startsWith(STORAGE_SOP_CLASS_PREFIX) && /^[0-9.]+$/.test(uid);
}

interface Admission {
  admitted: boolean;
  result?: number;
  source?: number;
  reason?: number;
  code?: ErrorCode;
  detail?: string;
}

export class DicomScpServer {
  private readonly options: DicomScpOptions;
  private readonly server: net.Server;
  private readonly connections = new Set<DimseConnection>();
  private admittedCount = 0;
  private nextConnectionId = 1;
  private readonly allowedCallingAeTitles: Set<string>;

  constructor(options: DicomScpOptions) {
    this.options = options;
    this.allowedCallingAeTitles = new Set(options.allowedCallingAeTitles.map((t) => t.trim()));
    // The library logs every PDU through loglevel (trace level by default); our own log says what matters.
    dimse.log.setLevel('silent');
    this.server = net.createServer((socket) => this.connect(socket));
    this.server.on('error', (error) => options.log.error({ err: error.message }, 'dicom: server error'));
  }

  async listen(): Promise<number> {
    const port = await listenOn(this.server, this.options.host, this.options.port);
    this.options.log.info({ host: this.options.host, port, aeTitle: this.options.aeTitle }, 'dicom: DIMSE listening');
    return port;
  }

  /** Associations admitted and not yet closed. */
  /** Whether the listener accepts associations (for readiness). */
  get listening(): boolean {
    return this.server.listening;
  }

  get associationCount(): number {
    return this.admittedCount;
  }

  private connect(socket: net.Socket): void {
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 60_000);
    if (this.connections.size >= this.options.maxAssociations + REJECTION_BACKLOG) {
      this.options.log.warn({ limit: this.options.maxAssociations, code: 'ANCHORLINE_ERR_DICOM_ASSOCIATION_LIMIT' }, 'dicom: too many connections; closing a new one');
      socket.destroy();
      return;
    }
    const id = this.nextConnectionId++;
    const connection = new DimseConnection(id, socket, this.options, {
      admit: (association) => this.admit(association),
      closed: (wasAdmitted) => {
        this.connections.delete(connection);
        if (wasAdmitted) this.admittedCount -= 1;
      },
    });
    this.connections.add(connection);
  }

  private admit(association: Association): Admission {
    const called = association.getCalledAeTitle().trim();
    const calling = association.getCallingAeTitle().trim();
    if (called !== this.options.aeTitle.trim()) {
      return { admitted: false, result: RejectResult.Permanent, source: RejectSource.ServiceUser, reason: RejectReason.CalledAeNotRecognized, code: 'ANCHORLINE_ERR_DICOM_ASSOCIATION_REJECTED', detail: 'called AE title is not ours' };
    }
    if (this.allowedCallingAeTitles.size > 0 && !this.allowedCallingAeTitles.has(calling)) {
      return { admitted: false, result: RejectResult.Permanent, source: RejectSource.ServiceUser, reason: RejectReason.CallingAeNotRecognized, code: 'ANCHORLINE_ERR_DICOM_ASSOCIATION_REJECTED', detail: 'calling AE title is not allowed' };
    }
    if (this.admittedCount >= this.options.maxAssociations) {
      return { admitted: false, result: RejectResult.Transient, source: RejectSource.ServiceProviderPresentation, reason: RejectReason.LocalLimitExceeded, code: 'ANCHORLINE_ERR_DICOM_ASSOCIATION_LIMIT', detail: `${this.options.maxAssociations} associations are open` };
    }
    this.admittedCount += 1;
    return { admitted: true };
  }

  /**
   * Stops accepting connections; lets each association finish the instance it is storing (its response is sent),
   * then aborts it. Instances received but not yet started get no response, so their senders send them again.
   */
  async close(graceMs = 10_000): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    await Promise.all([...this.connections].map((c) => c.drain(graceMs)));
    await closed;
  }
}

interface ServerHooks {
  admit(association: Association): Admission;
  closed(wasAdmitted: boolean): void;
}

/** One TCP connection: the library's Scp with our limits, admission and C-STORE handling around it. */
class DimseConnection {
  private readonly socket: net.Socket;
  private readonly options: DicomScpOptions;
  private readonly hooks: ServerHooks;
  private readonly log: Logger;
  private readonly scp: StorageScp;
  private readonly guard: PduGuard;
  private readonly origin: DicomOrigin;
  private state: 'awaiting' | 'associated' | 'ending' = 'awaiting';
  private admitted = false;
  /** Set on shutdown: requests not yet started are left unanswered. */
  private stopping = false;
  /** Request handling, one after another in arrival order; never rejects. */
  private work: Promise<void> = Promise.resolve();
  /** The request being handled, if any. */
  private current: Promise<void> | undefined;
  private queued = 0;
  private requestTimer: NodeJS.Timeout | undefined;

  constructor(id: number, socket: net.Socket, options: DicomScpOptions, hooks: ServerHooks) {
    this.socket = socket;
    this.options = options;
    this.hooks = hooks;
    this.origin = { protocol: 'dimse', source: `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}` };
    this.log = options.log.child({ association: id, peer: this.origin.source });
    this.guard = new PduGuard(options.maxPduBytes);
    // Registered before the library's own listener, so a violation is seen before the library buffers the bytes.
    socket.on('data', (chunk: Buffer) => {
      const violation = this.guard.push(chunk);
      if (violation) this.violated(violation);
    });
    this.scp = new StorageScp(socket, { connectTimeout: options.associationIdleTimeoutMs }, this);
    this.scp.on('networkError', (error: Error) => {
      if (this.state === 'ending') return;
      this.log.info({ err: error.message }, 'dicom: connection error or idle timeout; aborting');
      this.abort(0x02, 0);
    });
    socket.on('error', (error) => this.log.debug({ err: error.message }, 'dicom: socket error'));
    socket.on('close', () => {
      clearTimeout(this.requestTimer);
      this.state = 'ending';
      this.hooks.closed(this.admitted);
    });
    this.requestTimer = setTimeout(() => {
      if (this.state !== 'awaiting') return;
      this.log.info({ timeoutMs: options.associationRequestTimeoutMs }, 'dicom: no association request in time; closing');
      this.state = 'ending';
      socket.destroy();
    }, options.associationRequestTimeoutMs);
    this.requestTimer.unref();
  }

  // ---- association --------------------------------------------------------------------------------------------

  associationRequested(association: Association): void {
    if (this.state !== 'awaiting') {
      this.violated({ detail: 'a second A-ASSOCIATE-RQ on one connection', abortReason: 2 });
      return;
    }
    clearTimeout(this.requestTimer);
    const callingAeTitle = association.getCallingAeTitle().trim();
    const admission = this.hooks.admit(association);
    if (!admission.admitted) {
      this.log.warn({ code: admission.code, callingAeTitle, calledAeTitle: association.getCalledAeTitle().trim(), detail: admission.detail }, 'dicom: association rejected');
      this.scp.sendAssociationReject(admission.result, admission.source, admission.reason);
      this.endSoon();
      return;
    }
    this.admitted = true;
    this.origin.callingAeTitle = callingAeTitle;
    let acceptedContexts = 0;
    for (const { context } of association.getPresentationContexts()) {
      if (negotiate(context)) acceptedContexts += 1;
    }
    // One operation at a time, whatever the peer proposes (the AC then carries no asynchronous operations item).
    association.setNegotiateAsyncOps(false);
    association.setMaxAsyncOpsInvoked(1);
    association.setMaxAsyncOpsPerformed(1);
    // The library keeps one maximum PDU length per association: the one it announces in the A-ASSOCIATE-AC (the
    // most we receive) and the one it fragments its own sends by (the most the peer receives, 0: no limit). So it
    // holds ours while the AC is written, capped by the library's own maximum as the AC is, then the peer's.
    const peerMaximum = association.getMaxPduLength();
    const announced = Math.min(this.options.maxPduBytes, Implementation.getMaxPduLength());
    association.setMaxPduLength(announced);
    this.guard.setMaxDataPduBytes(announced);
    this.state = 'associated';
    this.scp.sendAssociationAccept();
    association.setMaxPduLength(peerMaximum);
    this.log.info({ callingAeTitle, acceptedContexts, maxPduBytes: announced }, 'dicom: association accepted');
  }

  associationReleaseRequested(): void {
    // The peer has every response it waited for; any still being worked on is answered first.
    void this.work.then(() => {
      if (this.state !== 'associated') return;
      this.scp.sendAssociationReleaseResponse();
      this.log.debug('dicom: association released');
      this.endSoon();
    });
  }

  peerAborted(source: number, reason: number): void {
    this.log.info({ source, reason }, 'dicom: association aborted by the peer');
    this.state = 'ending';
    this.socket.destroy();
  }

  // ---- DIMSE --------------------------------------------------------------------------------------------------

  echo(request: Request, respond: (response: InstanceType<typeof CEchoResponse>) => void): void {
    const response = CEchoResponse.fromRequest(request as dimseRequests.CEchoRequest);
    response.setStatus(DicomStatus.Success);
    this.enqueue(async () => respond(response));
  }

  store(request: CStoreRequest, sink: InstanceSink | undefined, respond: (response: InstanceType<typeof CStoreResponse>) => void): void {
    this.enqueue(async () => {
      const response = await this.storeInstance(request, sink);
      if (this.state === 'associated') respond(response);
    });
  }

  private enqueue(task: () => Promise<void>): void {
    if (this.state !== 'associated') return;
    this.queued += 1;
    if (this.queued === 1) this.socket.pause();
    this.work = this.work
      .then(async () => {
        // Requests that arrived but were not started when the association began to end get no response.
        if (this.state !== 'associated' || this.stopping) return;
        this.current = task();
        try {
          await this.current;
        } finally {
          this.current = undefined;
        }
      })
      .catch((error: unknown) => this.log.error({ ...errorFields(error) }, 'dicom: request handling failed'))
      .finally(() => {
        this.queued -= 1;
        if (this.queued === 0 && this.state === 'associated' && !this.stopping) this.socket.resume();
      });
  }

  private async storeInstance(request: CStoreRequest, sink: InstanceSink | undefined): Promise<InstanceType<typeof CStoreResponse>> {
    const response = CStoreResponse.fromRequest(request);
    const sopClassUid = String(request.getAffectedSopClassUid() ?? '').trim();
    const sopInstanceUid = String(request.getAffectedSopInstanceUid() ?? '').trim();
    const fail = (code: ErrorCode, detail: string | undefined, messageId?: number): InstanceType<typeof CStoreResponse> => {
      const status = dicomStatusFor(code);
      response.setStatus(status);
      response.setErrorComment(errorComment(code, detail));
      this.log.warn({ code, detail, status: statusHex(status), sopInstanceUid, messageId }, 'dicom: C-STORE refused');
      return response;
    };
    if (!sink) return fail('ANCHORLINE_ERR_DICOM_MALFORMED', 'C-STORE request without a data set');
    if (sink.overflowed) return fail('ANCHORLINE_ERR_DICOM_TOO_LARGE', `data set of ${sink.received} bytes exceeds dicom.maxInstanceBytes (${this.options.maxInstanceBytes})`);
    if (sopClassUid === '' || sopInstanceUid === '') return fail('ANCHORLINE_ERR_DICOM_MISSING_ATTRIBUTE', 'Affected SOP Class/Instance UID (0000,0002)/(0000,1000) of the C-STORE request');
    const file = part10File({ sopClassUid, sopInstanceUid, transferSyntaxUid: sink.transferSyntaxUid, ...(this.origin.callingAeTitle ? { sourceAeTitle: this.origin.callingAeTitle } : {}) }, sink.dataset());
    let result: DicomAcceptResult;
    try {
      result = await this.options.intake.accept(file, { ...this.origin });
    } catch (error) {
      const coded = toAnchorlineError(error);
      if (coded.code === 'ANCHORLINE_ERR_INTERNAL') this.log.error({ ...errorFields(error) }, 'dicom: intake failed');
      return fail(coded.code, coded.detail);
    }
    if (result.status === 'rejected') return fail(result.errorCode, result.detail, result.messageId);
    response.setStatus(DicomStatus.Success);
    this.log.debug({ outcome: result.status, messageId: result.messageId, sopInstanceUid }, 'dicom: instance stored');
    return response;
  }

  /** A DIMSE service we do not provide, on a context we accepted for another: Unrecognized Operation. */
  unsupported(respond: () => void): void {
    this.enqueue(async () => respond());
  }

  createSink(context: PresentationContext): InstanceSink {
    return new InstanceSink(this.options.maxInstanceBytes, context.getAcceptedTransferSyntaxUid() ?? TransferSyntax.ImplicitVrLittleEndian);
  }

  // ---- ending -------------------------------------------------------------------------------------------------

  private violated(violation: PduViolation): void {
    if (this.state === 'ending') return;
    this.log.warn({ code: 'ANCHORLINE_ERR_DICOM_PROTOCOL', detail: violation.detail }, 'dicom: protocol violation; aborting the association');
    this.abort(0x02, violation.abortReason);
  }

  /** A-ABORT (source 0: us as service user; 2: the upper layer service provider), then close. */
  private abort(source: 0 | 2, reason: number): void {
    this.state = 'ending';
    if (!this.socket.destroyed && this.socket.writable) this.socket.write(abortPdu(source, reason));
    this.endSoon();
  }

  /** Half-close after what was written, and make sure the socket is gone soon even if the peer lingers. */
  private endSoon(): void {
    this.state = 'ending';
    this.socket.end();
    setTimeout(() => this.socket.destroy(), CLOSE_AFTER_MS).unref();
  }

  async drain(graceMs: number): Promise<void> {
    if (this.state === 'ending') return;
    if (this.state === 'awaiting') {
      this.state = 'ending';
      this.socket.destroy();
      return;
    }
    this.stopping = true;
    this.socket.pause();
    // The instance being stored finishes and is answered; those queued behind it are not started.
    const inHand = this.current ?? Promise.resolve();
    const timeout = new Promise<void>((resolve) => setTimeout(resolve, graceMs).unref());
    await Promise.race([inHand.catch(() => undefined), timeout]);
    if (this.state === 'associated') this.abort(0x00, 0);
  }
}

/** A Storage SCP on the library's upper layer: every hook forwards to its DimseConnection. */
class StorageScp extends Scp {
  private readonly connection: DimseConnection;
  /** The data set bytes of each C-STORE request, from its first fragment to its handling. */
  private readonly sinks = new WeakMap<CStoreRequest, InstanceSink>();

  constructor(socket: net.Socket, opts: { connectTimeout: number }, connection: DimseConnection) {
    super(socket, opts);
    this.connection = connection;
  }

  override associationRequested(association: Association): void {
    this.connection.associationRequested(association);
  }

  override associationReleaseRequested(): void {
    this.connection.associationReleaseRequested();
  }

  override abort(source: number, reason: number): void {
    this.connection.peerAborted(source, reason);
  }

  override createStoreWritableStream(context: PresentationContext, request: CStoreRequest): Writable {
    const sink = this.connection.createSink(context);
    this.sinks.set(request, sink);
    return sink;
  }

  override createDatasetFromStoreWritableStream(_writable: Writable, context: PresentationContext, callback: (dataset: InstanceType<typeof Dataset>) => void): void {
    // An empty Dataset: the bytes stay in the sink, unparsed, so a broken data set cannot break the association.
    callback(new Dataset({}, context.getAcceptedTransferSyntaxUid()));
  }

  override cEchoRequest(request: dimseRequests.CEchoRequest, callback: (response: InstanceType<typeof CEchoResponse>) => void): void {
    this.connection.echo(request, callback);
  }

  override cStoreRequest(request: CStoreRequest, callback: (response: InstanceType<typeof CStoreResponse>) => void): void {
    const sink = this.sinks.get(request);
    this.sinks.delete(request);
    this.connection.store(request, sink, callback);
  }

  override cFindRequest(request: dimseRequests.CFindRequest, callback: (responses: Array<InstanceType<typeof CFindResponse>>) => void): void {
    this.connection.unsupported(() => callback([unrecognized(CFindResponse.fromRequest(request))]));
  }

  override cMoveRequest(request: dimseRequests.CMoveRequest, callback: (responses: Array<InstanceType<typeof CMoveResponse>>) => void): void {
    this.connection.unsupported(() => callback([unrecognized(CMoveResponse.fromRequest(request))]));
  }

  override cGetRequest(request: dimseRequests.CGetRequest, callback: (responses: Array<InstanceType<typeof CGetResponse>>) => void): void {
    this.connection.unsupported(() => callback([unrecognized(CGetResponse.fromRequest(request))]));
  }

  override nCreateRequest(request: dimseRequests.NCreateRequest, callback: (response: InstanceType<typeof NCreateResponse>) => void): void {
    this.connection.unsupported(() => callback(unrecognized(NCreateResponse.fromRequest(request))));
  }

  override nActionRequest(request: dimseRequests.NActionRequest, callback: (response: InstanceType<typeof NActionResponse>) => void): void {
    this.connection.unsupported(() => callback(unrecognized(NActionResponse.fromRequest(request))));
  }

  override nDeleteRequest(request: dimseRequests.NDeleteRequest, callback: (response: InstanceType<typeof NDeleteResponse>) => void): void {
    this.connection.unsupported(() => callback(unrecognized(NDeleteResponse.fromRequest(request))));
  }

  override nEventReportRequest(request: dimseRequests.NEventReportRequest, callback: (response: InstanceType<typeof NEventReportResponse>) => void): void {
    this.connection.unsupported(() => callback(unrecognized(NEventReportResponse.fromRequest(request))));
  }

  override nGetRequest(request: dimseRequests.NGetRequest, callback: (response: InstanceType<typeof NGetResponse>) => void): void {
    this.connection.unsupported(() => callback(unrecognized(NGetResponse.fromRequest(request))));
  }

  override nSetRequest(request: dimseRequests.NSetRequest, callback: (response: InstanceType<typeof NSetResponse>) => void): void {
    this.connection.unsupported(() => callback(unrecognized(NSetResponse.fromRequest(request))));
  }

  override cCancelRequest(): void {
    // Nothing we do can be cancelled.
  }
}

function unrecognized<T extends { setStatus(status: number): void }>(response: T): T {
  response.setStatus(DicomStatus.UnrecognizedOperation);
  return response;
}

/**
 * Accepts a proposed presentation context when we serve its abstract syntax in one of its transfer syntaxes (the
 * first one proposed that we take); records the rejection reason otherwise. Returns whether it was accepted.
 */
function negotiate(context: PresentationContext): boolean {
  const abstractSyntax = context.getAbstractSyntaxUid();
  const offered = abstractSyntax === SopClass.Verification ? VERIFICATION_TRANSFER_SYNTAXES : isStorageSopClass(abstractSyntax) ? STORAGE_TRANSFER_SYNTAXES : undefined;
  // As acceptor we take the requestor's SCU role and never act as an SCP of its (C-GET) storage requests.
  if (context.getProviderRole() !== undefined) context.setProviderRole(false);
  if (!offered) {
    context.setResult(PresentationContextResult.RejectAbstractSyntaxNotSupported);
    return false;
  }
  const transferSyntax = context.getTransferSyntaxUids().find((uid) => offered.has(uid));
  if (!transferSyntax) {
    context.setResult(PresentationContextResult.RejectTransferSyntaxesNotSupported);
    return false;
  }
  context.setResult(PresentationContextResult.Accept, transferSyntax);
  return true;
}

function statusHex(status: number): string {
  return `0x${status.toString(16).padStart(4, '0').toUpperCase()}`;
}

/**
 * Collects one C-STORE data set as the raw bytes of its PDV fragments. Past maxInstanceBytes it keeps counting but
 * drops the bytes, so the response can say how large the refused instance was without holding it. Writes complete
 * synchronously, so every fragment is in by the time the library ends the stream.
 */
class InstanceSink extends Writable {
  readonly transferSyntaxUid: string;
  private readonly limit: number;
  private chunks: Buffer[] = [];
  private size = 0;
  received = 0;
  overflowed = false;

  constructor(limit: number, transferSyntaxUid: string) {
    // A high-water mark above any PDU, so a write never asks the library to wait for 'drain'.
    super({ highWaterMark: 4 * 1024 * 1024 });
    this.limit = limit;
    this.transferSyntaxUid = transferSyntaxUid;
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.received += chunk.length;
    if (!this.overflowed) {
      if (this.size + chunk.length > this.limit) {
        this.overflowed = true;
        this.chunks = [];
        this.size = 0;
      } else {
        this.chunks.push(chunk);
        this.size += chunk.length;
      }
    }
    callback();
  }

  dataset(): Buffer {
    return this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.size);
  }
}

/**
 * DICOM intake, shared by the DIMSE C-STORE listener and STOW-RS: read the instance's header, keep the whole
 * instance in the blob store, commit it to the inbox, hand its id to the queue and answer.
 *
 * What `accept` takes: one DICOM Part 10 file (128-byte preamble, 'DICM', the file meta group, the data set), as
 * STOW-RS receives it. The DIMSE listener wraps each C-STORE data set in a file meta group first (part10.ts). An
 * instance written without File Meta Information (a bare data set, or the group without its preamble) is wrapped
 * the same way (asPart10File), with a mapping issue saying so; the stored file is the wrapped one. Bytes that do not
 * start like a data set are refused (no 'DICM' prefix).
 *
 * Rules:
 * - Nothing is acknowledged before it is durable: the blob is written and fsynced, then the inbox row and its ingest
 *   job are committed in one transaction; only then is the answer 'stored'.
 * - With encryption at rest the blob is sealed under a fresh message key, and the row's raw bytes under the same key
 *   (store/instance-blobs.ts says why, and how the file is named); without it the blob is the instance as received.
 * - The inbox row: protocol 'dicom' (the ingest converter's key), sender = the calling AE title ('' over STOW-RS),
 *   control id = the SOP Instance UID, message type `DICOM^<SOP Class UID>`, raw = the instance's bytes up to (not
 *   including) its pixel data (the whole instance when it has none or is deflated), hashed as received, and
 *   blob_sha256 = the SHA-256 of the whole instance (the name the ImagingStudy records for it), blob_sealed_sha256 =
 *   the SHA-256 of its sealed file (its name in the blob store; null when stored plain). Mapping needs only the raw
 *   header.
 * - The same instance sent again (same sender and SOP Instance UID, identical bytes) is a 'duplicate': no second
 *   row, no second job, and the resend's sealed copy of the blob is removed again. The same SOP Instance UID with
 *   different bytes is refused (ANCHORLINE_ERR_DUPLICATE_CONTROL_ID) and kept as a conflict row for review; the
 *   first instance stays.
 * - A deflated data set is inflated off the event loop, in steps, and held to maxInstanceBytes, to maxInflateRatio
 *   times its deflated size and, over STOW-RS, to what is left of the request's stowMaxInflatedBytes (refused with
 *   ANCHORLINE_ERR_DICOM_INFLATE_BUDGET, retryable: the instance may pass in a request of its own).
 * - Input that is not a usable instance (no DICM prefix, truncated, lengths past the end, a deflate bomb, a UID that
 *   is not digits and dots, an unsupported transfer syntax or character set, missing required attributes, larger
 *   than maxInstanceBytes) is refused with its ANCHORLINE_ERR_DICOM_* code and kept as a rejected row (its first
 *   64 KiB). These codes are permanent (not retryable): the sender should not resend the same bytes, and nothing is
 *   queued, so a bad instance costs one row and never a retry loop. Other instances, of the same study or not, are
 *   not affected: each is judged on its own bytes.
 * - When the store cannot be reached the answer is 'rejected' with ANCHORLINE_ERR_STORE_UNAVAILABLE, which is
 *   retryable: the sender may resend later, and nothing was committed.
 * `accept` never throws.
 */
import { createHash } from 'node:crypto';
import type pg from 'pg';
import { AnchorlineError, toAnchorlineError, type ErrorCode } from '../../errors/index.ts';
import { errorFields, type Logger } from '../../config/logger.ts';
import { discardInstance, inbox, storeInstance, withTransaction, type BlobStore, type InboxInput, type RecordOutcome, type StoredInstance } from '../../store/index.ts';
import { INGEST_QUEUE, ingestJob, type JobQueue } from '../../queue/index.ts';
import { InflateBudget, asPart10File, readDicomInstance, type ParsedDicomInstance } from '../../formats/dicom/index.ts';
import type { IntakeMetrics } from '../../observability/types.ts';

/** The inbox protocol of DICOM instances, and the key of their converter in the ingest worker. */
export const DICOM_PROTOCOL = 'dicom';

/** How much of a refused input is kept in its rejected row. */
const REJECTED_RAW_BYTES = 64 * 1024;
/** AE titles are at most 16 characters; a longer value is cut so that it cannot bloat the resend key. */
const MAX_AE_TITLE_CHARS = 16;

export interface DicomOrigin {
  protocol: 'dimse' | 'stow';
  /** Where it came from (peer address), recorded with the message. */
  source: string;
  /** The association's calling AE title (DIMSE). */
  callingAeTitle?: string;
}

export type DicomAcceptResult =
  | { status: 'stored' | 'duplicate'; messageId: number; sopInstanceUid: string; sopClassUid: string; studyInstanceUid: string }
  | { status: 'rejected'; errorCode: ErrorCode; detail: string; messageId?: number; sopInstanceUid?: string; sopClassUid?: string };

export interface DicomIntakeOptions {
  pool: pg.Pool;
  log: Logger;
  /** Where whole instances are kept (store/blobs.ts). */
  blobs: BlobStore;
  queue: JobQueue;
  /**
   * Largest instance accepted, in bytes (config dicom.maxInstanceBytes); also the most a deflated data set may
   * inflate to.
   */
  maxInstanceBytes: number;
  /** Most a deflated data set may inflate to, as a multiple of its size (config dicom.maxInflateRatio). Default 200. */
  maxInflateRatio?: number;
  /**
   * Most the deflated data sets of one STOW-RS request may inflate to together, in bytes (config
   * dicom.stowMaxInflatedBytes). Absent: no shared limit.
   */
  stowMaxInflatedBytes?: number;
  /** Counts every instance answered (protocol 'dicom-dimse' or 'dicom-stow'); absent: nothing is counted. */
  metrics?: IntakeMetrics;
}

function sha256(bytes: Buffer): Buffer {
  return createHash('sha256').update(bytes).digest();
}

/** The calling AE title as the resend key and mapping configs use it: trimmed, printable, at most 16 characters. */
function aeTitleOf(origin: DicomOrigin): string {
  return (origin.callingAeTitle ?? '').replace(/[^\x20-\x7e]/g, '').trim().slice(0, MAX_AE_TITLE_CHARS);
}

export class DicomIntake {
  private readonly options: DicomIntakeOptions;
  private readonly inFlight = new Set<Promise<DicomAcceptResult>>();
  /**
   * The inflate budget of each STOW-RS request. The STOW route hands every part of one request the same origin object
   * (and DIMSE a fresh one per instance), so the origin stands for the request; entries go with their requests.
   */
  private readonly budgets = new WeakMap<DicomOrigin, InflateBudget>();
  private closed = false;

  constructor(options: DicomIntakeOptions) {
    this.options = options;
  }

  /** Takes one Part 10 file. Never throws; see the rules above for what each answer means. */
  accept(bytes: Buffer, origin: DicomOrigin): Promise<DicomAcceptResult> {
    if (this.closed) return Promise.resolve(refusal(new AnchorlineError('ANCHORLINE_ERR_SHUTTING_DOWN')));
    const work = this.acceptNow(bytes, origin).catch((error: unknown) => {
      // acceptNow codes every expected failure; anything else is a defect, but the sender still gets an answer.
      this.options.log.error(errorFields(error), 'dicom intake: unexpected failure');
      return refusal(toAnchorlineError(error));
    });
    this.inFlight.add(work);
    void work.finally(() => this.inFlight.delete(work));
    void work.then((result) => this.options.metrics?.messageReceived(`dicom-${origin.protocol}`, result.status, result.status === 'rejected' ? result.errorCode : undefined));
    return work;
  }

  /** Stops taking instances (they are answered ANCHORLINE_ERR_SHUTTING_DOWN) and waits for those in hand. */
  async close(): Promise<void> {
    this.closed = true;
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  private async acceptNow(bytes: Buffer, origin: DicomOrigin): Promise<DicomAcceptResult> {
    const envelope = { protocol: DICOM_PROTOCOL, source: `${origin.protocol}:${origin.source}`, sender: aeTitleOf(origin) };
    if (bytes.length > this.options.maxInstanceBytes) {
      return this.refuse(bytes, envelope, new AnchorlineError('ANCHORLINE_ERR_DICOM_TOO_LARGE', `the instance is ${bytes.length} bytes; at most ${this.options.maxInstanceBytes} are accepted`));
    }
    let parsed: ParsedDicomInstance;
    let instance: Buffer;
    try {
      // An instance sent without File Meta Information is stored inside a file meta group of our own.
      instance = asPart10File(bytes);
      // A deflated data set is inflated on the thread pool in 64 KiB steps, so a deflate bomb costs the event loop
      // nothing but the counting; it is stopped at its caps.
      parsed = await readDicomInstance(instance, { maxInflatedBytes: this.options.maxInstanceBytes, maxInflateRatio: this.options.maxInflateRatio, budget: this.budgetOf(origin) });
    } catch (error) {
      return this.refuse(bytes, envelope, toAnchorlineError(error));
    }
    const { header, headerLength } = parsed;
    const identity = { sopInstanceUid: header.sopInstanceUid, sopClassUid: header.sopClassUid };

    let blob: StoredInstance;
    try {
      blob = await storeInstance(this.options.pool, this.options.blobs, instance);
    } catch (error) {
      this.options.log.warn(errorFields(error), 'dicom intake: the blob store refused a write; answering with a retryable error');
      return { ...refusal(new AnchorlineError('ANCHORLINE_ERR_STORE_UNAVAILABLE', 'the instance could not be written to the blob store')), ...identity };
    }

    const raw = instance.subarray(0, headerLength);
    const input: InboxInput = {
      ...envelope,
      controlId: header.sopInstanceUid,
      messageType: `DICOM^${header.sopClassUid}`,
      messageTime: null,
      raw,
      rawSha256: sha256(raw),
      rawSize: instance.length,
      charset: header.textDecoding === 'cp949' ? 'cp949' : header.specificCharacterSet || 'ISO_IR 6',
      blobSha256: blob.sha256,
      blobSealedSha256: blob.sealedSha256,
      messageKey: blob.messageKey,
      disposition: 'accepted',
      ack: null,
      ackCode: null,
    };
    let outcome: RecordOutcome;
    try {
      outcome = await this.record(input);
    } catch (error) {
      this.options.log.warn(errorFields(error), 'dicom intake: commit failed; answering with a retryable error');
      return { ...refusal(new AnchorlineError('ANCHORLINE_ERR_STORE_UNAVAILABLE')), ...identity };
    }
    if (outcome.kind === 'duplicate') {
      // The row of the first receipt names its own copy; this one no row names. Left behind, it only costs space.
      await discardInstance(this.options.blobs, blob).catch((error: unknown) => this.options.log.warn(errorFields(error), 'dicom intake: the sealed copy of a resent instance could not be removed'));
    }
    switch (outcome.kind) {
      case 'stored':
      case 'duplicate':
        return { status: outcome.kind, messageId: outcome.id, ...identity, studyInstanceUid: header.studyInstanceUid };
      case 'conflict': {
        const error = new AnchorlineError('ANCHORLINE_ERR_DUPLICATE_CONTROL_ID', 'the SOP Instance UID was already received with different content');
        this.options.log.warn({ messageId: outcome.id, originalId: outcome.originalId, code: error.code }, 'dicom intake: instance refused');
        return { ...refusal(error), messageId: outcome.id, ...identity };
      }
      case 'rejected':
        // Only refused inputs are recorded as rejected, and they do not come this way.
        return { ...refusal(new AnchorlineError('ANCHORLINE_ERR_INTERNAL')), messageId: outcome.id, ...identity };
    }
  }

  private budgetOf(origin: DicomOrigin): InflateBudget | undefined {
    if (origin.protocol !== 'stow' || this.options.stowMaxInflatedBytes === undefined) return undefined;
    let budget = this.budgets.get(origin);
    if (budget === undefined) this.budgets.set(origin, (budget = new InflateBudget(this.options.stowMaxInflatedBytes)));
    return budget;
  }

  /** One transaction: the row, and the ingest job when the queue lives in the same database. */
  private async record(input: InboxInput): Promise<RecordOutcome> {
    const queue = this.options.queue;
    const [outcome] = await withTransaction(this.options.pool, async (client) => {
      const recorded = await inbox.recordMessages(client, [input], () => ({ ack: null, ackCode: null }));
      if (queue.enqueueInTransaction && recorded[0]?.kind === 'stored') await queue.enqueueInTransaction(client, INGEST_QUEUE, [ingestJob(recorded[0].id)]);
      return recorded;
    });
    if (outcome!.kind === 'stored' && !queue.enqueueInTransaction) {
      try {
        await queue.enqueue(INGEST_QUEUE, [ingestJob(outcome!.id)]);
      } catch (error) {
        // The row is committed; the sweeper re-enqueues it, so the sender's answer stays 'stored'.
        this.options.log.warn({ messageId: outcome!.id, err: toAnchorlineError(error).code }, 'dicom intake: enqueue failed; the sweeper will re-enqueue');
      }
    }
    return outcome!;
  }

  /** Keeps the first 64 KiB of a refused input as a rejected row and answers with its code. */
  private async refuse(bytes: Buffer, envelope: { protocol: string; source: string; sender: string }, error: AnchorlineError): Promise<DicomAcceptResult> {
    const raw = bytes.subarray(0, REJECTED_RAW_BYTES);
    const input: InboxInput = {
      ...envelope,
      controlId: null,
      messageType: null,
      messageTime: null,
      raw,
      rawSha256: sha256(raw),
      rawSize: bytes.length,
      charset: null,
      disposition: 'rejected',
      errorCode: error.code,
      errorDetail: error.detail,
      ack: null,
      ackCode: null,
    };
    try {
      const [outcome] = await withTransaction(this.options.pool, (client) => inbox.recordMessages(client, [input], () => ({ ack: null, ackCode: null })));
      this.options.log.warn({ messageId: outcome!.id, code: error.code, location: error.location }, 'dicom intake: instance refused');
      return { ...refusal(error), messageId: outcome!.id };
    } catch (storeError) {
      // The refusal stands whether or not it could be recorded.
      this.options.log.warn({ ...errorFields(storeError), code: error.code }, 'dicom intake: a refused instance could not be recorded');
      return refusal(error);
    }
  }
}

function refusal(error: AnchorlineError): { status: 'rejected'; errorCode: ErrorCode; detail: string } {
  return { status: 'rejected', errorCode: error.code, detail: error.detail ?? error.spec.title };
}

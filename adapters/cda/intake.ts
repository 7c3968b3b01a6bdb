/**
 * C-CDA intake: one document in, stored as raw bytes with their SHA-256 in the message store, and answered once it
 * is durable. The document is converted once, by the ingest worker: the intake reads only what it stores the
 * document under and what it refuses documents for (mappers/cda/read-header.ts: the pre-parse guard, the XML parse,
 * ClinicalDocument/id and effectiveTime, the organization, a recordTarget with an identifier).
 *
 * Answers (`POST /ingest/cda`):
 * - 202: stored and queued for mapping. The body is an OperationOutcome whose informational issue names the message
 *   and where its mapping outcome and issues will be: `/admin/messages/{id}` (what the conversion leaves out is
 *   recorded there as the message's mapping issues, as for HL7 v2).
 * - 200: a resend (same organization and ClinicalDocument/id, identical bytes): nothing is stored twice.
 * - 409 ANCHORLINE_ERR_DUPLICATE_CONTROL_ID: the same ClinicalDocument/id with other bytes; kept as a conflict row.
 *   A corrected document must carry a new id (and relatedDocument typeCode RPLC naming the one it replaces).
 * - 4xx ANCHORLINE_ERR_CDA_* and others: refused. The raw bytes are kept as a rejected row (the first 64 KiB of an
 *   oversized document), documents with a DOCTYPE included: they are stored as bytes and never parsed.
 * - 503: not stored (store unavailable, shutting down); send again.
 *
 * Rows: protocol 'cda', control id = ClinicalDocument/id as root^extension, sender = `cda:` and the authoring
 * organization's id (else the custodian's, else `cda:key:` and the API key's name), message type `CDA^<document type
 * code>`, message time = effectiveTime as sent, charset = the encoding the document was decoded from. Rejected and
 * conflict rows keep the OperationOutcome answered in `ack` and its HTTP status in `ack_code`.
 */
import type { SourcePolicy } from '../sources.ts';
import { createHash } from 'node:crypto';
import type pg from 'pg';

import { AnchorlineError, isAnchorlineError, operationOutcome, type ErrorCode } from '../../errors/index.ts';
import { errorFields, type Logger } from '../../config/logger.ts';
import { cdaIssuesOutcome, readCdaHeader, type CdaHeader } from '../../mappers/index.ts';
import { inbox, withTransaction, type InboxInput, type RecordOutcome } from '../../store/index.ts';
import { INGEST_QUEUE, ingestJob, type JobQueue } from '../../queue/index.ts';
import type { CdaLimits } from '../../formats/cda/index.ts';
import type { IntakeMetrics } from '../../observability/types.ts';

export interface CdaIntakeOptions {
  pool: pg.Pool;
  queue: JobQueue;
  log: Logger;
  limits: CdaLimits;
  /** Which source may send which organizations' documents (config `sources`); absent: no claims. */
  sources?: SourcePolicy;
  /** Counts every document answered (protocol 'cda'); absent: nothing is counted. */
  metrics?: IntakeMetrics;
}

export interface CdaIntakeResult {
  /** HTTP status of the answer. */
  status: number;
  outcome: 'stored' | 'duplicate' | 'conflict' | 'rejected' | 'not-stored';
  messageId?: number;
  errorCode?: ErrorCode;
  /** The OperationOutcome answered. */
  body: Record<string, unknown>;
}

export interface CdaReceiveMeta {
  /** Where it came from (`http:<address>`). */
  source: string;
  /** Name of the API key or OAuth client it was sent with: the sender when the document names no organization. */
  apiKeyName?: string;
  /** The source the credential is bound to (adapters/sources.ts); absent: not bound. */
  boundSource?: string;
  /** The charset parameter of the request's media type. */
  charsetParameter?: string;
}

/** What is kept of a document refused for its size. */
const OVERSIZED_PREFIX_BYTES = 64 * 1024;
const MAX_CONTROL_ID_CHARS = 1000;

export class CdaIntake {
  private readonly options: CdaIntakeOptions;
  private readonly inFlight = new Set<Promise<unknown>>();
  private closed = false;

  constructor(options: CdaIntakeOptions) {
    this.options = options;
  }

  /** Handles one document. Never throws. */
  async receive(raw: Buffer, meta: CdaReceiveMeta): Promise<CdaIntakeResult> {
    if (this.closed) return refusal(new AnchorlineError('ANCHORLINE_ERR_SHUTTING_DOWN'), 'not-stored');
    const work = this.store(raw, meta);
    this.inFlight.add(work);
    try {
      const result = await work;
      this.options.metrics?.messageReceived('cda', result.outcome, result.errorCode);
      return result;
    } finally {
      this.inFlight.delete(work);
    }
  }

  /** Stops taking documents and waits for those being stored. */
  async close(): Promise<void> {
    this.closed = true;
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  private async store(raw: Buffer, meta: CdaReceiveMeta): Promise<CdaIntakeResult> {
    const rawSha256 = createHash('sha256').update(raw).digest();
    let header: CdaHeader;
    try {
      header = readCdaHeader(raw, { limits: this.options.limits, ...(meta.charsetParameter ? { charsetParameter: meta.charsetParameter } : {}) });
      this.options.sources?.checkCdaOrganization(meta.boundSource, header.document.senderOrganization);
      if (header.document.controlId.length > MAX_CONTROL_ID_CHARS) {
        throw new AnchorlineError('ANCHORLINE_ERR_CDA_INVALID_HEADER', `ClinicalDocument/id is longer than ${MAX_CONTROL_ID_CHARS} characters`, { location: '/ClinicalDocument/id' });
      }
    } catch (error) {
      const coded = this.permanent(error);
      return this.reject(raw, rawSha256, meta, coded);
    }

    const { document } = header;
    const input: InboxInput = {
      protocol: 'cda',
      source: meta.source,
      sender: inbox.cdaSenderKey(document.senderOrganization, meta.apiKeyName),
      controlId: document.controlId,
      messageType: document.typeCode ? `CDA^${document.typeCode}` : 'CDA',
      messageTime: document.effectiveTime,
      raw,
      rawSha256,
      rawSize: raw.length,
      charset: header.charset,
      disposition: 'accepted',
      ack: null,
      ackCode: null,
    };
    let outcome: RecordOutcome;
    try {
      outcome = await this.commit(input);
    } catch (error) {
      this.options.log.warn(errorFields(error), 'cda intake: commit failed; answering with a retryable error');
      return refusal(new AnchorlineError('ANCHORLINE_ERR_STORE_UNAVAILABLE'), 'not-stored');
    }
    switch (outcome.kind) {
      case 'stored':
        return {
          status: 202,
          outcome: 'stored',
          messageId: outcome.id,
          body: cdaIssuesOutcome([], { code: 'document-stored', text: `document stored as message ${outcome.id}; it is converted when it is mapped, and its mapping outcome and issues will be at /admin/messages/${outcome.id}` }),
        };
      case 'duplicate':
        return {
          status: 200,
          outcome: 'duplicate',
          messageId: outcome.id,
          body: cdaIssuesOutcome([], { code: 'document-duplicate', text: `document already stored as message ${outcome.id}; nothing changed (its mapping outcome and issues are at /admin/messages/${outcome.id})` }),
        };
      case 'conflict': {
        const error = conflictError(outcome.originalId);
        return { ...refusal(error, 'conflict'), messageId: outcome.id };
      }
      case 'rejected':
        // Only rejected inputs come back rejected; this one was accepted.
        throw new Error('cda intake: an accepted document came back rejected');
    }
  }

  /** A document's own problem as a coded, permanent error; anything else (a reader defect) likewise, logged. */
  private permanent(error: unknown): AnchorlineError {
    if (isAnchorlineError(error) && !error.retryable) return error;
    this.options.log.error({ ...errorFields(error) }, 'cda intake: reading the document failed unexpectedly');
    return new AnchorlineError('ANCHORLINE_ERR_MAPPING_FAILED', 'the document could not be converted', { cause: error });
  }

  private async reject(raw: Buffer, rawSha256: Buffer, meta: CdaReceiveMeta, error: AnchorlineError): Promise<CdaIntakeResult> {
    const answer = refusal(error, 'rejected');
    const kept = error.code === 'ANCHORLINE_ERR_CDA_TOO_LARGE' ? raw.subarray(0, OVERSIZED_PREFIX_BYTES) : raw;
    const input: InboxInput = {
      protocol: 'cda',
      source: meta.source,
      sender: inbox.cdaSenderKey(undefined, meta.apiKeyName),
      controlId: null,
      messageType: 'CDA',
      messageTime: null,
      raw: kept,
      rawSha256: kept === raw ? rawSha256 : createHash('sha256').update(kept).digest(),
      rawSize: raw.length,
      charset: null,
      disposition: 'rejected',
      errorCode: error.code,
      errorDetail: error.detail,
      ack: Buffer.from(JSON.stringify(answer.body)),
      ackCode: String(answer.status),
    };
    try {
      const outcome = await this.commit(input);
      return { ...answer, messageId: outcome.id };
    } catch (commitError) {
      // The refusal stands whether or not it could be recorded.
      this.options.log.warn(errorFields(commitError), 'cda intake: a refused document could not be recorded');
      return answer;
    }
  }

  /** Records one row, and its ingest job when it is stored, in one transaction (or enqueues after, with BullMQ). */
  private async commit(input: InboxInput): Promise<RecordOutcome> {
    const { queue } = this.options;
    const [outcome] = await withTransaction(this.options.pool, async (client) => {
      const recorded = await inbox.recordMessages(client, [input], () => {
        const answer = refusal(conflictError(undefined), 'conflict');
        return { ack: Buffer.from(JSON.stringify(answer.body)), ackCode: String(answer.status) };
      });
      const jobs = recorded.filter((o) => o.kind === 'stored').map((o) => ingestJob(o.id));
      if (queue.enqueueInTransaction && jobs.length > 0) await queue.enqueueInTransaction(client, INGEST_QUEUE, jobs);
      return recorded;
    });
    if (!queue.enqueueInTransaction && outcome!.kind === 'stored') {
      // A failure here loses nothing: the sweeper enqueues stored messages that have no job.
      await queue.enqueue(INGEST_QUEUE, [ingestJob(outcome!.id)]).catch((error: unknown) => this.options.log.warn(errorFields(error), 'cda intake: enqueue failed; the sweeper will re-enqueue'));
    }
    return outcome!;
  }
}

function refusal(error: AnchorlineError, outcome: CdaIntakeResult['outcome']): CdaIntakeResult {
  return { status: error.spec.httpStatus, outcome, errorCode: error.code, body: operationOutcome(error) };
}

function conflictError(originalId: number | undefined): AnchorlineError {
  return new AnchorlineError(
    'ANCHORLINE_ERR_DUPLICATE_CONTROL_ID',
    `ClinicalDocument/id was already used by ${originalId === undefined ? 'another document' : `message ${originalId}`} with different content; a corrected document needs a new id`,
    { location: '/ClinicalDocument/id' },
  );
}

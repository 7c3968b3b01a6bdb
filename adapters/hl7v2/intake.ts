/**
 * HL7 v2 intake, shared by the MLLP listener and POST /ingest/hl7v2: hash the raw bytes, read the header, decide
 * the acknowledgment, commit the message to the inbox, hand its id to the queue and answer.
 *
 * Rules (HL7 v2 chapter 2 acknowledgment modes):
 * - Enhanced mode (MSH-15 or MSH-16 sent): CA once the raw message is committed.
 * - Original mode: AA once committed (`ackMode: 'afterCommit'`, the default), or once mapped (`'afterMapping'`;
 *   AE with the mapping error when mapping fails).
 * - No positive ACK unless the commit succeeded: a failed commit answers AE/CE (retryable), so the sender resends.
 * - A resend with the same (sender, MSH-10) and identical bytes gets the stored ACK and has no second effect; the
 *   same MSH-10 with other bytes gets AR/CR with an ERR segment and is kept for review.
 * - Unreadable or unsupported messages, and messages whose structure passes a cap of `hl7v2` (formats/hl7v2/limits.ts),
 *   get AR/CR with a coded ERR segment and are kept as rejected rows.
 *
 * Messages that arrive together are committed together (group commit): while one batch commits, the next gathers,
 * so under load one fsync acknowledges hundreds of messages and at low load a message waits for no timer. A row the
 * database refuses for its values (a data exception, a violated constraint, a program limit such as an index entry
 * too large) does not take the others with it: the batch is committed again in halves until the refused row stands
 * alone, and only its sender gets the error (ANCHORLINE_ERR_STORE_REFUSED_MESSAGE, permanent). Other failures (the
 * database unreachable) fail the whole batch with a retryable error, as splitting could not help.
 */
import type { SourcePolicy } from '../sources.ts';
import { createHash } from 'node:crypto';
import type pg from 'pg';
import { AnchorlineError, ackCodeFor, toAnchorlineError, type ErrorCode } from '../../errors/index.ts';
import { errorFields, type Logger } from '../../config/logger.ts';
import { inbox, PUBLIC_BLIND_INDEX, refusedForItsValues, withTransaction, type BlindIndex, type InboxInput, type RecordOutcome } from '../../store/index.ts';
import { INGEST_QUEUE, ingestJob, type EnqueueJob, type JobQueue } from '../../queue/index.ts';
import { batchMessages, buildBatchAck, declaredCountDiffers, encodeAck, isEnhancedMode, splitHl7Batch, type AckCode } from '../../formats/hl7v2/index.ts';
import { DEFAULT_HL7_LIMITS, checkHl7Limits, decodeHl7Bytes, resolveCharset, type Hl7Limits } from '../../formats/hl7v2/index.ts';
import { readMshHeader, type MshHeader } from '../../formats/hl7v2/index.ts';
import type { MappingWaiter } from './mapping-waiter.ts';
import type { IntakeMetrics } from '../../observability/types.ts';

/** Where a message came from. */
export interface ReceiveMeta {
  /** 'hl7v2-mllp' or 'hl7v2-http'. */
  protocol: string;
  /** Listener and peer address, and the bound source when there is one; stored with the message. */
  source: string;
  /** The source the connection or credential is bound to (see adapters/sources.ts); absent: not bound. */
  boundSource?: string | undefined;
}

export interface IntakeOptions {
  pool: pg.Pool;
  queue: JobQueue;
  log: Logger;
  ackMode: 'afterCommit' | 'afterMapping';
  ackTimeoutMs: number;
  defaultCharset: string;
  timeZone: string;
  engineApplication: string;
  commitBatchMaxMessages: number;
  /** Group commits under way at once. */
  commitConcurrency: number;
  maxPendingMessages: number;
  /** Decides whether a message type can be processed (unsupported ones are rejected at intake). */
  isSupported: (messageType: string, triggerEvent: string) => boolean;
  /** Which source may send which facilities and applications (config `sources`); absent: no claims. */
  sources?: SourcePolicy;
  /** Required when ackMode is 'afterMapping'. */
  mappingWaiter?: MappingWaiter;
  /** Counts every message answered, by protocol and outcome; absent: nothing is counted. */
  metrics?: IntakeMetrics;
  /** Caps on a message's parsed structure (config `hl7v2`), the ingest workers' too; absent: DEFAULT_HL7_LIMITS. */
  hl7Limits?: Hl7Limits;
  /**
   * The store's search index key (blindIndexOf), which keys the control id of a message sent without MSH-10;
   * absent: the public one (an engine without encryption, where nothing is erased).
   */
  contentKey?: BlindIndex;
}

export interface IntakeResult {
  /** The ACK bytes, in the message's character set. */
  ack: Buffer;
  ackCode: AckCode;
  /** Inbox row id, when a row was written or found. */
  messageId?: number;
  outcome: 'stored' | 'duplicate' | 'conflict' | 'rejected' | 'not-stored';
  errorCode?: ErrorCode;
}

export interface BatchIntakeResult {
  /** The batch acknowledgment: the ACK of every message, in order, between answering batch headers and trailers. */
  ack: Buffer;
  /** Each message's result, in the order the batch carried them. */
  results: IntakeResult[];
  /** Batches (BHS ... BTS) whose declared message count (BTS-1) differs from what arrived. */
  mismatchedCounts: number;
}

interface Prepared {
  input: InboxInput;
  header: MshHeader | undefined;
  charset: string;
  enhanced: boolean;
  error?: AnchorlineError;
}

interface Pending {
  prepared: Prepared;
  resolve: (outcome: RecordOutcome) => void;
  reject: (error: unknown) => void;
}


/** How much of a batch refused whole is kept in its rejected row, as of an oversized MLLP frame. */
const REFUSED_BATCH_PREFIX_BYTES = 64 * 1024;
const MAX_CONTROL_ID_CHARS = 199;
const MAX_SENDER_CHARS = 1000;

function sha256(bytes: Buffer): Buffer {
  return createHash('sha256').update(bytes).digest();
}

export class Hl7Intake {
  private readonly options: IntakeOptions;
  private pending: Pending[] = [];
  private readonly flushes = new Set<Promise<void>>();
  private closed = false;

  constructor(options: IntakeOptions) {
    if (options.ackMode === 'afterMapping' && !options.mappingWaiter) throw new Error('intake: afterMapping needs a mapping waiter');
    this.options = options;
  }

  /** Handles one message (the bytes of one MLLP frame or one HTTP body). Never throws. */
  async receive(raw: Buffer, meta: ReceiveMeta): Promise<IntakeResult> {
    let prepared: Prepared;
    try {
      prepared = this.prepare(raw, meta);
    } catch (error) {
      // Preparing is pure; an exception here is a defect, but the sender still deserves an answer.
      this.options.log.error({ err: toAnchorlineError(error).code }, 'intake: unexpected failure preparing a message');
      return this.counted(meta, this.answer(undefined, 'UTF-8', toAnchorlineError(error), 'not-stored'));
    }
    return this.counted(meta, await this.commitAndAnswer(prepared));
  }

  /**
   * Handles a batch (FHS/BHS ... BTS/FTS, formats/hl7v2/batch.ts): each message is received as receive() receives
   * one sent alone (its own row, resend key and ACK), a window of them at a time so that they share group commits
   * without crowding out other senders, and the answer is the batch of their ACKs in order. A count the sender
   * declared (BTS-1) that differs from what arrived is said in the answer's BTS and logged: what arrived is kept.
   * Never throws.
   */
  async receiveBatch(raw: Buffer, meta: ReceiveMeta): Promise<BatchIntakeResult> {
    const batch = splitHl7Batch(raw);
    const messages = batchMessages(batch);
    const cap = (this.options.hl7Limits ?? DEFAULT_HL7_LIMITS).maxBatchMessages;
    if (messages.length > cap) {
      // Refused whole, before anything is stored: a sender told so splits the batch. Its first 64 KiB are kept.
      const error = new AnchorlineError('ANCHORLINE_ERR_HL7_TOO_COMPLEX', `the batch holds ${messages.length} messages; at most ${cap} are taken in one (hl7v2.maxBatchMessages)`);
      const refused = await this.receiveRefusedFrame(raw.subarray(0, REFUSED_BATCH_PREFIX_BYTES), raw.length, error, meta);
      this.options.log.warn({ protocol: meta.protocol, messages: messages.length, cap, messageId: refused.messageId }, 'intake: a batch over hl7v2.maxBatchMessages refused');
      return { ack: refused.ack, results: [refused], mismatchedCounts: 0 };
    }
    const results: IntakeResult[] = [];
    const window = Math.max(1, this.options.commitBatchMaxMessages);
    for (let start = 0; start < messages.length; start += window) {
      results.push(...(await Promise.all(messages.slice(start, start + window).map((message) => this.receive(message, meta)))));
    }
    const mismatched = batch.groups.filter(declaredCountDiffers).length;
    const log = { protocol: meta.protocol, messages: messages.length, batches: batch.groups.length, mismatchedCounts: mismatched, strayLines: batch.strayLines };
    if (mismatched > 0 || batch.strayLines > 0) this.options.log.warn(log, 'intake: a batch whose declared counts or lines do not match what arrived; every message found was received');
    else this.options.log.debug(log, 'intake: batch received');
    const ack = buildBatchAck(batch, results.map((result) => result.ack), { timestamp: new Date(), timeZone: this.options.timeZone, engineApplication: this.options.engineApplication });
    return { ack, results, mismatchedCounts: mismatched };
  }

  /**
   * Records and answers a frame the framer refused (too large, malformed): `prefix` is what was kept of it, enough
   * to read its MSH for the NAK when it has one.
   */
  async receiveRefusedFrame(prefix: Buffer, totalBytes: number, error: AnchorlineError, meta: ReceiveMeta): Promise<IntakeResult> {
    const { header, charset } = this.readableHeader(prefix);
    const prepared: Prepared = {
      input: this.inputFor(prefix, sha256(prefix), totalBytes, meta, header, null, error),
      header,
      charset,
      enhanced: isEnhancedMode(header),
      error,
    };
    return this.counted(meta, await this.commitAndAnswer(prepared));
  }

  /**
   * A NAK for a frame given up on before it ended (mllp.frameTimeoutMs), in the sender's terms when its MSH can be read
   * from `prefix`. Nothing is recorded: the connection is closed after the NAK, and what was sent is incomplete.
   */
  refuseUnfinishedFrame(prefix: Buffer, error: AnchorlineError, meta: ReceiveMeta): IntakeResult {
    const { header, charset } = this.readableHeader(prefix);
    return this.counted(meta, this.answer(header, charset, error, 'not-stored'));
  }

  /** A NAK for input that cannot be kept (bytes outside any MLLP frame). */
  refuseUnrecorded(error: AnchorlineError, meta?: Pick<ReceiveMeta, 'protocol'>): IntakeResult {
    const result = this.answer(undefined, 'utf-8', error, 'not-stored');
    return meta ? this.counted(meta, result) : result;
  }

  private counted(meta: Pick<ReceiveMeta, 'protocol'>, result: IntakeResult): IntakeResult {
    this.options.metrics?.messageReceived(meta.protocol, result.outcome, result.errorCode);
    return result;
  }

  /** Stops taking messages and waits for the batch being committed. */
  async close(): Promise<void> {
    this.closed = true;
    while (this.flushes.size > 0) await Promise.all([...this.flushes]);
  }

  /** The header as far as it can be read from undecoded bytes, so that a NAK answers in the sender's own terms. */
  private readableHeader(bytes: Buffer): { header: MshHeader | undefined; charset: string } {
    let header: MshHeader;
    try {
      header = readMshHeader(bytes.toString('latin1'));
    } catch {
      return { header: undefined, charset: 'utf-8' };
    }
    try {
      return { header, charset: resolveCharset(header.characterSet, this.options.defaultCharset) };
    } catch {
      return { header, charset: 'utf-8' };
    }
  }

  private prepare(raw: Buffer, meta: ReceiveMeta): Prepared {
    // The hash is of the bytes as they came off the wire, taken before anything interprets them.
    const rawSha256 = sha256(raw);
    let header: MshHeader | undefined;
    let charset = 'utf-8';
    try {
      const decoded = decodeHl7Bytes(raw, this.options.defaultCharset);
      header = decoded.header;
      charset = decoded.charset;
      if (decoded.text.includes('\u0000')) {
        throw new AnchorlineError('ANCHORLINE_ERR_HL7_MALFORMED', 'message contains NUL characters, which HL7 v2 does not allow');
      }
      // (sender, control id) is the resend key and is indexed; HL7 caps MSH-10 at 199 characters (v2.7; 20 before),
      // and a key past PostgreSQL's index entry limit would fail the group commit for everyone in it.
      if (header.controlId.length > MAX_CONTROL_ID_CHARS) {
        throw new AnchorlineError('ANCHORLINE_ERR_HL7_MALFORMED', `MSH-10 is longer than ${MAX_CONTROL_ID_CHARS} characters`, { location: 'MSH-10' });
      }
      if (senderKey(header).length > MAX_SENDER_CHARS) {
        throw new AnchorlineError('ANCHORLINE_ERR_HL7_MALFORMED', `MSH-3 and MSH-4 together are longer than ${MAX_SENDER_CHARS} characters`, { location: 'MSH-3' });
      }
      this.options.sources?.checkHl7(meta.boundSource, header.sendingApplication, header.sendingFacility);
      if (!this.options.isSupported(header.messageType, header.triggerEvent)) {
        // Queries and acknowledgments carry no record to store; the answer says so in its own code.
        throw new AnchorlineError('ANCHORLINE_ERR_HL7_NOT_DATA_MESSAGE', `message type ${[header.messageType, header.triggerEvent].filter(Boolean).join('^')} is a query or an acknowledgment, not data to store`, { location: 'MSH-9' });
      }
      // The worker parses with the same caps: a message acknowledged here can be parsed there. Counting walks the
      // delimiters without building anything, a few microseconds for an ordinary message.
      checkHl7Limits(decoded.text, this.options.hl7Limits ?? DEFAULT_HL7_LIMITS);
    } catch (error) {
      const coded = toAnchorlineError(error);
      if (!header) ({ header, charset } = this.readableHeader(raw));
      return { input: this.inputFor(raw, rawSha256, raw.length, meta, header, null, coded), header, charset, enhanced: isEnhancedMode(header), error: coded };
    }
    const enhanced = isEnhancedMode(header);
    const input = this.inputFor(raw, rawSha256, raw.length, meta, header, charset, undefined);
    if (enhanced || this.options.ackMode === 'afterCommit') {
      const ackCode: AckCode = enhanced ? 'CA' : 'AA';
      input.ack = this.ackBytes(header, charset, ackCode);
      input.ackCode = ackCode;
    }
    return { input, header, charset, enhanced };
  }

  private inputFor(raw: Buffer, rawSha256: Buffer, size: number, meta: ReceiveMeta, header: MshHeader | undefined, charset: string | null, error: AnchorlineError | undefined): InboxInput {
    const input: InboxInput = {
      protocol: meta.protocol,
      source: meta.source,
      sender: header ? senderKey(header) : '',
      // A message sent without MSH-10 is keyed by its bytes, so that a resend of it is still recognised.
      controlId: header === undefined ? null : header.controlId || (this.options.contentKey ?? PUBLIC_BLIND_INDEX).contentControlId(rawSha256),
      messageType: header ? [header.messageType, header.triggerEvent].filter(Boolean).join('^') : null,
      messageTime: header?.messageDateTime || null,
      raw,
      rawSha256,
      rawSize: size,
      charset,
      disposition: error ? 'rejected' : 'accepted',
      errorCode: error?.code,
      errorDetail: error?.detail,
      ack: null,
      ackCode: null,
    };
    if (error) {
      const ackCode = ackCodeFor(error.code, isEnhancedMode(header));
      input.ack = this.ackBytes(header, charset ?? 'utf-8', ackCode, error);
      input.ackCode = ackCode;
    }
    return input;
  }

  private ackBytes(header: MshHeader | undefined, charset: string, ackCode: AckCode, error?: AnchorlineError): Buffer {
    return encodeAck({ header, charset, ackCode, error, timeZone: this.options.timeZone, engineApplication: this.options.engineApplication });
  }

  private answer(header: MshHeader | undefined, charset: string, error: AnchorlineError, outcome: IntakeResult['outcome'], messageId?: number): IntakeResult {
    const ackCode = ackCodeFor(error.code, isEnhancedMode(header));
    return { ack: this.ackBytes(header, charset, ackCode, error), ackCode, outcome, errorCode: error.code, ...(messageId !== undefined ? { messageId } : {}) };
  }

  private async commitAndAnswer(prepared: Prepared): Promise<IntakeResult> {
    const { header, charset } = prepared;
    if (this.closed) return this.answer(header, charset, new AnchorlineError('ANCHORLINE_ERR_SHUTTING_DOWN'), 'not-stored');
    if (this.pending.length >= this.options.maxPendingMessages) {
      return this.answer(header, charset, new AnchorlineError('ANCHORLINE_ERR_STORE_UNAVAILABLE', 'too many messages waiting for the store'), 'not-stored');
    }
    let outcome: RecordOutcome;
    try {
      outcome = await new Promise<RecordOutcome>((resolve, reject) => {
        this.pending.push({ prepared, resolve, reject });
        this.kick();
      });
    } catch (error) {
      if (refusedForItsValues(error)) {
        // This message's row alone (commitBatch split its batch until it stood alone): resending cannot help.
        this.options.log.warn(errorFields(error), 'intake: the store refused the message\'s row; answering with a permanent error');
        return this.answer(header, charset, new AnchorlineError('ANCHORLINE_ERR_STORE_REFUSED_MESSAGE', 'the message store refused the row recording this message'), 'not-stored');
      }
      this.options.log.warn(errorFields(error), 'intake: commit failed; answering with a retryable error');
      return this.answer(header, charset, new AnchorlineError('ANCHORLINE_ERR_STORE_UNAVAILABLE'), 'not-stored');
    }
    switch (outcome.kind) {
      case 'rejected': {
        const error = prepared.error!;
        return { ack: prepared.input.ack!, ackCode: prepared.input.ackCode as AckCode, outcome: 'rejected', messageId: outcome.id, errorCode: error.code };
      }
      case 'conflict':
        return this.answer(header, charset, duplicateError(), 'conflict', outcome.id);
      case 'stored':
        if (prepared.input.ack) return { ack: prepared.input.ack, ackCode: prepared.input.ackCode as AckCode, outcome: 'stored', messageId: outcome.id };
        return this.awaitMapping(outcome.id, prepared, 'stored');
      case 'duplicate':
        if (outcome.ack) return { ack: outcome.ack, ackCode: outcome.ackCode as AckCode, outcome: 'duplicate', messageId: outcome.id };
        return this.awaitMapping(outcome.id, prepared, 'duplicate');
    }
  }

  /** afterMapping mode: the ACK is the one the ingest worker stores when it has mapped (or failed to map) the message. */
  private async awaitMapping(messageId: number, prepared: Prepared, outcome: 'stored' | 'duplicate'): Promise<IntakeResult> {
    const finished = await this.options.mappingWaiter!.wait(messageId, this.options.ackTimeoutMs);
    if (finished?.ack) return { ack: finished.ack, ackCode: finished.ackCode as AckCode, outcome, messageId };
    return this.answer(prepared.header, prepared.charset, new AnchorlineError('ANCHORLINE_ERR_ACK_TIMEOUT'), outcome, messageId);
  }

  /**
   * Starts commits while messages wait and fewer than commitConcurrency are under way. One commit at a time would
   * leave the CPU idle during each commit's round trips; several let the next group commit while one waits.
   */
  private kick(): void {
    while (this.pending.length > 0 && this.flushes.size < this.options.commitConcurrency) {
      const batch = this.pending.splice(0, this.options.commitBatchMaxMessages);
      const flush: Promise<void> = this.commitBatch(batch).finally(() => {
        this.flushes.delete(flush);
        this.kick();
      });
      this.flushes.add(flush);
    }
  }

  private async commitBatch(batch: Pending[]): Promise<void> {
    let outcomes: RecordOutcome[];
    try {
      outcomes = await this.commitGroup(batch);
    } catch (error) {
      if (batch.length > 1 && refusedForItsValues(error)) {
        // One row (or a few) refused for what it holds: commit the halves apart, so that only the refused rows fail.
        // Each split costs one rolled-back transaction; a single bad row in a batch of n costs about 2 log2(n).
        const half = Math.ceil(batch.length / 2);
        await this.commitBatch(batch.slice(0, half));
        await this.commitBatch(batch.slice(half));
        return;
      }
      for (const p of batch) p.reject(error);
      return;
    }
    batch.forEach((p, i) => p.resolve(outcomes[i]!));
  }

  private async commitGroup(batch: Pending[]): Promise<RecordOutcome[]> {
    const queue = this.options.queue;
    if (queue.inlineIngestEnqueue) return this.commitGroupInOneStatement(batch, queue.inlineIngestEnqueue.bind(queue));
    return this.commitGroupInTransaction(batch);
  }

  /**
   * The common case in one round trip: the first message of each key that fits (inbox.fitsOneStatement) is stored
   * with its ingest job by one autocommitted statement, durable when it returns like any commit. Whatever that
   * statement did not store (a key an earlier message holds, a second message of one key in the group, a message
   * refused at intake) then goes through the transaction below, which tells duplicates from conflicts and stores
   * rejected rows; the rows stored first are earlier messages to it, as they would be in a later group.
   */
  private async commitGroupInOneStatement(batch: Pending[], jobs: NonNullable<JobQueue['inlineIngestEnqueue']>): Promise<RecordOutcome[]> {
    const outcomes: Array<RecordOutcome | undefined> = new Array(batch.length);
    const seen = new Set<string>();
    const first: number[] = [];
    batch.forEach((p, i) => {
      const input = p.prepared.input;
      const key = inbox.keyOf(input);
      if (!inbox.fitsOneStatement(input) || seen.has(key)) return;
      seen.add(key);
      first.push(i);
    });
    if (first.length > 0) {
      const ids = await inbox.recordAcceptedWithJobs(this.options.pool, first.map((i) => batch[i]!.prepared.input), jobs);
      ids.forEach((id, n) => {
        if (id !== undefined) outcomes[first[n]!] = { kind: 'stored', id };
      });
    }
    const rest = batch.map((_, i) => i).filter((i) => outcomes[i] === undefined);
    if (rest.length > 0) {
      const recorded = await this.commitGroupInTransaction(rest.map((i) => batch[i]!));
      rest.forEach((i, n) => (outcomes[i] = recorded[n]));
    }
    return outcomes as RecordOutcome[];
  }

  private async commitGroupInTransaction(batch: Pending[]): Promise<RecordOutcome[]> {
    const queue = this.options.queue;
    const outcomes = await withTransaction(this.options.pool, async (client) => {
      const recorded = await inbox.recordMessages(client, batch.map((p) => p.prepared.input), (input) => this.conflictAck(batch, input));
      // A queue in the same database takes the jobs in this transaction: no window where a message is stored
      // without its job, and one commit for both.
      if (queue.enqueueInTransaction) await queue.enqueueInTransaction(client, INGEST_QUEUE, ingestJobs(recorded));
      return recorded;
    });
    if (!queue.enqueueInTransaction) await this.enqueueStored(outcomes);
    return outcomes;
  }

  private conflictAck(batch: Pending[], input: InboxInput): { ack: Buffer; ackCode: string } {
    const prepared = batch.find((p) => p.prepared.input === input)!.prepared;
    const ackCode = ackCodeFor('ANCHORLINE_ERR_DUPLICATE_CONTROL_ID', prepared.enhanced);
    return { ack: this.ackBytes(prepared.header, prepared.charset, ackCode, duplicateError()), ackCode };
  }

  /**
   * Committed messages go to the queue. A failure here loses nothing (the sweeper re-enqueues unfinished inbox rows),
   * so it is logged and the senders still get their ACKs: their messages are safe.
   */
  private async enqueueStored(outcomes: RecordOutcome[]): Promise<void> {
    const jobs = ingestJobs(outcomes);
    if (jobs.length === 0) return;
    try {
      await this.options.queue.enqueue(INGEST_QUEUE, jobs);
    } catch (error) {
      this.options.log.warn({ count: jobs.length, err: toAnchorlineError(error).code }, 'intake: enqueue failed; the sweeper will re-enqueue');
    }
  }
}

function ingestJobs(outcomes: RecordOutcome[]): EnqueueJob[] {
  return outcomes.filter((o) => o.kind === 'stored').map((o) => ingestJob(o.id));
}

function duplicateError(): AnchorlineError {
  return new AnchorlineError('ANCHORLINE_ERR_DUPLICATE_CONTROL_ID', 'MSH-10 was already used by a different message from this sender', { location: 'MSH-10' });
}

/** The sender half of the resend key: MSH-3 and MSH-4 as sent. */
export function senderKey(header: MshHeader): string {
  return `${header.sendingApplication}|${header.sendingFacility}`;
}

/**
 * The ingest job: one inbox message -> FHIR resources, in one transaction.
 *
 * The job carries only the inbox id. The handler locks the inbox row, and does nothing when the message is already
 * finished, so a job delivered twice (a worker killed after commit, the sweeper re-enqueueing, a duplicate job) has
 * one effect. Within the transaction: decode by MSH-18, parse, map, merge each draft into the current version of its
 * resource, write the new versions, and mark the message done, all or nothing.
 *
 * Permanent failures (the message cannot be mapped) mark the message failed with its error code, and are not
 * retried. Anything else (database unavailable, deadlock) is thrown, and the queue retries it with backoff.
 *
 * The transaction commits with synchronous_commit off. That is safe here: the raw message was committed durably at
 * intake, and an asynchronously committed mapping can only be lost together with the message's `done` state (WAL is
 * replayed in order), in which case the sweeper maps it again. Any later synchronous commit flushes it anyway.
 */
import type pg from 'pg';
import { AnchorlineError, isAnchorlineError, ackCodeFor } from '../errors/index.ts';
import type { Logger } from '../config/logger.ts';
import { buildAck, isEnhancedMode, type AckCode } from '../adapters/hl7v2/ack.ts';
import { decodeHl7Bytes, encodeHl7Text } from '../adapters/hl7v2/charset.ts';
import { newAckControlId } from '../adapters/hl7v2/intake.ts';
import { MAPPING_DONE_CHANNEL } from '../adapters/hl7v2/mapping-waiter.ts';
import { parseHl7 } from '../adapters/hl7v2/parse.ts';
import type { MshHeader } from '../adapters/hl7v2/header.ts';
import { mapHl7Message, mergeDraft, type Hl7MappingOptions, type ResourceDraft } from '../mappers/index.ts';
import { inbox, resources, withTransaction } from '../store/index.ts';
import type { JobContext, JobData, JobHandler } from './queue/index.ts';

export interface IngestOptions {
  pool: pg.Pool;
  log: Logger;
  mapping: Hl7MappingOptions;
  /** Store the ACK after mapping and notify waiters (original-mode messages when ackMode is 'afterMapping'). */
  ackAfterMapping: boolean;
  defaultCharset: string;
  engineApplication: string;
  /** Attempts after which a still-failing message is marked failed instead of thrown back to the queue. */
  maxAttempts: number;
}

export interface IngestOutcome {
  status: 'mapped' | 'failed' | 'skipped';
  resources: Array<{ resourceType: string; id: string; versionId: number }>;
}

/** Maps one message. Exported for the CLI and tests; the queue uses createIngestHandler. */
export async function ingestMessage(options: IngestOptions, messageId: number, attempt = 1): Promise<IngestOutcome> {
  return withTransaction(
    options.pool,
    async (client) => {
      const message = await inbox.lockMessage(client, messageId);
      if (!message || message.disposition !== 'accepted' || message.state !== 'queued') return { status: 'skipped', resources: [] };

      let header: MshHeader | undefined;
      let charset = 'utf-8';
      let drafts: ResourceDraft[];
      try {
        const decoded = decodeHl7Bytes(message.raw, options.defaultCharset);
        header = decoded.header;
        charset = decoded.charset;
        drafts = mapHl7Message(parseHl7(decoded.text), options.mapping).drafts;
      } catch (error) {
        if (!isAnchorlineError(error) || error.retryable) throw error;
        const ack = wantsAck(options, header) ? ackFor(options, header, charset, error) : undefined;
        await inbox.markFailed(client, messageId, error.code, error.detail ?? null, ack);
        await notifyDone(client, options, messageId);
        options.log.warn({ messageId, code: error.code, location: error.location }, 'ingest: message could not be mapped');
        return { status: 'failed', resources: [] };
      }

      // One lock order for every transaction, so two messages touching the same resources cannot deadlock.
      const ordered = [...drafts].sort((a, b) => `${a.resourceType}/${a.id}`.localeCompare(`${b.resourceType}/${b.id}`));
      const written: IngestOutcome['resources'] = [];
      for (const draft of ordered) {
        const current = await resources.lockCurrent(client, draft.resourceType, draft.id);
        const merged = mergeDraft(current?.content, draft);
        const stored = await resources.writeVersion(client, current, merged, messageId);
        written.push({ resourceType: stored.resourceType, id: stored.id, versionId: stored.versionId });
      }
      const ack = wantsAck(options, header) ? ackFor(options, header, charset) : undefined;
      await inbox.markDone(client, messageId, ack);
      await notifyDone(client, options, messageId);
      options.log.debug({ messageId, attempt, resources: written.length }, 'ingest: message mapped');
      return { status: 'mapped', resources: written };
    },
    { synchronousCommit: false },
  );
}

function wantsAck(options: IngestOptions, header: MshHeader | undefined): boolean {
  return options.ackAfterMapping && !isEnhancedMode(header);
}

function ackFor(options: IngestOptions, header: MshHeader | undefined, charset: string, error?: AnchorlineError): { ack: Buffer; ackCode: AckCode } {
  const ackCode: AckCode = error ? ackCodeFor(error.code, false) : 'AA';
  const text = buildAck({
    header,
    ackCode,
    ackControlId: newAckControlId(),
    timestamp: new Date(),
    timeZone: options.mapping.timeZone,
    engineApplication: options.engineApplication,
    ...(error ? { error: { code: error.code, ...(error.location ? { location: error.location } : {}), ...(error.detail ? { detail: error.detail } : {}) } } : {}),
  });
  return { ack: encodeHl7Text(text, charset), ackCode };
}

async function notifyDone(client: pg.PoolClient, options: IngestOptions, messageId: number): Promise<void> {
  // NOTIFY serialises committing transactions on a global lock, so it is only sent when someone may be waiting.
  if (options.ackAfterMapping) await client.query('SELECT pg_notify($1, $2)', [MAPPING_DONE_CHANNEL, String(messageId)]);
}

export function createIngestHandler(options: IngestOptions): JobHandler {
  return async (data: JobData, ctx: JobContext) => {
    const messageId = Number(data.id);
    if (!Number.isSafeInteger(messageId)) throw new AnchorlineError('ANCHORLINE_ERR_INVALID_REQUEST', 'ingest job without a message id');
    try {
      await ingestMessage(options, messageId, ctx.attempt);
    } catch (error) {
      const code = isAnchorlineError(error) ? error.code : 'ANCHORLINE_ERR_INTERNAL';
      options.log.warn({ messageId, attempt: ctx.attempt, code, err: (error as Error).message }, 'ingest: attempt failed');
      if (ctx.attempt >= options.maxAttempts) {
        // Out of attempts: record the failure on the message itself, where staff look, and end the job. If even that
        // write fails, the job fails and the sweeper brings the message back later.
        await inbox.markFailed(options.pool, messageId, code, 'processing failed after repeated attempts');
        return;
      }
      await inbox.noteAttempt(options.pool, messageId, code).catch(() => undefined);
      throw error;
    }
  };
}

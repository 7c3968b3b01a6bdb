/**
 * The message browser and dead letters (admin scope), what the web console's Messages and Dead letters views read:
 *   GET  /admin/messages                 search envelopes (never raw bodies), newest first, paged
 *   GET  /admin/messages/{id}            one message: envelope, error, ACK, raw bytes (base64) and decoded text,
 *                                        and the resource versions it wrote
 *   POST /admin/messages/reprocess       body {"ids": [..]}: map accepted messages again
 *
 * Reprocessing sets accepted messages back to `queued` (attempts and error cleared) and enqueues them on the ingest
 * queue; the ingest job re-reads each message, so it runs through the same idempotent path as a new one, with the
 * mapping config active now. Messages rejected at intake (malformed, unsupported type, bad charset) and control-id
 * conflicts are not reprocessed: the sender was told AR/CR and resends; the answer lists them as skipped with the
 * reason. Failed and done messages alike may be reprocessed (done ones after a config change, to remap them).
 */
import type { FastifyInstance } from 'fastify';
// The swagger plugin's FastifySchema fields (summary, tags, hide) that the generated API docs read.
import type {} from '@fastify/swagger';
import type pg from 'pg';
import { decodeHl7Bytes } from '../formats/hl7v2/index.ts';
import { errorFields, type Logger } from '../config/logger.ts';
import { AnchorlineError } from '../errors/index.ts';
import { auditTrail, inbox, messageSearch, withTransaction, type InboxMessage, type InboxState } from '../store/index.ts';
import { auditActor } from './fhir.ts';
import { parsePositiveId } from './params.ts';
import { INGEST_QUEUE, ingestJob, type JobQueue } from '../workers/index.ts';

export interface AdminMessageOptions {
  pool: pg.Pool;
  log: Logger;
  /** The ingest queue reprocessed messages are enqueued on; absent: the sweeper picks them up (they are queued). */
  queue?: JobQueue;
  /** Charset of HL7 v2 messages without MSH-18 (mllp.defaultCharset), for the decoded text. */
  defaultCharset: string;
}

/** Most messages in one page of a search. */
export const MAX_PAGE_SIZE = 500;
/** Most messages one reprocess request may name. */
export const MAX_REPROCESS_IDS = 1000;

const HL7_PROTOCOLS = new Set(['hl7v2-mllp', 'hl7v2-http']);
const SEARCH_PARAMETERS = ['sender', 'controlId', 'state', 'protocol', 'errorCode', 'messageType', 'warnings', 'receivedFrom', 'receivedTo', 'limit', 'offset'] as const;
type SearchQuery = Partial<Record<(typeof SEARCH_PARAMETERS)[number], string>>;

const TAGS = ['admin: messages'];

export function registerAdminMessageRoutes(app: FastifyInstance, options: AdminMessageOptions): void {
  const { pool, log } = options;

  app.get<{ Querystring: SearchQuery }>(
    '/admin/messages',
    {
      config: { scope: 'admin' },
      schema: {
        summary: 'Search inbox messages (envelopes only), newest first',
        description:
          'Filters combine with AND. `sender` matches MSH-3|MSH-4 as stored, or either part alone; `state` is one state or a comma-separated list ' +
          '(queued, done, failed, rejected); `messageType` is `ADT^A01` or `ADT` for every trigger; `receivedFrom` (inclusive) and `receivedTo` ' +
          '(exclusive) are ISO 8601 times. Unknown parameters are refused.',
        tags: TAGS,
        querystring: {
          type: 'object',
          properties: {
            sender: { type: 'string', minLength: 1 },
            controlId: { type: 'string', minLength: 1 },
            state: { type: 'string', minLength: 1, description: 'queued, done, failed, rejected; comma-separated for several' },
            protocol: { type: 'string', minLength: 1, description: 'hl7v2-mllp, hl7v2-http, cda, dicom' },
            errorCode: { type: 'string', minLength: 1 },
            messageType: { type: 'string', minLength: 1 },
            warnings: { type: 'string', enum: ['true', 'false'], description: 'true: only messages mapped with warnings (mapping issues of severity warning or error)' },
            receivedFrom: { type: 'string', minLength: 1, description: 'ISO 8601 time, inclusive' },
            receivedTo: { type: 'string', minLength: 1, description: 'ISO 8601 time, exclusive' },
            limit: { type: 'string', pattern: '^[0-9]+$', description: `page size, 1-${MAX_PAGE_SIZE}, default 50` },
            offset: { type: 'string', pattern: '^[0-9]+$', description: 'messages to skip, default 0' },
          },
        },
      },
    },
    async (request) => {
      const query = request.query;
      for (const name of Object.keys(query)) {
        if (!(SEARCH_PARAMETERS as readonly string[]).includes(name)) throw invalid(`unknown parameter ${name} (supported: ${SEARCH_PARAMETERS.join(', ')})`, name);
      }
      const filter: messageSearch.MessageFilter = {};
      for (const name of ['sender', 'controlId', 'protocol', 'errorCode', 'messageType'] as const) {
        const value = single(query, name);
        if (value !== undefined) filter[name] = value;
      }
      const states = single(query, 'state');
      if (states !== undefined) {
        const list = states.split(',').map((s) => s.trim()).filter((s) => s !== '');
        for (const state of list) {
          if (!(messageSearch.INBOX_STATES as readonly string[]).includes(state)) throw invalid(`state must be one of ${messageSearch.INBOX_STATES.join(', ')}`, 'state');
        }
        filter.states = list as InboxState[];
      }
      const warnings = single(query, 'warnings');
      if (warnings !== undefined) {
        if (warnings !== 'true' && warnings !== 'false') throw invalid('warnings must be true or false', 'warnings');
        filter.withWarnings = warnings === 'true';
      }
      const from = time(single(query, 'receivedFrom'), 'receivedFrom');
      const to = time(single(query, 'receivedTo'), 'receivedTo');
      if (from) filter.receivedFrom = from;
      if (to) filter.receivedTo = to;
      const limit = count(single(query, 'limit'), 'limit', 50);
      if (limit < 1 || limit > MAX_PAGE_SIZE) throw invalid(`limit must be 1-${MAX_PAGE_SIZE}`, 'limit');
      const offset = count(single(query, 'offset'), 'offset', 0);
      const page = await messageSearch.searchMessages(pool, filter, { limit, offset });
      return {
        total: page.total,
        limit,
        offset,
        messages: page.messages.map((m) => ({ ...m, receivedAt: m.receivedAt.toISOString(), processedAt: m.processedAt?.toISOString() ?? null })),
      };
    },
  );

  app.get<{ Params: { id: string } }>(
    '/admin/messages/:id',
    {
      config: { scope: 'admin' },
      schema: {
        summary: 'One inbox message: envelope, error, ACK, raw bytes and decoded text, resources written',
        tags: TAGS,
        params: { type: 'object', properties: { id: { type: 'string' } }, required: ['id'] },
      },
    },
    async (request) => {
      const id = parsePositiveId(request.params.id);
      if (id === undefined) throw new AnchorlineError('ANCHORLINE_ERR_INVALID_REQUEST', 'message id must be a positive integer in decimal digits', { location: 'id' });
      // The raw message is patient data: reading it is audited in the same transaction (store/audit-trail.ts).
      const { message, written, mappingIssues } = await withTransaction(pool, async (client) => {
        const message = await inbox.getMessage(client, id);
        if (!message) throw new AnchorlineError('ANCHORLINE_ERR_NOT_FOUND', `message ${id} does not exist`);
        const written = await messageSearch.resourcesFromMessage(client, message.id);
        const mappingIssues = await inbox.getMappingIssues(client, message.id);
        await auditTrail.recordRead(client, {
          interaction: 'read',
          actor: auditActor(request),
          returned: written,
          patients: written.filter((r) => r.resourceType === 'Patient').map((r) => `Patient/${r.id}`),
          description: `raw inbound message ${message.id}`,
        });
        return { message, written, mappingIssues };
      });
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
        // What the mapping could not map as sent, field by field (mappers/issues.ts); [] when everything mapped.
        mappingIssues,
        mappingWarnings: message.mappingWarnings,
        ackCode: message.ackCode,
        charset: message.charset,
        rawSha256: message.rawSha256.toString('hex'),
        rawSize: message.rawSize,
        rawBase64: message.raw.toString('base64'),
        receivedAt: message.receivedAt.toISOString(),
        processedAt: message.processedAt?.toISOString() ?? null,
        // Added for the console: what a person reads, beside the exact bytes above.
        text: messageText(message, options.defaultCharset),
        ackText: message.ack ? message.ack.toString('latin1') : null,
        blobSha256: message.blobSha256 ? message.blobSha256.toString('hex') : null,
        resources: written,
      };
    },
  );

  app.post<{ Body: { ids?: unknown } }>(
    '/admin/messages/reprocess',
    {
      config: { scope: 'admin' },
      schema: {
        summary: 'Map accepted messages again with the active mapping configs',
        description:
          'Sets each accepted message back to queued (attempts and error cleared) and enqueues it on the ingest queue. Messages rejected at intake and ' +
          'control-id conflicts are skipped (reason rejected-at-intake or conflict): the sender resends those.',
        tags: TAGS,
        body: {
          type: 'object',
          properties: { ids: { type: 'array', items: { type: 'integer', minimum: 1 }, minItems: 1, maxItems: MAX_REPROCESS_IDS } },
          required: ['ids'],
        },
      },
    },
    async (request) => {
      const ids = request.body?.ids;
      if (!Array.isArray(ids) || ids.length === 0 || ids.length > MAX_REPROCESS_IDS || !ids.every((id) => Number.isSafeInteger(id) && (id as number) > 0)) {
        throw invalid(`send {"ids": [message ids]}, 1-${MAX_REPROCESS_IDS} positive integers`, 'ids');
      }
      const outcome = await messageSearch.requeueMessages(pool, ids as number[]);
      let enqueued = false;
      if (options.queue && outcome.requeued.length > 0) {
        try {
          await options.queue.enqueue(INGEST_QUEUE, outcome.requeued.map(ingestJob));
          enqueued = true;
        } catch (error) {
          // They are queued in the inbox: the sweeper enqueues them within its interval.
          log.warn({ count: outcome.requeued.length, ...errorFields(error) }, 'reprocess: enqueue failed; the sweeper will pick the messages up');
        }
      }
      log.info({ requeued: outcome.requeued.length, skipped: outcome.skipped.length, firstId: outcome.requeued[0] }, 'admin: messages sent back to be mapped again');
      return { requeued: outcome.requeued, skipped: outcome.skipped, enqueued };
    },
  );
}

/**
 * The message as text: HL7 v2 decoded by its MSH-18 as ingest does (latin1 if the bytes do not decode, so that a
 * broken message can still be inspected), C-CDA as UTF-8; null for DICOM (its raw bytes are a binary header).
 */
function messageText(message: InboxMessage, defaultCharset: string): string | null {
  if (HL7_PROTOCOLS.has(message.protocol)) {
    try {
      return decodeHl7Bytes(message.raw, defaultCharset).text;
    } catch {
      return message.raw.toString('latin1');
    }
  }
  if (message.protocol === 'cda') return new TextDecoder('utf-8').decode(message.raw);
  return null;
}

function single(query: SearchQuery, name: keyof SearchQuery): string | undefined {
  const value = query[name] as unknown;
  if (value === undefined) return undefined;
  if (Array.isArray(value)) throw invalid(`${name} may be given once`, name);
  return String(value);
}

function time(value: string | undefined, name: string): Date | undefined {
  if (value === undefined) return undefined;
  const at = new Date(value);
  if (!/^\d{4}-\d{2}-\d{2}/.test(value) || Number.isNaN(at.getTime())) throw invalid(`${name} must be an ISO 8601 time (2026-11-21T09:30:00Z)`, name);
  return at;
}

function count(value: string | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (!/^\d{1,9}$/.test(value)) throw invalid(`${name} must be a non-negative integer`, name);
  return Number(value);
}

function invalid(detail: string, location?: string): AnchorlineError {
  return new AnchorlineError('ANCHORLINE_ERR_INVALID_REQUEST', detail, location ? { location } : undefined);
}

/**
 * The inbox as operators see it: search over message envelopes, the resources a message produced, and sending
 * messages back to be mapped again (the console's message browser and dead letters, /admin/messages).
 *
 * Contract:
 * - `searchMessages` returns envelopes only, never raw bytes or ACKs, newest first (by id, which follows arrival
 *   order), with the total number of matches. Every filter is optional; they combine with AND.
 * - `requeueMessages` sets accepted messages (any state) back to `queued` with attempts, error and processed time
 *   cleared, in one statement, and returns which ids it requeued and why each other id was left alone. It does not
 *   enqueue: the caller enqueues the returned ids after the commit (the sweeper re-enqueues them anyway if that
 *   is lost, since they are queued and older than its staleAfterMs). The ingest job is idempotent and re-reads the
 *   message, so a message requeued twice, or requeued while its job is running, is mapped once per job with one
 *   effect each. Rejected and conflict rows are never requeued: they were refused at intake, the sender got AR/CR
 *   and is expected to resend; making one accepted could collide with a later accepted message of the same control
 *   id (the unique index on (sender, control_id) of accepted messages). Nor are the bodies of FHIR API writes
 *   (protocol fhir-rest, store/consents.ts): they were stored as written, and no worker maps them.
 */
import type { Queryable } from './db.ts';
import { SUMMARY_COLUMNS, toSummary, type Disposition, type InboxState, type MessageSummary } from './inbox.ts';

export const INBOX_STATES: readonly InboxState[] = ['queued', 'done', 'failed', 'rejected'];

export interface MessageFilter {
  /** MSH-3|MSH-4 as stored: a value without '|' matches either part (application or facility) exactly. */
  sender?: string;
  controlId?: string;
  states?: InboxState[];
  protocol?: string;
  errorCode?: string;
  /** The message type as stored ('ADT^A01'); a value without '^' matches every trigger event of that type. */
  messageType?: string;
  receivedFrom?: Date;
  /** Exclusive. */
  receivedTo?: Date;
  /** Only messages mapped with warnings (issues of severity warning or error on a done message). */
  withWarnings?: boolean;
}

/** A message as a search lists it. */
export type MessageEnvelopeRow = MessageSummary;

export interface MessagePage {
  total: number;
  messages: MessageEnvelopeRow[];
}

function whereClause(filter: MessageFilter): { sql: string; values: unknown[] } {
  const conditions: string[] = [];
  const values: unknown[] = [];
  const add = (sql: (n: string) => string, value: unknown): void => {
    values.push(value);
    conditions.push(sql(`$${values.length}`));
  };
  if (filter.sender !== undefined) {
    // Stored as 'MSH-3|MSH-4'; an operator usually knows one of them.
    if (filter.sender.includes('|')) add((n) => `sender = ${n}`, filter.sender);
    else add((n) => `(sender = ${n} OR split_part(sender, '|', 1) = ${n} OR split_part(sender, '|', 2) = ${n})`, filter.sender);
  }
  if (filter.controlId !== undefined) add((n) => `control_id = ${n}`, filter.controlId);
  if (filter.states !== undefined && filter.states.length > 0) add((n) => `state = ANY(${n}::text[])`, filter.states);
  if (filter.protocol !== undefined) add((n) => `protocol = ${n}`, filter.protocol);
  if (filter.errorCode !== undefined) add((n) => `error_code = ${n}`, filter.errorCode);
  if (filter.withWarnings === true) conditions.push('mapping_warnings > 0');
  if (filter.messageType !== undefined) {
    if (filter.messageType.includes('^')) add((n) => `message_type = ${n}`, filter.messageType);
    else add((n) => `split_part(message_type, '^', 1) = ${n}`, filter.messageType);
  }
  if (filter.receivedFrom !== undefined) add((n) => `received_at >= ${n}`, filter.receivedFrom);
  if (filter.receivedTo !== undefined) add((n) => `received_at < ${n}`, filter.receivedTo);
  return { sql: conditions.length > 0 ? `WHERE ${conditions.join(' AND ')}` : '', values };
}

/** One page of matching envelopes, newest first. */
export async function searchMessages(db: Queryable, filter: MessageFilter, page: { limit: number; offset: number }): Promise<MessagePage> {
  const where = whereClause(filter);
  const [count, rows] = await Promise.all([
    db.query<{ total: string }>(`SELECT count(*) AS total FROM inbox_message ${where.sql}`, where.values),
    db.query(
      `SELECT ${SUMMARY_COLUMNS}
         FROM inbox_message ${where.sql} ORDER BY id DESC LIMIT $${where.values.length + 1} OFFSET $${where.values.length + 2}`,
      [...where.values, page.limit, page.offset],
    ),
  ]);
  return {
    total: Number(count.rows[0]?.total ?? 0),
    messages: rows.rows.map(toSummary),
  };
}

/** A resource version a message wrote. */
export interface WrittenVersion {
  resourceType: string;
  id: string;
  versionId: number;
  current: boolean;
}

/** The record versions a message wrote, in the order they were written (not the AuditEvent of its import). */
export async function resourcesFromMessage(db: Queryable, messageId: number): Promise<WrittenVersion[]> {
  const result = await db.query<{ resource_type: string; id: string; version_id: number; current: boolean }>(
    `SELECT h.resource_type, h.id, h.version_id, (r.version_id = h.version_id) AS current
       FROM fhir_resource_history h LEFT JOIN fhir_current r ON r.resource_type = h.resource_type AND r.id = h.id
      WHERE h.source_message_id = $1 AND h.resource_type <> 'AuditEvent' ORDER BY h.last_updated, h.resource_type, h.id, h.version_id`,
    [messageId],
  );
  return result.rows.map((row) => ({ resourceType: row.resource_type, id: row.id, versionId: row.version_id, current: row.current === true }));
}

/** `api-write`: a request body that wrote a resource through the FHIR API (protocol fhir-rest); nothing maps it. */
export type RequeueSkipReason = 'not-found' | 'rejected-at-intake' | 'conflict' | 'api-write';

export interface RequeueOutcome {
  requeued: number[];
  skipped: Array<{ id: number; reason: RequeueSkipReason }>;
}

/** Sets accepted messages back to queued (see the contract above). Ids may repeat; each counts once. */
export async function requeueMessages(db: Queryable, ids: readonly number[]): Promise<RequeueOutcome> {
  const unique = [...new Set(ids)];
  if (unique.length === 0) return { requeued: [], skipped: [] };
  const updated = await db.query<{ id: string }>(
    `UPDATE inbox_message SET state = 'queued', attempts = 0, attempts_started = 0, error_code = NULL, error_detail = NULL, processed_at = NULL
      WHERE id = ANY($1::bigint[]) AND disposition = 'accepted' AND protocol <> 'fhir-rest' RETURNING id`,
    [unique],
  );
  const requeued = new Set(updated.rows.map((row) => Number(row.id)));
  const others = unique.filter((id) => !requeued.has(id));
  const skipped: RequeueOutcome['skipped'] = [];
  if (others.length > 0) {
    const found = await db.query<{ id: string; disposition: Disposition; protocol: string }>('SELECT id, disposition, protocol FROM inbox_message WHERE id = ANY($1::bigint[])', [others]);
    const rows = new Map(found.rows.map((row) => [Number(row.id), row]));
    for (const id of others) {
      const row = rows.get(id);
      skipped.push({ id, reason: row === undefined ? 'not-found' : row.protocol === 'fhir-rest' ? 'api-write' : row.disposition === 'conflict' ? 'conflict' : 'rejected-at-intake' });
    }
  }
  return { requeued: unique.filter((id) => requeued.has(id)).sort((a, b) => a - b), skipped };
}

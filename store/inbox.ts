/**
 * The message store ("inbox"): every inbound message, as raw bytes with their SHA-256, committed before it is
 * acknowledged.
 *
 * Contract:
 * - `recordMessages` writes a batch in ONE transaction, so a group of senders waiting on the same commit share one
 *   fsync. When it returns, every returned outcome is durable; when it throws, nothing of the batch was written and
 *   no positive ACK may be sent.
 * - An accepted message is unique per (sender, control id). A later message with the same key and identical bytes
 *   (same SHA-256, and the same blob SHA-256 where the raw bytes are only the message's header) is a duplicate:
 *   nothing is written and the caller gets the stored ACK of the original. The same
 *   key with different bytes is a conflict: the new bytes are kept as a `conflict` row for review and the original is
 *   untouched. The same holds within one batch: the first occurrence is the original.
 * - Rejected messages (malformed, unsupported, bad charset) are kept as `rejected` rows; they never block a later
 *   valid message with the same key.
 * - A retried call may assume nothing was written by a failed earlier call (all-or-nothing).
 */
import type pg from 'pg';
import { AnchorlineError } from '../errors/index.ts';
import type { Queryable } from './db.ts';
import { keyringOf, messageKeyAad, openRawRows, RAW_KEY_COLUMNS, rawAad, seal, type MessageKey, type PatientKey, type RawRow } from './keys.ts';
import { blindIndexOf, type BlindIndex } from './blind-index.ts';

export type Disposition = 'accepted' | 'rejected' | 'conflict';

/** NOTIFY channel on which a message id is announced when the ingest worker has finished it (ACK after mapping). */
export const MESSAGE_DONE_CHANNEL = 'anchorline_message_done';
export type InboxState = 'queued' | 'done' | 'failed' | 'rejected';

/** What is known of a message as it arrived, stored with it. */
export interface MessageEnvelope {
  protocol: string;
  /** Where it came from: listener and peer address. */
  source: string;
  /**
   * Who sent it, the first half of the resend key: `MSH-3|MSH-4` as sent for HL7 v2 ('' when the header could not be
   * read); for C-CDA, cdaSenderKey's `cda:` forms; for DICOM, the calling AE title ('' over STOW-RS).
   */
  sender: string;
  controlId: string | null;
  messageType: string | null;
  messageTime: string | null;
  raw: Buffer;
  rawSha256: Buffer;
  /** Size of the whole message as received; larger than raw.length when only a prefix was kept. */
  rawSize: number;
  charset: string | null;
  /**
   * SHA-256 of the whole message kept in the blob store (a DICOM instance, pixel data included), for messages whose
   * raw bytes are only their header; null or absent otherwise.
   */
  blobSha256?: Buffer | null | undefined;
  /**
   * SHA-256 of the blob's file when it is sealed under the message's key (store/instance-blobs.ts): its name in the
   * blob store. Null or absent when the blob is stored plain (under blobSha256), or there is none.
   */
  blobSealedSha256?: Buffer | null | undefined;
}

export interface InboxInput extends MessageEnvelope {
  disposition: 'accepted' | 'rejected';
  errorCode?: string | undefined;
  errorDetail?: string | undefined;
  /** The ACK to store with the message (what a resend will get); null when it is decided later (after mapping). */
  ack: Buffer | null;
  ackCode: string | null;
  /**
   * The message key drawn before the row, when the message's blob was sealed under it at intake
   * (store/instance-blobs.ts): the raw bytes are sealed under this key instead of a fresh one, so that the worker's
   * re-wrap of the one key carries both. Only in memory, for recordMessages; never stored unwrapped or logged.
   */
  messageKey?: MessageKey | undefined;
}

export type RecordOutcome =
  | { kind: 'stored'; id: number }
  | { kind: 'rejected'; id: number }
  | { kind: 'duplicate'; id: number; ack: Buffer | null; ackCode: string | null; state: InboxState }
  | { kind: 'conflict'; id: number; originalId: number };

/**
 * The ACK a conflict row stores, built by the caller (it knows the message's delimiters and charset); null for
 * protocols that answer without a stored acknowledgment (DICOM).
 */
export type ConflictAck = (input: InboxInput) => { ack: Buffer | null; ackCode: string | null };

const COLUMNS = `protocol, source, sender, control_id, message_type, message_time, raw, raw_sha256, raw_size,
  raw_truncated, charset, disposition, state, error_code, error_detail, ack, ack_code, blob_sha256, raw_key, raw_kek, blob_sealed_sha256`;
const UNNEST_TYPES = ['text', 'text', 'text', 'text', 'text', 'text', 'bytea', 'bytea', 'int8', 'bool', 'text', 'text', 'text', 'text', 'text', 'bytea', 'text', 'bytea', 'bytea', 'text', 'bytea'];
const unnestOf = (types: string[]): string => `SELECT * FROM unnest(${types.map((t, i) => `$${i + 1}::${t}[]`).join(', ')})`;

interface Row {
  input: InboxInput;
  disposition: Disposition;
  state: InboxState;
  errorCode: string | null;
  errorDetail: string | null;
  ack: Buffer | null;
  ackCode: string | null;
}

/**
 * PostgreSQL text cannot hold NUL. Header fields of a rejected message are whatever the sender put there, and one
 * NUL must not fail the whole group commit it shares with other senders' messages; the raw bytes keep the original.
 */
function pgText(value: string | null): string | null {
  return value === null ? null : value.replaceAll('\u0000', '\uFFFD');
}

/**
 * The column arrays of rows to insert. With a sealing keyring (store/keys.ts) each message's bytes are sealed under a
 * fresh key of its own, wrapped by the master key: the patient is not known at intake (only the header is read), so
 * the worker re-wraps that key under the patient's key once it has mapped the message, without rewriting the bytes.
 * A message whose blob was sealed at intake brings its key (InboxInput.messageKey), and its bytes are sealed under
 * that one, whether or not this pool seals: the blob opens only with it.
 */
async function columns(db: Queryable, rows: Row[]): Promise<unknown[]> {
  const keyring = keyringOf(db);
  const raws: Buffer[] = [];
  const rawKeys: Array<Buffer | null> = [];
  const rawKeks: Array<string | null> = [];
  for (const { input } of rows) {
    const messageKey = input.messageKey ?? (keyring?.sealing ? await keyring.newMessageKey() : undefined);
    if (messageKey !== undefined) {
      raws.push(seal(messageKey.key, input.raw, rawAad(input.rawSha256)));
      rawKeys.push(messageKey.wrapped);
      rawKeks.push(messageKey.kekId);
    } else {
      raws.push(input.raw);
      rawKeys.push(null);
      rawKeks.push(null);
    }
  }
  return [
    rows.map((r) => r.input.protocol),
    rows.map((r) => pgText(r.input.source)),
    rows.map((r) => pgText(r.input.sender)),
    rows.map((r) => pgText(r.input.controlId)),
    rows.map((r) => pgText(r.input.messageType)),
    rows.map((r) => pgText(r.input.messageTime)),
    raws,
    rows.map((r) => r.input.rawSha256),
    rows.map((r) => r.input.rawSize),
    rows.map((r) => r.input.raw.length < r.input.rawSize),
    rows.map((r) => r.input.charset),
    rows.map((r) => r.disposition),
    rows.map((r) => r.state),
    rows.map((r) => r.errorCode),
    rows.map((r) => r.errorDetail),
    rows.map((r) => r.ack),
    rows.map((r) => r.ackCode),
    rows.map((r) => r.input.blobSha256 ?? null),
    rawKeys,
    rawKeks,
    rows.map((r) => r.input.blobSealedSha256 ?? null),
  ];
}

/** The resend key of a message: its sender and control id, as the unique index pairs them. */
export function keyOf(input: InboxInput): string {
  return `${input.sender}\u0000${input.controlId ?? ''}`;
}

function acceptedRow(input: InboxInput): Row {
  return { input, disposition: 'accepted', state: 'queued', errorCode: null, errorDetail: null, ack: input.ack, ackCode: input.ackCode };
}

interface Original {
  id: number;
  sha: Buffer;
  blobSha: Buffer | null;
  /** The message was erased: sha and blobSha are keyed digests of the hashes (BlindIndex.erasedDigest). */
  keyed: boolean;
  ack: Buffer | null;
  ackCode: string | null;
  state: InboxState;
}

/**
 * A resend: the same raw bytes, and the same whole message where only its header is raw (a DICOM instance). An erased
 * original keeps keyed digests of its hashes; the input's hashes are compared through the same key.
 */
function sameBytes(original: Original, input: InboxInput, index: BlindIndex | undefined): boolean {
  const digest = (sha: Buffer): Buffer => (original.keyed ? index!.erasedDigest(sha) : sha);
  const blob = input.blobSha256 ?? null;
  return original.sha.equals(digest(input.rawSha256)) && (original.blobSha === null ? blob === null : blob !== null && original.blobSha.equals(digest(blob)));
}

export async function recordMessages(client: pg.PoolClient, inputs: InboxInput[], conflictAck: ConflictAck): Promise<RecordOutcome[]> {
  const outcomes: Array<RecordOutcome | undefined> = new Array(inputs.length);
  if (inputs.length === 0) return [];

  // The first accepted message of each key in the batch is a candidate; later ones resolve against it.
  const firstByKey = new Map<string, number>();
  const candidates: number[] = [];
  const laterInBatch: number[] = [];
  const plain: Array<{ index: number; row: Row }> = [];
  inputs.forEach((input, i) => {
    if (input.disposition === 'rejected') {
      plain.push({ index: i, row: { input, disposition: 'rejected', state: 'rejected', errorCode: input.errorCode ?? null, errorDetail: input.errorDetail ?? null, ack: input.ack, ackCode: input.ackCode } });
      return;
    }
    const key = keyOf(input);
    if (firstByKey.has(key)) {
      laterInBatch.push(i);
      return;
    }
    firstByKey.set(key, i);
    candidates.push(i);
  });

  // Candidates get their ids from the sequence; keys are unique within the batch, so each returned row names its input.
  const originals = new Map<string, Original>();
  const insertedIds = new Map<number, number>();
  if (candidates.length > 0) {
    const result = await client.query<{ id: number; sender: string; control_id: string }>({
      name: 'anchorline_inbox_insert',
      text: `INSERT INTO inbox_message (${COLUMNS}) ${unnestOf(UNNEST_TYPES)}
       ON CONFLICT (sender, control_id) WHERE disposition = 'accepted' DO NOTHING RETURNING id, sender, control_id`,
      values: await columns(client, candidates.map((i) => acceptedRow(inputs[i]!))),
    });
    for (const row of result.rows) {
      const key = `${row.sender}\u0000${row.control_id}`;
      const index = firstByKey.get(key)!;
      const input = inputs[index]!;
      insertedIds.set(index, row.id);
      originals.set(key, { id: row.id, sha: input.rawSha256, blobSha: input.blobSha256 ?? null, keyed: false, ack: input.ack, ackCode: input.ackCode, state: 'queued' });
    }
  }

  // Candidates that were not inserted collide with an earlier message: duplicate or conflict.
  const collided = candidates.filter((i) => !insertedIds.has(i)).map((i) => inputs[i]!);
  if (collided.length > 0) {
    const found = await client.query<{ id: number; sender: string; control_id: string; raw_sha256: Buffer; blob_sha256: Buffer | null; digests_keyed: boolean; ack: Buffer | null; ack_code: string | null; state: InboxState }>(
      `SELECT m.id, m.sender, m.control_id, m.raw_sha256, m.blob_sha256, m.digests_keyed, m.ack, m.ack_code, m.state
         FROM inbox_message m JOIN unnest($1::text[], $2::text[]) AS k(sender, control_id)
           ON m.sender = k.sender AND m.control_id = k.control_id
        WHERE m.disposition = 'accepted'`,
      [collided.map((c) => c.sender), collided.map((c) => c.controlId)],
    );
    for (const row of found.rows) {
      originals.set(`${row.sender}\u0000${row.control_id}`, { id: row.id, sha: row.raw_sha256, blobSha: row.blob_sha256, keyed: row.digests_keyed, ack: row.ack, ackCode: row.ack_code, state: row.state });
    }
  }
  // The key is read only when a resend meets an erased original (rare): the common path stays free of it.
  const index = [...originals.values()].some((original) => original.keyed) ? await blindIndexOf(client) : undefined;

  for (const i of [...candidates, ...laterInBatch]) {
    const inserted = insertedIds.get(i);
    if (inserted !== undefined) {
      outcomes[i] = { kind: 'stored', id: inserted };
      continue;
    }
    const input = inputs[i]!;
    const original = originals.get(keyOf(input));
    if (!original) throw new Error('inbox: a colliding message has no original row');
    if (sameBytes(original, input, index)) {
      outcomes[i] = { kind: 'duplicate', id: original.id, ack: original.ack, ackCode: original.ackCode, state: original.state };
    } else {
      const { ack, ackCode } = conflictAck(input);
      plain.push({ index: i, row: { input, disposition: 'conflict', state: 'rejected', errorCode: 'ANCHORLINE_ERR_DUPLICATE_CONTROL_ID', errorDetail: `control id already used by message ${original.id}`, ack, ackCode } });
      outcomes[i] = { kind: 'conflict', id: 0, originalId: original.id };
    }
  }

  // Rejected and conflict rows (the rare path): ids drawn first so each maps to its input without relying on
  // RETURNING order.
  if (plain.length > 0) {
    const ids = (await client.query<{ id: number }>(`SELECT nextval(pg_get_serial_sequence('inbox_message', 'id')) AS id FROM generate_series(1, $1)`, [plain.length])).rows.map((r) => r.id);
    await client.query(`INSERT INTO inbox_message (id, ${COLUMNS}) ${unnestOf(['bigint', ...UNNEST_TYPES])}`, [ids, ...(await columns(client, plain.map((p) => p.row)))]);
    plain.forEach((p, n) => {
      const id = ids[n]!;
      const outcome = outcomes[p.index];
      outcomes[p.index] = outcome?.kind === 'conflict' ? { ...outcome, id } : { kind: 'rejected', id };
    });
  }
  return outcomes as RecordOutcome[];
}

/**
 * Stores accepted messages whose (sender, control id) keys are all different, and an ingest job for each one stored,
 * in ONE statement: no BEGIN or COMMIT of its own (autocommit is the transaction), so a group commit of the common
 * case costs one round trip instead of four. `jobs` are the queue's parts of that statement
 * (JobQueue.inlineIngestEnqueue). Returns the id stored for each input, or undefined for an input whose key an
 * earlier message holds: recordMessages then decides between duplicate and conflict, as for any collision.
 */
export async function recordAcceptedWithJobs(
  db: Queryable,
  inputs: InboxInput[],
  jobs: (firstParam: number) => { ctes: string; from: string; values: unknown[] },
): Promise<Array<number | undefined>> {
  if (inputs.length === 0) return [];
  const keys = inputs.map(keyOf);
  if (new Set(keys).size !== keys.length) throw new Error('inbox: recordAcceptedWithJobs needs inputs with different keys');
  if (!inputs.every(fitsOneStatement)) throw new Error('inbox: recordAcceptedWithJobs stores accepted messages with a plain control id only');
  const values = await columns(db, inputs.map(acceptedRow));
  const queue = jobs(values.length + 1);
  const result = await db.query<{ id: number; sender: string; control_id: string }>({
    name: 'anchorline_inbox_insert_with_jobs',
    text: `WITH inserted AS (
             INSERT INTO inbox_message (${COLUMNS}) ${unnestOf(UNNEST_TYPES)}
             ON CONFLICT (sender, control_id) WHERE disposition = 'accepted' DO NOTHING RETURNING id, sender, control_id),
           ingest_ids AS (SELECT id FROM inserted),
           ${queue.ctes}
           SELECT inserted.id, inserted.sender, inserted.control_id FROM inserted, ${queue.from}`,
    values: [...values, ...queue.values],
  });
  const ids = new Map(result.rows.map((row) => [`${row.sender}\u0000${row.control_id}`, Number(row.id)]));
  return keys.map((key) => ids.get(key));
}

/**
 * Whether recordAcceptedWithJobs can take the input: accepted, with a control id, and a sender and control id stored
 * as sent (no NUL to replace), so that the rows it returns name their inputs by key. Others go through recordMessages.
 */
export function fitsOneStatement(input: InboxInput): boolean {
  return input.disposition !== 'rejected' && input.controlId !== null && !input.controlId.includes('\u0000') && !input.sender.includes('\u0000');
}

export interface InboxMessage extends MessageEnvelope {
  id: number;
  disposition: Disposition;
  state: InboxState;
  attempts: number;
  errorCode: string | null;
  errorDetail: string | null;
  ack: Buffer | null;
  ackCode: string | null;
  receivedAt: Date;
  processedAt: Date | null;
  /** Warnings and errors among the issues of the message's last mapping (mapping_issues); 0 when none. */
  mappingWarnings: number;
}

/** A message's envelope and state without its bytes: what a list of messages shows. */
export type MessageSummary = Pick<
  InboxMessage,
  'id' | 'protocol' | 'source' | 'sender' | 'controlId' | 'messageType' | 'disposition' | 'state' | 'attempts' | 'errorCode' | 'errorDetail' | 'ackCode' | 'rawSize' | 'receivedAt' | 'processedAt' | 'mappingWarnings'
>;

/** The columns toSummary reads. */
export const SUMMARY_COLUMNS = `id, protocol, source, sender, control_id, message_type, disposition, state, attempts, error_code, error_detail,
  ack_code, raw_size, received_at, processed_at, mapping_warnings`;

const SELECT_MESSAGE = `SELECT m.id, m.protocol, m.source, m.sender, m.control_id, m.message_type, m.disposition, m.state, m.attempts,
  m.error_code, m.error_detail, m.ack_code, m.raw_size, m.received_at, m.processed_at, m.mapping_warnings, m.message_time, m.raw, m.raw_sha256, m.charset, m.blob_sha256, m.blob_sealed_sha256, m.ack,
  ${RAW_KEY_COLUMNS} FROM inbox_message m`;

/**
 * The unwrapped key of a message read by lockMessages, by message object: kept beside it rather than on it, so that
 * no serialisation of a message can carry a key. The worker re-wraps it under the message's patient key.
 */
const messageKeys = new WeakMap<InboxMessage, Buffer>();

export function messageKeyOf(message: InboxMessage): Buffer | undefined {
  return messageKeys.get(message);
}

/** Messages read by lockMessages whose key was still wrapped under the master key (no patient's key yet). */
const underMaster = new WeakSet<InboxMessage>();

/** Whether a message read by lockMessages was sealed with its key still under the master key, not a patient's. */
export function underMasterKey(message: InboxMessage): boolean {
  return underMaster.has(message);
}

/** Rows of SELECT_MESSAGE as messages, their sealed bytes opened; an erased message's bytes are refused (`erased`). */
async function toMessages(db: Queryable, rows: Array<Record<string, unknown>>, erased: 'refuse' | 'keep'): Promise<InboxMessage[]> {
  await openRawRows(db, rows as unknown as RawRow[]);
  return rows.map((row) => {
    if ((row as unknown as RawRow).erased && erased === 'refuse') throw new AnchorlineError('ANCHORLINE_ERR_ERASED', `message ${Number(row.id)} was erased with its patient's key`);
    const message = toMessage(row);
    const key = (row as unknown as RawRow).message_key;
    if (key !== undefined) messageKeys.set(message, key);
    if (key !== undefined && row.raw_kek !== null && row.raw_kek !== undefined) underMaster.add(message);
    return message;
  });
}

export function toSummary(row: Record<string, unknown>): MessageSummary {
  return {
    id: Number(row.id),
    protocol: row.protocol as string,
    source: row.source as string,
    sender: row.sender as string,
    controlId: row.control_id as string | null,
    messageType: row.message_type as string | null,
    disposition: row.disposition as Disposition,
    state: row.state as InboxState,
    attempts: row.attempts as number,
    errorCode: row.error_code as string | null,
    errorDetail: row.error_detail as string | null,
    ackCode: row.ack_code as string | null,
    rawSize: row.raw_size as number,
    receivedAt: row.received_at as Date,
    processedAt: row.processed_at as Date | null,
    mappingWarnings: (row.mapping_warnings as number | undefined) ?? 0,
  };
}

function toMessage(row: Record<string, unknown>): InboxMessage {
  return {
    ...toSummary(row),
    messageTime: row.message_time as string | null,
    raw: row.raw as Buffer,
    rawSha256: row.raw_sha256 as Buffer,
    charset: row.charset as string | null,
    blobSha256: row.blob_sha256 as Buffer | null,
    blobSealedSha256: row.blob_sealed_sha256 as Buffer | null,
    ack: row.ack as Buffer | null,
  };
}

export async function getMessage(db: Queryable, id: number): Promise<InboxMessage | undefined> {
  const result = await db.query(`${SELECT_MESSAGE} WHERE m.id = $1`, [id]);
  return (await toMessages(db, result.rows, 'refuse'))[0];
}

/** The issues of a message's last mapping (mappers/issues.ts), in the order they were found; [] when none. */
export async function getMappingIssues(db: Queryable, id: number): Promise<Array<Record<string, unknown>>> {
  const result = await db.query<{ mapping_issues: Array<Record<string, unknown>> | null }>('SELECT mapping_issues FROM inbox_message WHERE id = $1', [id]);
  return result.rows[0]?.mapping_issues ?? [];
}

/**
 * Locks messages for processing, in id order so that concurrent lockers cannot deadlock. The locks are held until the
 * transaction ends, so two workers handed the same id run one after the other and the second sees it finished.
 */
export async function lockMessages(client: pg.PoolClient, ids: number[]): Promise<InboxMessage[]> {
  const result = await client.query({ name: 'anchorline_inbox_lock_many', text: `${SELECT_MESSAGE} WHERE m.id = ANY($1::bigint[]) ORDER BY m.id FOR UPDATE`, values: [ids] });
  // An erased message locked for mapping (a replay) comes back with no bytes; its mapping then fails as any empty
  // message would, and the failure is recorded, not retried.
  return toMessages(client, result.rows, 'keep');
}

export interface MessageResult {
  id: number;
  state: 'done' | 'failed';
  errorCode?: string | undefined;
  errorDetail?: string | undefined;
  /** Replaces the stored ACK when set (ACK after mapping). */
  ack?: { ack: Buffer; ackCode: string } | undefined;
  /** Version of the mapping configuration the message was mapped with. */
  mappingSha256?: string | undefined;
  /** What the mapping could not map as sent (mappers/issues.ts); replaces what an earlier mapping recorded. */
  mappingIssues?: ReadonlyArray<{ severity: string }> | undefined;
  /** The message's key re-wrapped under its patient's key (sealRawKey), replacing the master key's wrapping. */
  rawKey?: { wrapped: Buffer; keyId: number } | undefined;
}

/**
 * The key of a message read by lockMessages, wrapped under its patient's key for finishMessages (MessageResult.rawKey);
 * undefined for a message that was not sealed, or whose key is already under a patient's key.
 */
export function sealRawKey(message: InboxMessage, patientKey: PatientKey): { wrapped: Buffer; keyId: number } | undefined {
  const key = messageKeys.get(message);
  if (key === undefined) return undefined;
  return { wrapped: seal(patientKey.dek, key, messageKeyAad(message.id)), keyId: patientKey.keyId };
}

/** Records the outcome of several locked, queued messages in one statement. */
export async function finishMessages(client: Queryable, results: MessageResult[]): Promise<void> {
  if (results.length === 0) return;
  await client.query({
    name: 'anchorline_inbox_finish',
    text: `UPDATE inbox_message m SET state = r.state, processed_at = now(), attempts = m.attempts + 1,
             error_code = r.error_code, error_detail = r.error_detail,
             ack = COALESCE(r.ack, m.ack), ack_code = COALESCE(r.ack_code, m.ack_code), mapping_sha256 = COALESCE(r.mapping_sha256, m.mapping_sha256),
             mapping_issues = r.mapping_issues, mapping_warnings = r.mapping_warnings,
             raw_key = COALESCE(r.raw_key, m.raw_key), raw_kek = CASE WHEN r.raw_key IS NULL THEN m.raw_kek END,
             raw_key_id = COALESCE(r.raw_key_id, m.raw_key_id)
           FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::bytea[], $6::text[], $7::text[], $8::jsonb[], $9::int[], $10::bytea[], $11::bigint[])
             AS r(id, state, error_code, error_detail, ack, ack_code, mapping_sha256, mapping_issues, mapping_warnings, raw_key, raw_key_id)
           WHERE m.id = r.id AND m.state = 'queued'`,
    values: [
      results.map((r) => r.id), results.map((r) => r.state), results.map((r) => r.errorCode ?? null), results.map((r) => r.errorDetail ?? null),
      results.map((r) => r.ack?.ack ?? null), results.map((r) => r.ack?.ackCode ?? null), results.map((r) => r.mappingSha256 ?? null),
      results.map((r) => (r.mappingIssues !== undefined && r.mappingIssues.length > 0 ? JSON.stringify(r.mappingIssues) : null)),
      results.map((r) => (r.mappingIssues ?? []).filter((issue) => issue.severity !== 'information').length),
      results.map((r) => r.rawKey?.wrapped ?? null), results.map((r) => r.rawKey?.keyId ?? null),
    ],
  });
}

export async function markFailed(client: Queryable, id: number, errorCode: string, errorDetail: string | null, ack?: { ack: Buffer; ackCode: string }): Promise<void> {
  await client.query(
    `UPDATE inbox_message SET state = 'failed', processed_at = now(), attempts = attempts + 1, error_code = $2, error_detail = $3,
       ack = COALESCE($4, ack), ack_code = COALESCE($5, ack_code) WHERE id = $1 AND state = 'queued'`,
    [id, errorCode, errorDetail, ack?.ack ?? null, ack?.ackCode ?? null],
  );
}

/**
 * Records a failed attempt that will be retried (the state stays queued). The count of ended attempts never passes
 * that of started ones (an attempt that failed before it could be counted as started ends nothing), so the gap
 * between them stays the number of attempts that crashed.
 */
export async function noteAttempt(db: Queryable, id: number, errorCode: string): Promise<void> {
  await db.query(`UPDATE inbox_message SET attempts = LEAST(attempts + 1, attempts_started), error_code = $2 WHERE id = $1 AND state = 'queued'`, [id, errorCode]);
}

/** A queued message as an attempt on it begins: how many earlier attempts crashed, and whether this one was counted. */
export interface AttemptStart {
  /** Earlier attempts that started and never ended: their worker crashed, stalled and was killed, or was killed. */
  crashed: number;
  /** Whether this attempt was counted as started (see startAttempts). */
  started: boolean;
}

/**
 * Counts a processing attempt as started, for messages still queued, in a statement of its own that commits before
 * the attempt's transaction opens (asynchronous commit is enough: it is the worker that may die, not PostgreSQL).
 * Returns, per message still queued, how many earlier attempts started and never ended.
 *
 * With `onlyUncrashed`, only messages none of whose attempts crashed, and not named in `holdBack`, are counted: the
 * others are about to run alone, each counted just before its own run, so that a message waiting behind one that
 * crashes its worker is not charged with that crash.
 */
export async function startAttempts(db: Queryable, ids: number[], options: { onlyUncrashed?: boolean; holdBack?: readonly number[] } = {}): Promise<Map<number, AttemptStart>> {
  const list = (values: readonly number[]): string => {
    for (const id of values) if (!Number.isSafeInteger(id)) throw new TypeError('message ids are integers');
    return `'{${values.join(',')}}'::bigint[]`;
  };
  const condition = options.onlyUncrashed ? `AND attempts_started <= attempts AND NOT (id = ANY(${list(options.holdBack ?? [])}))` : '';
  // One round trip, and no WAL flush to wait for: the statement and its asynchronous commit travel together, which
  // takes a simple query, so the ids (integers, checked above) are written into it rather than bound. The outer
  // SELECT reads the rows as they were before the UPDATE (one snapshot for the whole statement).
  const results = (await db.query(`BEGIN; SET LOCAL synchronous_commit = off;
    WITH started AS (
      UPDATE inbox_message SET attempts_started = attempts_started + 1
      WHERE id = ANY(${list(ids)}) AND state = 'queued' AND disposition = 'accepted' ${condition}
      RETURNING id)
    SELECT m.id, greatest(m.attempts_started - m.attempts, 0)::int AS crashed, s.id IS NOT NULL AS started
    FROM inbox_message m LEFT JOIN started s ON s.id = m.id
    WHERE m.id = ANY(${list(ids)}) AND m.state = 'queued' AND m.disposition = 'accepted';
    COMMIT`)) as unknown as Array<{ rows: Array<{ id: string; crashed: number; started: boolean }> }>;
  const rows = results[2]?.rows ?? [];
  return new Map(rows.map((row) => [Number(row.id), { crashed: row.crashed, started: row.started }]));
}

/** Accepted messages still unfinished that arrived before `olderThan`, oldest first. */
export async function unfinishedMessageIds(db: Queryable, olderThan: Date, limit: number): Promise<number[]> {
  const result = await db.query<{ id: number }>(
    `SELECT id FROM inbox_message WHERE state = 'queued' AND received_at < $1 ORDER BY received_at LIMIT $2`,
    [olderThan, limit],
  );
  return result.rows.map((r) => r.id);
}

export async function messageState(db: Queryable, id: number): Promise<{ state: InboxState; ack: Buffer | null; ackCode: string | null } | undefined> {
  const result = await db.query<{ state: InboxState; ack: Buffer | null; ack_code: string | null }>('SELECT state, ack, ack_code FROM inbox_message WHERE id = $1', [id]);
  const row = result.rows[0];
  return row ? { state: row.state, ack: row.ack, ackCode: row.ack_code } : undefined;
}

/** The sender column of a C-CDA row: `cda:<root>[^<extension>]` of the organization, or `cda:key:<API key name>`. */
export function cdaSenderKey(organization: string | undefined, apiKeyName: string | undefined): string {
  return organization !== undefined ? `cda:${organization}` : `cda:key:${apiKeyName ?? ''}`;
}

/** The organization's id root from a C-CDA row's sender column; undefined when the row names an API key instead. */
export function cdaSenderRoot(sender: string): string | undefined {
  if (!sender.startsWith('cda:') || sender.startsWith('cda:key:')) return undefined;
  return sender.slice('cda:'.length).split('^')[0];
}

/** Inbox protocol of request bodies that wrote resources through the FHIR API (store/consents.ts). */
export const FHIR_REST_PROTOCOL = 'fhir-rest';

/** The inbox row recordApiWrite made, and the body's own key while the writing transaction runs. */
export interface ApiWriteMessage {
  id: number;
  /**
   * The message key the body is sealed under (undefined when it is stored plain), for moveMessageKeys once the writer
   * knows the patient the body is about. Only in memory, in the writing transaction; never stored unwrapped or logged.
   */
  key: Buffer | undefined;
}

/**
 * Stores the body of a FHIR write request as an inbox message that is already done, in the writing transaction: the
 * bytes a written version's leaf names as its source (rawSha256), kept so that the ledger audit can hash them again
 * like any inbound message's. Accepted and done at once: nothing is left to map, so the sweeper never picks it up.
 * `controlId` must be unique for the sender (the version written, `Type/id/_history/v`, is).
 *
 * Sealed as at intake, under a fresh key wrapped by the master key: the row is written before the version (the
 * version names it as its source), so the writer moves the key under the patient's key (moveMessageKeys) once it has
 * written the version and knows that key (store/api-writes.ts).
 */
export async function recordApiWrite(
  client: pg.PoolClient,
  write: { source: string; sender: string; controlId: string; messageType: string; raw: Buffer; rawSha256: Buffer; mappingSha256: string },
): Promise<ApiWriteMessage> {
  const keyring = keyringOf(client);
  const messageKey = keyring?.sealing ? await keyring.newMessageKey() : undefined;
  const raw = messageKey ? seal(messageKey.key, write.raw, rawAad(write.rawSha256)) : write.raw;
  const result = await client.query<{ id: number }>(
    `INSERT INTO inbox_message (protocol, source, sender, control_id, message_type, raw, raw_sha256, raw_size, charset, disposition, state, attempts, attempts_started, processed_at, mapping_sha256, raw_key, raw_kek)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'utf-8', 'accepted', 'done', 1, 1, now(), $9, $10, $11) RETURNING id`,
    [FHIR_REST_PROTOCOL, pgText(write.source), pgText(write.sender), pgText(write.controlId), write.messageType, raw, write.rawSha256, write.raw.length, write.mappingSha256, messageKey?.wrapped ?? null, messageKey?.kekId ?? null],
  );
  return { id: Number(result.rows[0]!.id), key: messageKey?.key };
}

/**
 * Moves message keys from the master key under patients' keys: each message's own key (`key`, unwrapped by the
 * caller) is sealed under the patient key as the worker's re-wrap seals it (sealRawKey), and replaces the master
 * key's wrapping, in one statement; the raw bytes (and a DICOM instance's file) are not written again. Only rows
 * still under the master key change (one a worker has meanwhile moved under its patient's key keeps that), and
 * whichever master key wraps a row now, its message key is the same, so a master key rotation meanwhile changes
 * nothing here. Returns how many rows moved.
 */
export async function moveMessageKeys(client: Queryable, moves: ReadonlyArray<{ id: number; key: Buffer; patientKey: PatientKey }>): Promise<number> {
  if (moves.length === 0) return 0;
  const result = await client.query(
    `UPDATE inbox_message m SET raw_key = n.raw_key, raw_kek = NULL, raw_key_id = n.raw_key_id
       FROM unnest($1::bigint[], $2::bytea[], $3::bigint[]) AS n(id, raw_key, raw_key_id)
      WHERE m.id = n.id AND m.raw_kek IS NOT NULL`,
    [moves.map((move) => move.id), moves.map((move) => seal(move.patientKey.dek, move.key, messageKeyAad(move.id))), moves.map((move) => move.patientKey.keyId)],
  );
  return result.rowCount ?? 0;
}

/**
 * Patient data keys and the sealing of records under them (encryption at rest).
 *
 * Key hierarchy: the master key (store/kms.ts) wraps one random 256-bit data key (DEK) per patient (patient_key,
 * migration 0020), and one per inbound message until the worker knows the message's patient (it seals the raw bytes,
 * and a DICOM instance's whole file in the blob store, store/instance-blobs.ts). Records are sealed with AES-256-GCM
 * under those data keys: Node's crypto (OpenSSL, AES-NI), not a JavaScript cipher, because sealing and opening sit
 * on the ingest and read paths and the native one is an order of magnitude faster; it is also what the rest of the
 * store already trusts for hashing. Each sealing draws a random 96-bit nonce (a patient's key seals far fewer than
 * the 2^32 messages GCM allows under random nonces), and binds the record's identity as associated data (table,
 * type, id, version; a raw message's SHA-256; an instance file's SHA-256), so a ciphertext moved to another row does
 * not open.
 *
 * Crypto-shredding: destroying a patient's key (`wrapped_dek` NULL, `destroyed_at` set) leaves every sealed row of
 * theirs, and every copy of it in a backup, without a key (instance files too: their message keys are wrapped under
 * it). Readers then get the record as erased.
 *
 * Contract:
 * - A pool's keyring is attached once at start-up (attachKeyring); the store's readers and writers find it through
 *   the pool or the client they are given, so the API, workers and tools read sealed rows as they read plain ones.
 *   A pool without a keyring writes plain rows and refuses to read sealed ones (ANCHORLINE_ERR_KEY_UNAVAILABLE).
 * - patientKeys runs inside the writer's transaction: a key it creates exists only if that transaction commits.
 * - Unwrapped data keys are kept in memory for at most cacheTtlMs, at most cacheMaxKeys of them, and are never
 *   logged. Erasure drops the erased keys from this process's cache; another process's cache cannot keep an erased
 *   key alive, because every read of a sealed row also reads whether its key still exists (a destroyed key reads as
 *   erased, whatever the cache holds).
 */
import { createCipheriv, createDecipheriv, type DecipherGCM } from 'node:crypto';
import { secureRandomBytes } from './random.ts';
import type pg from 'pg';
import { parseJson, stringifyJson } from '../anchor/index.ts';
import { AnchorlineError } from '../errors/index.ts';
import { patientOf } from './compartment.ts';
import { BoundedCache } from './bounded-cache.ts';
import type { Queryable } from './db.ts';
import type { KeyManagementService } from './kms.ts';

const FORMAT_V1 = 0x01;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const KEY_BYTES = 32;

/** Seals bytes: 0x01 || 96-bit random nonce || AES-256-GCM ciphertext || 128-bit tag, bound to `aad`. */
export function seal(key: Buffer, plaintext: Buffer, aad: string): Buffer {
  const nonce = secureRandomBytes(NONCE_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, nonce);
  cipher.setAAD(Buffer.from(aad));
  const body = cipher.update(plaintext);
  const last = cipher.final();
  return Buffer.concat([Buffer.of(FORMAT_V1), nonce, body, last, cipher.getAuthTag()]);
}

/** Opens what `seal` made under the same key and `aad`; a wrong key, another row's `aad` or any changed byte throws. */
export function open(key: Buffer, sealed: Buffer, aad: string): Buffer {
  if (sealed.length < 1 + NONCE_BYTES + TAG_BYTES || sealed[0] !== FORMAT_V1) throw new AnchorlineError('ANCHORLINE_ERR_KEY_UNAVAILABLE', 'a sealed value is not in a format this engine reads');
  const decipher = createDecipheriv('aes-256-gcm', key, sealed.subarray(1, 1 + NONCE_BYTES));
  decipher.setAAD(Buffer.from(aad));
  decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
  try {
    return Buffer.concat([decipher.update(sealed.subarray(1 + NONCE_BYTES, sealed.length - TAG_BYTES)), decipher.final()]);
  } catch {
    // Which row failed is the caller's to say; the message names neither key nor content.
    throw new AnchorlineError('ANCHORLINE_ERR_KEY_UNAVAILABLE', 'a sealed value does not open under its key (tampered, moved from another row, or sealed under another key)');
  }
}

/** Bytes a sealing adds to what it seals: the format byte, the nonce and the tag. */
export const SEAL_OVERHEAD_BYTES = 1 + NONCE_BYTES + TAG_BYTES;

/** Plaintext sealed per step of sealChunks, with a turn of the event loop between steps. */
const STREAM_SLICE_BYTES = 8 * 1024 * 1024;

/**
 * `seal`, as a stream of slices, for a plaintext too large to hold twice (a DICOM instance: dicom.maxInstanceBytes,
 * 256 MiB by default): the same format, which `open` and `openChunks` both read. Memory holds one slice of
 * ciphertext at a time, and the event loop gets a turn between slices.
 */
export async function* sealChunks(key: Buffer, plaintext: Buffer, aad: string): AsyncGenerator<Buffer> {
  const nonce = secureRandomBytes(NONCE_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, nonce);
  cipher.setAAD(Buffer.from(aad));
  yield Buffer.concat([Buffer.of(FORMAT_V1), nonce]);
  for (let at = 0; at < plaintext.length; at += STREAM_SLICE_BYTES) {
    yield cipher.update(plaintext.subarray(at, at + STREAM_SLICE_BYTES));
    if (at + STREAM_SLICE_BYTES < plaintext.length) await new Promise<void>((resolve) => setImmediate(resolve));
  }
  yield Buffer.concat([cipher.final(), cipher.getAuthTag()]);
}

/**
 * Opens a sealed value read as chunks (`sealedSize` bytes in all, as `seal` or `sealChunks` made it), handing the
 * plaintext to `sink` as it is deciphered. Nothing handed over is authentic until this resolves: a wrong key,
 * another value's `aad`, a changed byte or a size that does not add up rejects at the end, so a sink keeps what it
 * gets (hashes it, fills a buffer) and uses none of it before then.
 */
export async function openChunks(key: Buffer, chunks: AsyncIterable<Buffer>, sealedSize: number, aad: string, sink: (plaintext: Buffer) => void): Promise<void> {
  const refused = (): AnchorlineError => new AnchorlineError('ANCHORLINE_ERR_KEY_UNAVAILABLE', 'a sealed value does not open under its key (tampered, moved from another row, or sealed under another key)');
  if (sealedSize < SEAL_OVERHEAD_BYTES) throw new AnchorlineError('ANCHORLINE_ERR_KEY_UNAVAILABLE', 'a sealed value is not in a format this engine reads');
  const head = Buffer.alloc(1 + NONCE_BYTES);
  const tag = Buffer.alloc(TAG_BYTES);
  const tagAt = sealedSize - TAG_BYTES;
  let decipher: DecipherGCM | undefined;
  let position = 0;
  for await (const chunk of chunks) {
    const end = position + chunk.length;
    if (end > sealedSize) throw refused();
    // The chunk's part in each region: the head (format byte and nonce), the ciphertext, the tag.
    if (position < head.length) chunk.copy(head, position, 0, Math.min(chunk.length, head.length - position));
    if (decipher === undefined && end >= head.length) {
      if (head[0] !== FORMAT_V1) throw new AnchorlineError('ANCHORLINE_ERR_KEY_UNAVAILABLE', 'a sealed value is not in a format this engine reads');
      decipher = createDecipheriv('aes-256-gcm', key, head.subarray(1));
      decipher.setAAD(Buffer.from(aad));
    }
    const bodyFrom = Math.max(position, head.length);
    const bodyTo = Math.min(end, tagAt);
    if (bodyTo > bodyFrom) sink(decipher!.update(chunk.subarray(bodyFrom - position, bodyTo - position)));
    if (end > tagAt) chunk.copy(tag, Math.max(position, tagAt) - tagAt, Math.max(position, tagAt) - position);
    position = end;
  }
  if (position !== sealedSize || decipher === undefined) throw refused();
  decipher.setAuthTag(tag);
  try {
    const last = decipher.final();
    if (last.length > 0) sink(last);
  } catch {
    throw refused();
  }
}

/** Associated data of a resource version: where it is stored, and which version it is. */
export function versionAad(resourceType: string, id: string, versionId: number): string {
  return `anchorline/fhir_resource_history\u0000${resourceType}\u0000${id}\u0000${versionId}`;
}

/** Associated data of a raw message: the SHA-256 of its bytes (the row id is not known before the row is written). */
export function rawAad(rawSha256: Buffer): string {
  return `anchorline/inbox_message.raw\u0000${rawSha256.toString('hex')}`;
}

/**
 * Associated data of a message's whole instance in the blob store (a DICOM file; store/instance-blobs.ts): the
 * SHA-256 of its bytes, as the row's blob_sha256 names it. The instance is sealed under the same message key as the
 * row's raw bytes; the prefix tells the two apart, so neither opens as the other.
 */
export function blobAad(blobSha256: Buffer): string {
  return `anchorline/inbox_message.blob\u0000${blobSha256.toString('hex')}`;
}

/** Associated data of a message key wrapped under its patient's key: the message's row. */
export function messageKeyAad(messageId: number): string {
  return `anchorline/inbox_message.raw_key\u0000${messageId}`;
}

/**
 * The patient whose key seals a resource: its compartment's patient (store/compartment.ts), and for a document
 * Bundle the patient of the first entry that has one (a document copies its patient's resources). Undefined for
 * the rest (Practitioner, Organization, Provenance, AuditEvent: they hold ids, and stay plain).
 */
export function sealingPatientOf(content: Record<string, unknown>): string | undefined {
  const own = patientOf(content);
  if (own !== undefined || content.resourceType !== 'Bundle' || !Array.isArray(content.entry)) return own;
  for (const entry of content.entry as Array<{ resource?: unknown } | null>) {
    const resource = entry?.resource;
    if (resource !== null && typeof resource === 'object' && !Array.isArray(resource)) {
      const patient = patientOf(resource as Record<string, unknown>);
      if (patient !== undefined) return patient;
    }
  }
  return undefined;
}

export interface PatientKey {
  /** patient_key.id: what sealed rows name as their key. */
  keyId: number;
  dek: Buffer;
}

export interface KeyringOptions {
  /** Seal new records. False still opens sealed ones (encryption turned off after it was on). */
  sealing: boolean;
  /** Unwrapped data keys kept in memory at most. */
  cacheMaxKeys: number;
  /** Longest an unwrapped data key stays in memory, in ms. */
  cacheTtlMs: number;
}

/** The data keys of one process: unwraps through the KMS, caches briefly, creates patients' keys on first need. */
export class Keyring {
  /** Unwrapped keys by patient_key id; two generations of half the configured maximum each (store/bounded-cache.ts). */
  private readonly cache: BoundedCache<number, { dek: Buffer; expires: number }>;

  readonly kms: KeyManagementService;
  readonly options: KeyringOptions;

  constructor(kms: KeyManagementService, options: KeyringOptions) {
    this.kms = kms;
    this.options = options;
    this.cache = new BoundedCache(Math.ceil(options.cacheMaxKeys / 2));
  }

  get sealing(): boolean {
    return this.options.sealing;
  }

  /** The data key of patient_key row `keyId`, from the cache or unwrapped from `wrapped`. */
  async dekOf(keyId: number, wrapped: Buffer, kekId: string): Promise<Buffer> {
    const now = Date.now();
    const hit = this.cache.get(keyId);
    if (hit !== undefined && hit.expires > now) return hit.dek;
    const dek = await this.kms.unwrap(wrapped, kekId);
    this.remember(keyId, dek, now);
    return dek;
  }

  /** Drops keys from this process's cache (after they were destroyed or re-wrapped). */
  forget(keyIds: Iterable<number>): void {
    for (const keyId of keyIds) this.cache.delete(keyId);
  }

  private remember(keyId: number, dek: Buffer, now: number): void {
    this.cache.set(keyId, { dek, expires: now + this.options.cacheTtlMs });
  }

  /**
   * The live data key of each patient (`Patient/x`), created where a patient has none (never had one, or had it
   * destroyed by an erasure: the patient's later records get a new key version). One statement when every patient
   * has a key, two when some are new. Patients are inserted in sorted order, so two transactions creating keys for
   * the same patients wait for each other rather than deadlock; the one that waited then reads the other's key.
   */
  async patientKeys(client: Queryable, patients: Iterable<string>): Promise<Map<string, PatientKey>> {
    const wanted = [...new Set(patients)].sort();
    const keys = new Map<string, PatientKey>();
    if (wanted.length === 0) return keys;
    const read = async (list: string[]): Promise<void> => {
      const rows = await client.query<{ id: number; patient: string; wrapped_dek: Buffer; kek_id: string }>({
        name: 'anchorline_patient_keys',
        text: `SELECT DISTINCT ON (patient) id, patient, wrapped_dek, kek_id FROM patient_key
                WHERE patient = ANY($1::text[]) AND destroyed_at IS NULL ORDER BY patient, key_version DESC`,
        values: [list],
      });
      for (const row of rows.rows) keys.set(row.patient, { keyId: Number(row.id), dek: await this.dekOf(Number(row.id), row.wrapped_dek, row.kek_id) });
    };
    await read(wanted);
    const missing = wanted.filter((patient) => !keys.has(patient));
    if (missing.length === 0) return keys;
    const fresh = new Map<string, Buffer>();
    const wrapped: Buffer[] = [];
    const kekIds: string[] = [];
    for (const patient of missing) {
      const dek = secureRandomBytes(KEY_BYTES);
      fresh.set(patient, dek);
      const sealed = await this.kms.wrap(dek);
      wrapped.push(sealed.wrapped);
      kekIds.push(sealed.keyId);
    }
    const inserted = await client.query<{ id: number; patient: string }>({
      name: 'anchorline_patient_key_create',
      text: `INSERT INTO patient_key (patient, key_version, wrapped_dek, kek_id)
             SELECT n.patient, COALESCE((SELECT max(k.key_version) FROM patient_key k WHERE k.patient = n.patient), 0) + 1, n.wrapped, n.kek_id
               FROM unnest($1::text[], $2::bytea[], $3::text[]) WITH ORDINALITY AS n(patient, wrapped, kek_id, position)
              ORDER BY n.position
             ON CONFLICT (patient, key_version) DO NOTHING RETURNING id, patient`,
      values: [missing, wrapped, kekIds],
    });
    for (const row of inserted.rows) {
      keys.set(row.patient, { keyId: Number(row.id), dek: fresh.get(row.patient)! });
      this.remember(Number(row.id), fresh.get(row.patient)!, Date.now());
    }
    const lost = missing.filter((patient) => !keys.has(patient));
    // Another transaction created these meanwhile (and has committed, or the insert would still be waiting).
    if (lost.length > 0) await read(lost);
    if (lost.some((patient) => !keys.has(patient))) throw new AnchorlineError('ANCHORLINE_ERR_STORE_UNAVAILABLE', 'a patient key was created and destroyed while this transaction waited for it; try again');
    return keys;
  }

  /** A fresh key for one inbound message, and that key wrapped under the master key. */
  async newMessageKey(): Promise<MessageKey> {
    const key = secureRandomBytes(KEY_BYTES);
    const { wrapped, keyId } = await this.kms.wrap(key);
    return { key, wrapped, kekId: keyId };
  }
}

/** One inbound message's own data key (it seals the raw bytes, and a DICOM instance's file), and its master-key wrapping. */
export interface MessageKey {
  key: Buffer;
  wrapped: Buffer;
  kekId: string;
}

/** Keyrings by pool and by the clients those pools hand out. */
const keyrings = new WeakMap<object, Keyring>();

/**
 * Makes a pool's readers and writers seal and open with `keyring`. Clients are tagged when checked out ('acquire'),
 * so a client inside a transaction finds it as the pool does.
 */
export function attachKeyring(pool: pg.Pool, keyring: Keyring): void {
  keyrings.set(pool, keyring);
  pool.on('acquire', (client) => keyrings.set(client, keyring));
}

/** The keyring attached to a pool, or to the pool a client came from. */
export function keyringOf(db: Queryable): Keyring | undefined {
  return keyrings.get(db);
}

function needKeyring(db: Queryable): Keyring {
  const keyring = keyrings.get(db);
  if (keyring === undefined) throw new AnchorlineError('ANCHORLINE_ERR_KEY_UNAVAILABLE', 'a sealed record was read without the encryption keys (encryption.masterKeyFile)');
  return keyring;
}

/**
 * A row of resource version columns as readers select them, before and after openVersionRows: with the sealed bytes
 * and the key they name with whether it still exists (`h.sealed, h.key_id, k.wrapped_dek AS key_wrapped, k.kek_id AS
 * key_kek` with patient_key k LEFT JOINed on k.id = h.key_id; the fhir_resource view has them under those names).
 */
export interface VersionRow {
  resource_type: string;
  id: string;
  version_id: number;
  last_updated?: Date;
  content: unknown;
  deleted?: boolean;
  sealed?: Buffer | null;
  key_id?: number | null;
  key_wrapped?: Buffer | null;
  key_kek?: string | null;
  /** Set by openVersionRows: the version was sealed under a key that has been destroyed. */
  erased?: boolean;
}

/**
 * Fills in `content` of the sealed rows among `rows` (rows without `sealed` are left as they are, and then nothing
 * here touches a key). A row whose key is destroyed gets a stub naming only its type, id and version, `deleted`,
 * and `erased`. `lossless`: content is parsed with anchor's parseJson (as LOSSLESS_JSON_TYPES reads jsonb); false
 * uses JSON.parse, for readers that ask pg for plain JSON.
 */
export async function openVersionRows(db: Queryable, rows: VersionRow[], options: { lossless?: boolean } = {}): Promise<void> {
  let keyring: Keyring | undefined;
  await readKeys(db, rows.filter((row) => row.sealed !== null && row.sealed !== undefined && row.key_wrapped === undefined), 'key_id', 'key_wrapped', 'key_kek');
  for (const row of rows) {
    if (row.sealed === null || row.sealed === undefined) continue;
    const versionId = Number(row.version_id);
    if (row.key_wrapped === null || row.key_wrapped === undefined) {
      row.erased = true;
      row.deleted = true;
      row.content = { resourceType: row.resource_type, id: row.id, meta: { versionId: String(versionId), ...(row.last_updated ? { lastUpdated: row.last_updated.toISOString() } : {}) } };
      continue;
    }
    keyring ??= needKeyring(db);
    const dek = await keyring.dekOf(Number(row.key_id), row.key_wrapped, row.key_kek!);
    const text = open(dek, row.sealed, versionAad(row.resource_type, row.id, versionId)).toString('utf8');
    row.content = options.lossless === false ? JSON.parse(text) : parseJson(text);
  }
}

/** The sealed form of a resource version: its JSON (numbers as written) under the patient's key. */
export function sealVersion(key: PatientKey, resourceType: string, id: string, versionId: number, content: Record<string, unknown>): Buffer {
  return seal(key.dek, Buffer.from(stringifyJson(content), 'utf8'), versionAad(resourceType, id, versionId));
}

/** The key columns of an inbox message, as readers select them (RAW_KEY_COLUMNS) for openMessageKeys. */
export interface MessageKeyRow {
  id: number;
  /** The message key: wrapped under the master key (raw_kek set) or under its patient's key (raw_key_id set). */
  raw_key?: Buffer | null;
  raw_kek?: string | null;
  raw_key_id?: number | null;
  /** The patient key's wrapped DEK and master key id; NULL when that key is destroyed. */
  patient_key_wrapped?: Buffer | null;
  patient_key_kek?: string | null;
  /** Set by openMessageKeys: the message key is unwrapped (the worker re-wraps it under the message's patient key). */
  message_key?: Buffer;
  /** Set by openMessageKeys: the message key was under a patient key that is destroyed. */
  erased?: boolean;
}

/** A raw message's columns as inbox readers select them. */
export interface RawRow extends MessageKeyRow {
  raw: Buffer;
  raw_sha256: Buffer;
}

/**
 * The columns an inbox reader adds for openRawRows (`m` is inbox_message). The patient keys they name are read by
 * openRawRows, in one statement and only for messages already under a patient's key, rather than joined here: the
 * worker's transaction then touches patient_key only after it holds its other locks, and not at all for plain rows.
 */
export const RAW_KEY_COLUMNS = 'm.raw_key, m.raw_kek, m.raw_key_id';

/**
 * Fills in the wrapped key and master key id (NULL once destroyed) of rows that name a patient key but were read
 * without it (`wrappedField` undefined), in one statement.
 */
async function readKeys<Row>(db: Queryable, rows: Row[], idField: keyof Row, wrappedField: keyof Row, kekField: keyof Row): Promise<void> {
  if (rows.length === 0) return;
  const ids = [...new Set(rows.map((row) => Number(row[idField])))];
  const found = await db.query<{ id: number; wrapped_dek: Buffer | null; kek_id: string | null }>({
    name: 'anchorline_patient_key_read',
    text: 'SELECT id, wrapped_dek, kek_id FROM patient_key WHERE id = ANY($1::bigint[])',
    values: [ids],
  });
  const byId = new Map(found.rows.map((row) => [Number(row.id), row]));
  for (const row of rows) {
    const key = byId.get(Number(row[idField]));
    (row as Record<keyof Row, unknown>)[wrappedField] = key?.wrapped_dek ?? null;
    (row as Record<keyof Row, unknown>)[kekField] = key?.kek_id ?? null;
  }
}

/**
 * Unwraps the keys of sealed messages (rows with a raw_key; others are left as they are): `message_key` is set, or
 * `erased` where the key was under a patient key that is destroyed. A key that does not unwrap throws.
 */
export async function openMessageKeys(db: Queryable, rows: MessageKeyRow[]): Promise<void> {
  let keyring: Keyring | undefined;
  await readKeys(db, rows.filter((row) => row.raw_key_id !== null && row.raw_key_id !== undefined && row.patient_key_wrapped === undefined), 'raw_key_id', 'patient_key_wrapped', 'patient_key_kek');
  for (const row of rows) {
    if (row.raw_key === null || row.raw_key === undefined) continue;
    keyring ??= needKeyring(db);
    if (row.raw_key_id !== null && row.raw_key_id !== undefined) {
      if (row.patient_key_wrapped === null || row.patient_key_wrapped === undefined) {
        row.erased = true;
        continue;
      }
      const dek = await keyring.dekOf(Number(row.raw_key_id), row.patient_key_wrapped, row.patient_key_kek!);
      row.message_key = open(dek, row.raw_key, messageKeyAad(Number(row.id)));
    } else {
      row.message_key = await keyring.kms.unwrap(row.raw_key, row.raw_kek!);
    }
  }
}

/**
 * Replaces the sealed `raw` of rows with the message's bytes. A row whose patient key is destroyed keeps an empty
 * `raw` and is marked `erased`; the caller decides what that means for it (a read answers it is erased).
 */
export async function openRawRows(db: Queryable, rows: RawRow[]): Promise<void> {
  await openMessageKeys(db, rows);
  for (const row of rows) {
    if (row.erased) row.raw = Buffer.alloc(0);
    else if (row.message_key !== undefined) row.raw = open(row.message_key, row.raw, rawAad(row.raw_sha256));
  }
}

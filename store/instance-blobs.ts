/**
 * Whole DICOM instances in the blob store (store/blobs.ts), sealed at rest under their message's key, and read back
 * through the inbox rows that name them.
 *
 * Why the message's key: the intake reads only an instance's header and does not know its patient, so it cannot
 * seal under a patient's key. It seals the whole file under the same fresh key as the message's raw bytes
 * (store/inbox.ts), wrapped under the master key in the row; the ingest worker re-wraps that one key under the
 * patient's key once it has mapped the message, and the file follows without being rewritten. Rotating the master
 * key or the patient's key re-wraps the message key alone, so the file stays readable; erasing the patient destroys
 * the key the message key is wrapped under, so the file no longer opens, here or in a backup of the blob directory.
 *
 * Associated data (store/keys.ts blobAad): the instance's own SHA-256, which the row keeps as blob_sha256, under a
 * prefix of its own: a sealed file opens only as the instance its row names, and the raw bytes sealed under the same
 * key never open as the file, nor the file as them.
 *
 * Naming: a sealed file is named by the SHA-256 of its sealed bytes (the row keeps it as blob_sealed_sha256), not by
 * the instance's. Named by the instance's digest, the file name would outlive an erasure as a test of any copy of the
 * instance (a PACS's, a CD's): hash it, look for the name. The sealed digest commits to ciphertext under a random
 * key and nonce and confirms nothing; and the blob store's contract holds unchanged (a name is the SHA-256 of what
 * the file holds, checked on every read and by the audit, without a key).
 *
 * Duplicates: every sealing draws its own key and nonce, so the same instance received twice is two sealed files,
 * each named by one row. A resend found to be a duplicate (no row written) has its sealed copy removed; a conflict
 * row keeps its own. Plain instances (encryption off) stay one file per content, as before.
 *
 * Readers find an instance by its own SHA-256 (what the ImagingStudy's blob extension and GET /blobs/{sha256} name):
 * every row with that blob_sha256 is a way to it, plain or sealed (an erased row holds a keyed digest of it instead). Rows from before sealing have no
 * blob_sealed_sha256: their file is the plain instance under its own digest, read as before. An instance every row
 * of which was erased (its message key under a destroyed patient key, plain file or not) answers
 * ANCHORLINE_ERR_ERASED; one that no row names is not found.
 *
 * Memory: an instance is at most dicom.maxInstanceBytes (256 MiB by default) and the intake holds it whole already;
 * sealing writes it a slice at a time, and opening reads the file in chunks into one buffer of the instance's size,
 * so neither holds a second copy. The audit hashes what it opens without keeping it.
 */
import { createHash } from 'node:crypto';
import path from 'node:path';
import type { AnchorlineConfig } from '../config/schema.ts';
import { AnchorlineError } from '../errors/index.ts';
import { blobSha256Yielding, createFileBlobStore, type BlobRead, type BlobStore } from './blobs.ts';
import { blindIndexOf } from './blind-index.ts';
import type { Queryable } from './db.ts';
import { blobAad, keyringOf, openChunks, openMessageKeys, RAW_KEY_COLUMNS, SEAL_OVERHEAD_BYTES, sealChunks, type MessageKey, type MessageKeyRow } from './keys.ts';

/** The engine's blob store: dicom.blobDir, default '<dataDir>/blobs'. */
export function configuredBlobStore(config: AnchorlineConfig): BlobStore {
  return createFileBlobStore(config.dicom.blobDir ?? path.join(config.dataDir, 'blobs'));
}

/** An instance as the intake stored it, for its inbox row. */
export interface StoredInstance {
  /** SHA-256 of the instance as received: the row's blob_sha256. */
  sha256: Buffer;
  /** SHA-256 of the sealed file, its name in the blob store: the row's blob_sealed_sha256; null when stored plain. */
  sealedSha256: Buffer | null;
  /** The key it is sealed under: the row's raw bytes must be sealed under it too (InboxInput.messageKey). */
  messageKey?: MessageKey;
}

/**
 * Stores an instance: sealed under a fresh message key when `db`'s keyring seals (store/keys.ts), plain otherwise.
 * Durable when it resolves, so the caller may then commit the row that names it.
 */
export async function storeInstance(db: Queryable, blobs: BlobStore, bytes: Buffer): Promise<StoredInstance> {
  const keyring = keyringOf(db);
  if (!keyring?.sealing) {
    const put = await blobs.put(bytes);
    return { sha256: Buffer.from(put.sha256, 'hex'), sealedSha256: null };
  }
  const sha256 = Buffer.from(await blobSha256Yielding(bytes), 'hex');
  const messageKey = await keyring.newMessageKey();
  const put = await blobs.putChunks(sealChunks(messageKey.key, bytes, blobAad(sha256)));
  return { sha256, sealedSha256: Buffer.from(put.sha256, 'hex'), messageKey };
}

/** Removes the sealed copy of an instance that no row names (its message was a duplicate); a plain one is shared, and stays. */
export async function discardInstance(blobs: BlobStore, stored: StoredInstance): Promise<void> {
  if (stored.sealedSha256 !== null) await blobs.delete(stored.sealedSha256.toString('hex'));
}

interface InstanceRow extends MessageKeyRow {
  blob_sealed_sha256: Buffer | null;
}

/**
 * The instance whose own SHA-256 is `sha256`, verified, opened when sealed; undefined when no row names it or its
 * file is not stored. ANCHORLINE_ERR_ERASED when every row naming it was erased.
 */
export async function readInstance(db: Queryable, blobs: BlobStore, sha256: string): Promise<Buffer | undefined> {
  const digest = Buffer.from(sha256, 'hex');
  // Plain rows first: their file needs no key. One instance is named by few rows (resends by other senders). An erased
  // row keeps a keyed digest of the instance's SHA-256 instead (BlindIndex.erasedDigest), looked for too, so that an
  // erased instance still answers as erased rather than unknown.
  const keyed = (await blindIndexOf(db)).erasedDigest(digest);
  const rows = (
    await db.query<InstanceRow>({
      name: 'anchorline_instance_rows',
      text: `SELECT m.id, m.blob_sealed_sha256, ${RAW_KEY_COLUMNS} FROM inbox_message m
              WHERE m.blob_sha256 = $1 OR (m.blob_sha256 = $2 AND m.digests_keyed)
              ORDER BY m.blob_sealed_sha256 IS NOT NULL, m.id`,
      values: [digest, keyed],
    })
  ).rows;
  let erased = 0;
  for (const row of rows) {
    // One row at a time: the first that opens answers, and later rows' keys are not unwrapped.
    await openMessageKeys(db, [row]);
    if (row.erased) {
      erased += 1;
      continue;
    }
    if (row.blob_sealed_sha256 === null) {
      const bytes = await blobs.get(sha256);
      if (bytes !== undefined) return bytes;
      continue;
    }
    const read = await blobs.openRead(row.blob_sealed_sha256.toString('hex'));
    if (read === undefined) continue;
    return openInstance(row.message_key!, read, digest);
  }
  if (rows.length > 0 && erased === rows.length) throw new AnchorlineError('ANCHORLINE_ERR_ERASED', `DICOM instance ${sha256} was erased with its patient's key`);
  return undefined;
}

/** A sealed instance file opened into one buffer of the instance's size. */
async function openInstance(messageKey: Buffer, read: BlobRead, sha256: Buffer): Promise<Buffer> {
  const instance = Buffer.allocUnsafe(Math.max(0, read.size - SEAL_OVERHEAD_BYTES));
  let filled = 0;
  await openChunks(messageKey, read.chunks, read.size, blobAad(sha256), (plaintext) => {
    filled += plaintext.copy(instance, filled);
  });
  // openChunks checked that the sizes add up; this keeps uninitialised memory from ever being returned.
  if (filled !== instance.length) throw new AnchorlineError('ANCHORLINE_ERR_KEY_UNAVAILABLE', 'a sealed instance opened to another size than its file implies');
  return instance;
}

/**
 * For the audit: the SHA-256 of a sealed instance file as opened under its message key, read as a stream and kept
 * nowhere. Throws ANCHORLINE_ERR_BLOB_CORRUPT when the file does not hash to its name, ANCHORLINE_ERR_KEY_UNAVAILABLE
 * when it does not open as the instance `sha256` names; undefined when the file is not stored.
 */
export async function openedInstanceSha256(blobs: BlobStore, sealedSha256: string, messageKey: Buffer, sha256: Buffer): Promise<string | undefined> {
  const read = await blobs.openRead(sealedSha256);
  if (read === undefined) return undefined;
  const hash = createHash('sha256');
  await openChunks(messageKey, read.chunks, read.size, blobAad(sha256), (plaintext) => hash.update(plaintext));
  return hash.digest('hex');
}

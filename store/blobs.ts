/**
 * The blob store: whole instance bytes (DICOM files) kept outside PostgreSQL, named by their content.
 *
 * Contract:
 * - A blob's name is the lowercase hex SHA-256 of its bytes, and nothing else: no path, file name or identifier from
 *   any input ever becomes part of where a blob is kept, so a sender cannot steer a write (a UID with `../` has no
 *   way in).
 * - The store does not know what the bytes are. With encryption at rest, the DICOM intake stores an instance sealed
 *   under its message's key (store/instance-blobs.ts), so the name is the SHA-256 of the sealed bytes, and the
 *   inbox row keeps both that name and the instance's own SHA-256; without it, the instance is stored as received,
 *   named by its own SHA-256. Either way the name is what was written, so the checks below hold for both.
 * - `put` and `putChunks` are idempotent: storing bytes that are already stored writes nothing and returns the same
 *   name. Two processes storing the same bytes at once both succeed with one file. When they resolve the bytes are
 *   durable (file and directory entry fsynced), so a caller may then commit a database row that names the blob.
 *   Duplicates: plain instances with the same bytes are one blob, however many messages name it. A sealing draws a
 *   fresh key and nonce, so the same instance received twice, sealed under two messages' keys, is two blobs, each
 *   named by exactly one inbox row.
 * - `get` and `openRead` verify what they read: bytes that no longer hash to their name are never returned (`get`)
 *   or end the read with ANCHORLINE_ERR_BLOB_CORRUPT (`openRead`). A blob that is not stored is `undefined`.
 * - The engine deletes a blob only when it is sealed, so that no other row can name it: the sealed copy of a resend
 *   that turned out a duplicate (no row was written), and the instances of an erased patient (store/erasure.ts).
 *   Plain blobs are shared by every message with the same bytes and are never deleted. A blob whose database row
 *   was rolled back is an orphan that costs space only.
 *
 * The filesystem layout is `<dir>/<aa>/<bb>/<sha256>` (aa, bb: the digest's first two byte pairs), so no directory
 * grows past 65,536 entries per level for any realistic archive. A write goes to a temporary file (in the target
 * directory, or in `<dir>` when the name is known only once the bytes are written), is fsynced, and is renamed into
 * place (atomic on POSIX), so a reader never sees half a blob.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, rename, rm, stat, readFile, unlink } from 'node:fs/promises';
import path from 'node:path';
import { AnchorlineError } from '../errors/index.ts';

/** Lowercase hex SHA-256: the only shape of blob name the store accepts. */
const DIGEST = /^[0-9a-f]{64}$/;

export interface BlobPut {
  /** Lowercase hex SHA-256 of the bytes: the blob's name. */
  sha256: string;
  size: number;
  /** False when the blob was already stored. */
  created: boolean;
}

/** A stored blob opened for reading: its size, and its bytes as chunks. */
export interface BlobRead {
  size: number;
  /**
   * The bytes, in chunks of at most 1 MiB, hashed as they go: once the last is read, a blob that does not hash to
   * its name throws ANCHORLINE_ERR_BLOB_CORRUPT, so a reader uses nothing it read before the iteration ends. The
   * file is opened by the first read and closed when the iteration ends, fails or is left; iterate it once.
   */
  chunks: AsyncIterable<Buffer>;
}

export interface BlobStore {
  /** Stores bytes under their SHA-256; durable when it resolves. Idempotent. */
  put(bytes: Buffer): Promise<BlobPut>;
  /**
   * Stores the bytes the chunks make, in order, under their SHA-256, without holding them all (a sealed instance is
   * written as it is sealed); durable when it resolves. Idempotent, as `put`.
   */
  putChunks(chunks: AsyncIterable<Buffer> | Iterable<Buffer>): Promise<BlobPut>;
  /** The bytes named by a digest, verified against it; undefined when not stored. */
  get(sha256: string): Promise<Buffer | undefined>;
  /** A stored blob as a stream of chunks, verified at its end; undefined when not stored. */
  openRead(sha256: string): Promise<BlobRead | undefined>;
  /** Removes a blob (a sealed one that no row may name any more); false when it was not stored. */
  delete(sha256: string): Promise<boolean>;
  /** The size in bytes of a stored blob, without reading it; undefined when not stored. */
  size(sha256: string): Promise<number | undefined>;
  /**
   * The lowercase hex SHA-256 of the bytes stored under a name, read as a stream (memory does not grow with the
   * blob), for an audit; undefined when not stored. Unlike `get`, bytes that no longer match their name are no error.
   */
  rehash(sha256: string): Promise<string | undefined>;
}

export function isBlobDigest(value: string): boolean {
  return DIGEST.test(value);
}

export function blobSha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Chunks a blob is read in, as a stream. */
const READ_CHUNK_BYTES = 1024 * 1024;

/** Hashing runs in slices of this many bytes with a turn of the event loop between them. */
const HASH_SLICE_BYTES = 8 * 1024 * 1024;

/**
 * The SHA-256 of a large buffer without holding the event loop for the whole of it (a 256 MiB instance takes about
 * half a second to hash, long enough to stall every other connection's answers).
 */
export async function blobSha256Yielding(bytes: Buffer): Promise<string> {
  if (bytes.length <= HASH_SLICE_BYTES) return blobSha256(bytes);
  const hash = createHash('sha256');
  for (let at = 0; at < bytes.length; at += HASH_SLICE_BYTES) {
    hash.update(bytes.subarray(at, at + HASH_SLICE_BYTES));
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  return hash.digest('hex');
}

/** A blob store in a directory of the local filesystem (default `<dataDir>/blobs`). */
export function createFileBlobStore(dir: string): BlobStore {
  const root = path.resolve(dir);

  const pathOf = (sha256: string): string => {
    if (!DIGEST.test(sha256)) throw new AnchorlineError('ANCHORLINE_ERR_INVALID_REQUEST', 'a blob name is a lowercase hex SHA-256');
    return path.join(root, sha256.slice(0, 2), sha256.slice(2, 4), sha256);
  };

  const sizeOf = async (file: string): Promise<number | undefined> => {
    try {
      return (await stat(file)).size;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
  };

  return {
    async put(bytes) {
      const sha256 = await blobSha256Yielding(bytes);
      const file = pathOf(sha256);
      // A file of the right size under this name holds these bytes unless the disk was tampered with; `get`
      // catches that. A wrong size (a torn copy from outside the engine) is replaced.
      if ((await sizeOf(file)) === bytes.length) return { sha256, size: bytes.length, created: false };
      const directory = path.dirname(file);
      await mkdir(directory, { recursive: true });
      const temporary = path.join(directory, `.${sha256}.${randomBytes(6).toString('hex')}.tmp`);
      try {
        const handle = await open(temporary, 'wx', 0o640);
        try {
          await handle.writeFile(bytes);
          await handle.sync();
        } finally {
          await handle.close();
        }
        await rename(temporary, file);
      } catch (error) {
        await rm(temporary, { force: true });
        throw error;
      }
      await syncDirectory(directory);
      return { sha256, size: bytes.length, created: true };
    },

    async get(sha256) {
      const file = pathOf(sha256);
      let bytes: Buffer;
      try {
        bytes = await readFile(file);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw error;
      }
      if ((await blobSha256Yielding(bytes)) !== sha256) throw new AnchorlineError('ANCHORLINE_ERR_BLOB_CORRUPT', `blob ${sha256} does not hash to its name`);
      return bytes;
    },

    async putChunks(chunks) {
      // The name is known only once every byte is written: the temporary file goes in the root, on the same
      // filesystem as its target directory, so the rename is still atomic.
      await mkdir(root, { recursive: true });
      const temporary = path.join(root, `.${randomBytes(8).toString('hex')}.tmp`);
      const hash = createHash('sha256');
      let size = 0;
      try {
        const handle = await open(temporary, 'wx', 0o640);
        try {
          for await (const chunk of chunks) {
            hash.update(chunk);
            size += chunk.length;
            for (let written = 0; written < chunk.length; ) written += (await handle.write(chunk, written, chunk.length - written)).bytesWritten;
          }
          await handle.sync();
        } finally {
          await handle.close();
        }
        const sha256 = hash.digest('hex');
        const file = pathOf(sha256);
        if ((await sizeOf(file)) === size) {
          await rm(temporary, { force: true });
          return { sha256, size, created: false };
        }
        const directory = path.dirname(file);
        await mkdir(directory, { recursive: true });
        await rename(temporary, file);
        await syncDirectory(directory);
        return { sha256, size, created: true };
      } catch (error) {
        await rm(temporary, { force: true });
        throw error;
      }
    },

    async openRead(sha256) {
      const file = pathOf(sha256);
      const size = await sizeOf(file);
      if (size === undefined) return undefined;
      // The file is opened when the chunks are first read, so an openRead that is never read holds nothing open.
      // A blob is never rewritten in place (same name, same bytes), so the size read here is the size read there;
      // a blob removed in between ends the read with ENOENT.
      async function* chunks(): AsyncGenerator<Buffer> {
        const hash = createHash('sha256');
        for await (const chunk of createReadStream(file, { highWaterMark: READ_CHUNK_BYTES })) {
          hash.update(chunk as Buffer);
          yield chunk as Buffer;
        }
        if (hash.digest('hex') !== sha256) throw new AnchorlineError('ANCHORLINE_ERR_BLOB_CORRUPT', `blob ${sha256} does not hash to its name`);
      }
      return { size, chunks: chunks() };
    },

    async delete(sha256) {
      try {
        await unlink(pathOf(sha256));
        return true;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
        throw error;
      }
    },

    async size(sha256) {
      return sizeOf(pathOf(sha256));
    },

    async rehash(sha256) {
      const hash = createHash('sha256');
      try {
        for await (const chunk of createReadStream(pathOf(sha256), { highWaterMark: READ_CHUNK_BYTES })) hash.update(chunk as Buffer);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw error;
      }
      return hash.digest('hex');
    },
  };
}

/** Makes a rename durable: the new directory entry is on disk once the directory itself is fsynced. */
async function syncDirectory(directory: string): Promise<void> {
  const handle = await open(directory, 'r');
  try {
    await handle.sync();
  } catch (error) {
    // Some filesystems refuse fsync on a directory (EINVAL/EISDIR); the rename is then as durable as they allow.
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'EINVAL' && code !== 'EISDIR' && code !== 'EPERM') throw error;
  } finally {
    await handle.close();
  }
}

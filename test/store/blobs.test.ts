/**
 * The content-addressed blob store on a real directory: names are digests and nothing else, writes are idempotent
 * and atomic (whole or as a stream of chunks), reads verify (whole or as a stream), and a blob can be removed.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createFileBlobStore, type BlobStore } from '../../store/index.ts';

let dir: string;
let blobs: BlobStore;

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'anchorline-blobs-'));
  blobs = createFileBlobStore(dir);
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const digest = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex');

async function filesUnder(root: string): Promise<string[]> {
  return (await readdir(root, { recursive: true, withFileTypes: true })).filter((entry) => entry.isFile()).map((entry) => path.relative(root, path.join(entry.parentPath, entry.name)));
}

describe('blob store', () => {
  it('stores bytes under <aa>/<bb>/<sha256> and reads them back', async () => {
    const bytes = Buffer.from('DICM instance bytes');
    const put = await blobs.put(bytes);
    expect(put).toEqual({ sha256: digest(bytes), size: bytes.length, created: true });
    expect(await filesUnder(dir)).toEqual([path.join(put.sha256.slice(0, 2), put.sha256.slice(2, 4), put.sha256)]);
    expect((await blobs.get(put.sha256))!.equals(bytes)).toBe(true);
    expect(await blobs.size(put.sha256)).toBe(bytes.length);
  });

  it('re-hashes what is stored under a name as a stream, without refusing bytes that no longer match it', async () => {
    const bytes = Buffer.alloc(3 * 1024 * 1024 + 5, 7);
    const { sha256 } = await blobs.put(bytes);
    expect(await blobs.rehash(sha256)).toBe(sha256);
    const changed = Buffer.from(bytes);
    changed[changed.length - 1] = 8;
    await writeFile(path.join(dir, sha256.slice(0, 2), sha256.slice(2, 4), sha256), changed);
    expect(await blobs.rehash(sha256)).toBe(digest(changed));
    expect(await blobs.rehash(digest(Buffer.from('never stored')))).toBeUndefined();
  });

  it('is idempotent, also when the same bytes are stored at once', async () => {
    const bytes = Buffer.alloc(20 * 1024 * 1024, 7);
    const puts = await Promise.all([blobs.put(bytes), blobs.put(bytes), blobs.put(bytes)]);
    expect(new Set(puts.map((p) => p.sha256)).size).toBe(1);
    expect((await blobs.put(bytes)).created).toBe(false);
    // No temporary files left behind.
    expect(await filesUnder(dir)).toHaveLength(1);
  });

  it('answers undefined for a blob it does not hold', async () => {
    expect(await blobs.get('0'.repeat(64))).toBeUndefined();
    expect(await blobs.size('0'.repeat(64))).toBeUndefined();
  });

  it('refuses any name that is not a lowercase hex SHA-256, so no input can name a path', async () => {
    for (const name of ['../../etc/passwd', '..', 'A'.repeat(64), `${'0'.repeat(63)}/`, '0'.repeat(65), '']) {
      await expect(blobs.get(name), name).rejects.toMatchObject({ code: 'ANCHORLINE_ERR_INVALID_REQUEST' });
    }
  });

  it('stores a stream of chunks under the digest of what they make, idempotently, leaving no temporary file', async () => {
    const parts = [Buffer.from('sealed '), Buffer.alloc(2 * 1024 * 1024 + 3, 9), Buffer.alloc(0), Buffer.from(' end')];
    const whole = Buffer.concat(parts);
    async function* chunks(): AsyncGenerator<Buffer> {
      for (const part of parts) yield part;
    }
    const put = await blobs.putChunks(chunks());
    expect(put).toEqual({ sha256: digest(whole), size: whole.length, created: true });
    expect((await blobs.get(put.sha256))!.equals(whole)).toBe(true);
    expect(await blobs.putChunks(parts)).toEqual({ ...put, created: false });
    expect(await filesUnder(dir)).toEqual([path.join(put.sha256.slice(0, 2), put.sha256.slice(2, 4), put.sha256)]);
    // A stream that fails part way stores nothing.
    async function* failing(): AsyncGenerator<Buffer> {
      yield Buffer.from('half');
      throw new Error('the source failed');
    }
    await expect(blobs.putChunks(failing())).rejects.toThrow('the source failed');
    expect(await filesUnder(dir)).toHaveLength(1);
  });

  it('reads a blob as a stream of chunks, and ends a read of bytes that no longer hash to their name with an error', async () => {
    const bytes = Buffer.alloc(3 * 1024 * 1024 + 5, 7);
    const { sha256 } = await blobs.put(bytes);
    const read = await blobs.openRead(sha256);
    expect(read!.size).toBe(bytes.length);
    const chunks: Buffer[] = [];
    for await (const chunk of read!.chunks) chunks.push(chunk);
    expect(chunks.length).toBeGreaterThan(1);
    expect(Buffer.concat(chunks).equals(bytes)).toBe(true);
    expect(await blobs.openRead(digest(Buffer.from('never stored')))).toBeUndefined();

    const changed = Buffer.from(bytes);
    changed[0] = 8;
    await writeFile(path.join(dir, sha256.slice(0, 2), sha256.slice(2, 4), sha256), changed);
    const tampered = await blobs.openRead(sha256);
    const drain = async (): Promise<void> => {
      for await (const _chunk of tampered!.chunks);
    };
    await expect(drain()).rejects.toMatchObject({ code: 'ANCHORLINE_ERR_BLOB_CORRUPT' });
  });

  it('removes a blob, once', async () => {
    const { sha256 } = await blobs.put(Buffer.from('to be removed'));
    expect(await blobs.delete(sha256)).toBe(true);
    expect(await blobs.get(sha256)).toBeUndefined();
    expect(await blobs.delete(sha256)).toBe(false);
    await expect(blobs.delete('../x')).rejects.toMatchObject({ code: 'ANCHORLINE_ERR_INVALID_REQUEST' });
  });

  it('never returns bytes that no longer hash to their name', async () => {
    const { sha256 } = await blobs.put(Buffer.from('original'));
    const file = path.join(dir, sha256.slice(0, 2), sha256.slice(2, 4), sha256);
    await writeFile(file, 'tampered');
    await expect(blobs.get(sha256)).rejects.toMatchObject({ code: 'ANCHORLINE_ERR_BLOB_CORRUPT' });
    // A torn copy (another size) is replaced by the next put of the real bytes.
    await writeFile(file, 'orig');
    expect((await blobs.put(Buffer.from('original'))).created).toBe(true);
    expect((await blobs.get(sha256))!.toString()).toBe('original');
  });
});

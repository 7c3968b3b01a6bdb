/**
 * Sealing as a stream (store/keys.ts sealChunks, openChunks), as a DICOM instance file is sealed and opened: the same
 * format as a sealing in one piece, opened whatever the chunks it is read in, and refused at its end for any changed
 * byte, another value's associated data, another key or a size that does not add up.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { encryption } from '../../store/index.ts';

const { open, openChunks, seal, sealChunks, SEAL_OVERHEAD_BYTES } = encryption;

async function collect(chunks: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of chunks) parts.push(chunk);
  return Buffer.concat(parts);
}

/** `bytes` cut at random places (empty chunks included), as a file read could hand them over. */
async function* randomly(bytes: Buffer): AsyncGenerator<Buffer> {
  let at = 0;
  while (at < bytes.length) {
    const size = Math.floor(Math.random() * Math.random() * 64);
    yield bytes.subarray(at, at + size);
    at += size;
  }
}

async function opened(key: Buffer, sealed: Buffer, aad: string, chunks: AsyncIterable<Buffer> = randomly(sealed), size = sealed.length): Promise<Buffer> {
  const parts: Buffer[] = [];
  await openChunks(key, chunks, size, aad, (plaintext) => parts.push(plaintext));
  return Buffer.concat(parts);
}

describe('sealing as a stream', () => {
  it('makes what seal makes, opened in one piece or in any chunks', async () => {
    const key = randomBytes(32);
    for (const size of [0, 1, 12, 13, 16, 29, 100, 4096 + 7]) {
      const plaintext = randomBytes(size);
      const sealed = await collect(sealChunks(key, plaintext, 'aad'));
      expect(sealed.length, `${size}`).toBe(size + SEAL_OVERHEAD_BYTES);
      expect(open(key, sealed, 'aad').equals(plaintext), `${size}`).toBe(true);
      for (let round = 0; round < 20; round++) expect((await opened(key, sealed, 'aad')).equals(plaintext), `${size}`).toBe(true);
      const whole = seal(key, plaintext, 'aad');
      expect((await opened(key, whole, 'aad')).equals(plaintext), `${size}`).toBe(true);
    }
  });

  it('seals a plaintext larger than one slice', async () => {
    const key = randomBytes(32);
    const plaintext = randomBytes(8 * 1024 * 1024 + 5);
    const chunks: Buffer[] = [];
    for await (const chunk of sealChunks(key, plaintext, 'aad')) chunks.push(chunk);
    expect(chunks.length).toBeGreaterThan(3);
    expect(open(key, Buffer.concat(chunks), 'aad').equals(plaintext)).toBe(true);
  });

  it('refuses at the end any changed byte, another associated data, another key, and a size that does not add up', async () => {
    const key = randomBytes(32);
    const plaintext = randomBytes(300);
    const sealed = await collect(sealChunks(key, plaintext, 'aad'));
    for (let at = 0; at < sealed.length; at++) {
      const changed = Buffer.from(sealed);
      changed[at]! ^= 1;
      await expect(opened(key, changed, 'aad'), `byte ${at}`).rejects.toMatchObject({ code: 'ANCHORLINE_ERR_KEY_UNAVAILABLE' });
    }
    await expect(opened(key, sealed, 'other')).rejects.toMatchObject({ code: 'ANCHORLINE_ERR_KEY_UNAVAILABLE' });
    await expect(opened(randomBytes(32), sealed, 'aad')).rejects.toMatchObject({ code: 'ANCHORLINE_ERR_KEY_UNAVAILABLE' });
    await expect(opened(key, sealed.subarray(0, sealed.length - 1), 'aad', randomly(sealed.subarray(0, sealed.length - 1)), sealed.length)).rejects.toMatchObject({ code: 'ANCHORLINE_ERR_KEY_UNAVAILABLE' });
    await expect(opened(key, sealed, 'aad', randomly(sealed), sealed.length - 1)).rejects.toMatchObject({ code: 'ANCHORLINE_ERR_KEY_UNAVAILABLE' });
    await expect(opened(key, sealed.subarray(0, 20), 'aad', randomly(sealed.subarray(0, 20)), 20)).rejects.toMatchObject({ code: 'ANCHORLINE_ERR_KEY_UNAVAILABLE' });
  });
});

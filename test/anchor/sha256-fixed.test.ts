// The tree builder's private SHA-256 must agree with @noble/hashes on every input it can be given.
import { sha256 } from '@noble/hashes/sha2.js';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { bytesToWordsAt, nodeHashWords, prefixedHashWords, wordsToHash } from '../../anchor/sha256-fixed.ts';

function withPrefix(prefix: number, data: Uint8Array): Uint8Array {
  const message = new Uint8Array(1 + data.length);
  message[0] = prefix;
  message.set(data, 1);
  return message;
}

function fastPrefixed(prefix: number, data: Uint8Array): Uint8Array {
  const words = new Int32Array(8);
  prefixedHashWords(prefix, data, words, 0);
  return wordsToHash(words, 0);
}

function fastNode(left: Uint8Array, right: Uint8Array): Uint8Array {
  const words = new Int32Array(16);
  bytesToWordsAt(left, 0, words, 0);
  bytesToWordsAt(right, 0, words, 8);
  // In place, as the root builder uses it: the output overwrites the left child.
  nodeHashWords(words, 0, 8, words, 0);
  return wordsToHash(words, 0);
}

describe('sha256-fixed', () => {
  it('matches the FIPS 180-4 "abc" example through the prefixed path', () => {
    // "abc" = prefix 'a' followed by "bc".
    expect(fastPrefixed(0x61, new TextEncoder().encode('bc'))).toEqual(
      Uint8Array.from(Buffer.from('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad', 'hex')),
    );
  });

  it('prefixed hashes agree with @noble/hashes at every length across the block boundaries', () => {
    const data = Uint8Array.from({ length: 300 }, (_, i) => (i * 131 + 7) & 0xff);
    for (let len = 0; len <= 300; len++) {
      const slice = data.subarray(0, len);
      expect(fastPrefixed(0x00, slice)).toEqual(sha256(withPrefix(0x00, slice)));
    }
  });

  it('prefixed hashes agree with @noble/hashes on random input', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 255 }), fc.uint8Array({ maxLength: 200 }), (prefix, data) => {
        expect(fastPrefixed(prefix, data)).toEqual(sha256(withPrefix(prefix, data)));
      }),
      { numRuns: 300 },
    );
  });

  it('node hashes agree with @noble/hashes, including every value of the last byte', () => {
    const left = Uint8Array.from({ length: 32 }, (_, i) => 255 - i);
    for (let last = 0; last < 256; last++) {
      const right = Uint8Array.from({ length: 32 }, (_, i) => (i === 31 ? last : i * 9));
      expect(fastNode(left, right)).toEqual(sha256(Uint8Array.of(0x01, ...left, ...right)));
    }
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.uint8Array({ minLength: 32, maxLength: 32 }), (l, r) => {
        expect(fastNode(l, r)).toEqual(sha256(Uint8Array.of(0x01, ...l, ...r)));
      }),
      { numRuns: 300 },
    );
  });
});

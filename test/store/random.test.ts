/**
 * The block-drawn random bytes of data keys and nonces (store/random.ts): every request its own bytes, never the
 * same twice across block boundaries, never changed by later requests, and sizes past the pool drawn directly.
 */
import { describe, expect, it } from 'vitest';
import { secureRandomBytes } from '../../store/random.ts';

describe('secureRandomBytes', () => {
  it('hands out bytes of the size asked, no two the same across many blocks, none changed by later draws', () => {
    const drawn: Buffer[] = [];
    const copies: string[] = [];
    // 12- and 32-byte requests (nonces and keys) in an order that straddles block ends.
    for (let i = 0; i < 2_000; i++) {
      const bytes = secureRandomBytes(i % 3 === 0 ? 32 : 12);
      expect(bytes.length).toBe(i % 3 === 0 ? 32 : 12);
      drawn.push(bytes);
      copies.push(bytes.toString('hex'));
    }
    expect(new Set(copies).size).toBe(copies.length);
    // A buffer handed out is its own: later draws (and new blocks) leave it as it was.
    for (let i = 0; i < 500; i++) secureRandomBytes(32);
    expect(drawn.map((bytes) => bytes.toString('hex'))).toEqual(copies);
    // Not all zero: the block's bytes are copied before the block is cleared.
    expect(drawn.some((bytes) => bytes.some((byte) => byte !== 0))).toBe(true);
    expect(drawn.filter((bytes) => bytes.every((byte) => byte === 0))).toEqual([]);
  });

  it('draws sizes past the pool directly', () => {
    const big = secureRandomBytes(1024);
    expect(big.length).toBe(1024);
    expect(secureRandomBytes(1024).equals(big)).toBe(false);
    expect(secureRandomBytes(0).length).toBe(0);
  });
});

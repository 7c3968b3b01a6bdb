/**
 * A blind index's hashes (store/blind-index.ts) are a pure function of the key and the input: the same whether
 * computed, remembered, or remembered from before the memo of recent hashes turned over a generation, and another
 * key gives others.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { BlindIndex } from '../../store/index.ts';

/** What a hash must be: 64 bits of HMAC-SHA-256 over domain, parameter and value, in decimal. */
function expected(key: Buffer, domain: string, param: string, value: string): string {
  return createHmac('sha256', key).update(`${domain}\u0000${param}\u0000${value}`).digest().readBigInt64BE(0).toString();
}

describe('blind index hashes', () => {
  it('are the HMAC of their input, computed or remembered, across the turnover of the memo', () => {
    const key = randomBytes(32);
    const index = new BlindIndex(key);
    const first = index.exactHash('name', 'hong gildong');
    expect(first).toBe(expected(key, 'exact', 'name', 'hong gildong'));
    expect(index.exactHash('name', 'hong gildong')).toBe(first);
    // More inputs than two generations of the memo hold: the first is then forgotten and computed again.
    for (let n = 0; n < 120_000; n++) index.codeHash('identifier', `MRN${n}`);
    expect(index.codeHash('identifier', 'MRN119999')).toBe(expected(key, 'code', 'identifier', 'MRN119999'));
    expect(index.codeHash('identifier', 'MRN70000')).toBe(expected(key, 'code', 'identifier', 'MRN70000'));
    expect(index.exactHash('name', 'hong gildong')).toBe(first);
    expect(index.tokenHash('identifier', 'urn:mrn', 'MRN1')).toBe(expected(key, 'token', 'identifier', 'urn:mrn\u0000MRN1'));
    expect(new BlindIndex(randomBytes(32)).exactHash('name', 'hong gildong')).not.toBe(first);
  });
});

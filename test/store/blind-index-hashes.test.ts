/**
 * A blind index's hashes (store/blind-index.ts) are a pure function of the key and the input: the same whether
 * computed, remembered, or remembered from before the memo of recent hashes turned over a generation, and another
 * key gives others. A connection offers a vocabulary value's rows until a write finds them all stored before it.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { noteVocabulary, unknownVocabulary, type BlindVocabularyRow } from '../../store/blind-index.ts';
import type { Queryable } from '../../store/db.ts';
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

describe('the vocabulary a connection offers', () => {
  const row = (prefix: string, value: string): BlindVocabularyRow => ['AuditEvent', 'agent-name', prefix, value];

  it('offers every row, once and in one order, until a write found all of a value stored before it', () => {
    const connection = {} as Queryable;
    const rows = [row('3', '10'), row('1', '10'), row('2', '20'), row('1', '10')];
    const offered = unknownVocabulary(connection, rows);
    expect(offered).toEqual([row('1', '10'), row('3', '10'), row('2', '20')]);
    // This write inserted value 10's rows itself: that transaction could still roll back, so 10 is offered again.
    // Value 20's row was there already (its insert conflicted): stored by a transaction that committed.
    noteVocabulary(connection, offered, [{ resource_type: 'AuditEvent', param: 'agent-name', value_hash: '10' }]);
    expect(unknownVocabulary(connection, rows)).toEqual([row('1', '10'), row('3', '10')]);
    noteVocabulary(connection, [row('1', '10'), row('3', '10')], []);
    expect(unknownVocabulary(connection, rows)).toEqual([]);
    // What one connection learnt says nothing of another's database.
    expect(unknownVocabulary({} as Queryable, rows)).toHaveLength(3);
  });
});

import { describe, expect, it } from 'vitest';

import { BoundedMemo } from '../../mappers/memo.ts';

describe('BoundedMemo', () => {
  it('answers what was remembered, and nothing for what was not', () => {
    const memo = new BoundedMemo<string, number>(4);
    memo.set('a', 1);
    memo.set('b', 2);
    expect(memo.get('a')).toBe(1);
    expect(memo.get('b')).toBe(2);
    expect(memo.get('c')).toBeUndefined();
    memo.set('a', 3);
    expect(memo.get('a')).toBe(3);
  });

  it('keeps at most two generations, and what is used moves to the current one', () => {
    const memo = new BoundedMemo<number, number>(3);
    for (let key = 0; key < 3; key++) memo.set(key, key);
    // A fourth key starts a new generation; the first three are still found.
    memo.set(3, 3);
    expect(memo.get(0)).toBe(0);
    // 3 and 0 are current now, 1 and 2 only in the previous generation. One more key fills the current one...
    memo.set(4, 4);
    // ...and the next starts another: the generation that still held 1 and 2 is dropped.
    memo.set(5, 5);
    expect(memo.get(1)).toBeUndefined();
    expect(memo.get(2)).toBeUndefined();
    for (const key of [0, 3, 4, 5]) expect(memo.get(key)).toBe(key);
  });

  it('stays bounded under keys never seen again', () => {
    const memo = new BoundedMemo<string, number>(100);
    for (let key = 0; key < 10_000; key++) memo.set(`key-${key}`, key);
    let found = 0;
    for (let key = 0; key < 10_000; key++) if (memo.get(`key-${key}`) !== undefined) found++;
    expect(found).toBeLessThanOrEqual(200);
  });
});

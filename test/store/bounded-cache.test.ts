/** The store's bounded cache: never more than two generations, what is used survives a generation change, delete reaches both. */
import { describe, expect, it } from 'vitest';
import { BoundedCache } from '../../store/bounded-cache.ts';

describe('BoundedCache', () => {
  it('holds at most twice its capacity and drops what was not used for a generation', () => {
    const cache = new BoundedCache<number, string>(3);
    for (let n = 0; n < 100; n++) {
      cache.set(n, `v${n}`);
      expect(cache.size).toBeLessThanOrEqual(6);
    }
    expect(cache.get(99)).toBe('v99');
    expect(cache.get(0)).toBeUndefined();
  });

  it('keeps an entry that is read while it is in the previous generation', () => {
    const cache = new BoundedCache<string, number>(2);
    cache.set('kept', 1);
    cache.set('a', 2);
    cache.set('b', 3); // 'kept' and 'a' are now the previous generation
    expect(cache.get('kept')).toBe(1); // moved to the current one
    cache.set('c', 4); // the current one ('b', 'kept') was full: 'a' is gone, 'kept' stays a generation more
    expect(cache.get('a')).toBeUndefined();
    expect(cache.get('kept')).toBe(1);
  });

  it('forgets a deleted entry in either generation, and everything on clear', () => {
    const cache = new BoundedCache<string, number>(1);
    cache.set('old', 1);
    cache.set('new', 2);
    cache.delete('old');
    cache.delete('new');
    expect(cache.get('old')).toBeUndefined();
    expect(cache.get('new')).toBeUndefined();
    cache.set('x', 3);
    cache.clear();
    expect(cache.size).toBe(0);
  });
});

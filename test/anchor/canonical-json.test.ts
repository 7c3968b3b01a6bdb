import { readdirSync, readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  CANONICAL_JSON_ERROR_CODE,
  CanonicalJsonError,
  MAX_CANONICAL_DEPTH,
  canonicalBytes,
  canonicalize,
  hexToBytes,
  type CanonicalJsonProblem,
} from '../../anchor/index.ts';

const FIXTURES = new URL('../fixtures/anchor/jcs/', import.meta.url);
const readText = (name: string): string => readFileSync(new URL(name, FIXTURES), 'utf8');

/** Runs `fn` and returns the CanonicalJsonError it throws; fails the test if it throws anything else or nothing. */
function canonicalError(fn: () => unknown): CanonicalJsonError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(CanonicalJsonError);
    return error as CanonicalJsonError;
  }
  throw new Error('expected a CanonicalJsonError, nothing was thrown');
}

describe('RFC 8785 fixtures', () => {
  const names = readdirSync(FIXTURES)
    .filter((file) => file.endsWith('.input.json'))
    .map((file) => file.slice(0, -'.input.json'.length));

  it('finds the RFC examples on disk', () => {
    expect(names).toEqual(expect.arrayContaining(['rfc8785-3.2.3-structure', 'rfc8785-3.2.3-sorting']));
  });

  it.each(names)('%s canonicalizes to the expected bytes', (name) => {
    const input: unknown = JSON.parse(readText(`${name}.input.json`));
    const expected = new Uint8Array(readFileSync(new URL(`${name}.expected.json`, FIXTURES)));
    expect(canonicalize(input)).toBe(new TextDecoder().decode(expected));
    expect(canonicalBytes(input)).toEqual(expected);
  });

  interface NumberCase {
    ieee754: string;
    expected?: string;
    wantErr?: CanonicalJsonProblem;
  }
  const numberCases = (JSON.parse(readText('rfc8785-appendix-b-numbers.json')) as { cases: NumberCase[] }).cases;

  it.each(numberCases)('Appendix B: $ieee754 -> $expected$wantErr', ({ ieee754, expected, wantErr }) => {
    const value = new DataView(hexToBytes(ieee754).buffer).getFloat64(0, false);
    if (wantErr) {
      const error = canonicalError(() => canonicalize([value]));
      expect(error.problem).toBe(wantErr);
      expect(error.path).toBe('/0');
      expect(error.code).toBe(CANONICAL_JSON_ERROR_CODE);
    } else {
      expect(canonicalize(value)).toBe(expected);
    }
  });

  const wantErr = JSON.parse(readText('wantErr/errors.json')) as Record<string, { problem: CanonicalJsonProblem; path: string }>;
  it.each(Object.entries(wantErr))('wantErr/%s is rejected', (file, { problem, path }) => {
    const input: unknown = JSON.parse(readText(`wantErr/${file}`));
    const error = canonicalError(() => canonicalBytes(input));
    expect(error.problem).toBe(problem);
    expect(error.path).toBe(path);
  });
});

describe('values JSON cannot represent', () => {
  class Patient {
    id = 'p1';
  }
  const sparse: unknown[] = [1];
  sparse[2] = 3;
  const cyclic: Record<string, unknown> = { a: 1 };
  cyclic.self = cyclic;

  const cases: Array<[string, unknown, CanonicalJsonProblem, string]> = [
    ['undefined at the root', undefined, 'unsupported-type', ''],
    ['undefined member', { a: undefined }, 'unsupported-type', '/a'],
    ['undefined in an array', [1, undefined], 'unsupported-type', '/1'],
    ['function', { f: () => 1 }, 'unsupported-type', '/f'],
    ['symbol value', [Symbol('s')], 'unsupported-type', '/0'],
    ['bigint', { n: 10n }, 'unsupported-type', '/n'],
    ['NaN', { x: Number.NaN }, 'non-finite-number', '/x'],
    ['-Infinity', [Number.NEGATIVE_INFINITY], 'non-finite-number', '/0'],
    ['Date', { at: new Date(0) }, 'non-plain-object', '/at'],
    ['Map', new Map(), 'non-plain-object', ''],
    ['class instance', { p: new Patient() }, 'non-plain-object', '/p'],
    ['Uint8Array', { b: new Uint8Array(1) }, 'non-plain-object', '/b'],
    ['boxed string', [Object('s')], 'non-plain-object', '/0'],
    ['symbol key', { [Symbol('k')]: 1 }, 'symbol-key', ''],
    ['sparse array', { list: sparse }, 'sparse-array', '/list/1'],
    ['cycle', cyclic, 'cycle', '/self'],
    ['pointer escaping in paths', { 'a/b': { '~': undefined } }, 'unsupported-type', '/a~1b/~0'],
  ];

  it.each(cases)('%s', (_name, value, problem, path) => {
    const error = canonicalError(() => canonicalize(value));
    expect(error.problem).toBe(problem);
    expect(error.path).toBe(path);
    expect(error.message).toContain(CANONICAL_JSON_ERROR_CODE);
  });

  it('never puts the offending value in the message', () => {
    const error = canonicalError(() => canonicalize({ name: 'Doe\ud800', other: 1 }));
    expect(error.message).not.toContain('Doe');
  });

  it('accepts objects without a prototype and shared (non-cyclic) references', () => {
    const bare = Object.assign(Object.create(null) as Record<string, unknown>, { b: 1, a: 2 });
    const shared = { x: 1 };
    expect(canonicalize({ bare, l: shared, r: shared })).toBe('{"bare":{"a":2,"b":1},"l":{"x":1},"r":{"x":1}}');
  });

  it('turns excessive nesting into a coded error, not a stack overflow', () => {
    let deep: unknown = 0;
    for (let i = 0; i < MAX_CANONICAL_DEPTH + 1; i++) deep = [deep];
    expect(canonicalError(() => canonicalize(deep)).problem).toBe('too-deep');
    let ok: unknown = 0;
    for (let i = 0; i < MAX_CANONICAL_DEPTH; i++) ok = [ok];
    expect(canonicalize(ok)).toBe('['.repeat(MAX_CANONICAL_DEPTH) + '0' + ']'.repeat(MAX_CANONICAL_DEPTH));
  });
});

/** A deep copy with every object's keys inserted in reverse sorted order, to test that input order is irrelevant. */
function reverseKeyOrder(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(reverseKeyOrder);
  if (value !== null && typeof value === 'object') {
    const record = value as Record<string, unknown>;
    const copy: Record<string, unknown> = {};
    // defineProperty, not assignment: a "__proto__" key (JSON.parse makes it an own member) must stay a member.
    for (const key of Object.keys(record).sort().reverse()) {
      Object.defineProperty(copy, key, { value: reverseKeyOrder(record[key]), enumerable: true, writable: true, configurable: true });
    }
    return copy;
  }
  return value;
}

/**
 * An independent oracle assembled from JSON.stringify of the leaves, with members written in sort() order. (Building
 * a sorted copy and stringifying it would not do: objects list array-index-like keys first whatever the insertion
 * order.)
 */
function sortedStringify(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(sortedStringify).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const record = value as Record<string, unknown>;
    return `{${Object.keys(record)
      .sort()
      .map((key) => `${JSON.stringify(key)}:${sortedStringify(record[key])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value);
}

describe('properties', () => {
  const jsonValues = fc.jsonValue({ maxDepth: 4, stringUnit: 'grapheme' });

  it('is a fixed point: canonicalize(JSON.parse(canonicalize(x))) === canonicalize(x)', () => {
    fc.assert(
      fc.property(jsonValues, (value) => {
        const once = canonicalize(value);
        expect(canonicalize(JSON.parse(once))).toBe(once);
      }),
      { numRuns: 300 },
    );
  });

  it('keeps a "__proto__" member whatever its position', () => {
    const value = JSON.parse('{"b":1,"__proto__":{"x":2},"a":3}') as unknown;
    expect(canonicalize(reverseKeyOrder(value))).toBe('{"__proto__":{"x":2},"a":3,"b":1}');
    expect(canonicalize(value)).toBe('{"__proto__":{"x":2},"a":3,"b":1}');
  });

  it('does not depend on the key order of the input', () => {
    fc.assert(
      fc.property(jsonValues, (value) => {
        expect(canonicalize(reverseKeyOrder(value))).toBe(canonicalize(value));
      }),
      { numRuns: 300 },
    );
  });

  it('matches JSON.stringify over sorted keys, and its bytes are the UTF-8 of its text', () => {
    fc.assert(
      fc.property(jsonValues, (value) => {
        const text = canonicalize(value);
        expect(text).toBe(sortedStringify(value));
        expect(new TextDecoder('utf-8', { fatal: true }).decode(canonicalBytes(value))).toBe(text);
      }),
      { numRuns: 300 },
    );
  });

  it('sorts keys by UTF-16 code units, including astral characters against the BMP', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.string({ unit: 'grapheme', maxLength: 4 }), { maxLength: 8 }), (keys) => {
        const object = Object.fromEntries(keys.map((key, i) => [key, i]));
        const parsed = JSON.parse(canonicalize(object)) as Record<string, number>;
        const order = Object.keys(parsed);
        // Compare code unit by code unit, without relying on Array.prototype.sort.
        for (let i = 1; i < order.length; i++) {
          const [a, b] = [order[i - 1]!, order[i]!];
          if (/^\d+$/.test(a) || /^\d+$/.test(b)) continue; // JSON.parse re-orders index-like keys.
          expect(a < b).toBe(true);
        }
      }),
      { numRuns: 200 },
    );
  });

  it('any string, including lone surrogates, yields canonical text or a coded error', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 12 }), (s) => {
        try {
          expect(JSON.parse(canonicalize({ [s]: s }))).toEqual({ [s]: s });
        } catch (error) {
          expect(error).toBeInstanceOf(CanonicalJsonError);
          expect((error as CanonicalJsonError).problem).toBe('lone-surrogate');
        }
      }),
      { numRuns: 300 },
    );
  });
});

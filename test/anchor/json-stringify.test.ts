/**
 * stringifyJson writes exactly what lossless-json's stringify writes, for every JSON fixture of the repository read
 * with parseJson and for the edge cases of JSON.stringify (toJSON, Dates, undefined, holes, -0, NaN, bigint, a number
 * token at the top level, indentation), while taking the native path where JSON.rawJSON exists.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { stringify } from 'lossless-json';
import { describe, expect, it } from 'vitest';
import { LosslessNumber, parseJson, stringifyJson } from '../../anchor/json.ts';

function jsonFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const file = path.join(dir, name);
    if (statSync(file).isDirectory()) return jsonFiles(file);
    return name.endsWith('.json') ? [file] : [];
  });
}

const reference = (value: unknown, space?: number | string): string | undefined => stringify(value, undefined, space);

describe('stringifyJson', () => {
  it('takes the native path on this runtime', () => {
    expect(typeof (JSON as { rawJSON?: unknown }).rawJSON).toBe('function');
  });

  it('writes what lossless-json writes for the edge cases of JSON.stringify', () => {
    const values: unknown[] = [
      new LosslessNumber('5.40'),
      new LosslessNumber('12345678901234567890'),
      { a: new LosslessNumber('0.0000001'), b: [new LosslessNumber('1E+3'), 1.5, -0, 0, 1e21, 1e-7] },
      { date: new Date('2026-12-07T01:02:03.004Z'), custom: { toJSON: () => ({ x: new LosslessNumber('2.50') }) } },
      { gone: undefined, fn: () => 1, kept: null, list: [undefined, () => 1, null] },
      [Number.NaN, Number.POSITIVE_INFINITY, 'text "quoted" \u2028 \u0000 é 한'],
      { big: 12345678901234567890n, nested: [{ deep: [[[new LosslessNumber('-0.10')]]] }] },
      'a string',
      42,
      true,
      null,
      {},
      [],
    ];
    for (const value of values) {
      for (const space of [undefined, 2, '\t']) expect(stringifyJson(value, space)).toBe(reference(value, space));
    }
  });

  it('writes what lossless-json writes for every JSON fixture', () => {
    const files = [...jsonFiles('testdata'), ...jsonFiles('test/fixtures')];
    expect(files.length).toBeGreaterThan(50);
    let decimals = 0;
    let read = 0;
    for (const file of files) {
      let value: unknown;
      try {
        value = parseJson(readFileSync(file, 'utf8'));
      } catch {
        continue; // a fixture of refused JSON (a repeated member)
      }
      read += 1;
      const text = stringifyJson(value);
      expect(text, file).toBe(reference(value));
      if (/"[^"]*":\s*-?\d+\.\d*0[,}\]]/.test(text)) decimals += 1;
      expect(stringifyJson(value, 2), file).toBe(reference(value, 2));
    }
    expect(read).toBeGreaterThan(50);
    // Some fixtures carry decimals whose trailing zeros only a LosslessNumber keeps.
    expect(decimals).toBeGreaterThan(0);
  });
});

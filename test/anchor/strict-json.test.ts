import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LosslessNumber, MAX_STRICT_JSON_DEPTH, parseJson, parseStrictJson, StrictJsonError, type StrictJsonRule } from '../../anchor/index.ts';

function refusal(text: string): { rule: StrictJsonRule; position: number; message: string } | undefined {
  try {
    parseStrictJson(text);
    return undefined;
  } catch (error) {
    expect(error).toBeInstanceOf(StrictJsonError);
    const { rule, position, message } = error as StrictJsonError;
    return { rule, position, message };
  }
}

describe('parseStrictJson refuses', () => {
  // [text, rule, position of the offending character]
  const cases: Array<[string, string, StrictJsonRule, number]> = [
    ['a repeated member with an equal value', '{"a":1,"a":1}', 'duplicate-member', 7],
    ['a repeated member with a different value', '{"a":1,"b":2,"a":3}', 'duplicate-member', 13],
    ['a repeated member spelt with an escape', '{"a":1,"\\u0061":1}', 'duplicate-member', 7],
    ['a repeated member in a nested object', '{"x":[{"k":null,"k":null}]}', 'duplicate-member', 16],
    ['an escaped lone high surrogate', '["\\ud800"]', 'lone-surrogate', 1],
    ['an escaped lone low surrogate', '"\\udc00x"', 'lone-surrogate', 0],
    ['a reversed escaped pair', '"\\ude00\\ud83d"', 'lone-surrogate', 0],
    ['a raw lone surrogate', '{"id":"pat-\ud800"}', 'lone-surrogate', 6],
    ['an escaped high surrogate before a raw low one', '"\\ud83d\ude00"', 'lone-surrogate', 0],
    ['a lone surrogate in a member name', '{"\\udfff":1}', 'lone-surrogate', 1],
    ['a byte order mark', '\ufeff{}', 'syntax', 0],
    ['a trailing comma in an object', '{"a":1,}', 'syntax', 7],
    ['a trailing comma in an array', '[1,]', 'syntax', 3],
    ['a comment', '{"a":1 /* c */}', 'syntax', 7],
    ['single quotes', "{'a':1}", 'syntax', 1],
    ['a leading zero', '[01]', 'syntax', 1],
    ['a plus sign', '[+1]', 'syntax', 1],
    ['a bare fraction', '[.5]', 'syntax', 1],
    ['a fraction without digits', '[1.]', 'syntax', 1],
    ['an exponent without digits', '[1e]', 'syntax', 1],
    ['NaN', '[NaN]', 'syntax', 1],
    ['Infinity', '[-Infinity]', 'syntax', 1],
    ['a raw control character in a string', '"a\tb"', 'syntax', 2],
    ['an unknown escape', '"\\x41"', 'syntax', 1],
    ['a short \\u escape', '"\\u41"', 'syntax', 1],
    ['text after the value', '{} {}', 'syntax', 3],
    ['a missing colon', '{"a" 1}', 'syntax', 5],
    ['an unterminated string', '{"a":"b', 'syntax', 5],
    ['nothing', '', 'syntax', 0],
    ['whitespace outside RFC 8259 (a non-breaking space)', '\u00a0{}', 'syntax', 0],
    ['a misspelt literal', '[nul]', 'syntax', 1],
    ['too deep a nesting', `${'['.repeat(MAX_STRICT_JSON_DEPTH + 1)}${']'.repeat(MAX_STRICT_JSON_DEPTH + 1)}`, 'too-deep', MAX_STRICT_JSON_DEPTH],
  ];

  it.each(cases)('%s', (_, text, rule, position) => {
    const refused = refusal(text);
    expect(refused).toMatchObject({ rule, position });
    expect(refused!.message).toContain(`at character ${position}`);
  });

  it('never quotes a value in its message', () => {
    for (const text of ['{"name":"Secretname","name":"Secretname"}', '{"name":"Secretname\\ud800"}', '{"name":"Secretname\u0001"}']) {
      expect(refusal(text)!.message).not.toContain('Secretname');
    }
  });

  it('never throws anything but a StrictJsonError, for any text', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (text) => {
        try {
          parseStrictJson(text);
        } catch (error) {
          expect(error).toBeInstanceOf(StrictJsonError);
        }
      }),
      { numRuns: 1000 },
    );
  });
});

describe('parseStrictJson accepts', () => {
  it('JSON as RFC 8259 writes it, with numbers as parseJson keeps them', () => {
    const text = ' {"a" : [1, -0, 5.40, 12345678901234567890, 1e-7, true, false, null, "\\u00e9\\ud83d\\ude00\\/\\n"], "b":{}, "c":[]}\r\n';
    const value = parseStrictJson(text) as { a: unknown[] };
    expect(value).toEqual(parseJson(text));
    expect(value.a[2]).toEqual(new LosslessNumber('5.40'));
    expect(value.a[8]).toBe('é😀/\n');
  });

  it('a member named __proto__ as a member', () => {
    const value = parseStrictJson('{"__proto__":{"x":1}}') as Record<string, unknown>;
    expect(Object.getPrototypeOf(value)).toBe(Object.prototype);
    expect(Object.keys(value)).toEqual(['__proto__']);
    expect(Object.hasOwn(value, 'x')).toBe(false);
  });

  it('nesting up to the limit', () => {
    const depth = MAX_STRICT_JSON_DEPTH;
    expect(() => parseStrictJson(`${'['.repeat(depth)}${']'.repeat(depth)}`)).not.toThrow();
  });

  it('every JSON text JSON.stringify writes, reading it as parseJson does', () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.constantFrom(undefined, 2), (value, space) => {
        const text = JSON.stringify(value, null, space);
        expect(parseStrictJson(text)).toEqual(parseJson(text));
      }),
      { numRuns: 1000 },
    );
  });
});

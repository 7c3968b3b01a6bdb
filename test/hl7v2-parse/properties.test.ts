import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { parseHl7 } from '../../formats/hl7v2/parse.ts';
import { unescapeHl7 } from '../../formats/hl7v2/escape.ts';
import { HL7_NULL, type Hl7Encoding, type Hl7Field } from '../../formats/hl7v2/types.ts';
import { AnchorlineError } from '../../errors/index.ts';

const PARSER_CODES = new Set(['ANCHORLINE_ERR_HL7_NO_MSH', 'ANCHORLINE_ERR_HL7_BAD_DELIMITERS', 'ANCHORLINE_ERR_HL7_MALFORMED']);
const ENCODING: Hl7Encoding = { field: '|', component: '^', repetition: '~', escape: '\\', subcomponent: '&' };

/** Passes when parseHl7 returns, or throws one of the parser's own codes; any other throw fails the property. */
function parsesOrRejects(text: string): void {
  try {
    const message = parseHl7(text);
    expect(message.segments[0]?.name).toBe('MSH');
    for (const segment of message.segments) expect(segment.name).toMatch(/^[A-Z0-9]{3}$/);
  } catch (error) {
    if (!(error instanceof AnchorlineError)) throw error;
    expect(PARSER_CODES.has(error.code)).toBe(true);
  }
}

/** Text assembled from HL7 pieces, so that generated inputs get past the MSH check and into fields and escapes. */
const hl7ishText = fc
  .array(
    fc.oneof(
      fc.constantFrom('MSH|^~\\&|', 'MSH', '|', '^', '~', '\\', '&', '#', '\r', '\n', '\r\n', 'PID', 'ZZ1', '""', ' ', '\ufeff'),
      fc.constantFrom('\\F\\', '\\S\\', '\\T\\', '\\R\\', '\\E\\', '\\P\\', '\\X', '\\XC3A9\\', '\\.br\\', '\\.sp', '\\H\\', '\\Z', '\\C', '\\M'),
      fc.string({ maxLength: 8 }),
      fc.string({ maxLength: 4, unit: 'binary' }),
    ),
    { maxLength: 50 },
  )
  .map((parts) => parts.join(''));

/** Escapes one value the way a conforming sender would, so the parser must give it back unchanged. */
function escapeValue(value: string): string {
  let escaped = '';
  for (const c of value) {
    if (c === '\\') escaped += '\\E\\';
    else if (c === '|') escaped += '\\F\\';
    else if (c === '^') escaped += '\\S\\';
    else if (c === '&') escaped += '\\T\\';
    else if (c === '~') escaped += '\\R\\';
    else if (c === '\r') escaped += '\\X0D\\';
    else if (c === '\n') escaped += '\\X0A\\';
    else escaped += c;
  }
  return escaped;
}

// A leaf value; HL7_NULL is excluded because `""` is a value only when sent alone (tested by example).
// Delimiters, escape and line-break characters are generated often, so that escaping is exercised on most runs.
const leafValue = fc
  .string({ maxLength: 6, unit: fc.oneof(fc.constantFrom('|', '^', '&', '~', '\\', '\r', '\n', ' ', '"', '#'), fc.string({ minLength: 1, maxLength: 1, unit: 'grapheme' })) })
  .filter((value) => value !== HL7_NULL);
const field = fc.array(fc.array(fc.array(leafValue, { minLength: 1, maxLength: 3 }), { minLength: 1, maxLength: 3 }), {
  minLength: 1,
  maxLength: 3,
});
const segment = fc.record({
  name: fc.stringMatching(/^[A-Z0-9]{3}$/).filter((name) => name !== 'MSH'),
  fields: fc.array(field, { maxLength: 8 }),
});

/** A field that carries nothing is parsed as [] (no repetitions). */
function normalised(value: Hl7Field): Hl7Field {
  return value.length === 1 && value[0]!.length === 1 && value[0]![0]!.length === 1 && value[0]![0]![0] === '' ? [] : value;
}

describe('parseHl7 properties', () => {
  it('any string parses or is rejected with a parser error code', () => {
    fc.assert(fc.property(fc.string({ maxLength: 200 }), parsesOrRejects), { numRuns: 2000 });
    fc.assert(fc.property(fc.string({ maxLength: 200, unit: 'binary' }), parsesOrRejects), { numRuns: 2000 });
  });

  it('HL7-like strings parse or are rejected with a parser error code', () => {
    fc.assert(fc.property(hl7ishText, parsesOrRejects), { numRuns: 5000 });
  });

  it('escaped values round-trip through the parser', () => {
    fc.assert(
      fc.property(fc.array(segment, { minLength: 1, maxLength: 4 }), fc.constantFrom('\r', '\n', '\r\n'), (segments, separator) => {
        const lines = segments.map(
          (s) => [s.name, ...s.fields.map((f) => f.map((rep) => rep.map((comp) => comp.map(escapeValue).join('&')).join('^')).join('~'))].join('|'),
        );
        const message = parseHl7(['MSH|^~\\&|APP', ...lines].join(separator));
        expect(message.segments.length).toBe(segments.length + 1);
        segments.forEach((s, i) => {
          const parsed = message.segments[i + 1]!;
          expect(parsed.name).toBe(s.name);
          expect(parsed.fields.slice(1)).toEqual(s.fields.map(normalised));
        });
      }),
      { numRuns: 1000 },
    );
  });

  it('unescapeHl7 never throws and is the identity on text without the escape character', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 60, unit: 'binary' }), (value) => {
        const decoded = unescapeHl7(value, ENCODING);
        if (!value.includes('\\')) expect(decoded).toBe(value);
      }),
      { numRuns: 3000 },
    );
  });
});

/**
 * Numbers in the canonical form (docs/proofs.md, "Canonical JSON and numbers"): a decimal keeps the precision it was written
 * with (`5.40`), a long number every digit, and every number RFC 8785 writes exactly is written as before, so that
 * existing leaves and proofs stay valid.
 */
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  CanonicalJsonError,
  LosslessNumber,
  canonicalDecimal,
  canonicalize,
  isLosslessNumber,
  jsonNumber,
  parseJson,
  resourceSha256,
  stringifyJson,
  type CanonicalJsonProblem,
} from '../../anchor/index.ts';
import { fhirDecimal } from '../../mappers/fhir-decimal.ts';

interface NumberCase {
  token: string;
  canonical?: string;
  wantErr?: CanonicalJsonProblem;
}
const cases = (JSON.parse(readFileSync(new URL('../fixtures/anchor/jcs/lossless-numbers.json', import.meta.url), 'utf8')) as { cases: NumberCase[] }).cases;

/** A decimal's value and scale, computed independently of anchor/: (sign x coefficient) x 10^exponent, and the scale. */
function valueAndScale(token: string): { coefficient: bigint; exponent: number; scale: number } {
  const match = /^(-?)(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/.exec(token)!;
  const fraction = match[3] ?? '';
  const exponent = Number(match[4] ?? 0) - fraction.length;
  const coefficient = BigInt(`${match[1]}${match[2]}${fraction}`);
  return { coefficient, exponent, scale: Math.max(0, -exponent) };
}

function sameValue(a: string, b: string): boolean {
  const x = valueAndScale(a);
  const y = valueAndScale(b);
  const low = Math.min(x.exponent, y.exponent);
  return x.coefficient * 10n ** BigInt(x.exponent - low) === y.coefficient * 10n ** BigInt(y.exponent - low);
}

/** JSON number tokens: optional '-', integer digits without leading zeros, optional fraction, optional exponent. */
const decimalToken = fc
  .tuple(
    fc.boolean(),
    fc.oneof(fc.constant('0'), fc.tuple(fc.integer({ min: 1, max: 9 }), fc.stringMatching(/^\d{0,25}$/)).map(([first, rest]) => `${first}${rest}`)),
    fc.option(fc.stringMatching(/^\d{1,25}$/), { nil: undefined }),
    fc.option(fc.tuple(fc.constantFrom('e', 'E'), fc.constantFrom('', '+', '-'), fc.integer({ min: 0, max: 40 })), { nil: undefined }),
  )
  .map(([negative, whole, fraction, exponent]) =>
    `${negative ? '-' : ''}${whole}${fraction === undefined ? '' : `.${fraction}`}${exponent === undefined ? '' : `${exponent[0]}${exponent[1]}${exponent[2]}`}`,
  );

describe('canonical numbers', () => {
  it.each(cases)('$token -> $canonical$wantErr', ({ token, canonical, wantErr }) => {
    const value = parseJson(token);
    if (wantErr !== undefined) {
      let thrown: unknown;
      try {
        canonicalize({ valueQuantity: { value } });
      } catch (error) {
        thrown = error;
      }
      expect(thrown).toBeInstanceOf(CanonicalJsonError);
      expect((thrown as CanonicalJsonError).problem).toBe(wantErr);
      expect((thrown as CanonicalJsonError).path).toBe('/valueQuantity/value');
      return;
    }
    expect(canonicalize(value)).toBe(canonical);
    expect(canonicalDecimal(token)).toBe(canonical);
    // As sent, through parse and stringify: what the store writes and the API serves.
    expect(stringifyJson(parseJson(`{"value":${token}}`))).toBe(`{"value":${token}}`);
  });

  it('keeps a decimal as sent in a resource and commits to its precision', () => {
    const text = '{"resourceType":"Observation","id":"o1","valueQuantity":{"value":5.40,"unit":"mmol/L"}}';
    const resource = parseJson(text) as { valueQuantity: { value: unknown } };
    expect(isLosslessNumber(resource.valueQuantity.value)).toBe(true);
    expect(canonicalize(resource)).toBe('{"id":"o1","resourceType":"Observation","valueQuantity":{"unit":"mmol/L","value":5.40}}');
    expect(resourceSha256(resource)).not.toBe(resourceSha256(JSON.parse(text)));
    // A number that JCS writes exactly hashes as it always did, however it is held.
    expect(resourceSha256(parseJson('{"value":5.4}'))).toBe(resourceSha256({ value: 5.4 }));
    expect(resourceSha256({ value: new LosslessNumber('5.4') })).toBe(resourceSha256({ value: 5.4 }));
  });

  it('refuses a LosslessNumber whose token was changed to something that is not a JSON number', () => {
    for (const token of ['0x10', 'NaN', 'Infinity', '+1', '01', '1.', '.5', '']) {
      const forged = new LosslessNumber('1');
      (forged as { value: string }).value = token;
      let thrown: unknown;
      try {
        canonicalize([forged]);
      } catch (error) {
        thrown = error;
      }
      expect(thrown, token).toBeInstanceOf(CanonicalJsonError);
      expect((thrown as CanonicalJsonError).problem).toBe('invalid-number');
      expect((thrown as CanonicalJsonError).path).toBe('/0');
    }
  });

  it('any decimal survives parse -> canonical -> parse, with its value and scale', () => {
    fc.assert(
      fc.property(decimalToken, (token) => {
        const canonical = canonicalize(parseJson(token));
        const again = parseJson(canonical);
        expect(canonicalize(again)).toBe(canonical);
        expect(sameValue(canonical, token)).toBe(true);
        expect(valueAndScale(canonical).scale).toBe(valueAndScale(token).scale);
        // The token itself survives parse -> stringify, byte for byte.
        expect(stringifyJson(parseJson(token))).toBe(token);
      }),
      { numRuns: 2000 },
    );
  });

  it('writes every double exactly as RFC 8785 does, so earlier leaves keep their hashes', () => {
    fc.assert(
      fc.property(fc.double({ noNaN: true, noDefaultInfinity: true }), (double) => {
        const jcs = canonicalize(double);
        expect(canonicalize(parseJson(JSON.stringify(double)))).toBe(jcs);
        // PostgreSQL writes numbers without an exponent: read back from jsonb, a number still hashes as it did.
        const plain = valueAndScale(jcs);
        if (plain.exponent >= -300 && plain.exponent <= 300) {
          const digits = (plain.coefficient < 0n ? -plain.coefficient : plain.coefficient).toString();
          const sign = plain.coefficient < 0n ? '-' : '';
          const asStored = plain.exponent >= 0 ? sign + digits + '0'.repeat(plain.exponent) : sign + (digits.padStart(-plain.exponent + 1, '0').replace(new RegExp(`(\\d{${-plain.exponent}})$`), '.$1'));
          expect(canonicalize(parseJson(asStored))).toBe(jcs);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('makes numbers in the mappers by the rule parseJson reads them with', () => {
    fc.assert(
      fc.property(decimalToken, (token) => {
        expect(fhirDecimal(token)).toStrictEqual(jsonNumber(token));
        expect(fhirDecimal(token)).toStrictEqual(parseJson(token));
      }),
      { numRuns: 1000 },
    );
  });
});

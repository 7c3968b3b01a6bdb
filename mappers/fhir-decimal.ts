/**
 * FHIR decimals as the mappers make them, keeping the precision sent. FHIR R4 makes a decimal's precision significant
 * (`5.40` is not `5.4`) and allows values no IEEE 754 double holds (`12345678901234567890`); a JavaScript number
 * keeps neither. A decimal is therefore a plain number when ECMAScript writes that number back as the very same token,
 * else a `LosslessNumber` (from `lossless-json`) holding the token. The store, the API and the provenance hash read and
 * write that representation (anchor/json.ts, whose parseJson makes numbers by the same rule, so a resource read back
 * from the store equals the one the mappers made); the mappers cannot import anchor/, hence the rule's second home here.
 *
 * A LosslessNumber is a class instance: structuredClone and JSON.stringify do not keep it. Drafts are cloned with
 * cloneFhirJson, and the validator sees plainNumbersView.
 */
import { isLosslessNumber, LosslessNumber } from 'lossless-json';

export { isLosslessNumber, LosslessNumber };

/** A FHIR decimal as the engine carries it; see the file comment. */
export type FhirDecimal = number | LosslessNumber;

/** The decimal for a JSON number token (valid JSON number syntax): a number if String(Number(token)) is the token. */
export function fhirDecimal(token: string): FhirDecimal {
  const value = Number(token);
  return String(value) === token ? value : new LosslessNumber(token);
}

/** A plain decimal literal: HL7 v2 NM (v2.5.1 section 2.A.47), and a CDA REAL written without an exponent. */
const PLAIN_DECIMAL = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)$/;

/** Fraction digits a decimal may have: PostgreSQL numeric's limit, so that every decimal made can be stored. */
export const MAX_DECIMAL_FRACTION_DIGITS = 16383;

/**
 * A plain decimal literal as sent -> the FHIR decimal with the precision and digits sent: `5.40` stays `5.40`,
 * `12345678901234567890` keeps every digit. Only what JSON and FHIR's decimal syntax cannot hold is changed: a `+`
 * sign, leading zeros (`007.5` -> `7.5`), a bare point (`.5` -> `0.5`, `5.` -> `5`) and the sign of zero (`-0.0` ->
 * `0.0`, as PostgreSQL stores it). Undefined for anything else, and for values a double cannot reach (more than 308
 * integer digits) or with more than MAX_DECIMAL_FRACTION_DIGITS fraction digits.
 */
export function decimalFromLiteral(text: string): FhirDecimal | undefined {
  if (!PLAIN_DECIMAL.test(text) || !Number.isFinite(Number(text))) return undefined;
  const unsigned = text.replace(/^[+-]/, '');
  const point = unsigned.indexOf('.');
  const whole = (point < 0 ? unsigned : unsigned.slice(0, point)).replace(/^0+(?=\d)/, '') || '0';
  const fraction = point < 0 ? '' : unsigned.slice(point + 1);
  if (fraction.length > MAX_DECIMAL_FRACTION_DIGITS) return undefined;
  const negative = text.startsWith('-') && /[1-9]/.test(unsigned);
  return fhirDecimal(`${negative ? '-' : ''}${whole}${fraction === '' ? '' : `.${fraction}`}`);
}

/** The nearest double to a decimal, for arithmetic and comparisons. */
export function decimalValue(decimal: FhirDecimal): number {
  return typeof decimal === 'number' ? decimal : Number(decimal.value);
}

/**
 * A deep copy of a JSON value (plain objects, arrays, primitives) that keeps LosslessNumbers, which are immutable and
 * shared rather than copied. Use it instead of structuredClone, which turns a LosslessNumber into a plain object
 * (`{"value": "5.40", ...}`) that no serializer reads as a number.
 */
export function cloneFhirJson<T>(value: T): T {
  if (value === null || typeof value !== 'object' || isLosslessNumber(value)) return value;
  if (Array.isArray(value)) return value.map(cloneFhirJson) as T;
  const copy: Record<string, unknown> = {};
  // for-in rather than Object.entries: this runs on every element of every draft merged. JSON objects have no
  // enumerable inherited members.
  for (const key in value) copy[key] = cloneFhirJson((value as Record<string, unknown>)[key]);
  return copy as T;
}

/**
 * `value` with every LosslessNumber replaced by its nearest double, for code that understands only plain JSON values
 * (the FHIR validator checks that a decimal is a number; its lexical form is already valid, as both constructors of
 * a LosslessNumber check). Copies only the containers on the way to a LosslessNumber: returns `value` itself when it
 * holds none, which is nearly always.
 */
export function plainNumbersView<T>(value: T): T {
  return rewriteJson(value, (leaf) => (isLosslessNumber(leaf) ? Number(leaf.value) : leaf));
}

/**
 * `value` with `change` applied to every value that is not an array or a plain object (strings, numbers,
 * LosslessNumbers, ...) and `rename` to every member name, copying only the arrays and objects on the way to a
 * change and sharing the rest: `value` itself when nothing changes. A renamed member moves to the end of its object.
 */
export function rewriteJson<T>(value: T, change: (leaf: unknown) => unknown, rename?: (name: string) => string): T {
  if (typeof value !== 'object' || value === null) return change(value) as T;
  if (Array.isArray(value)) {
    let copy: unknown[] | undefined;
    for (let i = 0; i < value.length; i++) {
      const item: unknown = value[i];
      const changed = rewriteJson(item, change, rename);
      if (changed !== item) (copy ??= value.slice())[i] = changed;
    }
    return (copy ?? value) as T;
  }
  // Only plain objects hold members; any other object (a LosslessNumber) is a value.
  const prototype = Object.getPrototypeOf(value);
  if (prototype !== Object.prototype && prototype !== null) return change(value) as T;
  let copy: Record<string, unknown> | undefined;
  for (const name in value) {
    const item = (value as Record<string, unknown>)[name];
    const changed = rewriteJson(item, change, rename);
    const renamed = rename ? rename(name) : name;
    if (renamed !== name) {
      copy ??= { ...(value as Record<string, unknown>) };
      delete copy[name];
      copy[renamed] = changed;
    } else if (changed !== item) {
      (copy ??= { ...(value as Record<string, unknown>) })[name] = changed;
    }
  }
  return (copy ?? value) as T;
}

/**
 * RFC 8785 JSON Canonicalization Scheme (JCS): one exact byte sequence per JSON value, so that a FHIR resource
 * version hashes the same wherever and whenever it is serialized.
 *
 * Strict by design: anything that JSON.stringify would silently drop or coerce (undefined, functions, symbols,
 * Dates, Maps, class instances, NaN) is an error here, because a hash over a silently altered value would commit to
 * something other than what the caller holds.
 *
 * One departure from RFC 8785, for numbers whose value or precision an IEEE 754 double cannot hold (a FHIR decimal
 * `5.40`, an integer past 2^53), which parseJson (./json.ts) keeps as LosslessNumbers: see canonicalDecimal. Every
 * number JCS can write exactly is written as JCS writes it, so hashes of such values are unchanged.
 */

import type { ErrorCode } from '../errors/index.ts';
import { isLosslessNumber } from './json.ts';

/**
 * Error code of every canonicalization failure, from the catalogue. Only its type is imported: this module must stay
 * free of engine dependencies so that verifiers run in a browser (lossless-json, through ./json.ts, is pure).
 */
export const CANONICAL_JSON_ERROR_CODE = 'ANCHORLINE_ERR_CANONICAL_JSON' satisfies ErrorCode;

/** Why a value cannot be canonicalized; stable strings, safe to branch on. */
export type CanonicalJsonProblem =
  | 'non-finite-number'
  | 'invalid-number'
  | 'number-out-of-range'
  | 'unsupported-type'
  | 'non-plain-object'
  | 'symbol-key'
  | 'sparse-array'
  | 'lone-surrogate'
  | 'cycle'
  | 'too-deep';

/**
 * A value that has no RFC 8785 form. `path` is a JSON Pointer (RFC 6901) to the offending value; the message names
 * the path and the kind of problem, never the value itself, since values may be patient data.
 */
export class CanonicalJsonError extends Error {
  readonly code = CANONICAL_JSON_ERROR_CODE;
  readonly problem: CanonicalJsonProblem;
  readonly path: string;

  constructor(problem: CanonicalJsonProblem, path: string, detail: string) {
    super(`${CANONICAL_JSON_ERROR_CODE}: ${detail} at ${path === '' ? 'the root' : path}`);
    this.name = 'CanonicalJsonError';
    this.problem = problem;
    this.path = path;
  }
}

/**
 * Nesting limit, in containers. FHIR resources nest a few dozen levels at most; the limit turns a pathological
 * input into a coded error instead of a stack overflow.
 */
export const MAX_CANONICAL_DEPTH = 512;

/** The RFC 8785 canonical form of `value` as a string. Throws CanonicalJsonError for values JSON cannot represent. */
export function canonicalize(value: unknown): string {
  return serialize(value, 0, { tokens: [], ancestors: new Set() });
}

const utf8 = new TextEncoder();

/** The RFC 8785 canonical form of `value`, UTF-8 encoded (§3.2.4): the bytes to hash. */
export function canonicalBytes(value: unknown): Uint8Array {
  // Safe to encode without loss: serialize() has rejected lone surrogates, the only strings UTF-8 cannot carry.
  return utf8.encode(canonicalize(value));
}

/**
 * Matches a UTF-16 surrogate that is not part of a pair. With the `u` flag a valid pair is read as one code point
 * outside the Cs category, so only lone halves match.
 */
const LONE_SURROGATE = /\p{Cs}/u;

/**
 * Where serialize() is: the member names and item indexes from the root to the value at hand, and the containers
 * open on the way (for cycles). The JSON Pointer of an error is made from the tokens only when there is an error:
 * writing it out for every member, on the path where nothing is wrong, cost as much as the serialisation itself.
 */
interface Position {
  tokens: Array<string | number>;
  ancestors: Set<object>;
}

/** The JSON Pointer (RFC 6901) of the value at `at`. */
function pointerOf(at: Position): string {
  let pointer = '';
  for (const token of at.tokens) pointer += `/${typeof token === 'number' ? token : escapePointerToken(token)}`;
  return pointer;
}

// Each value's text is returned and concatenated (V8 keeps the parts as a rope, flattened once when the result is
// encoded): a little faster here than pushing the parts onto one array and joining it at the end.
function serialize(value: unknown, depth: number, at: Position): string {
  switch (typeof value) {
    case 'string':
      return serializeString(value, at);
    case 'number':
      // §3.2.2.3: ECMAScript Number::toString, which String() is, including -0 -> "0" and the exponent forms.
      if (!Number.isFinite(value)) throw new CanonicalJsonError('non-finite-number', pointerOf(at), `${String(value)} has no JSON form`);
      return String(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'object':
      if (value === null) return 'null';
      if (isLosslessNumber(value)) return decimalAt(value.value, () => pointerOf(at));
      return serializeContainer(value, depth, at);
    default:
      // undefined, function, symbol, bigint. BigInt is refused rather than written as a number because RFC 8785
      // numbers are IEEE 754 doubles: large integers must travel as strings to keep their value.
      throw new CanonicalJsonError('unsupported-type', pointerOf(at), `a ${typeof value} has no JSON form`);
  }
}

function serializeContainer(value: object, depth: number, at: Position): string {
  if (depth >= MAX_CANONICAL_DEPTH) throw new CanonicalJsonError('too-deep', pointerOf(at), `nesting exceeds ${MAX_CANONICAL_DEPTH} levels`);
  if (at.ancestors.has(value)) throw new CanonicalJsonError('cycle', pointerOf(at), 'the value contains itself');
  at.ancestors.add(value);
  let out: string;
  if (Array.isArray(value)) {
    out = '[';
    for (let i = 0; i < value.length; i++) {
      at.tokens.push(i);
      // A hole would read as undefined; name it precisely instead of reporting an unsupported type.
      if (!(i in value)) throw new CanonicalJsonError('sparse-array', pointerOf(at), 'the array has a hole');
      out += i > 0 ? `,${serialize(value[i], depth + 1, at)}` : serialize(value[i], depth + 1, at);
      at.tokens.pop();
    }
    out += ']';
  } else {
    const proto = Object.getPrototypeOf(value);
    if (proto !== Object.prototype && proto !== null) {
      const kind = (proto as { constructor?: { name?: string } } | undefined)?.constructor?.name ?? 'object';
      throw new CanonicalJsonError('non-plain-object', pointerOf(at), `a ${kind} is not a plain JSON object`);
    }
    if (Object.getOwnPropertySymbols(value).length > 0) {
      throw new CanonicalJsonError('symbol-key', pointerOf(at), 'an object has a symbol-keyed property');
    }
    // §3.2.3: members sorted by key as arrays of UTF-16 code units, which is what sort() without a comparator does.
    const keys = Object.keys(value).sort();
    const record = value as Record<string, unknown>;
    out = '{';
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i]!;
      at.tokens.push(key);
      const member = `${serializeString(key, at)}:${serialize(record[key], depth + 1, at)}`;
      out += i > 0 ? `,${member}` : member;
      at.tokens.pop();
    }
    out += '}';
  }
  at.ancestors.delete(value);
  return out;
}

/**
 * PostgreSQL numeric's limits (digits before and after the decimal point): every number the store can hold fits, and
 * a hostile bundle cannot make a verifier write out `1e999999999`.
 */
export const MAX_DECIMAL_INTEGER_DIGITS = 131072;
export const MAX_DECIMAL_FRACTION_DIGITS = 16383;

const JSON_NUMBER = /^(-?)(0|[1-9][0-9]*)(?:\.([0-9]+))?(?:[eE]([+-]?[0-9]+))?$/;

/**
 * The canonical form of a number kept as its JSON token (a LosslessNumber). A number is taken as its decimal value
 * together with its scale: the count of digits after the decimal point once it is written without an exponent, at
 * least 0 (`5.40` has scale 2, `1.5e-3` scale 4, `1e2` and `100` scale 0). Two tokens with the same value and scale
 * are the same number; FHIR R4 makes the precision a decimal is written with significant, so `5.4` and `5.40` are not.
 *
 * - If the ECMAScript form of the nearest double (String(Number(token)), what RFC 8785 §3.2.2.3 writes) has the same
 *   value and scale, that form is written: every number JCS writes exactly comes out as JCS writes it (`1e-7`,
 *   `0.0000001` -> `1e-7`; `1E2` -> `100`).
 * - Otherwise the plain decimal form with exactly that scale: `-` only for a non-zero value, the integer digits
 *   without leading zeros (one `0` if there are none), then `.` and the fraction digits if the scale is above 0; no
 *   exponent, no `+` (`5.40`, `12345678901234567890`, `-0.0` -> `0.0`). This is how PostgreSQL numeric, and so
 *   jsonb, writes the number, so a resource read back from the store hashes as it did before it was stored.
 *
 * Throws CanonicalJsonError for a token that is not a JSON number or whose plain form exceeds the
 * MAX_DECIMAL_*_DIGITS limits.
 */
export function canonicalDecimal(token: string, path = ''): string {
  return decimalAt(token, () => path);
}

/** canonicalDecimal, with the path of its errors made only when there is one. */
function decimalAt(token: string, where: () => string): string {
  // First, so that no other token (`NaN`, `0x10`, from a LosslessNumber altered after it was made) gets through.
  if (!JSON_NUMBER.test(token)) throw new CanonicalJsonError('invalid-number', where(), 'a lossless number does not hold a JSON number');
  const double = Number(token);
  const es = String(double);
  if (es === token) return token;
  const plain = plainDecimal(token, where);
  return Number.isFinite(double) && plainDecimal(es, where) === plain ? es : plain;
}

/** The plain decimal form (no exponent) of a JSON number token, keeping its scale; see canonicalDecimal. */
function plainDecimal(token: string, where: () => string): string {
  const match = JSON_NUMBER.exec(token);
  if (match === null) throw new CanonicalJsonError('invalid-number', where(), 'a lossless number does not hold a JSON number');
  const sign = match[1]!;
  const whole = match[2]!;
  const fraction = match[3] ?? '';
  const exponent = match[4] === undefined ? 0 : Number(match[4]);
  // value = digits x 10^shift, digits without leading zeros ('' for zero).
  const digits = (whole + fraction).replace(/^0+/, '');
  const shift = exponent - fraction.length;
  const scale = Math.max(0, -shift);
  const integerDigits = digits === '' ? 1 : digits.length + shift;
  if (!Number.isSafeInteger(exponent) || integerDigits > MAX_DECIMAL_INTEGER_DIGITS || scale > MAX_DECIMAL_FRACTION_DIGITS) {
    throw new CanonicalJsonError('number-out-of-range', where(), `a number has more than ${MAX_DECIMAL_INTEGER_DIGITS} integer or ${MAX_DECIMAL_FRACTION_DIGITS} fraction digits`);
  }
  const signText = digits === '' ? '' : sign;
  if (shift >= 0) return signText + (digits === '' ? '0' : digits + '0'.repeat(shift));
  const padded = digits.padStart(scale + 1, '0');
  return `${signText}${padded.slice(0, padded.length - scale)}.${padded.slice(padded.length - scale)}`;
}

/**
 * §3.2.2.2: strings are serialized as ECMAScript JSON.stringify does (quote, backslash and U+0000..U+001F escaped,
 * with \b \t \n \f \r short forms and lowercase \u00xx otherwise; everything else literal), so the engine's own
 * JSON.stringify is the reference implementation. Lone surrogates are refused first: RFC 8785 requires I-JSON
 * (RFC 7493), which forbids them, and UTF-8 cannot encode them.
 */
function serializeString(s: string, at: Position): string {
  // Most strings have nothing to escape and no surrogate at all: quoted as they are, which is what JSON.stringify
  // would return, without the call.
  if (!NEEDS_A_CLOSER_LOOK.test(s)) return `"${s}"`;
  if (LONE_SURROGATE.test(s)) throw new CanonicalJsonError('lone-surrogate', pointerOf(at), 'a string contains an unpaired UTF-16 surrogate');
  return JSON.stringify(s);
}

/** What JSON.stringify escapes (quote, backslash, U+0000..U+001F), and any surrogate, paired or not. */
const NEEDS_A_CLOSER_LOOK = /["\\\u0000-\u001f\ud800-\udfff]/;

/** RFC 6901 reference-token escaping, for error paths. */
function escapePointerToken(key: string): string {
  return key.replaceAll('~', '~0').replaceAll('/', '~1');
}

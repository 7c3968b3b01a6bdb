/**
 * RFC 8785 JSON Canonicalization Scheme (JCS): one exact byte sequence per JSON value, so that a FHIR resource
 * version hashes the same wherever and whenever it is serialized.
 *
 * Strict by design: anything that JSON.stringify would silently drop or coerce (undefined, functions, symbols,
 * Dates, Maps, class instances, NaN) is an error here, because a hash over a silently altered value would commit to
 * something other than what the caller holds.
 */

import type { ErrorCode } from '../errors/index.ts';

/**
 * Error code of every canonicalization failure, from the catalogue. Only its type is imported: this module must stay
 * free of runtime dependencies so that verifiers run in a browser.
 */
export const CANONICAL_JSON_ERROR_CODE = 'ANCHORLINE_ERR_CANONICAL_JSON' satisfies ErrorCode;

/** Why a value cannot be canonicalized; stable strings, safe to branch on. */
export type CanonicalJsonProblem =
  | 'non-finite-number'
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
  const out: string[] = [];
  serialize(value, '', 0, new Set(), out);
  return out.join('');
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

function serialize(value: unknown, path: string, depth: number, ancestors: Set<object>, out: string[]): void {
  switch (typeof value) {
    case 'string':
      out.push(serializeString(value, path));
      return;
    case 'number':
      // §3.2.2.3: ECMAScript Number::toString, which String() is, including -0 -> "0" and the exponent forms.
      if (!Number.isFinite(value)) throw new CanonicalJsonError('non-finite-number', path, `${String(value)} has no JSON form`);
      out.push(String(value));
      return;
    case 'boolean':
      out.push(value ? 'true' : 'false');
      return;
    case 'object':
      if (value === null) {
        out.push('null');
        return;
      }
      serializeContainer(value, path, depth, ancestors, out);
      return;
    default:
      // undefined, function, symbol, bigint. BigInt is refused rather than written as a number because RFC 8785
      // numbers are IEEE 754 doubles: large integers must travel as strings to keep their value.
      throw new CanonicalJsonError('unsupported-type', path, `a ${typeof value} has no JSON form`);
  }
}

function serializeContainer(value: object, path: string, depth: number, ancestors: Set<object>, out: string[]): void {
  if (depth >= MAX_CANONICAL_DEPTH) throw new CanonicalJsonError('too-deep', path, `nesting exceeds ${MAX_CANONICAL_DEPTH} levels`);
  if (ancestors.has(value)) throw new CanonicalJsonError('cycle', path, 'the value contains itself');
  ancestors.add(value);
  if (Array.isArray(value)) {
    out.push('[');
    for (let i = 0; i < value.length; i++) {
      if (i > 0) out.push(',');
      // A hole would read as undefined; name it precisely instead of reporting an unsupported type.
      if (!(i in value)) throw new CanonicalJsonError('sparse-array', `${path}/${i}`, 'the array has a hole');
      serialize(value[i], `${path}/${i}`, depth + 1, ancestors, out);
    }
    out.push(']');
  } else {
    const proto = Object.getPrototypeOf(value);
    if (proto !== Object.prototype && proto !== null) {
      const kind = (proto as { constructor?: { name?: string } } | undefined)?.constructor?.name ?? 'object';
      throw new CanonicalJsonError('non-plain-object', path, `a ${kind} is not a plain JSON object`);
    }
    if (Object.getOwnPropertySymbols(value).length > 0) {
      throw new CanonicalJsonError('symbol-key', path, 'an object has a symbol-keyed property');
    }
    // §3.2.3: members sorted by key as arrays of UTF-16 code units, which is what sort() without a comparator does.
    const keys = Object.keys(value).sort();
    const record = value as Record<string, unknown>;
    out.push('{');
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i]!;
      const memberPath = `${path}/${escapePointerToken(key)}`;
      if (i > 0) out.push(',');
      out.push(serializeString(key, memberPath), ':');
      serialize(record[key], memberPath, depth + 1, ancestors, out);
    }
    out.push('}');
  }
  ancestors.delete(value);
}

/**
 * §3.2.2.2: strings are serialized as ECMAScript JSON.stringify does (quote, backslash and U+0000..U+001F escaped,
 * with \b \t \n \f \r short forms and lowercase \u00xx otherwise; everything else literal), so the engine's own
 * JSON.stringify is the reference implementation. Lone surrogates are refused first: RFC 8785 requires I-JSON
 * (RFC 7493), which forbids them, and UTF-8 cannot encode them.
 */
function serializeString(s: string, path: string): string {
  if (LONE_SURROGATE.test(s)) throw new CanonicalJsonError('lone-surrogate', path, 'a string contains an unpaired UTF-16 surrogate');
  return JSON.stringify(s);
}

/** RFC 6901 reference-token escaping, for error paths. */
function escapePointerToken(key: string): string {
  return key.replaceAll('~', '~0').replaceAll('/', '~1');
}

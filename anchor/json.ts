/**
 * JSON text <-> values without losing what a number says. FHIR R4 makes a decimal's precision significant (`5.40` is
 * not `5.4`) and allows decimals no IEEE 754 double holds (`12345678901234567890`); JSON.parse and JSON.stringify
 * lose both. Every place that reads or writes FHIR resource JSON (the store, the API, the verifier) goes through
 * parseJson / stringifyJson here, which use the `lossless-json` library.
 *
 * The representation: a JSON number is a plain JavaScript number when ECMAScript writes that number back as the very
 * same token (`5.4`, `12`, `1e-7`), exactly what JSON.parse gives; any other token (`5.40`, `12345678901234567890`,
 * `0.0000001` as PostgreSQL spells 1e-7) is a `LosslessNumber` holding the token as sent. Nearly every number stays a
 * plain number, so code that reads integers (sequence numbers, sizes, versions) is unaffected, and the few numbers
 * that need it keep their spelling through merge, validation and storage. Canonical JSON (./canonical-json.ts)
 * decides what such a token commits to.
 *
 * A LosslessNumber is a class instance: structuredClone and JSON.stringify do not keep it (the mappers clone with
 * mappers/fhir-decimal.ts, which makes decimals by this same rule). Browser-safe: no Node built-ins.
 */
import { isLosslessNumber, LosslessNumber, parse, stringify } from 'lossless-json';

export { isLosslessNumber, LosslessNumber };

/** A FHIR decimal (or any JSON number) as this engine carries it; see the file comment. */
export type JsonDecimal = number | LosslessNumber;

/**
 * The value for one JSON number token (valid JSON number syntax): a number when String(Number(token)) gives the
 * token back, else a LosslessNumber of the token.
 */
export function jsonNumber(token: string): JsonDecimal {
  const value = Number(token);
  return String(value) === token ? value : new LosslessNumber(token);
}

/**
 * JSON text -> value, numbers as jsonNumber makes them. Throws SyntaxError for text that is not JSON, and for an
 * object with two members of one name and different values (RFC 8259 leaves their meaning open; I-JSON forbids
 * them), where JSON.parse would silently keep the last. Verification reads with parseStrictJson instead, which also
 * refuses a repeated member with an equal value, lone surrogates and anything outside RFC 8259's grammar.
 */
export function parseJson(text: string): unknown {
  return parse(text, null, jsonNumber);
}

/**
 * Value -> JSON text, with every LosslessNumber written as its token; otherwise as JSON.stringify writes it
 * (toJSON, Dates, `space`). Undefined only where JSON.stringify gives undefined (a bare undefined or function).
 */
export function stringifyJson(value: unknown, space?: number | string): string {
  if (rawJson !== undefined) return JSON.stringify(value, losslessTokens, space) as string;
  return stringify(value, undefined, space) as string;
}

/**
 * JSON.rawJSON (ES2025; Node 22, current browsers), where there is one: JSON.stringify then writes a LosslessNumber's
 * token as it is, the same text lossless-json's stringify writes, in half the time or less (every stored version, a
 * read's answer and its AuditEvent pass here). Elsewhere, lossless-json's stringify.
 */
const rawJson = (JSON as { rawJSON?: (text: string) => unknown }).rawJSON;

function losslessTokens(_key: string, value: unknown): unknown {
  if (isLosslessNumber(value)) return rawJson!(value.value);
  // lossless-json writes a bigint as its digits, where JSON.stringify would throw.
  if (typeof value === 'bigint') return rawJson!(value.toString());
  return value;
}

/** Which rule a text broke, for parseStrictJson's refusals; stable strings, safe to branch on. */
export type StrictJsonRule = 'syntax' | 'duplicate-member' | 'lone-surrogate' | 'too-deep';

/**
 * A text parseStrictJson refuses. The message names the rule and the character position (a UTF-16 offset into the
 * text), never a value, since a resource's values may be patient data; it quotes at most a member name, cut short.
 */
export class StrictJsonError extends SyntaxError {
  readonly rule: StrictJsonRule;
  readonly position: number;

  constructor(rule: StrictJsonRule, position: number, reason: string) {
    super(`${reason} at character ${position}`);
    this.name = 'StrictJsonError';
    this.rule = rule;
    this.position = position;
  }
}

/** Nesting limit of parseStrictJson, in containers: as canonical JSON's (MAX_CANONICAL_DEPTH), past which no hash exists. */
export const MAX_STRICT_JSON_DEPTH = 512;

/**
 * JSON text -> value for verification: the grammar of RFC 8259 §2-7 exactly, and I-JSON's (RFC 7493) rules, which
 * RFC 8785 requires of what it canonicalizes. Refused, with a StrictJsonError naming the rule and position:
 *
 *   - anything outside RFC 8259's grammar (no byte order mark, comments, trailing commas, single quotes, leading
 *     zeros, `+`, bare `.5`, NaN, unescaped control characters, unknown escapes, text after the value);
 *   - an object with two members of one name (compared after unescaping), whatever their values. parseJson
 *     (lossless-json) refuses them only when the values differ and JSON.parse keeps the last, while other readers
 *     keep the first: a verifier must not pick one reading of a text that others read differently;
 *   - a string (value or member name) holding a UTF-16 surrogate without its pair, escaped (`\ud800`) or raw in the
 *     text: it has no UTF-8 form, so nothing can hash it;
 *   - nesting deeper than MAX_STRICT_JSON_DEPTH containers.
 *
 * Values are made as parseJson makes them (numbers by jsonNumber), so a text both accept reads the same. Written
 * here rather than on lossless-json because its parser can neither see a repeated member with an equal value nor
 * name the rule a text broke. Browser-safe.
 */
export function parseStrictJson(text: string): unknown {
  const parser = new StrictJsonParser(text);
  parser.skipWhitespace();
  const value = parser.value(0);
  parser.skipWhitespace();
  if (parser.at < text.length) parser.fail('syntax', 'unexpected text after the JSON value');
  return value;
}

const WHITESPACE = new Set([0x20, 0x09, 0x0a, 0x0d]);
const NUMBER_TOKEN = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
const SHORT_ESCAPES: Record<string, string> = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };
const LONE_SURROGATE_IN_TEXT = /\p{Cs}/u;

class StrictJsonParser {
  at = 0;
  private readonly text: string;

  constructor(text: string) {
    this.text = text;
  }

  fail(rule: StrictJsonRule, reason: string, position = this.at): never {
    throw new StrictJsonError(rule, position, reason);
  }

  skipWhitespace(): void {
    while (this.at < this.text.length && WHITESPACE.has(this.text.charCodeAt(this.at))) this.at++;
  }

  value(depth: number): unknown {
    if (this.at >= this.text.length) this.fail('syntax', 'unexpected end of text');
    const char = this.text[this.at]!;
    if (char === '{') return this.object(depth + 1);
    if (char === '[') return this.array(depth + 1);
    if (char === '"') return this.string();
    if (char === '-' || (char >= '0' && char <= '9')) return this.number();
    for (const [word, value] of [['true', true], ['false', false], ['null', null]] as const) {
      if (this.text.startsWith(word, this.at)) {
        this.at += word.length;
        return value;
      }
    }
    return this.fail('syntax', 'unexpected character');
  }

  private enter(depth: number): void {
    if (depth > MAX_STRICT_JSON_DEPTH) this.fail('too-deep', `nesting exceeds ${MAX_STRICT_JSON_DEPTH} levels`);
    this.at++;
    this.skipWhitespace();
  }

  private object(depth: number): Record<string, unknown> {
    this.enter(depth);
    const object: Record<string, unknown> = {};
    if (this.text[this.at] === '}') {
      this.at++;
      return object;
    }
    for (;;) {
      if (this.text[this.at] !== '"') this.fail('syntax', 'expected a member name');
      const namePosition = this.at;
      const name = this.string();
      if (Object.hasOwn(object, name)) {
        const shown = JSON.stringify(name.length > 40 ? `${name.slice(0, 40)}...` : name);
        this.fail('duplicate-member', `member name ${shown} appears twice in one object`, namePosition);
      }
      this.skipWhitespace();
      if (this.text[this.at] !== ':') this.fail('syntax', "expected ':' after a member name");
      this.at++;
      this.skipWhitespace();
      // defineProperty, not assignment: a member named __proto__ must be a member, not the object's prototype.
      Object.defineProperty(object, name, { value: this.value(depth), enumerable: true, writable: true, configurable: true });
      this.skipWhitespace();
      const next = this.text[this.at];
      this.at++;
      if (next === '}') return object;
      if (next !== ',') this.fail('syntax', "expected ',' or '}' in an object", this.at - 1);
      this.skipWhitespace();
    }
  }

  private array(depth: number): unknown[] {
    this.enter(depth);
    const array: unknown[] = [];
    if (this.text[this.at] === ']') {
      this.at++;
      return array;
    }
    for (;;) {
      array.push(this.value(depth));
      this.skipWhitespace();
      const next = this.text[this.at];
      this.at++;
      if (next === ']') return array;
      if (next !== ',') this.fail('syntax', "expected ',' or ']' in an array", this.at - 1);
      this.skipWhitespace();
    }
  }

  private number(): JsonDecimal {
    NUMBER_TOKEN.lastIndex = this.at;
    const match = NUMBER_TOKEN.exec(this.text);
    if (match === null) return this.fail('syntax', 'invalid number');
    const end = this.at + match[0].length;
    // A digit, '.', 'e' or sign right after the longest valid token means the token itself was malformed (01, 1., 1e).
    if (end < this.text.length && /[0-9.eE+-]/.test(this.text[end]!)) this.fail('syntax', 'invalid number');
    this.at = end;
    return jsonNumber(match[0]);
  }

  private string(): string {
    const start = this.at;
    this.at++;
    let out = '';
    let runStart = this.at;
    for (;;) {
      if (this.at >= this.text.length) this.fail('syntax', 'unterminated string', start);
      const code = this.text.charCodeAt(this.at);
      if (code === 0x22) {
        out += this.text.slice(runStart, this.at);
        this.at++;
        break;
      }
      if (code < 0x20) this.fail('syntax', 'unescaped control character in a string');
      if (code !== 0x5c) {
        this.at++;
        continue;
      }
      out += this.text.slice(runStart, this.at);
      const escape = this.text[this.at + 1];
      if (escape !== undefined && Object.hasOwn(SHORT_ESCAPES, escape)) {
        out += SHORT_ESCAPES[escape];
        this.at += 2;
      } else if (escape === 'u' && /^[0-9a-fA-F]{4}$/.test(this.text.slice(this.at + 2, this.at + 6))) {
        out += String.fromCharCode(parseInt(this.text.slice(this.at + 2, this.at + 6), 16));
        this.at += 6;
      } else {
        this.fail('syntax', 'invalid escape in a string');
      }
      runStart = this.at;
    }
    // Checked on the decoded string: catches \ud800 escaped, a raw lone surrogate, and an escaped half next to a raw one.
    if (LONE_SURROGATE_IN_TEXT.test(out) || LONE_SURROGATE_IN_TEXT.test(this.text.slice(start, this.at))) {
      this.fail('lone-surrogate', 'a string holds a UTF-16 surrogate without its pair, which has no UTF-8 form', start);
    }
    return out;
  }
}

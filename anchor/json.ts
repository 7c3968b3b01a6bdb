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
 * them), where JSON.parse would silently keep the last.
 */
export function parseJson(text: string): unknown {
  return parse(text, null, jsonNumber);
}

/**
 * Value -> JSON text, with every LosslessNumber written as its token; otherwise as JSON.stringify writes it
 * (toJSON, Dates, `space`). Undefined only where JSON.stringify gives undefined (a bare undefined or function).
 */
export function stringifyJson(value: unknown, space?: number | string): string {
  return stringify(value, undefined, space) as string;
}

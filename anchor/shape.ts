/**
 * Shape checks shared by the proof formats' validators (./bundle.ts, ./log-bundle.ts): problems name the path of
 * the offending field and what was expected, never the value found, since a value may identify a patient.
 *
 * Browser-safe: no Node built-ins.
 */
import { base64UrlToBytes } from './encoding.ts';
import { resourceSha256, SALT_BYTES, sha256Hex, type LeafPreimage } from './leaf.ts';

const MAX_REPORTED_PROBLEMS = 8;
const HEX_HASH = /^[0-9a-f]{64}$/;
/** A UTF-16 surrogate without its pair: such a string has no UTF-8 form, so JCS cannot hash it. */
export const LONE_SURROGATE = /\p{Cs}/u;

/** The members of a leaf preimage (./leaf.ts LeafPreimage), v 1. */
export const PREIMAGE_KEYS = ['v', 'resourceType', 'id', 'versionId', 'resourceSha256', 'rawSha256', 'mappingSha256', 'terminologyVersion', 'salt'] as const;

/** Checks a leaf preimage's shape: exactly its members, v 1, non-empty strings, hex hashes, a 16-byte salt. */
export function validatePreimage(preimage: unknown, path: string, problems: string[]): void {
  if (!isRecord(preimage)) {
    if (preimage !== undefined) problems.push(`${path} must be an object, got ${jsonKind(preimage)}`);
    return;
  }
  checkExactKeys(preimage, PREIMAGE_KEYS, path, problems);
  if (preimage.v !== 1) problems.push(`${path}.v must be 1`);
  for (const key of ['resourceType', 'id', 'versionId', 'terminologyVersion']) {
    const text = preimage[key];
    if (typeof text !== 'string' || text.length === 0) problems.push(`${path}.${key} must be a non-empty string`);
    else if (LONE_SURROGATE.test(text)) problems.push(`${path}.${key} contains a lone UTF-16 surrogate, which has no UTF-8 form`);
  }
  for (const key of ['resourceSha256', 'rawSha256', 'mappingSha256']) requireHexHash(preimage[key], `${path}.${key}`, problems);
  if (!isBase64UrlOfLength(preimage.salt, SALT_BYTES)) problems.push(`${path}.salt must be unpadded base64url of ${SALT_BYTES} bytes`);
}

export function checkExactKeys(object: Record<string, unknown>, keys: readonly string[], path: string, problems: string[]): void {
  // A member set to undefined (possible from a JavaScript caller, never from JSON) counts as missing.
  for (const key of keys) if (!Object.hasOwn(object, key) || object[key] === undefined) problems.push(`${path}.${key} is missing`);
  const extra = unexpectedKeys(object, keys);
  if (extra.length > 0) problems.push(`${path} has unexpected member(s) ${extra.join(', ')}`);
}

/** Unknown member names, quoted and cut short: they are format field names, but a hostile bundle could make them long. */
export function unexpectedKeys(object: Record<string, unknown>, keys: readonly string[]): string[] {
  return Object.keys(object)
    .filter((key) => !keys.includes(key))
    .slice(0, 5)
    .map((key) => JSON.stringify(key.length > 40 ? `${key.slice(0, 40)}...` : key));
}

export function requireHexHash(value: unknown, path: string, problems: string[]): void {
  if (!(typeof value === 'string' && HEX_HASH.test(value))) problems.push(`${path} must be 64 lowercase hex digits`);
}

export function isBase64UrlOfLength(value: unknown, bytes: number): boolean {
  if (typeof value !== 'string') return false;
  try {
    return base64UrlToBytes(value).length === bytes;
  } catch {
    return false;
  }
}

/**
 * An integer in min..2^53-1. Read by parseStrictJson, a number is a plain number only when written as ECMAScript
 * writes it, so this also holds it to plain decimal digits: `1.0`, `1e0` and `-0` arrive as LosslessNumbers and fail.
 * -0 is refused here too, for JavaScript callers that pass values rather than text.
 */
export function isInteger(value: unknown, min: number): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= min && !Object.is(value, -0);
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
  const prototype: unknown = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
}

export function jsonKind(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (value === undefined) return 'nothing';
  return typeof value === 'object' ? 'a non-plain object' : `a ${typeof value}`;
}

export function errorKind(error: unknown): string {
  return error instanceof Error ? error.name : 'a non-Error value';
}

export function summarizeProblems(problems: string[]): string {
  const shown = problems.slice(0, MAX_REPORTED_PROBLEMS).join('; ');
  const more = problems.length - MAX_REPORTED_PROBLEMS;
  return more > 0 ? `${shown}; and ${more} more problem(s)` : shown;
}

/** The one time format: what Date.toISOString writes for years 0000..9999, milliseconds always present. */
const ISO_UTC = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})\.\d{3}Z$/;

/** A real UTC instant in the form Date.toISOString writes (three fraction digits), years 0000..9999; no leap seconds. */
export function isIsoUtc(value: unknown): boolean {
  if (typeof value !== 'string') return false;
  const match = ISO_UTC.exec(value);
  if (!match) return false;
  const [year, month, day, hour, minute, second] = match.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  const date = new Date(Date.UTC(year, month - 1, day, hour, minute, second));
  // Date.UTC maps years 0..99 to 1900..1999; setUTCFullYear undoes that so every four-digit year is taken literally.
  date.setUTCFullYear(year);
  return (
    date.getUTCFullYear() === year &&
    date.getUTCMonth() === month - 1 &&
    date.getUTCDate() === day &&
    date.getUTCHours() === hour &&
    date.getUTCMinutes() === minute &&
    date.getUTCSeconds() === second
  );
}

export type CheckOutcome = { ok: boolean; detail: string };

export interface VerificationCheck {
  name: string;
  ok: boolean;
  detail: string;
}

export interface VerificationResult {
  ok: boolean;
  checks: VerificationCheck[];
}

/** The raw-hash check of any bundle format: SHA-256 of the raw message bytes against preimage.rawSha256. */
export function rawHashOutcome(preimage: LeafPreimage, raw: Uint8Array | undefined): CheckOutcome {
  if (raw === undefined) return { ok: false, detail: 'no raw message given' };
  const hash = sha256Hex(raw);
  return hash === preimage.rawSha256
    ? { ok: true, detail: `SHA-256 of the ${raw.length}-byte raw message is ${hash}, as the preimage states` }
    : { ok: false, detail: `SHA-256 of the ${raw.length}-byte raw message is ${hash}, but preimage.rawSha256 is ${preimage.rawSha256}` };
}

/** The resource-hash check of any bundle format: the resource's type, id, version and JCS hash against the preimage. */
export function resourceHashOutcome(preimage: LeafPreimage, resource: unknown): CheckOutcome {
  if (!isRecord(resource)) return { ok: false, detail: 'the resource is not a JSON object' };
  const mismatches: string[] = [];
  // Values are not quoted in the detail: a resource id or version may identify a patient.
  if (resource.resourceType !== preimage.resourceType) mismatches.push('resourceType differs from the preimage');
  if (resource.id !== preimage.id) mismatches.push('id differs from the preimage');
  const meta = resource.meta;
  if (!isRecord(meta) || meta.versionId !== preimage.versionId) mismatches.push('meta.versionId differs from the preimage');
  let hash: string | undefined;
  try {
    hash = resourceSha256(resource);
  } catch (error) {
    // CanonicalJsonError messages name a JSON Pointer and the kind of problem, never the value.
    mismatches.push(`the resource has no canonical JSON form (${error instanceof Error ? error.message : 'unknown error'})`);
  }
  if (hash !== undefined && hash !== preimage.resourceSha256) mismatches.push('SHA-256(JCS(resource)) differs from preimage.resourceSha256');
  return mismatches.length === 0
    ? { ok: true, detail: 'the resource hashes to preimage.resourceSha256 and its type, id and meta.versionId match' }
    : { ok: false, detail: mismatches.join('; ') };
}


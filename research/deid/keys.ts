/**
 * Everything a de-identification derives from the project's secret: pseudonyms of ids, references and identifier
 * values, per-patient date offsets, DICOM UIDs and the key of the reversible `encrypt` method. All are HMAC-SHA-256
 * under the project secret with a label per use, so that one project's pseudonyms and offsets say nothing about
 * another's (different secret, unrelated output) and no use of the key can be replayed as another.
 */
import { createCipheriv, createDecipheriv } from 'node:crypto';
import { hmac } from '@noble/hashes/hmac.js';
import { sha256 } from '@noble/hashes/sha2.js';

const encoder = new TextEncoder();

/** HMAC-SHA-256 of `label` NUL `message` under the project secret. */
export function keyed(secret: Uint8Array, label: string, message: string): Uint8Array {
  return hmac(sha256, secret, encoder.encode(`${label}\u0000${message}`));
}

const hex = (bytes: Uint8Array): string => Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');

/**
 * Hex characters of a pseudonymous id: 128 bits. A FHIR id allows 64 characters of [A-Za-z0-9\-.]; 32 hex digits
 * leave room and make a collision among a project's resources negligible.
 */
export const PSEUDONYM_ID_HEX = 32;

/** The pseudonymous id of `type/id` in one project: the same input gives the same id, in this project only. */
export function pseudonymousId(secret: Uint8Array, resourceType: string, id: string): string {
  return hex(keyed(secret, 'resource-id', `${resourceType}/${id}`)).slice(0, PSEUDONYM_ID_HEX);
}

/** A keyed pseudonym of any other value (an identifier's system|value, a free-text token): 64 hex digits. */
export function pseudonymOf(secret: Uint8Array, label: string, value: string): string {
  return hex(keyed(secret, label, value));
}

/**
 * The date offset of one patient (or of one resource that belongs to no patient), in whole days, in
 * [-rangeDays, rangeDays] and never 0 (an offset of 0 would publish true dates).
 */
export function dateOffsetDays(secret: Uint8Array, scope: string, rangeDays: number): number {
  if (rangeDays < 1) return 0;
  const digest = keyed(secret, 'date-shift', scope);
  // 48 bits of the digest, reduced to 2 * rangeDays values: the modulo bias is below 2^-30.
  const n = digest[0]! * 2 ** 40 + digest[1]! * 2 ** 32 + digest[2]! * 2 ** 24 + digest[3]! * 2 ** 16 + digest[4]! * 2 ** 8 + digest[5]!;
  const k = n % (2 * rangeDays);
  return k < rangeDays ? k - rangeDays : k - rangeDays + 1;
}

/** A fraction in [0, 1) derived from the key and a label, for keyed perturbation (the same input perturbs alike). */
export function keyedFraction(secret: Uint8Array, label: string, value: string): number {
  const digest = keyed(secret, label, value);
  return (digest[0]! * 2 ** 24 + digest[1]! * 2 ** 16 + digest[2]! * 2 ** 8 + digest[3]!) / 2 ** 32;
}

/**
 * The replacement of a DICOM UID in one project: `2.25.` and the decimal of 128 bits of HMAC(project, uid) (PS3.5
 * B.2, a UUID-derived UID), at most 44 characters. The same UID maps alike in every instance of the project, so
 * studies, series and references between instances stay consistent.
 */
export function remappedUid(secret: Uint8Array, uid: string): string {
  const digest = keyed(secret, 'dicom-uid', uid).slice(0, 16);
  let value = 0n;
  for (const byte of digest) value = (value << 8n) | BigInt(byte);
  return `2.25.${value.toString(10)}`;
}

/**
 * Deterministic authenticated encryption for the `encrypt` method: AES-256-GCM under a key derived from the project
 * secret, with the nonce derived from the plaintext (a synthetic IV, as AES-SIV does), so that the same value
 * encrypts alike in one project (joins still work) and the function stays free of randomness. Equal plaintexts are
 * visible as equal ciphertexts, which is what a pseudonym reveals too. Output: base64 of nonce || ciphertext || tag.
 */
export function encryptValue(secret: Uint8Array, plaintext: string): string {
  const key = keyed(secret, 'encrypt-key', '');
  const nonce = keyed(key, 'encrypt-nonce', plaintext).slice(0, 12);
  const cipher = createCipheriv('aes-256-gcm', key, nonce);
  const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return Buffer.concat([nonce, body, cipher.getAuthTag()]).toString('base64');
}

/** The inverse of encryptValue, for whoever holds the project secret; throws when the value was altered. */
export function decryptValue(secret: Uint8Array, encrypted: string): string {
  const bytes = Buffer.from(encrypted, 'base64');
  const key = keyed(secret, 'encrypt-key', '');
  const decipher = createDecipheriv('aes-256-gcm', key, bytes.subarray(0, 12));
  decipher.setAuthTag(bytes.subarray(bytes.length - 16));
  return Buffer.concat([decipher.update(bytes.subarray(12, bytes.length - 16)), decipher.final()]).toString('utf8');
}

/**
 * Deterministic resource ids: the same business key always yields the same FHIR id, so a resent or replayed message
 * updates the resource it created instead of creating a second one, without a lookup table.
 */

import { createHash } from 'node:crypto';

/**
 * Domain separation: if the encoding below ever changes, changing this tag keeps old and new ids from colliding.
 */
const ID_DOMAIN = 'anchorline:resource-id:v1';

/**
 * A UUIDv8 (RFC 9562 section 5.8, vendor-specific) from the first 128 bits of SHA-256 over an unambiguous encoding of
 * the resource type and the key parts: each string is written as its UTF-8 byte length (4 bytes, big-endian)
 * followed by its bytes, so ('a', 'bc') and ('ab', 'c') hash different inputs, as do ('a') and ('a', '').
 * Version bits are set to 8 and the variant bits to 10, as RFC 9562 requires.
 */
export function deterministicId(resourceType: string, ...parts: string[]): string {
  const hash = createHash('sha256');
  for (const part of [ID_DOMAIN, resourceType, ...parts]) {
    const bytes = Buffer.from(part, 'utf8');
    const length = Buffer.allocUnsafe(4);
    length.writeUInt32BE(bytes.length);
    hash.update(length);
    hash.update(bytes);
  }
  const id = hash.digest().subarray(0, 16);
  id[6] = (id[6]! & 0x0f) | 0x80;
  id[8] = (id[8]! & 0x3f) | 0x80;
  const hex = id.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

/**
 * Deterministic resource ids: the same business key always yields the same FHIR id, so a resent or replayed message
 * updates the resource it created instead of creating a second one, without a lookup table.
 */

import { hash } from 'node:crypto';

import { BoundedMemo } from './memo.ts';

/**
 * The key space of patients sent without any identifier (an HL7 PID with none, a DICOM instance without Patient ID):
 * each is a patient of its message, or of its study, alone, never matched to another.
 */
export const UNIDENTIFIED_PATIENT_SYSTEM = 'urn:anchorline:unidentified-patient';

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
  if (!REMEMBERED_TYPES.has(resourceType)) return idOf(resourceType, parts);
  // Each part with its length, so that the key, like the hash input, is unambiguous.
  let key = resourceType;
  for (const part of parts) key += `|${part.length}:${part}`;
  const known = remembered.get(key);
  if (known !== undefined) return known;
  const id = idOf(resourceType, parts);
  remembered.set(key, id);
  return id;
}

function idOf(resourceType: string, parts: readonly string[]): string {
  const hex = hash('sha256', hashInput(resourceType, parts), 'hex');
  // The first 128 bits as hex (a hex digest costs less than a Buffer one), version and variant bits set in the text.
  const variant = ((Number.parseInt(hex[16]!, 16) & 0x3) | 0x8).toString(16);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-8${hex.slice(13, 16)}-${variant}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

/**
 * The types whose ids are remembered: the organizations, places and clinicians a feed names in message after message
 * (mappers/hl7v2/directory.ts), and the patient, whose id one message asks for once per resource about the patient.
 * Other ids are mostly new each time (a message's Provenance, observations and orders, a C-CDA document's entries),
 * and remembering a key never asked for again costs more than its hash.
 */
const REMEMBERED_TYPES: ReadonlySet<string> = new Set(['Organization', 'Location', 'Practitioner', 'PractitionerRole', 'Patient']);
/** Ids remembered per generation of the memo (./memo.ts): a key of a few dozen bytes and an id of 36 each. */
const IDS_PER_GENERATION = 5_000;
const remembered = new BoundedMemo<string, string>(IDS_PER_GENERATION);

/** Code units 0-127 only: such a string's UTF-8 bytes are its code units, one byte each. */
const ASCII = /^[\x00-\x7f]*$/;

/**
 * The bytes hashed, as the encoding above describes. Nearly every key is ASCII and shorter than 128 bytes: then each
 * length prefix is three zero bytes and one byte below 0x80, all ASCII too, so the whole input can be hashed as a
 * string (a string is hashed as its UTF-8 bytes, which are then exactly these) without a Buffer, which costs more
 * than the hash for keys this short. Any other key takes the Buffer.
 */
function hashInput(resourceType: string, parts: readonly string[]): string | Buffer {
  let input = ID_DOMAIN_PREFIXED;
  for (let index = -1; index < parts.length; index++) {
    const part = index < 0 ? resourceType : parts[index]!;
    if (part.length >= 0x80 || !ASCII.test(part)) return hashInputBuffer(resourceType, parts);
    input += `\0\0\0${String.fromCharCode(part.length)}${part}`;
  }
  return input;
}

/** ID_DOMAIN with its length prefix (ASCII, 25 bytes). */
const ID_DOMAIN_PREFIXED = `\0\0\0${String.fromCharCode(ID_DOMAIN.length)}${ID_DOMAIN}`;

function hashInputBuffer(resourceType: string, parts: readonly string[]): Buffer {
  // One buffer and one one-shot hash: this runs for every resource of every message (hundreds per C-CDA document),
  // and a hash object with an update per part costs several times more.
  const strings = [ID_DOMAIN, resourceType, ...parts];
  let size = 0;
  for (const part of strings) size += 4 + Buffer.byteLength(part, 'utf8');
  const input = Buffer.allocUnsafe(size);
  let offset = 0;
  for (const part of strings) {
    const length = input.write(part, offset + 4, 'utf8');
    input.writeUInt32BE(length, offset);
    offset += 4 + length;
  }
  return input;
}

/**
 * The provenance leaf: what one stored FHIR resource version commits to in the Merkle log.
 *
 * A leaf does not hash the resource alone. It binds the resource version (by type, id, versionId and the hash of its
 * canonical form) to the inbound message it came from and the mapping and terminology that produced it, so an
 * auditor can confirm not only that a record is unchanged but how it was derived.
 *
 * Leaf bytes are the RFC 8785 canonical JSON of the preimage; the Merkle leaf hash is RFC 9162's
 * SHA-256(0x00 || leaf bytes). Browser-safe: no Node built-ins.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { canonicalBytes, canonicalize } from './canonical-json.ts';
import { bytesToBase64Url, bytesToHex } from './encoding.ts';
import { leafHash } from './merkle.ts';

/** Bytes of random salt per leaf. 128 bits: too many to guess, even for a leaf whose other fields are all known. */
export const SALT_BYTES = 16;

export interface LeafPreimage {
  v: 1;
  resourceType: string;
  /** FHIR logical id of the resource. */
  id: string;
  /** As in meta.versionId of the stored version. */
  versionId: string;
  /** Lowercase hex SHA-256 of canonicalBytes(resource as stored, meta included). */
  resourceSha256: string;
  /** Lowercase hex SHA-256 of the raw inbound message bytes, before any charset decoding. */
  rawSha256: string;
  /** Lowercase hex SHA-256 of the canonical mapping configuration used. */
  mappingSha256: string;
  /** Version of the terminology used in mapping; 'none' until terminology exists. */
  terminologyVersion: string;
  /**
   * base64url (unpadded) of SALT_BYTES random bytes, fresh per leaf. An auditor of one patient's record sees the
   * sibling hashes on its audit path; without a salt, a sibling leaf's few unknown fields could be guessed and
   * confirmed against its hash. With it, siblings reveal nothing about other patients.
   */
  salt: string;
}

/** The leaf bytes: RFC 8785 canonical JSON of the preimage, UTF-8. Throws CanonicalJsonError for non-JSON values. */
export function leafBytes(preimage: LeafPreimage): Uint8Array {
  return canonicalBytes(preimage);
}

/**
 * Node's one-shot SHA-256 (node:crypto `hash`), where the runtime has it; in a browser, undefined, and the hashes
 * below are @noble/hashes' over canonicalBytes. Both hash the same bytes (a string is hashed as its UTF-8, and
 * canonical text has no lone surrogate): on the canonical text of a mapped resource the native one took about a
 * sixth of the time, and the text is not copied into UTF-8 first. Found through process.getBuiltinModule, not an
 * import, so that this module still loads where there is no node:crypto.
 */
type NativeHash = ((algorithm: 'sha256', data: string, encoding: 'hex') => string) & ((algorithm: 'sha256', data: string, encoding: 'buffer') => Uint8Array);
const nativeHash = ((globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process?.getBuiltinModule?.('node:crypto') as { hash?: NativeHash } | undefined)?.hash;

/** The RFC 9162 Merkle leaf hash of the preimage: SHA-256(0x00 || leafBytes(preimage)). */
export function provenanceLeafHash(preimage: LeafPreimage): Uint8Array {
  // U+0000 is the one byte 0x00 in UTF-8: the text hashed natively is the prefix and the leaf bytes.
  if (nativeHash !== undefined) return new Uint8Array(nativeHash('sha256', `\u0000${canonicalize(preimage)}`, 'buffer'));
  return leafHash(leafBytes(preimage));
}

/** Lowercase hex SHA-256 of the resource's canonical bytes, for LeafPreimage.resourceSha256. */
export function resourceSha256(resource: unknown): string {
  if (nativeHash !== undefined) return nativeHash('sha256', canonicalize(resource), 'hex');
  return sha256Hex(canonicalBytes(resource));
}

/** Lowercase hex SHA-256 of `bytes`. */
export function sha256Hex(bytes: Uint8Array): string {
  return bytesToHex(sha256(bytes));
}

/**
 * A fresh salt: SALT_BYTES from the platform CSPRNG (Web Crypto's getRandomValues, present in Node and browsers),
 * as unpadded base64url. The bytes are drawn SALT_POOL salts at a time and each is handed out once: a call to the
 * CSPRNG cost about 2 us for 16 bytes and less than twice that for 4 KiB, and a worker takes several salts for
 * every message.
 */
export function newSalt(): string {
  if (saltOffset + SALT_BYTES > saltPool.length) {
    saltPool = crypto.getRandomValues(new Uint8Array(SALT_BYTES * SALT_POOL));
    saltOffset = 0;
  }
  const salt = saltPool.subarray(saltOffset, saltOffset + SALT_BYTES);
  saltOffset += SALT_BYTES;
  return bytesToBase64Url(salt);
}

/** Salts drawn from the CSPRNG at once. */
const SALT_POOL = 256;
let saltPool = new Uint8Array(0);
let saltOffset = 0;

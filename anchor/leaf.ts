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
import { canonicalBytes } from './canonical-json.ts';
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

/** The RFC 9162 Merkle leaf hash of the preimage: SHA-256(0x00 || leafBytes(preimage)). */
export function provenanceLeafHash(preimage: LeafPreimage): Uint8Array {
  return leafHash(leafBytes(preimage));
}

/** Lowercase hex SHA-256 of the resource's canonical bytes, for LeafPreimage.resourceSha256. */
export function resourceSha256(resource: unknown): string {
  return sha256Hex(canonicalBytes(resource));
}

/** Lowercase hex SHA-256 of `bytes`. */
export function sha256Hex(bytes: Uint8Array): string {
  return bytesToHex(sha256(bytes));
}

/**
 * A fresh salt: SALT_BYTES from the platform CSPRNG (Web Crypto's getRandomValues, present in Node and browsers),
 * as unpadded base64url.
 */
export function newSalt(): string {
  return bytesToBase64Url(crypto.getRandomValues(new Uint8Array(SALT_BYTES)));
}

/**
 * Batch headers: the signed, hash-chained record of each closed Merkle batch.
 *
 * Each header names its batch's root and leaf range and the hash of the previous header, so one trusted header (a
 * recent one, or one anchored on a chain) vouches for every batch before it. The engine signs each header with
 * Ed25519 so a bundle shows which engine key closed the batch.
 *
 * Header bytes are the RFC 8785 canonical JSON of the header. The header hash is plain SHA-256 of those bytes (not
 * an RFC 9162 leaf hash: headers are not tree leaves). Signatures are pure Ed25519 (RFC 8032 §5.1, no prehash, no
 * context) over the header bytes. Because nothing in the signed bytes says "batch header" beyond their shape, the
 * engine's signing key must sign nothing else.
 *
 * Browser-safe: no Node built-ins.
 */
import { ed25519 } from '@noble/curves/ed25519.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { canonicalBytes } from './canonical-json.ts';
import { base64UrlToBytes, bytesToBase64Url, bytesToHex, hexToBytes } from './encoding.ts';

/** previousHeaderHash of batch 1: there is no previous header. */
export const GENESIS_PREVIOUS_HEADER_HASH = '0'.repeat(64);

export interface BatchHeader {
  v: 1;
  /** 1, 2, 3, ... with no gaps. */
  batchNumber: number;
  /** Lowercase hex headerHash of the previous batch; GENESIS_PREVIOUS_HEADER_HASH (64 '0's) for batch 1. */
  previousHeaderHash: string;
  /** Global index of the batch's first leaf; leaves are numbered from 0 across all batches. */
  firstLeafIndex: number;
  leafCount: number;
  /** Lowercase hex RFC 9162 root of the batch's leaf hashes, in leaf-index order. */
  root: string;
  /** ISO 8601 UTC (e.g. 2025-01-31T12:00:00.000Z): when the batch was closed. */
  time: string;
}

/** The header bytes: RFC 8785 canonical JSON of the header, UTF-8. What is hashed and signed. */
export function headerBytes(h: BatchHeader): Uint8Array {
  return canonicalBytes(h);
}

/** Lowercase hex SHA-256 of headerBytes(h). */
export function headerHash(h: BatchHeader): string {
  return bytesToHex(sha256(headerBytes(h)));
}

/** Unpadded base64url Ed25519 signature over headerBytes(h), with the 32-byte Ed25519 private key (seed). */
export function signHeader(h: BatchHeader, privateKey: Uint8Array): string {
  return bytesToBase64Url(ed25519.sign(headerBytes(h), privateKey));
}

/**
 * True only if `signatureB64url` is a valid Ed25519 signature over headerBytes(h) by the key `publicKeyHex`
 * (32 bytes, hex). Never throws: a malformed signature, key or header is simply not valid.
 *
 * Verification is RFC 8032 strict (zip215: false), rejecting non-canonical encodings that ZIP-215 would accept, so
 * a bundle that passes here also passes in verifiers written against RFC 8032.
 */
export function verifyHeaderSignature(h: BatchHeader, signatureB64url: string, publicKeyHex: string): boolean {
  try {
    const signature = base64UrlToBytes(signatureB64url);
    const publicKey = hexToBytes(publicKeyHex);
    if (signature.length !== 64 || publicKey.length !== 32) return false;
    return ed25519.verify(signature, headerBytes(h), publicKey, { zip215: false });
  } catch {
    return false;
  }
}

/** A new Ed25519 key pair from the platform CSPRNG. privateKey is the 32-byte RFC 8032 seed. */
export function generateSigningKey(): { privateKey: Uint8Array; publicKey: Uint8Array } {
  const { secretKey, publicKey } = ed25519.keygen();
  return { privateKey: secretKey, publicKey };
}

/** The 32-byte Ed25519 public key of a 32-byte private key (seed). */
export function publicKeyFor(privateKey: Uint8Array): Uint8Array {
  return ed25519.getPublicKey(privateKey);
}

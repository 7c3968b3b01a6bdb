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
import { sha256, sha512 } from '@noble/hashes/sha2.js';
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
 * (32 bytes, lowercase hex), by verifyEd25519Strict. Never throws: a malformed signature, key or header is simply
 * not valid.
 */
export function verifyHeaderSignature(h: BatchHeader, signatureB64url: string, publicKeyHex: string): boolean {
  try {
    if (!/^[0-9a-f]{64}$/.test(publicKeyHex)) return false;
    return verifyEd25519Strict(base64UrlToBytes(signatureB64url), headerBytes(h), hexToBytes(publicKeyHex));
  } catch {
    return false;
  }
}

const Point = ed25519.Point;
/** L, the prime order of the base point (RFC 8032 §5.1). */
const GROUP_ORDER = Point.Fn.ORDER;
/** The cofactor of edwards25519: [8]P is the identity exactly for the points of small order. */
const COFACTOR = 8n;

/**
 * Ed25519 verification (RFC 8032 §5.1.7, pure Ed25519, no context) in its strictest common form: a signature that
 * passes here passes in every RFC 8032 verifier in use, cofactored or not (OpenSSL, libsodium, Go, BoringSSL,
 * ed25519-dalek verify_strict, noble, ZIP-215). Refused, each for the verifiers that refuse it:
 *
 *   - a public key A or signature point R that is not the canonical encoding of a curve point: y >= p, or x = 0
 *     with the sign bit set (RFC 8032 §5.1.3 decoding, required by RFC 8032 and FIPS 186-5; OpenSSL and libsodium
 *     compare [S]B - [k]A with R as bytes, so a non-canonical R never matches there);
 *   - an A or R of small order, [8]P = identity (libsodium and dalek's verify_strict refuse them: with such a key,
 *     one signature can verify for many messages);
 *   - S >= L (RFC 8032 §5.1.7 step 1; every verifier refuses it);
 *   - a signature for which [S]B = R + [k]A does not hold exactly. This is the cofactorless equation of OpenSSL and
 *     libsodium; RFC 8032 also allows the cofactored [8][S]B = [8]R + [8][k]A, which accepts more: a key or R with a
 *     torsion component whose residue the cofactor hides. Every signature passing the cofactorless equation passes
 *     the cofactored one, not the other way round.
 *
 * Hand-written on @noble/curves' point arithmetic because noble has no cofactorless check: ed25519.verify with
 * { zip215: false } decodes A and R canonically, refuses S >= L and a small-order A, but checks the cofactored
 * equation ([8](R + [k]A - [S]B) = identity, noble abstract/edwards.ts `verify`) and lets a small-order R through,
 * so it accepted signatures OpenSSL and libsodium refuse. test/fixtures/anchor/ed25519/ holds the C2SP CCTV vectors
 * with the verdicts of OpenSSL and libsodium; this function accepts exactly those both accept.
 */
export function verifyEd25519Strict(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean {
  if (signature.length !== 64 || publicKey.length !== 32) return false;
  const encodedR = signature.subarray(0, 32);
  const s = littleEndianNumber(signature.subarray(32, 64));
  if (s >= GROUP_ORDER) return false;
  const a = decodeCanonicalPoint(publicKey);
  const r = decodeCanonicalPoint(encodedR);
  if (a === undefined || r === undefined || isSmallOrder(a) || isSmallOrder(r)) return false;
  // k = SHA-512(R || A || M) mod L, over the bytes as given (both canonical by now, so there is no other encoding).
  const digest = sha512(concatBytes(encodedR, publicKey, message));
  const k = littleEndianNumber(digest) % GROUP_ORDER;
  const sB = Point.BASE.multiplyUnsafe(s);
  return sB.equals(r.add(a.multiplyUnsafe(k)));
}

type EdwardsPoint = ReturnType<typeof Point.fromBytes>;

/** The point of a canonical 32-byte encoding, or undefined: not on the curve, or not the encoding toBytes writes. */
function decodeCanonicalPoint(bytes: Uint8Array): EdwardsPoint | undefined {
  let point: EdwardsPoint;
  try {
    // zip215 false: RFC 8032 §5.1.3 decoding, which refuses y >= p and x = 0 with the sign bit set.
    point = Point.fromBytes(bytes, false);
  } catch {
    return undefined;
  }
  // Re-encoding must give the same bytes: the definition of canonical, checked here rather than trusted to the decoder.
  const again = point.toBytes();
  for (let i = 0; i < 32; i++) if (again[i] !== bytes[i]) return undefined;
  return point;
}

function isSmallOrder(point: EdwardsPoint): boolean {
  return point.multiplyUnsafe(COFACTOR).equals(Point.ZERO);
}

function littleEndianNumber(bytes: Uint8Array): bigint {
  let value = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) value = (value << 8n) | BigInt(bytes[i]!);
  return value;
}

function concatBytes(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((total, part) => total + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
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

/**
 * Public surface of anchor/. Everything here is pure and browser-safe (no Node built-ins), so the same code builds
 * batches in the engine and verifies them in the CLI or an auditor's browser. The tree builder's SHA-256
 * (./sha256-fixed.ts) is private.
 */
export {
  canonicalize,
  canonicalBytes,
  CanonicalJsonError,
  CANONICAL_JSON_ERROR_CODE,
  MAX_CANONICAL_DEPTH,
  type CanonicalJsonProblem,
} from './canonical-json.ts';
export {
  HASH_BYTES,
  emptyRoot,
  leafHash,
  nodeHash,
  merkleRoot,
  MerkleTree,
  inclusionProof,
  consistencyProof,
  verifyInclusion,
  verifyConsistency,
} from './merkle.ts';
export { bytesToHex, hexToBytes, bytesToBase64, base64ToBytes, bytesToBase64Url, base64UrlToBytes } from './encoding.ts';

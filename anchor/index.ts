/**
 * Public surface of anchor/. Everything here is pure and browser-safe (no Node built-ins), so the same code builds
 * batches in the engine and verifies them in the CLI or an auditor's browser. The tree builder's SHA-256
 * (./sha256-fixed.ts) is private.
 */
export {
  canonicalize,
  canonicalBytes,
  canonicalDecimal,
  CanonicalJsonError,
  CANONICAL_JSON_ERROR_CODE,
  MAX_CANONICAL_DEPTH,
  MAX_DECIMAL_INTEGER_DIGITS,
  MAX_DECIMAL_FRACTION_DIGITS,
  type CanonicalJsonProblem,
} from './canonical-json.ts';
export {
  parseJson,
  parseStrictJson,
  StrictJsonError,
  MAX_STRICT_JSON_DEPTH,
  type StrictJsonRule,
  stringifyJson,
  jsonNumber,
  isLosslessNumber,
  LosslessNumber,
  type JsonDecimal,
} from './json.ts';
export {
  HASH_BYTES,
  emptyRoot,
  leafHash,
  nodeHash,
  merkleRoot,
  MerkleTree,
  inclusionProof,
  consistencyProof,
} from './merkle.ts';
export { verifyInclusion, verifyConsistency } from './log/proof.ts';
export { bytesToHex, hexToBytes, bytesToBase64, base64ToBytes, bytesToBase64Url, base64UrlToBytes } from './encoding.ts';
export {
  SALT_BYTES,
  leafBytes,
  provenanceLeafHash,
  resourceSha256,
  sha256Hex,
  newSalt,
  type LeafPreimage,
} from './leaf.ts';
export {
  GENESIS_PREVIOUS_HEADER_HASH,
  headerBytes,
  headerHash,
  signHeader,
  verifyHeaderSignature,
  verifyEd25519Strict,
  generateSigningKey,
  publicKeyFor,
  type BatchHeader,
} from './header.ts';
export {
  PROOF_BUNDLE_FORMAT,
  VERIFICATION_CHECK_NAMES,
  verifyBundle,
  type ProofAnchor,
  type ProofBundle,
  type SignedHeader,
  type VerificationCheck,
  type VerificationCheckName,
  type VerificationResult,
} from './bundle.ts';
export {
  LOG_PROOF_FORMAT,
  CONSISTENCY_FORMAT,
  LOG_CHECK_NAMES,
  formatLogCheckpoint,
  parseLogCheckpoint,
  signLogCheckpoint,
  openLogCheckpoint,
  checkpointHash,
  formatAnchorClaim,
  parseAnchorClaim,
  signAnchorClaim,
  openAnchorClaim,
  verifyLogBundle,
  verifyConsistencyDocument,
  verifyBundleForward,
  bundleCheckpointText,
  statedPublicKey,
  witnessVerifiers,
  type LogCheckpoint,
  type AnchorClaim,
  type LogProofBundle,
  type LogProofAnchor,
  type LogVerifyOptions,
  type ConsistencyDocument,
} from './log-bundle.ts';

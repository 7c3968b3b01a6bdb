/**
 * Public surface of anchor/log/: the one append-only RFC 9162 log that every leaf is written to, in order, and the
 * C2SP formats its tree heads travel in. Pure and browser-safe; storage is the NodeStore interface (./store.ts),
 * which the engine's store implements. What each file hashes and signs, byte for byte, is in its header comment:
 *
 *   tree.ts         leaf and node hashes, the frontier (compact range) of perfect subtrees, appends
 *   store.ts        NodeSource / NodeStore contracts, MemoryNodeStore, tlog-tiles reading and paths
 *   proof.ts        inclusion and consistency proofs: generation from stored nodes, verification with reasons
 *   note.ts         C2SP signed-note: parsing, Ed25519 signing and verification, verifier and signer keys
 *   checkpoint.ts   C2SP tlog-checkpoint: the signed tree head
 *   cosignature.ts  C2SP tlog-cosignature (cosignature/v1): witness cosignatures
 *   size.ts         the size of a one-log proof bundle
 */
export {
  MAX_TREE_SIZE,
  Frontier,
  frontierNodes,
  rangeNodes,
  foldRange,
  treeHead,
  type NodeId,
  type NodeSink,
  type StoredNode,
} from './tree.ts';
export {
  MemoryNodeStore,
  MissingNodeError,
  NodeConflictError,
  appendLeafHashes,
  readFrontier,
  tileNodeSource,
  tilePath,
  TILE_WIDTH,
  TILE_HEIGHT,
  type NodeSource,
  type NodeStore,
  type TileReader,
} from './store.ts';
export {
  inclusionRanges,
  consistencyRanges,
  rangeHashes,
  inclusionProof,
  consistencyProof,
  treeRoot,
  rootFromInclusionProof,
  verifyInclusionProof,
  verifyConsistencyProof,
  type LeafRange,
  type Verdict,
} from './proof.ts';
export {
  SIGNATURE_TYPE_ED25519,
  SIGNATURE_TYPE_COSIGNATURE_V1,
  MAX_NOTE_SIGNATURES,
  noteKeyId,
  isValidKeyName,
  parseNote,
  parseSignatureLine,
  formatSignatureLine,
  formatNote,
  signNote,
  openNote,
  ed25519NoteSigner,
  ed25519NoteVerifier,
  ed25519NoteVerifierFromKey,
  formatVerifierKey,
  parseVerifierKey,
  formatSignerKey,
  parseSignerKey,
  type Note,
  type NoteSignature,
  type NoteSigner,
  type NoteVerifier,
  type OpenedNote,
  type Parsed,
  type VerifierKey,
} from './note.ts';
export { formatCheckpoint, parseCheckpoint, signCheckpoint, openCheckpoint, type Checkpoint, type OpenedCheckpoint } from './checkpoint.ts';
export {
  COSIGNATURE_V1_HEADER,
  COSIGNATURE_V1_BYTES,
  cosignedMessage,
  cosignerKeyId,
  ed25519Cosigner,
  ed25519CosignatureVerifier,
  formatCosignerKey,
  cosignatureVerifierFromKey,
  cosignatureTimestamp,
} from './cosignature.ts';
export {
  TYPICAL_PREIMAGE,
  proofBundleSize,
  maxInclusionProofHashes,
  type BundleSize,
  type BundleParts,
  type BundleSizeInput,
} from './size.ts';

/**
 * How big the proof for one record is once every leaf is in one log: the leaf preimage, the leaf index, the
 * inclusion proof against a signed checkpoint, the checkpoint note with the log's signature, and k witness
 * cosignatures. Unlike a bundle of batch headers, none of it grows with the number of checkpoints since the leaf:
 * only the proof grows, by one hash each time the log doubles.
 *
 * The estimate is of what must be carried, in two encodings: `binary` (hashes as 32 raw bytes, the index as 8 bytes)
 * and `text` (hashes as 44-character base64 strings in a JSON array, the index as decimal digits). The preimage and
 * the checkpoint note are text in both. JSON member names and punctuation, the log key and the escaping of the
 * note's newlines are not counted; `npm run bench:proof-size` measures whole anchorline-proof/2 bundles as served.
 *
 * Browser-safe: no Node built-ins.
 */
import { HASH_BYTES } from '../merkle.ts';
import { leafBytes, type LeafPreimage } from '../leaf.ts';
import { formatCheckpoint } from './checkpoint.ts';
import { COSIGNATURE_V1_BYTES } from './cosignature.ts';
import { inclusionRanges } from './proof.ts';
import { bitLength } from './tree.ts';

/** Inputs of the estimate; everything but treeSize has a default. */
export interface BundleSizeInput {
  /** Leaves in the log when the checkpoint was signed. */
  treeSize: number;
  /** Leaf whose proof is estimated; default the one with the longest proof (the first leaf). */
  leafIndex?: number;
  /** Witness cosignatures carried (cosignature/v1, Ed25519). Default 0. */
  cosignatures?: number;
  /** Checkpoint origin, also the log's key name. Default 'anchorline.example/log'. */
  origin?: string;
  /** UTF-8 length of each cosigner's key name. Default 24 ('witness.example.org/w123'). */
  cosignerNameBytes?: number;
  /** The preimage whose JCS bytes are carried; default `TYPICAL_PREIMAGE`. */
  preimage?: LeafPreimage;
}

export interface BundleSize {
  treeSize: number;
  /** Hashes in the inclusion proof. */
  proofHashes: number;
  /** Bytes of each part and the total, per encoding. */
  binary: BundleParts;
  text: BundleParts;
}

export interface BundleParts {
  preimage: number;
  leafIndex: number;
  inclusionProof: number;
  checkpoint: number;
  cosignatures: number;
  total: number;
}

/** A representative leaf preimage: an Observation with a UUID id, first version. */
export const TYPICAL_PREIMAGE: LeafPreimage = {
  v: 1,
  resourceType: 'Observation',
  id: '3f2c9b1e-7a4d-4c2e-9f1a-0b5d6e7f8a9b',
  versionId: '1',
  resourceSha256: 'a'.repeat(64),
  rawSha256: 'b'.repeat(64),
  mappingSha256: 'c'.repeat(64),
  terminologyVersion: 'none',
  salt: 'A'.repeat(22),
};

/** Estimates the bytes a one-log proof bundle carries (see the header comment for what is counted). */
export function proofBundleSize(input: BundleSizeInput): BundleSize {
  const { treeSize } = input;
  if (!Number.isSafeInteger(treeSize) || treeSize < 1) throw new RangeError('a proof needs a tree of at least one leaf');
  const leafIndex = input.leafIndex ?? 0;
  const cosignatures = input.cosignatures ?? 0;
  const origin = input.origin ?? 'anchorline.example/log';
  const cosignerNameBytes = input.cosignerNameBytes ?? 24;
  const preimage = leafBytes(input.preimage ?? TYPICAL_PREIMAGE).length;
  const proofHashes = inclusionRanges(leafIndex, treeSize).length;
  // anchorline's checkpoints always carry a time line and, after the first, a previous line (../log-bundle.ts).
  const extensions = ['time 2026-01-01T00:00:00.000Z', `previous ${'A'.repeat(43)}=`];
  const checkpointText = formatCheckpoint({ origin, size: treeSize, rootHash: new Uint8Array(HASH_BYTES), extensions });
  // Blank line, then "— " + name + " " + base64(4-byte key ID || 64-byte Ed25519 signature) + "\n".
  const utf8Length = (text: string): number => new TextEncoder().encode(text).length;
  const logSignatureLine = 4 + utf8Length(origin) + 1 + base64Length(4 + 64) + 1;
  const checkpoint = utf8Length(checkpointText) + 1 + logSignatureLine;
  // The em dash is 3 bytes of UTF-8; the cosignature is key ID, 8-byte timestamp and signature.
  const cosignatureLine = 4 + cosignerNameBytes + 1 + base64Length(4 + COSIGNATURE_V1_BYTES) + 1;
  const parts = (hashBytes: number, indexBytes: number): BundleParts => {
    const p = { preimage, leafIndex: indexBytes, inclusionProof: proofHashes * hashBytes, checkpoint, cosignatures: cosignatures * cosignatureLine };
    return { ...p, total: p.preimage + p.leafIndex + p.inclusionProof + p.checkpoint + p.cosignatures };
  };
  return {
    treeSize,
    proofHashes,
    binary: parts(HASH_BYTES, 8),
    // "<44 base64 chars>", with a comma between entries.
    text: parts(base64Length(HASH_BYTES) + 3, String(leafIndex).length),
  };
}

/** Hashes in the longest inclusion proof of a tree of `treeSize` leaves: ceil(log2(treeSize)). */
export function maxInclusionProofHashes(treeSize: number): number {
  return treeSize <= 1 ? 0 : bitLength(treeSize - 1);
}

function base64Length(bytes: number): number {
  return 4 * Math.ceil(bytes / 3);
}

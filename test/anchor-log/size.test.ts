/**
 * The proof bundle size estimate: its parts are the sizes of real signed checkpoints, cosignatures, preimages and
 * proofs, and the proof grows by one hash per doubling of the log.
 */
import { describe, expect, it } from 'vitest';
import { leafBytes } from '../../anchor/index.ts';
import {
  ed25519Cosigner,
  ed25519NoteSigner,
  maxInclusionProofHashes,
  proofBundleSize,
  signCheckpoint,
  TYPICAL_PREIMAGE,
} from '../../anchor/log/index.ts';

const utf8Length = (text: string): number => new TextEncoder().encode(text).length;

describe('proofBundleSize', () => {
  it('counts ceil(log2 n) proof hashes for 10^3, 10^6 and 10^9 leaves', () => {
    expect([1e3, 1e6, 1e9].map((n) => proofBundleSize({ treeSize: n }).proofHashes)).toEqual([10, 20, 30]);
    expect([1, 2, 3, 4, 5, 1e9].map(maxInclusionProofHashes)).toEqual([0, 1, 2, 2, 3, 30]);
    // The last leaf of a tree one past a power of two has the shortest proof.
    expect(proofBundleSize({ treeSize: 1025, leafIndex: 1024 }).proofHashes).toBe(1);
  });

  it('measures the checkpoint and cosignatures as they are signed', () => {
    const origin = 'anchorline.example/log';
    const treeSize = 1e9;
    const log = ed25519NoteSigner(origin, new Uint8Array(32).fill(1));
    const witnesses = [2, 3, 4].map((i) => ed25519Cosigner(`witness.example.org/w${i}00`, new Uint8Array(32).fill(i), () => 1_750_000_000));
    const extensions = ['time 2026-12-06T15:20:00.000Z', `previous ${Buffer.alloc(32, 7).toString('base64')}`];
    const note = signCheckpoint({ origin, size: treeSize, rootHash: new Uint8Array(32), extensions }, log, witnesses);
    const size = proofBundleSize({ treeSize, cosignatures: 3, origin, cosignerNameBytes: 'witness.example.org/w200'.length });
    expect(size.binary.checkpoint + size.binary.cosignatures).toBe(utf8Length(note));
    expect(size.binary.preimage).toBe(leafBytes(TYPICAL_PREIMAGE).length);
    expect(size.binary.inclusionProof).toBe(30 * 32);
    expect(size.text.inclusionProof).toBe(30 * 47);
    for (const parts of [size.binary, size.text]) {
      expect(parts.total).toBe(parts.preimage + parts.leafIndex + parts.inclusionProof + parts.checkpoint + parts.cosignatures);
    }
  });

  it('does not depend on how many checkpoints the log has signed, only on its size', () => {
    const a = proofBundleSize({ treeSize: 2 ** 20 });
    const b = proofBundleSize({ treeSize: 2 ** 20 + 1 });
    expect(b.binary.inclusionProof - a.binary.inclusionProof).toBe(32);
    expect(() => proofBundleSize({ treeSize: 0 })).toThrow(RangeError);
  });
});

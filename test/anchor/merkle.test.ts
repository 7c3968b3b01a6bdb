import { readFileSync } from 'node:fs';
import { sha256 } from '@noble/hashes/sha2.js';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  MerkleTree,
  bytesToHex,
  consistencyProof,
  emptyRoot,
  hexToBytes,
  inclusionProof,
  leafHash,
  merkleRoot,
  nodeHash,
  verifyConsistency,
  verifyInclusion,
} from '../../anchor/index.ts';

const FIXTURES = new URL('../fixtures/anchor/merkle/', import.meta.url);
const readJson = <T>(name: string): T => JSON.parse(readFileSync(new URL(name, FIXTURES), 'utf8')) as T;
const hexes = (list: readonly string[]): Uint8Array[] => list.map(hexToBytes);

interface Vectors {
  leaves: string[];
  leafHashes: string[];
  rootsBySize: string[];
  inclusionProofs: Array<{ leafIndex: number; treeSize: number; proof: string[] }>;
  consistencyProofs: Array<{ size1: number; size2: number; proof: string[] }>;
}
const vectors = readJson<Vectors>('rfc6962-vectors.json');
const leaves = hexes(vectors.leaves);
const leafHashes = hexes(vectors.leafHashes);
const rootOf = (size: number): Uint8Array => hexToBytes(vectors.rootsBySize[size]!);

// The RFC 9162 §2.1 definitions, written as directly as the text, as an oracle for the level-by-level builder.
function largestPowerOfTwoBelow(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}
function referenceRoot(d: Uint8Array[]): Uint8Array {
  if (d.length === 0) return sha256(new Uint8Array(0));
  if (d.length === 1) return d[0]!;
  const k = largestPowerOfTwoBelow(d.length);
  return nodeHash(referenceRoot(d.slice(0, k)), referenceRoot(d.slice(k)));
}
function referencePath(m: number, d: Uint8Array[]): Uint8Array[] {
  if (d.length === 1) return [];
  const k = largestPowerOfTwoBelow(d.length);
  return m < k
    ? [...referencePath(m, d.slice(0, k)), referenceRoot(d.slice(k))]
    : [...referencePath(m - k, d.slice(k)), referenceRoot(d.slice(0, k))];
}
function referenceSubproof(m: number, d: Uint8Array[], b: boolean): Uint8Array[] {
  if (m === d.length) return b ? [] : [referenceRoot(d)];
  const k = largestPowerOfTwoBelow(d.length);
  return m <= k
    ? [...referenceSubproof(m, d.slice(0, k), b), referenceRoot(d.slice(k))]
    : [...referenceSubproof(m - k, d.slice(k), false), referenceRoot(d.slice(0, k))];
}

/** n distinct pseudo-random leaf hashes, reproducible from `seed`. */
function makeLeafHashes(n: number, seed: number): Uint8Array[] {
  return Array.from({ length: n }, (_, i) => leafHash(new Uint8Array([seed & 0xff, seed >>> 8, i & 0xff, i >>> 8, i >>> 16])));
}

function flipBit(bytes: Uint8Array, bit: number): Uint8Array {
  const copy = bytes.slice();
  copy[bit >>> 3]! ^= 1 << (bit & 7);
  return copy;
}

describe('RFC 6962 reference vectors', () => {
  it('hashes each leaf to its published leaf hash', () => {
    expect(leaves.map((leaf) => bytesToHex(leafHash(leaf)))).toEqual(vectors.leafHashes);
  });

  it.each(vectors.rootsBySize.map((root, size) => [size, root] as const))('root of the first %i leaves', (size, root) => {
    expect(bytesToHex(merkleRoot(leafHashes.slice(0, size)))).toBe(root);
    expect(bytesToHex(MerkleTree.fromLeaves(leaves.slice(0, size)).root())).toBe(root);
    expect(bytesToHex(MerkleTree.fromLeafHashes(leafHashes.slice(0, size)).root())).toBe(root);
  });

  it('the empty tree root is SHA-256 of the empty string, and callers get copies', () => {
    expect(bytesToHex(emptyRoot())).toBe(vectors.rootsBySize[0]);
    emptyRoot().fill(0);
    expect(bytesToHex(merkleRoot([]))).toBe(vectors.rootsBySize[0]);
  });

  it.each(vectors.inclusionProofs)('inclusion of leaf $leafIndex in a tree of $treeSize', ({ leafIndex, treeSize, proof }) => {
    const expected = hexes(proof);
    expect(inclusionProof(leafHashes.slice(0, treeSize), leafIndex).map(bytesToHex)).toEqual(proof);
    expect(verifyInclusion(leafHashes[leafIndex]!, leafIndex, treeSize, expected, rootOf(treeSize))).toBe(true);
  });

  it.each(vectors.consistencyProofs)('consistency of $size1 -> $size2', ({ size1, size2, proof }) => {
    expect(consistencyProof(leafHashes.slice(0, size2), size1).map(bytesToHex)).toEqual(proof);
    expect(verifyConsistency(size1, size2, rootOf(size1), rootOf(size2), hexes(proof))).toBe(true);
  });

  it('every inclusion proof and every consistency proof of the 8-leaf vectors verifies', () => {
    for (let size = 1; size <= 8; size++) {
      const tree = MerkleTree.fromLeafHashes(leafHashes.slice(0, size));
      for (let index = 0; index < size; index++) {
        expect(verifyInclusion(leafHashes[index]!, index, size, tree.inclusionProof(index), rootOf(size))).toBe(true);
      }
      for (let m = 0; m <= size; m++) {
        expect(verifyConsistency(m, size, rootOf(m), rootOf(size), tree.consistencyProof(m))).toBe(true);
      }
    }
  });
});

describe('wantErr fixtures', () => {
  interface InclusionProbe {
    leafHash: string;
    leafIndex: number;
    treeSize: number;
    proof: string[];
    root: string;
    why: string;
  }
  const inclusionProbes = readJson<{ cases: InclusionProbe[] }>('wantErr-inclusion.json').cases;
  it.each(inclusionProbes)('inclusion: $why (leaf $leafIndex, size $treeSize)', (probe) => {
    expect(verifyInclusion(hexToBytes(probe.leafHash), probe.leafIndex, probe.treeSize, hexes(probe.proof), hexToBytes(probe.root))).toBe(false);
  });

  interface ConsistencyProbe {
    size1: number;
    size2: number;
    root1: string;
    root2: string;
    proof: string[];
    why: string;
  }
  const consistency = readJson<{ cases: ConsistencyProbe[]; trivialValid: ConsistencyProbe[] }>('wantErr-consistency.json');
  it.each(consistency.cases)('consistency: $why ($size1 -> $size2)', (probe) => {
    expect(verifyConsistency(probe.size1, probe.size2, hexToBytes(probe.root1), hexToBytes(probe.root2), hexes(probe.proof))).toBe(false);
  });
  it.each(consistency.trivialValid)('consistency without a proof: $size1 -> $size2', (probe) => {
    expect(verifyConsistency(probe.size1, probe.size2, hexToBytes(probe.root1), hexToBytes(probe.root2), hexes(probe.proof))).toBe(true);
  });
});

describe('builder against the recursive RFC definitions', () => {
  it('roots, audit paths and consistency proofs agree for every size up to 70', () => {
    const all = makeLeafHashes(70, 1);
    for (let n = 0; n <= 70; n++) {
      const d = all.slice(0, n);
      const tree = MerkleTree.fromLeafHashes(d);
      expect(bytesToHex(merkleRoot(d))).toBe(bytesToHex(referenceRoot(d)));
      expect(bytesToHex(tree.root())).toBe(bytesToHex(referenceRoot(d)));
      for (let i = 0; i < n; i++) expect(tree.inclusionProof(i).map(bytesToHex)).toEqual(referencePath(i, d).map(bytesToHex));
      for (let m = 1; m < n; m++) expect(tree.consistencyProof(m).map(bytesToHex)).toEqual(referenceSubproof(m, d, true).map(bytesToHex));
    }
  });

  it('roots agree around powers of two up to 2^12 + 1', () => {
    const all = makeLeafHashes(4097, 2);
    for (const n of [127, 128, 129, 1000, 1023, 1024, 1025, 4095, 4096, 4097]) {
      expect(bytesToHex(merkleRoot(all.slice(0, n)))).toBe(bytesToHex(referenceRoot(all.slice(0, n))));
    }
  });

  it('hashes leaves of every length up to three SHA-256 blocks like leafHash does', () => {
    const data = Uint8Array.from({ length: 200 }, (_, i) => (i * 37 + 11) & 0xff);
    const leavesOfEachLength = Array.from({ length: 200 }, (_, len) => data.subarray(0, len));
    const tree = MerkleTree.fromLeaves(leavesOfEachLength);
    leavesOfEachLength.forEach((leaf, i) => expect(bytesToHex(tree.leafHash(i))).toBe(bytesToHex(leafHash(leaf))));
  });

  it('rejects hashes that are not 32 bytes and indices outside the tree', () => {
    expect(() => merkleRoot([new Uint8Array(31)])).toThrow(RangeError);
    expect(() => MerkleTree.fromLeafHashes([new Uint8Array(32), new Uint8Array(33)])).toThrow(/leafHashes\[1\]/);
    expect(() => nodeHash(new Uint8Array(32), new Uint8Array(0))).toThrow(RangeError);
    const tree = MerkleTree.fromLeafHashes(makeLeafHashes(5, 3));
    for (const bad of [-1, 5, 1.5, Number.NaN]) {
      expect(() => tree.inclusionProof(bad)).toThrow(RangeError);
      expect(() => tree.leafHash(bad)).toThrow(RangeError);
    }
    expect(() => tree.consistencyProof(6)).toThrow(RangeError);
    expect(() => inclusionProof([], 0)).toThrow(RangeError);
  });
});

describe('properties', () => {
  const treeAndIndex = fc
    .integer({ min: 1, max: 300 })
    .chain((size) => fc.record({ size: fc.constant(size), index: fc.nat(size - 1), seed: fc.nat(0xffff) }));

  it('every inclusion proof verifies, and one flipped bit in the proof, leaf or root breaks it', () => {
    fc.assert(
      fc.property(treeAndIndex, fc.nat(), ({ size, index, seed }, bitChoice) => {
        const d = makeLeafHashes(size, seed);
        const tree = MerkleTree.fromLeafHashes(d);
        const root = tree.root();
        const proof = tree.inclusionProof(index);
        expect(verifyInclusion(d[index]!, index, size, proof, root)).toBe(true);

        expect(verifyInclusion(flipBit(d[index]!, bitChoice % 256), index, size, proof, root)).toBe(false);
        expect(verifyInclusion(d[index]!, index, size, proof, flipBit(root, bitChoice % 256))).toBe(false);
        if (proof.length > 0) {
          const element = bitChoice % proof.length;
          const tampered = proof.map((hash, i) => (i === element ? flipBit(hash, (bitChoice >>> 8) % 256) : hash));
          expect(verifyInclusion(d[index]!, index, size, tampered, root)).toBe(false);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('flipping any bit of the index breaks an inclusion proof', () => {
    fc.assert(
      fc.property(treeAndIndex, fc.integer({ min: 0, max: 52 }), ({ size, index, seed }, bit) => {
        const d = makeLeafHashes(size, seed);
        const tree = MerkleTree.fromLeafHashes(d);
        const wrongIndex = index + (Math.floor(index / 2 ** bit) % 2 === 1 ? -1 : 1) * 2 ** bit;
        expect(verifyInclusion(d[index]!, wrongIndex, size, tree.inclusionProof(index), tree.root())).toBe(false);
      }),
      { numRuns: 200 },
    );
  });

  it('exhaustively: every single-bit change of every proof in a 13-leaf tree is rejected', () => {
    const d = makeLeafHashes(13, 4);
    const tree = MerkleTree.fromLeafHashes(d);
    const root = tree.root();
    for (let index = 0; index < 13; index++) {
      const proof = tree.inclusionProof(index);
      for (let element = 0; element < proof.length; element++) {
        for (let bit = 0; bit < 256; bit++) {
          const tampered = proof.map((hash, i) => (i === element ? flipBit(hash, bit) : hash));
          expect(verifyInclusion(d[index]!, index, 13, tampered, root)).toBe(false);
        }
      }
    }
  });

  const sizes = fc
    .integer({ min: 1, max: 300 })
    .chain((n) => fc.record({ n: fc.constant(n), m: fc.integer({ min: 0, max: n }), seed: fc.nat(0xffff) }));

  it('every consistency proof verifies, and tampered ones do not', () => {
    fc.assert(
      fc.property(sizes, fc.nat(), ({ n, m, seed }, choice) => {
        const d = makeLeafHashes(n, seed);
        const tree = MerkleTree.fromLeafHashes(d);
        const oldRoot = merkleRoot(d.slice(0, m));
        const newRoot = tree.root();
        const proof = tree.consistencyProof(m);
        expect(verifyConsistency(m, n, oldRoot, newRoot, proof)).toBe(true);

        expect(verifyConsistency(m, n, flipBit(oldRoot, choice % 256), newRoot, proof)).toBe(false);
        // Every tree extends the empty one, so for m = 0 nothing binds the new root.
        if (m > 0) expect(verifyConsistency(m, n, oldRoot, flipBit(newRoot, choice % 256), proof)).toBe(false);
        if (m > 0) expect(verifyConsistency(m - 1, n, oldRoot, newRoot, proof)).toBe(false);
        if (m < n) expect(verifyConsistency(m + 1, n, oldRoot, newRoot, proof)).toBe(false);
        if (proof.length > 0) {
          const element = choice % proof.length;
          const tampered = proof.map((hash, i) => (i === element ? flipBit(hash, (choice >>> 8) % 256) : hash));
          expect(verifyConsistency(m, n, oldRoot, newRoot, tampered)).toBe(false);
          expect(verifyConsistency(m, n, oldRoot, newRoot, proof.slice(0, -1))).toBe(false);
          expect(verifyConsistency(m, n, oldRoot, newRoot, [...proof, newRoot])).toBe(false);
        }
      }),
      { numRuns: 300 },
    );
  });
});

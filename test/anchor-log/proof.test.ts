/**
 * Inclusion and consistency proofs of the one log: the transparency-dev/merkle vectors (expected outcomes on disk,
 * including the cases that must fail), and properties over random trees: what is generated verifies, matches the
 * batch tree's proofs (../../anchor/merkle.ts), and any single-bit change, other index or other size is refused.
 */
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { base64ToBytes, leafHash, MerkleTree, nodeHash } from '../../anchor/index.ts';
import {
  appendLeafHashes,
  consistencyProof,
  consistencyRanges,
  Frontier,
  inclusionProof,
  inclusionRanges,
  MemoryNodeStore,
  rootFromInclusionProof,
  treeRoot,
  verifyConsistencyProof,
  verifyInclusionProof,
  type NodeId,
  type NodeSource,
} from '../../anchor/log/index.ts';

const FIXTURES = new URL('../fixtures/anchor-log/', import.meta.url);
const readJson = <T>(name: string): T => JSON.parse(readFileSync(new URL(name, FIXTURES), 'utf8')) as T;
const b64 = (text: string): Uint8Array => base64ToBytes(text);

interface InclusionCase {
  file: string;
  leafIdx: number;
  treeSize: number;
  root: string;
  leafHash: string;
  proof: string[] | null;
  desc: string;
  wantErr: boolean;
}
interface ConsistencyCase {
  file: string;
  size1: number;
  size2: number;
  root1: string;
  root2: string;
  proof: string[] | null;
  desc: string;
  wantErr: boolean;
}

/**
 * Where anchorline deliberately differs from transparency-dev: it refuses any root or hash that is not 32 bytes,
 * even where the sizes are equal and transparency-dev only compares the two roots.
 */
const STRICTER_HERE = new Set(['testdata/consistency/additional/sizes-are-equal-one-and-proof-is-empty.json']);

describe('transparency-dev inclusion vectors', () => {
  const cases = readJson<InclusionCase[]>('transparency-dev-inclusion.json');

  it('are all read, happy paths and failures', () => {
    expect(cases.length).toBe(98);
    expect(cases.filter((c) => !c.wantErr).length).toBe(6);
  });

  it.each(cases.map((c) => [c.file, c] as const))('%s', (_file, c) => {
    const proof = (c.proof ?? []).map(b64);
    const verdict = verifyInclusionProof(b64(c.leafHash), c.leafIdx, c.treeSize, proof, b64(c.root));
    expect(verdict.ok, verdict.ok ? '' : verdict.reason).toBe(!c.wantErr);
    if (!verdict.ok) expect(verdict.reason.length).toBeGreaterThan(10);
  });
});

describe('transparency-dev consistency vectors', () => {
  const cases = readJson<ConsistencyCase[]>('transparency-dev-consistency.json');

  it('are all read, happy paths and failures', () => {
    expect(cases.length).toBe(98);
    expect(cases.filter((c) => !c.wantErr).length).toBe(6);
  });

  it.each(cases.map((c) => [c.file, c] as const))('%s', (file, c) => {
    const proof = (c.proof ?? []).map(b64);
    const verdict = verifyConsistencyProof(c.size1, c.size2, proof, b64(c.root1), b64(c.root2));
    const expected = STRICTER_HERE.has(file) ? false : !c.wantErr;
    expect(verdict.ok, verdict.ok ? '' : verdict.reason).toBe(expected);
  });
});

describe('refusals say why', () => {
  const leaves = Array.from({ length: 7 }, (_, i) => leafHash(new Uint8Array([i])));
  const tree = MerkleTree.fromLeafHashes(leaves);

  it('names a proof of the wrong length', () => {
    const proof = tree.inclusionProof(2);
    const verdict = verifyInclusionProof(leaves[2]!, 2, 7, [...proof, proof[0]!], tree.root());
    expect(verdict).toEqual({ ok: false, reason: 'the proof has 4 hashes; leaf 2 of a 7-leaf tree needs exactly 3' });
    const short = verifyConsistencyProof(3, 7, tree.consistencyProof(3).slice(1), MerkleTree.fromLeafHashes(leaves.slice(0, 3)).root(), tree.root());
    expect(short.ok).toBe(false);
    expect(!short.ok && short.reason).toMatch(/sizes 3 to 7 need exactly/);
  });

  it('refuses the empty tree, shrinking logs, and non-hashes', () => {
    expect(verifyInclusionProof(leaves[0]!, 0, 0, [], tree.root())).toEqual({ ok: false, reason: 'no leaf is in the empty tree' });
    expect(verifyConsistencyProof(7, 3, [], tree.root(), tree.root()).ok).toBe(false);
    expect(verifyInclusionProof(new Uint8Array(31), 0, 1, [], tree.root()).ok).toBe(false);
    expect(verifyInclusionProof(leaves[0]!, -1, 1, [], leaves[0]!).ok).toBe(false);
    expect(verifyInclusionProof(leaves[0]!, 0, 2 ** 53, [], leaves[0]!).ok).toBe(false);
    expect(verifyInclusionProof(leaves[0]!, 0.5, 2, [], leaves[0]!).ok).toBe(false);
  });

  it('decides the edge cases of sizes 0 and equal sizes as documented', () => {
    const empty = Frontier.empty().root();
    const root = tree.root();
    expect(verifyConsistencyProof(0, 0, [], empty, empty)).toEqual({ ok: true });
    expect(verifyConsistencyProof(0, 7, [], empty, root)).toEqual({ ok: true });
    expect(verifyConsistencyProof(0, 7, [], root, root).ok).toBe(false);
    expect(verifyConsistencyProof(0, 7, [root], empty, root).ok).toBe(false);
    expect(verifyConsistencyProof(7, 7, [], root, root)).toEqual({ ok: true });
    expect(verifyConsistencyProof(7, 7, [root], root, root).ok).toBe(false);
    expect(verifyConsistencyProof(1, 1, [], leaves[0]!, leaves[1]!).ok).toBe(false);
  });
});

/** A log of `size` random leaves in a MemoryNodeStore, and the batch tree over the same leaves. */
async function randomLog(size: number, seed: number): Promise<{ store: MemoryNodeStore; tree: MerkleTree; leaves: Uint8Array[] }> {
  const leaves: Uint8Array[] = [];
  let x = seed | 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    leaves.push(leafHash(new Uint8Array([x & 0xff, (x >>> 8) & 0xff, (x >>> 16) & 0xff, i & 0xff, (i >>> 8) & 0xff])));
  }
  const store = new MemoryNodeStore();
  // Append in a few uneven steps, as batches would.
  let frontier = Frontier.empty();
  for (let at = 0; at < size; ) {
    const step = Math.min(size - at, 1 + ((x >>> 3) % 37) + at);
    frontier = await appendLeafHashes(store, frontier, leaves.slice(at, at + step));
    at += step;
  }
  return { store, tree: MerkleTree.fromLeafHashes(leaves), leaves };
}

const flipBit = (bytes: Uint8Array, bit: number): Uint8Array => {
  const copy = bytes.slice();
  copy[bit >>> 3]! ^= 1 << (bit & 7);
  return copy;
};

describe('generated proofs', () => {
  it('match the batch tree and verify, and every single-bit change is refused (inclusion)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 300 }), fc.nat(), fc.integer(), fc.nat(), async (size, indexSeed, seed, bitSeed) => {
        const { store, tree, leaves } = await randomLog(size, seed);
        const index = indexSeed % size;
        const proof = await inclusionProof(store, index, size);
        expect(proof).toEqual(tree.inclusionProof(index));
        const root = await treeRoot(store, size);
        expect(root).toEqual(tree.root());
        expect(verifyInclusionProof(leaves[index]!, index, size, proof, root)).toEqual({ ok: true });
        // One bit of the leaf hash, of a proof hash or of the root.
        const totalBits = 256 * (proof.length + 2);
        const bit = bitSeed % totalBits;
        const part = Math.floor(bit / 256);
        let verdict;
        if (part === 0) verdict = verifyInclusionProof(flipBit(leaves[index]!, bit % 256), index, size, proof, root);
        else if (part === 1) verdict = verifyInclusionProof(leaves[index]!, index, size, proof, flipBit(root, bit % 256));
        else {
          const changed = proof.slice();
          changed[part - 2] = flipBit(proof[part - 2]!, bit % 256);
          verdict = verifyInclusionProof(leaves[index]!, index, size, changed, root);
        }
        expect(verdict.ok).toBe(false);
        // Another index with the same proof. (Another size need not fail: leaf 0 of 3 and of 4 hash alike, and the
        // verifier cannot tell which tree the root is of; the checkpoint binds the size to the root.)
        if (size > 1) expect(verifyInclusionProof(leaves[index]!, (index + 1 + (bitSeed % (size - 1))) % size, size, proof, root).ok).toBe(false);
      }),
      { numRuns: 150 },
    );
  });

  it('match the batch tree and verify, and every single-bit change is refused (consistency)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 300 }), fc.nat(), fc.integer(), fc.nat(), async (n, mSeed, seed, bitSeed) => {
        const { store, tree, leaves } = await randomLog(n, seed);
        const m = mSeed % (n + 1);
        const proof = await consistencyProof(store, m, n);
        expect(proof).toEqual(tree.consistencyProof(m));
        const oldRoot = await treeRoot(store, m);
        expect(oldRoot).toEqual(MerkleTree.fromLeafHashes(leaves.slice(0, m)).root());
        const newRoot = tree.root();
        expect(verifyConsistencyProof(m, n, proof, oldRoot, newRoot)).toEqual({ ok: true });
        const totalBits = 256 * (proof.length + 2);
        const bit = bitSeed % totalBits;
        const part = Math.floor(bit / 256);
        let verdict;
        if (part === 0) verdict = verifyConsistencyProof(m, n, proof, flipBit(oldRoot, bit % 256), newRoot);
        else if (part === 1) verdict = verifyConsistencyProof(m, n, proof, oldRoot, flipBit(newRoot, bit % 256));
        else {
          const changed = proof.slice();
          changed[part - 2] = flipBit(proof[part - 2]!, bit % 256);
          verdict = verifyConsistencyProof(m, n, changed, oldRoot, newRoot);
        }
        // From the empty tree nothing binds the new root: every tree extends the empty one.
        expect(verdict.ok).toBe(m === 0 && n > 0 && part === 1);
        if (m > 0 && m < n) {
          expect(verifyConsistencyProof(m, n, proof.slice(1), oldRoot, newRoot).ok).toBe(false);
          expect(verifyConsistencyProof(m, n, [...proof, newRoot], oldRoot, newRoot).ok).toBe(false);
        }
      }),
      { numRuns: 150 },
    );
  });
});

/**
 * A real tree of any size whose leaves all have the same hash: every perfect node of a level has the same hash, so
 * any node is computed in O(level). Proofs over it exercise sizes far beyond 2^32 without storing anything.
 */
function uniformTree(leaf: Uint8Array): NodeSource {
  const byLevel = [leaf];
  const levelHash = (level: number): Uint8Array => {
    while (byLevel.length <= level) byLevel.push(nodeHash(byLevel[byLevel.length - 1]!, byLevel[byLevel.length - 1]!));
    return byLevel[level]!;
  };
  return { readNodes: async (ids: readonly NodeId[]) => ids.map((id) => levelHash(id.level)) };
}

describe('proofs for sizes beyond 2^32', () => {
  const leaf = leafHash(new TextEncoder().encode('uniform'));
  const source = uniformTree(leaf);

  it('generate and verify at sizes up to 2^53 - 1', async () => {
    for (const size of [2 ** 32 + 1, 2 ** 40 + 12345, 10 ** 15 + 7, Number.MAX_SAFE_INTEGER]) {
      const root = await treeRoot(source, size);
      for (const index of [0, 1, 2 ** 32 - 1, 2 ** 32, Math.floor(size / 3), size - 2, size - 1]) {
        const proof = await inclusionProof(source, index, size);
        expect(proof.length).toBe(inclusionRanges(index, size).length);
        expect(verifyInclusionProof(leaf, index, size, proof, root), `${index} of ${size}`).toEqual({ ok: true });
        const computed = rootFromInclusionProof(leaf, index, size, proof);
        expect(computed.ok && computed.root).toEqual(root);
        expect(verifyInclusionProof(leaf, index, size, proof, flipBit(root, 77)).ok).toBe(false);
      }
      for (const m of [1, 2 ** 32 - 1, 2 ** 32 + 1, Math.floor(size / 2) + 1, size - 1]) {
        const proof = await consistencyProof(source, m, size);
        expect(proof.length).toBe(consistencyRanges(m, size).length);
        expect(verifyConsistencyProof(m, size, proof, await treeRoot(source, m), root), `${m} to ${size}`).toEqual({ ok: true });
        expect(verifyConsistencyProof(m, size, proof, await treeRoot(source, m), flipBit(root, 3)).ok).toBe(false);
      }
    }
  });
});

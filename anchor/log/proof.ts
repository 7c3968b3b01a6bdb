/**
 * RFC 9162 inclusion proofs (§2.1.3) and consistency proofs (§2.1.4) for the one log: generation from a NodeSource,
 * and verification that needs nothing but the proof.
 *
 * BYTES HASHED: only RFC 9162 node hashes, SHA-256(0x01 || left || right) over 32-byte hashes (./tree.ts). A proof
 * is a list of 32-byte hashes, each the MTH of one range of leaves, in the RFC's order:
 *   inclusion    PATH(m, D[n]): from the leaf's sibling subtree up to the root's child on the other side
 *   consistency  PROOF(m, D[n]) = SUBPROOF(m, D[n], true)
 * Each of those ranges is a perfect subtree or the right edge of a subtree, so its MTH is the fold of the perfect
 * nodes that cover it (`rangeNodes`), and generating a proof reads O(log n) stored nodes in one `readNodes` call.
 *
 * Verification follows RFC 9162 §2.1.3.2 and §2.1.4.2 step by step (the step numbers are in the comments), after
 * checking that the proof has exactly the number of hashes the sizes call for. It never throws: every refusal is a
 * `{ ok: false, reason }` naming what is wrong. Edge cases the RFC leaves open are decided as follows:
 *   - inclusion in the empty tree: refused (no leaf is in it);
 *   - consistency with m = n: the proof must be empty and the two roots equal;
 *   - consistency from m = 0: the proof must be empty and the old root must be the empty tree's root (every tree
 *     extends the empty one, but accepting any old root would "prove" a claim about a root no empty tree has);
 *   - every hash (leaf hash, roots, proof entries) must be 32 bytes, even where the RFC's algorithm would only
 *     compare it.
 *
 * ../merkle.ts has boolean verifiers for single batches; these are the log's, with reasons, and the two are tested
 * to agree on every input.
 *
 * Browser-safe: no Node built-ins.
 */
import { emptyRoot, half, HASH_BYTES, isOdd, isPowerOfTwo, largestPowerOfTwoBelow, nodeHash } from '../merkle.ts';
import type { NodeSource } from './store.ts';
import { foldRange, rangeNodes } from './tree.ts';

/** A verification outcome: refusals say why, in words that name sizes and indices, never secret data. */
export type Verdict = { ok: true } | { ok: false; reason: string };

/** Leaves [start, end). */
export interface LeafRange {
  readonly start: number;
  readonly end: number;
}

/** The ranges whose MTHs make PATH(index, D[size]) (RFC 9162 §2.1.3.1), in proof order. */
export function inclusionRanges(index: number, size: number): LeafRange[] {
  if (!isTreeSize(size) || !isTreeSize(index) || index >= size) {
    throw new RangeError(`leaf index ${index} is not in a tree of ${size} leaves`);
  }
  const ranges: LeafRange[] = [];
  // PATH recurses into the half holding the leaf and then appends the other half: walk down, then reverse.
  let start = 0;
  let n = size;
  let m = index;
  while (n > 1) {
    const k = largestPowerOfTwoBelow(n);
    if (m < k) {
      ranges.push({ start: start + k, end: start + n });
      n = k;
    } else {
      ranges.push({ start, end: start + k });
      start += k;
      m -= k;
      n -= k;
    }
  }
  return ranges.reverse();
}

/** The ranges whose MTHs make PROOF(m, D[n]) (RFC 9162 §2.1.4.1), in proof order; empty for m = 0 or m = n. */
export function consistencyRanges(m: number, n: number): LeafRange[] {
  if (!isTreeSize(m) || !isTreeSize(n) || m > n) throw new RangeError(`sizes ${m} and ${n} are not 0 <= m <= n`);
  if (m === 0 || m === n) return [];
  const ranges: LeafRange[] = [];
  // SUBPROOF(m, D[start:start+size], b), unrolled: each step appends after its recursion, so collect and reverse.
  let start = 0;
  let size = n;
  let rest = m;
  let wholeOldTree = true;
  while (rest !== size) {
    const k = largestPowerOfTwoBelow(size);
    if (rest <= k) {
      ranges.push({ start: start + k, end: start + size });
      size = k;
    } else {
      ranges.push({ start, end: start + k });
      start += k;
      rest -= k;
      size -= k;
      wholeOldTree = false;
    }
  }
  // SUBPROOF(m, D[m], b): MTH(D[m]) unless b, when the verifier already holds the old root.
  if (!wholeOldTree) ranges.push({ start, end: start + size });
  return ranges.reverse();
}

/** The MTH of each range, read from `source` in one call. */
export async function rangeHashes(source: NodeSource, ranges: readonly LeafRange[]): Promise<Uint8Array[]> {
  const plans = ranges.map((range) => rangeNodes(range.start, range.end));
  const hashes = await source.readNodes(plans.flat());
  let at = 0;
  return plans.map((plan) => {
    const covering = hashes.slice(at, at + plan.length);
    at += plan.length;
    return foldRange(covering);
  });
}

/** PATH(index, D[size]) from stored nodes. The source must hold the tree of `size` leaves. */
export async function inclusionProof(source: NodeSource, index: number, size: number): Promise<Uint8Array[]> {
  return rangeHashes(source, inclusionRanges(index, size));
}

/** PROOF(m, D[n]) from stored nodes. The source must hold the tree of `n` leaves. */
export async function consistencyProof(source: NodeSource, m: number, n: number): Promise<Uint8Array[]> {
  return rangeHashes(source, consistencyRanges(m, n));
}

/** MTH(D[size]) from stored nodes: popcount(size) node reads and one fewer node hashes. */
export async function treeRoot(source: NodeSource, size: number): Promise<Uint8Array> {
  const [root] = await rangeHashes(source, [{ start: 0, end: size }]);
  return root!;
}

/**
 * The root that `leafHash` at `index` with `proof` leads to in a tree of `size` leaves (RFC 9162 §2.1.3.2 without
 * the final comparison), for callers that compare it with several roots.
 */
export function rootFromInclusionProof(
  leafHash: Uint8Array,
  index: number,
  size: number,
  proof: readonly Uint8Array[],
): { ok: true; root: Uint8Array } | { ok: false; reason: string } {
  if (!isTreeSize(size)) return refuse(`tree size ${String(size)} is not an integer in 0..2^53-1`);
  if (!isTreeSize(index)) return refuse(`leaf index ${String(index)} is not an integer in 0..2^53-1`);
  if (!isHash(leafHash)) return refuse(`the leaf hash is not ${HASH_BYTES} bytes`);
  const badEntry = firstNonHash(proof);
  if (badEntry !== undefined) return refuse(badEntry);
  // Step 1.
  if (index >= size) return refuse(size === 0 ? 'no leaf is in the empty tree' : `leaf index ${index} is not below tree size ${size}`);
  const expected = inclusionRanges(index, size).length;
  if (proof.length !== expected) {
    return refuse(`the proof has ${proof.length} hashes; leaf ${index} of a ${size}-leaf tree needs exactly ${expected}`);
  }
  // Steps 2 and 3.
  let fn = index;
  let sn = size - 1;
  let r = leafHash;
  // Step 4.
  for (const p of proof) {
    // 4a (unreachable after the length check, kept as the RFC has it).
    if (sn === 0) return refuse('the proof is longer than the tree is high');
    // 4b.
    if (isOdd(fn) || fn === sn) {
      r = nodeHash(p, r);
      // 4b, continued: skip the levels where the right edge has no sibling.
      while (!isOdd(fn) && fn !== 0) {
        fn = half(fn);
        sn = half(sn);
      }
    } else {
      r = nodeHash(r, p);
    }
    // 4c.
    fn = half(fn);
    sn = half(sn);
  }
  // Step 5, first half (the root comparison is the caller's).
  if (sn !== 0) return refuse('the proof is shorter than the tree is high');
  return { ok: true, root: r };
}

/** Verifies that `leafHash` is leaf `index` of the tree of `size` leaves whose root is `root` (RFC 9162 §2.1.3.2). */
export function verifyInclusionProof(
  leafHash: Uint8Array,
  index: number,
  size: number,
  proof: readonly Uint8Array[],
  root: Uint8Array,
): Verdict {
  if (!isHash(root)) return refuse(`the root is not ${HASH_BYTES} bytes`);
  const computed = rootFromInclusionProof(leafHash, index, size, proof);
  if (!computed.ok) return computed;
  // Step 5, second half.
  return bytesEqual(computed.root, root)
    ? { ok: true }
    : refuse(`leaf ${index} with its ${proof.length}-hash proof leads to a different root of the ${size}-leaf tree`);
}

/**
 * Verifies that the tree of `m` leaves with root `oldRoot` is a prefix of the tree of `n` leaves with root
 * `newRoot` (RFC 9162 §2.1.4.2; m = 0 and m = n as in this file's header).
 */
export function verifyConsistencyProof(
  m: number,
  n: number,
  proof: readonly Uint8Array[],
  oldRoot: Uint8Array,
  newRoot: Uint8Array,
): Verdict {
  if (!isTreeSize(m)) return refuse(`old size ${String(m)} is not an integer in 0..2^53-1`);
  if (!isTreeSize(n)) return refuse(`new size ${String(n)} is not an integer in 0..2^53-1`);
  if (m > n) return refuse(`old size ${m} is larger than new size ${n}: a log only grows`);
  if (!isHash(oldRoot)) return refuse(`the old root is not ${HASH_BYTES} bytes`);
  if (!isHash(newRoot)) return refuse(`the new root is not ${HASH_BYTES} bytes`);
  const badEntry = firstNonHash(proof);
  if (badEntry !== undefined) return refuse(badEntry);
  if (m === n) {
    if (proof.length !== 0) return refuse(`equal sizes need an empty proof, got ${proof.length} hashes`);
    return bytesEqual(oldRoot, newRoot) ? { ok: true } : refuse(`two trees of ${m} leaves have different roots`);
  }
  if (m === 0) {
    if (proof.length !== 0) return refuse(`a proof from the empty tree must be empty, got ${proof.length} hashes`);
    return bytesEqual(oldRoot, emptyRoot()) ? { ok: true } : refuse("the old root is not the empty tree's root");
  }
  const expected = consistencyRanges(m, n).length;
  // Step 1, and every other wrong length.
  if (proof.length !== expected) {
    return refuse(`the proof has ${proof.length} hashes; sizes ${m} to ${n} need exactly ${expected}`);
  }
  // Step 2: when m is a power of two the old tree is a complete subtree, its root the path's first node.
  const path = isPowerOfTwo(m) ? [oldRoot, ...proof] : proof;
  // Step 3.
  let fn = m - 1;
  let sn = n - 1;
  // Step 4.
  while (isOdd(fn)) {
    fn = half(fn);
    sn = half(sn);
  }
  // Step 5.
  let fr = path[0]!;
  let sr = path[0]!;
  // Step 6.
  for (let i = 1; i < path.length; i++) {
    const c = path[i]!;
    // 6a (unreachable after the length check, kept as the RFC has it).
    if (sn === 0) return refuse('the proof is longer than the trees are high');
    // 6b.
    if (isOdd(fn) || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      while (!isOdd(fn) && fn !== 0) {
        fn = half(fn);
        sn = half(sn);
      }
    } else {
      sr = nodeHash(sr, c);
    }
    // 6c.
    fn = half(fn);
    sn = half(sn);
  }
  // Step 7.
  if (sn !== 0) return refuse('the proof is shorter than the trees are high');
  if (!bytesEqual(fr, oldRoot)) return refuse(`the proof does not lead to the old root of the ${m}-leaf tree`);
  if (!bytesEqual(sr, newRoot)) return refuse(`the proof does not lead to the new root of the ${n}-leaf tree`);
  return { ok: true };
}

function refuse(reason: string): { ok: false; reason: string } {
  return { ok: false, reason };
}

function firstNonHash(proof: readonly Uint8Array[]): string | undefined {
  if (!Array.isArray(proof)) return 'the proof is not a list of hashes';
  for (let i = 0; i < proof.length; i++) {
    if (!isHash(proof[i]!)) return `proof entry ${i} is not ${HASH_BYTES} bytes`;
  }
  return undefined;
}

function isTreeSize(x: unknown): x is number {
  return typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
}

function isHash(x: unknown): x is Uint8Array {
  return x instanceof Uint8Array && x.length === HASH_BYTES;
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** verifyInclusionProof as a yes or no: what the batch proofs of anchor/bundle.ts check. */
export function verifyInclusion(leafHash: Uint8Array, index: number, treeSize: number, proof: readonly Uint8Array[], root: Uint8Array): boolean {
  return verifyInclusionProof(leafHash, index, treeSize, proof, root).ok;
}

/** verifyConsistencyProof as a yes or no, arguments in the order RFC 9162 names them (old root, new root, proof). */
export function verifyConsistency(m: number, n: number, oldRoot: Uint8Array, newRoot: Uint8Array, proof: readonly Uint8Array[]): boolean {
  return verifyConsistencyProof(m, n, proof, oldRoot, newRoot).ok;
}

/**
 * The RFC 9162 (Certificate Transparency 2.0) Merkle tree over SHA-256, §2.1: hashes, tree roots, inclusion and
 * consistency proofs, and their verification.
 *
 * The verifiers of the proofs are in ./log/proof.ts (following the RFC's algorithms step by step, with a reason for
 * every refusal). Tree building uses the allocation-free SHA-256 in ./sha256-fixed.ts, because building batches of a
 * million leaves is the hot path and the verifiers are not.
 *
 * Sizes and indices are JavaScript numbers: exact up to 2^53, far past any tree held in memory. Verifiers use
 * arithmetic rather than 32-bit bit operators so they stay correct for tree sizes beyond 2^32.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { hashesToWords, nodeHashWords, prefixedHashWords, wordsToHash } from './sha256-fixed.ts';

/** Size of every hash in the tree, in bytes. */
export const HASH_BYTES = 32;

/** Domain-separation prefixes of RFC 9162 §2.1.1, so that no leaf can be passed off as an interior node. */
const LEAF_PREFIX = 0x00;
const NODE_PREFIX = 0x01;

/** Root of the empty tree: SHA-256 of the empty string (RFC 9162 §2.1.1). Private: callers get copies. */
const EMPTY_ROOT: Uint8Array = sha256(new Uint8Array(0));

/** Root of the empty tree: SHA-256 of the empty string (RFC 9162 §2.1.1). A fresh copy on each call. */
export function emptyRoot(): Uint8Array {
  return EMPTY_ROOT.slice();
}

/** RFC 9162 leaf hash: SHA-256(0x00 || leaf). */
export function leafHash(leaf: Uint8Array): Uint8Array {
  const message = new Uint8Array(1 + leaf.length);
  message[0] = LEAF_PREFIX;
  message.set(leaf, 1);
  return sha256(message);
}

/** RFC 9162 interior node hash: SHA-256(0x01 || left || right). Both children must be 32-byte hashes. */
export function nodeHash(left: Uint8Array, right: Uint8Array): Uint8Array {
  if (left.length !== HASH_BYTES || right.length !== HASH_BYTES) {
    throw new RangeError(`nodeHash needs two ${HASH_BYTES}-byte hashes, got ${left.length} and ${right.length} bytes`);
  }
  const message = new Uint8Array(1 + 2 * HASH_BYTES);
  message[0] = NODE_PREFIX;
  message.set(left, 1);
  message.set(right, 1 + HASH_BYTES);
  return sha256(message);
}

/**
 * Merkle Tree Hash (RFC 9162 §2.1.1) of a list of leaf hashes, for any count (0 gives `emptyRoot()`).
 *
 * Built level by level in one buffer: pairing nodes left to right and carrying an unpaired last node up unchanged
 * yields exactly the RFC's recursive split at the largest power of two below n, without recursion or per-node
 * allocation. Use `MerkleTree` instead when proofs are needed too.
 */
export function merkleRoot(leafHashes: readonly Uint8Array[]): Uint8Array {
  if (leafHashes.length === 0) return EMPTY_ROOT.slice();
  const words = hashesToWords(leafHashes, 'leafHashes');
  let count = leafHashes.length;
  while (count > 1) {
    const pairs = count >>> 1;
    // Parent i overwrites slot i, which is at or before both children (2i, 2i+1), so no unread input is lost.
    for (let i = 0; i < pairs; i++) nodeHashWords(words, 16 * i, 16 * i + 8, words, 8 * i);
    if (count % 2 === 1) words.copyWithin(8 * pairs, 8 * (count - 1), 8 * count);
    count = pairs + (count % 2);
  }
  return wordsToHash(words, 0);
}

/**
 * A Merkle tree with every level kept, so that inclusion and consistency proofs for any leaf or earlier size cost
 * O(log n) lookups and no hashing. Memory: about 64 bytes per leaf (the leaf level plus all levels above it).
 *
 * Level k holds ceil(n / 2^k) nodes; node j of level k is the Merkle Tree Hash of leaves [j*2^k, min((j+1)*2^k, n)).
 * An unpaired last node is carried up unchanged, which is why the right edge of each level may repeat a hash.
 */
export class MerkleTree {
  /** Number of leaves. */
  readonly size: number;
  /** Level 0 is the leaf hashes; the last level holds the root. Each hash is 8 big-endian 32-bit words. */
  readonly #levels: Int32Array[];

  private constructor(leafWords: Int32Array, size: number) {
    this.size = size;
    this.#levels = [leafWords];
    let below = leafWords;
    let count = size;
    while (count > 1) {
      const pairs = count >>> 1;
      const above = new Int32Array(8 * (pairs + (count % 2)));
      for (let i = 0; i < pairs; i++) nodeHashWords(below, 16 * i, 16 * i + 8, above, 8 * i);
      if (count % 2 === 1) above.set(below.subarray(8 * (count - 1), 8 * count), 8 * pairs);
      this.#levels.push(above);
      below = above;
      count = pairs + (count % 2);
    }
  }

  /** A tree over already hashed leaves (each 32 bytes, typically from `leafHash`). */
  static fromLeafHashes(leafHashes: readonly Uint8Array[]): MerkleTree {
    return new MerkleTree(hashesToWords(leafHashes, 'leafHashes'), leafHashes.length);
  }

  /** A tree over raw leaf data; each leaf is hashed as SHA-256(0x00 || leaf). */
  static fromLeaves(leaves: readonly Uint8Array[]): MerkleTree {
    const words = new Int32Array(leaves.length * 8);
    for (let i = 0; i < leaves.length; i++) prefixedHashWords(LEAF_PREFIX, leaves[i]!, words, i * 8);
    return new MerkleTree(words, leaves.length);
  }

  /** The Merkle Tree Hash of all leaves. */
  root(): Uint8Array {
    if (this.size === 0) return EMPTY_ROOT.slice();
    return wordsToHash(this.#levels[this.#levels.length - 1]!, 0);
  }

  /** The leaf hash at `index`. */
  leafHash(index: number): Uint8Array {
    this.#checkIndex(index);
    return wordsToHash(this.#levels[0]!, index * 8);
  }

  /**
   * The audit path PATH(index, D[n]) of RFC 9162 §2.1.3.1, ordered from the leaf's sibling up to the root's child.
   * At each level the sibling is included when it exists; a node without one is carried up, adding nothing.
   */
  inclusionProof(index: number): Uint8Array[] {
    this.#checkIndex(index);
    const proof: Uint8Array[] = [];
    let node = index;
    let count = this.size;
    for (let level = 0; count > 1; level++) {
      const sibling = node ^ 1;
      if (sibling < count) proof.push(wordsToHash(this.#levels[level]!, sibling * 8));
      node >>>= 1;
      count = (count >>> 1) + (count % 2);
    }
    return proof;
  }

  /**
   * The consistency proof PROOF(m, D[n]) of RFC 9162 §2.1.4.1 that this tree extends its first `m` leaves.
   * Empty when m is 0 or n: those need no proof (the verifier then compares roots directly).
   */
  consistencyProof(m: number): Uint8Array[] {
    if (!Number.isSafeInteger(m) || m < 0 || m > this.size) {
      throw new RangeError(`consistency proof size ${m} is outside 0..${this.size}`);
    }
    if (m === 0 || m === this.size) return [];
    const proof: Uint8Array[] = [];
    this.#subproof(m, 0, this.size, true, proof);
    return proof;
  }

  /**
   * SUBPROOF(m, D[start:start+n], b) of RFC 9162 §2.1.4.1, appending to `proof` in the RFC's order. Recursion depth
   * is at most log2(n), so at most 53.
   */
  #subproof(m: number, start: number, n: number, isWholeOldTree: boolean, proof: Uint8Array[]): void {
    if (m === n) {
      // The old tree's root is already known to the verifier only when this subtree is the whole old tree.
      if (!isWholeOldTree) proof.push(this.#subtreeHash(start, n));
      return;
    }
    const k = largestPowerOfTwoBelow(n);
    if (m <= k) {
      this.#subproof(m, start, k, isWholeOldTree, proof);
      proof.push(this.#subtreeHash(start + k, n - k));
    } else {
      this.#subproof(m - k, start + k, n - k, false, proof);
      proof.push(this.#subtreeHash(start, k));
    }
  }

  /**
   * MTH(D[start:start+n]) for the ranges that proofs ask for: either an aligned power-of-two subtree, or a range
   * ending at the tree's last leaf whose start is aligned to the next power of two at or above n. Both are a
   * single stored node at level ceil(log2(n)).
   */
  #subtreeHash(start: number, n: number): Uint8Array {
    let level = 0;
    while (2 ** level < n) level++;
    const width = 2 ** level;
    if (start % width !== 0 || (n !== width && start + n !== this.size)) {
      throw new Error(`internal: range [${start}, ${start + n}) is not a stored subtree of a ${this.size}-leaf tree`);
    }
    return wordsToHash(this.#levels[level]!, (start / width) * 8);
  }

  #checkIndex(index: number): void {
    if (!Number.isSafeInteger(index) || index < 0 || index >= this.size) {
      throw new RangeError(`leaf index ${index} is outside a ${this.size}-leaf tree`);
    }
  }
}

/** PATH(index, D[n]) of RFC 9162 §2.1.3.1 for the tree over `leafHashes`. Build a `MerkleTree` for many proofs. */
export function inclusionProof(leafHashes: readonly Uint8Array[], index: number): Uint8Array[] {
  return MerkleTree.fromLeafHashes(leafHashes).inclusionProof(index);
}

/** PROOF(m, D[n]) of RFC 9162 §2.1.4.1 for the tree over `leafHashes`. Build a `MerkleTree` for many proofs. */
export function consistencyProof(leafHashes: readonly Uint8Array[], m: number): Uint8Array[] {
  return MerkleTree.fromLeafHashes(leafHashes).consistencyProof(m);
}


/** The largest power of two strictly below n (n >= 2): the split point k of RFC 9162 §2.1.1. */
export function largestPowerOfTwoBelow(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

export function isPowerOfTwo(n: number): boolean {
  let k = 1;
  while (k < n) k *= 2;
  return k === n;
}

export function isOdd(x: number): boolean {
  return x % 2 === 1;
}

/** Right shift by one, by arithmetic: `>>> 1` would truncate sizes above 2^32. */
export function half(x: number): number {
  return Math.floor(x / 2);
}

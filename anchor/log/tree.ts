/**
 * One append-only RFC 9162 Merkle tree over every leaf ever written, kept as the frontier of its perfect subtrees.
 *
 * BYTES HASHED (RFC 9162 §2.1.1, SHA-256, through ../merkle.ts):
 *   leaf hash   SHA-256(0x00 || leaf bytes)
 *   node hash   SHA-256(0x01 || left child hash || right child hash), both children 32 bytes
 *   empty tree  SHA-256 of the empty string
 *   MTH(D[n])   for n >= 2, node hash of MTH(D[0:k]) and MTH(D[k:n]) with k the largest power of two below n
 *
 * NODES. A node (level, index) is the perfect subtree over leaves [index * 2^level, (index + 1) * 2^level): level 0
 * is the leaf hashes, and a node exists once its last leaf is written; from then on its hash never changes. These
 * are the only hashes a store keeps (tlog-tiles and Trillian keep the same ones). A tree of any size n is the
 * perfect subtrees of the binary decomposition of n, largest first (the "frontier" or compact range [0, n)): one
 * per set bit of n, so at most 53 hashes for any size this code handles. Its root is those hashes folded from the
 * right: MTH = node(h0, node(h1, ... node(h_{k-2}, h_{k-1}))). That equals the RFC's recursive split because the
 * largest power of two below n is exactly the first perfect subtree whenever n is not itself a power of two.
 *
 * Appending a leaf to a frontier costs one leaf hash plus one node hash per trailing set bit of the old size, and
 * reports each node it completes, so a store learns every node hash as it comes into being without reading back.
 *
 * Sizes and indices are JavaScript numbers, exact up to 2^53 - 1; bit arithmetic is done with division, never the
 * 32-bit operators. Browser-safe: hashing is @noble/hashes via ../merkle.ts, no Node built-ins.
 */
import { emptyRoot, HASH_BYTES, leafHash, nodeHash } from '../merkle.ts';

/** The perfect subtree over leaves [index * 2^level, (index + 1) * 2^level). */
export interface NodeId {
  readonly level: number;
  readonly index: number;
}

/** A node and its hash, as a store keeps it. */
export interface StoredNode {
  readonly id: NodeId;
  readonly hash: Uint8Array;
}

/** Largest tree size handled: sizes and indices stay exact JavaScript integers. */
export const MAX_TREE_SIZE = Number.MAX_SAFE_INTEGER;

/** The perfect subtrees covering leaves [0, size), largest (leftmost) first: one per set bit of size. */
export function frontierNodes(size: number): NodeId[] {
  checkSize(size, 'tree size');
  return rangeNodes(0, size);
}

/**
 * The perfect subtrees covering leaves [start, end), left to right, for a range that is itself a subtree of some
 * RFC 9162 tree: `start` a multiple of the smallest power of two at or above `end - start`. Those are the ranges
 * whose MTH inclusion and consistency proofs carry (a perfect subtree, or the right edge of a tree), and for them
 * the decomposition is the binary one of `end - start`, largest first. Any other range is refused.
 */
export function rangeNodes(start: number, end: number): NodeId[] {
  checkSize(start, 'range start');
  checkSize(end, 'range end');
  if (end < start) throw new RangeError(`range [${start}, ${end}) ends before it starts`);
  const width = end - start;
  if (width > 0 && start % ceilPowerOfTwo(width) !== 0) {
    throw new RangeError(`range [${start}, ${end}) is not a subtree: its start is not aligned to its width`);
  }
  const nodes: NodeId[] = [];
  let at = start;
  for (let level = bitLength(width) - 1; level >= 0; level--) {
    const span = 2 ** level;
    if (Math.floor(width / span) % 2 === 1) {
      nodes.push({ level, index: at / span });
      at += span;
    }
  }
  return nodes;
}

/** Folds the hashes of consecutive perfect subtrees, largest first, into the MTH of the range they cover. */
export function foldRange(hashes: readonly Uint8Array[]): Uint8Array {
  if (hashes.length === 0) return emptyRoot();
  let root = hashes[hashes.length - 1]!;
  for (let i = hashes.length - 2; i >= 0; i--) root = nodeHash(hashes[i]!, root);
  return root;
}

/** Receives each node that an append completes (level 0 is the leaf hash itself), in the order they complete. */
export type NodeSink = (node: StoredNode) => void;

/**
 * The compact range [0, size) of the log: the hashes of `frontierNodes(size)`, from which the root and every later
 * root follow without the rest of the tree. Immutable: `append` returns a new frontier.
 */
export class Frontier {
  readonly size: number;
  readonly #hashes: readonly Uint8Array[];

  private constructor(size: number, hashes: readonly Uint8Array[]) {
    this.size = size;
    this.#hashes = hashes;
  }

  /** The frontier of the empty tree. */
  static empty(): Frontier {
    return new Frontier(0, []);
  }

  /**
   * A frontier from stored hashes: exactly one 32-byte hash per node of `frontierNodes(size)`, in that order.
   * Throws a RangeError otherwise; it cannot check that the hashes are the log's (compare `root()` with a signed
   * checkpoint for that).
   */
  static fromHashes(size: number, hashes: readonly Uint8Array[]): Frontier {
    checkSize(size, 'tree size');
    const expected = popCount(size);
    if (hashes.length !== expected) {
      throw new RangeError(`a frontier of size ${size} has ${expected} hashes, got ${hashes.length}`);
    }
    hashes.forEach((hash, i) => checkHash(hash, `frontier hash ${i}`));
    return new Frontier(size, hashes.map((hash) => hash.slice()));
  }

  /** The hashes of `frontierNodes(this.size)`, largest subtree first (copies). */
  hashes(): Uint8Array[] {
    return this.#hashes.map((hash) => hash.slice());
  }

  /** The frontier's nodes with their hashes. */
  nodes(): StoredNode[] {
    return frontierNodes(this.size).map((id, i) => ({ id, hash: this.#hashes[i]!.slice() }));
  }

  /** MTH of the tree of this size (RFC 9162 §2.1.1); the empty tree's root for size 0. */
  root(): Uint8Array {
    return foldRange(this.#hashes).slice();
  }

  /** The frontier after appending one leaf given by its leaf hash; `onNode` hears of every node completed. */
  appendLeafHash(hash: Uint8Array, onNode?: NodeSink): Frontier {
    checkHash(hash, 'leaf hash');
    if (this.size >= MAX_TREE_SIZE) throw new RangeError('the tree is full: its size would pass 2^53 - 1');
    const hashes = this.#hashes.slice();
    let carried: Uint8Array = hash.slice();
    let level = 0;
    let index = this.size;
    onNode?.({ id: { level, index }, hash: carried.slice() });
    // Each trailing set bit of the old size is a perfect subtree that the new node completes into one twice as big.
    while (index % 2 === 1) {
      carried = nodeHash(hashes.pop()!, carried);
      level += 1;
      index = (index - 1) / 2;
      onNode?.({ id: { level, index }, hash: carried.slice() });
    }
    hashes.push(carried);
    return new Frontier(this.size + 1, hashes);
  }

  /** The frontier after appending leaf bytes (hashed as SHA-256(0x00 || leaf)). */
  appendLeaf(leaf: Uint8Array, onNode?: NodeSink): Frontier {
    return this.appendLeafHash(leafHash(leaf), onNode);
  }

  /** The frontier after appending every leaf hash in order. */
  appendLeafHashes(hashes: Iterable<Uint8Array>, onNode?: NodeSink): Frontier {
    let frontier: Frontier = this;
    for (const hash of hashes) frontier = frontier.appendLeafHash(hash, onNode);
    return frontier;
  }
}

/** MTH of a sequence of leaf hashes of any length, holding O(log n) hashes at a time (not the whole list). */
export function treeHead(leafHashes: Iterable<Uint8Array>): { size: number; root: Uint8Array } {
  const frontier = Frontier.empty().appendLeafHashes(leafHashes);
  return { size: frontier.size, root: frontier.root() };
}

/** Number of set bits of a non-negative safe integer. */
export function popCount(x: number): number {
  let count = 0;
  for (let rest = x; rest > 0; rest = Math.floor(rest / 2)) count += rest % 2;
  return count;
}

/** Number of bits needed to write x (0 for 0). */
export function bitLength(x: number): number {
  let bits = 0;
  for (let rest = x; rest > 0; rest = Math.floor(rest / 2)) bits += 1;
  return bits;
}

/** Number of trailing zero bits of a positive safe integer. */
export function trailingZeros(x: number): number {
  let zeros = 0;
  for (let rest = x; rest % 2 === 0 && rest > 0; rest /= 2) zeros += 1;
  return zeros;
}

/** The smallest power of two at or above x (1 for 0 and 1). */
function ceilPowerOfTwo(x: number): number {
  let p = 1;
  while (p < x) p *= 2;
  return p;
}

function checkSize(x: number, what: string): void {
  if (!Number.isSafeInteger(x) || x < 0) throw new RangeError(`${what} ${x} is not an integer in 0..2^53-1`);
}

function checkHash(hash: Uint8Array, what: string): void {
  if (!(hash instanceof Uint8Array) || hash.length !== HASH_BYTES) {
    throw new RangeError(`${what} must be ${HASH_BYTES} bytes`);
  }
}

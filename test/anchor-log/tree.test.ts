/**
 * The log's tree: the frontier gives the RFC 9162 root of every size (checked against the RFC 6962 vectors and the
 * batch tree), appends hand the store exactly the perfect subtrees, the store refuses a rewritten node, and the
 * tlog-tiles reader serves the same nodes and proofs as the store it was cut from.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { hexToBytes, leafHash, merkleRoot } from '../../anchor/index.ts';
import {
  appendLeafHashes,
  consistencyProof,
  foldRange,
  Frontier,
  frontierNodes,
  inclusionProof,
  MemoryNodeStore,
  MissingNodeError,
  NodeConflictError,
  rangeNodes,
  readFrontier,
  tileNodeSource,
  tilePath,
  treeHead,
  treeRoot,
  type NodeId,
  type StoredNode,
} from '../../anchor/log/index.ts';

interface Rfc6962Vectors {
  leaves: string[];
  rootsBySize: string[];
}
const vectors = JSON.parse(readFileSync(new URL('../fixtures/anchor/merkle/rfc6962-vectors.json', import.meta.url), 'utf8')) as Rfc6962Vectors;

const leafHashes = (count: number, salt = 0): Uint8Array[] =>
  Array.from({ length: count }, (_, i) => leafHash(new Uint8Array([salt, i & 0xff, (i >>> 8) & 0xff, (i >>> 16) & 0xff])));

describe('the frontier', () => {
  it('gives the RFC 6962 vector root at every size', () => {
    let frontier = Frontier.empty();
    expect(frontier.root()).toEqual(hexToBytes(vectors.rootsBySize[0]!));
    vectors.leaves.forEach((leaf, i) => {
      frontier = frontier.appendLeaf(hexToBytes(leaf));
      expect(frontier.size).toBe(i + 1);
      expect(frontier.root(), `size ${i + 1}`).toEqual(hexToBytes(vectors.rootsBySize[i + 1]!));
    });
  });

  it('gives the batch tree root at every size up to 1100, holding one hash per set bit', () => {
    const hashes = leafHashes(1100);
    let frontier = Frontier.empty();
    for (let n = 1; n <= hashes.length; n++) {
      frontier = frontier.appendLeafHash(hashes[n - 1]!);
      expect(frontier.hashes().length).toBe(frontierNodes(n).length);
      if (n % 7 === 0 || (n & (n - 1)) === 0 || n === hashes.length) expect(frontier.root()).toEqual(merkleRoot(hashes.slice(0, n)));
    }
    expect(treeHead(hashes)).toEqual({ size: 1100, root: merkleRoot(hashes) });
    expect(treeHead([])).toEqual({ size: 0, root: merkleRoot([]) });
  });

  it('is immutable and rebuilds from its hashes', () => {
    const a = Frontier.empty().appendLeafHashes(leafHashes(13));
    const b = a.appendLeafHash(leafHashes(1, 9)[0]!);
    expect(a.size).toBe(13);
    expect(b.size).toBe(14);
    const again = Frontier.fromHashes(13, a.hashes());
    expect(again.root()).toEqual(a.root());
    expect(again.appendLeafHash(leafHashes(1, 9)[0]!).root()).toEqual(b.root());
    expect(() => Frontier.fromHashes(13, a.hashes().slice(1))).toThrow(/has 3 hashes, got 2/);
    expect(() => Frontier.fromHashes(1, [new Uint8Array(31)])).toThrow(RangeError);
    expect(() => Frontier.fromHashes(-1, [])).toThrow(RangeError);
  });

  it('reports each completed perfect subtree once, with its hash', () => {
    const hashes = leafHashes(100);
    const reported: StoredNode[] = [];
    const frontier = Frontier.empty().appendLeafHashes(hashes, (node) => reported.push(node));
    // A tree of n leaves has 2n - popcount(n) perfect subtrees.
    expect(reported.length).toBe(200 - 3);
    for (const { id, hash } of reported) {
      const start = id.index * 2 ** id.level;
      expect(hash, `(${id.level}, ${id.index})`).toEqual(merkleRoot(hashes.slice(start, start + 2 ** id.level)));
    }
    expect(frontier.nodes().map((node) => node.id)).toEqual(frontierNodes(100));
  });
});

describe('ranges', () => {
  it('decompose into perfect subtrees, largest first', () => {
    expect(frontierNodes(0)).toEqual([]);
    expect(frontierNodes(13)).toEqual([
      { level: 3, index: 0 },
      { level: 2, index: 2 },
      { level: 0, index: 12 },
    ]);
    expect(rangeNodes(8, 13)).toEqual([
      { level: 2, index: 2 },
      { level: 0, index: 12 },
    ]);
    expect(frontierNodes(2 ** 52 + 1)).toEqual([
      { level: 52, index: 0 },
      { level: 0, index: 2 ** 52 },
    ]);
    expect(frontierNodes(Number.MAX_SAFE_INTEGER).length).toBe(53);
  });

  it('refuse a range that is no subtree', () => {
    expect(() => rangeNodes(4, 9)).toThrow(/not aligned/);
    expect(() => rangeNodes(3, 2)).toThrow(RangeError);
    expect(() => rangeNodes(0, 2 ** 53)).toThrow(RangeError);
  });

  it('fold to the MTH of what they cover', () => {
    const hashes = leafHashes(13);
    const nodes = frontierNodes(13).map(({ level, index }) => merkleRoot(hashes.slice(index * 2 ** level, (index + 1) * 2 ** level)));
    expect(foldRange(nodes)).toEqual(merkleRoot(hashes));
    expect(foldRange([])).toEqual(merkleRoot([]));
  });
});

describe('the node store', () => {
  it('holds every perfect subtree after appends, and gives back the frontier of any earlier size', async () => {
    const store = new MemoryNodeStore();
    const hashes = leafHashes(77);
    let frontier = Frontier.empty();
    const frontiers = [frontier];
    for (const batch of [hashes.slice(0, 1), hashes.slice(1, 30), hashes.slice(30, 31), hashes.slice(31, 77)]) {
      frontier = await appendLeafHashes(store, frontier, batch);
      frontiers.push(frontier);
    }
    expect(store.nodeCount).toBe(2 * 77 - 4); // 77 has 4 set bits
    for (const earlier of frontiers) {
      const read = await readFrontier(store, earlier.size);
      expect(read.hashes()).toEqual(earlier.hashes());
      expect(await treeRoot(store, earlier.size)).toEqual(earlier.root());
    }
  });

  it('accepts a rewrite of the same hashes and refuses a different one, storing nothing', async () => {
    const store = new MemoryNodeStore();
    const frontier = await appendLeafHashes(store, Frontier.empty(), leafHashes(4));
    await appendLeafHashes(store, Frontier.empty(), leafHashes(4));
    expect(store.nodeCount).toBe(7);
    const forked = appendLeafHashes(store, Frontier.fromHashes(2, (await readFrontier(store, 2)).hashes()), leafHashes(3, 7));
    await expect(forked).rejects.toBeInstanceOf(NodeConflictError);
    expect(store.nodeCount).toBe(7);
    expect(await treeRoot(store, 4)).toEqual(frontier.root());
  });

  it('says which node is missing', async () => {
    const store = new MemoryNodeStore();
    await appendLeafHashes(store, Frontier.empty(), leafHashes(5));
    await expect(inclusionProof(store, 0, 8)).rejects.toBeInstanceOf(MissingNodeError);
    await expect(store.readNodes([{ level: 3, index: 0 }])).rejects.toThrow('node (level 3, index 0) is not stored');
  });
});

describe('tlog-tiles', () => {
  it('writes tile paths as the spec does', () => {
    expect(tilePath(0, 1234067)).toBe('tile/0/x001/x234/067');
    expect(tilePath(1, 0)).toBe('tile/1/000');
    expect(tilePath(0, 273, 112)).toBe('tile/0/273.p/112');
    expect(tilePath(2, 1000, 1)).toBe('tile/2/x001/000.p/1');
    expect(() => tilePath(0, 0, 0)).toThrow(RangeError);
    expect(() => tilePath(64, 0)).toThrow(RangeError);
  });

  it('serve the same nodes and proofs as the store, reading the tiles the spec says exist', async () => {
    // The spec's example: 70,000 leaves are 273 full level-0 tiles and one of width 112, one full level-1 tile and
    // one of width 17, and a level-2 tile of width 1.
    const size = 70_000;
    const store = new MemoryNodeStore();
    const frontier = await appendLeafHashes(store, Frontier.empty(), leafHashes(size));
    const read: string[] = [];
    const tiles = tileNodeSource(
      {
        async readTile(tileLevel, tileIndex, width) {
          read.push(tilePath(tileLevel, tileIndex, width));
          const ids: NodeId[] = Array.from({ length: width }, (_, i) => ({ level: 8 * tileLevel, index: tileIndex * 256 + i }));
          const hashes = await store.readNodes(ids);
          const bytes = new Uint8Array(32 * width);
          hashes.forEach((hash, i) => bytes.set(hash, 32 * i));
          return bytes;
        },
      },
      size,
    );
    expect(await treeRoot(tiles, size)).toEqual(frontier.root());
    // The root needs only the right edge: the partial tiles.
    expect(read.sort()).toEqual(['tile/0/273.p/112', 'tile/1/001.p/17', 'tile/2/000.p/1']);
    for (const index of [0, 255, 256, 65_535, 65_536, 69_887, 69_888, 69_999]) {
      expect(await inclusionProof(tiles, index, size)).toEqual(await inclusionProof(store, index, size));
    }
    for (const m of [1, 256, 257, 65_536, 69_999]) {
      expect(await consistencyProof(tiles, m, size)).toEqual(await consistencyProof(store, m, size));
    }
    const ids: NodeId[] = [{ level: 3, index: 100 }, { level: 9, index: 1 }, { level: 16, index: 0 }, { level: 0, index: 69_999 }];
    expect(await tiles.readNodes(ids)).toEqual(await store.readNodes(ids));
    expect(read).toContain('tile/1/000');
    expect(read).toContain('tile/0/000');
    await expect(tiles.readNodes([{ level: 17, index: 0 }])).rejects.toBeInstanceOf(MissingNodeError);
    // A tile of the wrong length is refused, not hashed.
    const short = tileNodeSource({ readTile: async () => new Uint8Array(31) }, size);
    await expect(short.readNodes([{ level: 0, index: 0 }])).rejects.toThrow(/expected 8192/);
  });
});

/**
 * Where the log's node hashes live: a narrow interface that the store will implement, an in-memory one for tests
 * and tools, and a reader over C2SP tlog-tiles.
 *
 * Only perfect subtrees are ever stored (see ./tree.ts: node (level, index) covers leaves [index * 2^level,
 * (index + 1) * 2^level)). Every hash a proof needs is the MTH of a range made of such nodes, so proofs and roots for
 * any earlier size come from a NodeSource without anything else.
 *
 * Browser-safe: no Node built-ins.
 */
import { HASH_BYTES, nodeHash } from '../merkle.ts';
import { Frontier, frontierNodes, type NodeId, type StoredNode } from './tree.ts';

/**
 * Reads node hashes.
 *
 * Contract: `readNodes(ids)` resolves to one 32-byte hash per id, in the order asked, or rejects (with a
 * `MissingNodeError` when a node is not stored) and then resolves to nothing: never a partial list, never a
 * placeholder. Ids may repeat; each is answered. The hashes returned are the caller's to keep (copies, or arrays the
 * source never writes again). A node, once readable, always reads the same hash.
 */
export interface NodeSource {
  readNodes(ids: readonly NodeId[]): Promise<Uint8Array[]>;
}

/**
 * A NodeSource that is also written to, by the one appender of the log.
 *
 * Contract: `writeNodes(nodes)` stores all of them or none (one transaction). Writing a node that is already stored
 * with the same hash changes nothing, so a retried append that wrote some of its nodes before failing may simply
 * write them all again. Writing a node that is already stored with a different hash is refused with a
 * `NodeConflictError` and stores nothing: the log's history cannot be rewritten, and that refusal is what catches
 * a second appender or a replay from a wrong frontier. Nodes need not arrive in any order.
 */
export interface NodeStore extends NodeSource {
  writeNodes(nodes: readonly StoredNode[]): Promise<void>;
}

/** A node the source does not hold (not written yet, or beyond the tree it serves). */
export class MissingNodeError extends Error {
  readonly id: NodeId;
  constructor(id: NodeId) {
    super(`node (level ${id.level}, index ${id.index}) is not stored`);
    this.name = 'MissingNodeError';
    this.id = id;
  }
}

/** A write that would change a stored node's hash. */
export class NodeConflictError extends Error {
  readonly id: NodeId;
  constructor(id: NodeId) {
    super(`node (level ${id.level}, index ${id.index}) is already stored with a different hash`);
    this.name = 'NodeConflictError';
    this.id = id;
  }
}

/** Every node in a Map: for tests, tools and small logs. About 260 bytes per node on Node 22, two nodes per leaf. */
export class MemoryNodeStore implements NodeStore {
  readonly #nodes = new Map<string, Uint8Array>();

  /** Number of nodes held. */
  get nodeCount(): number {
    return this.#nodes.size;
  }

  async readNodes(ids: readonly NodeId[]): Promise<Uint8Array[]> {
    return ids.map((id) => {
      const hash = this.#nodes.get(nodeKey(id));
      if (hash === undefined) throw new MissingNodeError(id);
      return hash.slice();
    });
  }

  async writeNodes(nodes: readonly StoredNode[]): Promise<void> {
    // Check everything first, so that a refused write stores nothing.
    for (const { id, hash } of nodes) {
      if (hash.length !== HASH_BYTES) throw new RangeError(`node (level ${id.level}, index ${id.index}) hash is not ${HASH_BYTES} bytes`);
      const stored = this.#nodes.get(nodeKey(id));
      if (stored !== undefined && !bytesEqual(stored, hash)) throw new NodeConflictError(id);
    }
    for (const { id, hash } of nodes) this.#nodes.set(nodeKey(id), hash.slice());
  }
}

/**
 * Appends leaf hashes to the log held in `store`, whose current frontier is `frontier`, writing every node they
 * complete in one `writeNodes` call; returns the new frontier. If the write fails, the store is unchanged and the
 * old frontier is still the log's.
 */
export async function appendLeafHashes(store: NodeStore, frontier: Frontier, leafHashes: Iterable<Uint8Array>): Promise<Frontier> {
  const completed: StoredNode[] = [];
  const next = frontier.appendLeafHashes(leafHashes, (node) => completed.push(node));
  await store.writeNodes(completed);
  return next;
}

/** Reads the frontier of an earlier (or the current) size back from the store: popcount(size) node reads. */
export async function readFrontier(source: NodeSource, size: number): Promise<Frontier> {
  return Frontier.fromHashes(size, await source.readNodes(frontierNodes(size)));
}

/** Hashes per full tile (C2SP tlog-tiles): a tile is a subtree of height 8. */
export const TILE_WIDTH = 256;
/** Tree levels per tile level. */
export const TILE_HEIGHT = 8;

/**
 * Reads C2SP tlog-tiles. `readTile(tileLevel, tileIndex, width)` resolves to the `width` * 32 bytes of that tile:
 * width 256 for a full tile, 1..255 for the partial tile a tree of the served size has at that place. Tile level T
 * holds the nodes of tree level 8T; tile n of level T holds nodes n*256 .. n*256+width-1 of that tree level.
 */
export interface TileReader {
  readTile(tileLevel: number, tileIndex: number, width: number): Promise<Uint8Array>;
}

/**
 * A NodeSource over the tiles of a tree of `treeSize` leaves. A node at a tree level between two tile levels is not
 * in any tile: it is recomputed from the 2^(level mod 8) hashes below it in its tile, as tlog-tiles intends. Each
 * tile is read once per `readNodes` call, however many nodes come from it.
 */
export function tileNodeSource(tiles: TileReader, treeSize: number): NodeSource {
  return {
    async readNodes(ids: readonly NodeId[]): Promise<Uint8Array[]> {
      const tileReads = new Map<string, Promise<Uint8Array>>();
      const readTileOnce = (tileLevel: number, tileIndex: number, width: number): Promise<Uint8Array> => {
        const key = `${tileLevel}/${tileIndex}/${width}`;
        let read = tileReads.get(key);
        if (read === undefined) {
          read = tiles.readTile(tileLevel, tileIndex, width).then((bytes) => {
            if (bytes.length !== width * HASH_BYTES) {
              throw new RangeError(`tile ${tilePath(tileLevel, tileIndex, width)} is ${bytes.length} bytes, expected ${width * HASH_BYTES}`);
            }
            return bytes;
          });
          tileReads.set(key, read);
        }
        return read;
      };
      return Promise.all(
        ids.map(async (id) => {
          if ((id.index + 1) * 2 ** id.level > treeSize) throw new MissingNodeError(id);
          const tileLevel = Math.floor(id.level / TILE_HEIGHT);
          const below = 2 ** (id.level - tileLevel * TILE_HEIGHT);
          const first = id.index * below;
          const tileIndex = Math.floor(first / TILE_WIDTH);
          const nodesAtTileLevel = Math.floor(treeSize / TILE_WIDTH ** tileLevel);
          const width = Math.min(TILE_WIDTH, nodesAtTileLevel - tileIndex * TILE_WIDTH);
          const tile = await readTileOnce(tileLevel, tileIndex, width);
          const offset = first - tileIndex * TILE_WIDTH;
          return perfectRoot(tile, offset, below);
        }),
      );
    },
  };
}

/**
 * The tlog-tiles path of a tile, without the prefix: `tile/<L>/<N>[.p/<W>]`, N in 3-digit groups with all but the
 * last prefixed by `x` (index 1234067 is `x001/x234/067`). Width 256 (or omitted) is a full tile.
 */
export function tilePath(tileLevel: number, tileIndex: number, width = TILE_WIDTH): string {
  if (!Number.isInteger(tileLevel) || tileLevel < 0 || tileLevel > 63) throw new RangeError(`tile level ${tileLevel} is outside 0..63`);
  if (!Number.isSafeInteger(tileIndex) || tileIndex < 0) throw new RangeError(`tile index ${tileIndex} is not a safe integer >= 0`);
  if (!Number.isInteger(width) || width < 1 || width > TILE_WIDTH) throw new RangeError(`tile width ${width} is outside 1..256`);
  let digits = String(tileIndex);
  digits = digits.padStart(Math.ceil(digits.length / 3) * 3, '0');
  const groups: string[] = [];
  for (let i = 0; i < digits.length; i += 3) groups.push(digits.slice(i, i + 3));
  const index = groups.map((group, i) => (i < groups.length - 1 ? `x${group}` : group)).join('/');
  return `tile/${tileLevel}/${index}${width === TILE_WIDTH ? '' : `.p/${width}`}`;
}

/** MTH of `count` (a power of two) consecutive hashes of `tile` starting at hash `offset`. */
function perfectRoot(tile: Uint8Array, offset: number, count: number): Uint8Array {
  let level: Uint8Array[] = [];
  for (let i = 0; i < count; i++) level.push(tile.slice((offset + i) * HASH_BYTES, (offset + i + 1) * HASH_BYTES));
  while (level.length > 1) {
    const above: Uint8Array[] = [];
    for (let i = 0; i < level.length; i += 2) above.push(nodeHash(level[i]!, level[i + 1]!));
    level = above;
  }
  return level[0]!;
}

function nodeKey(id: NodeId): string {
  return `${id.level}/${id.index}`;
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

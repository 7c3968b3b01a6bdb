/**
 * The one append-only log in PostgreSQL: the node hashes (anchor/log NodeStore), signed checkpoints, witness
 * cosignatures, and the reads the proof, tile and consistency routes need.
 *
 * Contract:
 * - `closeCheckpoint` is the log's only appender. Under the ledger's advisory lock, in one transaction, it appends to
 *   the log every leaf numbered but not yet in it (leaves batched before the one-log migration, in leaf_index order),
 *   then unnumbered leaves in insertion order (numbering them), writes the nodes they complete, and records the
 *   checkpoint the caller signs. Leaf i of the log is always the ledger_leaf with leaf_index i; numbering never has
 *   gaps or repeats, and a node once written never changes (log_node's primary key refuses a second one).
 * - Checkpoint numbers continue ledger_batch's, so ledger_leaf.batch_number and ledger_anchor.batch_number name a
 *   batch (before the migration) or a checkpoint (after) by one number.
 */
import type pg from 'pg';
import { leafBytes, type LeafPreimage } from '../anchor/index.ts';
import { appendLeafHashes, Frontier, readFrontier, type NodeId, type NodeStore, type StoredNode } from '../anchor/log/index.ts';
import { MissingNodeError } from '../anchor/log/index.ts';
import { withTransaction, type Queryable } from './db.ts';

/** A Postgres NodeSource/NodeStore over ledger_leaf (level 0) and log_node (above). */
export function nodeStore(db: Queryable): NodeStore {
  return {
    async readNodes(ids: readonly NodeId[]): Promise<Uint8Array[]> {
      if (ids.length === 0) return [];
      const leaves = ids.filter((id) => id.level === 0).map((id) => id.index);
      const inner = ids.filter((id) => id.level > 0);
      const found = new Map<string, Uint8Array>();
      if (leaves.length > 0) {
        const result = await db.query<{ leaf_index: string; leaf_hash: Buffer }>({
          name: 'anchorline_log_read_leaves',
          text: 'SELECT leaf_index, leaf_hash FROM ledger_leaf WHERE leaf_index = ANY($1::bigint[])',
          values: [leaves],
        });
        for (const row of result.rows) found.set(`0/${row.leaf_index}`, new Uint8Array(row.leaf_hash));
      }
      if (inner.length > 0) {
        const result = await db.query<{ level: number; idx: string; hash: Buffer }>({
          name: 'anchorline_log_read_nodes',
          text: `SELECT n.level, n.idx, n.hash FROM log_node n
                   JOIN unnest($1::smallint[], $2::bigint[]) AS w(level, idx) ON n.level = w.level AND n.idx = w.idx`,
          values: [inner.map((id) => id.level), inner.map((id) => id.index)],
        });
        for (const row of result.rows) found.set(`${row.level}/${row.idx}`, new Uint8Array(row.hash));
      }
      return ids.map((id) => {
        const hash = found.get(`${id.level}/${id.index}`);
        if (hash === undefined) throw new MissingNodeError(id);
        return hash.slice();
      });
    },
    async writeNodes(nodes: readonly StoredNode[]): Promise<void> {
      // Level 0 is ledger_leaf's own leaf_hash, numbered by the caller in the same transaction.
      const inner = nodes.filter((node) => node.id.level > 0);
      if (inner.length === 0) return;
      await db.query({
        name: 'anchorline_log_write_nodes',
        text: 'INSERT INTO log_node (level, idx, hash) SELECT * FROM unnest($1::smallint[], $2::bigint[], $3::bytea[])',
        values: [inner.map((n) => n.id.level), inner.map((n) => n.id.index), inner.map((n) => Buffer.from(n.hash))],
      });
    },
  };
}

export interface StoredCheckpoint {
  number: number;
  treeSize: number;
  rootHash: Uint8Array;
  text: string;
  /** The log's signature line, newline included. */
  signature: string;
  checkpointHash: string;
  logKey: string;
  createdAt: Date;
}

/** What the signer is given to sign: the next checkpoint's size and root, and what links it to what came before. */
export interface PendingCheckpoint {
  number: number;
  size: number;
  rootHash: Uint8Array;
  /** Text of the previous checkpoint; undefined for the log's first. */
  previousText: string | undefined;
  /** Header hash of the last anchorline-proof/1 batch, for the first checkpoint of a log that began as batches. */
  legacyHeaderHash: string | undefined;
}

export interface SignedCheckpoint {
  text: string;
  signature: string;
  checkpointHash: string;
  logKey: string;
}

/** Closes a checkpoint over up to `maxLeaves` leaves not yet in the log; undefined when locked out or none wait. */
export async function closeCheckpoint(
  pool: pg.Pool,
  maxLeaves: number,
  sign: (pending: PendingCheckpoint) => SignedCheckpoint,
): Promise<{ checkpoint: StoredCheckpoint; appended: number } | undefined> {
  return withTransaction(pool, async (client) => {
    const locked = await client.query<{ ok: boolean }>(`SELECT pg_try_advisory_xact_lock(hashtext('anchorline-ledger-close:' || current_schema())) AS ok`);
    if (!locked.rows[0]?.ok) return undefined;
    const latest = await latestCheckpoint(client);
    const size = latest?.treeSize ?? 0;
    // Leaves numbered as batches before the log existed, not yet appended.
    const numbered = await client.query<{ leaf_index: string; leaf_hash: Buffer }>(
      'SELECT leaf_index, leaf_hash FROM ledger_leaf WHERE leaf_index >= $1 ORDER BY leaf_index LIMIT $2',
      [size, maxLeaves],
    );
    numbered.rows.forEach((row, i) => {
      if (Number(row.leaf_index) !== size + i) throw new Error(`ledger_leaf numbering has a gap at leaf ${size + i}`);
    });
    const fresh =
      numbered.rows.length < maxLeaves
        ? await client.query<{ id: string; leaf_hash: Buffer }>('SELECT id, leaf_hash FROM ledger_leaf WHERE batch_number IS NULL ORDER BY id LIMIT $1', [
            maxLeaves - numbered.rows.length,
          ])
        : { rows: [] };
    const count = numbered.rows.length + fresh.rows.length;
    if (count === 0) return undefined;
    const store = nodeStore(client);
    const frontier = size === 0 ? Frontier.empty() : await readFrontier(store, size);
    const hashes = [...numbered.rows.map((r) => new Uint8Array(r.leaf_hash)), ...fresh.rows.map((r) => new Uint8Array(r.leaf_hash))];
    // Number the fresh leaves first: their level-0 nodes are their leaf_hash at that leaf_index.
    let number = latest ? latest.number + 1 : 0;
    let legacyHeaderHash: string | undefined;
    if (!latest) {
      const batch = await client.query<{ batch_number: string; header_hash: string }>('SELECT batch_number, header_hash FROM ledger_batch ORDER BY batch_number DESC LIMIT 1');
      number = batch.rows[0] ? Number(batch.rows[0].batch_number) + 1 : 1;
      legacyHeaderHash = batch.rows[0]?.header_hash;
    }
    if (fresh.rows.length > 0) {
      const first = size + numbered.rows.length;
      await client.query(
        `UPDATE ledger_leaf l SET batch_number = $1, leaf_index = x.idx
           FROM unnest($2::bigint[], $3::bigint[]) AS x(id, idx) WHERE l.id = x.id`,
        [number, fresh.rows.map((r) => r.id), fresh.rows.map((_, i) => first + i)],
      );
    }
    const next = await appendLeafHashes(store, frontier, hashes);
    const pending: PendingCheckpoint = { number, size: next.size, rootHash: next.root(), previousText: latest?.text, legacyHeaderHash };
    const signed = sign(pending);
    const inserted = await client.query<CheckpointRow>(
      `INSERT INTO log_checkpoint (number, tree_size, root_hash, text, signature, checkpoint_hash, log_key)
       VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING ${CHECKPOINT_COLUMNS}`,
      [number, next.size, Buffer.from(pending.rootHash), signed.text, signed.signature, signed.checkpointHash, signed.logKey],
    );
    return { checkpoint: fromRow(inserted.rows[0]!), appended: count };
  });
}

const CHECKPOINT_COLUMNS = 'number, tree_size, root_hash, text, signature, checkpoint_hash, log_key, created_at';

/** A log_checkpoint row as the driver returns it (bigints as text). */
export interface CheckpointRow {
  number: string;
  tree_size: string;
  root_hash: Buffer;
  text: string;
  signature: string;
  checkpoint_hash: string;
  log_key: string;
  created_at: Date;
}

function fromRow(row: CheckpointRow): StoredCheckpoint {
  return {
    number: Number(row.number),
    treeSize: Number(row.tree_size),
    rootHash: new Uint8Array(row.root_hash),
    text: row.text,
    signature: row.signature,
    checkpointHash: row.checkpoint_hash,
    logKey: row.log_key,
    createdAt: row.created_at,
  };
}

export async function latestCheckpoint(db: Queryable): Promise<StoredCheckpoint | undefined> {
  const result = await db.query<CheckpointRow>(`SELECT ${CHECKPOINT_COLUMNS} FROM log_checkpoint ORDER BY number DESC LIMIT 1`);
  return result.rows[0] ? fromRow(result.rows[0]) : undefined;
}

export async function checkpointOfSize(db: Queryable, treeSize: number): Promise<StoredCheckpoint | undefined> {
  const result = await db.query<CheckpointRow>(`SELECT ${CHECKPOINT_COLUMNS} FROM log_checkpoint WHERE tree_size = $1`, [treeSize]);
  return result.rows[0] ? fromRow(result.rows[0]) : undefined;
}

export async function checkpointByNumber(db: Queryable, number: number): Promise<StoredCheckpoint | undefined> {
  const result = await db.query<CheckpointRow>(`SELECT ${CHECKPOINT_COLUMNS} FROM log_checkpoint WHERE number = $1`, [number]);
  return result.rows[0] ? fromRow(result.rows[0]) : undefined;
}

/** Checkpoints in number order, from `fromNumber` on, at most `limit` (for the audit and monitors). */
export async function checkpointsFrom(db: Queryable, fromNumber: number, limit: number): Promise<StoredCheckpoint[]> {
  const result = await db.query<CheckpointRow>(`SELECT ${CHECKPOINT_COLUMNS} FROM log_checkpoint WHERE number >= $1 ORDER BY number LIMIT $2`, [fromNumber, limit]);
  return result.rows.map(fromRow);
}

/**
 * The checkpoint a proof of leaf `leafIndex` is made against when none is asked for: the newest one covering it
 * with at least `minCosignatures` cosignatures, else the newest covering it.
 */
export async function checkpointForProof(db: Queryable, leafIndex: number, minCosignatures: number): Promise<StoredCheckpoint | undefined> {
  if (minCosignatures > 0) {
    // The newest cosigned checkpoint: if it does not hold the leaf, no older one does. One backward index scan of
    // log_cosignature's primary key, however many checkpoints there are.
    const cosigned = await db.query<CheckpointRow>(
      `SELECT ${CHECKPOINT_COLUMNS} FROM log_checkpoint
        WHERE tree_size = (SELECT tree_size FROM log_cosignature GROUP BY tree_size HAVING count(*) >= $2 ORDER BY tree_size DESC LIMIT 1)
          AND tree_size > $1`,
      [leafIndex, minCosignatures],
    );
    if (cosigned.rows[0]) return fromRow(cosigned.rows[0]);
  }
  const latest = await latestCheckpoint(db);
  return latest && latest.treeSize > leafIndex ? latest : undefined;
}

/** The newest checkpoint with a confirmed chain anchor and its signed claim, covering leaf `leafIndex`. */
export async function anchoredCheckpointFor(db: Queryable, leafIndex: number): Promise<{ checkpoint: StoredCheckpoint; claim: string } | undefined> {
  const result = await db.query<CheckpointRow & { claim: string }>(
    `SELECT ${CHECKPOINT_COLUMNS.split(', ').map((c) => `c.${c}`).join(', ')}, a.claim FROM log_checkpoint c
       JOIN ledger_anchor a ON a.batch_number = c.number AND a.state = 'confirmed' AND a.claim IS NOT NULL
      WHERE c.tree_size > $1 ORDER BY c.number DESC LIMIT 1`,
    [leafIndex],
  );
  const row = result.rows[0];
  return row ? { checkpoint: fromRow(row), claim: row.claim } : undefined;
}

/** The signed claim of checkpoint `number`'s confirmed chain anchor, if it has one. */
export async function anchorClaimOf(db: Queryable, number: number): Promise<string | undefined> {
  const result = await db.query<{ claim: string }>(
    `SELECT claim FROM ledger_anchor WHERE batch_number = $1 AND state = 'confirmed' AND claim IS NOT NULL LIMIT 1`,
    [number],
  );
  return result.rows[0]?.claim;
}

/** The signed note of a checkpoint: its text, a blank line, the log's signature, then stored cosignatures. */
export async function checkpointNote(db: Queryable, checkpoint: StoredCheckpoint): Promise<string> {
  const cosignatures = await db.query<{ line: string }>('SELECT line FROM log_cosignature WHERE tree_size = $1 ORDER BY witness', [checkpoint.treeSize]);
  return `${checkpoint.text}\n${checkpoint.signature}${cosignatures.rows.map((r) => r.line).join('')}`;
}

/** Stores a verified cosignature line; a second one from the same witness for the same checkpoint replaces nothing. */
export async function addCosignature(db: Queryable, treeSize: number, witness: string, line: string, signedAt: number): Promise<boolean> {
  const result = await db.query(
    'INSERT INTO log_cosignature (tree_size, witness, line, signed_at) VALUES ($1, $2, $3, $4) ON CONFLICT (tree_size, witness) DO NOTHING',
    [treeSize, witness, line, signedAt],
  );
  return (result.rowCount ?? 0) > 0;
}

/** Hashes of tile `tileIndex` at tile level `tileLevel`, `width` of them, from the stored nodes (C2SP tlog-tiles). */
export async function readTile(db: Queryable, tileLevel: number, tileIndex: number, width: number): Promise<Uint8Array> {
  const level = tileLevel * 8;
  const first = tileIndex * 256;
  const result =
    level === 0
      ? await db.query<{ hash: Buffer }>('SELECT leaf_hash AS hash FROM ledger_leaf WHERE leaf_index >= $1 AND leaf_index < $2 ORDER BY leaf_index', [first, first + width])
      : await db.query<{ hash: Buffer }>('SELECT hash FROM log_node WHERE level = $1 AND idx >= $2 AND idx < $3 ORDER BY idx', [level, first, first + width]);
  if (result.rows.length !== width) throw new MissingNodeError({ level, index: first + result.rows.length });
  return Buffer.concat(result.rows.map((r) => r.hash));
}

/** The leaf bytes (RFC 8785 JCS of each preimage) of leaves [first, first + count), in order. */
export async function readEntries(db: Queryable, first: number, count: number): Promise<Uint8Array[]> {
  const result = await db.query<{ preimage: LeafPreimage }>('SELECT preimage FROM ledger_leaf WHERE leaf_index >= $1 AND leaf_index < $2 ORDER BY leaf_index', [first, first + count]);
  if (result.rows.length !== count) throw new MissingNodeError({ level: 0, index: first + result.rows.length });
  return result.rows.map((r) => leafBytes(r.preimage));
}

/**
 * The ledger audit: re-hashes everything the provenance ledger commits to, straight from PostgreSQL, and reports
 * every mismatch. Where a proof bundle lets an auditor check one record offline, this checks the whole store at once:
 * every leaf against the version, raw message and mapping configuration it names, every stored version for a leaf,
 * every batch header written before the one log against its leaves and its predecessor, and the one log itself:
 * recomputed from its leaves and compared with every stored node, checkpoint and cosignature.
 *
 * Checks (names are stable; each counts what it examined and reports each mismatch as a finding):
 *   leaf-hash         per leaf: SHA-256(0x00 || JCS(preimage)) equals leaf_hash.
 *   resource          per leaf: the preimage names the leaf row's (type, id, version); that version is stored in
 *                     fhir_resource_history, names itself by resourceType, id and meta.versionId, and
 *                     SHA-256(JCS(content)) equals preimage.resourceSha256; and per current resource
 *                     (fhir_current): the version it points at is stored, and is the resource's latest.
 *   raw-message       per inbox message, whatever became of it (accepted, rejected or conflict; queued, done or
 *                     failed), whether or not a leaf names it: SHA-256(raw) equals raw_sha256, and the stored length
 *                     equals raw_size (or, where raw_truncated marks a kept prefix, is below it); and per leaf: its
 *                     version names a source message whose raw_sha256 equals preimage.rawSha256 (or, only for an
 *                     AuditEvent of a read, names none and its preimage says NO_SOURCE_SHA256 for both raw message
 *                     and mapping).
 *   mapping-config    per digest that is a mapping_config key or that leaves name: a row is stored under it and its
 *                     content re-hashes to it (a version saved for a deployment or rollback that no leaf names yet is
 *                     re-hashed too).
 *   blob              per blob that inbox messages name (DICOM instances), when a blob store is given: it is in the
 *                     store, its size is the raw_size of the messages naming it (plus the sealing's 29 bytes for a
 *                     file sealed under its message's key, store/instance-blobs.ts), and, for every blob or a random
 *                     sample of them (`blobRehash`), its bytes hash to its name; a sealed one, read with the keys,
 *                     also opens under its message's key to bytes that hash to the row's blob_sha256.
 *   missing-leaf      per stored version (history row): a leaf exists for it.
 *   header-hash       per batch: SHA-256(JCS(header)) equals header_hash.
 *   header-signature  per batch: the Ed25519 signature verifies over JCS(header) under public_key (and public_key is
 *                     the expected engine key, when one is given).
 *   header-chain      per batch: batch numbers run 1, 2, 3, ... and match the header's; previousHeaderHash is the
 *                     previous batch's header_hash (64 '0's for batch 1); firstLeafIndex follows on from the previous
 *                     batch's firstLeafIndex + leafCount (0 for batch 1).
 *   batch-leaves      per batch: the leaves numbered into it, in leaf-index order, are contiguous, start at
 *                     firstLeafIndex, number leafCount and have the RFC 9162 root header.root; a leaf numbered into
 *                     a batch out of leaf-index order, or with only one of batch_number and leaf_index set, is a
 *                     finding.
 *   log-leaves        per numbered leaf (one with a leaf_index), in leaf_index order: leaf indices run 0, 1, 2, ...
 *                     without a gap; a leaf the log holds (leaf_index below the latest checkpoint's tree_size) is
 *                     numbered into a batch, or into the checkpoint whose leaves it is among (leaf_index from the
 *                     previous checkpoint's tree_size to below its own); a leaf beyond the latest checkpoint is one
 *                     batched before the log and not appended yet; a leaf not numbered into a batch with only one of
 *                     batch_number and leaf_index set is a finding. A gap, or a leaf_hash that is not 32 bytes,
 *                     stops the recomputation there: later roots and nodes are not compared (the gap is the finding).
 *   log-node          per node of the log (log_node, level 1 and up): the node the recomputed log completes has the
 *                     stored hash, every node completed up to the latest checkpoint is stored, and none is stored
 *                     that covers leaves beyond it.
 *   log-root          per checkpoint: the RFC 9162 root of the log's first tree_size leaves, recomputed, equals
 *                     root_hash, and the signed text states that tree size and root.
 *   checkpoint-hash   per checkpoint: checkpoint_hash is the hex SHA-256 of its text.
 *   checkpoint-signature  per checkpoint: the text and signature line open as a signed checkpoint under log_key
 *                     (anchorline's checkpoint grammar, origin the key's name); every checkpoint has the first one's
 *                     log_key and origin; and the key is the expected engine key, when one is given.
 *   checkpoint-chain  per checkpoint, in tree-size order: numbers rise by one from the last batch's (1 with no
 *                     batch), so sizes rise strictly with number; the previous line names the preceding checkpoint's
 *                     checkpoint_hash (the first has none); the first checkpoint's legacy line names the last batch's
 *                     header_hash when batches exist, and no other checkpoint has one.
 *   cosignature       per stored cosignature by a configured witness key: the line verifies (cosignature/v1) over
 *                     the text of the checkpoint of its tree_size, names the row's witness and is stamped signed_at.
 *   cosignature-witness  per stored cosignature: its key is one of the configured witness keys (`witnesses`).
 *
 * Erased records (store/erasure.ts) are counted (`erased`), not reported: a resource version sealed under a destroyed
 * patient key, or whose leaf an erasure marked (preimage gone, leaf hash kept), a raw message whose key was under
 * such a key (moved there by the worker, by a FHIR REST write, or by the erasure's scan of messages under the master
 * key: refused and failed ones alike), and a blob every message naming which is such a message (its file may be gone). Their contents cannot
 * be re-hashed; their leaf hashes still enter the log's recomputation, so the log-* and checkpoint-* checks hold for
 * them as for every leaf. A leaf marked erased whose version still opens is a `resource` mismatch. Sealed versions,
 * messages and blobs are opened with the pool's keyring (store/keys.ts).
 *
 * Leaves the log does not hold yet are counted (`unbatchedLeaves`), not reported: unnumbered leaves, and leaves
 * batched before the log that it has not appended yet; the anchor worker appends them shortly.
 *
 * Findings carry ids, hashes, counts and field names only, never resource or message content. Every table is read in
 * pages by key (keyset pagination, `pageRows` rows a query; raw messages and mapping configurations fetched in groups
 * of at most `rawPageBytes`; blobs hashed as streams), batch roots are folded leaf by leaf, and the log is recomputed
 * in a Frontier (one hash per level) with the stored nodes that each page of leaves completes read beside it, so
 * memory does not grow with the store. All reads run in one REPEATABLE READ, READ ONLY
 * transaction: the audit sees one snapshot, so leaves, batches and checkpoints written while it runs neither appear
 * half-written nor count as mismatches. (The snapshot holds back vacuum for as long as the audit runs.)
 */
import { createHash, randomInt } from 'node:crypto';
import type pg from 'pg';
import {
  base64ToBytes,
  bytesToHex,
  checkpointHash,
  emptyRoot,
  GENESIS_PREVIOUS_HEADER_HASH,
  HASH_BYTES,
  headerHash,
  nodeHash,
  openLogCheckpoint,
  provenanceLeafHash,
  resourceSha256,
  verifyHeaderSignature,
  witnessVerifiers,
  type BatchHeader,
  type LeafPreimage,
} from '../anchor/index.ts';
import {
  cosignatureTimestamp,
  ed25519NoteVerifierFromKey,
  Frontier,
  parseCheckpoint,
  parseSignatureLine,
  parseVerifierKey,
  type NoteVerifier,
  type StoredNode,
} from '../anchor/log/index.ts';
import { AnchorlineError } from '../errors/index.ts';
import { byteGroups, LOSSLESS_JSON_TYPES } from './db.ts';
import { blindIndexOf, type BlindIndex } from './blind-index.ts';
import { keyringOf, openMessageKeys, openRawRows, openVersionRows, RAW_KEY_COLUMNS, SEAL_OVERHEAD_BYTES, type MessageKeyRow, type RawRow, type VersionRow } from './keys.ts';
import { mappingConfigSha256, mappingConfigsByDigest } from './mapping-configs.ts';
import { AUDIT_EVENT, NO_SOURCE_SHA256 } from './audit-trail.ts';
import type { BlobStore } from './blobs.ts';
import { openedInstanceSha256 } from './instance-blobs.ts';
import type { CheckpointRow as LogCheckpointRow } from './log.ts';

/** Every check the audit runs, in the order it reports them. */
export const AUDIT_CHECK_NAMES = [
  'leaf-hash',
  'resource',
  'raw-message',
  'mapping-config',
  'blob',
  'missing-leaf',
  'header-hash',
  'header-signature',
  'header-chain',
  'batch-leaves',
  'log-leaves',
  'log-node',
  'log-root',
  'checkpoint-hash',
  'checkpoint-signature',
  'checkpoint-chain',
  'cosignature',
  'cosignature-witness',
] as const;

export type AuditCheckName = (typeof AUDIT_CHECK_NAMES)[number];

export interface AuditFinding {
  check: AuditCheckName;
  /**
   * What does not match, by key: `<type>/<id>/_history/<version>` (a resource version and its leaf),
   * `inbox_message/<id>`, `mapping_config/<sha256>`, `blob/<sha256>`, `batch/<number>`, `ledger_leaf/<id>`,
   * `leaf/<leaf_index>` (a place in the log), `log_node/<level>/<idx>`, `checkpoint/<number>` or
   * `cosignature/<tree_size>/<witness>`.
   */
  ref: string;
  /** What differs: hashes, counts, indices and field names only. */
  detail: string;
}

export interface AuditReport {
  /** True when no check found a mismatch. */
  ok: boolean;
  /**
   * How many items each check examined (leaves, inbox messages, mapping digests, blobs, stored versions, batches,
   * numbered leaves, log nodes, checkpoints, cosignatures).
   */
  checked: Record<AuditCheckName, number>;
  /** How many mismatches each check found, including those not listed in `findings`. */
  mismatches: Record<AuditCheckName, number>;
  /** The findings, in the order found, at most `maxFindings`. */
  findings: AuditFinding[];
  /** Findings counted in `mismatches` but left out of `findings` by `maxFindings`. */
  findingsOmitted: number;
  /**
   * Leaves the log does not hold yet: not numbered, or batched before the log and not appended to it yet. Not
   * mismatches: the anchor worker appends them at its next checkpoint.
   */
  unbatchedLeaves: number;
  /** Blobs whose bytes were read and re-hashed (all of them, or the sample); 0 when no blob store was given. */
  blobsRehashed: number;
  /** False when no blob store was given, so the blob check did not run. */
  blobsAudited: boolean;
  /**
   * Records erased by destroying their patient's key: resource versions, raw messages, and blob store files all of
   * whose messages are erased (DICOM instances). Not mismatches.
   */
  erased: { versions: number; messages: number; blobs: number };
}

export interface AuditOptions {
  /** Rows read per query. Default 1000. */
  pageRows?: number;
  /** Raw message (and mapping configuration) bytes read per query, at most (a larger single one is read alone). Default 32 MiB. */
  rawPageBytes?: number;
  /** Findings listed at most; further ones are only counted. Default 1000. */
  maxFindings?: number;
  /**
   * Hex Ed25519 public key that must have signed every batch header and checkpoint (the engine's published key):
   * batches' public_key and the key in checkpoints' log_key must be it. When absent, each header and checkpoint is
   * verified under the key stored beside it, which shows integrity but not whose key it was.
   */
  publicKey?: string;
  /**
   * cosignature/v1 verifier keys (<name>+<key id>+<base64>) of the witnesses whose cosignatures the log accepts:
   * config anchor.witnesses. A stored cosignature by any other key is a cosignature-witness finding. Default none.
   */
  witnesses?: readonly string[];
  /**
   * The blob store holding DICOM instances. When given, every blob an inbox message names is looked up (present, of
   * the message's raw_size) and `blobRehash` of them are read and re-hashed; when absent, the blob check is skipped.
   */
  blobs?: BlobStore;
  /** Blobs re-hashed: 'all', or at most this many picked at random among those present. Default 100. */
  blobRehash?: number | 'all';
}

/** Reads the whole ledger in one snapshot and re-checks it; see the checks above. Never writes. */
export async function auditLedger(pool: pg.Pool, options: AuditOptions = {}): Promise<AuditReport> {
  const audit = new Audit(options);
  const client = await pool.connect();
  try {
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    await auditLeaves(client, audit);
    await auditRawMessages(client, audit);
    await auditMappingConfigs(client, audit);
    if (options.blobs) await auditBlobs(client, audit, options.blobs);
    await auditMissingLeaves(client, audit);
    await auditCurrentPointers(client, audit);
    await auditBatches(client, audit);
    await auditLog(client, audit);
    await auditCosignatures(client, audit);
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    client.release();
  }
  return audit.report();
}

/** The running tallies and findings of one audit. */
class Audit {
  readonly pageRows: number;
  readonly rawPageBytes: number;
  readonly publicKey: string | undefined;
  readonly witnesses: NoteVerifier[];
  private readonly maxFindings: number;
  private readonly checked = counters();
  private readonly mismatches = counters();
  private readonly findings: AuditFinding[] = [];
  private omitted = 0;
  unbatchedLeaves = 0;
  readonly blobRehash: number | 'all';
  readonly blobsAudited: boolean;
  blobsRehashed = 0;
  readonly erased = { versions: 0, messages: 0, blobs: 0 };

  constructor(options: AuditOptions) {
    this.pageRows = options.pageRows ?? 1000;
    this.blobRehash = options.blobRehash ?? 100;
    this.blobsAudited = options.blobs !== undefined;
    if (this.blobRehash !== 'all' && (!Number.isSafeInteger(this.blobRehash) || this.blobRehash < 0)) throw new RangeError("blobRehash must be 'all' or a non-negative integer");
    this.rawPageBytes = options.rawPageBytes ?? 32 * 1024 * 1024;
    this.maxFindings = options.maxFindings ?? 1000;
    this.publicKey = options.publicKey?.toLowerCase();
    const witnesses = witnessVerifiers(options.witnesses ?? []);
    if (witnesses.problem !== undefined) throw new RangeError(witnesses.problem);
    this.witnesses = witnesses.verifiers;
    if (!Number.isSafeInteger(this.pageRows) || this.pageRows < 1) throw new RangeError('pageRows must be a positive integer');
    if (!Number.isSafeInteger(this.maxFindings) || this.maxFindings < 0) throw new RangeError('maxFindings must be a non-negative integer');
  }

  count(check: AuditCheckName, items = 1): void {
    this.checked[check] += items;
  }

  /** Records a mismatch; problems found in one item are joined into one finding. */
  mismatch(check: AuditCheckName, ref: string, problems: string | string[]): void {
    const detail = typeof problems === 'string' ? problems : problems.join('; ');
    this.mismatches[check] += 1;
    if (this.findings.length < this.maxFindings) this.findings.push({ check, ref, detail });
    else this.omitted += 1;
  }

  report(): AuditReport {
    return {
      ok: AUDIT_CHECK_NAMES.every((name) => this.mismatches[name] === 0),
      checked: { ...this.checked },
      mismatches: { ...this.mismatches },
      findings: [...this.findings],
      findingsOmitted: this.omitted,
      unbatchedLeaves: this.unbatchedLeaves,
      blobsRehashed: this.blobsRehashed,
      blobsAudited: this.blobsAudited,
      erased: { ...this.erased },
    };
  }
}

function counters(): Record<AuditCheckName, number> {
  return Object.fromEntries(AUDIT_CHECK_NAMES.map((name) => [name, 0])) as Record<AuditCheckName, number>;
}

/**
 * Pages of a keyset scan: `fetch(after)` returns up to pageRows rows ordered by key, after the key it is given
 * (undefined for the first page). Ends after a short page.
 */
async function* pages<Row, Key>(fetch: (after: Key | undefined) => Promise<Row[]>, keyOf: (row: Row) => Key, pageRows: number): AsyncGenerator<Row[]> {
  let after: Key | undefined;
  while (true) {
    const rows = await fetch(after);
    if (rows.length > 0) yield rows;
    if (rows.length < pageRows) return;
    after = keyOf(rows[rows.length - 1]!);
  }
}

async function* rowsOf<Row>(source: AsyncGenerator<Row[]>): AsyncGenerator<Row> {
  for await (const page of source) yield* page;
}

/**
 * A value read from a hash field, fit to print: a hex SHA-256 (or Ed25519 key) as it is, anything else only
 * described. Stored JSON that has been tampered with may hold anything, including patient data.
 */
function shown(value: unknown): string {
  return typeof value === 'string' && /^[0-9a-f]{64}$/.test(value) ? value : `(not a hex digest: ${value === null ? 'null' : typeof value})`;
}

/** A count or index read from stored JSON, fit to print. */
function shownNumber(value: unknown): string {
  return typeof value === 'number' && Number.isSafeInteger(value) ? String(value) : `(not an integer: ${value === null ? 'null' : typeof value})`;
}

/** Hex SHA-256 of JCS(value), or undefined when the value has no canonical form. */
function canonicalSha256(value: unknown, hash: (value: unknown) => string): string | undefined {
  try {
    return hash(value);
  } catch {
    return undefined;
  }
}

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

// ---------------------------------------------------------------------------------------------------------------
// Leaves: leaf-hash, resource, raw-message (leaf side), batch numbering of each leaf

interface LeafRow {
  id: number;
  resource_type: string;
  resource_id: string;
  version_id: number;
  preimage: unknown;
  leaf_hash: Buffer;
  batch_number: number | null;
  leaf_index: number | null;
  /** batch_number names a ledger_batch row: the leaf was numbered before the log. */
  in_batch: boolean;
  history_found: boolean;
  history_content: unknown;
  source_message_id: number | null;
  current_content: unknown;
  message_found: boolean;
  message_raw_sha256: Buffer | null;
  /** The source message was erased: message_raw_sha256 is a keyed digest of its hash (BlindIndex.erasedDigest). */
  message_digests_keyed: boolean | null;
  /** Set by an erasure: the preimage is gone, the leaf hash stays. */
  erased_at: Date | null;
  /** The stored version was sealed under a patient key that is destroyed. */
  history_erased?: boolean;
}

/** Opens the sealed versions of a page of leaf rows (store/keys.ts), marking those whose key is destroyed. */
async function openLeafVersions(client: pg.PoolClient, rows: Array<LeafRow & { sealed: Buffer | null; key_id: number | null; key_wrapped: Buffer | null; key_kek: string | null }>): Promise<void> {
  const sealed = rows.filter((row) => row.sealed !== null);
  if (sealed.length === 0) return;
  const versions: VersionRow[] = sealed.map((row) => ({
    resource_type: row.resource_type, id: row.resource_id, version_id: row.version_id, content: null,
    sealed: row.sealed, key_id: row.key_id, key_wrapped: row.key_wrapped, key_kek: row.key_kek,
  }));
  await openVersionRows(client, versions);
  sealed.forEach((row, n) => {
    row.history_content = versions[n]!.content;
    if (versions[n]!.erased) row.history_erased = true;
  });
}

async function auditLeaves(client: pg.PoolClient, audit: Audit): Promise<void> {
  // Each leaf with, by primary key, its stored version, the current row when it holds that version, and the raw hash
  // of the version's source message.
  const fetch = async (after: number | undefined): Promise<LeafRow[]> =>
    (
      await client.query<LeafRow>({
        // Lossless, so that a stored `5.40` hashes as the leaf committed to it (store/db.ts).
        types: LOSSLESS_JSON_TYPES,
        text: `SELECT l.id, l.resource_type, l.resource_id, l.version_id, l.preimage, l.leaf_hash, l.batch_number, l.leaf_index,
                EXISTS (SELECT 1 FROM ledger_batch b WHERE b.batch_number = l.batch_number) AS in_batch,
                h.resource_type IS NOT NULL AS history_found, h.content AS history_content, h.source_message_id,
                m.id IS NOT NULL AS message_found, m.raw_sha256 AS message_raw_sha256, m.digests_keyed AS message_digests_keyed, l.erased_at,
                h.sealed, h.key_id, k.wrapped_dek AS key_wrapped, k.kek_id AS key_kek
           FROM ledger_leaf l
           LEFT JOIN fhir_resource_history h ON h.resource_type = l.resource_type AND h.id = l.resource_id AND h.version_id = l.version_id
           LEFT JOIN patient_key k ON k.id = h.key_id
           LEFT JOIN inbox_message m ON m.id = h.source_message_id
          WHERE l.id > $1
          ORDER BY l.id
          LIMIT $2`,
        values: [after ?? 0, audit.pageRows],
      })
    ).rows;
  const index = await blindIndexOf(client);
  for await (const rows of pages(fetch, (row) => Number(row.id), audit.pageRows)) {
    await openLeafVersions(client, rows as Parameters<typeof openLeafVersions>[1]);
    for (const row of rows) checkLeaf(row, audit, index);
  }
}

function checkLeaf(row: LeafRow, audit: Audit, index: BlindIndex): void {
  const versionId = Number(row.version_id);
  const ref = `${row.resource_type}/${row.resource_id}/_history/${versionId}`;
  const preimage = isRecord(row.preimage) ? row.preimage : {};
  audit.count('leaf-hash');
  audit.count('resource');

  const leafHash = canonicalSha256(row.preimage, (p) => bytesToHex(provenanceLeafHash(p as LeafPreimage)));
  const storedLeafHash = bytesToHex(new Uint8Array(row.leaf_hash));
  if (row.erased_at !== null || row.history_erased === true) {
    // Erased (store/erasure.ts): the version cannot be re-hashed, and a marked leaf has no preimage left either; its
    // leaf hash still goes into the log's recomputation. An erasure destroys the key of every version it marks.
    audit.erased.versions += 1;
    if (row.erased_at === null && leafHash !== storedLeafHash) audit.mismatch('leaf-hash', ref, `the preimage hashes to ${leafHash ?? '(no canonical form)'}; leaf_hash is ${shown(storedLeafHash)}`);
    if (row.erased_at !== null && row.history_found && row.history_erased !== true) audit.mismatch('resource', ref, 'the leaf is marked erased, but its stored version is still readable');
    if (row.batch_number === null && row.leaf_index === null) audit.unbatchedLeaves += 1;
    return;
  }
  if (leafHash === undefined) audit.mismatch('leaf-hash', ref, 'the preimage has no RFC 8785 canonical form');
  else if (leafHash !== storedLeafHash) audit.mismatch('leaf-hash', ref, `the preimage hashes to ${leafHash}; leaf_hash is ${shown(storedLeafHash)}`);

  const claimed = preimage.resourceSha256;
  const problems: string[] = [];
  if (preimage.resourceType !== row.resource_type || preimage.id !== row.resource_id || preimage.versionId !== String(versionId)) {
    problems.push('the preimage names another resource version than its leaf row');
  }
  if (!row.history_found) {
    problems.push('the version is not stored in fhir_resource_history');
  } else {
    const stored = canonicalSha256(row.history_content, resourceSha256);
    if (stored !== claimed) problems.push(`the stored version hashes to ${stored ?? '(no canonical form)'}; the leaf says ${shown(claimed)}`);
    if (!namesVersion(row.history_content, row.resource_type, row.resource_id, versionId)) {
      problems.push('the stored content names another resourceType, id or meta.versionId');
    }
  }
  if (problems.length > 0) audit.mismatch('resource', ref, problems);

  if (row.history_found) {
    const messageId = row.source_message_id === null ? null : Number(row.source_message_id);
    if (messageId === null) {
      // An AuditEvent of a read comes from no message; its leaf must say so (store/audit-trail.ts).
      const readAudit = row.resource_type === AUDIT_EVENT && preimage.rawSha256 === NO_SOURCE_SHA256 && preimage.mappingSha256 === NO_SOURCE_SHA256;
      if (!readAudit) audit.mismatch('raw-message', ref, 'the stored version names no source message');
    } else if (!row.message_found || row.message_raw_sha256 === null) {
      audit.mismatch('raw-message', ref, `source inbox_message/${messageId} does not exist`);
    } else {
      const rawSha256 = bytesToHex(new Uint8Array(row.message_raw_sha256));
      // An erased message (a version of another patient's, mapped from the same message, keeps its leaf) holds a keyed
      // digest of its hash: the leaf's hash is compared through the same key.
      const claimedRaw = row.message_digests_keyed === true && typeof preimage.rawSha256 === 'string' && /^[0-9a-f]{64}$/.test(preimage.rawSha256)
        ? index.erasedDigest(Buffer.from(preimage.rawSha256, 'hex')).toString('hex')
        : preimage.rawSha256;
      if (rawSha256 !== claimedRaw) {
        audit.mismatch('raw-message', ref, `source inbox_message/${messageId} has raw_sha256 ${rawSha256}; the leaf says ${shown(preimage.rawSha256)}`);
      }
    }
  }

  // A batch set both when it closed, and so does a checkpoint for the leaves it numbers (store/log.ts).
  if (row.batch_number === null && row.leaf_index === null) audit.unbatchedLeaves += 1;
  else if (row.batch_number === null || row.leaf_index === null) {
    audit.mismatch(
      row.in_batch ? 'batch-leaves' : 'log-leaves',
      `ledger_leaf/${Number(row.id)}`,
      `the leaf of ${ref} has ${row.batch_number === null ? 'a leaf_index but no batch_number' : 'a batch_number but no leaf_index'}`,
    );
  }
}

/** True when a stored resource's content says it is (type, id, version). */
function namesVersion(content: unknown, resourceType: string, id: string, versionId: number): boolean {
  if (!isRecord(content)) return false;
  const meta = content.meta;
  return content.resourceType === resourceType && content.id === id && isRecord(meta) && meta.versionId === String(versionId);
}

// ---------------------------------------------------------------------------------------------------------------
// Raw messages: every inbox row, whether or not a leaf names it

interface InboxRowKey {
  id: number;
  raw_sha256: Buffer;
  /** bigint: pg gives it as a string. */
  raw_size: string | number;
  raw_truncated: boolean;
  raw_bytes: number;
}

async function auditRawMessages(client: pg.PoolClient, audit: Audit): Promise<void> {
  // Every row, not only those a stored version came from: a rejected, conflicting or failed message, or one that
  // changed nothing, is named by no leaf, and its bytes are evidence all the same. octet_length of a bytea reads the
  // stored length without fetching the (toasted) bytes.
  const fetch = async (after: number | undefined): Promise<InboxRowKey[]> =>
    (
      await client.query<InboxRowKey>(
        `SELECT id, raw_sha256, raw_size, raw_truncated, octet_length(raw) AS raw_bytes
           FROM inbox_message
          WHERE id > $1
          ORDER BY id
          LIMIT $2`,
        [after ?? 0, audit.pageRows],
      )
    ).rows;
  for await (const rows of pages(fetch, (row) => Number(row.id), audit.pageRows)) {
    // The bytes themselves are read in groups of at most rawPageBytes (a larger message alone), so a page of large
    // messages does not have to fit in memory at once.
    for (const group of byteGroups(rows, (row) => Number(row.raw_bytes), audit.rawPageBytes)) await checkRawGroup(client, audit, group);
  }
}

async function checkRawGroup(client: pg.PoolClient, audit: Audit, group: InboxRowKey[]): Promise<void> {
  const raws = await client.query<RawRow>(`SELECT m.id, m.raw, m.raw_sha256, ${RAW_KEY_COLUMNS} FROM inbox_message m WHERE m.id = ANY($1::bigint[])`, [group.map((row) => row.id)]);
  // Sealed messages are opened (a tampered one fails to open, and is a mismatch like a wrong hash).
  const unopened = new Set<number>();
  for (const row of raws.rows) {
    try {
      await openRawRows(client, [row]);
    } catch {
      unopened.add(Number(row.id));
    }
  }
  const rawById = new Map(raws.rows.map((row) => [Number(row.id), row]));
  for (const row of group) {
    audit.count('raw-message');
    const sealedRow = rawById.get(Number(row.id));
    if (!sealedRow) continue; // cannot happen in one snapshot
    if (sealedRow.erased) {
      audit.erased.messages += 1;
      continue;
    }
    if (unopened.has(Number(row.id))) {
      audit.mismatch('raw-message', `inbox_message/${Number(row.id)}`, 'the sealed raw bytes do not open under their key');
      continue;
    }
    const raw = sealedRow.raw;
    const problems: string[] = [];
    const computed = createHash('sha256').update(raw).digest('hex');
    const stored = bytesToHex(new Uint8Array(row.raw_sha256));
    if (computed !== stored) problems.push(`raw bytes hash to ${computed}; raw_sha256 is ${shown(stored)}`);
    // raw_size is the size of the message as received; only a truncated row (an oversized frame, a refused input, a
    // DICOM instance whose pixel data is in the blob store) keeps less than that.
    const rawSize = Number(row.raw_size);
    if (!row.raw_truncated && raw.length !== rawSize) problems.push(`${raw.length} raw bytes are stored; raw_size is ${rawSize}`);
    if (row.raw_truncated && raw.length >= rawSize) problems.push(`raw_truncated is set, but ${raw.length} raw bytes are stored of raw_size ${rawSize}`);
    if (problems.length > 0) audit.mismatch('raw-message', `inbox_message/${Number(row.id)}`, problems);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Mapping configurations: every stored version, and every digest that leaves name

/** Byte order, as PostgreSQL's "C" collation orders text: the order both digest streams below are read in. */
function compareBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

async function auditMappingConfigs(client: pg.PoolClient, audit: Audit): Promise<void> {
  // Two streams ordered by digest, merged: the stored rows (re-hashed one byte-bounded group at a time) and the
  // digests leaves name with their leaf counts. Digests are few (one per configuration ever saved or used), so each
  // stream is a page or two; paging keeps even a table or a ledger rewritten with many distinct digests within
  // bounds. The "C" collation makes the order SQL's and compareBytes' alike, whatever a tampered key holds.
  const stored = new Lookahead(storedMappingConfigs(client, audit));
  const named = new Lookahead(rowsOf(pages(namedMappingDigests(client, audit), (row) => row.digest, audit.pageRows)));
  while (true) {
    const row = await stored.peek();
    const name = await named.peek();
    if (row === undefined && name === undefined) return;
    const order = row !== undefined && name !== undefined ? compareBytes(row.digest, name.digest) : row !== undefined ? -1 : 1;
    if (order <= 0) stored.take();
    if (order >= 0) named.take();
    const digest = (order <= 0 ? row : name)!.digest;
    const leafCount = order >= 0 ? Number(name!.leaves) : 0;
    const leaves = leafCount === 0 ? 'no leaf names it' : `${leafCount} ${leafCount === 1 ? 'leaf names' : 'leaves name'} it`;
    const ref = `mapping_config/${shown(digest)}`;
    audit.count('mapping-config');
    if (order > 0) audit.mismatch('mapping-config', ref, `no mapping configuration is stored under this digest (${leaves})`);
    else if (row!.computed !== digest) audit.mismatch('mapping-config', ref, `the stored content re-hashes to ${row!.computed ?? '(no canonical form)'} (${leaves})`);
  }
}

/** Every mapping_config row in digest order, with what its content re-hashes to (the content is not kept). */
async function* storedMappingConfigs(client: pg.PoolClient, audit: Audit): AsyncGenerator<{ digest: string; computed: string | undefined }> {
  // pg_column_size reads the stored (maybe compressed) size without fetching a toasted value: a bound on what a
  // group costs to read, close enough to keep memory flat.
  const fetch = async (after: string | undefined): Promise<Array<{ sha256: string; bytes: number }>> =>
    (
      await client.query<{ sha256: string; bytes: number }>(
        `SELECT sha256, pg_column_size(content) AS bytes
           FROM mapping_config
          ${after === undefined ? '' : 'WHERE sha256 COLLATE "C" > $2'}
          ORDER BY sha256 COLLATE "C"
          LIMIT $1`,
        after === undefined ? [audit.pageRows] : [audit.pageRows, after],
      )
    ).rows;
  for await (const rows of pages(fetch, (row) => row.sha256, audit.pageRows)) {
    for (const group of byteGroups(rows, (row) => Number(row.bytes), audit.rawPageBytes)) {
      const contents = await mappingConfigsByDigest(client, group.map((row) => row.sha256));
      for (const row of group) {
        yield { digest: row.sha256, computed: contents.has(row.sha256) ? canonicalSha256(contents.get(row.sha256), mappingConfigSha256) : undefined };
      }
    }
  }
}

/** Pages of the distinct mapping digests that leaves name, in digest order, with how many leaves name each. */
function namedMappingDigests(client: pg.PoolClient, audit: Audit): (after: string | undefined) => Promise<Array<{ digest: string; leaves: number }>> {
  const digestOf = `coalesce(preimage->>'mappingSha256', '')`;
  // Read audits name no mapping (NO_SOURCE_SHA256); their raw-message check covers that they may not. Erased leaves
  // name nothing any more (store/erasure.ts).
  const noMapping = `'${NO_SOURCE_SHA256}'`;
  return async (after) =>
    (
      await client.query<{ digest: string; leaves: number }>(
        `SELECT ${digestOf} AS digest, count(*)::bigint AS leaves
           FROM ledger_leaf
          WHERE erased_at IS NULL AND ${digestOf} <> ${noMapping} ${after === undefined ? '' : `AND ${digestOf} COLLATE "C" > $2`}
          GROUP BY 1
          ORDER BY ${digestOf} COLLATE "C"
          LIMIT $1`,
        after === undefined ? [audit.pageRows] : [audit.pageRows, after],
      )
    ).rows;
}

// ---------------------------------------------------------------------------------------------------------------
// Blobs: every DICOM instance an inbox message names, in the blob store

/**
 * One file of the blob store as the inbox names it: a plain one by blob_sha256 (every message with those bytes names
 * the same file), or a sealed one by blob_sealed_sha256 (one message each, with the key columns that open it).
 */
interface BlobRow extends MessageKeyRow {
  name: Buffer;
  /** Sealed files: the instance's own SHA-256 (blob_sha256); null for plain ones, whose name it is. */
  sha256: Buffer | null;
  messages: number;
  min_size: string | number;
  max_size: string | number;
  /** Every message naming the file was erased (its key was under a patient key since destroyed). */
  all_erased: boolean;
}

async function auditBlobs(client: pg.PoolClient, audit: Audit, blobs: BlobStore): Promise<void> {
  // One row per file, plain ones in the order of the inbox_message_blob index and sealed ones in that of
  // inbox_message_blob_sealed (0023). A file is present and of the right size, checked for all by a stat each;
  // reading and hashing every instance can mean terabytes, so by default only a random sample (reservoir sampling
  // over the present ones, so every file is as likely to be picked) is read again.
  const plain = async (after: Buffer | undefined): Promise<BlobRow[]> =>
    (
      await client.query<BlobRow>(
        `SELECT m.blob_sha256 AS name, NULL::bytea AS sha256, count(*)::int AS messages, min(m.raw_size) AS min_size, max(m.raw_size) AS max_size,
                bool_and(m.raw_key_id IS NOT NULL AND k.wrapped_dek IS NULL) AS all_erased
           FROM inbox_message m LEFT JOIN patient_key k ON k.id = m.raw_key_id
          WHERE m.blob_sha256 IS NOT NULL AND m.blob_sealed_sha256 IS NULL ${after === undefined ? '' : 'AND m.blob_sha256 > $2'}
          GROUP BY m.blob_sha256
          ORDER BY m.blob_sha256
          LIMIT $1`,
        after === undefined ? [audit.pageRows] : [audit.pageRows, after],
      )
    ).rows;
  // Paged by (name, id): a name that two rows give (one of them altered) is still read for each.
  const sealed = async (after: { name: Buffer; id: number } | undefined): Promise<BlobRow[]> =>
    (
      await client.query<BlobRow>(
        `SELECT m.blob_sealed_sha256 AS name, m.blob_sha256 AS sha256, 1 AS messages, m.raw_size AS min_size, m.raw_size AS max_size,
                m.id, m.raw_key, m.raw_kek, m.raw_key_id, k.wrapped_dek AS patient_key_wrapped, k.kek_id AS patient_key_kek,
                (m.raw_key_id IS NOT NULL AND k.wrapped_dek IS NULL) AS all_erased
           FROM inbox_message m LEFT JOIN patient_key k ON k.id = m.raw_key_id
          WHERE m.blob_sealed_sha256 IS NOT NULL ${after === undefined ? '' : 'AND (m.blob_sealed_sha256, m.id) > ($2, $3)'}
          ORDER BY m.blob_sealed_sha256, m.id
          LIMIT $1`,
        after === undefined ? [audit.pageRows] : [audit.pageRows, after.name, after.id],
      )
    ).rows;
  const sample: BlobRow[] = [];
  let present = 0;
  const check = async (row: BlobRow): Promise<void> => {
    audit.count('blob');
    // An erased instance cannot be opened, and its sealed file may have been removed with the erasure.
    if (row.all_erased) {
      audit.erased.blobs += 1;
      return;
    }
    const digest = row.name.toString('hex');
    const ref = `blob/${digest}`;
    const messages = `${row.messages} inbox ${row.messages === 1 ? 'message names' : 'messages name'} it`;
    const size = await blobs.size(digest);
    if (size === undefined) {
      audit.mismatch('blob', ref, `the blob is not in the blob store (${messages})`);
      return;
    }
    const problems: string[] = [];
    const minSize = Number(row.min_size);
    const maxSize = Number(row.max_size);
    const overhead = row.sha256 === null ? 0 : SEAL_OVERHEAD_BYTES;
    if (minSize !== maxSize) problems.push(`the inbox messages naming it give raw_size ${minSize} to ${maxSize}`);
    else if (size !== minSize + overhead) problems.push(`the blob holds ${size} bytes; raw_size is ${minSize}${overhead > 0 ? `, ${minSize + overhead} sealed` : ''}`);
    if (problems.length > 0) {
      audit.mismatch('blob', ref, problems);
      return;
    }
    present += 1;
    if (audit.blobRehash === 'all') await rehashBlob(client, blobs, audit, row);
    else if (sample.length < audit.blobRehash) sample.push(row);
    else if (audit.blobRehash > 0) {
      const slot = randomInt(present);
      if (slot < audit.blobRehash) sample[slot] = row;
    }
  };
  for await (const row of rowsOf(pages(plain, (r) => r.name, audit.pageRows))) await check(row);
  for await (const row of rowsOf(pages(sealed, (r) => ({ name: r.name, id: Number(r.id) }), audit.pageRows))) await check(row);
  for (const row of sample) await rehashBlob(client, blobs, audit, row);
}

/**
 * Reads a file again: a plain one must hash to its name; a sealed one too, and, where the audit has the keys, it
 * must open under its message's key as the instance its row names (blob_sha256), hashed as it is opened.
 */
async function rehashBlob(client: pg.PoolClient, blobs: BlobStore, audit: Audit, row: BlobRow): Promise<void> {
  audit.blobsRehashed += 1;
  const digest = row.name.toString('hex');
  const ref = `blob/${digest}`;
  const rehash = async (): Promise<void> => {
    const computed = await blobs.rehash(digest);
    if (computed === undefined) audit.mismatch('blob', ref, 'the blob left the blob store while the audit ran');
    else if (computed !== digest) audit.mismatch('blob', ref, `the blob's bytes hash to ${computed}`);
  };
  if (row.sha256 === null || keyringOf(client) === undefined) return rehash();
  try {
    await openMessageKeys(client, [row]);
  } catch {
    audit.mismatch('blob', ref, `the key of inbox_message/${Number(row.id)}, which the blob is sealed under, does not open`);
    return;
  }
  let opened: string | undefined;
  try {
    opened = await openedInstanceSha256(blobs, digest, row.message_key!, row.sha256);
  } catch (error) {
    // A file that does not hash to its name is reported as a plain one is, with what it hashes to.
    if (error instanceof AnchorlineError && error.code === 'ANCHORLINE_ERR_BLOB_CORRUPT') return rehash();
    audit.mismatch('blob', ref, `the sealed blob does not open under the key of inbox_message/${Number(row.id)} as the instance it names`);
    return;
  }
  const expected = row.sha256.toString('hex');
  if (opened === undefined) audit.mismatch('blob', ref, 'the blob left the blob store while the audit ran');
  else if (opened !== expected) audit.mismatch('blob', ref, `the sealed blob opens to bytes hashing to ${opened}; blob_sha256 is ${expected}`);
}

// ---------------------------------------------------------------------------------------------------------------
// Stored versions without a leaf

interface VersionKey {
  resource_type: string;
  id: string;
  version_id: number;
}

/**
 * The current versions: each fhir_current row points at a stored version that is its resource's latest. The content
 * is the history row's (migration 0017), so only the pointer can be wrong: moved back to an older version, or to one
 * that does not exist (then the resource would vanish from reads).
 */
async function auditCurrentPointers(client: pg.PoolClient, audit: Audit): Promise<void> {
  const fetch = async (after: { resource_type: string; id: string } | undefined) =>
    (
      await client.query<{ resource_type: string; id: string; version_id: number; stored: boolean; latest: number | null }>(
        `SELECT c.resource_type, c.id, c.version_id,
                EXISTS (SELECT 1 FROM fhir_resource_history h WHERE h.resource_type = c.resource_type AND h.id = c.id AND h.version_id = c.version_id) AS stored,
                (SELECT max(h.version_id) FROM fhir_resource_history h WHERE h.resource_type = c.resource_type AND h.id = c.id) AS latest
           FROM fhir_current c
          ${after === undefined ? '' : 'WHERE (c.resource_type, c.id) > ($2, $3)'}
          ORDER BY c.resource_type, c.id
          LIMIT $1`,
        after === undefined ? [audit.pageRows] : [audit.pageRows, after.resource_type, after.id],
      )
    ).rows;
  for await (const rows of pages(fetch, (row) => ({ resource_type: row.resource_type, id: row.id }), audit.pageRows)) {
    for (const row of rows) {
      audit.count('resource');
      const ref = `current ${row.resource_type}/${row.id}`;
      if (!row.stored) audit.mismatch('resource', ref, `the current row points at version ${Number(row.version_id)}, which is not stored`);
      else if (row.latest !== null && Number(row.latest) !== Number(row.version_id)) {
        audit.mismatch('resource', ref, `the current row points at version ${Number(row.version_id)}, not the latest stored version ${Number(row.latest)}`);
      }
    }
  }
}

async function auditMissingLeaves(client: pg.PoolClient, audit: Audit): Promise<void> {
  // The row comparison follows the history primary key, so each page is one index range.
  const fetch = async (after: VersionKey | undefined): Promise<Array<VersionKey & { has_leaf: boolean }>> =>
    (
      await client.query<VersionKey & { has_leaf: boolean }>(
        `SELECT h.resource_type, h.id, h.version_id, l.id IS NOT NULL AS has_leaf
           FROM fhir_resource_history h
           LEFT JOIN ledger_leaf l ON l.resource_type = h.resource_type AND l.resource_id = h.id AND l.version_id = h.version_id
          ${after === undefined ? '' : 'WHERE (h.resource_type, h.id, h.version_id) > ($2, $3, $4::int)'}
          ORDER BY h.resource_type, h.id, h.version_id
          LIMIT $1`,
        after === undefined ? [audit.pageRows] : [audit.pageRows, after.resource_type, after.id, after.version_id],
      )
    ).rows;
  for await (const rows of pages(fetch, (row) => ({ resource_type: row.resource_type, id: row.id, version_id: row.version_id }), audit.pageRows)) {
    for (const row of rows) {
      audit.count('missing-leaf');
      if (!row.has_leaf) audit.mismatch('missing-leaf', `${row.resource_type}/${row.id}/_history/${Number(row.version_id)}`, 'the stored version has no provenance leaf');
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Batches: headers, their chain, and the leaves numbered into each

interface BatchRow {
  batch_number: number;
  header: unknown;
  header_hash: string;
  signature: string;
  public_key: string;
}

interface BatchedLeafRow {
  leaf_index: number;
  batch_number: number;
  leaf_hash: Buffer;
}

/** What the next batch in the chain must follow on from: the previous batch as stored. */
interface ChainLink {
  batchNumber: number;
  headerHash: string;
  nextLeafIndex: number | undefined;
}

async function auditBatches(client: pg.PoolClient, audit: Audit): Promise<void> {
  const batchPages = pages(
    async (after: number | undefined) =>
      (
        await client.query<BatchRow>(
          'SELECT batch_number, header, header_hash, signature, public_key FROM ledger_batch WHERE batch_number > $1 ORDER BY batch_number LIMIT $2',
          [after ?? Number.MIN_SAFE_INTEGER, audit.pageRows],
        )
      ).rows,
    (row) => Number(row.batch_number),
    audit.pageRows,
  );
  // Batched leaves in leaf-index order: batches number their leaves contiguously, so each batch's leaves form one run
  // of this stream, in batch order, and the two streams are merged. Leaves numbered into a checkpoint, or into a
  // number that is neither, are the log's to check (auditLog).
  const leaves = new Lookahead(
    rowsOf(
      pages(
        async (after: number | undefined) =>
          (
            await client.query<BatchedLeafRow>(
              `SELECT l.leaf_index, l.batch_number, l.leaf_hash FROM ledger_leaf l
                WHERE l.leaf_index > $1 AND EXISTS (SELECT 1 FROM ledger_batch b WHERE b.batch_number = l.batch_number)
                ORDER BY l.leaf_index LIMIT $2`,
              [after ?? Number.MIN_SAFE_INTEGER, audit.pageRows],
            )
          ).rows,
        (row) => Number(row.leaf_index),
        audit.pageRows,
      ),
    ),
  );

  let previous: ChainLink | undefined;
  for await (const row of rowsOf(batchPages)) {
    const batchNumber = Number(row.batch_number);
    const header = isRecord(row.header) ? row.header : {};
    const ref = `batch/${batchNumber}`;
    for (const check of ['header-hash', 'header-signature', 'header-chain', 'batch-leaves'] as const) audit.count(check);

    const computed = canonicalSha256(row.header, (h) => headerHash(h as BatchHeader));
    if (computed !== row.header_hash) audit.mismatch('header-hash', ref, `the header hashes to ${computed ?? '(no canonical form)'}; header_hash is ${shown(row.header_hash)}`);

    const signatureProblems: string[] = [];
    if (!verifyHeaderSignature(row.header as BatchHeader, row.signature, row.public_key)) signatureProblems.push(`the signature does not verify under public_key ${shown(row.public_key)}`);
    if (audit.publicKey !== undefined && row.public_key.toLowerCase() !== audit.publicKey) {
      signatureProblems.push(`public_key ${shown(row.public_key)} is not the engine's key ${shown(audit.publicKey)}`);
    }
    if (signatureProblems.length > 0) audit.mismatch('header-signature', ref, signatureProblems);

    const chainProblems = chainProblemsOf(batchNumber, header, previous);
    if (chainProblems.length > 0) audit.mismatch('header-chain', ref, chainProblems);

    await skipStrayLeaves(leaves, audit, batchNumber);
    const leafProblems = await batchLeafProblems(leaves, batchNumber, header);
    if (leafProblems.length > 0) audit.mismatch('batch-leaves', ref, leafProblems);

    const first = header.firstLeafIndex;
    const count = header.leafCount;
    previous = {
      batchNumber,
      headerHash: row.header_hash,
      nextLeafIndex: Number.isSafeInteger(first) && Number.isSafeInteger(count) ? (first as number) + (count as number) : undefined,
    };
  }
  await skipStrayLeaves(leaves, audit, Number.POSITIVE_INFINITY);
}

function chainProblemsOf(batchNumber: number, header: Record<string, unknown>, previous: ChainLink | undefined): string[] {
  const problems: string[] = [];
  const expectedNumber = previous ? previous.batchNumber + 1 : 1;
  if (batchNumber !== expectedNumber) problems.push(previous ? `batch ${expectedNumber} is missing after batch ${previous.batchNumber}` : `the first batch is ${batchNumber}, not 1`);
  if (header.batchNumber !== batchNumber) problems.push(`the header's batchNumber is ${shownNumber(header.batchNumber)}`);
  const expectedPrevious = previous ? previous.headerHash : GENESIS_PREVIOUS_HEADER_HASH;
  if (header.previousHeaderHash !== expectedPrevious) {
    problems.push(`previousHeaderHash is ${shown(header.previousHeaderHash)}; ${previous ? `batch ${previous.batchNumber}'s header_hash is ${shown(expectedPrevious)}` : 'batch 1 must name 64 zeros'}`);
  }
  const expectedFirst = previous ? previous.nextLeafIndex : 0;
  if (expectedFirst === undefined) problems.push(`firstLeafIndex cannot follow on from batch ${previous!.batchNumber}, whose header has no valid firstLeafIndex and leafCount`);
  else if (header.firstLeafIndex !== expectedFirst) problems.push(`firstLeafIndex is ${shownNumber(header.firstLeafIndex)}; it should follow on at ${expectedFirst}`);
  return problems;
}

/**
 * Reports and skips the leaves before the current batch's run that name an earlier batch, whose leaves are then out
 * of leaf-index order. One finding per run of leaves naming one batch.
 */
async function skipStrayLeaves(leaves: Lookahead<BatchedLeafRow>, audit: Audit, beforeBatch: number): Promise<void> {
  let next = await leaves.peek();
  while (next !== undefined && Number(next.batch_number) < beforeBatch) {
    const batchNumber = Number(next.batch_number);
    const firstIndex = Number(next.leaf_index);
    let lastIndex = firstIndex;
    let count = 0;
    while (next !== undefined && Number(next.batch_number) === batchNumber) {
      lastIndex = Number(next.leaf_index);
      count += 1;
      leaves.take();
      next = await leaves.peek();
    }
    audit.mismatch(
      'batch-leaves',
      `batch/${batchNumber}`,
      `${count} ${count === 1 ? 'leaf' : 'leaves'} (leaf_index ${firstIndex}..${lastIndex}) ${count === 1 ? 'is' : 'are'} numbered into batch ${batchNumber} out of leaf-index order`,
    );
  }
}

/** Consumes the run of leaves numbered into `batchNumber` and compares it with the batch's header. */
async function batchLeafProblems(leaves: Lookahead<BatchedLeafRow>, batchNumber: number, header: Record<string, unknown>): Promise<string[]> {
  const root = new StreamingRoot();
  let firstIndex: number | undefined;
  let gap: string | undefined;
  let malformedHashes = 0;
  let next = await leaves.peek();
  while (next !== undefined && Number(next.batch_number) === batchNumber) {
    const index = Number(next.leaf_index);
    if (firstIndex === undefined) firstIndex = index;
    else if (gap === undefined && index !== firstIndex + root.count) gap = `leaf indices jump from ${firstIndex + root.count - 1} to ${index}`;
    if (next.leaf_hash.length === HASH_BYTES) root.push(new Uint8Array(next.leaf_hash));
    else malformedHashes += 1;
    leaves.take();
    next = await leaves.peek();
  }
  const count = root.count + malformedHashes;
  const problems: string[] = [];
  if (count === 0) return [`the header counts ${shownNumber(header.leafCount)} leaves, but no leaf is numbered into the batch`];
  if (count !== header.leafCount) problems.push(`${count} ${count === 1 ? 'leaf is' : 'leaves are'} numbered into the batch; the header counts ${shownNumber(header.leafCount)}`);
  if (firstIndex !== header.firstLeafIndex) problems.push(`its first leaf is at leaf_index ${firstIndex}; the header's firstLeafIndex is ${shownNumber(header.firstLeafIndex)}`);
  if (gap !== undefined) problems.push(gap);
  if (malformedHashes > 0) problems.push(`${malformedHashes} leaf_hash ${malformedHashes === 1 ? 'value is' : 'values are'} not ${HASH_BYTES} bytes`);
  else {
    const computed = bytesToHex(root.root());
    if (computed !== header.root) problems.push(`the root of its leaves is ${computed}; the header's root is ${shown(header.root)}`);
  }
  return problems;
}

/** One-item lookahead over an async stream, for merging two ordered streams. */
class Lookahead<T> {
  private readonly source: AsyncIterator<T>;
  private head: IteratorResult<T> | undefined;

  constructor(source: AsyncIterator<T>) {
    this.source = source;
  }

  async peek(): Promise<T | undefined> {
    this.head ??= await this.source.next();
    return this.head.done ? undefined : this.head.value;
  }

  take(): void {
    this.head = undefined;
  }
}

/**
 * The RFC 9162 Merkle Tree Hash of leaf hashes pushed one at a time, in O(log n) memory. It keeps the roots of the
 * perfect subtrees that the leaves so far fill (their sizes are the binary digits of the count, largest first), as
 * an append-only log's compact range does; MTH splits at the largest power of two below n, which is the first
 * subtree, so the root is those subtree roots folded from the right.
 */
export class StreamingRoot {
  private readonly subtrees: Array<{ size: number; hash: Uint8Array }> = [];
  count = 0;

  push(leafHash: Uint8Array): void {
    let size = 1;
    let hash = leafHash;
    while (this.subtrees.length > 0 && this.subtrees[this.subtrees.length - 1]!.size === size) {
      const left = this.subtrees.pop()!;
      hash = nodeHash(left.hash, hash);
      size *= 2;
    }
    this.subtrees.push({ size, hash });
    this.count += 1;
  }

  root(): Uint8Array {
    if (this.subtrees.length === 0) return emptyRoot();
    let hash = this.subtrees[this.subtrees.length - 1]!.hash;
    for (let i = this.subtrees.length - 2; i >= 0; i--) hash = nodeHash(this.subtrees[i]!.hash, hash);
    return hash.slice();
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The one log: leaves in leaf_index order folded into a Frontier, against the stored nodes and every checkpoint

interface LogLeafRow {
  leaf_index: string;
  batch_number: string | null;
  leaf_hash: Buffer;
  /** batch_number names a ledger_batch row (a leaf numbered before the log). */
  in_batch: boolean;
  /** batch_number names a log_checkpoint row. */
  in_checkpoint: boolean;
}

type CheckpointRow = Omit<LogCheckpointRow, 'created_at'>;

/** A checkpoint whose hash, signature and links are checked, waiting for the recomputed log to reach its size. */
interface PendingRoot {
  number: number;
  treeSize: number;
  /** root_hash, hex. */
  rootHash: string;
  /** The root the text states, hex; undefined when the text is not a checkpoint. */
  textRoot: string | undefined;
  /** What already differs between root_hash, tree_size and the text. */
  problems: string[];
}

/** The last ledger_batch: the first checkpoint's number follows it and its legacy line names its header hash. */
interface LastBatch {
  batchNumber: number;
  headerHash: string;
}

async function auditLog(client: pg.PoolClient, audit: Audit): Promise<void> {
  const last = await client.query<{ batch_number: string; header_hash: string }>('SELECT batch_number, header_hash FROM ledger_batch ORDER BY batch_number DESC LIMIT 1');
  const lastBatch = last.rows[0] ? { batchNumber: Number(last.rows[0].batch_number), headerHash: last.rows[0].header_hash } : undefined;
  await new LogRecomputation(client, audit, new CheckpointReader(client, audit, lastBatch)).run();
}

/**
 * The log's leaves, read in leaf_index order, appended one by one to a Frontier: each time it reaches a checkpoint's
 * size its root is compared with the checkpoint's, and the nodes each page of leaves completes (the Frontier's node
 * sink reports them in the order they complete) are compared with log_node read in that same order.
 */
class LogRecomputation {
  private frontier = Frontier.empty();
  /** Set once a leaf is missing or unreadable: the log is not recomputed past it. */
  private stopped = false;
  private nextIndex = 0;
  /** The checkpoint whose leaves the next leaf is among; undefined beyond the latest one. */
  private current: PendingRoot | undefined;
  /** tree_size of the checkpoint before `current` (0 for the first). */
  private currentFrom = 0;
  /** Leaves numbered beyond the latest checkpoint, into no batch: reported as one run at the end. */
  private beyond: { first: number; last: number; count: number } | undefined;

  private readonly client: pg.PoolClient;
  private readonly audit: Audit;
  private readonly checkpoints: CheckpointReader;

  constructor(client: pg.PoolClient, audit: Audit, checkpoints: CheckpointReader) {
    this.client = client;
    this.audit = audit;
    this.checkpoints = checkpoints;
  }

  async run(): Promise<void> {
    this.current = await this.checkpoints.next();
    const fetch = async (after: number | undefined): Promise<LogLeafRow[]> =>
      (
        await this.client.query<LogLeafRow>(
          `SELECT l.leaf_index, l.batch_number, l.leaf_hash,
                  EXISTS (SELECT 1 FROM ledger_batch b WHERE b.batch_number = l.batch_number) AS in_batch,
                  EXISTS (SELECT 1 FROM log_checkpoint c WHERE c.number = l.batch_number) AS in_checkpoint
             FROM ledger_leaf l
            WHERE l.leaf_index > $1
            ORDER BY l.leaf_index
            LIMIT $2`,
          [after ?? Number.MIN_SAFE_INTEGER, this.audit.pageRows],
        )
      ).rows;
    for await (const rows of pages(fetch, (row) => Number(row.leaf_index), this.audit.pageRows)) {
      const from = this.frontier.size;
      const completed: StoredNode[] = [];
      for (const row of rows) await this.leaf(row, completed);
      if (this.frontier.size > from) await this.compareNodes(from, this.frontier.size, completed);
    }
    // Checkpoints the leaves never reached.
    while (this.current !== undefined) await this.closeCurrent();
    if (this.beyond !== undefined) {
      const { first, last, count } = this.beyond;
      const latest = this.checkpoints.lastSize === 0 ? 'no checkpoint exists' : `the latest checkpoint's tree size is ${this.checkpoints.lastSize}`;
      this.audit.mismatch(
        'log-leaves',
        `leaf/${first}`,
        `${count} ${count === 1 ? 'leaf' : 'leaves'} (leaf_index ${first}..${last}) ${count === 1 ? 'is' : 'are'} numbered, but not into a batch, and ${latest}`,
      );
    }
    await this.nodesBeyond(this.checkpoints.lastSize);
  }

  private async leaf(row: LogLeafRow, completed: StoredNode[]): Promise<void> {
    const index = Number(row.leaf_index);
    this.audit.count('log-leaves');
    if (index < 0) {
      this.audit.mismatch('log-leaves', `leaf/${index}`, 'leaf_index is negative');
      return;
    }
    if (index !== this.nextIndex) {
      const missing = index - 1 > this.nextIndex ? `${this.nextIndex}..${index - 1}` : String(this.nextIndex);
      this.audit.mismatch('log-leaves', `leaf/${this.nextIndex}`, `no leaf has leaf_index ${missing}: the log is not recomputed past it, so later roots and nodes are not compared`);
      this.stopped = true;
    }
    this.nextIndex = index + 1;
    // Only after a gap can the leaves skip past a checkpoint's size without reaching it.
    while (this.current !== undefined && this.current.treeSize <= index) await this.closeCurrent();

    const batchNumber = row.batch_number === null ? undefined : Number(row.batch_number);
    if (this.current === undefined) {
      // Beyond the latest checkpoint, only leaves batched before the log may wait to be appended; the appender numbers
      // fresh leaves in the transaction that writes their checkpoint. (No batch_number is checkLeaf's finding.)
      if (row.in_batch) this.audit.unbatchedLeaves += 1;
      else if (batchNumber !== undefined) {
        this.beyond = this.beyond === undefined ? { first: index, last: index, count: 1 } : { ...this.beyond, last: index, count: this.beyond.count + 1 };
      }
      return;
    }
    if (batchNumber !== undefined && !row.in_batch && batchNumber !== this.current.number) {
      const range = `leaf_index ${this.currentFrom}..${this.current.treeSize - 1}`;
      this.audit.mismatch(
        'log-leaves',
        `leaf/${index}`,
        row.in_checkpoint
          ? `the leaf is among checkpoint ${this.current.number}'s (${range}), but its batch_number names checkpoint ${batchNumber}`
          : `its batch_number ${batchNumber} names neither a batch nor a checkpoint (it is among checkpoint ${this.current.number}'s leaves, ${range})`,
      );
    }
    if (this.stopped) return;
    if (row.leaf_hash.length !== HASH_BYTES) {
      this.audit.mismatch('log-leaves', `leaf/${index}`, `leaf_hash is ${row.leaf_hash.length} bytes, not ${HASH_BYTES}: the log is not recomputed past it, so later roots and nodes are not compared`);
      this.stopped = true;
      return;
    }
    this.frontier = this.frontier.appendLeafHash(new Uint8Array(row.leaf_hash), (node) => {
      if (node.id.level > 0) completed.push(node);
    });
    if (this.frontier.size === this.current.treeSize) await this.closeCurrent();
  }

  /** Compares `current`'s root with the recomputed log (when it reached that size) and moves on to the next. */
  private async closeCurrent(): Promise<void> {
    const checkpoint = this.current!;
    const problems = [...checkpoint.problems];
    if (!this.stopped) {
      if (this.frontier.size === checkpoint.treeSize) {
        const computed = bytesToHex(this.frontier.root());
        if (computed !== checkpoint.rootHash) problems.push(`the log's first ${checkpoint.treeSize} leaves hash to ${computed}; root_hash is ${checkpoint.rootHash}`);
        if (checkpoint.textRoot !== undefined && checkpoint.textRoot !== checkpoint.rootHash && checkpoint.textRoot !== computed) {
          problems.push(`the signed text's root ${checkpoint.textRoot} is not the recomputed one either`);
        }
      } else problems.push(`the log holds ${this.frontier.size} leaves; tree_size is ${checkpoint.treeSize}`);
    }
    if (problems.length > 0) this.audit.mismatch('log-root', `checkpoint/${checkpoint.number}`, problems);
    this.currentFrom = checkpoint.treeSize;
    this.current = await this.checkpoints.next();
  }

  /**
   * Compares the nodes the leaves at [from, to) completed, in the order they completed, with the stored ones. The
   * nodes a leaf completes are those whose last leaf it is, so they are read by level as index ranges of log_node's
   * primary key, ordered as the sink reported them: by the leaf that completed them, then by level.
   */
  private async compareNodes(from: number, to: number, completed: StoredNode[]): Promise<void> {
    const levels: number[] = [];
    const firsts: number[] = [];
    const lasts: number[] = [];
    for (let level = 1, span = 2; span <= to; level += 1, span *= 2) {
      // Node (level, idx) is completed by leaf (idx + 1) * span - 1.
      const first = Math.ceil((from + 1) / span) - 1;
      const last = Math.floor(to / span) - 1;
      if (last < first) continue;
      levels.push(level);
      firsts.push(first);
      lasts.push(last);
    }
    if (levels.length === 0) return;
    const stored = (
      await this.client.query<{ level: number; idx: string; hash: Buffer }>(
        `SELECT n.level, n.idx, n.hash
           FROM unnest($1::smallint[], $2::bigint[], $3::bigint[]) AS r(level, first, last)
           JOIN log_node n ON n.level = r.level AND n.idx BETWEEN r.first AND r.last
          ORDER BY (n.idx + 1) << n.level::int, n.level`,
        [levels, firsts, lasts],
      )
    ).rows;
    const completedBy = (level: number, index: number): number => (index + 1) * 2 ** level - 1;
    let c = 0;
    let s = 0;
    while (c < completed.length || s < stored.length) {
      const computed = completed[c];
      const row = stored[s];
      const order =
        computed === undefined
          ? 1
          : row === undefined
            ? -1
            : completedBy(computed.id.level, computed.id.index) - completedBy(row.level, Number(row.idx)) || computed.id.level - row.level;
      this.audit.count('log-node');
      if (order < 0) {
        this.audit.mismatch('log-node', `log_node/${computed!.id.level}/${computed!.id.index}`, `log_node does not hold the node; the leaves below it hash to ${bytesToHex(computed!.hash)}`);
        c += 1;
      } else if (order > 0) {
        this.audit.mismatch('log-node', `log_node/${row!.level}/${Number(row!.idx)}`, 'log_node holds a node that the log does not complete there');
        s += 1;
      } else {
        const storedHash = bytesToHex(new Uint8Array(row!.hash));
        const computedHash = bytesToHex(computed!.hash);
        if (storedHash !== computedHash) this.audit.mismatch('log-node', `log_node/${row!.level}/${Number(row!.idx)}`, `log_node holds ${shown(storedHash)}; the leaves below it hash to ${computedHash}`);
        c += 1;
        s += 1;
      }
    }
  }

  /** Reports stored nodes that cover a leaf at or beyond `size`, the latest checkpoint's: the appender writes none. */
  private async nodesBeyond(size: number): Promise<void> {
    const levels = Array.from({ length: 63 }, (_, i) => i + 1);
    // Node (level, idx) covers leaves up to (idx + 1) * 2^level - 1, which is at or beyond size from this idx on.
    const firsts = levels.map((level) => Math.floor(size / 2 ** level));
    const fetch = async (after: { level: number; idx: string } | undefined): Promise<Array<{ level: number; idx: string }>> =>
      (
        await this.client.query<{ level: number; idx: string }>(
          `SELECT n.level, n.idx
             FROM unnest($1::smallint[], $2::bigint[]) AS r(level, first)
             JOIN log_node n ON n.level = r.level AND n.idx >= r.first
            ${after === undefined ? '' : 'WHERE (n.level, n.idx) > ($4::smallint, $5::bigint)'}
            ORDER BY n.level, n.idx
            LIMIT $3`,
          after === undefined ? [levels, firsts, this.audit.pageRows] : [levels, firsts, this.audit.pageRows, after.level, after.idx],
        )
      ).rows;
    for await (const row of rowsOf(pages(fetch, (r) => ({ level: r.level, idx: r.idx }), this.audit.pageRows))) {
      this.audit.count('log-node');
      const lastLeaf = (Number(row.idx) + 1) * 2 ** row.level - 1;
      this.audit.mismatch('log-node', `log_node/${row.level}/${Number(row.idx)}`, `the node covers leaves up to ${lastLeaf}, beyond the latest checkpoint's tree size ${size}`);
    }
  }
}

/** The lines of a checkpoint text the chain and root checks read, by the C2SP grammar alone (see CheckpointReader). */
interface CheckpointLines {
  origin: string;
  size: number;
  /** Hex. */
  rootHash: string;
  /** The previous line's hash in hex, '' when it is not base64 of 32 bytes; undefined without a previous line. */
  previous: string | undefined;
  legacy: string | undefined;
}

function checkpointLines(text: string): CheckpointLines | undefined {
  const parsed = parseCheckpoint(text);
  if (!parsed.ok) return undefined;
  const extension = (name: string): string | undefined => parsed.value.extensions.find((line) => line.startsWith(`${name} `))?.slice(name.length + 1);
  const previousLine = extension('previous');
  let previous: string | undefined;
  if (previousLine !== undefined) {
    try {
      const bytes = base64ToBytes(previousLine);
      previous = bytes.length === HASH_BYTES ? bytesToHex(bytes) : '';
    } catch {
      previous = '';
    }
  }
  return { origin: parsed.value.origin, size: parsed.value.size, rootHash: bytesToHex(parsed.value.rootHash), previous, legacy: extension('legacy') };
}

/**
 * Checkpoints in tree-size order, each checked as it is read: checkpoint-hash, checkpoint-signature and
 * checkpoint-chain, and what its text says against its root_hash and tree_size. The signature check opens the note by
 * anchorline's whole checkpoint grammar (as `anchorline verify` does); the chain and root checks read the lines they
 * need by the C2SP grammar alone, so that a checkpoint the grammar refuses still has its links and root checked.
 */
class CheckpointReader {
  private readonly rows: AsyncGenerator<CheckpointRow>;
  private previous: { number: number; checkpointHash: string } | undefined;
  private first: { number: number; logKey: string; origin: string | undefined } | undefined;
  /** tree_size of the last checkpoint read. */
  lastSize = 0;

  private readonly audit: Audit;
  private readonly lastBatch: LastBatch | undefined;

  constructor(client: pg.PoolClient, audit: Audit, lastBatch: LastBatch | undefined) {
    this.audit = audit;
    this.lastBatch = lastBatch;
    this.rows = rowsOf(
      pages(
        async (after: number | undefined) =>
          (
            await client.query<CheckpointRow>(
              `SELECT number, tree_size, root_hash, text, signature, checkpoint_hash, log_key
                 FROM log_checkpoint WHERE tree_size > $1 ORDER BY tree_size LIMIT $2`,
              [after ?? Number.MIN_SAFE_INTEGER, audit.pageRows],
            )
          ).rows,
        (row) => Number(row.tree_size),
        audit.pageRows,
      ),
    );
  }

  async next(): Promise<PendingRoot | undefined> {
    const next = await this.rows.next();
    if (next.done) return undefined;
    const row = next.value;
    const number = Number(row.number);
    const treeSize = Number(row.tree_size);
    const ref = `checkpoint/${number}`;
    for (const check of ['log-root', 'checkpoint-hash', 'checkpoint-signature', 'checkpoint-chain'] as const) this.audit.count(check);
    const lines = checkpointLines(row.text);

    const computed = bytesToHex(checkpointHash(row.text));
    if (computed !== row.checkpoint_hash) this.audit.mismatch('checkpoint-hash', ref, `the text hashes to ${computed}; checkpoint_hash is ${shown(row.checkpoint_hash)}`);

    const signatureProblems = this.signatureProblems(row, lines);
    if (signatureProblems.length > 0) this.audit.mismatch('checkpoint-signature', ref, signatureProblems);

    const chainProblems = this.chainProblems(number, lines);
    if (chainProblems.length > 0) this.audit.mismatch('checkpoint-chain', ref, chainProblems);

    const rootHash = bytesToHex(new Uint8Array(row.root_hash));
    const problems: string[] = [];
    if (lines === undefined) problems.push('the text is not a checkpoint, so it states no root');
    else {
      if (lines.size !== treeSize) problems.push(`the text's tree size is ${lines.size}; tree_size is ${treeSize}`);
      if (lines.rootHash !== rootHash) problems.push(`the text's root is ${lines.rootHash}; root_hash is ${rootHash}`);
    }
    this.previous = { number, checkpointHash: row.checkpoint_hash.toLowerCase() };
    this.lastSize = treeSize;
    return { number, treeSize, rootHash, textRoot: lines?.rootHash, problems };
  }

  private signatureProblems(row: CheckpointRow, lines: CheckpointLines | undefined): string[] {
    const problems: string[] = [];
    const verifier = ed25519NoteVerifierFromKey(row.log_key);
    if (!verifier.ok) problems.push(`log_key is not an Ed25519 verifier key: ${verifier.reason}`);
    else {
      const opened = openLogCheckpoint(`${row.text}\n${row.signature}`, verifier.value);
      if (!opened.ok) problems.push(`the checkpoint does not open under log_key: ${opened.reason}`);
    }
    if (this.first === undefined) this.first = { number: Number(row.number), logKey: row.log_key, origin: lines?.origin };
    else {
      if (row.log_key !== this.first.logKey) problems.push(`log_key is not checkpoint ${this.first.number}'s`);
      if (lines !== undefined && this.first.origin !== undefined && lines.origin !== this.first.origin) problems.push(`the origin is not checkpoint ${this.first.number}'s`);
    }
    if (this.audit.publicKey !== undefined) {
      const key = parseVerifierKey(row.log_key);
      const publicKey = key.ok ? bytesToHex(key.value.publicKey) : undefined;
      if (publicKey !== undefined && publicKey !== this.audit.publicKey) problems.push(`log_key's public key ${publicKey} is not the engine's key ${shown(this.audit.publicKey)}`);
    }
    return problems;
  }

  private chainProblems(number: number, lines: CheckpointLines | undefined): string[] {
    const problems: string[] = [];
    const previous = this.previous;
    const lastBatch = this.lastBatch;
    if (previous !== undefined) {
      if (number !== previous.number + 1) {
        problems.push(`checkpoint ${number} follows checkpoint ${previous.number} in tree-size order; numbers must rise by one as tree sizes rise`);
      }
    } else {
      const expected = lastBatch ? lastBatch.batchNumber + 1 : 1;
      if (number !== expected) problems.push(`the first checkpoint is number ${number}; it should be ${expected}${lastBatch ? `, after batch ${lastBatch.batchNumber}` : ''}`);
    }
    if (lines === undefined) return problems;
    if (previous !== undefined) {
      if (lines.previous === undefined) problems.push(`the text has no previous line; checkpoint ${previous.number}'s checkpoint_hash is ${shown(previous.checkpointHash)}`);
      else if (lines.previous !== previous.checkpointHash) {
        problems.push(`the previous line names ${shown(lines.previous)}; checkpoint ${previous.number}'s checkpoint_hash is ${shown(previous.checkpointHash)}`);
      }
      if (lines.legacy !== undefined) problems.push('the text has a legacy line, which only the first checkpoint may have');
    } else {
      if (lines.previous !== undefined) problems.push('the first checkpoint has a previous line');
      if (lastBatch === undefined) {
        if (lines.legacy !== undefined) problems.push('the text has a legacy line, but no batch exists');
      } else if (lines.legacy === undefined) problems.push(`the text has no legacy line; batch ${lastBatch.batchNumber}'s header_hash is ${shown(lastBatch.headerHash)}`);
      else if (lines.legacy !== lastBatch.headerHash) {
        problems.push(`the legacy line names ${shown(lines.legacy)}; batch ${lastBatch.batchNumber}'s header_hash is ${shown(lastBatch.headerHash)}`);
      }
    }
    return problems;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Witness cosignatures

interface CosignatureRow {
  tree_size: string;
  witness: string;
  line: string;
  signed_at: string;
  /** The checkpoint of tree_size (the foreign key makes it exist). */
  number: string | null;
  text: string | null;
}

async function auditCosignatures(client: pg.PoolClient, audit: Audit): Promise<void> {
  const fetch = async (after: { tree_size: string; witness: string } | undefined): Promise<CosignatureRow[]> =>
    (
      await client.query<CosignatureRow>(
        `SELECT s.tree_size, s.witness, s.line, s.signed_at, c.number, c.text
           FROM log_cosignature s
           LEFT JOIN log_checkpoint c ON c.tree_size = s.tree_size
          ${after === undefined ? '' : 'WHERE (s.tree_size, s.witness) > ($2::bigint, $3::text)'}
          ORDER BY s.tree_size, s.witness
          LIMIT $1`,
        after === undefined ? [audit.pageRows] : [audit.pageRows, after.tree_size, after.witness],
      )
    ).rows;
  for await (const row of rowsOf(pages(fetch, (r) => ({ tree_size: r.tree_size, witness: r.witness }), audit.pageRows))) checkCosignature(row, audit);
}

function checkCosignature(row: CosignatureRow, audit: Audit): void {
  const ref = `cosignature/${Number(row.tree_size)}/${row.witness}`;
  audit.count('cosignature-witness');
  const parsed = row.line.endsWith('\n') ? parseSignatureLine(row.line.slice(0, -1)) : ({ ok: false, reason: 'it does not end in a newline' } as const);
  if (!parsed.ok) {
    audit.count('cosignature');
    audit.mismatch('cosignature', ref, `the line is not a signature line: ${parsed.reason}`);
    return;
  }
  const signature = parsed.value;
  const key = `${signature.name}+${signature.keyId.toString(16).padStart(8, '0')}`;
  const witness = audit.witnesses.find((w) => w.name === signature.name && w.keyId === signature.keyId);
  if (witness === undefined) {
    audit.mismatch('cosignature-witness', ref, `the line is signed by ${key}, which is not a configured witness key (anchor.witnesses)`);
    return;
  }
  audit.count('cosignature');
  const problems: string[] = [];
  if (key !== row.witness) problems.push(`the line is signed by ${key}, not by the row's witness`);
  if (row.text === null) problems.push(`no checkpoint has tree size ${Number(row.tree_size)}`);
  else if (!witness.verify(new TextEncoder().encode(row.text), signature.signature)) problems.push(`the cosignature does not verify over checkpoint ${Number(row.number)}'s text`);
  const stamped = cosignatureTimestamp(signature);
  if (stamped.ok && stamped.value !== Number(row.signed_at)) problems.push(`the line is stamped ${stamped.value}; signed_at is ${Number(row.signed_at)}`);
  if (problems.length > 0) audit.mismatch('cosignature', ref, problems);
}

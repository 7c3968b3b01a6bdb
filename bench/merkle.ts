/**
 * Merkle benchmark on this machine, one core: the batch tree (anchor/merkle.ts) and the one log (anchor/log/) over
 * the same pseudo-random 32-byte leaves.
 *
 *   npm run bench:merkle -- [--leaves 1000000] [--verifications 10000] [--signatures 500] [--others-leaves 50000] [--skip-others]
 *
 * Batch tree:
 *  - leaves/s for leaf hashing + building the tree with every level kept (MerkleTree.fromLeaves), and for the root
 *    alone from precomputed leaf hashes (merkleRoot, one buffer, in place);
 *  - proofs from the kept levels and verifyInclusion, microseconds per proof, at --leaves;
 *  - for context, the same RFC 9162 tree hashed with Node's native OpenSSL SHA-256 (node:crypto; fine here, not in
 *    anchor/, which must run in a browser), and the npm libraries merkletreejs and @openzeppelin/merkle-tree.
 *
 * One log, over the same leaf hashes (its root must equal the batch tree's):
 *  - appends: Frontier.appendLeafHashes with a node sink that only counts (the frontier's own cost), and
 *    appendLeafHashes into a MemoryNodeStore in writes of WRITE_LEAVES, the most one checkpoint close appends with
 *    the default anchor.maxLeaves;
 *  - inclusion proofs read from the MemoryNodeStore, and verifyInclusionProof, at 10^3 and --leaves leaves;
 *  - consistency proofs from a random earlier size to the whole tree, generation and verifyConsistencyProof;
 *  - checkpoints as the anchor worker signs them (anchor/log-bundle.ts grammar with its time and previous lines,
 *    under the engine's default origin): signLogCheckpoint per second, one witness cosignature per second, and
 *    openLogCheckpoint per second with 0 and with 2 cosignatures verified.
 * Bundle sizes are in bench/proof-size.ts (npm run bench:proof-size).
 *
 * The libraries do not build the same tree: merkletreejs has no 0x00/0x01 domain prefixes (we give it SHA-256 from
 * node:crypto, its fastest option), and @openzeppelin/merkle-tree uses keccak256 with sorted pairs. Only build
 * throughput is comparable, not roots. They run over the first --others-leaves leaves: @openzeppelin/merkle-tree
 * alone takes about five minutes for 10^6 leaves on this machine, and their leaves/s hardly depend on the count.
 */
import { createHash } from 'node:crypto';
import { parseArgs } from 'node:util';
import v8 from 'node:v8';
import vm from 'node:vm';
import { ed25519 } from '@noble/curves/ed25519.js';
import { checkpointHash, MerkleTree, merkleRoot, openLogCheckpoint, signLogCheckpoint, verifyInclusion } from '../anchor/index.ts';
import {
  appendLeafHashes,
  consistencyProof,
  ed25519CosignatureVerifier,
  ed25519Cosigner,
  ed25519NoteSigner,
  ed25519NoteVerifier,
  formatSignatureLine,
  Frontier,
  inclusionProof,
  MemoryNodeStore,
  signNote,
  treeRoot,
  verifyConsistencyProof,
  verifyInclusionProof,
} from '../anchor/log/index.ts';
import { defaultLogOrigin } from '../workers/anchor.ts';

const { values } = parseArgs({
  options: {
    leaves: { type: 'string', default: '1000000' },
    verifications: { type: 'string', default: '10000' },
    signatures: { type: 'string', default: '500' },
    'others-leaves': { type: 'string', default: '50000' },
    'skip-others': { type: 'boolean', default: false },
  },
});
const LEAVES = positiveInteger('leaves', values.leaves);
const VERIFICATIONS = positiveInteger('verifications', values.verifications);
const SIGNATURES = positiveInteger('signatures', values.signatures);
const OTHERS_LEAVES = Math.min(LEAVES, positiveInteger('others-leaves', values['others-leaves']));
/** Leaves per MemoryNodeStore write: anchor.maxLeaves' default, the most one checkpoint close appends. */
const WRITE_LEAVES = 10_000;
/** Tree sizes the log's proofs are measured at. */
const LOG_SIZES = [...new Set([Math.min(1_000, LEAVES), LEAVES])];

function positiveInteger(name: string, raw: string): number {
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n <= 0) {
    process.stderr.write(`--${name} must be a positive integer, got ${raw}\n`);
    process.exit(2);
  }
  return n;
}

/** xorshift32 from a fixed seed: every run and every library sees the same leaves and the same proof indices. */
function xorshift(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

function makeLeaves(count: number): Uint8Array[] {
  const next = xorshift(0x9e3779b9);
  const leaves: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    const leaf = new Uint8Array(32);
    const words = new DataView(leaf.buffer);
    for (let j = 0; j < 32; j += 4) words.setUint32(j, next(), true);
    leaves.push(leaf);
  }
  return leaves;
}

/** `count` leaf indices below `size`, the last leaf (the right edge, the shortest path) first. */
function proofIndices(size: number, count: number, seed: number): number[] {
  const next = xorshift(seed);
  return Array.from({ length: count }, (_, i) => (i === 0 ? size - 1 : next() % size));
}

function time<T>(fn: () => T): { result: T; ms: number } {
  const start = performance.now();
  const result = fn();
  return { result, ms: performance.now() - start };
}

async function timeAsync<T>(fn: () => Promise<T>): Promise<{ result: T; ms: number }> {
  const start = performance.now();
  const result = await fn();
  return { result, ms: performance.now() - start };
}

const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');
const perSecond = (count: number, ms: number, unit: string): string => `${fmt((count / ms) * 1000)} ${unit}/s`;
const microsEach = (count: number, ms: number, unit: string): string => `${((ms * 1000) / count).toFixed(2)} µs/${unit}`;
const range = (xs: number[]): string => (Math.min(...xs) === Math.max(...xs) ? String(xs[0]) : `${Math.min(...xs)}..${Math.max(...xs)}`);

/** Rows of [what, tree size, figure, note]; the first column and the note left-aligned, the others right-aligned. */
function printTable(title: string, rows: string[][]): void {
  const header = ['operation', 'leaves', 'figure', 'note'];
  const all = [header, ...rows];
  const widths = header.map((_, c) => Math.max(...all.map((row) => (row[c] ?? '').length)));
  const line = (row: string[]): string =>
    row.map((cell, c) => (c === 0 || c === row.length - 1 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  ').trimEnd();
  console.log(`\n${title}`);
  console.log(`  ${line(header)}`);
  for (const row of rows) console.log(`  ${line(row)}`);
}

/** RFC 9162 tree with node:crypto, level by level, as a native reference point. */
function nativeRoot(leaves: Uint8Array[]): Uint8Array {
  let level: Uint8Array[] = leaves.map((leaf) => createHash('sha256').update(Uint8Array.of(0)).update(leaf).digest());
  while (level.length > 1) {
    const next: Uint8Array[] = [];
    for (let i = 0; i + 1 < level.length; i += 2) {
      next.push(createHash('sha256').update(Uint8Array.of(1)).update(level[i]!).update(level[i + 1]!).digest());
    }
    if (level.length % 2 === 1) next.push(level[level.length - 1]!);
    level = next;
  }
  return level[0]!;
}

/** A full collection before and after the store is built, so the heap figure is what the store holds, not garbage. */
v8.setFlagsFromString('--expose-gc');
const collectGarbage = vm.runInNewContext('gc') as () => void;

const sameBytes = (a: Uint8Array, b: Uint8Array): boolean => Buffer.compare(a, b) === 0;

console.log(`Merkle benchmark: ${fmt(LEAVES)} leaves of 32 bytes, node ${process.version}, one core`);
const leaves = makeLeaves(LEAVES);

// ---------------------------------------------------------------------------------------------------------------
// Batch tree

// Warm up the JIT on a small tree so the timed run measures steady-state code.
MerkleTree.fromLeaves(leaves.slice(0, 50_000)).root();
const batchRows: string[][] = [];
const built = time(() => MerkleTree.fromLeaves(leaves));
const tree = built.result;
const root = tree.root();
batchRows.push(['MerkleTree.fromLeaves (leaf hashing + build, all levels kept)', fmt(LEAVES), perSecond(LEAVES, built.ms, 'leaves'), `${(built.ms / 1000).toFixed(2)} s`]);
const leafHashes = Array.from({ length: LEAVES }, (_, i) => tree.leafHash(i));
const rootOnly = time(() => merkleRoot(leafHashes));
if (!sameBytes(rootOnly.result, root)) throw new Error('merkleRoot and MerkleTree disagree');
batchRows.push(['merkleRoot (from leaf hashes, in place)', fmt(LEAVES), perSecond(LEAVES, rootOnly.ms, 'leaves'), `${(rootOnly.ms / 1000).toFixed(2)} s`]);
{
  const indices = proofIndices(LEAVES, VERIFICATIONS, 0x51ed270b);
  const proofs = time(() => indices.map((index) => tree.inclusionProof(index)));
  const verified = time(() => indices.filter((index, i) => verifyInclusion(leafHashes[index]!, index, LEAVES, proofs.result[i]!, root)).length);
  if (verified.result !== VERIFICATIONS) throw new Error(`${VERIFICATIONS - verified.result} proofs failed to verify`);
  const lengths = proofs.result.map((proof) => proof.length);
  batchRows.push(['MerkleTree.inclusionProof (from the kept levels)', fmt(LEAVES), microsEach(VERIFICATIONS, proofs.ms, 'proof'), `${range(lengths)} hashes`]);
  batchRows.push(['verifyInclusion', fmt(LEAVES), microsEach(VERIFICATIONS, verified.ms, 'proof'), `${fmt(VERIFICATIONS)} proofs`]);
}
const native = time(() => nativeRoot(leaves));
if (!sameBytes(native.result, root)) throw new Error('native reference root differs');
batchRows.push(['node:crypto createHash, level by level (same root; not browser-safe)', fmt(LEAVES), perSecond(LEAVES, native.ms, 'leaves'), `${(native.ms / 1000).toFixed(2)} s`]);

if (!values['skip-others']) {
  // Their own tree shapes: roots differ by design, only build throughput compares.
  const some = leaves.slice(0, OTHERS_LEAVES);
  try {
    const { MerkleTree: MerkleTreeJs } = await import('merkletreejs');
    const sha256 = (data: Buffer): Buffer => createHash('sha256').update(data).digest();
    const buffers = some.map((leaf) => Buffer.from(leaf.buffer, leaf.byteOffset, leaf.byteLength));
    const result = time(() => new MerkleTreeJs(buffers, sha256, { hashLeaves: true }).getRoot());
    batchRows.push(['merkletreejs 0.6 (SHA-256 from node:crypto, no domain prefixes)', fmt(OTHERS_LEAVES), perSecond(OTHERS_LEAVES, result.ms, 'leaves'), 'build only, other tree']);
  } catch (error) {
    batchRows.push(['merkletreejs', '', 'not run', (error as Error).message]);
  }
  try {
    const { SimpleMerkleTree, StandardMerkleTree } = await import('@openzeppelin/merkle-tree');
    const hexLeaves = some.map((leaf) => `0x${Buffer.from(leaf).toString('hex')}`);
    const simple = time(() => SimpleMerkleTree.of(hexLeaves).root);
    batchRows.push(['@openzeppelin/merkle-tree 1.0 SimpleMerkleTree (keccak256, sorted pairs)', fmt(OTHERS_LEAVES), perSecond(OTHERS_LEAVES, simple.ms, 'leaves'), 'build only, other tree']);
    const standard = time(() => StandardMerkleTree.of(hexLeaves.map((leaf) => [leaf]), ['bytes32']).root);
    batchRows.push(['@openzeppelin/merkle-tree 1.0 StandardMerkleTree (ABI leaves, double keccak)', fmt(OTHERS_LEAVES), perSecond(OTHERS_LEAVES, standard.ms, 'leaves'), 'build only, other tree']);
  } catch (error) {
    batchRows.push(['@openzeppelin/merkle-tree', '', 'not run', (error as Error).message]);
  }
}
printTable('Batch tree (anchor/merkle.ts: RFC 9162, SHA-256 from @noble/hashes and its own fixed-size SHA-256)', batchRows);

// ---------------------------------------------------------------------------------------------------------------
// One log

const logRows: string[][] = [];
{
  // Warm-up, then the frontier alone: the sink only counts the nodes it is told of.
  Frontier.empty().appendLeafHashes(leafHashes.slice(0, 50_000), () => undefined);
  let reported = 0;
  const appended = time(() => Frontier.empty().appendLeafHashes(leafHashes, () => void (reported += 1)));
  if (!sameBytes(appended.result.root(), root)) throw new Error("the log's root differs from the batch tree's");
  logRows.push(['Frontier.appendLeafHashes, counting node sink', fmt(LEAVES), perSecond(LEAVES, appended.ms, 'leaves'), `${fmt(reported)} nodes reported`]);
}

/** The log of the first `size` leaves in a MemoryNodeStore, appended as the anchor worker does, WRITE_LEAVES at a time. */
async function buildLog(size: number): Promise<{ store: MemoryNodeStore; root: Uint8Array; ms: number; heapBytes: number }> {
  const store = new MemoryNodeStore();
  collectGarbage();
  const heapBefore = process.memoryUsage().heapUsed;
  let frontier = Frontier.empty();
  const { ms } = await timeAsync(async () => {
    for (let at = 0; at < size; at += WRITE_LEAVES) frontier = await appendLeafHashes(store, frontier, leafHashes.slice(at, Math.min(size, at + WRITE_LEAVES)));
  });
  if (!sameBytes(frontier.root(), merkleRoot(leafHashes.slice(0, size)))) throw new Error(`the ${size}-leaf log's root differs from the batch tree's`);
  collectGarbage();
  return { store, root: frontier.root(), ms, heapBytes: process.memoryUsage().heapUsed - heapBefore };
}

// Warm-up of the store's code paths, so the small log is not timed while the JIT is still compiling them.
await buildLog(Math.min(LEAVES, 50_000));
for (const size of LOG_SIZES) {
  const log = await buildLog(size);
  const nodes = log.store.nodeCount;
  logRows.push([
    `appendLeafHashes -> MemoryNodeStore, ${fmt(WRITE_LEAVES)} leaves per write`,
    fmt(size),
    perSecond(size, log.ms, 'leaves'),
    size === LEAVES ? `${fmt(nodes)} nodes, heap +${fmt(log.heapBytes / 2 ** 20)} MiB (~${fmt(log.heapBytes / nodes)} B/node)` : `${fmt(nodes)} nodes`,
  ]);

  const indices = proofIndices(size, VERIFICATIONS, 0x2545f491 + size);
  const proofs = await timeAsync(async () => {
    const out: Uint8Array[][] = [];
    for (const index of indices) out.push(await inclusionProof(log.store, index, size));
    return out;
  });
  const verified = time(() => indices.filter((index, i) => verifyInclusionProof(leafHashes[index]!, index, size, proofs.result[i]!, log.root).ok).length);
  if (verified.result !== VERIFICATIONS) throw new Error(`${VERIFICATIONS - verified.result} inclusion proofs failed to verify at ${size} leaves`);
  const inclusionLengths = proofs.result.map((proof) => proof.length);
  logRows.push(['inclusionProof from the MemoryNodeStore', fmt(size), microsEach(VERIFICATIONS, proofs.ms, 'proof'), `${range(inclusionLengths)} hashes`]);
  logRows.push(['verifyInclusionProof', fmt(size), microsEach(VERIFICATIONS, verified.ms, 'proof'), `${fmt(VERIFICATIONS)} proofs`]);

  // Old sizes anywhere in [1, size): the old roots are read before the clock starts, as a verifier holds them.
  if (size > 1) {
    const oldSizes = proofIndices(size - 1, VERIFICATIONS, 0x6c8e9cf5 + size).map((m) => m + 1);
    const oldRoots: Uint8Array[] = [];
    for (const m of oldSizes) oldRoots.push(await treeRoot(log.store, m));
    const consistency = await timeAsync(async () => {
      const out: Uint8Array[][] = [];
      for (const m of oldSizes) out.push(await consistencyProof(log.store, m, size));
      return out;
    });
    const checked = time(() => oldSizes.filter((m, i) => verifyConsistencyProof(m, size, consistency.result[i]!, oldRoots[i]!, log.root).ok).length);
    if (checked.result !== VERIFICATIONS) throw new Error(`${VERIFICATIONS - checked.result} consistency proofs failed to verify at ${size} leaves`);
    const lengths = consistency.result.map((proof) => proof.length);
    logRows.push(['consistencyProof (random old size -> this size)', fmt(size), microsEach(VERIFICATIONS, consistency.ms, 'proof'), `${range(lengths)} hashes`]);
    logRows.push(['verifyConsistencyProof', fmt(size), microsEach(VERIFICATIONS, checked.ms, 'proof'), `${fmt(VERIFICATIONS)} proofs`]);
  }
}

{
  // Keys from fixed seeds; the origin is the one the engine gives a log when anchor.origin is not set.
  const seed = (byte: number): Uint8Array => new Uint8Array(32).fill(byte);
  const logPublicKey = ed25519.getPublicKey(seed(1));
  const origin = defaultLogOrigin(logPublicKey);
  const logSigner = ed25519NoteSigner(origin, seed(1));
  const logVerifier = ed25519NoteVerifier(origin, logPublicKey);
  const witnessNames = ['witness.example.org/w001', 'witness.example.org/w002'];
  const cosigners = witnessNames.map((name, i) => ed25519Cosigner(name, seed(2 + i), () => 1_767_225_600 + i));
  const cosignatureVerifiers = witnessNames.map((name, i) => ed25519CosignatureVerifier(name, ed25519.getPublicKey(seed(2 + i))));
  const startedAt = Date.parse('2026-01-01T00:00:00.000Z');
  // Each checkpoint as the anchor worker makes it: the next size, a time, and the hash of the previous text.
  const checkpointAt = (i: number, previousText: string) => ({
    origin,
    size: LEAVES + i * WRITE_LEAVES,
    rootHash: root,
    time: new Date(startedAt + i * 5_000).toISOString(),
    previous: checkpointHash(previousText),
  });
  const warm = signLogCheckpoint(checkpointAt(0, 'genesis\n'), logSigner);
  const signed = time(() => {
    let note = warm;
    for (let i = 1; i <= SIGNATURES; i++) note = signLogCheckpoint(checkpointAt(i, note.slice(0, note.indexOf('\n\n') + 1)), logSigner);
    return note;
  });
  logRows.push(['signLogCheckpoint (format with time + previous, Ed25519 sign)', '', perSecond(SIGNATURES, signed.ms, 'checkpoints'), `${microsEach(SIGNATURES, signed.ms, 'checkpoint')}`]);

  const note = signed.result;
  const text = note.slice(0, note.indexOf('\n\n') + 1);
  const textBytes = new TextEncoder().encode(text);
  const cosigned = time(() => {
    let line = '';
    for (let i = 0; i < SIGNATURES; i++) {
      line = formatSignatureLine({ name: cosigners[0]!.name, keyId: cosigners[0]!.keyId, signature: cosigners[0]!.sign(textBytes) });
    }
    return line;
  });
  logRows.push(['one witness cosignature (cosignature/v1 sign + line)', '', perSecond(SIGNATURES, cosigned.ms, 'cosignatures'), microsEach(SIGNATURES, cosigned.ms, 'cosignature')]);

  const opened = time(() => {
    let ok = 0;
    for (let i = 0; i < SIGNATURES; i++) if (openLogCheckpoint(note, logVerifier).ok) ok++;
    return ok;
  });
  if (opened.result !== SIGNATURES) throw new Error('a checkpoint did not open');
  logRows.push(['openLogCheckpoint, log signature only', '', perSecond(SIGNATURES, opened.ms, 'checkpoints'), microsEach(SIGNATURES, opened.ms, 'checkpoint')]);

  const witnessed = signNote(text, [logSigner, ...cosigners]);
  const openedWitnessed = time(() => {
    let ok = 0;
    for (let i = 0; i < SIGNATURES; i++) {
      const result = openLogCheckpoint(witnessed, logVerifier, cosignatureVerifiers);
      if (result.ok && result.value.cosigners.length === 2) ok++;
    }
    return ok;
  });
  if (openedWitnessed.result !== SIGNATURES) throw new Error('a cosigned checkpoint did not open with both cosignatures');
  logRows.push(['openLogCheckpoint, log signature + 2 cosignatures', '', perSecond(SIGNATURES, openedWitnessed.ms, 'checkpoints'), microsEach(SIGNATURES, openedWitnessed.ms, 'checkpoint')]);
}
printTable(`One log (anchor/log: frontier, MemoryNodeStore, RFC 9162 proofs, C2SP checkpoints); ${fmt(VERIFICATIONS)} proofs, ${fmt(SIGNATURES)} signatures per row`, logRows);

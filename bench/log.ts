/**
 * One-log benchmark on this machine, one core.
 *
 *   npx tsx bench/log.ts [--appends 200000] [--verifications 5000] [--signatures 2000] [--cosignatures 1]
 *
 * Prints:
 *  - the size of a one-log proof bundle (preimage, index, inclusion proof, signed checkpoint, k cosignatures) for
 *    10^3, 10^6 and 10^9 leaves, in binary and text encodings, against the target of 1.5 KiB at 10^9;
 *  - appends/s to a frontier with every completed node written to a MemoryNodeStore;
 *  - inclusion and consistency verification, microseconds per proof, at 10^3, 10^6 and 10^9 leaves;
 *  - checkpoint signing and opening per second (Ed25519 note signature, plus cosigning).
 *
 * Proofs at 10^9 leaves come from a real RFC 9162 tree whose leaves all have the same hash: every perfect node of a
 * level then has one hash, so any node is computed in O(level) and no billion-leaf tree is built. Verification does
 * the same hashing whatever the hashes are, so its timings hold for any tree of that size.
 */
import { parseArgs } from 'node:util';
import { leafHash, nodeHash } from '../anchor/index.ts';
import {
  appendLeafHashes,
  consistencyProof,
  ed25519CosignatureVerifier,
  ed25519Cosigner,
  ed25519NoteSigner,
  ed25519NoteVerifier,
  Frontier,
  inclusionProof,
  MemoryNodeStore,
  openCheckpoint,
  proofBundleSize,
  signCheckpoint,
  treeRoot,
  verifyConsistencyProof,
  verifyInclusionProof,
  type NodeId,
  type NodeSource,
} from '../anchor/log/index.ts';
import { ed25519 } from '@noble/curves/ed25519.js';

const { values } = parseArgs({
  options: {
    appends: { type: 'string', default: '200000' },
    verifications: { type: 'string', default: '5000' },
    signatures: { type: 'string', default: '2000' },
    cosignatures: { type: 'string', default: '1' },
  },
});
const APPENDS = Number(values.appends);
const VERIFICATIONS = Number(values.verifications);
const SIGNATURES = Number(values.signatures);
const COSIGNATURES = Number(values.cosignatures);
const SIZES = [1e3, 1e6, 1e9];
const TARGET_BYTES = 1536;

const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');

console.log(`Proof bundle size (k = ${COSIGNATURES} cosignature(s); target ${TARGET_BYTES} bytes at 10^9 leaves)`);
console.log('  leaves         proof  preimage  index  proof bytes  checkpoint  cosigs   binary total   text total');
for (const treeSize of SIZES) {
  for (const k of [0, COSIGNATURES]) {
    if (k === 0 && COSIGNATURES === 0 && treeSize !== SIZES[0]) continue;
    const s = proofBundleSize({ treeSize, cosignatures: k });
    const mark = (total: number): string => `${String(total).padStart(5)}${treeSize === 1e9 ? (total <= TARGET_BYTES ? ' ok' : ' >T') : '   '}`;
    console.log(
      `  ${String(treeSize).padEnd(12)} ${String(s.proofHashes).padStart(5)}  ${String(s.binary.preimage).padStart(8)}  ${String(s.binary.leafIndex).padStart(5)}  ` +
        `${String(s.binary.inclusionProof).padStart(5)}/${String(s.text.inclusionProof).padEnd(5)}  ${String(s.binary.checkpoint).padStart(10)}  ` +
        `${String(s.binary.cosignatures).padStart(6)}  ${mark(s.binary.total).padStart(13)}  ${mark(s.text.total).padStart(11)}   (k=${k})`,
    );
  }
}
{
  const s = proofBundleSize({ treeSize: 1e9, cosignatures: COSIGNATURES });
  const withoutPreimage = s.binary.total - s.binary.preimage;
  // The preimage is the leaf itself (~400 bytes of JCS with hex digests); the rest is what the log adds.
  console.log(`  at 10^9, binary: index, proof, checkpoint and cosignatures without the preimage: ${withoutPreimage} bytes`);
}

// Appends: leaf hashes prepared first, so the timing is the frontier and the store.
{
  const leaves = Array.from({ length: APPENDS }, (_, i) => leafHash(new Uint8Array([i & 0xff, (i >>> 8) & 0xff, (i >>> 16) & 0xff, i >>> 24])));
  const store = new MemoryNodeStore();
  let frontier = Frontier.empty();
  const start = performance.now();
  for (let at = 0; at < leaves.length; at += 1000) frontier = await appendLeafHashes(store, frontier, leaves.slice(at, at + 1000));
  const ms = performance.now() - start;
  console.log(`\nAppends: ${fmt((APPENDS / ms) * 1000)} leaves/s into a MemoryNodeStore, 1,000 per write (${fmt(store.nodeCount)} nodes, ${(ms / 1000).toFixed(2)} s)`);
}

/** The tree of any size whose leaves all hash alike (see the header comment). */
function uniformTree(leaf: Uint8Array): NodeSource {
  const byLevel = [leaf];
  return {
    readNodes: async (ids: readonly NodeId[]) =>
      ids.map((id) => {
        while (byLevel.length <= id.level) byLevel.push(nodeHash(byLevel[byLevel.length - 1]!, byLevel[byLevel.length - 1]!));
        return byLevel[id.level]!;
      }),
  };
}

console.log('\nVerification, microseconds per proof');
{
  const leaf = leafHash(new TextEncoder().encode('bench'));
  const source = uniformTree(leaf);
  for (const size of SIZES) {
    const root = await treeRoot(source, size);
    const index = Math.floor(size / 3);
    const proof = await inclusionProof(source, index, size);
    let start = performance.now();
    for (let i = 0; i < VERIFICATIONS; i++) if (!verifyInclusionProof(leaf, index, size, proof, root).ok) throw new Error('inclusion proof failed');
    const inclusionUs = ((performance.now() - start) * 1000) / VERIFICATIONS;
    const m = Math.floor(size / 2) + 1;
    const oldRoot = await treeRoot(source, m);
    const cproof = await consistencyProof(source, m, size);
    start = performance.now();
    for (let i = 0; i < VERIFICATIONS; i++) if (!verifyConsistencyProof(m, size, cproof, oldRoot, root).ok) throw new Error('consistency proof failed');
    const consistencyUs = ((performance.now() - start) * 1000) / VERIFICATIONS;
    console.log(
      `  ${String(size).padEnd(12)} inclusion (${proof.length} hashes) ${inclusionUs.toFixed(1)} us   consistency ${m} -> ${size} (${cproof.length} hashes) ${consistencyUs.toFixed(1)} us`,
    );
  }
}

console.log('\nCheckpoints');
{
  const origin = 'anchorline.example/log';
  const logSeed = new Uint8Array(32).fill(1);
  const log = ed25519NoteSigner(origin, logSeed);
  const logVerifier = ed25519NoteVerifier(origin, ed25519.getPublicKey(logSeed));
  const witnessSeed = new Uint8Array(32).fill(2);
  const witness = ed25519Cosigner('witness.example.org/w1', witnessSeed, () => 1_750_000_000);
  const witnessVerifier = ed25519CosignatureVerifier('witness.example.org/w1', ed25519.getPublicKey(witnessSeed));
  const rootHash = leafHash(new Uint8Array([1]));
  let start = performance.now();
  let note = '';
  for (let i = 0; i < SIGNATURES; i++) note = signCheckpoint({ origin, size: 1e9 + i, rootHash, extensions: [] }, log);
  let ms = performance.now() - start;
  console.log(`  signing (log key):            ${fmt((SIGNATURES / ms) * 1000)} checkpoints/s`);
  start = performance.now();
  for (let i = 0; i < SIGNATURES; i++) note = signCheckpoint({ origin, size: 1e9 + i, rootHash, extensions: [] }, log, [witness]);
  ms = performance.now() - start;
  console.log(`  signing + one cosignature:    ${fmt((SIGNATURES / ms) * 1000)} checkpoints/s`);
  start = performance.now();
  for (let i = 0; i < SIGNATURES; i++) {
    if (!openCheckpoint(note, { log: logVerifier, origin, cosigners: [witnessVerifier] }).ok) throw new Error('checkpoint did not open');
  }
  ms = performance.now() - start;
  console.log(`  opening (log + cosignature):  ${fmt((SIGNATURES / ms) * 1000)} checkpoints/s`);
}

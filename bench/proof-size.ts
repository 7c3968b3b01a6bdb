/**
 * The size of an anchorline-proof/2 bundle at 10^3, 10^6 and 10^9 leaves, as the engine serves it and as the bytes a
 * verifier needs, and the time to verify one.
 *
 *   npm run bench:proof-size -- [--verifications 50]
 *
 * Every bundle is built as api/proofs.ts builds it, for leaf 0 (the longest inclusion proof of its tree):
 *  - the leaf: TYPICAL_PREIMAGE (anchor/log/size.ts) with a fresh salt from newSalt();
 *  - the inclusion proof read from the log. At 10^3 and 10^6 leaves the log is real and in memory: leaf 0 is that
 *    preimage's leaf hash, every other leaf the hash of its index, appended in writes of 10,000 leaves to a
 *    MemoryNodeStore. A billion leaves do not fit in memory, so at 10^9 every leaf is the preimage's leaf hash: all
 *    perfect subtrees of one level then have one hash, any node is computed in O(level), and the proof for leaf 0
 *    is a true RFC 9162 proof of the right length that verifies. Its hashes are not those of a log of distinct
 *    leaves, but the size of a proof depends on the count of its hashes, never on their values;
 *  - the checkpoint note as store/log.ts checkpointNote returns it: the text the anchor worker signs (origin, size,
 *    root, `time` and `previous` lines, the previous being a real checkpoint WRITE_LEAVES leaves earlier) under the
 *    engine's default origin, a blank line, the log's signature line, then 0 or 2 witness cosignature lines
 *    (cosignature/v1, witness names of 24 bytes as size.ts assumes), in witness order;
 *  - the log key, and the anchor: `local`, or `evm` with a signed anchor claim.
 *
 * Two figures per bundle:
 *  - SERVED JSON: the UTF-8 bytes of JSON.stringify(bundle), what GET /proofs/... sends (the route has no response
 *    schema, so Fastify serializes with JSON.stringify; the em dash of a signature line is 3 bytes, \n is 2);
 *  - BINARY: what a verifier must be given, without JSON: the preimage's JCS bytes, an 8-byte leaf index, 32 bytes
 *    per proof hash, the checkpoint note's UTF-8 bytes (cosignature lines included), and the claim when anchored.
 * beside the estimate of anchor/log/size.ts proofBundleSize for the same origin, witness names and proof.
 */
import { parseArgs } from 'node:util';
import {
  bytesToBase64,
  checkpointHash,
  generateSigningKey,
  leafBytes,
  leafHash,
  LOG_PROOF_FORMAT,
  newSalt,
  nodeHash,
  parseStrictJson,
  provenanceLeafHash,
  signAnchorClaim,
  signLogCheckpoint,
  verifyLogBundle,
  type LeafPreimage,
  type LogProofAnchor,
  type LogProofBundle,
} from '../anchor/index.ts';
import {
  appendLeafHashes,
  cosignatureVerifierFromKey,
  ed25519Cosigner,
  ed25519NoteSigner,
  formatCosignerKey,
  formatSignatureLine,
  formatVerifierKey,
  Frontier,
  inclusionProof,
  MemoryNodeStore,
  proofBundleSize,
  SIGNATURE_TYPE_ED25519,
  treeRoot,
  TYPICAL_PREIMAGE,
  type NodeId,
  type NodeSource,
} from '../anchor/log/index.ts';
import { defaultLogOrigin } from '../workers/anchor.ts';

const { values } = parseArgs({ options: { verifications: { type: 'string', default: '50' } } });
const VERIFICATIONS = Number(values.verifications);
if (!Number.isSafeInteger(VERIFICATIONS) || VERIFICATIONS <= 0) {
  process.stderr.write(`--verifications must be a positive integer, got ${values.verifications}\n`);
  process.exit(2);
}
/** Leaves per checkpoint: anchor.maxLeaves' default, how far back the previous checkpoint lies. */
const WRITE_LEAVES = 10_000;
const SIZES = [1e3, 1e6, 1e9];
/** Largest tree built for real in memory; larger ones are the uniform tree of the header comment. */
const LARGEST_REAL_LOG = 1e6;
const WITNESS_NAMES = ['witness.example.org/w001', 'witness.example.org/w002'];

const utf8Length = (text: string): number => Buffer.byteLength(text, 'utf8');
const jsonLength = (value: unknown): number => utf8Length(JSON.stringify(value));
const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');

/** A real log of `size` leaves in memory: leaf 0 is `first`, leaf i the hash of i as 8 bytes. */
async function realLog(size: number, first: Uint8Array): Promise<NodeSource> {
  const store = new MemoryNodeStore();
  let frontier = Frontier.empty();
  const index = new DataView(new ArrayBuffer(8));
  for (let at = 0; at < size; at += WRITE_LEAVES) {
    const hashes: Uint8Array[] = [];
    for (let i = at; i < Math.min(size, at + WRITE_LEAVES); i++) {
      index.setBigUint64(0, BigInt(i));
      hashes.push(i === 0 ? first : leafHash(new Uint8Array(index.buffer)));
    }
    frontier = await appendLeafHashes(store, frontier, hashes);
  }
  return store;
}

/** The tree of any size whose leaves are all `leaf` (see the header comment). */
function uniformLog(leaf: Uint8Array): NodeSource {
  const byLevel = [leaf];
  return {
    readNodes: async (ids: readonly NodeId[]) =>
      ids.map((id) => {
        while (byLevel.length <= id.level) byLevel.push(nodeHash(byLevel.at(-1)!, byLevel.at(-1)!));
        return byLevel[id.level]!.slice();
      }),
  };
}

/** Keys of the log and its witnesses, fresh per run as the engine's are per install. */
const logKeyPair = generateSigningKey();
const origin = defaultLogOrigin(logKeyPair.publicKey);
const logSigner = ed25519NoteSigner(origin, logKeyPair.privateKey);
const logKey = formatVerifierKey(origin, SIGNATURE_TYPE_ED25519, logKeyPair.publicKey);
const witnesses = WITNESS_NAMES.map((name) => {
  const { privateKey, publicKey } = generateSigningKey();
  return { name, signer: ed25519Cosigner(name, privateKey), key: formatCosignerKey(name, publicKey) };
});
for (const witness of witnesses) if (!cosignatureVerifierFromKey(witness.key).ok) throw new Error('a witness key does not read back');

const preimage: LeafPreimage = { ...TYPICAL_PREIMAGE, salt: newSalt() };
const preimageLeafHash = provenanceLeafHash(preimage);

interface Row {
  size: number;
  cosignatures: number;
  driver: LogProofAnchor['driver'];
  hashes: number;
  json: { preimage: number; index: number; proof: number; checkpoint: number; cosignatures: number; logKey: number; anchor: number; framing: number; total: number };
  binary: { preimage: number; index: number; proof: number; checkpoint: number; cosignatures: number; claim: number; total: number };
  estimate: number;
  verifyMs: number | undefined;
  /** Digits of the largest leaf index whose proof is as long as leaf 0's. */
  worstIndexDigits: number;
}

const rows: Row[] = [];
const startedAt = performance.now();
for (const size of SIZES) {
  const log = size <= LARGEST_REAL_LOG ? await realLog(size, preimageLeafHash) : uniformLog(preimageLeafHash);
  const proof = await inclusionProof(log, 0, size);
  const previousSize = Math.max(1, size - WRITE_LEAVES);
  const time = new Date();
  const previousNote = signLogCheckpoint(
    { origin, size: previousSize, rootHash: await treeRoot(log, previousSize), time: new Date(time.getTime() - 5_000).toISOString() },
    logSigner,
  );
  const previousText = previousNote.slice(0, previousNote.indexOf('\n\n') + 1);
  const note = signLogCheckpoint({ origin, size, rootHash: await treeRoot(log, size), time: time.toISOString(), previous: checkpointHash(previousText) }, logSigner);
  const text = note.slice(0, note.indexOf('\n\n') + 1);
  // Cosignature lines as POST /log/cosignature stores them, in the order checkpointNote reads them (by witness).
  const cosignatureLines = witnesses
    .map((w) => ({ id: w.name, line: formatSignatureLine({ name: w.name, keyId: w.signer.keyId, signature: w.signer.sign(new TextEncoder().encode(text)) }) }))
    .sort((a, b) => (a.id < b.id ? -1 : 1))
    .map((c) => c.line);
  const claim = signAnchorClaim(
    {
      origin,
      checkpointNumber: Math.ceil(size / WRITE_LEAVES),
      treeSize: size,
      checkpointHash: checkpointHash(text),
      chainId: 1,
      contract: `0x${'ab'.repeat(20)}`,
      txHash: `0x${'cd'.repeat(32)}`,
      blockNumber: 21_000_000,
      blockHash: `0x${'ef'.repeat(32)}`,
    },
    logSigner,
  );

  for (const [cosignatures, driver] of [[0, 'local'], [2, 'local'], [2, 'evm']] as const) {
    const cosignatureText = cosignatureLines.slice(0, cosignatures).join('');
    const anchor: LogProofAnchor = driver === 'local' ? { driver } : { driver, claim };
    // Member order as api/proofs.ts writes it; JSON's length does not depend on it.
    const bundle: LogProofBundle = {
      format: LOG_PROOF_FORMAT,
      leaf: { preimage, index: 0 },
      inclusionProof: proof.map(bytesToBase64),
      checkpoint: note + cosignatureText,
      logKey,
      anchor,
    };
    const served = JSON.stringify(bundle);
    const options = { logKey, witnesses: witnesses.slice(0, cosignatures).map((w) => w.key) };
    const verdict = verifyLogBundle(parseStrictJson(served), options);
    if (!verdict.ok) throw new Error(`the ${size}-leaf bundle does not verify: ${verdict.checks.filter((c) => !c.ok).map((c) => `${c.name}: ${c.detail}`).join('; ')}`);
    let verifyMs: number | undefined;
    if (driver === 'local') {
      // As `anchorline verify` does: read the served text strictly, then verify.
      const start = performance.now();
      for (let i = 0; i < VERIFICATIONS; i++) verifyLogBundle(parseStrictJson(served), options);
      verifyMs = (performance.now() - start) / VERIFICATIONS;
    }

    // Each JSON part is its value's own JSON text; escapes (\n) count, the member names and punctuation do not.
    const noteJson = jsonLength(bundle.checkpoint);
    const json = {
      preimage: jsonLength(preimage),
      index: jsonLength(0),
      proof: jsonLength(bundle.inclusionProof),
      checkpoint: jsonLength(note),
      cosignatures: noteJson - jsonLength(note),
      logKey: jsonLength(logKey),
      anchor: jsonLength(anchor),
      framing: 0,
      total: utf8Length(served),
    };
    json.framing = json.total - (json.preimage + json.index + json.proof + noteJson + json.logKey + json.anchor);
    const binaryParts = {
      preimage: leafBytes(preimage).length,
      index: 8,
      proof: 32 * proof.length,
      checkpoint: utf8Length(note),
      cosignatures: utf8Length(cosignatureText),
      claim: driver === 'evm' ? utf8Length(claim) : 0,
    };
    const binary = { ...binaryParts, total: Object.values(binaryParts).reduce((a, b) => a + b, 0) };
    const estimate = proofBundleSize({ treeSize: size, cosignatures, origin, cosignerNameBytes: WITNESS_NAMES[0]!.length, preimage }).binary.total;
    const longest = 2 ** Math.floor(Math.log2(size - 1));
    rows.push({ size, cosignatures, driver, hashes: proof.length, json, binary, estimate, verifyMs, worstIndexDigits: String(longest - 1).length });
  }
}
const elapsed = (performance.now() - startedAt) / 1000;

/** Prints rows of cells, the first `left` columns left-aligned and the rest right-aligned. */
function printTable(header: string[], cells: string[][], left: number): void {
  const all = [header, ...cells];
  const widths = header.map((_, c) => Math.max(...all.map((row) => row[c]!.length)));
  for (const row of all) console.log(`  ${row.map((cell, c) => (c < left ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  ')}`);
}

const label = (r: Row): string[] => [`10^${Math.round(Math.log10(r.size))}`, String(r.cosignatures), r.driver, String(r.hashes)];
console.log(`anchorline-proof/2 bundle size for leaf 0 (longest proof), origin ${origin} (${origin.length} bytes), built in ${elapsed.toFixed(1)} s, node ${process.version}`);
console.log('\nSERVED JSON, bytes: UTF-8 of JSON.stringify(bundle) as GET /proofs/{type}/{id}/_history/{vid} sends it: the SERVED column is the size a client receives');
printTable(
  ['leaves', 'k', 'driver', 'hashes', 'preimage', 'index', 'proof', 'checkpoint', 'cosigs', 'logKey', 'anchor', 'names+punct', 'SERVED', 'verify ms'],
  rows.map((r) => [
    ...label(r),
    ...[r.json.preimage, r.json.index, r.json.proof, r.json.checkpoint, r.json.cosignatures, r.json.logKey, r.json.anchor, r.json.framing, r.json.total].map(String),
    r.verifyMs === undefined ? '-' : r.verifyMs.toFixed(2),
  ]),
  3,
);
console.log('\nBINARY payload, bytes: preimage JCS + 8-byte index + 32 per proof hash + checkpoint note (+ claim), no JSON; size.ts estimate beside it');
printTable(
  ['leaves', 'k', 'driver', 'hashes', 'preimage', 'index', 'proof', 'checkpoint', 'cosigs', 'claim', 'BINARY', 'size.ts est.', 'served/binary'],
  rows.map((r) => [
    ...label(r),
    ...[r.binary.preimage, r.binary.index, r.binary.proof, r.binary.checkpoint, r.binary.cosignatures, r.binary.claim, r.binary.total, r.estimate].map(String),
    (r.json.total / r.binary.total).toFixed(2),
  ]),
  3,
);
console.log('\nk: witness cosignatures carried; driver: the anchor driver (evm: the bundle carries the signed anchor claim).');
console.log("checkpoint: the note with the log's signature only (text with time and previous lines, blank line, signature line); cosigs: the witness lines after it.");
console.log(
  `The leaf index is 0 here; another leaf with a proof as long (one below the largest power of two under the size) adds up to ` +
    `${rows.filter((r) => r.cosignatures === 0).map((r) => `${r.worstIndexDigits - 1} (10^${Math.round(Math.log10(r.size))})`).join(', ')} bytes of index digits to SERVED.`,
);
console.log(`verify ms: parseStrictJson of the served text + verifyLogBundle with the log key and the witnesses' keys pinned, mean of ${fmt(VERIFICATIONS)}.`);

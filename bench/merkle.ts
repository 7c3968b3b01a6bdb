/**
 * Merkle tree benchmark on this machine, one core.
 *
 *   npx tsx bench/merkle.ts [--leaves 1000000] [--verifications 10000] [--skip-others]
 *
 * Measures, over the same pseudo-random 32-byte leaves:
 *  - anchorline: leaves/s for leaf hashing + building the tree with every level kept (MerkleTree.fromLeaves), and for
 *    the root alone from precomputed leaf hashes (merkleRoot, one buffer, in place);
 *  - verifyInclusion: microseconds per proof, and proof size, at the given tree size;
 *  - for context, the same RFC 9162 tree hashed with Node's native OpenSSL SHA-256 (node:crypto; fine here, not in
 *    anchor/, which must run in a browser), and the npm libraries merkletreejs and @openzeppelin/merkle-tree.
 *
 * The libraries do not build the same tree: merkletreejs has no 0x00/0x01 domain prefixes (we give it SHA-256 from
 * node:crypto, its fastest option), and @openzeppelin/merkle-tree uses keccak256 with sorted pairs. Only build
 * throughput over the same leaves is comparable, not roots.
 */
import { createHash } from 'node:crypto';
import { parseArgs } from 'node:util';
import { MerkleTree, merkleRoot, verifyInclusion } from '../anchor/index.ts';

const { values } = parseArgs({
  options: {
    leaves: { type: 'string', default: '1000000' },
    verifications: { type: 'string', default: '10000' },
    'skip-others': { type: 'boolean', default: false },
  },
});
const LEAVES = Number(values.leaves);
const VERIFICATIONS = Number(values.verifications);

/** Deterministic 32-byte leaves (xorshift32), so every run and every library hashes the same input. */
function makeLeaves(count: number): Uint8Array[] {
  let x = 0x9e3779b9;
  const leaves: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    const leaf = new Uint8Array(32);
    for (let j = 0; j < 32; j += 4) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      leaf[j] = x;
      leaf[j + 1] = x >>> 8;
      leaf[j + 2] = x >>> 16;
      leaf[j + 3] = x >>> 24;
    }
    leaves.push(leaf);
  }
  return leaves;
}

function time<T>(fn: () => T): { result: T; ms: number } {
  const start = performance.now();
  const result = fn();
  return { result, ms: performance.now() - start };
}

const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');
function report(name: string, count: number, ms: number, note = ''): void {
  console.log(`  ${name}: ${fmt((count / ms) * 1000)} leaves/s in ${(ms / 1000).toFixed(2)} s ${note}`);
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

console.log(`Merkle benchmark: ${fmt(LEAVES)} leaves of 32 bytes, node ${process.version}`);
const leaves = makeLeaves(LEAVES);

// Warm up the JIT on a small tree so the timed run measures steady-state code.
MerkleTree.fromLeaves(leaves.slice(0, 50_000)).root();

console.log('anchorline (RFC 9162, SHA-256, @noble/hashes + own fixed-size SHA-256 for building):');
const built = time(() => MerkleTree.fromLeaves(leaves));
const tree = built.result;
const root = tree.root();
report('MerkleTree.fromLeaves (leaf hashing + build, all levels kept)', LEAVES, built.ms);
const leafHashes = Array.from({ length: LEAVES }, (_, i) => tree.leafHash(i));
const rootOnly = time(() => merkleRoot(leafHashes));
report('merkleRoot (build from leaf hashes, in place)', LEAVES, rootOnly.ms);
if (Buffer.compare(rootOnly.result, root) !== 0) throw new Error('merkleRoot and MerkleTree disagree');

// Proofs at random indices, spread over the whole tree including the right edge.
const indices = Array.from({ length: VERIFICATIONS }, (_, i) => (i === 0 ? LEAVES - 1 : Math.floor(Math.random() * LEAVES)));
const proofs = time(() => indices.map((index) => tree.inclusionProof(index)));
const proofLengths = proofs.result.map((proof) => proof.length);
const verified = time(() => {
  let ok = 0;
  for (let i = 0; i < indices.length; i++) if (verifyInclusion(leafHashes[indices[i]!]!, indices[i]!, LEAVES, proofs.result[i]!, root)) ok++;
  return ok;
});
if (verified.result !== VERIFICATIONS) throw new Error(`${VERIFICATIONS - verified.result} proofs failed to verify`);
const minLen = Math.min(...proofLengths);
const maxLen = Math.max(...proofLengths);
console.log(`  inclusionProof: ${((proofs.ms * 1000) / VERIFICATIONS).toFixed(2)} µs per proof (from the kept levels)`);
console.log(`  verifyInclusion: ${((verified.ms * 1000) / VERIFICATIONS).toFixed(2)} µs per proof (${fmt(VERIFICATIONS)} proofs)`);
console.log(`  proof size at ${fmt(LEAVES)} leaves: ${minLen === maxLen ? minLen : `${minLen}..${maxLen}`} hashes = ${minLen * 32 === maxLen * 32 ? maxLen * 32 : `${minLen * 32}..${maxLen * 32}`} bytes`);

console.log('reference, same RFC 9162 tree with native SHA-256 (node:crypto createHash; not browser-safe):');
const native = time(() => nativeRoot(leaves));
if (Buffer.compare(native.result, root) !== 0) throw new Error('native reference root differs');
report('node:crypto, level by level', LEAVES, native.ms, '(same root)');

if (!values['skip-others']) {
  console.log('other libraries, same leaves, their own tree shapes (roots differ by design; build throughput only):');
  try {
    const { MerkleTree: MerkleTreeJs } = await import('merkletreejs');
    const sha256 = (data: Buffer): Buffer => createHash('sha256').update(data).digest();
    const buffers = leaves.map((leaf) => Buffer.from(leaf.buffer, leaf.byteOffset, leaf.byteLength));
    const result = time(() => new MerkleTreeJs(buffers, sha256, { hashLeaves: true }).getRoot());
    report('merkletreejs 0.6 (hashLeaves, SHA-256 from node:crypto, no domain prefixes)', LEAVES, result.ms);
  } catch (error) {
    console.log(`  merkletreejs: not run (${(error as Error).message})`);
  }
  try {
    const { SimpleMerkleTree, StandardMerkleTree } = await import('@openzeppelin/merkle-tree');
    const hexLeaves = leaves.map((leaf) => `0x${Buffer.from(leaf).toString('hex')}`);
    const simple = time(() => SimpleMerkleTree.of(hexLeaves).root);
    report('@openzeppelin/merkle-tree 1.0 SimpleMerkleTree (keccak256 sorted pairs, leaves used as given)', LEAVES, simple.ms);
    const standard = time(() => StandardMerkleTree.of(hexLeaves.map((leaf) => [leaf]), ['bytes32']).root);
    report('@openzeppelin/merkle-tree 1.0 StandardMerkleTree (ABI-encoded leaves double-keccak256)', LEAVES, standard.ms);
  } catch (error) {
    console.log(`  @openzeppelin/merkle-tree: not run (${(error as Error).message})`);
  }
}

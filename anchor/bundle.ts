/**
 * Proof bundles: the self-contained evidence that one stored FHIR resource version was committed to the anchorline
 * log, checkable offline with nothing but SHA-256 and Ed25519. The engine writes `anchorline-proof/2` (./log-bundle.ts),
 * which `verifyBundle` hands on; this file checks the older `anchorline-proof/1` by its own rules, specified in
 * docs/proofs.md ("Older bundles") completely enough to write an independent verifier, with the check names there.
 *
 * Browser-safe: no Node built-ins.
 */
import { bytesToHex, hexToBytes } from './encoding.ts';
import { headerHash, verifyHeaderSignature, GENESIS_PREVIOUS_HEADER_HASH, type BatchHeader } from './header.ts';
import { provenanceLeafHash, type LeafPreimage } from './leaf.ts';
import { LOG_PROOF_FORMAT, verifyLogBundle, type LogVerifyOptions } from './log-bundle.ts';
import { verifyInclusion } from './log/proof.ts';
import {
  checkExactKeys,
  errorKind,
  isBase64UrlOfLength,
  isInteger,
  isRecord,
  jsonKind,
  requireHexHash,
  summarizeProblems,
  unexpectedKeys,
  isIsoUtc,
  validatePreimage,
  rawHashOutcome,
  resourceHashOutcome,
  type CheckOutcome,
  type VerificationCheck,
  type VerificationResult,
} from './shape.ts';
export type { VerificationCheck, VerificationResult } from './shape.ts';

export const PROOF_BUNDLE_FORMAT = 'anchorline-proof/1';

export interface SignedHeader {
  header: BatchHeader;
  /** Lowercase hex SHA-256(headerBytes(header)). */
  headerHash: string;
  /** Unpadded base64url Ed25519 signature over headerBytes(header). */
  signature: string;
}

export type ProofAnchor =
  | { driver: 'local' }
  | { driver: 'evm'; chainId: number; contract: string; txHash: string; blockNumber: number; blockHash: string; batchNumber: number };

export interface ProofBundle {
  format: 'anchorline-proof/1';
  /** leafIndex is global: leaves are numbered from 0 across all batches. */
  leaf: { preimage: LeafPreimage; leafIndex: number; leafHash: string };
  /** Hex sibling hashes: the RFC 9162 inclusion proof of (leafIndex - firstLeafIndex) in a tree of leafCount. */
  auditPath: string[];
  batch: SignedHeader;
  /** Hex Ed25519 public key of the engine. */
  publicKey: string;
  /** The batches after `batch`, in order, up to the newest when the bundle was made. */
  headerChain: SignedHeader[];
  anchor: ProofAnchor;
}

/** Every check name verifyBundle can report, in the order it reports them. */
export const VERIFICATION_CHECK_NAMES = [
  'bundle-format',
  'leaf-hash',
  'resource-hash',
  'raw-hash',
  'inclusion',
  'header-hash',
  'header-signature',
  'header-chain',
  'anchor',
] as const;

export type VerificationCheckName = (typeof VERIFICATION_CHECK_NAMES)[number];

type CheckAfterFormat = Exclude<VerificationCheckName, 'bundle-format'>;
const CHECKS_AFTER_FORMAT = VERIFICATION_CHECK_NAMES.filter((name): name is CheckAfterFormat => name !== 'bundle-format');

/**
 * Verifies a proof bundle offline, by the checks in this file's header comment. Never throws: any input, however
 * malformed, gives a result whose failed checks say what is wrong. Details name fields and hashes, never preimage or
 * resource values, since those may identify a patient.
 *
 * The bundle and `options.resource` are values read from JSON text with parseStrictJson (./json.ts), as the CLI and
 * the console do: what makes a text ambiguous (a member name twice, a lone surrogate) is gone once it is parsed, so
 * only the reader can refuse it, and a number must reach these checks as written (an integer field written `1.0`
 * must fail; a resource's decimal `5.40` must hash as `5.40`, not as JSON.parse's 5.4: docs/proofs.md, "Canonical JSON and numbers").
 * `options.resource`, when given, is the resource version the auditor holds; the `resource-hash` check is then run
 * against it. `options.raw`, when given, is the raw inbound message the version came from (its
 * bytes as received); the `raw-hash` check is then run against it.
 */
export function verifyBundle(bundle: unknown, options?: LogVerifyOptions): VerificationResult {
  // anchorline-proof/2 (one log, ./log-bundle.ts) is what the engine writes now; /1 bundles keep verifying by the
  // rules below, which were theirs.
  const checks: VerificationCheck[] = [];
  try {
    if (isRecord(bundle) && bundle.format === LOG_PROOF_FORMAT) return verifyLogBundle(bundle, options);
    const resourceGiven = isRecord(options) && options.resource !== undefined;
    const raw = isRecord(options) && options.raw instanceof Uint8Array ? options.raw : undefined;
    const problems: string[] = [];
    const valid = validateBundle(bundle, problems);
    checks.push(
      valid
        ? { name: 'bundle-format', ok: true, detail: describeBundle(bundle) }
        : { name: 'bundle-format', ok: false, detail: summarizeProblems(problems) },
    );
    for (const name of CHECKS_AFTER_FORMAT) {
      if (name === 'resource-hash' && !resourceGiven) continue;
      if (name === 'raw-hash' && raw === undefined) continue;
      if (!valid) {
        checks.push({ name, ok: false, detail: 'not checked: the bundle is malformed (see bundle-format)' });
        continue;
      }
      const given: Given = { resource: resourceGiven ? (options as { resource: unknown }).resource : undefined, raw };
      checks.push(runCheck(name, () => CHECKS[name](bundle, given)));
    }
  } catch (error) {
    // Reached only if something in the input defeats the shape checks (a Proxy or a throwing getter); report, never throw.
    checks.push({ name: 'bundle-format', ok: false, detail: `verification stopped: ${errorKind(error)} while reading the bundle` });
  }
  return { ok: checks.length > 0 && checks.every((check) => check.ok), checks };
}


/** What the auditor supplied besides the bundle. */
interface Given {
  resource: unknown;
  raw: Uint8Array | undefined;
}
type CheckFn = (bundle: ProofBundle, given: Given) => CheckOutcome;

function runCheck(name: string, fn: () => CheckOutcome): VerificationCheck {
  try {
    return { name, ...fn() };
  } catch (error) {
    return { name, ok: false, detail: `check could not run: ${errorKind(error)}` };
  }
}

const CHECKS: Record<CheckAfterFormat, CheckFn> = {
  'leaf-hash': checkLeafHash,
  'resource-hash': checkResourceHash,
  'raw-hash': checkRawHash,
  inclusion: checkInclusion,
  'header-hash': checkHeaderHashes,
  'header-signature': checkHeaderSignatures,
  'header-chain': checkHeaderChain,
  anchor: checkAnchor,
};

function checkLeafHash(bundle: ProofBundle): CheckOutcome {
  const recomputed = bytesToHex(provenanceLeafHash(bundle.leaf.preimage));
  return recomputed === bundle.leaf.leafHash
    ? { ok: true, detail: `SHA-256(0x00 || JCS(preimage)) is ${recomputed}, as stated` }
    : { ok: false, detail: `SHA-256(0x00 || JCS(preimage)) is ${recomputed}, but leaf.leafHash is ${bundle.leaf.leafHash}` };
}

function checkRawHash(bundle: ProofBundle, { raw }: Given): CheckOutcome {
  return rawHashOutcome(bundle.leaf.preimage, raw);
}

function checkResourceHash(bundle: ProofBundle, { resource }: Given): CheckOutcome {
  return resourceHashOutcome(bundle.leaf.preimage, resource);
}

function checkInclusion(bundle: ProofBundle): CheckOutcome {
  const { header } = bundle.batch;
  const { leafIndex } = bundle.leaf;
  const end = header.firstLeafIndex + header.leafCount;
  if (leafIndex < header.firstLeafIndex || leafIndex >= end) {
    return {
      ok: false,
      detail: `leaf ${leafIndex} is not in batch ${header.batchNumber}, which holds leaves ${header.firstLeafIndex}..${end - 1}`,
    };
  }
  const indexInBatch = leafIndex - header.firstLeafIndex;
  const ok = verifyInclusion(
    hexToBytes(bundle.leaf.leafHash),
    indexInBatch,
    header.leafCount,
    bundle.auditPath.map(hexToBytes),
    hexToBytes(header.root),
  );
  const where = `leaf ${leafIndex} (index ${indexInBatch} of ${header.leafCount} in batch ${header.batchNumber})`;
  return ok
    ? { ok: true, detail: `${where} with its ${bundle.auditPath.length}-hash audit path leads to root ${header.root}` }
    : { ok: false, detail: `${where} with its ${bundle.auditPath.length}-hash audit path does not lead to root ${header.root}` };
}

function checkHeaderHashes(bundle: ProofBundle): CheckOutcome {
  const wrong: string[] = [];
  for (const signed of signedHeaders(bundle)) {
    const recomputed = headerHash(signed.header);
    if (recomputed !== signed.headerHash) {
      wrong.push(`batch ${signed.header.batchNumber}: SHA-256(JCS(header)) is ${recomputed}, but headerHash is ${signed.headerHash}`);
    }
  }
  return wrong.length === 0
    ? { ok: true, detail: `${countHeaders(bundle)} hash to their stated headerHash` }
    : { ok: false, detail: wrong.join('; ') };
}

function checkHeaderSignatures(bundle: ProofBundle): CheckOutcome {
  const bad = signedHeaders(bundle)
    .filter((signed) => !verifyHeaderSignature(signed.header, signed.signature, bundle.publicKey))
    .map((signed) => signed.header.batchNumber);
  return bad.length === 0
    ? { ok: true, detail: `${countHeaders(bundle)} signed by Ed25519 key ${bundle.publicKey}` }
    : { ok: false, detail: `signature of ${bad.length === 1 ? 'batch' : 'batches'} ${bad.join(', ')} does not verify under Ed25519 key ${bundle.publicKey}` };
}

function checkHeaderChain(bundle: ProofBundle): CheckOutcome {
  const broken: string[] = [];
  const first = bundle.batch.header;
  if (first.batchNumber === 1) {
    if (first.previousHeaderHash !== GENESIS_PREVIOUS_HEADER_HASH) broken.push("batch 1: previousHeaderHash is not 64 '0's");
    if (first.firstLeafIndex !== 0) broken.push('batch 1: firstLeafIndex is not 0');
  }
  let previous = bundle.batch;
  for (const [position, entry] of bundle.headerChain.entries()) {
    const at = `headerChain[${position}]`;
    const h = entry.header;
    const p = previous.header;
    if (h.previousHeaderHash !== previous.headerHash) {
      broken.push(`${at}: previousHeaderHash is not the headerHash of batch ${p.batchNumber}`);
    }
    if (h.batchNumber !== p.batchNumber + 1) broken.push(`${at}: batchNumber is ${h.batchNumber}, expected ${p.batchNumber + 1}`);
    if (h.firstLeafIndex !== p.firstLeafIndex + p.leafCount) {
      broken.push(`${at}: firstLeafIndex is ${h.firstLeafIndex}, expected ${p.firstLeafIndex + p.leafCount}`);
    }
    previous = entry;
  }
  if (broken.length > 0) return { ok: false, detail: broken.join('; ') };
  const newest = previous.header.batchNumber;
  return bundle.headerChain.length === 0
    ? { ok: true, detail: `no later batches: batch ${first.batchNumber} was the newest when the bundle was made` }
    : { ok: true, detail: `batch ${first.batchNumber} is linked through ${bundle.headerChain.length} later header(s) to batch ${newest}` };
}

/** An address in either case: the engine writes the EIP-55 mixed-case form, the chain compares without case. */
const EVM_ADDRESS = /^0x[0-9a-fA-F]{40}$/;
/** Transaction and block hashes as JSON-RPC nodes write them: lowercase. */
const EVM_HASH = /^0x[0-9a-f]{64}$/;

function checkAnchor(bundle: ProofBundle): CheckOutcome {
  const anchor: Record<string, unknown> = bundle.anchor;
  if (anchor.driver === 'local') {
    const extra = unexpectedKeys(anchor, ['driver']);
    if (extra.length > 0) return { ok: false, detail: `local anchor has unexpected member(s) ${extra.join(', ')}` };
    return {
      ok: true,
      detail: "driver local: nothing is anchored outside the engine; the proof rests on the engine's signing key alone",
    };
  }
  const problems: string[] = [];
  checkExactKeys(anchor, ['driver', 'chainId', 'contract', 'txHash', 'blockNumber', 'blockHash', 'batchNumber'], 'anchor', problems);
  if (!isInteger(anchor.chainId, 1)) problems.push('anchor.chainId must be an integer >= 1');
  if (!(typeof anchor.contract === 'string' && EVM_ADDRESS.test(anchor.contract))) problems.push('anchor.contract must be 0x and 40 hex digits');
  if (!(typeof anchor.txHash === 'string' && EVM_HASH.test(anchor.txHash))) problems.push('anchor.txHash must be 0x and 64 lowercase hex digits');
  if (!isInteger(anchor.blockNumber, 0)) problems.push('anchor.blockNumber must be an integer >= 0');
  if (!(typeof anchor.blockHash === 'string' && EVM_HASH.test(anchor.blockHash))) problems.push('anchor.blockHash must be 0x and 64 lowercase hex digits');
  const covered = signedHeaders(bundle).map((signed) => signed.header.batchNumber);
  if (!isInteger(anchor.batchNumber, 1)) problems.push('anchor.batchNumber must be an integer >= 1');
  else if (!covered.includes(anchor.batchNumber)) problems.push(`anchor.batchNumber ${anchor.batchNumber} is neither the batch nor a headerChain entry`);
  if (problems.length > 0) return { ok: false, detail: problems.join('; ') };
  return {
    ok: true,
    detail:
      `driver evm: structure only; claims batch ${String(anchor.batchNumber)} was anchored on chain ${String(anchor.chainId)} ` +
      `in transaction ${String(anchor.txHash)}, not looked up on chain (needs --rpc)`,
  };
}

/** `batch` followed by the headerChain entries. */
function signedHeaders(bundle: ProofBundle): SignedHeader[] {
  return [bundle.batch, ...bundle.headerChain];
}

function countHeaders(bundle: ProofBundle): string {
  const headers = signedHeaders(bundle);
  const first = headers[0]!.header.batchNumber;
  const last = headers[headers.length - 1]!.header.batchNumber;
  return headers.length === 1 ? `the header of batch ${first}` : `all ${headers.length} headers (batch ${first} to batch ${last})`;
}

function describeBundle(bundle: ProofBundle): string {
  return (
    `${PROOF_BUNDLE_FORMAT}: leaf ${bundle.leaf.leafIndex} in batch ${bundle.batch.header.batchNumber}, ` +
    `${bundle.headerChain.length} later header(s), anchor driver ${bundle.anchor.driver}`
  );
}

// ---------------------------------------------------------------------------------------------------------------
// Shape validation. Problems name the path of the offending field and what was expected, never the value found.

/** The longest audit path: a batch holds at most 2^53 - 1 leaves, and a path has one hash per level below the root. */
const MAX_AUDIT_PATH = 53;


function validateBundle(value: unknown, problems: string[]): value is ProofBundle {
  if (!isRecord(value)) {
    problems.push(`the bundle must be a JSON object, got ${jsonKind(value)}`);
    return false;
  }
  checkExactKeys(value, ['format', 'leaf', 'auditPath', 'batch', 'publicKey', 'headerChain', 'anchor'], 'bundle', problems);
  if (value.format !== PROOF_BUNDLE_FORMAT) problems.push(`format must be "${PROOF_BUNDLE_FORMAT}"`);
  validateLeaf(value.leaf, problems);
  // Index loops rather than forEach: forEach skips the holes of a sparse array, which must be reported too.
  if (!Array.isArray(value.auditPath)) problems.push(`auditPath must be an array, got ${jsonKind(value.auditPath)}`);
  else if (value.auditPath.length > MAX_AUDIT_PATH) problems.push(`auditPath must have at most ${MAX_AUDIT_PATH} entries`);
  else for (let i = 0; i < value.auditPath.length; i++) requireHexHash(value.auditPath[i], `auditPath[${i}]`, problems);
  validateSignedHeader(value.batch, 'batch', problems);
  requireHexHash(value.publicKey, 'publicKey', problems);
  if (!Array.isArray(value.headerChain)) problems.push(`headerChain must be an array, got ${jsonKind(value.headerChain)}`);
  else for (let i = 0; i < value.headerChain.length; i++) validateSignedHeader(value.headerChain[i], `headerChain[${i}]`, problems);
  // Only the driver is part of the format; the driver's own fields are the anchor check's business.
  if (!isRecord(value.anchor)) problems.push(`anchor must be an object, got ${jsonKind(value.anchor)}`);
  else if (value.anchor.driver !== 'local' && value.anchor.driver !== 'evm') problems.push('anchor.driver must be "local" or "evm"');
  return problems.length === 0;
}

function validateLeaf(leaf: unknown, problems: string[]): void {
  if (!isRecord(leaf)) {
    if (leaf !== undefined) problems.push(`leaf must be an object, got ${jsonKind(leaf)}`);
    return;
  }
  checkExactKeys(leaf, ['preimage', 'leafIndex', 'leafHash'], 'leaf', problems);
  if (!isInteger(leaf.leafIndex, 0)) problems.push('leaf.leafIndex must be an integer >= 0');
  requireHexHash(leaf.leafHash, 'leaf.leafHash', problems);
  validatePreimage(leaf.preimage, 'leaf.preimage', problems);
}

function validateSignedHeader(signed: unknown, path: string, problems: string[]): void {
  if (!isRecord(signed)) {
    // undefined here is either a member already reported missing or a hole in a sparse headerChain array.
    if (signed !== undefined || path !== 'batch') problems.push(`${path} must be an object, got ${jsonKind(signed)}`);
    return;
  }
  checkExactKeys(signed, ['header', 'headerHash', 'signature'], path, problems);
  requireHexHash(signed.headerHash, `${path}.headerHash`, problems);
  if (!isBase64UrlOfLength(signed.signature, 64)) problems.push(`${path}.signature must be unpadded base64url of 64 bytes`);
  const header = signed.header;
  if (!isRecord(header)) {
    if (header !== undefined) problems.push(`${path}.header must be an object, got ${jsonKind(header)}`);
    return;
  }
  const at = `${path}.header`;
  checkExactKeys(header, ['v', 'batchNumber', 'previousHeaderHash', 'firstLeafIndex', 'leafCount', 'root', 'time'], at, problems);
  if (header.v !== 1) problems.push(`${at}.v must be 1`);
  if (!isInteger(header.batchNumber, 1)) problems.push(`${at}.batchNumber must be an integer >= 1`);
  requireHexHash(header.previousHeaderHash, `${at}.previousHeaderHash`, problems);
  if (!isInteger(header.firstLeafIndex, 0)) problems.push(`${at}.firstLeafIndex must be an integer >= 0`);
  if (!isInteger(header.leafCount, 1)) problems.push(`${at}.leafCount must be an integer >= 1`);
  // The batch's last leaf index must stay exact, or index arithmetic in the checks would round.
  else if (isInteger(header.firstLeafIndex, 0) && !Number.isSafeInteger(header.firstLeafIndex + header.leafCount)) {
    problems.push(`${at}: firstLeafIndex + leafCount exceeds 2^53 - 1`);
  }
  requireHexHash(header.root, `${at}.root`, problems);
  if (!isIsoUtc(header.time)) problems.push(`${at}.time must be a UTC time written YYYY-MM-DDTHH:MM:SS.sssZ`);
}










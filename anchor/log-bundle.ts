/**
 * The one-log proof formats: `anchorline-proof/2` (a record's leaf, its inclusion proof in the one RFC 9162 log and
 * the signed checkpoint it leads to), `anchorline-consistency/1` (that a newer checkpoint extends an older one), the
 * checkpoint conventions anchorline adds to C2SP tlog-checkpoint, and the signed chain-anchor claim. docs/proofs.md
 * specifies every byte, completely enough to write an independent verifier; this file implements it, and its check
 * names are the ones there.
 *
 * CHECKPOINT TEXT (C2SP tlog-checkpoint, ./log/checkpoint.ts) with anchorline's extension lines, exactly these and
 * in this order:
 *   <origin>\n<size>\n<base64 root>\n
 *   time <YYYY-MM-DDTHH:MM:SS.sssZ>\n              when the engine signed it (UTC, milliseconds)
 *   [previous <base64 SHA-256 of the previous checkpoint's text>\n]   absent only on the log's first checkpoint
 *   [legacy <hex SHA-256 of the last anchorline-proof/1 batch header>\n]   only on the first checkpoint of a log that
 *                                                  began as batches: it binds the old header chain into the log
 * The checkpoint hash is SHA-256 of the text's UTF-8 bytes (no signature lines): what `previous` names, what the
 * chain registry holds, what a claim names.
 *
 * ANCHOR CLAIM: a signed note (./log/note.ts) by the log key, whose text is exactly
 *   anchorline-anchor/v1\n<origin>\ncheckpoint <number> <size> <base64 checkpoint hash>\n
 *   evm <chain id> <registry address, 0x + 40 lowercase hex>\ntx <0x + 64 lowercase hex>\n
 *   block <number> <0x + 64 lowercase hex>\n
 * so a claim cannot be made up or moved to another checkpoint without the log key.
 *
 * Browser-safe: no Node built-ins.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { base64ToBytes, bytesToBase64, bytesToHex } from './encoding.ts';
import { provenanceLeafHash, type LeafPreimage } from './leaf.ts';
import { HASH_BYTES } from './merkle.ts';
import { formatCheckpoint, openCheckpoint, parseCheckpoint, type Checkpoint } from './log/checkpoint.ts';
import { cosignatureVerifierFromKey } from './log/cosignature.ts';
import { ed25519NoteVerifierFromKey, hex8, openNote, parseVerifierKey, signNote, type NoteSigner, type NoteVerifier, type Parsed } from './log/note.ts';
import { inclusionRanges, verifyConsistencyProof, verifyInclusionProof } from './log/proof.ts';
import {
  checkExactKeys,
  errorKind,
  isInteger,
  isIsoUtc,
  isRecord,
  jsonKind,
  rawHashOutcome,
  resourceHashOutcome,
  summarizeProblems,
  unexpectedKeys,
  validatePreimage,
  type CheckOutcome,
  type VerificationCheck,
  type VerificationResult,
} from './shape.ts';

export const LOG_PROOF_FORMAT = 'anchorline-proof/2';
export const CONSISTENCY_FORMAT = 'anchorline-consistency/1';
export const ANCHOR_CLAIM_HEADER = 'anchorline-anchor/v1';

/** Longest note (checkpoint or claim, signatures included) a bundle may carry: room for 100 signature lines. */
export const MAX_NOTE_CHARS = 16_384;
/** Longest verifier key read. */
const MAX_KEY_CHARS = 512;
/** Most hashes in a proof: a tree of at most 2^53 - 1 leaves is 53 levels high; a consistency proof adds one. */
const MAX_PROOF_HASHES = 54;

// ---------------------------------------------------------------------------------------------------------------
// Checkpoints

export interface LogCheckpoint {
  origin: string;
  size: number;
  rootHash: Uint8Array;
  /** YYYY-MM-DDTHH:MM:SS.sssZ. */
  time: string;
  /** SHA-256 of the previous checkpoint's text; undefined on the log's first checkpoint. */
  previous?: Uint8Array;
  /** Lowercase hex hash of the last anchorline-proof/1 batch header, on the first checkpoint of a migrated log. */
  legacy?: string;
}

/** The checkpoint's note text (the signed bytes). Throws a RangeError for anything outside the grammar. */
export function formatLogCheckpoint(checkpoint: LogCheckpoint): string {
  if (!isIsoUtc(checkpoint.time)) throw new RangeError('time must be YYYY-MM-DDTHH:MM:SS.sssZ');
  const extensions = [`time ${checkpoint.time}`];
  if (checkpoint.previous !== undefined) {
    if (checkpoint.previous.length !== HASH_BYTES) throw new RangeError('previous must be a 32-byte hash');
    extensions.push(`previous ${bytesToBase64(checkpoint.previous)}`);
  }
  if (checkpoint.legacy !== undefined) {
    if (!/^[0-9a-f]{64}$/.test(checkpoint.legacy)) throw new RangeError('legacy must be 64 lowercase hex digits');
    if (checkpoint.previous !== undefined) throw new RangeError('a legacy line is only on the first checkpoint, which has no previous line');
    extensions.push(`legacy ${checkpoint.legacy}`);
  }
  return formatCheckpoint({ origin: checkpoint.origin, size: checkpoint.size, rootHash: checkpoint.rootHash, extensions });
}

/** Parses a checkpoint text by the grammar above; anything else, including unknown extension lines, is refused. */
export function parseLogCheckpoint(text: string): Parsed<LogCheckpoint> {
  const parsed = parseCheckpoint(text);
  if (!parsed.ok) return parsed;
  return logCheckpointOf(parsed.value);
}

function logCheckpointOf(checkpoint: Checkpoint): Parsed<LogCheckpoint> {
  const lines = [...checkpoint.extensions];
  const time = lines.shift();
  if (time === undefined || !time.startsWith('time ') || !isIsoUtc(time.slice(5))) {
    return refuse('the first extension line must be "time YYYY-MM-DDTHH:MM:SS.sssZ"');
  }
  const result: LogCheckpoint = { origin: checkpoint.origin, size: checkpoint.size, rootHash: checkpoint.rootHash, time: time.slice(5) };
  if (lines[0]?.startsWith('previous ')) {
    const hash = decodeBase64Hash(lines.shift()!.slice(9));
    if (hash === undefined) return refuse('the previous line must hold the padded base64 of a 32-byte hash');
    result.previous = hash;
  }
  if (lines[0]?.startsWith('legacy ')) {
    const legacy = lines.shift()!.slice(7);
    if (!/^[0-9a-f]{64}$/.test(legacy)) return refuse('the legacy line must hold 64 lowercase hex digits');
    result.legacy = legacy;
  }
  if (lines.length > 0) return refuse(`the checkpoint has ${lines.length} extension line(s) outside anchorline's grammar`);
  if (result.previous !== undefined && result.legacy !== undefined) return refuse('a legacy line is only on the first checkpoint, which has no previous line');
  return { ok: true, value: result };
}

/** SHA-256 of a checkpoint text's UTF-8 bytes. */
export function checkpointHash(text: string): Uint8Array {
  return sha256(new TextEncoder().encode(text));
}

/** Signs a checkpoint with the log key (whose name must be the origin). Returns the note. */
export function signLogCheckpoint(checkpoint: LogCheckpoint, log: NoteSigner): string {
  if (log.name !== checkpoint.origin) throw new RangeError('the log key is named after the origin');
  return signNote(formatLogCheckpoint(checkpoint), [log]);
}

/**
 * Opens a signed checkpoint: the log's signature by `log` (named after the origin), anchorline's grammar, and every
 * signature by a given `witnesses` key valid. Returns the checkpoint, its text and the witnesses that cosigned.
 */
export function openLogCheckpoint(
  note: string,
  log: NoteVerifier,
  witnesses: readonly NoteVerifier[] = [],
): Parsed<{ checkpoint: LogCheckpoint; text: string; cosigners: string[]; unverified: number }> {
  if (typeof note !== 'string' || note.length > MAX_NOTE_CHARS) return refuse(`a checkpoint note is text of at most ${MAX_NOTE_CHARS} characters`);
  const opened = openCheckpoint(note, { log, origin: log.name, cosigners: witnesses });
  if (!opened.ok) return opened;
  const parsed = logCheckpointOf(opened.value.checkpoint);
  if (!parsed.ok) return parsed;
  const cosigners = [...new Set(opened.value.cosignatures.map((s) => `${s.name}+${hex8(s.keyId)}`))];
  return { ok: true, value: { checkpoint: parsed.value, text: opened.value.text, cosigners, unverified: opened.value.unverified.length } };
}

// ---------------------------------------------------------------------------------------------------------------
// Anchor claims

export interface AnchorClaim {
  origin: string;
  /** The checkpoint's number in the registry (anchorline numbers checkpoints 1, 2, ... after any old batches). */
  checkpointNumber: number;
  treeSize: number;
  checkpointHash: Uint8Array;
  chainId: number;
  /** 0x + 40 lowercase hex digits. */
  contract: string;
  txHash: string;
  blockNumber: number;
  blockHash: string;
}

const DECIMAL = '(0|[1-9][0-9]*)';
const CLAIM_LINES = [
  new RegExp(`^checkpoint ${DECIMAL} ${DECIMAL} ([A-Za-z0-9+/]{43}=)$`),
  new RegExp(`^evm ${DECIMAL} (0x[0-9a-f]{40})$`),
  /^tx (0x[0-9a-f]{64})$/,
  new RegExp(`^block ${DECIMAL} (0x[0-9a-f]{64})$`),
];

export function formatAnchorClaim(claim: AnchorClaim): string {
  const text =
    `${ANCHOR_CLAIM_HEADER}\n${claim.origin}\ncheckpoint ${claim.checkpointNumber} ${claim.treeSize} ${bytesToBase64(claim.checkpointHash)}\n` +
    `evm ${claim.chainId} ${claim.contract.toLowerCase()}\ntx ${claim.txHash}\nblock ${claim.blockNumber} ${claim.blockHash}\n`;
  const parsed = parseAnchorClaim(text);
  if (!parsed.ok) throw new RangeError(parsed.reason);
  return text;
}

export function parseAnchorClaim(text: string): Parsed<AnchorClaim> {
  if (!text.endsWith('\n')) return refuse('a claim text ends with a newline');
  const lines = text.slice(0, -1).split('\n');
  if (lines.length !== 6 || lines[0] !== ANCHOR_CLAIM_HEADER) return refuse(`a claim is 6 lines, the first "${ANCHOR_CLAIM_HEADER}"`);
  const origin = lines[1]!;
  if (origin.length === 0) return refuse('the claim names no origin');
  const matches = CLAIM_LINES.map((pattern, i) => pattern.exec(lines[i + 2]!));
  const names = ['checkpoint', 'evm', 'tx', 'block'];
  const bad = matches.findIndex((m) => m === null);
  if (bad >= 0) return refuse(`the claim's ${names[bad]} line is outside the grammar`);
  const [cp, evm, tx, block] = matches as RegExpExecArray[];
  const numbers = [cp![1], cp![2], evm![1], block![1]].map(Number);
  if (!numbers.every(Number.isSafeInteger)) return refuse('a number in the claim is beyond 2^53 - 1');
  const hash = decodeBase64Hash(cp![3]!);
  if (hash === undefined) return refuse('the claim\'s checkpoint hash is not canonical base64 of 32 bytes');
  if (numbers[0]! < 1 || numbers[2]! < 1) return refuse('checkpoint number and chain id start at 1');
  return {
    ok: true,
    value: {
      origin,
      checkpointNumber: numbers[0]!,
      treeSize: numbers[1]!,
      checkpointHash: hash,
      chainId: numbers[2]!,
      contract: evm![2]!,
      txHash: tx![1]!,
      blockNumber: numbers[3]!,
      blockHash: block![2]!,
    },
  };
}

export function signAnchorClaim(claim: AnchorClaim, log: NoteSigner): string {
  return signNote(formatAnchorClaim(claim), [log]);
}

// ---------------------------------------------------------------------------------------------------------------
// Bundles

export type LogProofAnchor = { driver: 'local' } | { driver: 'evm'; claim: string };

export interface LogProofBundle {
  format: typeof LOG_PROOF_FORMAT;
  leaf: { preimage: LeafPreimage; index: number };
  /** The RFC 9162 inclusion proof of leaf.index in the checkpoint's tree: padded base64 of 32-byte hashes. */
  inclusionProof: string[];
  /** The signed checkpoint note: the log's signature, then witnesses' cosignatures. */
  checkpoint: string;
  /** The log's verifier key (C2SP note format, Ed25519): <origin>+<key id>+<base64 of 0x01 || key>. */
  logKey: string;
  anchor: LogProofAnchor;
}

export interface LogVerifyOptions {
  /** The FHIR resource version the auditor holds. */
  resource?: unknown;
  /** The raw inbound message. */
  raw?: Uint8Array;
  /** The log key the auditor trusts (a verifier key); the bundle's logKey must be exactly it. */
  logKey?: string;
  /** Witness verifier keys (cosignature/v1) the auditor trusts. */
  witnesses?: readonly string[];
  /** Cosignatures required from distinct `witnesses`; default all of them. */
  witnessesRequired?: number;
}

/** Every check verifyLogBundle can report, in order. */
export const LOG_CHECK_NAMES = ['bundle-format', 'leaf-hash', 'resource-hash', 'raw-hash', 'checkpoint', 'inclusion', 'cosignatures', 'anchor', 'log-key'] as const;

/**
 * Verifies an anchorline-proof/2 bundle offline. Never throws; details name fields and hashes, never values of the
 * preimage. The bundle is a value read with parseStrictJson (./json.ts), as for /1 (./bundle.ts verifyBundle).
 */
export function verifyLogBundle(bundle: unknown, options: LogVerifyOptions = {}): VerificationResult {
  const checks: VerificationCheck[] = [];
  try {
    const problems: string[] = [];
    const valid = validateLogBundle(bundle, problems);
    checks.push(valid ? { name: 'bundle-format', ok: true, detail: describe(bundle) } : { name: 'bundle-format', ok: false, detail: summarizeProblems(problems) });
    const context = valid ? openBundleParts(bundle, options) : undefined;
    const run = (name: string, fn: () => CheckOutcome): void => {
      if (!valid || context === undefined) {
        checks.push({ name, ok: false, detail: 'not checked: the bundle is malformed (see bundle-format)' });
        return;
      }
      try {
        checks.push({ name, ...fn() });
      } catch (error) {
        checks.push({ name, ok: false, detail: `check could not run: ${errorKind(error)}` });
      }
    };
    run('leaf-hash', () => ({ ok: true, detail: `SHA-256(0x00 || JCS(preimage)) is ${bytesToHex(context!.leafHash)}` }));
    if (options.resource !== undefined) run('resource-hash', () => resourceHashOutcome((bundle as LogProofBundle).leaf.preimage, options.resource));
    if (options.raw !== undefined) run('raw-hash', () => rawHashOutcome((bundle as LogProofBundle).leaf.preimage, options.raw));
    run('checkpoint', () => context!.checkpointOutcome);
    run('inclusion', () => inclusionOutcome(bundle as LogProofBundle, context!));
    if ((options.witnesses?.length ?? 0) > 0 || (options.witnessesRequired ?? 0) > 0) run('cosignatures', () => cosignatureOutcome(context!, options));
    run('anchor', () => anchorOutcome(bundle as LogProofBundle, context!));
    if (options.logKey !== undefined) run('log-key', () => logKeyOutcome((bundle as LogProofBundle).logKey, options.logKey!));
  } catch (error) {
    checks.push({ name: 'bundle-format', ok: false, detail: `verification stopped: ${errorKind(error)} while reading the bundle` });
  }
  return { ok: checks.length > 0 && checks.every((c) => c.ok), checks };
}

interface BundleContext {
  leafHash: Uint8Array;
  log: NoteVerifier | undefined;
  opened: ReturnType<typeof openLogCheckpoint> | undefined;
  checkpointOutcome: CheckOutcome;
  witnessProblem: string | undefined;
}

function openBundleParts(bundle: LogProofBundle, options: LogVerifyOptions): BundleContext {
  const leafHash = provenanceLeafHash(bundle.leaf.preimage);
  const log = ed25519NoteVerifierFromKey(bundle.logKey);
  const witnesses = witnessVerifiers(options.witnesses ?? []);
  if (!log.ok) return { leafHash, log: undefined, opened: undefined, checkpointOutcome: { ok: false, detail: `logKey: ${log.reason}` }, witnessProblem: witnesses.problem };
  const opened = openLogCheckpoint(bundle.checkpoint, log.value, witnesses.verifiers);
  const checkpointOutcome: CheckOutcome = opened.ok
    ? {
        ok: true,
        detail:
          `checkpoint of ${opened.value.checkpoint.size} leaves at ${opened.value.checkpoint.time}, hash ${bytesToHex(checkpointHash(opened.value.text))}, ` +
          `signed by log key ${log.value.name}+${hex8(log.value.keyId)}${opened.value.unverified > 0 ? `; ${opened.value.unverified} signature(s) by keys not given` : ''}`,
      }
    : { ok: false, detail: opened.reason };
  return { leafHash, log: log.value, opened, checkpointOutcome, witnessProblem: witnesses.problem };
}

function inclusionOutcome(bundle: LogProofBundle, context: BundleContext): CheckOutcome {
  if (!context.opened?.ok) return { ok: false, detail: 'not checked: the checkpoint did not open (see checkpoint)' };
  const { size, rootHash } = context.opened.value.checkpoint;
  const verdict = verifyInclusionProof(context.leafHash, bundle.leaf.index, size, bundle.inclusionProof.map(base64ToBytes), rootHash);
  return verdict.ok
    ? { ok: true, detail: `leaf ${bundle.leaf.index} with its ${bundle.inclusionProof.length}-hash proof leads to the root of the ${size}-leaf checkpoint` }
    : { ok: false, detail: verdict.reason };
}

function cosignatureOutcome(context: BundleContext, options: LogVerifyOptions): CheckOutcome {
  if (context.witnessProblem !== undefined) return { ok: false, detail: context.witnessProblem };
  if (!context.opened?.ok) return { ok: false, detail: 'not checked: the checkpoint did not open (see checkpoint)' };
  const required = options.witnessesRequired ?? new Set(options.witnesses ?? []).size;
  const found = context.opened.value.cosigners;
  return found.length >= required
    ? { ok: true, detail: `${found.length} of the given witness key(s) cosigned the checkpoint (${required} required): ${found.join(', ') || 'none'}` }
    : { ok: false, detail: `${found.length} of the given witness key(s) cosigned the checkpoint, ${required} required` };
}

function anchorOutcome(bundle: LogProofBundle, context: BundleContext): CheckOutcome {
  if (bundle.anchor.driver === 'local') {
    return { ok: true, detail: "driver local: nothing is anchored outside the engine; the proof rests on the log key and any witnesses" };
  }
  if (context.log === undefined || !context.opened?.ok) return { ok: false, detail: 'not checked: the checkpoint did not open (see checkpoint)' };
  const claim = openAnchorClaim(bundle.anchor.claim, context.log);
  if (!claim.ok) return { ok: false, detail: `the anchor claim: ${claim.reason}` };
  const c = claim.value;
  const { checkpoint, text } = context.opened.value;
  const hash = checkpointHash(text);
  if (c.treeSize !== checkpoint.size) return { ok: false, detail: `the claim is for a ${c.treeSize}-leaf checkpoint, the bundle's has ${checkpoint.size}` };
  if (bytesToHex(c.checkpointHash) !== bytesToHex(hash)) return { ok: false, detail: "the claim names another checkpoint hash than the bundle's checkpoint" };
  return {
    ok: true,
    detail:
      `driver evm: the log key claims checkpoint ${c.checkpointNumber} (hash ${bytesToHex(hash)}) was anchored on chain ${c.chainId} ` +
      `by registry ${c.contract} in transaction ${c.txHash}, block ${c.blockNumber}; not looked up on chain (needs --rpc)`,
  };
}

/** Opens a signed anchor claim by the log key and checks its grammar and origin. */
export function openAnchorClaim(note: string, log: NoteVerifier): Parsed<AnchorClaim> {
  if (typeof note !== 'string' || note.length > MAX_NOTE_CHARS) return refuse(`a claim is text of at most ${MAX_NOTE_CHARS} characters`);
  const opened = openNote(note, [log]);
  if (!opened.ok) return opened;
  const parsed = parseAnchorClaim(opened.value.text);
  if (!parsed.ok) return parsed;
  if (parsed.value.origin !== log.name) return refuse('the claim names another origin than the log key');
  return parsed;
}

function logKeyOutcome(stated: string, pinned: string): CheckOutcome {
  return stated === pinned ? { ok: true, detail: 'the bundle names the pinned log key' } : { ok: false, detail: 'the bundle names another log key than the pinned one' };
}

/**
 * Verifiers for witness keys (cosignature/v1 verifier keys), for auditors' options and the engine's configured
 * witnesses alike; the first key that does not parse is named in `problem`.
 */
export function witnessVerifiers(keys: readonly string[]): { verifiers: NoteVerifier[]; problem: string | undefined } {
  const verifiers: NoteVerifier[] = [];
  // A key given twice is one witness: counted once, and not two verifiers that would make every note ambiguous.
  for (const [i, key] of [...new Set(keys)].entries()) {
    const parsed = cosignatureVerifierFromKey(key);
    if (!parsed.ok) return { verifiers, problem: `witness key ${i + 1}: ${parsed.reason}` };
    verifiers.push(parsed.value);
  }
  return { verifiers, problem: undefined };
}

function describe(bundle: LogProofBundle): string {
  return `${LOG_PROOF_FORMAT}: leaf ${bundle.leaf.index}, ${bundle.inclusionProof.length}-hash inclusion proof, anchor driver ${bundle.anchor.driver}`;
}

function validateLogBundle(value: unknown, problems: string[]): value is LogProofBundle {
  if (!isRecord(value)) {
    problems.push(`the bundle must be a JSON object, got ${jsonKind(value)}`);
    return false;
  }
  checkExactKeys(value, ['format', 'leaf', 'inclusionProof', 'checkpoint', 'logKey', 'anchor'], 'bundle', problems);
  if (value.format !== LOG_PROOF_FORMAT) problems.push(`format must be "${LOG_PROOF_FORMAT}"`);
  const leaf = value.leaf;
  if (isRecord(leaf)) {
    checkExactKeys(leaf, ['preimage', 'index'], 'leaf', problems);
    if (!isInteger(leaf.index, 0)) problems.push('leaf.index must be an integer >= 0');
    validatePreimage(leaf.preimage, 'leaf.preimage', problems);
  } else if (leaf !== undefined) problems.push(`leaf must be an object, got ${jsonKind(leaf)}`);
  validateHashList(value.inclusionProof, 'inclusionProof', problems);
  requireNote(value.checkpoint, 'checkpoint', problems);
  if (value.logKey !== undefined && !(typeof value.logKey === 'string' && value.logKey.length > 0 && value.logKey.length <= MAX_KEY_CHARS)) {
    problems.push(`logKey must be a verifier key of at most ${MAX_KEY_CHARS} characters`);
  }
  const anchor = value.anchor;
  if (isRecord(anchor)) {
    if (anchor.driver === 'local') {
      const extra = unexpectedKeys(anchor, ['driver']);
      if (extra.length > 0) problems.push(`anchor has unexpected member(s) ${extra.join(', ')}`);
    } else if (anchor.driver === 'evm') {
      checkExactKeys(anchor, ['driver', 'claim'], 'anchor', problems);
      requireNote(anchor.claim, 'anchor.claim', problems);
    } else problems.push('anchor.driver must be "local" or "evm"');
  } else if (anchor !== undefined) problems.push(`anchor must be an object, got ${jsonKind(anchor)}`);
  return problems.length === 0;
}

function validateHashList(value: unknown, path: string, problems: string[]): void {
  if (!Array.isArray(value)) {
    if (value !== undefined) problems.push(`${path} must be an array, got ${jsonKind(value)}`);
    return;
  }
  if (value.length > MAX_PROOF_HASHES) {
    problems.push(`${path} must have at most ${MAX_PROOF_HASHES} entries`);
    return;
  }
  // Index loop: a sparse array's holes must be reported too.
  for (let i = 0; i < value.length; i++) {
    if (typeof value[i] !== 'string' || decodeBase64Hash(value[i] as string) === undefined) problems.push(`${path}[${i}] must be padded base64 of 32 bytes`);
  }
}

function requireNote(value: unknown, path: string, problems: string[]): void {
  if (value === undefined) return;
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_NOTE_CHARS) problems.push(`${path} must be a signed note of at most ${MAX_NOTE_CHARS} characters`);
}

function decodeBase64Hash(text: string): Uint8Array | undefined {
  if (text.length !== 44) return undefined;
  try {
    const bytes = base64ToBytes(text);
    return bytes.length === HASH_BYTES ? bytes : undefined;
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Consistency

export interface ConsistencyDocument {
  format: typeof CONSISTENCY_FORMAT;
  logKey: string;
  /** The older signed checkpoint note. */
  old: string;
  /** The newer signed checkpoint note. */
  new: string;
  /** RFC 9162 §2.1.4 consistency proof from old's size to new's: padded base64 of 32-byte hashes. */
  proof: string[];
}

export interface ConsistencyVerifyOptions {
  logKey?: string;
  witnesses?: readonly string[];
  witnessesRequired?: number;
}

/**
 * Verifies an anchorline-consistency/1 document: both checkpoints signed by the log key, the newer one's size at
 * least the older one's, and the proof showing the older tree is a prefix of the newer. When the new checkpoint's
 * previous line names the old checkpoint, that link is reported too. Never throws.
 */
export function verifyConsistencyDocument(doc: unknown, options: ConsistencyVerifyOptions = {}): VerificationResult & { old?: { size: number; text: string }; new?: { size: number; text: string } } {
  const checks: VerificationCheck[] = [];
  const problems: string[] = [];
  let valid = false;
  try {
    if (!isRecord(doc)) problems.push(`the document must be a JSON object, got ${jsonKind(doc)}`);
    else {
      checkExactKeys(doc, ['format', 'logKey', 'old', 'new', 'proof'], 'document', problems);
      if (doc.format !== CONSISTENCY_FORMAT) problems.push(`format must be "${CONSISTENCY_FORMAT}"`);
      if (doc.logKey !== undefined && !(typeof doc.logKey === 'string' && doc.logKey.length > 0 && doc.logKey.length <= MAX_KEY_CHARS)) problems.push('logKey must be a verifier key');
      requireNote(doc.old, 'old', problems);
      requireNote(doc.new, 'new', problems);
      validateHashList(doc.proof, 'proof', problems);
    }
    valid = problems.length === 0;
  } catch (error) {
    problems.push(`reading stopped: ${errorKind(error)}`);
  }
  checks.push(valid ? { name: 'consistency-format', ok: true, detail: `${CONSISTENCY_FORMAT}` } : { name: 'consistency-format', ok: false, detail: summarizeProblems(problems) });
  if (!valid) {
    checks.push({ name: 'consistency', ok: false, detail: 'not checked: the document is malformed (see consistency-format)' });
    return { ok: false, checks };
  }
  const d = doc as unknown as ConsistencyDocument;
  const log = ed25519NoteVerifierFromKey(d.logKey);
  const witnesses = witnessVerifiers(options.witnesses ?? []);
  if (!log.ok) {
    checks.push({ name: 'old-checkpoint', ok: false, detail: `logKey: ${log.reason}` });
    return { ok: false, checks };
  }
  const old = openLogCheckpoint(d.old, log.value, witnesses.verifiers);
  const neu = openLogCheckpoint(d.new, log.value, witnesses.verifiers);
  checks.push(old.ok ? { name: 'old-checkpoint', ok: true, detail: `${old.value.checkpoint.size} leaves at ${old.value.checkpoint.time}` } : { name: 'old-checkpoint', ok: false, detail: old.reason });
  checks.push(neu.ok ? { name: 'new-checkpoint', ok: true, detail: `${neu.value.checkpoint.size} leaves at ${neu.value.checkpoint.time}` } : { name: 'new-checkpoint', ok: false, detail: neu.reason });
  if (old.ok && neu.ok) {
    const m = old.value.checkpoint.size;
    const n = neu.value.checkpoint.size;
    const verdict = verifyConsistencyProof(m, n, d.proof.map(base64ToBytes), old.value.checkpoint.rootHash, neu.value.checkpoint.rootHash);
    const linked = neu.value.checkpoint.previous !== undefined && bytesToHex(neu.value.checkpoint.previous) === bytesToHex(checkpointHash(old.value.text));
    checks.push(
      verdict.ok
        ? { name: 'consistency', ok: true, detail: `the ${m}-leaf tree is a prefix of the ${n}-leaf tree (${d.proof.length}-hash proof)${linked ? '; the new checkpoint names the old one as its previous' : ''}` }
        : { name: 'consistency', ok: false, detail: verdict.reason },
    );
    if ((options.witnesses?.length ?? 0) > 0) {
      const required = options.witnessesRequired ?? new Set(options.witnesses).size;
      const count = neu.value.cosigners.length;
      checks.push(
        witnesses.problem !== undefined
          ? { name: 'cosignatures', ok: false, detail: witnesses.problem }
          : { name: 'cosignatures', ok: count >= required, detail: `${count} of the given witness key(s) cosigned the new checkpoint, ${required} required` },
      );
    }
  } else checks.push({ name: 'consistency', ok: false, detail: 'not checked: a checkpoint did not open' });
  if (options.logKey !== undefined) checks.push({ name: 'log-key', ...logKeyOutcome(d.logKey, options.logKey) });
  const result = { ok: checks.every((c) => c.ok), checks };
  return old.ok && neu.ok
    ? { ...result, old: { size: old.value.checkpoint.size, text: old.value.text }, new: { size: neu.value.checkpoint.size, text: neu.value.text } }
    : result;
}

/**
 * Brings a bundle forward: the bundle verifies at its checkpoint, and the consistency document proves that
 * checkpoint is a prefix of a newer one, so the record is in the newer tree too, without fetching the record again.
 * The document's old checkpoint text must be the bundle's checkpoint text.
 */
export function verifyBundleForward(bundle: unknown, doc: unknown, options: LogVerifyOptions = {}): VerificationResult {
  const { witnesses: _w, witnessesRequired: _k, ...bundleOptions } = options;
  const first = verifyLogBundle(bundle, bundleOptions);
  const second = verifyConsistencyDocument(doc, options);
  const checks = [...first.checks, ...second.checks];
  let forward: VerificationCheck;
  if (!first.ok || !second.ok || second.old === undefined || second.new === undefined) forward = { name: 'forward', ok: false, detail: 'not checked: the bundle or the consistency document failed' };
  else {
    const bundleText = bundleCheckpointText((bundle as LogProofBundle).checkpoint);
    const sameLog = (bundle as LogProofBundle).logKey === (doc as ConsistencyDocument).logKey;
    forward =
      sameLog && bundleText === second.old.text
        ? { name: 'forward', ok: true, detail: `leaf ${(bundle as LogProofBundle).leaf.index} is in the ${second.new.size}-leaf checkpoint too` }
        : { name: 'forward', ok: false, detail: sameLog ? "the document's old checkpoint is not the bundle's checkpoint" : 'the document is for another log key' };
  }
  checks.push(forward);
  return { ok: checks.every((c) => c.ok), checks };
}

/**
 * The bare Ed25519 public key (lowercase hex) a proof names as its signer: the key inside the log key of a /2 bundle
 * or consistency document, or the publicKey of a /1 bundle; undefined when it names none that parses. What
 * `--public-key` (and the console's pinned public key) compares with.
 */
export function statedPublicKey(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const record = value as Record<string, unknown>;
  if (typeof record.logKey === 'string') {
    const key = parseVerifierKey(record.logKey);
    return key.ok ? bytesToHex(key.value.publicKey) : undefined;
  }
  return typeof record.publicKey === 'string' ? record.publicKey.toLowerCase() : undefined;
}

/** A note's text: everything up to the blank line before the signatures. */
export function bundleCheckpointText(note: string): string | undefined {
  const end = note.indexOf('\n\n');
  return end < 0 ? undefined : note.slice(0, end + 1);
}

/** Number of inclusion-proof hashes for `index` in a tree of `size` (for size estimates and bounds). */
export function inclusionProofLength(index: number, size: number): number {
  return inclusionRanges(index, size).length;
}

function refuse(reason: string): { ok: false; reason: string } {
  return { ok: false, reason };
}

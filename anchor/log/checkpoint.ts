/**
 * C2SP tlog-checkpoint (c2sp.org/tlog-checkpoint@v1.0.0): the log's signed tree head, as the text of a signed note
 * (./note.ts).
 *
 * TEXT (what is signed, UTF-8, each line ending in "\n"):
 *   <origin>                 the log's identity, non-empty (anchorline uses a schema-less URL)
 *   <tree size>              ASCII decimal, no leading zeroes ("0" for the empty tree)
 *   <root hash>              base64 (RFC 4648 §4, padded, 44 characters) of the 32-byte RFC 9162 root at that size
 *   [<extension line>...]    optional, each non-empty; opaque, and signed with the rest
 *
 * SIGNATURES. The log signs the text as an Ed25519 note signature (type 0x01, key name normally the origin):
 * pure Ed25519 over exactly those bytes. Witnesses add cosignatures (./cosignature.ts) to the same note.
 *
 * Parsing is strict: a missing or extra newline, an empty line, a size with a sign, leading zero or beyond 2^53 - 1,
 * or a root that is not the canonical base64 of 32 bytes is refused with a reason.
 *
 * Browser-safe: no Node built-ins.
 */
import { HASH_BYTES } from '../merkle.ts';
import { base64ToBytes, bytesToBase64 } from '../encoding.ts';
import { noteTextProblem, openNote, signNote, type NoteSignature, type NoteSigner, type NoteVerifier, type Parsed } from './note.ts';

export interface Checkpoint {
  readonly origin: string;
  /** Number of leaves. */
  readonly size: number;
  /** RFC 9162 root hash of the tree of `size` leaves (32 bytes). */
  readonly rootHash: Uint8Array;
  /** Extension lines, without their newlines; usually none. */
  readonly extensions: readonly string[];
}

/** The checkpoint's note text, final newline included: the bytes the log signs. Throws a RangeError if invalid. */
export function formatCheckpoint(checkpoint: Checkpoint): string {
  const { origin, size, rootHash, extensions } = checkpoint;
  if (typeof origin !== 'string' || origin.length === 0 || origin.includes('\n')) throw new RangeError('the origin must be one non-empty line');
  if (!Number.isSafeInteger(size) || size < 0) throw new RangeError(`tree size ${size} is not an integer in 0..2^53-1`);
  if (!(rootHash instanceof Uint8Array) || rootHash.length !== HASH_BYTES) throw new RangeError(`the root hash must be ${HASH_BYTES} bytes`);
  for (const line of extensions) {
    if (typeof line !== 'string' || line.length === 0 || line.includes('\n')) throw new RangeError('each extension line must be one non-empty line');
  }
  const text = [origin, String(size), bytesToBase64(rootHash), ...extensions].map((line) => `${line}\n`).join('');
  const problem = noteTextProblem(text);
  if (problem !== undefined) throw new RangeError(problem);
  return text;
}

/** Parses a checkpoint's text (a note's text, not the whole note). */
export function parseCheckpoint(text: string): Parsed<Checkpoint> {
  const problem = noteTextProblem(text);
  if (problem !== undefined) return refuse(problem);
  const lines = text.slice(0, -1).split('\n');
  if (lines.length < 3) return refuse(`a checkpoint has at least 3 lines, got ${lines.length}`);
  const [origin, sizeLine, rootLine, ...extensions] = lines as [string, string, string, ...string[]];
  if (origin.length === 0) return refuse('the origin line is empty');
  if (!/^(0|[1-9][0-9]*)$/.test(sizeLine)) return refuse('the tree size is not decimal digits without leading zeroes');
  const size = Number(sizeLine);
  if (!Number.isSafeInteger(size)) return refuse('the tree size is beyond 2^53 - 1, which this verifier cannot hold exactly');
  let rootHash: Uint8Array;
  try {
    rootHash = base64ToBytes(rootLine);
  } catch (error) {
    return refuse(`the root hash is not canonical padded base64 (${(error as Error).message})`);
  }
  if (rootHash.length !== HASH_BYTES) return refuse(`the root hash is ${rootHash.length} bytes, not ${HASH_BYTES}`);
  const empty = extensions.findIndex((line) => line.length === 0);
  if (empty >= 0) return refuse(`extension line ${empty + 1} is empty`);
  return { ok: true, value: { origin, size, rootHash, extensions } };
}

/** The signed checkpoint note: text, blank line, the log's signature, then any cosigners' in the order given. */
export function signCheckpoint(checkpoint: Checkpoint, log: NoteSigner, cosigners: readonly NoteSigner[] = []): string {
  return signNote(formatCheckpoint(checkpoint), [log, ...cosigners]);
}

/** A checkpoint whose log signature verified. */
export interface OpenedCheckpoint {
  readonly checkpoint: Checkpoint;
  /** The note text: the bytes the log signed and that cosignatures cover. */
  readonly text: string;
  /** Verified signatures from the other verifiers given (cosigners), in note order. */
  readonly cosignatures: readonly NoteSignature[];
  /** Signatures from keys not given, unverified. */
  readonly unverified: readonly NoteSignature[];
}

/**
 * Opens a signed checkpoint: the note must verify (./note.ts rules) with a signature by `log`, the text must be a
 * checkpoint, and its origin must be `origin` (a checkpoint from another log is refused even if the key matches).
 * `cosigners` are verified too: any signature by one of them that fails refuses the checkpoint; how many must be
 * present is the caller's policy.
 */
export function openCheckpoint(
  note: string | Uint8Array,
  options: { log: NoteVerifier; origin: string; cosigners?: readonly NoteVerifier[] },
): Parsed<OpenedCheckpoint> {
  const opened = openNote(note, [options.log, ...(options.cosigners ?? [])]);
  if (!opened.ok) return opened;
  const { text, verified, unverified } = opened.value;
  const isLog = (s: NoteSignature): boolean => s.name === options.log.name && s.keyId === options.log.keyId;
  if (!verified.some(isLog)) return refuse(`the checkpoint has no signature by the log key ${options.log.name}`);
  const parsed = parseCheckpoint(text);
  if (!parsed.ok) return parsed;
  if (parsed.value.origin !== options.origin) return refuse('the checkpoint is for another origin than the one expected');
  return {
    ok: true,
    value: { checkpoint: parsed.value, text, cosignatures: verified.filter((s) => !isLog(s)), unverified },
  };
}

function refuse(reason: string): { ok: false; reason: string } {
  return { ok: false, reason };
}

/**
 * C2SP tlog-cosignature, Ed25519 version (cosignature/v1): a witness's timestamped statement that a checkpoint is
 * the largest consistent tree head it has seen for that log. Carried as one more signature line on the checkpoint
 * note (./note.ts, ./checkpoint.ts).
 *
 * BYTES SIGNED: pure Ed25519 (RFC 8032 §5.1) over the UTF-8 of
 *   "cosignature/v1\n"
 *   "time " <timestamp, ASCII decimal, no leading zeroes> "\n"
 *   <the checkpoint note text, every line including extension lines, final newline included; no signature lines>
 * where the timestamp is POSIX seconds when the cosignature was made.
 *
 * SIGNATURE LINE: "— <cosigner name> " base64(key ID || timestamp || signature) "\n" with
 *   key ID     SHA-256(name || 0x0A || 0x04 || 32-byte Ed25519 public key)[:4]   (signature type 0x04)
 *   timestamp  8 bytes, unsigned big-endian, at most 2^63 - 1
 *   signature  64 bytes
 * so the signature part after the key ID is exactly 72 bytes. The message does not name the cosigner, so a cosigner
 * key must not serve two cosigner names (the spec's rule; nothing here can check it).
 *
 * Timestamps are JavaScript numbers here: one beyond 2^53 - 1 (the year 285 million) is refused as unreadable.
 *
 * Browser-safe: no Node built-ins.
 */
import { ed25519 } from '@noble/curves/ed25519.js';
import { parseCheckpoint } from './checkpoint.ts';
import {
  formatVerifierKey,
  isValidKeyName,
  noteKeyId,
  noteTextProblem,
  parseVerifierKey,
  SIGNATURE_TYPE_COSIGNATURE_V1,
  utf8,
  verifyEd25519,
  type NoteSignature,
  type NoteSigner,
  type NoteVerifier,
  type Parsed,
} from './note.ts';

/** The domain-separating first line of the signed message. */
export const COSIGNATURE_V1_HEADER = 'cosignature/v1\n';
/** Bytes after the key ID: 8 of timestamp, 64 of Ed25519 signature. */
export const COSIGNATURE_V1_BYTES = 72;

/** The exact bytes a cosigner signs for `checkpointText` at `timestamp` (POSIX seconds). */
export function cosignedMessage(checkpointText: string, timestamp: number): Uint8Array {
  checkTimestamp(timestamp);
  const problem = noteTextProblem(checkpointText);
  if (problem !== undefined) throw new RangeError(problem);
  return utf8(`${COSIGNATURE_V1_HEADER}time ${timestamp}\n${checkpointText}`);
}

/** SHA-256(name || 0x0A || 0x04 || public key)[:4]. */
export function cosignerKeyId(name: string, publicKey: Uint8Array): number {
  return noteKeyId(name, SIGNATURE_TYPE_COSIGNATURE_V1, publicKey);
}

/**
 * A NoteSigner that cosigns checkpoints with a 32-byte Ed25519 private key (seed), stamping each signature with
 * `now()` (POSIX seconds; default the system clock). Signing a text that is not a checkpoint is refused: a witness
 * vouches for tree heads, nothing else.
 */
export function ed25519Cosigner(name: string, privateKey: Uint8Array, now: () => number = () => Math.floor(Date.now() / 1000)): NoteSigner {
  if (!isValidKeyName(name)) throw new RangeError('a key name must be non-empty, with no space or "+"');
  if (privateKey.length !== 32) throw new RangeError('an Ed25519 private key (seed) is 32 bytes');
  const seed = privateKey.slice();
  return {
    name,
    keyId: cosignerKeyId(name, ed25519.getPublicKey(seed)),
    sign(text: Uint8Array): Uint8Array {
      const checkpointText = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(text);
      const parsed = parseCheckpoint(checkpointText);
      if (!parsed.ok) throw new RangeError(`not a checkpoint: ${parsed.reason}`);
      const timestamp = now();
      const signature = ed25519.sign(cosignedMessage(checkpointText, timestamp), seed);
      const out = new Uint8Array(COSIGNATURE_V1_BYTES);
      writeUint64(out, 0, timestamp);
      out.set(signature, 8);
      return out;
    },
  };
}

/** A NoteVerifier of cosignature/v1 signatures by a 32-byte Ed25519 public key. */
export function ed25519CosignatureVerifier(name: string, publicKey: Uint8Array): NoteVerifier {
  if (!isValidKeyName(name)) throw new RangeError('a key name must be non-empty, with no space or "+"');
  if (publicKey.length !== 32) throw new RangeError('an Ed25519 public key is 32 bytes');
  const key = publicKey.slice();
  return {
    name,
    keyId: cosignerKeyId(name, key),
    verify(text: Uint8Array, signature: Uint8Array): boolean {
      const timestamp = cosignatureTimestamp(signature);
      if (!timestamp.ok) return false;
      let checkpointText: string;
      try {
        checkpointText = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(text);
      } catch {
        return false;
      }
      if (!parseCheckpoint(checkpointText).ok) return false;
      return verifyEd25519(signature.subarray(8), cosignedMessage(checkpointText, timestamp.value), key);
    },
  };
}

/** The verifier key of a cosigner: <name>+<hex key ID>+base64(0x04 || public key). */
export function formatCosignerKey(name: string, publicKey: Uint8Array): string {
  return formatVerifierKey(name, SIGNATURE_TYPE_COSIGNATURE_V1, publicKey);
}

/** A cosignature verifier from a verifier key of type 0x04. */
export function cosignatureVerifierFromKey(vkey: string): Parsed<NoteVerifier> {
  const parsed = parseVerifierKey(vkey);
  if (!parsed.ok) return parsed;
  if (parsed.value.signatureType !== SIGNATURE_TYPE_COSIGNATURE_V1) {
    return { ok: false, reason: `the key's signature type is 0x${parsed.value.signatureType.toString(16).padStart(2, '0')}, not cosignature/v1 (0x04)` };
  }
  return { ok: true, value: ed25519CosignatureVerifier(parsed.value.name, parsed.value.publicKey) };
}

/**
 * The timestamp of a cosignature/v1 signature (the bytes after the key ID), without verifying it: exactly 72
 * bytes, timestamp at most 2^63 - 1 and, to be read here, at most 2^53 - 1.
 */
export function cosignatureTimestamp(signature: Uint8Array | NoteSignature): Parsed<number> {
  const bytes = signature instanceof Uint8Array ? signature : signature.signature;
  if (bytes.length !== COSIGNATURE_V1_BYTES) {
    return { ok: false, reason: `a cosignature/v1 signature is ${COSIGNATURE_V1_BYTES} bytes after the key ID, got ${bytes.length}` };
  }
  if (bytes[0]! >= 0x80) return { ok: false, reason: 'the timestamp exceeds 2^63 - 1' };
  const high = ((bytes[0]! << 24) | (bytes[1]! << 16) | (bytes[2]! << 8) | bytes[3]!) >>> 0;
  const low = ((bytes[4]! << 24) | (bytes[5]! << 16) | (bytes[6]! << 8) | bytes[7]!) >>> 0;
  if (high >= 2 ** 21) return { ok: false, reason: 'the timestamp is beyond 2^53 - 1 seconds, which this verifier cannot hold exactly' };
  return { ok: true, value: high * 2 ** 32 + low };
}

function writeUint64(bytes: Uint8Array, offset: number, value: number): void {
  const high = Math.floor(value / 2 ** 32);
  const low = value % 2 ** 32;
  for (let i = 0; i < 4; i++) {
    bytes[offset + i] = (high >>> (24 - 8 * i)) & 0xff;
    bytes[offset + 4 + i] = (low >>> (24 - 8 * i)) & 0xff;
  }
}

function checkTimestamp(timestamp: number): void {
  if (!Number.isSafeInteger(timestamp) || timestamp < 0) throw new RangeError(`timestamp ${timestamp} is not an integer in 0..2^53-1`);
}

/**
 * C2SP signed-note (c2sp.org/signed-note@v1.0.0): text signed by one or more keys, the envelope of checkpoints
 * (./checkpoint.ts) and their cosignatures (./cosignature.ts).
 *
 * FORMAT. A note is UTF-8 with no control character but newline (U+000A):
 *   <text, one or more lines, each ending in "\n">
 *   "\n"                                            the blank line; the text ends at the LAST blank line
 *   "— " <key name> " " base64(key ID || signature) "\n"   one or more, U+2014 em dash
 * Key names are non-empty, with no Unicode White_Space and no "+". base64 is RFC 4648 §4 with padding, canonical.
 * The key ID is 4 bytes, big-endian, SHA-256(key name || 0x0A || signature type || public key)[:4].
 *
 * BYTES SIGNED. Ed25519 note signatures (signature type 0x01) are pure Ed25519 (RFC 8032 §5.1, no prehash, no
 * context) over the UTF-8 bytes of the text, its final newline included, the blank line and signature lines not.
 * The key ID is SHA-256(name || 0x0A || 0x01 || 32-byte Ed25519 public key)[:4].
 *
 * KEYS are written as in golang.org/x/mod/sumdb/note:
 *   verifier key  <name>+<8 lowercase hex key ID>+base64(signature type || public key)
 *   signer key    PRIVATE+KEY+<name>+<8 hex key ID>+base64(signature type || 32-byte Ed25519 seed)
 *
 * Parsing is strict: anything outside the grammar is refused with a reason, never repaired. Opening a note follows
 * the spec's rules: signatures from unknown keys (name and key ID not both matching a known key) are kept aside
 * unverified; a signature from a known key that fails refuses the whole note; a note with no verified signature is
 * refused. Verification is RFC 8032 strict (zip215: false), as for batch headers (../header.ts).
 *
 * Browser-safe: @noble/curves and @noble/hashes, TextEncoder/TextDecoder; no Node built-ins.
 */
import { ed25519 } from '@noble/curves/ed25519.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { base64ToBytes, bytesToBase64 } from '../encoding.ts';
import { verifyEd25519Strict } from '../header.ts';

/** Signature type byte of plain Ed25519 note signatures. */
export const SIGNATURE_TYPE_ED25519 = 0x01;
/** Signature type byte of timestamped Ed25519 checkpoint cosignatures (c2sp.org/tlog-cosignature). */
export const SIGNATURE_TYPE_COSIGNATURE_V1 = 0x04;
/** More signature lines than this refuse the note (the spec requires at least 16 be accepted; Go's limit is 100). */
export const MAX_NOTE_SIGNATURES = 100;

const SIGNATURE_PREFIX = '\u2014 ';

/** One signature line: the key it names and the signature bytes after the key ID. */
export interface NoteSignature {
  readonly name: string;
  /** The 32-bit key ID, as an unsigned number. */
  readonly keyId: number;
  readonly signature: Uint8Array;
}

/** A parsed, not yet verified, note. */
export interface Note {
  /** The signed text, final newline included. */
  readonly text: string;
  readonly signatures: readonly NoteSignature[];
}

/** Signs note texts. `sign` gets the UTF-8 bytes of the text and returns the signature bytes after the key ID. */
export interface NoteSigner {
  readonly name: string;
  readonly keyId: number;
  sign(text: Uint8Array): Uint8Array;
}

/** Verifies note signatures of one key (name and key ID). Never throws: a malformed signature is invalid. */
export interface NoteVerifier {
  readonly name: string;
  readonly keyId: number;
  verify(text: Uint8Array, signature: Uint8Array): boolean;
}

export type Parsed<T> = { ok: true; value: T } | { ok: false; reason: string };

/** A verified note: the signatures that verified, and those from keys the caller did not name. */
export interface OpenedNote {
  readonly text: string;
  readonly verified: readonly NoteSignature[];
  readonly unverified: readonly NoteSignature[];
}

/** SHA-256(name || 0x0A || signatureType || publicKey)[:4] as an unsigned 32-bit number. */
export function noteKeyId(name: string, signatureType: number, publicKey: Uint8Array): number {
  const nameBytes = utf8(name);
  const message = new Uint8Array(nameBytes.length + 2 + publicKey.length);
  message.set(nameBytes, 0);
  message[nameBytes.length] = 0x0a;
  message[nameBytes.length + 1] = signatureType;
  message.set(publicKey, nameBytes.length + 2);
  const digest = sha256(message);
  return readUint32(digest, 0);
}

/** A key name by the spec: non-empty, no Unicode White_Space, no "+" (and, being in a note, no control character). */
export function isValidKeyName(name: string): boolean {
  return typeof name === 'string' && name.length > 0 && !/[\p{White_Space}+\u0000-\u001f]/u.test(name) && !hasLoneSurrogate(name);
}

/**
 * Parses a note without verifying anything. Bytes must be UTF-8; a string must have no lone surrogates (it could
 * not have been UTF-8).
 */
export function parseNote(input: string | Uint8Array): Parsed<Note> {
  let message: string;
  if (input instanceof Uint8Array) {
    try {
      message = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(input);
    } catch {
      return refuse('the note is not valid UTF-8');
    }
  } else if (typeof input === 'string') {
    if (hasLoneSurrogate(input)) return refuse('the note has a lone UTF-16 surrogate, which has no UTF-8 form');
    message = input;
  } else {
    return refuse('the note is neither text nor bytes');
  }
  const control = /[\u0000-\u0009\u000b-\u001f]/.exec(message);
  if (control) return refuse(`the note has control character U+${hex4(control[0].charCodeAt(0))} at offset ${control.index}`);
  const split = message.lastIndexOf('\n\n');
  if (split < 0) return refuse('the note has no blank line before its signatures');
  const text = message.slice(0, split + 1);
  const block = message.slice(split + 2);
  if (block.length === 0) return refuse('the note has no signature lines');
  if (!block.endsWith('\n')) return refuse('the last signature line does not end in a newline');
  const lines = block.slice(0, -1).split('\n');
  if (lines.length > MAX_NOTE_SIGNATURES) return refuse(`the note has ${lines.length} signature lines; at most ${MAX_NOTE_SIGNATURES} are read`);
  const signatures: NoteSignature[] = [];
  for (const [i, line] of lines.entries()) {
    const parsed = parseSignatureLine(line);
    if (!parsed.ok) return refuse(`signature line ${i + 1}: ${parsed.reason}`);
    signatures.push(parsed.value);
  }
  return { ok: true, value: { text, signatures } };
}

/** Parses one signature line, without its newline. */
export function parseSignatureLine(line: string): Parsed<NoteSignature> {
  if (!line.startsWith(SIGNATURE_PREFIX)) return refuse('it does not start with an em dash (U+2014) and a space');
  const rest = line.slice(SIGNATURE_PREFIX.length);
  const space = rest.indexOf(' ');
  if (space < 0) return refuse('it has no space between the key name and the signature');
  const name = rest.slice(0, space);
  const encoded = rest.slice(space + 1);
  if (!isValidKeyName(name)) return refuse('the key name is empty or has a space or "+"');
  let bytes: Uint8Array;
  try {
    bytes = base64ToBytes(encoded);
  } catch (error) {
    return refuse(`the signature is not canonical padded base64 (${(error as Error).message})`);
  }
  if (bytes.length < 5) return refuse(`the signature is ${bytes.length} bytes; a key ID and at least one signature byte are needed`);
  return { ok: true, value: { name, keyId: readUint32(bytes, 0), signature: bytes.slice(4) } };
}

/** One signature line, newline included: "— <name> base64(key ID || signature)\n". */
export function formatSignatureLine(signature: NoteSignature): string {
  if (!isValidKeyName(signature.name)) throw new RangeError('a key name must be non-empty, with no space or "+"');
  checkKeyId(signature.keyId);
  if (signature.signature.length === 0) throw new RangeError('a signature needs at least one byte');
  const bytes = new Uint8Array(4 + signature.signature.length);
  writeUint32(bytes, 0, signature.keyId);
  bytes.set(signature.signature, 4);
  return `${SIGNATURE_PREFIX}${signature.name} ${bytesToBase64(bytes)}\n`;
}

/** Checks that `text` can be the text of a note; returns the reason it cannot, or undefined. */
export function noteTextProblem(text: string): string | undefined {
  if (typeof text !== 'string' || text.length === 0) return 'the text is empty';
  if (!text.endsWith('\n')) return 'the text does not end in a newline';
  if (hasLoneSurrogate(text)) return 'the text has a lone UTF-16 surrogate';
  const control = /[\u0000-\u0009\u000b-\u001f]/.exec(text);
  if (control) return `the text has control character U+${hex4(control[0].charCodeAt(0))}`;
  return undefined;
}

/** The note: text, blank line, the signature lines in the order given. */
export function formatNote(text: string, signatures: readonly NoteSignature[]): string {
  const problem = noteTextProblem(text);
  if (problem !== undefined) throw new RangeError(problem);
  if (signatures.length === 0) throw new RangeError('a note needs at least one signature');
  if (signatures.length > MAX_NOTE_SIGNATURES) throw new RangeError(`a note carries at most ${MAX_NOTE_SIGNATURES} signatures`);
  return `${text}\n${signatures.map(formatSignatureLine).join('')}`;
}

/** Signs `text` with each signer, in order, and writes the note. */
export function signNote(text: string, signers: readonly NoteSigner[]): string {
  const problem = noteTextProblem(text);
  if (problem !== undefined) throw new RangeError(problem);
  const bytes = utf8(text);
  return formatNote(
    text,
    signers.map((signer) => ({ name: signer.name, keyId: signer.keyId, signature: signer.sign(bytes) })),
  );
}

/**
 * Parses and verifies a note against known keys, by the rules in this file's header. Two verifiers with the same
 * name and key ID make a signature by that key ambiguous, which refuses the note. Repeated identical signature lines
 * count once.
 */
export function openNote(input: string | Uint8Array, verifiers: readonly NoteVerifier[]): Parsed<OpenedNote> {
  const parsed = parseNote(input);
  if (!parsed.ok) return parsed;
  const { text, signatures } = parsed.value;
  const textBytes = utf8(text);
  const verified: NoteSignature[] = [];
  const unverified: NoteSignature[] = [];
  const seen = new Set<string>();
  for (const signature of signatures) {
    const line = formatSignatureLine(signature);
    if (seen.has(line)) continue;
    seen.add(line);
    const known = verifiers.filter((v) => v.name === signature.name && v.keyId === signature.keyId);
    const key = `${signature.name}+${hex8(signature.keyId)}`;
    if (known.length === 0) {
      unverified.push(signature);
      continue;
    }
    if (known.length > 1) return refuse(`ambiguous key ${key}: more than one verifier has that name and key ID`);
    let valid = false;
    try {
      valid = known[0]!.verify(textBytes, signature.signature);
    } catch {
      valid = false;
    }
    if (!valid) return refuse(`invalid signature for key ${key}`);
    verified.push(signature);
  }
  if (verified.length === 0) return refuse('the note has no signature from a known key');
  return { ok: true, value: { text, verified, unverified } };
}

/** A signer of plain Ed25519 note signatures (type 0x01) from a 32-byte Ed25519 private key (seed). */
export function ed25519NoteSigner(name: string, privateKey: Uint8Array): NoteSigner {
  if (!isValidKeyName(name)) throw new RangeError('a key name must be non-empty, with no space or "+"');
  if (privateKey.length !== 32) throw new RangeError('an Ed25519 private key (seed) is 32 bytes');
  const seed = privateKey.slice();
  const keyId = noteKeyId(name, SIGNATURE_TYPE_ED25519, ed25519.getPublicKey(seed));
  return { name, keyId, sign: (text) => ed25519.sign(text, seed) };
}

/** A verifier of plain Ed25519 note signatures (type 0x01) by a 32-byte Ed25519 public key. */
export function ed25519NoteVerifier(name: string, publicKey: Uint8Array): NoteVerifier {
  if (!isValidKeyName(name)) throw new RangeError('a key name must be non-empty, with no space or "+"');
  if (publicKey.length !== 32) throw new RangeError('an Ed25519 public key is 32 bytes');
  const key = publicKey.slice();
  return {
    name,
    keyId: noteKeyId(name, SIGNATURE_TYPE_ED25519, key),
    verify: (text, signature) => signature.length === 64 && verifyEd25519(signature, text, key),
  };
}

/** The parts of a verifier key, with its key ID checked against its name, type and public key. */
export interface VerifierKey {
  readonly name: string;
  readonly keyId: number;
  readonly signatureType: number;
  readonly publicKey: Uint8Array;
}

/** Writes a verifier key: <name>+<hex key ID>+base64(type || public key). */
export function formatVerifierKey(name: string, signatureType: number, publicKey: Uint8Array): string {
  if (!isValidKeyName(name)) throw new RangeError('a key name must be non-empty, with no space or "+"');
  const material = new Uint8Array(1 + publicKey.length);
  material[0] = signatureType;
  material.set(publicKey, 1);
  return `${name}+${hex8(noteKeyId(name, signatureType, publicKey))}+${bytesToBase64(material)}`;
}

/**
 * Parses a verifier key strictly: three "+"-separated parts (the base64 part may itself hold "+"), a valid name,
 * 8 lowercase hex digits, canonical base64 of a type byte and the key, and a key ID that matches. Only the types
 * implemented here are read: Ed25519 (0x01) and cosignature/v1 (0x04), each with exactly 32 key bytes.
 */
export function parseVerifierKey(vkey: string): Parsed<VerifierKey> {
  if (typeof vkey !== 'string') return refuse('the verifier key is not text');
  const first = vkey.indexOf('+');
  const second = first < 0 ? -1 : vkey.indexOf('+', first + 1);
  if (second < 0) return refuse('a verifier key has three parts separated by "+"');
  return parseKeyParts(vkey.slice(0, first), vkey.slice(first + 1, second), vkey.slice(second + 1), (material) => material.slice(1));
}

/** Writes an Ed25519 signer key as golang.org/x/mod/sumdb/note does: PRIVATE+KEY+<name>+<hex key ID>+base64(0x01 || seed). */
export function formatSignerKey(name: string, privateKey: Uint8Array): string {
  if (privateKey.length !== 32) throw new RangeError('an Ed25519 private key (seed) is 32 bytes');
  const keyId = noteKeyId(name, SIGNATURE_TYPE_ED25519, ed25519.getPublicKey(privateKey));
  const material = new Uint8Array(33);
  material[0] = SIGNATURE_TYPE_ED25519;
  material.set(privateKey, 1);
  if (!isValidKeyName(name)) throw new RangeError('a key name must be non-empty, with no space or "+"');
  return `PRIVATE+KEY+${name}+${hex8(keyId)}+${bytesToBase64(material)}`;
}

/** Parses an Ed25519 signer key (the format above); the key ID must match the seed's public key. */
export function parseSignerKey(skey: string): Parsed<{ name: string; keyId: number; privateKey: Uint8Array }> {
  if (typeof skey !== 'string' || !skey.startsWith('PRIVATE+KEY+')) return refuse('a signer key starts with "PRIVATE+KEY+"');
  const rest = skey.slice('PRIVATE+KEY+'.length);
  const first = rest.indexOf('+');
  const second = first < 0 ? -1 : rest.indexOf('+', first + 1);
  if (second < 0) return refuse('a signer key has a name, a key ID and a key, separated by "+"');
  const parsed = parseKeyParts(rest.slice(0, first), rest.slice(first + 1, second), rest.slice(second + 1), (material) =>
    material.length === 33 ? ed25519.getPublicKey(material.slice(1)) : material.slice(1),
  );
  if (!parsed.ok) return parsed;
  if (parsed.value.signatureType !== SIGNATURE_TYPE_ED25519) return refuse('only Ed25519 (type 0x01) signer keys are read');
  return { ok: true, value: { name: parsed.value.name, keyId: parsed.value.keyId, privateKey: base64ToBytes(rest.slice(second + 1)).slice(1) } };
}

/** A NoteVerifier for an Ed25519 (type 0x01) verifier key. */
export function ed25519NoteVerifierFromKey(vkey: string): Parsed<NoteVerifier> {
  const parsed = parseVerifierKey(vkey);
  if (!parsed.ok) return parsed;
  if (parsed.value.signatureType !== SIGNATURE_TYPE_ED25519) {
    return refuse(`the key's signature type is 0x${hex2(parsed.value.signatureType)}, not Ed25519 (0x01)`);
  }
  return { ok: true, value: ed25519NoteVerifier(parsed.value.name, parsed.value.publicKey) };
}

/**
 * Pure Ed25519 verification by the cofactorless RFC 8032 equation that OpenSSL and libsodium use (../header.ts
 * verifyEd25519Strict: canonical encodings, no small-order key or R); false for anything malformed.
 */
export function verifyEd25519(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean {
  return verifyEd25519Strict(signature, message, publicKey);
}

/** Lowercase 8-digit hex of a key ID. */
export function hex8(keyId: number): string {
  return keyId.toString(16).padStart(8, '0');
}

export function utf8(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

export function readUint32(bytes: Uint8Array, offset: number): number {
  return ((bytes[offset]! << 24) | (bytes[offset + 1]! << 16) | (bytes[offset + 2]! << 8) | bytes[offset + 3]!) >>> 0;
}

function writeUint32(bytes: Uint8Array, offset: number, value: number): void {
  bytes[offset] = value >>> 24;
  bytes[offset + 1] = value >>> 16;
  bytes[offset + 2] = value >>> 8;
  bytes[offset + 3] = value;
}

function parseKeyParts(
  name: string,
  keyIdHex: string,
  encoded: string,
  publicKeyOf: (material: Uint8Array) => Uint8Array,
): Parsed<VerifierKey> {
  if (!isValidKeyName(name)) return refuse('the key name is empty or has a space or "+"');
  if (!/^[0-9a-f]{8}$/.test(keyIdHex)) return refuse('the key ID is not 8 lowercase hex digits');
  let material: Uint8Array;
  try {
    material = base64ToBytes(encoded);
  } catch (error) {
    return refuse(`the key is not canonical padded base64 (${(error as Error).message})`);
  }
  if (material.length < 2) return refuse('the key has no key material after its type byte');
  const signatureType = material[0]!;
  // Only the types implemented here: a key of another type could not verify anything, so reading it is an error.
  if (signatureType !== SIGNATURE_TYPE_ED25519 && signatureType !== SIGNATURE_TYPE_COSIGNATURE_V1) {
    return refuse(`signature type 0x${hex2(signatureType)} is not Ed25519 (0x01) or cosignature/v1 (0x04)`);
  }
  if (material.length !== 33) {
    return refuse(`an Ed25519 key is 32 bytes after its type byte, got ${material.length - 1}`);
  }
  const publicKey = publicKeyOf(material);
  const keyId = Number.parseInt(keyIdHex, 16);
  if (noteKeyId(name, signatureType, publicKey) !== keyId) return refuse('the key ID does not match the name, type and key');
  return { ok: true, value: { name, keyId, signatureType, publicKey } };
}

function checkKeyId(keyId: number): void {
  if (!Number.isInteger(keyId) || keyId < 0 || keyId > 0xffffffff) throw new RangeError('a key ID is a 32-bit unsigned integer');
}

function hasLoneSurrogate(text: string): boolean {
  return /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(text);
}

function hex2(x: number): string {
  return x.toString(16).padStart(2, '0');
}

function hex4(x: number): string {
  return x.toString(16).padStart(4, '0').toUpperCase();
}

function refuse(reason: string): { ok: false; reason: string } {
  return { ok: false, reason };
}

/**
 * C2SP signed-note, tlog-checkpoint and tlog-cosignature: the golang.org/x/mod, C2SP and transparency-dev/formats
 * vectors (test/fixtures/anchor-log/notes.json), strict parsing with reasons, and round trips in which any single
 * changed bit of a signed checkpoint is refused.
 */
import { readFileSync } from 'node:fs';
import { ed25519 } from '@noble/curves/ed25519.js';
import { describe, expect, it } from 'vitest';
import { base64ToBytes, hexToBytes } from '../../anchor/index.ts';
import {
  cosignatureTimestamp,
  cosignatureVerifierFromKey,
  cosignedMessage,
  cosignerKeyId,
  ed25519CosignatureVerifier,
  ed25519Cosigner,
  ed25519NoteSigner,
  ed25519NoteVerifier,
  ed25519NoteVerifierFromKey,
  formatCheckpoint,
  formatCosignerKey,
  formatSignerKey,
  formatVerifierKey,
  noteKeyId,
  openCheckpoint,
  openNote,
  parseCheckpoint,
  parseNote,
  parseSignerKey,
  parseVerifierKey,
  signCheckpoint,
  signNote,
  SIGNATURE_TYPE_ED25519,
  type Checkpoint,
  type NoteVerifier,
} from '../../anchor/log/index.ts';

interface NoteVectors {
  signerKey: { skey: string; name: string; keyId: string; verifierKey: string };
  sign: { text: string; note: string };
  verifierKeys: Array<{ vkey: string; name: string; keyId: string; type: number }>;
  badVerifierKeys: Array<{ vkey: string; why: string }>;
  open: Array<{ desc: string; note: string; verifiers: string[]; verified?: string[]; unverified?: string[]; wantErr?: boolean }>;
  malformed: Array<{ desc: string; note: string }>;
  malformedBytes: Array<{ desc: string; hex: string }>;
  cosignatureTimestamps: Array<{ signature: string; timestamp?: number; wantErr?: boolean }>;
  checkpoint: { note: string; origin: string; size: number; rootHash: string; cosignedMessage: string };
}
const vectors = JSON.parse(readFileSync(new URL('../fixtures/anchor-log/notes.json', import.meta.url), 'utf8')) as NoteVectors;

const verifierFor = (vkey: string): NoteVerifier => {
  const parsed = ed25519NoteVerifierFromKey(vkey);
  if (!parsed.ok) throw new Error(parsed.reason);
  return parsed.value;
};
const seed = (byte: number): Uint8Array => new Uint8Array(32).fill(byte);

describe('signed-note keys', () => {
  it.each(vectors.verifierKeys.map((k) => [k.vkey, k] as const))('%s parses, and its key ID is recomputed', (_vkey, k) => {
    const parsed = parseVerifierKey(k.vkey);
    expect(parsed.ok, parsed.ok ? '' : parsed.reason).toBe(true);
    if (!parsed.ok) return;
    expect(parsed.value.name).toBe(k.name);
    expect(parsed.value.signatureType).toBe(k.type);
    expect(parsed.value.keyId.toString(16).padStart(8, '0')).toBe(k.keyId);
    expect(formatVerifierKey(k.name, k.type, parsed.value.publicKey)).toBe(k.vkey);
  });

  it.each(vectors.badVerifierKeys.map((k) => [k.why, k.vkey] as const))('refuses a key with %s', (_why, vkey) => {
    const parsed = parseVerifierKey(vkey);
    expect(parsed.ok).toBe(false);
  });

  it('refuses every truncation and every changed character of a good key (as golang.org/x/mod does)', () => {
    const vkey = vectors.signerKey.verifierKey;
    for (let i = 0; i <= vkey.length; i++) {
      for (let j = i + 1; j <= vkey.length; j++) {
        if (i === 0 && j === vkey.length) continue;
        expect(ed25519NoteVerifierFromKey(vkey.slice(i, j)).ok, vkey.slice(i, j)).toBe(false);
      }
    }
    for (let i = 0; i < vkey.length; i++) {
      const changed = vkey.slice(0, i) + String.fromCharCode(vkey.charCodeAt(i) + 1) + vkey.slice(i + 1);
      expect(ed25519NoteVerifierFromKey(changed).ok, changed).toBe(false);
    }
  });

  it('reads the signer key, whose public key is the verifier key', () => {
    const parsed = parseSignerKey(vectors.signerKey.skey);
    expect(parsed.ok).toBe(true);
    if (!parsed.ok) return;
    expect(parsed.value.name).toBe('PeterNeumann');
    expect(formatVerifierKey('PeterNeumann', SIGNATURE_TYPE_ED25519, ed25519.getPublicKey(parsed.value.privateKey))).toBe(vectors.signerKey.verifierKey);
    expect(formatSignerKey('PeterNeumann', parsed.value.privateKey)).toBe(vectors.signerKey.skey);
    expect(parseSignerKey(vectors.signerKey.skey.replace('c74f20a3', 'c74f20a4')).ok).toBe(false);
    expect(parseSignerKey(vectors.signerKey.skey.slice(1)).ok).toBe(false);
  });

  it('computes the key ID as SHA-256(name || 0x0A || type || key)[:4]', () => {
    const publicKey = ed25519.getPublicKey(seed(7));
    expect(noteKeyId('example.com/log', 0x01, publicKey)).toBe(ed25519NoteVerifier('example.com/log', publicKey).keyId);
    expect(noteKeyId('example.com/log', 0x04, publicKey)).toBe(cosignerKeyId('example.com/log', publicKey));
    expect(noteKeyId('example.com/log', 0x01, publicKey)).not.toBe(noteKeyId('example.com/log', 0x04, publicKey));
  });
});

describe('signed notes', () => {
  it('signs the Go test quotation to the very bytes golang.org/x/mod expects', () => {
    const parsed = parseSignerKey(vectors.signerKey.skey);
    if (!parsed.ok) throw new Error(parsed.reason);
    expect(signNote(vectors.sign.text, [ed25519NoteSigner('PeterNeumann', parsed.value.privateKey)])).toBe(vectors.sign.note);
    expect(() => signNote('abc', [ed25519NoteSigner('PeterNeumann', parsed.value.privateKey)])).toThrow(/newline/);
  });

  it.each(vectors.open.map((c) => [c.desc, c] as const))('opens: %s', (_desc, c) => {
    const opened = openNote(c.note, c.verifiers.map(verifierFor));
    if (c.wantErr) {
      expect(opened.ok).toBe(false);
      return;
    }
    expect(opened.ok, opened.ok ? '' : opened.reason).toBe(true);
    if (!opened.ok) return;
    expect(opened.value.verified.map((s) => s.name)).toEqual(c.verified);
    expect(opened.value.unverified.map((s) => s.name)).toEqual(c.unverified);
  });

  it.each(vectors.malformed.map((c) => [c.desc, c.note] as const))('refuses a malformed note: %s', (_desc, note) => {
    const parsed = parseNote(note);
    expect(parsed.ok).toBe(false);
    expect(openNote(note, [verifierFor(vectors.signerKey.verifierKey)]).ok).toBe(false);
  });

  it.each(vectors.malformedBytes.map((c) => [c.desc, c.hex] as const))('refuses malformed bytes: %s', (_desc, hex) => {
    expect(parseNote(hexToBytes(hex))).toEqual({ ok: false, reason: 'the note is not valid UTF-8' });
  });

  it('gives reasons', () => {
    const text = vectors.sign.text;
    expect(parseNote(text)).toEqual({ ok: false, reason: 'the note has no blank line before its signatures' });
    expect(parseNote(`${text}\n— a b\n`)).toMatchObject({ ok: false, reason: expect.stringMatching(/^signature line 1: the signature is not canonical/) });
    expect(parseNote(`${text}\n— a+b AAAAAAA=\n`)).toMatchObject({ ok: false, reason: expect.stringMatching(/key name/) });
    expect(parseNote(`${text}\n— a AAAA\n`)).toMatchObject({ ok: false, reason: expect.stringMatching(/3 bytes/) });
    expect(parseNote(`${text}\n- a AAAAAAA=\n`)).toMatchObject({ ok: false, reason: expect.stringMatching(/em dash/) });
    expect(parseNote(`${text}\n— a\u00a0b AAAAAAA=\n`).ok).toBe(false);
    expect(parseNote(`a\rb\n\n— a AAAAAAA=\n`)).toMatchObject({ ok: false, reason: expect.stringMatching(/U\+000D/) });
    expect(parseNote(`a\ud800\n\n— a AAAAAAA=\n`).ok).toBe(false);
    // Non-canonical base64 (non-zero padding bits) is refused, not read leniently.
    expect(parseNote(`${text}\n— a AAAAAAB=\n`).ok).toBe(false);
  });

  it('splits at the last blank line, so the text may hold blank lines', () => {
    const signer = ed25519NoteSigner('k', seed(3));
    const note = signNote('one\n\ntwo\n', [signer]);
    const opened = openNote(note, [ed25519NoteVerifier('k', ed25519.getPublicKey(seed(3)))]);
    expect(opened.ok && opened.value.text).toBe('one\n\ntwo\n');
  });
});

describe('checkpoints', () => {
  const logKey = seed(1);
  const origin = 'anchorline.example/log';
  const log = ed25519NoteSigner(origin, logKey);
  const logVerifier = ed25519NoteVerifier(origin, ed25519.getPublicKey(logKey));
  const checkpoint: Checkpoint = { origin, size: 1_000_000, rootHash: new Uint8Array(32).fill(0xab), extensions: [] };

  it('parse the C2SP example, with its cosignature kept aside unverified', () => {
    const parsed = parseNote(vectors.checkpoint.note);
    if (!parsed.ok) throw new Error(parsed.reason);
    const body = parseCheckpoint(parsed.value.text);
    expect(body.ok).toBe(true);
    if (!body.ok) return;
    expect(body.value).toEqual({
      origin: vectors.checkpoint.origin,
      size: vectors.checkpoint.size,
      rootHash: base64ToBytes(vectors.checkpoint.rootHash),
      extensions: [],
    });
    expect(formatCheckpoint(body.value)).toBe(parsed.value.text);
    expect(parsed.value.signatures.map((s) => s.name)).toEqual(['example.com/behind-the-sofa', 'witness.example.com/w1']);
  });

  it('are written and read back exactly, extension lines included', () => {
    const text = formatCheckpoint({ ...checkpoint, extensions: ['ext one', 'ext two'] });
    expect(text).toBe(`${origin}\n1000000\n${'q6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s='}\next one\next two\n`);
    expect(parseCheckpoint(text)).toEqual({ ok: true, value: { ...checkpoint, extensions: ['ext one', 'ext two'] } });
  });

  it('refuse every deviation from the grammar, with a reason', () => {
    const root = 'q6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s=';
    const bad: Array<[string, RegExp]> = [
      [`${origin}\n1\n${root}`, /newline/],
      [`${origin}\n1\n`, /at least 3 lines/],
      [`\n1\n${root}\n`, /origin line is empty/],
      [`${origin}\n01\n${root}\n`, /leading zeroes/],
      [`${origin}\n+1\n${root}\n`, /decimal digits/],
      [`${origin}\n-1\n${root}\n`, /decimal digits/],
      [`${origin}\n 1\n${root}\n`, /decimal digits/],
      [`${origin}\n1e3\n${root}\n`, /decimal digits/],
      [`${origin}\n9007199254740992\n${root}\n`, /2\^53/],
      [`${origin}\n1\nq6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s\n`, /base64/],
      [`${origin}\n1\nq6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6t=\n`, /base64/],
      [`${origin}\n1\nq6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6urqw==\n`, /34 bytes/],
      [`${origin}\n1\n${root}\n\n`, /extension line 1 is empty/],
      [`${origin}\n1\n${root}\next\n\n`, /extension line 2 is empty/],
      [`${origin}\t\n1\n${root}\n`, /control character/],
    ];
    for (const [text, reason] of bad) {
      const parsed = parseCheckpoint(text);
      expect(parsed.ok, JSON.stringify(text)).toBe(false);
      expect(!parsed.ok && parsed.reason, JSON.stringify(text)).toMatch(reason);
    }
    expect(parseCheckpoint(`${origin}\n0\n${root}\n`).ok).toBe(true);
    expect(() => formatCheckpoint({ ...checkpoint, size: -1 })).toThrow(RangeError);
    expect(() => formatCheckpoint({ ...checkpoint, origin: '' })).toThrow(RangeError);
    expect(() => formatCheckpoint({ ...checkpoint, extensions: [''] })).toThrow(RangeError);
  });

  it('open only with the log key and the expected origin', () => {
    const note = signCheckpoint(checkpoint, log);
    const opened = openCheckpoint(note, { log: logVerifier, origin });
    expect(opened.ok && opened.value.checkpoint).toEqual(checkpoint);
    expect(openCheckpoint(note, { log: logVerifier, origin: 'other.example/log' })).toMatchObject({ ok: false, reason: expect.stringMatching(/another origin/) });
    const otherKey = ed25519NoteVerifier(origin, ed25519.getPublicKey(seed(2)));
    expect(openCheckpoint(note, { log: otherKey, origin }).ok).toBe(false);
    // A checkpoint signed only by a cosigner the caller knows is not the log's.
    const witness = ed25519Cosigner('witness.example/w1', seed(5), () => 1_700_000_000);
    const witnessVerifier = ed25519CosignatureVerifier('witness.example/w1', ed25519.getPublicKey(seed(5)));
    const onlyWitness = signNote(formatCheckpoint(checkpoint), [witness]);
    expect(openCheckpoint(onlyWitness, { log: logVerifier, origin, cosigners: [witnessVerifier] })).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/no signature by the log key/),
    });
  });

  it('refuse any single changed bit of a signed, cosigned checkpoint', () => {
    const witness = ed25519Cosigner('witness.example/w1', seed(5), () => 1_700_000_000);
    const witnessVerifier = ed25519CosignatureVerifier('witness.example/w1', ed25519.getPublicKey(seed(5)));
    const note = new TextEncoder().encode(signCheckpoint({ ...checkpoint, size: 12 }, log, [witness]));
    const options = { log: logVerifier, origin, cosigners: [witnessVerifier] };
    const opened = openCheckpoint(note, options);
    expect(opened.ok && opened.value.cosignatures.length).toBe(1);
    let accepted = 0;
    for (let bit = 0; bit < note.length * 8; bit++) {
      const changed = note.slice();
      changed[bit >>> 3]! ^= 1 << (bit & 7);
      const result = openCheckpoint(changed, options);
      // A changed bit may leave the log signature intact while making the witness line unknown (its name or key
      // ID changed); then the checkpoint opens, but without that cosignature.
      if (result.ok) {
        expect(result.value.cosignatures.length, `bit ${bit}`).toBe(0);
        expect(result.value.checkpoint).toEqual({ ...checkpoint, size: 12 });
        accepted++;
      }
    }
    expect(accepted).toBeLessThan(8 * 40);
  });
});

describe('cosignatures', () => {
  it('read the timestamps of the vectors, and refuse a plain note signature', () => {
    for (const c of vectors.cosignatureTimestamps) {
      const bytes = base64ToBytes(c.signature);
      const parsed = cosignatureTimestamp(bytes.slice(4));
      if (c.wantErr) expect(parsed.ok).toBe(false);
      else expect(parsed).toEqual({ ok: true, value: c.timestamp });
    }
  });

  it('sign the message the C2SP spec shows', () => {
    const text = parseNote(vectors.checkpoint.note);
    if (!text.ok) throw new Error(text.reason);
    expect(new TextDecoder().decode(cosignedMessage(text.value.text, 1679315147))).toBe(vectors.checkpoint.cosignedMessage);
  });

  it('carry key ID, timestamp and signature, and verify by the cosigner key', () => {
    const origin = 'anchorline.example/log';
    const log = ed25519NoteSigner(origin, seed(1));
    const logVerifier = ed25519NoteVerifier(origin, ed25519.getPublicKey(seed(1)));
    const witnessPublic = ed25519.getPublicKey(seed(9));
    const witness = ed25519Cosigner('witness.example/w9', seed(9), () => 1_727_964_367);
    const vkey = formatCosignerKey('witness.example/w9', witnessPublic);
    const fromKey = cosignatureVerifierFromKey(vkey);
    if (!fromKey.ok) throw new Error(fromKey.reason);
    const checkpoint: Checkpoint = { origin, size: 5, rootHash: new Uint8Array(32).fill(1), extensions: ['x'] };
    const note = signCheckpoint(checkpoint, log, [witness]);
    const opened = openCheckpoint(note, { log: logVerifier, origin, cosigners: [fromKey.value] });
    expect(opened.ok).toBe(true);
    if (!opened.ok) return;
    const [cosignature] = opened.value.cosignatures;
    expect(cosignature!.keyId).toBe(cosignerKeyId('witness.example/w9', witnessPublic));
    expect(cosignature!.signature.length).toBe(72);
    expect(cosignatureTimestamp(cosignature!)).toEqual({ ok: true, value: 1_727_964_367 });
    // The signature is plain Ed25519 over the cosigned message.
    expect(ed25519.verify(cosignature!.signature.slice(8), cosignedMessage(formatCheckpoint(checkpoint), 1_727_964_367), witnessPublic)).toBe(true);
    // A changed timestamp no longer verifies: the time is signed.
    const changed = cosignature!.signature.slice();
    changed[7]! ^= 1;
    expect(fromKey.value.verify(new TextEncoder().encode(formatCheckpoint(checkpoint)), changed)).toBe(false);
    // The same key read as a plain Ed25519 key has another key ID, and does not verify cosignatures.
    expect(ed25519NoteVerifierFromKey(vkey).ok).toBe(false);
    expect(noteKeyId('witness.example/w9', 0x01, witnessPublic)).not.toBe(cosignature!.keyId);
    // A cosigner vouches for checkpoints only.
    expect(() => signNote('not a checkpoint\n', [witness])).toThrow(/not a checkpoint/);
  });

  it('refuse a key of another signature type', () => {
    const remora = vectors.verifierKeys.find((k) => k.type === 4)!;
    expect(cosignatureVerifierFromKey(remora.vkey).ok).toBe(true);
    expect(cosignatureVerifierFromKey(vectors.signerKey.verifierKey).ok).toBe(false);
  });
});

describe('byte order marks', () => {
  it('are text like any other character: kept, signed and verified as sent', () => {
    const origin = '\ufeffanchorline.example/log';
    const log = ed25519NoteSigner('log', seed(1));
    const witness = ed25519Cosigner('w', seed(2), () => 1);
    const note = signCheckpoint({ origin, size: 1, rootHash: new Uint8Array(32), extensions: [] }, log, [witness]);
    const opened = openCheckpoint(new TextEncoder().encode(note), {
      log: ed25519NoteVerifier('log', ed25519.getPublicKey(seed(1))),
      origin,
      cosigners: [ed25519CosignatureVerifier('w', ed25519.getPublicKey(seed(2)))],
    });
    expect(opened.ok && opened.value.cosignatures.length).toBe(1);
    if (!opened.ok) return;
    // The witness signed the text with its mark, as any other implementation will check it.
    const message = cosignedMessage(opened.value.text, 1);
    expect(opened.value.text.startsWith('\ufeff')).toBe(true);
    expect(ed25519.verify(opened.value.cosignatures[0]!.signature.slice(8), message, ed25519.getPublicKey(seed(2)))).toBe(true);
  });
});

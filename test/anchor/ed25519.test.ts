import { createPublicKey, verify as opensslVerify } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ed25519 } from '@noble/curves/ed25519.js';
import { sha512 } from '@noble/hashes/sha2.js';
import { describe, expect, it } from 'vitest';
import { generateSigningKey, hexToBytes, verifyEd25519Strict } from '../../anchor/index.ts';

const FIXTURES = new URL('../fixtures/anchor/ed25519/', import.meta.url);

interface CctvVector {
  number: number;
  key: string;
  sig: string;
  msg: string;
  flags: string[] | null;
}

const vectors = JSON.parse(readFileSync(new URL('cctv-ed25519vectors.json', FIXTURES), 'utf8')) as CctvVector[];
const verdicts = new Map(
  (JSON.parse(readFileSync(new URL('verdicts.json', FIXTURES), 'utf8')) as { verdicts: Array<[number, boolean, boolean]> }).verdicts.map(
    ([number, openssl, libsodium]) => [number, { openssl, libsodium }],
  ),
);
const utf8 = new TextEncoder();
const Point = ed25519.Point;
const L = Point.Fn.ORDER;

/** The verdict of the OpenSSL linked into this Node.js (ED25519_verify: cofactorless, R compared as bytes). */
function openssl(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean {
  try {
    const key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(publicKey).toString('base64url') }, format: 'jwk' });
    return opensslVerify(null, message, key, signature);
  } catch {
    return false;
  }
}

function le(bytes: Uint8Array): bigint {
  let value = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) value = (value << 8n) | BigInt(bytes[i]!);
  return value;
}

function le32(value: bigint): Uint8Array {
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i++) out[i] = Number((value >> BigInt(8 * i)) & 0xffn);
  return out;
}

/** Signs as RFC 8032 does, but under an arbitrary public key encoding: what a signer holding scalar a would do for key `publicKey`. */
function signWithScalar(message: Uint8Array, scalar: bigint, publicKey: Uint8Array, nonce: bigint): Uint8Array {
  const encodedR = Point.BASE.multiply(nonce).toBytes();
  const k = le(sha512(new Uint8Array([...encodedR, ...publicKey, ...message]))) % L;
  const s = (nonce + k * scalar) % L;
  return new Uint8Array([...encodedR, ...le32(s)]);
}

describe('verifyEd25519Strict on the C2SP CCTV vectors', () => {
  it('has a verdict for every vector', () => {
    expect(vectors.length).toBe(914);
    for (const vector of vectors) expect(verdicts.has(vector.number), `vector ${vector.number}`).toBe(true);
  });

  it('accepts exactly the signatures both OpenSSL and libsodium accept', () => {
    const wrong: number[] = [];
    for (const vector of vectors) {
      const { openssl: byOpenssl, libsodium } = verdicts.get(vector.number)!;
      const ours = verifyEd25519Strict(hexToBytes(vector.sig), utf8.encode(vector.msg), hexToBytes(vector.key));
      if (ours !== (byOpenssl && libsodium)) wrong.push(vector.number);
    }
    expect(wrong).toEqual([]);
    // The recorded verdicts are not degenerate: some accepted, and OpenSSL and libsodium disagree on many.
    const accepted = [...verdicts.values()].filter((v) => v.openssl && v.libsodium).length;
    expect(accepted).toBe(43);
  });

  it("records the verdicts of this Node.js's OpenSSL", () => {
    const differ = vectors
      .filter((vector) => openssl(hexToBytes(vector.sig), utf8.encode(vector.msg), hexToBytes(vector.key)) !== verdicts.get(vector.number)!.openssl)
      .map((vector) => vector.number);
    expect(differ).toEqual([]);
  });

  it('refuses every vector with a low-order A or R, a non-canonical encoding or a low-order residue', () => {
    const strictFlags = ['low_order_A', 'low_order_R', 'non_canonical_A', 'non_canonical_R', 'low_order_residue'];
    for (const vector of vectors) {
      if (!(vector.flags ?? []).some((flag) => strictFlags.includes(flag))) continue;
      expect(verifyEd25519Strict(hexToBytes(vector.sig), utf8.encode(vector.msg), hexToBytes(vector.key)), `vector ${vector.number}`).toBe(false);
    }
  });

  it("is stricter than noble's RFC 8032 mode, which checks the cofactored equation", () => {
    const nobleOnly = vectors.filter((vector) => {
      const [sig, msg, key] = [hexToBytes(vector.sig), utf8.encode(vector.msg), hexToBytes(vector.key)];
      return ed25519.verify(sig, msg, key, { zip215: false }) && !verifyEd25519Strict(sig, msg, key);
    });
    expect(nobleOnly.length).toBeGreaterThan(0);
    expect(nobleOnly.every((vector) => vector.flags?.includes('low_order_residue') || vector.flags?.includes('low_order_R'))).toBe(true);
  });
});

describe('verifyEd25519Strict on signatures made here', () => {
  const { privateKey, publicKey } = generateSigningKey();
  const message = utf8.encode('{"batchNumber":1}');
  const signature = ed25519.sign(message, privateKey);

  it('accepts a genuine signature, as OpenSSL does', () => {
    expect(verifyEd25519Strict(signature, message, publicKey)).toBe(true);
    expect(openssl(signature, message, publicKey)).toBe(true);
    expect(verifyEd25519Strict(signature, utf8.encode('{"batchNumber":2}'), publicKey)).toBe(false);
  });

  it('refuses S >= L (S + L, S + 2^253), which every verifier refuses', () => {
    const s = le(signature.subarray(32));
    for (const bigger of [s + L, s + (1n << 253n)]) {
      if (bigger >= 1n << 256n) continue;
      const tampered = new Uint8Array([...signature.subarray(0, 32), ...le32(bigger)]);
      expect(verifyEd25519Strict(tampered, message, publicKey)).toBe(false);
      expect(openssl(tampered, message, publicKey)).toBe(false);
      expect(ed25519.verify(tampered, message, publicKey, { zip215: false })).toBe(false);
    }
  });

  it('refuses wrong lengths', () => {
    expect(verifyEd25519Strict(signature.subarray(0, 63), message, publicKey)).toBe(false);
    expect(verifyEd25519Strict(signature, message, publicKey.subarray(0, 31))).toBe(false);
    expect(verifyEd25519Strict(new Uint8Array([...signature, 0]), message, publicKey)).toBe(false);
  });

  it('refuses a key with a torsion component unless the residue cancels, as OpenSSL does, where a cofactored check accepts', () => {
    // A' = aB + T, T of order 8: the signer knows a, signs with A' in the hash. [S]B = R + [k]A' - [k]T, so the
    // cofactorless equation holds only when [k]T is the identity (k divisible by 8); the cofactored one always.
    const { scalar } = ed25519.utils.getExtendedPublicKey(privateKey);
    const torsion = Point.fromHex('26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05');
    expect(torsion.multiplyUnsafe(8n).equals(Point.ZERO)).toBe(true);
    const dirtyKey = Point.BASE.multiply(scalar).add(torsion).toBytes();
    let refused = 0;
    let accepted = 0;
    for (let i = 0; i < 40 && (refused === 0 || accepted === 0); i++) {
      const text = utf8.encode(`{"batchNumber":${i}}`);
      const sig = signWithScalar(text, scalar, dirtyKey, 1234567n + BigInt(i));
      const k = le(sha512(new Uint8Array([...sig.subarray(0, 32), ...dirtyKey, ...text]))) % L;
      expect(ed25519.verify(sig, text, dirtyKey, { zip215: false }), 'cofactored').toBe(true);
      const cancels = k % 8n === 0n;
      expect(verifyEd25519Strict(sig, text, dirtyKey), `k mod 8 = ${k % 8n}`).toBe(cancels);
      expect(openssl(sig, text, dirtyKey)).toBe(cancels);
      if (cancels) accepted++;
      else refused++;
    }
    expect(refused).toBeGreaterThan(0);
    expect(accepted).toBeGreaterThan(0);
  });
});

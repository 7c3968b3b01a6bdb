import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  SALT_BYTES,
  base64UrlToBytes,
  bytesToHex,
  canonicalBytes,
  leafBytes,
  leafHash,
  newSalt,
  provenanceLeafHash,
  resourceSha256,
  sha256Hex,
  type LeafPreimage,
} from '../../anchor/index.ts';

interface LeafVector {
  preimage: LeafPreimage;
  /** JCS text of the preimage, written independently of anchor/ (see generate.ts). */
  canonical: string;
  /** SHA-256(0x00 || canonical) computed with node:crypto. */
  leafHash: string;
}

const vector = JSON.parse(readFileSync(new URL('../fixtures/anchor/bundle/leaf-vector.json', import.meta.url), 'utf8')) as LeafVector;
const utf8 = new TextEncoder();
const nodeSha256 = (...parts: Uint8Array[]): string => {
  const hash = createHash('sha256');
  for (const part of parts) hash.update(part);
  return hash.digest('hex');
};

describe('provenance leaf', () => {
  it('hashes the committed preimage to the committed leaf bytes and leaf hash', () => {
    expect(new TextDecoder().decode(leafBytes(vector.preimage))).toBe(vector.canonical);
    expect(bytesToHex(provenanceLeafHash(vector.preimage))).toBe(vector.leafHash);
    // And the committed hash is what RFC 9162 says it is, computed here without anchor/.
    expect(nodeSha256(new Uint8Array([0]), utf8.encode(vector.canonical))).toBe(vector.leafHash);
  });

  it('writes members in RFC 8785 order whatever order the preimage was built in', () => {
    const reversed = Object.fromEntries(Object.entries(vector.preimage).reverse()) as unknown as LeafPreimage;
    expect(Object.keys(reversed)[0]).toBe('salt');
    expect(leafBytes(reversed)).toEqual(leafBytes(vector.preimage));
    const keys = [...new TextDecoder().decode(leafBytes(reversed)).matchAll(/"(\w+)":/g)].map((match) => match[1]);
    // UTF-16 code unit order: resourceSha256 < resourceType (S < T), v < versionId (prefix first).
    expect(keys).toEqual(['id', 'mappingSha256', 'rawSha256', 'resourceSha256', 'resourceType', 'salt', 'terminologyVersion', 'v', 'versionId']);
  });

  it('changes the leaf hash when any one field changes', () => {
    const base = bytesToHex(provenanceLeafHash(vector.preimage));
    for (const key of Object.keys(vector.preimage) as Array<keyof LeafPreimage>) {
      const changed = { ...vector.preimage, [key]: key === 'v' ? 2 : `${String(vector.preimage[key])}x` } as LeafPreimage;
      expect(bytesToHex(provenanceLeafHash(changed)), key).not.toBe(base);
    }
  });

  it('hashes resources canonically, meta included', () => {
    const resource = { resourceType: 'Patient', id: 'p1', meta: { versionId: '2' }, name: [{ family: 'Testperson' }] };
    const shuffled = { name: [{ family: 'Testperson' }], meta: { versionId: '2' }, id: 'p1', resourceType: 'Patient' };
    expect(resourceSha256(shuffled)).toBe(resourceSha256(resource));
    expect(resourceSha256(resource)).toBe(nodeSha256(canonicalBytes(resource)));
    expect(resourceSha256({ ...resource, meta: { versionId: '3' } })).not.toBe(resourceSha256(resource));
  });

  it('hashes, natively where Node is, the very bytes the portable definitions name', () => {
    // Any JSON text, Hangul and astral characters included: the native hash takes the canonical text, the portable
    // one its UTF-8 bytes.
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 4 }), fc.string({ unit: 'grapheme' }), (value, text) => {
        const resource = { resourceType: 'Basic', id: text, value };
        expect(resourceSha256(resource)).toBe(sha256Hex(canonicalBytes(resource)));
        const preimage = { ...vector.preimage, id: text };
        expect(provenanceLeafHash(preimage)).toEqual(leafHash(leafBytes(preimage)));
      }),
    );
  });

  it('sha256Hex is lowercase hex SHA-256 (FIPS 180-4 "abc" vector)', () => {
    expect(sha256Hex(utf8.encode('abc'))).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });

  it('draws a fresh 16-byte base64url salt on every call', () => {
    const salts = Array.from({ length: 1000 }, () => newSalt());
    expect(new Set(salts).size).toBe(salts.length);
    for (const salt of salts.slice(0, 20)) {
      expect(salt).toMatch(/^[A-Za-z0-9_-]{22}$/);
      expect(base64UrlToBytes(salt)).toHaveLength(SALT_BYTES);
    }
  });
});

import { createHash } from 'node:crypto';

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { deterministicId } from '../../mappers/index.ts';

const UUID_V8 = /^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** The id as documented, computed independently: SHA-256 over length-prefixed UTF-8 strings, as a UUIDv8. */
function referenceId(strings: readonly string[]): string {
  const hash = createHash('sha256');
  for (const s of strings) {
    const bytes = Buffer.from(s, 'utf8');
    const length = Buffer.alloc(4);
    length.writeUInt32BE(bytes.length);
    hash.update(Buffer.concat([length, bytes]));
  }
  const bytes = hash.digest().subarray(0, 16);
  bytes[6] = (bytes[6]! & 0x0f) | 0x80;
  bytes[8] = (bytes[8]! & 0x3f) | 0x80;
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

describe('deterministicId', () => {
  it('is stable: ids already stored must never change', () => {
    expect(deterministicId('Patient', 'urn:oid:1.2.3', '12345')).toBe('cce88b6e-73a2-8a5a-a71e-a915d7d128de');
    expect(deterministicId('Patient')).toBe('c68df8d6-d73a-8843-a451-d2c3af11405b');
  });

  it('is SHA-256 over length-prefixed UTF-8 strings, truncated to 128 bits with version 8 and variant 10', () => {
    const strings = ['anchorline:resource-id:v1', 'Encounter', 'urn:anchorline:authority:%ED%99%8D', '방문-1'];
    expect(deterministicId('Encounter', ...strings.slice(2))).toBe(referenceId(strings));
  });

  it('hashes the same bytes whether a key is ASCII and short (hashed as a string) or not (hashed as a Buffer)', () => {
    const reference = (type: string, ...parts: string[]): string => referenceId(['anchorline:resource-id:v1', type, ...parts]);
    // Lengths either side of 128, where a length prefix stops being one ASCII byte, and text either side of ASCII.
    const part = fc.oneof(fc.string({ maxLength: 130 }), fc.string({ minLength: 126, maxLength: 130 }), fc.string({ unit: 'binary', maxLength: 130 }));
    fc.assert(
      fc.property(fc.string({ maxLength: 20 }), fc.array(part, { maxLength: 4 }), (type, parts) => {
        expect(deterministicId(type, ...parts)).toBe(reference(type, ...parts));
      }),
      { numRuns: 3000 },
    );
    expect(deterministicId('Patient', 'x'.repeat(127))).toBe(reference('Patient', 'x'.repeat(127)));
    expect(deterministicId('Patient', 'x'.repeat(128))).toBe(reference('Patient', 'x'.repeat(128)));
    expect(deterministicId('Patient', '\u007f', '\u0080')).toBe(reference('Patient', '\u007f', '\u0080'));
  });

  it('does not collide when the same characters are split differently', () => {
    expect(deterministicId('a', 'bc')).not.toBe(deterministicId('ab', 'c'));
    expect(deterministicId('Patient', 'a', 'bc')).not.toBe(deterministicId('Patient', 'ab', 'c'));
    expect(deterministicId('Patient', 'a')).not.toBe(deterministicId('Patient', 'a', ''));
    expect(deterministicId('Patient', '', 'a')).not.toBe(deterministicId('Patient', 'a', ''));
    expect(deterministicId('Patient', 'x')).not.toBe(deterministicId('Encounter', 'x'));
  });

  it('is always a UUIDv8, and different part lists give different ids', () => {
    fc.assert(
      fc.property(fc.string(), fc.array(fc.string(), { maxLength: 4 }), fc.array(fc.string(), { maxLength: 4 }), (type, a, b) => {
        const idA = deterministicId(type, ...a);
        expect(idA).toMatch(UUID_V8);
        expect(deterministicId(type, ...a)).toBe(idA);
        if (JSON.stringify(a) !== JSON.stringify(b)) expect(deterministicId(type, ...b)).not.toBe(idA);
      }),
      { numRuns: 2000 },
    );
  });
});

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { base64ToBytes, base64UrlToBytes, bytesToBase64, bytesToBase64Url, bytesToHex, hexToBytes } from '../../anchor/index.ts';

const ascii = (s: string): Uint8Array => new TextEncoder().encode(s);

describe('hex', () => {
  it('encodes lowercase and decodes either case', () => {
    expect(bytesToHex(Uint8Array.of(0x00, 0x0f, 0xa5, 0xff))).toBe('000fa5ff');
    expect(hexToBytes('000FA5ff')).toEqual(Uint8Array.of(0x00, 0x0f, 0xa5, 0xff));
    expect(hexToBytes('')).toEqual(new Uint8Array(0));
  });

  it.each(['0', 'abc', '0g', ' 00', '0x00', '00 '])('rejects %j', (text) => {
    expect(() => hexToBytes(text)).toThrow(RangeError);
  });

  it('round-trips and agrees with Buffer', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        const hex = bytesToHex(bytes);
        expect(hex).toBe(Buffer.from(bytes).toString('hex'));
        expect(hexToBytes(hex)).toEqual(bytes);
      }),
    );
  });
});

describe('base64', () => {
  // RFC 4648 §10 test vectors.
  it.each([
    ['', ''],
    ['f', 'Zg=='],
    ['fo', 'Zm8='],
    ['foo', 'Zm9v'],
    ['foob', 'Zm9vYg=='],
    ['fooba', 'Zm9vYmE='],
    ['foobar', 'Zm9vYmFy'],
  ])('RFC 4648: %j <-> %j', (plain, encoded) => {
    expect(bytesToBase64(ascii(plain))).toBe(encoded);
    expect(base64ToBytes(encoded)).toEqual(ascii(plain));
    expect(bytesToBase64Url(ascii(plain))).toBe(encoded.replace(/=+$/, ''));
  });

  it.each(['Zg=', 'Zg', 'Z===', 'Zh==', 'Zm9=', 'Zm9v\n', 'Zm-v', 'Zg==Zg==', '===='])('rejects non-canonical base64 %j', (text) => {
    expect(() => base64ToBytes(text)).toThrow(RangeError);
  });

  it.each(['Zg==', 'Z', 'Zh', 'Zm+v'])('rejects non-canonical base64url %j', (text) => {
    expect(() => base64UrlToBytes(text)).toThrow(RangeError);
  });

  it('round-trips and agrees with Buffer', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        expect(bytesToBase64(bytes)).toBe(Buffer.from(bytes).toString('base64'));
        expect(bytesToBase64Url(bytes)).toBe(Buffer.from(bytes).toString('base64url'));
        expect(base64ToBytes(bytesToBase64(bytes))).toEqual(bytes);
        expect(base64UrlToBytes(bytesToBase64Url(bytes))).toEqual(bytes);
      }),
    );
  });
});

/**
 * Hex and base64 for hashes and proofs, without Node's Buffer so the verifier runs unchanged in a browser.
 * Decoders are strict (no whitespace, no missing padding, no stray characters): a proof that decodes loosely could
 * verify against bytes other than the ones published.
 */

const HEX_DIGITS = '0123456789abcdef';

/** Lowercase hex of `bytes`. */
export function bytesToHex(bytes: Uint8Array): string {
  let hex = '';
  for (let i = 0; i < bytes.length; i++) {
    const byte = bytes[i]!;
    hex += HEX_DIGITS[byte >>> 4]! + HEX_DIGITS[byte & 0x0f]!;
  }
  return hex;
}

/** Bytes of a hex string (either case). Throws a RangeError for odd length or a non-hex character. */
export function hexToBytes(hex: string): Uint8Array {
  if (hex.length % 2 !== 0) throw new RangeError(`hex string has odd length ${hex.length}`);
  const bytes = new Uint8Array(hex.length / 2);
  for (let i = 0; i < bytes.length; i++) {
    const high = hexDigitValue(hex.charCodeAt(2 * i));
    const low = hexDigitValue(hex.charCodeAt(2 * i + 1));
    if (high < 0 || low < 0) throw new RangeError(`hex string has a non-hex character near offset ${2 * i}`);
    bytes[i] = (high << 4) | low;
  }
  return bytes;
}

function hexDigitValue(code: number): number {
  if (code >= 0x30 && code <= 0x39) return code - 0x30; // 0-9
  if (code >= 0x61 && code <= 0x66) return code - 0x61 + 10; // a-f
  if (code >= 0x41 && code <= 0x46) return code - 0x41 + 10; // A-F
  return -1;
}

const BASE64_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const BASE64URL_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/** Standard base64 (RFC 4648 §4) with `=` padding. */
export function bytesToBase64(bytes: Uint8Array): string {
  return encodeBase64(bytes, BASE64_ALPHABET, true);
}

/** base64url (RFC 4648 §5) without padding, as used in URLs and JWS. */
export function bytesToBase64Url(bytes: Uint8Array): string {
  return encodeBase64(bytes, BASE64URL_ALPHABET, false);
}

/** Decodes standard padded base64. Throws a RangeError for anything that is not its canonical encoding. */
export function base64ToBytes(text: string): Uint8Array {
  return decodeBase64(text, BASE64_ALPHABET, true);
}

/** Decodes unpadded base64url. Throws a RangeError for anything that is not its canonical encoding. */
export function base64UrlToBytes(text: string): Uint8Array {
  return decodeBase64(text, BASE64URL_ALPHABET, false);
}

function encodeBase64(bytes: Uint8Array, alphabet: string, padded: boolean): string {
  let out = '';
  let i = 0;
  for (; i + 3 <= bytes.length; i += 3) {
    const group = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!;
    out += alphabet[group >>> 18]! + alphabet[(group >>> 12) & 63]! + alphabet[(group >>> 6) & 63]! + alphabet[group & 63]!;
  }
  const rest = bytes.length - i;
  if (rest === 1) {
    const group = bytes[i]! << 16;
    out += alphabet[group >>> 18]! + alphabet[(group >>> 12) & 63]! + (padded ? '==' : '');
  } else if (rest === 2) {
    const group = (bytes[i]! << 16) | (bytes[i + 1]! << 8);
    out += alphabet[group >>> 18]! + alphabet[(group >>> 12) & 63]! + alphabet[(group >>> 6) & 63]! + (padded ? '=' : '');
  }
  return out;
}

function decodeBase64(text: string, alphabet: string, padded: boolean): Uint8Array {
  let body = text;
  if (padded) {
    if (text.length % 4 !== 0) throw new RangeError(`base64 text length ${text.length} is not a multiple of 4`);
    if (text.endsWith('==')) body = text.slice(0, -2);
    else if (text.endsWith('=')) body = text.slice(0, -1);
  }
  // A trailing group of one character cannot encode a whole byte.
  if (body.length % 4 === 1) throw new RangeError('base64 text has an impossible length');
  const values = new Uint8Array(body.length);
  for (let i = 0; i < body.length; i++) {
    const value = alphabet.indexOf(body[i]!);
    if (value < 0) throw new RangeError(`base64 text has an invalid character at offset ${i}`);
    values[i] = value;
  }
  const bytes = new Uint8Array(Math.floor((body.length * 3) / 4));
  let o = 0;
  let i = 0;
  for (; i + 4 <= values.length; i += 4) {
    const group = (values[i]! << 18) | (values[i + 1]! << 12) | (values[i + 2]! << 6) | values[i + 3]!;
    bytes[o++] = group >>> 16;
    bytes[o++] = (group >>> 8) & 0xff;
    bytes[o++] = group & 0xff;
  }
  const rest = values.length - i;
  if (rest === 2) {
    const group = (values[i]! << 18) | (values[i + 1]! << 12);
    // Unused low bits must be zero, or two different texts would decode to the same bytes.
    if ((group & 0xffff) !== 0) throw new RangeError('base64 text has non-zero padding bits');
    bytes[o++] = group >>> 16;
  } else if (rest === 3) {
    const group = (values[i]! << 18) | (values[i + 1]! << 12) | (values[i + 2]! << 6);
    if ((group & 0xff) !== 0) throw new RangeError('base64 text has non-zero padding bits');
    bytes[o++] = group >>> 16;
    bytes[o++] = (group >>> 8) & 0xff;
  }
  return bytes;
}

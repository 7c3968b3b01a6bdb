/**
 * SHA-256 (FIPS 180-4) for the messages a Merkle tree hashes millions of times: interior nodes
 * `0x01 || left || right` (65 bytes, two blocks, specialised) and leaves `0x00 || leaf` (usually one block).
 *
 * Why not just @noble/hashes: its general `sha256(bytes)` allocates a hasher, a buffer and a digest per call, which
 * caps a tree build at roughly 0.5M leaves/s on this machine (1.2M one-block and 0.8M two-block hashes/s). Here the
 * node padding is known in advance, hashes stay as big-endian 32-bit words in one flat Int32Array for the
 * whole build, and the message schedule is a reused buffer, so nothing is allocated per hash. This module is private
 * to anchor/: it is tested word-for-word against @noble/hashes, which remains the hash for arbitrary-length input.
 */

/** Round constants: first 32 bits of the fractional parts of the cube roots of the first 64 primes. */
const K = new Int32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);

/** Initial hash value: first 32 bits of the fractional parts of the square roots of the first 8 primes. */
const IV = new Int32Array([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);

/** Bit length of a node message 0x01 || left || right, written into the last word of its final padded block. */
const NODE_MESSAGE_BITS = 65 * 8;

/**
 * Shared scratch: the message schedule and the chaining value between the two blocks of a node hash. Module-level
 * because they are pure scratch space, fully overwritten before every read and never held across calls (JavaScript
 * runs one call at a time), and allocating them per hash would cost more than the hash.
 */
const schedule = new Int32Array(64);
const midState = new Int32Array(8);

/** Extends the 16 message words in `w[wOff..wOff+15]` to the 64-word message schedule, in place. */
function expandSchedule(w: Int32Array, wOff: number): void {
  for (let t = wOff + 16; t < wOff + 64; t++) {
    const x = w[t - 15]!;
    const y = w[t - 2]!;
    const s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
    const s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10);
    w[t] = (s1 + w[t - 7]! + s0 + w[t - 16]!) | 0;
  }
}

/**
 * The second block of every node hash is `r || 0x80 || zeros || 520` where r is the last byte of the right child:
 * only 256 distinct blocks exist, so their message schedules are expanded once here (64 KiB) and each node hash
 * skips a quarter of its second compression.
 */
const NODE_TAIL_SCHEDULES = new Int32Array(256 * 64);
for (let lastByte = 0; lastByte < 256; lastByte++) {
  const off = lastByte * 64;
  NODE_TAIL_SCHEDULES[off] = (lastByte << 24) | 0x00800000;
  NODE_TAIL_SCHEDULES[off + 15] = NODE_MESSAGE_BITS;
  expandSchedule(NODE_TAIL_SCHEDULES, off);
}

/**
 * One compression with the 64-word schedule `w[wOff..wOff+63]`, starting from the chaining value
 * `from[fromOff..+7]` and writing the new one to `to[toOff..+7]`. Taking source and destination separately
 * (rather than a state object) lets the last block write straight into the tree buffer, with no copy.
 */
function compress(w: Int32Array, wOff: number, from: Int32Array, fromOff: number, to: Int32Array, toOff: number): void {
  const a0 = from[fromOff]!;
  const b0 = from[fromOff + 1]!;
  const c0 = from[fromOff + 2]!;
  const d0 = from[fromOff + 3]!;
  const e0 = from[fromOff + 4]!;
  const f0 = from[fromOff + 5]!;
  const g0 = from[fromOff + 6]!;
  const h0 = from[fromOff + 7]!;
  let a = a0;
  let b = b0;
  let c = c0;
  let d = d0;
  let e = e0;
  let f = f0;
  let g = g0;
  let h = h0;
  // Unrolled by eight with the working variables renamed each round instead of shifted (the a..h = b..h moves of
  // the textbook loop cost about a third of the time in V8); after eight rounds every name is back in its role.
  for (let t = 0; t < 64; t += 8) {
    h = (h + (((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7))) + ((e & f) ^ (~e & g)) + K[t]! + w[wOff + t]!) | 0;
    d = (d + h) | 0;
    h = (h + (((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10))) + ((a & b) ^ (a & c) ^ (b & c))) | 0;
    g = (g + (((d >>> 6) | (d << 26)) ^ ((d >>> 11) | (d << 21)) ^ ((d >>> 25) | (d << 7))) + ((d & e) ^ (~d & f)) + K[t + 1]! + w[wOff + t + 1]!) | 0;
    c = (c + g) | 0;
    g = (g + (((h >>> 2) | (h << 30)) ^ ((h >>> 13) | (h << 19)) ^ ((h >>> 22) | (h << 10))) + ((h & a) ^ (h & b) ^ (a & b))) | 0;
    f = (f + (((c >>> 6) | (c << 26)) ^ ((c >>> 11) | (c << 21)) ^ ((c >>> 25) | (c << 7))) + ((c & d) ^ (~c & e)) + K[t + 2]! + w[wOff + t + 2]!) | 0;
    b = (b + f) | 0;
    f = (f + (((g >>> 2) | (g << 30)) ^ ((g >>> 13) | (g << 19)) ^ ((g >>> 22) | (g << 10))) + ((g & h) ^ (g & a) ^ (h & a))) | 0;
    e = (e + (((b >>> 6) | (b << 26)) ^ ((b >>> 11) | (b << 21)) ^ ((b >>> 25) | (b << 7))) + ((b & c) ^ (~b & d)) + K[t + 3]! + w[wOff + t + 3]!) | 0;
    a = (a + e) | 0;
    e = (e + (((f >>> 2) | (f << 30)) ^ ((f >>> 13) | (f << 19)) ^ ((f >>> 22) | (f << 10))) + ((f & g) ^ (f & h) ^ (g & h))) | 0;
    d = (d + (((a >>> 6) | (a << 26)) ^ ((a >>> 11) | (a << 21)) ^ ((a >>> 25) | (a << 7))) + ((a & b) ^ (~a & c)) + K[t + 4]! + w[wOff + t + 4]!) | 0;
    h = (h + d) | 0;
    d = (d + (((e >>> 2) | (e << 30)) ^ ((e >>> 13) | (e << 19)) ^ ((e >>> 22) | (e << 10))) + ((e & f) ^ (e & g) ^ (f & g))) | 0;
    c = (c + (((h >>> 6) | (h << 26)) ^ ((h >>> 11) | (h << 21)) ^ ((h >>> 25) | (h << 7))) + ((h & a) ^ (~h & b)) + K[t + 5]! + w[wOff + t + 5]!) | 0;
    g = (g + c) | 0;
    c = (c + (((d >>> 2) | (d << 30)) ^ ((d >>> 13) | (d << 19)) ^ ((d >>> 22) | (d << 10))) + ((d & e) ^ (d & f) ^ (e & f))) | 0;
    b = (b + (((g >>> 6) | (g << 26)) ^ ((g >>> 11) | (g << 21)) ^ ((g >>> 25) | (g << 7))) + ((g & h) ^ (~g & a)) + K[t + 6]! + w[wOff + t + 6]!) | 0;
    f = (f + b) | 0;
    b = (b + (((c >>> 2) | (c << 30)) ^ ((c >>> 13) | (c << 19)) ^ ((c >>> 22) | (c << 10))) + ((c & d) ^ (c & e) ^ (d & e))) | 0;
    a = (a + (((f >>> 6) | (f << 26)) ^ ((f >>> 11) | (f << 21)) ^ ((f >>> 25) | (f << 7))) + ((f & g) ^ (~f & h)) + K[t + 7]! + w[wOff + t + 7]!) | 0;
    e = (e + a) | 0;
    a = (a + (((b >>> 2) | (b << 30)) ^ ((b >>> 13) | (b << 19)) ^ ((b >>> 22) | (b << 10))) + ((b & c) ^ (b & d) ^ (c & d))) | 0;
  }
  to[toOff] = a0 + a;
  to[toOff + 1] = b0 + b;
  to[toOff + 2] = c0 + c;
  to[toOff + 3] = d0 + d;
  to[toOff + 4] = e0 + e;
  to[toOff + 5] = f0 + f;
  to[toOff + 6] = g0 + g;
  to[toOff + 7] = h0 + h;
}

/**
 * SHA-256(prefix || data) for a one-byte `prefix` and any `data`, written as 8 words to `dst[dstOff..]`. Used for
 * RFC 9162 leaf hashes (prefix 0x00) while building a tree: short leaves take one or two compressions and nothing is
 * allocated.
 */
export function prefixedHashWords(prefix: number, data: Uint8Array, dst: Int32Array, dstOff: number): void {
  const messageBytes = 1 + data.length;
  // The message, the 0x80 terminator and the 8-byte length, rounded up to whole 64-byte blocks.
  const blockCount = Math.ceil((messageBytes + 9) / 64);
  const w = schedule;
  let chainFrom = IV;
  for (let block = 0; block < blockCount; block++) {
    const blockStart = block * 64;
    for (let j = 0; j < 16; j++) {
      const p = blockStart + j * 4;
      // Message byte p is data[p - 1]; the fast branch reads four data bytes at once away from both ends.
      if (p >= 1 && p + 3 <= data.length) {
        w[j] = (data[p - 1]! << 24) | (data[p]! << 16) | (data[p + 1]! << 8) | data[p + 2]!;
      } else {
        w[j] = (paddedByte(prefix, data, p) << 24) | (paddedByte(prefix, data, p + 1) << 16) |
          (paddedByte(prefix, data, p + 2) << 8) | paddedByte(prefix, data, p + 3);
      }
    }
    if (block === blockCount - 1) {
      // The bit length fills the last 8 bytes; split because 32-bit operators cannot hold it.
      const bits = messageBytes * 8;
      w[14] = Math.floor(bits / 0x100000000);
      w[15] = bits >>> 0;
    }
    expandSchedule(w, 0);
    const last = block === blockCount - 1;
    compress(w, 0, chainFrom, 0, last ? dst : midState, last ? dstOff : 0);
    chainFrom = midState;
  }
}

/** Byte p of the padded message prefix || data || 0x80 || 0x00... (the length is written separately). */
function paddedByte(prefix: number, data: Uint8Array, p: number): number {
  if (p === 0) return prefix;
  if (p <= data.length) return data[p - 1]!;
  return p === data.length + 1 ? 0x80 : 0;
}

/**
 * RFC 9162 node hash SHA-256(0x01 || left || right) of two hashes held as 8 big-endian words each in `src`,
 * written as 8 words to `dst[dstOff..]`. `dst` may overlap the inputs: they are fully read before the write.
 */
export function nodeHashWords(src: Int32Array, leftOff: number, rightOff: number, dst: Int32Array, dstOff: number): void {
  const w = schedule;
  w[0] = 0x01000000 | (src[leftOff]! >>> 8);
  for (let i = 1; i < 8; i++) w[i] = (src[leftOff + i - 1]! << 24) | (src[leftOff + i]! >>> 8);
  w[8] = (src[leftOff + 7]! << 24) | (src[rightOff]! >>> 8);
  for (let i = 1; i < 8; i++) w[8 + i] = (src[rightOff + i - 1]! << 24) | (src[rightOff + i]! >>> 8);
  const lastRightByte = src[rightOff + 7]! & 0xff;
  expandSchedule(w, 0);
  compress(w, 0, IV, 0, midState, 0);
  compress(NODE_TAIL_SCHEDULES, lastRightByte * 64, midState, 0, dst, dstOff);
}

/** Copies 32-byte hashes into consecutive big-endian words, 8 per hash. Throws if any hash is not 32 bytes. */
export function hashesToWords(hashes: readonly Uint8Array[], what: string): Int32Array {
  const words = new Int32Array(hashes.length * 8);
  for (let i = 0; i < hashes.length; i++) {
    const hash = hashes[i]!;
    if (hash.length !== 32) throw new RangeError(`${what}[${i}] is ${hash.length} bytes; a SHA-256 hash is 32`);
    bytesToWordsAt(hash, 0, words, i * 8);
  }
  return words;
}

/** Reads 8 big-endian words from `bytes[byteOff..byteOff+31]` into `words[wordOff..]`. */
export function bytesToWordsAt(bytes: Uint8Array, byteOff: number, words: Int32Array, wordOff: number): void {
  for (let j = 0; j < 8; j++) {
    const p = byteOff + j * 4;
    words[wordOff + j] = (bytes[p]! << 24) | (bytes[p + 1]! << 16) | (bytes[p + 2]! << 8) | bytes[p + 3]!;
  }
}

/** The 32 bytes of the hash held as 8 big-endian words at `words[wordOff..]`, in a new array. */
export function wordsToHash(words: Int32Array, wordOff: number): Uint8Array {
  const hash = new Uint8Array(32);
  for (let j = 0; j < 8; j++) {
    const word = words[wordOff + j]!;
    hash[j * 4] = word >>> 24;
    hash[j * 4 + 1] = word >>> 16;
    hash[j * 4 + 2] = word >>> 8;
    hash[j * 4 + 3] = word;
  }
  return hash;
}

/**
 * Random bytes for data keys and nonces, from the operating system's CSPRNG (crypto.randomBytes), drawn a block at
 * a time. Each synchronous randomBytes call costs a few microseconds whatever its size, and the intake draws three
 * per message (the message's data key, the nonce that seals its raw bytes, the nonce of the key's wrapping): about 4 %
 * of the CPU an acknowledged message costs (bench:mllp --acked-only, CPU profile).
 *
 * Each request gets its own copy, and the part of the block it came from is zeroed at once, so no byte is handed out
 * twice and no secret waits in the block for the next request. A block is never refilled in place: a new one is
 * drawn when this one is spent.
 */
import { randomBytes } from 'node:crypto';

const BLOCK_BYTES = 4096;
/** Larger requests (a 32-byte key is the largest the hot paths ask for) go to the CSPRNG directly. */
const MAX_POOLED_BYTES = 64;

let block: Buffer = Buffer.alloc(0);
let offset = 0;

export function secureRandomBytes(size: number): Buffer {
  if (size > MAX_POOLED_BYTES) return randomBytes(size);
  if (offset + size > block.length) {
    block = randomBytes(BLOCK_BYTES);
    offset = 0;
  }
  const bytes = Buffer.from(block.subarray(offset, offset + size));
  block.fill(0, offset, offset + size);
  offset += size;
  return bytes;
}

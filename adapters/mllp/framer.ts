/**
 * Streaming MLLP framing over raw socket bytes: <VT=0x0B> payload <FS=0x1C><CR=0x0D>.
 *
 * The framer never throws and never holds more than one frame's payload (capped by `maxFrameBytes`), whatever a peer
 * sends: an oversized frame is counted as it streams past, only its first bytes are kept, so a frame of any size (2 GiB
 * and more) costs at most min(maxFrameBytes, 64 KiB) of memory. Every payload or junk byte that is not delivered in a
 * frame is counted by exactly one error event, whose `detail` never contains payload bytes.
 *
 * `answerable` on an error event says whether the sender finished what it sent as a frame (a start 0x0B and an end
 * 0x1C): only then does the sender wait for an answer to it. Junk between frames, a frame abandoned by a new 0x0B and a
 * frame cut by the end of the connection are not answerable: a NAK for them would be read by a sender that pairs
 * answers in order as the answer to its next message.
 *
 * Events depend only on the byte stream, not on how it was split into chunks, so socket chunks can be handed over as
 * they arrive; the property tests hold the framer to that.
 */
import { AnchorlineError, type ErrorCode } from '../../errors/index.ts';

export interface FramerOptions {
  /** Largest payload in bytes (between 0x0B and 0x1C 0x0D) accepted as one frame; larger frames are discarded. */
  maxFrameBytes: number;
}

export type FramerEvent =
  | { kind: 'frame'; payload: Buffer }
  | {
      kind: 'error';
      code: ErrorCode;
      /** What went wrong, in framing terms only: never payload content. */
      detail: string;
      /**
       * The first bytes of the broken frame's payload (at most min(maxFrameBytes, 64 KiB)), so the caller can read its
       * MSH and NAK it. Absent for junk outside any frame.
       */
      prefix?: Buffer;
      /** Payload bytes of the broken frame, or bytes of the junk run, that were dropped. */
      discardedBytes: number;
      /** The broken frame had a start and an end (0x1C): its sender expects an answer to it. */
      answerable: boolean;
    };

const START_BLOCK = 0x0b;
const END_BLOCK = 0x1c;
const CARRIAGE_RETURN = 0x0d;
const LINE_FEED = 0x0a;
const SPACE = 0x20;
const TAB = 0x09;

/** Enough to hold any real MSH segment, small enough that a flood of broken frames cannot pin much memory. */
const MAX_PREFIX_BYTES = 64 * 1024;

type FramerState =
  /** Between frames: whitespace is ignored, anything but 0x0B starts a junk run. */
  | 'idle'
  /** In a run of junk between frames; the run ends at the next 0x0B or at end(). */
  | 'junk'
  /** Inside a frame, collecting payload. */
  | 'frame'
  /** Inside a frame that passed maxFrameBytes: only its prefix is kept, the rest is counted and dropped. */
  | 'oversized';

export class MllpFramer {
  readonly #maxFrameBytes: number;
  readonly #prefixLimit: number;
  #state: FramerState = 'idle';
  /** The last byte of the previous chunk was the 0x1C of the current frame; the next byte decides how it ends. */
  #endBlockPending = false;
  readonly #payload: PayloadBuffer;
  #oversizePrefix: Buffer = Buffer.alloc(0);
  #oversizeBytes = 0;
  #junkBytes = 0;

  constructor(opts: FramerOptions) {
    const max = opts.maxFrameBytes;
    // A bad limit is a configuration bug; failing at construction (start-up) beats silently framing nothing.
    if (!Number.isSafeInteger(max) || max < 1) {
      throw new AnchorlineError('ANCHORLINE_ERR_CONFIG_INVALID', 'maxFrameBytes must be a positive integer');
    }
    this.#maxFrameBytes = max;
    this.#prefixLimit = Math.min(max, MAX_PREFIX_BYTES);
    this.#payload = new PayloadBuffer(max);
  }

  /** Whether a frame or a run of junk has begun and not yet ended (whitespace between frames does not count). */
  get inputOpen(): boolean {
    return this.#state !== 'idle';
  }

  /**
   * Ends whatever is open without an event (the caller gives up on it, e.g. at a time limit) and says how many bytes
   * it dropped, with the first bytes of an open frame's payload so that the caller can read its MSH (no prefix for a
   * run of junk); undefined when nothing was open.
   */
  abandon(): { prefix?: Buffer; discardedBytes: number } | undefined {
    let abandoned: { prefix?: Buffer; discardedBytes: number } | undefined;
    if (this.#state === 'junk') {
      abandoned = { discardedBytes: this.#junkBytes };
    } else if (this.#state === 'oversized') {
      abandoned = { prefix: this.#oversizePrefix, discardedBytes: this.#oversizeBytes };
    } else if (this.#state === 'frame') {
      const discardedBytes = this.#payload.length;
      abandoned = { prefix: this.#payload.take(this.#prefixLimit), discardedBytes };
    }
    this.#payload.take(0);
    this.#oversizePrefix = Buffer.alloc(0);
    this.#oversizeBytes = 0;
    this.#junkBytes = 0;
    this.#endBlockPending = false;
    this.#state = 'idle';
    return abandoned;
  }

  /** Bytes held for an unfinished frame: its payload so far, or the kept prefix of an oversized one. */
  get bufferedBytes(): number {
    return this.#state === 'oversized' ? this.#oversizePrefix.length : this.#payload.length;
  }

  push(chunk: Buffer): FramerEvent[] {
    const events: FramerEvent[] = [];
    const length = chunk.length;
    let pos = 0;
    while (pos < length) {
      switch (this.#state) {
        case 'idle':
          pos = this.#scanIdle(chunk, pos);
          break;
        case 'junk':
          pos = this.#scanJunk(chunk, pos, events);
          break;
        case 'frame':
        case 'oversized':
          pos = this.#endBlockPending ? this.#closeAtEndBlock(chunk, pos, events) : this.#scanPayload(chunk, pos, events);
          break;
      }
    }
    // The caller may reuse its chunk buffer once push() returns, so payload still waiting for its end marker is copied.
    this.#payload.detach();
    return events;
  }

  /** Reports whatever the connection left unfinished, and resets the framer. */
  end(): FramerEvent[] {
    const events: FramerEvent[] = [];
    if (this.#state === 'junk') {
      this.#emitJunk(events);
    } else if (this.#state === 'frame' || this.#state === 'oversized') {
      // After a 0x1C the frame did end, only its CR is missing: its sender waits for an answer (if still there).
      const ended = this.#endBlockPending;
      this.#closeBroken(
        events,
        ended ? 'connection ended after end block 0x1C without the closing 0x0D' : 'connection ended inside a frame (no 0x1C 0x0D end marker)',
        ended,
      );
    }
    this.#state = 'idle';
    return events;
  }

  #scanIdle(chunk: Buffer, pos: number): number {
    const length = chunk.length;
    // Between frames there is normally nothing or one CR/LF, so a byte loop here stays short.
    while (pos < length) {
      const byte = chunk[pos]!;
      if (byte === START_BLOCK) {
        this.#state = 'frame';
        return pos + 1;
      }
      if (byte !== CARRIAGE_RETURN && byte !== LINE_FEED && byte !== SPACE && byte !== TAB) {
        this.#state = 'junk';
        this.#junkBytes = 0;
        return pos;
      }
      pos++;
    }
    return pos;
  }

  #scanJunk(chunk: Buffer, pos: number, events: FramerEvent[]): number {
    const start = chunk.indexOf(START_BLOCK, pos);
    if (start === -1) {
      this.#junkBytes += chunk.length - pos;
      return chunk.length;
    }
    // A junk run is reported when it ends rather than when it starts, so the event can say how much was dropped. The
    // peer loses nothing by the wait: without an MSH there is nothing to acknowledge.
    this.#junkBytes += start - pos;
    this.#emitJunk(events);
    this.#state = 'frame';
    return start + 1;
  }

  #scanPayload(chunk: Buffer, pos: number, events: FramerEvent[]): number {
    const endBlock = chunk.indexOf(END_BLOCK, pos);
    // A 0x0B before the end marker means the sender abandoned this frame and began another. Searching only up to the
    // end marker keeps the scan linear when a chunk holds many frames.
    const restart = endBlock === -1 ? chunk.indexOf(START_BLOCK, pos) : indexWithin(chunk, START_BLOCK, pos, endBlock);
    if (restart !== -1) {
      this.#collect(chunk, pos, restart);
      this.#closeBroken(events, 'frame start 0x0B arrived before the previous frame ended', false);
      this.#state = 'frame';
      return restart + 1;
    }
    if (endBlock === -1) {
      this.#collect(chunk, pos, chunk.length);
      return chunk.length;
    }
    this.#collect(chunk, pos, endBlock);
    if (endBlock + 1 === chunk.length) {
      this.#endBlockPending = true;
      return chunk.length;
    }
    return this.#closeAtEndBlock(chunk, endBlock + 1, events);
  }

  /** `pos` is the byte right after the frame's 0x1C: a CR completes the frame, anything else breaks it. */
  #closeAtEndBlock(chunk: Buffer, pos: number, events: FramerEvent[]): number {
    this.#endBlockPending = false;
    if (chunk[pos] === CARRIAGE_RETURN) {
      if (this.#state === 'oversized') {
        this.#emitOversized(events, true);
      } else {
        events.push({ kind: 'frame', payload: this.#payload.take(Infinity) });
      }
      this.#state = 'idle';
      return pos + 1;
    }
    // The byte after 0x1C is left unconsumed: back in idle, a 0x0B starts the next frame, whitespace is skipped and
    // anything else is reported as junk, so "discard up to the next 0x0B" still accounts for every byte.
    this.#closeBroken(events, 'end block 0x1C was not followed by 0x0D', true);
    this.#state = 'idle';
    return pos;
  }

  /** Adds payload bytes [from, to) to the current frame, switching to oversized when they pass maxFrameBytes. */
  #collect(chunk: Buffer, from: number, to: number): void {
    const count = to - from;
    if (count === 0) return;
    if (this.#state === 'oversized') {
      this.#oversizeBytes += count;
      return;
    }
    const held = this.#payload.length;
    if (held + count <= this.#maxFrameBytes) {
      this.#payload.append(chunk.subarray(from, to));
      return;
    }
    // Keep only what the caller needs to read the MSH for its NAK; the rest is counted, never stored.
    this.#payload.append(chunk.subarray(from, from + Math.max(0, Math.min(count, this.#prefixLimit - held))));
    this.#oversizePrefix = this.#payload.take(this.#prefixLimit);
    this.#oversizeBytes = held + count;
    this.#state = 'oversized';
  }

  /** Ends the current frame as broken; an oversized frame is reported as too large, which is the more useful fact. */
  #closeBroken(events: FramerEvent[], detail: string, answerable: boolean): void {
    this.#endBlockPending = false;
    if (this.#state === 'oversized') {
      this.#emitOversized(events, answerable);
      return;
    }
    const discardedBytes = this.#payload.length;
    const prefix = this.#payload.take(this.#prefixLimit);
    events.push({ kind: 'error', code: 'ANCHORLINE_ERR_FRAME_MALFORMED', detail, prefix, discardedBytes, answerable });
  }

  /**
   * Emitted when the oversized frame ends, not when it crosses the limit: an MLLP sender reads its ACK only after
   * writing the whole frame, so an earlier NAK would not be seen sooner, and waiting lets the event carry the real size.
   */
  #emitOversized(events: FramerEvent[], answerable: boolean): void {
    events.push({
      kind: 'error',
      code: 'ANCHORLINE_ERR_FRAME_TOO_LARGE',
      detail: `frame payload exceeded maxFrameBytes (${this.#maxFrameBytes})`,
      prefix: this.#oversizePrefix,
      discardedBytes: this.#oversizeBytes,
      answerable,
    });
    this.#oversizePrefix = Buffer.alloc(0);
    this.#oversizeBytes = 0;
  }

  #emitJunk(events: FramerEvent[]): void {
    events.push({
      kind: 'error',
      code: 'ANCHORLINE_ERR_FRAME_MALFORMED',
      detail: 'bytes outside an MLLP frame (expected frame start 0x0B)',
      discardedBytes: this.#junkBytes,
      answerable: false,
    });
    this.#junkBytes = 0;
  }
}

/**
 * The payload of the frame being read. Pieces of the current chunk are kept as views until push() returns and are then
 * copied into one growing buffer: a peer trickling a frame one byte per chunk must not cost an object per byte.
 */
class PayloadBuffer {
  /** Beyond this, the store is dropped after each frame rather than kept for the next one. */
  static readonly #KEEP_BYTES = 1024 * 1024;
  readonly #maxBytes: number;
  #store: Buffer = Buffer.alloc(0);
  #stored = 0;
  #views: Buffer[] = [];
  #viewBytes = 0;

  constructor(maxBytes: number) {
    this.#maxBytes = maxBytes;
  }

  get length(): number {
    return this.#stored + this.#viewBytes;
  }

  append(view: Buffer): void {
    if (view.length === 0) return;
    this.#views.push(view);
    this.#viewBytes += view.length;
  }

  /** Copies the views into the owned store, so nothing refers to the caller's chunk any more. */
  detach(): void {
    if (this.#viewBytes === 0) return;
    const needed = this.#stored + this.#viewBytes;
    if (needed > this.#store.length) {
      // Doubling keeps the copying linear in the frame size; the cap keeps one frame within maxFrameBytes.
      const grown = Buffer.allocUnsafe(Math.min(this.#maxBytes, Math.max(needed, 4096, this.#store.length * 2)));
      this.#store.copy(grown, 0, 0, this.#stored);
      this.#store = grown;
    }
    for (const view of this.#views) this.#stored += view.copy(this.#store, this.#stored);
    this.#views = [];
    this.#viewBytes = 0;
  }

  /** A fresh copy of the first `limit` bytes (all of them for Infinity); empties the buffer. */
  take(limit: number): Buffer {
    const size = Math.min(limit, this.length);
    const out = Buffer.allocUnsafe(size);
    let written = this.#store.copy(out, 0, 0, Math.min(this.#stored, size));
    for (const view of this.#views) {
      if (written >= size) break;
      written += view.copy(out, written, 0, Math.min(view.length, size - written));
    }
    this.#stored = 0;
    this.#views = [];
    this.#viewBytes = 0;
    if (this.#store.length > PayloadBuffer.#KEEP_BYTES) this.#store = Buffer.alloc(0);
    return out;
  }
}

/** Index of `byte` in chunk[from, to), or -1. */
function indexWithin(chunk: Buffer, byte: number, from: number, to: number): number {
  if (to - from < 64) {
    // Short spans (a frame's tail) are cheaper to scan inline than to wrap in a subarray view.
    for (let i = from; i < to; i++) if (chunk[i] === byte) return i;
    return -1;
  }
  const found = chunk.subarray(from, to).indexOf(byte);
  return found === -1 ? -1 : from + found;
}

/** Wraps a payload in MLLP framing. The payload must not contain 0x0B or 0x1C, which HL7 text never does. */
export function encodeMllpFrame(payload: Buffer): Buffer {
  const frame = Buffer.allocUnsafe(payload.length + 3);
  frame[0] = START_BLOCK;
  payload.copy(frame, 1);
  frame[payload.length + 1] = END_BLOCK;
  frame[payload.length + 2] = CARRIAGE_RETURN;
  return frame;
}

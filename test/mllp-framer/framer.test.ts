import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AnchorlineError } from '../../errors/index.ts';
import { MllpFramer, encodeMllpFrame, type FramerEvent } from '../../adapters/mllp/index.ts';
import { owesAnswer } from '../../adapters/mllp/server.ts';

const VT = '\x0b';
const FS = '\x1c';
const CR = '\r';

/** Events with buffers as latin1 strings, so expectations read like the bytes that were sent. */
type Seen =
  | { frame: string }
  | { error: string; discardedBytes: number; prefix?: string };

function seen(events: FramerEvent[]): Seen[] {
  return events.map((e) =>
    e.kind === 'frame'
      ? { frame: e.payload.toString('latin1') }
      : {
          error: e.code,
          discardedBytes: e.discardedBytes,
          ...(e.prefix === undefined ? {} : { prefix: e.prefix.toString('latin1') }),
        },
  );
}

function run(chunks: Buffer[], maxFrameBytes: number): FramerEvent[] {
  const framer = new MllpFramer({ maxFrameBytes });
  const events: FramerEvent[] = [];
  for (const chunk of chunks) events.push(...framer.push(chunk));
  events.push(...framer.end());
  return events;
}

const bytes = (s: string): Buffer => Buffer.from(s, 'latin1');
const frame = (payload: string): string => VT + payload + FS + CR;
const MSG1 = 'MSH|^~\\&|A|B|C|D|20240101||ADT^A01|1|P|2.5.1\rPID|1\r';
const MSG2 = 'MSH|^~\\&|A|B|C|D|20240101||ADT^A01|2|P|2.5.1\rPID|2\r';
const MSG3 = 'MSH|^~\\&|A|B|C|D|20240101||ADT^A01|3|P|2.5.1\rPID|3\r';

interface FramerCase {
  name: string;
  input: string;
  maxFrameBytes?: number;
  want: Seen[];
}

const cases: FramerCase[] = [
  { name: 'one frame', input: frame(MSG1), want: [{ frame: MSG1 }] },
  {
    name: 'three messages in one chunk',
    input: frame(MSG1) + frame(MSG2) + frame(MSG3),
    want: [{ frame: MSG1 }, { frame: MSG2 }, { frame: MSG3 }],
  },
  {
    name: 'CR, LF and spaces between frames are ignored',
    input: '\r\n' + frame(MSG1) + '\r\n \t' + frame(MSG2) + '\n',
    want: [{ frame: MSG1 }, { frame: MSG2 }],
  },
  { name: 'empty frame is delivered as an empty payload', input: frame(''), want: [{ frame: '' }] },
  {
    name: 'junk before a frame is one error, then the frame',
    input: 'GET / HTTP/1.1\r\n\r\n' + frame(MSG1),
    want: [{ error: 'ANCHORLINE_ERR_FRAME_MALFORMED', discardedBytes: 18 }, { frame: MSG1 }],
  },
  {
    name: 'each run of junk is one error',
    input: 'xx' + frame(MSG1) + 'yyy' + frame(MSG2) + 'z',
    want: [
      { error: 'ANCHORLINE_ERR_FRAME_MALFORMED', discardedBytes: 2 },
      { frame: MSG1 },
      { error: 'ANCHORLINE_ERR_FRAME_MALFORMED', discardedBytes: 3 },
      { frame: MSG2 },
      { error: 'ANCHORLINE_ERR_FRAME_MALFORMED', discardedBytes: 1 },
    ],
  },
  {
    name: 'unframed HL7 (no 0x0B) is junk, reported when the connection ends',
    input: MSG1,
    want: [{ error: 'ANCHORLINE_ERR_FRAME_MALFORMED', discardedBytes: MSG1.length }],
  },
  {
    name: 'a start block inside an unfinished frame breaks that frame and starts the next',
    input: VT + 'MSH|^~\\&|PART' + frame(MSG2),
    want: [
      { error: 'ANCHORLINE_ERR_FRAME_MALFORMED', discardedBytes: 13, prefix: 'MSH|^~\\&|PART' },
      { frame: MSG2 },
    ],
  },
  {
    name: 'end block followed by LF instead of CR: error, the LF is skipped as whitespace',
    input: VT + MSG1 + FS + '\n' + frame(MSG2),
    want: [{ error: 'ANCHORLINE_ERR_FRAME_MALFORMED', discardedBytes: MSG1.length, prefix: MSG1 }, { frame: MSG2 }],
  },
  {
    name: 'end block followed by junk: error for the frame, then the junk run up to the next 0x0B',
    input: VT + MSG1 + FS + 'XY' + frame(MSG2),
    want: [
      { error: 'ANCHORLINE_ERR_FRAME_MALFORMED', discardedBytes: MSG1.length, prefix: MSG1 },
      { error: 'ANCHORLINE_ERR_FRAME_MALFORMED', discardedBytes: 2 },
      { frame: MSG2 },
    ],
  },
  {
    name: 'end block followed directly by a start block (sender omits the CR)',
    input: VT + MSG1 + FS + frame(MSG2),
    want: [{ error: 'ANCHORLINE_ERR_FRAME_MALFORMED', discardedBytes: MSG1.length, prefix: MSG1 }, { frame: MSG2 }],
  },
  {
    name: 'oversized frame followed by a good frame: one TOO_LARGE with prefix, good frame still delivered',
    input: frame('MSH|^~\\&|' + 'X'.repeat(100)) + frame('MSH|ok'),
    maxFrameBytes: 20,
    want: [
      { error: 'ANCHORLINE_ERR_FRAME_TOO_LARGE', discardedBytes: 109, prefix: 'MSH|^~\\&|XXXXXXXXXXX' },
      { frame: 'MSH|ok' },
    ],
  },
  {
    name: 'a frame of exactly maxFrameBytes is delivered',
    input: frame('1234567890'),
    maxFrameBytes: 10,
    want: [{ frame: '1234567890' }],
  },
  {
    name: 'one byte over maxFrameBytes is too large',
    input: frame('12345678901'),
    maxFrameBytes: 10,
    want: [{ error: 'ANCHORLINE_ERR_FRAME_TOO_LARGE', discardedBytes: 11, prefix: '1234567890' }],
  },
  {
    name: 'oversized frame interrupted by a start block',
    input: VT + 'A'.repeat(30) + frame('MSH|ok'),
    maxFrameBytes: 8,
    want: [{ error: 'ANCHORLINE_ERR_FRAME_TOO_LARGE', discardedBytes: 30, prefix: 'AAAAAAAA' }, { frame: 'MSH|ok' }],
  },
  {
    name: 'oversized frame whose end block lacks the CR',
    input: VT + 'A'.repeat(30) + FS + 'Z' + frame('MSH|ok'),
    maxFrameBytes: 8,
    want: [
      { error: 'ANCHORLINE_ERR_FRAME_TOO_LARGE', discardedBytes: 30, prefix: 'AAAAAAAA' },
      { error: 'ANCHORLINE_ERR_FRAME_MALFORMED', discardedBytes: 1 },
      { frame: 'MSH|ok' },
    ],
  },
  {
    name: 'connection ends inside a frame',
    input: frame(MSG1) + VT + 'MSH|^~\\&|',
    want: [{ frame: MSG1 }, { error: 'ANCHORLINE_ERR_FRAME_MALFORMED', discardedBytes: 9, prefix: 'MSH|^~\\&|' }],
  },
  {
    name: 'connection ends right after a start block',
    input: VT,
    want: [{ error: 'ANCHORLINE_ERR_FRAME_MALFORMED', discardedBytes: 0, prefix: '' }],
  },
  {
    name: 'connection ends between the end block and its CR',
    input: VT + MSG1 + FS,
    want: [{ error: 'ANCHORLINE_ERR_FRAME_MALFORMED', discardedBytes: MSG1.length, prefix: MSG1 }],
  },
  {
    name: 'connection ends inside an oversized frame',
    input: VT + 'B'.repeat(50),
    maxFrameBytes: 16,
    want: [{ error: 'ANCHORLINE_ERR_FRAME_TOO_LARGE', discardedBytes: 50, prefix: 'B'.repeat(16) }],
  },
  {
    name: 'stray end marker outside a frame is junk',
    input: FS + CR + frame(MSG1),
    want: [{ error: 'ANCHORLINE_ERR_FRAME_MALFORMED', discardedBytes: 2 }, { frame: MSG1 }],
  },
];

describe('MllpFramer', () => {
  describe.each(cases)('$name', ({ input, maxFrameBytes = 1 << 20, want }) => {
    it('in one push', () => {
      expect(seen(run([bytes(input)], maxFrameBytes))).toEqual(want);
    });
    it('one byte at a time', () => {
      const chunks = [...bytes(input)].map((b) => Buffer.from([b]));
      expect(seen(run(chunks, maxFrameBytes))).toEqual(want);
    });
    it('in chunks of 7 bytes', () => {
      const all = bytes(input);
      const chunks: Buffer[] = [];
      for (let i = 0; i < all.length; i += 7) chunks.push(all.subarray(i, i + 7));
      expect(seen(run(chunks, maxFrameBytes))).toEqual(want);
    });
  });

  it('caps the TOO_LARGE prefix at 64 KiB however large maxFrameBytes is', () => {
    const payload = 'MSH|' + 'Q'.repeat(200_000);
    const events = run([bytes(frame(payload))], 100_000);
    expect(events).toHaveLength(1);
    const [event] = events;
    expect(event?.kind).toBe('error');
    if (event?.kind !== 'error') return;
    expect(event.code).toBe('ANCHORLINE_ERR_FRAME_TOO_LARGE');
    expect(event.prefix?.length).toBe(64 * 1024);
    expect(event.prefix?.toString('latin1')).toBe(payload.slice(0, 64 * 1024));
    expect(event.discardedBytes).toBe(payload.length);
  });

  it('does not hold an oversized frame in memory while discarding it', () => {
    const framer = new MllpFramer({ maxFrameBytes: 1000 });
    framer.push(bytes(VT + 'MSH|'));
    const block = Buffer.alloc(64 * 1024, 0x41);
    for (let i = 0; i < 32; i++) {
      expect(framer.push(block)).toEqual([]);
      expect(framer.bufferedBytes).toBe(1000);
    }
    const events = framer.push(bytes(FS + CR));
    expect(seen(events)).toEqual([
      { error: 'ANCHORLINE_ERR_FRAME_TOO_LARGE', discardedBytes: 4 + 32 * 64 * 1024, prefix: 'MSH|' + 'A'.repeat(996) },
    ]);
    expect(framer.bufferedBytes).toBe(0);
  });

  it('assembles a large frame trickled in one byte per chunk', () => {
    const payload = 'MSH|' + 'T'.repeat(300_000);
    const framer = new MllpFramer({ maxFrameBytes: 1 << 20 });
    const input = bytes(frame(payload));
    const events: FramerEvent[] = [];
    for (let i = 0; i < input.length; i++) events.push(...framer.push(input.subarray(i, i + 1)));
    expect(events).toHaveLength(1);
    expect(events[0]?.kind === 'frame' && events[0].payload.toString('latin1') === payload).toBe(true);
  });

  it('reports buffered bytes of an unfinished frame', () => {
    const framer = new MllpFramer({ maxFrameBytes: 1000 });
    expect(framer.bufferedBytes).toBe(0);
    framer.push(bytes(VT + 'MSH|^~'));
    expect(framer.bufferedBytes).toBe(6);
    framer.push(bytes('\\&|'));
    expect(framer.bufferedBytes).toBe(9);
    framer.push(bytes(FS + CR));
    expect(framer.bufferedBytes).toBe(0);
  });

  it('delivers payloads that stay intact when the caller reuses its chunk buffer', () => {
    const framer = new MllpFramer({ maxFrameBytes: 1000 });
    const reused = Buffer.alloc(8);
    const input = bytes(frame('MSH|first') + frame('MSH|second-one') + VT + 'MSH|tail');
    const payloads: Buffer[] = [];
    for (let i = 0; i < input.length; i += reused.length) {
      const n = input.copy(reused, 0, i, i + reused.length);
      for (const e of framer.push(reused.subarray(0, n))) if (e.kind === 'frame') payloads.push(e.payload);
    }
    reused.fill(0x21);
    const endEvents = framer.end();
    expect(payloads.map((p) => p.toString('latin1'))).toEqual(['MSH|first', 'MSH|second-one']);
    expect(seen(endEvents)).toEqual([{ error: 'ANCHORLINE_ERR_FRAME_MALFORMED', discardedBytes: 8, prefix: 'MSH|tail' }]);
  });

  it('payload of a frame completed in one push is a copy, not a view of the chunk', () => {
    const framer = new MllpFramer({ maxFrameBytes: 1000 });
    const chunk = bytes(frame('MSH|abc'));
    const [event] = framer.push(chunk);
    chunk.fill(0);
    expect(event?.kind === 'frame' && event.payload.toString('latin1')).toBe('MSH|abc');
  });

  it('is reusable after end()', () => {
    const framer = new MllpFramer({ maxFrameBytes: 1000 });
    framer.push(bytes(VT + 'MSH|half'));
    expect(framer.end()).toHaveLength(1);
    expect(framer.end()).toEqual([]);
    expect(seen(framer.push(bytes(frame('MSH|next'))))).toEqual([{ frame: 'MSH|next' }]);
  });

  it.each([0, -1, 1.5, Number.NaN])('rejects maxFrameBytes %s as a configuration error', (maxFrameBytes) => {
    expect(() => new MllpFramer({ maxFrameBytes })).toThrow(AnchorlineError);
    try {
      new MllpFramer({ maxFrameBytes });
    } catch (error) {
      expect((error as AnchorlineError).code).toBe('ANCHORLINE_ERR_CONFIG_INVALID');
    }
  });

  it('frames a large stream quickly (well over 100 MB/s on a normal machine)', () => {
    const message = bytes('MSH|^~\\&|A|B|C|D|20240101||ADT^A01|1|P|2.5.1\r' + 'OBX|1|TX|||' + 'x'.repeat(900) + '\r');
    const framed = encodeMllpFrame(message);
    const stream = Buffer.concat(Array.from({ length: 64 * 1024 * 1024 / framed.length }, () => framed));
    const chunkSize = 64 * 1024;
    const framer = new MllpFramer({ maxFrameBytes: 1 << 20 });
    let frames = 0;
    const started = process.hrtime.bigint();
    for (let i = 0; i < stream.length; i += chunkSize) {
      for (const e of framer.push(stream.subarray(i, i + chunkSize))) if (e.kind === 'frame') frames++;
    }
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    expect(frames).toBe(Math.floor(stream.length / framed.length));
    // The bound is loose so a busy CI machine does not fail it; a quadratic framer misses it by orders of magnitude.
    expect(stream.length / 1e6 / seconds).toBeGreaterThan(50);
  });
});

describe('encodeMllpFrame', () => {
  it('wraps the payload in 0x0B ... 0x1C 0x0D', () => {
    expect(encodeMllpFrame(bytes('MSH|x'))).toEqual(bytes(VT + 'MSH|x' + FS + CR));
    expect(encodeMllpFrame(Buffer.alloc(0))).toEqual(bytes(VT + FS + CR));
  });
});

/** Bytes weighted towards the framing characters, so the interesting transitions actually occur. */
const streamBytes = fc.uint8Array({ maxLength: 400 }).chain((noise) =>
  fc
    .array(fc.oneof(fc.constantFrom(0x0b, 0x1c, 0x0d, 0x0a, 0x20, 0x4d), fc.integer({ min: 0, max: 255 })), {
      maxLength: 400,
    })
    .map((weighted) => Buffer.from([...weighted, ...noise.subarray(0, noise.length % 17)])),
);

/** Cut points for splitting `length` bytes into chunks. */
function splitAt(buffer: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (buffer.length + 1)))].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let from = 0;
  for (const p of points) {
    chunks.push(buffer.subarray(from, p));
    from = p;
  }
  chunks.push(buffer.subarray(from));
  return chunks;
}

function comparable(events: FramerEvent[]): unknown[] {
  return events.map((e) =>
    e.kind === 'frame'
      ? { frame: e.payload.toString('hex') }
      : { error: e.code, detail: e.detail, discardedBytes: e.discardedBytes, prefix: e.prefix?.toString('hex') },
  );
}

describe('MllpFramer properties', () => {
  it('(a) any bytes in any chunking yield frames or coded errors, never a throw, within the size limits', () => {
    fc.assert(
      fc.property(streamBytes, fc.array(fc.nat()), fc.integer({ min: 1, max: 64 }), (input, cuts, maxFrameBytes) => {
        const events = run(splitAt(input, cuts), maxFrameBytes);
        for (const e of events) {
          if (e.kind === 'frame') {
            expect(e.payload.length).toBeLessThanOrEqual(maxFrameBytes);
            expect(e.payload.includes(0x0b) || e.payload.includes(0x1c)).toBe(false);
          } else {
            expect(['ANCHORLINE_ERR_FRAME_MALFORMED', 'ANCHORLINE_ERR_FRAME_TOO_LARGE']).toContain(e.code);
            expect(e.prefix?.length ?? 0).toBeLessThanOrEqual(maxFrameBytes);
            expect(e.discardedBytes).toBeGreaterThanOrEqual(e.prefix?.length ?? 0);
          }
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('(b) the same bytes split at random points give the same events as one push', () => {
    fc.assert(
      fc.property(streamBytes, fc.array(fc.nat(), { maxLength: 40 }), fc.integer({ min: 1, max: 64 }), (input, cuts, max) => {
        expect(comparable(run(splitAt(input, cuts), max))).toEqual(comparable(run([input], max)));
      }),
      { numRuns: 2000 },
    );
  });

  it('(b) one byte at a time gives the same events as one push', () => {
    fc.assert(
      fc.property(streamBytes, fc.integer({ min: 1, max: 64 }), (input, max) => {
        const oneByOne = [...input].map((b) => Buffer.from([b]));
        expect(comparable(run(oneByOne, max))).toEqual(comparable(run([input], max)));
      }),
      { numRuns: 500 },
    );
  });

  it('(c) encoded frames of arbitrary payloads without 0x0B/0x1C, concatenated and split anywhere, come back intact', () => {
    const payload = fc
      .uint8Array({ maxLength: 300 })
      .map((a) => Buffer.from(a.filter((b) => b !== 0x0b && b !== 0x1c)));
    fc.assert(
      fc.property(fc.array(payload, { maxLength: 20 }), fc.array(fc.nat(), { maxLength: 30 }), (payloads, cuts) => {
        const stream = Buffer.concat(payloads.map(encodeMllpFrame));
        const events = run(splitAt(stream, cuts), 300);
        expect(comparable(events)).toEqual(payloads.map((p) => ({ frame: p.toString('hex') })));
      }),
      { numRuns: 1000 },
    );
  });

  it('every byte is either delivered, framing, ignored whitespace, or counted as discarded', () => {
    // Accounting over well-formed streams with junk and oversized frames mixed in.
    const piece = fc.oneof(
      fc.uint8Array({ maxLength: 80 }).map((a) => ({ kind: 'frame' as const, payload: Buffer.from(a.filter((b) => b !== 0x0b && b !== 0x1c)) })),
      fc.uint8Array({ minLength: 1, maxLength: 20 }).map((a) => ({
        kind: 'junk' as const,
        bytes: Buffer.from([0x58, ...a.filter((b) => b !== 0x0b)]),
      })),
    );
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 15 }), fc.integer({ min: 1, max: 60 }), (pieces, max) => {
        const stream = Buffer.concat(pieces.map((p) => (p.kind === 'frame' ? encodeMllpFrame(p.payload) : p.bytes)));
        const events = run([stream], max);
        const delivered = events.reduce((n, e) => n + (e.kind === 'frame' ? e.payload.length : 0), 0);
        const expectedDelivered = pieces.reduce((n, p) => n + (p.kind === 'frame' && p.payload.length <= max ? p.payload.length : 0), 0);
        expect(delivered).toBe(expectedDelivered);
        const tooLarge = events.filter((e) => e.kind === 'error' && e.code === 'ANCHORLINE_ERR_FRAME_TOO_LARGE');
        expect(tooLarge.length).toBe(pieces.filter((p) => p.kind === 'frame' && p.payload.length > max).length);
      }),
      { numRuns: 1000 },
    );
  });
});

/**
 * Frames that had a start and an end, counted by the simplest reading of MLLP: a 0x0B opens a frame (abandoning an
 * open one), and a 0x1C while a frame is open ends it. Only these may be answered.
 */
function framesWithStartAndEnd(input: Buffer): number {
  let open = false;
  let frames = 0;
  for (const byte of input) {
    if (byte === 0x0b) open = true;
    else if (byte === 0x1c && open) {
      frames++;
      open = false;
    }
  }
  return frames;
}

describe('MLLP answers', () => {
  it('no input makes the listener answer more than the frames it received with a start and an end', () => {
    fc.assert(
      fc.property(streamBytes, fc.array(fc.nat(), { maxLength: 40 }), fc.integer({ min: 1, max: 64 }), (input, cuts, max) => {
        const answered = run(splitAt(input, cuts), max).filter(owesAnswer).length;
        // Exactly as many, in fact: every frame that ended is answered, with its NAK when it was broken.
        expect(answered).toBe(framesWithStartAndEnd(input));
      }),
      { numRuns: 3000 },
    );
  });

  it('answers no stray framing bytes: a lone 0x1C, 0x1C 0x0D, a 0x0B inside a frame, a frame cut by the end', () => {
    const message = frame(MSG1);
    for (const stray of [FS, FS + CR, VT + 'MSH|^~\\&|HALF', VT, 'junk' + FS + CR]) {
      const events = run([bytes(stray + message)], 1 << 20);
      expect(events.filter(owesAnswer).map((e) => e.kind), JSON.stringify(stray)).toEqual(['frame']);
    }
    expect(run([bytes(message + VT + 'MSH|^~\\&|CUT')], 1 << 20).filter(owesAnswer)).toHaveLength(1);
    // A frame ended by 0x1C without its CR was finished by its sender, who waits for an answer: it gets its NAK.
    const broken = run([bytes(VT + MSG1 + FS + 'X' + message)], 1 << 20).filter(owesAnswer);
    expect(broken.map((e) => e.kind)).toEqual(['error', 'frame']);
  });

  it('abandon() ends an open frame without an event and hands back its first bytes', () => {
    const framer = new MllpFramer({ maxFrameBytes: 8 });
    expect(framer.abandon()).toBeUndefined();
    framer.push(bytes(VT + 'MSH|^~\\&|0123456789'));
    expect(framer.inputOpen).toBe(true);
    const abandoned = framer.abandon();
    expect(abandoned?.prefix?.toString('latin1')).toBe('MSH|^~\\&');
    expect(abandoned?.discardedBytes).toBe(19);
    expect(framer.inputOpen).toBe(false);
    expect(seen(framer.push(bytes(frame('MSH|ok'))))).toEqual([{ frame: 'MSH|ok' }]);
    framer.push(bytes('junk'));
    expect(framer.inputOpen).toBe(true);
    expect(framer.abandon()).toEqual({ discardedBytes: 4 });
  });
});

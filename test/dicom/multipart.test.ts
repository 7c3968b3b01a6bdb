/** The multipart/related stream parser: framing, chunk boundaries anywhere, and bad bodies as errors, never throws. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isValidBoundary, MAX_HEADER_BYTES, MultipartParser, parseMediaType, type MultipartEvent } from '../../adapters/dicom/multipart.ts';

const BOUNDARY = 'b0undary-XyZ';

/** Parts as the parser reports them (data joined), or the error, fed in the given chunks. */
function parse(chunks: Buffer[], boundary = BOUNDARY): { parts: Array<{ headers: Record<string, string>; body: Buffer }>; error?: string; ended: boolean } {
  const parser = new MultipartParser(boundary);
  const events: MultipartEvent[] = [];
  for (const chunk of chunks) events.push(...parser.push(chunk));
  events.push(...parser.end());
  const parts: Array<{ headers: Record<string, string>; body: Buffer[] }> = [];
  let error: string | undefined;
  let ended = false;
  for (const event of events) {
    if (event.kind === 'part') parts.push({ headers: event.headers, body: [] });
    else if (event.kind === 'data') parts[parts.length - 1]!.body.push(Buffer.from(event.bytes));
    else if (event.kind === 'error') error = event.detail;
    else if (event.kind === 'end') ended = true;
  }
  return { parts: parts.map((p) => ({ headers: p.headers, body: Buffer.concat(p.body) })), ...(error ? { error } : {}), ended };
}

function body(parts: Buffer[], options: { preamble?: string; epilogue?: string; boundary?: string; headers?: string } = {}): Buffer {
  const boundary = options.boundary ?? BOUNDARY;
  const pieces: Buffer[] = [Buffer.from(options.preamble ?? '')];
  parts.forEach((part, i) => {
    pieces.push(Buffer.from(`${i === 0 && !options.preamble ? '' : '\r\n'}--${boundary}\r\n${options.headers ?? 'Content-Type: application/dicom\r\n'}\r\n`));
    pieces.push(part);
  });
  pieces.push(Buffer.from(`\r\n--${boundary}--${options.epilogue ?? '\r\n'}`));
  return Buffer.concat(pieces);
}

function splitAt(bytes: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let last = 0;
  for (const p of points) {
    out.push(bytes.subarray(last, p));
    last = p;
  }
  out.push(bytes.subarray(last));
  return out;
}

describe('MultipartParser', () => {
  it('reads parts with their headers, a preamble and an epilogue', () => {
    const a = Buffer.from('DICM first instance');
    const b = Buffer.from([0, 1, 2, 13, 10, 45, 45, 3]); // CRLF-- inside binary data
    const result = parse([body([a, b], { preamble: 'This is the preamble.', epilogue: '\r\nepilogue text' })]);
    expect(result.error).toBeUndefined();
    expect(result.ended).toBe(true);
    expect(result.parts.map((p) => p.body)).toEqual([a, b]);
    expect(result.parts[0]!.headers).toEqual({ 'content-type': 'application/dicom' });
  });

  it('accepts parts without headers, transport padding after a delimiter, and folded header lines', () => {
    const bytes = Buffer.from(`--${BOUNDARY}  \t\r\n\r\nno headers\r\n--${BOUNDARY}\r\nContent-Type: application/dicom;\r\n transfer-syntax=1.2.840.10008.1.2.1\r\n\r\nfolded\r\n--${BOUNDARY}--`);
    const result = parse([bytes]);
    expect(result.error).toBeUndefined();
    expect(result.parts.map((p) => p.body.toString())).toEqual(['no headers', 'folded']);
    expect(result.parts[0]!.headers).toEqual({});
    expect(result.parts[1]!.headers['content-type']).toBe('application/dicom; transfer-syntax=1.2.840.10008.1.2.1');
  });

  it('treats the boundary text followed by anything but padding, CRLF or "--" as data', () => {
    const tricky = Buffer.from(`x\r\n--${BOUNDARY}X not a delimiter\r\n--${BOUNDARY}-not-closing either`);
    const result = parse([body([tricky, Buffer.from('second')])]);
    expect(result.error).toBeUndefined();
    expect(result.parts.map((p) => p.body)).toEqual([tricky, Buffer.from('second')]);
  });

  it('reports a body without a delimiter, without the close delimiter, or with an endless header block', () => {
    expect(parse([Buffer.from('no multipart here')]).error).toMatch(/no delimiter/);
    expect(parse([Buffer.from(`--${BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\nunfinished`)]).error).toMatch(/without the close delimiter/);
    expect(parse([Buffer.from(`--${BOUNDARY}\r\nContent-Type: application/dicom\r\n`)]).error).toMatch(/inside a part header/);
    expect(parse([Buffer.from(`--${BOUNDARY}\r\nX-Long: ${'a'.repeat(MAX_HEADER_BYTES + 10)}`)]).error).toMatch(/header block is longer/);
    expect(parse([Buffer.from(`--${BOUNDARY}\r\nnot a header line\r\n\r\nbody\r\n--${BOUNDARY}--`)]).error).toMatch(/not "name: value"/);
  });

  it('yields the same parts however the body is cut into chunks', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 300 }), { minLength: 1, maxLength: 4 }), fc.array(fc.nat(), { maxLength: 12 }), (contents, cuts) => {
        const parts = contents.map((c) => Buffer.from(c));
        const whole = body(parts, { preamble: 'pre' });
        const expected = parse([whole]);
        // Random content may contain the delimiter itself; whatever the parser makes of it, chunking must not change it.
        const chunked = parse(splitAt(whole, cuts));
        expect(chunked).toEqual(expected);
        if (!parts.some((p) => p.includes(Buffer.from(`--${BOUNDARY}`)))) expect(expected.parts.map((p) => p.body)).toEqual(parts);
      }),
      { numRuns: 300 },
    );
  });

  it('never throws on arbitrary bytes, and ends with parts, an end or one error', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.uint8Array({ maxLength: 64 }), fc.constantFrom(...[`\r\n--${BOUNDARY}`, `--${BOUNDARY}--`, '\r\n\r\n', '\r\n', '--'].map((s) => new Uint8Array(Buffer.from(s))))), { maxLength: 20 }), (pieces) => {
        const parser = new MultipartParser(BOUNDARY);
        const events: MultipartEvent[] = [];
        for (const piece of pieces) events.push(...parser.push(Buffer.from(piece)));
        events.push(...parser.end());
        const terminal = events.filter((e) => e.kind === 'error' || e.kind === 'end');
        expect(terminal.length).toBeLessThanOrEqual(1);
        expect(events[events.length - 1]!.kind === 'error' || events[events.length - 1]!.kind === 'end').toBe(true);
      }),
      { numRuns: 500 },
    );
  });
});

describe('media types and boundaries', () => {
  it('parses Content-Type with quoted and token parameters', () => {
    expect(parseMediaType('multipart/related; type="application/dicom"; boundary=abc')).toEqual({ essence: 'multipart/related', params: { type: 'application/dicom', boundary: 'abc' } });
    expect(parseMediaType('Multipart/Related;Boundary="a b\\"c"')).toEqual({ essence: 'multipart/related', params: { boundary: 'a b"c' } });
    expect(parseMediaType('multipart/related; boundary')).toBeUndefined();
    expect(parseMediaType('not a type')).toBeUndefined();
    expect(parseMediaType(undefined)).toBeUndefined();
  });

  it('checks RFC 2046 boundaries', () => {
    expect(isValidBoundary('simple-boundary')).toBe(true);
    expect(isValidBoundary('gc0p4Jq0M2Yt08j34c0p')).toBe(true);
    expect(isValidBoundary('')).toBe(false);
    expect(isValidBoundary('ends with space ')).toBe(false);
    expect(isValidBoundary('x'.repeat(71))).toBe(false);
    expect(isValidBoundary('bad\r\nboundary')).toBe(false);
  });
});

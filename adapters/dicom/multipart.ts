/**
 * multipart/related (RFC 2387 over RFC 2046 framing) as a stream: bytes in, parts out, with memory bounded by the
 * caller rather than by the body.
 *
 * The parser never holds a part's body: it hands out body bytes as they arrive, keeping back only the few bytes at
 * the end of a chunk that could be the start of a delimiter split across chunks. Headers are held (at most
 * MAX_HEADER_BYTES a part), and so is the preamble's last few bytes. Any byte sequence yields events or one error
 * event; `push` and `end` never throw.
 *
 * The body is read as if it began with CRLF, so that the first delimiter ("--boundary" at the very start) and every
 * later one ("CRLF--boundary") are found the same way. A delimiter line may carry transport padding (spaces, tabs)
 * before its CRLF; "--boundary--" closes the body and what follows (the epilogue) is ignored.
 */

export type MultipartEvent =
  | { kind: 'part'; headers: Record<string, string> }
  | { kind: 'data'; bytes: Buffer }
  | { kind: 'partEnd' }
  | { kind: 'end' }
  | { kind: 'error'; detail: string };

/** Header block of one part, in bytes. Generous for Content-Type/Content-Location/Content-ID lines. */
export const MAX_HEADER_BYTES = 16 * 1024;
/** Transport padding allowed after a delimiter, in bytes. */
const MAX_PADDING_BYTES = 256;

const CRLF = Buffer.from('\r\n');
const HEADER_END = Buffer.from('\r\n\r\n');

type State = 'preamble' | 'afterDelimiter' | 'headers' | 'body' | 'epilogue' | 'failed';

export class MultipartParser {
  private readonly delimiter: Buffer;
  private state: State = 'preamble';
  /** Bytes received but not yet handed out or consumed. */
  private pending: Buffer = CRLF;
  private readonly boundary: string;
  private inPart = false;

  constructor(boundary: string) {
    this.boundary = boundary;
    this.delimiter = Buffer.from(`\r\n--${boundary}`, 'latin1');
  }

  push(chunk: Buffer): MultipartEvent[] {
    if (this.state === 'failed' || this.state === 'epilogue') return [];
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    const events: MultipartEvent[] = [];
    this.run(events);
    return events;
  }

  /** The body has ended: a part or the close delimiter left open is an error. */
  end(): MultipartEvent[] {
    // The close delimiter already said 'end'; a failure already said why.
    if (this.state === 'failed' || this.state === 'epilogue') return [];
    const where = this.state === 'preamble' ? `no delimiter --${this.boundary} in the body` : this.state === 'headers' || this.state === 'afterDelimiter' ? 'the body ends inside a part header' : 'the body ends inside a part, without the close delimiter';
    return [this.fail(where)];
  }

  private fail(detail: string): MultipartEvent {
    this.state = 'failed';
    this.pending = Buffer.alloc(0);
    return { kind: 'error', detail };
  }

  private run(events: MultipartEvent[]): void {
    for (;;) {
      switch (this.state) {
        case 'preamble': {
          const at = this.pending.indexOf(this.delimiter);
          if (at < 0) {
            // Keep what could be the start of a split delimiter; the preamble itself is discarded.
            this.pending = this.tail(this.delimiter.length - 1);
            return;
          }
          const decision = delimiterEnd(this.pending.subarray(at + this.delimiter.length));
          if (decision === 'more') {
            this.pending = this.pending.subarray(at);
            return;
          }
          if (decision === 'invalid') {
            // Boundary text inside the preamble is not a delimiter.
            this.pending = this.pending.subarray(at + 1);
            break;
          }
          this.pending = this.pending.subarray(at + this.delimiter.length);
          this.state = 'afterDelimiter';
          break;
        }
        case 'afterDelimiter': {
          const decision = this.readDelimiterEnd();
          if (decision === 'more') return;
          if (decision === 'invalid') {
            events.push(this.fail(`a line starting with the delimiter --${this.boundary} is followed by other text`));
            return;
          }
          if (this.inPart) {
            events.push({ kind: 'partEnd' });
            this.inPart = false;
          }
          if (decision === 'close') {
            this.state = 'epilogue';
            this.pending = Buffer.alloc(0);
            events.push({ kind: 'end' });
            return;
          }
          this.state = 'headers';
          break;
        }
        case 'headers': {
          // A part without headers has its empty line right away.
          let blockEnd: number;
          let bodyStart: number;
          if (this.pending.length >= 2 && this.pending[0] === 0x0d && this.pending[1] === 0x0a) {
            blockEnd = 0;
            bodyStart = 2;
          } else {
            blockEnd = this.pending.indexOf(HEADER_END);
            bodyStart = blockEnd + 4;
          }
          if (blockEnd < 0 || (blockEnd === 0 && this.pending.length < 2)) {
            if (this.pending.length > MAX_HEADER_BYTES) {
              events.push(this.fail(`a part's header block is longer than ${MAX_HEADER_BYTES} bytes`));
            }
            return;
          }
          if (blockEnd > MAX_HEADER_BYTES) {
            events.push(this.fail(`a part's header block is longer than ${MAX_HEADER_BYTES} bytes`));
            return;
          }
          const headers = parseHeaderBlock(this.pending.subarray(0, blockEnd).toString('latin1'));
          if (!headers) {
            events.push(this.fail('a part header line is not "name: value"'));
            return;
          }
          events.push({ kind: 'part', headers });
          this.inPart = true;
          this.pending = this.pending.subarray(bodyStart);
          this.state = 'body';
          break;
        }
        case 'body': {
          const at = this.pending.indexOf(this.delimiter);
          if (at < 0) {
            const keep = Math.min(this.pending.length, this.delimiter.length - 1);
            const out = this.pending.length - keep;
            if (out > 0) events.push({ kind: 'data', bytes: this.pending.subarray(0, out) });
            this.pending = this.pending.subarray(out);
            return;
          }
          // Whether this is a delimiter depends on what follows it (padding + CRLF, or "--").
          const after = this.pending.subarray(at + this.delimiter.length);
          const decision = delimiterEnd(after);
          if (decision === 'more') {
            if (at > 0) events.push({ kind: 'data', bytes: this.pending.subarray(0, at) });
            this.pending = this.pending.subarray(at);
            return;
          }
          if (decision === 'invalid') {
            // The boundary text inside the content: RFC 2046 says senders never do this; it is data to us.
            events.push({ kind: 'data', bytes: this.pending.subarray(0, at + 1) });
            this.pending = this.pending.subarray(at + 1);
            break;
          }
          if (at > 0) events.push({ kind: 'data', bytes: this.pending.subarray(0, at) });
          this.pending = this.pending.subarray(at + this.delimiter.length);
          this.state = 'afterDelimiter';
          break;
        }
        case 'epilogue':
        case 'failed':
          return;
      }
    }
  }

  /** After a delimiter in the preamble or between parts: consume its line end, or say why not. */
  private readDelimiterEnd(): 'more' | 'invalid' | 'close' | 'part' {
    const decision = delimiterEnd(this.pending);
    if (decision === 'more' || decision === 'invalid') {
      if (decision === 'more' && this.pending.length > MAX_PADDING_BYTES + 2) return 'invalid';
      return decision;
    }
    this.pending = this.pending.subarray(decision.consumed);
    return decision.kind;
  }

  private tail(length: number): Buffer {
    return this.pending.length <= length ? this.pending : this.pending.subarray(this.pending.length - length);
  }
}

/**
 * What follows "CRLF--boundary": "--" (close delimiter), or optional spaces/tabs then CRLF (a part follows).
 * Anything else means the bytes were not a delimiter.
 */
function delimiterEnd(bytes: Buffer): 'more' | 'invalid' | { kind: 'close' | 'part'; consumed: number } {
  if (bytes.length === 0) return 'more';
  if (bytes[0] === 0x2d) {
    if (bytes.length < 2) return 'more';
    return bytes[1] === 0x2d ? { kind: 'close', consumed: 2 } : 'invalid';
  }
  let i = 0;
  while (i < bytes.length && (bytes[i] === 0x20 || bytes[i] === 0x09)) {
    i += 1;
    if (i > MAX_PADDING_BYTES) return 'invalid';
  }
  if (i >= bytes.length) return 'more';
  if (bytes[i] !== 0x0d) return 'invalid';
  if (i + 1 >= bytes.length) return 'more';
  return bytes[i + 1] === 0x0a ? { kind: 'part', consumed: i + 2 } : 'invalid';
}

/** RFC 5322-style header lines (with folding) to lowercase name -> value; undefined when a line is not a header. */
function parseHeaderBlock(block: string): Record<string, string> | undefined {
  const headers: Record<string, string> = {};
  if (block === '') return headers;
  let last: string | undefined;
  for (const line of block.split('\r\n')) {
    if ((line.startsWith(' ') || line.startsWith('\t')) && last !== undefined) {
      headers[last] += ` ${line.trim()}`;
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) return undefined;
    const name = line.slice(0, colon).trim().toLowerCase();
    if (!/^[!#$%&'*+.^_`|~0-9a-z-]+$/.test(name)) return undefined;
    headers[name] = line.slice(colon + 1).trim();
    last = name;
  }
  return headers;
}

export interface MediaType {
  /** type/subtype, lowercase. */
  essence: string;
  /** Parameter names lowercase; values unquoted. */
  params: Record<string, string>;
}

/** Parses a Content-Type value (RFC 9110 media-type: token/token *(; name=token|quoted-string)). */
export function parseMediaType(value: string | undefined): MediaType | undefined {
  if (!value) return undefined;
  const match = /^\s*([!#$%&'*+.^_`|~0-9A-Za-z-]+\/[!#$%&'*+.^_`|~0-9A-Za-z-]+)\s*/.exec(value);
  if (!match) return undefined;
  const params: Record<string, string> = {};
  let rest = value.slice(match[0].length);
  const parameter = /^;\s*([!#$%&'*+.^_`|~0-9A-Za-z-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([!#$%&'*+.^_`|~0-9A-Za-z-]+))\s*/;
  while (rest.length > 0) {
    if (/^;\s*$/.test(rest)) break;
    const p = parameter.exec(rest);
    if (!p) return undefined;
    params[p[1]!.toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, '$1') : p[3]!;
    rest = rest.slice(p[0].length);
  }
  return { essence: match[1]!.toLowerCase(), params };
}

/** RFC 2046 boundary: 1-70 characters from its bchars set, not ending in a space. */
export function isValidBoundary(boundary: string): boolean {
  return /^[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]$/.test(boundary);
}

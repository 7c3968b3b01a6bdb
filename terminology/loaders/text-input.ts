/**
 * Reading a release file as text, a chunk at a time.
 *
 * Files are read with fs streams and consumed with `for await`, so a file is read only as fast as the loader writes
 * its batches: at most one 64 KiB chunk and one batch of rows are in memory, whatever the file size. (node:readline is
 * not used: its async iterator queues lines ahead of a slow consumer instead of pausing the file.)
 *
 * Character sets: RF2, LOINC and the ICD-10-CM order files are UTF-8 (or its ASCII subset). Korean tables (KCD,
 * KOSTOM) come as UTF-8 or as EUC-KR/CP949 depending on who exported them, so their encoding is 'auto': a BOM decides;
 * without one, the first 64 KiB are tried as UTF-8 and, failing that, read as CP949 (a superset of EUC-KR).
 * Text that does not decode in the chosen encoding is rejected at its line rather than loaded as U+FFFD.
 */
import { createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import iconv from 'iconv-lite';
import { TerminologyLoadError } from './errors.ts';

/** Bytes read per chunk. */
const CHUNK_BYTES = 64 * 1024;
/** A line (or CSV record) longer than this is refused rather than buffered: no release format comes near it. */
export const MAX_LINE_CHARS = 1024 * 1024;

export type EncodingChoice = 'auto' | string;

export interface TextFileOptions {
  /** An iconv-lite encoding name (utf-8, euc-kr, cp949, ...) or 'auto' (BOM, else UTF-8 if valid, else CP949). */
  encoding: EncodingChoice;
  /** Told the size of every chunk read, for progress. */
  onBytes?: (bytes: number) => void;
}

export interface TextFile {
  path: string;
  sizeBytes: number;
  /** The iconv-lite encoding the file is decoded with. */
  encoding: string;
  /** The decoded text, chunk by chunk (BOM removed). Can be iterated once. */
  chunks(): AsyncGenerator<string>;
}

/** Opens `path` for decoding; throws a TerminologyLoadError when it is missing or the encoding is unknown. */
export async function openTextFile(path: string, options: TextFileOptions): Promise<TextFile> {
  let sizeBytes: number;
  try {
    const info = await stat(path);
    if (!info.isFile()) throw new TerminologyLoadError(path, 0, 'is not a file');
    sizeBytes = info.size;
  } catch (error) {
    if (error instanceof TerminologyLoadError) throw error;
    throw new TerminologyLoadError(path, 0, `cannot be read: ${(error as Error).message}`, { cause: error });
  }
  const encoding = options.encoding === 'auto' ? await detectEncoding(path) : normaliseEncoding(path, options.encoding);
  return {
    path,
    sizeBytes,
    encoding,
    async *chunks() {
      const decoder = iconv.getDecoder(encoding, { stripBOM: true });
      for await (const chunk of createReadStream(path, { highWaterMark: CHUNK_BYTES }) as AsyncIterable<Buffer>) {
        options.onBytes?.(chunk.length);
        const text = decoder.write(chunk);
        if (text.length > 0) yield text;
      }
      const rest = decoder.end();
      if (rest) yield rest;
    },
  };
}

function normaliseEncoding(path: string, name: string): string {
  const lower = name.trim().toLowerCase();
  if (!iconv.encodingExists(lower)) throw new TerminologyLoadError(path, 0, `unknown character set ${name} (try utf-8, euc-kr or cp949)`);
  // EUC-KR files in the wild carry CP949's extra Hangul; CP949 decodes both, so one decoder serves either name.
  return lower === 'euc-kr' || lower === 'euckr' || lower === 'ks_c_5601-1987' ? 'cp949' : lower;
}

async function detectEncoding(path: string): Promise<string> {
  const handle = await open(path, 'r');
  try {
    const head = Buffer.alloc(CHUNK_BYTES);
    const { bytesRead } = await handle.read(head, 0, CHUNK_BYTES, 0);
    const bytes = head.subarray(0, bytesRead);
    if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) return 'utf-8';
    if (bytes[0] === 0xff && bytes[1] === 0xfe) return 'utf-16le';
    if (bytes[0] === 0xfe && bytes[1] === 0xff) return 'utf-16be';
    try {
      // stream: true lets a character cut at the 64 KiB boundary pass; only bytes that are wrong fail.
      new TextDecoder('utf-8', { fatal: true }).decode(bytes, { stream: true });
      return 'utf-8';
    } catch {
      return 'cp949';
    }
  } finally {
    await handle.close();
  }
}

/** Throws when a decoded line holds U+FFFD, which is what undecodable bytes become. */
export function checkDecoded(text: string, file: TextFile, line: number): void {
  if (text.includes('\uFFFD')) {
    throw new TerminologyLoadError(file.path, line, `bytes that are not valid ${file.encoding} (give the file's character set with --encoding)`);
  }
}

export interface TextLine {
  text: string;
  /** 1-based line number. */
  line: number;
}

/**
 * The lines of a decoded text, without their CR LF or LF. A final line without a line break is included; the empty
 * "line" after a final line break is not.
 */
export async function* linesOf(file: TextFile): AsyncGenerator<TextLine> {
  let pending = '';
  let line = 0;
  for await (const chunk of file.chunks()) {
    let start = 0;
    let newline = chunk.indexOf('\n');
    while (newline >= 0) {
      let text = pending + chunk.slice(start, newline);
      pending = '';
      if (text.endsWith('\r')) text = text.slice(0, -1);
      line++;
      yield { text, line };
      start = newline + 1;
      newline = chunk.indexOf('\n', start);
    }
    pending += chunk.slice(start);
    if (pending.length > MAX_LINE_CHARS) throw new TerminologyLoadError(file.path, line + 1, `line is longer than ${MAX_LINE_CHARS} characters (is this the right file?)`);
  }
  if (pending.length > 0) {
    line++;
    yield { text: pending.endsWith('\r') ? pending.slice(0, -1) : pending, line };
  }
}

/**
 * Deflated data sets (transfer syntax 1.2.840.10008.1.2.1.99) against deflate bombs: the instance, ratio and request
 * caps refuse with a code, inflation never holds the event loop, and the header read from part of the inflated bytes
 * is the header of the whole or a coded error.
 *
 * The bombs are built here from ct-3 (a small deflated CT instance): its data set, inflated, gets pixel data of zeros
 * and is deflated again. A megabyte of zeros deflated after a full flush is the same bytes every time, so a bomb of a
 * gigabyte is that block repeated, without deflating a gigabyte in the test.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { constants as zlibConstants, createDeflateRaw, deflateRawSync, inflateRawSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isAnchorlineError } from '../../errors/index.ts';
import { HEADER_WINDOW_BYTES, parseDicomInstance, readTransferSyntax } from '../../formats/dicom/parse.ts';
import { InflateBudget, readDicomInstance } from '../../formats/dicom/inflate.ts';
import { authHeaders, startTestEngine, type TestEngine } from '../support/engine.ts';

const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'dicom');
const fixture = (name: string): Buffer => readFileSync(path.join(FIXTURES, `${name}.dcm`));
const MiB = 1024 * 1024;

const seed = fixture('ct-3');
const { position: DATA_SET_START } = readTransferSyntax(seed);
/** ct-3's data set, inflated (explicit VR little endian), up to its pixel data. */
const seedDataSet = ((inflated: Buffer) => inflated.subarray(0, inflated.indexOf(Buffer.from([0xe0, 0x7f, 0x10, 0x00, 0x4f, 0x57]))))(inflateRawSync(seed.subarray(DATA_SET_START)));

/** An explicit VR little endian element; OB, OW, SQ, UN, UT take the long form. */
function element(group: number, number: number, vr: string, value: Buffer, undefinedLength = false): Buffer {
  const long = ['OB', 'OW', 'SQ', 'UN', 'UT'].includes(vr);
  const head = Buffer.alloc(long ? 12 : 8);
  head.writeUInt16LE(group, 0);
  head.writeUInt16LE(number, 2);
  head.write(vr, 4, 'latin1');
  if (long) head.writeUInt32LE(undefinedLength ? 0xffffffff : value.length, 8);
  else head.writeUInt16LE(value.length, 6);
  return Buffer.concat([head, value]);
}

/** The header of a pixel data element (7FE0,0010) OW of `length` bytes, without its value. */
function pixelDataHeader(length: number): Buffer {
  return Buffer.concat([Buffer.from([0xe0, 0x7f, 0x10, 0x00]), Buffer.from('OW', 'latin1'), Buffer.alloc(2), uint32(length)]);
}

function uint32(value: number): Buffer {
  const bytes = Buffer.alloc(4);
  bytes.writeUInt32LE(value, 0);
  return bytes;
}

/** A Part 10 file with ct-3's preamble and file meta around `deflatedDataSet`. */
function deflatedFile(deflatedDataSet: Buffer): Buffer {
  return Buffer.concat([seed.subarray(0, DATA_SET_START), deflatedDataSet]);
}

/** ct-3's data set with `zeroBytes` of zero pixel data, deflated in 1 MiB blocks after full flushes. */
async function bomb(zeroBytes: number): Promise<Buffer> {
  expect(zeroBytes % MiB).toBe(0);
  const deflater = createDeflateRaw({ level: 9 });
  const out: Buffer[] = [];
  deflater.on('data', (chunk: Buffer) => out.push(chunk));
  const flushed = async (): Promise<Buffer> => {
    await new Promise<void>((resolve) => deflater.flush(zlibConstants.Z_FULL_FLUSH, () => resolve()));
    return Buffer.concat(out.splice(0));
  };
  deflater.write(Buffer.concat([seedDataSet, pixelDataHeader(zeroBytes)]));
  const head = await flushed();
  deflater.write(Buffer.alloc(MiB));
  const block = await flushed();
  deflater.write(Buffer.alloc(MiB));
  expect((await flushed()).equals(block)).toBe(true);
  const ended = new Promise<void>((resolve) => deflater.on('end', () => resolve()));
  deflater.end();
  await ended;
  const tail = Buffer.concat(out);
  return deflatedFile(Buffer.concat([head, ...Array.from({ length: zeroBytes / MiB }, () => block), tail]));
}

/** Runs `work` and reports the longest the event loop was held meanwhile, in ms. */
async function longestEventLoopDelayMs<T>(work: () => Promise<T>): Promise<{ result: T; maxDelayMs: number }> {
  const histogram = monitorEventLoopDelay({ resolution: 10 });
  histogram.enable();
  try {
    const result = await work();
    return { result, maxDelayMs: histogram.max / 1e6 };
  } finally {
    histogram.disable();
  }
}

async function codeOf(promise: Promise<unknown>): Promise<string | undefined> {
  try {
    await promise;
    return undefined;
  } catch (error) {
    if (!isAnchorlineError(error)) throw error;
    return error.code;
  }
}

const CAPS = { maxInflatedBytes: 256 * MiB };

describe('deflated data sets', () => {
  let gigabyteBomb: Buffer;
  beforeAll(async () => {
    gigabyteBomb = await bomb(1024 * MiB);
  });

  it('refuses a 1 MB upload inflating to 1 GiB with a code, without holding the event loop', async () => {
    expect(gigabyteBomb.length).toBeLessThan(2 * MiB);
    const { result: code, maxDelayMs } = await longestEventLoopDelayMs(() => codeOf(readDicomInstance(gigabyteBomb, CAPS)));
    expect(code).toBe('ANCHORLINE_ERR_DICOM_TOO_LARGE');
    expect(maxDelayMs).toBeLessThan(300);
  });

  it('inflates the whole gigabyte, where the caps allow it, in steps the event loop does not feel', async () => {
    // One synchronous inflateRawSync of this gigabyte holds the loop for well over a second on this machine.
    const { result, maxDelayMs } = await longestEventLoopDelayMs(() => readDicomInstance(gigabyteBomb, { maxInflatedBytes: 2048 * MiB, maxInflateRatio: 100_000 }));
    expect(result.header.sopInstanceUid).toBe('2.25.1000000001.1.3');
    expect(maxDelayMs).toBeLessThan(300);
  });

  it('reads the header of the same bomb synchronously from its first bytes only, quickly', () => {
    const started = performance.now();
    const { header } = parseDicomInstance(gigabyteBomb, CAPS);
    expect(performance.now() - started).toBeLessThan(300);
    expect(header.sopInstanceUid).toBe('2.25.1000000001.1.3');
  });

  it('holds a data set to maxInflateRatio times its deflated size, and to maxInflatedBytes', async () => {
    const dense = await bomb(8 * MiB);
    const ratio = (8 * MiB) / (dense.length - DATA_SET_START);
    expect(ratio).toBeGreaterThan(200);
    expect(await codeOf(readDicomInstance(dense, CAPS))).toBe('ANCHORLINE_ERR_DICOM_TOO_LARGE');
    await expect(readDicomInstance(dense, CAPS)).rejects.toThrow(/times its size/);
    expect((await readDicomInstance(dense, { ...CAPS, maxInflateRatio: Math.ceil(ratio) + 1 })).header.sopInstanceUid).toBe('2.25.1000000001.1.3');
    expect(await codeOf(readDicomInstance(dense, { maxInflatedBytes: 4 * MiB, maxInflateRatio: 100_000 }))).toBe('ANCHORLINE_ERR_DICOM_TOO_LARGE');
  });

  it('shares a budget between the instances of one request, refused or not', async () => {
    const sixMiB = await bomb(6 * MiB);
    const options = { ...CAPS, maxInflateRatio: 100_000, budget: new InflateBudget(10 * MiB) };
    expect((await readDicomInstance(sixMiB, options)).header.sopInstanceUid).toBe('2.25.1000000001.1.3');
    expect(await codeOf(readDicomInstance(sixMiB, options))).toBe('ANCHORLINE_ERR_DICOM_INFLATE_BUDGET');
    // The refused one spent what it inflated: nothing is left for a third.
    expect(options.budget.remainingBytes).toBe(0);
    expect(await codeOf(readDicomInstance(fixture('ct-3'), options))).toBe('ANCHORLINE_ERR_DICOM_INFLATE_BUDGET');
  });

  it('reads from any part of the inflated bytes the header of the whole, or refuses with a code', async () => {
    // A private element of 100 KB before the attributes of group 0020, so the header spans several windows, and an
    // issuer qualifiers sequence of undefined length that a window can cut.
    const at = seedDataSet.indexOf(Buffer.from([0x20, 0x00, 0x0d, 0x00]));
    expect(at).toBeGreaterThan(0);
    const issuer = element(0x0040, 0x0032, 'UT', Buffer.from('2.16.840.1.113883.19.5'));
    const item = Buffer.concat([Buffer.from([0xfe, 0xff, 0x00, 0xe0]), uint32(issuer.length), issuer]);
    const sequence = element(0x0019, 0x0024, 'SQ', Buffer.concat([item, Buffer.from([0xfe, 0xff, 0xdd, 0xe0, 0, 0, 0, 0])]), true);
    const privateBlock = element(0x0019, 0x1010, 'OB', Buffer.alloc(100_000, 0x41));
    const dataSet = Buffer.concat([seedDataSet.subarray(0, at), sequence, privateBlock, seedDataSet.subarray(at), pixelDataHeader(4096), Buffer.alloc(4096)]);
    const file = deflatedFile(deflateRawSync(dataSet));
    const whole = await readDicomInstance(file, CAPS);
    expect(parseDicomInstance(file, CAPS).header).toEqual(whole.header);
    for (let length = 0; length <= dataSet.length; length += 997) {
      try {
        const { header } = parseDicomInstance(file, { ...CAPS, inflated: { head: dataSet.subarray(0, length), totalBytes: dataSet.length } });
        expect(header, `from the first ${length} bytes`).toEqual(whole.header);
      } catch (error) {
        if (!isAnchorlineError(error)) throw error;
        expect(error.code, `from the first ${length} bytes`).toBe('ANCHORLINE_ERR_DICOM_TOO_LARGE');
      }
    }
    // Pixel data longer than the data set is found out from the whole size even when its bytes are not read.
    const short = Buffer.concat([seedDataSet, pixelDataHeader(8192), Buffer.alloc(100)]);
    expect(await codeOf(readDicomInstance(deflatedFile(deflateRawSync(short)), CAPS))).toBe('ANCHORLINE_ERR_DICOM_TRUNCATED');
    expect(await codeOf(readDicomInstance(deflatedFile(deflateRawSync(Buffer.concat([seedDataSet, pixelDataHeader(100), Buffer.alloc(100)]))), CAPS))).toBeUndefined();
    expect(HEADER_WINDOW_BYTES).toBeLessThanOrEqual(4 * MiB);
  });
});

describe('STOW-RS of many deflate bombs', () => {
  let t: TestEngine;
  beforeAll(async () => {
    t = await startTestEngine({ overrides: { dicom: { enabled: false, stowMaxInflatedBytes: 256 * MiB } } });
  });
  afterAll(async () => {
    await t?.destroy();
  });

  it('refuses 40 parts of 1 MB bombs in one request with codes, the event loop never held long', async () => {
    const part = await bomb(1024 * MiB);
    const boundary = 'bomb-boundary-31';
    const pieces: Buffer[] = [];
    for (let i = 0; i < 40; i++) pieces.push(Buffer.from(`--${boundary}\r\nContent-Type: application/dicom\r\n\r\n`), part, Buffer.from('\r\n'));
    pieces.push(Buffer.from(`--${boundary}--\r\n`));
    // Sent as a stream of 256 KiB pieces: the test's own client shares the engine's event loop, and handing it 40 MB at
    // once would hold the loop on the client's side.
    const whole = Buffer.concat(pieces);
    let offset = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (offset >= whole.length) return controller.close();
        controller.enqueue(new Uint8Array(whole.subarray(offset, offset + 256 * 1024)));
        offset += 256 * 1024;
      },
    });
    const started = performance.now();
    const { result: response, maxDelayMs } = await longestEventLoopDelayMs(async () => {
      const reply = await fetch(`${t.httpUrl}/dicomweb/studies`, {
        method: 'POST',
        headers: { ...authHeaders(), 'content-type': `multipart/related; type="application/dicom"; boundary=${boundary}`, accept: 'application/dicom+json' },
        body,
        duplex: 'half',
      } as RequestInit);
      return { status: reply.status, json: (await reply.json()) as Record<string, { Value?: Array<Record<string, { Value?: unknown[] }>> }> };
    });
    const seconds = (performance.now() - started) / 1000;
    const failed = response.json['00081198']?.Value ?? [];
    expect(failed).toHaveLength(40);
    // A700 (out of resources) for each: the first passes the ratio cap, the rest find the request's budget spent.
    for (const item of failed) expect(item['00081197']?.Value).toEqual([0xa700]);
    expect([409, 503]).toContain(response.status);
    expect(maxDelayMs).toBeLessThan(300);
    // 40 bombs once cost a minute; now at most 256 MiB is inflated for the whole request.
    expect(seconds).toBeLessThan(30);
    const rows = await t.pool.query<{ error_code: string; n: number }>(`SELECT error_code, count(*)::int AS n FROM inbox_message WHERE protocol = 'dicom' GROUP BY error_code`);
    const byCode = Object.fromEntries(rows.rows.map((row) => [row.error_code, row.n]));
    expect(byCode['ANCHORLINE_ERR_DICOM_TOO_LARGE']).toBeGreaterThanOrEqual(1);
    expect(byCode['ANCHORLINE_ERR_DICOM_INFLATE_BUDGET']).toBeGreaterThanOrEqual(38);
  });
});

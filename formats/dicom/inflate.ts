/**
 * Judging a DICOM instance whole, deflated data sets included, without blocking the event loop.
 *
 * A deflated data set (transfer syntax 1.2.840.10008.1.2.1.99) of a megabyte can inflate to gigabytes, and inflating
 * 256 MiB in one synchronous call holds the event loop for over a second. Here it is inflated as a stream: zlib works on
 * the thread pool and hands back 64 KiB at a time, each piece is counted, and the stream is stopped as soon as the
 * count passes the limit: the instance cap (maxInflatedBytes), the ratio cap (maxInflateRatio times the deflated size)
 * and, when one is given, what is left of a budget shared by the instances of one request. Only the first
 * HEADER_WINDOW_BYTES are kept; parse.ts reads the header from them. The rest is counted and dropped, so memory is
 * bounded by the window, not by what the data set inflates to.
 */
import { createInflateRaw } from 'node:zlib';
import { AnchorlineError } from '../../errors/index.ts';
import { HEADER_WINDOW_BYTES, inflateLimitBytes, inflatedTooLarge, parseDicomInstance, readTransferSyntax, DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN, type DicomParseOptions, type InflatedDataSet, type ParsedDicomInstance } from './parse.ts';

/** Output handed back per step of the thread pool: small enough that no single callback does much work. */
const INFLATE_CHUNK_BYTES = 64 * 1024;

/**
 * Inflated bytes that several instances share (the instances of one STOW-RS request): each deflated data set takes
 * what it inflated to, passed or refused; one that would pass what is left is refused with
 * ANCHORLINE_ERR_DICOM_INFLATE_BUDGET, so a request of many deflate bombs costs the budget once, not once per part.
 */
export class InflateBudget {
  #remainingBytes: number;

  constructor(totalBytes: number) {
    this.#remainingBytes = totalBytes;
  }

  get remainingBytes(): number {
    return this.#remainingBytes;
  }

  /** Takes `bytes` out of the budget (never below zero). */
  spend(bytes: number): void {
    this.#remainingBytes = Math.max(0, this.#remainingBytes - bytes);
  }
}

export interface ReadDicomOptions extends Omit<DicomParseOptions, 'inflated'> {
  /** Shared with other instances; absent: only the instance's own caps apply. */
  budget?: InflateBudget | undefined;
}

/**
 * Inflates a deflated data set in steps on the thread pool, counting what it inflates to; resolves to its first
 * HEADER_WINDOW_BYTES and its whole size, or rejects with ANCHORLINE_ERR_DICOM_TOO_LARGE (instance or ratio cap),
 * ANCHORLINE_ERR_DICOM_INFLATE_BUDGET (the shared budget) or ANCHORLINE_ERR_DICOM_MALFORMED (not a deflate stream).
 */
export function inflateDataSet(deflated: Buffer, options: ReadDicomOptions): Promise<InflatedDataSet> {
  const ownLimit = inflateLimitBytes(deflated.length, options);
  const budgetLimit = options.budget?.remainingBytes ?? Infinity;
  const limit = Math.min(ownLimit, budgetLimit);
  return new Promise((resolve, reject) => {
    const inflater = createInflateRaw({ chunkSize: INFLATE_CHUNK_BYTES });
    const head: Buffer[] = [];
    let headBytes = 0;
    let totalBytes = 0;
    let settled = false;
    // What was inflated is spent whether the instance passes or not: the budget bounds the work a request causes.
    const fail = (error: AnchorlineError): void => {
      if (settled) return;
      settled = true;
      inflater.destroy();
      options.budget?.spend(totalBytes);
      reject(error);
    };
    inflater.on('data', (chunk: Buffer) => {
      if (settled) return;
      totalBytes += chunk.length;
      if (totalBytes > limit) {
        if (totalBytes > ownLimit || ownLimit <= budgetLimit) {
          fail(inflatedTooLarge(deflated.length, ownLimit, options));
        } else {
          fail(new AnchorlineError('ANCHORLINE_ERR_DICOM_INFLATE_BUDGET', `the request's deflated instances inflate to more than its limit; ${budgetLimit} bytes were left for this one`));
        }
        return;
      }
      if (headBytes < HEADER_WINDOW_BYTES) {
        const kept = chunk.subarray(0, HEADER_WINDOW_BYTES - headBytes);
        head.push(kept);
        headBytes += kept.length;
      }
    });
    inflater.on('error', () => fail(new AnchorlineError('ANCHORLINE_ERR_DICOM_MALFORMED', 'the deflated data set is not a valid deflate stream')));
    inflater.on('end', () => {
      if (settled) return;
      settled = true;
      options.budget?.spend(totalBytes);
      resolve({ head: Buffer.concat(head, headBytes), totalBytes });
    });
    inflater.end(deflated);
  });
}

/**
 * Reads and judges a whole instance: parseDicomInstance, with a deflated data set first inflated whole off the event
 * loop and held to its caps (and to `options.budget`, which it then spends). Throws AnchorlineError only.
 */
export async function readDicomInstance(bytes: Buffer, options: ReadDicomOptions): Promise<ParsedDicomInstance> {
  const { budget, ...parseOptions } = options;
  const dataSetStart = readTransferSyntax(bytes);
  if (dataSetStart.transferSyntaxUid !== DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN) return parseDicomInstance(bytes, parseOptions);
  const inflated = await inflateDataSet(bytes.subarray(dataSetStart.position), { ...parseOptions, budget });
  return parseDicomInstance(bytes, { ...parseOptions, inflated });
}

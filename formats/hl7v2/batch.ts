/**
 * HL7 v2 batches (chapter 2, "batch protocol"): a file or a batch of messages framed by header and trailer segments,
 *
 *   [FHS] { [BHS] { MSH ... } [BTS] } [FTS]
 *
 * as laboratories and public-health senders write result files. Split at the byte level, each message exactly as
 * received (from its MSH up to the next MSH or batch segment), so that each is hashed, stored and answered as a
 * message sent alone would be. Segment terminators may be CR, LF or CRLF, as files are written. The acknowledgment
 * of a batch is a batch (2.10.3.3): BHS and FHS naming the received ones as their reference, the ACK of every message
 * in order, and trailers that count them.
 */
import { hl7Timestamp, newAckControlId } from './ack.ts';

/** One BHS ... BTS group (or the messages of a file sent without BHS). */
export interface Hl7BatchGroup {
  /** The BHS segment as sent (latin1 text of its bytes); absent when the messages came without one. */
  header?: string;
  /** Each message's bytes as received. */
  messages: Buffer[];
  /** BTS-1, the batch message count the sender declared, when it sent one that is a number. */
  declaredCount?: number;
}

export interface Hl7Batch {
  /** The FHS segment as sent (latin1 text of its bytes), when there is one. */
  fileHeader?: string;
  groups: Hl7BatchGroup[];
  /** FTS-1, the file batch count the sender declared, when it sent one that is a number. */
  declaredBatches?: number;
  /** Lines outside any message that are not batch segments (text before the first MSH, junk between batches). */
  strayLines: number;
}

const BATCH_SEGMENTS = new Set(['FHS', 'BHS', 'BTS', 'FTS']);
const BOM = Buffer.from([0xef, 0xbb, 0xbf]);

/**
 * The three-letter segment name a line starts with, when what follows it is a plausible field separator (printable
 * ASCII, not a letter or digit) or the end of the line.
 */
function segmentNameOf(line: string): string | undefined {
  const name = line.slice(0, 3);
  if (!/^[A-Z][A-Z0-9]{2}$/.test(name)) return undefined;
  return line.length === 3 || /^[!-/:-@[-`{-~]$/.test(line[3]!) ? name : undefined;
}

/** segmentNameOf the line of `bytes` from `start` to `end`. */
function segmentName(bytes: Buffer, start: number, end: number): string | undefined {
  return segmentNameOf(bytes.toString('latin1', start, Math.min(end, start + 4)));
}

/** Whether a line (as latin1 text) is a batch segment: FHS, BHS, BTS or FTS. */
export function isBatchSegmentLine(line: string): boolean {
  return BATCH_SEGMENTS.has(segmentNameOf(line) ?? '');
}

/** Where the content starts: after a UTF-8 byte order mark and blank lines. */
function contentStart(bytes: Buffer): number {
  let start = bytes.subarray(0, 3).equals(BOM) ? 3 : 0;
  while (start < bytes.length && (bytes[start] === 0x0d || bytes[start] === 0x0a || bytes[start] === 0x20 || bytes[start] === 0x09)) start++;
  return start;
}

/** Whether the bytes are a batch: their first segment is FHS or BHS. */
export function isHl7Batch(bytes: Buffer): boolean {
  const start = contentStart(bytes);
  const name = segmentName(bytes, start, Math.min(bytes.length, start + 4));
  return name === 'FHS' || name === 'BHS';
}

/**
 * Whether the bytes hold several messages: a batch, or messages one after another without batch segments (a file
 * of messages, or a sender that put two in one frame). A second MSH starts a second message: read as one, the
 * second's patient and results would be taken for more of the first's.
 */
export function holdsSeveralMessages(bytes: Buffer): boolean {
  if (isHl7Batch(bytes)) return true;
  const start = contentStart(bytes);
  let messages = segmentName(bytes, start, Math.min(bytes.length, start + 4)) === 'MSH' ? 1 : 0;
  // Found by search rather than a walk of every line: this is asked of every message received.
  for (const pattern of LINE_START_MSH) {
    for (let at = bytes.indexOf(pattern, start); at >= 0; at = bytes.indexOf(pattern, at + 1)) {
      if (segmentName(bytes, at + 1, Math.min(bytes.length, at + 5)) === 'MSH' && ++messages > 1) return true;
    }
  }
  return false;
}

/** An MSH at the start of a line, after either terminator (CRLF is found by its LF). */
const LINE_START_MSH = [Buffer.from('\rMSH', 'latin1'), Buffer.from('\nMSH', 'latin1')];

/** A count field (BTS-1, FTS-1) of a trailer segment, when it is a whole number. */
function countField(segment: string): number | undefined {
  const value = segment.slice(4).split(segment[3] ?? '|')[0]?.trim() ?? '';
  return /^\d{1,9}$/.test(value) ? Number(value) : undefined;
}

/** Splits a batch into its messages, each as received. Bytes that are not a batch are one group of what MSH they have. */
export function splitHl7Batch(bytes: Buffer): Hl7Batch {
  const batch: Hl7Batch = { groups: [], strayLines: 0 };
  let group: Hl7BatchGroup | undefined;
  let messageStart: number | undefined;
  const closeMessage = (end: number): void => {
    if (messageStart === undefined) return;
    if (group === undefined) batch.groups.push((group = { messages: [] }));
    group.messages.push(bytes.subarray(messageStart, end));
    messageStart = undefined;
  };
  let position = contentStart(bytes);
  while (position < bytes.length) {
    let end = position;
    while (end < bytes.length && bytes[end] !== 0x0d && bytes[end] !== 0x0a) end++;
    const name = segmentName(bytes, position, end);
    if (name !== undefined && BATCH_SEGMENTS.has(name)) {
      closeMessage(position);
      const segment = bytes.toString('latin1', position, end);
      if (name === 'FHS') batch.fileHeader ??= segment;
      else if (name === 'BHS') batch.groups.push((group = { header: segment, messages: [] }));
      else if (name === 'BTS') {
        if (group !== undefined) {
          const declared = countField(segment);
          if (declared !== undefined) group.declaredCount = declared;
        }
        group = undefined;
      } else {
        const declared = countField(segment);
        if (declared !== undefined) batch.declaredBatches = declared;
      }
    } else if (name === 'MSH') {
      closeMessage(position);
      messageStart = position;
    } else if (messageStart === undefined && end > position) {
      batch.strayLines++;
    }
    // Past the line and its terminator (CR, LF or CRLF).
    position = end;
    if (position < bytes.length && bytes[position] === 0x0d) position++;
    if (position < bytes.length && bytes[position] === 0x0a) position++;
  }
  closeMessage(bytes.length);
  return batch;
}

/** Whether the sender declared a message count for the group (BTS-1) other than the messages that arrived. */
export function declaredCountDiffers(group: Hl7BatchGroup): boolean {
  return group.declaredCount !== undefined && group.declaredCount !== group.messages.length;
}

/** The messages of a batch, in order. */
export function batchMessages(batch: Hl7Batch): Buffer[] {
  return batch.groups.flatMap((group) => group.messages);
}

export interface BatchAckOptions {
  timestamp: Date;
  timeZone: string;
  /** Our application name, where the received header names no receiving application. */
  engineApplication: string;
}

/**
 * The fields of a header (FHS or BHS) as received: separator, encoding characters, and fields 3 onward by number
 * (fields[3] is -3). Components are kept as sent.
 */
function headerFields(segment: string): { separator: string; encoding: string; fields: string[] } {
  const separator = segment[3] ?? '|';
  const parts = segment.slice(4).split(separator);
  return { separator, encoding: parts[0] ?? '^~\\&', fields: ['', '', '', ...parts.slice(1)] };
}

/**
 * The answering header for a received FHS or BHS (or for none): sender and receiver swapped, our time, a fresh
 * control id, and the received control id (-11) as the reference (-12).
 */
function answeringHeader(name: 'FHS' | 'BHS', received: string | undefined, options: BatchAckOptions): string {
  const { separator, encoding, fields } = headerFields(received ?? `${name}|^~\\&`);
  const field = (n: number): string => fields[n] ?? '';
  const answer = ['', '', '', field(5) || options.engineApplication, field(6), field(3), field(4), hl7Timestamp(options.timestamp, options.timeZone), '', '', 'ACK', newAckControlId(), field(11)];
  while (answer.length > 4 && answer[answer.length - 1] === '') answer.pop();
  return `${name}${separator}${encoding}${separator}${answer.slice(3).join(separator)}`;
}

/**
 * The batch acknowledging a batch: for each received group a BHS, the ACKs of its messages (acks, in the order of
 * batchMessages) and a BTS counting them, with a comment when the sender's count differs from what arrived; inside
 * FHS/FTS when the batch came in a file. Segments end with CR, as every message does.
 */
export function buildBatchAck(batch: Hl7Batch, acks: readonly Buffer[], options: BatchAckOptions): Buffer {
  const parts: Buffer[] = [];
  const line = (text: string): void => {
    parts.push(Buffer.from(`${text}\r`, 'latin1'));
  };
  const separatorOf = (segment: string | undefined): string => segment?.[3] ?? '|';
  if (batch.fileHeader !== undefined) line(answeringHeader('FHS', batch.fileHeader, options));
  let next = 0;
  for (const group of batch.groups) {
    line(answeringHeader('BHS', group.header, options));
    for (const _ of group.messages) {
      const ack = acks[next++]!;
      parts.push(ack);
      if (ack.length > 0 && ack[ack.length - 1] !== 0x0d) parts.push(Buffer.from('\r'));
    }
    const separator = separatorOf(group.header);
    line(`BTS${separator}${group.messages.length}${declaredCountDiffers(group) ? `${separator}BTS-1 declared ${group.declaredCount} messages; ${group.messages.length} arrived` : ''}`);
  }
  if (batch.fileHeader !== undefined) line(`FTS${separatorOf(batch.fileHeader)}${batch.groups.length}`);
  return Buffer.concat(parts);
}

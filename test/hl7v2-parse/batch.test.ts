/**
 * HL7 v2 batches (formats/hl7v2/batch.ts): public batch files split into their messages byte for byte, whatever the
 * line ends; the counts the sender declared read; the batch acknowledgment built around the messages' ACKs.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { batchMessages, buildBatchAck, holdsSeveralMessages, isHl7Batch, readMshHeader, splitHl7Batch } from '../../formats/hl7v2/index.ts';

const ROOT = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'hl7v2-batch');
const manifest = JSON.parse(readFileSync(path.join(ROOT, 'manifest.json'), 'utf8')) as Array<{ file: string; source: string; licence: string }>;
const file = (name: string): Buffer => readFileSync(path.join(ROOT, name));
const OPTIONS = { timestamp: new Date('2026-12-07T10:00:00Z'), timeZone: 'Asia/Seoul', engineApplication: 'ANCHORLINE' };

describe('HL7 v2 batches', () => {
  it('splits every public batch file into the messages its BTS counts, each starting at its MSH and ending before the next', () => {
    expect(manifest.length).toBeGreaterThanOrEqual(3);
    for (const entry of manifest) {
      expect(entry.source, entry.file).not.toBe('');
      expect(entry.licence, entry.file).not.toBe('');
      const bytes = file(entry.file);
      expect(isHl7Batch(bytes), entry.file).toBe(true);
      const batch = splitHl7Batch(bytes);
      expect(batch.fileHeader, entry.file).toMatch(/^FHS\|/);
      expect(batch.groups.length, entry.file).toBe(1);
      const [group] = batch.groups;
      expect(group!.header, entry.file).toMatch(/^BHS\|/);
      expect(group!.messages.length, entry.file).toBe(group!.declaredCount);
      expect(batch.declaredBatches, entry.file).toBe(1);
      expect(batch.strayLines, entry.file).toBe(0);
      for (const message of group!.messages) {
        expect(message.toString('latin1', 0, 4), entry.file).toBe('MSH|');
        expect(message.toString('latin1')).not.toMatch(/(^|[\r\n])(BHS|BTS|FHS|FTS)\|/);
        expect(readMshHeader(message.toString('latin1')).messageType).toBe('ORU');
      }
      // Nothing of any message is lost or changed: the messages are the file's bytes between the batch segments.
      const joined = Buffer.concat(group!.messages).toString('latin1');
      const between = bytes.toString('latin1').replace(/^(FHS|BHS)[^\r\n]*(\r\n|\r|\n)/gm, '').replace(/^(BTS|FTS)[^\r\n]*((\r\n|\r|\n)|$)/gm, '');
      expect(joined, entry.file).toBe(between);
    }
  });

  it('reads LF, CRLF and CR line ends, a byte order mark, several batches in a file, and a batch without a file header', () => {
    const msh = (id: string) => `MSH|^~\\&|LAB|HOSP|||20240101||ORU^R01|${id}|P|2.5.1`;
    const lines = ['FHS|^~\\&|LAB|HOSP', 'BHS|^~\\&|LAB|HOSP||||||||B1', msh('1'), 'PID|1||M1^^^HOSP^MR', msh('2'), 'PID|1||M2^^^HOSP^MR', 'BTS|2', 'BHS|^~\\&|LAB|HOSP||||||||B2', msh('3'), 'PID|1||M3^^^HOSP^MR', 'BTS|5', 'FTS|2'];
    for (const end of ['\n', '\r\n', '\r']) {
      const batch = splitHl7Batch(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(lines.join(end) + end)]));
      expect(batch.groups.map((group) => [group.messages.length, group.declaredCount])).toEqual([[2, 2], [1, 5]]);
      expect(batchMessages(batch).map((message) => readMshHeader(message.toString('latin1')).controlId)).toEqual(['1', '2', '3']);
      expect(batchMessages(batch)[0]!.toString('latin1')).toBe(`${msh('1')}${end}PID|1||M1^^^HOSP^MR${end}`);
    }
    const bare = splitHl7Batch(Buffer.from(['BHS|^~\\&', msh('9'), 'BTS|1'].join('\r')));
    expect(bare.fileHeader).toBeUndefined();
    expect(batchMessages(bare)).toHaveLength(1);
    // One message alone is not a batch; nor is text that merely starts with the letters.
    expect(isHl7Batch(Buffer.from(msh('1')))).toBe(false);
    // Messages one after another without batch segments are several messages, whatever the line ends.
    for (const end of ['\r', '\n', '\r\n']) {
      expect(holdsSeveralMessages(Buffer.from([msh('1'), 'PID|1', msh('2'), 'PID|1'].join(end)))).toBe(true);
      expect(holdsSeveralMessages(Buffer.from([msh('1'), 'PID|1', 'OBX|1|TX|X||MSH is the header'].join(end)))).toBe(false);
      expect(batchMessages(splitHl7Batch(Buffer.from([msh('1'), 'PID|1', msh('2'), 'PID|1'].join(end)))).map((m) => readMshHeader(m.toString('latin1')).controlId)).toEqual(['1', '2']);
    }
    expect(holdsSeveralMessages(Buffer.from(['BHS|^~\\&', msh('9'), 'BTS|1'].join('\r')))).toBe(true);
    expect(isHl7Batch(Buffer.from('BHSX is not a segment'))).toBe(false);
  });

  it('answers a batch with a batch: headers naming the received ones, every ACK in order, trailers that count, and says when a count differs', () => {
    const lines = ['FHS|^~\\&|LAB|HOSP|HUB|STATE|20240101||||F77', 'BHS|^~\\&|LAB|HOSP|HUB|STATE|20240101||||B77', 'MSH|x', 'MSH|y', 'BTS|3'];
    const batch = splitHl7Batch(Buffer.from(lines.join('\r')));
    const acks = [Buffer.from('MSH|^~\\&|HUB|STATE|LAB|HOSP|||ACK|A1|P|2.5.1\rMSA|AA|x\r'), Buffer.from('MSH|^~\\&|HUB|STATE|LAB|HOSP|||ACK|A2|P|2.5.1\rMSA|AR|y')];
    const segments = buildBatchAck(batch, acks, OPTIONS).toString('latin1').split('\r').filter((segment) => segment !== '');
    expect(segments.map((segment) => segment.slice(0, 3))).toEqual(['FHS', 'BHS', 'MSH', 'MSA', 'MSH', 'MSA', 'BTS', 'FTS']);
    const fields = (segment: string) => segment.split('|');
    // Sender and receiver swapped; the received control id as the reference (-12).
    expect(fields(segments[0]!).slice(2, 6)).toEqual(['HUB', 'STATE', 'LAB', 'HOSP']);
    expect(fields(segments[0]!)[11]).toBe('F77');
    expect(fields(segments[1]!)[11]).toBe('B77');
    expect(fields(segments[1]!)[6]).toMatch(/^20261207190000(\.000)?\+0900$/);
    expect(fields(segments[6]!)).toEqual(['BTS', '2', 'BTS-1 declared 3 messages; 2 arrived']);
    expect(segments[7]).toBe('FTS|1');
  });
});

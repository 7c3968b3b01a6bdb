/**
 * Every message of the public HL7 v2 corpus (test/fixtures/corpus/hl7v2, sources and licences in its manifest) is
 * parsed and mapped, and what it maps to (resource types and counts, issue codes, or the error it fails with) is
 * compared with the stored expectation, so that any change in what the corpus maps to shows here. After an intended
 * change: `npx tsx scripts/corpus-hl7v2.ts --update` and review the diff of expected.json.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { readCorpus, runCorpusMessage, type CorpusOutcome } from '../support/hl7v2-corpus.ts';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'corpus', 'hl7v2');
const entries = readCorpus(root);
const expected = JSON.parse(readFileSync(path.join(root, 'expected.json'), 'utf8')) as Record<string, CorpusOutcome>;

describe('the public HL7 v2 corpus', () => {
  it('names a source and a licence for every file, and has an expectation for each', () => {
    expect(entries.length).toBeGreaterThanOrEqual(400);
    for (const entry of entries) {
      expect(existsSync(path.join(root, entry.file)), entry.file).toBe(true);
      expect(entry.source, entry.file).not.toBe('');
      expect(entry.licence, entry.file).not.toBe('');
      expect(existsSync(path.join(root, 'licences', `${entry.file.split('/')[0]}.txt`)) || entry.file.startsWith('invalid/'), entry.file).toBe(true);
    }
    expect(Object.keys(expected).sort()).toEqual(entries.map((entry) => entry.file).sort());
  });

  it('maps every message as it did when the expectation was stored', () => {
    const changed: string[] = [];
    for (const entry of entries) {
      const outcome = runCorpusMessage(readFileSync(path.join(root, entry.file)));
      if (JSON.stringify(outcome) !== JSON.stringify(expected[entry.file])) changed.push(`${entry.file}: ${JSON.stringify(outcome)} (stored: ${JSON.stringify(expected[entry.file])})`);
    }
    expect(changed).toEqual([]);
  });

  it('maps at least 98 % of the data messages, and refuses none as unsupported', () => {
    const data = Object.values(expected).filter((o) => o.error !== 'ANCHORLINE_ERR_HL7_NOT_DATA_MESSAGE');
    const mapped = data.filter((o) => o.error === undefined);
    expect(mapped.length / data.length).toBeGreaterThanOrEqual(0.98);
    expect(Object.values(expected).filter((o) => o.error === 'ANCHORLINE_ERR_HL7_UNSUPPORTED_MESSAGE_TYPE')).toEqual([]);
  });

  it('answers queries and acknowledgments as not data, and maps the responses that carry data', () => {
    const outcomes = entries.map((entry) => ({ type: entry.messageType.split('^')[0], outcome: expected[entry.file]! }));
    for (const { type, outcome } of outcomes) {
      if (type === 'ACK' || type === 'QRY' || type === 'QBP') expect(outcome.error).toBe('ANCHORLINE_ERR_HL7_NOT_DATA_MESSAGE');
    }
    const responses = outcomes.filter(({ type }) => type === 'RSP' || type === 'ORF');
    expect(responses.filter(({ outcome }) => outcome.resources['Patient'] !== undefined).length).toBeGreaterThan(responses.length / 2);
  });
});

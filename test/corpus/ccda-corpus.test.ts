/**
 * Every document of the public C-CDA corpus (test/fixtures/corpus/ccda, sources and licences in its manifest) is
 * converted as the intake converts it, and what it becomes (converted or the code it is refused with, resource types
 * and counts, issue codes, by section) is compared with the stored expectation, so that any change in what real
 * documents convert to shows here. Every resource produced must be valid FHIR R4, and nearly every document must
 * convert. After an intended change: `npm run corpus:ccda -- --update` and review the diff of expected.json.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { beforeAll, describe, expect, it } from 'vitest';

import { readCcdaCorpus, runCcdaCorpusDocument, type CcdaCorpusOutcome, type CcdaCorpusRun } from '../support/ccda-corpus.ts';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'corpus', 'ccda');
const entries = readCcdaCorpus(root);
const expected = JSON.parse(readFileSync(path.join(root, 'expected.json'), 'utf8')) as Record<string, CcdaCorpusOutcome>;
const UPDATE_HINT = 'If the change is intended, run `npm run corpus:ccda -- --update` and review the diff of test/fixtures/corpus/ccda/expected.json.';

// Each document is converted once; the tests below read the runs.
const runs = new Map<string, CcdaCorpusRun>();

describe('the public C-CDA corpus', () => {
  beforeAll(() => {
    for (const entry of entries) runs.set(entry.file, runCcdaCorpusDocument(readFileSync(path.join(root, entry.file))));
  }, 120_000);

  it('names a source, commit and licence for every document, and has an expectation for each', () => {
    expect(entries.length).toBeGreaterThanOrEqual(40);
    for (const entry of entries) {
      expect(existsSync(path.join(root, entry.file)), entry.file).toBe(true);
      expect(entry.source, entry.file).toMatch(/^[\w.-]+\/[\w.-]+$/);
      expect(entry.commit, entry.file).toMatch(/^[0-9a-f]{40}$/);
      expect(entry.licence, entry.file).not.toBe('');
      if (entry.invalid === true) expect(entry.note, entry.file).toBeTruthy();
      expect(existsSync(path.join(root, 'licences', `${entry.file.split('/')[0]}.txt`)), entry.file).toBe(true);
    }
    expect(Object.keys(expected).sort(), UPDATE_HINT).toEqual(entries.map((entry) => entry.file).sort());
  });

  it('converts every document as the stored expectation says', () => {
    const changed: string[] = [];
    for (const entry of entries) {
      const outcome = runs.get(entry.file)!.outcome;
      const stored = expected[entry.file];
      if (JSON.stringify(outcome) !== JSON.stringify(stored)) changed.push(`${entry.file}:\n  now    ${JSON.stringify(outcome)}\n  stored ${JSON.stringify(stored)}`);
    }
    expect(changed, `${changed.length} corpus document(s) convert differently from the stored expectation. ${UPDATE_HINT}`).toEqual([]);
  });

  it('produces only valid FHIR R4 resources', () => {
    const invalid = entries.flatMap((entry) => runs.get(entry.file)!.invalid.map((problem) => `${entry.file}: ${problem}`));
    expect(invalid).toEqual([]);
  });

  it('converts at least 98 % of the documents meant to be taken, and refuses the rest with a coded, permanent error', () => {
    // Negative test documents (manifest `invalid`) are broken on purpose: refusing them is right, so they do not count.
    const meant = entries.filter((entry) => entry.invalid !== true);
    const refused = meant.filter((entry) => runs.get(entry.file)!.outcome.state !== 'converted').map((entry) => `${entry.file}: ${runs.get(entry.file)!.outcome.state}`);
    expect((meant.length - refused.length) / meant.length, `refused: ${refused.join(', ')}`).toBeGreaterThanOrEqual(0.98);
    expect(entries.filter((entry) => !runs.get(entry.file)!.codedRefusal).map((entry) => `${entry.file}: ${runs.get(entry.file)!.outcome.state}`)).toEqual([]);
  });
});

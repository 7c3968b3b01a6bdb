/**
 * The DICOM corpus (test/fixtures/corpus/dicom: public instances, each with its source and licence in manifest.json)
 * run through what the intake and the ingest worker do with an instance, without a database. Prints, per source, how
 * many instances are stored and mapped and why the others are refused, then the mapping issues by code.
 *
 *   npm run corpus:dicom                the tables
 *   npm run corpus:dicom -- --update    also rewrite the stored expectation (expected.json) the corpus test compares
 *                                       with; review its diff like any other change of behaviour
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { readDicomCorpus, runDicomCorpusFile, type DicomCorpusOutcome } from '../test/support/dicom-corpus.ts';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'test', 'fixtures', 'corpus', 'dicom');
const entries = readDicomCorpus(root);
const outcomes: Record<string, DicomCorpusOutcome> = {};
const bySource = new Map<string, { stored: number; refused: Map<string, number> }>();
const issues = new Map<string, number>();
let problems = 0;
for (const entry of entries) {
  const run = await runDicomCorpusFile(readFileSync(path.join(root, entry.file)));
  outcomes[entry.file] = run.outcome;
  for (const problem of run.problems) console.error(`${entry.file}: ${problem}`);
  problems += run.problems.length;
  const source = bySource.get(entry.source) ?? { stored: 0, refused: new Map<string, number>() };
  bySource.set(entry.source, source);
  if (run.outcome.refused === undefined) source.stored++;
  else source.refused.set(run.outcome.refused.code, (source.refused.get(run.outcome.refused.code) ?? 0) + 1);
  for (const issue of run.outcome.issues ?? []) {
    const code = issue.split('@')[0]!;
    issues.set(code, (issues.get(code) ?? 0) + 1);
  }
}
console.log(`${entries.length} instances`);
for (const [source, { stored, refused }] of bySource) {
  const total = stored + [...refused.values()].reduce((a, b) => a + b, 0);
  console.log(`  ${source.padEnd(28)} ${String(total).padStart(4)}  stored and mapped ${stored} (${((100 * stored) / total).toFixed(1)} %)${[...refused].map(([code, n]) => `, ${code} ${n}`).join('')}`);
}
console.log('mapping issues (instances with each code):');
for (const [code, n] of [...issues].sort((a, b) => b[1] - a[1])) console.log(`  ${code.padEnd(44)} ${n}`);
console.log(`resources not valid FHIR R4, or headers that read differently from their stored prefix: ${problems}`);
if (process.argv.includes('--update')) {
  writeFileSync(path.join(root, 'expected.json'), `${JSON.stringify(outcomes, null, 1)}\n`);
  console.log('expected.json rewritten');
}

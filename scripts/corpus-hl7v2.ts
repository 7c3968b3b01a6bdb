/**
 * The HL7 v2 corpus (test/fixtures/corpus/hl7v2: public messages, each with its source and licence in manifest.json)
 * run through what the ingest job does with a message, without a database: decode by MSH-18, parse, map with the
 * default config, merge each resource's drafts, validate. Prints, by message type, how many messages map with no
 * loss (no issue of severity warning or error), how many map with warnings, and how many fail and why.
 *
 *   npx tsx scripts/corpus-hl7v2.ts            the table
 *   npx tsx scripts/corpus-hl7v2.ts --update   also rewrite the stored expectation (expected.json) the corpus test
 *                                              compares with; review its diff like any other change of behaviour
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { readCorpus, runCorpusMessage, type CorpusOutcome } from '../test/support/hl7v2-corpus.ts';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'test', 'fixtures', 'corpus', 'hl7v2');
const outcomes = new Map<string, CorpusOutcome>();
for (const entry of readCorpus(root)) outcomes.set(entry.file, runCorpusMessage(readFileSync(path.join(root, entry.file))));

const byType = new Map<string, { total: number; clean: number; warned: number; failed: Map<string, number> }>();
for (const [file, outcome] of outcomes) {
  const type = outcome.messageType?.split('^')[0] ?? '(unreadable)';
  let row = byType.get(type);
  if (!row) byType.set(type, (row = { total: 0, clean: 0, warned: 0, failed: new Map() }));
  row.total++;
  if (outcome.error !== undefined) row.failed.set(outcome.error, (row.failed.get(outcome.error) ?? 0) + 1);
  else if (outcome.issues.some((issue) => !issue.endsWith(':information'))) row.warned++;
  else row.clean++;
  void file;
}
const pct = (n: number, d: number): string => `${d === 0 ? 0 : Math.round((1000 * n) / d) / 10}%`;
let total = 0;
let clean = 0;
let mapped = 0;
console.log('type   messages  no loss        with warnings  failed');
for (const [type, row] of [...byType].sort(([a], [b]) => a.localeCompare(b))) {
  total += row.total;
  clean += row.clean;
  mapped += row.clean + row.warned;
  const failed = [...row.failed].map(([code, n]) => `${code.replace('ANCHORLINE_ERR_', '')} ${n}`).join(', ');
  console.log(`${type.padEnd(6)} ${String(row.total).padStart(8)}  ${`${row.clean} (${pct(row.clean, row.total)})`.padEnd(13)}  ${String(row.warned).padEnd(13)}  ${failed}`);
}
console.log(`all    ${String(total).padStart(8)}  ${clean} (${pct(clean, total)}) with no loss; ${mapped} (${pct(mapped, total)}) mapped`);

if (process.argv.includes('--update')) {
  const expected = Object.fromEntries([...outcomes].sort(([a], [b]) => a.localeCompare(b)));
  writeFileSync(path.join(root, 'expected.json'), JSON.stringify(expected, null, 1) + '\n');
  console.log('wrote expected.json');
}

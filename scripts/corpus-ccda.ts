/**
 * The C-CDA corpus (test/fixtures/corpus/ccda: public documents, each with its source and licence in manifest.json)
 * run through the conversion the intake and the ingest worker run, without a database. Prints what integration staff
 * need to know before taking documents from a sender: per document type and per source, how many documents convert;
 * the resources the corpus becomes; and, section by section, what the conversion reports it did not convert.
 *
 *   npm run corpus:ccda                the tables
 *   npm run corpus:ccda -- --update    also rewrite the stored expectation (expected.json) the corpus test compares
 *                                      with; review its diff like any other change of behaviour
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { readCcdaCorpus, runCcdaCorpusDocument, type CcdaCorpusEntry, type CcdaCorpusOutcome } from '../test/support/ccda-corpus.ts';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'test', 'fixtures', 'corpus', 'ccda');
const entries = readCcdaCorpus(root);
const outcomes = new Map<string, CcdaCorpusOutcome>();
let invalidResources = 0;
for (const entry of entries) {
  const run = runCcdaCorpusDocument(readFileSync(path.join(root, entry.file)));
  outcomes.set(entry.file, run.outcome);
  invalidResources += run.invalid.length;
  for (const problem of run.invalid) console.error(`${entry.file}: not valid FHIR R4: ${problem}`);
}

/** C-CDA document types by ClinicalDocument/code (LOINC), as the C-CDA document templates name them. */
const DOCUMENT_TYPES: Record<string, string> = {
  '34133-9': 'CCD / summary of episode',
  '18842-5': 'Discharge summary',
  '11490-0': 'Discharge summary (physician)',
  '57133-1': 'Referral note',
  '11488-4': 'Consultation note',
  '11506-3': 'Progress note',
  '11504-8': 'Operative note',
  '28570-0': 'Procedure note',
  '52521-2': 'Care plan',
  '81334-5': 'Personal advance care plan',
  '34117-2': 'History and physical',
  '18748-4': 'Diagnostic imaging report',
  '18761-7': 'Transfer summary',
  '51855-5': 'Patient generated note',
};

/** An unstructured document (nonXMLBody) is its own row whatever its code: none of its content is converted. */
function documentType(outcome: CcdaCorpusOutcome, entry: CcdaCorpusEntry): string {
  if (outcome.body === 'nonXMLBody') return 'Unstructured (nonXMLBody)';
  const code = outcome.documentCode ?? entry.documentCode;
  if (code === undefined) return '(no document code)';
  return `${DOCUMENT_TYPES[code] ?? 'other'} ${code}`;
}

const pct = (n: number, d: number): string => `${d === 0 ? 0 : (Math.round((1000 * n) / d) / 10).toFixed(1)}%`;
const converted = (outcome: CcdaCorpusOutcome): boolean => outcome.state === 'converted';

interface Row {
  documents: number;
  converted: number;
  refused: Map<string, number>;
}

function tally(key: (entry: CcdaCorpusEntry, outcome: CcdaCorpusOutcome) => string): Map<string, Row> {
  const rows = new Map<string, Row>();
  for (const entry of entries) {
    const outcome = outcomes.get(entry.file)!;
    const name = key(entry, outcome);
    let row = rows.get(name);
    if (row === undefined) rows.set(name, (row = { documents: 0, converted: 0, refused: new Map() }));
    row.documents++;
    if (converted(outcome)) row.converted++;
    else row.refused.set(outcome.state, (row.refused.get(outcome.state) ?? 0) + 1);
  }
  return new Map([...rows].sort(([a, x], [b, y]) => y.documents - x.documents || a.localeCompare(b)));
}

function printTally(heading: string, rows: Map<string, Row>): void {
  const width = Math.max(heading.length, ...[...rows.keys()].map((name) => name.length));
  console.log(`${heading.padEnd(width)}  documents  converted  share   refused`);
  let documents = 0;
  let done = 0;
  for (const [name, row] of rows) {
    documents += row.documents;
    done += row.converted;
    const refused = [...row.refused].map(([code, n]) => `${code.replace('ANCHORLINE_ERR_', '')} ${n}`).join(', ');
    console.log(`${name.padEnd(width)}  ${String(row.documents).padStart(9)}  ${String(row.converted).padStart(9)}  ${pct(row.converted, row.documents).padStart(6)}  ${refused}`);
  }
  console.log(`${'all'.padEnd(width)}  ${String(documents).padStart(9)}  ${String(done).padStart(9)}  ${pct(done, documents).padStart(6)}\n`);
}

printTally('document type', tally((entry, outcome) => documentType(outcome, entry)));
printTally('source', tally((entry) => entry.source));
// The corpus test's bar (98 %) is over the documents meant to be taken: negative test documents are expected to fail.
const meant = entries.filter((entry) => entry.invalid !== true);
const meantConverted = meant.filter((entry) => converted(outcomes.get(entry.file)!)).length;
console.log(`without the ${entries.length - meant.length} negative test documents: ${meantConverted} of ${meant.length} converted (${pct(meantConverted, meant.length)})\n`);

// Resources by type across the corpus, and in how many documents each type appears.
const resources = new Map<string, { resources: number; documents: number }>();
for (const outcome of outcomes.values()) {
  for (const [type, count] of Object.entries(outcome.resources)) {
    const row = resources.get(type) ?? { resources: 0, documents: 0 };
    resources.set(type, { resources: row.resources + count, documents: row.documents + 1 });
  }
}
console.log('resource type           resources  in documents');
for (const [type, row] of [...resources].sort(([a, x], [b, y]) => y.resources - x.resources || a.localeCompare(b))) {
  console.log(`${type.padEnd(22)}  ${String(row.resources).padStart(9)}  ${String(row.documents).padStart(12)}`);
}
console.log(`${'all'.padEnd(22)}  ${String([...resources.values()].reduce((sum, row) => sum + row.resources, 0)).padStart(9)}\n`);

// Issues by section, across the corpus: a section is known by its LOINC code (vendors title the same section in many
// ways; the commonest titles are shown), else by its title. Issues that name no section concern the whole document.
interface SectionRow {
  documents: Set<string>;
  titles: Map<string, number>;
  issues: Map<string, number>;
}
const sections = new Map<string, SectionRow>();
const documentLevel = new Map<string, { issues: number; documents: number }>();
for (const [file, outcome] of outcomes) {
  const inSections = new Map<string, number>();
  for (const section of outcome.sections) {
    const key = section.code ?? `(no code) ${section.title?.toLowerCase() ?? 'untitled'}`;
    let row = sections.get(key);
    if (row === undefined) sections.set(key, (row = { documents: new Set(), titles: new Map(), issues: new Map() }));
    row.documents.add(file);
    if (section.title !== undefined) row.titles.set(section.title.toLowerCase(), (row.titles.get(section.title.toLowerCase()) ?? 0) + 1);
    for (const [code, count] of Object.entries(section.issues)) {
      row.issues.set(code, (row.issues.get(code) ?? 0) + count);
      inSections.set(code, (inSections.get(code) ?? 0) + count);
    }
  }
  for (const [code, count] of Object.entries(outcome.issues)) {
    const rest = count - (inSections.get(code) ?? 0);
    if (rest <= 0) continue;
    const row = documentLevel.get(code) ?? { issues: 0, documents: 0 };
    documentLevel.set(code, { issues: row.issues + rest, documents: row.documents + 1 });
  }
}
const total = (row: SectionRow): number => [...row.issues.values()].reduce((sum, n) => sum + n, 0);
console.log('issues by section (section code, commonest titles): documents with issues there, issues by code');
for (const [key, row] of [...sections].sort(([a, x], [b, y]) => total(y) - total(x) || y.documents.size - x.documents.size || a.localeCompare(b))) {
  const titles = [...row.titles].sort(([a, x], [b, y]) => y - x || a.localeCompare(b)).slice(0, 2).map(([title]) => title.slice(0, 40));
  const label = `${key}${titles.length > 0 && !key.startsWith('(no code)') ? ` ${titles.join(' / ')}` : ''}`;
  const issues = [...row.issues].sort(([a], [b]) => a.localeCompare(b)).map(([code, n]) => `${code} ${n}`).join(', ');
  console.log(`  ${label.slice(0, 70).padEnd(70)}  ${String(row.documents.size).padStart(3)}  ${issues}`);
}
console.log('issues of the whole document (no section): issues, documents');
for (const [code, row] of [...documentLevel].sort(([a, x], [b, y]) => y.issues - x.issues || a.localeCompare(b))) {
  console.log(`  ${code.padEnd(70)}  ${String(row.issues).padStart(3)} in ${row.documents}`);
}

const refused = [...outcomes].filter(([, outcome]) => !converted(outcome));
if (refused.length > 0) {
  console.log('\nrefused documents');
  for (const [file, outcome] of refused) {
    const entry = entries.find((candidate) => candidate.file === file)!;
    console.log(`  ${file}: ${outcome.state}${entry.invalid === true ? ` (negative test: ${entry.note ?? 'broken on purpose'})` : ''}`);
  }
}
if (invalidResources > 0) console.log(`\n${invalidResources} produced resource(s) are not valid FHIR R4 (listed on stderr)`);

if (process.argv.includes('--update')) {
  const expected = Object.fromEntries([...outcomes].sort(([a], [b]) => a.localeCompare(b)));
  writeFileSync(path.join(root, 'expected.json'), JSON.stringify(expected, null, 1) + '\n');
  console.log('\nwrote expected.json');
}

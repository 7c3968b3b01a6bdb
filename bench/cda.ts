/**
 * C-CDA conversion throughput, in-process on one core, against bare @medplum/ccda on the same documents:
 *
 *   npm run bench:cda -- [--rounds 15] [--seconds 0.5]
 *
 * - bare: `convertCcdaToFhir(convertXmlToCcda(text), { ignoreUnsupportedSections: true })` on the UTF-8 decoded bytes.
 * - anchorline: convertCdaDocument on the raw bytes, as the intake and the ingest worker run it: the pre-parse
 *   guard (size, DOCTYPE, depth, decoding), normalisation, the same converter, and the completed drafts with the
 *   DocumentReference (its attachment hash included).
 * - + validation: anchorline, then every draft applied to nothing and validated against FHIR R4, the rest of the
 *   worker's CPU per document (the database aside).
 * - intake: readCdaHeader, what POST /ingest/cda runs before it stores a document (the guard, the XML parse and the
 *   header facts); the conversion itself runs once, in the worker.
 *
 * The corpus is every document in test/fixtures/cda that converts (the public samples and the crafted ones), less
 * those bare @medplum/ccda throws on (named in the output), so both convert the same documents. The variants run in
 * alternating rounds of --seconds each; rates are the median round, and the overhead (anchorline's time per
 * document over bare's, target <= 1.5) is the median of the ratios of each anchorline round to the bare round just
 * before it, so that load from other processes on the machine falls on both alike.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';

import { convertCcdaToFhir, convertXmlToCcda } from '@medplum/ccda';

import { convertCdaDocument, readCdaHeader } from '../mappers/cda/index.ts';
import { defaultHl7MappingOptions, mergeDraft, validateFhirResource } from '../mappers/index.ts';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '15' }, seconds: { type: 'string', default: '0.5' } } });
const rounds = Number(values.rounds);
const roundMs = Number(values.seconds) * 1000;

const root = path.join(import.meta.dirname, '..', 'test', 'fixtures', 'cda');
// The converter's console warnings (value types it skips) would flood the output of the bare runs.
console.warn = () => undefined;

interface Document {
  name: string;
  bytes: Buffer;
  /** As the worker has it from the inbox row. */
  source: { sha256: Buffer; size: number };
}

const corpus: Document[] = [];
const excluded: string[] = [];
for (const file of readdirSync(root).filter((f) => f.endsWith('.xml')).sort()) {
  const name = file.slice(0, -4);
  if (!existsSync(path.join(root, `${name}.expected.json`))) continue;
  const bytes = readFileSync(path.join(root, file));
  try {
    convertCcdaToFhir(convertXmlToCcda(bytes.toString('utf8')), { ignoreUnsupportedSections: true });
    corpus.push({ name, bytes, source: { sha256: createHash('sha256').update(bytes).digest(), size: bytes.length } });
  } catch {
    excluded.push(name);
  }
}

const variants: Record<string, (document: Document) => number> = {
  bare: (document) => (convertCcdaToFhir(convertXmlToCcda(document.bytes.toString('utf8')), { ignoreUnsupportedSections: true }).entry ?? []).length,
  anchorline: (document) => convertCdaDocument(document.bytes, { mapping: defaultHl7MappingOptions, source: document.source }).drafts.length,
  '+ validation': (document) => {
    let problems = 0;
    for (const draft of convertCdaDocument(document.bytes, { mapping: defaultHl7MappingOptions, source: document.source }).drafts) problems += validateFhirResource(mergeDraft(undefined, draft)).length;
    return problems;
  },
  intake: (document) => readCdaHeader(document.bytes).document.controlId.length,
};

/** Documents converted per second over one round of roundMs. */
function round(convert: (document: Document) => number): number {
  let documents = 0;
  let sink = 0;
  const started = performance.now();
  while (performance.now() - started < roundMs) {
    for (const document of corpus) sink += convert(document);
    documents += corpus.length;
  }
  if (sink < 0) console.log(sink);
  return (documents * 1000) / (performance.now() - started);
}

const median = (numbers: number[]): number => [...numbers].sort((a, b) => a - b)[Math.floor(numbers.length / 2)]!;

// Warm-up: the validator indexes the FHIR definitions once, and V8 optimises the hot paths.
for (const convert of Object.values(variants)) for (let i = 0; i < 5; i++) for (const document of corpus) convert(document);

const rates: Record<string, number[]> = Object.fromEntries(Object.keys(variants).map((name) => [name, []]));
for (let r = 0; r < rounds; r++) for (const [name, convert] of Object.entries(variants)) rates[name]!.push(round(convert));

const kilobytes = corpus.reduce((sum, document) => sum + document.bytes.length, 0) / corpus.length / 1024;
console.log(`C-CDA conversion, one core, ${corpus.length} documents (mean ${kilobytes.toFixed(0)} KiB): ${corpus.map((d) => d.name).join(', ')}`);
if (excluded.length > 0) console.log(`not compared (bare @medplum/ccda throws on them): ${excluded.join(', ')}`);
console.log(`median of ${rounds} alternating rounds of ${roundMs} ms`);
const bare = median(rates.bare!);
console.log(['variant'.padEnd(14), 'documents/s'.padStart(12), 'ms/document'.padStart(12), 'vs bare'.padStart(8)].join(' '));
for (const name of Object.keys(variants)) {
  const rate = median(rates[name]!);
  console.log([name.padEnd(14), rate.toFixed(1).padStart(12), (1000 / rate).toFixed(2).padStart(12), `${(bare / rate).toFixed(2)}x`.padStart(8)].join(' '));
}
// Each round of anchorline against the bare round just before it: load that drifts between rounds cancels out.
const overhead = median(rates.anchorline!.map((rate, r) => rates.bare![r]! / rate));
console.log(`overhead of anchorline's conversion over bare @medplum/ccda (median of per-round ratios): ${overhead.toFixed(2)}x (target <= 1.5x)`);

/**
 * Runs one C-CDA corpus document through the conversion the intake and the ingest worker run (convertCdaDocument
 * with the default mapping config), without a database; the corpus test and scripts/corpus-ccda.ts share it. The
 * outcome is what the stored expectation keeps: whether the document converted or the code it was refused with,
 * the resources it became (types and counts), the conversion's issues by code, and, for the issues that name a
 * section, which section (its LOINC code and title), so that what is not converted can be traced to where it is.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';

import { convertXmlToCcda } from '@medplum/ccda';

import { isAnchorlineError } from '../../errors/index.ts';
import type { CdaLimits } from '../../formats/cda/index.ts';
import { requiredCodeIssues } from '../../mappers/fhir-required-codes.ts';
import { convertCdaDocument, defaultHl7MappingOptions, mergeDraft, validateFhirResource, type CdaIssue } from '../../mappers/index.ts';

/** One document of test/fixtures/corpus/ccda/manifest.json (its README describes every field). */
export interface CcdaCorpusEntry {
  file: string;
  /** GitHub repository (owner/name) the file was copied from, byte for byte. */
  source: string;
  sourcePath: string;
  commit: string;
  /** SPDX id of the source repository's licence. */
  licence: string;
  vendor: string;
  documentType: string;
  documentCode?: string;
  documentCodeDisplayName?: string;
  title?: string;
  /** Published by its source as a negative test (broken on purpose, for a receiver to detect); `note` says how. */
  invalid?: boolean;
  note?: string;
}

/** The issues a conversion reports about one section of the document. */
export interface CcdaSectionIssues {
  /** The section's section/code/@code (a LOINC code in C-CDA), when it has one. */
  code?: string;
  /** The section's title as sent, whitespace collapsed. */
  title?: string;
  /** The section's XPath, when the issues give it (issues that name a section only in their text have none). */
  location?: string;
  /** Issue code -> how many of the section's issues have it. */
  issues: Record<string, number>;
}

export interface CcdaCorpusOutcome {
  /** 'converted', or the catalogue code the document was refused with. */
  state: string;
  /** ClinicalDocument/code/@code as sent (the document type), when the document could be read. */
  documentCode?: string;
  /** The kind of body: structuredBody (sections), nonXMLBody (an unstructured document), or none. */
  body?: 'structuredBody' | 'nonXMLBody' | 'none';
  /** Resource type -> how many distinct resources (by type and id) the document became. */
  resources: Record<string, number>;
  /** CdaIssue code -> how many issues of the document have it. */
  issues: Record<string, number>;
  /** The issues that name a section, by section, in document order. The rest concern the whole document. */
  sections: CcdaSectionIssues[];
}

export interface CcdaCorpusRun {
  outcome: CcdaCorpusOutcome;
  /** `Type/id: problem` for every produced resource that is not valid FHIR R4 (empty when all are). */
  invalid: string[];
  /** True when the refusal was a coded, permanent AnchorlineError (or the document converted). */
  codedRefusal: boolean;
}

/**
 * Large enough for every corpus document: the corpus measures what the conversion makes of real documents, and a
 * deployment that takes such documents raises `cda.maxBytes` and `cda.maxDepth` the same way.
 */
export const CORPUS_CDA_LIMITS: Readonly<CdaLimits> = Object.freeze({ maxBytes: 20_000_000, maxDepth: 400 });

export function readCcdaCorpus(root: string): CcdaCorpusEntry[] {
  return JSON.parse(readFileSync(path.join(root, 'manifest.json'), 'utf8')) as CcdaCorpusEntry[];
}

export function runCcdaCorpusDocument(raw: Buffer): CcdaCorpusRun {
  const parsed = readDocument(raw);
  const outcome: CcdaCorpusOutcome = {
    state: 'converted',
    ...(parsed?.documentCode !== undefined ? { documentCode: parsed.documentCode } : {}),
    ...(parsed !== undefined ? { body: parsed.body } : {}),
    resources: {},
    issues: {},
    sections: [],
  };
  const invalid: string[] = [];
  let codedRefusal = true;
  try {
    const conversion = convertCdaDocument(raw, {
      mapping: defaultHl7MappingOptions,
      limits: CORPUS_CDA_LIMITS,
      source: { sha256: createHash('sha256').update(raw).digest(), size: raw.length },
    });
    const merged = new Map<string, Record<string, unknown>>();
    for (const draft of conversion.drafts) {
      const key = `${draft.resourceType}/${draft.id}`;
      merged.set(key, mergeDraft(merged.get(key), draft));
    }
    for (const [key, resource] of merged) {
      const type = String(resource.resourceType);
      outcome.resources[type] = (outcome.resources[type] ?? 0) + 1;
      for (const problem of [...validateFhirResource(resource), ...requiredCodeIssues(resource)]) invalid.push(`${key}: ${problem}`);
    }
    outcome.resources = sortedCounts(outcome.resources);
    outcome.issues = sortedCounts(countBy(conversion.issues.map((issue) => issue.code)));
    outcome.sections = sectionIssues(conversion.issues, parsed?.sections ?? []);
  } catch (error) {
    codedRefusal = isAnchorlineError(error) && !error.retryable;
    outcome.state = isAnchorlineError(error) ? error.code : `uncoded: ${(error as Error).name}`;
  }
  return { outcome, invalid, codedRefusal };
}

// ---------------------------------------------------------------------------------------------------------------
// The document as read for the summary (independently of the conversion, so a refused document still has a type)

type Node = Record<string, unknown>;

interface SectionFacts {
  code?: string;
  title?: string;
  location: string;
}

interface DocumentFacts {
  documentCode?: string;
  body: 'structuredBody' | 'nonXMLBody' | 'none';
  sections: SectionFacts[];
}

function readDocument(raw: Buffer): DocumentFacts | undefined {
  let document: Node;
  try {
    // Read as UTF-8 without the intake's guard (formats/cda), which the conversion runs anyway and which costs more
    // than the parse: the corpus holds no DOCTYPE, and a document the guard refuses is refused whatever is read here.
    // Only the document code, the body's kind and section codes and titles are taken, all ASCII in practice.
    document = convertXmlToCcda(raw.toString('utf8').replace(/^\uFEFF/, '')) as unknown as Node;
  } catch {
    return undefined;
  }
  if (document === null || typeof document !== 'object') return undefined;
  const component = first(document.component);
  const body = first(component?.structuredBody);
  const facts: DocumentFacts = {
    body: body !== undefined ? 'structuredBody' : first(component?.nonXMLBody) !== undefined ? 'nonXMLBody' : 'none',
    sections: [],
  };
  const documentCode = first(document.code)?.['@_code'];
  if (typeof documentCode === 'string') facts.documentCode = documentCode;
  nodes(body?.component).forEach((bodyComponent, c) => {
    const sections = nodes(bodyComponent.section);
    sections.forEach((section, s) => {
      // The same XPath the conversion gives a top-level section in its issues (mappers/cda/convert.ts).
      const location = `/ClinicalDocument/component/structuredBody/component[${c + 1}]/section${sections.length > 1 ? `[${s + 1}]` : ''}`;
      const code = first(section.code)?.['@_code'];
      const title = textOf(section.title);
      facts.sections.push({ location, ...(typeof code === 'string' ? { code } : {}), ...(title ? { title } : {}) });
    });
  });
  return facts;
}

const SECTION_LOCATION = /^\/ClinicalDocument\/component\/structuredBody\/component\[\d+\]\/section(?:\[\d+\])?/;
// How the conversion names a section in an issue's text: 'Title' (code), 'Title', or (code).
const SECTION_IN_TEXT = /\bsection (?:'([^']*)'(?: \(([^)]*)\))?|\(([^)]*)\))/;

/** The issues that name a section, grouped by section: by the section's XPath, else by the name in the text. */
function sectionIssues(issues: readonly CdaIssue[], sections: readonly SectionFacts[]): CcdaSectionIssues[] {
  const bySection = new Map<string, CcdaSectionIssues>();
  for (const issue of issues) {
    const location = issue.location === undefined ? undefined : SECTION_LOCATION.exec(issue.location)?.[0];
    let facts: Omit<CcdaSectionIssues, 'issues'> | undefined = location === undefined ? undefined : (sections.find((section) => section.location === location) ?? { location });
    if (facts === undefined) {
      const named = SECTION_IN_TEXT.exec(issue.text);
      if (named === null) continue;
      const code = named[2] ?? named[3];
      facts = { ...(code !== undefined && code !== 'untitled' ? { code } : {}), ...(named[1] ? { title: named[1] } : {}) };
    }
    const key = facts.location ?? `${facts.code ?? ''}|${facts.title ?? ''}`;
    let entry = bySection.get(key);
    if (entry === undefined) bySection.set(key, (entry = { ...facts, issues: {} }));
    entry.issues[issue.code] = (entry.issues[issue.code] ?? 0) + 1;
  }
  return [...bySection.values()]
    .map((entry) => ({ ...entry, issues: sortedCounts(entry.issues) }))
    .sort((a, b) => sectionOrder(a) - sectionOrder(b) || (a.code ?? '').localeCompare(b.code ?? '') || (a.title ?? '').localeCompare(b.title ?? ''));
}

/** Document order of a section located by XPath (component, then section); sections known only by name come last. */
function sectionOrder(section: CcdaSectionIssues): number {
  const match = section.location === undefined ? null : /component\[(\d+)\]\/section(?:\[(\d+)\])?/.exec(section.location);
  return match === null ? Number.MAX_SAFE_INTEGER : Number(match[1]) * 1000 + Number(match[2] ?? 1);
}

function nodes(value: unknown): Node[] {
  return (Array.isArray(value) ? value : [value]).filter((item): item is Node => item !== null && typeof item === 'object');
}

function first(value: unknown): Node | undefined {
  return nodes(value)[0];
}

/** Text content of a parsed element (a string, or mixed content with markup), whitespace collapsed. */
function textOf(value: unknown): string | undefined {
  const parts: string[] = [];
  const walk = (item: unknown): void => {
    if (typeof item === 'string' || typeof item === 'number') parts.push(String(item));
    else if (Array.isArray(item)) item.forEach(walk);
    else if (item !== null && typeof item === 'object') for (const [key, member] of Object.entries(item)) if (!key.startsWith('@_')) walk(member);
  };
  walk(value);
  const text = parts.join(' ').replace(/\s+/g, ' ').trim();
  return text === '' ? undefined : text;
}

function countBy(values: readonly string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const value of values) counts[value] = (counts[value] ?? 0) + 1;
  return counts;
}

function sortedCounts(counts: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(counts).sort(([a], [b]) => a.localeCompare(b)));
}

/**
 * ConceptMaps from files: FHIR R4 ConceptMap JSON, and two simpler formats for integration staff (YAML and CSV),
 * all normalised to one FHIR R4 ConceptMap, which is what the store keeps and hashes.
 *
 * YAML (one source system to one target system per file):
 *
 *   url: http://hospital.example.org/fhir/ConceptMap/admit-source   # required
 *   version: "2026.1"                                               # required (here or --version)
 *   name: AdmitSourceToFhir                                         # optional; title, description also
 *   sourceSystem: urn:anchorline:local/HL70023                      # required
 *   targetSystem: http://terminology.hl7.org/CodeSystem/admit-source # required
 *   mappings:
 *     - source: "7"            # the local code (required)
 *       sourceDisplay: ER      # optional
 *       target: emd            # the standard code (required unless equivalence is unmatched)
 *       display: From accident/emergency department   # optional, the target's display
 *       equivalence: equivalent  # optional, default equivalent (FHIR R4 ConceptMapEquivalence)
 *       comment: ...           # optional
 *
 * Every scalar is read as a string (YAML's failsafe schema), so codes such as 01 or 1.10 keep their spelling.
 *
 * CSV (RFC 4180: comma separated, "quoted" fields, UTF-8, header row first): the columns
 * `source_system,source_code,target_system,target_code,target_display,equivalence` in any order; target_display and
 * equivalence may be left empty or out (default equivalent). url and version come from the command line. Rows with
 * the same source and target systems form one group, in the order they first appear.
 *
 * FHIR JSON: an R4 ConceptMap with url, version, and groups whose source is set; each target needs an equivalence.
 *
 * Normalisation is deterministic (the same file gives the same content and hash every time) so that loading a file
 * again is recognised as the same version. The normalised map's id is derived from its url (`conceptMapId`): all
 * versions of one map are one FHIR resource whose active version the API serves.
 */
import { parse as parseYaml } from 'yaml';
import { canonicalBytes, sha256Hex } from '../anchor/index.ts';
import { AnchorlineError } from '../errors/index.ts';

/** FHIR R4 ConceptMapEquivalence (http://hl7.org/fhir/concept-map-equivalence). */
export const EQUIVALENCES = ['relatedto', 'equivalent', 'equal', 'wider', 'subsumes', 'narrower', 'specializes', 'inexact', 'unmatched', 'disjoint'] as const;
export type Equivalence = (typeof EQUIVALENCES)[number];

/** Equivalences that say the target does not stand for the source: never added to a resource, never `result: true`. */
export const NON_MATCHING_EQUIVALENCES: ReadonlySet<string> = new Set(['unmatched', 'disjoint']);

export interface ConceptMapTarget {
  code?: string;
  display?: string;
  equivalence: Equivalence;
  comment?: string;
}

export interface ConceptMapElement {
  code: string;
  display?: string;
  target: ConceptMapTarget[];
}

export interface ConceptMapGroup {
  source: string;
  sourceVersion?: string;
  target?: string;
  targetVersion?: string;
  element: ConceptMapElement[];
  [other: string]: unknown;
}

/** A FHIR R4 ConceptMap as the store keeps it; members not used here are kept as loaded. */
export interface ConceptMapResource {
  resourceType: 'ConceptMap';
  id: string;
  url: string;
  version: string;
  name?: string;
  title?: string;
  status: string;
  group: ConceptMapGroup[];
  [other: string]: unknown;
}

/** One (source code, target code) pair: a row of concept_map_element. */
export interface FlatMapping {
  sourceSystem: string;
  sourceCode: string;
  /** The group's target system ('' when an unmatched entry's group names none). */
  targetSystem: string;
  /** '' for an entry that says the source has no match (unmatched, or disjoint without a code). */
  targetCode: string;
  targetDisplay: string | null;
  equivalence: Equivalence;
}

export type ConceptMapFormat = 'json' | 'yaml' | 'csv';

export interface ParseOptions {
  /** Required for CSV; for JSON and YAML, fills in a missing url or must agree with the file's. */
  url?: string;
  version?: string;
  name?: string;
}

/** The format a file name suggests: .json, .yaml/.yml, .csv. */
export function formatOfFile(fileName: string): ConceptMapFormat | undefined {
  const lower = fileName.toLowerCase();
  if (lower.endsWith('.json')) return 'json';
  if (lower.endsWith('.yaml') || lower.endsWith('.yml')) return 'yaml';
  if (lower.endsWith('.csv')) return 'csv';
  return undefined;
}

/** Parses a map file's text in `format` and normalises it. Throws ANCHORLINE_ERR_INVALID_REQUEST naming what is wrong. */
export function parseConceptMap(text: string, format: ConceptMapFormat, options: ParseOptions = {}): ConceptMapResource {
  const body = text.startsWith('\uFEFF') ? text.slice(1) : text;
  switch (format) {
    case 'json': {
      let parsed: unknown;
      try {
        parsed = JSON.parse(body);
      } catch (error) {
        throw invalid(`the file is not JSON: ${(error as Error).message}`);
      }
      return normaliseFhirConceptMap(parsed, options);
    }
    case 'yaml':
      return conceptMapFromYaml(body, options);
    case 'csv':
      return conceptMapFromCsv(body, options);
  }
}

/**
 * The FHIR id of a canonical resource (ConceptMap, CodeSystem) served here: 32 hex digits of SHA-256(url), the same
 * for every version, so that the id always reads the active (loaded) version.
 */
export function canonicalId(url: string): string {
  return sha256Hex(new TextEncoder().encode(url)).slice(0, 32);
}

/** The FHIR id of a map: canonicalId of its url. */
export const conceptMapId = canonicalId;

/** Lowercase hex SHA-256 of the RFC 8785 canonical JSON of the map: concept_map.content_sha256. */
export function conceptMapSha256(map: ConceptMapResource): string {
  return sha256Hex(canonicalBytes(map));
}

// ---------------------------------------------------------------------------------------------------------------
// FHIR JSON

export function normaliseFhirConceptMap(value: unknown, options: ParseOptions = {}): ConceptMapResource {
  if (!isObject(value) || value.resourceType !== 'ConceptMap') throw invalid('the resource is not a ConceptMap', 'resourceType');
  const url = agreed(optionalString(value.url, 'url'), options.url, 'url');
  const version = agreed(optionalString(value.version, 'version'), options.version, 'version');
  const name = optionalString(value.name, 'name') ?? options.name;
  if (!Array.isArray(value.group) || value.group.length === 0) throw invalid('the map has no group', 'group');
  const groups = value.group.map((group, g) => normaliseGroup(group, `group[${g}]`));
  const { id: _ignoredId, meta: _ignoredMeta, text: _ignoredText, ...rest } = value;
  const map: ConceptMapResource = {
    ...rest,
    resourceType: 'ConceptMap',
    id: conceptMapId(url),
    url,
    version,
    ...(name !== undefined ? { name } : {}),
    status: optionalString(value.status, 'status') ?? 'active',
    group: groups,
  };
  checkDuplicates(map);
  return map;
}

function normaliseGroup(value: unknown, at: string): ConceptMapGroup {
  if (!isObject(value)) throw invalid('a group must be an object', at);
  const source = requiredString(value.source, `${at}.source`);
  const target = optionalString(value.target, `${at}.target`);
  if (!Array.isArray(value.element) || value.element.length === 0) throw invalid('the group has no element', `${at}.element`);
  const element = value.element.map((element, e) => normaliseElement(element, `${at}.element[${e}]`, target));
  return { ...value, source, ...(target !== undefined ? { target } : {}), element };
}

function normaliseElement(value: unknown, at: string, groupTarget: string | undefined): ConceptMapElement {
  if (!isObject(value)) throw invalid('an element must be an object', at);
  const code = requiredString(value.code, `${at}.code`);
  const targets = value.target === undefined ? [] : value.target;
  if (!Array.isArray(targets)) throw invalid('target must be an array', `${at}.target`);
  const target = targets.map((t, i) => {
    const where = `${at}.target[${i}]`;
    if (!isObject(t)) throw invalid('a target must be an object', where);
    const equivalence = equivalenceOf(t.equivalence, `${where}.equivalence`, undefined);
    const targetCode = optionalString(t.code, `${where}.code`);
    if (targetCode === undefined && !NON_MATCHING_EQUIVALENCES.has(equivalence)) throw invalid(`a target with equivalence ${equivalence} needs a code`, `${where}.code`);
    if (targetCode !== undefined && groupTarget === undefined) throw invalid('the group needs a target system for its target codes', `${at}`);
    optionalString(t.display, `${where}.display`);
    return { ...t, ...(targetCode !== undefined ? { code: targetCode } : {}), equivalence } as ConceptMapTarget;
  });
  return { ...value, code, target } as ConceptMapElement;
}

// ---------------------------------------------------------------------------------------------------------------
// YAML

const YAML_KEYS = new Set(['url', 'version', 'name', 'title', 'description', 'publisher', 'sourceSystem', 'targetSystem', 'mappings']);
const YAML_MAPPING_KEYS = new Set(['source', 'sourceDisplay', 'target', 'display', 'equivalence', 'comment']);

export function conceptMapFromYaml(text: string, options: ParseOptions = {}): ConceptMapResource {
  let document: unknown;
  try {
    // failsafe: every scalar is a string, so codes keep leading zeros and versions keep trailing ones.
    document = parseYaml(text, { schema: 'failsafe', uniqueKeys: true, logLevel: 'error' });
  } catch (error) {
    throw invalid(`the file is not YAML: ${(error as Error).message.split('\n')[0]}`);
  }
  if (!isObject(document)) throw invalid('the YAML map must be a mapping with url, version, sourceSystem, targetSystem and mappings');
  for (const key of Object.keys(document)) if (!YAML_KEYS.has(key)) throw invalid(`unknown key ${key} (known: ${[...YAML_KEYS].join(', ')})`, key);
  const url = agreed(optionalString(document.url, 'url'), options.url, 'url');
  const version = agreed(optionalString(document.version, 'version'), options.version, 'version');
  const sourceSystem = requiredString(document.sourceSystem, 'sourceSystem');
  const targetSystem = requiredString(document.targetSystem, 'targetSystem');
  if (!Array.isArray(document.mappings) || document.mappings.length === 0) throw invalid('mappings must be a non-empty list', 'mappings');
  const rows = document.mappings.map((entry, i) => {
    const at = `mappings[${i}]`;
    if (!isObject(entry)) throw invalid('a mapping must be a mapping with source and target', at);
    for (const key of Object.keys(entry)) if (!YAML_MAPPING_KEYS.has(key)) throw invalid(`unknown key ${key} (known: ${[...YAML_MAPPING_KEYS].join(', ')})`, `${at}.${key}`);
    return {
      sourceSystem,
      sourceCode: requiredString(entry.source, `${at}.source`),
      sourceDisplay: optionalString(entry.sourceDisplay, `${at}.sourceDisplay`),
      targetSystem,
      targetCode: optionalString(entry.target, `${at}.target`),
      targetDisplay: optionalString(entry.display, `${at}.display`),
      equivalence: equivalenceOf(emptyAsUndefined(entry.equivalence), `${at}.equivalence`, 'equivalent'),
      comment: optionalString(entry.comment, `${at}.comment`),
      at,
    };
  });
  const name = optionalString(document.name, 'name') ?? options.name;
  return fromRows(rows, {
    url,
    version,
    ...(name !== undefined ? { name } : {}),
    ...optionalMembers(document, ['title', 'description', 'publisher']),
  });
}

// ---------------------------------------------------------------------------------------------------------------
// CSV

const CSV_REQUIRED = ['source_system', 'source_code', 'target_system', 'target_code'] as const;
const CSV_COLUMNS = new Set<string>([...CSV_REQUIRED, 'target_display', 'equivalence']);

export function conceptMapFromCsv(text: string, options: ParseOptions = {}): ConceptMapResource {
  const records = parseCsvRecords(text);
  const header = records.shift()?.fields;
  if (!header) throw invalid('the CSV file is empty');
  const columns = header.map((h) => h.trim().toLowerCase());
  for (const column of columns) if (!CSV_COLUMNS.has(column)) throw invalid(`unknown CSV column ${column} (known: ${[...CSV_COLUMNS].join(', ')})`, 'header');
  for (const column of CSV_REQUIRED) if (!columns.includes(column)) throw invalid(`the CSV header lacks ${column}`, 'header');
  if (new Set(columns).size !== columns.length) throw invalid('a CSV column is named twice', 'header');
  const url = requiredString(options.url, 'url (give it with --url)');
  const version = requiredString(options.version, 'version (give it with --version)');
  const rows = records.map(({ fields: record, line }) => {
    const at = `line ${line}`;
    if (record.length !== columns.length) throw invalid(`expected ${columns.length} fields, found ${record.length}`, at);
    const field = (name: string): string | undefined => {
      const index = columns.indexOf(name);
      const value = index < 0 ? undefined : record[index]!.trim();
      return value === '' ? undefined : value;
    };
    return {
      sourceSystem: requiredString(field('source_system'), `${at} source_system`),
      sourceCode: requiredString(field('source_code'), `${at} source_code`),
      sourceDisplay: undefined,
      targetSystem: requiredString(field('target_system'), `${at} target_system`),
      targetCode: field('target_code'),
      targetDisplay: field('target_display'),
      equivalence: equivalenceOf(field('equivalence'), `${at} equivalence`, 'equivalent'),
      comment: undefined,
      at,
    };
  });
  if (rows.length === 0) throw invalid('the CSV file has no mapping rows');
  return fromRows(rows, { url, version, ...(options.name !== undefined ? { name: options.name } : {}) });
}

/** RFC 4180 records; blank lines are skipped. Quoted fields may hold commas, quotes ("") and line breaks. */
export function parseCsv(text: string): string[][] {
  return parseCsvRecords(text).map((r) => r.fields);
}

/** The records with the line each starts on (1-based), for error messages. */
function parseCsvRecords(text: string): Array<{ fields: string[]; line: number }> {
  const body = text.startsWith('\uFEFF') ? text.slice(1) : text;
  const records: Array<{ fields: string[]; line: number }> = [];
  let record: string[] = [];
  let field = '';
  let quoted = false;
  let fieldStarted = false;
  let line = 1;
  let recordLine = 1;
  const endRecord = (): void => {
    record.push(field);
    if (!(record.length === 1 && record[0] === '' && !fieldStarted)) records.push({ fields: record, line: recordLine });
    record = [];
    field = '';
    fieldStarted = false;
  };
  for (let i = 0; i < body.length; i++) {
    const c = body[i]!;
    if (quoted) {
      if (c === '"') {
        if (body[i + 1] === '"') {
          field += '"';
          i++;
        } else {
          quoted = false;
          const next = body[i + 1];
          if (next !== undefined && next !== ',' && next !== '\n' && next !== '\r') throw invalid('a quoted field must end at a comma or line end', `line ${line}`);
        }
      } else {
        if (c === '\n') line++;
        field += c;
      }
      continue;
    }
    if (c === '"') {
      if (field !== '') throw invalid('a quote inside an unquoted field', `line ${line}`);
      quoted = true;
      fieldStarted = true;
    } else if (c === ',') {
      record.push(field);
      field = '';
      fieldStarted = true;
    } else if (c === '\r' || c === '\n') {
      if (c === '\r' && body[i + 1] === '\n') i++;
      endRecord();
      line++;
      recordLine = line;
    } else {
      field += c;
      fieldStarted = true;
    }
  }
  if (quoted) throw invalid('a quoted field is not closed', `line ${line}`);
  if (field !== '' || record.length > 0 || fieldStarted) endRecord();
  return records;
}

// ---------------------------------------------------------------------------------------------------------------
// Shared

interface Row {
  sourceSystem: string;
  sourceCode: string;
  sourceDisplay: string | undefined;
  targetSystem: string;
  targetCode: string | undefined;
  targetDisplay: string | undefined;
  equivalence: Equivalence;
  comment: string | undefined;
  at: string;
}

/** Groups rows by (source system, target system) and elements by source code, in the order they first appear. */
function fromRows(rows: Row[], header: { url: string; version: string; name?: string; [member: string]: unknown }): ConceptMapResource {
  const groups = new Map<string, ConceptMapGroup>();
  const elements = new Map<string, ConceptMapElement>();
  for (const row of rows) {
    if (row.targetCode === undefined && !NON_MATCHING_EQUIVALENCES.has(row.equivalence)) throw invalid(`a mapping with equivalence ${row.equivalence} needs a target code`, row.at);
    const groupKey = `${row.sourceSystem}\u0000${row.targetSystem}`;
    let group = groups.get(groupKey);
    if (!group) groups.set(groupKey, (group = { source: row.sourceSystem, target: row.targetSystem, element: [] }));
    const elementKey = `${groupKey}\u0000${row.sourceCode}`;
    let element = elements.get(elementKey);
    if (!element) {
      elements.set(elementKey, (element = { code: row.sourceCode, target: [] }));
      group.element.push(element);
    }
    if (row.sourceDisplay !== undefined && element.display === undefined) element.display = row.sourceDisplay;
    element.target.push({
      ...(row.targetCode !== undefined ? { code: row.targetCode } : {}),
      ...(row.targetDisplay !== undefined ? { display: row.targetDisplay } : {}),
      equivalence: row.equivalence,
      ...(row.comment !== undefined ? { comment: row.comment } : {}),
    });
  }
  const map: ConceptMapResource = {
    resourceType: 'ConceptMap',
    id: conceptMapId(header.url),
    ...header,
    status: 'active',
    group: [...groups.values()],
  };
  checkDuplicates(map);
  return map;
}

/** The map's (source code, target code) pairs, as concept_map_element holds them. */
export function flattenConceptMap(map: ConceptMapResource): FlatMapping[] {
  const flat: FlatMapping[] = [];
  for (const group of map.group) {
    for (const element of group.element) {
      for (const target of element.target) {
        flat.push({
          sourceSystem: group.source,
          sourceCode: element.code,
          targetSystem: group.target ?? '',
          targetCode: target.code ?? '',
          targetDisplay: target.display ?? null,
          equivalence: target.equivalence,
        });
      }
    }
  }
  return flat;
}

/** The same (source, target) pair twice would be two answers to one question: refuse the map. */
function checkDuplicates(map: ConceptMapResource): void {
  const seen = new Set<string>();
  for (const m of flattenConceptMap(map)) {
    const key = [m.sourceSystem, m.sourceCode, m.targetSystem, m.targetCode].join('\u0000');
    if (seen.has(key)) throw invalid(`source code ${m.sourceCode} of ${m.sourceSystem} is mapped to ${m.targetCode === '' ? 'no code' : `target code ${m.targetCode}`} twice`);
    seen.add(key);
  }
}

function equivalenceOf(value: unknown, at: string, fallback: Equivalence | undefined): Equivalence {
  if (value === undefined && fallback !== undefined) return fallback;
  if (typeof value !== 'string' || !(EQUIVALENCES as readonly string[]).includes(value)) {
    throw invalid(`equivalence must be one of ${EQUIVALENCES.join(', ')}`, at);
  }
  return value as Equivalence;
}

function agreed(fromFile: string | undefined, fromOptions: string | undefined, name: string): string {
  if (fromFile !== undefined && fromOptions !== undefined && fromFile !== fromOptions) {
    throw invalid(`the file's ${name} differs from the one given on the command line`, name);
  }
  const value = fromFile ?? fromOptions;
  if (value === undefined) throw invalid(`the map has no ${name}`, name);
  return value;
}

function optionalMembers(document: Record<string, unknown>, names: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of names) {
    const value = optionalString(document[name], name);
    if (value !== undefined) out[name] = value;
  }
  return out;
}

function emptyAsUndefined(value: unknown): unknown {
  return value === '' ? undefined : value;
}

function requiredString(value: unknown, at: string): string {
  if (typeof value !== 'string' || value.trim() === '') throw invalid(`${at} is required`, at);
  return value.trim();
}

function optionalString(value: unknown, at: string): string | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value !== 'string') throw invalid(`${at} must be a string`, at);
  return value.trim() === '' ? undefined : value.trim();
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function invalid(detail: string, location?: string): AnchorlineError {
  const where = location && !detail.includes(location) ? ` (at ${location})` : '';
  return new AnchorlineError('ANCHORLINE_ERR_INVALID_REQUEST', `ConceptMap: ${detail}${where}`, location ? { location } : undefined);
}

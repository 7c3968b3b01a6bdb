/**
 * De-identification of one FHIR R4 resource under a project's configuration (config.ts) and secret (keys.ts).
 *
 * The resource is walked element by element. Each element gets a data type, read from its name and shape (the
 * engine's resources are R4 JSON; no StructureDefinitions are loaded, so that this stays pure and fast); the first
 * rule whose path matches the element decides (config.ts). After the rules, two guards run whatever the
 * configuration says: extensions not listed in `keepExtensions` are removed, and any string that still has the
 * form of a Korean resident registration number has it replaced (an identifier holding one is removed whole).
 *
 * Numbers may arrive as lossless-json LosslessNumber objects (FHIR decimals keep their precision, see
 * ARCHITECTURE.md); they are primitives here and are kept as they are unless a rule changes them.
 */
import { AnchorlineError } from '../../errors/index.ts';
import type { DeidConfig, DeidRule } from './config.ts';
import { generaliseDate, isFhirDate, shiftDate, yearsBetween } from './dates.ts';
import { dateOffsetDays, encryptValue, keyedFraction, pseudonymOf, pseudonymousId } from './keys.ts';
import { RESIDENT_NUMBER_PATTERN, namesOf, scrubText } from './text.ts';
import type { DeidApplied, DeidContext, DeidResult } from './types.ts';

/** The system every pseudonymised identifier gets: the original system is part of the pseudonym, not shown. */
export const PSEUDONYM_IDENTIFIER_SYSTEM = 'urn:anchorline:research:pseudonym';

/** Shortest project secret accepted, in bytes (HMAC-SHA-256's own key size). */
export const MIN_PROJECT_SECRET_BYTES = 32;

interface Frame {
  name: string;
  type: string | undefined;
}

type Compiled =
  | { kind: 'element'; root: string; segments: string[]; rule: DeidRule; label: string }
  | { kind: 'type'; type: string; segments: string[]; rule: DeidRule; label: string }
  | { kind: 'name'; element: string; segments: string[]; rule: DeidRule; label: string };

const compiledRules = new WeakMap<DeidConfig, Compiled[]>();

function compile(config: DeidConfig): Compiled[] {
  let compiled = compiledRules.get(config);
  if (compiled) return compiled;
  compiled = config.rules.map((rule): Compiled => {
    const label = `${rule.method} ${rule.path}`;
    const fn = /^nodesBy(Type|Name)\('([A-Za-z0-9]+)'\)(.*)$/.exec(rule.path);
    if (fn) {
      const segments = fn[3] ? fn[3].slice(1).split('.') : [];
      return fn[1] === 'Type' ? { kind: 'type', type: fn[2]!, segments, rule, label } : { kind: 'name', element: fn[2]!, segments, rule, label };
    }
    const [root, ...segments] = rule.path.split('.');
    return { kind: 'element', root: root!, segments, rule, label };
  });
  compiledRules.set(config, compiled);
  return compiled;
}

/** Type names a choice element's name ends with (valueString, effectivePeriod, onsetAge, ...). */
const CHOICE_TYPES = new Set([
  'String', 'Boolean', 'Integer', 'Decimal', 'Date', 'DateTime', 'Time', 'Instant', 'Uri', 'Url', 'Canonical', 'Code', 'Id', 'Oid', 'Uuid', 'Markdown',
  'Base64Binary', 'PositiveInt', 'UnsignedInt', 'Quantity', 'CodeableConcept', 'Coding', 'Range', 'Ratio', 'SampledData', 'Period', 'Attachment',
  'Reference', 'Age', 'Duration', 'Count', 'Distance', 'Money', 'Identifier', 'Address', 'HumanName', 'ContactPoint', 'Annotation', 'Timing',
  'Signature', 'Dosage', 'Expression', 'ContactDetail', 'Meta',
]);

function nameMatches(name: string, segment: string): boolean {
  if (name === segment) return true;
  return name.startsWith(segment) && CHOICE_TYPES.has(name.slice(segment.length));
}

function segmentsMatch(frames: readonly Frame[], from: number, segments: readonly string[]): boolean {
  if (frames.length - from !== segments.length) return false;
  return segments.every((segment, i) => nameMatches(frames[from + i]!.name, segment));
}

function ruleMatches(rule: Compiled, resourceType: string, frames: readonly Frame[]): boolean {
  switch (rule.kind) {
    case 'element':
      return (rule.root === 'Resource' || rule.root === resourceType) && segmentsMatch(frames, 0, rule.segments);
    case 'type':
      for (let i = frames.length - 1 - rule.segments.length; i >= 0; i--) {
        if (frames[i]!.type === rule.type && segmentsMatch(frames, i + 1, rule.segments)) return true;
      }
      return false;
    case 'name':
      for (let i = frames.length - 1 - rule.segments.length; i >= 0; i--) {
        if (frames[i]!.name === rule.element && segmentsMatch(frames, i + 1, rule.segments)) return true;
      }
      return false;
  }
}

// ---- data types, from an element's name and shape ----

const DATE_ELEMENT = /^(date|dateTime|instant|issued|recorded|created|start|end|authoredOn|lastUpdated|birthDate|sent|received|timestamp|started|dateAsserted|dateWritten|lastOccurrence|whenHandedOver|whenPrepared|entered)$|(Date|DateTime|Instant)$/;
const INSTANT_ELEMENT = /^(issued|lastUpdated|recorded|timestamp)$|Instant$/;
/** Primitive elements that hold codes, URIs or ids, not text for people: never typed `string`. */
const NOT_TEXT = new Set(['id', 'url', 'system', 'reference', 'resourceType', 'contentType', 'language', 'profile', 'version', 'code', 'status', 'div', 'use', 'gender']);
const PERSON_TYPES = new Set(['Patient', 'Practitioner', 'RelatedPerson', 'Person']);

const isObject = (value: unknown): value is Record<string, unknown> => value !== null && typeof value === 'object' && !Array.isArray(value);
const isLosslessNumber = (value: unknown): boolean => isObject(value) && (value as { isLosslessNumber?: unknown }).isLosslessNumber === true;
const isNumberLike = (value: unknown): boolean => typeof value === 'number' || isLosslessNumber(value);
const numberOf = (value: unknown): number => (typeof value === 'number' ? value : Number(String((value as { value: string }).value)));

function typeOf(name: string, value: unknown, frames: readonly Frame[], resourceType: string): string | undefined {
  const parentType = frames[frames.length - 1]?.type;
  if (typeof value === 'string') {
    if (DATE_ELEMENT.test(name) && isFhirDate(value)) return INSTANT_ELEMENT.test(name) ? 'instant' : value.includes('T') ? 'dateTime' : 'date';
    if (name === 'data' && (parentType === 'Attachment' || resourceType === 'Binary')) return 'base64Binary';
    if (name === 'div' && parentType === 'Narrative') return 'xhtml';
    return NOT_TEXT.has(name) ? undefined : 'string';
  }
  if (!isObject(value) || isLosslessNumber(value)) return undefined;
  if (name === 'text' && frames.length === 0 && typeof value.div === 'string') return 'Narrative';
  if (name === 'extension' || name === 'modifierExtension') return 'Extension';
  if ('family' in value || 'given' in value || (name === 'name' && (PERSON_TYPES.has(resourceType) || parentType === undefined && frames.some((f) => f.name === 'contact')))) {
    if (typeof value.name !== 'string') return 'HumanName';
  }
  if (name === 'telecom' || name === 'valueContactPoint') return 'ContactPoint';
  if (name === 'address' || name === 'valueAddress') return 'Address';
  if (name === 'identifier' || name.endsWith('Identifier')) return 'Identifier';
  if (name === 'note' || name === 'valueAnnotation') return 'Annotation';
  if (typeof value.reference === 'string' || name.endsWith('Reference') || (typeof value.display === 'string' && Object.keys(value).every((k) => ['display', 'type', 'identifier', 'extension', 'id'].includes(k)))) return 'Reference';
  if (name === 'photo' || name === 'attachment' || name === 'presentedForm' || name === 'valueAttachment' || 'contentType' in value || typeof value.data === 'string') return 'Attachment';
  if ((name === 'age' || name.endsWith('Age')) && 'value' in value) return 'Age';
  if (Array.isArray(value.coding)) return 'CodeableConcept';
  if (name === 'coding' || name === 'valueCoding' || name === 'class' && resourceType === 'Encounter' || (typeof value.code === 'string' && 'system' in value && !('value' in value))) return 'Coding';
  if ('value' in value && isNumberLike(value.value)) return 'Quantity';
  const keys = Object.keys(value);
  if (keys.length > 0 && keys.every((k) => k === 'start' || k === 'end' || k === 'id' || k === 'extension')) return 'Period';
  return undefined;
}

// ---- the walk ----

const DROP = Symbol('drop');
type Out = unknown | typeof DROP;

interface Walk {
  config: DeidConfig;
  rules: Compiled[];
  secret: Uint8Array;
  resourceType: string;
  /** The resource's id as sent (for `Resource.id` and perturbation keys). */
  resourceId: string;
  offsetDays: number;
  names: string[];
  asOf: string;
  applied: DeidApplied[];
  /** Set when the resource has to be dropped whole. */
  dropReason?: string;
  /** The country of the Address being walked (for postal code generalisation), upper-cased; KR for Korea. */
  currentCountry?: string;
}

/**
 * De-identifies one resource. Pure: the same resource, configuration and context give the same output. Throws
 * ANCHORLINE_ERR_CONFIG_INVALID for a project secret shorter than MIN_PROJECT_SECRET_BYTES.
 */
export function deidentifyResource(resource: Record<string, unknown>, config: DeidConfig, context: DeidContext): DeidResult {
  if (!(context.projectSecret instanceof Uint8Array) || context.projectSecret.length < MIN_PROJECT_SECRET_BYTES) {
    throw new AnchorlineError('ANCHORLINE_ERR_CONFIG_INVALID', `the project secret must be at least ${MIN_PROJECT_SECRET_BYTES} bytes`);
  }
  const resourceType = typeof resource.resourceType === 'string' ? resource.resourceType : '';
  const applied: DeidApplied[] = [];
  if (resourceType === '' || config.dropResourceTypes.includes(resourceType)) {
    applied.push({ path: resourceType || 'Resource', rule: 'drop resource type' });
    return { applied };
  }
  const resourceId = typeof resource.id === 'string' ? resource.id : '';
  const scope = config.dateShiftScope === 'patient' ? (patientOf(resource, context) ?? `${resourceType}/${resourceId}`) : `${resourceType}/${resourceId}`;
  const walk: Walk = {
    config,
    rules: compile(config),
    secret: context.projectSecret,
    resourceType,
    resourceId,
    offsetDays: dateOffsetDays(context.projectSecret, scope, config.dateShiftRangeDays),
    names: [...(context.knownNames ?? []), ...collectNames(resource)],
    asOf: context.asOf ?? deathOf(resource) ?? new Date().toISOString().slice(0, 10),
    applied,
  };
  const out = visitObject(walk, resource, [], resourceType, walk.rules.length, false);
  if (walk.dropReason !== undefined || out === DROP) {
    applied.push({ path: resourceType, rule: walk.dropReason ?? 'drop empty resource' });
    return { applied };
  }
  const result: Record<string, unknown> = { resourceType, ...(out as Record<string, unknown>) };
  guardResidentNumbers(result, resourceType, applied);
  return { resource: result, applied };
}

/**
 * The children of a complex element. `floor`: only rules before this index apply (inside a `redact`); `redacting`:
 * children no rule matches are removed rather than kept.
 */
function visitObject(walk: Walk, value: Record<string, unknown>, frames: Frame[], path: string, floor: number, redacting: boolean): Out {
  const out: Record<string, unknown> = {};
  for (const [key, child] of Object.entries(value)) {
    if (frames.length === 0 && key === 'resourceType') continue;
    const childPath = `${path}.${key}`;
    if (key.startsWith('_')) {
      walk.applied.push({ path: childPath, rule: 'primitive extension removed' });
      continue;
    }
    if (key === 'extension' || key === 'modifierExtension') {
      const kept = keptExtensions(walk, key, child, childPath);
      if (kept.length === 0) continue;
      const visited = visitElement(walk, key, kept, frames, childPath, floor, redacting);
      if (visited !== DROP) out[key] = visited;
      continue;
    }
    if (key === 'contained' && frames.length === 0 && Array.isArray(child)) {
      const contained = child.flatMap((item, i) => (isObject(item) ? [visitContained(walk, item, `${childPath}[${i}]`)] : [])).filter((item) => item !== DROP);
      if (contained.length > 0) out[key] = contained;
      continue;
    }
    const visited = visitElement(walk, key, child, frames, childPath, floor, redacting);
    if (visited !== DROP) out[key] = visited;
  }
  return Object.keys(out).length === 0 ? DROP : out;
}

function visitElement(walk: Walk, name: string, value: unknown, frames: Frame[], path: string, floor: number, redacting: boolean): Out {
  if (Array.isArray(value)) {
    const items = value.map((item, i) => visitNode(walk, name, item, frames, `${path}[${i}]`, floor, redacting)).filter((item) => item !== DROP);
    return items.length === 0 ? DROP : items;
  }
  return visitNode(walk, name, value, frames, path, floor, redacting);
}

function visitNode(walk: Walk, name: string, value: unknown, parentFrames: Frame[], path: string, floor: number, redacting: boolean): Out {
  if (value === null || value === undefined) return DROP;
  const frames = [...parentFrames, { name, type: typeOf(name, value, parentFrames, walk.resourceType) }];
  if (frames[frames.length - 1]!.type !== 'Address' || !isObject(value)) return decide(walk, value, frames, path, floor, redacting);
  const outer = walk.currentCountry;
  walk.currentCountry = countryOf(value);
  try {
    return decide(walk, value, frames, path, floor, redacting);
  } finally {
    walk.currentCountry = outer;
  }
}

function decide(walk: Walk, value: unknown, frames: Frame[], path: string, floor: number, redacting: boolean): Out {
  let index = -1;
  for (let i = 0; i < floor; i++) {
    if (ruleMatches(walk.rules[i]!, walk.resourceType, frames)) {
      index = i;
      break;
    }
  }
  if (index < 0) {
    if (isObject(value) && !isLosslessNumber(value)) return visitObject(walk, value, frames, path, floor, redacting);
    if (redacting) return DROP;
    return value;
  }
  const compiled = walk.rules[index]!;
  const out = apply(walk, compiled, index, value, frames, path, floor);
  if (out !== value || compiled.rule.method === 'redact') walk.applied.push({ path, rule: compiled.label });
  return out;
}

function apply(walk: Walk, compiled: Compiled, index: number, value: unknown, frames: Frame[], path: string, floor: number): Out {
  const rule = compiled.rule;
  const frame = frames[frames.length - 1]!;
  const complex = isObject(value) && !isLosslessNumber(value);
  switch (rule.method) {
    case 'keep':
      return value;
    case 'redact':
      return complex ? visitObject(walk, value, frames, path, index, true) : DROP;
    case 'dateShift':
      if (typeof value === 'string') return shiftDate(value, walk.offsetDays) ?? DROP;
      return complex ? visitObject(walk, value, frames, path, floor, false) : DROP;
    case 'cryptoHash':
      return cryptoHash(walk, value, frames);
    case 'encrypt':
      return typeof value === 'string' ? encryptValue(walk.secret, value) : DROP;
    case 'substitute':
      return rule.replaceWith;
    case 'scrubText':
      if (typeof value !== 'string') return complex ? visitObject(walk, value, frames, path, floor, false) : value;
      return scrubText(value, { names: walk.names, shiftDays: walk.offsetDays }).text;
    case 'perturb':
      return perturb(walk, rule, value, path);
    case 'generalize':
      return generalize(walk, rule, value, frame);
  }
}

// ---- methods ----

const REFERENCE = /^(?:.*\/)?([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/[A-Za-z0-9\-.]{1,64})?$/;

function cryptoHash(walk: Walk, value: unknown, frames: Frame[]): Out {
  const frame = frames[frames.length - 1]!;
  if (frame.type === 'Identifier' && isObject(value)) {
    const system = typeof value.system === 'string' ? value.system : '';
    if (typeof value.value !== 'string' || walk.config.dropIdentifierSystems.includes(system) || RESIDENT_NUMBER_PATTERN.test(value.value)) return DROP;
    const out: Record<string, unknown> = {};
    if (typeof value.use === 'string') out.use = value.use;
    if (isObject(value.type)) out.type = value.type;
    out.system = PSEUDONYM_IDENTIFIER_SYSTEM;
    out.value = pseudonymOf(walk.secret, 'identifier', `${system}|${value.value}`);
    return out;
  }
  if (typeof value !== 'string') return DROP;
  if (frames.length === 1 && frame.name === 'id') return pseudonymousId(walk.secret, walk.resourceType, value);
  if (frame.name === 'reference') return pseudonymousReference(walk.secret, value) ?? DROP;
  return pseudonymOf(walk.secret, 'value', value);
}

/**
 * The pseudonymous form of a reference: `Type/<pseudonymous id>` for a relative or absolute one (the server base
 * and the version are dropped: both identify the source), a pseudonymous urn:uuid for a urn:uuid, and a contained
 * reference (`#x`) as it is. Anything else is not a reference this engine can keep consistent: undefined.
 */
export function pseudonymousReference(secret: Uint8Array, reference: string): string | undefined {
  if (reference.startsWith('#')) return reference;
  const match = REFERENCE.exec(reference);
  if (match) return `${match[1]}/${pseudonymousId(secret, match[1]!, match[2]!)}`;
  if (/^urn:uuid:[0-9a-f-]{36}$/i.test(reference)) {
    const h = pseudonymOf(secret, 'urn-uuid', reference.toLowerCase());
    return `urn:uuid:${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-8${h.slice(17, 20)}-${h.slice(20, 32)}`;
  }
  return undefined;
}

function perturb(walk: Walk, rule: Extract<DeidRule, { method: 'perturb' }>, value: unknown, path: string): Out {
  const move = (n: number): number => {
    const fraction = keyedFraction(walk.secret, 'perturb', `${walk.resourceType}/${walk.resourceId}|${path}`) * 2 - 1;
    const moved = n + fraction * (rule.rangeType === 'proportional' ? Math.abs(n) * rule.span : rule.span);
    const scale = 10 ** rule.roundTo;
    return Math.round(moved * scale) / scale;
  };
  if (isNumberLike(value)) return move(numberOf(value));
  if (isObject(value) && isNumberLike(value.value)) return { ...value, value: move(numberOf(value.value)) };
  return DROP;
}

const AGE_IN_YEARS = new Set(['a', 'yr', 'yrs', 'year', 'years', '세', '살']);

function generalize(walk: Walk, rule: Extract<DeidRule, { method: 'generalize' }>, value: unknown, frame: Frame): Out {
  if (typeof value === 'string' && isFhirDate(value) && (frame.type === 'date' || frame.type === 'dateTime' || frame.type === 'instant')) {
    if (rule.maxAgeYears !== undefined) {
      const age = yearsBetween(value, walk.asOf);
      // Safe Harbor: an age over 89, and any date element that shows it (the birth year), becomes "90 or older".
      if (age !== undefined && age > rule.maxAgeYears) return String(Number(walk.asOf.slice(0, 4)) - (rule.maxAgeYears + 1));
    }
    return rule.precision ? (generaliseDate(value, rule.precision) ?? DROP) : value;
  }
  if (frame.type === 'Age' && isObject(value) && rule.maxAgeYears !== undefined) {
    const unit = String(value.code ?? value.unit ?? 'a');
    if (isNumberLike(value.value) && AGE_IN_YEARS.has(unit) && numberOf(value.value) > rule.maxAgeYears) {
      return { ...value, value: rule.maxAgeYears + 1, comparator: '>=' };
    }
    return value;
  }
  if (typeof value === 'string' && frame.name === 'postalCode') {
    const country = walk.currentCountry;
    const digits = (country !== undefined ? (rule.digitsByCountry?.[country] ?? rule.digitsByCountry?.[country === 'KR' ? 'KOR' : country]) : undefined) ?? rule.digits;
    if (digits === undefined) return value;
    const compact = value.replace(/[\s-]/g, '');
    const prefix = compact.slice(0, digits);
    if (digits === 0 || prefix.length < digits) return DROP;
    return rule.restrictedPrefixes?.some((restricted) => prefix.startsWith(restricted) || restricted.startsWith(prefix)) ? '0'.repeat(digits) : prefix;
  }
  return DROP;
}

const KOREA = new Set(['KR', 'KOR', 'KOREA', 'SOUTH KOREA', 'REPUBLIC OF KOREA', '대한민국', '한국']);

/**
 * An address's country as configurations name it: upper-cased as written, KR for any spelling of Korea, and KR when
 * no country is written but the address is in Hangul (the engine's Korean senders often leave the country out).
 */
function countryOf(address: Record<string, unknown>): string | undefined {
  const written = typeof address.country === 'string' ? address.country.trim().toUpperCase() : '';
  if (KOREA.has(written)) return 'KR';
  if (written !== '') return written;
  const text = [address.state, address.city, address.district, address.text, ...(Array.isArray(address.line) ? address.line : [])].filter((part) => typeof part === 'string').join(' ');
  return /[가-힣]/.test(text) ? 'KR' : undefined;
}

// ---- guards ----

function keptExtensions(walk: Walk, key: string, value: unknown, path: string): unknown[] {
  const list = Array.isArray(value) ? value : [value];
  const kept: unknown[] = [];
  list.forEach((extension, i) => {
    const url = isObject(extension) && typeof extension.url === 'string' ? extension.url : '';
    if (walk.config.keepExtensions.includes(url)) {
      kept.push(extension);
      return;
    }
    walk.applied.push({ path: `${path}[${i}]`, rule: 'unknown extension removed' });
    if (key === 'modifierExtension') walk.dropReason = 'unknown modifier extension';
  });
  return kept;
}

function visitContained(walk: Walk, resource: Record<string, unknown>, path: string): Out {
  const type = typeof resource.resourceType === 'string' ? resource.resourceType : '';
  if (type === '' || walk.config.dropResourceTypes.includes(type)) {
    walk.applied.push({ path, rule: 'drop resource type' });
    return DROP;
  }
  // A contained resource's id is local to its container (`#id` references): it is kept, and its dates move with
  // the container's patient.
  const outer = { resourceType: walk.resourceType, resourceId: walk.resourceId };
  walk.resourceType = type;
  walk.resourceId = typeof resource.id === 'string' ? resource.id : '';
  const { id, ...rest } = resource;
  const out = visitObject(walk, rest, [], path, walk.rules.length, false);
  walk.resourceType = outer.resourceType;
  walk.resourceId = outer.resourceId;
  if (out === DROP) return DROP;
  return { resourceType: type, ...(typeof id === 'string' ? { id } : {}), ...(out as Record<string, unknown>) };
}

/**
 * Whatever the rules kept: a string of the form of a 주민등록번호 has it replaced, and an Identifier holding one
 * is removed whole (its system and type would say what was there).
 */
function guardResidentNumbers(value: Record<string, unknown> | unknown[], path: string, applied: DeidApplied[]): void {
  const entries: Array<[string | number, unknown]> = Array.isArray(value) ? value.map((v, i) => [i, v]) : Object.entries(value);
  for (let e = entries.length - 1; e >= 0; e--) {
    const [key, child] = entries[e]!;
    const childPath = typeof key === 'number' ? `${path}[${key}]` : `${path}.${key}`;
    if (typeof child === 'string') {
      if (!RESIDENT_NUMBER_PATTERN.test(child)) continue;
      const cleaned = scrubText(child, { names: [] }).text;
      if (Array.isArray(value)) value[key as number] = cleaned;
      else value[key as string] = cleaned;
      applied.push({ path: childPath, rule: 'resident-number guard' });
    } else if (Array.isArray(child) || (isObject(child) && !isLosslessNumber(child))) {
      if (Array.isArray(value) && isObject(child) && typeof child.value === 'string' && RESIDENT_NUMBER_PATTERN.test(child.value)) {
        value.splice(key as number, 1);
        applied.push({ path: childPath, rule: 'resident-number guard' });
        continue;
      }
      guardResidentNumbers(child as Record<string, unknown> | unknown[], childPath, applied);
    }
  }
}

// ---- what the walk needs to know of the resource ----

const PATIENT_REFERENCE = /(?:^|\/)Patient\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/[A-Za-z0-9\-.]{1,64})?$/;
const PATIENT_ELEMENTS = ['subject', 'patient', 'beneficiary', 'for', 'individual'];

/** `Patient/<id>` of the patient a resource is about (its own id for a Patient), as the source names it. */
export function patientOf(resource: Record<string, unknown>, context: Pick<DeidContext, 'patient'> = {}): string | undefined {
  if (context.patient !== undefined) {
    const match = PATIENT_REFERENCE.exec(context.patient);
    if (match) return `Patient/${match[1]}`;
  }
  if (resource.resourceType === 'Patient' && typeof resource.id === 'string') return `Patient/${resource.id}`;
  for (const element of PATIENT_ELEMENTS) {
    const candidates = Array.isArray(resource[element]) ? (resource[element] as unknown[]) : [resource[element]];
    for (const candidate of candidates) {
      const reference = isObject(candidate) ? candidate.reference : undefined;
      const match = typeof reference === 'string' ? PATIENT_REFERENCE.exec(reference) : null;
      if (match) return `Patient/${match[1]}`;
    }
  }
  return undefined;
}

function deathOf(resource: Record<string, unknown>): string | undefined {
  return typeof resource.deceasedDateTime === 'string' && isFhirDate(resource.deceasedDateTime) ? resource.deceasedDateTime.slice(0, 10) : undefined;
}

/** The names the resource itself holds (HumanName values anywhere in it), to remove from its kept free text. */
function collectNames(value: unknown, depth = 0): string[] {
  if (depth > 12) return [];
  if (Array.isArray(value)) return value.flatMap((item) => collectNames(item, depth + 1));
  if (!isObject(value)) return [];
  const own = 'family' in value || 'given' in value ? namesOf(value) : [];
  return [...own, ...Object.values(value).flatMap((child) => collectNames(child, depth + 1))];
}

/**
 * Mapping configs: how the messages of one source system are mapped, in a file that integration staff read, test and
 * version. One YAML (or JSON) file per source system, matched by the sending application (MSH-3) and/or facility
 * (MSH-4) of each message; the config named 'default' applies when none matches.
 *
 *   name: seoul-his                     # required; the file's name without extension (seoul-his.yaml)
 *   description: Seoul General HIS, ADT feed
 *   match:                              # required except in 'default'; one value or a list each
 *     sendingApplication: HIS           # MSH-3 as sent, or its first component (namespace id)
 *     sendingFacility: [SEOULGEN, SEOULGEN2]
 *   timeZone: Asia/Seoul                # IANA zone of times sent without an offset
 *   identifierSystems:                  # assigning authority (CX-4.1) -> identifier system URI
 *     SEOULGEN: https://fhir.seoulgen.example/sid/mrn
 *   localCodeSystemBase: https://fhir.seoulgen.example/CodeSystem
 *   codeSystems:                        # CE-3/CWE-3 coding system name -> code system URI
 *     HL70002: http://terminology.hl7.org/CodeSystem/v2-0002
 *   fields:                             # FHIR element -> the HL7 field(s) that feed it, where senders differ
 *     Patient.key: PID-2
 *     Patient.identifier: [PID-2, PID-3]
 *   valueMaps:                          # HL7 table -> value as sent -> the value the mapper reads instead
 *     HL70001: { '1': M, '2': F }
 *   defaultAuthority: SEOULGEN          # authority of identifiers without CX-4 when MSH-4 and MSH-3 are empty
 *   fatalIssues: [ANCHORLINE_ISSUE_INVALID_VALUE]   # issue codes that fail this source's messages
 *   zSegments:                          # Z segment -> rules: a field (or 'ZPI-2.1' component) and where it goes
 *     ZPI:
 *       - field: 2
 *         to: Patient.extension         # or Encounter.extension, Patient.identifier, Encounter.identifier, Observation
 *         url: https://fhir.seoulgen.example/StructureDefinition/vip
 *         type: boolean                 # string (default), code, boolean, integer, decimal, date, dateTime, Quantity,
 *                                       # Coding, CodeableConcept, Identifier (what the target takes)
 *       - field: 5
 *         to: Observation               # one per ZPI sent, with this code
 *         code: { system: 'http://loinc.org', code: 72166-2, display: Tobacco smoking status }
 *         type: CodeableConcept
 *
 * The engine's `mapping` settings (config/schema.ts) are the base of every config: a file's timeZone and
 * localCodeSystemBase replace the engine's, its identifierSystems entries are added to the engine's (and win), and
 * whatever a file leaves out is the engine's. Without a 'default' file, the built-in default is the engine's settings
 * as they are. `fields` and `valueMaps` describe one sender's messages and have no engine-wide base: what a file
 * leaves out is the built-in mapping (each element's default source, each code read as sent).
 *
 * A config's version is the lowercase hex SHA-256 of the RFC 8785 canonical JSON of its resolved content (the file
 * validated, lists sorted, the base filled in): what provenance leaves record as mappingSha256 and mapping_config
 * stores. Reordering keys, reformatting or adding comments does not change it; changing what the mapping does, or
 * the description, does. The content holds `fields` only for the elements whose sources differ from their defaults,
 * `valueMaps` only for tables with entries, and `zSegments` only for segments with rules (each rule's field written
 * 'ZPI-2' and its type filled in), so a config that restates a default, and every config written before these keys
 * existed, keeps its version.
 *
 * Validation is strict (unknown keys, elements, sources and tables are errors), and every problem names the file,
 * the line and the key.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { LineCounter, isMap, isScalar, isSeq, parseDocument, type Document } from 'yaml';
import { z } from 'zod';
import { canonicalBytes, sha256Hex } from '../anchor/index.ts';
import type { MshHeader } from '../formats/hl7v2/index.ts';
import {
  FIELD_SOURCE_ELEMENTS,
  VALUE_MAP_TABLES,
  Z_SEGMENT_NAME,
  Z_SEGMENT_TARGETS,
  Z_TYPES_WITH_SYSTEM,
  Z_VALUE_TYPES,
  fieldSourcesConflict,
  parseZField,
  resolveFieldSources,
  type FieldSourceElement,
  type FieldSourceSpec,
  type FieldSources,
  type Hl7MappingOptions,
  MAPPING_ISSUE_CODES,
  type ZSegmentRule,
  type ZSegmentRules,
  type ZSegmentTarget,
} from '../mappers/index.ts';

/** The config that applies when no other matches. */
export const DEFAULT_MAPPING_CONFIG = 'default';

/** Extensions of config files in a config directory; other files are ignored. */
export const MAPPING_CONFIG_EXTENSIONS: readonly string[] = ['.yaml', '.yml', '.json'];

/** A config file larger than this is refused unread, in bytes: configs are a few lines, never megabytes. */
export const MAX_MAPPING_CONFIG_BYTES = 1024 * 1024;

/** What every config is resolved on: the engine's `mapping` settings. */
export type MappingBase = Pick<Hl7MappingOptions, 'timeZone' | 'identifierSystems' | 'localCodeSystemBase'>;

/** Which messages a config is for: each criterion lists the values it accepts; both must hold when both are given. */
export interface MappingMatch {
  sendingApplication?: string[];
  sendingFacility?: string[];
}

/** The resolved content of a config: what its version hashes and what mapping_config stores. */
export interface MappingConfigContent {
  /** Absent only in the built-in default (the engine's settings as they are). */
  name?: string;
  description?: string;
  /** Absent in a default config. */
  match?: MappingMatch;
  timeZone: string;
  identifierSystems: Record<string, string>;
  localCodeSystemBase: string;
  codeSystems?: Record<string, string>;
  /** The elements whose sources differ from their defaults; absent when none does. */
  fields?: Partial<FieldSources>;
  /** HL7 table -> value as sent -> value read; absent when no table has entries. */
  valueMaps?: Record<string, Record<string, string>>;
  /** The authority of identifiers sent with none when MSH-4 and MSH-3 are empty; absent when not set. */
  defaultAuthority?: string;
  /** Mapping issue codes that fail this source's messages, sorted; absent when none. */
  fatalIssues?: string[];
  /** Z segment -> its rules, resolved; absent when no segment has rules. */
  zSegments?: ZSegmentRules;
}

/** One version of one config, ready to map with. */
export interface MappingConfigVersion {
  name: string;
  /** Lowercase hex SHA-256 of the canonical JSON of `content`. */
  sha256: string;
  content: MappingConfigContent;
  options: Hl7MappingOptions;
  /** Where it came from: a file path, 'engine settings' (the built-in default) or 'mapping_config' (the database). */
  source: string;
}

/** One problem with a config file, located: `file:line:column: key: message`. */
export interface MappingConfigProblem {
  file: string;
  /** 1-based; the line of the offending key, or of the nearest enclosing key when the key is missing. */
  line: number;
  column: number;
  /** Dotted path of the key ('identifierSystems.SEOULGEN', 'match.sendingFacility[1]'); '(file)' for the whole file. */
  key: string;
  message: string;
}

export function formatProblem(problem: MappingConfigProblem): string {
  return `${problem.file}:${problem.line}:${problem.column}: ${problem.key}: ${problem.message}`;
}

/** A config that cannot be used; `problems` locates each reason. */
export class MappingConfigError extends Error {
  readonly code = 'ANCHORLINE_ERR_CONFIG_INVALID';
  readonly problems: MappingConfigProblem[];

  constructor(problems: MappingConfigProblem[]) {
    super(`invalid mapping config:\n${problems.map((p) => `  ${formatProblem(p)}`).join('\n')}`);
    this.name = 'MappingConfigError';
    this.problems = problems;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Schema

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;
/** Same rule as the identifier systems the mappers derive themselves (datatypes.ts): scheme ':' something. */
const ABSOLUTE_URI = /^[A-Za-z][A-Za-z0-9+.-]*:\S+$/;

const uri = z.string().regex(ABSOLUTE_URI, 'must be an absolute URI (https://..., urn:oid:..., urn:...)');

// '__proto__' keys are refused before the schema runs (reservedKeys), because zod drops them silently.
const mapKey = z.string().min(1, 'a key must not be empty');

function isTimeZone(timeZone: string): boolean {
  try {
    new Intl.DateTimeFormat('en', { timeZone });
    return true;
  } catch {
    return false;
  }
}

const timeZone = z.string().refine(isTimeZone, 'not a known IANA time zone (e.g. Asia/Seoul, America/New_York)');

/** One value or a list, kept as a sorted list without repeats: the order of a list does not change the version. */
const matchValues = z
  .preprocess((value) => (typeof value === 'string' ? [value] : value), z.array(z.string().min(1, 'must not be empty')).min(1, 'must list at least one value'))
  .transform((values) => [...new Set(values)].sort());

const matchSchema = z.strictObject({
  /** MSH-3 values: the whole field as sent (components joined by '^'), or its first component. */
  sendingApplication: matchValues.optional(),
  /** MSH-4 values, likewise. */
  sendingFacility: matchValues.optional(),
});

/**
 * The sources of one element (mappers/hl7v2/field-sources.ts): one field for a key ('PID-2'), one or a list for the
 * others ('PID-13' or [PID-13, PID-40], kept as a list in the order written: the order is the element's order).
 */
function fieldSourcesSchema(element: FieldSourceElement, spec: FieldSourceSpec): z.ZodType<string | string[]> {
  const allowed = `one of: ${spec.allowed.join(', ')}`;
  const notAllowed = (source: string): string | undefined => (spec.allowed.includes(source) ? undefined : `${source} cannot feed ${element} (${allowed})`);
  if (spec.takes === 'one') {
    return z.string({ error: (issue) => (issue.input === undefined ? undefined : `takes one source, not a list (${allowed})`) }).superRefine((source, ctx) => {
      const message = notAllowed(source);
      if (message !== undefined) ctx.addIssue({ code: 'custom', message, input: source });
    });
  }
  return z
    .union([z.string(), z.array(z.string())], { error: `must be a source or a list of sources (${allowed})` })
    .superRefine((value, ctx) => {
      const sources = typeof value === 'string' ? [value] : value;
      if (sources.length === 0) ctx.addIssue({ code: 'custom', message: `must list at least one source (${allowed})`, input: value });
      sources.forEach((source, i) => {
        const message = notAllowed(source) ?? (sources.indexOf(source) < i ? `${source} is listed twice` : undefined);
        if (message !== undefined) ctx.addIssue({ code: 'custom', message, input: source, path: typeof value === 'string' ? [] : [i] });
      });
    })
    .transform((value) => (typeof value === 'string' ? [value] : value));
}

/** `fields`: FHIR element -> its sources; an element left out keeps its default. */
const fieldsSchema = z.strictObject(
  Object.fromEntries(Object.entries(FIELD_SOURCE_ELEMENTS).map(([element, spec]) => [element, fieldSourcesSchema(element as FieldSourceElement, spec).optional()])),
);

/** A value as sent, the key of a value map: compared with the trimmed component, so it must be trimmed itself. */
const sentValue = z
  .string()
  .min(1, 'a value must not be empty')
  .refine((value) => value === value.trim(), 'has spaces around it; values are compared trimmed, so it would never match');

/** `valueMaps`: HL7 table -> value as sent -> a code the mappers know in that table (mappers/hl7v2/value-maps.ts). */
const valueMapsSchema = z.strictObject(
  Object.fromEntries(
    [...VALUE_MAP_TABLES].map(([table, { meaning, codes }]) => [
      table,
      z
        .record(
          sentValue,
          z.string().superRefine((code, ctx) => {
            if (!codes.includes(code)) ctx.addIssue({ code: 'custom', message: `${code} is not a code the mappers read in ${table} ${meaning} (one of: ${codes.join(', ')})`, input: code });
          }),
        )
        .optional(),
    ]),
  ),
);

/** `fatalIssues`: mapping issue codes, each known (mappers/issues.ts). */
const fatalIssuesSchema = z.array(
  z.string().refine((code) => Object.hasOwn(MAPPING_ISSUE_CODES, code), `not a mapping issue code (expected one of: ${Object.keys(MAPPING_ISSUE_CODES).join(', ')})`),
);

/**
 * One rule of `zSegments` (mappers/hl7v2/z-segment-rules.ts): a field of the segment and where its value goes. The
 * file writes the field as a number (2) or by name ('ZPI-2', 'ZPI-2.1' for a component); the content holds the name.
 */
const Z_TARGET_NAMES = Object.keys(Z_SEGMENT_TARGETS) as ZSegmentTarget[];
const Z_FIELD_FORMS = 'a field number (2), or the field by name (ZPI-2) or with its component (ZPI-2.1)';

const zField = z.union([z.number(), z.string()], { error: `must be ${Z_FIELD_FORMS}` }).superRefine((field, ctx) => {
  const fail = (message: string): void => ctx.addIssue({ code: 'custom', message, input: field });
  if (typeof field === 'number') {
    if (!Number.isInteger(field)) fail(`must be ${Z_FIELD_FORMS}; YAML read ${field} as a number, so a component must be named with its segment`);
    else if (field < 1) fail('field numbers start at 1');
    else if (field > 999) fail('is not a field number (at most 999)');
    return;
  }
  const named = /^(?:[A-Z0-9]{3}-)?(\d+)(?:\.(\d+))?$/.exec(field);
  if (named !== null && (Number(named[1]) < 1 || (named[2] !== undefined && Number(named[2]) < 1))) fail('field and component numbers start at 1');
  else if (parseZField(field) === undefined) fail(`must be ${Z_FIELD_FORMS}`);
});

/** A FHIR code: runs of non-space characters separated by single spaces. */
const fhirCode = z.string().regex(/^\S+( \S+)*$/, 'must be a FHIR code: no spaces around it, single spaces inside');

const zRuleSchema = z
  .strictObject({
    /** The field or component read. */
    field: zField,
    /** Where its value goes. */
    to: z.enum(Z_TARGET_NAMES, { error: (issue) => (issue.input === undefined ? undefined : `not a target (expected one of: ${Z_TARGET_NAMES.join(', ')})`) }),
    /** The FHIR type the value is read as. Default: the target's (string; Identifier for identifiers). */
    type: z.enum(Z_VALUE_TYPES, { error: `not a type (expected one of: ${Z_VALUE_TYPES.join(', ')})` }).optional(),
    /** The extension's URL; required for the extension targets, and only for them. */
    url: uri.optional(),
    /** Coding, CodeableConcept: the system of codes sent without one; Identifier: the identifier's system. Default: none. */
    system: uri.optional(),
    /** The Observation's code; required for the Observation target, and only for it. */
    code: z.strictObject({ system: uri, code: fhirCode, display: z.string().min(1, 'must not be empty').optional() }).optional(),
    /** The unit of a Quantity sent without one (UCUM code or text). Default: none. */
    unit: z.string().min(1, 'must not be empty').optional(),
  })
  .superRefine((rule, ctx) => {
    const target = Z_SEGMENT_TARGETS[rule.to];
    const type = rule.type ?? target.default;
    const wrong = (key: string, message: string): void => ctx.addIssue({ code: 'custom', message, path: [key], input: (rule as Record<string, unknown>)[key] });
    if (!target.types.includes(type)) wrong('type', `${rule.to} does not take ${aType(type)} (one of: ${target.types.join(', ')})`);
    if (target.requires.includes('url') && rule.url === undefined) wrong('url', `is required: the URL of the ${rule.to.split('.')[0]} extension`);
    if (!target.requires.includes('url') && rule.url !== undefined) wrong('url', `only an extension has a url; ${rule.to} takes none`);
    if (target.requires.includes('code') && rule.code === undefined) wrong('code', 'is required: the code of the Observations ({ system, code, display })');
    if (!target.requires.includes('code') && rule.code !== undefined) wrong('code', `only an Observation has a code; ${rule.to} takes none`);
    if (rule.system !== undefined && !Z_TYPES_WITH_SYSTEM.includes(type)) wrong('system', `only ${Z_TYPES_WITH_SYSTEM.map(aType).join(', ').replace(/, (?=[^,]*$)/, ' or ')} has a system; this rule reads ${aType(type)}`);
    if (rule.unit !== undefined && type !== 'Quantity') wrong('unit', `only a Quantity has a unit; this rule reads ${aType(type)}`);
  });

function aType(type: string): string {
  return `${/^[aeiouAEIOU]/.test(type) ? 'an' : 'a'} ${type}`;
}

/** `zSegments`: Z segment name -> its rules, in the order their extensions and identifiers are made. */
const zSegmentsSchema = z.record(
  z.string().regex(Z_SEGMENT_NAME, 'not a Z segment (Z and two letters or digits, as ZPI or Z01): rules are for the segments a site defines, the standard ones have their builders'),
  z.array(zRuleSchema, { error: (issue) => (issue.input === undefined ? undefined : 'must be a list of rules (- field: ..., to: ...)') }).min(1, 'must list at least one rule'),
);

const fileSchema = z.strictObject({
  name: z.string().regex(NAME, 'must be letters, digits, dot, dash or underscore (at most 100), starting with a letter or digit'),
  description: z.string().optional(),
  match: matchSchema.optional(),
  timeZone: timeZone.optional(),
  identifierSystems: z.record(mapKey, uri).optional(),
  localCodeSystemBase: uri.optional(),
  codeSystems: z.record(mapKey, uri).optional(),
  /** Which HL7 fields feed the elements whose source senders differ on. Default: each element's default source. */
  fields: fieldsSchema.optional(),
  /** Per HL7 table, a sender's own codes -> the table's. Default {} (codes are read as sent). */
  valueMaps: valueMapsSchema.optional(),
  /**
   * The assigning authority (a namespace, as CX-4.1 would carry it) of identifiers sent without one when the
   * message's MSH-4 and MSH-3 are empty too. Default: none (the source the connection or credential is bound to).
   */
  defaultAuthority: mapKey.optional(),
  /**
   * Mapping issue codes (README "Mapping issues") that fail this source's messages instead of being recorded on
   * them, for senders that want strictness. Default [] (every issue is recorded, none fails a message).
   */
  fatalIssues: fatalIssuesSchema.optional(),
  /**
   * The fields of a site's own segments (ZPI, ZV1) that become extensions, identifiers or Observations. Default {}
   * (Z segments are kept in the raw message, unmapped).
   */
  zSegments: zSegmentsSchema.optional(),
});

/** What an unknown key in each object is told: the keys (elements, tables) that object may hold. */
const UNKNOWN_KEY: ReadonlyMap<string, string> = new Map([
  ['', `unknown key (expected one of: ${Object.keys(fileSchema.shape).join(', ')})`],
  ['match', `unknown key (expected one of: ${Object.keys(matchSchema.shape).join(', ')})`],
  ['fields', `not an element whose source a config can set (expected one of: ${Object.keys(FIELD_SOURCE_ELEMENTS).join(', ')})`],
  ['valueMaps', `no field the mappers interpret is coded in this table (expected one of: ${[...VALUE_MAP_TABLES].map(([table, { meaning }]) => `${table} ${meaning}`).join(', ')})`],
]);

/** The message for an unknown key at `keyPath`: the keys its object may hold. */
function unknownKeyMessage(keyPath: readonly PropertyKey[]): string {
  const known = UNKNOWN_KEY.get(keyName(keyPath));
  if (known !== undefined) return known;
  if (keyPath[0] === 'zSegments' && keyPath.length === 3) return `unknown key (expected one of: ${Object.keys(zRuleSchema.shape).join(', ')})`;
  if (keyPath[0] === 'zSegments' && keyPath.length === 4 && keyPath[3] === 'code') return 'unknown key (expected one of: system, code, display)';
  return 'unknown key';
}

/** Content read back from mapping_config: the resolved form, as recordMappingConfig stored it. */
const storedSchema = z.strictObject({
  name: z.string().regex(NAME).optional(),
  description: z.string().optional(),
  match: z.strictObject({ sendingApplication: z.array(z.string().min(1)).min(1).optional(), sendingFacility: z.array(z.string().min(1)).min(1).optional() }).optional(),
  timeZone,
  identifierSystems: z.record(mapKey, z.string()),
  localCodeSystemBase: z.string(),
  codeSystems: z.record(mapKey, z.string()).optional(),
  fields: fieldsSchema.optional(),
  valueMaps: valueMapsSchema.optional(),
  defaultAuthority: mapKey.optional(),
  fatalIssues: fatalIssuesSchema.optional(),
  zSegments: zSegmentsSchema.optional(),
});

// ---------------------------------------------------------------------------------------------------------------
// Versions

export function mappingConfigVersion(content: MappingConfigContent): string {
  return sha256Hex(canonicalBytes(content));
}

function versionOf(name: string, content: MappingConfigContent, source: string): MappingConfigVersion {
  return {
    name,
    sha256: mappingConfigVersion(content),
    content,
    options: {
      timeZone: content.timeZone,
      identifierSystems: content.identifierSystems,
      localCodeSystemBase: content.localCodeSystemBase,
      codeSystems: content.codeSystems ?? {},
      fieldSources: resolveFieldSources(content.fields),
      valueMaps: content.valueMaps ?? {},
      ...(content.defaultAuthority !== undefined ? { defaultAuthority: content.defaultAuthority } : {}),
      ...(content.fatalIssues !== undefined ? { fatalIssues: content.fatalIssues } : {}),
      ...(content.zSegments !== undefined ? { zSegments: content.zSegments } : {}),
    },
    source,
  };
}

/**
 * The built-in default: the engine's `mapping` settings as they are (only the mapping rules, never where files are
 * read from), so its version is the digest of those settings alone.
 */
export function builtInDefault(base: MappingBase): MappingConfigVersion {
  return versionOf(DEFAULT_MAPPING_CONFIG, { timeZone: base.timeZone, identifierSystems: { ...base.identifierSystems }, localCodeSystemBase: base.localCodeSystemBase }, 'engine settings');
}

/**
 * A version stored in mapping_config, for a rollback or a diff: `content` must have the resolved form and re-hash
 * to `sha256` (a row altered in the database is refused rather than activated). Throws MappingConfigError.
 */
export function storedVersion(name: string, sha256: string, content: unknown): MappingConfigVersion {
  const where = `mapping_config/${sha256}`;
  const parsed = storedSchema.safeParse(content);
  if (!parsed.success) {
    throw new MappingConfigError(parsed.error.issues.map((issue) => ({ file: where, line: 1, column: 1, key: keyName(issue.path) || '(content)', message: issue.message })));
  }
  if (mappingConfigVersion(content as MappingConfigContent) !== sha256) {
    throw new MappingConfigError([{ file: where, line: 1, column: 1, key: '(content)', message: 'the stored content does not hash to its version; it was altered' }]);
  }
  // The content itself, not the parsed copy: the version is the digest of exactly what is stored.
  return versionOf(name, content as MappingConfigContent, 'mapping_config');
}

// ---------------------------------------------------------------------------------------------------------------
// Parsing one file

/** A validated file: its version, and where its name and match keys are (for problems found across files). */
export interface ParsedMappingConfig {
  file: string;
  version: MappingConfigVersion;
  positions: { name: Position; match: Position };
}

interface Position {
  line: number;
  column: number;
}

/**
 * Parses and validates the text of one config file and resolves it on `base`. Throws MappingConfigError naming the
 * file, line and key of every problem.
 */
export function parseMappingConfig(text: string, file: string, base: MappingBase): ParsedMappingConfig {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, keepSourceTokens: true, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const problems: MappingConfigProblem[] = [];
    for (const error of doc.errors) {
      const at = lineCounter.linePos(error.pos[0]);
      // One broken line often yields several parser errors; the first says the most.
      if (problems.some((problem) => problem.line === at.line)) continue;
      problems.push({ file, line: at.line, column: at.col, key: '(syntax)', message: `not valid YAML: ${error.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '')}` });
    }
    throw new MappingConfigError(problems);
  }
  const locate = (keyPath: readonly PropertyKey[]): Position & { found: boolean } => locateKey(doc, lineCounter, keyPath);

  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: 100 });
  } catch (error) {
    throw new MappingConfigError([{ file, line: 1, column: 1, key: '(file)', message: `cannot be read: ${(error as Error).message}` }]);
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new MappingConfigError([{ file, line: 1, column: 1, key: '(file)', message: 'must hold a mapping of keys to values (name: ..., match: ..., ...)' }]);
  }

  const reserved = reservedKeys(raw, []);
  if (reserved.length > 0) {
    throw new MappingConfigError(
      reserved.map((keyPath) => {
        const at = locate(keyPath);
        return { file, line: at.line, column: at.column, key: keyName(keyPath), message: 'this key is reserved (it would become an object prototype, not a key)' };
      }),
    );
  }

  const parsed = fileSchema.safeParse(raw, { reportInput: true });
  if (!parsed.success) {
    const problems: MappingConfigProblem[] = [];
    for (const issue of parsed.error.issues) {
      if (issue.code === 'unrecognized_keys') {
        const message = unknownKeyMessage(issue.path);
        for (const key of issue.keys) {
          const at = locate([...issue.path, key]);
          problems.push({ file, line: at.line, column: at.column, key: keyName([...issue.path, key]), message });
        }
        continue;
      }
      const at = locate(issue.path);
      // A key the file lacks is required, unless a check of the schema's own says why it is wanted.
      problems.push({ file, line: at.line, column: at.column, key: keyName(issue.path) || '(file)', message: at.found || issue.code === 'custom' ? issueMessage(issue) : 'is required' });
    }
    throw new MappingConfigError(sortProblems(problems));
  }
  const config = parsed.data;

  const problems: MappingConfigProblem[] = [];
  const problem = (keyPath: PropertyKey[], message: string): void => {
    const at = locate(keyPath);
    problems.push({ file, line: at.line, column: at.column, key: keyName(keyPath), message });
  };
  const stem = path.basename(file, path.extname(file));
  if (config.name !== stem) problem(['name'], `must be the file's name without extension ('${stem}'), so that a config and its file are found by one name`);
  if (config.name === DEFAULT_MAPPING_CONFIG) {
    if (config.match !== undefined) problem(['match'], `the '${DEFAULT_MAPPING_CONFIG}' config applies when no other matches; it has no match`);
  } else if (config.match === undefined) {
    problem(['match'], `is required (sendingApplication and/or sendingFacility), except in the '${DEFAULT_MAPPING_CONFIG}' config`);
  } else if (config.match.sendingApplication === undefined && config.match.sendingFacility === undefined) {
    problem(['match'], 'must name sendingApplication and/or sendingFacility');
  }
  // The schema checked every element and source against the catalogue it was built from.
  const declaredFields = (config.fields ?? {}) as Partial<FieldSources>;
  const conflict = fieldSourcesConflict(resolveFieldSources(declaredFields));
  if (conflict !== undefined) {
    // At the element the file sets (the other one keeps its default), the first named when it sets both.
    problem(['fields', conflict.elements.find((element) => declaredFields[element] !== undefined) ?? conflict.elements[0]!], conflict.message);
  }
  const zSegments = resolvedZSegments(config.zSegments ?? {}, problem);
  if (problems.length > 0) throw new MappingConfigError(problems);

  const fields = changedFieldSources(declaredFields);
  const valueMaps = valueMapsWithEntries(config.valueMaps ?? {});
  const content: MappingConfigContent = {
    name: config.name,
    ...(config.description !== undefined ? { description: config.description } : {}),
    ...(config.match !== undefined ? { match: config.match } : {}),
    timeZone: config.timeZone ?? base.timeZone,
    identifierSystems: { ...base.identifierSystems, ...config.identifierSystems },
    localCodeSystemBase: config.localCodeSystemBase ?? base.localCodeSystemBase,
    codeSystems: { ...config.codeSystems },
    ...(Object.keys(fields).length > 0 ? { fields } : {}),
    ...(Object.keys(valueMaps).length > 0 ? { valueMaps } : {}),
    ...(config.defaultAuthority !== undefined ? { defaultAuthority: config.defaultAuthority } : {}),
    ...(config.fatalIssues !== undefined && config.fatalIssues.length > 0 ? { fatalIssues: [...new Set(config.fatalIssues)].sort() } : {}),
    ...(Object.keys(zSegments).length > 0 ? { zSegments } : {}),
  };
  const position = (key: string): Position => {
    const { line, column } = locate([key]);
    return { line, column };
  };
  return { file, version: versionOf(config.name, content, file), positions: { name: position('name'), match: position('match') } };
}

/** The declared sources that differ from their element's default: what the content (and so the version) holds. */
function changedFieldSources(declared: Partial<FieldSources>): Partial<FieldSources> {
  const changed: Record<string, unknown> = {};
  for (const [element, sources] of Object.entries(declared)) {
    const fallback = FIELD_SOURCE_ELEMENTS[element as FieldSourceElement].default;
    if (JSON.stringify(sources) !== JSON.stringify(fallback)) changed[element] = sources;
  }
  return changed as Partial<FieldSources>;
}

/** The value maps that map something: an empty map reads every code as sent, as no map does. */
function valueMapsWithEntries(declared: Readonly<Record<string, Record<string, string> | undefined>>): Record<string, Record<string, string>> {
  return Object.fromEntries(Object.entries(declared).filter((entry): entry is [string, Record<string, string>] => entry[1] !== undefined && Object.keys(entry[1]).length > 0));
}

type DeclaredZRule = z.infer<typeof zRuleSchema>;

/**
 * The rules as the content holds them: each field named with its segment ('ZPI-2', 'ZPI-2.1'), each type filled in,
 * so that `field: 2` and `field: ZPI-2`, or a type left out and the same type written, are one version. A field named
 * with another segment, and a rule that repeats an earlier one of its segment, are problems.
 */
function resolvedZSegments(declared: Readonly<Record<string, DeclaredZRule[]>>, problem: (keyPath: PropertyKey[], message: string) => void): Record<string, ZSegmentRule[]> {
  const resolved: Record<string, ZSegmentRule[]> = {};
  for (const [segment, rules] of Object.entries(declared)) {
    const list: ZSegmentRule[] = [];
    const seen = new Map<string, number>();
    rules.forEach((rule, i) => {
      // The schema accepted the field, so it parses.
      const place = parseZField(String(rule.field))!;
      if (place.segment !== undefined && place.segment !== segment) {
        problem(['zSegments', segment, i, 'field'], `names a field of ${place.segment}, under ${segment}`);
        return;
      }
      const resolvedRule: ZSegmentRule = {
        field: `${segment}-${place.field}${place.component === undefined ? '' : `.${place.component}`}`,
        to: rule.to,
        type: rule.type ?? Z_SEGMENT_TARGETS[rule.to].default,
        ...(rule.url !== undefined ? { url: rule.url } : {}),
        ...(rule.system !== undefined ? { system: rule.system } : {}),
        ...(rule.code !== undefined ? { code: { system: rule.code.system, code: rule.code.code, ...(rule.code.display !== undefined ? { display: rule.code.display } : {}) } } : {}),
        ...(rule.unit !== undefined ? { unit: rule.unit } : {}),
      };
      // One field may feed several places; the same field feeding the same place twice would make every value twice.
      const destination = JSON.stringify([resolvedRule.field, resolvedRule.to, resolvedRule.url ?? '', resolvedRule.code?.system ?? '', resolvedRule.code?.code ?? '']);
      const earlier = seen.get(destination);
      if (earlier !== undefined) {
        const where = `${resolvedRule.to}${resolvedRule.url === undefined ? '' : ` ${resolvedRule.url}`}${resolvedRule.code === undefined ? '' : ` ${resolvedRule.code.system}|${resolvedRule.code.code}`}`;
        problem(['zSegments', segment, i], `repeats ${keyName(['zSegments', segment, earlier])}: ${resolvedRule.field} already feeds ${where}`);
        return;
      }
      seen.set(destination, i);
      list.push(resolvedRule);
    });
    resolved[segment] = list;
  }
  return resolved;
}

/** Paths of own '__proto__' keys anywhere in `value`. */
function reservedKeys(value: unknown, at: PropertyKey[]): PropertyKey[][] {
  if (Array.isArray(value)) return value.flatMap((item, i) => reservedKeys(item, [...at, i]));
  if (value === null || typeof value !== 'object') return [];
  return Object.keys(value).flatMap((key) => (key === '__proto__' ? [[...at, key]] : reservedKeys((value as Record<string, unknown>)[key], [...at, key])));
}

function issueMessage(issue: z.core.$ZodIssue): string {
  // A record key's own check says what is wrong with it; zod's outer message only says that it is a key.
  if (issue.code === 'invalid_key') return issue.issues[0]?.message ?? issue.message;
  if (issue.code !== 'invalid_type') return issue.message;
  // YAML reads 0123, 1.10 or yes-like words unquoted as numbers or booleans; HL7 values are always text.
  if ((issue.expected === 'string' || issue.expected === 'array') && (typeof issue.input === 'number' || typeof issue.input === 'boolean')) {
    return `must be text; YAML read a ${typeof issue.input} here (put the value in quotes)`;
  }
  // zod's own message for a list that is not one; a schema that words its own (zSegments rules) keeps it.
  if (issue.expected === 'array') return issue.message.startsWith('Invalid input') ? 'must be a value or a list of values' : issue.message;
  if (issue.expected === 'record' || issue.expected === 'object') return 'must be a mapping of keys to values';
  return issue.message;
}

/**
 * The line and column of the key at `keyPath` (of the list item, for a number), or of the deepest enclosing key that
 * exists when it is missing.
 */
function locateKey(doc: Document, lineCounter: LineCounter, keyPath: readonly PropertyKey[]): Position & { found: boolean } {
  let node: unknown = doc.contents;
  let at = { line: 1, col: 1 };
  for (const segment of keyPath) {
    if (isMap(node)) {
      const pair = node.items.find((item) => isScalar(item.key) && String(item.key.value) === String(segment));
      if (pair === undefined) return { line: at.line, column: at.col, found: false };
      const key = pair.key as { range?: [number, number, number] };
      if (key.range) at = lineCounter.linePos(key.range[0]);
      node = pair.value;
    } else if (isSeq(node) && typeof segment === 'number') {
      const item = node.items[segment] as { range?: [number, number, number] } | undefined;
      if (item === undefined) return { line: at.line, column: at.col, found: false };
      if (item.range) at = lineCounter.linePos(item.range[0]);
      node = item;
    } else {
      return { line: at.line, column: at.col, found: false };
    }
  }
  return { line: at.line, column: at.col, found: true };
}

/** 'identifierSystems.SEOULGEN', 'match.sendingFacility[1]', 'identifierSystems["a b"]'. */
function keyName(keyPath: readonly PropertyKey[]): string {
  let name = '';
  for (const segment of keyPath) {
    if (typeof segment === 'number') name += `[${segment}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_-]*$/.test(String(segment))) name += name === '' ? String(segment) : `.${String(segment)}`;
    else name += `[${JSON.stringify(String(segment))}]`;
  }
  return name;
}

function sortProblems(problems: MappingConfigProblem[]): MappingConfigProblem[] {
  return problems.sort((a, b) => a.line - b.line || a.column - b.column);
}

// ---------------------------------------------------------------------------------------------------------------
// Sets of configs

/** Config files of a directory, sorted by name (a file path given is its own list). Throws if `target` does not exist. */
export function mappingConfigFiles(target: string): string[] {
  if (!statSync(target).isDirectory()) return [target];
  return readdirSync(target, { withFileTypes: true })
    .filter((entry) => entry.isFile() && !entry.name.startsWith('.') && MAPPING_CONFIG_EXTENSIONS.includes(path.extname(entry.name).toLowerCase()))
    .map((entry) => path.join(target, entry.name))
    .sort();
}

/** Reads one config file (at most MAX_MAPPING_CONFIG_BYTES) and parses it. Throws MappingConfigError. */
export function readMappingConfigFile(file: string, base: MappingBase): ParsedMappingConfig {
  let bytes: Buffer;
  try {
    if (statSync(file).size > MAX_MAPPING_CONFIG_BYTES) {
      throw new MappingConfigError([{ file, line: 1, column: 1, key: '(file)', message: `is larger than ${MAX_MAPPING_CONFIG_BYTES} bytes` }]);
    }
    bytes = readFileSync(file);
  } catch (error) {
    if (error instanceof MappingConfigError) throw error;
    throw new MappingConfigError([{ file, line: 1, column: 1, key: '(file)', message: `cannot be read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})` }]);
  }
  return parseMappingConfigBytes(bytes, file, base);
}

/** Parses the bytes of a config file: UTF-8, strictly (a file saved in another encoding would change names silently). */
export function parseMappingConfigBytes(bytes: Buffer, file: string, base: MappingBase): ParsedMappingConfig {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch {
    throw new MappingConfigError([{ file, line: 1, column: 1, key: '(file)', message: 'is not valid UTF-8' }]);
  }
  return parseMappingConfig(text, file, base);
}

/**
 * Keeps the configs that can be used together, in the order given (files in name order; a running registry puts the
 * configs already in use first): a config whose name an earlier one already uses, or whose match overlaps an earlier
 * config's at the same specificity (the same application, facility or pair), is rejected with a problem and the
 * earlier one stays.
 */
export function combineMappingConfigs(parsed: readonly ParsedMappingConfig[]): { accepted: ParsedMappingConfig[]; problems: MappingConfigProblem[] } {
  const accepted: ParsedMappingConfig[] = [];
  const problems: MappingConfigProblem[] = [];
  const byName = new Map<string, ParsedMappingConfig>();
  const byMatchKey = new Map<string, ParsedMappingConfig>();
  for (const item of parsed) {
    const { name } = item.version;
    const earlier = byName.get(name);
    if (earlier !== undefined) {
      problems.push({ file: item.file, ...item.positions.name, key: 'name', message: `'${name}' is already the name of the config in ${earlier.file}` });
      continue;
    }
    const keys = matchKeys(item.version.content.match);
    const clash = keys.map((key) => [key, byMatchKey.get(key)] as const).find(([, other]) => other !== undefined);
    if (clash !== undefined) {
      problems.push({ file: item.file, ...item.positions.match, key: 'match', message: `matches the same messages as '${clash[1]!.version.name}' (${clash[1]!.file}): ${describeMatchKey(clash[0])}` });
      continue;
    }
    byName.set(name, item);
    for (const key of keys) byMatchKey.set(key, item);
    accepted.push(item);
  }
  return { accepted, problems };
}

const SEPARATOR = '\u0000';

function matchKeys(match: MappingMatch | undefined): string[] {
  if (match === undefined) return [];
  const applications = match.sendingApplication;
  const facilities = match.sendingFacility;
  if (applications && facilities) return applications.flatMap((a) => facilities.map((f) => `both${SEPARATOR}${a}${SEPARATOR}${f}`));
  if (applications) return applications.map((a) => `application${SEPARATOR}${a}`);
  return (facilities ?? []).map((f) => `facility${SEPARATOR}${f}`);
}

function describeMatchKey(key: string): string {
  const [kind, first, second] = key.split(SEPARATOR);
  if (kind === 'both') return `sendingApplication '${first}' with sendingFacility '${second}'`;
  return `${kind === 'application' ? 'sendingApplication' : 'sendingFacility'} '${first}'`;
}

/**
 * Loads a directory of configs, or one config file, for the command line: every file parsed, then combined. The
 * problems of files that cannot be used are returned, not thrown, so that all of them can be reported at once.
 */
export function loadMappingConfigs(target: string, base: MappingBase): { configs: MappingConfigVersion[]; problems: MappingConfigProblem[] } {
  let files: string[];
  try {
    files = mappingConfigFiles(target);
  } catch (error) {
    return { configs: [], problems: [{ file: target, line: 1, column: 1, key: '(file)', message: `cannot be read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})` }] };
  }
  const parsed: ParsedMappingConfig[] = [];
  const problems: MappingConfigProblem[] = [];
  for (const file of files) {
    try {
      parsed.push(readMappingConfigFile(file, base));
    } catch (error) {
      if (!(error instanceof MappingConfigError)) throw error;
      problems.push(...error.problems);
    }
  }
  const combined = combineMappingConfigs(parsed.sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : 0)));
  return { configs: combined.accepted.map((item) => item.version), problems: [...problems, ...combined.problems] };
}

/**
 * The configs in use together, and the choice of one per message by MSH-3 and MSH-4. A criterion value matches the
 * field as sent (components joined by '^' whatever the message's separator) or its first component (the namespace
 * id alone). The most specific match wins: application and facility together, then application alone, then
 * facility alone; with none, the config named 'default', else `fallback` (the built-in default).
 */
export class MappingConfigSet {
  readonly configs: readonly MappingConfigVersion[];
  readonly defaultConfig: MappingConfigVersion;
  private readonly byPair = new Map<string, MappingConfigVersion>();
  private readonly byApplication = new Map<string, MappingConfigVersion>();
  private readonly byFacility = new Map<string, MappingConfigVersion>();

  /** `configs` must not overlap (combineMappingConfigs); where they do, the first listed wins. */
  constructor(configs: readonly MappingConfigVersion[], fallback: MappingConfigVersion) {
    this.defaultConfig = configs.find((config) => config.name === DEFAULT_MAPPING_CONFIG) ?? fallback;
    this.configs = [this.defaultConfig, ...configs.filter((config) => config.name !== DEFAULT_MAPPING_CONFIG)];
    for (const config of configs) {
      if (config.name === DEFAULT_MAPPING_CONFIG) continue;
      const { sendingApplication: applications, sendingFacility: facilities } = config.content.match ?? {};
      if (applications && facilities) {
        for (const a of applications) for (const f of facilities) setOnce(this.byPair, `${a}${SEPARATOR}${f}`, config);
      } else if (applications) {
        for (const a of applications) setOnce(this.byApplication, a, config);
      } else if (facilities) {
        for (const f of facilities) setOnce(this.byFacility, f, config);
      }
    }
  }

  select(header: MshHeader | undefined): MappingConfigVersion {
    if (header === undefined) return this.defaultConfig;
    const applications = hdCandidates(header.sendingApplication, header.encoding.component);
    const facilities = hdCandidates(header.sendingFacility, header.encoding.component);
    if (this.byPair.size > 0) {
      for (const a of applications) {
        for (const f of facilities) {
          const config = this.byPair.get(`${a}${SEPARATOR}${f}`);
          if (config !== undefined) return config;
        }
      }
    }
    for (const a of applications) {
      const config = this.byApplication.get(a);
      if (config !== undefined) return config;
    }
    for (const f of facilities) {
      const config = this.byFacility.get(f);
      if (config !== undefined) return config;
    }
    return this.defaultConfig;
  }
}

function setOnce<K, V>(map: Map<K, V>, key: K, value: V): void {
  if (!map.has(key)) map.set(key, value);
}

/** The values an HD field (MSH-3, MSH-4) is matched by: the whole field with '^' between components, then HD-1. */
function hdCandidates(field: string, componentSeparator: string): string[] {
  const components = field.split(componentSeparator).map((component) => component.trim());
  while (components.length > 1 && components[components.length - 1] === '') components.pop();
  const whole = components.join('^');
  const first = components[0] ?? '';
  if (whole === '') return [];
  return first === whole || first === '' ? [whole] : [whole, first];
}

/**
 * A project's de-identification configuration: versioned JSON, validated here, with DEFAULT_DEID_CONFIG as the
 * engine's default (HIPAA Safe Harbor's 18 identifiers, and Korean identifiers).
 *
 * Rules are tried in order for every element of a resource; the first rule whose path matches decides what happens
 * to that element (and, except for `redact` and `dateShift`, to everything below it). Paths are a FHIRPath subset:
 * - `Patient.birthDate`, `Resource.meta.source`, `Observation.value` (a choice element matches all its types:
 *   valueString, valueQuantity, ...); `Resource` matches any resource type;
 * - `nodesByType('HumanName')`, `nodesByType('Address').postalCode`: elements of a FHIR data type (and elements
 *   below them), with the types Microsoft's FHIR Tools for Anonymization names: HumanName, Address, ContactPoint,
 *   Identifier, Reference, Narrative, Annotation, Attachment, Period, Age, Quantity, Coding, CodeableConcept,
 *   Extension, and the primitives date, dateTime, instant, base64Binary, string;
 * - `nodesByName('comment')`: every element of that name at any depth (free-text elements repeat across resources).
 *
 * Methods (the names are those of FHIR Tools for Anonymization, so a configuration reads alike):
 * - `keep`: unchanged;
 * - `redact`: removed; a complex element keeps the sub-elements that an earlier rule keeps or transforms
 *   (`nodesByType('Address').state` keep, then `nodesByType('Address')` redact keeps only the state);
 * - `cryptoHash`: replaced by a keyed pseudonym (HMAC-SHA-256 under the project secret): resource ids and the ids
 *   in references as valid FHIR ids, identifiers as a pseudonym of system|value under one research system;
 * - `dateShift`: shifted by the patient's keyed offset, keeping precision and intervals;
 * - `generalize`: a date cut to `precision`; an age or a birth date over `maxAgeYears` set to one year more (90+);
 *   a postal code cut to `digits` (per country in `digitsByCountry`), a code in `restrictedPrefixes` to `000`;
 * - `substitute`: replaced by `replaceWith`;
 * - `perturb`: a number (or a Quantity's value) moved by keyed noise within `span` (absolute, or a fraction of the
 *   value for `proportional`), rounded to `roundTo` decimals;
 * - `encrypt`: AES-256-GCM under a key derived from the project secret (reversible by whoever holds it);
 * - `scrubText`: free text kept with identifiers removed and dates shifted (research/deid/text.ts).
 */
import { z } from 'zod';
import { AnchorlineError } from '../../errors/index.ts';

const PATH = /^(?:nodesByType\('[A-Za-z][A-Za-z0-9]*'\)|nodesByName\('[a-z][A-Za-z0-9]*'\)|[A-Z][A-Za-z]*)(?:\.[a-z][A-Za-z0-9]*)*$/;
const path = z.string().regex(PATH, { message: "path must be Type.element..., nodesByType('Type')... or nodesByName('element')..." });

export const deidRuleSchema = z.discriminatedUnion('method', [
  z.strictObject({ path, method: z.literal('keep') }),
  z.strictObject({ path, method: z.literal('redact') }),
  z.strictObject({ path, method: z.literal('cryptoHash') }),
  z.strictObject({ path, method: z.literal('dateShift') }),
  z.strictObject({ path, method: z.literal('encrypt') }),
  z.strictObject({ path, method: z.literal('scrubText') }),
  z.strictObject({ path, method: z.literal('substitute'), replaceWith: z.union([z.string(), z.number(), z.boolean(), z.record(z.string(), z.unknown())]) }),
  z.strictObject({
    path,
    method: z.literal('perturb'),
    /** Largest move: in the value's unit for `fixed`, a fraction of the value for `proportional`. */
    span: z.number().nonnegative(),
    rangeType: z.enum(['fixed', 'proportional']).default('fixed'),
    /** Decimal places of the result. Default 0. */
    roundTo: z.number().int().min(0).max(28).default(0),
  }),
  z.strictObject({
    path,
    method: z.literal('generalize'),
    /** Dates: the precision kept. */
    precision: z.enum(['year', 'month']).optional(),
    /** Ages and birth dates: older than this shows as this + 1 (Safe Harbor: 89, shown as 90 or older). */
    maxAgeYears: z.number().int().positive().optional(),
    /** Postal codes: leading characters kept, unless the country has its own entry in digitsByCountry. */
    digits: z.number().int().min(0).max(10).optional(),
    /** Postal codes: digits kept by country (the address's country as written: KR, KOR, US, USA, ...). */
    digitsByCountry: z.record(z.string(), z.number().int().min(0).max(10)).optional(),
    /** Postal codes: prefixes of areas too small to publish (HIPAA: fewer than 20,000 people); they become 000. */
    restrictedPrefixes: z.array(z.string()).optional(),
  }),
]);

export type DeidRule = z.infer<typeof deidRuleSchema>;

export const deidConfigSchema = z.strictObject({
  /** Version of this configuration format; 1 is the only one. */
  formatVersion: z.literal(1),
  /** A project's name for its configuration (shown in the audit, not used otherwise). */
  name: z.string().max(200).optional(),
  /** Rules in order; the first match decides. */
  rules: z.array(deidRuleSchema),
  /** Resource types that are never released (undefined result). */
  dropResourceTypes: z.array(z.string().regex(/^[A-Z][A-Za-z]+$/)).default([]),
  /**
   * Extension URLs kept (and processed by the rules like any element); every other extension and modifier extension
   * is removed. A resource with an unknown modifier extension is dropped whole: without the extension its meaning
   * changes, and with it the extension's content is unchecked. Primitive extensions (`_birthDate`) are removed.
   */
  keepExtensions: z.array(z.string().min(1)).default([]),
  /**
   * Identifier systems whose identifiers are removed whole rather than pseudonymised: national identifiers
   * (주민등록번호, SSN, passport numbers), whose pseudonym would still let anyone holding the key test guesses.
   * Identifiers whose value has the form of a 주민등록번호 are removed whatever their system.
   */
  dropIdentifierSystems: z.array(z.string().min(1)).default([]),
  /** Largest date shift, in days either way. Default 365. */
  dateShiftRangeDays: z.number().int().min(1).max(3650).default(365),
  /**
   * Whose offset a resource's dates take: `patient` (all resources of a patient move alike, so intervals between
   * them hold) or `resource` (each resource its own). Default patient.
   */
  dateShiftScope: z.enum(['patient', 'resource']).default('patient'),
});

export type DeidConfig = z.infer<typeof deidConfigSchema>;
/** The schema under the type's name, as zod schemas are often named (`DeidConfig.safeParse(json)`). */
export const DeidConfig = deidConfigSchema;
export type DeidConfigInput = z.input<typeof deidConfigSchema>;

/** HIPAA's 17 three-digit ZIP areas of fewer than 20,000 people (HHS de-identification guidance, Census 2000). */
export const HIPAA_RESTRICTED_ZIP3 = ['036', '059', '063', '102', '203', '556', '692', '790', '821', '823', '830', '831', '878', '879', '884', '890', '893'];

/**
 * Identifier systems dropped by default: the Korean resident registration number (the OID the engine's HL7 v2
 * mapping gives the KRMOHW assigning authority), US SSN, and passport numbers.
 */
export const NATIONAL_IDENTIFIER_SYSTEMS = [
  'urn:oid:2.16.410.100.1',
  'urn:anchorline:authority:KRMOHW',
  'http://hl7.org/fhir/sid/us-ssn',
  'urn:oid:2.16.840.1.113883.4.1',
  'http://hl7.org/fhir/sid/passport-KOR',
  'http://hl7.org/fhir/sid/passport-USA',
];

/**
 * The default: HIPAA Safe Harbor's 18 identifiers (names; geography below the state, with the postal code cut to
 * its first 3 digits in the US, outside the restricted areas, and to its first 2 in Korea: the 시/도 region; dates
 * shifted, birth dates to the year, ages over 89 as 90; telephone, fax, e-mail; SSN and every other identifier
 * pseudonymised or, for national numbers, removed; device identifiers and serial numbers; URLs; photos and other
 * attachments), free text removed except Observation string values and code texts, which are scrubbed.
 *
 * Korean postal codes keep 2 digits, not 3: the first 3 digits of the 5-digit 국가기초구역 code are a 시/군/구, and
 * some of those (island and mountain 군) have fewer than 20,000 people; the engine has no population table to tell
 * which. A project that has one can configure `digitsByCountry: { KR: 3 }` with those prefixes restricted.
 */
export const DEFAULT_DEID_CONFIG: DeidConfig = deidConfigSchema.parse({
  formatVersion: 1,
  name: 'anchorline default (HIPAA Safe Harbor)',
  dropResourceTypes: ['AuditEvent', 'Binary', 'Person', 'Provenance', 'Consent', 'Account', 'PaymentNotice', 'PaymentReconciliation'],
  keepExtensions: [],
  dropIdentifierSystems: NATIONAL_IDENTIFIER_SYSTEMS,
  dateShiftRangeDays: 365,
  dateShiftScope: 'patient',
  rules: [
    { path: 'Resource.id', method: 'cryptoHash' },
    { path: 'Resource.meta.security', method: 'keep' },
    { path: 'Resource.meta.profile', method: 'keep' },
    { path: 'Resource.meta.lastUpdated', method: 'dateShift' },
    { path: 'Resource.meta', method: 'redact' },
    { path: 'Resource.implicitRules', method: 'redact' },
    { path: "nodesByType('Narrative')", method: 'redact' },
    { path: "nodesByType('Annotation')", method: 'redact' },
    { path: "nodesByType('HumanName')", method: 'redact' },
    { path: "nodesByType('ContactPoint')", method: 'redact' },
    { path: "nodesByType('Address').use", method: 'keep' },
    { path: "nodesByType('Address').type", method: 'keep' },
    { path: "nodesByType('Address').state", method: 'keep' },
    { path: "nodesByType('Address').country", method: 'keep' },
    { path: "nodesByType('Address').postalCode", method: 'generalize', digits: 3, digitsByCountry: { KR: 2, KOR: 2 }, restrictedPrefixes: HIPAA_RESTRICTED_ZIP3 },
    { path: "nodesByType('Address')", method: 'redact' },
    { path: "nodesByType('Identifier')", method: 'cryptoHash' },
    { path: "nodesByType('Reference').reference", method: 'cryptoHash' },
    { path: "nodesByType('Reference').type", method: 'keep' },
    { path: "nodesByType('Reference')", method: 'redact' },
    { path: "nodesByType('Attachment').contentType", method: 'keep' },
    { path: "nodesByType('Attachment').language", method: 'keep' },
    { path: "nodesByType('Attachment')", method: 'redact' },
    { path: "nodesByType('base64Binary')", method: 'redact' },
    { path: 'Patient.birthDate', method: 'generalize', precision: 'year', maxAgeYears: 89 },
    { path: "nodesByType('Age')", method: 'generalize', maxAgeYears: 89 },
    { path: 'Patient.multipleBirth', method: 'redact' },
    { path: 'Coverage.subscriberId', method: 'cryptoHash' },
    { path: 'Coverage.dependent', method: 'redact' },
    { path: 'Device.udiCarrier', method: 'redact' },
    { path: 'Device.distinctIdentifier', method: 'redact' },
    { path: 'Device.serialNumber', method: 'redact' },
    { path: 'Device.lotNumber', method: 'redact' },
    { path: 'Device.deviceName', method: 'redact' },
    { path: 'Device.url', method: 'redact' },
    { path: 'Location.name', method: 'redact' },
    { path: 'Location.alias', method: 'redact' },
    { path: 'Location.position', method: 'redact' },
    { path: 'Organization.name', method: 'redact' },
    { path: 'Organization.alias', method: 'redact' },
    { path: 'Endpoint.address', method: 'redact' },
    { path: 'Observation.value', method: 'scrubText' },
    { path: 'Observation.component.value', method: 'scrubText' },
    { path: "nodesByType('CodeableConcept').text", method: 'scrubText' },
    { path: "nodesByType('Coding').display", method: 'scrubText' },
    { path: "nodesByName('comment')", method: 'redact' },
    { path: "nodesByName('description')", method: 'redact' },
    { path: "nodesByName('patientInstruction')", method: 'redact' },
    { path: "nodesByName('conclusion')", method: 'redact' },
    { path: "nodesByName('title')", method: 'redact' },
    { path: "nodesByName('summary')", method: 'redact' },
    { path: "nodesByName('payload')", method: 'redact' },
    { path: "nodesByType('date')", method: 'dateShift' },
    { path: "nodesByType('dateTime')", method: 'dateShift' },
    { path: "nodesByType('instant')", method: 'dateShift' },
    { path: "nodesByType('string')", method: 'scrubText' },
  ],
});

/**
 * A configuration from JSON, validated, with defaults filled in. A bad one throws ANCHORLINE_ERR_CONFIG_INVALID
 * naming the key at fault (`rules[3].method: ...`).
 */
export function parseDeidConfig(input: unknown): DeidConfig {
  const parsed = deidConfigSchema.safeParse(input);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  const key = issue.path.map((part) => (typeof part === 'number' ? `[${part}]` : `.${String(part)}`)).join('').replace(/^\./, '');
  throw new AnchorlineError('ANCHORLINE_ERR_CONFIG_INVALID', `de-identification config ${key || '(root)'}: ${issue.message}`);
}

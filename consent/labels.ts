/**
 * What a consent can be matched against about one resource (ResourceFacts): its security labels, its codes and its
 * time.
 *
 * Labels are the resource's meta.security, plus labels derived from its content for the categories patients' consents
 * name: laboratory results (LABCAT), imaging (DICAT), mental health (MH, PSY, MENCAT), substance use (SUD, ETH), HIV
 * (HIV), genetics (GDIS), and, for each of the sensitive ones, v3 Confidentiality R (restricted), so that a consent
 * about "sensitive information" in general covers them all. A label a sender already put in meta.security is kept as
 * sent; derivation only adds. Derivation is a table of rules (DEFAULT_SENSITIVITY_RULES, extended by config
 * `consent.sensitivityRules`): ICD-10 / KCD chapters, a few SNOMED CT concepts and the category codes FHIR and HL7 v2
 * use for laboratory and imaging reports.
 *
 * SNOMED CT is hierarchical and only exact codes are listed here: a finding coded only with a narrower SNOMED concept
 * is not labelled unless it also carries an ICD-10/KCD code (as Korean records almost always do) or a meta.security
 * label from its sender.
 */
import { ACT_CODE, CONFIDENTIALITY, token } from './codes.ts';
import { instantOf, normalisedLabel } from './decide.ts';
import type { ResourceFacts, SensitivityRule } from './types.ts';

const ICD_10_SYSTEMS = ['http://hl7.org/fhir/sid/icd-10', 'http://hl7.org/fhir/sid/icd-10-cm', 'http://www.hl7korea.or.kr/CodeSystem/kostat-kcd-8'];
const SNOMED = 'http://snomed.info/sct';
const LOINC = 'http://loinc.org';
const OBSERVATION_CATEGORY = 'http://terminology.hl7.org/CodeSystem/observation-category';
const V2_0074 = 'http://terminology.hl7.org/CodeSystem/v2-0074';

const act = (code: string): string => token(ACT_CODE, code);
const RESTRICTED = token(CONFIDENTIALITY, 'R');
const MENTAL_HEALTH = [act('MH'), act('PSY'), act('MENCAT'), RESTRICTED];
const SUBSTANCE_USE = [act('SUD'), act('ETH'), RESTRICTED];
const HIV = [act('HIV'), RESTRICTED];
const GENETICS = [act('GDIS'), RESTRICTED];
const LABORATORY = [act('LABCAT')];
const IMAGING = [act('DICAT')];

/**
 * The engine's derivation table. ICD-10 and KCD-8 share the chapter structure these rules read: F00-F99 mental and
 * behavioural disorders (F10-F19 those due to psychoactive substance use, which are both), B20-B24 HIV disease and
 * Z21 asymptomatic HIV infection status, Q90-Q99 chromosomal abnormalities and Z14-Z15 genetic carrier status and
 * susceptibility.
 */
export const DEFAULT_SENSITIVITY_RULES: readonly SensitivityRule[] = [
  { systems: ICD_10_SYSTEMS, prefixes: ['F'], labels: MENTAL_HEALTH },
  { systems: ICD_10_SYSTEMS, ranges: [['F10', 'F199']], labels: SUBSTANCE_USE },
  { systems: ICD_10_SYSTEMS, ranges: [['B20', 'B249']], codes: ['Z21'], labels: HIV },
  { systems: ICD_10_SYSTEMS, ranges: [['Q90', 'Q999'], ['Z14', 'Z159']], labels: GENETICS },
  // SNOMED CT: mental disorder, HIV infection and HIV positive, substance abuse, alcoholism, drug dependence.
  { systems: [SNOMED], codes: ['74732009'], labels: MENTAL_HEALTH },
  { systems: [SNOMED], codes: ['86406008', '165816005'], labels: HIV },
  { systems: [SNOMED], codes: ['66214007', '7200002', '191816009'], labels: SUBSTANCE_USE },
  // LOINC: genetic analysis report and the HL7 genetic variant reporting panel.
  { systems: [LOINC], codes: ['51969-4', '81247-9'], labels: GENETICS },
  { systems: [OBSERVATION_CATEGORY], codes: ['laboratory'], labels: LABORATORY },
  { systems: [OBSERVATION_CATEGORY], codes: ['imaging'], labels: IMAGING },
  // HL7 v2 table 0074 diagnostic service sections, as DiagnosticReport.category carries them.
  { systems: [V2_0074], codes: ['LAB', 'BG', 'BLB', 'CG', 'CH', 'CP', 'GE', 'HM', 'IMM', 'MB', 'MCB', 'MYC', 'OSL', 'PAR', 'PAT', 'SP', 'SR', 'TX', 'URN', 'VR'], labels: LABORATORY },
  { systems: [V2_0074], codes: ['CG', 'GE'], labels: GENETICS },
  { systems: [V2_0074], codes: ['IMG', 'RAD', 'RX', 'CT', 'NMR', 'NMS', 'RUS', 'VUS', 'OUS', 'CUS', 'XRC'], labels: IMAGING },
];

/** Resource types that are imaging whatever they say. */
const IMAGING_TYPES: ReadonlySet<string> = new Set(['ImagingStudy', 'Media']);

/** Elements whose codings are a resource's codes: what it is, its kind and its category. */
const CODE_ELEMENTS = ['code', 'category', 'type', 'class', 'vaccineCode', 'medicationCodeableConcept', 'modality', 'serviceType'] as const;

/** Elements holding when a resource's data happened or was recorded, in order of preference. */
const TIME_ELEMENTS = ['effectiveDateTime', 'effectivePeriod', 'issued', 'onsetDateTime', 'recordedDate', 'performedDateTime', 'performedPeriod', 'occurrenceDateTime', 'authoredOn', 'started', 'period', 'date', 'created', 'dateTime', 'recorded'] as const;

/**
 * The facts of one resource a consent decision reads. `rules` replaces the default table (pass
 * `[...DEFAULT_SENSITIVITY_RULES, ...configured]` to extend it).
 */
export function resourceFacts(resource: Record<string, unknown>, rules: readonly SensitivityRule[] = DEFAULT_SENSITIVITY_RULES): ResourceFacts {
  const resourceType = typeof resource.resourceType === 'string' ? resource.resourceType : '';
  const codings = CODE_ELEMENTS.flatMap((element) => codingsOf(resource[element]));
  const codes = [...new Set(codings.map((c) => token(c.system, c.code)))];
  const labels = new Set<string>();
  const meta = resource.meta as { security?: unknown } | undefined;
  for (const c of codingsOf(meta?.security)) labels.add(normalisedLabel(c.system, c.code));
  // Derived from the codes, and from the coded values and components of observations (a mental health assessment
  // result is as sensitive as the diagnosis).
  const derivedFrom = [...codings, ...codingsOf(resource.valueCodeableConcept), ...codingsOf(resource.reasonCode), ...codingsOf(resource.conclusionCode)];
  for (const rule of rules) {
    if (rule.resourceTypes && !rule.resourceTypes.includes(resourceType)) continue;
    if (derivedFrom.some((c) => ruleMatches(rule, c))) for (const label of rule.labels) labels.add(label);
  }
  if (IMAGING_TYPES.has(resourceType)) for (const label of IMAGING) labels.add(label);
  const when = timeOf(resource);
  return {
    resourceType,
    id: typeof resource.id === 'string' ? resource.id : '',
    labels: [...labels],
    codes,
    ...(when === undefined ? {} : { when }),
  };
}

function ruleMatches(rule: SensitivityRule, coding: { system: string | undefined; code: string }): boolean {
  if (coding.system === undefined || !rule.systems.includes(coding.system)) return false;
  if (rule.codes?.includes(coding.code)) return true;
  const plain = coding.code.replace('.', '').toUpperCase();
  if (rule.prefixes?.some((prefix) => plain.startsWith(prefix))) return true;
  // Compared as strings on the code without its dot: F10 <= F103 <= F199 holds for every code of F10-F19.
  return rule.ranges?.some(([from, to]) => plain >= from && plain <= to) ?? false;
}

/** The codings of a CodeableConcept, a Coding, or a list of either. */
function codingsOf(value: unknown): Array<{ system: string | undefined; code: string }> {
  if (Array.isArray(value)) return value.flatMap(codingsOf);
  if (value === null || typeof value !== 'object') return [];
  const element = value as { coding?: unknown; system?: unknown; code?: unknown };
  if (Array.isArray(element.coding)) return element.coding.flatMap(codingsOf);
  return typeof element.code === 'string' && element.code !== '' ? [{ system: typeof element.system === 'string' ? element.system : undefined, code: element.code }] : [];
}

function timeOf(resource: Record<string, unknown>): Date | undefined {
  for (const element of TIME_ELEMENTS) {
    const value = resource[element];
    const text = typeof value === 'string' ? value : value && typeof value === 'object' ? (value as { start?: unknown }).start : undefined;
    if (typeof text !== 'string') continue;
    const ms = instantOf(text, false);
    if (Number.isFinite(ms)) return new Date(ms);
  }
  return undefined;
}

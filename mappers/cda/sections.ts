/**
 * C-CDA sections: which kind of section each is, and the template id @medplum/ccda routes it by.
 *
 * The converter decides how to read a section's entries from the section's FIRST templateId only, and knows one or
 * two roots per section kind. Real documents list several (an IHE template before the C-CDA one, the "entries
 * optional" root where the converter knows "entries required", R1.1 and R2.1 side by side) or none at all. Each
 * section is therefore recognised by any of its templateIds, else by its LOINC section code, and the root the
 * converter routes on is put first; the section's own templateIds stay after it.
 */

import type { CcdaSection, CcdaTemplateId } from '@medplum/ccda';

import { asNodes } from './normalize.ts';

const C = '2.16.840.1.113883.10.20.22.2.';
const IHE = '1.3.6.1.4.1.19376.1.5.3.1.3.';
const LOINC_OID = '2.16.840.1.113883.6.1';

export interface SectionKind {
  /** What the section holds, as the README and issues name it. */
  name: string;
  /** The templateId root @medplum/ccda routes this kind of section by. */
  routingRoot: string;
  /** Every templateId root that marks this kind of section (C-CDA R1.1/R2.1, entries optional/required, IHE PCC). */
  roots: readonly string[];
  /** LOINC section codes of this kind. */
  loincCodes: readonly string[];
}

const KINDS: readonly SectionKind[] = [
  { name: 'allergies', routingRoot: `${C}6.1`, roots: [`${C}6`, `${C}6.1`, `${IHE}13`], loincCodes: ['48765-2'] },
  { name: 'medications', routingRoot: `${C}1.1`, roots: [`${C}1`, `${C}1.1`, `${IHE}19`], loincCodes: ['10160-0'] },
  { name: 'problems', routingRoot: `${C}5.1`, roots: [`${C}5`, `${C}5.1`, `${IHE}6`], loincCodes: ['11450-4'] },
  { name: 'immunizations', routingRoot: `${C}2.1`, roots: [`${C}2`, `${C}2.1`, `${IHE}23`], loincCodes: ['11369-6'] },
  // Anesthesia (2.25, 59774-0) holds Procedure Activities beside the anesthetics (sections/medications.ts claims
  // those): the converter reads its procedures as a Procedures section's.
  { name: 'procedures', routingRoot: `${C}7.1`, roots: [`${C}7`, `${C}7.1`, `${IHE}12`, `${C}25`], loincCodes: ['47519-4', '59774-0'] },
  { name: 'results', routingRoot: `${C}3.1`, roots: [`${C}3`, `${C}3.1`, `${IHE}28`], loincCodes: ['30954-2'] },
  { name: 'vital signs', routingRoot: `${C}4.1`, roots: [`${C}4`, `${C}4.1`, `${IHE}25`], loincCodes: ['8716-3'] },
  { name: 'social history', routingRoot: `${C}17`, roots: [`${C}17`, `${IHE}16.1`], loincCodes: ['29762-2'] },
  { name: 'encounters', routingRoot: `${C}22.1`, roots: [`${C}22`, `${C}22.1`, `${IHE}3`], loincCodes: ['46240-8'] },
  // Assessment and Plan (2.9, 51847-2) holds the same planned entries as Plan of Treatment, beside the assessment's
  // narrative: C-CDA lets a document send the two as one section.
  { name: 'plan of treatment', routingRoot: `${C}10`, roots: [`${C}10`, `${IHE}31`, `${C}9`], loincCodes: ['18776-5', '51847-2'] },
  { name: 'goals', routingRoot: `${C}60`, roots: [`${C}60`], loincCodes: ['61146-7'] },
  { name: 'health concerns', routingRoot: `${C}58`, roots: [`${C}58`], loincCodes: ['75310-3'] },
  { name: 'care teams', routingRoot: `${C}500`, roots: [`${C}500`], loincCodes: ['85847-2'] },
];

/** The kind of that name (its templateIds and LOINC codes, for a converter that claims some of its entries). */
export function sectionKindNamed(name: string): SectionKind {
  const kind = KINDS.find((each) => each.name === name);
  if (kind === undefined) throw new Error(`no section kind '${name}'`);
  return kind;
}

const BY_ROOT: ReadonlyMap<string, SectionKind> = new Map(KINDS.flatMap((kind) => kind.roots.map((root) => [root, kind] as const)));
const BY_LOINC: ReadonlyMap<string, SectionKind> = new Map(KINDS.flatMap((kind) => kind.loincCodes.map((code) => [code, kind] as const)));

/** The kind of a section, from its templateIds (in order) or else its LOINC code; undefined when it is none we know. */
export function sectionKind(section: CcdaSection): SectionKind | undefined {
  for (const templateId of section.templateId ?? []) {
    const kind = BY_ROOT.get(templateId?.['@_root'] ?? '');
    if (kind !== undefined) return kind;
  }
  const code = section.code;
  if (code?.['@_code'] !== undefined && (code['@_codeSystem'] === undefined || code['@_codeSystem'] === LOINC_OID)) return BY_LOINC.get(code['@_code']);
  return undefined;
}

/**
 * Puts the routing root of a known section first (changing `section` in place), and gives a section without a
 * usable templateId an empty one, so that the converter, which reads `templateId[0]` unguarded, routes it to its
 * default instead of failing.
 */
export function normalizeSectionTemplates(section: CcdaSection, kind: SectionKind | undefined): void {
  const templateIds: CcdaTemplateId[] = Array.isArray(section.templateId) ? section.templateId : [];
  if (kind !== undefined) {
    if (templateIds[0]?.['@_root'] !== kind.routingRoot) templateIds.unshift({ '@_root': kind.routingRoot });
  } else if (!templateIds.some((templateId) => typeof templateId?.['@_root'] === 'string')) {
    templateIds.unshift({ '@_root': '' });
  }
  section.templateId = templateIds;
}

/** Comment Activity (2.16.840.1.113883.10.20.22.4.64). */
export const COMMENT_ACTIVITY_ROOT = '2.16.840.1.113883.10.20.22.4.64';

/**
 * Whether a statement is a Comment Activity sent as an entry of the section itself: a comment on the section, whose
 * words are in the section's narrative, not a clinical statement to convert.
 */
export function isSectionComment(kind: string, statement: unknown): boolean {
  if (kind !== 'act' || statement === null || typeof statement !== 'object') return false;
  return asNodes((statement as { templateId?: unknown }).templateId).some((templateId) => templateId['@_root'] === COMMENT_ACTIVITY_ROOT);
}

/**
 * The clinical statements of a section's entries (act, observation, organizer, ...), counted as the converter sees
 * them; comments on the section (isSectionComment) are not clinical statements and are not counted.
 */
export function countEntryStatements(section: CcdaSection): number {
  let count = 0;
  for (const entry of section.entry ?? []) {
    if (entry === null || typeof entry !== 'object') continue;
    for (const [name, value] of Object.entries(entry)) {
      if (name.startsWith('@_') || name === 'templateId') continue;
      for (const statement of Array.isArray(value) ? value : value !== undefined && value !== null ? [value] : []) if (!isSectionComment(name, statement)) count++;
    }
  }
  return count;
}

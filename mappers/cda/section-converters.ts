/**
 * Which section converter (sections/) claims a section, and the context it runs with (section-types.ts).
 */

import { mapCcdaCodeToCodeableConcept, type CcdaCode } from '@medplum/ccda';

import { deterministicId } from '../ids.ts';
import type { Hl7MappingOptions } from '../types.ts';

import type { CdaIssue } from './issues.ts';
import { cdaDateTime, cdaPeriod } from './times.ts';
import { asNodes, firstUsableId, textOf, type DatePrecision } from './normalize.ts';
import type { Node, SectionContext, SectionConverter } from './section-types.ts';
import { SECTION_CONVERTERS } from './sections/index.ts';

const LOINC_OID = '2.16.840.1.113883.6.1';

/** The converter that claims a section: by any of its templateIds, else by its LOINC code. */
export function sectionConverterFor(section: Node): SectionConverter | undefined {
  const roots = asNodes(section.templateId).map((templateId) => templateId['@_root']).filter((root): root is string => typeof root === 'string');
  for (const converter of SECTION_CONVERTERS) if (roots.some((root) => converter.roots.includes(root))) return converter;
  const code = section.code as Node | undefined;
  const value = code?.['@_code'];
  const system = code?.['@_codeSystem'];
  if (typeof value !== 'string' || (system !== undefined && system !== LOINC_OID)) return undefined;
  return SECTION_CONVERTERS.find((converter) => converter.loincCodes.includes(value));
}

/** The context a converter gets for one section. */
export function sectionContext(options: {
  patientId: string;
  compositionId: string;
  mapping: Hl7MappingOptions;
  location: string;
  document: Node;
  ids: Set<string>;
  precision: DatePrecision;
  documentKey: readonly [string, string];
  issues: CdaIssue[];
}): SectionContext {
  const { ids, issues, location, precision } = options;
  return {
    patientReference: `Patient/${options.patientId}`,
    compositionId: options.compositionId,
    mapping: options.mapping,
    location,
    document: options.document,
    idOf(element) {
      const first = asNodes(element.id)[0];
      const root = first?.['@_root'];
      return typeof root === 'string' && ids.has(root) ? root : undefined;
    },
    derivedId(resourceType, element, owner, purpose) {
      const own = element === undefined ? undefined : firstUsableId(element.id);
      const id = own === undefined
        ? deterministicId('CdaElement', options.documentKey[0], options.documentKey[1], owner, resourceType, purpose)
        : deterministicId('CdaElement', String(own['@_root']), String(own['@_extension'] ?? ''), resourceType);
      ids.add(id);
      return id;
    },
    concept(code) {
      if (code === null || typeof code !== 'object' || Array.isArray(code)) return undefined;
      const node = code as Node;
      const concept = mapCcdaCodeToCodeableConcept(node as CcdaCode) as Record<string, unknown> | undefined;
      const original = textOf(node.originalText);
      if (concept === undefined) return original === undefined ? undefined : { text: original };
      return original === undefined || concept.text !== undefined ? concept : { ...concept, text: original };
    },
    dateTime(ts) {
      return cdaDateTime(ts);
    },
    date(ts) {
      // Through dateTime: normalize.ts has handed dates to the converter in a form only DatePrecision reads back.
      const dateTime = this.dateTime(ts);
      if (dateTime === undefined) return undefined;
      const restored = precision.restore(dateTime);
      return restored.length <= 10 ? restored : restored.slice(0, 10);
    },
    period(ivl) {
      return cdaPeriod(ivl, cdaDateTime);
    },
    issue(severity, code, text, at) {
      issues.push({ severity, code, text, location: at ?? location });
    },
  };
}

/**
 * C-CDA document -> FHIR R4 resource drafts, through @medplum/ccda, pure: no I/O, no clock, no randomness.
 *
 * 1. The raw bytes pass the pre-parse guard (formats/cda/guard.ts) and are parsed by @medplum/ccda.
 * 2. The header must name the document (ClinicalDocument/id, effectiveTime) and, unless the document arrives inside
 *    an HL7 v2 message that names the patient, a patient with an identifier. The Patient's id is the one the HL7 v2
 *    mappers give the same identifier (mappers/ids.ts over system and value), so a patient known from HL7 is the same
 *    resource; a CDA II root is the system `urn:oid:<root>`, as an HL7 CX-4 universal id of type ISO is.
 * 3. The parsed tree is normalised (normalize.ts: deterministic ids, local times, shapes the converter trips on) and
 *    sections are routed by any templateId they carry (sections.ts).
 * 4. @medplum/ccda converts. If it throws, the header and each body component are converted on their own, so one
 *    section it cannot handle costs that section, not the document (partial conversion, reported).
 * 5. The result is completed and checked (resources.ts): Composition.subject and identifier, the Patient's
 *    identifiers and birth date as sent, fixes for what the converter gets wrong, a DocumentReference for the stored
 *    document. What was not converted is reported as issues.
 */

import { convertCcdaToFhir, convertToCompactXml, mapCcdaSystemToFhir, type Ccda } from '@medplum/ccda';

import { DEFAULT_CDA_LIMITS, type CdaLimits } from '../../formats/cda/index.ts';
import { AnchorlineError, isAnchorlineError } from '../../errors/index.ts';
import { deterministicId } from '../ids.ts';
import type { Hl7MappingOptions, ResourceDraft } from '../types.ts';

import { asNodes, normalizeDocument, textElement } from './normalize.ts';
import { orderSectionNarratives } from './narrative.ts';
import { nameUncodedObservations, readTextValues } from './uncoded.ts';
import { documentFacts, documentPatientId, parseCdaDocument } from './read-header.ts';
import { convertHeader } from './header.ts';
import { unstructuredBody } from './unstructured.ts';
import { completeResources, toDrafts, type CdaDocumentFacts, type FhirResource } from './resources.ts';
import { countEntryStatements, normalizeSectionTemplates, sectionKind, type SectionKind } from './sections.ts';
import type { CdaIssue } from './issues.ts';
import { sectionContext, sectionConverterFor } from './section-converters.ts';
import { linkInterventions } from './sections/interventions.ts';
import type { SectionConverter, SectionOutput } from './section-types.ts';

type Node = Record<string, unknown>;

export type { CdaIssue, CdaIssueCode } from './issues.ts';

export interface CdaConversionOptions {
  mapping: Hl7MappingOptions;
  limits?: CdaLimits;
  /** The charset parameter of the media type the document was sent with. */
  charsetParameter?: string;
  /** The stored raw document, which the DocumentReference points at: its SHA-256 and size in bytes. */
  source?: { sha256: Buffer; size: number };
  /**
   * For a document inside an HL7 v2 message: the Patient id the message names. The document's resources are about
   * that patient, the document's own recordTarget makes no Patient, and no DocumentReference is made (the message's
   * own DocumentReference describes the document).
   */
  subjectPatientId?: string;
}

export interface CdaConversion {
  document: CdaDocumentFacts;
  /** The encoding the document was decoded from (iconv-lite name); given back as `charsetParameter`, it decodes the same. */
  charset: string;
  /**
   * The resources as converted, Composition first, then Patient; every reference among them is `Type/id`. They are
   * the drafts' own objects: an element a clinical resource lacks is null (the draft's "remove").
   */
  resources: FhirResource[];
  /** The resources as ingest drafts (complete drafts for what the document owns), DocumentReference included. */
  drafts: ResourceDraft[];
  issues: CdaIssue[];
  /** The document's effectiveTime as an instant, when it has a time of day (orders it against other messages). */
  eventTime?: string;
  patientId: string;
  compositionId: string;
  /** Absent for a document inside an HL7 v2 message. */
  documentReference?: FhirResource;
}

/**
 * Converts one C-CDA document. Throws AnchorlineError for documents that cannot be taken at all, and nothing else: a
 * shape nothing here expected is a coded failure of that document (ANCHORLINE_ERR_MAPPING_FAILED, permanent), never
 * an exception that would be retried as if the store were down.
 */
export function convertCdaDocument(raw: Buffer, options: CdaConversionOptions): CdaConversion {
  try {
    return convertDocument(raw, options);
  } catch (error) {
    if (isAnchorlineError(error)) throw error;
    throw new AnchorlineError('ANCHORLINE_ERR_MAPPING_FAILED', 'the document has a shape the C-CDA conversion could not handle', { cause: error });
  }
}

function convertDocument(raw: Buffer, options: CdaConversionOptions): CdaConversion {
  const { ccda, charset, sectionNarratives } = parseCdaDocument(raw, options);
  orderSectionNarratives(ccda, sectionNarratives);
  textElement(ccda, 'title');

  const document = documentFacts(ccda);
  const documentKey = [document.id.root, document.id.extension ?? ''] as const;
  const compositionId = deterministicId('CdaElement', ...documentKey);
  const issues: CdaIssue[] = [];
  const patientId = options.subjectPatientId ?? documentPatientId(ccda, issues);
  if (options.subjectPatientId !== undefined && asNodes(ccda.recordTarget).length === 0) {
    // The converter makes every clinical resource's subject from the recordTarget's patient: give it the message's.
    ccda.recordTarget = [{ patientRole: { id: [], patient: { '@_classCode': 'PSN' } } }];
  }

  const normalized = normalizeDocument(ccda, { mapping: options.mapping, documentKey, compositionId, patientId });
  const { invalidTimes: leftOut, timesKeptToTheDay: kept } = normalized;
  if (leftOut + kept > 0) {
    const fate = kept === 0 ? 'were left out' : leftOut === 0 ? 'were kept to the day they begin with' : `were kept to the day they begin with (${kept}) or left out (${leftOut})`;
    issues.push({ severity: 'warning', code: 'time-not-converted', text: `${leftOut + kept} time value(s) are not CDA timestamps and ${fate}` });
  }
  if (normalized.repeatedIds > 0) {
    issues.push({ severity: 'information', code: 'repeated-entry-id', text: `${normalized.repeatedIds} clinical statement(s) repeat the id of an earlier one; each was kept as a resource of its own` });
  }
  const sections = prepareSections(ccda, issues);

  // Sections converted here (section-converters.ts) first; @medplum/ccda then sees them without their entries.
  const own = convertOwnSections(sections, { patientId, compositionId, mapping: options.mapping, document: ccda, ids: normalized.ids, precision: normalized.precision, documentKey, issues });
  const warnings: string[] = [];
  const hidden = sections.map((info) => (own.has(info) ? info.section.entry : undefined));
  for (const info of own.keys()) {
    const claims = info.converter?.claims;
    info.section.entry = claims === undefined ? [] : asNodes(info.section.entry).filter((entry) => !claims(entry));
  }
  for (const info of sections) {
    // A section converted here in part leaves its other entries to @medplum/ccda: those are prepared as any.
    if (own.has(info) && info.converter?.claims === undefined) continue;
    if (info.kind !== undefined) nameUncodedObservations(info.section, info.location, issues);
    readTextValues(info.section);
    readProcedureContexts(info, issues);
  }
  let converted: Converted;
  try {
    converted = convert(ccda as unknown as Ccda, sections, warnings, issues);
  } finally {
    sections.forEach((info, i) => {
      if (own.has(info)) info.section.entry = hidden[i];
    });
  }
  addOwnSections(converted, sections, own);
  // Entry References are resolved against everything converted, whichever converter made their targets.
  linkInterventions(converted.resources, [...own.values()].flatMap((output) => output?.entryReferences ?? []));
  convertHeader(converted.resources, { ccda, patientId, documentKey, ids: normalized.ids });
  reportSections(sections, converted.sectionEntryCounts, referencedIds(converted.resources[0]), issues);
  reportWarnings(warnings, issues);
  nestSubsections(converted.resources[0]!, sections);

  const completed = completeResources(converted.resources, {
    ccda,
    mapping: options.mapping,
    normalized,
    document,
    patientId,
    compositionId,
    embedded: options.subjectPatientId !== undefined,
    raw,
    ...(options.source ? { source: options.source } : {}),
  });
  const composition = completed.resources[0]!;
  const unstructured = unstructuredBody(ccda, { language: composition.language, title: composition.title, maxBytes: (options.limits ?? DEFAULT_CDA_LIMITS).maxBytes });
  if (unstructured !== undefined) {
    for (const each of unstructured.issues) issues.push(each);
    if (unstructured.content !== undefined && completed.documentReference !== undefined) (completed.documentReference.content as unknown[]).unshift(unstructured.content);
  }
  return {
    document,
    charset,
    resources: completed.resources,
    drafts: toDrafts(completed.resources, completed.documentReference, patientId, options.subjectPatientId !== undefined),
    issues,
    ...(completed.eventTime ? { eventTime: completed.eventTime } : {}),
    patientId,
    compositionId,
    ...(completed.documentReference ? { documentReference: completed.documentReference } : {}),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Sections

interface SectionInfo {
  /** Index of the body component holding the section, and of the section in it. */
  component: number;
  kind: SectionKind | undefined;
  /** The converter of section-converters.ts that claims the section, when one does (it wins over `kind`). */
  converter: SectionConverter | undefined;
  /** Clinical statements in its entries. */
  statements: number;
  title: string;
  location: string;
  section: Node;
  /** The index (in the same list) of the section holding this one, for a subsection raised to the top. */
  parent?: number;
}

/** The top-level sections in the converter's order, routed and counted; components without sections fixed up. */
function prepareSections(ccda: Node, issues: CdaIssue[]): SectionInfo[] {
  // A nonXMLBody has no sections: unstructured.ts makes its content part of the DocumentReference.
  const component = ccda.component as Node | undefined;
  const body = component?.structuredBody;
  if (body === undefined) {
    // A body of neither kind (a pre-release draft's `StructuredBody`, a misspelling) would otherwise pass unremarked.
    const other = component === undefined || component.nonXMLBody !== undefined ? undefined : Object.keys(component).find((name) => !name.startsWith('@_'));
    if (other !== undefined) {
      issues.push({ severity: 'warning', code: 'body-not-structured', text: `the body holds neither a structuredBody nor a nonXMLBody (it holds '${other.slice(0, 40)}'); only the header was converted`, location: '/ClinicalDocument/component' });
    }
    return [];
  }
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    issues.push({ severity: 'warning', code: 'body-not-structured', text: 'the structuredBody holds no sections (text only); only the header was converted', location: '/ClinicalDocument/component/structuredBody' });
    component!.structuredBody = {};
    return [];
  }
  const { components, locations, parents } = withSubsectionsRaised(asNodes((body as Node).component));
  (body as Node).component = components;
  const sections: SectionInfo[] = [];
  const indexOf = new Map<Node, number>();
  components.forEach((bodyComponent, c) => {
    const list = asNodes(bodyComponent.section);
    bodyComponent.section = list;
    list.forEach((section) => {
      textElement(section, 'title');
      const converter = sectionConverterFor(section);
      // A converter of some entries leaves the others to @medplum/ccda, which reads them as the section's kind.
      const kind = converter === undefined || converter.claims !== undefined ? sectionKind(section as never) : undefined;
      normalizeSectionTemplates(section as never, kind);
      const parent = parents.get(section);
      indexOf.set(section, sections.length);
      sections.push({
        component: c,
        kind,
        converter,
        statements: countEntryStatements(section as never),
        title: sectionTitle(section),
        location: locations.get(section)!,
        section,
        ...(parent !== undefined && indexOf.has(parent) ? { parent: indexOf.get(parent)! } : {}),
      });
    });
  });
  return sections;
}

/**
 * The Composition's sections nested as the document nests them: each raised subsection (withSubsectionsRaised) moved
 * from the top level into its parent's `section`, in document order. Done last, once every step that finds a
 * section by its place in SectionInfo order is done.
 */
function nestSubsections(composition: FhirResource, sections: SectionInfo[]): void {
  const list = (composition as { section?: Array<Record<string, unknown>> }).section;
  if (list === undefined || list.length !== sections.length || !sections.some((info) => info.parent !== undefined)) return;
  // From the last: a subsection takes its own subsections with it when it moves into its parent.
  for (let i = sections.length - 1; i >= 0; i--) {
    const parent = sections[i]!.parent;
    if (parent === undefined) continue;
    const holder = list[parent]!;
    holder.section = [list[i]!, ...((holder.section as unknown[] | undefined) ?? [])];
  }
  (composition as { section?: unknown[] }).section = list.filter((_, i) => sections[i]!.parent === undefined);
}

/**
 * The body's components with every subsection (section/component/section, at any depth) raised to a component of
 * its own right after the section holding it, each section's XPath as sent, and each subsection's parent.
 * @medplum/ccda reads top-level sections only: a Physical Examination's Skin subsection with its pressure ulcer
 * observation, or an operative note's procedure subsections, would be lost. Raised, each is converted as any section,
 * and nestSubsections puts it back inside its parent in the Composition; the parent keeps its own narrative and entries.
 */
function withSubsectionsRaised(original: Node[]): { components: Node[]; locations: Map<Node, string>; parents: Map<Node, Node> } {
  const components: Node[] = [];
  const locations = new Map<Node, string>();
  const parents = new Map<Node, Node>();
  const raise = (section: Node, location: string, depth: number): void => {
    locations.set(section, location);
    const children = asNodes(section.component);
    if (children.length === 0 || depth >= MAX_SUBSECTION_DEPTH) return;
    delete section.component;
    children.forEach((child, k) => {
      const nested = asNodes(child.section);
      nested.forEach((subsection, n) => {
        components.push({ section: [subsection] });
        parents.set(subsection, section);
        raise(subsection, `${location}/component[${k + 1}]/section${nested.length > 1 ? `[${n + 1}]` : ''}`, depth + 1);
      });
    });
  };
  original.forEach((bodyComponent, c) => {
    components.push(bodyComponent);
    const list = asNodes(bodyComponent.section);
    list.forEach((section, s) => raise(section, `/ClinicalDocument/component/structuredBody/component[${c + 1}]/section${list.length > 1 ? `[${s + 1}]` : ''}`, 0));
  });
  return { components, locations, parents };
}

/** How deep subsections are raised; deeper ones stay inside theirs (documents nest two or three levels). */
const MAX_SUBSECTION_DEPTH = 8;

/** A section's name for issues: its LOINC code and title (section titles name the kind of content, not the patient). */
function sectionTitle(section: Node): string {
  const code = (section.code as Node | undefined)?.['@_code'];
  const title = typeof section.title === 'string' ? section.title.trim().slice(0, 80) : undefined;
  if (typeof code === 'string' && title) return `'${title}' (${code})`;
  if (title) return `'${title}'`;
  return typeof code === 'string' ? `(${code})` : '(untitled)';
}

interface Converted {
  resources: FhirResource[];
  /** Entries converted per section, in SectionInfo order; undefined for a section whose conversion failed. */
  sectionEntryCounts: Array<number | undefined>;
}

/**
 * @medplum/ccda over the whole document, or, when that throws, over the header and each body component on its own.
 * Its console warnings (value types it skips) are collected: it is synchronous, so nothing else logs meanwhile.
 */
function convert(ccda: Ccda, sections: SectionInfo[], warnings: string[], issues: CdaIssue[]): Converted {
  try {
    const bundle = runConverter(ccda, warnings);
    const resources = (bundle.entry ?? []).map((entry) => entry.resource as unknown as FhirResource);
    const composition = resources[0] as { section?: Array<{ entry?: unknown[] }> };
    return { resources, sectionEntryCounts: sections.map((_, i) => composition.section?.[i]?.entry?.length ?? 0) };
  } catch {
    // What the failed run warned about is warned again by the runs below.
    warnings.length = 0;
    return convertByComponent(ccda, sections, warnings, issues);
  }
}

function convertByComponent(ccda: Ccda, sections: SectionInfo[], warnings: string[], issues: CdaIssue[]): Converted {
  const component = (ccda as unknown as Node).component as Node;
  const body = component.structuredBody as Node;
  const components = body.component as Node[];
  const withComponents = (list: Node[]): Ccda => ({ ...ccda, component: { ...component, structuredBody: { ...body, component: list } } }) as unknown as Ccda;

  let header: FhirResource[];
  try {
    header = (runConverter(withComponents([]), warnings).entry ?? []).map((entry) => entry.resource as unknown as FhirResource);
  } catch (error) {
    if (isAnchorlineError(error)) throw error;
    throw new AnchorlineError('ANCHORLINE_ERR_MAPPING_FAILED', 'the document header could not be converted', { cause: error });
  }
  const composition = header[0] as FhirResource & { section?: unknown[] };
  const compositionSections: unknown[] = [];
  const resources: FhirResource[] = [...header];
  const counts: Array<number | undefined> = [];
  components.forEach((bodyComponent, c) => {
    const own = sections.filter((info) => info.component === c);
    try {
      const part = (runConverter(withComponents([bodyComponent]), warnings).entry ?? []).map((entry) => entry.resource as unknown as FhirResource);
      const partSections = ((part[0] as { section?: Array<{ entry?: unknown[] }> }).section ?? []);
      for (const each of partSections) compositionSections.push(each);
      for (const each of own.map((_, s) => partSections[s]?.entry?.length ?? 0)) counts.push(each);
      for (const each of part.slice(1)) resources.push(each);
    } catch {
      for (const info of own) {
        compositionSections.push(stubSection(info.section));
        counts.push(undefined);
        issues.push({ severity: 'warning', code: 'section-failed', text: `section ${info.title} could not be converted; its narrative is kept in the Composition`, location: info.location });
      }
    }
  });
  composition.section = compositionSections;
  return { resources, sectionEntryCounts: counts };
}

/**
 * Runs the converter of each section one claims. A converter that fails on a section (a shape it did not expect)
 * costs that section's entries, reported; its narrative is still kept in the Composition.
 */
function convertOwnSections(
  sections: SectionInfo[],
  options: Omit<Parameters<typeof sectionContext>[0], 'location'>,
): Map<SectionInfo, SectionOutput | undefined> {
  const outputs = new Map<SectionInfo, SectionOutput | undefined>();
  for (const info of sections) {
    if (info.converter === undefined) continue;
    try {
      outputs.set(info, info.converter.convert(info.section, sectionContext({ ...options, location: info.location })));
    } catch (error) {
      if (isAnchorlineError(error)) throw error;
      outputs.set(info, undefined);
      options.issues.push({ severity: 'warning', code: 'section-failed', text: `section ${info.title} (${info.converter.name}) could not be converted; its narrative is kept in the Composition`, location: info.location });
    }
  }
  return outputs;
}

/** The resources of the sections converted here, added to the converter's output and to their Composition sections. */
function addOwnSections(converted: Converted, sections: SectionInfo[], own: ReadonlyMap<SectionInfo, SectionOutput | undefined>): void {
  if (own.size === 0) return;
  const composition = converted.resources[0] as FhirResource & { section?: Array<Record<string, unknown>> };
  sections.forEach((info, i) => {
    if (!own.has(info)) return;
    const output = own.get(info);
    // A converter that claims some entries shares the section: what the converter made of the others counts too.
    const shared = info.converter?.claims === undefined ? 0 : (converted.sectionEntryCounts[i] ?? 0);
    converted.sectionEntryCounts[i] = output === undefined ? undefined : shared + output.converted;
    if (output === undefined) return;
    for (const each of output.resources) converted.resources.push(each);
    const section = composition.section?.[i];
    if (section !== undefined && output.entries.length > 0) {
      section.entry = [...((section.entry as unknown[] | undefined) ?? []), ...output.entries.map((resource) => ({ reference: `${resource.resourceType}/${resource.id}` }))];
    }
  });
}

function runConverter(ccda: Ccda, warnings: string[]): { entry?: Array<{ resource?: unknown }> } {
  const warn = console.warn;
  console.warn = (...args: unknown[]) => {
    warnings.push(String(args[0]));
  };
  try {
    return convertCcdaToFhir(ccda, { ignoreUnsupportedSections: true });
  } finally {
    console.warn = warn;
  }
}

/** A Composition section for a section the converter failed on: its title, code and narrative. */
function stubSection(section: Node): Record<string, unknown> {
  const code = section.code as Node | undefined;
  const system = mapCcdaSystemToFhir(code?.['@_codeSystem'] as string | undefined);
  return {
    title: typeof section.title === 'string' ? section.title : undefined,
    code: typeof code?.['@_code'] === 'string'
      ? { coding: [{ system, code: code['@_code'], display: code['@_displayName'] }] }
      : undefined,
    text: { status: 'generated', div: `<div xmlns="http://www.w3.org/1999/xhtml">${convertToCompactXml(section.text)}</div>` },
  };
}

/**
 * Sections whose entries describe the document rather than the patient: CCD 1.0's Summary Purpose (an act
 * "documentation procedure" with the reason the summary was made). Nothing clinical is in them to convert.
 */
const ABOUT_THE_DOCUMENT: ReadonlySet<string> = new Set(['2.16.840.1.113883.10.20.1.13']);

/**
 * Sections that only point at objects kept elsewhere: a Diagnostic Imaging Report's DICOM Object Catalog lists the
 * study, series and instances (by UID) that the report's observations refer to. The images are the archive's; the
 * list is no clinical statement.
 */
const REFERENCES_ONLY: ReadonlySet<string> = new Set(['2.16.840.1.113883.10.20.6.1.1']);

/** Procedure Context (Diagnostic Imaging Report, also in operative notes): the procedure a section is about. */
const PROCEDURE_CONTEXT = '2.16.840.1.113883.10.20.6.2.5';
/** Procedure Activity Procedure, the template @medplum/ccda reads a procedure entry by. */
const PROCEDURE_ACTIVITY = '2.16.840.1.113883.10.20.22.4.14';

/**
 * A Procedure Context act states the procedure done (the imaging study, an operative note's operation) that the
 * statements beside it are about; @medplum/ccda makes nothing of an act of that template. One that names its
 * procedure is handed to it as the procedure entry it stands for (classCode PROC, the Procedure Activity template
 * first), so it becomes a Procedure with its code and time, under the id it has. One that names none is context
 * only, and an information issue at the entry says so.
 */
function readProcedureContexts(info: SectionInfo, issues: CdaIssue[]): void {
  asNodes(info.section.entry).forEach((entry, e) => {
    const acts = asNodes(entry.act);
    const context = acts.find((act) => asNodes(act.templateId).some((id) => id['@_root'] === PROCEDURE_CONTEXT));
    if (context === undefined || acts.length !== 1) return;
    const code = asNodes(context.code)[0];
    const named = code !== undefined && (typeof code['@_code'] === 'string' || code.originalText !== undefined);
    if (!named || (context['@_moodCode'] ?? 'EVN') !== 'EVN') {
      issues.push({
        severity: 'information',
        code: 'entries-not-converted',
        text: 'a procedure context act that names no procedure done sets the context of the statements beside it; it is not a statement of its own and was not converted',
        location: `${info.location}/entry[${e + 1}]/act`,
      });
      return;
    }
    delete entry.act;
    entry.procedure = [{ ...context, '@_classCode': 'PROC', templateId: [{ '@_root': PROCEDURE_ACTIVITY }, ...asNodes(context.templateId)] }];
  });
}

/** A section's templateId roots, in order. */
function templateRootsOf(section: Node): string[] {
  return asNodes(section.templateId).map((templateId) => templateId['@_root']).filter((root): root is string => typeof root === 'string' && root !== '');
}

/**
 * A section whose entries were not all converted gets an issue, unless an issue of each entry it left out already
 * says so (an `entries-not-converted` issue at that entry: a directive stated as absent, an administration with no
 * time): the reader sees why once, at the entry, not again as a count.
 */
function reportSections(sections: SectionInfo[], counts: Array<number | undefined>, referenced: ReadonlyArray<ReadonlySet<string>>, issues: CdaIssue[]): void {
  sections.forEach((info, i) => {
    const converted = counts[i];
    if (converted === undefined || info.statements === 0 || converted >= info.statements) return;
    const explained = explainedEntryNames(info.location, issues);
    if (converted + explained.size >= info.statements) return;
    if (converted === 0 && templateRootsOf(info.section).some((root) => ABOUT_THE_DOCUMENT.has(root))) {
      issues.push({
        severity: 'information',
        code: 'entries-not-converted',
        text: `section ${info.title} says why the document was written: its entries are about the document, not the patient, and its narrative is kept in the Composition`,
        location: info.location,
      });
    } else if (converted === 0 && templateRootsOf(info.section).some((root) => REFERENCES_ONLY.has(root))) {
      issues.push({
        severity: 'information',
        code: 'entries-not-converted',
        text: `section ${info.title} lists the DICOM study, series and instances the report refers to: references to images kept in an archive, not clinical statements; its narrative is kept in the Composition`,
        location: info.location,
      });
    } else if (info.kind === undefined && info.converter === undefined && converted === 0) {
      issues.push({
        severity: 'warning',
        code: 'section-not-supported',
        text: `section ${info.title} is not a kind the converter knows (templateId ${templateRoots(info.section)}); its ${info.statements} entries were not converted and its narrative is kept in the Composition`,
        location: info.location,
      });
    } else {
      const missing = info.statements - converted - explained.size;
      const which = unconvertedEntries(info.section, referenced[i] ?? new Set(), explained);
      // Named only when the entries found are exactly those the count misses: a converter may name a resource by
      // an id other than its statement's, and then the list would not be sure.
      const named = which.length === missing && missing <= 10 ? `: ${which.join('; ')}` : '';
      issues.push({
        severity: 'warning',
        code: 'entries-not-converted',
        text: `section ${info.title}: ${info.statements - converted} of ${info.statements} entries were not converted${named}`,
        location: info.location,
      });
    }
  });
}

/** The ids each section of the Composition lists as its entries (`Type/id` references), by section. */
function referencedIds(composition: FhirResource | undefined): Array<Set<string>> {
  const sections = ((composition as { section?: Array<{ entry?: Array<{ reference?: unknown }> }> } | undefined)?.section ?? []);
  return sections.map((section) => new Set((section.entry ?? []).map((entry) => (typeof entry.reference === 'string' ? entry.reference.slice(entry.reference.indexOf('/') + 1) : ''))));
}

/**
 * The section's entries none of whose statements (at any depth) became a resource the section lists, leaving out
 * those an issue of their own explains: each as `entry[n] (kind, templateId root)`, for the reader to find it.
 * Statement ids are the ones normalize.ts put first on each statement.
 */
function unconvertedEntries(section: Node, referenced: ReadonlySet<string>, explained: ReadonlySet<string>): string[] {
  const found: string[] = [];
  asNodes(section.entry).forEach((entry, e) => {
    const name = `/entry[${e + 1}]`;
    if (explained.has(name) || (e === 0 && explained.has('/entry'))) return;
    if (statementIds(entry, 0).some((id) => referenced.has(id))) return;
    const [kind, statement] = Object.entries(entry).find(([key, value]) => !key.startsWith('@_') && key !== 'templateId' && value !== null && typeof value === 'object') ?? [];
    if (kind === undefined) return;
    const root = templateRootsOf(asNodes(statement)[0] ?? {})[0];
    found.push(`entry[${e + 1}] (${kind}${root === undefined ? '' : `, ${root}`})`);
  });
  return found;
}

/** The first id root of every node under `node` (normalize.ts puts each statement's own id first). */
function statementIds(node: Node, depth: number): string[] {
  if (depth > 32) return [];
  const ids: string[] = [];
  const root = asNodes(node.id)[0]?.['@_root'];
  if (typeof root === 'string') ids.push(root);
  for (const [key, value] of Object.entries(node)) {
    if (key.startsWith('@_') || key === 'id' || key === 'text' || key === 'code' || key === 'value') continue;
    for (const child of asNodes(value)) for (const id of statementIds(child, depth + 1)) ids.push(id);
  }
  return ids;
}

/** The entries of the section at `location` that an issue of their own says were not converted (`/entry[n]`). */
function explainedEntryNames(location: string, issues: readonly CdaIssue[]): Set<string> {
  const entries = new Set<string>();
  const prefix = `${location}/entry`;
  for (const issue of issues) {
    if (issue.code !== 'entries-not-converted' || issue.location === undefined || !issue.location.startsWith(prefix)) continue;
    entries.add(/^\/entry(\[\d+\])?/.exec(issue.location.slice(location.length))?.[0] ?? issue.location);
  }
  return entries;
}

function templateRoots(section: Node): string {
  const roots = templateRootsOf(section);
  return roots.length > 0 ? roots.join(', ') : 'none';
}

/** The converter's warnings, counted by kind: it names observation value types it leaves out. */
function reportWarnings(warnings: string[], issues: CdaIssue[]): void {
  const counts = new Map<string, number>();
  for (const warning of warnings) {
    const valueType = /^Unhandled observation value type: ([\w:.-]{1,40})$/.exec(warning)?.[1];
    const key = valueType === undefined ? 'other' : valueType;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  for (const [valueType, count] of counts) {
    issues.push({
      severity: 'information',
      code: 'value-not-converted',
      text: valueType === 'other' ? `${count} value(s) could not be converted` : `${count} observation value(s) of type ${valueType} were left out`,
    });
  }
}

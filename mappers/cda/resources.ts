/**
 * What @medplum/ccda returns, completed and corrected into resources anchorline stores, and the drafts for them.
 *
 * Completed: Composition.subject, identifier and relatesTo (a FHIR document needs its subject); the Patient's
 * identifiers with the systems the HL7 v2 side uses and its birth date at the precision sent; a DocumentReference
 * for the stored document. Corrected, where the converter's output is valid FHIR but says something the document
 * does not: date-only values it turned into midnight UTC, every allergy filed as a food allergy, every dose as
 * international units, a non-standard verification status system, a placeholder author. Removed: empty elements,
 * `meta.profile` claims nobody checked, organizations with neither a name nor an identifier.
 *
 * Drafts: what a document describes of its own clinical statements it describes whole (complete drafts: an element
 * the new version lacks is removed), while the people and organizations it mentions are shared with other documents
 * and feeds and only updated with what this one says. The Patient's identifiers are only ever added to.
 */

import { createHash } from 'node:crypto';

import { deterministicId } from '../ids.ts';
import type { Hl7MappingOptions, ResourceDraft } from '../types.ts';
import { toFhirDate, toFhirDateTime } from '../hl7v2/datatypes.ts';

import { asNodes, firstUsableId, type DatePrecision, type ElementFacts, type NormalizeResult } from './normalize.ts';
import { cdaDateTime, cdaPeriod } from './times.ts';
import { decimalFromLiteral, decimalValue, isLosslessNumber, type FhirDecimal } from '../fhir-decimal.ts';

type Node = Record<string, unknown>;

/** The header facts the intake stores the document under. */
export interface CdaDocumentFacts {
  /** ClinicalDocument/id. */
  id: { root: string; extension?: string };
  /** root^extension (root alone without an extension): the inbox control id, so a resend is a duplicate. */
  controlId: string;
  /** ClinicalDocument/code/@code (a LOINC document type), when sent. */
  typeCode?: string;
  /** ClinicalDocument/effectiveTime as sent. */
  effectiveTime: string;
  /** root^extension of the authoring organization, else of the custodian; undefined when neither has an id. */
  senderOrganization?: string;
}

export interface FhirResource {
  resourceType: string;
  id: string;
  [element: string]: unknown;
}

const OID = /^[0-2](\.(0|[1-9]\d*))+$/;
const UUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

/**
 * A CDA II as a FHIR Identifier: root + extension -> system urn:oid:<root> (urn:uuid: for a UUID root), value the
 * extension; a root alone is itself the identifier (system urn:ietf:rfc:3986). The same system an HL7 v2 CX-4 with
 * that OID as an ISO universal id gets, so the same patient identifier names the same Patient.
 */
export function iiIdentifier(id: Node): { system: string; value: string } {
  const root = String(id['@_root']);
  const extension = typeof id['@_extension'] === 'string' && id['@_extension'] !== '' ? id['@_extension'] : undefined;
  const rootUri = OID.test(root) ? `urn:oid:${root}` : UUID.test(root) ? `urn:uuid:${root.toLowerCase()}` : `urn:anchorline:authority:${encodeURIComponent(root)}`;
  return extension === undefined ? { system: 'urn:ietf:rfc:3986', value: rootUri } : { system: rootUri, value: extension };
}

// ---------------------------------------------------------------------------------------------------------------
// Completing the converter's resources

export interface CompleteContext {
  ccda: Node;
  mapping: Hl7MappingOptions;
  normalized: NormalizeResult;
  document: CdaDocumentFacts;
  patientId: string;
  compositionId: string;
  /** Inside an HL7 v2 message: no Patient and no DocumentReference from the document. */
  embedded: boolean;
  /** The document's bytes as received. */
  raw: Buffer;
  source?: { sha256: Buffer; size: number };
}

export interface Completed {
  /** Composition first, then the Patient (when the document makes one), then the rest in document order. */
  resources: FhirResource[];
  documentReference?: FhirResource;
  eventTime?: string;
}

const DATA_ABSENT_REASON = 'http://hl7.org/fhir/StructureDefinition/data-absent-reason';
const CONDITION_VER_STATUS = 'http://terminology.hl7.org/CodeSystem/condition-ver-status';
const V3_CONFIDENTIALITY = 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality';
const CONFIDENTIALITY_CODES = new Set(['U', 'L', 'M', 'N', 'R', 'V']);
const FORMAT_CODE_SYSTEM = 'http://ihe.net/fhir/ihe.formatcode.fhir/CodeSystem/formatcode';
const US_REALM_HEADER = '2.16.840.1.113883.10.20.22.1.1';
const RELATIONSHIPS: Readonly<Record<string, string>> = { RPLC: 'replaces', APND: 'appends', XFRM: 'transforms' };

export function completeResources(converted: FhirResource[], context: CompleteContext): Completed {
  const byKey = new Map<string, FhirResource>();
  for (const resource of converted) {
    if (resource === undefined || resource === null) continue;
    const key = `${resource.resourceType}/${resource.id}`;
    const known = byKey.get(key);
    // The same author, performer or organization mentioned again: one resource, the first mention filled in by later ones.
    if (known === undefined) byKey.set(key, resource);
    else for (const [name, value] of Object.entries(resource)) if (known[name] === undefined) known[name] = value;
  }
  repointRandomIds(byKey, context);
  if (context.embedded) byKey.delete(`Patient/${context.patientId}`);

  const resources: FhirResource[] = [];
  for (const resource of byKey.values()) {
    const tidied = tidy(resource, context.normalized.precision, context.mapping.codeSystems ?? {}) as FhirResource | undefined;
    if (tidied !== undefined) resources.push(tidied);
  }
  const facts = context.normalized.facts;
  for (const resource of resources) correct(resource, facts, context.normalized.precision);
  const kept = dropEmptyOrganizations(resources, context);

  const composition = kept.find((resource) => resource.resourceType === 'Composition')!;
  finishComposition(composition, context);
  if (!context.embedded) finishPatient(kept.find((resource) => resource.resourceType === 'Patient' && resource.id === context.patientId), context);
  const ordered = [composition, ...kept.filter((resource) => resource.resourceType === 'Patient'), ...kept.filter((resource) => resource !== composition && resource.resourceType !== 'Patient')];

  const eventTime = instantOf(composition.date);
  const documentReference = context.embedded ? undefined : buildDocumentReference(composition, context);
  return { resources: ordered, ...(documentReference ? { documentReference } : {}), ...(eventTime ? { eventTime } : {}) };
}

/**
 * Resource ids the converter made up: for an element normalize.ts could not give an id (text where the element
 * belongs, which the converter still turns into a resource) or an element kind a later version of the converter
 * starts reading. They are replaced by ids from the document and the resource's place in it, with every reference
 * to them, so that no random id reaches the store.
 */
function repointRandomIds(byKey: Map<string, FhirResource>, context: CompleteContext): void {
  const renamed = new Map<string, string>();
  let ordinal = 0;
  for (const resource of byKey.values()) {
    ordinal++;
    if (context.normalized.ids.has(resource.id) && (resource.resourceType !== 'Patient' || resource.id === context.patientId)) continue;
    // The converter takes the patient id given to it only when it is a UUID (ids the HL7 v2 mappers make are).
    const id = resource.resourceType === 'Patient' ? context.patientId : deterministicId('CdaElement', context.document.id.root, context.document.id.extension ?? '', resource.resourceType, `converted-${ordinal}`);
    renamed.set(`${resource.resourceType}/${resource.id}`, `${resource.resourceType}/${id}`);
    resource.id = id;
  }
  if (renamed.size === 0) return;
  const entries = [...byKey.values()];
  byKey.clear();
  for (const resource of entries) byKey.set(`${resource.resourceType}/${resource.id}`, repointReferences(resource, renamed) as FhirResource);
}

function repointReferences(value: unknown, renamed: ReadonlyMap<string, string>): unknown {
  if (Array.isArray(value)) return value.map((item) => repointReferences(item, renamed));
  // A decimal kept as sent (a LosslessNumber, `5.40`) is a value, not an element to rebuild.
  if (value === null || typeof value !== 'object' || isLosslessNumber(value)) return value;
  const out: Node = {};
  for (const [name, member] of Object.entries(value)) {
    out[name] = name === 'reference' && typeof member === 'string' && renamed.has(member) ? renamed.get(member) : repointReferences(member, renamed);
  }
  return out;
}

/**
 * A converted value without empty parts (undefined, '', NaN, [], {}), dates given back the precision they were sent
 * with, and local code systems named by OID mapped to their URIs (mapping config `codeSystems` keyed by the OID).
 * `meta` is dropped: the converter claims US Core profiles that nothing here checks, and the store owns meta.
 * Works in place (the converter's output is ours alone; this runs on every element of every document, and copying
 * it all showed in the conversion's cost); frozen constants are left as they are. Returns undefined when nothing
 * is left.
 */
function tidy(value: unknown, precision: DatePrecision, codeSystems: Readonly<Record<string, string>>, top = true): unknown {
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value === 'string') return precision.restore(value);
  if (typeof value === 'number') return Number.isFinite(value) ? value : undefined;
  if (typeof value !== 'object' || Object.isFrozen(value)) return value;
  if (Array.isArray(value)) {
    let kept = 0;
    for (let i = 0; i < value.length; i++) {
      const item = tidy(value[i], precision, codeSystems, false);
      if (item !== undefined) value[kept++] = item;
    }
    value.length = kept;
    return kept > 0 ? value : undefined;
  }
  const node = value as Node;
  let kept = 0;
  for (const name of Object.keys(node)) {
    if (top && name === 'meta') {
      delete node[name];
      continue;
    }
    let tidied = tidy(node[name], precision, codeSystems, false);
    if (tidied === undefined) {
      delete node[name];
      continue;
    }
    if (name === 'system' && typeof tidied === 'string' && node.code !== undefined) tidied = codeSystemUri(tidied, codeSystems);
    node[name] = tidied;
    kept++;
  }
  return kept > 0 ? node : undefined;
}

/**
 * Code systems named by OID that the converter leaves as urn:oid: (or names wrongly), by their FHIR URI; a mapping
 * config's `codeSystems` entry keyed by the OID wins (a national code system such as KCD).
 */
const CODE_SYSTEM_URIS: Readonly<Record<string, string>> = {
  '2.16.840.1.113883.6.3': 'http://hl7.org/fhir/sid/icd-10',
  '2.16.840.1.113883.6.90': 'http://hl7.org/fhir/sid/icd-10-cm',
  '2.16.840.1.113883.6.103': 'http://hl7.org/fhir/sid/icd-9-cm',
  '2.16.840.1.113883.6.8': 'http://unitsofmeasure.org',
  '2.16.840.1.113883.5.4': 'http://terminology.hl7.org/CodeSystem/v3-ActCode',
  '2.16.840.1.113883.5.6': 'http://terminology.hl7.org/CodeSystem/v3-ActClass',
  '2.16.840.1.113883.5.25': 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality',
  '2.16.840.1.113883.5.83': 'http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation',
  '2.16.840.1.113883.5.1008': 'http://terminology.hl7.org/CodeSystem/v3-NullFlavor',
  '2.16.840.1.113883.12.74': 'http://terminology.hl7.org/CodeSystem/v2-0074',
  '2.16.840.1.113883.5.8': 'http://terminology.hl7.org/CodeSystem/v3-ActReason',
  '2.16.840.1.113883.5.110': 'http://terminology.hl7.org/CodeSystem/v3-RoleClass',
  '2.16.840.1.113883.5.112': 'http://terminology.hl7.org/CodeSystem/v3-RouteOfAdministration',
  '2.16.840.1.113883.5.85': 'http://terminology.hl7.org/CodeSystem/v3-orderableDrugForm',
  '2.16.840.1.113883.5.88': 'http://terminology.hl7.org/CodeSystem/v3-ParticipationFunction',
  '2.16.840.1.113883.12.112': 'http://terminology.hl7.org/CodeSystem/v2-0112',
  '2.16.840.1.113883.6.259': 'https://www.cdc.gov/nhsn/cdaportal/terminology/codesystem/hsloc.html',
  '2.16.840.1.113883.12.227': 'http://hl7.org/fhir/sid/mvx',
  '2.16.840.1.113883.3.221.5': 'https://nahdo.org/sopt',
};

function codeSystemUri(system: string, codeSystems: Readonly<Record<string, string>>): string {
  // The converter names v3 Confidentiality by its bare name.
  if (system === 'Confidentiality') return V3_CONFIDENTIALITY;
  if (!system.startsWith('urn:oid:')) return system;
  const oid = system.slice('urn:oid:'.length);
  if (Object.hasOwn(codeSystems, oid)) return codeSystems[oid]!;
  return Object.hasOwn(CODE_SYSTEM_URIS, oid) ? CODE_SYSTEM_URIS[oid]! : system;
}

/** Corrections of what the converter states wrongly, by resource type. */
function correct(resource: FhirResource, facts: NormalizeResult['facts'], precision: DatePrecision): void {
  // A CDA II with a root and no extension is itself the identifier: FHIR says so with the RFC 3986 system.
  if (Array.isArray(resource.identifier)) {
    resource.identifier = (resource.identifier as Array<{ system?: string; value?: string }>).map((identifier) =>
      identifier.value === undefined && identifier.system?.startsWith('urn:') ? { system: 'urn:ietf:rfc:3986', value: identifier.system } : identifier,
    );
  }
  switch (resource.resourceType) {
    case 'Organization': {
      // The converter copies a <name use="..."> element as the parsed element rather than its text.
      if (resource.name !== undefined && typeof resource.name !== 'string') {
        const text = (resource.name as Node | null)?.['#text'];
        if (typeof text === 'string' && text.trim() !== '') resource.name = text.trim();
        else delete resource.name;
      }
      // An organization has no home (org-2, org-3): a sender's use="HP" on its address or number says nothing of it.
      for (const list of ['telecom', 'address']) {
        for (const item of (resource[list] as Array<Node> | undefined) ?? []) if (item?.use === 'home') delete item.use;
      }
      break;
    }
    case 'Condition': {
      // The converter files problem-list verification under a code system that does not exist in R4.
      const status = resource.verificationStatus as { coding?: Array<{ system?: string }> } | undefined;
      for (const coding of status?.coding ?? []) if (coding.system?.endsWith('/CodeSystem/condition-verification')) coding.system = CONDITION_VER_STATUS;
      // The converter keeps a problem active whatever its status; one with an abatement date is over (con-4).
      const clinical = (resource.clinicalStatus as { coding?: Array<{ code?: string }> } | undefined)?.coding?.[0];
      if (resource.abatementDateTime !== undefined && clinical !== undefined && ['active', 'recurrence', 'relapse'].includes(clinical.code ?? '')) clinical.code = 'resolved';
      break;
    }
    case 'AllergyIntolerance': {
      // The converter files every allergy as a food allergy; the allergy observation's value says which it is.
      const kind = ALLERGY_KINDS[facts.get(resource.id)?.allergyType ?? ''];
      if (kind === undefined) delete resource.category;
      else resource.category = [kind.category];
      resource.type = kind?.type;
      if (resource.type === undefined) delete resource.type;
      break;
    }
    case 'MedicationRequest': {
      // The converter states every dose in international units; the dose quantity's own unit (UCUM) is the dose.
      if (resource.medicationCodeableConcept === undefined && resource.medicationReference === undefined) resource.medicationCodeableConcept = UNKNOWN_CONCEPT;
      const dosage = (resource.dosageInstruction as Array<{ timing?: { repeat?: Node }; doseAndRate?: Array<{ doseQuantity?: Node }> }> | undefined)?.[0];
      const repeat = dosage?.timing?.repeat;
      // A PIVL_TS period in a unit FHIR timing has no code for (or without a number) says nothing usable; what else
      // the timing says (bounds, an event) stands.
      if (repeat !== undefined && (repeat.period !== undefined || repeat.periodUnit !== undefined) && (!UNITS_OF_TIME.has(String(repeat.periodUnit ?? '')) || repeat.period === undefined)) {
        delete repeat.period;
        delete repeat.periodUnit;
        if (Object.keys(repeat).length === 0) delete dosage!.timing!.repeat;
        if (Object.keys(dosage!.timing!).length === 0) delete dosage!.timing;
      }
      const dose = facts.get(resource.id)?.doseQuantity;
      const doseAndRate = dosage?.doseAndRate?.[0];
      // Only a dose quantity is restored (a dose range or a rate alone is as sent).
      if (doseAndRate?.doseQuantity !== undefined) {
        const value = dose?.value === undefined ? Number.NaN : Number(dose.value);
        if (!Number.isFinite(value)) delete dosage!.doseAndRate;
        else {
          const exact = asSent(dose!.value!, value);
          doseAndRate.doseQuantity = dose?.unit ? { value: exact, unit: dose.unit, system: 'http://unitsofmeasure.org', code: dose.unit } : { value: exact };
        }
      }
      break;
    }
    case 'Procedure': {
      // 'active' is a C-CDA status the converter passes through; FHIR's event-status calls it in-progress.
      if (resource.status === 'active') resource.status = 'in-progress';
      if (resource.performedDateTime === undefined && resource.performedPeriod === undefined) {
        const performed = sentValue(facts.get(resource.id)?.effectiveValue, precision);
        if (performed !== undefined) resource.performedDateTime = performed;
      }
      break;
    }
    case 'Observation': {
      // An organizer without a code (a family history organizer) still groups its members; its code is not known.
      if (resource.code === undefined) resource.code = { extension: [{ url: DATA_ABSENT_REASON, valueCode: 'unknown' }] };
      const quantities = facts.get(resource.id)?.quantities;
      if (quantities !== undefined) restoreQuantities(resource, quantities);
      const interval = facts.get(resource.id)?.effectiveInterval;
      if (interval !== undefined && resource.effectiveDateTime === undefined && resource.effectivePeriod === undefined) {
        // Read after the tidy step, so the dates normalize.ts encoded are restored here.
        const period = cdaPeriod(interval, (ts) => sentValue(ts, precision));
        if (period !== undefined) resource.effectivePeriod = period;
      }
      // A reference range the converter made of a narrative reference alone has neither bounds nor text (obs-3).
      if (Array.isArray(resource.referenceRange)) {
        const ranges = (resource.referenceRange as Node[]).filter((range) => range.low !== undefined || range.high !== undefined || range.text !== undefined);
        if (ranges.length > 0) resource.referenceRange = ranges;
        else delete resource.referenceRange;
      }
      break;
    }
    case 'Goal':
      // Statuses outside the converter's table come out as nothing; lifecycleStatus is required.
      if (resource.lifecycleStatus === undefined) resource.lifecycleStatus = 'active';
      // So is description: a goal sent as a nullFlavor value says only that it is not known.
      if (resource.description === undefined || (typeof resource.description === 'object' && resource.description !== null && Object.keys(resource.description).length === 0)) resource.description = UNKNOWN_CONCEPT;
      break;
    case 'Immunization':
      // Both are required in FHIR and may be absent (nullFlavor) in a document: say so rather than guess.
      if (resource.vaccineCode === undefined) resource.vaccineCode = UNKNOWN_CONCEPT;
      if (resource.occurrenceDateTime === undefined && resource.occurrenceString === undefined) resource.occurrenceString = 'unknown';
      break;
    case 'Encounter': {
      // The converter files the encounter's type code (often CPT) as its v3 ActCode class; only ActEncounterCode
      // values are classes.
      const encounterClass = resource.class as { code?: string } | undefined;
      if (!ENCOUNTER_CLASSES.has(encounterClass?.code ?? '')) resource.class = { extension: [{ url: DATA_ABSENT_REASON, valueCode: 'unknown' }] };
      // A planned visit has not begun, whatever its ActStatus; one called off stays cancelled.
      if (facts.get(resource.id)?.planned && resource.status !== 'cancelled') resource.status = 'planned';
      if (resource.period === undefined) {
        const start = sentValue(facts.get(resource.id)?.effectiveValue, precision);
        if (start !== undefined) resource.period = { start };
      }
      break;
    }
    default:
      break;
  }
}

/**
 * A number the converter read from `text` with parseFloat, as the decimal sent (`5.40`, ../fhir-decimal.ts) when the
 * text is a plain decimal of that value; else the number as it is.
 */
function asSent(text: string, value: number): FhirDecimal {
  const decimal = decimalFromLiteral(text.trim());
  return decimal !== undefined && decimalValue(decimal) === value ? decimal : value;
}

/**
 * The Observation's valueQuantity and reference range bounds with the precision sent. Output ranges are matched to
 * the source ranges in order (the converter leaves out only a range with neither bounds nor text, which would shift
 * the later ones), and a number is replaced only by a text of the same value: a mismatch leaves the converter's number.
 */
function restoreQuantities(resource: FhirResource, quantities: NonNullable<ElementFacts['quantities']>): void {
  const restore = (quantity: unknown, text: string | undefined): void => {
    if (text === undefined || quantity === null || typeof quantity !== 'object') return;
    const holder = quantity as { value?: unknown };
    if (typeof holder.value === 'number') holder.value = asSent(text, holder.value);
  };
  restore(resource.valueQuantity, quantities.value);
  const ranges = Array.isArray(resource.referenceRange) ? (resource.referenceRange as Array<{ low?: unknown; high?: unknown }>) : [];
  ranges.forEach((range, i) => {
    restore(range?.low, quantities.ranges[i]?.low);
    restore(range?.high, quantities.ranges[i]?.high);
  });
}

const UNKNOWN_CONCEPT = Object.freeze({ extension: [{ url: DATA_ABSENT_REASON, valueCode: 'unknown' }] });
/** v3 ActEncounterCode: the codes Encounter.class takes. */
const ENCOUNTER_CLASSES = new Set(['AMB', 'EMER', 'FLD', 'HH', 'IMP', 'ACUTE', 'NONAC', 'OBSENC', 'PRENC', 'SS', 'VR']);
/** FHIR units-of-time (UCUM time units), the codes Timing.repeat.periodUnit takes. */
const UNITS_OF_TIME = new Set(['s', 'min', 'h', 'd', 'wk', 'mo', 'a']);

/** SNOMED CT allergy and intolerance types (the C-CDA Allergy - Intolerance Type value set) -> FHIR type and category. */
const ALLERGY_KINDS: Readonly<Record<string, { type?: string; category: string }>> = {
  '416098002': { type: 'allergy', category: 'medication' },
  '59037007': { type: 'intolerance', category: 'medication' },
  '419511003': { category: 'medication' },
  '414285001': { type: 'allergy', category: 'food' },
  '235719002': { type: 'intolerance', category: 'food' },
  '418471000': { category: 'food' },
  '426232007': { type: 'allergy', category: 'environment' },
};

/**
 * Organizations with neither a name nor an identifier (a performer with no represented organization) are not
 * valid FHIR (org-1) and say nothing: left out, with the references to them.
 */
function dropEmptyOrganizations(resources: FhirResource[], context: CompleteContext): FhirResource[] {
  const dropped = new Set<string>();
  for (const resource of resources) {
    if (resource.resourceType === 'Organization' && resource.name === undefined && resource.identifier === undefined) dropped.add(`Organization/${resource.id}`);
  }
  if (dropped.size === 0) return resources;
  const kept: FhirResource[] = [];
  for (const resource of resources) {
    if (dropped.has(`${resource.resourceType}/${resource.id}`)) continue;
    // Such organizations come from a performer (assignedEntity), and only the PractitionerRole made with them refers to them.
    if (resource.resourceType !== 'PractitionerRole') {
      kept.push(resource);
      continue;
    }
    const stripped = tidy(stripReferences(resource, dropped), context.normalized.precision, {}) as FhirResource | undefined;
    if (stripped !== undefined) kept.push(stripped);
  }
  return kept;
}

function stripReferences(value: unknown, dropped: ReadonlySet<string>): unknown {
  if (Array.isArray(value)) return value.map((item) => stripReferences(item, dropped));
  // A decimal kept as sent (a LosslessNumber, `5.40`) is a value, not an element to rebuild.
  if (value === null || typeof value !== 'object' || isLosslessNumber(value)) return value;
  if (typeof (value as Node).reference === 'string' && dropped.has((value as Node).reference as string)) return undefined;
  const out: Node = {};
  for (const [name, member] of Object.entries(value)) out[name] = stripReferences(member, dropped);
  return out;
}

function finishComposition(composition: FhirResource, context: CompleteContext): void {
  const { ccda, document } = context;
  composition.identifier = documentIdentifier(document);
  composition.subject = { reference: `Patient/${context.patientId}` };
  // The converter puts its own name where a document has no author; say the author is not known instead.
  if (asNodes(ccda.author).length === 0) composition.author = [{ extension: [{ url: DATA_ABSENT_REASON, valueCode: 'unknown' }] }];
  if (typeof composition.confidentiality === 'string' && !CONFIDENTIALITY_CODES.has(composition.confidentiality)) delete composition.confidentiality;
  if (typeof ccda.title !== 'string' || ccda.title.trim() === '') {
    const display = (ccda.code as Node | undefined)?.['@_displayName'];
    composition.title = typeof display === 'string' && display !== '' ? display : 'Clinical document';
  }
  const relatesTo = relatedDocuments(ccda).map(({ code, id }) => ({ code, targetReference: { reference: `Composition/${deterministicId('CdaElement', id.root, id.extension ?? '')}` } }));
  if (relatesTo.length > 0) composition.relatesTo = relatesTo;
  if (composition.date === undefined) composition.date = toFhirDateTime(document.effectiveTime, 'effectiveTime', context.mapping.timeZone);
  // Key order as FHIR lists the elements, so that stored documents read naturally.
  reorder(composition, ['resourceType', 'id', 'identifier', 'language', 'status', 'type', 'subject', 'encounter', 'date', 'author', 'title', 'confidentiality', 'attester', 'custodian', 'relatesTo', 'event', 'section']);
}

/** ClinicalDocument/id as an Identifier (the facts were read before normalize.ts put the Composition's id first). */
function documentIdentifier(document: CdaDocumentFacts): { system: string; value: string } {
  return iiIdentifier({ '@_root': document.id.root, ...(document.id.extension ? { '@_extension': document.id.extension } : {}) });
}

/** relatedDocument/parentDocument: what this document replaces, appends to or transforms. */
function relatedDocuments(ccda: Node): Array<{ code: string; id: { root: string; extension?: string }; setId?: Node }> {
  const related: Array<{ code: string; id: { root: string; extension?: string } }> = [];
  for (const relation of asNodes(ccda.relatedDocument)) {
    const code = RELATIONSHIPS[String(relation['@_typeCode'] ?? '')];
    const parentId = firstUsableId(asNodes(relation.parentDocument)[0]?.id);
    if (code === undefined || parentId === undefined) continue;
    const extension = parentId['@_extension'];
    related.push({ code, id: { root: String(parentId['@_root']), ...(typeof extension === 'string' && extension !== '' ? { extension } : {}) } });
  }
  return related;
}

/** An extension with a value (value[x]) or with extensions of its own. */
function hasContent(extension: Node): boolean {
  if (Array.isArray(extension.extension) && extension.extension.length > 0) return true;
  return Object.keys(extension).some((key) => key.startsWith('value') && extension[key] !== undefined && extension[key] !== null);
}

/** The Patient as the document names it: every identifier (with the HL7 side's systems), birth date as precise as sent. */
function finishPatient(patient: FhirResource | undefined, context: CompleteContext): void {
  if (patient === undefined) return;
  const patientRole = asNodes(asNodes(context.ccda.recordTarget)[0]?.patientRole)[0]!;
  const identifiers: Array<{ system: string; value: string }> = [];
  for (const id of asNodes(patientRole.id)) {
    if (typeof id['@_root'] !== 'string' || id['@_root'] === '' || id['@_nullFlavor'] !== undefined || id['@_root'] === context.patientId) continue;
    const identifier = iiIdentifier(id);
    if (!identifiers.some((known) => known.system === identifier.system && known.value === identifier.value)) identifiers.push(identifier);
  }
  patient.identifier = identifiers;
  const birthTime = (asNodes(patientRole.patient)[0]?.birthTime as Node | undefined)?.['@_value'];
  let birthDate: string | undefined;
  try {
    birthDate = typeof birthTime === 'string' ? toFhirDate(birthTime.slice(0, 8), 'birthTime') : undefined;
  } catch {
    birthDate = undefined;
  }
  if (birthDate === undefined) delete patient.birthDate;
  else patient.birthDate = birthDate;
  // A race or ethnicity sent as a nullFlavor with its text alone comes out of the converter as an ombCategory with no
  // coding (ext-1: an extension has a value or extensions): those are left out, and an extension left empty with them.
  if (Array.isArray(patient.extension)) {
    const extensions = (patient.extension as Node[])
      .map((extension) => (Array.isArray(extension.extension) ? { ...extension, extension: (extension.extension as Node[]).filter(hasContent) } : extension))
      .filter(hasContent);
    if (extensions.length > 0) patient.extension = extensions;
    else delete patient.extension;
  }
  reorder(patient, ['resourceType', 'id', 'extension', 'identifier', 'name', 'telecom', 'gender', 'birthDate', 'address', 'communication']);
}

/**
 * The DocumentReference for the stored document: what it is (type, date, authors, custodian, confidentiality, the
 * ids of the document and its set), which document it replaces, and where the exact bytes are: the message store,
 * named by their SHA-256 (`urn:anchorline:message:<hex>`; the bytes are served at
 * /proofs/DocumentReference/{id}/_history/{vid}/source and /admin/messages/{id}), with their size and the SHA-1
 * FHIR R4 defines Attachment.hash as.
 */
function buildDocumentReference(composition: FhirResource, context: CompleteContext): FhirResource | undefined {
  const { ccda } = context;
  const masterIdentifier = documentIdentifier(context.document);
  const setId = firstUsableId(ccda.setId);
  const date = instantOf(composition.date);
  const attachment: Node = {
    // IHE document sharing (XDS mimeType) and C-CDA on FHIR name CDA documents text/xml.
    contentType: 'text/xml',
    language: composition.language,
    title: composition.title,
    creation: composition.date,
  };
  if (context.source !== undefined) {
    attachment.url = `urn:anchorline:message:${context.source.sha256.toString('hex')}`;
    attachment.size = context.source.size;
    attachment.hash = attachmentHash(context.raw);
  }
  const format = formatCode(ccda);
  const documentReference: FhirResource = {
    resourceType: 'DocumentReference',
    id: deterministicId('DocumentReference', masterIdentifier.system, masterIdentifier.value),
    masterIdentifier,
    identifier: setId === undefined ? undefined : [iiIdentifier(setId)],
    status: 'current',
    type: composition.type,
    subject: { reference: `Patient/${context.patientId}` },
    date,
    author: (composition.author as Array<Node> | undefined)?.filter((author) => typeof author.reference === 'string'),
    custodian: composition.custodian,
    relatesTo: relatedDocuments(ccda).map(({ code, id }) => {
      const target = iiIdentifier({ '@_root': id.root, ...(id.extension ? { '@_extension': id.extension } : {}) });
      return { code: code === 'replaces' ? 'replaces' : code === 'appends' ? 'appends' : 'transforms', target: { reference: `DocumentReference/${deterministicId('DocumentReference', target.system, target.value)}` } };
    }),
    description: composition.title,
    securityLabel: typeof composition.confidentiality === 'string' ? [{ coding: [{ system: V3_CONFIDENTIALITY, code: composition.confidentiality }] }] : undefined,
    content: [{ attachment, ...(format ? { format: { system: FORMAT_CODE_SYSTEM, code: format } } : {}) }],
    context: {
      period: (composition.event as Array<{ period?: unknown }> | undefined)?.[0]?.period,
      related: [{ reference: `Composition/${context.compositionId}` }],
    },
  };
  return tidy(documentReference, context.normalized.precision, {}) as FhirResource;
}

/** The IHE format code of a C-CDA document (US Realm Header R1.1 or R2.1), structured or not. */
function formatCode(ccda: Node): string | undefined {
  const header = asNodes(ccda.templateId).find((templateId) => templateId['@_root'] === US_REALM_HEADER);
  if (header === undefined) return undefined;
  const release = header['@_extension'] === undefined ? '1.1' : '2.1';
  const structured = (ccda.component as Node | undefined)?.structuredBody !== undefined;
  return `urn:hl7-org:sdwg:ccda-${structured ? 'structuredBody' : 'nonXMLBody'}:${release}`;
}

/** A FHIR dateTime as an instant when it has a time of day; undefined for a date. */
function instantOf(value: unknown): string | undefined {
  if (typeof value !== 'string' || value.length <= 10) return undefined;
  const time = new Date(value);
  return Number.isNaN(time.getTime()) ? undefined : value;
}

function reorder(resource: FhirResource, order: readonly string[]): void {
  const entries = Object.entries(resource);
  for (const [name] of entries) delete resource[name];
  for (const name of order) {
    const entry = entries.find(([key]) => key === name);
    if (entry !== undefined && entry[1] !== undefined) resource[name] = entry[1];
  }
  for (const [name, value] of entries) if (!order.includes(name) && value !== undefined) resource[name] = value;
}

/** SHA-1 of the raw bytes, base64: what FHIR R4 Attachment.hash holds (the SHA-256 is in the url). */
function attachmentHash(raw: Buffer): string {
  return createHash('sha1').update(raw).digest('base64');
}

// ---------------------------------------------------------------------------------------------------------------
// Drafts

/** The elements a document owns of each clinical resource it makes: all of them are in its draft, null when absent. */
const OWNED_ELEMENTS: Readonly<Record<string, readonly string[]>> = {
  Composition: ['identifier', 'language', 'status', 'type', 'subject', 'encounter', 'date', 'author', 'title', 'confidentiality', 'attester', 'custodian', 'relatesTo', 'event', 'section'],
  DocumentReference: ['masterIdentifier', 'identifier', 'status', 'type', 'subject', 'date', 'author', 'custodian', 'relatesTo', 'description', 'securityLabel', 'content', 'context'],
  AllergyIntolerance: ['extension', 'clinicalStatus', 'verificationStatus', 'type', 'category', 'code', 'patient', 'onsetDateTime', 'recordedDate', 'recorder', 'asserter', 'reaction'],
  Condition: ['extension', 'identifier', 'clinicalStatus', 'verificationStatus', 'category', 'code', 'subject', 'encounter', 'onsetDateTime', 'onsetAge', 'abatementDateTime', 'recordedDate', 'recorder', 'asserter', 'evidence', 'note'],
  CarePlan: ['identifier', 'status', 'intent', 'category', 'title', 'description', 'subject'],
  CareTeam: ['identifier', 'participant'],
  Encounter: ['extension', 'identifier', 'status', 'class', 'type', 'subject', 'participant', 'period', 'reasonCode', 'diagnosis', 'hospitalization', 'location', 'serviceProvider'],
  Goal: ['extension', 'identifier', 'lifecycleStatus', 'category', 'description', 'subject', 'startDate', 'target'],
  Immunization: ['extension', 'identifier', 'status', 'statusReason', 'vaccineCode', 'patient', 'occurrenceDateTime', 'occurrenceString', 'manufacturer', 'lotNumber', 'site', 'route', 'doseQuantity', 'performer', 'note', 'reasonCode', 'protocolApplied'],
  Medication: ['code', 'manufacturer', 'form', 'ingredient', 'batch'],
  MedicationAdministration: ['extension', 'identifier', 'status', 'medicationCodeableConcept', 'medicationReference', 'subject', 'effectiveDateTime', 'effectivePeriod', 'performer', 'reasonCode', 'note', 'dosage'],
  MedicationRequest: ['contained', 'extension', 'identifier', 'status', 'intent', 'category', 'doNotPerform', 'medicationCodeableConcept', 'medicationReference', 'subject', 'authoredOn', 'requester', 'reasonCode', 'note', 'dosageInstruction', 'dispenseRequest'],
  MedicationStatement: ['extension', 'identifier', 'status', 'medicationCodeableConcept', 'medicationReference', 'subject', 'effectiveDateTime', 'effectivePeriod', 'dateAsserted', 'informationSource', 'reasonCode', 'note', 'dosage'],
  Observation: [
    'extension', 'identifier', 'status', 'category', 'code', 'subject', 'effectiveDateTime', 'effectivePeriod', 'performer', 'valueQuantity', 'valueCodeableConcept',
    'valueString', 'valueBoolean', 'valueInteger', 'valueRange', 'valueRatio', 'valueDateTime', 'valuePeriod', 'dataAbsentReason', 'interpretation', 'note',
    'bodySite', 'method', 'referenceRange', 'hasMember',
  ],
  DiagnosticReport: ['identifier', 'status', 'category', 'code', 'subject', 'effectiveDateTime', 'effectivePeriod', 'performer', 'result'],
  FamilyMemberHistory: ['identifier', 'status', 'patient', 'name', 'relationship', 'sex', 'bornDate', 'deceasedBoolean', 'deceasedDate', 'condition'],
  Procedure: ['extension', 'identifier', 'status', 'code', 'subject', 'performedDateTime', 'performedPeriod', 'recorder', 'asserter', 'performer', 'location', 'reasonCode', 'bodySite', 'note', 'focalDevice', 'usedCode'],
  Consent: ['extension', 'identifier', 'status', 'scope', 'category', 'patient', 'dateTime', 'performer', 'organization', 'sourceAttachment', 'sourceReference', 'provision'],
  Coverage: ['identifier', 'status', 'type', 'policyHolder', 'subscriber', 'subscriberId', 'beneficiary', 'relationship', 'period', 'payor', 'class', 'order'],
  Device: ['identifier', 'udiCarrier', 'status', 'manufacturer', 'manufactureDate', 'expirationDate', 'lotNumber', 'serialNumber', 'modelNumber', 'type', 'patient'],
  DeviceUseStatement: ['extension', 'identifier', 'status', 'subject', 'timingDateTime', 'timingPeriod', 'recordedOn', 'source', 'device', 'reasonCode', 'note'],
};

/**
 * Drafts in dependency order (the Patient and the people and organizations first, the Composition and the
 * DocumentReference last). Clinical resources are complete drafts; Practitioner, Organization, PractitionerRole and
 * RelatedPerson update drafts; the Patient an update draft whose identifiers are added to the stored ones. The
 * resources themselves become the drafts (their owned elements set to null where absent), not copies: they are
 * built for this conversion alone and every document converts hundreds.
 */
export function toDrafts(resources: FhirResource[], documentReference: FhirResource | undefined, patientId: string, embedded: boolean): ResourceDraft[] {
  const shared: ResourceDraft[] = [];
  const owned: ResourceDraft[] = [];
  let composition: ResourceDraft | undefined;
  for (const resource of resources) {
    if (resource.resourceType === 'Patient' && resource.id === patientId && !embedded) {
      const { identifier, ...rest } = resource;
      shared.unshift({ ...rest, identifier: { $merge: 'add', identifier } });
    } else if (OWNED_ELEMENTS[resource.resourceType] !== undefined) {
      completeDraft(resource);
      if (resource.resourceType === 'Composition') composition = resource;
      else owned.push(resource);
    } else {
      shared.push(resource);
    }
  }
  if (documentReference !== undefined) completeDraft(documentReference);
  return [...shared, ...owned, ...(composition ? [composition] : []), ...(documentReference ? [documentReference] : [])];
}

function completeDraft(resource: FhirResource): void {
  for (const name of OWNED_ELEMENTS[resource.resourceType] ?? []) if (resource[name] === undefined) resource[name] = null;
}

/** A TS (normalize.ts has encoded its date) as the dateTime it was sent as, its precision restored. */
function sentValue(time: unknown, precision: DatePrecision): string | undefined {
  const dateTime = cdaDateTime(time);
  return dateTime === undefined ? undefined : precision.restore(dateTime);
}

/**
 * A C-CDA observation as a FHIR Observation, after C-CDA on FHIR "Result Observation -> Observation": code, status,
 * effective time, a value of any CDA type, interpretation, method, body site, reference ranges, comments, authors as
 * performers, and the observations it relates (entryRelationship) as members. Shared by the converters of sections
 * whose entries are observations (results, functional and mental status, nutrition).
 */

import { decimalFromLiteral, type FhirDecimal } from '../../fhir-decimal.ts';

import {
  absentReason,
  asNodes,
  authorReference,
  codeValue,
  conceptOf,
  earliest,
  effectiveOf,
  identifiersOf,
  isNegated,
  latest,
  narrativeReference,
  one,
  relatedActs,
  relationships,
  resourceId,
  statusOf,
  UCUM,
  unknownConcept,
  unnormalizedDateTime,
  xsiType,
  type Concept,
  type FhirResource,
  type Narrative,
  type Node,
  type Reference,
  type SectionContext,
} from './statements.ts';

export interface ObservationOptions {
  /** Observation.category of every Observation made (members included). */
  category: Concept[];
  narrative: Narrative;
  /** Every resource made is pushed here: the Observation, then its members and the people it names. */
  resources: FhirResource[];
  /** The XPath of the statement, for issues. */
  location: string;
}

/**
 * C-CDA on FHIR ConceptMap CF-ResultStatus (ActStatus -> ObservationStatus). 'active' maps to registered there, which
 * says no result is available yet; an active observation that carries a value is a result not yet final, which FHIR
 * calls preliminary.
 */
export const OBSERVATION_STATUS: Readonly<Record<string, string>> = {
  completed: 'final',
  aborted: 'cancelled',
  cancelled: 'cancelled',
  held: 'registered',
  suspended: 'registered',
  new: 'registered',
  nullified: 'entered-in-error',
};

/** Templates of comments (Comment Activity) and the LOINC code they carry. */
const COMMENT_TEMPLATE = '2.16.840.1.113883.10.20.22.4.64';
const COMMENT_CODE = '48767-8';

/**
 * The Observation of `observation` and of every observation it relates, pushed onto options.resources; the
 * reference to it. Undefined (with an issue) for an observation FHIR has no Observation for: one negated
 * (negationInd) says a finding is absent, which an Observation cannot say without changing its code.
 */
export function convertObservation(observation: Node, context: SectionContext, options: ObservationOptions, owner: string = context.compositionId): Reference | undefined {
  if (isNegated(observation)) {
    // A section's entry left out is an entry not converted (so the section is not reported again for it); a member of
    // one is part of what its entry says.
    if (owner === context.compositionId) context.issue('information', 'entries-not-converted', 'an observation stated as not found (negationInd) was not converted: an Observation cannot negate its value', options.location);
    else context.issue('information', 'value-not-converted', 'an observation stated as not found (negationInd) was left out: an Observation cannot negate its value', options.location);
    return undefined;
  }
  const id = resourceId('Observation', observation, context, owner, `observation-${options.resources.length}`);
  const resource: FhirResource = { resourceType: 'Observation', id };
  // Pushed first, so that it comes before its members and the people it names.
  options.resources.push(resource);

  const value = observationValue(observation, context, options);
  const members: Reference[] = [];
  relationships(observation).forEach((relationship) => {
    for (const child of asNodes(relationship.observation)) {
      const member = convertObservation(child, context, options, id);
      if (member !== undefined) members.push(member);
    }
  });
  const performers = asNodes(observation.author)
    .map((author) => authorReference(author, context, options.resources))
    .filter((reference) => reference !== undefined);
  const interpretation = asNodes(observation.interpretationCode).map((code) => conceptOf(code, context, options.narrative)).filter((concept) => concept !== undefined);
  const notes = comments(observation, options.narrative);

  Object.assign(resource, {
    extension: narrativeReference(observation),
    identifier: identifiersOf(observation, context),
    status: statusFor(observation, value.present, OBSERVATION_STATUS, 'final'),
    category: options.category.length > 0 ? options.category : undefined,
    code: conceptOf(observation.code, context, options.narrative) ?? unknownConcept(options.narrative.textOf(observation.text)),
    subject: { reference: context.patientReference },
    ...effectiveOf(observation.effectiveTime, context),
    performer: performers.length > 0 ? performers : undefined,
    ...value.elements,
    interpretation: interpretation.length > 0 ? interpretation : undefined,
    note: notes.length > 0 ? notes.map((text) => ({ text })) : undefined,
    bodySite: conceptOf(observation.targetSiteCode, context, options.narrative),
    method: conceptOf(observation.methodCode, context, options.narrative),
    referenceRange: referenceRanges(observation, options.narrative),
    hasMember: members.length > 0 ? members : undefined,
  });
  return { reference: `Observation/${id}` };
}

/**
 * A statement's statusCode by `table`; 'active' is preliminary when results are there (`valued`), registered when
 * none is yet; `missing` when the statement sends none. (An observation sent without one reads as active here:
 * normalize.ts gives it that status, which @medplum/ccda reads unguarded.)
 */
export function statusFor(element: Node, valued: boolean, table: Readonly<Record<string, string>>, missing: string): string {
  const status = statusOf(element);
  if (status === undefined) return missing;
  if (status === 'active') return valued ? 'preliminary' : 'registered';
  return table[status] ?? 'unknown';
}

/** An organizer's effective[x]: its own effectiveTime, else from the earliest to the latest of its members'. */
export function spanOf(organizer: Node, members: FhirResource[], context: SectionContext): { effectiveDateTime?: string; effectivePeriod?: { start?: string; end?: string } } {
  const own = effectiveOf(organizer.effectiveTime, context);
  if (own.effectiveDateTime !== undefined || own.effectivePeriod !== undefined) return own;
  const times = members.flatMap((member) => {
    const period = member.effectivePeriod as { start?: string; end?: string } | undefined;
    return [member.effectiveDateTime as string | undefined, period?.start, period?.end];
  });
  const start = earliest(times);
  const end = latest(times);
  if (start === undefined) return {};
  return start === end ? { effectiveDateTime: start } : { effectivePeriod: { start, ...(end ? { end } : {}) } };
}

/** The texts of the comments (Comment Activity acts) a statement carries. */
export function comments(element: Node, narrative: Narrative): string[] {
  return relatedActs(element)
    .filter((act) => codeValue(act) === COMMENT_CODE || asNodes(act.templateId).some((templateId) => templateId['@_root'] === COMMENT_TEMPLATE))
    .map((act) => narrative.textOf(act.text))
    .filter((text): text is string => text !== undefined);
}

// ---------------------------------------------------------------------------------------------------------------
// Values

interface ObservationValue {
  /** value[x], or dataAbsentReason when the value is a nullFlavor. */
  elements: Record<string, unknown>;
  /** Whether a value was read. */
  present: boolean;
}

/**
 * The observation's value as value[x], by its xsi:type (C-CDA on FHIR Results table): PQ and REAL as Quantity,
 * IVL_PQ as Range (or a Quantity with a comparator when it has one bound), CD and its kin as CodeableConcept, ST and
 * ED as string (their text, or the narrative they point at), INT, BL, TS, IVL_TS, RTO. A nullFlavor value is a
 * dataAbsentReason. Decimals are kept as sent (`5.40`). The first value is read; CDA allows more, FHIR one.
 */
export function observationValue(observation: Node, context: SectionContext, options: Pick<ObservationOptions, 'narrative' | 'location'>): ObservationValue {
  const values = asNodes(observation.value);
  const plain = typeof observation.value === 'string' ? observation.value : undefined;
  if (values.length === 0) return plain === undefined || plain.trim() === '' ? { elements: {}, present: false } : { elements: { valueString: plain.trim() }, present: true };
  const value = values[0]!;
  if (values.length > 1) context.issue('information', 'value-not-converted', `an observation sent ${values.length} values; the first was kept`, options.location);
  const elements = typedValue(value, context, options.narrative);
  if (elements !== undefined) return { elements, present: true };
  const reason = absentReason(value);
  if (reason !== undefined) return { elements: { dataAbsentReason: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/data-absent-reason', code: reason }] } }, present: false };
  const type = xsiType(value);
  context.issue('information', 'value-not-converted', `an observation value${type ? ` of type ${type.slice(0, 20)}` : ''} could not be read and was left out`, options.location);
  return { elements: {}, present: false };
}

function typedValue(value: Node, context: SectionContext, narrative: Narrative): Record<string, unknown> | undefined {
  const type = xsiType(value) ?? (value['@_code'] !== undefined ? 'CD' : value['@_value'] !== undefined ? 'PQ' : 'ST');
  switch (type) {
    case 'PQ':
    case 'REAL': {
      const quantity = quantityOf(value);
      return quantity === undefined ? undefined : { valueQuantity: quantity };
    }
    case 'IVL_PQ':
    case 'IVL_REAL':
    case 'IVL_INT':
      return intervalValue(value);
    case 'INT': {
      const text = typeof value['@_value'] === 'string' ? value['@_value'].trim() : '';
      const integer = /^[+-]?\d{1,10}$/.test(text) ? Number(text) : Number.NaN;
      return Number.isInteger(integer) && Math.abs(integer) <= 2147483647 ? { valueInteger: integer } : undefined;
    }
    case 'CD':
    case 'CE':
    case 'CV':
    case 'CO':
    case 'CS': {
      const concept = conceptOf(value, context, narrative);
      return concept === undefined ? undefined : { valueCodeableConcept: concept };
    }
    case 'ST':
    case 'ED':
    case 'SC': {
      // An ED of base64 data (a PDF, an image) is no text.
      if (String(value['@_representation'] ?? '').toUpperCase() === 'B64') return undefined;
      const text = narrative.textOf(value);
      return text === undefined ? undefined : { valueString: text };
    }
    case 'BL': {
      const flag = String(value['@_value'] ?? '').trim().toLowerCase();
      return flag === 'true' || flag === 'false' ? { valueBoolean: flag === 'true' } : undefined;
    }
    case 'TS': {
      const dateTime = unnormalizedDateTime(value, context);
      return dateTime === undefined ? undefined : { valueDateTime: dateTime };
    }
    case 'IVL_TS': {
      const start = unnormalizedDateTime(one(value.low), context) ?? unnormalizedDateTime(value, context);
      const end = unnormalizedDateTime(one(value.high), context);
      return start === undefined && end === undefined ? undefined : { valuePeriod: { ...(start ? { start } : {}), ...(end ? { end } : {}) } };
    }
    case 'RTO':
    case 'RTO_PQ_PQ':
    case 'RTO_INT_INT':
    case 'RTO_QTY_QTY': {
      const numerator = quantityOf(one(value.numerator));
      const denominator = quantityOf(one(value.denominator));
      return numerator === undefined && denominator === undefined ? undefined : { valueRatio: { ...(numerator ? { numerator } : {}), ...(denominator ? { denominator } : {}) } };
    }
    default:
      return undefined;
  }
}

/** A PQ (or REAL, INT) as a Quantity, its value the decimal as sent and its unit (UCUM in C-CDA) as unit and code. */
export function quantityOf(pq: Node | undefined): { value: FhirDecimal; unit?: string; system?: string; code?: string } | undefined {
  const text = typeof pq?.['@_value'] === 'string' ? pq['@_value'].trim() : undefined;
  const value = text === undefined ? undefined : decimalFromLiteral(text);
  if (value === undefined) return undefined;
  const unit = typeof pq?.['@_unit'] === 'string' && pq['@_unit'].trim() !== '' ? pq['@_unit'].trim() : undefined;
  return unit === undefined ? { value } : { value, unit, system: UCUM, code: unit };
}

/**
 * An IVL_PQ value (C-CDA on FHIR "Ranges of Physical Quantities"): both bounds a Range; one bound a Quantity with a
 * comparator (`<=`, or `<` for an exclusive bound; `>=`, `>` for a low alone).
 */
function intervalValue(value: Node): Record<string, unknown> | undefined {
  const lowNode = one(value.low);
  const highNode = one(value.high);
  const low = quantityOf(lowNode);
  const high = quantityOf(highNode);
  if (low !== undefined && high !== undefined) return { valueRange: { low, high } };
  const exclusive = (bound: Node | undefined): boolean => String(bound?.['@_inclusive'] ?? '').trim().toLowerCase() === 'false';
  if (high !== undefined) return { valueQuantity: { ...high, comparator: exclusive(highNode) ? '<' : '<=' } };
  if (low !== undefined) return { valueQuantity: { ...low, comparator: exclusive(lowNode) ? '>' : '>=' } };
  const center = quantityOf(one(value.center)) ?? quantityOf(value);
  return center === undefined ? undefined : { valueQuantity: center };
}

// ---------------------------------------------------------------------------------------------------------------
// Reference ranges

/**
 * referenceRange/observationRange as Observation.referenceRange: an interval's bounds as low and high, a text (or
 * the narrative it points at, or an ST value) as text. FHIR's reference ranges are normal ranges: when some of the
 * ranges sent are marked normal (interpretationCode N), only those are kept (C-CDA on FHIR).
 */
function referenceRanges(observation: Node, narrative: Narrative): Array<Record<string, unknown>> | undefined {
  const ranges = asNodes(observation.referenceRange).map((range) => one(range.observationRange)).filter((range) => range !== undefined);
  const normal = ranges.filter((range) => one(range.interpretationCode)?.['@_code'] === 'N');
  const kept = (normal.length > 0 ? normal : ranges).map((range) => {
    const value = one(range.value);
    const type = value === undefined ? undefined : xsiType(value);
    // A bound is a SimpleQuantity: no comparator.
    const low = type === 'ST' ? undefined : quantityOf(one(value?.low));
    const high = type === 'ST' ? undefined : quantityOf(one(value?.high));
    const text = narrative.textOf(range.text) ?? (type === 'ST' ? narrative.textOf(value) : undefined);
    if (low === undefined && high === undefined && text === undefined) return undefined;
    return { ...(low ? { low } : {}), ...(high ? { high } : {}), ...(text ? { text } : {}) };
  });
  const present = kept.filter((range) => range !== undefined);
  return present.length > 0 ? present : undefined;
}

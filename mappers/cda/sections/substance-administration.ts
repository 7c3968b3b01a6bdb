/**
 * A Medication Activity (substanceAdministration, 2.16.840.1.113883.10.20.22.4.16) as FHIR, following C-CDA on FHIR
 * (CF-medications): by its mood, a MedicationRequest (INT and the other moods of intent) or a MedicationStatement
 * (EVN: a history of use, for which the guide found no consensus; MedicationStatement is the resource FHIR has for
 * "the patient takes / took this"), or a MedicationAdministration where the section records administrations. Its
 * consumable is a Medication resource, referred to by medicationReference; its dosage (dose with the decimal as
 * sent, rate, route, approach site, timing from the effectiveTimes, as-needed, maximum dose, free-text sig) is the
 * resources' Dosage.
 */

import {
  asNodes,
  attr,
  concept,
  DATA_ABSENT_REASON,
  earliestAuthorTime,
  first,
  firstAuthor,
  hasTemplate,
  identifiers,
  isNegated,
  moodOf,
  narrativeExtension,
  notesOf,
  quantity,
  range,
  reasonCodesOf,
  relatedStatements,
  resourceId,
  statusCodeOf,
  texts,
  UNKNOWN_CONCEPT,
  type CodeableConcept,
  type FhirResource,
  type Narrative,
  type Node,
  type Reference,
  type SectionResources,
} from './cda-read.ts';
import { actor, organization } from './participants.ts';
import type { SectionContext } from '../section-types.ts';

const FREE_TEXT_SIG = '2.16.840.1.113883.10.20.22.4.147';
const FREE_TEXT_SIG_CODE = '76662-6';
export const INSTRUCTION = '2.16.840.1.113883.10.20.22.4.20';
const SUPPLY_ORDER = '2.16.840.1.113883.10.20.22.4.17';
const DRUG_VEHICLE = '2.16.840.1.113883.10.20.22.4.24';

/** C-CDA on FHIR ConceptMap CF-MedActivityMood, with the other moods of intent a sender may use. */
export const REQUEST_INTENTS: Readonly<Record<string, string>> = { INT: 'order', RQO: 'order', PRP: 'proposal', PRMS: 'plan' };

/** ActStatus -> MedicationRequest.status (ConceptMap CF-MedicationStatus, and the ActStatus codes it leaves out). */
export const REQUEST_STATUS: Readonly<Record<string, string>> = {
  active: 'active', completed: 'completed', aborted: 'stopped', cancelled: 'cancelled', suspended: 'on-hold', held: 'on-hold',
  new: 'draft', nullified: 'entered-in-error', obsolete: 'cancelled',
};
/** ActStatus -> MedicationStatement.status: the same states, in the statement's codes. */
const STATEMENT_STATUS: Readonly<Record<string, string>> = {
  active: 'active', completed: 'completed', aborted: 'stopped', cancelled: 'not-taken', suspended: 'on-hold', held: 'on-hold',
  new: 'intended', nullified: 'entered-in-error', obsolete: 'stopped',
};
/** ActStatus -> MedicationAdministration.status. */
const ADMINISTRATION_STATUS: Readonly<Record<string, string>> = {
  active: 'in-progress', completed: 'completed', aborted: 'stopped', cancelled: 'not-done', suspended: 'on-hold', held: 'on-hold',
  nullified: 'entered-in-error',
};

/** CDA PIVL/EIVL units (UCUM) that are FHIR units-of-time. */
const UNITS_OF_TIME = new Set(['s', 'min', 'h', 'd', 'wk', 'mo', 'a']);
const MINUTES: Readonly<Record<string, number>> = { s: 1 / 60, min: 1, h: 60, d: 1440, wk: 10080 };
/** v3 TimingEvent codes that FHIR EventTiming has (the IC* codes it has not). */
const EVENT_TIMING = new Set(['HS', 'WAKE', 'C', 'CM', 'CD', 'CV', 'AC', 'ACM', 'ACD', 'ACV', 'PC', 'PCM', 'PCD', 'PCV']);

export interface ActivityOptions {
  narrative: Narrative;
  /** MedicationRequest.category of the section (discharge medications are discharge orders). */
  requestCategory?: CodeableConcept;
  /** An EVN activity is an administration (medications administered), not a statement of use. */
  administered?: boolean;
}

/**
 * The resource of one Medication Activity, added to `out` with what it refers to; undefined (with an issue) when
 * its mood is none FHIR has a resource for here.
 */
export function medicationActivity(activity: Node, context: SectionContext, out: SectionResources, options: ActivityOptions, at: string): FhirResource | undefined {
  const mood = moodOf(activity);
  if (mood !== 'EVN' && REQUEST_INTENTS[mood] === undefined) {
    context.issue('warning', 'entries-not-converted', `a medication activity with moodCode ${mood} was not converted`, at);
    return undefined;
  }
  let effective = effectiveOf(activity, context);
  if (mood === 'EVN' && options.administered && effective === undefined) {
    // Placeholders for "no information" (drug and time nullFlavor) are common in certification output: nothing to keep.
    if (consumableOf(activity, options.narrative).drug === undefined) {
      context.issue('information', 'entries-not-converted', 'a medication administration that names neither a drug nor a time (a placeholder for no information) was not converted', at);
      return undefined;
    }
    // FHIR requires when it was given; the time is stated as not known rather than the administration dropped.
    context.issue('warning', 'value-not-converted', 'a medication administration has no time it was given; it is kept with its time stated as unknown', at);
    effective = { _effectiveDateTime: { extension: [{ url: DATA_ABSENT_REASON, valueCode: 'unknown' }] } };
  }
  const id = resourceId('MedicationStatement', activity, context, at, 'activity');
  const medication = medicationOf(activity, context, out, options.narrative);
  const base = {
    id,
    extension: narrativeExtension(activity),
    identifier: identifiers(activity, context),
  };
  const reasonCode = reasonCodesOf(activity, options.narrative);
  const note = notesOf(activity, options.narrative);
  const status = statusCodeOf(activity) ?? '';
  if (mood !== 'EVN') {
    const author = firstAuthor(activity);
    return {
      resourceType: 'MedicationRequest',
      ...base,
      status: REQUEST_STATUS[status] ?? 'unknown',
      intent: REQUEST_INTENTS[mood],
      category: options.requestCategory === undefined ? undefined : [options.requestCategory],
      doNotPerform: isNegated(activity) ? true : undefined,
      ...medication,
      subject: { reference: context.patientReference },
      authoredOn: earliestAuthorTime(activity, context),
      requester: author === undefined ? undefined : actor(author, context, out),
      reasonCode,
      note,
      dosageInstruction: dosageOf(activity, context, options.narrative, true),
      dispenseRequest: dispenseRequestOf(activity, context),
    };
  }
  if (options.administered) {
    const dosage = dosageOf(activity, context, options.narrative, false)?.[0];
    const doseAndRate = (dosage?.doseAndRate as Array<Record<string, unknown>> | undefined)?.[0];
    const performers = asNodes(activity.performer)
      .map((performer) => actor(first(performer.assignedEntity), context, out))
      // An administration's performer is a person (or device), not an organization.
      .filter((reference): reference is Reference => reference !== undefined && !reference.reference.startsWith('Organization/'))
      .map((reference) => ({ actor: { reference: reference.reference } }));
    return {
      resourceType: 'MedicationAdministration',
      ...base,
      status: isNegated(activity) ? 'not-done' : (ADMINISTRATION_STATUS[status] ?? 'unknown'),
      ...medication,
      subject: { reference: context.patientReference },
      ...effective,
      performer: performers.length > 0 ? performers : undefined,
      reasonCode,
      // FHIR mad-1: an administration's dosage states a dose or a rate. Without either, its words (the sig) are kept
      // as a note, and its route and site, which FHIR has no other place for here, stay in the narrative.
      note: dosage !== undefined && doseAndRate?.doseQuantity === undefined && doseAndRate?.rateQuantity === undefined && doseAndRate?.rateRange === undefined && typeof dosage.text === 'string'
        ? [...(note ?? []), { text: dosage.text }]
        : note,
      dosage: dosage === undefined || (doseAndRate?.doseQuantity === undefined && doseAndRate?.rateQuantity === undefined && doseAndRate?.rateRange === undefined) ? undefined : {
        text: dosage.text,
        site: dosage.site,
        route: dosage.route,
        dose: doseAndRate?.doseQuantity,
        ...(doseAndRate?.rateQuantity ? { rateQuantity: doseAndRate.rateQuantity } : doseAndRate?.rateRange ? { rateRange: doseAndRate.rateRange } : {}),
      },
    };
  }
  const author = firstAuthor(activity);
  return {
    resourceType: 'MedicationStatement',
    ...base,
    status: isNegated(activity) ? 'not-taken' : (STATEMENT_STATUS[status] ?? 'unknown'),
    ...medication,
    subject: { reference: context.patientReference },
    ...effective,
    dateAsserted: earliestAuthorTime(activity, context),
    informationSource: author === undefined ? undefined : actor(author, context, out),
    reasonCode,
    note,
    dosage: dosageOf(activity, context, options.narrative, false),
  };
}

type Effective = { effectiveDateTime: string } | { effectivePeriod: { start?: string; end?: string } } | { _effectiveDateTime: { extension: unknown[] } };

/**
 * The activity's consumable: its product, its material, and the drug it names (the material's code with its
 * translations and original text, else its name as text; undefined when it names none).
 */
function consumableOf(activity: Node, narrative: Narrative): { product: Node | undefined; material: Node | undefined; drug: CodeableConcept | undefined } {
  const product = first(first(activity.consumable)?.manufacturedProduct);
  const material = first(product?.manufacturedMaterial) ?? first(product?.manufacturedLabeledDrug);
  const name = texts(material?.name)[0];
  return { product, material, drug: concept(material?.code, narrative) ?? (name === undefined ? undefined : { text: name }) };
}

/** effectiveTime[1] (the span of use or the time given): a value is a dateTime, low/high a Period. */
function effectiveOf(activity: Node, context: SectionContext): Effective | undefined {
  const span = asNodes(activity.effectiveTime).find((time) => !isFrequency(time));
  if (span === undefined) return undefined;
  if (attr(span, 'value') !== undefined) {
    const at = context.dateTime(span);
    return at === undefined ? undefined : { effectiveDateTime: at };
  }
  const period = context.period(span);
  return period === undefined ? undefined : { effectivePeriod: period };
}

function isFrequency(time: Node): boolean {
  const type = attr(time, 'xsi:type') ?? '';
  return type.endsWith('PIVL_TS') || type.endsWith('EIVL_TS') || attr(time, 'operator') === 'A' || time.period !== undefined || time.event !== undefined;
}

// ---------------------------------------------------------------------------------------------------------------
// Medication

/**
 * The activity's consumable as a Medication resource (C-CDA on FHIR: code with its translations, form from
 * administrationUnitCode, manufacturer, drug vehicles as inactive ingredients, lot), referred to by
 * medicationReference. The same product named again in the document is the same resource: its id is keyed by
 * what the document says of it. With nothing to say, the medication is not known (medicationCodeableConcept with a
 * data-absent reason: FHIR requires one).
 */
export function medicationOf(activity: Node, context: SectionContext, out: SectionResources, narrative: Narrative): { medicationReference: Reference } | { medicationCodeableConcept: CodeableConcept } {
  const { product, material, drug: code } = consumableOf(activity, narrative);
  const form = concept(activity.administrationUnitCode, narrative);
  const manufacturer = organization(first(product?.manufacturerOrganization), context, out);
  const ingredient = asNodes(activity.participant)
    .filter((participant) => attr(participant, 'typeCode') === 'CSM')
    .map((participant) => first(participant.participantRole))
    .filter((role): role is Node => role !== undefined && (hasTemplate(role, DRUG_VEHICLE) || role.playingEntity !== undefined))
    .map((role) => {
      const entity = first(role.playingEntity);
      const vehicleName = texts(entity?.name)[0];
      return concept(entity?.code, narrative) ?? (vehicleName === undefined ? undefined : { text: vehicleName });
    })
    .filter((vehicle): vehicle is CodeableConcept => vehicle !== undefined)
    .map((vehicle) => ({ itemCodeableConcept: vehicle, isActive: false }));
  const lot = texts(material?.lotNumberText)[0];
  if (code === undefined && form === undefined && manufacturer === undefined && ingredient.length === 0) return { medicationCodeableConcept: UNKNOWN_CONCEPT };
  const body = {
    code,
    form,
    manufacturer: manufacturer === undefined ? undefined : { reference: manufacturer.reference },
    ingredient: ingredient.length > 0 ? ingredient : undefined,
    batch: lot === undefined ? undefined : { lotNumber: lot },
  };
  const id = context.derivedId('Medication', undefined, 'medication', JSON.stringify(body));
  return { medicationReference: out.refer({ resourceType: 'Medication', id, ...body }, code?.text) };
}

// ---------------------------------------------------------------------------------------------------------------
// Dosage

type Dosage = Record<string, unknown>;

/**
 * The activity's Dosage: free-text sig, patient instructions, timing, as-needed, approach site, route, dose and
 * rate (a quantity or, for IVL_PQ, a range), maximum dose. `withBounds`: a request's timing carries the span of
 * effectiveTime[1] as boundsPeriod (or its value as the event); a statement's and an administration's have it as
 * their effective[x].
 */
export function dosageOf(activity: Node, context: SectionContext, narrative: Narrative, withBounds: boolean): Dosage[] | undefined {
  const related = relatedStatements(activity);
  const sig = related.find(({ kind, node }) => kind === 'substanceAdministration' && (hasTemplate(node, FREE_TEXT_SIG) || attr(first(node.code), 'code') === FREE_TEXT_SIG_CODE));
  const instructions = related.filter(({ kind, node }) => kind === 'act' && hasTemplate(node, INSTRUCTION));
  const patientInstruction = instructions.map(({ node }) => narrative.textOf(node.text) ?? concept(node.code, narrative)?.text).filter((text): text is string => text !== undefined);
  const additionalInstruction = instructions.map(({ node }) => concept(node.code, narrative)).filter((code): code is CodeableConcept => code?.coding !== undefined);

  const dose = quantity(activity.doseQuantity);
  const doseRange = dose === undefined ? range(activity.doseQuantity) : undefined;
  const rate = quantity(activity.rateQuantity);
  const rateRange = rate === undefined ? range(activity.rateQuantity) : undefined;
  const doseAndRate = dose || doseRange || rate || rateRange
    ? [{
      ...(dose ? { doseQuantity: dose } : doseRange ? { doseRange } : {}),
      ...(rate ? { rateQuantity: rate } : rateRange ? { rateRange } : {}),
    }]
    : undefined;
  const maxDose = first(activity.maxDoseQuantity);
  const numerator = quantity(maxDose?.numerator);
  const denominator = quantity(maxDose?.denominator);
  const preconditions = asNodes(activity.precondition);
  const asNeededFor = preconditions.map((precondition) => concept(first(precondition.criterion)?.value, narrative)).find((code) => code !== undefined);

  const dosage: Dosage = {
    text: sig === undefined ? undefined : narrative.textOf(sig.node.text),
    additionalInstruction: additionalInstruction.length > 0 ? additionalInstruction : undefined,
    patientInstruction: patientInstruction.length > 0 ? patientInstruction.join('; ') : undefined,
    timing: timingOf(activity, context, withBounds),
    ...(asNeededFor !== undefined ? { asNeededCodeableConcept: asNeededFor } : preconditions.length > 0 ? { asNeededBoolean: true } : {}),
    site: concept(activity.approachSiteCode, narrative),
    route: concept(activity.routeCode, narrative),
    doseAndRate,
    maxDosePerPeriod: numerator !== undefined && denominator !== undefined ? { numerator, denominator } : undefined,
  };
  return Object.values(dosage).some((value) => value !== undefined) ? [dosage] : undefined;
}

/**
 * C-CDA on FHIR "Medication Timing and Frequency": effectiveTime[1] is the span (boundsPeriod) or a single time
 * (event); a PIVL_TS is how often (period and unit, a period range as periodMax; institutionSpecified hours that
 * divide a day are times a day: every 8 h -> 3 a day), an EIVL_TS the event it hangs on (when, offset in minutes).
 */
function timingOf(activity: Node, context: SectionContext, withBounds: boolean): Dosage | undefined {
  const times = asNodes(activity.effectiveTime);
  const repeat: Dosage = {};
  let event: string[] | undefined;
  const span = times.find((time) => !isFrequency(time));
  if (withBounds && span !== undefined) {
    if (attr(span, 'value') !== undefined) {
      const at = context.dateTime(span);
      if (at !== undefined) event = [at];
    } else {
      const bounds = context.period(span);
      if (bounds !== undefined) repeat.boundsPeriod = bounds;
    }
  }
  for (const time of times.filter(isFrequency)) {
    const periodNode = first(time.period);
    if (periodNode !== undefined) {
      const single = quantity(periodNode);
      const low = single ?? quantity(periodNode.low);
      const high = single === undefined ? quantity(periodNode.high) : undefined;
      const unit = low?.unit;
      if (low === undefined || unit === undefined || !UNITS_OF_TIME.has(unit)) continue;
      const hours = unit === 'h' ? Number(low.value) : undefined;
      if (attr(time, 'institutionSpecified') === 'true' && high === undefined && hours !== undefined && hours > 0 && Number.isInteger(24 / hours)) {
        Object.assign(repeat, { frequency: 24 / hours, period: 1, periodUnit: 'd' });
      } else {
        Object.assign(repeat, { period: low.value, periodUnit: unit, ...(high !== undefined && high.unit === unit ? { periodMax: high.value } : {}) });
      }
      continue;
    }
    const eventCode = attr(first(time.event), 'code');
    if (eventCode !== undefined && EVENT_TIMING.has(eventCode)) {
      repeat.when = [eventCode];
      const offset = first(time.offset);
      const shift = quantity(offset?.low) ?? quantity(offset?.width) ?? quantity(offset);
      const minutes = shift?.unit === undefined ? undefined : Number(shift.value) * (MINUTES[shift.unit] ?? Number.NaN);
      if (minutes !== undefined && Number.isInteger(minutes) && minutes >= 0) repeat.offset = minutes;
    }
  }
  if (event === undefined && Object.keys(repeat).length === 0) return undefined;
  return { ...(event ? { event } : {}), ...(Object.keys(repeat).length > 0 ? { repeat } : {}) };
}

/**
 * The Medication Supply Order (REFR supply, moodCode INT) as dispenseRequest: validity from its effectiveTime,
 * numberOfRepeatsAllowed one less than repeatNumber (CDA counts the first fill, FHIR does not), quantity.
 */
function dispenseRequestOf(activity: Node, context: SectionContext): Dosage | undefined {
  const order = relatedStatements(activity).find(({ kind, node }) => kind === 'supply' && (hasTemplate(node, SUPPLY_ORDER) || moodOf(node) === 'INT'))?.node;
  return order === undefined ? undefined : dispenseRequestOfSupply(order, context);
}

/**
 * A supply (a Medication Activity's supply order, a plan's Planned Supply) as a MedicationRequest's dispenseRequest:
 * its effectiveTime the validity period, repeatNumber the fills (the first dispense and its repeats), its quantity.
 */
export function dispenseRequestOfSupply(order: Node, context: SectionContext): Dosage | undefined {
  const fills = Number(attr(first(order.repeatNumber), 'value'));
  const request: Dosage = {
    validityPeriod: context.period(first(order.effectiveTime)),
    numberOfRepeatsAllowed: Number.isInteger(fills) && fills >= 1 ? fills - 1 : undefined,
    quantity: quantity(order.quantity),
  };
  return Object.values(request).some((value) => value !== undefined) ? request : undefined;
}

/**
 * Reading FHIR resources for a patient rather than for an interface analyst: one plain line per resource (what it
 * is, when, its value), the facility it came from where the resource says so, and an AuditEvent as one access to
 * the record (who, when, what, why, under which consent or break-the-glass).
 *
 * Pure and free of the DOM, so that it is tested without a browser. Values may be LosslessNumbers (api.ts parses
 * resources losslessly): they are shown with String(), which gives the digits as sent (`5.40` stays `5.40`).
 */

export type FhirResource = Record<string, unknown> & { resourceType: string; id?: string };

interface Coding {
  system?: string;
  code?: string;
  display?: string;
}

interface CodeableConcept {
  coding?: Coding[];
  text?: string;
}

interface Reference {
  reference?: string;
  display?: string;
  identifier?: { system?: string; value?: string };
}

const record = (value: unknown): Record<string, unknown> | undefined => (value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined);
const list = (value: unknown): unknown[] => (Array.isArray(value) ? value : value === undefined || value === null ? [] : [value]);
const text = (value: unknown): string | undefined => (typeof value === 'string' && value.trim() !== '' ? value : typeof value === 'number' || (record(value) && 'isLosslessNumber' in (value as object)) ? String(value) : undefined);

/** A CodeableConcept's words: its text, else the first coding's display, else its code. */
export function conceptText(value: unknown): string | undefined {
  const concept = record(value) as CodeableConcept | undefined;
  if (!concept) return undefined;
  if (text(concept.text)) return concept.text;
  const codings = list(concept.coding).map(record).filter((c): c is Record<string, unknown> => c !== undefined) as Coding[];
  return codings.map((c) => text(c.display)).find((d) => d !== undefined) ?? codings.map((c) => text(c.code)).find((c) => c !== undefined);
}

/** The first of several CodeableConcepts (or one) that has words. */
function firstConcept(value: unknown): string | undefined {
  return list(value).map(conceptText).find((t) => t !== undefined);
}

/** A HumanName as people write it: given names then family, or its text. */
export function humanName(value: unknown): string | undefined {
  const names = list(value).map(record).filter((n): n is Record<string, unknown> => n !== undefined);
  const name = names.find((n) => n.use === 'official') ?? names.find((n) => n.use !== 'old') ?? names[0];
  if (!name) return undefined;
  if (text(name.text)) return name.text as string;
  const given = list(name.given).filter((g): g is string => typeof g === 'string');
  const family = typeof name.family === 'string' ? name.family : '';
  // A Korean name is written family name first, without a space (김민지); others given names first.
  if (/[\u3131-\u318e\uac00-\ud7a3]/.test(family + given.join(''))) return `${family}${given.join('')}`.trim() || undefined;
  return [...given, family].join(' ').trim() || undefined;
}

/** A FHIR date, dateTime or instant shown as its date and, when it has one, its time of day (as recorded, not shifted). */
export function formatWhen(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  const match = /^(\d{4}(?:-\d{2}(?:-\d{2})?)?)(?:T(\d{2}:\d{2}))?/.exec(value);
  if (!match) return value;
  return match[2] ? `${match[1]} ${match[2]}` : match[1];
}

function periodText(value: unknown): string | undefined {
  const period = record(value);
  if (!period) return undefined;
  const start = formatWhen(period.start);
  const end = formatWhen(period.end);
  if (start && end) return start === end ? start : `${start} – ${end}`;
  if (start) return `from ${start}`;
  if (end) return `until ${end}`;
  return undefined;
}

/** A Quantity as `5.40 mmol/L`. */
function quantityText(value: unknown): string | undefined {
  const quantity = record(value);
  if (!quantity) return undefined;
  const amount = text(quantity.value);
  if (amount === undefined) return undefined;
  const comparator = typeof quantity.comparator === 'string' ? quantity.comparator : '';
  const unit = text(quantity.unit) ?? text(quantity.code);
  return `${comparator}${amount}${unit ? ` ${unit}` : ''}`;
}

/** An Observation's (or component's) value[x], whatever its type. */
function valueText(holder: Record<string, unknown>): string | undefined {
  for (const [key, value] of Object.entries(holder)) {
    if (!key.startsWith('value')) continue;
    switch (key) {
      case 'valueQuantity': return quantityText(value);
      case 'valueCodeableConcept': return conceptText(value);
      case 'valueString': case 'valueInteger': case 'valueBoolean': case 'valueTime': return String(value);
      case 'valueDateTime': return formatWhen(value);
      case 'valuePeriod': return periodText(value);
      case 'valueRange': {
        const range = record(value);
        const low = quantityText(range?.low);
        const high = quantityText(range?.high);
        return low || high ? `${low ?? ''}–${high ?? ''}` : undefined;
      }
      case 'valueRatio': {
        const ratio = record(value);
        const n = quantityText(ratio?.numerator);
        const d = quantityText(ratio?.denominator);
        return n && d ? `${n} / ${d}` : undefined;
      }
      default: return undefined;
    }
  }
  return undefined;
}

function referenceText(value: unknown): string | undefined {
  const reference = record(value) as Reference | undefined;
  return text(reference?.display) ?? text(reference?.reference);
}

/** When a resource's data happened, from the element its type keeps that in. */
export function whenOf(resource: FhirResource): string | undefined {
  for (const element of ['effectiveDateTime', 'onsetDateTime', 'performedDateTime', 'occurrenceDateTime', 'recordedDate', 'authoredOn', 'issued', 'started', 'date', 'recorded', 'created', 'dateTime']) {
    const when = formatWhen(resource[element]);
    if (when) return when;
  }
  for (const element of ['effectivePeriod', 'performedPeriod', 'period', 'onsetPeriod']) {
    const when = periodText(resource[element]);
    if (when) return when;
  }
  return undefined;
}

/** What a resource is about, in words, by type; undefined when it says nothing readable. */
export function whatOf(resource: FhirResource): string | undefined {
  switch (resource.resourceType) {
    case 'Patient': {
      const name = humanName(resource.name);
      const born = formatWhen(resource.birthDate);
      return [name, born ? `born ${born}` : undefined, text(resource.gender)].filter(Boolean).join(', ') || undefined;
    }
    case 'Practitioner': case 'RelatedPerson':
      return humanName(resource.name);
    case 'Organization': case 'Location':
      return text(resource.name);
    case 'Encounter': {
      const kind = conceptText(resource.class) ?? firstConcept(resource.type);
      // A place kept only as a display is the sender's point of care, room and bed as components (`W1^101^A`).
      const where = list(resource.location).map((l) => referenceText(record(l)?.location)).find(Boolean)?.split('^').filter(Boolean).join(' · ');
      const who = list(resource.participant).map((p) => referenceText(record(p)?.individual)).find(Boolean);
      return [kind, where ? `at ${where}` : undefined, who ? `with ${who}` : undefined, text(resource.status)].filter(Boolean).join(', ') || undefined;
    }
    case 'Observation': {
      const name = conceptText(resource.code);
      const value = valueText(resource) ?? list(resource.component).map((c) => {
        const component = record(c);
        return component ? [conceptText(component.code), valueText(component)].filter(Boolean).join(' ') : undefined;
      }).filter(Boolean).join('; ');
      const flag = firstConcept(resource.interpretation);
      return [name, value ? `: ${value}` : undefined, flag ? ` (${flag})` : undefined].filter(Boolean).join('') || undefined;
    }
    case 'Condition': {
      const status = conceptText(resource.clinicalStatus);
      return [conceptText(resource.code), status].filter(Boolean).join(', ') || undefined;
    }
    case 'AllergyIntolerance': {
      const reaction = list(resource.reaction).flatMap((r) => list(record(r)?.manifestation).map(conceptText)).filter(Boolean).join(', ');
      return [conceptText(resource.code), reaction ? `reaction: ${reaction}` : undefined, text(resource.criticality)].filter(Boolean).join(', ') || undefined;
    }
    case 'MedicationRequest': case 'MedicationStatement': case 'MedicationAdministration': case 'MedicationDispense': {
      const medication = conceptText(resource.medicationCodeableConcept) ?? referenceText(resource.medicationReference);
      const dosage = list(resource.dosageInstruction ?? resource.dosage).map((d) => text(record(d)?.text)).find(Boolean);
      return [medication, dosage].filter(Boolean).join(', ') || undefined;
    }
    case 'Immunization':
      return conceptText(resource.vaccineCode);
    case 'Procedure': case 'ServiceRequest':
      return conceptText(resource.code);
    case 'DiagnosticReport': {
      const conclusion = text(resource.conclusion);
      return [conceptText(resource.code), conclusion].filter(Boolean).join(': ') || undefined;
    }
    case 'ImagingStudy': {
      const modality = list(resource.modality).map((m) => text(record(m)?.display) ?? text(record(m)?.code)).filter(Boolean).join(', ');
      return [text(resource.description), modality ? `(${modality})` : undefined].filter(Boolean).join(' ') || undefined;
    }
    case 'DocumentReference': case 'Composition':
      return text(resource.title) ?? text(resource.description) ?? conceptText(resource.type);
    case 'Coverage':
      return list(resource.payor).map(referenceText).find(Boolean) ?? conceptText(resource.type);
    case 'Provenance': {
      const activity = conceptText(resource.activity);
      const by = list(resource.agent).map((a) => referenceText(record(a)?.who)).find(Boolean);
      return [activity, by ? `from ${by}` : undefined].filter(Boolean).join(' ') || undefined;
    }
    case 'Consent':
      return consentWords(resource);
    default:
      return conceptText(resource.code) ?? firstConcept(resource.type) ?? text(resource.description) ?? text(resource.title);
  }
}

function consentWords(resource: FhirResource): string {
  const provision = record(resource.provision);
  const actors = list(provision?.actor).map((a) => referenceText(record(a)?.reference)).filter(Boolean).join(', ');
  return `${text(provision?.type) ?? 'consent'}${actors ? ` for ${actors}` : ''} (${text(resource.status) ?? 'no status'})`;
}

/** The engine's identifier systems for a sender's assigning authority (mappers/hl7v2): `urn:anchorline:authority:<name>`. */
const AUTHORITY_SYSTEM = 'urn:anchorline:authority:';

/**
 * The facility a resource says it came from: its managing organisation, the assigner of its identifiers (or the
 * assigning authority in the identifier's system), the organisation that authored its provenance, or meta.source.
 */
export function facilityOf(resource: FhirResource): string | undefined {
  const managing = referenceText(resource.managingOrganization) ?? referenceText(resource.serviceProvider) ?? referenceText(resource.custodian);
  if (managing) return managing;
  for (const identifier of list(resource.identifier).map(record)) {
    const assigner = referenceText(identifier?.assigner);
    if (assigner) return assigner;
    const system = identifier?.system;
    if (typeof system === 'string' && system.startsWith(AUTHORITY_SYSTEM) && system.length > AUTHORITY_SYSTEM.length) return decodeURIComponent(system.slice(AUTHORITY_SYSTEM.length));
  }
  if (resource.resourceType === 'Provenance') {
    const organisation = list(resource.agent).map((a) => record(record(a)?.who)).find((who) => who?.type === 'Organization' || String(who?.reference ?? '').startsWith('Organization/'));
    const name = referenceText(organisation);
    if (name) return name;
  }
  return text(record(resource.meta)?.source);
}

/** One line for a resource: what it is and when, and where it came from. */
export interface ResourceLine {
  type: string;
  id: string;
  what: string;
  when: string | undefined;
  facility: string | undefined;
}

export function resourceLine(resource: FhirResource): ResourceLine {
  return {
    type: resource.resourceType,
    id: typeof resource.id === 'string' ? resource.id : '',
    what: whatOf(resource) ?? `${resource.resourceType} (no description recorded)`,
    when: whenOf(resource),
    facility: facilityOf(resource),
  };
}

/** Resource types in the order a person reads a record: who, visits, findings, treatment, then the rest by name. */
const TYPE_ORDER = ['Patient', 'Encounter', 'Condition', 'AllergyIntolerance', 'Observation', 'DiagnosticReport', 'ImagingStudy', 'Procedure', 'MedicationRequest', 'MedicationStatement', 'Immunization', 'DocumentReference', 'Coverage', 'Provenance'];

/** Plain names of resource types for the headings. */
export const TYPE_TITLES: Readonly<Record<string, string>> = {
  Patient: 'About you', Encounter: 'Visits and stays', Condition: 'Conditions and diagnoses', AllergyIntolerance: 'Allergies', Observation: 'Measurements and test results',
  DiagnosticReport: 'Reports', ImagingStudy: 'Imaging', Procedure: 'Procedures', MedicationRequest: 'Prescriptions', MedicationStatement: 'Medicines', Immunization: 'Vaccinations',
  DocumentReference: 'Documents', Coverage: 'Insurance', Provenance: 'Where the records came from', RelatedPerson: 'Related people', Consent: 'Consents',
};

/** Lines grouped by resource type, the groups in reading order, each group newest first. */
export function groupByType(resources: readonly FhirResource[]): Array<{ type: string; title: string; lines: ResourceLine[] }> {
  const groups = new Map<string, ResourceLine[]>();
  for (const resource of resources) {
    const line = resourceLine(resource);
    groups.set(line.type, [...(groups.get(line.type) ?? []), line]);
  }
  const rank = (type: string): number => (TYPE_ORDER.includes(type) ? TYPE_ORDER.indexOf(type) : TYPE_ORDER.length);
  return [...groups.entries()]
    .sort(([a], [b]) => rank(a) - rank(b) || a.localeCompare(b))
    .map(([type, lines]) => ({ type, title: TYPE_TITLES[type] ?? type, lines: lines.sort((x, y) => (y.when ?? '').localeCompare(x.when ?? '')) }));
}

const OBJECT_ROLE = 'http://terminology.hl7.org/CodeSystem/object-role';

/** One access to a record, from a read AuditEvent (store/audit-trail.ts). */
export interface AccessRow {
  id: string;
  versionId: string;
  /** The requesting agent's name as recorded, or their reference. */
  who: string;
  /** `Practitioner/x` etc. when the reader was a signed-in person. */
  whoReference: string | undefined;
  /** AuditEvent.action: R read, E a search or operation, C or U a hospital system writing the record. */
  action: string | undefined;
  when: string | undefined;
  /** `Encounter/x/_history/1`: the versions returned (entity role 4). */
  what: string[];
  /** v3 PurposeOfUse codes. */
  purposes: string[];
  /** `Consent/x/_history/v` (entity role 13), or `default policy`. */
  consents: string[];
  breakGlass: boolean;
  /** The reason given for breaking the glass, or the event's description. */
  outcomeDesc: string | undefined;
}

function roleOf(entity: Record<string, unknown>): string | undefined {
  const role = record(entity.role) as Coding | undefined;
  return role && (role.system === undefined || role.system === OBJECT_ROLE) ? role.code : undefined;
}

export function accessRow(event: FhirResource): AccessRow {
  const agents = list(event.agent).map(record).filter((a): a is Record<string, unknown> => a !== undefined);
  const requestor = agents.find((a) => a.requestor === true) ?? agents[0];
  const who = record(requestor?.who) as Reference | undefined;
  const entities = list(event.entity).map(record).filter((e): e is Record<string, unknown> => e !== undefined);
  const whatOfEntity = (e: Record<string, unknown>): string | undefined => {
    const what = record(e.what) as Reference | undefined;
    return text(what?.reference) ?? (what?.identifier?.value === 'default' ? 'default policy' : text(what?.identifier?.value));
  };
  const security = list(record(event.meta)?.security).map(record) as Array<Coding | undefined>;
  const purposes = list(event.purposeOfEvent).flatMap((p) => list(record(p)?.coding).map((c) => (record(c) as Coding | undefined)?.code)).filter((c): c is string => typeof c === 'string');
  return {
    id: typeof event.id === 'string' ? event.id : '',
    versionId: String(record(event.meta)?.versionId ?? '1'),
    who: text(who?.display) ?? text(who?.reference) ?? text(who?.identifier?.value) ?? 'unknown',
    whoReference: text(who?.reference),
    action: text(event.action),
    when: typeof event.recorded === 'string' ? event.recorded : undefined,
    what: entities.filter((e) => roleOf(e) === '4').map(whatOfEntity).filter((w): w is string => w !== undefined),
    purposes,
    consents: entities.filter((e) => roleOf(e) === '13').map(whatOfEntity).filter((w): w is string => w !== undefined),
    breakGlass: security.some((c) => c?.code === 'BTG') || purposes.includes('BTG'),
    outcomeDesc: text(event.outcomeDesc),
  };
}

/** v3 PurposeOfUse codes an access may be recorded with, in words. */
export const PURPOSE_WORDS: Readonly<Record<string, string>> = {
  TREAT: 'treatment', ETREAT: 'emergency treatment', BTG: 'break the glass', PATRQT: 'your own request', PWATRNY: 'your representative', FAMRQT: 'family request',
  CAREMGT: 'care management', COC: 'continuity of care', HPAYMT: 'payment', HOPERAT: 'healthcare operations', HRESCH: 'research', CLINTRCH: 'clinical research',
  PUBHLTH: 'public health', HLEGAL: 'legal', HSYSADMIN: 'system administration', POPHLTH: 'population health', SUPNWK: 'support network',
};

/** A versioned reference (`Type/id/_history/v`) without its version, for showing. */
export function withoutVersion(reference: string): string {
  return reference.replace(/\/_history\/[^/]+$/, '');
}

/**
 * What each resource type contributes to the search index: the FHIR R4 search parameters anchorline supports, as
 * (param, system, code) tokens and (param, value) strings. Adding a search parameter is adding a row here.
 */

export interface TokenEntry {
  param: string;
  system: string;
  code: string;
}
export interface StringEntry {
  param: string;
  value: string;
  /**
   * A whole name made of its parts (humanNameStrings): 'joined' family and given without a space ("홍길동"),
   * 'spaced' with spaces ("john smith"). Absent for a value as written.
   */
  whole?: 'joined' | 'spaced';
}

type Json = Record<string, unknown>;

function array(value: unknown): Json[] {
  return Array.isArray(value) ? (value.filter((v) => v && typeof v === 'object') as Json[]) : [];
}

function str(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

function identifierTokens(resource: Json, param = 'identifier'): TokenEntry[] {
  return array(resource.identifier).flatMap((identifier) => {
    const code = str(identifier.value);
    return code ? [{ param, system: str(identifier.system) ?? '', code }] : [];
  });
}

function referenceToken(param: string, reference: unknown): TokenEntry[] {
  const ref = reference && typeof reference === 'object' ? str((reference as Json).reference) : undefined;
  return ref ? [{ param, system: '', code: ref }] : [];
}

function humanNameStrings(names: Json[]): StringEntry[] {
  const out: StringEntry[] = [];
  for (const name of names) {
    const family = str(name.family);
    const given = Array.isArray(name.given) ? (name.given.filter((g) => typeof g === 'string') as string[]) : [];
    const parts = [family, ...given, str(name.text), ...(Array.isArray(name.prefix) ? name.prefix : []), ...(Array.isArray(name.suffix) ? name.suffix : [])];
    if (family) out.push({ param: 'family', value: family });
    for (const g of given) out.push({ param: 'given', value: g });
    for (const part of parts) if (typeof part === 'string' && part) out.push({ param: 'name', value: part });
    // Whole-name forms, so that "홍길동" (family first, no space) and "John Smith" both match `name=`.
    if (family && given.length > 0) {
      out.push({ param: 'name', value: `${family}${given.join('')}`, whole: 'joined' });
      out.push({ param: 'name', value: `${family} ${given.join(' ')}`, whole: 'spaced' });
      out.push({ param: 'name', value: `${given.join(' ')} ${family}`, whole: 'spaced' });
    }
  }
  return out;
}

/** One token per coding of a CodeableConcept (or of a single Coding). */
function codeTokens(param: string, concept: unknown): TokenEntry[] {
  if (!concept || typeof concept !== 'object') return [];
  const c = concept as Json;
  const codings = Array.isArray(c.coding) ? array(c.coding) : str(c.code) ? [c] : [];
  return codings.flatMap((coding) => {
    const code = str(coding.code);
    return code ? [{ param, system: str(coding.system) ?? '', code }] : [];
  });
}

function statusToken(resource: Json, system: string, param = 'status'): TokenEntry[] {
  return str(resource.status) ? [{ param, system, code: resource.status as string }] : [];
}

/**
 * `subject` (or `subjectParam`; null: none) and `patient` from a reference to the patient (patient only when it points
 * at a Patient).
 */
function patientTokens(reference: unknown, subjectParam: string | null = 'subject'): TokenEntry[] {
  const tokens = subjectParam ? referenceToken(subjectParam, reference) : [];
  const ref = reference && typeof reference === 'object' ? str((reference as Json).reference) : undefined;
  if (ref?.startsWith('Patient/')) tokens.push({ param: 'patient', system: '', code: ref });
  return tokens;
}

/** The search parameters of a resource type that only has tokens: identifier, status, a patient reference, codes. */
function clinical(statusSystem: string, patientElement: string, subjectParam: string | null, codes: Record<string, string>): (r: Json) => { tokens: TokenEntry[]; strings: StringEntry[] } {
  return (r) => ({
    tokens: [
      ...identifierTokens(r),
      ...statusToken(r, statusSystem),
      ...patientTokens(r[patientElement], subjectParam),
      ...Object.entries(codes).flatMap(([param, element]) => (Array.isArray(r[element]) ? array(r[element]).flatMap((c) => codeTokens(param, c)) : codeTokens(param, r[element]))),
      ...referenceToken('encounter', r.encounter),
    ],
    strings: [],
  });
}

const extractors: Record<string, (resource: Json) => { tokens: TokenEntry[]; strings: StringEntry[] }> = {
  Patient: (r) => ({
    tokens: [
      ...identifierTokens(r),
      ...(str(r.gender) ? [{ param: 'gender', system: 'http://hl7.org/fhir/administrative-gender', code: r.gender as string }] : []),
    ],
    strings: humanNameStrings(array(r.name)),
  }),
  Encounter: (r) => ({
    tokens: [
      ...identifierTokens(r),
      ...referenceToken('subject', r.subject),
      ...referenceToken('patient', r.subject),
      ...(str(r.status) ? [{ param: 'status', system: 'http://hl7.org/fhir/encounter-status', code: r.status as string }] : []),
    ],
    strings: [],
  }),
  RelatedPerson: (r) => ({
    tokens: [...identifierTokens(r), ...patientTokens(r.patient, null), ...array(r.relationship).flatMap((c) => codeTokens('relationship', c))],
    // Searched by `name` only: its parts go under `name` (humanNameStrings adds them there too), not family or given.
    strings: humanNameStrings(array(r.name)).filter((s) => s.param === 'name'),
  }),
  AllergyIntolerance: clinical('', 'patient', null, { code: 'code', 'clinical-status': 'clinicalStatus' }),
  Condition: clinical('', 'subject', 'subject', { code: 'code', category: 'category', 'clinical-status': 'clinicalStatus' }),
  Coverage: (r) => ({
    tokens: [...identifierTokens(r), ...statusToken(r, 'http://hl7.org/fhir/fm-status'), ...referenceToken('beneficiary', r.beneficiary), ...patientTokens(r.beneficiary, null)],
    strings: [],
  }),
  DiagnosticReport: clinical('http://hl7.org/fhir/diagnostic-report-status', 'subject', 'subject', { code: 'code', category: 'category' }),
  Observation: clinical('http://hl7.org/fhir/observation-status', 'subject', 'subject', { code: 'code', category: 'category' }),
  Specimen: clinical('http://hl7.org/fhir/specimen-status', 'subject', 'subject', { type: 'type' }),
  ServiceRequest: clinical('http://hl7.org/fhir/request-status', 'subject', 'subject', { code: 'code' }),
  MedicationRequest: clinical('http://hl7.org/fhir/CodeSystem/medicationrequest-status', 'subject', 'subject', { code: 'medicationCodeableConcept' }),
  Immunization: clinical('http://hl7.org/fhir/event-status', 'patient', null, { 'vaccine-code': 'vaccineCode' }),
  DocumentReference: clinical('http://hl7.org/fhir/document-reference-status', 'subject', 'subject', { type: 'type', category: 'category' }),
  // Accounting, dispenses, administrations and where each message's resources came from (mappers/hl7v2/financial.ts,
  // medication-events.ts, provenance.ts).
  Account: (r) => ({
    tokens: [...identifierTokens(r), ...statusToken(r, 'http://hl7.org/fhir/account-status'), ...array(r.subject).flatMap((subject) => patientTokens(subject))],
    strings: [],
  }),
  ChargeItem: clinical('http://hl7.org/fhir/chargeitem-status', 'subject', 'subject', { code: 'code' }),
  MedicationDispense: clinical('http://hl7.org/fhir/CodeSystem/medicationdispense-status', 'subject', 'subject', { code: 'medicationCodeableConcept' }),
  MedicationAdministration: clinical('http://hl7.org/fhir/CodeSystem/medication-admin-status', 'subject', 'subject', { code: 'medicationCodeableConcept' }),
  Provenance: (r) => ({
    tokens: array(r.target).flatMap((target) => [...referenceToken('target', target), ...patientTokens(target, null)]),
    strings: [],
  }),
  ImagingStudy: (r) => ({
    tokens: [
      ...identifierTokens(r),
      ...statusToken(r, 'http://hl7.org/fhir/imagingstudy-status'),
      ...patientTokens(r.subject),
      ...array(r.modality).flatMap((coding) => codeTokens('modality', coding)),
      ...array(r.series).flatMap((series) => (str(series.uid) ? [{ param: 'series', system: '', code: series.uid as string }] : [])),
      ...array(r.endpoint).flatMap((endpoint) => referenceToken('endpoint', endpoint)),
    ],
    strings: [],
  }),
  Endpoint: (r) => ({
    tokens: [...identifierTokens(r), ...statusToken(r, 'http://hl7.org/fhir/endpoint-status'), ...codeTokens('connection-type', r.connectionType)],
    strings: [],
  }),
  Appointment: (r) => ({
    tokens: [
      ...identifierTokens(r),
      ...statusToken(r, 'http://hl7.org/fhir/appointmentstatus'),
      ...array(r.participant).flatMap((participant) => [...referenceToken('actor', participant.actor), ...patientTokens(participant.actor, null)]),
    ],
    strings: [],
  }),
  // What C-CDA documents bring besides the HL7 v2 types: the document itself, its authors and the rest of its entries.
  Composition: clinical('http://hl7.org/fhir/composition-status', 'subject', 'subject', { type: 'type' }),
  Practitioner: (r) => ({ tokens: identifierTokens(r), strings: humanNameStrings(array(r.name)) }),
  Organization: (r) => ({ tokens: identifierTokens(r), strings: str(r.name) ? [{ param: 'name', value: r.name as string }] : [] }),
  PractitionerRole: (r) => ({
    tokens: [...identifierTokens(r), ...referenceToken('practitioner', r.practitioner), ...referenceToken('organization', r.organization)],
    strings: [],
  }),
  // The places HL7 v2 messages name (PL: facility, ward, room, bed), each part of the next.
  Location: (r) => ({
    tokens: [...identifierTokens(r), ...referenceToken('partof', r.partOf)],
    strings: str(r.name) ? [{ param: 'name', value: r.name as string }] : [],
  }),
  Procedure: clinical('http://hl7.org/fhir/event-status', 'subject', 'subject', { code: 'code' }),
  CarePlan: clinical('http://hl7.org/fhir/request-status', 'subject', 'subject', { category: 'category' }),
  CareTeam: clinical('http://hl7.org/fhir/care-team-status', 'subject', 'subject', {}),
  Goal: (r) => ({
    tokens: [...identifierTokens(r), ...statusToken({ status: r.lifecycleStatus }, 'http://hl7.org/fhir/goal-status', 'lifecycle-status'), ...patientTokens(r.subject)],
    strings: [],
  }),
  // What the newer section converters and HL7 v2 builders make: episodes of care (BAR/DFT accounts), referral
  // tasks (RF1), equipment (OBX-18, C-CDA medical equipment), medication statements and their medications, family
  // history, device use and advance directives (C-CDA).
  EpisodeOfCare: clinical('http://hl7.org/fhir/episode-of-care-status', 'patient', null, { type: 'type' }),
  Task: (r) => ({
    tokens: [...identifierTokens(r), ...statusToken(r, 'http://hl7.org/fhir/task-status'), ...patientTokens(r.for, null), ...referenceToken('focus', r.focus), ...referenceToken('based-on', array(r.basedOn)[0])],
    strings: [],
  }),
  Device: (r) => ({ tokens: [...identifierTokens(r), ...statusToken(r, 'http://hl7.org/fhir/device-status'), ...codeTokens('type', r.type), ...patientTokens(r.patient, null)], strings: [] }),
  Medication: (r) => ({ tokens: [...identifierTokens(r), ...codeTokens('code', r.code)], strings: [] }),
  MedicationStatement: clinical('http://hl7.org/fhir/CodeSystem/medication-statement-status', 'subject', 'subject', { code: 'medicationCodeableConcept' }),
  FamilyMemberHistory: clinical('http://hl7.org/fhir/history-status', 'patient', null, { relationship: 'relationship' }),
  DeviceUseStatement: clinical('http://hl7.org/fhir/device-statement-status', 'subject', 'subject', {}),
  DeviceRequest: clinical('http://hl7.org/fhir/request-status', 'subject', 'subject', { code: 'codeCodeableConcept' }),
  Communication: clinical('http://hl7.org/fhir/event-status', 'subject', 'subject', { category: 'category' }),
  Consent: clinical('http://hl7.org/fhir/consent-state-codes', 'patient', null, { category: 'category' }),
  // A C-CDA document's FHIR document (workers/document-bundle.ts): one identifier (the document id), and the
  // Composition it is headed by. Its entries are not indexed: each is searched as the resource it is.
  Bundle: (r) => ({
    tokens: [
      ...(r.identifier && typeof r.identifier === 'object' ? identifierTokens({ identifier: [r.identifier] }) : []),
      ...(str(r.type) ? [{ param: 'type', system: 'http://hl7.org/fhir/bundle-type', code: r.type as string }] : []),
      ...array(r.entry).slice(0, 1).flatMap((entry) => {
        const first = entry.resource as Json | undefined;
        return first?.resourceType === 'Composition' && str(first.id) ? [{ param: 'composition', system: '', code: `Composition/${first.id as string}` }] : [];
      }),
    ],
    strings: [],
  }),
  // The audit trail (store/audit-trail.ts): who did what to which record. `date` is the recorded time, which is the
  // lastUpdated of an audit event's only version, so it is searched on that column rather than indexed here.
  AuditEvent: (r) => {
    const entities = array(r.entity);
    const agents = array(r.agent);
    return {
      tokens: [
        ...codeTokens('type', r.type),
        ...array(r.subtype).flatMap((c) => codeTokens('subtype', c)),
        ...(str(r.action) ? [{ param: 'action', system: 'http://hl7.org/fhir/audit-event-action', code: r.action as string }] : []),
        ...entities.flatMap((e) => referenceToken('entity', e.what)),
        ...entities.filter((e) => (e.role as Json | undefined)?.code === '1').flatMap((e) => patientTokens(e.what, null)),
        ...agents.flatMap((a) => (str(a.altId) ? [{ param: 'altid', system: '', code: a.altId as string }] : [])),
        // Break-the-glass reads are labelled BTG (store/audit-trail.ts) so that review finds them in one search.
        ...array((r.meta as Json | undefined)?.security).flatMap((c) => codeTokens('_security', { coding: [c] })),
        ...array(r.purposeOfEvent).flatMap((c) => codeTokens('purpose', c)),
      ],
      // Not the engine's own name: it is on every AuditEvent (everyAuditEventMatches), and its prefixes were a third of
      // the index rows a read's event costs.
      strings: agents.flatMap((a) => {
        const display = (a.who as Json | undefined)?.display;
        return str(display) && display !== ENGINE_AGENT_NAME ? [{ param: 'agent-name', value: display as string }] : [];
      }),
    };
  },
};

/**
 * The name of the engine's own agent, which every AuditEvent it writes names (store/audit-trail.ts, store/erasure.ts):
 * the destination of an import, a read, a research use or an erasure.
 */
export const ENGINE_AGENT_NAME = 'anchorline';

/**
 * True when a string criterion on AuditEvent `agent-name` is met by the engine's own agent, and so by every
 * AuditEvent: `agent-name=anch` (starts with) or `agent-name:exact=anchorline`. Such a criterion is left out of the
 * query rather than looked up, since the engine's name is not indexed.
 */
export function everyAuditEventMatches(param: string, values: readonly string[], exact: boolean): boolean {
  if (param !== 'agent-name') return false;
  const engine = normaliseSearchString(ENGINE_AGENT_NAME);
  return values.some((value) => {
    const wanted = normaliseSearchString(value);
    return wanted !== '' && (exact ? wanted === engine : engine.startsWith(wanted));
  });
}

export function searchEntries(resource: Json): { tokens: TokenEntry[]; strings: StringEntry[] } {
  const extract = extractors[resource.resourceType as string];
  const entries = extract ? extract(resource) : { tokens: identifierTokens(resource), strings: [] };
  const seen = new Set<string>();
  const strings = entries.strings
    .map((s) => ({ ...s, value: normaliseSearchString(s.value) }))
    .filter((s) => s.value !== '' && !seen.has(`${s.param}\u0000${s.value}`) && seen.add(`${s.param}\u0000${s.value}`));
  return { tokens: entries.tokens, strings };
}

/** The search parameters each resource type supports, with their kind (for the API and the CapabilityStatement). */
export const SEARCH_PARAMETERS: Record<string, Record<string, 'token' | 'string' | 'reference' | 'date'>> = {
  Patient: { identifier: 'token', gender: 'token', name: 'string', family: 'string', given: 'string' },
  Encounter: { identifier: 'token', status: 'token', subject: 'reference', patient: 'reference' },
  RelatedPerson: { identifier: 'token', patient: 'reference', relationship: 'token', name: 'string' },
  AllergyIntolerance: { identifier: 'token', patient: 'reference', code: 'token', 'clinical-status': 'token', encounter: 'reference' },
  Condition: { identifier: 'token', subject: 'reference', patient: 'reference', code: 'token', category: 'token', 'clinical-status': 'token', encounter: 'reference' },
  Coverage: { identifier: 'token', status: 'token', beneficiary: 'reference', patient: 'reference' },
  DiagnosticReport: { identifier: 'token', status: 'token', subject: 'reference', patient: 'reference', code: 'token', category: 'token', encounter: 'reference' },
  Observation: { identifier: 'token', status: 'token', subject: 'reference', patient: 'reference', code: 'token', category: 'token', encounter: 'reference' },
  Specimen: { identifier: 'token', status: 'token', subject: 'reference', patient: 'reference', type: 'token' },
  ServiceRequest: { identifier: 'token', status: 'token', subject: 'reference', patient: 'reference', code: 'token', encounter: 'reference' },
  MedicationRequest: { identifier: 'token', status: 'token', subject: 'reference', patient: 'reference', code: 'token', encounter: 'reference' },
  Immunization: { identifier: 'token', status: 'token', patient: 'reference', 'vaccine-code': 'token' },
  DocumentReference: { identifier: 'token', status: 'token', subject: 'reference', patient: 'reference', type: 'token', category: 'token', encounter: 'reference' },
  Account: { identifier: 'token', status: 'token', subject: 'reference', patient: 'reference' },
  ChargeItem: { identifier: 'token', status: 'token', subject: 'reference', patient: 'reference', code: 'token' },
  MedicationDispense: { identifier: 'token', status: 'token', subject: 'reference', patient: 'reference', code: 'token' },
  MedicationAdministration: { identifier: 'token', status: 'token', subject: 'reference', patient: 'reference', code: 'token' },
  Provenance: { target: 'reference', patient: 'reference' },
  Appointment: { identifier: 'token', status: 'token', actor: 'reference', patient: 'reference' },
  ImagingStudy: { identifier: 'token', status: 'token', subject: 'reference', patient: 'reference', modality: 'token', series: 'token', endpoint: 'reference' },
  Endpoint: { identifier: 'token', status: 'token', 'connection-type': 'token' },
  Composition: { identifier: 'token', status: 'token', subject: 'reference', patient: 'reference', type: 'token' },
  Practitioner: { identifier: 'token', name: 'string', family: 'string', given: 'string' },
  Organization: { identifier: 'token', name: 'string' },
  PractitionerRole: { identifier: 'token', practitioner: 'reference', organization: 'reference' },
  Location: { identifier: 'token', name: 'string', partof: 'reference' },
  Procedure: { identifier: 'token', status: 'token', subject: 'reference', patient: 'reference', code: 'token', encounter: 'reference' },
  CarePlan: { identifier: 'token', status: 'token', subject: 'reference', patient: 'reference', category: 'token', encounter: 'reference' },
  CareTeam: { identifier: 'token', status: 'token', subject: 'reference', patient: 'reference', encounter: 'reference' },
  Goal: { identifier: 'token', 'lifecycle-status': 'token', subject: 'reference', patient: 'reference' },
  EpisodeOfCare: { identifier: 'token', status: 'token', patient: 'reference', type: 'token' },
  Task: { identifier: 'token', status: 'token', patient: 'reference', focus: 'reference', 'based-on': 'reference' },
  Device: { identifier: 'token', status: 'token', type: 'token', patient: 'reference' },
  Medication: { identifier: 'token', code: 'token' },
  MedicationStatement: { identifier: 'token', status: 'token', subject: 'reference', patient: 'reference', code: 'token' },
  FamilyMemberHistory: { identifier: 'token', status: 'token', patient: 'reference', relationship: 'token' },
  DeviceUseStatement: { identifier: 'token', subject: 'reference', patient: 'reference' },
  DeviceRequest: { identifier: 'token', status: 'token', subject: 'reference', patient: 'reference', code: 'token' },
  Communication: { identifier: 'token', status: 'token', subject: 'reference', patient: 'reference', category: 'token' },
  Consent: { identifier: 'token', status: 'token', patient: 'reference', category: 'token' },
  Bundle: { identifier: 'token', type: 'token', composition: 'reference' },
  // Not outcome or entity-role: every event records a success, and roles follow from the reference's type.
  AuditEvent: { date: 'date', type: 'token', subtype: 'token', action: 'token', entity: 'reference', patient: 'reference', altid: 'token', 'agent-name': 'string', _security: 'token', purpose: 'token' },
};

/** FHIR string search is case- and accent-insensitive: compare lower-cased, without combining marks (Hangul recomposed). */
export function normaliseSearchString(value: string): string {
  return value.normalize('NFKD').replace(/[\u0300-\u036f]/g, '').normalize('NFC').toLowerCase().trim();
}

/**
 * What a C-CDA header says that @medplum/ccda does not convert, added to its output (the C-CDA on FHIR header
 * mapping):
 *
 * - Patient.communication from recordTarget/patientRole/patient/languageCommunication: the language (BCP 47), the
 *   preference (preferenceInd), and the mode and proficiency (modeCode, proficiencyLevelCode) in the core
 *   patient-proficiency extension, FHIR R4 having no element for them.
 * - Composition.attester from legalAuthenticator (mode legal) and each authenticator (mode professional), with the
 *   time signed and the party: a Practitioner for the assigned person, else an Organization for the represented
 *   organization.
 * - Composition.encounter from componentOf/encompassingEncounter: an Encounter with its identifiers, type (and class
 *   where the code is a v3 ActEncounterCode), period, responsible party and participants (Practitioners), the
 *   facility as a Location, the service provider as an Organization, and the discharge disposition.
 *
 * Ids are given as normalize.ts gives them: the elements it makes resources of (assignedEntity,
 * encompassingEncounter, healthCareFacility) carry the id it prepended, from their own id (so the same clinician
 * signing two documents is one Practitioner, and an encompassing encounter that an Encounters section entry repeats
 * is one Encounter) or else from the document and their place in it; the organizations it does not name get one
 * here the same way. Every id is registered, so resources.ts keeps it.
 *
 * Times have been normalized (the sender's zone applied, dates encoded to keep their precision, which tidying
 * restores) before this runs. Values are added in the converter's output form (empty parts are tidied away).
 */

import { mapCcdaCodeToCodeableConcept, mapCcdaSystemToFhir, mapCcdaToFhirDateTime, type CcdaCode } from '@medplum/ccda';

import { deterministicId } from '../ids.ts';

import { asNodes, firstUsableId } from './normalize.ts';
import { iiIdentifier, type FhirResource } from './resources.ts';

type Node = Record<string, unknown>;

export interface HeaderContext {
  ccda: Node;
  patientId: string;
  /** The document's own key (ClinicalDocument/id root and extension). */
  documentKey: readonly [string, string];
  /** Every id normalize.ts placed; ids given here are added. */
  ids: Set<string>;
}

const DATA_ABSENT_REASON = 'http://hl7.org/fhir/StructureDefinition/data-absent-reason';
const PATIENT_PROFICIENCY = 'http://hl7.org/fhir/StructureDefinition/patient-proficiency';
const LANGUAGE_ABILITY_MODE = 'http://terminology.hl7.org/CodeSystem/v3-LanguageAbilityMode';
const LANGUAGE_ABILITY_PROFICIENCY = 'http://terminology.hl7.org/CodeSystem/v3-LanguageAbilityProficiency';
const V3_ACT_CODE = 'http://terminology.hl7.org/CodeSystem/v3-ActCode';
const V3_PARTICIPATION_TYPE = 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType';
const ACT_CODE_OID = '2.16.840.1.113883.5.4';
/** v3 ActEncounterCode: the codes Encounter.class takes. */
const ENCOUNTER_CLASSES = new Set(['AMB', 'EMER', 'FLD', 'HH', 'IMP', 'ACUTE', 'NONAC', 'OBSENC', 'PRENC', 'SS', 'VR']);
/** x_EncounterParticipant, the typeCodes an encounterParticipant takes (all v3 ParticipationType codes). */
const ENCOUNTER_PARTICIPANT_TYPES = new Set(['ADM', 'ATND', 'CON', 'DIS', 'REF']);
const UUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

/**
 * Adds the header's attesters, encounter and the patient's languages to the converter's output: `resources[0]` is
 * the Composition; new resources are appended.
 */
export function convertHeader(resources: FhirResource[], context: HeaderContext): void {
  const composition = resources[0]!;
  const { ccda } = context;
  const made = new HeaderResources(resources, context);

  const patientNode = asNodes(asNodes(asNodes(ccda.recordTarget)[0]?.patientRole)[0]?.patient)[0];
  const patient = resources.find((resource) => resource.resourceType === 'Patient');
  if (patient !== undefined && patientNode !== undefined) {
    const communication = asNodes(patientNode.languageCommunication).map(languageCommunication).filter((entry) => entry !== undefined);
    if (communication.length > 0) patient.communication = communication;
  }

  const attesters = [
    ...asNodes(ccda.legalAuthenticator).slice(0, 1).map((element) => made.attester(element, 'legal', 'legalAuthenticator')),
    ...asNodes(ccda.authenticator).map((element, i) => made.attester(element, 'professional', `authenticator-${i + 1}`)),
  ].filter((attester) => attester !== undefined);
  if (attesters.length > 0) composition.attester = attesters;

  const encounter = asNodes(asNodes(ccda.componentOf)[0]?.encompassingEncounter)[0];
  if (encounter !== undefined) composition.encounter = { reference: `Encounter/${made.encounter(encounter)}` };
}

/** One languageCommunication as a Patient.communication; undefined without a language code (FHIR requires one). */
function languageCommunication(element: Node): Node | undefined {
  const language = asNodes(element.languageCode)[0];
  const code = typeof language?.['@_code'] === 'string' ? language['@_code'].trim() : '';
  if (code === '') return undefined;
  const display = language!['@_displayName'];
  const proficiency = [
    ...codingOf(element.proficiencyLevelCode, LANGUAGE_ABILITY_PROFICIENCY).map((valueCoding) => ({ url: 'level', valueCoding })),
    ...codingOf(element.modeCode, LANGUAGE_ABILITY_MODE).map((valueCoding) => ({ url: 'type', valueCoding })),
  ];
  const preference = (asNodes(element.preferenceInd)[0]?.['@_value'] as string | undefined)?.trim();
  return {
    ...(proficiency.length > 0 ? { extension: [{ url: PATIENT_PROFICIENCY, extension: proficiency }] } : {}),
    language: { coding: [{ system: 'urn:ietf:bcp:47', code, ...(typeof display === 'string' && display !== '' ? { display } : {}) }] },
    ...(preference === 'true' || preference === 'false' ? { preferred: preference === 'true' } : {}),
  };
}

/** A coded value of a fixed code system (the document's codeSystem attribute is optional there) as a Coding. */
function codingOf(value: unknown, system: string): Node[] {
  const node = asNodes(value)[0];
  const code = node?.['@_code'];
  if (typeof code !== 'string' || code === '') return [];
  const display = node!['@_displayName'];
  return [{ system, code, ...(typeof display === 'string' && display !== '' ? { display } : {}) }];
}

/**
 * The header's people, organizations, places and encounter as resources. One named twice (a clinician who signs and
 * attends, an author who also authenticates) is appended twice and made one resource by resources.ts, which fills
 * the first mention in with what later ones add.
 */
class HeaderResources {
  private readonly resources: FhirResource[];
  private readonly context: HeaderContext;

  constructor(resources: FhirResource[], context: HeaderContext) {
    this.resources = resources;
    this.context = context;
  }

  attester(element: Node, mode: 'legal' | 'professional', purpose: string): Node | undefined {
    const assigned = asNodes(element.assignedEntity)[0];
    if (assigned === undefined) return undefined;
    const party = this.party(assigned, purpose);
    const time = dateTime(asNodes(element.time)[0]);
    if (party === undefined && time === undefined) return undefined;
    return { mode, ...(time ? { time } : {}), ...(party ? { party: { reference: party } } : {}) };
  }

  /** The person an assignedEntity names (a Practitioner), else its represented organization. */
  private party(assigned: Node, purpose: string): string | undefined {
    const practitioner = this.practitioner(assigned, purpose);
    if (practitioner !== undefined) return `Practitioner/${practitioner}`;
    const organization = this.organization(asNodes(assigned.representedOrganization)[0], `${purpose}-organization`);
    return organization === undefined ? undefined : `Organization/${organization}`;
  }

  /** A Practitioner for an assignedEntity that names a person or carries an id; undefined otherwise. */
  private practitioner(assigned: Node, purpose: string): string | undefined {
    const person = asNodes(assigned.assignedPerson)[0];
    const identifier = identifiers(assigned.id, this.context.ids);
    if (person === undefined && identifier === undefined) return undefined;
    const id = this.idOf('Practitioner', assigned, purpose);
    this.add({
      resourceType: 'Practitioner',
      id,
      identifier,
      name: names(person?.name),
      telecom: telecoms(assigned.telecom),
      address: addresses(assigned.addr),
    });
    return id;
  }

  private organization(element: Node | undefined, purpose: string): string | undefined {
    if (element === undefined) return undefined;
    const name = firstText(element.name);
    const identifier = identifiers(element.id, this.context.ids);
    // An organization with neither a name nor an identifier says nothing (and is not valid FHIR, org-1).
    if (name === undefined && identifier === undefined) return undefined;
    const id = this.idOf('Organization', element, purpose);
    // An organization's telecom and address are never 'home' (org-2, org-3): a sender's HP says nothing there.
    const notHome = (list: Node[] | undefined): Node[] | undefined => list?.map((entry) => (entry.use === 'home' ? { ...entry, use: undefined } : entry));
    this.add({ resourceType: 'Organization', id, identifier, name, telecom: notHome(telecoms(element.telecom)), address: notHome(addresses(element.addr)) });
    return id;
  }

  encounter(element: Node): string {
    const { patientId } = this.context;
    const id = this.idOf('Encounter', element, 'encompassingEncounter');
    const code = asNodes(element.code)[0];
    const codeSystem = code?.['@_codeSystem'];
    const classCode = typeof code?.['@_code'] === 'string' && (codeSystem === undefined || codeSystem === ACT_CODE_OID) && ENCOUNTER_CLASSES.has(code['@_code']) ? code['@_code'] : undefined;
    const period = periodOf(asNodes(element.effectiveTime)[0]);

    const participant: Node[] = [];
    for (const responsible of asNodes(element.responsibleParty)) {
      const practitioner = this.practitionerOf(responsible, 'responsibleParty');
      if (practitioner !== undefined) participant.push({ type: [participationType('RESP', 'responsible party')], individual: { reference: `Practitioner/${practitioner}` } });
    }
    asNodes(element.encounterParticipant).forEach((encounterParticipant, i) => {
      const practitioner = this.practitionerOf(encounterParticipant, `encounterParticipant-${i + 1}`);
      if (practitioner === undefined) return;
      const typeCode = encounterParticipant['@_typeCode'];
      participant.push({
        ...(typeof typeCode === 'string' && ENCOUNTER_PARTICIPANT_TYPES.has(typeCode) ? { type: [participationType(typeCode)] } : {}),
        period: periodOf(asNodes(encounterParticipant.time)[0]),
        individual: { reference: `Practitioner/${practitioner}` },
      });
    });

    const facility = asNodes(asNodes(element.location)[0]?.healthCareFacility)[0];
    const location = facility === undefined ? undefined : this.location(facility);
    const serviceProvider = facility === undefined ? undefined : this.organization(asNodes(facility.serviceProviderOrganization)[0], 'serviceProviderOrganization');
    const dischargeDisposition = concept(element.dischargeDispositionCode);

    this.add({
      resourceType: 'Encounter',
      id,
      identifier: identifiers(element.id, this.context.ids),
      status: period?.end !== undefined ? 'finished' : 'unknown',
      class: classCode !== undefined ? { system: V3_ACT_CODE, code: classCode } : { extension: [{ url: DATA_ABSENT_REASON, valueCode: 'unknown' }] },
      // The code is the encounter's class when it is one (AMB, IMP, EMER, ...), else its type.
      type: code === undefined || classCode !== undefined ? undefined : [concept(code)],
      subject: { reference: `Patient/${patientId}` },
      participant,
      period,
      hospitalization: dischargeDisposition === undefined ? undefined : { dischargeDisposition },
      location: location === undefined ? undefined : [{ location: { reference: `Location/${location}` } }],
      serviceProvider: serviceProvider === undefined ? undefined : { reference: `Organization/${serviceProvider}` },
    });
    return id;
  }

  private practitionerOf(participation: Node, purpose: string): string | undefined {
    const assigned = asNodes(participation.assignedEntity)[0];
    return assigned === undefined ? undefined : this.practitioner(assigned, purpose);
  }

  /** healthCareFacility as a Location: the place's name and address, the facility's code as its type. */
  private location(facility: Node): string | undefined {
    const place = asNodes(facility.location)[0];
    const name = firstText(place?.name);
    const identifier = identifiers(facility.id, this.context.ids);
    const type = concept(facility.code);
    if (name === undefined && identifier === undefined && type === undefined) return undefined;
    const id = this.idOf('Location', facility, 'healthCareFacility');
    this.add({ resourceType: 'Location', id, identifier, name, type: type === undefined ? undefined : [type], address: addresses(place?.addr)?.[0] });
    return id;
  }

  /**
   * The id normalize.ts placed on the element (first among its ids), else one made the same way: from the element's
   * own id, else from the document and the element's purpose in the header.
   */
  private idOf(resourceType: string, element: Node, purpose: string): string {
    const placed = asNodes(element.id)[0]?.['@_root'];
    if (typeof placed === 'string' && this.context.ids.has(placed)) return placed;
    const own = firstUsableId(element.id);
    const [root, extension] = this.context.documentKey;
    const id = own === undefined
      ? deterministicId('CdaElement', root, extension, 'header', resourceType, purpose)
      : deterministicId('CdaElement', String(own['@_root']), String(own['@_extension'] ?? ''));
    this.context.ids.add(id);
    return id;
  }

  private add(resource: FhirResource): void {
    this.resources.push(resource);
  }
}

function participationType(code: string, display?: string): Node {
  return { coding: [{ system: V3_PARTICIPATION_TYPE, code, ...(display ? { display } : {}) }] };
}

/**
 * CDA IIs as Identifiers, as the converter writes them (system from the root, value the extension; a root alone as
 * an RFC 3986 URI): ids normalize.ts placed, UUID roots without an extension (the converter's own resource ids) and
 * nullFlavors are not identifiers.
 */
function identifiers(ids: unknown, placed: ReadonlySet<string>): Array<{ system?: string; value?: string }> | undefined {
  const out: Array<{ system?: string; value?: string }> = [];
  for (const id of asNodes(ids)) {
    const root = id['@_root'];
    if (typeof root !== 'string' || root === '' || id['@_nullFlavor'] !== undefined || placed.has(root)) continue;
    const extension = typeof id['@_extension'] === 'string' && id['@_extension'] !== '' ? id['@_extension'] : undefined;
    if (extension === undefined && UUID.test(root)) continue;
    // A root alone is itself the identifier (resources.ts iiIdentifier), not a system without a value.
    out.push(extension !== undefined ? { system: mapCcdaSystemToFhir(root), value: extension } : iiIdentifier(id));
  }
  return out.length > 0 ? out : undefined;
}

/** The first text among repetitions of an element (the parser gives a string, a mixed element or a list of them). */
function firstText(value: unknown): string | undefined {
  for (const item of Array.isArray(value) ? value : [value]) {
    const found = text(item);
    if (found !== undefined) return found;
  }
  return undefined;
}

/** The text of a name part or other text element: a string, or the text of a mixed element. */
function text(value: unknown): string | undefined {
  if (typeof value === 'string') return value.trim() === '' ? undefined : value.trim();
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) return text((value as Node)['#text']);
  return undefined;
}

const NAME_USES: Readonly<Record<string, string>> = { C: 'usual', L: 'official', TEMP: 'temp', P: 'nickname', ANON: 'anonymous' };
const ADDRESS_USES: Readonly<Record<string, string>> = { HP: 'home', H: 'home', WP: 'work', TMP: 'temp', OLD: 'old' };
const TELECOM_USES: Readonly<Record<string, string>> = { HP: 'home', H: 'home', WP: 'work', MC: 'mobile', TMP: 'temp', OLD: 'old' };

function parts(value: unknown): string[] | undefined {
  const list = (Array.isArray(value) ? value : [value]).map(text).filter((part): part is string => part !== undefined);
  return list.length > 0 ? list : undefined;
}

function names(value: unknown): Node[] | undefined {
  const out: Node[] = [];
  for (const name of Array.isArray(value) ? value : [value]) {
    // A name sent as text alone (<name>Henry Seven</name>) is parsed as the string itself, or as a mixed element.
    if (typeof name === 'string' || (name !== null && typeof name === 'object' && name.given === undefined && name.family === undefined)) {
      const whole = text(name);
      if (whole !== undefined) out.push({ text: whole });
      continue;
    }
    if (name === null || typeof name !== 'object') continue;
    out.push({ use: NAME_USES[String(name['@_use'] ?? '')], prefix: parts(name.prefix), given: parts(name.given), family: parts(name.family)?.[0], suffix: parts(name.suffix) });
  }
  return out.length > 0 ? out : undefined;
}

function addresses(value: unknown): Node[] | undefined {
  const out = asNodes(value).map((addr) => ({
    use: ADDRESS_USES[String(addr['@_use'] ?? '')],
    line: parts(addr.streetAddressLine),
    city: parts(addr.city)?.[0],
    state: parts(addr.state)?.[0],
    postalCode: parts(addr.postalCode)?.[0],
    country: parts(addr.country)?.[0],
  }));
  return out.length > 0 ? out : undefined;
}

function telecoms(value: unknown): Node[] | undefined {
  const out: Node[] = [];
  for (const telecom of asNodes(value)) {
    const url = telecom['@_value'];
    if (typeof url !== 'string' || url.trim() === '') continue;
    const [, scheme = '', rest = url] = /^(tel|mailto|fax|https?):(.*)$/i.exec(url.trim()) ?? [];
    const system = { tel: 'phone', mailto: 'email', fax: 'fax', http: 'url', https: 'url' }[scheme.toLowerCase()] ?? 'other';
    out.push({ system, value: system === 'url' ? url.trim() : rest.trim(), use: TELECOM_USES[String(telecom['@_use'] ?? '')] });
  }
  return out.length > 0 ? out : undefined;
}

function concept(value: unknown): Node | undefined {
  const code = asNodes(value)[0];
  if (code === undefined || (code['@_nullFlavor'] !== undefined && code['@_code'] === undefined)) return undefined;
  return mapCcdaCodeToCodeableConcept(code as CcdaCode) as Node | undefined;
}

/** A TS as a FHIR dateTime (dates come out in the encoded form tidying restores). */
function dateTime(ts: Node | undefined): string | undefined {
  const value = ts?.['@_value'];
  return typeof value === 'string' && value.trim() !== '' ? mapCcdaToFhirDateTime(value.trim()) : undefined;
}

/** An IVL_TS (low/high, or a single value as its start) as a Period. */
function periodOf(ivl: Node | undefined): { start?: string; end?: string } | undefined {
  if (ivl === undefined) return undefined;
  const start = dateTime(asNodes(ivl.low)[0]) ?? dateTime(ivl);
  const end = dateTime(asNodes(ivl.high)[0]);
  return start === undefined && end === undefined ? undefined : { ...(start ? { start } : {}), ...(end ? { end } : {}) };
}

/**
 * The patient identifiers a stored message carries, read from its bytes by its grammar, for the store's
 * attribution of messages that no mapping tied to a patient (store/message-patients.ts): the ingest worker's for a
 * message it fails or that wrote nothing of a patient, and the erasure's scan of messages still under the master key.
 *
 * What is read, per protocol:
 * - HL7 v2 ('hl7v2-*'): PID-3, PID-2 and PID-4 (CX) of every PID, and MRG-1 (prior patient identifiers); the first
 *   PID is the message's own patient. An identifier's authority is CX-4, else, as the mappers fall back
 *   (mappers/hl7v2/adt-common.ts sendingFacility), MSH-4, MSH-3, or the source the row is bound to. A message the
 *   parser refuses (a refused one may break the grammar anywhere) is read leniently: its lines split by the
 *   delimiters MSH-1/MSH-2 give, without escapes decoded.
 * - C-CDA ('cda'): recordTarget/patientRole/id (root and extension, as the converter makes identifiers of them); the
 *   first recordTarget is the document's own patient.
 * - DICOM ('dicom'): Patient ID (0010,0020) with Issuer of Patient ID (0010,0021) and its qualifiers, else the calling
 *   AE title, else the bound source, as the DICOM mapper keys the patient.
 * Systems are made by the mappers' rules (urn:oid:, urn:uuid:, a URI, urn:anchorline:authority:<name>) plus the
 * mapping config's identifierSystems entry for the authority, when the caller gives one.
 *
 * Parsing is bounded as at intake (hl7v2 limits, C-CDA limits, a DICOM header inflated at most so far), and every
 * failure reads as "cannot be attributed" (undefined), never as a throw: one broken message must not stop an erasure.
 * Nothing here logs what it reads.
 */
import { convertXmlToCcda } from '@medplum/ccda';
import { DEFAULT_CDA_LIMITS, readCdaHeaderText, type CdaLimits } from '../formats/cda/index.ts';
import { parseDicomInstance } from '../formats/dicom/index.ts';
import { iiIdentifier } from '../mappers/index.ts';
import { decodeHl7Bytes, DEFAULT_HL7_LIMITS, fieldOf, HL7_NULL, parseHl7, readMshHeader, type Hl7Limits, type Hl7Repetition, type Hl7Segment, type MshHeader } from '../formats/hl7v2/index.ts';
import type { MessageBytes, MessagePatientIdentifier, MessagePatientReader, MessagePatients } from '../store/index.ts';
import { selectionHeader } from './ingest.ts';
import { boundSourceOf } from './origin.ts';

export interface MessagePatientReaderOptions {
  /** Charset of HL7 v2 messages without MSH-18 (mllp.defaultCharset). */
  defaultCharset: string;
  /** Caps on a message's parsed structure (config hl7v2); absent: the defaults. */
  hl7Limits?: Hl7Limits;
  /** C-CDA size and depth limits (config cda); absent: the defaults. */
  cdaLimits?: CdaLimits;
  /** Most a deflated DICOM data set is inflated to for its header, in bytes. Default 2 MiB. */
  dicomMaxInflatedBytes?: number;
  /**
   * The mapping config's identifierSystems for a message of this header (the worker: its mapping registry's
   * selection; an erasure: the engine's `mapping` settings). Absent: only the systems the mappers make without one.
   */
  identifierSystems?: (header: MshHeader | undefined) => Readonly<Record<string, string>>;
}

const DEFAULT_DICOM_HEADER_BYTES = 2 * 1024 * 1024;

interface Authority {
  namespace: string;
  universalId: string;
  universalIdType: string;
}

const NO_AUTHORITY: Authority = { namespace: '', universalId: '', universalIdType: '' };
const OID = /^[0-2](\.(0|[1-9]\d*))+$/;
const UUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
const ABSOLUTE_URI = /^[A-Za-z][A-Za-z0-9+.-]*:\S+$/;

const isEmpty = (authority: Authority): boolean => authority.namespace === '' && authority.universalId === '';

/**
 * An identifier with the systems the mappers' identifierSystem (mappers/hl7v2/datatypes.ts) gives its authority, and
 * the name its assigner would show (namespace, else universal id). Undefined for an empty value.
 */
function identifierOf(value: string, authority: Authority, configured: Readonly<Record<string, string>>): MessagePatientIdentifier | undefined {
  if (value === '') return undefined;
  if (isEmpty(authority)) return { value, systems: [], authorities: [] };
  const systems: string[] = [];
  const { namespace, universalId } = authority;
  const type = authority.universalIdType.toUpperCase();
  if (universalId !== '') {
    if (type === 'ISO' && OID.test(universalId)) systems.push(`urn:oid:${universalId}`);
    if (type === 'UUID' && UUID.test(universalId)) systems.push(`urn:uuid:${universalId.toLowerCase()}`);
    if (type === 'URI' && ABSOLUTE_URI.test(universalId)) systems.push(universalId);
  }
  const key = namespace || universalId;
  if (Object.hasOwn(configured, key)) systems.push(configured[key]!);
  systems.push(`urn:anchorline:authority:${encodeURIComponent(key)}`);
  return { value, systems, authorities: [key] };
}

export function createMessagePatientReader(options: MessagePatientReaderOptions): MessagePatientReader {
  const systemsFor = (header: MshHeader | undefined): Readonly<Record<string, string>> => {
    try {
      return options.identifierSystems?.(header) ?? {};
    } catch {
      return {};
    }
  };
  return {
    read(message: MessageBytes): MessagePatients | undefined {
      if (message.raw.length === 0) return undefined;
      try {
        if (message.protocol.startsWith('hl7v2')) return readHl7(message, options, systemsFor);
        if (message.protocol === 'cda') return readCda(message, options);
        if (message.protocol === 'dicom') return readDicom(message, options, systemsFor);
      } catch {
        // A message its grammar refuses cannot be attributed; that is an answer, not an error.
      }
      return undefined;
    },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// HL7 v2

/** A value as the mappers read it: trimmed, and the explicit null `""` as nothing. */
function text(value: string | undefined): string {
  const trimmed = (value ?? '').trim();
  return trimmed === HL7_NULL ? '' : trimmed;
}

const component = (repetition: Hl7Repetition | undefined, n: number, sub = 1): string => text(repetition?.[n - 1]?.[sub - 1]);

function hdOf(repetition: Hl7Repetition | undefined): Authority {
  return { namespace: component(repetition, 1), universalId: component(repetition, 2), universalIdType: component(repetition, 3) };
}

function readHl7(message: MessageBytes, options: MessagePatientReaderOptions, systemsFor: (header: MshHeader | undefined) => Readonly<Record<string, string>>): MessagePatients | undefined {
  let decoded: string;
  let header: MshHeader | undefined;
  try {
    const result = decodeHl7Bytes(message.raw, options.defaultCharset);
    decoded = result.text;
    header = result.header;
  } catch {
    // Refused for its charset: identifiers are nearly always ASCII, which latin1 reads as sent.
    decoded = message.raw.toString('latin1');
  }
  let segments: Hl7Segment[];
  try {
    segments = parseHl7(decoded, options.hl7Limits).segments;
  } catch {
    segments = lenientSegments(decoded, options.hl7Limits);
  }
  const msh = segments.find((segment) => segment.name === 'MSH');
  if (header === undefined) {
    try {
      header = readMshHeader(decoded);
    } catch {
      header = undefined;
    }
  }
  // Identifiers without CX-4 take the sending facility, else the sending application, else the bound source.
  const facility = hdOf(fieldOf(msh, 4)[0]);
  const application = hdOf(fieldOf(msh, 3)[0]);
  const bound = boundSourceOf(message.source);
  const fallback = !isEmpty(facility) ? facility : !isEmpty(application) ? application : bound !== undefined ? { namespace: bound, universalId: '', universalIdType: '' } : NO_AUTHORITY;
  const configured = systemsFor(header);
  const identifiersOf = (field: Hl7Repetition[]): MessagePatientIdentifier[] =>
    field.flatMap((repetition) => {
      const own = { namespace: component(repetition, 4, 1), universalId: component(repetition, 4, 2), universalIdType: component(repetition, 4, 3) };
      const identifier = identifierOf(component(repetition, 1), isEmpty(own) ? fallback : own, configured);
      return identifier === undefined ? [] : [identifier];
    });
  const pids = segments.filter((segment) => segment.name === 'PID');
  const ofPid = (pid: Hl7Segment): MessagePatientIdentifier[] => [3, 2, 4].flatMap((n) => identifiersOf(fieldOf(pid, n)));
  const others = [...pids.slice(1).flatMap(ofPid), ...segments.filter((segment) => segment.name === 'MRG').flatMap((mrg) => identifiersOf(fieldOf(mrg, 1)))];
  if (pids.length === 0 && others.length === 0) return undefined;
  return { own: pids[0] === undefined ? [] : ofPid(pids[0]), others };
}

/** The fields the lenient reader keeps of each segment it reads: the patient identifiers and the sender. */
const LENIENT_FIELDS: Readonly<Record<string, readonly number[]>> = { MSH: [3, 4], PID: [2, 3, 4], MRG: [1] };

/**
 * Segments of a message the parser refused, split by its own delimiters (MSH-1 and MSH-2, else the standard ones),
 * escapes left as sent: enough to find PID and MRG fields in a message broken elsewhere. Only the fields read here
 * are split, each into at most `limits.maxRepetitionsPerField` repetitions, and at most `limits.maxSegments`
 * segments are kept: a message refused for its size costs no more than one the parser takes.
 */
function lenientSegments(decoded: string, limits: Hl7Limits = DEFAULT_HL7_LIMITS): Hl7Segment[] {
  const lines = decoded.split(/\r\n|\r|\n/);
  const mshLine = lines.find((line) => line.startsWith('MSH') && line.length >= 8);
  const field = mshLine?.[3] ?? '|';
  const [componentSep = '^', repetitionSep = '~', , subcomponentSep = '&'] = mshLine === undefined ? [] : [...mshLine.slice(4, 8)];
  const segments: Hl7Segment[] = [];
  for (const line of lines) {
    if (segments.length >= limits.maxSegments) break;
    const name = line.slice(0, 3);
    const wanted = Object.hasOwn(LENIENT_FIELDS, name) ? LENIENT_FIELDS[name] : undefined;
    if (wanted === undefined || (line.length > 3 && line[3] !== field)) continue;
    const parts = line.split(field, Math.max(...wanted) + 1);
    const fields: Hl7Segment['fields'] = [];
    for (const n of wanted) {
      // MSH-1 is the field separator itself, so MSH's fields sit one place later than every other segment's.
      const value = parts[name === 'MSH' ? n - 1 : n] ?? '';
      fields[n] = value.split(repetitionSep, limits.maxRepetitionsPerField).map((repetition) => repetition.split(componentSep, limits.maxComponentsPerRepetition).map((part) => part.split(subcomponentSep, limits.maxSubcomponentsPerComponent)));
    }
    segments.push({ name, fields });
  }
  return segments;
}

// ---------------------------------------------------------------------------------------------------------------
// C-CDA

type Node = Record<string, unknown>;

function nodes(value: unknown): Node[] {
  const isNode = (each: unknown): each is Node => each !== null && typeof each === 'object' && !Array.isArray(each);
  if (Array.isArray(value)) return value.filter(isNode);
  return isNode(value) ? [value] : [];
}

/** An II as the converter makes an identifier of it (the mappers' iiIdentifier), with the root as its authority. */
function recordTargetIdentifier(id: Node): MessagePatientIdentifier | undefined {
  const root = id['@_root'];
  if (typeof root !== 'string' || root === '' || id['@_nullFlavor'] !== undefined) return undefined;
  const { system, value } = iiIdentifier(id);
  // A root alone is itself the identifier (system urn:ietf:rfc:3986), with no authority to name.
  return system === 'urn:ietf:rfc:3986' ? { value, systems: [system], authorities: [] } : { value, systems: [system], authorities: [root] };
}

function readCda(message: MessageBytes, options: MessagePatientReaderOptions): MessagePatients | undefined {
  // The header only (everything before the body), checked as the intake checks the whole document.
  const { text: header } = readCdaHeaderText(message.raw, options.cdaLimits ?? DEFAULT_CDA_LIMITS, message.charset ?? undefined);
  const ccda = convertXmlToCcda(header) as unknown as Node;
  const targets = nodes(ccda?.recordTarget).map((target) =>
    nodes(target.patientRole).flatMap((role) => nodes(role.id).flatMap((id) => {
      const identifier = recordTargetIdentifier(id);
      return identifier === undefined ? [] : [identifier];
    })),
  );
  if (targets.length === 0) return undefined;
  return { own: targets[0]!, others: targets.slice(1).flat() };
}

// ---------------------------------------------------------------------------------------------------------------
// DICOM

function readDicom(message: MessageBytes, options: MessagePatientReaderOptions, systemsFor: (header: MshHeader | undefined) => Readonly<Record<string, string>>): MessagePatients | undefined {
  const { header } = parseDicomInstance(message.raw, { maxInflatedBytes: options.dicomMaxInflatedBytes ?? DEFAULT_DICOM_HEADER_BYTES });
  const { id, issuer = '', issuerUniversalId = '', issuerUniversalIdType = '' } = header.patient;
  if (id === undefined || id.trim() === '') return undefined;
  // The authority the DICOM mapper keys the patient by: the issuer, else the calling AE title (the row's sender), else
  // (STOW-RS) the bound source.
  const bound = boundSourceOf(message.source) ?? '';
  const authority = issuer !== '' || issuerUniversalId !== '' ? { namespace: issuer, universalId: issuerUniversalId, universalIdType: issuerUniversalIdType } : { namespace: message.sender || bound, universalId: '', universalIdType: '' };
  // The config an instance is mapped with: MSH-3 its calling AE title, MSH-4 its issuer (workers/dicom-converter.ts).
  const configured = systemsFor(selectionHeader({ application: message.sender, facility: issuer, messageType: 'DICOM', controlId: '' }));
  const identifier = identifierOf(id.trim(), authority, configured);
  return { own: identifier === undefined ? [] : [identifier], others: [] };
}

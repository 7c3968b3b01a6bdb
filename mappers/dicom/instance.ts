/**
 * One DICOM instance's header -> Patient, Endpoint and ImagingStudy drafts.
 *
 * An instance describes its study only in part: the one series and the one instance it belongs to. Its
 * ImagingStudy draft therefore carries a `series` merge operation (mappers/merge.ts) that adds the instance to what
 * the study already holds, so instances arriving one at a time make one ImagingStudy that grows version by version,
 * whatever order they come in. Study-level elements (identifier, subject, started, description) are the same in
 * every instance of a study and simply replace.
 *
 * The Patient is keyed exactly as the HL7 mappers key it, deterministicId('Patient', system, value), with the
 * system from the Issuer of Patient ID by the same identifierSystem rules and the same mapping config, so the PACS
 * and the HIS name one Patient. A PACS is not the patient's master: its Patient draft only adds its identifier and
 * fills in a name, sex or birth date the record lacks; it never overwrites what the HIS sent.
 *
 * Each instance in the ImagingStudy carries the SHA-256 of its whole Part 10 file (its blob) in the extension
 * DICOM_BLOB_EXTENSION_URL, so the pixel data is reachable from the record (GET /blobs/{sha256}).
 */

import { AnchorlineError } from '../../errors/index.ts';
import type { DicomInstanceHeader, DicomPersonName, PersonNameGroup } from '../../formats/dicom/index.ts';
import { UNIDENTIFIED_PATIENT_SYSTEM, deterministicId } from '../ids.ts';
import type { MappingIssue } from '../issues.ts';
import type { AddIdentifiersOperation, IfAbsentOperation, ImagingSeriesEntry, ImagingSeriesOperation } from '../merge.ts';
import type { Hl7MappingOptions, MappingResult, ResourceDraft } from '../types.ts';
import { type AssigningAuthority, type HumanName, UNIDENTIFIED_SENDER, V2_0203_SYSTEM, configuredAuthority, identifierSystem, pruneEmpty, toFhirDate, toFhirDateTime } from '../hl7v2/datatypes.ts';
import { DICOM_DCM, bodySiteCoding, lateralityCoding } from './codes.ts';

/**
 * Extension on ImagingStudy.series.instance: valueString is the lowercase hex SHA-256 of the instance's whole
 * DICOM Part 10 file as received, the name of its blob in the blob store.
 */
export const DICOM_BLOB_EXTENSION_URL = 'urn:anchorline:extension:dicom-instance-blob-sha256';

/** The identifier system of Study Instance UIDs (FHIR R4 ImagingStudy: value is urn:oid:<uid>). */
export const DICOM_UID_SYSTEM = 'urn:dicom:uid';
const RFC_3986 = 'urn:ietf:rfc:3986';
const ISO_21090_EN_REPRESENTATION = 'http://hl7.org/fhir/StructureDefinition/iso21090-EN-representation';

export interface DicomMappingContext {
  /** The mapping config of the sender (identifierSystems, timeZone, localCodeSystemBase). */
  options: Hl7MappingOptions;
  /** Lowercase hex SHA-256 of the whole instance: its blob. */
  blobSha256: string;
  /** The engine's DICOMweb base URL (the Endpoint's address). */
  dicomwebBaseUrl: string;
  /**
   * The calling AE title of the sender, '' when not known (STOW-RS). Patient IDs sent without an Issuer of Patient
   * ID are taken to be issued by the sending application, as HL7 takes them to be issued by MSH-4.
   */
  sendingAeTitle: string;
}

/**
 * The assigning authority of the instance's Patient ID: the Issuer of Patient ID, else the calling AE title (a
 * modality's or PACS's ids are unique within it, as an HL7 sender's MRNs within MSH-4). Over STOW-RS there is no AE
 * title: then the source's configured default authority (mapping config `defaultAuthority`), else the source the
 * credential is bound to, each an information issue, else the authority every sender that names itself nowhere
 * shares, a warning: one of them should be given a default authority or a bound credential.
 */
function patientAuthority(header: DicomInstanceHeader, context: DicomMappingContext, issues: MappingIssue[]): AssigningAuthority {
  const { issuer = '', issuerUniversalId = '', issuerUniversalIdType = '' } = header.patient;
  if (issuer !== '' || issuerUniversalId !== '') return { namespace: issuer, universalId: issuerUniversalId, universalIdType: issuerUniversalIdType };
  if (context.sendingAeTitle !== '') return { namespace: context.sendingAeTitle, universalId: '', universalIdType: '' };
  const { authority, from } = configuredAuthority(context.options);
  issues.push({
    severity: authority === UNIDENTIFIED_SENDER ? 'warning' : 'information',
    code: 'ANCHORLINE_ISSUE_AUTHORITY_FALLBACK',
    location: '(0010,0021)',
    detail: `(0010,0021) Issuer of Patient ID is empty and no AE title sent the instance; the Patient ID takes ${from}`,
  });
  return authority;
}

function humanName(group: PersonNameGroup | undefined, representation?: 'IDE' | 'SYL'): HumanName | undefined {
  if (group === undefined) return undefined;
  const name = pruneEmpty<HumanName & { extension?: unknown[] }>({
    ...(representation === undefined ? {} : { extension: [{ url: ISO_21090_EN_REPRESENTATION, valueCode: representation }] }),
    use: 'official',
    family: group.family,
    given: group.given,
    prefix: group.prefix === undefined ? undefined : [group.prefix],
    suffix: group.suffix === undefined ? undefined : [group.suffix],
  });
  return name?.family === undefined && name?.given === undefined ? undefined : name;
}

/**
 * PN -> HumanNames: the alphabetic group, then the ideographic (Hanja, Kanji) and phonetic (Hangul, Kana) groups
 * marked with the ISO 21090 representation extension (IDE, SYL), as the HL7 v2 mapper writes repeated XPNs.
 */
function humanNames(name: DicomPersonName | undefined): HumanName[] | undefined {
  if (name === undefined) return undefined;
  const names = [humanName(name.alphabetic), humanName(name.ideographic, 'IDE'), humanName(name.phonetic, 'SYL')].filter((n): n is HumanName => n !== undefined);
  return names.length > 0 ? names : undefined;
}

const GENDER: Readonly<Record<string, string>> = { M: 'male', F: 'female', O: 'other' };

/** DA -> FHIR date. Placeholder dates (00000000) and malformed ones are dropped rather than refusing the image. */
function fhirDate(da: string | undefined): string | undefined {
  if (da === undefined) return undefined;
  const compact = da.replace(/\./g, '');
  if (!/^\d{8}$/.test(compact)) return undefined;
  try {
    return toFhirDate(compact, 'DA');
  } catch {
    return undefined;
  }
}

/** DA + TM (+ Timezone Offset From UTC) -> FHIR dateTime; a time without an offset is in the config's time zone. */
function fhirDateTime(da: string | undefined, tm: string | undefined, offset: string | undefined, timeZone: string): string | undefined {
  if (da === undefined) return undefined;
  const date = da.replace(/\./g, '');
  if (!/^\d{8}$/.test(date)) return undefined;
  let time = '';
  if (tm !== undefined) {
    const match = /^(\d{2})(\d{2})?(\d{2})?(?:\.(\d{1,6}))?$/.exec(tm.replace(/:/g, ''));
    if (match !== null) time = `${match[1]}${match[2] ?? ''}${match[3] ?? ''}${match[3] !== undefined && match[4] !== undefined ? `.${match[4].slice(0, 4)}` : ''}`;
  }
  const zone = time !== '' && offset !== undefined && /^[+-]\d{4}$/.test(offset) ? offset : '';
  try {
    return toFhirDateTime(`${date}${time}${zone}`, 'DA/TM', timeZone);
  } catch {
    return fhirDate(date);
  }
}

/**
 * The Patient draft. An instance without a Patient ID (Type 2: present but empty in some equipment's output, emergency
 * studies of a patient not yet registered) keeps its study with a patient of that study alone, as an HL7 message
 * without any identifier keeps a patient of that message alone: keyed by the Study Instance UID, so every instance of
 * the study lands with one patient, and never matched to another patient by name or birth date, which would be a
 * guess. Linking it to the right patient is left to someone who can check.
 */
export function buildPatient(header: DicomInstanceHeader, context: DicomMappingContext, issues: MappingIssue[] = []): ResourceDraft {
  const patientId = header.patient.id;
  let draft: ResourceDraft;
  if (patientId === undefined) {
    issues.push({
      severity: 'warning',
      code: 'ANCHORLINE_ISSUE_PATIENT_UNIDENTIFIED',
      location: '(0010,0020)',
      detail: '(0010,0020) Patient ID is empty; the study is kept with a patient of that study alone',
    });
    draft = { resourceType: 'Patient', id: deterministicId('Patient', UNIDENTIFIED_PATIENT_SYSTEM, 'dicom-study', header.studyInstanceUid) };
  } else {
    const system = identifierSystem(patientAuthority(header, context, issues), '(0010,0021)', context.options);
    if (system === undefined) throw new AnchorlineError('ANCHORLINE_ERR_MAPPING_MISSING_FIELD', '(0010,0021): the Patient ID has no assigning authority', { location: '(0010,0021)' });
    draft = {
      resourceType: 'Patient',
      id: deterministicId('Patient', system, patientId),
      identifier: { $merge: 'add', identifier: [{ system, value: patientId }] } satisfies AddIdentifiersOperation,
    };
  }
  const name = humanNames(header.patient.name);
  const gender = header.patient.sex === undefined ? undefined : GENDER[header.patient.sex.toUpperCase()];
  const birthDate = fhirDate(header.patient.birthDate);
  if (name !== undefined) draft['name'] = { $merge: 'if-absent', value: name } satisfies IfAbsentOperation;
  if (gender !== undefined) draft['gender'] = { $merge: 'if-absent', value: gender } satisfies IfAbsentOperation;
  if (birthDate !== undefined) draft['birthDate'] = { $merge: 'if-absent', value: birthDate } satisfies IfAbsentOperation;
  return draft;
}

export function endpointId(dicomwebBaseUrl: string): string {
  return deterministicId('Endpoint', dicomwebBaseUrl);
}

/** The engine's own DICOMweb service, where every study it holds can be retrieved (WADO-RS). */
export function buildEndpoint(context: DicomMappingContext): ResourceDraft {
  return {
    resourceType: 'Endpoint',
    id: endpointId(context.dicomwebBaseUrl),
    status: 'active',
    connectionType: { system: 'http://terminology.hl7.org/CodeSystem/endpoint-connection-type', code: 'dicom-wado-rs', display: 'DICOM WADO-RS' },
    name: 'anchorline DICOMweb',
    payloadType: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/endpoint-payload-type', code: 'any', display: 'Any' }], text: 'DICOM' }],
    payloadMimeType: ['application/dicom'],
    address: context.dicomwebBaseUrl,
  };
}

export function imagingStudyId(studyInstanceUid: string): string {
  return deterministicId('ImagingStudy', DICOM_UID_SYSTEM, studyInstanceUid);
}

export function buildImagingStudy(header: DicomInstanceHeader, context: DicomMappingContext, patientId: string, issues: MappingIssue[] = []): ResourceDraft {
  const { options } = context;
  const { study, series, instance } = header;
  const endpoint = [{ reference: `Endpoint/${endpointId(context.dicomwebBaseUrl)}` }];
  // Without a Modality the series takes no modality from this instance; one its other instances give stays, and a
  // series none of whose instances gives one says it is not known (mappers/merge.ts).
  if (series.modality === undefined) {
    issues.push({ severity: 'warning', code: 'ANCHORLINE_ISSUE_MISSING_FIELD', location: '(0008,0060)', detail: '(0008,0060) Modality is empty; the series modality is taken from its other instances, or stated as not known' });
  }
  const seriesEntry = pruneEmpty<ImagingSeriesEntry>({
    uid: header.seriesInstanceUid,
    number: series.number,
    modality: series.modality === undefined ? undefined : { system: DICOM_DCM, code: series.modality },
    description: series.description,
    endpoint,
    bodySite: series.bodyPartExamined === undefined ? undefined : bodySiteCoding(series.bodyPartExamined, options.localCodeSystemBase),
    laterality: series.laterality === undefined ? undefined : lateralityCoding(series.laterality),
    started: fhirDateTime(series.date, series.time, study.timezoneOffset, options.timeZone),
    instance: [
      {
        extension: [{ url: DICOM_BLOB_EXTENSION_URL, valueString: context.blobSha256 }],
        uid: header.sopInstanceUid,
        sopClass: { system: RFC_3986, code: `urn:oid:${header.sopClassUid}` },
        number: instance.number,
      },
    ],
  })!;
  const identifier: unknown[] = [{ system: DICOM_UID_SYSTEM, value: `urn:oid:${header.studyInstanceUid}` }];
  if (study.accessionNumber !== undefined) identifier.push({ type: { coding: [{ system: V2_0203_SYSTEM, code: 'ACSN' }] }, value: study.accessionNumber });
  const draft: ResourceDraft = {
    resourceType: 'ImagingStudy',
    id: imagingStudyId(header.studyInstanceUid),
    identifier,
    status: 'available',
    subject: { reference: `Patient/${patientId}` },
    endpoint,
    series: { $merge: 'series', series: [seriesEntry] } satisfies ImagingSeriesOperation,
  };
  const started = fhirDateTime(study.date, study.time, study.timezoneOffset, options.timeZone);
  if (started !== undefined) draft['started'] = started;
  if (study.description !== undefined) draft['description'] = study.description;
  return draft;
}

/**
 * Maps one instance. Pure; throws AnchorlineError for what the instance cannot give (a Patient ID without any
 * assigning authority, an issuer universal id that is not what its type says). What it maps past (no Patient ID, no
 * Modality, a file meta that disagrees with the data set) is in the result's issues.
 */
export function mapDicomInstance(header: DicomInstanceHeader, context: DicomMappingContext): MappingResult {
  const issues: MappingIssue[] = (header.anomalies ?? []).map(({ code, ...anomaly }) => ({ severity: 'warning', code: code ?? 'ANCHORLINE_ISSUE_INVALID_VALUE', ...anomaly }));
  const patient = buildPatient(header, context, issues);
  // No eventTime: an instance is not an event that orders demographics, and its study merges are order-free.
  const drafts = [patient, buildEndpoint(context), buildImagingStudy(header, context, patient.id, issues)];
  return issues.length > 0 ? { drafts, issues } : { drafts };
}

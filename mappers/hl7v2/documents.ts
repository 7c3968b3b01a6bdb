/**
 * MDM^T02 (original document notification and content) -> a DocumentReference draft, after the HL7 v2-to-FHIR IG
 * segment map TXA[DocumentReference].
 *
 * The document travels in the OBX segments: text (TX, FT, ST: one OBX per line or paragraph) becomes one text/plain
 * attachment, each embedded document (ED) one attachment of its own type. T02 carries the whole document, so
 * DocumentReference is a complete draft (message-common.ts), keyed on TXA-12 unique document number.
 *
 * An ED whose data is a C-CDA ClinicalDocument (base64, or text with its HL7 escapes undone) is also converted
 * (mappers/cda): its Composition and clinical resources come with the message's drafts, and the DocumentReference's
 * context.related points at the Composition. The message's PID is authoritative for whom the document is about: the
 * document's resources name the PID patient whatever its recordTarget says (the two often name one patient under
 * different identifier systems), and the document makes no Patient of its own. A document that fails the C-CDA
 * guard (a DOCTYPE, malformed XML) fails the message with its ANCHORLINE_ERR_CDA_* code at OBX-5.
 */

import { type Hl7Encoding, type Hl7Segment, HL7_NULL, fieldOf, firstSegment, segmentsNamed } from '../../formats/hl7v2/index.ts';
import { deterministicId } from '../ids.ts';
import type { ResourceDraft } from '../types.ts';

import { looksLikeClinicalDocument } from '../../formats/cda/index.ts';
import { AnchorlineError, isAnchorlineError } from '../../errors/index.ts';
import { convertCdaDocument } from '../cda/convert.ts';

import { buildEncounter, buildPatient } from './adt.ts';
import { visitReference } from './clinical-common.ts';
import { PATIENT_GROUP } from './patient-group.ts';
import {
  type Attachment,
  type CodeableConcept,
  type Reference,
  codeTable,
  comp,
  toAttachment,
  toCodeableConcept,
  toCodeableConceptIn,
  toFhirDateTime,
  textAttachment,
  v2TableSystem,
} from './datatypes.ts';
import { practitionerReference } from './directory.ts';
import { codeOf, completeDraft } from './drafts.ts';
import { eiKey, invalidValue, missingField, printableType, singlePatientReference } from './message-common.ts';
import type { MappingContext, MappingRow } from './context.ts';

// ---------------------------------------------------------------------------------------------------------------
// Tables

/**
 * HL7 table 0273 (document availability status, TXA-19) -> DocumentReference.status. The IG assigns current when
 * TXA-19 is AV or empty and keeps CA, OB and UN only as alternate codes; ours: OB (obsolete) -> superseded, CA
 * (canceled, deleted) -> entered-in-error, UN (unavailable for patient care) -> current (the document exists).
 */
const DOCUMENT_STATUS = codeTable<string>({ AV: 'current', UN: 'current', OB: 'superseded', CA: 'entered-in-error' });

/**
 * HL7 table 0271 (document completion status, TXA-17) -> DocumentReference.docStatus (composition-status):
 * authenticated and legally authenticated documents are final; dictated, documented, in progress, incomplete and
 * pre-authenticated ones are preliminary.
 */
const DOC_STATUS = codeTable<string>({ AU: 'final', LA: 'final', DI: 'preliminary', DO: 'preliminary', IN: 'preliminary', IP: 'preliminary', PA: 'preliminary' });

/** HL7 table 0272 (document confidentiality status, TXA-18) -> v3 Confidentiality: U (usual control) is N (normal). */
const V3_CONFIDENTIALITY = 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality';
const CONFIDENTIALITY = codeTable<CodeableConcept>({
  V: { coding: [{ system: V3_CONFIDENTIALITY, code: 'V', display: 'very restricted' }] },
  R: { coding: [{ system: V3_CONFIDENTIALITY, code: 'R', display: 'restricted' }] },
  U: { coding: [{ system: V3_CONFIDENTIALITY, code: 'N', display: 'normal' }] },
});

/**
 * Table 0270 (document type) is user-defined, so a code is the sender's own unless it is one of the values HL7
 * suggests, which THO publishes as v2-0270.
 */
const SUGGESTED_DOCUMENT_TYPES = new Set(['AR', 'CD', 'CN', 'DI', 'DS', 'ED', 'HP', 'OP', 'PC', 'PH', 'PN', 'PR', 'SP', 'TS']);

const TEXT_TYPES = new Set(['TX', 'FT', 'ST']);

// ---------------------------------------------------------------------------------------------------------------
// Builder

export function buildDocumentReference(context: MappingContext): ResourceDraft[] {
  const { options } = context;
  const { timeZone } = options;
  const subject = singlePatientReference(context);
  const txa = firstSegment(context.message, 'TXA');
  if (txa === undefined) throw missingField('TXA', 'TXA segment is missing');
  const masterIdentifier = eiKey(fieldOf(txa, 12)[0], 'TXA-12', context);
  if (masterIdentifier === undefined) throw missingField('TXA-12', 'unique document number is empty');

  const created = toFhirDateTime(comp(fieldOf(txa, 6)[0], 1), 'TXA-6', timeZone);
  const content = documentContent(segmentsNamed(context.message, 'OBX'), context.message.encoding, created);
  if (content.length === 0) throw missingField('OBX', 'the document has no content');
  const typeCode = comp(fieldOf(txa, 2)[0], 1);
  const embedded = embeddedClinicalDocuments(segmentsNamed(context.message, 'OBX'), context, subject.reference.slice('Patient/'.length));
  const confidentiality = codeOf(fieldOf(txa, 18)).toUpperCase();

  const documentReference = completeDraft('DocumentReference', deterministicId('DocumentReference', masterIdentifier.system, masterIdentifier.value), {
    masterIdentifier,
    status: documentStatus(txa),
    docStatus: docStatus(txa),
    type: SUGGESTED_DOCUMENT_TYPES.has(typeCode) && ['', 'HL70270'].includes(comp(fieldOf(txa, 2)[0], 3))
      ? toCodeableConceptIn(fieldOf(txa, 2)[0]!, options, 'HL70270', new Map([['HL70270', v2TableSystem('0270')]]))
      : toCodeableConcept(fieldOf(txa, 2)[0] ?? [], options, 'HL70270'),
    subject,
    // DocumentReference.date is an instant: only an origination time with a time of day fits (the IG's condition).
    date: created !== undefined && created.length > 10 ? created : undefined,
    author: fieldOf(txa, 9).map((rep) => practitionerReference(rep, 'TXA-9', context)),
    authenticator: fieldOf(txa, 10).length > 0 ? practitionerReference(fieldOf(txa, 10)[0]!, 'TXA-10', context) : undefined,
    description: comp(fieldOf(txa, 25)[0], 1),
    securityLabel: confidentiality === '' ? undefined : [confidentialityLabel(confidentiality)],
    content: content.map((attachment) => ({ attachment })),
    // The visit PV1 names (the IG's MDM maps), and the clinical documents the message embeds.
    context: documentContext(visitReference(context), embedded.map((conversion) => ({ reference: `Composition/${conversion.compositionId}` }))),
  });
  return [...embedded.flatMap((conversion) => conversion.drafts), documentReference];
}

/** DocumentReference.context: the visit and the documents it relates to, or nothing when it has neither. */
function documentContext(encounter: Reference | undefined, related: Reference[]): Record<string, unknown> | undefined {
  if (encounter === undefined && related.length === 0) return undefined;
  return { encounter: encounter === undefined ? undefined : [encounter], related: related.length === 0 ? undefined : related };
}

/**
 * The C-CDA documents among the OBX EDs, converted about `patientId`. Text (encoding A) was decoded by the
 * message's charset and re-encoded as UTF-8 for the attachment, so its own XML declaration no longer describes it.
 */
function embeddedClinicalDocuments(segments: Hl7Segment[], context: MappingContext, patientId: string): Array<ReturnType<typeof convertCdaDocument>> {
  const conversions: Array<ReturnType<typeof convertCdaDocument>> = [];
  for (const obx of segments) {
    if (codeOf(fieldOf(obx, 2)).toUpperCase() !== 'ED') continue;
    for (const repetition of fieldOf(obx, 5)) {
      const attachment = toAttachment(repetition, 'OBX-5');
      if (attachment?.data === undefined) continue;
      const bytes = Buffer.from(attachment.data, 'base64');
      const text = ['A', ''].includes(comp(repetition, 4).toUpperCase());
      if (!looksLikeClinicalDocument(bytes.toString(text ? 'utf8' : 'latin1', 0, Math.min(bytes.length, 8192)))) continue;
      try {
        conversions.push(convertCdaDocument(bytes, { mapping: context.options, subjectPatientId: patientId, ...(text ? { charsetParameter: 'utf-8' } : {}) }));
      } catch (error) {
        if (!isAnchorlineError(error)) throw error;
        throw new AnchorlineError(error.code, `embedded C-CDA document: ${error.detail ?? error.spec.title}`, { location: 'OBX-5', cause: error });
      }
    }
  }
  return conversions;
}

function documentStatus(txa: Hl7Segment): string {
  const code = codeOf(fieldOf(txa, 19)).toUpperCase();
  if (code === '') return 'current';
  const status = DOCUMENT_STATUS.get(code);
  if (status === undefined) throw invalidValue('TXA-19', 'document availability status is not an HL7 table 0273 code');
  return status;
}

function docStatus(txa: Hl7Segment): string | undefined {
  const code = codeOf(fieldOf(txa, 17)).toUpperCase();
  if (code === '') return undefined;
  const status = DOC_STATUS.get(code);
  if (status === undefined) throw invalidValue('TXA-17', 'document completion status is not an HL7 table 0271 code');
  return status;
}

function confidentialityLabel(code: string): CodeableConcept {
  const label = CONFIDENTIALITY.get(code);
  if (label === undefined) throw invalidValue('TXA-18', 'document confidentiality status is not an HL7 table 0272 code');
  return label;
}

/**
 * The attachments of the document, in OBX order: the text OBX segments together as one text/plain attachment (at
 * the place of the first), each ED on its own. Text lines are joined with line breaks; a sender's unescaped `^` in
 * text is kept as the character.
 */
function documentContent(segments: Hl7Segment[], encoding: Hl7Encoding, creation: string | undefined): Attachment[] {
  const attachments: Array<Attachment | string[]> = [];
  let lines: string[] | undefined;
  for (const obx of segments) {
    const valueType = codeOf(fieldOf(obx, 2)).toUpperCase();
    const value = fieldOf(obx, 5);
    if (TEXT_TYPES.has(valueType)) {
      if (lines === undefined) {
        lines = [];
        attachments.push(lines);
      }
      for (const repetition of value) {
        const line = repetition.map((component) => component.join(encoding.subcomponent)).join(encoding.component);
        lines.push(line === HL7_NULL ? '' : line.trimEnd());
      }
    } else if (valueType === 'ED') {
      for (const repetition of value) {
        const attachment = toAttachment(repetition, 'OBX-5');
        if (attachment !== undefined) attachments.push(attachment);
      }
    } else if (valueType === '') {
      if (value.length > 0) throw missingField('OBX-2', 'value type is empty but OBX-5 has a value');
    } else {
      throw invalidValue('OBX-2', `value type ${printableType(valueType)} does not carry document content`);
    }
  }
  return attachments
    .map((part) => (Array.isArray(part) ? textContent(part) : part))
    .filter((attachment): attachment is Attachment => attachment !== undefined)
    .map((attachment) => (creation === undefined ? attachment : { ...attachment, creation }));
}

function textContent(lines: string[]): Attachment | undefined {
  const text = lines.join('\n').trim();
  return text === '' ? undefined : textAttachment(text);
}

/** The document row of the mapping table (mappers/hl7v2/registry.ts). */
export const DOCUMENT_MAPPINGS: readonly MappingRow[] = [['MDM^T02', [buildPatient, buildEncounter, ...PATIENT_GROUP, buildDocumentReference]]];

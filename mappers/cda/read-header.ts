/**
 * The first steps of every C-CDA conversion, and all the intake needs of a document: the pre-parse guard
 * (formats/cda/guard.ts), the XML parse as @medplum/ccda parses it, and the header facts the document is stored
 * under (ClinicalDocument/id, effectiveTime, type, organization) with its patient's identifier. A document these
 * refuse is refused with the same code at intake and at conversion, because both run this code.
 */

import { convertXmlToCcda } from '@medplum/ccda';

import { DEFAULT_CDA_LIMITS, readCdaHeaderText, readCdaText, type CdaLimits } from '../../formats/cda/index.ts';
import { AnchorlineError } from '../../errors/index.ts';
import { deterministicId } from '../ids.ts';
import { toFhirDateTime } from '../hl7v2/datatypes.ts';

import type { CdaIssue } from './issues.ts';
import { asNodes, firstUsableId, singleHeaderElements } from './normalize.ts';
import { iiIdentifier, type CdaDocumentFacts } from './resources.ts';

type Node = Record<string, unknown>;

export interface CdaReadOptions {
  limits?: CdaLimits;
  /** The charset parameter of the media type the document was sent with. */
  charsetParameter?: string;
}

/** A parsed document: @medplum/ccda's object tree of the ClinicalDocument, header elements made single. */
export interface ParsedCdaDocument {
  ccda: Node;
  /** The document as decoded text. */
  text: string;
  /** The encoding the document was decoded from (iconv-lite name). */
  charset: string;
  /** Each top-level section's narrative markup as sent (guard.ts CdaText); empty for a header alone. */
  sectionNarratives: Array<string | undefined>;
}

export interface CdaHeader {
  document: CdaDocumentFacts;
  charset: string;
  /** The Patient id of the recordTarget's first identifier (the HL7 v2 mappers' id for it). */
  patientId: string;
}

/** Guard, decode and parse (with headerOnly, the header: readCdaHeaderText). Throws AnchorlineError (ANCHORLINE_ERR_CDA_*, ANCHORLINE_ERR_CHARSET_MISMATCH). */
export function parseCdaDocument(raw: Buffer, options: CdaReadOptions, headerOnly = false): ParsedCdaDocument {
  const { text, charset, sectionNarratives = [] } = (headerOnly ? readCdaHeaderText : readCdaText)(raw, options.limits ?? DEFAULT_CDA_LIMITS, options.charsetParameter);
  let ccda: Node;
  try {
    ccda = convertXmlToCcda(text) as unknown as Node;
  } catch (error) {
    throw new AnchorlineError('ANCHORLINE_ERR_CDA_MALFORMED', 'the document could not be parsed as XML', { cause: error });
  }
  if (ccda === null || typeof ccda !== 'object') throw new AnchorlineError('ANCHORLINE_ERR_CDA_MALFORMED', 'the document has no ClinicalDocument element');
  singleHeaderElements(ccda);
  return { ccda, text, charset, sectionNarratives };
}

/**
 * What the intake stores a document under, read without converting it: a document this accepts is one the
 * conversion takes (the conversion may still leave parts out, or fail on a shape nobody expected, and says so on
 * the stored message). Throws AnchorlineError for a document refused at the door.
 */
export function readCdaHeader(raw: Buffer, options: CdaReadOptions = {}): CdaHeader {
  // The whole document is checked, only its header parsed: the body can be megabytes, which take seconds to parse.
  const { ccda, charset } = parseCdaDocument(raw, options, true);
  const document = documentFacts(ccda);
  return { document, charset, patientId: documentPatientId(ccda, []) };
}

/** ClinicalDocument/id, effectiveTime, code and the sending organization; a document without the first two is refused. */
export function documentFacts(ccda: Node): CdaDocumentFacts {
  const id = firstUsableId(ccda.id);
  if (id === undefined) throw new AnchorlineError('ANCHORLINE_ERR_CDA_INVALID_HEADER', 'ClinicalDocument/id has no root', { location: '/ClinicalDocument/id' });
  const effectiveTime = asNodes(ccda.effectiveTime)[0]?.['@_value'];
  if (typeof effectiveTime !== 'string' || effectiveTime.trim() === '') {
    throw new AnchorlineError('ANCHORLINE_ERR_CDA_INVALID_HEADER', 'ClinicalDocument/effectiveTime has no value', { location: '/ClinicalDocument/effectiveTime' });
  }
  try {
    // Only whether it is a timestamp matters here (the zone does not); the converter would date the document now.
    toFhirDateTime(effectiveTime, 'effectiveTime', 'UTC');
  } catch {
    throw new AnchorlineError('ANCHORLINE_ERR_CDA_INVALID_HEADER', 'ClinicalDocument/effectiveTime is not a CDA timestamp', { location: '/ClinicalDocument/effectiveTime' });
  }
  const root = id['@_root'] as string;
  const extension = typeof id['@_extension'] === 'string' && id['@_extension'] !== '' ? id['@_extension'] : undefined;
  const typeCode = (ccda.code as Node | undefined)?.['@_code'];
  const author = asNodes(ccda.author)[0];
  const authorOrganization = firstUsableId((asNodes(author?.assignedAuthor)[0]?.representedOrganization as Node | undefined)?.id);
  const custodianOrganization = firstUsableId(((ccda.custodian as Node | undefined)?.assignedCustodian as Node | undefined)?.representedCustodianOrganization
    ? (((ccda.custodian as Node).assignedCustodian as Node).representedCustodianOrganization as Node).id
    : undefined);
  const organization = authorOrganization ?? custodianOrganization;
  return {
    id: { root, ...(extension ? { extension } : {}) },
    controlId: extension ? `${root}^${extension}` : root,
    ...(typeof typeCode === 'string' && typeCode !== '' ? { typeCode } : {}),
    effectiveTime: effectiveTime.trim(),
    ...(organization ? { senderOrganization: [organization['@_root'], organization['@_extension']].filter((part) => typeof part === 'string' && part !== '').join('^') } : {}),
  };
}

/** The Patient id of the document's recordTarget: the HL7 v2 mappers' id for its first identifier. */
export function documentPatientId(ccda: Node, issues: CdaIssue[]): string {
  const recordTargets = asNodes(ccda.recordTarget);
  const patientRole = asNodes(recordTargets[0]?.patientRole)[0];
  if (patientRole === undefined) {
    throw new AnchorlineError('ANCHORLINE_ERR_CDA_NO_PATIENT', 'the document has no recordTarget/patientRole', { location: '/ClinicalDocument/recordTarget' });
  }
  // An identifier with an extension is the patient's id within the root's namespace; prefer it to a bare root.
  const ids = asNodes(patientRole.id).filter((id) => typeof id['@_root'] === 'string' && id['@_root'] !== '' && id['@_nullFlavor'] === undefined);
  const key = ids.find((id) => typeof id['@_extension'] === 'string' && id['@_extension'] !== '') ?? ids[0];
  if (key === undefined) {
    throw new AnchorlineError('ANCHORLINE_ERR_CDA_NO_PATIENT', 'every recordTarget/patientRole/id is empty or nullFlavor', { location: '/ClinicalDocument/recordTarget/patientRole/id' });
  }
  if (recordTargets.length > 1) {
    issues.push({ severity: 'warning', code: 'recordtarget-not-converted', text: `the document names ${recordTargets.length} patients; only the first recordTarget was converted`, location: '/ClinicalDocument/recordTarget[2]' });
  }
  const identifier = iiIdentifier(key);
  return deterministicId('Patient', identifier.system, identifier.value);
}

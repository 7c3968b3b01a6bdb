/**
 * The ingest worker's converter for protocol 'cda': a stored C-CDA document -> Patient, Composition, the document's
 * clinical resources and a DocumentReference to the stored bytes, which then take the HL7 path (terminology,
 * ordering, validation, versions, leaves), and then the FHIR document Bundle of those resources as stored.
 *
 * It reads only the inbox row: the raw document, decoded with the encoding the intake found (the row's charset),
 * through the same guard the intake ran. What the conversion leaves out (sections, entries, values) comes back as the
 * message's mapping issues (mappers/cda/mapping-issues.ts), recorded on the inbox message like an HL7 v2 message's.
 *
 * Mapping config: a document gets the config a message with MSH-4 = the root OID of its authoring organization's
 * id (else its custodian's; the intake stores it in the sender column) would get, so a config matched by
 * `sendingFacility: <OID>` applies to that organization's documents; other documents get `default`.
 */
import type { MshHeader } from '../formats/hl7v2/index.ts';
import type { CdaLimits } from '../formats/cda/index.ts';

import { cdaMappingIssues, convertCdaDocument } from '../mappers/index.ts';
import { inbox, type InboxMessage } from '../store/index.ts';
import { selectionHeader, type MappingSource, type MessageConverter } from './ingest.ts';

/** The header fields mapping configs are matched by, for a document: its organization's id root as MSH-4. */
function documentHeader(message: InboxMessage): MshHeader | undefined {
  const root = inbox.cdaSenderRoot(message.sender);
  return root === undefined ? undefined : selectionHeader({ facility: root, messageType: 'CDA', controlId: message.controlId ?? '' });
}

export interface CdaConverterOptions {
  limits: CdaLimits;
  /**
   * The engine's FHIR base URL, e.g. 'http://127.0.0.1:8080/fhir': the base of the fullUrls of each document's
   * Bundle (workers/document-bundle.ts), against which the references its entries hold resolve.
   */
  fhirBaseUrl: string;
}

export function createCdaConverter(options: CdaConverterOptions): MessageConverter {
  const { limits } = options;
  return {
    convert(message: InboxMessage, mappings: MappingSource) {
      const mapping = mappings.select(documentHeader(message));
      const conversion = convertCdaDocument(message.raw, {
        mapping: mapping.options,
        limits,
        ...(message.charset ? { charsetParameter: message.charset } : {}),
        source: { sha256: message.rawSha256, size: message.rawSize },
      });
      const issues = cdaMappingIssues(conversion.issues);
      // The FHIR document: the Composition, then every other resource it made (not the DocumentReference to it).
      const entries = conversion.resources.map((resource) => `${resource.resourceType}/${resource.id}`);
      return {
        mapping,
        result: {
          drafts: conversion.drafts,
          ...(conversion.eventTime ? { eventTime: conversion.eventTime } : {}),
          ...(issues.length > 0 ? { issues } : {}),
          document: { entries, fullUrlBase: options.fhirBaseUrl },
        },
      };
    },
  };
}

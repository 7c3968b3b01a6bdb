/**
 * The ingest worker's converter for protocol 'dicom': a stored instance header -> Patient, Endpoint and ImagingStudy
 * drafts, which then take the HL7 path (terminology, ordering, validation, versions, leaves).
 *
 * It reads only the inbox row: the raw header bytes (everything before the pixel data, which is all the mapping
 * needs) and the blob's SHA-256; never the blob itself. Parsing is the intake's own (formats/dicom), so a
 * row the intake accepted parses the same way here.
 *
 * Mapping config: an instance gets the config a message with MSH-3 = its calling AE title and MSH-4 = its Issuer of
 * Patient ID (0010,0021) would get. A config matched by the hospital's facility (`sendingFacility: SEOULGEN`) thus
 * applies to its PACS's instances as to its HIS's messages, with the same identifierSystems, so both name one
 * Patient; a config matched by the AE title (`sendingApplication: CT01`) covers a modality's own quirks.
 */
import { boundSourceOf } from './origin.ts';
import { AnchorlineError } from '../errors/index.ts';
import type { MshHeader } from '../formats/hl7v2/index.ts';
import { parseDicomInstance } from '../formats/dicom/index.ts';
import type { DicomInstanceHeader } from '../formats/dicom/index.ts';
import { mapDicomInstance } from '../mappers/index.ts';
import type { InboxMessage } from '../store/index.ts';
import { selectionHeader, type MappingSource, type MessageConverter } from './ingest.ts';

export interface DicomConverterOptions {
  /** The engine's DICOMweb base URL, e.g. 'http://127.0.0.1:8080/dicomweb': the address of the studies' Endpoint. */
  dicomwebBaseUrl: string;
  /**
   * Most a deflated data set may inflate to, in bytes (config dicom.maxInstanceBytes); deflated instances are kept
   * whole as their raw bytes, so mapping inflates them again, but only as far as their header (at most 2 MiB): the
   * intake judged the whole when it accepted the instance.
   */
  maxInflatedBytes: number;
}

/** The header fields mapping configs are matched by, for an instance: the AE title as MSH-3, the issuer as MSH-4. */
function instanceHeader(aeTitle: string, header: DicomInstanceHeader): MshHeader {
  return selectionHeader({ application: aeTitle, facility: header.patient.issuer ?? '', messageType: 'DICOM', controlId: header.sopInstanceUid });
}

export function createDicomConverter(options: DicomConverterOptions): MessageConverter {
  return {
    convert(message: InboxMessage, mappings: MappingSource) {
      const { header } = parseDicomInstance(message.raw, { maxInflatedBytes: options.maxInflatedBytes });
      if (message.blobSha256 == null || message.blobSha256.length !== 32) {
        throw new AnchorlineError('ANCHORLINE_ERR_MAPPING_FAILED', 'the DICOM message has no blob recorded');
      }
      const mapping = mappings.select(instanceHeader(message.sender, header));
      const bound = boundSourceOf(message.source);
      const result = mapDicomInstance(header, {
        options: bound === undefined ? mapping.options : { ...mapping.options, boundSource: bound },
        blobSha256: message.blobSha256.toString('hex'),
        dicomwebBaseUrl: options.dicomwebBaseUrl,
        sendingAeTitle: message.sender,
      });
      return { mapping, result };
    },
  };
}

/**
 * Responses that carry records, mapped like the unsolicited messages that carry the same segment groups.
 *
 * ORF^R04 (response to an observation query, v2.3-2.4) carries each patient's results as ORU^R01 does: OBR groups
 * with their OBX, under the patient's PID. Its QRD and QRF (the query) are not data. OBX outside the OBR groups are
 * observations of their own (observations.ts).
 *
 * RSP^K11 has no row: the segment pattern response carries whatever the query asked for (immunization histories
 * from registries, with RXA and OBX; demographics; candidate lists of several PIDs, or nothing), so it is mapped by
 * the segments it carries (segments.ts), which reads its RXA as Immunizations and their OBX as Observations.
 */

import { buildEncounter } from './adt-encounter.ts';
import { buildPatient } from './adt-patient.ts';
import { buildObservationsBesideResults } from './observations.ts';
import { buildResults } from './results.ts';
import type { MappingRow } from './context.ts';

/** The response rows of the mapping table (mappers/hl7v2/registry.ts). */
export const RESPONSE_MAPPINGS: readonly MappingRow[] = [['ORF^R04', [buildPatient, buildEncounter, buildResults, buildObservationsBesideResults]]];

/**
 * MRG -> patient merges (A40 merge patient, A47 change patient identifier list).
 *
 * Both messages (structure ADT_A39 for A40, ADT_A30 for A47) name the surviving patient in PID-3 and the record to
 * retire in MRG-1 (prior patient identifier list); for a sender whose patient key is another field (the config's
 * Patient.key), in that field and its MRG counterpart (PID-2 and MRG-4, PID-4 and MRG-2). ADT_A39 repeats the PID/PD1/MRG/PV1 group to merge several
 * pairs in one message; each group yields the surviving Patient's draft and a PatientMerge, which the ingest job
 * applies after the drafts (re-pointing references to the source, marking it inactive and linked). The PV1 of a
 * merge group only identifies a visit and produces no Encounter.
 */

import type { Hl7Segment } from '../../formats/hl7v2/index.ts';
import { AnchorlineError } from '../../errors/index.ts';
import type { ResourceDraft } from '../types.ts';

import { buildPatientFrom } from './adt-patient.ts';
import { patientIdFromList, requirePid } from './adt-common.ts';
import { PRIOR_KEY_FIELD, sourceField, sourcesOf } from './field-sources.ts';
import type { MappingContext } from './context.ts';

interface PatientGroup {
  pid: Hl7Segment;
  mrg: Hl7Segment | undefined;
}

/** The patient groups in message order: each PID starts one, and the first MRG after it (before the next PID) is its MRG. */
function patientGroups(context: MappingContext): PatientGroup[] {
  const groups: PatientGroup[] = [];
  for (const segment of context.message.segments) {
    if (segment.name === 'PID') groups.push({ pid: segment, mrg: undefined });
    else if (segment.name === 'MRG' && groups.length > 0 && groups[groups.length - 1]!.mrg === undefined) groups[groups.length - 1]!.mrg = segment;
  }
  return groups;
}

export function buildPatientMerges(context: MappingContext): ResourceDraft[] {
  requirePid(context);
  const key = sourcesOf(context.options, 'Patient.key');
  const prior = PRIOR_KEY_FIELD[key];
  const drafts: ResourceDraft[] = [];
  for (const { pid, mrg } of patientGroups(context)) {
    if (mrg === undefined) {
      throw new AnchorlineError('ANCHORLINE_ERR_MAPPING_MISSING_FIELD', `MRG: ${context.triggerEvent} needs an MRG segment after each PID`, { location: 'MRG' });
    }
    const patient = buildPatientFrom(pid, context);
    const sourceId = patientIdFromList(sourceField(prior, { MRG: mrg }), prior, context);
    if (sourceId === patient.id) {
      // Merging a record into itself would mark the surviving patient inactive and replaced by itself.
      throw new AnchorlineError('ANCHORLINE_ERR_MAPPING_INVALID_VALUE', `${prior}: the prior identifier names the same patient as ${key}`, { location: prior });
    }
    drafts.push(patient);
    context.merges.push({ sourceId, targetId: patient.id });
  }
  return drafts;
}

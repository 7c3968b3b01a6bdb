/**
 * What the patient and visit groups of the order, result, document and vaccination messages carry beside PID and PV1
 * (the IG's ORM_O01, OML_O21, OMP_O09, RDE_O11, ORU_R01, VXU_V04 and MDM_T02 maps): NK1 next of kin, AL1 allergies,
 * DG1 diagnoses of the visit and IN1 insurance, mapped as ADT maps them. A message without such a segment builds
 * nothing from it; one with them no longer leaves them unread.
 */
import type { ResourceBuilder } from './context.ts';
import { buildAllergies } from './adt-allergy.ts';
import { buildCoverages } from './adt-coverage.ts';
import { buildConditions } from './adt-diagnosis.ts';
import { buildRelatedPersons } from './adt-related-person.ts';

export const PATIENT_GROUP: readonly ResourceBuilder[] = [buildRelatedPersons, buildAllergies, buildConditions, buildCoverages];

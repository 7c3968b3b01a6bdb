/**
 * Every section converter of this folder, in the order they are tried: the first whose templateIds or LOINC codes
 * match a section claims it (section-converters.ts).
 */
import type { SectionConverter } from '../section-types.ts';

import { admissionMedicationsSection, anesthesiaSection, dischargeMedicationsSection, medicationsAdministeredSection, medicationsSection } from './medications.ts';
import { immunizationsSection } from './immunizations.ts';
import { medicalEquipmentSection } from './medical-equipment.ts';
import { payersSection } from './payers.ts';
import { advanceDirectivesSection } from './advance-directives.ts';
import { encountersSection } from './encounters.ts';
import { functionalStatusSection, healthStatusEvaluationsSection, mentalStatusSection, nutritionSection } from './assessments.ts';
import { admissionDiagnosesSection, assessmentSection, dischargeDiagnosesSection, healthConcernsSection, postoperativeDiagnosesSection, postprocedureDiagnosesSection, preoperativeDiagnosesSection, problemsSection } from './conditions.ts';
import { familyHistorySection } from './family-history.ts';
import { resultsSection } from './results.ts';
import { instructionsSection } from './instructions.ts';
import { notesSection } from './notes.ts';
import { interventionsSection } from './interventions.ts';
import { referralSection } from './referral.ts';
import { plannedEntriesSection } from './planned-entries.ts';

export const SECTION_CONVERTERS: readonly SectionConverter[] = [
  medicationsSection,
  dischargeMedicationsSection,
  admissionMedicationsSection,
  medicationsAdministeredSection,
  anesthesiaSection,
  immunizationsSection,
  medicalEquipmentSection,
  payersSection,
  advanceDirectivesSection,
  encountersSection,
  problemsSection,
  healthConcernsSection,
  admissionDiagnosesSection,
  dischargeDiagnosesSection,
  preoperativeDiagnosesSection,
  postoperativeDiagnosesSection,
  postprocedureDiagnosesSection,
  assessmentSection,
  familyHistorySection,
  functionalStatusSection,
  mentalStatusSection,
  nutritionSection,
  healthStatusEvaluationsSection,
  resultsSection,
  instructionsSection,
  notesSection,
  referralSection,
  interventionsSection,
  plannedEntriesSection,
];

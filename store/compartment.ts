/**
 * Whose record a resource is: the patient of its patient compartment, read from the one element that names the
 * patient the resource is about (FHIR R4 CompartmentDefinition "patient", the element of each type that says whose
 * it is: Observation.subject, AllergyIntolerance.patient, Coverage.beneficiary, Task.for, ...).
 *
 * The store uses it to refuse a version that moves a resource from one patient to another (writeVersions): ids
 * derived from what senders send (an entry id, a filler order number, a visit number) are sometimes reused for
 * another patient, and a new version under that other patient would show one patient's record under another. Only a
 * patient merge moves records on purpose, and says so.
 *
 * Elements that may name someone other than the patient (Observation.performer, a RelatedPerson's own references,
 * Coverage.subscriber) are not the compartment's anchor: only the "about whom" element is read.
 */

/** The element of each type that names the patient the resource is about. */
const PATIENT_ELEMENT: Readonly<Record<string, string>> = {
  Account: 'subject',
  AdverseEvent: 'subject',
  AllergyIntolerance: 'patient',
  Appointment: 'participant',
  AppointmentResponse: 'actor',
  Basic: 'subject',
  BodyStructure: 'patient',
  CarePlan: 'subject',
  CareTeam: 'subject',
  ChargeItem: 'subject',
  Claim: 'patient',
  ClinicalImpression: 'subject',
  Communication: 'subject',
  CommunicationRequest: 'subject',
  Composition: 'subject',
  Condition: 'subject',
  Consent: 'patient',
  Coverage: 'beneficiary',
  DetectedIssue: 'patient',
  Device: 'patient',
  DeviceRequest: 'subject',
  DeviceUseStatement: 'subject',
  DiagnosticReport: 'subject',
  DocumentReference: 'subject',
  Encounter: 'subject',
  EpisodeOfCare: 'patient',
  ExplanationOfBenefit: 'patient',
  FamilyMemberHistory: 'patient',
  Flag: 'subject',
  Goal: 'subject',
  ImagingStudy: 'subject',
  Immunization: 'patient',
  ImmunizationEvaluation: 'patient',
  ImmunizationRecommendation: 'patient',
  Invoice: 'subject',
  List: 'subject',
  Media: 'subject',
  MedicationAdministration: 'subject',
  MedicationDispense: 'subject',
  MedicationRequest: 'subject',
  MedicationStatement: 'subject',
  NutritionOrder: 'patient',
  Observation: 'subject',
  Procedure: 'subject',
  QuestionnaireResponse: 'subject',
  RelatedPerson: 'patient',
  RiskAssessment: 'subject',
  ServiceRequest: 'subject',
  Specimen: 'subject',
  SupplyDelivery: 'patient',
  SupplyRequest: 'deliverTo',
  Task: 'for',
  VisionPrescription: 'patient',
};

/** A literal reference to a Patient, as the store writes them. */
export const PATIENT_REFERENCE = /^Patient\/[A-Za-z0-9\-.]{1,64}$/;

/**
 * The patient a resource belongs to, as `Patient/<id>`: the Patient itself for a Patient; the patient its anchoring
 * element names for a type in the compartment; undefined for a type outside it (Practitioner, Organization,
 * Location, Provenance, AuditEvent) or a resource that names no patient there. An Appointment names its patient
 * among its participants.
 */
export function patientOf(content: Record<string, unknown>): string | undefined {
  const resourceType = content.resourceType as string;
  if (resourceType === 'Patient') return `Patient/${String(content.id)}`;
  const element = PATIENT_ELEMENT[resourceType];
  if (element === undefined) return undefined;
  const value = content[element];
  if (resourceType === 'Appointment') {
    if (!Array.isArray(value)) return undefined;
    for (const participant of value) {
      const reference = referenceOf((participant as Record<string, unknown> | null)?.actor);
      if (reference !== undefined) return reference;
    }
    return undefined;
  }
  return referenceOf(value);
}

function referenceOf(value: unknown): string | undefined {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return undefined;
  const reference = (value as Record<string, unknown>).reference;
  return typeof reference === 'string' && PATIENT_REFERENCE.test(reference) ? reference : undefined;
}

/**
 * Whether `next` moves a resource from the patient `previous` belongs to onto another: both name a patient, and not
 * the same one. A version that names no patient where the previous one did is not a move (the element was left out
 * or refused as invalid, and the store keeps the resource where it was only through the merge of drafts).
 */
export function changesPatient(previous: Record<string, unknown> | undefined, next: Record<string, unknown>): boolean {
  if (previous === undefined) return false;
  const before = patientOf(previous);
  const after = patientOf(next);
  return before !== undefined && after !== undefined && before !== after;
}

/**
 * AL1 (patient allergy information) -> AllergyIntolerance, one per AL1 segment, after the v2-to-FHIR IG segment
 * map AL1[AllergyIntolerance] and its ConceptMaps for tables 0127 (allergen type) and 0128 (allergy severity).
 *
 * AL1-4 feeds two elements. criticality is the IG's primary target (an overall judgement, as AL1-4 is) and takes
 * only the codes the IG maps (SV high, MI low); reaction.severity, which the IG offers where a sender's severity
 * describes the reaction, takes SV, MO and MI but exists only with a reaction: R4 requires every reaction to have
 * a manifestation, which only AL1-5 supplies.
 *
 * The id is the patient's id with the allergen (AL1-3), so that the same allergy sent again, in any position,
 * updates one resource; AL1-1 (set id) is only a position in this message.
 */

import { type Hl7Repetition, type Hl7Segment, fieldOf, isEmptyField, isExplicitNull, segmentsNamed } from '../../formats/hl7v2/index.ts';
import { AnchorlineError } from '../../errors/index.ts';
import { deterministicId } from '../ids.ts';
import type { ResourceDraft } from '../types.ts';

import { conceptKey, patientId } from './adt-common.ts';
import { type CodeableConcept, codeTable, comp, mappedValue, toCodeableConcept, toFhirDateTime } from './datatypes.ts';
import { element, updateDraft } from './drafts.ts';
import { eachSegment } from './clinical-common.ts';
import type { MappingContext } from './context.ts';

const CLINICAL_ACTIVE: CodeableConcept = {
  coding: [{ system: 'http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical', code: 'active', display: 'Active' }],
};

/**
 * HL7 table 0127 (allergen type) -> category and type, as the IG ConceptMaps AllergenType[AllergyIntoleranceCategory]
 * and AllergyType. MA (miscellaneous allergy) is an allergy without a category; MC (miscellaneous contraindication)
 * is neither an allergy nor an intolerance and gets neither.
 */
export const ALLERGEN_TYPE = codeTable<{ category?: string; type?: string }>({
  DA: { category: 'medication', type: 'allergy' },
  FA: { category: 'food', type: 'allergy' },
  MA: { type: 'allergy' },
  MC: {},
  EA: { category: 'environment', type: 'allergy' },
  AA: { category: 'biologic', type: 'allergy' },
  PA: { category: 'environment', type: 'allergy' },
  LA: { category: 'environment', type: 'allergy' },
});

/** HL7 table 0128 (allergy severity) -> criticality, as the IG's AllergySeverity[AllergyIntolerance.criticality]. */
export const CRITICALITY = codeTable<string>({ SV: 'high', MI: 'low' });

/** HL7 table 0128 -> reaction.severity, as the IG's AllergySeverity[AllergyIntolerance.reaction.severity]. */
export const REACTION_SEVERITY = codeTable<string>({ SV: 'severe', MO: 'moderate', MI: 'mild' });

export function buildAllergies(context: MappingContext): ResourceDraft[] {
  const segments = segmentsNamed(context.message, 'AL1');
  if (segments.length === 0) return [];
  const patient = patientId(context);
  // An AL1 that cannot be read (no allergen) costs its own AllergyIntolerance, at its position, not the others.
  return eachSegment(segments, (al1) => buildAllergy(al1, patient, context), context.message);
}

function buildAllergy(al1: Hl7Segment, patient: string, context: MappingContext): ResourceDraft {
  const { options } = context;
  const allergenField = fieldOf(al1, 3);
  const allergen = isExplicitNull(allergenField) ? undefined : toCodeableConcept(allergenField[0] ?? [], options, 'AL1-3');
  if (allergen === undefined) {
    throw new AnchorlineError('ANCHORLINE_ERR_MAPPING_MISSING_FIELD', 'AL1-3: the allergen code/mnemonic/description is empty', { location: 'AL1-3' });
  }
  const id = deterministicId('AllergyIntolerance', patient, conceptKey(allergen));

  const allergenType = element(fieldOf(al1, 2), (rep) => ALLERGEN_TYPE.get(mappedValue(options, 'HL70127', comp(rep, 1)).toUpperCase()) ?? {});
  const severityCode = mappedValue(options, 'HL70128', comp(fieldOf(al1, 4)[0], 1)).toUpperCase();
  const severityField = fieldOf(al1, 4);
  return updateDraft('AllergyIntolerance', id, {
    clinicalStatus: CLINICAL_ACTIVE,
    type: allergenType === null ? null : allergenType?.type,
    category: allergenType === null ? null : allergenType?.category === undefined ? undefined : [allergenType.category],
    criticality: isExplicitNull(severityField) ? null : CRITICALITY.get(severityCode),
    code: allergen,
    patient: { reference: `Patient/${patient}` },
    onsetDateTime: element(fieldOf(al1, 6), (rep) => toFhirDateTime(comp(rep, 1), 'AL1-6', options.timeZone)),
    reaction: reaction(al1, severityCode, context),
  });
}

/**
 * AL1-5 (allergy reaction code, repeating) as one reaction with a manifestation per repetition. AL1-5 is ST in
 * v2.5.1, but senders also send it coded (code^text^system): a repetition with a second or third component is read
 * as CE.
 */
function reaction(al1: Hl7Segment, severityCode: string, context: MappingContext): unknown {
  const field = fieldOf(al1, 5);
  if (isExplicitNull(field)) return null;
  if (isEmptyField(field)) return undefined;
  const manifestation = field.map((rep) => manifestationOf(rep, context)).filter((concept) => concept !== undefined);
  if (manifestation.length === 0) return undefined;
  return [{ manifestation, severity: REACTION_SEVERITY.get(severityCode) }];
}

function manifestationOf(repetition: Hl7Repetition, context: MappingContext): CodeableConcept | undefined {
  if (comp(repetition, 2) === '' && comp(repetition, 3) === '') {
    const text = comp(repetition, 1);
    return text === '' ? undefined : { text };
  }
  return toCodeableConcept(repetition, context.options, 'AL1-5');
}

/**
 * Code tables the DICOM mapper reads: Body Part Examined (0018,0015) -> SNOMED CT, and Laterality (0020,0060).
 */

import type { Coding } from '../hl7v2/datatypes.ts';

export const SNOMED_CT = 'http://snomed.info/sct';
/** DICOM Controlled Terminology (PS3.16), the code system of modalities (CID 29, 33). */
export const DICOM_DCM = 'http://dicom.nema.org/resources/ontology/DCM';

/**
 * Body Part Examined Defined Terms -> the SNOMED CT concept PS3.16 Annex L (Table L-1, CID 4031 Common Anatomic
 * Regions) gives for each, for the terms imaging equipment commonly sends. A term not listed here is kept as the
 * sender's code in a local code system (see bodySiteCoding).
 */
const BODY_PART_EXAMINED: ReadonlyMap<string, Coding> = new Map(
  (
    [
      ['ABDOMEN', '818981001', 'Abdomen'],
      ['ABDOMENPELVIS', '818982008', 'Abdomen and Pelvis'],
      ['ANKLE', '70258002', 'Ankle joint'],
      ['AORTA', '15825003', 'Aorta'],
      ['ARM', '40983000', 'Upper arm'],
      ['BLADDER', '89837001', 'Bladder'],
      ['BRAIN', '12738006', 'Brain'],
      ['BREAST', '76752008', 'Breast'],
      ['CHEST', '43799004', 'Chest'],
      ['CHESTABDOMEN', '416550000', 'Chest and Abdomen'],
      ['CHESTABDPELVIS', '416775004', 'Chest, Abdomen and Pelvis'],
      ['CLAVICLE', '51299004', 'Clavicle'],
      ['COCCYX', '64688005', 'Coccyx'],
      ['COLON', '71854001', 'Colon'],
      ['CSPINE', '122494005', 'Cervical spine'],
      ['ELBOW', '76248009', 'Elbow'],
      ['ESOPHAGUS', '32849002', 'Esophagus'],
      ['EXTREMITY', '66019005', 'Extremity'],
      ['EYE', '81745001', 'Eye'],
      ['FOOT', '56459004', 'Foot'],
      ['HAND', '85562004', 'Hand'],
      ['HEAD', '69536005', 'Head'],
      ['HEADNECK', '774007', 'Head and Neck'],
      ['HEART', '80891009', 'Heart'],
      ['HIP', '24136001', 'Hip joint'],
      ['KIDNEY', '64033007', 'Kidney'],
      ['KNEE', '72696002', 'Knee'],
      ['LIVER', '10200004', 'Liver'],
      ['LSPINE', '122496007', 'Lumbar spine'],
      ['NECK', '45048000', 'Neck'],
      ['PELVIS', '816092008', 'Pelvis'],
      ['PROSTATE', '41216001', 'Prostate'],
      ['SHOULDER', '16982005', 'Shoulder'],
      ['SKULL', '89546000', 'Skull'],
      ['SPINE', '421060004', 'Spine'],
      ['TSPINE', '122495006', 'Thoracic spine'],
      ['WHOLEBODY', '38266002', 'Entire body'],
      ['WRIST', '74670003', 'Wrist joint'],
    ] as const
  ).map(([term, code, display]) => [term, { system: SNOMED_CT, code, display }]),
);

/**
 * ImagingStudy.series.bodySite for a Body Part Examined value: the SNOMED CT coding of Table L-1, else the term as
 * sent in `<localCodeSystemBase>/DICOM-BodyPartExamined` (a ConceptMap can map that system like any local one).
 */
export function bodySiteCoding(term: string, localCodeSystemBase: string): Coding {
  const normalised = term.trim().toUpperCase();
  return BODY_PART_EXAMINED.get(normalised) ?? { system: `${localCodeSystemBase}/DICOM-BodyPartExamined`, code: normalised };
}

/** Laterality (0020,0060) -> SNOMED CT (the FHIR example binding for ImagingStudy.series.laterality). */
const LATERALITY: ReadonlyMap<string, Coding> = new Map([
  ['R', { system: SNOMED_CT, code: '24028007', display: 'Right' }],
  ['L', { system: SNOMED_CT, code: '7771000', display: 'Left' }],
  ['B', { system: SNOMED_CT, code: '51440002', display: 'Right and left' }],
]);

export function lateralityCoding(value: string): Coding | undefined {
  return LATERALITY.get(value.trim().toUpperCase());
}

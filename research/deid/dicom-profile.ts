/**
 * DICOM PS3.15 Annex E, Table E.1-1 (Application Level Confidentiality Profile Attributes): the action of the Basic
 * Application Level Confidentiality Profile for the attributes that instances reaching the engine carry (patient,
 * study, series and equipment identification, physicians, institutions, dates and times, UIDs, comments, request and
 * procedure step attributes). Data from the standard (PS3.15 2024, Table E.1-1, column "Basic Prof."), tags as
 * GGGGEEEE.
 *
 * Actions (Table E.1-1a): D replace with a dummy value, Z zero length (or a dummy), X remove, K keep (sequences
 * cleaned), C clean, U replace UID consistently. A compound action (X/Z, X/D, X/Z/D, Z/D, X/Z/U*) allows the later
 * ones where the IOD requires the attribute; this engine takes the first one it can (dicom.ts says where not).
 *
 * `dates: true` marks the attributes that the Retain Longitudinal Temporal Information with Modified Dates Option
 * turns to C (dates shifted rather than removed); `characteristics: true` those the Retain Patient Characteristics
 * Option keeps.
 */

export type ProfileAction = 'D' | 'Z' | 'X' | 'K' | 'C' | 'U' | 'Z/D' | 'X/Z' | 'X/D' | 'X/Z/D' | 'X/Z/U*';

export interface ProfileAttribute {
  name: string;
  action: ProfileAction;
  dates?: true;
  characteristics?: true;
}

export const BASIC_PROFILE: Readonly<Record<string, ProfileAttribute>> = {
  '00080012': { name: 'Instance Creation Date', action: 'X/D', dates: true },
  '00080013': { name: 'Instance Creation Time', action: 'X/Z/D', dates: true },
  '00080014': { name: 'Instance Creator UID', action: 'U' },
  '00080015': { name: 'Instance Coercion DateTime', action: 'X', dates: true },
  '00080018': { name: 'SOP Instance UID', action: 'U' },
  '00080020': { name: 'Study Date', action: 'Z', dates: true },
  '00080021': { name: 'Series Date', action: 'X/D', dates: true },
  '00080022': { name: 'Acquisition Date', action: 'X/Z', dates: true },
  '00080023': { name: 'Content Date', action: 'Z/D', dates: true },
  '00080024': { name: 'Overlay Date', action: 'X', dates: true },
  '00080025': { name: 'Curve Date', action: 'X', dates: true },
  '0008002A': { name: 'Acquisition DateTime', action: 'X/Z/D', dates: true },
  '00080030': { name: 'Study Time', action: 'Z', dates: true },
  '00080031': { name: 'Series Time', action: 'X/D', dates: true },
  '00080032': { name: 'Acquisition Time', action: 'X/Z', dates: true },
  '00080033': { name: 'Content Time', action: 'Z/D', dates: true },
  '00080034': { name: 'Overlay Time', action: 'X', dates: true },
  '00080035': { name: 'Curve Time', action: 'X', dates: true },
  '00080050': { name: 'Accession Number', action: 'Z' },
  '00080058': { name: 'Failed SOP Instance UID List', action: 'U' },
  '00080080': { name: 'Institution Name', action: 'X/Z/D' },
  '00080081': { name: 'Institution Address', action: 'X' },
  '00080082': { name: 'Institution Code Sequence', action: 'X/Z/D' },
  '00080090': { name: "Referring Physician's Name", action: 'Z' },
  '00080092': { name: "Referring Physician's Address", action: 'X' },
  '00080094': { name: "Referring Physician's Telephone Numbers", action: 'X' },
  '00080096': { name: 'Referring Physician Identification Sequence', action: 'X' },
  '00080201': { name: 'Timezone Offset From UTC', action: 'X' },
  '00081010': { name: 'Station Name', action: 'X/Z/D' },
  '00081030': { name: 'Study Description', action: 'X' },
  '0008103E': { name: 'Series Description', action: 'X' },
  '00081040': { name: 'Institutional Department Name', action: 'X' },
  '00081048': { name: 'Physician(s) of Record', action: 'X' },
  '00081049': { name: 'Physician(s) of Record Identification Sequence', action: 'X' },
  '00081050': { name: "Performing Physicians' Name", action: 'X' },
  '00081052': { name: 'Performing Physician Identification Sequence', action: 'X' },
  '00081060': { name: 'Name of Physician(s) Reading Study', action: 'X' },
  '00081062': { name: 'Physician(s) Reading Study Identification Sequence', action: 'X' },
  '00081070': { name: "Operators' Name", action: 'X/Z/D' },
  '00081072': { name: 'Operator Identification Sequence', action: 'X/D' },
  '00081080': { name: 'Admitting Diagnoses Description', action: 'X' },
  '00081084': { name: 'Admitting Diagnoses Code Sequence', action: 'X' },
  '00081110': { name: 'Referenced Study Sequence', action: 'X/Z' },
  '00081111': { name: 'Referenced Performed Procedure Step Sequence', action: 'X/Z/D' },
  '00081120': { name: 'Referenced Patient Sequence', action: 'X' },
  '00081140': { name: 'Referenced Image Sequence', action: 'X/Z/U*' },
  '00081155': { name: 'Referenced SOP Instance UID', action: 'U' },
  '00081195': { name: 'Transaction UID', action: 'U' },
  '00082111': { name: 'Derivation Description', action: 'X' },
  '00082112': { name: 'Source Image Sequence', action: 'X/Z/U*' },
  '00100010': { name: "Patient's Name", action: 'Z' },
  '00100020': { name: 'Patient ID', action: 'Z' },
  '00100021': { name: 'Issuer of Patient ID', action: 'X' },
  '00100024': { name: 'Issuer of Patient ID Qualifiers Sequence', action: 'X' },
  '00100030': { name: "Patient's Birth Date", action: 'Z' },
  '00100032': { name: "Patient's Birth Time", action: 'X' },
  '00100040': { name: "Patient's Sex", action: 'Z', characteristics: true },
  '00100050': { name: "Patient's Insurance Plan Code Sequence", action: 'X' },
  '00101000': { name: 'Other Patient IDs', action: 'X' },
  '00101001': { name: 'Other Patient Names', action: 'X' },
  '00101002': { name: 'Other Patient IDs Sequence', action: 'X' },
  '00101005': { name: "Patient's Birth Name", action: 'X' },
  '00101010': { name: "Patient's Age", action: 'X', characteristics: true },
  '00101020': { name: "Patient's Size", action: 'X', characteristics: true },
  '00101030': { name: "Patient's Weight", action: 'X', characteristics: true },
  '00101040': { name: "Patient's Address", action: 'X' },
  '00101060': { name: "Patient's Mother's Birth Name", action: 'X' },
  '00101080': { name: 'Military Rank', action: 'X' },
  '00101081': { name: 'Branch of Service', action: 'X' },
  '00101090': { name: 'Medical Record Locator', action: 'X' },
  '00102000': { name: 'Medical Alerts', action: 'X' },
  '00102110': { name: 'Allergies', action: 'X' },
  '00102150': { name: 'Country of Residence', action: 'X' },
  '00102152': { name: 'Region of Residence', action: 'X' },
  '00102154': { name: "Patient's Telephone Numbers", action: 'X' },
  '00102160': { name: 'Ethnic Group', action: 'X', characteristics: true },
  '00102180': { name: 'Occupation', action: 'X' },
  '001021A0': { name: 'Smoking Status', action: 'X', characteristics: true },
  '001021B0': { name: 'Additional Patient History', action: 'X' },
  '001021C0': { name: 'Pregnancy Status', action: 'X', characteristics: true },
  '001021D0': { name: 'Last Menstrual Date', action: 'X', dates: true },
  '001021F0': { name: "Patient's Religious Preference", action: 'X' },
  '00104000': { name: 'Patient Comments', action: 'X' },
  '00181000': { name: 'Device Serial Number', action: 'X/Z/D' },
  '00181002': { name: 'Device UID', action: 'U' },
  '00181004': { name: 'Plate ID', action: 'X' },
  '00181005': { name: 'Generator ID', action: 'X' },
  '00181007': { name: 'Cassette ID', action: 'X' },
  '00181008': { name: 'Gantry ID', action: 'X' },
  '00181030': { name: 'Protocol Name', action: 'X/D' },
  '00181400': { name: 'Acquisition Device Processing Description', action: 'X/D' },
  '00184000': { name: 'Acquisition Comments', action: 'X' },
  '0018700A': { name: 'Detector ID', action: 'X/D' },
  '0018A003': { name: 'Contribution Description', action: 'X' },
  '0020000D': { name: 'Study Instance UID', action: 'U' },
  '0020000E': { name: 'Series Instance UID', action: 'U' },
  '00200010': { name: 'Study ID', action: 'Z' },
  '00200052': { name: 'Frame of Reference UID', action: 'U' },
  '00200200': { name: 'Synchronization Frame of Reference UID', action: 'U' },
  '00203401': { name: 'Modifying Device ID', action: 'X' },
  '00203404': { name: 'Modifying Device Manufacturer', action: 'X' },
  '00203406': { name: 'Modified Image Description', action: 'X' },
  '00204000': { name: 'Image Comments', action: 'X' },
  '00209158': { name: 'Frame Comments', action: 'X' },
  '00209161': { name: 'Concatenation UID', action: 'U' },
  '00209164': { name: 'Dimension Organization UID', action: 'U' },
  '00284000': { name: 'Image Presentation Comments', action: 'X' },
  '00321032': { name: 'Requesting Physician', action: 'X' },
  '00321033': { name: 'Requesting Service', action: 'X' },
  '00321060': { name: 'Requested Procedure Description', action: 'X/Z' },
  '00321070': { name: 'Requested Contrast Agent', action: 'X' },
  '00324000': { name: 'Study Comments', action: 'X' },
  '00380010': { name: 'Admission ID', action: 'X' },
  '00380300': { name: 'Current Patient Location', action: 'X' },
  '00380400': { name: "Patient's Institution Residence", action: 'X' },
  '00380500': { name: 'Patient State', action: 'X' },
  '00384000': { name: 'Visit Comments', action: 'X' },
  '00400241': { name: 'Performed Station AE Title', action: 'X' },
  '00400242': { name: 'Performed Station Name', action: 'X' },
  '00400243': { name: 'Performed Location', action: 'X' },
  '00400244': { name: 'Performed Procedure Step Start Date', action: 'X', dates: true },
  '00400245': { name: 'Performed Procedure Step Start Time', action: 'X', dates: true },
  '00400250': { name: 'Performed Procedure Step End Date', action: 'X', dates: true },
  '00400251': { name: 'Performed Procedure Step End Time', action: 'X', dates: true },
  '00400253': { name: 'Performed Procedure Step ID', action: 'X' },
  '00400254': { name: 'Performed Procedure Step Description', action: 'X' },
  '00400275': { name: 'Request Attributes Sequence', action: 'X' },
  '00400280': { name: 'Comments on the Performed Procedure Step', action: 'X' },
  '00401001': { name: 'Requested Procedure ID', action: 'X' },
  '00401400': { name: 'Requested Procedure Comments', action: 'X' },
  '00402016': { name: 'Placer Order Number / Imaging Service Request', action: 'Z' },
  '00402017': { name: 'Filler Order Number / Imaging Service Request', action: 'Z' },
  '00402400': { name: 'Imaging Service Request Comments', action: 'X' },
  '0040A124': { name: 'UID', action: 'U' },
  '0040A730': { name: 'Content Sequence', action: 'X' },
  '00880140': { name: 'Storage Media File-set UID', action: 'U' },
  '30060024': { name: 'Referenced Frame of Reference UID', action: 'U' },
  '300600C2': { name: 'Related Frame of Reference UID', action: 'U' },
  '40004000': { name: 'Text Comments', action: 'X' },
  '40080114': { name: 'Physician Approving Interpretation', action: 'X' },
  '4008011A': { name: 'Distribution Address', action: 'X' },
  '4008010C': { name: 'Interpretation Author', action: 'X' },
  '40080300': { name: 'Impressions', action: 'X' },
  '40084000': { name: 'Results Comments', action: 'X' },
  'FFFAFFFA': { name: 'Digital Signatures Sequence', action: 'X' },
  'FFFCFFFC': { name: 'Data Set Trailing Padding', action: 'X' },
};

/**
 * Repeating groups of the table: curve data (50xx,xxxx) and overlay comments and data (60xx,4000), (60xx,3000),
 * all X.
 */
export function repeatingGroupAction(tag: string): ProfileAttribute | undefined {
  if (tag.startsWith('50')) return { name: 'Curve Data', action: 'X' };
  if (tag.startsWith('60') && tag.endsWith('4000')) return { name: 'Overlay Comments', action: 'X' };
  if (tag.startsWith('60') && tag.endsWith('3000')) return { name: 'Overlay Data', action: 'X' };
  return undefined;
}

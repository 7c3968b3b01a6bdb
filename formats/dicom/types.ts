/**
 * What the engine reads from a DICOM instance: the header attributes the mappers use, already decoded to text.
 * Produced by parse.ts from the bytes before the pixel data; consumed by the intake (routing, duplicates) and by
 * mappers/dicom (FHIR).
 */

/** One component group of a Person Name (PN): family^given^middle^prefix^suffix. */
export interface PersonNameGroup {
  family?: string;
  /** Given name, then middle names, in order. */
  given: string[];
  prefix?: string;
  suffix?: string;
}

/**
 * A Person Name value with its three component groups (PS3.5 6.2.1.2): the alphabetic form, the ideographic form
 * (Hanja, Kanji) and the phonetic form (Hangul, Hiragana), each present only when sent.
 */
export interface DicomPersonName {
  alphabetic?: PersonNameGroup;
  ideographic?: PersonNameGroup;
  phonetic?: PersonNameGroup;
}

/** How the text attributes of an instance were decoded. */
export type TextDecoding =
  /** By the Specific Character Set (0008,0005) as declared (or the default repertoire when absent). */
  | 'declared'
  /** As CP949 (EUC-KR and its extension): the bytes were not valid in the declared set, as sent by Korean devices that write EUC-KR without ISO 2022 escapes. */
  | 'cp949';

/** Something in the instance that is not as the standard has it but that the header could be read past. */
export interface DicomAnomaly {
  /** The element, `(GGGG,EEEE)`. */
  location: string;
  /** What differs and what was read instead; no patient data. */
  detail: string;
  /** The value as sent (a UID), when there is one. */
  value?: string;
  /** The mapping issue it is reported as; absent: ANCHORLINE_ISSUE_INVALID_VALUE. */
  code?: 'ANCHORLINE_ISSUE_MISSING_FIELD' | 'ANCHORLINE_ISSUE_CODE_NOT_IN_TABLE';
}

export interface DicomInstanceHeader {
  /** (0002,0010) */
  transferSyntaxUid: string;
  /** (0008,0016); the file meta's (0002,0002) should be the same (anomalies says when it is not). */
  sopClassUid: string;
  /** (0008,0018); the file meta's (0002,0003) should be the same (anomalies says when it is not). */
  sopInstanceUid: string;
  /** (0020,000D); derived when the instance lacks it (studyInstanceUidDerived, and an anomaly says so). */
  studyInstanceUid: string;
  /** The instance names no study: studyInstanceUid was derived from its series. */
  studyInstanceUidDerived?: true;
  /** (0020,000E); derived from the SOP Instance UID when the instance lacks it (an anomaly says so). */
  seriesInstanceUid: string;
  /** (0008,0005) as sent (values joined by '\'); '' when absent. */
  specificCharacterSet: string;
  textDecoding: TextDecoding;
  patient: {
    /** (0010,0020) */
    id?: string;
    /** (0010,0021) Issuer of Patient ID: the namespace of the assigning authority. */
    issuer?: string;
    /** (0010,0024) Issuer of Patient ID Qualifiers Sequence > (0040,0032) Universal Entity ID. */
    issuerUniversalId?: string;
    /** > (0040,0033) Universal Entity ID Type (ISO, UUID, URI, DNS, ...). */
    issuerUniversalIdType?: string;
    /** (0010,0010) */
    name?: DicomPersonName;
    /** (0010,0030) DA as sent. */
    birthDate?: string;
    /** (0010,0040) M, F or O. */
    sex?: string;
  };
  study: {
    /** (0008,0020) DA as sent. */
    date?: string;
    /** (0008,0030) TM as sent. */
    time?: string;
    /** (0008,0201) Timezone Offset From UTC, e.g. +0900. */
    timezoneOffset?: string;
    /** (0008,0050) */
    accessionNumber?: string;
    /** (0020,0010) */
    id?: string;
    /** (0008,1030) */
    description?: string;
  };
  series: {
    /** (0008,0060); Type 1, but absent from some equipment's output. */
    modality?: string;
    /** (0020,0011) */
    number?: number;
    /** (0008,103E) */
    description?: string;
    /** (0018,0015) Body Part Examined, a defined term (CHEST, HEAD, ...). */
    bodyPartExamined?: string;
    /** (0020,0060) R, L or B. */
    laterality?: string;
    /** (0008,0021) DA as sent. */
    date?: string;
    /** (0008,0031) TM as sent. */
    time?: string;
  };
  instance: {
    /** (0020,0013) */
    number?: number;
  };
  /** What was read past (file meta naming another SOP instance than the data set), for the mapper to report. */
  anomalies?: DicomAnomaly[];
}

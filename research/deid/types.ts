/**
 * What de-identification is run with and what it returns. The configuration is research/deid/config.ts.
 */

export interface DeidContext {
  /**
   * The project's HMAC key (at least 32 bytes). Pseudonyms, date offsets and DICOM UIDs derive from it, so records
   * link within a project and not across projects. Never logged, never stored with the released data.
   */
  projectSecret: Uint8Array;
  /**
   * The patient whose offset the resource's dates take (`Patient/<id>`, the source id), when the resource does not
   * say it itself (a Practitioner read through a patient's compartment, a DICOM instance). Absent: the patient the
   * resource names (subject, patient, beneficiary, ...), else the resource's own offset.
   */
  patient?: string;
  /**
   * Names of the patient and their related persons (as namesOf gives them from HumanName), removed from any free
   * text the configuration keeps. The names of the resource itself are always used.
   */
  knownNames?: readonly string[];
  /**
   * The date ages are judged at (YYYY-MM-DD), for ages over the configured maximum (90+). Absent: the patient's
   * death if known, else the current date. Pass it for a release that must come out the same when run again.
   */
  asOf?: string;
}

/** One thing de-identification did: where, and by which rule. Never a value: this list is logged and audited. */
export interface DeidApplied {
  /** FHIRPath-like location in the source resource: `Patient.name[0]`, `Observation.note[1].text`. */
  path: string;
  /** The rule: `<method> <path of the rule>` for configured rules, or a built-in one (`resident-number-guard`, ...). */
  rule: string;
}

export interface DeidResult {
  /** The de-identified resource; undefined: the whole resource is dropped (see `applied` for why). */
  resource?: Record<string, unknown>;
  applied: DeidApplied[];
}

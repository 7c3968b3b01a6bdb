/** The signed-in person, as GET /me answers (api/portal.ts). */
export interface Me {
  userId: string;
  role: string;
  fhirUser: string;
  name: string;
  /** `Patient/x`: the person's records, one per facility, or the patients they represent. */
  patients: string[];
}

/**
 * What a resource puts into the search index: only parameters its type can be searched by (an index row nobody can
 * look up is a B-tree entry and WAL for nothing), and the patient of its compartment under `patient`.
 */
import { describe, expect, it } from 'vitest';
import { SEARCH_PARAMETERS, searchEntries } from '../../store/search-index.ts';
import { readAuditEvent, importAuditEvent } from '../../store/audit-trail.ts';

const P = { reference: 'Patient/p1' };

/** One resource of each type whose patient element is not its `subject`, and audit events. */
const resources: Array<Record<string, unknown>> = [
  { resourceType: 'AllergyIntolerance', id: 'a', patient: P, code: { coding: [{ system: 'http://snomed.info/sct', code: '91936005' }] } },
  { resourceType: 'Immunization', id: 'i', status: 'completed', patient: P, vaccineCode: { coding: [{ system: 'http://hl7.org/fhir/sid/cvx', code: '08' }] } },
  { resourceType: 'EpisodeOfCare', id: 'e', status: 'active', patient: P },
  { resourceType: 'FamilyMemberHistory', id: 'f', status: 'completed', patient: P, relationship: { coding: [{ code: 'MTH' }] } },
  { resourceType: 'Consent', id: 'c', status: 'active', patient: P, category: [{ coding: [{ code: 'INFA' }] }] },
  { resourceType: 'RelatedPerson', id: 'r', patient: P, name: [{ family: 'Kim' }] },
  { resourceType: 'Coverage', id: 'cv', status: 'active', beneficiary: P },
  { resourceType: 'Provenance', id: 'pv', target: [P] },
  { resourceType: 'Appointment', id: 'ap', status: 'booked', participant: [{ actor: P }] },
  { resourceType: 'Task', id: 't', status: 'requested', for: P },
  { resourceType: 'Device', id: 'd', status: 'active', patient: P },
  readAuditEvent({ interaction: 'read', actor: { kind: 'api-key', id: '7', name: 'reader' }, returned: [{ resourceType: 'Patient', id: 'p1', versionId: 1 }], patients: ['Patient/p1'] }, new Date()),
  importAuditEvent({ message: { id: 1, protocol: 'hl7v2-mllp', sender: 'EMR|SNUH', source: 'default' }, written: [{ resourceType: 'Patient', id: 'p1', versionId: 1, created: true }], patients: ['Patient/p1'] }, new Date()),
];

describe('search index entries', () => {
  it.each(resources.map((r) => [r.resourceType as string, r]))('%s: only its own search parameters, its patient under `patient`', (type, resource) => {
    const entries = searchEntries(resource);
    const declared = SEARCH_PARAMETERS[type]!;
    for (const { param } of [...entries.tokens, ...entries.strings]) expect(Object.keys(declared), `${type} indexes ${param}`).toContain(param);
    expect(entries.tokens.filter((t) => t.param === 'patient').map((t) => t.code)).toEqual(['Patient/p1']);
  });
});

/** A mapped resource that is not valid FHIR R4 loses the elements that make it so, or is reported whole. */
import { describe, expect, it } from 'vitest';
import { checkMappedResource } from '../../mappers/index.ts';

describe('checkMappedResource', () => {
  it('passes a valid resource through', () => {
    const patient = { resourceType: 'Patient', id: 'p1', gender: 'female' };
    expect(checkMappedResource(patient)).toEqual({ kind: 'valid', resource: patient });
  });

  it('leaves out an element whose value is not valid, with an issue naming it', () => {
    const check = checkMappedResource({ resourceType: 'Patient', id: 'p1', gender: 'female', communication: [{ language: { coding: [{ code: 'a  b' }] } }] });
    expect(check.kind).toBe('repaired');
    if (check.kind !== 'repaired') return;
    expect(check.resource).toEqual({ resourceType: 'Patient', id: 'p1', gender: 'female' });
    expect(check.issue).toMatchObject({ code: 'ANCHORLINE_ISSUE_INVALID_VALUE', location: 'Patient.communication' });
  });

  it('reports a resource that leaving out elements cannot make valid', () => {
    // Observation.status is required: without a valid one there is no observation to store.
    const check = checkMappedResource({ resourceType: 'Observation', id: 'o1', status: 'not-a-status', code: { text: 'x' } });
    expect(check.kind).toBe('invalid');
    if (check.kind !== 'invalid') return;
    expect(check.issue).toMatchObject({ code: 'ANCHORLINE_ISSUE_INVALID_RESOURCE', location: 'Observation' });
  });
});

describe('checkMappedResource never drops identity', () => {
  it('reports a Patient whose identifier is invalid instead of storing it without one', () => {
    const check = checkMappedResource({ resourceType: 'Patient', id: 'p1', identifier: [{ system: 'not a uri', value: '1' }] });
    expect(check.kind).toBe('invalid');
  });
});

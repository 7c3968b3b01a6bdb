/**
 * U+0000 never reaches the store from any input: checkMappedResource removes it from every string of a mapped
 * resource (PostgreSQL text and jsonb refuse it), keeps the rest, and reports where with an issue.
 */
import { LosslessNumber } from 'lossless-json';
import { describe, expect, it } from 'vitest';
import { checkMappedResource, withoutNul } from '../../mappers/fhir-validate.ts';

describe('NUL in mapped resources', () => {
  it('is removed from every string, with an issue naming the elements', () => {
    const resource = {
      resourceType: 'Observation',
      id: 'obs-1',
      status: 'final',
      code: { coding: [{ system: 'urn:anchorline:local', code: 'GLU\u0000' }], text: 'Glu\u0000cose' },
      subject: { reference: 'Patient/p-1' },
      valueQuantity: { value: new LosslessNumber('5.40'), unit: 'mmol/L' },
    };
    const check = checkMappedResource(resource);
    expect(check.kind).toBe('repaired');
    if (check.kind !== 'repaired') return;
    expect(check.resource.code).toEqual({ coding: [{ system: 'urn:anchorline:local', code: 'GLU' }], text: 'Glucose' });
    // What had no NUL is the same object, numbers included.
    expect(check.resource.subject).toBe(resource.subject);
    expect(check.resource.valueQuantity).toBe(resource.valueQuantity);
    expect(check.issue).toMatchObject({ code: 'ANCHORLINE_ISSUE_INVALID_VALUE', severity: 'warning', location: 'Observation.code' });
    expect(JSON.stringify(check.issue)).not.toContain('\\u0000');
    // The input is left as it was.
    expect(resource.code.text).toBe('Glu\u0000cose');
  });

  it('leaves a resource without NUL untouched', () => {
    const resource = { resourceType: 'Patient', id: 'p-1', name: [{ family: 'Kim' }] };
    expect(withoutNul(resource)).toBe(resource);
    expect(checkMappedResource(resource)).toEqual({ kind: 'valid', resource });
  });
});

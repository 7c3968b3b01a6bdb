import { describe, expect, it } from 'vitest';

import { AnchorlineError } from '../../errors/index.ts';
import { type ResourceDraft, mergeDraft } from '../../mappers/index.ts';

const stored = {
  resourceType: 'Patient',
  id: 'p1',
  meta: { versionId: '3', lastUpdated: '2024-08-01T00:00:00Z' },
  active: true,
  gender: 'male',
  birthDate: '1988-01-01',
  _birthDate: { extension: [{ url: 'http://hl7.org/fhir/StructureDefinition/patient-birthTime', valueDateTime: '1988-01-01T10:00:00+09:00' }] },
  telecom: [{ system: 'phone', value: '010-1234-5678', use: 'mobile' }],
  address: [{ city: 'Seoul' }],
};

describe('mergeDraft', () => {
  it('absent keeps, null removes, a value replaces', () => {
    const draft: ResourceDraft = { resourceType: 'Patient', id: 'p1', gender: 'female', telecom: null, address: undefined, name: [{ family: 'KIM' }] };
    const merged = mergeDraft(stored, draft);
    expect(merged).toEqual({
      resourceType: 'Patient',
      id: 'p1',
      meta: stored.meta,
      active: true,
      gender: 'female',
      birthDate: '1988-01-01',
      _birthDate: stored._birthDate,
      address: [{ city: 'Seoul' }],
      name: [{ family: 'KIM' }],
    });
  });

  it('replaces lists whole rather than merging items', () => {
    const merged = mergeDraft(stored, { resourceType: 'Patient', id: 'p1', telecom: [{ system: 'email', value: 'a@example.org' }] });
    expect(merged['telecom']).toEqual([{ system: 'email', value: 'a@example.org' }]);
  });

  it('never touches meta, even when the draft carries one', () => {
    const merged = mergeDraft(stored, { resourceType: 'Patient', id: 'p1', meta: { versionId: '99' } });
    expect(merged['meta']).toEqual(stored.meta);
    expect(mergeDraft(undefined, { resourceType: 'Patient', id: 'p1', meta: { versionId: '99' } })).toEqual({ resourceType: 'Patient', id: 'p1' });
  });

  it('drops the primitive extension of a replaced or removed element', () => {
    expect(mergeDraft(stored, { resourceType: 'Patient', id: 'p1', birthDate: '1988-01-02' })).not.toHaveProperty('_birthDate');
    expect(mergeDraft(stored, { resourceType: 'Patient', id: 'p1', birthDate: null })).not.toHaveProperty('_birthDate');
    expect(mergeDraft(stored, { resourceType: 'Patient', id: 'p1', gender: 'male' })).toHaveProperty('_birthDate');
  });

  it('creates a new resource from a draft, without its nulls', () => {
    expect(mergeDraft(undefined, { resourceType: 'Patient', id: 'p2', active: true, telecom: null })).toEqual({ resourceType: 'Patient', id: 'p2', active: true });
  });

  it('fills required Encounter elements a draft leaves out or removes', () => {
    const created = mergeDraft(undefined, { resourceType: 'Encounter', id: 'e1', subject: { reference: 'Patient/p1' } });
    expect(created['status']).toBe('unknown');
    expect(created['class']).toEqual({ extension: [{ url: 'http://hl7.org/fhir/StructureDefinition/data-absent-reason', valueCode: 'unknown' }] });
    const current = { resourceType: 'Encounter', id: 'e1', status: 'in-progress', class: { code: 'IMP' } };
    const updated = mergeDraft(current, { resourceType: 'Encounter', id: 'e1', status: undefined, class: null });
    expect(updated['status']).toBe('in-progress');
    expect(updated['class']).toEqual(created['class']);
  });

  it('does not modify or alias its inputs', () => {
    const current = structuredClone(stored);
    const draft: ResourceDraft = { resourceType: 'Patient', id: 'p1', name: [{ family: 'KIM' }], telecom: null };
    const draftCopy = structuredClone(draft);
    const merged = mergeDraft(current, draft);
    expect(current).toEqual(stored);
    expect(draft).toEqual(draftCopy);
    (merged['name'] as Array<{ family: string }>)[0]!.family = 'LEE';
    (merged['address'] as Array<{ city: string }>)[0]!.city = 'Busan';
    expect(draft['name']).toEqual([{ family: 'KIM' }]);
    expect(current.address).toEqual([{ city: 'Seoul' }]);
  });

  it('refuses a draft for a different resource', () => {
    expect(() => mergeDraft(stored, { resourceType: 'Patient', id: 'other' })).toThrow(AnchorlineError);
    expect(() => mergeDraft(stored, { resourceType: 'Encounter', id: 'p1' })).toThrow(AnchorlineError);
  });
});

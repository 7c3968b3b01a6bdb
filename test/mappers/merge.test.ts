import { describe, expect, it } from 'vitest';

import { AnchorlineError } from '../../errors/index.ts';
import { type EncounterLocationOperation, type ResourceDraft, isElementMergeOperation, mergeDraft } from '../../mappers/index.ts';

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

describe('mergeDraft element merge operations', () => {
  const place = (display: string) => ({ display });
  const encounter = (elements: Record<string, unknown> = {}) => ({ resourceType: 'Encounter', id: 'e1', status: 'in-progress', class: { code: 'IMP' }, ...elements });
  const apply = (current: Record<string, unknown> | undefined, elements: Record<string, unknown>) => mergeDraft(current, { resourceType: 'Encounter', id: 'e1', ...elements });
  const locationsAfter = (stored: unknown[] | undefined, operation: EncounterLocationOperation) =>
    apply(stored === undefined ? undefined : encounter({ location: stored }), { location: operation })['location'];

  describe('members', () => {
    it('replaces and removes the named members and keeps the others', () => {
      const current = encounter({ period: { start: '2024-08-15T08:00:00+09:00', end: '2024-08-16T08:00:00+09:00' } });
      expect(apply(current, { period: { $merge: 'members', set: { end: '2024-08-20T14:00:00+09:00' } } })['period']).toEqual({
        start: '2024-08-15T08:00:00+09:00',
        end: '2024-08-20T14:00:00+09:00',
      });
      expect(apply(current, { period: { $merge: 'members', remove: ['end'] } })['period']).toEqual({ start: '2024-08-15T08:00:00+09:00' });
    });

    it('removes the element when no member is left, and builds it on a new resource', () => {
      expect(apply(encounter({ period: { end: '2024-08-16' } }), { period: { $merge: 'members', remove: ['end'] } })).not.toHaveProperty('period');
      expect(apply(undefined, { hospitalization: { $merge: 'members', set: { admitSource: { text: 'ER' } }, remove: ['dischargeDisposition'] } })['hospitalization']).toEqual({
        admitSource: { text: 'ER' },
      });
    });
  });

  describe('Encounter.location arrive', () => {
    const w71 = { location: place('W71'), status: 'active', period: { start: 'T1' } };

    it('starts the history of a new encounter', () => {
      expect(locationsAfter(undefined, { $merge: 'arrive', entry: w71, at: 'T1' })).toEqual([w71]);
    });

    it('completes the current entry at the arrival time and appends the new one', () => {
      const w82 = { location: place('W82'), status: 'active', period: { start: 'T2' } };
      expect(locationsAfter([w71], { $merge: 'arrive', entry: w82, at: 'T2' })).toEqual([{ ...w71, status: 'completed', period: { start: 'T1', end: 'T2' } }, w82]);
    });

    it('changes nothing when the patient is already there (a resent message, an A08 restating the bed)', () => {
      expect(locationsAfter([w71], { $merge: 'arrive', entry: { ...w71, period: { start: 'T9' } }, at: 'T9' })).toEqual([w71]);
    });

    it('treats stored entries without a status or an end as current', () => {
      expect(locationsAfter([{ location: place('W71') }], { $merge: 'arrive', entry: { location: place('W82'), status: 'active' }, at: 'T2' })).toEqual([
        { location: place('W71'), status: 'completed', period: { end: 'T2' } },
        { location: place('W82'), status: 'active' },
      ]);
      expect(locationsAfter([{ location: place('W71'), period: { end: 'T1' } }], { $merge: 'arrive', entry: { location: place('W82'), status: 'active' }, at: 'T2' })).toEqual([
        { location: place('W71'), period: { end: 'T1' } },
        { location: place('W82'), status: 'active' },
      ]);
    });

    it('a planned arrival replaces other plans and leaves the current location alone; an actual one drops the plans', () => {
      const plan4e = { location: place('4E'), status: 'planned' };
      const plan5e = { location: place('5E'), status: 'planned' };
      expect(locationsAfter([w71, plan4e], { $merge: 'arrive', entry: plan5e })).toEqual([w71, plan5e]);
      expect(locationsAfter([w71, plan4e], { $merge: 'arrive', entry: plan4e })).toEqual([w71, plan4e]);
      const arrived = { location: place('4E'), status: 'active', period: { start: 'T3' } };
      expect(locationsAfter([plan4e], { $merge: 'arrive', entry: arrived, at: 'T3' })).toEqual([arrived]);
    });

    it('seeds an empty history with the prior location (a transfer seen before its admission)', () => {
      const w82 = { location: place('W82'), status: 'active', period: { start: 'T2' } };
      const prior = { location: place('W71'), status: 'completed' };
      expect(locationsAfter(undefined, { $merge: 'arrive', entry: w82, at: 'T2', prior })).toEqual([{ ...prior, period: { end: 'T2' } }, w82]);
      expect(locationsAfter([w71], { $merge: 'arrive', entry: w82, at: 'T2', prior: { location: place('ER'), status: 'completed' } })).toHaveLength(2);
    });

    it('matches places by Location reference when both have one, else by display', () => {
      const byReference = { location: { reference: 'Location/a', display: 'W71' }, status: 'active' };
      expect(locationsAfter([byReference], { $merge: 'arrive', entry: { location: { reference: 'Location/a', display: 'Ward 71' }, status: 'active' } })).toEqual([byReference]);
      expect(locationsAfter([byReference], { $merge: 'arrive', entry: { location: { reference: 'Location/b', display: 'W71' }, status: 'active' }, at: 'T2' })).toHaveLength(2);
      expect(locationsAfter([byReference], { $merge: 'arrive', entry: { location: { display: 'W72' }, status: 'active' }, at: 'T2' })).toHaveLength(2);
    });

    it('an entry stored before Locations (display only) is the same place as a reference with that display, and gains it', () => {
      const stored = { location: place('W71^0712^B'), status: 'active', period: { start: 'T1' } };
      const referenced = { location: { reference: 'Location/bed', display: 'W71^0712^B' }, status: 'active', period: { start: 'T2' } };
      expect(locationsAfter([stored], { $merge: 'arrive', entry: referenced, at: 'T2' })).toEqual([{ ...stored, location: referenced.location }]);
    });
  });

  describe('Encounter.location leave, cancel-arrive, cancel-leave', () => {
    const w71Done = { location: place('W71'), status: 'completed', period: { start: 'T1', end: 'T2' } };
    const w82 = { location: place('W82'), status: 'active', period: { start: 'T2' } };

    it('leave completes the current entry; a discharge location the history does not end at is appended', () => {
      expect(locationsAfter([w71Done, w82], { $merge: 'leave', at: 'T5', entry: { location: place('W82') } })).toEqual([w71Done, { ...w82, status: 'completed', period: { start: 'T2', end: 'T5' } }]);
      expect(locationsAfter([w71Done], { $merge: 'leave', at: 'T5', entry: { location: place('W82') } })).toEqual([w71Done, { location: place('W82'), status: 'completed', period: { end: 'T5' } }]);
      expect(locationsAfter(undefined, { $merge: 'leave', at: 'T5' })).toBeUndefined();
    });

    it('leave applied twice is leave applied once', () => {
      const once = locationsAfter([w71Done, w82], { $merge: 'leave', at: 'T5', entry: { location: place('W82') } }) as unknown[];
      expect(locationsAfter(once, { $merge: 'leave', at: 'T6', entry: { location: place('W82') } })).toEqual(once);
    });

    it('cancel-arrive removes the current entry and reopens the one before it', () => {
      expect(locationsAfter([w71Done, w82], { $merge: 'cancel-arrive', entry: { location: place('W71') } })).toEqual([{ location: place('W71'), status: 'active', period: { start: 'T1' } }]);
    });

    it('cancel-arrive appends the restored location when the history does not have it, and is a no-op once there', () => {
      expect(locationsAfter([w82], { $merge: 'cancel-arrive', entry: { location: place('W71') } })).toEqual([{ location: place('W71'), status: 'active' }]);
      expect(locationsAfter([w71Done, w82], { $merge: 'cancel-arrive', entry: { location: place('W82') } })).toEqual([w71Done, w82]);
    });

    it('cancel-leave reopens the last entry, and changes nothing while the patient is somewhere', () => {
      const left = [w71Done, { ...w82, status: 'completed', period: { start: 'T2', end: 'T5' } }];
      expect(locationsAfter(left, { $merge: 'cancel-leave', entry: { location: place('W82') } })).toEqual([w71Done, w82]);
      expect(locationsAfter([w71Done, w82], { $merge: 'cancel-leave' })).toEqual([w71Done, w82]);
      expect(locationsAfter(left, { $merge: 'cancel-leave', entry: { location: place('ICU') } })).toEqual([...left, { location: place('ICU'), status: 'active' }]);
    });
  });

  describe('Encounter.classHistory class-change', () => {
    const amb = { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'AMB' };
    const imp = { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'IMP' };

    it('records the stored class until the change and the new class from it', () => {
      const current = encounter({ class: amb, period: { start: 'T0' } });
      const changed = apply(current, { class: imp, classHistory: { $merge: 'class-change', class: imp, at: 'T1' } });
      expect(changed['class']).toEqual(imp);
      expect(changed['classHistory']).toEqual([
        { class: amb, period: { start: 'T0', end: 'T1' } },
        { class: imp, period: { start: 'T1' } },
      ]);
      const back = apply(changed, { class: amb, classHistory: { $merge: 'class-change', class: amb, at: 'T2' } });
      expect(back['classHistory']).toEqual([
        { class: amb, period: { start: 'T0', end: 'T1' } },
        { class: imp, period: { start: 'T1', end: 'T2' } },
        { class: amb, period: { start: 'T2' } },
      ]);
    });

    it('records nothing for the same class, an unknown class or a new encounter', () => {
      expect(apply(encounter({ class: imp }), { classHistory: { $merge: 'class-change', class: imp, at: 'T1' } })).not.toHaveProperty('classHistory');
      const absent = { extension: [{ url: 'http://hl7.org/fhir/StructureDefinition/data-absent-reason', valueCode: 'unknown' }] };
      expect(apply(encounter({ class: absent }), { classHistory: { $merge: 'class-change', class: imp, at: 'T1' } })).not.toHaveProperty('classHistory');
      expect(apply(undefined, { class: imp, classHistory: { $merge: 'class-change', class: imp, at: 'T1' } })).not.toHaveProperty('classHistory');
    });
  });

  it('refuses an operation its element has no rule for, as a mapping failure', () => {
    expect(() => apply(encounter(), { location: { $merge: 'teleport' } })).toThrow(AnchorlineError);
    expect(() => mergeDraft(stored, { resourceType: 'Patient', id: 'p1', address: { $merge: 'members', set: {} } })).toThrow(
      expect.objectContaining({ code: 'ANCHORLINE_ERR_MAPPING_FAILED' }),
    );
  });

  it('does not modify its inputs when applying operations', () => {
    const current = encounter({ location: [{ location: place('W71'), status: 'active', period: { start: 'T1' } }], period: { start: 'T1' } });
    const currentCopy = structuredClone(current);
    const draft: ResourceDraft = {
      resourceType: 'Encounter',
      id: 'e1',
      location: { $merge: 'arrive', entry: { location: place('W82'), status: 'active', period: { start: 'T2' } }, at: 'T2' },
      period: { $merge: 'members', set: { end: 'T3' } },
    };
    const draftCopy = structuredClone(draft);
    const merged = mergeDraft(current, draft);
    expect(current).toEqual(currentCopy);
    expect(draft).toEqual(draftCopy);
    (merged['location'] as Array<{ status: string }>)[1]!.status = 'completed';
    expect((draft['location'] as { entry: { status: string } }).entry.status).toBe('active');
  });

  it('recognises operations only by a string $merge member', () => {
    expect(isElementMergeOperation({ $merge: 'members' })).toBe(true);
    for (const value of [null, [], 'members', { merge: 'members' }, { $merge: 1 }, [{ $merge: 'members' }]]) expect(isElementMergeOperation(value)).toBe(false);
  });
});

describe('mergeDraft: lists fed by fields and by ROL segments (roles)', () => {
  const V3 = 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType';
  const ROLE = 'http://terminology.hl7.org/CodeSystem/v2-0443';
  const attender = (who: string) => ({ type: [{ coding: [{ system: V3, code: 'ATND' }] }], individual: { reference: `Practitioner/${who}` } });
  const consultant = (who: string, start?: string) => ({
    type: [{ coding: [{ system: V3, code: 'CON' }, { system: ROLE, code: 'CP' }] }],
    individual: { reference: `Practitioner/${who}` },
    ...(start === undefined ? {} : { period: { start } }),
  });
  const encounter = (participant: unknown): ResourceDraft => ({ resourceType: 'Encounter', id: 'e1', participant });
  const stored = { resourceType: 'Encounter', id: 'e1', participant: [attender('d1'), consultant('c1')] };

  it('fields replace the field entries only; set replaces the role entry with its role and person, or appends', () => {
    const merged = mergeDraft(stored, encounter({ $merge: 'roles', fields: [attender('d2')], set: [consultant('c1', '2024-08-15'), consultant('c2')] }));
    expect(merged['participant']).toEqual([attender('d2'), consultant('c1', '2024-08-15'), consultant('c2')]);
  });

  it('clearFields removes the field entries, remove the role entry; the element goes when nothing is left', () => {
    expect(mergeDraft(stored, encounter({ $merge: 'roles', clearFields: true }))['participant']).toEqual([consultant('c1')]);
    expect(mergeDraft(stored, encounter({ $merge: 'roles', remove: [consultant('c1')] }))['participant']).toEqual([attender('d1')]);
    expect(mergeDraft(stored, encounter({ $merge: 'roles', clearFields: true, remove: [consultant('c1')] }))).not.toHaveProperty('participant');
  });

  it('restating what is stored changes nothing', () => {
    const merged = mergeDraft(stored, encounter({ $merge: 'roles', fields: [attender('d1')], set: [consultant('c1')] }));
    expect(merged['participant']).toEqual(stored.participant);
  });

  it('Patient.generalPractitioner: a PractitionerRole reference is a ROL entry, the others are PD1', () => {
    const patient = { resourceType: 'Patient', id: 'p1', generalPractitioner: [{ reference: 'Practitioner/gp1' }, { reference: 'PractitionerRole/r1' }] };
    const merged = mergeDraft(patient, { resourceType: 'Patient', id: 'p1', generalPractitioner: { $merge: 'roles', fields: [{ reference: 'Organization/o1' }] } });
    expect(merged['generalPractitioner']).toEqual([{ reference: 'Organization/o1' }, { reference: 'PractitionerRole/r1' }]);
  });
});

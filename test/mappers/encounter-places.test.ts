/**
 * The places beside the assigned one in Encounter.location (mappers/hl7v2/adt-encounter.ts sidePlaces and the
 * 'places' of mappers/merge.ts): PV1-11 temporary location as an active entry classified temporary, PV1-43 prior
 * temporary location as a completed one, PV1-42 pending location as a reserved one, each a Location; messages
 * applied one after the other as the store applies them.
 */

import { describe, expect, it } from 'vitest';

import { type MappingResult, deterministicId, mergeDraft } from '../../mappers/index.ts';

import { SEOULGEN, byReference, expectResolvedAndValid, map, msh, only, segment } from './hl7v2-references.ts';

const PID = 'PID|1||12345678^^^SEOULGEN^MR||KIM^MINSU||19880101|M';
const TEMPORARY = {
  url: 'http://hl7.org/fhir/StructureDefinition/subject-locationClassification',
  valueCodeableConcept: { coding: [{ system: 'http://hl7.org/fhir/subject-locationClassification', code: 'temporary', display: 'Temporary' }] },
};

function adt(event: string, control: string, time: string, pv1: Record<number, string>): MappingResult {
  return map([msh(`ADT^${event}`, control), `EVN|${event}|${time}`, PID, segment('PV1', { 1: '1', 2: 'I', 19: 'V1^^^SEOULGEN^VN', ...pv1 })]);
}

/** The stored Encounter.location after applying each message's Encounter draft in turn. */
function history(...results: MappingResult[]): Array<Record<string, unknown>> {
  let stored: Record<string, unknown> | undefined;
  for (const result of results) stored = mergeDraft(stored, only(result, 'Encounter'));
  return (stored?.['location'] ?? []) as Array<Record<string, unknown>>;
}

const bed = (ward: string, room: string, bedCode: string): string =>
  `Location/${deterministicId('Location', SEOULGEN, 'poc', ward, 'room', room, 'bed', bedCode)}`;
const dialysis = `Location/${deterministicId('Location', SEOULGEN, 'poc', 'HD')}`;

describe('Encounter.location: temporary, prior temporary and pending places', () => {
  const admit = adt('A01', 'L1', '20240815083000', { 3: 'W71^0712^B', 44: '20240815083000' });

  it('PV1-11 is where the patient is for a while, beside the bed: an active entry classified temporary', () => {
    const departing = adt('A09', 'L2', '20240816100000', { 3: 'W71^0712^B', 11: 'HD' });
    expect(history(admit, departing)).toEqual([
      { location: { reference: bed('W71', '0712', 'B'), display: 'W71^0712^B' }, status: 'active', period: { start: '2024-08-15T08:30:00+09:00' } },
      { location: { reference: dialysis, display: 'HD' }, status: 'active', period: { start: '2024-08-16T10:00:00+09:00' }, extension: [TEMPORARY] },
    ]);
    expect(byReference(departing, dialysis)).toMatchObject({ name: 'HD', mode: 'instance' });
    expectResolvedAndValid(departing);
  });

  it('PV1-43 completes the temporary stay; PV1-11 `""` ends every temporary stay; a resent PV1-11 changes nothing', () => {
    const departing = adt('A09', 'L2', '20240816100000', { 3: 'W71^0712^B', 11: 'HD' });
    const again = adt('A08', 'L3', '20240816103000', { 3: 'W71^0712^B', 11: 'HD' });
    const back = adt('A10', 'L4', '20240816140000', { 3: 'W71^0712^B', 43: 'HD' });
    const afterBack = history(admit, departing, again, back);
    expect(afterBack).toHaveLength(2);
    expect(afterBack[0]).toMatchObject({ status: 'active' });
    expect(afterBack[1]).toEqual({
      location: { reference: dialysis, display: 'HD' },
      status: 'completed',
      period: { start: '2024-08-16T10:00:00+09:00', end: '2024-08-16T14:00:00+09:00' },
      extension: [TEMPORARY],
    });
    const cleared = adt('A08', 'L5', '20240816150000', { 3: 'W71^0712^B', 11: '""' });
    expect(history(admit, departing, cleared)[1]).toMatchObject({ status: 'completed', period: { end: '2024-08-16T15:00:00+09:00' } });
    // A prior temporary place the history never had is recorded as completed.
    expect(history(admit, back)[1]).toMatchObject({ location: { reference: dialysis }, status: 'completed', extension: [TEMPORARY] });
  });

  it('a transfer leaves the temporary stay alone; a discharge completes it', () => {
    const departing = adt('A09', 'L2', '20240816100000', { 3: 'W71^0712^B', 11: 'HD' });
    const transfer = adt('A02', 'L6', '20240816120000', { 3: 'W82^0821^A' });
    const discharge = adt('A03', 'L7', '20240817090000', { 3: 'W82^0821^A', 45: '20240817090000' });
    const moved = history(admit, departing, transfer);
    expect(moved.map((entry) => [entry['status'], (entry['location'] as { display: string }).display])).toEqual([
      ['completed', 'W71^0712^B'],
      ['active', 'HD'],
      ['active', 'W82^0821^A'],
    ]);
    const left = history(admit, departing, transfer, discharge);
    expect(left.every((entry) => entry['status'] === 'completed')).toBe(true);
    expect(left[1]).toMatchObject({ period: { end: '2024-08-17T09:00:00+09:00' }, extension: [TEMPORARY] });
  });

  it('PV1-42 is the place held for the patient: reserved until the transfer there, or until it is freed', () => {
    const pending = adt('A15', 'L8', '20240816110000', { 3: 'W71^0712^B', 42: 'W90^0901^C' });
    const reserved = { location: { reference: bed('W90', '0901', 'C'), display: 'W90^0901^C' }, status: 'reserved' };
    expect(history(admit, pending)).toEqual([expect.objectContaining({ status: 'active' }), reserved]);
    expectResolvedAndValid(pending);
    // Another pending place replaces it; the transfer there takes it up.
    const changed = adt('A15', 'L9', '20240816113000', { 3: 'W71^0712^B', 42: 'W91^0911^A' });
    expect(history(admit, pending, changed).filter((entry) => entry['status'] === 'reserved')).toHaveLength(1);
    const transfer = adt('A02', 'L10', '20240816120000', { 3: 'W90^0901^C', 42: 'W90^0901^C' });
    const after = history(admit, pending, transfer);
    expect(after.map((entry) => entry['status'])).toEqual(['completed', 'active']);
    // A cancelled pending transfer (A26 with PV1-42 `""`) frees the place.
    const cancelled = adt('A26', 'L11', '20240816113000', { 3: 'W71^0712^B', 42: '""' });
    expect(history(admit, pending, cancelled).map((entry) => entry['status'])).toEqual(['active']);
  });

  it('a preadmission only holds its pending place; a visit entered in error and messages other than ADT change no place', () => {
    const preadmit = adt('A05', 'L12', '20240814090000', { 2: 'P', 3: 'W71^0712^B', 11: 'HD', 42: 'W90^0901^C' });
    expect(history(preadmit).map((entry) => entry['status'])).toEqual(['planned', 'reserved']);
    const deleted = adt('A23', 'L13', '20240816100000', { 3: 'W71^0712^B', 11: 'HD' });
    expect(only(deleted, 'Encounter')).not.toHaveProperty('location');
    const account = map([msh('BAR^P05^BAR_P05', 'B1'), 'EVN|P05|20240816100000', PID, segment('PV1', { 1: '1', 2: 'I', 3: 'W71^0712^B', 11: 'HD', 42: 'W90^0901^C', 19: 'V1^^^SEOULGEN^VN' })]);
    expect(only(account, 'Encounter')).not.toHaveProperty('location');
  });
});

/**
 * The research scopes (a steward's research-admin, a researcher's research/<projectId>), the research search's
 * parameters, the date ranges its index holds, and the cohort Group checks: pure, no engine.
 */
import { describe, expect, it } from 'vitest';
import { Access, isKnownScope, isUserScope, parseScopeList } from '../../api/access.ts';
import { parseResearchSearch } from '../../api/research.ts';
import { researchCohort } from '../../store/index.ts';
import { omopCsv, omopId } from '../../store/research-omop.ts';
import { dateRange } from '../../workers/research-refresh.ts';

const client = (scopes: string[]): Access => new Access({ kind: 'oauth-client', id: 'cl_x', name: 'researcher' }, scopes);

describe('research scopes', () => {
  it('are known to system credentials only, and refused when malformed', () => {
    expect(parseScopeList('research/glucose-study research-admin')).toEqual(['research/glucose-study', 'research-admin']);
    expect(isKnownScope('research/a.b-1')).toBe(true);
    for (const bad of ['research/', 'research/a/b', 'research/*', `research/${'x'.repeat(65)}`]) expect(isKnownScope(bad), bad).toBe(false);
    expect(isUserScope('research/glucose-study')).toBe(false);
    expect(() => parseScopeList('research/a research/')).toThrow(/unknown scope/);
  });

  it('give a researcher one project and nothing of the clinical API', () => {
    const researcher = client(['research/glucose-study']);
    expect(researcher.canResearch('glucose-study')).toBe(true);
    expect(researcher.canResearch('other-study')).toBe(false);
    expect(researcher.meets('research')).toBe(true);
    for (const route of ['read', 'write', 'audit', 'ingest', 'terminology', 'admin', 'research-admin'] as const) expect(researcher.meets(route), route).toBe(false);
    expect(researcher.can('Patient', 'r')).toBe(false);
    expect(researcher.isResearchSteward).toBe(false);
  });

  it('make a steward of research-admin, without any clinical read', () => {
    const steward = client(['research-admin']);
    expect(steward.meets('research-admin')).toBe(true);
    expect(steward.meets('research')).toBe(true);
    expect(steward.canResearch('any-study')).toBe(true);
    expect(steward.meets('read')).toBe(false);
    expect(steward.can('Observation', 's')).toBe(false);
  });
});

describe('the research search', () => {
  it('reads patient, code, date, _id and paging, and refuses anything else', () => {
    const { criteria, paging } = parseResearchSearch({ patient: 'abc', code: 'http://loinc.org|2345-7,718-7', date: ['ge2020-01-01', 'lt2021'], _count: '5000', _offset: '10' });
    expect(paging).toEqual({ count: 1000, offset: 10 });
    expect(criteria).toContainEqual({ kind: 'patient', values: ['Patient/abc'] });
    expect(criteria).toContainEqual({ kind: 'token', param: 'code', values: [{ system: 'http://loinc.org', code: '2345-7' }, { code: '718-7' }] });
    expect(criteria.filter((c) => c.kind === 'date')).toHaveLength(2);
    expect(() => parseResearchSearch({ name: 'Kim' })).toThrow(/not supported/);
    expect(() => parseResearchSearch({ _count: '-1' })).toThrow(/non-negative/);
    expect(() => parseResearchSearch({ _offset: '20000' })).toThrow(/at most/);
  });

  it('indexes a date as the range its precision covers', () => {
    expect(dateRange('2026')).toEqual({ low: new Date('2026-01-01T00:00:00Z'), high: new Date('2027-01-01T00:00:00Z') });
    expect(dateRange('2026-02')).toEqual({ low: new Date('2026-02-01T00:00:00Z'), high: new Date('2026-03-01T00:00:00Z') });
    expect(dateRange('2026-02-28')).toEqual({ low: new Date('2026-02-28T00:00:00Z'), high: new Date('2026-03-01T00:00:00Z') });
    expect(dateRange('2026-02-28T10:00:00+09:00')!.low).toEqual(new Date('2026-02-28T01:00:00Z'));
    expect(dateRange({ start: '2026-01-05' })!.high.getUTCFullYear()).toBe(9999);
    expect(dateRange('not a date')).toBeUndefined();
    expect(dateRange(42)).toBeUndefined();
  });
});

describe('cohort Groups', () => {
  it('accept members or coded criteria, and name what is wrong otherwise', () => {
    expect(researchCohort.cohortProblems({ resourceType: 'Group', type: 'person', member: [{ entity: { reference: 'Patient/a' } }] })).toEqual([]);
    const problems = researchCohort.cohortProblems({
      resourceType: 'Group',
      type: 'device',
      member: [{ entity: { reference: 'Device/x' } }],
      characteristic: [
        { code: { coding: [{ system: 'urn:anchorline:research-criterion', code: 'birth-date' }] } },
        { code: { coding: [{ system: 'urn:anchorline:research-criterion', code: 'condition' }] } },
        { code: { coding: [{ system: 'http://loinc.org', code: '46098-0' }] } },
      ],
    }).map((p) => p.location);
    expect(problems).toEqual(['Group.type', 'Group.member[0].entity', 'Group.characteristic[0].period', 'Group.characteristic[1].valueCodeableConcept', 'Group.characteristic[2].code']);
    expect(researchCohort.cohortProblems({ resourceType: 'Group', type: 'person' })).toHaveLength(1);
  });
});

describe('OMOP tables', () => {
  it('take integer ids below 2^53 from pseudonyms, and quote CSV fields that need it', () => {
    expect(omopId('0123456789abcdef0123456789abcdef')).toBe(0x0123456789abc);
    expect(Number.isSafeInteger(omopId('not-hex'))).toBe(true);
    expect(omopId('not-hex')).toBe(omopId('not-hex'));
    expect(omopCsv({ columns: ['a', 'b'], rows: [[1, 'x,"y"'], [null, 'z']] })).toBe('a,b\r\n1,"x,""y"""\r\n,z\r\n');
  });
});

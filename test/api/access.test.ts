/** The scope grammar (SMART v2 system scopes and the engine's own) and the response check on FHIR bodies. */
import { describe, expect, it } from 'vitest';
import { Access, parseScopeList } from '../../api/access.ts';
import { checkResponse } from '../../api/fhir.ts';
import { isAnchorlineError } from '../../errors/index.ts';

const principal = { kind: 'api-key' as const, id: '1', name: 'test' };
const access = (...scopes: string[]): Access => new Access(principal, scopes);

describe('scopes', () => {
  it('reads SMART v2 permissions letter by letter, and v1 forms as their v2 equivalents', () => {
    const a = access('system/Patient.rs', 'system/Observation.s', 'system/Encounter.read', 'system/Condition.*');
    expect([a.can('Patient', 'r'), a.can('Patient', 's'), a.can('Patient', 'c')]).toEqual([true, true, false]);
    expect([a.can('Observation', 'r'), a.can('Observation', 's')]).toEqual([false, true]);
    expect([a.can('Encounter', 'r'), a.can('Encounter', 's'), a.can('Encounter', 'u')]).toEqual([true, true, false]);
    expect(['c', 'r', 'u', 'd', 's'].every((i) => a.can('Condition', i as 'c'))).toBe(true);
    expect(a.can('Specimen', 'r')).toBe(false);
  });

  it('keeps the audit trail out of wildcards: only audit, admin or an explicit AuditEvent scope reach it', () => {
    expect(access('system/*.cruds').can('AuditEvent', 'r')).toBe(false);
    expect(access('system/*.cruds').can('Observation', 'r')).toBe(true);
    expect(access('read').can('AuditEvent', 's')).toBe(false);
    expect(access('audit').can('AuditEvent', 's')).toBe(true);
    expect(access('audit').can('Patient', 'r')).toBe(false);
    expect(access('system/AuditEvent.rs').can('AuditEvent', 'r')).toBe(true);
    expect(access('admin').can('AuditEvent', 'r')).toBe(true);
  });

  it('meets route requirements: admin implies all, read needs some read grant', () => {
    expect(access('ingest').meets('read')).toBe(false);
    expect(access('system/Patient.s').meets('read')).toBe(true);
    expect(access('system/Patient.c').meets('read')).toBe(false);
    expect(access('audit').meets('read')).toBe(true);
    expect(access('admin').meets('ingest') && access('admin').meets('audit')).toBe(true);
    expect(access('ingest').meets('admin')).toBe(false);
  });

  it('refuses scopes it does not understand rather than reading them wider', () => {
    expect(parseScopeList('system/Patient.rs  ingest')).toEqual(['system/Patient.rs', 'ingest']);
    for (const bad of ['system/Patient.sr', 'system/patient.rs', 'patient/Patient.rs', 'system/Observation.rs?category=laboratory', 'system/Patient.', 'superuser']) {
      expect(() => parseScopeList(bad), bad).toThrow(/unknown scope/);
    }
  });
});

describe('response check', () => {
  const patient = { resourceType: 'Patient', id: 'p' };
  const observation = { resourceType: 'Observation', id: 'o', contained: [patient] };

  it('passes what the caller may read, including containers and outcomes', () => {
    expect(() => checkResponse(access('system/Patient.rs'), { resourceType: 'Bundle', entry: [{ resource: patient }, { resource: { resourceType: 'OperationOutcome' } }] })).not.toThrow();
    expect(() => checkResponse(access('system/Patient.rs', 'system/Observation.r'), observation)).not.toThrow();
  });

  it('fails the whole response for any resource the caller may not read, even one contained or nested', () => {
    const forbidden = (fn: () => void): string | undefined => {
      try {
        fn();
      } catch (error) {
        return isAnchorlineError(error) ? error.code : 'other';
      }
      return undefined;
    };
    expect(forbidden(() => checkResponse(access('system/Observation.rs'), { resourceType: 'Bundle', entry: [{ resource: observation }] }))).toBe('ANCHORLINE_ERR_FORBIDDEN');
    expect(forbidden(() => checkResponse(access('system/Patient.rs'), { resourceType: 'Bundle', entry: [{ resource: { resourceType: 'Bundle', entry: [{ resource: observation }] } }] }))).toBe('ANCHORLINE_ERR_FORBIDDEN');
    expect(forbidden(() => checkResponse(access('system/*.rs'), { resourceType: 'AuditEvent', id: 'a' }))).toBe('ANCHORLINE_ERR_FORBIDDEN');
  });
});

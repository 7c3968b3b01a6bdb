/**
 * What a caller may do: the scopes of its API key or access token, read once per request into an `Access`.
 *
 * Scopes (SMART App Launch v2, system level, plus the engine's own):
 *   system/<Type>.<cruds>   FHIR access to one resource type; the letters, in this order, are create, read, update,
 *                           delete and search. `system/*.rs` is every type. The engine's FHIR API serves reads
 *                           (read, vread, history: `r`) and searches (`s`); c and u grant the one FHIR write route,
 *                           Consent (api/fhir-write.ts), and otherwise nothing more, because other resources are
 *                           written only by mapping inbound messages; d is accepted and grants nothing.
 *                           SMART v1 forms are read as their v2 equivalents: `.read` = `.rs`, `.write` = `.cud`,
 *                           `.*` = `.cruds`.
 *   ingest                  post messages (HL7 v2 over HTTP, C-CDA, STOW-RS).
 *   terminology             the unmapped-code worklist (GET /terminology/unmapped): local codes and the displays
 *                           senders gave them, which reading records does not entitle a caller to.
 *   audit                   read the audit trail (AuditEvent). `system/*` does not include AuditEvent: who looked at
 *                           which record is for auditors, not for every reader of records; `system/AuditEvent.rs`
 *                           grants it explicitly.
 *   research-admin          a data steward: defines research projects (ResearchStudy, cohort Group, release
 *                           settings), releases them into the research database and registers their researchers
 *                           (api/research.ts). It reads no clinical records through the FHIR API.
 *   research/<projectId>    a researcher of one project: FHIR search and Bulk Data $export on that project's
 *                           de-identified data in the research database, and nothing else (not the clinical API, not
 *                           another project).
 *   admin                   everything, including key, client and configuration management.
 *   read                    the earlier API-key scope; the same as `system/*.rs`.
 * Granular v2 scopes with a query (`system/Observation.rs?category=...`) are refused as unknown rather than read as
 * wider than they are.
 *
 * People (patients, their representatives, practitioners, registration staff) sign in through SMART App Launch and
 * hold `patient/` and `user/` scopes instead (parseUserScopeList), with the same letters:
 *   patient/<Type>.<cruds>  the type, within the compartments of the patients in context: the patient's own records
 *                           (across facilities), a representative's patients, or the patient a practitioner launched
 *                           with. Types outside the patient compartment (Practitioner, Organization) are not limited.
 *   user/<Type>.<cruds>     the type, as far as the user may see it.
 * Both are further limited by the patients' consents (api/consent-gate.ts): a person's scopes never reach further than
 * a system's would, and consent decides within them. System credentials (API keys, client credentials) are not
 * subject to consent: they act for the engine's operators, not for a person.
 */
import { AnchorlineError } from '../errors/index.ts';

/** FHIR interactions a scope can grant, by SMART letter. */
export type Interaction = 'c' | 'r' | 'u' | 'd' | 's';

/**
 * What a route requires before its handler runs. `read`: some FHIR read permission; `write`: some FHIR create or
 * update permission (the Consent write route); the handler checks the type.
 */
export type RouteScope = 'ingest' | 'admin' | 'audit' | 'terminology' | 'read' | 'write' | 'research-admin' | 'research';

const ENGINE_SCOPES = ['ingest', 'admin', 'audit', 'terminology', 'read', 'research-admin'] as const;
/** A researcher's scope: one project's de-identified data (api/research.ts). The id is a FHIR id. */
const RESEARCH_SCOPE = /^research\/([A-Za-z0-9\-.]{1,64})$/;
const RESOURCE_SCOPE = /^(system|patient|user)\/(\*|[A-Z][A-Za-z]{1,63})\.(c?r?u?d?s?|read|write|\*)$/;
/** SMART App Launch scopes that grant no resource access by themselves: identity, launch context, refresh tokens. */
export const SIGN_IN_SCOPES = ['openid', 'fhirUser', 'profile', 'launch', 'launch/patient', 'offline_access', 'online_access'] as const;
const V1_PERMISSIONS: Record<string, string> = { read: 'rs', write: 'cud', '*': 'cruds' };
/** Types only an explicit grant (or audit/admin) reaches; `system/*` stops short of them. */
const AUDIT_TYPES = new Set(['AuditEvent']);

interface ResourceGrant {
  /** Whose resources: `patient` grants stop at the compartments of the patients in context. */
  level: 'system' | 'patient' | 'user';
  type: string;
  interactions: Set<Interaction>;
}

/** True for a scope a system credential (API key, client credentials) may hold. */
export function isKnownScope(scope: string): boolean {
  return (ENGINE_SCOPES as readonly string[]).includes(scope) || parseResourceScope(scope)?.level === 'system' || RESEARCH_SCOPE.test(scope);
}

/** The research scope of project `projectId`: what a researcher's client holds. */
export function researchScope(projectId: string): string {
  return `research/${projectId}`;
}

/** True for a scope a person's token may hold (SMART App Launch). */
export function isUserScope(scope: string): boolean {
  const grant = parseResourceScope(scope);
  return (SIGN_IN_SCOPES as readonly string[]).includes(scope) || (grant !== undefined && grant.level !== 'system');
}

function parseResourceScope(scope: string): ResourceGrant | undefined {
  const match = RESOURCE_SCOPE.exec(scope);
  if (!match || match[3] === '') return undefined;
  const letters = V1_PERMISSIONS[match[3]!] ?? match[3]!;
  return { level: match[1] as ResourceGrant['level'], type: match[2]!, interactions: new Set(letters.split('') as Interaction[]) };
}

/** Splits a SMART `scope` parameter of a person's authorization request; unknown scopes are an error. */
export function parseUserScopeList(value: string | readonly string[]): string[] {
  const scopes = (typeof value === 'string' ? value.split(/\s+/) : [...value]).filter((s) => s !== '');
  const unknown = scopes.filter((s) => !isUserScope(s));
  if (unknown.length > 0) {
    throw new AnchorlineError('ANCHORLINE_ERR_INVALID_REQUEST', `unknown scope ${unknown.map((s) => JSON.stringify(s)).join(', ')}: use patient/<Type>.<cruds>, user/<Type>.<cruds>, openid, fhirUser, launch/patient or offline_access`);
  }
  return [...new Set(scopes)];
}

/** Splits an OAuth `scope` parameter (space-separated) and checks every entry; unknown scopes are an error. */
export function parseScopeList(value: string | readonly string[]): string[] {
  const scopes = (typeof value === 'string' ? value.split(/\s+/) : [...value]).filter((s) => s !== '');
  const unknown = scopes.filter((s) => !isKnownScope(s));
  if (unknown.length > 0) {
    throw new AnchorlineError('ANCHORLINE_ERR_INVALID_REQUEST', `unknown scope ${unknown.map((s) => JSON.stringify(s)).join(', ')}: use system/<Type>.<cruds>, ingest, audit, terminology, research-admin, research/<projectId> or admin`);
  }
  return [...new Set(scopes)];
}

/** What a signed-in person is to the records: the roles consents and break-the-glass rules are written for. */
export type PersonRole = 'patient' | 'representative' | 'practitioner' | 'registration';

/** A signed-in person, as their user account says (store/users.ts). */
export interface Person {
  /** The user account's id. */
  userId: string;
  role: PersonRole;
  /** The FHIR resource that is this person: `Patient/x`, `RelatedPerson/x` or `Practitioner/x` (SMART `fhirUser`). */
  fhirUser: string;
  /**
   * The patients this person is (a patient's records at several facilities) or acts for (a legal representative):
   * `Patient/x`. Empty for practitioners and staff.
   */
  patients: readonly string[];
  /** The organisation a practitioner or staff member acts for: `Organization/x`. */
  organization?: string;
  /** Further references a consent may name this person by: `PractitionerRole/x`, `CareTeam/x`. */
  memberOf: readonly string[];
  /** Role codes (v3 RoleCode, e.g. `PRCP`, `ECON`, or configured ones) that break-the-glass rules name. */
  roles: readonly string[];
}

/** The principal behind a request. */
export interface Principal {
  kind: 'api-key' | 'oauth-client' | 'user';
  /** The key's numeric id, the client's client_id, or the user account's id. */
  id: string;
  name: string;
  /** The configured source this credential is bound to; absent: not bound to one. */
  source?: string;
  /** The signed-in person, for kind `user`. */
  person?: Person;
  /** The app a person signed in through (its client_id), for kind `user`. */
  app?: string;
}

export class Access {
  readonly principal: Principal;
  readonly scopes: readonly string[];
  /**
   * The patients `patient/` grants reach (`Patient/x`): a patient's or representative's own patients, or the patient
   * a practitioner's app launched with. Undefined: no `patient/` grant.
   */
  readonly patientContext: readonly string[] | undefined;
  private readonly engineScopes: Set<string>;
  private readonly grants: ResourceGrant[];
  /** Projects whose research data this caller may query (`research/<id>` scopes of a system credential). */
  private readonly researchProjects: Set<string>;

  /** `launchPatient`: the SMART launch context (`Patient/x`) of a person's token, if any. */
  constructor(principal: Principal, scopes: readonly string[], launchPatient?: string) {
    this.principal = principal;
    this.scopes = scopes;
    const person = principal.person;
    // Engine scopes and system grants belong to system credentials; a person's token never carries them.
    this.engineScopes = new Set(person ? [] : scopes.filter((s) => (ENGINE_SCOPES as readonly string[]).includes(s)));
    this.grants = scopes.map(parseResourceScope).filter((g): g is ResourceGrant => g !== undefined && (person ? g.level !== 'system' : g.level === 'system'));
    if (this.engineScopes.has('read')) this.grants.push({ level: 'system', type: '*', interactions: new Set(['r', 's']) });
    this.researchProjects = new Set(person ? [] : scopes.flatMap((s) => RESEARCH_SCOPE.exec(s)?.[1] ?? []));
    if (person && this.grants.some((g) => g.level === 'patient')) {
      const own = person.role === 'patient' || person.role === 'representative' ? person.patients : [];
      this.patientContext = launchPatient ? (own.length === 0 || own.includes(launchPatient) ? [launchPatient] : []) : own;
    } else {
      this.patientContext = undefined;
    }
  }

  /** The signed-in person, if a person (not a system) is calling. */
  get person(): Person | undefined {
    return this.principal.person;
  }

  /**
   * True when `type` is granted only through `patient/` scopes, so that each resource must belong to a patient in
   * `patientContext` (canReachPatients).
   */
  patientLimited(type: string, interaction: Interaction): boolean {
    return !this.grants.some((g) => g.level !== 'patient' && this.grantCovers(g, type, interaction));
  }

  /**
   * True when a resource about `patients` (`Patient/x`; empty for resources outside the patient compartment) is
   * within the caller's grants for `interaction`: always for system and `user/` grants, else only within the
   * patient context.
   */
  canReachPatients(type: string, interaction: Interaction, patients: readonly string[]): boolean {
    if (!this.can(type, interaction)) return false;
    if (!this.patientLimited(type, interaction)) return true;
    const context = this.patientContext ?? [];
    return patients.every((p) => context.includes(p));
  }

  private grantCovers(g: ResourceGrant, type: string, interaction: Interaction): boolean {
    return (g.type === type || (g.type === '*' && !AUDIT_TYPES.has(type))) && g.interactions.has(interaction);
  }

  get isAdmin(): boolean {
    return this.engineScopes.has('admin');
  }

  /** True when the caller may perform `interaction` on resources of `type`. */
  can(type: string, interaction: Interaction): boolean {
    if (this.isAdmin) return true;
    if (AUDIT_TYPES.has(type) && this.engineScopes.has('audit') && (interaction === 'r' || interaction === 's')) return true;
    return this.grants.some((g) => this.grantCovers(g, type, interaction));
  }

  /** True when some grant allows reading something: what a `read` route asks before its handler checks the type. */
  canReadSomething(): boolean {
    return this.isAdmin || this.engineScopes.has('audit') || this.grants.some((g) => g.interactions.has('r') || g.interactions.has('s'));
  }

  /** True when some grant allows creating or updating something: what a `write` route asks before its handler. */
  canWriteSomething(): boolean {
    return this.isAdmin || this.grants.some((g) => g.interactions.has('c') || g.interactions.has('u'));
  }

  /** True for a data steward: an admin, or a system credential with research-admin. */
  get isResearchSteward(): boolean {
    return this.isAdmin || this.engineScopes.has('research-admin');
  }

  /** True when the caller may query project `projectId`'s research data: its researchers and stewards. */
  canResearch(projectId: string): boolean {
    return this.isResearchSteward || this.researchProjects.has(projectId);
  }

  /** True when the route's requirement is met. */
  meets(required: RouteScope): boolean {
    if (this.isAdmin) return true;
    if (required === 'research') return this.isResearchSteward || this.researchProjects.size > 0;
    if (required === 'read') return this.canReadSomething();
    if (required === 'write') return this.canWriteSomething();
    return this.engineScopes.has(required);
  }

  /** Throws ANCHORLINE_ERR_FORBIDDEN unless the caller may perform `interaction` on `type`. */
  require(type: string, interaction: Interaction): void {
    if (!this.can(type, interaction)) {
      const needed = type === 'AuditEvent' && !this.person ? 'the audit scope' : `${this.person ? 'patient/ or user/' : 'system/'}${type}.${interaction}`;
      throw new AnchorlineError('ANCHORLINE_ERR_FORBIDDEN', `this credential lacks ${needed}`);
    }
  }
}

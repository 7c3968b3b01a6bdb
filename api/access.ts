/**
 * What a caller may do: the scopes of its API key or access token, read once per request into an `Access`.
 *
 * Scopes (SMART App Launch v2, system level, plus the engine's own):
 *   system/<Type>.<cruds>   FHIR access to one resource type; the letters, in this order, are create, read, update,
 *                           delete and search. `system/*.rs` is every type. The engine's FHIR API serves reads
 *                           (read, vread, history: `r`) and searches (`s`); c, u and d are accepted and grant nothing
 *                           more, because resources are written only by mapping inbound messages.
 *                           SMART v1 forms are read as their v2 equivalents: `.read` = `.rs`, `.write` = `.cud`,
 *                           `.*` = `.cruds`.
 *   ingest                  post messages (HL7 v2 over HTTP, C-CDA, STOW-RS).
 *   terminology             the unmapped-code worklist (GET /terminology/unmapped): local codes and the displays
 *                           senders gave them, which reading records does not entitle a caller to.
 *   audit                   read the audit trail (AuditEvent). `system/*` does not include AuditEvent: who looked at
 *                           which record is for auditors, not for every reader of records; `system/AuditEvent.rs`
 *                           grants it explicitly.
 *   admin                   everything, including key, client and configuration management.
 *   read                    the earlier API-key scope; the same as `system/*.rs`.
 * Granular v2 scopes with a query (`system/Observation.rs?category=...`) are refused as unknown rather than read as
 * wider than they are.
 */
import { AnchorlineError } from '../errors/index.ts';

/** FHIR interactions a scope can grant, by SMART letter. */
export type Interaction = 'c' | 'r' | 'u' | 'd' | 's';

/** What a route requires before its handler runs. `read`: some FHIR read permission; the handler checks the type. */
export type RouteScope = 'ingest' | 'admin' | 'audit' | 'terminology' | 'read';

const ENGINE_SCOPES = ['ingest', 'admin', 'audit', 'terminology', 'read'] as const;
const RESOURCE_SCOPE = /^system\/(\*|[A-Z][A-Za-z]{1,63})\.(c?r?u?d?s?|read|write|\*)$/;
const V1_PERMISSIONS: Record<string, string> = { read: 'rs', write: 'cud', '*': 'cruds' };
/** Types only an explicit grant (or audit/admin) reaches; `system/*` stops short of them. */
const AUDIT_TYPES = new Set(['AuditEvent']);

interface ResourceGrant {
  type: string;
  interactions: Set<Interaction>;
}

/** True for a scope this engine understands. */
export function isKnownScope(scope: string): boolean {
  return (ENGINE_SCOPES as readonly string[]).includes(scope) || parseResourceScope(scope) !== undefined;
}

function parseResourceScope(scope: string): ResourceGrant | undefined {
  const match = RESOURCE_SCOPE.exec(scope);
  if (!match || match[2] === '') return undefined;
  const letters = V1_PERMISSIONS[match[2]!] ?? match[2]!;
  return { type: match[1]!, interactions: new Set(letters.split('') as Interaction[]) };
}

/** Splits an OAuth `scope` parameter (space-separated) and checks every entry; unknown scopes are an error. */
export function parseScopeList(value: string | readonly string[]): string[] {
  const scopes = (typeof value === 'string' ? value.split(/\s+/) : [...value]).filter((s) => s !== '');
  const unknown = scopes.filter((s) => !isKnownScope(s));
  if (unknown.length > 0) {
    throw new AnchorlineError('ANCHORLINE_ERR_INVALID_REQUEST', `unknown scope ${unknown.map((s) => JSON.stringify(s)).join(', ')}: use system/<Type>.<cruds>, ingest, audit, terminology or admin`);
  }
  return [...new Set(scopes)];
}

/** The principal behind a request. */
export interface Principal {
  kind: 'api-key' | 'oauth-client';
  /** The key's numeric id or the client's client_id. */
  id: string;
  name: string;
  /** The configured source this credential is bound to; absent: not bound to one. */
  source?: string;
}

export class Access {
  readonly principal: Principal;
  readonly scopes: readonly string[];
  private readonly engineScopes: Set<string>;
  private readonly grants: ResourceGrant[];

  constructor(principal: Principal, scopes: readonly string[]) {
    this.principal = principal;
    this.scopes = scopes;
    this.engineScopes = new Set(scopes.filter((s) => (ENGINE_SCOPES as readonly string[]).includes(s)));
    this.grants = scopes.map(parseResourceScope).filter((g): g is ResourceGrant => g !== undefined);
    if (this.engineScopes.has('read')) this.grants.push({ type: '*', interactions: new Set(['r', 's']) });
  }

  get isAdmin(): boolean {
    return this.engineScopes.has('admin');
  }

  /** True when the caller may perform `interaction` on resources of `type`. */
  can(type: string, interaction: Interaction): boolean {
    if (this.isAdmin) return true;
    if (AUDIT_TYPES.has(type) && this.engineScopes.has('audit') && (interaction === 'r' || interaction === 's')) return true;
    return this.grants.some((g) => (g.type === type || (g.type === '*' && !AUDIT_TYPES.has(type))) && g.interactions.has(interaction));
  }

  /** True when some grant allows reading something: what a `read` route asks before its handler checks the type. */
  canReadSomething(): boolean {
    return this.isAdmin || this.engineScopes.has('audit') || this.grants.some((g) => g.interactions.has('r') || g.interactions.has('s'));
  }

  /** True when the route's requirement is met. */
  meets(required: RouteScope): boolean {
    if (this.isAdmin) return true;
    if (required === 'read') return this.canReadSomething();
    return this.engineScopes.has(required);
  }

  /** Throws ANCHORLINE_ERR_FORBIDDEN unless the caller may perform `interaction` on `type`. */
  require(type: string, interaction: Interaction): void {
    if (!this.can(type, interaction)) {
      const needed = type === 'AuditEvent' ? 'the audit scope' : `system/${type}.${interaction}`;
      throw new AnchorlineError('ANCHORLINE_ERR_FORBIDDEN', `this credential lacks ${needed}`);
    }
  }
}

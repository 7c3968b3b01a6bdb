/**
 * Consent enforcement: what a person may see of the records the scopes already let through. Every read path that
 * can disclose patient data to a person (FHIR read, vread, history, search with _include and _revinclude,
 * $everything, $document, WADO-RS, proof bundles) passes what it found through `ConsentGate.filter` and returns only
 * what was permitted; the decisions go into the read's AuditEvent (store/audit-trail.ts ReadAuthorization).
 *
 * Who is subject to it: people signed in through SMART (api/access.ts `Person`). System credentials (API keys,
 * client-credentials tokens) act for the engine's operators and the interfaces they run; their reach is their scopes.
 *
 * The decision for one resource:
 *  1. Outside every patient's compartment (Practitioner, Organization, Medication): not patient data; scopes decide.
 *  2. The patient's own record, or a represented patient's: permitted (the patient needs no consent to see it).
 *     The audit trail about one's own patients is readable this way, and only this way: a patient sees who looked.
 *  3. Otherwise the patient's active consents decide (consent/decide.ts), and without one that applies, the policy
 *     default (config consent.default: opt-in denies, opt-out permits).
 *  4. Denied, but the person broke the glass (purpose ETREAT or BTG, a reason given, a role allowed to): permitted,
 *     and the AuditEvent is labelled BTG for review.
 * A resource about several patients (a document) needs every one of them to permit.
 *
 * Withheld resources are not revealed: a read answers 404 as if the record did not exist, a search leaves them out
 * of its page and of its total, and no count of what was withheld is ever given to a person.
 */
import type { FastifyRequest } from 'fastify';
import { AnchorlineError } from '../errors/index.ts';
import { decide } from '../consent/decide.ts';
import { DEFAULT_SENSITIVITY_RULES, resourceFacts } from '../consent/labels.ts';
import type { ConsentResource, DefaultPolicy, Requester, SensitivityRule } from '../consent/types.ts';
import { auditTrail, compartment, type StoredResource } from '../store/index.ts';
import type { Access, Interaction, Person } from './access.ts';

/** The consents of one patient (`Patient/x`), active or not; the gate reads through a cache (store/consents.ts). */
export interface ConsentSource {
  consentsOf(patient: string): Promise<readonly ConsentResource[]>;
}

export interface ConsentGateOptions {
  /** Enforce consent on people's reads. Default true; off only to measure what enforcement costs. */
  enabled: boolean;
  /** What applies when no consent does (config consent.default). */
  defaultPolicy: DefaultPolicy;
  /** Roles (Person.roles) that may break the glass (config consent.breakGlassRoles). */
  breakGlassRoles: readonly string[];
  /** Label rules added to the engine's own (config consent.sensitivityRules). Default none. */
  sensitivityRules?: readonly SensitivityRule[];
}

/**
 * v3 PurposeOfUse codes a request may state (HL7 v3 ActReason, the _PurposeOfUse branch): the ones consents in this
 * field are written with. Anything else is refused rather than read as some purpose it is not.
 */
const PURPOSES = new Set([
  'TREAT', 'ETREAT', 'BTG', 'CAREMGT', 'CLINTRCH', 'HRESCH', 'HPAYMT', 'HOPERAT', 'HSYSADMIN', 'PATRQT', 'FAMRQT', 'PWATRNY', 'SUPNWK', 'PUBHLTH', 'HLEGAL', 'COC', 'POPHLTH',
]);
/** Purposes that are an emergency override and need a reason and an allowed role. */
const BREAK_GLASS_PURPOSES = new Set(['ETREAT', 'BTG']);
const MAX_REASON = 500;

/** The purpose a person reads under when the request names none. */
function defaultPurpose(person: Person): string {
  switch (person.role) {
    case 'patient': return 'PATRQT';
    case 'representative': return 'PWATRNY';
    case 'registration': return 'HOPERAT';
    case 'practitioner': return 'TREAT';
  }
}

/** One person's request, as the gate decides it. */
export interface GateContext {
  access: Access;
  person: Person;
  requester: Requester;
  /** Set when the person broke the glass on this request. */
  breakGlass?: { reason: string };
}

/** What a filter let through, and why, for the read's AuditEvent. */
export interface GateResult {
  allowed: StoredResource[];
  authorization: auditTrail.ReadAuthorization | undefined;
}

export class ConsentGate {
  private readonly source: ConsentSource;
  private readonly options: ConsentGateOptions;
  private readonly rules: readonly SensitivityRule[];

  constructor(source: ConsentSource, options: ConsentGateOptions) {
    this.source = source;
    this.options = options;
    this.rules = [...DEFAULT_SENSITIVITY_RULES, ...(options.sensitivityRules ?? [])];
  }

  /**
   * The person behind a request, their purpose of use (header `X-Purpose-Of-Use`, a v3 PurposeOfUse code) and any
   * break-the-glass (purpose ETREAT or BTG with header `X-Break-Glass-Reason`); undefined for a system caller.
   * Throws for a purpose it does not know, an override without a reason, or one by a role not allowed to.
   */
  context(request: FastifyRequest, access: Access): GateContext | undefined {
    const person = access.person;
    if (!person) return undefined;
    const stated = headerValue(request, 'x-purpose-of-use');
    const purpose = stated ?? defaultPurpose(person);
    if (!PURPOSES.has(purpose)) {
      throw new AnchorlineError('ANCHORLINE_ERR_INVALID_REQUEST', `X-Purpose-Of-Use ${JSON.stringify(purpose.slice(0, 32))} is not a v3 PurposeOfUse code this engine knows (e.g. TREAT, ETREAT, HPAYMT, HRESCH)`, { location: 'X-Purpose-Of-Use' });
    }
    const requester: Requester = {
      fhirUser: person.fhirUser,
      ...(person.organization ? { organization: person.organization } : {}),
      memberOf: person.memberOf,
      roles: person.roles,
      purpose,
    };
    const context: GateContext = { access, person, requester };
    const reason = headerValue(request, 'x-break-glass-reason')?.trim();
    if (BREAK_GLASS_PURPOSES.has(purpose)) {
      if (!reason) throw new AnchorlineError('ANCHORLINE_ERR_BREAK_GLASS_REASON', 'breaking the glass (purpose ETREAT or BTG) needs a reason in X-Break-Glass-Reason', { location: 'X-Break-Glass-Reason' });
      if (reason.length > MAX_REASON) throw new AnchorlineError('ANCHORLINE_ERR_INVALID_REQUEST', `X-Break-Glass-Reason may be at most ${MAX_REASON} characters`, { location: 'X-Break-Glass-Reason' });
      if (!person.roles.some((role) => this.options.breakGlassRoles.includes(role))) {
        throw new AnchorlineError('ANCHORLINE_ERR_BREAK_GLASS_FORBIDDEN', `no role of this user may break the glass (consent.breakGlassRoles: ${this.options.breakGlassRoles.join(', ') || 'none'})`);
      }
      context.breakGlass = { reason };
    } else if (reason) {
      throw new AnchorlineError('ANCHORLINE_ERR_INVALID_REQUEST', 'X-Break-Glass-Reason is only read with X-Purpose-Of-Use ETREAT or BTG', { location: 'X-Break-Glass-Reason' });
    }
    return context;
  }

  /**
   * The resources of `found` the person may see, in their order, and what authorised them. Without a context (a
   * system caller) everything passes and nothing is recorded about consent.
   */
  async filter(context: GateContext | undefined, found: readonly StoredResource[], interaction: Interaction = 'r'): Promise<GateResult> {
    if (!context) return { allowed: [...found], authorization: undefined };
    const authorization: auditTrail.ReadAuthorization = { consents: [], byDefault: false, ownRecord: false };
    const consents = new Set<string>();
    let brokeGlass = false;
    const allowed: StoredResource[] = [];
    const now = new Date();
    for (const stored of found) {
      const patients = patientsAbout(stored.content);
      if (!context.access.canReachPatients(stored.resourceType, interaction, patients)) continue;
      const verdict = await this.decideOne(context, stored, patients, now);
      if (verdict === 'deny') {
        if (!context.breakGlass || stored.resourceType === auditTrail.AUDIT_EVENT) continue;
        brokeGlass = true;
      } else if (verdict === 'own') {
        authorization.ownRecord = true;
      } else if (verdict === 'default') {
        authorization.byDefault = true;
      } else if (verdict !== 'not-patient-data') {
        for (const each of verdict.consents) consents.add(each);
      }
      allowed.push(stored);
    }
    authorization.consents = [...consents].sort();
    if (brokeGlass && context.breakGlass) authorization.breakGlass = context.breakGlass;
    return { allowed, authorization };
  }

  /** True when the person may see `stored`: `filter` for one resource. */
  async permits(context: GateContext | undefined, stored: StoredResource): Promise<GateResult> {
    return this.filter(context, [stored]);
  }

  private async decideOne(
    context: GateContext,
    stored: StoredResource,
    patients: readonly string[],
    now: Date,
  ): Promise<'deny' | 'own' | 'default' | 'not-patient-data' | { consents: string[] }> {
    if (stored.resourceType === 'Bundle') return this.decideEntries(context, stored, now);
    if (patients.length === 0) return stored.resourceType === auditTrail.AUDIT_EVENT ? 'deny' : 'not-patient-data';
    const own = context.person.patients;
    if (patients.every((p) => own.includes(p))) return 'own';
    // The audit trail of someone else's record is not for a person to read; an auditor reads it with the audit scope.
    if (stored.resourceType === auditTrail.AUDIT_EVENT) return 'deny';
    if (!this.options.enabled) return 'default';
    const facts = resourceFacts(stored.content, this.rules);
    const permitted: string[] = [];
    let byDefault = false;
    for (const patient of patients) {
      const decision = decide(await this.source.consentsOf(patient), context.requester, facts, this.options.defaultPolicy, now);
      if (!decision.permit) return 'deny';
      if (decision.basis === 'consent' && decision.consent) permitted.push(decision.consent);
      else byDefault = true;
    }
    return permitted.length === 0 && byDefault ? 'default' : { consents: permitted };
  }

  /** A stored document Bundle: disclosed whole or not at all, so every entry must be permitted on its own. */
  private async decideEntries(context: GateContext, bundle: StoredResource, now: Date): Promise<'deny' | 'own' | 'default' | 'not-patient-data' | { consents: string[] }> {
    const entries = Array.isArray(bundle.content.entry) ? (bundle.content.entry as Array<{ resource?: unknown } | null>) : [];
    const consents = new Set<string>();
    let own = false;
    let byDefault = false;
    for (const entry of entries) {
      const content = entry?.resource;
      if (!content || typeof content !== 'object') continue;
      const resource = content as Record<string, unknown>;
      const type = typeof resource.resourceType === 'string' ? resource.resourceType : '';
      const patients = patientsAbout(resource);
      if (!context.access.canReachPatients(type, 'r', patients)) return 'deny';
      const verdict = await this.decideOne(context, { ...bundle, resourceType: type, id: String(resource.id ?? ''), content: resource }, patients, now);
      if (verdict === 'deny') return 'deny';
      if (verdict === 'own') own = true;
      else if (verdict === 'default') byDefault = true;
      else if (verdict !== 'not-patient-data') for (const each of verdict.consents) consents.add(each);
    }
    if (consents.size > 0) return { consents: [...consents] };
    return byDefault ? 'default' : own ? 'own' : 'not-patient-data';
  }
}

/**
 * The consent context of one request to a route that may serve people: undefined for a system caller. A person is
 * refused outright when the engine runs without a gate: nothing may reach a person undecided.
 */
export function requestContext(gate: ConsentGate | undefined, request: FastifyRequest, access: Access): GateContext | undefined {
  if (access.person && !gate) throw new AnchorlineError('ANCHORLINE_ERR_FORBIDDEN', 'this engine does not serve records to people (no consent gate)');
  return gate?.context(request, access);
}

/** `gate.filter`, or everything found when there is no gate (then no person got this far: requestContext). */
export function filterThrough(gate: ConsentGate | undefined, context: GateContext | undefined, found: readonly StoredResource[], interaction: Interaction = 'r'): Promise<GateResult> {
  return gate ? gate.filter(context, found, interaction) : Promise.resolve({ allowed: [...found], authorization: undefined });
}

/**
 * The patients a resource discloses something about: itself for a Patient; for an AuditEvent the patients it names
 * (role 1: whose record was touched); for a stored document Bundle the patients of its entries; otherwise the
 * patient of its compartment (store/compartment.ts).
 */
export function patientsAbout(content: Record<string, unknown>): string[] {
  const type = content.resourceType;
  if (type === 'Patient' && typeof content.id === 'string') return [`Patient/${content.id}`];
  if (type === auditTrail.AUDIT_EVENT) {
    const entities = Array.isArray(content.entity) ? (content.entity as Array<Record<string, unknown> | null>) : [];
    return [...new Set(entities.flatMap((e) => {
      const role = (e?.role as { code?: unknown } | undefined)?.code;
      const reference = (e?.what as { reference?: unknown } | undefined)?.reference;
      return role === '1' && typeof reference === 'string' && reference.startsWith('Patient/') ? [reference] : [];
    }))];
  }
  if (type === 'Bundle') return auditTrail.patientsOf(content);
  // A Group (a research cohort, a care list) is about each patient it lists: all of them must permit.
  if (type === 'Group') {
    const members = Array.isArray(content.member) ? (content.member as Array<{ entity?: { reference?: unknown } } | null>) : [];
    return [...new Set(members.flatMap((m) => (typeof m?.entity?.reference === 'string' && m.entity.reference.startsWith('Patient/') ? [m.entity.reference] : [])))];
  }
  const patient = compartment.patientOf(content);
  return patient ? [patient] : [];
}

function headerValue(request: FastifyRequest, name: string): string | undefined {
  const value = request.headers[name];
  if (Array.isArray(value)) {
    if (value.length > 1) throw new AnchorlineError('ANCHORLINE_ERR_INVALID_REQUEST', `${name} may be given once`, { location: name });
    return value[0];
  }
  return value === '' ? undefined : value;
}

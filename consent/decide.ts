/**
 * The consent decision: may this requester read this resource of this patient, under the patient's consents?
 *
 * FHIR R4 Consent semantics, for consents of scope patient-privacy (the others, adr, research and treatment, are kept
 * as records and decide nothing here):
 * - A consent takes part when its status is `active` and its provision.period, if any, covers `now`.
 * - Its provision is a rule: `type` permit or deny for what its criteria describe. A provision applies when every
 *   criterion it gives matches (actor, action, period, class, code, securityLabel, purpose, dataPeriod, data); a
 *   criterion it does not give matches anything. Nested provisions are exceptions to the one they sit in and apply
 *   only where it applies; the deepest applicable provision decides, a nested one without a type taking its
 *   parent's. Two applicable provisions at the same depth that disagree: deny.
 * - Across consents deny overrides permit. When no consent's provision applies, the policy default decides (opt-in:
 *   deny, opt-out: permit) with basis 'default'.
 *
 * Matching:
 * - actor: the reference equals the requester's fhirUser, organization or one of memberOf. R4 requires actor.role
 *   too; it describes the capacity the actor is named in and is kept, not matched, since a requester's role in the
 *   request is not something a consent's role code can be compared with.
 * - class: resource types (system http://hl7.org/fhir/resource-types, or none).
 * - code: any of the resource's codes or labels, `system|code` (a coding without a system matches the code alone).
 * - securityLabel: covers a label of the resource (consent/codes.ts labelCovers: the same code, a kind of it, or a
 *   higher confidentiality).
 * - purpose: the request's purpose is the provision's or a kind of it (v3 PurposeOfUse: TREAT covers ETREAT and BTG).
 * - action: one of access, use or disclose (what reading a record is); a provision only about collect or correct
 *   says nothing about reading.
 * - dataPeriod: the resource's time falls in it. A resource whose time is not known matches a deny's dataPeriod and
 *   not a permit's: an unknown date must not open what a patient closed, nor widen what they opened.
 * - data: the resource is the one referenced (meaning instance, related or dependents; authoredby cannot be judged
 *   from one resource and is treated like an unknown date).
 * Dates without a time zone are read as UTC, and a date stands for all of its day, month or year: a provision that
 * ends `2025-12-31` holds until the end of that day.
 *
 * Pure: no I/O, no clock (`now` is given). Compiled forms of consents are remembered per object, so a cache that
 * hands out the same objects (store/consents.ts) pays the preparation once per consent version.
 */
import { ACT_CODE, CONFIDENTIALITY, CONFIDENTIALITY_INFO_TYPES, CONSENT_SCOPE, RESOURCE_TYPES, labelCovers, purposeCovers, token } from './codes.ts';
import type { ConsentCodeableConcept, ConsentCoding, ConsentPeriod, ConsentProvision, ConsentResource, Decision, DefaultPolicy, Requester, ResourceFacts } from './types.ts';

/** What reading a record is, in consentaction codes. */
const READ_ACTIONS: ReadonlySet<string> = new Set(['access', 'use', 'disclose']);

interface Interval {
  start: number;
  end: number;
}

/** A provision with its criteria prepared for matching. */
interface CompiledProvision {
  path: string;
  type: 'permit' | 'deny' | undefined;
  period: Interval | undefined;
  actors: ReadonlySet<string> | undefined;
  actions: ReadonlySet<string> | undefined;
  classes: ReadonlySet<string> | undefined;
  codes: readonly ConsentCoding[] | undefined;
  labels: readonly string[] | undefined;
  purposes: readonly string[] | undefined;
  dataPeriod: Interval | undefined;
  data: ReadonlyArray<{ meaning: string; reference: string }> | undefined;
  nested: readonly CompiledProvision[];
}

interface CompiledConsent {
  /** `Consent/x/_history/v`. */
  version: string;
  enforced: boolean;
  period: Interval | undefined;
  root: CompiledProvision | undefined;
}

const compiled = new WeakMap<ConsentResource, CompiledConsent>();

/** Decides whether `requester` may read `resource` of a patient whose consents are `consents`. */
export function decide(consents: readonly ConsentResource[], requester: Requester, resource: ResourceFacts, policy: DefaultPolicy, now: Date): Decision {
  const at = now.getTime();
  const actors = new Set<string>([requester.fhirUser, ...(requester.organization ? [requester.organization] : []), ...requester.memberOf]);
  const request: Request = { actors, purpose: requester.purpose, resource, reference: `${resource.resourceType}/${resource.id}`, at };
  let permit: Decision | undefined;
  for (const consent of consents) {
    const prepared = compile(consent);
    if (!prepared.enforced || !prepared.root || !covers(prepared.period, at)) continue;
    const outcome = evaluate(prepared.root, undefined, request, 0);
    if (outcome === undefined || outcome.type === undefined) continue;
    const decision: Decision = { permit: outcome.type === 'permit', basis: 'consent', consent: prepared.version, provision: outcome.path };
    // Deny overrides permit: the first deny found decides; a permit waits for the rest.
    if (!decision.permit) return decision;
    permit ??= decision;
  }
  return permit ?? { permit: policy === 'opt-out', basis: 'default' };
}

/** True for a consent decide() enforces: active, patient-privacy, with a provision. */
export function isEnforced(consent: ConsentResource): boolean {
  return consent.status === 'active' && isPatientPrivacy(consent.scope) && consent.provision !== undefined;
}

function isPatientPrivacy(scope: ConsentCodeableConcept | undefined): boolean {
  return (scope?.coding ?? []).some((c) => c.code === 'patient-privacy' && (c.system === undefined || c.system === CONSENT_SCOPE));
}

interface Request {
  actors: ReadonlySet<string>;
  purpose: string;
  resource: ResourceFacts;
  reference: string;
  at: number;
}

interface Outcome {
  type: 'permit' | 'deny' | undefined;
  depth: number;
  path: string;
}

/** The deepest applicable provision under `provision` (itself included), or undefined when it does not apply. */
function evaluate(provision: CompiledProvision, inherited: 'permit' | 'deny' | undefined, request: Request, depth: number): Outcome | undefined {
  const type = provision.type ?? inherited;
  if (!applies(provision, type, request)) return undefined;
  let best: Outcome = { type, depth, path: provision.path };
  for (const nested of provision.nested) {
    const outcome = evaluate(nested, type, request, depth + 1);
    if (outcome === undefined) continue;
    if (outcome.depth > best.depth || (outcome.depth === best.depth && outcome.type === 'deny' && best.type !== 'deny')) best = outcome;
  }
  return best;
}

function applies(p: CompiledProvision, type: 'permit' | 'deny' | undefined, request: Request): boolean {
  const { resource } = request;
  if (p.period && !covers(p.period, request.at)) return false;
  if (p.actors && ![...p.actors].some((a) => request.actors.has(a))) return false;
  if (p.actions && ![...p.actions].some((a) => READ_ACTIONS.has(a))) return false;
  if (p.classes && !p.classes.has(resource.resourceType)) return false;
  if (p.purposes && !p.purposes.some((purpose) => purposeCovers(purpose, request.purpose))) return false;
  if (p.labels && !p.labels.some((covering) => resource.labels.some((label) => labelCovers(covering, label)))) return false;
  if (p.codes && !p.codes.some((coding) => codingMatches(coding, resource))) return false;
  // Unknowable from the facts: a deny applies, a permit does not (see the header).
  if (p.dataPeriod && !(resource.when === undefined ? type === 'deny' : covers(p.dataPeriod, resource.when.getTime()))) return false;
  if (p.data && !p.data.some((d) => (d.meaning === 'authoredby' ? type === 'deny' : d.reference === request.reference))) return false;
  return true;
}

function codingMatches(coding: ConsentCoding, resource: ResourceFacts): boolean {
  if (!coding.code) return false;
  if (coding.system === undefined) {
    const suffix = `|${coding.code}`;
    return resource.codes.some((c) => c.endsWith(suffix)) || resource.labels.some((c) => c.endsWith(suffix));
  }
  const wanted = token(coding.system, coding.code);
  return resource.codes.includes(wanted) || resource.labels.some((label) => labelCovers(wanted, label));
}

function covers(interval: Interval | undefined, at: number): boolean {
  return interval === undefined || (at >= interval.start && at < interval.end);
}

function compile(consent: ConsentResource): CompiledConsent {
  const known = compiled.get(consent);
  if (known) return known;
  const root = consent.provision ? compileProvision(consent.provision, 'Consent.provision') : undefined;
  const prepared: CompiledConsent = {
    version: `Consent/${consent.id}/_history/${consent.meta?.versionId ?? '1'}`,
    enforced: isEnforced(consent),
    period: root?.period,
    // The root's own period is checked once per consent, not again as a criterion.
    root: root ? { ...root, period: undefined } : undefined,
  };
  compiled.set(consent, prepared);
  return prepared;
}

function compileProvision(p: ConsentProvision, path: string): CompiledProvision {
  const list = <T>(value: T[] | undefined): T[] | undefined => (Array.isArray(value) && value.length > 0 ? value : undefined);
  const actors = list(p.actor)?.flatMap((a) => (typeof a?.reference?.reference === 'string' ? [a.reference.reference] : []));
  const actions = list(p.action)?.flatMap((a) => (a?.coding ?? []).flatMap((c) => (c.code ? [c.code] : [])));
  const classes = list(p.class)?.flatMap((c) => (c.code && (c.system === undefined || c.system === RESOURCE_TYPES) ? [c.code] : []));
  const purposes = list(p.purpose)?.flatMap((c) => (c.code ? [c.code] : []));
  const labels = list(p.securityLabel)?.flatMap((c) => (c.code ? [normalisedLabel(c.system, c.code)] : []));
  const codes = list(p.code)?.flatMap((concept) => concept?.coding ?? []);
  const data = list(p.data)?.flatMap((d) => (typeof d?.reference?.reference === 'string' ? [{ meaning: d.meaning ?? 'instance', reference: d.reference.reference }] : []));
  return {
    path,
    type: p.type === 'permit' || p.type === 'deny' ? p.type : undefined,
    period: p.period ? interval(p.period) : undefined,
    // A criterion given with nothing usable in it (an actor without a reference) matches nothing, not everything.
    actors: actors ? new Set(actors) : undefined,
    actions: actions ? new Set(actions) : undefined,
    classes: classes ? new Set(classes) : undefined,
    codes,
    labels,
    purposes,
    dataPeriod: p.dataPeriod ? interval(p.dataPeriod) : undefined,
    data,
    nested: (Array.isArray(p.provision) ? p.provision : []).map((child, i) => compileProvision(child, `${path}.provision[${i}]`)),
  };
}

/** A label as resource facts hold it: the retired v3-Confidentiality information types as their ActCode codes. */
export function normalisedLabel(system: string | undefined, code: string): string {
  if (system === CONFIDENTIALITY && CONFIDENTIALITY_INFO_TYPES.has(code)) return token(ACT_CODE, code);
  return token(system, code);
}

/** A Period as [start, end) in ms; a missing bound is open, and a date covers all of its day, month or year. */
function interval(period: ConsentPeriod): Interval {
  const start = period.start ? instantOf(period.start, false) : undefined;
  const end = period.end ? instantOf(period.end, true) : undefined;
  return { start: start ?? Number.NEGATIVE_INFINITY, end: end ?? Number.POSITIVE_INFINITY };
}

/**
 * A FHIR date or dateTime as ms: its start, or (`end`) the start of the next unit of its precision. NaN (which no
 * comparison passes) for a value that is neither; consent/validate.ts refuses those before they are stored.
 */
export function instantOf(value: string, end: boolean): number {
  const date = /^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$/.exec(value);
  if (date) {
    const year = Number(date[1]);
    const month = date[2] === undefined ? undefined : Number(date[2]) - 1;
    const day = date[3] === undefined ? undefined : Number(date[3]);
    if (!end) return Date.UTC(year, month ?? 0, day ?? 1);
    if (month === undefined) return Date.UTC(year + 1, 0, 1);
    if (day === undefined) return Date.UTC(year, month + 1, 1);
    return Date.UTC(year, month, day + 1);
  }
  const withZone = /(Z|[+-]\d{2}:\d{2})$/.test(value) ? value : `${value}Z`;
  const ms = Date.parse(withZone);
  // An instant given to the second: the end bound covers that whole second.
  return end && Number.isFinite(ms) && !/\.\d+/.test(value) ? ms + 1000 : ms;
}

/**
 * The engine's FHIR write routes: Consent, the one resource that is written through the API rather than mapped from
 * an inbound message, since the patient (or someone for them) makes it here.
 *
 *   POST /fhir/Consent        create (the engine assigns the id; an id in the body is ignored, as FHIR says)
 *   PUT  /fhir/Consent/{id}   update, or create with that id; `If-Match: W/"<version>"` makes it conditional (412
 *                             when the current version is another). Revocation is an update with status `inactive`:
 *                             the consent's history keeps what it was. There is no DELETE: a consent that stopped
 *                             applying is a fact about the record, not something to erase.
 *
 * Both answer with the stored version (201 created, 200 updated), its ETag and Location; with no body for a caller
 * without read access to Consents or asking `Prefer: return=minimal`.
 *
 * The body is application/fhir+json (or application/json), at most MAX_CONSENT_BYTES, read as strict JSON (no repeated
 * member, no lone surrogate: what its leaf hashes must have one reading). It must be valid FHIR R4 (the base
 * StructureDefinitions, mappers/fhir-validate.ts) and a Consent the engine can enforce (consent/validate.ts); every
 * problem is one issue of the 422 OperationOutcome.
 *
 * Who may write (authorizeConsentWrite):
 * - an admin credential, or a system credential with system/Consent.c (POST, PUT of a new id) or .u (PUT);
 * - a person with patient/Consent.c/.u or user/Consent.c/.u, by role: a patient for their own patients
 *   (Person.patients), a representative for the patients they represent when the Consent's performer names them
 *   (their RelatedPerson), registration staff for any patient; practitioners may not: a consent is the patient's
 *   decision about practitioners. `patient/` grants reach only the patients in the token's context.
 *
 * A write is one transaction (store/consents.ts writeConsent): the version with its history and search index, the
 * request body as a done inbox message (protocol fhir-rest) that the version's leaf names, the leaf, and a BALP
 * Create/Update AuditEvent with its own leaf; the consent channel is notified in it, so every process's consent cache
 * drops the patient's consents when it commits.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type pg from 'pg';
import { AnchorlineError, operationOutcome } from '../errors/index.ts';
import { parseStrictJson } from '../anchor/index.ts';
import { validateFhirResource } from '../mappers/index.ts';
import { registeredActorReferences, validateConsent, type ConsentIssue } from '../consent/validate.ts';
import { consents, users, withTransaction, type StoredResource } from '../store/index.ts';
import type { Access, Interaction } from './access.ts';
import { auditActor, FHIR_JSON } from './fhir.ts';

/** Largest Consent body accepted, in bytes: room for a scanned form inline (sourceAttachment.data). */
export const MAX_CONSENT_BYTES = 1024 * 1024;
const JSON_MEDIA_TYPES = ['application/fhir+json', 'application/json'];
const ID_PATTERN = /^[A-Za-z0-9\-.]{1,64}$/;

export interface FhirWriteOptions {
  pool: pg.Pool;
  /** This process's consent cache, told at once after a write commits (the NOTIFY reaches it a moment later). */
  consentCache?: { invalidate(patient: string): void };
}

const WRITE_SCHEMA = {
  tags: ['fhir'],
  consumes: JSON_MEDIA_TYPES,
};

export function registerFhirWriteRoutes(app: FastifyInstance, options: FhirWriteOptions): void {
  void app.register(async (scope) => {
    // The body's bytes are the written version's source: they are kept as sent and parsed here, not by fastify.
    scope.removeContentTypeParser(['application/json']);
    scope.addContentTypeParser(JSON_MEDIA_TYPES, { parseAs: 'buffer', bodyLimit: MAX_CONSENT_BYTES }, (_request, body, done) => done(null, body));

    scope.post('/fhir/Consent', {
      config: { scope: 'write' },
      bodyLimit: MAX_CONSENT_BYTES,
      schema: { ...WRITE_SCHEMA, summary: 'Create a Consent', description: 'The engine assigns the id. Answers 201 with the stored version. See README "Consent" for who may write.' },
    }, async (request, reply) => handleWrite(options, request, reply, 'create', undefined));

    scope.put<{ Params: { id: string } }>('/fhir/Consent/:id', {
      config: { scope: 'write' },
      bodyLimit: MAX_CONSENT_BYTES,
      schema: { ...WRITE_SCHEMA, summary: 'Update (or create) a Consent', description: 'Revoke with status inactive. If-Match: W/"<version>" makes the update conditional (412 otherwise).' },
    }, async (request, reply) => {
      if (!ID_PATTERN.test(request.params.id)) throw new AnchorlineError('ANCHORLINE_ERR_INVALID_REQUEST', 'resource id is not a valid FHIR id');
      return handleWrite(options, request, reply, 'update', request.params.id);
    });
  });
}

async function handleWrite(options: FhirWriteOptions, request: FastifyRequest, reply: FastifyReply, interaction: 'create' | 'update', urlId: string | undefined): Promise<FastifyReply> {
  const access = request.access;
  if (!access) throw new AnchorlineError('ANCHORLINE_ERR_UNAUTHORIZED');
  const raw = request.body;
  if (!Buffer.isBuffer(raw) || raw.length === 0) {
    throw new AnchorlineError('ANCHORLINE_ERR_UNSUPPORTED_MEDIA_TYPE', `send the Consent as the body with Content-Type ${JSON_MEDIA_TYPES.join(' or ')}`);
  }
  const resource = parseBody(raw);
  if (interaction === 'update' && resource.id !== urlId) {
    throw new AnchorlineError('ANCHORLINE_ERR_INVALID_REQUEST', 'the body\'s id must be the id in the URL', { location: 'Consent.id' });
  }
  const content: Record<string, unknown> = { ...resource, id: interaction === 'create' ? consents.newConsentId() : urlId! };
  const expectedVersion = ifMatchVersion(request.headers['if-match']);
  // Who it is about is read first, and the writer authorised for that patient, before anything else of the body is
  // judged: a caller who may not write for the patient learns nothing from the validation.
  const patient = patientOf(content);
  authorizeConsentWrite(access, content, interaction === 'create' ? 'c' : 'u');
  const issues: ConsentIssue[] = validateConsent(content);
  const structure = validateFhirResource(content);
  const errors = issues.filter((issue) => issue.severity === 'error');
  if (errors.length > 0 || structure.length > 0) return sendInvalid(reply, errors, structure);
  // Every clinician and organisation a consent names must be one the engine knows (a user account, or a stored
  // resource): a permission for a mistyped id would silently permit nobody, a deny would silently deny nobody.
  const actors = registeredActorReferences(content);
  const known = await users.knownActors(options.pool, actors.map((a) => a.reference));
  const unknown = actors.filter((a) => !known.has(a.reference));
  if (unknown.length > 0) {
    return sendInvalid(reply, unknown.map((a) => ({ severity: 'error', code: 'CONSENT_ACTOR_UNKNOWN', location: a.location, detail: `${a.reference} is not a registered clinician or organisation (no user account names it and no such resource is stored)` })), []);
  }

  const written = await withTransaction(options.pool, (client) =>
    consents.writeConsent(client, {
      content,
      interaction,
      ...(expectedVersion === undefined ? {} : { expectedVersion }),
      raw,
      actor: auditActor(request),
      // A PUT of a new id creates: it needs the create grant, checked once the store has found the id absent (the
      // transaction rolls back if it is missing).
      ...(interaction === 'update' ? { onCreate: () => authorizeConsentWrite(access, content, 'c') } : {}),
    }),
  );
  options.consentCache?.invalidate(patient);
  // The stored version goes back only to a caller who may read Consents and has not asked for less (Prefer:
  // return=minimal, FHIR's way); a write-only credential gets the Location and ETag alone.
  const minimal = !access.can('Consent', 'r') || /return=minimal/.test(String(request.headers.prefer ?? ''));
  return sendWritten(reply, written.stored, written.created, minimal);
}

/**
 * Throws unless the caller may write this Consent (see the header): the scope for `interaction` on Consent, and for
 * a person, the patient within their reach and a role that may write for that patient.
 */
export function authorizeConsentWrite(access: Access, consent: Record<string, unknown>, interaction: Extract<Interaction, 'c' | 'u'>): void {
  access.require('Consent', interaction);
  const person = access.person;
  if (!person) return;
  const patient = patientOf(consent);
  if (!access.canReachPatients('Consent', interaction, [patient])) {
    throw new AnchorlineError('ANCHORLINE_ERR_CONSENT_WRITE_FORBIDDEN', 'the Consent\'s patient is not among the patients this token may act for');
  }
  switch (person.role) {
    case 'patient':
      if (!person.patients.includes(patient)) throw new AnchorlineError('ANCHORLINE_ERR_CONSENT_WRITE_FORBIDDEN', 'a patient may write consents only for their own records');
      return;
    case 'representative': {
      if (!person.patients.includes(patient)) throw new AnchorlineError('ANCHORLINE_ERR_CONSENT_WRITE_FORBIDDEN', 'a representative may write consents only for the patients they represent');
      const performers = Array.isArray(consent.performer) ? (consent.performer as Array<{ reference?: unknown } | null>) : [];
      if (!person.fhirUser.startsWith('RelatedPerson/') || !performers.some((p) => p?.reference === person.fhirUser)) {
        throw new AnchorlineError('ANCHORLINE_ERR_CONSENT_WRITE_FORBIDDEN', 'a representative\'s consent must name them (their RelatedPerson) as performer', { location: 'Consent.performer' });
      }
      return;
    }
    case 'registration':
      return;
    case 'practitioner':
      throw new AnchorlineError('ANCHORLINE_ERR_CONSENT_WRITE_FORBIDDEN', 'practitioners may not write consents: a consent is the patient\'s decision');
    default:
      throw new AnchorlineError('ANCHORLINE_ERR_CONSENT_WRITE_FORBIDDEN', 'this user\'s role may not write consents');
  }
}

/**
 * A request body read as the one value it must mean: strict UTF-8, strict JSON (no repeated member, no lone
 * surrogate: what a leaf hashes must have one reading). Used by every route that writes what a body says.
 */
export function parseStrictJsonBody(raw: Buffer): unknown {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(raw);
  } catch {
    throw new AnchorlineError('ANCHORLINE_ERR_INVALID_REQUEST', 'the body is not UTF-8');
  }
  try {
    return parseStrictJson(text);
  } catch (error) {
    // The parser's message names the rule and a position, never a value.
    throw new AnchorlineError('ANCHORLINE_ERR_INVALID_REQUEST', `the body is not strict JSON: ${(error as Error).message}`);
  }
}

function parseBody(raw: Buffer): Record<string, unknown> {
  const value = parseStrictJsonBody(raw);
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new AnchorlineError('ANCHORLINE_ERR_CONSENT_INVALID', 'the body is not a JSON object');
  const resource = value as Record<string, unknown>;
  if (resource.resourceType !== 'Consent') throw new AnchorlineError('ANCHORLINE_ERR_CONSENT_INVALID', 'resourceType must be Consent: this route writes Consents only', { location: 'resourceType' });
  return resource;
}

function patientOf(consent: Record<string, unknown>): string {
  const reference = (consent.patient as { reference?: unknown } | undefined)?.reference;
  if (typeof reference !== 'string' || !/^Patient\/[A-Za-z0-9\-.]{1,64}$/.test(reference)) {
    throw new AnchorlineError('ANCHORLINE_ERR_CONSENT_INVALID', 'patient must be a reference Patient/<id>', { location: 'Consent.patient' });
  }
  return reference;
}

/** If-Match `W/"3"` (or `"3"`) as 3; undefined without the header. */
export function ifMatchVersion(header: string | string[] | undefined): number | undefined {
  if (header === undefined) return undefined;
  const value = Array.isArray(header) ? header.join(',') : header;
  const match = /^\s*(?:W\/)?"([1-9][0-9]{0,8})"\s*$/.exec(value);
  if (!match) throw new AnchorlineError('ANCHORLINE_ERR_INVALID_REQUEST', 'If-Match must be one version ETag, W/"<version>"', { location: 'If-Match' });
  return Number(match[1]);
}

function sendInvalid(reply: FastifyReply, issues: ConsentIssue[], structure: string[]): FastifyReply {
  const error = new AnchorlineError('ANCHORLINE_ERR_CONSENT_INVALID', `${issues.length + structure.length} problem(s)`);
  const base = operationOutcome(error) as { issue: Array<Record<string, unknown>> };
  const coded = (code: string, text: string, location?: string): Record<string, unknown> => ({
    severity: 'error',
    code: 'business-rule',
    details: { coding: [{ system: 'urn:anchorline:error', code: error.code }, { system: 'urn:anchorline:consent-issue', code }], text },
    ...(location ? { expression: [location] } : {}),
  });
  const outcome = {
    resourceType: 'OperationOutcome',
    issue: [
      ...base.issue,
      ...structure.map((problem) => ({ ...coded('CONSENT_NOT_VALID_FHIR', problem), code: 'structure' })),
      ...issues.map((issue) => coded(issue.code, issue.detail, issue.location)),
    ],
  };
  return reply.status(error.spec.httpStatus).header('content-type', FHIR_JSON).header('x-anchorline-error', error.code).send(outcome);
}

function sendWritten(reply: FastifyReply, stored: StoredResource, created: boolean, minimal: boolean): FastifyReply {
  reply
    .status(created ? 201 : 200)
    .header('etag', `W/"${stored.versionId}"`)
    .header('last-modified', stored.lastUpdated.toUTCString())
    .header('location', `/fhir/Consent/${stored.id}/_history/${stored.versionId}`);
  return minimal ? reply.send() : reply.header('content-type', FHIR_JSON).send(stored.content);
}

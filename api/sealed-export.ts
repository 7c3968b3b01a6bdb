/**
 * Sharing end to end encrypted: POST /fhir/Patient/{id}/$export-sealed.
 *
 * The caller names a recipient's public key (a clinician's, a receiving system's) as a JWK in the body
 * (`{ "key": { ...JWK } }`, application/json): EC P-256 or X25519 (JWE alg ECDH-ES+A256KW) or RSA of 2048 bits or
 * more (RSA-OAEP-256). The answer is a compact JWE (application/jose, enc A256GCM) whose plaintext is the patient's
 * record as a FHIR Bundle of type collection: $everything as the caller may see it, every current resource of the
 * patient's compartment that the caller's scopes and, for a person, consent let through (api/consent-gate.ts), with
 * no paging. Whoever carries the JWE (a mail relay, a portal, a USB stick) learns nothing; only the private key opens
 * it (`anchorline open-sealed`, or any JOSE library).
 *
 * Why the JWE carries a fresh content key and not the patient's data key: the JWE's content is encrypted under a
 * random 256-bit key made for this one export, and only that key is wrapped for the recipient. Wrapping the patient's
 * long-term data key (store/keys.ts) for them instead would hand over everything ever sealed under it, including what
 * consent withholds from them and whatever is written later under that key, for as long as the key lives; and
 * erasure, which destroys the key here, would then depend on the recipient destroying their copy. A per-export key
 * discloses exactly this Bundle, and an erasure still erases everything the engine holds (what was disclosed was
 * disclosed, and is recorded).
 *
 * Each export is a disclosure and is audited before it is answered, like every read (store/audit-trail.ts
 * sealedExportAuditEvent): who asked, under which purpose and consents, every version in the Bundle, and the
 * recipient key's RFC 7638 thumbprint and algorithms, as an AuditEvent anchored like every record. If it cannot be
 * stored, nothing is sent. The AuditEvent's reference is in the answer's X-Anchorline-Audit-Event header.
 */
import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { calculateJwkThumbprint, CompactEncrypt, compactDecrypt, decodeProtectedHeader, importJWK, type JWK } from 'jose';
import type pg from 'pg';
import { stringifyJson } from '../anchor/index.ts';
import { AnchorlineError } from '../errors/index.ts';
import { auditTrail, resources, withTransaction, type StoredResource } from '../store/index.ts';
import { filterThrough, requestContext, type ConsentGate } from './consent-gate.ts';
import { accessOf, auditActor, checkResponse } from './fhir.ts';

export const JOSE_COMPACT = 'application/jose';
const ENC = 'A256GCM';
type KeyAlgorithm = 'ECDH-ES+A256KW' | 'RSA-OAEP-256';
const KEY_ALGORITHMS: KeyAlgorithm[] = ['ECDH-ES+A256KW', 'RSA-OAEP-256'];
const ID_PATTERN = /^[A-Za-z0-9\-.]{1,64}$/;
/** Smallest RSA modulus accepted, in bits (NIST SP 800-131A). */
const MIN_RSA_BITS = 2048;
/** Resources of one patient's compartment read at most for one export; more answer 400 (use Bulk Data $export). */
const MAX_SEALED_EXPORT_RESOURCES = 10_000;
const SCAN_CHUNK = 500;
/** Types an export never holds, as $everything: the audit trail about a record is not part of the record. */
const EXCLUDED_TYPES = new Set(['AuditEvent']);
/** Members of a private or symmetric JWK: a body carrying one has leaked a secret, and is refused, not stored. */
const SECRET_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];

/** The public members of a recipient JWK, and the JWE key management algorithm that fits it. */
export function recipientKey(value: unknown): { jwk: JWK; alg: KeyAlgorithm } {
  const invalid = (why: string): AnchorlineError => new AnchorlineError('ANCHORLINE_ERR_INVALID_REQUEST', `key: ${why}`, { location: 'key' });
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw invalid('the recipient\'s public key is given as a JWK object');
  const given = value as Record<string, unknown>;
  if (SECRET_MEMBERS.some((member) => given[member] !== undefined)) throw invalid('this is a private or secret key; send the recipient\'s public key only');
  if (given.use !== undefined && given.use !== 'enc') throw invalid('the key is not for encryption (use is not "enc")');
  let jwk: JWK;
  let alg: KeyAlgorithm;
  if (given.kty === 'EC' && given.crv === 'P-256' && typeof given.x === 'string' && typeof given.y === 'string') {
    jwk = { kty: 'EC', crv: 'P-256', x: given.x, y: given.y };
    alg = 'ECDH-ES+A256KW';
  } else if (given.kty === 'OKP' && given.crv === 'X25519' && typeof given.x === 'string') {
    jwk = { kty: 'OKP', crv: 'X25519', x: given.x };
    alg = 'ECDH-ES+A256KW';
  } else if (given.kty === 'RSA' && typeof given.n === 'string' && typeof given.e === 'string') {
    if (Buffer.from(given.n, 'base64url').length * 8 < MIN_RSA_BITS) throw invalid(`an RSA key needs at least ${MIN_RSA_BITS} bits`);
    jwk = { kty: 'RSA', n: given.n, e: given.e };
    alg = 'RSA-OAEP-256';
  } else {
    throw invalid('supported are EC P-256 and OKP X25519 (ECDH-ES+A256KW) and RSA (RSA-OAEP-256) public keys');
  }
  if (given.alg !== undefined && given.alg !== alg) throw invalid(`the key names alg ${JSON.stringify(String(given.alg).slice(0, 32))}; this key type is used with ${alg}`);
  return { jwk, alg };
}

/**
 * Encrypts `plaintext` for the recipient as a compact JWE: a fresh A256GCM content key per call (jose makes it),
 * wrapped for the recipient's key. The protected header names the key by its thumbprint (kid), so a recipient with
 * several keys knows which one opens it.
 */
export async function sealForRecipient(plaintext: Uint8Array, recipient: { jwk: JWK; alg: KeyAlgorithm }): Promise<{ jwe: string; thumbprint: string }> {
  const thumbprint = await calculateJwkThumbprint(recipient.jwk, 'sha256');
  let key: Awaited<ReturnType<typeof importJWK>>;
  try {
    key = await importJWK(recipient.jwk, recipient.alg);
  } catch {
    throw new AnchorlineError('ANCHORLINE_ERR_INVALID_REQUEST', 'key: not a valid public key of its type', { location: 'key' });
  }
  const jwe = await new CompactEncrypt(plaintext).setProtectedHeader({ alg: recipient.alg, enc: ENC, cty: 'fhir+json', kid: thumbprint }).encrypt(key);
  return { jwe, thumbprint };
}

/** Opens a sealed export with the recipient's private JWK: the Bundle it holds. Throws when the key does not open it. */
export async function openSealedExport(jwe: string, privateJwk: JWK): Promise<Record<string, unknown>> {
  const header = decodeProtectedHeader(jwe.trim());
  if (typeof header.alg !== 'string' || !(KEY_ALGORITHMS as string[]).includes(header.alg) || header.enc !== ENC) {
    throw new Error(`not a sealed export: alg ${String(header.alg)}, enc ${String(header.enc)}`);
  }
  const key = await importJWK(privateJwk, header.alg);
  const { plaintext } = await compactDecrypt(jwe.trim(), key, { keyManagementAlgorithms: KEY_ALGORITHMS, contentEncryptionAlgorithms: [ENC] });
  try {
    return JSON.parse(Buffer.from(plaintext).toString('utf8')) as Record<string, unknown>;
  } catch {
    // JSON.parse would quote the plaintext, which is patient data.
    throw new Error('the sealed export opened, but does not hold JSON');
  }
}

export function registerSealedExportRoutes(app: FastifyInstance, pool: pg.Pool, gate?: ConsentGate): void {
  app.post<{ Params: { id: string }; Body: { key?: unknown } | null }>('/fhir/Patient/:id/$export-sealed', { config: { scope: 'read' }, bodyLimit: 64 * 1024 }, async (request, reply) => {
    const { id } = request.params;
    if (!ID_PATTERN.test(id)) throw new AnchorlineError('ANCHORLINE_ERR_INVALID_REQUEST', 'resource id is not a valid FHIR id');
    const access = accessOf(request);
    access.require('Patient', 'r');
    const body = request.body;
    const unknown = body !== null && typeof body === 'object' ? Object.keys(body).filter((name) => name !== 'key') : [];
    if (unknown.length > 0) throw new AnchorlineError('ANCHORLINE_ERR_INVALID_REQUEST', `$export-sealed takes no parameter ${unknown[0]} (supported: key)`, { location: unknown[0] });
    const recipient = recipientKey(body?.key);
    // The same checks as every read: a person is served only through the consent gate.
    const context = requestContext(gate, request, access);
    const filter = (found: StoredResource[]) => filterThrough(gate, context, found);
    const notFound = new AnchorlineError('ANCHORLINE_ERR_NOT_FOUND', `Patient/${id} does not exist`);
    const patient = await resources.readCurrent(pool, 'Patient', id);
    if (!patient || patient.deleted || (await filter([patient])).allowed.length === 0) throw notFound;

    const readable: StoredResource[] = [];
    for (let offset = 0; ; offset += SCAN_CHUNK) {
      const batch = await resources.compartmentResources(pool, id, { count: SCAN_CHUNK, offset });
      for (const r of batch) if (access.can(r.resourceType, 'r') && !EXCLUDED_TYPES.has(r.resourceType)) readable.push(r);
      if (batch.length < SCAN_CHUNK) break;
      if (offset + SCAN_CHUNK >= MAX_SEALED_EXPORT_RESOURCES) {
        throw new AnchorlineError('ANCHORLINE_ERR_INVALID_REQUEST', `Patient/${id} has more than ${MAX_SEALED_EXPORT_RESOURCES} resources; export them with Bulk Data $export`);
      }
    }
    const { allowed, authorization } = await filter(readable);
    const base = `${request.protocol}://${request.host}/fhir`;
    const recorded = new Date();
    const bundle = {
      resourceType: 'Bundle',
      id: randomUUID(),
      type: 'collection',
      timestamp: recorded.toISOString(),
      entry: allowed.map((r) => ({ fullUrl: `${base}/${r.resourceType}/${r.id}`, resource: r.content })),
    };
    // The response check cannot look inside the JWE: it runs here, on what is about to be sealed.
    checkResponse(access, bundle);
    const sealed = await sealForRecipient(Buffer.from(stringifyJson(bundle), 'utf8'), recipient);

    const event = auditTrail.sealedExportAuditEvent(
      {
        actor: auditActor(request),
        returned: allowed.map((r) => ({ resourceType: r.resourceType, id: r.id, versionId: r.versionId })),
        patients: [`Patient/${id}`],
        description: `Patient/${id}/$export-sealed: ${allowed.length} resources sealed for one recipient key`,
        recipient: { thumbprint: sealed.thumbprint, alg: recipient.alg, enc: ENC },
        ...(context ? { purposeOfUse: context.requester.purpose, ...(authorization ? { authorization } : {}) } : {}),
      },
      recorded,
    );
    let auditEventId: string;
    try {
      [auditEventId] = (await withTransaction(pool, (client) =>
        auditTrail.recordAuditEvents(client, [{ content: event, recorded, sourceMessageId: null, rawSha256: auditTrail.NO_SOURCE_SHA256, mappingSha256: auditTrail.NO_SOURCE_SHA256 }]),
      )) as [string];
    } catch (error) {
      throw new AnchorlineError('ANCHORLINE_ERR_AUDIT_UNAVAILABLE', undefined, { cause: error });
    }
    return reply.header('content-type', JOSE_COMPACT).header('x-anchorline-audit-event', `AuditEvent/${auditEventId}`).send(sealed.jwe);
  });
}

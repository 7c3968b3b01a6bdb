/**
 * Authorization through a real engine: OAuth 2.0 client credentials (secret and private_key_jwt) beside API keys,
 * SMART v2 system scopes checked per resource type and on every resource a response holds (_include, _revinclude),
 * and per-source credentials (one hospital cannot ingest as another over HTTP).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeJwt, exportJWK, generateKeyPair, SignJWT } from 'jose';
import { adtMessage } from '../support/messages.ts';
import { MllpTestClient } from '../support/mllp-client.ts';
import { authHeaders, eventually, startTestEngine, type TestEngine } from '../support/engine.ts';

let t: TestEngine;
let patientId: string;

async function call(method: string, url: string, key: string | undefined, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: any; headers: Headers }> {
  const response = await fetch(`${t.httpUrl}${url}`, {
    method,
    headers: { ...(key ? authHeaders(key) : {}), ...(body !== undefined && typeof body !== 'string' ? { 'content-type': 'application/json' } : {}), ...headers },
    ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
  });
  const text = await response.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON (an HL7 ACK)
  }
  return { status: response.status, body: parsed, headers: response.headers };
}

const admin = (method: string, url: string, body?: unknown) => call(method, url, 'test-admin-key-0123456789abcdef', body);

async function apiKey(scopes: string[], source?: string): Promise<string> {
  const created = await admin('POST', '/admin/api-keys', { name: `key ${scopes.join(' ')}`, scopes, ...(source ? { source } : {}) });
  expect(created.status).toBe(201);
  return created.body.key;
}

async function tokenRequest(form: Record<string, string>, basic?: { id: string; secret: string }): Promise<{ status: number; body: any; headers: Headers }> {
  return call('POST', '/auth/token', undefined, new URLSearchParams(form).toString(), {
    'content-type': 'application/x-www-form-urlencoded',
    ...(basic ? { authorization: `Basic ${Buffer.from(`${encodeURIComponent(basic.id)}:${encodeURIComponent(basic.secret)}`).toString('base64')}` } : {}),
  });
}

async function secretClient(scopes: string[], source?: string): Promise<{ id: string; secret: string }> {
  const created = await admin('POST', '/admin/clients', { name: 'backend service', scopes, ...(source ? { source } : {}) });
  expect(created.status).toBe(201);
  return { id: created.body.clientId, secret: created.body.clientSecret };
}

beforeAll(async () => {
  t = await startTestEngine({
    overrides: {
      sources: [
        { name: 'hospital-a', sendingFacilities: ['HOSPA'] },
        { name: 'hospital-b', sendingFacilities: ['HOSPB'], sendingApplications: ['BEMR'] },
      ],
      auth: { credentialCacheMs: 0 },
    },
  });
  const client = await MllpTestClient.connect(t.mllpPort);
  await client.request(adtMessage({ controlId: 'AUTHZ-1', mrn: 'AZ1', family: 'Han', given: 'Sol', facility: 'OPEN' }));
  await client.close();
  patientId = await eventually(async () => (await admin('GET', '/fhir/Patient?identifier=AZ1')).body.entry?.[0]?.resource?.id, 20_000, 'patient AZ1');
  // Its encounter, which references it.
  await eventually(async () => (await admin('GET', `/fhir/Encounter?subject=Patient/${patientId}`)).body.total === 1, 20_000, 'encounter');
});

afterAll(async () => {
  await t?.destroy();
});

describe('OAuth 2.0 client credentials', () => {
  it('publishes SMART discovery and the engine key set', async () => {
    const smart = await call('GET', '/.well-known/smart-configuration', undefined);
    expect(smart.status).toBe(200);
    expect(smart.body.token_endpoint).toBe(`${t.httpUrl}/auth/token`);
    expect(smart.body.grant_types_supported).toEqual(expect.arrayContaining(['client_credentials', 'authorization_code', 'refresh_token']));
    expect(smart.body.token_endpoint_auth_methods_supported).toEqual(expect.arrayContaining(['client_secret_basic', 'private_key_jwt']));
    const jwks = await call('GET', '/.well-known/jwks.json', undefined);
    expect(jwks.body.keys).toHaveLength(1);
    expect(jwks.body.keys[0]).toMatchObject({ kty: 'EC', crv: 'P-256', alg: 'ES256', use: 'sig' });
    expect(jwks.body.keys[0].d).toBeUndefined();
  });

  it('issues a short-lived token for a client secret (Basic or in the body) with the requested subset of its scopes', async () => {
    const client = await secretClient(['system/Patient.rs', 'system/Encounter.rs']);
    const basic = await tokenRequest({ grant_type: 'client_credentials', scope: 'system/Patient.rs' }, client);
    expect(basic.status).toBe(200);
    expect(basic.headers.get('cache-control')).toBe('no-store');
    expect(basic.body).toMatchObject({ token_type: 'Bearer', expires_in: 300, scope: 'system/Patient.rs' });
    const claims = decodeJwt(basic.body.access_token);
    expect(claims).toMatchObject({ sub: client.id, scope: 'system/Patient.rs', iss: 'anchorline', aud: 'anchorline' });
    expect(claims.exp! - claims.iat!).toBe(300);

    const posted = await tokenRequest({ grant_type: 'client_credentials', client_id: client.id, client_secret: client.secret });
    expect(posted.status).toBe(200);
    expect(posted.body.scope).toBe('system/Patient.rs system/Encounter.rs');

    const read = await call('GET', `/fhir/Patient/${patientId}`, basic.body.access_token);
    expect(read.status).toBe(200);
    expect(read.body.id).toBe(patientId);
  });

  it('refuses bad client credentials, grants and scopes with RFC 6749 errors', async () => {
    const client = await secretClient(['system/Patient.rs']);
    const wrong = await tokenRequest({ grant_type: 'client_credentials' }, { id: client.id, secret: 'cs_wrong' });
    expect(wrong.status).toBe(401);
    expect(wrong.body.error).toBe('invalid_client');
    expect(wrong.headers.get('www-authenticate')).toMatch(/^Basic/);
    expect(wrong.headers.get('x-anchorline-error')).toBe('ANCHORLINE_ERR_OAUTH_INVALID_CLIENT');
    expect((await tokenRequest({ grant_type: 'password' }, client)).body.error).toBe('unsupported_grant_type');
    const wider = await tokenRequest({ grant_type: 'client_credentials', scope: 'system/Patient.rs admin' }, client);
    expect(wider.status).toBe(400);
    expect(wider.body.error).toBe('invalid_scope');
    expect((await tokenRequest({ grant_type: 'client_credentials', scope: 'system/Patient.rs?gender=female' }, client)).body.error).toBe('invalid_scope');
    expect((await tokenRequest({ grant_type: 'client_credentials', client_id: client.id, client_secret: client.secret }, client)).body.error).toBe('invalid_client');
    const json = await call('POST', '/auth/token', undefined, { grant_type: 'client_credentials' });
    expect(json.status).toBe(400);
  });

  it('accepts a private_key_jwt client assertion once, and refuses a replay, a wrong audience or a foreign key', async () => {
    const { privateKey, publicKey } = await generateKeyPair('ES384', { extractable: true });
    const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES384' };
    const created = await admin('POST', '/admin/clients', { name: 'asymmetric', scopes: ['system/*.rs'], jwks: { keys: [jwk] } });
    expect(created.status).toBe(201);
    expect(created.body.clientSecret).toBeUndefined();
    const clientId = created.body.clientId as string;
    const assertion = (audience: string, key = privateKey, jti = crypto.randomUUID()) =>
      new SignJWT({}).setProtectedHeader({ alg: 'ES384', kid: 'k1' }).setIssuer(clientId).setSubject(clientId).setAudience(audience).setJti(jti).setExpirationTime('4m').sign(key);
    const form = (jwt: string) => ({ grant_type: 'client_credentials', scope: 'system/*.rs', client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: jwt });

    const jwt = await assertion(`${t.httpUrl}/auth/token`);
    const granted = await tokenRequest(form(jwt));
    expect(granted.status).toBe(200);
    expect((await call('GET', `/fhir/Patient/${patientId}`, granted.body.access_token)).status).toBe(200);
    expect((await tokenRequest(form(jwt))).body.error_description).toMatch(/used before/);
    expect((await tokenRequest(form(await assertion('https://elsewhere.example/token')))).body.error).toBe('invalid_client');
    const other = await generateKeyPair('ES384');
    expect((await tokenRequest(form(await assertion(`${t.httpUrl}/auth/token`, other.privateKey)))).body.error).toBe('invalid_client');
    const farFuture = await new SignJWT({}).setProtectedHeader({ alg: 'ES384', kid: 'k1' }).setIssuer(clientId).setSubject(clientId).setAudience(`${t.httpUrl}/auth/token`).setJti('x').setExpirationTime('1h').sign(privateKey);
    expect((await tokenRequest(form(farFuture))).body.error_description).toMatch(/exp/);
  });

  it('rejects a tampered token, a token of a revoked client and a key registration with a private key', async () => {
    const client = await secretClient(['system/Patient.rs']);
    const access = (await tokenRequest({ grant_type: 'client_credentials' }, client)).body.access_token as string;
    const [header, payload, signature] = access.split('.');
    const widened = Buffer.from(JSON.stringify({ ...decodeJwt(access), scope: 'admin' })).toString('base64url');
    const forged = await call('GET', '/admin/api-keys', `${header}.${widened}.${signature}`);
    expect(forged.status).toBe(401);
    expect(forged.headers.get('x-anchorline-error')).toBe('ANCHORLINE_ERR_UNAUTHORIZED');
    expect(payload).toBeDefined();

    expect((await call('GET', `/fhir/Patient/${patientId}`, access)).status).toBe(200);
    expect((await admin('DELETE', `/admin/clients/${client.id}`)).status).toBe(204);
    expect((await call('GET', `/fhir/Patient/${patientId}`, access)).status).toBe(401);
    expect((await tokenRequest({ grant_type: 'client_credentials' }, client)).body.error).toBe('invalid_client');

    const { privateKey } = await generateKeyPair('ES384', { extractable: true });
    const refused = await admin('POST', '/admin/clients', { name: 'leaky', scopes: ['system/*.rs'], jwks: { keys: [await exportJWK(privateKey)] } });
    expect(refused.status).toBe(400);
  });
});

describe('SMART v2 scopes on the FHIR API', () => {
  it('grants per type and interaction: read without search, search without read, and nothing else', async () => {
    const readOnly = await apiKey(['system/Patient.r']);
    expect((await call('GET', `/fhir/Patient/${patientId}`, readOnly)).status).toBe(200);
    const search = await call('GET', '/fhir/Patient?identifier=AZ1', readOnly);
    expect(search.status).toBe(403);
    expect(search.headers.get('x-anchorline-error')).toBe('ANCHORLINE_ERR_FORBIDDEN');
    expect((await call('GET', '/fhir/Encounter', readOnly)).status).toBe(403);

    const searchOnly = await apiKey(['system/Patient.s']);
    expect((await call('GET', '/fhir/Patient?identifier=AZ1', searchOnly)).body.total).toBe(1);
    expect((await call('GET', `/fhir/Patient/${patientId}`, searchOnly)).status).toBe(403);

    const v1 = await apiKey(['system/Patient.read']);
    expect((await call('GET', '/fhir/Patient?identifier=AZ1', v1)).status).toBe(200);
    const wildcard = await apiKey(['system/*.cruds']);
    expect((await call('GET', `/fhir/Encounter?subject=Patient/${patientId}`, wildcard)).status).toBe(200);
    // Ingest and admin routes stay closed to a reader.
    expect((await call('GET', '/admin/api-keys', wildcard)).status).toBe(403);
    expect((await call('POST', '/ingest/hl7v2', wildcard, adtMessage({ controlId: 'NOPE', mrn: 'X' }), { 'content-type': 'application/hl7-v2' })).status).toBe(403);
    expect((await admin('POST', '/admin/api-keys', { name: 'bad', scopes: ['system/patient.rs'] })).status).toBe(400);
  });

  it('leaks nothing through _include or _revinclude: resources the caller may not read are withheld', async () => {
    const encountersOnly = await apiKey(['system/Encounter.rs']);
    const included = await call('GET', `/fhir/Encounter?subject=Patient/${patientId}&_include=Encounter:subject`, encountersOnly);
    expect(included.status).toBe(200);
    const types = included.body.entry.map((e: any) => e.resource.resourceType);
    expect(types).toEqual(['Encounter', 'OperationOutcome']);
    expect(included.body.entry[1].search.mode).toBe('outcome');
    expect(included.body.entry[1].resource.issue[0].diagnostics).toMatch(/^1 included resource/);
    expect(JSON.stringify(included.body)).not.toContain('Han');

    const both = await apiKey(['system/Encounter.rs', 'system/Patient.rs']);
    const withPatient = await call('GET', `/fhir/Encounter?subject=Patient/${patientId}&_include=Encounter:subject`, both);
    expect(withPatient.body.entry.map((e: any) => [e.resource.resourceType, e.search.mode])).toEqual([['Encounter', 'match'], ['Patient', 'include']]);

    const patientsOnly = await apiKey(['system/Patient.rs']);
    const reverse = await call('GET', `/fhir/Patient?_id=${patientId}&_revinclude=Encounter:subject`, patientsOnly);
    expect(reverse.body.entry.map((e: any) => e.resource.resourceType)).toEqual(['Patient', 'OperationOutcome']);
    const reverseAll = await call('GET', `/fhir/Patient?_id=${patientId}&_revinclude=Encounter:subject`, both);
    expect(reverseAll.body.entry.map((e: any) => e.resource.resourceType)).toEqual(['Patient', 'Encounter']);
    // The audit trail is not reachable through a reverse include either.
    const audit = await call('GET', `/fhir/Patient?_id=${patientId}&_revinclude=AuditEvent:patient`, both);
    expect(audit.body.entry.map((e: any) => e.resource.resourceType)).toEqual(['Patient', 'OperationOutcome']);
    expect((await call('GET', `/fhir/Encounter?_include=Patient:link`, both)).status).toBe(400);
  });

  it('serves AuditEvent to the audit scope only', async () => {
    const reader = await apiKey(['system/*.rs']);
    expect((await call('GET', '/fhir/AuditEvent', reader)).status).toBe(403);
    const auditor = await apiKey(['audit']);
    const events = await call('GET', `/fhir/AuditEvent?patient=Patient/${patientId}`, auditor);
    expect(events.status).toBe(200);
    expect(events.body.total).toBeGreaterThan(0);
    expect((await call('GET', `/fhir/Patient/${patientId}`, auditor)).status).toBe(403);
    const explicit = await apiKey(['system/AuditEvent.rs']);
    expect((await call('GET', '/fhir/AuditEvent?_count=1', explicit)).status).toBe(200);
  });
});

describe('per-source credentials', () => {
  const ingest = (key: string, controlId: string, facility: string, application = 'EMR') =>
    call('POST', '/ingest/hl7v2', key, adtMessage({ controlId, mrn: `S-${controlId}`, facility, application }), { 'content-type': 'application/hl7-v2', accept: 'application/json' });

  it('lets a hospital send only its own facilities, keeps the refused message, and leaves the real sender its control id', async () => {
    const hospitalA = await apiKey(['ingest'], 'hospital-a');
    const hospitalB = await apiKey(['ingest'], 'hospital-b');
    const unbound = await apiKey(['ingest']);

    const spoofed = await ingest(hospitalB, 'SRC-1', 'HOSPA');
    expect(spoofed.status).toBe(403);
    expect(spoofed.body).toMatchObject({ outcome: 'rejected', ackCode: 'AR', errorCode: 'ANCHORLINE_ERR_SOURCE_NOT_AUTHORIZED' });
    const kept = await admin('GET', `/admin/messages/${spoofed.body.messageId}`);
    expect(kept.body).toMatchObject({ state: 'rejected', errorCode: 'ANCHORLINE_ERR_SOURCE_NOT_AUTHORIZED', source: expect.stringMatching(/ source=hospital-b$/) });
    expect(Buffer.from(kept.body.rawBase64, 'base64').toString('utf8')).toContain('SRC-1');

    // The same control id from the real hospital is accepted: the refused copy did not take its key.
    const genuine = await ingest(hospitalA, 'SRC-1', 'HOSPA');
    expect(genuine.status).toBe(202);
    expect(genuine.body.ackCode).toBe('AA');
    expect((await ingest(unbound, 'SRC-2', 'HOSPA')).body.errorCode).toBe('ANCHORLINE_ERR_SOURCE_NOT_AUTHORIZED');
    // Claimed applications count as well as facilities; unclaimed ones are open to every ingest credential.
    expect((await ingest(hospitalA, 'SRC-3', 'OPEN', 'BEMR')).body.errorCode).toBe('ANCHORLINE_ERR_SOURCE_NOT_AUTHORIZED');
    expect((await ingest(unbound, 'SRC-4', 'OPEN')).status).toBe(202);
    expect((await ingest(hospitalB, 'SRC-5', 'OPEN')).status).toBe(202);
  });

  it('binds OAuth clients to sources too, and refuses a binding to an unknown source', async () => {
    const client = await secretClient(['ingest'], 'hospital-b');
    const access = (await tokenRequest({ grant_type: 'client_credentials' }, client)).body.access_token as string;
    expect(decodeJwt(access).source).toBe('hospital-b');
    expect((await ingest(access, 'SRC-6', 'HOSPB')).status).toBe(202);
    expect((await ingest(access, 'SRC-7', 'HOSPA')).status).toBe(403);
    expect((await admin('POST', '/admin/api-keys', { name: 'x', scopes: ['ingest'], source: 'hospital-z' })).status).toBe(400);
  });
});

/**
 * People sign in through SMART App Launch 2 against a real engine (real PostgreSQL) in a real headless Chromium:
 * a patient launches an app standalone with PKCE, signs in on the engine's login page, approves the app's scopes,
 * and the app exchanges the code for tokens that carry the patient's launch context and fhirUser; the token reads
 * the patient's own record and is refreshed. A wrong password is refused with a message, an authorization request
 * without PKCE is refused, a practitioner chooses the patient to launch with and reaches only that patient, a
 * disabled account's token stops working, and tokens from a hospital's identity provider (a local stand-in serving
 * a JWK Set, since that provider is outside our control) are accepted for a linked account and refused otherwise.
 * System API keys keep working beside all this.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { decodeJwt, exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adtMessage } from '../support/messages.ts';
import { authHeaders, eventually, startTestEngine, type TestEngine } from '../support/engine.ts';

const ARTIFACTS = fileURLToPath(new URL('../../.tmp/artifacts/sign-in/', import.meta.url));
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const IDP_ISSUER = 'https://idp.hospital.example';
const IDP_AUDIENCE = 'anchorline-fhir';
const PASSWORD = 'correct horse battery staple';

let t: TestEngine;
let browser: Browser;
let idp: Server;
let idpKey: CryptoKey;
let idpJwk: JWK;
let appId: string;
let redirectUri: string;
const patientIds: Record<string, string> = {};
const userIds: Record<string, string> = {};

async function admin(method: string, url: string, body?: unknown): Promise<{ status: number; body: any }> {
  const response = await fetch(`${t.httpUrl}${url}`, {
    method,
    headers: { ...authHeaders(), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : undefined };
}

async function bearer(url: string, token: string): Promise<{ status: number; body: any }> {
  const response = await fetch(`${t.httpUrl}${url}`, { headers: { authorization: `Bearer ${token}` } });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : undefined };
}

/**
 * A person's read of their own Patient, which consent never withholds. Until the engine is started with a consent
 * gate (api/consent-gate.ts), every person's read is refused by the FHIR API with its own message, after the token
 * was authenticated and its scopes checked; that refusal counts as passing here, any other (401, a scope refusal) not.
 */
async function expectOwnRead(token: string): Promise<void> {
  const read = await bearer(`/fhir/Patient/${patientIds.own}`, token);
  expect(read.status, JSON.stringify(read.body)).toBe(200);
  expect(read.body.id).toBe(patientIds.own);
}

async function tokenRequest(form: Record<string, string>): Promise<{ status: number; body: any }> {
  const response = await fetch(`${t.httpUrl}/auth/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(form).toString() });
  return { status: response.status, body: await response.json() };
}

function pkce(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

function authorizeUrl(options: { scope: string; challenge?: string; state?: string }): string {
  const url = new URL(`${t.httpUrl}/auth/oidc/auth`);
  url.searchParams.set('response_type', 'code');
  url.searchParams.set('client_id', appId);
  url.searchParams.set('redirect_uri', redirectUri);
  url.searchParams.set('scope', options.scope);
  url.searchParams.set('state', options.state ?? randomBytes(8).toString('hex'));
  url.searchParams.set('aud', `${t.httpUrl}/fhir`);
  if (options.challenge) {
    url.searchParams.set('code_challenge', options.challenge);
    url.searchParams.set('code_challenge_method', 'S256');
  }
  return url.toString();
}

/** Runs a standalone launch in a fresh browser context up to the approval page; returns the page there. */
async function signIn(username: string, password: string, scope: string, challenge: string): Promise<Page> {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.setDefaultTimeout(20_000);
  await page.goto(authorizeUrl({ scope, challenge }));
  await page.getByTestId('username').fill(username);
  await page.getByTestId('password').fill(password);
  await page.getByTestId('sign-in').click();
  return page;
}

/** Approves on the approval page and returns the authorization code the app's redirect URI received. */
async function approve(page: Page): Promise<string> {
  await page.getByTestId('approve').click();
  await expect.poll(() => page.url(), { timeout: 20_000 }).toContain(redirectUri);
  const code = new URL(page.url()).searchParams.get('code');
  expect(code, page.url()).toBeTruthy();
  await page.context().close();
  return code!;
}

async function exchange(code: string, verifier: string): Promise<{ status: number; body: any }> {
  return tokenRequest({ grant_type: 'authorization_code', code, code_verifier: verifier, client_id: appId, redirect_uri: redirectUri });
}

async function idpToken(claims: Record<string, unknown>, options: { key?: CryptoKey; audience?: string } = {}): Promise<string> {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'ES256', kid: idpJwk.kid! })
    .setIssuer(IDP_ISSUER)
    .setAudience(options.audience ?? IDP_AUDIENCE)
    .setIssuedAt()
    .setExpirationTime('5m')
    .sign(options.key ?? idpKey);
}

beforeAll(async () => {
  await mkdir(ARTIFACTS, { recursive: true });
  // The hospital's identity provider, as far as the engine sees it: a JWK Set at a URL.
  ({ privateKey: idpKey } = await generateKeyPair('ES256', { extractable: true }));
  const { d: _private, ...publicJwk } = await exportJWK(idpKey);
  idpJwk = { ...publicJwk, kid: 'idp-1', alg: 'ES256', use: 'sig' };
  idp = createServer((_request, response) => response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [idpJwk] })));
  await new Promise<void>((resolve) => idp.listen(0, '127.0.0.1', resolve));
  const jwksUri = `http://127.0.0.1:${(idp.address() as AddressInfo).port}/jwks`;

  t = await startTestEngine({ overrides: { auth: { externalIdp: { issuer: IDP_ISSUER, jwksUri, audience: IDP_AUDIENCE } } } });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--headless=new'] });

  for (const [name, mrn] of [['own', 'SIGNIN-1'], ['other', 'SIGNIN-2']] as const) {
    const sent = await fetch(`${t.httpUrl}/ingest/hl7v2`, { method: 'POST', headers: { ...authHeaders(), 'content-type': 'x-application/hl7-v2+er7' }, body: adtMessage({ controlId: `SI-${mrn}`, mrn, family: 'Seo', given: name }) });
    expect(sent.status).toBe(202);
    patientIds[name] = await eventually(async () => (await admin('GET', `/fhir/Patient?identifier=${mrn}`)).body.entry?.[0]?.resource?.id, 20_000, `patient ${mrn}`);
  }

  redirectUri = `${t.httpUrl}/test-app/callback`;
  const registered = await admin('POST', '/admin/apps', { name: 'Test SMART app', redirectUris: [redirectUri] });
  expect(registered.status).toBe(201);
  expect(registered.body.clientSecret).toBeUndefined();
  appId = registered.body.clientId;

  const accounts = [
    { username: 'minji', password: PASSWORD, role: 'patient', fhirUser: `Patient/${patientIds.own}`, displayName: 'Seo Minji' },
    { username: 'dr.kim', password: PASSWORD, role: 'practitioner', fhirUser: 'Practitioner/pr-1', displayName: 'Dr Kim', organization: 'Organization/snuh', roles: ['PRCP'] },
    { username: 'ext-patient', role: 'patient', fhirUser: `Patient/${patientIds.own}`, displayName: 'Seo Minji (hospital login)', externalSubject: 'hospital-4711' },
  ];
  for (const account of accounts) {
    const created = await admin('POST', '/admin/users', account);
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    expect(created.body.passwordHash).toBeUndefined();
    userIds[account.username] = created.body.id;
  }
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await t?.destroy();
  await new Promise((resolve) => idp?.close(resolve));
});

describe('SMART App Launch for people', () => {
  it('publishes SMART discovery at the root and the FHIR base, and OpenID Connect discovery at its issuer', async () => {
    for (const url of ['/.well-known/smart-configuration', '/fhir/.well-known/smart-configuration']) {
      const smart = (await admin('GET', url)).body;
      expect(smart.authorization_endpoint).toBe(`${t.httpUrl}/auth/oidc/auth`);
      expect(smart.token_endpoint).toBe(`${t.httpUrl}/auth/token`);
      expect(smart.code_challenge_methods_supported).toEqual(['S256']);
      expect(smart.capabilities).toEqual(expect.arrayContaining(['launch-standalone', 'client-public', 'client-confidential-symmetric', 'sso-openid-connect', 'context-standalone-patient', 'permission-patient', 'permission-user', 'permission-v2', 'permission-offline', 'client-confidential-asymmetric']));
      expect(smart.scopes_supported).toEqual(expect.arrayContaining(['openid', 'fhirUser', 'launch/patient', 'offline_access', 'patient/*.rs', 'user/*.rs', 'system/*.rs']));
      expect(smart.issuer).toBe(`${t.httpUrl}/auth/oidc`);
    }
    expect((await admin('GET', '/fhir/.well-known/smart-configuration')).body.grant_types_supported).toEqual(expect.arrayContaining(['authorization_code', 'client_credentials']));
    const oidc = await (await fetch(`${t.httpUrl}/auth/oidc/.well-known/openid-configuration`)).json() as any;
    expect(oidc.issuer).toBe(`${t.httpUrl}/auth/oidc`);
    expect(oidc.code_challenge_methods_supported).toEqual(['S256']);
    expect(oidc.id_token_signing_alg_values_supported).toEqual(['ES256']);
    // The built-in portal app is registered for the portal's callback.
    const apps = (await admin('GET', '/admin/apps')).body.apps;
    expect(apps.find((a: any) => a.clientId === 'anchorline-portal')).toMatchObject({ redirectUris: [`${t.httpUrl}/portal/callback`], confidential: false, builtIn: true });
  });

  it('takes a patient through a standalone launch with PKCE to a token for their own record, and refreshes it', async () => {
    const { verifier, challenge } = pkce();
    const page = await signIn('minji', PASSWORD, 'openid fhirUser profile launch/patient offline_access patient/*.rs user/*.rs', challenge);
    await page.getByTestId('approve').waitFor();
    // The record the launch is for, by the name and record number it holds.
    expect(await page.getByTestId('launch-patient').textContent()).toBe('Seo own · SIGNIN-1');
    // A patient reads through patient/ scopes; user/ is shown as not granted.
    expect(await page.getByTestId('refused-scopes').textContent()).toContain('patient/ scopes');
    await page.screenshot({ path: path.join(ARTIFACTS, '01-patient-approval.png'), fullPage: true });
    const code = await approve(page);

    const tokens = await exchange(code, verifier);
    expect(tokens.status, JSON.stringify(tokens.body)).toBe(200);
    expect(tokens.body).toMatchObject({ token_type: 'Bearer', patient: patientIds.own });
    expect(tokens.body.scope.split(' ')).toEqual(expect.arrayContaining(['openid', 'fhirUser', 'launch/patient', 'patient/*.rs']));
    expect(tokens.body.scope).not.toContain('user/');
    expect(typeof tokens.body.refresh_token).toBe('string');
    const idToken = decodeJwt(tokens.body.id_token);
    expect(idToken.fhirUser).toBe(`${t.httpUrl}/fhir/Patient/${patientIds.own}`);
    expect(idToken.sub).toBe(userIds.minji);
    const access = decodeJwt(tokens.body.access_token);
    expect(access).toMatchObject({ iss: `${t.httpUrl}/auth/oidc`, aud: `${t.httpUrl}/fhir`, client_id: appId, patient: patientIds.own });

    await expectOwnRead(tokens.body.access_token);
    // Another patient's record is outside a patient's patient/ grant.
    // It reads as absent: a person is not told that a record they may not see exists.
    expect((await bearer(`/fhir/Patient/${patientIds.other}`, tokens.body.access_token)).status).toBe(404);
    // A person's token never reaches engine routes.
    expect((await bearer('/admin/users', tokens.body.access_token)).status).toBe(403);

    const refreshed = await tokenRequest({ grant_type: 'refresh_token', refresh_token: tokens.body.refresh_token, client_id: appId });
    expect(refreshed.status, JSON.stringify(refreshed.body)).toBe(200);
    expect(refreshed.body.patient).toBe(patientIds.own);
    expect(refreshed.body.access_token).not.toBe(tokens.body.access_token);
    await expectOwnRead(refreshed.body.access_token);
    // The code was used once; using it again is refused.
    expect((await exchange(code, verifier)).body.error).toBe('invalid_grant');
  });

  it('refuses a wrong password with a clear message, and a code exchanged with the wrong verifier', async () => {
    const { challenge } = pkce();
    const page = await signIn('minji', 'not the password', 'openid patient/*.rs', challenge);
    await expect.poll(() => page.getByTestId('sign-in-error').textContent()).toContain('username or password is not correct');
    await page.screenshot({ path: path.join(ARTIFACTS, '02-wrong-password.png'), fullPage: true });
    await page.getByTestId('password').fill(PASSWORD);
    await page.getByTestId('sign-in').click();
    const code = await approve(page);
    const wrong = await exchange(code, pkce().verifier);
    expect(wrong.status).toBe(400);
    expect(wrong.body.error).toBe('invalid_grant');
  });

  it('refuses an authorization request without PKCE', async () => {
    const response = await fetch(authorizeUrl({ scope: 'openid patient/*.rs' }), { redirect: 'manual' });
    const location = new URL(response.headers.get('location')!, t.httpUrl);
    expect(location.href.startsWith(redirectUri)).toBe(true);
    expect(location.searchParams.get('error')).toBe('invalid_request');
    expect(location.searchParams.get('error_description')).toMatch(/code_challenge|PKCE/i);
  });

  it('lets a practitioner launch with a patient they choose, and reach only that patient', async () => {
    const { verifier, challenge } = pkce();
    const page = await signIn('dr.kim', PASSWORD, 'openid fhirUser launch/patient patient/*.rs', challenge);
    await page.getByTestId('patient').fill('no-such-patient');
    await page.getByTestId('approve').click();
    await expect.poll(() => page.getByTestId('consent-error').textContent()).toContain('no patient with the id');
    await page.getByTestId('patient').fill(patientIds.other!);
    await page.screenshot({ path: path.join(ARTIFACTS, '03-practitioner-picks-patient.png'), fullPage: true });
    const tokens = await exchange(await approve(page), verifier);
    expect(tokens.status, JSON.stringify(tokens.body)).toBe(200);
    expect(tokens.body.patient).toBe(patientIds.other);
    expect(decodeJwt(tokens.body.id_token).fhirUser).toBe(`${t.httpUrl}/fhir/Practitioner/pr-1`);
    expect((await bearer(`/fhir/Patient/${patientIds.own}`, tokens.body.access_token)).status).not.toBe(200);

    // Without launch/patient a practitioner gets no patient/ access at all.
    const second = pkce();
    const unpicked = await signIn('dr.kim', PASSWORD, 'openid patient/*.rs', second.challenge);
    await unpicked.getByTestId('approve').waitFor();
    expect(await unpicked.getByTestId('refused-scopes').textContent()).toContain('patient chosen at launch');
    const noPatient = await exchange(await approve(unpicked), second.verifier);
    expect(noPatient.status).toBe(200);
    expect(noPatient.body.patient).toBeUndefined();
    expect(noPatient.body.scope ?? '').not.toContain('patient/');
  });

  it("stops a disabled account's token, and a disabled account cannot sign in", async () => {
    const account = await admin('POST', '/admin/users', { username: 'leaving', password: PASSWORD, role: 'patient', fhirUser: `Patient/${patientIds.own}`, displayName: 'Leaving Patient' });
    const { verifier, challenge } = pkce();
    const tokens = await exchange(await approve(await signIn('leaving', PASSWORD, 'openid patient/Patient.rs', challenge)), verifier);
    await expectOwnRead(tokens.body.access_token);
    expect((await admin('PATCH', `/admin/users/${account.body.id}`, { disabled: true })).body.disabled).toBe(true);
    const refused = await bearer(`/fhir/Patient/${patientIds.own}`, tokens.body.access_token);
    expect(refused.status).toBe(401);
    const page = await signIn('leaving', PASSWORD, 'openid patient/*.rs', pkce().challenge);
    await expect.poll(() => page.getByTestId('sign-in-error').textContent()).toContain('not correct');
    await page.context().close();
  });

  it("accepts the hospital identity provider's tokens for a linked account, with their SMART scopes only", async () => {
    const token = await idpToken({ sub: 'hospital-4711', scope: 'patient/Patient.rs system/*.rs admin' });
    await expectOwnRead(token);
    // system/ and engine scopes in such a token grant nothing.
    expect((await bearer(`/fhir/Patient/${patientIds.other}`, token)).status).toBe(404);
    expect((await bearer('/admin/users', token)).status).toBe(403);
    const scp = await idpToken({ sub: 'hospital-4711', scp: ['patient/Patient.rs'] });
    await expectOwnRead(scp);

    const unlinked = await bearer(`/fhir/Patient/${patientIds.own}`, await idpToken({ sub: 'nobody-here', scope: 'patient/*.rs' }));
    expect(unlinked.status).toBe(401);
    const wrongAudience = await bearer(`/fhir/Patient/${patientIds.own}`, await idpToken({ sub: 'hospital-4711', scope: 'patient/*.rs' }, { audience: 'someone-else' }));
    expect(wrongAudience.status).toBe(401);
    const { privateKey: forger } = await generateKeyPair('ES256');
    const forged = await bearer(`/fhir/Patient/${patientIds.own}`, await idpToken({ sub: 'hospital-4711', scope: 'patient/*.rs' }, { key: forger }));
    expect(forged.status).toBe(401);
  });

  it('leaves system API keys and client-credentials tokens as they were', async () => {
    expect((await admin('GET', `/fhir/Patient/${patientIds.other}`)).status).toBe(200);
    const client = await admin('POST', '/admin/clients', { name: 'backend', scopes: ['system/Patient.rs'] });
    const basic = Buffer.from(`${client.body.clientId}:${client.body.clientSecret}`).toString('base64');
    const response = await fetch(`${t.httpUrl}/auth/token`, { method: 'POST', headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded' }, body: 'grant_type=client_credentials&scope=system%2FPatient.rs' });
    const token = (await response.json() as any).access_token;
    expect((await bearer(`/fhir/Patient/${patientIds.other}`, token)).status).toBe(200);
    // A SMART app's grant at the same endpoint does not pass for client credentials.
    expect((await tokenRequest({ grant_type: 'authorization_code', code: 'not-a-code', code_verifier: 'x'.repeat(43), client_id: appId, redirect_uri: redirectUri })).body.error).toBe('invalid_grant');
  });
});

/**
 * Signing in to the portal: SMART App Launch 2, standalone launch, as the engine's built-in public client
 * `anchorline-portal` with PKCE (S256). The portal reads the authorization and token endpoints from
 * /.well-known/smart-configuration, sends the person to sign in there, and exchanges the code that comes back to
 * /portal/callback for tokens, checking `state` first.
 *
 * Tokens live in sessionStorage only: gone when the tab closes, never in localStorage, a cookie or a URL. The access
 * token is refreshed with the refresh token (offline_access) shortly before it expires, or when the engine refuses it.
 */
import { randomToken, s256Challenge } from './pkce.ts';

export const CLIENT_ID = 'anchorline-portal';

/**
 * What the portal asks for (api/access.ts parseUserScopeList): identity, the patient's records, writing their own
 * consents, and reading who looked at their records, which patient/*.rs leaves out.
 *
 * Not launch/patient: a launch context narrows every patient/ grant to the one patient chosen (api/access.ts
 * Access.patientContext), and the sign-in pages choose a patient's first record. The portal is the person's view of
 * all their records, one per facility, which patient/ scopes reach without a launch context.
 */
export const PORTAL_SCOPES = 'openid fhirUser offline_access patient/*.rs patient/Consent.cu patient/AuditEvent.rs';

const TOKENS_KEY = 'anchorline.portal.tokens';
const PENDING_KEY = 'anchorline.portal.pending';
/** Refresh this long before the access token's stated expiry, so that a request never leaves with a dying token. */
const REFRESH_MARGIN_MS = 30_000;

export interface SmartConfiguration {
  authorization_endpoint: string;
  token_endpoint: string;
  revocation_endpoint?: string;
}

export interface Tokens {
  accessToken: string;
  refreshToken: string | undefined;
  /** ms since the epoch. */
  expiresAt: number;
  tokenEndpoint: string;
  revocationEndpoint: string | undefined;
  /** The launch context the server chose, if any (`patient` of the token response). */
  patient: string | undefined;
  scope: string;
}

/** The sign-in under way between leaving for the authorization endpoint and coming back. */
interface PendingSignIn {
  state: string;
  verifier: string;
  tokenEndpoint: string;
  revocationEndpoint: string | undefined;
}

export function redirectUri(): string {
  return `${location.origin}/portal/callback`;
}

export function storedTokens(): Tokens | undefined {
  const stored = sessionStorage.getItem(TOKENS_KEY);
  if (!stored) return undefined;
  try {
    return JSON.parse(stored) as Tokens;
  } catch {
    sessionStorage.removeItem(TOKENS_KEY);
    return undefined;
  }
}

function keepTokens(tokens: Tokens): void {
  sessionStorage.setItem(TOKENS_KEY, JSON.stringify(tokens));
}

export function forgetTokens(): void {
  sessionStorage.removeItem(TOKENS_KEY);
  sessionStorage.removeItem(PENDING_KEY);
}

/** A sign-in step that failed, in words a person can act on. */
export class SignInError extends Error {}

export async function smartConfiguration(): Promise<SmartConfiguration> {
  const response = await fetch('/.well-known/smart-configuration', { headers: { accept: 'application/json' } });
  if (!response.ok) throw new SignInError(`Sign-in is not available on this server (${response.status}).`);
  const configuration = (await response.json()) as Partial<SmartConfiguration>;
  if (typeof configuration.authorization_endpoint !== 'string' || typeof configuration.token_endpoint !== 'string') throw new SignInError('This server does not say where to sign in.');
  return configuration as SmartConfiguration;
}

/** Leaves for the authorization endpoint; the person comes back to /portal/callback. */
export async function beginSignIn(): Promise<void> {
  const configuration = await smartConfiguration();
  const pending: PendingSignIn = { state: randomToken(16), verifier: randomToken(32), tokenEndpoint: configuration.token_endpoint, revocationEndpoint: configuration.revocation_endpoint };
  sessionStorage.setItem(PENDING_KEY, JSON.stringify(pending));
  const url = new URL(configuration.authorization_endpoint, location.origin);
  url.search = new URLSearchParams({
    response_type: 'code',
    client_id: CLIENT_ID,
    redirect_uri: redirectUri(),
    scope: PORTAL_SCOPES,
    state: pending.state,
    // SMART's audience: the FHIR server the token is for.
    aud: `${location.origin}/fhir`,
    code_challenge: await s256Challenge(pending.verifier),
    code_challenge_method: 'S256',
  }).toString();
  location.assign(url.toString());
}

interface TokenResponse {
  access_token?: string;
  refresh_token?: string;
  expires_in?: number;
  scope?: string;
  patient?: string;
  error?: string;
  error_description?: string;
}

async function tokenRequest(endpoint: string, form: Record<string, string>): Promise<TokenResponse> {
  const response = await fetch(endpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
    body: new URLSearchParams(form).toString(),
  });
  let body: TokenResponse = {};
  try {
    body = (await response.json()) as TokenResponse;
  } catch {
    // Not JSON: the status says enough.
  }
  if (!response.ok || typeof body.access_token !== 'string') {
    throw new SignInError(body.error_description ?? body.error ?? `The server refused to sign you in (${response.status}).`);
  }
  return body;
}

function tokensFrom(body: TokenResponse, endpoints: { tokenEndpoint: string; revocationEndpoint: string | undefined }, previous?: Tokens): Tokens {
  return {
    accessToken: body.access_token!,
    // A server that does not rotate refresh tokens answers a refresh without one: the old one still holds.
    refreshToken: body.refresh_token ?? previous?.refreshToken,
    expiresAt: Date.now() + (typeof body.expires_in === 'number' ? body.expires_in : 300) * 1000,
    tokenEndpoint: endpoints.tokenEndpoint,
    revocationEndpoint: endpoints.revocationEndpoint,
    patient: body.patient ?? previous?.patient,
    scope: body.scope ?? previous?.scope ?? PORTAL_SCOPES,
  };
}

/**
 * Finishes the sign-in at /portal/callback: the state must be the one this tab sent, else the code is not used
 * (someone else's sign-in, or one that was started elsewhere).
 */
export async function completeSignIn(params: URLSearchParams): Promise<Tokens> {
  const stored = sessionStorage.getItem(PENDING_KEY);
  sessionStorage.removeItem(PENDING_KEY);
  if (params.get('error')) throw new SignInError(params.get('error_description') ?? `Sign-in did not complete: ${params.get('error')}.`);
  const pending = stored ? (JSON.parse(stored) as PendingSignIn) : undefined;
  if (!pending || params.get('state') !== pending.state) throw new SignInError('This sign-in was not started from this page. Please sign in again.');
  const code = params.get('code');
  if (!code) throw new SignInError('The server sent no authorization code. Please sign in again.');
  const body = await tokenRequest(pending.tokenEndpoint, { grant_type: 'authorization_code', code, redirect_uri: redirectUri(), client_id: CLIENT_ID, code_verifier: pending.verifier });
  const tokens = tokensFrom(body, pending);
  keepTokens(tokens);
  return tokens;
}

let refreshing: Promise<Tokens | undefined> | undefined;

/** New tokens from the refresh token; undefined when there is none or the server refuses it (signed out). */
export function refreshTokens(): Promise<Tokens | undefined> {
  // One refresh for all the requests that found the token expired at once: a rotated refresh token is good once.
  refreshing ??= (async () => {
    const tokens = storedTokens();
    if (!tokens?.refreshToken) return undefined;
    try {
      const body = await tokenRequest(tokens.tokenEndpoint, { grant_type: 'refresh_token', refresh_token: tokens.refreshToken, client_id: CLIENT_ID });
      const fresh = tokensFrom(body, tokens, tokens);
      keepTokens(fresh);
      return fresh;
    } catch {
      forgetTokens();
      return undefined;
    }
  })().finally(() => {
    refreshing = undefined;
  });
  return refreshing;
}

/** The access token to send now, refreshed first when it is about to expire; undefined: signed out. */
export async function currentAccessToken(): Promise<string | undefined> {
  const tokens = storedTokens();
  if (!tokens) return undefined;
  if (tokens.expiresAt - REFRESH_MARGIN_MS > Date.now()) return tokens.accessToken;
  return (await refreshTokens())?.accessToken;
}

/** Signs out: the refresh token is revoked where the server offers revocation, and the tab forgets every token. */
export async function signOut(): Promise<void> {
  const tokens = storedTokens();
  forgetTokens();
  if (tokens?.revocationEndpoint && tokens.refreshToken) {
    try {
      await fetch(tokens.revocationEndpoint, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ token: tokens.refreshToken, token_type_hint: 'refresh_token', client_id: CLIENT_ID }).toString(),
      });
    } catch {
      // The tokens are gone from this tab either way; an unrevoked refresh token expires on its own.
    }
  }
}

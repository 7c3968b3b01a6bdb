/**
 * OAuth 2.0 client-credentials grant (RFC 6749 section 4.4), as SMART Backend Services uses it: a registered client
 * authenticates with its secret (client_secret_basic or client_secret_post) or with a JWT it signs with a key from
 * its registered JWK Set (private_key_jwt, RFC 7523), and receives a short-lived access token: a JWT the engine signs
 * with ES256 and verifies on every request (jose). Discovery: /.well-known/smart-configuration, and the engine's
 * public keys at /.well-known/jwks.json.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type pg from 'pg';
import {
  calculateJwkThumbprint,
  createLocalJWKSet,
  decodeJwt,
  exportJWK,
  exportPKCS8,
  generateKeyPair,
  importPKCS8,
  jwtVerify,
  SignJWT,
  type CryptoKey,
  type JWK,
} from 'jose';
import { AnchorlineError, isAnchorlineError, type ErrorCode } from '../errors/index.ts';
import { oauthClients } from '../store/index.ts';
import { parseScopeList } from './access.ts';

const TOKEN_ALGORITHM = 'ES256';
/** What SMART Backend Services asks servers to accept for client assertions, and the other common asymmetric ones. */
const ASSERTION_ALGORITHMS = ['RS384', 'ES384', 'RS256', 'ES256', 'PS384', 'EdDSA'];
const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
/** A client assertion may not be valid for longer than this (SMART: "no more than five minutes in the future"). */
const MAX_ASSERTION_LIFETIME_S = 300;

/** The claims of an access token the engine issued, once verified. */
export interface TokenClaims {
  clientId: string;
  scopes: string[];
  source?: string;
}

export interface TokenIssuerOptions {
  /** `iss` and `aud` of issued tokens (config auth.issuer). */
  issuer: string;
  /** Seconds an access token is valid (config auth.tokenLifetimeSeconds). */
  lifetimeSeconds: number;
  privateKey: CryptoKey;
  publicJwk: JWK;
}

/** Signs and verifies the engine's access tokens. One per engine, created at start-up from a key file. */
export class TokenIssuer {
  readonly issuer: string;
  readonly lifetimeSeconds: number;
  private readonly privateKey: CryptoKey;
  readonly publicJwk: JWK;
  private readonly verifyKeys: ReturnType<typeof createLocalJWKSet>;

  constructor(options: TokenIssuerOptions) {
    this.issuer = options.issuer;
    this.lifetimeSeconds = options.lifetimeSeconds;
    this.privateKey = options.privateKey;
    this.publicJwk = options.publicJwk;
    this.verifyKeys = createLocalJWKSet({ keys: [options.publicJwk] });
  }

  /**
   * Loads the ES256 signing key from `file` (PEM PKCS#8), creating it when `create` and it is missing. A file made
   * by another process at the same moment wins: exclusive create, then read back.
   */
  static async fromKeyFile(file: string, options: { issuer: string; lifetimeSeconds: number; create: boolean }): Promise<TokenIssuer> {
    if (!existsSync(file)) {
      if (!options.create) throw new Error(`the access-token signing key ${file} does not exist`);
      const { privateKey } = await generateKeyPair(TOKEN_ALGORITHM, { extractable: true });
      await mkdir(path.dirname(file), { recursive: true });
      try {
        await writeFile(file, await exportPKCS8(privateKey), { mode: 0o600, flag: 'wx' });
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
    }
    const privateKey = await importPKCS8(await readFile(file, 'utf8'), TOKEN_ALGORITHM, { extractable: true });
    const { d: _private, ...publicJwk } = await exportJWK(privateKey);
    publicJwk.kid = await calculateJwkThumbprint(publicJwk);
    publicJwk.alg = TOKEN_ALGORITHM;
    publicJwk.use = 'sig';
    return new TokenIssuer({ issuer: options.issuer, lifetimeSeconds: options.lifetimeSeconds, privateKey, publicJwk });
  }

  /** The signing key as a private JWK (with kid and alg), for the sign-in provider, which signs with the same key. */
  async signingJwk(): Promise<JWK> {
    return { ...(await exportJWK(this.privateKey)), kid: this.publicJwk.kid!, alg: TOKEN_ALGORITHM, use: 'sig' };
  }

  async issue(claims: TokenClaims): Promise<{ token: string; expiresIn: number }> {
    const token = await new SignJWT({ scope: claims.scopes.join(' '), client_id: claims.clientId, ...(claims.source ? { source: claims.source } : {}) })
      .setProtectedHeader({ alg: TOKEN_ALGORITHM, kid: this.publicJwk.kid!, typ: 'at+jwt' })
      .setIssuer(this.issuer)
      .setAudience(this.issuer)
      .setSubject(claims.clientId)
      .setIssuedAt()
      .setExpirationTime(`${this.lifetimeSeconds}s`)
      .setJti(randomUUID())
      .sign(this.privateKey);
    return { token, expiresIn: this.lifetimeSeconds };
  }

  /** The claims of a token this engine issued and that has not expired; undefined for anything else. */
  async verify(token: string): Promise<TokenClaims | undefined> {
    try {
      const { payload } = await jwtVerify(token, this.verifyKeys, { issuer: this.issuer, audience: this.issuer, algorithms: [TOKEN_ALGORITHM], typ: 'at+jwt' });
      if (typeof payload.sub !== 'string' || typeof payload.scope !== 'string') return undefined;
      return { clientId: payload.sub, scopes: payload.scope.split(' ').filter(Boolean), ...(typeof payload.source === 'string' ? { source: payload.source } : {}) };
    } catch {
      return undefined;
    }
  }
}

/** True when a bearer credential has the shape of a JWT (three base64url parts) rather than an API key. */
export function looksLikeJwt(credential: string): boolean {
  return /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/.test(credential);
}

const OAUTH_ERRORS: Partial<Record<ErrorCode, string>> = {
  ANCHORLINE_ERR_OAUTH_INVALID_CLIENT: 'invalid_client',
  ANCHORLINE_ERR_OAUTH_INVALID_GRANT: 'invalid_grant',
  ANCHORLINE_ERR_OAUTH_INVALID_SCOPE: 'invalid_scope',
  ANCHORLINE_ERR_OAUTH_UNSUPPORTED_GRANT_TYPE: 'unsupported_grant_type',
};

function oauthError(code: ErrorCode, description: string): AnchorlineError {
  return new AnchorlineError(code, description);
}

interface TokenRequest {
  grant_type?: string;
  scope?: string;
  client_id?: string;
  client_secret?: string;
  client_assertion_type?: string;
  client_assertion?: string;
}

/** The client behind a token request, authenticated by exactly one method. */
async function authenticateClient(pool: pg.Pool, request: FastifyRequest, body: TokenRequest, audiences: string[]): Promise<oauthClients.OAuthClient> {
  const basic = /^Basic\s+(\S+)$/i.exec(request.headers.authorization ?? '');
  const methods = [basic, body.client_secret, body.client_assertion].filter((m) => m !== undefined && m !== null).length;
  if (methods !== 1) throw oauthError('ANCHORLINE_ERR_OAUTH_INVALID_CLIENT', 'authenticate with exactly one of HTTP Basic, client_secret or client_assertion');

  if (body.client_assertion !== undefined) {
    if (body.client_assertion_type !== ASSERTION_TYPE) throw oauthError('ANCHORLINE_ERR_OAUTH_INVALID_CLIENT', `client_assertion_type must be ${ASSERTION_TYPE}`);
    let issuer: unknown;
    try {
      issuer = decodeJwt(body.client_assertion).iss;
    } catch {
      throw oauthError('ANCHORLINE_ERR_OAUTH_INVALID_CLIENT', 'client_assertion is not a JWT');
    }
    const client = typeof issuer === 'string' ? await oauthClients.findClient(pool, issuer) : undefined;
    if (!client?.jwks) throw oauthError('ANCHORLINE_ERR_OAUTH_INVALID_CLIENT', 'no active client with a registered JWK Set has this iss');
    let payload;
    try {
      ({ payload } = await jwtVerify(body.client_assertion, createLocalJWKSet(client.jwks as { keys: JWK[] }), {
        issuer: client.clientId,
        subject: client.clientId,
        audience: audiences,
        algorithms: ASSERTION_ALGORITHMS,
        requiredClaims: ['exp', 'jti'],
      }));
    } catch (error) {
      throw oauthError('ANCHORLINE_ERR_OAUTH_INVALID_CLIENT', `client_assertion does not verify (${(error as { code?: string }).code ?? 'invalid'})`);
    }
    const now = Math.floor(Date.now() / 1000);
    if (payload.exp! > now + MAX_ASSERTION_LIFETIME_S) throw oauthError('ANCHORLINE_ERR_OAUTH_INVALID_CLIENT', `client_assertion exp is more than ${MAX_ASSERTION_LIFETIME_S} s ahead`);
    if (!(await oauthClients.useAssertion(pool, client.clientId, String(payload.jti), new Date(payload.exp! * 1000)))) {
      throw oauthError('ANCHORLINE_ERR_OAUTH_INVALID_CLIENT', 'client_assertion jti was used before');
    }
    return client;
  }

  let clientId: string | undefined;
  let secret: string | undefined;
  if (basic) {
    // RFC 6749 section 2.3.1: both parts are form-urlencoded before base64.
    const decoded = Buffer.from(basic[1]!, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) throw oauthError('ANCHORLINE_ERR_OAUTH_INVALID_CLIENT', 'HTTP Basic credentials are malformed');
    clientId = decodeURIComponent(decoded.slice(0, colon).replace(/\+/g, ' '));
    secret = decodeURIComponent(decoded.slice(colon + 1).replace(/\+/g, ' '));
  } else {
    clientId = body.client_id;
    secret = body.client_secret;
  }
  const client = clientId ? await oauthClients.findClient(pool, clientId) : undefined;
  if (!client || secret === undefined || !oauthClients.secretMatches(client.secretSha256, secret)) {
    throw oauthError('ANCHORLINE_ERR_OAUTH_INVALID_CLIENT', 'client id or secret is not valid');
  }
  return client;
}

function parseForm(body: unknown): TokenRequest {
  if (typeof body !== 'string') throw new AnchorlineError('ANCHORLINE_ERR_INVALID_REQUEST', 'send the token request as application/x-www-form-urlencoded');
  const params = new URLSearchParams(body);
  const request: Record<string, string> = {};
  for (const key of params.keys()) {
    const values = params.getAll(key);
    // RFC 6749 section 3.2: parameters must not be included more than once.
    if (values.length > 1) throw oauthError('ANCHORLINE_ERR_OAUTH_INVALID_GRANT', `${key} is given more than once`);
    request[key] = values[0]!;
  }
  return request;
}

function tokenEndpoint(request: FastifyRequest): string {
  return `${request.protocol}://${request.host}/auth/token`;
}

/** People's sign-in, where the engine serves it (api/sign-in.ts): its token grants and its discovery members. */
export interface SignInTokens {
  /** Answers an authorization_code or refresh_token request at /auth/token. */
  forwardToken(request: FastifyRequest, reply: FastifyReply): Promise<void>;
  /** SMART discovery members of sign-in: authorization endpoint, PKCE methods, scopes, capabilities. */
  discovery(): Record<string, unknown>;
}

/** Grant types /auth/token hands to the sign-in provider. */
const SIGN_IN_GRANTS = new Set(['authorization_code', 'refresh_token']);

export function registerOAuthRoutes(app: FastifyInstance, pool: pg.Pool, issuer: TokenIssuer, signIn?: SignInTokens): void {
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: 64 * 1024 }, (_request, body, done) => done(null, body));

  app.post('/auth/token', {
    config: { public: true },
    schema: {
      tags: ['authorization'],
      summary: 'OAuth 2.0 client-credentials token endpoint',
      description:
        'grant_type=client_credentials, with client_secret_basic, client_secret_post or private_key_jwt (SMART Backend Services). ' +
        'Returns a short-lived ES256 JWT access token carrying the granted scopes. Errors follow RFC 6749 section 5.2.',
      consumes: ['application/x-www-form-urlencoded'],
      security: [],
    },
  }, async (request, reply) => {
    try {
      const body = parseForm(request.body);
      if (signIn && body.grant_type !== undefined && SIGN_IN_GRANTS.has(body.grant_type)) return await signIn.forwardToken(request, reply);
      if (body.grant_type !== 'client_credentials') throw oauthError('ANCHORLINE_ERR_OAUTH_UNSUPPORTED_GRANT_TYPE', 'grant_type must be client_credentials');
      const client = await authenticateClient(pool, request, body, [tokenEndpoint(request), issuer.issuer, `${issuer.issuer.replace(/\/$/, '')}/auth/token`]);
      let requested: string[];
      try {
        requested = body.scope === undefined ? client.scopes : parseScopeList(body.scope);
      } catch (error) {
        throw oauthError('ANCHORLINE_ERR_OAUTH_INVALID_SCOPE', isAnchorlineError(error) ? (error.detail ?? 'invalid scope') : 'invalid scope');
      }
      const refused = requested.filter((s) => !client.scopes.includes(s));
      if (refused.length > 0) throw oauthError('ANCHORLINE_ERR_OAUTH_INVALID_SCOPE', `this client may not be granted ${refused.join(' ')}`);
      if (requested.length === 0) throw oauthError('ANCHORLINE_ERR_OAUTH_INVALID_SCOPE', 'no scope requested');
      const { token, expiresIn } = await issuer.issue({ clientId: client.clientId, scopes: requested, ...(client.source ? { source: client.source } : {}) });
      return noStore(reply).send({ access_token: token, token_type: 'Bearer', expires_in: expiresIn, scope: requested.join(' ') });
    } catch (error) {
      const coded = isAnchorlineError(error) ? error : undefined;
      const oauth = coded ? OAUTH_ERRORS[coded.code] : undefined;
      if (!coded || !oauth) throw error;
      if (coded.code === 'ANCHORLINE_ERR_OAUTH_INVALID_CLIENT' && request.headers.authorization) reply.header('www-authenticate', 'Basic realm="anchorline"');
      return noStore(reply)
        .status(coded.spec.httpStatus)
        .header('x-anchorline-error', coded.code)
        .send({ error: oauth, error_description: coded.detail ?? coded.spec.title });
    }
  });

  app.get('/.well-known/jwks.json', {
    config: { public: true },
    schema: { tags: ['authorization'], summary: "The engine's public keys for access tokens (JWK Set)", security: [] },
  }, async () => ({ keys: [issuer.publicJwk] }));

  // SMART discovery: at the server root, as before, and at the FHIR base, where SMART App Launch 2 requires it.
  const smartConfiguration = (request: FastifyRequest): Record<string, unknown> => {
    const base: Record<string, unknown> = {
      issuer: issuer.issuer,
      jwks_uri: `${request.protocol}://${request.host}/.well-known/jwks.json`,
      token_endpoint: tokenEndpoint(request),
      grant_types_supported: signIn ? ['authorization_code', 'client_credentials', 'refresh_token'] : ['client_credentials'],
      token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post', 'private_key_jwt'],
      token_endpoint_auth_signing_alg_values_supported: ASSERTION_ALGORITHMS,
      scopes_supported: ['system/*.rs', 'system/*.cruds', 'system/Patient.rs', 'ingest', 'audit', 'terminology', 'admin'],
      capabilities: ['client-confidential-symmetric', 'client-confidential-asymmetric', 'permission-v2'],
    };
    if (!signIn) return base;
    const people = signIn.discovery();
    const union = (key: string): string[] => [...new Set([...((base[key] as string[] | undefined) ?? []), ...((people[key] as string[] | undefined) ?? [])])];
    return { ...base, ...people, scopes_supported: union('scopes_supported'), capabilities: union('capabilities'), token_endpoint_auth_methods_supported: union('token_endpoint_auth_methods_supported').concat(['none']) };
  };

  app.get('/.well-known/smart-configuration', {
    config: { public: true },
    schema: { tags: ['authorization'], summary: 'SMART discovery document (token endpoint, methods, scopes)', security: [] },
  }, async (request) => smartConfiguration(request));

  app.get('/fhir/.well-known/smart-configuration', {
    config: { public: true },
    schema: { tags: ['authorization'], summary: 'SMART discovery document at the FHIR base', security: [] },
  }, async (request) => smartConfiguration(request));
}

function noStore(reply: FastifyReply): FastifyReply {
  return reply.header('cache-control', 'no-store').header('pragma', 'no-cache');
}

/**
 * People sign in: SMART App Launch 2 (standalone launch) with an OpenID Connect provider inside the engine
 * (oidc-provider), mounted under /auth/oidc. Its issuer is '<publicUrl>/auth/oidc'; the access tokens it issues are
 * ES256 JWTs for the audience '<publicUrl>/fhir' (the FHIR base, the one resource server), signed with the same key
 * as the engine's client-credentials tokens, so one JWK Set (/.well-known/jwks.json) verifies both.
 *
 * What the provider keeps between requests (sessions, interactions, codes, refresh tokens, grants) lives in
 * PostgreSQL (store/oidc-payloads.ts), so that sign-ins survive restarts and engines behind one load balancer share
 * them; the apps (clients) come from store/sign-in-apps.ts through the same adapter. Expired rows are swept every
 * auth.signIn.sweepIntervalMs.
 *
 * SMART specifics: PKCE with S256 is required of every app, public or confidential; the SMART launch context (the
 * patient the person chose or is) is kept per grant and carried as the `patient` claim of each access token and the
 * `patient` member of the token response; the ID token carries `fhirUser` as an absolute URL. The interaction pages
 * (login, approval, patient choice) are api/sign-in-pages.ts, their HTML api/sign-in-html.ts.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { hkdfSync } from 'node:crypto';
import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { createLocalJWKSet, decodeJwt, jwtVerify, type JWK } from 'jose';
import Provider, { errors, type Adapter, type AdapterPayload, type Configuration, type KoaContextWithOIDC } from 'oidc-provider';
import type pg from 'pg';
import { errorFields, type Logger } from '../config/logger.ts';
import { oidcPayloads, signInApps, users } from '../store/index.ts';
import { isUserScope, SIGN_IN_SCOPES } from './access.ts';
import type { PersonTokenClaims, PersonTokenVerifier } from './authenticate.ts';
import { errorPage } from './sign-in-html.ts';

/** Where the provider is mounted; its issuer is the public URL plus this path. */
export const OIDC_MOUNT = '/auth/oidc';
/** The public app the engine registers for its patient portal (served at /portal/ by the web folder). */
export const PORTAL_CLIENT_ID = 'anchorline-portal';
/** The model name under which a grant's SMART launch context is kept beside the provider's own models. */
const LAUNCH_MODEL = 'SmartLaunch';
const TOKEN_ALGORITHM = 'ES256';

export interface SignInOptions {
  pool: pg.Pool;
  log: Logger;
  /** auth.publicUrl; absent: 'http://<listening address>:<port>', resolved at the first request. */
  publicUrl?: string;
  /** The engine's ES256 token-signing key as a private JWK (with kid): it signs ID and access tokens too. */
  signingKey: JWK;
  /** The engine's sign-in secret (store/sign-in-apps.ts loadSignInSecret). */
  secret: Buffer;
  accessTokenLifetimeSeconds: number;
  refreshTokenLifetimeSeconds: number;
  sessionLifetimeSeconds: number;
  sweepIntervalMs: number;
}

/** The URLs of sign-in, all under the engine's public URL. */
export interface SignInUrls {
  publicUrl: string;
  issuer: string;
  /** The FHIR base: the audience of people's access tokens and the `aud` SMART apps send. */
  fhirBase: string;
  authorize: string;
  /** The provider's own token endpoint (what /auth/token forwards authorization_code and refresh_token to). */
  token: string;
  revocation: string;
  jwks: string;
}

/** The launch context the person settled on when approving an app, kept per grant. */
interface LaunchContext {
  /** The patient's id (not `Patient/x`), as SMART's `patient` launch context is. */
  patient?: string;
}

/** One cookie-signing key derived from the sign-in secret, so that rotating the secret file rotates the cookies. */
function derivedKey(secret: Buffer, purpose: string): string {
  return Buffer.from(hkdfSync('sha256', secret, Buffer.alloc(0), `anchorline ${purpose}`, 32)).toString('base64url');
}

/** True for a SMART resource scope (patient/ or user/) as opposed to identity and launch scopes. */
function isResourceScope(scope: string): boolean {
  return isUserScope(scope) && !(SIGN_IN_SCOPES as readonly string[]).includes(scope);
}

export class SignIn implements PersonTokenVerifier {
  private readonly options: SignInOptions;
  private readonly app: FastifyInstance;
  private ready: Promise<Provider> | undefined;
  private resolvedUrls: SignInUrls | undefined;
  private sweeper: NodeJS.Timeout | undefined;
  private readonly verifyKeys: ReturnType<typeof createLocalJWKSet>;

  constructor(app: FastifyInstance, options: SignInOptions) {
    this.app = app;
    this.options = options;
    const { d: _private, ...publicKey } = options.signingKey;
    this.verifyKeys = createLocalJWKSet({ keys: [publicKey] });
  }

  get pool(): pg.Pool {
    return this.options.pool;
  }

  get secret(): Buffer {
    return this.options.secret;
  }

  urls(): SignInUrls {
    if (this.resolvedUrls) return this.resolvedUrls;
    let publicUrl = this.options.publicUrl;
    if (!publicUrl) {
      const address = this.app.server.address();
      if (!address || typeof address === 'string') return this.urlsFor('http://127.0.0.1');
      const host = address.address === '0.0.0.0' || address.address === '::' ? '127.0.0.1' : address.family === 'IPv6' ? `[${address.address}]` : address.address;
      publicUrl = `http://${host}:${address.port}`;
    }
    this.resolvedUrls = this.urlsFor(publicUrl);
    return this.resolvedUrls;
  }

  private urlsFor(publicUrl: string): SignInUrls {
    const issuer = `${publicUrl}${OIDC_MOUNT}`;
    return {
      publicUrl,
      issuer,
      fhirBase: `${publicUrl}/fhir`,
      authorize: `${issuer}/auth`,
      token: `${publicUrl}/auth/token`,
      revocation: `${issuer}/token/revocation`,
      jwks: `${publicUrl}/.well-known/jwks.json`,
    };
  }

  /** The provider, created at the first request (when the listening address is known) with the built-in portal app. */
  provider(): Promise<Provider> {
    this.ready ??= this.createProvider().catch((error: unknown) => {
      this.ready = undefined;
      throw error;
    });
    return this.ready;
  }

  close(): void {
    if (this.sweeper) clearInterval(this.sweeper);
    this.sweeper = undefined;
  }

  /** A person's access token issued here, verified (signature, iss, aud, exp, typ); undefined when it is not one. */
  async verify(token: string): Promise<PersonTokenClaims | undefined> {
    const urls = this.urls();
    try {
      if (decodeJwt(token).iss !== urls.issuer) return undefined;
      const { payload } = await jwtVerify(token, this.verifyKeys, { issuer: urls.issuer, audience: urls.fhirBase, algorithms: [TOKEN_ALGORITHM], typ: 'at+jwt' });
      if (typeof payload.sub !== 'string' || typeof payload.client_id !== 'string') return undefined;
      const scopes = typeof payload.scope === 'string' ? payload.scope.split(' ').filter(Boolean) : [];
      return {
        user: { id: payload.sub },
        app: payload.client_id,
        registeredApp: true,
        scopes,
        ...(typeof payload.patient === 'string' ? { launchPatient: `Patient/${payload.patient}` } : {}),
      };
    } catch {
      return undefined;
    }
  }

  private async createProvider(): Promise<Provider> {
    const { pool, log } = this.options;
    const urls = this.urls();
    await signInApps.ensureBuiltInApp(pool, { clientId: PORTAL_CLIENT_ID, name: 'anchorline patient portal', redirectUris: [`${urls.publicUrl}/portal/callback`] });
    const provider = new Provider(urls.issuer, this.configuration(urls));
    // OpenID Connect grants offline_access only with prompt=consent, which SMART apps do not send. Here every
    // authorization asks the person to approve (loadExistingGrant below), so the request is read as the consent
    // prompt it gets anyway. Only GET requests are rewritten: SMART launches are redirects.
    provider.use(async (ctx, next) => {
      if (ctx.method === 'GET' && ctx.path === '/auth') {
        const query = new URLSearchParams(ctx.querystring);
        const prompts = (query.get('prompt') ?? '').split(' ').filter(Boolean);
        if ((query.get('scope') ?? '').split(' ').includes('offline_access') && !prompts.includes('consent') && !prompts.includes('none')) {
          query.set('prompt', [...prompts, 'consent'].join(' '));
          ctx.querystring = query.toString();
          // The provider finds its mount path as originalUrl minus url: both change together.
          (ctx.req as IncomingMessage & { originalUrl?: string }).originalUrl = `${OIDC_MOUNT}${ctx.url}`;
        }
      }
      await next();
    });
    // The token response carries the SMART launch context beside the token (SMART App Launch 2, "launch context
    // arrives with the access token"); the access token holds it as a claim, so it is copied from there.
    provider.use(async (ctx, next) => {
      await next();
      const body = ctx.body as Record<string, unknown> | undefined;
      if (ctx.oidc?.route !== 'token' || ctx.status !== 200 || !body || typeof body.access_token !== 'string') return;
      const claims = decodeJwt(body.access_token);
      if (typeof claims.patient === 'string') body.patient = claims.patient;
      // The response's scope names what was granted, identity and launch scopes included, not only the resource's.
      const grant = ctx.oidc.entities.Grant;
      const oidcScopes = grant?.getOIDCScope().split(' ').filter(Boolean) ?? [];
      if (typeof body.scope === 'string') body.scope = [...new Set([...oidcScopes, ...body.scope.split(' ')])].filter(Boolean).join(' ');
    });
    provider.on('server_error', (_ctx, error) => log.error({ ...errorFields(error) }, 'sign-in: provider error'));
    this.sweeper = setInterval(() => {
      oidcPayloads.deleteExpired(pool).catch((error: unknown) => log.warn({ ...errorFields(error) }, 'sign-in: sweeping expired state failed'));
    }, this.options.sweepIntervalMs);
    this.sweeper.unref();
    return provider;
  }

  private configuration(urls: SignInUrls): Configuration {
    const { pool, secret } = this.options;
    const accessTtl = this.options.accessTokenLifetimeSeconds;
    const refreshTtl = this.options.refreshTokenLifetimeSeconds;

    // One adapter class per model name, over one table (store/oidc-payloads.ts); Client reads registered apps.
    class PgAdapter implements Adapter {
      private readonly model: string;
      constructor(model: string) {
        this.model = model;
      }
      async upsert(id: string, payload: AdapterPayload, expiresIn?: number): Promise<void> {
        await oidcPayloads.upsert(pool, this.model, id, payload as oidcPayloads.Payload, expiresIn);
      }
      async find(id: string): Promise<AdapterPayload | undefined> {
        if (this.model === 'Client') return clientMetadata(id);
        return (await oidcPayloads.find(pool, this.model, id)) as AdapterPayload | undefined;
      }
      async findByUid(uid: string): Promise<AdapterPayload | undefined> {
        return (await oidcPayloads.findByUid(pool, this.model, uid)) as AdapterPayload | undefined;
      }
      async findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
        return (await oidcPayloads.findByUserCode(pool, this.model, userCode)) as AdapterPayload | undefined;
      }
      async consume(id: string): Promise<void> {
        await oidcPayloads.consume(pool, this.model, id);
      }
      async destroy(id: string): Promise<void> {
        await oidcPayloads.destroy(pool, this.model, id);
      }
      async revokeByGrantId(grantId: string): Promise<void> {
        await oidcPayloads.revokeByGrant(pool, grantId);
      }
    }

    const clientMetadata = async (clientId: string): Promise<AdapterPayload | undefined> => {
      const app = await signInApps.findApp(pool, clientId);
      if (!app || app.disabled) return undefined;
      return {
        client_id: app.clientId,
        client_name: app.name,
        redirect_uris: app.redirectUris,
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        token_endpoint_auth_method: app.secretSalt ? 'client_secret_basic' : 'none',
        ...(app.secretSalt ? { client_secret: signInApps.appSecret(secret, app.clientId, app.secretSalt) } : {}),
      };
    };

    // The resource server's scopes are whatever SMART resource scopes are in play: those requested at the
    // authorization endpoint, or those of the code, refresh token and grant being exchanged. The grant is what
    // limits a token; this list only has to name every scope the grant may hold, and SMART's are open-ended
    // (patient/Observation.rs, user/Encounter.cruds, ...).
    const resourceScopes = (ctx: KoaContextWithOIDC): string => {
      const entities = ctx.oidc.entities;
      const candidates = [
        ctx.oidc.params?.scope,
        entities.AuthorizationCode?.scope,
        entities.RefreshToken?.scope,
        entities.Grant?.resources?.[urls.fhirBase],
      ].filter((s): s is string => typeof s === 'string');
      return [...new Set(candidates.flatMap((s) => s.split(' ')).filter(isResourceScope))].join(' ');
    };

    return {
      adapter: PgAdapter,
      async findAccount(_ctx, sub) {
        const user = await users.findUser(pool, sub);
        if (!user || user.disabled) return undefined;
        return {
          accountId: user.id,
          async claims() {
            return { sub: user.id, fhirUser: `${urls.fhirBase}/${user.fhirUser}`, name: user.displayName, preferred_username: user.username };
          },
        };
      },
      jwks: { keys: [this.options.signingKey as never] },
      cookies: { keys: [derivedKey(secret, 'sign-in cookies')] },
      claims: { openid: ['sub'], fhirUser: ['fhirUser'], profile: ['name', 'preferred_username'] },
      scopes: ['openid', 'offline_access', 'online_access', 'fhirUser', 'profile', 'launch', 'launch/patient'],
      clientDefaults: { grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'], id_token_signed_response_alg: TOKEN_ALGORITHM, token_endpoint_auth_method: 'client_secret_basic' },
      enabledJWA: { idTokenSigningAlgValues: [TOKEN_ALGORITHM] },
      responseTypes: ['code'],
      // SMART App Launch 2 requires PKCE (S256, the only method the provider accepts) of every app.
      pkce: { required: () => true },
      // SMART apps read fhirUser from the ID token, not from the userinfo endpoint.
      conformIdTokenClaims: false,
      extraParams: {
        // SMART: the app names the FHIR server it wants a token for; a server that is not this one is refused, so
        // that a token meant for another server is never issued here.
        aud(_ctx: KoaContextWithOIDC, value: string | undefined) {
          if (value !== undefined && value.replace(/\/$/, '') !== urls.fhirBase) {
            throw new errors.InvalidRequest(`aud must be this server's FHIR base, ${urls.fhirBase}`);
          }
        },
        launch: null,
      },
      features: {
        devInteractions: { enabled: false },
        // An app revokes only its own tokens (RFC 7009 section 2.1). A public app (the portal) presenting another's
        // token is answered as if it were revoked, so that it learns nothing; a confidential one is refused.
        revocation: {
          enabled: true,
          allowedPolicy: async (_ctx, client, token) => {
            if (token.clientId === client.clientId) return true;
            if (client.clientAuthMethod === 'none') return false;
            throw new errors.InvalidRequest('an app may revoke only its own tokens');
          },
        },
        introspection: { enabled: false },
        rpInitiatedLogout: { enabled: false },
        userinfo: { enabled: true },
        resourceIndicators: {
          enabled: true,
          defaultResource: () => urls.fhirBase,
          useGrantedResource: () => true,
          getResourceServerInfo: (ctx, resource) => {
            if (resource !== urls.fhirBase) throw new errors.InvalidTarget(`the only resource is ${urls.fhirBase}`);
            return { scope: resourceScopes(ctx), audience: urls.fhirBase, accessTokenTTL: accessTtl, accessTokenFormat: 'jwt', jwt: { sign: { alg: TOKEN_ALGORITHM } } };
          },
        },
      },
      interactions: { url: (_ctx, interaction) => `/auth/interaction/${interaction.uid}` },
      // Every authorization asks the person again: the launch context (which patient) is chosen per launch, and a
      // grant from an earlier launch must not silently carry it over.
      loadExistingGrant: async (ctx) => {
        const grantId = ctx.oidc.result?.consent?.grantId;
        return grantId ? ctx.oidc.provider.Grant.find(grantId) : undefined;
      },
      extraTokenClaims: async (_ctx, token) => {
        const grantId = (token as { grantId?: string }).grantId;
        if (!grantId) return undefined;
        const launch = (await oidcPayloads.find(pool, LAUNCH_MODEL, grantId)) as LaunchContext | undefined;
        return launch?.patient ? { patient: launch.patient } : undefined;
      },
      ttl: {
        AccessToken: accessTtl,
        AuthorizationCode: 60,
        IdToken: accessTtl,
        Interaction: 30 * 60,
        RefreshToken: refreshTtl,
        Grant: refreshTtl,
        Session: this.options.sessionLifetimeSeconds,
      },
      // Browser apps may call the token endpoint from the origins of their redirect URIs.
      clientBasedCORS: (_ctx, origin, client) => client.redirectUris?.some((uri) => URL.parse(uri)?.origin === origin) ?? false,
      renderError: async (ctx, out) => {
        ctx.type = 'html';
        ctx.set('content-security-policy', errorPage.csp);
        ctx.body = errorPage.render(out.error_description ?? out.error ?? 'the request could not be completed', out.error);
      },
    };
  }

  /** Saves the launch context of a grant, to expire with it. */
  async saveLaunchContext(grantId: string, launch: LaunchContext): Promise<void> {
    await oidcPayloads.upsert(this.options.pool, LAUNCH_MODEL, grantId, { grantId, ...launch }, this.options.refreshTokenLifetimeSeconds);
  }

  /** Hands a request under /auth/oidc to the provider, which answers it itself. */
  async handle(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const provider = await this.provider();
    reply.hijack();
    const raw = request.raw as IncomingMessage & { originalUrl?: string };
    // The provider derives its mount path from originalUrl minus url, as behind express or middie.
    raw.originalUrl = raw.url;
    raw.url = raw.url!.slice(OIDC_MOUNT.length) || '/';
    await provider.callback()(raw, reply.raw);
  }

  /**
   * Answers an authorization_code or refresh_token request that came to /auth/token, the one token endpoint SMART
   * discovery names, with the provider's token endpoint. Fastify has read the body already; the provider reads the
   * request as a stream, so it gets a request of the same headers whose stream is that body again.
   */
  async forwardToken(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const provider = await this.provider();
    const body = Buffer.from(typeof request.body === 'string' ? request.body : '', 'utf8');
    const raw = request.raw;
    const headers = { ...raw.headers, 'content-length': String(body.length) };
    delete headers['transfer-encoding'];
    const forwarded = Object.assign(Readable.from([body]), {
      headers,
      rawHeaders: raw.rawHeaders,
      method: 'POST',
      url: '/token',
      originalUrl: `${OIDC_MOUNT}/token`,
      socket: raw.socket,
      connection: raw.socket,
      httpVersion: raw.httpVersion,
      httpVersionMajor: raw.httpVersionMajor,
      httpVersionMinor: raw.httpVersionMinor,
      complete: true,
    });
    reply.hijack();
    await provider.callback()(forwarded as unknown as IncomingMessage, reply.raw as ServerResponse);
  }

  /** The SMART discovery members of sign-in (merged into /.well-known/smart-configuration by api/oauth.ts). */
  discovery(): Record<string, unknown> {
    const urls = this.urls();
    return {
      issuer: urls.issuer,
      authorization_endpoint: urls.authorize,
      revocation_endpoint: urls.revocation,
      response_types_supported: ['code'],
      code_challenge_methods_supported: ['S256'],
      scopes_supported: ['openid', 'fhirUser', 'profile', 'launch/patient', 'offline_access', 'online_access', 'patient/*.rs', 'user/*.rs', 'patient/Patient.rs', 'patient/Observation.rs'],
      capabilities: [
        'launch-standalone',
        'client-public',
        'client-confidential-symmetric',
        'sso-openid-connect',
        'context-standalone-patient',
        'permission-patient',
        'permission-user',
        'permission-v2',
        'permission-offline',
      ],
    };
  }
}

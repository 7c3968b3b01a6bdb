/**
 * Bearer credentials to an `Access`: an API key (looked up by its SHA-256) or an access token this engine issued
 * (verified with its public key, then its client looked up, so that revoking a client or narrowing its scopes takes
 * effect within `cacheMs` rather than at token expiry). A token grants the scopes it carries that its client still
 * has.
 *
 * A person's token (signed in through the engine's OpenID Connect provider, or issued by the hospital's identity
 * provider) is verified by a PersonTokenVerifier, and its account looked up the same way: a disabled account stops
 * working within `cacheMs`, and changed links (patients, organisation, roles) apply to tokens already issued. Its
 * scopes are the SMART patient/ and user/ scopes it carries that the account's role may hold (api/person-scopes.ts).
 */
import { decodeJwt } from 'jose';
import type pg from 'pg';
import { AnchorlineError } from '../errors/index.ts';
import { apiKeys, oauthClients, signInApps, users, type ApiKeyInfo, type SignInApp, type User } from '../store/index.ts';
import { Access, isUserScope, type Person } from './access.ts';
import { looksLikeJwt, type TokenIssuer } from './oauth.ts';
import { personScopes } from './person-scopes.ts';

/** What a verified person's token says: whose it is, through which app, with which scopes and launch context. */
export interface PersonToken {
  /** The account: by its id (the engine's own tokens) or by its external subject (the external identity provider). */
  user: { id: string } | { externalSubject: string };
  /** The app (client_id) the person signed in through. */
  app?: string;
  /** True when `app` is one of the engine's registered apps, which must still be enabled. */
  registeredApp: boolean;
  scopes: string[];
  /** The SMART launch context, `Patient/x`. */
  launchPatient?: string;
}

/** A verifier's answer: the token, or why a token of its issuer was refused. */
export type PersonTokenClaims = PersonToken | { rejected: string };

/** Verifies people's bearer tokens of one issuer: the engine's sign-in provider or an external identity provider. */
export interface PersonTokenVerifier {
  /** The token's claims, a refusal for a token of this issuer that is not valid, or undefined for other issuers' tokens. */
  verify(token: string): Promise<PersonTokenClaims | undefined>;
}

/** The person an account is, as api/access.ts takes it. */
function personOf(user: User): Person {
  return {
    userId: user.id,
    role: user.role,
    fhirUser: user.fhirUser,
    patients: user.patients,
    ...(user.organization ? { organization: user.organization } : {}),
    memberOf: user.memberOf,
    roles: user.roles,
  };
}

interface Cached<T> {
  value: T | undefined;
  until: number;
}

/** Entries kept per cache before it is cleared; bounds memory against a flood of invalid credentials. */
const MAX_CACHED = 10_000;

export class Authenticator {
  private readonly pool: pg.Pool;
  private readonly issuer: TokenIssuer | undefined;
  private readonly cacheMs: number;
  private readonly keys = new Map<string, Cached<ApiKeyInfo>>();
  private readonly clients = new Map<string, Cached<oauthClients.OAuthClient>>();
  private readonly users = new Map<string, Cached<User>>();
  private readonly apps = new Map<string, Cached<SignInApp>>();
  private readonly people: PersonTokenVerifier[] = [];
  /** People's tokens already verified, until they expire (at most cacheMs): ES256 verification is most of a read's CPU. */
  private readonly verifiedPeople = new Map<string, { token: PersonToken; until: number }>();

  constructor(pool: pg.Pool, issuer: TokenIssuer | undefined, cacheMs: number) {
    this.pool = pool;
    this.issuer = issuer;
    this.cacheMs = cacheMs;
  }

  /** Accepts people's tokens this verifier vouches for (added at start-up, before the API serves). */
  addPersonVerifier(verifier: PersonTokenVerifier): void {
    this.people.push(verifier);
  }

  /** The access an `Authorization` header grants; throws ANCHORLINE_ERR_UNAUTHORIZED when it grants none. */
  async authenticate(header: string | undefined): Promise<Access> {
    const match = header ? /^Bearer\s+(\S+)$/i.exec(header) : null;
    if (!match) throw new AnchorlineError('ANCHORLINE_ERR_UNAUTHORIZED', 'send Authorization: Bearer <API key or access token>');
    const credential = match[1]!;
    const claims = looksLikeJwt(credential) && this.issuer ? await this.issuer.verify(credential) : undefined;
    if (claims) {
      const client = await this.cached(this.clients, claims.clientId, () => oauthClients.findClient(this.pool, claims.clientId));
      if (!client) throw new AnchorlineError('ANCHORLINE_ERR_UNAUTHORIZED', 'the client of this access token was revoked');
      const scopes = claims.scopes.filter((s) => client.scopes.includes(s));
      return new Access({ kind: 'oauth-client', id: client.clientId, name: client.name, ...(client.source ? { source: client.source } : {}) }, scopes);
    }
    if (looksLikeJwt(credential)) {
      // A person's token verified before is taken from the cache until it expires: its signature cannot change, and
      // the account behind it is still looked up (through its own cache) on every request.
      const known = this.verifiedPeople.get(credential);
      if (known && known.until > Date.now()) return this.personAccess(known.token);
      for (const verifier of this.people) {
        const person = await verifier.verify(credential);
        if (person && 'rejected' in person) throw new AnchorlineError('ANCHORLINE_ERR_UNAUTHORIZED', person.rejected);
        if (person) {
          this.rememberPersonToken(credential, person);
          return this.personAccess(person);
        }
      }
    }
    // Not a token of ours: an API key (a configured key may happen to have a JWT's shape).
    const key = await this.cached(this.keys, credential, () => apiKeys.findApiKey(this.pool, credential));
    if (!key) throw new AnchorlineError('ANCHORLINE_ERR_UNAUTHORIZED', looksLikeJwt(credential) ? 'access token is not valid or has expired' : 'API key is not valid');
    return new Access({ kind: 'api-key', id: String(key.id), name: key.name, ...(key.source ? { source: key.source } : {}) }, key.scopes);
  }

  private rememberPersonToken(credential: string, token: PersonToken): void {
    let expires: number;
    try {
      const exp = decodeJwt(credential).exp;
      if (typeof exp !== 'number') return;
      expires = exp * 1000;
    } catch {
      return;
    }
    if (this.verifiedPeople.size >= MAX_CACHED) this.verifiedPeople.clear();
    this.verifiedPeople.set(credential, { token, until: Math.min(expires, Date.now() + this.cacheMs) });
  }

  /** Forgets every cached credential: this process stops trusting a revoked one at once (others within cacheMs). */
  forget(): void {
    this.verifiedPeople.clear();
    this.keys.clear();
    this.clients.clear();
    this.users.clear();
    this.apps.clear();
  }

  private async personAccess(token: PersonToken): Promise<Access> {
    const user = 'id' in token.user
      ? await this.cached(this.users, `id:${token.user.id}`, () => users.findUser(this.pool, (token.user as { id: string }).id))
      : await this.cached(this.users, `ext:${token.user.externalSubject}`, () => users.findUserByExternalSubject(this.pool, (token.user as { externalSubject: string }).externalSubject));
    if (!user || user.disabled) throw new AnchorlineError('ANCHORLINE_ERR_UNAUTHORIZED', user ? 'the account of this access token is disabled' : 'no account is linked to this access token');
    if (token.registeredApp) {
      const app = token.app ? await this.cached(this.apps, token.app, () => signInApps.findApp(this.pool, token.app!)) : undefined;
      if (!app || app.disabled) throw new AnchorlineError('ANCHORLINE_ERR_UNAUTHORIZED', 'the app of this access token is disabled');
    }
    // The role's rule applies to every token, so that one issued before the account changed grants no more than the
    // account may now hold.
    const scopes = personScopes(user.role, token.scopes.filter(isUserScope), token.launchPatient !== undefined).granted;
    return new Access({ kind: 'user', id: user.id, name: user.displayName, person: personOf(user), ...(token.app ? { app: token.app } : {}) }, scopes, token.launchPatient);
  }

  private async cached<T>(cache: Map<string, Cached<T>>, key: string, load: () => Promise<T | undefined>): Promise<T | undefined> {
    const hit = cache.get(key);
    if (hit && hit.until > Date.now()) return hit.value;
    const value = await load();
    if (cache.size >= MAX_CACHED) cache.clear();
    cache.set(key, { value, until: Date.now() + this.cacheMs });
    return value;
  }
}

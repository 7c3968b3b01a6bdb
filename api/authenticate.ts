/**
 * Bearer credentials to an `Access`: an API key (looked up by its SHA-256) or an access token this engine issued
 * (verified with its public key, then its client looked up, so that revoking a client or narrowing its scopes takes
 * effect within `cacheMs` rather than at token expiry). A token grants the scopes it carries that its client still
 * has.
 */
import type pg from 'pg';
import { AnchorlineError } from '../errors/index.ts';
import { apiKeys, oauthClients, type ApiKeyInfo } from '../store/index.ts';
import { Access } from './access.ts';
import { looksLikeJwt, type TokenIssuer } from './oauth.ts';

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

  constructor(pool: pg.Pool, issuer: TokenIssuer | undefined, cacheMs: number) {
    this.pool = pool;
    this.issuer = issuer;
    this.cacheMs = cacheMs;
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
    // Not a token of ours: an API key (a configured key may happen to have a JWT's shape).
    const key = await this.cached(this.keys, credential, () => apiKeys.findApiKey(this.pool, credential));
    if (!key) throw new AnchorlineError('ANCHORLINE_ERR_UNAUTHORIZED', looksLikeJwt(credential) ? 'access token is not valid or has expired' : 'API key is not valid');
    return new Access({ kind: 'api-key', id: String(key.id), name: key.name, ...(key.source ? { source: key.source } : {}) }, key.scopes);
  }

  /** Forgets every cached credential: this process stops trusting a revoked one at once (others within cacheMs). */
  forget(): void {
    this.keys.clear();
    this.clients.clear();
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

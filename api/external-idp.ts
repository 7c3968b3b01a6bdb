/**
 * Bearer tokens from a hospital's own identity provider (config auth.externalIdp): JWTs verified against the keys
 * it publishes (fetched and cached by jose, refetched when a token names an unknown key), for the issuer and
 * audience configured, and mapped to the local account whose externalSubject is the token's subject claim. Only the
 * SMART patient/ and user/ scopes (and identity scopes) the token carries count, in `scope` (space-separated) or
 * `scp` (a list, as some providers write it); a token of this issuer never grants engine or system scopes.
 */
import { createRemoteJWKSet, decodeJwt, jwtVerify } from 'jose';
import { isUserScope } from './access.ts';
import type { PersonTokenClaims, PersonTokenVerifier } from './authenticate.ts';

export interface ExternalIdpOptions {
  issuer: string;
  jwksUri: string;
  audience: string;
  /** The claim holding the subject an account records as externalSubject. */
  subjectClaim: string;
}

/** Algorithms an identity provider signs with; symmetric ones are refused (the key would be a shared secret). */
const ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'];

export class ExternalIdp implements PersonTokenVerifier {
  private readonly options: ExternalIdpOptions;
  private readonly keys: ReturnType<typeof createRemoteJWKSet>;

  constructor(options: ExternalIdpOptions) {
    this.options = options;
    this.keys = createRemoteJWKSet(new URL(options.jwksUri), { timeoutDuration: 5_000, cooldownDuration: 30_000 });
  }

  async verify(token: string): Promise<PersonTokenClaims | undefined> {
    try {
      // Tokens of other issuers are not this provider's: their keys are not fetched for them.
      if (decodeJwt(token).iss !== this.options.issuer) return undefined;
    } catch {
      return undefined;
    }
    let payload;
    try {
      ({ payload } = await jwtVerify(token, this.keys, { issuer: this.options.issuer, audience: this.options.audience, algorithms: ALGORITHMS, requiredClaims: ['exp'] }));
    } catch {
      return { rejected: 'the identity provider token does not verify or has expired' };
    }
    const subject = payload[this.options.subjectClaim];
    if (typeof subject !== 'string' || subject === '') return { rejected: `the identity provider token has no ${this.options.subjectClaim} claim` };
    const listed = typeof payload.scope === 'string' ? payload.scope.split(' ') : Array.isArray(payload.scp) ? payload.scp.filter((s): s is string => typeof s === 'string') : typeof payload.scp === 'string' ? payload.scp.split(' ') : [];
    const app = typeof payload.azp === 'string' ? payload.azp : typeof payload.client_id === 'string' ? payload.client_id : undefined;
    return { user: { externalSubject: subject }, scopes: listed.filter(isUserScope), registeredApp: false, ...(app ? { app } : {}) };
  }
}
